"""``bnnzoo deploy --target rpi``: bundle contents, run.py on x86 (all three runtimes: litert from a
fresh copy of the bundle, its kernels compiled from the bundle's sources), bad inputs, and the bundle
on ARM64 under qemu (``eval.arm64``, ``eval.litert_arm64``), which must equal x86."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zoo
from converters import deploy as dep
from converters.litert import toolchain
from converters.verify import ConversionError

from helpers import bomb_png

PY = sys.executable


def _tiny_model(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return zoo.load("meliusnet22", **zoo.get_config("meliusnet22").tiny)


@pytest.fixture(scope="module")
def model():
    return _tiny_model()


@pytest.fixture(scope="module")
def bundle(model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deploy") / "meliusnet22-rpi"
    report = dep.deploy(model, out, labels=[f"thing {i}" for i in range(10)], labels_source="test labels")
    assert Path(report.folder) == out
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory, bundle) -> dict:
    """One image per awkward mode, plus the plain RGB image each derives from."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    paths = {}

    def save(name, image):
        paths[name] = folder / name
        image.save(paths[name])

    save("rgb.png", Image.fromarray(rgb, "RGB"))
    save("rgba.png", Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA"))
    save("cmyk.jpg", Image.fromarray(rgb, "RGB").convert("CMYK"))
    save("grey.png", Image.fromarray(grey, "L"))
    save("grey_as_rgb.png", Image.fromarray(grey, "L").convert("RGB"))
    save("grey16.png", Image.fromarray(grey.astype(np.uint16) * 257))  # 16-bit PNG
    save("palette.gif", Image.fromarray(rgb, "RGB").convert("P"))
    (folder / "notes.txt").write_text("not an image")
    (folder / "fake.jpg").write_text("not an image either")
    paths["fake.jpg"] = folder / "fake.jpg"
    paths["folder"] = folder
    return paths


def run_py(bundle: Path, *args, python: str = PY) -> subprocess.CompletedProcess:
    return subprocess.run([python, str(bundle / "run.py"), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def logits(bundle: Path, tmp_path: Path, *args) -> np.ndarray:
    out = tmp_path / f"logits{len(list(tmp_path.glob('*.npy')))}.npy"
    proc = run_py(bundle, "--dump-logits", out, *args)
    assert proc.returncode == 0, proc.stderr
    return np.load(out)


def top5(x: np.ndarray) -> np.ndarray:
    return np.argsort(-x, axis=-1, kind="stable")[..., :5]


def load_runner(bundle: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bundle_run", bundle / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the bundle --------------------------------------------------------------------------------

def test_bundle_files_and_manifest(bundle):
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    kernels = {f"bnn_litert/{n}" for n in dep.KERNEL_FILES}
    assert names == {"model.tflite", "model.onnx", "labels.json", "preprocess.json", "manifest.json", "run.py",
                     "requirements.txt", "README.md", "sample.png"} | kernels
    for name in kernels:  # the kernels run.py builds are the ones tests/test_litert.py checks
        assert (bundle / name).read_bytes() == (dep.KERNELS_DIR / name.split("/")[1]).read_bytes()
    assert (*load_runner(bundle).KERNEL_FILES, *toolchain.SOURCES) == dep.KERNEL_FILES
    assert not list(bundle.parent.glob(".meliusnet22-rpi.*")), "temporary folders left behind"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert set(manifest["files"]) == names - {"manifest.json"}
    for name, entry in manifest["files"].items():
        assert entry["sha256"] == dep.sha256_of(bundle / name), name
        assert entry["bytes"] == (bundle / name).stat().st_size
    assert manifest["target"] == "rpi" and manifest["model"] == "meliusnet22"
    from importlib import metadata

    assert manifest["lce_version"] == metadata.version("larq-compute-engine")
    conv = manifest["conversion"]
    assert conv["tflite"]["lce_bconv2d"] == conv["tflite"]["binary_convs"] > 0
    assert conv["onnx"]["lce_bconv2d"] == conv["onnx"]["binary_convs"]  # all bit-packed
    pre = json.loads((bundle / "preprocess.json").read_text())
    assert pre["input_size"] == 32 and pre["mean"] == list(zoo.weights.IMAGENET_MEAN)  # initialised: assumed
    assert pre["layout"] == {"model.tflite": "NHWC", "model.onnx": "NCHW"}
    assert json.loads((bundle / "labels.json").read_text())[3] == "thing 3"
    reqs = (bundle / "requirements.txt").read_text()
    for pin in ("onnxruntime==1.19.2", "numpy==1.26.4", "Pillow==", "ai-edge-litert==1.4.0", "flatbuffers=="):
        assert pin in reqs
    from importlib import metadata

    for dist in ("ai-edge-litert", "flatbuffers"):  # the pins are what the tests ran with
        assert f"{dist}=={metadata.version(dist)}" in reqs
    assert "torch" not in reqs and "tensorflow" not in reqs
    readme = (bundle / "README.md").read_text()
    assert "{{" not in readme and manifest["lce_version"] in readme and "64-bit" in readme
    assert "published" in readme and "--watch" in readme and "--benchmark" in readme
    assert "--runtime litert" in readme and "--build-kernels" in readme and dep.LCE_PUBLISHED_RPI4["source"] in readme


def test_run_py_imports_neither_torch_nor_tensorflow(bundle, tmp_path):
    code = ("import runpy, sys; sys.argv = ['run.py', '--runtime', RT, '--dump-logits', OUT, SAMPLE]\n"
            "try:\n    runpy.run_path(RUN, run_name='__main__')\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "bad = [m for m in ('torch', 'tensorflow', 'keras', 'larq_compute_engine.mlir', 'zoo', 'converters')\n"
            "       if m in sys.modules]\n"
            "assert not bad, bad\n")
    for rt in ("onnx", "lce", "litert"):
        script = (f"RT, OUT, SAMPLE, RUN = {rt!r}, {str(tmp_path / (rt + '.npy'))!r}, "
                  f"{str(bundle / 'sample.png')!r}, {str(bundle / 'run.py')!r}\n" + code)
        proc = subprocess.run([PY, "-c", script], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr


def test_runtimes_agree_with_torch(bundle, model, images, tmp_path):
    import torch

    files = [bundle / "sample.png", images["rgb.png"], images["cmyk.jpg"]]
    onnx = logits(bundle, tmp_path, "--runtime", "onnx", *files)
    lce = logits(bundle, tmp_path, "--runtime", "lce", *files)
    auto = logits(bundle, tmp_path, *files)  # the venv has LCE's interpreter: auto picks it
    runner = load_runner(bundle)
    pre = json.loads((bundle / "preprocess.json").read_text())
    x = np.stack([runner.load_image(f, pre) for f in files]).transpose(0, 3, 1, 2)
    with torch.no_grad():
        ref = model(torch.from_numpy(np.ascontiguousarray(x))).numpy()
    for got in (onnx, lce, auto):
        assert got.shape == ref.shape == (3, 10)
        assert np.abs(got - ref).max() < 1e-3
        assert (top5(got) == top5(ref)).all()
    assert "(lce," in run_py(bundle, bundle / "sample.png").stdout


def test_litert_from_a_fresh_copy_equals_lce_reference_kernel(bundle, model, images, tmp_path):
    """As a user on a Pi would: a copy of the bundle folder, its kernels compiled from the bundle's own
    sources into an empty cache (--build-kernels), run.py --runtime litert run from another folder in
    isolated mode (no bnnzoo importable). Logits equal LCE's reference kernel on the same input."""
    import torch
    from larq_compute_engine.tflite.python.interpreter import Interpreter as LCE

    fresh = Path(shutil.copytree(bundle, tmp_path / "copied" / "bundle"))
    cache, elsewhere = tmp_path / "cache", tmp_path / "cwd"
    elsewhere.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "BNNZOO_LITERT_LIB"}, "BNNZOO_LITERT_CACHE": str(cache)}

    def user(*args) -> subprocess.CompletedProcess:
        return subprocess.run([PY, "-I", str(fresh / "run.py"), *map(str, args)], capture_output=True, text=True,
                              timeout=300, cwd=elsewhere, env=env)

    built = user("--build-kernels")
    assert built.returncode == 0, built.stderr
    assert "bnnzoo kernels:" in built.stdout and len(list(cache.glob("libbnn_lce-*.so"))) == 1
    files = [fresh / "sample.png", images["rgb.png"], images["cmyk.jpg"]]
    proc = user("--runtime", "litert", "--dump-logits", tmp_path / "litert.npy", *files)
    assert proc.returncode == 0, proc.stderr
    assert "(litert," in proc.stdout and "compiling" not in proc.stderr  # built once, then cached
    got = np.load(tmp_path / "litert.npy")
    assert not (fresh / "bnn_litert" / "__pycache__").exists()  # the bundle stays as deployed

    runner = load_runner(fresh)
    pre = json.loads((fresh / "preprocess.json").read_text())
    x = np.stack([runner.load_image(f, pre) for f in files])
    lce = LCE((fresh / "model.tflite").read_bytes(), num_threads=1, use_reference_bconv=True)
    ref = np.concatenate([lce.predict(x[i:i + 1]) for i in range(len(x))])
    with torch.no_grad():
        torch_ref = model(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))).numpy()
    assert got.shape == ref.shape == (3, 10)
    # LiteRT's XNNPACK rounds the float ops apart from LCE's; every binary op is bit-exact (test_litert)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    assert (top5(got) == top5(ref)).all() and np.abs(got - torch_ref).max() < 1e-3

    bench = user("--runtime", "litert", "--benchmark", "3", "--threads", "2")
    assert bench.returncode == 0, bench.stderr
    assert "on litert 1.4.0 + bnnzoo kernels (" in bench.stdout and "2 thread(s), 3 runs" in bench.stdout


def test_printed_top5_and_benchmark(bundle):
    proc = run_py(bundle, "--runtime", "onnx", bundle / "sample.png")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "ms)" in lines[0] and len(lines) == 6 and "thing" in lines[1]
    proc = run_py(bundle, "--runtime", "onnx", "--benchmark", "5", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "2 thread(s), 5 runs" in proc.stdout and "median" in proc.stdout and "max" in proc.stdout


def test_image_modes_are_converted(bundle, images, tmp_path):
    got = logits(bundle, tmp_path, "--runtime", "onnx", *(images[k] for k in
                 ("rgb.png", "rgba.png", "cmyk.jpg", "grey.png", "grey_as_rgb.png", "grey16.png", "palette.gif")))
    assert np.isfinite(got).all() and got.shape == (7, 10)
    np.testing.assert_allclose(got[1], got[0], atol=1e-5)  # opaque RGBA == RGB
    np.testing.assert_allclose(got[3], got[4], atol=1e-5)  # greyscale == its RGB copy
    np.testing.assert_allclose(got[5], got[3], atol=1e-5)  # 16-bit greyscale == its 8-bit values


def test_watch_folder_once(bundle, images, tmp_path):
    proc = run_py(bundle, "--runtime", "onnx", "--watch", images["folder"], "--once", "--dump-logits",
                  tmp_path / "w.npy")
    assert proc.returncode == 0, proc.stderr
    assert "skipped:" in proc.stderr and "fake.jpg" in proc.stderr  # a broken file does not stop the loop
    assert np.load(tmp_path / "w.npy").shape == (7, 10)


# --- bad inputs: one-line errors -----------------------------------------------------------------

def _one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 1
    err = proc.stderr.strip()
    assert err.startswith("run.py: error:") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err


def test_bad_images(bundle, images, tmp_path):
    _one_line_error(run_py(bundle, images["fake.jpg"]), "not an image")
    _one_line_error(run_py(bundle, tmp_path / "nope.jpg"), "does not exist")
    _one_line_error(run_py(bundle, images["folder"]), "is a folder")
    _one_line_error(run_py(bundle, "--runtime", "onnx", "--threads", "0", bundle / "sample.png"), "positive")


@pytest.fixture
def copy(bundle, tmp_path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def test_missing_bundle_file(copy):
    (copy / "model.onnx").unlink()
    _one_line_error(run_py(copy, "--runtime", "onnx", copy / "sample.png"), "model.onnx is missing")
    (copy / "labels.json").unlink()
    _one_line_error(run_py(copy, copy / "sample.png"), "labels.json is missing")
    (copy / "manifest.json").unlink()
    _one_line_error(run_py(copy, copy / "sample.png"), "no manifest.json")


def test_model_from_another_bundle(copy, tmp_path):
    from converters import to_onnx

    other = _tiny_model(seed=1)
    to_onnx(other, str(tmp_path / "other.onnx"), bitpack=True)
    shutil.copyfile(tmp_path / "other.onnx", copy / "model.onnx")
    _one_line_error(run_py(copy, "--runtime", "onnx", copy / "sample.png"), "model.onnx does not match", "manifest")
    (copy / "model.tflite").write_bytes((copy / "model.tflite").read_bytes()[:-8] + b"\0" * 8)
    _one_line_error(run_py(copy, "--runtime", "lce", copy / "sample.png"), "model.tflite does not match")
    _one_line_error(run_py(copy, "--runtime", "litert", copy / "sample.png"), "model.tflite does not match")


def test_edited_kernel_sources_are_refused_before_compiling(copy, tmp_path):
    source = copy / "bnn_litert" / "bconv.c"
    source.write_text(source.read_text() + "\n/* edited */\n")
    env = {**os.environ, "BNNZOO_LITERT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([PY, str(copy / "run.py"), "--runtime", "litert", copy / "sample.png"], capture_output=True,
                          text=True, timeout=300, env=env)
    _one_line_error(proc, "bnn_litert/bconv.c does not match")
    assert not (tmp_path / "cache").exists()  # nothing was compiled


def test_litert_without_a_compiler_is_one_line(copy, tmp_path):
    env = {**os.environ, "CC": str(tmp_path / "no-cc"), "BNNZOO_LITERT_CACHE": str(tmp_path / "cache")}
    env.pop("BNNZOO_LITERT_LIB", None)
    proc = subprocess.run([PY, str(copy / "run.py"), "--runtime", "litert", copy / "sample.png"], capture_output=True,
                          text=True, timeout=300, env=env)
    _one_line_error(proc, "no C compiler found", "apt-get install gcc")


# --- deploy's own errors and atomicity ----------------------------------------------------------------

def test_deploy_refuses_and_leaves_nothing(model, bundle, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="already exists"):
        dep.deploy(model, bundle)
    with pytest.raises(ValueError, match="unknown deploy target"):
        dep.deploy(model, tmp_path / "x", target="jetson")
    with pytest.raises(ValueError, match="labels"):
        dep.deploy(model, tmp_path / "x", labels=["a", "b"])
    (tmp_path / "notabundle").mkdir()
    with pytest.raises(ValueError, match="not a bundle"):
        dep.deploy(model, tmp_path / "notabundle", overwrite=True)

    import converters

    def fail(*args, **kwargs):
        raise ConversionError("tflite verification failed: simulated")

    monkeypatch.setattr(converters, "to_tflite", fail)
    with pytest.raises(ConversionError, match="nothing was written"):
        dep.deploy(model, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notabundle"]


def test_cli_arguments(model, tmp_path):
    from bnnzoo.cli import command_module, command_parser

    parser = command_parser("deploy")
    bare = zoo.weights.save(model.state_dict(), tmp_path / "best.safetensors")  # no config.json beside it
    with pytest.raises(ValueError, match=r"nothing names its architecture.*--arch NAME"):
        command_module("deploy").run(parser.parse_args([str(bare), "--target", "rpi"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["meliusnet22", "--target", "jetson"])


# --- ARM64 under emulation: must run, never skip -------------------------------------------------

@pytest.mark.slow
def test_bundle_on_arm64_equals_x86(bundle, images):
    """Builds (or reuses) the aarch64 userland and runs run.py under qemu-aarch64-static.

    Any failure to get qemu or the userland is an Arm64Error: the test fails with the reason."""
    from eval import arm64

    files = [str(bundle / "sample.png"), str(images["rgb.png"]), str(images["cmyk.jpg"]), str(images["grey16.png"])]
    result = arm64.compare_with_host(bundle, files, log=lambda line: None)
    assert "(onnx," in result["arm64_stdout"]
    assert result["top5_identical"], (result["arm64_stdout"], result["host_stdout"])
    assert result["max_abs_diff"] < 1e-4


@pytest.mark.slow
def test_bundle_litert_on_arm64_equals_x86(bundle, images):
    """run.py --runtime litert under qemu-aarch64-static, in the userland of the bundle's own
    requirements.txt (ai-edge-litert's aarch64 wheel), the kernels cross-compiled from the bundle's
    bnn_litert/ (the userland has no compiler): logits equal this host's run of the same bundle."""
    from eval import litert_arm64

    files = [str(bundle / "sample.png"), str(images["rgb.png"]), str(images["grey16.png"])]
    result = litert_arm64.run_bundle(bundle, files, log=lambda line: None)
    assert "(litert," in result["arm64_stdout"] and "(litert," in result["host_stdout"]
    assert result["top5_identical"], (result["arm64_stdout"], result["host_stdout"])
    assert result["max_abs_diff"] < 1e-4


# --- faults: decompression bombs, bad outputs, one bad image among many, killed deploys ------------

def test_decompression_bomb_is_one_line(bundle, tmp_path):
    _one_line_error(run_py(bundle, "--runtime", "onnx", bomb_png(tmp_path / "bomb.png")), "too large to decode")


def test_one_bad_image_does_not_stop_the_batch(bundle, images, tmp_path):
    out = tmp_path / "logits.npy"
    bomb = bomb_png(tmp_path / "bomb.png")
    proc = run_py(bundle, "--runtime", "onnx", "--dump-logits", out, images["rgb.png"], bomb, images["fake.jpg"],
                  images["grey.png"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(images["rgb.png"]) in proc.stdout and str(images["grey.png"]) in proc.stdout
    assert proc.stderr.count("run.py: skipped:") == 2 and "2 of 4 image(s) could not be read" in proc.stderr
    assert np.load(out).shape == (2, 10)  # the readable images' logits are still written


def test_dump_logits_to_a_missing_folder_fails_before_inference(bundle, tmp_path):
    missing = tmp_path / "no" / "such" / "l.npy"
    proc = run_py(bundle, "--runtime", "onnx", "--dump-logits", missing, bundle / "sample.png")
    _one_line_error(proc, "does not exist; create it first")
    assert "(onnx," not in proc.stdout  # refused before any image was classified


def test_killed_deploy_leaves_a_temporary_the_next_deploy_removes(model, tmp_path):
    """SIGKILL mid-deploy (a real process, killed while it converts) leaves its hidden temporary
    folder and its lock file; the kernel released the lock with the process, so the next deploy of the
    same bundle is not refused, removes the temporary, and leaves no lock file either. (A live writer's
    temporaries are never removed: tests/test_reliability.py; two live deploys of one bundle cannot
    run at once: test_a_bundle_folder_held_by_another_deploy_is_refused.)"""
    import signal
    import time

    out = tmp_path / "b-rpi"
    script = ("import sys, time, zoo; from converters.deploy import deploy; "
              "m = zoo.load('meliusnet22', **zoo.get_config('meliusnet22').tiny); "
              "deploy(m, sys.argv[1], log=lambda line: time.sleep(600))")
    proc = subprocess.Popen([PY, "-c", script, str(out)])
    try:
        deadline = time.time() + 120
        while not list(tmp_path.glob(".b-rpi.*.tmp")) and time.time() < deadline:
            time.sleep(0.1)
        (killed,) = tmp_path.glob(".b-rpi.*.tmp")
        assert killed.is_dir() and f".{proc.pid}." in killed.name
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert (tmp_path / ".b-rpi.lock").exists()  # the file stays; its lock died with the process

        def stop(line: str) -> None:
            raise KeyboardInterrupt  # the second deploy stops at its first step: only its start-up matters

        with pytest.raises(KeyboardInterrupt):
            dep.deploy(model, out, log=stop)
        assert sorted(tmp_path.iterdir()) == [] and not out.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bundle_folder_held_by_another_deploy_is_refused(model, tmp_path, capsys):
    """The lock a running deploy holds: a second deploy of that bundle is refused in one line before it
    converts or writes anything (deterministic: this process holds the lock the first deploy would)."""
    from bnnzoo.cli import main as cli_main
    from zoo import fileio

    out = tmp_path / "b-rpi"
    with fileio.lock(tmp_path / ".b-rpi.lock"):
        with pytest.raises(fileio.LockedError, match="in use by another process"):
            dep.deploy(model, out)
        assert cli_main(["deploy", "meliusnet22", "--tiny", "--target", "rpi", "-o", str(out), "--force"]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if "warning:" not in line]  # initialised weights
        assert len(err) == 1 and "in use by another process" in err[0] and str(os.getpid()) in err[0], err
        assert sorted(p.name for p in tmp_path.iterdir()) == [".b-rpi.lock"]


def test_two_deploys_started_together_into_one_folder_one_is_refused(tmp_path):
    """Two `bnnzoo deploy ... -o b --force` at once: one writes the bundle, the other is refused in one
    line (before, both exited 0 and b/ held whichever replace came last)."""
    out = tmp_path / "b"
    cmd = [PY, "-m", "bnnzoo", "deploy", "meliusnet22", "--tiny", "--target", "rpi", "-o", str(out), "--force"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate()) for p in procs]
    assert sorted(r[0] for r in results) == [0, 1], results
    err = [line for line in next(r[2] for r in results if r[0] == 1).splitlines() if "warning:" not in line]
    assert len(err) == 1 and "in use by another process" in err[0], err
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(dep.sha256_of(out / name) == entry["sha256"] for name, entry in manifest["files"].items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_a_corrupt_cached_kernel_library_is_rebuilt(copy, tmp_path):
    """A cut or edited library in the kernel cache (disk full mid-copy, a bit flipped) fails its recorded
    sha256 and is built again before anything loads it (before: OSError traceback, on every run)."""
    env = {**os.environ, "BNNZOO_LITERT_CACHE": str(tmp_path / "cache")}
    env.pop("BNNZOO_LITERT_LIB", None)
    built = subprocess.run([PY, str(copy / "run.py"), "--build-kernels"], capture_output=True, text=True, timeout=300,
                           env=env)
    assert built.returncode == 0, built.stderr
    (library,) = (tmp_path / "cache").glob("*.so")
    good = library.read_bytes()
    for damaged in (good[:100], good[:-64] + bytes(64)):
        library.write_bytes(damaged)
        proc = subprocess.run([PY, str(copy / "run.py"), "--runtime", "litert", copy / "sample.png"],
                              capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0 and "(litert," in proc.stdout, proc.stderr
        assert "does not match its recorded sha256: rebuilding it" in proc.stderr, proc.stderr
        assert library.read_bytes() != damaged


def _edit_manifest(copy: Path, edit) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(edit(manifest)))


@pytest.mark.parametrize("case, edit, message", [
    ("entry without sha256", lambda m: {**m, "files": {**m["files"], "model.onnx": {"bytes": 1}}},
     "the entry of model.onnx has no sha256"),
    ("a list", lambda m: [m], "holds a JSON list, not an object"),
    ("a name out of the bundle", lambda m: {**m, "files": {**m["files"], "../../outside.txt": m["files"]["run.py"]}},
     "'../../outside.txt' is not a path inside the bundle"),
    ("preprocess without a size", None, "preprocess.json: input_size and resize must be integers"),
])
def test_a_bad_manifest_is_one_line(case, edit, message, copy):
    """The manifest is checked as a whole before anything it lists is used (before: KeyError and
    'list indices must be integers' tracebacks)."""
    if edit is None:  # preprocess.json rewritten with its manifest entry to match: still refused
        pre = {**json.loads((copy / "preprocess.json").read_text()), "input_size": "big"}
        (copy / "preprocess.json").write_text(json.dumps(pre))
        edit = lambda m: {**m, "files": {**m["files"], "preprocess.json": {  # noqa: E731
            "sha256": dep.sha256_of(copy / "preprocess.json"), "bytes": (copy / "preprocess.json").stat().st_size}}}
    _edit_manifest(copy, edit)
    _one_line_error(run_py(copy, "--runtime", "onnx", copy / "sample.png"), message)


@pytest.mark.parametrize("runtime", ["lce", "litert"])
def test_a_damaged_model_tflite_is_refused_even_with_a_matching_manifest(runtime, copy, tmp_path):
    """A bundle whose model.tflite was damaged before its manifest was written (or whose manifest was
    rewritten to match): the structure is checked before LCE's or LiteRT's interpreter reads it."""
    data = (copy / "model.tflite").read_bytes()
    (copy / "model.tflite").write_bytes(data[: len(data) // 2])
    _edit_manifest(copy, lambda m: {**m, "files": {**m["files"], "model.tflite": {
        "sha256": dep.sha256_of(copy / "model.tflite"), "bytes": len(data) // 2}}})
    env = {**os.environ, "BNNZOO_LITERT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([PY, str(copy / "run.py"), "--runtime", runtime, copy / "sample.png"], capture_output=True,
                          text=True, timeout=300, env=env)
    _one_line_error(proc, "model.tflite is not a TFLite flatbuffer")
