"""ARM64 cost benchmark: instructions and modelled Cortex-A72 cycles of one inference of a deploy bundle.

For each model this builds its deploy bundle (``bnnzoo deploy NAME --target rpi``, random
weights from seed 0, 224x224, cached), cross-compiles bnnzoo's LCE kernels for aarch64
(``aarch64-linux-gnu-gcc``, the flags of a native build; ``--kernels DIR`` takes the C
sources from another folder, e.g. an older checkout, for before/after figures) and runs
the bundle's own ``run.py`` code (``Bundle``, ``make_runtime(..., "litert", 1)``,
``load_image`` of its ``sample.png``) in the aarch64 Python userland of ``eval.arm64``
under ``qemu-aarch64 -cpu cortex-a72`` with ``eval/count_plugin.c``, a small
instruction-counting TCG plugin of this project (compiled on first use into the cache):
one warm-up inference, then ``--runs`` inferences between two marker syscalls.

It prints per model:

- binary MACs of the file's ``LceBconv2d`` ops (``OH*OW*Cout*KH*KW*Cin/groups``);
- executed aarch64 instructions per inference, by owner: ``bnnzoo`` (our kernel
  library), ``litert`` (LiteRT and its XNNPACK, the ``ai_edge_litert`` package) and
  ``other`` (Python, numpy, libc, ...), attributed by the file each executed block was
  loaded from;
- our binary-convolution path (the library's ``bconv_*`` and ``bgemm_*`` functions, by
  its symbol table) in instructions per 2048 binary MACs;
- modelled Cortex-A72 cycles: every block that makes up 99% of the instructions is
  given to ``llvm-mca -mcpu=cortex-a72`` (LLVM's scheduling model of the Raspberry Pi
  4's core; Debian's ``llvm``), its cycles per execution times its executions; the
  remaining 1% at the modelled cycles per instruction of the rest; skipped where
  llvm-mca is not installed. The hottest blocks are listed with their cycles.

These are estimates, not measurements on a Pi: instruction counts are exact for the
emulated code, but a real core's cycles depend on caches, memory and branch prediction,
which llvm-mca does not model (it assumes every load hits L1 and each block loops on
itself). To measure real figures on a Raspberry Pi 4 or 5 (64-bit Raspberry Pi OS),
copy the same bundle there and run ``python3 run.py --runtime litert --benchmark 50``
(wall time; see the bundle's README.md), or ``perf stat -e instructions,cycles python3
run.py --runtime litert --benchmark 50`` for counts from the core's own counters.

``--json FILE`` writes, per model, ``{"binary_macs": int, "instructions": {"bnnzoo": int,
"litert": int, "other": int}, "bconv_instructions_per_2048_macs": float}`` (null for a
file without ``LceBconv2d``), plus ``modelled_a72_cycles`` (per owner and ``total``,
null without llvm-mca), ``runs`` and the kernels' source folder.

Needs (installed with apt-get when missing and running as root): ``qemu-user`` (the
dynamically linked ``qemu-aarch64``, built with plugin support; ``qemu-user-static`` is
not) and ``gcc-aarch64-linux-gnu``.

Usage::

    python -m eval.bench_arm64 --models quicknet,realtobinary_resnet18,mobilenet_v1_050 [--runs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from eval.arm64 import (  # noqa: E402
    PYTHON,
    Arm64Error,
    build_userland,
    bundle_wheels,
    default_cache,
    ensure_tool,
    userland_env,
)

__all__ = ["MARK_SYSCALL", "OWNERS", "BCONV_PREFIXES", "Block", "Counts", "ensure_qemu_plugins", "plugin_library",
           "bundle_for", "count_bundle", "modelled_cycles", "record_of", "measure", "main"]

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MARK_SYSCALL = 0x4242  # eval/count_plugin.c's marker
OWNERS = ("bnnzoo", "litert", "other")
# Our library's functions on LceBconv2d's path, by name (bnn.h keeps to it).
BCONV_PREFIXES = ("bconv", "bgemm")
SIZE = 224
COVERAGE = 0.99  # share of the instructions whose blocks llvm-mca models
A72_GHZ = 1.5  # Raspberry Pi 4's clock (uncalibrated: ms = modelled cycles / clock)

# Runs under emulation: the bundle's own run.py code, one warm-up, then `runs` inferences
# between the two marker syscalls (start = 1, stop = 2).
_DRIVER = r"""
import ctypes, importlib.util, sys
from pathlib import Path
folder, runs = Path(sys.argv[1]), int(sys.argv[2])
spec = importlib.util.spec_from_file_location("bundle_run", folder / "run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)
bundle = run.Bundle(folder)
runtime = run.make_runtime(bundle, "litert", 1)
x = run.load_image(bundle.file("sample.png"), bundle.preprocess)[None]
runtime.predict(x)
mark = ctypes.CDLL(None).syscall
mark.argtypes = [ctypes.c_long, ctypes.c_long]
mark({mark}, 1)
for _ in range(runs):
    runtime.predict(x)
mark({mark}, 2)
print(runtime.version)
"""


def _cache() -> Path:
    return default_cache().parent / "bench_arm64"


def ensure_qemu_plugins() -> str:
    """Path of a ``qemu-aarch64`` that loads TCG plugins; installs Debian's ``qemu-user`` when missing (as root).

    Raises:
        Arm64Error: None is installed and it cannot be, or the one installed has no plugin support.
    """
    found = ensure_tool("qemu-aarch64", ["qemu-user"], " (qemu-user-static cannot load TCG plugins)")
    probe = subprocess.run([found, "-plugin", "help"], capture_output=True, text=True, timeout=60)
    if "unknown option" in (probe.stderr + probe.stdout):
        raise Arm64Error(f"{found} was built without TCG plugin support: install Debian's qemu-user (7.2 or later)")
    return found


def plugin_library() -> Path:
    """``eval/count_plugin.c`` compiled for this host (cached by the SHA-256 of the source and compiler)."""
    from converters.litert.toolchain import find_compiler

    source = HERE / "count_plugin.c"
    cc = find_compiler()
    key = hashlib.sha256(source.read_bytes() + cc.encode()).hexdigest()[:16]
    target = _cache() / f"count_plugin-{key}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        done = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-o", tmp, str(source),
                               "-lpthread"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise Arm64Error(f"compiling {source.name} failed: {done.stderr.strip()[-400:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


def bundle_for(name: str, size: int = SIZE, log=print) -> Path:
    """The deploy bundle of model ``name`` (random weights, seed 0) at ``size``, built once and cached.

    The cache key covers what shapes a bundle (bnnzoo's version, the deploy and converter
    code, the runner and the kernels' Python loader), not the C sources: the benchmark
    cross-compiles those itself.
    """
    import zoo
    from converters.deploy import deploy

    h = hashlib.sha256(zoo.__version__.encode())
    for path in (REPO / "converters" / "deploy.py", REPO / "converters" / "tflite.py",
                 REPO / "converters" / "rpi" / "run.py", *sorted((REPO / "converters" / "litert").glob("*.py"))):
        if path.is_file():
            h.update(path.read_bytes())
    out = _cache() / "bundles" / f"{name}-{size}-{h.hexdigest()[:12]}"
    if (out / "manifest.json").is_file():
        return out
    import torch

    log(f"bench_arm64: deploying {name} at {size}x{size} (once) ...")
    torch.manual_seed(0)
    out.parent.mkdir(parents=True, exist_ok=True)
    deploy(zoo.load(name, input_size=size), out, input_size=size, overwrite=True)
    return out


def _cross_compile(dest: Path, kernels: Optional[Path]) -> Path:
    """The kernel library for aarch64: ``eval.litert_arm64.cross_compile`` of this checkout's sources,
    or every C file of ``kernels`` but ``selftest.c`` (an older checkout's layout), same flags."""
    from converters.litert import toolchain
    from eval.litert_arm64 import cross_compile, ensure_cross_compiler

    if kernels is None:
        return cross_compile(dest)
    sources = sorted(p for p in Path(kernels).glob("*.c") if p.name != "selftest.c")
    if not sources:
        raise Arm64Error(f"{kernels} holds no C sources of the kernels")
    lib = dest / "libbnn_lce-aarch64.so"
    done = subprocess.run([ensure_cross_compiler(), *toolchain.CFLAGS, "-o", str(lib), *map(str, sources),
                           *toolchain.LIBS], capture_output=True, text=True)
    if done.returncode != 0:
        raise Arm64Error(f"cross-compiling the kernels in {kernels} failed: {done.stderr.strip()[-500:]}")
    return lib


# --- ELF symbols of our library ------------------------------------------------------------------

def _functions(library: Path) -> list[tuple[int, int, str]]:
    """``(file offset, size, name)`` of every function in an ELF64 little-endian file's symbol table."""
    data = library.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise Arm64Error(f"{library} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads = []  # (vaddr, offset, filesz) of PT_LOAD segments: symbol addresses to file offsets
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for s in sections:
        if s[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[s[6]]
        for j in range(s[5] // 24):
            st_name, st_info, _, _, st_value, st_size = struct.unpack_from("<IBBHQQ", data, s[4] + j * 24)
            if st_info & 0xF != 2 or not st_value:  # STT_FUNC, defined
                continue
            end = data.index(b"\0", strtab[4] + st_name)
            name = data[strtab[4] + st_name:end].decode()
            for vaddr, offset, size in loads:
                if vaddr <= st_value < vaddr + size:
                    out.append((st_value - vaddr + offset, st_size, name))
    return sorted(out)


def _function_of(functions: list[tuple[int, int, str]], offset: int) -> str:
    lo, hi = 0, len(functions)
    while lo < hi:  # last function starting at or before offset
        mid = (lo + hi) // 2
        if functions[mid][0] <= offset:
            lo = mid + 1
        else:
            hi = mid
    if lo and offset < functions[lo - 1][0] + max(functions[lo - 1][1], 1):
        return functions[lo - 1][2]
    return "?"


# --- counting --------------------------------------------------------------------------------------

@dataclass
class Block:
    """One executed block: where it is and how often it ran in the counted window."""

    owner: str
    path: str
    offset: int
    insns: int
    executions: int
    function: str = ""

    @property
    def instructions(self) -> int:
        return self.insns * self.executions


@dataclass
class Counts:
    """The counted window of one bundle run: ``runs`` inferences."""

    runs: int
    blocks: list[Block]
    library: Path
    version: str = ""
    cycles: dict = field(default_factory=dict)  # owner -> modelled cycles for the window; 'total'
    block_cycles: dict = field(default_factory=dict)  # (path, offset) -> modelled cycles per execution

    def instructions(self, owner: Optional[str] = None) -> int:
        """Instructions per inference (of one owner, or all)."""
        return sum(b.instructions for b in self.blocks if owner in (None, b.owner)) // self.runs

    def bconv_instructions(self) -> int:
        """Instructions per inference in our library's binary-convolution functions."""
        return sum(b.instructions for b in self.blocks
                   if b.owner == "bnnzoo" and b.function.startswith(BCONV_PREFIXES)) // self.runs

    def by_function(self) -> dict[str, int]:
        """Our library's instructions per inference, per function."""
        out: dict[str, int] = {}
        for b in self.blocks:
            if b.owner == "bnnzoo":
                out[b.function] = out.get(b.function, 0) + b.instructions
        return {k: v // self.runs for k, v in sorted(out.items(), key=lambda kv: -kv[1])}


def _owner(path: str, library: Path) -> str:
    if path == str(library):
        return "bnnzoo"
    if "/ai_edge_litert/" in path:
        return "litert"
    return "other"


def count_bundle(bundle: Path, runs: int = 2, kernels: Optional[Path] = None, log=print) -> Counts:
    """Runs ``runs`` inferences (after one warm-up) of a bundle's ``run.py`` litert runtime under
    ``qemu-aarch64 -cpu cortex-a72`` with the counting plugin.

    Args:
        bundle: A folder written by ``bnnzoo deploy NAME --target rpi``.
        runs: Inferences counted.
        kernels: Folder of the kernels' C sources (default ``converters/litert``).

    Raises:
        Arm64Error: A tool is missing, or the run failed.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, not {runs}")
    qemu = ensure_qemu_plugins()
    plugin = plugin_library()
    root = build_userland(None, bundle_wheels(bundle), log=log)
    with tempfile.TemporaryDirectory() as tmp:
        library = _cross_compile(Path(tmp), kernels).resolve()
        dump = Path(tmp) / "blocks.txt"
        env = {**userland_env(root), "BNNZOO_LITERT_LIB": str(library), "PYTHONHASHSEED": "0",
               "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        cmd = [qemu, "-cpu", "cortex-a72", "-L", str(root), "-plugin", f"{plugin},out={dump}", str(root / PYTHON),
               "-I", "-c", _DRIVER.format(mark=MARK_SYSCALL), str(Path(bundle).resolve()), str(runs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=7200)
        if proc.returncode != 0 or not dump.is_file():
            raise Arm64Error(f"the counted run failed (exit {proc.returncode}): "
                             f"{(proc.stderr or proc.stdout).strip()[-800:]}")
        functions = _functions(library)
        blocks: dict[tuple[str, int], Block] = {}
        for line in dump.read_text().splitlines():
            _, insns, executions, offset, path = line.split(" ", 4)
            key = (path, int(offset, 16))
            if key in blocks:  # the same code translated again: one block
                blocks[key].executions += int(executions)
                continue
            owner = _owner(path, library)
            blocks[key] = Block(owner, path, key[1], int(insns), int(executions),
                                _function_of(functions, key[1]) if owner == "bnnzoo" else "")
        counts = Counts(runs, sorted(blocks.values(), key=lambda b: -b.instructions), library,
                        proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "")
        modelled_cycles(counts)
    return counts


# --- llvm-mca ----------------------------------------------------------------------------------------

def _llvm_tool(name: str) -> Optional[str]:
    return shutil.which(name) or next((shutil.which(f"{name}-{v}") for v in range(20, 10, -1)
                                       if shutil.which(f"{name}-{v}")), None)


def modelled_cycles(counts: Counts, coverage: float = COVERAGE) -> None:
    """Fills ``counts.cycles`` (modelled A72 cycles of the window, per owner and ``total``) and
    ``counts.block_cycles``; leaves them empty where llvm-mca or llvm-mc is not installed.

    The blocks that make up ``coverage`` of the instructions are disassembled (``llvm-mc``)
    from the files they were loaded from and modelled by ``llvm-mca -mcpu=cortex-a72``, one
    code region per block; each owner's remaining instructions are given that owner's
    modelled cycles per instruction.
    """
    mc, mca = _llvm_tool("llvm-mc"), _llvm_tool("llvm-mca")
    if not mc or not mca:
        return
    total = sum(b.instructions for b in counts.blocks)
    hot, seen = [], 0
    for b in counts.blocks:
        if seen >= coverage * total:
            break
        hot.append(b)
        seen += b.instructions
    files: dict[str, bytes] = {}
    hex_words = []
    for b in hot:
        if b.path not in files:
            files[b.path] = Path(b.path).read_bytes() if Path(b.path).is_file() else b""
        code = files[b.path][b.offset:b.offset + 4 * b.insns]
        if len(code) != 4 * b.insns:
            raise Arm64Error(f"cannot read block {b.offset:#x} of {b.path}")
        hex_words.append(" ".join(f"0x{c:02x}" for c in code))
    done = subprocess.run([mc, "--disassemble", "-triple=aarch64", "-mattr=+neon,+crc,+crypto"],
                          input="\n".join(hex_words) + "\n", capture_output=True, text=True, timeout=600)
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip() and not line.strip().startswith(".")]
    if done.returncode != 0 or len(lines) != sum(b.insns for b in hot):
        raise Arm64Error(f"llvm-mc disassembled {len(lines)} instructions of {sum(b.insns for b in hot)}: "
                         f"{done.stderr.strip()[-300:]}")
    regions, i = [], 0
    for n, b in enumerate(hot):
        body = lines[i:i + b.insns]
        i += b.insns
        regions.append(f"# LLVM-MCA-BEGIN b{n}\n" + "\n".join(body) + "\n# LLVM-MCA-END\n")
    done = subprocess.run([mca, "-mtriple=aarch64", "-mcpu=cortex-a72", "-iterations=100", "-all-views=false",
                           "-summary-view"], input="".join(regions), capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise Arm64Error(f"llvm-mca failed: {done.stderr.strip()[-400:]}")
    per_block = {}
    for m in re.finditer(r"Code Region - b(\d+)\s+Iterations:\s+(\d+)\s+Instructions:\s+\d+\s+Total Cycles:\s+(\d+)",
                         done.stdout):
        per_block[int(m.group(1))] = int(m.group(3)) / int(m.group(2))
    if len(per_block) != len(hot):
        raise Arm64Error(f"llvm-mca modelled {len(per_block)} of {len(hot)} blocks")
    cycles = {o: 0.0 for o in OWNERS}
    modelled_insns = {o: 0 for o in OWNERS}
    for n, b in enumerate(hot):
        counts.block_cycles[(b.path, b.offset)] = per_block[n]
        cycles[b.owner] += per_block[n] * b.executions
        modelled_insns[b.owner] += b.instructions
    everything = sum(cycles.values()) / max(sum(modelled_insns.values()), 1)
    for o in OWNERS:
        rest = sum(b.instructions for b in counts.blocks if b.owner == o) - modelled_insns[o]
        cpi = cycles[o] / modelled_insns[o] if modelled_insns[o] else everything
        cycles[o] += rest * cpi
    cycles["total"] = sum(cycles[o] for o in OWNERS)
    counts.cycles = cycles


# --- the benchmark -----------------------------------------------------------------------------------

def record_of(counts: Counts, binary_macs: int, kernels: Optional[Path] = None) -> dict:
    """The ``--json`` record of one model's counts."""
    runs = counts.runs
    return {
        "binary_macs": int(binary_macs),
        "instructions": {o: counts.instructions(o) for o in OWNERS},
        "bconv_instructions_per_2048_macs": counts.bconv_instructions() * 2048 / binary_macs if binary_macs else None,
        "modelled_a72_cycles": ({k: round(v / runs) for k, v in counts.cycles.items()} if counts.cycles else None),
        "runs": runs,
        "kernels": str(Path(kernels or REPO / "converters" / "litert").resolve()),
    }


def measure(name: str, runs: int = 2, kernels: Optional[Path] = None, log=print) -> tuple[dict, Counts]:
    """One model's figures (the ``--json`` record) and its counts."""
    from eval.bench_litert import binary_macs

    bundle = bundle_for(name, log=log)
    counts = count_bundle(bundle, runs, kernels, log=log)
    return record_of(counts, binary_macs((bundle / "model.tflite").read_bytes()), kernels), counts


def _hot_lines(counts: Counts, top: int = 8) -> list[str]:
    cycles = counts.block_cycles
    ranked = sorted(counts.blocks, key=lambda b: -(cycles.get((b.path, b.offset), 0) * b.executions or
                                                    b.instructions * 1e-9))
    total = counts.cycles.get("total") or 1
    out = []
    for b in ranked[:top]:
        c = cycles.get((b.path, b.offset))
        where = b.function or Path(b.path).name
        share = f"{c * b.executions / total:6.1%}" if c else "     -"
        out.append(f"    {b.owner:7s} {where[:34]:34s} +{b.offset:#08x} {b.insns:4d} insns x "
                   f"{b.executions // counts.runs:>9d}  {c if c else float('nan'):7.2f} cycles/exec  {share} of "
                   "modelled cycles")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench_arm64", description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="quicknet,realtobinary_resnet18,mobilenet_v1_050",
                        help="comma-separated registered model names")
    parser.add_argument("--runs", type=int, default=2, help="inferences counted per model (after one warm-up)")
    parser.add_argument("--kernels", type=Path, help="folder of the kernels' C sources (default converters/litert)")
    parser.add_argument("--json", type=Path, help="write the figures per model to this file")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    import zoo

    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in zoo.list_models()]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}: see `bnnzoo list`")
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results, rows = {}, []
    try:
        for name in names:
            t = time.perf_counter()
            record, counts = measure(name, args.runs, args.kernels, log=lambda line: print(line, file=sys.stderr))
            results[name] = record
            rows.append((name, record, counts))
            fn = counts.by_function()
            print(f"{name}: {counts.instructions() / 1e6:.1f} M instructions per inference "
                  f"({time.perf_counter() - t:.0f} s under emulation); bnnzoo by function (M): "
                  + ", ".join(f"{k} {v / 1e6:.2f}" for k, v in list(fn.items())[:6]), flush=True)
            for line in _hot_lines(counts):
                print(line)
    except Arm64Error as e:
        print(f"bench_arm64: error: {e}", file=sys.stderr)
        return 1
    print(f"\n{started}, qemu-aarch64 -cpu cortex-a72, 1 thread, batch 1, {SIZE}x{SIZE}, {args.runs} inference(s) "
          f"counted after 1 warm-up; cycles: llvm-mca -mcpu=cortex-a72 (estimates, uncalibrated ms at {A72_GHZ} GHz)")
    print(f"{'model':24s} {'binary MACs':>11s} {'bnnzoo M':>9s} {'litert M':>9s} {'other M':>8s} {'total M':>8s} "
          f"{'bconv/2048':>10s} {'A72 Mcyc':>9s} {'ms@' + str(A72_GHZ):>7s}")
    for name, r, _ in rows:
        ins = r["instructions"]
        per = r["bconv_instructions_per_2048_macs"]
        cyc = (r["modelled_a72_cycles"] or {}).get("total")
        print(f"{name:24s} {r['binary_macs'] / 1e9:10.2f}G {ins['bnnzoo'] / 1e6:9.1f} {ins['litert'] / 1e6:9.1f} "
              f"{ins['other'] / 1e6:8.1f} {sum(ins.values()) / 1e6:8.1f} "
              f"{per if per is not None else float('nan'):10.1f} "
              f"{cyc / 1e6 if cyc else float('nan'):9.1f} {cyc / (A72_GHZ * 1e6) if cyc else float('nan'):7.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
