#!/usr/bin/env bash
# Set up, then run the whole test suite (what CI runs). PostgreSQL tests run when a server can be started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if [ -z "${TECHMATCH_TEST_PG_URL:-}" ] && [ -f scripts/postgres.sh ]; then
  if url=$(bash scripts/postgres.sh start 2>/dev/null); then
    export TECHMATCH_TEST_PG_URL="$url"
  fi
fi
ruff check .
python -m pytest -q "$@"
