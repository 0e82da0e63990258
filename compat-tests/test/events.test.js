// SPDX-License-Identifier: MIT
// `bullc events` against Node's QueueEvents on the same stream: for jobs
// processed by Node workers and by bullc-worker, `bullc events --follow`
// (bullc's libuv QueueEvents listener) prints the same events, in the same
// order and with the same fields, as Node's QueueEvents emits them.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { track } = require('../lib/children');
const h = require('../lib/harness');
const { QueueEventsProducer } = h.nodeBullmq();

const Q = 'evq';

// Every event a Node QueueEvents emits, as {id, event, ...args} in order
// (the `<event>:<jobId>` duplicates left out).
function record(qe) {
  const seen = [];
  const emit = qe.emit.bind(qe);
  qe.emit = (name, ...args) => {
    const id = args[args.length - 1];
    if (typeof id === 'string' && /^\d+-\d+$/.test(id) && !name.includes(':')) {
      seen.push(args.length === 2 ? { id, event: name, ...args[0] } : { id, event: name });
    }
    return emit(name, ...args);
  };
  return seen;
}

// What Node's QueueEvents does to the stored fields before emitting them.
function asNode(e) {
  const o = { ...e };
  if (o.event === 'progress') o.data = JSON.parse(o.data);
  if (o.event === 'completed') o.returnvalue = JSON.parse(o.returnvalue);
  if (o.event === 'delayed') o.delay = Number(o.delay);
  return o;
}

// `bullc --json events Q --follow ARGS` in the background.
function follow(prefix, args = []) {
  const argv = ['--redis', h.redisUrl(), '--prefix', prefix, '--json', 'events', Q, '--follow', ...args];
  const child = track(spawn(h.bullcPath(), argv, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  let onErr;
  const ready = new Promise(resolve => {
    onErr = () => {
      if (err.includes('following events after')) resolve();
    };
  });
  child.stdout.on('data', d => {
    out += d;
  });
  child.stderr.on('data', d => {
    err += d;
    onErr();
  });
  const exited = new Promise(resolve => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    ready: h.withTimeout(ready, 10000, 'bullc events --follow to start'),
    exited,
    lines: () =>
      out
        .split('\n')
        .filter(Boolean)
        .map(l => JSON.parse(l)),
    stderr: () => err,
  };
}

// Waits until `bullc` printed as many events as Node saw, and no more
// arrive for a moment.
async function settle(f, node, what) {
  await h.eventually(() => f.lines().length >= node.length && node.length > 0, 15000, what);
  await h.sleep(300);
}

async function stop(f) {
  f.child.kill('SIGINT');
  const { code, signal } = await h.withTimeout(f.exited, 10000, 'bullc events to exit');
  assert.equal(signal, null, `bullc events was killed; stderr: ${f.stderr()}`);
  assert.equal(code, 0, `exit code; stderr: ${f.stderr()}`);
}

test('bullc events --follow sees what Node QueueEvents sees, for jobs of Node workers', async () => {
  const prefix = h.uniquePrefix('cmpe');
  const queue = h.newQueue(Q, prefix);
  const qe = h.newQueueEvents(Q, prefix, { lastEventId: '0-0' });
  const producer = new QueueEventsProducer(Q, { connection: h.connection(), prefix });
  const node = record(qe);
  let worker;
  const f = follow(prefix); // from "$": the stream is still empty
  try {
    await f.ready;
    await qe.waitUntilReady();
    await queue.add('ok', { n: 1 });
    await queue.add('prog', { n: 2 });
    await queue.add('retry', { n: 3 }, { attempts: 2 });
    await queue.add('fail', { n: 4 }, { attempts: 1 });
    await queue.add('late', { n: 5 }, { delay: 300 });
    await queue.add('dup', { n: 6 }, { jobId: 'custom' });
    await queue.add('dup', { n: 7 }, { jobId: 'custom' });
    await producer.publishEvent({ eventName: 'custom-event', foo: 'bar', n: '1' });
    const done = new Set();
    worker = h.newWorker(Q, prefix, async job => {
      switch (job.name) {
        case 'prog':
          await job.updateProgress({ pct: 50 });
          await job.updateProgress(100);
          return 'text';
        case 'retry':
          if (job.attemptsMade === 0) throw new Error('first attempt fails');
          return { second: true };
        case 'fail':
          throw new Error('always fails');
        default:
          return { r: job.data.n };
      }
    });
    worker.on('completed', job => done.add(job.id));
    worker.on('failed', (job, err, prev) => job.attemptsMade >= job.opts.attempts && done.add(job.id));
    await h.eventually(() => done.size === 6, 15000, 'Node worker to finish 6 jobs');
    await h.eventually(() => node.some(e => e.event === 'drained'), 10000, 'the drained event');
    await settle(f, node, 'bullc to print the events Node saw');
    const events = node.map(e => e.event);
    for (const e of ['added', 'waiting', 'active', 'progress', 'completed', 'failed', 'retries-exhausted', 'delayed',
      'duplicated', 'custom-event', 'drained']) {
      assert.ok(events.includes(e), `Node saw a ${e} event (${events.join(' ')})`);
    }
    assert.deepStrictEqual(f.lines().map(asNode), node);
  } finally {
    await stop(f);
    await h.closeAll(worker, qe, producer, queue);
  }
});

test('bullc events --follow sees what Node QueueEvents sees, for jobs of bullc-worker', async () => {
  const bin = path.join(h.bullcPath(), '..', 'bullc-worker');
  assert.ok(fs.existsSync(bin), `${bin} is not built: this test needs bullc-worker`);
  const prefix = h.uniquePrefix('cmpe');
  const queue = h.newQueue(Q, prefix);
  const qe = h.newQueueEvents(Q, prefix, { lastEventId: '0-0' });
  const node = record(qe);
  const f = follow(prefix, ['--from', '0-0']);
  const bw = track(spawn(
    bin,
    ['--redis', h.redisUrl(), '--prefix', prefix, '--queue', Q, '--builtin', 'echo', '--name', 'bw'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  ));
  let bwErr = '';
  bw.stderr.on('data', d => {
    bwErr += d;
  });
  const bwExit = new Promise(resolve => bw.on('exit', (code, signal) => resolve({ code, signal })));
  try {
    await f.ready;
    await qe.waitUntilReady();
    const datas = { a: { x: 1, s: 'ünï' }, b: [1, 2, 3], c: 'plain', d: { nested: { ok: true } } };
    const ids = {};
    ids[(await queue.add('a', datas.a)).id] = datas.a;
    ids[(await queue.add('b', datas.b, { priority: 2 })).id] = datas.b;
    ids[(await queue.add('c', datas.c, { delay: 200 })).id] = datas.c;
    ids[(await queue.add('d', datas.d, { lifo: true })).id] = datas.d;
    await h.eventually(
      async () => (await queue.getJobCounts('completed')).completed === 4,
      15000,
      `bullc-worker to complete 4 jobs; its stderr: ${bwErr}`,
    );
    await h.eventually(() => node.filter(e => e.event === 'completed').length === 4, 10000, 'Node to see them');
    await h.sleep(300);
    await settle(f, node, 'bullc to print the events Node saw');
    const completed = node.filter(e => e.event === 'completed');
    for (const e of completed) assert.deepStrictEqual(e.returnvalue, ids[e.jobId], `echo returns job ${e.jobId}'s data`);
    assert.deepStrictEqual(f.lines().map(asNode), node);
  } finally {
    bw.kill('SIGTERM');
    await h.withTimeout(bwExit, 15000, 'bullc-worker to stop');
    await stop(f);
    await h.closeAll(qe, queue);
  }
});

test('bullc events prints the stored events after --from and exits; --follow --from resumes there', async () => {
  const prefix = h.uniquePrefix('cmpe');
  const queue = h.newQueue(Q, prefix);
  const client = h.redis();
  let f;
  try {
    for (let i = 0; i < 3; i++) await queue.add('j', { i });
    await queue.pause();
    const stored = (await client.xrange(`${prefix}:${Q}:events`, '-', '+')).map(([id, fields]) => {
      const o = { id };
      for (let i = 0; i < fields.length; i += 2) o[fields[i]] = fields[i + 1];
      return o;
    });
    assert.equal(stored.length, 7);
    const all = h
      .bullcOk(['--json', 'events', Q], { prefix })
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l));
    assert.deepStrictEqual(all, stored);
    const after = h
      .bullcOk(['--json', 'events', Q, '--from', stored[2].id], { prefix })
      .split('\n')
      .filter(Boolean)
      .map(l => JSON.parse(l));
    assert.deepStrictEqual(after, stored.slice(3));
    assert.equal(h.bullcOk(['--json', 'events', Q, '--from', stored[6].id], { prefix }), '');
    // readable: "<id> <event> field=value..."
    const text = h.bullcOk(['events', Q], { prefix }).split('\n');
    assert.equal(text[0], `${stored[0].id} added jobId=1 name=j`);
    // Node's QueueEvents from the same id emits the same entries
    const qe = h.newQueueEvents(Q, prefix, { lastEventId: stored[2].id });
    const node = record(qe);
    f = follow(prefix, ['--from', stored[2].id]);
    await f.ready;
    await queue.resume();
    await h.eventually(() => node.length === 5 && f.lines().length === 5, 10000, 'the resumed event');
    assert.deepStrictEqual(f.lines().map(asNode), node);
    assert.equal(node[4].event, 'resumed');
    await qe.close();
    // invalid ids exit 2
    const r = h.bullc(['events', Q, '--from', 'abc'], { prefix });
    assert.equal(r.status, 2);
  } finally {
    if (f) await stop(f);
    await h.closeAll(queue, client);
  }
});

test('bullc events --follow exits 3 when Redis is unreachable', () => {
  const r = h.bullc(['events', Q, '--follow'], { redis: `redis://127.0.0.1:1/0`, timeout: 20000 });
  assert.equal(r.status, 3);
  assert.match(r.stderr, /127\.0\.0\.1:1/);
});
