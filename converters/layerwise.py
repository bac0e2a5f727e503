"""Layer-by-layer verification of an exported file against its PyTorch source.

An end-to-end comparison of a binary network says little: one sign that float drift
flips near 0 can move a logit a lot, and a wrong layer can hide behind the top-1
class. Each converter therefore runs its file with the inputs and outputs of every
binary convolution exposed (``FileOp``), and :func:`check_layerwise` runs the PyTorch
model on the same batch with each binary convolution fed the file's own input signs:

- **binary convolutions**, exactly: the module's integer sums on the file's input,
  passed through the post-ops the file fused into the op (LCE's per-channel
  multiplier and bias, a clamp), must equal the file's output up to the float
  rounding of those post-ops (``BINARY_RTOL`` of the largest output the op can give);
  one wrong weight or tap moves a sum by 2.
- **float segments** (what lies between binary convolutions, fed the file's values
  at each binary convolution): the signs the PyTorch model computes for each binary
  convolution's input must equal the file's wherever the value is farther than float
  tolerance from 0, and the final outputs must agree within ``FLOAT_ATOL +
  FLOAT_RTOL * max |output|`` (``converters.verify``).

Because every binary convolution is fed the file's signs, float drift cannot be
amplified by a flipped sign: what remains is float rounding, so a difference past
the tolerances is a wrong layer, named by its module path.

An int8 file (``converters.to_tflite(..., int8=True)``) computes its float segments in int8
over ranges that are not the model's: its binary convolutions are checked the same way (an
int8 output within half a quantization step of the post-ops' value, saturated), its float
segments are not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from .verify import BINARY_MIN_AGREEMENT, FLOAT_ATOL, FLOAT_RTOL, ConversionError

__all__ = ["BINARY_RTOL", "SIGN_ATOL", "SIGN_RTOL", "FileOp", "LayerCheck", "LayerwiseResult", "check_layerwise",
           "binary_modules"]

# Float rounding allowed on a binary convolution's fused post-ops, relative to its largest possible output
# (fan-in x multiplier): a wrong sum moves by 2 x multiplier, >= 4e-4 of that at a fan-in of 3x3x512.
BINARY_RTOL = 1e-5
# A sign the file and the source disagree on counts only where the source's value is farther than this from 0.
SIGN_ATOL = 1e-3
SIGN_RTOL = 1e-4


@dataclass(frozen=True)
class FileOp:
    """One binary convolution as the exported file computes it, on a batch.

    Attributes:
        module: Path of the source module (``"stages.0.dense.1.conv"``).
        op: The file's op (``"LceBconv2d"``, ``"Conv"``).
        inputs: The op's input signs, NCHW ±1 float32, before padding.
        outputs: What the op wrote, NCHW float32 (None when the file keeps it bit-packed:
            it is then checked as the next binary convolution's input signs).
        pad_value: The value the op pads its input with (may differ from the module's
            when the file corrects a zero padding after the op).
        post: Maps the integer sums (NCHW float64) to what the op writes (fused post-ops).
        scale: Magnitude the post-ops give one unit of a sum, per element or per
            channel (broadcast against NCHW); sets the rounding tolerance.
        step: Quantization step of an int8 output (given dequantized in ``outputs``, ``post``
            saturating to its range): the rounding to it adds half a step to the tolerance.
    """

    module: str
    op: str
    inputs: np.ndarray
    outputs: Optional[np.ndarray]
    pad_value: float
    post: Callable[[np.ndarray], np.ndarray] = lambda s: s
    scale: np.ndarray = field(default_factory=lambda: np.ones(()))
    step: float = 0.0


@dataclass(frozen=True)
class LayerCheck:
    """One row of the verification table."""

    layer: str
    op: str
    max_diff: float
    differing: int
    total: int

    @property
    def ok(self) -> bool:
        return self.differing == 0


@dataclass(frozen=True)
class LayerwiseResult:
    """Every check of one file on one runtime, in the order the source runs them."""

    runtime: str
    checks: tuple[LayerCheck, ...]

    @property
    def first_failure(self) -> Optional[LayerCheck]:
        return next((c for c in self.checks if not c.ok), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None

    def table(self) -> str:
        """The checks as an aligned text table (what ``bnnzoo verify`` prints)."""
        rows = [("layer", "op", "max diff", "outputs differing")] + [
            (c.layer, c.op, f"{c.max_diff:.3g}", f"{c.differing} of {c.total}") for c in self.checks]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)

    def error(self, fmt: str) -> str:
        """One line naming the first divergent layer ("" when every check passed)."""
        c = self.first_failure
        if c is None:
            return ""
        return (f"{fmt} layer-wise verification failed on {self.runtime}: first divergent layer {c.layer} "
                f"({c.op}), {c.differing} of {c.total} outputs differ (max |diff| {c.max_diff:.3g}); "
                f"nothing was written")


def binary_modules(model) -> list[str]:
    """Paths of the model's binary (XNOR-popcount) convolutions, in definition order."""
    from zoo.torch.layers import BinaryConv2d

    return [name for name, m in model.named_modules() if isinstance(m, BinaryConv2d) and m.is_binary]


def _unexposed_signs(model) -> bool:
    """Whether the model quantizes the input of a convolution it has no binary op for: a sign with real
    weights, or DoReFa's k-bit rounding (every input quantizer but tanh is a step function)."""
    from zoo.torch.layers import BinaryConv2d

    return any(isinstance(m, BinaryConv2d) and m.input_quantizer not in (None, "tanh") and not m.is_binary
               for m in model.modules())


def _sums(module, signs, pad_value: float):
    """Integer sums of a binary convolution on ±1 inputs padded with ``pad_value``."""
    import torch
    import torch.nn.functional as F

    x = module.pad(signs, pad_value)  # as the module pads: TensorFlow's same, valid, or PyTorch's symmetric
    # ±1 weights: a scaled binary quantizer's scale (magnitude-aware sign, XNOR-Net) is a post-op, as in LCE.
    signed = torch.where(module.weight >= 0, 1.0, -1.0).to(module.weight.dtype)
    return F.conv2d(x, signed, None, module.stride, 0, module.dilation, module.groups)


def check_layerwise(model, x_nchw: np.ndarray, ops: dict[str, FileOp], outputs: np.ndarray,
                    runtime: str, float_segments: bool = True) -> LayerwiseResult:
    """Checks a file's binary convolutions and float segments against ``model`` (module docstring).

    Args:
        model: The zoo PyTorch source model.
        x_nchw: The batch the file ran on.
        ops: The file's binary convolutions, by module path.
        outputs: The file's final outputs on the batch.
        runtime: What ran the file, for messages (``"LCE optimized kernels"``).
        float_segments: Also check the float segments (False for a file that computes them in
            int8 over ranges of its own: its binary convolutions are then the only checks).

    Raises:
        ConversionError: A binary convolution of the model has no op in the file.
    """
    import torch

    names = binary_modules(model)
    missing = [n for n in names if n not in ops]
    if missing:
        raise ConversionError(f"binary convolution {missing[0]} of the model has no binary op in the file "
                              f"({len(missing)} of {len(names)} missing); nothing was written")
    modules = dict(model.named_modules())
    checks: list[LayerCheck] = []
    handles = []
    previous = ["the input"]

    def pre_hook(name):
        def hook(module, args):
            op = ops[name]
            if float_segments:
                x = args[0].detach().numpy()
                tol = SIGN_ATOL + SIGN_RTOL * float(np.abs(x).max(initial=0.0))
                signs = np.where(x >= 0, 1.0, -1.0)
                wrong = (signs != op.inputs) & (np.abs(x) > tol)
                checks.append(LayerCheck(name, f"input signs (float ops after {previous[0]})",
                                         float(np.abs(x[signs != op.inputs]).max(initial=0.0)), int(wrong.sum()),
                                         wrong.size))
            return (torch.from_numpy(np.ascontiguousarray(op.inputs, np.float32)),)
        return hook

    def post_hook(name):
        def hook(module, args, output):
            op = ops[name]
            previous[0] = name
            if op.outputs is None:
                return output
            sums = _sums(module, args[0], op.pad_value).detach().numpy().astype(np.float64)
            expected = op.post(sums)
            diff = np.abs(np.asarray(op.outputs, np.float64) - expected)
            # Kernels round on the scale of the largest sum (fan-in x multiplier), whatever this sum is.
            fan_in = module.weight[0].numel()
            tol = BINARY_RTOL * (fan_in * np.abs(op.scale) + np.abs(expected)) + 1e-6 + op.step / 2
            wrong = diff > tol
            checks.append(LayerCheck(name, op.op, float(diff.max(initial=0.0)), int(wrong.sum()), wrong.size))
            return output
        return hook

    try:
        for name in names:
            handles.append(modules[name].register_forward_pre_hook(pre_hook(name)))
            handles.append(modules[name].register_forward_hook(post_hook(name)))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                source = model(torch.from_numpy(x_nchw)).numpy()
        finally:
            model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    outputs = np.asarray(outputs, np.float64)
    if outputs.shape != source.shape:
        raise ConversionError(f"the file gives outputs of shape {outputs.shape}, the source {source.shape}")
    if not float_segments:
        return LayerwiseResult(runtime, tuple(checks))
    diff = np.abs(outputs - source)
    max_diff = float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan")
    if _unexposed_signs(model):
        # Convs with quantized inputs and no binary op are not exposed: a step (a sign near 0, a 2-bit
        # rounding) crossed there by float drift moves the outputs, so only the top-1 class is compared
        # (BINARY_MIN_AGREEMENT of the batch, as end to end).
        wrong = outputs.argmax(-1) != source.argmax(-1)
        bad = int(wrong.sum()) if wrong.mean() > 1 - BINARY_MIN_AGREEMENT or not np.isfinite(max_diff) else 0
        checks.append(LayerCheck("outputs", f"top-1 after {previous[0]} (quantized-input convs without a "
                                 "binary op: not compared layer by layer)", max_diff, bad, wrong.size))
    else:
        tol = FLOAT_ATOL + FLOAT_RTOL * float(np.abs(source).max())
        wrong = ~(diff <= tol)  # NaN counts as wrong
        checks.append(LayerCheck("outputs", f"float ops after {previous[0]}", max_diff, int(wrong.sum()),
                                 wrong.size))
    return LayerwiseResult(runtime, tuple(checks))


def raise_first(results: Sequence[LayerwiseResult], fmt: str) -> None:
    """Raises ConversionError for the first failing result; one optimized-kernel-only failure is named as such.

    ``results`` hold the runs of one file on several runtimes, the reference one last.
    """
    failed = [r for r in results if not r.ok]
    if not failed:
        return
    reference = results[-1]
    first = failed[0]
    if len(results) > 1 and reference.ok:
        c = first.first_failure
        raise ConversionError(
            f"{fmt} file is right on {reference.runtime} but wrong on {first.runtime}: layer {c.layer} ({c.op}), "
            f"{c.differing} of {c.total} outputs differ (max |diff| {c.max_diff:.3g}); a device would compute it "
            f"wrong; nothing was written")
    raise ConversionError(first.error(fmt))
