"""Evaluation and benchmarks: what ``bnnzoo eval`` measures (accuracy, size, ops and latency against
MobileNet-v1), the reports it writes, and benchmark scripts that print tables.

``eval.harness`` runs the evaluation, ``eval.report`` writes ``report.md``, ``results.json``
and the plots, ``eval.timing`` holds the latency measurement every benchmark shares; the
``bench_*`` modules are run with ``python -m eval.bench_...``. The command itself is
``bnnzoo.commands.eval``.
"""
