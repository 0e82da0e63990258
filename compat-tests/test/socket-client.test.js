// SPDX-License-Identifier: MIT
// bullc-socket-client's jobs as Node sees them: a real bullmq 6.7.0 Worker
// processes the game_data jobs the C client adds from bullc-fake-provider's
// feed (data shape, order, options, removeOnComplete), and a job added by the
// client with --dedup-ttl 0 is the job Node's queue.add makes.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { track } = require('../lib/children');
const h = require('../lib/harness');

const Q = 'test-queue';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Runs BULLC_BIN_DIR/<prog>; collects its output; `exited` resolves to the code.
function run(prog, args) {
  const child = track(spawn(path.join(process.env.BULLC_BIN_DIR, prog), args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const p = { child, out: '', err: '' };
  child.stdout.on('data', d => (p.out += d));
  child.stderr.on('data', d => (p.err += d));
  p.exited = new Promise(resolve => child.on('exit', (code, signal) => resolve(signal ? 128 : code)));
  return p;
}

async function stop(p, ms = 15000) {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
  return h.withTimeout(p.exited, ms, `${path.basename(p.child.spawnfile)} to exit`);
}

async function provider(count) {
  const port = await freePort();
  const p = run('bullc-fake-provider', ['--port', String(port), '--count', String(count), '--rate', '300',
    '--linger', '-1', '--duration', '60']);
  await h.eventually(() => p.out.includes('listening'), 5000, 'the provider to listen');
  return { p, url: `ws://127.0.0.1:${port}/feed` };
}

function client(url, prefix, extra = []) {
  return run('bullc-socket-client', ['--url', url, '--provider', 'NAMED_POWERBALL', '--subscribe',
    '{"op":"subscribe"}', '--redis', h.redisUrl(), '--prefix', prefix, '--stats-interval', '0', ...extra]);
}

test('a Node worker processes the socket client\'s game_data jobs in feed order', async t => {
  const prefix = h.uniquePrefix('sock');
  const { p: fp, url } = await provider(30);
  const sc = client(url, prefix);
  const seen = [];
  const worker = h.newWorker(Q, prefix, async job => {
    seen.push({ id: job.id, name: job.name, data: job.data, opts: job.opts });
    return { ok: job.data.data.seq };
  });
  const client_ = h.redis();
  t.after(() => h.closeAll(worker, client_));
  try {
    await h.eventually(() => seen.length >= 30, 20000, '30 jobs processed by Node');
    await h.eventually(async () => (await client_.zcard(`${prefix}:${Q}:completed`)) === 10, 5000,
      'removeOnComplete: 10 to keep the last 10');
  } finally {
    assert.equal(await stop(sc), 0, sc.err);
    assert.equal(await stop(fp), 0);
  }
  assert.equal(seen.length, 30);
  seen.forEach((j, i) => {
    assert.equal(j.name, 'game_data');
    assert.equal(j.data.provider, 'NAMED_POWERBALL');
    assert.equal(j.data.messageType, 'round_result');
    assert.equal(typeof j.data.timestamp, 'number');
    assert.equal(j.data.data.type, 'round_result');
    assert.equal(j.data.data.seq, i + 1, 'processed in feed order');
    assert.equal(j.data.data.balls.length, 5);
    assert.equal(j.opts.removeOnComplete, 10);
    assert.equal(j.opts.removeOnFail, 5);
    assert.match(j.opts.deduplication.id, /^[0-9a-f]{16}:\d+$/);
    assert.equal(j.opts.deduplication.ttl, 3600000);
  });
  assert.ok(Number(seen[29].id) > Number(seen[0].id));
});

test('with --dedup-ttl 0 the job is the one Node queue.add makes', async t => {
  const prefix = h.uniquePrefix('sock');
  const { p: fp, url } = await provider(1);
  const sc = client(url, prefix, ['--dedup-ttl', '0']);
  const queue = h.newQueue(Q, prefix);
  t.after(() => h.closeAll(queue));
  try {
    await h.eventually(async () => (await queue.getWaitingCount()) === 1, 10000, 'the client\'s job');
  } finally {
    assert.equal(await stop(sc), 0, sc.err);
    assert.equal(await stop(fp), 0);
  }
  const [ours] = await queue.getWaiting();
  const node = await queue.add('game_data', ours.data, { removeOnComplete: 10, removeOnFail: 5 });
  const theirs = await h.Job.fromId(queue, node.id);
  const view = j => ({ name: j.name, data: j.data, opts: j.opts, delay: j.delay, priority: j.priority,
    attemptsMade: j.attemptsMade, deduplicationId: j.deduplicationId });
  assert.deepEqual(view(ours), view(theirs));
});
