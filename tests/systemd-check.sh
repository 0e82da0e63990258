#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd units of tools/systemd: `systemd-analyze verify` accepts them
# (with ExecStart pointed at this build's programs, as the installed ones are
# not there), and docs/reference-deployment.md quotes each unit's
# RestartPreventExitStatus= line. systemd-analyze comes with the systemd
# package (tools/bootstrap.sh installs it); without it this test fails.
#   systemd-check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1; src=$2
command -v systemd-analyze >/dev/null ||
  { echo "systemd-check: systemd-analyze is missing (run tools/bootstrap.sh)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
units=()
for u in "$src"/tools/systemd/*.service; do
  sed "s|/usr/local/bin/|$build/bin/|g" "$u" > "$tmp/$(basename "$u")"
  units+=("$tmp/$(basename "$u")")
  line=$(grep '^RestartPreventExitStatus=' "$u") ||
    { echo "systemd-check: $(basename "$u") has no RestartPreventExitStatus=" >&2; exit 1; }
  grep -qF "\`$line\`" "$src/docs/reference-deployment.md" ||
    { echo "systemd-check: docs/reference-deployment.md does not quote $(basename "$u")'s $line" >&2; exit 1; }
done
[ ${#units[@]} -ge 2 ] || { echo "systemd-check: no units in tools/systemd" >&2; exit 1; }
# verify's warnings go to stderr with exit 0 for some: any output is a failure
out=$(cd "$tmp" && systemd-analyze verify "${units[@]}" 2>&1) || true
rc=$(cd "$tmp" && systemd-analyze verify "${units[@]}" >/dev/null 2>&1; echo $?)
if [ -n "$out" ] || [ "$rc" != 0 ]; then
  echo "systemd-check: systemd-analyze verify (exit $rc):" >&2; echo "$out" >&2; exit 1
fi
echo "systemd-check: ${#units[@]} units verified; the doc quotes their RestartPreventExitStatus="
