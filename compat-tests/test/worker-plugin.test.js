// SPDX-License-Identifier: MIT
// bullc-worker --plugin (the example plugin, libbullc_example_plugin.so) and
// --builtin: jobs added by a Node BullMQ Queue, results read by Node.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { Job, closeAll, eventually, newQueue, newQueueEvents, uniquePrefix } = require('../lib/harness');
const { killAll, pluginPath, startReady, startWorker } = require('../lib/worker-proc');

async function finished(queue, id, ms = 10000) {
  await eventually(
    async () => ['completed', 'failed'].includes(await queue.getJobState(id)),
    ms,
    `job ${id} to finish`,
  );
  return Job.fromId(queue, id);
}

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

async function setup(tag, args) {
  const prefix = uniquePrefix(tag);
  const queue = newQueue('jobs', prefix);
  closers.push(queue);
  const w = await startReady(['--queue', 'jobs', '--drain-delay', '1', ...args], { prefix });
  return { prefix, queue, w };
}

describe('bullc-worker --plugin', () => {
  it('returns the plugin result; bullc_plugin_init gets the queue and --plugin-config', async () => {
    const { queue, w } = await setup('wpres', ['--plugin', pluginPath(), '--plugin-config', '{"multiplier":10}']);
    const job = await queue.add('math', { a: 1, b: 2 });
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed');
    assert.deepEqual(j.returnvalue, { sum: 30, queue: 'jobs', id: job.id, name: 'math', attemptsMade: 0 });
    assert.equal((await w.stop()).code, 0);
  });

  it('fails jobs with the plugin error, retried unless unrecoverable', async () => {
    const { queue, w } = await setup('wpfail', ['--plugin', pluginPath()]);
    const retried = await queue.add('f', { fail: 'boom' }, { attempts: 2 });
    const unrec = await queue.add('u', { fail: 'no way', unrecoverable: true }, { attempts: 3 });
    const r = await finished(queue, retried.id);
    assert.equal(r.failedReason, 'boom');
    assert.equal(r.attemptsMade, 2);
    const u = await finished(queue, unrec.id);
    assert.equal(u.failedReason, 'no way');
    assert.equal(u.attemptsMade, 1);
    await w.stop();
  });

  it('reports progress and logs from the thread pool', async () => {
    const { prefix, queue, w } = await setup('wpprog', ['--plugin', pluginPath()]);
    const qe = newQueueEvents('jobs', prefix, { lastEventId: '0-0' });
    closers.push(qe);
    const progress = [];
    qe.on('progress', ({ jobId, data }) => progress.push([jobId, data]));
    const job = await queue.add('p', { steps: 4 });
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed');
    assert.equal(j.progress, 100);
    assert.deepEqual((await queue.getJobLogs(job.id)).logs, ['step 1', 'step 2', 'step 3', 'step 4']);
    await eventually(() => progress.length === 4, 5000, '4 progress events');
    assert.deepEqual(progress, [25, 50, 75, 100].map(p => [job.id, p]));
    await w.stop();
  });

  it('--timeout fails a plugin job that runs too long; the slot takes the next job', async () => {
    const { queue, w } = await setup('wptime', ['--plugin', pluginPath(), '--timeout', '300']);
    const slow = await queue.add('slow', { sleepMs: 5000 });
    const next = await queue.add('next', { a: 2, b: 2 });
    const s = await finished(queue, slow.id);
    assert.equal(s.failedReason, 'job timed out after 300 ms');
    const n = await finished(queue, next.id, 3000);
    assert.equal(n.returnvalue.sum, 4);
    await w.stop();
  });

  it('a plugin that hangs past --timeout keeps its slot: later jobs wait for a thread and are timed from their start', async () => {
    const { queue, w } = await setup('wphang', ['--plugin', pluginPath(), '--concurrency', '4', '--timeout', '1000']);
    // every pool thread blocked for 3 s; the jobs behind them must not time out unrun
    const hung = await queue.addBulk(Array.from({ length: 4 }, (_, i) => ({ name: `h${i}`, data: { hangMs: 3000 } })));
    await eventually(async () => (await queue.getActiveCount()) === 4, 5000, 'the 4 hanging jobs to be active');
    const healthy = await queue.addBulk(
      Array.from({ length: 10 }, (_, i) => ({ name: `ok${i}`, data: { a: i, b: 1 }, opts: { attempts: 2 } })),
    );
    for (const j of hung) assert.equal((await finished(queue, j.id)).failedReason, 'job timed out after 1000 ms');
    assert.equal(await queue.getActiveCount(), 0, 'the stuck slots took no job');
    for (const [i, j] of healthy.entries()) {
      const done = await finished(queue, j.id, 15000);
      assert.equal(await done.getState(), 'completed', done.failedReason);
      assert.equal(done.attemptsMade, 1, `job ok${i}: one attempt, the one that completed`);
      assert.deepEqual(done.stacktrace, [], `job ok${i} never failed`);
      assert.equal(done.returnvalue.sum, i + 1);
    }
    await w.waitFor(/its slot stays busy until it does/);
    await w.waitFor(/returned \d+ ms after the job timed out/);
    await w.stop();
  });

  it('runs --concurrency plugin jobs at once (the thread pool grows to fit)', async () => {
    const { queue, w } = await setup('wppool', ['--plugin', pluginPath(), '--concurrency', '8']);
    const jobs = await queue.addBulk(Array.from({ length: 8 }, (_, i) => ({ name: `s${i}`, data: { sleepMs: 600 } })));
    const done = [];
    for (const j of jobs) done.push(await finished(queue, j.id));
    const start = Math.min(...done.map(j => j.processedOn));
    const end = Math.max(...done.map(j => j.finishedOn));
    // 4 threads (libuv's default) would need two rounds: about 1200 ms
    assert.ok(end - start < 1100, `8 jobs of 600 ms took ${end - start} ms`);
    await w.stop();
  });

  it('exits 2 for a plugin it cannot load and 1 when bullc_plugin_init fails', async () => {
    const prefix = uniquePrefix('wpbad');
    const missing = startWorker(['--queue', 'jobs', '--plugin', '/nonexistent/plugin.so'], { prefix });
    assert.equal((await missing.waitExit()).code, 2);
    assert.match(missing.text(), /cannot load plugin \/nonexistent\/plugin\.so/);
    const noSlash = startWorker(['--queue', 'jobs', '--plugin', 'libbullc_example_plugin.so'], { prefix });
    assert.equal((await noSlash.waitExit()).code, 2);
    assert.match(noSlash.text(), /give a path with a '\/'/);
    const init = startWorker(['--queue', 'jobs', '--plugin', pluginPath(), '--plugin-config', '{"failInit":true}'], {
      prefix,
    });
    assert.equal((await init.waitExit()).code, 1);
    assert.match(init.text(), /bullc_plugin_init failed for queue jobs \(returned 7\)/);
  });
});

describe('bullc-worker --builtin', () => {
  it('noop completes, echo returns the data, sleep waits data.sleepMs', async () => {
    const prefix = uniquePrefix('wbres');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const w = await startReady(
      ['--queue', 'jobs', '--builtin', 'noop', '--concurrency', '3'].concat(['--builtin', 'jobs=sleep']),
      { prefix },
    );
    const a = await queue.add('a', { sleepMs: 300, x: 1 });
    const bad = await queue.add('bad', { sleepMs: 'soon' }, { attempts: 3 });
    const j = await finished(queue, a.id);
    assert.deepEqual(j.returnvalue, { sleepMs: 300, x: 1 });
    assert.ok(j.finishedOn - j.processedOn >= 300, `slept ${j.finishedOn - j.processedOn} ms`);
    const b = await finished(queue, bad.id);
    assert.match(b.failedReason, /data\.sleepMs must be a number/);
    assert.equal(b.attemptsMade, 1);
    await w.stop();

    const w2 = await startReady(['--queue', 'jobs', '--builtin', 'echo'], { prefix });
    const e = await queue.add('e', { hello: ['world'] });
    assert.deepEqual((await finished(queue, e.id)).returnvalue, { hello: ['world'] });
    await w2.stop();

    const w3 = await startReady(['--queue', 'jobs', '--builtin', 'noop'], { prefix });
    const n = await queue.add('n', { ignored: true });
    const nj = await finished(queue, n.id);
    assert.equal(await nj.getState(), 'completed');
    assert.equal(nj.returnvalue, null);
    await w3.stop();
  });

  it('sleep does not block the loop: concurrent sleeps overlap', async () => {
    const { queue, w } = await setup('wbpar', ['--builtin', 'sleep', '--concurrency', '10']);
    const jobs = await queue.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, data: { sleepMs: 500 } })));
    const done = [];
    for (const j of jobs) done.push(await finished(queue, j.id));
    const span = Math.max(...done.map(j => j.finishedOn)) - Math.min(...done.map(j => j.processedOn));
    assert.ok(span < 1000, `10 sleeps of 500 ms took ${span} ms`);
    await w.stop();
  });

  it('--timeout fails a sleep that lasts too long', async () => {
    const { queue, w } = await setup('wbtime', ['--builtin', 'sleep', '--timeout', '200']);
    const job = await queue.add('slow', { sleepMs: 3000 });
    const j = await finished(queue, job.id);
    assert.equal(j.failedReason, 'job timed out after 200 ms');
    await w.stop();
  });
});
