"""Weights metadata and resolution of a ``weights=`` argument to a state dict.

One artifact serves both frameworks: ``model.safetensors`` holding PyTorch-named
tensors, with ``config.json`` (the ``ModelConfig``) beside it.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from .registry import ModelConfig

__all__ = ["Weights", "WeightMismatchError", "WEIGHTS", "resolve", "save", "read_safetensors"]


class WeightMismatchError(ValueError):
    """Weights that do not fit the architecture they are loaded into."""


@dataclass(frozen=True)
class Metric:
    """One accuracy figure with where it comes from."""

    name: str
    value: float
    dataset: str
    source: str  # "measured: <command>" or "published: <paper/table>"


@dataclass(frozen=True)
class Weights:
    """A set of trained weights for one registered architecture (``arch.tag``)."""

    arch: str
    tag: str
    hub_repo: str
    revision: str
    filename: str
    sha256: str
    num_classes: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    arch_overrides: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    metrics: tuple[Metric, ...] = ()


# Filled as trained weights are published (issue: weights on the Hub).
WEIGHTS: dict[str, Weights] = {}


def read_safetensors(path: Path) -> dict[str, Any]:
    """Reads a safetensors file into numpy arrays, with a clear error for a bad file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightMismatchError(f"cannot read weights {path}: {e}; is it a .safetensors file?") from None


def save(state: Mapping[str, Any], path: str | Path, cfg: Optional[ModelConfig] = None) -> Path:
    """Writes ``model.safetensors`` (+ ``config.json`` when ``cfg`` is given) atomically."""
    import os
    import tempfile

    import numpy as np
    from safetensors.numpy import save_file

    path = Path(path)
    arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in state.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(arrays, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if cfg is not None:
        (path.parent / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    return path


def resolve(cfg: ModelConfig, weights: str, explicit_classes: bool = False) -> tuple[dict[str, Any], ModelConfig]:
    """Turns a ``weights=`` argument into a state dict and the config it fits.

    Raises:
        WeightMismatchError: Unknown tag, or a file saved from another architecture.
    """
    path = Path(weights)
    if path.suffix == ".safetensors" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"weights file {path} does not exist")
        return read_safetensors(path), _check_config(cfg, path.parent / "config.json")
    key = f"{cfg.name}.{weights}" if weights != "default" else next(
        (k for k in WEIGHTS if k.startswith(cfg.name + ".")), f"{cfg.name}.default")
    if key not in WEIGHTS:
        tags = [k.split(".", 1)[1] for k in WEIGHTS if k.startswith(cfg.name + ".")]
        close = difflib.get_close_matches(weights, tags, n=3)
        known = f"known tags: {', '.join(tags)}" if tags else "none are registered yet; pass weights=None or a .safetensors path"
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise WeightMismatchError(f"no weights {weights!r} for {cfg.name}: {hint}{known}")
    raise NotImplementedError("downloading registered weights arrives with the Hub support")


def _check_config(cfg: ModelConfig, config_json: Path) -> ModelConfig:
    if not config_json.is_file():
        return cfg
    saved = json.loads(config_json.read_text())
    if saved.get("name") != cfg.name:
        raise WeightMismatchError(
            f"{config_json} describes a {saved.get('name')!r} model, not {cfg.name!r}: "
            f"load it with zoo.load({saved.get('name')!r}, weights=...)"
        )
    arch = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.get("arch", {}).items()}
    return cfg.replace(num_classes=saved.get("num_classes"), input_size=saved.get("input_size"), **arch)
