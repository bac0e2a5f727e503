"""What every zoo image classifier offers, as timm's models do: ``forward_features``,
``forward_head``, ``get_classifier`` and ``reset_classifier``.

A family's model class inherits :class:`ClassifierMixin` (before ``nn.Module``), names its
last layer ``classifier`` (an ``nn.Linear``) and implements ``forward_features`` (the feature
map before pooling); ``forward`` is then ``forward_head(forward_features(x))``. The head is
``classifier(pre_logits(x))``: by default global average pooling then an optional ``dropout``
module; families with another head (a BN and ReLU before pooling, fully-connected layers)
override ``pre_logits``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassifierMixin"]


class ClassifierMixin:
    """``forward = forward_head(forward_features(x))`` with a replaceable ``classifier``."""

    classifier: nn.Linear

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling, ``(N, C, H, W)``."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """:meth:`pre_logits` (global average pooling, then dropout, if any) and the classifier.

        Args:
            x: Output of :meth:`forward_features`.
            pre_logits: Return the pooled features, before the classifier.
        """
        x = self.pre_logits(x)
        return x if pre_logits else self.classifier(x)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """What the classifier reads: the pooled features ``(N, classifier.in_features)``."""
        x = x.mean((2, 3))
        dropout = getattr(self, "dropout", None)
        return x if dropout is None else dropout(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The last layer (``num_classes`` outputs; ``nn.Identity`` when headless)."""
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replaces the classifier by a freshly initialised one with ``num_classes`` outputs; 0 removes
        it (``forward`` returns the pooled features, as timm's ``num_classes=0``).

        The model's ``zoo_config`` (when it has one) follows, so exports and the Keras twin
        are built with the new size.
        """
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        old = self.classifier
        # A headless model keeps the width its classifier read, for a later classifier.
        width = old.in_features if isinstance(old, nn.Linear) else self.num_features
        if not num_classes:
            self.num_features = width
            self.classifier = nn.Identity()
        else:
            p = next(self.parameters())
            self.classifier = nn.Linear(width, num_classes).to(p.device, p.dtype)
        cfg = getattr(self, "zoo_config", None)
        if cfg is not None:
            self.zoo_config = cfg.replace(num_classes=num_classes)
