"""Bad larq-zoo release files: another architecture's file, a truncated or
renamed ``.h5``, an ``.h5`` with a missing layer. Each gives a one-line error naming the layer or
the file, and nothing is cached that a later load would trust: the second load fails the same way
(or downloads again).

The files are larq-zoo's own models at tiny widths (its factories take the widths as fields):
Bi-Real Net with 16 filters and QuickNet with the zoo's tiny sections, both 32x32 with 10 classes,
which are exactly the zoo's ``tiny`` configs. They are served from 127.0.0.1 and loaded through
``zoo.load("<name>.larq_in1k")``, the real download and import path. The auto-named families share
this code (``zoo.larq_import._auto_named_layers``); the per-family cases at full size (every
family's missing layer, every family's file given to another) are in test_larq_import_families.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import torch

import zoo
import zoo.weights as zw
from zoo import larq_import
from zoo.hub import HubError

from helpers import QuietHandler, killed_when, randomize_keras
from hub_server import send_dripping

BIREAL, QUICK = "birealnet18.larq_in1k", "quicknet.larq_in1k"
SIZE = 32


def _tiny_arch(key: str) -> dict:
    """The zoo's tiny builder arguments of ``key``'s architecture (sizes apart)."""
    tiny = dict(zoo.get_config(zw.WEIGHTS[key].arch).tiny)
    assert tiny.pop("input_size") == SIZE and tiny.pop("num_classes") == 10
    return tiny


def _build_larq(key: str):
    from larq_zoo.literature.birealnet import BiRealNetFactory
    from larq_zoo.sota.quicknet import QuickNetFactory

    factory = {BIREAL: BiRealNetFactory, QUICK: QuickNetFactory}[key]
    return factory(weights=None, num_classes=10, input_shape=(SIZE, SIZE, 3), **_tiny_arch(key)).build()


def _without_layer(src: Path, dest: Path, layer: str, *, keep_listed: bool = False) -> None:
    """``src`` with one layer's weights removed; ``keep_listed``: still listed in ``layer_names``
    (a damaged file), else gone from the list too (a file saved without it)."""
    import h5py

    shutil.copyfile(src, dest)
    with h5py.File(dest, "r+") as f:
        del f[layer]
        if not keep_listed:
            names = [n if isinstance(n, bytes) else n.encode() for n in f.attrs["layer_names"]]
            f.attrs["layer_names"] = np.array([n for n in names if n != layer.encode()])  # as Keras writes it


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Tiny larq-zoo release files (random weights) and the logits larq-zoo computes with them."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("tiny_larq")
    x = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    out = {}
    for i, key in enumerate((BIREAL, QUICK)):
        # Keras numbers auto-named layers per session: the names the tests cut ("quant_conv2d_3")
        # hold only from a cleared session (under xdist other test files built models first).
        tf.keras.backend.clear_session()
        model = _build_larq(key)
        randomize_keras(model, np.random.default_rng(i + 1))
        path = folder / zw.WEIGHTS[key].filename
        model.save_weights(str(path))
        out[key] = (path, tf.keras.Model(model.input, model.layers[-2].output)(x, training=False).numpy())
        tf.keras.backend.clear_session()
    return x, out


class _Releases:
    """larq-zoo's release layout ``root/revision/filename`` on 127.0.0.1, an empty cache, and tags
    registered at the tiny size for the files placed there."""

    def __init__(self, root: Path, cache: Path, monkeypatch) -> None:
        self.root, self.cache, self._mp = root, cache, monkeypatch
        self.drop: dict[str, int] = {}  # URL path -> bytes sent before the connection is closed
        self.drip: tuple[int, float] | None = None  # (bytes, seconds): a slow link that never stalls
        self.stall = threading.Event()  # set: requests are accepted and never answered
        self.stopped = threading.Event()
        self.gets: list[str] = []
        releases = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                releases.gets.append(self.path)
                if releases.stall.is_set():
                    releases.stopped.wait()
                    self.close_connection = True
                    return
                if releases.drip is not None:
                    data = (root / self.path.lstrip("/")).read_bytes()
                    return send_dripping(self, 200, {}, data, releases.drip, releases.stopped)
                if self.path in releases.drop:
                    data = (root / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[:releases.drop[self.path]])
                    self.close_connection = True
                    return
                super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        monkeypatch.setenv(larq_import.URL_ENV, f"http://127.0.0.1:{self.server.server_address[1]}/")
        monkeypatch.setenv(larq_import.CACHE_ENV, str(cache))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("BNNZOO_OFFLINE", raising=False)

    def serve(self, key: str, data: bytes, *, registered: bytes | None = None) -> zw.Weights:
        """Serves ``data`` as ``key``'s release file; the tag is registered with the sha256 of
        ``registered`` (default: ``data``), at the tiny size."""
        w = zw.WEIGHTS[key]
        path = self.root / w.revision / w.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sha = hashlib.sha256(data if registered is None else registered).hexdigest()
        tiny = zw.Weights(**{**w.__dict__, "sha256": sha, "input_size": SIZE, "num_classes": 10,
                             "arch_overrides": {**w.arch_overrides, **_tiny_arch(key)}})
        self._mp.setitem(zw.WEIGHTS, key, tiny)
        return tiny

    def cached(self) -> list[str]:
        """Every file under the cache (temporaries included)."""
        return sorted(str(p.relative_to(self.cache)) for p in self.cache.rglob("*") if p.is_file())


@pytest.fixture
def releases(tmp_path, monkeypatch):
    r = _Releases(tmp_path / "releases", tmp_path / "cache", monkeypatch)
    yield r
    r.stopped.set()
    r.server.shutdown()
    r.server.server_close()


def _load_fails_twice(key: str, error: type[Exception], *needles: str) -> str:
    """Loads ``key`` twice; both fail with the same one-line message holding every needle."""
    messages = []
    for _ in range(2):
        with pytest.raises(error) as info:
            zoo.load(key)
        messages.append(str(info.value))
    assert messages[0] == messages[1], messages
    assert "\n" not in messages[0], messages[0]
    for needle in needles:
        assert needle in messages[0], (needle, messages[0])
    print(messages[0])
    return messages[0]


def test_tiny_release_files_load_and_match_larq_zoo(files, releases):
    """The good files the bad ones are made from load, and give larq-zoo's logits: a refusal below is
    the bad input's doing."""
    x, out = files
    for key, (path, expected) in out.items():
        releases.serve(key, path.read_bytes())
        with torch.no_grad():
            got = zoo.load(key)(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4 * float(np.abs(expected).max()), err_msg=key)
        assert np.array_equal(got.argmax(1), expected.argmax(1)) and expected.std() > 0


def test_release_of_another_architecture_is_refused(files, releases):
    _, out = files
    bireal, quick = out[BIREAL][0].read_bytes(), out[QUICK][0].read_bytes()
    releases.serve(QUICK, quick)
    # A mirror serving QuickNet's file under Bi-Real Net's name: refused by its sha256 and named, nothing cached.
    w = releases.serve(BIREAL, quick, registered=bireal)
    _load_fails_twice(BIREAL, HubError, "nothing was cached", larq_import.release_url(w),
                      f"it is {zw.WEIGHTS[QUICK].filename}, the release file of {QUICK}, under another name")
    assert releases.cached() == [] and len(releases.gets) == 2  # the second load downloaded again
    # Were it registered for Bi-Real Net (a wrong registry entry), the import refuses it, naming file and layer.
    releases.serve(BIREAL, quick)
    msg = _load_fails_twice(BIREAL, zw.WeightMismatchError, str(larq_import.cache_path(w)), f"({BIREAL})")
    assert "layers" in msg and ("conv2d" in msg or "dense" in msg or "batch_normalization" in msg), msg


def test_truncated_release_file_is_never_cached_or_trusted(files, releases):
    _, out = files
    good = out[BIREAL][0].read_bytes()
    short = good[: len(good) // 2]
    w = releases.serve(BIREAL, short, registered=good)  # a mirror holding a truncated copy
    _load_fails_twice(BIREAL, HubError, "nothing was cached", "has sha256")
    assert releases.cached() == []
    releases.serve(BIREAL, good)
    releases.drop[f"/{w.revision}/{w.filename}"] = len(good) // 3  # the connection dies mid-transfer
    _load_fails_twice(BIREAL, HubError, f"stopped after {len(good) // 3} of {len(good)} bytes; nothing was cached")
    assert releases.cached() == []  # no partial file left either
    releases.drop.clear()
    # A truncated file put in the cache by hand is refused on every load, never used.
    dest = larq_import.cache_path(w)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(short)
    _load_fails_twice(BIREAL, HubError, f"cached {dest} has sha256", "delete it and load again")
    assert larq_import.fetch(w, force=True) == dest and dest.read_bytes() == good  # force downloads it again
    # Registered as it is (the registry pinning a broken file), HDF5 itself refuses it: one line naming the file.
    releases.serve(BIREAL, short)
    dest.unlink()
    _load_fails_twice(BIREAL, zw.WeightMismatchError, f"cannot read {dest} as HDF5", "truncated")


def test_renamed_release_file_in_the_cache_is_named(files, releases):
    _, out = files
    releases.serve(QUICK, out[QUICK][0].read_bytes())
    w = releases.serve(BIREAL, out[BIREAL][0].read_bytes())
    dest = larq_import.cache_path(w)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out[QUICK][0], dest)  # quicknet_weights.h5 saved as birealnet_weights.h5
    _load_fails_twice(BIREAL, HubError, str(dest), "delete it",
                      f"it is {zw.WEIGHTS[QUICK].filename}, the release file of {QUICK}, under another name")
    assert releases.gets == []  # refused from the cache: nothing fetched, nothing replaced
    dest.unlink()
    assert zoo.load(BIREAL) is not None and releases.cached() == [str(dest.relative_to(releases.cache))]


@pytest.mark.parametrize("layer", ["quant_conv2d_5", "batch_normalization", "dense"])
def test_missing_layer_is_named(files, releases, tmp_path, layer):
    """One weight layer gone (in the middle of its class, the first, the only): the error names it,
    not the layer build order would shift onto its place."""
    _, out = files
    src = out[BIREAL][0]
    cut = tmp_path / "cut.h5"
    _without_layer(src, cut, layer)
    assert layer in larq_import.read_h5(src) and layer not in larq_import.read_h5(cut)
    releases.serve(BIREAL, cut.read_bytes())
    cls = layer.rsplit("_", 1)[0] if layer[-1].isdigit() else layer
    msg = _load_fails_twice(BIREAL, zw.WeightMismatchError, f"({BIREAL})", f"{cls} layers")
    if layer == "dense":
        assert "none at all" in msg and "include_top" in msg, msg
    elif layer == "quant_conv2d_5":
        assert f"missing {layer!r}" in msg, msg
    else:  # the first has no number: the file's numbering starts later, no gap to point at
        assert "'batch_normalization_1' to" in msg and "one before or after is missing" in msg, msg


def test_damaged_layer_is_named(files, tmp_path):
    """A layer listed in the file but not stored in it."""
    cut = tmp_path / "damaged.h5"
    _without_layer(files[1][BIREAL][0], cut, "quant_conv2d_3", keep_listed=True)
    with pytest.raises(zw.WeightMismatchError) as info:
        larq_import.read_h5(cut)
    assert "\n" not in str(info.value) and f"layer 'quant_conv2d_3' of {cut} cannot be read" in str(info.value)


# --- downloads end, and leave no partial file (round two) -----------------------------------------------

@pytest.mark.parametrize("fault, env, message", [
    ("stall", "BNNZOO_DOWNLOAD_STALL=1", "no data for 1 s"),
    ("drip", "BNNZOO_DOWNLOAD_DEADLINE=2", "not finished after 2 s"),
])
def test_a_release_server_that_stalls_or_drips_ends_in_time(fault, env, message, releases, monkeypatch, capfd):
    """A server that never answers ends at the stall timeout; one that sends 16 KiB every 0.2 s trips no
    read timeout (before, only a per-read timeout existed: it ran as long as the server kept sending) and
    ends at the deadline, with progress shown until then. Nothing is cached; a later download works."""
    import time

    w = releases.serve(BIREAL, os.urandom(1 << 20))
    if fault == "stall":
        releases.stall.set()
    else:
        releases.drip = (1 << 14, 0.2)
    monkeypatch.setenv(*env.split("="))
    start = time.monotonic()
    with pytest.raises(HubError) as e:
        larq_import.fetch(w)
    assert time.monotonic() - start < 15
    msg = str(e.value)
    assert "\n" not in msg and message in msg and env.split("=")[0] in msg, msg
    assert fault == "stall" or "downloading " in capfd.readouterr().err
    deadline = time.monotonic() + 30  # the given-up transfer removes its partial file at its next read
    while releases.cached() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert releases.cached() == []
    releases.stall.clear()
    releases.drip = None
    assert larq_import.fetch(w).read_bytes() == (releases.root / w.revision / w.filename).read_bytes()
    assert releases.cached() == [f"larq_zoo/{w.revision}/{w.filename}"]


def test_sigkill_mid_download_leaves_no_partial_file_after_a_rerun(releases, tmp_path):
    """SIGKILL while the release file arrives leaves its partial file; the next download removes it
    (before, `.<name>.*.part` files stayed in the cache for good)."""
    import sys

    data = os.urandom(3 << 20)  # read 1 MiB at a time before: the partial file had to pass 1 MiB first
    w = releases.serve(BIREAL, data)
    releases.drip = (1 << 14, 0.05)
    script = ("import sys, zoo.weights as zw; from zoo import larq_import; "
              "w = zw.Weights(**{**zw.WEIGHTS[sys.argv[1]].__dict__, 'sha256': sys.argv[2]}); larq_import.fetch(w)")
    killed_when([sys.executable, "-c", script, BIREAL, w.sha256],
                lambda: any(p.is_file() and p.stat().st_size >= 1 << 15 for p in releases.cache.rglob(".*")))
    assert len(releases.cached()) == 1 and releases.cached()[0] != f"larq_zoo/{w.revision}/{w.filename}"
    releases.drip = None
    assert larq_import.fetch(w).read_bytes() == data
    assert releases.cached() == [f"larq_zoo/{w.revision}/{w.filename}"]
