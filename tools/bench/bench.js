// SPDX-License-Identifier: MIT
// tools/bench orchestrator: runs Node BullMQ 6.7.0 and bullc on the same
// workloads against one private redis-server, alternating Node, bullc, Node,
// bullc..., and writes the table (stdout, results.md), results.json,
// results.csv, samples.csv and, when gnuplot is installed, chart.png.
// Started by tools/bench/run.sh, which builds the programs and starts Redis;
// see docs/performance.md.
'use strict';

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const IORedis = require('ioredis');
const { Queue } = require('bullmq');

// ---- settings ------------------------------------------------------------------

const argv = process.argv.slice(2);
const opt = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
};
const smoke = argv.includes('--smoke');
const S = {
  smoke,
  rounds: Number(opt('rounds', smoke ? 1 : 3)),
  out: opt('out'),
  bin: opt('bin'),             // bullc's programs (bullc-worker, the example plugin)
  benchBin: opt('bench-bin'),  // bench_add, bench_latency
  redisUrl: process.env.REDIS_URL,
  redisPid: Number(opt('redis-pid', 0)),
  only: (opt('only', '') || '').split(',').filter(Boolean),
  // sizes
  bulkJobs: Number(opt('bulk-jobs', smoke ? 2000 : 50000)),
  singleAdds: Number(opt('single-adds', smoke ? 200 : 5000)),
  busyPollUs: Number(opt('busy-poll-us', 200)),
  procJobs: Number(opt('proc-jobs', smoke ? 200 : 20000)),
  procJobsC1: Number(opt('proc-jobs-c1', smoke ? 200 : 10000)),
  execJobs: Number(opt('exec-jobs', smoke ? 100 : 2000)),
  execpJobs: Number(opt('execp-jobs', smoke ? 100 : 10000)), // --exec-persistent and Node's sandbox
  // the warm rows of those: this many jobs first, untimed (children started, Node's JIT warm)
  execpWarmup: Number(opt('execp-warmup', smoke ? 50 : 5000)),
  latJobs: Number(opt('lat-jobs', smoke ? 100 : 2000)),
  latIntervalUs: Number(opt('lat-interval-us', 3000)),
  concurrencies: (opt('concurrency', '1,8,64')).split(',').map(Number),
  scale: !smoke && !argv.includes('--no-scale'),
  // --only manyq: one worker process serving many idle queues (many_queues.js); not in a default run
  manyqBullc: (opt('manyq-bullc', '1000,5000')).split(',').map(Number),
  manyqNode: (opt('manyq-node', '1000')).split(',').map(Number),
  manyqJobs: Number(opt('manyq-jobs', 300)),
  // --only tls: the same redis-server over TCP and over TLS (run.sh gives it a TLS port and a
  // self-signed certificate: BENCH_TLS_URL, BENCH_TLS_CA); not in a default run
  tlsJobs: Number(opt('tls-jobs', smoke ? 200 : 20000)),
  // --only cluster: 6 queues on a Redis Cluster of three masters (run.sh starts it: BENCH_CLUSTER_URL,
  // BENCH_CLUSTER_PORTS) and on the one redis-server; not in a default run
  clusterJobs: Number(opt('cluster-jobs', smoke ? 600 : 12000)),
  redisNice: Number(opt('redis-nice', 0)),
};
const nodeSide = path.join(__dirname, 'node_side.js');
let manyQueues; // many_queues.js, made once the helpers below exist
const named = ['manyq', 'tls', 'cluster']; // sections run only when --only names them
const want = w => (named.includes(w) ? S.only.includes(w) : !S.only.length || S.only.includes(w));
// The environment of a program of the tls section: REDIS_URL and REDIS_TLS_CA (read by bullc's
// bullc_redis_opts_from_env and by node_side.js) for TLS, the plain URL for TCP.
const tlsEnv = tls => (tls ? { ...process.env, REDIS_URL: process.env.BENCH_TLS_URL, REDIS_TLS_CA: process.env.BENCH_TLS_CA }
  : process.env);

const sleep = ms => new Promise(r => setTimeout(r, ms));
const log = (...a) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`);
const R = new IORedis(S.redisUrl, { maxRetriesPerRequest: null, lazyConnect: Boolean(opt('render')) });

// ---- processes -----------------------------------------------------------------

const live = new Set();
class Proc {
  constructor(file, args, { stderrFile, env } = {}) {
    this.cmd = [file, ...args].join(' ');
    this.out = '';
    this.err = '';
    const errFd = stderrFile ? fs.openSync(stderrFile, 'a') : 'pipe';
    this.child = spawn(file, args.map(String), { stdio: ['ignore', 'pipe', errFd], env: env || process.env });
    if (stderrFile) fs.closeSync(errFd);
    this.pid = this.child.pid;
    live.add(this);
    this.lineWaiters = [];
    this.child.stdout.on('data', d => {
      this.out += d;
      for (const w of this.lineWaiters) if (this.lines().some(w.pred)) w.resolve();
    });
    if (this.child.stderr) this.child.stderr.on('data', d => { this.err += d; });
    let ended = false;
    this.child.stdout.on('end', () => { ended = true; });
    this.exited = new Promise(resolve => {
      this.child.on('exit', (code, signal) => {
        // 'exit' can come before the last of stdout is read (the JSON line): wait for its end,
        // for 2 s at most (a grandchild may hold the pipe)
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          live.delete(this);
          this.exit = { code, signal };
          for (const w of this.lineWaiters) w.reject(new Error(`${this.cmd} exited (${code ?? signal}): ${this.err.slice(-2000)}`));
          resolve(this.exit);
        };
        if (ended) return finish();
        const t = setTimeout(finish, 2000);
        this.child.stdout.once('end', () => { clearTimeout(t); finish(); });
      });
    });
  }
  lines() { return this.out.split('\n').filter(Boolean); }
  json() {
    const l = this.lines().reverse().find(x => x.startsWith('{'));
    if (!l) throw new Error(`${this.cmd}: no JSON output (exit ${JSON.stringify(this.exit)}): ${this.err.slice(-2000)}`);
    return JSON.parse(l);
  }
  waitLine(pred, ms = 20000) {
    if (this.lines().some(pred)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.cmd}: timed out waiting for a line`)), ms);
      this.lineWaiters.push({ pred, resolve: () => { clearTimeout(t); resolve(); }, reject: e => { clearTimeout(t); reject(e); } });
    });
  }
  async done(ms = 600000) {
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const e = await this.exited;
    clearTimeout(t);
    if (e.code !== 0) throw new Error(`${this.cmd} failed (${e.code ?? e.signal}): ${this.err.slice(-2000)}`);
    return this;
  }
  async stop(ms = 15000) {
    if (this.exit) return this.exit;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    const e = await this.exited;
    clearTimeout(t);
    return e;
  }
}
async function run(file, args, opts) {
  return (await new Proc(file, args, opts).done()).json();
}

// /proc readings of a process: VmHWM / VmRSS in KiB, CPU seconds (self + reaped children).
function vm(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = k => Number((s.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
  return { hwm: get('VmHWM'), rss: get('VmRSS'), threads: get('Threads') };
}
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString()) || 100;
function cpuSec(pid) {
  // every live thread's run time (schedstat, ns) + reaped children's (exec'd commands)
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* gone */ }
  }
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return ns / 1e9 + (Number(f[13]) + Number(f[14])) / TICK; // cutime + cstime
}

// cpuSec of a process and its live descendants (--exec-persistent's children, Node's sandboxes).
function treeCpuSec(pid) {
  let sec = 0;
  try {
    sec = cpuSec(pid);
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      let kids = '';
      try { kids = fs.readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8'); } catch { /* gone */ }
      for (const k of kids.split(' ').filter(Boolean)) sec += treeCpuSec(Number(k));
    }
  } catch { /* gone */ }
  return sec;
}

// Time a process's threads spent runnable but waiting for a CPU (schedstat
// field 2, ns), in seconds: how much the other load on the machine delayed it.
function waitSec(pid) {
  let ns = 0;
  try {
    for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
      try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[1]); } catch { /* gone */ }
    }
  } catch { return 0; }
  return ns / 1e9;
}

// ---- Redis readings --------------------------------------------------------------

function parseInfo(text) {
  const o = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) o[line.slice(0, i)] = line.slice(i + 1);
  }
  return o;
}
async function redisCpu() {
  const i = parseInfo(await R.info('cpu'));
  const main = i.used_cpu_sys_main_thread !== undefined;
  return main ? Number(i.used_cpu_sys_main_thread) + Number(i.used_cpu_user_main_thread)
              : Number(i.used_cpu_sys) + Number(i.used_cpu_user);
}
async function netStats() {
  const i = parseInfo(await R.info('stats'));
  return { reads: Number(i.total_reads_processed || 0), writes: Number(i.total_writes_processed || 0) };
}
async function commandStats() {
  const i = parseInfo(await R.info('commandstats'));
  const o = {};
  for (const [k, v] of Object.entries(i)) {
    if (!k.startsWith('cmdstat_')) continue;
    const f = Object.fromEntries(v.split(',').map(x => x.split('=')));
    o[k.slice(8)] = { calls: Number(f.calls), usec: Number(f.usec) };
  }
  return o;
}
async function blockedClients() {
  const list = await R.client('LIST');
  return list.split('\n').filter(l => / flags=\S*b/.test(l)).length;
}
async function waitBlocked(n, procs = [], ms = 30000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await blockedClients()) >= n) return;
    const gone = procs.find(p => p.exit);
    if (gone) throw new Error(`${gone.cmd} exited (${gone.exit.code ?? gone.exit.signal}) before it was ready; see the logs/ file`);
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${n} blocked worker connection(s)`);
}

// ---- workloads -------------------------------------------------------------------

let pollCount = 0;
const samples = []; // {round, workload, side, variant, c, key, value}
function record(round, workload, side, variant, c, obj) {
  for (const [key, value] of Object.entries(obj))
    if (typeof value === 'number') samples.push({ round, workload, side, variant, c, key, value });
}

async function fresh() {
  await R.flushall();
}

async function bulkAdd(round, side, { env, workload = 'bulk', variant = 'add' } = {}) {
  await fresh();
  const q = `bench-bulk-${side}`;
  const cpu0 = await redisCpu();
  const r = side === 'node'
    ? await run('node', [nodeSide, 'bulk', '--queue', q, '--count', S.bulkJobs, '--batch', 1000], { env })
    : await run(path.join(S.benchBin, 'bench_add'), ['--queue', q, '--mode', 'bulk', '--count', S.bulkJobs, '--batch', 1000], { env });
  const cpu1 = await redisCpu();
  r.redis_cpu_us_per_job = ((cpu1 - cpu0) * 1e6) / (S.bulkJobs + 10);
  r.redis_util = (cpu1 - cpu0) / r.seconds;
  record(round, workload, side, variant, 0, r);
  log(`bulk add ${side}${env ? ` (${workload})` : ''}: ${r.jobs_per_s.toFixed(0)} jobs/s, Redis ${r.redis_cpu_us_per_job.toFixed(1)} µs/job`);
}

// busyPoll: bullc only, bullc_redis_opts_set_busy_poll (spin for each reply)
async function singleAdd(round, side, mode = 'single', busyPoll = 0) {
  await fresh();
  const q = `bench-single-${side}`;
  const bp = busyPoll ? ['--busy-poll', busyPoll] : [];
  const r = side === 'node'
    ? await run('node', [nodeSide, mode, '--queue', q, '--count', S.singleAdds])
    : await run(path.join(S.benchBin, 'bench_add'), ['--queue', q, '--mode', mode, '--count', S.singleAdds, ...bp]);
  record(round, 'single', side, (mode === 'ping' ? 'ping' : 'add') + (busyPoll ? '-bp' : ''), 0, r);
  log(`${mode === 'ping' ? 'PING' : 'single add'} ${side}${busyPoll ? ` (busy poll ${busyPoll} µs)` : ''}: ` +
    `p50 ${r.p50_us.toFixed(0)} µs, p99 ${r.p99_us.toFixed(0)} µs`);
}

// The observability variants' other side: an HTTP server on a free port
// that answers every request 200 and counts OTLP spans (noop-otel's
// receiver), or the port --http serves on (noop-http, scraped each second).
async function sideServer() {
  let spans = 0;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', d => (body += d));
    req.on('end', () => {
      spans += (body.match(/"spanId"/g) || []).length;
      res.end('{}');
    });
  });
  await new Promise(r => srv.listen(0, '127.0.0.1', r));
  return { port: srv.address().port, spans: () => spans, close: () => new Promise(r => srv.close(r)) };
}
async function freePort() {
  const s = await sideServer();
  await s.close();
  return s.port;
}

// A worker process (or several) of a processing variant.
function startWorker(side, variant, c, queues, stderrFile, { args: extra = [], env } = {}) {
  if (side === 'node') {
    const sandbox = variant === 'sandbox' ? ['--processor', path.join(__dirname, 'sandbox_noop.js')] : [];
    return new Proc('node', [nodeSide, 'worker', '--queue', queues[0], '--concurrency', c, ...sandbox], { stderrFile, env });
  }
  const args = [...extra];
  for (const q of queues) args.push('--queue', q);
  args.push('--concurrency', c, '--log-level', variant === 'noop-loginfo' ? 'info' : 'warn');
  if (variant === 'noop-bp') args.push('--busy-poll', S.busyPollUs);
  if (['noop', 'noop-loginfo', 'noop-bp', 'noop-http', 'noop-otel'].includes(variant)) args.push('--builtin', 'noop');
  else if (variant === 'plugin') args.push('--plugin', path.join(S.bin, 'libbullc_example_plugin.so'));
  else if (variant === 'exec') args.push('--exec', '/bin/true');
  else if (variant.startsWith('execp-py')) args.push('--exec-persistent', 'python3', '--arg', path.join(__dirname, 'execp_noop.py'));
  else if (variant.startsWith('execp-sh')) args.push('--exec-persistent', '/bin/sh', '--arg', path.join(__dirname, 'execp_noop.sh'));
  else throw new Error(`unknown variant ${variant}`);
  if (variant.endsWith('-pool')) args.push('--exec-children', '2'); // shared children (--exec-children)
  return new Proc(path.join(S.bin, 'bullc-worker'), args, { stderrFile, env });
}

// Jobs added while the queue(s) are paused, then timed from resume until
// wait, paused, prioritized and active are all empty.
// warmup: that many jobs are processed first, untimed, by the same worker
// processes; the figures are then recorded as variant NAME-warm.
async function processing(round, side, variant, c, n, { queues = ['bench-proc'], procs = 1, workload = 'proc', env, warmup = 0 } = {}) {
  await fresh();
  const Q = queues.map(name => new Queue(name, { connection: R }));
  for (const q of Q) await q.pause();
  const fill = async count => {
    for (const name of queues)
      await run(path.join(S.benchBin, 'bench_add'), ['--queue', name, '--mode', 'fill', '--count', Math.ceil(count / queues.length)]);
  };
  await fill(warmup || n);
  const total = Math.ceil(n / queues.length) * queues.length;
  const keys = [];
  for (const name of queues) for (const k of ['wait', 'paused', 'active']) keys.push(['llen', `bull:${name}:${k}`]);
  for (const name of queues) keys.push(['zcard', `bull:${name}:prioritized`]);
  const drained = async count => {
    const deadline = Date.now() + Math.max(120000, count * 20);
    for (;;) {
      const res = await R.pipeline(keys).exec();
      pollCount++;
      if (res.every(([e, v]) => !e && v === 0)) return;
      if (Date.now() > deadline) throw new Error(`processing did not finish: ${JSON.stringify(res.map(x => x[1]))}`);
      await sleep(5);
    }
  };
  const recorded = warmup ? `${variant}-warm` : variant; // the variant its figures are recorded as
  const errFile = path.join(S.out, 'logs', `${workload}-${side}-${recorded}-c${c}-r${round}.log`);
  const blocked0 = await blockedClients();
  const W = [];
  // noop-http: --http scraped every second; noop-otel: every job traced,
  // exported (default batching) to a receiver on this machine
  const extra = { env };
  let receiver = null, scraper = null;
  if (variant === 'noop-http') extra.args = ['--http', `127.0.0.1:${await freePort()}`];
  if (variant === 'noop-otel') {
    receiver = await sideServer();
    extra.env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}` };
  }
  for (let p = 0; p < procs; p++) W.push(startWorker(side, variant, c, queues, errFile, extra));
  if (variant === 'noop-http')
    scraper = setInterval(() => fetch(`http://${extra.args[1]}/metrics`).then(r => r.text()).catch(() => {}), 1000);
  try {
    await waitBlocked(blocked0 + procs * (side === 'node' ? 1 : queues.length), W);
    if (warmup) {
      for (const q of Q) await q.resume();
      await drained(warmup);
      for (const q of Q) await q.pause();
      await fill(n);
    }
    await sleep(500); // settle: every connection open, nothing to do
    const idle = W.map(w => vm(w.pid));
    const wcpu0 = W.reduce((a, w) => a + cpuSec(w.pid), 0);
    const tcpu0 = W.reduce((a, w) => a + treeCpuSec(w.pid), 0);
    const wwait0 = W.reduce((a, w) => a + waitSec(w.pid), 0), rwait0 = waitSec(S.redisPid);
    await R.config('RESETSTAT');
    const cpu0 = await redisCpu();
    const t0 = process.hrtime.bigint();
    for (const q of Q) await q.resume();
    const polls0 = pollCount;
    await drained(n);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu1 = await redisCpu();
    const peak = W.map(w => vm(w.pid));
    const wcpu1 = W.reduce((a, w) => a + cpuSec(w.pid), 0);
    const tcpu1 = W.reduce((a, w) => a + treeCpuSec(w.pid), 0);
    const wwait1 = W.reduce((a, w) => a + waitSec(w.pid), 0), rwait1 = waitSec(S.redisPid);
    const cs = await commandStats();
    const net = await netStats(); // after RESETSTAT: since the resume
    const orchestratorReads = 4 + (pollCount - polls0) + 3; // resume, polls, readings
    let failed = 0;
    for (const name of queues) failed += await R.zcard(`bull:${name}:failed`);
    if (failed) throw new Error(`${failed} jobs failed (${side} ${variant} c${c})`);
    // commandstats counts the commands a script calls too: the client's own
    // round trips are the top-level ones (EVALSHA/EVAL, BZPOPMIN, MULTI/EXEC).
    const top = ['evalsha', 'eval', 'evalsha_ro', 'bzpopmin', 'exec'];
    let calls = 0, rt = 0, topUsec = 0;
    const perCmd = {};
    for (const [k, v] of Object.entries(cs)) {
      // the orchestrator's own commands (poller, readings); not the workers'
      if (['info', 'config', 'config|resetstat', 'llen', 'zcard', 'client', 'client|list', 'ping'].includes(k)) continue;
      perCmd[k] = v.calls / total;
      calls += v.calls;
      if (top.includes(k)) { rt += v.calls; topUsec += v.usec; }
    }
    const scriptUsec = ((cs.evalsha?.usec || 0) + (cs.eval?.usec || 0)) / total;
    const r = {
      jobs: total,
      seconds,
      jobs_per_s: total / seconds,
      redis_cpu_us_per_job: ((cpu1 - cpu0) * 1e6) / total,
      redis_util: (cpu1 - cpu0) / seconds,
      redis_cmds_per_job: calls / total,
      round_trips_per_job: rt / total,
      evalsha_per_job: (cs.evalsha?.calls || 0) / total,
      bzpopmin_per_job: (cs.bzpopmin?.calls || 0) / total,
      script_usec_per_job: scriptUsec,
      redis_overhead_us_per_job: ((cpu1 - cpu0) * 1e6 - topUsec) / total,
      evalsha_usec_per_call: cs.evalsha ? cs.evalsha.usec / cs.evalsha.calls : 0,
      // commands per socket read Redis did for the workers: how much they pipeline
      requests_per_read: rt / Math.max(1, net.reads - orchestratorReads),
      worker_cpu_us_per_job: ((wcpu1 - wcpu0) * 1e6) / total,
      worker_cpu_util: (wcpu1 - wcpu0) / seconds,
      // with the worker's live children (--exec-persistent's, Node's sandboxes)
      tree_cpu_us_per_job: ((tcpu1 - tcpu0) * 1e6) / total,
      worker_cpu_wait: (wwait1 - wwait0) / seconds,  // runnable, waiting for a CPU
      redis_cpu_wait: (rwait1 - rwait0) / seconds,
      rss_idle_mib: idle.reduce((a, v) => a + v.hwm, 0) / 1024,
      rss_peak_mib: peak.reduce((a, v) => a + v.hwm, 0) / 1024,
      threads: peak.reduce((a, v) => a + v.threads, 0),
    };
    record(round, workload, side, recorded, c, r);
    const detail = samples.detail || (samples.detail = []);
    detail.push({ round, workload, side, variant: recorded, c, perCmd });
    log(`${workload} ${side} ${recorded} c${c}${procs > 1 ? ` x${procs}` : ''}${queues.length > 1 ? ` ${queues.length} queues` : ''}: ` +
        `${r.jobs_per_s.toFixed(0)} jobs/s, Redis ${(r.redis_util * 100).toFixed(0)}% busy, ` +
        `${r.redis_cpu_us_per_job.toFixed(1)} µs/job, worker ${r.worker_cpu_us_per_job.toFixed(1)} µs/job, ` +
        `RSS ${r.rss_idle_mib.toFixed(1)}/${r.rss_peak_mib.toFixed(1)} MiB, ` +
        `waited for a CPU: worker ${(r.worker_cpu_wait * 100).toFixed(0)}%, Redis ${(r.redis_cpu_wait * 100).toFixed(0)}% of the time`);
  } finally {
    if (scraper) clearInterval(scraper);
    for (const w of W) await w.stop();
    if (receiver) {
      log(`${variant}: ${receiver.spans()} spans received`);
      await receiver.close();
    }
    for (const q of Q) await q.close();
  }
}

async function latency(round, side) {
  await fresh();
  const q = `bench-lat-${side}`;
  const skip = 10;
  const errFile = path.join(S.out, 'logs', `latency-${side}-r${round}.log`);
  const blocked0 = await blockedClients();
  const w = side === 'node'
    ? new Proc('node', [nodeSide, 'latency', '--queue', q, '--count', S.latJobs, '--skip', skip], { stderrFile: errFile })
    : new Proc(path.join(S.benchBin, 'bench_latency'), ['--queue', q, '--count', S.latJobs, '--skip', skip], { stderrFile: errFile });
  try {
    await w.waitLine(l => l.includes('"ready"'));
    await waitBlocked(blocked0 + 1, [w]);
    await sleep(300);
    const args = ['--queue', q, '--count', S.latJobs + skip, '--interval-us', S.latIntervalUs];
    if (side === 'node') await run('node', [nodeSide, 'paced', ...args]);
    else await run(path.join(S.benchBin, 'bench_add'), ['--mode', 'paced', ...args]);
    await w.done(60000);
    const r = w.json();
    record(round, 'latency', side, 'noop', 1, r);
    log(`add->start ${side}: p50 ${r.p50_us.toFixed(0)} µs, p99 ${r.p99_us.toFixed(0)} µs`);
  } finally {
    await w.stop();
  }
}

// ---- --only cluster ---------------------------------------------------------------

// The same six queues on the one redis-server and on the cluster: hash-tagged names, two on each
// master (a queue lives on its tag's slot). Bulk add: a producer process per queue, all at once;
// processing: one bullc-worker process serving the six (c16 each) against a Node process per queue
// (a Node Worker serves one queue), as the scaling rows do.
const CLUSTER_CONC = 16;
let clTargets = null;
async function clusterTargets() {
  if (clTargets) return clTargets;
  const ports = (process.env.BENCH_CLUSTER_PORTS || '').split(',').filter(Boolean).map(Number);
  if (ports.length !== 3) throw new Error('no cluster: run.sh --only cluster starts one (BENCH_CLUSTER_PORTS)');
  const nodes = ports.map(port => new IORedis({ host: '127.0.0.1', port, maxRetriesPerRequest: null }));
  const conn = new IORedis.Cluster(ports.map(port => ({ host: '127.0.0.1', port })),
    { redisOptions: { maxRetriesPerRequest: null } });
  // which master serves a slot, then two names per master
  const owner = [];
  for (const [from, to, [, port]] of await nodes[0].cluster('SLOTS')) owner.push([from, to, port]);
  const per = new Map(ports.map(p => [p, []]));
  for (let i = 0; [...per.values()].some(v => v.length < 2); i++) {
    const name = `bench-{c${i}}`;
    const slot = await nodes[0].cluster('KEYSLOT', `bull:${name}:wait`);
    const port = owner.find(([a, b]) => slot >= a && slot <= b)[2];
    if (per.get(port).length < 2) per.get(port).push(name);
  }
  const names = [...per.values()].flat();
  log(`cluster queues: ${[...per].map(([p, n]) => `${n.join(' ')} on ${p}`).join(', ')}`);
  clTargets = {
    names,
    single: { where: 'single', env: process.env, clients: [R], conn: R, pids: [S.redisPid] },
    cluster: { where: 'cluster', env: { ...process.env, REDIS_URL: process.env.BENCH_CLUSTER_URL }, clients: nodes, conn },
    close() { conn.disconnect(); for (const n of nodes) n.disconnect(); },
  };
  return clTargets;
}
async function sumOver(t, fn) {
  let n = 0;
  for (const c of t.clients) n += await fn(c);
  return n;
}
const nodeCpu = async c => {
  const i = parseInfo(await c.info('cpu'));
  return Number(i.used_cpu_sys_main_thread ?? i.used_cpu_sys) + Number(i.used_cpu_user_main_thread ?? i.used_cpu_user);
};
const nodeBlocked = async c => (await c.client('LIST')).split('\n').filter(l => / flags=\S*b/.test(l)).length;

async function clusterBulk(round, side, t, names) {
  for (const c of t.clients) await c.flushall();
  const per = Math.ceil(S.clusterJobs / names.length);
  const cpu0 = await sumOver(t, nodeCpu);
  const P = names.map(q => (side === 'node'
    ? new Proc('node', [nodeSide, 'bulk', '--queue', q, '--count', per, '--batch', 1000], { env: t.env })
    : new Proc(path.join(S.benchBin, 'bench_add'), ['--queue', q, '--mode', 'bulk', '--count', per, '--batch', 1000],
      { env: t.env })));
  const rs = [];
  for (const p of P) rs.push((await p.done()).json());
  const cpu1 = await sumOver(t, nodeCpu);
  // the producers overlap (each times its own adds, not its start): their rates add up
  const r = { jobs_per_s: rs.reduce((a, x) => a + x.jobs_per_s, 0), redis_cpu_us_per_job: ((cpu1 - cpu0) * 1e6) / (per * names.length) };
  record(round, `cl-${t.where}`, side, 'bulk', 0, r);
  log(`cluster bench, ${t.where} Redis: bulk add ${side}: ${r.jobs_per_s.toFixed(0)} jobs/s, Redis ${r.redis_cpu_us_per_job.toFixed(1)} µs/job`);
}

async function clusterProc(round, side, t, names) {
  for (const c of t.clients) await c.flushall();
  const Q = names.map(name => new Queue(name, { connection: t.conn }));
  const W = [];
  try {
    for (const q of Q) await q.pause();
    const per = Math.ceil(S.clusterJobs / names.length), total = per * names.length;
    for (const name of names)
      await run(path.join(S.benchBin, 'bench_add'), ['--queue', name, '--mode', 'fill', '--count', per], { env: t.env });
    const blocked0 = await sumOver(t, nodeBlocked);
    const errFile = path.join(S.out, 'logs', `cluster-${t.where}-${side}-r${round}.log`);
    if (side === 'node')
      for (const name of names)
        W.push(new Proc('node', [nodeSide, 'worker', '--queue', name, '--concurrency', CLUSTER_CONC], { stderrFile: errFile, env: t.env }));
    else
      W.push(new Proc(path.join(S.bin, 'bullc-worker'), [...names.flatMap(n => ['--queue', n]), '--concurrency', CLUSTER_CONC,
        '--builtin', 'noop', '--log-level', 'warn'], { stderrFile: errFile, env: t.env }));
    for (let end = Date.now() + 30000; (await sumOver(t, nodeBlocked)) < blocked0 + names.length;) {
      const gone = W.find(w => w.exit);
      if (gone) throw new Error(`${gone.cmd} exited (${gone.exit.code ?? gone.exit.signal}); see ${errFile}`);
      if (Date.now() > end) throw new Error('timed out waiting for the workers to block');
      await sleep(20);
    }
    await sleep(500);
    const cpu0 = await sumOver(t, nodeCpu);
    const wcpu0 = W.reduce((a, w) => a + cpuSec(w.pid), 0);
    const t0 = process.hrtime.bigint();
    for (const q of Q) await q.resume();
    // a queue's keys share its slot: one pipeline per queue (a cluster pipeline stays on one node)
    const left = name => t.conn.pipeline(['wait', 'paused', 'active'].map(k => ['llen', `bull:${name}:${k}`])).exec();
    for (const deadline = Date.now() + Math.max(120000, total * 20); ;) {
      const res = (await Promise.all(names.map(left))).flat();
      if (res.every(([e, v]) => !e && v === 0)) break;
      if (Date.now() > deadline) throw new Error(`processing did not finish: ${JSON.stringify(res.map(x => x[1]))}`);
      await sleep(5);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu1 = await sumOver(t, nodeCpu);
    const wcpu1 = W.reduce((a, w) => a + cpuSec(w.pid), 0);
    let failed = 0;
    for (const name of names) failed += await t.conn.zcard(`bull:${name}:failed`);
    if (failed) throw new Error(`${failed} jobs failed (cluster ${t.where} ${side})`);
    const r = { jobs_per_s: total / seconds, redis_cpu_us_per_job: ((cpu1 - cpu0) * 1e6) / total,
      worker_cpu_us_per_job: ((wcpu1 - wcpu0) * 1e6) / total };
    record(round, `cl-${t.where}`, side, 'noop', CLUSTER_CONC, r);
    log(`cluster bench, ${t.where} Redis: processing ${side} 6 queues c${CLUSTER_CONC}: ${r.jobs_per_s.toFixed(0)} jobs/s, ` +
      `Redis ${r.redis_cpu_us_per_job.toFixed(1)} µs/job (all masters), worker ${r.worker_cpu_us_per_job.toFixed(1)} µs/job`);
  } finally {
    for (const w of W) await w.stop();
    for (const q of Q) await q.close();
  }
}

// ---- summary ---------------------------------------------------------------------

const median = v => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
function stat(workload, side, variant, c, key) {
  const v = samples.filter(s => s.workload === workload && s.side === side && s.variant === variant && s.c === c && s.key === key)
    .map(s => s.value);
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length, values: v };
}

function buildRows() {
  const rows = [];
  const row = (metric, unit, better, nodeSel, bullcSel, target) => {
    const n = nodeSel ? stat(...nodeSel) : null;
    const b = bullcSel ? stat(...bullcSel) : null;
    // the median of per-round ratios: Node and bullc ran back to back in a
    // round, under about the same load from the rest of the machine
    let ratio = null;
    if (n && b) {
      const per = [];
      for (let r = 1; r <= S.rounds; r++) {
        const nv = samples.find(x => x.round === r && x.workload === nodeSel[0] && x.side === nodeSel[1] && x.variant === nodeSel[2] && x.c === nodeSel[3] && x.key === nodeSel[4]);
        const bv = samples.find(x => x.round === r && x.workload === bullcSel[0] && x.side === bullcSel[1] && x.variant === bullcSel[2] && x.c === bullcSel[3] && x.key === bullcSel[4]);
        if (nv && bv && nv.value) per.push(bv.value / nv.value);
      }
      ratio = per.length ? median(per) : n.median ? b.median / n.median : null;
    }
    let met = null;
    if (target && b) met = target.check(b.median, ratio);
    rows.push({ metric, unit, better, node: n, bullc: b, ratio, ratio_of_medians: n && b && n.median ? b.median / n.median : null,
      target: target ? target.text : '', met });
  };
  const ratioAtLeast = (x, extra) => ({ text: `≥ ${x}× Node${extra ? extra.text : ''}`, check: (v, r) => r !== null && r >= x && (!extra || extra.check()) });
  const atMost = (x, unit) => ({ text: `≤ ${x} ${unit}`, check: v => v <= x });

  row('bulk add (batches of 1,000)', 'jobs/s', 'higher', ['bulk', 'node', 'add', 0, 'jobs_per_s'], ['bulk', 'bullc', 'add', 0, 'jobs_per_s'], ratioAtLeast(2));
  row('bulk add: Redis CPU per job', 'µs', 'lower', ['bulk', 'node', 'add', 0, 'redis_cpu_us_per_job'], ['bulk', 'bullc', 'add', 0, 'redis_cpu_us_per_job']);
  row('PING round trip p50 (the floor)', 'µs', 'lower', ['single', 'node', 'ping', 0, 'p50_us'], ['single', 'bullc', 'ping', 0, 'p50_us']);
  row('PING round trip p99', 'µs', 'lower', ['single', 'node', 'ping', 0, 'p99_us'], ['single', 'bullc', 'ping', 0, 'p99_us']);
  row('single add p50', 'µs', 'lower', ['single', 'node', 'add', 0, 'p50_us'], ['single', 'bullc', 'add', 0, 'p50_us']);
  row('single add p99', 'µs', 'lower', ['single', 'node', 'add', 0, 'p99_us'], ['single', 'bullc', 'add', 0, 'p99_us'], atMost(100, 'µs'));
  const bpNote = `bullc busy poll ${S.busyPollUs} µs`;
  row(`PING round trip p50, ${bpNote}`, 'µs', 'lower', ['single', 'node', 'ping', 0, 'p50_us'], ['single', 'bullc', 'ping-bp', 0, 'p50_us']);
  row(`PING round trip p99, ${bpNote}`, 'µs', 'lower', ['single', 'node', 'ping', 0, 'p99_us'], ['single', 'bullc', 'ping-bp', 0, 'p99_us']);
  row(`single add p50, ${bpNote}`, 'µs', 'lower', ['single', 'node', 'add', 0, 'p50_us'], ['single', 'bullc', 'add-bp', 0, 'p50_us']);
  row(`single add p99, ${bpNote}`, 'µs', 'lower', ['single', 'node', 'add', 0, 'p99_us'], ['single', 'bullc', 'add-bp', 0, 'p99_us'], atMost(100, 'µs'));
  const busy = { text: ', Redis ≥ 95% busy', check: () => { const u = stat('proc', 'bullc', 'noop', 64, 'redis_util'); return u && u.median >= 0.95; } };
  for (const c of S.concurrencies) {
    const t = c === 64 ? ratioAtLeast(1.4, busy) : c === 1 ? ratioAtLeast(2) : null;
    row(`processing noop c${c}`, 'jobs/s', 'higher', ['proc', 'node', 'noop', c, 'jobs_per_s'], ['proc', 'bullc', 'noop', c, 'jobs_per_s'], t);
  }
  for (const c of S.concurrencies)
    row(`processing bullc --plugin c${c} (vs Node noop)`, 'jobs/s', 'higher', ['proc', 'node', 'noop', c, 'jobs_per_s'], ['proc', 'bullc', 'plugin', c, 'jobs_per_s']);
  for (const c of S.concurrencies.filter(c => c > 1))
    row(`processing bullc --exec /bin/true c${c} (vs Node noop)`, 'jobs/s', 'higher', ['proc', 'node', 'noop', c, 'jobs_per_s'], ['proc', 'bullc', 'exec', c, 'jobs_per_s']);
  if (S.concurrencies.includes(8)) {
    const sandbox = ['proc', 'node', 'sandbox', 8, 'jobs_per_s'];
    const pool = '2 shared children (--exec-children 2)';
    row('processing c8: --exec-persistent, Python helper (vs Node sandboxed child processes)', 'jobs/s', 'higher', sandbox, ['proc', 'bullc', 'execp-py', 8, 'jobs_per_s']);
    row(`processing c8: --exec-persistent, Python helper, ${pool} (vs Node sandboxed child processes)`, 'jobs/s', 'higher', sandbox, ['proc', 'bullc', 'execp-py-pool', 8, 'jobs_per_s'], ratioAtLeast(3));
    row('processing c8: --exec-persistent, POSIX sh helper (vs Node sandboxed child processes)', 'jobs/s', 'higher', sandbox, ['proc', 'bullc', 'execp-sh', 8, 'jobs_per_s'], ratioAtLeast(1));
    row(`processing c8: --exec-persistent, POSIX sh helper, ${pool} (vs Node sandboxed child processes)`, 'jobs/s', 'higher', sandbox, ['proc', 'bullc', 'execp-sh-pool', 8, 'jobs_per_s']);
    const warm = ['proc', 'node', 'sandbox-warm', 8, 'jobs_per_s'];
    row('processing c8, children already running: --exec-persistent, Python helper (vs Node sandbox, the same)', 'jobs/s', 'higher', warm, ['proc', 'bullc', 'execp-py-warm', 8, 'jobs_per_s']);
    row(`processing c8, children already running: --exec-persistent, Python helper, ${pool} (vs Node sandbox, the same)`, 'jobs/s', 'higher', warm, ['proc', 'bullc', 'execp-py-pool-warm', 8, 'jobs_per_s']);
    row('processing c8, children already running: --exec-persistent, POSIX sh helper (vs Node sandbox, the same)', 'jobs/s', 'higher', warm, ['proc', 'bullc', 'execp-sh-warm', 8, 'jobs_per_s']);
    row(`processing c8, children already running: --exec-persistent, POSIX sh helper, ${pool} (vs Node sandbox, the same)`, 'jobs/s', 'higher', warm, ['proc', 'bullc', 'execp-sh-pool-warm', 8, 'jobs_per_s']);
    row('processing c8, children already running: worker and children CPU per job, Python helper (vs Node sandbox, the same)', 'µs', 'lower', ['proc', 'node', 'sandbox-warm', 8, 'tree_cpu_us_per_job'], ['proc', 'bullc', 'execp-py-warm', 8, 'tree_cpu_us_per_job']);
    row(`processing c8, children already running: worker and children CPU per job, Python helper, ${pool} (vs Node sandbox, the same)`, 'µs', 'lower', ['proc', 'node', 'sandbox-warm', 8, 'tree_cpu_us_per_job'], ['proc', 'bullc', 'execp-py-pool-warm', 8, 'tree_cpu_us_per_job']);
    row('processing c8, children already running: Redis CPU per job, Python helper (vs Node sandbox, the same)', 'µs', 'lower', ['proc', 'node', 'sandbox-warm', 8, 'redis_cpu_us_per_job'], ['proc', 'bullc', 'execp-py-warm', 8, 'redis_cpu_us_per_job']);
  }
  if (S.concurrencies.includes(1)) {
    const bp = `bullc-worker --busy-poll ${S.busyPollUs}`;
    row(`processing noop c1, ${bp}`, 'jobs/s', 'higher', ['proc', 'node', 'noop', 1, 'jobs_per_s'], ['proc', 'bullc', 'noop-bp', 1, 'jobs_per_s'], ratioAtLeast(2));
    row(`worker CPU per job c1, ${bp}`, 'µs', 'lower', ['proc', 'node', 'noop', 1, 'worker_cpu_us_per_job'], ['proc', 'bullc', 'noop-bp', 1, 'worker_cpu_us_per_job']);
    row(`Redis busy during processing c1, ${bp}`, '%', 'higher', ['proc', 'node', 'noop', 1, 'redis_util'], ['proc', 'bullc', 'noop-bp', 1, 'redis_util']);
  }
  row('processing noop c64, bullc-worker --log-level info', 'jobs/s', 'higher', ['proc', 'node', 'noop', 64, 'jobs_per_s'], ['proc', 'bullc', 'noop-loginfo', 64, 'jobs_per_s']);
  row('processing noop c64, bullc-worker --http scraped every second', 'jobs/s', 'higher', ['proc', 'node', 'noop', 64, 'jobs_per_s'], ['proc', 'bullc', 'noop-http', 64, 'jobs_per_s']);
  row('processing noop c64, bullc-worker tracing every job (OTLP)', 'jobs/s', 'higher', ['proc', 'node', 'noop', 64, 'jobs_per_s'], ['proc', 'bullc', 'noop-otel', 64, 'jobs_per_s']);
  row('worker CPU per job c64, bullc-worker --http scraped every second', 'µs', 'lower', ['proc', 'node', 'noop', 64, 'worker_cpu_us_per_job'], ['proc', 'bullc', 'noop-http', 64, 'worker_cpu_us_per_job']);
  row('worker CPU per job c64, tracing every job (OTLP)', 'µs', 'lower', ['proc', 'node', 'noop', 64, 'worker_cpu_us_per_job'], ['proc', 'bullc', 'noop-otel', 64, 'worker_cpu_us_per_job']);
  for (const c of S.concurrencies) {
    row(`Redis busy during processing c${c}`, '%', 'higher', ['proc', 'node', 'noop', c, 'redis_util'], ['proc', 'bullc', 'noop', c, 'redis_util']);
  }
  for (const c of S.concurrencies)
    row(`Redis waiting for a CPU (other load) c${c}`, '%', 'lower', ['proc', 'node', 'noop', c, 'redis_cpu_wait'], ['proc', 'bullc', 'noop', c, 'redis_cpu_wait']);
  for (const c of S.concurrencies)
    row(`Redis CPU per job c${c}`, 'µs', 'lower', ['proc', 'node', 'noop', c, 'redis_cpu_us_per_job'], ['proc', 'bullc', 'noop', c, 'redis_cpu_us_per_job']);
  for (const c of S.concurrencies)
    row(`Redis: script wall time per job c${c} (commandstats usec)`, 'µs', 'lower', ['proc', 'node', 'noop', c, 'script_usec_per_job'], ['proc', 'bullc', 'noop', c, 'script_usec_per_job']);
  for (const c of S.concurrencies)
    row(`client round trips per job c${c} (EVALSHA+BZPOPMIN)`, 'calls', 'lower', ['proc', 'node', 'noop', c, 'round_trips_per_job'], ['proc', 'bullc', 'noop', c, 'round_trips_per_job']);
  for (const c of S.concurrencies)
    row(`worker requests per Redis socket read c${c} (pipelining)`, 'calls', 'higher', ['proc', 'node', 'noop', c, 'requests_per_read'], ['proc', 'bullc', 'noop', c, 'requests_per_read']);
  row('Redis commands per job c64, incl. those Lua calls', 'calls', 'lower', ['proc', 'node', 'noop', 64, 'redis_cmds_per_job'], ['proc', 'bullc', 'noop', 64, 'redis_cmds_per_job']);
  for (const c of S.concurrencies)
    row(`worker CPU per job c${c}`, 'µs', 'lower', ['proc', 'node', 'noop', c, 'worker_cpu_us_per_job'], ['proc', 'bullc', 'noop', c, 'worker_cpu_us_per_job']);
  row('worker waiting for a CPU (other load) c64', '%', 'lower', ['proc', 'node', 'noop', 64, 'worker_cpu_wait'], ['proc', 'bullc', 'noop', 64, 'worker_cpu_wait']);
  row('add → start p50 (c1)', 'µs', 'lower', ['latency', 'node', 'noop', 1, 'p50_us'], ['latency', 'bullc', 'noop', 1, 'p50_us']);
  row('add → start p99 (c1)', 'µs', 'lower', ['latency', 'node', 'noop', 1, 'p99_us'], ['latency', 'bullc', 'noop', 1, 'p99_us'], atMost(1000, 'µs'));
  row('worker peak RSS, idle (c1)', 'MiB', 'lower', ['proc', 'node', 'noop', 1, 'rss_idle_mib'], ['proc', 'bullc', 'noop', 1, 'rss_idle_mib'], atMost(8, 'MiB'));
  row('worker peak RSS, idle (c64)', 'MiB', 'lower', ['proc', 'node', 'noop', 64, 'rss_idle_mib'], ['proc', 'bullc', 'noop', 64, 'rss_idle_mib']);
  row('worker peak RSS, processing c64', 'MiB', 'lower', ['proc', 'node', 'noop', 64, 'rss_peak_mib'], ['proc', 'bullc', 'noop', 64, 'rss_peak_mib'], atMost(16, 'MiB'));
  row('worker peak RSS, --plugin c64', 'MiB', 'lower', ['proc', 'node', 'noop', 64, 'rss_peak_mib'], ['proc', 'bullc', 'plugin', 64, 'rss_peak_mib']);
  if (S.scale) {
    row('2 worker processes c64, one queue', 'jobs/s', 'higher', ['scale', 'node', 'noop-x2', 64, 'jobs_per_s'], ['scale', 'bullc', 'noop-x2', 64, 'jobs_per_s']);
    row('2 worker processes c64: Redis busy', '%', 'higher', ['scale', 'node', 'noop-x2', 64, 'redis_util'], ['scale', 'bullc', 'noop-x2', 64, 'redis_util']);
    row('4 queues c16 each (bullc: 1 process; Node: 4 workers in 4 processes)', 'jobs/s', 'higher', ['scale', 'node', 'queues4', 16, 'jobs_per_s'], ['scale', 'bullc', 'queues4', 16, 'jobs_per_s']);
    row('4 queues: Redis busy', '%', 'higher', ['scale', 'node', 'queues4', 16, 'redis_util'], ['scale', 'bullc', 'queues4', 16, 'redis_util']);
  }
  // Sections that run each workload two ways in the same round (--only tls: plain TCP, then TLS to the
  // same server; --only cluster: the one redis-server, then the cluster): a row for each way, and each
  // side's other / base ratio, per round (as samples of workload `ratio`), as a row of its own
  const paired = (specs, [base, baseText], [other, otherText], ratio, ratioText) => {
    for (const [what, v, key, c] of specs) {
      const unit = key === 'jobs_per_s' ? 'jobs/s' : 'µs', better = key === 'jobs_per_s' ? 'higher' : 'lower';
      const at = (workload, side, r) => samples.find(x => x.round === r && x.workload === workload && x.side === side && x.variant === v && x.c === c && x.key === key);
      for (const side of ['node', 'bullc'])
        for (let r = 1; r <= S.rounds; r++) {
          const [b, o] = [at(base, side, r), at(other, side, r)];
          if (b && o && b.value && !at(ratio, side, r)) samples.push({ round: r, workload: ratio, side, variant: v, c, key, value: o.value / b.value });
        }
      row(`${what}, ${baseText}`, unit, better, [base, 'node', v, c, key], [base, 'bullc', v, c, key]);
      row(`${what}, ${otherText}`, unit, better, [other, 'node', v, c, key], [other, 'bullc', v, c, key]);
      row(`${what}: ${ratioText} (each side's own)`, 'ratio', better, [ratio, 'node', v, c, key], [ratio, 'bullc', v, c, key]);
    }
  };
  paired([['bulk add (batches of 1,000)', 'bulk', 'jobs_per_s', 0], ['processing noop c8', 'noop', 'jobs_per_s', 8],
    ['processing c8: worker CPU per job', 'noop', 'worker_cpu_us_per_job', 8], ['processing c8: Redis CPU per job', 'noop', 'redis_cpu_us_per_job', 8]],
  ['tcp', 'plain TCP'], ['tls', 'TLS'], 'tls-ratio', 'TLS / TCP');
  paired([['6 queues: bulk add (batches of 1,000, a producer per queue at once)', 'bulk', 'jobs_per_s', 0],
    [`6 queues: processing noop c${CLUSTER_CONC} each (bullc: 1 process; Node: 6)`, 'noop', 'jobs_per_s', CLUSTER_CONC],
    ['6 queues: processing, worker CPU per job', 'noop', 'worker_cpu_us_per_job', CLUSTER_CONC],
    ['6 queues: processing, Redis CPU per job (all masters)', 'noop', 'redis_cpu_us_per_job', CLUSTER_CONC]],
  ['cl-single', 'one Redis'], ['cl-cluster', 'cluster of 3 masters'], 'cl-ratio', 'cluster / one Redis');
  const nodeN = S.manyqNode[S.manyqNode.length - 1];
  for (const n of S.manyqBullc) {
    const sel = (side, k) => [['manyq', side, `q${side === 'node' ? nodeN : n}`, 1, k]];
    const vs = n === nodeN ? '' : ` (Node: ${nodeN.toLocaleString('en')} queues)`;
    const what = `${n.toLocaleString('en')} queues in one worker process${vs}`;
    const big = n >= 5000;
    row(`${what}: Redis connections`, 'conns', 'lower', ...sel('node', 'redis_conns'), ...sel('bullc', 'redis_conns'), big ? atMost(8, 'conns') : null);
    row(`${what}: worker RSS idle`, 'MiB', 'lower', ...sel('node', 'rss_idle_mib'), ...sel('bullc', 'rss_idle_mib'), big ? atMost(32, 'MiB') : null);
    row(`${what}: idle Redis CPU`, '% core', 'lower', ...sel('node', 'idle_redis_cpu'), ...sel('bullc', 'idle_redis_cpu'));
    row(`${what}: idle worker CPU`, '% core', 'lower', ...sel('node', 'idle_worker_cpu'), ...sel('bullc', 'idle_worker_cpu'));
    row(`${what}: add → start p50, random queue`, 'ms', 'lower', ...sel('node', 'start_p50_ms'), ...sel('bullc', 'start_p50_ms'));
    row(`${what}: add → start p99, random queue`, 'ms', 'lower', ...sel('node', 'start_p99_ms'), ...sel('bullc', 'start_p99_ms'), big ? atMost(50, 'ms') : null);
    row(`${what}: start until ready`, 's', 'lower', ...sel('node', 'start_s'), ...sel('bullc', 'start_s'));
  }
  return rows.filter(r => r.node || r.bullc);
}

function fmt(v, unit) {
  if (v === null || v === undefined) return '—';
  if (unit === '%') return `${(v * 100).toFixed(0)}%`;
  if (unit === '% core') return `${(v * 100).toFixed(2)}%`; // an idle process's few hundredths of a core
  if (unit === 'MiB') return v.toFixed(1);
  if (unit === 'calls') return v.toFixed(2);
  if (unit === 'ratio') return `${v.toFixed(2)}×`;
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(1);
}
function cell(s, unit) {
  if (!s) return '—';
  if (s.n < 2) return fmt(s.median, unit);
  return `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}
function markdown(rows) {
  const lines = ['| metric | unit | Node bullmq 6.7.0 | bullc | bullc/Node (per round) | target | met |', '|---|---|---:|---:|---:|---|---|'];
  for (const r of rows)
    lines.push(`| ${r.metric} | ${r.unit} (${r.better}) | ${cell(r.node, r.unit)} | ${cell(r.bullc, r.unit)} | ` +
      `${r.ratio === null ? '—' : r.ratio.toFixed(2) + '×'} | ${r.target} | ${r.met === null ? '' : r.met ? 'yes' : '**no**'} |`);
  return lines.join('\n');
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || 'unknown';
  return {
    date: new Date().toISOString(),
    nproc: os.cpus().length,
    cpu_model: model,
    mem_gib: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    bullmq: require('bullmq/package.json').version,
    git: process.env.BENCH_GIT || '',
    loadavg_start: os.loadavg(),
  };
}

function chart(rows) {
  let gp;
  try { gp = execFileSync('sh', ['-c', 'command -v gnuplot']).toString().trim(); } catch { return null; }
  if (!gp) return null;
  const dat = path.join(S.out, 'chart.dat');
  const get = (v, c) => { const s = stat('proc', v === 'node' ? 'node' : 'bullc', v === 'node' ? 'noop' : v, c, 'jobs_per_s'); return s ? s.median.toFixed(0) : '0'; };
  const lines = ['# conc Node bullc-noop bullc-plugin bullc-exec'];
  for (const c of S.concurrencies) lines.push(`c${c} ${get('node', c)} ${get('noop', c)} ${get('plugin', c)} ${c > 1 ? get('exec', c) : 0}`);
  fs.writeFileSync(dat, lines.join('\n') + '\n');
  const png = path.join(S.out, 'chart.png');
  const script = `set terminal pngcairo size 900,500 noenhanced
set output '${png}'
set title 'Processing throughput, noop processor (jobs/s, median of ${S.rounds} round(s))'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set key left top
set xrange [-0.6:${S.concurrencies.length - 0.4}]
set yrange [0:*]
set ylabel 'jobs/s'
set grid ytics
plot '${dat}' using 2:xtic(1) title 'Node bullmq 6.7.0', '' using 3 title 'bullc-worker --builtin noop', '' using 4 title 'bullc-worker --plugin', '' using 5 title 'bullc-worker --exec /bin/true'
`;
  try {
    execFileSync(gp, [], { input: script });
    return png;
  } catch (e) {
    try { execFileSync(gp, [], { input: script.replace('pngcairo', 'png') }); return png; } catch { log(`gnuplot failed: ${e.message}`); return null; }
  }
}

// ---- main ------------------------------------------------------------------------

// --render DIR: the table, CSV and chart again from DIR/results.json (no run).
function render(dir) {
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8'));
  Object.assign(S, { rounds: j.settings.rounds, concurrencies: j.settings.concurrencies, scale: j.settings.scale,
    smoke: j.settings.smoke, redisNice: j.settings.redisNice || 0, out: dir, only: j.settings.only });
  samples.push(...j.samples);
  samples.detail = j.commands_per_job;
  return report(j.machine, j.errors || []);
}

async function main() {
  if (opt('render')) return render(opt('render'));
  manyQueues = require('./many_queues')({ R, S, Proc, record, log, sleep, cpuSec, vm, fresh, redisCpu, nodeSide });
  fs.mkdirSync(path.join(S.out, 'logs'), { recursive: true });
  const info = machine();
  info.redis = parseInfo(await R.info('server')).redis_version;
  log(`${S.smoke ? 'smoke' : 'full'} run, ${S.rounds} round(s), results in ${S.out}`);
  const errors = [];
  const step = async (what, fn) => {
    try { await fn(); } catch (e) { errors.push(`${what}: ${e.message}`); log(`FAILED ${what}: ${e.message}`); }
  };
  for (let round = 1; round <= S.rounds; round++) {
    log(`---- round ${round}/${S.rounds}`);
    for (const side of ['node', 'bullc']) if (want('bulk')) await step(`bulk ${side}`, () => bulkAdd(round, side));
    for (const side of ['node', 'bullc']) if (want('single')) await step(`ping ${side}`, () => singleAdd(round, side, 'ping'));
    for (const side of ['node', 'bullc']) if (want('single')) await step(`single ${side}`, () => singleAdd(round, side));
    if (want('single')) {
      await step('ping bullc busy-poll', () => singleAdd(round, 'bullc', 'ping', S.busyPollUs));
      await step('single bullc busy-poll', () => singleAdd(round, 'bullc', 'single', S.busyPollUs));
    }
    if (want('proc'))
      for (const c of S.concurrencies) {
        const n = c === 1 ? S.procJobsC1 : S.procJobs;
        await step(`proc node c${c}`, () => processing(round, 'node', 'noop', c, n));
        await step(`proc bullc c${c}`, () => processing(round, 'bullc', 'noop', c, n));
        await step(`proc bullc plugin c${c}`, () => processing(round, 'bullc', 'plugin', c, n));
        if (c > 1) await step(`proc bullc exec c${c}`, () => processing(round, 'bullc', 'exec', c, S.execJobs));
        if (c === 8) { // processors in other languages: children kept alive, Node's sandbox against bullc's helpers
          await step('proc node sandbox c8', () => processing(round, 'node', 'sandbox', c, S.execpJobs));
          await step('proc bullc exec-persistent python c8', () => processing(round, 'bullc', 'execp-py', c, S.execpJobs));
          await step('proc bullc exec-persistent sh c8', () => processing(round, 'bullc', 'execp-sh', c, S.execpJobs));
          await step('proc bullc exec-persistent python c8 pool', () => processing(round, 'bullc', 'execp-py-pool', c, S.execpJobs));
          await step('proc bullc exec-persistent sh c8 pool', () => processing(round, 'bullc', 'execp-sh-pool', c, S.execpJobs));
          // the same once every child runs: without the start-up of 8 interpreters (Node's: 8 node
          // processes), which the cold rows above include
          const warm = { warmup: S.execpWarmup };
          await step('proc node sandbox c8 warm', () => processing(round, 'node', 'sandbox', c, S.execpJobs, warm));
          await step('proc bullc exec-persistent python c8 warm', () => processing(round, 'bullc', 'execp-py', c, S.execpJobs, warm));
          await step('proc bullc exec-persistent sh c8 warm', () => processing(round, 'bullc', 'execp-sh', c, S.execpJobs, warm));
          await step('proc bullc exec-persistent python c8 pool warm', () => processing(round, 'bullc', 'execp-py-pool', c, S.execpJobs, warm));
          await step('proc bullc exec-persistent sh c8 pool warm', () => processing(round, 'bullc', 'execp-sh-pool', c, S.execpJobs, warm));
        }
        if (c === 1) await step(`proc bullc busy-poll c${c}`, () => processing(round, 'bullc', 'noop-bp', c, n));
      }
    if (want('proc') && S.concurrencies.includes(64)) {
      await step('proc bullc log=info c64', () => processing(round, 'bullc', 'noop-loginfo', 64, S.procJobs));
      await step('proc bullc --http scraped c64', () => processing(round, 'bullc', 'noop-http', 64, S.procJobs));
      await step('proc bullc tracing c64', () => processing(round, 'bullc', 'noop-otel', 64, S.procJobs));
    }
    for (const side of ['node', 'bullc']) if (want('latency')) await step(`latency ${side}`, () => latency(round, side));
    if (want('manyq')) {
      for (const n of S.manyqNode) await step(`manyq node ${n}`, () => manyQueues(round, 'node', n));
      for (const n of S.manyqBullc) await step(`manyq bullc ${n}`, () => manyQueues(round, 'bullc', n));
    }
    if (want('tls'))
      for (const tls of [false, true]) {
        const workload = tls ? 'tls' : 'tcp', env = tlsEnv(tls);
        for (const side of ['node', 'bullc'])
          await step(`${workload} bulk ${side}`, () => bulkAdd(round, side, { env, workload, variant: 'bulk' }));
        for (const side of ['node', 'bullc'])
          await step(`${workload} proc ${side} c8`, () => processing(round, side, 'noop', 8, S.tlsJobs, { workload, env }));
      }
    if (want('cluster')) {
      const T = await clusterTargets();
      for (const where of ['single', 'cluster']) {
        for (const side of ['node', 'bullc'])
          await step(`cluster bench ${where} bulk ${side}`, () => clusterBulk(round, side, T[where], T.names));
        for (const side of ['node', 'bullc'])
          await step(`cluster bench ${where} proc ${side}`, () => clusterProc(round, side, T[where], T.names));
      }
    }
    if (S.scale && want('scale')) {
      for (const side of ['node', 'bullc'])
        await step(`scale x2 ${side}`, () => processing(round, side, 'noop', 64, S.procJobs, { procs: 2, workload: 'scale' }).then(() => relabel('noop', 'noop-x2')));
      const qs = ['{q1}', '{q2}', '{q3}', '{q4}'].map(t => `bench-${t}`);
      await step('scale 4 queues node', () => nodeQueues(round, qs));
      await step('scale 4 queues bullc', () => processing(round, 'bullc', 'noop', 16, S.procJobs, { queues: qs, workload: 'scale' }).then(() => relabel('noop', 'queues4')));
    }
  }
  info.loadavg_end = os.loadavg();
  if (clTargets) clTargets.close();
  return report(info, errors);
}

// --docs FILE: the table replaces what FILE has between its bench:results
// markers (docs/performance.md), so that the docs give each figure in one
// place, as this run measured it. A smoke run measures nothing: refused.
function updateDocs(file, summaryText, md) {
  if (S.smoke) throw new Error('--docs: a smoke run is not a measurement');
  // the table between the markers is the default run's; these sections have tables of their own
  if (S.only.some(w => named.includes(w))) throw new Error(`--docs: --only ${named.join('/')} runs replace no table`);
  const text = fs.readFileSync(file, 'utf8');
  const begin = '<!-- bench:results begin', end = '<!-- bench:results end -->';
  const a = text.indexOf(begin), b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`--docs: ${file} has no bench:results markers`);
  const head = text.indexOf('-->', a) + 3;
  const block = '\n' + summaryText.trim() + '\n\n' + md.trim() + '\n';
  fs.writeFileSync(file, text.slice(0, head) + block + text.slice(b));
  log(`written: the table of ${file}`);
}

function report(info, errors) {
  const rows = buildRows();
  const md = markdown(rows);
  const summaryText = `bullc vs Node BullMQ ${info.bullmq} — ${S.smoke ? 'SMOKE (tiny sizes, not a measurement)' : 'full'} run, ` +
    `${S.rounds} round(s) alternating Node/bullc; median (min–max); bullc/Node: the median of the rounds' ratios\n` +
    `machine: ${info.nproc} × ${info.cpu_model}, ${info.mem_gib} GiB, Linux ${info.kernel}, Redis ${info.redis}` +
    `${S.redisNice ? ` (nice ${S.redisNice})` : ''}, Node ${info.node}; ` +
    `load average at start ${info.loadavg_start.map(x => x.toFixed(2)).join(' ')}, at end ${info.loadavg_end.map(x => x.toFixed(2)).join(' ')}\n`;
  process.stdout.write(`\n${summaryText}\n${md}\n`);
  fs.writeFileSync(path.join(S.out, 'results.md'), `${summaryText}\n${md}\n`);
  if (opt('docs')) updateDocs(opt('docs'), summaryText, md);
  if (!opt('render'))
    fs.writeFileSync(path.join(S.out, 'results.json'), JSON.stringify({
      settings: S, machine: info, rows, samples, commands_per_job: samples.detail || [], errors,
    }, null, 1));
  const csv = ['metric,unit,better,node_median,node_min,node_max,bullc_median,bullc_min,bullc_max,ratio_bullc_over_node,target,met'];
  const q = s => `"${String(s).replace(/"/g, '""')}"`;
  const num = v => (v === null || v === undefined ? '' : +v.toPrecision(6));
  for (const r of rows)
    csv.push([q(r.metric), q(r.unit), r.better, num(r.node?.median), num(r.node?.min), num(r.node?.max),
      num(r.bullc?.median), num(r.bullc?.min), num(r.bullc?.max), num(r.ratio), q(r.target), r.met === null ? '' : r.met].join(','));
  fs.writeFileSync(path.join(S.out, 'results.csv'), csv.join('\n') + '\n');
  fs.writeFileSync(path.join(S.out, 'samples.csv'), ['round,workload,side,variant,concurrency,key,value',
    ...samples.map(s => [s.round, s.workload, s.side, s.variant, s.c, s.key, s.value].join(','))].join('\n') + '\n');
  const png = chart(rows);
  log(`written: ${['results.md', 'results.json', 'results.csv', 'samples.csv', png && 'chart.png'].filter(Boolean).join(', ')}`);

  // every workload must have produced its numbers (the smoke test's check)
  const need = [];
  const sel = (w, side, v, c, k) => need.push([w, side, v, c, k]);
  for (const side of ['node', 'bullc']) {
    if (want('bulk')) sel('bulk', side, 'add', 0, 'jobs_per_s');
    if (want('single')) { sel('single', side, 'add', 0, 'p50_us'); sel('single', side, 'add', 0, 'p99_us'); }
    if (want('latency')) { sel('latency', side, 'noop', 1, 'p50_us'); sel('latency', side, 'noop', 1, 'p99_us'); }
    if (want('proc'))
      for (const c of S.concurrencies)
        for (const k of ['jobs_per_s', 'redis_cpu_us_per_job', 'redis_util', 'rss_idle_mib', 'rss_peak_mib']) sel('proc', side, 'noop', c, k);
  }
  if (want('proc'))
    for (const c of S.concurrencies) {
      sel('proc', 'bullc', 'plugin', c, 'jobs_per_s');
      if (c > 1) sel('proc', 'bullc', 'exec', c, 'jobs_per_s');
      if (c === 8)
        for (const [side, v] of [['node', 'sandbox'], ['bullc', 'execp-py'], ['bullc', 'execp-sh']])
          for (const suffix of ['', '-warm']) sel('proc', side, v + suffix, c, 'jobs_per_s');
    }
  const missing = need.filter(k => { const s = stat(...k); return !s || !Number.isFinite(s.median) || s.median <= 0; });
  for (const m of missing) errors.push(`no number for ${m.join(' ')}`);
  if (errors.length) {
    process.stderr.write(`\nbench: ${errors.length} problem(s):\n  ${errors.join('\n  ')}\n`);
    return 1;
  }
  return 0;
}

// processing() records under its variant; the scaling rows need their own names.
function relabel(from, to) {
  for (const s of samples) if (s.workload === 'scale' && s.variant === from) s.variant = to;
  for (const d of samples.detail || []) if (d.workload === 'scale' && d.variant === from) d.variant = to;
}

// Node on 4 queues: 4 worker processes (a Node Worker serves one queue), c16 each.
async function nodeQueues(round, qs) {
  await fresh();
  const Q = qs.map(name => new Queue(name, { connection: R }));
  for (const q of Q) await q.pause();
  const per = Math.ceil(S.procJobs / qs.length);
  for (const name of qs) await run(path.join(S.benchBin, 'bench_add'), ['--queue', name, '--mode', 'fill', '--count', per]);
  const blocked0 = await blockedClients();
  const W = qs.map(name => new Proc('node', [nodeSide, 'worker', '--queue', name, '--concurrency', 16],
    { stderrFile: path.join(S.out, 'logs', `scale-node-queues4-r${round}.log`) }));
  try {
    await waitBlocked(blocked0 + qs.length, W);
    await sleep(500);
    const cpu0 = await redisCpu();
    const wcpu0 = W.reduce((a, w) => a + cpuSec(w.pid), 0);
    const t0 = process.hrtime.bigint();
    for (const q of Q) await q.resume();
    const keys = [];
    for (const name of qs) for (const k of ['wait', 'paused', 'active']) keys.push(['llen', `bull:${name}:${k}`]);
    const deadline = Date.now() + 300000;
    for (;;) {
      const res = await R.pipeline(keys).exec();
      if (res.every(([e, v]) => !e && v === 0)) break;
      if (Date.now() > deadline) throw new Error('processing did not finish');
      await sleep(5);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu1 = await redisCpu();
    const wcpu1 = W.reduce((a, w) => a + cpuSec(w.pid), 0);
    const total = per * qs.length;
    const r = { jobs: total, seconds, jobs_per_s: total / seconds, redis_util: (cpu1 - cpu0) / seconds,
      redis_cpu_us_per_job: ((cpu1 - cpu0) * 1e6) / total, worker_cpu_us_per_job: ((wcpu1 - wcpu0) * 1e6) / total };
    record(round, 'scale', 'node', 'queues4', 16, r);
    log(`scale node 4 queues c16: ${r.jobs_per_s.toFixed(0)} jobs/s, Redis ${(r.redis_util * 100).toFixed(0)}% busy`);
  } finally {
    for (const w of W) await w.stop();
    for (const q of Q) await q.close();
  }
}

main()
  .then(code => { process.exitCode = code; })
  .catch(e => { process.stderr.write(`bench: ${e.stack || e}\n`); process.exitCode = 1; })
  .finally(async () => {
    for (const p of live) p.child.kill('SIGKILL');
    R.disconnect();
  });

