"""PyTorch builders of the zoo, one module per architecture family."""
