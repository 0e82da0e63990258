// SPDX-License-Identifier: MIT
// bullc-worker takes jobs in the order and at the pace Node BullMQ defines:
// priorities, delays, the rate limiter and the global concurrency, shared
// with Node workers.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { Job, closeAll, eventually, newQueue, newQueueEvents, newWorker, redis, sleep, uniquePrefix } =
  require('../lib/harness');
const { killAll, startReady } = require('../lib/worker-proc');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

// The ids of the 'active' events of the queue's stream, in order.
async function activeOrder(prefix, n) {
  const qe = newQueueEvents('jobs', prefix, { lastEventId: '0-0' });
  closers.push(qe);
  const ids = [];
  qe.on('active', ({ jobId }) => ids.push(jobId));
  await eventually(() => ids.length >= n, 10000, `${n} active events`);
  return ids;
}

describe('bullc-worker scheduling', () => {
  it('takes prioritized jobs after standard ones, by priority', async () => {
    const prefix = uniquePrefix('wsprio');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const p3 = await queue.add('p3', {}, { priority: 3 });
    const p1 = await queue.add('p1', {}, { priority: 1 });
    const std = await queue.add('std', {});
    const p2 = await queue.add('p2', {}, { priority: 2 });
    const p1b = await queue.add('p1b', {}, { priority: 1 });
    const w = await startReady(['--queue', 'jobs', '--builtin', 'echo', '--concurrency', '1'], { prefix });
    assert.deepEqual(await activeOrder(prefix, 5), [std.id, p1.id, p1b.id, p2.id, p3.id]);
    await w.stop();
  });

  // node: "[when prioritized jobs are added] should process jobs by priority"
  it('processes 18 jobs of priorities 2, 3, 1 added in one addBulk by priority', async () => {
    const prefix = uniquePrefix('wsprio18');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const jobs = [];
    for (let i = 0; i < 6; i++) {
      jobs.push({ name: 'test', data: { p: 2 }, opts: { priority: 2 } });
      jobs.push({ name: 'test', data: { p: 3 }, opts: { priority: 3 } });
      jobs.push({ name: 'test', data: { p: 1 }, opts: { priority: 1 } });
    }
    // 6.7.0's addBulk is a pipeline, not a transaction: a worker already
    // waiting would take the first priority-2 job before the priority-1 ones
    // exist, as Node's worker would. Node's case adds first, then processes.
    const added = await queue.addBulk(jobs);
    const w = await startReady(['--queue', 'jobs', '--builtin', 'echo'], { prefix });
    const p = new Map(added.map(j => [j.id, j.data.p]));
    const order = (await activeOrder(prefix, 18)).map(id => p.get(id));
    assert.deepEqual(order, [...Array(6).fill(1), ...Array(6).fill(2), ...Array(6).fill(3)]);
    await w.stop();
  });

  it('takes delayed jobs when they are due, in due order', async () => {
    const prefix = uniquePrefix('wsdelay');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'jobs', '--builtin', 'echo', '--concurrency', '1'], { prefix });
    const d600 = await queue.add('d600', {}, { delay: 600 });
    const d300 = await queue.add('d300', {}, { delay: 300 });
    const now = await queue.add('now', {});
    assert.deepEqual(await activeOrder(prefix, 3), [now.id, d300.id, d600.id]);
    for (const [job, delay] of [[d300, 300], [d600, 600]]) {
      const j = await Job.fromId(queue, job.id);
      const late = j.processedOn - (j.timestamp + delay);
      assert.ok(late >= 0, `job ${job.id} ran ${-late} ms early`);
      assert.ok(late < 500, `job ${job.id} ran ${late} ms late`);
    }
    await w.stop();
  });

  it('shares the rate limiter with a Node worker: 20 jobs at 5 per second take 3 s', async () => {
    const prefix = uniquePrefix('wsrate');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    // Jobs last 1200 ms, longer than the 1000 ms window, at concurrency 5: the
    // worker that filled one window is still busy when the next opens, so the
    // windows alternate between bullc-worker and the Node worker.
    const w = await startReady(
      ['--queue', 'jobs', '--builtin', 'sleep', '--concurrency', '5', '--limiter-max', '5', '--limiter-duration',
        '1000', '--name', 'bullc'],
      { prefix },
    );
    const node = newWorker('jobs', prefix, async () => sleep(1200), {
      concurrency: 5,
      limiter: { max: 5, duration: 1000 },
      name: 'node',
    });
    closers.unshift(node);
    await node.waitUntilReady();
    const start = Date.now();
    const jobs = await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'r', data: { i, sleepMs: 1200 } })));
    await eventually(async () => (await queue.getJobCountByTypes('completed')) === 20, 15000, '20 completed jobs');
    const done = await Promise.all(jobs.map(j => Job.fromId(queue, j.id)));
    const starts = done.map(j => j.processedOn).sort((a, b) => a - b);
    assert.ok(starts[19] - start >= 3000, `20 jobs at 5/s all started within ${starts[19] - start} ms`);
    // never more than 5 starts in one window: start i+5 is a window after start i
    for (let i = 0; i + 5 < 20; i += 5) {
      assert.ok(starts[i + 5] - starts[i] >= 950, `starts: ${starts.map(t => t - start).join(' ')}`);
    }
    const by = {};
    for (const j of done) by[j.processedBy] = (by[j.processedBy] || 0) + 1;
    assert.ok(by.bullc > 0 && by.node > 0, `both workers took jobs: ${JSON.stringify(by)}`);
    await w.stop();
  });

  it('holds the global concurrency set from Node across two bullc-workers and a Node worker', async () => {
    const prefix = uniquePrefix('wsglobal');
    const queue = newQueue('jobs', prefix);
    const client = redis();
    closers.push(queue, client);
    await queue.setGlobalConcurrency(1);
    const args = ['--queue', 'jobs', '--builtin', 'sleep', '--concurrency', '5', '--drain-delay', '1'];
    const [c1, c2] = await Promise.all([
      startReady([...args, '--name', 'c1'], { prefix }),
      startReady([...args, '--name', 'c2'], { prefix }),
    ]);
    const jobs = await queue.addBulk(Array.from({ length: 15 }, (_, i) => ({ name: 'g', data: { i, sleepMs: 80 } })));
    // A worker that finishes a job takes the next one in the same script, so
    // the first taker keeps the slot: let a bullc-worker take it, then the
    // Node worker (concurrency 5) and the other bullc-worker keep asking.
    await Promise.race([c1.waitFor(/active queue=jobs/), c2.waitFor(/active queue=jobs/)]);
    const node = newWorker('jobs', prefix, async () => sleep(80), { concurrency: 5, name: 'node' });
    closers.unshift(node);
    let max = 0;
    let samples = 0;
    for (;;) {
      const [active, completed] = await Promise.all([
        client.llen(`${prefix}:jobs:active`),
        queue.getJobCountByTypes('completed'),
      ]);
      max = Math.max(max, active);
      samples++;
      if (completed === 15) break;
      assert.ok(samples < 5000, 'the jobs did not complete');
      await sleep(5);
    }
    assert.equal(max, 1, `at most one job active at once (${samples} samples)`);
    const done = await Promise.all(jobs.map(j => Job.fromId(queue, j.id)));
    const spans = done.map(j => [j.processedOn, j.finishedOn]).sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) {
      // clocks of different processes: a few ms of slack
      assert.ok(spans[i][0] >= spans[i - 1][1] - 5, `job spans overlap: ${JSON.stringify(spans)}`);
    }
    const by = new Set(done.map(j => j.processedBy));
    assert.ok(by.has('c1') || by.has('c2'), `a bullc-worker took part: ${[...by]}`);
    await Promise.all([c1.stop(), c2.stop()]);
  });
});
