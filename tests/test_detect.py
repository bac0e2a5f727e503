"""Plate detection end to end: the shared preprocessing, box-level export verification and
``bnnzoo detect`` in every runtime."""

from __future__ import annotations

import copy
import os
import types

import numpy as np
import pytest
import torch
from PIL import Image

import converters
import converters.onnx
import converters.tflite
import zoo
from converters import ConversionError, verify
from recipes.plates import dataset as ds
from zoo import detection as det

from helpers import randomize, tiny

DETECTORS = tuple(n for n in zoo.list_models() if zoo.get_config(n).family == "detector")


# --- the one preprocessing --------------------------------------------------------------------


def test_reader_and_detect_share_the_preprocessing(tmp_path):
    from recipes.plates.generate import generate

    generate(tmp_path, {"val": 2}, seed=1, size=(96, 64))
    data = ds.PlatesDataset(tmp_path, "val", input_size=32)
    for i, path in enumerate(data.images):
        image, size = ds.load_rgb(path, 32)
        assert size == (96, 64) and image.shape == (32, 32, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(data[i][0].numpy(), ds.to_model_input(image))


def test_load_rgb_handles_awkward_images(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")  # Pillow's own convert("RGB") would clip it white
    image, size = ds.load_rgb(tmp_path / "g16.png", 32)
    assert size == (64, 48) and image.min() < 10 and image.max() > 245 and 100 < image.mean() < 155
    Image.new("RGBA", (40, 30), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert ds.load_rgb(tmp_path / "clear.png", 16)[0].max() == 0  # transparent -> black, as in training
    Image.new("L", (20, 10), 200).save(tmp_path / "gray.png")
    assert (ds.load_rgb(tmp_path / "gray.png", 16)[0] == 200).all()
    Image.new("RGB", (4000, 3000), (0, 0, 255)).save(tmp_path / "huge.jpg")
    image, size = ds.load_rgb(tmp_path / "huge.jpg", 32)
    assert size == (4000, 3000) and image.shape == (32, 32, 3) and image[..., 2].min() > 240
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    for bad in ("broken.jpg", "missing.png"):
        with pytest.raises(ds.UnreadableImageError, match="cannot read") as info:
            ds.load_rgb(tmp_path / bad, 32)
        assert "\n" not in str(info.value)


# --- box-level export verification ------------------------------------------------------------


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_exports_decode_to_the_same_boxes(name, tmp_path):
    model = randomize(tiny(name))
    binary = zoo.measure(model).binary_convs > 0
    for report in (converters.to_onnx(model, tmp_path / "m.onnx", bitpack=True),
                   converters.to_tflite(model, tmp_path / "m.tflite")):
        assert report.box_agreement >= (0.75 if binary else 1.0), report.summary()
        assert report.verify_data.startswith("plate images") and "boxes" in report.summary()
    classifier = tiny("mobilenet_v1_025")
    assert not verify.is_detector(classifier) and verify.verification_batch(classifier, 32)[1] == "standard normal"


def test_detectors_are_verified_on_the_shipped_plate_images():
    """The plate images every detector export is checked on ship with the zoo (no font, no generator needed),
    in the training reader's preprocessing, at any input size."""
    images = det.sample_plates(48, verify.VERIFY_BATCH)
    assert images.shape == (verify.VERIFY_BATCH, 48, 48, 3) and images.dtype == np.uint8
    assert len({img.tobytes() for img in images}) == len(images)  # eight different images
    batch, data = verify.verification_batch(tiny(DETECTORS[0]), 48)
    np.testing.assert_allclose(batch, ds.to_model_input(images), atol=1e-6)
    assert data.startswith("plate images")
    with pytest.raises(ValueError, match="holds 8 images"):
        det.sample_plates(48, 9)


def _wrong_head(model):
    """A copy whose head shrinks every box by e in both sides (IoU 1/e^2 with the right one)."""
    wrong = copy.deepcopy(model)
    with torch.no_grad():
        wrong.head.bias[3::5] -= 1.0
        wrong.head.bias[4::5] -= 1.0
    return wrong


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_export_with_other_boxes_is_refused_and_writes_nothing(fmt, tmp_path, monkeypatch):
    model = randomize(tiny("plates_detector_1bit"))
    batch, _ = verify.verification_batch(model, 32)
    reference = verify.reference_outputs(model, batch)
    shifted = verify.reference_outputs(_wrong_head(model), batch)
    diff, agreement = verify.compare(reference, shifted)
    verify.check_tolerance(fmt, True, diff, agreement, reference)  # the logit rule alone lets it through
    if fmt == "onnx":
        real = converters.onnx.export_proto
        monkeypatch.setattr(converters.onnx, "export_proto",
                            lambda m, size, opset=18: real(_wrong_head(m), size, opset))
    else:
        real = converters.tflite.keras_twin
        monkeypatch.setattr(converters.tflite, "keras_twin", lambda m, size: real(_wrong_head(m), size))
    # The layer-wise check sees the wrong head first: the float ops after the last binary conv.
    with pytest.raises(ConversionError, match=r"first divergent layer outputs \(float ops after layers\.5\.conv\)"
                       ) as info:
        converters.convert(model, tmp_path / f"m.{fmt}", fmt)
    assert "\n" not in str(info.value) and os.listdir(tmp_path) == []


def test_score_cuts_compare_boxes_even_when_nothing_reaches_the_threshold():
    cfg = zoo.get_config("plates_detector_1bit").replace(input_size=32)  # 2x2 grid, 3 anchors
    rng = np.random.default_rng(0)
    raw = rng.normal(0, 0.3, (1, cfg.num_classes))
    raw[0, 0::5] = rng.uniform(-8, -4, 12)  # an untrained-looking head: every score far below 0.25
    assert len(det.decode(raw, cfg)[0]) == 0
    cuts = verify.score_cuts(raw[0, 0::5])
    assert len(cuts) == 2 and len(det.decode(raw, cfg, cuts[1])[0]) >= 1
    best = int(np.argmax(raw[0, 0::5]))
    moved = raw.copy()
    moved[0, best * 5 + 3:best * 5 + 5] -= 1.0  # only the best box shrinks: invisible at 0.25, caught at the rank cut
    model = types.SimpleNamespace(zoo_config=cfg)
    assert verify.box_agreement(model, raw, raw) == 1.0
    assert verify.box_agreement(model, raw, moved) == 0.0


# --- bnnzoo detect ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detect_files(tmp_path_factory):
    from recipes.plates.generate import generate
    from zoo.weights import save

    root = tmp_path_factory.mktemp("detect")
    generate(root / "data", {"val": 2}, seed=2, size=(96, 64))
    model = randomize(tiny("plates_detector_1bit"))
    (root / "run").mkdir()
    weights = save(model.state_dict(), root / "run" / "model.safetensors", model.zoo_config)
    images = sorted(str(p) for p in (root / "data" / "images" / "val").iterdir())
    Image.fromarray(np.linspace(0, 65535, 80 * 60).reshape(60, 80).astype(np.uint16)).save(root / "g16.png")
    Image.new("RGBA", (50, 30), (0, 200, 0, 128)).save(root / "rgba.png")
    Image.new("RGB", (4800, 3600), (90, 90, 90)).save(root / "huge.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff nope")
    extra = [str(root / n) for n in ("g16.png", "broken.jpg", "rgba.png", "huge.jpg")]
    return root, str(weights), model, images + extra


def _boxes(out: str) -> dict[str, np.ndarray]:
    found: dict[str, list] = {}
    for line in out.splitlines():
        if line and not line.startswith("#"):
            path, *numbers = line.split()
            found.setdefault(path, []).append([float(v) for v in numbers])
    return {k: np.asarray(v) for k, v in found.items()}


def _detect(argv, capsys):
    from bnnzoo.cli import main

    rc = main(["detect", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_detect_writes_every_readable_image_and_reports_the_bad_one(detect_files, tmp_path, capsys):
    root, weights, model, images = detect_files
    out = tmp_path / "out"
    rc, printed, err = _detect(["plates_detector_1bit", *images, "--weights", weights, "-o", str(out)],
                               capsys)
    assert rc == 1 and "skipped: cannot read" in err and "broken.jpg" in err
    assert sorted(os.listdir(out)) == ["000000.png", "000001.png", "g16.png", "huge.png", "rgba.png"]
    assert max(Image.open(out / "huge.png").size) == 4096  # drawn downscaled, boxes printed in the image's pixels
    boxes = _boxes(printed)
    # The printed boxes are the model's decoded boxes on the shared preprocessing, in the image's pixels.
    image, (w, h) = ds.load_rgb(images[0], 32)
    (expected,) = det.decode(model(torch.from_numpy(ds.to_model_input(image[None]))), model.zoo_config)
    got = boxes[images[0]]
    assert len(got) == len(expected) > 0 and (w, h) == (96, 64)
    np.testing.assert_allclose(got[:, 0], expected.scores, atol=1e-3)
    np.testing.assert_allclose(got[:, 1:], expected.boxes * [w, h, w, h], atol=0.06)
    huge = boxes[str(root / "huge.jpg")][:, 1:]
    assert huge.min() >= 0 and huge[:, [0, 2]].max() <= 4800 and huge[:, [1, 3]].max() <= 3600


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_exported_runtimes_give_the_boxes_of_pytorch(runtime, detect_files, tmp_path, capsys, monkeypatch):
    root, weights, _, images = detect_files
    monkeypatch.setenv("BNNZOO_CACHE", str(tmp_path / "cache"))
    args = ["plates_detector_1bit", *images[:2], "--weights", weights]
    rc, torch_out, _ = _detect([*args, "-o", str(tmp_path / "torch")], capsys)
    assert rc == 0
    rc, printed, err = _detect([*args, "--runtime", runtime, "-o", str(tmp_path / runtime)], capsys)
    assert rc == 0 and f"converting plates_detector_1bit to {runtime}" in err
    expected, got = _boxes(torch_out), _boxes(printed)
    assert expected.keys() == got.keys()
    for path in expected:
        np.testing.assert_allclose(got[path], expected[path], atol=0.15)
    cached = [p for p in (tmp_path / "cache" / "exports").iterdir() if not p.name.endswith(".sha256.json")]
    assert len(cached) == 1 and cached[0].suffix == f".{runtime}"
    rc, again, err = _detect([*args, "--runtime", runtime, "-o", str(tmp_path / "again")], capsys)
    assert rc == 0 and "converting" not in err and again == printed  # the cached export is reused
    rc, given, _ = _detect([*args, "--exported", str(cached[0]), "-o", str(tmp_path / "given")], capsys)
    assert rc == 0 and given == printed


@pytest.mark.parametrize("argv, message", [
    (["meliusnet22"], "not a detector"),
    (["plates_detector_1bit", "-o", "{tmp}/x.jpg"], "give a .png file name"),
    (["plates_detector_1bit", "--runtime", "onnx", "--exported", "{tmp}/m.tflite"], "runs .onnx files"),
    (["plates_detector_1bit", "--score-threshold", "2"], "in [0, 1]"),
    (["--model", "plates_detector_1bit", "--score-threshold", "2"], "in [0, 1]"),   # the old spelling still works
])
def test_detect_errors_are_one_line(argv, message, detect_files, tmp_path, capsys):
    _, _, _, images = detect_files
    (tmp_path / "m.tflite").write_bytes(b"not a flatbuffer")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "x.png")]
    argv = [*argv[:2], images[0], *argv[2:]] if argv[0] == "--model" else [argv[0], images[0], *argv[1:]]
    rc, _, err = _detect(argv, capsys)
    assert rc == 1 and message in err and err.strip().count("\n") <= 1, err


def test_detect_refuses_an_export_of_another_shape(detect_files, tmp_path, capsys):
    _, weights, _, images = detect_files
    onnx_file = tmp_path / "float.onnx"
    converters.to_onnx(randomize(tiny("plates_detector_float", input_size=64)), onnx_file)
    rc, _, err = _detect(["plates_detector_1bit", images[0], "--weights", weights, "--exported",
                          str(onnx_file), "-o", str(tmp_path / "x.png")], capsys)
    assert rc == 1 and "takes 64x64 images" in err and "pass the model NAME and --weights it was exported from" in err
    assert not (tmp_path / "x.png").exists()


# --- the export cache checks what it holds ------------------------------------------------------


def test_corrupt_cached_export_is_rebuilt(detect_files, tmp_path, caplog):
    """A cached export that no longer matches the size and sha256 recorded when it was written
    (here: truncated, then replaced by other bytes of the same size) is converted again, not run (and says so
    in its log, which bnnzoo detect prints)."""
    import logging

    caplog.set_level(logging.INFO, logger="converters")
    from converters.detect import export_cached, predictor
    from zoo.fileio import sha256_of

    _, _, model, images = detect_files
    cache = tmp_path / "cache"
    path = export_cached(model, "onnx", cache)
    record = path.with_name(path.name + ".sha256.json")
    good = sha256_of(path)
    assert record.is_file() and good in record.read_text()
    x = ds.to_model_input(ds.load_rgb(images[0], model.zoo_config.input_size)[0][None])
    expected = predictor(model, "onnx", cache=cache)(x)
    caplog.clear()
    path.write_bytes(path.read_bytes()[:100])  # truncated: onnxruntime would fail on it with a traceback
    assert export_cached(model, "onnx", cache) == path
    assert "does not match its recorded size and sha256: rebuilding" in caplog.text
    assert sha256_of(path) == good
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    np.testing.assert_allclose(predictor(model, "onnx", cache=cache)(x), expected, atol=1e-5)
    assert sha256_of(path) == good
    record.unlink()  # an export without its record (a kill between the two writes) is not trusted either
    caplog.clear()
    export_cached(model, "onnx", cache)
    assert "rebuilding" in caplog.text and record.is_file()


@pytest.mark.parametrize("runtime", ["onnx", "tflite"])
def test_exported_file_of_no_export_format_says_so(runtime, detect_files, tmp_path, capsys):
    _, weights, _, images = detect_files
    jpg = tmp_path / "model.jpg"
    jpg.write_bytes(b"\xff\xd8 a picture")
    rc, _, err = _detect([images[0], "--model", "plates_detector_1bit", "--weights", weights, "--runtime", runtime,
                          "--exported", str(jpg), "-o", str(tmp_path / "x.png")], capsys)
    assert rc == 1 and "--exported takes an .onnx or .tflite export" in err and "pass --runtime" not in err, err
