"""``bnnzoo eval``: the report and its schema, failing rows, --compare, bad input, and the
measured ops checked against the papers' tables (registry-driven)."""

import json
import math

import pytest

import zoo
from eval import cli, harness, report
from zoo.registry import ModelConfig, _REGISTRY

EXPECTED_ROW_KEYS = {"model", "status", "errors", "family", "paper", "published", "weights", "input_size",
                     "num_classes", "figures", "binary", "size", "latency_ms"}
FIGURE_KEYS = {"params", "trainable_params", "binary_params", "binary_convs", "flops", "bops", "ops",
               "binary_mac_share", "size_bytes"}


def _broken() -> ModelConfig:
    return ModelConfig("broken_net", "no_such_family", tiny=dict(input_size=32, num_classes=10))


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    """The default set (+ a model that cannot be built) at tiny size, PyTorch runtime, MNIST."""
    out = tmp_path_factory.mktemp("eval")
    mp = pytest.MonkeyPatch()
    mp.setitem(_REGISTRY, "broken_net", _broken)
    try:
        rc = cli.main(["--tiny", "broken_net", "meliusnet22", "realtobinary_resnet18", "--runtimes", "torch",
                       "--threads", "1,2", "--runs", "3", "--warmup", "1", "--data", "mnist", "--limit", "40",
                       "--no-progress", "-o", str(out)])
    finally:
        mp.undo()
    return rc, out


def test_report_files_and_schema(tiny_report):
    rc, out = tiny_report
    assert rc == 1  # one model failed, the others still ran
    for name in ("report.md", "results.json", *report.PLOTS):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    res = json.loads((out / "results.json").read_text())
    assert res["schema"] == harness.SCHEMA and res["schema_version"] == harness.SCHEMA_VERSION
    assert res["command"].startswith("bnnzoo eval --tiny")
    assert {"cpu", "cores", "libraries"} <= set(res["machine"])
    assert res["settings"]["threads"] == [1, 2] and res["settings"]["runs"] == 3
    names = [r["model"] for r in res["models"]]
    assert names == ["broken_net", "meliusnet22", "realtobinary_resnet18", *harness.BASELINES]
    for row in res["models"][1:]:
        assert row["status"] == "ok", row["errors"]
        assert EXPECTED_ROW_KEYS <= set(row), row["model"]
        assert FIGURE_KEYS <= set(row["figures"])
        for threads in ("1", "2"):
            lat = row["latency_ms"]["torch"][threads]
            assert lat["runs"] == 3 and lat["min"] <= lat["median"] <= lat["max"]
        acc = row["accuracy"]
        assert acc["weights"] == "initialised" and "initialised weights" in acc["label"]
        assert acc["images"] == 40 and acc["classes"] == 10 and 0 <= acc["top1"] <= acc["top5"] <= 100
        assert row["binary"] == (row["figures"]["binary_convs"] > 0)
    # published figures are carried with their source, apart from the measured ones
    melius = res["models"][1]
    assert melius["published"]["top1"] == zoo.get_config("meliusnet22").published["top1"]
    assert "source" in melius["published"]
    md = (out / "report.md").read_text()
    assert res["command"] in md and res["machine"]["cpu"] in md
    assert "published ImageNet top-1" in md and "measured top-1" in md and "initialised weights" in md


def test_failing_model_row(tiny_report):
    _, out = tiny_report
    res = json.loads((out / "results.json").read_text())
    broken = res["models"][0]
    assert broken["status"] == "failed" and "build" in broken["errors"]
    assert "no_such_family" in broken["errors"]["build"]
    md = (out / "report.md").read_text()
    assert "| broken_net | build |" in md


def test_compare(tiny_report, tmp_path, capsys):
    _, out = tiny_report
    res = json.loads((out / "results.json").read_text())
    for row in res["models"]:
        for per_thread in row.get("latency_ms", {}).values():
            for lat in per_thread.values():
                lat["median"] *= 2
    new = tmp_path / "new.json"
    new.write_text(json.dumps(res))
    assert cli.main(["--compare", str(out / "results.json"), str(new)]) == 0
    text = capsys.readouterr().out
    line = next(l for l in text.splitlines() if l.startswith("| meliusnet22 |"))
    assert "x2.00" in line and "x1.00" in line


def test_exports_and_runtimes_on_one_model(tmp_path):
    """Real LCE/ONNX exports, their runtimes (TFLite+XNNPACK for the float model) and sizes."""
    rc = cli.main(["--tiny", "meliusnet22", "mobilenet_v1_025", "--baseline", "none", "--runtimes", "lce,onnx",
                   "--threads", "1", "--runs", "2", "--warmup", "0", "--no-progress", "-o", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    melius, mnv1 = res["models"]
    assert set(melius["latency_ms"]) == {"lce", "onnx"}  # stock TFLite cannot run LCE ops
    assert set(mnv1["latency_ms"]) == {"lce", "xnnpack", "onnx"}
    assert res["settings"]["lce_flags"]["use_indirect_bgemm"] is True
    for row in (melius, mnv1):
        assert row["size"]["tflite_bytes"] > 0 and row["size"]["onnx_bytes"] > 0
    assert melius["size"]["lce_bconv2d"] == melius["figures"]["binary_convs"]


@pytest.mark.parametrize("argv, message", [
    (["meliusnet222"], "did you mean meliusnet22"),
    (["meliusnet22", "--runtimes", "lcee"], "did you mean 'lce'"),
    (["meliusnet22", "--threads", "0"], "--threads"),
    (["meliusnet22", "--weights", "meliusnet29=x.safetensors"], "not evaluated"),
    (["meliusnet22", "--baseline", "mobilenet"], "did you mean 'mobilenet_v1'"),
    (["meliusnet22.mnist", "--weights", "x.safetensors"], "meliusnet22.mnist names its weights already"),
    (["meliusnet22", "mobilenet_v1", "--weights", "x.safetensors"], "--weights MODEL=x.safetensors"),
])
def test_bad_input_is_one_line(argv, message, capsys, tmp_path):
    assert cli.main([*argv, "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bnnzoo eval: error:") and message in err[0], err


def test_data_folder_without_images(tmp_path, capsys):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    assert cli.main(["meliusnet22", "--data", str(tmp_path / "data"), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no images" in err[0]
    assert not (tmp_path / "o").exists()  # nothing ran


def test_missing_runtime_extra_names_it(monkeypatch, capsys, tmp_path):
    import dataclasses

    missing = dataclasses.replace(harness.RUNTIMES["onnx"], modules=("bnnzoo_no_such_module",))
    monkeypatch.setitem(harness.RUNTIMES, "onnx", missing)
    assert cli.main(["meliusnet22", "--runtimes", "onnx", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'bnnzoo[onnx]'" in err[0]


def test_weights_that_do_not_fit_fail_their_row_only(tmp_path):
    from zoo.weights import save

    wrong = save(zoo.load("mobilenet_v1_025", **zoo.get_config("mobilenet_v1_025").tiny).state_dict(),
                 tmp_path / "w.safetensors")
    rc = cli.main(["--tiny", "meliusnet22", "mobilenet_v1_025", "--baseline", "none", "--runtimes", "torch",
                   "--threads", "1", "--runs", "1", "--warmup", "0", "--no-progress",
                   "--weights", f"meliusnet22={wrong}", "-o", str(tmp_path / "o")])
    assert rc == 1
    rows = json.loads((tmp_path / "o" / "results.json").read_text())["models"]
    assert rows[0]["status"] == "failed" and "do not fit" in rows[0]["errors"]["build"]
    assert rows[1]["status"] == "ok"


def test_all_rule():
    names = harness.all_models()
    assert "meliusnet22" in names and "realtobinary_resnet18" in names and "mobilenet_v1" in names
    assert not any(zoo.get_config(n).family == "detector" for n in names)
    assert not any(n.endswith(("_teacher", "_stage1", "_stage2")) for n in names)


# --- ops against the papers' tables ------------------------------------------------------------

# Published figures whose counting convention differs from ours (conv/dense MACs): the figure
# our convention is checked against instead, the relative margin allowed beyond its rounding, and why.
KNOWN_DIFFERENCES = {
    ("realtobinary_resnet18", "flops"): (
        1.39e8, 0.01,
        "Martinez et al. publish 1.56e8 FLOPs without itemising them; counting conv/dense MACs (stem 118.0M, "
        "three 1x1 real shortcuts 19.3M, classifier 0.5M, scaling gates 0.3M) gives 1.38e8, which is what "
        "Bi-Real Net (Liu et al., ECCV 2018) publishes for the same ResNet-18 layout (1.39e8 FLOPs, 1.68e9 BOPs). "
        "The extra 1.8e7 is not in any conv or dense layer; 1% margin: Bi-Real's 1.39e8 is itself 0.7% above "
        "our 1.381e8 (its counter's small extras are not itemised either)."),
}
# BMXNet-v2's counter counts a little more than conv/dense MACs (all 7 MeliusNets measure
# 0.1-0.6% below the wiki, i.e. 0.2-1.5 M ops): allowed on top of the rounding.
COUNTER_MARGIN = {"ops": 0.005}

PUBLISHED_OPS = [(n, k) for n in zoo.list_models(include_stages=True) for k in ("ops", "bops", "flops") if k in zoo.get_config(n).published]


def rounding_tolerance(value: float) -> float:
    """Half a unit of the last significant digit a figure like 2.08e8 or 1.68e9 is printed with."""
    digits = len(f"{value:.6g}".split("e")[0].replace(".", "").rstrip("0").lstrip("0")) or 1
    return 0.5 * 10 ** (math.floor(math.log10(abs(value))) - digits + 1)


def test_rounding_tolerance():
    assert rounding_tolerance(2.08e8) == pytest.approx(5e5)
    assert rounding_tolerance(1.5e8) == pytest.approx(5e6)
    assert rounding_tolerance(1.68e9) == pytest.approx(5e6)


@pytest.fixture(scope="module")
def measured():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = zoo.measure(zoo.load(name))
        return cache[name]

    return get


@pytest.mark.parametrize("name, key", PUBLISHED_OPS)
def test_ops_match_the_paper(name, key, measured):
    published = zoo.get_config(name).published[key]
    value = getattr(measured(name), key)
    reference, margin, why = KNOWN_DIFFERENCES.get((name, key), (published, COUNTER_MARGIN.get(key, 0.0), ""))
    tol = rounding_tolerance(reference) + margin * reference
    assert abs(value - reference) <= tol, (name, key, value, reference, why)


def test_mobilenet_v1_macs():
    # 569 M multiply-adds: Howard et al. 2017, Table 8 (1.0 MobileNet-224); printed to 3 digits.
    f = zoo.measure(zoo.load("mobilenet_v1"))
    assert abs(f.flops - 569e6) <= rounding_tolerance(569e6) + 0.005 * 569e6
    assert f.bops == 0


def test_image_folder_is_read_with_the_weights_preprocessing(tmp_path):
    """An image folder is preprocessed as the weights expect (zoo.transforms): the MNIST-trained weights
    score the same held-out digits saved as PNG files as they score them from recipes.data's tensors."""
    import numpy as np
    from PIL import Image

    from recipes.data import _mnist_arrays

    x, y = _mnist_arrays()
    held_out = np.random.default_rng(0).permutation(len(y))[:200]  # recipes.data's validation digits, in order
    for i in held_out:
        folder = tmp_path / "digits" / str(int(y[i]))
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(x[i], np.uint8).reshape(28, 28), "L").save(folder / f"{i:04d}.png")
    top1 = {}
    # the one grammar: NAME.TAG, or NAME with --weights (MODEL= left out for a single model)
    for data, model in (("mnist", ["meliusnet22.mnist"]), (str(tmp_path / "digits"), ["meliusnet22", "--weights",
                                                                                       "mnist"])):
        out = tmp_path / ("o" + str(len(top1)))
        assert cli.main([*model, "--baseline", "none", "--runtimes", "torch", "--threads", "1",
                         "--runs", "1", "--warmup", "0", "--data", data, "--limit", "200", "--no-progress",
                         "-o", str(out)]) == 0
        acc = json.loads((out / "results.json").read_text())["models"][0]["accuracy"]
        top1[data] = acc["top1"]
    assert top1["mnist"] > 90 and abs(top1[str(tmp_path / "digits")] - top1["mnist"]) <= 2.0, top1
    mnist = next(w for w in zoo.list_weights("meliusnet22") if w.tag == "mnist")
    assert f"mean ({mnist.mean[0]:.3g}" in acc["dataset"] and "zoo.transforms" in acc["dataset"]
