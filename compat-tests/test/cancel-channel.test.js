// SPDX-License-Identifier: MIT
// `bullc cancel QUEUE ID` from another process, watched from Node: a Node
// Queue adds the jobs, a Node QueueEvents listens, bullc-worker processes them
// with an exec command or a plugin, and `bullc cancel` reaches the worker that
// holds the job through the queue's cancel channel. The job fails with the
// reason as a Node job whose processor threw signal.reason; the exec command
// is stopped and reaped. The exit codes: 4 for a job no worker holds, 1 for
// one a Node worker holds (no bullc worker answers), 2 and 3.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { bullc, closeAll, eventually, newWorker } = require('../lib/harness');
const { finished, killAll, pluginPath, script, tmpDir, watchedQueue } = require('../lib/worker-proc');

const reaped = pid => !fs.existsSync(`/proc/${pid}`);
const HELPERS = path.join(__dirname, '..', '..', 'tools', 'bullc-worker', 'helpers');

describe('bullc cancel', () => {
  const closers = [];
  const dir = tmpDir('cancel-channel');
  const proc = script(dir, 'proc.sh', `cat >/dev/null
echo $$ > "${dir}/pid-$BULLC_JOB_ID"
sleep 30 & wait $!`);

  after(async () => {
    await killAll();
    await closeAll(closers);
  });

  const setup = (tag, args) => watchedQueue(tag, closers, args);

  async function cancelled(queue, failed, id, reason) {
    const j = await finished(queue, id, 10000);
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.failedReason, reason);
    assert.equal(j.attemptsMade, 1);
    await eventually(() => failed.some(e => e.jobId === id), 5000, "QueueEvents' failed");
    const ev = failed.find(e => e.jobId === id);
    assert.equal(ev.failedReason, reason);
    assert.equal(ev.prev, 'active');
  }

  it('reaches the exec command of the bullc-worker holding the job: SIGTERM, reaped, failed with the reason', async () => {
    const { prefix, queue, failed, w } = await setup('ccexec', ['--exec', proc, '--concurrency', '2']);
    const job = await queue.add('slow', {});
    const other = await queue.add('slow', {});
    const pidFile = id => path.join(dir, `pid-${id}`);
    await eventually(() => fs.existsSync(pidFile(job.id)) && fs.existsSync(pidFile(other.id)), 10000, 'both started');
    const pid = Number(fs.readFileSync(pidFile(job.id), 'utf8'));
    const r = bullc(['cancel', 'jobs', job.id, '--reason', 'stopped by the operator'], { prefix });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^job ${job.id} cancelled by worker [0-9a-f-]{36}\\n$`));
    await cancelled(queue, failed, job.id, 'stopped by the operator');
    await eventually(() => reaped(pid), 5000, 'the command reaped');
    // only that job: the other one still runs
    assert.equal(await queue.getJobState(other.id), 'active');
    const d = bullc(['cancel', 'jobs', other.id], { prefix });
    assert.equal(d.status, 0, d.stderr);
    await cancelled(queue, failed, other.id, 'This operation was aborted');
    assert.equal((await w.stop()).code, 0);
  });

  it('reaches a plugin, which sees bullc_job_is_cancelled and fails the job with the reason', async () => {
    const { prefix, queue, failed, w } = await setup('ccplug', ['--plugin', pluginPath()]);
    const job = await queue.add('long', { sleepMs: 30000 });
    await eventually(async () => (await queue.getJobState(job.id)) === 'active', 10000, 'the job active');
    const started = Date.now();
    const r = bullc(['cancel', 'jobs', job.id, '--reason', 'no longer wanted'], { prefix });
    assert.equal(r.status, 0, r.stderr);
    await cancelled(queue, failed, job.id, 'no longer wanted');
    assert.ok(Date.now() - started < 5000, 'the plugin stopped sleeping');
    assert.equal((await w.stop()).code, 0);
  });

  it('exits 4 for a job no worker holds, 1 when no bullc worker holds it, 2 on usage errors, 3 without Redis', async () => {
    const { prefix, queue } = await setup('cccodes');
    assert.equal(bullc(['cancel', 'jobs', 'nope'], { prefix }).status, 4);
    const waiting = await queue.add('w', {});
    const r = bullc(['cancel', 'jobs', waiting.id], { prefix });
    assert.equal(r.status, 4);
    assert.match(r.stderr, /is not being processed/);
    // a Node worker holds this one: nobody answers on the channel
    let release;
    const held = new Promise(res => (release = res));
    const nodeWorker = newWorker('jobs', prefix, () => held);
    closers.unshift(nodeWorker);
    await eventually(async () => (await queue.getJobState(waiting.id)) === 'active', 10000, 'the Node worker took it');
    const n = bullc(['cancel', 'jobs', waiting.id, '--timeout', '300'], { prefix });
    assert.equal(n.status, 1);
    assert.match(n.stderr, /no bullc worker listens/);
    release();
    assert.equal(bullc(['cancel', 'jobs'], { prefix }).status, 2);
    assert.equal(bullc(['cancel', 'jobs', '1', '--timeout', '0'], { prefix }).status, 2);
    assert.equal(bullc(['cancel', 'jobs', '1'], { prefix, redis: 'redis://127.0.0.1:1' }).status, 3);
  });

  // --exec-persistent: the child holding the job gets {"cancel":ID,"reason":R} on its stdin and has
  // --kill-grace to answer; the helpers turn it into job.signal (Node.js) and job.cancelled (Python)
  const helperProcs = {
    'Node.js': () => {
      const p = path.join(dir, 'coop.js');
      fs.writeFileSync(p, `const { run } = require(${JSON.stringify(path.join(HELPERS, 'bullc_processor.js'))});
run(async job => {
  if (job.name === 'echo') return { pid: process.pid };
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, 30000);
    job.signal.addEventListener('abort', () => { clearTimeout(t); reject(job.signal.reason); });
  });
  return 'not cancelled';
});
`);
      return ['node', p];
    },
    Python: () => {
      const p = path.join(dir, 'coop.py');
      fs.writeFileSync(p, `import os, sys
sys.path.insert(0, ${JSON.stringify(HELPERS)})
import bullc_processor as bp
def process(job):
    if job.name == "echo":
        return {"pid": os.getpid()}
    if job.cancelled.wait(30):
        raise Exception(job.cancel_reason)
    return "not cancelled"
bp.run(process)
`);
      return ['python3', p];
    },
  };
  for (const [lang, make] of Object.entries(helperProcs)) {
    it(`an exec-persistent ${lang} helper is told and fails the job itself; its child goes on`, async () => {
      const [interp, file] = make();
      const { prefix, queue, failed, w } = await setup(`ccp${lang[0]}`, [
        '--exec-persistent', interp, '--arg', file, '--kill-grace', '5000']);
      const before = await finished(queue, (await queue.add('echo', {})).id, 10000);
      const pid = before.returnvalue.pid;
      const job = await queue.add('long', {});
      await eventually(async () => (await queue.getJobState(job.id)) === 'active', 10000, 'the job active');
      await new Promise(r => setTimeout(r, 200)); // the child holds it
      const started = Date.now();
      const r = bullc(['cancel', 'jobs', job.id, '--reason', `${lang} stop`], { prefix });
      assert.equal(r.status, 0, r.stderr);
      await cancelled(queue, failed, job.id, `${lang} stop`);
      assert.ok(Date.now() - started < 4000, 'answered, not killed after the grace');
      // the same child serves the next job: it was not retired
      const after = await finished(queue, (await queue.add('echo', {})).id, 10000);
      assert.equal(after.returnvalue.pid, pid);
      assert.ok(!w.lines.some(l => /no answer to the cancel line/.test(l)));
      assert.equal((await w.stop()).code, 0);
    });
  }

  it('an exec-persistent child that does not answer the cancel line is killed after the grace and replaced', async () => {
    const child = script(dir, 'deaf.sh', `while IFS= read -r line; do echo $$ > "${dir}/deaf-pid"; sleep 30; done`);
    const { prefix, queue, failed, w } = await setup('ccdeaf', ['--exec-persistent', child, '--kill-grace', '400']);
    const job = await queue.add('slow', {});
    await eventually(() => fs.existsSync(path.join(dir, 'deaf-pid')), 10000, 'the child to take the job');
    const pid = Number(fs.readFileSync(path.join(dir, 'deaf-pid'), 'utf8'));
    fs.rmSync(path.join(dir, 'deaf-pid'));
    const started = Date.now();
    const r = bullc(['cancel', 'jobs', job.id, '--reason', 'deaf'], { prefix });
    assert.equal(r.status, 0, r.stderr);
    await cancelled(queue, failed, job.id, 'deaf');
    assert.ok(Date.now() - started >= 380, 'the child had the grace to answer');
    await w.waitFor(/no answer to the cancel line/);
    await eventually(() => reaped(pid), 5000, 'the child reaped (no zombie)');
    const next = await queue.add('slow', {});
    await eventually(() => fs.existsSync(path.join(dir, 'deaf-pid')), 10000, 'a new child to take the next job');
    assert.notEqual(Number(fs.readFileSync(path.join(dir, 'deaf-pid'), 'utf8')), pid);
    assert.equal(bullc(['cancel', 'jobs', next.id], { prefix }).status, 0);
    await finished(queue, next.id, 10000);
    assert.equal((await w.stop()).code, 0);
  });
});
