"""Runs a recipe: every stage, on one CPU or many GPUs (torchrun + DDP).

On the command line::

    bnnzoo train real2bin_mnist [key=value ...] [--resume [RUN_DIR]]
    torchrun --nproc_per_node=8 -m bnnzoo train real2bin_imagenet data=/data/imagenet

Each stage writes ``<out>/<stage>/``: ``model.safetensors`` + ``config.json`` (the weights'
record: architecture, the preprocessing of the recipe's data, class names and the epoch's
validation figures; ``zoo.load("<out>/<stage>")`` needs nothing else),
``state.pt`` (model, optimizer, scheduler, RNG and epoch for
``--resume``; tensors and plain values only, loaded with
``torch.load(weights_only=True)`` so a crafted file cannot run code), ``metrics.csv``, ``stage.json`` (the resolved stage, with the teacher and
initial weights it used) and, once finished, ``final.json``. ``<out>/recipe.json`` holds
the resolved recipe. All files are written by rank 0, each atomically (temp file +
``os.replace``), after every epoch.

The loop is the same for every ``task`` of a recipe; a :class:`Task` says what changes:
the data, the loss of a batch, the validation metrics and the columns of ``metrics.csv``
(:class:`Classify` here, ``recipes.detect.Detect`` for the plate detectors).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from zoo import fileio

from .config import (ConfigError, Recipe, Stage, apply_overrides, check_recipe, from_dict, get_recipe,
                     parse_overrides, resolve_stages)
from .data import DataError, build_datasets, collate_skip
from .losses import FeatureHooks, attention_loss, distillation_loss

logger = logging.getLogger(__name__)

__all__ = ["run_recipe", "train_stage", "pin_models", "lr_factor", "check_framework", "RunError", "Task", "Classify",
           "task_of"]

METRIC_FIELDS = ("epoch", "lr", "train_loss", "train_ce", "train_attention", "train_kd", "train_acc", "val_loss",
                 "val_acc", "skipped_images", "images_per_s", "seconds")


class RunError(RuntimeError):
    """A run that cannot start or continue as asked (e.g. an existing run without ``--resume``)."""


# --- distributed ---------------------------------------------------------------------------------

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


# --- schedule ------------------------------------------------------------------------------------

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

def _write_csv(path: Path, rows: list[dict], fields: Sequence[str] = METRIC_FIELDS) -> None:
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


def stage_folder(run_dir: Path, stage: Stage) -> Path:
    """``run_dir/<stage>``, checked to stay inside ``run_dir`` once symlinks are resolved.

    Raises:
        zoo.fileio.UnsafePathError: The stage folder (or a folder on the way) is a link out of the run.
    """
    path = run_dir / stage.name
    fileio.resolve_inside(path, run_dir, f"stage folder", follow=True)
    return path


def _model_config(stage: Stage, recipe: Recipe, num_classes: Optional[int]):
    from zoo import get_config

    return get_config(stage.model).replace(num_classes=num_classes, input_size=recipe.input_size,
                                           **stage.model_overrides)


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


class Classify(Task):
    """Image classification: cross-entropy, plus attention matching and distillation from a teacher."""

    fields = METRIC_FIELDS
    final = ("train_acc", "val_acc", "val_loss")
    metrics = {"val_acc": "top1"}
    sums = {"loss": "train_loss", "ce": "train_ce", "att": "train_attention", "kd": "train_kd", "correct": "train_acc"}

    def __init__(self, model: nn.Module, teacher: Optional[nn.Module], stage: Stage, env: Dist) -> None:
        super().__init__(model, teacher, stage, env)
        self.hooks: list[FeatureHooks] = []
        if stage.attention_weight:
            self.hooks = [FeatureHooks(model, stage.attention_blocks), FeatureHooks(teacher, stage.attention_blocks)]

    @staticmethod
    def datasets(recipe: Recipe) -> tuple[Any, Any]:
        return build_datasets(recipe.data, recipe.input_size, recipe.seed, recipe.val_fraction,
                              recipe.max_train_samples, recipe.max_val_samples)

    collate = staticmethod(collate_skip)

    @staticmethod
    def num_classes(recipe: Recipe, train_ds: Any) -> Optional[int]:
        return recipe.num_classes or len(train_ds.classes)

    def step(self, net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        stage, device = self.stage, self.env.device
        for h in self.hooks:
            h.enabled = True
            h.take()  # start every step clean
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = net(x)
        ce = F.cross_entropy(logits, y)
        loss = stage.ce_weight * ce
        att = kd = torch.zeros((), device=device)
        if self.teacher is not None:
            with torch.no_grad():
                t_logits = self.teacher(x)
            if self.hooks:
                att = attention_loss(self.hooks[0].take(), self.hooks[1].take())
                loss = loss + stage.attention_weight * att
            if stage.kd_weight:
                kd = distillation_loss(logits, t_logits, stage.kd_temperature)
                loss = loss + stage.kd_weight * kd
        n = len(y)
        return loss, {"loss": loss.item() * n, "ce": ce.item() * n, "att": att.item() * n, "kd": kd.item() * n,
                      "correct": (logits.argmax(1) == y).sum().item()}

    def evaluate(self, net: nn.Module, loader: DataLoader) -> dict[str, Any]:
        for h in self.hooks:  # evaluation passes keep no features
            h.enabled = False
            h.take()
        loss = correct = n = 0.0
        for logits, y in val_outputs(net, loader, self.env):
            loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            n += len(y)
        loss, correct, n = self.env.all_sum([loss, correct, n])
        return {"val_loss": loss / max(n, 1), "val_acc": correct / max(n, 1)}

    def postfix(self, sums: dict[str, float]) -> dict[str, str]:
        return {**super().postfix(sums), "acc": f"{sums['correct'] / max(sums['n'], 1):.1%}"}

    def describe(self, row: dict[str, Any]) -> str:
        return (f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%} | "
                f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2%}")

    @staticmethod
    def result(final: dict[str, Any]) -> str:
        return f"val acc {final['val_acc']:.2%}"

    def close(self) -> None:
        for h in self.hooks:
            h.remove()


def task_of(recipe: Recipe) -> type[Task]:
    """The :class:`Task` of ``recipe.task``.

    Raises:
        ConfigError: An unknown task.
    """
    if recipe.task == "classify":
        return Classify
    if recipe.task == "detect":
        from .detect import Detect

        return Detect
    raise ConfigError(f"unknown task {recipe.task!r}: use task=classify or task=detect")


# --- one stage -----------------------------------------------------------------------------------

def _loaders(train_ds, val_ds, batch: int, recipe: Recipe, env: Dist, collate: Callable = collate_skip):
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
    """Logs the image a last batch of one loses each epoch (see :func:`_loaders`), if it does."""
    if loader.drop_last:
        log(f"{stage.name}: the last batch of each epoch would hold one image per process, which BatchNorm cannot "
            f"train on: it is left out ({(len(sampler) - 1) * world} used per epoch, the left-out one changes "
            f"with the shuffle)")


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
    cfg = _model_config(stage, recipe, num_classes)
    model = zoo.build(cfg)
    task_cls.init_model(model)
    init_path = teacher_path = None
    if stage.init_weights or stage.init_from:
        init_path = Path(stage.init_weights or run_dir / stage.init_from / "model.safetensors")
        _load_weights(model, init_path, "initial weights",
                      f"run stage {stage.init_from} first (only={stage.init_from}) or pass {stage.name}.init_weights=PATH"
                      if stage.init_from else f"pass {stage.name}.init_weights=PATH to a compatible model.safetensors")
    teacher = None
    if stage.teacher:
        tstage = recipe.stage(stage.teacher)
        tcfg = _model_config(tstage, recipe, num_classes)
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
    train_loader, sampler, val_loader = _loaders(train_ds, val_ds, per_rank, recipe, env, task_cls.collate)
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
        net = nn.parallel.DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)

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
            _write_csv(stage_dir / "metrics.csv", history, task.fields)
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
                       "resume with the recipe.json it was written with, or start a new run (out=OTHER_FOLDER)") from None
    return check_progress(path, start, history, stage)


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
