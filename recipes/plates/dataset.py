"""Reads the plate data set written by ``recipes.plates.generate`` (or any YOLO-layout folder).

Layout: ``images/<split>/*.{jpg,png,...}`` with ``labels/<split>/<same stem>.txt``
holding one ``class cx cy w h`` line per plate (normalised). Each image is resized
(squashed, so normalised labels stay valid) to ``input_size x input_size``, converted
to RGB and scaled to ``[-1, 1]``: :func:`load_rgb` then :func:`to_model_input`. Evaluation and
``bnnzoo detect`` read files with ``zoo.transforms`` instead, which gives the same tensor on the
files this reader trains on (``tests/test_api.py``) and also turns EXIF-rotated photos upright.

Bad input never stops a batch half-way: an unreadable image is skipped (its item is
``None`` and :func:`collate` drops it), grayscale/RGBA/palette images are converted,
16-bit images scaled to 8 bits, large images resized, boxes reaching outside the image clipped and empty ones dropped,
malformed label lines ignored; each case is counted in ``dataset.warnings``.

Cited work: Im & Lee (2018), a 1-bit YOLO-style Korean license-plate detector.
"""

from __future__ import annotations

import collections
import warnings as _warnings
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

# One exception for an unreadable image file, whichever reader met it (this one, zoo.transforms's
# decoder for eval and detect): callers catch one class.
from zoo.transforms import UnreadableImageError
from zoo.weights import DETECTOR_MEAN, DETECTOR_STD

__all__ = ["PlatesDataset", "collate", "DataError", "UnreadableImageError", "IMAGE_SUFFIXES", "MEAN", "STD",
           "to_rgb", "load_rgb", "to_model_input"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
# Pixels scaled to [-1, 1]: the preprocessing zoo.weights records for every detector.
MEAN, STD = DETECTOR_MEAN, DETECTOR_STD
MIN_SIDE = 1e-4  # a box narrower than this (normalised) after clipping is dropped


class DataError(ValueError):
    """Data that cannot be used: a missing or empty folder."""


# --- the training reader's preprocessing (eval and bnnzoo detect: zoo.transforms, the same tensor) -


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB.

    Transparent images (RGBA, LA, palette) are composited on black; 16-bit and 32-bit
    grayscale is scaled to 8 bits (Pillow's own conversion clips it, which turns a
    16-bit image white); other modes use Pillow's conversion.
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "P", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (0, 0, 0))
        out.paste(rgba, mask=rgba.getchannel("A"))
        return out
    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        top = float(a.max()) if a.size else 0.0
        if img.mode.startswith("I;16") or 255 < top <= 65535:
            a = a / 257.0
        elif img.mode == "F" and top <= 1.0:
            a = a * 255.0
        elif top > 65535:
            a = a * (255.0 / top)
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | Path, input_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reads an image as the detector sees it.

    The image is converted with :func:`to_rgb` and resized (squashed, so normalised
    boxes stay valid) to ``input_size x input_size``, bilinear; JPEGs far larger than
    that are decoded at a reduced scale first (Pillow's ``draft``).

    Returns:
        The ``(S, S, 3)`` uint8 RGB image and the file's own ``(width, height)``.

    Raises:
        UnreadableImageError: The file is missing, truncated, corrupt, too large for
            Pillow's decompression-bomb limit, or not an image.
    """
    try:
        with Image.open(path) as img:
            size = img.size
            img.draft("RGB", (input_size, input_size))  # JPEG: decode large images small
            img = to_rgb(img)
            if img.size != (input_size, input_size):
                img = img.resize((input_size, input_size), Image.Resampling.BILINEAR)
            return np.array(img, dtype=np.uint8), size
    except Exception as e:  # truncated, corrupt, a decompression bomb or not an image at all
        detail = " ".join(str(e).split())[:160]
        if isinstance(e, Image.DecompressionBombError):
            detail += "; downscale it first"
        raise UnreadableImageError(f"cannot read {path} as an image ({type(e).__name__}: {detail})") from None


def to_model_input(image: np.ndarray) -> np.ndarray:
    """``(..., H, W, 3)`` uint8 RGB -> ``(..., 3, H, W)`` float32 scaled to ``[-1, 1]`` (``MEAN``, ``STD``)."""
    x = np.moveaxis(np.asarray(image), -1, -3).astype(np.float32) / np.float32(255)
    mean = np.asarray(MEAN, np.float32)[:, None, None]
    std = np.asarray(STD, np.float32)[:, None, None]
    return np.ascontiguousarray((x - mean) / std)


class PlatesDataset(Dataset):
    """Images and plate boxes of one split.

    Args:
        root: Data set folder (holding ``images/`` and ``labels/``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        input_size: Side of the square model input.
        hflip: Randomly mirror images (training); drawn from ``(seed, epoch, index)``.
        seed: Seed of the flips.

    Items are ``(image, boxes)``: a float ``(3, S, S)`` tensor in ``[-1, 1]`` and a
    float ``(M, 5)`` tensor of ``(class, cx, cy, w, h)``, or ``None`` for an unreadable image.

    Raises:
        FileNotFoundError: ``root/images/<split>`` does not exist.
        DataError: It holds no image.
    """

    classes = ("plate",)  # class 0 of the label files

    def __init__(self, root: str | Path, split: str = "train", input_size: int = 160, hflip: bool = False,
                 seed: int = 0) -> None:
        self.root = Path(root)
        self.split = split
        self.input_size = int(input_size)
        self.hflip = hflip
        self.seed = seed
        self.epoch = 0
        image_dir = self.root / "images" / split
        if not image_dir.is_dir():
            raise FileNotFoundError(f"{image_dir} does not exist: generate the data with "
                                    f"`bnnzoo data plates --out {self.root}` or point at a YOLO-layout folder")
        self.images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                             and not p.name.startswith("."))
        if not self.images:
            raise DataError(f"{image_dir} holds no image ({', '.join(IMAGE_SUFFIXES)}): "
                            "generate the data first or check the split name")
        self.label_dir = self.root / "labels" / split
        self.warnings: collections.Counter = collections.Counter()
        # What a detector trained on it records (zoo.weights.Weights): the whole image squashed, pixels in [-1, 1].
        self.preprocess = dict(mean=MEAN, std=STD, crop_pct=1.0, resize="squash")
        self.description = f"plates ({self.root.resolve().name}, YOLO layout)"

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Changes the flips drawn (call once per epoch)."""
        self.epoch = int(epoch)

    def _warn(self, kind: str, detail: str) -> None:
        if not self.warnings[kind]:
            _warnings.warn(f"{detail} (further cases are only counted in dataset.warnings[{kind!r}])", stacklevel=3)
        self.warnings[kind] += 1

    def read_labels(self, image_path: Path) -> np.ndarray:
        """The ``(M, 5)`` boxes of an image: clipped to the image, empty and malformed ones dropped."""
        path = self.label_dir / (image_path.stem + ".txt")
        if not path.exists():
            self._warn("missing_label", f"{path} is missing; the image is taken to hold no plate")
            return np.zeros((0, 5), np.float32)
        rows = []
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            self._warn("unreadable_label", f"cannot read {path}; the image is taken to hold no plate")
            return np.zeros((0, 5), np.float32)
        for line in lines:
            if not line.strip():
                continue
            try:
                values = [float(v) for v in line.split()]
            except ValueError:
                values = []
            if len(values) != 5 or not np.isfinite(values).all():
                self._warn("malformed_label", f"{path}: line {line.strip()[:40]!r} is not 'class cx cy w h'")
                continue
            c, cx, cy, w, h = values
            x0, y0, x1, y1 = cx - abs(w) / 2, cy - abs(h) / 2, cx + abs(w) / 2, cy + abs(h) / 2
            cl = np.clip([x0, y0, x1, y1], 0.0, 1.0)
            if (cl != [x0, y0, x1, y1]).any():
                self._warn("box_clipped", f"{path}: a box reaches outside the image and was clipped")
            if cl[2] - cl[0] < MIN_SIDE or cl[3] - cl[1] < MIN_SIDE:
                self._warn("box_dropped", f"{path}: a box is empty (after clipping) and was dropped")
                continue
            rows.append([c, (cl[0] + cl[2]) / 2, (cl[1] + cl[3]) / 2, cl[2] - cl[0], cl[3] - cl[1]])
        return np.asarray(rows, np.float32).reshape(-1, 5)

    def load_image(self, path: Path) -> Optional[np.ndarray]:
        """The image as ``(S, S, 3)`` uint8 RGB (:func:`load_rgb`), or ``None`` when it cannot be read."""
        try:
            return load_rgb(path, self.input_size)[0]
        except UnreadableImageError as e:
            self._warn("unreadable_image", f"{e}; skipped")
            return None

    def __getitem__(self, index: int):
        path = self.images[index]
        image = self.load_image(path)
        if image is None:
            return None
        boxes = self.read_labels(path)
        if self.hflip:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            if rng.random() < 0.5:
                image = image[:, ::-1]
                boxes[:, 1] = 1.0 - boxes[:, 1]
        return torch.from_numpy(to_model_input(image)), torch.from_numpy(boxes)


def collate(items: Sequence) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Stacks images and keeps the per-image boxes as a list; unreadable items (``None``) are dropped.

    Returns:
        ``(images (B, 3, S, S), [boxes (M_i, 5)])``; ``B`` may be 0 when every item was bad.
    """
    good = [it for it in items if it is not None]
    if not good:
        return torch.zeros(0, 3, 1, 1), []
    return torch.stack([x for x, _ in good]), [b for _, b in good]
