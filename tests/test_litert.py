"""bnnzoo's LCE kernels in the LiteRT interpreter (converters.litert), layer by layer.

Every registered model, at its tiny size, is converted to LCE's TFLite format, float and
int8 (``to_tflite(..., int8=True)``), and run in our runtime: every output of every LCE op
(LceQuantize, LceBconv2d, LceBMaxPool2d, LceDequantize) must equal LCE's reference kernel
exactly, on every code path this CPU has. Float files run LiteRT's builtin ops with XNNPACK
(its default), so their model outputs agree within float tolerance; int8 files run them on
LiteRT's builtin kernels (``builtin_kernels="builtin"``), which round int8 ops as LCE's interpreter does:
there a sign that an XNNPACK rounding moved by one step would feed the next LCE op other
values, and the model outputs are equal too. Each LceBconv2d is also checked against a NumPy
implementation of the op's semantics, which is the only oracle where LCE's interpreter
refuses a file it converted (per-position multipliers).

LCE's own test cases run the same way (the grid below): its bconv2d SmallTest and BigTest
parameters as one-op files with float, int8 and bit-packed outputs, its quantization test
(LceQuantize / LceDequantize on float32, int8 and bool values), and the models of its end2end
and strip_lcedequantize tests (int8 inputs and outputs, fake-quantized int8 bconv outputs,
int8 outputs after ``strip_lcedequantize_ops``).
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import ai_edge_litert  # noqa: F401  (the 'litert' extra, in 'dev': missing it fails, never skips)
import numpy as np
import pytest

import zoo
from converters import litert

from helpers import randomize, tiny_tflite

FLOAT_ATOL = 1e-3
FLOAT_RTOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def private_cache(tmp_path_factory):
    """Builds the library once for this module, in a cache of its own."""
    folder = tmp_path_factory.mktemp("litert-cache")
    old = os.environ.get("BNNZOO_LITERT_CACHE")
    os.environ["BNNZOO_LITERT_CACHE"] = str(folder)
    litert._LIB = None
    yield folder
    litert._LIB = None
    if old is None:
        os.environ.pop("BNNZOO_LITERT_CACHE")
    else:
        os.environ["BNNZOO_LITERT_CACHE"] = old


def _paths() -> list[str]:
    """Every code path the library can run on this CPU."""
    lib = litert.library()
    found = [p for p in ("portable", "popcnt", "avx2", "avx512", "neon") if lib.bnn_select_path(p.encode())]
    lib.bnn_select_path(b"")
    return found


def _tflite(name: str, folder, int8: bool = False) -> bytes:
    """The tiny model's file (converted once per session, helpers.tiny_tflite), copied into ``folder``."""
    data = tiny_tflite(name, int8).read_bytes()
    (folder / f"{name}{'.int8' if int8 else ''}.tflite").write_bytes(data)
    return data


def _sample(dtype, shape, rng) -> np.ndarray:
    """Test values of a tensor type: standard normal floats, every int8, random bools."""
    if dtype == np.int8:
        return rng.integers(-128, 128, shape).astype(np.int8)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(np.bool_)
    return rng.standard_normal(shape).astype(np.float32)


def _unpack(words: np.ndarray, channels: int) -> np.ndarray:
    """Bit-packed int32 words (last axis) to ±1 floats: bit 1 is -1."""
    bits = (words[..., :, None].astype(np.uint32) >> np.arange(32, dtype=np.uint32)) & 1
    bits = bits.reshape(*words.shape[:-1], -1)[..., :channels]
    return 1.0 - 2.0 * bits.astype(np.float64)


def _bconv_reference(x_words, filt_words, options, mul, bias, thr, out_channels_or_words):
    """LceBconv2d from its definition: the ±1 convolution, then the output transform."""
    from flatbuffers import flexbuffers

    o = flexbuffers.Loads(options)
    cin = o["channels_in"]
    co, kh, kw, depth = filt_words.shape
    groups = 1 if depth == x_words.shape[-1] else cin // (32 * depth)
    cin_g = cin // groups
    x = _unpack(x_words, cin)[0]  # H, W, C
    w = _unpack(filt_words, cin_g)  # Co, kh, kw, cin_g
    sh, sw, dh, dw = o["stride_height"], o["stride_width"], o["dilation_height_factor"], o["dilation_width_factor"]
    h, wd = x.shape[:2]
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if o["padding"] == 0:  # SAME
        oh, ow = -(-h // sh), -(-wd // sw)
        ph, pw = max((oh - 1) * sh + eh - h, 0), max((ow - 1) * sw + ew - wd, 0)
    else:
        oh, ow, ph, pw = (h - eh) // sh + 1, (wd - ew) // sw + 1, 0, 0
    pad_value = 1.0 if o["pad_values"] == 1 else 0.0
    xp = np.full((h + ph, wd + pw, cin), pad_value)
    xp[ph // 2:ph // 2 + h, pw // 2:pw // 2 + wd] = x
    dot = np.zeros((oh, ow, co))
    per_group = co // groups
    for g in range(groups):
        xg = xp[..., g * cin_g:(g + 1) * cin_g]
        wg = w[g * per_group:(g + 1) * per_group]
        for ky in range(kh):
            for kx in range(kw):
                patch = xg[ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
                dot[..., g * per_group:(g + 1) * per_group] += patch @ wg[:, ky, kx].T
    low, high = {0: (-np.inf, np.inf), 1: (0, np.inf), 2: (-1, 1), 3: (0, 6)}[o["fused_activation_function"]]
    dot = np.clip(dot, low, high)  # in accumulator space, before the multiplier
    if thr is not None:  # bit-packed output: set where the XOR popcount exceeds the threshold
        pop = (kh * kw * cin_g - dot) / 2
        bits = (pop > thr).astype(np.uint64)
        words = np.zeros((oh, ow, out_channels_or_words), np.uint64)
        for c in range(co):
            words[..., c // 32] |= bits[..., c] << np.uint64(c % 32)
        return words.astype(np.uint32).view(np.int32)[None]
    return (dot * mul.reshape(-1, co).reshape(*([1] * (3 - mul.ndim)), *mul.shape) + bias)[None]


def _bconv_ops(flatbuffer: bytes):
    """(input tensor name, output tensor name, options, filter, mul, bias, threshold) of each LceBconv2d."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    codes = [c.customCode for c in model.operatorCodes]

    def const(t, dtype):
        if t < 0:
            return None
        tensor = graph.tensors[t]
        return np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype).reshape(tensor.shape)

    for op in graph.operators:
        if codes[op.opcodeIndex] == b"LceBconv2d":
            ins = list(op.inputs) + [-1] * (5 - len(op.inputs))
            yield (graph.tensors[ins[0]].name.decode(), graph.tensors[op.outputs[0]].name.decode(),
                   bytes(op.customOptions), const(ins[1], np.int32), const(ins[2], np.float32),
                   const(ins[3], np.float32), const(ins[4], np.int32))


def _lce_reference(flatbuffer: bytes, x: np.ndarray):
    """LCE's reference kernel on the batch, or None where LCE's interpreter refuses the file."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter as LCE

    try:
        ref = LCE(flatbuffer, num_threads=1, use_reference_bconv=True)
    except RuntimeError:
        return None
    outs = [ref.predict(x[i:i + 1]) for i in range(len(x))]
    outs = [o if isinstance(o, list) else [o] for o in outs]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def _check_against_references(name: str, flatbuffer: bytes, configs, batch: int, numpy_reference: bool) -> None:
    """Every LCE op output of ``flatbuffer`` in our runtime, for each ``(path, threads)`` config,
    equal to LCE's reference kernel (and, with ``numpy_reference``, each LceBconv2d to NumPy)."""
    from flatbuffers import flexbuffers

    probe, added = litert.with_outputs(flatbuffer, litert.LCE_OPS)
    int8 = litert.has_int8(flatbuffer)  # then LiteRT's builtin kernels, which round int8 as LCE does
    first = litert.Interpreter(probe, builtin_kernels="builtin" if int8 else "xnnpack")
    shape = first.input_details[0]["shape"]
    x = _sample(first.input_details[0]["dtype"], (batch, *shape[1:]), np.random.default_rng(0))
    n_model_outputs = len(first.output_names) - len(added)
    reference = _lce_reference(probe, x)
    bconvs = list(_bconv_ops(probe))
    assert first.lce_ops == sum(1 for _ in litert.custom_ops(flatbuffer))
    # LCE's interpreter refuses only per-position multipliers (which it cannot run)
    assert reference is not None or any(mul is not None and mul.ndim > 1 for *_, mul, _, _ in bconvs), name
    for n_config, (path, threads) in enumerate(configs):
        ours = litert.Interpreter(probe, path=path, num_threads=threads,
                                  builtin_kernels="builtin" if int8 else "xnnpack")
        assert ours.path == path
        got = ours.predict(x)
        got = got if isinstance(got, list) else [got]
        named = dict(zip(ours.output_names, got))
        if reference is not None:
            for out_name, a, b in zip(ours.output_names[n_model_outputs:], got[n_model_outputs:],
                                      reference[n_model_outputs:]):
                assert a.dtype == b.dtype and a.shape == b.shape, out_name
                assert np.array_equal(a, b), f"{name} [{path}]: {out_name} differs from LCE's reference kernel"
            for a, b in zip(got[:n_model_outputs], reference[:n_model_outputs]):
                assert a.dtype == b.dtype and a.shape == b.shape
                if int8:
                    assert np.array_equal(a, b), f"{name} [{path}]: model outputs differ from LCE's"
                else:
                    np.testing.assert_allclose(a, b, atol=FLOAT_ATOL + FLOAT_RTOL * np.abs(b).max(), rtol=0)
        # NumPy is slow: once where LCE's reference checked every path, on every path where it could not
        if not ((numpy_reference and n_config == 0) or reference is None):
            continue
        for in_name, out_name, options, filt, mul, bias, thr in bconvs:
            # int8 outputs have LCE's reference kernel as their oracle (it runs every such file here)
            assert named[out_name].dtype != np.int8 or reference is not None, out_name
            if named[out_name].dtype == np.int8:
                continue
            for i in range(len(x)):
                expected = _bconv_reference(named[in_name][i:i + 1], filt, options, mul, bias, thr,
                                            named[out_name].shape[-1])
                if thr is not None:
                    assert np.array_equal(named[out_name][i:i + 1], expected), f"{name} [{path}]: {out_name}"
                else:  # the kernel computes pop * (-2 m) + (K m + b): its rounding scales with K |m|
                    k = filt.shape[1] * filt.shape[2] * flexbuffers.Loads(options)["channels_in"]
                    tol = 1e-6 * (k * np.abs(mul) + np.abs(bias)) + 1e-6
                    assert np.all(np.abs(named[out_name][i:i + 1] - expected) <= tol), f"{name} [{path}]: {out_name}"


def _configs() -> list[tuple[str, int]]:
    """Every code path on one thread, and the best one on 3 (rows split over a thread pool)."""
    paths = _paths()
    return [(p, 1) for p in paths] + [(paths[-1], 3)]


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_lce_op_equals_lce_reference_kernel(name, tmp_path):
    _check_against_references(name, _tflite(name, tmp_path), _configs(), batch=2, numpy_reference=True)


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_int8_export_equals_lce_reference_kernel(name, tmp_path):
    """The model's int8 file (int8 input and output, float ops in int8 over the default range)."""
    flatbuffer = _tflite(name, tmp_path, int8=True)
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    assert {graph.Tensors(graph.Inputs(0)).Type(), graph.Tensors(graph.Outputs(0)).Type()} == {schema.TensorType.INT8}
    _check_against_references(name, flatbuffer, _configs(), batch=2, numpy_reference=True)


def _residual_adds(flatbuffer: bytes) -> int:
    """ADD ops the delegate may fuse, counted from the file: no activation but a clamp (RELU,
    RELU_N1_TO_1, RELU6), both inputs and the output
    float32 of one shape, one input an LceBconv2d's output that nothing else reads and that is not a
    graph output."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    graph = model.Subgraphs(0)
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    ops = [graph.Operators(i) for i in range(graph.OperatorsLength())]
    readers: dict[int, int] = {}
    producer: dict[int, str] = {}
    for op in ops:
        code = codes[op.OpcodeIndex()]
        name = (code.CustomCode().decode() if code.CustomCode()
                else max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        for t in op.InputsAsNumpy():
            readers[int(t)] = readers.get(int(t), 0) + 1
        producer[int(op.Outputs(0))] = name
    outputs = set(litert.graph_outputs(flatbuffer))

    def shape_type(t):
        tensor = graph.Tensors(t)
        return tuple(tensor.ShapeAsNumpy()), tensor.Type()

    found = 0
    for op in ops:
        code = codes[op.OpcodeIndex()]
        if code.CustomCode() or max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) != schema.BuiltinOperator.ADD:
            continue
        options = schema.AddOptions()
        options.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        tensors = [int(t) for t in op.InputsAsNumpy()] + [int(op.Outputs(0))]
        if options.FusedActivationFunction() not in (0, 1, 2, 3) or len({shape_type(t) for t in tensors}) != 1 or \
                shape_type(tensors[0])[1] != schema.TensorType.FLOAT32:
            continue
        found += any(producer.get(t) == "LceBconv2d" and readers[t] == 1 and t not in outputs for t in tensors[:2])
    return found


@pytest.mark.parametrize("name", zoo.list_models())
def test_residual_adds_fused_into_bconv_give_the_same_floats(name, tmp_path):
    """Where an LceBconv2d's output only feeds a residual ADD, the kernel writes the sum itself
    (``fuse_add``, the default): exactly where the file has such an ADD, with the same floats as the
    two ops run apart, on every code path."""
    flatbuffer = _tflite(name, tmp_path)
    expected = _residual_adds(flatbuffer)
    x = np.random.default_rng(0).standard_normal((2, *litert.Interpreter(flatbuffer).input_details[0]["shape"][1:]))
    for path, threads in _configs():
        fused = litert.Interpreter(flatbuffer, path=path, num_threads=threads)
        apart = litert.Interpreter(flatbuffer, path=path, num_threads=threads, fuse_add=False)
        assert (fused.fused_adds, apart.fused_adds) == (expected, 0), path
        if expected:
            a, b = fused.predict(x), apart.predict(x)
            assert all(np.array_equal(p, q) for p, q in zip(a if isinstance(a, list) else [a],
                                                             b if isinstance(b, list) else [b])), path


def test_a_bconv_output_the_graph_reads_is_never_fused_away(tmp_path):
    """A layer-by-layer check exposes each LceBconv2d's output: none of those ADDs may be fused then."""
    names = [n for n in zoo.list_models() if _residual_adds(_tflite(n, tmp_path))]
    assert names, "no registered model has a residual ADD after an LceBconv2d"
    flatbuffer = _tflite(names[0], tmp_path)
    assert litert.Interpreter(flatbuffer).fused_adds > 0
    probe, _ = litert.with_outputs(flatbuffer, ("LceBconv2d",))
    assert _residual_adds(probe) == 0 and litert.Interpreter(probe).fused_adds == 0


def test_an_add_of_two_binary_convs_is_fused_into_one_of_them():
    """ADD(conv_a(x), conv_b(x)), each conv read by nothing else: one kernel writes the sum (the other
    conv's output is its residual), never both, with the floats of the ops run apart on every path."""
    import larq as lq
    import tensorflow as tf

    from converters.tflite import convert_keras

    x = tf.keras.Input((8, 8, 64))
    a, b = (tf.keras.layers.BatchNormalization()(lq.layers.QuantConv2D(64, 3, padding="same", pad_values=1.0,
                                                                       **_BINARY)(x)) for _ in range(2))
    flatbuffer = convert_keras(_random_weights(tf.keras.Model(x, tf.keras.layers.add([a, b]))))
    assert [name for _, name, _ in litert.custom_ops(flatbuffer)].count("LceBconv2d") == 2
    assert _residual_adds(flatbuffer) == 1
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 64)).astype(np.float32)
    for path in _paths():
        fused = litert.Interpreter(flatbuffer, path=path)
        assert fused.fused_adds == 1, path
        assert np.array_equal(fused.predict(x), litert.Interpreter(flatbuffer, path=path, fuse_add=False).predict(x))


# DoReFa-Net has no LCE op (2-bit activations): its file is all builtin float ops, which LiteRT's
# XNNPACK and LCE's interpreter round apart (0.096 of logit at 224x224, measured 2026-12-01).
_NO_LCE_OPS = {"dorefanet"}


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted({zoo.get_config(n).family for n in zoo.list_models()} - _NO_LCE_OPS))
def test_full_size_lce_ops_equal_lce_reference_kernel(family, tmp_path):
    """The first registered model of each family with LCE ops, at its full size (best path, 2 threads)."""
    import converters

    name = next(n for n in zoo.list_models() if zoo.get_config(n).family == family)
    path = tmp_path / f"{name}.tflite"
    converters.to_tflite(randomize(zoo.load(name)), str(path), verify=False)
    _check_against_references(name, path.read_bytes(), [(_paths()[-1], 2)], batch=1, numpy_reference=False)


def _with_options(flatbuffer: bytes, op_name: str, edit) -> bytes:
    """The flatbuffer with the first ``op_name``'s options replaced by ``edit(options dict)``."""
    first = next(i for i, name, _ in litert.custom_ops(flatbuffer) if name == op_name)
    return _with_options_at(flatbuffer, first, edit)


def _with_options_at(flatbuffer: bytes, index: int, edit) -> bytes:
    """The flatbuffer with operator ``index``'s custom options replaced by ``edit(options dict)``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from flatbuffers import flexbuffers

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    op = model.subgraphs[0].operators[index]
    op.customOptions = list(flexbuffers.Dumps(edit(flexbuffers.Loads(bytes(op.customOptions)))))
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def detector_file(tmp_path_factory):
    """A tiny model with all of LceQuantize, LceBconv2d (float and bit-packed output) and LceBMaxPool2d."""
    name = next(n for n in zoo.list_models() if zoo.get_config(n).family == "detector" and "1bit" in n)
    return _tflite(name, tmp_path_factory.mktemp("det"))


@pytest.mark.parametrize("op, edit, option", [
    ("LceBconv2d", lambda o: {**o, "groups_experimental": 2}, "groups_experimental"),
    ("LceBconv2d", lambda o: {**o, "fused_activation_function": 4}, "fused_activation_function"),
    ("LceBconv2d", lambda o: {**o, "pad_values": 2}, "pad_values"),
    ("LceBMaxPool2d", lambda o: {**o, "padding": 7}, "padding"),
])
def test_an_option_the_kernels_lack_is_a_one_line_error_before_inference(detector_file, op, edit, option):
    bad = _with_options(detector_file, op, edit)
    with pytest.raises(litert.UnsupportedModelError) as err:
        litert.Interpreter(bad)
    message = str(err.value)
    assert "\n" not in message and op in message and option in message


def test_a_file_that_is_not_a_flatbuffer_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.tflite"
    path.write_bytes(b"\x00" * 8 + b"not a model at all")
    with pytest.raises(litert.UnsupportedModelError, match="not a TFLite flatbuffer"):
        litert.Interpreter(path)
    with pytest.raises(FileNotFoundError, match="bnnzoo convert"):
        litert.Interpreter(tmp_path / "missing.tflite")


def test_a_missing_compiler_is_a_one_line_error(tmp_path):
    code = ("import os, sys; from converters import litert\n"
            "try:\n    litert.library()\nexcept litert.BuildError as e:\n    print('ERR', e); sys.exit(3)\n")
    env = {**os.environ, "CC": str(tmp_path / "no-such-cc"), "BNNZOO_LITERT_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 3, done.stderr
    line = done.stdout.strip()
    assert "\n" not in line and "no C compiler found" in line and "apt-get install gcc" in line
    assert not (tmp_path / "cache").exists() or not os.listdir(tmp_path / "cache")


def test_a_failing_compiler_leaves_no_library_behind(tmp_path):
    from converters.litert import toolchain as build

    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'fake-cc 1.0'\n[ \"$1\" = --version ] && exit 0\necho 'error: broken' >&2\n"
                    "exit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ)
    try:
        os.environ["BNNZOO_LITERT_CACHE"] = str(tmp_path / "cache")
        with pytest.raises(build.BuildError, match="failed: error: broken"):
            build.build(str(fake))
        assert os.listdir(tmp_path / "cache") == []
    finally:
        os.environ.clear()
        os.environ.update(env)


def test_the_build_is_cached_and_a_path_the_cpu_lacks_is_refused(private_cache, detector_file):
    from converters.litert import toolchain as build

    first = build.build()
    assert build.build() == first and first.parent == private_cache
    assert [p for p in os.listdir(private_cache) if p.endswith(".tmp")] == []
    missing = [p for p in ("avx512", "avx2", "neon") if p not in _paths()]
    for path in missing:
        with pytest.raises(ValueError, match="not available"):
            litert.Interpreter(detector_file, path=path)
    assert litert.code_path() in _paths()
    assert litert.Interpreter(detector_file, path="portable").path == "portable"
    assert litert.Interpreter(detector_file).path == _paths()[-1]  # a forced path does not stick
    with pytest.raises(ValueError, match="num_threads"):
        litert.Interpreter(detector_file, num_threads=0)


def test_every_simd_path_matches_the_portable_one_on_awkward_sizes(tmp_path):
    """converters/litert/selftest.c (also what runs the NEON path under qemu-aarch64)."""
    from converters.litert import toolchain as build

    exe = tmp_path / "selftest"
    subprocess.run(build.compile_command(build.find_compiler(), exe, flags=["-O2"], extra=["selftest.c"]),
                   check=True, capture_output=True)
    done = subprocess.run([str(exe)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
    fast = [p for p in _paths() if p != "portable"]
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ok ")] == fast + ["pack32"]


# A CPU model of qemu-x86_64 (TCG emulates no AVX-512 at all), the path the library must pick there and
# the fast paths it must offer.
_EMULATED_CPUS = [("Conroe", "portable", []), ("Nehalem", "popcnt", ["popcnt"]),
                  ("Haswell", "avx2", ["popcnt", "avx2"])]


@pytest.fixture(scope="module")
def selftest_program(tmp_path_factory):
    """selftest.c with the whole library, built with the library's own flags, no -march."""
    from converters.litert import toolchain as build

    exe = tmp_path_factory.mktemp("selftest") / "selftest"
    flags = [f for f in build.CFLAGS if f not in ("-shared", "-fPIC")]
    subprocess.run(build.compile_command(build.find_compiler(), exe, flags=flags, extra=["selftest.c"]),
                   check=True, capture_output=True)
    return exe


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates older x86-64 CPUs: an x86-64 host's test")
@pytest.mark.parametrize("cpu, best, offered", _EMULATED_CPUS)
def test_a_cpu_without_the_instructions_falls_back_and_never_faults(selftest_program, cpu, best, offered):
    """Under ``qemu-x86_64-static -cpu CPU``: the library picks the best path that CPU has, every path
    it offers agrees with the portable one, and nothing executes an instruction the CPU lacks."""
    from eval.arm64 import ensure_qemu

    qemu = str(Path(ensure_qemu()).with_name("qemu-x86_64-static"))
    done = subprocess.run([qemu, "-cpu", cpu, str(selftest_program)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-500:])  # SIGILL: -4 / 132
    assert f"best {best}" in done.stdout.splitlines()
    assert [line.split()[1] for line in done.stdout.splitlines() if line.startswith("ok ")] == offered + ["pack32"]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="emulates older x86-64 CPUs: an x86-64 host's test")
def test_the_emulated_old_cpu_really_faults_on_avx512(tmp_path):
    """The control of the test above: the same program built for AVX-512 dies of SIGILL there."""
    from converters.litert import toolchain as build
    from eval.arm64 import ensure_qemu

    exe = tmp_path / "selftest-avx512"
    subprocess.run(build.compile_command(build.find_compiler(), exe, flags=["-O3", "-march=icelake-server"],
                                         extra=["selftest.c"]), check=True, capture_output=True)
    qemu = str(Path(ensure_qemu()).with_name("qemu-x86_64-static"))
    done = subprocess.run([qemu, "-cpu", "Conroe", str(exe)], capture_output=True, text=True, timeout=300)
    assert done.returncode in (-signal.SIGILL, 128 + signal.SIGILL), (done.returncode, done.stdout)


# --- aarch64 under emulation: must run, never skip ------------------------------------------------

@pytest.mark.slow
def test_aarch64_kernels_under_qemu_equal_the_host(tmp_path):
    """One tiny model with LCE ops per family, its float and its int8 file (and the per-position
    multipliers of strongbaseline_resnet18), the option models below and every fused activation,
    cross-compiled kernels in the aarch64 ai-edge-litert wheel under qemu-aarch64-static: every LCE
    op output equal to this host's (eval.litert_arm64), which equals LCE's reference kernel (the
    tests below). The tiny models' layers take every way the NEON kernel reads a receptive field
    (in place with and without a 64-bit tail, copied) and every output type (float, int8, bit-packed)."""
    from converters.tflite import convert_keras
    from eval import litert_arm64

    families = {}
    for name in zoo.list_models():
        families.setdefault(zoo.get_config(name).family, name)
    files = []
    for name in {*families.values(), "strongbaseline_resnet18"}:
        for int8 in (False, True):
            data = _tflite(name, tmp_path, int8)
            if litert.custom_ops(data):
                files.append(str(tmp_path / f"{name}{'.int8' if int8 else ''}.tflite"))
    for i, (conv, pool) in enumerate(_OPTION_CASES):
        (tmp_path / f"options{i}.tflite").write_bytes(convert_keras(_larq_model(conv, pool)))
        files.append(str(tmp_path / f"options{i}.tflite"))
    for activation in _ACTIVATIONS:
        (tmp_path / f"activation{activation}.tflite").write_bytes(_with_activation(activation))
        files.append(str(tmp_path / f"activation{activation}.tflite"))
    lines = litert_arm64.run_files(sorted(files))
    assert len(lines) == len(files) and all("LCE op outputs equal (aarch64 neon" in line for line in lines), lines


# --- every option the kernels implement, on small larq models ----------------------------------

# A binary QuantConv2D's quantizers, as larq-zoo's models set them.
_BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
               use_bias=False)


def _larq_model(conv: dict, pool: bool):
    """QuantConv2D(conv) -> BN -> [MaxPool] -> QuantConv2D -> BN on an 11x11x64 input, random weights."""
    import larq as lq
    import tensorflow as tf

    x = tf.keras.Input((11, 11, 64))
    y = tf.keras.layers.BatchNormalization()(lq.layers.QuantConv2D(64, 3, **_BINARY, **conv)(x))
    if pool:
        y = tf.keras.layers.MaxPool2D(2, padding="same")(y)
    y = tf.keras.layers.BatchNormalization()(lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0,
                                                                   **_BINARY)(y))
    return _random_weights(tf.keras.Model(x, y))


def _random_weights(model):
    """The Keras model with seeded random weights (BatchNorm variances in [0.5, 2])."""
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 2, w.shape).astype(np.float32) if "variance" in v.name
                       else rng.standard_normal(w.shape).astype(np.float32)
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


_OPTION_CASES = [
    (dict(padding="same", pad_values=0.0, strides=2), False),  # zero padding, stride 2, bit-packed output
    (dict(padding="valid", dilation_rate=2), False),
    (dict(padding="same", pad_values=1.0, groups=2), False),
    (dict(padding="same", pad_values=1.0, strides=(1, 2)), True),  # LceBMaxPool2d
]
_ACTIVATIONS = [1, 2, 3]  # RELU, RELU_N1_TO_1, RELU6


@pytest.mark.parametrize("conv, pool", _OPTION_CASES)
def test_options_of_small_larq_models_equal_lce_reference_kernel(conv, pool):
    from converters.tflite import convert_keras

    flatbuffer = convert_keras(_larq_model(conv, pool))
    ops = [name for _, name, _ in litert.custom_ops(flatbuffer)]
    assert ops.count("LceBconv2d") == 2 and ("LceBMaxPool2d" in ops) == pool
    _check_against_references(str(conv), flatbuffer, [(p, 1) for p in _paths()], batch=2, numpy_reference=True)


def _with_activation(activation: int) -> bytes:
    """A small larq model's file with its last LceBconv2d's fused activation set to ``activation`` (so
    that every activation is tested, not only those LCE's converter fuses in the zoo's files)."""
    from ai_edge_litert import schema_py_generated as schema

    from converters.tflite import convert_keras

    flatbuffer = convert_keras(_larq_model(dict(padding="same", pad_values=1.0), False))
    last = [i for i, name, _ in litert.custom_ops(flatbuffer) if name == "LceBconv2d"][-1]
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    first_bconv = next(j for j in range(model.Subgraphs(0).OperatorsLength())
                       if codes[model.Subgraphs(0).Operators(j).OpcodeIndex()] == b"LceBconv2d")
    assert last != first_bconv
    return _with_options_at(flatbuffer, last, lambda o: {**o, "fused_activation_function": activation})


@pytest.mark.parametrize("activation", _ACTIVATIONS)
def test_fused_activations_equal_lce_reference_kernel(activation):
    _check_against_references(f"activation {activation}", _with_activation(activation), [(_paths()[-1], 1)],
                              batch=2, numpy_reference=True)


def test_a_wrong_struct_layout_is_caught_before_any_node_is_claimed(detector_file, tmp_path):
    """A library whose TfLiteTensor is declared 8 bytes too long must refuse every model."""
    from converters.litert import toolchain

    lib = tmp_path / "wrong.so"
    subprocess.run(toolchain.compile_command(toolchain.find_compiler(), lib,
                                             flags=[*toolchain.CFLAGS, "-DBNN_TEST_WRONG_LAYOUT"]),
                   check=True, capture_output=True)
    model = tmp_path / "m.tflite"
    model.write_bytes(detector_file)
    code = ("import sys; from converters import litert\n"
            f"try:\n    litert.Interpreter({str(model)!r})\n"
            "except litert.UnsupportedModelError as e:\n    print(e); sys.exit(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "BNNZOO_LITERT_LIB": str(lib)})
    assert done.returncode == 3, done.stderr[-2000:]
    assert "TfLiteTensor layout mismatch" in done.stdout


# --- bnnzoo eval: our runtime as a column next to LCE's --------------------------------------------

def test_eval_times_litert_next_to_lce(tmp_path):
    import json

    from bnnzoo.cli import main
    from eval import report

    rc = main(["eval", "--tiny", "meliusnet22", "--baseline", "none", "--threads", "1", "--runs", "2", "--warmup", "0",
                   "--no-progress", "-o", str(tmp_path)])  # the default runtimes
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    (row,) = res["models"]
    assert {"lce", "litert"} <= set(row["latency_ms"]) and row["latency_ms"]["litert"]["1"]["median"] > 0
    assert f"code path {litert.code_path()}" in res["settings"]["runtimes"]["litert"]
    assert res["settings"]["skipped_runtimes"] == {}
    text = (tmp_path / "report.md").read_text()
    from eval.harness import RUNTIMES

    assert f"{RUNTIMES['litert'].label}, 1 thr" in text and f"{RUNTIMES['lce'].label}, 1 thr" in text
    res["settings"]["skipped_runtimes"] = {"litert": "why"}
    assert "- **bnnzoo LiteRT** (`litert`): not measured, left out: why" in "\n".join(report.header(res))


def test_bench_litert_times_a_file_without_binary_convs(tmp_path, capsys):
    """A file without LceBconv2d (the MobileNets, DoReFa-Net) is timed whole; its binary columns are '-'."""
    from eval import bench_litert

    bench_litert.main(["--models", "mobilenet_v1_025", "--size", "32", "--runs", "1", "--warmup", "0",
                       "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("mobilenet_v1_025 ")]
    assert len(rows) == 4 and all(row[-4:] == ["-"] * 4 for row in rows[:2]), out
    assert "no LceBconv2d in the file" in out and [p.suffix for p in tmp_path.iterdir()] == [".tflite"]


def test_bench_litert_times_int8_files(tmp_path, capsys):
    """``--int8``: the model's int8 file (int8 input, quantized with the file's scale), timed in both
    runtimes with its binary convolutions alone too."""
    from eval import bench_litert

    bench_litert.main(["--int8", "--models", "quicknet_small", "--size", "32", "--runs", "1", "--warmup", "0",
                       "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("quicknet_small ")]
    assert len(rows) == 4 and "int8 files, batch 1" in out, out
    assert all(float(row[-6]) > 0 for row in rows) and float(rows[0][-4]) > 0, out  # model ms; our bconv ms
    files = list(tmp_path.iterdir())
    assert [p.name.split("-")[3] for p in files] == ["int8"]
    assert litert.has_int8(files[0].read_bytes())
    x = bench_litert.model_input(files[0].read_bytes(), 32)
    assert x.dtype == np.int8 and len(np.unique(x)) > 100


def test_eval_without_ai_edge_litert_leaves_litert_out_with_a_note():
    """ai_edge_litert made unimportable (``sys.modules[name] = None``, Python's own way to block an import)."""
    code = ("import sys; sys.modules['ai_edge_litert'] = None\n"
            "from eval import harness\n"
            "names, skipped = harness.default_runtimes()\n"
            "print(','.join(names)); print(skipped['litert'])\n"
            "print(harness.DEFAULT_RUNTIMES)\n"
            "try:\n    harness.parse_runtimes('lce,litert')\n"
            "except harness.MissingRuntimeError as e:\n    print('explicit:', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names, note, default, explicit = done.stdout.strip().splitlines()[-4:]
    assert "litert" in default.split(",")
    kept = [n for n in names.split(",") if n in default.split(",")]  # (xnnpack comes with lce)
    assert kept == [n for n in default.split(",") if n != "litert"] and "litert" not in names.split(",")
    assert "ai_edge_litert" in note and "pip install 'bnnzoo[litert]'" in note
    assert explicit.startswith("explicit: runtime 'litert' needs ai_edge_litert")


# --- LCE's own test cases, against LCE's reference kernel ------------------------------------------
# One-op files of LCE's bconv2d and quantization tests (larq_compute_engine/tflite/tests), with
# LCE's own value ranges: signs, post multipliers and biases in +-[0.01, 1.5], int8 output scale
# 1/r (r in 1..20) and zero point in -20..20, seeded from the case's id.

_TYPES = {"float32": (0, np.float32), "int32": (2, np.int32), "bool": (6, np.bool_), "int8": (9, np.int8)}
_PADDINGS = {"VALID": (1, 0), "SAME": (0, 0), "ONE": (0, 1)}  # LCE's tests: ONE is SAME with +1 padding


def _one_op_file(op: str, tensors: list, inputs: list, outputs: list, options: dict) -> bytes:
    """A flatbuffer of one custom op. ``tensors``: (name, type, shape, constant data or None,
    (scale, zero point) or None); tensor 0 is the graph's input."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema
    from flatbuffers import flexbuffers

    model = schema.ModelT()
    model.version = 3
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = op, 1
    model.operatorCodes = [code]
    model.buffers = [schema.BufferT()]
    graph = schema.SubGraphT()
    graph.tensors = []
    for name, dtype, shape, data, quant in tensors:
        t = schema.TensorT()
        t.name, t.type, t.shape, t.buffer = name.encode(), _TYPES[dtype][0], list(shape), 0
        if data is not None:
            buf = schema.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data, _TYPES[dtype][1]).tobytes(), np.uint8)
            model.buffers.append(buf)
            t.buffer = len(model.buffers) - 1
        if quant is not None:
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
            t.quantization = q
        graph.tensors.append(t)
    node = schema.OperatorT()
    node.opcodeIndex, node.inputs, node.outputs = 0, list(inputs), list(outputs)
    node.customOptions = list(flexbuffers.Dumps(options))
    graph.operators, graph.inputs, graph.outputs = [node], [0], list(outputs)
    model.subgraphs = [graph]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _rng(case: str) -> np.random.Generator:
    import zlib

    return np.random.default_rng(zlib.crc32(case.encode()))


def _packed(rng, shape, channels: int, groups: int = 1) -> np.ndarray:
    """Random bit-packed words of ``channels`` per group along the last axis (unused bits 0, as bitpacking
    leaves them)."""
    per_group = channels // groups
    words_g = -(-per_group // 32)
    bits = rng.integers(0, 2, (*shape, groups, words_g * 32), dtype=np.uint8)
    bits[..., per_group:] = 0
    return np.packbits(bits, axis=-1, bitorder="little").view(np.int32).reshape(*shape, groups * words_g)


def _bconv_case(inp, filt, groups, strides, dilation, padding, activation, output):
    """(case id, one-op LceBconv2d file), or None where LCE's own test skips the combination."""
    batch, h, w, cin = inp
    fh, fw, cout = filt
    if groups > 1 and (cin % groups or cout % groups or (cin // groups) % 32):
        return None
    case = (f"{output}-in{batch}x{h}x{w}x{cin}-f{fh}x{fw}x{cout}-g{groups}-s{strides[0]}x{strides[1]}"
            f"-d{dilation[0]}x{dilation[1]}-{padding}-{activation}")
    rng = _rng(case)
    pad_code, pad_values = _PADDINGS[padding]
    (sh, sw), (dh, dw) = strides, dilation
    eh, ew = (fh - 1) * dh + 1, (fw - 1) * dw + 1
    oh, ow = (-(-h // sh), -(-w // sw)) if pad_code == 0 else ((h - eh) // sh + 1, (w - ew) // sw + 1)
    if oh < 1 or ow < 1:
        return None
    words = -(-cin // 32)
    k = fh * fw * cin // groups
    post = lambda: rng.uniform(0.01, 1.5, cout) * rng.choice([-1.0, 1.0], cout)  # noqa: E731
    tensors = [("input", "int32", (batch, h, w, words), None, None),
               ("filter", "int32", (cout, fh, fw, words // groups), _packed(rng, (cout, fh, fw), cin // groups), None),
               ("multiplier", "float32", (cout,), post(), None), ("bias", "float32", (cout,), post(), None)]
    if output == "bitpacked":  # with a multiplier and bias as in LCE's test (its reference kernel reads them
        # for zero padding, and crashes without them)
        tensors.append(("threshold", "int32", (cout,), rng.integers(-1, k + 1, cout), None))
        tensors.append(("output", "int32", (batch, oh, ow, -(-cout // 32)), None, None))
        inputs = [0, 1, 2, 3, 4]
    else:
        quant = (1.0 / rng.integers(1, 21), int(rng.integers(-20, 21))) if output == "int8" else None
        tensors.append(("output", output, (batch, oh, ow, cout), None, quant))
        inputs = [0, 1, 2, 3, -1]
    options = dict(channels_in=cin, dilation_height_factor=dh, dilation_width_factor=dw,
                   fused_activation_function={"NONE": 0, "RELU": 1}[activation], pad_values=pad_values,
                   padding=pad_code, stride_height=sh, stride_width=sw)
    return case, _one_op_file("LceBconv2d", tensors, inputs, [len(tensors) - 1], options)


def _bconv_grid() -> list:
    """LCE's SmallTest parameters (every output type), and every 17th of its BigTest combinations with
    int8 and bit-packed outputs (17 is prime to every factor's count, so each value of each factor
    recurs; all 9000 would take minutes)."""
    import itertools

    small = itertools.product(
        [(1, 4, 4, 4), (1, 4, 4, 64), (1, 4, 4, 96), (1, 4, 4, 128), (1, 4, 4, 192), (1, 4, 4, 256)],
        [(1, 1, 1), (3, 3, 4), (3, 3, 64)], [1, 2], [(1, 1)], [(1, 1)], ["VALID", "ONE"], ["NONE"],
        ["float32", "int8", "bitpacked"])
    big = itertools.product(
        [(1, 7, 7, 4), (3, 8, 5, 64), (5, 7, 7, 96), (1, 8, 5, 128), (1, 7, 7, 192), (1, 8, 5, 256), (1, 7, 7, 512)],
        [(1, 1, 1), (3, 3, 1), (2, 3, 2), (1, 1, 3), (3, 3, 4), (2, 3, 5), (1, 1, 6), (3, 3, 7), (2, 3, 32)],
        [1, 2, 4], [(1, 1), (2, 3)], [(1, 1), (3, 2)], ["VALID", "SAME", "ONE"], ["NONE", "RELU"],
        ["int8", "bitpacked"])
    big = itertools.islice(big, 0, None, 17)
    return [c for c in (_bconv_case(*p) for p in itertools.chain(small, big)) if c is not None]


def _quantization_grid() -> list:
    """LCE's quantization test: its shapes, LceQuantize from and LceDequantize to float32, int8 and bool."""
    import itertools

    cases = []
    for shape, dtype, op in itertools.product(
            [(1, 1, 1, 1), (1, 4, 4, 1), (1, 4, 4, 2), (1, 4, 4, 31), (1, 4, 4, 32), (1, 4, 4, 33), (1, 4, 4, 64),
             (1, 4, 4, 68)], ["float32", "int8", "bool"], ["LceQuantize", "LceDequantize"]):
        case = f"{op}-{dtype}-{'x'.join(map(str, shape))}"
        rng = _rng(case)
        quant = (1.0 / rng.integers(1, 21), int(rng.integers(-20, 21))) if dtype == "int8" else None
        values = ("values", dtype, shape, None, quant)
        packed = ("packed", "int32", (*shape[:-1], -(-shape[-1] // 32)), None, None)
        tensors = [values, packed] if op == "LceQuantize" else [packed, values]
        cases.append((case, _one_op_file(op, tensors, [0], [1], {})))
    return cases


_BCONV_GRID = _bconv_grid()
_QUANTIZATION_GRID = _quantization_grid()


def _check_one_op(case: str, flatbuffer: bytes) -> None:
    """Ours on every path equal to LCE's reference kernel; the input from LCE's value ranges."""
    ours = litert.Interpreter(flatbuffer, builtin_kernels="builtin")
    detail = ours.input_details[0]
    rng = _rng(case + "/input")
    if detail["dtype"] == np.int32:  # bit-packed: its channels from the op's options or the output's shape
        from flatbuffers import flexbuffers

        _, name, options = litert.custom_ops(flatbuffer)[0]
        channels = (flexbuffers.Loads(options)["channels_in"] if name == "LceBconv2d"
                    else ours.output_details[0]["shape"][-1])
        x = _packed(rng, detail["shape"][:-1], channels)
    else:
        x = _sample(detail["dtype"], tuple(detail["shape"]), rng)
    from larq_compute_engine.tflite.python.interpreter import Interpreter as LCE

    # the whole batch in one call (LCE's predict() feeds one image at a time)
    reference = LCE(flatbuffer, num_threads=1, use_reference_bconv=True).interpreter.predict([x])
    for path, threads in _configs():
        got = litert.Interpreter(flatbuffer, path=path, num_threads=threads, builtin_kernels="builtin").predict(x)
        assert got.dtype == reference[0].dtype and got.shape == reference[0].shape, case
        assert np.array_equal(got, reference[0]), f"{case} [{path}, {threads} threads]: differs from LCE's reference"


@pytest.mark.parametrize("case, flatbuffer", _BCONV_GRID, ids=[c for c, _ in _BCONV_GRID])
def test_lce_bconv2d_test_grid_equals_lce_reference_kernel(case, flatbuffer):
    _check_one_op(case, flatbuffer)


@pytest.mark.parametrize("case, flatbuffer", _QUANTIZATION_GRID, ids=[c for c, _ in _QUANTIZATION_GRID])
def test_lce_quantization_test_grid_equals_lce_reference_kernel(case, flatbuffer):
    _check_one_op(case, flatbuffer)


def _lce_test_model(name: str):
    """The models of LCE's end2end and strip_lcedequantize tests, at 32x32, random weights and statistics."""
    import larq as lq
    import tensorflow as tf

    def quant(x):  # LCE's fake quantization: an int8 tensor of range [-3, 3]
        return tf.quantization.fake_quant_with_min_max_vars(x, -3.0, 3.0)

    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    img = tf.keras.Input((32, 32, 3))
    if name == "toy_model":  # end2end: zero and one padding, a fused ReLU, residual adds
        x = tf.keras.layers.Conv2D(32, 3, strides=2, padding="same")(img)
        for pad_values, activation in ((0.0, "relu"), (1.0, "relu"), (1.0, None)):
            y = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=pad_values, use_bias=False,
                                      activation=activation, **binary)(x)
            x = tf.keras.layers.add([tf.keras.layers.BatchNormalization()(y), x])
        x = tf.keras.layers.GlobalAvgPool2D()(x)
    elif name == "toy_model_int8":  # end2end: fake-quantized, so the binary convs write int8
        x = quant(img)
        for _ in range(2):
            x = quant(tf.keras.layers.BatchNormalization()(lq.layers.QuantConv2D(12, 3, strides=2, **binary)(x)))
        x = quant(tf.keras.layers.GlobalAveragePooling2D()(x))
    else:  # strip_lcedequantize: toy_model_sign, toy_model_int8_sign (outputs bit-packed once stripped)
        x = quant(img) if name.endswith("int8_sign") else img
        x = lq.quantizers.SteSign()(lq.layers.QuantConv2D(256, 3, padding="same", pad_values=1, **binary)(x))
        x = quant(x) if name.endswith("int8_sign") else x
    return _random_weights(tf.keras.Model(img, x))


@pytest.mark.parametrize("model_name, io, strip", [
    ("toy_model", ("int8", "int8"), False),  # test_int8_input_output, experimental_default_int8_range (-6, 6)
    ("toy_model_int8", ("int8", "int8"), False),
    ("toy_model_int8", ("float32", "float32"), False),
    ("toy_model_int8", ("int8", "float32"), False),
    ("toy_model_int8", ("float32", "int8"), False),
    ("toy_model_sign", ("float32", "float32"), True),  # test_strip_lcedequantize_ops
    ("toy_model_int8_sign", ("int8", "int8"), False),  # before stripping: LceDequantize writes int8
    ("toy_model_int8_sign", ("int8", "int8"), True),
    ("toy_model_int8_sign", ("float32", "int8"), True),
])
def test_lce_test_models_equal_lce_reference_kernel(model_name, io, strip):
    import tensorflow as tf
    from larq_compute_engine.mlir.python.util import strip_lcedequantize_ops

    from converters.tflite import convert_keras

    types = {"int8": tf.int8, "float32": tf.float32}
    options = dict(inference_input_type=types[io[0]], inference_output_type=types[io[1]])
    if model_name == "toy_model":
        options["experimental_default_int8_range"] = (-6.0, 6.0)
    flatbuffer = convert_keras(_lce_test_model(model_name), **options)
    if strip:
        flatbuffer = strip_lcedequantize_ops(flatbuffer)
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAsModel(flatbuffer, 0).Subgraphs(0)
    want = [_TYPES[io[0]][0], _TYPES["int32" if strip else io[1]][0]]
    assert [graph.Tensors(graph.Inputs(0)).Type(), graph.Tensors(graph.Outputs(0)).Type()] == want
    ops = [name for _, name, _ in litert.custom_ops(flatbuffer)]
    lce_ops = litert.custom_ops(flatbuffer)
    written = {name: graph.Tensors(graph.Operators(i).Outputs(0)).Type() for i, name, _ in lce_ops}
    read = {name: graph.Tensors(graph.Operators(i).Inputs(0)).Type() for i, name, _ in lce_ops}
    if model_name == "toy_model_int8":  # the int8 cases of LCE's ops: int8 in, int8 bconv outputs
        assert read["LceQuantize"] == written["LceBconv2d"] == _TYPES["int8"][0]
    if model_name == "toy_model_int8_sign" and not strip:
        assert read["LceQuantize"] == written["LceDequantize"] == _TYPES["int8"][0]
    assert ("LceDequantize" in ops) == (not strip and model_name.endswith("sign"))
    _check_against_references(model_name, flatbuffer, _configs(), batch=2, numpy_reference=True)
