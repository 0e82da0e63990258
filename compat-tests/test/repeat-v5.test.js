// SPDX-License-Identifier: MIT
// Legacy repeatable jobs on queues Node BullMQ 5.81.5 owns (its Queue.add
// with `repeat` and its Repeat class), bullc beside Node 5 both ways: the
// same series run by bullc-worker and by a Node 5 worker side by side (the
// same job ids in the same time slots, counts, repeat entries and options,
// in Node's order), bullc's add with `repeat` (`bullc add` and the
// asynchronous bullc_aqueue_add) writing what Node 5's Queue.add writes and a
// Node 5 worker running it, limit and endDate ending
// a series as in Node 5, keys of the legacy shape (Node 5's Repeat path
// proper), and BullMQ 6 queues refusing `repeat`, nothing written.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { startReady, killAll } = require('../lib/worker-proc');

after(killAll);

const v5 = { bullmqMajor: 5 };

// Everything under `prefix` with the prefix, the time slots and the clock
// readings taken out: what must be equal between a Node and a bullc run.
async function picture(client, prefix) {
  const out = {};
  const slot = s => s.replace(/:\d{13}\b/g, ':T');
  for (const k of (await client.keys(`${prefix}:*`)).sort()) {
    const key = slot(k.replace(prefix, 'P'));
    const type = await client.type(k);
    if (type === 'hash') {
      const v = await client.hgetall(k);
      for (const f of ['timestamp', 'processedOn', 'finishedOn', 'delay']) if (f in v) v[f] = 'N';
      if (v.nrjid) v.nrjid = slot(v.nrjid);
      if (v.opts) {
        // the keys' order is the add script's (Lua's table order): compared as stored
        v.keyOrder = Object.keys(JSON.parse(v.opts));
        const o = JSON.parse(v.opts);
        for (const f of ['timestamp', 'delay', 'prevMillis']) if (f in o) o[f] = 'N';
        if (o.repeat && 'offset' in o.repeat) o.repeat.offset = 'N';
        o.jobId = slot(o.jobId);
        v.opts = o;
      }
      out[key] = v;
    } else if (type === 'zset') {
      out[key] = (await client.zrange(k, 0, -1)).map(slot);
    } else if (type === 'list') {
      out[key] = (await client.lrange(k, 0, -1)).map(slot);
    } else if (type !== 'stream') {
      out[key] = type;
    }
  }
  return out;
}

// The ids of a series' jobs, in order: repeat:<key>:<millis>
const seriesIds = async (client, prefix) =>
  (await client.zrange(`${prefix}:q:completed`, 0, -1)).sort((a, b) => Number(a.split(':').pop()) - Number(b.split(':').pop()));

for (const [title, opts, data] of [
  ['every', { repeat: { every: 1000, limit: 3 } }, { n: 1 }],
  ['pattern', { repeat: { pattern: '*/1 * * * * *', limit: 3 } }, { n: 2 }],
  ['a key of the legacy shape', { repeat: { every: 1000, limit: 3, key: 'a:b:c:d:e' } }, { id: 7 }],
])
  test(`a Node 5 repeatable job (${title}): bullc-worker runs the series a Node 5 worker runs, job for job`, async () => {
    const nodePrefix = h.uniquePrefix('rep5n');
    const bullcPrefix = h.uniquePrefix('rep5c');
    const nodeQueue = h.newQueue('q', nodePrefix, v5);
    const bullcQueue = h.newQueue('q', bullcPrefix, v5);
    const client = h.redis();
    let nodeWorker, bw;
    try {
      // both series start in the same time slot, each with a worker of its own
      nodeWorker = h.newWorker('q', nodePrefix, async job => job.data, v5);
      bw = await startReady(['--queue', 'q', '--builtin', 'echo', '--bullmq-version', '5'], { prefix: bullcPrefix });
      await nodeWorker.waitUntilReady();
      // early in a second, so both adds fall in the same slot
      while (Date.now() % 1000 > 300) await h.sleep(20);
      await Promise.all([nodeQueue.add('tick', data, opts), bullcQueue.add('tick', data, opts)]);
      for (const p of [nodePrefix, bullcPrefix])
        await h.eventually(async () => (await client.zcard(`${p}:q:completed`)) === 3, 15000, `3 iterations under ${p}`);
      await h.sleep(1500); // a fourth would be past the limit
      const [n, c] = [await seriesIds(client, nodePrefix), await seriesIds(client, bullcPrefix)];
      assert.equal(c.length, 3, c.join());
      assert.equal(await client.zcard(`${bullcPrefix}:q:delayed`), 0, 'the limit ended the series');
      // the same ids: the same key, and the same time slots
      assert.deepEqual(c, n);
      assert.deepEqual(await picture(client, bullcPrefix), await picture(client, nodePrefix));
      assert.doesNotMatch(bw.text(), /Failed to add repeatable job/);
    } finally {
      if (bw) await bw.stop();
      await h.closeAll(nodeWorker, nodeQueue, bullcQueue, client);
    }
  });

test("bullc add and bullc_aqueue_add with repeat on a 5.x queue write what Node 5's Queue.add writes, and a Node 5 worker runs them", async () => {
  const nodePrefix = h.uniquePrefix('rep5an');
  const bullcPrefix = h.uniquePrefix('rep5ac');
  const asyncPrefix = h.uniquePrefix('rep5aa');
  const nodeQueue = h.newQueue('q', nodePrefix, v5);
  const bullcQueue = h.newQueue('q', bullcPrefix, v5);
  const asyncQueue = h.newQueue('q', asyncPrefix, v5);
  const client = h.redis();
  let worker;
  try {
    // a Node 5 Queue writes the meta.version bullc then speaks by (auto)
    for (const q of [nodeQueue, bullcQueue, asyncQueue]) await q.add('seed', null, { jobId: 'seed' });
    const end = Date.now() + 3600000;
    const cases = [
      ['ev', { a: 1 }, { repeat: { every: 60000, limit: 3 } }],
      ['cr', { b: 2 }, { repeat: { pattern: '0 */5 * * * *', tz: 'Europe/Paris' }, attempts: 2 }],
      ['now', { id: 'X' }, { jobId: 'myid', repeat: { every: 30000, immediately: true } }],
      ['leg', { n: 1 }, { repeat: { every: 60000, key: 'x:y:z:w:v' } }],
      ['end', {}, { repeat: { pattern: '0 0 * * * *', endDate: end }, priority: 3 }],
      ['old', {}, { repeat: { cron: '0 0 1 * *' } }],
    ];
    for (const [name, data, opts] of cases) {
      const job = await nodeQueue.add(name, data, opts);
      const id = h.bullcOk(['add', 'q', name, JSON.stringify(data), '--opts', JSON.stringify(opts)], { prefix: bullcPrefix }).trim();
      const aid = h.bullcAqueueAdd(asyncPrefix, 'q', name, data, opts);
      for (const got of [id, aid]) assert.equal(got.replace(/:\d{13}$/, ''), job.id.replace(/:\d{13}$/, ''), name);
    }
    const want = await picture(client, nodePrefix);
    assert.deepEqual(await picture(client, bullcPrefix), want, 'bullc add');
    assert.deepEqual(await picture(client, asyncPrefix), want, 'bullc_aqueue_add');
    const listed = async q => (await q.getRepeatableJobs()).map(j => ({ ...j, next: 'N' }));
    assert.deepEqual(await listed(bullcQueue), await listed(nodeQueue));
    assert.deepEqual(await listed(asyncQueue), await listed(nodeQueue));
    // a limit already reached: no job, no id, nothing written, as Node returns none
    assert.equal(await nodeQueue.add('spent', {}, { repeat: { every: 1000, limit: 0 } }), undefined);
    assert.equal(h.bullcAqueueAdd(asyncPrefix, 'q', 'spent', {}, { repeat: { every: 1000, limit: 0 } }), '');
    assert.deepEqual(await picture(client, asyncPrefix), await picture(client, nodePrefix));

    // a Node 5 worker runs bullc's, from either add: every 500 ms, three times
    const seen = { beat: [], abeat: [] };
    const every = { repeat: { every: 500, limit: 3 } };
    const id = h.bullcOk(['add', 'q', 'beat', '{"v":5}', '--opts', JSON.stringify(every)], { prefix: bullcPrefix }).trim();
    const aid = h.bullcAqueueAdd(bullcPrefix, 'q', 'abeat', { v: 5 }, every);
    for (const i of [id, aid]) assert.match(i, /^repeat:[0-9a-f]{32}:\d+$/);
    worker = h.newWorker('q', bullcPrefix, async job => {
      if (seen[job.name]) seen[job.name].push([job.id, job.opts.repeat.count]);
    }, v5);
    await h.eventually(() => seen.beat.length === 3 && seen.abeat.length === 3, 10000, 'three iterations of each');
    await h.sleep(800);
    for (const [name, first] of [['beat', id], ['abeat', aid]]) {
      assert.deepEqual(seen[name].map(s => s[1]), [1, 2, 3], name);
      assert.equal(seen[name][0][0], first, name);
      assert.equal(new Set(seen[name].map(s => s[0].split(':')[1])).size, 1, `${name}: one repeat key`);
    }
  } finally {
    await h.closeAll(worker, nodeQueue, bullcQueue, asyncQueue, client);
  }
});

test('endDate ends a series as in Node 5: no job past it, and an add past it refused', async () => {
  const prefix = h.uniquePrefix('rep5end');
  const queue = h.newQueue('q', prefix, v5);
  const client = h.redis();
  let bw;
  try {
    await queue.add('seed', null, { jobId: 'seed' });
    const past = h.bullc(['add', 'q', 'x', '{}', '--opts', JSON.stringify({ repeat: { every: 1000, endDate: Date.now() - 1000 } })], { prefix });
    assert.equal(past.status, 2, past.stderr);
    assert.match(past.stderr, /End date must be greater than current timestamp/);
    const endDate = Date.now() + 2600;
    h.bullcOk(['add', 'q', 'tick', '{}', '--opts', JSON.stringify({ repeat: { every: 1000, endDate } })], { prefix });
    bw = await startReady(['--queue', 'q', '--builtin', 'noop', '--bullmq-version', '5'], { prefix });
    await h.sleep(Math.max(0, endDate - Date.now()) + 2000);
    const ids = await seriesIds(client, prefix);
    const ticks = ids.filter(id => id.startsWith('repeat:'));
    assert.ok(ticks.length >= 2 && ticks.length <= 4, ids.join());
    for (const t of ticks) assert.ok(Number(t.split(':').pop()) <= endDate + 1000, t);
    assert.equal(await client.zcard(`${prefix}:q:delayed`), 0, 'nothing scheduled past the end');
  } finally {
    if (bw) await bw.stop();
    await h.closeAll(queue, client);
  }
});

test('repeat on a BullMQ 6 queue is refused, nothing written', async () => {
  const prefix = h.uniquePrefix('rep6');
  const queue = h.newQueue('q', prefix, { bullmqMajor: 6 });
  const client = h.redis();
  try {
    await queue.add('seed', null, { jobId: 'seed' });
    const before = (await client.keys(`${prefix}:*`)).sort();
    const r = h.bullc(['add', 'q', 'x', '{}', '--opts', '{"repeat":{"every":1000}}'], { prefix });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /repeat.*BullMQ 6 removed.*job scheduler/);
    assert.deepEqual((await client.keys(`${prefix}:*`)).sort(), before);
  } finally {
    await h.closeAll(queue, client);
  }
});
