"""The PyTorch -> Larq/Keras translator on networks the zoo does not register.

Registered models are covered by the registry-driven tests (test_models.py, test_converters.py);
here: user-defined binary networks (residual adds; concatenation, channel slicing, split, shuffle,
gates), their LCE conversion, the one-line errors, and ``bnnzoo convert FILE.py:CLASS``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo
from zoo.torch import layers as zl
from zoo.torch.layers import BinaryConv2d, Conv2d, avg_pool_same, channel_shuffle

from helpers import error_lines, randomize

pytest.importorskip("tensorflow")
import converters  # noqa: E402
from converters.tflite import op_counts  # noqa: E402
from zoo.keras.translate import UnsupportedOpError, translate  # noqa: E402

SIZE = 32


class ResidualBNN(nn.Module):
    """Binary ResNet-style: plain nn.Conv2d stem, residual adds, a strided binary block with an
    average-pooled 1x1 shortcut, nn.MaxPool2d, adaptive pooling, flatten."""

    def __init__(self, width: int = 32, num_classes: int = 10, stem_stride: int = 1) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, width, 3, stride=stem_stride, padding=1, bias=True)
        self.stem_bn = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d(2)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv1 = BinaryConv2d(width, width, 3)
        self.act1 = nn.PReLU(width)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv2 = BinaryConv2d(width, 2 * width, 3, stride=2, pad_value=1.0)
        self.down = Conv2d(width, 2 * width, 1)
        self.down_bn = nn.BatchNorm2d(2 * width)
        self.act2 = nn.LeakyReLU(0.1)
        self.head = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.stem_bn(self.stem(x))))
        x = x + self.act1(self.conv1(self.bn1(x)))
        shortcut = self.down_bn(self.down(avg_pool_same(x, 2, 2)))
        x = self.act2(self.conv2(self.bn2(x))) + shortcut
        return self.classifier(torch.flatten(self.head(x), 1))


class Dense(nn.Module):
    """A MeliusNet-like pair: grow by concatenation, then refine the new channels residually."""

    def __init__(self, channels: int, growth: int) -> None:
        super().__init__()
        self.growth = growth
        self.bn_a = nn.BatchNorm2d(channels)
        self.conv_a = BinaryConv2d(channels, growth, 3)
        self.bn_b = nn.BatchNorm2d(channels + growth)
        self.conv_b = BinaryConv2d(channels + growth, growth, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([x, self.conv_a(self.bn_a(x))], dim=1)
        old, new = x[:, :-self.growth], x[:, -self.growth:]
        return torch.cat((old, new + self.conv_b(self.bn_b(x))), 1)


class ConcatSliceBNN(nn.Module):
    """Concatenation, channel slicing, chunk, channel shuffle, a grouped float conv, a
    squeeze-and-excite gate (``[:, :, None, None]``), Hardtanh and a sigmoid."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = Conv2d(3, 32, 3, 2)
        self.stem_bn = nn.BatchNorm2d(32)
        self.dense = nn.ModuleList([Dense(32, 32), Dense(64, 32)])
        self.mix = Conv2d(96, 64, 1, groups=2)
        self.mix_bn = nn.BatchNorm2d(64)
        self.gate = nn.Linear(64, 64)
        self.bn_c = nn.BatchNorm2d(32)
        self.conv_c = BinaryConv2d(32, 32, 3)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.hardtanh(self.stem_bn(self.stem(x)), -2.0, 2.0)
        for block in self.dense:
            x = block(x)
        x = self.mix_bn(self.mix(channel_shuffle(x, 2)))
        g = torch.sigmoid(self.gate(x.mean((2, 3))))
        x = x * g[:, :, None, None]
        a, b = x.chunk(2, dim=1)
        x = torch.cat([self.conv_c(self.bn_c(a)), b], 1)
        return self.classifier(F.max_pool2d(x, 2).mean(dim=(-2, -1)))


# class, binary convs, TFLite transposes (the channel shuffle's one; the layout is NHWC throughout)
NETS = {"residual": (ResidualBNN, 2, 0), "concat_slice": (ConcatSliceBNN, 5, 1)}


def _net(kind: str) -> nn.Module:
    torch.manual_seed(0)
    return randomize(NETS[kind][0]())


def _batch(n: int = 8) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


def _weight_paths(model: nn.Module) -> set[str]:
    return {name.rsplit(".", 1)[0] for name in model.state_dict()}


@pytest.mark.parametrize("kind", list(NETS))
def test_user_network_translates_with_the_same_outputs_and_names(kind):
    model = _net(kind)
    keras_model = zoo.to_keras(model, input_size=SIZE)
    assert {layer.name for layer in keras_model.layers if layer.weights} == _weight_paths(model)
    x = _batch()
    with torch.no_grad():
        expected = model(x).numpy()
    assert expected.std() > 0.1
    got = keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert keras_model.count_params() == zoo.measure(model, SIZE).params
    assert converters.tflite.binary_convs_of(model) == zoo.measure(model, SIZE).binary_convs == NETS[kind][1]

    from zoo.keras.transfer import state_dict

    back = state_dict(keras_model)
    for key, value in model.state_dict().items():
        if not key.endswith("num_batches_tracked"):
            np.testing.assert_array_equal(back[key], value.numpy(), err_msg=key)


@pytest.mark.parametrize("kind", list(NETS))
def test_user_network_converts_to_lce_with_one_bconv_per_binary_conv(kind, tmp_path):
    model = _net(kind)
    report = converters.to_tflite(model, tmp_path / "m.tflite", input_size=SIZE)
    with open(report.path, "rb") as f:
        counts = op_counts(f.read())
    assert counts["LceBconv2d"] == report.binary_convs == NETS[kind][1]
    assert report.top1_agreement >= 0.75 and report.input_size == SIZE
    assert counts["TRANSPOSE"] == NETS[kind][2]


def _conv_paddings(flatbuffer: bytes) -> list[tuple[str, int]]:
    """(padding, stride) of each CONV_2D of a flatbuffer, in op order."""
    import tflite

    m = tflite.Model.GetRootAsModel(flatbuffer, 0)
    sg, found = m.Subgraphs(0), []
    for j in range(sg.OperatorsLength()):
        op = sg.Operators(j)
        code = m.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == tflite.BuiltinOperator.CONV_2D:
            options, table = tflite.Conv2DOptions(), op.BuiltinOptions()
            options.Init(table.Bytes, table.Pos)
            found.append(({tflite.Padding.SAME: "SAME", tflite.Padding.VALID: "VALID"}[options.Padding()],
                          options.StrideH()))
    return found


# PyTorch's padding=1 on a stride-2 3x3 conv reads (1, 0) of its padding on an even side, (1, 1) on an odd
# one, where TensorFlow's SAME pads (0, 1) and (1, 1): the file keeps a PAD where they differ.
@pytest.mark.parametrize("size, pads", [(32, 1), (31, 0)])
def test_symmetric_padding_of_a_strided_conv_exports_exactly(size, pads, tmp_path):
    model = randomize(ResidualBNN(stem_stride=2)).eval()
    report = converters.to_tflite(model, tmp_path / "m.tflite", input_size=size)
    assert [r.runtime for r in report.layers] == list(converters.tflite.LCE_RUNTIMES)
    assert all(r.ok for r in report.layers)
    flatbuffer = open(report.path, "rb").read()
    assert op_counts(flatbuffer)["PAD"] == pads
    assert _conv_paddings(flatbuffer)[0] == ("VALID" if pads else "SAME", 2)  # the stem
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(converters.tflite.tflite_predict(flatbuffer, x.numpy()), expected,
                               atol=1e-4 * (1 + np.abs(expected).max()))


def test_a_symmetric_pad_the_tflite_converter_folds_into_same_is_refused(monkeypatch, tmp_path):
    """Padded (1, 1) as PyTorch writes it (right in Keras), the stride-2 stem on an even side is folded by
    LCE's converter into a SAME conv, which pads (0, 1) (measured 2026-12-01: CONV_2D SAME, stride 2): the
    layer-wise check finds the first layer fed wrong values and nothing is written."""
    import zoo.keras.translate as translate_module

    monkeypatch.setattr(translate_module, "_used_pads", lambda size, kernel, stride, pads: tuple(
        (p, p) for p in pads))
    model = randomize(ResidualBNN(stem_stride=2)).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    keras_model = zoo.to_keras(model, input_size=SIZE)
    np.testing.assert_allclose(keras_model(x.permute(0, 2, 3, 1).numpy()).numpy(), model(x).detach().numpy(),
                               atol=1e-3)
    assert _conv_paddings(converters.tflite.convert_keras(keras_model))[0] == ("SAME", 2)
    with pytest.raises(converters.ConversionError, match=r"first divergent layer conv1 \(input signs"):
        converters.to_tflite(model, tmp_path / "m.tflite", input_size=SIZE)
    assert not (tmp_path / "m.tflite").exists()


def test_translation_follows_the_torch_layout_through_permute_and_flatten():
    class Head(nn.Module):  # the plate detector's output layout: NHWC flattened
        def __init__(self) -> None:
            super().__init__()
            self.conv = Conv2d(3, 10, 1, bias=True)

        def forward(self, x):
            y = self.conv(x)
            return torch.cat([y.permute(0, 2, 3, 1).flatten(1), y.flatten(1)], 1)  # NHWC order, then NCHW order

    model = Head().eval()
    x = torch.randn(2, 3, 4, 4)
    keras_model = translate(model, 4)
    got = keras_model(x.permute(0, 2, 3, 1).numpy()).numpy()
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-5)
    # The NHWC flatten is a plain reshape; only PyTorch's NCHW flatten needs a transpose.
    assert [type(layer).__name__ for layer in keras_model.layers].count("Permute") == 1


def test_ops_on_a_transposed_map_bring_it_back_to_nhwc_and_4d_outputs_are_nchw():
    class Swap(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn = nn.BatchNorm2d(3)
            self.conv = Conv2d(3, 4, 3)

        def forward(self, x):
            y = self.bn(x.transpose(2, 3))  # BN follows the channel axis wherever it is
            return self.conv(y) - 0.5 * self.conv(torch.cat([y[:, 2:], y[:, :2]], 1))  # called twice: one layer

    model = randomize(Swap())
    x = torch.randn(2, 3, 6, 6)
    keras_model = translate(model, 6)
    assert [layer.name for layer in keras_model.layers].count("conv") == 1
    got = keras_model(x.permute(0, 2, 3, 1).numpy(), training=False).numpy()
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-5)


class _Gelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(Conv2d(3, 8, 3), nn.GELU())
        self.classifier = nn.Linear(8, 2)

    def forward(self, x):
        return self.classifier(self.body(x).mean((2, 3)))


class _Exp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.ModuleDict({"inner": _ExpInner()})

    def forward(self, x):
        return self.block["inner"](x).mean((2, 3))


class _ExpInner(nn.Module):
    def forward(self, x):
        return torch.exp(x)


@pytest.mark.parametrize("model, path, op", [(_Gelu(), "body.1", "GELU"), (_Exp(), "block.inner", "torch.exp")])
def test_unsupported_op_is_one_line_naming_path_and_op_and_nothing_is_written(model, path, op, tmp_path):
    target = tmp_path / "m.tflite"
    with pytest.raises(UnsupportedOpError) as e:
        converters.to_tflite(model.eval(), target, input_size=16)
    msg = str(e.value)
    assert "\n" not in msg and f"cannot translate {path} " in msg and op in msg
    assert "BinaryConv2d" in msg and "torch.cat" in msg  # says what is supported
    assert isinstance(e.value, ValueError) and not os.listdir(tmp_path)


def test_unknown_quantizer_is_unsupported(monkeypatch):
    # A quantizer PyTorch knows but the larq table does not (yet): named, with the path.
    monkeypatch.setitem(zl.QUANTIZERS, "mystery_sign", lambda x, clip: torch.sign(x))
    model = nn.Sequential(Conv2d(3, 8, 3), BinaryConv2d(8, 8, 3, input_quantizer="mystery_sign")).eval()
    with pytest.raises(UnsupportedOpError, match=r"cannot translate 1 to Keras: BinaryConv2d with quantizer "
                                                 r"'mystery_sign'"):
        translate(model, 8)


def test_module_without_config_needs_an_input_size():
    with pytest.raises(ValueError, match="pass input_size"):
        zoo.to_keras(ResidualBNN())
    with pytest.raises(ValueError, match="pass input_size"):
        zoo.measure(ResidualBNN())


def test_cli_file_class_errors_are_one_line(tmp_path, capsys):
    from bnnzoo.cli import main

    src = tmp_path / "nets.py"
    src.write_text("import torch\n\nclass NeedsWidth(torch.nn.Module):\n    def __init__(self, width):\n"
                   "        super().__init__()\n\nclass Fine(torch.nn.Module):\n    pass\n")
    out = tmp_path / "x.tflite"
    cases = [([f"{src}:NeedsWidth", "--input-size", "32"], "NeedsWidth cannot be built without arguments"),
             ([f"{src}:Missing", "--input-size", "32"], "has no torch.nn.Module class 'Missing' (it defines: Fine, "
                                                        "NeedsWidth)"),
             ([f"{src}:Fine"], "pass --input-size N"),
             ([f"{tmp_path}/nope.py:Fine", "--input-size", "32"], "nope.py does not exist")]
    for args, message in cases:
        assert main(["convert", *args, "--to", "tflite", "-o", str(out)]) == 1
        err = error_lines(capsys.readouterr().err)  # progress lines may come first
        assert len(err) == 1 and message in err[0], err
    assert not out.exists()
