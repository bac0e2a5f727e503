"""Layer-by-layer verification (``converters.layerwise``) and LCE's small-map zero padding.

Measured, not assumed: files are broken on purpose (one packed weight word flipped,
one float layer perturbed) and the error must name the layer; the zero-padded
architectures of larq-zoo's weights (the registered ``larq_in1k`` tags) convert at the
tiny size, whose last stages run on 2x2 and 1x1 maps, and the same files built
without the correction fail on LCE's optimized kernels only, at those layers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import converters
import zoo
from converters import ConversionError
from converters.layerwise import binary_modules
from zoo.weights import WEIGHTS

from helpers import randomize, tiny

# The zero-padded (larq-zoo) architectures whose tiny 32x32 models end in 2x2 and 1x1 maps under 3x3
# binary kernels, where LCE 0.16's optimized kernels are wrong; each is also converted at full size
# (slow). The ten other larq-zoo families with zero-padded weights use the same binary_conv layer.
ZERO_PADDED = ["meliusnet22", "realtobinary_resnet18"]


def _model(name: str):
    return randomize(tiny(name, pad_value=0.0))


def _small_map_convs(model) -> list[str]:
    """Binary convs whose input map is smaller than their kernel, in execution order (torch hooks)."""
    modules = dict(model.named_modules())
    small, handles = [], []
    for name in binary_modules(model):
        def hook(module, args, name=name):
            if min(args[0].shape[-2:]) < module.kernel_size[0]:
                small.append(name)
        handles.append(modules[name].register_forward_pre_hook(hook))
    size = model.zoo_config.input_size
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return small


@pytest.fixture(scope="module")
def melius_files(tmp_path_factory):
    """Tiny zero-padded meliusnet22 and its verified TFLite and bit-packed ONNX files."""
    folder = tmp_path_factory.mktemp("melius")
    model = _model("meliusnet22")
    tfl = converters.to_tflite(model, folder / "m.tflite")
    onx = converters.to_onnx(model, folder / "m.onnx", bitpack=True)
    return model, tfl, onx


def test_zero_padded_architectures_are_registered_with_zero_padded_weights():
    padded = {w.arch for w in WEIGHTS.values() if dict(w.arch_overrides).get("pad_value") == 0.0}
    assert set(ZERO_PADDED) <= padded


@pytest.mark.parametrize("name", ZERO_PADDED)
def test_tiny_zero_padded_models_verify_layer_by_layer_on_every_lce_kernel(name, tmp_path, melius_files):
    model = melius_files[0] if name == "meliusnet22" else _model(name)
    tfl = melius_files[1] if name == "meliusnet22" else converters.to_tflite(model, tmp_path / "m.tflite")
    small = _small_map_convs(model)
    assert small, "the tiny model must have binary convs on maps smaller than the kernel"
    assert [r.runtime for r in tfl.layers] == list(converters.tflite.LCE_RUNTIMES)
    n = len(binary_modules(model))
    for r in tfl.layers:
        assert r.ok and sum(c.op == "LceBconv2d" for c in r.checks) == n
        assert {c.layer for c in r.checks if c.op == "LceBconv2d"} == set(binary_modules(model))
    keras = zoo.to_keras(model)
    corrected = [layer.name for layer in keras.layers if getattr(layer, "corrected", False)]
    assert corrected == small  # exactly the small-map convs get +1 padding and the constant
    if name != "meliusnet22":
        onx = converters.to_onnx(model, tmp_path / "m.onnx", bitpack=True)
        assert onx.layers[0].ok and onx.lce_bconv2d == n


def test_uncorrected_small_map_zero_padding_is_wrong_on_optimized_kernels_only(monkeypatch, tmp_path):
    """LCE 0.16's bug, measured: plain zero padding (no correction) on the tiny meliusnet22."""
    import larq as lq

    import zoo.keras.layers as layers

    model = _model("meliusnet22")
    monkeypatch.setattr(layers, "ZeroPadCorrectedConv2D", lq.layers.QuantConv2D)
    with pytest.raises(ConversionError, match=rf"right on LCE's reference kernel but wrong on LCE's optimized "
                                              rf"kernels: layer {_small_map_convs(model)[0]} \(LceBconv2d\)"):
        converters.to_tflite(model, tmp_path / "m.tflite")
    assert not list(tmp_path.iterdir())


def _edit_tflite(flatbuffer: bytes, edit) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    model_t = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    edit(model_t)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model_t))


def _ops(model_t, code):
    sg = model_t.subgraphs[0]
    for op in sg.operators:
        oc = model_t.operatorCodes[op.opcodeIndex]
        name = oc.customCode.decode() if oc.customCode else max(oc.builtinCode, oc.deprecatedBuiltinCode)
        if name == code:
            yield sg, op


def test_a_flipped_packed_weight_word_names_its_layer(melius_files):
    from converters.tflite import check_tflite, module_of

    model, tfl, _ = melius_files
    broken = {}

    def flip(model_t):
        sg, op = list(_ops(model_t, "LceBconv2d"))[2]
        broken["module"] = module_of([sg.tensors[op.inputs[0]].name.decode()], set(binary_modules(model)))
        data = model_t.buffers[sg.tensors[op.inputs[1]].buffer].data
        data[0] ^= 1  # one weight of one output channel changes sign

    flatbuffer = _edit_tflite(open(tfl.path, "rb").read(), flip)
    x = converters.verify.sample_batch(32)
    with pytest.raises(ConversionError, match=rf"first divergent layer {broken['module']} \(LceBconv2d\), \d+ of "):
        check_tflite(model, flatbuffer, x)


def test_a_perturbed_float_layer_names_the_segment_after_it(melius_files):
    from converters.tflite import check_tflite

    model, tfl, _ = melius_files

    def perturb(model_t):
        sg, op = next(_ops(model_t, 3))  # the first CONV_2D: the stem's first float convolution
        buf = model_t.buffers[sg.tensors[op.inputs[1]].buffer]
        w = np.frombuffer(bytes(bytearray(buf.data)), np.float32) * 1.5
        buf.data = np.frombuffer(w.astype(np.float32).tobytes(), np.uint8)

    flatbuffer = _edit_tflite(open(tfl.path, "rb").read(), perturb)
    first = binary_modules(model)[0]
    with pytest.raises(ConversionError, match=rf"first divergent layer {first} \(input signs \(float ops after "
                                              rf"the input\)\)"):
        check_tflite(model, flatbuffer, converters.verify.sample_batch(32))


def test_onnx_flipped_packed_byte_and_perturbed_float_weight_name_their_layers(melius_files):
    import onnx
    from onnx import numpy_helper

    from converters.onnx import verify_onnx_layerwise

    model, _, onx = melius_files
    x = converters.verify.sample_batch(32)
    target = binary_modules(model)[3]
    proto = onnx.load(onx.path)
    init = next(i for i in proto.graph.initializer if i.name == f"{target}.weight_unpacked_bits")
    bits = numpy_helper.to_array(init).copy()
    bits.flat[0] ^= 1
    init.CopyFrom(numpy_helper.from_array(bits, init.name))
    result = verify_onnx_layerwise(model, proto, x)
    assert result.first_failure.layer == target and result.first_failure.op == "Conv"
    assert f"first divergent layer {target} (Conv)" in result.error("onnx")

    proto = onnx.load(onx.path)
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")  # the stem's first float convolution
    init = next(i for i in proto.graph.initializer if i.name == conv.input[1])
    init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
    failure = verify_onnx_layerwise(model, proto, x).first_failure
    assert (failure.layer, failure.op) == (binary_modules(model)[0], "input signs (float ops after the input)")


def test_bnnzoo_verify_prints_the_table_and_fails_on_a_broken_file(melius_files, tmp_path, capsys):
    from bnnzoo.cli import main
    from zoo.weights import save

    model, tfl, onx = melius_files
    (tmp_path / "run").mkdir()
    ckpt = save(model.state_dict(), tmp_path / "run" / "model.safetensors", model.zoo_config)
    assert main(["verify", tfl.path, "--weights", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "layer" in out and "max diff" in out and "outputs differing" in out
    assert all(re.search(rf"^{re.escape(m)} +LceBconv2d +0 +0 of", out, re.M) for m in binary_modules(model))
    assert "matches its source layer by layer on LCE's optimized kernels" in out

    import onnx
    from onnx import numpy_helper

    target = binary_modules(model)[1]
    proto = onnx.load(onx.path)
    init = next(i for i in proto.graph.initializer if i.name == f"{target}.weight_unpacked_bits")
    bits = numpy_helper.to_array(init).copy()
    bits.flat[-1] ^= 0x80
    init.CopyFrom(numpy_helper.from_array(bits, init.name))
    broken = tmp_path / "broken.onnx"
    onnx.save_model(proto, broken)
    assert main(["verify", str(broken), "--weights", str(ckpt)]) == 1
    out = capsys.readouterr().out
    assert f"first divergent layer {target} (Conv)" in out


@pytest.mark.parametrize("argv, message", [
    (["verify", "m.pt", "--model", "meliusnet22"], "neither a .tflite nor an .onnx"),
    (["verify", "missing.tflite", "--model", "meliusnet22"], "does not exist"),
])
def test_bnnzoo_verify_errors_are_one_line(argv, message, capsys):
    from bnnzoo.cli import main

    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ZERO_PADDED)
def test_full_size_zero_padded_architectures_verify_layer_by_layer(name, tmp_path):
    """larq-zoo's architectures at 224 (randomised weights), zero-padded as their weights need."""
    model = randomize(zoo.load(name, pad_value=0.0))
    tfl = converters.to_tflite(model, tmp_path / "m.tflite")
    assert all(r.ok for r in tfl.layers) and len(tfl.layers) == 3
    onx = converters.to_onnx(model, tmp_path / "m.onnx", bitpack=True)
    assert onx.layers[0].ok and onx.size_bytes <= 1.1 * tfl.size_bytes
