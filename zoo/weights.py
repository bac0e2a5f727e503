"""Weights metadata: one record per set of weights (:class:`Weights`), the ``WEIGHTS`` table, the file format.

A :class:`Weights` is this zoo's ``pretrained_cfg`` (timm's name for it): the architecture and
its builder arguments, the number of classes, the input size, the preprocessing (mean, std,
resize, crop, interpolation), the class names and what the weights were trained and measured
on. The same record is an entry of the ``WEIGHTS`` table (each family declares its records in
``zoo/families/<family>.py``; :mod:`zoo.families` fills the table), the ``config.json`` beside every
``model.safetensors`` (:meth:`Weights.to_dict`, read back by :func:`read_record`, as data only:
it never names code to import), and ``model.zoo_weights`` of a loaded model.

This module imports nothing that fetches or builds models; the resolver of model references
(:mod:`zoo.refs`) and the Hub client (:mod:`zoo.hub`) sit above it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .registry import ModelConfig, get_config

__all__ = ["Metric", "Weights", "WeightMismatchError", "WEIGHTS", "BUNDLED_DIR", "WEIGHTS_FILE", "CONFIG_FILE",
           "RECORD_FORMAT", "IMAGENET_MEAN", "IMAGENET_STD", "MNIST_MEAN", "MNIST_STD",
           "DETECTOR_MEAN", "DETECTOR_STD", "CROP_PCT", "assumed_record", "read_record",
           "input_size_of", "lookup", "default_tag", "list_weights", "save", "read_safetensors",
           "binary_weight_names"]

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "pretrained"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
RECORD_FORMAT = "bnnzoo-weights/1"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What recipes.data normalises the embedded MNIST digits with (grey, repeated over R, G, B).
MNIST_MEAN = (0.1307,) * 3
MNIST_STD = (0.3081,) * 3
CROP_PCT = 0.875  # ImageNet's 256 -> 224: resize the shorter side to input_size / 0.875, centre-crop
RESIZE_MODES = ("shorter", "squash")
INTERPOLATIONS = ("bilinear",)  # what zoo.transforms and a deploy bundle's run.py implement
# What recipes/plates trains every detector on (pixels in [-1, 1]; recipes.plates.dataset reads them here).
DETECTOR_MEAN = DETECTOR_STD = (0.5, 0.5, 0.5)


class WeightMismatchError(ValueError):
    """Weights that do not fit the architecture they are loaded into."""


@dataclass(frozen=True)
class Metric:
    """One accuracy figure with where it comes from."""

    name: str
    value: float
    dataset: str
    source: str  # "measured: <command>" or "published: <paper/table>"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``config.json``'s ``metrics`` list."""
        return dataclasses.asdict(self)


def _str(key: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{key} takes a string, not {v!r}")
    return v


def _count(key: str, v: Any, least: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < least:
        raise ValueError(f"{key} takes a {'positive' if least else 'non-negative'} integer, not {v!r}")
    return v


def _number(key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key} takes a number, not {v!r}")
    return float(v)


def _rgb(key: str, v: Any, positive: bool = False) -> tuple[float, float, float]:
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or len(v) != 3:
        raise ValueError(f"{key} takes 3 numbers (R, G, B), not {v!r}")
    values = tuple(_number(key, x) for x in v)
    if positive and min(values) <= 0:
        raise ValueError(f"{key} takes 3 positive numbers, not {v!r}")
    return values


def _choice(key: str, v: Any, choices: Sequence[str]) -> str:
    if v not in choices:
        raise ValueError(f"{key} takes one of {', '.join(map(repr, choices))}, not {v!r}")
    return v


def _tuples(v: Any) -> Any:
    """JSON lists back to the tuples builder arguments are written with (nested too)."""
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def _lists(v: Any) -> Any:
    return [_lists(x) for x in v] if isinstance(v, (tuple, list)) else v


def _overrides(key: str, v: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v):
        raise ValueError(f"{key} takes an object of builder arguments, not {v!r}")
    return {k: _tuples(x) for k, x in v.items()}


def _strings(key: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{key} takes a list of strings, not {v!r}")
    return tuple(v)


def _metrics(key: str, v: Any) -> tuple[Metric, ...]:
    if isinstance(v, (str, bytes)) or not isinstance(v, Sequence):
        raise ValueError(f"{key} takes a list of {{name, value, dataset, source}} objects, not {v!r}")
    out = []
    for m in v:
        if isinstance(m, Metric):
            out.append(m)
            continue
        names = [f.name for f in dataclasses.fields(Metric)]
        if not isinstance(m, Mapping) or sorted(m) != sorted(names):
            raise ValueError(f"{key} takes a list of {{name, value, dataset, source}} objects, not {m!r}")
        out.append(Metric(_str(f"{key}.name", m["name"]), _number(f"{key}.value", m["value"]),
                          _str(f"{key}.dataset", m["dataset"]), _str(f"{key}.source", m["source"])))
    return tuple(out)


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{key} takes true or false, not {v!r}")
    return v


def _crop(key: str, v: Any) -> float:
    v = _number(key, v)
    if not 0 < v <= 1:
        raise ValueError(f"{key} takes a number in (0, 1], not {v!r}")
    return v


# Each field's check: it returns the value normalised (tuples, floats) or raises a one-line ValueError naming it.
_CHECKS = {
    "arch": _str, "tag": _str, "num_classes": lambda k, v: _count(k, v, 0),
    "input_size": lambda k, v: _count(k, v, 1), "mean": _rgb, "std": lambda k, v: _rgb(k, v, positive=True),
    "crop_pct": _crop, "resize": lambda k, v: _choice(k, v, RESIZE_MODES),
    "interpolation": lambda k, v: _choice(k, v, INTERPOLATIONS), "arch_overrides": _overrides,
    "labels": _strings, "dataset": _str, "metrics": _metrics, "notes": _str, "module_class": _str,
    "hub_repo": _str, "revision": _str, "filename": _str, "sha256": _str, "importer": _str, "default": _bool,
    "url": _str,
}
# Where a registered file comes from: not part of what the weights are, left out of config.json when empty.
_LOCATION = ("tag", "hub_repo", "revision", "filename", "sha256", "importer", "default", "url")


@dataclass(frozen=True, kw_only=True)
class Weights:
    """One set of weights and everything needed to use them (timm's ``pretrained_cfg``).

    Attributes:
        arch: Registered architecture the weights fit (empty for a module of your own:
            ``module_class`` names it).
        num_classes: Outputs of the classifier (0: a headless model, pooled features).
        input_size: Input side the weights were trained and are measured at.
        tag: The name after the dot in ``zoo.load("arch.tag")`` (registered weights).
        mean: Per-channel mean subtracted from RGB inputs scaled to [0, 1].
        std: Per-channel std the centred inputs are divided by.
        crop_pct: Share of the resized shorter side the centre crop keeps (ImageNet 0.875; 1.0
            for weights trained on whole images); see :func:`zoo.transforms`.
        resize: ``"shorter"`` (scale the shorter side, centre-crop) or ``"squash"`` (the whole
            image to the square: detectors, whose boxes are relative to the whole image).
        interpolation: Resampling filter of the resize (``"bilinear"``).
        arch_overrides: Builder arguments over the registered defaults (``config.json`` holds
            them all, so the architecture is pinned even if the registry's defaults change).
        labels: Class names, in output order (empty: not recorded).
        dataset: What the weights were trained on.
        metrics: Accuracy figures of these weights, each saying where it comes from.
        notes: Caveats of these weights, shown on their model card.
        module_class: For a module of your own (``FILE.py:CLASS``), the class name the weights
            were saved from. Only ever compared with the class you name: nothing is imported by it.
        hub_repo: Hugging Face Hub repo (``owner/name``); with an ``importer``, the upstream
            repository (e.g. the GitHub repo ``larq/zoo``); empty: no Hub file.
        revision: Hub commit; with an ``importer``, the upstream release tag.
        filename: File in the repo; with an ``importer``, the release asset; for weights that
            ship inside the package, their file in ``zoo/pretrained/`` (``BUNDLED_DIR``).
        sha256: Hex sha256 of that file, checked before it is used.
        importer: ``""`` for a bnnzoo ``model.safetensors``; ``"larq_zoo"`` for a larq-zoo
            release file converted on load (:mod:`zoo.larq_import`); ``"reactnet"`` for the ReActNet
            authors' PyTorch checkpoint, converted on load (:mod:`zoo.reactnet_import`).
        default: The tag ``zoo.load(arch, pretrained=True)`` (and ``weights="default"``) loads;
            exactly one per architecture that has weights.
        url: Where the file is published when it is no release asset of ``hub_repo`` (the ReActNet
            authors' OneDrive links): the page to download it from by hand.

    Raises:
        ValueError: A field of the wrong type or out of range (one line naming it).
    """

    arch: str
    num_classes: int
    input_size: int
    tag: str = ""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = CROP_PCT
    resize: str = "shorter"
    interpolation: str = "bilinear"
    arch_overrides: Mapping[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    dataset: str = ""
    metrics: tuple[Metric, ...] = ()
    notes: str = ""
    module_class: str = ""
    hub_repo: str = ""
    revision: str = ""
    filename: str = ""
    sha256: str = ""
    importer: str = ""
    default: bool = False
    url: str = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _CHECKS[f.name](f.name, getattr(self, f.name)))

    @property
    def key(self) -> str:
        """``arch.tag``, the name ``zoo.load`` takes (``arch`` alone without a tag)."""
        return f"{self.arch}.{self.tag}" if self.tag else self.arch or self.module_class

    @property
    def source(self) -> str:
        """Where the file comes from, in words."""
        if self.importer == "larq_zoo":
            return f"larq-zoo release {self.revision} (github.com/{self.hub_repo}), imported"
        if self.importer == "reactnet":
            return f"the authors' checkpoint (github.com/{self.hub_repo}), placed by hand, imported"
        if self.hub_repo:
            return f"hf-hub:{self.hub_repo}@{self.revision[:12]}"
        if self.filename:
            return "ships with bnnzoo (zoo/pretrained/)"
        return "a local file"

    def config(self) -> ModelConfig:
        """The registered architecture these weights fit, with their classes, size and builder arguments.

        Raises:
            zoo.UnknownModelError: ``arch`` is not registered (or the record is of a module of your own).
            TypeError: ``arch_overrides`` names an option the architecture does not take.
        """
        return get_config(self.arch).replace(num_classes=self.num_classes, input_size=self.input_size,
                                              **dict(self.arch_overrides))

    def replace(self, **changes: Any) -> "Weights":
        """A copy with fields changed (checked as at construction)."""
        return dataclasses.replace(self, **changes)

    def for_model(self, num_classes: int, input_size: int) -> "Weights":
        """The record of a model built from these weights with another classifier or input size.

        A new classifier has no names and neither size keeps the measured figures, so labels
        (new classifier) and metrics (either change) are dropped.
        """
        changes: dict[str, Any] = {}
        if num_classes != self.num_classes:
            changes.update(num_classes=num_classes, labels=(), metrics=())
        if input_size != self.input_size:
            changes.update(input_size=input_size, metrics=())
        return self.replace(**changes) if changes else self

    def without_location(self) -> "Weights":
        """The record as ``config.json`` beside a copy of the weights holds it: no registry tag or file."""
        return self.replace(**{k: _FIELDS[k].default for k in _LOCATION})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``config.json`` (:meth:`from_dict` reads it back, strictly)."""
        d: dict[str, Any] = {"format": RECORD_FORMAT}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _LOCATION and value == f.default:
                continue
            d[f.name] = ([m.to_dict() for m in value] if f.name == "metrics" else
                         {k: _lists(v) for k, v in value.items()} if f.name == "arch_overrides" else _lists(value))
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str = "") -> "Weights":
        """The record of a ``config.json`` object: only known keys, each of its type (data, never code).

        Args:
            d: The parsed JSON object.
            where: Prefix of error messages (``"config run7/config.json: "``).

        Raises:
            ValueError: Not an object, another format, an unknown or missing key, or a value of
                the wrong type: one line naming the key.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}holds a JSON {type(d).__name__}, expected an object")
        d = dict(d)
        fmt = d.pop("format", None)
        if fmt != RECORD_FORMAT:
            raise ValueError(f"{where}'format' is {fmt!r}, expected {RECORD_FORMAT!r}: write it with zoo.save")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(_FIELDS), n=1)
            raise ValueError(f"{where}unknown key {unknown[0]!r}" + (f" (did you mean {close[0]!r}?)" if close else
                                                                     f"; keys: {', '.join(_FIELDS)}"))
        missing = [k for k in ("arch", "num_classes", "input_size") if k not in d]
        if missing:
            raise ValueError(f"{where}missing key {missing[0]!r}")
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{where}{e}") from None


_FIELDS = {f.name: f for f in dataclasses.fields(Weights)}


def assumed_record(cfg: ModelConfig) -> Weights:
    """The record of weights of ``cfg`` that record none: the family's training reader's preprocessing.

    A detector is read as ``recipes/plates`` trains it (the whole image squashed to the square,
    pixels in [-1, 1], boxes of plates); any other model as ImageNet (shorter side to ``input_size / 0.875``,
    centre crop, ImageNet mean and std).
    """
    if cfg.task == "detect":
        return Weights(arch=cfg.name, num_classes=cfg.num_classes, input_size=cfg.input_size, mean=DETECTOR_MEAN,
                       std=DETECTOR_STD, crop_pct=1.0, resize="squash", arch_overrides=dict(cfg.arch),
                       labels=("plate",))
    return Weights(arch=cfg.name, num_classes=cfg.num_classes, input_size=cfg.input_size,
                   arch_overrides=dict(cfg.arch))


def describe_preprocessing(w: Weights) -> str:
    """The preprocessing of a record in words (what a warning says was assumed)."""
    resize = ("the whole image squashed to the square" if w.resize == "squash" else
              f"shorter side to {w.input_size}/{w.crop_pct:g} then centre crop")
    labels = f"{len(w.labels)} label{'s' if len(w.labels) > 1 else ''}" if w.labels else "no labels"
    return f"{w.input_size}x{w.input_size}, {resize}, mean {list(w.mean)}, std {list(w.std)}, {labels}"


def read_record(config_json: Union[str, Path], **location: str) -> Weights:
    """The record in a ``config.json`` beside weights, read as data; ``location`` (``hub_repo``, ``revision``)
    says where the file was read from.

    A file written before records existed (``{"name", "family", "arch", "num_classes",
    "input_size"}``: the architecture only) gives :func:`assumed_record` of that architecture,
    with a one-line warning naming what was assumed.

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not JSON, not an object, or not a record (one line naming the file and key).
    """
    from .fileio import read_json

    path = Path(config_json)
    fix = "it should be the config.json zoo.save wrote beside the weights"
    saved = read_json(path, "config", fix)
    where = f"config {path}: "
    if "format" in saved or not {"name", "family"} <= set(saved):
        try:
            return Weights.from_dict({**saved, **location}, where)
        except ValueError as e:
            raise ValueError(f"{e}: {fix}") from None
    # The architecture-only config.json of bnnzoo before records.
    arch = saved.get("arch", {})
    if not isinstance(arch, dict):
        raise ValueError(f"{where}'arch' holds a JSON {type(arch).__name__}, expected an object: {fix}")
    if not isinstance(saved["name"], str):
        raise ValueError(f"{where}'name' takes a registered model name, not {saved['name']!r}: {fix}")
    try:
        cfg = get_config(saved["name"]).replace(num_classes=saved.get("num_classes"),
                                                input_size=saved.get("input_size"), **_overrides("arch", arch))
    except (TypeError, ValueError) as e:
        raise WeightMismatchError(f"{where}{e}: {fix}") from None
    record = assumed_record(cfg).replace(**location)
    logger.warning("%s records no preprocessing (written by an older bnnzoo): assumed %s; save the model again with "
                   "zoo.save(model, folder, mean=..., std=..., labels=...) to record what it was trained with",
                   path, describe_preprocessing(record))
    return record


def input_size_of(model: Any) -> Optional[int]:
    """The input side of a model: its ``zoo_config``'s, else its ``zoo_weights``' (None: neither)."""
    for attr in ("zoo_config", "zoo_weights"):
        size = getattr(getattr(model, attr, None), "input_size", None)
        if size:
            return int(size)
    return None


# Every registered set of weights, ``"arch.tag"`` -> record: filled by :mod:`zoo.families` from each
# family's ``WEIGHTS`` (imported with ``zoo``).
WEIGHTS: dict[str, Weights] = {}


def read_safetensors(path: Path) -> dict[str, Any]:
    """Reads a safetensors file into numpy arrays, with a clear error for a bad file."""
    import numpy as np
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightMismatchError(f"cannot read weights {path}: {e}; is it a .safetensors file?") from None
    # Binary-conv kernels saved as their signs (save(..., signs_of=...)) come back as float +-1.
    return {k: v.astype(np.float32) if v.dtype == np.int8 else v for k, v in arrays.items()}


def binary_weight_names(model) -> list[str]:
    """State-dict keys of a PyTorch zoo model's sign-quantized conv kernels (only their signs matter)."""
    from .torch.layers import BinaryConv2d

    return [f"{name}.weight" for name, m in model.named_modules()
            if isinstance(m, BinaryConv2d) and m.weight_quantizer == "ste_sign"]


def save(state: Mapping[str, Any], path: str | Path, record: Union[Weights, ModelConfig, None] = None,
         signs_of: Sequence[str] = ()) -> Path:
    """Writes ``model.safetensors`` (+ ``config.json``, the record, when given), each atomically.

    The lower level of :func:`zoo.save`, which makes the record from the model.

    Args:
        state: PyTorch-named tensors or arrays.
        path: The ``.safetensors`` file to write.
        record: The :class:`Weights` record written beside it as ``config.json`` (without its
            registry tag and file). A ``ModelConfig`` records the architecture with
            :func:`assumed_record`'s preprocessing, and says so in a warning.
        signs_of: Keys stored as int8 signs (+1 for 0, as the quantizer): the binary kernels
            (:func:`binary_weight_names`) of a model saved for inference, 4x smaller. The
            outputs are unchanged; fine-tuning restarts from +-1 latent weights.

    Raises:
        FileNotFoundError: The folder does not exist.
    """
    import numpy as np
    from safetensors.numpy import save_file

    from . import fileio

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist; create it first")
    if isinstance(record, ModelConfig):
        cfg, record = record, assumed_record(record)
        logger.warning("%s: config.json records %s with assumed preprocessing (%s): pass the Weights record, or "
                       "save with zoo.save(model, folder, mean=..., std=...)", path, cfg.name,
                       describe_preprocessing(record))
    # num_batches_tracked is PyTorch bookkeeping with no Keras twin: not part of the artifact.
    arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in state.items() if not k.endswith("num_batches_tracked")}
    unknown = [k for k in signs_of if k not in arrays]
    if unknown:
        raise KeyError(f"signs_of names {unknown[0]!r}, which the state does not hold")
    for k in signs_of:
        arrays[k] = np.where(arrays[k] >= 0, 1, -1).astype(np.int8)
    fileio.atomic_write(path, lambda tmp: save_file(arrays, tmp))
    if record is not None:
        fileio.write_text(path.parent / CONFIG_FILE, json.dumps(record.without_location().to_dict(), indent=2,
                                                                ensure_ascii=False) + "\n")
    return path


def list_weights(arch: str) -> list[Weights]:
    """The registered weights of ``arch``, the default first (empty when it has none)."""
    found = [w for w in WEIGHTS.values() if w.arch == arch]
    return sorted(found, key=lambda w: not w.default)


def default_tag(arch: str) -> Optional[str]:
    """The tag marked ``default`` among ``arch``'s weights (``None``: it has no weights)."""
    return next((w.tag for w in WEIGHTS.values() if w.arch == arch and w.default), None)


def lookup(cfg: ModelConfig, tag: str) -> tuple[str, Weights]:
    """The registered ``WEIGHTS`` entry for ``tag`` of ``cfg.name`` (``"default"``: the entry
    marked ``default=True``).

    Raises:
        WeightMismatchError: No such tag; the message lists the known ones.
    """
    prefix = cfg.name + "."
    if tag == "default":
        tag = default_tag(cfg.name) or tag
    key = prefix + tag
    if key not in WEIGHTS:
        tags = [k[len(prefix):] for k in WEIGHTS if k.startswith(prefix)]
        close = difflib.get_close_matches(tag, tags, n=3)
        known = (f"known tags: {', '.join(tags)}" if tags else
                 "none are registered yet; pass weights=None or a .safetensors path")
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise WeightMismatchError(f"no weights {tag!r} for {cfg.name}: {hint}{known}")
    return key, WEIGHTS[key]
