#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts or stops the private redis-servers the tests use (a CTest fixture).
#   redis-fixture.sh start DIR PORT [SLOTS]  -> redis on PORT (no password) and on PORT+1
#                                        (requirepass "bullc-secret", as deployments run it);
#                                        SLOTS (default 1) such pairs, on PORT, PORT+10, ...: one per
#                                        test running at once (bullc-test-guard deals them out; a
#                                        slot's tests use ports 5 to 9 above its pair for servers)
#   redis-fixture.sh stop DIR PORT [SLOTS]
# A server already answering on PORT is refused rather than reused: tests must
# not run against someone's data.
set -euo pipefail
cmd=${1:?start|stop}; dir=${2:?dir}; port=${3:?port}; slots=${4:-1}
server=$(command -v redis-server || true)
cli=$(command -v redis-cli || true)
if [ -z "$server" ] || [ -z "$cli" ]; then
  echo "redis-fixture: redis-server/redis-cli not found (apt-get install redis-server)" >&2
  exit 1
fi
start_one() { # port extra-args...
  local p=$1; shift
  if "$cli" -p "$p" ping >/dev/null 2>&1; then
    echo "redis-fixture: something already answers on port $p; stop it or set BULLC_TEST_REDIS_PORT" >&2
    exit 1
  fi
  mkdir -p "$dir/$p"
  "$server" --port "$p" --bind 127.0.0.1 --dir "$dir/$p" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" "$@"
  for _ in $(seq 1 100); do
    if "$cli" -p "$p" ${REDISCLI_AUTH:+--no-auth-warning} ping 2>/dev/null | grep -q -e PONG -e NOAUTH; then return 0; fi
    sleep 0.05
  done
  echo "redis-fixture: redis-server on port $p did not start; log:" >&2
  cat "$dir/$p/redis.log" >&2 || true
  exit 1
}
stop_one() {
  local p=$1
  if [ -f "$dir/$p/redis.pid" ]; then
    local pid
    pid=$(cat "$dir/$p/redis.pid")
    kill "$pid" 2>/dev/null || true
    # gone, or a zombie: a daemon's parent is init, which may be slow to reap it
    for _ in $(seq 1 100); do
      { kill -0 "$pid" && [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat")" != Z ]; } 2>/dev/null || break
      sleep 0.05
    done
    rm -f "$dir/$p/redis.pid"
  fi
}
case "$cmd" in
  start)
    rm -rf "$dir"; mkdir -p "$dir"
    for ((k = 0; k < slots; k++)); do
      start_one "$((port + 10 * k))"
      start_one "$((port + 10 * k + 1))" --requirepass bullc-secret
    done
    ;;
  stop)
    for ((k = 0; k < slots; k++)); do stop_one "$((port + 10 * k))"; stop_one "$((port + 10 * k + 1))"; done
    ;;
  *) echo "usage: $0 start|stop DIR PORT [SLOTS]" >&2; exit 2 ;;
esac
