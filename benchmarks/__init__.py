"""Reproducible performance benchmark of ecg_keras on the current machine.

    python -m benchmarks                         # default settings (< 10 min on 2 cores)
    python -m benchmarks --compare benchmarks/results/after.json
    python -m benchmarks --archs resnet1d_wang --quick

See :mod:`benchmarks.run` for what is measured and docs/RESULTS.md for the results.
"""
