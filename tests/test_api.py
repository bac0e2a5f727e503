"""The timm/torchvision-style API: list_models/list_weights, default weights, weights metadata on
models, transforms, fine-tuning loads, forward_features/reset_classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo import weights as zw

ARCHS_WITH_WEIGHTS = sorted({w.arch for w in zw.WEIGHTS.values()})
# Binary AlexNet's classifier is a binary 1x1 convolution (larq-zoo's layout), not a Linear to replace.
CLASSIFIERS = [n for n in zoo.list_models(include_stages=True)
               if zoo.get_config(n).family not in ("detector", "binary_alexnet")]


def _image(w: int = 50, h: int = 40):
    from PIL import Image

    return Image.fromarray((np.random.default_rng(0).random((h, w, 3)) * 255).astype(np.uint8))


@pytest.mark.parametrize("arch", ARCHS_WITH_WEIGHTS)
def test_every_architecture_with_weights_has_one_explicit_default(arch):
    defaults = [w for w in zw.WEIGHTS.values() if w.arch == arch and w.default]
    assert len(defaults) == 1, f"{arch}: {len(defaults)} weights marked default"
    assert zoo.list_weights(arch)[0] == defaults[0]
    assert zw.lookup(zoo.get_config(arch), "default")[1] == defaults[0]


def test_list_models_pretrained_and_stages():
    everything = zoo.list_models(include_stages=True)
    shown = zoo.list_models()
    hidden = sorted(set(everything) - set(shown))
    assert hidden and all(zoo.is_training_stage(n) for n in hidden)
    assert all(not zoo.is_training_stage(n) for n in shown)
    assert zoo.list_models(pretrained=True) == [n for n in shown if zoo.list_weights(n)] == [
        n for n in shown if n in ARCHS_WITH_WEIGHTS]
    assert zoo.list_weights("mobilenet_v1") == []


def test_load_pretrained_is_the_default_tag_and_carries_its_metadata():
    model = zoo.load("meliusnet22", pretrained=True)
    w = model.zoo_weights
    assert w.default and w.key == f"meliusnet22.{zw.default_tag('meliusnet22')}"
    assert model.zoo_config.num_classes == w.num_classes and model.zoo_config.input_size == w.input_size
    assert all(m.source.startswith(("measured:", "published:")) for m in w.metrics)
    same = zoo.load(w.key)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    assert zoo.load("meliusnet22").zoo_weights is None


def test_transforms_follow_the_weights():
    model = zoo.load("meliusnet22.mnist")
    pre = zoo.transforms(model)
    w = zw.WEIGHTS["meliusnet22.mnist"]
    assert pre == zoo.transforms("meliusnet22.mnist") == zoo.transforms(w)
    assert (pre.input_size, pre.mean, pre.std) == (w.input_size, w.mean, w.std)
    x = pre(_image())
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    # the whole (uniform) image at the weights' mean maps to 0
    from PIL import Image

    grey = Image.new("RGB", (64, 48), tuple(int(round(m * 255)) for m in w.mean))
    assert float(pre(grey).abs().max()) < 0.02
    imagenet = zoo.transforms("meliusnet22.larq_in1k")
    assert imagenet.mean != pre.mean and imagenet.to_dict()["resize"] == 256
    assert zoo.transforms("plates_detector_1bit").resize == "squash"
    with pytest.raises(zoo.WeightMismatchError, match="no weights 'nope'"):
        zoo.transforms("meliusnet22.nope")


def test_fine_tune_load_keeps_all_but_the_classifier(capfd):
    full = zoo.load("meliusnet22.mnist")
    five = zoo.load("meliusnet22.mnist", num_classes=5)
    assert "re-initialised for num_classes=5" in capfd.readouterr().err
    assert five.zoo_config.num_classes == 5 and five.classifier.out_features == 5
    a, b = full.state_dict(), five.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b if not k.startswith("classifier."))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(full.forward_features(x), five.forward_features(x))
    assert five(x).shape == (2, 5)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_forward_features_and_reset_classifier(name):
    cfg = zoo.get_config(name)
    model = zoo.load(name, **cfg.tiny)
    x = torch.randn(2, 3, model.zoo_config.input_size, model.zoo_config.input_size)
    features = model.forward_features(x)
    assert features.dim() == 4
    assert torch.equal(model(x), model.forward_head(features))
    assert model.forward_head(features, pre_logits=True).shape == (2, model.get_classifier().in_features)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.zoo_config.num_classes == 3


def test_transforms_agree_with_the_device_runner_and_the_readers(tmp_path):
    """zoo.transforms, the deploy bundle's run.py, the detector's reader and the ImageNet-folder reader
    compute the same input from the same file."""
    import importlib.util

    from recipes.data import ImageFolder
    from recipes.plates.dataset import load_rgb, to_model_input

    spec = importlib.util.spec_from_file_location("bundle_run", zoo.__file__.replace("zoo/__init__.py",
                                                                                     "converters/rpi/run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    path = tmp_path / "img.png"
    _image(300, 200).save(path)
    from PIL import Image

    for key in ("meliusnet22.mnist", "meliusnet22.larq_in1k"):
        pre = zoo.transforms(key)
        ours = pre.array(Image.open(path))
        assert np.allclose(run.load_image(path, pre.to_dict()), ours, atol=1e-6), key
    detector = zoo.transforms("plates_detector_1bit")
    image, _ = load_rgb(path, detector.input_size)
    assert np.allclose(to_model_input(image), detector(Image.open(path)).numpy(), atol=1e-6)
    (tmp_path / "val" / "a").mkdir(parents=True)
    _image(300, 200).save(tmp_path / "val" / "a" / "x.png")
    x, _ = ImageFolder(tmp_path, "val", 224)[0]
    assert torch.allclose(x, zoo.transforms("meliusnet22.larq_in1k")(Image.open(path)), atol=1e-5)
