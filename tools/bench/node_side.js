// SPDX-License-Identifier: MIT
// The Node BullMQ 6.7.0 side of tools/bench: the same workloads as
// bench_add.c / bench_latency.c / `bullc-worker --builtin noop`.
//
//   node node_side.js bulk    --queue Q --count N [--batch 1000]
//   node node_side.js single  --queue Q --count N [--warmup 50]
//   node node_side.js ping    --queue Q --count N              (ioredis PING round trips: the floor)
//   node node_side.js paced   --queue Q --count N --interval-us U
//   node node_side.js worker  --queue Q --concurrency C [--processor FILE.js]
//                                                  (noop, or FILE.js sandboxed in child processes; until SIGTERM)
//   node node_side.js latency --queue Q --count N [--skip K]   (concurrency 1)
//   node node_side.js workers --queue - --queues-file FILE      (a noop Worker per queue named in FILE, as a
//                                                  Node deployment serves many queues; until SIGTERM)
//
// Redis from REDIS_URL (rediss://: TLS, the CA from REDIS_TLS_CA; redis+cluster://: ioredis's
// Cluster client). Node modules from NODE_PATH (compat-tests/node_modules).
// Prints JSON lines on stdout ({"ready":true} for the workers).
'use strict';

const { Queue, Worker } = require('bullmq');

const mode = process.argv[2];
const args = {};
for (let i = 3; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const queueName = args.queue;
const count = Number(args.count || 1000);

// rediss:// (bench.js --only tls): ioredis's TLS with REDIS_TLS_CA, as bullc reads them;
// redis+cluster://host:port,... (--only cluster): ioredis's Cluster client on those seed nodes
function connection() {
  const url = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  if (url.startsWith('redis+cluster://')) {
    const seeds = url.slice('redis+cluster://'.length).split(',').map(hp => {
      const i = hp.lastIndexOf(':');
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    });
    return new (require('ioredis').Cluster)(seeds, { redisOptions: { maxRetriesPerRequest: null } });
  }
  const u = new URL(url);
  const tls = u.protocol === 'rediss:'
    ? { tls: { ca: require('node:fs').readFileSync(process.env.REDIS_TLS_CA), servername: u.hostname } } : {};
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null, ...tls };
}

const jobOpts = { removeOnComplete: true };
const jobData = i => ({ i, userId: `u${i % 1000}`, kind: 'bench', payload: 'abcdefghijklmnopqrstuvwxyz0123456789' });
const nowNs = () => process.hrtime.bigint();
const wallUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

function pct(sorted, p) {
  if (!sorted.length) return 0;
  let k = Math.ceil((p / 100) * sorted.length);
  k = Math.min(Math.max(k, 1), sorted.length);
  return sorted[k - 1];
}

function summary(values) {
  const s = Float64Array.from(values).sort();
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { count: s.length, p50_us: pct(s, 50), p99_us: pct(s, 99), mean_us: mean, max_us: s[s.length - 1] };
}

const out = o => process.stdout.write(JSON.stringify(o) + '\n');

async function producer() {
  const conn = connection();
  const queue = new Queue(queueName, { connection: conn });
  await queue.waitUntilReady();
  if (mode === 'bulk') {
    const batch = Number(args.batch || 1000);
    // warm-up, not counted (connection, queue meta, script cache)
    await queue.addBulk(Array.from({ length: 10 }, (_, j) => ({ name: 'bench', data: jobData(-1 - j), opts: jobOpts })));
    const t0 = nowNs();
    for (let done = 0; done < count; ) {
      const n = Math.min(batch, count - done);
      const jobs = new Array(n);
      for (let j = 0; j < n; j++) jobs[j] = { name: 'bench', data: jobData(done + j), opts: jobOpts };
      await queue.addBulk(jobs);
      done += n;
    }
    const s = Number(nowNs() - t0) / 1e9;
    out({ mode, count, batch, seconds: s, jobs_per_s: count / s });
  } else if (mode === 'single' || mode === 'ping') {
    const warmup = Number(args.warmup || 50);
    const lat = [];
    const client = mode === 'ping' ? new (require('ioredis'))(process.env.REDIS_URL || 'redis://127.0.0.1:6379') : null;
    for (let i = -warmup; i < count; i++) {
      const t0 = nowNs();
      if (mode === 'ping') await client.ping();
      else await queue.add('bench', jobData(i), jobOpts);
      const dt = Number(nowNs() - t0) / 1e3;
      if (i >= 0) lat.push(dt);
    }
    if (client) client.disconnect();
    out({ mode, ...summary(lat) });
  } else if (mode === 'paced') {
    const interval = Number(args['interval-us'] || 2000) / 1e3; // ms
    let next = performance.now();
    for (let i = 0; i < count; i++) {
      next += interval;
      await queue.add('lat', { t: wallUs(), i }, jobOpts);
      const wait = next - performance.now();
      if (wait > 0) await new Promise(r => setTimeout(r, wait));
    }
    out({ mode, count });
  }
  await queue.close();
  if (conn.disconnect) conn.disconnect(); // a Cluster client of our own: BullMQ closes only what it made
}

async function worker() {
  const concurrency = Number(args.concurrency || 1);
  // a file: BullMQ's sandboxed processor, a child process per slot (useWorkerThreads false)
  const processor = args.processor || (async () => {});
  const w = new Worker(queueName, processor, { connection: connection(), concurrency, useWorkerThreads: false });
  w.on('error', e => process.stderr.write(`node worker error: ${e.message}\n`));
  await w.waitUntilReady();
  out({ ready: true });
  const stop = async () => {
    await w.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function workers() {
  const names = require('node:fs').readFileSync(args['queues-file'], 'utf8').split('\n').filter(Boolean);
  const ws = names.map(name => new Worker(name, async () => {}, { connection: connection() }));
  for (const w of ws) w.on('error', e => process.stderr.write(`node worker error: ${e.message}\n`));
  await Promise.all(ws.map(w => w.waitUntilReady()));
  out({ ready: true, workers: ws.length });
  const stop = async () => {
    await Promise.all(ws.map(w => w.close()));
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function latency() {
  const skip = Number(args.skip || 10);
  const lat = [];
  let seen = 0;
  let w;
  const done = new Promise(resolve => {
    w = new Worker(
      queueName,
      async job => {
        const d = wallUs() - job.data.t;
        if (seen >= skip && lat.length < count) lat.push(d);
        seen++;
        if (lat.length === count) resolve();
      },
      { connection: connection(), concurrency: 1 },
    );
  });
  w.on('error', e => process.stderr.write(`node worker error: ${e.message}\n`));
  await w.waitUntilReady();
  out({ ready: true });
  process.on('SIGTERM', () => process.exit(1));
  await done;
  await w.close();
  out(summary(lat));
  process.exit(0);
}

const run = { bulk: producer, single: producer, ping: producer, paced: producer, worker, workers, latency }[mode];
if (!run || !queueName) {
  process.stderr.write('usage: node node_side.js bulk|single|ping|paced|worker|workers|latency --queue Q [...]\n');
  process.exit(2);
}
run().catch(e => {
  process.stderr.write(`node_side ${mode}: ${e.stack || e}\n`);
  process.exit(1);
});
