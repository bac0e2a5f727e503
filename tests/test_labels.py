"""Class names: ImageNet-1k's data file against its source, every larq_in1k tag's labels, and ``zoo.decode``."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import zoo
from zoo import weights as zw
from zoo.labels import IMAGENET_LABELS_FILE, imagenet_labels, imagenet_wordnet_ids

IN1K = sorted(k for k, w in zw.WEIGHTS.items() if w.tag == "larq_in1k")


def _tfds_file(relative: str) -> Path:
    """A file of the installed tensorflow-datasets (found without importing it: that takes seconds)."""
    spec = importlib.util.find_spec("tensorflow_datasets")
    assert spec is not None, "tensorflow-datasets (installed with larq-zoo, [dev]) is the labels' cited source"
    return Path(spec.submodule_search_locations[0]) / relative


def test_imagenet_labels_are_the_cited_source_in_its_order():
    # The list literal, read as data (ast.literal_eval), not by importing the module.
    tree = ast.parse(_tfds_file("datasets/siscore/labels.py").read_text())
    names = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                 and getattr(node.targets[0], "id", None) == "IMAGENET_LABELS_LIST")
    assert names == list(imagenet_labels())
    wordnet = _tfds_file("datasets/imagenet2012/labels.txt").read_text().split()
    assert wordnet == list(imagenet_wordnet_ids())
    assert len(set(imagenet_labels())) == 1000 and imagenet_labels()[281] == "tabby, tabby cat"
    assert "tensorflow-datasets 4.8.3" in IMAGENET_LABELS_FILE.read_text().splitlines()[1]


@pytest.mark.parametrize("key", IN1K)
def test_every_larq_in1k_tag_has_the_1000_imagenet_labels(key):
    w = zw.WEIGHTS[key]
    assert w.num_classes == 1000 and w.labels == imagenet_labels() and w.dataset == "imagenet-1k"


def test_there_is_a_larq_in1k_tag_per_larq_zoo_release():
    assert len(IN1K) == 14


def test_decode_gives_labels_in_logit_order():
    labels = imagenet_labels()
    logits = torch.from_numpy(np.random.default_rng(0).permutation(1000).astype(np.float32) / 100)
    top = zoo.decode(logits, zw.WEIGHTS["quicknet.larq_in1k"], top=5)
    order = torch.argsort(logits, descending=True)[:5]
    assert [name for name, _ in top] == [labels[i] for i in order]
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True)
    np.testing.assert_allclose(probs, torch.softmax(logits.double(), 0)[order].numpy(), rtol=1e-12)
    batch = zoo.decode(torch.stack([logits, -logits]), labels, top=2)  # a batch; the labels themselves
    assert batch[0] == top[:2] and batch[1][0][0] == labels[int(torch.argmin(logits))]


def test_decode_names_a_models_classes_from_its_record():
    model = zoo.load("meliusnet22.mnist")
    x = torch.zeros(1, 3, 32, 32)
    logits = model(x)[0]
    assert zoo.decode(logits, model, top=1)[0][0] == str(int(logits.argmax()))
    initialised = zoo.load("mobilenet_v1", **zoo.get_config("mobilenet_v1").tiny)
    assert zoo.decode(torch.arange(10.0), initialised, top=1) == [("class_9", pytest.approx(0.6321, abs=1e-4))]
    with pytest.raises(ValueError, match="top >= 1"):
        zoo.decode(logits, model, top=0)
