#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what bullc needs on Debian 12, when missing: the C libraries, the
# build tools, redis-server, Node 20 + npm, prometheus (promtool and a server for the
# observability tests). Idempotent; quiet when all is there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git libhiredis-dev libuv1-dev libmsgpack-dev libcjson-dev
      libwebsockets-dev libcriterion-dev redis-server redis-tools nodejs npm clang libclang-rt-14-dev valgrind stunnel4 openssl clang-format clang-tidy python3 prometheus
      systemd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node from elsewhere (nvm, the machine's image) is fine as long as it is >= 20.
if command -v node >/dev/null && command -v npm >/dev/null &&
   [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<< "${missing[*]:-}"
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
