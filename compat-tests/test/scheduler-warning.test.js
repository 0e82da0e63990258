// SPDX-License-Identifier: MIT
// bullc-worker schedules a job scheduler's next iteration as Node's worker
// does, and refuses, as Node 6 refuses it, a legacy (v5) repeatable job's
// key: that job is processed and the log says why no next one follows,
// never in silence.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const { uniquePrefix, newQueue, closeAll, eventually, redis } = require('../lib/harness');
const { startReady, killAll } = require('../lib/worker-proc');

after(killAll);

test("a job scheduler's job is processed and its next iteration scheduled", async () => {
  const prefix = uniquePrefix('sched');
  const q = newQueue('q', prefix);
  try {
    await q.upsertJobScheduler('every-minute', { every: 60000 }, { name: 'tick', data: { n: 1 } });
    const w = await startReady(['--queue', 'q', '--builtin', 'echo'], { prefix });
    await eventually(async () => (await q.getCompletedCount()) === 1, 10000, 'the scheduler job processed');
    await eventually(async () => (await q.getDelayedCount()) === 1, 5000, 'the next iteration scheduled');
    const [next] = await q.getDelayed();
    assert.equal(next.repeatJobKey, 'every-minute');
    assert.equal(next.opts.repeat.count, 2);
    assert.doesNotMatch(w.text(), /Failed to add repeatable job/);
    await w.stop();
  } finally {
    await closeAll(q);
  }
});

// node: "should emit a migration error while continuing current job processing"
test("a legacy repeatable job's key is refused with Node's message", async () => {
  const prefix = uniquePrefix('sched');
  const q = newQueue('q', prefix);
  const r = redis();
  try {
    const job = await q.add('old', { n: 1 });
    const legacy = 'old::::*/5 * * * *';
    await r.hset(`${prefix}:q:${job.id}`, 'rjk', legacy);
    const w = await startReady(['--queue', 'q', '--builtin', 'echo'], { prefix });
    await eventually(async () => (await q.getCompletedCount()) === 1, 10000, 'the job processed');
    await w.waitFor(/Failed to add repeatable job for next iteration: Legacy repeatable job metadata is not supported/, 5000);
    assert.match(w.text(), /old::::\*\/5 \* \* \* \*/);
    assert.equal(await q.getDelayedCount(), 0);
    await w.stop();
  } finally {
    r.disconnect();
    await closeAll(q);
  }
});
