#!/usr/bin/env bash
# Peak resident memory of training, upstream Python ncps (torch) against this
# crate: each workload runs a few training steps in a process of its own,
# which reads its peak resident set (VmHWM in /proc/self/status) when the
# steps are done, just before it exits.
#
#   benches/peak_memory.sh [WORKLOAD ...]
#
# WORKLOAD: {ltc,cfc}_{infer,train}_b<B>_l<L>[_u<U>] (default:
#   ltc_train_b32_l64 cfc_train_b32_l64), the names of benches/scaling.rs,
#   or walker_* (walker_cfc_train_b256, ...), the Walker2d-sized training
#   steps of upstream's timing script (NCPS_REF_SCRIPT, default
#   ../shared/bench/reference.py) and benches/workloads.rs.
# NCPS_REF_PYTHON: a Python with ncps==1.0.1 and torch (default
#   /tmp/ncps-ref/bin/python).
# STEPS: training steps per process (default 5).
# NCPS_SCALING_BIN, NCPS_WORKLOADS_BIN: built scaling / workloads bench
#   executables to use instead of building them (`cargo bench --no-run
#   --bench scaling` prints the path).
#
# Each workload is also run with 0 steps (model and input built, nothing
# run): the startup footprint (for torch, mostly the library itself), so
# that the difference is what the steps take.
#
# Why not GNU time's %M: `import torch` runs `ldconfig -p` through vfork,
# and the ru_maxrss the parent collects then reports more than the Python
# process ever held (about 660 MiB against a VmHWM of 540 MiB for a bare
# `import torch` here).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${NCPS_REF_PYTHON:-/tmp/ncps-ref/bin/python}"
steps="${STEPS:-5}"
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(ltc_train_b32_l64 cfc_train_b32_l64)

if ! "$python" -c "import torch, ncps" 2>/dev/null; then
  echo "peak_memory.sh: $python cannot import torch and ncps; set NCPS_REF_PYTHON" >&2
  exit 2
fi

# The bench executables themselves, run directly (not through cargo).
bench_bin() {
  local name="$1" bin="$2"
  if [ -z "$bin" ]; then
    echo "building the $name bench..." >&2
    bin="$(cargo bench --no-run --bench "$name" 2>&1 | tee /dev/stderr |
      sed -n "s/.*Executable .*(\(.*$name-[0-9a-f]*\)).*/\1/p" | tail -n 1)"
  fi
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "peak_memory.sh: could not find the $name bench executable" >&2
    exit 2
  fi
  echo "$bin"
}
scaling_bin=""
workloads_bin=""
for w in "${workloads[@]}"; do
  case "$w" in
    walker_*) [ -n "$workloads_bin" ] || workloads_bin="$(bench_bin workloads "${NCPS_WORKLOADS_BIN:-}")" ;;
    *) [ -n "$scaling_bin" ] || scaling_bin="$(bench_bin scaling "${NCPS_SCALING_BIN:-}")" ;;
  esac
done

# Peak RSS in MiB of one run: the "VmHWM <KiB> kB" it prints.
peak_mib() {
  "$@" | sed -n 's/.* VmHWM \([0-9]*\) kB.*/\1/p' | awk '{ printf "%.1f", $1 / 1024 }'
}

printf '| %-22s | %5s | %9s | %9s |\n' workload steps "torch MiB" "ncps MiB"
printf '|%s|%s|%s|%s|\n' "------------------------" "------:" "----------:" "----------:"
for w in "${workloads[@]}"; do
  for n in 0 "$steps"; do
    theirs="$(peak_mib "$python" benches/scaling.py --threads 2 --peak "$w" --steps "$n")"
    case "$w" in
      walker_*) ours="$(peak_mib "$workloads_bin" --peak "$w" --steps "$n")" ;;
      *) ours="$(peak_mib "$scaling_bin" --peak "$w" --steps "$n")" ;;
    esac
    printf '| %-22s | %5s | %9s | %9s |\n' "$w" "$n" "$theirs" "$ours"
  done
done
