"""What every conversion shares: its report, its errors, the verification batch and
tolerances, and the atomic write of the output file.

Tolerances (checked on a fixed, seeded batch of ``VERIFY_BATCH`` images):

- Float models (no binary convolution): ``max |exported - source| <= FLOAT_ATOL +
  FLOAT_RTOL * max |source|`` on the logits, and every top-1 must agree.
- Binary models: a sign flips wherever a pre-activation lies within rounding of 0,
  and one flip can move a logit by a lot, so the logits are not compared
  elementwise; at least ``BINARY_MIN_AGREEMENT`` of the batch must keep its top-1
  class (3 of 4 images).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from typing import Callable, Optional

import numpy as np

__all__ = [
    "ConversionError", "ConversionReport", "VERIFY_BATCH", "VERIFY_SEED", "FLOAT_ATOL", "FLOAT_RTOL",
    "BINARY_MIN_AGREEMENT", "sample_batch", "reference_outputs", "compare", "check_tolerance", "has_sign_inputs",
    "check_target",
]

VERIFY_BATCH = 4
VERIFY_SEED = 0
FLOAT_ATOL = 1e-3
FLOAT_RTOL = 1e-4
BINARY_MIN_AGREEMENT = 0.75


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

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines (what ``bnnzoo convert`` prints)."""
        packed = "LceBconv2d ops" if self.format == "tflite" else "bit-packed binary convs"
        return "\n".join([
            f"format        {self.format}",
            f"file          {self.path} ({self.size_bytes / 1e6:.3f} MB, {self.size_bytes} bytes)",
            f"binary convs  {self.binary_convs} in the model, {self.lce_bconv2d} {packed}"
            + (f", {self.lce_quantize} LceQuantize ops" if self.format == "tflite" else ""),
            f"time          {self.seconds:.2f} s (conversion + verification)",
            f"verification  max |diff| {self.max_abs_diff:.3g}, top-1 agreement "
            f"{self.top1_agreement:.2f} on {self.batch} images of {self.input_size}x{self.input_size}",
        ])


def sample_batch(input_size: int, batch: int = VERIFY_BATCH, seed: int = VERIFY_SEED) -> np.ndarray:
    """The fixed NCHW float32 batch every conversion is verified on (standard normal)."""
    return np.random.default_rng(seed).standard_normal((batch, 3, input_size, input_size)).astype(np.float32)


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

        return any(isinstance(m, BinaryConv2d) and m.input_quantizer == "ste_sign" for m in model.modules())
    import larq as lq

    return any(isinstance(getattr(layer, "input_quantizer", None), lq.quantizers.SteSign) for layer in model.layers)


def check_tolerance(fmt: str, binary: bool, diff: float, agreement: float, reference: np.ndarray) -> None:
    """Raises ConversionError when the exported outputs are past the tolerances above."""
    if not np.isfinite(diff):
        raise ConversionError(f"{fmt} verification failed: the exported model gives non-finite outputs")
    if binary:
        if agreement < BINARY_MIN_AGREEMENT:
            raise ConversionError(
                f"{fmt} verification failed: top-1 agreement {agreement:.2f} < {BINARY_MIN_AGREEMENT} "
                f"(max |diff| {diff:.3g}); the file was not written")
        return
    tol = FLOAT_ATOL + FLOAT_RTOL * float(np.abs(reference).max())
    if diff > tol or agreement < 1.0:
        raise ConversionError(
            f"{fmt} verification failed: max |diff| {diff:.3g} > {tol:.3g} or top-1 agreement "
            f"{agreement:.2f} < 1 on a float model; the file was not written")


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


