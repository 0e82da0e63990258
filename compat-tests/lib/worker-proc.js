// SPDX-License-Identifier: MIT
// Helpers of the bullc-worker compat tests (compat-tests/test/worker-*.test.js):
// `bullc-worker`, Node worker and redis-server child processes, their log
// lines, and clean-up. Every process started here is killed by killAll()
// (call it in an `after` hook), and by lib/children.js when the test's process
// ends, so a failing test never leaves one behind.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { track } = require('./children');
const { Job, eventually, newQueue, newQueueEvents, redisUrl, uniquePrefix } = require('./harness');

function binDir() {
  const d = process.env.BULLC_BIN_DIR;
  if (!d) throw new Error('BULLC_BIN_DIR is not set: run the compat tests through ctest');
  return d;
}

const workerPath = () => path.join(binDir(), 'bullc-worker');
const pluginPath = () => path.join(binDir(), 'libbullc_example_plugin.so');

// A directory of this test run for scripts, pid files and logs.
function tmpDir(tag) {
  const base = process.env.BULLC_TEST_TMP || path.join(require('node:os').tmpdir(), 'bullc-tests');
  const d = path.join(base, `${tag}-${process.pid}-${Date.now()}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

// Writes an executable /bin/sh script and returns its path.
function script(dir, name, body) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return p;
}

const live = new Set();

// A child process whose stdout and stderr lines are collected; waitFor()
// resolves on the first line (past or future) matching a RegExp or predicate.
// opts.stdin: a pipe to write to (this.child.stdin) instead of none.
class Proc {
  constructor(file, args, opts = {}) {
    this.args = args;
    this.lines = [];
    this.waiters = [];
    this.child = track(spawn(file, args, {
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      env: opts.env || process.env,
      cwd: opts.cwd,
    }));
    live.add(this);
    this.exited = new Promise(resolve => {
      this.child.on('exit', (code, signal) => {
        live.delete(this);
        this.exit = { code, signal };
        resolve(this.exit);
        for (const w of this.waiters) w.reject(new Error(`process exited (${code ?? signal}) before: ${w.what}\n${this.text()}`));
        this.waiters = [];
      });
    });
    this.child.on('error', () => {});
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', chunk => {
        partial += chunk;
        const parts = partial.split('\n');
        partial = parts.pop();
        for (const l of parts) this.onLine(l);
      });
      stream.on('end', () => {
        if (partial) this.onLine(partial);
        partial = '';
      });
    }
  }

  get pid() {
    return this.child.pid;
  }

  onLine(line) {
    this.lines.push(line);
    if (process.env.BULLC_TEST_VERBOSE) process.stderr.write(`[${this.child.pid}] ${line}\n`);
    this.waiters = this.waiters.filter(w => {
      if (!w.match(line)) return true;
      w.resolve(line);
      return false;
    });
  }

  text() {
    return this.lines.join('\n');
  }

  waitFor(pattern, ms = 10000) {
    const match = typeof pattern === 'function' ? pattern : l => pattern.test(l);
    const what = String(pattern);
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.exit) return Promise.reject(new Error(`process already exited before: ${what}\n${this.text()}`));
    return new Promise((resolve, reject) => {
      const w = { match, resolve, reject, what };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter(x => x !== w);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; output so far:\n${this.text()}`));
      }, ms);
      w.resolve = v => (clearTimeout(timer), resolve(v));
      w.reject = e => (clearTimeout(timer), reject(e));
      this.waiters.push(w);
    });
  }

  // Resolves with {code, signal}; rejects after `ms`.
  waitExit(ms = 10000) {
    let timer;
    return Promise.race([
      this.exited,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process did not exit within ${ms} ms\n${this.text()}`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  kill(signal = 'SIGTERM') {
    if (!this.exit) this.child.kill(signal);
  }

  // SIGTERM, then SIGKILL if it does not exit in `ms`.
  async stop(ms = 15000) {
    if (this.exit) return this.exit;
    this.kill('SIGTERM');
    try {
      return await this.waitExit(ms);
    } catch {
      this.kill('SIGKILL');
      return this.exited;
    }
  }
}

// Starts `bullc-worker --redis URL --prefix P ARGS...` (redis: null leaves
// --redis out).
function startWorker(args, { prefix, redis = redisUrl(), env } = {}) {
  const argv = [];
  if (redis !== null) argv.push('--redis', redis);
  if (prefix) argv.push('--prefix', prefix);
  argv.push(...args);
  return new Proc(workerPath(), argv, { env });
}

// bullc-worker, resolved once it logged its ready line.
async function startReady(args, opts, ms = 10000) {
  const w = startWorker(args, opts);
  await w.waitFor(/\bready\b.*queues=|"event":"ready"/, ms);
  return w;
}

// A Node script as a child process (cwd compat-tests, so require('bullmq') works).
function startNode(code, args = [], { env } = {}) {
  return new Proc(process.execPath, ['-e', code, ...args], { cwd: path.join(__dirname, '..'), env });
}

// A redis-server of a test's own on `port` (127.0.0.1) with its data in
// `dir`: a child of this process, not daemonized, so it cannot outlive the
// test. start() again after kill() restarts it on the same port and data.
class RedisServer {
  constructor(port, dir, args = []) {
    this.port = port;
    this.dir = dir;
    this.args = args;
    this.url = `redis://127.0.0.1:${port}`;
  }

  async start(ms = 10000) {
    this.proc = new Proc('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', ...this.args]);
    await this.proc.waitFor(/Ready to accept connections/, ms);
    return this;
  }

  // SIGKILL, as a crash: resolves once it is gone.
  async kill() {
    if (!this.proc) return;
    this.proc.kill('SIGKILL');
    await this.proc.exited;
    this.proc = null;
  }
}

// Kills (SIGKILL) every process still running and waits for them.
async function killAll() {
  const procs = [...live];
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map(p => p.exited));
}

// Whether process `pid` runs (a zombie nobody reaped yet counts as dead:
// in a container, orphans may wait long for a reaper).
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

// Waits until job `id` of `queue` is completed or failed; the Node Job, read then.
async function finished(queue, id, ms = 15000) {
  await eventually(
    async () => ['completed', 'failed'].includes(await queue.getJobState(id)),
    ms,
    `job ${id} to finish`,
  );
  return Job.fromId(queue, id);
}

// A TCP port free on 127.0.0.1 right now (for a server of a test's own):
// any, or with BULLC_TEST_PORTS=LO-HI the next free one of that range (a
// machine shared by several test runs, each with its range), going round the
// range: a file with many topologies needs more ports than it holds at once.
// Tests that call this take tests/CMakeLists.txt's test_ports lock: they
// would meet in the range if run at once.
const portRange = /^(\d+)-(\d+)$/.exec(process.env.BULLC_TEST_PORTS || '');
let nextPort = portRange ? Number(portRange[1]) : 0;
const listenOn = port =>
  new Promise((resolve, reject) => {
    const s = require('node:net').createServer();
    s.listen(port, '127.0.0.1', () => {
      const got = s.address().port;
      s.close(() => resolve(got));
    });
    s.on('error', reject);
  });
const freePort = async () => {
  if (!portRange) return listenOn(0);
  const [lo, hi] = [Number(portRange[1]), Number(portRange[2])];
  for (let tries = 0; tries <= hi - lo; tries++) {
    const port = nextPort;
    nextPort = port >= hi ? lo : port + 1;
    try {
      return await listenOn(port);
    } catch { /* taken: the next one */ }
  }
  throw new Error(`BULLC_TEST_PORTS ${process.env.BULLC_TEST_PORTS}: no free port left`);
};

// A queue under a fresh prefix with a QueueEvents collecting its 'failed'
// events, and (with `args`) a bullc-worker serving it; the Node handles go
// on `closers`. What the cancellation tests start from.
async function watchedQueue(tag, closers, args) {
  const prefix = uniquePrefix(tag);
  const queue = newQueue('jobs', prefix);
  const events = newQueueEvents('jobs', prefix);
  closers.push(events, queue);
  await events.waitUntilReady();
  const failed = [];
  events.on('failed', e => failed.push(e));
  const w = args && (await startReady(['--queue', 'jobs', '--drain-delay', '1', ...args], { prefix }));
  return { prefix, queue, failed, w };
}

module.exports = {
  freePort,
  Proc,
  RedisServer,
  alive,
  finished,
  killAll,
  pluginPath,
  script,
  startNode,
  startReady,
  startWorker,
  tmpDir,
  watchedQueue,
  workerPath,
};
