#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each one for
# a while on its seed corpus (tests/fuzz/corpus/<target>; new inputs found go
# to build-fuzz/corpus, not into the repository).
#   tools/fuzz.sh [SECONDS_PER_TARGET]   (default 30; CI runs a short pass)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
CC=clang cmake -S . -B build-fuzz -DBULLC_BUILD_FUZZERS=ON -DBULLC_BUILD_TESTS=OFF -DBULLC_BUILD_TOOLS=OFF \
  -DBULLC_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_url fuzz_opts fuzz_jobhash fuzz_backoff fuzz_json fuzz_stderr fuzz_cron >/dev/null
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in url opts jobhash backoff json stderr cron; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "fuzz: $t for ${secs}s"
  build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -max_len=4096 -print_final_stats=0 \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>&1 | tail -n 3
done
echo "fuzz: 7 targets, no crash"
