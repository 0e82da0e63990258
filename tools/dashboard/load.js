// SPDX-License-Identifier: MIT
// capture.sh's load: for SECONDS_TOTAL seconds, every 500 ms a batch of jobs
// per queue through `bullc add-bulk`, at a rate that rises and falls (with a
// burst a third of the way in, so jobs wait), each sleeping a few to a few
// hundred ms in bullc-worker's sleep builtin; about 2% carry a bad sleepMs
// and fail, so the failed series is not empty.
'use strict';

const { spawnSync } = require('node:child_process');

const { BULLC, REDIS, SECONDS_TOTAL } = process.env;
const total = Number(SECONDS_TOTAL || 300) * 1000;
const queues = { orders: { rate: 120, ms: 40 }, emails: { rate: 60, ms: 150 }, reports: { rate: 8, ms: 400 } };

function batch(queue, n, meanMs) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    const sleepMs = Math.random() < 0.02 ? 'x' : Math.round(-Math.log(1 - Math.random()) * meanMs);
    lines.push(JSON.stringify({ name: queue === 'orders' ? 'checkout' : queue === 'emails' ? 'send' : 'monthly',
      data: { sleepMs }, opts: { removeOnComplete: 1000, removeOnFail: 100 } }));
  }
  // reports is the BullMQ 5.x queue (its worker is told 5): bullc adds to it as 5.81.5 does
  const major = queue === 'reports' ? ['--bullmq-version', '5'] : [];
  const r = spawnSync(BULLC, ['--redis', REDIS, '--prefix', 'dash', ...major, 'add-bulk', queue], { input: `${lines.join('\n')}\n` });
  if (r.status !== 0) throw new Error(`bullc add-bulk ${queue}: ${r.stderr}`);
}

(async () => {
  const t0 = Date.now();
  for (let t = 0; t < total; t = Date.now() - t0) {
    const phase = t / total;
    const wave = 1 + 0.6 * Math.sin(phase * 4 * Math.PI);
    const burst = phase > 0.33 && phase < 0.36 ? 6 : 1;
    for (const [q, { rate, ms }] of Object.entries(queues)) {
      const n = Math.max(0, Math.round((rate * wave * burst) / 2 + (Math.random() - 0.5) * 4));
      if (n) batch(q, n, ms);
    }
    await new Promise(r => setTimeout(r, 500));
  }
})().catch(e => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
