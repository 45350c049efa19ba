#!/usr/bin/env bash
# Times upstream Python ncps (torch, CPU) and this crate on the same
# workloads, in one go on this machine, and prints the ratios.
#
#   NCPS_REF_PYTHON=/tmp/ncps-ref/bin/python benches/compare.sh [bench options]
#
# NCPS_REF_PYTHON: a Python with ncps==1.0.1 and torch installed (nothing is
#   installed here; see the README of the reference script).
# NCPS_REF_SCRIPT: upstream's timing script (default ../shared/bench/reference.py).
# NCPS_REF_THREADS: torch threads (default 2, the machine's cores).
# Any arguments go to our bench (e.g. --path reference).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${NCPS_REF_PYTHON:-python3}"
script="${NCPS_REF_SCRIPT:-../shared/bench/reference.py}"
threads="${NCPS_REF_THREADS:-2}"
if ! "$python" -c "import torch, ncps" 2>/dev/null; then
  echo "compare.sh: $python cannot import torch and ncps; set NCPS_REF_PYTHON" >&2
  exit 2
fi
if [ ! -f "$script" ]; then
  echo "compare.sh: no reference script at $script; set NCPS_REF_SCRIPT" >&2
  exit 2
fi

theirs="$(mktemp)"
ours="$(mktemp)"
trap 'rm -f "$theirs" "$ours"' EXIT
echo "timing upstream (torch, $threads threads)..." >&2
"$python" "$script" --threads "$threads" | grep -E '^[a-z0-9_]+ [0-9.]+ ms$' > "$theirs"
echo "timing ncps (cargo bench)..." >&2
cargo bench --quiet --bench workloads -- "$@" | grep -E '^[a-z0-9_]+ [0-9.]+ ms$' > "$ours"

printf '| %-18s | %10s | %10s | %8s |\n' workload "torch ms" "ncps ms" speed-up
printf '|%s|%s|%s|%s|\n' "--------------------" "-----------:" "-----------:" "---------:"
# In the order of upstream's script.
awk 'NR == FNR { ours[$1] = $2; next }
     ($1 in ours) { printf "| %-18s | %10.3f | %10.3f | %7.2fx |\n", $1, $2, ours[$1], $2 / ours[$1] }' \
  "$ours" "$theirs"
