// SPDX-License-Identifier: MIT
// bullc-worker --builtin test-queue=game-data: game_data jobs from the
// NestJS QueueService and from bullc, the latest-round hash and the rounds
// channel as Node (ioredis) reads them, validation failures.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { start } = require('../nest-app/app');
const { Job, bullcAdd, closeAll, eventually, newQueue, redis, uniquePrefix } = require('../lib/harness');
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

// A subscriber of `channel`: its messages, parsed, in order.
async function subscriber(channel) {
  const sub = redis();
  closers.push(sub);
  const got = [];
  sub.on('message', (ch, msg) => ch === channel && got.push(JSON.parse(msg)));
  await sub.subscribe(channel);
  return got;
}

async function setup(tag, extra = []) {
  const prefix = uniquePrefix(tag);
  const queue = newQueue('test-queue', prefix);
  const client = redis();
  closers.push(queue, client);
  const w = await startReady(['--queue', 'test-queue', '--builtin', 'test-queue=game-data', '--drain-delay', '1', ...extra],
    { prefix });
  return { prefix, queue, client, w };
}

describe('bullc-worker --builtin game-data', () => {
  it('records the latest round per provider, publishes it and returns a summary (NestJS producer)', async () => {
    const { prefix, queue, client, w } = await setup('gdok');
    const rounds = await subscriber(`${prefix}:test-queue:rounds`);
    const { app, queueService } = await start({ prefix, processors: [] });
    try {
      const before = Date.now();
      const job = await queueService.addTestQueueJob('NAMED_POWERBALL', { round: 7, balls: [3, 14, 15] }, 'round_result');
      const j = await finished(queue, job.id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      assert.deepEqual(j.returnvalue, { provider: 'NAMED_POWERBALL', messageType: 'round_result', round: 7, published: 1 });
      await eventually(() => rounds.length === 1, 5000, 'the published round');
      const m = rounds[0];
      assert.deepEqual({ ...m, receivedAt: 0 }, {
        provider: 'NAMED_POWERBALL', jobId: job.id, messageType: 'round_result',
        timestamp: job.data.timestamp, data: { round: 7, balls: [3, 14, 15] }, receivedAt: 0,
      });
      assert.ok(m.receivedAt >= before && m.receivedAt <= Date.now(), `receivedAt ${m.receivedAt}`);
      const latest = await client.hgetall(`${prefix}:test-queue:latest`);
      assert.deepEqual(Object.keys(latest), ['NAMED_POWERBALL']);
      assert.deepEqual(JSON.parse(latest.NAMED_POWERBALL), m);
      // the reference options hold: kept as completed (removeOnComplete: 10)
      assert.equal(j.opts.removeOnComplete, 10);
    } finally {
      await app.close();
    }
    assert.equal((await w.stop()).code, 0);
  });

  it('keeps the producer\'s bytes, the newest round per provider, and publishes every round', async () => {
    const { prefix, queue, client, w } = await setup('gdbytes');
    const rounds = await subscriber(`${prefix}:test-queue:rounds`);
    // bullc writes the data as given: numbers Node would re-print differently stay as sent
    const newer = bullcAdd(prefix, 'test-queue', 'game_data',
      '{"provider":"P1","data":{"round":2,"odds":1.950,"id":12345678901234567890},"timestamp":2000,"messageType":"round_result"}');
    const older = bullcAdd(prefix, 'test-queue', 'game_data',
      '{"provider":"P1","data":{"round":1},"timestamp":1000,"messageType":"round_result"}');
    const text = bullcAdd(prefix, 'test-queue', 'game_data',
      '{"provider":"P2","data":"not json <b>","timestamp":1500,"messageType":"raw"}');
    for (const id of [newer, older, text]) {
      const j = await finished(queue, id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
    }
    assert.deepEqual((await Job.fromId(queue, older)).returnvalue,
      { provider: 'P1', messageType: 'round_result', round: 1, published: 1 });
    assert.deepEqual((await Job.fromId(queue, text)).returnvalue, { provider: 'P2', messageType: 'raw', published: 1 },
      'no round when data is not an object');
    const latest = await client.hgetall(`${prefix}:test-queue:latest`);
    assert.match(latest.P1, /"data":\{"round":2,"odds":1\.950,"id":12345678901234567890\}/, 'the newest round, bytes kept');
    assert.equal(JSON.parse(latest.P1).jobId, newer, 'an older round processed later does not replace it');
    assert.equal(JSON.parse(latest.P2).data, 'not json <b>');
    await eventually(() => rounds.length === 3, 5000, 'three published rounds');
    assert.deepEqual(rounds.map(r => r.jobId), [newer, older, text]);
    await w.stop();
  });

  it('fails malformed jobs and other job names without retries, naming the field', async () => {
    const { prefix, queue, client, w } = await setup('gdbad');
    const ok = { provider: 'P', data: { round: 1 }, timestamp: 1717171717171, messageType: 'round_result' };
    const without = k => Object.fromEntries(Object.entries(ok).filter(([key]) => key !== k));
    const cases = [
      ['other', ok, /unknown job name 'other'/],
      ['game_data', 'just text', /the job data must be a JSON object/],
      ['game_data', [1, 2], /the job data must be a JSON object/],
      ['game_data', without('provider'), /"provider" must be a non-empty string/],
      ['game_data', { ...ok, provider: '' }, /"provider" must be a non-empty string/],
      ['game_data', { ...ok, provider: 5 }, /"provider" must be a non-empty string/],
      ['game_data', without('data'), /"data" is missing/],
      ['game_data', without('timestamp'), /"timestamp" must be a number/],
      ['game_data', { ...ok, timestamp: '1717171717171' }, /"timestamp" must be a number/],
      ['game_data', { ...ok, timestamp: -5 }, /"timestamp" must be a number/],
      ['game_data', without('messageType'), /"messageType" must be a non-empty string/],
      ['game_data', { ...ok, messageType: '' }, /"messageType" must be a non-empty string/],
      ['game_data', { ...ok, messageType: null }, /"messageType" must be a non-empty string/],
    ];
    const jobs = [];
    for (const [name, data] of cases) {
      jobs.push(await queue.add(name, data, { attempts: 3, backoff: { type: 'fixed', delay: 10 } }));
    }
    for (let i = 0; i < cases.length; i++) {
      const j = await finished(queue, jobs[i].id);
      assert.equal(await j.getState(), 'failed', `case ${i} ${JSON.stringify(cases[i][1])}`);
      assert.match(j.failedReason, cases[i][2]);
      assert.equal(j.attemptsMade, 1, `case ${i}: no retry`);
    }
    assert.equal(await client.exists(`${prefix}:test-queue:latest`), 0, 'nothing recorded');
    // null data is valid JSON, so a valid round
    const nullData = await queue.add('game_data', { ...ok, data: null });
    assert.deepEqual((await finished(queue, nullData.id)).returnvalue,
      { provider: 'P', messageType: 'round_result', published: 0 });
    await w.stop();
  });

  it('a game-data builtin takes no --builtin-config', async () => {
    const { startWorker } = require('../lib/worker-proc');
    const w = startWorker(['--queue', 'test-queue', '--builtin', 'test-queue=game-data', '--builtin-config', '{"x":1}'],
      { prefix: uniquePrefix('gdcfg') });
    assert.equal((await w.waitExit()).code, 2);
    assert.match(w.text(), /builtin game-data takes no configuration/);
  });
});
