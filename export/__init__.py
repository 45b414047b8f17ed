"""Command-line export tools over :mod:`ecg_keras.export` (run ``python -m export --help``)."""
