// SPDX-License-Identifier: MIT
// Bounded graceful shutdown: SIGTERM mid-job exits within --shutdown-timeout,
// also while Redis is down; the unfinished job is left for stalled recovery
// (never half-written) and another worker completes it exactly once.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const IORedis = require('ioredis');
const { eventually, nodeBullmq } = require('../lib/harness');

const { Queue } = nodeBullmq(); // the Node peer's major (BULLC_COMPAT_BULLMQ)
const { RedisServer, startReady, killAll, tmpDir } = require('../lib/worker-proc');

after(killAll);

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });


test('SIGTERM mid-job with Redis down exits within the timeout; the job is recovered once', { timeout: 60000 }, async () => {
  const dir = tmpDir('shutdown');
  const port = await freePort();
  const redis = await new RedisServer(port, dir, ['--appendonly', 'yes', '--appendfsync', 'always']).start();
  const url = redis.url;
  const conn = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const q = new Queue('q', { connection: conn, prefix: 'sd' });
  q.on('error', () => {});
  try {
    const job = await q.add('long', { sleepMs: 4000 });
    const w = await startReady(['--queue', 'q', '--builtin', 'sleep', '--lock-duration', '1500',
      '--shutdown-timeout', '1500'], { prefix: 'sd', redis: url });
    await w.waitFor(/active/, 5000);
    await redis.kill();
    const t0 = Date.now();
    w.kill('SIGTERM');
    const exit = await w.waitExit(5000);
    const took = Date.now() - t0;
    assert.ok(took < 3000, `exited in ${took} ms (timeout 1500)`);
    assert.strictEqual(exit.code, 4, 'exit code 4: shutdown forced, the job left to stalled recovery');

    await redis.start();
    const client = new IORedis(conn);
    try {
      assert.deepStrictEqual(await client.lrange('sd:q:active', 0, -1), [job.id], 'the job stayed active, untouched');
      assert.strictEqual(await client.hget(`sd:q:${job.id}`, 'finishedOn'), null, 'nothing half-written');
      const r = await startReady(['--queue', 'q', '--builtin', 'echo', '--stalled-interval', '500'],
        { prefix: 'sd', redis: url });
      await eventually(async () => (await client.zcard('sd:q:completed')) === 1, 15000, 'recovery');
      const entries = await client.xrange('sd:q:events', '-', '+');
      const completions = entries.filter(([, f]) => f[1] === 'completed').length;
      assert.strictEqual(completions, 1);
      await r.stop();
    } finally {
      await client.quit();
    }
  } finally {
    await q.close().catch(() => {});
    await killAll();
    await redis.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGTERM mid-job finishes the job and exits 0', { timeout: 30000 }, async () => {
  const dir = tmpDir('shutdown');
  const port = await freePort();
  const redis = await new RedisServer(port, dir, ['--appendonly', 'yes', '--appendfsync', 'always']).start();
  const url = redis.url;
  const conn = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const q = new Queue('q', { connection: conn, prefix: 'sd' });
  try {
    const job = await q.add('short', { sleepMs: 800 });
    const w = await startReady(['--queue', 'q', '--builtin', 'sleep'], { prefix: 'sd', redis: url });
    await w.waitFor(/active/, 5000);
    w.kill('SIGTERM');
    const exit = await w.waitExit(5000);
    assert.strictEqual(exit.code, 0);
    assert.strictEqual(await q.getJobState(job.id), 'completed');
  } finally {
    await q.close();
    await killAll();
    await redis.kill();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
