"""``report.md``, ``results.json``, the plots and ``--compare`` of ``bnnzoo eval`` results.

The headline is the mission's question: published ImageNet top-1 against latency measured at
the input size those figures refer to (224x224), binary networks in bnnzoo's kernels and in
LCE against MobileNet-v1's four widths in TFLite with XNNPACK, and against model size, with
the Pareto front computed (:func:`pareto_front`) and marked. Measured and published figures
are kept apart everywhere: measured accuracy (on the data given, with the weights given, at
their own input size) and published ImageNet accuracy (with its source) are separate columns.
An ARM64 panel (``--arm64``, from ``eval/bench_arm64.py --json``) is labelled an estimate,
and LCE's own Raspberry Pi 4 figures beside it published, with their source.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Optional

from zoo.fileio import read_json, write_bytes, write_text

from .harness import BASELINES, RUNTIMES, SCHEMA, SCHEMA_VERSION

__all__ = ["write_report", "markdown", "header", "summary_table", "headline", "answer", "why", "pareto_front",
           "pareto_rows", "plot", "arm64_plot", "save_figure", "load_results", "load_arm64", "compare", "PLOTS",
           "ARM64_PLOT", "LCE_PUBLISHED_PI4", "PI4_CLOCK_HZ"]

PLOTS = ("pareto.png",)
ARM64_PLOT = "arm64_estimate.png"
MB = 2**20
# The runtimes the headline puts binary networks in (each its own front), and MobileNet-v1's.
HEADLINE_RUNTIMES = ("litert", "lce")
BASELINE_RUNTIME = "xnnpack"

# LCE's own single-thread Raspberry Pi 4 figures, for the larq-zoo QuickNet weights our quicknet* tags import.
LCE_PUBLISHED_PI4 = {
    "source": "published: larq/compute-engine README, 'Performance' (Raspberry Pi 4 Model B at 1.5 GHz, 1 thread, "
              "LCE's TFLite benchmark tool with XNNPack, randomized inputs; benchmarked 2022-04-20)",
    "ms": {"quicknet_small": 27.7, "quicknet": 45.0, "quicknet_large": 77.0},
}
PI4_CLOCK_HZ = 1.5e9  # Raspberry Pi 4 Model B's Cortex-A72


def _num(v: Optional[float], fmt: str, scale: float = 1.0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(v / scale, fmt)


def _ms(v: Optional[float]) -> str:
    """Milliseconds to three significant digits at most (9.4, 13.1, 0.152)."""
    if v is None:
        return "–"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 1 else f"{v:.3f}"


def _lat(row: dict, rt: str, threads: int) -> Optional[dict]:
    return row.get("latency_ms", {}).get(rt, {}).get(str(threads))


def _median(row: dict, rt: str, threads: int) -> Optional[float]:
    return (_lat(row, rt, threads) or {}).get("median")


def _lat_cell(row: dict, rt: str, threads: int) -> str:
    lat = _lat(row, rt, threads)
    if lat is not None:
        return f"{_ms(lat['median'])} ({_ms(lat['p25'])}–{_ms(lat['p75'])}, {lat['runs']})"
    if rt in row.get("errors", {}) or f"{rt} t{threads}" in row.get("errors", {}) \
            or f"timing t{threads}" in row.get("errors", {}):
        return "failed"
    if row.get("binary") and not RUNTIMES[rt].binary:
        return "n/a"
    return "–"


def _table(header: list[str], rows: list[list[str]], align: Optional[list[str]] = None) -> str:
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _size(r: dict) -> str:
    return f"{r['input_size']}x{r['input_size']}" if r.get("input_size") else "?"


def _sizes(results: dict) -> str:
    """``"224x224"`` (or the list, when the models differ)."""
    return ", ".join(dict.fromkeys(_size(r) for r in results["models"] if r.get("input_size"))) or "?"


# --- tables ---------------------------------------------------------------------------------------

def figures_table(results: dict) -> str:
    """Parameters, MACs, ops and sizes (measured at the timed input size)."""
    rows = []
    for r in results["models"]:
        f, s = r.get("figures") or {}, r.get("size") or {}
        rows.append([r["model"], _num(f.get("params"), ".2f", 1e6), _num(f.get("binary_mac_share"), ".1%"),
                     _num(f.get("flops"), ".1f", 1e6), _num(f.get("bops"), ".3f", 1e9), _num(f.get("ops"), ".1f", 1e6),
                     _num(s.get("ideal_bytes"), ".2f", MB),
                     _size_cell(s, r, "tflite"), _size_cell(s, r, "onnx"),
                     _lce_cell(f, s)])
    return _table(["model", "params (M)", "binary MACs", "FLOPs (M)", "BOPs (G)", "OPs (M)",
                   "ideal size (MiB)", "TFLite (MiB)", "ONNX (MiB)", "binary convs (LceBconv2d)"], rows)


def _lce_cell(f: dict, s: dict) -> str:
    """Binary convolutions and the LceBconv2d ops of the TFLite file; names a model whose 1-bit weights
    meet wider inputs (DoReFa-Net's 2-bit activations), which LCE has no op for."""
    if f.get("binary_convs") is None:
        return "–"
    cell = f"{f['binary_convs']} ({s['lce_bconv2d']})" if s.get("lce_bconv2d") is not None else f"{f['binary_convs']}"
    if not f["binary_convs"] and f.get("binary_params"):
        cell += ": 1-bit weights, wider inputs; no LCE op, float convs in TFLite, float32 weights in ONNX"
    return cell


def latency_table(results: dict) -> str:
    """Median (quartiles, runs) ms per runtime and thread count, with the input size each row was timed at."""
    settings = results["settings"]
    cols = [(rt, t) for rt in settings["runtimes"] for t in settings["threads"]]
    rows = [[r["model"], _size(r)] + [_lat_cell(r, rt, t) for rt, t in cols] for r in results["models"]]
    return _table(["model", "input"] + [f"{RUNTIMES[rt].label}, {t} thr" for rt, t in cols], rows)


def accuracy_table(results: dict) -> str:
    """Measured accuracy: the weights, the data set and input size it was measured on, each runtime."""
    rows = []
    for r in results["models"]:
        acc = r.get("accuracy")
        if acc:
            rows.append([r["model"], f"`{acc['weights']}`", acc["dataset"], str(acc["images"]),
                         _num(acc["top1"], ".1f"), _num(acc["top5"], ".1f"), _by_runtime(acc)])
        elif "accuracy" in r.get("errors", {}):
            rows.append([r["model"], f"`{r['weights']}`", "failed: " + r["errors"]["accuracy"].replace("|", "\\|"),
                         "–", "–", "–", "–"])
    if not rows:
        return ("No accuracy measured: give trained weights (`NAME.TAG` or `--weights`) and the data they were "
                "trained for (`--data`).")
    return _table(["model", "weights", "measured on (data set, input size)", "images", "top-1 (%)", "top-5 (%)",
                   "top-1 by runtime (%)"], rows, ["---", "---", "---", "---:", "---:", "---:", "---"])


def _by_runtime(acc: dict) -> str:
    """``"PyTorch 98.1, ONNX Runtime 98.1, LCE 98.0"``: the same images through PyTorch and each exported file."""
    by = acc.get("by_runtime") or {}
    labels = {"torch": "PyTorch", "onnx": "ONNX Runtime", "lce": "LCE", "litert": "bnnzoo LiteRT"}
    return ", ".join(f"{labels[rt]} {by[rt]:.1f}" for rt in ("torch", "onnx", "lce", "litert") if rt in by)


def failures_table(results: dict) -> str:
    """Every failed stage with its error."""
    rows = [[r["model"], stage, err.replace("|", "\\|")]
            for r in results["models"] for stage, err in r["errors"].items()]
    return _table(["model", "stage", "error"], rows, ["---", "---", "---"]) if rows else "No failures."


# --- the Pareto headline --------------------------------------------------------------------------

def pareto_front(points: dict[str, tuple[float, float]]) -> set[str]:
    """The points no other point dominates.

    Args:
        points: Name -> ``(cost, accuracy)``; lower cost and higher accuracy are better.

    Returns:
        The names of the non-dominated points (a point equal to another on both is kept with it).
    """
    front = set()
    for name, (cost, acc) in points.items():
        if not any(c <= cost and a >= acc and (c < cost or a > acc)
                   for other, (c, a) in points.items() if other != name):
            front.add(name)
    return front


def _headline_runtimes(results: dict) -> list[str]:
    """bnnzoo's kernels and LCE where they were timed, else the first runtime that runs binary models."""
    timed = list(results["settings"]["runtimes"])
    return [rt for rt in HEADLINE_RUNTIMES if rt in timed] or [rt for rt in timed if RUNTIMES[rt].binary][:1]


def _cost_of(row: dict, rt: str, threads: int) -> Optional[float]:
    """The headline latency of a row for binary runtime ``rt``: MobileNet-v1 in TFLite + XNNPACK."""
    if row["model"] in BASELINES:
        return _median(row, BASELINE_RUNTIME, threads) or _median(row, rt, threads)
    return _median(row, rt, threads)


def pareto_rows(results: dict) -> list[dict[str, Any]]:
    """One dict per model with a published top-1: its latency per headline runtime and size, and whether
    it is on each front (``front[rt]``, ``front["size"]``)."""
    t0 = results["settings"]["threads"][0]
    rts = _headline_runtimes(results)
    rows = [r for r in results["models"] if (r.get("published") or {}).get("top1") is not None]
    out = [{"model": r["model"], "top1": r["published"]["top1"], "source": r["published"].get("source", ""),
            "baseline": r["model"] in BASELINES, "binary": bool(r.get("binary")),
            "latency": {rt: _cost_of(r, rt, t0) for rt in rts},
            "size_mib": ((r.get("size") or {}).get("tflite_bytes") or 0) / MB or None, "front": {}} for r in rows]
    for key in [*rts, "size"]:
        cost = (lambda p: p["size_mib"]) if key == "size" else (lambda p, key=key: p["latency"][key])
        front = pareto_front({p["model"]: (cost(p), p["top1"]) for p in out if cost(p) is not None})
        for p in out:
            p["front"][key] = p["model"] in front if cost(p) is not None else None
    return out


def _mark(on: Optional[bool]) -> str:
    return "–" if on is None else ("**yes**" if on else "no")


def _dominator(p: dict, pts: list[dict], key: str) -> Optional[dict]:
    """The fastest (smallest) MobileNet-v1 width at least as accurate as ``p`` and cheaper."""
    cost = (lambda q: q["size_mib"]) if key == "size" else (lambda q: q["latency"][key])
    if cost(p) is None:
        return None
    better = [q for q in pts if q["baseline"] and cost(q) is not None and q["top1"] >= p["top1"] and cost(q) < cost(p)]
    return min(better, key=cost) if better else None


def answer(results: dict, pts: Optional[list[dict]] = None) -> list[str]:
    """The headline's sentences: for each front, the binary networks on it, or the MobileNet-v1 widths that
    dominate them (what ``bnnzoo eval`` prints after its table)."""
    pts = pareto_rows(results) if pts is None else pts
    rts = _headline_runtimes(results)
    t0 = results["settings"]["threads"][0]
    if not pts:
        return ["No model with a published ImageNet top-1 was measured: no front to draw."]
    lines = []
    other = sorted({f"{r['model']} ({_size(r)})" for r in results["models"] if r.get("input_size")
                    and (r.get("published") or {}).get("input_size") not in (None, r["input_size"])})
    if other:
        lines.append(f"**Not a comparison: these models were timed at another input size than the one their published "
                     f"top-1 refers to ({', '.join(other)}), e.g. a --tiny smoke run.**")
    for key in [*rts, "size"]:
        what = (f"latency at {_sizes(results)} ({t0} thread) with binary networks in {RUNTIMES[key].label} and "
                f"MobileNet-v1 in TFLite + XNNPACK") if key != "size" else "TFLite file size"
        on = sorted((p for p in pts if p["front"].get(key) and not p["baseline"]), key=lambda p: -p["top1"])
        if on:
            lines.append(f"- **Accuracy against {what}: on the front: {', '.join(p['model'] for p in on)}**"
                         + "; " + ", ".join(f"{p['model']} {p['top1']:g}% at " + _cost_text(p, key)
                                            + (_next_below(p, pts, key) if i < 3 else "") for i, p in enumerate(on))
                         + ".")
        else:
            lines.append(f"- **Accuracy against {what}: no binary network is on the front**; MobileNet-v1 dominates "
                         "each one")
        dominated = sorted((p for p in pts if not p["baseline"] and p["front"].get(key) is False),
                           key=lambda p: -p["top1"])
        examples = [(p, d) for p in dominated if (d := _dominator(p, pts, key))][:3]
        if examples:
            lines[-1] += (" Dominated, e.g.: " if on else ": ") + "; ".join(
                f"{p['model']} {p['top1']:g}% at {_cost_text(p, key)} against {d['model']} {d['top1']:g}% at "
                f"{_cost_text(d, key)}" for p, d in examples) + "."
    missing = [r for r in results["models"] if (r.get("published") or {}).get("top1") is not None
               and any(_cost_of(r, rt, t0) is None for rt in rts)]
    if missing:
        lines.append("- Not on the latency fronts (no latency in " + " or ".join(RUNTIMES[rt].label for rt in rts)
                     + "): " + "; ".join(f"{r['model']} ({_first_error(r)})" for r in missing) + ".")
    return lines


def _first_error(row: dict) -> str:
    """The error that kept a row out of a column: its export's, else the first one recorded."""
    errors = row.get("errors") or {}
    key = next((k for k in ("export tflite", "build", "timing t1") if k in errors), next(iter(errors), None))
    return f"{key}: {errors[key]}" if key else "not timed"


def _next_below(p: dict, pts: list[dict], key: str) -> str:
    """`` (mobilenet_v1 70.6% at 33.1 ms)``: the most accurate MobileNet-v1 width that costs less than ``p``."""
    cost = (lambda q: q["size_mib"]) if key == "size" else (lambda q: q["latency"][key])
    cheaper = [q for q in pts if q["baseline"] and cost(q) is not None and cost(q) < cost(p)]
    if not cheaper:
        return ""
    q = max(cheaper, key=lambda q: q["top1"])
    return (f" (the most accurate cheaper MobileNet-v1, {q['model']}: {q['top1']:g}% at {_cost_text(q, key)}, "
            f"{p['top1'] - q['top1']:+.1f} points for {cost(p) / cost(q):.2f}x the "
            f"{'size' if key == 'size' else 'latency'})")


def headline(results: dict) -> str:
    """The answer: which networks are on the accuracy-latency and accuracy-size fronts, the table, and why."""
    pts = pareto_rows(results)
    rts = _headline_runtimes(results)
    t0 = results["settings"]["threads"][0]
    lines = answer(results, pts)
    if not pts:
        return lines[0]
    rows = []
    for p in sorted(pts, key=lambda p: (p["top1"])):
        rows.append([p["model"] + (" (TFLite + XNNPACK)" if p["baseline"] else ""), f"{p['top1']:g}"]
                    + [f"{_ms(p['latency'][rt])} {'★' if p['front'][rt] else ''}".strip() for rt in rts]
                    + [f"{_num(p['size_mib'], '.2f')} {'★' if p['front']['size'] else ''}".strip(), p["source"]])
    table = _table(["model", "published ImageNet top-1 (%)"]
                   + [f"ms at {_sizes(results)}, binary in {RUNTIMES[rt].label}" for rt in rts]
                   + ["TFLite MiB", "published by"], rows,
                   ["---", "---:"] + ["---:"] * len(rts) + ["---:", "---"])
    return ("\n".join(lines) + "\n\n★: on the Pareto front of that column (no other model has a higher published "
            "top-1 at a lower cost; computed by `eval.report.pareto_front`). Latency: median of batch-1 runs "
            f"at {t0} thread, measured here; top-1: published ImageNet figures (not measured here), with their "
            "source; MobileNet-v1 rows are timed in TensorFlow's TFLite interpreter with XNNPACK in every latency "
            "column.\n\n" + table + "\n\n" + why(results, pts))


def _cost_text(p: dict, key: str) -> str:
    return f"{p['size_mib']:.2f} MiB" if key == "size" else f"{_ms(p['latency'][key])} ms"


def why(results: dict, pts: Optional[list[dict]] = None) -> str:
    """Where binary networks win and lose on this CPU, from the measured figures (see the text)."""
    t0 = results["settings"]["threads"][0]
    m = results["machine"]
    rows = {r["model"]: r for r in results["models"]}
    floats = [(r["model"], r["figures"]["flops"] / (_median(r, BASELINE_RUNTIME, t0) * 1e-3))
              for r in rows.values() if r["model"] in BASELINES and r.get("figures")
              and _median(r, BASELINE_RUNTIME, t0)]
    binaries = []
    for r in rows.values():
        lat = _lat(r, "litert", t0) or {}
        if r.get("binary") and lat.get("bconv_ms") and r.get("figures"):
            binaries.append((r["model"], r["figures"]["bops"] / (lat["bconv_ms"] * 1e-3), lat["bconv_ms"],
                             lat["median"], r["figures"]["flops"]))
    simd = ", ".join(m.get("simd") or []) or "unknown vector extensions"
    parts = [f"**Why, on this CPU** ({m['cpu']}; {simd}). All figures below are computed from this run's "
             "measurements."]
    if floats and binaries:
        best_name, float_rate = max(floats, key=lambda v: v[1])
        rates = sorted(b[1] for b in binaries)
        mid = rates[len(rates) // 2]
        parts.append(
            f"MobileNet-v1 in XNNPACK ran up to {float_rate / 1e9:.0f} G float MAC/s "
            f"({best_name}: FLOPs / its latency). "
            "bnnzoo's binary convolutions (`LceBconv2d`, timed inside the whole inference by the kernels' own "
            + (f"per-op timers) ran {rates[0] / 1e9:.0f}–{rates[-1] / 1e9:.0f} G binary MAC/s over {len(rates)} binary "
               f"networks (median {mid / 1e9:.0f})" if len(rates) > 1 else
               f"per-op timers) ran {mid / 1e9:.0f} G binary MAC/s in {binaries[0][0]}")
            + f": a binary MAC cost 1/{mid / float_rate:.0f} of a float MAC here, not the 1/64 that OPs = FLOPs + "
            "BOPs/64 assumes. Per instruction on AVX-512 (not measured, counted from the "
            "instruction set): one 512-bit `VPOPCNTQ` counts 512 binary products after one `VPXORQ`, where one "
            "`VFMADD` does 16 float32 MACs: 32x the MACs per instruction, before the XOR, the adds of the counts, "
            "the packing of activations (`LceQuantize`) and how many of each instruction the core issues per "
            "cycle (which differs between CPUs and is not measured here) take their share.")
        shares = sorted(((name, b, total, flops) for name, _, b, total, flops in binaries), key=lambda v: v[2] / v[1])
        name, b, total, flops = shares[len(shares) // 2]
        parts.append(
            f"Binary networks also keep float work MobileNet-v1 does not shrink: in {name} the binary convolutions "
            f"took {b:.1f} of {total:.1f} ms ({b / total:.0%}); the other {total - b:.1f} ms went to "
            f"{flops / 1e6:.0f} M float MACs (stem, shortcuts, classifier), packing and unpacking activations and "
            "pooling" + (f" (the median share over the {len(shares)} binary networks: "
                         f"{sorted(b / t for _, b, t, _ in shares)[len(shares) // 2]:.0%} in binary convolutions)."
                         if len(shares) > 1 else "."))
    else:
        parts.append("(No bnnzoo LiteRT per-op timing or no MobileNet-v1 XNNPACK latency in this run: the rates that "
                     "explain the front are not available.)")
    pts = pts if pts is not None else pareto_rows(results)
    small = [p for p in pts if not p["baseline"] and p["front"].get("size")]
    if small:
        parts.append("Where binary networks win here: size. On the accuracy-size front: "
                     + ", ".join(f"{p['model']} ({p['top1']:g}%, {p['size_mib']:.2f} MiB)" for p in
                                 sorted(small, key=lambda p: p["size_mib"]))
                     + "; 1-bit weights take 1/32 of the storage of float32 ones.")
    parts.append("On ARM64 the per-instruction ratio is the same (NEON's `CNT` counts 128 binary products, its `FMLA` "
                 "does 4 float32 MACs), while the cores, memory and kernels differ: this x86 front says nothing "
                 "about a Raspberry Pi (see the ARM64 section where this report has one, with LCE's published "
                 "Raspberry Pi 4 figures).")
    return " ".join(parts)


# --- ARM64 estimate (eval/bench_arm64.py --json) ----------------------------------------------------

def load_arm64(path: str | Path) -> dict[str, dict[str, Any]]:
    """Reads ``eval/bench_arm64.py --json FILE``: model -> its entry (``{"models": {...}}`` or the mapping itself).

    Each entry holds ``binary_macs``, ``instructions`` (``{"bnnzoo": int, "litert": int, "other": int}``),
    ``bconv_instructions_per_2048_macs`` and, where the benchmark models them, cycles (a key naming
    ``cycles``) or milliseconds (``estimated_ms``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not such a file.
    """
    fix = f"write it with `python -m eval.bench_arm64 --json {path}`"
    data = read_json(path, "--arm64", fix)
    models = data.get("models", data)
    if not isinstance(models, dict) or not models or not all(
            isinstance(v, dict) and (isinstance(v.get("instructions"), dict) or _arm64_ms(v)[0] is not None)
            for v in models.values()):
        raise ValueError(f"--arm64 {path} holds no per-model entries with \"instructions\" or cycles: {fix}")
    return models


def _arm64_ms(entry: dict) -> tuple[Optional[float], str]:
    """The estimated Raspberry Pi 4 latency (ms) of one entry and how it was derived."""
    if isinstance(entry.get("estimated_ms"), (int, float)):
        return float(entry["estimated_ms"]), "the benchmark's estimated_ms"
    for key, value in entry.items():
        if "cycles" in key and isinstance(value, dict):  # per owner, with the whole inference as "total"
            value = value.get("total")
        if "cycles" in key and isinstance(value, (int, float)):
            return value / PI4_CLOCK_HZ * 1e3, f"{key} / 1.5 GHz"
    instr = entry.get("instructions")
    if isinstance(instr, dict) and instr and all(isinstance(v, (int, float)) for v in instr.values()):
        return sum(instr.values()) / PI4_CLOCK_HZ * 1e3, "instructions / 1.5 GHz (one instruction per cycle assumed)"
    return None, ""


def arm64_rows(results: dict, arm64: dict[str, dict]) -> list[dict[str, Any]]:
    """The ARM64 panel's points: estimated ms (and how), published top-1, LCE's published Pi 4 ms, front."""
    pub = {r["model"]: (r.get("published") or {}).get("top1") for r in results["models"]}
    out = []
    for name, entry in arm64.items():
        ms, how = _arm64_ms(entry)
        top1 = pub.get(name)
        if top1 is None:
            from .harness import published

            try:
                top1 = published(name).get("top1")
            except Exception:  # noqa: BLE001  an entry of a model this bnnzoo does not register
                top1 = None
        out.append({"model": name, "top1": top1, "ms": ms, "how": how, "baseline": name in BASELINES,
                    "binary_macs": entry.get("binary_macs"),
                    "per_2048": entry.get("bconv_instructions_per_2048_macs"),
                    "lce_published_ms": LCE_PUBLISHED_PI4["ms"].get(name)})
    front = pareto_front({p["model"]: (p["ms"], p["top1"])
                          for p in out if p["ms"] is not None and p["top1"] is not None})
    for p in out:
        p["front"] = p["model"] in front
    return out


def arm64_section(results: dict, arm64: dict[str, dict], plotted: bool) -> str:
    """The ARM64 panel: estimates labelled as such, LCE's published figures labelled published."""
    pts = arm64_rows(results, arm64)
    hows = sorted({p["how"] for p in pts if p["how"]})
    rows = [[p["model"], _num(p["top1"], "g"), f"{_ms(p['ms'])} {'★' if p['front'] else ''}".strip(),
             _ms(p["lce_published_ms"]), _num(p["binary_macs"], ".2f", 1e9), _num(p["per_2048"], ".1f")]
            for p in sorted(pts, key=lambda p: (p["top1"] is None, p["top1"] or 0))]
    on = [p["model"] for p in pts if p["front"] and not p["baseline"]]
    both = [(p["model"], p["ms"] / p["lce_published_ms"]) for p in pts if p["ms"] and p["lce_published_ms"]]
    calibration = ("\n\nWhere both exist, the estimate is " + ", ".join(f"{r:.2f}x" for _, r in both) + " of LCE's "
                   "published Raspberry Pi 4 time (" + ", ".join(n for n, _ in both) + "): other kernels (LCE's, with "
                   "XNNPACK for the float ops) measured on a real board, against bnnzoo's kernels modelled without "
                   "cache misses or memory stalls; read the estimated front with that in mind." if both else "")
    text = ("**Estimate, not a measurement**: Raspberry Pi 4 (Cortex-A72, 1.5 GHz) latency of each LCE file at "
            "224x224, 1 thread, from `eval/bench_arm64.py` (instructions counted under qemu-aarch64; "
            + "; ".join(hows) + "). **Published**: LCE's own Raspberry Pi 4 figures for the larq-zoo QuickNet weights, "
            + LCE_PUBLISHED_PI4["source"].removeprefix("published: ") + ". Top-1: published ImageNet figures.\n\n"
            + ("Binary networks on the estimated front: " + ", ".join(on) + "." if on else
               "No binary network is on the estimated front.") + calibration + "\n\n"
            + _table(["model", "published ImageNet top-1 (%)", "estimated Pi 4 ms (estimate)",
                      "LCE's Pi 4 ms (published)", "binary GMACs", "bconv instructions per 2048 binary MACs"], rows))
    return text + (f"\n\n![{ARM64_PLOT}]({ARM64_PLOT})" if plotted else "")


# --- plots ------------------------------------------------------------------------------------------

def _log_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not any(len(c.get_offsets()) for c in ax.collections) and not any(len(line.get_xdata()) for line in ax.lines):
        ax.text(0.5, 0.5, "no figures", ha="center", va="center", transform=ax.transAxes)
        return
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def _finish(ax, xlabel: str, title: str) -> None:
    """Log x axis, the labels every panel shares (y: published top-1), title and legend."""
    _log_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")


def _short(name: str) -> str:
    return name.replace("mobilenet_v1_0", "mnv1 0.").replace("mobilenet_v1", "mnv1 1.0")


def _front_line(ax, pts: list[tuple[float, float]]) -> None:
    """The front as a staircase through its points (cost ascending)."""
    pts = sorted(pts)
    if len(pts) < 2:
        return
    xs, ys = [pts[0][0]], [pts[0][1]]
    for x, y in pts[1:]:
        xs += [x, x]
        ys += [ys[-1], y]
    ax.plot(xs, ys, "-", color="black", lw=0.8, alpha=0.5, zorder=1)


def plot(results: dict, out: Path) -> list[str]:
    """Writes ``pareto.png``: published ImageNet top-1 against latency at the ImageNet input size (one
    series per headline runtime) and against TFLite size; front points ringed; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = pareto_rows(results)
    rts = _headline_runtimes(results)
    t0 = results["settings"]["threads"][0]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.6))
    styles = {"litert": ("o", "tab:blue"), "lce": ("^", "tab:orange")}
    ax = axes[0]
    base = sorted((p["latency"][rts[0]], p["top1"], p["model"]) for p in pts if p["baseline"] and rts
                  and p["latency"][rts[0]] is not None)
    if base:
        ax.plot([b[0] for b in base], [b[1] for b in base], "s-", color="tab:gray",
                label="MobileNet-v1 widths, TFLite + XNNPACK", zorder=2)
        for x, y, name in base:
            ax.annotate(_short(name), (x, y), textcoords="offset points", xytext=(4, -11), fontsize=8, color="tab:gray")
    for rt in rts:
        marker, color = styles.get(rt, ("o", "tab:purple"))
        bin_pts = [p for p in pts if not p["baseline"] and p["latency"][rt] is not None]
        ax.scatter([p["latency"][rt] for p in bin_pts], [p["top1"] for p in bin_pts], marker=marker, color=color,
                   label=f"binary networks, {RUNTIMES[rt].label}", zorder=3)
        on = [p for p in pts if p["front"].get(rt) and p["latency"][rt] is not None]
        ax.scatter([p["latency"][rt] for p in on], [p["top1"] for p in on], s=160, facecolors="none",
                   edgecolors="black", zorder=4)
        _front_line(ax, [(p["latency"][rt], p["top1"]) for p in on])
        if rt == rts[0]:
            for p in bin_pts:
                ax.annotate(p["model"], (p["latency"][rt], p["top1"]), textcoords="offset points", xytext=(5, 4),
                            fontsize=7)
    ax.scatter([], [], s=160, facecolors="none", edgecolors="black", label="on the front (ringed; black line)")
    _finish(ax, f"latency at {_sizes(results)}, batch 1, {t0} thread (ms, log), measured on this machine",
            "published top-1 vs measured latency")
    ax = axes[1]
    sized = [p for p in pts if p["size_mib"]]
    base = sorted((p["size_mib"], p["top1"], p["model"]) for p in sized if p["baseline"])
    if base:
        ax.plot([b[0] for b in base], [b[1] for b in base], "s-", color="tab:gray", label="MobileNet-v1 widths")
        for x, y, name in base:
            ax.annotate(_short(name), (x, y), textcoords="offset points", xytext=(4, -11), fontsize=8, color="tab:gray")
    others = [p for p in sized if not p["baseline"]]
    ax.scatter([p["size_mib"] for p in others], [p["top1"] for p in others], color="tab:blue", label="binary networks",
               zorder=3)
    for p in others:
        if p["front"].get("size") or p["size_mib"] > 20:  # the crowd near 4-5 MiB: named in the table
            ax.annotate(p["model"], (p["size_mib"], p["top1"]), textcoords="offset points", xytext=(5, -10 if
                        p["front"].get("size") else 4), fontsize=7)
    on = [p for p in sized if p["front"].get("size")]
    ax.scatter([p["size_mib"] for p in on], [p["top1"] for p in on], s=160, facecolors="none", edgecolors="black",
               label="on the front", zorder=4)
    _front_line(ax, [(p["size_mib"], p["top1"]) for p in on])
    _finish(ax, "TFLite (LCE) file size (MiB, log)", "published top-1 vs file size")
    fig.tight_layout()
    save_figure(fig, out / PLOTS[0])
    return [PLOTS[0]]


def arm64_plot(results: dict, arm64: dict[str, dict], out: Path) -> str:
    """Writes ``arm64_estimate.png``: published top-1 against the estimated Raspberry Pi 4 latency, LCE's
    published Pi 4 figures beside them; returns the file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in arm64_rows(results, arm64) if p["top1"] is not None]
    fig, ax = plt.subplots(figsize=(8, 5.6))
    base = sorted((p["ms"], p["top1"], p["model"]) for p in pts if p["baseline"] and p["ms"] is not None)
    if base:
        ax.plot([b[0] for b in base], [b[1] for b in base], "s--", color="tab:gray", label="MobileNet-v1 (estimate)")
    est = [p for p in pts if not p["baseline"] and p["ms"] is not None]
    ax.scatter([p["ms"] for p in est], [p["top1"] for p in est], color="tab:blue", label="binary networks, bnnzoo "
               "kernels (estimate)", zorder=3)
    for p in est:
        ax.annotate(p["model"], (p["ms"], p["top1"]), textcoords="offset points", xytext=(5, 4), fontsize=7)
    pub = [p for p in pts if p["lce_published_ms"] is not None]
    ax.scatter([p["lce_published_ms"] for p in pub], [p["top1"] for p in pub], marker="*", s=120, color="tab:red",
               label="LCE, published (larq/compute-engine README)", zorder=3)
    on = [p for p in pts if p["front"]]
    ax.scatter([p["ms"] for p in on], [p["top1"] for p in on], s=160, facecolors="none", edgecolors="black",
               label="on the estimated front", zorder=4)
    _finish(ax, "Raspberry Pi 4 latency, 1 thread (ms, log): ESTIMATE (eval/bench_arm64.py) / published (LCE)",
            "ARM64: estimate, not a measurement")
    fig.tight_layout()
    save_figure(fig, out / ARM64_PLOT)
    return ARM64_PLOT


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Writes a matplotlib figure as PNG, atomically, and closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    write_bytes(path, buffer.getvalue())


# --- the report -------------------------------------------------------------------------------------

def header(results: dict) -> list[str]:
    """The command and machine paragraphs, and how latency was measured (the top of every report)."""
    m, s = results["machine"], results["settings"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v)
    rt_lines = "\n".join([f"- **{RUNTIMES[k].label}** (`{k}`): {v}" for k, v in s["runtimes"].items()]
                         + [f"- **{RUNTIMES[k].label}** (`{k}`): not measured, left out: {v}"
                            for k, v in (s.get("skipped_runtimes") or {}).items() if k in RUNTIMES])
    busy = (" With as many threads as usable cores, timings also compete with any other load on the machine."
            if max(s["threads"]) >= (m.get("usable_cores") or 1) else "")
    exports = [e for r in results["models"] for e in (r.get("exports") or {}).values()]
    converted = sum(1 for e in exports if e.get("converted_now"))
    first = results.get("seconds_converting_first")
    took = (f"Created {results['created']}, took {results['seconds']:.0f} s"
            + (f" ({first:.0f} s of it converting every model first, in {s.get('jobs')} processes)" if first else "")
            + (f"; {converted} of {len(exports)} exports converted and verified in this run, the others reused from "
               "the export cache (verified when they were converted)" if exports else "") + ".")
    early = (f"stopped once its interquartile range was within {s['rel_iqr']:.0%} of the median after at least "
             f"{s['min_runs']} runs"
             + (f", or once its timed runs took {s['budget_s']:g} s" if s.get("budget_s") else "")
             + f", at most {s['runs']} runs") if s.get("min_runs", s["runs"]) < s["runs"] else f"{s['runs']} runs"
    rendered = (f"\n\nThis report was written again from that run's results.json (nothing measured again) by:\n\n```\n"
                f"{results['rendered_by']}\n```" if results.get("rendered_by") else "")
    return [
        f"Command:\n\n```\n{results['command']}\n```" + rendered,
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable)"
        + (f", {', '.join(m['simd'])}" if m.get("simd") else "") + f", {m['os']}, Python {m['python']}.  \n"
        f"Libraries: {libs}.  \n"
        + (f"Load average (1/5/15 min) at start {m.get('load_average_at_start')}, at end {m.get('load_average')}.  \n"
           if m.get("load_average") else "")
        + took,
        f"Latency: batch 1 at each model's registered input size ({_sizes(results)}"
        + ("; the size its published ImageNet top-1 refers to" if any(
            "top1" in (r.get("published") or {}) for r in results["models"]) else "")
        + f"), {s['warmup']} warm-up runs, then the runtimes of one model timed round-robin (one run "
        f"of each per round, so a load change hits them alike), each {early}; the median in ms (in parentheses: "
        f"25th–75th percentile, runs), threads {', '.join(map(str, s['threads']))}. Models without trained weights "
        f"are timed with seeded random weights (seed {s.get('timing_seed', 0)}); latency does not depend on the "
        "values. Absolute numbers are this machine's." + busy + "\n\n" + rt_lines,
    ]


def markdown(results: dict, plots: list[str], arm64: Optional[dict] = None, arm64_plotted: bool = False) -> str:
    """The whole ``report.md``."""
    sizes = _sizes(results)
    parts = [
        f"# bnnzoo eval: binary networks against MobileNet-v1 at {sizes}",
        *header(results),
        f"## The answer on this machine: published ImageNet top-1 against measured latency and size at {sizes}\n\n"
        + headline(results) + "\n\n" + "\n\n".join(f"![{p}]({p})" for p in plots),
    ]
    if arm64:
        parts.append("## ARM64 (Raspberry Pi 4): estimate beside LCE's published figures\n\n"
                     + arm64_section(results, arm64, arm64_plotted))
    parts += [
        f"## Latency at {sizes} (measured)\n\n`n/a`: the runtime cannot run binary models (no LCE ops); `failed`: "
        "see Failures. Cells: median (25th–75th percentile, timed runs) ms.\n\n" + latency_table(results),
        f"## Figures and sizes at {sizes} (measured)\n\nParameters count BatchNorm statistics; a MAC of a binary "
        "convolution is a BOP, any other a FLOP; OPs = FLOPs + BOPs / 64; ideal size = 1 bit per binary weight and "
        "32 bits per other weight (`zoo.measure(...).size_bytes`); TFLite (LCE) and ONNX (binary conv weights "
        "bit-packed) are the files' sizes on disk. A binary convolution has 1-bit inputs and weights; LCE runs each "
        "as one `LceBconv2d`. Convolutions with 1-bit weights but wider inputs (DoReFa-Net's 2-bit activations) "
        "have no LCE op: they run as float convolutions and their ONNX weights stay float32.\n\n"
        + figures_table(results),
        "## Accuracy (measured, with trained weights, at their own input size)\n\nEach row names the weights, the "
        "data set and the input size it was measured at; these are not ImageNet figures and not at the latency's "
        "input size (see the latency table for that). Published ImageNet top-1 is in the first table, with its "
        "source.\n\n" + accuracy_table(results),
        "## Failures\n\n" + failures_table(results),
    ]
    return "\n\n".join(parts) + "\n"


def _size_cell(size: dict, result: dict, fmt: str) -> str:
    """The file size of one export in MB, or "failed" where its export failed."""
    if size.get(f"{fmt}_bytes") or f"export {fmt}" not in result["errors"]:
        return _num(size.get(f"{fmt}_bytes"), ".2f", MB)
    return "failed"


def summary_table(results: dict) -> str:
    """The short table ``bnnzoo eval`` prints: published top-1, latency per runtime at the ImageNet input
    size, size, the fronts, and measured accuracy with what it was measured on."""
    settings = results["settings"]
    t0 = settings["threads"][0]
    rts = list(settings["runtimes"])
    fronts = {p["model"]: p["front"] for p in pareto_rows(results)}
    keys = [*_headline_runtimes(results), "size"]
    rows = []
    for r in results["models"]:
        s, acc, pub = r.get("size") or {}, r.get("accuracy") or {}, r.get("published") or {}
        front = fronts.get(r["model"], {})
        on = ", ".join(RUNTIMES[k].label if k != "size" else "size" for k in keys if front.get(k))
        errors = "; ".join(f"{k}: {v}" for k, v in r["errors"].items())
        status = "ok" if r["status"] == "ok" else "FAILED: " + errors[:160]
        measured = (f"{acc['top1']:.1f} ({acc['dataset'].split(' (')[0].split(',')[0]}, {acc['input_size']}x"
                    f"{acc['input_size']})" if acc else "–")
        rows.append([r["model"], _num(pub.get("top1"), "g")] + [_ms(_median(r, rt, t0)) if _lat(r, rt, t0) else
                                                                _lat_cell(r, rt, t0) for rt in rts]
                    + [_num(s.get("tflite_bytes"), ".2f", MB), on or "–", measured, status])
    return _table(["model", "published ImageNet top-1"] + [f"{RUNTIMES[rt].label} ms" for rt in rts]
                  + ["TFLite MiB", "on the front", "measured top-1 (data, input)", "status"], rows,
                  ["---", "---:"] + ["---:"] * (len(rts) + 1) + ["---", "---", "---"])


def write_report(results: dict, out: str | Path, arm64: Optional[dict] = None) -> dict[str, Path]:
    """Writes the plots, ``report.md`` and ``results.json`` into ``out`` (each atomically); returns their paths.

    ``results.json`` comes last: a step that fails (e.g. matplotlib missing) leaves no report that
    looks complete. ``arm64`` (:func:`load_arm64`) adds the ARM64 section, its plot, and the entries
    to ``results.json`` (``"arm64"``).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(results, out)
    extra = {}
    if arm64:
        extra[ARM64_PLOT] = out / arm64_plot(results, arm64, out)
        results = {**results, "arm64": arm64}
    md = out / "report.md"
    write_text(md, markdown(results, plots, arm64, bool(arm64)))
    json_path = out / "results.json"
    write_text(json_path, json.dumps(results, indent=1, default=float) + "\n")
    return {"report": md, "results": json_path, **{p: out / p for p in plots}, **extra}


def load_results(path: str | Path) -> dict:
    """Reads a ``results.json``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a ``bnnzoo eval`` results file of a schema version this code reads.
    """
    data = read_json(path, "results file", "give a results.json written by bnnzoo eval")  # names the file
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path} is not a bnnzoo eval results file (no \"schema\": \"{SCHEMA}\")")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path} has schema_version {data.get('schema_version')}; this bnnzoo reads {SCHEMA_VERSION}")
    problem = _shape_problem(data)
    if problem:
        raise ValueError(f"{path} is not a bnnzoo eval results file as written ({problem}): give a results.json "
                         "written by bnnzoo eval")
    return data


def _shape_problem(data: dict) -> str:
    """What in a results file is not where or what :func:`compare` and the report expect ("" if nothing)."""
    def obj(v) -> bool:
        return v is None or isinstance(v, dict)

    if not isinstance(data.get("machine"), dict) or not isinstance(data["machine"].get("cpu"), str):
        return "'machine' is not an object with a 'cpu' name"
    if not isinstance(data.get("models"), list):
        return "'models' is not a list"
    for i, row in enumerate(data["models"]):
        if not isinstance(row, dict) or not isinstance(row.get("model"), str):
            return f"models[{i}] is not an object with a 'model' name"
        for key in ("figures", "size", "accuracy", "latency_ms", "errors"):
            if not obj(row.get(key)):
                return f"models[{i}].{key} is not an object"
        numbers = [(f"{key}.{name}", (row.get(key) or {}).get(name)) for key, name in
                   (("figures", "ops"), ("size", "tflite_bytes"), ("size", "onnx_bytes"), ("accuracy", "top1"))]
        for rt, by_threads in (row.get("latency_ms") or {}).items():
            if not isinstance(by_threads, dict) or not all(
                    str(t).isdigit() and (v is None or isinstance(v, dict)) for t, v in by_threads.items()):
                return f"models[{i}].latency_ms.{rt} is not an object of thread counts"
            numbers += [(f"latency_ms.{rt}.{t}.median", (v or {}).get("median")) for t, v in by_threads.items()]
        for name, value in numbers:
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                return f"models[{i}].{name} is not a number"
    return ""


def compare(old: dict, new: dict) -> str:
    """A table of new / old ratios for every model in both files (latency medians, sizes, OPs)
    and the change of measured top-1 (points)."""
    old_rows = {r["model"]: r for r in old["models"]}
    cols: list[tuple[str, Any]] = [("OPs", lambda r: (r.get("figures") or {}).get("ops")),
                                   ("TFLite size", lambda r: (r.get("size") or {}).get("tflite_bytes")),
                                   ("ONNX size", lambda r: (r.get("size") or {}).get("onnx_bytes"))]
    keys = sorted({(rt, t) for res in (old, new) for r in res["models"]
                   for rt, d in (r.get("latency_ms") or {}).items() for t in d},
                  key=lambda k: (list(RUNTIMES).index(k[0]) if k[0] in RUNTIMES else 99, int(k[1])))
    cols += [(f"{RUNTIMES[rt].label if rt in RUNTIMES else rt} {t} thr",
              lambda r, rt=rt, t=t: (_lat(r, rt, int(t)) or {}).get("median")) for rt, t in keys]
    rows, missing = [], []
    for r in new["models"]:
        o = old_rows.get(r["model"])
        if o is None:
            missing.append(r["model"])
            continue
        cells = []
        for _, get in cols:
            a, b = get(o), get(r)
            cells.append(f"x{b / a:.2f}" if a and b else "–")
        a1, b1 = (o.get("accuracy") or {}).get("top1"), (r.get("accuracy") or {}).get("top1")
        cells.append(f"{b1 - a1:+.1f}" if a1 is not None and b1 is not None else "–")
        rows.append([r["model"]] + cells)
    head = (f"new / old (x < 1: new is smaller or faster); old: {old.get('command')} ({old.get('created')}, "
            f"{old['machine']['cpu']}); new: {new.get('command')} ({new.get('created')}, {new['machine']['cpu']})")
    text = head + "\n\n" + _table(["model"] + [c for c, _ in cols] + ["measured top-1 (points)"], rows)
    if missing:
        text += f"\n\nonly in the new file: {', '.join(missing)}"
    gone = sorted(set(old_rows) - {r['model'] for r in new["models"]})
    if gone:
        text += f"\nonly in the old file: {', '.join(gone)}"
    return text
