// SPDX-License-Identifier: MIT
// bullc-worker --exec-persistent: long-lived children speaking the JSON line
// protocol, with the Python, Node.js and POSIX sh helpers of
// tools/bullc-worker/helpers/. A Node BullMQ Queue adds the jobs, Node reads
// results, failures, progress, logs and data back, and a QueueEvents sees the
// events; children that crash, hang, write garbage or a 100 MB line, or exit
// at start fail their job with the reason and are restarted. --exec-children:
// shared children get several jobs at once, answers find their job by id, and
// a shared child's end fails every job it holds.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { bullc, closeAll, eventually, newQueue, newQueueEvents, redis, uniquePrefix } = require('../lib/harness');
const { alive, finished, killAll, startReady, tmpDir, workerPath } = require('../lib/worker-proc');

const HELPERS = path.join(__dirname, '..', '..', 'tools', 'bullc-worker', 'helpers');

// A child of `ppid` that exited and was not reaped.
function zombieOf(pid, ppid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] === 'Z' && Number(f[1]) === ppid;
  } catch {
    return false;
  }
}

// The pids of the children bullc-worker started (its debug `spawn` lines).
const spawned = w => w.lines.filter(l => / spawn /.test(l)).map(l => Number(/pid=(\d+)/.exec(l)[1]));

describe('bullc-worker --exec-persistent', () => {
  let dir;
  const closers = [];
  const py = () => path.join(dir, 'proc.py');

  before(() => {
    dir = tmpDir('worker-execp');
    fs.writeFileSync(
      py(),
      `import os, sys, time
sys.path.insert(0, ${JSON.stringify(HELPERS)})
import bullc_processor as bp
pids = ${JSON.stringify(dir)}
def process(job):
    n = job.name
    if n == "echo":
        return {"job": job.raw, "pid": os.getpid()}
    if n == "steps":
        job.progress(25)
        job.log("first line")
        job.progress({"pct": 50, "stage": "resize"})
        job.update_data({"seen": job.data, "step": 2})
        job.log("second line")
        print("a print goes to the log")
        return {"done": True}
    if n == "fail":
        raise ValueError("no luck on attempt %d" % (job.attempts_made + 1))
    if n == "unrecoverable":
        raise bp.Unrecoverable("bad input")
    if n == "sleep":
        with open(os.path.join(pids, "pid-" + job.id), "w") as f:
            f.write(str(os.getpid()))
        if job.attempts_made == 0:
            time.sleep(60)
        return "second attempt"
    if n == "step":
        if job.data.get("step") != 1:
            job.update_data({"step": 1})
            raise bp.Delay(int(time.time() * 1000) + 300)
        return "after the delay"
    if n == "alone":
        raise bp.WaitChildren({"alone": True})
    if n == "hang":
        time.sleep(3600)
    if n == "pooled":
        k = job.data["n"]
        job.progress(k)
        job.log("n=%d" % k)
        job.update_data({"n": k, "seen": True})
        return {"pid": os.getpid(), "twice": 2 * k}
    if n == "hold":  # the first attempt of the first one sleeps; the others wait behind it
        if job.attempts_made == 0:
            with open(os.path.join(pids, "hold"), "w") as f:
                f.write(str(os.getpid()))
            time.sleep(3600)
        return "held " + job.id
    if n == "hang-once":
        if job.attempts_made == 0:
            time.sleep(3600)
        return "after the timeout"
    if n == "stray":
        bp._write(job._out, bp._dumps({"id": "no-such-job", "result": 1}))
        time.sleep(3600)
    if n == "mute-once":  # stdout closed, still running
        if job.attempts_made == 0:
            os.close(job._out)
            time.sleep(3600)
        return "after the mute one"
    if n == "twice":
        bp._write(job._out, bp._dumps({"id": job.id, "result": 1}))
        return 2
    if n == "slow":
        with open(os.path.join(pids, "slow"), "w") as f:
            f.write("started")
        time.sleep(job.data.get("s", 1.5))
        return "slow done"
    raise ValueError("unknown job " + n)
bp.run(process)
`,
    );
  });

  after(async () => {
    await killAll();
    await closeAll(closers);
  });

  async function setup(tag, args, prog = ['python3', '--arg', py()]) {
    const prefix = uniquePrefix(tag);
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const w = await startReady(
      ['--queue', 'jobs', '--exec-persistent', prog[0], ...prog.slice(1), '--drain-delay', '1', '--log-level', 'debug', ...args],
      { prefix },
    );
    return { prefix, queue, w };
  }

  it('results, errors, unrecoverable, progress, logs and updateData; a Node QueueEvents sees them', async () => {
    const { prefix, queue, w } = await setup('xpres', ['--concurrency', '2']);
    const qe = newQueueEvents('jobs', prefix, { lastEventId: '0-0' });
    closers.push(qe);
    await qe.waitUntilReady();
    const events = [];
    for (const name of ['active', 'progress', 'completed', 'failed'])
      qe.on(name, a => events.push({ name, ...a }));

    const echo = await queue.add('echo', { a: 1, s: 'x\u0000y\nz', deep: [[[{ b: 1.5 }]]] }, { attempts: 2 });
    const steps = await queue.add('steps', { k: 'v' });
    const fail = await queue.add('fail', {}, { attempts: 2, backoff: { type: 'fixed', delay: 50 } });
    const unrec = await queue.add('unrecoverable', {}, { attempts: 3 });

    const e = await finished(queue, echo.id);
    assert.equal(await e.getState(), 'completed', e.failedReason);
    const seen = e.returnvalue.job;
    assert.equal(seen.id, echo.id);
    assert.equal(seen.name, 'echo');
    assert.deepEqual(seen.data, { a: 1, s: 'x\u0000y\nz', deep: [[[{ b: 1.5 }]]] });
    assert.equal(seen.opts.attempts, 2);
    assert.equal(seen.attemptsMade, 0);
    assert.equal(seen.timestamp, echo.timestamp);
    assert.equal(seen.queue, 'jobs');
    assert.equal(seen.prefix, prefix);

    const s = await finished(queue, steps.id);
    assert.equal(await s.getState(), 'completed', s.failedReason);
    assert.deepEqual(s.returnvalue, { done: true });
    assert.deepEqual(s.progress, { pct: 50, stage: 'resize' });
    assert.deepEqual(s.data, { seen: { k: 'v' }, step: 2 });
    assert.deepEqual((await queue.getJobLogs(steps.id)).logs, ['first line', 'second line']);
    await w.waitFor(/info +stderr queue=jobs .*line="a print goes to the log"/);

    const f = await finished(queue, fail.id);
    assert.equal(await f.getState(), 'failed');
    assert.equal(f.failedReason, 'no luck on attempt 2');
    assert.equal(f.attemptsMade, 2, 'retried per its attempts');

    const u = await finished(queue, unrec.id);
    assert.equal(u.failedReason, 'bad input');
    assert.equal(u.attemptsMade, 1, 'unrecoverable: no retry although attempts is 3');

    await eventually(async () => events.filter(x => x.name === 'completed').length === 2, 5000, 'completed events');
    const prog = events.filter(x => x.name === 'progress' && x.jobId === steps.id).map(x => x.data);
    assert.deepEqual(prog, [25, { pct: 50, stage: 'resize' }]);
    const order = events.filter(x => x.jobId === steps.id).map(x => x.name);
    assert.equal(order[order.length - 1], 'completed', `progress before completed: ${order}`);
    assert.ok(events.some(x => x.name === 'failed' && x.jobId === unrec.id && x.failedReason === 'bad input'));

    // two slots, two children, kept for every job
    assert.equal(new Set(spawned(w)).size, 2, w.text());
    assert.equal((await w.stop()).code, 0);
    for (const pid of spawned(w)) assert.ok(!alive(pid), `child ${pid} stopped with the worker`);
  });

  it('flow control: delay and waitChildren answers move the job as Node\'s step jobs do; the config file\'s execPersistent', async () => {
    const prefix = uniquePrefix('xpflow');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const cfg = path.join(dir, 'flow.json');
    fs.writeFileSync(cfg, JSON.stringify({ queues: { jobs: { execPersistent: ['python3', py()], concurrency: 2 } } }));
    const w = await startReady(['--config', cfg, '--drain-delay', '1'], { prefix });
    const step = await queue.add('step', { step: 0 }, { attempts: 1 });
    const alone = await queue.add('alone', {});
    const j = await finished(queue, step.id);
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.equal(j.returnvalue, 'after the delay');
    assert.deepEqual(j.data, { step: 1 });
    assert.equal(j.attemptsMade, 1, 'the delay counted no attempt');
    assert.ok(j.finishedOn - step.timestamp >= 300, `finished ${j.finishedOn - step.timestamp} ms after the add`);
    const a = await finished(queue, alone.id);
    assert.equal(await a.getState(), 'completed', a.failedReason);
    assert.deepEqual(a.returnvalue, { alone: true }, 'no pending child: completes with the result');
    // SIGHUP: execChildren is kept (its children were made at the start), concurrency still applies
    fs.writeFileSync(cfg, JSON.stringify({ queues: { jobs: { execPersistent: ['python3', py()], concurrency: 1, execChildren: 1 } } }));
    w.kill('SIGHUP');
    await w.waitFor(/warn +reload queue=jobs execChildren=2 msg="execChildren changes only with a restart: kept"/);
    await w.waitFor(/info +reload queue=jobs was=2 concurrency=1/);
    const e = await queue.add('echo', {});
    assert.equal(await (await finished(queue, e.id)).getState(), 'completed');
    assert.equal((await w.stop()).code, 0);
  });

  it('a child killed with SIGKILL mid-job fails its job (retried on a new child); other slots go on; no zombie', async () => {
    const { queue, w } = await setup('xpkill', ['--concurrency', '2']);
    const job = await queue.add('sleep', {}, { attempts: 2, backoff: 10 });
    const pidFile = path.join(dir, `pid-${job.id}`);
    await eventually(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').length > 0, 10000, 'the child');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    fs.unlinkSync(pidFile);
    // the other slot keeps working while this one is busy
    const other = await queue.add('echo', { n: 1 });
    assert.equal(await (await finished(queue, other.id)).getState(), 'completed');
    process.kill(pid, 'SIGKILL');
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.equal(j.returnvalue, 'second attempt');
    assert.equal(j.attemptsMade, 2);
    assert.match(j.stacktrace[0] || '', /python3 killed by signal 9 \(KILL\) while processing the job/);
    await w.waitFor(new RegExp(`warn +exit queue=jobs pid=${pid} .*signal=9`));
    assert.ok(!zombieOf(pid, w.pid), 'the killed child was reaped');
    const more = await Promise.all([1, 2, 3, 4].map(n => queue.add('echo', { n })));
    for (const m of more) assert.equal(await (await finished(queue, m.id)).getState(), 'completed');
    await w.stop();
  });

  it('a hang past --timeout, garbage and a 100 MB line fail their job with the reason; the slot restarts', async () => {
    const prog = path.join(dir, 'bad.sh');
    // a sh child answering by job name; the 100 MB line is written by head
    fs.writeFileSync(
      prog,
      `#!/bin/sh
. ${HELPERS}/bullc_processor.sh
process() {
    case $BULLC_NAME in
    '"hang"') sleep 3600 ;;
    '"garbage"') echo 'this is not JSON' ;;
    '"half"') printf '{"id":%s,"result":' "$BULLC_JOB_ID"; exit 0 ;;
    '"other-id"') printf '{"id":"no-such-job","result":1}\\n' ;;
    '"huge"') head -c 104857600 /dev/zero | tr '\\0' 'x'; echo ;;
    *) bullc_result "{\\"ok\\":$BULLC_JOB_ID}" ;;
    esac
}
bullc_run process
`,
      { mode: 0o755 },
    );
    const { queue, w } = await setup('xpbad', ['--concurrency', '3', '--timeout', '1500', '--kill-grace', '200'], [prog]);
    const hang = await queue.add('hang', {});
    const garbage = await queue.add('garbage', {});
    const half = await queue.add('half', {});
    const other = await queue.add('other-id', {});
    const huge = await queue.add('huge', {});
    const oks = await Promise.all([1, 2, 3, 4, 5, 6].map(n => queue.add('ok', { n })));

    const h = await finished(queue, hang.id);
    assert.equal(h.failedReason, 'timed out after 1500 ms');
    const g = await finished(queue, garbage.id);
    assert.match(g.failedReason, /bad\.sh wrote a line that is not a JSON object with an "id": this is not JSON$/);
    const hf = await finished(queue, half.id);
    assert.match(hf.failedReason, /bad\.sh exited with code 0 while processing the job/);
    const o = await finished(queue, other.id);
    assert.match(o.failedReason, /answered for a job id it does not hold \(not handed to it, or answered already\)/);
    const u = await finished(queue, huge.id, 60000);
    assert.match(u.failedReason, /bad\.sh wrote an answer line longer than 16777216 bytes/);
    for (const ok of oks) {
      const j = await finished(queue, ok.id, 30000);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      assert.deepEqual(j.returnvalue, { ok: ok.id });
    }
    await w.waitFor(/warn +timeout queue=jobs/);
    assert.ok(spawned(w).length >= 4, 'children were restarted');
    assert.equal((await w.stop()).code, 0);
    await eventually(() => spawned(w).every(pid => !alive(pid)), 5000, 'every child gone');
  });

  it('a child that exits at start fails each job with its stderr, with backoff; nothing is lost', async () => {
    const prog = path.join(dir, 'broken.py');
    fs.writeFileSync(prog, 'import sys\nsys.stderr.write("ImportError: no module named thing\\n")\nsys.exit(1)\n');
    const { queue, w } = await setup('xpstart', ['--concurrency', '1'], ['python3', '--arg', prog]);
    const jobs = await Promise.all([1, 2, 3].map(n => queue.add('any', { n }, { attempts: 1 })));
    const t0 = Date.now();
    for (const j of jobs) {
      const f = await finished(queue, j.id, 20000);
      assert.equal(await f.getState(), 'failed');
      assert.equal(f.failedReason,
        'python3 exited with code 1 while processing the job: ImportError: no module named thing');
    }
    // restarts after 100 and 200 ms at least
    assert.ok(Date.now() - t0 >= 300, `three starts in ${Date.now() - t0} ms: no backoff`);
    assert.equal(spawned(w).length, 3);
    assert.equal((await w.stop()).code, 0);
  });

  it('--exec-children 2 at concurrency 8: 40 jobs over 2 shared children, updates land on their job', async () => {
    const { queue, w } = await setup('xppool', ['--concurrency', '8', '--exec-children', '2']);
    const jobs = await queue.addBulk(Array.from({ length: 40 }, (_, n) => ({ name: 'pooled', data: { n } })));
    const pids = new Set();
    for (const [n, job] of jobs.entries()) {
      const j = await finished(queue, job.id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      assert.equal(j.returnvalue.twice, 2 * n);
      pids.add(j.returnvalue.pid);
      assert.equal(j.progress, n);
      assert.deepEqual(j.data, { n, seen: true });
      assert.deepEqual((await queue.getJobLogs(job.id)).logs, [`n=${n}`]);
    }
    assert.ok(pids.size <= 2, `results from ${pids.size} children`);
    assert.equal(spawned(w).length, 2, w.text());
    assert.equal((await w.stop()).code, 0);
  });

  it('a shared child killed with SIGKILL fails every job it holds; each is retried and completes; no zombie', async () => {
    const { queue, w } = await setup('xppkill', ['--concurrency', '4', '--exec-children', '1']);
    const pidFile = path.join(dir, 'hold');
    const jobs = await queue.addBulk([1, 2, 3, 4].map(n => ({ name: 'hold', data: { n }, opts: { attempts: 2, backoff: 10 } })));
    await eventually(async () => fs.existsSync(pidFile) && (await queue.getActiveCount()) === 4, 10000, 'four jobs held');
    await new Promise(r => setTimeout(r, 200)); // the last line handed over
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    fs.unlinkSync(pidFile);
    process.kill(pid, 'SIGKILL');
    for (const job of jobs) {
      const j = await finished(queue, job.id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      assert.equal(j.returnvalue, `held ${job.id}`);
      assert.equal(j.attemptsMade, 2);
      assert.match(j.stacktrace[0] || '', /^Error: python3 killed by signal 9 \(KILL\) while holding this job and 3 others\n/);
    }
    await w.waitFor(new RegExp(`warn +exit queue=jobs pid=${pid} .*signal=9`));
    assert.ok(!zombieOf(pid, w.pid), 'the killed child was reaped');
    await w.stop();
  });

  it('a job past --timeout on a shared child: it and the jobs behind it fail and are retried; a stray id is a protocol error', async () => {
    // 2.5 s: the retry's clock includes a new child's start (a Python start takes over 1 s on a loaded machine)
    const { queue, w } = await setup('xpptime', ['--concurrency', '3', '--exec-children', '1', '--timeout', '2500', '--kill-grace', '200']);
    const hang = await queue.add('hang-once', {}, { attempts: 2, backoff: 10 });
    const behind = await queue.addBulk([1, 2].map(n => ({ name: 'echo', data: { n }, opts: { attempts: 2, backoff: 10 } })));
    const h = await finished(queue, hang.id);
    assert.equal(await h.getState(), 'completed', h.failedReason);
    assert.match(h.stacktrace[0], /^Error: timed out after 2500 ms\n/);
    for (const job of behind) {
      const j = await finished(queue, job.id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      assert.equal(j.attemptsMade, 2);
      assert.equal(j.stacktrace[0].split('\n')[0], `Error: its child (shared with job ${hang.id}) was stopped: job ${hang.id} timed out after 2500 ms`);
    }
    const stray = await queue.add('stray', {}, { attempts: 1 });
    const s = await finished(queue, stray.id);
    assert.match(s.failedReason, /^python3 answered for a job id it does not hold \(not handed to it, or answered already\): \{"id":"no-such-job","result":1\}$/);
    await w.stop();
  });

  it('a cancel line for a job waiting behind another on a shared child fails it without running it', async () => {
    const { prefix, queue, w } = await setup('xppcancel', ['--concurrency', '2', '--exec-children', '1']);
    fs.rmSync(path.join(dir, 'slow'), { force: true });
    const slow = await queue.add('slow', {});
    const queued = await queue.add('echo', {}, { attempts: 1 });
    await eventually(async () => fs.existsSync(path.join(dir, 'slow')) && (await queue.getActiveCount()) === 2, 10000, 'both held');
    const r = bullc(['cancel', 'jobs', queued.id, '--reason', 'not wanted'], { prefix });
    assert.equal(r.status, 0, r.stderr);
    const q = await finished(queue, queued.id);
    assert.equal(q.failedReason, 'not wanted');
    const j = await finished(queue, slow.id);
    assert.equal(j.returnvalue, 'slow done');
    assert.equal(spawned(w).length, 1, 'the child answered: not restarted');
    await w.stop();
  });

  it('a shared child times the job it runs: jobs waiting behind others neither time out nor lose their cancel grace', async () => {
    const { prefix, queue, w } = await setup('xppclock', ['--concurrency', '3', '--exec-children', '1', '--timeout', '1500', '--kill-grace', '300']);
    fs.rmSync(path.join(dir, 'slow'), { force: true });
    const first = await queue.add('echo', {}); // the child's start is not the test's business
    assert.equal((await finished(queue, first.id)).failedReason, undefined);
    const slow = await queue.addBulk([1, 2].map(n => ({ name: 'slow', data: { s: 1, n }, opts: { attempts: 1 } })));
    const queued = await queue.add('echo', {}, { attempts: 1 });
    await eventually(async () => fs.existsSync(path.join(dir, 'slow')) && (await queue.getActiveCount()) === 3, 10000, 'three held');
    const r = bullc(['cancel', 'jobs', queued.id, '--reason', 'not wanted'], { prefix });
    assert.equal(r.status, 0, r.stderr);
    for (const job of slow) { // the second waits 1 s and runs 1 s: past 1500 ms from its handing over
      const j = await finished(queue, job.id);
      assert.equal(j.returnvalue, 'slow done', j.failedReason);
    }
    assert.equal((await finished(queue, queued.id)).failedReason, 'not wanted', 'answered at its turn, past 300 ms');
    assert.equal(spawned(w).length, 1, 'no child stopped');
    await w.stop();
  });

  it('a lost lock on a shared child: a cancel line, the answer dropped, the other job and the child go on', async () => {
    const { prefix, queue, w } = await setup('xpplock', ['--concurrency', '2', '--exec-children', '1', '--lock-duration', '1000']);
    fs.rmSync(path.join(dir, 'slow'), { force: true });
    const slow = await queue.add('slow', { s: 2.5 });
    const lost = await queue.add('echo', {}, { attempts: 1 });
    await eventually(async () => fs.existsSync(path.join(dir, 'slow')) && (await queue.getActiveCount()) === 2, 10000, 'both held');
    const r = redis();
    closers.push(r);
    await r.set(`${prefix}:jobs:${lost.id}:lock`, 'another-worker', 'PX', 30000);
    await w.waitFor(new RegExp(`warn +lock-lost queue=jobs id=${lost.id} .*told the child`), 5000);
    const j = await finished(queue, slow.id);
    assert.equal(j.returnvalue, 'slow done');
    await new Promise(res => setTimeout(res, 300)); // its answer, right behind
    assert.equal(await (await queue.getJob(lost.id)).getState(), 'active', 'its answer was not stored');
    assert.equal(spawned(w).length, 1, 'the child answered: not restarted');
    await w.stop();
  });

  it('a shared child that closes its stdout but keeps running fails what it holds at once; a second answer retires it', async () => {
    const { queue, w } = await setup('xppmute', ['--concurrency', '2', '--exec-children', '1']);
    const opts = { attempts: 2, backoff: 10 };
    const [mute, behind] = await queue.addBulk([{ name: 'mute-once', data: {}, opts }, { name: 'echo', data: {}, opts }]);
    for (const [job, value] of [[mute, 'after the mute one'], [behind, null]]) {
      const j = await finished(queue, job.id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      if (value) assert.equal(j.returnvalue, value);
      assert.match(j.stacktrace[0] || '', /^Error: python3 closed its stdout but kept running while (holding this job and 1 other|processing the job)\n/);
    }
    await w.waitFor(/warn +protocol queue=jobs .*msg="python3 closed its stdout but kept running"/);
    const twice = await queue.add('twice', {}, { attempts: 1 });
    const t = await finished(queue, twice.id);
    assert.equal(t.returnvalue, 1, 'the first answer counts');
    await w.waitFor(/warn +protocol queue=jobs .*msg="answered for a job id it does not hold \(not handed to it, or answered already\)"/);
    assert.equal((await w.stop()).code, 0);
  });

  it('--exec-children: 0, above the concurrency, not a number, or without --exec-persistent: exit 2 with the reason', () => {
    for (const [args, msg] of [
      [['--exec-persistent', 'python3', '--concurrency', '4', '--exec-children', '0'], /--exec-children must be at least 1/],
      [['--exec-persistent', 'python3', '--concurrency', '4', '--exec-children', '5'], /--exec-children \(execChildren\) of queue 'jobs' must be from 1 to its concurrency \(4\), not 5/],
      [['--exec-persistent', 'python3', '--exec-children', 'x'], /--exec-children must be an integer, not 'x'/],
      [['--builtin', 'noop', '--concurrency', '4', '--exec-children', '2'], /--exec-children \(execChildren\) of queue 'jobs' needs --exec-persistent/],
    ]) {
      const r = spawnSync(workerPath(), ['--queue', 'jobs', ...args], { encoding: 'utf8', timeout: 10000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
    }
  });

  for (const [lang, prog] of [
    ['Node.js', dir => {
      const p = path.join(dir, 'proc.js');
      fs.writeFileSync(p, `const { run, UnrecoverableError } = require(${JSON.stringify(path.join(HELPERS, 'bullc_processor.js'))});
run(async job => {
  if (job.name === 'fail') throw new Error('node says no');
  if (job.name === 'unrecoverable') throw new UnrecoverableError('never');
  await job.updateProgress(40);
  await job.log('from node');
  await job.updateData({ ...job.data, touched: true });
  console.log('to the log');
  return { sum: job.data.a + job.data.b, queue: job.queue };
});
`);
      return [process.execPath, '--arg', p];
    }],
    ['POSIX sh', dir => {
      const p = path.join(dir, 'proc.sh');
      fs.writeFileSync(p, `#!/bin/sh
. ${HELPERS}/bullc_processor.sh
process() {
    case $BULLC_NAME in
    '"fail"') bullc_fail 'sh says "no"' ;;
    '"unrecoverable"') bullc_fail_unrecoverable never ;;
    *)
        bullc_progress 40
        bullc_log "from sh	tab"
        bullc_data "{\\"was\\":$BULLC_DATA,\\"touched\\":true}"
        echo "to the log" >&2
        bullc_result "{\\"data\\":$BULLC_DATA,\\"id\\":$BULLC_JOB_ID}" ;;
    esac
}
bullc_run process
`, { mode: 0o755 });
      return [p];
    }],
  ]) {
    it(`the ${lang} helper: result, progress, log, data, error and unrecoverable`, async () => {
      const { queue, w } = await setup(`xp${lang[0]}`, ['--concurrency', '2'], prog(dir));
      const ok = await queue.add('sum', { a: 2, b: 3 });
      const fail = await queue.add('fail', {}, { attempts: 1 });
      const unrec = await queue.add('unrecoverable', {}, { attempts: 3 });
      const j = await finished(queue, ok.id);
      assert.equal(await j.getState(), 'completed', j.failedReason);
      assert.equal(j.progress, 40);
      if (lang === 'Node.js') {
        assert.deepEqual(j.returnvalue, { sum: 5, queue: 'jobs' });
        assert.deepEqual(j.data, { a: 2, b: 3, touched: true });
        assert.deepEqual((await queue.getJobLogs(ok.id)).logs, ['from node']);
      } else {
        // bullc_data also sets BULLC_DATA
        assert.deepEqual(j.returnvalue, { data: { was: { a: 2, b: 3 }, touched: true }, id: ok.id });
        assert.deepEqual(j.data, { was: { a: 2, b: 3 }, touched: true });
        assert.deepEqual((await queue.getJobLogs(ok.id)).logs, ['from sh\ttab']);
      }
      await w.waitFor(/info +stderr queue=jobs .*line="to the log"/);
      const f = await finished(queue, fail.id);
      assert.equal(f.failedReason, lang === 'Node.js' ? 'node says no' : 'sh says "no"');
      const u = await finished(queue, unrec.id);
      assert.equal(u.failedReason, 'never');
      assert.equal(u.attemptsMade, 1);
      assert.equal((await w.stop()).code, 0);
    });
  }
});
