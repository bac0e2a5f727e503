"""``python -m eval.plates_report`` end to end: the tiny untrained detectors on a tiny generated data set."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from eval import plates_report
from zoo.weights import save

from helpers import randomize, tiny


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from recipes import get_recipe
    from recipes.plates.generate import generate
    from recipes.train import run_recipe

    root = tmp_path_factory.mktemp("plates_report")
    generate(root / "data", {"train": 8, "val": 6}, seed=0, size=(96, 64))
    run = root / "run"
    # A real (tiny) run of the comparison recipe, so the report reads its recipe.json, stage.json, final.json.
    run_recipe(get_recipe("plates_compare", [("tiny", "true"), ("data", str(root / "data")), ("out", str(run)),
                                             ("threads", 1), ("tensorboard", False)]), log=lambda s: None)
    # Another seed of the 1-bit stages, from the same float weights (measured in PyTorch only: no export).
    float_weights = str(run / "float" / "model.safetensors")
    run_recipe(get_recipe("plates_compare", [("tiny", "true"), ("data", str(root / "data")), ("out", str(root / "s1")),
                                             ("threads", 1), ("tensorboard", False), ("seed", 1),
                                             ("only", "baseline,improved,light"),
                                             ("baseline.init_weights", float_weights),
                                             ("improved.init_weights", float_weights),
                                             ("light.init_weights", float_weights)]), log=lambda s: None)
    stages = {"float": "plates_detector_float", "baseline": "plates_detector_1bit_baseline",
              "improved": "plates_detector_1bit", "light": "plates_detector_1bit_light"}
    for stage, name in stages.items():
        # Randomized weights, not the tiny run's: one tiny epoch leaves binary models feeding exact
        # zeros to their signs, which runtimes fold differently, so their exports cannot be verified
        # (see helpers.randomize).
        model = randomize(tiny(name), seed=len(stage))
        save(model.state_dict(), run / stage / "model.safetensors", model.zoo_config)
    # An earlier report's seed figures: seed 1 is measured again here (so the recorded row is dropped), seed 2 not.
    prior = root / "prior.json"
    prior.write_text(json.dumps({"schema": plates_report.SCHEMA, "created": "then", "command": "python -m old",
                                 "models": [], "repeats": [
        {"model": "plates_detector_1bit_baseline", "seed": s, "run": "gone", "weights": "gone", "ap50": 0.25,
         "plate_accuracy": 0.5} for s in (1, 2)]}))
    out = root / "report"
    rc = plates_report.main(["--runs", str(run), "--repeats", str(root / "s1"), "--prior", str(prior),
                             "--data", str(root / "data"),
                             "-o", str(out), "--tiny", "--timed-runs", "2", "--warmup", "1", "--examples", "3",
                             "--no-progress"])
    return rc, run, out


def test_report_holds_every_detector_with_numbers_in_range(made):
    rc, run, out = made
    assert rc == 0
    for name in plates_report.FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == plates_report.SCHEMA and res["settings"]["split"] == "val"
    assert [r["model"] for r in res["models"]] == list(plates_report.VARIANTS)
    for row in res["models"]:
        assert row["status"] == "ok", row["errors"]
        assert row["weights"].startswith(str(run)) and row["weights"].endswith("model.safetensors")
        d = row["detection"]
        assert d["images"] == 6 and d["plates"] > 0
        for key in ("ap50", "plate_accuracy", "precision", "recall"):
            assert 0.0 <= d[key] <= 1.0, (row["model"], key)
        assert d["plate_accuracy"] == d["recall"]
        size, figures = row["size"], row["figures"]
        assert size["tflite_bytes"] > 0 and size["onnx_bytes"] > 0  # both exports passed their box-level check
        assert figures["flops"] > 0 and (figures["bops"] > 0) == (row["model"] != "plates_detector_float")
        for rt in ("lce", "onnx"):
            lat = row["latency_ms"][rt]["1"]
            assert 0 < lat["min"] <= lat["median"] <= lat["max"]
    md = (out / "report.md").read_text()
    table = md.split("## Detection (measured)")[1].split("##")[0]
    for name in plates_report.VARIANTS:
        cells = re.search(rf"^\| {name} \| ([^|]+) \|(.*)\|$", table, re.M)
        assert cells, name
        numbers = [float(c) for c in cells.group(2).split("|")[:4]]
        assert all(0 <= v <= 100 for v in numbers), (name, numbers)
    published = md.split("## Published")[1].split("##")[0]
    assert "| plates_detector_1bit | 96.1 | Im & Lee 2018" in published
    assert "| plates_detector_1bit_baseline | 74.0 |" in published
    assert "96.1" not in table and "published" not in table.lower()  # measured and published never share a table
    training = md.split("## Training (measured)")[1].split("##")[0]
    for stage, name in (("float", "plates_detector_float"), ("baseline", "plates_detector_1bit_baseline"),
                        ("improved", "plates_detector_1bit"), ("light", "plates_detector_1bit_light")):
        t = next(r for r in res["models"] if r["model"] == name)["training"]
        assert t["recipe"] == "plates_compare" and t["stage"] == stage and t["seed"] == 0 and t["finished"]
        assert t["init_from"] == ("" if stage == "float" else "float") and t["seconds"] > 0
        assert re.search(rf"^\| {name} \| plates_compare / {stage} \| 0 \| 32 \|", training, re.M), training
    assert "for the 4 together" in training
    target = res["target"]
    assert [target[k] for k in ("float_ap50", "baseline_ap50", "improved_ap50")] == \
        [r["detection"]["ap50"] for r in res["models"][:3]]
    # Untrained detectors may score 0 AP: the ratio to float (and the target line) then has no meaning.
    shown = "Target (improved 1-bit detector)" in table
    assert shown == ("improved_of_float" in target) == (target["float_ap50"] > 0)
    seeds = md.split("## Seeds (measured)")[1].split("##")[0]
    assert [(r["seed"], r["model"]) for r in res["repeats"]] == [(1, "plates_detector_1bit_baseline"),
                                                                 (1, "plates_detector_1bit"),
                                                                 (1, "plates_detector_1bit_light")]
    cell = r"[\d.]+ / [\d.]+"
    assert re.search(rf"^\| 0 \| {cell} \| {cell} \| {cell} \| {cell} \| [+-][\d.]+ \| [+-][\d.]+ \|$", seeds, re.M)
    assert re.search(rf"^\| 1 \| – \| {cell} \| {cell} \| {cell} \| [+-][\d.]+ \| [+-][\d.]+ \|$", seeds, re.M), seeds
    # The prior's seed 2 is shown, marked and sourced; its seed 1 is not (measured here).
    assert re.search(r"^\| 2 \| – \| 25.0 / 50.0 † \| – \| – \| – \| – \|$", seeds, re.M), seeds
    assert "recorded by the earlier report" in seeds and "python -m old" in seeds and "25.0" not in \
        seeds.split("| 2 |")[0]
    assert re.search(r"plates_detector_1bit_light is above the baseline on [012] of 2 seeds", seeds)
    pareto = md.split("## Accuracy against compute")[1].split("\n## ")[0]
    points = {p["model"]: p for p in plates_report.pareto(res)}
    assert len(points["plates_detector_1bit_baseline"]["ap50_seeds"]) == 3  # seeds 0, 1 and the recorded 2
    assert points["plates_detector_1bit_baseline"]["seeds_recorded"] == 1
    for name in plates_report.VARIANTS:
        assert re.search(rf"^\| {name} \| [\d.]+ \| [\d.]+ \|", pareto, re.M), (name, pareto)
    assert "Most AP@0.5 per 32-bit MAC among the 1-bit detectors: **" in pareto
    assert "light_of_float_min" in res["light_target"] or not res["light_target"]["float_ap50"]
    grid = Image.open(out / "plates_examples.png")
    assert grid.size[0] == len(plates_report.VARIANTS) * 256 and grid.size[1] > 3 * 256


def test_run_folders_and_weights_arguments(made, tmp_path):
    _, run, _ = made
    found = plates_report.run_weights([run])
    assert set(found) == set(plates_report.VARIANTS) and found["plates_detector_1bit"].parent.name == "improved"
    with pytest.raises(ValueError, match="holds no plate detector"):
        plates_report.run_weights([tmp_path])
    with pytest.raises(ValueError, match="choose one with --weights plates_detector_1bit=PATH"):
        plates_report.run_weights([run, run / "improved"])
    with pytest.raises(ValueError, match="NAME=PATH_OR_TAG or NAME.TAG"):
        plates_report.parse_weights(["meliusnet22=x.safetensors"])
    with pytest.raises(Exception, match="no weights .paper. for plates_detector_1bit: known tags: plates"):
        plates_report.parse_weights(["plates_detector_1bit.paper"])
    assert plates_report.parse_weights([f"plates_detector_1bit={found['plates_detector_1bit']}"])
    assert plates_report.parse_weights(["plates_detector_1bit.plates"]) == {"plates_detector_1bit": "plates"}
    assert plates_report.main(["--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r")]) == 1


def test_target_check():
    def results(fl, base, imp):
        return {"models": [{"model": m, "detection": {"ap50": v}} for m, v in zip(plates_report.VARIANTS,
                                                                              (fl, base, imp))]}

    assert plates_report.target_check(results(0.9, 0.7, 0.82))["met"]  # 91% of float
    assert not plates_report.target_check(results(0.9, 0.7, 0.80))["met"]  # below 90%
    assert not plates_report.target_check(results(0.9, 0.85, 0.84))["met"]  # not above the baseline
    assert "met" not in plates_report.target_check({"models": [{"model": "plates_detector_float"}]})
    assert plates_report.training_info(None) is None
    assert plates_report.training_info("/nowhere/model.safetensors") is None


def _points(rows):
    """Results with one seed-0 run per detector: (model, 32-bit MACs, LCE ms, AP@0.5)."""
    return {"settings": {"threads": [1]}, "models": [
        {"model": m, "figures": {"flops": macs, "bops": 1}, "latency_ms": {"lce": {"1": {"median": ms}}},
         "detection": {"ap50": ap, "plate_accuracy": ap}, "training": {"seed": 0}} for m, macs, ms, ap in rows]}


def test_pareto_front_and_the_light_target():
    v = plates_report.VARIANTS
    res = _points([(v[0], 100e6, 4.0, 0.96), (v[1], 10e6, 2.0, 0.89), (v[2], 35e6, 3.0, 0.91), (v[3], 9e6, 2.5, 0.90)])
    points = {p["model"]: p for p in plates_report.pareto(res)}
    assert [points[n]["dominated_macs"] for n in v] == [False, True, False, False]  # the light one beats the baseline
    assert [points[n]["dominated_lce"] for n in v] == [False, False, False, False]
    assert plates_report.best_1bit_per_mac(list(points.values())) == v[3]
    tc = plates_report.light_target_check(res)
    assert tc["met"] and tc["macs_of_float"] == pytest.approx(0.09) and tc["above_baseline"] == "1 of 1"
    res["repeats"] = [{"model": v[3], "seed": 1, "ap50": 0.88, "plate_accuracy": 0.8},
                      {"model": v[1], "seed": 1, "ap50": 0.885, "plate_accuracy": 0.8}]
    assert not plates_report.light_target_check(res)["met"]  # below the baseline on seed 1
    res = _points([(v[0], 100e6, 4.0, 0.96), (v[1], 10e6, 2.0, 0.89), (v[3], 11e6, 2.5, 0.95)])
    assert not plates_report.light_target_check(res)["met"]  # more than a tenth of the float MACs


def test_prior_is_checked_and_only_fills_what_is_not_measured(tmp_path):
    with pytest.raises(FileNotFoundError, match="--prior .* does not exist"):
        plates_report.load_prior(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a plates report's results.json"):
        plates_report.load_prior(tmp_path / "x.json")
    v = plates_report.VARIANTS
    old = {"schema": plates_report.SCHEMA, "created": "c", "command": "cmd", "models": [
        {"model": v[1], "weights": "runs/a/baseline/model.safetensors",
         "detection": {"ap50": 0.8, "plate_accuracy": 0.7},
         "training": {"seed": 0, "recipe": "plates_compare", "stage": "baseline"}}],
        "repeats": [{"model": v[1], "seed": 1, "ap50": 0.7, "plate_accuracy": 0.6}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    prior = plates_report.load_prior(tmp_path / "old.json")
    # Tag weights that reproduce the prior's main-run AP@0.5 take its seed and training; others do not.
    res = _points([(v[1], 10e6, 2.0, 0.801), (v[2], 30e6, 3.0, 0.5)])
    for r in res["models"]:
        del r["training"]
    plates_report._adopt_prior(res, prior)
    assert res["models"][0]["training"]["recorded_in"] == str(tmp_path / "old.json")
    assert res["models"][0]["same_as_prior"]["weights"] == "runs/a/baseline/model.safetensors"
    assert "training" not in res["models"][1]
    table = plates_report.seed_table(res)
    assert table[0][v[1]]["recorded"] is False and table[1][v[1]]["recorded"] is True \
        and table[1][v[1]]["ap50"] == 0.7
    res = _points([(v[1], 10e6, 2.0, 0.9)])
    res["models"][0]["training"]["seed"] = 1  # seed 1 measured here: the recorded seed 1 is dropped
    plates_report._adopt_prior(res, prior)
    assert res["prior"]["repeats"] == [] and plates_report.seed_table(res)[1][v[1]]["ap50"] == 0.9


def test_the_deploy_default_is_the_committed_reports_best_1bit_detector_per_32bit_mac():
    """`bnnzoo detect` without --model runs what reports/plates/ measured as most AP@0.5 per 32-bit MAC."""
    from pathlib import Path

    from converters.detect import DEFAULT_DETECTOR

    res = json.loads((Path(__file__).resolve().parents[1] / "reports" / "plates" / "results.json").read_text())
    assert set(plates_report.VARIANTS) == {r["model"] for r in res["models"]}
    assert plates_report.best_1bit_per_mac(plates_report.pareto(res)) == DEFAULT_DETECTOR
