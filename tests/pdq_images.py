"""Images for the PDQ tests: varied synthetic pictures, and copies made the way img2dataset's resizer makes them
(img2dataset 1.47.0 resizer.py: albumentations' SmallestMaxSize / LongestMaxSize with INTER_AREA down and
INTER_LANCZOS4 up, CenterCrop, PadIfNeeded centred with a constant border, then a JPEG at quality 95),
reproduced with Pillow (BOX is area averaging)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw


def need_pdq() -> None:
    """Skip (with the reason) when the pdq extra is missing; CI sets RELAKE_REQUIRE_PDQ=1 to make it fail."""
    try:
        import pdqhash  # noqa: F401
        import PIL  # noqa: F401
    except ImportError:
        if os.environ.get("RELAKE_REQUIRE_PDQ"):
            raise
        pytest.skip("PDQ tests need pdqhash and Pillow: pip install 'relake[pdq]' (CI requires them)",
                    allow_module_level=True)


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    small = rng.integers(0, 256, (int(rng.integers(3, 24)), int(rng.integers(3, 24)), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC), dtype=np.float32)


def _gradient(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    a = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:h, 0:w]
    g = np.cos(a) * xs + np.sin(a) * ys
    g = (g - g.min()) / (np.ptp(g) + 1e-9)
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    return (c0[None, None, :] * (1 - g[..., None]) + c1[None, None, :] * g[..., None]).astype(np.float32)


def _shapes(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    im = Image.new("RGB", (w, h), tuple(int(x) for x in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(3, 12))):
        x0, y0 = (int(v) for v in rng.integers(-w // 4, w, 2))
        box = [x0, y0, x0 + int(rng.integers(4, w)), y0 + int(rng.integers(4, h))]
        fill = tuple(int(x) for x in rng.integers(0, 256, 3))
        (draw.ellipse if rng.integers(2) else draw.rectangle)(box, fill=fill)
    return np.asarray(im, dtype=np.float32)


def _waves(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    f1, f2 = rng.uniform(-0.3, 0.3, 2)
    return np.stack([127 + 127 * np.sin(f1 * xs + f2 * ys + p) for p in rng.uniform(0, 6, 3)], -1).astype(np.float32)


def synth_image(rng: np.random.Generator, w: int = 128, h: int = 96) -> Image.Image:
    """A picture: smooth noise or shapes (or both) as its content, blended with a gradient or waves at up to 35%.
    Gratings alone are not used: PDQ hashes stripes by orientation and frequency, so waves of near frequencies
    match each other (measured: 67 pairs among 3,000 blends where waves dominated)."""
    content = [(_noise, _shapes), (_noise,), (_shapes,)][int(rng.integers(3))]
    px = sum(layer(rng, w, h) for layer in content) / len(content)
    extra = (_gradient, _waves, None)[int(rng.integers(3))]
    if extra is not None:
        share = rng.uniform(0.0, 0.35)
        px = (1 - share) * px + share * extra(rng, w, h)
    return Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))


def jpeg(im: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _scaled(im: Image.Image, scale: float) -> Image.Image:
    w, h = im.size
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(size, Image.BOX if scale < 1 else Image.LANCZOS)


def img2dataset_resize(im: Image.Image, mode: str, size: int = 256, fill: tuple[int, int, int] = (255, 255, 255),
                       ) -> Image.Image:
    """What img2dataset's resizer does to an image in ``resize_mode`` border (its default), keep_ratio or
    center_crop, before its JPEG."""
    w, h = im.size
    if mode in ("keep_ratio", "center_crop"):
        out = _scaled(im, size / min(w, h))
        if mode == "center_crop":
            ow, oh = out.size
            left, top = (ow - size) // 2, (oh - size) // 2
            out = out.crop((left, top, left + size, top + size))
        return out
    assert mode == "border"
    out = _scaled(im, size / max(w, h))
    ow, oh = out.size
    padded = Image.new("RGB", (size, size), fill)
    padded.paste(out, ((size - ow) // 2, (size - oh) // 2))  # PadIfNeeded: centred, the odd pixel after
    return padded


def crop(im: Image.Image, share: float) -> Image.Image:
    """``share`` of each side cut off."""
    w, h = im.size
    dx, dy = round(w * share), round(h * share)
    return im.crop((dx, dy, w - dx, h - dy))


def watermark(im: Image.Image) -> Image.Image:
    """A semi-opaque white label with dark text in the bottom-right corner (about 4% of the area)."""
    out = im.convert("RGBA")
    layer = Image.new("RGBA", out.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = out.size
    box = (int(w * 0.72), int(h * 0.86), w - 4, h - 4)
    draw.rectangle(box, fill=(255, 255, 255, 150))
    draw.text((box[0] + 3, box[1] + 2), "© stock", fill=(0, 0, 0, 230))
    return Image.alpha_composite(out, layer).convert("RGB")
