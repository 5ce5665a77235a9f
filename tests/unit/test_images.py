"""Uploaded images: the notifications that name them, and their thumbnails (real Pillow bytes)."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import quote_plus

import pytest
from PIL import Image

from pipelines.errors import PoisonRecordError
from pipelines.images import make_thumbnail, uploaded_objects
from pipelines.images.notifications import MalformedNotificationError
from pipelines.images.thumbnail import ImageTooLargeError, UnreadableImageError

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _two_halves(width: int, height: int, image_format: str, orientation: int = 1) -> bytes:
    """Left half red, right half blue, saved with an EXIF orientation."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, exif=exif.tobytes(), quality=95)
    return buffer.getvalue()


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 40 for a, b in zip(pixel[:3], colour, strict=True))


def test_a_jpeg_is_fitted_into_256_square_as_webp() -> None:
    thumbnail = make_thumbnail(_two_halves(1024, 768, "JPEG"))

    image = _decoded(thumbnail.data)
    assert (image.format, image.size) == ("WEBP", (256, 192))
    assert (thumbnail.width, thumbnail.height, thumbnail.content_type) == (256, 192, "image/webp")
    assert (thumbnail.source_format, thumbnail.source_width, thumbnail.source_height) == (
        "JPEG",
        1024,
        768,
    )
    assert _near(image.getpixel((10, 96)), RED) and _near(image.getpixel((245, 96)), BLUE)


def test_exif_orientation_is_applied() -> None:
    # Stored 400x200, displayed turned a quarter clockwise: 200x400, the left half on top.
    thumbnail = make_thumbnail(_two_halves(400, 200, "JPEG", orientation=6))

    image = _decoded(thumbnail.data)
    assert image.size == (128, 256)
    assert (thumbnail.source_width, thumbnail.source_height) == (200, 400)
    assert _near(image.getpixel((64, 10)), RED) and _near(image.getpixel((64, 245)), BLUE)


def test_a_small_image_is_not_enlarged_and_jpeg_is_available() -> None:
    thumbnail = make_thumbnail(_two_halves(100, 50, "PNG"), image_format="JPEG")

    image = _decoded(thumbnail.data)
    assert (image.format, image.size, thumbnail.extension) == ("JPEG", (100, 50), "jpg")


def test_a_png_with_alpha_keeps_it_in_webp_and_loses_it_in_jpeg() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (300, 300), (0, 255, 0, 128)).save(buffer, format="PNG")

    assert _decoded(make_thumbnail(buffer.getvalue()).data).mode == "RGBA"
    assert _decoded(make_thumbnail(buffer.getvalue(), image_format="JPEG").data).mode == "RGB"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is a text file, not an image", "not an image"),
        (_two_halves(640, 480, "JPEG")[:2000], "truncated or corrupt"),
        (_two_halves(64, 64, "GIF"), "GIF is not an accepted image"),
    ],
    ids=["text", "truncated-jpeg", "gif"],
)
def test_unreadable_bytes_are_poison_with_the_bytes_and_the_reason(data: bytes, reason: str):
    with pytest.raises(UnreadableImageError) as caught:
        make_thumbnail(data)

    assert isinstance(caught.value, PoisonRecordError)
    assert reason in caught.value.reason
    assert caught.value.raw == data
    assert caught.value.code == "unreadable_image"


@pytest.mark.parametrize(
    ("width", "height", "reason"),
    [
        (8_000, 7_500, "8000x7500 is 60,000,000 pixels, over the limit of 50,000,000"),
        (20_000, 20_000, "over the limit of 50,000,000 pixels (Image size (400000000 pixels)"),
    ],
    ids=["over-ours", "over-pillows-too"],
)
def test_a_decompression_bomb_is_refused_before_its_pixels_are_decoded(
    width: int, height: int, reason: str
) -> None:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG", optimize=True)
    bomb = buffer.getvalue()
    assert len(bomb) < 200_000  # millions of pixels in a small file

    started = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as caught:
        make_thumbnail(bomb)

    assert time.perf_counter() - started < 1.0  # nothing was decoded
    assert reason in caught.value.reason
    assert caught.value.code == "image_too_large" and caught.value.raw == bomb


def test_the_pixel_limit_is_configurable() -> None:
    with pytest.raises(ImageTooLargeError):
        make_thumbnail(_two_halves(200, 200, "PNG"), max_pixels=10_000)


def _notification(*keys: str, event: str = "ObjectCreated:Put", version: str | None = "v1") -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventName": event,
                    "eventTime": "2026-12-05T07:00:00.000Z",
                    "s3": {
                        "bucket": {"name": "pipelines-dev-uploads"},
                        "object": {
                            "key": quote_plus(key, safe="/"),
                            "size": 1234,
                            "eTag": "abc123",
                            **({"versionId": version} if version else {}),
                        },
                    },
                }
                for key in keys
            ]
        }
    )


def test_keys_are_url_decoded_with_spaces_and_unicode() -> None:
    body = _notification("uploads/cat 1.jpg", "uploads/crème brûlée/ñandú.PNG")
    assert '"uploads/cat+1.jpg"' in body

    objects = list(uploaded_objects(body))

    assert [o.key for o in objects] == ["uploads/cat 1.jpg", "uploads/crème brûlée/ñandú.PNG"]
    assert objects[0].identity == "s3://pipelines-dev-uploads/uploads/cat 1.jpg#v1"


def test_the_etag_identifies_an_unversioned_object() -> None:
    (uploaded,) = uploaded_objects(_notification("uploads/a.webp", version=None))
    assert uploaded.identity.endswith("#abc123")


def test_the_test_event_other_prefixes_non_images_and_removals_yield_nothing() -> None:
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})

    assert list(uploaded_objects(test_event)) == []
    assert list(uploaded_objects(_notification("thumbnails/a.jpg", "uploads/notes.txt"))) == []
    assert (
        list(uploaded_objects(_notification("uploads/a.jpg", event="ObjectRemoved:Delete"))) == []
    )


@pytest.mark.parametrize(
    "body",
    ["not json", "[1, 2]", '{"Records": "x"}', '{"Records": [{"eventName": "ObjectCreated:Put"}]}'],
)
def test_a_message_that_is_not_a_notification_is_poison_with_its_bytes(body: str) -> None:
    with pytest.raises(MalformedNotificationError) as caught:
        list(uploaded_objects(body))

    assert caught.value.raw == body.encode()
