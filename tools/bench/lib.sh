# SPDX-License-Identifier: MIT
# Shared by tools/bench/run.sh and tools/bench/profile.sh (sourced, not run).
# Expects: root (the repository), build (bullc's build directory).

bench_here=$root/tools/bench

say() { printf '[bench] %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# bullc's programs: configured in Release when missing, brought up to date
# before every measuring run.
bench_build_bullc() {
  # A smoke run (CTest's bench_smoke) measures nothing and is given the tree
  # that ctest itself runs from: that one is left as it is.
  if [ "${smoke:-0}" = 1 ] && [ -x "$build/bin/bullc-worker" ] && [ -e "$build/libbullc.so" ]; then
    [ -e "$build/bin/libbullc_example_plugin.so" ] || die "$build/bin/libbullc_example_plugin.so is missing"
    return 0
  fi
  if [ ! -e "$build/CMakeCache.txt" ]; then
    say "configuring bullc (Release) in $build"
    # -Wno-error=maybe-uninitialized: GCC 12 at -O3 reports a false positive in src/conn.c
    cmake -S "$root" -B "$build" -DBULLC_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_C_FLAGS=-Wno-error=maybe-uninitialized >/dev/null
  fi
  # Always brought up to date (a no-op when it is): a build left from an older
  # checkout would otherwise be measured as if it were this one.
  say "building bullc in $build"
  cmake --build "$build" -j"$(nproc)" >/dev/null
  [ -e "$build/bin/libbullc_example_plugin.so" ] || die "$build/bin/libbullc_example_plugin.so is missing"
}

# The C bench programs (public API only), compiled against the build tree
# into $build/bench: bench_add, bench_latency, malloc_count.so.
bench_compile_all() {
  bench_bin=$build/bench
  mkdir -p "$bench_bin"
  local cflags=(-std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror -I"$root/include" -I"$build/include")
  local ldflags=(-L"$build" -Wl,-rpath,"$build" -lbullc)
  if grep -q '^BULLC_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    # a sanitizer build (BULLC_SANITIZE=1 tools/test.sh): the programs must carry the same runtime
    cflags+=(-fsanitize=address,undefined -fno-omit-frame-pointer)
    ldflags+=(-fsanitize=address,undefined)
    say "sanitizer build: numbers are not measurements"
  fi
  local n mods
  for spec in bench_add: bench_latency:libuv; do
    n=${spec%%:*}
    mods=${spec#*:}
    if [ ! -x "$bench_bin/$n" ] || [ "$bench_here/$n.c" -nt "$bench_bin/$n" ] \
       || [ "$build/libbullc.so" -nt "$bench_bin/$n" ] || [ "$bench_here/lib.sh" -nt "$bench_bin/$n" ]; then
      # shellcheck disable=SC2046,SC2086
      cc "${cflags[@]}" $([ -n "$mods" ] && pkg-config --cflags $mods) -o "$bench_bin/$n" "$bench_here/$n.c" \
        "${ldflags[@]}" $([ -n "$mods" ] && pkg-config --libs $mods)
    fi
  done
  if [ ! -e "$bench_bin/malloc_count.so" ] || [ "$bench_here/malloc_count.c" -nt "$bench_bin/malloc_count.so" ]; then
    cc -std=c11 -O2 -fPIC -shared -Wall -Wextra -o "$bench_bin/malloc_count.so" "$bench_here/malloc_count.c"
  fi
}

# Node BullMQ 6.7.0 and ioredis, as pinned by compat-tests/package-lock.json, in
# a private copy ($build/bench/node_modules): the test suite's `npm ci` may
# replace compat-tests/node_modules while a benchmark runs. Sets nm.
bench_node_ok() { [ -e "$1/ioredis/package.json" ] && [ "$(node -p "require('$1/bullmq/package.json').version" 2>/dev/null)" = 6.7.0 ]; }
bench_node_modules() {
  local dir=$build/bench/npm lock=$root/compat-tests/package-lock.json
  nm=$dir/node_modules
  if bench_node_ok "$nm" && [ ! "$lock" -nt "$dir/package-lock.json" ]; then return 0; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$root/compat-tests/package.json" "$lock" "$dir/"
  if bench_node_ok "$root/compat-tests/node_modules"; then
    cp -a "$root/compat-tests/node_modules" "$nm" 2>/dev/null || true
  fi
  if ! bench_node_ok "$nm"; then
    say "npm ci: bullmq 6.7.0 for the Node side"
    rm -rf "$nm"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
  bench_node_ok "$nm" || die "no bullmq 6.7.0 in $nm"
  touch "$dir/package-lock.json"
}

# A private redis-server: loopback, a free port, no persistence (and a TLS
# port with BENCH_TLS; BENCH_REDIS_PORT picks the port, for a machine whose users keep to port ranges).
# Sets redis_pid, redis_port and REDIS_URL; stopped by bench_redis_stop (the
# callers' EXIT trap). $1: its log file.
redis_pid=
bench_redis_start() {
  local logfile=$1
  redis_port=${BENCH_REDIS_PORT:-}
  [ -n "$redis_port" ] || redis_port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  redis_dir=$(mktemp -d "${TMPDIR:-/tmp}/bullc-bench-redis.XXXXXX")
  # BENCH_REDIS_NICE (run.sh --redis-nice N): Redis's scheduling priority, so
  # that other load on a shared machine takes less of its core
  # BENCH_TLS (run.sh --only tls): a TLS port besides, with a self-signed certificate for
  # localhost (its own CA): BENCH_TLS_URL and BENCH_TLS_CA
  local tls=()
  if [ -n "${BENCH_TLS:-}" ]; then
    local tls_port
    tls_port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$redis_dir/tls.key" -out "$redis_dir/tls.crt" -days 2 \
      -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null || die "openssl could not make a certificate"
    tls=(--tls-port "$tls_port" --tls-cert-file "$redis_dir/tls.crt" --tls-key-file "$redis_dir/tls.key"
      --tls-ca-cert-file "$redis_dir/tls.crt" --tls-auth-clients no)
    export BENCH_TLS_URL=rediss://localhost:$tls_port BENCH_TLS_CA=$redis_dir/tls.crt
  fi
  ${BENCH_REDIS_NICE:+nice -n "$BENCH_REDIS_NICE"} redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" \
    --daemonize no --logfile "$logfile" --maxmemory-policy noeviction "${tls[@]}" &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    kill -0 "$redis_pid" 2>/dev/null || die "redis-server did not start (see $logfile)"
    sleep 0.05
  done
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG || die "redis-server did not answer on port $redis_port"
  export REDIS_URL=redis://127.0.0.1:$redis_port
  unset REDIS_HOST REDIS_PORT REDIS_PASSWORD REDIS_DB REDIS_USERNAME
}

# BENCH_CLUSTER (run.sh --only cluster): three more redis-servers (loopback, free ports, each with a
# bus port of its own: port + 10000 may not exist), made one cluster of three masters with
# `redis-cli --cluster create`. Sets cluster_pids and exports BENCH_CLUSTER_URL (redis+cluster://,
# the three masters) and BENCH_CLUSTER_PORTS; stopped by bench_redis_stop. $1: the log files' prefix.
cluster_pids=()
bench_cluster_start() {
  local prefix=$1 ports=() port bus d
  for i in 1 2 3; do
    port=$(bench_free_port)
    bus=$(bench_free_port)
    d=$redis_dir/cluster-$i
    mkdir -p "$d"
    ${BENCH_REDIS_NICE:+nice -n "$BENCH_REDIS_NICE"} redis-server --port "$port" --bind 127.0.0.1 --save '' \
      --appendonly no --dir "$d" --daemonize no --logfile "$prefix-$i.log" --maxmemory-policy noeviction \
      --cluster-enabled yes --cluster-port "$bus" --cluster-config-file nodes.conf &
    cluster_pids+=($!)
    ports+=("$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done
  done
  redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >"$prefix-create.log" 2>&1 \
    || die "redis-cli --cluster create failed (see $prefix-create.log)"
  for port in "${ports[@]}"; do
    for _ in $(seq 200); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q cluster_state:ok && break
      sleep 0.05
    done
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q cluster_state:ok || die "the cluster is not ok on port $port"
  done
  BENCH_CLUSTER_PORTS=$(IFS=,; echo "${ports[*]}")
  BENCH_CLUSTER_URL=redis+cluster://$(printf '127.0.0.1:%s,' "${ports[@]}" | sed 's/,$//')
  export BENCH_CLUSTER_PORTS BENCH_CLUSTER_URL
}
bench_free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

bench_redis_stop() {
  local p
  for p in "${cluster_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${cluster_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  cluster_pids=()
  if [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null; then
    kill "$redis_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$redis_pid" 2>/dev/null || true
  fi
  [ -n "${redis_dir:-}" ] && rm -rf "$redis_dir"
  redis_pid=
}
