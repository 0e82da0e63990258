// SPDX-License-Identifier: MIT
// bullc-worker's start-up guard rails, one clear message each: an eviction
// policy other than noeviction and a queue of another BullMQ major refuse
// to start (exit 5) unless --allow-unsafe-redis; persistence off is a
// warning; the password never shows in the process's arguments.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const IORedis = require('ioredis');
const { RedisServer, startWorker, startReady, killAll, tmpDir } = require('../lib/worker-proc');

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

// A redis-server of the test's own, stopped by kill() or, at the latest, by killAll().
async function redis(args = []) {
  return new RedisServer(await freePort(), tmpDir('guard-rails'), args).start();
}

test('an eviction policy other than noeviction refuses to start, with one clear message', async () => {
  const r = await redis(['--maxmemory-policy', 'allkeys-lru']);
  try {
    const w = startWorker(['--queue', 'q', '--builtin', 'noop'], { redis: r.url });
    const exit = await w.waitExit(10000);
    assert.strictEqual(exit.code, 5);
    assert.match(w.text(), /maxmemory-policy is allkeys-lru/);
    const ok = await startReady(['--queue', 'q', '--builtin', 'noop', '--allow-unsafe-redis'], { redis: r.url });
    assert.match(ok.text(), /warn .*maxmemory-policy is allkeys-lru/);
    assert.match(ok.text(), /persistence is off/, 'persistence off is a warning');
    await ok.stop();
  } finally {
    await r.kill();
  }
});

test('a queue written by another BullMQ major than the one chosen refuses to start', async () => {
  const r = await redis();
  const c = new IORedis(r.port);
  try {
    await c.hset('bull:old:meta', 'version', 'bullmq:5.12.0');
    const w = startWorker(['--queue', 'old', '--builtin', 'noop', '--bullmq-version', '6'], { redis: r.url });
    const exit = await w.waitExit(10000);
    assert.strictEqual(exit.code, 5);
    assert.match(w.text(), /bullmq:5\.12\.0/);
    // a major bullc does not speak refuses to start without an explicit choice
    await c.hset('bull:older:meta', 'version', 'bullmq:4.18.0');
    const w4 = startWorker(['--queue', 'older', '--builtin', 'noop'],
      { redis: r.url, env: { ...process.env, BULLC_BULLMQ_VERSION: '' } });
    assert.strictEqual((await w4.waitExit(10000)).code, 5);
    assert.match(w4.text(), /bullmq:4\.18\.0/);
  } finally {
    await c.quit();
    await r.kill();
  }
});

test('the Redis password is masked in the process arguments', async () => {
  const r = await redis(['--requirepass', 'hunter2-secret']);
  try {
    const w = await startReady(['--queue', 'q', '--builtin', 'noop'],
      { redis: `redis://:hunter2-secret@127.0.0.1:${r.port}` });
    const cmdline = fs.readFileSync(`/proc/${w.pid}/cmdline`, 'utf8');
    assert.ok(!cmdline.includes('hunter2-secret'), cmdline);
    assert.ok(cmdline.includes('redis://:***@127.0.0.1:'), cmdline);
    assert.ok(!/\*{4}/.test(cmdline), 'three stars, whatever the length: ' + cmdline);
    assert.ok(!w.text().includes('hunter2-secret'));
    await w.stop();
  } finally {
    await r.kill();
  }
});

// bullc-worker under `ulimit` (/bin/sh runs it): `limits` are the shell's ulimit arguments.
function underUlimit(limits, args) {
  const { Proc, workerPath } = require('../lib/worker-proc');
  const { redisUrl } = require('../lib/harness');
  return new Proc('/bin/sh', ['-c', `ulimit ${limits} && exec "$0" "$@"`, workerPath(), '--redis', redisUrl(), ...args]);
}

test('an open-files limit too low for the queues refuses to start (exit 5); a soft limit is raised first', async () => {
  const queues = Array.from({ length: 15 }, (_, i) => ['--queue', `fdq${i}`]).flat();
  // 15 queues need 2 connections each, plus the worker's own: more than 40
  const low = underUlimit('-n 40', [...queues, '--builtin', 'noop', '--prefix', `fd${process.pid}`]);
  const exit = await low.waitExit(10000);
  assert.strictEqual(exit.code, 5, low.text());
  assert.match(low.text(), /open-files limit is 40 \(hard limit 40\) but 15 queue\(s\) .* need about \d+ fds/);
  assert.doesNotMatch(low.text(), /\bready\b/);

  const raised = underUlimit('-Sn 40 && ulimit -Hn 400', [...queues, '--builtin', 'noop', '--prefix', `fd${process.pid}`]);
  await raised.waitFor(/\bready\b.*queues=/);
  assert.match(raised.text(), /fd-limit raised_from=40 to=\d+ needed=\d+/);
  const limits = fs.readFileSync(`/proc/${raised.child.pid}/limits`, 'utf8');
  assert.match(limits, /Max open files\s+(\d+)\s+400/);
  assert.ok(Number(/Max open files\s+(\d+)/.exec(limits)[1]) > 40);
  assert.strictEqual((await raised.stop()).code, 0);

  const allowed = underUlimit('-n 40', [...queues, '--builtin', 'noop', '--allow-low-fd-limit', '--prefix', `fd${process.pid}`]);
  await allowed.waitFor(/warn +fd-limit limit=40/);
  await allowed.stop();
});
