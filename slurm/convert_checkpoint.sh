#!/bin/bash
# Checkpoint conversion between Hugging Face and Megatron formats with NeMo RL's own tooling
# (NeMo RL v0.7.0 / Megatron-Bridge inside nvcr.io/nvidia/nemo-rl:v0.7.0). Cannot run without that image.
#
#   slurm/convert_checkpoint.sh to-hf CKPT_DIR OUT_DIR [STEP]
#       NeMo RL checkpoint folder (checkpointing.checkpoint_dir, holding step_<N>/) -> HF folder for
#       evaluation and for the next stage's policy.model_name. STEP defaults to the highest step_<N>.
#       Runs examples/converters/convert_megatron_to_hf.py with the step's config.yaml (NeMo RL README).
#   slurm/convert_checkpoint.sh to-megatron HF_MODEL OUT_DIR
#       HF checkpoint (hub id or folder) -> Megatron checkpoint, with
#       nemo_rl.models.megatron.community_import.import_model_from_hf_name. Optional: NeMo RL converts
#       at start-up by itself (cached under $NRL_MEGATRON_CHECKPOINT_DIR, else $HF_HOME/nemo_rl); this
#       does it once, ahead of the training job, e.g. on a single node.
#
# Environment: NEMO_RL_ROOT (default /opt/nemo-rl), RR_CONVERT_PYTHON (default "uv run --extra mcore
# python", NeMo RL's documented launcher for the mcore extra). Under `rubricrl cluster submit`
# (RR_SITE_ENV set) the command runs in the training image through slurm/lib/common.sh; otherwise it
# runs as is (call it inside the container). The output appears atomically (OUT_DIR.tmp -> OUT_DIR);
# an existing OUT_DIR is left alone (delete it to convert again). Exit 2 = bad arguments.
set -uo pipefail

usage() { sed -n '2,20p' "$0" >&2; exit 2; }
die() { echo "convert_checkpoint: $*" >&2; exit "${2:-1}"; }

[ $# -ge 3 ] || usage
mode="$1"; src="$2"; out="$(realpath -m "${3%/}")"
[ -e "$src" ] && src="$(realpath "$src")"   # a hub id (to-megatron) stays as it is
nemo_root="${NEMO_RL_ROOT:-/opt/nemo-rl}"
read -r -a py <<< "${RR_CONVERT_PYTHON:-uv run --extra mcore python}"

if [ -e "$out/config.json" ] || [ -e "$out/.done" ]; then
  echo "convert_checkpoint: $out exists; nothing to do" >&2
  exit 0
fi

case "$mode" in
  to-hf)
    [ -d "$src" ] || die "checkpoint folder $src not found" 2
    if [ $# -ge 4 ]; then
      step_dir="$src/step_$4"
    else
      step_dir="$(find "$src" -maxdepth 1 -type d -name 'step_*' | sed 's/.*step_//' | sort -n | tail -1)"
      [ -n "$step_dir" ] || die "no step_<N> folder under $src (has training saved a checkpoint?)" 2
      step_dir="$src/step_$step_dir"
    fi
    [ -f "$step_dir/config.yaml" ] || die "$step_dir/config.yaml missing (incomplete checkpoint?)" 2
    weights="$(find "$step_dir/policy/weights" -maxdepth 1 -type d -name 'iter_*' 2>/dev/null | sort | tail -1)"
    [ -n "$weights" ] || die "no Megatron weights (policy/weights/iter_*) in $step_dir; DTensor checkpoints use convert_dcp_to_hf.py" 2
    cmd=("${py[@]}" "$nemo_root/examples/converters/convert_megatron_to_hf.py"
         --config "$step_dir/config.yaml" --megatron-ckpt-path "$weights" --hf-ckpt-path "$out.tmp")
    ;;
  to-megatron)
    code="import sys; from nemo_rl.models.megatron.community_import import import_model_from_hf_name as f; f(sys.argv[1], sys.argv[2])"
    cmd=("${py[@]}" -c "$code" "$src" "$out.tmp")
    ;;
  *)
    usage
    ;;
esac

rm -rf "$out.tmp"
mkdir -p "$(dirname "$out")"
echo "convert_checkpoint: ${cmd[*]}" >&2
if [ -n "${RR_SITE_ENV:-}" ]; then
  here="$(cd "$(dirname "$0")" && pwd)"
  # shellcheck source=lib/common.sh
  source "$here/lib/common.sh"
  rr_load_env
  rr_cmd "$(rr_image train)" bash -c 'cd "$0" && exec "$@"' "$nemo_root" "${cmd[@]}"
  "${RR_CMD[@]}" || die "conversion failed (exit $?)"
else
  (cd "$nemo_root" 2>/dev/null || die "NeMo RL not found at $nemo_root (set NEMO_RL_ROOT)" 2; "${cmd[@]}") \
    || die "conversion failed (exit $?)"
fi
touch "$out.tmp/.done"
mv "$out.tmp" "$out"
echo "convert_checkpoint: wrote $out" >&2
