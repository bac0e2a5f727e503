"""What the training paths share: the PyTorch loop (:mod:`recipes.train`), the Keras loop
(:mod:`recipes.keras_train`) and the tasks (:mod:`recipes.classify`, :mod:`recipes.detect`).

The run's errors, the process group of a torchrun, the learning-rate schedule, the data
loaders, a stage's files (its folder, ``metrics.csv``, the weights' record), checks of a
checkpoint's progress and of the framework a run folder holds, and :class:`Task`, what a
recipe's ``task`` changes in the loop.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Optional, Sequence

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from zoo import fileio

from .config import ConfigError, Recipe, Stage
from .data import collate_skip

__all__ = ["METRIC_FIELDS", "RunError", "Dist", "setup_distributed", "lr_factor", "write_csv", "weights_record",
           "stage_folder", "model_config", "Task", "val_outputs", "loaders", "say_dropped", "check_progress",
           "pin_models", "check_framework"]


METRIC_FIELDS = ("epoch", "lr", "train_loss", "train_ce", "train_attention", "train_kd", "train_acc", "val_loss",
                 "val_acc", "skipped_images", "images_per_s", "seconds")


class RunError(RuntimeError):
    """A run that cannot start or continue as asked (e.g. an existing run without ``--resume``)."""


@dataclasses.dataclass
class Dist:
    """Where this process stands in a torchrun (world 1 without one)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Sums ``values`` over all processes."""
        if self.world == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj`` (picklable), in rank order."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_distributed(device: str = "auto") -> Dist:
    """Joins the torchrun process group when ``WORLD_SIZE`` > 1 (nccl on GPUs, gloo on CPU)."""
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise RunError("device=cuda but no CUDA device is available: use device=cpu or device=auto")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, torch.device("cuda" if use_cuda else "cpu"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), torch.device(f"cuda:{local}" if use_cuda else "cpu"))


def lr_factor(step: int, steps_per_epoch: int, stage: Stage) -> float:
    """The learning-rate multiplier after ``step`` optimizer steps.

    Linear warm-up from 0 over ``warmup_epochs``, then ``constant``, ``step`` (times
    ``decay_factor`` at each of ``decay_epochs``), ``cosine`` or ``linear`` (to 0 at the last epoch).
    """
    e = step / max(steps_per_epoch, 1)
    if stage.warmup_epochs > 0 and e < stage.warmup_epochs:
        return e / stage.warmup_epochs
    if stage.schedule == "constant":
        return 1.0
    if stage.schedule == "step":
        return stage.decay_factor ** sum(e >= d for d in stage.decay_epochs)
    span = max(stage.epochs - stage.warmup_epochs, 1e-9)
    done = min(max(e - stage.warmup_epochs, 0.0) / span, 1.0)
    if stage.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    if stage.schedule == "linear":  # ReActNet's decay (the authors' LambdaLR 1 - epoch / epochs), per step
        return 1.0 - done
    raise ConfigError(f"unknown schedule {stage.schedule!r}; expected 'step', 'cosine', 'linear' or 'constant'")


def write_csv(path: Path, rows: list[dict], fields: Sequence[str] = METRIC_FIELDS) -> None:
    """Writes ``metrics.csv`` (atomically): one row per epoch, ``fields`` as columns."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    fileio.write_text(path, buf.getvalue())


def weights_record(recipe: Recipe, stage: Stage, cfg, train_ds: Any, row: dict[str, Any], task: type["Task"]):
    """The record (``zoo.weights.Weights``) of a stage's weights after an epoch: the architecture, the
    preprocessing of the recipe's own data pipeline (``train_ds.preprocess``), its class names and
    the epoch's validation figures, measured."""
    from zoo.weights import Metric, Weights

    about = getattr(train_ds, "description", "") or recipe.data
    source = (f"measured: bnnzoo train {recipe.name}, stage {stage.name}, epoch {row['epoch']}, on the "
              "validation split")
    metrics = tuple(Metric(name, round(float(row[column]) * 100, 2), about, source)
                    for column, name in task.metrics.items() if column in row)
    return Weights(arch=cfg.name, num_classes=cfg.num_classes, input_size=cfg.input_size, arch_overrides=dict(cfg.arch),
                   labels=tuple(train_ds.classes), dataset=about, metrics=metrics,
                   **getattr(train_ds, "preprocess", {}))


def stage_folder(run_dir: Path, stage: Stage) -> Path:
    """``run_dir/<stage>``, checked to stay inside ``run_dir`` once symlinks are resolved.

    Raises:
        zoo.fileio.UnsafePathError: The stage folder (or a folder on the way) is a link out of the run.
    """
    path = run_dir / stage.name
    fileio.resolve_inside(path, run_dir, "stage folder", follow=True)
    return path


def model_config(stage: Stage, recipe: Recipe, num_classes: Optional[int]):
    """The model config a stage trains: its model at the recipe's input size, with its overrides."""
    from zoo import get_config

    return get_config(stage.model).replace(num_classes=num_classes, input_size=recipe.input_size,
                                           **stage.model_overrides)


class Task:
    """What a recipe's ``task`` changes in the training loop; one is built per stage.

    Attributes:
        fields: Columns of ``metrics.csv``.
        final: Columns of the last epoch that ``final.json`` repeats.
        sums: Names of the per-batch sums :meth:`step` returns, each with its ``metrics.csv``
            column (the epoch's sum divided by its number of images).
        metrics: Validation columns (fractions) the weights' record holds, by metric name
            (``zoo.weights.Metric.name``, in percent).
    """

    fields: ClassVar[tuple[str, ...]] = ()
    final: ClassVar[tuple[str, ...]] = ()
    sums: ClassVar[dict[str, str]] = {}
    metrics: ClassVar[dict[str, str]] = {}

    def __init__(self, model: nn.Module, teacher: Optional[nn.Module], stage: Stage, env: Dist) -> None:
        self.model, self.teacher, self.stage, self.env = model, teacher, stage, env

    @staticmethod
    def datasets(recipe: Recipe) -> tuple[Any, Any]:
        """The (train, val) datasets of ``recipe.data``."""
        raise NotImplementedError

    @staticmethod
    def collate(batch: list) -> tuple[torch.Tensor, Any, int]:
        """A DataLoader batch -> ``(images, targets, skipped)``, unreadable images left out."""
        raise NotImplementedError

    @staticmethod
    def num_classes(recipe: Recipe, train_ds: Any) -> Optional[int]:
        """``num_classes`` of the model config (None: the model's own)."""
        return recipe.num_classes or None

    @staticmethod
    def init_model(model: nn.Module) -> None:
        """Changes the initialisation of a freshly built model (before any weights are loaded)."""

    def step(self, net: nn.Module, x: torch.Tensor, targets: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of a training batch and its :attr:`sums` over the batch."""
        raise NotImplementedError

    def evaluate(self, net: nn.Module, loader: DataLoader) -> dict[str, Any]:
        """The validation columns of the epoch's row (the same on every process)."""
        raise NotImplementedError

    def postfix(self, sums: dict[str, float]) -> dict[str, str]:
        """What the progress bar shows of the running sums."""
        return {"loss": f"{sums['loss'] / max(sums['n'], 1):.3f}"}

    def describe(self, row: dict[str, Any]) -> str:
        """The losses and metrics of an epoch's row, for the one-line log."""
        raise NotImplementedError

    @staticmethod
    def result(final: dict[str, Any]) -> str:
        """The end of ``bnnzoo train``'s last line for a stage (its ``final.json``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Releases what the task holds on the model (hooks)."""


@torch.no_grad()
def val_outputs(net: nn.Module, loader: DataLoader, env: Dist) -> Iterator[tuple[torch.Tensor, Any]]:
    """``(model outputs, targets)`` of this process's non-empty validation batches, in eval mode.

    Runs the bare model (no DDP forward: ranks may hold different numbers of batches)
    with rank 0's BatchNorm statistics, the model rank 0 saves.
    """
    net.eval()
    model = getattr(net, "module", net)
    if env.world > 1:
        for b in model.buffers():
            dist.broadcast(b, 0)
    for x, y, _ in loader:
        if len(y) == 0:
            continue
        yield model(x.to(env.device)), (y.to(env.device) if isinstance(y, torch.Tensor) else y)


def loaders(train_ds, val_ds, batch: int, recipe: Recipe, env: Dist, collate: Callable = collate_skip):
    """``(train loader, its sampler, validation loader)`` of this process's share of the data."""
    sampler = DistributedSampler(train_ds, num_replicas=env.world, rank=env.rank, shuffle=True, seed=recipe.seed)
    kw = dict(num_workers=recipe.workers, collate_fn=collate, pin_memory=env.device.type == "cuda",
              persistent_workers=False)
    # A last batch of one image would make BatchNorm raise in training: it is left out of the epoch
    # (every rank holds as many images, so all ranks drop it alike; the next epoch shuffles it back in).
    train = DataLoader(train_ds, batch_size=batch, sampler=sampler, drop_last=batch > 1 and len(sampler) % batch == 1,
                       **kw)
    # Validation is sharded without padding, so every image counts exactly once.
    val_idx = list(range(env.rank, len(val_ds), env.world))
    val = DataLoader(torch.utils.data.Subset(val_ds, val_idx), batch_size=batch, shuffle=False, **kw)
    return train, sampler, val


def say_dropped(loader: DataLoader, sampler: DistributedSampler, world: int, stage: Stage,
                log: Callable[[str], None]) -> None:
    """Logs the image a last batch of one loses each epoch (see :func:`loaders`), if it does."""
    if loader.drop_last:
        log(f"{stage.name}: the last batch of each epoch would hold one image per process, which BatchNorm cannot "
            f"train on: it is left out ({(len(sampler) - 1) * world} used per epoch, the left-out one changes "
            f"with the shuffle)")


def check_progress(path: Path, epoch: Any, history: list, stage: Stage) -> tuple[int, list]:
    """``(epoch, history)`` of a checkpoint if they can be continued by ``stage``.

    Raises:
        RunError: The checkpoint claims more epochs than the stage has, a negative count, or a
            history of another length (one line: a damaged file or another recipe's).
    """
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= stage.epochs \
            or len(history) != epoch:
        raise RunError(f"checkpoint {path} says {epoch!r} epochs were done ({len(history)} in its history), but "
                       f"stage {stage.name} has {stage.epochs}: it belongs to another recipe or is damaged; resume "
                       f"with {stage.name}.epochs >= {epoch!r} if that is the run, or start a new one "
                       "(out=OTHER_FOLDER)")
    return epoch, history


def pin_models(recipe: Recipe) -> Recipe:
    """The recipe with every stage's ``model_overrides`` expanded to the model's full architecture.

    ``recipe.json`` then pins the architectures the run used, so a resumed run, or a later
    stage's teacher, is built the same even if the registry's defaults change meanwhile.

    Raises:
        UnknownModelError / TypeError: A stage names an unknown model or architecture option.
    """
    from zoo import get_config

    return dataclasses.replace(recipe, stages=tuple(
        dataclasses.replace(s, model_overrides=dict(get_config(s.model).replace(**s.model_overrides).arch))
        for s in recipe.stages))


def check_framework(recipe: Recipe) -> None:
    """Refuses to continue (or overwrite) a run of the other framework, before anything is written.

    Raises:
        RunError: A stage folder of ``recipe.out`` holds the other framework's checkpoint.
    """
    own, other = ("state.pt", "state.keras.npz") if recipe.framework == "torch" else ("state.keras.npz", "state.pt")
    theirs = "keras" if recipe.framework == "torch" else "torch"
    for s in recipe.stages:
        if (Path(recipe.out) / s.name / other).is_file():
            raise RunError(f"{Path(recipe.out) / s.name} holds a framework={theirs} run: continue it with "
                           f"framework={theirs} (or without framework=), or train into out=OTHER_FOLDER")
