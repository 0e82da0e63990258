#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the Criterion unit and integration tests under valgrind memcheck
# against the tests' private redis-server: no invalid access, no definite
# leak (exit 0), or the first test binary with errors makes it fail.
#   tools/memcheck.sh [BUILD_DIR]   (default build-memcheck, configured here)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-memcheck}
port=${BULLC_MEMCHECK_PORT:-6491}
cmake -S . -B "$build" -DBULLC_BUILD_TESTS=ON -DBULLC_TEST_REDIS_PORT="$port" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
dir="$PWD/$build/tests/redis-memcheck"
# Marks what this pass starts, for the leftovers check at the end (tools/leftovers.sh).
export BULLC_TEST_RUN="memcheck-$$-$(date +%s%N)"
tests/redis-fixture.sh start "$dir" "$port"
trap 'tests/redis-fixture.sh stop "$dir" "$port"; env -u BULLC_TEST_RUN tools/leftovers.sh "$BULLC_TEST_RUN" || exit 1' EXIT
export REDIS_URL="redis://127.0.0.1:$port" BULLC_TEST_REDIS_PORT="$port" BULLC_TEST_AUTH_PORT=$((port + 1))
export BULLC_BIN_DIR="$PWD/$build/bin" BULLC_SOURCE_DIR="$PWD" BULLC_TEST_TMP="$PWD/$build/tests/tmp"
mkdir -p "$BULLC_TEST_TMP"
fail=0
for t in "$build"/tests/unit_* "$build"/tests/it_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  case "$name" in unit_codec) export BULLC_MSGPACK_CORPUS="$PWD/$build/tests/tmp/msgpack-corpus.ndjson" ;; esac
  if [ "$name" = unit_codec ] && [ ! -s "$BULLC_MSGPACK_CORPUS" ]; then
    [ -d compat-tests/node_modules/bullmq ] || (cd compat-tests && npm ci --no-audit --no-fund --loglevel=error)
    node compat-tests/lib/gen-msgpack-corpus.js "$BULLC_MSGPACK_CORPUS"
  fi
  log="$build/tests/tmp/memcheck-$name.log"
  # What fails this pass is memcheck's finding: an invalid access or a definite
  # leak (valgrind's exit code 99 in a test's process makes Criterion count it
  # as crashing). An assertion that fails only here is timing under a 20-50x
  # slowdown: reported, not failed; the same tests must pass in the ASan and
  # plain passes.
  valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 -q \
    "$t" --jobs 1 >"$log" 2>&1 || true
  summary=$(grep -o 'Tested: [0-9]* | Passing: [0-9]* | Failing: [0-9]* | Crashing: [0-9]*' "$log" | tail -1)
  # with -q valgrind prints nothing but its findings, each line as ==PID==
  if [ -z "$summary" ] || grep -qE "^==[0-9]+== " "$log" || ! grep -q "Crashing: 0" <<<"$summary"; then
    echo "memcheck: $name FAILED (see $log)"; tail -30 "$log"; fail=1
  elif ! grep -q "Failing: 0" <<<"$summary"; then
    echo "memcheck: $name: $summary (no memory error; assertions failing under valgrind's timing:"
    grep -E "^\[FAIL\]" "$log" | sed 's/^/    /'
    echo "  )"
  else
    echo "memcheck: $name: $summary"
  fi
done
exit $fail
