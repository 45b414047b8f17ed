#!/usr/bin/env python
"""Train a PTB-XL benchmark model: ``python train.py --task rhythm [--dataset synthetic] ...``.

Thin wrapper over :mod:`ecg_keras.training`; ``python train.py --help`` lists the options.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ecg_keras.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
