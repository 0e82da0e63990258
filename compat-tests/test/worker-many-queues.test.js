// SPDX-License-Identifier: MIT
// One bullc-worker serving thousands of queues (--queues-file, which shares
// two to six Redis connections among them all), beside Node workers on some of the
// same queues; its /metrics reads their counts over one more.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  closeAll, connection, eventually, newQueue, newWorker, nodeBullmq, parseRedisUrl, redis, redisUrl, uniquePrefix,
} = require('../lib/harness');
const { finished, killAll, startReady, tmpDir } = require('../lib/worker-proc');
const { localPortsTo } = require('../lib/tcp');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

// The local ports of the TCP connections process `pid` holds to the tests'
// Redis.
const redisPortsOf = pid => localPortsTo(pid, parseRedisUrl(redisUrl()).port);
const redisConnectionsOf = pid => redisPortsOf(pid).length;

// --http's port: 9 above the suite's Redis port (in the observability tests'
// range, 5 to 9 above it, where nothing uses the ninth)
const HTTP = Number(new URL(redisUrl()).port) + 9;

// The queues /metrics gives job counts for.
async function countedQueues() {
  const body = await (await fetch(`http://127.0.0.1:${HTTP}/metrics`)).text();
  return new Set([...body.matchAll(/^bullmq_job_count\{queue="([^"]+)",state="waiting"\}/gm)].map(m => m[1]));
}

async function completedCounts(client, prefix, names) {
  const pipe = client.pipeline();
  for (const q of names) pipe.zcard(`${prefix}:${q}:completed`);
  return (await pipe.exec()).map(([err, n]) => {
    assert.equal(err, null);
    return n;
  });
}

describe('bullc-worker serving many queues', () => {
  it('2,000 queues from --queues-file: every job done over at most 8 connections, Node workers alongside', async () => {
    const prefix = uniquePrefix('manyq');
    const dir = tmpDir('manyq');
    const names = Array.from({ length: 2000 }, (_, i) => `tenant-${i}`);
    const file = path.join(dir, 'queues.txt');
    fs.writeFileSync(file, `# one queue per tenant\n\n${names.join('\n')}\n`);
    const client = redis();
    closers.push(client);
    // one connection for the 2,000 producers (a Queue given an ioredis instance shares it)
    const shared = new (require('ioredis'))(connection());
    const { Queue } = nodeBullmq();
    const queues = names.map(n => new Queue(n, { connection: shared, prefix }));
    await Promise.all(queues.map((q, i) => q.add('job', { i })));

    const w = await startReady(['--queues-file', file, '--builtin', 'noop', '--drain-delay', '2'], { prefix }, 60000);
    // Node workers on five of the queues, with more jobs for them
    const nodes = names.slice(0, 5).map(n => newWorker(n, prefix, async () => 'node', { name: 'node' }));
    closers.unshift(...nodes);
    await Promise.all(nodes.map(n => n.waitUntilReady()));
    await Promise.all(queues.slice(0, 5).flatMap(q => Array.from({ length: 10 }, (_, k) => q.add('more', { k }))));

    let counts;
    await eventually(async () => {
      counts = await completedCounts(client, prefix, names);
      return counts.every((n, i) => n === (i < 5 ? 11 : 1));
    }, 60000, 'every job completed');
    const conns = redisConnectionsOf(w.pid);
    assert.ok(conns >= 2 && conns <= 8, `bullc-worker holds ${conns} connections to Redis`);
    const clients = await client.client('LIST');
    assert.equal(clients.split('\n').filter(l => / name=bullc:worker-group /.test(l)).length >= 1, true);
    for (const q of queues.slice(0, 50)) {
      const c = await q.getJobCounts('completed', 'failed', 'active', 'wait');
      assert.equal(c.failed + c.active + c.wait, 0, `${q.name}: ${JSON.stringify(c)}`);
    }
    const exit = await w.stop();
    assert.equal(exit.code, 0);
    await closeAll(nodes);
    await Promise.all(queues.map(q => q.close()));
    await shared.quit();
  });

  it('/metrics over 10 and 300 queues: every count right, and the same connections (CLIENT LIST) for both', async () => {
    const client = redis();
    closers.push(client);
    const shared = new (require('ioredis'))(connection());
    closers.push(shared);
    const { Queue } = nodeBullmq();
    const held = {};
    for (const n of [10, 300]) {
      const prefix = uniquePrefix(`manyqm${n}`);
      const names = Array.from({ length: n }, (_, i) => `m-${i}`);
      const file = path.join(tmpDir('manyqm'), 'queues.txt');
      fs.writeFileSync(file, names.join('\n'));
      // delayed jobs stay where they are: queue m-i of the first three holds i + 1
      const few = names.slice(0, 3).map(q => new Queue(q, { connection: shared, prefix }));
      await Promise.all(few.flatMap((q, i) => Array.from({ length: i + 1 }, () => q.add('later', {}, { delay: 600000 }))));
      const w = await startReady(['--queues-file', file, '--builtin', 'noop', '--http', `127.0.0.1:${HTTP}`,
        '--counts-cache', '0'], { prefix }, 30000);
      let body;
      await eventually(async () => {
        body = await (await fetch(`http://127.0.0.1:${HTTP}/metrics`)).text();
        return [...body.matchAll(/^bullmq_job_count\{queue="[^"]+",state="waiting"\} 0$/gm)].length === n;
      }, 20000, `counts of all ${n} queues`);
      for (const [i, q] of names.entries()) {
        const m = new RegExp(`^bullmq_job_count\\{queue="${q}",state="delayed"\\} (\\d+)$`, 'm').exec(body);
        assert.equal(Number(m && m[1]), i < 3 ? i + 1 : 0, `${q} delayed`);
      }
      // the worker's clients as Redis lists them, found by their ports
      const ports = new Set(redisPortsOf(w.pid));
      const listed = (await client.client('LIST')).split('\n')
        .filter(l => ports.has(Number((/ addr=\S+:(\d+) /.exec(` ${l}`) || [])[1])));
      held[n] = listed.length;
      assert.equal(held[n], ports.size, 'CLIENT LIST names every connection of the worker');
      assert.equal((await w.stop()).code, 0);
      await Promise.all(few.map(q => q.close()));
    }
    assert.ok(held[300] === held[10] && held[300] <= 8, `connections: ${JSON.stringify(held)}`);
  });

  it('SIGHUP adds and removes queues while jobs flow: a removed one finishes its job first', async () => {
    const prefix = uniquePrefix('manyqhup');
    const dir = tmpDir('manyqhup');
    const kept = Array.from({ length: 40 }, (_, i) => `kept-${i}`);
    const file = path.join(dir, 'queues.txt');
    fs.writeFileSync(file, [...kept, 'gone-0', 'gone-1'].join('\n'));
    const client = redis();
    closers.push(client);
    const shared = new (require('ioredis'))(connection());
    const { Queue } = nodeBullmq();
    const queue = name => new Queue(name, { connection: shared, prefix });
    const keptQ = kept.map(queue);
    const [gone0, gone1, new0, new1] = ['gone-0', 'gone-1', 'new-0', 'new-1'].map(queue);
    let adding = true;
    try {
      const w = await startReady(['--queues-file', file, '--builtin', 'sleep', '--drain-delay', '1',
        '--http', `127.0.0.1:${HTTP}`, '--counts-cache', '0'], { prefix }, 30000);
      const before = await countedQueues();
      assert.ok(before.has('gone-0') && before.has('kept-39') && !before.has('new-0'), [...before].join());

      // jobs flow into the kept queues the whole time
      let added = 0;
      const flow = (async () => {
        while (adding) {
          await keptQ[added % keptQ.length].add('flow', { sleepMs: 5 });
          added++;
          await new Promise(r => setTimeout(r, 5));
        }
      })();
      const long = await gone0.add('long', { sleepMs: 2000 });
      await eventually(async () => (await gone0.getJobState(long.id)) === 'active', 10000, 'the long job active');
      const waiting = await Promise.all([new0.add('early', { sleepMs: 1 }), new1.add('early', { sleepMs: 1 })]);

      fs.writeFileSync(file, `# gone-0 and gone-1 removed\n${[...kept, 'new-0', 'new-1'].join('\n')}\n`);
      w.kill('SIGHUP');
      await w.waitFor(/reload queue=gone-0 action=removing/);
      await w.waitFor(/reload queue=new-1 action=added/);
      // the added queues serve the jobs that waited for them, and new ones
      for (const [q, job] of [[new0, waiting[0]], [new1, waiting[1]]]) {
        assert.equal((await finished(q, job.id, 10000)).returnvalue.sleepMs, 1);
        const later = await q.add('later', { sleepMs: 1 });
        assert.equal((await finished(q, later.id, 10000)).failedReason, undefined);
      }
      // the removed queue's worker finished the job it held, then closed
      await w.waitFor(/reload queue=gone-0 action=removed left=0/, 10000);
      assert.equal(await gone0.getJobState(long.id), 'completed');
      await w.waitFor(/reload queue=gone-1 action=removed left=0/, 10000);
      // --http's /metrics follows the queues served
      const now = await countedQueues();
      assert.deepEqual([...now].sort(), [...kept, 'new-0', 'new-1'].sort());
      const orphan = await gone1.add('after', { sleepMs: 1 });
      const late = await gone0.add('after', { sleepMs: 1 });
      await new Promise(r => setTimeout(r, 1500));
      assert.equal(await gone1.getJobState(orphan.id), 'waiting');
      assert.equal(await gone0.getJobState(late.id), 'waiting');

      adding = false;
      await flow;
      let done = 0;
      await eventually(async () => {
        done = (await completedCounts(client, prefix, kept)).reduce((a, b) => a + b, 0);
        return done === added;
      }, 20000, 'every flowing job completed');
      for (const q of keptQ.slice(0, 5)) assert.equal(await q.getFailedCount(), 0);
      assert.ok(added > 50, `${added} jobs flowed`);
      // a second SIGHUP with the same file changes nothing
      w.kill('SIGHUP');
      await new Promise(r => setTimeout(r, 500));
      assert.equal(w.text().match(/action=added/g).length, 2);
      assert.equal((await w.stop()).code, 0);
    } finally {
      adding = false;
      await killAll();
      await closeAll(keptQ, gone0, gone1, new0, new1, shared);
    }
  });

  it('--queue-glob serves the matching queues, one a Node producer makes later, and drops one obliterated', async () => {
    const prefix = uniquePrefix('manyqglob');
    const shared = new (require('ioredis'))(connection());
    const { Queue } = nodeBullmq();
    const made = [];
    const queue = name => made[made.push(new Queue(name, { connection: shared, prefix })) - 1];
    try {
        const [acme1, acme2, other] = ['acme-1', 'acme-2', 'other-1'].map(queue);
        const first = await Promise.all([acme1, acme2, other].map(q => q.add('early', { n: 1 })));
        const w = await startReady(['--queue-glob', 'acme-*', '--queue-glob-interval', '300', '--builtin', 'echo',
          '--drain-delay', '1'], { prefix });
        assert.match(w.text(), /ready queues=acme-1,acme-2 /);
        assert.deepEqual((await finished(acme1, first[0].id)).returnvalue, { n: 1 });
        assert.deepEqual((await finished(acme2, first[1].id)).returnvalue, { n: 1 });
        // a queue made after the start, by a Node producer, is found by the next scan
        const acme3 = queue('acme-3');
        const later = await acme3.add('later', { n: 3 });
        assert.deepEqual((await finished(acme3, later.id, 10000)).returnvalue, { n: 3 });
        await w.waitFor(/reload queue=acme-3 action=added/);
        // an obliterated queue is no longer found: its worker closes
        await acme2.obliterate({ force: true });
        await w.waitFor(/reload queue=acme-2 action=removed left=0/, 10000);
        assert.equal(await other.getJobState(first[2].id), 'waiting');
        assert.equal((await w.stop()).code, 0);

        // no queue matches at start, and no periodic scan: SIGHUP looks again
        const w2 = await startReady(['--queue-glob', 'late-*', '--queue-glob-interval', '0', '--builtin', 'echo'],
          { prefix });
        const late = queue('late-1');
        const job = await late.add('late', { n: 9 });
        await new Promise(r => setTimeout(r, 800));
        assert.equal(await late.getJobState(job.id), 'waiting');
        w2.kill('SIGHUP');
        assert.deepEqual((await finished(late, job.id, 10000)).returnvalue, { n: 9 });
        assert.equal((await w2.stop()).code, 0);
    } finally {
      await killAll();
      await closeAll(made, shared);
    }
  });
});
