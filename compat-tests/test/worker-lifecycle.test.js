// SPDX-License-Identifier: MIT
// bullc-worker as a process: start-up checks and exit codes, graceful and
// forced shutdown, log files and formats, the config file and the
// environment.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { AUTH_PASSWORD, Job, authPort, closeAll, eventually, newQueue, parseRedisUrl, redisUrl, uniquePrefix } =
  require('../lib/harness');
const { alive, killAll, pluginPath, script, startReady, startWorker, tmpDir } =
  require('../lib/worker-proc');

const closers = [];
let dir;
before(() => {
  dir = tmpDir('worker-life');
});
after(async () => {
  await killAll();
  await closeAll(closers);
});

async function finished(queue, id, ms = 10000) {
  await eventually(
    async () => ['completed', 'failed'].includes(await queue.getJobState(id)),
    ms,
    `job ${id} to finish`,
  );
  return Job.fromId(queue, id);
}

describe('bullc-worker shutdown', () => {
  it('SIGTERM mid-job: the job finishes, then bullc-worker exits 0', async () => {
    const prefix = uniquePrefix('wlterm');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const slow = script(dir, 'slow.sh', 'cat >/dev/null; sleep 1; echo \'"finished"\'');
    const w = await startReady(['--queue', 'jobs', '--exec', slow], { prefix });
    const job = await queue.add('s', {});
    await w.waitFor(/active queue=jobs/);
    w.kill('SIGTERM');
    const exit = await w.waitExit(10000);
    const exitedAt = Date.now();
    assert.equal(exit.code, 0, w.text());
    const j = await Job.fromId(queue, job.id);
    assert.equal(await j.getState(), 'completed');
    assert.equal(j.returnvalue, 'finished');
    assert.ok(j.finishedOn <= exitedAt);
    assert.match(w.text(), /shutdown mode=graceful signal=SIGTERM/);
    assert.match(w.text(), /exit code=0 loop_closed=true/);
  });

  it('a second signal forces the exit: the command is killed, the job left to stalled recovery', async () => {
    const prefix = uniquePrefix('wlforce');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const hang = script(dir, 'hang.sh', `echo $$ > "${dir}/hang-$BULLC_JOB_ID"; exec sleep 60`);
    const w = await startReady(
      ['--queue', 'jobs', '--exec', hang, '--lock-duration', '1000', '--stalled-interval', '1000'],
      { prefix },
    );
    const job = await queue.add('h', { n: 7 });
    await w.waitFor(/active queue=jobs/);
    await eventually(() => fs.existsSync(path.join(dir, `hang-${job.id}`)), 3000, 'the command to start');
    const pid = Number(fs.readFileSync(path.join(dir, `hang-${job.id}`), 'utf8'));
    const t0 = Date.now();
    w.kill('SIGTERM');
    await w.waitFor(/shutdown mode=graceful/);
    w.kill('SIGINT');
    const exit = await w.waitExit(5000);
    assert.ok(Date.now() - t0 < 3000, 'exited promptly');
    assert.equal(exit.code, 4, w.text());
    assert.match(w.text(), /shutdown mode=forced/);
    await eventually(() => !alive(pid), 3000, 'the command to be killed');
    assert.equal(await queue.getJobState(job.id), 'active', 'left in active');

    // another worker recovers it once the lock expired
    const r = await startReady(['--queue', 'jobs', '--builtin', 'echo', '--stalled-interval', '1000'], { prefix });
    const j = await finished(queue, job.id);
    assert.deepEqual(j.returnvalue, { n: 7 });
    await r.stop();
  });

  it('--shutdown-timeout bounds the drain: the command is killed, exit code 4', async () => {
    const prefix = uniquePrefix('wlshut');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const hang = script(dir, 'hang2.sh', 'exec sleep 60');
    const w = await startReady(['--queue', 'jobs', '--exec', hang, '--shutdown-timeout', '500'], { prefix });
    await queue.add('h', {});
    await w.waitFor(/active queue=jobs/);
    const t0 = Date.now();
    w.kill('SIGTERM');
    const exit = await w.waitExit(5000);
    const took = Date.now() - t0;
    assert.equal(exit.code, 4);
    assert.ok(took >= 450 && took < 3000, `exited after ${took} ms`);
    assert.match(w.text(), /shutdown mode=forced why="--shutdown-timeout passed"/);
  });
});

describe('bullc-worker start-up', () => {
  it('exits 3 with a clear message, without the password, when Redis is unreachable', async () => {
    const w = startWorker(['--queue', 'jobs', '--builtin', 'noop'], {
      redis: 'redis://someone:hunter2secret@127.0.0.1:1/0',
    });
    const exit = await w.waitExit(15000);
    assert.equal(exit.code, 3);
    assert.match(w.text(), /cannot reach Redis at redis:\/\/someone:\*\*\*@127\.0\.0\.1:1\/0/);
    assert.doesNotMatch(w.text(), /hunter2secret/);
  });

  it('exits 3 when Redis refuses the password; works with the right one', async () => {
    const bad = startWorker(['--queue', 'jobs', '--builtin', 'noop'], {
      redis: `redis://:wrong-password@127.0.0.1:${authPort()}`,
    });
    assert.equal((await bad.waitExit(15000)).code, 3);
    assert.match(bad.text(), /refused the credentials/);
    assert.doesNotMatch(bad.text(), /wrong-password/);

    const none = startWorker(['--queue', 'jobs', '--builtin', 'noop'], { redis: `redis://127.0.0.1:${authPort()}` });
    assert.equal((await none.waitExit(15000)).code, 3);
    assert.match(none.text(), /NOAUTH|auth/i);

    const good = await startReady(['--queue', 'jobs', '--builtin', 'noop'], {
      redis: `redis://:${AUTH_PASSWORD}@127.0.0.1:${authPort()}`,
      prefix: uniquePrefix('wlauth'),
    });
    assert.doesNotMatch(good.text(), new RegExp(AUTH_PASSWORD));
    assert.equal((await good.stop()).code, 0);
  });

  it('exits 2 on bad usage, naming the problem', async () => {
    const cases = [
      [[], /no queue/],
      [['--queue', 'q'], /queue 'q' has no processor/],
      [['--queue', 'q', '--builtin', 'nope'], /unknown builtin 'nope'/],
      [['--queue', 'q', '--builtin', 'other=noop'], /--builtin names queue 'other', which is not run/],
      [['--queue', 'q', '--builtin', 'noop', '--concurrency', '0'], /--concurrency must be at least 1/],
      [['--queue', 'q', '--builtin', 'noop', '--lock-duration', 'abc'], /--lock-duration must be an integer/],
      [['--queue', 'q', '--builtin', 'noop', '--lock-duration', '0'], /--lock-duration must be at least 1/],
      [['--queue', 'q', '--builtin', 'noop', '--stalled-interval', '0'], /--stalled-interval must be at least 1/],
      [['--queue', 'q', '--builtin', 'noop', '--drain-delay', '0'], /--drain-delay must be more than 0/],
      [['--queue', 'q', '--builtin', 'noop', '--remove-on-complete', '{x'], /--remove-on-complete must be JSON/],
      [['--queue', 'q', '--builtin', 'noop', '--frobnicate'], /unknown flag --frobnicate/],
      [['--queue', 'a:b', '--builtin', 'noop'], /must not contain ':'/],
      [['--queue', 'q', '--builtin', 'noop', '--limiter-max', '5'], /limiter needs both/],
      [['--queue', 'q', '--arg', 'x'], /--arg must follow an --exec/],
      [['--queue', 'q', '--builtin', 'noop', '--log-level', 'loud'], /--log-level must be/],
      [['--queue', 'q', '--builtin', 'noop', '--redis', 'http://x'], /--redis/],
      [['--queue', 'q', '--builtin', 'noop', '--busy-poll', '-1'], /--busy-poll must be a number of µs/],
      [['--queue', 'q', '--builtin', 'noop', '--busy-poll', '100001'], /--busy-poll must be a number of µs/],
    ];
    for (const [args, re] of cases) {
      const w = startWorker(args, { prefix: uniquePrefix('wlusage') });
      const exit = await w.waitExit();
      assert.equal(exit.code, 2, `${args.join(' ')}: ${w.text()}`);
      assert.match(w.text(), re, args.join(' '));
    }
    const help = startWorker(['--help'], { redis: null });
    assert.equal((await help.waitExit()).code, 0);
    assert.match(help.text(), /Exit codes: 0 .*\n.*2 usage/s);
  });

  it('logs a job name holding NUL and newline bytes whole, in JSON and in text', async () => {
    const name = 'a\u0000b\nc';
    for (const format of ['json', 'text']) {
      const prefix = uniquePrefix('wlnul');
      const queue = newQueue('jobs', prefix);
      closers.push(queue);
      const w = await startReady(['--queue', 'jobs', '--builtin', 'noop', '--log-format', format], { prefix });
      const job = await queue.add(name, {});
      const line = await w.waitFor(l => l.includes('completed') && l.includes(`${job.id}`));
      if (format === 'json') assert.equal(JSON.parse(line).name, name, line);
      else assert.match(line, / name="a\\x00b\\nc" /);
      assert.equal((await w.stop()).code, 0);
    }
  });

  it('exec commands do not see Redis\'s password unless --exec-redis-env', async () => {
    const dir = tmpDir('wlsecret');
    const env = script(dir, 'env.sh', 'cat >/dev/null; printf \'{"pw":"%s","url":"%s","user":"%s"}\' "$REDIS_PASSWORD" "$REDIS_URL" "$BULLC_TEST_MARK"');
    const url = `redis://:${AUTH_PASSWORD}@127.0.0.1:${authPort()}`;
    for (const [extra, want] of [
      [[], { pw: '', url: '', user: 'kept' }],
      [['--exec-redis-env'], { pw: AUTH_PASSWORD, url, user: 'kept' }],
    ]) {
      const prefix = uniquePrefix('wlsecret');
      const queue = newQueue('jobs', prefix, { connection: { host: '127.0.0.1', port: authPort(), password: AUTH_PASSWORD } });
      closers.push(queue);
      const w = await startReady(['--queue', 'jobs', '--exec', env, ...extra], {
        redis: null,
        prefix,
        env: { ...process.env, REDIS_URL: url, REDIS_PASSWORD: AUTH_PASSWORD, BULLC_TEST_MARK: 'kept' },
      });
      const job = await queue.add('x', {});
      await eventually(async () => (await queue.getJobState(job.id)) === 'completed', 10000, 'the job');
      assert.deepEqual((await Job.fromId(queue, job.id)).returnvalue, want, extra.join(' '));
      assert.equal((await w.stop()).code, 0);
    }
  });

  it('uses REDIS_HOST / REDIS_PORT (or REDIS_URL) when --redis is not given', async () => {
    const { host, port } = parseRedisUrl(redisUrl());
    const prefix = uniquePrefix('wlenv');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const env = { ...process.env, REDIS_URL: '', REDIS_HOST: host, REDIS_PORT: String(port) };
    const w = await startReady(['--queue', 'jobs', '--builtin', 'echo'], { prefix, redis: null, env });
    assert.match(w.text(), new RegExp(`start .*redis=redis://${host}:${port}/0`));
    const job = await queue.add('e', { via: 'env' });
    assert.deepEqual((await finished(queue, job.id)).returnvalue, { via: 'env' });
    await w.stop();
  });
});

describe('bullc-worker logs and configuration', () => {
  it('writes JSON lines to --log-file (mode 0600); SIGHUP reopens it', async () => {
    const prefix = uniquePrefix('wllog');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const log = path.join(dir, 'worker.log');
    const w = startWorker(
      ['--queue', 'jobs', '--builtin', 'echo', '--log-file', log, '--log-format', 'json', '--name', 'logger'],
      { prefix },
    );
    const read = file => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
    const events = file => read(file).map(l => JSON.parse(l));
    await eventually(() => events(log).some(e => e.event === 'ready'), 10000, 'ready in the log file');
    assert.equal(fs.statSync(log).mode & 0o777, 0o600);
    assert.equal(w.text(), '', 'nothing on stderr');
    const ready = events(log).find(e => e.event === 'ready');
    assert.equal(ready.queues, 'jobs');
    assert.equal(ready.level, 'info');
    assert.match(ready.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const a = await queue.add('one', {});
    await eventually(() => events(log).some(e => e.event === 'completed' && e.id === a.id), 5000, 'completed');
    const active = events(log).find(e => e.event === 'active' && e.id === a.id);
    assert.deepEqual({ queue: active.queue, name: active.name, attempt: active.attempt }, { queue: 'jobs', name: 'one', attempt: 1 });

    // logrotate: move the file away, then SIGHUP
    fs.renameSync(log, `${log}.1`);
    w.kill('SIGHUP');
    await eventually(() => events(log).some(e => e.event === 'log'), 5000, 'the reopened log file');
    const b = await queue.add('two', {}, { attempts: 1 });
    await eventually(() => events(log).some(e => e.event === 'completed' && e.id === b.id), 5000, 'completed in the new file');
    assert.ok(!events(`${log}.1`).some(e => e.id === b.id), 'the old file gets no new lines');
    assert.equal((await w.stop()).code, 0);
    assert.ok(events(log).some(e => e.event === 'exit' && e.code === 0));
  });

  it('--config runs several queues with their own processors and options; flags override the file', async () => {
    const prefix = uniquePrefix('wlconf');
    const queues = { a: newQueue('a', prefix), b: newQueue('b', prefix), c: newQueue('c', prefix) };
    closers.push(...Object.values(queues));
    const file = path.join(dir, 'worker.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        redis: 'redis://127.0.0.1:1', // --redis overrides it
        shutdownTimeout: 5000,
        defaults: { drainDelay: 1, builtin: 'noop' },
        queues: {
          a: { exec: ['/bin/sh', '-c', 'cat >/dev/null; echo "a-$BULLC_JOB_ID"'], concurrency: 2 },
          b: { builtin: 'echo', removeOnComplete: true },
          c: { plugin: pluginPath(), pluginConfig: { multiplier: 3 }, limiter: { max: 100, duration: 1000 } },
        },
      }),
    );
    const w = await startReady(['--config', file], { prefix });
    assert.match(w.text(), /ready queues=a,b,c concurrency=2,1,1/);
    const ja = await queues.a.add('x', {});
    const jb = await queues.b.add('x', { echo: 1 });
    const jc = await queues.c.add('x', { a: 1, b: 1 });
    assert.equal((await finished(queues.a, ja.id)).returnvalue, `a-${ja.id}`);
    assert.equal((await finished(queues.c, jc.id)).returnvalue.sum, 6);
    // b removes its completed jobs
    await eventually(async () => (await queues.b.getJob(jb.id)) === undefined, 5000, 'job b removed on completion');
    await w.stop();

    // flags override the file: b gets a processor from the command line
    const w2 = await startReady(['--config', file, '--queue', 'b', '--builtin', 'b=noop', '--remove-on-complete', 'false'], {
      prefix,
    });
    assert.match(w2.text(), /ready queues=b concurrency=1/);
    const jb2 = await queues.b.add('x', { echo: 2 });
    const done = await finished(queues.b, jb2.id);
    assert.equal(done.returnvalue, null);
    await w2.stop();

    fs.writeFileSync(path.join(dir, 'bad.json'), JSON.stringify({ queues: { a: { builtin: 'noop', concurrenc: 2 } } }));
    const bad = startWorker(['--config', path.join(dir, 'bad.json')], { prefix });
    assert.equal((await bad.waitExit()).code, 2);
    assert.match(bad.text(), /unknown key 'concurrenc' in queues\.a/);
    fs.writeFileSync(path.join(dir, 'bad2.json'), JSON.stringify({ queues: { a: { builtin: 'noop', concurrency: '2' } } }));
    const bad2 = startWorker(['--config', path.join(dir, 'bad2.json')], { prefix });
    assert.equal((await bad2.waitExit()).code, 2);
    assert.match(bad2.text(), /bad2\.json: queues\.a\.concurrency must be an integer/);
    fs.writeFileSync(path.join(dir, 'bad3.json'), JSON.stringify({ redis: 'redis://127.0.0.1:63x79', queues: { a: { builtin: 'noop' } } }));
    const bad3 = startWorker(['--config', path.join(dir, 'bad3.json')], { prefix, redis: null });
    assert.equal((await bad3.waitExit()).code, 2);
    assert.match(bad3.text(), /bad3\.json: redis: invalid Redis URL: bad port/);
  });

  it('--remove-on-fail and --name are passed to the worker', async () => {
    const prefix = uniquePrefix('wlopts');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const fail = script(dir, 'fail.sh', 'echo nope >&2; exit 1');
    const w = await startReady(
      ['--queue', 'jobs', '--exec', fail, '--remove-on-fail', '{"count":1}', '--name', 'c-worker'],
      { prefix },
    );
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await queue.add('f', { i }));
    await eventually(async () => (await queue.getJobState(jobs[2].id)) === 'failed', 5000, 'the last job to fail');
    assert.equal(await queue.getJobCountByTypes('failed'), 1, 'only the newest failed job is kept');
    assert.equal((await Job.fromId(queue, jobs[2].id)).processedBy, 'c-worker');
    await w.stop();
  });

  // Busy polling spins only while a reply is due: jobs from Node are all
  // processed, and an idle worker sleeps (it would burn a whole CPU if the
  // spin outlived its requests).
  it('--busy-poll: every job processed; idle, the worker does not spin', async () => {
    const prefix = uniquePrefix('wlbusy');
    const queue = newQueue('jobs', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'jobs', '--builtin', 'noop', '--busy-poll', '500'],
      { prefix });
    await queue.addBulk(Array.from({ length: 300 }, (_, i) => ({ name: 'b', data: { i } })));
    await eventually(async () => (await queue.getJobCountByTypes('completed')) === 300, 10000, '300 completed');
    const cpu = () => {
      const f = fs.readFileSync(`/proc/${w.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks
    };
    await new Promise(r => setTimeout(r, 300));
    const c0 = cpu();
    await new Promise(r => setTimeout(r, 2000));
    const used = cpu() - c0;
    assert.ok(used < 0.5, `an idle worker with --busy-poll used ${used} s of CPU in 2 s`);
    await w.stop();
  });
});
