#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: builds everything, then runs the reference deployment's whole
# pipeline locally for a while:
#   bullc-fake-provider  a NAMED_POWERBALL-style WebSocket feed on loopback
#   bullc-socket-client  the feed -> game_data jobs on test-queue
#   bullc                send-notification jobs on notification (as the API would)
#   bullc-worker         test-queue (builtin game-data) and notification (builtin notification)
# and prints live per-queue counts (added, processed, failed per second), then
# stops everything with SIGTERM and prints a summary. Without REDIS_URL /
# REDIS_HOST a private redis-server is started on a free loopback port and
# stopped at the end; nothing is left running.
#   DEMO_SECONDS=S (default 10), DEMO_RATE=N rounds/s (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
cmake -S . -B build -DBULLC_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bin=$PWD/build/bin
seconds=${DEMO_SECONDS:-10}
rate=${DEMO_RATE:-50}

tmp=$(mktemp -d)
pids=()
redis_pid=""
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; while kill -0 "$redis_pid" 2>/dev/null; do sleep 0.05; done; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -z "${REDIS_URL:-}" ] && [ -z "${REDIS_HOST:-}" ]; then
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis_pid=$(cat "$tmp/redis.pid")
  export REDIS_URL="redis://127.0.0.1:$port"
  echo "demo: private redis-server on 127.0.0.1:$port"
else
  echo "demo: using the configured Redis (REDIS_URL / REDIS_HOST)"
fi
prefix="bullc-demo-$$"
rc() {
  if [ -n "${REDIS_URL:-}" ]; then redis-cli -u "$REDIS_URL" --no-auth-warning "$@"
  else redis-cli -h "${REDIS_HOST}" -p "${REDIS_PORT:-6379}" ${REDIS_PASSWORD:+-a "$REDIS_PASSWORD"} \
         --no-auth-warning -n "${REDIS_DB:-0}" "$@"; fi
}

ws_port=$(free_port)
"$bin/bullc-fake-provider" --port "$ws_port" --rate "$rate" --duration $((seconds + 30)) >"$tmp/provider.log" 2>&1 &
pids+=($!)
"$bin/bullc-worker" --prefix "$prefix" --queue test-queue --queue notification --concurrency 8 \
  --builtin test-queue=game-data --builtin notification=notification \
  --metrics-max-data-points 60 --log-level warn >"$tmp/worker.log" 2>&1 &
pids+=($!)
sleep 0.3
"$bin/bullc-socket-client" --url "ws://127.0.0.1:$ws_port/feed" --provider NAMED_POWERBALL \
  --subscribe '{"type":"subscribe","channel":"rounds"}' --prefix "$prefix" >"$tmp/socket.log" 2>&1 &
pids+=($!)

counter() { # added processed failed of a queue
  local q=$1
  echo "$(rc GET "$prefix:$q:id" | tr -d '\n') $(rc HGET "$prefix:$q:metrics:completed" count | tr -d '\n') \
$(rc HGET "$prefix:$q:metrics:failed" count | tr -d '\n')"
}
declare -A last
for q in test-queue notification; do last[$q]="0 0 0"; done
printf 'demo: %ss of the pipeline (%s rounds/s from the provider)\n' "$seconds" "$rate"
printf '%6s  %-12s %10s %10s %10s\n' time queue added/s done/s failed/s
for t in $(seq 1 "$seconds"); do
  # the API side: a notification per half second
  "$bin/bullc" --prefix "$prefix" add notification send-notification \
    "{\"userId\":\"user-$((t % 3))\",\"type\":\"info\",\"message\":\"second $t\",\"data\":{}}" \
    --opts '{"removeOnComplete":10,"removeOnFail":5}' >/dev/null
  sleep 0.5
  "$bin/bullc" --prefix "$prefix" add notification send-notification \
    "{\"userId\":\"user-$((t % 5))\",\"type\":\"alert\",\"message\":\"half $t\",\"data\":{}}" \
    --opts '{"removeOnComplete":10,"removeOnFail":5}' >/dev/null
  sleep 0.5
  for q in test-queue notification; do
    read -r a p f <<<"$(counter "$q")"; a=${a:-0}; p=${p:-0}; f=${f:-0}
    read -r la lp lf <<<"${last[$q]}"
    printf '%5ss  %-12s %10d %10d %10d\n' "$t" "$q" $((a - la)) $((p - lp)) $((f - lf))
    last[$q]="$a $p $f"
  done
done

echo "demo: stopping (SIGTERM: the socket client flushes, the worker drains)"
for i in 2 1 0; do kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
pids=()
echo "demo: summary"
for q in test-queue notification; do
  read -r a p f <<<"$(counter "$q")"
  printf '  %-12s added=%s processed=%s failed=%s waiting=%s active=%s\n' "$q" "${a:-0}" "${p:-0}" "${f:-0}" \
    "$(rc LLEN "$prefix:$q:wait")" "$(rc LLEN "$prefix:$q:active")"
done
printf '  latest round: %s\n' "$(rc HGET "$prefix:test-queue:latest" NAMED_POWERBALL | cut -c1-160)"
grep -h "summary\|exit" "$tmp/provider.log" "$tmp/socket.log" 2>/dev/null | sed 's/^/  /' | head -4 || true
if [ -z "$redis_pid" ]; then # a configured Redis: leave no demo keys behind
  rc --scan --pattern "$prefix:*" | while read -r k; do rc DEL "$k" >/dev/null; done
fi
echo "demo: done"
