#!/usr/bin/env bash
# Runs one fuzz target for a while from the fixture seeds:
#   fuzz/run.sh <target> [seconds]
# Crashes land in fuzz/artifacts/<target>/; add each as a regression test
# (tests/suite/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")"
target=$1
seconds=${2:-600}
[ -d "corpus/$target" ] || bash seed.sh
exec cargo +nightly fuzz run "$target" "corpus/$target" -- \
  -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1
