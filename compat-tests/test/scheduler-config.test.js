// SPDX-License-Identifier: MIT
// bullc-worker's config file "schedulers": upserted at start, as a NestJS app
// upserts its schedulers at boot (Node sees them as its own and a Node
// worker could run them); the whole array is checked first, so one bad entry
// exits 2 and writes nothing, not even the good entries before it.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness');
const { startReady, startWorker, killAll, tmpDir } = require('../lib/worker-proc');

after(killAll);

function config(dir, name, body) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, JSON.stringify(body));
  return file;
}

test('schedulers of the config file are upserted at start and run', async () => {
  const prefix = h.uniquePrefix('sched-cfg');
  const queue = h.newQueue('q', prefix);
  const dir = tmpDir('sched-cfg');
  const file = config(dir, 'ok.json', {
    queues: { q: { builtin: 'echo' } },
    schedulers: [
      { queue: 'q', key: 'beat', every: 300, name: 'pulse', data: { v: 1 }, opts: { attempts: 2 } },
      { queue: 'q', key: 'daily', pattern: '0 0 7 * * 1-5', tz: 'Europe/Paris', limit: 10 },
      { queue: 'other', key: 'elsewhere', every: 60000, startDate: Date.now() + 3600000 },
    ],
  });
  let w;
  try {
    // inside the try: a worker that does not start must not leave the queue open
    w = await startReady(['--config', file], { prefix });
    assert.match(w.text(), /scheduler queue=q key=beat next_job=repeat:beat:\d+/);
    const beat = await queue.getJobScheduler('beat');
    assert.deepEqual([beat.every, beat.name, beat.template], [300, 'pulse', { data: { v: 1 }, opts: { attempts: 2 } }]);
    const daily = await queue.getJobScheduler('daily');
    assert.deepEqual([daily.pattern, daily.tz, daily.limit], ['0 0 7 * * 1-5', 'Europe/Paris', 10]);
    const other = h.newQueue('other', prefix);
    try {
      assert.equal((await other.getJobScheduler('elsewhere')).every, 60000);
    } finally {
      await h.closeAll(other);
    }
    // its iterations run under this worker
    await h.eventually(async () => {
      const done = await queue.getJobs(['completed']);
      return done.filter(j => j.repeatJobKey === 'beat').length >= 3;
    }, 10000, 'three iterations of beat');
  } finally {
    if (w) await w.stop();
    await h.closeAll(queue);
  }
});

test('one bad scheduler in the config file: exit 2 and nothing written', async () => {
  const prefix = h.uniquePrefix('sched-cfg');
  const r = h.redis();
  const dir = tmpDir('sched-cfg');
  try {
    const good = { queue: 'q', key: 'good', every: 1000 };
    for (const [bad, msg] of [
      [{ queue: 'q', key: 'b', every: 100, pattern: '* * * * *' }, /one of every and pattern/],
      [{ queue: 'q', key: 'b', pattern: '61 * * * *' }, /pattern/],
      [{ queue: 'q', key: 'b', pattern: '* * * * *', tz: 'Mars/Olympus' }, /pattern/],
      [{ queue: 'q', key: 'b', every: 100, endDate: Date.now() - 1000 }, /End date must be greater/],
      [{ queue: 'q', key: 'b', every: 100, opts: { attempts: 'x' } }, /opts/],
      [{ queue: 'q', every: 100 }, /queue and key are required/],
      [{ queue: 'q', key: 'b', every: 100, colour: 'red' }, /unknown key 'colour'/],
    ]) {
      const file = config(dir, 'bad.json', { queues: { q: { builtin: 'echo' } }, schedulers: [good, bad] });
      const w = startWorker(['--config', file], { prefix });
      const { code } = await w.waitExit(10000);
      assert.equal(code, 2, `${JSON.stringify(bad)}: ${w.text()}`);
      assert.match(w.text(), /schedulers\[1\]/);
      assert.match(w.text(), msg);
    }
    assert.deepEqual(await h.keysOf(r, prefix), [], 'nothing written');
  } finally {
    r.disconnect();
  }
});
