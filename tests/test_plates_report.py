"""``python -m eval.plates_report`` end to end: three tiny untrained detectors on a tiny generated data set."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from eval import plates_report
from helpers import randomize, tiny
from zoo.weights import save


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from recipes.plates.generate import generate

    from recipes.config import get_recipe
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
                                             ("only", "baseline,improved"), ("baseline.init_weights", float_weights),
                                             ("improved.init_weights", float_weights)]), log=lambda s: None)
    stages = {"float": "plates_detector_float", "baseline": "plates_detector_1bit_baseline",
              "improved": "plates_detector_1bit"}
    for stage, name in stages.items():
        # Randomized weights, not the tiny run's: one tiny epoch leaves binary models feeding exact
        # zeros to their signs, which runtimes fold differently, so their exports cannot be verified
        # (see helpers.randomize).
        model = randomize(tiny(name), seed=len(stage))
        save(model.state_dict(), run / stage / "model.safetensors", model.zoo_config)
    out = root / "report"
    rc = plates_report.main(["--runs", str(run), "--repeats", str(root / "s1"), "--data", str(root / "data"),
                             "-o", str(out), "--tiny", "--timed-runs", "2", "--warmup", "1", "--examples", "3",
                             "--no-progress"])
    return rc, run, out


def test_report_holds_the_three_detectors_with_numbers_in_range(made):
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
                        ("improved", "plates_detector_1bit")):
        t = next(r for r in res["models"] if r["model"] == name)["training"]
        assert t["recipe"] == "plates_compare" and t["stage"] == stage and t["seed"] == 0 and t["finished"]
        assert t["init_from"] == ("" if stage == "float" else "float") and t["seconds"] > 0
        assert re.search(rf"^\| {name} \| plates_compare / {stage} \| 0 \| 32 \|", training, re.M), training
    assert "for the three together" in training
    target = res["target"]
    assert [target[k] for k in ("float_ap50", "baseline_ap50", "improved_ap50")] == \
        [r["detection"]["ap50"] for r in res["models"]]
    # Untrained detectors may score 0 AP: the ratio to float (and the target line) then has no meaning.
    assert ("Target (issue #6)" in table) == ("improved_of_float" in target) == (target["float_ap50"] > 0)
    seeds = md.split("## Seeds (measured)")[1].split("##")[0]
    assert [(r["seed"], r["model"]) for r in res["repeats"]] == [(1, "plates_detector_1bit_baseline"),
                                                                 (1, "plates_detector_1bit")]
    assert re.search(r"^\| 0 \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \| [+-][\d.]+ \|$", seeds, re.M)
    assert re.search(r"^\| 1 \| – \| [\d.]+ / [\d.]+ \| [\d.]+ / [\d.]+ \| [+-][\d.]+ \|$", seeds, re.M), seeds
    assert re.search(r"above the baseline on [012] of 2 seeds", seeds)
    grid = Image.open(out / "plates_examples.png")
    assert grid.size[0] == 3 * 256 and grid.size[1] > 3 * 256


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
