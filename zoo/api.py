"""The public entry points: ``load``, ``save``, ``push_to_hub``, ``build``, ``to_keras``, ``to_torch``.

``load`` reads as reference -> record -> build -> state: :func:`zoo.refs.resolve` turns the
reference into the weights' record and tensors (and what to build); this module builds the
model and loads them. Frameworks are imported only inside these functions, so ``import zoo``
stays light.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import families
from .registry import ModelConfig, get_config

__all__ = ["load", "save", "push_to_hub", "PushResult", "build", "to_keras", "to_torch", "FRAMEWORKS"]

logger = logging.getLogger(__name__)

FRAMEWORKS = ("torch", "keras")


def build(cfg: ModelConfig, framework: str = "torch"):
    """Builds the architecture ``cfg`` describes, with freshly initialised weights.

    Each family is written once, in PyTorch (``zoo/torch/<family>.py``); its Keras model
    is that module translated by ``zoo.keras.translate`` (Keras' own initial weights).
    ``cfg.num_classes == 0`` builds a headless classifier: its ``forward`` returns the pooled
    features (timm's ``num_classes=0``).
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    build_family = families.builder(cfg.family)
    _check_size(cfg.replace(num_classes=1) if cfg.num_classes == 0 else cfg, build_family)
    if cfg.num_classes == 0:
        model = build_family(cfg.replace(num_classes=1))
        if not hasattr(model, "reset_classifier"):
            raise ValueError(f"num_classes=0 (a headless model) is for classifiers: {cfg.name} has no classifier "
                             "to remove")
        model.reset_classifier(0)
    else:
        model = build_family(cfg)
    if framework == "keras":
        from .keras.translate import translate

        model = translate(model, cfg.input_size, copy_weights=False, name=cfg.name or cfg.family)
    model.zoo_config = cfg
    return model


MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32; the largest registered architecture has 62 M


def _check_size(cfg: ModelConfig, build_family) -> None:
    """Refuses, in one line, a config whose model would not fit in memory (``num_classes`` of 10^9 in a
    config.json would otherwise end in an allocation error of a terabyte, or the kernel's OOM killer).

    The model is built on PyTorch's ``meta`` device (shapes, no memory) when the config differs from
    the registered one or its ``tiny`` variant; registered configs are trusted as they are.
    """
    import torch

    try:
        registered = get_config(cfg.name)
        if cfg in (registered, registered.replace(**registered.tiny)):
            return
    except (KeyError, TypeError, ValueError):  # an unregistered name, or overrides that do not apply
        pass
    with torch.device("meta"):
        params = sum(p.numel() for p in build_family(cfg).parameters())
    if params > MAX_PARAMETERS:
        raise ValueError(f"{cfg.name or cfg.family} with num_classes={cfg.num_classes} and its options would hold "
                         f"{params:.3g} parameters ({params * 4 / 1e9:.0f} GB), more than bnnzoo builds "
                         f"({MAX_PARAMETERS:.0e}): check num_classes and the architecture options (config.json)")


def load(reference: str, *, framework: str = "torch", weights: Optional[str] = None, pretrained: bool = False,
         num_classes: Optional[int] = None, input_size: Optional[int] = None, **arch: Any):
    """Builds a model from a reference, with its weights (timm's ``create_model``).

    Args:
        reference: ``NAME`` (a registered architecture, ``zoo.list_models()``), ``NAME.TAG``
            (registered weights: ``"meliusnet22.mnist"``), a folder or ``.safetensors`` file saved
            with :func:`save` (its ``config.json`` names the architecture), ``"hf-hub:owner/name[@rev]"``
            (a repo pushed with :func:`push_to_hub`), or ``"FILE.py:CLASS"`` (a ``torch.nn.Module``
            class of yours, imported because you name it). See :mod:`zoo.refs`.
        framework: ``"torch"`` (an ``nn.Module`` in eval mode) or ``"keras"``.
        weights: Weights of a ``NAME`` or ``FILE.py:CLASS``: ``None`` (initialised), ``"default"``,
            a tag, a folder, a ``.safetensors`` file or ``"hf-hub:owner/name[@rev]"``.
        pretrained: A bare ``NAME`` gets its default weights; same as ``weights="default"``.
        num_classes: Overrides the classifier size; 0 removes it (``forward`` returns pooled
            features). With weights of another size, every weight but the classifier is loaded and
            the classifier re-initialised (fine-tuning).
        input_size: Overrides the input side the model is built and measured for (a warning when
            it is far from the size the weights were trained at).
        **arch: Overrides of the architecture's own options (see ``get_config``).

    Returns:
        The model; ``model.zoo_weights`` holds the weights' record (:class:`zoo.weights.Weights`:
        preprocessing, labels, metrics; ``None`` for initialised weights), ``model.zoo_config``
        the registered config it was built from (a class of yours has none).

    Raises:
        UnknownModelError: An unknown ``NAME``.
        FileNotFoundError: A folder or file that does not exist.
        ValueError: Unknown framework, weights that do not fit the architecture, a bad reference.
    """
    from .refs import resolve

    if framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; expected one of {', '.join(FRAMEWORKS)}")
    r = resolve(reference, weights=weights, pretrained=pretrained, num_classes=num_classes, input_size=input_size,
                **arch)
    if framework != "torch" and (r.num_classes is not None or r.module_class is not None):
        return to_keras(_instantiate(r, "torch"))  # a new classifier or a class of yours: built in PyTorch first
    return _instantiate(r, framework)


def _instantiate(r, framework: str):
    """Builds what a :class:`zoo.refs.Resolved` names and loads its state."""
    from .weights import WeightMismatchError

    if r.module_class is not None:
        try:
            model = r.module_class()
        except TypeError as e:
            raise ValueError(f"{r.module_class.__name__} cannot be built without arguments ({e}): give its arguments "
                             "defaults, or add a subclass that passes them") from None
    else:
        model = build(r.config, framework)
    if r.state is not None:
        _load_state(model, r.state, framework)
    if r.num_classes is not None:
        if not hasattr(model, "reset_classifier"):
            raise WeightMismatchError(
                f"the weights of {r.reference!r} have {r.config.num_classes if r.config else '?'} outputs, not "
                f"num_classes={r.num_classes}, and {r.name} has no classifier to replace: drop num_classes")
        model.reset_classifier(r.num_classes)
        logger.warning("%s: loaded every weight but the classifier, %s", r.reference,
                       "removed (num_classes=0: the model returns pooled features)" if r.num_classes == 0 else
                       f"re-initialised for num_classes={r.num_classes}")
    model.zoo_weights = r.record
    if framework == "torch":
        model.eval()
    return model


def _load_state(model, state, framework: str) -> None:
    from .weights import WeightMismatchError

    if framework == "keras":
        from .keras.transfer import load_state_dict

        load_state_dict(model, state)
        return
    import torch

    own = model.state_dict()
    tensors = {k: torch.as_tensor(v) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in tensors and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in tensors if k not in own]
    wrong = [k for k in own if k in tensors and tuple(own[k].shape) != tuple(tensors[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[:1]}" if missing else f"unexpected {unexpected[:1]}" if unexpected
                  else f"{wrong[0]!r} has shape {tuple(tensors[wrong[0]].shape)}, "
                       f"expected {tuple(own[wrong[0]].shape)}")
        what = getattr(getattr(model, "zoo_config", None), "name", None) or type(model).__name__
        raise WeightMismatchError(
            f"weights do not fit {what} ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong)} wrongly shaped; {detail}): load them into the architecture they were saved from"
        )
    model.load_state_dict(tensors, strict=False)


def record_of(model, **fields: Any):
    """The record (:class:`zoo.weights.Weights`) :func:`save` writes for ``model``.

    The model's own ``zoo_weights`` (what it was loaded with), sized as it is built, with
    ``fields`` changed. A registered model without a record gets its family's preprocessing
    (:func:`zoo.weights.assumed_record`), with a warning unless ``mean`` and ``std`` are given.
    A module of yours without a record needs ``input_size`` (its number of outputs is measured).

    Raises:
        ValueError: A module of yours with neither a record nor ``input_size``; a bad field.
    """
    from .weights import Weights, assumed_record, describe_preprocessing

    fields = {k: v for k, v in fields.items() if v is not None}
    record, cfg = getattr(model, "zoo_weights", None), getattr(model, "zoo_config", None)
    if isinstance(cfg, ModelConfig):
        if record is None:
            record = assumed_record(cfg)
            if not {"mean", "std"} <= set(fields):
                logger.warning("%s carries no weights record (initialised weights?): recording %s; pass mean=, std= "
                               "(and labels=) to record what it was trained with", cfg.name,
                               describe_preprocessing(record))
        record = record.replace(arch=cfg.name, num_classes=cfg.num_classes, input_size=cfg.input_size,
                                arch_overrides=dict(cfg.arch))
    elif record is None:
        size = fields.get("input_size")
        if size is None:
            raise ValueError(f"{type(model).__name__} carries no weights record: pass input_size= (and mean=, std=, "
                             "labels=) to record the preprocessing it was trained with")
        record = Weights(arch="", module_class=type(model).__name__, num_classes=_outputs(model, size),
                         input_size=size)
    return record.without_location().replace(**fields)


def _outputs(model, size: int) -> int:
    """How many numbers ``model`` outputs per image at ``size`` (its classes, for a classifier)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, size, size))
    finally:
        model.train(was_training)
    return int(out.reshape(1, -1).shape[1])


def save(model, folder: str | os.PathLike, *, pack: bool = False, **fields: Any) -> Path:
    """Saves ``model.safetensors`` and ``config.json`` (the weights' record) into ``folder``.

    What every way of loading reads back: ``zoo.load(folder)`` rebuilds the model with no
    architecture named (``zoo.load("FILE.py:CLASS", weights=folder)`` for a class of yours),
    ``zoo.transforms`` gives the preprocessing, ``zoo.decode`` the labels.

    Args:
        model: A model from :func:`load` (its ``zoo_weights`` is the record written), or any
            ``nn.Module``; then ``input_size`` (and ``mean``, ``std``, ``labels``) say how it was trained.
        folder: Created if missing (its parent must exist).
        pack: Store the binary kernels as int8 signs (same outputs, about 4x smaller; for inference).
        **fields: Fields of the record to set (:class:`zoo.weights.Weights`): ``mean``, ``std``,
            ``crop_pct``, ``resize``, ``interpolation``, ``input_size``, ``labels``, ``dataset``,
            ``metrics``, ``notes``.

    Returns:
        The path of ``model.safetensors``.

    Raises:
        FileNotFoundError: The parent of ``folder`` does not exist.
        ValueError: A bad field, or a module with no record and no ``input_size``.
    """
    from . import weights

    record = record_of(model, **fields)
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"folder {folder.parent} does not exist; create it first")
    folder.mkdir(exist_ok=True)
    signs = weights.binary_weight_names(model) if pack else ()
    return weights.save(model.state_dict(), folder / weights.WEIGHTS_FILE, record, signs_of=signs)


@dataclass(frozen=True)
class PushResult:
    """What :func:`push_to_hub` did.

    Attributes:
        repo_id: The Hub repo.
        commit: The commit pushed (``None`` for a dry run).
        card_uploaded: Whether ``README.md`` was uploaded (a card edited on the Hub is kept).
        folder: The folder pushed (with the generated ``README.md``).
    """

    repo_id: str
    commit: Optional[str]
    card_uploaded: bool
    folder: str

    @property
    def reference(self) -> str:
        """What loads the pushed weights: ``hf-hub:owner/name@commit``."""
        return f"hf-hub:{self.repo_id}" + (f"@{self.commit}" if self.commit else "")


def push_to_hub(model_or_folder: Any, repo_id: str, *, revision: str = "main", private: bool = False,
                message: Optional[str] = None, overwrite_card: bool = False, dry_run: bool = False,
                **fields: Any) -> PushResult:
    """Publishes a model (or a folder saved with :func:`save`) to a Hugging Face Hub repo.

    The repo gets ``model.safetensors``, ``config.json`` (the record: ``zoo.load("hf-hub:owner/name")``
    needs nothing else) and a model card whose metrics are those measured for these weights
    (the architecture's published figures appear only as labelled context).

    Args:
        model_or_folder: A model (saved first, as :func:`save` does, with ``fields``) or a folder
            holding ``model.safetensors`` and ``config.json``.
        repo_id: ``owner/name``.
        revision: Branch to commit to (created if missing).
        private: Create the repo private.
        message: Commit message.
        overwrite_card: Replace a ``README.md`` that was edited on the Hub (kept otherwise).
        dry_run: Write ``README.md`` into the folder and upload nothing (a folder only).
        **fields: Record fields, as :func:`save` takes them (a model only).

    Returns:
        What was pushed; ``result.reference`` loads it.

    Raises:
        zoo.hub.HubError: Not logged in, or the Hub refused the upload.
        FileNotFoundError / ValueError: A folder without its files, weights that do not fit the
            architecture their record names, a bad repo name.
    """
    import tempfile

    from . import hub

    if not isinstance(repo_id, str) or not hub._REPO_ID.fullmatch(repo_id):
        raise ValueError(f"bad repo {repo_id!r}: expected owner/name")
    if isinstance(model_or_folder, (str, os.PathLike)):
        if fields:
            raise ValueError(f"record fields ({', '.join(fields)}) are for a model: save the folder again with "
                             "zoo.save(model, folder, ...) to change them")
        return _push_folder(Path(model_or_folder), repo_id, revision, private, message, overwrite_card, dry_run)
    if dry_run:
        raise ValueError("dry_run writes the card into a folder: zoo.save(model, folder) first, then push the folder")
    with tempfile.TemporaryDirectory(prefix="bnnzoo-push-") as tmp:
        save(model_or_folder, Path(tmp) / "model", **fields)
        return _push_folder(Path(tmp) / "model", repo_id, revision, private, message, overwrite_card, False)


def _push_folder(folder: Path, repo_id: str, revision: str, private: bool, message: Optional[str],
                 overwrite_card: bool, dry_run: bool) -> PushResult:
    from . import fileio, hub
    from .cards import model_card
    from .weights import CONFIG_FILE, WEIGHTS_FILE, read_record, read_safetensors

    for f in (WEIGHTS_FILE, CONFIG_FILE):
        if not (folder / f).is_file():
            raise FileNotFoundError(f"{folder / f} does not exist: write the folder with zoo.save(model, '{folder}')")
    record = read_record(folder / CONFIG_FILE)
    if record.arch:  # weights that do not fit the architecture their record names never reach the Hub
        record = load(str(folder)).zoo_weights
    else:  # a class of yours: nothing here may import it; the file must at least read
        read_safetensors(folder / WEIGHTS_FILE)
    card = hub.sign_card(model_card(record, repo_id=repo_id, sha256=fileio.sha256_of(folder / WEIGHTS_FILE)))
    fileio.write_text(folder / hub.README_FILE, card)
    if dry_run:
        return PushResult(repo_id, None, False, str(folder))
    commit, uploaded = hub.push_folder(folder, repo_id, revision=revision, private=private, message=message,
                                       overwrite_card=overwrite_card)
    if not uploaded:
        logger.warning("%s: the README.md on the Hub was edited there and is kept (overwrite_card=True, "
                       "--overwrite-card, replaces it)", repo_id)
    return PushResult(repo_id, commit, uploaded, str(folder))


def to_keras(model, input_size: Optional[int] = None):
    """The Larq/Keras model of a PyTorch model, with the same weights and outputs.

    Args:
        model: Any ``nn.Module`` built from the zoo's layers and plain torch ops, registered
            in the zoo or not (see ``zoo.keras.translate`` for the vocabulary).
        input_size: Side of the square input; defaults to the model's (``zoo_config``, else the
            ``zoo_weights`` record of a module of yours; required for a module that carries neither).

    Returns:
        A ``tf.keras.Model`` taking NHWC images; weight layers are named after the module
        paths. It carries ``zoo_config`` when the module does.

    Raises:
        zoo.keras.translate.UnsupportedOpError: The module uses an op outside the vocabulary.
        ValueError: No input size is known, or the module does not run at it.
    """
    from .keras.translate import translate

    keras_model = translate(model, input_size)
    cfg = getattr(model, "zoo_config", None)
    if isinstance(cfg, ModelConfig):
        keras_model.zoo_config = cfg if input_size in (None, cfg.input_size) else cfg.replace(input_size=input_size)
    record = getattr(model, "zoo_weights", None)
    keras_model.zoo_weights = record if record is None or input_size is None else record.for_model(
        record.num_classes, input_size)
    return keras_model


def to_torch(model):
    """The PyTorch twin of a zoo Keras model, with the same weights (eval mode)."""
    from .keras.transfer import state_dict

    cfg = _config_of(model)
    torch_model = build(cfg, "torch")
    _load_state(torch_model, state_dict(model), "torch")
    torch_model.zoo_weights = getattr(model, "zoo_weights", None)
    return torch_model.eval()


def _config_of(model) -> ModelConfig:
    cfg = getattr(model, "zoo_config", None)
    if not isinstance(cfg, ModelConfig):
        raise TypeError("expected a model built by zoo.load or zoo.build (it carries .zoo_config)")
    return cfg
