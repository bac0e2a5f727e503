"""Importing larq-zoo's ImageNet weights (``zoo.larq_import``): download, checks, and equality.

larq-zoo's own RealToBinaryNet and MeliusNet22 are built with random weights (BN statistics
included) at 64x64, saved with ``save_weights`` as the release assets, and served from
127.0.0.1; the registered tags load them through the real download code path
(``$BNNZOO_LARQ_ZOO_URL`` points at the server). Our PyTorch model, and its Keras twin,
must then reproduce larq-zoo's logits (the layer before its softmax).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from http.server import ThreadingHTTPServer

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import torch

import zoo
import zoo.weights as zw
from zoo import larq_import
from zoo.hub import HubError

from helpers import QuietHandler, keras_float64, randomize_keras

SIZE = 64  # weights do not depend on the input size (no learned scales in these two models)
KEYS = {"realtobinary_resnet18.larq_in1k": "r2b_bnn_block_10_logits", "meliusnet22.larq_in1k": "head_dense"}


def _build_larq(arch: str):
    """larq-zoo's model in float64 (Keras' floatx), so that its logits carry no float32 drift."""
    import larq_zoo

    with keras_float64():
        if arch == "realtobinary_resnet18":
            return larq_zoo.literature.RealToBinaryNet(weights=None, input_shape=(SIZE, SIZE, 3))
        return larq_zoo.literature.MeliusNet22(weights=None, input_shape=(SIZE, SIZE, 3))


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """``{key: (reference logits)}`` with the release assets written under a served folder.

    The classifier is rescaled so larq-zoo's logits peak at 10: the residual stream of a
    random BNN grows large, and float32 rounding of huge logits says nothing about the mapping.
    As in test_larq_import_families, larq-zoo runs in float64 on weights and inputs float32 holds
    exactly (the file imports exactly), so that no float32 drift flips a binary activation.
    """
    import tensorflow as tf

    root = tmp_path_factory.mktemp("releases")
    x = np.random.default_rng(0).normal(size=(4, SIZE, SIZE, 3)).astype(np.float32)
    out = {}
    for i, (key, logits_layer) in enumerate(KEYS.items()):
        w = zw.WEIGHTS[key]
        model = _build_larq(w.arch)
        randomize_keras(model, np.random.default_rng(i + 1))
        head = model.get_layer(logits_layer)
        logits_model = tf.keras.Model(model.input, head.output)
        peak = float(np.abs(logits_model(x, training=False).numpy()).max())
        for var in head.weights:
            var.assign(var.numpy() * (10.0 / peak))
        model.set_weights([v.astype(np.float32) for v in model.get_weights()])  # kernels: Keras' float64 draws
        logits = logits_model(x.astype(np.float64), training=False).numpy()
        assert logits.dtype == np.float64
        probs = model(x.astype(np.float64), training=False).numpy()
        assert np.array_equal(probs.argmax(1), logits.argmax(1))
        path = root / w.revision / w.filename
        path.parent.mkdir(parents=True)
        model.save_weights(str(path))
        out[key] = logits
    return root, x, out


@pytest.fixture
def served(releases, tmp_path, monkeypatch):
    """The releases served on 127.0.0.1, an empty cache, and the tags re-registered for these files."""
    root, x, logits = releases
    handler = functools.partial(QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(larq_import.URL_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv(larq_import.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BNNZOO_OFFLINE", raising=False)
    for key in KEYS:
        w = zw.WEIGHTS[key]
        sha = hashlib.sha256((root / w.revision / w.filename).read_bytes()).hexdigest()
        monkeypatch.setitem(zw.WEIGHTS, key, zw.Weights(**{**w.__dict__, "sha256": sha, "input_size": SIZE}))
    yield root, x, logits
    server.shutdown()
    server.server_close()


def test_registered_tags_record_larq_zoo_releases():
    r2b, melius = zw.WEIGHTS["realtobinary_resnet18.larq_in1k"], zw.WEIGHTS["meliusnet22.larq_in1k"]
    assert larq_import.release_url(r2b) == "https://github.com/larq/zoo/releases/download/r2b-v0.1.0/r2b_weights.h5"
    assert r2b.sha256 == "e8fd16ca1ab9810ac3835f24f5c62758a57bc32a615f73aaa50d382d2b9617e1"
    assert melius.sha256 == "c1ba85e8389ae326009665ec13331e49fc3df4d0f925fa8553e224f7362c18ed"
    assert (larq_import.release_url(melius) ==
            "https://github.com/larq/zoo/releases/download/meliusnet22-v0.1.0/meliusnet22_weights.h5")
    for w in (r2b, melius):
        assert w.arch_overrides["pad_value"] == 0.0 and w.importer == "larq_zoo" and "LCE" in w.notes


# Largest |logit diff| allowed, in float64 everywhere (logits peak 10). Real-to-Bin's BN epsilon
# (1e-3 against PyTorch's 1e-5) is folded into float32 running_var by the importer: that rounding
# (~6e-8 relative per BN) leaves ~1e-6, float64 drift alone ~1e-14 (MeliusNet's epsilon is 1e-5).
TOLERANCE = {"realtobinary_resnet18.larq_in1k": 1e-5, "meliusnet22.larq_in1k": 1e-9}


@pytest.mark.parametrize("key", list(KEYS))
def test_import_matches_larq_zoo(served, key):
    _, x, expected = served
    model = zoo.load(key).double()
    assert model.zoo_config.arch["pad_value"] == 0.0
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2).double()).numpy()
    diff = float(np.abs(got - expected[key]).max())
    assert diff < TOLERANCE[key], f"{key}: PyTorch logits differ from larq-zoo's by {diff}"
    assert np.array_equal(got.argmax(1), expected[key].argmax(1))
    assert expected[key].std() > 1.0  # logits that vary: agreement proves something

    with keras_float64():
        keras_model = zoo.load(key, framework="keras")  # from the cache this time
    got_keras = keras_model(x.astype(np.float64), training=False).numpy()
    assert got_keras.dtype == np.float64
    diff_keras = float(np.abs(got_keras - expected[key]).max())
    assert diff_keras < TOLERANCE[key], f"{key}: Keras twin logits differ from larq-zoo's by {diff_keras}"
    assert np.array_equal(got_keras.argmax(1), expected[key].argmax(1))
    print(f"{key}: max |logit diff| torch {diff:.2e}, keras {diff_keras:.2e} (float64, logits peak 10)")


def test_download_is_cached_and_verified(served):
    w = zw.WEIGHTS["meliusnet22.larq_in1k"]
    path = larq_import.fetch(w)
    assert path == larq_import.cache_path(w) and hashlib.sha256(path.read_bytes()).hexdigest() == w.sha256
    assert [p.name for p in path.parent.iterdir()] == [w.filename]  # no temporary file left
    path.write_bytes(b"corrupt")
    with pytest.raises(HubError, match="cached .* has sha256 .* delete it"):
        larq_import.fetch(w)
    assert larq_import.fetch(w, force=True) == path and hashlib.sha256(path.read_bytes()).hexdigest() == w.sha256


def test_wrong_hash_leaves_nothing(served, monkeypatch):
    key = "realtobinary_resnet18.larq_in1k"
    w = zw.WEIGHTS[key]
    monkeypatch.setitem(zw.WEIGHTS, key, zw.Weights(**{**w.__dict__, "sha256": "0" * 64}))
    with pytest.raises(HubError) as info:
        zoo.load(key)
    msg = str(info.value)
    assert "\n" not in msg and "nothing was cached" in msg and larq_import.release_url(w) in msg
    assert str(larq_import.cache_path(w)) in msg  # says where to place the file by hand
    folder = larq_import.cache_path(w).parent
    assert not folder.exists() or list(folder.iterdir()) == []


def test_unreachable_and_offline_say_how_to_place_the_file(served, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(larq_import.URL_ENV, f"http://127.0.0.1:{port}")
    w = zw.WEIGHTS["meliusnet22.larq_in1k"]
    with pytest.raises(HubError, match="cannot download http://127.0.0.1") as info:
        zoo.load("meliusnet22.larq_in1k")
    assert str(larq_import.cache_path(w)) in str(info.value) and w.sha256 in str(info.value)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="not cached at .* HF_HUB_OFFLINE is set"):
        zoo.load("meliusnet22.larq_in1k")
    monkeypatch.setenv(larq_import.URL_ENV, served[0].as_uri() + "/")  # file:// works too: a folder of assets
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert larq_import.fetch(w).is_file()


def test_http_error_is_clear(served):
    w = zw.WEIGHTS["meliusnet22.larq_in1k"]
    with pytest.raises(HubError, match="answered HTTP 404"):
        larq_import.fetch(zw.Weights(**{**w.__dict__, "filename": "missing.h5"}))


def test_bn_epsilon_and_layouts_are_mapped(served):
    root, _, _ = served
    w = zw.WEIGHTS["realtobinary_resnet18.larq_in1k"]
    layers = larq_import.read_h5(root / w.revision / w.filename)
    cfg = zoo.get_config(w.arch).replace(input_size=SIZE, **w.arch_overrides)
    state = larq_import.convert(layers, cfg)
    bn = layers["r2b_bnn_block_3a_batch_norm"]
    np.testing.assert_allclose(state["blocks.1.a.bn.running_var"], bn["moving_variance"] + (1e-3 - 1e-5), rtol=1e-6)
    np.testing.assert_array_equal(state["blocks.1.a.bn.running_mean"], bn["moving_mean"])
    np.testing.assert_array_equal(state["blocks.6.a.act.weight"], layers["r2b_bnn_block_8a_prelu"]["alpha"].ravel())
    np.testing.assert_array_equal(state["blocks.0.b.scale.expand.weight"],
                                  layers["r2b_bnn_block_2b_scaling_dense_expand"]["kernel"].T)

    w = zw.WEIGHTS["meliusnet22.larq_in1k"]
    layers = larq_import.read_h5(root / w.revision / w.filename)
    state = larq_import.convert(layers, zoo.get_config(w.arch).replace(**w.arch_overrides))
    np.testing.assert_array_equal(state["head_bn.running_var"], layers["head_bn"]["moving_variance"])  # eps 1e-5 both
    groups = [layers[f"stem_s2_groupconv_conv{g}"]["kernel"].transpose(3, 2, 0, 1) for g in range(8)]
    np.testing.assert_array_equal(state["stem.conv2.weight"], np.concatenate(groups))


def test_missing_or_misshaped_layers_raise(served):
    root, _, _ = served
    w = zw.WEIGHTS["meliusnet22.larq_in1k"]
    layers = larq_import.read_h5(root / w.revision / w.filename)
    cfg = zoo.get_config(w.arch).replace(**w.arch_overrides)
    missing = {k: v for k, v in layers.items() if k != "section_2_block_1_improve_binconv"}
    with pytest.raises(zw.WeightMismatchError, match="no layer 'section_2_block_1_improve_binconv'"):
        larq_import.convert(missing, cfg)
    wrong = dict(layers, head_dense={"kernel": np.zeros((256, 10), np.float32), "bias": np.zeros(10, np.float32)})
    with pytest.raises(zw.WeightMismatchError, match=r"head_dense/kernel .* shape \(10, 256\)"):
        larq_import.convert(wrong, cfg)
    extra = dict(layers, stray_dense={"kernel": np.zeros((2, 2), np.float32)})
    with pytest.raises(zw.WeightMismatchError, match="does not use .*'stray_dense'"):
        larq_import.convert(extra, cfg)
    r2b = zoo.get_config("realtobinary_resnet18").replace(pad_value=0.0)
    with pytest.raises(zw.WeightMismatchError, match="has no layer 'r2b_bnn_block_1_conv2d'"):
        larq_import.convert(layers, r2b)
