#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Style and lint: clang-format (.clang-format) on every C file, clang-tidy
# (.clang-tidy) on the library. Exits non-zero on any finding.
#   tools/lint.sh          check
#   tools/lint.sh --fix    reformat in place
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
  clang-format -i $files
  exit 0
fi
clang-format --dry-run -Werror $files
echo "lint: clang-format: $(echo "$files" | wc -l) files formatted"
# Parity with Node's tests is counted from one-line markers
# (/* node: "<title>" */, docs/parity/README.md): a marker split over lines is lost.
if split=$(git grep -n 'node: "[^"]*$' -- tests compat-tests/test); then
  echo "lint: a node: title marker is split over lines (keep it on one line):" >&2
  echo "$split" >&2
  exit 1
fi
# Every test but the redis fixture's start runs under bullc-test-guard (tests/CMakeLists.txt), which
# kills and lists what a test leaves running: a test added without it would go unchecked.
if unguarded=$(awk '/add_test\(/{t=$0; while (t !~ /COMMAND/ && (getline l) > 0) t=t " " l;
      if (t !~ /NAME redis_start / && t !~ /COMMAND \$\{GUARD\}/) print t}' tests/CMakeLists.txt) && [ -n "$unguarded" ]; then
  echo "lint: tests/CMakeLists.txt: a test not run under \${GUARD} (bullc-test-guard):" >&2
  echo "$unguarded" >&2
  exit 1
fi
# Every marker names one case of docs/parity/node-tests.tsv (tools/parity.py).
tools/parity.py --check
cmake -S . -B build-lint -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DBULLC_BUILD_TESTS=OFF -DBULLC_BUILD_TOOLS=OFF \
  -DBULLC_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-lint -j"$(nproc)" >/dev/null
clang-tidy -p build-lint --quiet --extra-arg=-Wno-unknown-warning-option src/*.c
echo "lint: clang-tidy: no finding in src/"
