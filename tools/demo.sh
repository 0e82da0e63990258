#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: builds everything, then runs the reference deployment's queues
# locally. Without REDIS_URL / REDIS_HOST it starts a private redis-server on a
# free loopback port (and stops it at the end); nothing is left running.
#   DEMO_JOBS=N (default 200) jobs per queue, DEMO_SECONDS=S (default 5) of processing.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/bootstrap.sh
cmake -S . -B build -DBULLC_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
bin=build/bin
jobs=${DEMO_JOBS:-200}
seconds=${DEMO_SECONDS:-5}

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -f "$tmp/redis.pid" ]; then kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true; sleep 0.2; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

if [ -z "${REDIS_URL:-}" ] && [ -z "${REDIS_HOST:-}" ]; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 6479)
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
    --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  export REDIS_URL="redis://127.0.0.1:$port"
  echo "demo: private redis-server on 127.0.0.1:$port"
fi
prefix="bullc-demo-$$"
opts='{"removeOnComplete":10,"removeOnFail":5}'

echo "demo: adding $jobs game_data jobs to test-queue and $jobs send-notification jobs to notification"
t0=$(date +%s%N)
for i in $(seq 1 "$jobs"); do
  printf '{"name":"game_data","data":{"provider":"NAMED_POWERBALL","data":{"round":%d,"balls":[3,14,15,92,65]},"timestamp":%d,"messageType":"round_result"},"opts":%s}\n' \
    "$i" "$(date +%s%3N)" "$opts"
done | "$bin/bullc" --prefix "$prefix" add-bulk test-queue > "$tmp/ids1"
for i in $(seq 1 "$jobs"); do
  printf '{"name":"send-notification","data":{"userId":"user-%d","type":"info","message":"round %d is over","data":{}},"opts":%s}\n' \
    "$i" "$i" "$opts"
done | "$bin/bullc" --prefix "$prefix" add-bulk notification > "$tmp/ids2"
t1=$(date +%s%N)
echo "demo: added $(($(wc -l < "$tmp/ids1") + $(wc -l < "$tmp/ids2"))) jobs in $(( (t1 - t0) / 1000000 )) ms"

if [ -x "$bin/bullc-worker" ]; then
  echo "demo: bullc-worker processes both queues for ${seconds}s (builtin echo processors)"
  "$bin/bullc-worker" --prefix "$prefix" --queue test-queue --queue notification --concurrency 8 \
    --builtin test-queue=echo --builtin notification=echo --log-level warn &
  pids+=($!)
  sleep "$seconds"
  kill -TERM "${pids[0]}"; wait "${pids[0]}" || true; pids=()
fi

rc() { redis-cli -u "$REDIS_URL" "$@"; }
for q in test-queue notification; do
  printf 'demo: %-12s waiting=%s active=%s completed(kept)=%s failed(kept)=%s\n' "$q" \
    "$(rc LLEN "$prefix:$q:wait")" "$(rc LLEN "$prefix:$q:active")" \
    "$(rc ZCARD "$prefix:$q:completed")" "$(rc ZCARD "$prefix:$q:failed")"
done
echo "demo: done"
