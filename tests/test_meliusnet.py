"""MeliusNet checks: counts against larq-zoo and the paper, and torch <-> Keras transfer.

Bethge et al., "MeliusNet: Can Binary Neural Networks Achieve MobileNet-level
Accuracy?", arXiv:2001.05936, 2020.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import zoo
from zoo.figures import measure
from zoo.torch.meliusnet import channel_shuffle

from helpers import randomize

VARIANTS = ["meliusnet22", "meliusnet29", "meliusnet42", "meliusnet59", "meliusneta", "meliusnetb", "meliusnetc"]
MIB = 2**20
# Parameter counts do not depend on the input side; a small one keeps measure() cheap.
SMALL = 32


@functools.lru_cache(maxsize=None)
def _figures(name: str):
    """Figures of the full-size torch model, shared by the tests (the big ones take seconds)."""
    return measure(zoo.load(name, input_size=SMALL))


def test_all_variants_registered():
    assert zoo.list_models("meliusnet*") == sorted(VARIANTS)


@pytest.mark.slow  # builds larq-zoo's Keras MeliusNet22 and runs ours at 224
def test_meliusnet22_params_match_larq_zoo():
    import larq_zoo as lqz

    reference = lqz.literature.MeliusNet22(weights=None).count_params()
    ours = zoo.measure(zoo.load("meliusnet22")).params
    assert abs(ours - reference) <= 0.01 * reference, (ours, reference)


@pytest.mark.slow  # full-size Keras builds: 5-20 s each, mostly larq tracing its QuantConv2Ds
@pytest.mark.parametrize("name", VARIANTS)
def test_keras_params_equal_torch(name):
    assert zoo.load(name, framework="keras", input_size=SMALL).count_params() == _figures(name).params


@pytest.mark.parametrize("name", VARIANTS)
def test_size_matches_paper(name):
    # The paper's MB are MiB (2**20 bytes) and leave BatchNorm statistics out, as
    # Figures.size_bytes does: that reproduces all seven sizes to their rounding,
    # while 1e6-byte MB would be 4-9% too big.
    f = _figures(name)
    paper = zoo.get_config(name).published["size_mb"]
    assert f.size_bytes / MIB == pytest.approx(paper, abs=0.051)
    assert abs(f.size_bytes / 1e6 - paper) > 0.051


@pytest.mark.slow  # one 224x224 forward pass per variant
@pytest.mark.parametrize("name", VARIANTS)
def test_ops_match_published(name):
    # OPs depend on every width, group and pooling position, so this pins the
    # transition table of each variant (measured: all within 0.5%).
    f = zoo.measure(zoo.load(name))
    assert f.ops == pytest.approx(zoo.get_config(name).published["ops"], rel=0.01)


def test_tiny_is_binary_and_grouped():
    cfg = zoo.get_config("meliusneta")
    model = zoo.load("meliusneta", **cfg.tiny)
    f = zoo.measure(model)
    assert f.binary_convs == 8 and f.bops > f.flops
    assert model.stages[0].transition.conv.groups == 4
    assert all(m.clip == 1.3 for m in model.modules() if isinstance(m, zoo.torch.layers.BinaryConv2d))


def test_improvement_block_changes_only_the_last_channels():
    from zoo.torch.meliusnet import ImprovementBlock

    block = ImprovementBlock(96, 64).eval()
    x = torch.randn(1, 96, 5, 5)
    y = block(x)
    assert torch.equal(y[:, :32], x[:, :32]) and not torch.equal(y[:, 32:], x[:, 32:])


class _Shuffle(torch.nn.Module):
    def __init__(self, groups: int, leaf: bool) -> None:
        super().__init__()
        self.groups, self.leaf = groups, leaf

    def forward(self, x):
        if self.leaf:  # the zoo's helper: one node of the trace, translated as a whole
            return channel_shuffle(x, self.groups)
        n, c, h, w = x.shape  # the same written out: traced op by op
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


@pytest.mark.parametrize("leaf", [True, False])
def test_channel_shuffle_is_the_same_permutation_in_both_frameworks(leaf):
    pytest.importorskip("tensorflow")
    from zoo.keras.translate import translate

    c, g = 64, 16
    x = torch.arange(c, dtype=torch.float32).reshape(1, c, 1, 1).expand(1, c, 3, 3).contiguous()
    expected = channel_shuffle(x, g)[0, :, 0, 0].numpy()
    assert sorted(expected) == list(range(c)) and expected[1] == c // g
    keras_model = translate(_Shuffle(g, leaf), 3, in_channels=c)  # returns NCHW, as PyTorch does
    if leaf:  # on NHWC: the Reshape -> Permute -> Reshape that LCE runs as reshapes and one transpose
        assert [type(layer).__name__ for layer in keras_model.layers[1:4]] == ["Reshape", "Permute", "Reshape"]
    shuffled = keras_model(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()))
    np.testing.assert_array_equal(shuffled.numpy()[0, :, 0, 0], expected)


@pytest.mark.parametrize("name,extra", [("meliusnet22", {}), ("meliusneta", {}), ("meliusnetc", {"pad_value": 0.0})])
def test_transfer_torch_keras_torch(name, extra):
    torch.manual_seed(0)
    model = zoo.load(name, **{**zoo.get_config(name).tiny, **extra})
    randomize(model)
    size = model.zoo_config.input_size
    x = torch.randn(8, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()
    assert expected.std() > 0.1  # outputs that vary, or agreement proves nothing

    keras_model = zoo.to_keras(model)
    got = keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert (got.argmax(1) == expected.argmax(1)).all()

    back = zoo.to_torch(keras_model)
    with torch.no_grad():
        again = back(x).numpy()
    np.testing.assert_allclose(again, expected, atol=1e-3)
    assert (again.argmax(1) == expected.argmax(1)).all()
