"""Turning a ``weights=`` argument into a state dict: bundled files, the Hub, larq-zoo releases, paths.

The layer above the weights metadata (:mod:`zoo.weights`, plain data) and the Hub client
(:mod:`zoo.hub`): it imports both, neither imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import hub
from . import weights as _weights
from .fileio import sha256_of
from .hub import HubError
from .registry import ModelConfig
from .weights import WeightMismatchError, Weights, lookup, read_safetensors

__all__ = ["resolve", "fetch_registered", "bundled_file", "check_config"]


def fetch_registered(key: str, w: Weights, *, force: bool = False) -> Path:
    """Fetches the file of a registered ``WEIGHTS[key]``, pinned and sha256-checked."""
    if w.importer == "larq_zoo":  # larq-zoo's release files live on GitHub, not on the Hub
        from .larq_import import fetch

        return fetch(w, force=force)
    if w.importer == "reactnet":  # the ReActNet authors' OneDrive files, placed by hand
        from .reactnet_import import fetch as fetch_reactnet

        return fetch_reactnet(w)
    if not w.hub_repo:
        return bundled_file(key, w)
    return hub.hub_file(w.hub_repo, w.filename, w.revision, sha256=w.sha256, name=key, force=force)


def bundled_file(key: str, w: Weights) -> Path:
    """The path of weights that ship inside the package (``zoo/pretrained/``), sha256-checked.

    Raises:
        HubError: The file is missing or its sha256 differs from the registry's.
    """
    path = _weights.BUNDLED_DIR / w.filename
    if not path.is_file():
        raise HubError(f"weights {key} should ship with bnnzoo as {path} but the file is missing: reinstall "
                       f"bnnzoo (pip install .) or restore it (git checkout -- zoo/pretrained)")
    digest = sha256_of(path)
    if digest != w.sha256:
        raise HubError(f"weights {key} at {path} are corrupt (sha256 {digest[:12]}..., expected "
                       f"{w.sha256[:12]}...): reinstall bnnzoo or git checkout -- zoo/pretrained")
    return path



def resolve(cfg: ModelConfig, weights: str, explicit_classes: bool = False,
            explicit_size: bool = False) -> tuple[dict[str, Any], ModelConfig]:
    """Turns a ``weights=`` argument into a state dict and the config it fits.

    Args:
        cfg: The config asked for (with the caller's overrides).
        weights: A registered tag (or ``"default"``; a tag with ``importer="larq_zoo"`` fetches
            larq-zoo's Keras file and converts it, see :mod:`zoo.larq_import`), ``"hf-hub:owner/repo[@revision]"``, or
            a path to a ``.safetensors`` file (``config.json`` beside it, if any, is honoured).
        explicit_classes: The caller set ``num_classes`` (the config returned keeps the weights' own
            classes; ``zoo.load`` replaces the classifier afterwards).
        explicit_size: The caller set ``input_size``: it wins over the size the weights were
            trained at (refused for detectors, whose output length depends on it).

    Raises:
        WeightMismatchError: Unknown tag, or a file saved from another architecture.
        zoo.hub.HubError: The weights could not be fetched, or their sha256 does not match.
    """
    if weights.startswith(hub.HUB_PREFIX):
        weights_path, config_path = hub.fetch_hub_ref(weights, cfg.name)
        return read_safetensors(weights_path), _classes(cfg, check_config(cfg, config_path), weights, explicit_classes,
                                                        explicit_size)
    path = Path(weights)
    if path.suffix == ".safetensors" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist")
        return read_safetensors(path), _classes(cfg, check_config(cfg, path.parent / "config.json"), weights,
                                                explicit_classes, explicit_size)
    key, w = lookup(cfg, weights)
    if w.arch != cfg.name:
        raise WeightMismatchError(f"WEIGHTS[{key!r}] is registered for {w.arch!r}, not {cfg.name!r}: fix its arch field")
    if w.importer == "larq_zoo":
        from . import larq_import

        fitted = cfg.replace(num_classes=w.num_classes, input_size=w.input_size, **dict(w.arch_overrides))
        return larq_import.load_registered(key, w, fitted), _classes(cfg, fitted, key, explicit_classes, explicit_size)
    if w.importer == "reactnet":
        from . import reactnet_import

        fitted = cfg.replace(num_classes=w.num_classes, input_size=w.input_size, **dict(w.arch_overrides))
        return reactnet_import.load_registered(key, w, fitted), _classes(cfg, fitted, key, explicit_classes,
                                                                         explicit_size)
    if w.importer:
        raise WeightMismatchError(f"WEIGHTS[{key!r}] names an unknown importer {w.importer!r}: use '', 'larq_zoo' "
                                  "or 'reactnet'")
    state = read_safetensors(fetch_registered(key, w))
    fitted = cfg.replace(num_classes=w.num_classes, input_size=w.input_size, **dict(w.arch_overrides))
    return state, _classes(cfg, fitted, key, explicit_classes, explicit_size)


def _classes(asked: ModelConfig, fitted: ModelConfig, weights: str, explicit: bool,
             explicit_size: bool = False) -> ModelConfig:
    if explicit_size and asked.input_size != fitted.input_size:
        if fitted.family == "detector":
            raise WeightMismatchError(
                f"weights {weights!r} were trained at {fitted.input_size}x{fitted.input_size} and a detector's "
                f"output depends on its input size: drop input_size={asked.input_size} (or --input-size)")
        fitted = fitted.replace(input_size=asked.input_size)
    # A different explicit num_classes is fine-tuning: zoo.load builds the weights' classifier, loads every
    # weight, then replaces the classifier (reset_classifier), as timm does.
    return fitted


def check_config(cfg: ModelConfig, config_json: Path) -> ModelConfig:
    """``cfg`` updated by a ``config.json`` saved beside weights (missing file: ``cfg`` as it is).

    Raises:
        WeightMismatchError: The file describes another architecture.
    """
    if not config_json.is_file():
        return cfg
    from .fileio import read_json

    fix = "it should be the config.json zoo.weights.save wrote beside the weights"
    saved = read_json(config_json, "config", fix)
    if saved.get("name") != cfg.name:
        raise WeightMismatchError(
            f"{config_json} describes a {saved.get('name')!r} model, not {cfg.name!r}: "
            f"load it with zoo.load({saved.get('name')!r}, weights=...)"
        )
    arch = saved.get("arch", {})
    if not isinstance(arch, dict):
        raise ValueError(f"config {config_json}: 'arch' holds a JSON {type(arch).__name__}, expected an object: {fix}")
    arch = {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()}
    try:
        return cfg.replace(num_classes=saved.get("num_classes"), input_size=saved.get("input_size"), **arch)
    except (TypeError, ValueError) as e:
        raise WeightMismatchError(f"config {config_json}: {e}: {fix}") from None
