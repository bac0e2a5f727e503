"""``bnnzoo eval``: accuracy, size, ops and latency of zoo models against MobileNet-v1.

Examples::

    bnnzoo eval meliusnet22 realtobinary_resnet18 --baseline mobilenet_v1 --data mnist -o reports/
    bnnzoo eval meliusnet22.mnist mobilenet_v1_025.mnist --baseline none --data mnist -o reports/mnist
    bnnzoo eval --all --runtimes lce,onnx,torch --threads 1,2 -o reports/
    bnnzoo eval --compare old/results.json new/results.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

__all__ = ["add_eval_arguments", "run_eval", "main"]

_ARGV: Optional[list[str]] = None  # the arguments main() was given, for the recorded command line


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``bnnzoo eval``."""
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="models: NAME[.TAG] (meliusnet22.mnist), a folder or .safetensors file saved with zoo.save, "
                        "or hf-hub:OWNER/NAME[@REV]; none: meliusnet22 realtobinary_resnet18")
    p.add_argument("--all", action="store_true",
                   help="every registered model except detectors and training-stage variants (*_teacher, *_stageN)")
    p.add_argument("--baseline", default="mobilenet_v1",
                   help="mobilenet_v1 adds MobileNet-v1 at widths 0.25/0.5/0.75/1.0; 'none' adds nothing")
    p.add_argument("--runtimes", default="lce,litert,onnx,torch",
                   help="comma-separated: lce (LCE interpreter; float models also through TensorFlow's "
                        "tf.lite.Interpreter with XNNPACK), litert (the LCE file in ai-edge-litert with bnnzoo's "
                        "kernels, the 'litert' extra), xnnpack, onnx, torch; by default litert is left out, with "
                        "a note, where ai-edge-litert is not installed")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts, e.g. 1,2")
    p.add_argument("--runs", type=int, default=20, help="timed runs per model, runtime and thread count (>= 20 for a report)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before them")
    p.add_argument("--data", default="", help="'mnist' (embedded digits) or an ImageNet-style folder "
                                              "(<class>/*.jpg, or holding val/<class>/*.jpg); none: no accuracy")
    p.add_argument("--weights", action="append", default=[], metavar="[MODEL=]FILE|hf-hub:REPO",
                   help="weights of one model (repeatable; MODEL= may be left out when one model is named): a "
                        ".safetensors file, hf-hub:owner/repo[@rev] or a tag; other models are evaluated with "
                        "initialised weights")
    p.add_argument("--limit", type=int, default=0, help="evaluate accuracy on at most this many images (0: all)")
    p.add_argument("--batch-size", type=int, default=50, help="batch of the accuracy evaluation")
    p.add_argument("--tiny", action="store_true", help="build each model with its config's tiny overrides (smoke runs)")
    p.add_argument("-o", "--output", "--out", dest="out", default="reports",
                   help="folder for report.md, results.json and the plots")
    p.add_argument("--keep-exports", action="store_true", help="keep the exported files in OUT/exports/")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--compare", nargs=2, metavar=("OLD_JSON", "NEW_JSON"),
                   help="print new/old ratios of two results.json files (runs nothing else)")


def run_eval(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo eval`` (or ``--compare``); returns the exit status (1 if any model failed)."""
    from . import report

    if args.compare:
        print(report.compare(report.load_results(args.compare[0]), report.load_results(args.compare[1])))
        return 0
    from . import harness

    if args.runs < 1 or args.warmup < 0:
        raise ValueError(f"--runs must be >= 1 and --warmup >= 0 (got {args.runs}, {args.warmup})")
    if args.batch_size < 1 or args.limit < 0:
        raise ValueError(f"--batch-size must be >= 1 and --limit >= 0 (0: all images) (got {args.batch_size}, "
                         f"{args.limit})")
    _require_matplotlib()  # the report's plots: fail before hours of measuring, not after
    names, tagged = _split_tags(args.models)
    models = harness.select_models(names, args.all, args.baseline)
    if args.runtimes == harness.DEFAULT_RUNTIMES:
        runtimes, skipped = harness.default_runtimes()
    else:
        runtimes, skipped = harness.parse_runtimes(args.runtimes), {}
    threads = harness.parse_threads(args.threads)
    bare = next((w for w in args.weights if "=" not in w), None)
    if bare is not None and len(names) != 1:
        raise ValueError(f"--weights {bare}: name its model, --weights MODEL={bare} (MODEL= may be left out only "
                         "when one model is named)")
    items = [w if "=" in w else f"{names[0]}={w}" for w in args.weights]
    given = harness.parse_weights(items, models)
    twice = sorted(set(given) & set(tagged))
    if twice:
        raise ValueError(f"{twice[0]}.{tagged[twice[0]]} names its weights already: drop --weights for it, or "
                         f"give the bare architecture")
    weights = {**tagged, **given}
    harness.check_data(args.data)
    from pathlib import Path

    opts = harness.EvalOptions(
        models=models, runtimes=runtimes, threads=threads, runs=args.runs, warmup=args.warmup, data=args.data,
        weights=weights, tiny=args.tiny, limit=args.limit, batch_size=args.batch_size,
        workdir=str(Path(args.out) / "exports") if args.keep_exports else "", progress=not args.no_progress,
        command=harness.command_line(_ARGV if _ARGV is not None else sys.argv[2:]), skipped_runtimes=skipped)
    for rt_name, why in skipped.items():  # after every check of the arguments: an error stays one line
        print(f"bnnzoo eval: note: runtime {rt_name} left out: {why}", file=sys.stderr)
    results = harness.evaluate(opts)
    paths = report.write_report(results, args.out)
    print(report.summary_table(results))
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    failed = [r["model"] for r in results["models"] if r["status"] != "ok"]
    if failed:
        print(f"bnnzoo eval: {len(failed)} of {len(results['models'])} models had failures: {', '.join(failed)} "
              f"(see the Failures section of {paths['report']})", file=sys.stderr)
        return 1
    return 0


def _split_tags(models: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Model references -> architectures and the weights they name (``zoo.refs.split``):
    ``["meliusnet22.mnist", "run7/", "mobilenet_v1"]`` -> ``(["meliusnet22", "quicknet", "mobilenet_v1"],
    {"meliusnet22": "mnist", "quicknet": "run7/"})``."""
    from zoo.refs import split

    names, tags = [], {}
    for item in models:
        name, weights = split(item)
        names.append(name)
        if weights:
            tags[name] = weights
    return names, tags


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("bnnzoo eval plots its report with matplotlib, which is not installed: "
                          "pip install 'bnnzoo[eval]'") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m eval.cli ...``: ``bnnzoo eval`` for a ``bnnzoo`` without the subcommand registered."""
    import zoo.cli

    zoo.cli.COMMANDS.setdefault("eval", ("eval.cli", "accuracy, size, ops and latency against MobileNet-v1, as a report"))
    from eval import cli as module  # under ``python -m eval.cli`` this module is __main__, not eval.cli

    module._ARGV = list(sys.argv[1:] if argv is None else argv)
    try:
        return zoo.cli.main(["eval", *module._ARGV])
    finally:
        module._ARGV = None


if __name__ == "__main__":
    sys.exit(main())
