#!/usr/bin/env bash
# Set up the environment, generate the SYNTHETIC PTB-XL-format dataset and train on its rhythm task.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python train.py --task rhythm --dataset synthetic --arch resnet1d_wang --epochs 5 "$@"
