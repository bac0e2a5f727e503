"""``bnnzoo eval``: accuracy, size, ops and latency of zoo models against MobileNet-v1.

Examples::

    bnnzoo eval meliusnet22 realtobinary_resnet18 -o reports/          # at 224x224, against MobileNet-v1
    bnnzoo eval meliusnet22.mnist mobilenet_v1_025.mnist --data mnist --quick -o out/
    bnnzoo eval --all meliusnet22.mnist realtobinary_resnet18.mnist --data mnist --jobs 2 -o reports/
    bnnzoo eval --compare old/results.json new/results.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

__all__ = ["add_arguments", "run", "needs_tensorflow"]


def needs_tensorflow(args: argparse.Namespace) -> bool:
    """Measuring in LCE or TFLite's interpreter (the default runtimes hold lce) imports TensorFlow."""
    if args.compare or args.from_results:
        return False
    return any(rt in str(args.runtimes or "lce") for rt in ("lce", "xnnpack"))


def _argv(args: argparse.Namespace) -> list[str]:
    """The command's arguments as typed, for the command line the report records."""
    return list(getattr(args, "command_argv", sys.argv[2:]))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Adds the arguments of ``bnnzoo eval`` to ``p``."""
    from eval import harness

    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="models: NAME[.TAG] (meliusnet22.mnist), a folder or .safetensors file saved with zoo.save, "
                        "or hf-hub:OWNER/NAME[@REV]; none: meliusnet22 realtobinary_resnet18")
    p.add_argument("--all", action="store_true",
                   help="every registered model except detectors and training-stage variants (*_teacher, *_stageN)")
    p.add_argument("--baseline", default="mobilenet_v1",
                   help="mobilenet_v1 adds MobileNet-v1 at widths 0.25/0.5/0.75/1.0; 'none' adds nothing")
    p.add_argument("--runtimes", default=None,
                   help="comma-separated: litert (the LCE file in ai-edge-litert with bnnzoo's kernels, the 'litert' "
                        "extra), lce (LCE's interpreter, indirect-BGEMM kernels), lce_default (its default kernels), "
                        "xnnpack (TensorFlow's tf.lite.Interpreter with XNNPACK, float models; comes with lce), onnx, "
                        f"torch; default {harness.DEFAULT_RUNTIMES} (litert left out, with a note, where "
                        "ai-edge-litert "
                        f"is not installed), with --quick {harness.QUICK['runtimes']}")
    p.add_argument("--threads", default=None, help="comma-separated thread counts, e.g. 1,2 (default 1)")
    p.add_argument("--runs", type=int, default=None,
                   help="most timed runs per model, runtime and thread count "
                        f"(default 20, --quick {harness.QUICK['runs']})")
    p.add_argument("--min-runs", type=int, default=None,
                   help="fewest timed runs; after them a runtime stops once its interquartile range is within "
                        f"--rel-iqr of its median (default 5, --quick {harness.QUICK['min_runs']}; = --runs: no "
                        "early stop)")
    p.add_argument("--rel-iqr", type=float, default=0.05, help="see --min-runs")
    p.add_argument("--budget", type=float, default=10.0,
                   help="seconds of timed runs after which a runtime stops (once it has --min-runs)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs before them")
    p.add_argument("--quick", action="store_true",
                   help=f"the headline only: runtimes {harness.QUICK['runtimes']} (+ xnnpack for float models), "
                        f"threads {harness.QUICK['threads']}, at most {harness.QUICK['runs']} runs "
                        "(what the demo runs)")
    p.add_argument("--data", default="", help="'mnist' (embedded digits) or an ImageNet-style folder "
                                              "(<class>/*.jpg, or holding val/<class>/*.jpg); none: no accuracy")
    p.add_argument("--weights", action="append", default=[], metavar="[MODEL=]FILE|hf-hub:REPO",
                   help="weights of one model (repeatable; MODEL= may be left out when one model is named): a "
                        ".safetensors file, hf-hub:owner/repo[@rev] or a tag; accuracy is measured for these only "
                        "(on --data, "
                        "at the weights' input size); every model is timed at its ImageNet input size (224x224), with "
                        "these weights where they are of that size, else with seeded random weights")
    p.add_argument("--limit", type=int, default=0, help="evaluate accuracy on at most this many images (0: all)")
    p.add_argument("--batch-size", type=int, default=50, help="batch of the accuracy evaluation")
    p.add_argument("--tiny", action="store_true", help="build each model with its config's tiny overrides (smoke runs)")
    p.add_argument("-o", "--output", "--out", dest="out", default="reports",
                   help="folder for report.md, results.json and the plots")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="folder of the verified exports, reused while a model's weights, config and the converting "
                        "libraries are the same (default: $BNNZOO_CACHE/exports, else ~/.cache/bnnzoo/exports)")
    p.add_argument("--no-cache", action="store_true", help="convert into a temporary folder, removed afterwards")
    p.add_argument("--jobs", type=int, default=1,
                   help="processes that convert every model first (each export verified once, then cached), before "
                        "the models are timed one by one")
    p.add_argument("--arm64", default=None, metavar="FILE",
                   help="a JSON file of `python -m eval.bench_arm64 --json FILE`: adds its estimated ARM64 "
                        "(Raspberry Pi 4) panel to the report")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--compare", nargs=2, metavar=("OLD_JSON", "NEW_JSON"),
                   help="print new/old ratios of two results.json files (runs nothing else)")
    p.add_argument("--from-results", metavar="JSON",
                   help="write the report of an existing results.json into -o again (measures nothing; with "
                        "--arm64, adds its panel)")


def run(args: argparse.Namespace) -> int:
    """Runs ``bnnzoo eval`` (or ``--compare``); returns the exit status (1 if any model failed)."""
    from eval import report

    if args.compare:
        print(report.compare(report.load_results(args.compare[0]), report.load_results(args.compare[1])))
        return 0
    if args.from_results:
        from eval import harness

        results = report.load_results(args.from_results)
        arm64 = report.load_arm64(args.arm64) if args.arm64 else results.get("arm64")
        results["rendered_by"] = harness.command_line(_argv(args))
        paths = report.write_report(results, args.out, arm64)
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0
    from eval import harness

    quick = harness.QUICK if args.quick else {}
    runs = args.runs if args.runs is not None else quick.get("runs", 20)
    min_runs = args.min_runs if args.min_runs is not None else min(quick.get("min_runs", 5), runs)
    if runs < 1 or args.warmup < 0 or not 1 <= min_runs <= runs:
        raise ValueError(f"--runs must be >= 1, --min-runs from 1 to --runs and --warmup >= 0 (got {runs}, "
                         f"{min_runs}, {args.warmup})")
    if args.rel_iqr < 0 or args.budget <= 0 or args.jobs < 1:
        raise ValueError(f"--rel-iqr must be >= 0, --budget > 0 and --jobs >= 1 (got {args.rel_iqr}, {args.budget}, "
                         f"{args.jobs})")
    arm64 = report.load_arm64(args.arm64) if args.arm64 else None  # a bad file fails before any measuring
    if args.batch_size < 1 or args.limit < 0:
        raise ValueError(f"--batch-size must be >= 1 and --limit >= 0 (0: all images) (got {args.batch_size}, "
                         f"{args.limit})")
    _require_matplotlib()  # the report's plots: fail before hours of measuring, not after
    names, tagged = _split_tags(args.models)
    models = harness.select_models(names, args.all, args.baseline)
    if args.runtimes is None:
        runtimes, skipped = harness.default_runtimes(quick.get("runtimes", harness.DEFAULT_RUNTIMES))
    else:
        runtimes, skipped = harness.parse_runtimes(args.runtimes), {}
    threads = harness.parse_threads(args.threads or quick.get("threads", "1"))
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
    from converters.cache import cache_root

    opts = harness.EvalOptions(
        models=models, runtimes=runtimes, threads=threads, runs=runs, warmup=args.warmup, min_runs=min_runs,
        rel_iqr=args.rel_iqr, budget_s=args.budget, data=args.data, weights=weights, tiny=args.tiny,
        limit=args.limit, batch_size=args.batch_size, cache="" if args.no_cache else str(args.cache or cache_root()),
        jobs=args.jobs, quick=args.quick, progress=not args.no_progress,
        command=harness.command_line(_argv(args)), skipped_runtimes=skipped)
    for rt_name, why in skipped.items():  # after every check of the arguments: an error stays one line
        print(f"bnnzoo eval: note: runtime {rt_name} left out: {why}", file=sys.stderr)
    results = harness.evaluate(opts)
    paths = report.write_report(results, args.out, arm64)
    print(report.summary_table(results))
    print("\n" + "\n".join(line.replace("**", "") for line in report.answer(results)))
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
