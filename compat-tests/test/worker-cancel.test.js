// SPDX-License-Identifier: MIT
// Cancellation under bullc-worker, watched from Node: a Node Queue adds jobs,
// a Node QueueEvents listens, and SIGUSR1 cancels what bullc-worker runs.
// The exec child gets SIGTERM, then SIGKILL after --kill-grace, and is
// reaped; an exec-persistent child is retired the same way; the job fails with
// the reason as a Node job whose processor threw signal.reason (QueueEvents
// 'failed' with that failedReason, retried per its attempts). SIGHUP applies
// the config file's concurrency again (Node's worker.concurrency = n).
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { closeAll, eventually, newQueue, uniquePrefix } = require('../lib/harness');
const { alive, finished, killAll, script, startReady, tmpDir, watchedQueue } = require('../lib/worker-proc');

const REASON = 'cancelled by SIGUSR1';

// Gone for good: not running, and not a zombie either (bullc-worker reaped it).
const reaped = pid => !fs.existsSync(`/proc/${pid}`);

describe('bullc-worker cancellation', () => {
  const closers = [];
  const dir = tmpDir('worker-cancel');
  const proc = script(
    dir,
    'proc.sh',
    `cat >/dev/null
echo $$ > "${dir}/pid-$BULLC_JOB_ID-$BULLC_JOB_ATTEMPT"
case "$BULLC_JOB_NAME" in
  slow) sleep 30 & echo $! > "${dir}/child-$BULLC_JOB_ID"; wait $! ;;
  stubborn) trap '' TERM; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done ;;
esac`,
  );

  after(async () => {
    await killAll();
    await closeAll(closers);
  });

  const setup = (tag, args) => watchedQueue(tag, closers, args);

  const pidFile = (id, attempt) => path.join(dir, `pid-${id}-${attempt}`);
  const pidOf = (id, attempt = 1) =>
    eventually(() => fs.existsSync(pidFile(id, attempt)), 10000, `job ${id} to start`).then(() =>
      Number(fs.readFileSync(pidFile(id, attempt), 'utf8')),
    );

  it('SIGUSR1 stops exec children with SIGTERM; the jobs fail with the reason, retried per attempts', async () => {
    const { queue, failed, w } = await setup('wcexec', ['--exec', proc, '--concurrency', '2', '--kill-grace', '5000']);
    const once = await queue.add('slow', {});
    const twice = await queue.add('slow', {}, { attempts: 2 });
    const pids = [await pidOf(once.id), await pidOf(twice.id)];
    await eventually(() => fs.existsSync(path.join(dir, `child-${twice.id}`)), 5000, 'the grandchild');
    const grandchild = Number(fs.readFileSync(path.join(dir, `child-${once.id}`), 'utf8'));
    const started = Date.now();
    w.kill('SIGUSR1');
    const j = await finished(queue, once.id, 10000);
    assert.ok(Date.now() - started < 4000, 'SIGTERM ended it, not the kill grace');
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.failedReason, REASON);
    assert.equal(j.attemptsMade, 1);
    assert.match(j.stacktrace[0], /cancelled by SIGUSR1/);
    await eventually(() => failed.some(e => e.jobId === once.id), 5000, "QueueEvents' failed");
    const ev = failed.find(e => e.jobId === once.id);
    assert.equal(ev.failedReason, REASON);
    assert.equal(ev.prev, 'active');
    await eventually(() => pids.every(reaped) && !alive(grandchild), 5000, 'the commands reaped, their children gone');
    // the retried one runs again (a new command), and is cancelled again
    const again = await pidOf(twice.id, 2);
    assert.notEqual(again, pids[1]);
    await w.waitFor(/cancel queue=jobs jobs=2/);
    w.kill('SIGUSR1');
    const t = await finished(queue, twice.id, 10000);
    assert.equal(t.failedReason, REASON);
    assert.equal(t.attemptsMade, 2);
    await eventually(() => reaped(again), 5000, 'the second command reaped');
    assert.equal((await w.stop()).code, 0);
  });

  it('a command that ignores SIGTERM is killed after --kill-grace', async () => {
    const { queue, failed, w } = await setup('wcstub', ['--exec', proc, '--kill-grace', '600']);
    const job = await queue.add('stubborn', {});
    const pid = await pidOf(job.id);
    await new Promise(r => setTimeout(r, 200)); // its trap is set
    const started = Date.now();
    w.kill('SIGUSR1');
    const j = await finished(queue, job.id, 10000);
    assert.ok(Date.now() - started >= 550, 'it outlived SIGTERM until the grace passed');
    assert.equal(j.failedReason, REASON);
    await eventually(() => failed.some(e => e.jobId === job.id && e.failedReason === REASON), 5000, 'failed event');
    await eventually(() => reaped(pid), 5000, 'the command reaped');
    assert.equal((await w.stop()).code, 0);
  });

  it('an exec-persistent child is retired and the slot goes on with a new one', async () => {
    const child = script(dir, 'persistent.sh', `while IFS= read -r line; do echo $$ > "${dir}/pp-$(date +%s%N)"; sleep 30; done`);
    const { queue, failed, w } = await setup('wcexecp', ['--exec-persistent', child, '--kill-grace', '300']);
    const job = await queue.add('slow', {});
    await eventually(() => fs.readdirSync(dir).some(f => f.startsWith('pp-')), 10000, 'the child to take the job');
    const first = fs.readdirSync(dir).filter(f => f.startsWith('pp-'));
    const pid = Number(fs.readFileSync(path.join(dir, first[0]), 'utf8'));
    w.kill('SIGUSR1');
    const j = await finished(queue, job.id, 10000);
    assert.equal(j.failedReason, REASON);
    await eventually(() => failed.some(e => e.jobId === job.id && e.failedReason === REASON), 5000, 'failed event');
    await eventually(() => reaped(pid), 5000, 'the child reaped');
    for (const f of first) fs.rmSync(path.join(dir, f));
    const next = await queue.add('slow', {});
    await eventually(() => fs.readdirSync(dir).some(f => f.startsWith('pp-')), 10000, 'a new child to take the next job');
    assert.equal(await queue.getJobState(next.id), 'active');
    await w.waitFor(/cancel queue=jobs jobs=1/);
    w.kill('SIGUSR1');
    assert.equal((await finished(queue, next.id, 10000)).failedReason, REASON);
    assert.equal((await w.stop()).code, 0);
  });

  it('SIGHUP applies the config file concurrency to the running worker', async () => {
    const prefix = uniquePrefix('wchup');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const file = path.join(dir, 'hup.json');
    const write = n => fs.writeFileSync(file, JSON.stringify({ queues: { jobs: { builtin: 'sleep', concurrency: n } } }));
    write(1);
    const w = await startReady(['--config', file, '--drain-delay', '1'], { prefix });
    await queue.addBulk(Array.from({ length: 12 }, () => ({ name: 'hold', data: { sleepMs: 700 } })));
    let most = 0;
    const watch = async ms => {
      most = 0;
      const end = Date.now() + ms;
      while (Date.now() < end) {
        most = Math.max(most, await queue.getActiveCount());
        await new Promise(r => setTimeout(r, 50));
      }
      return most;
    };
    assert.equal(await watch(1200), 1);
    write(4);
    w.kill('SIGHUP');
    await w.waitFor(/reload queue=jobs was=1 concurrency=4/);
    assert.equal(await watch(1500), 4);
    write(0); // not a valid concurrency: refused, the worker goes on with 4
    w.kill('SIGHUP');
    await w.waitFor(/error\s+reload/);
    await eventually(async () => (await queue.getCompletedCount()) === 12, 15000, 'every job');
    assert.equal((await w.stop()).code, 0);
  });
});
