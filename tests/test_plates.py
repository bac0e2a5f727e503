"""The synthetic plate data set: deterministic, resumable, labelled inside the image; and its reader."""

import hashlib
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from recipes.plates import dataset as ds
from recipes.plates import generate as gen

COUNTS = {"train": 6, "val": 2}


def _digest(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            if f != "manifest.json":
                p = os.path.join(dirpath, f)
                out[os.path.relpath(p, root)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("plates") / "a"
    manifest = gen.generate(root, COUNTS, seed=3, size=(96, 64))
    return root, manifest


def test_same_seed_gives_identical_bytes_whatever_the_workers(made, tmp_path):
    root, _ = made
    again = tmp_path / "b"
    gen.generate(again, COUNTS, seed=3, size=(96, 64), workers=2)
    assert _digest(root) == _digest(again) and len(_digest(root)) == 2 * sum(COUNTS.values())
    other = tmp_path / "c"
    gen.generate(other, {"train": 2}, seed=4, size=(96, 64))
    assert _digest(other)["images/train/000000.jpg"] != _digest(root)["images/train/000000.jpg"]


def test_labels_are_inside_the_image_and_fit_the_plates(made):
    root, _ = made
    n = 0
    for split, count in COUNTS.items():
        for i in range(count):
            img = Image.open(root / "images" / split / f"{i:06d}.jpg")
            assert img.size == (96, 64) and img.mode == "RGB"
            for line in (root / "labels" / split / f"{i:06d}.txt").read_text().splitlines():
                c, cx, cy, w, h = map(float, line.split())
                assert c == 0 and w > 0 and h > 0
                assert 0 <= cx - w / 2 and cx + w / 2 <= 1 and 0 <= cy - h / 2 and cy + h / 2 <= 1
                n += 1
    assert n > 0
    # Many samples: plates exist in most images, sometimes several, and span the formats.
    cfg = gen.GenConfig(font=gen.find_font())
    counts = [len(gen.render_sample(cfg, "train", i)[1]) for i in range(40)]
    assert max(counts) >= 2 and sum(c > 0 for c in counts) >= 30


def test_manifest(made):
    root, returned = made
    m = json.loads((root / "manifest.json").read_text())
    assert m["complete"] and m["format_version"] == gen.FORMAT_VERSION and m["seed"] == 3
    assert m["image_size"] == [96, 64] and m["classes"] == ["plate"]
    assert m["font"]["file"].startswith("NanumGothic") and len(m["font"]["sha256"]) == 64
    plates = sum(len((root / "labels" / "train" / f"{i:06d}.txt").read_text().splitlines()) for i in range(6))
    assert m["splits"]["train"] == {"images": 6, "plates": plates} and m["splits"]["val"]["images"] == 2


def test_resumes_after_a_kill_and_refuses_other_options(made, tmp_path):
    root, _ = made
    work = tmp_path / "r"
    gen.generate(work, {"train": 6}, seed=3, size=(96, 64))
    before = _digest(work)
    # A kill mid-way: labels of the last images never written, one image half-written, a temp file left.
    for i in (3, 4, 5):
        (work / "labels" / "train" / f"{i:06d}.txt").unlink()
    (work / "images" / "train" / "000004.jpg").write_bytes(b"\xff\xd8 half")
    (work / "images" / "train" / ".000005.jpg.1.tmp").write_bytes(b"junk")
    m = gen.generate(work, {"train": 6}, seed=3, size=(96, 64))
    assert m["_written"] == 3
    assert _digest(work) == before  # same bytes, and the temp file is gone
    with pytest.raises(ValueError, match="another seed"):
        gen.generate(work, {"train": 6}, seed=4, size=(96, 64))


def test_plate_text_uses_the_official_formats():
    rng = np.random.default_rng(0)
    for _ in range(200):
        front, back = gen.plate_text(rng)
        assert len(front) in (3, 4) and front[:-1].isdigit() and front[-1] in gen.HANGUL
        assert len(back) == 4 and back.isdigit()


def test_bad_options_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass the path"):
        gen.find_font(str(tmp_path / "none.ttf"))
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        gen.parse_size("160")
    with pytest.raises(ValueError, match="use 'jpg' or 'png'"):
        gen.generate(tmp_path, {"train": 1}, image_format="gif")


# --- the reader ---------------------------------------------------------------------------


def test_dataset_reads_the_generated_split(made):
    root, _ = made
    data = ds.PlatesDataset(root, "train", input_size=32)
    x, boxes = data[0]
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert boxes.ndim == 2 and boxes.shape[1] == 5
    assert not data.warnings


def test_dataset_survives_bad_input(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    img_dir, lab_dir = tmp_path / "images" / "train", tmp_path / "labels" / "train"
    Image.new("L", (50, 40), 128).save(img_dir / "gray.png")
    Image.new("RGBA", (40, 40), (255, 0, 0, 128)).save(img_dir / "rgba.png")
    Image.new("RGB", (3000, 2000), (0, 0, 255)).save(img_dir / "huge.jpg")
    (img_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    Image.new("P", (20, 20)).save(img_dir / "palette.png")
    (lab_dir / "gray.txt").write_text("0 0.95 0.5 0.3 0.2\n0 1.5 0.5 0.2 0.2\nnot a box\n0 0.5 0.5 0.2 0.1\n")
    (lab_dir / "rgba.txt").write_text("")
    (lab_dir / "huge.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    data = ds.PlatesDataset(tmp_path, "train", input_size=32)
    loader = torch.utils.data.DataLoader(data, batch_size=5, collate_fn=ds.collate)
    with pytest.warns(UserWarning):
        images, boxes = next(iter(loader))
    assert images.shape == (4, 3, 32, 32) and len(boxes) == 4  # the broken one is dropped
    by_name = {p.stem: i for i, p in enumerate(data.images)}
    gray = data[by_name["gray"]][1]
    assert gray.shape == (2, 5) and (gray[:, 1:] >= 0).all()  # clipped, out-of-image and malformed dropped
    x0, x1 = gray[0, 1] - gray[0, 3] / 2, gray[0, 1] + gray[0, 3] / 2
    assert abs(float(x1) - 1.0) < 1e-6 and abs(float(x0) - 0.8) < 1e-6
    for kind in ("unreadable_image", "box_clipped", "box_dropped", "malformed_label", "missing_label"):
        assert data.warnings[kind] >= 1, kind
    assert ds.collate([None, None])[0].shape[0] == 0


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="bnnzoo data plates"):
        ds.PlatesDataset(tmp_path, "train")
    (tmp_path / "images" / "train").mkdir(parents=True)
    with pytest.raises(ds.DataError, match="holds no image"):
        ds.PlatesDataset(tmp_path, "train")


def test_command_line(tmp_path, monkeypatch, capsys):
    from bnnzoo.cli import main

    out = tmp_path / "cli"
    assert main(["data", "plates", "-o", str(out), "--train", "2", "--val", "1", "--seed", "5",
                     "--size", "64x48", "--workers", "1"]) == 0
    assert "3 images" in capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    assert m["seed"] == 5 and m["image_size"] == [64, 48] and m["splits"]["val"]["images"] == 1
    assert main(["data", "plates", "-o", str(out), "--train", "2", "--size", "64x"]) == 1
    assert "WIDTHxHEIGHT" in capsys.readouterr().err
