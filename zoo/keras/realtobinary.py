"""Real-to-Binary ResNet-18 in Keras, twin of ``zoo.torch.realtobinary``.

Martinez et al., "Training Binary Neural Networks with Real-to-Binary Convolutions",
ICLR 2020. Layer names are the PyTorch module paths, so weights transfer by name.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from ..registry import ModelConfig
from .layers import batch_norm, binary_conv, conv

__all__ = ["LearnedRescale", "build"]

layers = tf.keras.layers


class LearnedRescale(layers.Layer):
    """XNOR-Net++-style learned scale factors (twin of ``zoo.torch.realtobinary.LearnedRescale``).

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


def _half_block(x: tf.Tensor, out_channels: int, stride: int, name: str, *, input_quantizer: Optional[str],
                weight_quantizer: Optional[str], scaling: str, scaling_r: int, pad_value: float) -> tf.Tensor:
    """BN -> quantized conv -> scaling -> PReLU, plus the (downsampling) shortcut."""
    in_channels = x.shape[-1]
    shortcut = x
    if in_channels != out_channels:
        shortcut = layers.AveragePooling2D(2, 2, padding="same")(x)
        shortcut = conv(out_channels, 1, name=name + "shortcut.conv")(shortcut)
        shortcut = batch_norm(name=name + "shortcut.bn")(shortcut)
    conv_input = batch_norm(name=name + "bn")(x)
    y = binary_conv(out_channels, 3, stride, name=name + "conv", pad_value=pad_value,
                    input_quantizer=input_quantizer, weight_quantizer=weight_quantizer)(conv_input)
    if scaling == "gate":
        # Computed on the real-valued conv input, which inference has anyway (Section 4.3).
        z = layers.GlobalAveragePooling2D()(conv_input)
        z = layers.Dense(in_channels // scaling_r, activation="relu", use_bias=False, name=name + "scale.reduce")(z)
        z = layers.Dense(out_channels, activation="sigmoid", use_bias=False, name=name + "scale.expand")(z)
        y = layers.Multiply()([y, layers.Reshape((1, 1, out_channels))(z)])
    elif scaling == "learned":
        y = LearnedRescale(name=name + "scale")(y)
    elif scaling != "none":
        raise ValueError(f"unknown scaling {scaling!r}; expected 'gate', 'learned' or 'none'")
    y = layers.PReLU(shared_axes=[1, 2], name=name + "act")(y)
    return layers.Add()([y, shortcut])


def build(cfg: ModelConfig) -> tf.keras.Model:
    """Builds the Keras Real-to-Bin network described by ``cfg`` (layer names = PyTorch module paths)."""
    arch = dict(cfg.arch)
    width = arch.pop("width", 64)
    stem_activation = arch.pop("stem_activation", "prelu")
    half = dict(input_quantizer=arch.pop("input_quantizer", "ste_sign"),
                weight_quantizer=arch.pop("weight_quantizer", "ste_sign"), scaling=arch.pop("scaling", "gate"),
                scaling_r=arch.pop("scaling_r", 8), pad_value=arch.pop("pad_value", 1.0))
    if arch:
        raise TypeError(f"realtobinary takes no option {sorted(arch)[0]!r}")
    inputs = tf.keras.Input((cfg.input_size, cfg.input_size, 3))
    x = conv(width, 7, 2, name="stem.conv")(inputs)
    x = batch_norm(name="stem.bn")(x)
    if stem_activation == "prelu":
        x = layers.PReLU(shared_axes=[1, 2], name="stem.act")(x)
    elif stem_activation == "relu":
        x = layers.ReLU()(x)
    else:
        raise ValueError(f"unknown stem_activation {stem_activation!r}; expected 'prelu' or 'relu'")
    x = layers.MaxPooling2D(3, 2, padding="same")(x)
    ch = width
    for i in range(8):
        stride = 2 if i in (2, 4, 6) else 1
        x = _half_block(x, ch * stride, stride, f"blocks.{i}.a.", **half)
        ch *= stride
        x = _half_block(x, ch, 1, f"blocks.{i}.b.", **half)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(cfg.num_classes, name="classifier")(x)
    return tf.keras.Model(inputs, outputs, name=cfg.name)

