// SPDX-License-Identifier: MIT
// `bullc scheduler`: schedulers made by bullc run under a Node worker with
// Node's iterations and template, and get/list/count/remove agree with
// Node's getJobScheduler, getJobSchedulers, getJobSchedulersCount and
// removeJobScheduler on the same Redis; the scheduler hash and the first
// iteration bullc writes are Node's for the same upsert; invalid input exits
// 2 and writes nothing. Runs against BullMQ 6.7.0 and (compat5_) 5.81.5.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');

const slotOf = job => Number(job.id.split(':').pop());

test('a bullc-made every scheduler runs under a Node worker with its template', async () => {
  const prefix = h.uniquePrefix('sched-cli');
  const queue = h.newQueue('q', prefix);
  const seen = [];
  const worker = h.newWorker('q', prefix, async job => {
    seen.push({ id: job.id, name: job.name, data: job.data, attempts: job.opts.attempts });
    return 1;
  });
  try {
    const id = h.bullcOk(['scheduler', 'upsert', 'q', 'beat', '--every', '300', '--name', 'pulse', '--data',
      '{"v":7}', '--opts', '{"attempts":2}'], { prefix }).trim();
    assert.match(id, /^repeat:beat:\d+$/);
    await h.eventually(async () => seen.length >= 5, 10000, 'five iterations');
    const ms = seen.map(slotOf).sort((a, b) => a - b);
    assert.equal(new Set(ms).size, ms.length, `no iteration twice: ${ms}`);
    for (const s of seen) assert.deepEqual([s.name, s.data, s.attempts], ['pulse', { v: 7 }, 2]);
    const node = await queue.getJobScheduler('beat');
    assert.equal(node.every, 300);
    assert.equal(node.name, 'pulse');
    assert.deepEqual(node.template, { data: { v: 7 }, opts: { attempts: 2 } });
    // bullc's view of it is Node's
    const got = JSON.parse(h.bullcOk(['--json', 'scheduler', 'get', 'q', 'beat'], { prefix }));
    const now = await queue.getJobScheduler('beat');
    assert.deepEqual(got, JSON.parse(JSON.stringify(now)));
  } finally {
    await h.closeAll(worker, queue);
  }
});

// What an upsert wrote: the scheduler hash (its template options parsed:
// the script stores them as JSON, in its own key order), its score, and the first iteration's job hash less the times of
// the call itself (timestamp, delay). An `every` without a start date or an
// offset starts at the call's own millisecond, so the cases below have one.
async function written(client, prefix, id, jobId) {
  const sched = await client.hgetall(`${prefix}:q:repeat:${id}`);
  if (sched.opts !== undefined) sched.opts = JSON.parse(sched.opts);
  const job = await h.jobHash(client, prefix, 'q', jobId);
  for (const o of [job, job.opts]) {
    delete o.timestamp;
    delete o.delay;
  }
  return { sched, score: await client.zscore(`${prefix}:q:repeat`, id), job };
}

test('the scheduler hash and first iteration bullc writes are the ones Node writes for the same upsert', async () => {
  const client = h.redis();
  const nodePrefix = h.uniquePrefix('sched-eq-node');
  const mine = h.uniquePrefix('sched-eq-bullc');
  const queue = h.newQueue('q', nodePrefix);
  try {
    const start = Date.now() + 7200000;
    const tmplOpts = { attempts: 3, backoff: { type: 'fixed', delay: 50 }, removeOnComplete: 10, keepLogs: 5,
      priority: 2 };
    for (const [id, repeat, args, template] of [
      ['dates', { every: 3600000, limit: 7, startDate: start, endDate: start + 86400000 },
        ['--every', '3600000', '--limit', '7', '--start-date', String(start), '--end-date', String(start + 86400000)],
        { name: 'rep', data: { a: [1, 2], s: 'x' }, opts: tmplOpts }],
      ['off', { every: 3600000, offset: 1234 }, ['--every', '3600000', '--offset', '1234'], { name: 'o' }],
      ['cron', { pattern: '0 30 9 * * 1-5', tz: 'Europe/Berlin' }, ['--pattern', '0 30 9 * * 1-5', '--tz',
        'Europe/Berlin'], { name: 'c', data: { k: true }, opts: { removeOnFail: true, lifo: true } }],
      ['plain', { every: 5000000, startDate: start + 5 }, ['--every', '5000000', '--start-date', String(start + 5)],
        undefined],
    ]) {
      const nodeJob = await queue.upsertJobScheduler(id, repeat, template);
      const cli = ['scheduler', 'upsert', 'q', id, ...args];
      if (template) cli.push('--name', template.name);
      if (template && template.data) cli.push('--data', JSON.stringify(template.data));
      if (template && template.opts) cli.push('--opts', JSON.stringify(template.opts));
      const jobId = h.bullcOk(cli, { prefix: mine }).trim();
      assert.equal(jobId, nodeJob.id, `${id}: the first iteration's id`);
      const node = await written(client, nodePrefix, id, nodeJob.id);
      assert.ok(Object.keys(node.sched).length > 0 && node.job.name, `${id}: Node wrote its scheduler`);
      assert.deepEqual(await written(client, mine, id, jobId), node, id);
    }
  } finally {
    await h.closeAll(queue, client);
  }
});

test('bullc scheduler get, list, count and remove answer as Node does', async () => {
  const prefix = h.uniquePrefix('sched-cli');
  const queue = h.newQueue('q', prefix);
  try {
    const start = Date.now() + 3600000;
    await queue.upsertJobScheduler('a', { every: 60000, limit: 5, offset: 7 }, { name: 'x', data: { a: 1 } });
    await queue.upsertJobScheduler('b', { every: 120000, startDate: start, endDate: start + 86400000 });
    h.bullcOk(['scheduler', 'upsert', 'q', 'c', '--every', '90000', '--limit', '3', '--start-date',
      new Date(start + 1000).toISOString()], { prefix });
    assert.equal(h.bullcOk(['scheduler', 'count', 'q'], { prefix }).trim(), '3');
    assert.equal(await queue.getJobSchedulersCount(), 3);
    for (const asc of [false, true]) {
      const args = ['--json', 'scheduler', 'list', 'q'];
      if (asc) args.push('--asc');
      const mine = JSON.parse(h.bullcOk(args, { prefix }));
      const node = JSON.parse(JSON.stringify(await queue.getJobSchedulers(0, -1, asc)));
      assert.deepEqual(mine, node);
    }
    const two = JSON.parse(h.bullcOk(['--json', 'scheduler', 'list', 'q', '--start', '1', '--end', '1'], { prefix }));
    assert.deepEqual(two, JSON.parse(JSON.stringify(await queue.getJobSchedulers(1, 1))));
    const c = await queue.getJobScheduler('c');
    assert.equal(c.startDate, start + 1000);
    assert.equal(c.limit, 3);
    // a missing scheduler: exit 4, for get and remove
    assert.equal(h.bullc(['scheduler', 'get', 'q', 'nope'], { prefix }).status, 4);
    assert.equal(h.bullc(['scheduler', 'remove', 'q', 'nope'], { prefix }).status, 4);
    h.bullcOk(['scheduler', 'remove', 'q', 'a'], { prefix });
    assert.equal(await queue.getJobScheduler('a'), undefined);
    assert.equal(await queue.getJobSchedulersCount(), 2);
  } finally {
    await h.closeAll(queue);
  }
});

test('invalid scheduler input exits 2 and writes nothing', async () => {
  const prefix = h.uniquePrefix('sched-cli');
  const r = h.redis();
  try {
    const past = String(Date.now() - 1000);
    for (const [args, msg] of [
      [['--every', '100', '--pattern', '* * * * *'], /one of --every and --pattern/],
      [[], /one of --every and --pattern/],
      [['--every', '0'], /--every must be a whole number/],
      [['--every', 'x'], /--every must be a whole number/],
      [['--every', '100', '--end-date', past], /End date must be greater than current timestamp/],
      [['--pattern', '* * * * *', '--immediately', '--start-date', String(Date.now() + 5000)],
        /Both .immediately and .startDate/],
      [['--every', '100', '--start-date', 'tomorrow'], /--start-date must be epoch milliseconds or an ISO date/],
      [['--every', '100', '--start-date', '2030-01-01T10:00:00'], /ISO date/],
      [['--every', '100', '--data', '{bad'], /JSON|data/i],
      [['--every', '100', '--opts', '{"attempts":"x"}'], /attempts/],
      [['--every', '100', '--limit', '-1'], /--limit must be a whole number/],
      [['--every', '100', '--tz', 'Europe/Paris'], /--tz goes with --pattern/],
    ]) {
      const res = h.bullc(['scheduler', 'upsert', 'q', 'k', ...args], { prefix });
      assert.equal(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.match(res.stderr, msg, args.join(' '));
    }
    assert.equal(h.bullc(['scheduler', 'frob', 'q'], { prefix }).status, 2);
    assert.equal(h.bullc(['scheduler', 'get', 'q'], { prefix }).status, 2);
    assert.deepEqual(await h.keysOf(r, prefix), [], 'nothing written');
  } finally {
    r.disconnect();
  }
});

test('a bullc-made cron scheduler with a time zone starts where Node starts it, and a Node worker runs it', async () => {
  const prefix = h.uniquePrefix('sched-cli');
  const queue = h.newQueue('q', prefix);
  try {
    const pattern = '0 45 23 * * 1-5';
    for (const tz of ['Asia/Kathmandu', 'Australia/Lord_Howe', 'America/St_Johns']) {
      const key = `c-${tz.replace('/', '-')}`;
      const id = h.bullcOk(['scheduler', 'upsert', 'q', key, '--pattern', pattern, '--tz', tz], { prefix }).trim();
      await queue.upsertJobScheduler(`${key}-node`, { pattern, tz });
      const node = await queue.getJobScheduler(`${key}-node`);
      assert.equal(id, `repeat:${key}:${node.next}`, tz);
      const mine = await queue.getJobScheduler(key);
      assert.deepEqual([mine.pattern, mine.tz, mine.next], [pattern, tz, node.next]);
    }
    // an invalid pattern or zone: cron-parser's refusal, exit 2, nothing written
    for (const args of [['--pattern', '61 * * * *'], ['--pattern', '* * * * *', '--tz', 'Mars/Olympus']]) {
      const r = h.bullc(['scheduler', 'upsert', 'q', 'bad', ...args], { prefix });
      assert.equal(r.status, 2, r.stderr);
      assert.equal(await queue.getJobScheduler('bad'), undefined);
    }
    // every second, under a Node worker
    const seen = [];
    const worker = h.newWorker('q', prefix, async job => {
      if (job.repeatJobKey === 'sec') seen.push(Number(job.id.split(':').pop()));
    });
    try {
      h.bullcOk(['scheduler', 'upsert', 'q', 'sec', '--pattern', '* * * * * *'], { prefix });
      await h.eventually(async () => seen.length >= 3, 10000, 'three iterations');
      assert.equal(new Set(seen).size, seen.length, `no iteration twice: ${seen}`);
    } finally {
      await worker.close();
    }
  } finally {
    await h.closeAll(queue);
  }
});
