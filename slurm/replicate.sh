#!/bin/bash
# Dispatcher behind `make replicate-<paper>`: submit the stage graph to Slurm, or run it here.
#
#   slurm/replicate.sh PAPER [KEY=VALUE...]
#
# SLURM=1 submits (`rubricrl cluster submit PAPER --site $SITE ...`); SLURM=0 runs locally
# (`rubricrl replicate PAPER ...`). Unset: submit when a Slurm controller answers (`sinfo` works), so a
# machine that merely has the Slurm clients installed still runs locally. SITE defaults to slurm/site.yaml.
# CHECK, when set, is a command run after a local run finishes (e.g. the replication's expectations check);
# a submission returns at once, so check a submitted run later with the same command.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: slurm/replicate.sh PAPER [KEY=VALUE...]" >&2; exit 2; }
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rubricrl="${RUBRICRL:-$repo/.venv/bin/rubricrl}"
[ -x "$rubricrl" ] || rubricrl=rubricrl
mode="${SLURM:-}"
if [ -z "$mode" ]; then
  if command -v sinfo >/dev/null 2>&1 && sinfo -h >/dev/null 2>&1; then mode=1; else mode=0; fi
fi
paper="$1"; shift
if [ "$mode" = 1 ]; then
  site="${SITE:-$repo/slurm/site.yaml}"
  [ -f "$site" ] || { echo "no site file $site: copy slurm/site.example.yaml there and fill it in (or SITE=...)" >&2; exit 2; }
  echo "[replicate] submitting $paper to Slurm (site $site; SLURM=0 runs locally instead)" >&2
  exec "$rubricrl" cluster submit "$paper" --site "$site" "$@"
fi
echo "[replicate] running $paper here (no Slurm controller answered; SLURM=1 submits)" >&2
"$rubricrl" replicate "$paper" "$@"
if [ -n "${CHECK:-}" ]; then
  echo "[replicate] checking expectations: $CHECK" >&2
  eval "$CHECK"
fi
