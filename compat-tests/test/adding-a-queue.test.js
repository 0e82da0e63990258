// SPDX-License-Identifier: MIT
// docs/adding-a-queue.md, run: the `payment` queue's plugin
// (libbullc_payment_plugin.so) in bullc-worker, jobs added by the domain
// service example (bullc-example-checkout, through the producer helper),
// results read by Node.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { Job, closeAll, eventually, newQueue, uniquePrefix } = require('../lib/harness');
const { killAll, startReady } = require('../lib/worker-proc');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

const bin = name => path.join(process.env.BULLC_BIN_DIR, name);

function checkout(prefix, ...args) {
  return spawnSync(bin('bullc-example-checkout'), args, {
    encoding: 'utf8', env: { ...process.env, BULL_PREFIX: prefix },
  });
}

async function finished(queue, id, ms = 15000) {
  await eventually(async () => ['completed', 'failed'].includes(await queue.getJobState(id)), ms, `job ${id} to finish`);
  return Job.fromId(queue, id);
}

describe('docs/adding-a-queue.md: the payment queue', () => {
  it('the checkout queues a payment once per order; the plugin captures it after a retry', async () => {
    const prefix = uniquePrefix('pay');
    const queue = newQueue('payment', prefix);
    closers.push(queue);
    // the checkout (the library in auto) finds the major in the meta the Node Queue writes, as
    // a service's would: on a queue without it, it would write 6.x's and stop a 5.x worker
    await eventually(async () => (await queue.getVersion()) !== null, 5000, "the Node Queue's meta.version");
    const cfg = { maxAmount: 1000, currencies: ['EUR', 'USD'], outageAttempts: 1 };
    const w = await startReady(['--queue', 'payment', '--plugin', bin('libbullc_payment_plugin.so'),
      '--plugin-config', JSON.stringify(cfg), '--concurrency', '4', '--drain-delay', '1'], { prefix });

    const first = checkout(prefix, 'o-1001', '12.5', 'EUR');
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout.trim(), 'payment-o-1001');
    assert.equal(first.stderr, '', 'a job added: no note');
    const again = checkout(prefix, 'o-1001', '12.5', 'EUR');
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout.trim(), 'payment-o-1001', 'the same order: the same job, none added');
    assert.equal(again.stderr, 'checkout: order o-1001 was queued before as payment-o-1001; nothing added\n');
    // one job in all, in whatever state the running worker has it by now (count() would miss it once active)
    const counts = await queue.getJobCounts();
    assert.equal(Object.values(counts).reduce((a, b) => a + b, 0), 1, JSON.stringify(counts));

    const j = await finished(queue, 'payment-o-1001');
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.equal(j.name, 'process-payment');
    assert.deepEqual(j.data, { orderId: 'o-1001', amount: 12.5, currency: 'EUR' });
    assert.equal(j.opts.attempts, 5);
    assert.deepEqual(j.opts.backoff, { type: 'exponential', delay: 2000 });
    assert.equal(j.attemptsMade, 2, 'the simulated outage failed the first attempt');
    assert.deepEqual(j.returnvalue,
      { orderId: 'o-1001', amount: 12.5, currency: 'EUR', status: 'captured', paymentId: 'pay_payment-o-1001' });
    assert.deepEqual((await queue.getJobLogs(j.id)).logs,
      ['charging 12.50 EUR for order o-1001', 'charging 12.50 EUR for order o-1001']);
    await w.stop();
  });

  it('refuses at the producer what the processor would refuse; fails over-limit payments without retries', async () => {
    const prefix = uniquePrefix('paybad');
    const queue = newQueue('payment', prefix);
    closers.push(queue);
    await eventually(async () => (await queue.getVersion()) !== null, 5000, "the Node Queue's meta.version");
    const help = checkout(prefix, '--help');
    assert.deepEqual([help.status, help.stderr], [0, ''], help.stderr);
    assert.match(help.stdout, /^usage: \S*bullc-example-checkout ORDER_ID AMOUNT CURRENCY\n$/);
    for (const args of [[], ['o-1', '10'], ['', '10', 'EUR'], ['o-1', '0', 'EUR'], ['o-1', '-3', 'EUR'], ['o-1', '10', 'eur']]) {
      const r = checkout(prefix, ...args);
      assert.equal(r.status, 2, `${args}: ${r.stderr}`);
    }
    assert.equal(await queue.count(), 0);

    const w = await startReady(['--queue', 'payment', '--plugin', bin('libbullc_payment_plugin.so'),
      '--plugin-config', '{"maxAmount":100,"currencies":["EUR"]}', '--drain-delay', '1'], { prefix });
    assert.equal(checkout(prefix, 'o-2', '5000', 'EUR').status, 0);
    assert.equal(checkout(prefix, 'o-3', '10', 'GBP').status, 0);
    const other = await queue.add('refund', { orderId: 'o-4' }, { attempts: 3 });
    for (const [id, re] of [['payment-o-2', /"amount" is over the limit/], ['payment-o-3', /"currency" must be an accepted/],
      [other.id, /unknown job name 'refund'/]]) {
      const j = await finished(queue, id);
      assert.equal(await j.getState(), 'failed');
      assert.match(j.failedReason, re);
      assert.equal(j.attemptsMade, 1, `${id}: no retries`);
    }
    await w.stop();
  });
});
