"""The license-plate detectors of Im & Lee (2018) side by side, as a report.

Usage::

    python -m eval.plates_report --runs RUN_DIR [RUN_DIR ...] --data DATA_DIR -o reports/plates/
    python -m eval.plates_report --weights plates_detector_1bit.TAG --data DATA_DIR -o reports/plates/
    python -m eval.plates_report --runs RUN_DIR --repeats SEED1_DIR SEED2_DIR --data DATA_DIR -o reports/plates/
    python -m eval.plates_report --weights plates_detector_float.plates --runs LIGHT_RUN \
        --prior reports/plates/prior/results_2026-11-27.json --data DATA_DIR -o reports/plates/

``RUN_DIR`` is a ``bnnzoo train`` output: each ``<stage>/model.safetensors`` whose
``config.json`` names one of the detectors (:data:`VARIANTS`) gives that detector's weights (where a
run trains one detector in several stages, the last stage of its ``recipe.json`` wins).
``--weights NAME=PATH_OR_TAG`` or ``--weights NAME.TAG`` (registered weights) sets one
explicitly. A detector with neither is evaluated with initialised weights, and the
report says so. ``--repeats`` adds runs of the same recipe with other seeds (e.g. the 1-bit
stages only, started from the main run's float weights), measured the same way, in a table
of every seed. ``--prior RESULTS_JSON`` adds the seed rows recorded by an earlier report (its
``results.json``) for detectors whose runs are not given here, labelled as recorded, with the
file they come from; they are not measured again.

A Pareto view sets AP@0.5 and plates found against 32-bit MACs and against LCE latency
(every seed's AP, and their mean), as a table and ``plates_pareto.png``; it names the 1-bit
detector with the most AP@0.5 per 32-bit MAC (the deploy default's measure, ``converters.detect``).

Per detector, measured here: AP@0.5, plate accuracy (share of plates found at IoU >= 0.5,
Im & Lee's measure, i.e. recall), precision and recall at ``--score-threshold``, on the
``--split`` of the data, with the PyTorch model (the exports are verified to decode to the
same boxes); 32-bit and binary MACs, parameters and ideal size (``zoo.measure``); LCE TFLite
and bit-packed ONNX file sizes; and batch-1 latency of both exports (LCE's interpreter,
onnxruntime) through ``eval.harness`` / ``eval.timing``. Im & Lee's own figures (74% and
96.1% of plates found, on their photographs) are shown apart, labeled as published.

Writes into ``-o``, each file atomically: ``report.md``, ``results.json``,
``plates_pr.png`` (precision/recall curves and AP / plate-accuracy bars), ``plates_pareto.png``
and ``plates_examples.png`` (validation images, ground truth green, detections red).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["VARIANTS", "SCHEMA", "SCHEMA_VERSION", "FILES", "run_weights", "parse_weights", "training_info",
           "load_prior", "target_check", "light_target_check", "seed_table", "pareto", "evaluate_detection",
           "evaluate_repeats", "markdown", "plot", "pareto_plot", "example_grid", "make_report", "main"]

VARIANTS = ("plates_detector_float", "plates_detector_1bit_baseline", "plates_detector_1bit",
            "plates_detector_1bit_light")
LIGHT = "plates_detector_1bit_light"
SCHEMA = "bnnzoo-plates-report"
SCHEMA_VERSION = 1
FILES = ("report.md", "results.json", "plates_pr.png", "plates_pareto.png", "plates_examples.png")
RUNTIMES = ("lce", "onnx")
AP_SCORE_FLOOR = 0.001  # detections kept for AP and the curves (the operating point is --score-threshold)
CURVE_POINTS = 200  # precision/recall points stored per detector in results.json
COLORS = {"plates_detector_float": "tab:gray", "plates_detector_1bit_baseline": "tab:orange",
          "plates_detector_1bit": "tab:blue", "plates_detector_1bit_light": "tab:purple"}
GT_COLOR, PRED_COLOR = (40, 200, 60), (230, 30, 30)


# --- which weights ------------------------------------------------------------------------------


def _stage_order(run: Path) -> list[str]:
    try:
        return [s["name"] for s in json.loads((run / "recipe.json").read_text())["stages"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def run_weights(run_dirs: Sequence[str | Path]) -> dict[str, Path]:
    """The ``model.safetensors`` of each detector trained in ``run_dirs``.

    Each folder is a run (``<stage>/model.safetensors`` + ``config.json``) or one stage of it.

    Raises:
        FileNotFoundError: A folder does not exist.
        ValueError: It holds no detector, or one detector twice with no recipe order to choose by.
    """
    from zoo.weights import read_record

    found: dict[str, list[tuple[Path, int, int]]] = {}
    for k, run in enumerate(Path(r) for r in run_dirs):
        if not run.is_dir():
            raise FileNotFoundError(f"run folder {run} does not exist")
        order = _stage_order(run)
        files = [run / "model.safetensors"] if (run / "model.safetensors").is_file() else \
            sorted(run.glob("*/model.safetensors"))
        hits = 0
        for f in files:
            try:
                name = read_record(f.parent / "config.json").arch
            except (OSError, ValueError, KeyError):  # no record, or not one (an unregistered name: KeyError)
                continue
            if name in VARIANTS:
                rank = order.index(f.parent.name) if f.parent.name in order else -1
                found.setdefault(name, []).append((f, k, rank))
                hits += 1
        if not hits:
            raise ValueError(f"{run} holds no plate detector: expected <stage>/model.safetensors with a config.json "
                             f"naming one of {', '.join(VARIANTS)}")
    out = {}
    for name, items in found.items():
        if len(items) > 1 and (len({k for _, k, _ in items}) > 1 or min(r for _, _, r in items) < 0):
            raise ValueError(f"{name} is trained in {', '.join(str(f.parent) for f, _, _ in items)}: "
                             f"choose one with --weights {name}=PATH")
        out[name] = max(items, key=lambda item: item[2])[0]
    return out


def parse_weights(items: Sequence[str]) -> dict[str, str]:
    """``["NAME=PATH_OR_TAG" | "NAME.TAG", ...]`` -> ``{detector: weights}``.

    Raises:
        ValueError: Not one of those forms, or a name that is not one of :data:`VARIANTS`.
        FileNotFoundError: A ``.safetensors`` path that does not exist.
        zoo.WeightMismatchError: A tag that is not registered (the message lists the known ones).
    """
    import zoo
    from zoo.weights import lookup

    out = {}
    for item in items or []:
        name, sep, weights = item.partition("=")
        if not sep:
            name, sep, weights = item.partition(".")
        if not sep or not weights or name not in VARIANTS:
            raise ValueError(f"--weights takes NAME=PATH_OR_TAG or NAME.TAG with NAME one of {', '.join(VARIANTS)}; "
                             f"got {item!r}")
        if weights.endswith(".safetensors") or "/" in weights:
            if not weights.startswith("hf-hub:") and not Path(weights).is_file():
                raise FileNotFoundError(f"weights file {weights} does not exist")
        else:
            lookup(zoo.get_config(name), weights)
        out[name] = weights
    return out


def _weights_label(weights: Optional[str], name: str = "") -> str:
    if weights is None:
        return "initialised (untrained)"
    if name and "/" not in weights and not weights.endswith(".safetensors"):
        from zoo.weights import WEIGHTS

        w = WEIGHTS.get(f"{name}.{weights}")
        if w is not None:
            return f"{name}.{weights} ({'registered, ' + w.hub_repo if w.hub_repo else 'shipped with bnnzoo'})"
    path = Path(weights)
    if path.suffix == ".safetensors" and path.parent.is_dir() and (path.parent / "stage.json").is_file() \
            and not (path.parent / "final.json").is_file():
        return f"{weights} (training not finished: no final.json)"
    return weights


def training_info(weights: Optional[str]) -> Optional[dict[str, Any]]:
    """How a run's weights were trained, from the files ``bnnzoo train`` writes beside them.

    Returns ``None`` for weights that are not a stage of a ``bnnzoo train`` run (a tag, a bare file).
    """
    if not weights or weights.startswith("hf-hub:"):
        return None
    stage_dir = Path(weights).parent
    try:
        stage = json.loads((stage_dir / "stage.json").read_text())
        recipe = json.loads((stage_dir.parent / "recipe.json").read_text())
    except (OSError, ValueError):
        return None
    try:
        final = json.loads((stage_dir / "final.json").read_text())
    except (OSError, ValueError):
        final = {}
    return {"recipe": recipe.get("name"), "stage": stage.get("name"), "seed": recipe.get("seed"),
            "input_size": recipe.get("input_size"), "batch_size": stage.get("batch_size") or recipe.get("batch_size"),
            "train_images": _train_images(recipe), "epochs": stage.get("epochs"),
            "optimizer": stage.get("optimizer"), "lr": stage.get("lr"), "schedule": stage.get("schedule"),
            "init_from": stage.get("init_from") or ("file" if stage.get("init_weights") else ""),
            "teacher": stage.get("teacher", ""), "kd_weight": stage.get("kd_weight", 0.0),
            "seconds": final.get("seconds"), "val_ap50": final.get("val_ap50"), "finished": bool(final.get("finished"))}


def _train_images(recipe: dict) -> Optional[int]:
    """Training images a run used: its ``max_train_samples``, capped by its data folder's (None: unknown)."""
    from recipes.plates.dataset import IMAGE_SUFFIXES

    folder = Path(str(recipe.get("data") or "")) / "images" / "train"
    limit = recipe.get("max_train_samples") or None
    if not recipe.get("data") or not folder.is_dir():
        return limit
    count = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return min(count, limit) if limit else count


def evaluate_repeats(runs: Sequence[str | Path], data: str, split: str, score_threshold: float, limit: int = 0,
                     progress: bool = True) -> list[dict[str, Any]]:
    """The detectors of other training runs (other seeds) measured like the main ones, a row each."""
    import zoo

    rows = []
    for run in runs:
        for name, path in sorted(run_weights([run]).items(), key=lambda kv: VARIANTS.index(kv[0])):
            t = training_info(str(path)) or {}
            d, _ = evaluate_detection(zoo.load(name, weights=str(path)), data, split, score_threshold, limit,
                                      progress=progress)
            rows.append({"run": str(run), "model": name, "weights": str(path), "seed": t.get("seed"),
                         "init_from": t.get("init_from"), **{k: d[k] for k in
                                                             ("ap50", "plate_accuracy", "precision", "recall")}})
    return rows


def load_prior(path: str | Path) -> dict[str, Any]:
    """The seed figures an earlier plates report recorded (its ``results.json``), with where they come from.

    Returns:
        ``{"path", "created", "command", "main": {model: {seed, ap50, plate_accuracy, training}},
        "repeats": [row, ...]}``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: It is not a plates report's ``results.json``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--prior {path} does not exist: pass the results.json of an earlier plates report")
    try:
        old = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"--prior {path} is not JSON ({e}): pass the results.json of an earlier plates "
                         "report") from None
    if not isinstance(old, dict) or old.get("schema") != SCHEMA:
        raise ValueError(f"--prior {path} is not a plates report's results.json (schema {SCHEMA!r})")
    main = {}
    for r in old.get("models", []):
        d, t = r.get("detection"), r.get("training")
        if d and t and r.get("model") in VARIANTS:
            main[r["model"]] = {"seed": t.get("seed"), "ap50": d["ap50"], "plate_accuracy": d["plate_accuracy"],
                                "weights": r.get("weights"), "training": t}
    repeats = [{k: r.get(k) for k in ("model", "seed", "run", "weights", "ap50", "plate_accuracy")}
               for r in old.get("repeats", []) if r.get("model") in VARIANTS]
    return {"path": str(path), "created": old.get("created"), "command": old.get("command"), "main": main,
            "repeats": repeats}


# Measured AP@0.5 this close to a prior report's main-run figure: the same weights (e.g. that run packed as a tag).
SAME_WEIGHTS_AP = 0.005


def _adopt_prior(results: dict, prior: dict) -> None:
    """Gives tag-weights rows the seed and training record of the prior run they reproduce, and keeps the
    prior's seed rows of detectors and seeds not measured here (each marked ``recorded``)."""
    for r in results["models"]:
        d, p = r.get("detection"), prior["main"].get(r["model"])
        if d and p and not r.get("training") and abs(d["ap50"] - p["ap50"]) <= SAME_WEIGHTS_AP:
            r["training"] = {**p["training"], "recorded_in": prior["path"]}
            r["same_as_prior"] = {"weights": p["weights"], "ap50": p["ap50"]}
    measured = {(r["model"], (r.get("training") or {}).get("seed")) for r in results["models"] if r.get("detection")}
    measured |= {(r["model"], r["seed"]) for r in results.get("repeats", [])}
    results["prior"] = {**{k: prior[k] for k in ("path", "created", "command")},
                        "repeats": [r for r in prior["repeats"] if (r["model"], r["seed"]) not in measured]}


def seed_table(results: dict) -> dict[Any, dict[str, dict]]:
    """``{seed: {model: {"ap50", "plate_accuracy", "recorded"}}}``: measured here (main rows with a known seed,
    ``--repeats``), or ``recorded`` by the ``--prior`` report."""
    by_seed: dict[Any, dict[str, dict]] = {}
    for r in results["models"]:
        t = r.get("training") or {}
        if r.get("detection") and "seed" in t:
            by_seed.setdefault(t["seed"], {})[r["model"]] = {**r["detection"], "recorded": False}
    for r in results.get("repeats", []):
        by_seed.setdefault(r["seed"], {})[r["model"]] = {**r, "recorded": False}
    for r in (results.get("prior") or {}).get("repeats", []):
        by_seed.setdefault(r["seed"], {}).setdefault(r["model"], {**r, "recorded": True})
    return by_seed


def _seeds_of(results: dict, name: str) -> list[dict]:
    return [got[name] for _, got in sorted(seed_table(results).items(), key=lambda kv: str(kv[0])) if name in got]


def _repeats_section(results: dict) -> str:
    """Every seed's AP@0.5 and plates found, the main run's included, and each 1-bit detector - baseline per seed."""
    from .report import _table

    by_seed = seed_table(results)
    base_name = VARIANTS[1]
    others = VARIANTS[2:]
    rows, gaps = [], {n: [] for n in others}
    for seed in sorted(by_seed, key=str):
        got = by_seed[seed]
        cells = [str(seed)]
        for name in VARIANTS:
            m = got.get(name)
            cells.append(f"{_pct(m['ap50'])} / {_pct(m['plate_accuracy'])}{' †' if m['recorded'] else ''}"
                         if m else "–")
        base = got.get(base_name)
        for name in others:
            m = got.get(name)
            gap = None if not (base and m) else m["ap50"] - base["ap50"]
            cells.append("–" if gap is None else f"{100 * gap:+.1f}")
            if gap is not None:
                gaps[name].append(gap)
        rows.append(cells)
    prior = results.get("prior") or {}
    recorded = any(m["recorded"] for got in by_seed.values() for m in got.values())
    lines = []
    for name in others:
        g = gaps[name]
        if g:
            lines.append(f"{name} is above the baseline on {sum(x > 0 for x in g)} of {len(g)} seeds (mean "
                         f"{100 * float(np.mean(g)):+.1f} points, range {100 * min(g):+.1f} to {100 * max(g):+.1f}).")
    return ("## Seeds (measured)\n\nThe main run and the `--repeats` runs (e.g. the 1-bit stages trained again "
            "from the same float weights with other seeds, which set the order of the training images and their "
            "random flips), each measured like the table above. Cells: AP@0.5 / plate accuracy (%)."
            + (f" **†: not measured here: recorded by the earlier report `{prior['path']}` (created "
               f"{prior['created']}, command `{prior['command']}`), whose runs are not on disk.**" if recorded else "")
            + "\n\n" + _table(["seed", *VARIANTS, *(f"{n.replace('plates_detector_', '')} - baseline AP@0.5 (points)"
                                                    for n in others)], rows)
            + "\n\n" + " ".join(lines))


def target_check(results: dict) -> dict[str, Any]:
    """Issue #6's targets from the measured AP@0.5: improved >= 90% of float, and above the baseline."""
    ap = {r["model"]: (r.get("detection") or {}).get("ap50") for r in results["models"]}
    fl, base, imp = (ap.get(v) for v in VARIANTS[:3])
    out: dict[str, Any] = {"float_ap50": fl, "baseline_ap50": base, "improved_ap50": imp}
    if fl and imp is not None and base is not None:
        out.update(improved_of_float=imp / fl, baseline_of_float=base / fl,
                   improved_minus_baseline=imp - base, met=imp >= 0.9 * fl and imp > base)
    return out


def light_target_check(results: dict) -> dict[str, Any]:
    """The light detector's targets: >= 90% of the float AP@0.5 on every seed, <= 1/10 of its 32-bit
    MACs, and above the baseline's AP@0.5 on every seed where both are known."""
    rows = {r["model"]: r for r in results["models"]}
    fl, light = rows.get(VARIANTS[0]) or {}, rows.get(LIGHT) or {}
    fl_ap = (fl.get("detection") or {}).get("ap50")
    fl_macs, light_macs = (fl.get("figures") or {}).get("flops"), (light.get("figures") or {}).get("flops")
    by_seed = seed_table(results)
    pairs = [(seed, got[LIGHT]["ap50"], got[VARIANTS[1]]["ap50"]) for seed, got in sorted(by_seed.items(), key=str)
             if LIGHT in got and VARIANTS[1] in got]
    aps = [got[LIGHT]["ap50"] for got in by_seed.values() if LIGHT in got]
    out: dict[str, Any] = {"float_ap50": fl_ap, "light_ap50_by_seed": aps, "light_minus_baseline_by_seed": [
        {"seed": sd, "points": 100 * (a - b)} for sd, a, b in pairs]}
    if fl_ap and aps and fl_macs and light_macs:
        out.update(light_of_float_min=min(aps) / fl_ap, macs_of_float=light_macs / fl_macs,
                   above_baseline=f"{sum(a > b for _, a, b in pairs)} of {len(pairs)}",
                   met=min(aps) >= 0.9 * fl_ap and light_macs <= fl_macs / 10 and bool(pairs)
                   and all(a > b for _, a, b in pairs))
    return out


def pareto(results: dict) -> list[dict[str, Any]]:
    """Per detector: 32-bit and binary MACs, LCE / ONNX latency (first thread count), AP@0.5 and plates found
    (each seed, mean), whether any other detector is at least as good on both axes and better on one
    (``dominated_macs``, ``dominated_lce``), and mean AP@0.5 (%) per G 32-bit MACs."""
    t = str(results["settings"]["threads"][0])
    out = []
    for r in results["models"]:
        f = r.get("figures") or {}
        seeds = _seeds_of(results, r["model"]) or ([r["detection"]] if r.get("detection") else [])
        lat = {rt: ((r.get("latency_ms") or {}).get(rt) or {}).get(t, {}).get("median") for rt in RUNTIMES}
        ap = [s["ap50"] for s in seeds]
        found = [s["plate_accuracy"] for s in seeds]
        out.append({"model": r["model"], "macs32": f.get("flops"), "binary_macs": f.get("bops"), "lce_ms": lat["lce"],
                    "onnx_ms": lat["onnx"], "ap50_seeds": ap, "plates_found_seeds": found,
                    "seeds_recorded": sum(bool(s.get("recorded")) for s in seeds),
                    "ap50": float(np.mean(ap)) if ap else None,
                    "plates_found": float(np.mean(found)) if found else None})
    for p in out:
        known = p["ap50"] is not None and p["macs32"]
        p["ap50_per_gmac32"] = (100 * p["ap50"] / (p["macs32"] / 1e9)) if known else None
        for axis, key in (("macs32", "dominated_macs"), ("lce_ms", "dominated_lce")):
            p[key] = None if p[axis] is None or p["ap50"] is None else any(
                q is not p and q[axis] is not None and q["ap50"] is not None and q[axis] <= p[axis]
                and q["ap50"] >= p["ap50"] and (q[axis] < p[axis] or q["ap50"] > p["ap50"]) for q in out)
    return out


def best_1bit_per_mac(points: list[dict[str, Any]]) -> Optional[str]:
    """The 1-bit detector with the most mean AP@0.5 per 32-bit MAC (the deploy default's measure)."""
    cands = [p for p in points if p["model"] != VARIANTS[0] and p["ap50_per_gmac32"] is not None]
    return max(cands, key=lambda p: p["ap50_per_gmac32"])["model"] if cands else None


def _pareto_section(results: dict) -> str:
    from .report import _num, _table

    points = pareto(results)
    fl = next((p for p in points if p["model"] == VARIANTS[0]), None)
    rows = []
    for p in points:
        ap, found = p["ap50_seeds"], p["plates_found_seeds"]
        rows.append([p["model"], _num(p["macs32"], ".1f", 1e6),
                     "–" if not (fl and fl["macs32"] and p["macs32"]) else f"{p['macs32'] / fl['macs32']:.3f}",
                     _num(p["binary_macs"], ".1f", 1e6), _num(p["lce_ms"], ".2f"), _num(p["onnx_ms"], ".2f"),
                     " / ".join(_pct(a) for a in ap) or "–", _pct(p["ap50"]),
                     " / ".join(_pct(a) for a in found) or "–", _pct(p["plates_found"]),
                     _num(p["ap50_per_gmac32"], ",.0f"),
                     {None: "–", True: "no", False: "**yes**"}[p["dominated_macs"]],
                     {None: "–", True: "no", False: "**yes**"}[p["dominated_lce"]]])
    best = best_1bit_per_mac(points)
    tc = results.get("light_target") or {}
    target = ("" if "met" not in tc else
              f"\n\n**Target (light 1-bit detector): `{LIGHT}` at >= 90% of the float AP@0.5, <= 1/10 of its 32-bit "
              "MACs, above "
              f"the 1-bit baseline on every seed.** Measured: lowest seed {100 * tc['light_of_float_min']:.1f}% of "
              f"float; 32-bit MACs {tc['macs_of_float']:.3f} of float; above the baseline on {tc['above_baseline']} "
              "seeds: target " + ("**met**." if tc["met"] else "**not met**."))
    t = results["settings"]["threads"][0]
    n_rec = sum(p["seeds_recorded"] for p in points)
    return ("## Accuracy against compute (Pareto, measured)\n\n32-bit MACs at the evaluated input size "
            "(`zoo.measure`, as in the compute table; the ratio to float is the same at 160x160), batch-1 latency "
            f"of the exports with {t} thread (median, ms, from the latency table), and AP@0.5 / plates found "
            "(IoU >= 0.5) of every seed in the seeds table (seed order) and their mean"
            + (f" ({n_rec} recorded seed figures (†) included, see the seeds table)" if n_rec else "")
            + ". Pareto: no other detector has at least the mean AP@0.5 with at most the 32-bit MACs (or the LCE "
            "latency), better in one. AP per G 32-bit MACs: mean AP@0.5 (%) / 32-bit GMACs.\n\n"
            + _table(["model", "32-bit MACs (M)", "of float", "binary MACs (M)", f"LCE ms ({t} thr)",
                      f"ONNX ms ({t} thr)", "AP@0.5 by seed (%)", "AP@0.5 mean (%)", "plates found by seed (%)",
                      "plates found mean (%)", "AP per G 32-bit MACs", "Pareto (32-bit MACs)", "Pareto (LCE ms)"],
                     rows, ["---"] + ["---:"] * 12)
            + (f"\n\nMost AP@0.5 per 32-bit MAC among the 1-bit detectors: **{best}** (the deploy default's "
               "measure: `bnnzoo detect` without `--model`)." if best else "") + target)


# --- detection metrics --------------------------------------------------------------------------


def evaluate_detection(model, data: str, split: str, score_threshold: float, limit: int = 0,
                       examples: int = 0, progress: bool = True) -> tuple[dict[str, Any], list]:
    """AP@0.5, plate accuracy, precision and recall of a PyTorch detector on a plates split.

    Args:
        model: A zoo PyTorch detector.
        data: Data set folder (``images/<split>``, ``labels/<split>``).
        split: Split evaluated.
        score_threshold: Operating point of precision, recall and plate accuracy.
        limit: At most this many images (0: all).
        examples: How many ``(path, gt, detections)`` of the first readable images to return.
        progress: Show a progress bar.

    Returns:
        The metrics (with the precision/recall curve) and the examples.
    """
    import torch

    from converters.verify import reference_outputs
    from recipes.plates.dataset import PlatesDataset
    from zoo import detection as det

    cfg = model.zoo_config
    dataset = PlatesDataset(data, split, input_size=cfg.input_size)
    n = min(len(dataset), limit) if limit else len(dataset)
    preds, gts, shown = [], [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"{cfg.name} on {split}", unit="img", file=sys.stderr)
    skipped = 0
    for start in range(0, n, 32):
        items = [(i, dataset[i]) for i in range(start, min(start + 32, n))]
        good = [(i, it) for i, it in items if it is not None]
        skipped += len(items) - len(good)
        if good:
            raw = reference_outputs(model, torch.stack([x for _, (x, _) in good]).numpy())
            for (i, (_, boxes)), d in zip(good, det.decode(raw, cfg, AP_SCORE_FLOOR)):
                gt = det.cxcywh_to_xyxy(boxes[:, 1:].numpy())
                preds.append(d)
                gts.append(gt)
                if len(shown) < examples:
                    shown.append((str(dataset.images[i]), gt, d))
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        bar.close()
    metrics = det.evaluate(preds, gts, score_threshold)
    precision, recall, scores, _ = det.precision_recall_curve(preds, gts)
    pick = np.unique(np.linspace(0, len(scores) - 1, min(len(scores), CURVE_POINTS)).round().astype(int)) \
        if len(scores) else np.zeros(0, int)
    metrics.update(skipped_images=skipped, score_threshold=score_threshold, split=split,
                   curve={"precision": precision[pick].tolist(), "recall": recall[pick].tolist(),
                          "score": scores[pick].tolist()})
    return metrics, shown


# --- the report ---------------------------------------------------------------------------------


def _pct(v: Optional[float]) -> str:
    from .report import _num

    return _num(None if v is None else 100 * v, ".1f")


def markdown(results: dict, plots: Sequence[str]) -> str:
    """The whole ``report.md``."""
    from . import harness
    from .report import MB, _num, _table, failures_table, header, latency_table

    s = results["settings"]
    rows, pub_rows, size_rows = [], [], []
    for r in results["models"]:
        d = r.get("detection") or {}
        rows.append([r["model"], r["weights_label"], _pct(d.get("ap50")), _pct(d.get("plate_accuracy")),
                     _pct(d.get("precision")), _pct(d.get("recall")), str(d["images"]), str(d["plates"])] if d else
                    [r["model"], r["weights_label"]] + ["failed" if "detection" in r["errors"] else "–"] * 6)
        pub = r.get("published") or {}
        pub_rows.append([r["model"], _num(pub.get("plate_accuracy"), ".1f"),
                         pub.get("source", "–") if "plate_accuracy" in pub else "no figure published"])
        f, z = r.get("figures") or {}, r.get("size") or {}
        size_rows.append([r["model"], _num(f.get("flops"), ".1f", 1e6), _num(f.get("bops"), ".1f", 1e6),
                          _num(f.get("binary_mac_share"), ".1%"), _num(f.get("params"), ".3f", 1e6),
                          _num(f.get("size_bytes"), ".3f", MB), _num(z.get("tflite_bytes"), ".3f", MB),
                          _num(z.get("onnx_bytes"), ".3f", MB), str(z.get("lce_bconv2d", "–"))])
    untrained = [r["model"] for r in results["models"] if r["weights"] == harness.NO_WEIGHTS]
    train_rows = []
    recorded_training = False
    for r in results["models"]:
        t = r.get("training")
        if t:
            recorded_training |= bool(t.get("recorded_in"))
            train_rows.append([r["model"] + (" †" if t.get("recorded_in") else ""), f"{t['recipe']} / {t['stage']}",
                               str(t["seed"]), f"{t['input_size']}",
                               str(t["batch_size"]), _num(t["train_images"], ",.0f"), str(t["epochs"]),
                               f"{t['optimizer']} {t['lr']:g} {t['schedule']}", t["init_from"] or "scratch",
                               f"{t['teacher']} x{t['kd_weight']:g}" if t["teacher"] else "–",
                               _num(t["seconds"], ".0f") if t["finished"] else "not finished"])
    train_total = sum(r["training"]["seconds"] or 0 for r in results["models"] if r.get("training"))
    tc = results.get("target") or {}
    target = ("" if "improved_of_float" not in tc else
              "\n\n**Target (improved 1-bit detector): improved 1-bit AP@0.5 >= 90% of the float model's and above "
              "the 1-bit "
              f"baseline.** Measured: improved {_pct(tc['improved_ap50'])}% = {100 * tc['improved_of_float']:.1f}% "
              f"of float ({_pct(tc['float_ap50'])}%); baseline {_pct(tc['baseline_ap50'])}% = "
              f"{100 * tc['baseline_of_float']:.1f}% of float; improved - baseline = "
              f"{100 * tc['improved_minus_baseline']:+.1f} points: target "
              + ("**met**." if tc["met"] else "**not met**."))
    same = [f"`{r['weights_label']}` gives {_pct(r['detection']['ap50'])}% AP@0.5, the earlier report's "
            f"{_pct(r['same_as_prior']['ap50'])}% for `{r['same_as_prior']['weights']}`"
            for r in results["models"] if r.get("same_as_prior")]
    training = ("## Training (measured)\n\nRead from each run's `recipe.json`, `stage.json` and `final.json`; "
                "seconds are the stage's training and validation time on the machine that trained it"
                + (f", {train_total:.0f} s ({train_total / 60:.1f} min) for the {len(train_rows)} together"
                   if len(train_rows) > 1 else "") + "."
                + (f" **†: shipped weights, whose training is recorded in `{(results.get('prior') or {}).get('path')}`"
                   f" (not on disk here): measured here, " + "; ".join(same) + f" (within {100 * SAME_WEIGHTS_AP:.1f} "
                   "points), so these are those runs' weights.**" if recorded_training else "") + "\n\n"
                + _table(["model", "recipe / stage", "seed", "input", "batch", "training images", "epochs",
                          "optimizer", "initialised from", "teacher", "seconds"], train_rows,
                         ["---", "---"] + ["---:"] * 5 + ["---", "---", "---", "---:"])) if train_rows else ""
    parts = [
        "# Plate detectors (Im & Lee, 2018): float, 1-bit baseline, 1-bit with the second layer 32-bit, and its "
        "light variant",
        *header(results),
        f"## Detection (measured)\n\nMeasured here with the PyTorch model on `{s['data']}`, split `{s['split']}`"
        + (f" (first {s['limit']} images)" if s.get("limit") else "")
        + f"; images read and resized by the training reader (`recipes.plates.dataset`). AP@0.5: area under the "
        f"precision/recall curve of all detections scoring >= {AP_SCORE_FLOOR}; plate accuracy: share of the "
        f"plates found by a detection with IoU >= 0.5 (Im & Lee's measure; the recall); precision and recall at "
        f"score >= {s['score_threshold']}; NMS at IoU 0.45. The TFLite and ONNX exports are verified to decode to "
        "the same boxes (`converters.verify`)."
        + (f" **{', '.join(untrained)}: initialised (untrained) weights**, so those rows say nothing about the "
           "recipe." if untrained else "")
        + "\n\n" + _table(["model", "weights", "AP@0.5 (%)", "plate accuracy (%)", "precision (%)", "recall (%)",
                           "images", "plates"], rows, ["---", "---"] + ["---:"] * 6) + target,
        *([training] if training else []),
        *([_repeats_section(results)] if results.get("repeats") or (results.get("prior") or {}).get("repeats")
          else []),
        _pareto_section(results),
        "## Published (Im & Lee, 2018)\n\nPlate accuracy published by the paper, on its own photographs of Korean "
        "plates (not public), not on the data above: not comparable with the measured figures.\n\n"
        + _table(["model", "published plate accuracy (%)", "source"], pub_rows, ["---", "---:", "---"]),
        "## Compute and size (measured)\n\nMACs at the model's input size (`zoo.measure`): a MAC of a binary "
        "convolution is binary, any other 32-bit; ideal size: 1 bit per binary weight, 32 bits per other; "
        "TFLite (LCE) and ONNX (binary weights bit-packed) are the files' sizes on disk.\n\n"
        + _table(["model", "32-bit MACs (M)", "binary MACs (M)", "binary share", "params (M)",
                  "ideal size (MiB)", "TFLite (MiB)", "ONNX (MiB)", "LceBconv2d"], size_rows),
        "## Latency of the exports (measured)\n\n" + latency_table(results),
        "## Plots\n\n" + "\n\n".join(f"![{p}]({p})" for p in plots),
        "## Failures\n\n" + failures_table(results),
    ]
    return "\n\n".join(parts) + "\n"


def plot(results: dict, path: Path) -> None:
    """Precision/recall curves of the detectors and their AP@0.5 / plate accuracy as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import save_figure

    s = results["settings"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    rows = [r for r in results["models"] if r.get("detection")]
    for r in rows:
        d, color = r["detection"], COLORS.get(r["model"], None)
        left.plot(d["curve"]["recall"], d["curve"]["precision"], color=color,
                  label=f"{r['model']} (AP@0.5 {100 * d['ap50']:.1f}%)")
        left.scatter([d["recall"]], [d["precision"]], color=color, zorder=3)
    left.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="recall (plates found at IoU >= 0.5)", ylabel="precision",
             title=f"measured on {Path(s['data']).name}/{s['split']} (dot: score >= {s['score_threshold']})")
    left.grid(alpha=0.3)
    if rows:
        left.legend(fontsize=8, loc="lower left")
    names = [r["model"].replace("plates_detector_", "") for r in results["models"]]
    x = np.arange(len(names))
    measured = {k: [100 * (r.get("detection") or {}).get(k, np.nan) for r in results["models"]]
                for k in ("ap50", "plate_accuracy")}
    right.bar(x - 0.27, measured["ap50"], 0.27, label="AP@0.5 (measured)", color="tab:blue")
    right.bar(x, measured["plate_accuracy"], 0.27, label="plate accuracy (measured)", color="tab:green")
    published = [(r.get("published") or {}).get("plate_accuracy", np.nan) for r in results["models"]]
    right.bar(x + 0.27, published, 0.27, label="plate accuracy, published (Im & Lee 2018, their data)",
              color="white", edgecolor="tab:red", hatch="//")
    right.set_xticks(x, names)
    right.set(ylim=(0, 105), ylabel="%", title="measured here vs published by Im & Lee (different data)")
    right.legend(fontsize=8, loc="lower right")
    right.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def pareto_plot(results: dict, path: Path) -> None:
    """AP@0.5 (filled) and plates found (hollow) of each detector against its 32-bit MACs and its LCE latency:
    small marks each seed, large marks the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .report import save_figure

    t = results["settings"]["threads"][0]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    points = pareto(results)
    for ax, axis, label in ((axes[0], "macs32", "32-bit MACs (M, at the evaluated input size)"),
                            (axes[1], "lce_ms", f"LCE latency (ms, batch 1, {t} thread, median)")):
        for p in points:
            if p[axis] is None or p["ap50"] is None:
                continue
            x = p[axis] / 1e6 if axis == "macs32" else p[axis]
            color = COLORS.get(p["model"])
            ax.scatter([x] * len(p["ap50_seeds"]), [100 * a for a in p["ap50_seeds"]], s=14, color=color, alpha=0.6)
            ax.scatter([x], [100 * p["ap50"]], s=90, color=color, label=p["model"].replace("plates_detector_", ""),
                       zorder=3)
            ax.scatter([x] * len(p["plates_found_seeds"]), [100 * a for a in p["plates_found_seeds"]], s=14,
                       facecolors="none", edgecolors=color, alpha=0.6)
            ax.scatter([x], [100 * p["plates_found"]], s=90, facecolors="none", edgecolors=color, zorder=3)
        front = sorted((p for p in points if p[axis] is not None and p["ap50"] is not None
                        and not p["dominated_macs" if axis == "macs32" else "dominated_lce"]), key=lambda p: p[axis])
        ax.plot([p[axis] / 1e6 if axis == "macs32" else p[axis] for p in front], [100 * p["ap50"] for p in front],
                color="black", lw=0.8, ls="--", label="Pareto front (mean AP@0.5)")
        if axis == "macs32":
            ax.set_xscale("log")
        ax.set(xlabel=label, ylabel="%", title="AP@0.5 (filled) and plates found (hollow); small: each seed")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)


def example_grid(examples: dict[str, list], path: Path, score_threshold: float, tile: int = 256) -> None:
    """Validation images (rows) by detector (columns): ground truth green, detections red with scores."""
    from PIL import Image, ImageDraw, ImageFont

    from converters.detect import draw_boxes, read_display, save_png

    names = list(examples)
    paths = [p for p, _, _ in next(iter(examples.values()), [])]
    head = 22
    grid = Image.new("RGB", (tile * max(len(names), 1), head + tile * max(len(paths), 1)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=13)
    for c, name in enumerate(names):
        draw.text((c * tile + 4, 4), name, fill=(0, 0, 0), font=font)
        for r, (image_path, gt, d) in enumerate(examples[name]):
            canvas, _ = read_display(image_path, tile)
            fit = tile / max(canvas.size)  # small validation images are shown enlarged
            canvas = canvas.resize((max(1, round(canvas.size[0] * fit)), max(1, round(canvas.size[1] * fit))),
                                   Image.Resampling.BILINEAR)
            w, h = canvas.size
            keep = d.scores >= score_threshold
            draw_boxes(canvas, np.asarray(gt) * [w, h, w, h], color=GT_COLOR)
            draw_boxes(canvas, d.boxes[keep] * [w, h, w, h], d.scores[keep], PRED_COLOR)
            grid.paste(canvas, (c * tile + (tile - w) // 2, head + r * tile + (tile - h) // 2))
    save_png(grid, path)


def make_report(runs: Sequence[str], data: str, out: str | Path, *, weights: Sequence[str] = (),
                repeats: Sequence[str] = (), prior: str = "", split: str = "val", score_threshold: float = 0.5,
                limit: int = 0, examples: int = 6,
                timed_runs: int = 20, warmup: int = 3, threads: int = 1, tiny: bool = False,
                keep_exports: bool = False, progress: bool = True, command: str = "") -> dict[str, Path]:
    """Evaluates the detectors and writes the report (module docstring).

    Returns:
        The files written, by name (:data:`FILES`).

    Raises:
        FileNotFoundError / recipes.plates.dataset.DataError: Unusable ``data`` or run folders.
        ValueError: Bad ``weights`` or options.
        eval.harness.MissingRuntimeError: LCE or onnxruntime is not installed.
    """
    import zoo
    from recipes.plates.dataset import PlatesDataset

    from . import harness

    if not 0 <= score_threshold <= 1 or timed_runs < 1 or warmup < 0 or threads < 1 or examples < 0 or limit < 0:
        raise ValueError("--score-threshold is in [0, 1], --timed-runs and --threads >= 1, --warmup, --examples "
                         "and --limit >= 0")
    PlatesDataset(data, split)  # unusable data fails here, before any model is built
    for rt in RUNTIMES:
        harness.check_runtime(harness.RUNTIMES[rt])
    chosen = {name: str(path) for name, path in run_weights(runs).items()} if runs else {}
    chosen.update(parse_weights(weights))
    for run in repeats:
        run_weights([run])  # an unusable repeat run fails here, before the exports
    if prior:
        load_prior(prior)  # and so does an unusable --prior
    missing = [n for n in VARIANTS if n not in chosen]
    if missing:
        print(f"plates_report: no weights for {', '.join(missing)}: evaluated with initialised weights",
              file=sys.stderr)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = harness.evaluate(harness.EvalOptions(
        models=list(VARIANTS), runtimes=list(RUNTIMES), threads=[threads], runs=timed_runs, warmup=warmup,
        min_runs=timed_runs, weights=chosen, tiny=tiny, cache=str(out / "exports") if keep_exports else "",
        progress=progress, command=command))
    results.update(schema=SCHEMA, schema_version=SCHEMA_VERSION)
    results["settings"].update(data=str(data), split=split, score_threshold=score_threshold, limit=limit or None)
    shown: dict[str, list] = {}
    for row in results["models"]:
        name = row["model"]
        row["weights_label"] = _weights_label(chosen.get(name), name)
        row["training"] = training_info(chosen.get(name))
        try:
            overrides = dict(zoo.get_config(name).tiny) if tiny else {}
            model = zoo.load(name, weights=chosen.get(name), **overrides)
            row["detection"], shown[name] = evaluate_detection(model, data, split, score_threshold, limit, examples,
                                                               progress)
        except Exception as e:  # noqa: BLE001  recorded in the row, the other detectors still run
            row["errors"]["detection"] = harness._error(e)
            row["status"] = "failed"
    results["repeats"] = evaluate_repeats(repeats, data, split, score_threshold, limit, progress) if repeats else []
    if prior:
        _adopt_prior(results, load_prior(prior))
    results["target"] = target_check(results)
    results["light_target"] = light_target_check(results)
    from zoo.fileio import write_text

    files = {name: out / name for name in FILES}
    write_text(files["results.json"], json.dumps(results, indent=1, default=float) + "\n")
    plot(results, files["plates_pr.png"])
    pareto_plot(results, files["plates_pareto.png"])
    example_grid(shown, files["plates_examples.png"], score_threshold)
    write_text(files["report.md"], markdown(results, ["plates_pareto.png", "plates_pr.png", "plates_examples.png"]))
    return files


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m eval.plates_report``; returns the exit status (1 when a detector had failures)."""
    import os
    import shlex

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = argparse.ArgumentParser(prog="python -m eval.plates_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=[], metavar="RUN_DIR",
                   help="bnnzoo train output folders (or stage folders) holding the detectors' model.safetensors")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH_OR_TAG|NAME.TAG",
                   help="weights of one detector (repeatable; wins over --runs)")
    p.add_argument("--repeats", nargs="+", default=[], metavar="RUN_DIR",
                   help="runs of the same recipe with other seeds: measured the same way, in a Seeds table")
    p.add_argument("--prior", default="", metavar="RESULTS_JSON",
                   help="an earlier plates report's results.json: its seed rows of detectors and seeds not measured "
                        "here are shown, marked as recorded there")
    p.add_argument("--data", required=True, help="plates data set folder (bnnzoo data plates --out DATA)")
    p.add_argument("--split", default="val", help="split evaluated (default: val)")
    p.add_argument("-o", "--out", default="reports/plates", help="report folder")
    p.add_argument("--score-threshold", type=float, default=0.5,
                   help="operating point of precision, recall and plate accuracy (default 0.5)")
    p.add_argument("--limit", type=int, default=0, help="evaluate at most this many images (0: all)")
    p.add_argument("--examples", type=int, default=6, help="validation images in the example grid")
    p.add_argument("--timed-runs", type=int, default=20, help="timed runs per export (median reported)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before them")
    p.add_argument("--threads", type=int, default=1, help="threads of LCE and onnxruntime")
    p.add_argument("--tiny", action="store_true", help="build each detector at its tiny test size (smoke runs)")
    p.add_argument("--keep-exports", action="store_true",
                   help="keep the verified .tflite and .onnx files in OUT/exports/ (NAME-KEY.suffix: a later run with "
                        "the "
                        "same weights reuses them)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        files = make_report(args.runs, args.data, args.out, weights=args.weights, repeats=args.repeats,
                            prior=args.prior, split=args.split,
                            score_threshold=args.score_threshold, limit=args.limit, examples=args.examples,
                            timed_runs=args.timed_runs, warmup=args.warmup, threads=args.threads, tiny=args.tiny,
                            keep_exports=args.keep_exports, progress=not args.no_progress,
                            command="python -m eval.plates_report " + " ".join(shlex.quote(a) for a in argv))
    except (KeyError, ValueError, TypeError, OSError, ImportError) as e:
        if os.environ.get("BNNZOO_DEBUG"):
            raise
        print(f"plates_report: error: {e}", file=sys.stderr)
        return 1
    results = json.loads(files["results.json"].read_text())
    print("wrote " + ", ".join(str(f) for f in files.values()))
    failed = [r["model"] for r in results["models"] if r["status"] != "ok"]
    if failed:
        print(f"plates_report: failures in {', '.join(failed)} (see the Failures section of {files['report.md']})",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
