#!/usr/bin/env bash
# The high-resolution NeRF-core benchmark of BENCHMARKS.md (issue 25): lego at 400x400 (--downscale 2) for 20 minutes
# and at 800x800 (full size) for 60 minutes, held-out views i % 8 == 0, seed 0, default recipe; wall clock and peak
# RSS of the train command by /usr/bin/time, then `langfield eval` on every held-out view at the trained resolution.
# Usage: bash benchmarks/nerf_lego_hires.sh [OUT_DIR] [RUNS]   RUNS: ds2, ds1 or both (default; about 85 minutes)
# EXTRA="OPTIONS" adds options to the train command (a variant of the recipe).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out}
runs=${2:-ds2 ds1}
data=${LEGO:-../shared/data/lego}
mkdir -p "$out"
for run in $runs; do
  case $run in
    ds2) downscale=2; seconds=1200 ;;
    ds1) downscale=1; seconds=3600 ;;
    *) echo "unknown run '$run' (ds2 or ds1)" >&2; exit 2 ;;
  esac
  name="lego_$run"
  /usr/bin/time -v .venv/bin/langfield train nerf --data "$data" --output "$out/$name" --downscale "$downscale" ${EXTRA:-} \
      --max-seconds "$seconds" --seed 0 --no-progress --overwrite 2> "$out/$name.time"
  grep -E "Elapsed|Maximum resident" "$out/$name.time"
  .venv/bin/langfield eval "$out/$name" --save-images
  cat "$out/$name/train_summary.json" "$out/$name/metrics.json"
done
