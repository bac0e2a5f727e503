"""MobileNet-v1 in Keras, twin of ``zoo.torch.mobilenet`` (Howard et al., arXiv:1704.04861)."""

from __future__ import annotations

import tensorflow as tf

from ..models import MOBILENET_BLOCKS as BLOCKS
from ..registry import ModelConfig
from .layers import batch_norm, conv


def build(cfg: ModelConfig) -> tf.keras.Model:
    """Builds the Keras MobileNet-v1 described by ``cfg`` (layer names = PyTorch module paths)."""
    alpha, depth = cfg.arch.get("alpha", 1.0), cfg.arch.get("depth", 13)
    dropout = cfg.arch.get("dropout", 1e-3)
    layers = tf.keras.layers
    inputs = tf.keras.Input((cfg.input_size, cfg.input_size, 3))
    ch = int(32 * alpha)
    x = conv(ch, 3, 2, name="stem.conv")(inputs)
    x = layers.ReLU(6.0)(batch_norm(name="stem.bn")(x))
    for i, (out, stride) in enumerate(BLOCKS[:depth]):
        p = f"blocks.{i}."
        x = layers.DepthwiseConv2D(3, stride, padding="same", use_bias=False, name=p + "dw")(x)
        x = layers.ReLU(6.0)(batch_norm(name=p + "dw_bn")(x))
        x = conv(int(out * alpha), 1, name=p + "pw")(x)
        x = layers.ReLU(6.0)(batch_norm(name=p + "pw_bn")(x))
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(cfg.num_classes, name="classifier")(x)
    return tf.keras.Model(inputs, outputs, name=cfg.name)
