// SPDX-License-Identifier: MIT
// What a master failover must leave behind, for the failover cases over
// Sentinel (test/sentinel.test.js) and Redis Cluster (test/cluster.test.js):
// their producers print, after each batch of ten adds, the server that
// answered before and after it and how many replicas acknowledged it
// ('batch START node RUNID replicas N node RUNID').
'use strict';

const assert = require('node:assert');
const { completedEvents, eventually } = require('./harness');

// Which batches had to survive the failover: those the replica acknowledged
// (WAIT answered by the first master: it answered before and after), and
// those added wholly on the promoted replica (the batch before ended there,
// and the connection moves once). The batch the connection moved in, and one
// the master acknowledged with no replica's WAIT behind it, may be lost by
// Redis.
function survivingBatches(producer, masterId, replicaId) {
  const must = new Set(), may = new Set();
  let prev = null;
  for (const l of producer.lines) {
    const m = /^batch (\d+) node (\w+) replicas (\d+) node (\w+)$/.exec(l);
    if (!m) continue;
    const [start, before, replicas, after] = [Number(m[1]), m[2], Number(m[3]), m[4]];
    if ((before === masterId && after === masterId && replicas >= 1) || prev === replicaId) must.add(start);
    else may.add(start);
    prev = after;
  }
  return { must, may };
}

// What a failover must leave on the promoted replica: every job Redis kept
// (all of the batches that had to survive) completed exactly once, none
// failed or left active, and no more jobs lost than the failover's window
// holds.
async function assertExactlyOnce(ctx, t, producer, prefix, masterId, replicaId, queue = 'fo', batches = 200) {
  const jobs = batches * 10;
  const { must, may } = survivingBatches(producer, masterId, replicaId);
  assert.strictEqual(must.size + may.size, batches, producer.text());
  // a handful of batches at most were in the failover's window
  assert.ok(may.size <= 3, `batches Redis may have lost: ${[...may]}`);
  const m = t.data(t.replica);
  try {
    assert.deepStrictEqual((await m.call('ROLE'))[0], 'master', 'the replica was promoted');
    const present = async () => new Set((await m.keys(`${prefix}:${queue}:j*`))
      .map(k => k.slice(`${prefix}:${queue}:`.length)).filter(id => /^j\d+$/.test(id)));
    let ids;
    try {
      await eventually(async () => {
        ids = await present();
        return (await m.zcard(`${prefix}:${queue}:completed`)) === ids.size;
      }, 90000, 'every job on the promoted replica completed', 250);
    } catch (err) {
      const where = {};
      for (const s of ['wait', 'active', 'completed', 'failed', 'delayed'])
        where[s] = s === 'wait' || s === 'active' ? await m.llen(`${prefix}:${queue}:${s}`) : await m.zcard(`${prefix}:${queue}:${s}`);
      err.message += ` (on the replica: ${JSON.stringify(where)}, job hashes: ${ids && ids.size})`;
      throw err;
    }
    const batch = id => Math.floor(Number(id.slice(1)) / 10) * 10;
    // none lost but by Redis's asynchronous replication
    for (const start of must) {
      for (let i = start; i < start + 10; i++)
        assert.ok(ids.has(`j${i}`), `j${i} (batch ${start}, replicated or added on the new master) is kept`);
    }
    for (const id of ids) assert.ok(must.has(batch(id)) || may.has(batch(id)), id);
    assert.strictEqual(await m.zcard(`${prefix}:${queue}:failed`), 0, 'no job failed because of the failover');
    assert.strictEqual(await m.llen(`${prefix}:${queue}:active`), 0);
    const completed = await completedEvents(m, prefix, queue);
    assert.deepStrictEqual([...completed].filter(([, n]) => n !== 1), [], 'every job completed exactly once');
    assert.deepStrictEqual([...completed.keys()].sort(), [...ids].sort(), 'every job kept completed');
    assert.ok(ids.size >= jobs - 10 * may.size, `${ids.size} jobs kept`);
    ctx.diagnostic(`${queue}: batches in the failover's window: ${[...may]}; jobs lost by replication: ${jobs - ids.size}`);
  } finally {
    m.disconnect();
  }
}


module.exports = { assertExactlyOnce };
