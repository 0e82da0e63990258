// SPDX-License-Identifier: MIT
// One bullc-worker serving thousands of queues (--queues-file, which shares
// two Redis connections among them all), beside Node workers on some of the
// same queues.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const {
  closeAll, connection, eventually, newQueue, newWorker, nodeBullmq, parseRedisUrl, redis, redisUrl, uniquePrefix,
} = require('../lib/harness');
const { killAll, startReady, tmpDir } = require('../lib/worker-proc');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

// TCP connections process `pid` holds to the tests' Redis (from /proc).
function redisConnectionsOf(pid) {
  const { port } = parseRedisUrl(redisUrl());
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remotePort = parseInt(f[2].split(':')[1], 16);
      if (remotePort === port && f[3] === '01' && inodes.has(f[9])) n++;
    }
  }
  return n;
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
});
