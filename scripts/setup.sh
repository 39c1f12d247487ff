#!/usr/bin/env bash
# Set up techmatch on a fresh machine: a virtualenv in .venv with the project and its test tools.
# Idempotent: a second run only checks. Works offline against a PyPI mirror; downloads no model weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# A CPU build of torch is enough (no GPU here) and far smaller than the default CUDA wheels.
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "torch==2.13.0" || python -m pip install -q torch
fi
python -m pip install -q -e ".[dev]"
# Chinese glyphs for the evaluation plots (optional: plots fall back without them).
if ! fc-list 2>/dev/null | grep -qi "CJK"; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q fonts-noto-cjk >/dev/null 2>&1)) || echo "note: fonts-noto-cjk not installed; plots will show Chinese as boxes"
  fi
fi
echo "techmatch set up in .venv ($(python -c 'import techmatch, sys; print(sys.version.split()[0])'))"
