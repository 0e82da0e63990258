#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Writes the msgpack corpus that tests/unit/test_codec.c checks bullc against.
//
// usage: gen-msgpack-corpus.js OUT.ndjson
//
// One NDJSON line per option set:
//   {"title": ..., "opts": <the options as given, JSON>, "packed": "<hex>",
//    "script": "standard" | "delayed" | "prioritized", "optsText": "<JSON text>"}
// `packed` is ARGV[3] of the add script exactly as Node BullMQ sends it:
// pack(optsAsJSON(new Job(queue, 'n', {}, opts).opts)) with bullmq's own Job
// class, its own optsAsJSON and its own msgpackr packer. optsAsJSON and the
// packer are private to redis-queue-backend.js, so instead of copying them the
// script calls RedisQueueBackend.prototype.addJobToTransaction (Node's real
// add path) on a backend whose add<Kind>Job methods record their arguments
// instead of talking to Redis. `script` is the add script Node chose.
// `optsText` is JSON.stringify(opts) as a string, the exact text a C test
// hands to bullc (re-printing `opts` with cJSON would round some numbers).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Job, RedisQueueBackend } = require('bullmq');
const { ADD_CORPUS, EDGE_CORPUS } = require('./opts-corpus');

const out = process.argv[2];
if (!out) {
  console.error('usage: gen-msgpack-corpus.js OUT.ndjson');
  process.exit(2);
}

// What the Job constructor and addJobToTransaction read from a queue.
const keys = { '': 'bull:q:', de: 'bull:q:de' };
const fakeQueue = {
  name: 'q',
  qualifiedName: 'bull:q',
  keys,
  toKey: type => `bull:q:${type}`,
  opts: {},
};

// A backend that records what Node would send instead of sending it.
function recordingBackend() {
  const backend = Object.create(RedisQueueBackend.prototype);
  backend.queue = fakeQueue;
  const record = script => (client, job, encodedOpts, args) => {
    backend.recorded = { script, encodedOpts, args };
    return Promise.resolve(args[1] || '1');
  };
  backend.addStandardJob = record('standard');
  backend.addDelayedJob = record('delayed');
  backend.addPrioritizedJob = record('prioritized');
  backend.addParentJob = record('parent');
  return backend;
}

async function packedFor(opts) {
  const backend = recordingBackend();
  fakeQueue.backend = backend;
  const job = new Job(fakeQueue, 'n', {}, opts, opts.jobId);
  const jobData = job.asJSON();
  job.validateOptions(jobData); // only options Node accepts belong in the corpus
  await backend.addJobToTransaction({}, jobData, job.id, {}, keys);
  if (!backend.recorded) throw new Error('addJobToTransaction did not reach an add script');
  return backend.recorded;
}

async function main() {
  const lines = [];
  for (const { title, opts } of [...ADD_CORPUS, ...EDGE_CORPUS]) {
    const { script, encodedOpts } = await packedFor(opts);
    if (!Buffer.isBuffer(encodedOpts) && !(encodedOpts instanceof Uint8Array)) {
      throw new Error(`${title}: packed opts is not a buffer`);
    }
    lines.push(
      JSON.stringify({ title, opts, packed: Buffer.from(encodedOpts).toString('hex'), script, optsText: JSON.stringify(opts) }),
    );
  }
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, lines.join('\n') + '\n');
  console.log(`wrote ${lines.length} entries to ${out}`);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
