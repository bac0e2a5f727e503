"""Layers shared by every PyTorch architecture of the zoo.

Convolutions pad like TensorFlow's ``padding="same"`` (the extra row/column of an
even total goes bottom/right) so that the Keras twin, and the LCE flatbuffer made
from it, see exactly the same pixels; ``padding=p`` (an int) pads ``p`` on every side
as PyTorch's ``nn.Conv2d`` does, for weights trained that way (ReActNet's).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SignSTE", "ste_sign", "approx_sign", "magnitude_aware_sign", "xnor_weight_scale",
           "magnitude_aware_sign_unclipped", "dorefa", "same_pad", "Conv2d", "BinaryConv2d", "BatchNorm2d",
           "LearnableBias", "RSign", "RPReLU", "max_pool_same", "avg_pool_same", "max_pool_ceil", "channel_shuffle",
           "final_map_side", "LearnedRescale", "PooledShortcut", "QUANTIZERS", "BINARY_INPUT_QUANTIZERS",
           "BINARY_WEIGHT_QUANTIZERS"]


def _sign(x: torch.Tensor) -> torch.Tensor:
    # larq's sign: 0 -> +1. Built from a comparison so exporters see plain ops (Sign maps 0 to 0).
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def _plain(x: torch.Tensor) -> bool:
    """True when no gradient is needed or an exporter traces: use plain ops, no autograd.Function."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling() or not x.requires_grad


class SignSTE(torch.autograd.Function):
    """sign(x) with sign(0) = +1; gradient passed straight through where |x| <= clip."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, clip: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.clip = clip
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.clip).to(grad.dtype), None


def ste_sign(x: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """Binarizes to ±1 (0 -> +1) with the straight-through estimator (larq's ``ste_sign``)."""
    if _plain(x):
        return _sign(x)
    return SignSTE.apply(x, clip)


class ApproxSignFn(torch.autograd.Function):
    """sign(x) with Bi-Real Net's piecewise-polynomial gradient 2 - 2|x| on |x| <= 1."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return _sign(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        a = x.abs()
        return torch.where(a <= 1.0, (1 - a) * 2 * grad, torch.zeros_like(grad))


def approx_sign(x: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """larq's ``approx_sign`` (Bi-Real Net activations); ``clip`` is unused (larq fixes it at 1)."""
    if _plain(x):
        return _sign(x)
    return ApproxSignFn.apply(x)


def _out_channel_mean_abs(w: torch.Tensor) -> torch.Tensor:
    # Keras reduces over every axis but the last (output) one; PyTorch puts outputs first.
    return w.abs().mean(dim=tuple(range(1, w.dim())), keepdim=True)


def magnitude_aware_sign(w: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """larq's ``MagnitudeAwareSign`` (Bi-Real Net weights): mean|w| per output channel (no
    gradient through it) times ``ste_sign(w, clip)``."""
    return _out_channel_mean_abs(w).detach() * ste_sign(w, clip)


def xnor_weight_scale(w: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """larq-zoo's XNOR-Net kernel quantizer: w clipped to [-1, 1], then mean|w| per output
    channel (gradient flows through it) times ``ste_sign`` (clip 1, larq's default)."""
    w = torch.clamp(w, -1.0, 1.0)
    return _out_channel_mean_abs(w) * ste_sign(w, 1.0)


class _IdentityGrad(torch.autograd.Function):
    """Forward ``fn(x)``, backward the identity (larq's ``lambda dy: dy`` custom gradients)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        return fn(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None


def magnitude_aware_sign_unclipped(w: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """larq-zoo's DoReFa-Net kernel quantizer: sign(w) times mean|w| of the whole layer (one
    scale), identity gradient; ``clip`` is unused."""
    def fn(v: torch.Tensor) -> torch.Tensor:
        return _sign(v) * v.abs().mean().detach()

    return fn(w) if _plain(w) else _IdentityGrad.apply(w, fn)


def dorefa(k_bit: int) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """larq's ``DoReFa(k_bit, mode="activations")``: clip to [0, 1] (gradient zero outside),
    round to ``2**k_bit - 1`` levels with an identity gradient."""
    n = 2 ** k_bit - 1

    def quantize(x: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
        x = torch.clamp(x, 0.0, 1.0)
        fn = lambda v: torch.round(v * n) / n  # noqa: E731  (round half to even, as tf.round)
        return fn(x) if _plain(x) else _IdentityGrad.apply(x, fn)

    quantize.__name__ = f"dorefa_{k_bit}bit"
    return quantize


QUANTIZERS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "ste_sign": ste_sign,
    "tanh": lambda x, clip: torch.tanh(x),
    "approx_sign": approx_sign,
    "magnitude_aware_sign": magnitude_aware_sign,
    "xnor_weight_scale": xnor_weight_scale,
    "magnitude_aware_sign_unclipped": magnitude_aware_sign_unclipped,
    "dorefa_2bit": dorefa(2),
}
# Quantizers whose output is ±1 (inputs) or ±1 times a per-channel / per-layer scale (weights):
# a convolution between the two is an XNOR-popcount one (the scale folds into the output).
BINARY_INPUT_QUANTIZERS = frozenset({"ste_sign", "approx_sign"})
BINARY_WEIGHT_QUANTIZERS = frozenset({"ste_sign", "magnitude_aware_sign", "xnor_weight_scale",
                                      "magnitude_aware_sign_unclipped"})


def same_pad(x: torch.Tensor, kernel_size: int, stride: int, dilation: int = 1, value: float = 0.0) -> torch.Tensor:
    """Pads an NCHW tensor the way TensorFlow's ``padding="same"`` does."""
    h, w = x.shape[-2:]
    k = (kernel_size - 1) * dilation + 1
    pads = []
    for size in (w, h):
        total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


def _padding_mode(padding: "str | int") -> tuple[bool, int]:
    """``(same, p)`` of a zoo convolution's ``padding``: TensorFlow's ``"same"``, ``"valid"``, or PyTorch's
    symmetric ``p`` on every side."""
    if padding in ("same", "valid"):
        return padding == "same", 0
    if isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        return False, padding
    raise ValueError(f"unknown padding {padding!r}; expected 'same', 'valid' or a number of pixels (int >= 0)")


class _ZooPadding:
    """How the zoo's convolutions pad: :meth:`pad` is the one place that says so (forward, exporters' checks)."""

    same: bool
    kernel_size: tuple
    stride: tuple
    dilation: tuple
    padding: tuple

    def pad(self, x: torch.Tensor, value: float = 0.0) -> torch.Tensor:
        """``x`` padded as this convolution pads its input, with ``value``."""
        if self.same:
            return same_pad(x, self.kernel_size[0], self.stride[0], self.dilation[0], value=value)
        p = self.padding[0]
        return F.pad(x, (p, p, p, p), value=value) if p else x


class Conv2d(_ZooPadding, nn.Conv2d):
    """A float convolution with TensorFlow-style ``same`` (or ``valid``) padding, or PyTorch's
    symmetric ``padding=p``.

    ``trainable=False`` freezes the kernel (``requires_grad=False``; it still counts as a
    parameter, as Keras counts non-trainable weights): QuickNet's fixed blur-pool filters.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = False, padding: "str | int" = "same", trainable: bool = True) -> None:
        same, p = _padding_mode(padding)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=p, groups=groups, bias=bias)
        self.same = same
        if not trainable:
            self.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.weight, self.bias, self.stride, 0, 1, self.groups)


class BatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` that, like Keras' ``BatchNormalization(scale=..., center=...)``, may
    drop its learned scale (gamma fixed at 1) and/or offset (beta fixed at 0).

    Args:
        num_features: Channels.
        eps: Added to the variance (Keras' default is 1e-3, PyTorch's 1e-5).
        momentum: PyTorch's convention: ``1 - `` Keras' momentum.
        scale: Learn gamma.
        center: Learn beta.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, scale: bool = True,
                 center: bool = True) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=True)
        self.scale, self.center = scale, center
        if not scale:
            del self.weight
            self.register_parameter("weight", None)
        if not center:
            del self.bias
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if getattr(self, "weight", None) is not None:
            nn.init.ones_(self.weight)
        if getattr(self, "bias", None) is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}, center={self.center}"


class BinaryConv2d(_ZooPadding, nn.Conv2d):
    """The zoo's one quantized convolution (a twin of ``larq.layers.QuantConv2D``).

    Inputs and weights pass through a quantizer of :data:`QUANTIZERS` (``"ste_sign"``:
    ±1 with sign(0)=+1 and the straight-through estimator; ``"approx_sign"``;
    ``"magnitude_aware_sign"``; ``"tanh"``; ... or ``None`` for real values).
    The quantized input is padded with ``pad_value`` (real inputs always with 0):
    +1 lets LCE's bit-packed kernels skip a correction (our default), 0 matches
    larq-zoo's trained weights.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel side.
        stride: Stride.
        groups: Convolution groups.
        pad_value: Value of the padded border of the quantized input.
        input_quantizer: A :data:`QUANTIZERS` name or ``None``.
        weight_quantizer: A :data:`QUANTIZERS` name or ``None``.
        clip: Where the straight-through estimator stops passing gradients (larq's
            ``clip_value``; also the ``WeightClip`` of the Keras twin).
        dilation: Dilation rate.
        padding: ``"same"`` (TensorFlow's), ``"valid"``, or an int: that many pixels on every
            side, as PyTorch's ``nn.Conv2d(padding=p)`` (for weights trained so).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, pad_value: float = 1.0, input_quantizer: Optional[str] = "ste_sign",
                 weight_quantizer: Optional[str] = "ste_sign", clip: float = 1.0, dilation: int = 1,
                 padding: "str | int" = "same") -> None:
        same, p = _padding_mode(padding)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=p, dilation=dilation, groups=groups,
                         bias=False)
        for q in (input_quantizer, weight_quantizer):
            if q is not None and q not in QUANTIZERS:
                raise ValueError(f"unknown quantizer {q!r}; expected one of {sorted(QUANTIZERS)} or None")
        self.pad_value = float(pad_value)
        self.input_quantizer = input_quantizer
        self.weight_quantizer = weight_quantizer
        self.clip = clip
        self.same = same

    @property
    def is_binary(self) -> bool:
        """True when inputs are ±1 and weights ±1 (times a scale): an XNOR-popcount convolution."""
        return self.input_quantizer in BINARY_INPUT_QUANTIZERS and self.weight_quantizer in BINARY_WEIGHT_QUANTIZERS

    def weight_scale(self) -> Optional[torch.Tensor]:
        """The scale of binary weights (``quantized_weight() == sign(weight) * weight_scale()``),
        broadcastable to the kernel; ``None`` for plain ±1 weights (or weights that are not binary)."""
        w = self.weight
        if self.weight_quantizer == "magnitude_aware_sign":
            return _out_channel_mean_abs(w)
        if self.weight_quantizer == "xnor_weight_scale":
            return _out_channel_mean_abs(torch.clamp(w, -1.0, 1.0))
        if self.weight_quantizer == "magnitude_aware_sign_unclipped":
            return w.abs().mean().reshape(1, 1, 1, 1)
        return None

    def quantized_weight(self) -> torch.Tensor:
        w = self.weight
        return w if self.weight_quantizer is None else QUANTIZERS[self.weight_quantizer](w, self.clip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_quantizer is not None:
            x = QUANTIZERS[self.input_quantizer](x, self.clip)
        x = self.pad(x, self.pad_value if self.input_quantizer is not None else 0.0)
        return F.conv2d(x, self.quantized_weight(), None, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", pad_value={self.pad_value}, input_quantizer={self.input_quantizer}"
                f", weight_quantizer={self.weight_quantizer}, clip={self.clip}"
                + ("" if self.same or self.padding[0] else ", valid"))


class LearnableBias(nn.Module):
    """``x + bias`` with one learned bias per channel (dim 1): ReActNet's learnable shift.

    Args:
        channels: Channels of the input.
        trainable: Learn the bias (False: it stays 0 in training, the ablation without the shift).
    """

    def __init__(self, channels: int, trainable: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias.reshape(-1, *(1,) * (x.dim() - 2))

    def extra_repr(self) -> str:
        return str(self.bias.numel())


class RSign(LearnableBias):
    """The learnable threshold of ReActNet's RSign (Liu et al., ECCV 2020): ``sign(x + bias)``,
    a per-channel threshold of ``-bias``.

    The module shifts (``x + bias``); the sign is taken by the ``BinaryConv2d`` it feeds (its
    input quantizer, ``approx_sign`` in ReActNet), so the convolution stays one XNOR-popcount op:
    in LCE the shift is an ``ADD`` right before ``LceQuantize`` (or folded into the op before it),
    in ONNX an ``Add`` before the sign.
    """


class RPReLU(nn.Module):
    """ReActNet's RPReLU (Liu et al., ECCV 2020): a shift, a per-channel PReLU, a shift.

    ``shift_out(prelu(shift_in(x)))``, i.e. ``x - gamma + zeta`` above ``gamma`` and
    ``beta (x - gamma) + zeta`` below, with ``gamma = -shift_in.bias``, ``beta = prelu.weight``
    and ``zeta = shift_out.bias``.

    Args:
        channels: Channels of the input.
        init: Initial PReLU slope (PyTorch's and the authors' 0.25).
        trainable_shifts: Learn the shifts (False: they stay 0, a plain PReLU).
    """

    def __init__(self, channels: int, init: float = 0.25, trainable_shifts: bool = True) -> None:
        super().__init__()
        self.shift_in = LearnableBias(channels, trainable_shifts)
        self.prelu = nn.PReLU(channels, init)
        self.shift_out = LearnableBias(channels, trainable_shifts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shift_out(self.prelu(self.shift_in(x)))


# --- pooling, shuffles and map sizes shared by several families --------------------------------


def max_pool_same(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """TensorFlow's ``MaxPool2D(padding="same")``: the border never wins the max."""
    return F.max_pool2d(same_pad(x, kernel_size, stride, value=-math.inf), kernel_size, stride)


def avg_pool_same(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """TensorFlow's ``AvgPool2D(padding="same")``: padded pixels are left out of the count.

    PyTorch's ``count_include_pad=False`` would pad symmetrically; TF puts the odd
    pixel bottom/right, so divide the zero-padded sum by the padded count of ones.
    """
    summed = F.avg_pool2d(same_pad(x, kernel_size, stride), kernel_size, stride)
    ones = torch.ones_like(x[:1, :1])
    count = F.avg_pool2d(same_pad(ones, kernel_size, stride), kernel_size, stride)
    return summed / count


def max_pool_ceil(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pool, stride 2, padded like Keras' ``padding="same"`` on odd sides."""
    return F.max_pool2d(x, 2, 2, ceil_mode=True)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: channel ``i * (C // groups) + j`` moves to ``j * groups + i``."""
    if groups == 1:
        return x
    n, c, h, w = x.shape
    return x.reshape(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def final_map_side(input_size: int, model: str) -> int:
    """Side of the last map of an AlexNet stem (11x11 stride-4 "same" conv, then three 3x3 stride-2
    "valid" max-pools): the kernel size of the first fully-connected layer (Binary AlexNet, XNOR-Net).

    Raises:
        ValueError: The input is too small for the three pools.
    """
    side = math.ceil(input_size / 4)
    for _ in range(3):
        side = (side - 3) // 2 + 1
    if side < 1:
        raise ValueError(f"input_size {input_size} is too small for {model}'s three 3x3 max-pools (>= 64)")
    return side


class LearnedRescale(nn.Module):
    """XNOR-Net++-style learned scale factors (Bulat & Tzimiropoulos, 2019), the strong baseline's.

    The scale is the outer product of per-channel, per-row and per-column factors,
    so it depends on the feature map size the model is built for. The factors are
    stored 1-D (as in the Keras twin) so weight transfer needs no reshape.

    Args:
        channels: Output channels of the convolution.
        height: Output rows of the convolution.
        width: Output columns of the convolution.
    """

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.scale_h = nn.Parameter(torch.ones(height))
        self.scale_w = nn.Parameter(torch.ones(width))
        self.scale_c = nn.Parameter(torch.ones(channels))

    def forward(self, conv_input: torch.Tensor, conv_output: torch.Tensor) -> torch.Tensor:
        scale = self.scale_c[:, None, None] * self.scale_h[None, :, None] * self.scale_w[None, None, :]
        return conv_output * scale


class PooledShortcut(nn.Module):
    """The downsampling shortcut of Bi-Real Net and ReActNet-18: 2x2 average pool (same) -> float 1x1 conv -> BN.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        bn: Keyword arguments of the BatchNorm (Bi-Real Net's and ReActNet-18's differ).
    """

    def __init__(self, in_channels: int, out_channels: int, bn: dict) -> None:
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 1)
        self.bn = BatchNorm2d(out_channels, **bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(avg_pool_same(x, 2, 2)))
