"""bnnzoo as a user installs it: the built wheel in fresh virtual environments.

Slow (each installs packages), still run by CI. The wheel is built once per session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"


def _run(cmd: list[str], timeout: float = 1800, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The wheel of the checked-out files, built from a copy of them: pip builds in the source tree, and a
    ``build/`` folder left there by an earlier build would add modules deleted since."""
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(_source_copy(tmp_path_factory))])
    (built,) = out.glob("bnnzoo-*.whl")
    return built


def _source_copy(tmp_path_factory) -> Path:
    """The files git tracks (or would: untracked, not ignored), copied; ROOT itself outside a git checkout."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True)
    if listed.returncode != 0:
        return ROOT
    copy = tmp_path_factory.mktemp("source")
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


def test_the_wheel_holds_only_the_source_modules(wheel):
    """Every module in the wheel is one of the source tree's (nothing stale from an earlier build)."""
    import zipfile

    packages = ("zoo/", "converters/", "recipes/", "eval/")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.startswith(packages) and n.endswith(".py")}
    absent = sorted(n for n in shipped if not (ROOT / n).is_file())
    assert shipped and not absent, absent


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment (no system site-packages) holding only pip and torch."""
    _run([sys.executable, "-m", "venv", str(path)])
    py = path / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", "--no-compile", TORCH])
    return py


def _versions(py: Path, *names: str) -> dict[str, str]:
    code = "import importlib.metadata as m, json, sys; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    return json.loads(_run([str(py), "-c", code, *names]).stdout)


@pytest.mark.slow
def test_wheel_with_onnx_then_lce_converts_to_both(wheel, tmp_path):
    """The order that broke ONNX export: [onnx] resolved protobuf 7, [lce] then downgraded it."""
    started = time.monotonic()
    py = _fresh_venv(tmp_path / "venv")
    bnnzoo = str(py.parent / "bnnzoo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PYTHON"))}  # what a user's shell has
    out = tmp_path / "out"
    out.mkdir()

    try:
        # --no-compile: TensorFlow's thousands of .pyc files are most of an install's time, and unused here.
        _run([str(py), "-m", "pip", "install", "-q", "--no-compile", f"{wheel}[onnx]"])
        alone = _versions(py, "onnx", "onnxruntime", "protobuf")
        _run([str(py), "-m", "pip", "install", "-q", "--no-compile", f"{wheel}[lce]"])
        both = _versions(py, "onnx", "onnxruntime", "protobuf")
        assert both == alone, f"installing [lce] after [onnx] changed {alone} to {both}"
        _run([str(py), "-m", "pip", "check"])
        for fmt in ("onnx", "tflite"):
            result = _run([bnnzoo, "convert", "meliusnet22.mnist", "--to", fmt, "-o", str(out / f"m.{fmt}")],
                          env=env, cwd=tmp_path)
            assert (out / f"m.{fmt}").stat().st_size > 0, result.stdout
        print(f"fresh venv + torch + [onnx] + [lce] + 2 conversions: {time.monotonic() - started:.0f} s")
    finally:
        shutil.rmtree(tmp_path / "venv", ignore_errors=True)  # ~2 GB: pytest keeps its last runs' tmp folders


@pytest.mark.slow
def test_lce_then_onnx_resolves_the_same_set(wheel, tmp_path):
    """The other order, as pip resolves it (a dry run of [onnx] where [lce] is installed is what
    an install would change; here: what [lce,onnx] resolves equals what [onnx] alone does)."""
    report = tmp_path / "report.json"
    _run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report", str(report),
          f"{wheel}[onnx]"])
    alone = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    _run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report", str(report),
          f"{wheel}[lce,onnx]"])
    combined = {i["metadata"]["name"].lower(): i["metadata"]["version"]
                for i in json.loads(report.read_text())["install"]}
    for name in ("onnx", "onnxruntime", "onnxscript", "protobuf"):
        assert alone[name] == combined[name], f"{name}: {alone[name]} alone, {combined[name]} with [lce]"


HUB_CHECK = textwrap.dedent("""
    import os, sys, shutil
    sys.path.insert(0, sys.argv[1])
    import huggingface_hub, torch, zoo
    from zoo import weights as zw
    from zoo.hub import HubError
    from hub_server import HubServer
    assert huggingface_hub.__version__ == sys.argv[3], huggingface_hub.__version__
    tmp = sys.argv[2]
    model = zoo.load("mobilenet_v1", **zoo.get_config("mobilenet_v1").tiny)
    os.makedirs(f"{tmp}/hub/someone/tiny")
    zw.save(model.state_dict(), f"{tmp}/hub/someone/tiny/model.safetensors", model.zoo_config)
    with HubServer(f"{tmp}/hub") as srv:
        os.environ.update(HF_ENDPOINT=srv.url, HF_HUB_CACHE=f"{tmp}/cache")
        loaded = zoo.load("mobilenet_v1", weights="hf-hub:someone/tiny")
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
        for ref, expected in (("hf-hub:someone/missing", "not found"), ("hf-hub:someone/tiny@v9", "revision")):
            try:
                zoo.load("mobilenet_v1", weights=ref)
                raise SystemExit(f"{ref} loaded")
            except HubError as e:
                assert expected in str(e), e
        # this release takes no progress callback: a slow link (64 KiB in 0.4 s) is not a stall,
        # a server that never answers is (both read from the partial file, see zoo.hub)
        os.environ["BNNZOO_DOWNLOAD_STALL"] = "1"
        shutil.copytree(f"{tmp}/hub/someone/tiny", f"{tmp}/hub/someone/slow")
        srv.drip = (32768, 0.2)
        zoo.load("mobilenet_v1", weights="hf-hub:someone/slow")
        srv.drip = None
        srv.stall.set()
        try:
            zoo.load("mobilenet_v1", weights="hf-hub:someone/missing2")
            raise SystemExit("a stalled download did not end")
        except HubError as e:
            assert "no data for 1 s" in str(e), e
        del os.environ["BNNZOO_DOWNLOAD_STALL"]
    os.environ["HF_HUB_OFFLINE"] = "1"
    assert zoo.load("mobilenet_v1", weights="hf-hub:someone/tiny") is not None   # from the cache
    try:
        zoo.load("mobilenet_v1", weights="hf-hub:someone/other")
        raise SystemExit("offline load of an uncached repo worked")
    except HubError as e:
        assert "HF_HUB_OFFLINE" in str(e), e
    print("ok", huggingface_hub.__version__)
""")


def _hub_floor() -> str:
    import re

    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if d.startswith("huggingface-hub"))
    return re.search(r">=([\d.]+)", spec).group(1)


@pytest.mark.slow
def test_lowest_declared_huggingface_hub_loads_hub_weights(tmp_path):
    """The lower bound pyproject.toml declares, installed on its own over this environment."""
    floor = _hub_floor()
    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "-q", "--target", str(target), f"huggingface-hub=={floor}"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    result = _run([sys.executable, "-c", HUB_CHECK, str(ROOT / "tests"), str(tmp_path), floor], env=env)
    assert result.stdout.split() == ["ok", floor]


def test_license_is_an_spdx_expression():
    """setuptools deprecates ``project.license`` as a table; the SPDX string is the metadata's License-Expression."""
    import tomllib

    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    import re

    assert isinstance(license_, str) and re.fullmatch(r"[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*", license_)
