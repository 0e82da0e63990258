// SPDX-License-Identifier: MIT
// bullc-worker and Node BullMQ workers on one queue: every job processed
// exactly once, and stalled jobs recovered in both directions.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  Job, bullmqMajor, bullmqPackage, closeAll, eventually, newQueue, newQueueEvents, newWorker, sleep, uniquePrefix,
} = require('../lib/harness');
const { killAll, script, startNode, startReady, tmpDir } = require('../lib/worker-proc');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

describe('bullc-worker with Node workers', () => {
  it('a Node Worker and two bullc-workers process 300 jobs, each exactly once', async () => {
    const prefix = uniquePrefix('wimix');
    const queue = newQueue('jobs', prefix);
    const qe = newQueueEvents('jobs', prefix, { lastEventId: '0-0' });
    closers.push(queue, qe);
    const completed = new Map();
    qe.on('completed', ({ jobId }) => completed.set(jobId, (completed.get(jobId) || 0) + 1));
    const args = ['--queue', 'jobs', '--builtin', 'echo', '--concurrency', '5', '--drain-delay', '1'];
    const [c1, c2] = await Promise.all([
      startReady([...args, '--name', 'c1'], { prefix }),
      startReady([...args, '--name', 'c2'], { prefix }),
    ]);
    const node = newWorker('jobs', prefix, async () => ({ by: 'node' }), { concurrency: 5, name: 'node' });
    closers.unshift(node);
    await node.waitUntilReady();

    // in 10 batches: each one wakes a worker blocked on the queue's marker
    const ids = [];
    for (let b = 0; b < 10; b++) {
      const jobs = await queue.addBulk(Array.from({ length: 30 }, (_, i) => ({ name: 'n', data: { i: b * 30 + i } })));
      ids.push(...jobs.map(j => j.id));
      await sleep(30);
    }
    await eventually(() => completed.size === 300, 30000, '300 completed events');
    const counts = await queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
    assert.deepEqual(counts, { completed: 300, failed: 0, active: 0, wait: 0, delayed: 0 });
    for (const id of ids) assert.equal(completed.get(id), 1, `job ${id} completed ${completed.get(id)} times`);

    // who did what: processedBy is the worker name
    const by = {};
    for (const id of ids) {
      const j = await Job.fromId(queue, id);
      by[j.processedBy] = (by[j.processedBy] || 0) + 1;
      if (j.processedBy === 'node') assert.deepEqual(j.returnvalue, { by: 'node' });
      else assert.deepEqual(j.returnvalue, j.data);
    }
    assert.equal((by.c1 || 0) + (by.c2 || 0) + (by.node || 0), 300, JSON.stringify(by));
    assert.ok((by.c1 || 0) + (by.c2 || 0) > 0, `bullc-workers took jobs: ${JSON.stringify(by)}`);
    assert.ok(Object.keys(by).length >= 2, `several workers took jobs: ${JSON.stringify(by)}`);
    if (process.env.BULLC_TEST_VERBOSE) console.log(JSON.stringify(by));
    const [e1, e2] = await Promise.all([c1.stop(), c2.stop()]);
    assert.equal(e1.code, 0);
    assert.equal(e2.code, 0);
  });

  it('a Node worker recovers the job of a bullc-worker killed with SIGKILL', async () => {
    const prefix = uniquePrefix('wistall1');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    // a short stalled interval on both sides: a stalled check holds the
    // queue's stalled-check key for the interval of the worker that ran it
    const c = await startReady(
      ['--queue', 'jobs', '--builtin', 'sleep', '--lock-duration', '1000', '--stalled-interval', '1000'],
      { prefix },
    );
    const job = await queue.add('long', { sleepMs: 60000 });
    await c.waitFor(new RegExp(`active queue=jobs id=${job.id} `));
    c.kill('SIGKILL');
    await c.waitExit();
    assert.equal(await queue.getJobState(job.id), 'active');

    const stalled = [];
    const node = newWorker('jobs', prefix, async j => ({ recoveredBy: 'node', data: j.data }), {
      stalledInterval: 1000,
    });
    closers.unshift(node);
    node.on('stalled', id => stalled.push(id));
    await eventually(async () => (await queue.getJobState(job.id)) === 'completed', 10000, 'the job to complete');
    const j = await Job.fromId(queue, job.id);
    assert.deepEqual(j.returnvalue, { recoveredBy: 'node', data: { sleepMs: 60000 } });
    assert.deepEqual(stalled, [job.id]);
    assert.equal(j.stalledCounter, 1);
  });

  it('bullc-worker recovers the job of a Node worker killed with SIGKILL', async () => {
    const prefix = uniquePrefix('wistall2');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const job = await queue.add('long', { n: 1 });
    // A Node worker in its own process that takes the job and never finishes
    // it. Its stalledInterval is short too: each stalled check holds the
    // queue's stalled-check key for the checker's interval, so with Node's
    // default (30 s) no worker could check again for 30 s.
    const child = startNode(
      `const { Worker } = require('${bullmqPackage()}');
       const { connection } = require('./lib/harness');
       const w = new Worker('jobs', async job => {
         console.log('active ' + job.id);
         await new Promise(() => {});
       }, { connection: connection(), prefix: process.argv[1], lockDuration: 1000, stalledInterval: 1000 });`,
      [prefix],
    );
    await child.waitFor(new RegExp(`^active ${job.id}$`));
    child.kill('SIGKILL');
    await child.waitExit();
    assert.equal(await queue.getJobState(job.id), 'active');

    const c = await startReady(['--queue', 'jobs', '--builtin', 'echo', '--stalled-interval', '1000'], { prefix });
    await eventually(async () => (await queue.getJobState(job.id)) === 'completed', 10000, 'the job to complete');
    const j = await Job.fromId(queue, job.id);
    assert.deepEqual(j.returnvalue, { n: 1 });
    assert.equal(j.stalledCounter, 1);
    await c.waitFor(new RegExp(`stalled queue=jobs id=${job.id} `));
    assert.equal((await c.stop()).code, 0);
  });

  it("maxStartedAttempts: a job failing at each start ends as the peer major's Node worker ends it", async () => {
    // 6.x retries no job started maxStartedAttempts times (Job.moveToFailed);
    // 5.x retries it, and its next start fails it as started too often
    const boom = script(tmpDir('wimsa'), 'boom.sh', 'cat >/dev/null; echo boom >&2; exit 1');
    const ends = [];
    for (const side of ['node', 'bullc']) {
      const prefix = uniquePrefix('wimsa');
      const queue = newQueue('jobs', prefix);
      closers.push(queue);
      const job = await queue.add('x', {}, { attempts: 4 });
      let stop;
      if (side === 'node') {
        const w = newWorker('jobs', prefix, async () => {
          throw new Error('boom');
        }, { maxStartedAttempts: 1 });
        stop = () => w.close();
      } else {
        const c = await startReady(['--queue', 'jobs', '--exec', boom, '--max-started-attempts', '1'], { prefix });
        stop = async () => assert.equal((await c.stop()).code, 0);
      }
      await eventually(async () => (await queue.getJobState(job.id)) === 'failed', 10000, `${side}: the job failed`);
      await stop();
      const j = await Job.fromId(queue, job.id);
      ends.push({ attemptsMade: j.attemptsMade, attemptsStarted: j.attemptsStarted, failedReason: j.failedReason });
    }
    assert.deepEqual(ends[1], ends[0], 'bullc-worker ends the job as Node does');
    assert.deepEqual(ends[0], bullmqMajor() === 5
      ? { attemptsMade: 2, attemptsStarted: 2, failedReason: 'job started more than allowable limit' }
      : { attemptsMade: 1, attemptsStarted: 1, failedReason: 'boom' });
  });
});
