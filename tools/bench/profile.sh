#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Profiles bullc's side of the benchmarks (docs/performance.md, "Profile").
#
#   tools/bench/profile.sh [--build DIR] [--out DIR] [--jobs N] [--concurrency C] [WHAT...]
#
# WHAT (default: all of them):
#   perf       perf stat + perf record of `bullc-worker --builtin noop` while it drains N jobs
#              (instructions, cycles, context switches per job; top functions, kernel included)
#   strace     system calls per job of the worker (strace -c -f)
#   callgrind  instructions per job by function (valgrind --tool=callgrind, collection on only
#              while the queue drains)
#   malloc     heap calls per job (malloc_count.so, two runs of N and 2N jobs, the difference)
#   massif     the worker's heap peak (valgrind --tool=massif)
#   slowlog    Redis execution time per script (SLOWLOG with threshold 0): moveToActive,
#              moveToFinished, addStandardJob
#   add        one `bullc_queue_add` (bench_add --mode single): system calls, heap calls, instructions
#
# Everything runs against a private redis-server. Reports go to OUT (default
# BUILD/bench-results/profile-<date>-<time>), a summary to stdout.
set -eu  # no pipefail: report pipelines end in head

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$root/build-bench
out=
jobs=20000
conc=64
what=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$(cd "$2" && pwd); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --concurrency) conc=$2; shift 2 ;;
    -h|--help) sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) what+=("$1"); shift ;;
  esac
done
[ ${#what[@]} -gt 0 ] || what=(perf strace callgrind malloc massif slowlog add)
# shellcheck source=tools/bench/lib.sh
. "$root/tools/bench/lib.sh"

bench_build_bullc
bench_compile_all
out=${out:-$build/bench-results/profile-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
trap bench_redis_stop EXIT
trap 'exit 130' INT TERM
bench_redis_start "$out/redis.log"
say "redis-server on port $redis_port; reports in $out"

bin=$build/bin
rc() { redis-cli -p "$redis_port" "$@"; }
Q=prof
summary=$out/summary.txt
: >"$summary"
note() { printf '%s\n' "$*" | tee -a "$summary"; }

blocked() { rc client list | grep -c ' flags=[^ ]*b' || true; }

# Fills queue Q with $1 jobs while it is paused (removeOnComplete: true).
fill() {
  rc flushall >/dev/null
  "$bin/bullc" pause $Q >/dev/null
  "$bench_bin/bench_add" --queue $Q --mode fill --count "$1" >/dev/null
}

# Starts the worker as "$@" (a command line ending in bullc-worker's options)
# and waits until it blocks on the paused queue. Sets wpid.
start_worker() {
  local b0
  b0=$(blocked)
  "$@" &
  wpid=$!
  for _ in $(seq 600); do
    [ "$(blocked)" -gt "$b0" ] && { sleep 0.3; return 0; }
    kill -0 $wpid 2>/dev/null || die "the worker exited: $*"
    sleep 0.05
  done
  die "the worker did not start: $*"
}

# Resumes the queue and waits until it is empty; prints the seconds taken.
drain() {
  local t0 t1
  t0=$(date +%s.%N)
  "$bin/bullc" resume $Q >/dev/null
  while :; do
    local n
    n=$(printf 'LLEN bull:%s:wait\nLLEN bull:%s:paused\nLLEN bull:%s:active\n' $Q $Q $Q | rc | paste -sd+ | bc)
    [ "$n" = 0 ] && break
    sleep 0.01
  done
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

stop_worker() {
  kill -TERM "$wpid" 2>/dev/null || true
  wait "$wpid" 2>/dev/null || true
}

worker_args=(--queue $Q --concurrency "$conc" --builtin noop --log-level warn)

# callgrind_annotate lines as "<count per unit>  <function>".
cg_per() { # file units
  awk -v n="$2" '/^ *[0-9,]+ / { c=$1; gsub(",","",c); l=$0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", l);
       if (l !~ /^\?\?\?:0x/) printf "  %10.0f  %s\n", c / n, l }' "$1"
}

# ---- perf -------------------------------------------------------------------------------
prof_perf() {
  if ! perf stat -e instructions true >/dev/null 2>&1; then
    note "perf: not usable here (perf stat -e instructions true fails)"
    return
  fi
  note "== perf: bullc-worker --builtin noop --concurrency $conc, $jobs jobs"
  fill "$jobs"
  start_worker "$bin/bullc-worker" "${worker_args[@]}"
  perf stat -e task-clock,context-switches,cpu-migrations,instructions,cycles -p "$wpid" -o "$out/perf-stat.txt" &
  local sp=$!
  perf record -F 4999 -p "$wpid" -o "$out/perf.data" 2>"$out/perf-record.log" &
  local rp=$!
  sleep 0.3
  local s
  s=$(drain)
  kill -INT $sp $rp
  wait $sp $rp 2>/dev/null || true
  stop_worker
  note "drained in $s s ($(echo "$jobs / $s" | bc) jobs/s, slowed by perf record)"
  awk -v n="$jobs" '$1 !~ /^</ && /task-clock|context-switches|cpu-migrations|instructions|cycles/ {
      gsub(",", "", $1); if ($2 == "msec") printf "  %-18s %12.2f µs per job\n", "cpu time", $1 * 1000 / n;
      else printf "  %-18s %12.3f per job\n", $2, $1 / n }
      $1 ~ /^</ { printf "  %-18s %s (no PMU in this VM)\n", $3, "not supported" }' "$out/perf-stat.txt" | tee -a "$summary"
  perf report -i "$out/perf.data" --sort dso,symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' \
    | head -40 >"$out/perf-top.txt" || true
  note "top functions (self time, kernel included): $out/perf-top.txt"
  head -25 "$out/perf-top.txt" | sed 's/^/  /' | tee -a "$summary"
}

# ---- strace -----------------------------------------------------------------------------
prof_strace() {
  command -v strace >/dev/null || { note "strace: not installed"; return; }
  local n=$((jobs / 4))
  note "== strace -c -f: system calls of bullc-worker while it drains $n jobs"
  fill "$n"
  start_worker "$bin/bullc-worker" "${worker_args[@]}"
  strace -c -f -p "$wpid" -o "$out/strace.txt" &
  local sp=$!
  sleep 0.5
  drain >/dev/null
  kill -INT $sp
  wait $sp 2>/dev/null || true
  stop_worker
  awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-16s %8.2f per job\n", $NF, $4 / n }
                 $NF == "total" { printf "  %-16s %8.2f per job\n", "(all)", $4 / n }' "$out/strace.txt" \
    | sort -k2 -nr | head -15 | tee -a "$summary"
}

# ---- callgrind --------------------------------------------------------------------------
prof_callgrind() {
  command -v valgrind >/dev/null || { note "callgrind: valgrind not installed"; return; }
  local n=$((jobs / 4))
  note "== callgrind: instructions per job by function (bullc-worker noop c$conc, $n jobs)"
  fill "$n"
  start_worker valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out/callgrind.out" \
    "$bin/bullc-worker" "${worker_args[@]}"
  callgrind_control -i on "$wpid" >/dev/null
  drain >/dev/null
  callgrind_control -i off "$wpid" >/dev/null
  stop_worker
  callgrind_annotate --inclusive=yes "$out/callgrind.out" >"$out/callgrind-inclusive.txt" 2>/dev/null || true
  callgrind_annotate "$out/callgrind.out" >"$out/callgrind-self.txt" 2>/dev/null || true
  local total
  total=$(grep -m1 'PROGRAM TOTALS' "$out/callgrind-self.txt" | awk '{gsub(",","",$1); print $1}')
  note "  total: $(echo "$total / $n" | bc) instructions per job"
  note "  by function (self, per job):"
  cg_per "$out/callgrind-self.txt" "$n" | grep -v TOTALS | head -25 | tee -a "$summary"
  note "  inclusive (per job):"
  cg_per "$out/callgrind-inclusive.txt" "$n" | grep -v TOTALS | head -45 | tee -a "$summary"
}

# ---- malloc counting ------------------------------------------------------------------------
malloc_run() { # $1: jobs; prints the JSON line
  local f=$out/malloc-$1.json
  rm -f "$f"
  fill "$1"
  start_worker env LD_PRELOAD="$bench_bin/malloc_count.so" MALLOC_COUNT_OUT="$f" "$bin/bullc-worker" "${worker_args[@]}"
  drain >/dev/null
  stop_worker
  tail -1 "$f"
}
prof_malloc() {
  local n1=$((jobs / 4)) n2=$((jobs / 2))
  note "== heap calls per job (malloc_count.so; runs of $n1 and $n2 jobs, the difference)"
  local a b
  a=$(malloc_run $n1)
  b=$(malloc_run $n2)
  node -e "const a=$a,b=$b,n=$n2-$n1;for(const k of ['malloc','calloc','realloc','free','bytes'])console.log('  '+k.padEnd(8)+((b[k]-a[k])/n).toFixed(1)+' per job')" \
    | tee -a "$summary"
}

# ---- massif -----------------------------------------------------------------------------------
prof_massif() {
  command -v valgrind >/dev/null || { note "massif: valgrind not installed"; return; }
  local n=$((jobs / 4))
  note "== massif: heap of bullc-worker noop c$conc ($n jobs)"
  fill "$n"
  start_worker valgrind --tool=massif --massif-out-file="$out/massif.out" "$bin/bullc-worker" "${worker_args[@]}"
  drain >/dev/null
  stop_worker
  ms_print "$out/massif.out" >"$out/massif.txt" 2>/dev/null || true
  local peak
  peak=$(awk -F= '/^mem_heap_B=/{h=$2} /^mem_heap_extra_B=/{e=$2; if (h+e>m) m=h+e} END{print m}' "$out/massif.out")
  note "  heap peak (with allocator overhead): $(echo "scale=1; $peak / 1024" | bc) KiB"
}

# ---- Redis: time per script ------------------------------------------------------------------
prof_slowlog() {
  local n=5000
  note "== Redis execution time per call (SLOWLOG, threshold 0; $n jobs, noop c$conc; Lua scripts by SHA1)"
  fill "$n"
  start_worker "$bin/bullc-worker" "${worker_args[@]}"
  rc config set slowlog-log-slower-than 0 >/dev/null
  rc config set slowlog-max-len 1000000 >/dev/null
  rc slowlog reset >/dev/null
  drain >/dev/null
  rc config set slowlog-log-slower-than 10000 >/dev/null
  rc --json slowlog get -1 >"$out/slowlog-proc.json" 2>/dev/null || true
  stop_worker
  # add: a fresh queue, single adds
  rc slowlog reset >/dev/null
  rc config set slowlog-log-slower-than 0 >/dev/null
  "$bench_bin/bench_add" --queue prof-add --mode single --count 2000 >/dev/null
  rc config set slowlog-log-slower-than 10000 >/dev/null
  "$bin/bullc" scripts | awk '{print $3, $1}' >"$out/scripts.txt"
  # one entry: id, time, duration, args...
  rc --json slowlog get -1 >"$out/slowlog-add.json" 2>/dev/null || true
  node -e '
    const fs = require("fs");
    const names = Object.fromEntries(fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(l => l.split(" ")));
    const agg = {};
    for (const f of process.argv.slice(2)) {
      let entries; try { entries = JSON.parse(fs.readFileSync(f, "utf8")); } catch { continue; }
      for (const e of entries) {
        const args = e[3];
        let k = String(args[0]).toLowerCase();
        if (k === "evalsha") k = names[args[1]] || args[1];
        if (["slowlog", "config", "llen", "client", "info", "ping"].includes(k)) continue;
        (agg[k] ||= []).push(e[2]);
      }
    }
    for (const [k, v] of Object.entries(agg).sort((a, b) => b[1].length - a[1].length)) {
      v.sort((a, b) => a - b);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      console.log(`  ${k.padEnd(26)} ${String(v.length).padStart(7)} calls  mean ${mean.toFixed(1).padStart(6)} µs  p50 ${v[v.length >> 1]} µs  p99 ${v[Math.floor(v.length * 0.99)]} µs`);
    }' "$out/scripts.txt" "$out/slowlog-proc.json" "$out/slowlog-add.json" | tee -a "$summary"
}
# ---- the add path ------------------------------------------------------------------------------
prof_add() {
  local n=5000
  note "== bullc_queue_add (bench_add --mode single, $n adds)"
  rc flushall >/dev/null
  local f=$out/malloc-add.json
  rm -f "$f"
  env LD_PRELOAD="$bench_bin/malloc_count.so" MALLOC_COUNT_OUT="$f" "$bench_bin/bench_add" --queue prof-add --mode single --count 10 --warmup 0 >/dev/null
  local a b
  a=$(tail -1 "$f")
  env LD_PRELOAD="$bench_bin/malloc_count.so" MALLOC_COUNT_OUT="$f" "$bench_bin/bench_add" --queue prof-add --mode single --count $((n + 10)) --warmup 0 >/dev/null
  b=$(tail -1 "$f")
  node -e "const a=$a,b=$b,n=$n;console.log('  heap calls per add: malloc '+((b.malloc-a.malloc)/n).toFixed(1)+', calloc '+((b.calloc-a.calloc)/n).toFixed(1)+', realloc '+((b.realloc-a.realloc)/n).toFixed(1)+', bytes '+((b.bytes-a.bytes)/n).toFixed(0))" \
    | tee -a "$summary"
  if command -v strace >/dev/null; then
    strace -c -f -o "$out/strace-add.txt" "$bench_bin/bench_add" --queue prof-add --mode single --count $n --warmup 0 >/dev/null
    awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "  %-16s %8.2f per add\n", $NF, $4 / n }' \
      "$out/strace-add.txt" | sort -k2 -nr | head -6 | tee -a "$summary"
  fi
  if command -v valgrind >/dev/null; then
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind-add.out" "$bench_bin/bench_add" --queue prof-add \
      --mode single --count $n --warmup 0 >/dev/null 2>"$out/callgrind-add.log"
    callgrind_annotate --inclusive=yes "$out/callgrind-add.out" >"$out/callgrind-add.txt" 2>/dev/null || true
    note "  instructions per add (inclusive):"
    cg_per "$out/callgrind-add.txt" "$n" | grep -E 'bullc|redis|msgpack|cJSON|sds|malloc' | head -20 | tee -a "$summary"
    local nb=20000
    note "== bullc_queue_add_bulk (bench_add --mode bulk, $nb jobs in batches of 1,000): instructions per job"
    rc flushall >/dev/null
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind-bulk.out" "$bench_bin/bench_add" --queue prof-bulk \
      --mode bulk --count $nb >/dev/null 2>"$out/callgrind-bulk.log"
    callgrind_annotate --inclusive=yes "$out/callgrind-bulk.out" >"$out/callgrind-bulk.txt" 2>/dev/null || true
    cg_per "$out/callgrind-bulk.txt" "$nb" | grep -E 'TOTALS|bullc|redis|msgpack|cJSON|sds|malloc|free' | head -24 | tee -a "$summary"
  fi
}

for w in "${what[@]}"; do
  case $w in
    perf) prof_perf ;;
    strace) prof_strace ;;
    callgrind) prof_callgrind ;;
    malloc) prof_malloc ;;
    massif) prof_massif ;;
    slowlog) prof_slowlog ;;
    add) prof_add ;;
    *) die "unknown profile $w" ;;
  esac
done
say "summary: $summary"
