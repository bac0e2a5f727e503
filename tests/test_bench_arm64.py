"""eval.bench_arm64: instruction counts of a deploy bundle under qemu-aarch64 with the counting plugin.

A tiny model's bundle is counted twice (1 and 2 inferences): our library's counts must be
attributed to its binary-convolution functions by name and be the same per inference in
both runs (the plugin counts exactly what the marked window executes, nothing before it).
Like the other aarch64 tests this one runs wherever the arm64 userland can be built: it
installs qemu-user and the cross compiler with apt-get when they are missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import zoo
from converters import deploy as dep


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    import torch

    torch.manual_seed(0)
    model = zoo.load("meliusnet22", **zoo.get_config("meliusnet22").tiny)
    out = tmp_path_factory.mktemp("bench-arm64") / "bundle"
    dep.deploy(model, out)
    return out


@pytest.mark.slow
def test_counts_are_attributed_and_the_same_per_inference(tiny_bundle):
    from eval import bench_arm64
    from eval.bench_litert import binary_macs

    one = bench_arm64.count_bundle(tiny_bundle, runs=1)
    two = bench_arm64.count_bundle(tiny_bundle, runs=2)
    for counts in (one, two):
        assert {b.owner for b in counts.blocks} == set(bench_arm64.OWNERS)
        functions = counts.by_function()  # from the library's symbol table
        assert functions.get("?", 0) < 0.01 * counts.instructions("bnnzoo")
        assert any(f.startswith(bench_arm64.BCONV_PREFIXES) for f in functions) and "quantize_rows" in functions
        # the binary convolutions are most of what our library executes on this model
        assert 0.5 * counts.instructions("bnnzoo") < counts.bconv_instructions() <= counts.instructions("bnnzoo")
        assert counts.instructions() == sum(counts.instructions(o) for o in bench_arm64.OWNERS)
    assert one.instructions("bnnzoo") == two.instructions("bnnzoo") > 0
    assert one.bconv_instructions() == two.bconv_instructions()
    assert one.by_function() == two.by_function()
    # LiteRT's float ops are as deterministic as ours after the warm-up
    assert one.instructions("litert") == two.instructions("litert") > 0
    macs = binary_macs((tiny_bundle / "model.tflite").read_bytes())
    assert macs > 0 and 10 < one.bconv_instructions() * 2048 / macs < 1000
    if shutil.which("llvm-mca") and shutil.which("llvm-mc"):  # modelled cycles wherever LLVM is installed
        assert one.cycles["total"] == pytest.approx(sum(one.cycles[o] for o in bench_arm64.OWNERS))
        assert 0.2 < one.cycles["total"] / one.instructions() < 5
    else:
        assert one.cycles == {}


def test_the_command_line_refuses_unknown_models_and_bad_runs(capsys):
    from eval import bench_arm64

    with pytest.raises(SystemExit):
        bench_arm64.main(["--models", "no_such_model"])
    assert "unknown model 'no_such_model'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_arm64.main(["--runs", "0"])
    assert "--runs must be at least 1" in capsys.readouterr().err


def test_json_schema_of_a_record():
    """What --json writes per model (eval's report reads these keys)."""
    from eval import bench_arm64

    counts = bench_arm64.Counts(runs=2, blocks=[
        bench_arm64.Block("bnnzoo", "/lib.so", 0x100, 10, 8, "bgemm_neon"),
        bench_arm64.Block("bnnzoo", "/lib.so", 0x200, 5, 4, "quantize_rows"),
        bench_arm64.Block("litert", "/x/ai_edge_litert/a.so", 0x10, 4, 2),
        bench_arm64.Block("other", "/usr/bin/python3.11", 0x10, 3, 2)], library=Path("/lib.so"))
    record = bench_arm64.record_of(counts, binary_macs=4096, kernels=Path("."))
    assert json.loads(json.dumps(record)) == record
    assert record["binary_macs"] == 4096
    assert record["instructions"] == {"bnnzoo": 50, "litert": 4, "other": 3}
    assert record["bconv_instructions_per_2048_macs"] == 20.0  # bgemm_neon: 10 x 8 / 2 runs per 4096 MACs
    float_model = bench_arm64.record_of(counts, binary_macs=0, kernels=Path("."))
    assert float_model["bconv_instructions_per_2048_macs"] is None


def test_a_missing_tool_without_apt_get_is_a_one_line_error_naming_the_package(tmp_path, monkeypatch):
    """``eval.arm64.ensure_tool``, which the emulation's tools go through: a tool that is on PATH is
    found; one that is not, where apt-get is not either, is an Arm64Error naming what to install."""
    from eval.arm64 import Arm64Error, ensure_tool

    (tmp_path / "mytool").write_text("#!/bin/sh\n")
    (tmp_path / "mytool").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert ensure_tool("mytool", ["mytool-pkg"]) == str(tmp_path / "mytool")
    with pytest.raises(Arm64Error) as e:
        ensure_tool("qemu-aarch64", ["qemu-user"], " (qemu-user-static cannot load TCG plugins)")
    assert str(e.value) == ("qemu-aarch64 is missing and there is no apt-get to run `apt-get install qemu-user` "
                            "(qemu-user-static cannot load TCG plugins)")
