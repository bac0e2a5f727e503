"""The preprocessing a set of weights expects, as data: ``zoo.transforms(model_or_tag)``.

One :class:`Preprocess` value describes it (input side, resize, crop, mean, std); calling it
turns a PIL image into the ``(3, H, W)`` float tensor the model takes, and
:meth:`Preprocess.to_dict` is what a deploy bundle's ``preprocess.json`` records for the
device runner (``converters/rpi/run.py`` applies the same steps with numpy). ``bnnzoo eval``,
``bnnzoo detect`` and ``bnnzoo deploy`` all take their preprocessing from here, files
included: :func:`open_image` is the one decoder of ``eval``'s image folders and ``detect``'s
images, and run.py's ``load_image`` mirrors it step for step (``tests/test_api.py`` checks the
three give the same tensor for the same file and weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Union

from .registry import get_config
from .weights import CROP_PCT, IMAGENET_MEAN, IMAGENET_STD, WeightMismatchError, Weights, assumed_record

__all__ = ["Preprocess", "transforms", "to_rgb", "open_image", "UnreadableImageError", "IMAGENET_MEAN",
           "IMAGENET_STD", "CROP_PCT"]


class UnreadableImageError(ValueError):
    """A file that cannot be decoded as an image (missing, truncated, corrupt, too large, not an image)."""


def to_rgb(image):
    """An 8-bit RGB copy of any Pillow image, upright.

    EXIF rotation is applied; 16-bit and float greyscale are rescaled to 8 bits (Pillow's own
    conversion clips them, which turns a 16-bit image white); transparent pixels are composited
    over black (what the plate detectors were trained on); CMYK, greyscale and palette images
    are converted.
    """
    import numpy as np
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001  a broken EXIF block is no reason to refuse the pixels
        pass
    mode = image.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float64)
        if mode == "F":
            top = 1.0 if a.size and float(np.nanmax(a)) <= 1.0 else 255.0
        else:
            top = 65535.0 if mode.startswith("I;16") or (a.size and a.max() > 255) else 255.0
        image = Image.fromarray(np.clip(np.nan_to_num(a) / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")
    return image.convert("RGB")


def open_image(path) -> "Any":
    """The image in file ``path`` as an upright 8-bit RGB Pillow image (:func:`to_rgb`).

    Raises:
        UnreadableImageError: The file is missing, not an image, corrupt, truncated or a
            possible decompression bomb (one line, naming the file).
    """
    return _decode(path)[0]


def _decode(path, draft: "tuple[int, int] | None" = None) -> "tuple[Any, tuple[int, int]]":
    """:func:`open_image`, optionally decoded at a reduced JPEG scale; also the upright full size."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            size = image.size
            if image.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientations that swap width and height
                size = size[::-1]
            if draft is not None:
                image.draft("RGB", draft)
            image.load()
            return to_rgb(image), size
    except Exception as e:  # noqa: BLE001  truncated or corrupt files raise many types: one line each
        detail = " ".join(str(e).split())[:160]
        if isinstance(e, Image.DecompressionBombError):
            detail += "; downscale it first"
        raise UnreadableImageError(f"cannot read {path} as an image ({type(e).__name__}: {detail})") from None


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
        jpeg_draft: A JPEG file is decoded at the smallest DCT scale still at least
            ``input_size`` on both sides (Pillow's ``draft``) before resizing: what the plate
            detectors' training reader does, so their inputs match training (:meth:`read`).
        interpolation: Resampling filter of the resize (``"bilinear"``, the one a deploy
            bundle's ``run.py`` implements too).
    """

    input_size: int
    resize: str = "shorter"
    crop_pct: float = CROP_PCT
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    jpeg_draft: bool = False
    interpolation: str = "bilinear"

    def __call__(self, image) -> "Any":
        import numpy as np
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.array(image).transpose(2, 0, 1)))

    def array(self, image) -> "Any":
        """The preprocessed image as an HWC float32 numpy array (what TFLite takes)."""
        import numpy as np
        from PIL import Image

        image = to_rgb(image)
        size = self.input_size
        resample = {"bilinear": Image.BILINEAR}[self.interpolation]
        if self.resize == "squash":
            image = image.resize((size, size), resample)
        else:
            side = int(round(size / self.crop_pct))
            w, h = image.size
            scale = side / min(w, h)
            image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)
            w, h = image.size
            left, top = (w - size) // 2, (h - size) // 2
            image = image.crop((left, top, left + size, top + size))
        x = np.asarray(image, dtype=np.float32) * np.float32(1 / 255)
        return ((x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)).astype(np.float32)

    def read(self, path) -> "tuple[Any, tuple[int, int]]":
        """The preprocessed image of file ``path`` (HWC float32) and the upright file's ``(width, height)``.

        Raises:
            UnreadableImageError: The file cannot be decoded.
        """
        image, size = _decode(path, (self.input_size, self.input_size) if self.jpeg_draft else None)
        return self.array(image), size

    def to_dict(self) -> dict[str, Any]:
        """The ``preprocess.json`` of a deploy bundle (read by ``converters/rpi/run.py``)."""
        d = asdict(self)
        return {"input_size": self.input_size, "resize": int(round(self.input_size / self.crop_pct)),
                "crop": "center" if self.resize == "shorter" else "none", "mode": d["resize"],
                "interpolation": self.interpolation, "color": "RGB", "scale": 1 / 255,
                "mean": [float(m) for m in self.mean], "std": [float(s) for s in self.std],
                "jpeg_draft": self.jpeg_draft}


def _of_weights(w: Weights, input_size: int | None = None) -> Preprocess:
    # The plate detectors' training reader decodes JPEGs at a reduced scale first (recipes.plates).
    detector = bool(w.arch) and get_config(w.arch).task == "detect"
    return Preprocess(input_size=input_size or w.input_size, resize=w.resize, crop_pct=w.crop_pct, mean=tuple(w.mean),
                      std=tuple(w.std), jpeg_draft=detector, interpolation=w.interpolation)


def transforms(model_or_tag: Union[str, Weights, Any]) -> Preprocess:
    """The preprocessing the weights of a model expect (timm's ``create_transform``, as data).

    Args:
        model_or_tag: A model from ``zoo.load`` (its ``zoo_weights`` record, at the size it is
            built for; initialised weights: its family's training reader's preprocessing, ImageNet's
            for a classifier), ``"arch.tag"``, a bare ``"arch"`` (its default weights), or a
            :class:`zoo.weights.Weights` record.

    Returns:
        A callable: PIL image -> ``(3, H, W)`` float tensor.

    Raises:
        zoo.weights.WeightMismatchError: An unknown ``arch.tag``.
        TypeError: Neither a model with a record or a config, a name nor a ``Weights``.
    """
    from .weights import input_size_of, lookup

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
            return _of_weights(assumed_record(cfg))
    w = getattr(model_or_tag, "zoo_weights", None)
    if w is not None:
        return _of_weights(w, input_size_of(model_or_tag))
    cfg = getattr(model_or_tag, "zoo_config", None)
    if cfg is None:
        raise TypeError("transforms() takes a model from zoo.load (or one saved with zoo.save), 'arch.tag' or a "
                        f"zoo.weights.Weights, not {type(model_or_tag).__name__} with no zoo_weights record")
    return _of_weights(assumed_record(cfg))
