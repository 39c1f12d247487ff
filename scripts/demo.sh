#!/usr/bin/env bash
# Set up techmatch, load the demo world into the embedded default (SQLite + FAISS under var/techmatch),
# create a broker key and serve the API on http://127.0.0.1:8000 (docs: /docs).
#   bash scripts/demo.sh                 # 2,000 results / 300 needs: ready in a few minutes on 2 cores
#   DEMO_SIZE=full bash scripts/demo.sh  # the whole 30,000-result world (embeds once, cached afterwards)
# A second run reuses the database, the index and the embedding cache: nothing is embedded again.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${DEMO_SIZE:-small}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
HOME_DIR=${TECHMATCH_HOME:-var/techmatch}
export TECHMATCH_HOME="$HOME_DIR"

bash scripts/setup.sh
. .venv/bin/activate

techmatch load-demo --size "$SIZE"
KEY=$(techmatch keys create --role broker --label demo)
cat <<MSG

  techmatch is starting on http://$HOST:$PORT
  API docs:    http://$HOST:$PORT/docs   (click "Authorize" and paste the key)
  broker key:  $KEY
  try:         curl -s -X POST http://$HOST:$PORT/match -H "X-API-Key: $KEY" \\
                 -H 'content-type: application/json' -d '{"text": "动力电池正极材料循环寿命提升", "k": 5}'

MSG
exec techmatch serve --host "$HOST" --port "$PORT"
