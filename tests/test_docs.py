"""The documentation site builds strictly, offline, and its model pages cover the registry."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import zoo

ROOT = Path(__file__).resolve().parents[1]


def test_the_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: a broken link, a nav entry without its page or a docstring mkdocstrings
    cannot read fails the build; the registered-models table is generated from the registry."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    models = (site / "models" / "index.html").read_text()
    for name in zoo.list_models(include_stages=True):
        assert f"<code>{name}</code>" in models, name
    api = (site / "api" / "zoo" / "index.html").read_text()
    assert "zoo.load" in api and "Returns" in api  # pages generated from the docstrings
    assert (site / "reports" / "bench_convert" / "index.html").is_file()  # the reports are published with the site


def test_the_measured_figures_table_lists_every_registered_model():
    """The figures on the models page are measured (``bnnzoo list --figures --include-stages``); a model
    registered since then is missing from them, and this says which one to measure."""
    text = (ROOT / "docs" / "models.md").read_text()
    figures = text[text.index("## Figures"):]
    listed = set(re.findall(r"^\| ([a-z0-9_]+) \|", figures, re.M)) - {"model"}  # less the header
    assert listed == set(zoo.list_models(include_stages=True))


def test_readme_links_point_to_files_that_exist():
    text = (ROOT / "README.md").read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", text) if "://" not in t]
    assert targets
    for target in targets:
        assert (ROOT / target).exists(), target


def test_pages_users_read_name_no_tracker_numbers_or_sessions():
    """README, the documentation, the reports and the model cards say what was measured and how, never which
    ticket or work session it came from (an upstream project's issue, cited by its URL, is a source)."""
    pattern = re.compile(r"\bissue #?\d+|(?<![\w/])#\d{2,}\b|\b(this|that|the last) session\b", re.I)
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "reports").rglob("*.md"),
             *(ROOT / "MODEL_CARDS").glob("*.md")]
    hits = [f"{page.relative_to(ROOT)}:{n}: {line.strip()}" for page in pages
            for n, line in enumerate(page.read_text().splitlines(), 1)
            if pattern.search(re.sub(r"https?://\S+", "", line))]
    assert hits == []
