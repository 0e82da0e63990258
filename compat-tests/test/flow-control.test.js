// SPDX-License-Identifier: MIT
// Flow control inside processors under bullc-worker, with live Node BullMQ
// peers (of the major BULLC_COMPAT_BULLMQ names): --exec commands ask for
// moves on stderr (`data:`, `delay:`, `wait-children`), the example plugin
// calls bullc_job_move_to_* from the thread pool, and Node workers and
// bullc-worker share the same flows (the step-job pattern: update the data,
// move to waiting-children or delayed, be processed again later with that
// data).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { Job, bullcPath, bullmqPackage, closeAll, eventually, newQueue, newWorker, nodeBullmq, uniquePrefix } =
  require('../lib/harness');
const { finished, killAll, pluginPath, script, startReady, tmpDir } = require('../lib/worker-proc');

const { WaitingChildrenError } = nodeBullmq(); // the Node peer's major (BULLC_COMPAT_BULLMQ)

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

// The exec processor: a Node script (one behaviour per data.mode). It adds
// its own children with Node's Queue when asked to, as a processor that
// creates children at runtime.
let processor;
before(() => {
  const dir = tmpDir('flow-control');
  const bullmq = require.resolve(bullmqPackage());
  processor = path.join(dir, 'proc.js');
  fs.writeFileSync(
    processor,
    `#!${process.execPath}
'use strict';
const { Queue } = require(${JSON.stringify(bullmq)});
let input = '';
process.stdin.on('data', c => (input += c));
process.stdin.on('end', async () => {
  const job = JSON.parse(input);
  const d = job.data;
  const say = line => process.stderr.write(line + '\\n');
  const attempt = Number(process.env.BULLC_JOB_ATTEMPT);
  if (d.sleepMs) await new Promise(r => setTimeout(r, d.sleepMs));
  switch (d.mode) {
    case 'own-children':
      if (d.step === 'init') {
        const u = new URL(process.env.FLOW_REDIS);
        const connection = { host: u.hostname, port: Number(u.port) };
        const q = new Queue(d.childQueue, { connection, prefix: process.env.FLOW_PREFIX });
        const parent = { id: job.id, queue: process.env.FLOW_PREFIX + ':' + process.env.BULLC_QUEUE };
        for (let i = 1; i <= 2; i++) await q.add('child', { i }, { parent });
        await q.close();
      }
    // falls through
    case 'node-children':
      if (d.step === 'init') {
        say('data: ' + JSON.stringify({ ...d, step: 'wait' }));
        say('wait-children');
        process.stdout.write('"not stored"');
      } else {
        process.stdout.write(JSON.stringify({ step: d.step, attempt }));
      }
      break;
    case 'delay':
      if (!d.delayed) {
        say('data: ' + JSON.stringify({ ...d, delayed: true }));
        say('delay: ' + (Date.now() + d.ms));
      } else {
        process.stdout.write(JSON.stringify({ attempt, delayedFor: Date.now() - job.processedOn }));
      }
      break;
    case 'no-children':
      say('wait-children');
      process.stdout.write('"completed anyway"');
      break;
    default:
      process.stdout.write(JSON.stringify({ child: d.i, attempt }));
  }
});
`,
    { mode: 0o755 },
  );
});

async function bullcWorker(prefix, queue, args) {
  return startReady(['--queue', queue, '--drain-delay', '1', ...args], {
    prefix,
    env: { ...process.env, FLOW_PREFIX: prefix, FLOW_REDIS: process.env.REDIS_URL },
  });
}

describe('flow control in --exec processors', () => {
  // node: "[when chaining flows at runtime using step jobs] should wait children as one step of the parent job"
  it('a step job waits for children a Node producer added, processed by a Node worker', async () => {
    const prefix = uniquePrefix('fcnode');
    const parents = newQueue('parent', prefix);
    const children = newQueue('child', prefix);
    closers.push(parents, children);
    const parent = await parents.add('p', { mode: 'node-children', step: 'init' });
    for (let i = 1; i <= 2; i++)
      await children.add('c', { i }, { parent: { id: parent.id, queue: `${prefix}:parent` } });
    const w = await bullcWorker(prefix, 'parent', ['--exec', processor]);
    await eventually(async () => (await parents.getJobState(parent.id)) === 'waiting-children', 10000, 'waiting-children');
    const p1 = await Job.fromId(parents, parent.id);
    assert.deepEqual(p1.data, { mode: 'node-children', step: 'wait' });
    assert.equal(p1.attemptsMade, 0);
    assert.equal(p1.returnvalue, null, 'a moved job stores no result');
    const nodeWorker = newWorker('child', prefix, async job => ({ doubled: job.data.i * 2 }));
    closers.unshift(nodeWorker);
    const p = await finished(parents, parent.id);
    assert.equal(await p.getState(), 'completed');
    assert.deepEqual(p.returnvalue, { step: 'wait', attempt: 1 });
    assert.equal(p.attemptsMade, 1, 'waiting for children counts no attempt');
    assert.deepEqual(Object.values(await p.getChildrenValues()).sort((a, b) => a.doubled - b.doubled), [
      { doubled: 2 },
      { doubled: 4 },
    ]);
    assert.equal((await w.stop()).code, 0);
  });

  // node: "[when creating children at runtime] should wait children as one step of the parent job"
  it('a processor that adds its own children and waits for them, the children processed by bullc-worker', async () => {
    const prefix = uniquePrefix('fcown');
    const parents = newQueue('parent', prefix);
    closers.push(parents);
    const wp = await bullcWorker(prefix, 'parent', ['--exec', processor]);
    const wc = await bullcWorker(prefix, 'child', ['--exec', processor]);
    const parent = await parents.add('p', { mode: 'own-children', step: 'init', childQueue: 'child' });
    const p = await finished(parents, parent.id);
    assert.equal(await p.getState(), 'completed', p.failedReason);
    assert.deepEqual(p.returnvalue, { step: 'wait', attempt: 1 });
    const values = Object.values(await p.getChildrenValues()).map(v => v.child).sort();
    assert.deepEqual(values, [1, 2]);
    const deps = await p.getDependenciesCount();
    assert.deepEqual(deps, { processed: 2, unprocessed: 0, failed: 0, ignored: 0 });
    assert.equal((await wp.stop()).code, 0);
    assert.equal((await wc.stop()).code, 0);
  });

  it('a shell step job adds its own child with `bullc add` (BULLC_PREFIX) and waits for it', async () => {
    const prefix = uniquePrefix('fcsh');
    const parents = newQueue('parent', prefix);
    closers.push(parents);
    // the parent option names this job: {"id": BULLC_JOB_ID, "queue": "BULLC_PREFIX:BULLC_QUEUE"}
    const step = script(
      tmpDir('flow-control-sh'),
      'step.sh',
      `job=$(cat)
case "$job" in
  *'"step":"wait"'*) echo '{"done":true}' ;;
  *) parent="{\\"id\\":\\"$BULLC_JOB_ID\\",\\"queue\\":\\"$BULLC_PREFIX:$BULLC_QUEUE\\"}"
     "${bullcPath()}" --prefix "$BULLC_PREFIX" add child c '{"n":1}' --opts "{\\"parent\\":$parent}" >/dev/null || exit 1
     echo 'data: {"step":"wait"}' >&2
     echo 'wait-children' >&2 ;;
esac`,
    );
    const wp = await bullcWorker(prefix, 'parent', ['--exec', step]);
    const parent = await parents.add('p', { step: 'init' });
    await eventually(async () => (await parents.getJobState(parent.id)) === 'waiting-children', 10000, 'waiting-children');
    const nodeWorker = newWorker('child', prefix, async job => job.data.n + 41);
    closers.unshift(nodeWorker);
    const p = await finished(parents, parent.id);
    assert.equal(await p.getState(), 'completed', p.failedReason);
    assert.deepEqual(p.returnvalue, { done: true });
    assert.deepEqual(Object.values(await p.getChildrenValues()), [42]);
    assert.equal((await wp.stop()).code, 0);
  });

  // node: "should retry job after a delay time, keeping the current step"
  it('delay: moves the job to delayed; it comes back after the delay with attemptsMade unchanged', async () => {
    const prefix = uniquePrefix('fcdelay');
    const queue = newQueue('q', prefix);
    closers.push(queue);
    const w = await bullcWorker(prefix, 'q', ['--exec', processor]);
    const job = await queue.add('d', { mode: 'delay', ms: 600 }, { attempts: 3 });
    await eventually(async () => (await queue.getJobState(job.id)) === 'delayed', 10000, 'delayed');
    const d = await Job.fromId(queue, job.id);
    assert.equal(d.attemptsMade, 0);
    assert.ok(d.delay >= 0 && d.delay <= 600, `delay ${d.delay}`);
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.equal(j.returnvalue.attempt, 1, 'the run after the delay is still the first attempt');
    assert.ok(j.returnvalue.delayedFor >= 0);
    assert.equal(j.attemptsMade, 1);
    assert.equal(j.attemptsStarted, 2);
    assert.deepEqual(j.data, { mode: 'delay', ms: 600, delayed: true });
    assert.ok(j.finishedOn - j.timestamp >= 600, 'it waited for its delay');
    assert.equal((await w.stop()).code, 0);
  });

  it('wait-children without pending children completes the job with its stdout', async () => {
    const prefix = uniquePrefix('fcnone');
    const queue = newQueue('q', prefix);
    closers.push(queue);
    const w = await bullcWorker(prefix, 'q', ['--exec', processor]);
    const job = await queue.add('n', { mode: 'no-children' });
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed');
    assert.equal(j.returnvalue, 'completed anyway');
    assert.equal((await w.stop()).code, 0);
  });

  // node: "should fail parent when trying to move it to waiting children"
  it('wait-children fails the job when a child with failParentOnFailure failed', async () => {
    const prefix = uniquePrefix('fcfail');
    const parents = newQueue('parent', prefix);
    const children = newQueue('child', prefix);
    closers.push(parents, children);
    // the child fails while its parent's processor runs (it sleeps first)
    const parent = await parents.add('p', { mode: 'node-children', step: 'init', sleepMs: 1500 });
    await children.add('c', {}, { parent: { id: parent.id, queue: `${prefix}:parent` }, failParentOnFailure: true });
    const w = await bullcWorker(prefix, 'parent', ['--exec', processor]);
    await eventually(async () => (await parents.getJobState(parent.id)) === 'active', 10000, 'the parent active');
    const nodeWorker = newWorker('child', prefix, async () => {
      throw new Error('child failed');
    });
    closers.unshift(nodeWorker);
    await eventually(async () => (await children.getJobCounts('failed')).failed === 1, 10000, 'the child failing');
    const p = await finished(parents, parent.id);
    assert.equal(await p.getState(), 'failed');
    assert.match(p.failedReason, /moveToWaitingChildren: .*at least one failed child/);
    assert.equal((await w.stop()).code, 0);
  });
});

describe('flow control in plugins', () => {
  it('bullc_job_move_to_delayed from the thread pool: the step comes back after the delay', async () => {
    const prefix = uniquePrefix('fcpdelay');
    const queue = newQueue('q', prefix);
    closers.push(queue);
    const w = await bullcWorker(prefix, 'q', ['--plugin', pluginPath()]);
    const job = await queue.add('d', { a: 1, b: 2, delayMs: 500 });
    await eventually(async () => (await queue.getJobState(job.id)) === 'delayed', 10000, 'delayed');
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.equal(j.returnvalue.sum, 3);
    assert.equal(j.returnvalue.attemptsMade, 0, 'the delay counted no attempt');
    assert.deepEqual(j.data, { a: 1, b: 2, delayMs: 500, delayed: true });
    assert.ok(j.finishedOn - j.timestamp >= 500);
    assert.equal((await w.stop()).code, 0);
  });

  it('bullc_job_move_to_waiting_children from the thread pool: children added by Node, processed by a Node worker', async () => {
    const prefix = uniquePrefix('fcpflow');
    const parents = newQueue('parent', prefix);
    const children = newQueue('child', prefix);
    closers.push(parents, children);
    const { id } = await parents.add('p', { a: 2, b: 3, waitChildren: true });
    await children.add('c', { i: 1 }, { parent: { id, queue: `${prefix}:parent` } });
    const w = await bullcWorker(prefix, 'parent', ['--plugin', pluginPath()]);
    await eventually(async () => (await parents.getJobState(id)) === 'waiting-children', 10000, 'waiting-children');
    assert.deepEqual((await Job.fromId(parents, id)).data, { a: 2, b: 3, waitChildren: true, waits: 1 });
    const nodeWorker = newWorker('child', prefix, async job => job.data.i * 10);
    closers.unshift(nodeWorker);
    const p = await finished(parents, id);
    assert.equal(await p.getState(), 'completed', p.failedReason);
    assert.equal(p.returnvalue.sum, 5);
    assert.equal(p.returnvalue.waits, 2, 'the second run found no pending children and went on');
    assert.deepEqual(Object.values(await p.getChildrenValues()), [10]);
    assert.equal((await w.stop()).code, 0);
  });
});

describe('Node and bullc workers on the same flows', () => {
  it('a Node step job waits for children that bullc-worker processes', async () => {
    const prefix = uniquePrefix('fcmix');
    const parents = newQueue('parent', prefix);
    const children = newQueue('child', prefix);
    closers.push(parents, children);
    const wc = await bullcWorker(prefix, 'child', ['--exec', processor]);
    const nodeParent = newWorker('parent', prefix, async (job, token) => {
      if (job.data.step === 'init') {
        await children.add('c', { i: 7 }, { parent: { id: job.id, queue: job.queueQualifiedName } });
        await job.updateData({ step: 'wait' });
        if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
      }
      return { step: job.data.step, values: await job.getChildrenValues() };
    });
    closers.unshift(nodeParent);
    const parent = await parents.add('p', { step: 'init' });
    const p = await finished(parents, parent.id);
    assert.equal(await p.getState(), 'completed', p.failedReason);
    assert.equal(p.returnvalue.step, 'wait');
    assert.deepEqual(Object.values(p.returnvalue.values), [{ child: 7, attempt: 1 }]);
    assert.equal((await wc.stop()).code, 0);
  });
});
