// SPDX-License-Identifier: MIT
// Job schedulers on a queue Node BullMQ 5.81.5 owns, where 5.x differs from
// 6.x: bullc (auto: the queue's meta.version) upserts there and keeps the
// 5.x meta; get and list answer what Node 5's do, which still reads legacy
// repeatable jobs (their hashes, or a colon key's parts) and removes nothing;
// bullc-worker speaking 5.x tells a legacy repeatable job by Node 5's rule
// (five or more key segments and no scheduler hash) and runs it as Node 5's
// Repeat class does (compat_repeat_v5 covers that class in full). The rest
// runs as compat5_scheduler_interop, _cli, _config.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { startReady, killAll } = require('../lib/worker-proc');

after(killAll);

const v5 = { bullmqMajor: 5 };
const json = v => JSON.parse(JSON.stringify(v));

test('bullc scheduler upsert on a 5.x queue keeps its meta.version, and a Node 5 worker runs it', async () => {
  const prefix = h.uniquePrefix('sched5-up');
  const queue = h.newQueue('q', prefix, v5);
  const client = h.redis();
  const seen = [];
  const worker = h.newWorker('q', prefix, async job => {
    seen.push(job);
  }, v5);
  try {
    await queue.add('first', {});
    const id = h.bullcOk(['scheduler', 'upsert', 'q', 'beat', '--every', '250', '--data', '{"v":5}'], { prefix }).trim();
    assert.match(id, /^repeat:beat:\d+$/);
    await h.eventually(async () => seen.filter(j => j.repeatJobKey === 'beat').length >= 4, 10000, 'four iterations');
    assert.equal(await client.hget(`${prefix}:q:meta`, 'version'), h.bullmqVersionString(5));
    const beat = seen.filter(j => j.repeatJobKey === 'beat');
    for (const j of beat) assert.deepEqual([j.name, j.data], ['beat', { v: 5 }]);
    const s = await queue.getJobScheduler('beat');
    assert.ok(s.iterationCount >= 4, JSON.stringify(s));
  } finally {
    await h.closeAll(worker, queue, client);
  }
});

test('bullc scheduler list and get on a 5.x queue with legacy repeatable jobs answer as Node 5 does', async () => {
  const prefix = h.uniquePrefix('sched5-list');
  const queue = h.newQueue('q', prefix, v5);
  const client = h.redis();
  try {
    const t = Date.now() + 3600000;
    await queue.upsertJobScheduler('real', { every: 120000 }, { name: 'r', data: { a: 1 } });
    await queue.add('legacy', { x: 1 }, { repeat: { every: 60000 } }); // a 5.x repeatable job: an md5 key with a hash
    await queue.add('cronleg', { x: 2 }, { repeat: { pattern: '0 0 * * *', tz: 'Europe/Paris' } });
    // what older 5.x releases left: a legacy key without a hash, and an id whose hash is gone
    const old = 'old:7:1893456000000:Europe/Paris:0 * * * *';
    await client.zadd(`${prefix}:q:repeat`, t, old, t + 1, 'ghost');
    const count = await queue.getJobSchedulersCount();
    assert.equal(count, 5);
    assert.equal(h.bullcOk(['scheduler', 'count', 'q'], { prefix }).trim(), String(count));
    for (const asc of [false, true]) {
      const args = ['--json', 'scheduler', 'list', 'q'];
      if (asc) args.push('--asc');
      const mine = JSON.parse(h.bullcOk(args, { prefix }));
      assert.deepEqual(mine, json(await queue.getJobSchedulers(0, -1, asc)), `asc ${asc}`);
    }
    assert.equal(await client.zcard(`${prefix}:q:repeat`), 5, 'Node 5 and bullc listing it removed nothing');
    const legacyKeys = (await queue.getRepeatableJobs()).map(j => j.key).filter(k => k !== 'ghost');
    for (const id of [old, 'real', 'x:y', ...legacyKeys]) {
      const mine = JSON.parse(h.bullcOk(['--json', 'scheduler', 'get', 'q', id], { prefix }));
      assert.deepEqual(mine, json(await queue.getJobScheduler(id)), id);
    }
    assert.equal(await queue.getJobScheduler('ghost'), undefined);
    assert.equal(h.bullc(['scheduler', 'get', 'q', 'ghost'], { prefix }).status, 4);
  } finally {
    await h.closeAll(queue, client);
  }
});

test('bullc-worker speaking 5.x: a legacy repeatable key by Node 5\'s rule runs through Node 5\'s Repeat path', async () => {
  const prefix = h.uniquePrefix('sched5-leg');
  const queue = h.newQueue('q', prefix, v5);
  let w;
  try {
    // five segments whose third is no end date: a scheduler id for Node 6's
    // rule, a legacy key for Node 5's (no `ic` in a hash of that id), whose
    // next iteration Node 5's Repeat.updateRepeatableJob schedules
    const key = 'a:b:c:d:e';
    await queue.add('old', { n: 1 }, { repeat: { every: 500, key, immediately: true, limit: 2 } });
    w = await startReady(['--queue', 'q', '--builtin', 'echo', '--bullmq-version', '5'], { prefix });
    await h.eventually(async () => (await queue.getCompletedCount()) === 2, 10000, 'both iterations completed');
    assert.doesNotMatch(w.text(), /Failed to add repeatable job|not supported in BullMQ v6/);
    const done = await queue.getCompleted();
    assert.deepEqual(done.map(j => j.repeatJobKey), [key, key]);
    assert.deepEqual(done.map(j => j.opts.repeat.count).sort(), [1, 2]);
    // the second is due at its time plus the offset the first carries (createNextJob's delay)
    const second = done.find(j => j.opts.repeat.count === 2);
    assert.equal(typeof second.opts.repeat.offset, 'number');
    assert.equal(second.opts.timestamp + second.opts.delay, second.opts.prevMillis + second.opts.repeat.offset);
    assert.equal(await queue.getJobSchedulersCount(), 1, 'the legacy entry stays, no scheduler hash made');
    assert.equal(await queue.getDelayedCount(), 0, 'the limit ended it');
  } finally {
    if (w) await w.stop();
    await h.closeAll(queue);
  }
});
