// SPDX-License-Identifier: MIT
// The reference deployment in C: the NestJS app (nest-app/app.js, its
// @Processor classes off) produces, one bullc-worker runs the game-data and
// notification builtins, and Node reads the results; the C producer helpers
// (tools/reference) write the jobs the NestJS QueueService writes.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { start } = require('../nest-app/app');
const { Job, closeAll, eventually, newQueue, redis, uniquePrefix } = require('../lib/harness');
const { killAll, startReady } = require('../lib/worker-proc');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

async function finished(queue, id, ms = 10000) {
  await eventually(async () => ['completed', 'failed'].includes(await queue.getJobState(id)), ms, `job ${id} to finish`);
  return Job.fromId(queue, id);
}

// bullc-test-reference-add: the C helpers from the command line; the id.
function cAdd(prefix, ...args) {
  const bin = path.join(process.env.BULLC_BIN_DIR, 'bullc-test-reference-add');
  const r = spawnSync(bin, [prefix, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

describe('the reference deployment in C', () => {
  it('NestJS QueueService -> bullc-worker (game-data, notification) -> Redis, Pub/Sub and Node', async () => {
    const prefix = uniquePrefix('refdep');
    const tq = newQueue('test-queue', prefix);
    const nq = newQueue('notification', prefix);
    const client = redis();
    const sub = redis();
    closers.push(tq, nq, client, sub);
    const rounds = [];
    const notes = [];
    sub.on('message', (ch, msg) => (ch.endsWith(':rounds') ? rounds : notes).push(JSON.parse(msg)));
    await sub.subscribe(`${prefix}:test-queue:rounds`, `${prefix}:notification:user:user-1`);
    // the PM2 entry's flags (tools/pm2/ecosystem.config.js), with a short drain delay
    const w = await startReady(['--queue', 'test-queue', '--queue', 'notification',
      '--builtin', 'test-queue=game-data', '--builtin', 'notification=notification',
      '--concurrency', '8', '--drain-delay', '1'], { prefix });
    const { app, queueService } = await start({ prefix, processors: [] });
    try {
      const games = [];
      for (let round = 1; round <= 15; round++) {
        games.push(await queueService.addTestQueueJob('NAMED_POWERBALL', { round, balls: [round, 2, 3] }, 'round_result'));
      }
      const note = await queueService.addNotificationJob('user-1', 'info', 'round 15 is over', { round: 15 });
      const bad = await queueService.addNotificationJob('', 'info', 'no user');
      // all 15 done (none waiting or active): only then is the completed set stable
      await eventually(async () => {
        const c = await tq.getJobCounts('completed', 'wait', 'active');
        return c.completed === 10 && c.wait === 0 && c.active === 0 && rounds.length === 15;
      }, 10000, 'test-queue done');
      // removeOnComplete: 10 -> the 10 newest completed jobs are kept
      const kept = await tq.getCompleted();
      assert.equal(kept.length, 10);
      for (const j of kept) {
        assert.deepEqual(j.returnvalue,
          { provider: 'NAMED_POWERBALL', messageType: 'round_result', round: j.data.data.round, published: 1 });
      }
      await eventually(() => rounds.length === 15, 5000, '15 published rounds');
      assert.deepEqual(rounds.map(r => r.data.round).sort((a, b) => a - b), games.map(g => g.data.data.round));
      const latest = JSON.parse(await client.hget(`${prefix}:test-queue:latest`, 'NAMED_POWERBALL'));
      const newest = games.reduce((a, b) => (b.data.timestamp >= a.data.timestamp ? b : a));
      assert.equal(latest.timestamp, newest.data.timestamp, 'the hash holds the newest round');

      const n = await finished(nq, note.id);
      assert.deepEqual(n.returnvalue, { delivered: true, userId: 'user-1', published: 1 });
      const [entry] = await client.lrange(`${prefix}:notification:user:user-1`, 0, -1);
      assert.deepEqual(JSON.parse(entry), { jobId: note.id, userId: 'user-1', type: 'info',
        message: 'round 15 is over', data: { round: 15 }, timestamp: n.timestamp });
      await eventually(() => notes.length === 1, 5000, 'the published notification');
      const b = await finished(nq, bad.id);
      assert.equal(b.failedReason, 'send-notification: "userId" must be a non-empty string');
      assert.equal(b.opts.removeOnFail, 5);
    } finally {
      await app.close();
    }
    assert.equal((await w.stop()).code, 0);
  });

  it('the C helpers write the jobs the NestJS QueueService writes (Job.fromId, timestamps aside)', async () => {
    const nestPrefix = uniquePrefix('refnest');
    const cPrefix = uniquePrefix('refc');
    const { app, queueService } = await start({ prefix: nestPrefix, processors: [] });
    const queues = {};
    for (const p of [nestPrefix, cPrefix]) {
      for (const name of ['test-queue', 'notification']) {
        queues[`${p}/${name}`] = newQueue(name, p);
        closers.push(queues[`${p}/${name}`]);
      }
    }
    // Job.fromId as Node sees it; the times of the add and of Date.now() in the data differ
    const view = async (prefix, queueName, id) => {
      const j = (await Job.fromId(queues[`${prefix}/${queueName}`], id)).asJSON();
      const data = JSON.parse(j.data);
      const hasTimestamp = typeof data.timestamp === 'number';
      delete data.timestamp;
      return { name: j.name, data: JSON.stringify(data), hasTimestamp, opts: j.opts, delay: j.delay,
        priority: j.priority, attemptsMade: j.attemptsMade, progress: j.progress };
    };
    try {
      const pairs = [];
      const game = { round: 7, balls: [3, 14, 15], odds: 1.5, label: 'naïve "quoted"\n', nested: { ok: true, none: null } };
      pairs.push(['test-queue',
        (await queueService.addTestQueueJob('NAMED_POWERBALL', game, 'round_result')).id,
        cAdd(cPrefix, 'game-data', 'NAMED_POWERBALL', JSON.stringify(game), 'round_result')]);
      pairs.push(['test-queue', // the default messageType, a raw text message
        (await queueService.addTestQueueJob('P2', 'plain text <b>')).id,
        cAdd(cPrefix, 'game-data', 'P2', JSON.stringify('plain text <b>'))]);
      pairs.push(['notification',
        (await queueService.addNotificationJob('user-1', 'info', 'round 7 is over', { round: 7 })).id,
        cAdd(cPrefix, 'notification', 'user-1', 'info', 'round 7 is over', '{"round": 7}')]);
      pairs.push(['notification', // the default data {}
        (await queueService.addNotificationJob('user-2', 'alert', 'hello')).id,
        cAdd(cPrefix, 'notification', 'user-2', 'alert', 'hello')]);
      for (const [queueName, nestId, cId] of pairs) {
        const a = await view(nestPrefix, queueName, nestId);
        const b = await view(cPrefix, queueName, cId);
        assert.deepEqual(b, a, `${queueName}: C job ${cId} vs NestJS job ${nestId}`);
      }
      const [nestGame, cGame] = [[nestPrefix, pairs[0][1]], [cPrefix, pairs[0][2]]].map(([p, id]) => {
        return Job.fromId(queues[`${p}/test-queue`], id);
      });
      for (const j of [await nestGame, await cGame]) {
        assert.ok(Math.abs(j.data.timestamp - j.timestamp) < 1000, 'data.timestamp is the time of the add');
      }
    } finally {
      await app.close();
    }
  });
});
