"""The thumbnail of an uploaded image: EXIF orientation applied, fitted into a square.

Pillow opens the image lazily, so the pixel count is checked against ``max_pixels`` before
any pixel is decoded: a decompression bomb (a small file that expands to gigapixels) is
refused without allocating it. Every failure to read the bytes (not an image, truncated,
corrupt, too many pixels) is a poison record: no retry can make it succeed.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from pipelines.errors import PoisonRecordError

# What the labeller accepts, by the format Pillow detects (never by the key's suffix).
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "MPO"})
DEFAULT_MAX_PIXELS = 50_000_000
CONTENT_TYPES = {"WEBP": "image/webp", "JPEG": "image/jpeg"}
ORIENTATION = 0x0112  # EXIF: 5 to 8 turn the image a quarter, so width and height swap


class UnreadableImageError(PoisonRecordError):
    """The bytes are not an image of an accepted format, or are truncated or corrupt."""

    code = "unreadable_image"


class ImageTooLargeError(PoisonRecordError):
    """The image has more pixels than the limit (a decompression bomb, or just too big)."""

    code = "image_too_large"


@dataclass(frozen=True)
class Thumbnail:
    """The encoded thumbnail and what the source image was."""

    data: bytes
    content_type: str
    width: int
    height: int
    source_format: str
    source_width: int
    source_height: int

    @property
    def extension(self) -> str:
        return "webp" if self.content_type == "image/webp" else "jpg"


def make_thumbnail(
    data: bytes,
    *,
    size: int = 256,
    image_format: str = "WEBP",
    quality: int = 80,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Thumbnail:
    """Fit ``data``'s image, upright, into ``size`` x ``size`` and encode it as ``image_format``.

    Raises :class:`UnreadableImageError` or :class:`ImageTooLargeError`, carrying ``data``.
    """
    if image_format not in CONTENT_TYPES:
        raise ValueError(f"thumbnail format must be one of {sorted(CONTENT_TYPES)}")
    try:
        with warnings.catch_warnings():
            # Pillow warns, then raises, past its own bomb limit; ours is checked first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                source_format = str(image.format)
                if source_format not in ACCEPTED_FORMATS:
                    raise UnreadableImageError(f"{source_format} is not an accepted image", data)
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"{width}x{height} is {width * height:,} pixels, over the limit of "
                        f"{max_pixels:,}",
                        data,
                    )
                turned = image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8)
                image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((size, size), Image.Resampling.LANCZOS)
                out = _encodable(upright, image_format)
                buffer = io.BytesIO()
                out.save(buffer, format=image_format, quality=quality)
    except UnidentifiedImageError as error:
        raise UnreadableImageError("not an image Pillow can identify", data) from error
    except Image.DecompressionBombError as error:
        reason = f"over the limit of {max_pixels:,} pixels ({error})"
        raise ImageTooLargeError(reason, data) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UnreadableImageError(f"truncated or corrupt image: {error}", data) from error
    return Thumbnail(
        data=buffer.getvalue(),
        content_type=CONTENT_TYPES[image_format],
        width=out.width,
        height=out.height,
        source_format="JPEG" if source_format == "MPO" else source_format,
        source_width=height if turned else width,
        source_height=width if turned else height,
    )


def _encodable(image: Image.Image, image_format: str) -> Image.Image:
    """JPEG has no alpha and no palette; WEBP keeps alpha."""
    if image_format == "JPEG" and image.mode != "RGB":
        return image.convert("RGB")
    if image_format == "WEBP" and image.mode not in ("RGB", "RGBA"):
        alpha = "A" in image.getbands() or "transparency" in image.info
        return image.convert("RGBA" if alpha else "RGB")
    return image
