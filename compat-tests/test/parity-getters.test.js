// SPDX-License-Identifier: MIT
// Node BullMQ getters.test.ts cases where bullc is the component under test
// and Node BullMQ's own getter observes it: bullc's QueueEvents listener
// (`bullc events --follow`) names its connection as Node's QueueEvents does,
// so Node's queue.getQueueEvents() lists it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const h = require('../lib/harness');
const { Proc, killAll } = require('../lib/worker-proc');

const Q = 'pgetters';

test.after(killAll);

// `bullc events Q --follow`, resolved once it listens.
async function bullcListener(prefix) {
  const p = new Proc(h.bullcPath(), ['--redis', h.redisUrl(), '--prefix', prefix, 'events', Q, '--follow']);
  await p.waitFor(/following events after/, 10000);
  return p;
}

// node: "[.getQueueEvents] gets all queueEvents for this queue"
test('[.getQueueEvents] gets all queueEvents for this queue', async () => {
  const prefix = h.uniquePrefix('cmppg');
  const queue = h.newQueue(Q, prefix);
  const listeners = [];
  try {
    await queue.waitUntilReady();
    assert.equal((await queue.getQueueEvents()).length, 0);
    listeners.push(await bullcListener(prefix));
    await h.sleep(10);
    assert.equal((await queue.getQueueEvents()).length, 1);
    listeners.push(await bullcListener(prefix));
    await h.sleep(10);
    assert.equal((await queue.getQueueEvents()).length, 2);
    // another queue's listener is not counted
    const other = h.newQueue(`${Q}2`, prefix);
    try {
      assert.equal((await other.getQueueEvents()).length, 0);
    } finally {
      await other.close();
    }
  } finally {
    for (const l of listeners) await l.stop();
    await h.closeAll(queue);
  }
});
