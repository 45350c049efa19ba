#!/usr/bin/env bash
# Times workloads in this crate's own build and under burn-ndarray's
# default features (what a default `burn` brings), the latter with and
# without MATMUL_NUM_THREADS=1, round by round so that the host's drift
# touches all three alike.
#
#   benches/burn_defaults.sh [WORKLOAD ...]   (default: the CfC and LTC rows)
#
# ROUNDS: rounds per workload (default 2). Prints milliseconds per step.
set -euo pipefail
cd "$(dirname "$0")/.."

executable() {
  cargo bench --bench workloads --no-run "$@" 2>&1 |
    grep -o '(.*workloads-[0-9a-f]*)' | tr -d '()'
}
ours="$(executable)"
defaults="$(executable --features burn-ndarray-defaults)"
rounds="${ROUNDS:-2}"
workloads=("$@")
if [ ${#workloads[@]} -eq 0 ]; then
  workloads=(walker_cfc_train_b256 walker_mixed_train_b128 walker_nogate_train_b128
    cfc_train_b32_l64 cfc_infer_b32_l64 ltc_infer_b32_l64 ltc_train_b32_l64)
fi
ms() { "$@" | cut -d' ' -f2; }

echo "| workload | round | this crate's build | burn defaults | burn defaults + MATMUL_NUM_THREADS=1 |"
echo "|---|---:|---:|---:|---:|"
for w in "${workloads[@]}"; do
  for round in $(seq "$rounds"); do
    a="$(ms "$ours" --only "$w")"
    b="$(ms "$defaults" --only "$w")"
    c="$(MATMUL_NUM_THREADS=1 ms "$defaults" --only "$w")"
    echo "| $w | $round | $a | $b | $c |"
  done
done
