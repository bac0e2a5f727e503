"""Image classification (``task="classify"``): cross-entropy, plus attention matching and
distillation from a teacher (Martinez et al., 2020, Real-to-Binary; Hinton et al., 2015)."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from .common import METRIC_FIELDS, Dist, Task, val_outputs
from .config import Recipe, Stage
from .data import build_datasets, collate_skip
from .losses import FeatureHooks, attention_loss, distillation_loss

__all__ = ["Classify"]


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
