#!/usr/bin/env python
"""Evaluate ECG predictions (thin wrapper = ``ecg-keras evaluate``; logic in ``ecg_keras.cli.evaluate``).

    python evaluate.py RUN_DIR [RUN_DIR ...] [--out DIR]
    python evaluate.py --y-true Y.npy --y-pred P.npy [--bootstrap-ids IDS.npy | --bootstrap N --seed S]
                       [--save-ids OUT_IDS.npy] --json OUT.json
"""
import sys

from ecg_keras.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
