// SPDX-License-Identifier: MIT
// Job schedulers (repeatable jobs) are not implemented by bullc yet: a
// bullc-worker that takes a scheduler's job processes it and says, in its
// log, that it does not schedule the next iteration — never in silence.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const { uniquePrefix, newQueue, closeAll, eventually } = require('../lib/harness');
const { startReady, killAll } = require('../lib/worker-proc');

after(killAll);

test('a job scheduler job is processed and the missing next iteration is reported', async () => {
  const prefix = uniquePrefix('sched');
  const q = newQueue('q', prefix);
  try {
    await q.upsertJobScheduler('every-minute', { every: 60000 }, { name: 'tick', data: { n: 1 } });
    const w = await startReady(['--queue', 'q', '--builtin', 'echo'], { prefix });
    await eventually(async () => (await q.getCompletedCount()) === 1, 10000, 'the scheduler job processed');
    await w.waitFor(/job scheduler 'every-minute'.*does not schedule its next iteration/, 5000);
    await w.stop();
  } finally {
    await closeAll(q);
  }
});
