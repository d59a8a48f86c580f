# Sourced by the CPU demos (healthbench_demo.sh, rubrics_demo.sh): reuse or start the SmolLM2 vLLM server.
#
# The smollm2-vllm judge and policy configs read runs/judge.endpoint.json. It may belong to a server the user
# started: such a server is reused and left running, and the file is never deleted here (a stale one is
# overwritten by the server started here, once that server answers). A server started here is stopped when
# the demo exits (an EXIT trap in the demo's shell).
#
# Needs BIN (the venv's bin folder). Usage: demo_server TAG LOG_FILE WAIT_S
ENDPOINT=runs/judge.endpoint.json

# Exit 0 when the endpoint file names a server that answers /v1/models.
demo_server_healthy() {
  "$BIN/python" - "$ENDPOINT" <<'PY'
import json, sys, urllib.request
try:
    url = json.load(open(sys.argv[1]))["base_url"].rstrip("/")
    urllib.request.urlopen(url + "/models", timeout=3).read()
except Exception:
    sys.exit(1)
PY
}

demo_server() {
  local tag=$1 log=$2 wait_s=$3
  mkdir -p runs
  if [ -s "$ENDPOINT" ] && demo_server_healthy; then
    echo "[$tag] reusing the server in $ENDPOINT (left running)"
    return 0
  fi
  "$BIN/rubricrl" serve --model smollm2-135m-instruct --endpoint-file "$ENDPOINT" --log-file "$log" &
  DEMO_SERVER_PID=$!
  trap 'kill -TERM $DEMO_SERVER_PID 2>/dev/null; wait $DEMO_SERVER_PID 2>/dev/null || true' EXIT
  for _ in $(seq 1 "$wait_s"); do
    [ -s "$ENDPOINT" ] && demo_server_healthy && return 0
    kill -0 "$DEMO_SERVER_PID" 2>/dev/null || { echo "[$tag] vLLM server exited; see $log" >&2; exit 1; }
    sleep 1
  done
  demo_server_healthy || { echo "[$tag] vLLM server not ready after $wait_s s; see $log" >&2; exit 1; }
}
