#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the build into a temporary prefix, as a user of a private prefix
# would, and checks what README and docs/adding-a-queue.md promise there:
#  - the installed programs run from the prefix with a clean environment
#    (their RPATH finds the libbullc next to them; no LD_LIBRARY_PATH);
#  - the producer example builds with pkg-config and with CMake's
#    find_package(bullc), the worker example with `pkg-config bullc libuv`;
#  - the standalone plugin command of docs/adding-a-queue.md, taken from the
#    page itself, builds the payment plugin against <bullc/plugin.h>, and the
#    installed bullc-worker loads it.
#   install-check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1; src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/bullc bin/bullc-worker bin/bullc-socket-client include/bullc/bullc.h include/bullc/version.h \
  include/bullc/plugin.h; do
  [ -e "$prefix/$f" ] || { echo "install-check: $f is not installed" >&2; exit 1; }
done
pc=$(find "$prefix" -name bullc.pc | head -1)
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH=$(dirname "$pc")
# a sanitizer build's library needs its runtime first in the consumer too
san=""; [ "${BULLC_SANITIZED:-0}" = 1 ] && san="-fsanitize=address,undefined"

# 1. the programs, from the prefix, with nothing in the environment but Redis
clean() { env -i PATH=/usr/bin:/bin REDIS_URL="$REDIS_URL" "$@"; }
for p in bullc bullc-worker bullc-socket-client; do
  out=$(clean "$prefix/bin/$p" --version 2>&1) || { echo "install-check: $p --version failed: $out" >&2; exit 1; }
done
q=install-check-$$
clean "$prefix/bin/bullc" --json counts "$q" | grep -q '"waiting":0' ||
  { echo "install-check: the installed bullc did not reach Redis" >&2; exit 1; }

# 2. consumers of the library (README: PKG_CONFIG_PATH for another prefix; the
# rpath because this prefix is in no ld.so.conf)
cc -Wall -Wextra -Werror $san "$src/docs/examples/producer.c" $(pkg-config --cflags --libs bullc) \
  -Wl,-rpath,"$libdir" -o "$tmp/producer-pc"
cc -Wall -Wextra -Werror $san "$src/docs/examples/worker.c" $(pkg-config --cflags --libs bullc libuv) \
  -Wl,-rpath,"$libdir" -o "$tmp/worker-pc"
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(bullc REQUIRED)
add_executable(producer $src/docs/examples/producer.c)
target_link_libraries(producer PRIVATE bullc::bullc)
CMAKE
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="$san" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
"$tmp/producer-pc" | grep -q "added job"
"$tmp/consumer/build/producer" | grep -q "added job"

# 3. the plugin, built on its own by the command docs/adding-a-queue.md shows
cmd=$(awk '/^```sh$/ {inb=1; b=""; next} /^```$/ {if (inb && b ~ /libbullc_payment_plugin.so payment_plugin.c/) print b; inb=0; next}
           inb {b = b $0 "\n"}' "$src/docs/adding-a-queue.md")
[ -n "$cmd" ] || { echo "install-check: no standalone plugin command in docs/adding-a-queue.md" >&2; exit 1; }
mkdir -p "$tmp/plugin"
cp "$src/tools/bullc-worker/examples/payment_plugin.c" "$tmp/plugin/"
(cd "$tmp/plugin" && bash -euc "$cmd") ||
  { echo "install-check: the documented plugin build failed:" >&2; echo "$cmd" >&2; exit 1; }
[ -f "$tmp/plugin/libbullc_payment_plugin.so" ]
# and the domain service, as the page builds it on its own
cmd=$(awk '/^```sh$/ {inb=1; b=""; next} /^```$/ {if (inb && b ~ /-o checkout checkout.c/) print b; inb=0; next}
           inb {b = b $0 "\n"}' "$src/docs/adding-a-queue.md")
[ -n "$cmd" ] || { echo "install-check: no standalone checkout command in docs/adding-a-queue.md" >&2; exit 1; }
cp "$src"/tools/reference/examples/{checkout.c,payment_queue.c,payment_queue.h} "$tmp/plugin/"
(cd "$tmp/plugin" && bash -euc "$cmd $san -Wl,-rpath,$libdir") ||
  { echo "install-check: the documented checkout build failed:" >&2; echo "$cmd" >&2; exit 1; }
# the installed worker loads it and serves a queue until SIGTERM (not through clean(): a function run
# in the background is a subshell, and $! would be that subshell, not the worker the kill must reach)
env -i PATH=/usr/bin:/bin REDIS_URL="$REDIS_URL" "$prefix/bin/bullc-worker" --queue payment --prefix "$q" --plugin "$tmp/plugin/libbullc_payment_plugin.so" \
  --plugin-config '{"maxAmount":100,"currencies":["EUR"]}' >"$tmp/worker.log" 2>&1 &
wpid=$!
trap 'kill $wpid 2>/dev/null || true; wait $wpid 2>/dev/null || true; rm -rf "$tmp"' EXIT
id=$(cd "$tmp/plugin" && clean BULL_PREFIX="$q" ./checkout o-1 5 EUR)
[ "$id" = payment-o-1 ] || { echo "install-check: checkout printed '$id'" >&2; exit 1; }
for _ in $(seq 100); do
  [ "$(clean "$prefix/bin/bullc" --prefix "$q" state payment "$id" 2>/dev/null)" = completed ] && break
  sleep 0.1
done
state=$(clean "$prefix/bin/bullc" --prefix "$q" state payment "$id")
kill $wpid; wait $wpid || true
clean "$prefix/bin/bullc" --prefix "$q" obliterate payment --force --yes >/dev/null
[ "$state" = completed ] || { echo "install-check: the plugin's job is $state; worker log:" >&2; cat "$tmp/worker.log" >&2; exit 1; }

# 4. the --exec-persistent helpers, installed and found by the installed worker from its own place:
# processors written as docs/worker.md shows them (import / require / source, no path given)
for f in bullc_processor.py bullc_processor.js bullc_processor.sh; do
  [ -f "$prefix/share/bullc/helpers/$f" ] || { echo "install-check: share/bullc/helpers/$f is not installed" >&2; exit 1; }
done
mkdir -p "$tmp/proc"
cat > "$tmp/proc/proc.py" <<'PY'
import bullc_processor
bullc_processor.run(lambda job: {"py": job.data["n"] * 2})
PY
cat > "$tmp/proc/proc.js" <<'JS'
require('bullc_processor').run(async job => ({ js: job.data.n * 2 }));
JS
cat > "$tmp/proc/proc.sh" <<'SH'
. "$BULLC_HELPERS/bullc_processor.sh"
process() { bullc_result "{\"sh\":$BULLC_DATA}"; }
bullc_run process
SH
for lang in py:python3 js:node sh:sh; do
  ext=${lang%%:*}
  interp=$(PATH=/usr/bin:/bin command -v "${lang#*:}") || { echo "install-check: no ${lang#*:} in /usr/bin:/bin" >&2; exit 1; }
  pq="helpers-$ext"
  env -i PATH=/usr/bin:/bin REDIS_URL="$REDIS_URL" "$prefix/bin/bullc-worker" --queue "$pq" --prefix "$q" \
    --exec-persistent "$interp" --arg "$tmp/proc/proc.$ext" >"$tmp/worker-$ext.log" 2>&1 &
  wpid=$!
  id=$(clean "$prefix/bin/bullc" --prefix "$q" add "$pq" job '{"n":21}')
  for _ in $(seq 100); do
    [ "$(clean "$prefix/bin/bullc" --prefix "$q" state "$pq" "$id" 2>/dev/null)" = completed ] && break
    sleep 0.1
  done
  got=$(clean "$prefix/bin/bullc" --prefix "$q" --json get "$pq" "$id")
  kill $wpid; wait $wpid || true
  clean "$prefix/bin/bullc" --prefix "$q" obliterate "$pq" --force --yes >/dev/null
  case $ext in sh) want='"returnvalue":{"sh":{"n":21}}' ;; *) want="\"returnvalue\":{\"$ext\":42}" ;; esac
  printf '%s' "$got" | tr -d ' ' | grep -qF "$want" ||
    { echo "install-check: the $ext helper's job: $got; worker log:" >&2; cat "$tmp/worker-$ext.log" >&2; exit 1; }
done
echo "install-check: programs ran from the prefix; pkg-config, find_package(bullc), plugin builds and helpers ran"
