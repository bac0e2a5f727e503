"""Model cards: the README.md of a Hub repo, and the pages under ``MODEL_CARDS/``.

One template serves both. Every figure says where it comes from: *published* figures
name the paper table they are quoted from and belong to the architecture (ImageNet,
224x224), *measured* figures name the data and command that produced them and belong
to these weights.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Optional, Sequence, Union

from . import families
from .registry import ModelConfig, get_config, list_models
from .weights import WEIGHTS, Metric, Weights

__all__ = ["model_card", "write_model_cards", "published_metrics"]

LICENSE = "apache-2.0"
TAGS = ["bnnzoo", "binary-neural-network", "bnn", "image-classification", "pytorch", "larq", "safetensors"]

# Metric name -> (model-index metric type, human name).
_METRIC_TYPES = {"top1": ("accuracy", "Top-1 accuracy"), "top5": ("top_5_accuracy", "Top-5 accuracy"),
                 "ap50": ("mAP@0.5", "AP@0.5"),
                 "plate_accuracy": ("recall", "Plate accuracy (plates found at IoU >= 0.5)")}
# Figures a paper may publish for an architecture (ModelConfig.published keys), in card order.
_PUBLISHED = ("top1", "top5", "plate_accuracy")


def _is_detector(cfg: ModelConfig) -> bool:
    return cfg.task == "detect"

_TEMPLATE = """\
---
{metadata}
---

# {title}

{summary}

## Usage

```python
import zoo

model = zoo.load({load_args})            # torch.nn.Module, eval mode
x = zoo.transforms(model)(image)[None]    # a PIL image, preprocessed as these weights expect
zoo.decode(model(x)[0], model)            # [(label, probability), ...]: the top 5
twin = zoo.to_keras(model)                # the Larq/Keras twin, same weights
```

## Figures

{figures}

## Architecture

- registered name: `{arch}`{overrides}
- {outputs}, input: {input_size}x{input_size}{norm}
- paper: {paper}
{notes}{provenance}"""


def published_metrics(cfg: ModelConfig) -> tuple[Metric, ...]:
    """The accuracy figures the paper publishes for ``cfg``'s architecture, as ``Metric`` s."""
    source = cfg.published.get("source", "paper")
    dataset = "Im & Lee's license-plate photographs (not public)" if _is_detector(cfg) else "imagenet-1k"
    return tuple(Metric(name=k, value=float(cfg.published[k]), dataset=dataset, source=f"published: {source}")
                 for k in _PUBLISHED if k in cfg.published)


def model_card(weights: Union[Weights, ModelConfig], metrics: Sequence[Metric] = (), *,
               repo_id: Optional[str] = None, sha256: Optional[str] = None) -> str:
    """The model card (README.md with Hub YAML metadata) of a set of weights or of an architecture.

    Args:
        weights: The weights' record (:class:`Weights`: a registered entry, or the ``config.json`` of
            weights being pushed), or a ``ModelConfig`` (the architecture alone, for ``MODEL_CARDS/``).
        metrics: Figures of these weights beyond ``Weights.metrics``; each ``Metric.source``
            starts with ``"measured:"`` or ``"published:"``.
        repo_id: The Hub repo the card is for (defaults to ``weights.hub_repo``).
        sha256: The sha256 of ``model.safetensors`` (defaults to ``weights.sha256``).

    Returns:
        The card text; ``huggingface_hub.ModelCard(text)`` parses it.
    """
    from huggingface_hub import ModelCardData

    if isinstance(weights, Weights) and not weights.arch:
        return _own_class_card(weights, tuple(metrics), repo_id, sha256)
    if isinstance(weights, Weights):
        w: Optional[Weights] = weights
        cfg = w.config()
        own = tuple(w.metrics) + tuple(m for m in metrics if m not in w.metrics)
        repo_id = repo_id or w.hub_repo
        sha256 = sha256 or w.sha256
    else:
        w, cfg, own = None, weights, tuple(metrics)
    reference = published_metrics(get_config(cfg.name))
    if w is None and repo_id is None:  # an architecture page: the paper's figures are all there is
        own, reference = own + tuple(m for m in reference if m not in own), ()
    task = ("object-detection", "Object Detection") if _is_detector(cfg) else ("image-classification",
                                                                                "Image Classification")
    results = _eval_results(own, task)
    imported = w is not None and bool(w.tag) and (bool(w.importer) or not w.hub_repo)
    model_name = (f"{w.arch}.{w.tag}" if imported else repo_id.split("/")[-1] if repo_id else
                  w.key if w is not None else cfg.name)
    tags = [task[0] if t == "image-classification" else t
            for t in TAGS if not (imported and t == "safetensors")]  # imported: a Keras .h5, converted on load
    data = ModelCardData(library_name="bnnzoo", license=LICENSE, tags=tags, pipeline_tag=task[0],
                         datasets=sorted({m.dataset for m in own}) or None, model_name=model_name,
                         eval_results=results or None)
    base = get_config(cfg.name)
    changed = {k: v for k, v in cfg.arch.items() if base.arch.get(k) != v}
    return _TEMPLATE.format(
        metadata=data.to_yaml(),
        title=f"{model_name} ({cfg.name})" if model_name != cfg.name else cfg.name,
        summary=_summary(cfg, w, repo_id),
        load_args=_load_args(cfg, w, repo_id),
        figures=_figures(own, reference),
        arch=cfg.name,
        overrides="".join(f"\n- `{k}={v!r}` (registered default: {base.arch.get(k)!r})" for k, v in changed.items()),
        outputs=_outputs(cfg), input_size=cfg.input_size,
        norm=_preprocessing(w),
        paper=cfg.paper or "-",
        notes=(f"\n## Notes\n\n{w.notes}\n" if w is not None and w.notes else "") + _export_note(cfg),
        provenance=_provenance(w, repo_id, sha256),
    )


def _eval_results(metrics: Sequence[Metric], task: tuple[str, str]) -> list:
    """The card's ``model-index`` results: the figures of these weights (their source says measured or published)."""
    from huggingface_hub import EvalResult

    return [EvalResult(task_type=task[0], task_name=task[1], dataset_type=m.dataset, dataset_name=m.dataset,
                       metric_type=_METRIC_TYPES.get(m.name, (m.name, m.name))[0],
                       metric_name=f"{_METRIC_TYPES.get(m.name, (m.name, m.name))[1]} ({_kind(m)})",
                       metric_value=m.value, metric_args={"source": m.source}, verified=False)
            for m in metrics]


def _outputs(cfg: ModelConfig) -> str:
    if not _is_detector(cfg):
        return f"classes: {cfg.num_classes}"
    a = len(cfg.arch["anchors"])
    g = math.isqrt(cfg.num_classes // (a * 5))  # num_classes is the flattened grid x grid x anchors x 5
    return (f"outputs: {cfg.num_classes} numbers ({g}x{g} grid x {a} anchors x (objectness, x, y, w, h)), "
            "decoded by `zoo.detection.decode`")


def _summary(cfg: ModelConfig, w: Optional[Weights], repo_id: Optional[str]) -> str:
    return _summary_text(cfg, w, repo_id) + _default_note(cfg, w, repo_id)


def _default_note(cfg: ModelConfig, w: Optional[Weights], repo_id: Optional[str]) -> str:
    from .weights import default_tag

    tag = default_tag(cfg.name)
    if w is not None and not w.tag:  # weights of someone's own training run, not the registry's
        return ""
    if w is not None:
        return (f" These are the default weights of `{cfg.name}` (`zoo.load({cfg.name!r}, pretrained=True)`)."
                if w.default else f" Not the default weights of `{cfg.name}` (those are `{cfg.name}.{tag}`): "
                f"name the tag to load them.")
    if repo_id is None and tag:
        return f" Its default weights (`zoo.load({cfg.name!r}, pretrained=True)`) are `{cfg.name}.{tag}`."
    return ""


def _summary_text(cfg: ModelConfig, w: Optional[Weights], repo_id: Optional[str]) -> str:
    if w is not None and w.importer == "larq_zoo":
        return (f"ImageNet weights of larq-zoo (release `{w.revision}`), imported into the `{cfg.name}` binary "
                f"neural network of the bnnzoo model zoo: `zoo.load` downloads larq-zoo's Keras file, checks its "
                f"sha256 and maps it onto the model {_matching(cfg.family)}.")
    if w is not None and w.importer == "reactnet":
        return (f"The ReActNet authors' ImageNet checkpoint (github.com/{w.hub_repo}), imported into the "
                f"`{cfg.name}` binary neural network of the bnnzoo model zoo: `zoo.load` reads their PyTorch file "
                "(placed by hand, see Files) with `torch.load(weights_only=True)` and maps it onto the model by "
                "parameter name (`zoo.reactnet_import`).")
    if w is not None and w.tag and not w.hub_repo:
        return (f"Weights for the `{cfg.name}` network of the bnnzoo model zoo, trained with bnnzoo and shipped "
                f"inside the package (`zoo/pretrained/{w.filename}`): `zoo.load` needs no download.")
    if w is not None and not w.tag:
        return (f"Weights for the `{cfg.name}` network of the bnnzoo model zoo"
                + (f", trained on {w.dataset}" if w.dataset else "") + ". Their `config.json` records the "
                "architecture, the preprocessing and the labels, so `zoo.load` needs nothing else.")
    if w is not None or repo_id:
        return f"Trained weights for the `{cfg.name}` binary neural network of the bnnzoo model zoo."
    return f"The `{cfg.name}` binary neural network of the bnnzoo model zoo."


def _matching(family: str) -> str:
    """How ``zoo.larq_import`` matches the layers of a larq-zoo file to this family's modules."""
    if "auto_named" in families.facts("LARQ_ZOO").get(family, {}):
        return ("by Keras layer class and build order (larq-zoo leaves this model's layers Keras' automatic "
                "names, `quant_conv2d_7`: the n-th layer of a class in the file fills the n-th module of that "
                "class); a file with a layer missing is refused, naming the layer")
    return "by layer name (larq-zoo names every layer of this model)"


@functools.lru_cache(maxsize=None)
def _wider_inputs(name: str) -> tuple[tuple[tuple[str, str], ...], int]:
    """The 1-bit-weight convolutions of ``name``'s tiny model whose inputs are not 1-bit, as (module,
    input kind), and how many convolutions are binary (1-bit inputs and weights)."""
    from .torch.layers import BINARY_WEIGHT_QUANTIZERS, BinaryConv2d

    cfg = get_config(name)
    model = families.builder(cfg.family)(cfg.replace(**cfg.tiny))
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, BinaryConv2d)]
    return (tuple((n, m.input_quantizer or "float") for n, m in convs
                  if not m.is_binary and m.weight_quantizer in BINARY_WEIGHT_QUANTIZERS),
            sum(m.is_binary for _, m in convs))


def _export_note(cfg: ModelConfig) -> str:
    """An ``## Export`` section for architectures with 1-bit-weight convolutions LCE cannot run as binary.

    Read from the modules of the tiny model (the same layer kinds as every size): a ``BinaryConv2d``
    with 1-bit weights but wider inputs (DoReFa-Net's 2-bit activations, a first layer's float image).
    """
    wider, binary = _wider_inputs(cfg.name)
    if not wider:
        return ""
    kinds = " or ".join(sorted({k for _, k in wider}))
    names = ", ".join(f"`{n}`" for n, _ in wider)
    return ("\n## Export\n\n"
            f"Of its {len(wider) + binary} convolutions with 1-bit weights, {len(wider)} ({names}) "
            f"take{'s' if len(wider) == 1 else ''} {kinds} "
            f"inputs, not 1-bit ones: LCE 0.16 has no kernel for them (`LceBconv2d` takes 1-bit inputs), so "
            "`bnnzoo convert --to tflite` writes them as float convolutions, without LCE's speed-up, and verifies "
            "the file so; the ONNX export (`--bitpack` included) stores their weights as float32, 32x what 1 bit "
            "would take, as `converters.onnx` packs only convolutions with 1-bit inputs and weights. "
            + (f"The other {binary} are binary: one `LceBconv2d` and one packed ONNX kernel each. " if binary else
               "None is binary: the TFLite file holds no `LceBconv2d`, the ONNX file no packed kernel. ")
            + "Checked at the "
            f"tiny size: `pytest tests/test_converters.py -k 'every_registered and {cfg.name}'`.\n")


def _kind(m: Metric) -> str:
    kind = m.source.partition(":")[0].strip()
    return kind if kind in ("published", "measured") else "measured"


def _load_args(cfg: ModelConfig, w: Optional[Weights], repo_id: Optional[str]) -> str:
    if w is not None and w.tag:
        return repr(f"{w.arch}.{w.tag}")
    if repo_id:
        return repr(f"hf-hub:{repo_id}")
    return repr(cfg.name)


def _preprocessing(w: Optional[Weights]) -> str:
    """The preprocessing and labels a record holds, as the card's architecture section says them."""
    if w is None:
        return ""
    resize = ("the whole image resized to the square" if w.resize == "squash" else
              f"shorter side resized to {round(w.input_size / w.crop_pct)}, centre crop" if w.crop_pct < 1 else
              "shorter side resized to the input, centre crop")
    labels = (f"\n- labels: {len(w.labels)} class names, in output order (`model.zoo_weights.labels`; `zoo.decode` "
              "names the top classes)" if w.labels else "")
    return f", normalised with mean {w.mean} and std {w.std}; {resize} ({w.interpolation}){labels}"


def _own_class_card(w: Weights, metrics: tuple, repo_id: Optional[str], sha256: Optional[str]) -> str:
    """The card of weights of a module class of its author's (``FILE.py:CLASS``), not a registered architecture."""
    from huggingface_hub import ModelCardData

    own = tuple(w.metrics) + tuple(m for m in metrics if m not in w.metrics)
    name = repo_id.split("/")[-1] if repo_id else w.module_class
    data = ModelCardData(library_name="bnnzoo", license=LICENSE, tags=[t for t in TAGS if t != "image-classification"]
                         + ["image-classification"], pipeline_tag="image-classification",
                         datasets=sorted({m.dataset for m in own}) or None, model_name=name,
                         eval_results=_eval_results(own, ("image-classification", "Image Classification")) or None)
    ref = f"hf-hub:{repo_id}" if repo_id else "FOLDER"
    return (f"---\n{data.to_yaml()}\n---\n\n# {name}\n\nWeights of `{w.module_class}`, a PyTorch module of its "
            f"author's built from the bnnzoo model zoo's layers" + (f", trained on {w.dataset}" if w.dataset else "")
            + ". `config.json` records the preprocessing and the labels; the class itself is not in this repo (nothing "
            "downloaded names code to import): build it from your copy of its file.\n\n## Usage\n\n```python\n"
            f"import zoo\n\nmodel = zoo.load('my_file.py:{w.module_class}', weights={ref!r})\n"
            "x = zoo.transforms(model)(image)[None]\nzoo.decode(model(x)[0], model)\n```\n\n## Figures\n\n"
            f"{_figures(own, ())}\n\n## Architecture\n\n- class: `{w.module_class}`\n- classes: {w.num_classes}, "
            f"input: {w.input_size}x{w.input_size}{_preprocessing(w)}\n"
            + (f"\n## Notes\n\n{w.notes}\n" if w.notes else "") + _provenance(w, repo_id, sha256))


def _figures(own: Sequence[Metric], reference: Sequence[Metric]) -> str:
    rows = ["| figure | value | data | kind | source |", "|---|---|---|---|---|"]
    for m in own:
        source = m.source.partition(":")[2].strip() if ":" in m.source else m.source
        rows.append(f"| {_METRIC_TYPES.get(m.name, (m.name, m.name))[1]} | {m.value:g} | {m.dataset} | "
                    f"{_kind(m)} | {source} |")
    for m in reference:
        rows.append(f"| {_METRIC_TYPES.get(m.name, (m.name, m.name))[1]} | {m.value:g} | {m.dataset} | "
                    f"published for the architecture, not these weights | {m.source.partition(':')[2].strip()} |")
    if len(rows) == 2:
        return "No accuracy figures yet."
    return "\n".join(rows)


def _provenance(w: Optional[Weights], repo_id: Optional[str], sha256: Optional[str]) -> str:
    if w is not None and w.tag and not w.hub_repo:
        return "\n".join(["", "## Files", "", f"- `zoo/pretrained/{w.filename}` (in the package), sha256 `{w.sha256}` "
                          "(checked on load); binary kernels stored as int8 signs (`bnnzoo pack`)"]) + "\n"
    if repo_id is None:
        return ""
    if w is not None and w.importer == "larq_zoo":
        from .larq_import import LARQ_ZOO_RELEASES

        return "\n".join([
            "", "## Files", "",
            f"- source: `{LARQ_ZOO_RELEASES}/{w.revision}/{w.filename}` (GitHub repo `{w.hub_repo}`, "
            f"release `{w.revision}`)",
            f"- `{w.filename}` sha256: `{w.sha256}` (checked after download)",
            "- converted on load by `zoo.larq_import`; no bnnzoo `model.safetensors` is published for these weights",
            "- offline: set `BNNZOO_LARQ_ZOO_URL` to a mirror, or place the file in `~/.cache/bnnzoo/larq_zoo/"
            f"{w.revision}/` (or under `$BNNZOO_CACHE`)",
        ]) + "\n"
    if w is not None and w.importer == "reactnet":
        return "\n".join([
            "", "## Files", "",
            f"- source: {w.url} (the link of the Models table in the README of GitHub repo `{w.hub_repo}`, "
            f"commit `{w.revision[:12]}`): a OneDrive page, downloaded by hand",
            f"- save it as `~/.cache/bnnzoo/reactnet/{w.filename}` (or under `$BNNZOO_CACHE`); its sha256 is "
            "logged on load (the authors publish none)",
            "- converted on load by `zoo.reactnet_import`; no bnnzoo `model.safetensors` is published for these "
            "weights",
        ]) + "\n"
    registered = w is not None and w.tag
    lines = ["", "## Files", "", f"- repo: `{repo_id}`" + (f", revision `{w.revision}`" if registered else "")]
    if sha256:
        lines.append(f"- `model.safetensors` sha256: `{sha256}`")
    lines.append("- `config.json`: the weights' record (architecture, preprocessing, labels, metrics), read as data")
    return "\n".join(lines) + "\n"


def write_model_cards(out_dir: Union[str, Path] = "MODEL_CARDS") -> list[Path]:
    """Writes one card per registered architecture and per registered weights into ``out_dir``.

    Returns:
        The files written (``<arch>.md`` and ``<arch>.<tag>.md``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in list_models(include_stages=True):
        written.append(out / f"{name}.md")
        written[-1].write_text(model_card(get_config(name)))
    for key, w in WEIGHTS.items():
        written.append(out / f"{key}.md")
        written[-1].write_text(model_card(w))
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m zoo.cards [OUT_DIR] [--check]``: (re)writes the model cards, or lists stale ones."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m zoo.cards", description="Regenerate MODEL_CARDS/.")
    parser.add_argument("out_dir", nargs="?", default="MODEL_CARDS", help="folder of the cards (default MODEL_CARDS)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a card differs from its "
                        "regeneration, is missing, or has no registered source")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write_model_cards(args.out_dir):
            print(path)
        return 0
    out = Path(args.out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p.read_text() for p in write_model_cards(tmp)}
    committed = {p.name: p.read_text() for p in out.glob("*.md") if p.name != "README.md"}
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    for name in stale:
        print(f"{out / name}: {'missing' if name not in committed else 'orphan' if name not in fresh else 'stale'}")
    if stale:
        print(f"regenerate with `python -m zoo.cards {out}`")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
