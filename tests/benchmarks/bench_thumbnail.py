"""What a thumbnail of a phone photo costs: a 12-megapixel JPEG (4000x3000, EXIF-rotated).

The labeller's per-image work besides the Rekognition call: open, EXIF orientation, fit into
256x256, encode as WEBP (and as JPEG). One core, CPU time, median of seven rounds. The photo
is noise over gradients, so that it compresses as a photo does (a few MB), not as a flat
colour does.
"""

from __future__ import annotations

import io
import os

from PIL import Image

from pipelines.images import make_thumbnail
from tests.benchmarks.timing import median_cpu, pin_one_core

ROUNDS = 7


def photo(width: int = 4000, height: int = 3000) -> bytes:
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.frombytes("L", (width, height), os.urandom(width * height))
    image = Image.merge("RGB", (gradient, Image.blend(gradient, noise, 0.3), noise))
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue()


def main() -> None:
    pin_one_core()
    data = photo()
    print(f"source: 4000x3000 JPEG, {len(data) / 1e6:.1f} MB")
    for image_format in ("WEBP", "JPEG"):
        thumbnail = make_thumbnail(data, image_format=image_format)
        seconds = median_cpu(ROUNDS, lambda f=image_format: make_thumbnail(data, image_format=f))
        print(
            f"thumbnail {image_format:4}: {seconds * 1000:7.1f} ms CPU per image, "
            f"{thumbnail.width}x{thumbnail.height}, {len(thumbnail.data) / 1000:.1f} kB"
        )

    # Without the JPEG draft (decoding at full scale), for comparison.
    def full_decode() -> None:
        with Image.open(io.BytesIO(data)) as image:
            image.load()

    print(f"full-scale decode alone: {median_cpu(ROUNDS, full_decode) * 1000:7.1f} ms CPU")


if __name__ == "__main__":
    main()
