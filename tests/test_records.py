"""The weights' record (``zoo.weights.Weights``: the registry entry, ``config.json`` and ``model.zoo_weights``)
and the resolver of model references (``zoo.refs``): strict reading, old files, loading by reference alone,
nothing imported from a file, headless models, and the command line's checks of sizes and formats."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

import zoo
from bnnzoo.cli import main
from zoo import weights as zw

from helpers import error_lines, tiny

CLASSIFIERS = [n for n in zoo.list_models() if zoo.get_config(n).family != "detector"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A folder saved with zoo.save from the shipped MNIST weights of meliusnet22."""
    folder = tmp_path_factory.mktemp("saved") / "run7"
    zoo.save(zoo.load("meliusnet22.mnist"), folder)
    return folder


@pytest.mark.parametrize("key", sorted(zw.WEIGHTS))
def test_every_registered_record_round_trips_through_json(key):
    w = zw.WEIGHTS[key]
    back = zw.Weights.from_dict(json.loads(json.dumps(w.to_dict())))
    assert back == w and back.config().name == w.arch
    assert zw.Weights.from_dict(w.without_location().to_dict()) == w.without_location()


def test_saved_folder_holds_the_record_and_loads_by_reference_alone(saved, monkeypatch):
    shipped = zoo.load("meliusnet22.mnist")
    record = json.loads((saved / "config.json").read_text())
    assert record["format"] == zw.RECORD_FORMAT and record["arch"] == "meliusnet22" and "tag" not in record
    assert record["mean"] == [0.1307] * 3 and record["crop_pct"] == 1.0 and record["labels"] == list("0123456789")
    assert record["metrics"][0]["source"].startswith("measured:")
    monkeypatch.chdir(saved.parent)
    x = torch.randn(2, 3, 32, 32)
    for reference in ("run7", "run7/", "run7/model.safetensors", str(saved)):
        model = zoo.load(reference)
        assert torch.equal(model(x), shipped(x)), reference
        assert zoo.transforms(model) == zoo.transforms(shipped)
        assert model.zoo_weights.labels == shipped.zoo_weights.labels
        assert zoo.load("meliusnet22", weights=reference).zoo_weights == model.zoo_weights
    assert zoo.resolve("run7").name == "run7" and zoo.resolve("meliusnet22.mnist").name == "meliusnet22_mnist"


@pytest.mark.parametrize("key, value, message", [
    ("meen", [0.5] * 3, "unknown key 'meen' (did you mean 'mean'?)"),
    ("mean", [0.5, 0.5], "mean takes 3 numbers (R, G, B), not [0.5, 0.5]"),
    ("std", [0.3, 0.0, 0.3], "std takes 3 positive numbers"),
    ("num_classes", "10", "num_classes takes a non-negative integer, not '10'"),
    ("input_size", "big", "input_size takes a positive integer, not 'big'"),
    ("crop_pct", 1.5, "crop_pct takes a number in (0, 1], not 1.5"),
    ("resize", "stretch", "resize takes one of 'shorter', 'squash', not 'stretch'"),
    ("interpolation", "lanczos", "interpolation takes one of 'bilinear', not 'lanczos'"),
    ("labels", "0123456789", "labels takes a list of strings"),
    ("metrics", [{"name": "top1"}], "metrics takes a list of {name, value, dataset, source} objects"),
    ("arch_overrides", {"growth_rate": 16, "colour": "red"}, "meliusnet22 takes no option 'colour'"),
    ("format", "bnnzoo-weights/0", "'format' is 'bnnzoo-weights/0', expected 'bnnzoo-weights/1'"),
])
def test_config_json_is_read_strictly_in_one_line_naming_the_key(saved, tmp_path, key, value, message):
    folder = tmp_path / "bad"
    shutil.copytree(saved, folder)
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, key: value}))
    with pytest.raises((ValueError, TypeError)) as e:
        zoo.load(str(folder))
    text = str(e.value)
    assert message in text and "\n" not in text
    assert key == "arch_overrides" or str(folder / "config.json") in text


def test_config_json_never_names_code_to_import(saved, tmp_path):
    """A record may name the class of a module of its author's; loading the folder imports nothing and
    says which FILE.py:CLASS to name. Only a FILE.py:CLASS named by the caller is imported."""
    folder = tmp_path / "theirs"
    shutil.copytree(saved, folder)
    record = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**record, "arch": "", "module_class": "Evil"}))
    marker = tmp_path / "imported"
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nimport torch\n"
                                    "class Evil(torch.nn.Module):\n    pass\n")
    with pytest.raises(zoo.WeightMismatchError, match=r"your class Evil: name it, zoo.load\('FILE.py:Evil'"):
        zoo.load(str(folder))
    with pytest.raises(zoo.WeightMismatchError, match="your class Evil"):
        zoo.load("meliusnet22", weights=str(folder))
    assert not marker.exists()
    with pytest.raises(zoo.WeightMismatchError, match="do not fit Evil"):  # named by the caller: imported
        zoo.load(f"{folder / 'evil.py'}:Evil", weights=str(folder))
    assert marker.exists()


def test_old_config_json_loads_with_one_warning_naming_what_was_assumed(saved, tmp_path, caplog):
    folder = tmp_path / "old"
    shutil.copytree(saved, folder)
    cfg = zoo.load(str(saved)).zoo_config
    (folder / "config.json").write_text(json.dumps(cfg.to_dict()))  # what bnnzoo wrote before records
    with caplog.at_level(logging.WARNING):
        model = zoo.load(str(folder))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "records no preprocessing" in warnings[0]
    assert "assumed 32x32, shorter side to 32/0.875 then centre crop, mean [0.485, 0.456, 0.406]" in warnings[0]
    assert zoo.transforms(model).mean == zw.IMAGENET_MEAN and model.zoo_weights.labels == ()


def test_weights_without_config_json(saved, tmp_path, caplog):
    bare = tmp_path / "bare.safetensors"
    shutil.copyfile(saved / "model.safetensors", bare)
    with pytest.raises(zoo.WeightMismatchError, match=r"nothing names its architecture: zoo.load\('NAME'"):
        zoo.load(str(bare))
    with caplog.at_level(logging.WARNING):
        model = zoo.load("meliusnet22", weights=str(bare), growth_rate=16, stem_features=32,
                         transition_features=(64, 96, 128), num_classes=10, input_size=32)
    assert "has no config.json beside it: assumed" in caplog.text and model.zoo_weights.mean == zw.IMAGENET_MEAN


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_num_classes_0_is_a_headless_model(name):
    cfg = zoo.get_config(name)
    model = zoo.load(name, **{**cfg.tiny, "num_classes": 0})
    size = model.zoo_config.input_size
    x = torch.randn(2, 3, size, size)
    features = model.forward_features(x)
    assert torch.equal(model(x), model.forward_head(features)) and model.zoo_config.num_classes == 0
    assert torch.equal(model(x), model.forward_head(features, pre_logits=True).flatten(1))
    model.reset_classifier(4)
    assert model(x).shape == (2, 4)


def test_headless_from_weights_keeps_every_other_weight(caplog):
    full = zoo.load("meliusnet22.mnist")
    headless = zoo.load("meliusnet22.mnist", num_classes=0)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(headless(x), full.forward_head(full.forward_features(x), pre_logits=True))
    assert headless.zoo_weights.num_classes == 0 and headless.zoo_weights.labels == ()
    assert "removed (num_classes=0" in caplog.text


def test_an_input_size_far_from_the_trained_one_warns(caplog):
    with caplog.at_level(logging.WARNING):
        zoo.load("meliusnet22.mnist", input_size=48)  # 1.5x: no warning
        assert "expect lower accuracy" not in caplog.text
        model = zoo.load("meliusnet22.mnist", input_size=7)
    assert "input size 7 is 4.6x below the 32x32 the weights meliusnet22.mnist were trained at" in caplog.text
    assert model.zoo_weights.input_size == 7 and model.zoo_weights.metrics == ()  # measured at 32, not at 7


def test_convert_takes_its_format_from_the_output_name(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["convert", "mobilenet_v1_025.mnist", "--to", "tflite", "-o", str(out)]) == 1
    err = error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "ends in .onnx but --to is tflite" in err[0] and not out.exists()
    assert main(["convert", "mobilenet_v1_025.mnist", "-o", str(tmp_path / "m.txt")]) == 1
    err = capsys.readouterr().err
    assert "give --to FORMAT (tflite, onnx), or -o a file ending in .tflite or .onnx, not .txt" in err
    assert main(["convert", "mobilenet_v1_025.mnist", "-o", str(out), "--no-verify"]) == 0
    printed = capsys.readouterr().out
    assert "format        onnx" in printed and "not verified" in printed
    assert "verification" not in printed and "layer-wise" not in printed and "agreement" not in printed
    import onnx

    onnx.checker.check_model(str(out))


def test_saving_a_module_of_your_own_needs_its_input_size(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 6))
    with pytest.raises(ValueError, match="carries no weights record: pass input_size="):
        zoo.save(net, tmp_path / "mine")
    zoo.save(net, tmp_path / "mine", input_size=16, mean=(0.5,) * 3, std=(0.5,) * 3, labels=tuple("abcdef"))
    record = zw.read_record(tmp_path / "mine" / "config.json")
    assert (record.arch, record.module_class, record.num_classes, record.input_size) == ("", "Sequential", 6, 16)
    assert zoo.transforms(record).mean == (0.5,) * 3


def test_tiny_models_save_and_load_through_the_registry(tmp_path):
    """A registered architecture's own options travel in the record (every builder argument is pinned)."""
    model = tiny("meliusnet22")
    zoo.save(model, tmp_path / "t", mean=(0.2,) * 3, std=(0.3,) * 3)
    back = zoo.load(str(tmp_path / "t"))
    assert back.zoo_config == model.zoo_config and back.zoo_weights.mean == (0.2,) * 3
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(back(x), model(x))


def test_every_command_splits_a_reference_into_an_architecture_and_its_weights(saved):
    """What bnnzoo eval takes: the architecture a reference builds and the weights that go with it."""
    from zoo.refs import split

    assert split("meliusnet22.mnist") == ("meliusnet22", "mnist") and split("mobilenet_v1") == ("mobilenet_v1", None)
    assert split(str(saved)) == ("meliusnet22", str(saved))
    with pytest.raises(ValueError, match="a class of yours, not a registered architecture"):
        split("my_models.py:MyBNN")


def test_deploy_needs_the_preprocessing_of_a_module_of_your_own(tmp_path):
    """Before anything is converted: a module with no record and no input size/mean/std is one line."""
    from converters.deploy import deploy

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with pytest.raises(ValueError, match="pass input_size=.*a deploy bundle needs the preprocessing"):
        deploy(net, tmp_path / "bundle")
    headless = zoo.load("meliusnet22.mnist", num_classes=0)
    with pytest.raises(ValueError, match="headless"):
        deploy(headless, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
