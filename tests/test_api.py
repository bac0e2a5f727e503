"""The timm/torchvision-style API: list_models/list_weights, default weights, weights metadata on
models, transforms, fine-tuning loads, forward_features/reset_classifier."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import zoo
from zoo import weights as zw

ARCHS_WITH_WEIGHTS = sorted({w.arch for w in zw.WEIGHTS.values()})
CLASSIFIERS = [n for n in zoo.list_models(include_stages=True) if zoo.get_config(n).family != "detector"]


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


def test_fine_tune_load_keeps_all_but_the_classifier(caplog):
    full = zoo.load("meliusnet22.mnist")
    five = zoo.load("meliusnet22.mnist", num_classes=5)
    assert "re-initialised for num_classes=5" in caplog.text
    assert five.zoo_config.num_classes == 5 and five.classifier.out_features == 5
    # The record follows the model: the new classifier has no names and the measured figures no longer hold.
    assert five.zoo_weights.num_classes == 5 and five.zoo_weights.labels == () and five.zoo_weights.metrics == ()
    assert zoo.transforms(five) == zoo.transforms(full)
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
    pre = model.forward_head(features, pre_logits=True)
    assert pre.shape[:2] == (2, getattr(model.get_classifier(), "in_features", pre.shape[1]))
    assert torch.allclose(model.get_classifier()(pre).flatten(1), model(x), atol=1e-5)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.zoo_config.num_classes == 3


def _awkward_images(folder):
    """Files that take every branch of the decoding: RGB, alpha, 16-bit, palette with transparency,
    an EXIF-rotated JPEG, CMYK, greyscale, a non-square portrait, a JPEG large enough to decode reduced."""
    from PIL import Image

    folder.mkdir(parents=True)
    rgb = _image(300, 200)
    rgb.save(folder / "rgb.png")
    alpha = np.dstack([np.asarray(rgb), np.tile(np.linspace(0, 255, 300, dtype=np.uint8), (200, 1))])
    Image.fromarray(alpha, "RGBA").save(folder / "alpha.png")
    Image.fromarray(np.linspace(0, 65535, 120 * 90).reshape(90, 120).astype(np.uint16)).save(folder / "g16.png")
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 3
    palette.save(folder / "palette.png", transparency=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to be upright
    _image(160, 90).save(folder / "rotated.jpg", exif=exif.tobytes(), quality=95)
    rgb.convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    rgb.convert("L").save(folder / "grey.png")
    _image(70, 130).save(folder / "portrait.png")
    _image(900, 700).resize((1800, 1400)).save(folder / "large.jpg", quality=90)  # decoded reduced (jpeg_draft)
    return sorted(folder.iterdir())


# One set of weights per distinct preprocessing in the registry (classifiers and detectors).
_PREPROCESSING = {}
for _w in zw.WEIGHTS.values():
    _PREPROCESSING.setdefault(zoo.transforms(_w), _w.key)


@pytest.mark.parametrize("key", sorted(_PREPROCESSING.values()))
def test_eval_detect_and_the_deploy_bundle_preprocess_alike(key, tmp_path):
    """bnnzoo eval's image-folder reader, bnnzoo detect's model input and the deploy bundle's run.py
    (given the preprocess.json deploy writes) compute the same tensor from the same file and weights."""
    import importlib.util
    import types

    from converters.deploy import bundle_preprocess
    from converters.detect import model_input
    from eval.harness import EvalImages

    spec = importlib.util.spec_from_file_location("bundle_run", zoo.__file__.replace("zoo/__init__.py",
                                                                                     "converters/rpi/run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    w = zw.WEIGHTS[key]
    # What zoo.load(key) returns, as far as preprocessing goes (no download of full-size weights here).
    model = types.SimpleNamespace(zoo_config=zoo.get_config(w.arch).replace(input_size=w.input_size), zoo_weights=w)
    files = _awkward_images(tmp_path / "val" / "any")
    x, _, _, description = EvalImages(str(tmp_path), 0).get(model)
    assert x.shape == (len(files), 3, w.input_size, w.input_size) and "zoo.transforms" in description
    pre = bundle_preprocess(model, w.input_size)
    for row, path in zip(x, files):
        detected, size = model_input(path, model)
        bundled = run.load_image(path, pre).transpose(2, 0, 1)
        np.testing.assert_allclose(detected, row.numpy(), atol=1e-6, err_msg=f"{key} {path.name}: detect vs eval")
        np.testing.assert_allclose(bundled, detected, atol=1e-6, err_msg=f"{key} {path.name}: run.py vs detect")
    assert model_input(tmp_path / "val" / "any" / "rotated.jpg", model)[1] == (90, 160)  # upright


def test_transforms_agree_with_the_training_readers(tmp_path):
    """The training readers (recipes.data's ImageNet folder, the plate detectors' reader) compute the
    input zoo.transforms computes, on the RGB files they were trained on."""
    import dataclasses

    from PIL import Image

    from recipes.data import ImageFolder
    from recipes.plates.dataset import load_rgb, to_model_input

    path = tmp_path / "img.png"
    _image(300, 200).save(path)
    detector = zoo.transforms("plates_detector_1bit")
    for name, (w, h) in (("img.png", (300, 200)), ("large.jpg", (1800, 1400))):  # a JPEG decoded reduced
        _image(w, h).save(tmp_path / name)
        image, size = load_rgb(tmp_path / name, detector.input_size)
        x, read_size = detector.read(tmp_path / name)
        assert size == read_size == (w, h)
        np.testing.assert_allclose(to_model_input(image), x.transpose(2, 0, 1), atol=1e-6, err_msg=name)
    # A detector from a training run's model.safetensors (no registered weights) is read as it was trained.
    trained_here = zoo.transforms(zoo.load("plates_detector_1bit", **zoo.get_config("plates_detector_1bit").tiny))
    assert trained_here == dataclasses.replace(detector, input_size=trained_here.input_size)
    (tmp_path / "val" / "a").mkdir(parents=True)
    _image(300, 200).save(tmp_path / "val" / "a" / "x.png")
    x, _ = ImageFolder(tmp_path, "val", 224)[0]
    assert torch.allclose(x, zoo.transforms("meliusnet22.larq_in1k")(Image.open(path)), atol=1e-5)


def test_unreadable_image_is_one_line(tmp_path):
    from zoo.transforms import UnreadableImageError, open_image

    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    for bad in ("broken.jpg", "missing.png"):
        with pytest.raises(UnreadableImageError, match="cannot read") as info:
            open_image(tmp_path / bad)
        assert "\n" not in str(info.value)
