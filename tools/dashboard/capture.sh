#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes docs/grafana/dashboard.png from real data: a private redis-server,
# two bullc-worker processes with --http under a varying load (bullc
# add-bulk), Debian's prometheus scraping them every second, then render.js
# draws the dashboard's own queries over the run and headless Chromium
# screenshots it. Nothing it starts is left running.
#
#   tools/dashboard/capture.sh [--build DIR] [--seconds N] [--out PNG]
#
# Needs redis-server, prometheus, chromium and node (apt-get install
# redis-server prometheus chromium nodejs).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build
seconds=300
out=$root/docs/grafana/dashboard.png
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "capture.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
bin=$build/bin
for t in redis-server prometheus chromium node "$bin/bullc-worker" "$bin/bullc"; do
  command -v "$t" >/dev/null || { echo "capture.sh: $t is needed" >&2; exit 2; }
done

tmp=$(mktemp -d)
pids=()
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
wait_http() {
  for _ in $(seq 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "capture.sh: $1 did not answer" >&2; exit 1
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
url=redis://127.0.0.1:$rport

# two processes: orders and emails on BullMQ 6.7.0, reports on 5.81.5 (the
# Workers panel shows both releases)
h1=$(free_port)
"$bin/bullc-worker" --redis "$url" --prefix dash --queue orders --queue emails --builtin sleep \
  --concurrency 24 --http "127.0.0.1:$h1" --log-level warn 2>"$tmp/w1.log" &
pids+=($!)
h2=$(free_port)
"$bin/bullc-worker" --redis "$url" --prefix dash --queue reports --builtin sleep --bullmq-version 5 \
  --concurrency 4 --http "127.0.0.1:$h2" --log-level warn 2>"$tmp/w2.log" &
pids+=($!)
wait_http "http://127.0.0.1:$h1/readyz"
wait_http "http://127.0.0.1:$h2/readyz"

pport=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: bullc-worker
    static_configs: [{targets: ['127.0.0.1:$h1', '127.0.0.1:$h2']}]
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="127.0.0.1:$pport" >"$tmp/prometheus.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$pport/-/ready"

echo "capture.sh: load for $seconds s (redis $rport, workers $h1 $h2, prometheus $pport)" >&2
BULLC=$bin/bullc REDIS=$url SECONDS_TOTAL=$seconds node "$root/tools/dashboard/load.js"
# a picture of a worker that died under the load would show an outage that was the tool's fault
for p in "${pids[@]:1:2}"; do
  kill -0 "$p" 2>/dev/null || { echo "capture.sh: a bullc-worker exited during the load:" >&2; cat "$tmp"/w*.log >&2; exit 1; }
done
node "$root/tools/dashboard/render.js" --prometheus "http://127.0.0.1:$pport" --range "$seconds" --out "$out"
