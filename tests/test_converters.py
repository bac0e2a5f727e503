"""Tests of the export pipeline (``converters``): formats, TFLite/ONNX conversion,
the LceBconv2d check, bit-packing, verification, atomic output and the CLI.

Tiny models keep the file fast; the full-size checks are marked ``slow``.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np
import pytest
import torch

import converters
import zoo
from converters import ConversionError, MissingExtraError, formats
from converters.onnx import onnx_predict
from converters.tflite import op_counts, tflite_predict
from zoo.registry import ModelConfig

from helpers import error_lines, randomize, share_tiny_tflite, tiny

# --- a test-only binary family: two binary convs, one optionally grouped ---------


def _torch_build(cfg: ModelConfig):
    import torch
    from torch import nn

    from zoo.torch.layers import BinaryConv2d, Conv2d

    class Net(nn.Module):
        def __init__(self, width: int, groups: int, num_classes: int) -> None:
            super().__init__()
            self.stem = Conv2d(3, width, 3, 2)
            self.stem_bn = nn.BatchNorm2d(width)
            self.b1 = BinaryConv2d(width, width, 3)
            self.b1_bn = nn.BatchNorm2d(width)
            self.b2 = BinaryConv2d(width, width, 3, 2, groups=groups, pad_value=0.0)
            self.b2_bn = nn.BatchNorm2d(width)
            self.classifier = nn.Linear(width, num_classes)

        def forward(self, x):
            x = self.stem_bn(self.stem(x))
            x = x + self.b1_bn(self.b1(x))
            return self.classifier(self.b2_bn(self.b2(x)).mean((2, 3)))

    model = Net(num_classes=cfg.num_classes, **cfg.arch)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial statistics so BatchNorm folding is exercised
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.5, generator=g)
    return model


# Registered under zoo.torch only: its Keras model is the translation, as for every family.
sys.modules["zoo.torch._convtest"] = types.SimpleNamespace(build=_torch_build)


def _test_model(groups: int = 1):
    cfg = ModelConfig("convtest", "_convtest", dict(width=32, groups=groups), num_classes=10, input_size=32)
    return zoo.build(cfg, "torch").eval()


@pytest.fixture(scope="module")
def binary_model():
    return _test_model()


# --- the format table --------------------------------------------------------------


def test_unknown_format_suggests_close_match():
    with pytest.raises(ValueError, match="did you mean 'tflite'"):
        formats.get_format("tflit")


def test_option_the_format_does_not_take_names_accepted_ones(binary_model, tmp_path):
    with pytest.raises(ValueError, match="takes no option 'bitpack'; it accepts: input_size, verify"):
        converters.convert(binary_model, tmp_path / "m.tflite", "tflite", bitpack=True)


@pytest.mark.parametrize("fmt, module, extra", [("tflite", "larq_compute_engine", "lce"),
                                                 ("onnx", "onnxruntime", "onnx")])
def test_missing_extra_says_what_to_install(monkeypatch, binary_model, tmp_path, fmt, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingExtraError, match=rf"pip install 'bnnzoo\[{extra}\]'"):
        converters.convert(binary_model, tmp_path / f"m.{fmt}", fmt)
    assert not os.listdir(tmp_path)


# --- TFLite -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tflite_report(binary_model, tmp_path_factory):
    return converters.to_tflite(binary_model, tmp_path_factory.mktemp("tfl") / "m.tflite")


def test_tflite_has_one_bconv_per_binary_conv(tflite_report):
    r = tflite_report
    assert r.binary_convs == r.lce_bconv2d == 2 and r.lce_quantize >= 1
    with open(r.path, "rb") as f:
        assert op_counts(f.read())["LceBconv2d"] == 2
    assert r.size_bytes == os.path.getsize(r.path) and r.batch == 8 and r.top1_agreement >= 0.75
    assert [x.runtime for x in r.layers] == list(converters.tflite.LCE_RUNTIMES) and all(x.ok for x in r.layers)


def test_tflite_from_keras_model(binary_model, tmp_path):
    keras_model = zoo.to_keras(binary_model)
    report = converters.to_tflite(keras_model, tmp_path / "k.tflite")
    assert report.binary_convs == report.lce_bconv2d == 2 and report.top1_agreement == 1.0


def test_tflite_fails_when_a_binary_conv_stays_float(tmp_path):
    # A grouped binary conv with 8 channels per group: LCE falls back to a float CONV_2D.
    target = tmp_path / "m.tflite"
    target.write_bytes(b"good old file")
    with pytest.raises(ConversionError, match="1 LceBconv2d ops for 2 binary convolutions"):
        converters.to_tflite(_test_model(groups=4), target)
    assert target.read_bytes() == b"good old file" and os.listdir(tmp_path) == ["m.tflite"]


# --- int8 TFLite ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def int8_report(binary_model, tmp_path_factory):
    return converters.to_tflite(binary_model, tmp_path_factory.mktemp("tfl8") / "m.tflite", int8=True)


def test_int8_tflite_takes_and_gives_int8_and_its_binary_convs_verify(binary_model, int8_report):
    from converters.layerwise import binary_modules
    from converters.tflite import INT8_RANGE, io_quantization

    r = int8_report
    with open(r.path, "rb") as f:
        qin, qout = io_quantization(f.read())
    assert qin is not None and qout[0] is not None  # int8 scale and zero point on both ends
    assert r.int8_range == INT8_RANGE and r.binary_convs == r.lce_bconv2d == 2
    # the float ops run in int8 over the default range: the binary convs are the checks, all exact
    for result in r.layers:
        assert result.ok and [(c.layer, c.op) for c in result.checks] == [
            (m, "LceBconv2d") for m in binary_modules(binary_model)]
    assert "int8 input and output" in r.summary() and "reported only" in r.summary()


def _with_int8_bconv_output(flatbuffer: bytes, scale: float, zero_point: int) -> bytes:
    """The file with its first float-output LceBconv2d writing int8 and a DEQUANTIZE after it, as LCE's
    converter writes a fake-quantized model (the int8 output case of its end2end test)."""
    import copy

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model_t = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    sg = model_t.subgraphs[0]
    index, op = next((i, o) for i, o in enumerate(sg.operators)
                     if model_t.operatorCodes[o.opcodeIndex].customCode == b"LceBconv2d"
                     and sg.tensors[o.outputs[0]].type == schema.TensorType.FLOAT32)
    written = copy.deepcopy(sg.tensors[op.outputs[0]])
    written.name, written.type = written.name + b"/int8", schema.TensorType.INT8
    written.quantization = schema.QuantizationParametersT()
    written.quantization.scale, written.quantization.zeroPoint = [scale], [zero_point]
    sg.tensors.append(written)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    code.version = 1
    model_t.operatorCodes.append(code)
    dequantize = schema.OperatorT()
    dequantize.opcodeIndex, dequantize.inputs, dequantize.outputs = len(model_t.operatorCodes) - 1, \
        [len(sg.tensors) - 1], [op.outputs[0]]
    op.outputs = [len(sg.tensors) - 1]
    sg.operators.insert(index + 1, dequantize)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))


def test_an_int8_bconv_output_verifies_within_its_rounding_and_a_flipped_weight_fails(binary_model, int8_report):
    from converters.tflite import check_tflite

    with open(int8_report.path, "rb") as f:
        edited = _with_int8_bconv_output(f.read(), 0.1, -5)
    x = converters.verify.sample_batch(32)
    results = check_tflite(binary_model, edited, x)
    assert all(r.ok for r in results) and results[0].checks[0].max_diff > 0.01  # it was rounded to 0.1 steps

    def flip(model_t):  # one weight of the int8-writing conv changes sign
        sg = model_t.subgraphs[0]
        op = next(o for o in sg.operators if model_t.operatorCodes[o.opcodeIndex].customCode == b"LceBconv2d")
        model_t.buffers[sg.tensors[op.inputs[1]].buffer].data[0] ^= 1

    from tensorflow.lite.tools import flatbuffer_utils

    model_t = flatbuffer_utils.read_model_from_bytearray(bytearray(edited))
    flip(model_t)
    with pytest.raises(ConversionError, match=r"first divergent layer b1 \(LceBconv2d\)"):
        check_tflite(binary_model, bytes(flatbuffer_utils.convert_object_to_bytearray(model_t)), x)


# --- ONNX ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_pair(binary_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    plain = converters.to_onnx(binary_model, folder / "plain.onnx")
    packed = converters.to_onnx(binary_model, folder / "packed.onnx", bitpack=True)
    return plain, packed


def test_onnx_bitpack_gives_identical_outputs(onnx_pair):
    import onnx

    plain, packed = onnx_pair
    assert (plain.lce_bconv2d, packed.lce_bconv2d) == (0, 2)
    x = np.random.default_rng(7).standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(onnx_predict(plain.path, x), onnx_predict(packed.path, x))
    graph = onnx.load(packed.path).graph
    assert sum(i.data_type == onnx.TensorProto.UINT8 and i.name.endswith("_bits") for i in graph.initializer) == 2
    assert not {"b1.weight", "b2.weight"} & {i.name for i in graph.initializer}
    assert packed.size_bytes < plain.size_bytes / 2


def test_onnx_rejects_old_opset_for_bitpack(binary_model, tmp_path):
    with pytest.raises(ValueError, match="opset 18"):
        converters.to_onnx(binary_model, tmp_path / "m.onnx", bitpack=True, opset=17)


# --- every registered family, at tiny size -------------------------------------------


# At the tiny test size and (measured 2026-12-01) at 224x224, LCE 0.16 folds the strong baseline's (H, W, C)
# learned scale into the LceBconv2d's per-channel multiplier; its own interpreter then refuses the file.
# Upstream bug: the converter must say so instead of writing it. If this starts passing, drop the entry.
LCE_REFUSES = {"strongbaseline_resnet18": "interpreter refuses the converted file"}


def _payload_bytes(path) -> int:
    """Bytes of a file's stored tensors: ONNX initializers, TFLite buffers (what bit-packing shrinks)."""
    if str(path).endswith(".onnx"):
        import onnx
        from onnx import numpy_helper

        return sum(numpy_helper.to_array(i).nbytes for i in onnx.load(path).graph.initializer)
    import tflite

    m = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
    return sum(m.Buffers(i).DataLength() for i in range(m.BuffersLength()))


def _float_output_bconvs(path, model) -> int:
    from tensorflow.lite.tools import flatbuffer_utils

    from converters.tflite import binary_weight_signs, lce_bconvs

    model_t = flatbuffer_utils.read_model_from_bytearray(bytearray(open(path, "rb").read()))
    return sum(not b["packed_output"] for b in lce_bconvs(model_t, binary_weight_signs(model)))


def _bn_unfused_bytes(model) -> int:
    """ONNX keeps each BatchNorm's 4 floats per channel where TFLite folds them to 2 (a multiplier and a bias)."""
    return sum(8 * m.num_features for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


@pytest.mark.parametrize("name", zoo.list_models(include_stages=True))
def test_every_registered_model_converts_and_verifies(name, tmp_path):
    """Every registered model at its tiny size: both formats verify layer by layer, and the bit-packed
    ONNX stores no more than 1.1x the TFLite file's tensors (BatchNorms aside: at the tiny size their
    unfused statistics weigh, at full size they do not; test_full_size_... compares whole files)."""
    # Randomized like a trained model: a fresh one feeds exact zeros to its signs, which
    # runtimes that fold BN into the conv break differently (no trained model has them).
    model = randomize(tiny(name))
    binary = zoo.measure(model).binary_convs
    onx = converters.to_onnx(model, tmp_path / f"{name}.onnx", bitpack=True)
    assert onx.lce_bconv2d == binary and onx.layers[0].ok
    assert sum(c.op == "Conv" for c in onx.layers[0].checks) == binary
    if name in LCE_REFUSES:
        with pytest.raises(ConversionError, match=LCE_REFUSES[name]):
            converters.to_tflite(model, tmp_path / f"{name}.tflite")
        assert not (tmp_path / f"{name}.tflite").exists()
        return
    tfl = converters.to_tflite(model, tmp_path / f"{name}.tflite")
    assert tfl.lce_bconv2d == binary and len(tfl.layers) == 3 and all(r.ok for r in tfl.layers)
    share_tiny_tflite(name, tfl.path)  # test_litert.py runs the same file (no second conversion)
    # Every binary conv's input signs are checked; its outputs too, unless LCE writes them bit-packed
    # straight into the next conv (they are then that conv's input signs).
    assert sum(c.op.startswith("input signs") for c in tfl.layers[0].checks) == binary
    assert sum(c.op == "LceBconv2d" for c in tfl.layers[0].checks) == _float_output_bconvs(tfl.path, model)
    assert _payload_bytes(onx.path) <= 1.1 * (_payload_bytes(tfl.path) + _bn_unfused_bytes(model)), name
    size = model.zoo_config.input_size
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32)
    np.testing.assert_allclose(tflite_predict(open(tfl.path, "rb").read(), x), onnx_predict(onx.path, x),
                               atol=1e-3 * (1 + np.abs(onnx_predict(onx.path, x)).max()))


# --- atomic output ------------------------------------------------------------------


def test_failed_verification_writes_nothing_and_keeps_old_file(monkeypatch, binary_model, tmp_path):
    from onnx import numpy_helper

    import converters.onnx as conv_onnx

    strip = conv_onnx.strip_metadata

    def strip_and_break(proto):  # an exporter bug: b1's weights come out negated (every sign flips)
        strip(proto)
        init = next(i for i in proto.graph.initializer if i.name == "b1.weight")
        init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), "b1.weight"))

    target = tmp_path / "m.onnx"
    target.write_bytes(b"good old file")
    monkeypatch.setattr(conv_onnx, "strip_metadata", strip_and_break)
    with pytest.raises(ConversionError, match=r"first divergent layer b1 \(Conv\), \d+ of \d+ outputs differ"):
        converters.to_onnx(binary_model, target)
    assert target.read_bytes() == b"good old file" and os.listdir(tmp_path) == ["m.onnx"]


def test_interrupted_write_leaves_no_file(monkeypatch, binary_model, tmp_path):
    import onnx

    def half_write(proto, path):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(onnx, "save_model", half_write)
    with pytest.raises(KeyboardInterrupt):
        converters.to_onnx(binary_model, tmp_path / "m.onnx", verify=False)
    assert os.listdir(tmp_path) == []


def test_missing_folder_is_a_one_line_error(binary_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        converters.to_onnx(binary_model, tmp_path / "nope" / "m.onnx")
    assert "\n" not in str(info.value)


def test_read_only_folder_is_a_one_line_error(binary_model, tmp_path):
    if os.geteuid() == 0:  # root writes through permission bits; sysfs still refuses new files
        folder = "/sys"
    else:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
    with pytest.raises((ConversionError, PermissionError), match="not writable|cannot write in") as info:
        converters.to_onnx(binary_model, os.path.join(folder, "m.onnx"))
    assert "\n" not in str(info.value)


def test_new_file_gets_a_normal_mode(onnx_pair):
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(onnx_pair[0].path).st_mode & 0o777 == 0o666 & ~umask


# --- the CLI ------------------------------------------------------------------------


def test_cli_converts_a_checkpoint(tmp_path, capsys):
    from bnnzoo.cli import main
    from zoo.weights import save

    model = tiny("mobilenet_v1_025")
    (tmp_path / "run").mkdir()
    ckpt = save(model.state_dict(), tmp_path / "run" / "model.safetensors", model.zoo_config)
    out = tmp_path / "m.onnx"
    assert main(["convert", str(ckpt), "--arch", "mobilenet_v1_025", "--to", "onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "format        onnx" in printed and "top-1 agreement 1.00" in printed
    assert "0 in the model" in printed


def test_cli_writes_an_int8_file_over_the_range_given(tmp_path, capsys):
    from bnnzoo.cli import main
    from converters.tflite import io_quantization

    out = tmp_path / "m.tflite"
    assert main(["convert", "mobilenet_v1_025", "--input-size", "32", "--to", "tflite", "--int8", "--int8-range=-3,3",
                 "--no-verify", "-o", str(out)]) == 0
    assert "int8 input and output, every float tensor quantized over (-3.0, 3.0)" in capsys.readouterr().out
    (scale, zero), (out_scale, _) = io_quantization(out.read_bytes())[0], io_quantization(out.read_bytes())[1][0]
    assert scale == out_scale == pytest.approx(6 / 255) and zero == -1  # int8 over [-3, 3]


@pytest.mark.parametrize("argv, message", [
    # no config.json: tests/test_deploy.py
    (["convert", "x.safetensors", "--to", "onnx"], "x.safetensors does not exist"),
    (["convert", "mobilenet_v1", "--to", "tflte"], "did you mean 'tflite'"),
    (["convert", "mobilenet_v1", "--to", "tflite", "--bitpack"], "--bitpack is an onnx option"),
    (["convert", "mobilenet_v1", "--to", "onnx", "--int8"], "--int8 is a tflite option"),
    (["convert", "mobilenet_v1", "--to", "tflite", "--int8-range=-3,3"], "add --int8"),
])
def test_cli_errors_are_one_line(argv, message, capsys):
    from bnnzoo.cli import main

    assert main(argv) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and message in err[0]


def test_cli_points_an_unverifiable_initialised_model_to_its_trained_weights(tmp_path, capsys):
    """A fresh binary detector feeds exact zeros to its signs: its export fails verification, and
    the one-line error names the registered weights that do convert (which the next call shows)."""
    from bnnzoo.cli import main

    out = tmp_path / "d.onnx"
    torch.manual_seed(0)  # the initialised weights (every seed 0-5 tried fails verification)
    assert main(["convert", "plates_detector_1bit", "--to", "onnx", "-o", str(out)]) == 1
    (err,) = error_lines(capsys.readouterr().err)
    assert "verification failed" in err and "bnnzoo convert plates_detector_1bit.plates --to onnx" in err
    assert not out.exists()
    assert main(["convert", "plates_detector_1bit.plates", "--to", "onnx", "-o", str(out)]) == 0
    assert out.is_file() and "boxes         the same on 100% of the images" in capsys.readouterr().out


# --- full size ----------------------------------------------------------------------


# Full-size conversions are the suite's slowest tests: the strong baseline (whose ONNX was 2.4x its
# TFLite file before its learned scales were stored as factors) and the two original larq-zoo
# architectures; tests/test_larq_families_export.py converts the new families at full size.
FULL_SIZE = ("meliusnet22", "realtobinary_resnet18", "strongbaseline_resnet18")


@pytest.mark.slow
@pytest.mark.parametrize("name", FULL_SIZE)
def test_full_size_exports_verify_and_bitpacked_onnx_is_near_tflite_size(name, tmp_path):
    """Architectures at full size (randomised): both formats verify, whole files compared."""
    model = randomize(zoo.load(name))
    if name in LCE_REFUSES:  # at full size too: its ONNX file is held to the ideal 1-bit size instead
        with pytest.raises(ConversionError, match=LCE_REFUSES[name]):
            converters.to_tflite(model, tmp_path / "m.tflite")
        assert not (tmp_path / "m.tflite").exists()
        onx = converters.to_onnx(model, tmp_path / "m.onnx", bitpack=True)
        assert onx.layers[0].ok and onx.lce_bconv2d == zoo.measure(model).binary_convs
        assert onx.size_bytes <= 1.1 * zoo.measure(model).size_bytes, (onx.size_bytes, zoo.measure(model).size_bytes)
        return
    tfl = converters.to_tflite(model, tmp_path / "m.tflite")
    onx = converters.to_onnx(model, tmp_path / "m.onnx", bitpack=True)
    assert tfl.lce_bconv2d == onx.lce_bconv2d == zoo.measure(model).binary_convs
    assert all(r.ok for r in tfl.layers) and onx.layers[0].ok
    assert onx.size_bytes <= 1.1 * tfl.size_bytes, (onx.size_bytes, tfl.size_bytes)


