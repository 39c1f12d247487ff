#!/usr/bin/env bash
# Set up techmatch, load the demo world into the embedded default (SQLite + FAISS under var/techmatch),
# create a broker key and the demo logins of the web workbench, and serve both on http://127.0.0.1:8000
# (workbench: /web, API docs: /docs).
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
# Demo logins for the workbench (left as they are if they exist); E003 has needs in every demo size.
techmatch users create --username demo-broker --password demo-broker-2026 --role broker --name 王经理 --exist-ok >/dev/null
techmatch users set-admin --username demo-broker >/dev/null   # the demo broker opens the admin pages too
techmatch users create --username demo-enterprise --password demo-enterprise-2026 --role enterprise \
  --enterprise E003 --name "通明航空 李工" --exist-ok >/dev/null
cat <<MSG

  techmatch is starting on http://$HOST:$PORT
  workbench:   http://$HOST:$PORT/web/
               broker      demo-broker / demo-broker-2026
               enterprise  demo-enterprise / demo-enterprise-2026   (enterprise E003)
  API docs:    http://$HOST:$PORT/docs   (click "Authorize" and paste the key)
  broker key:  $KEY
  try:         curl -s -X POST http://$HOST:$PORT/match -H "X-API-Key: $KEY" \\
                 -H 'content-type: application/json' -d '{"text": "动力电池正极材料循环寿命提升", "k": 5}'

MSG
exec techmatch serve --host "$HOST" --port "$PORT"
