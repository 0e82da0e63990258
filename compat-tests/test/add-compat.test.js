// SPDX-License-Identifier: MIT
// `bullc add` / `bullc add-bulk` against Node's `queue.add` / `queue.addBulk`
// on the same Redis: for every job option, the two jobs must be the same to
// Node (Job.fromId), in Redis (the job hash, the structure the job is in, the
// events, the queue meta), and bullc must fail the way its exit codes say.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { ADD_CORPUS } = require('../lib/opts-corpus');

const Q = 'cmp';
const NAME = 'job-name';
const DATA = { foo: 'bar', n: [1, 2.5, -3, 0], nested: { ok: true, none: null, deep: { s: 'ünï ✓' } }, s: 'a "q" \\ / end' };

// Which of the add structures hold the job; and where.
async function placement(client, prefix, id) {
  const base = `${prefix}:${Q}:`;
  const [wait, delayed, prioritized] = await Promise.all([
    client.lrange(`${base}wait`, 0, -1),
    client.zscore(`${base}delayed`, id),
    client.zscore(`${base}prioritized`, id),
  ]);
  return {
    wait: wait.includes(id) ? wait.indexOf(id) : null,
    delayed: delayed !== null,
    prioritized: prioritized,
    delayedScore: delayed,
  };
}

// The events stream as [{event, jobId, ...}] (stream ids dropped).
async function events(client, prefix, { keepDelayValue }) {
  const raw = await client.xrange(`${prefix}:${Q}:events`, '-', '+');
  return raw.map(([, fields]) => {
    const o = {};
    for (let i = 0; i < fields.length; i += 2) o[fields[i]] = fields[i + 1];
    // `delay` of a 'delayed' event is the absolute run time: timestamp based
    if (o.event === 'delayed' && !keepDelayValue) o.delay = typeof o.delay;
    return o;
  });
}

const jobView = job => ({
  id: job.id,
  name: job.name,
  data: job.data,
  opts: job.opts,
  delay: job.delay,
  priority: job.priority,
  deduplicationId: job.deduplicationId,
  attemptsMade: job.attemptsMade,
  attemptsStarted: job.attemptsStarted,
  progress: job.progress,
  parentKey: job.parentKey,
  returnvalue: job.returnvalue,
});

// The asynchronous add (bullc_aqueue_add): the library stores data as given,
// the CLI is what minifies, so it gets it minified.
const aqueueAdd = (prefix, name, data, opts) => h.bullcAqueueAdd(prefix, Q, name, data, opts);

// bullc gets the data pretty-printed: it must store it minified, as
// JSON.stringify does.
const ADDERS = [
  ['bullc add', (p, opts) => h.bullcAdd(p, Q, NAME, JSON.stringify(DATA, null, 2), opts)],
  ['bullc_aqueue_add', (p, opts) => aqueueAdd(p, NAME, DATA, opts)],
];

for (const [via, add] of ADDERS) {
  test(`${via} stores each option exactly as Node queue.add does`, async t => {
    const client = h.redis();
    try {
      for (const { title, opts } of ADD_CORPUS) {
        await t.test(title, async () => {
          const pb = h.uniquePrefix('cmpb');
          const pn = h.uniquePrefix('cmpn');
          const idB = add(pb, opts);
          const qn = h.newQueue(Q, pn);
          const qb = h.newQueue(Q, pb, { skipMetasUpdate: true });
          try {
            const jobN = await qn.add(NAME, structuredClone(DATA), structuredClone(opts));
            assert.equal(idB, jobN.id, 'same job id (separate queues, same history)');
            const timestampGiven = Boolean(opts.timestamp);

            // 1. what Node reads back
            const [b, n] = await Promise.all([h.Job.fromId(qb, idB), h.Job.fromId(qn, jobN.id)]);
            assert.ok(b, `Job.fromId finds bullc's job ${idB}`);
            assert.deepEqual(jobView(b), jobView(n));
            assert.deepEqual(b.data, DATA);
            if (timestampGiven) assert.equal(b.timestamp, opts.timestamp);
            else assert.ok(Math.abs(b.timestamp - Date.now()) < 60000, `timestamp ${b.timestamp} is now`);
            assert.equal(await b.getState(), await n.getState(), 'same state');

            // 2. the job hashes, field by field
            const [hb, hn] = await Promise.all([h.jobHash(client, pb, Q, idB), h.jobHash(client, pn, Q, jobN.id)]);
            assert.deepEqual(Object.keys(hb).sort(), Object.keys(hn).sort(), 'same hash fields');
            for (const f of Object.keys(hn)) {
              if (f === 'timestamp' && !timestampGiven) continue;
              assert.deepEqual(hb[f], hn[f], `hash field ${f}`);
            }
            assert.equal(hb.data, JSON.stringify(DATA), 'data stored minified, as JSON.stringify');

            // 3. the structure the job is in
            const [sb, sn] = await Promise.all([placement(client, pb, idB), placement(client, pn, jobN.id)]);
            if (!timestampGiven) sb.delayedScore = sn.delayedScore = sb.delayed;
            assert.deepEqual(sb, sn, 'wait / delayed / prioritized');
            const expected = opts.delay > 0 ? 'delayed' : opts.priority > 0 ? 'prioritized' : 'wait';
            assert.ok(expected === 'wait' ? sb.wait !== null : sb[expected], `in ${expected}`);

            // 4. the deduplication key
            if (opts.deduplication) {
              const key = p => `${p}:${Q}:de:${opts.deduplication.id}`;
              assert.equal(await client.get(key(pb)), idB, 'bullc set the deduplication key to the job id');
              assert.equal(await client.get(key(pn)), jobN.id);
              const [tb, tn] = await Promise.all([client.pttl(key(pb)), client.pttl(key(pn))]);
              assert.equal(tb > 0, tn > 0, `deduplication key ttl: ${tb} vs ${tn}`);
            }

            // 5. events and queue meta
            const keep = { keepDelayValue: timestampGiven };
            assert.deepEqual(await events(client, pb, keep), await events(client, pn, keep), 'events');
            await h.eventually(async () => (await client.hget(`${pn}:${Q}:meta`, 'version')) !== null, 5000, 'Node meta');
            assert.deepEqual(await client.hgetall(`${pb}:${Q}:meta`), await client.hgetall(`${pn}:${Q}:meta`), 'meta');
            assert.deepEqual(await client.get(`${pb}:${Q}:id`), await client.get(`${pn}:${Q}:id`), 'id counter');
          } finally {
            await h.closeAll(qn, qb);
          }
        });
      }
    } finally {
      await h.closeAll(client);
    }
  });
}

test('a Node Worker processes the jobs bullc_aqueue_add added, with their options', async () => {
  const prefix = h.uniquePrefix();
  const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
  const seen = new Map();
  const ids = [
    aqueueAdd(prefix, 'plain', { n: 1 }),
    aqueueAdd(prefix, 'urgent', { n: 2 }, { priority: 1, attempts: 3 }),
    aqueueAdd(prefix, 'custom', { n: 3 }, { jobId: 'aq-1' }),
    aqueueAdd(prefix, 'later', { n: 4 }, { delay: 300 }),
  ];
  assert.equal(ids[2], 'aq-1');
  const w = h.newWorker(Q, prefix, async job => {
    seen.set(job.id, { name: job.name, data: job.data, opts: job.opts, delayed: job.processedOn - job.timestamp });
    return job.data.n * 10;
  });
  try {
    await h.eventually(async () => seen.size === 4, 20000, 'the four jobs processed by Node');
    assert.deepEqual(seen.get(ids[0]).data, { n: 1 });
    assert.equal(seen.get(ids[1]).name, 'urgent');
    assert.equal(seen.get(ids[1]).opts.priority, 1);
    assert.equal(seen.get(ids[1]).opts.attempts, 3);
    assert.deepEqual(seen.get('aq-1').data, { n: 3 });
    assert.ok(seen.get(ids[3]).delayed >= 300, `the delayed job ran ${seen.get(ids[3]).delayed} ms after its add`);
    for (const [i, id] of ids.entries()) {
      await h.eventually(async () => (await q.getJobState(id)) === 'completed', 5000, `job ${id} completed`);
      assert.equal((await h.Job.fromId(q, id)).returnvalue, (i + 1) * 10);
    }
  } finally {
    await h.closeAll(w, q);
  }
});

test('the whole corpus in one queue: same ids, list orders, scores and events', async () => {
  const client = h.redis();
  const pb = h.uniquePrefix('cmpb');
  const pn = h.uniquePrefix('cmpn');
  const qn = h.newQueue(Q, pn);
  try {
    const timestamp = 1720000000000; // fixed, so that delayed scores compare too
    const idsB = [];
    const idsN = [];
    for (const [i, { opts }] of ADD_CORPUS.entries()) {
      const o = { timestamp, ...opts };
      idsB.push(h.bullcAdd(pb, Q, `n${i}`, { i }, o));
      idsN.push((await qn.add(`n${i}`, { i }, structuredClone(o))).id);
    }
    assert.deepEqual(idsB, idsN);
    const base = p => `${p}:${Q}:`;
    for (const list of ['wait']) {
      assert.deepEqual(await client.lrange(base(pb) + list, 0, -1), await client.lrange(base(pn) + list, 0, -1), list);
    }
    for (const zset of ['delayed', 'prioritized']) {
      assert.deepEqual(
        await client.zrange(base(pb) + zset, 0, -1, 'WITHSCORES'),
        await client.zrange(base(pn) + zset, 0, -1, 'WITHSCORES'),
        zset,
      );
    }
    for (const key of ['id', 'pc']) assert.equal(await client.get(base(pb) + key), await client.get(base(pn) + key), key);
    assert.deepEqual(
      await client.zrange(base(pb) + 'marker', 0, -1, 'WITHSCORES'),
      await client.zrange(base(pn) + 'marker', 0, -1, 'WITHSCORES'),
      'marker',
    );
    const keep = { keepDelayValue: true };
    assert.deepEqual(await events(client, pb, keep), await events(client, pn, keep), 'events');
  } finally {
    await h.closeAll(qn, client);
  }
});

// node: "[when custom jobId is provided as empty string] should ignore the empty custom id and generates a numeric id"
test('should ignore the empty custom id and generates a numeric id', async () => {
  const prefix = h.uniquePrefix();
  assert.equal(h.bullcAdd(prefix, Q, 'test', { foo: 'bar' }), '1');
  assert.equal(h.bullcAdd(prefix, Q, 'test', { foo: 'bar' }, { jobId: '' }), '2');
});

// node: "should use the custom jobId if one is provided"
test('should use the custom jobId if one is provided', async () => {
  const prefix = h.uniquePrefix();
  const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
  try {
    assert.equal(h.bullcAdd(prefix, Q, 'test', { foo: 'bar' }, { jobId: 'customjob' }), 'customjob');
    const job = await q.getJob('customjob');
    assert.equal(job.id, 'customjob');
    assert.deepEqual(job.data, { foo: 'bar' });
  } finally {
    await h.closeAll(q);
  }
});

// node: "[.create] saves the job in redis"
test('saves the job in redis', async () => {
  const prefix = h.uniquePrefix();
  const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
  try {
    const timestamp = 1234567890;
    const id = h.bullcAdd(prefix, Q, 'test', { foo: 'bar' }, { timestamp });
    const stored = await h.Job.fromId(q, id);
    assert.equal(stored.id, id);
    assert.equal(stored.data.foo, 'bar');
    assert.equal(typeof stored.opts, 'object');
    assert.equal(stored.opts.timestamp, timestamp);
  } finally {
    await h.closeAll(q);
  }
});

test('an existing jobId or an open deduplication window adds nothing, as in Node', async () => {
  const pb = h.uniquePrefix('cmpb');
  const pn = h.uniquePrefix('cmpn');
  const client = h.redis();
  const qn = h.newQueue(Q, pn);
  try {
    assert.equal(h.bullcAdd(pb, Q, 'a', { v: 1 }, { jobId: 'dup' }), 'dup');
    const again = h.bullc(['add', Q, 'a', '{"v":2}', '--opts', '{"jobId":"dup"}'], { prefix: pb });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.trim(), 'dup');
    assert.match(again.stderr, /already exists/);
    assert.equal(await client.hget(`${pb}:${Q}:dup`, 'data'), '{"v":1}', 'the duplicate did not overwrite the job');
    await qn.add('a', { v: 1 }, { jobId: 'dup' });
    const nAgain = await qn.add('a', { v: 2 }, { jobId: 'dup' });
    assert.equal(nAgain.id, 'dup');

    const first = h.bullcAdd(pb, Q, 'd', { v: 1 }, { deduplication: { id: 'k' } });
    const second = h.bullc(['add', Q, 'd', '{"v":2}', '--opts', '{"deduplication":{"id":"k"}}'], { prefix: pb });
    assert.equal(second.status, 0, second.stderr);
    assert.equal(second.stdout.trim(), first, 'the owner of the window is returned');
    const nFirst = await qn.add('d', { v: 1 }, { deduplication: { id: 'k' } });
    const nSecond = await qn.add('d', { v: 2 }, { deduplication: { id: 'k' } });
    assert.equal(nSecond.id, nFirst.id);
    assert.equal(first, nFirst.id);
    // the counter moved the same way on both sides
    assert.equal(await client.get(`${pb}:${Q}:id`), await client.get(`${pn}:${Q}:id`));
    const keep = { keepDelayValue: false };
    assert.deepEqual(await events(client, pb, keep), await events(client, pn, keep), 'duplicated / deduplicated events');
  } finally {
    await h.closeAll(qn, client);
  }
});

// Adds each step with bullc (under prefix pb) and Node's queue qn; returns
// [bullc's ids, Node's ids].
async function addSteps(pb, qn, steps) {
  const idsB = [];
  const idsN = [];
  for (const { data, opts } of steps) {
    idsB.push(h.bullcAdd(pb, Q, 'd', data, opts));
    idsN.push((await qn.add('d', data, structuredClone(opts))).id);
  }
  return [idsB, idsN];
}

// Each deduplication id's key holds the same owner on both sides, with about the same TTL.
async function sameDedupKeys(client, pb, pn, dedupIds) {
  for (const d of dedupIds) {
    const key = p => `${p}:${Q}:de:${d}`;
    assert.equal(await client.get(key(pb)), await client.get(key(pn)), `owner of ${d}`);
    const [tb, tn] = [await client.pttl(key(pb)), await client.pttl(key(pn))];
    assert.ok(Math.abs(tb - tn) < 5000 || (tb < 0 && tn < 0), `ttl of ${d}: ${tb} vs ${tn}`);
  }
}

test('deduplication with ttl/extend and replace behaves as in Node', async () => {
  const pb = h.uniquePrefix('cmpb');
  const pn = h.uniquePrefix('cmpn');
  const client = h.redis();
  const qn = h.newQueue(Q, pn);
  try {
    const steps = [
      // extend: the owner stays, the window is refreshed
      { data: { s: 1 }, opts: { deduplication: { id: 'ext', ttl: 60000, extend: true } } },
      { data: { s: 2 }, opts: { deduplication: { id: 'ext', ttl: 60000, extend: true } } },
      // replace: a delayed owner is replaced by the newcomer
      { data: { s: 3 }, opts: { delay: 60000, deduplication: { id: 'rep', ttl: 60000, replace: true } } },
      { data: { s: 4 }, opts: { delay: 60000, deduplication: { id: 'rep', ttl: 60000, replace: true } } },
      // replace, but the owner is waiting (not delayed): the newcomer is dropped
      { data: { s: 5 }, opts: { deduplication: { id: 'rep2', replace: true } } },
      { data: { s: 6 }, opts: { deduplication: { id: 'rep2', replace: true } } },
    ];
    const [idsB, idsN] = await addSteps(pb, qn, steps);
    assert.deepEqual(idsB, idsN);
    assert.deepEqual(idsB, ['1', '1', '3', '4', '5', '5']);
    for (const id of ['1', '2', '3', '4', '5', '6']) {
      assert.equal(await client.exists(`${pb}:${Q}:${id}`), await client.exists(`${pn}:${Q}:${id}`), `job ${id} exists`);
    }
    await sameDedupKeys(client, pb, pn, ['ext', 'rep', 'rep2']);
    const keep = { keepDelayValue: false };
    assert.deepEqual(await events(client, pb, keep), await events(client, pn, keep), 'events');
  } finally {
    await h.closeAll(qn, client);
  }
});

test(
  "debounce on a 5.x queue is deduplication under its old name: bullc writes what Node 5 writes",
  // 6.x refuses it ('[when removed debounce option is provided] throws an error')
  { skip: h.bullmqMajor() !== 5 && 'BullMQ 6 removed debounce' },
  async () => {
    const pb = h.uniquePrefix('cmpb');
    const pn = h.uniquePrefix('cmpn');
    const client = h.redis();
    const qn = h.newQueue(Q, pn);
    try {
      const steps = [
        { data: { s: 1 }, opts: { debounce: { id: 'old', ttl: 60000 } } },
        { data: { s: 2 }, opts: { debounce: { id: 'old', ttl: 60000 } } },
        // both names: the key is deduplication's, the stored "de" the last one's
        { data: { s: 3 }, opts: { deduplication: { id: 'new' }, attempts: 2, debounce: { id: 'old2', ttl: 1000 } } },
        { data: { s: 4 }, opts: { deduplication: { id: 'new' } } },
      ];
      const [idsB, idsN] = await addSteps(pb, qn, steps);
      assert.deepEqual(idsB, idsN);
      assert.deepEqual(idsB, ['1', '1', '3', '3']);
      for (const id of ['1', '3']) {
        const [b, n] = [await h.jobHash(client, pb, Q, id), await h.jobHash(client, pn, Q, id)];
        delete b.timestamp;
        delete n.timestamp;
        assert.deepEqual(b, n, `job ${id}'s hash`);
      }
      assert.equal((await h.jobHash(client, pb, Q, '1')).deid, 'old');
      await sameDedupKeys(client, pb, pn, ['old', 'new', 'old2']);
      const keep = { keepDelayValue: false };
      const ev = await events(client, pb, keep);
      assert.deepEqual(ev, await events(client, pn, keep), 'events');
      assert.ok(ev.some(e => e.event === 'debounced'), '5.x writes debounced beside deduplicated');
      // its rules, in Node 5's words
      const bad = h.bullc(['add', Q, 'd', '{}', '--opts', '{"debounce":{"ttl":5}}'], { prefix: pb });
      assert.equal(bad.status, 2, bad.stderr);
      await assert.rejects(qn.add('d', {}, { debounce: { ttl: 5 } }), /Debounce id must be provided/);
      assert.match(bad.stderr, /Debounce id must be provided/);
    } finally {
      await h.closeAll(qn, client);
    }
  },
);

test('bullc --json add / add-bulk print valid JSON, whatever the job id', async () => {
  const prefix = h.uniquePrefix();
  for (const jobId of ['plain', 'a"quote', 'back\\slash', 'tab\there', 'ünï ✓']) {
    const r = h.bullc(['--json', 'add', Q, 'n', '{}', '--opts', JSON.stringify({ jobId })], { prefix });
    assert.equal(r.status, 0, r.stderr);
    let parsed;
    assert.doesNotThrow(() => (parsed = JSON.parse(r.stdout)), `not JSON: ${r.stdout}`);
    assert.deepEqual(parsed, { id: jobId, added: true });
    const again = h.bullc(['--json', 'add', Q, 'n', '{}', '--opts', JSON.stringify({ jobId })], { prefix });
    assert.doesNotThrow(() => (parsed = JSON.parse(again.stdout)), `not JSON: ${again.stdout}`);
    assert.deepEqual(parsed, { id: jobId, added: false });
  }
  const input = JSON.stringify({ name: 'n', opts: { jobId: 'bulk"1' } }) + '\n' + JSON.stringify({ name: 'n' }) + '\n';
  const b = h.bullc(['--json', 'add-bulk', Q], { prefix, input });
  assert.equal(b.status, 0, b.stderr);
  const lines = b.stdout.split('\n').filter(Boolean);
  assert.equal(lines.length, 2);
  assert.doesNotThrow(() => lines.map(l => JSON.parse(l)), `not JSON lines: ${b.stdout}`);
  assert.deepEqual(JSON.parse(lines[0]), { id: 'bulk"1', added: true });
});

// Node's 6.x fix: ids from the counter stay decimal past 3e+8.
for (const [script, opts, where] of [
  ['addStandardJob', {}, 'wait'],
  ['addPrioritizedJob', { priority: 1 }, 'prioritized'],
  ['addDelayedJob', { delay: 10000 }, 'delayed'],
]) {
  // node: "[addStandardJob] stores the job id consistently in decimal form (not 3e+8)"
  // node: "[addPrioritizedJob] stores the job id consistently in decimal form (not 3e+8)"
  // node: "[addDelayedJob] stores the job id consistently in decimal form (not 3e+8)"
  test(`[${script}] stores the job id consistently in decimal form (not 3e+8)`, async () => {
    const prefix = h.uniquePrefix();
    const client = h.redis();
    const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
    try {
      await client.set(`${prefix}:${Q}:id`, '299999999');
      const id = h.bullcAdd(prefix, Q, 'test', { foo: 'bar' }, opts);
      assert.equal(id, '300000000');
      assert.equal(await client.exists(`${prefix}:${Q}:300000000`), 1);
      const ids =
        where === 'wait'
          ? await client.lrange(`${prefix}:${Q}:wait`, 0, -1)
          : await client.zrange(`${prefix}:${Q}:${where}`, 0, -1);
      assert.ok(ids.includes('300000000'), `${where}: ${ids}`);
      assert.ok(!ids.includes('3e+8'));
      const stored = await q.getJob('300000000');
      assert.ok(stored);
      assert.deepEqual(stored.data, { foo: 'bar' });
    } finally {
      await h.closeAll(q, client);
    }
  });
}

// ---- add-bulk ---------------------------------------------------------------

test('bullc add-bulk: one id per line, jobs as Node addBulk stores them', async () => {
  const pb = h.uniquePrefix('cmpb');
  const pn = h.uniquePrefix('cmpn');
  const client = h.redis();
  const qn = h.newQueue(Q, pn);
  const qb = h.newQueue(Q, pb, { skipMetasUpdate: true });
  try {
    const jobs = [
      { name: 'a', data: { i: 1 } },
      { name: 'b', data: { i: 2, s: 'ünï' }, opts: { priority: 3, attempts: 2, backoff: 10 } },
      { name: 'c', opts: { delay: 60000, jobId: 'bulk-c' } },
      { name: 'd', data: [1, 2, 3], opts: { lifo: true, removeOnComplete: { count: 2 } } },
    ];
    const ids = h.bullcAddBulk(pb, Q, jobs);
    assert.deepEqual(ids, ['1', '2', 'bulk-c', '4']);
    const nJobs = await qn.addBulk(structuredClone(jobs));
    assert.deepEqual(
      nJobs.map(j => j.id),
      ids,
    );
    for (const id of ids) {
      const [b, n] = await Promise.all([h.Job.fromId(qb, id), h.Job.fromId(qn, id)]);
      assert.deepEqual(jobView(b), jobView(n), `job ${id}`);
      const [hb, hn] = await Promise.all([h.jobHash(client, pb, Q, id), h.jobHash(client, pn, Q, id)]);
      delete hb.timestamp;
      delete hn.timestamp;
      assert.deepEqual(hb, hn, `hash of ${id}`);
    }
    assert.deepEqual(await client.lrange(`${pb}:${Q}:wait`, 0, -1), await client.lrange(`${pn}:${Q}:wait`, 0, -1));
  } finally {
    await h.closeAll(qn, qb, client);
  }
});

test('bullc add-bulk keeps the data it is given (numbers are not re-printed)', async () => {
  const prefix = h.uniquePrefix();
  const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
  try {
    // Values JSON.stringify prints back exactly; 17 significant digits.
    const data = { x: 0.30000000000000004, big: 9007199254740991, e: 1.0000000000000002 };
    const line = `{"name":"n","data":${JSON.stringify(data)}}\n`;
    const out = h.bullcOk(['add-bulk', Q], { prefix, input: line });
    const job = await q.getJob(out.trim());
    assert.deepEqual(job.data, data, 'add-bulk changed the numbers of the job data');
    // bullc add (one job) keeps them
    const id = h.bullcAdd(prefix, Q, 'n', JSON.stringify(data));
    assert.deepEqual((await q.getJob(id)).data, data);
  } finally {
    await h.closeAll(q);
  }
});

test('bullc add-bulk reads the data member of any well-formed line', async () => {
  const prefix = h.uniquePrefix();
  const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
  try {
    const lines = [
      '{"name": "a", "data" :  [ 1 , 2.50 , {"x" : "y"} ] }',
      '{"data":{"k":"v, with } and ] and \\"quotes\\" and \\\\"},"name":"b"}',
      '{"name":"c \\"data\\": 1","opts":{"attempts":1},"data":{"real":true}}',
      '{"name":"d","data":"a string, with: colons}"}',
      '{"name":"e","data":null}',
      '{"name":"f","data":1e3}',
      '{"name":"g","data":{"n":0.30000000000000004,"deep":[[[{"a":[]}]]]}}',
      '{"name":"h","d\\u0061ta":{"escaped":"key"}}',
      '{"name":"i","data":-0.5,"opts":{"priority":2}}',
      '{"name":"j","data":{"tab":"\\t","nl":"\\n","u":"\\u00e9"}}',
      '\t{"name":"k","data":true}  ',
    ];
    const ids = h.bullcOk(['add-bulk', Q], { prefix, input: lines.join('\n') + '\n' }).split('\n').filter(Boolean);
    assert.equal(ids.length, lines.length);
    for (const [i, line] of lines.entries()) {
      const want = JSON.parse(line);
      const job = await q.getJob(ids[i]);
      assert.ok(job, `job of line ${i + 1}`);
      assert.equal(job.name, want.name, `name of line ${i + 1}`);
      assert.deepEqual(job.data, want.data === undefined ? {} : want.data, `data of line ${i + 1}: ${line}`);
    }
  } finally {
    await h.closeAll(q);
  }
});

test('bullc add-bulk: a bad line fails with its line number and writes nothing of its batch', async t => {
  const client = h.redis();
  try {
    const good = JSON.stringify({ name: 'ok', data: { i: 1 } });
    const cases = [
      ['invalid options', JSON.stringify({ name: 'bad', opts: { priority: 1.5 } })],
      ['unknown option', JSON.stringify({ name: 'bad', opts: { bogus: true } })],
      ['not JSON', '{"name": "bad",'],
      ['no name', JSON.stringify({ data: {} })],
      ['data over sizeLimit (found when adding)', JSON.stringify({ name: 'big', data: { s: 'x'.repeat(50) }, opts: { sizeLimit: 10 } })],
    ];
    for (const [what, bad] of cases) {
      await t.test(what, async () => {
        const prefix = h.uniquePrefix();
        const r = h.bullc(['add-bulk', Q], { prefix, input: `${good}\n${bad}\n${good}\n` });
        assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
        assert.match(r.stderr, /line 2\b/);
        assert.equal(r.stdout, '', 'no id printed');
        assert.deepEqual(await h.keysOf(client, prefix), [], 'nothing written');
      });
    }
    await t.test('an earlier batch stays, the failing batch is not written', async () => {
      const prefix = h.uniquePrefix();
      const bad = JSON.stringify({ name: 'bad', opts: { delay: -1 } });
      const r = h.bullc(['add-bulk', Q, '--batch', '2'], { prefix, input: [good, good, good, bad, good].join('\n') + '\n' });
      assert.equal(r.status, 1, `exit 1: earlier batches were written (stderr: ${r.stderr})`);
      assert.match(r.stderr, /line 4\b/);
      assert.match(r.stderr, /stopped after 2 job\(s\)/);
      assert.deepEqual(r.stdout.split('\n').filter(Boolean), ['1', '2']);
      assert.deepEqual((await client.lrange(`${prefix}:${Q}:wait`, 0, -1)).sort(), ['1', '2']);
      assert.equal(await client.exists(`${prefix}:${Q}:3`), 0, 'line 3 (same batch as line 4) was not written');
    });
  } finally {
    await h.closeAll(client);
  }
});

// ---- exit codes ---------------------------------------------------------------

test('bullc add: invalid input exits 2 and writes nothing', async t => {
  const client = h.redis();
  try {
    const cases = [
      ['invalid JSON data', [Q, 'n', '{not json']],
      ['unknown option', [Q, 'n', '{}', '--opts', '{"bogus":1}']],
      ['invalid options JSON', [Q, 'n', '{}', '--opts', '{bad'], "bullc: --opts: invalid JSON near 'ad'\n"],
      ['options not an object', [Q, 'n', '{}', '--opts', '[1]'], 'bullc: --opts must be a JSON object\n'],
      ['ill-typed option', [Q, 'n', '{}', '--opts', '{"attempts":"3"}'], 'bullc: --opts: attempts must be an integer\n'],
      ['queue name with ":"', ['a:b', 'n', '{}']],
      ['empty queue name', ['', 'n', '{}']],
      ['missing job name', [Q]],
      ['unknown flag', [Q, 'n', '{}', '--nope']],
    ];
    for (const [what, args, message] of cases) {
      await t.test(what, async () => {
        const prefix = h.uniquePrefix();
        const r = h.bullc(['add', ...args], { prefix });
        assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
        assert.match(r.stderr, /^bullc: /);
        if (message) assert.equal(r.stderr, message, 'one prefix: --opts takes the place of the library\'s "options"');
        assert.equal(r.stdout, '');
        assert.deepEqual(await h.keysOf(client, prefix), []);
      });
    }
  } finally {
    await h.closeAll(client);
  }
});

test('bullc add: an unreachable Redis exits 3 without showing the password', () => {
  const r = h.bullc(['add', Q, 'n', '{}'], { prefix: h.uniquePrefix(), redis: 'redis://127.0.0.1:1' });
  assert.equal(r.status, 3, r.stderr);
  assert.match(r.stderr, /127\.0\.0\.1:1/);
  const s = h.bullc(['add', Q, 'n', '{}'], { prefix: h.uniquePrefix(), redis: 'redis://:hunter2@127.0.0.1:1' });
  assert.equal(s.status, 3, s.stderr);
  assert.ok(!s.stderr.includes('hunter2'), `password in stderr: ${s.stderr}`);
  assert.ok(!s.stdout.includes('hunter2'));
  const b = h.bullc(['add-bulk', Q], { prefix: h.uniquePrefix(), redis: 'redis://:hunter2@127.0.0.1:1', input: '{"name":"x"}\n' });
  assert.equal(b.status, 3, b.stderr);
  assert.ok(!b.stderr.includes('hunter2'), `password in stderr: ${b.stderr}`);
});

// ---- the password-protected Redis ---------------------------------------------

test('password-protected Redis, database 2: URL and REDIS_* environment', async t => {
  const port = h.authPort();
  const url = `redis://:${h.AUTH_PASSWORD}@127.0.0.1:${port}/2`;
  const client = h.redis(url);
  const db0 = h.redis(`redis://:${h.AUTH_PASSWORD}@127.0.0.1:${port}/0`);
  // Like the reference deployment: no REDIS_URL, REDIS_HOST & co.
  const deployEnv = extra => {
    const env = { ...process.env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port), REDIS_DB: '2', ...extra };
    delete env.REDIS_URL;
    return env;
  };
  try {
    await t.test('with --redis URL', async () => {
      const prefix = h.uniquePrefix();
      const r = h.bullc(['add', Q, 'n', '{"via":"url"}', '--opts', '{"attempts":2}'], { prefix, redis: url });
      assert.equal(r.status, 0, r.stderr);
      const q = h.newQueue(Q, prefix, { skipMetasUpdate: true, connection: h.connection(url) });
      try {
        const job = await q.getJob(r.stdout.trim());
        assert.ok(job, 'Node finds the job in db 2');
        assert.deepEqual(job.data, { via: 'url' });
        assert.equal(job.opts.attempts, 2);
      } finally {
        await h.closeAll(q);
      }
      assert.deepEqual(await h.keysOf(db0, prefix), [], 'nothing in db 0');
    });
    await t.test('with REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB', async () => {
      const prefix = h.uniquePrefix();
      const r = h.bullc(['add', Q, 'n', '{"via":"env"}'], {
        prefix,
        redis: null,
        env: deployEnv({ REDIS_PASSWORD: h.AUTH_PASSWORD }),
      });
      assert.equal(r.status, 0, r.stderr);
      const q = h.newQueue(Q, prefix, { skipMetasUpdate: true, connection: h.connection(url) });
      try {
        const job = await q.getJob(r.stdout.trim());
        assert.ok(job, 'Node finds the job in db 2');
        assert.deepEqual(job.data, { via: 'env' });
      } finally {
        await h.closeAll(q);
      }
      assert.ok((await h.keysOf(client, prefix)).length > 0);
      assert.deepEqual(await h.keysOf(db0, prefix), [], 'nothing in db 0');
    });
    await t.test('a wrong password exits 3 and is not shown', () => {
      const r = h.bullc(['add', Q, 'n', '{}'], {
        prefix: h.uniquePrefix(),
        redis: `redis://:wrong-pass-123@127.0.0.1:${port}/2`,
      });
      assert.equal(r.status, 3, r.stderr);
      assert.ok(!r.stderr.includes('wrong-pass-123'), r.stderr);
      const e = h.bullc(['add', Q, 'n', '{}'], {
        prefix: h.uniquePrefix(),
        redis: null,
        env: deployEnv({ REDIS_PASSWORD: 'wrong-pass-456' }),
      });
      assert.equal(e.status, 3, e.stderr);
      assert.ok(!e.stderr.includes('wrong-pass-456'), e.stderr);
      const none = h.bullc(['add', Q, 'n', '{}'], { prefix: h.uniquePrefix(), redis: `redis://127.0.0.1:${port}/2` });
      assert.equal(none.status, 3, `no password: ${none.stderr}`);
    });
  } finally {
    await h.closeAll(client, db0);
  }
});

// ---- rejected options: bullc's message is Node's -----------------------------------

// Adds with Node (which must reject) and with bullc (exit 2, nothing written,
// Node's message in stderr).
async function sameRejection(opts, { name = 'test', data = { foo: 'bar' } } = {}) {
  const prefix = h.uniquePrefix();
  const client = h.redis();
  const q = h.newQueue(Q, h.uniquePrefix('cmpn'));
  try {
    // A 5.x Queue writes its meta once connected and does not catch that
    // write's rejection: closed with it in flight, it fails after the test
    // ("Connection is closed", seen under load). A PING behind it on the same
    // connection waits it out. 6.7.0 catches it (and has no q.client).
    if (h.bullmqMajor() === 5) await (await q.client).ping();
    let nodeError;
    try {
      await q.add(name, data, structuredClone(opts));
    } catch (err) {
      nodeError = err;
    }
    assert.ok(nodeError, `Node accepts ${JSON.stringify(opts)}`);
    const r = h.bullc(['add', Q, name, JSON.stringify(data), '--opts', JSON.stringify(opts)], { prefix });
    assert.equal(r.status, 2, `exit code (stderr: ${r.stderr})`);
    assert.deepEqual(await h.keysOf(client, prefix), [], 'nothing written');
    assert.ok(
      r.stderr.includes(nodeError.message),
      `bullc's message lacks Node's.\n  Node:  ${nodeError.message}\n  bullc: ${r.stderr.trim()}`,
    );
  } finally {
    await h.closeAll(q, client);
  }
}

// node: "[when priority option is provided as float] throws an error"
test('[when priority option is provided as float] throws an error', () => sameRejection({ priority: 1.1 }));

// node: "[when priority option is provided with a value greater than 2097151] throws an error"
test('[when priority option is provided with a value greater than 2097151] throws an error', () =>
  sameRejection({ priority: 2097152 }));

// node: "[when deduplication id option is provided as empty string] throws an error"
test('[when deduplication id option is provided as empty string] throws an error', () =>
  sameRejection({ deduplication: { id: '' } }));

// node: "[.create > when removed debounce option is provided] throws an error"
test(
  '[when removed debounce option is provided] throws an error',
  // 5.x still takes debounce, as a deprecated name of deduplication
  { skip: h.bullmqMajor() === 5 && 'BullMQ 5.x accepts debounce' },
  () => sameRejection({ debounce: { id: 'legacy' } }),
);

// node: "[when jitter backoff option is provided with a value lesser than 0] throws an error"
test('[when jitter backoff option is provided with a value lesser than 0] throws an error', () =>
  sameRejection({ backoff: { type: 'fixed', jitter: -1 } }));

// node: "[when jitter backoff option is provided with a value greater than 1] throws an error"
test('[when jitter backoff option is provided with a value greater than 1] throws an error', () =>
  sameRejection({ backoff: { type: 'fixed', jitter: 5 } }));

// node: "[when removeDependencyOnFailure and failParentOnFailure options are provided] throws an error"
test('[when removeDependencyOnFailure and failParentOnFailure options are provided] throws an error', () =>
  sameRejection({ removeDependencyOnFailure: true, failParentOnFailure: true }));

// node: "[when removeDependencyOnFailure and ignoreDependencyOnFailure options are provided] throws an error"
test('[when removeDependencyOnFailure and ignoreDependencyOnFailure options are provided] throws an error', () =>
  sameRejection({ removeDependencyOnFailure: true, ignoreDependencyOnFailure: true }));

// node: "[when failParentOnFailure and ignoreDependencyOnFailure options are provided] throws an error"
test('[when failParentOnFailure and ignoreDependencyOnFailure options are provided] throws an error', () =>
  sameRejection({ ignoreDependencyOnFailure: true, failParentOnFailure: true }));

// node: "[when jobId is provided as integer] throws error"
test('[when jobId is provided as integer] throws error', () => sameRejection({ jobId: '2' }, { data: { foo: 1 } }));

// node: "[when custom job id contains :] throws an error"
test('[when custom job id contains :] throws an error', () => sameRejection({ jobId: '1:0' }, { data: { foo: 1 } }));

// 5.x words it "start with 0:" (6.x quotes '0:'): bullc words it as the queue's major
test('jobId 0 and 0:x are rejected with Node message', async () => {
  await sameRejection({ jobId: '0' });
  await sameRejection({ jobId: '0:x' });
});

// node: "should set default size limit and fail due to size limit exception"
test('should set default size limit and fail due to size limit exception', () =>
  sameRejection({ sizeLimit: 12 }, { data: { foo: 'bar' } }));

// node: "should set default size limit with non-ascii data and fail due to size limit exception"
test('should set default size limit with non-ascii data and fail due to size limit exception', () =>
  sameRejection({ sizeLimit: 15 }, { data: { foo: 'βÅ®' } }));

// node: "should set custom job id and default size limit and fail due to size limit exception"
test('should set custom job id and default size limit and fail due to size limit exception', () =>
  sameRejection({ sizeLimit: 12, jobId: 'customJobId' }, { data: { foo: 'bar' } }));

// node: "should set default size limit and succeed in creating job"
test('should set default size limit and succeed in creating job', async () => {
  const prefix = h.uniquePrefix();
  const q = h.newQueue(Q, prefix, { skipMetasUpdate: true });
  try {
    const id = h.bullcAdd(prefix, Q, 'test', { foo: 'bar' }, { sizeLimit: 20 });
    const job = await q.getJob(id);
    assert.ok(job);
    assert.equal(job.opts.sizeLimit, 20);
  } finally {
    await h.closeAll(q);
  }
});

// node: "[when queue name contains :] throws an error"
test('[when queue name contains :] throws an error', async () => {
  assert.throws(() => h.newQueue('name:test', h.uniquePrefix()), /Queue name cannot contain :/);
  const prefix = h.uniquePrefix();
  const r = h.bullc(['add', 'name:test', 'n', '{}'], { prefix });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /queue name cannot contain ':'/i);
});
