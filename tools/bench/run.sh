#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Benchmarks bullc side by side with Node BullMQ 6.7.0 (see docs/performance.md).
#
#   tools/bench/run.sh            full run: 3 rounds, Node and bullc alternating (about 10 minutes)
#   tools/bench/run.sh --smoke    tiny sizes, one round (< 60 s); exits non-zero when a workload
#                                 produced no number (CTest: bench_smoke)
#
# Options (the rest go to bench.js):
#   --build DIR     bullc's build directory (default: build-bench, configured in Release when
#                   missing, and always built first, so a run never measures an older checkout)
#   --out DIR       results directory (default: DIR/bench-results/<date>-<time>[-smoke])
#   --rounds N      rounds (3; smoke: 1)
#   --only LIST     some of bulk,single,proc,latency,scale; or, only when named: manyq, one worker
#                   process serving many idle queues (--manyq-bullc 1000,5000 --manyq-node 1000
#                   --manyq-jobs 300; tools/bench/many_queues.js); tls, bulk add and processing c8
#                   over plain TCP and over TLS to the same redis-server (its TLS port has a
#                   self-signed certificate made with openssl; --tls-jobs 20000); cluster, bulk add
#                   and processing over 6 queues on a Redis Cluster of three masters (started here,
#                   free ports) and on the one redis-server (--cluster-jobs 12000)
#   --no-scale      skip the scaling rows (2 worker processes, 4 queues)
#   --concurrency LIST   processing concurrencies (1,8,64)
#   --redis-nice N  run redis-server at nice N (full runs as root: -10; 0: as everything else): on
#                   a shared machine other load then takes less of Redis's core, as if Redis had
#                   a core of its own (as in production)
#   sizes: --bulk-jobs N --single-adds N --proc-jobs N --proc-jobs-c1 N --exec-jobs N --execp-jobs N
#          --execp-warmup N (jobs processed untimed before the "children already running" rows)
#          --lat-jobs N --lat-interval-us U
#   --busy-poll-us U     the extra bullc single-add/PING rows with busy polling (200)
#   --update-docs   write the run's table into docs/performance.md (between its bench:results
#                   markers), the one place the docs give these figures (not with --smoke)
#
# It starts its own redis-server (loopback, a free port or BENCH_REDIS_PORT, no
# persistence) and stops it on exit; REDIS_URL is ignored.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build-bench
out=
smoke=0
pass=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --smoke) smoke=1; pass+=(--smoke); shift ;;
    --update-docs) pass+=(--docs "$root/docs/performance.md"); shift ;;
    --redis-nice) export BENCH_REDIS_NICE=$2; pass+=(--redis-nice "$2"); shift 2 ;;
    --only)
      case ,$2, in *,tls,*) export BENCH_TLS=1 ;; esac
      case ,$2, in *,cluster,*) export BENCH_CLUSTER=1 ;; esac
      pass+=(--only "$2"); shift 2 ;;
    -h|--help) sed -n '3,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) pass+=("$1"); shift ;;
  esac
done
if [ -z "${BENCH_REDIS_NICE:-}" ] && [ $smoke = 0 ] && [ "$(id -u)" = 0 ]; then
  export BENCH_REDIS_NICE=-10
  pass+=(--redis-nice -10)
fi
[ "${BENCH_REDIS_NICE:-}" = 0 ] && unset BENCH_REDIS_NICE
# shellcheck source=tools/bench/lib.sh
. "$root/tools/bench/lib.sh"

for t in cc node redis-server redis-cli pkg-config; do
  command -v "$t" >/dev/null || die "$t is needed (tools/bootstrap.sh installs it)"
done

bench_build_bullc
bench_compile_all
bench_node_modules

if [ -z "$out" ]; then
  out=$build/bench-results/$(date +%Y%m%d-%H%M%S)$([ $smoke = 1 ] && echo -smoke || true)
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)

trap bench_redis_stop EXIT
trap 'exit 130' INT TERM
bench_redis_start "$out/redis.log"
say "redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on 127.0.0.1:$redis_port (pid $redis_pid), results in $out"
if [ -n "${BENCH_CLUSTER:-}" ]; then
  bench_cluster_start "$out/cluster"
  say "Redis Cluster of three masters on 127.0.0.1:{$BENCH_CLUSTER_PORTS}"
fi

export NODE_PATH=$nm
BENCH_GIT=$(git -C "$root" describe --always --dirty 2>/dev/null || true)
export BENCH_GIT
set +e
node "$bench_here/bench.js" --out "$out" --bin "$build/bin" --bench-bin "$bench_bin" --redis-pid "$redis_pid" "${pass[@]}"
rc=$?
set -e
ln -sfn "$out" "$(dirname "$out")/latest$([ $smoke = 1 ] && echo -smoke || true)" 2>/dev/null || true
exit $rc
