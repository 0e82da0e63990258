// SPDX-License-Identifier: MIT
// Shared helpers of the compat tests: the `bullc` CLI, connections to the
// tests' Redis (from REDIS_URL, as CTest sets it), unique key prefixes and
// small async utilities. Everything talks to a real redis-server and the real
// bullmq package; nothing here is a mock.
//
// The Node peer is BullMQ 6.7.0 (`bullmq`) or 5.81.5 (`bullmq5`, an npm alias):
// BULLC_COMPAT_BULLMQ=5 makes 5.81.5 the default of every helper, so one test
// file runs against either major (CTest registers compat5_<name> for that);
// a test that needs both majors at once asks nodeBullmq(5) or nodeBullmq(6).
'use strict';

const { spawnSync } = require('node:child_process');
const path = require('node:path');
const IORedis = require('ioredis');

const BULLMQ_PACKAGES = { 5: 'bullmq5', 6: 'bullmq' };

// The major of the tests' Node peer: BULLC_COMPAT_BULLMQ (5 or 6), else 6.
function bullmqMajor() {
  const v = process.env.BULLC_COMPAT_BULLMQ;
  if (v === undefined || v === '') return 6;
  const major = Number(v);
  if (!BULLMQ_PACKAGES[major]) throw new Error(`BULLC_COMPAT_BULLMQ=${v}: expected 5 or 6`);
  return major;
}

// The package name of a major's Node BullMQ, for child scripts' require().
function bullmqPackage(major = bullmqMajor()) {
  const name = BULLMQ_PACKAGES[major];
  if (!name) throw new Error(`no Node BullMQ of major ${major} (5 or 6)`);
  return name;
}

// The Node BullMQ module of `major` (default: bullmqMajor()).
function nodeBullmq(major = bullmqMajor()) {
  return require(bullmqPackage(major));
}

// What a peer of that major writes to meta.version ("bullmq:5.81.5").
function bullmqVersionString(major = bullmqMajor()) {
  return `bullmq:${require(`${bullmqPackage(major)}/package.json`).version}`;
}

const { Queue, Worker, QueueEvents, Job } = nodeBullmq();

function requireEnv(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the compat tests through ctest (it starts redis-server and sets it)`);
  }
  return v;
}

const redisUrl = () => requireEnv('REDIS_URL');

// redis://[user[:password]@]host[:port][/db] -> ioredis options.
function parseRedisUrl(url) {
  const u = new URL(url);
  if (u.protocol !== 'redis:') throw new Error(`unsupported Redis URL ${url}`);
  const o = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : 6379,
    db: u.pathname && u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0,
  };
  if (u.password) o.password = decodeURIComponent(u.password);
  if (u.username) o.username = decodeURIComponent(u.username);
  return o;
}

// Connection options for Queue / Worker / QueueEvents (Workers need
// maxRetriesPerRequest: null).
function connection(url = redisUrl()) {
  return { ...parseRedisUrl(url), maxRetriesPerRequest: null };
}

function redis(url = redisUrl()) {
  return new IORedis(connection(url));
}

// The password-protected redis-server of the fixture.
const AUTH_PASSWORD = 'bullc-secret';
function authPort() {
  return Number(requireEnv('BULLC_TEST_AUTH_PORT'));
}

let counter = 0;
// A key prefix no other test (or process) uses.
function uniquePrefix(tag = 'cmp') {
  return `${tag}${process.pid}x${++counter}`;
}

function bullcPath() {
  return path.join(requireEnv('BULLC_BIN_DIR'), 'bullc');
}

// Runs `bullc [--redis URL] [--prefix P] ARGS...` and returns
// {status, stdout, stderr}. `redis: null` leaves --redis out (then bullc uses
// the environment); `env` replaces the child's environment.
function bullc(args, { prefix, redis: url = redisUrl(), input, env, timeout = 60000 } = {}) {
  const argv = [];
  if (url !== null) argv.push('--redis', url);
  if (prefix) argv.push('--prefix', prefix);
  argv.push(...args);
  const r = spawnSync(bullcPath(), argv, { input, env: env || process.env, encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  if (r.signal) throw new Error(`bullc ${argv.join(' ')} killed by ${r.signal}\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, argv };
}

// bullc, failing unless it exits 0; returns stdout.
function bullcOk(args, opts) {
  const r = bullc(args, opts);
  if (r.status !== 0) {
    throw new Error(`bullc ${r.argv.join(' ')} exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
  return r.stdout;
}

// The asynchronous add (bullc_aqueue_add on a libuv loop) with `bullc add`'s
// command line (tests/support/aqueue_add.c); returns the printed job id. The
// library stores data as given (the CLI is what minifies): a string is passed
// as it is, anything else as JSON.stringify prints it.
function bullcAqueueAdd(prefix, queueName, name, data, opts) {
  const bin = path.join(process.env.BULLC_BIN_DIR, 'bullc-test-aqueue-add');
  const args = ['--redis', redisUrl(), '--prefix', prefix, 'add', queueName, name];
  args.push(typeof data === 'string' ? data : JSON.stringify(data));
  if (opts !== undefined) args.push('--opts', JSON.stringify(opts));
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 60000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`bullc-test-aqueue-add ${args.join(' ')}: exit ${r.status} ${r.signal || ''}\n${r.stderr}`);
  return r.stdout.trim();
}

// `bullc add QUEUE NAME DATA --opts JSON`; returns the printed job id.
function bullcAdd(prefix, queueName, name, data, opts) {
  const args = ['add', queueName, name];
  if (data !== undefined) args.push(typeof data === 'string' ? data : JSON.stringify(data));
  if (opts !== undefined) args.push('--opts', typeof opts === 'string' ? opts : JSON.stringify(opts));
  return bullcOk(args, { prefix }).trim();
}

// `bullc add-bulk QUEUE` fed NDJSON; returns the printed ids.
function bullcAddBulk(prefix, queueName, jobs, extraArgs = []) {
  const input = jobs.map(j => JSON.stringify(j)).join('\n') + '\n';
  const out = bullcOk(['add-bulk', queueName, ...extraArgs], { prefix, input });
  return out.split('\n').filter(Boolean);
}

// Node's Queue, Worker and QueueEvents of the default major; `bullmqMajor` in
// the options picks the other one (it is not passed to BullMQ).
function classOf(cls, opts) {
  const { bullmqMajor: major, ...rest } = opts;
  return [major === undefined ? cls : nodeBullmq(major)[cls.name], rest];
}

function newQueue(name, prefix, opts = {}) {
  const [Q, rest] = classOf(Queue, opts);
  return new Q(name, { connection: connection(), prefix, ...rest });
}

function newWorker(name, prefix, processor, opts = {}) {
  const [W, rest] = classOf(Worker, opts);
  return new W(name, processor, { connection: connection(), prefix, ...rest });
}

function newQueueEvents(name, prefix, opts = {}) {
  const [E, rest] = classOf(QueueEvents, opts);
  return new E(name, { connection: connection(), prefix, ...rest });
}

// Closes Queues, Workers, QueueEvents and ioredis clients, in order, ignoring
// undefined entries; every one is attempted even when one fails.
async function closeAll(...things) {
  let first;
  for (const t of things.flat()) {
    if (!t) continue;
    try {
      if (t instanceof IORedis) await t.quit();
      else await t.close();
    } catch (err) {
      first = first || err;
    }
  }
  if (first) throw first;
}

// Rejects after `ms` with a message naming what was awaited.
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// Polls `fn` until it returns a truthy value (returned) or `ms` pass.
async function eventually(fn, ms, what, every = 50) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(every);
  }
}

// A promise resolved once `emitter` has emitted `event` `n` times; each
// emission's arguments are collected. Rejects on the emitter's 'error'.
function collect(emitter, event, n) {
  const seen = [];
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      seen.push(args);
      if (seen.length === n) {
        emitter.off(event, onEvent);
        resolve(seen);
      }
    };
    emitter.on(event, onEvent);
    emitter.once('error', reject);
  });
}

// HGETALL of a job, with `opts` parsed (Lua re-encodes it, so key order is
// arbitrary: compare parsed).
async function jobHash(client, prefix, queueName, id) {
  const h = await client.hgetall(`${prefix}:${queueName}:${id}`);
  if (h.opts !== undefined) h.opts = JSON.parse(h.opts);
  return h;
}

// All keys under a prefix.
async function keysOf(client, prefix) {
  return (await client.keys(`${prefix}:*`)).sort();
}

// How many 'completed' events each job has in a queue's events stream (a
// Map of job id to count): what the exactly-once checks of the fault tests read.
async function completedEvents(client, prefix, queueName) {
  const completed = new Map();
  for (const [, fields] of await client.xrange(`${prefix}:${queueName}:events`, '-', '+')) {
    const f = {};
    for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
    if (f.event === 'completed') completed.set(f.jobId, (completed.get(f.jobId) || 0) + 1);
  }
  return completed;
}

module.exports = {
  AUTH_PASSWORD,
  Job,
  authPort,
  bullc,
  bullcAdd,
  bullcAqueueAdd,
  bullcAddBulk,
  bullcOk,
  bullcPath,
  bullmqMajor,
  bullmqPackage,
  bullmqVersionString,
  closeAll,
  collect,
  completedEvents,
  connection,
  eventually,
  jobHash,
  keysOf,
  newQueue,
  newQueueEvents,
  newWorker,
  nodeBullmq,
  parseRedisUrl,
  redis,
  redisUrl,
  sleep,
  uniquePrefix,
  withTimeout,
};
