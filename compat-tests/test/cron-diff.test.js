// SPDX-License-Identifier: MIT
// bullc's cron engine against cron-parser 5.10.3 (the version bullmq 6.7.0
// pins, over luxon and Node's ICU): at least 100,000 generated cases
// (lib/cron-cases.js), each parsed by both with the same hashSeed and iterated
// one to three times from the same instant; valid vs invalid and every fire
// time must be identical. Before that, the machine's tzdata (which bullc
// reads) is compared with Node's for every zone and instant used, and a
// difference is reported by zone and instant instead of surfacing as a cron
// mismatch. Seed: BULLC_CRON_SEED (printed), cases: BULLC_CRON_CASES.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const c = require('../lib/cron-cases');

const { nodeResults, threads, cronParserPkg, luxonPath } = require('../lib/cron-node');
const { IANAZone, DateTime } = require(luxonPath);
const SEED = Number(process.env.BULLC_CRON_SEED || 20261203);
const CASES = Number(process.env.BULLC_CRON_CASES || 100000);
const TZ = 'Australia/Adelaide'; // the process zone for cases without tz: +9:30, southern DST
process.env.TZ = TZ;

function runC(lines) {
  const bin = path.join(process.env.BULLC_BIN_DIR, 'bullc-test-cron');
  const r = spawnSync(bin, [], {
    input: lines.join('\n') + '\n',
    env: { ...process.env, TZ },
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `bullc-test-cron exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').slice(0, lines.length);
}

// The same over `parts` bullc-test-cron processes at once, each given a slice of
// the lines in order: the generated cases run beside Node's worker threads
// instead of after them (under ASan bullc's side is several times slower).
function runCParallel(lines, parts) {
  const bin = path.join(process.env.BULLC_BIN_DIR, 'bullc-test-cron');
  const size = Math.ceil(lines.length / parts);
  const one = slice => new Promise((resolve, reject) => {
    const p = spawn(bin, [], { env: { ...process.env, TZ }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [], err = [];
    p.stdout.on('data', d => out.push(d));
    p.stderr.on('data', d => err.push(d));
    p.on('error', reject);
    p.on('close', status => {
      if (status !== 0) reject(new Error(`bullc-test-cron exited ${status}: ${Buffer.concat(err)}`));
      else resolve(Buffer.concat(out).toString('utf8').split('\n').slice(0, slice.length));
    });
    p.stdin.end(slice.join('\n') + '\n');
  });
  return Promise.all(Array.from({ length: parts }, (_, i) => one(lines.slice(i * size, (i + 1) * size))))
    .then(r => r.flat());
}

// The batch protocol's escapes (tabs separate its fields).
const escape = s => s.replace(/[\\\t\n]/g, ch => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n' })[ch]);

test('cron-parser is the version bullmq 6.7.0 pins', () => {
  assert.equal(require(cronParserPkg).version, '5.10.3');
  assert.equal(process.versions.node.split('.')[0] >= 20, true);
});

test('zone names: bullc accepts exactly the names Node accepts', () => {
  const names = [...c.ZONES, ...c.ZONE_NAMES];
  const got = runC(names.map(z => `@offsets\t${z}\t0`));
  const diffs = [];
  names.forEach((z, i) => {
    const node = DateTime.fromMillis(0, { zone: z }).isValid;
    const bullc = got[i].startsWith('ok');
    if (node !== bullc) diffs.push(`${JSON.stringify(z)}: Node ${node}, bullc ${bullc}`);
  });
  assert.deepEqual(diffs, []);
});

// The instants where each zone's offset changes in 1990-2040, by Node's ICU data.
const changes = new Map();
function offsetFn(zone) {
  const z = IANAZone.create(zone);
  return t => Math.round(z.offset(t) * 60);
}

test('tzdata: the machine and Node agree on every zone used, 1990-2040', () => {
  const lines = [], expect = [];
  for (const zone of c.ZONES) {
    const off = offsetFn(zone);
    const ch = c.transitions(off);
    changes.set(zone, ch);
    // each change, the seconds either side, and a sample every 10 days
    const at = [];
    for (const t of ch) at.push(t - 1000, t);
    for (let t = c.MIN_MS; t < c.MAX_MS; t += 10 * 86400000) at.push(t);
    lines.push(`@offsets\t${zone}\t${at.join(' ')}`);
    expect.push({ zone, at, off: at.map(off) });
  }
  const got = runC(lines);
  const diffs = [];
  expect.forEach((e, i) => {
    const g = got[i].split(' ').slice(1).map(Number);
    e.at.forEach((t, k) => {
      if (g[k] !== e.off[k] && diffs.length < 20)
        diffs.push(`${e.zone} at ${new Date(t).toISOString()}: Node ${e.off[k]} s, machine ${g[k]} s`);
    });
  });
  assert.deepEqual(diffs, [], `tzdata differs (Node ${process.versions.tz}; see docs/schedulers.md)`);
});

test(`${CASES} generated cases: bullc and cron-parser agree on validity and every fire time`, async () => {
  console.log(`# cron-diff seed ${SEED} (set BULLC_CRON_SEED to change it), ${CASES} cases`);
  const r = c.rng(SEED);
  const cases = [];
  for (let i = 0; i < CASES; i++) {
    const pattern = c.expression(r);
    const zone = r.chance(0.08) ? undefined : r.pick(c.ZONES);
    const from = c.startInstant(r, changes.get(zone ?? TZ));
    cases.push({ pattern, zone, from, count: r.int(1, 3) });
  }
  const t0 = Date.now();
  const took = p => p.then(r => [r, Date.now() - t0]);
  const [[want, tNode], [got, tBullc]] = await Promise.all([
    took(nodeResults(cases, TZ)),
    took(runCParallel(cases.map(k => `${escape(k.pattern)}\t${k.zone ?? '-'}\t${k.from}\t${k.count}`), threads())),
  ]);
  assert.equal(got.length, CASES, 'an answer for every case');
  console.log(`# node ${tNode} ms, bullc ${tBullc} ms (at once)`);
  const diffs = [];
  let valid = 0;
  cases.forEach((k, i) => {
    if (want[i] !== 'invalid') valid++;
    if (want[i] !== got[i] && diffs.length < 25)
      diffs.push(`${JSON.stringify(k.pattern)} tz=${k.zone} from=${k.from} (${new Date(k.from).toISOString()}): node "${want[i]}" bullc "${got[i]}"`);
  });
  console.log(`# ${valid} valid, ${CASES - valid} invalid`);
  assert.deepEqual(diffs, []);
  assert.ok(valid > CASES * 0.5 && valid < CASES * 0.95, `a useful mix of valid and invalid (${valid} valid)`);
});
