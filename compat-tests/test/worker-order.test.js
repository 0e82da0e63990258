// SPDX-License-Identifier: MIT
// A Node BullMQ Worker processes jobs that bullc added: the options bullc
// stored must drive Node's worker (and BullMQ's Lua) exactly as Node's own
// options do: priority and LIFO order, delays, retention, attempts and
// backoff. Most cases reproduce Node's own tests with bullc as the producer.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const Q = 'order';

// A queue (Node, for pause/resume/getters), a worker and optional QueueEvents
// on a fresh prefix; `run` gets them and everything is closed afterwards.
async function withQueue(run) {
  const prefix = h.uniquePrefix('cmpw');
  const queue = h.newQueue(Q, prefix);
  const ctx = { prefix, queue, closers: [] };
  ctx.worker = (processor, opts) => {
    const w = h.newWorker(Q, prefix, processor, opts);
    ctx.closers.unshift(w);
    return w;
  };
  ctx.events = async () => {
    const e = h.newQueueEvents(Q, prefix);
    ctx.closers.unshift(e);
    await e.waitUntilReady();
    return e;
  };
  ctx.add = (name, data, opts) => h.bullcAdd(prefix, Q, name, data, opts);
  ctx.addBulk = jobs => h.bullcAddBulk(prefix, Q, jobs);
  try {
    await queue.waitUntilReady();
    return await run(ctx);
  } finally {
    await h.closeAll(ctx.closers, queue);
  }
}

// Adds `jobs` with bullc while the queue is paused, then runs a worker with
// concurrency 1 and returns the names in processing order.
async function processingOrder(jobs, { timeout = 20000 } = {}) {
  return withQueue(async ({ queue, worker, add }) => {
    await queue.pause();
    for (const j of jobs) add(j.name, j.data || {}, j.opts);
    const order = [];
    const w = worker(async job => {
      order.push(job.name);
    });
    const done = h.collect(w, 'completed', jobs.length);
    await w.waitUntilReady();
    await queue.resume();
    await h.withTimeout(done, timeout, `${jobs.length} jobs to complete`);
    return order;
  });
}

// ---- basic processing of bullc's jobs ------------------------------------------------

// node: "processes jobs that were added before the worker started"
test('processes jobs that were added before the worker started', async () => {
  await withQueue(async ({ worker, add }) => {
    const datas = [{ bar: 'baz' }, { bar1: 'baz1' }, { bar2: 'baz2' }, { bar3: 'baz3' }];
    const ids = datas.map(d => add('test', d));
    const w = worker(async () => {});
    const done = await h.withTimeout(h.collect(w, 'completed', datas.length), 10000, 'the jobs');
    assert.deepEqual(
      done.map(([job]) => job.id),
      ids,
    );
    assert.deepEqual(
      done.map(([job]) => job.data),
      datas,
    );
  });
});

// node: "process several jobs serially"
test('process several jobs serially', async () => {
  await withQueue(async ({ worker, add }) => {
    const maxJobs = 35;
    let counter = 1;
    const problems = [];
    const w = worker(async job => {
      if (job.data.num !== counter) problems.push(`job ${job.data.num} processed as #${counter}`);
      if (job.data.foo !== 'bar') problems.push(`job ${job.data.num}: foo ${job.data.foo}`);
      counter++;
    });
    await w.waitUntilReady();
    const done = h.collect(w, 'completed', maxJobs);
    for (let i = 1; i <= maxJobs; i++) add('test', { foo: 'bar', num: i });
    await h.withTimeout(done, 20000, 'all jobs');
    assert.deepEqual(problems, []);
    assert.equal(w.isRunning(), true);
  });
});

// node: "should process jobs"
test('should process jobs', async () => {
  await withQueue(async ({ worker, addBulk }) => {
    const seen = [];
    const w = worker(async job => {
      seen.push(job.data);
    });
    await w.waitUntilReady();
    const done = h.collect(w, 'completed', 2);
    const ids = addBulk([
      { name: 'test', data: { idx: 0, foo: 'bar' } },
      { name: 'test', data: { idx: 1, foo: 'baz' } },
    ]);
    assert.equal(ids.length, 2);
    assert.ok(ids.every(Boolean));
    await h.withTimeout(done, 10000, 'the bulk jobs');
    assert.deepEqual(seen, [
      { idx: 0, foo: 'bar' },
      { idx: 1, foo: 'baz' },
    ]);
  });
});

// node: "should process jobs with custom ids"
test('should process jobs with custom ids', async () => {
  await withQueue(async ({ worker, addBulk }) => {
    const seen = [];
    const w = worker(async job => {
      seen.push([job.id, job.data]);
    });
    await w.waitUntilReady();
    const done = h.collect(w, 'completed', 2);
    const ids = addBulk([
      { name: 'test', data: { idx: 0, foo: 'bar' }, opts: { jobId: 'test1' } },
      { name: 'test', data: { idx: 1, foo: 'baz' }, opts: { jobId: 'test2' } },
    ]);
    assert.deepEqual(ids, ['test1', 'test2']);
    await h.withTimeout(done, 10000, 'the bulk jobs');
    assert.deepEqual(seen, [
      ['test1', { idx: 0, foo: 'bar' }],
      ['test2', { idx: 1, foo: 'baz' }],
    ]);
  });
});

// node: "[JSON.stringify] should correctly handle zero passed as data"
test('[JSON.stringify] should correctly handle zero passed as data', async () => {
  await withQueue(async ({ queue, worker, add }) => {
    const id = add('test', '0');
    const job = await queue.getJob(id);
    assert.equal(JSON.parse(JSON.stringify(job)).data, 0);
    const w = worker(async j => {
      assert.equal(j.data, 0);
    });
    const [[done]] = await h.withTimeout(h.collect(w, 'completed', 1), 10000, 'the job');
    assert.equal(done.data, 0);
  });
});

// ---- priority and LIFO ----------------------------------------------------------

// node: "[when prioritized jobs are added] should process jobs by priority"
test('[when prioritized jobs are added] should process jobs by priority', async () => {
  await withQueue(async ({ worker, addBulk }) => {
    const numJobsPerPriority = 6;
    const jobs = [];
    for (let i = 0; i < numJobsPerPriority; i++) {
      jobs.push({ name: 'test', data: { p: 2 }, opts: { priority: 2 } });
      jobs.push({ name: 'test', data: { p: 3 }, opts: { priority: 3 } });
      jobs.push({ name: 'test', data: { p: 1 }, opts: { priority: 1 } });
    }
    const seen = [];
    const w = worker(async job => {
      assert.ok(job.id);
      seen.push(job.data.p);
    });
    const done = h.collect(w, 'completed', jobs.length);
    await w.waitUntilReady();
    // all jobs enter the queue at once (bullc add-bulk is one transaction)
    assert.equal(addBulk(jobs).length, jobs.length);
    await h.withTimeout(done, 20000, 'all jobs to complete');
    assert.deepEqual(seen, [...Array(6).fill(1), ...Array(6).fill(2), ...Array(6).fill(3)]);
  });
});

// node: "[when jobs are added with the maximum allowed priority value] should process jobs with the same priority in FIFO order"
test('[when jobs are added with the maximum allowed priority value] should process jobs with the same priority in FIFO order', async () => {
  await withQueue(async ({ worker, addBulk }) => {
    const numJobs = 5;
    addBulk(Array.from(Array(numJobs).keys()).map(order => ({ name: 'test', data: { order }, opts: { priority: 2097151 } })));
    const processed = [];
    const w = worker(async job => {
      processed.push(job.data.order);
    });
    await h.withTimeout(h.collect(w, 'completed', numJobs), 20000, 'all jobs to complete');
    assert.deepEqual(processed, [0, 1, 2, 3, 4]);
  });
});

// node: "[when jobs are added with the maximum allowed priority value] should reject jobs above the maximum allowed priority value"
test('[when jobs are added with the maximum allowed priority value] should reject jobs above the maximum allowed priority value', () => {
  const prefix = h.uniquePrefix('cmpw');
  const one = h.bullc(['add', Q, 'test', '{"order":0}', '--opts', '{"priority":2097152}'], { prefix });
  assert.equal(one.status, 2, one.stderr);
  assert.match(one.stderr, /Priority should be between 0 and 2097151/);
  const bulk = h.bullc(['add-bulk', Q], {
    prefix,
    input: '{"name":"test","data":{"order":0},"opts":{"priority":2097152}}\n',
  });
  assert.equal(bulk.status, 2, bulk.stderr);
  assert.match(bulk.stderr, /Priority should be between 0 and 2097151/);
});

test('plain jobs go before prioritized ones; LIFO first among plain; FIFO within a priority; LIFO ignored when prioritized', async () => {
  const order = await processingOrder([
    { name: 'w1' },
    { name: 'p2a', opts: { priority: 2 } },
    { name: 'w2' },
    { name: 'p1a', opts: { priority: 1 } },
    { name: 'L1', opts: { lifo: true } },
    { name: 'p2b', opts: { priority: 2 } },
    { name: 'w3', opts: { priority: 0, lifo: false } },
    { name: 'p1b', opts: { priority: 1 } },
    { name: 'L2', opts: { lifo: true } },
    { name: 'p1L', opts: { priority: 1, lifo: true } },
  ]);
  assert.deepEqual(order, ['L2', 'L1', 'w1', 'w2', 'w3', 'p1a', 'p1b', 'p1L', 'p2a', 'p2b']);
});

// node: "process a lifo queue"
test('process a lifo queue', async () => {
  await withQueue(async ({ queue, worker, add }) => {
    let currentValue = 0;
    const seen = [];
    const w = worker(async job => {
      seen.push(job.data.count);
    });
    await w.waitUntilReady();
    await queue.pause();
    const jobs = [{ count: ++currentValue }, { count: ++currentValue }, { count: ++currentValue }, { count: ++currentValue }];
    for (const data of jobs) add('test', data, { lifo: true });
    const done = h.collect(w, 'completed', jobs.length);
    await queue.resume();
    await h.withTimeout(done, 20000, 'the lifo jobs');
    assert.deepEqual(seen, [4, 3, 2, 1]);
  });
});

// ---- delays ----------------------------------------------------------------------

// node: "should process a delayed job only after delayed time"
test('should process a delayed job only after delayed time', async () => {
  await withQueue(async ({ queue, worker, events, add }) => {
    const delay = 1000;
    const margin = 1.2;
    const queueEvents = await events();
    const w = worker(async () => {});
    await w.waitUntilReady();
    const timestamp = Date.now();
    let publishHappened = false;
    const delayed = new Promise(resolve => {
      queueEvents.on('delayed', () => {
        publishHappened = true;
        resolve();
      });
    });
    const completed = h.collect(w, 'completed', 1);

    const id = add('test', { delayed: 'foobar' }, { delay });
    const job = await queue.getJob(id);
    assert.equal(job.data.delayed, 'foobar');
    assert.equal(job.opts.delay, delay);
    assert.equal(job.delay, delay);

    await h.withTimeout(delayed, 10000, "the 'delayed' event");
    const [[done]] = await h.withTimeout(completed, 10000, 'the delayed job');
    assert.ok(Date.now() > timestamp + delay);
    assert.ok(done.processedOn - done.timestamp >= delay, `processed ${done.processedOn - done.timestamp} ms after`);
    assert.ok(done.processedOn - done.timestamp < delay * margin, `processedOn is not within margin: ${done.processedOn - done.timestamp}`);
    assert.equal((await queue.getWaiting()).length, 0);
    assert.equal((await queue.getDelayed()).length, 0);
    assert.equal(publishHappened, true);
  });
});

// node: "should process delayed jobs in correct order respecting delay"
test('should process delayed jobs in correct order respecting delay', async () => {
  await withQueue(async ({ worker, addBulk }) => {
    const numJobs = 12;
    const margin = 1.2;
    let order = 0;
    const problems = [];
    const w = worker(
      async job => {
        order++;
        if (order !== job.data.order) problems.push(`job ${job.data.order} processed as #${order}`);
        const after = job.processedOn - job.timestamp;
        if (after < job.opts.delay) problems.push(`job ${job.data.order} ran ${after} ms after add, delay ${job.opts.delay}`);
        if (after >= job.opts.delay * margin) problems.push(`job ${job.data.order}: processedOn is not within margin (${after} ms)`);
      },
      { autorun: false },
    );
    const jobs = Array.from(Array(numJobs).keys()).map(index => ({
      name: 'test',
      data: { order: numJobs - index },
      opts: { delay: 500 + (numJobs - index) * 150 },
    }));
    addBulk(jobs);
    const done = h.collect(w, 'completed', numJobs);
    w.run();
    await h.withTimeout(done, 20000, 'the delayed jobs');
    assert.deepEqual(problems, []);
  });
});

test('delayed jobs run in delay order, after a plain job added after them', async () => {
  const order = await processingOrder([
    { name: 'later', opts: { delay: 700 } },
    { name: 'soon', opts: { delay: 200 } },
    { name: 'now' },
  ]);
  assert.deepEqual(order, ['now', 'soon', 'later']);
});

// ---- retention ----------------------------------------------------------------------

// node: "should remove job after completed if removeOnComplete"
test('should remove job after completed if removeOnComplete', async () => {
  await withQueue(async ({ queue, worker, add, prefix }) => {
    const w = worker(async (job, token) => {
      assert.equal(typeof token, 'string');
      assert.equal(job.data.foo, 'bar');
    });
    await w.waitUntilReady();
    const completed = h.collect(w, 'completed', 1);
    const id = add('test', { foo: 'bar' }, { removeOnComplete: true });
    assert.ok(id);
    const [[job]] = await h.withTimeout(completed, 10000, 'the job');
    assert.equal(typeof job.finishedOn, 'number');
    assert.equal(await queue.getJob(job.id), undefined);
    assert.equal((await queue.getJobCounts('completed')).completed, 0);
    const client = h.redis();
    try {
      assert.equal(await client.exists(`${prefix}:${Q}:${id}`), 0, 'the job hash is gone');
    } finally {
      await h.closeAll(client);
    }
  });
});

// Node's testRemoveOnFinish: 15 jobs (data 0..14) that log a line, then
// only the newest `expectedCount` (and their logs) remain.
async function testRemoveOnFinish(keep, expectedCount, fail) {
  await withQueue(async ({ queue, worker, addBulk, prefix }) => {
    const w = worker(async job => {
      await job.log('test log');
      if (fail) throw new Error('job failed');
    });
    await w.waitUntilReady();
    const datas = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
    const finished = h.collect(w, fail ? 'failed' : 'completed', datas.length);
    const jobOpts = fail ? { removeOnFail: keep } : { removeOnComplete: keep };
    const jobIds = addBulk(datas.map(data => ({ name: 'test', data, opts: jobOpts })));
    await h.withTimeout(finished, 20000, 'all jobs to finish');
    const state = fail ? 'failed' : 'completed';
    assert.equal((await queue.getJobCounts(state))[state], expectedCount, `${state} count`);
    for (const [index, jobId] of jobIds.entries()) {
      const job = await queue.getJob(jobId);
      const logs = await queue.getJobLogs(jobId);
      if (index >= datas.length - expectedCount) {
        assert.notEqual(job, undefined, `job ${jobId} kept`);
        assert.notEqual(logs.logs.length, 0, `logs of ${jobId} kept`);
      } else {
        assert.equal(job, undefined, `job ${jobId} removed`);
        assert.equal(logs.logs.length, 0, `logs of ${jobId} removed`);
        const h2 = h.redis();
        try {
          assert.equal(await h2.exists(`${prefix}:${Q}:${jobId}`), 0, `hash of ${jobId} removed`);
        } finally {
          await h.closeAll(h2);
        }
      }
    }
  });
}

// node: "should keep specified number of jobs after completed with removeOnComplete"
test('should keep specified number of jobs after completed with removeOnComplete', () => testRemoveOnFinish(3, 3));

test('removeOnComplete: 2 keeps only the newest 2 completed', () => testRemoveOnFinish(2, 2));

test('removeOnComplete: {age, count} keeps the newest count when all are younger than age', () =>
  testRemoveOnFinish({ age: 3600, count: 2 }, 2));

test('removeOnComplete: false keeps every completed job', () => testRemoveOnFinish(false, 15));

// node: "should remove job after failed if removeOnFail"
test('should remove job after failed if removeOnFail', () => testRemoveOnFinish(true, 0, true));

// node: "should keep specified number of jobs after completed with removeOnFail"
test('should keep specified number of jobs after completed with removeOnFail', () => testRemoveOnFinish(3, 3, true));

test('removeOnFail: false keeps every failed job', () => testRemoveOnFinish(false, 15, true));

test('removeOnFail: {count} keeps the newest count', () => testRemoveOnFinish({ count: 4 }, 4, true));

// ---- attempts and backoff ------------------------------------------------------------

// node: "should automatically retry a failed job if attempts is bigger than 1"
test('should automatically retry a failed job if attempts is bigger than 1', async () => {
  await withQueue(async ({ worker, add }) => {
    let tries = 0;
    const problems = [];
    const w = worker(
      async job => {
        await h.sleep(10);
        if (job.attemptsMade !== tries) problems.push(`attemptsMade ${job.attemptsMade} on try ${tries}`);
        tries++;
        if (job.attemptsMade < 1) throw new Error('Not yet!');
      },
      { autorun: false },
    );
    await w.waitUntilReady();
    add('test', { foo: 'bar' }, { attempts: 3 });
    const completed = h.collect(w, 'completed', 1);
    w.run();
    await h.withTimeout(completed, 10000, 'the retried job to complete');
    assert.deepEqual(problems, []);
    assert.equal(tries, 2);
  });
});

// node: "should not retry a failed job more than the number of given attempts times"
test('should not retry a failed job more than the number of given attempts times', async () => {
  await withQueue(async ({ queue, worker, events, add }) => {
    const queueEvents = await events();
    let tries = 0;
    const w = worker(async job => {
      tries++;
      if (job.attemptsMade < 3) throw new Error('Not yet!');
      assert.equal(job.attemptsMade, tries);
    });
    await w.waitUntilReady();
    let completedEvents = 0;
    w.on('completed', () => completedEvents++);
    const failures = h.collect(w, 'failed', 3);
    const exhausted = new Promise(resolve => queueEvents.on('retries-exhausted', resolve));
    const waitingPrev = [];
    queueEvents.on('waiting', ({ prev }) => prev && waitingPrev.push(prev));

    const id = add('test', { foo: 'bar' }, { attempts: 3 });
    const { jobId, attemptsMade } = await h.withTimeout(exhausted, 15000, "'retries-exhausted'");
    assert.equal(jobId, id);
    assert.equal(Number(attemptsMade), 3);
    const failed = await h.withTimeout(failures, 5000, "three 'failed' events");
    assert.deepEqual(
      failed.map(([job]) => job.attemptsMade),
      [1, 2, 3],
    );
    assert.ok(failed.every(([, err]) => err.message === 'Not yet!'));
    const job = await queue.getJob(id);
    assert.equal(await job.getState(), 'failed');
    assert.equal(job.attemptsMade, 3);
    assert.equal(job.failedReason, 'Not yet!');
    assert.equal(tries, 3);
    assert.equal(completedEvents, 0, 'Failed job was retried more than it should be!');
    assert.ok(waitingPrev.every(p => p === 'active'), `waiting events with prev ${waitingPrev}`);
  });
});

// node: "[when attempts is 1 and job fails] should execute job only once and emits retries-exhausted event"
test('[when attempts is 1 and job fails] should execute job only once and emits retries-exhausted event', async () => {
  await withQueue(async ({ queue, worker, events, add }) => {
    const queueEvents = await events();
    let runs = 0;
    const w = worker(async () => {
      runs++;
      throw new Error('failed');
    });
    await w.waitUntilReady();
    const exhausted = new Promise(resolve => queueEvents.on('retries-exhausted', resolve));
    const id = add('test', { foo: 'bar' }, { attempts: 1 });
    const { jobId, attemptsMade } = await h.withTimeout(exhausted, 10000, "'retries-exhausted'");
    assert.equal(jobId, id);
    assert.equal(Number(attemptsMade), 1);
    assert.equal(await (await queue.getJob(id)).getState(), 'failed');
    assert.equal(runs, 1);
  });
});

// Runs a job that fails until attemptsMade reaches 2 and returns the times
// (ms) at which its attempts started, from when it was added.
async function retriedRuns(opts) {
  return withQueue(async ({ worker, add }) => {
    const starts = [];
    const w = worker(async job => {
      starts.push(Date.now());
      if (job.attemptsMade < 2) throw new Error('Not yet!');
    });
    await w.waitUntilReady();
    const start = Date.now();
    const completed = h.collect(w, 'completed', 1);
    add('test', { foo: 'bar' }, opts);
    await h.withTimeout(completed, 20000, 'the retried job to complete');
    return { elapse: Date.now() - start, gaps: starts.slice(1).map((t, i) => t - starts[i]) };
  });
}

// node: "should retry a job after a delay if a fixed backoff is given"
test('should retry a job after a delay if a fixed backoff is given', async () => {
  // backoff as a number: bullc stores it as {type: 'fixed', delay}
  const { elapse, gaps } = await retriedRuns({ attempts: 3, backoff: 1000 });
  assert.ok(elapse > 2000, `completed after ${elapse} ms`);
  assert.equal(gaps.length, 2);
  assert.ok(gaps.every(g => g >= 1000), `gaps between attempts: ${gaps}`);
});

// node: "should retry a job after a delay if an exponential backoff is given"
test('should retry a job after a delay if an exponential backoff is given', async () => {
  const { elapse, gaps } = await retriedRuns({ attempts: 3, backoff: { type: 'exponential', delay: 1000 } });
  const expected = 1000 * (Math.pow(2, 2) - 1);
  assert.ok(elapse > expected, `completed after ${elapse} ms`);
  assert.ok(gaps[0] >= 1000 && gaps[1] >= 2000, `gaps between attempts: ${gaps}`);
});

test('backoff with jitter stays within [delay * (1 - jitter), delay]', async () => {
  const { gaps } = await retriedRuns({ attempts: 3, backoff: { type: 'fixed', delay: 600, jitter: 0.5 } });
  assert.equal(gaps.length, 2);
  // 300..600 ms of backoff, plus scheduling; never the full delay twice over
  assert.ok(gaps.every(g => g >= 300 && g < 1500), `gaps between attempts: ${gaps}`);
});
