# Shared by every job script in slurm/: site settings, the container runtime switch, logging, signals.
#
# The submitter (`rubricrl cluster submit`) passes two env files through sbatch --export:
#   RR_SITE_ENV  runs/<run>/slurm/site.env   site settings (RR_RUNTIME, RR_IMAGE_*, RR_REPO, RR_VENV, ...)
#   RR_JOB_ENV   runs/<run>/slurm/<job>.env  this job's settings (RR_KIND, RR_JUDGE_ENDPOINT, RR_RAY, ...)
# RR_RUNTIME=apptainer runs every command as `apptainer exec --nv --bind ... IMAGE cmd`; RR_RUNTIME=none
# runs it on the host with $RR_VENV/bin first on PATH (the local test Slurm, or a cluster without images).

set -uo pipefail

rr_log() { echo "[$(date '+%F %T')] [${RR_JOB_NAME:-job} ${SLURM_JOB_ID:-nojob}] $*" >&2; }

rr_die() { rr_log "ERROR: $*"; exit "${2:-1}"; }

rr_load_env() {
  [ -n "${RR_SITE_ENV:-}" ] && [ -f "$RR_SITE_ENV" ] || rr_die "RR_SITE_ENV not set or missing (${RR_SITE_ENV:-}); submit with \`rubricrl cluster submit\`" 2
  # shellcheck disable=SC1090
  source "$RR_SITE_ENV"
  if [ -n "${RR_JOB_ENV:-}" ]; then
    [ -f "$RR_JOB_ENV" ] || rr_die "job env file $RR_JOB_ENV is missing" 2
    # shellcheck disable=SC1090
    source "$RR_JOB_ENV"
  fi
  cd "$RR_REPO" || rr_die "cannot cd to the repository $RR_REPO" 2
  export HF_HUB_ENABLE_HF_TRANSFER="${HF_HUB_ENABLE_HF_TRANSFER:-0}"
  rr_log "host $(hostname) restart ${SLURM_RESTART_COUNT:-0} runtime $RR_RUNTIME nodes ${SLURM_JOB_NODELIST:-?}"
}

# rr_image KIND -> the image for a job kind (train/gpu -> training, judge -> judge, cpu/cleanup -> cpu).
rr_image() {
  case "$1" in
    judge) echo "$RR_IMAGE_JUDGE" ;;
    cpu|cleanup) echo "$RR_IMAGE_CPU" ;;
    *) echo "$RR_IMAGE_TRAINING" ;;
  esac
}

# rr_cmd IMAGE CMD... : fills the array RR_CMD with CMD wrapped for the container runtime.
rr_cmd() {
  local image="$1"; shift
  case "$RR_RUNTIME" in
    none)
      RR_CMD=(env "PATH=$RR_VENV/bin:$PATH" "$@") ;;
    apptainer)
      [ -n "$image" ] && [ -e "$image" ] || rr_die "container image '$image' not found (site file containers.*; build with make containers)" 2
      local nv=()
      if command -v nvidia-smi >/dev/null 2>&1; then nv=(--nv); fi
      RR_CMD=("$RR_APPTAINER" exec "${nv[@]}" --bind "$RR_BINDS" --pwd "$RR_REPO" "$image" "$@") ;;
    *)
      rr_die "unknown container runtime '$RR_RUNTIME' (apptainer or none)" 2 ;;
  esac
}

# rr_python IMAGE ARGS... : python under the runtime (foreground).
rr_python() {
  local image="$1"; shift
  rr_cmd "$image" python "$@"
  "${RR_CMD[@]}"
}

# Signals. Slurm sends USR1 to this batch shell only (--signal=B:USR1@N) N seconds before the time limit;
# on preemption, `scontrol requeue` or scancel it sends SIGTERM to every process of the job, the trainer
# included. The trainer checkpoints on SIGTERM and exits 143; the job is then requeued and, on restart,
# the same command resumes from the checkpoint.
RR_CHILD=""
RR_REQUEUE_SELF=0
RR_TERMINATED=0

rr_on_usr1() {
  rr_log "USR1: time limit near; asking the child to checkpoint and stop, then requeueing this job"
  RR_REQUEUE_SELF=1
  [ -n "$RR_CHILD" ] && kill -TERM "$RR_CHILD" 2>/dev/null
}

rr_on_term() {
  # The child got SIGTERM from Slurm as well: forwarding it again would count as a second signal.
  rr_log "SIGTERM (preemption, requeue or cancel): waiting for the child to checkpoint and exit"
  RR_TERMINATED=1
}

# rr_run_child : run "${RR_CMD[@]}" in the background with the traps set; returns its exit code.
rr_run_child() {
  trap rr_on_usr1 USR1
  trap rr_on_term TERM
  rr_log "run: ${RR_CMD[*]}"
  "${RR_CMD[@]}" &
  RR_CHILD=$!
  local rc
  while true; do
    wait "$RR_CHILD"; rc=$?
    if [ "$rc" -gt 128 ] && kill -0 "$RR_CHILD" 2>/dev/null; then
      continue  # wait was interrupted by a trapped signal; the child is still running
    fi
    break
  done
  RR_CHILD=""
  return "$rc"
}

# rr_finish RC : exit the job, requeueing it first when USR1 asked for it.
rr_finish() {
  local rc="$1"
  if [ "$rc" -eq 0 ]; then
    rr_log "finished"
    exit 0
  fi
  if [ "$RR_REQUEUE_SELF" = 1 ]; then
    rr_log "child stopped (exit $rc) after USR1; requeueing job ${SLURM_JOB_ID}"
    scontrol requeue "${SLURM_JOB_ID}" || rr_die "scontrol requeue failed; resubmit with rubricrl cluster submit"
    exit 0
  fi
  if [ "$RR_TERMINATED" = 1 ]; then
    rr_log "child stopped (exit $rc) after SIGTERM; Slurm requeues or ends the job"
    exit "$rc"
  fi
  rr_log "child failed (exit $rc)"
  exit "$rc"
}

# rr_wait_endpoint FILE TIMEOUT_S IMAGE : wait for a judge endpoint file and a healthy /v1/models.
rr_wait_endpoint() {
  local file="$1" timeout="$2" image="$3" waited=0
  rr_log "waiting for the judge endpoint $file (up to ${timeout} s)"
  while true; do
    if [ -s "$file" ] && rr_python "$image" - "$file" <<'PY'
import json, sys, urllib.request
ep = json.load(open(sys.argv[1]))
with urllib.request.urlopen(ep["base_url"].rstrip("/") + "/models", timeout=10) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
    then
      rr_log "judge ready: $(cat "$file" | tr -d '\n' | head -c 300)"
      return 0
    fi
    [ "$waited" -ge "$timeout" ] && rr_die "no healthy judge at $file after ${timeout} s; see the judge job's log"
    sleep 5; waited=$((waited + 5))
  done
}
