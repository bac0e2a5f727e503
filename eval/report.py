"""``report.md``, ``results.json``, the plots and ``--compare`` of ``bnnzoo eval`` results.

Measured and published figures are kept apart everywhere: measured accuracy (on the
data given, with the weights given) and published ImageNet accuracy (from each
config's ``published`` dict, with its source) are separate columns and separate plots.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Optional

from zoo.fileio import write_bytes, write_text

from .harness import BASELINES, RUNTIMES, SCHEMA, SCHEMA_VERSION

__all__ = ["write_report", "markdown", "header", "summary_table", "plot", "save_figure", "load_results", "compare",
           "PLOTS"]

PLOTS = ("accuracy_vs_latency.png", "accuracy_vs_size.png")
MB = 2**20


def _num(v: Optional[float], fmt: str, scale: float = 1.0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(v / scale, fmt)


def _lat(row: dict, rt: str, threads: int) -> Optional[dict]:
    return row.get("latency_ms", {}).get(rt, {}).get(str(threads))


def _lat_cell(row: dict, rt: str, threads: int) -> str:
    lat = _lat(row, rt, threads)
    if lat is not None:
        return f"{lat['median']:.1f} ({lat['p25']:.1f}–{lat['p75']:.1f})"
    if rt in row.get("errors", {}) or f"{rt} t{threads}" in row.get("errors", {}):
        return "failed"
    if row.get("binary") and not RUNTIMES[rt].binary:
        return "n/a"
    return "–"


def _table(header: list[str], rows: list[list[str]], align: Optional[list[str]] = None) -> str:
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def figures_table(results: dict) -> str:
    """Parameters, MACs, ops and sizes (measured)."""
    rows = []
    for r in results["models"]:
        f, s = r.get("figures") or {}, r.get("size") or {}
        rows.append([r["model"], _num(f.get("params"), ".2f", 1e6), _num(f.get("binary_mac_share"), ".1%"),
                     _num(f.get("flops"), ".1f", 1e6), _num(f.get("bops"), ".3f", 1e9), _num(f.get("ops"), ".1f", 1e6),
                     _num(s.get("ideal_bytes"), ".2f", MB),
                     _num(s.get("tflite_bytes"), ".2f", MB) if s.get("tflite_bytes") or "export tflite" not in r["errors"] else "failed",
                     _num(s.get("onnx_bytes"), ".2f", MB) if s.get("onnx_bytes") or "export onnx" not in r["errors"] else "failed",
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
    """Median (quartiles) ms per runtime and thread count."""
    settings = results["settings"]
    cols = [(rt, t) for rt in settings["runtimes"] for t in settings["threads"]]
    rows = [[r["model"]] + [_lat_cell(r, rt, t) for rt, t in cols] for r in results["models"]]
    return _table(["model"] + [f"{RUNTIMES[rt].label}, {t} thr" for rt, t in cols], rows)


def accuracy_table(results: dict) -> str:
    """Measured accuracy beside the published ImageNet figures (never mixed)."""
    rows = []
    for r in results["models"]:
        acc = r.get("accuracy")
        pub = r.get("published") or {}
        if acc:
            measured = [_num(acc["top1"], ".1f"), _by_runtime(acc), _num(acc["top5"], ".1f"), f"{acc['images']}",
                        f"initialised weights (chance {acc['chance_top1']:.0f}%)" if acc["weights"] == "initialised"
                        else acc["label"]]
        elif "accuracy" in r.get("errors", {}):
            measured = ["failed", "–", "failed", "–", r["errors"]["accuracy"]]
        else:
            measured = ["–", "–", "–", "–", "not measured (no --data)"]
        rows.append([r["model"]] + measured + [_num(pub.get("top1"), ".1f"), _num(pub.get("top5"), ".1f"),
                                               pub.get("source", "–") if ("top1" in pub or "top5" in pub) else "–"])
    return _table(["model", "measured top-1 (%)", "top-1 PyTorch / ONNX / LCE (%)", "measured top-5 (%)", "images",
                   "measured with", "published ImageNet top-1 (%)", "published ImageNet top-5 (%)", "published source"],
                  rows, ["---", "---:", "---:", "---:", "---:", "---", "---:", "---:", "---"])


def _by_runtime(acc: dict) -> str:
    """``"98.1 / 98.1 / 98.0"``: the same images through PyTorch and each exported file."""
    by = acc.get("by_runtime") or {}
    return " / ".join(_num(by.get(rt), ".1f") for rt in ("torch", "onnx", "lce"))


def failures_table(results: dict) -> str:
    """Every failed stage with its error."""
    rows = [[r["model"], stage, err.replace("|", "\\|")] for r in results["models"] for stage, err in r["errors"].items()]
    return _table(["model", "stage", "error"], rows, ["---", "---", "---"]) if rows else "No failures."


def summary_table(results: dict) -> str:
    """The short table ``bnnzoo eval`` prints."""
    settings = results["settings"]
    t0 = settings["threads"][0]
    rts = [rt for rt in settings["runtimes"]]
    rows = []
    for r in results["models"]:
        f, s, acc, pub = r.get("figures") or {}, r.get("size") or {}, r.get("accuracy") or {}, r.get("published") or {}
        status = "ok" if r["status"] == "ok" else "FAILED: " + "; ".join(f"{k}: {v}" for k, v in r["errors"].items())[:160]
        rows.append([r["model"], _num(f.get("ops"), ".0f", 1e6), _num(s.get("tflite_bytes"), ".2f", MB)]
                    + [_lat_cell(r, rt, t0).split(" ")[0] for rt in rts]
                    + [_num(acc.get("top1"), ".1f"), _num(pub.get("top1"), ".1f"), status])
    return _table(["model", "OPs (M)", "TFLite MiB"] + [f"{RUNTIMES[rt].label} ms ({t0} thr)" for rt in rts]
                  + ["measured top-1", "published top-1", "status"], rows,
                  ["---"] + ["---:"] * (4 + len(rts)) + ["---"])


def header(results: dict) -> list[str]:
    """The command and machine paragraphs, and how latency was measured (the top of every report)."""
    m, s = results["machine"], results["settings"]
    libs = ", ".join(f"{k} {v}" for k, v in m["libraries"].items() if v)
    rt_lines = "\n".join([f"- **{RUNTIMES[k].label}** (`{k}`): {v}" for k, v in s["runtimes"].items()]
                         + [f"- **{RUNTIMES[k].label}** (`{k}`): not measured, left out: {v}"
                            for k, v in (s.get("skipped_runtimes") or {}).items() if k in RUNTIMES])
    busy = (" With as many threads as usable cores, timings also compete with any other load on the machine."
            if max(s["threads"]) >= (m.get("usable_cores") or 1) else "")
    return [
        f"Command:\n\n```\n{results['command']}\n```",
        f"Machine: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['os']}, Python {m['python']}.  \n"
        f"Libraries: {libs}.  \n"
        + (f"Load average (1/5/15 min) at start {m.get('load_average_at_start')}, at end {m.get('load_average')}.  \n"
           if m.get("load_average") else "")
        + f"Created {results['created']}, took {results['seconds']:.0f} s.",
        f"Latency: batch 1 at each model's input size, {s['warmup']} warm-up runs then the median of "
        f"{s['runs']} runs (in parentheses: 25th–75th percentile), ms, threads {', '.join(map(str, s['threads']))}, "
        "all measured in one process one after the other, so ratios between rows hold; absolute numbers are "
        "this machine's (x86 CPUs: LCE's binary kernels are tuned for ARM)." + busy + "\n\n" + rt_lines,
    ]


def markdown(results: dict, plots: list[str]) -> str:
    """The whole ``report.md``."""
    datasets = "; ".join(dict.fromkeys((r.get("accuracy") or {}).get("dataset") for r in results["models"]
                                       if r.get("accuracy")))
    any_init = any((r.get("accuracy") or {}).get("weights") == "initialised" for r in results["models"])
    parts = [
        "# bnnzoo eval: binary models against MobileNet-v1",
        *header(results),
        "## Figures and sizes (measured)\n\nParameters count BatchNorm statistics; a MAC of a binary convolution "
        "is a BOP, any other a FLOP; OPs = FLOPs + BOPs / 64; ideal size = 1 bit per binary weight and 32 bits "
        "per other weight (`zoo.measure(...).size_bytes`); TFLite (LCE) and ONNX (binary conv weights "
        "bit-packed) are the files' sizes on disk. A binary convolution has 1-bit inputs and weights; LCE "
        "runs each as one `LceBconv2d`. Convolutions with 1-bit weights but wider inputs (DoReFa-Net's 2-bit "
        "activations) have no LCE op: they run as float convolutions and their ONNX weights stay float32."
        "\n\n" + figures_table(results),
        "## Latency (measured)\n\n`n/a`: the runtime cannot run binary models (no LCE ops); `failed`: see "
        "Failures.\n\n" + latency_table(results),
        "## Accuracy\n\nMeasured accuracy is on " + (datasets or "the data given")
        + (" with **initialised weights**: it is chance level, it says nothing about the architecture; the "
           "1000-class models are scored on their first outputs, one per class of the data" if any_init else "")
        + ". Published accuracy is ImageNet (224x224) from each model's `published` figures, with its source; "
        "the two are never mixed.\n\n" + accuracy_table(results),
        "## Plots\n\n" + "\n\n".join(f"![{p}]({p})" for p in plots),
        "## Failures\n\n" + failures_table(results),
    ]
    return "\n\n".join(parts) + "\n"


def _points(results: dict, x_of) -> list[tuple[str, float, Optional[float], Optional[float], bool]]:
    pts = []
    for r in results["models"]:
        x = x_of(r)
        if x is None:
            continue
        pub = (r.get("published") or {}).get("top1")
        meas = (r.get("accuracy") or {}).get("top1")
        pts.append((r["model"], x, pub, meas, r["model"] in BASELINES))
    return pts


def plot(results: dict, out: Path) -> list[str]:
    """Writes ``accuracy_vs_latency.png`` and ``accuracy_vs_size.png``; returns their names.

    Each has two panels: published ImageNet top-1 (left) and measured top-1 on the data given
    (right). Binary models are labeled points; MobileNet-v1's widths are a line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    settings = results["settings"]
    t0 = settings["threads"][0]
    lat_rt = next((rt for rt in ("lce", "onnx", "torch") if rt in settings["runtimes"]), None)
    specs = []
    if lat_rt:
        specs.append((PLOTS[0], lambda r: (_lat(r, lat_rt, t0) or {}).get("median"),
                      f"latency, {RUNTIMES[lat_rt].label}, {t0} thread, batch 1 (ms, log)"))
    specs.append((PLOTS[1], lambda r: ((r.get("size") or {}).get("tflite_bytes") or 0) / MB or None,
                  "TFLite (LCE) file size (MiB, log)"))
    written = []
    data_label = settings.get("data") or "no data"
    for fname, x_of, xlabel in specs:
        pts = _points(results, x_of)
        fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
        for ax, idx, ylabel in ((axes[0], 2, "published ImageNet top-1 (%)"),
                                (axes[1], 3, f"measured top-1 (%) on {data_label}")):
            base = sorted([p for p in pts if p[4] and p[idx] is not None], key=lambda p: p[1])
            others = [p for p in pts if not p[4] and p[idx] is not None]
            if base:
                ax.plot([p[1] for p in base], [p[idx] for p in base], "o-", color="tab:gray",
                        label="MobileNet-v1 (widths 0.25–1.0)")
                for p in base:
                    ax.annotate(p[0].replace("mobilenet_v1", "mnv1").replace("mnv1_0", "mnv1 0."), (p[1], p[idx]),
                                textcoords="offset points", xytext=(4, -11), fontsize=8, color="tab:gray")
            if lat_rt and fname == PLOTS[0] and "xnnpack" in settings["runtimes"]:
                xb = sorted([(x, p[idx]) for p in base
                             if (x := (_lat(_row(results, p[0]), "xnnpack", t0) or {}).get("median"))],
                            key=lambda v: v[0])
                if xb:
                    ax.plot([v[0] for v in xb], [v[1] for v in xb], "s--", color="tab:green", alpha=0.7,
                            label="MobileNet-v1, stock TFLite + XNNPACK")
            for p in others:
                ax.scatter([p[1]], [p[idx]], color="tab:blue", zorder=3)
                ax.annotate(p[0], (p[1], p[idx]), textcoords="offset points", xytext=(5, 4), fontsize=8)
            if not base and not others:
                ax.text(0.5, 0.5, "no figures", ha="center", va="center", transform=ax.transAxes)
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_minor_formatter(NullFormatter())
            chance = {(r.get("accuracy") or {}).get("chance_top1") for r in results["models"]
                      if (r.get("accuracy") or {}).get("weights") == "initialised"} - {None}
            if idx == 3 and len(chance) == 1:
                ax.axhline(chance.pop(), color="tab:red", ls=":", lw=1, label="chance level")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:  # labeled points are annotated, not in the legend
                ax.legend(fontsize=8, loc="best")
        axes[1].set_title("measured (chance level with initialised weights)"
                          if any((r.get("accuracy") or {}).get("weights") == "initialised" for r in results["models"])
                          else "measured", fontsize=10)
        axes[0].set_title("published (ImageNet, from each model's source)", fontsize=10)
        fig.tight_layout()
        save_figure(fig, out / fname)
        written.append(fname)
    return written


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Writes a matplotlib figure as PNG, atomically, and closes it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    write_bytes(path, buffer.getvalue())


def _row(results: dict, name: str) -> dict:
    return next(r for r in results["models"] if r["model"] == name)


def write_report(results: dict, out: str | Path) -> dict[str, Path]:
    """Writes the plots, ``report.md`` and ``results.json`` into ``out`` (each atomically); returns their paths.

    ``results.json`` comes last: a step that fails (e.g. matplotlib missing) leaves no report that
    looks complete.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot(results, out)
    md = out / "report.md"
    write_text(md, markdown(results, plots))
    json_path = out / "results.json"
    write_text(json_path, json.dumps(results, indent=1, default=float) + "\n")
    return {"report": md, "results": json_path, **{p: out / p for p in plots}}


def load_results(path: str | Path) -> dict:
    """Reads a ``results.json``.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a ``bnnzoo eval`` results file of a schema version this code reads.
    """
    from zoo.fileio import read_json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file {path} does not exist")
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
