"""The Keras forms of the zoo's layers, used by ``zoo.keras.translate``.

Every layer that holds weights is named after the PyTorch module path that holds
the same weights (``"stage1.block0.conv"``), which is all weight transfer needs.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import larq as lq
import numpy as np
import tensorflow as tf

__all__ = ["QUANTIZERS", "quantizer", "binary_conv", "ZeroPadCorrectedConv2D", "GroupConv2D", "LearnedRescale",
           "LearnableBias", "batch_norm", "BINARY_CONV_ATTR"]

# Set on the Keras layer so the converter can count binary convolutions.
BINARY_CONV_ATTR = "zoo_is_binary"

# A ``zoo.torch.layers.QUANTIZERS`` name -> the larq quantizer doing the same, given the
# straight-through estimator's clip. One line per quantizer; a name missing here is an
# UnsupportedOpError of the translator.
@lq.utils.set_precision(1)
@lq.utils.register_keras_custom_object
def xnor_weight_scale(x: tf.Tensor) -> tf.Tensor:
    """XNOR-Net's kernel quantizer as larq-zoo writes it: weights clipped to [-1, 1], then the
    mean magnitude of each output channel (gradient through it) times ``ste_sign``."""
    x = tf.clip_by_value(x, -1, 1)
    return tf.reduce_mean(tf.abs(x), axis=[0, 1, 2], keepdims=True) * lq.quantizers.ste_sign(x)


@lq.utils.set_precision(1)
@lq.utils.register_keras_custom_object
def magnitude_aware_sign_unclipped(x: tf.Tensor) -> tf.Tensor:
    """DoReFa-Net's kernel quantizer as larq-zoo writes it: sign times the layer's mean magnitude
    (no gradient through it), identity gradient."""
    scale = tf.stop_gradient(tf.reduce_mean(tf.abs(x)))

    @tf.custom_gradient
    def _sign(x):
        return lq.math.sign(x) * scale, lambda dy: dy

    return _sign(x)


QUANTIZERS: dict[str, Callable[[float], Any]] = {
    "ste_sign": lambda clip: lq.quantizers.SteSign(clip_value=clip),
    "tanh": lambda clip: tf.keras.layers.Activation("tanh"),
    "approx_sign": lambda clip: lq.quantizers.ApproxSign(),
    "magnitude_aware_sign": lambda clip: lq.quantizers.MagnitudeAwareSign(clip_value=clip),
    "xnor_weight_scale": lambda clip: xnor_weight_scale,
    "magnitude_aware_sign_unclipped": lambda clip: magnitude_aware_sign_unclipped,
    "dorefa_2bit": lambda clip: lq.quantizers.DoReFa(k_bit=2, mode="activations"),
}
# Weight quantizers trained without larq's WeightClip constraint (larq-zoo's DoReFa-Net); XNOR's
# clips at 1 whatever the straight-through clip.
_NO_WEIGHT_CLIP = {None, "tanh", "magnitude_aware_sign_unclipped"}
_WEIGHT_CLIP = {"xnor_weight_scale": 1.0}


def quantizer(name: Optional[str], clip: float = 1.0):
    """The larq quantizer matching a ``zoo.torch.layers.QUANTIZERS`` name (None: no quantizer)."""
    if name is None:
        return None
    if name not in QUANTIZERS:
        raise ValueError(f"unknown quantizer {name!r}; expected one of {sorted(QUANTIZERS)} or None")
    return QUANTIZERS[name](clip)


def _sign_of_zero(name: Optional[str]) -> float:
    """What an input quantizer makes of a 0 (the value a ``ZeroPadding2D`` before it pads with)."""
    return 1.0 if name in ("ste_sign", "approx_sign") else 0.0


def binary_conv(filters: int, kernel_size: Any = 3, strides: Any = 1, *, name: str, groups: int = 1,
                pad_value: float = 1.0, input_quantizer: Optional[str] = "ste_sign",
                weight_quantizer: Optional[str] = "ste_sign", clip: float = 1.0,
                binary: Optional[bool] = None, dilation: Any = 1, padding: str = "same",
                padded: Any = ((0, 0), (0, 0))) -> tf.keras.layers.Layer:
    """A ``larq.layers.QuantConv2D`` equivalent to ``zoo.torch.layers.BinaryConv2d``.

    Quantized weights get larq's ``weight_clip`` constraint, as in training with larq.
    ``binary`` (default: both quantizers ``ste_sign``) flags an XNOR-popcount conv, one
    ``LceBconv2d`` in the converted file. A binary convolution with ``pad_value=0`` is a
    :class:`ZeroPadCorrectedConv2D`, which LCE computes right on maps smaller than the
    kernel too (same weights, same outputs).

    ``padded`` (``((top, bottom), (left, right))``, with ``padding="valid"``) says that a
    ``ZeroPadding2D`` before the layer padded its real input (PyTorch's symmetric padding where it
    differs from "same"): the quantizer makes those zeros its sign of 0, +1; a layer whose module pads
    with 0 then subtracts the border's exact constant (:class:`ZeroPadCorrectedConv2D`).

    Raises:
        ValueError: Explicit padding the layer cannot reproduce (a border value other than 0 or its
            quantizer's sign of 0).
    """
    if binary is None:
        binary = input_quantizer == "ste_sign" and weight_quantizer == "ste_sign"
    padded = tuple(tuple(int(v) for v in p) for p in padded)
    explicit = any(map(any, padded))
    border = float(pad_value) if input_quantizer is not None else 0.0
    if explicit and border not in (0.0, _sign_of_zero(input_quantizer)):
        raise ValueError(f"an explicitly padded convolution pads with 0 or {_sign_of_zero(input_quantizer):g}, "
                         f"not {border:g}")
    corrected = border != _sign_of_zero(input_quantizer) if explicit else binary and border == 0.0
    layer = (ZeroPadCorrectedConv2D if corrected else lq.layers.QuantConv2D)(
        filters, kernel_size, strides=strides, padding=padding, groups=groups, dilation_rate=dilation,
        pad_values=0.0 if explicit else border,
        input_quantizer=quantizer(input_quantizer, clip), kernel_quantizer=quantizer(weight_quantizer, clip),
        kernel_constraint=(None if weight_quantizer in _NO_WEIGHT_CLIP else
                           lq.constraints.WeightClip(_WEIGHT_CLIP.get(weight_quantizer, clip))),
        use_bias=False, name=name, **(dict(padded=padded) if corrected and explicit else {}),
    )
    setattr(layer, BINARY_CONV_ATTR, binary)
    return layer


class ZeroPadCorrectedConv2D(lq.layers.QuantConv2D):
    """A zero-padded binary convolution that LCE 0.16 computes right on every map size, and with
    PyTorch's symmetric padding.

    LCE 0.16's optimized kernels (x86 and ARM, default and indirect-bgemm) compute
    zero-padded (``pad_values=0``) binary convolutions wrong when the input map is
    smaller than the kernel (1x1 or 2x2 under 3x3); +1 padding is exact at every size
    (measured by tests/test_layerwise.py, whose plain zero-padded LCE file fails on
    exactly those layers). On such a map this layer pads with +1 and subtracts the exact
    constant the padded taps added::

        out_pad0 = out_pad1 - conv(padding mask, sign(kernel))    # (1, H, W, filters)

    (the mask is 1 on the padded border, 0 inside). The constant depends on the kernel
    only, so LCE's converter folds it: the file holds an ``LceBconv2d`` with +1 padding
    followed by one ``SUB`` of a constant (between two ``RESHAPE``; on a 1x1 map the
    constant is per channel and LCE folds it into the op's bias). Maps at least as large
    as the kernel keep plain zero padding (exact in LCE, no extra op). Weights, their names and the
    outputs are those of ``QuantConv2D(pad_values=0)``, gradients included.

    With ``padded`` (a ``ZeroPadding2D`` before it padded the real input by these
    ``((top, bottom), (left, right))``: PyTorch's symmetric padding of a strided conv, which
    "same" cannot express), the layer is a ``valid`` convolution whose input border quantizes
    to +1, corrected the same way on the border ``padded`` names, at every map size.

    Build it through :func:`binary_conv` (``pad_value=0.0``) on an input of known side.

    Raises:
        ValueError: At build time, for an input of unknown side, or grouped or dilated
            convolutions on a small map (the correction is written for plain ones), naming the layer.
    """

    def __init__(self, *args, pad_values: float = 0.0, padded: Any = ((0, 0), (0, 0)), **kwargs) -> None:
        if pad_values != 0.0:
            raise ValueError(f"{type(self).__name__} is zero-padded; use QuantConv2D for pad_values={pad_values}")
        super().__init__(*args, pad_values=0.0, **kwargs)
        self.padded = tuple(tuple(int(v) for v in p) for p in padded)
        self.corrected = False

    def build(self, input_shape) -> None:
        sides = list(tf.TensorShape(input_shape)[1:3])
        if None in sides:
            raise ValueError(f"{self.name}: a zero-padded binary convolution needs an input of known side "
                             "(LCE 0.16 computes it wrong on maps smaller than the kernel)")
        explicit = any(map(any, self.padded))
        if explicit and self.padding != "valid":
            raise ValueError(f"{self.name}: an input padded before the layer takes padding='valid'")
        small = self.padding == "same" and any(d < k for d, k in zip(sides, self.kernel_size))
        if small or explicit:
            if self.groups != 1 or tuple(self.dilation_rate) != (1, 1):
                raise ValueError(f"{self.name}: a grouped or dilated zero-padded binary convolution on a "
                                 f"{sides[0]}x{sides[1]} map is not supported by LCE 0.16 (wrong on its optimized "
                                 "kernels) and cannot be corrected; use pad_value=1.0")
            self.corrected = True
            if small:
                self.pad_values, self._is_native_padding = 1.0, False
        super().build(input_shape)

    def _border(self, inputs: tf.Tensor) -> tf.Tensor:
        """1 where the input is padding (the +1 the correction takes back), 0 inside; ``(1, H', W', C)``."""
        h, w, c = inputs.shape[1:]
        if self.padding == "same":
            return tf.pad(tf.zeros((1, h, w, c), inputs.dtype), self._get_padding_same(inputs), constant_values=1.0)
        (top, bottom), (left, right) = self.padded
        inner = tf.zeros((1, h - top - bottom, w - left - right, c), inputs.dtype)
        return tf.pad(inner, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=1.0)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        outputs = super().call(inputs)
        if not self.corrected:
            return outputs
        kernel = tf.convert_to_tensor(self.kernel)  # frozen for export (converters.tflite): already quantized
        kernel = kernel if self.kernel_quantizer is None else self.kernel_quantizer(kernel)
        taps = tf.nn.conv2d(self._border(inputs), kernel, self.strides, "VALID")
        if outputs.shape[1] * outputs.shape[2] == 1:  # a 1x1 map: the correction is a per-channel bias
            return outputs - tf.reshape(taps, (-1,))
        bands = self._border_bands(inputs, outputs)
        if bands is not None:
            return _subtract_on_bands(outputs, taps, *bands)
        # Subtracted on the flattened map: LCE 0.16 folds an (H, W, C) constant added right after an
        # LceBconv2d into its per-channel bias, which its interpreter then refuses.
        size = int(np.prod(outputs.shape[1:]))
        flat = tf.reshape(outputs, (-1, size)) - tf.reshape(taps, (1, size))
        return tf.reshape(flat, (-1, *outputs.shape[1:]))

    def _border_bands(self, inputs: tf.Tensor, outputs: tf.Tensor) -> Optional[tuple]:
        """``((top, bottom), (left, right))``: how many output rows / columns at each edge read the explicit
        padding, or None where those bands meet (small maps: the correction is subtracted whole)."""
        if self.padding == "same":
            return None
        bands = []
        for axis, (before, after) in enumerate(self.padded):
            n_in, n_out = inputs.shape[1 + axis], outputs.shape[1 + axis]
            k, s = self.kernel_size[axis], self.strides[axis]
            lo = sum(i * s < before for i in range(n_out))
            hi = sum(i * s + k > n_in - after for i in range(n_out))
            if lo + hi >= n_out:
                return None
            bands.append((lo, hi))
        return tuple(bands)

    def get_config(self) -> dict:
        return {**super().get_config(), "pad_values": 0.0, "padded": self.padded}


def _subtract_on_bands(outputs: tf.Tensor, taps: tf.Tensor, rows: tuple, cols: tuple) -> tf.Tensor:
    """``outputs - taps`` where ``taps`` is zero but on ``rows`` (top, bottom) and ``cols`` (left, right) bands
    of the map: subtracted band by band, so the file stores the bands' constants, not a whole map of them
    (LCE's converter folds each slice of the constant ``taps``)."""
    def split(x: tf.Tensor, axis: int, lo: int, hi: int) -> list:
        n = x.shape[axis]
        cut = lambda a, b: x[:, a:b] if axis == 1 else x[:, :, a:b]  # noqa: E731
        return [cut(a, b) for a, b in ((0, lo), (lo, n - hi), (n - hi, n)) if b > a]

    def along(x: tf.Tensor, t: tf.Tensor, axis: int, lo: int, hi: int, inner) -> tf.Tensor:
        xs, ts = split(x, axis, lo, hi), split(t, axis, lo, hi)
        middle = 1 if lo else 0
        parts = [inner(a, b) if i == middle else a - b for i, (a, b) in enumerate(zip(xs, ts))]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis)

    return along(outputs, taps, 1, *rows, lambda x, t: along(x, t, 2, *cols, lambda a, b: a))


class GroupConv2D(tf.keras.layers.Layer):
    """A grouped float convolution computed as one convolution per group.

    Keras' ``Conv2D(groups=g)`` becomes a single grouped CONV_2D in TFLite, which
    only the slow reference kernel runs; split -> per-group convs -> concat maps to
    the optimized kernels. The kernel is stored whole, shaped like Conv2D's
    ``(kh, kw, in / groups, out)``, so weight transfer treats both alike.
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, groups: int = 2, padding: str = "same",
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.groups = filters, kernel_size, strides, groups
        self.padding = padding

    def build(self, input_shape) -> None:
        in_channels = int(input_shape[-1])
        if in_channels % self.groups or self.filters % self.groups:
            raise ValueError(f"{self.name}: {in_channels} input and {self.filters} output channels "
                             f"do not split into {self.groups} groups")
        self.kernel = self.add_weight(
            name="kernel", shape=(self.kernel_size, self.kernel_size, in_channels // self.groups, self.filters),
            initializer="glorot_uniform")
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        xs = tf.split(inputs, self.groups, axis=-1)
        ws = tf.split(self.kernel, self.groups, axis=-1)
        ys = [tf.nn.conv2d(x, w, self.strides, self.padding.upper()) for x, w in zip(xs, ws)]
        return tf.concat(ys, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "groups": self.groups, "padding": self.padding}


class LearnedRescale(tf.keras.layers.Layer):
    """XNOR-Net++-style learned scale factors (Keras form of ``zoo.torch.layers.LearnedRescale``).

    Holds its three factors itself, 1-D and named like the PyTorch parameters, so
    that weight transfer maps them one to one.
    """

    def build(self, input_shape) -> None:
        _, h, w, c = input_shape
        self.scale_h = self.add_weight(name="scale_h", shape=(h,), initializer="ones", trainable=True)
        self.scale_w = self.add_weight(name="scale_w", shape=(w,), initializer="ones", trainable=True)
        self.scale_c = self.add_weight(name="scale_c", shape=(c,), initializer="ones", trainable=True)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        scale = self.scale_h[:, None, None] * self.scale_w[None, :, None] * self.scale_c[None, None, :]
        return inputs * scale


class LearnableBias(tf.keras.layers.Layer):
    """``x + bias``, one bias per channel along ``axis`` (Keras form of ``zoo.torch.layers.LearnableBias``
    and ``RSign``: the shifts of ReActNet's RSign and RPReLU)."""

    def __init__(self, axis: int = -1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.axis = axis

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[self.axis]),), initializer="zeros",
                                    trainable=True)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        axis = self.axis % inputs.shape.rank
        if axis == inputs.shape.rank - 1:
            return inputs + self.bias
        shape = [1] * inputs.shape.rank
        shape[axis] = -1
        return inputs + tf.reshape(self.bias, shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}


def batch_norm(*, name: str, momentum: float = 0.9, epsilon: float = 1e-5, axis: int = -1,
               affine: bool = True, scale: Optional[bool] = None,
               center: Optional[bool] = None) -> tf.keras.layers.Layer:
    """``BatchNormalization`` with PyTorch's defaults (epsilon 1e-5, momentum 1 - 0.1); ``scale`` /
    ``center`` (default: ``affine``) drop gamma / beta, as ``zoo.torch.layers.BatchNorm2d`` may."""
    return tf.keras.layers.BatchNormalization(axis=axis, momentum=momentum, epsilon=epsilon,
                                              center=affine if center is None else center,
                                              scale=affine if scale is None else scale, name=name)
