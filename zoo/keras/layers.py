"""Keras layers shared by every architecture of the zoo, twins of ``zoo.torch.layers``.

Every layer that holds weights is named after the PyTorch module path that holds
the same weights (``"stage1.block0.conv"``), which is all weight transfer needs.
"""

from __future__ import annotations

from typing import Optional

import larq as lq
import tensorflow as tf

__all__ = ["quantizer", "binary_conv", "conv", "GroupConv2D", "batch_norm", "BINARY_CONV_ATTR"]

# Set on the Keras layer so the converter can count binary convolutions.
BINARY_CONV_ATTR = "zoo_is_binary"


def quantizer(name: Optional[str], clip: float = 1.0):
    """The larq quantizer matching a ``zoo.torch.layers.QUANTIZERS`` name."""
    if name is None:
        return None
    if name == "ste_sign":
        return lq.quantizers.SteSign(clip_value=clip)
    if name == "tanh":
        return tf.keras.layers.Activation("tanh")
    raise ValueError(f"unknown quantizer {name!r}; expected 'ste_sign', 'tanh' or None")


def binary_conv(filters: int, kernel_size: int = 3, strides: int = 1, *, name: str, groups: int = 1,
                pad_value: float = 1.0, input_quantizer: Optional[str] = "ste_sign",
                weight_quantizer: Optional[str] = "ste_sign", clip: float = 1.0) -> tf.keras.layers.Layer:
    """A ``larq.layers.QuantConv2D`` equivalent to ``zoo.torch.layers.BinaryConv2d``.

    Binary weights get larq's ``weight_clip`` constraint, as in training with larq.
    """
    binary = input_quantizer == "ste_sign" and weight_quantizer == "ste_sign"
    layer = lq.layers.QuantConv2D(
        filters, kernel_size, strides=strides, padding="same", groups=groups,
        pad_values=float(pad_value) if input_quantizer is not None else 0.0,
        input_quantizer=quantizer(input_quantizer, clip), kernel_quantizer=quantizer(weight_quantizer, clip),
        kernel_constraint=lq.constraints.WeightClip(clip) if weight_quantizer == "ste_sign" else None,
        use_bias=False, name=name,
    )
    setattr(layer, BINARY_CONV_ATTR, binary)
    return layer


class GroupConv2D(tf.keras.layers.Layer):
    """A grouped float convolution computed as one convolution per group.

    Keras' ``Conv2D(groups=g)`` becomes a single grouped CONV_2D in TFLite, which
    only the slow reference kernel runs; split -> per-group convs -> concat maps to
    the optimized kernels. The kernel is stored whole, shaped like Conv2D's
    ``(kh, kw, in / groups, out)``, so weight transfer treats both alike.
    """

    def __init__(self, filters: int, kernel_size: int, strides: int = 1, groups: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size, self.strides, self.groups = filters, kernel_size, strides, groups

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
        ys = [tf.nn.conv2d(x, w, self.strides, "SAME") for x, w in zip(xs, ws)]
        return tf.concat(ys, axis=-1)

    def get_config(self) -> dict:
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "groups": self.groups}


def conv(filters: int, kernel_size: int, strides: int = 1, *, name: str, groups: int = 1,
         use_bias: bool = False) -> tf.keras.layers.Layer:
    """A float convolution with ``same`` padding (twin of ``zoo.torch.layers.Conv2d``)."""
    if groups > 1:
        if use_bias:
            raise ValueError("grouped convolutions of the zoo carry no bias")
        return GroupConv2D(filters, kernel_size, strides, groups, name=name)
    return tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias, name=name)


def batch_norm(*, name: str, momentum: float = 0.9, epsilon: float = 1e-5) -> tf.keras.layers.Layer:
    """``BatchNormalization`` with PyTorch's default epsilon so both frameworks agree."""
    return tf.keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name=name)
