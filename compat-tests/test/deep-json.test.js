// SPDX-License-Identifier: MIT
// Job data nested deeper than cJSON's 1,000 levels: JSON.parse takes it, so a
// bullc worker must too. A Node Queue adds data 1,100 deep (JSON.stringify's
// own recursion stops short of 100,000, so that one is written to the job's
// hash as text, as any producer may), bullc-worker --builtin echo returns it,
// and Node reads the same text back as the job's returnvalue.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { Job, closeAll, eventually, newQueue, redis, uniquePrefix } = require('../lib/harness');
const { killAll, startReady } = require('../lib/worker-proc');

const Q = 'deep';

function nested(depth) {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

describe('deep JSON data under bullc-worker', () => {
  after(killAll);

  for (const depth of [1100, 100000]) {
    it(`processes data nested ${depth} deep`, async () => {
      const prefix = uniquePrefix('deep');
      const queue = newQueue(Q, prefix);
      const client = redis();
      let worker;
      try {
        const text = nested(depth);
        let job;
        if (depth <= 1100) {
          job = await queue.add('j', JSON.parse(text)); // Node's own add
        } else {
          job = await queue.add('j', {});
          await client.hset(`${prefix}:${Q}:${job.id}`, 'data', text);
        }
        assert.equal(await client.hget(`${prefix}:${Q}:${job.id}`, 'data'), text);
        worker = await startReady(['--queue', Q, '--builtin', 'echo'], { prefix });
        await eventually(async () => (await queue.getJobState(job.id)) === 'completed', 15000, 'completed');
        const raw = await client.hget(`${prefix}:${Q}:${job.id}`, 'returnvalue');
        assert.equal(raw, text, 'the data came back as the result, byte for byte');
        const done = await Job.fromId(queue, job.id);
        let d = done.returnvalue;
        for (let i = 0; i < depth; i++) d = d.a;
        assert.equal(d, 1, 'Node reads the result back');
      } finally {
        if (worker) await worker.stop();
        await closeAll(queue);
        client.disconnect();
      }
    });
  }
});
