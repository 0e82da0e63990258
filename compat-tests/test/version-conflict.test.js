// SPDX-License-Identifier: MIT
// bullc speaks the BullMQ major a queue's meta.version names unless told
// another one; told a major that conflicts with the meta a Node peer wrote
// (or finding a major it does not speak), `bullc` and `bullc-worker` stop with
// exit 5 and write nothing: the whole keyspace under the prefix is compared,
// byte for byte, before and after. A queue bullc speaks 5.x to keeps the
// meta.version a 5.81.5 Queue wrote.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness');
const { killAll, startReady, startWorker, tmpDir } = require('../lib/worker-proc');

const Q = 'vc';

test.after(killAll);

// Every key under `prefix` with its type, TTL and DUMP (values byte for byte).
async function keyspace(client, prefix) {
  const out = {};
  for (const k of await h.keysOf(client, prefix)) {
    const [type, pttl, dump] = await Promise.all([client.type(k), client.pttl(k), client.dumpBuffer(k)]);
    out[k] = { type, pttl: pttl > 0 ? 'ttl' : pttl, dump: dump.toString('hex') };
  }
  return out;
}

// A queue a Node Queue of `major` wrote to (meta and one waiting job), with
// the keyspace as it stands; `run` gets them, everything is closed after.
async function withQueue(major, run) {
  const prefix = h.uniquePrefix('vc');
  const queue = h.newQueue(Q, prefix, { bullmqMajor: major });
  const client = h.redis();
  try {
    await queue.add('n', { by: `node${major}` });
    assert.equal(await client.hget(`${prefix}:${Q}:meta`, 'version'), h.bullmqVersionString(major));
    return await run({ prefix, queue, client, before: await keyspace(client, prefix) });
  } finally {
    await h.closeAll(queue, client);
  }
}

// The refusal's message: the version meta holds, and the way out (the other
// choice, or auto).
function assertMessage(text) {
  assert.match(text, /bullmq:\d+\.\d+\.\d+/, 'names the version meta holds');
  assert.match(text, /\bauto\b|--bullmq-version/, 'names the way out');
}

// Runs `bullc ARGS` expecting exit 5 with that message, and checks the
// keyspace did not change.
async function refused(ctx, args, opts = {}) {
  const r = h.bullc(args, { prefix: ctx.prefix, ...opts });
  assert.equal(r.status, 5, `bullc ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  assertMessage(r.stderr);
  assert.deepEqual(await keyspace(ctx.client, ctx.prefix), ctx.before, `bullc ${args.join(' ')} wrote nothing`);
  return r;
}

const env = (v) => ({ ...process.env, BULLC_BULLMQ_VERSION: v });
const ADD = ['add', Q, 'c', '{"by":"bullc"}'];

test('bullc add, add-bulk and pause told 6 on a queue a 5.x Queue wrote: exit 5, nothing written', async () => {
  await withQueue(5, async ctx => {
    await refused(ctx, [...ADD, '--bullmq-version', '6']);
    await refused(ctx, ADD, { env: env('6') });
    await refused(ctx, ['add-bulk', Q, '--bullmq-version', '6'], { input: '{"name":"b","data":{}}\n' });
    await refused(ctx, ['pause', Q, '--bullmq-version', '6']);
    await refused(ctx, ['scheduler', 'upsert', Q, 'tick', '--every', '1000', '--bullmq-version', '6']);
    assert.equal(await ctx.queue.isPaused(), false);
  });
});

test('bullc add and pause told 5 on a queue a 6.x Queue wrote: exit 5, nothing written', async () => {
  await withQueue(6, async ctx => {
    await refused(ctx, [...ADD, '--bullmq-version', '5']);
    await refused(ctx, ADD, { env: env('5') });
    await refused(ctx, ['pause', Q, '--bullmq-version', '5']);
    await refused(ctx, ['scheduler', 'upsert', Q, 'tick', '--every', '1000'], { env: env('5') });
  });
});

test('a meta.version of a major bullc does not speak: exit 5, nothing written', async () => {
  await withQueue(6, async ctx => {
    await ctx.client.hset(`${ctx.prefix}:${Q}:meta`, 'version', 'bullmq:7.0.0');
    ctx.before = await keyspace(ctx.client, ctx.prefix);
    const r = await refused(ctx, ADD);
    assert.match(r.stderr, /bullmq:7\.0\.0/);
  });
});

test('bullc add speaking 5.x keeps the meta.version a 5.x Queue wrote; an explicit 5 on a new queue writes it', async () => {
  await withQueue(5, async ctx => {
    h.bullcOk(ADD, { prefix: ctx.prefix });
    h.bullcOk([...ADD, '--bullmq-version', '5'], { prefix: ctx.prefix });
    assert.equal(await ctx.client.hget(`${ctx.prefix}:${Q}:meta`, 'version'), h.bullmqVersionString(5));
    assert.equal(await ctx.queue.count(), 3);
    const prefix = h.uniquePrefix('vcnew');
    h.bullcOk(['add', 'fresh', 'x', '{}'], { prefix, env: env('5') });
    assert.deepEqual(await ctx.client.hgetall(`${prefix}:fresh:meta`), {
      'opts.maxLenEvents': '10000',
      version: h.bullmqVersionString(5),
    });
  });
});

// bullc-worker refusing: exit 5 before `ready`, its message naming the way out, nothing written.
async function workerRefused(ctx, args, opts = {}) {
  const w = startWorker(['--queue', Q, '--builtin', 'echo', ...args], { prefix: ctx.prefix, ...opts });
  const exit = await w.waitExit(10000);
  assert.equal(exit.code, 5, w.text());
  assert.doesNotMatch(w.text(), /\bready\b.*queues=/);
  assertMessage(w.text());
  assert.deepEqual(await keyspace(ctx.client, ctx.prefix), ctx.before, `bullc-worker ${args.join(' ')} wrote nothing`);
}

test('bullc-worker told the other major (flag, environment, config file): exit 5, nothing written', async () => {
  await withQueue(5, async ctx => {
    await workerRefused(ctx, ['--bullmq-version', '6']);
    await workerRefused(ctx, [], { env: env('6') });
    const dir = tmpDir('version-conflict');
    const top = path.join(dir, 'top.json');
    fs.writeFileSync(top, JSON.stringify({ bullmqVersion: 6, queues: { [Q]: { builtin: 'echo' } } }));
    const perQueue = path.join(dir, 'per-queue.json');
    fs.writeFileSync(perQueue, JSON.stringify({ queues: { [Q]: { builtin: 'echo', bullmqVersion: 6 } } }));
    for (const config of [top, perQueue]) {
      const w = startWorker(['--config', config], { prefix: ctx.prefix });
      const exit = await w.waitExit(10000);
      assert.equal(exit.code, 5, `${config}: ${w.text()}`);
      assertMessage(w.text());
      assert.deepEqual(await keyspace(ctx.client, ctx.prefix), ctx.before, `${config}: nothing written`);
    }
  });
  await withQueue(6, async ctx => {
    await workerRefused(ctx, ['--bullmq-version', '5']);
  });
});

test('bullc-worker speaking 5.x stops (exit 5) when a 6.x Queue rewrites meta.version under it', async () => {
  await withQueue(5, async ctx => {
    // meta.version is read again at each stalled-jobs check
    const w = await startReady(['--queue', Q, '--builtin', 'echo', '--drain-delay', '1', '--stalled-interval', '1000'],
      { prefix: ctx.prefix });
    try {
      await h.eventually(async () => (await ctx.queue.getCompletedCount()) === 1, 10000, 'the waiting job');
      const q6 = h.newQueue(Q, ctx.prefix, { bullmqMajor: 6 });
      await q6.waitUntilReady();
      await h.eventually(async () => (await ctx.client.hget(`${ctx.prefix}:${Q}:meta`, 'version')) === h.bullmqVersionString(6), 5000, 'meta rewritten');
      await q6.close();
      const exit = await w.waitExit(10000);
      assert.equal(exit.code, 5, w.text());
      assert.match(w.text(), /bullmq:6\.7\.0/);
    } finally {
      await w.stop();
    }
  });
});

// A flow settles one major for every queue it touches: its nodes' queues and
// a root's existing parent's.
const tree = (root, child, opts = {}) =>
  JSON.stringify({ name: 'p', queueName: root, opts, children: [{ name: 'c', queueName: child }] });

test('bullc flow add on a 5.x queue speaks 5.x; an explicit 6 is refused: exit 5, nothing written', async () => {
  await withQueue(5, async ctx => {
    await refused(ctx, ['flow', 'add', '-', '--bullmq-version', '6'], { input: tree(Q, Q) });
    const r = await refused(ctx, ['flow', 'add', '-'], { input: tree(Q, 'fresh'), env: env('6') });
    assert.match(r.stderr, new RegExp(`queue ${ctx.prefix}:${Q}\\b`), 'names the queue');
    const id = h.bullcOk(['flow', 'add', '-'], { prefix: ctx.prefix, input: tree(Q, Q) }).trim();
    assert.equal(await ctx.client.zscore(`${ctx.prefix}:${Q}:waiting-children`, id) !== null, true);
    assert.equal(await ctx.client.hget(`${ctx.prefix}:${Q}:meta`, 'version'), h.bullmqVersionString(5));
  });
});

test("a tree over a 5.x and a 6.x queue, or under a parent of the other major: exit 5, nothing written", async () => {
  await withQueue(5, async ctx => {
    const q6 = h.newQueue('vc6', ctx.prefix, { bullmqMajor: 6 });
    try {
      await q6.add('n', {});
      ctx.before = await keyspace(ctx.client, ctx.prefix);
      for (const [input, opts] of [
        [tree(Q, 'vc6'), {}],
        [tree('vc6', Q), {}],
        [tree(Q, 'vc6'), { env: env('') }],
      ]) {
        const r = h.bullc(['flow', 'add', '-'], { prefix: ctx.prefix, input, ...opts });
        assert.equal(r.status, 5, r.stderr);
        assert.match(r.stderr, new RegExp(`${ctx.prefix}:${Q}\\b.*bullmq:5\\.`), 'names the 5.x queue');
        assert.match(r.stderr, new RegExp(`${ctx.prefix}:vc6\\b.*bullmq:6\\.`), 'names the 6.x queue');
        assert.deepEqual(await keyspace(ctx.client, ctx.prefix), ctx.before, 'nothing written');
      }
      await refused(ctx, ['flow', 'add', '-', '--bullmq-version', '5'], { input: tree(Q, 'vc6') });
    } finally {
      await q6.close();
    }
  });
  await withQueue(6, async ctx => {
    // the Node Queue's job 1 as the parent of a tree whose own queues have no meta
    const parent = { id: '1', queue: `${ctx.prefix}:${Q}` };
    const r = await refused(ctx, ['flow', 'add', '-', '--bullmq-version', '5'], { input: tree('fresh', 'fresh', { parent }) });
    assert.match(r.stderr, new RegExp(`queue ${ctx.prefix}:${Q}\\b`), "names the parent's queue");
  });
});
