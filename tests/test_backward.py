"""One training step of every registered model (as timm's ``test_model_backward``): at its tiny size, a forward
pass in training mode, a real loss (cross-entropy for classifiers, the YOLO loss for plate detectors) and a backward
pass must give finite, non-zero gradients on the latent weights of every binary convolution and on the classifier."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.torch.detector import loss_for
from zoo.torch.layers import BinaryConv2d

from helpers import tiny

BATCH = 4


def _head(model: nn.Module) -> nn.Module:
    """The classifier (``get_classifier``), else the last layer with weights (a detector's head)."""
    if hasattr(model, "get_classifier"):
        return model.get_classifier()
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][-1]


def _loss(model: nn.Module, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if model.zoo_config.family == "detector":
        # One plate per image, somewhere inside it: (cx, cy, w, h), normalised.
        centres = 0.3 + 0.4 * torch.rand(BATCH, 1, 2, generator=generator)
        plates = [torch.cat([c, torch.tensor([[0.3, 0.1]])], dim=1) for c in centres]
        return loss_for(model, out, plates)[0]
    labels = torch.randint(0, out.shape[1], (BATCH,), generator=generator)
    return nn.functional.cross_entropy(out, labels)


@pytest.mark.parametrize("name", zoo.list_models(include_stages=True))
def test_one_training_step_reaches_every_binary_layer_and_the_classifier(name):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = tiny(name).train()
    size = zoo.get_config(name).tiny.get("input_size", model.zoo_config.input_size)
    x = torch.randn(BATCH, 3, size, size, generator=generator)
    loss = _loss(model, model(x), generator)
    assert torch.isfinite(loss), loss
    loss.backward()

    checked = {f"{path}.weight": module.weight for path, module in model.named_modules()
               if isinstance(module, BinaryConv2d)}
    checked.update({f"classifier.{n}": p for n, p in _head(model).named_parameters()})
    for path, weight in checked.items():
        assert weight.grad is not None, f"{path}: no gradient"
        assert torch.isfinite(weight.grad).all(), f"{path}: non-finite gradient"
        assert weight.grad.abs().sum() > 0, f"{path}: zero gradient"
