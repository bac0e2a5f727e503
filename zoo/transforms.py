"""The preprocessing a set of weights expects, as data: ``zoo.transforms(model_or_tag)``.

One :class:`Preprocess` value describes it (input side, resize, crop, mean, std); calling it
turns a PIL image into the ``(3, H, W)`` float tensor the model takes, and
:meth:`Preprocess.to_dict` is what a deploy bundle's ``preprocess.json`` records for the
device runner (``converters/rpi/run.py`` applies the same steps with numpy). ``bnnzoo eval``,
``bnnzoo detect`` and ``bnnzoo deploy`` all take their preprocessing from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Union

from .registry import get_config
from .weights import WeightMismatchError, Weights

__all__ = ["Preprocess", "transforms", "IMAGENET_MEAN", "IMAGENET_STD", "CROP_PCT"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875  # ImageNet's 256 -> 224: resize the shorter side to input_size / 0.875, centre-crop


@dataclass(frozen=True)
class Preprocess:
    """PIL image -> normalised ``(3, input_size, input_size)`` float32 tensor.

    Attributes:
        input_size: Side of the square the model takes.
        resize: ``"shorter"``: scale the shorter side to ``round(input_size / crop_pct)`` and
            centre-crop (aspect kept); ``"squash"``: scale the whole image to the square (detectors,
            whose boxes are relative to the whole image).
        crop_pct: Share of the resized shorter side kept by the crop (1.0: no margin).
        mean: Per-channel RGB mean subtracted from pixels scaled to [0, 1].
        std: Per-channel RGB std the centred pixels are divided by.
    """

    input_size: int
    resize: str = "shorter"
    crop_pct: float = CROP_PCT
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __call__(self, image) -> "Any":
        import numpy as np
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.array(image).transpose(2, 0, 1)))

    def array(self, image) -> "Any":
        """The preprocessed image as an HWC float32 numpy array (what TFLite takes)."""
        import numpy as np
        from PIL import Image

        image = image.convert("RGB")
        size = self.input_size
        if self.resize == "squash":
            image = image.resize((size, size), Image.BILINEAR)
        else:
            side = int(round(size / self.crop_pct))
            w, h = image.size
            scale = side / min(w, h)
            image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
            w, h = image.size
            left, top = (w - size) // 2, (h - size) // 2
            image = image.crop((left, top, left + size, top + size))
        x = np.asarray(image, dtype=np.float32) * np.float32(1 / 255)
        return ((x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """The ``preprocess.json`` of a deploy bundle (read by ``converters/rpi/run.py``)."""
        d = asdict(self)
        return {"input_size": self.input_size, "resize": int(round(self.input_size / self.crop_pct)),
                "crop": "center" if self.resize == "shorter" else "none", "mode": d["resize"],
                "interpolation": "bilinear", "color": "RGB", "scale": 1 / 255,
                "mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std]}


def _of_weights(w: Weights, input_size: int | None = None) -> Preprocess:
    family = get_config(w.arch).family
    return Preprocess(input_size=input_size or w.input_size, resize="squash" if family == "detector" else "shorter",
                      crop_pct=w.crop_pct, mean=tuple(w.mean), std=tuple(w.std))


def transforms(model_or_tag: Union[str, Weights, Any]) -> Preprocess:
    """The preprocessing the weights of a model expect (timm's ``create_transform``, as data).

    Args:
        model_or_tag: A model from ``zoo.load`` (its ``zoo_weights``; without registered weights,
            ImageNet's preprocessing at its ``zoo_config.input_size``), ``"arch.tag"``, a bare
            ``"arch"`` (its default weights), or a :class:`zoo.weights.Weights`.

    Returns:
        A callable: PIL image -> ``(3, H, W)`` float tensor.

    Raises:
        zoo.weights.WeightMismatchError: An unknown ``arch.tag``.
        TypeError: Neither a zoo model, a name nor a ``Weights``.
    """
    from .weights import lookup

    if isinstance(model_or_tag, Weights):
        return _of_weights(model_or_tag)
    if isinstance(model_or_tag, str):
        arch, _, tag = model_or_tag.partition(".")
        cfg = get_config(arch)
        try:
            return _of_weights(lookup(cfg, tag or "default")[1])
        except WeightMismatchError:
            if tag:
                raise
            return Preprocess(cfg.input_size, "squash" if cfg.family == "detector" else "shorter")
    cfg = getattr(model_or_tag, "zoo_config", None)
    if cfg is None:
        raise TypeError("transforms() takes a model from zoo.load, 'arch.tag' or a zoo.weights.Weights, "
                        f"not {type(model_or_tag).__name__}")
    w = getattr(model_or_tag, "zoo_weights", None)
    if w is not None:
        return _of_weights(w, cfg.input_size)
    return Preprocess(cfg.input_size, "squash" if cfg.family == "detector" else "shorter")
