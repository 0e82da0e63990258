#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the build into a temporary prefix and builds the documentation's
# producer example against it twice: with pkg-config (bullc.pc) and with
# CMake's find_package(bullc). Then runs it against the tests' Redis.
#   install-check.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1; src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
for f in bin/bullc bin/bullc-worker include/bullc/bullc.h include/bullc/version.h; do
  [ -e "$tmp/prefix/$f" ] || { echo "install-check: $f is not installed" >&2; exit 1; }
done
pc=$(find "$tmp/prefix" -name bullc.pc | head -1)
# a sanitizer build's library needs its runtime first in the consumer too
san=""; [ "${BULLC_SANITIZED:-0}" = 1 ] && san="-fsanitize=address,undefined"
PKG_CONFIG_PATH=$(dirname "$pc") cc -Wall -Wextra -Werror $san "$src/docs/examples/producer.c" \
  $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs bullc) -Wl,-rpath,"$tmp/prefix/lib" \
  -Wl,-rpath,"$(dirname "$pc")/.." -o "$tmp/producer-pc"
mkdir -p "$tmp/consumer"
cat > "$tmp/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(bullc REQUIRED)
add_executable(producer $src/docs/examples/producer.c)
target_link_libraries(producer PRIVATE bullc::bullc)
CMAKE
cmake -S "$tmp/consumer" -B "$tmp/consumer/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="$san" >/dev/null
cmake --build "$tmp/consumer/build" >/dev/null
LD_LIBRARY_PATH="$(dirname "$pc")/.." "$tmp/producer-pc" | grep -q "added job"
LD_LIBRARY_PATH="$(dirname "$pc")/.." "$tmp/consumer/build/producer" | grep -q "added job"
echo "install-check: installed; pkg-config and find_package(bullc) consumers built and ran"
