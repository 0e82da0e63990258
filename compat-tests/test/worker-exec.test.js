// SPDX-License-Identifier: MIT
// bullc-worker --exec: a Node BullMQ Queue adds jobs, bullc-worker runs a
// command per job, and Node reads the results, failures, retries, progress
// and logs back (Job.fromId, getJobLogs, QueueEvents).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Job, closeAll, collect, eventually, newQueue, newQueueEvents, redis, redisUrl, sleep, uniquePrefix, withTimeout } =
  require('../lib/harness');
const { Proc, alive, killAll, script, startReady, startWorker, tmpDir, workerPath } = require('../lib/worker-proc');

// Waits until job `id` is completed or failed; returns the Node Job, read
// after that.
async function finished(queue, id, ms = 10000) {
  await eventually(
    async () => ['completed', 'failed'].includes(await queue.getJobState(id)),
    ms,
    `job ${id} to finish`,
  );
  return Job.fromId(queue, id);
}

describe('bullc-worker --exec', () => {
  let dir;
  let proc;
  const closers = [];

  before(() => {
    dir = tmpDir('worker-exec');
    // One script, one behaviour per job name (BULLC_JOB_NAME is set by bullc-worker).
    proc = script(
      dir,
      'proc.sh',
      `case "$BULLC_JOB_NAME" in
  echo) cat ;;
  text) cat >/dev/null; printf '  hello world \\n\\n' ;;
  empty) cat >/dev/null ;;
  number) cat >/dev/null; echo 42 ;;
  deep) cat >/dev/null; i=0; o=; c=; while [ $i -lt 1100 ]; do o="$o["; c="$c]"; i=$((i+1)); done; echo "$o$c" ;;
  nul) cat >/dev/null; printf 'a\\000b' ;;
  env) cat >/dev/null; printf '{"queue":"%s","id":"%s","attempt":"%s"}\\n' "$BULLC_QUEUE" "$BULLC_JOB_ID" "$BULLC_JOB_ATTEMPT" ;;
  fail)
    echo "progress: 10" >&2
    i=1; while [ $i -le 30 ]; do echo "line $i" >&2; i=$((i+1)); done
    echo "log: noted" >&2
    exit 5 ;;
  big) i=1; while [ $i -le 10 ]; do printf '%0999d\\n' $i >&2; i=$((i+1)); done; exit 1 ;;
  silent) exit 9 ;;
  unrecoverable) echo "bad input" >&2; exit 78 ;;
  notyet) cat >/dev/null; if [ "$BULLC_JOB_ATTEMPT" -le 2 ]; then echo "Not yet!" >&2; exit 1; fi ;;
  retry) date +%s%3N >> "${dir}/times-$BULLC_JOB_ID"; echo "attempt $BULLC_JOB_ATTEMPT failed" >&2; exit 1 ;;
  progress)
    cat >/dev/null
    echo "progress: 25" >&2
    echo "log: first line" >&2
    sleep 0.1
    echo 'progress: {"pct":50,"stage":"resize"}' >&2
    echo "log: second line" >&2
    echo "progress: not json" >&2
    echo '{"done":true}' ;;
  slow)
    sleep 30 & echo $! > "${dir}/child-$BULLC_JOB_ID"
    echo $$ > "${dir}/pid-$BULLC_JOB_ID"
    wait $! ;;
  *) echo "unknown job $BULLC_JOB_NAME" >&2; exit 1 ;;
esac`,
    );
  });

  after(async () => {
    await killAll();
    await closeAll(closers);
  });

  async function setup(tag, args = []) {
    const prefix = uniquePrefix(tag);
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'jobs', '--exec', proc, '--drain-delay', '1', ...args], { prefix });
    return { prefix, queue, w };
  }

  it('stores stdout as the return value: JSON as JSON, other text as a string', async () => {
    const { queue, w } = await setup('wxres', ['--concurrency', '4']);
    const echo = await queue.add('echo', { a: 1, nested: { b: [1, 2] } }, { attempts: 2 });
    const text = await queue.add('text', {});
    const empty = await queue.add('empty', {});
    const number = await queue.add('number', {});
    const env = await queue.add('env', {});

    const e = await finished(queue, echo.id);
    assert.equal(await e.getState(), 'completed');
    // the job as bullc-worker wrote it on the command's stdin
    assert.equal(e.returnvalue.id, echo.id);
    assert.equal(e.returnvalue.name, 'echo');
    assert.deepEqual(e.returnvalue.data, { a: 1, nested: { b: [1, 2] } });
    assert.equal(e.returnvalue.opts.attempts, 2);
    assert.equal(e.returnvalue.attemptsMade, 0);
    assert.equal(e.returnvalue.timestamp, echo.timestamp);

    assert.equal((await finished(queue, text.id)).returnvalue, 'hello world');
    assert.equal((await finished(queue, empty.id)).returnvalue, null);
    assert.equal((await finished(queue, number.id)).returnvalue, 42);
    assert.deepEqual((await finished(queue, env.id)).returnvalue, { queue: 'jobs', id: env.id, attempt: '1' });
    await w.waitFor(new RegExp(`completed queue=jobs id=${env.id} `));
    assert.equal((await w.stop()).code, 0);
  });

  it('passes data holding \\u0000 on intact and keeps the NULs of a text result', async () => {
    const { queue, w } = await setup('wxnul', ['--concurrency', '2']);
    const data = { s: 'before\u0000after', list: ['x\u0000', 1.5] };
    const echo = await queue.add('echo', data);
    const nul = await queue.add('nul', {});
    const e = await finished(queue, echo.id);
    assert.equal(await e.getState(), 'completed', e.failedReason);
    assert.deepEqual(e.returnvalue.data, data, 'the processor saw the data as stored');
    assert.equal((await finished(queue, nul.id)).returnvalue, 'a\u0000b');
    await w.stop();
  });

  it('fails a job with the end of stderr; exit 78 is unrecoverable', async () => {
    const { queue, w } = await setup('wxfail');
    const fail = await queue.add('fail', {});
    const big = await queue.add('big', {});
    const silent = await queue.add('silent', {});
    const unrec = await queue.add('unrecoverable', {}, { attempts: 3, backoff: { type: 'fixed', delay: 10 } });

    const f = await finished(queue, fail.id);
    assert.equal(await f.getState(), 'failed');
    const want = Array.from({ length: 20 }, (_, i) => `line ${i + 11}`).join('\n');
    assert.equal(f.failedReason, want, 'the last 20 lines, without the progress and log lines');
    assert.equal(f.progress, 10);
    assert.deepEqual((await queue.getJobLogs(fail.id)).logs, ['noted']);
    assert.match(f.stacktrace[0], /line 30/);

    const b = await finished(queue, big.id);
    assert.ok(b.failedReason.length <= 4096, `reason of ${b.failedReason.length} bytes`);
    assert.ok(b.failedReason.endsWith(`${'0'.repeat(997)}10`), 'ends with the last line');

    const s = await finished(queue, silent.id);
    assert.match(s.failedReason, /proc\.sh exited with code 9$/);

    const u = await finished(queue, unrec.id);
    assert.equal(await u.getState(), 'failed');
    assert.equal(u.failedReason, 'bad input');
    assert.equal(u.attemptsMade, 1, 'exit 78: no retry although attempts is 3');
    await w.stop();
  });

  it('retries with a fixed backoff of 300 ms, as Node schedules it', async () => {
    const { prefix, queue, w } = await setup('wxretry');
    // from the stream's start: no event is missed while it connects
    const qe = newQueueEvents('jobs', prefix, { lastEventId: '0-0' });
    closers.push(qe);
    await qe.waitUntilReady();
    const exhausted = collect(qe, 'retries-exhausted', 1);
    const failedEv = collect(qe, 'failed', 1);
    const job = await queue.add('retry', {}, { attempts: 3, backoff: { type: 'fixed', delay: 300 } });
    const [[ex]] = await withTimeout(exhausted, 10000, 'retries-exhausted');
    assert.equal(ex.jobId, job.id);
    assert.equal(Number(ex.attemptsMade), 3);
    const [[fe]] = await withTimeout(failedEv, 5000, 'failed');
    assert.equal(fe.failedReason, 'attempt 3 failed');
    const j = await finished(queue, job.id);
    assert.equal(j.attemptsMade, 3);
    const times = fs.readFileSync(path.join(dir, `times-${job.id}`), 'utf8').trim().split('\n').map(Number);
    assert.equal(times.length, 3);
    for (let i = 1; i < 3; i++) {
      const gap = times[i] - times[i - 1];
      assert.ok(gap >= 300, `gap ${i} is ${gap} ms, less than the 300 ms backoff`);
      assert.ok(gap < 1800, `gap ${i} is ${gap} ms`);
    }
    assert.equal((await w.waitFor(/failed queue=jobs .*attempt=1 will_retry=true/)) !== undefined, true);
    await w.waitFor(/failed queue=jobs .*attempt=3 will_retry=false/);
    await w.stop();
  });

  // node: "should retry a job after a delay if a fixed backoff is given"
  it('completes on the third attempt after two 1000 ms fixed backoffs', async () => {
    const { queue, w } = await setup('wxnotyet');
    const start = Date.now();
    const job = await queue.add('notyet', { foo: 'bar' }, { attempts: 3, backoff: 1000 });
    const j = await finished(queue, job.id, 10000);
    assert.equal(await j.getState(), 'completed');
    assert.ok(Date.now() - start > 2000, `completed after ${Date.now() - start} ms`);
    assert.equal(j.attemptsMade, 3, 'two failed attempts and the successful one');
    await w.stop();
  });

  it('applies progress and log lines while the command runs; QueueEvents sees every event', async () => {
    const { prefix, queue, w } = await setup('wxprog');
    // from the stream's start: no event is missed while it connects
    const qe = newQueueEvents('jobs', prefix, { lastEventId: '0-0' });
    closers.push(qe);
    await qe.waitUntilReady();
    const events = [];
    for (const name of ['active', 'progress', 'completed', 'failed', 'retries-exhausted', 'waiting']) {
      qe.on(name, args => events.push({ name, ...args }));
    }
    const ok = await queue.add('progress', {});
    const bad = await queue.add('silent', {}, { attempts: 2 });
    await eventually(() => events.some(e => e.name === 'retries-exhausted'), 10000, 'retries-exhausted');
    await eventually(() => events.some(e => e.name === 'completed'), 10000, 'completed');

    const of = id => events.filter(e => e.jobId === id).map(e => e.name);
    assert.deepEqual(of(ok.id).filter(n => n !== 'waiting'), ['active', 'progress', 'progress', 'completed']);
    const progress = events.filter(e => e.name === 'progress' && e.jobId === ok.id).map(e => e.data);
    assert.deepEqual(progress, [25, { pct: 50, stage: 'resize' }]);
    assert.deepEqual(events.find(e => e.name === 'completed').returnvalue, { done: true });
    // attempt 1 fails and is retried at once (no backoff), attempt 2 fails for good
    assert.deepEqual(of(bad.id).filter(n => n !== 'waiting'), ['active', 'active', 'failed', 'retries-exhausted']);

    const j = await finished(queue, ok.id);
    assert.deepEqual(j.progress, { pct: 50, stage: 'resize' });
    assert.deepEqual((await queue.getJobLogs(ok.id)).logs, ['first line', 'second line']);
    await w.waitFor(/warn\s+stderr .*ignored a progress line/);
    await w.stop();
  });

  it('--timeout kills the command and its children and fails the job (retries apply)', async () => {
    const { queue, w } = await setup('wxtime', ['--timeout', '500', '--kill-grace', '1000']);
    const started = Date.now();
    const job = await queue.add('slow', {}, { attempts: 2 });
    const j = await finished(queue, job.id, 10000);
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.failedReason, 'timed out after 500 ms');
    assert.equal(j.attemptsMade, 2);
    assert.ok(Date.now() - started < 5000, 'SIGTERM ended it; no wait for the 30 s sleep');
    const pid = Number(fs.readFileSync(path.join(dir, `pid-${job.id}`), 'utf8'));
    const child = Number(fs.readFileSync(path.join(dir, `child-${job.id}`), 'utf8'));
    await eventually(() => !alive(pid) && !alive(child), 3000, 'the command and its child to be gone');
    await w.waitFor(/warn\s+timeout queue=jobs/);
    await w.stop();
  });

  it('stores a result nested 1,100 deep as JSON, as JSON.parse reads it', async () => {
    const { queue, w } = await setup('wxdeep');
    const deep = await queue.add('deep', {});
    const d = await finished(queue, deep.id);
    assert.equal(await d.getState(), 'completed', d.failedReason);
    let v = d.returnvalue;
    let depth = 0;
    while (Array.isArray(v)) {
      depth++;
      v = v[0];
    }
    assert.equal(depth, 1100, 'an array, not a string');
    await w.stop();
  });

  it('out of fds, jobs go back to wait without losing an attempt, and it is said once', async () => {
    const prefix = uniquePrefix('wxfds');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const quick = script(dir, 'quick.sh', 'cat >/dev/null; sleep 0.05; echo \'{"ok":true}\'');
    // 64 fds hold about 15 running commands (3 pipes each): most of the 200 slots cannot start theirs
    const args = ['--redis', redisUrl(), '--prefix', prefix, '--queue', 'jobs', '--concurrency', '200', '--exec', quick,
      '--drain-delay', '1', '--allow-low-fd-limit'];
    const w = new Proc('/bin/sh', ['-c', 'ulimit -n 64 && exec "$0" "$@"', workerPath(), ...args]);
    await w.waitFor(/\bready\b/);
    const jobs = await queue.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: `j${i}`, data: { i }, opts: { attempts: 3 } })));
    await eventually(async () => (await queue.getCompletedCount()) === 300, 60000, 'all 300 jobs to complete');
    assert.equal(await queue.getFailedCount(), 0);
    for (const j of jobs.slice(0, 300)) {
      const done = await Job.fromId(queue, j.id);
      assert.equal(done.attemptsMade, 1, `job ${j.id}: only the attempt that completed`);
      assert.deepEqual(done.stacktrace, []);
    }
    const warned = w.lines.filter(l => /warn +spawn-failed/.test(l));
    assert.equal(warned.length, 1, w.text());
    assert.match(warned[0], /EMFILE/);
    assert.equal((await w.stop()).code, 0);
  });

  it('fails a job with a clear reason when the command cannot be started', async () => {
    const prefix = uniquePrefix('wxnoent');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    // queues naming X, Y, X: one warning per program, the later X not repeated
    const w = await startReady(['--queue', 'jobs', '--queue', 'jobs2', '--queue', 'jobs3',
      '--exec', 'jobs=/nonexistent/bullc-test-program', '--exec', 'jobs2=/nonexistent/bullc-other',
      '--exec', 'jobs3=/nonexistent/bullc-test-program'], { prefix });
    const warned = w.lines.filter(l => /warn +exec-missing/.test(l));
    assert.equal(warned.length, 2, w.text());
    assert.match(warned[0], /queue=jobs msg="cannot run \/nonexistent\/bullc-test-program \(not found/);
    assert.match(warned[1], /queue=jobs2 msg="cannot run \/nonexistent\/bullc-other \(not found/);
    const job = await queue.add('any', {});
    const j = await finished(queue, job.id);
    assert.match(j.failedReason, /^cannot run \/nonexistent\/bullc-test-program: .*\(ENOENT\)$/);
    await w.stop();
  });

  it('fails a job whose data is not JSON and goes on with the next one', async () => {
    const prefix = uniquePrefix('wxbad');
    const queue = newQueue('jobs', prefix);
    const client = redis();
    closers.push(queue, client);
    await queue.pause();
    const bad = await queue.add('echo', { fine: true });
    await client.hset(`${prefix}:jobs:${bad.id}`, 'data', '{not json');
    const good = await queue.add('echo', { fine: true });
    const w = await startReady(['--queue', 'jobs', '--exec', proc], { prefix });
    await queue.resume();
    // Node's Job.fromId cannot parse this job: read its hash
    await eventually(async () => (await client.zscore(`${prefix}:jobs:failed`, bad.id)) !== null, 10000, 'failed');
    const reason = await client.hget(`${prefix}:jobs:${bad.id}`, 'failedReason');
    assert.match(reason, /job \d+ has invalid JSON in its data field/);
    const g = await finished(queue, good.id);
    assert.equal(await g.getState(), 'completed');
    assert.deepEqual(g.returnvalue.data, { fine: true });
    await w.stop();
  });

  it('stops taking jobs while the queue is paused from Node, and resumes with it', async () => {
    const { queue, w } = await setup('wxpause');
    await queue.pause();
    const job = await queue.add('echo', { n: 1 });
    await sleep(1500);
    const j = await Job.fromId(queue, job.id);
    assert.equal(j.processedOn, undefined);
    assert.notEqual(await j.getState(), 'completed');
    await queue.resume();
    const done = await finished(queue, job.id, 5000);
    assert.equal(await done.getState(), 'completed');
    await w.stop();
  });

  it('runs the command given after --', async () => {
    const prefix = uniquePrefix('wxdash');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const w = startWorker(['--queue', 'jobs', '--', '/bin/sh', '-c', 'cat >/dev/null; echo "$0:$1"', 'first', 'second'], {
      prefix,
    });
    await w.waitFor(/ready/);
    const job = await queue.add('x', {});
    assert.equal((await finished(queue, job.id)).returnvalue, 'first:second');
    await w.stop();
  });
});
