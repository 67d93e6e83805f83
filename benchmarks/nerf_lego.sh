#!/usr/bin/env bash
# The NeRF-core benchmark of BENCHMARKS.md: lego at 100x100 (--downscale 8), held-out views i % 8 == 0,
# 180 s and 600 s budgets (wall clock of the train command, measured by /usr/bin/time), then eval.
# Usage: bash benchmarks/nerf_lego.sh [OUT_DIR]   (about 14 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/out}
data=${LEGO:-../shared/data/lego}
mkdir -p "$out"
for budget in 170:180 585:600; do
  seconds=${budget%%:*}; label=${budget##*:}
  rm -rf "$out/lego$label"
  /usr/bin/time -v .venv/bin/langfield train nerf --data "$data" --output "$out/lego$label" --downscale 8 \
      --max-seconds "$seconds" --seed 0 --no-progress 2> "$out/lego$label.time"
  grep -E "Elapsed|Maximum resident" "$out/lego$label.time"
  .venv/bin/langfield eval "$out/lego$label" --save-images
  cat "$out/lego$label/train_summary.json"
done
