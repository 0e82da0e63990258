// SPDX-License-Identifier: MIT
// The reference deployment's NestJS app (@nestjs/bullmq, nest-app/app.js)
// and bullc on one Redis, both directions: the NestJS QueueService produces
// and bullc-worker processes; bullc produces and the NestJS @Processor
// classes process.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const { start } = require('../nest-app/app');
const { uniquePrefix, bullcAdd, newQueue, closeAll, eventually, Job, withTimeout, redis, bullmqVersionString } = require('../lib/harness');
const { startReady, killAll } = require('../lib/worker-proc');

after(killAll);

test('NestJS QueueService -> bullc-worker processes test-queue and notification jobs', async () => {
  const prefix = uniquePrefix('nest');
  const { app, queueService } = await start({ prefix, processors: [] });
  const q1 = newQueue('test-queue', prefix);
  const q2 = newQueue('notification', prefix);
  try {
    const worker = await startReady(
      ['--queue', 'test-queue', '--queue', 'notification', '--concurrency', '4',
        '--builtin', 'test-queue=echo', '--builtin', 'notification=echo'],
      { prefix },
    );
    const a = await queueService.addTestQueueJob('NAMED_POWERBALL', { round: 7, balls: [1, 2, 3] }, 'round_result');
    const b = await queueService.addNotificationJob('user-1', 'info', 'round 7 is over', { round: 7 });
    const done = async (q, id) => {
      const j = await Job.fromId(q, id);
      return j && j.finishedOn ? j : null;
    };
    const ja = await eventually(() => done(q1, a.id), 10000, 'the test-queue job');
    const jb = await eventually(() => done(q2, b.id), 10000, 'the notification job');
    assert.deepStrictEqual(ja.returnvalue, a.data, 'echo returns the data NestJS sent');
    assert.strictEqual(ja.data.messageType, 'round_result');
    assert.deepStrictEqual(jb.returnvalue, { userId: 'user-1', type: 'info', message: 'round 7 is over', data: { round: 7 } });
    assert.deepStrictEqual(ja.opts.removeOnComplete, 10);
    assert.deepStrictEqual(ja.opts.removeOnFail, 5);
    // The app's queues are the tests' Node major (5.81.5 under compat5_nest).
    const client = redis();
    try {
      assert.strictEqual(await client.hget(`${prefix}:test-queue:meta`, 'version'), bullmqVersionString());
    } finally {
      client.disconnect();
    }
    await worker.stop();
  } finally {
    await closeAll(q1, q2);
    await app.close();
  }
});

test('bullc producer -> the NestJS @Processor (WorkerHost) processes the jobs', async () => {
  const prefix = uniquePrefix('nest');
  const { app, seen } = await start({ prefix, processors: ['test-queue', 'notification'] });
  const q1 = newQueue('test-queue', prefix);
  try {
    const data = { provider: 'NAMED_POWERBALL', data: { round: 9 }, timestamp: Date.now(), messageType: 'round_result' };
    const id = bullcAdd(prefix, 'test-queue', 'game_data', data, { removeOnComplete: 10, removeOnFail: 5 });
    const nid = bullcAdd(prefix, 'notification', 'send-notification',
      { userId: 'u9', type: 'alert', message: 'hello', data: {} });
    await withTimeout(eventually(() => seen['test-queue'].find(s => s.id === id), 10000, 'NestJS test-queue'), 11000, 'x');
    await eventually(() => seen.notification.find(s => s.id === nid), 10000, 'NestJS notification');
    const got = seen['test-queue'].find(s => s.id === id);
    assert.strictEqual(got.name, 'game_data');
    assert.deepStrictEqual(got.data, data);
    assert.strictEqual(got.opts.removeOnComplete, 10);
    assert.strictEqual(got.opts.removeOnFail, 5);
    const j = await eventually(async () => {
      const x = await Job.fromId(q1, id);
      return x && x.finishedOn ? x : null;
    }, 10000, 'completion');
    assert.deepStrictEqual(j.returnvalue, { provider: 'NAMED_POWERBALL', messageType: 'round_result' });
  } finally {
    await closeAll(q1);
    await app.close();
  }
});
