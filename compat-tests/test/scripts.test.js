// SPDX-License-Identifier: MIT
// bullc embeds BullMQ 6.7.0's and 5.81.5's scripts byte for byte: same names,
// same number of keys, same SHA1 as the text Node's ioredis sends, so both
// share Redis's script cache. Checked against the Node peer's major
// (BULLC_COMPAT_BULLMQ; bullc lists that major's scripts when told it).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const h = require('../lib/harness');

const bullmqDir = path.dirname(require.resolve(`${h.bullmqPackage()}/package.json`));
const major = h.bullmqMajor();
const scriptsDir = path.join(bullmqDir, 'dist', 'cjs', 'scripts');
const sha1 = text => crypto.createHash('sha1').update(text).digest('hex');

// Node's scripts: every dist/cjs/scripts/<name>-<keys>.js but index.js and
// the relay* ones (a pub/sub unrelated to queues).
function nodeScripts() {
  const out = new Map();
  for (const f of fs.readdirSync(scriptsDir)) {
    if (!f.endsWith('.js') || f === 'index.js' || f.startsWith('relay')) continue;
    const mod = require(path.join(scriptsDir, f));
    const exported = Object.values(mod).filter(v => v && typeof v.content === 'string');
    assert.equal(exported.length, 1, `${f} exports one script`);
    const s = exported[0];
    assert.equal(`${s.name}-${s.keys}.js`, f, `${f} exports ${s.name}-${s.keys}`);
    out.set(`${s.name}-${s.keys}`, s);
  }
  return out;
}

function bullcScripts() {
  const list = JSON.parse(h.bullcOk(['--json', '--bullmq-version', String(major), 'scripts'], { redis: null }));
  assert.ok(Array.isArray(list), 'bullc --json scripts prints an array');
  return list;
}

test('bullc is built against the bullmq version the compat tests run', () => {
  const version = require(`${h.bullmqPackage()}/package.json`).version;
  assert.equal(version, major === 5 ? '5.81.5' : '6.7.0');
  // both protocols it speaks, from the build's pinned packages
  assert.match(h.bullcOk(['--version'], { redis: null }), /^bullc \S+ \(BullMQ 6\.7\.0 and 5\.81\.5\)\n$/);
  const help = h.bullc(['--help'], { redis: null });
  assert.ok(`${help.stdout}${help.stderr}`.includes(`BullMQ 6.7.0's and 5.81.5's protocols`), help.stdout);
});

test('bullc scripts --json lists {id, keys, sha1, size} for each script', () => {
  const list = bullcScripts();
  assert.ok(list.length > 0);
  for (const s of list) {
    assert.deepEqual(Object.keys(s).sort(), ['id', 'keys', 'sha1', 'size'], JSON.stringify(s));
    assert.match(s.id, /^[A-Za-z][A-Za-z0-9]*-\d+$/);
    assert.equal(Number(s.id.split('-')[1]), s.keys, `${s.id}: keys in the name and the field`);
    assert.match(s.sha1, /^[0-9a-f]{40}$/);
    assert.ok(Number.isInteger(s.size) && s.size > 0);
  }
  const ids = list.map(s => s.id);
  assert.equal(new Set(ids).size, ids.length, 'no script twice');
});

test('bullc embeds every Node script with the same keys and SHA1', () => {
  const node = nodeScripts();
  const bullc = new Map(bullcScripts().map(s => [s.id, s]));
  assert.ok(node.size >= 40, `found only ${node.size} Node scripts in ${scriptsDir}`);
  const missing = [...node.keys()].filter(id => !bullc.has(id));
  assert.deepEqual(missing, [], 'Node scripts bullc does not embed');
  const extra = [...bullc.keys()].filter(id => !node.has(id));
  assert.deepEqual(extra, [], 'bullc scripts Node does not have');
  for (const [id, s] of node) {
    const b = bullc.get(id);
    assert.equal(b.keys, s.keys, `${id}: number of keys`);
    // What ioredis sends: sha1 of the module's `content`.
    assert.equal(b.sha1, sha1(s.content), `${id}: SHA1`);
    assert.equal(b.size, Buffer.byteLength(s.content, 'utf8'), `${id}: size in bytes`);
  }
});

test("Node's workers and bullc share Redis's script cache", async () => {
  const bullc = new Map(bullcScripts().map(s => [s.id, s]));
  // 5.x's moveToFinished takes the same 14 keys
  const shas = ['addStandardJob-9', 'moveToActive-11', 'moveToFinished-14'].map(id => {
    assert.ok(bullc.has(id), `bullc embeds ${id}`);
    return bullc.get(id).sha1;
  });
  const prefix = h.uniquePrefix();
  const client = h.redis();
  let queue, worker;
  try {
    // Start from an empty cache, so only Node can have loaded them below.
    await client.script('FLUSH');
    assert.deepEqual(await client.script('EXISTS', ...shas), [0, 0, 0]);
    queue = h.newQueue('scripts', prefix);
    worker = h.newWorker('scripts', prefix, async job => job.data.n * 2);
    const done = h.collect(worker, 'completed', 1);
    await queue.add('double', { n: 21 });
    const [[job, result]] = await h.withTimeout(done, 15000, 'the Node worker to complete the job');
    assert.equal(result, 42);
    assert.equal(job.returnvalue, 42);
    // The scripts Node loaded are found under bullc's SHA1s.
    assert.deepEqual(await client.script('EXISTS', ...shas), [1, 1, 1]);
  } finally {
    await h.closeAll(worker, queue, client);
  }
});

test('after a SCRIPT FLUSH bullc reloads what it needs and Node finds it cached', async () => {
  const addStandard = bullcScripts().find(s => s.id === 'addStandardJob-9');
  const prefix = h.uniquePrefix();
  const client = h.redis();
  try {
    await client.script('FLUSH');
    const id = h.bullcAdd(prefix, 'reload', 'x', { a: 1 });
    assert.equal(id, '1');
    assert.deepEqual(await client.script('EXISTS', addStandard.sha1), [1]);
    // Node's ioredis computes the same SHA1: an EVALSHA of it now succeeds.
    const { addStandardJob } = require(path.join(scriptsDir, 'addStandardJob-9.js'));
    assert.equal(sha1(addStandardJob.content), addStandard.sha1);
  } finally {
    await h.closeAll(client);
  }
});
