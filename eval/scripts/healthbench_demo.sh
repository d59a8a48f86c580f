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
# shellcheck source=eval/scripts/demo_server.sh
. "$(dirname "$0")/demo_server.sh"

"$BIN/rubricrl" models prepare smollm2-135m-instruct
DATA=$("$BIN/rubricrl" data path healthbench-500)
echo "[demo] data: $DATA (first $N examples); outputs in $OUT"

demo_server demo "$OUT/vllm.log" 240

t0=$(date +%s)
"$BIN/rubricrl" generate --data "$DATA" --policy smollm2-vllm --out "$OUT/responses.jsonl" --limit "$N"
t1=$(date +%s)
"$BIN/rubricrl" grade --data "$DATA" --responses "$OUT/responses.jsonl" --judge smollm2-vllm \
  --out "$OUT/graded.jsonl" --limit "$N"
t2=$(date +%s)
"$BIN/rubricrl" score --format healthbench "$OUT/graded.jsonl" --json > "$OUT/scores.json"
"$BIN/rubricrl" score --format healthbench "$OUT/graded.jsonl"
echo "[demo] generate $((t1 - t0)) s, grade $((t2 - t1)) s; scores in $OUT/scores.json"
