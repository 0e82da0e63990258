// SPDX-License-Identifier: MIT
// Memory ceilings: over 100,000 jobs bullc-worker's RSS stays flat, and what
// Redis keeps stays bounded (the events stream near its maxLen, completed jobs
// at removeOnComplete's count).
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { uniquePrefix, redis, bullcOk, eventually } = require('../lib/harness');
const { startWorker, killAll } = require('../lib/worker-proc');

after(killAll);

const rssKb = pid => {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(s)[1]);
};

test('RSS stays flat and Redis retention bounded over 100,000 jobs', { timeout: 240000 }, async () => {
  const prefix = uniquePrefix('mem');
  const client = redis();
  const N = 100000;
  try {
    const lines = [];
    for (let i = 0; i < N; i++) lines.push(`{"name":"m","data":{"i":${i},"pad":"${'x'.repeat(64)}"}}`);
    bullcOk(['add-bulk', 'q', '--opts', '{"removeOnComplete":{"count":1000}}'], { prefix, input: lines.join('\n') + '\n' });
    // warn level: no line per job (the ready line is info, so no startReady)
    // Under AddressSanitizer (the CI's sanitizer pass) freed memory sits in a
    // quarantine that grows RSS by design: turn it off, so growth is ours.
    const asan = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=0'].filter(Boolean).join(':');
    const w = startWorker(['--queue', 'q', '--builtin', 'noop', '--concurrency', '16', '--log-level', 'warn'],
      { prefix, env: { ...process.env, ASAN_OPTIONS: asan } });
    const completedSoFar = async () => N - (await client.llen(`${prefix}:q:wait`)) - (await client.llen(`${prefix}:q:active`));
    await eventually(async () => (await completedSoFar()) >= 10000, 120000, '10,000 jobs', 100);
    const early = rssKb(w.pid);
    await eventually(async () => (await client.llen(`${prefix}:q:wait`)) === 0 &&
      (await client.llen(`${prefix}:q:active`)) === 0, 200000, 'all jobs', 200);
    const late = rssKb(w.pid);
    console.log(`bullc-worker RSS: ${early} kB after 10,000 jobs, ${late} kB after ${N}`);
    // ASan's allocator keeps shadow and metadata pages that grow with the
    // number of allocations seen; the plain build is the figure that counts.
    const limit = process.env.BULLC_SANITIZED === '1' ? 8192 : 2048;
    assert.ok(late - early < limit, `RSS grew by ${late - early} kB between 10,000 and ${N} jobs`);
    const completed = await client.zcard(`${prefix}:q:completed`);
    assert.ok(completed <= 1000, `completed kept: ${completed}`);
    const xlen = await client.xlen(`${prefix}:q:events`);
    assert.ok(xlen <= 10000 * 1.2, `events stream length ${xlen} (maxLen ~10000)`);
    await w.stop();
  } finally {
    await client.quit();
  }
});
