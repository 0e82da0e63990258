// SPDX-License-Identifier: MIT
// Lock handling: a processor that keeps a thread busy longer than the lock
// keeps its lock (renewal runs on the loop), and a frozen worker (SIGSTOP past
// lockDuration) that lost its job to another worker never completes it.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const { uniquePrefix, newQueue, newQueueEvents, redis, closeAll, sleep, eventually } = require('../lib/harness');
const { startReady, killAll, pluginPath } = require('../lib/worker-proc');

after(killAll);

async function completedEvents(client, prefix, q) {
  const entries = await client.xrange(`${prefix}:${q}:events`, '-', '+');
  const n = new Map();
  let stalled = 0;
  for (const [, f] of entries) {
    const o = {};
    for (let i = 0; i < f.length; i += 2) o[f[i]] = f[i + 1];
    if (o.event === 'completed') n.set(o.jobId, (n.get(o.jobId) || 0) + 1);
    if (o.event === 'stalled') stalled++;
  }
  return { n, stalled };
}

test('a processor busy longer than lockDuration keeps its lock (no stall, one completion)', async () => {
  const prefix = uniquePrefix('lock');
  const q = newQueue('q', prefix);
  const client = redis();
  try {
    const a = await startReady(['--queue', 'q', '--plugin', pluginPath(), '--lock-duration', '1000',
      '--stalled-interval', '500'], { prefix });
    const job = await q.add('busy', { a: 1, b: 2, sleepMs: 3000 });
    // the plugin worker takes it alone (two waiting workers race for a job); the echo worker then
    // stands by to take it over, should the lock lapse
    await eventually(async () => (await q.getJobState(job.id)) === 'active', 5000, 'the plugin worker took it');
    const b = await startReady(['--queue', 'q', '--builtin', 'echo', '--stalled-interval', '300'], { prefix });
    await eventually(async () => (await q.getJobState(job.id)) === 'completed', 15000, 'completion');
    const { n, stalled } = await completedEvents(client, prefix, 'q');
    assert.strictEqual(n.get(job.id), 1);
    assert.strictEqual(stalled, 0, 'the lock was renewed while the thread was busy');
    const j = await q.getJob(job.id);
    assert.strictEqual(j.returnvalue.sum, 3, 'the plugin (not the echo worker) completed it');
    await Promise.all([a.stop(), b.stop()]);
  } finally {
    await closeAll(q, client);
  }
});

test('a frozen worker that lost its lock never completes the job', async () => {
  const prefix = uniquePrefix('lock');
  const q = newQueue('q', prefix);
  const client = redis();
  try {
    const a = await startReady(['--queue', 'q', '--builtin', 'sleep', '--lock-duration', '1000',
      '--skip-stalled-check', '--name', 'frozen'], { prefix });
    const job = await q.add('slow', { sleepMs: 1500, by: 'x' });
    await a.waitFor(/active/, 5000);
    a.kill('SIGSTOP'); // frozen past its lock: 1000 ms
    const b = await startReady(['--queue', 'q', '--builtin', 'echo', '--stalled-interval', '300',
      '--name', 'rescuer'], { prefix });
    await eventually(async () => (await q.getJobState(job.id)) === 'completed', 10000, 'the rescue');
    a.kill('SIGCONT');
    await sleep(2500); // A's sleep ends and its lock renewal runs
    const { n } = await completedEvents(client, prefix, 'q');
    assert.strictEqual(n.get(job.id), 1, 'completed exactly once');
    const j = await q.getJob(job.id);
    assert.strictEqual(j.processedBy, 'rescuer');
    assert.deepStrictEqual(j.returnvalue, { sleepMs: 1500, by: 'x' });
    assert.match(a.text(), /lock/i, 'the frozen worker reported the lost lock');
    await Promise.all([a.stop(), b.stop()]);
  } finally {
    await closeAll(q, client);
  }
});
