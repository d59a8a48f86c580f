# Ray on Slurm (sourced by stage.sbatch when RR_RAY=1): a Ray head on the first node of the allocation,
# one worker per other node, all under the container runtime (`apptainer exec --nv IMAGE ray start ...`),
# and the driver (this batch script's child) on the head node with RAY_ADDRESS set.
# NeMo RL's own launcher (ray.sub) does the same through Pyxis; this one works with Apptainer.

RR_RAY_PORT="${RR_RAY_PORT:-6379}"
RR_RAY_STEPS=()

rr_ray_start() {
  local image="$1"
  local nodes; mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
  local head="${nodes[0]}"
  local gpus="${SLURM_GPUS_ON_NODE:-0}" cpus="${SLURM_CPUS_PER_TASK:-1}"
  local head_ip
  head_ip="$(getent hosts "$head" | awk '{print $1; exit}')"
  [ -n "$head_ip" ] || head_ip="$head"
  export RAY_ADDRESS="$head_ip:$RR_RAY_PORT"
  export RR_RAY_HEAD="$head"
  rr_log "Ray: head $head ($RAY_ADDRESS), ${#nodes[@]} node(s), $gpus GPU(s) and $cpus CPU(s) per node"

  rr_cmd "$image" ray start --head --node-ip-address="$head_ip" --port="$RR_RAY_PORT" \
    --num-gpus="$gpus" --num-cpus="$cpus" --block --disable-usage-stats
  srun --overlap --nodes=1 --ntasks=1 -w "$head" "${RR_CMD[@]}" &
  RR_RAY_STEPS+=($!)
  rr_ray_wait 1 "$image"

  local n
  for n in "${nodes[@]:1}"; do
    rr_cmd "$image" ray start --address="$RAY_ADDRESS" --num-gpus="$gpus" --num-cpus="$cpus" --block \
      --disable-usage-stats
    srun --overlap --nodes=1 --ntasks=1 -w "$n" "${RR_CMD[@]}" &
    RR_RAY_STEPS+=($!)
  done
  rr_ray_wait "${#nodes[@]}" "$image"
}

# rr_ray_wait N IMAGE : until N nodes are alive in the Ray cluster (timeout RR_RAY_TIMEOUT, default 600 s).
rr_ray_wait() {
  local want="$1" image="$2" waited=0 have
  while true; do
    have="$(rr_python "$image" - <<'PY' 2>/dev/null
import ray
ray.init(address="auto", logging_level="ERROR")
print(sum(1 for n in ray.nodes() if n.get("Alive")))
PY
)"
    [ "${have:-0}" -ge "$want" ] 2>/dev/null && { rr_log "Ray: $have node(s) up"; return 0; }
    [ "$waited" -ge "${RR_RAY_TIMEOUT:-600}" ] && rr_die "Ray: only ${have:-0} of $want node(s) after $waited s"
    sleep 5; waited=$((waited + 5))
  done
}

rr_ray_stop() {
  local image; image="$(rr_image "${RR_KIND:-train}")"
  rr_cmd "$image" ray stop --force
  "${RR_CMD[@]}" >/dev/null 2>&1 || true
  local p
  for p in "${RR_RAY_STEPS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
