"""Imports the ReActNet authors' PyTorch checkpoints (github.com/liuzechun/ReActNet) into the zoo's models.

The authors publish two trained models (README of their repository, "Models" table), each a
OneDrive link to a file their training script wrote: ``torch.save({"epoch", "state_dict",
"best_top1_acc", "optimizer"})`` of a model wrapped in ``nn.DataParallel`` (every key starts
with ``module.``). Registered as ``WEIGHTS`` entries with ``importer="reactnet"``
(``zoo.load("reactnet_a.authors_in1k")``, ``zoo.load("reactnet_18.authors_in1k")``). OneDrive
links are not plain downloads and no checksum is published, so the file is placed by hand:
download it from the link the error message (and the model card) gives and save it as
``{cache}/reactnet/{filename}`` (``cache``: ``$BNNZOO_CACHE``, else ``$XDG_CACHE_HOME/bnnzoo``,
else ``~/.cache/bnnzoo``). Its sha256 is logged on load.

Reading: ``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only
(what the authors' files hold: tensors, numbers, the optimizer's dicts and lists): nothing in
the file can run code, and a file that needs more is refused in one line. The legacy
(pre-zip) format of PyTorch 1.4, which the authors used, is read the same way.

Mapping: every key of the authors' model (``module.`` prefix removed, ``num_batches_tracked``
ignored) has one rule (``REACTNET_CHECKPOINT`` in ``zoo/families/reactnet.py``) naming our
parameter, and every parameter of ours must be filled, with the same number of values; layouts
are converted (binary kernels stored flattened, ``(out * in * k * k, 1)``, as the authors'
ReActNet-A step 2 keeps them, become ``(out, in, k, k)``; their ``(1, C, 1, 1)`` shifts become ``(C,)``). Otherwise
:class:`zoo.weights.WeightMismatchError` names the key.

The authors binarize with ``torch.sign``, which maps 0 to 0; the zoo maps it to +1, as larq and
LCE do. A latent binary weight that is exactly 0 therefore differs: the importer counts them
and logs a warning when there are any (a random or trained float32 weight is almost never
exactly 0). The authors' binary convolutions pad with 0, so their weights need
``pad_value=0.0``, which the registered tags set.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import families
from .fileio import cache_root, sha256_of
from .hub import HubError
from .registry import ModelConfig
from .weights import WeightMismatchError, Weights

__all__ = ["read_checkpoint", "convert", "cache_path", "fetch", "load_registered", "load_checkpoint"]

log = logging.getLogger(__name__)

# backbone -> ((authors' key pattern, our key template), ...), from the family files that import
# the authors' checkpoints (``REACTNET_CHECKPOINT`` of ``zoo.families.reactnet``); {b} is our block
# index, {d} a duplicated 1x1 conv's, {0}, {1}... the pattern's groups.
_IMPORTERS = families.facts("REACTNET_CHECKPOINT")
_RULES = {backbone: rules for by_backbone in _IMPORTERS.values() for backbone, rules in by_backbone.items()}
# What a checkpoint may hold besides the model (the authors' save_checkpoint; ``arch`` as torchvision's).
_CHECKPOINT_EXTRAS = {"epoch", "best_top1_acc", "optimizer", "arch"}


# --------------------------------------------------------------------------- reading


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """The model tensors of an authors' checkpoint, ``module.`` prefixes removed.

    Accepts what their ``train.py`` saves (``{"epoch", "state_dict", "best_top1_acc", "optimizer"}``)
    or a bare state dict, in PyTorch's zip or legacy format.

    Raises:
        WeightMismatchError: Not a PyTorch checkpoint, one that needs code to load (refused:
            only tensors and plain containers are read), or no state dict of tensors in it.
    """
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightMismatchError(f"{path} holds objects other than tensors and plain values ({_one_line(e)[:200]}): "
                                  "refused, as loading them could run code; re-save its state_dict with "
                                  "torch.save(checkpoint['state_dict'], ...)") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise WeightMismatchError(f"cannot read {path} as a PyTorch checkpoint ({_one_line(e)[:200]}): it is "
                                  "truncated or not a .pth/.pth.tar file; download it again") from None
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else obj
    if not isinstance(state, Mapping) or not state:
        raise WeightMismatchError(f"{path} holds no state dict (a {type(obj).__name__}): expected the authors' "
                                  "checkpoint.pth.tar or a model's state_dict")
    extra = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if extra and state is obj and set(extra) <= _CHECKPOINT_EXTRAS:
        state = {k: v for k, v in state.items() if k not in _CHECKPOINT_EXTRAS}
    elif extra:
        raise WeightMismatchError(f"{path}: state dict entry {extra[0]!r} is a {type(state[extra[0]]).__name__}, "
                                  "not a tensor: is it a model checkpoint?")
    keys = list(state)
    prefixed = [k.startswith("module.") for k in keys]
    if any(prefixed) and not all(prefixed):
        raise WeightMismatchError(f"{path} mixes keys with and without the 'module.' prefix of nn.DataParallel "
                                  f"(e.g. {keys[prefixed.index(False)]!r}): is it one model's checkpoint?")
    return {(k[len("module."):] if k.startswith("module.") else k): state[k].detach().cpu().numpy() for k in keys}


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


# --------------------------------------------------------------------------- mapping


def _block_index(cfg: ModelConfig, backbone: str, groups: tuple) -> int:
    if backbone == "mobilenet_v1":
        return int(groups[0]) - 1
    stage, j = int(groups[0]), int(groups[1])
    per_stage = tuple(cfg.arch.get("blocks_per_stage", (4, 4, 4, 4)))
    if not 1 <= stage <= len(per_stage):
        raise WeightMismatchError(f"the checkpoint has a layer{stage}, {cfg.name} has {len(per_stage)} stages")
    return sum(per_stage[:stage - 1]) + j


def _ours(key: str, cfg: ModelConfig, backbone: str) -> str:
    """Our state-dict key for one of the authors' keys."""
    for pattern, template in _RULES[backbone]:
        m = re.fullmatch(pattern, key)
        if m:
            groups = m.groups()
            b = _block_index(cfg, backbone, groups) if "{b}" in template else None
            d = int(groups[1]) - 1 if "{d}" in template else None
            return template.format(*groups, b=b, d=d)
    raise WeightMismatchError(f"the checkpoint's {key!r} is no weight of the authors' "
                              f"{'ReActNet-A' if backbone == 'mobilenet_v1' else 'ReActNet-18'}: is it their "
                              f"checkpoint for {cfg.name}?")


def convert(state: Mapping[str, Any], cfg: ModelConfig, source: str = "the checkpoint") -> dict[str, np.ndarray]:
    """Maps the authors' state dict onto the PyTorch state dict of the model ``cfg`` describes.

    Args:
        state: As returned by :func:`read_checkpoint` (tensors or arrays, no ``module.`` prefix).
        cfg: A ``reactnet`` config (``pad_value=0.0`` for the authors' weights); its backbone
            (``mobilenet_v1``: ReActNet-A, ``resnet18``: ReActNet-18) picks the rules.
        source: How to name the file in messages.

    Returns:
        Our parameter names -> float32 arrays (no ``num_batches_tracked``).

    Raises:
        WeightMismatchError: A key of the checkpoint maps to no parameter, a parameter is left
            unfilled, or sizes differ; the message names the key.
    """
    if cfg.family not in _IMPORTERS:
        raise WeightMismatchError(f"ReActNet checkpoints import into {', '.join(_IMPORTERS)} models, not {cfg.name} "
                                  f"({cfg.family})")
    backbone = cfg.arch.get("backbone", "mobilenet_v1")
    model = families.builder(cfg.family)(cfg)  # the builder itself, not zoo.api
    own = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        ours = _ours(key, cfg, backbone)
        if ours not in own:
            raise WeightMismatchError(f"{source}: {key!r} maps to {ours!r}, which {cfg.name} does not have: the "
                                      f"checkpoint has more blocks or branches than this configuration")
        if ours in out:
            raise WeightMismatchError(f"{source} holds {ours!r} twice (as {key!r} too)")
        value = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, np.float32)
        if value.size != int(np.prod(own[ours])):
            raise WeightMismatchError(f"{source}: {key!r} has shape {value.shape} ({value.size} values), {ours} of "
                                      f"{cfg.name} needs {own[ours]}: the checkpoint is for another architecture "
                                      "or width")
        out[ours] = np.ascontiguousarray(value.reshape(own[ours]))  # flattened kernels, (1, C, 1, 1) shifts
    missing = [k for k in own if k not in out]
    if missing:
        raise WeightMismatchError(f"{source} has no weight for {missing[0]} ({len(missing)} of {len(own)} missing): "
                                  f"is it the authors' complete checkpoint for {cfg.name}?")
    zeros = sum(int((out[f"{n}.weight"] == 0).sum()) for n, m in model.named_modules()
                if getattr(m, "weight_quantizer", None) == "magnitude_aware_sign")
    if zeros:
        log.warning("%s: %d latent binary weights are exactly 0: the authors' torch.sign makes them 0, the zoo "
                    "(as LCE) +1, so outputs differ slightly from the authors' code", source, zeros)
    return out


# --------------------------------------------------------------------------- the registered files


def cache_path(w: Weights) -> Path:
    """Where the file of a registered ``importer="reactnet"`` entry is looked for (placed by hand)."""
    return cache_root() / "reactnet" / w.filename


def fetch(w: Weights) -> Path:
    """The local copy of ``w``'s file, placed by hand (see the module docstring).

    Raises:
        HubError: The file is not there (the message gives the authors' link and where to save
            it), or its sha256 differs from a registered one.
    """
    path = cache_path(w)
    if not path.is_file():
        raise HubError(f"{w.key} is the authors' checkpoint, published as a OneDrive link that cannot be downloaded "
                       f"automatically: open {w.url} in a browser, download the file and save it as {path}")
    digest = sha256_of(path)
    if w.sha256 and digest != w.sha256:
        raise HubError(f"{path} has sha256 {digest[:16]}..., not the registered {w.sha256[:16]}...: it is not the "
                       f"authors' file for {w.key}; download it again from {w.url}")
    log.info("%s: reading %s (sha256 %s; the authors publish no checksum)", w.key, path, digest)
    return path


def load_registered(key: str, w: Weights, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Reads and converts the file of a registered ``importer="reactnet"`` entry.

    Raises:
        HubError: The file is not in place (see :func:`fetch`).
        WeightMismatchError: The file does not fit ``cfg``.
    """
    path = fetch(w)
    return convert(read_checkpoint(path), cfg, source=f"{path} ({key})")


def load_checkpoint(path: str | Path, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Any authors'-layout checkpoint (their step 1 or 2, your own run of their code) as our state dict.

    Example::

        cfg = zoo.get_config("reactnet_a").replace(pad_value=0.0)
        model = zoo.build(cfg); model.load_state_dict(
            {k: torch.from_numpy(v) for k, v in load_checkpoint("checkpoint.pth.tar", cfg).items()}, strict=False)

    A step-1 checkpoint (binary activations, real weights) fits ``cfg.replace(weight_quantizer=None)``.
    """
    return convert(read_checkpoint(path), cfg, source=str(path))
