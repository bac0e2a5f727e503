import subprocess
import sys

import pytest

import zoo
from zoo.registry import ModelConfig, register_model


def test_import_zoo_pulls_no_framework():
    code = "import sys, zoo; zoo.list_models(); zoo.get_config('mobilenet_v1'); " \
           "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_models_pattern():
    names = zoo.list_models()
    assert names == sorted(names) and "mobilenet_v1" in names
    assert zoo.list_models("mobilenet_v1_0*") == ["mobilenet_v1_025", "mobilenet_v1_050", "mobilenet_v1_075"]


def test_unknown_name_suggests_close_match():
    with pytest.raises(zoo.UnknownModelError, match="did you mean mobilenet_v1"):
        zoo.get_config("mobilenet_v")


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="already registered"):
        @register_model
        def mobilenet_v1() -> ModelConfig:  # noqa: F811
            return ModelConfig("", "mobilenet")


def test_unknown_option_suggests_close_one():
    with pytest.raises(TypeError, match="did you mean 'alpha'"):
        zoo.get_config("mobilenet_v1").replace(alpah=0.5)


def test_unknown_framework():
    with pytest.raises(ValueError, match="expected one of torch, keras"):
        zoo.load("mobilenet_v1", framework="jax", **zoo.get_config("mobilenet_v1").tiny)


def test_config_round_trips_through_json_dict():
    cfg = zoo.get_config("mobilenet_v1").replace(alpha=0.5, num_classes=7)
    d = cfg.to_dict()
    assert d["arch"]["alpha"] == 0.5 and d["num_classes"] == 7 and d["family"] == "mobilenet"
