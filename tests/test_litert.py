"""bnnzoo's LCE kernels in the LiteRT interpreter (converters.litert), layer by layer.

Every registered model, at its tiny size, is converted to LCE's TFLite format and run in
our runtime: every output of every LCE op (LceQuantize, LceBconv2d, LceBMaxPool2d,
LceDequantize) must equal LCE's reference kernel exactly, on every code path this CPU
has, and the model's outputs must agree within float tolerance (LiteRT's builtin
kernels differ from LCE's in rounding). Each LceBconv2d is also checked against a NumPy
implementation of the op's semantics, which is the only oracle where LCE's interpreter
refuses a file it converted (per-position multipliers).
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ai_edge_litert  # noqa: F401  (the 'litert' extra, in 'dev': missing it fails, never skips)

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


def _tflite(name: str, folder) -> bytes:
    """The tiny model's file (converted once per session, helpers.tiny_tflite), copied into ``folder``."""
    data = tiny_tflite(name).read_bytes()
    (folder / f"{name}.tflite").write_bytes(data)
    return data


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
    first = litert.Interpreter(probe)
    shape = first._inputs[0]["shape"]
    x = np.random.default_rng(0).standard_normal((batch, *shape[1:])).astype(np.float32)
    n_model_outputs = len(first.output_names) - len(added)
    reference = _lce_reference(probe, x)
    bconvs = list(_bconv_ops(probe))
    assert first.lce_ops == sum(1 for _ in litert.custom_ops(flatbuffer))
    # LCE's interpreter refuses only per-position multipliers (which it cannot run)
    assert reference is not None or any(mul is not None and mul.ndim > 1 for *_, mul, _, _ in bconvs), name
    for n_config, (path, threads) in enumerate(configs):
        ours = litert.Interpreter(probe, path=path, num_threads=threads)
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
                np.testing.assert_allclose(a, b, atol=FLOAT_ATOL + FLOAT_RTOL * np.abs(b).max(), rtol=0)
        # NumPy is slow: once where LCE's reference checked every path, on every path where it could not
        if not ((numpy_reference and n_config == 0) or reference is None):
            continue
        for in_name, out_name, options, filt, mul, bias, thr in bconvs:
            for i in range(len(x)):
                expected = _bconv_reference(named[in_name][i:i + 1], filt, options, mul, bias, thr,
                                            named[out_name].shape[-1])
                if thr is not None:
                    assert np.array_equal(named[out_name][i:i + 1], expected), f"{name} [{path}]: {out_name}"
                else:  # the kernel computes pop * (-2 m) + (K m + b): its rounding scales with K |m|
                    k = filt.shape[1] * filt.shape[2] * flexbuffers.Loads(options)["channels_in"]
                    tol = 1e-6 * (k * np.abs(mul) + np.abs(bias)) + 1e-6
                    assert np.all(np.abs(named[out_name][i:i + 1] - expected) <= tol), f"{name} [{path}]: {out_name}"


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_lce_op_equals_lce_reference_kernel(name, tmp_path):
    paths = _paths()
    # every code path on one thread, and the best one on 3 (rows split over a thread pool)
    configs = [(p, 1) for p in paths] + [(paths[-1], 3)]
    _check_against_references(name, _tflite(name, tmp_path), configs, batch=2, numpy_reference=True)


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
    """One tiny model with LCE ops per family, cross-compiled kernels in the aarch64 ai-edge-litert
    wheel under qemu-aarch64-static: every LCE op output equal to this host's (eval.litert_arm64)."""
    from eval import litert_arm64

    families = {}
    for name in zoo.list_models():
        families.setdefault(zoo.get_config(name).family, name)
    files = []
    for name in families.values():
        data = _tflite(name, tmp_path)
        if litert.custom_ops(data):
            files.append(str(tmp_path / f"{name}.tflite"))
    assert files
    lines = litert_arm64.run_files(files)
    assert len(lines) == len(files) and all("LCE op outputs equal (aarch64 neon" in line for line in lines), lines


# --- every option the kernels implement, on small larq models ----------------------------------

def _larq_model(conv: dict, pool: bool):
    """QuantConv2D(conv) -> BN -> [MaxPool] -> QuantConv2D -> BN on an 11x11x64 input, random weights."""
    import larq as lq
    import tensorflow as tf

    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                  use_bias=False)
    x = tf.keras.Input((11, 11, 64))
    y = tf.keras.layers.BatchNormalization()(lq.layers.QuantConv2D(64, 3, **binary, **conv)(x))
    if pool:
        y = tf.keras.layers.MaxPool2D(2, padding="same")(y)
    y = tf.keras.layers.BatchNormalization()(lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0,
                                                                   **binary)(y))
    model = tf.keras.Model(x, y)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 2, w.shape).astype(np.float32) if "variance" in v.name
                       else rng.standard_normal(w.shape).astype(np.float32)
                       for w, v in zip(model.get_weights(), model.weights)])
    return model


@pytest.mark.parametrize("conv, pool", [
    (dict(padding="same", pad_values=0.0, strides=2), False),  # zero padding, stride 2, bit-packed output
    (dict(padding="valid", dilation_rate=2), False),
    (dict(padding="same", pad_values=1.0, groups=2), False),
    (dict(padding="same", pad_values=1.0, strides=(1, 2)), True),  # LceBMaxPool2d
])
def test_options_of_small_larq_models_equal_lce_reference_kernel(conv, pool):
    from converters.tflite import convert_keras

    flatbuffer = convert_keras(_larq_model(conv, pool))
    ops = [name for _, name, _ in litert.custom_ops(flatbuffer)]
    assert ops.count("LceBconv2d") == 2 and ("LceBMaxPool2d" in ops) == pool
    _check_against_references(str(conv), flatbuffer, [(p, 1) for p in _paths()], batch=2, numpy_reference=True)


@pytest.mark.parametrize("activation", [1, 2, 3])  # RELU, RELU_N1_TO_1, RELU6
def test_fused_activations_equal_lce_reference_kernel(activation):
    """LCE's converter fuses no activation in the zoo's models: the option is set in the file."""
    from converters.tflite import convert_keras

    flatbuffer = convert_keras(_larq_model(dict(padding="same", pad_values=1.0), False))
    last = [i for i, name, _ in litert.custom_ops(flatbuffer) if name == "LceBconv2d"][-1]
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    codes = [model.OperatorCodes(i).CustomCode() for i in range(model.OperatorCodesLength())]
    first_bconv = next(j for j in range(model.Subgraphs(0).OperatorsLength())
                       if codes[model.Subgraphs(0).Operators(j).OpcodeIndex()] == b"LceBconv2d")
    assert last != first_bconv
    edited = _with_options_at(flatbuffer, last, lambda o: {**o, "fused_activation_function": activation})
    _check_against_references(f"activation {activation}", edited, [(_paths()[-1], 1)], batch=2,
                              numpy_reference=True)


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

    from eval import cli, report

    rc = cli.main(["--tiny", "meliusnet22", "--baseline", "none", "--threads", "1", "--runs", "2", "--warmup", "0",
                   "--no-progress", "-o", str(tmp_path)])  # the default runtimes
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    (row,) = res["models"]
    assert {"lce", "litert"} <= set(row["latency_ms"]) and row["latency_ms"]["litert"]["1"]["median"] > 0
    assert f"code path {litert.code_path()}" in res["settings"]["runtimes"]["litert"]
    assert res["settings"]["skipped_runtimes"] == {}
    text = (tmp_path / "report.md").read_text()
    assert "bnnzoo LiteRT, 1 thr" in text and "LCE, 1 thr" in text
    res["settings"]["skipped_runtimes"] = {"litert": "why"}
    assert "- **bnnzoo LiteRT** (`litert`): not measured, left out: why" in "\n".join(report.header(res))


def test_eval_without_ai_edge_litert_leaves_litert_out_with_a_note():
    """ai_edge_litert made unimportable (``sys.modules[name] = None``, Python's own way to block an import)."""
    code = ("import sys; sys.modules['ai_edge_litert'] = None\n"
            "from eval import harness\n"
            "names, skipped = harness.default_runtimes()\n"
            "print(','.join(names)); print(skipped['litert'])\n"
            "try:\n    harness.parse_runtimes('lce,litert')\n"
            "except harness.MissingRuntimeError as e:\n    print('explicit:', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    names, note, explicit = done.stdout.strip().splitlines()[-3:]
    assert names.split(",") == ["lce", "xnnpack", "onnx", "torch"]
    assert "ai_edge_litert" in note and "pip install 'bnnzoo[litert]'" in note
    assert explicit.startswith("explicit: runtime 'litert' needs ai_edge_litert")
