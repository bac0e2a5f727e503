"""bnnzoo's LCE kernels on aarch64, under qemu: the same LCE files, the same outputs as on this host.

The library is cross-compiled here (``aarch64-linux-gnu-gcc``, Debian's
``gcc-aarch64-linux-gnu``) and loaded by the aarch64 ``ai-edge-litert`` wheel in the
emulated Python 3.11 userland of ``eval.arm64`` (``BNNZOO_LITERT_LIB`` points the
wrapper at it, since the userland has no compiler). Every output of every LCE op, and
the model outputs, are compared with this host's run of the same file: LCE ops exactly
(NEON against AVX-512/AVX2), model outputs reported (XNNPACK differs by architecture). A file
with int8 tensors (``to_tflite(..., int8=True)``) runs LiteRT's reference kernels on both sides
(:func:`probe_run`), whose int8 rounding does not depend on the architecture.

``--bundle`` runs a deploy bundle's ``run.py --runtime litert`` the same way (through
``eval.arm64``, in the userland of the bundle's ``requirements.txt``), with the kernels
cross-compiled from the bundle's own ``bnn_litert/`` sources, and compares its logits with
this host's run of the same bundle.

Usage::

    python -m eval.litert_arm64 a.tflite [b.tflite ...]     # prints one line per file
    python -m eval.litert_arm64 --bundle meliusnet22-rpi/ [IMAGE ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from eval.arm64 import (
    PYTHON,
    Arm64Error,
    build_userland,
    compare_with_host,
    ensure_qemu,
    ensure_tool,
    userland_env,
)

logger = logging.getLogger(__name__)

__all__ = ["WHEELS", "ensure_cross_compiler", "cross_compile", "probe_run", "fused_run_equal", "run_files",
           "run_bundle", "main"]

WHEELS = ("ai-edge-litert==1.4.0", "numpy==1.26.4", "flatbuffers==25.12.19", "backports.strenum==1.2.8",
          "tqdm==4.67.1", "typing-extensions==4.12.2")
REPO = Path(__file__).resolve().parent.parent

_RUNNER = r"""
import json, sys
sys.path.insert(0, {repo!r})
import numpy as np
from eval.litert_arm64 import fused_run_equal, probe_run
out = {{}}
for path in {files!r}:
    data = open(path, "rb").read()
    got, added, it = probe_run(data)
    np.savez({dest!r} + "/" + str(len(out)) + ".npz", *got)
    out[path] = [it.path, fused_run_equal(data, got[:len(got) - len(added)])]
print(json.dumps(out))
"""


def probe_run(flatbuffer: bytes) -> tuple[list, list, object]:
    """One run of a file with every LCE op's output exposed, on a seeded input of its type
    (standard normal floats, every int8 value): ``(outputs, names of the added outputs, interpreter)``.

    A file with int8 tensors runs LiteRT's reference kernels (``builtin_kernels="reference"``): the
    int8 rounding of XNNPACK and of some optimized builtin kernels (LEAKY_RELU) differs between
    architectures, and a sign moved by one int8 step would feed the next LCE op other values.
    """
    from converters import litert

    probe, added = litert.with_outputs(flatbuffer, litert.LCE_OPS)
    it = litert.Interpreter(probe, builtin_kernels="reference" if litert.has_int8(flatbuffer) else "xnnpack")
    got = it.predict(_seeded_input(it))
    return (got if isinstance(got, list) else [got]), added, it


def _seeded_input(it) -> np.ndarray:
    detail = it.input_details[0]
    rng = np.random.default_rng(0)
    shape = (1, *detail["shape"][1:])
    return (rng.integers(-128, 128, shape).astype(np.int8) if detail["dtype"] == np.int8
            else rng.standard_normal(shape).astype(np.float32))


def fused_run_equal(flatbuffer: bytes, model_outputs: Sequence[np.ndarray]) -> bool:
    """Whether the file itself, where each ``LceBconv2d`` may write the residual ``ADD`` after it
    (:class:`converters.litert.Interpreter`'s ``fuse_add``), gives exactly ``model_outputs``, the
    model outputs of :func:`probe_run` (whose exposed LCE outputs keep every ADD apart)."""
    from converters import litert

    it = litert.Interpreter(flatbuffer, builtin_kernels="reference" if litert.has_int8(flatbuffer) else "xnnpack")
    got = it.predict(_seeded_input(it))
    got = got if isinstance(got, list) else [got]
    return len(got) == len(model_outputs) and all(np.array_equal(a, b) for a, b in zip(got, model_outputs))


def ensure_cross_compiler() -> str:
    """Path of ``aarch64-linux-gnu-gcc``; installs Debian's ``gcc-aarch64-linux-gnu`` when missing (as root)."""
    return ensure_tool("aarch64-linux-gnu-gcc", ["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"])


def cross_compile(dest: Path, sources: Optional[Path] = None) -> Path:
    """The kernel library built for aarch64 with the cross compiler (from the folder ``sources``,
    default ``converters/litert``), with the flags of a native build."""
    from converters.litert import toolchain

    cc = ensure_cross_compiler()
    lib = dest / "libbnn_lce-aarch64.so"
    sources = sources or toolchain.HERE
    done = subprocess.run(toolchain.compile_command(cc, lib, sources), capture_output=True, text=True)
    if done.returncode != 0:
        raise Arm64Error(f"cross-compiling the kernels in {sources} failed: {done.stderr.strip()[-500:]}")
    return lib


def run_files(files: Sequence[str], cache: Optional[Path] = None) -> list[str]:
    """One line per file: its LCE ops' outputs and model outputs, aarch64 (qemu) against this host.

    Raises:
        Arm64Error: The emulation failed, or an LCE op's output differs.
    """
    qemu = ensure_qemu()
    root = build_userland(cache, WHEELS)
    files = [str(Path(f).resolve()) for f in files]
    with tempfile.TemporaryDirectory() as tmp:
        lib = cross_compile(Path(tmp))
        code = _RUNNER.format(repo=str(REPO), files=files, dest=tmp)
        env = {**userland_env(root), "BNNZOO_LITERT_LIB": str(lib)}
        proc = subprocess.run([qemu, "-L", str(root), str(root / PYTHON), "-I", "-c", code], capture_output=True,
                              text=True, env=env, timeout=1800)
        if proc.returncode != 0:
            raise Arm64Error(f"aarch64 run failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
        paths = json.loads(proc.stdout.strip().splitlines()[-1])
        lines = []
        for i, path in enumerate(files):
            host, added, it = probe_run(Path(path).read_bytes())
            with np.load(os.path.join(tmp, f"{i}.npz")) as z:
                arm = [z[f"arr_{k}"] for k in range(len(z.files))]
            n_model = len(host) - len(added)
            for name, a, b in zip(it.output_names[n_model:], arm[n_model:], host[n_model:]):
                if a.shape != b.shape or not np.array_equal(a, b):
                    raise Arm64Error(f"{Path(path).name}: {name} differs between aarch64 and this host")
            arm_path, arm_fused = paths[path]
            for where, equal in (("aarch64", arm_fused), ("this host", fused_run_equal(Path(path).read_bytes(),
                                                                                         host[:n_model]))):
                if not equal:
                    raise Arm64Error(f"{Path(path).name}: on {where}, the model outputs with residual ADDs fused "
                                     "into LceBconv2d differ from those of the ops run apart")
            diff = max(float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
                       for a, b in zip(arm[:n_model], host[:n_model]))
            lines.append(f"{Path(path).name}: {len(added)} LCE op outputs equal (aarch64 {arm_path} vs host "
                         f"{it.path}), fused ADDs exact on both, model outputs max |diff| {diff:.3g}")
        return lines


def run_bundle(bundle: Path, images: Sequence[str], cache: Optional[Path] = None, log=logger.info) -> dict:
    """A bundle's ``run.py --runtime litert`` on aarch64 (qemu) and on this host: the logits compared.

    Returns:
        ``eval.arm64.compare_with_host``'s result.

    Raises:
        Arm64Error: The cross compilation or either run failed.
    """
    bundle = Path(bundle)
    from converters.litert import toolchain

    sources = bundle / "bnn_litert"
    missing = [name for name in toolchain.C_FILES if not (sources / name).is_file()]
    if missing:
        raise Arm64Error(f"{bundle} has no bnn_litert/{missing[0]}: re-run `bnnzoo deploy` to get a bundle with "
                         "this version's kernels")
    with tempfile.TemporaryDirectory() as tmp:
        lib = cross_compile(Path(tmp), sources)
        return compare_with_host(bundle, images, cache, runtime="litert", log=log, env={"BNNZOO_LITERT_LIB": str(lib)})


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="TFLite files; with --bundle: images (default its sample.png)")
    parser.add_argument("--bundle", type=Path, help="a folder written by `bnnzoo deploy NAME --target rpi`")
    args = parser.parse_args(argv)
    if args.bundle is None and not args.files:
        parser.error("give TFLite files, or --bundle DIR")
    try:
        if args.bundle is not None:
            result = run_bundle(args.bundle, args.files or [str(args.bundle / "sample.png")], log=print)
            print(f"litert_arm64: {args.bundle}: top-5 identical {result['top5_identical']}, max |aarch64 - host| "
                  f"{result['max_abs_diff']:.3g}")
            return 0 if result["top5_identical"] and result["max_abs_diff"] < 1e-4 else 1
        for line in run_files(args.files):
            print(line)
    except Arm64Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
