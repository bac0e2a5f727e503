"""License plates found by a zoo detector in any runtime (the library of ``bnnzoo detect``).

Every image goes through the preprocessing its weights record, ``zoo.transforms(model)``
(the one ``bnnzoo eval`` and a deploy bundle's run.py apply: upright RGB, squashed to the
model's input, normalised with the weights' mean and std; for the plate detectors the
training reader's ``[-1, 1]``), every runtime's raw outputs through the one decoding
(``zoo.detection.decode``), and the boxes are scaled back to the image's own (upright) pixels
(the whole image is squashed, so a normalised box scales by width and height).

Runtimes: ``torch`` runs the PyTorch model; ``onnx`` and ``tflite`` run an export of it,
converted (and verified, boxes included) by ``converters`` into a cache keyed by the
weights, config and library versions (``$BNNZOO_CACHE``, else ``$XDG_CACHE_HOME/bnnzoo``,
else ``~/.cache/bnnzoo``; ``--no-cache``: a temporary folder), or a file given with
``--exported``. A cached export is used only when its size and sha256 match those recorded
beside it when it was converted (``NAME.sha256.json``); otherwise it is rebuilt. An image
that cannot be read is reported and skipped; the others are still written (exit status 1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from zoo.transforms import UnreadableImageError

logger = logging.getLogger(__name__)

__all__ = ["RUNTIMES", "DEFAULT_DETECTOR", "DRAW_MAX_SIDE", "ImageDetections", "default_weights", "load_detector",
           "export_cached",
           "predictor", "detect", "model_input", "read_display", "draw_boxes", "save_png"]

RUNTIMES = ("torch", "onnx", "tflite")
SUFFIXES = {"onnx": ".onnx", "tflite": ".tflite"}
BATCH = 16  # images per inference call (bounds memory for long image lists)
DRAW_MAX_SIDE = 4096  # larger images are drawn downscaled; printed boxes stay in the image's own pixels
# What `bnnzoo detect` (and the demo) runs without --model: the 1-bit detector with the most AP@0.5 per 32-bit
# MAC in the plates report's Pareto table (reports/plates/report.md; README, "License-plate detection").
DEFAULT_DETECTOR = "plates_detector_1bit_light"


@dataclass
class ImageDetections:
    """The plates found in one image.

    Attributes:
        path: The image file.
        size: Its ``(width, height)`` in pixels.
        boxes: ``(M, 4)`` ``(x0, y0, x1, y1)`` in the image's pixels, best score first.
        scores: ``(M,)`` objectness probabilities.
    """

    path: str
    size: tuple[int, int]
    boxes: np.ndarray
    scores: np.ndarray


def default_weights(name: str) -> Optional[str]:
    """The ``NAME.TAG`` that ``weights="default"`` picks for detector ``name`` (None: none are registered).

    Raises:
        ValueError: ``name`` is not a detector.
    """
    from zoo.weights import WeightMismatchError, lookup

    try:
        return lookup(_detector_config(name), "default")[0]
    except WeightMismatchError:
        return None


def _detector_config(name: str):
    import zoo

    cfg = zoo.get_config(name)
    if cfg.family != "detector":
        detectors = [n for n in zoo.list_models() if zoo.get_config(n).family == "detector"]
        raise ValueError(f"{name} is a {cfg.family} model, not a detector: use one of {', '.join(detectors)}")
    return cfg


def load_detector(name: str, weights: Optional[str] = None):
    """A detector (PyTorch, eval mode), with weights when given.

    Args:
        name: A model reference (``zoo.refs``): a registered detector, ``NAME.TAG``, a folder or
            ``.safetensors`` file saved from a detector, or ``hf-hub:owner/repo``.
        weights: Weights of a bare ``NAME``: a tag, a folder, a ``.safetensors`` file or ``hf-hub:owner/repo``.

    Raises:
        ValueError: ``name`` is not a detector, or weights were given twice.
    """
    import zoo

    if name in zoo.list_models(include_stages=True):
        _detector_config(name)  # before any weights are fetched
    model = zoo.load(name, weights=weights)
    _detector_config(model.zoo_config.name)
    return model


def export_cached(model, fmt: str, folder: Optional[str | Path] = None) -> Path:
    """The verified ``fmt`` export of ``model``, converted once per weights and config
    (``converters.cache``, which logs what it converts or reuses).

    Args:
        model: A zoo PyTorch detector.
        fmt: ``"onnx"`` (binary weights bit-packed) or ``"tflite"`` (LCE).
        folder: Where exports live (default: the cache of the module docstring).

    Raises:
        converters.ConversionError: The export failed its verification (nothing cached).
    """
    from converters.cache import export_cached as cached

    return cached(model, fmt, folder).path


def _check_exported(path: Path, fmt: str, model) -> None:
    """One-line errors for a given export that is not a file of ``fmt``, not of this model's shape, or damaged
    (see ``converters.verify.read_export``); a note logged when no recorded sha256 vouches for it."""
    from converters.verify import read_export

    cfg = model.zoo_config
    if not path.is_file():
        raise FileNotFoundError(f"exported file {path} does not exist")
    if path.suffix not in SUFFIXES.values():
        raise ValueError(f"--exported takes an .onnx or .tflite export of the model, not {path.name}: export it with "
                         f"`bnnzoo convert {cfg.name} --to {fmt}`")
    if path.suffix != SUFFIXES[fmt]:
        other = next(k for k, v in SUFFIXES.items() if v == path.suffix)
        raise ValueError(f"--runtime {fmt} runs {SUFFIXES[fmt]} files, not {path.name}: pass --runtime {other} "
                         f"or a {SUFFIXES[fmt]} file")
    _, note = read_export(path)
    if fmt == "onnx":
        import onnxruntime as ort

        def shapes() -> tuple:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return session.get_inputs()[0].shape[-1], session.get_outputs()[0].shape[-1]
    else:
        from zoo.tfenv import use_legacy_keras

        use_legacy_keras()  # importing LCE imports TensorFlow
        from larq_compute_engine.tflite.python.interpreter import Interpreter

        def shapes() -> tuple:
            interpreter = Interpreter(path.read_bytes())
            return interpreter.input_shapes[0][1], interpreter.output_shapes[0][-1]
    try:
        side, outputs = shapes()
    except Exception as e:  # noqa: BLE001  the runtime rejects the file, whatever it raises
        raise ValueError(f"{path} is not a {fmt} file its runtime can load ({type(e).__name__}): "
                         f"export it with `bnnzoo convert {cfg.name} --to {fmt}`") from None
    if (side, outputs) != (cfg.input_size, cfg.num_classes):
        raise ValueError(f"{path} takes {side}x{side} images and gives {outputs} outputs, but {cfg.name} here takes "
                         f"{cfg.input_size}x{cfg.input_size} and gives {cfg.num_classes}: pass the model NAME and "
                         f"--weights it was exported from")
    if note:
        logger.info("note: %s", note)


def predictor(model, runtime: str, exported: Optional[str | Path] = None,
              cache: Optional[str | Path] = None) -> Callable[[np.ndarray], np.ndarray]:
    """A function from an NCHW float32 batch to the ``(N, K)`` raw outputs of ``model`` in ``runtime``.

    Args:
        model: A zoo PyTorch detector.
        runtime: One of :data:`RUNTIMES`.
        exported: An ``.onnx`` / ``.tflite`` file of this model to run instead of converting it.
        cache: Folder of converted exports (default: the module docstring's cache).

    Raises:
        ValueError: Unknown runtime, or an ``exported`` file that does not fit.
    """
    from converters.onnx import onnx_predict
    from converters.tflite import tflite_predict
    from converters.verify import reference_outputs

    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    if runtime == "torch":
        if exported:
            raise ValueError("--exported needs --runtime onnx or tflite (torch runs the model itself)")
        return lambda x: reference_outputs(model, x)
    if exported:
        path = Path(exported)
        _check_exported(path, runtime, model)
    else:
        path = export_cached(model, runtime, cache)
    if runtime == "onnx":
        return lambda x: onnx_predict(str(path), x)
    flatbuffer = path.read_bytes()
    return lambda x: tflite_predict(flatbuffer, x)


def detect(paths: Sequence[str | Path], model, predict: Callable[[np.ndarray], np.ndarray],
           score_threshold: float = 0.25, iou_threshold: float = 0.45) -> list:
    """Runs the detector on image files.

    Args:
        paths: Image files.
        model: The zoo detector (its config gives the input size and anchors).
        predict: Raw outputs of a batch (:func:`predictor`).
        score_threshold: Minimum objectness probability kept.
        iou_threshold: NMS overlap above which the weaker box is dropped.

    Returns:
        Per path, in order, its :class:`ImageDetections`, or the
        ``zoo.transforms.UnreadableImageError`` that stopped it being read.
    """
    from zoo.detection import decode

    cfg = model.zoo_config
    results: list = [None] * len(paths)
    readable: list[tuple[int, np.ndarray, tuple[int, int]]] = []
    for i, path in enumerate(paths):
        try:
            x, size = model_input(path, model)
            readable.append((i, x, size))
        except UnreadableImageError as e:
            results[i] = e
    for start in range(0, len(readable), BATCH):
        chunk = readable[start:start + BATCH]
        raw = predict(np.stack([x for _, x, _ in chunk]))
        for (i, _, (w, h)), d in zip(chunk, decode(raw, cfg, score_threshold, iou_threshold)):
            results[i] = ImageDetections(str(paths[i]), (w, h), d.boxes * [w, h, w, h], d.scores)
    return results


def model_input(path: str | Path, model) -> tuple[np.ndarray, tuple[int, int]]:
    """The ``(3, S, S)`` float32 input of ``model`` for image file ``path`` (``zoo.transforms(model)``).

    Returns:
        The input and the upright image's own ``(width, height)``.

    Raises:
        zoo.transforms.UnreadableImageError: The file cannot be read.
    """
    import zoo

    x, size = zoo.transforms(model).read(path)
    return np.ascontiguousarray(x.transpose(2, 0, 1)), size


def read_display(path: str | Path, max_side: int = DRAW_MAX_SIDE) -> tuple:
    """The image to draw on: upright 8-bit RGB (``zoo.transforms.to_rgb``), at most ``max_side`` pixels
    on its long side.

    Returns:
        ``(image, scale)``: a Pillow image and its size over the upright file's own.

    Raises:
        zoo.transforms.UnreadableImageError: The file cannot be read.
    """
    from PIL import Image

    from zoo.transforms import to_rgb

    try:
        with Image.open(path) as img:
            full = img.size
            if img.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientations that swap width and height
                full = full[::-1]
            scale = min(1.0, max_side / max(full))
            if scale < 1:
                img.draft("RGB", (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))))
            rgb = to_rgb(img)
            if scale < 1:
                rgb = rgb.resize((max(1, round(full[0] * scale)), max(1, round(full[1] * scale))),
                                 Image.Resampling.BILINEAR)
            else:
                rgb = rgb.copy()
            return rgb, rgb.size[0] / full[0]
    except Exception as e:  # noqa: BLE001  same causes as open_image
        raise UnreadableImageError(f"cannot read {path} as an image ({type(e).__name__})") from None


def draw_boxes(image, boxes: np.ndarray, scores: Optional[np.ndarray] = None, color: tuple = (230, 30, 30),
               scale: float = 1.0) -> None:
    """Draws ``(M, 4)`` pixel boxes (times ``scale``) on a Pillow image in place, with scores when given."""
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(image)
    side = min(image.size)
    width = max(1, round(side / 160))
    font = ImageFont.load_default(size=max(9, round(side / 22)))
    for j, box in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4) * scale):
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], outline=color, width=width)
        if scores is not None:
            text = f"{float(scores[j]):.2f}"
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            ty = y0 - (bottom - top) - 2 * width if y0 - (bottom - top) - 2 * width >= 0 else y1 + width
            draw.rectangle([x0, ty, x0 + right - left + 2 * width, ty + bottom - top + 2 * width], fill=color)
            draw.text((x0 + width - left, ty + width - top), text, fill=(255, 255, 255), font=font)


def save_png(image, path: str | Path) -> int:
    """Writes a Pillow image as PNG, atomically; returns the bytes written."""
    from zoo.fileio import atomic_write

    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
