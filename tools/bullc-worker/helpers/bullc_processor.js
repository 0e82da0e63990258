// SPDX-License-Identifier: MIT
// A Node.js processor for bullc-worker --exec-persistent (docs/worker.md).
//
//   const { run, UnrecoverableError } = require('./bullc_processor');
//   run(async job => {
//     await job.updateProgress(50);
//     await job.log('resizing');
//     return { ok: true, n: job.data.n * 2 };   // throw to fail the job
//   });
//
// run() reads one job per line on stdin until EOF and answers each on stdout,
// one job at a time, in the order they come (with --exec-children, several
// may wait; a cancelled one fails with the reason without starting). The job: id, name, data, opts, attemptsMade,
// attemptsStarted, timestamp, queue, prefix. UnrecoverableError fails it
// without retries; DelayedJob(epochMs) and WaitChildren(result) move it (as
// Node's moveToDelayed / moveToWaitingChildren); any other error fails it
// with its message. console.log goes to stderr: stdout belongs to the protocol.
// job.signal (also the processor's second argument) is an AbortSignal, as a
// Node processor's: it aborts with the reason when the job is cancelled
// (`bullc cancel`, SIGUSR1 to bullc-worker); throw signal.reason to fail the
// job with it.
'use strict';

const readline = require('node:readline');

class UnrecoverableError extends Error {}
class DelayedJob extends Error {
  constructor(timestamp) {
    super('delayed');
    this.timestamp = Math.trunc(Number(timestamp));
  }
}
class WaitChildren extends Error {
  constructor(result = null) {
    super('waiting for children');
    this.result = result;
  }
}

// Pipes are synchronous on Linux: a line is written whole before the next.
function send(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function run(processor) {
  for (const k of ['log', 'info', 'debug']) console[k] = console.error;
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  // Lines are read while a job runs: a cancel line aborts the job's signal.
  const waiting = [];
  const cancels = new Map(); // id -> reason, for waiting jobs
  let current = null;
  let wake = null;
  let closed = false;
  rl.on('line', line => {
    if (!line.trim()) return;
    const raw = JSON.parse(line);
    if (Object.hasOwn(raw, 'cancel')) {
      const id = String(raw.cancel);
      if (current && String(current.id) === id) current.controller.abort(raw.reason);
      else if (waiting.some(w => String(w.id) === id)) cancels.set(id, raw.reason);
      return;
    }
    waiting.push(raw);
    if (wake) wake();
  });
  rl.on('close', () => {
    closed = true;
    if (wake) wake();
  });
  (async () => {
    for (;;) {
      while (!waiting.length && !closed) await new Promise(r => (wake = r));
      wake = null;
      if (!waiting.length) break;
      const raw = waiting.shift();
      const id = raw.id;
      if (cancels.size && cancels.has(String(id))) {
        send({ id, error: String(cancels.get(String(id)) || 'cancelled'), unrecoverable: false });
        cancels.delete(String(id));
        continue;
      }
      const controller = new AbortController();
      current = { id, controller };
      const job = Object.assign(raw, {
        signal: controller.signal,
        updateProgress: async value => send({ id, progress: value }),
        log: async text => send({ id, log: String(text) }),
        updateData: async data => {
          job.data = data;
          send({ id, data });
        },
      });
      try {
        const result = await processor(job, controller.signal);
        send({ id, result: result === undefined ? null : result });
      } catch (e) {
        if (e instanceof DelayedJob) send({ id, delay: e.timestamp });
        else if (e instanceof WaitChildren) send({ id, waitChildren: true, result: e.result });
        else send({ id, error: String((e && e.message) || e), unrecoverable: e instanceof UnrecoverableError });
      }
      current = null;
    }
  })().catch(e => {
    console.error(e);
    process.exit(1);
  });
}

module.exports = { run, UnrecoverableError, DelayedJob, WaitChildren };
