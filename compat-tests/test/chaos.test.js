// SPDX-License-Identifier: MIT
// Chaos: two bullc-workers and a Node worker share a loaded queue while
// workers are killed with SIGKILL and restarted at random, and Redis itself
// is killed and restarted twice (AOF, appendfsync always). Every job must
// complete exactly once (one `completed` event per job id), none lost, none
// failed because of the kills. Re-runs (a job started again after its worker
// died) are counted and reported: at-least-once processing allows them.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const IORedis = require('ioredis');
const { bullmqPackage, eventually, nodeBullmq, sleep } = require('../lib/harness');

const { Queue } = nodeBullmq(); // the Node peer's major (BULLC_COMPAT_BULLMQ)
const { RedisServer, startWorker, startNode, killAll, tmpDir } = require('../lib/worker-proc');

after(killAll);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const NODE_WORKER = `
const { Worker } = require('${bullmqPackage()}');
const [url, prefix] = process.argv.slice(1);
const u = new URL(url);
const w = new Worker('chaos', async job => {
  await new Promise(r => setTimeout(r, job.data.sleepMs));
  return job.data;
}, { connection: { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null }, prefix,
     concurrency: 4, lockDuration: 2000, stalledInterval: 1000, maxStalledCount: 1000, drainDelay: 1 });
w.on('error', () => {});
w.on('ready', () => console.log('node worker ready'));
`;

test('chaos: random kill -9 of workers and Redis; every job completed exactly once', { timeout: 180000 }, async () => {
  const dir = tmpDir('chaos');
  const port = await freePort();
  const redis = await new RedisServer(port, dir, ['--appendonly', 'yes', '--appendfsync', 'always']).start();
  const url = `redis://127.0.0.1:${port}`;
  const prefix = 'chaos';
  const N = 400;
  const conn = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const queue = new Queue('chaos', { connection: conn, prefix, streams: { events: { maxLen: 100000 } } });
  queue.on('error', () => {});
  await queue.waitUntilReady();
  const jobs = [];
  for (let i = 0; i < N; i++) jobs.push({ name: 'c', data: { i, sleepMs: 20 + (i % 5) * 10 } });
  for (let i = 0; i < N; i += 100) await queue.addBulk(jobs.slice(i, i + 100));
  await queue.close();

  const bullcArgs = ['--queue', 'chaos', '--concurrency', '4', '--builtin', 'sleep', '--lock-duration', '2000',
    '--stalled-interval', '1000', '--max-stalled-count', '1000', '--drain-delay', '1', '--log-level', 'error'];
  const spawnOne = kind =>
    kind === 'node' ? startNode(NODE_WORKER, [url, prefix]) : startWorker(bullcArgs, { prefix, redis: url });
  const workers = [
    { kind: 'bullc', p: spawnOne('bullc') },
    { kind: 'bullc', p: spawnOne('bullc') },
    { kind: 'node', p: spawnOne('node') },
  ];
  let kills = 0;
  let redisRestarts = 0;
  const end = Date.now() + 20000;
  let step = 0;
  while (Date.now() < end) {
    await sleep(300 + Math.floor(Math.random() * 900));
    step++;
    if (step === 6 || step === 14) {
      await redis.kill();
      await sleep(1000);
      await redis.start();
      redisRestarts++;
      continue;
    }
    const w = workers[Math.floor(Math.random() * workers.length)];
    w.p.kill('SIGKILL');
    await w.p.exited;
    kills++;
    w.p = spawnOne(w.kind);
  }

  // Let the survivors finish everything.
  const client = new IORedis(conn);
  try {
    await eventually(async () => (await client.zcard(`${prefix}:chaos:completed`)) === N, 90000,
      `all ${N} jobs completed`, 250);
    assert.strictEqual(await client.zcard(`${prefix}:chaos:failed`), 0, 'no job failed because of the kills');
    assert.strictEqual(await client.llen(`${prefix}:chaos:active`), 0);
    const entries = await client.xrange(`${prefix}:chaos:events`, '-', '+');
    const completed = new Map();
    let actives = 0;
    for (const [, fields] of entries) {
      const f = {};
      for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
      if (f.event === 'completed') completed.set(f.jobId, (completed.get(f.jobId) || 0) + 1);
      if (f.event === 'active') actives++;
    }
    const twice = [...completed].filter(([, n]) => n !== 1);
    assert.deepStrictEqual(twice, [], 'every job completed exactly once');
    assert.strictEqual(completed.size, N, 'no job lost');
    const reruns = actives - N;
    console.log(`chaos: ${kills} worker kills, ${redisRestarts} Redis restarts, ${N} jobs, ${reruns} re-runs`);
    assert.ok(kills >= 10, `enough chaos (${kills} kills)`);
  } finally {
    await client.quit();
    await killAll();
    await redis.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
