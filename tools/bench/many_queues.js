// SPDX-License-Identifier: MIT
// tools/bench's many-queues workload (bench.js --only manyq): one worker
// process serving N queues, each queue idle until a job comes. bullc: one
// bullc-worker --queues-file (its queues share two connections); Node: one
// process with a Worker per queue (two connections each), as a Node
// deployment serves many queues. Measured, after the workers are ready and
// 5 s of quiet: the worker's TCP connections to Redis (from /proc), its RSS,
// Redis's and the worker's CPU over 10 s of idling, then the start latency
// of jobs added one at a time to random queues (the job's processedOn minus
// its timestamp: both stamped by Date.now()-like ms clocks on this machine),
// and the time from the worker's start until it said it was ready.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Queue } = require('bullmq');
const { connectionsTo } = require('../../compat-tests/lib/tcp');

module.exports = function manyQueuesWorkload(h) {
  const { R, S, Proc, record, log, sleep, cpuSec, vm, fresh, redisCpu, nodeSide } = h;

  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

  return async function manyQueues(round, side, n) {
    await fresh();
    const names = Array.from({ length: n }, (_, i) => `mq-${i}`);
    const file = path.join(S.out, `manyq-${n}.txt`);
    fs.writeFileSync(file, names.join('\n') + '\n');
    const port = Number(new URL(S.redisUrl).port);
    const t0 = Date.now();
    const w = side === 'node'
      ? new Proc('node', [nodeSide, 'workers', '--queue', 'mq', '--queues-file', file])
      : new Proc(path.join(S.bin, 'bullc-worker'), ['--queues-file', file, '--builtin', 'noop', '--log-level', 'info']);
    const Q = new Map();
    try {
      const deadline = Date.now() + 600000;
      const ready = () => (side === 'node' ? w.out.includes('"ready"') : /\bready\b.*queues=/.test(w.err));
      while (!ready()) {
        if (w.exit) throw new Error(`${w.cmd} exited (${w.exit.code ?? w.exit.signal}): ${w.err.slice(-2000)}`);
        if (Date.now() > deadline) throw new Error('the workers did not get ready');
        await sleep(100);
      }
      const startSeconds = (Date.now() - t0) / 1000;
      await sleep(5000);
      const conns = connectionsTo(w.pid, port);
      const rssIdle = vm(w.pid).rss / 1024;
      const [r0, c0] = [await redisCpu(), cpuSec(w.pid)];
      const idleSeconds = S.smoke ? 2 : 10;
      await sleep(idleSeconds * 1000);
      const [r1, c1] = [await redisCpu(), cpuSec(w.pid)];

      // jobs added one at a time to random queues
      const m = S.smoke ? 30 : S.manyqJobs;
      const added = [];
      for (let i = 0; i < m; i++) {
        const name = names[Math.floor(Math.random() * n)];
        if (!Q.has(name)) Q.set(name, new Queue(name, { connection: R }));
        added.push([Q.get(name), (await Q.get(name).add('j', { i })).id]);
        await sleep(20);
      }
      const lat = [];
      for (const [q, id] of added) {
        let job;
        for (;;) {
          const [processedOn, ts] = await R.hmget(`bull:${q.name}:${id}`, 'processedOn', 'timestamp');
          if (processedOn) { job = { processedOn: Number(processedOn), timestamp: Number(ts) }; break; }
          if (Date.now() > deadline) throw new Error(`job ${q.name}:${id} never started`);
          await sleep(20);
        }
        lat.push(job.processedOn - job.timestamp);
      }
      lat.sort((a, b) => a - b);
      const r = {
        queues: n, start_s: startSeconds, redis_conns: conns, rss_idle_mib: rssIdle, rss_peak_mib: vm(w.pid).hwm / 1024,
        idle_redis_cpu: (r1 - r0) / idleSeconds, idle_worker_cpu: (c1 - c0) / idleSeconds,
        start_p50_ms: pct(lat, 50), start_p99_ms: pct(lat, 99), start_max_ms: lat[lat.length - 1],
      };
      record(round, 'manyq', side, `q${n}`, 1, r);
      log(`manyq ${side} ${n} queues: ready in ${startSeconds.toFixed(1)} s, ${conns} connections, RSS ${rssIdle.toFixed(1)} MiB, ` +
        `idle Redis CPU ${(r.idle_redis_cpu * 100).toFixed(2)}%, worker ${(r.idle_worker_cpu * 100).toFixed(2)}%, ` +
        `add → start p50 ${r.start_p50_ms} ms p99 ${r.start_p99_ms} ms (max ${r.start_max_ms})`);
    } finally {
      await w.stop(60000);
      for (const q of Q.values()) await q.close();
    }
  };
};
