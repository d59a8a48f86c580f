#!/usr/bin/env bash
# Generate instance rubrics end to end on CPU, with real parts only:
#   1. serve SmolLM2-135M-Instruct with vLLM on CPU (rubricrl serve, loopback only), unless one already answers,
#   2. generate one instance rubric per prompt for the first N Rubicon stage-2 prompts through it
#      (rubricrl rubrics generate: JSON-schema answers, validation, retries, failures file),
#   3. gate them: near-duplicate criteria, reference copies, and discrimination (k=4 policy responses
#      sampled from the same server, graded by it as judge; rubrics whose scores do not vary are dropped),
#   4. check the output with rubricrl validate, print the gate summary, and stop the server it started.
# Resumes: re-running continues where an interrupted run stopped.
# Usage: eval/scripts/rubrics_demo.sh [N_PROMPTS] [OUT_DIR]
set -euo pipefail
N=${1:-${N:-3}}
OUT=${2:-${OUT:-runs/rubrics-demo}}
BIN=${BIN:-.venv/bin}
PROMPTS=${PROMPTS:-replications/rubicon/data/stage2_prompts.jsonl}
mkdir -p "$OUT" runs
# shellcheck source=eval/scripts/demo_server.sh
. "$(dirname "$0")/demo_server.sh"

"$BIN/rubricrl" models prepare smollm2-135m-instruct
echo "[rubrics-demo] prompts: $PROMPTS (first $N); outputs in $OUT"
demo_server rubrics-demo "$OUT/vllm.log" 300

t0=$(date +%s)
rc=0
"$BIN/rubricrl" rubrics generate --prompts "$PROMPTS" --config smollm2-vllm --out "$OUT/rubrics.jsonl" --limit "$N" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 3 ] || exit "$rc"   # 3: some prompts failed (see rubrics.failures.jsonl)
t1=$(date +%s)
if [ -s "$OUT/rubrics.jsonl" ]; then "$BIN/rubricrl" validate "$OUT/rubrics.jsonl"; fi
cat "$OUT/rubrics.summary.md"
echo "[rubrics-demo] generate + gates $((t1 - t0)) s; rubrics in $OUT/rubrics.jsonl, dropped ones in $OUT/rubrics.gates.jsonl,"
echo "[rubrics-demo] summary $OUT/rubrics.summary.json, histogram $OUT/rubrics.gate_hist.png"
