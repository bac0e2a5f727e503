"""Import fidelity of the larq-zoo families whose layers carry Keras' automatic names (QuickNet,
Bi-Real Net, ResNet-E, the binary DenseNets, XNOR-Net, DoReFa-Net, Binary AlexNet).

As in test_larq_import: larq-zoo's own model is built with random weights (BN statistics included),
saved with ``save_weights`` as the release asset, served from 127.0.0.1 and loaded through
``zoo.load("<name>.larq_in1k")``; our PyTorch logits must equal larq-zoo's (the layer before its
softmax). Registry-driven: every ``larq_zoo`` tag of an auto-named family. The same files give the
per-family bad-input cases: each tag fed the next tag's file, each file with a layer removed.
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

KEYS = [k for k, w in sorted(zw.WEIGHTS.items())
        if w.importer == "larq_zoo" and zoo.get_config(w.arch).family in larq_import._AUTO_NAMED]
# XNOR-Net's first fully-connected layer is a fixed 6x6 conv in larq-zoo: 224 pixels. The others
# are size-independent; 64 keeps their ImageNet stems (ResNet-E and DenseNet switch below 50).
SIZES = {"xnornet": 224}


def _size(arch: str) -> int:
    return SIZES.get(arch, 64)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    """``(root, {key: (x, larq-zoo's float64 logits)})``, the release files saved under ``root``.

    larq-zoo's model is built in float64 (Keras' floatx) with weights and inputs that float32 holds
    exactly: the file imports exactly into our float32 parameters, and the reference is free of
    float32 drift. In float32, TF's and PyTorch's summation orders (which change with the thread
    count) flip the sign of a pre-activation near 0 now and then, and a binary net carries one flip
    to the logits (quicknet_small: 8.2 off on logits of 400 in one run).
    """
    import larq_zoo
    import tensorflow as tf

    root = tmp_path_factory.mktemp("releases")
    out = {}
    for i, key in enumerate(KEYS):
        w = zw.WEIGHTS[key]
        size = _size(w.arch)
        module, builder = larq_import.LARQ_ZOO_TWINS[w.arch].split(".")
        with keras_float64():
            model = getattr(getattr(larq_zoo, module), builder)(weights=None, input_shape=(size, size, 3))
        assert {v.dtype for v in model.get_weights()} == {np.dtype(np.float64)}, key
        randomize_keras(model, np.random.default_rng(i + 1))
        model.set_weights([v.astype(np.float32) for v in model.get_weights()])  # kernels: Keras' float64 draws
        x = np.random.default_rng(i).normal(size=(2, size, size, 3)).astype(np.float32)
        assert model.layers[-1].get_config().get("activation") == "softmax"
        logits = tf.keras.Model(model.input, model.layers[-2].output)(x.astype(np.float64), training=False).numpy()
        assert logits.dtype == np.float64, key
        path = root / w.revision / w.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(str(path))  # float64 arrays, each exactly a float32
        out[key] = (x, logits)
        tf.keras.backend.clear_session()
    return root, out


@pytest.fixture
def served(releases, tmp_path, monkeypatch):
    root, out = releases
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(larq_import.URL_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv(larq_import.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("BNNZOO_OFFLINE", raising=False)
    for key in KEYS:
        w = zw.WEIGHTS[key]
        sha = hashlib.sha256((root / w.revision / w.filename).read_bytes()).hexdigest()
        monkeypatch.setitem(zw.WEIGHTS, key, zw.Weights(**{**w.__dict__, "sha256": sha, "input_size": _size(w.arch)}))
    yield out
    server.shutdown()
    server.server_close()


def test_every_auto_named_family_has_a_tag():
    families = {zoo.get_config(zw.WEIGHTS[k].arch).family for k in KEYS}
    assert families == set(larq_import._AUTO_NAMED)


@pytest.mark.slow  # larq-zoo's full-width models
def test_torch_and_keras_logits_equal_larq_zoo(served):
    """In float64 on every side: our PyTorch model and the translated Keras twin (the imported
    float32 weights, exactly widened) give larq-zoo's logits up to float64 drift (relative to the
    largest logit of a random BNN), and the same top-1. One wrong weight moves logits by far more."""
    import tensorflow as tf

    for key in KEYS:
        x, expected = served[key]
        scale = float(np.abs(expected).max())
        assert expected.std() > 0.1 * scale, key  # logits that vary: agreement proves something
        model = zoo.load(key).double()
        with torch.no_grad():
            ours = model(torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64)).numpy()
        assert ours.dtype == np.float64, key
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-9 * scale, err_msg=f"{key} (PyTorch)")
        assert np.array_equal(ours.argmax(1), expected.argmax(1)), key
        with keras_float64():
            twin = zoo.load(key, framework="keras")  # from the cache this time
        got = twin(x.astype(np.float64), training=False).numpy()
        assert got.dtype == np.float64, key
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9 * scale, err_msg=f"{key} (Keras twin)")
        assert np.array_equal(got.argmax(1), expected.argmax(1)), key
        print(f"{key}: |PyTorch - larq-zoo| {np.abs(ours - expected).max():.2e}, "
              f"|Keras twin - larq-zoo| {np.abs(got - expected).max():.2e} (float64, largest logit {scale:.3g})")
        tf.keras.backend.clear_session()


def _cfg(key: str):
    w = zw.WEIGHTS[key]
    return zoo.get_config(w.arch).replace(input_size=_size(w.arch), **w.arch_overrides)


@pytest.mark.slow
def test_release_of_another_architecture_is_refused(served, tmp_path):
    """Each tag given the next tag's release file: a one-line error naming the file. Where the two
    architectures have the same weight shapes (DenseNet37 and its dilated twin), the import cannot
    tell them apart: the sha256 does, and names the file (test_larq_import_bad_input covers the
    served and cached paths at tiny size)."""
    from zoo.weights import WeightMismatchError

    twins = []
    for key, other in zip(KEYS, KEYS[1:] + KEYS[:1]):
        o = zw.WEIGHTS[other]
        layers = larq_import.read_h5(larq_import.fetch(o))
        try:
            larq_import.convert(layers, _cfg(key), source=o.filename)
        except WeightMismatchError as e:
            assert "\n" not in str(e) and o.filename in str(e), (key, str(e))
            continue
        twins.append((key, other))
        assert zoo.get_config(zw.WEIGHTS[key].arch).published["params"] == zoo.get_config(o.arch).published["params"]
        w = zw.WEIGHTS[key]
        dest = larq_import.cache_path(w)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(larq_import.fetch(o).read_bytes())  # the twin's file, renamed
        with pytest.raises(HubError, match=f"it is {o.filename}, the release file of {other}, under"):
            zoo.load(key)
    print("same weight shapes, told apart by sha256 only:", twins)
    assert len(twins) < len(KEYS) // 2


@pytest.mark.slow
def test_missing_layer_is_named_in_every_family(served):
    """The middle layer of each file's most numerous Keras class removed: the error names it (matching
    by build order would otherwise blame a later layer, or none where shapes repeat)."""
    from zoo.weights import WeightMismatchError

    for key in KEYS:
        w = zw.WEIGHTS[key]
        layers = larq_import.read_h5(larq_import.fetch(w))
        by_class: dict[str, list[str]] = {}
        for name in layers:
            by_class.setdefault(name.rsplit("_", 1)[0] if name[-1].isdigit() else name, []).append(name)
        cls, names = max(by_class.items(), key=lambda kv: len(kv[1]))
        names.sort(key=lambda n: int(n.rsplit("_", 1)[1]) if n[-1].isdigit() else 0)
        gone = names[len(names) // 2]
        with pytest.raises(WeightMismatchError) as e:
            larq_import.convert({k: v for k, v in layers.items() if k != gone}, _cfg(key), source=w.filename)
        msg = str(e.value)
        assert "\n" not in msg and w.filename in msg and f"missing {gone!r}" in msg, (key, msg)
