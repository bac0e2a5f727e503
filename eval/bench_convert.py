"""Benchmark: our LCE exports against larq-zoo's own Keras models, through the same converter.

Every architecture with imported ImageNet weights (larq-zoo's 14, ``zoo.larq_import.LARQ_ZOO_TWINS``,
and the ReActNet authors' two) is built at 224x224 with initialised weights (randomised where larq-zoo
has no twin, see ``build_ours``): ours (the PyTorch module
with the config of its imported tag, ``<name>.larq_in1k`` or ``<name>.authors_in1k``, translated to
Keras by ``zoo.to_keras``) and, where larq-zoo has the architecture, larq-zoo's builder. Both are
converted by LCE's converter (``converters.tflite.convert_keras``, target "arm") and timed in LCE's
interpreter, batch 1, at each ``--threads`` count with default flags and with
``use_indirect_bgemm=True``. The two files of an architecture are timed side by side: their runs
alternate (ours, larq-zoo's, ours, ...), so a change of machine load hits both alike, and the
ratio ours / larq-zoo compares medians of the same stretch of time. Op counts of both files are
printed too (``LceBconv2d``, ``TRANSPOSE``, ...), and where they differ, by op type.

Each conversion runs in a child process (LCE 0.16's converter crashes on larq-zoo's DoReFaNet: the
row then says so and the run goes on) and its file is kept as ``OUT/<name>.<side>.tflite``. Each
architecture's result is written to ``OUT/<name>.json`` (atomically) once it is done; a run skips
those already there with the same settings (``--force`` measures again, from the kept files), so an
interrupted run resumes where it stopped. The table (markdown, with date, command and load average) is printed
and written to ``OUT/table.md`` from every result in ``OUT`` for the models asked.

Usage::

    python eval/bench_convert.py [--models quicknet,birealnet18] [--runs 20] [--warmup 3] [--threads 1]
                                 [--out /tmp/bench_convert] [--force] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from typing import Any, Callable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from eval.timing import lce_runner, sample_input, time_runs  # noqa: E402

FLAG_SETS = {"default": dict(use_indirect_bgemm=False), "indirect_bgemm": dict(use_indirect_bgemm=True)}
SIZE = 224
RATIO_LIMIT = 1.05  # the target: ours / larq-zoo at most this


def _imported(name: str):
    """The registered ImageNet weights of ``name`` that an importer converts (larq-zoo's, the ReActNet
    authors'), or None."""
    import zoo.weights as zw

    return next((w for w in zw.WEIGHTS.values() if w.arch == name and w.importer), None)


def architectures() -> list[str]:
    """Every registered architecture larq-zoo also has or with imported ImageNet weights, in registry order."""
    import zoo
    from zoo.larq_import import LARQ_ZOO_TWINS

    return [n for n in zoo.list_models() if n in LARQ_ZOO_TWINS or _imported(n) is not None]


def build_ours(name: str):
    """Our Keras model of ``name`` with the builder arguments of its imported tag: initialised weights, as
    larq-zoo's side, or randomised for architectures larq-zoo does not have (initialised, ReActNet's learned
    shifts are 0 and LCE's converter drops their ``ADD`` s, which trained weights keep)."""
    import zoo
    from zoo.larq_import import LARQ_ZOO_TWINS
    from zoo.torch.random_weights import randomize

    model = zoo.load(name, input_size=SIZE, **dict(_imported(name).arch_overrides))
    return zoo.to_keras(model if name in LARQ_ZOO_TWINS else randomize(model))


def build_larq_zoo(name: str):
    """larq-zoo's own Keras model of ``name`` (``weights=None``)."""
    import larq_zoo

    from zoo.larq_import import LARQ_ZOO_TWINS

    module, builder = LARQ_ZOO_TWINS[name].split(".")
    return getattr(getattr(larq_zoo, module), builder)(weights=None, input_shape=(SIZE, SIZE, 3))


def interleaved(fns: list[Callable[[], object]], runs: int, warmup: int) -> list[tuple[float, float, float]]:
    """Median, min and max ms of each of ``fns``, their runs alternating (one of each per round)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1e3)
    return [(statistics.median(t), min(t), max(t)) for t in times]


def op_profile(flatbuffer: bytes, runs: int = 5) -> dict[str, float]:
    """Milliseconds per op type (threads 1, default flags), each op timed as a one-op sub-graph.

    The file is re-packed once with every intermediate tensor as an output (giving real inputs),
    then once per operator as a one-op sub-graph, timed in the same interpreter. Sums of op times
    are close to, not equal to, the whole-model time.
    """
    import flatbuffers
    import tflite
    from larq_compute_engine.mlir.python import tflite_schema as schema
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    sg = model.subgraphs[0]
    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def op_name(op) -> str:
        oc = model.operatorCodes[op.opcodeIndex]
        if oc.customCode:
            return oc.customCode.decode() if isinstance(oc.customCode, bytes) else str(oc.customCode)
        return names.get(max(oc.builtinCode, oc.deprecatedBuiltinCode), "?")

    def pack() -> bytes:
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def is_const(t: int) -> bool:
        buf = model.buffers[sg.tensors[t].buffer]
        return buf.data is not None and len(buf.data) > 0

    ops, inputs, outputs = list(sg.operators), list(sg.inputs), list(sg.outputs)
    produced = [t for op in ops for t in op.outputs]
    sg.outputs = produced
    x = np.random.default_rng(0).standard_normal(tuple(sg.tensors[inputs[0]].shape)).astype(np.float32)
    values = dict(zip(produced, Interpreter(pack()).interpreter.predict([x])))
    values[inputs[0]] = x
    per_type: dict[str, float] = defaultdict(float)
    try:
        for op in ops:
            feeds = [t for t in op.inputs if t >= 0 and not is_const(t)]
            sg.operators, sg.inputs, sg.outputs = [op], feeds, list(op.outputs)
            it = Interpreter(pack())
            args = [values[t] for t in feeds]
            per_type[op_name(op)] += time_runs(lambda: it.interpreter.predict(args), runs, 1)[0]
    finally:
        sg.operators, sg.inputs, sg.outputs = ops, inputs, outputs
    return dict(sorted(per_type.items(), key=lambda kv: -kv[1]))


def convert(name: str, side: str, out: str) -> bytes:
    """The TFLite file of one side (``ours`` or ``larq_zoo``) of ``name``, converted in a child process.

    LCE 0.16's converter crashes (SIGSEGV) on some models, larq-zoo's DoReFaNet among them: in a child
    the crash is reported and the run goes on. The file is kept as ``OUT/<name>.<side>.tflite``
    (written atomically) and reused by a later run.

    Raises:
        RuntimeError: The conversion failed or crashed (the message says how).
    """
    import subprocess

    path = os.path.join(out, f"{name}.{side}.tflite")
    if not os.path.exists(path):
        child = subprocess.run([sys.executable, os.path.abspath(__file__), "--convert-only", name, side, path],
                               capture_output=True, text=True)
        if child.returncode != 0:
            how = (f"crashed (signal {-child.returncode})" if child.returncode < 0
                   else f"failed: {(child.stderr.strip().splitlines() or ['?'])[-1][:200]}")
            raise RuntimeError(f"LCE's converter {how}")
    with open(path, "rb") as f:
        return f.read()


def _convert_only(name: str, side: str, path: str) -> None:
    from converters.tflite import convert_keras

    flatbuffer = convert_keras((build_ours if side == "ours" else build_larq_zoo)(name), target="arm")
    _write(path, flatbuffer)


def measure(name: str, settings: dict[str, Any], profile: bool, out: str) -> dict[str, Any]:
    """Converts both models of ``name`` and times them side by side; the result as a JSON-able dict."""
    from converters.tflite import op_counts
    from zoo.larq_import import LARQ_ZOO_TWINS

    files, result = {}, {"model": name, "settings": settings}
    for side in ("ours", "larq_zoo"):
        if side == "larq_zoo" and name not in LARQ_ZOO_TWINS:
            result[side] = {"error": "not in larq-zoo"}
            continue
        t = time.perf_counter()
        try:
            files[side] = convert(name, side, out)
        except RuntimeError as e:
            result[side] = {"error": str(e)}
            print(f"  {name} ({side}): {e}", flush=True)
            continue
        result[side] = {"convert_s": round(time.perf_counter() - t, 1), "tflite_mb": len(files[side]) / 1e6,
                        "ops": dict(sorted(op_counts(files[side]).items()))}
    x = sample_input(SIZE, "nhwc")
    sides = list(files)
    for threads in settings["threads"]:
        for flag_name, flags in FLAG_SETS.items():
            runners = [lce_runner(files[side], threads, x, **flags) for side in sides]
            for side, timed in zip(sides, interleaved(runners, settings["runs"], settings["warmup"])):
                result[side][f"{flag_name}_t{threads}"] = timed
    if profile:
        for side in sides:
            result[side]["profile_ms"] = op_profile(files[side])
    return result


def _write(path: str, data: str | bytes) -> None:
    from pathlib import Path

    from zoo.fileio import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data if isinstance(data, bytes) else data.encode()))


def op_difference(a: dict[str, int], b: dict[str, int]) -> str:
    """``"TRANSPOSE +2, SOFTMAX -1"``: op types whose counts differ, ours minus larq-zoo's."""
    diff = {k: a.get(k, 0) - b.get(k, 0) for k in sorted(a.keys() | b.keys()) if a.get(k, 0) != b.get(k, 0)}
    return ", ".join(f"{k} {v:+d}" for k, v in diff.items()) or "none"


def table(results: list[dict], command: str, load: tuple[float, float], date: str) -> str:
    """The markdown table of ``results`` (one row per architecture)."""
    s = results[0]["settings"]
    cols = [(f"{f}_t{t}", f"{t} thread{'s' if t > 1 else ''}{', indirect bgemm' if f == 'indirect_bgemm' else ''}")
            for t in s["threads"] for f in FLAG_SETS]
    measured = [r["measured"] for r in results if "measured" in r]
    loads = [x for m in measured for x in m["load_average_1min"]]
    when = (f"measured {min(m['utc'] for m in measured)} to {max(m['utc'] for m in measured)} UTC, load average "
            f"(1 min) {min(loads):.2f} to {max(loads):.2f} while measuring; " if measured else "")
    lines = [f"Table of {date}: `{command}`; {when}load average (1 min) {load[0]:.2f} at start, {load[1]:.2f} at end. "
             f"LCE interpreter, batch 1, {SIZE}x{SIZE}, median [min-max] of {s['runs']} runs after {s['warmup']} "
             "warm-up, ms, ours and larq-zoo's runs alternating; x = ours / larq-zoo.", "",
             "| model | TFLite MB ours / larq-zoo | LceBconv2d ours / larq-zoo | "
             + " | ".join(f"{label} ours | larq-zoo | x" for _, label in cols) + " | op counts, ours - larq-zoo |",
             "|---|---:|---:|" + "---:|---:|---:|" * len(cols) + "---|"]
    def fig(side: dict, fmt: str, key: str) -> str:
        return side["error"] if "error" in side else fmt.format(side[key]) if key in side else "-"

    for r in results:
        o, z = r["ours"], r["larq_zoo"]
        bconv = {k: str(v["ops"].get("LceBconv2d", 0)) if "ops" in v else "-" for k, v in (("o", o), ("z", z))}
        cells = [r["model"], f"{fig(o, '{:.2f}', 'tflite_mb')} / {fig(z, '{:.2f}', 'tflite_mb')}",
                 f"{bconv['o']} / {bconv['z']}"]
        for key, _ in cols:
            timed = [side.get(key) for side in (o, z)]
            cells += [f"{t[0]:.1f} [{t[1]:.1f}-{t[2]:.1f}]" if t else "-" for t in timed]
            if all(timed):
                ratio = timed[0][0] / timed[1][0]
                cells.append(f"**{ratio:.2f}**" if ratio > RATIO_LIMIT else f"{ratio:.2f}")
            else:
                cells.append("-")
        cells.append(op_difference(o["ops"], z["ops"]) if "ops" in o and "ops" in z else
                     "; ".join(f"{who}: {side['error']}" for who, side in (("ours", o), ("larq-zoo", z))
                               if "error" in side))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="", help="comma-separated architectures (default: all with imported "
                        "ImageNet weights)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per file and flag set")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", default="1", help="comma-separated thread counts")
    parser.add_argument("--out", default="/tmp/bench_convert", help="folder of the per-model results and table.md")
    parser.add_argument("--force", action="store_true", help="measure again models already in --out")
    parser.add_argument("--profile", action="store_true", help="also time every op of each file (slow)")
    parser.add_argument("--convert-only", nargs=3, metavar=("NAME", "SIDE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.convert_only:  # the child process of convert()
        _convert_only(*args.convert_only)
        return 0
    known = architectures()
    names = [n for n in args.models.split(",") if n] or known
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"bench_convert: {unknown[0]!r} has no imported ImageNet weights; choose from "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    if args.runs < 1 or args.warmup < 0:
        print(f"bench_convert: --runs must be >= 1 and --warmup >= 0 (got {args.runs}, {args.warmup})", file=sys.stderr)
        return 2
    settings = {"runs": args.runs, "warmup": args.warmup, "threads": [int(t) for t in args.threads.split(",")],
                "size": SIZE, "flags": FLAG_SETS}
    os.makedirs(args.out, exist_ok=True)
    command = "python eval/bench_convert.py " + " ".join(sys.argv[1:] if argv is None else argv)
    load_start = os.getloadavg()[0]
    results = []
    for i, name in enumerate(names, 1):
        path = os.path.join(args.out, f"{name}.json")
        if os.path.exists(path) and not args.force:
            with open(path) as f:
                done = json.load(f)
            if done.get("settings") == json.loads(json.dumps(settings)):
                print(f"[{i}/{len(names)}] {name}: measured before, {path} (--force measures again)", flush=True)
                results.append(done)
                continue
        t = time.perf_counter()
        print(f"[{i}/{len(names)}] {name}: converting and timing ...", flush=True)
        load = os.getloadavg()[0]
        result = measure(name, settings, args.profile, args.out)
        result["measured"] = {"utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                              "load_average_1min": [round(load, 2), round(os.getloadavg()[0], 2)]}
        _write(path, json.dumps(result, indent=1) + "\n")
        results.append(result)
        first = f"default_t{settings['threads'][0]}"
        ms = {side: f"{result[side][first][0]:.1f} ms" if first in result[side] else result[side].get("error")
              for side in ("ours", "larq_zoo")}
        print(f"[{i}/{len(names)}] {name}: {time.perf_counter() - t:.0f} s, ours {ms['ours']}, larq-zoo "
              f"{ms['larq_zoo']} ({first})", flush=True)
    text = table(results, command, (load_start, os.getloadavg()[0]), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print("\n" + text)
    _write(os.path.join(args.out, "table.md"), text)
    for r in results:
        for side in ("ours", "larq_zoo"):
            prof = r[side].get("profile_ms")
            if prof:
                total = sum(prof.values())
                print(f"per-op-type time, {r['model']} {side} (threads 1, default flags; sum {total:.1f} ms):")
                for op, ms in prof.items():
                    print(f"  {op:24s} {ms:8.2f} ms {100 * ms / total:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
