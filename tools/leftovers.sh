#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Lists and kills the processes a test run left running, and fails if there
# were any. The run marks everything it starts with an environment variable
# that children inherit (tools/test.sh and tools/memcheck.sh export
# BULLC_TEST_RUN=<unique id>), so only that run's processes count, not those
# of others testing on the same machine at the same time.
#   env -u BULLC_TEST_RUN tools/leftovers.sh ID
# (run it without the variable itself, or it would find itself).
set -uo pipefail
id=${1:?usage: leftovers.sh ID}
found=()
for d in /proc/[0-9]*; do
  pid=${d#/proc/}
  [ "$pid" = $$ ] && continue
  if tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qxF "BULLC_TEST_RUN=$id"; then
    state=$(sed 's/.*) \(.\).*/\1/' "$d/stat" 2>/dev/null) || continue
    [ "$state" = Z ] && continue # dead already, only not yet reaped
    found+=("$pid")
    echo "leftovers: still running after the tests: pid $pid: $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)" >&2
  fi
done
[ ${#found[@]} -eq 0 ] && exit 0
kill -KILL "${found[@]}" 2>/dev/null
echo "leftovers: ${#found[@]} process(es) the tests started were still running (killed now); every test must stop what it starts" >&2
exit 1
