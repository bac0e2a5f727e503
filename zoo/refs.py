"""Model references: the one grammar of ``zoo.load`` and of every command that takes a model.

A reference is one of (timm's, plus a module of your own)::

    NAME                      a registered architecture (initialised weights; pretrained=True: its default weights)
    NAME.TAG                  registered weights (zoo.list_weights(NAME))
    FOLDER, FILE.safetensors  a folder holding model.safetensors + config.json, or the weights file
                              (config.json beside it)
    hf-hub:OWNER/NAME[@REV]   a Hub repo pushed with zoo.push_to_hub or bnnzoo push (hf_hub: too)
    FILE.py:CLASS             a torch.nn.Module class of yours, its weights given by weights=

and ``weights=`` (``--weights`` on the command line) gives a ``NAME`` or ``FILE.py:CLASS`` its
weights: ``TAG`` (with ``NAME``), ``"default"``, ``FOLDER``, ``FILE.safetensors`` or ``hf-hub:REPO``.

:func:`resolve` is the one place where a reference becomes a record (:class:`zoo.weights.Weights`,
what the weights are: architecture, preprocessing, labels, metrics) and a state (the tensors);
``zoo.load`` only builds the model and loads the state. The record of a folder, a file or a
Hub repo is its ``config.json``, which names the architecture, so no architecture needs to be
named. A ``config.json`` is read as data: it never names code to import; a ``FILE.py:CLASS``
is imported only when a caller names it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import hub
from . import weights as _weights
from .fileio import sha256_of
from .hub import HubError
from .registry import ModelConfig, UnknownModelError, get_config
from .weights import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    WeightMismatchError,
    Weights,
    assumed_record,
    describe_preprocessing,
    lookup,
    read_record,
    read_safetensors,
)

__all__ = ["Resolved", "resolve", "locate", "split", "short_name", "is_file_class", "import_class", "fetch_registered",
           "bundled_file", "with_arch", "FAR_INPUT_SIZE"]

logger = logging.getLogger(__name__)

_FILE_CLASS = re.compile(r"(?P<file>.+\.py):(?P<cls>[A-Za-z_]\w*)")
# Suffixes of files people pass where weights go that bnnzoo does not read (it reads .safetensors).
_FOREIGN_SUFFIXES = (".h5", ".keras", ".pt", ".pth", ".onnx", ".tflite", ".json", ".npz", ".ckpt", ".bin", ".pb")
# An input size this many times larger or smaller than the weights' trained size gets a warning.
FAR_INPUT_SIZE = 2.0


@dataclass(frozen=True)
class Resolved:
    """What a model reference names: what to build, the weights' record and their tensors.

    Attributes:
        reference: The reference as given.
        name: A short name for files made from it (``meliusnet22_mnist``, ``run7``, ``TinyBNN``).
        config: The registered architecture to build (``None`` for a module class of yours).
        module_class: The ``torch.nn.Module`` class of a ``FILE.py:CLASS`` reference.
        record: What the weights are (``None``: initialised weights); ``model.zoo_weights``.
        state: The weights' tensors by PyTorch name (``None``: initialised weights).
        num_classes: A classifier size to put in after the weights are loaded (fine-tuning;
            0: headless), or ``None`` to keep the weights' own.
    """

    reference: str
    name: str
    config: Optional[ModelConfig]
    module_class: Optional[type]
    record: Optional[Weights]
    state: Optional[dict[str, Any]]
    num_classes: Optional[int] = None


@dataclass(frozen=True)
class _Source:
    """Where weights are: their record (None: none recorded) and how to read their tensors."""

    where: str
    record: Optional[Weights]
    read: Callable[[ModelConfig], dict[str, Any]]
    files: tuple[Path, ...] = ()


def is_file_class(reference: Any) -> bool:
    """Whether ``reference`` is ``FILE.py:CLASS``."""
    return isinstance(reference, str) and _FILE_CLASS.fullmatch(reference) is not None


def with_arch(source: str, weights: Optional[str] = None, arch: Optional[str] = None) -> tuple[str, Optional[str]]:
    """``(reference, weights)`` for :func:`resolve` of a model given with an architecture: a ``.safetensors`` file
    without ``config.json`` beside it (``FILE --arch NAME``) is ``NAME`` with the weights ``FILE``.

    Raises:
        ValueError: ``arch`` with ``weights``, or with a model that is not a weights file.
    """
    if not arch:
        return source, weights
    if weights:
        raise ValueError(f"--arch names the architecture of weights given as MODEL: drop --weights {weights}, or "
                         f"give bnnzoo {arch} --weights {weights}")
    if is_file_class(source) or source.startswith(("hf-hub:", "hf_hub:")) or not (
            os.sep in source or "/" in source or source.endswith(".safetensors") or os.path.exists(source)):
        raise ValueError(f"--arch is for a .safetensors file without config.json beside it, not {source}")
    return arch, source


def resolve(reference: Any, *, weights: Any = None, pretrained: bool = False, num_classes: Optional[int] = None,
            input_size: Optional[int] = None, **arch: Any) -> Resolved:
    """Turns a model reference (module docstring) into what to build, a record and a state.

    Args:
        reference: ``NAME[.TAG]``, a folder or ``.safetensors`` file, ``hf-hub:OWNER/NAME[@REV]``
            or ``FILE.py:CLASS``.
        weights: Weights of a ``NAME`` or ``FILE.py:CLASS``: a tag, ``"default"``, a folder, a
            ``.safetensors`` file or ``hf-hub:REPO``.
        pretrained: A bare ``NAME`` gets its default weights (``weights="default"``).
        num_classes: The classifier size wanted. With weights of another size, every weight but
            the classifier is loaded and the classifier replaced (0: removed, pooled features).
        input_size: The input side wanted (wins over the weights' size, with a warning when far
            from it; refused for detectors, whose outputs depend on it).
        **arch: Overrides of the architecture's builder arguments.

    Raises:
        UnknownModelError: An unknown ``NAME`` (the message suggests close names).
        FileNotFoundError: A folder or file that does not exist.
        WeightMismatchError: A record of another architecture, an unknown tag, weights named twice.
        zoo.hub.HubError: Weights that could not be fetched, or whose checksum does not match.
        ValueError / TypeError: A reference that is none of the above, a bad ``config.json``.
    """
    reference = _as_text(reference, "model reference")
    kind, body, cfg = _parse(reference)
    if weights is not None:
        weights = _as_text(weights, "weights")
        if kind in ("path", "hub") or (kind == "registered" and "." in body):
            raise WeightMismatchError(f"{reference!r} names its weights already: drop weights={weights!r}"
                                      + (f", or pass the model as {body.partition('.')[0]!r}" if kind == "registered"
                                         else ""))
    elif pretrained and kind == "registered" and "." not in body:
        weights = "default"
    module_class, name = None, _short_name(kind, body)
    if kind == "class":
        module_class = import_class(body)
    elif kind == "registered" and "." in body:
        weights = body.partition(".")[2]
    source = None
    if kind in ("path", "hub"):
        source = _locate(kind, body)
    elif weights is not None:
        wkind, wbody = _parse_weights(weights, cfg)
        source = _locate(wkind, wbody, cfg)
    record = source.record if source else None
    if source is not None and cfg is None and module_class is None:  # the record names the architecture
        cfg = _architecture(source)
    if source is not None and record is None:
        if cfg is None:  # a module of yours, weights with no config.json: nothing to assume from
            logger.warning("%s has no %s beside it: %s carries no preprocessing (give input_size, mean and std where "
                           "they are needed, or save with zoo.save to record them)", source.where, CONFIG_FILE,
                           module_class.__name__)
        else:  # the architecture as the caller builds it is all there is to go on
            record = assumed_record(cfg.replace(num_classes=num_classes, input_size=input_size, **arch))
            logger.warning("%s has no %s beside it: assumed %s (save with zoo.save to record the weights' "
                           "preprocessing)", source.where, CONFIG_FILE, describe_preprocessing(record))
    if record is not None:
        _check_same_model(record, cfg, module_class, source.where)
    return _fit(reference, name, cfg, module_class, record, source, num_classes, input_size, arch)


def locate(reference: Any, *, weights: Any = None, force: bool = False) -> list[Path]:
    """The local files of a reference's weights, fetched (or found in the caches) and checked.

    What ``bnnzoo download`` warms: a bare ``NAME`` means its default weights.

    Raises:
        As :func:`resolve`; WeightMismatchError also for a reference without weights.
    """
    reference = _as_text(reference, "model reference")
    kind, body, cfg = _parse(reference)
    if kind == "registered":
        weights = body.partition(".")[2] or weights or "default"
        kind, body = _parse_weights(_as_text(weights, "weights"), cfg)
    elif kind == "class":
        if weights is None:
            raise WeightMismatchError(f"{reference} names no weights: give weights= (--weights)")
        kind, body = _parse_weights(_as_text(weights, "weights"), None)
    return list(_locate(kind, body, cfg, force=force, read=False).files)


def split(reference: Any) -> tuple[str, Optional[str]]:
    """The registered architecture a reference builds and the ``weights=`` that gives it its weights.

    ``"meliusnet22.mnist"`` -> ``("meliusnet22", "mnist")``; ``"run7/"`` -> ``(its record's
    architecture, "run7/")``; ``"meliusnet22"`` -> ``("meliusnet22", None)``. A Hub reference
    fetches its ``config.json`` only.

    Raises:
        As :func:`resolve`; ValueError for ``FILE.py:CLASS`` (no registered architecture).
    """
    reference = _as_text(reference, "model reference")
    kind, body, _ = _parse(reference)
    if kind == "class":
        raise ValueError(f"{reference} is a class of yours, not a registered architecture: give NAME[.TAG], a "
                         "folder or hf-hub:REPO")
    if kind == "registered":
        base, _, tag = body.partition(".")
        return base, tag or None
    return _architecture(_locate(kind, body, read=False) if kind == "path" else
                         _Source(body, read_record(hub.fetch_config(body)[2]), lambda c: {})).name, reference


# --------------------------------------------------------------------------- parsing


def _as_text(value: Any, what: str) -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if not isinstance(value, str):
        raise TypeError(f"{what} takes a str (NAME[.TAG], a folder or file, hf-hub:REPO or FILE.py:CLASS), "
                        f"not {value!r}")
    if not value.strip():
        raise ValueError(f"empty {what}: give NAME[.TAG], a folder or file, hf-hub:REPO or FILE.py:CLASS")
    return value


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.startswith((".", "~")) or text.endswith(".safetensors")
            or (os.altsep is not None and os.altsep in text))


def _parse(reference: str) -> tuple[str, str, Optional[ModelConfig]]:
    """``(kind, body, config)``: kind is ``"hub"``, ``"class"``, ``"path"`` or ``"registered"`` (with its
    registered config)."""
    if reference.startswith(hub.HUB_PREFIXES):
        return "hub", reference, None
    if _FILE_CLASS.fullmatch(reference):
        return "class", reference, None
    if _looks_like_path(reference):
        return "path", reference, None
    base, dot, tag = reference.partition(".")
    if dot and Path(reference).suffix.lower() in _FOREIGN_SUFFIXES:
        raise ValueError(f"{reference!r} is a {Path(reference).suffix} file: bnnzoo reads weights from a folder or "
                         f"a .safetensors file saved with zoo.save (models: NAME[.TAG], see zoo.list_models())")
    try:
        cfg = get_config(base)
    except UnknownModelError:
        if os.path.exists(reference):  # a folder or file here whose name is no registered model
            return "path", reference, None
        raise
    if dot and not tag:
        raise ValueError(f"{reference!r} has an empty weights tag: write {base!r} or {base + '.TAG'!r}")
    if "." in tag:
        raise ValueError(f"{reference!r} is not NAME.TAG: a tag has no dot (zoo.list_weights({base!r}))")
    return "registered", reference, cfg


def _parse_weights(weights: str, cfg: Optional[ModelConfig]) -> tuple[str, str]:
    """The kind of a ``weights=`` value: ``"hub"``, ``"path"`` or ``"tag"``."""
    if weights.startswith(hub.HUB_PREFIXES):
        return "hub", weights
    if _looks_like_path(weights) or os.path.exists(weights) or cfg is None:
        return "path", weights
    if Path(weights).suffix.lower() in _FOREIGN_SUFFIXES:
        raise ValueError(f"weights {weights!r} is a {Path(weights).suffix} file: bnnzoo reads a folder or a "
                         f".safetensors file saved with zoo.save")
    return "tag", weights


def short_name(reference: str) -> str:
    """A short name for files made from a reference: ``meliusnet22_mnist``, ``run7``, ``my-bnn``, ``TinyBNN``."""
    return _short_name(*_parse(_as_text(reference, "model reference"))[:2])


def _short_name(kind: str, body: str) -> str:
    if kind == "registered":
        return body.replace(".", "_")
    if kind == "class":
        return _FILE_CLASS.fullmatch(body)["cls"]
    if kind == "hub":  # hf-hub:owner/name[@revision] -> name
        return body.partition(":")[2].partition("@")[0].rpartition("/")[2]
    path = Path(os.path.expanduser(body))
    return (path.parent.name if path.is_file() and path.stem == "model" else path.stem if path.suffix else
            path.resolve().name) or "model"


# --------------------------------------------------------------------------- sources of weights


def _locate(kind: str, body: str, cfg: Optional[ModelConfig] = None, *, force: bool = False,
            read: bool = True) -> _Source:
    """Where the weights of a ``hub``, ``path`` or ``tag`` reference are (fetched unless ``read`` is False
    and there is nothing to fetch)."""
    if kind == "hub":
        repo_id, revision, config_path = hub.fetch_config(body, force=force)
        record = read_record(config_path, hub_repo=repo_id, revision=revision)
        where = f"{hub.HUB_PREFIX}{repo_id}@{revision}"

        def fetch_weights(force: bool = force) -> Path:
            return hub.hub_file(repo_id, WEIGHTS_FILE, revision, name=where, force=force)

        if not read:
            return _Source(where, record, lambda c: {}, (fetch_weights(), config_path))
        # The record is checked against the architecture asked for before the weights are downloaded.
        return _Source(where, record, lambda c: read_safetensors(fetch_weights()), (config_path,))
    if kind == "path":
        path = Path(os.path.expanduser(body))
        if path.is_dir():
            folder, file = path, path / WEIGHTS_FILE
            if not file.is_file():
                raise FileNotFoundError(f"folder {path} holds no {WEIGHTS_FILE}: save a model there with "
                                        f"zoo.save(model, {str(path)!r})")
        elif path.suffix == ".safetensors" or path.exists():
            if not path.is_file():
                raise FileNotFoundError(f"weights file {path} does not exist")
            folder, file = path.parent, path
        else:
            raise FileNotFoundError(f"{body} does not exist: give NAME[.TAG] (zoo.list_models()), a folder saved with "
                                    f"zoo.save, a .safetensors file, hf-hub:OWNER/NAME or FILE.py:CLASS")
        config_path = folder / CONFIG_FILE
        record = read_record(config_path) if config_path.is_file() else None
        return _Source(str(file), record, lambda c: read_safetensors(file),
                       (file,) + ((config_path,) if record else ()))
    key, w = lookup(cfg, body)
    if w.arch != cfg.name:
        raise WeightMismatchError(f"WEIGHTS[{key!r}] is registered for {w.arch!r}, not {cfg.name!r}: fix its arch "
                                  "field")
    if w.importer == "larq_zoo":
        from . import larq_import

        if not read:
            return _Source(key, w, lambda c: {}, (larq_import.fetch(w, force=force),))
        return _Source(key, w, lambda c: larq_import.load_registered(key, w, c, force=force))
    if w.importer == "reactnet":  # the ReActNet authors' OneDrive files, placed by hand
        from . import reactnet_import

        if not read:
            return _Source(key, w, lambda c: {}, (reactnet_import.fetch(w),))
        return _Source(key, w, lambda c: reactnet_import.load_registered(key, w, c))
    if w.importer:
        raise WeightMismatchError(f"WEIGHTS[{key!r}] names an unknown importer {w.importer!r}: use '', 'larq_zoo' "
                                  "or 'reactnet'")
    path = fetch_registered(key, w, force=force)
    return _Source(key, w, lambda c: read_safetensors(path), (path,))


def fetch_registered(key: str, w: Weights, *, force: bool = False) -> Path:
    """Fetches the file of a registered ``WEIGHTS[key]``, pinned and sha256-checked."""
    if w.importer == "larq_zoo":  # larq-zoo's release files live on GitHub, not on the Hub
        from .larq_import import fetch

        return fetch(w, force=force)
    if w.importer == "reactnet":
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


# --------------------------------------------------------------------------- record -> what to build


def _architecture(source: _Source) -> ModelConfig:
    """The registered architecture a record names (a reference that names no architecture itself)."""
    record = source.record
    if record is None:
        raise WeightMismatchError(f"{source.where} has no {CONFIG_FILE} beside it, so nothing names its architecture: "
                                  f"zoo.load('NAME', weights={source.where!r}) (or --arch NAME)")
    if record.module_class and not record.arch:
        raise WeightMismatchError(f"{source.where} holds weights of your class {record.module_class}: name it, "
                                  f"zoo.load('FILE.py:{record.module_class}', weights={source.where!r})")
    try:
        return get_config(record.arch)
    except UnknownModelError as e:
        raise UnknownModelError(f"{source.where}: {e}") from None


def _check_same_model(record: Weights, cfg: Optional[ModelConfig], module_class: Optional[type], where: str) -> None:
    if module_class is not None:
        if record.module_class and record.module_class != module_class.__name__:
            raise WeightMismatchError(f"{where} holds weights of class {record.module_class!r}, not "
                                      f"{module_class.__name__!r}: name the class they were saved from")
        return
    if record.module_class and not record.arch:
        raise WeightMismatchError(f"{where} holds weights of your class {record.module_class}: name it, "
                                  f"zoo.load('FILE.py:{record.module_class}', weights={where!r})")
    if record.arch != cfg.name:
        raise WeightMismatchError(f"{where} describes a {record.arch!r} model, not {cfg.name!r}: load it with "
                                  f"zoo.load({where!r}) or zoo.load({record.arch!r}, weights={where!r})")


def _fit(reference: str, name: str, cfg: Optional[ModelConfig], module_class: Optional[type],
         record: Optional[Weights], source: Optional[_Source], num_classes: Optional[int],
         input_size: Optional[int], arch: dict[str, Any]) -> Resolved:
    """The config to build, the state, and the record of the model as it will be built."""
    if module_class is not None:
        if arch:
            raise ValueError(f"{reference} is built as CLASS(): architecture options ({', '.join(arch)}) are for "
                             "registered models")
        state = source.read(None) if source else None
        size = input_size or (record.input_size if record else None)
        if record is not None and size is not None:
            record = record.for_model(record.num_classes if num_classes is None else num_classes, size)
        retarget = num_classes if record is not None and num_classes not in (None, record.num_classes) else None
        return Resolved(reference, name, None, module_class, record, state, retarget)
    if record is None:  # initialised weights
        return Resolved(reference, name, cfg.replace(num_classes=num_classes, input_size=input_size, **arch),
                        None, None, None)
    fitted = cfg.replace(num_classes=record.num_classes, input_size=record.input_size,
                         **{**dict(record.arch_overrides), **arch})
    if input_size is not None and input_size != record.input_size:
        if fitted.task == "detect":
            raise WeightMismatchError(
                f"weights {source.where!r} were trained at {record.input_size}x{record.input_size} and a detector's "
                f"output depends on its input size: drop input_size={input_size} (or --input-size)")
        fitted = fitted.replace(input_size=input_size)
        ratio = max(input_size, record.input_size) / min(input_size, record.input_size)
        if ratio > FAR_INPUT_SIZE:
            logger.warning("input size %d is %.1fx %s the %dx%d the weights %s were trained at: expect lower accuracy",
                           input_size, ratio, "below" if input_size < record.input_size else "above",
                           record.input_size, record.input_size, source.where)
    state = source.read(fitted)
    # A different explicit num_classes is fine-tuning: zoo.load builds the weights' classifier, loads every
    # weight, then replaces the classifier (reset_classifier), as timm does.
    retarget = num_classes if num_classes is not None and num_classes != fitted.num_classes else None
    if retarget is not None and retarget != 0 and record.num_classes == 0:
        raise WeightMismatchError(f"weights {source.where!r} are headless (num_classes=0): a classifier of "
                                  f"{retarget} classes would be initialised from nothing; load them with num_classes=0")
    if (fitted.num_classes if retarget is None else retarget, fitted.input_size) != (record.num_classes,
                                                                                      record.input_size):
        record = record.for_model(fitted.num_classes if retarget is None else retarget, fitted.input_size)
    return Resolved(reference, name, fitted, None, record, state, retarget)


# --------------------------------------------------------------------------- FILE.py:CLASS


def import_class(spec: str) -> type:
    """The ``torch.nn.Module`` class ``CLASS`` of ``FILE.py:CLASS``: the file is imported (it runs as any
    import does), so only ever for a reference a caller names.

    Raises:
        FileNotFoundError: The file does not exist.
        ImportError: The file does not import.
        ValueError: Not ``FILE.py:CLASS``, or no such ``torch.nn.Module`` class in it.
    """
    import torch

    m = _FILE_CLASS.fullmatch(spec)
    if m is None:
        raise ValueError(f"{spec!r} is not FILE.py:CLASS")
    path, name = m["file"], m["cls"]
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist (FILE.py:CLASS names a Python file and a module class in it)")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    module_name = f"_bnnzoo_user_{stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))  # its own sibling imports
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(module_name, None)
        raise ImportError(f"cannot import {path} ({type(e).__name__}: {' '.join(str(e).split())})") from None
    finally:
        sys.path.pop(0)
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        found = sorted(k for k, v in vars(module).items()
                       if isinstance(v, type) and issubclass(v, torch.nn.Module) and v.__module__ == module_name)
        raise ValueError(f"{path} has no torch.nn.Module class {name!r} (it defines: {', '.join(found) or 'none'})")
    return cls
