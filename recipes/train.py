"""Runs a recipe: every stage, on one CPU or many GPUs (torchrun + DDP).

On the command line::

    bnnzoo train real2bin_mnist [key=value ...] [--resume [RUN_DIR]]
    torchrun --nproc_per_node=8 -m bnnzoo train real2bin_imagenet data=/data/imagenet

Each stage writes ``<out>/<stage>/``: ``model.safetensors`` + ``config.json`` (the weights'
record: architecture, the preprocessing of the recipe's data, class names and the epoch's
validation figures; ``zoo.load("<out>/<stage>")`` needs nothing else),
``state.pt`` (model, optimizer, scheduler, RNG and epoch for
``--resume``; tensors and plain values only, loaded with
``torch.load(weights_only=True)`` so a crafted file cannot run code), ``metrics.csv``, ``stage.json``
(the resolved stage, with the teacher and
initial weights it used) and, once finished, ``final.json``. ``<out>/recipe.json`` holds
the resolved recipe. All files are written by rank 0, each atomically (temp file +
``os.replace``), after every epoch.

The loop is the same for every ``task`` of a recipe; a :class:`Task` says what changes:
the data, the loss of a batch, the validation metrics and the columns of ``metrics.csv``
(``recipes.classify.Classify``, ``recipes.detect.Detect`` for the plate detectors; what the loops
share is ``recipes.common``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from zoo import fileio

from .classify import Classify
from .common import (
    Dist,
    RunError,
    Task,
    check_framework,
    check_progress,
    loaders,
    lr_factor,
    model_config,
    pin_models,
    say_dropped,
    setup_distributed,
    stage_folder,
    weights_record,
    write_csv,
)
from .config import ConfigError, Recipe, Stage, check_recipe, resolve_stages
from .data import DataError
from .detect import Detect

logger = logging.getLogger(__name__)

__all__ = ["run_recipe", "train_stage", "task_of", "load_checkpoint", "run_lock"]


def _optimizer(model: nn.Module, stage: Stage) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    rest = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": stage.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if stage.optimizer == "adam":
        return torch.optim.Adam(groups, lr=stage.lr)
    if stage.optimizer == "radam":
        return torch.optim.RAdam(groups, lr=stage.lr)
    if stage.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=stage.lr, momentum=stage.momentum)
    raise ConfigError(f"unknown optimizer {stage.optimizer!r}; expected 'adam', 'radam' or 'sgd'")


# --- files ---------------------------------------------------------------------------------------


def _save_model(model: nn.Module, stage_dir: Path, record) -> None:
    from zoo.weights import save

    save(model.state_dict(), stage_dir / "model.safetensors", record)


def _load_weights(model: nn.Module, path: Path, what: str, fix: str) -> None:
    """Loads a ``model.safetensors`` into ``model``, with a one-line error when it does not fit."""
    from zoo.weights import WeightMismatchError, read_safetensors

    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist: {fix}")
    state = read_safetensors(path)
    own = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        detail = (f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}" if unexpected
                  else f"{wrong[0]!r} has shape {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}")
        raise WeightMismatchError(f"{what} {path} does not fit {model.zoo_config.name} ({detail}): {fix}")
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=False)


def _check_teacher_config(path: Path, cfg, stage: Stage, teacher: Stage) -> None:
    config_json = path.parent / "config.json"
    if not config_json.is_file():
        return
    from zoo.weights import read_record

    try:
        saved = read_record(config_json)
    except ValueError as e:
        raise ConfigError(f"teacher {e}; pass {stage.name}.teacher_weights=PATH to a model saved by bnnzoo "
                          "train") from None
    arch = dict(saved.arch_overrides)
    diff = [k for k in sorted(set(arch) | set(cfg.arch)) if arch.get(k) != cfg.arch.get(k)]
    if saved.arch != cfg.name or diff or saved.num_classes != cfg.num_classes:
        what = (f"a {saved.arch or saved.module_class!r}" if saved.arch != cfg.name else
                f"{cfg.name} with {diff[0]}={arch.get(diff[0])!r} (expected {cfg.arch.get(diff[0])!r})" if diff else
                f"{cfg.name} with {saved.num_classes} classes (expected {cfg.num_classes})")
        raise ConfigError(f"teacher checkpoint {path} is {what}, but stage {stage.name} is taught by "
                          f"{teacher.name}, a {cfg.name} as the recipe resolves it: pass "
                          f"{stage.name}.teacher_weights=PATH to that stage's model.safetensors")


def _clip_binary_weights(model: nn.Module, clip: float) -> None:
    from zoo.torch.layers import BinaryConv2d

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, BinaryConv2d) and m.weight_quantizer is not None:
                m.weight.clamp_(-clip, clip)


def _rng_state() -> dict[str, Any]:
    # numpy's state holds an ndarray, which weights_only loading refuses: stored as a tensor + plain values.
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


# --- tasks ---------------------------------------------------------------------------------------


def task_of(recipe: Recipe) -> type[Task]:
    """The :class:`Task` of ``recipe.task``.

    Raises:
        ConfigError: An unknown task.
    """
    if recipe.task == "classify":
        return Classify
    if recipe.task == "detect":
        return Detect
    raise ConfigError(f"unknown task {recipe.task!r}: use task=classify or task=detect")


# --- one stage -----------------------------------------------------------------------------------


def train_stage(recipe: Recipe, stage: Stage, run_dir: Path, datasets: tuple, env: Dist, resume: bool = False,
                stop_after: int = 0, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Trains one stage; returns its final metrics (also written to ``final.json``).

    Args:
        recipe: The resolved recipe.
        stage: The stage (with its batch size resolved).
        run_dir: The recipe's output folder.
        datasets: (train, val) datasets.
        env: This process's place in the torchrun.
        resume: Continue from ``state.pt`` when there is one.
        stop_after: Stop after this many epochs of this call (0: run to the end).
        log: Where rank 0's one-line summaries go.

    Raises:
        ConfigError / WeightMismatchError / FileNotFoundError: Bad teacher or initial weights.
    """
    import zoo
    from zoo.weights import save  # noqa: F401  (fail early if safetensors is missing)

    stage_dir = stage_folder(run_dir, stage)
    final_path, state_path = stage_dir / "final.json", stage_dir / "state.pt"
    if resume and final_path.is_file():
        log(f"{stage.name}: already finished ({final_path}), skipping")
        return fileio.read_json(final_path, "finished stage", f"delete it to train stage {stage.name} again")
    if env.main:
        stage_dir.mkdir(parents=True, exist_ok=True)
    env.barrier()

    train_ds, val_ds = datasets
    task_cls = task_of(recipe)
    num_classes = task_cls.num_classes(recipe, train_ds)
    _seed(recipe.seed)
    cfg = model_config(stage, recipe, num_classes)
    model = zoo.build(cfg)
    task_cls.init_model(model)
    init_path = teacher_path = None
    if stage.init_weights or stage.init_from:
        init_path = Path(stage.init_weights or run_dir / stage.init_from / "model.safetensors")
        _load_weights(model, init_path, "initial weights",
                      f"run stage {stage.init_from} first (only={stage.init_from}) or pass "
                      f"{stage.name}.init_weights=PATH"
                      if stage.init_from else f"pass {stage.name}.init_weights=PATH to a compatible model.safetensors")
    teacher = None
    if stage.teacher:
        tstage = recipe.stage(stage.teacher)
        tcfg = model_config(tstage, recipe, num_classes)
        teacher_path = Path(stage.teacher_weights or run_dir / stage.teacher / "model.safetensors")
        _check_teacher_config(teacher_path, tcfg, stage, tstage)
        teacher = zoo.build(tcfg)
        _load_weights(teacher, teacher_path, "teacher checkpoint",
                      f"run stage {tstage.name} first (only={tstage.name}) or pass {stage.name}.teacher_weights=PATH "
                      f"to a {tcfg.name} model.safetensors")
        teacher.to(env.device).eval().requires_grad_(False)
    elif stage.attention_weight or stage.kd_weight:
        raise ConfigError(f"stage {stage.name} has distillation weights but no teacher: set {stage.name}.teacher=STAGE "
                          f"or {stage.name}.attention_weight=0 {stage.name}.kd_weight=0")
    model.to(env.device)

    per_rank = max(1, stage.batch_size // env.world)
    train_loader, sampler, val_loader = loaders(train_ds, val_ds, per_rank, recipe, env, task_cls.collate)
    say_dropped(train_loader, sampler, env.world, stage, log)
    steps_per_epoch = len(train_loader)
    optimizer = _optimizer(model, stage)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps_per_epoch, stage))

    start, history = 0, []
    if resume and state_path.is_file():
        start, history = _restore(state_path, model, optimizer, scheduler, stage)
        log(f"{stage.name}: resuming after epoch {start} from {state_path}")
    elif state_path.is_file():
        raise RunError(f"{stage_dir} already holds a run: pass --resume to continue it, or out=OTHER_FOLDER")

    if env.main:
        fileio.write_text(stage_dir / "stage.json", json.dumps({
            **dataclasses.asdict(stage), "recipe": recipe.name, "model_config": cfg.to_dict(),
            "teacher_path": str(teacher_path or ""), "init_path": str(init_path or ""),
            "world_size": env.world, "steps_per_epoch": steps_per_epoch}, indent=2, default=list) + "\n")

    task = task_cls(model, teacher, stage, env)
    net: nn.Module = model
    if env.world > 1:
        devices = [env.device.index] if env.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=devices)

    writer = None
    if env.main and recipe.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(stage_dir / "tensorboard"))
        except ImportError:
            writer = None

    done_now = 0
    for epoch in range(start, stage.epochs):
        if stop_after and done_now >= stop_after:
            break
        row = _train_epoch(net, model, task, train_loader, sampler, optimizer, scheduler, stage, epoch, env, recipe)
        alone = row.pop("_alone")
        row.update(task.evaluate(net, val_loader))
        history.append(row)
        done_now += 1
        if env.main:
            _save_model(model, stage_dir, weights_record(recipe, stage, cfg, train_ds, row, task_cls))
            buf = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
                        "rng": _rng_state(), "stage": dataclasses.asdict(stage)}, buf)
            fileio.write_bytes(state_path, buf.getvalue())
            write_csv(stage_dir / "metrics.csv", history, task.fields)
            if writer is not None:
                for k, v in row.items():
                    if k != "epoch":
                        writer.add_scalar(f"{stage.name}/{k}", v, epoch + 1)
                writer.flush()
            log(f"{stage.name} epoch {epoch + 1}/{stage.epochs}: {task.describe(row)} | "
                f"{row['images_per_s']:.0f} img/s, {row['seconds']:.1f} s"
                + (f" | {row['skipped_images']} corrupt images skipped" if row["skipped_images"] else "")
                + (f" | {alone} image{'s' * (alone > 1)} left alone in "
                   f"{'their batches' if alone > 1 else 'its batch'} by unreadable ones, not trained on"
                   if alone else ""))
        env.barrier()
    task.close()
    if writer is not None:
        writer.close()
    finished = len(history) >= stage.epochs
    final = {"stage": stage.name, "model": stage.model, "epochs": len(history), "finished": finished,
             **({k: history[-1][k] for k in task.final} if history else {}),
             "skipped_images": sum(r["skipped_images"] for r in history),
             "seconds": sum(r["seconds"] for r in history)}
    if env.main and finished:
        fileio.write_text(final_path, json.dumps(final, indent=2) + "\n")
    env.barrier()
    return final


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A ``state.pt``, loaded so that it cannot run code (``torch.load(weights_only=True)``).

    Raises:
        RunError: The file is empty, truncated, not a checkpoint, or holds anything but
            tensors and plain values (a pickle that would run code is refused unread).
    """
    fix = "delete it to restart the stage from scratch, or train into another folder (out=OTHER_FOLDER)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  whatever the unpickler raises, nothing in the file was run
        raise RunError(f"checkpoint {path} cannot be loaded safely ({type(e).__name__}): it is not a state.pt "
                       f"written by this bnnzoo (only tensors and plain values are loaded); {fix}") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "scheduler", "epoch", "history", "rng"} <= set(state):
        raise RunError(f"checkpoint {path} is not a state.pt written by bnnzoo train (missing entries); {fix}")
    return state


def _restore(path: Path, model: nn.Module, optimizer, scheduler, stage: Stage) -> tuple[int, list]:
    """Puts a ``state.pt`` back into the model, optimizer, scheduler and RNGs; returns (epoch, history)."""
    state = load_checkpoint(path)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        _set_rng_state(state["rng"])
        start, history = int(state["epoch"]), list(state["history"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        raise RunError(f"checkpoint {path} does not fit this stage's model and optimizer ({type(e).__name__}): "
                       "resume with the recipe.json it was written with, or start a new run "
                       "(out=OTHER_FOLDER)") from None
    return check_progress(path, start, history, stage)


def _train_epoch(net, model, task: Task, loader, sampler, optimizer, scheduler, stage: Stage, epoch: int, env: Dist,
                 recipe: Recipe) -> dict[str, Any]:
    from tqdm import tqdm

    sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)
    net.train()
    sums = dict.fromkeys([*task.sums, "n", "skipped", "alone"], 0.0)
    t0 = time.perf_counter()
    bar = tqdm(total=len(loader), desc=f"{stage.name} {epoch + 1}/{stage.epochs}", leave=False,
               disable=not (env.main and recipe.progress), dynamic_ncols=True, file=sys.stderr)
    for x, y, skipped in loader:
        sums["skipped"] += skipped
        if len(y) == 0 or (len(y) == 1 and loader.batch_size > 1):  # BatchNorm cannot train on one image
            if env.world > 1:
                raise DataError(f"unreadable images left {len(y)} image(s) in a batch of {loader.batch_size}: "
                                "remove them (DDP needs every rank to step, BatchNorm two images or more)")
            sums["alone"] += len(y)
            bar.update()
            continue
        loss, batch_sums = task.step(net, x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if stage.weight_clip:
            _clip_binary_weights(model, stage.weight_clip)
        sums["n"] += len(y)
        for k, v in batch_sums.items():
            sums[k] += v
        bar.update()
        if bar.n % 5 == 0 or bar.n == len(loader):
            bar.set_postfix(**task.postfix(sums), img_s=f"{sums['n'] * env.world / (time.perf_counter() - t0):.0f}")
    bar.close()
    keys = list(sums)
    total = dict(zip(keys, env.all_sum([sums[k] for k in keys])))
    seconds = time.perf_counter() - t0
    n = max(total["n"], 1)
    return {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
            **{column: total[k] / n for k, column in task.sums.items()},
            "skipped_images": int(total["skipped"]), "images_per_s": total["n"] / seconds, "seconds": seconds,
            "_alone": int(total["alone"])}


# --- a whole recipe ------------------------------------------------------------------------------


def run_recipe(recipe: Recipe, resume: bool = False, stop_after: int = 0,
               log: Optional[Callable[[str], None]] = None) -> dict[str, dict[str, Any]]:
    """Runs the recipe's stages in order (those in ``only``); returns each stage's final metrics.

    Args:
        recipe: The resolved recipe.
        resume: Continue the run in ``recipe.out``: finished stages are skipped, a stage with
            a ``state.pt`` continues after its last completed epoch.
        stop_after: Stop each stage after this many epochs of this call (0: no limit).
        log: Where rank 0's summaries go (default: this module's logger, at INFO).

    Raises:
        ConfigError: A value :func:`recipes.config.check_recipe` refuses (nothing is written).
        RunError: ``recipe.out`` holds a run and ``resume`` is False, or a run of the other
            framework (nothing is written).
    """
    check_recipe(recipe)
    if isinstance(stop_after, bool) or not isinstance(stop_after, int) or stop_after < 0:
        raise ConfigError(f"stop_after takes a number of epochs >= 1 (0: no limit), not {stop_after!r}")
    check_framework(recipe)
    if recipe.framework != "torch" and recipe.task != "classify":  # recipes.keras_train checks the name
        raise ConfigError(f"framework={recipe.framework} trains classifiers only; {recipe.name} is a "
                          f"task={recipe.task} recipe: drop framework={recipe.framework}")
    with run_lock(Path(recipe.out)):
        for s in recipe.stages:  # before recipe.json is written
            stage_folder(Path(recipe.out), s)
        if recipe.framework != "torch":
            from .keras_train import run_recipe as run_keras

            return run_keras(recipe, resume=resume, stop_after=stop_after, log=log)
        return _run_torch(recipe, resume, stop_after, log)


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Holds ``run_dir/.lock`` for a run (rank 0 of a torchrun; the other ranks write nothing), so that a
    second training into the folder is refused before it writes; a folder this call created and left
    empty (the run failed before its first file) is removed again."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with fileio.lock(run_dir / ".lock", f"run folder {run_dir}"):
            yield
    finally:
        if created:
            try:
                run_dir.rmdir()  # only if empty
            except OSError:
                pass


def _run_torch(recipe: Recipe, resume: bool, stop_after: int,
               log: Optional[Callable[[str], None]]) -> dict[str, dict[str, Any]]:
    recipe = pin_models(recipe)
    env = setup_distributed(recipe.device)
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    say = (log or logger.info) if env.main else (lambda s: None)
    stages = resolve_stages(recipe)
    run_dir = Path(recipe.out)
    if not resume and any((run_dir / s.name / "state.pt").is_file() for s in recipe.stages):
        raise RunError(f"{run_dir} already holds a run: pass --resume to continue it, or out=OTHER_FOLDER")
    datasets = task_of(recipe).datasets(recipe)
    if env.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        fileio.write_text(run_dir / "recipe.json", recipe.to_json(), root=run_dir)
        say(f"{recipe.name}: {len(datasets[0])} training / {len(datasets[1])} validation images, "
            f"{len(stages)} stage(s), {env.world} process(es) on {env.device.type}; writing {run_dir}")
    results = {}
    for stage in stages:
        results[stage.name] = train_stage(recipe, stage, run_dir, datasets, env, resume, stop_after, say)
        if not results[stage.name]["finished"]:
            break
    skipped = sum(r.get("skipped_images", 0) for r in results.values())
    if skipped:
        say(f"{skipped} corrupt images were skipped (see skipped_images in metrics.csv)")
    return results


