#!/bin/bash
# Match p95 while bulk writes run (issue 22): one server, levels RO W RO W RO W, 1500 new needs each.
# usage: NEEDS=dir KEY=tm_... [CHECKS=together] bash eval/benchmarks/write_pairs.sh LABEL HOME PORT [DATABASE_URL]
set -u
cd "$(dirname "$0")/../.." && . .venv/bin/activate
NEEDS=${NEEDS:?set NEEDS to a folder of needs0.jsonl..needs5.jsonl, 1500 need rows each}; ROOT=${OUT_ROOT:-/tmp/write-pairs}
LABEL=$1; HOMED=$2; PORT=$3
if [ -n "${4:-}" ]; then export TECHMATCH_DATABASE_URL=$4; fi
KEY=${KEY:?set KEY to a broker key of HOME}
OUT=$ROOT/$LABEL; rm -rf $OUT; mkdir -p $OUT/cache
uptime > $OUT/uptime
TECHMATCH_CACHE_DIR=$OUT/cache TECHMATCH_HOME=$HOMED techmatch serve --host 127.0.0.1 --port $PORT > $OUT/serve.log 2>&1 &
SPID=$!
for i in $(seq 1 180); do curl -sf http://127.0.0.1:$PORT/health >/dev/null && break; sleep 1; done
for n in 1 2 3; do
  uptime >> $OUT/uptime
  python scripts/loadtest.py --url http://127.0.0.1:$PORT --key "$KEY" --concurrency 8 --requests 1500 --duration 120 --needs $NEEDS/needs$((2*n-2)).jsonl --json > $OUT/ro$n.json 2>$OUT/ro$n.err
  python scripts/loadtest.py --url http://127.0.0.1:$PORT --key "$KEY" --concurrency 8 --requests 1500 --duration 120 --needs $NEEDS/needs$((2*n-1)).jsonl --writes --bulk 10 --write-seed $((100 + 10 * n)) ${CHECKS:+--checks $CHECKS} --json > $OUT/w$n.json 2>$OUT/w$n.err
done
uptime >> $OUT/uptime
kill $SPID; wait $SPID
python3 - $OUT <<'PY'
import json, sys
out = sys.argv[1]
for n in (1, 2, 3):
    ro = json.load(open(f"{out}/ro{n}.json"))["levels"][0]; w = json.load(open(f"{out}/w{n}.json"))["levels"][0]
    print(f"pair {n}: read-only {ro['requests_per_s']} req/s p50/p95/p99 {ro['p50']}/{ro['p95']}/{ro['p99']} | writes {w['requests_per_s']} req/s "
          f"{w['p50']}/{w['p95']}/{w['p99']} ratio {w['p95']/ro['p95']:.2f}x | {w['bulk_writes']} writes ({w['records_written']}) "
          f"write p50/p95 {w.get('write_p50')}/{w.get('write_p95')} errors {ro['errors']}{w['errors']}{w['write_errors']} not visible {w['not_visible']}/{w['visibility_checked']}")
PY
cat $OUT/uptime
