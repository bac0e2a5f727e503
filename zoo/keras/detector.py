"""The plate detector in Keras (larq), twin of ``zoo.torch.detector`` (Im & Lee, 2018).

Layer names are the PyTorch module paths (``layers.3.conv``, ``layers.3.bn``, ``head``),
and the head's NHWC map is flattened exactly as the PyTorch model flattens its
permuted map, so both return the same ``(N, G*G*A*5)`` vector (decoded by
``zoo.detection.decode``).
"""

from __future__ import annotations

import tensorflow as tf

from ..models import check_detector_config
from ..registry import ModelConfig
from .layers import batch_norm, binary_conv, conv


def build(cfg: ModelConfig) -> tf.keras.Model:
    """Builds the Keras plate detector described by ``cfg``.

    Raises:
        ValueError: ``cfg.num_classes`` is not the head's flattened output length.
    """
    check_detector_config(cfg)
    arch = cfg.arch
    binary_from = arch.get("binary_from", 2)
    slope = arch.get("negative_slope", 0.1)
    layers = tf.keras.layers
    inputs = tf.keras.Input((cfg.input_size, cfg.input_size, 3))
    x = inputs
    strides = tuple(arch.get("strides") or ()) or (1,) * len(arch["widths"])
    for i, (width, pool, stride) in enumerate(zip(arch["widths"], arch["pools"], strides)):
        p = f"layers.{i}."
        binary = i >= binary_from
        if binary:
            layer = binary_conv(width, 3, stride, name=p + "conv", pad_value=arch.get("pad_value", 1.0))
        else:
            layer = conv(width, 3, stride, name=p + "conv")
        x = batch_norm(name=p + "bn")(layer(x))
        if not binary or arch.get("binary_activation", False):
            x = layers.LeakyReLU(alpha=slope)(x)
        if pool:
            x = layers.MaxPool2D(2)(x)
    x = conv(len(arch["anchors"]) * 5, 1, name="head", use_bias=True)(x)
    outputs = layers.Reshape((-1,))(x)
    return tf.keras.Model(inputs, outputs, name=cfg.name or "plates_detector")
