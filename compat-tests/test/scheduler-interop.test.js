// SPDX-License-Identifier: MIT
// Job schedulers shared by Node BullMQ and bullc: schedulers a Node queue
// makes run under bullc-worker with the iterations a Node worker gives them
// (every interval slot once, none skipped; limit, start and end dates,
// immediately), schedulers bullc makes run under a Node worker, a mixed fleet
// of Node and bullc workers shares one scheduler without doubles or gaps, and
// removing a scheduler stops it.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { startReady, killAll } = require('../lib/worker-proc');

after(killAll);

const slotOf = job => Number(job.id.split(':').pop());

// The completed iterations of scheduler `id`, by slot time.
async function iterations(queue, id) {
  const jobs = await queue.getJobs(['completed'], 0, -1, true);
  return jobs.filter(j => j.repeatJobKey === id).sort((a, b) => slotOf(a) - slotOf(b));
}
const slots = async (queue, id) => (await iterations(queue, id)).map(slotOf);

// No iteration twice, none skipped. The next slot is the previous one plus
// `every` unless the previous iteration was taken after that slot had passed
// (then the script, Node's and bullc's alike, skips to the next slot to
// come): on a loaded machine a worker may be that late, and that is no gap.
async function assertNoDoublesOrGaps(queue, id, every, what) {
  const jobs = await iterations(queue, id);
  const ms = jobs.map(slotOf);
  assert.equal(new Set(ms).size, ms.length, `${what}: an iteration ran twice: ${ms}`);
  for (let i = 1; i < jobs.length; i++) {
    const step = ms[i] - ms[i - 1];
    assert.ok(step >= every && step % every === 0, `${what}: slots off the grid: ${ms}`);
    if (step > every)
      assert.ok(jobs[i - 1].processedOn > ms[i - 1] + every - 20,
        `${what}: slot ${ms[i - 1] + every} skipped though ${jobs[i - 1].id} was taken at ${jobs[i - 1].processedOn}`);
  }
  return ms;
}

// Runs `fn(queue, prefix)` on a queue of its own under bullc-worker (echo).
async function underBullc(tag, fn, builtin = 'echo') {
  const prefix = h.uniquePrefix(tag);
  const queue = h.newQueue('q', prefix);
  let w;
  try {
    w = await startReady(['--queue', 'q', '--builtin', builtin], { prefix });
    await fn(queue, prefix, w);
  } finally {
    if (w) await w.stop();
    await h.closeAll(queue);
  }
}

// node: "should use ".every" as a valid interval"
test('a Node every scheduler runs under bullc-worker, every slot once', async () => {
  await underBullc('sched-every', async (queue, prefix, w) => {
    await queue.upsertJobScheduler('tick', { every: 400 }, { name: 'tick', data: { n: 1 } });
    await h.eventually(async () => (await slots(queue, 'tick')).length >= 6, 10000, 'six iterations');
    await assertNoDoublesOrGaps(queue, 'tick', 400, 'every 400');
    // the next one is already waiting in delayed, its template intact
    const delayed = await queue.getDelayed();
    assert.equal(delayed.length, 1);
    assert.deepEqual(delayed[0].data, { n: 1 });
    assert.equal(delayed[0].name, 'tick');
    assert.equal(delayed[0].opts.repeat.count, (await queue.getJobScheduler('tick')).iterationCount);
    assert.doesNotMatch(w.text(), /Failed to add repeatable job/);
  });
});

// node: "should not repeat more than 5 times"
test('a Node scheduler with a limit stops after that many iterations under bullc-worker', async () => {
  await underBullc('sched-limit', async queue => {
    await queue.upsertJobScheduler('lim', { every: 200, limit: 5 }, { name: 'l' });
    await h.eventually(async () => (await slots(queue, 'lim')).length === 5, 10000, 'five iterations');
    await h.sleep(1000);
    const ms = await assertNoDoublesOrGaps(queue, 'lim', 200, 'limit 5');
    assert.equal(ms.length, 5, `only five: ${ms}`);
    assert.equal((await queue.getDelayed()).length + (await queue.getWaitingCount()), 0);
  });
});

// The iterations (slot times relative to the start date) a scheduler with a
// start and an end date gets under a Node worker or under bullc-worker.
async function dateWindow(kind) {
  const prefix = h.uniquePrefix(`sched-dates-${kind}`);
  const queue = h.newQueue('q', prefix);
  let w;
  try {
    if (kind === 'node') w = h.newWorker('q', prefix, async job => job.data);
    else w = await startReady(['--queue', 'q', '--builtin', 'echo'], { prefix });
    const start = Date.now() + 1000;
    const end = start + 1100;
    await queue.upsertJobScheduler('win', { every: 250, startDate: start, endDate: end }, { name: 'w' });
    await h.sleep(800);
    assert.equal((await slots(queue, 'win')).length, 0, `${kind}: nothing before the start date`);
    await h.sleep(end - Date.now() + 1500);
    const ms = await assertNoDoublesOrGaps(queue, 'win', 250, `${kind}: start/end`);
    const jobs = await iterations(queue, 'win');
    return { ms: ms.map(t => t - start), taken: jobs.map(j => j.processedOn - start) };
  } finally {
    if (w) await (kind === 'node' ? w.close() : w.stop());
    await h.closeAll(queue);
  }
}

// node: "it should stop repeating after endDate"
test('a Node scheduler with start and end dates gets the same iterations under bullc-worker as under Node', async () => {
  const node = await dateWindow('node');
  const bullc = await dateWindow('bullc');
  // Both by Node's rule: the first at the start date; a worker that takes an
  // iteration before the end date schedules the next one, after it none (on
  // a quiet machine: 0, 250, ..., 1250; a worker late past 1100 ends sooner)
  for (const [who, r] of [['node', node], ['bullc', bullc]]) {
    assert.equal(r.ms[0], 0, who);
    const last = r.ms.length - 1;
    for (let i = 0; i < last; i++) assert.ok(r.taken[i] <= 1100 + 60, `${who}: ${r.ms[i]} was taken after the end`);
    assert.ok(r.taken[last] > 1100 - 60, `${who}: no iteration after ${r.ms[last]}, taken before the end`);
    assert.ok(r.ms[last] <= 1250, `${who}: ${r.ms}`);
  }
});

test('a Node scheduler with immediately runs its first iteration at once under bullc-worker', async () => {
  await underBullc('sched-now', async queue => {
    const t0 = Date.now();
    await queue.upsertJobScheduler('now', { every: 60000, immediately: true }, { name: 'n' });
    await h.eventually(async () => (await slots(queue, 'now')).length === 1, 5000, 'the first iteration');
    assert.ok(Date.now() - t0 < 5000);
    const delayed = await queue.getDelayed();
    assert.equal(delayed.length, 1, 'the next one waits a minute');
    assert.ok(delayed[0].delay > 50000, `delay ${delayed[0].delay}`);
  });
});

test('a mixed fleet of Node and bullc workers shares one scheduler without doubles or gaps', async () => {
  await underBullc('sched-fleet', async queue => {
    const prefix = queue.opts.prefix;
    // each iteration takes longer than the interval, so the worker that took
    // one is still busy when the next is due and the other one takes it
    const node = h.newWorker('q', prefix, async () => {
      await h.sleep(300);
      return { by: 'node' };
    });
    try {
      await queue.upsertJobScheduler('shared', { every: 200 }, { name: 's', data: { sleepMs: 300 } });
      await h.eventually(async () => (await slots(queue, 'shared')).length >= 16, 30000, 'sixteen iterations');
    } finally {
      await node.close();
    }
    const jobs = await iterations(queue, 'shared');
    const by = new Set(jobs.map(j => (j.returnvalue && j.returnvalue.by === 'node' ? 'node' : 'bullc')));
    assert.deepEqual([...by].sort(), ['bullc', 'node'], 'both workers took iterations');
    await assertNoDoublesOrGaps(queue, 'shared', 200, 'mixed fleet');
  }, 'sleep');
});

test('removing a Node scheduler stops it under bullc-worker', async () => {
  await underBullc('sched-remove', async queue => {
    await queue.upsertJobScheduler('gone', { every: 200 }, { name: 'g' });
    await h.eventually(async () => (await slots(queue, 'gone')).length >= 2, 5000, 'two iterations');
    assert.equal(await queue.removeJobScheduler('gone'), true);
    await h.sleep(300);
    const n = (await slots(queue, 'gone')).length;
    await h.sleep(1000);
    assert.equal((await slots(queue, 'gone')).length, n, 'no iteration after the removal');
    assert.equal(await queue.getJobSchedulersCount(), 0);
    assert.equal((await queue.getDelayed()).length, 0);
  });
});

// cron-parser, as Node BullMQ 6.7.0 calls it (its own dependency)
const nextCron = (pattern, tz, from) =>
  require('cron-parser').CronExpressionParser.parse(pattern, { currentDate: new Date(from), tz }).next().getTime();

// A pattern scheduler in a zone with a 45-minute offset, run once at once
// (immediately): the worker that takes that iteration computes the next
// one with the cron engine; bullc-worker's must be the one Node's computes.
async function cronNext(kind) {
  const prefix = h.uniquePrefix(`sched-cron-${kind}`);
  const queue = h.newQueue('q', prefix);
  let w;
  try {
    if (kind === 'node') w = h.newWorker('q', prefix, async job => job.data);
    else w = await startReady(['--queue', 'q', '--builtin', 'echo'], { prefix });
    const pattern = '0 15 10 * * *';
    const tz = 'Asia/Kathmandu';
    await queue.upsertJobScheduler('daily', { pattern, tz, immediately: true }, { name: 'd', data: { k: 1 } });
    await h.eventually(async () => (await slots(queue, 'daily')).length === 1, 10000, 'the immediate iteration');
    await h.eventually(async () => (await queue.getDelayedCount()) === 1, 5000, 'the next iteration');
    const [first] = await iterations(queue, 'daily');
    const [next] = await queue.getDelayed();
    assert.equal(next.id, `repeat:daily:${nextCron(pattern, tz, first.processedOn)}`, `${kind}: the next day's 10:15`);
    assert.equal(next.opts.repeat.tz, tz);
    assert.equal(next.opts.repeat.count, 2);
    return next.id;
  } finally {
    if (w) await (kind === 'node' ? w.close() : w.stop());
    await h.closeAll(queue);
  }
}

test('a Node cron scheduler with a time zone gets its next iteration from bullc-worker at the time Node gives it', async () => {
  assert.equal(await cronNext('bullc'), await cronNext('node'));
});

test('a Node cron scheduler every second runs under bullc-worker, every second once', async () => {
  await underBullc('sched-cron-sec', async (queue, prefix, w) => {
    await queue.upsertJobScheduler('sec', { pattern: '* * * * * *', tz: 'America/Sao_Paulo' }, { name: 's' });
    await h.eventually(async () => (await slots(queue, 'sec')).length >= 4, 10000, 'four iterations');
    const ms = await assertNoDoublesOrGaps(queue, 'sec', 1000, 'every second');
    for (const t of ms) assert.equal(t % 1000, 0, `on whole seconds: ${ms}`);
    assert.doesNotMatch(w.text(), /Failed to add repeatable job/);
  });
});
