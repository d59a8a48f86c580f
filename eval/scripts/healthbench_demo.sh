#!/usr/bin/env bash
# Grade and score HealthBench examples end to end on CPU, with real parts only:
#   1. serve SmolLM2-135M-Instruct with vLLM on CPU (rubricrl serve, loopback only),
#   2. sample policy answers from it (rubricrl generate),
#   3. grade them with the same model as judge, HealthBench grader template, JSON-schema verdicts
#      (rubricrl grade --judge smollm2-vllm),
#   4. score with the reference metric definitions (rubricrl score --format healthbench --json).
# Every step resumes: re-running continues where an interrupted run stopped.
# Usage: eval/scripts/healthbench_demo.sh [N_EXAMPLES] [OUT_DIR]
set -euo pipefail
N=${1:-${N:-10}}
OUT=${2:-${OUT:-runs/healthbench-demo}}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT" runs
# The smollm2-vllm judge and policy configs read this file. It may belong to a server the user started:
# such a server is reused and left running; the file is never deleted here (a stale one is overwritten by
# the server this script starts, once that server answers).
ENDPOINT=runs/judge.endpoint.json

# Exit 0 when the endpoint file names a server that answers /v1/models.
healthy() {
  "$BIN/python" - "$ENDPOINT" <<'PY'
import json, sys, urllib.request
try:
    url = json.load(open(sys.argv[1]))["base_url"].rstrip("/")
    urllib.request.urlopen(url + "/models", timeout=3).read()
except Exception:
    sys.exit(1)
PY
}

"$BIN/rubricrl" models prepare smollm2-135m-instruct
DATA=$("$BIN/rubricrl" data path healthbench-500)
echo "[demo] data: $DATA (first $N examples); outputs in $OUT"

if [ -s "$ENDPOINT" ] && healthy; then
  echo "[demo] reusing the judge server in $ENDPOINT (left running)"
else
  "$BIN/rubricrl" serve --model smollm2-135m-instruct --endpoint-file "$ENDPOINT" --log-file "$OUT/vllm.log" &
  SERVER=$!
  trap 'kill -TERM $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 240); do
    [ -s "$ENDPOINT" ] && healthy && break
    kill -0 $SERVER 2>/dev/null || { echo "[demo] vLLM server exited; see $OUT/vllm.log" >&2; exit 1; }
    sleep 1
  done
  healthy || { echo "[demo] vLLM server not ready after 240 s; see $OUT/vllm.log" >&2; exit 1; }
fi

t0=$(date +%s)
"$BIN/rubricrl" generate --data "$DATA" --policy smollm2-vllm --out "$OUT/responses.jsonl" --limit "$N"
t1=$(date +%s)
"$BIN/rubricrl" grade --data "$DATA" --responses "$OUT/responses.jsonl" --judge smollm2-vllm \
  --out "$OUT/graded.jsonl" --limit "$N"
t2=$(date +%s)
"$BIN/rubricrl" score --format healthbench "$OUT/graded.jsonl" --json > "$OUT/scores.json"
"$BIN/rubricrl" score --format healthbench "$OUT/graded.jsonl"
echo "[demo] generate $((t1 - t0)) s, grade $((t2 - t1)) s; scores in $OUT/scores.json"
