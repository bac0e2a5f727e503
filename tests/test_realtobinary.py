"""Checks specific to Real-to-Bin ResNet-18 (Martinez et al., ICLR 2020) and its variants."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import torch

import zoo

from helpers import randomize

VARIANTS = zoo.list_models("realtobinary_resnet18*", include_stages=True) + ["strongbaseline_resnet18"]


def _torch_logits(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Logits at a scale of about 10: the residual stream of a BNN grows to thousands, and
    float32 rounding of such logits would hide nothing but fail a fixed 1e-3 tolerance."""
    with torch.no_grad():
        logits = model(x)
        model.classifier.weight.mul_(10.0 / logits.abs().max())
        model.classifier.bias.mul_(10.0 / logits.abs().max())
        return model(x).numpy()


def _keras_logits(keras_model, x: torch.Tensor) -> np.ndarray:
    return keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()


def test_params_match_larq_zoo() -> None:
    import larq_zoo

    reference = larq_zoo.literature.RealToBinaryNet(weights=None)
    ours = zoo.measure(zoo.load("realtobinary_resnet18")).params
    assert ours == reference.count_params()  # exact, not just within 1%: same layers, same shapes
    assert zoo.load("realtobinary_resnet18", framework="keras").count_params() == ours


def test_strong_baseline_params_match_larq_zoo() -> None:
    from larq_zoo.literature.real_to_bin_nets import StrongBaselineNetBNNFactory

    reference = StrongBaselineNetBNNFactory(
        weights=None, num_classes=1000, input_shape=None, input_tensor=None, include_top=True).build()
    assert zoo.measure(zoo.load("strongbaseline_resnet18")).params == reference.count_params()


@pytest.mark.parametrize("name", VARIANTS)
def test_keras_count_params_equals_torch(name: str) -> None:
    tiny = zoo.get_config(name).tiny
    assert zoo.load(name, framework="keras", **tiny).count_params() == zoo.measure(zoo.load(name, **tiny)).params


def test_binary_convs_and_ops() -> None:
    figures = zoo.measure(zoo.load("realtobinary_resnet18"))
    assert figures.binary_convs == 16
    published = zoo.get_config("realtobinary_resnet18").published
    assert figures.bops == pytest.approx(published["bops"], rel=0.01)
    for name in ("realtobinary_resnet18_teacher", "realtobinary_resnet18_stage1", "realtobinary_resnet18_stage2"):
        assert zoo.measure(zoo.load(name, **zoo.get_config(name).tiny)).binary_convs == 0


@pytest.mark.parametrize("name", ["realtobinary_resnet18", "strongbaseline_resnet18"])
def test_tiny_keeps_binary_convs(name: str) -> None:
    assert zoo.measure(zoo.load(name, **zoo.get_config(name).tiny)).binary_convs == 16


@pytest.mark.parametrize("name", VARIANTS)
def test_transfer_to_keras(name: str) -> None:
    model = zoo.load(name, **zoo.get_config(name).tiny)
    randomize(model)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = _torch_logits(model, x)
    got = _keras_logits(zoo.to_keras(model), x)
    assert np.abs(got - expected).max() < 1e-3
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_transfer_odd_sizes_round_trip() -> None:
    # 36 -> 18 -> 9 -> 5 -> 3 -> 2: odd maps exercise TF-"same" pooling and the shortcut's avg pool.
    model = zoo.load("strongbaseline_resnet18", width=16, input_size=36, num_classes=10)
    randomize(model, seed=3)
    x = torch.randn(2, 3, 36, 36, generator=torch.Generator().manual_seed(2))
    expected = _torch_logits(model, x)
    keras_model = zoo.to_keras(model)
    assert np.abs(_keras_logits(keras_model, x) - expected).max() < 1e-3
    with torch.no_grad():
        back = zoo.to_torch(keras_model)(x).numpy()
    np.testing.assert_allclose(back, expected, atol=1e-5)


@pytest.mark.parametrize("size", [5, 6, 7])
def test_same_pooling_matches_tensorflow(size: int) -> None:
    import tensorflow as tf

    from zoo.torch.realtobinary import avg_pool_same, max_pool_same

    x = torch.randn(1, 2, size, size + 1, generator=torch.Generator().manual_seed(size))
    nhwc = x.permute(0, 2, 3, 1).numpy()
    cases = [(max_pool_same(x, 3, 2), tf.keras.layers.MaxPooling2D(3, 2, padding="same")),
             (avg_pool_same(x, 2, 2), tf.keras.layers.AveragePooling2D(2, 2, padding="same"))]
    for ours, layer in cases:
        np.testing.assert_allclose(ours.permute(0, 2, 3, 1).numpy(), layer(nhwc).numpy(), atol=1e-6)
