"""``bnnzoo pack``: trained weights saved for inference (binary kernels as int8 signs: same outputs, ~4x smaller)."""

from __future__ import annotations

import argparse

from bnnzoo.arguments import add_model_arguments, load_model

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo pack`` to ``p``."""
    add_model_arguments(p, "weights_source", help="the trained weights: a training run's stage folder or its "
                        "model.safetensors (config.json beside it names the architecture), or any MODEL reference")
    p.add_argument("-o", "--output", "--out", dest="out", required=True,
                   help="the .safetensors file to write (named model.safetensors: its config.json goes beside it)")


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo pack``: writes the file, prints its size, sha256 and architecture."""
    import json
    from pathlib import Path

    from zoo.fileio import sha256_of
    from zoo.weights import WEIGHTS_FILE, binary_weight_names, save

    model = load_model(args, "weights_source")
    # A model.safetensors gets its config.json (the record) beside it; other names (zoo/pretrained/<arch>.<tag>
    # .safetensors, many per folder) are described by their WEIGHTS entry instead.
    record = model.zoo_weights if Path(args.out).name == WEIGHTS_FILE else None
    out = save(model.state_dict(), args.out, record, signs_of=binary_weight_names(model))
    cfg = model.zoo_config
    print(f"{out}: {out.stat().st_size / 1e6:.2f} MB, sha256 {sha256_of(out)}, {cfg.name} num_classes="
          f"{cfg.num_classes} input_size={cfg.input_size} arch={json.dumps(cfg.arch)}")
    return 0
