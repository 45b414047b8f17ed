#!/usr/bin/env bash
# Create/update the project's virtual environment in .venv: ecg_keras (editable) with CPU
# TensorFlow and the dev tools, at the exact versions in constraints.txt.
# Python: $PYTHON if set, else the first of python3.11, 3.12, 3.13, 3.10, python3 that is a
# supported version (3.10-3.13, the Pythons TensorFlow 2.21 has wheels for).
set -euo pipefail
cd "$(dirname "$0")/.."
supported() { "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null; }
if [ ! -x .venv/bin/python ]; then
  if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
    supported "$PY" || { echo "setup.sh: PYTHON=$PY is not Python 3.10-3.13" >&2; exit 1; }
  else
    PY=
    for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
      if command -v "$candidate" >/dev/null && supported "$candidate"; then PY=$candidate; break; fi
    done
    [ -n "$PY" ] || { echo "setup.sh: no Python 3.10-3.13 found; set PYTHON=/path/to/python3.X" >&2; exit 1; }
  fi
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip==26.3"
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[cpu,dev]" --config-settings editable_mode=compat
.venv/bin/python -m pip check
