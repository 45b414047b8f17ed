"""Checkout shim: ``python -m export`` runs :mod:`ecg_keras.cli.export` (installed as ``ecg-keras export``)."""
