"""What every conversion shares: its report, its errors, the verification batch and
tolerances, and the atomic write of the output file.

Every file is first checked layer by layer (``converters.layerwise``: binary
convolutions exactly, float segments within float tolerance), which decides. The
end-to-end outputs on the same fixed, seeded batch of ``VERIFY_BATCH`` images are
then compared and reported beside it:

- Float models (no binary convolution): ``max |exported - source| <= FLOAT_ATOL +
  FLOAT_RTOL * max |source|`` on the logits, and every top-1 must agree.
- Binary models: a sign flips wherever a pre-activation lies within rounding of 0,
  and one flip can move a logit by a lot, so their end-to-end logits and top-1
  agreement are reported only (a right file can disagree there, a wrong one agree:
  the layer-wise check is what tells them apart).

Detectors (family ``"detector"``) are verified on plate images shipped with the zoo
(``zoo.detection.sample_plates``: test images of the synthetic plates data set, seed 0),
preprocessed as the training reader does, and, on top of the rules above,
their outputs must decode (``zoo.detection.decode``) to the same boxes: as many, each
paired one to one with a box at IoU >= ``DETECTION_MIN_IOU`` (0.9) or with all corners
within ``DETECTION_ATOL`` (0.1% of the image side: IoU says nothing about boxes of nearly
zero area, which untrained heads produce). Boxes are compared before non-maximum
suppression, which is the same NumPy code for every runtime: between two overlapping
boxes of nearly equal score it keeps either, so a 1e-6 difference could swap the box
kept without anything being wrong with the export. Each image is decoded at two score
cuts taken from the source's objectness logits, each placed in a gap at least
``2 * DETECTION_MARGIN`` wide between them (a difference below the margin then cannot
move an anchor across the cut):

- the gap nearest the deployment threshold ``DETECTION_SCORE`` (0.25, the default of
  ``bnnzoo detect``);
- the widest gap among the source's ``DETECTION_TOP_K + 1`` best logits, so that at
  least one box is compared even where an untrained model (or noise input) keeps none
  or all anchors at 0.25: a check that compares two empty sets proves nothing.

Float detectors must give the same boxes on every image, binary ones on at least
``BINARY_MIN_AGREEMENT`` of the batch (a sign flip moves a box as it moves a logit).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

import numpy as np

from .litert.flatbuffer import verify as verify_flatbuffer
from .probe import probe

__all__ = [
    "ConversionError", "ConversionReport", "VERIFY_BATCH", "VERIFY_SEED", "FLOAT_ATOL", "FLOAT_RTOL",
    "BINARY_MIN_AGREEMENT", "DETECTION_MIN_IOU", "DETECTION_ATOL", "DETECTION_SCORE", "DETECTION_TOP_K",
    "DETECTION_MARGIN", "sample_batch", "score_cuts",
    "verification_batch", "reference_outputs", "compare", "check_tolerance", "has_sign_inputs", "is_detector",
    "box_agreement", "verify_outputs", "check_target",
]

VERIFY_BATCH = 8
VERIFY_SEED = 0
FLOAT_ATOL = 1e-3
FLOAT_RTOL = 1e-4
BINARY_MIN_AGREEMENT = 0.75
DETECTION_MIN_IOU = 0.9
DETECTION_ATOL = 1e-3
DETECTION_SCORE = 0.25
DETECTION_TOP_K = 5
DETECTION_MARGIN = 1e-3


class ConversionError(RuntimeError):
    """A conversion that produced no trustworthy file (nothing was written)."""


@dataclass(frozen=True)
class ConversionReport:
    """What one conversion produced and how well the file matches its source.

    Attributes:
        format: ``"tflite"`` or ``"onnx"``.
        path: The file written.
        size_bytes: Its size.
        binary_convs: Binary convolutions of the source model.
        lce_bconv2d: ``LceBconv2d`` ops in the TFLite file; for ONNX, binary
            convolutions whose weights were bit-packed (0 without ``bitpack``).
        lce_quantize: ``LceQuantize`` ops in the TFLite file (0 for ONNX).
        seconds: Wall time of the conversion, verification included.
        max_abs_diff: Largest absolute logit difference on the verification batch.
        top1_agreement: Share of the batch whose top-1 class agrees.
        batch: Size of the verification batch.
        input_size: Side of the square input the file takes.
        box_agreement: Detectors: share of the batch whose decoded boxes agree (NaN
            for other models or without verification).
        verify_data: What the verification batch holds.
        layers: The layer-wise checks, one ``converters.layerwise.LayerwiseResult``
            per runtime (empty without verification).
        int8_range: TFLite: ``(min, max)`` every float tensor of an int8 file is quantized over
            (None for a float file).
    """

    format: str
    path: str
    size_bytes: int
    binary_convs: int
    lce_bconv2d: int
    lce_quantize: int
    seconds: float
    max_abs_diff: float
    top1_agreement: float
    batch: int
    input_size: int
    box_agreement: float = float("nan")
    verify_data: str = "standard normal"
    layers: tuple = ()
    int8_range: Optional[tuple] = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [{"runtime": r.runtime, "checks": [asdict(c) for c in r.checks]} for r in self.layers]
        return d

    def summary(self) -> str:
        """A few human-readable lines (what ``bnnzoo convert`` prints)."""
        packed = "LceBconv2d ops" if self.format == "tflite" else "bit-packed binary convs"
        int8 = self.int8_range is not None
        checked = ("binary convs exact, int8 outputs within their rounding; float ops in int8, not compared"
                   if int8 else "binary convs exact, float ops within tolerance")
        return "\n".join([
            f"format        {self.format}",
            f"file          {self.path} ({self.size_bytes / 1e6:.3f} MB, {self.size_bytes} bytes)",
            f"binary convs  {self.binary_convs} in the model, {self.lce_bconv2d} {packed}"
            + (f", {self.lce_quantize} LceQuantize ops" if self.format == "tflite" else ""),
        ] + ([f"int8          int8 input and output, every float tensor quantized over {tuple(self.int8_range)} "
              f"(a file for speed: its outputs are not the model's)"] if int8 else [])
          + ([f"time          {self.seconds:.2f} s (conversion + verification)",
               f"verification  max |diff| {self.max_abs_diff:.3g}, top-1 agreement {self.top1_agreement:.2f} on "
               f"{self.batch} images of {self.input_size}x{self.input_size} ({self.verify_data})"
               + (", reported only" if int8 else "")] if self.batch else
              [f"time          {self.seconds:.2f} s (conversion only: not verified)",
               f"input         {self.input_size}x{self.input_size}"])
          + ([f"boxes         the same on {self.box_agreement:.0%} of the images (IoU >= {DETECTION_MIN_IOU} "
              f"or corners within {DETECTION_ATOL})"]
             if np.isfinite(self.box_agreement) else [])
          + [f"layer-wise    {len(r.checks)} checks passed on {r.runtime} ({checked})" for r in self.layers])


def sample_batch(input_size: int, batch: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> np.ndarray:
    """The fixed NCHW float32 batch every conversion is verified on (standard normal)."""
    return np.random.default_rng(seed).standard_normal((batch, 3, input_size, input_size)).astype(np.float32)


def is_detector(model) -> bool:
    """Whether a zoo model (PyTorch or Keras) is a detector (family ``"detector"``)."""
    return getattr(getattr(model, "zoo_config", None), "family", None) == "detector"


def _plate_images(input_size: int, batch: int) -> np.ndarray:
    """Plate images (``zoo.detection.sample_plates``) in the detectors' preprocessing: pixels in [-1, 1]."""
    from zoo.detection import sample_plates
    from zoo.weights import DETECTOR_MEAN, DETECTOR_STD

    x = sample_plates(input_size, batch).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    mean, std = (np.asarray(v, np.float32)[:, None, None] for v in (DETECTOR_MEAN, DETECTOR_STD))
    return np.ascontiguousarray((x - mean) / std)


def verification_batch(model, input_size: int) -> tuple[np.ndarray, str]:
    """The NCHW float32 batch a conversion of ``model`` is verified on, and what it holds.

    Detectors get rendered plate images (module docstring), other models :func:`sample_batch`.
    """
    if is_detector(model):
        return _plate_images(input_size, VERIFY_BATCH), "plate images (zoo/data/plates_sample.png)"
    return sample_batch(input_size), "standard normal"


def reference_outputs(model, x_nchw: np.ndarray) -> np.ndarray:
    """Logits of the source model on an NCHW batch: PyTorch (eval, no_grad) or Keras (NHWC, inference)."""
    if hasattr(model, "state_dict") and hasattr(model, "modules"):
        import torch

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                return model(torch.from_numpy(x_nchw)).numpy()
        finally:
            model.train(was_training)
    return np.asarray(model(x_nchw.transpose(0, 2, 3, 1), training=False))


def compare(reference: np.ndarray, exported: np.ndarray) -> tuple[float, float]:
    """Max absolute difference and top-1 agreement of two ``(batch, classes)`` arrays."""
    reference, exported = np.asarray(reference, np.float64), np.asarray(exported, np.float64)
    if reference.shape != exported.shape:
        raise ConversionError(f"exported model gives shape {exported.shape}, the source {reference.shape}")
    diff = float(np.abs(reference - exported).max())
    agree = float((reference.argmax(-1) == exported.argmax(-1)).mean())
    return diff, agree


def has_sign_inputs(model) -> bool:
    """Whether any convolution binarizes its input (a zoo PyTorch or Keras model).

    Such models get the binary tolerance even without binary weights: a float
    difference far below any tolerance can still flip a sign and move the outputs.
    """
    if hasattr(model, "named_modules"):
        from zoo.torch.layers import BinaryConv2d

        # Every input quantizer but tanh is a step function (sign, approx_sign, DoReFa's k-bit rounding).
        return any(isinstance(m, BinaryConv2d) and m.input_quantizer not in (None, "tanh") for m in model.modules())
    import larq as lq

    steps = (lq.quantizers.SteSign, lq.quantizers.ApproxSign, lq.quantizers.DoReFa)
    return any(isinstance(getattr(layer, "input_quantizer", None), steps) for layer in model.layers)


def check_tolerance(fmt: str, binary: bool, diff: float, agreement: float, reference: np.ndarray) -> None:
    """Raises ConversionError when the exported outputs are past the tolerances above."""
    if not np.isfinite(diff):
        raise ConversionError(f"{fmt} verification failed: the exported model gives non-finite outputs")
    if binary:  # reported only: the layer-wise check decides (module docstring)
        return
    tol = FLOAT_ATOL + FLOAT_RTOL * float(np.abs(reference).max())
    if diff > tol or agreement < 1.0:
        raise ConversionError(
            f"{fmt} verification failed: max |diff| {diff:.3g} > {tol:.3g} or top-1 agreement "
            f"{agreement:.2f} < 1 on a float model; the file was not written")


def score_cuts(logits: np.ndarray) -> list[float]:
    """The score thresholds of one image (module docstring), from the source's objectness logits."""
    desc = np.sort(np.asarray(logits, np.float64))[::-1]
    mids = (desc[:-1] + desc[1:]) / 2
    wide = desc[:-1] - desc[1:] > 2 * DETECTION_MARGIN
    # Cutting above or below every anchor is also a cut (nothing kept, everything kept).
    cuts = np.concatenate([[desc[0] + 1.0], mids[wide], [desc[-1] - 1.0]])
    deploy = np.log(DETECTION_SCORE / (1 - DETECTION_SCORE))
    chosen = [cuts[int(np.argmin(np.abs(cuts - deploy)))]]
    top = np.nonzero(wide[:DETECTION_TOP_K])[0]
    if top.size:
        j = top[int(np.argmax(desc[top] - desc[top + 1]))]
        chosen.append(mids[j])
    return [float(1 / (1 + np.exp(-c))) for c in chosen]


def box_agreement(model, reference: np.ndarray, exported: np.ndarray) -> float:
    """Share of the batch whose exported outputs decode to the source's boxes (module docstring)."""
    from zoo.detection import decode, same_boxes

    cfg = model.zoo_config
    reference, exported = np.asarray(reference, np.float64), np.asarray(exported, np.float64)
    anchors = reference.shape[1] // 5
    same = 0
    for ref, exp in zip(reference, exported):
        same += all(same_boxes(decode(ref, cfg, t, 1.0, anchors)[0], decode(exp, cfg, t, 1.0, anchors)[0],
                               DETECTION_MIN_IOU, DETECTION_ATOL)
                    for t in score_cuts(ref.reshape(-1, 5)[:, 0]))
    return same / len(reference)


def verify_outputs(fmt: str, model, reference: np.ndarray, exported: np.ndarray) -> tuple[float, float, float]:
    """Compares an export's outputs with the source's on the verification batch.

    Returns:
        ``(max_abs_diff, top1_agreement, box_agreement)``; ``box_agreement`` is NaN for
        models that are not detectors.

    Raises:
        ConversionError: Past any tolerance of the module docstring.
    """
    binary = has_sign_inputs(model)
    diff, agreement = compare(reference, exported)
    check_tolerance(fmt, binary, diff, agreement, reference)
    if not is_detector(model):
        return diff, agreement, float("nan")
    boxes = box_agreement(model, reference, exported)
    needed = BINARY_MIN_AGREEMENT if binary else 1.0
    if boxes < needed:
        n = len(reference)
        raise ConversionError(
            f"{fmt} verification failed: the exported detector decodes to other boxes on {round((1 - boxes) * n)} "
            f"of {n} images (same count, each at IoU >= {DETECTION_MIN_IOU} or within {DETECTION_ATOL}, needed on "
            f"{needed:.0%} of them; max |diff| {diff:.3g}); the file was not written")
    return diff, agreement, boxes


def check_target(path: str) -> str:
    """Absolute output path; one-line errors for a missing or read-only folder.

    Raises:
        FileNotFoundError: The folder does not exist.
        ConversionError: The folder is not writable, or ``path`` is a folder.
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"output folder {folder} does not exist; create it first")
    if os.path.isdir(path):
        raise ConversionError(f"output path {path} is a folder; give a file name")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConversionError(f"output folder {folder} is not writable")
    return path




def read_export(path: str | os.PathLike, runtimes: Sequence[dict] = ({},)) -> tuple[bytes, str]:
    """An export's bytes, checked before any runtime reads them.

    A file with a size and sha256 recorded beside it (``NAME.sha256.json``: ``bnnzoo convert``
    and the export caches write one) must match them; a ``.tflite`` must also be a well-formed
    flatbuffer (:func:`converters.litert.flatbuffer.verify`: LiteRT's and LCE's interpreters
    check neither and crash on a damaged file), and one without a record runs once in a child
    process first (:func:`converters.probe.probe`, with each set of LCE flags in ``runtimes``).

    Returns:
        The bytes, and a note when nothing vouches for them (no record: only the structure of a
        ``.tflite`` could be checked), else ``""``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: One line: the file differs from its record, or is not a valid flatbuffer.
    """
    from zoo import fileio

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"exported file {path} does not exist")
    with open(path, "rb") as f:
        data = f.read()
    match = fileio.recorded(path)
    if match is False:
        raise ValueError(f"{path} does not match the size and sha256 recorded beside it when it was written "
                         f"({fileio.record_path(path).name}): it was modified or damaged; export it again")
    if path.endswith(".tflite"):
        verify_flatbuffer(data, path)
        if not match:
            probe(data, path, runtimes)
    note = "" if match else (f"{path} has no sha256 record beside it ({fileio.record_path(path).name}, which "
                             "`bnnzoo convert` writes): a damaged file could give wrong results unnoticed")
    return data, note
