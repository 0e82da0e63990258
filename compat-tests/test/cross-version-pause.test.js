// SPDX-License-Identifier: MIT
// Pause and resume across BullMQ majors on one queue. BullMQ 5.x pauses by
// renaming `wait` to `paused` (and sends every job to `paused` while the
// queue is paused), and its resume renames `paused` back over `wait`; 6.x
// keeps jobs in `wait` and only flags meta.paused. A peer of one major that
// writes the other's layout loses jobs: their hashes stay, in no list. Here
// Node BullMQ 5.81.5 and bullc (which speaks 5.x on a queue whose meta.version
// a 5.x peer wrote, or when told to) pause, add, promote and resume in every
// order: every job must complete exactly once and no job hash be left in no
// list. Node 6.7.0 beside bullc speaking 5.x is covered where 6.x copes with
// 5.x's layout (its resume moves `paused` back to `wait`).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { killAll, startReady } = require('../lib/worker-proc');

const Q = 'xv';
// bullc told to speak 5.x through the environment (the others find the major
// in meta.version, as a 5.x Queue wrote it).
const ENV5 = { ...process.env, BULLC_BULLMQ_VERSION: '5' };
const LISTS = ['wait', 'paused', 'active'];
const ZSETS = ['delayed', 'prioritized', 'completed', 'failed', 'waiting-children'];

test.after(killAll);

// A fresh queue whose meta a Node 5.81.5 Queue wrote; `run` gets the context
// and everything it opened is closed afterwards, also when it fails.
async function withQueue(run) {
  const prefix = h.uniquePrefix('xv');
  const q5 = h.newQueue(Q, prefix, { bullmqMajor: 5 });
  const client = h.redis();
  const ctx = { prefix, q5, client, closers: [], procs: [] };
  ctx.bullc = (args, opts = {}) => h.bullcOk(args, { prefix, ...opts });
  ctx.add = (name, opts = {}) => h.bullcOk(['add', Q, name, JSON.stringify({ name })], { prefix, ...opts }).trim();
  ctx.node5Add = async name => (await q5.add(name, { name })).id;
  ctx.key = k => `${prefix}:${Q}:${k}`;
  try {
    await q5.waitUntilReady();
    assert.equal(await client.hget(ctx.key('meta'), 'version'), h.bullmqVersionString(5));
    return await run(ctx);
  } finally {
    for (const p of ctx.procs) await p.stop();
    await h.closeAll(ctx.closers, q5, client);
  }
}

// The queue's ids in `paused` and `wait` (LRANGE order reversed: the order
// jobs are taken), so a failed check shows where the jobs are.
async function lists(ctx) {
  const [wait, paused] = await Promise.all(['wait', 'paused'].map(l => ctx.client.lrange(ctx.key(l), 0, -1)));
  return { wait: wait.reverse(), paused: paused.reverse() };
}

// Starts the processors of the end of a scenario: a Node 5.81.5 Worker that
// counts how often it ran each job, and (unless `bullcWorker: false`) a
// bullc-worker speaking 5.x found from meta.version.
async function processors(ctx, { bullcWorker = true } = {}) {
  const runs = new Map();
  const w = h.newWorker(
    Q,
    ctx.prefix,
    async job => {
      runs.set(job.id, (runs.get(job.id) || 0) + 1);
      return { by: 'node5' };
    },
    { bullmqMajor: 5, drainDelay: 1 },
  );
  ctx.closers.unshift(w);
  await w.waitUntilReady();
  if (bullcWorker) {
    ctx.procs.push(await startReady(['--queue', Q, '--builtin', 'echo', '--drain-delay', '1'], { prefix: ctx.prefix }));
  }
  return runs;
}

// Waits until every job of `ids` completed, then checks each completed once
// (one `completed` event, one attempt, Node's worker ran it at most once), and
// that every job hash of the queue is in one of its state lists or sets.
async function assertAllCompletedOnce(ctx, ids, runs) {
  const { client, key } = ctx;
  await h.eventually(
    async () => (await client.zcard(key('completed'))) === ids.length,
    15000,
    `${ids.length} jobs to complete`,
  ).catch(async err => {
    err.message += `\nlists: ${JSON.stringify(await lists(ctx))}\norphans: ${JSON.stringify(await orphans(ctx))}`;
    throw err;
  });
  const completedEvents = new Map();
  for (const [, fields] of await client.xrange(key('events'), '-', '+')) {
    const f = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
    if (f.event === 'completed') completedEvents.set(f.jobId, (completedEvents.get(f.jobId) || 0) + 1);
  }
  for (const id of ids) {
    assert.equal(await client.zscore(key('completed'), id) !== null, true, `job ${id} completed`);
    assert.equal(completedEvents.get(id), 1, `job ${id}: one completed event`);
    assert.equal(await client.hget(key(id), 'atm'), '1', `job ${id}: one attempt`);
    assert.ok((runs.get(id) || 0) <= 1, `job ${id}: run ${runs.get(id)} times by Node`);
  }
  assert.deepEqual(await orphans(ctx), [], 'job hashes in no list');
  assert.deepEqual(await lists(ctx), { wait: [], paused: [] });
}

// Every job hash of the queue (`<prefix>:<queue>:<id>`, a hash) that is in
// none of the queue's state lists and sets, as [id, ...].
async function orphans(ctx) {
  const { client, key } = ctx;
  const ids = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', key('*'), 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const id = k.slice(key('').length);
      // a job's own keys (lock, logs) and the queue's keys hold a ':' or are
      // no hash; meta is the queue's only hash
      if (!id.includes(':') && id !== 'meta' && (await client.type(k)) === 'hash') ids.push(id);
    }
  } while (cursor !== '0');
  const lost = [];
  for (const id of ids) {
    let found = false;
    for (const l of LISTS) found = found || (await client.lpos(key(l), id)) !== null;
    for (const z of ZSETS) found = found || (await client.zscore(key(z), id)) !== null;
    if (!found) lost.push(id);
  }
  return lost.sort((a, b) => a - b);
}

test('Node 5 pauses, bullc adds 2, Node 5 resumes: both complete once', async () => {
  await withQueue(async ctx => {
    await ctx.q5.pause();
    const ids = [ctx.add('a'), ctx.add('b')];
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids }, 'added to 5.x paused list');
    await ctx.q5.resume();
    const runs = await processors(ctx);
    await assertAllCompletedOnce(ctx, ids, runs);
  });
});

test('Node 5 pauses, both add, bullc resumes: all complete once', async () => {
  await withQueue(async ctx => {
    const ids = [await ctx.node5Add('before')];
    await ctx.q5.pause();
    ids.push(ctx.add('c1'), await ctx.node5Add('n1'), ctx.add('c2'));
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids });
    assert.match(ctx.bullc(['resume', Q]), /resumed/);
    assert.equal(await ctx.q5.isPaused(), false);
    assert.deepEqual(await lists(ctx), { wait: ids, paused: [] }, "5.x's layout after a resume");
    const runs = await processors(ctx);
    await assertAllCompletedOnce(ctx, ids, runs);
  });
});

test('bullc pauses, both add, Node 5 resumes: all 5 complete once', async () => {
  await withQueue(async ctx => {
    const ids = [ctx.add('before')];
    assert.match(ctx.bullc(['pause', Q]), /paused/);
    assert.equal(await ctx.q5.isPaused(), true);
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids }, "bullc's pause moves wait to paused, as 5.x's");
    ids.push(await ctx.node5Add('n1'), ctx.add('c1'));
    const bulk = h.bullcAddBulk(ctx.prefix, Q, [{ name: 'b1', data: {} }, { name: 'b2', data: {} }]);
    ids.push(...bulk);
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids });
    await ctx.q5.resume();
    const runs = await processors(ctx);
    await assertAllCompletedOnce(ctx, ids, runs);
  });
});

test('bullc pauses, both add, Node 5 pauses again, then resumes: all complete once', async () => {
  await withQueue(async ctx => {
    const ids = [await ctx.node5Add('before')];
    ctx.bullc(['pause', Q], { env: ENV5 });
    ids.push(ctx.add('c1', { env: ENV5 }), await ctx.node5Add('n1'), ctx.add('c2'));
    await ctx.q5.pause();
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids });
    await ctx.q5.resume();
    const runs = await processors(ctx);
    await assertAllCompletedOnce(ctx, ids, runs);
  });
});

test('Node 5 pauses, bullc pauses and adds, Node 5 resumes: all complete once', async () => {
  await withQueue(async ctx => {
    const ids = [ctx.add('before'), await ctx.node5Add('n0')];
    await ctx.q5.pause();
    ctx.bullc(['pause', Q]);
    ids.push(ctx.add('c1'), await ctx.node5Add('n1'));
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids });
    await ctx.q5.resume();
    const runs = await processors(ctx);
    await assertAllCompletedOnce(ctx, ids, runs);
  });
});

test('delayed jobs promoted by bullc-worker while Node 5 has the queue paused wait in paused, then complete once', async () => {
  await withQueue(async ctx => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(ctx.add(`d${i}`));
    // three more, delayed 700 ms, from both sides
    const delayed = [
      h.bullcAdd(ctx.prefix, Q, 'cd1', {}, { delay: 700 }),
      (await ctx.q5.add('nd1', {}, { delay: 700 })).id,
      h.bullcAdd(ctx.prefix, Q, 'cd2', {}, { delay: 700 }),
    ];
    await ctx.q5.pause();
    const w = await startReady(['--queue', Q, '--builtin', 'echo', '--drain-delay', '1'], { prefix: ctx.prefix });
    ctx.procs.push(w);
    await h.eventually(
      async () => (await ctx.client.zcard(ctx.key('delayed'))) === 0,
      10000,
      'bullc-worker to promote the delayed jobs',
    );
    const l = await lists(ctx);
    assert.deepEqual(l.wait, []);
    assert.deepEqual([...l.paused].sort(), [...ids, ...delayed].sort(), 'promoted into 5.x paused list');
    assert.equal(await ctx.client.zcard(ctx.key('completed')), 0, 'nothing processed while paused');
    await ctx.q5.resume();
    const runs = await processors(ctx, { bullcWorker: false });
    await assertAllCompletedOnce(ctx, [...ids, ...delayed], runs);
  });
});

test('Node 6 resumes a queue bullc paused speaking 5.x: all complete once', async () => {
  await withQueue(async ctx => {
    // skipMetasUpdate: a 6.x Queue would otherwise rewrite meta.version
    const q6 = h.newQueue(Q, ctx.prefix, { bullmqMajor: 6, skipMetasUpdate: true });
    ctx.closers.push(q6);
    const ids = [ctx.add('before', { env: ENV5 })];
    ctx.bullc(['pause', Q, '--bullmq-version', '5']);
    ids.push(ctx.add('c1', { env: ENV5 }), await ctx.node5Add('n1'));
    assert.deepEqual(await lists(ctx), { wait: [], paused: ids });
    assert.equal(await q6.isPaused(), true);
    await q6.resume();
    assert.equal(await ctx.client.hget(ctx.key('meta'), 'version'), h.bullmqVersionString(5));
    assert.deepEqual((await lists(ctx)).paused, [], "6.x's resume moved 5.x's paused list");
    const runs = await processors(ctx);
    await assertAllCompletedOnce(ctx, ids, runs);
  });
});
