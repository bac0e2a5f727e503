"""mkdocs hooks: the pages that are generated from the repository rather than written by hand.

- The registered models table (``<!-- registered-models -->`` in a page) is built from ``zoo``'s registry
  at build time, so it lists every model and every set of weights the installed code has.
- The measurement reports (``reports/``), the model cards (``MODEL_CARDS/``) and the READMEs of the
  kernels and of a deploy bundle live beside the code they describe; they are published at the same
  paths in the site, so the links between them work in both places.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.bnnzoo")

ROOT = Path(__file__).resolve().parents[2]
# Folders and files of the repository published as they are, at their repository path.
MIRRORED = ("reports", "MODEL_CARDS", "converters/litert/README.md", "converters/rpi/README.md")
SUFFIXES = {".md", ".png", ".json"}
MARKER = "<!-- registered-models -->"


def on_files(files: Files, config) -> Files:
    """Adds the mirrored repository files to the site."""
    for entry in MIRRORED:
        path = ROOT / entry
        paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in paths:
            if p.suffix in SUFFIXES:
                files.append(File.generated(config, p.relative_to(ROOT).as_posix(), abs_src_path=str(p)))
    return files


def registered_models_table() -> str:
    """A markdown table of every registered model: family, paper, registered weights (default in bold)."""
    import zoo

    rows = ["| model | family | paper | weights (default in bold) |", "|---|---|---|---|"]
    for name in zoo.list_models(include_stages=True):
        cfg = zoo.get_config(name)
        tags = [f"**{w.tag}**" if w.default else w.tag for w in zoo.list_weights(name)]
        stage = " (training stage)" if zoo.is_training_stage(name) else ""
        paper = cfg.paper.replace("|", "\\|")
        rows.append(f"| `{name}`{stage} | {cfg.family} | {paper} | {', '.join(tags)} |")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replaces the registered-models marker with the table built from the registry."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, registered_models_table())
    return markdown
