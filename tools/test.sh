#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds everything and runs all tests: Criterion unit and integration tests and
# the Node compat tests, against private redis-servers the tests start; fails
# if any process the tests started is still running once they are done.
#   BULLC_SANITIZE=1 tools/test.sh   same, built with ASan + UBSan (in build-asan/)
# BULLC_TEST_JOBS=N runs N tests at a time (default 3; 1: one by one): most tests
# wait (timers, Redis round trips, Node start-up), so 3 at a time on 2 CPUs took
# 53-80% of the serial time (plain and ASan, 2026-12-05). Each test on the tests' Redis has a redis-server
# pair of its own (a slot: tests/CMakeLists.txt), and those with tight time
# bounds run alone (RUN_SERIAL there).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
build=build; flags=()
if [ "${BULLC_SANITIZE:-0}" = 1 ]; then build=build-asan; flags+=(-DBULLC_SANITIZE=ON); fi
# BULLC_TEST_REDIS_PORT moves the tests' private redis-servers and the ports
# their tests use (default 6391 to 6390 + 10 * BULLC_TEST_JOBS: 10 per slot).
if [ -n "${BULLC_TEST_REDIS_PORT:-}" ]; then flags+=(-DBULLC_TEST_REDIS_PORT="$BULLC_TEST_REDIS_PORT"); fi
jobs=${BULLC_TEST_JOBS:-3}
flags+=(-DBULLC_TEST_SLOTS="$jobs")
cmake -S . -B "$build" -DBULLC_BUILD_TESTS=ON "${flags[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Every process the suite starts inherits BULLC_TEST_RUN; whatever still runs
# with it once ctest is done was left behind by a test and fails the run.
export BULLC_TEST_RUN="test-$$-$(date +%s%N)"
rc=0
ctest --test-dir "$build" --output-on-failure -j"$jobs" --resource-spec-file "$PWD/$build/tests/resources.json" "$@" || rc=$?
env -u BULLC_TEST_RUN tools/leftovers.sh "$BULLC_TEST_RUN" || rc=1
exit $rc
