"""``bnnzoo push MODEL --repo OWNER/NAME``: publish a model (weights, config.json, model card) to the Hub."""

from __future__ import annotations

import argparse

from bnnzoo.arguments import add_model_arguments, load_model

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo push`` to ``parser``."""
    add_model_arguments(parser, "folder", help="what to publish: a folder saved with zoo.save or a training run's "
                        "stage folder (model.safetensors + config.json), or any MODEL reference")
    parser.add_argument("--repo", required=True, metavar="OWNER/NAME", help="Hub model repo to push to")
    parser.add_argument("--revision", default="main", help="branch to commit to (created if missing)")
    parser.add_argument("--dry-run", action="store_true", help="write README.md into FOLDER and stop before uploading")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--message", help="commit message")
    parser.add_argument("--overwrite-card", action="store_true",
                        help="replace a README.md that was edited on the Hub (kept otherwise)")


def run(args: argparse.Namespace) -> int:
    """Publishes the model (``zoo.push_to_hub``): weights, config.json (the record) and a model card."""
    from pathlib import Path

    from zoo.api import push_to_hub
    from zoo.hub import endpoint
    from zoo.weights import CONFIG_FILE, WEIGHTS_FILE

    folder = Path(args.folder)
    if folder.is_file() and folder.name == WEIGHTS_FILE:
        folder = folder.parent
    saved = folder.is_dir() and (folder / CONFIG_FILE).is_file() and not (args.weights or args.arch)
    if not saved and args.dry_run:
        raise ValueError(f"--dry-run writes the card into a saved folder; {args.folder} is not one (model.safetensors "
                         "+ config.json): zoo.save the model first")
    options = dict(revision=args.revision, private=args.private, message=args.message,
                   overwrite_card=getattr(args, "overwrite_card", False))
    result = push_to_hub(folder if saved else load_model(args, "folder"), args.repo, dry_run=args.dry_run, **options)
    if result.commit is None:
        print(f"dry run: {result.folder} is ready ({WEIGHTS_FILE}, {CONFIG_FILE}, README.md); nothing uploaded")
        return 0
    print(f"pushed {result.folder if saved else args.folder} to {endpoint()}/{args.repo} at commit {result.commit}"
          + ("" if result.card_uploaded else "; README.md was edited on the Hub and is kept (--overwrite-card "
             "replaces it)"))
    print(f"load it with zoo.load({result.reference!r}), or any command: bnnzoo convert {result.reference} "
          "--to tflite")
    return 0
