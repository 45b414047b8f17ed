#!/usr/bin/env bash
# Create/update the project's virtual environment in .venv with pinned dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip==26.3"
.venv/bin/python -m pip install --quiet -e ".[dev]" --config-settings editable_mode=compat
.venv/bin/python -m pip check
