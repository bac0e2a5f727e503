"""Evaluation: ``bnnzoo eval`` (accuracy, size, ops and latency against MobileNet-v1) and benchmarks.

``eval.harness`` runs the evaluation, ``eval.report`` writes ``report.md``, ``results.json``
and the plots, ``eval.timing`` holds the latency measurement every benchmark shares, and
``eval.cli`` is the ``bnnzoo eval`` subcommand.
"""
