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

    root = tmp_path_factory.mktemp("plates_report")
    generate(root / "data", {"val": 6}, seed=0, size=(96, 64))
    run = root / "run"
    stages = {"float": "plates_detector_float", "baseline": "plates_detector_1bit_baseline",
              "onebit": "plates_detector_1bit"}
    for stage, name in stages.items():
        (run / stage).mkdir(parents=True)
        # Randomized, not fresh: a fresh binary model feeds exact zeros to its signs, which
        # runtimes fold differently, so its exports cannot be verified (see helpers.randomize).
        model = randomize(tiny(name), seed=len(stage))
        save(model.state_dict(), run / stage / "model.safetensors", model.zoo_config)
    out = root / "report"
    rc = plates_report.main(["--runs", str(run), "--data", str(root / "data"), "-o", str(out), "--tiny",
                             "--timed-runs", "2", "--warmup", "1", "--examples", "3", "--no-progress"])
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
    grid = Image.open(out / "plates_examples.png")
    assert grid.size[0] == 3 * 256 and grid.size[1] > 3 * 256


def test_run_folders_and_weights_arguments(made, tmp_path):
    _, run, _ = made
    found = plates_report.run_weights([run])
    assert set(found) == set(plates_report.VARIANTS) and found["plates_detector_1bit"].parent.name == "onebit"
    with pytest.raises(ValueError, match="holds no plate detector"):
        plates_report.run_weights([tmp_path])
    with pytest.raises(ValueError, match="choose one with --weights plates_detector_1bit=PATH"):
        plates_report.run_weights([run, run / "onebit"])
    with pytest.raises(ValueError, match="NAME=PATH_OR_TAG or NAME.TAG"):
        plates_report.parse_weights(["meliusnet22=x.safetensors"])
    with pytest.raises(Exception, match="none are registered yet"):
        plates_report.parse_weights(["plates_detector_1bit.paper"])
    assert plates_report.parse_weights([f"plates_detector_1bit={found['plates_detector_1bit']}"])
    assert plates_report.main(["--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r")]) == 1
