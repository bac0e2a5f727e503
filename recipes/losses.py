"""The Real-to-Bin distillation losses and the block-end feature hooks they read.

Martinez et al. (ICLR 2020), Section 4.2: at the end of every block the student's
spatial attention map ``Q = sum_c |A_c|^2`` (vectorised, L2-normalised) is matched to
the teacher's with an L2 distance; the J transfer points are averaged (larq-zoo
averages too, which is the reduction its weight of 30 was tuned with). Output
distillation is Hinton et al.'s KL divergence at temperature T, scaled by T^2.
"""

from __future__ import annotations

import re
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["find_blocks", "FeatureHooks", "attention_map", "attention_loss", "distillation_loss"]


def find_blocks(model: nn.Module, pattern: str) -> list[tuple[str, nn.Module]]:
    """The modules whose qualified names match the regular expression ``pattern``, in order.

    Raises:
        ValueError: No module matches; the message shows what the names look like.
    """
    rx = re.compile(pattern)
    found = [(n, m) for n, m in model.named_modules() if n and rx.search(n)]
    if not found:
        sample = ", ".join(n for n, _ in list(model.named_modules())[1:6])
        raise ValueError(f"no module of {type(model).__name__} matches attention_blocks={pattern!r} "
                         f"(names look like {sample}): set STAGE.attention_blocks=REGEX")
    return found


class FeatureHooks:
    """Keeps the outputs of the matched modules of the last forward pass (forward hooks).

    Attributes:
        enabled: Keep outputs only while True (switch off for evaluation passes).
    """

    def __init__(self, model: nn.Module, pattern: str) -> None:
        blocks = find_blocks(model, pattern)
        self.names = [n for n, _ in blocks]
        self.outputs: list[torch.Tensor] = []
        self.enabled = True
        self._handles = [m.register_forward_hook(self._keep) for _, m in blocks]

    def _keep(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if self.enabled:
            self.outputs.append(output)

    def take(self) -> list[torch.Tensor]:
        """The outputs kept since the last call, and forget them."""
        out, self.outputs = self.outputs, []
        return out

    def remove(self) -> None:
        """Removes the hooks."""
        for h in self._handles:
            h.remove()


def attention_map(a: torch.Tensor) -> torch.Tensor:
    """``Q = sum_c |A_c|^2`` of an ``(N, C, H, W)`` volume, vectorised to ``(N, H*W)`` and L2-normalised."""
    return F.normalize(a.pow(2).sum(1).flatten(1), dim=1)


def attention_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over transfer points of the batch-mean L2 distance between normalised attention maps.

    Raises:
        ValueError: Different numbers of volumes, or volumes of different spatial sizes.
    """
    if len(student) != len(teacher) or not student:
        raise ValueError(f"attention matching needs as many teacher as student block outputs "
                         f"(got {len(teacher)} and {len(student)}): check STAGE.attention_blocks")
    losses = []
    for i, (s, t) in enumerate(zip(student, teacher)):
        if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
            raise ValueError(f"block {i}: student output {tuple(s.shape)} and teacher output {tuple(t.shape)} "
                             f"differ in size: teacher and student need the same input size and strides")
        losses.append((attention_map(s) - attention_map(t.detach())).norm(dim=1).mean())
    return torch.stack(losses).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch."""
    t = temperature
    return F.kl_div(F.log_softmax(student_logits / t, 1), F.softmax(teacher_logits.detach() / t, 1),
                    reduction="batchmean") * t * t
