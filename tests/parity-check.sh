#!/bin/sh
# SPDX-License-Identifier: MIT
# tools/parity.py --check refuses what would miscount the 712 Node cases: a not-applicable entry
# that names no case, a case listed twice, a case both mirrored and listed, a marker naming nothing.
# Runs the script on a copy of the data in a scratch tree (the script reads the tree it sits in).
set -eu
SRC=${1:?usage: parity-check.sh SOURCE_DIR}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT INT TERM
mkdir -p "$T/tools" "$T/docs/parity" "$T/tests"
cp "$SRC/tools/parity.py" "$T/tools/"
cp "$SRC/docs/parity/node-tests.tsv" "$T/docs/parity/"
TAB=$(printf '\t')

reset() {
    printf '# file\tdescribe\ttitle\treason\n' >"$T/docs/parity/not-applicable.tsv"
    : >"$T/tests/t.c"
}
expect() { # expect RC WORDS...: --check exits RC and prints WORDS
    rc=0
    python3 "$T/tools/parity.py" --check >"$T/out" 2>&1 || rc=$?
    if [ "$rc" != "$1" ] || ! grep -q "$2" "$T/out"; then
        echo "parity-check: expected exit $1 and '$2', got exit $rc:"; cat "$T/out"; exit 1
    fi
}
na() { printf '%s\n' "$1" >>"$T/docs/parity/not-applicable.tsv"; }

reset
expect 0 "0 cases mirrored, 0 not applicable"

# a case listed as not applicable is counted once, and the totals add up to 712
reset
na "events.test.ts${TAB}events${TAB}emits error event when there is an error on other events${TAB}a C callback cannot throw"
expect 0 "1 not applicable"
python3 "$T/tools/parity.py" --summary | grep -q "total: 712 accounted for: 0 mirrored, 1 not applicable, 711 missing" \
    || { echo "parity-check: wrong total"; python3 "$T/tools/parity.py" --summary | tail -1; exit 1; }

# ... and mirrored too: refused
echo '/* node: "emits error event when there is an error on other events" */' >"$T/tests/t.c"
expect 1 "both mirrored by a marker and listed as not applicable"

# an entry naming no case (a title typo, a describe path cut short), no reason, or listed twice
reset
na "events.test.ts${TAB}events${TAB}emits error event when there is an eror on other events${TAB}typo"
expect 1 "names no Node test case"
reset
na "worker.test.ts${TAB}Concurrency process${TAB}should thrown an exception if I specify a NaN concurrency${TAB}cut path"
expect 1 "names no Node test case"
reset
na "events.test.ts${TAB}events${TAB}emits error event when there is an error on other events${TAB} "
expect 1 "expected 4 tab-separated fields"
reset
na "events.test.ts${TAB}events${TAB}emits error event when there is an error on other events${TAB}one"
na "events.test.ts${TAB}events${TAB}emits error event when there is an error on other events${TAB}two"
expect 1 "lists a case already listed"

# a case Node has twice under one describe and title: two markers mirror both, one mirrors one
reset
echo '/* node: "[deduplication > when job is deduplicated when added again with same deduplication id > when ttl is provided > when extend is provided as true] resets ttl" */' >"$T/tests/t.c"
expect 0 "1 cases mirrored"
cat "$T/tests/t.c" "$T/tests/t.c" >"$T/tests/u.c"
expect 0 "2 cases mirrored"

# a marker naming nothing still fails
reset
echo '/* node: "no such case" */' >"$T/tests/t.c"
expect 1 "no Node test case is titled"
echo "parity-check: ok"
