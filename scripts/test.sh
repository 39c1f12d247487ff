#!/usr/bin/env bash
# Set up, then run the whole test suite (what CI runs). The service tests run on SQLite + FAISS and, with a
# throwaway PostgreSQL server started here (PostgreSQL 16 + pgvector from the pgserver package of the dev extra,
# else Debian's), on PostgreSQL + pgvector too (in CI that server, with pgvector, is required).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# Headless Chromium for the web workbench's browser tests (Playwright drives Debian's build; never its own download).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
    || echo "note: chromium not installed; the browser tests will skip (and fail in CI)" >&2
fi
if [ -z "${TECHMATCH_TEST_PG_URL:-}" ]; then
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q postgresql >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q postgresql >/dev/null 2>&1)) || true
  fi
  if url=$(bash scripts/postgres.sh start); then
    export TECHMATCH_TEST_PG_URL="$url"
    trap 'bash scripts/postgres.sh stop' EXIT
  elif [ "${CI:-}" = "true" ]; then
    echo "error: could not start PostgreSQL for the service tests" >&2
    exit 1
  else
    echo "note: PostgreSQL not available; the PostgreSQL half of the service tests will skip" >&2
  fi
fi
ruff check .
lint-imports --no-cache >/dev/null || lint-imports --no-cache  # layers contract (pyproject.toml)
# Two workers, one test file each (module fixtures stay in one process): the suite waits on servers, browsers and
# subprocesses as much as it computes, so two workers finish it in about 6 minutes on 2 cores.
python -m pytest -q -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
