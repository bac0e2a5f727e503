"""Synthetic Korean license-plate detection data (``bnnzoo data plates``).

The 1-bit plate detector of Im & Lee (2018) was trained on photographs of Korean
plates that are not public; this module renders a stand-in that needs no download.

Plates follow the current Korean formats: 2 or 3 digits, one Hangul syllable from
the official set, 4 digits (``"12가 3456"``, ``"123가 4567"``), on white (private),
light-blue (electric), yellow (commercial) or green (old two-row) plates, drawn with
the NanumGothic font the ``koreanize-matplotlib`` wheel ships (or ``--font``).
They are perspective-warped, scaled, partly occluded and pasted onto varied
backgrounds: images that ship with matplotlib, procedural textures (noise,
gradients, stripes), road scenes with car-like shapes, and clutter including
other text and plate-like signs. The whole image then gets lighting, blur and noise.

Layout written under ``--out``::

    images/<split>/<index:06d>.jpg   (or .png)
    labels/<split>/<index:06d>.txt   one line per plate: "0 cx cy w h" (normalised)
    manifest.json                    counts, seed, font, image size, format version

Every image draws from its own generator seeded by ``(seed, split, index)``, so the
bytes do not depend on the number of workers, and a killed run resumes where it
stopped: an image counts as written once its label file exists (images and labels are
written to a temporary name and renamed, the label last).
"""

from __future__ import annotations

import functools
import importlib.metadata
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from zoo import fileio

__all__ = ["FORMAT_VERSION", "SPLITS", "HANGUL", "GenConfig", "find_font", "plate_text", "render_sample",
           "generate", "parse_size", "write_sample", "MAX_SIDE"]

FORMAT_VERSION = 1
SPLITS = {"train": 0, "val": 1, "test": 2}
CLASSES = ["plate"]

# The syllables of the registration-number middle character (Korean Ministry of Land,
# Infrastructure and Transport): private cars, commercial (바사아자), rentals (하허호), delivery (배).
PRIVATE = "가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주"
COMMERCIAL = "바사아자"
RENTAL = "하허호"
HANGUL = PRIVATE + COMMERCIAL + RENTAL + "배"
REGIONS = ("서울", "부산", "대구", "인천", "광주", "대전", "울산", "세종", "경기", "강원", "충북", "충남", "전북",
           "전남", "경북", "경남", "제주")

# Plate styles: (background RGB, text RGB, aspect w/h, two rows, probability).
STYLES = {
    "white": ((246, 246, 242), (20, 20, 20), 520 / 110, False, 0.62),
    "electric": ((120, 170, 220), (15, 25, 45), 520 / 110, False, 0.08),
    "yellow": ((236, 190, 30), (20, 20, 20), 520 / 110, False, 0.10),
    "yellow_old": ((236, 190, 30), (20, 20, 20), 335 / 170, True, 0.08),
    "green_old": ((40, 120, 70), (240, 240, 235), 335 / 170, True, 0.12),
}
MAX_SIDE = 4096  # a 4096x4096 RGB image is 48 MiB per rendering process; larger sides only exhaust memory
PLATE_HEIGHT = 48  # canonical rendering height (pixels) before warping and scaling
DISTRACTOR_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789" + HANGUL + "서울부산주차금지출입구"


@dataclass(frozen=True)
class GenConfig:
    """What every image of a data set depends on (recorded in ``manifest.json``).

    Attributes:
        seed: Base seed; image ``i`` of split ``s`` uses ``(seed, SPLITS[s], i)``.
        width: Image width in pixels.
        height: Image height in pixels.
        image_format: ``"jpg"`` or ``"png"``.
        font: Path of the Hangul TrueType font.
        quality: JPEG quality.
    """

    seed: int = 0
    width: int = 160
    height: int = 160
    image_format: str = "jpg"
    font: str = ""
    quality: int = 90


# --- font and background sources ------------------------------------------------------


def find_font(path: Optional[str] = None) -> str:
    """The Hangul font to render plates with.

    Args:
        path: An explicit ``.ttf``/``.otf`` path; ``None`` looks in the installed
            ``koreanize-matplotlib`` package (NanumGothicBold, else NanumGothic).

    Raises:
        FileNotFoundError: No usable font.
    """
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(f"font {path} does not exist: pass the path of a .ttf with Hangul glyphs")
        try:
            ImageFont.truetype(str(path), 16)
        except (OSError, ValueError) as e:  # "unknown file format" for a file that is not a font
            raise ValueError(f"font {path} is not a TrueType/OpenType font Pillow can read ({e}): pass a .ttf or "
                             ".otf with Hangul glyphs, or leave --font out for NanumGothic") from None
        return str(Path(path).resolve())
    try:
        dist = importlib.metadata.distribution("koreanize-matplotlib")
        fonts = {Path(str(f)).name: dist.locate_file(f) for f in (dist.files or []) if str(f).endswith(".ttf")}
    except importlib.metadata.PackageNotFoundError:
        fonts = {}
    for name in ("NanumGothicBold.ttf", "NanumGothic.ttf"):
        if name in fonts and Path(fonts[name]).is_file():
            return str(Path(fonts[name]).resolve())
    raise FileNotFoundError("no Hangul font found: pip install 'bnnzoo[data]' "
                            "or pass --font PATH.ttf")


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=1)
def _sample_images() -> tuple[np.ndarray, ...]:
    """RGB uint8 images that ship with matplotlib (sample_data), in a fixed order."""
    out = []
    try:
        import matplotlib

        root = Path(matplotlib.get_data_path()) / "sample_data"
    except Exception:  # matplotlib missing: procedural backgrounds only
        return ()
    for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
        try:
            out.append(np.asarray(Image.open(root / name).convert("RGB")))
        except Exception:
            pass
    for name, key in (("topobathy.npz", "topo"), ("jacksboro_fault_dem.npz", "elevation")):
        try:
            with np.load(root / name) as z:
                out.append(_gray_to_rgb(np.asarray(z[key], dtype=np.float64)))
        except Exception:
            pass
    try:
        out.append(_gray_to_rgb(np.load(root / "axes_grid" / "bivariate_normal.npy").astype(np.float64)))
    except Exception:
        pass
    return tuple(img for img in out if img.ndim == 3 and min(img.shape[:2]) >= 16)


def _gray_to_rgb(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a)
    a = (a - a.min()) / max(float(np.ptp(a)), 1e-9)
    return np.repeat((a * 255).astype(np.uint8)[..., None], 3, axis=2)


# --- plates ---------------------------------------------------------------------------


def plate_text(rng: np.random.Generator, commercial: bool = False) -> tuple[str, str]:
    """A registration number: (front ``"12가"`` / ``"123가"``, back ``"3456"``)."""
    letters = COMMERCIAL if commercial else PRIVATE + RENTAL + "배"
    digits = 3 if rng.random() < 0.4 else 2
    front = "".join(str(d) for d in rng.integers(0, 10, digits))
    if digits == 2 and front[0] == "0":
        front = str(rng.integers(1, 10)) + front[1]
    back = "".join(str(d) for d in rng.integers(0, 10, 4))
    return front + letters[int(rng.integers(len(letters)))], back


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font_path: str, box: tuple[int, int, int, int],
              color: tuple[int, int, int]) -> None:
    """Draws ``text`` as large as fits in ``box`` (x0, y0, x1, y1), centred."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    size = max(int(bh * 1.15), 6)
    font = _font(font_path, size)
    left, t, r, b = font.getbbox(text)
    scale = min(bw / max(r - left, 1), bh / max(b - t, 1), 1.0)
    if scale < 1.0:
        size = max(int(size * scale), 6)
        font = _font(font_path, size)
        left, t, r, b = font.getbbox(text)
    x = box[0] + (bw - (r - left)) / 2 - left
    y = box[1] + (bh - (b - t)) / 2 - t
    draw.text((x, y), text, font=font, fill=color)


def _render_plate(rng: np.random.Generator, font_path: str) -> Image.Image:
    """One flat plate image (RGB), ``PLATE_HEIGHT`` pixels high."""
    names = list(STYLES)
    probs = np.array([STYLES[n][4] for n in names])
    style = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    bg, fg, aspect, two_rows, _ = STYLES[style]
    bg = tuple(int(np.clip(c + rng.integers(-12, 13), 0, 255)) for c in bg)
    h = PLATE_HEIGHT if not two_rows else int(PLATE_HEIGHT * 1.4)
    w = int(round(h * aspect))
    img = Image.new("RGB", (w, h), bg)
    draw = ImageDraw.Draw(img)
    border = max(1, h // 24)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=h // 8, outline=fg, width=border)
    front, back = plate_text(rng, commercial=style.startswith("yellow"))
    pad = 2 * border + 1
    if two_rows:
        top = f"{REGIONS[int(rng.integers(len(REGIONS)))]} {front}" if rng.random() < 0.6 else front
        _fit_text(draw, top, font_path, (w // 5, pad, w - w // 5, int(h * 0.38)), fg)
        _fit_text(draw, back, font_path, (pad + 2, int(h * 0.42), w - pad - 2, h - pad), fg)
    else:
        _fit_text(draw, f"{front} {back}", font_path, (pad + h // 6, pad, w - pad - h // 6, h - pad), fg)
    return img


def _perspective_coeffs(dst: np.ndarray, src: np.ndarray) -> list[float]:
    """Coefficients PIL's PERSPECTIVE transform needs to map output points ``dst`` to input ``src``."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.asarray(a, dtype=np.float64), src.reshape(-1).astype(np.float64)).tolist()


def _warp_plate(rng: np.random.Generator, plate: Image.Image, width: float) -> tuple[Image.Image, Image.Image]:
    """Scales the plate to ``width`` pixels and warps it; returns (patch, mask)."""
    pw, ph = plate.size
    w, h = width, width * ph / pw
    jitter = 0.12 * rng.standard_normal(8).clip(-2, 2)
    skew = rng.uniform(-0.25, 0.25) * h  # vertical shear: a plate seen from the side
    quad = np.array([[0, 0], [w, skew], [w, h + skew], [0, h]], dtype=np.float64)
    quad += jitter.reshape(4, 2) * np.array([w * 0.25, h])
    angle = np.deg2rad(rng.normal(0, 5))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    quad = quad @ rot.T
    quad -= quad.min(0)
    size = (max(int(np.ceil(quad[:, 0].max())), 1), max(int(np.ceil(quad[:, 1].max())), 1))
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], dtype=np.float64)
    coeffs = _perspective_coeffs(quad, src)
    patch = plate.transform(size, Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR)
    mask = Image.new("L", plate.size, 255).transform(size, Image.Transform.PERSPECTIVE, coeffs,
                                                      Image.Resampling.BILINEAR)
    return patch, mask


# --- backgrounds and clutter -------------------------------------------------------------


def _color(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _smooth_noise(rng: np.random.Generator, w: int, h: int, cells: int) -> np.ndarray:
    small = rng.random((cells, cells, 3)) * 255
    return np.asarray(Image.fromarray(small.astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC),
                      dtype=np.float32)


def _background(rng: np.random.Generator, w: int, h: int) -> tuple[Image.Image, str]:
    samples = _sample_images()
    kinds = ["photo", "noise", "gradient", "stripes", "road"] if samples else ["noise", "gradient", "stripes", "road"]
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "photo":
        src = samples[int(rng.integers(len(samples)))]
        sh, sw = src.shape[:2]
        side = rng.uniform(0.3, 1.0)
        cw, ch = max(int(sw * side), 8), max(int(sh * side), 8)
        x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
        arr = src[y0:y0 + ch, x0:x0 + cw].astype(np.float32)
        arr = arr * rng.uniform(0.6, 1.2, 3) + rng.uniform(-30, 30, 3)
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
        if rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return img, kind
    if kind == "noise":
        arr = _smooth_noise(rng, w, h, int(rng.integers(2, 12))) * rng.uniform(0.4, 1.0)
        arr += rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(2, 25)
    elif kind == "gradient":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = np.cos(rng.uniform(0, np.pi)) * xx / w + np.sin(rng.uniform(0, np.pi)) * yy / h
        t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
        c0, c1 = np.array(_color(rng), np.float32), np.array(_color(rng), np.float32)
        arr = c0 + t[..., None] * (c1 - c0)
    elif kind == "stripes":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(4, 40)
        phase = (np.cos(theta) * xx + np.sin(theta) * yy) / period
        s = (np.sin(2 * np.pi * phase) > 0) if rng.random() < 0.5 else 0.5 + 0.5 * np.sin(2 * np.pi * phase)
        c0, c1 = np.array(_color(rng), np.float32), np.array(_color(rng), np.float32)
        arr = c0 + np.asarray(s, np.float32)[..., None] * (c1 - c0)
    else:
        return _road(rng, w, h), kind
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8)), kind


def _road(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    """Sky, asphalt with lane markings and a few car-like shapes."""
    horizon = int(h * rng.uniform(0.15, 0.5))
    arr = np.empty((h, w, 3), np.float32)
    arr[:horizon] = np.array(_color(rng), np.float32) * 0.4 + np.array([150, 180, 220], np.float32) * 0.6
    gray = rng.uniform(50, 130)
    arr[horizon:] = gray + 8 * rng.standard_normal((h - horizon, w, 1), dtype=np.float32)
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    lane = (240, 240, 240) if rng.random() < 0.7 else (230, 190, 40)
    for _ in range(int(rng.integers(1, 4))):
        x = rng.uniform(0, w)
        draw.line((w / 2 + (x - w / 2) * 0.2, horizon, x, h), fill=lane, width=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(1, 4))):
        cw = w * rng.uniform(0.3, 0.8)
        ch = cw * rng.uniform(0.45, 0.8)
        x0, y0 = rng.uniform(-0.2 * cw, w - 0.8 * cw), rng.uniform(horizon - ch * 0.3, h - ch * 0.6)
        body = _color(rng)
        draw.rounded_rectangle((x0, y0 + ch * 0.3, x0 + cw, y0 + ch), radius=int(ch * 0.12), fill=body)
        draw.rounded_rectangle((x0 + cw * 0.15, y0, x0 + cw * 0.85, y0 + ch * 0.4), radius=int(ch * 0.1), fill=body)
        draw.rectangle((x0 + cw * 0.2, y0 + ch * 0.06, x0 + cw * 0.8, y0 + ch * 0.33), fill=(30, 35, 45))
        for lx in (x0 + cw * 0.05, x0 + cw * 0.8):  # lamps
            draw.ellipse((lx, y0 + ch * 0.45, lx + cw * 0.15, y0 + ch * 0.58), fill=(230, 220, 180))
        draw.rectangle((x0 + cw * 0.05, y0 + ch * 0.85, x0 + cw * 0.95, y0 + ch * 0.95), fill=(25, 25, 25))
    return img


def _random_text(rng: np.random.Generator, n: int) -> str:
    return "".join(DISTRACTOR_CHARS[int(i)] for i in rng.integers(0, len(DISTRACTOR_CHARS), n))


def _clutter(rng: np.random.Generator, img: Image.Image, font_path: str) -> None:
    """Shapes, other text and plate-like signs that are not plates."""
    w, h = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 7))):
        kind = int(rng.integers(0, 5))
        x0, y0 = rng.uniform(-0.1 * w, w), rng.uniform(-0.1 * h, h)
        x1, y1 = x0 + rng.uniform(4, w * 0.5), y0 + rng.uniform(4, h * 0.5)
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=_color(rng))
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=_color(rng))
        elif kind == 2:
            draw.line((x0, y0, x1, y1), fill=_color(rng), width=int(rng.integers(1, 6)))
        elif kind == 3:  # free text
            size = int(rng.integers(8, max(int(h * 0.15), 10)))
            draw.text((x0, y0), _random_text(rng, int(rng.integers(2, 9))), font=_font(font_path, size),
                      fill=_color(rng))
        else:  # a sign: a light box with a few characters, not in plate format
            sw = rng.uniform(w * 0.1, w * 0.4)
            sh = sw * rng.uniform(0.25, 0.9)
            draw.rectangle((x0, y0, x0 + sw, y0 + sh), fill=_color(rng), outline=_color(rng))
            _fit_text(draw, _random_text(rng, int(rng.integers(1, 5))), font_path,
                      (int(x0 + 2), int(y0 + 2), int(x0 + sw - 2), int(y0 + sh - 2)), _color(rng))


# --- one image ------------------------------------------------------------------------------


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS[split], int(index)]))


def _overlaps(box: Sequence[float], boxes: Iterable[Sequence[float]], margin: float) -> bool:
    return any(box[0] < b[2] + margin and b[0] < box[2] + margin and box[1] < b[3] + margin and b[1] < box[3] + margin
               for b in boxes)


def render_sample(cfg: GenConfig, split: str, index: int) -> tuple[Image.Image, np.ndarray]:
    """Renders image ``index`` of ``split``.

    Returns:
        The RGB image and its plates as an ``(M, 4)`` array of pixel boxes
        ``(x0, y0, x1, y1)``, each fully inside the image.
    """
    rng = _rng(cfg.seed, split, index)
    w, h = cfg.width, cfg.height
    img, kind = _background(rng, w, h)
    _clutter(rng, img, cfg.font)
    n = int(rng.choice(4, p=[0.06, 0.64, 0.2, 0.1]))
    boxes: list[tuple[float, float, float, float]] = []
    for _ in range(n):
        plate = _render_plate(rng, cfg.font)
        for _attempt in range(12):
            pw = rng.uniform(0.15, 0.6) * w * (0.6 if plate.size[0] < 2.5 * plate.size[1] else 1.0)
            patch, mask = _warp_plate(rng, plate, pw)
            if patch.size[0] >= w - 2 or patch.size[1] >= h - 2:
                continue
            x = int(rng.integers(1, w - patch.size[0]))
            y = int(rng.integers(1, h - patch.size[1]))
            box = (x, y, x + patch.size[0], y + patch.size[1])
            if _overlaps(box, boxes, 2):
                continue
            if rng.random() < 0.3:  # lighting over the plate only (shade, glare)
                patch = Image.fromarray((np.asarray(patch, np.float32) * rng.uniform(0.5, 1.3)).clip(0, 255)
                                        .astype(np.uint8))
            img.paste(patch, (x, y), mask)
            # The label is the warped plate's visible extent (mask > half), tight.
            m = np.asarray(mask) > 127
            ys, xs = np.nonzero(m)
            if len(xs) == 0:
                continue
            boxes.append((x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1))
            if rng.random() < 0.2:  # partial occlusion (a pole, a hand, another car)
                bx0, by0, bx1, by1 = boxes[-1]
                ow, oh = (bx1 - bx0) * rng.uniform(0.1, 0.35), (by1 - by0) * rng.uniform(0.3, 1.2)
                ox, oy = rng.uniform(bx0 - ow / 2, bx1 - ow / 2), rng.uniform(by0 - oh / 2, by1 - oh / 2)
                ImageDraw.Draw(img).rectangle((ox, oy, ox + ow, oy + oh), fill=_color(rng))
            break
    img = _photometric(rng, img)
    return img, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _photometric(rng: np.random.Generator, img: Image.Image) -> Image.Image:
    """Global lighting, contrast, blur and sensor noise."""
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.4))))
    arr = np.asarray(img, np.float32)
    h, w = arr.shape[:2]
    gain = rng.uniform(0.55, 1.35)
    contrast = rng.uniform(0.7, 1.25)
    arr = (arr - 128) * contrast + 128 * gain + rng.uniform(-20, 20)
    if rng.random() < 0.4:  # a lighting gradient (a shadow edge, a headlight)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = np.cos(rng.uniform(0, 2 * np.pi)) * (xx / w - 0.5) + np.sin(rng.uniform(0, 2 * np.pi)) * (yy / h - 0.5)
        arr *= (1 + rng.uniform(0.2, 0.6) * t)[..., None]
    if rng.random() < 0.6:
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * rng.uniform(2, 12)
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def _labels_text(boxes: np.ndarray, w: int, h: int) -> str:
    lines = []
    for x0, y0, x1, y1 in boxes:
        lines.append(f"0 {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
    return "".join(line + "\n" for line in lines)


def _paths(out: Path, split: str, index: int, image_format: str) -> tuple[Path, Path]:
    return (out / "images" / split / f"{index:06d}.{image_format}", out / "labels" / split / f"{index:06d}.txt")


def _write_one(job: tuple[str, GenConfig, str, int]) -> bool:
    """Renders and writes one image (a no-op when its label file exists). Returns whether it wrote."""
    out, cfg, split, index = job
    image_path, label_path = _paths(Path(out), split, index, cfg.image_format)
    if label_path.exists() and image_path.exists():
        return False
    img, boxes = render_sample(cfg, split, index)
    buf = io.BytesIO()
    if cfg.image_format == "png":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=cfg.quality)
    fileio.write_bytes(image_path, buf.getvalue())
    fileio.write_bytes(label_path, _labels_text(boxes, cfg.width, cfg.height).encode())
    return True


# --- the data set -------------------------------------------------------------------------------


def _manifest_params(cfg: GenConfig) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "seed": cfg.seed,
        "image_size": [cfg.width, cfg.height],
        "image_format": cfg.image_format,
        "jpeg_quality": cfg.quality if cfg.image_format == "jpg" else None,
        "font": {"file": Path(cfg.font).name, "sha256": fileio.sha256_of(cfg.font)},
    }


def _count_plates(out: Path, split: str, n: int) -> int:
    total = 0
    for i in range(n):
        with open(out / "labels" / split / f"{i:06d}.txt") as f:
            total += sum(1 for line in f if line.strip())
    return total


def generate(out: str | os.PathLike, counts: dict[str, int], *, seed: int = 0, size: tuple[int, int] = (160, 160),
             image_format: str = "jpg", font: Optional[str] = None, workers: int = 1,
             progress: bool = False) -> dict[str, Any]:
    """Writes (or completes) a synthetic plate data set.

    Args:
        out: Output folder.
        counts: Images per split, e.g. ``{"train": 20000, "val": 2000}``.
        seed: Base seed.
        size: ``(width, height)`` of every image.
        image_format: ``"jpg"`` or ``"png"``.
        font: Hangul font path; ``None`` finds NanumGothic (``find_font``).
        workers: Processes to render with (the bytes do not depend on it).
        progress: Show a tqdm progress bar.

    Returns:
        The manifest, also written to ``out/manifest.json``.

    Raises:
        ValueError: Bad options, or ``out`` holds a data set made with other options.
        FileNotFoundError: No Hangul font.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image format {image_format!r} is not supported: use 'jpg' or 'png'")
    unknown = sorted(set(counts) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split {unknown[0]!r}: use {', '.join(SPLITS)}")
    if any(n < 0 for n in counts.values()):
        raise ValueError("image counts must be >= 0")
    w, h = size
    if w < 32 or h < 32:
        raise ValueError(f"image size {w}x{h} is too small for plates: use at least 32x32")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"image size {w}x{h} is too large: each side at most {MAX_SIDE} pixels")
    cfg = GenConfig(seed=int(seed), width=int(w), height=int(h), image_format=image_format, font=find_font(font))
    out = Path(out)
    params = _manifest_params(cfg)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            old = {}
        clash = [k for k in params if k in old and old[k] != params[k]]
        if clash:
            raise ValueError(f"{out} holds a data set made with another {clash[0]} ({old[clash[0]]}, not "
                             f"{params[clash[0]]}): use another --out or the same options to resume it")
    for split in counts:
        for kind in ("images", "labels"):
            (out / kind / split).mkdir(parents=True, exist_ok=True)
            for stale in (out / kind / split).glob(".*.tmp"):  # left by a killed run
                stale.unlink(missing_ok=True)
    fileio.write_bytes(manifest_path, json.dumps({**params, "complete": False}, indent=2).encode())

    jobs = [(str(out), cfg, split, i) for split, n in counts.items() for i in range(n)]
    start = time.perf_counter()
    written = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), unit="img", desc="plates")
    try:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing as mp

            ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
            with ctx.Pool(workers) as pool:
                for did in pool.imap_unordered(_write_one, jobs, chunksize=16):
                    written += did
                    if bar is not None:
                        bar.update()
        else:
            for job in jobs:
                written += _write_one(job)
                if bar is not None:
                    bar.update()
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    manifest = {
        **params,
        "complete": True,
        "classes": CLASSES,
        "label_format": "yolo: class cx cy w h, normalised to the image size",
        "splits": {s: {"images": n, "plates": _count_plates(out, s, n)} for s, n in counts.items()},
        "generator": "recipes.plates.generate",
    }
    fileio.write_bytes(manifest_path, json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    manifest["_written"] = written
    manifest["_seconds"] = seconds
    return manifest


def parse_size(text: str) -> tuple[int, int]:
    """``"160x160"`` -> ``(160, 160)`` (width x height)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 160x160") from None
    return w, h


def write_sample(path: str | Path, count: int = 8, side: int = 160, seed: int = 0) -> int:
    """Writes ``count`` rendered test images (``side`` x ``side``, seed ``seed``) side by side into one PNG.

    ``zoo/data/plates_sample.png``, the images every detector export is verified on
    (``zoo.detection.sample_plates``), is ``write_sample("zoo/data/plates_sample.png")``. Returns its size in bytes.
    """
    cfg = GenConfig(seed=seed, width=side, height=side, font=find_font())
    strip = np.concatenate([np.asarray(render_sample(cfg, "test", i)[0].convert("RGB"), np.uint8)
                            for i in range(count)], axis=1)
    return fileio.atomic_write(path, lambda tmp: Image.fromarray(strip).save(tmp, format="PNG", optimize=True))
