// SPDX-License-Identifier: MIT
// bullc's protocol tables (src/protocol.c) against what BullMQ 6.7.0's own
// classes send, and bullc's 5.x tables against BullMQ 5.81.5's (bullmq5):
// real Queue, Worker and Job methods run against the tests'
// redis-server while a second connection in MONITOR mode records every
// EVALSHA; each script call bullc makes must have been sent by Node with the
// same keys in the same order and as many arguments. Key set, option names
// and error messages are compared with BullMQ's QueueKeys, optsDecodeMap and
// finishedErrors. A BullMQ upgrade that changes any of them fails here, every
// difference listed at once.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('../lib/harness');
const IORedis = require('ioredis');
const { unpackMultiple } = require('msgpackr');
const { QueueKeys } = require('bullmq/dist/cjs/classes/queue-keys');
const { optsDecodeMap } = require('bullmq/dist/cjs/utils');
const { finishedErrors } = require('bullmq/dist/cjs/classes/finished-errors');

const JOB = 'j1';
const STATE = 'failed'; // the state key of calls that take the caller's (clean, retryJobs, job.retry)
const sha1 = text => crypto.createHash('sha1').update(text).digest('hex');
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

// bullc's tables for queue "q" under prefix "P", job JOB and state STATE, of
// BullMQ major `major`.
function bullcTables(major = 6) {
  const bin = path.join(process.env.BULLC_BIN_DIR, 'bullc-test-protocol');
  const r = spawnSync(bin, ['P', 'q', JOB, STATE, String(major)], { encoding: 'utf8' });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

// Every EVALSHA (or EVAL) this process's ioredis clients send whose keys are
// under `prefix`, with "<prefix>:<queue>:" rewritten to "P:q:" (each scenario
// uses its own queue). ioredis's sendCommand is where every command goes out,
// pipelined and transactional ones included; it is wrapped, not replaced:
// the commands still reach the tests' redis-server.
// Each major's BullMQ may load its own copy of ioredis (bullmq5 does): every
// copy's sendCommand is wrapped.
function ioredisCopies() {
  const copies = new Set([IORedis]);
  for (const major of [5, 6]) {
    const dir = path.dirname(require.resolve(`${h.bullmqPackage(major)}/package.json`));
    copies.add(require(require.resolve('ioredis', { paths: [dir] })));
  }
  return [...copies];
}

function capture(prefix) {
  const calls = [];
  const base = new RegExp(`^${prefix}:[^:]+:`);
  const stops = ioredisCopies().map(copy => wrap(copy, base, calls));
  return { calls, stop: () => stops.forEach(stop => stop()) };
}

function wrap(IORedis, base, calls) {
  const send = IORedis.prototype.sendCommand;
  IORedis.prototype.sendCommand = function (command, ...rest) {
    const name = String(command.name).toLowerCase();
    if (name === 'evalsha' || name === 'eval') {
      const args = command.args.map(a => (Buffer.isBuffer(a) ? a : Buffer.from(String(a))));
      const n = Number(args[1].toString());
      const keys = args.slice(2, 2 + n).map(String);
      if (keys.some(k => base.test(k)))
        calls.push({
          sha: name === 'evalsha' ? args[0].toString() : sha1(args[0]),
          numkeys: n,
          keys: keys.map(k => k.replace(base, 'P:q:')),
          nargs: args.length - 2 - n,
          arg1: args[2 + n],
        });
    }
    return send.call(this, command, ...rest);
  };
  return () => (IORedis.prototype.sendCommand = send);
}

// Runs `fn(queue)` on a queue of its own and waits for `done` (a promise
// the scenario resolves) with a worker made by `makeWorker` if given; Node's
// classes of BullMQ major `major`.
async function scenarioOf(prefix, name, fn, major) {
  const queue = h.newQueue(name, prefix, { bullmqMajor: major });
  const closers = [queue];
  try {
    await fn(queue, (processor, opts) => {
      const w = h.newWorker(name, prefix, processor, { ...opts, bullmqMajor: major });
      closers.unshift(w);
      return w;
    });
  } finally {
    await h.closeAll(closers);
  }
}

// A job's outcome on a worker: resolves on `event` for JOB.
const outcome = (worker, event) =>
  h.withTimeout(
    new Promise(resolve => worker.on(event, (job, ...rest) => job && job.id === JOB && resolve([job, ...rest]))),
    15000,
    `${event} of ${JOB}`,
  );

// What Node BullMQ's classes send for every script call bullc makes.
async function driveNode(prefix, major) {
  const { Job, Worker, FlowProducer } = h.nodeBullmq(major);
  const scenario = (p, name, fn) => scenarioOf(p, name, fn, major);
  // adds
  await scenario(prefix, 'adds', async queue => {
    await queue.add('n', { a: 1 }, { jobId: JOB });
    await queue.add('n', { a: 1 }, { jobId: 'd1', delay: 60000 });
    await queue.add('n', { a: 1 }, { jobId: 'p1', priority: 3 });
    // a job ending its own deduplication window (the id as the dedup id)
    const deduplicated = await queue.add('n', { a: 1 }, { deduplication: { id: JOB } });
    await deduplicated.removeDeduplicationKey();
  });
  // a flow: its root goes to waiting-children and is released once the
  // whole tree is in the transaction; then a child is cut loose and the
  // root's unprocessed children removed; its children read by page
  // (queue.getDependencies: the paginate script on each kind)
  await scenario(prefix, 'flow', async queue => {
    const flow = new FlowProducer({ connection: h.connection(), prefix });
    try {
      const tree = await flow.add({
        name: 'root',
        queueName: 'flow',
        opts: { jobId: JOB },
        children: [{ name: 'c', queueName: 'flow' }, { name: 'c', queueName: 'flow' }],
      });
      await queue.getDependencies(JOB, 'pending', 0, -1);
      await queue.getDependencies(JOB, 'processed', 0, -1);
      await tree.children[0].job.removeChildDependency();
      await tree.job.removeUnprocessedChildren();
    } finally {
      await flow.close();
    }
  });
  // a worker completing a job, with every action a processor may take; a
  // short lock so that extendLocks runs while it works
  await scenario(prefix, 'complete', async (queue, worker) => {
    await queue.add('n', { a: 1 }, { jobId: JOB });
    const w = worker(
      async job => {
        await job.updateProgress(50);
        await job.log('line');
        await job.updateData({ b: 2 });
        await job.moveToWaitingChildren(job.token); // no children: stays active
        await job.extendLock(job.token, 30000);
        await sleep(1500);
        return { ok: true };
      },
      { lockDuration: 1000, stalledInterval: 1000 },
    );
    await outcome(w, 'completed');
  });
  // failed, retried at once, retried after a backoff, rate-limited
  await scenario(prefix, 'fail', async (queue, worker) => {
    await queue.add('n', {}, { jobId: JOB, attempts: 1 });
    const w = worker(async () => {
      throw new Error('boom');
    });
    await outcome(w, 'failed');
    // bullc's job and queue actions on a failed job
    const job = await Job.fromId(queue, JOB);
    // waitUntilFinished on a job already failed: isFinished answers
    const events = h.newQueueEvents('fail', prefix, { bullmqMajor: major });
    try {
      await events.waitUntilReady();
      await assert.rejects(job.waitUntilFinished(events), /boom/);
    } finally {
      await events.close();
    }
    await queue.getMetrics('failed');
    await queue.retryJobs({ state: 'failed' });
    await h.eventually(async () => (await job.getState()) === 'failed', 15000, 'the job failing again');
    await job.retry('failed');
  });
  await scenario(prefix, 'retry', async (queue, worker) => {
    await queue.add('n', {}, { jobId: JOB, attempts: 2 });
    let runs = 0;
    const w = worker(async () => {
      if (++runs === 1) throw new Error('once');
      return 1;
    });
    await outcome(w, 'completed');
  });
  await scenario(prefix, 'backoff', async (queue, worker) => {
    await queue.add('n', {}, { jobId: JOB, attempts: 2, backoff: { type: 'fixed', delay: 60000 } });
    const w = worker(async () => {
      throw new Error('later');
    });
    await outcome(w, 'failed');
  });
  await scenario(prefix, 'ratelimit', async (queue, worker) => {
    await queue.add('n', {}, { jobId: JOB });
    let runs = 0;
    const w = worker(async () => {
      if (++runs === 1) {
        await w.rateLimit(200);
        throw Worker.RateLimitError();
      }
      return 1;
    });
    await outcome(w, 'completed');
  });
  // job schedulers: the queue's upsert (override), a worker's next iteration
  // (override false, produced by job JOB), get and removal
  await scenario(prefix, 'schedulers', async queue => {
    await queue.upsertJobScheduler('s1', { every: 60000 }, { name: 'n', data: { a: 1 } });
    await queue.getJobScheduler('s1');
    const scheduler = await queue.jobScheduler;
    await scheduler.upsertJobScheduler('s1', { every: 60000, count: 1 }, 'n', {}, {}, {
      override: false,
      producerId: JOB,
    });
    await queue.removeJobScheduler('s1');
  });
  // 5.x's legacy repeatable jobs (its Repeat class): the add, a worker's
  // next iteration of a key of the legacy shape, removal by key
  if (major === 5)
    await scenario(prefix, 'repeatables', async queue => {
      await queue.add('n', {}, { repeat: { every: 60000, key: 'a:b:c:d:e' } });
      const repeat = await queue.repeat;
      await repeat.updateRepeatableJob('n', {}, { repeat: { every: 60000, key: 'a:b:c:d:e' }, prevMillis: 1 }, {
        override: false,
      });
      await queue.removeRepeatableByKey('a:b:c:d:e');
    });
  // the queue's administration and getters
  await scenario(prefix, 'admin', async queue => {
    await queue.add('n', {}, { jobId: JOB, delay: 60000 });
    const job = await Job.fromId(queue, JOB);
    await job.changeDelay(120000);
    await job.getState();
    // Node picks getState over getStateV2 on Redis < 6.0.6
    const conn = major === 5 ? queue.connection : queue.getBackend().connection;
    Object.defineProperty(conn, 'redisVersion', { value: '6.0.0', configurable: true });
    try {
      await job.getState();
    } finally {
      delete conn.redisVersion;
    }
    await job.promote();
    await job.changePriority({ priority: 2 });
    await queue.getJobs();
    await queue.getJobCounts();
    await queue.getCountsPerPriority([1, 2]);
    await queue.getRateLimitTtl(1);
    await queue.isMaxed();
    await queue.getMetrics('completed');
    await queue.pause();
    await queue.resume();
    await queue.clean(0, 10, 'failed');
    await queue.removeOrphanedJobs();
    await queue.promoteJobs();
    await job.remove();
    await queue.drain(true);
    await queue.obliterate({ force: true });
  });
}

for (const [major, version] of [[6, '6.7.0'], [5, '5.81.5']])
test(`bullc's protocol tables match what BullMQ ${version}'s classes send`, async () => {
  const tables = bullcTables(major);
  assert.equal(tables.version, version);
  assert.equal(tables.metaVersion, h.bullmqVersionString(major), "what bullc writes to meta.version");
  const prefix = h.uniquePrefix('proto');
  const cap = capture(prefix);
  try {
    await driveNode(prefix, major);
  } finally {
    cap.stop();
  }

  const problems = [];
  for (const c of tables.calls) {
    const sent = cap.calls.filter(s => s.sha === c.sha1);
    if (!sent.length) {
      problems.push(`${c.name}: Node never ran ${c.id} in this test (add a scenario for it)`);
      continue;
    }
    const same = sent.find(s => JSON.stringify(s.keys) === JSON.stringify(c.keys));
    if (!same) {
      problems.push(
        `${c.name}: no ${c.id} call with bullc's keys\n    bullc: ${c.keys.join(' ')}\n` +
          [...new Set(sent.map(s => s.keys.join(' ')))].map(k => `    Node:  ${k}`).join('\n'),
      );
      continue;
    }
    if (same.numkeys !== c.numkeys) problems.push(`${c.name}: Node sent ${same.numkeys} keys, bullc ${c.numkeys}`);
    // the add scripts' packed ARGV[1]: 10 items in 6.x, 9 in 5.x
    if (/^add(Standard|Delayed|Prioritized)Job$/.test(c.script) && unpackMultiple(same.arg1)[0].length !== tables.addArgs)
      problems.push(`${c.name}: Node packs ${unpackMultiple(same.arg1)[0].length} arguments, bullc ${tables.addArgs}`);
    if (c.nargs >= 0 && !sent.some(s => s.nargs === c.nargs))
      problems.push(`${c.name}: bullc sends ${c.nargs} arguments, Node ${[...new Set(sent.map(s => s.nargs))]}`);
  }
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
});

test("bullc's key set is BullMQ's QueueKeys", () => {
  const { keys } = bullcTables();
  const node = new QueueKeys('P').getKeys('q');
  for (const [name, key] of Object.entries(node)) {
    // Node's toKey('') is "P:q:" too (base + ':' + '')
    assert.equal(keys[name], key, `key "${name}"`);
  }
  // removeOrphanedJobs sends Node's key names but '' as its state suffixes, in order
  assert.deepEqual(bullcTables().queueKeysNames, Object.keys(node).filter(s => s !== ''));
  // the metrics keys Node builds where it reads them (Queue.getMetrics)
  for (const t of ['completed', 'failed']) {
    assert.equal(keys[`metrics:${t}`], node[''] + `metrics:${t}`);
    assert.equal(keys[`metrics:${t}:data`], node[''] + `metrics:${t}:data`);
  }
});

test("bullc's option names are BullMQ's optsDecodeMap", () => {
  assert.deepEqual(bullcTables().optsDecodeMap, optsDecodeMap);
});

test("bullc's messages for the scripts' error codes are BullMQ's finishedErrors", () => {
  const { errors } = bullcTables();
  for (const [code, e] of Object.entries(errors)) {
    // ParentJobNotExist, ParentJobCannotBeReplaced: Node names the parent's
    // key, which bullc's callers pass in the job id's place
    const node = finishedErrors({ code: Number(code), jobId: JOB, parentKey: JOB, command: 'cmd', state: 'active' });
    assert.equal(e.message, node.message, `code ${code}`);
  }
});
