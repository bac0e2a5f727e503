"""MeliusNet in Keras/larq, twin of ``zoo.torch.meliusnet``.

Bethge et al., "MeliusNet: Can Binary Neural Networks Achieve MobileNet-level
Accuracy?", arXiv:2001.05936, 2020.

Built from plain Keras layers only, each weight layer named after the PyTorch
module path holding the same weights, so ``zoo.keras.transfer`` maps them by name.
"""

from __future__ import annotations

import tensorflow as tf

from ..models import MELIUSNET_CLIP as CLIP
from ..registry import ModelConfig
from .layers import batch_norm, binary_conv, conv

__all__ = ["build", "channel_shuffle"]

layers = tf.keras.layers


def _max_pool(x: tf.Tensor) -> tf.Tensor:
    # "same" pads odd sides bottom/right, like ceil_mode=True on the PyTorch side.
    return layers.MaxPool2D(2, strides=2, padding="same")(x)


def channel_shuffle(x: tf.Tensor, groups: int) -> tf.Tensor:
    """ShuffleNet's channel shuffle, the same permutation as ``zoo.torch.meliusnet.channel_shuffle``.

    NHWC channel ``i * (C // groups) + j`` moves to ``j * groups + i``.
    """
    if groups == 1:
        return x
    h, w, c = x.shape[1:]
    x = layers.Reshape((h, w, groups, c // groups))(x)
    x = layers.Permute((1, 2, 4, 3))(x)
    return layers.Reshape((h, w, c))(x)


def build(cfg: ModelConfig) -> tf.keras.Model:
    """Builds the Keras MeliusNet described by ``cfg`` (layer names = PyTorch module paths)."""
    a = {"num_blocks": (4, 5, 4, 4), "transition_features": (160, 224, 256), "transition_groups": 1,
         "shuffle_groups": 1, "stem_features": 64, "growth_rate": 64, "pad_value": 1.0, **cfg.arch}
    num_blocks, transitions, growth = a["num_blocks"], a["transition_features"], a["growth_rate"]
    if len(transitions) != len(num_blocks) - 1:
        raise ValueError(f"need {len(num_blocks) - 1} transition widths for {len(num_blocks)} stages, "
                         f"got {len(transitions)}")

    def bconv(name: str) -> tf.keras.layers.Layer:
        return binary_conv(growth, 3, name=name, pad_value=a["pad_value"], clip=CLIP)

    inputs = tf.keras.Input((cfg.input_size, cfg.input_size, 3))
    half = a["stem_features"] // 2
    x = inputs
    for i, (ch, stride, groups) in enumerate(((half, 2, 1), (half, 1, 4), (a["stem_features"], 1, 8))):
        x = conv(ch, 3, stride, groups=groups, name=f"stem.conv{i}")(x)
        x = layers.ReLU()(batch_norm(name=f"stem.bn{i}")(x))
    x = _max_pool(x)

    for i, n in enumerate(num_blocks):
        p = f"stages.{i}."
        for j in range(n):
            y = bconv(f"{p}dense.{j}.conv")(batch_norm(name=f"{p}dense.{j}.bn")(x))
            x = layers.Concatenate()([x, y])
            y = bconv(f"{p}improve.{j}.conv")(batch_norm(name=f"{p}improve.{j}.bn")(x))
            keep = x.shape[-1] - growth
            x = layers.Concatenate()([x[..., :keep], layers.Add()([x[..., keep:], y])])
        if i < len(transitions):
            x = layers.ReLU()(_max_pool(batch_norm(name=f"{p}transition.bn")(x)))
            x = channel_shuffle(x, a["shuffle_groups"])
            x = conv(transitions[i], 1, groups=a["transition_groups"], name=f"{p}transition.conv")(x)

    x = layers.ReLU()(batch_norm(name="head_bn")(x))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(cfg.num_classes, name="classifier")(x)
    return tf.keras.Model(inputs, outputs, name=cfg.name or "meliusnet")
