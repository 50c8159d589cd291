"""PDQ perceptual hashes of images: decoded with Pillow, hashed with ``pdqhash`` (Meta's C++ PDQ), both from the
``pdq`` extra (``pip install 'relake[pdq]'``).

PDQ (Meta's open perceptual hash) gives 256 bits and a quality from 0 to 100; two images are "the same" when
their hashes differ in at most 31 bits (Meta's recommended threshold), and a hash of quality below 50 (flat or
nearly blank images) is unreliable. Resizing, JPEG re-encoding, small crops, colour changes and small overlays
keep the distance low; rotations, mirror images, large crops and heavy overlays do not (``hash_image`` does not
try the rotated and mirrored variants: each would multiply the false matches too).

img2dataset's default ``resize_mode="border"`` pads a non-square image to a square with a uniform border (white,
or black with newer albumentations), which alone moves PDQ by about 79 bits. ``trim_border`` finds such padding:
rows or columns at an edge that are nearly one colour (each channel within ``_TOLERANCE`` of the edge's median
for ``_SHARE`` of its pixels, which JPEG noise and ringing pass). ``hash_image`` hashes the image as decoded and,
when it had a border, trimmed too; a match takes the smaller distance (a real uniform edge, a white sky, is
trimmed as well, which is why the untrimmed hash is kept).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from relake.errors import InputError
from relake.kinds import DEFAULT_MAX_DISTANCE, DEFAULT_MIN_QUALITY

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "DEFAULT_MIN_QUALITY",
    "PDQ_COLUMN",
    "PDQ_MISSING",
    "Hashed",
    "decode",
    "hash_image",
    "hash_pixels",
    "hex_hash",
    "require_pdq",
    "trim_border",
]

PDQ_COLUMN = "pdq"  # a base's (or side table's) column of PDQ hashes, as build's image-pdq rules read it
PDQ_MISSING = "PDQ matching needs pdqhash and Pillow: pip install 'relake[pdq]'"

_TOLERANCE = 24  # a border pixel's channels are within this of the edge colour (JPEG noise, ringing)
_SHARE = 0.97  # of a border row's or column's pixels
_MIN_KEPT = 0.2  # a trim keeps at least this share of each side's length (else it is not a border)


def require_pdq() -> tuple[Any, Any]:
    """The ``pdqhash`` and ``PIL.Image`` modules; ``InputError`` saying what to install when either is missing."""
    try:
        import pdqhash
        from PIL import Image
    except ImportError:
        raise InputError(PDQ_MISSING) from None
    return pdqhash, Image


@dataclass(frozen=True)
class Hashed:
    """The PDQ hashes of one image: as decoded and, if it had a uniform border, trimmed (32 bytes each)."""

    hashes: tuple[bytes, ...]
    qualities: tuple[int, ...]
    trimmed: bool


def decode(data: bytes) -> npt.NDArray[np.uint8]:
    """An image's pixels as RGB (``(h, w, 3)`` uint8), by Pillow; raises on anything it cannot decode."""
    _, image_mod = require_pdq()
    with image_mod.open(io.BytesIO(data)) as im:
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            white = image_mod.new("RGBA", rgba.size, (255, 255, 255, 255))
            white.alpha_composite(rgba)  # as img2dataset does: alpha over white
            return np.asarray(white.convert("RGB"))
        return np.asarray(im.convert("RGB"))


def hash_pixels(rgb: npt.NDArray[np.uint8]) -> tuple[bytes, int]:
    """PDQ of RGB pixels: 32 bytes (bit 0 the most significant of byte 0, Meta's hex order) and the quality."""
    pdqhash, _ = require_pdq()
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), int(quality)


def hex_hash(hashed: bytes) -> str:
    return hashed.hex()


def _border_lines(lines: npt.NDArray[np.uint8]) -> int:
    """How many of ``lines`` (rows of pixels, outermost first) are border: nearly all their pixels near the
    outermost line's median colour. Only the outermost line is read when it is not one colour (most images)."""
    outer = lines[0].astype(np.int16)
    corner = (np.abs(outer - outer[0]).max(axis=1) <= _TOLERANCE).mean()
    if corner < _SHARE and (np.abs(outer - outer[-1]).max(axis=1) <= _TOLERANCE).mean() < _SHARE:
        return 0  # most images: the outer line is not the colour of a corner (cheap test before the median)
    colour = np.median(outer, axis=0).astype(np.int16)

    def near(block: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
        diff = np.abs(block.astype(np.int16) - colour).max(axis=2) <= _TOLERANCE
        return np.asarray(diff.mean(axis=1) >= _SHARE)

    if not near(lines[:1])[0]:
        return 0
    flags = near(lines[: lines.shape[0] // 2 + 1])
    return int(flags.size if flags.all() else np.argmin(flags))


def trim_border(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8] | None:
    """``rgb`` without uniform bands at its edges (see the module), or None when it has none."""
    h, w = rgb.shape[:2]
    if h < 8 or w < 8:
        return None
    cols = rgb.transpose(1, 0, 2)
    top, bottom, left, right = (_border_lines(x) for x in (rgb, rgb[::-1], cols, cols[::-1]))
    if top + bottom == 0 and left + right == 0:
        return None
    if h - top - bottom < max(8, _MIN_KEPT * h) or w - left - right < max(8, _MIN_KEPT * w):
        return None  # nearly all one colour: not a border around a picture
    return rgb[top:h - bottom, left:w - right]


def hash_image(data: bytes) -> Hashed:
    """PDQ of an encoded image, as decoded and with any uniform border trimmed (``trim_border``)."""
    rgb = decode(data)
    full, q = hash_pixels(rgb)
    inner = trim_border(rgb)
    if inner is None:
        return Hashed((full,), (q,), False)
    trimmed, tq = hash_pixels(inner)
    return Hashed((full, trimmed), (q, tq), True)
