"""Imports larq-zoo's published ImageNet weights (Keras ``.h5`` files) into the zoo's models.

Registered as ``WEIGHTS`` entries with ``importer="larq_zoo"`` (``zoo.load("meliusnet22.larq_in1k")``,
``zoo.load("realtobinary_resnet18.larq_in1k")``). Loading one:

1. fetches the release asset ``{base}/{revision}/{filename}`` (``base`` is larq-zoo's GitHub
   releases, or ``$BNNZOO_LARQ_ZOO_URL``: a mirror, a local server, or a ``file://`` folder)
   with a plain HTTP client into ``{cache}/larq_zoo/{revision}/{filename}`` (``cache`` is
   ``$BNNZOO_CACHE``, else ``$XDG_CACHE_HOME/bnnzoo``, else ``~/.cache/bnnzoo``). The file is
   written to a temporary name, its sha256 checked, then renamed: a failed or corrupt
   download never leaves a file under the final name. With ``HF_HUB_OFFLINE=1`` nothing is
   downloaded. A file placed there by hand is used once its sha256 matches;
2. reads the Keras weights with ``h5py`` (no TensorFlow needed) and maps them onto the PyTorch
   state dict of the model built from the tag's config (which sets ``pad_value=0.0`` where
   larq-zoo's binary convolutions pad with zeros). MeliusNet's and Real-to-Bin's layers carry
   explicit names, matched by the rules of their family file (``LARQ_ZOO`` in
   ``zoo/families/<family>.py``); the other families' larq-zoo builders leave
   Keras' automatic names (``quant_conv2d_7``), matched by Keras class and build order
   (``LARQ_ZOO['auto_named']``: the n-th layer of a class in the file, by its numeric suffix, fills the
   n-th module of that class in our model). Layouts are converted
   (kernels HWIO -> OIHW, Dense transposed, PReLU alphas and learned scales flattened, each
   grouped Keras convolution of MeliusNet's stem concatenated along the output channels), and
   BatchNorm epsilons reconciled: where larq-zoo used a different epsilon than the zoo's
   layers (Real-to-Bin: Keras' 1e-3 vs 1e-5), the difference is added to the moving
   variance, which gives identical inference outputs.

Every weight of the model must come from the file and every weight layer of the file must
be used, with the right size; otherwise :class:`zoo.weights.WeightMismatchError` names the
layer (for auto-named files: the class whose count is short, and the missing number where the
numbering has a gap). A file whose sha256 is that of another registered release is named as
such: the binary DenseNet37 and its dilated twin have the same shapes, so only the sha256
tells their files apart.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import families
from .download import DownloadTimeout, Meter, Watch
from .download import run as run_watched
from .fileio import CACHE_ENV, atomic_write, cache_root, sha256_of
from .hub import HubError
from .registry import ModelConfig
from .weights import WeightMismatchError, Weights

__all__ = [
    "LARQ_ZOO_RELEASES", "URL_ENV", "CACHE_ENV", "LARQ_BN_EPSILON", "release_url", "cache_path", "fetch",
    "read_h5", "convert", "load_registered", "LARQ_ZOO_TWINS",
]

LARQ_ZOO_RELEASES = "https://github.com/larq/zoo/releases/download"
URL_ENV = "BNNZOO_LARQ_ZOO_URL"
# What each family's facts file (``zoo.families.<family>.LARQ_ZOO``) says about its larq-zoo files:
# ``rules`` (layers matched by name) or ``auto_named`` (by Keras class and build order), the BatchNorm
# epsilon larq-zoo built it with where it differs from the layers' own (``bn_epsilon``), and ``twins``.
_FACTS: dict[str, dict[str, Any]] = families.facts("LARQ_ZOO")
# BatchNormalization epsilon larq-zoo 2.4 builds a family with, where the family says (MeliusNet 1e-5,
# Real-to-Bin nets Keras' default 1e-3); the other families' BatchNorm2d layers carry larq-zoo's epsilon
# (and momentum) themselves: nothing to reconcile.
LARQ_BN_EPSILON = {f: d["bn_epsilon"] for f, d in _FACTS.items() if "bn_epsilon" in d}


# --------------------------------------------------------------------------- download


def release_url(w: Weights) -> str:
    """The URL of ``w``'s release asset: ``{base}/{revision}/{filename}``, ``base`` overridable by
    ``$BNNZOO_LARQ_ZOO_URL``."""
    base = (os.environ.get(URL_ENV) or LARQ_ZOO_RELEASES).rstrip("/")
    return f"{base}/{w.revision}/{w.filename}"


def cache_path(w: Weights) -> Path:
    """Where ``w``'s release asset is cached (and where to place it by hand)."""
    return cache_root() / "larq_zoo" / w.revision / w.filename


def _offline() -> bool:
    return (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("BNNZOO_OFFLINE") or "").strip().upper() in {
        "1", "ON", "YES", "TRUE"}


def fetch(w: Weights, *, force: bool = False) -> Path:
    """The verified local copy of ``w``'s release asset, downloaded if not cached.

    Args:
        w: A registered entry with ``importer="larq_zoo"``.
        force: Download again even when a verified copy is cached.

    Returns:
        The cached file, whose sha256 equals ``w.sha256``.

    Raises:
        HubError: Offline or unreachable with nothing cached, an HTTP error, a short
            download, or a file whose sha256 does not match (nothing is left under the
            final name then).
    """
    url, dest = release_url(w), cache_path(w)
    manual = f"or download {url} yourself and save it as {dest} (sha256 {w.sha256})"
    if dest.is_file() and not force:
        actual = sha256_of(dest)
        if actual != w.sha256:  # refused on every load until replaced: never trusted later
            raise HubError(f"cached {dest} has sha256 {actual[:16]}..., not the registered {w.sha256[:16]}..."
                           f"{_known_as(actual, w)}: delete it and load again, {manual}")
        return dest
    if _offline():
        raise HubError(f"{w.filename} is not cached at {dest} and HF_HUB_OFFLINE is set: unset it to download "
                       f"{url}, {manual}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    watch = Watch(url)

    def write(tmp: str) -> None:  # in the worker thread of download.run; the temporary is fileio's
        h, size = hashlib.sha256(), 0
        request = urllib.request.Request(url, headers={"User-Agent": "bnnzoo"})
        with open(tmp, "wb") as out, urllib.request.urlopen(request, timeout=watch.timeout()) as response:
            expected_size = response.headers.get("Content-Length")
            meter = Meter(w.filename, int(expected_size) if (expected_size or "").isdigit() else None, watch)
            try:  # read1: what has arrived (a read(n) waits for all n bytes, hiding progress on a slow link)
                for chunk in iter(lambda: response.read1(1 << 16), b""):
                    meter.update(len(chunk))
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            finally:
                meter.close()
        if expected_size is not None and size != int(expected_size):
            raise HubError(f"download of {url} stopped after {size} of {expected_size} bytes; nothing was cached: "
                           f"retry, {manual}")
        actual = h.hexdigest()
        if actual != w.sha256:
            raise HubError(f"{url} has sha256 {actual[:16]}..., not the registered {w.sha256[:16]}..."
                           f"{_known_as(actual, w)}; nothing was cached: check {URL_ENV} points at larq-zoo's "
                           f"releases, {manual}")

    try:  # atomic_write also removes the partial files of killed downloads from this folder
        run_watched(lambda: atomic_write(dest, write), watch)
    except DownloadTimeout as e:
        raise HubError(f"{e}; nothing was cached: retry, or raise the limit, {manual}") from None
    except urllib.error.HTTPError as e:
        raise HubError(f"{url} answered HTTP {e.code} ({e.reason}): check {URL_ENV} if set, {manual}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, TimeoutError):  # the socket timeout is the watch's stall timeout (or what is left)
            raise HubError(f"{watch.timed_out()}; nothing was cached: retry, or raise the limit, {manual}") from None
        raise HubError(f"cannot download {url} ({type(reason).__name__}: {' '.join(str(reason).split())}): "
                       f"check the connection (or {URL_ENV}), {manual}") from None
    return dest


def _known_as(sha256: str, w: Weights) -> str:
    """`` (it is <file>, the release file of <tag>, under another name)`` when ``sha256`` is another
    registered release file's, else ``""``.

    The binary DenseNet37 and its dilated twin have the same layers and shapes: only the sha256 tells
    their files apart, so a renamed file is named rather than refused as merely corrupt.
    """
    from .weights import WEIGHTS

    for key, other in WEIGHTS.items():
        if other.importer == "larq_zoo" and other.sha256 == sha256 and other is not w:
            return f" (it is {other.filename}, the release file of {key}, under another name)"
    return ""


# --------------------------------------------------------------------------- reading


def read_h5(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Reads a Keras HDF5 weights file (``save_weights`` or full-model ``save``) without TensorFlow.

    Returns:
        Layer name -> {weight short name (``kernel``, ``gamma``, ...) -> array}, for the
        layers that hold weights.

    Raises:
        WeightMismatchError: Not a Keras HDF5 weights file.
        ImportError: ``h5py`` is not installed.
    """
    try:
        import h5py
    except ImportError:
        raise ImportError("importing larq-zoo weights needs h5py (a dependency of bnnzoo): "
                          "pip install 'h5py>=3.8'") from None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightMismatchError(f"cannot read {path} as HDF5 ({_one_line(e)}): it is truncated or not an .h5 "
                                  "file; delete it and load again") from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise WeightMismatchError(f"{path} is HDF5 but not a Keras weights file (no layer_names): is it the "
                                      "right release asset?")
        layers: dict[str, dict[str, np.ndarray]] = {}
        name = ""
        try:
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                lg = group[name]
                weights = {}
                for wraw in lg.attrs.get("weight_names", []):
                    wname = wraw.decode() if isinstance(wraw, bytes) else str(wraw)
                    weights[wname.split("/")[-1].split(":")[0]] = np.asarray(lg[wname])
                if weights:
                    layers[name] = weights
        except (KeyError, OSError, ValueError, TypeError) as e:  # a listed layer or weight absent or unreadable
            raise WeightMismatchError(f"layer {name!r} of {path} cannot be read ({_one_line(e)}): the file is "
                                      "damaged; delete it and load again") from None
    return layers


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


# --------------------------------------------------------------------------- name maps

# Families whose larq-zoo layers carry explicit names: (our module path pattern, larq-zoo layer name
# template) rules, the template formatted with the pattern's groups (and ``{p}``/``{k}``, see ``_larq_layer``).
_RULES = {f: d["rules"] for f, d in _FACTS.items() if "rules" in d}
# The other families' larq-zoo builders leave Keras' automatic layer names (``quant_conv2d_7``,
# ``batch_normalization_12``): one counter per layer class, counting creations. So each of our
# modules maps to the Keras class it was built as (first matching rule; the default by module type:
# BinaryConv2d -> quant_conv2d, Conv2d -> conv2d, BatchNorm -> batch_normalization, Linear -> dense),
# and within a class to the n-th created layer: sorting a file's layers by their numeric suffix gives
# the build order, whatever order the file lists them in. Our modules are registered in larq-zoo's
# build order for this.
_AUTO_NAMED: dict[str, tuple[tuple[str, str], ...]] = {f: d["auto_named"] for f, d in _FACTS.items()
                                                       if "auto_named" in d}
# Registered model -> its larq-zoo builder (``larq_zoo.<module>.<function>``), for the figures and
# import tests: larq-zoo's count_params() and outputs are the reference.
LARQ_ZOO_TWINS = {name: twin for d in _FACTS.values() for name, twin in d.get("twins", {}).items()}


def _keras_class(family: str, path: str, module: Any) -> str:
    for pattern, cls in _AUTO_NAMED[family]:
        if re.fullmatch(pattern, path):
            return cls
    from .torch.layers import BinaryConv2d

    kind = _kind(module)
    if kind == "conv":
        return "quant_conv2d" if isinstance(module, BinaryConv2d) else "conv2d"
    return {"bn": "batch_normalization", "dense": "dense"}.get(kind, kind)


def _auto_named_layers(family: str, model: Any, layers: Mapping[str, Any], source: str) -> dict[str, str]:
    """Our module path -> the larq-zoo layer of the file holding its weights (``_AUTO_NAMED`` families).

    The counts per Keras class are checked first: with one layer missing, matching by build order
    would shift every later layer of its class by one and blame the wrong layer (or none, where
    shapes repeat); a gap in the file's numbering names the missing one instead.
    """
    created: dict[str, list[tuple[int, str]]] = {}
    for name in layers:
        m = re.fullmatch(r"(.+?)(?:_(\d+))?", name)
        created.setdefault(m.group(1), []).append((int(m.group(2) or 0), name))
    queues = {cls: [n for _, n in sorted(found)] for cls, found in created.items()}
    wanted = [(path, _keras_class(family, path, module)) for path, module in model.named_modules()
              if any(True for _ in module.parameters(recurse=False)) or _kind(module) == "bn"]
    for cls in dict.fromkeys(c for _, c in wanted):
        need, found = [p for p, c in wanted if c == cls], sorted(created.get(cls, []))
        if len(found) < len(need):
            raise WeightMismatchError(f"{source} has {len(found)} {cls} layers, {_missing(cls, found)}; the model "
                                      f"needs {len(need)}: is it larq-zoo's complete include_top weights file for "
                                      f"this model?")
    return {path: queues[cls].pop(0) for path, cls in wanted}


def _missing(cls: str, found: list[tuple[int, str]]) -> str:
    """Which auto-named layers of class ``cls`` a file lacks, from the gaps in its numbering."""
    def name(i: int) -> str:
        return cls if i == 0 else f"{cls}_{i}"

    if not found:
        return "none at all"
    numbers = [i for i, _ in found]
    gaps = [name(i) for i in range(numbers[0], numbers[-1] + 1) if i not in set(numbers)]
    if gaps:
        return f"missing {', '.join(repr(g) for g in gaps[:3])}{' ...' if len(gaps) > 3 else ''}"
    return f"{name(numbers[0])!r} to {name(numbers[-1])!r} with none missing between: one before or after is missing"


# Our parameter name -> larq-zoo weight name, per kind of layer.
_BN = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
_PARAMS = {"bn": _BN, "conv": {"weight": "kernel", "bias": "bias"}, "dense": {"weight": "kernel", "bias": "bias"},
           "prelu": {"weight": "alpha"}, "rescale": {"scale_h": "scale_h", "scale_w": "scale_w", "scale_c": "scale_c"}}


def _larq_layer(family: str, module_path: str, prefix: str) -> str:
    offset = _FACTS[family].get("block_offset")
    for pattern, template in _RULES[family]:
        m = re.fullmatch(pattern, module_path)
        if m:
            k = int(m.group(1)) + offset if offset is not None and m.groups() else None
            return template.format(*m.groups(), p=prefix, k=k)
    raise WeightMismatchError(f"no larq-zoo layer is known for {family} module {module_path!r}: "
                              f"add a rule to LARQ_ZOO['rules'] in zoo/families/{family}.py")


def _kind(module: Any) -> str:
    from torch import nn

    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if isinstance(module, nn.Conv2d):
        return "conv"
    if isinstance(module, nn.Linear):
        return "dense"
    if isinstance(module, nn.PReLU):
        return "prelu"
    return "rescale"


def _prefix(family: str, layers: Mapping[str, Any]) -> str:
    """The model-name prefix of a file's layer names (``{p}`` of the rules), where the family's ``prefix``
    (a pattern whose group is the prefix, and the default when not one is found) says how to find it
    (Real-to-Bin: ``r2b_bnn`` for the BNN)."""
    if "prefix" not in _FACTS[family]:
        return ""
    pattern, default = _FACTS[family]["prefix"]
    found = sorted(m.group(1) for m in (re.fullmatch(pattern, n) for n in layers) if m)
    return found[0] if len(found) == 1 else default


# --------------------------------------------------------------------------- conversion


def convert(layers: Mapping[str, Mapping[str, np.ndarray]], cfg: ModelConfig,
            source: str = "the larq-zoo file") -> dict[str, np.ndarray]:
    """Maps larq-zoo Keras weights onto the PyTorch state dict of the model ``cfg`` describes.

    Args:
        layers: As returned by :func:`read_h5`.
        cfg: The config to build (``pad_value=0.0`` where larq-zoo's weights need it); its family
            must be one of ``_RULES`` (layers by name) or ``_AUTO_NAMED`` (by class and build order).
        source: How to name the file in error messages.

    Returns:
        PyTorch parameter names -> float32 arrays in PyTorch layouts (no ``num_batches_tracked``).

    Raises:
        WeightMismatchError: A layer or weight is missing from the file, has the wrong size,
            or a weight layer of the file is left unused.
    """
    if cfg.family not in _RULES and cfg.family not in _AUTO_NAMED:
        raise WeightMismatchError(f"larq-zoo weights can be imported into {', '.join([*_RULES, *_AUTO_NAMED])} "
                                  f"models, not {cfg.name} ({cfg.family})")
    # The family's builder itself, not zoo.api (which loads weights through this module).
    model = families.builder(cfg.family)(cfg)
    modules = dict(model.named_modules())
    own = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    prefix = _prefix(cfg.family, layers)
    auto = _auto_named_layers(cfg.family, model, layers, source) if cfg.family in _AUTO_NAMED else {}
    used: set[str] = set()
    state: dict[str, np.ndarray] = {}

    def take(layer: str, weight: str, key: str) -> np.ndarray:
        if layer not in layers:
            raise WeightMismatchError(f"{source} has no layer {layer!r} (needed for {key}): is it larq-zoo's "
                                      f"include_top weights file for {cfg.name}?")
        if weight not in layers[layer]:
            raise WeightMismatchError(f"layer {layer!r} of {source} holds {sorted(layers[layer])}, not {weight!r} "
                                      f"(needed for {key}): the file is for another architecture")
        used.add(layer)
        return np.asarray(layers[layer][weight], dtype=np.float32)

    for key, shape in own.items():
        path, param = key.rsplit(".", 1)
        module = modules[path]
        kind = _kind(module)
        layer = auto[path] if auto else _larq_layer(cfg.family, path, prefix)
        weight = _PARAMS[kind].get(param)
        if weight is None:
            raise WeightMismatchError(f"no larq-zoo weight is known for {key} ({kind}): add it to "
                                      f"zoo.larq_import._PARAMS")
        groups = getattr(module, "groups", 1) if kind == "conv" else 1
        depthwise = groups > 1 and groups == module.in_channels == module.out_channels  # one Keras DepthwiseConv2D
        if depthwise:
            weight = "depthwise_kernel"
        if groups > 1 and not depthwise:  # larq-zoo splits a grouped conv into one Conv2D per group
            parts = [take(f"{layer}_conv{g}", weight, key) for g in range(groups)]
            value: np.ndarray = np.concatenate([p.transpose(3, 2, 0, 1) for p in parts], axis=0)
            layer = f"{layer}_conv*"
        else:
            value = take(layer, weight, key)
            if depthwise and value.ndim == 4:
                value = value.transpose(2, 3, 0, 1)  # depthwise (kh, kw, C, 1) -> (C, 1, kh, kw)
            elif kind == "conv" and param == "weight" and value.size == int(np.prod(shape)):
                # HWIO -> OIHW; a Dense kernel (in, out), or a 1x1 conv over a reshaped map, that our
                # model computes as a valid conv over the whole (kh, kw, C) map: Keras flattens NHWC.
                out, cin, kh, kw = shape
                value = value.reshape(kh, kw, cin, out).transpose(3, 2, 0, 1)
            elif kind == "dense" and param == "weight":
                value = value.T if value.ndim == 2 else value
            elif value.ndim != len(shape) and value.size == int(np.prod(shape)):
                value = value.reshape(shape)  # PReLU (1, 1, C), learned scales (H,1,1) / (1,W,1) / (1,1,C)
        if tuple(value.shape) != shape:
            raise WeightMismatchError(f"{layer}/{weight} of {source} has shape {tuple(value.shape)} after layout "
                                      f"conversion, {key} needs {shape}: the file is for another architecture or size")
        if kind == "bn" and param == "running_var" and cfg.family in LARQ_BN_EPSILON:
            # the same 1/sqrt(var + eps) as larq-zoo's BN
            value = value + np.float32(LARQ_BN_EPSILON[cfg.family] - module.eps)
        state[key] = np.ascontiguousarray(value, dtype=np.float32)
    unused = sorted(set(layers) - used)
    if unused:
        raise WeightMismatchError(f"{source} has {len(unused)} weight layers {cfg.name} does not use (e.g. "
                                  f"{unused[0]!r}): the file is for another architecture")
    return state


def load_registered(key: str, w: Weights, cfg: ModelConfig, *, force: bool = False) -> dict[str, np.ndarray]:
    """Fetches (or finds in the cache) and converts registered larq-zoo weights.

    Args:
        key: ``"arch.tag"`` (for messages).
        w: The registered entry (``importer="larq_zoo"``).
        cfg: The config the weights are loaded into (with ``w.arch_overrides`` applied).
        force: Download again even when cached.

    Returns:
        The PyTorch state dict (numpy arrays), ready for ``zoo.load``.

    Raises:
        HubError: The file could not be fetched or its sha256 does not match.
        WeightMismatchError: The file does not fit ``cfg``.
    """
    path = fetch(w, force=force)
    return convert(read_h5(path), cfg, source=f"{path} ({key})")
