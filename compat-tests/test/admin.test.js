// SPDX-License-Identifier: MIT
// bullc's inspection and administration verbs against Node BullMQ 6.7.0 on
// the same Redis: queues built by Node (jobs in every state, with logs,
// progress, retries and metrics) must read the same through `bullc --json`
// as through Node's getters, and every bullc action must be seen by Node.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { UnrecoverableError } = h.nodeBullmq();

const Q = 'adm';
const STATES = ['waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed', 'paused', 'waiting-children'];

// A Node job as JSON.stringify writes it, without queueQualifiedName (the
// Job instance's "prefix:queue", not stored data).
function nodeJob(job) {
  const o = JSON.parse(JSON.stringify(job));
  delete o.queueQualifiedName;
  return o;
}

// `bullc --json ARGS` parsed (exit 0 required).
function bj(prefix, ...args) {
  return JSON.parse(h.bullcOk(['--json', ...args], { prefix }));
}

// The queue's events stream as [[event, field, value...], ...].
async function streamEvents(prefix) {
  const client = h.redis();
  try {
    return (await client.xrange(`${prefix}:${Q}:events`, '-', '+')).map(([, fields]) => fields.slice(1));
  } finally {
    await client.quit();
  }
}

// A promise with its resolve function.
function gate() {
  let open;
  const p = new Promise(resolve => {
    open = resolve;
  });
  return { p, open };
}

// queue.getJobCounts(...types) as BullMQ 6 answers it: Node 5 adds `paused`
// beside `waiting` (and to the default set), a count of its own list that the
// assertions below do not ask about; a non-zero one is kept, so it shows.
async function counts(queue, ...types) {
  const c = await queue.getJobCounts(...types);
  if (!types.includes('paused') && c.paused === 0) delete c.paused;
  return c;
}

// A queue with jobs in every state, built by Node only:
//   completed: ok1 (logs, progress, object result), ok2, str (string result)
//   failed:    bad (2 attempts, so retried once; stack traces)
//   active:    act (held by worker B until `release`)
//   waiting:   w1, w2, w3 (lifo); delayed: d1, d2; prioritized: p1 (5), p2 (1), p3 (5)
async function buildQueue() {
  const prefix = h.uniquePrefix('cmpa');
  const queue = h.newQueue(Q, prefix);
  await queue.waitUntilReady();
  const ids = {};
  const add = async (name, data, opts) => {
    const job = await queue.add(name, data, opts);
    ids[name] = job.id;
    return job;
  };
  await add('ok1', { n: 1, s: 'ünï / "q"' });
  await add('ok2', { n: 2 }, { attempts: 3, backoff: { type: 'exponential', delay: 10 } });
  await add('str', { n: 3 }, { keepLogs: 2 });
  await add('bad', { n: 4 }, { attempts: 2 });
  const a = h.newWorker(
    Q,
    prefix,
    async job => {
      switch (job.name) {
        case 'ok1':
          await job.log('first line');
          await job.log('second line');
          await job.updateProgress(42);
          return { v: job.data.n, nested: { ok: true } };
        case 'str':
          await job.log('one');
          await job.log('two');
          await job.log('three');
          await job.updateProgress({ step: 'done' });
          return 'a string';
        case 'bad':
          throw new Error(`boom ${job.attemptsMade}`);
        default:
          return null;
      }
    },
    { metrics: { maxDataPoints: 100 }, name: 'wa' },
  );
  await h.eventually(
    async () => {
      const c = await queue.getJobCounts('completed', 'failed');
      return c.completed === 3 && c.failed === 1;
    },
    15000,
    'Node worker A to finish 4 jobs',
  );
  await a.close();

  await add('act', { n: 5 });
  const held = gate();
  const b = h.newWorker(
    Q,
    prefix,
    async job => {
      if (job.name === 'act') {
        await job.log('started');
        await held.p;
      }
      return 'done';
    },
    { name: 'wb' },
  );
  await h.eventually(async () => (await queue.getJobState(ids.act)) === 'active', 10000, 'job act to be active');

  await add('w1', { n: 6 });
  await add('w2', { n: 7 });
  await add('w3', { n: 8 }, { lifo: true });
  await add('d1', { n: 9 }, { delay: 60000 });
  await add('d2', { n: 10 }, { delay: 120000, priority: 3 });
  await add('p1', { n: 11 }, { priority: 5 });
  await add('p2', { n: 12 }, { priority: 1 });
  await add('p3', { n: 13 }, { priority: 5, removeOnComplete: 10 });
  return {
    prefix,
    queue,
    ids,
    worker: b,
    async close() {
      held.open();
      await h.closeAll(b, queue);
    },
  };
}

test('reads: every getter through bullc --json equals Node', async t => {
  const ctx = await buildQueue();
  const { prefix, queue, ids } = ctx;
  try {
    await t.test('counts: getJobCounts of the eight states', async () => {
      const node = await queue.getJobCounts(...STATES);
      assert.deepStrictEqual(bj(prefix, 'counts', Q), node);
      assert.deepStrictEqual(node, {
        waiting: 3,
        active: 1,
        delayed: 2,
        prioritized: 3,
        completed: 3,
        failed: 1,
        paused: 0,
        'waiting-children': 0,
      });
    });

    await t.test('get: every job equals queue.getJob', async () => {
      for (const [name, id] of Object.entries(ids)) {
        const node = nodeJob(await queue.getJob(id));
        assert.deepStrictEqual(bj(prefix, 'get', Q, id), node, `job ${name} (${id})`);
      }
    });

    await t.test('get: a missing job exits 4 with a message', () => {
      const r = h.bullc(['--json', 'get', Q, 'nope'], { prefix });
      assert.equal(r.status, 4);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /job nope not found/);
    });

    await t.test('jobs: getJobs by state, ranges and order', async () => {
      const cases = [
        ...STATES.map(s => [[s], 0, -1, false]),
        ...STATES.map(s => [[s], 0, -1, true]),
        [['waiting'], 0, 0, false],
        [['waiting'], 1, 2, true],
        [['waiting'], -2, -1, false],
        [['waiting'], 5, 9, true],
        [['prioritized'], 0, 1, true],
        [['completed', 'failed'], 0, -1, false],
        [['waiting', 'delayed', 'prioritized'], 0, 1, true],
        [['waiting', 'wait'], 0, -1, false],
        [['delayed', 'completed'], -1, -1, true],
      ];
      for (const [states, start, end, asc] of cases) {
        const node = (await queue.getJobs(states, start, end, asc)).map(nodeJob);
        const args = ['jobs', Q, '--state', states.join(','), '--start', String(start), '--end', String(end)];
        if (asc) args.push('--asc');
        assert.deepStrictEqual(bj(prefix, ...args), node, `getJobs(${JSON.stringify(states)}, ${start}, ${end}, ${asc})`);
      }
      // no --state: Node's default types
      assert.deepStrictEqual(bj(prefix, 'jobs', Q), (await queue.getJobs()).map(nodeJob));
      assert.deepStrictEqual(bj(prefix, 'jobs', Q, '--asc'), (await queue.getJobs(undefined, 0, -1, true)).map(nodeJob));
    });

    await t.test('logs: getJobLogs, ascending and descending', async () => {
      for (const name of ['ok1', 'str', 'act', 'w1']) {
        const id = ids[name];
        assert.deepStrictEqual(bj(prefix, 'logs', Q, id), await queue.getJobLogs(id), name);
        assert.deepStrictEqual(bj(prefix, 'logs', Q, id, '--desc'), await queue.getJobLogs(id, 0, -1, false), name);
        assert.deepStrictEqual(
          bj(prefix, 'logs', Q, id, '--start', '0', '--end', '0', '--desc'),
          await queue.getJobLogs(id, 0, 0, false),
          name,
        );
        assert.deepStrictEqual(
          bj(prefix, 'logs', Q, id, '--start', '1', '--end', '1'),
          await queue.getJobLogs(id, 1, 1, true),
          name,
        );
      }
      assert.deepStrictEqual(bj(prefix, 'logs', Q, ids.str), { logs: ['two', 'three'], count: 2 }, 'keepLogs: 2');
      const r = h.bullc(['logs', Q, 'nope'], { prefix });
      assert.equal(r.status, 4);
    });

    await t.test('state: getJobState of each job', async () => {
      for (const id of Object.values(ids)) {
        assert.equal(bj(prefix, 'state', Q, id), await queue.getJobState(id), `job ${id}`);
      }
      assert.equal(await queue.getJobState('nope'), 'unknown');
      const r = h.bullc(['state', Q, 'nope'], { prefix });
      assert.equal(r.status, 4);
      assert.match(r.stderr, /not found/);
    });

    await t.test('workers: getWorkers', async () => {
      const pick = list =>
        list.map(c => ({ id: c.id, addr: c.addr, name: c.name, rawname: c.rawname, db: c.db })).sort((x, y) => x.id - y.id);
      const node = await queue.getWorkers();
      assert.ok(node.length >= 1, 'worker B is connected');
      assert.deepStrictEqual(pick(bj(prefix, 'workers', Q)), pick(node));
      assert.ok(node.some(c => c.rawname.endsWith(':w:wb')), 'the named worker is listed');
    });

    await t.test('metrics: getMetrics completed and failed', async () => {
      const m = bj(prefix, 'metrics', Q);
      assert.deepStrictEqual(m, { completed: await queue.getMetrics('completed'), failed: await queue.getMetrics('failed') });
      assert.equal(m.completed.meta.count, 3);
      assert.equal(m.failed.meta.count, 1);
    });

    await t.test('readable output: counts and jobs tables', () => {
      const counts = h.bullcOk(['counts', Q], { prefix });
      assert.match(counts, /^waiting\s+3$/m);
      assert.match(counts, /^prioritized\s+3$/m);
      const jobs = h.bullcOk(['jobs', Q, '--state', 'completed'], { prefix });
      assert.match(jobs, /^ID\s+NAME/);
      assert.match(jobs, new RegExp(`^${ids.ok1}\\s+ok1\\s`, 'm'));
      assert.match(h.bullcOk(['state', Q, ids.act], { prefix }), /^active\n$/);
    });
  } finally {
    await ctx.close();
  }
});

test('jobs/counts/clean: an unknown state exits 2 and sends nothing', async () => {
  const prefix = h.uniquePrefix('cmpa');
  const client = h.redis();
  try {
    for (const args of [
      ['jobs', Q, '--state', 'bogus'],
      ['jobs', Q, '--state', 'waiting,nope'],
      ['clean', Q, '--state', 'waiting-children', '--grace', '0', '--yes'],
      ['retry', Q, '--state', 'active'],
    ]) {
      const r = h.bullc(args, { prefix });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
    }
    assert.deepEqual(await h.keysOf(client, prefix), []);
  } finally {
    await client.quit();
  }
});

// ---- actions ----------------------------------------------------------------------------

// A queue on a fresh prefix for one action test.
async function withQueue(run) {
  const prefix = h.uniquePrefix('cmpa');
  const queue = h.newQueue(Q, prefix);
  const closers = [];
  const gates = [];
  const ctx = {
    prefix,
    queue,
    // A gate opened at the end whatever happens: a worker's close waits for
    // a job held on it, so a failed assertion would hang until the timeout.
    gate() {
      const g = gate();
      gates.push(g);
      return g;
    },
    worker(processor, opts) {
      const w = h.newWorker(Q, prefix, processor, opts);
      closers.unshift(w);
      return w;
    },
  };
  try {
    await queue.waitUntilReady();
    return await run(ctx);
  } finally {
    for (const g of gates) g.open();
    await h.closeAll(closers, queue);
  }
}

// Jobs finished by a Node worker: names ending in "-fail" fail (1 attempt).
async function finish(ctx, names) {
  const ids = [];
  for (const n of names) ids.push((await ctx.queue.add(n, { n })).id);
  const w = ctx.worker(async job => {
    if (job.name.endsWith('-fail')) throw new UnrecoverableError(`failed ${job.name}`);
    return { ok: job.name };
  });
  await h.eventually(
    async () => {
      const c = await ctx.queue.getJobCounts('completed', 'failed');
      return c.completed + c.failed === names.length;
    },
    10000,
    'the jobs to finish',
  );
  await w.close();
  return ids;
}

test('pause and resume: Node sees the queue paused, its worker stops and restarts', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    assert.deepStrictEqual(bj(prefix, 'pause', Q), { queue: Q, paused: true });
    assert.equal(await queue.isPaused(), true);
    const job = await queue.add('x', {});
    const done = [];
    const w = ctx.worker(async j => {
      done.push(j.id);
    });
    await w.waitUntilReady();
    await h.sleep(400);
    assert.deepEqual(done, [], 'nothing processed while paused');
    assert.equal(await queue.getJobState(job.id), 'waiting');
    assert.match(h.bullcOk(['resume', Q], { prefix }), /resumed/);
    assert.equal(await queue.isPaused(), false);
    await h.eventually(() => done.length === 1, 10000, 'the job after resume');
    const events = (await streamEvents(prefix)).map(e => e[0]);
    assert.ok(events.includes('paused') && events.includes('resumed'), `events: ${events}`);
  });
});

test('retry: a failed or completed job, and every job of a state, as Node retries them', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const [f1, f2, c1, f3] = await finish(ctx, ['a-fail', 'b-fail', 'c', 'd-fail']);
    // the same retry by Node and by bullc leaves the same job
    await (await queue.getJob(f1)).retry('failed');
    assert.deepStrictEqual(bj(prefix, 'retry', Q, f2), { id: f2, retried: 'failed' });
    const strip = j => {
      const o = nodeJob(j);
      for (const k of ['id', 'name', 'data', 'timestamp', 'stacktrace', 'failedReason']) delete o[k];
      return o;
    };
    const [n1, n2] = [await queue.getJob(f1), await queue.getJob(f2)];
    assert.deepStrictEqual(strip(n2), strip(n1));
    assert.equal(n2.failedReason, undefined);
    assert.equal(n2.finishedOn, undefined);
    assert.equal(await queue.getJobState(f2), 'waiting');
    // a completed job
    h.bullcOk(['retry', Q, c1], { prefix });
    assert.equal(await queue.getJobState(c1), 'waiting');
    assert.equal((await queue.getJob(c1)).returnvalue, null);
    // a waiting job cannot be retried; a missing one exits 4
    let r = h.bullc(['retry', Q, c1], { prefix });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /waiting/);
    r = h.bullc(['retry', Q, 'nope'], { prefix });
    assert.equal(r.status, 4);
    // every failed job
    assert.equal(await queue.getJobState(f3), 'failed');
    h.bullcOk(['retry', Q, '--state', 'failed'], { prefix });
    assert.deepStrictEqual(await counts(queue, 'failed', 'waiting'), { failed: 0, waiting: 4 });
  });
});

test('retry --state completed moves every completed job back to wait', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    await finish(ctx, ['a', 'b', 'c-fail']);
    assert.deepStrictEqual(bj(prefix, 'retry', Q, '--state', 'completed'), { queue: Q, retried: 'completed' });
    assert.deepStrictEqual(await counts(queue, 'completed', 'failed', 'waiting'), {
      completed: 0,
      failed: 1,
      waiting: 2,
    });
  });
});

test('promote: one delayed job, then all of them', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const d1 = (await queue.add('d1', {}, { delay: 60000 })).id;
    const d2 = (await queue.add('d2', {}, { delay: 60000, priority: 2 })).id;
    const d3 = (await queue.add('d3', {}, { delay: 90000 })).id;
    assert.deepStrictEqual(bj(prefix, 'promote', Q, d1), { id: d1, promoted: true });
    assert.equal(await queue.getJobState(d1), 'waiting');
    assert.equal((await queue.getJob(d1)).delay, 0);
    let r = h.bullc(['promote', Q, d1], { prefix });
    assert.equal(r.status, 1, 'not delayed any more');
    assert.match(r.stderr, /not in the delayed state/);
    r = h.bullc(['promote', Q, 'nope'], { prefix });
    assert.equal(r.status, 4);
    h.bullcOk(['promote', Q], { prefix });
    assert.equal(await queue.getDelayedCount(), 0);
    assert.equal(await queue.getJobState(d3), 'waiting');
    // moveJobsToWait ignores priorities, as in Node
    assert.equal(await queue.getJobState(d2), 'waiting');
  });
});

test('clean: finished jobs older than the grace period, with a limit; needs --yes', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const ids = await finish(ctx, ['a', 'b', 'c', 'x-fail', 'y-fail']);
    let r = h.bullc(['clean', Q, '--state', 'completed', '--grace', '0'], { prefix, input: '' });
    assert.equal(r.status, 2, 'not confirmed');
    assert.match(r.stderr, /--yes/);
    assert.equal(await queue.getCompletedCount(), 3, 'nothing removed without --yes');
    assert.deepStrictEqual(bj(prefix, 'clean', Q, '--state', 'completed', '--grace', '3600000', '--yes'), []);
    const one = bj(prefix, 'clean', Q, '--state', 'completed', '--grace', '0', '--limit', '1', '--yes');
    assert.equal(one.length, 1);
    const rest = bj(prefix, 'clean', Q, '--state', 'completed', '--grace', '0', '--yes');
    assert.deepStrictEqual([...one, ...rest].sort(), ids.slice(0, 3).sort());
    assert.equal(await queue.getCompletedCount(), 0);
    for (const id of ids.slice(0, 3)) assert.equal(await queue.getJob(id), undefined);
    const failed = bj(prefix, 'clean', Q, '--state', 'failed', '--grace', '0', '--yes');
    assert.deepStrictEqual(failed.sort(), ids.slice(3).sort());
    // "waiting" is Node's alias of the wait list
    const w = (await queue.add('w', {})).id;
    assert.deepStrictEqual(bj(prefix, 'clean', Q, '--state', 'waiting', '--grace', '0', '--yes'), [w]);
    const cleaned = (await streamEvents(prefix)).filter(e => e[0] === 'cleaned');
    assert.ok(cleaned.length >= 4, 'a cleaned event per call');
  });
});

test('drain: waiting and prioritized jobs, delayed ones with --delayed; needs --yes', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    await queue.add('w', {});
    await queue.add('p', {}, { priority: 4 });
    await queue.add('d', {}, { delay: 60000 });
    const before = await counts(queue, 'waiting', 'prioritized', 'delayed');
    let r = h.bullc(['drain', Q], { prefix, input: '' });
    assert.equal(r.status, 2);
    assert.deepStrictEqual(await counts(queue, 'waiting', 'prioritized', 'delayed'), before);
    assert.deepStrictEqual(bj(prefix, 'drain', Q, '--yes'), { queue: Q, drained: true });
    assert.deepStrictEqual(await counts(queue, 'waiting', 'prioritized', 'delayed'), {
      waiting: 0,
      prioritized: 0,
      delayed: 1,
    });
    h.bullcOk(['drain', Q, '--delayed', '--yes'], { prefix });
    assert.equal(await queue.getDelayedCount(), 0);
  });
});

test('obliterate: refused with active jobs unless --force, as Node; needs --yes', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const client = h.redis();
    try {
      await queue.add('w', { a: 1 });
      const held = ctx.gate();
      const act = (await queue.add('act', {})).id;
      // its job disappears under it: the worker reports that as an error
      ctx.worker(async job => {
        if (job.name === 'act') await held.p;
      }).on('error', () => {});
      await h.eventually(async () => (await queue.getJobState(act)) === 'active', 10000, 'an active job');
      let r = h.bullc(['obliterate', Q], { prefix, input: '' });
      assert.equal(r.status, 2);
      assert.equal(await queue.isPaused(), false, 'not even paused without --yes');
      r = h.bullc(['obliterate', Q, '--yes'], { prefix });
      assert.equal(r.status, 1);
      assert.match(r.stderr, /Cannot obliterate queue with active jobs/);
      assert.equal(await queue.isPaused(), true, 'Node pauses first, then refuses');
      assert.equal(await queue.getJobState(act), 'active');
      assert.deepStrictEqual(bj(prefix, 'obliterate', Q, '--force', '--yes'), { queue: Q, obliterated: true });
      assert.deepEqual(await h.keysOf(client, prefix), []);
      assert.deepStrictEqual(await counts(queue), {
        active: 0,
        completed: 0,
        delayed: 0,
        failed: 0,
        prioritized: 0,
        waiting: 0,
        'waiting-children': 0,
      });
      held.open();
    } finally {
      await client.quit();
    }
  });
});

test('remove: a job and its keys; a locked job is refused; needs --yes', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const id = (await queue.add('x', {})).id;
    await queue.addJobLog(id, 'a line');
    let r = h.bullc(['remove', Q, id], { prefix, input: '' });
    assert.equal(r.status, 2);
    assert.ok(await queue.getJob(id));
    assert.deepStrictEqual(bj(prefix, 'remove', Q, id, '--yes'), { id, removed: true });
    assert.equal(await queue.getJob(id), undefined);
    assert.deepStrictEqual(await queue.getJobLogs(id), { logs: [], count: 0 });
    const removed = (await streamEvents(prefix)).filter(e => e[0] === 'removed');
    assert.deepStrictEqual(removed, [['removed', 'jobId', id, 'prev', 'wait']]);
    r = h.bullc(['remove', Q, id, '--yes'], { prefix });
    assert.equal(r.status, 4, 'gone');
    const held = ctx.gate();
    const act = (await queue.add('act', {})).id;
    ctx.worker(async () => held.p);
    await h.eventually(async () => (await queue.getJobState(act)) === 'active', 10000, 'an active job');
    r = h.bullc(['remove', Q, act, '--yes'], { prefix });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /locked/);
    assert.equal(await queue.getJobState(act), 'active');
    held.open();
  });
});

test('global concurrency: Node reads it and its worker obeys it', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    assert.equal(bj(prefix, 'global-concurrency', Q), null);
    assert.equal(bj(prefix, 'global-concurrency', Q, '1'), 1);
    assert.equal(await queue.getGlobalConcurrency(), 1);
    let now = 0;
    let max = 0;
    const w = ctx.worker(
      async () => {
        now++;
        max = Math.max(max, now);
        await h.sleep(100);
        now--;
      },
      { concurrency: 4 },
    );
    const done = h.collect(w, 'completed', 4);
    for (let i = 0; i < 4; i++) await queue.add('j', { i });
    await h.withTimeout(done, 15000, '4 jobs');
    assert.equal(max, 1, 'one job at a time across the queue');
    assert.equal(bj(prefix, 'global-concurrency', Q, '--remove'), null);
    assert.equal(await queue.getGlobalConcurrency(), null);
  });
});

test('global rate limit: set and removed as Node reads them', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    assert.deepStrictEqual(bj(prefix, 'global-rate-limit', Q, '5', '1000'), { max: 5, duration: 1000 });
    assert.deepStrictEqual(await queue.getGlobalRateLimit(), { max: 5, duration: 1000 });
    assert.deepStrictEqual(bj(prefix, 'global-rate-limit', Q), await queue.getGlobalRateLimit());
    assert.equal(bj(prefix, 'global-rate-limit', Q, '--remove'), null);
    assert.equal(await queue.getGlobalRateLimit(), null);
  });
});

test('rate-limit: Node sees the TTL and its worker waits for it', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const before = bj(prefix, 'rate-limit', Q);
    assert.equal(before, await queue.getRateLimitTtl(), 'no limiter key');
    const ttl = bj(prefix, 'rate-limit', Q, '1500');
    assert.ok(ttl > 0 && ttl <= 1500, `ttl ${ttl}`);
    const nodeTtl = await queue.getRateLimitTtl();
    assert.ok(nodeTtl > 0 && nodeTtl <= 1500, `Node ttl ${nodeTtl}`);
    const id = (await queue.add('x', {})).id;
    // queue.rateLimit holds workers that have a limiter (or a global max)
    const w = ctx.worker(async () => 'ok', { limiter: { max: 1, duration: 100 } });
    const done = h.collect(w, 'completed', 1);
    await h.sleep(500);
    assert.equal(await queue.getJobState(id), 'waiting', 'held by the rate limit');
    await h.withTimeout(done, 10000, 'the job after the rate limit');
  });
});

test('queues: the queues under a prefix', async () => {
  const prefix = h.uniquePrefix('cmpa');
  const qs = ['beta', 'alpha', 'gamma{x}'].map(n => h.newQueue(n, prefix));
  const other = h.newQueue('elsewhere', `${prefix}other`);
  try {
    await Promise.all([...qs, other].map(q => q.getVersion())); // the meta each Queue writes
    assert.deepStrictEqual(bj(prefix, 'queues'), ['alpha', 'beta', 'gamma{x}']);
    assert.equal(h.bullcOk(['queues'], { prefix }), 'alpha\nbeta\ngamma{x}\n');
  } finally {
    await h.closeAll(qs, other);
  }
});

test('get and jobs: \\u0000 and control characters survive --json; text output escapes them', async () => {
  await withQueue(async ctx => {
    const { prefix, queue } = ctx;
    const forged = 'x\n2            forged               2026-01-01T00:00:00.000Z 0        0';
    const nul = await queue.add('nul\u0000name', { s: 'before\u0000after', deep: [{ t: '\u0000' }] });
    const ansi = await queue.add(forged, { n: 1 }, { jobId: 'id\u001b[31mred' });
    assert.deepStrictEqual(bj(prefix, 'get', Q, nul.id), nodeJob(await queue.getJob(nul.id)), 'NULs kept');
    assert.deepStrictEqual(bj(prefix, 'get', Q, ansi.id), nodeJob(await queue.getJob(ansi.id)));
    const listed = bj(prefix, 'jobs', Q, '--state', 'waiting');
    assert.deepStrictEqual(listed.map(j => j.name).sort(), ['nul\u0000name', forged].sort());

    const table = h.bullcOk(['jobs', Q, '--state', 'waiting'], { prefix });
    assert.equal(table.trimEnd().split('\n').length, 3, `a header and two rows:\n${table}`);
    assert.ok(!table.includes('\u001b'), 'no escape sequence reaches the terminal');
    assert.match(table, /id\\x1b\[31mred +x\\n2 /);
    const one = h.bullcOk(['get', Q, ansi.id], { prefix });
    assert.ok(!one.includes('\u001b') && one.includes('name             x\\n2 '), one);
  });
});

test('numbers out of range and add-bulk stopped after earlier batches', () => {
  const prefix = h.uniquePrefix('cmpa');
  const big = h.bullc(['jobs', Q, '--start', '99999999999999999999999'], { prefix });
  assert.equal(big.status, 2, big.stderr);
  assert.match(big.stderr, /--start must be a whole number/);
  const pos = h.bullc(['rate-limit', Q, '99999999999999999999999'], { prefix });
  assert.equal(pos.status, 2, pos.stderr);
  assert.match(pos.stderr, /MS must be a whole number/);

  const lines = ['{"name":"a"}', '{"name":"b"}', '{"name":"c"}', 'not json'];
  const r = h.bullc(['add-bulk', Q, '--batch', '2'], { prefix, input: lines.join('\n') + '\n' });
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stdout.split('\n').filter(Boolean).length, 2, 'the first batch was added and printed');
  assert.match(r.stderr, /line 4: /);
  assert.match(r.stderr, /stopped after 2 job\(s\) of earlier batches were added/);
  const none = h.bullc(['add-bulk', Q], { prefix, input: 'not json\n' });
  assert.equal(none.status, 2, 'nothing was sent: still 2');
});
