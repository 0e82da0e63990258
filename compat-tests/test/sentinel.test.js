// SPDX-License-Identifier: MIT
// Redis Sentinel (src/sentinel.c): a master, a replica and three sentinels of
// the test's own (redis-server --sentinel: Debian's redis-sentinel package is the same
// binary under another name), with a password on the data nodes
// and another on the sentinels. bullc add, bullc-worker (flags and config
// file) and Node BullMQ 6.7.0 and 5.81.5 (ioredis's Sentinel connection) find
// the master by name; the master is killed, or switched by SENTINEL FAILOVER
// (bullc-worker follows +switch-master), while a Node producer adds 2,000
// jobs and two bullc-workers process them: every job Redis kept completes
// exactly once on the promoted replica. Bad input: an unknown master name or no live
// sentinel exits 3 with what each sentinel said, a malformed URL exits 2.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const IORedis = require('ioredis');
const { bullc, bullcPath, bullmqPackage, eventually, nodeBullmq } = require('../lib/harness');
const { Proc, freePort, startReady, startWorker, killAll, tmpDir } = require('../lib/worker-proc');
const { assertExactlyOnce } = require('../lib/failover');
const { connectionsTo } = require('../lib/tcp');

const DATA_PW = 'data-secret';
const SENTINEL_PW = 'sentinel-secret';
const dir = tmpDir('sentinel');

// A master, its replica and three sentinels (quorum 2) watching them as
// 'mymaster'; every process is a child of this test (killAll stops them).
async function topology(tag) {
  const t = { procs: {} };
  const node = async (name, extra) => {
    const port = await freePort();
    const p = new Proc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir,
      '--dbfilename', `${tag}-${name}.rdb`, '--requirepass', DATA_PW, '--masterauth', DATA_PW, ...extra]);
    await p.waitFor(/Ready to accept connections/, 10000);
    t.procs[port] = p;
    return port;
  };
  t.master = await node('master', ['--repl-diskless-sync-delay', '0']);
  t.replica = await node('replica', ['--replicaof', '127.0.0.1', String(t.master)]);
  t.data = port => new IORedis({ host: '127.0.0.1', port, password: DATA_PW });
  // the replica holds the master's data before anything else starts: a
  // failover before the first sync ends would lose everything
  const r = t.data(t.replica);
  try {
    await eventually(async () => /master_link_status:up/.test(await r.info('replication')), 30000,
      'the replica in sync', 100);
  } finally {
    r.disconnect();
  }
  t.sentinels = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = path.join(dir, `${tag}-sentinel-${i}.conf`);
    fs.writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, `requirepass ${SENTINEL_PW}`,
      `sentinel monitor mymaster 127.0.0.1 ${t.master} 2`, `sentinel auth-pass mymaster ${DATA_PW}`,
      'sentinel down-after-milliseconds mymaster 1000', 'sentinel failover-timeout mymaster 5000', ''].join('\n'));
    const p = new Proc('redis-server', [conf, '--sentinel']);
    await p.waitFor(/Sentinel ID is/, 10000);
    t.procs[port] = p;
    t.sentinels.push(port);
  }
  // ready once every sentinel knows the replica and the two other sentinels
  // (a failover needs the quorum to agree)
  for (const port of t.sentinels) {
    const s = new IORedis({ host: '127.0.0.1', port, password: SENTINEL_PW });
    try {
      await eventually(async () => (await s.call('SENTINEL', 'replicas', 'mymaster')).length === 1 &&
        (await s.call('SENTINEL', 'sentinels', 'mymaster')).length === 2, 30000, `sentinel ${port} to see everyone`,
      200);
    } finally {
      s.disconnect();
    }
  }
  t.list = t.sentinels.map(p => `127.0.0.1:${p}`).join(',');
  t.url = `redis+sentinel://:${DATA_PW}@${t.list}/mymaster`;
  t.flags = ['--sentinel', t.list, '--sentinel-master', 'mymaster', '--sentinel-password', SENTINEL_PW];
  t.env = { ...process.env, REDIS_SENTINEL_PASSWORD: SENTINEL_PW };
  t.conn = {
    sentinels: t.sentinels.map(port => ({ host: '127.0.0.1', port })), name: 'mymaster',
    sentinelPassword: SENTINEL_PW, password: DATA_PW, maxRetriesPerRequest: null,
  };
  return t;
}

let shared;
before(async () => {
  shared = await topology('shared');
});
after(async () => {
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const major of [6, 5]) {
  test(`discovery: bullc add, bullc-worker and Node BullMQ ${major} find the master through the sentinels`,
    { timeout: 60000 }, async () => {
      const { Queue } = nodeBullmq(major);
      const prefix = `sent${major}`;
      const q = new Queue('q', { prefix, connection: shared.conn });
      try {
        await q.add('from-node', { by: 'node' });
        // the URL, with the sentinels' password from the environment
        const r = bullc(['add', 'q', 'from-url', '{"by":"url"}'], { prefix, redis: shared.url, env: shared.env });
        assert.strictEqual(r.status, 0, r.stderr);
        // the flags, the master's password from REDIS_PASSWORD (no REDIS_URL)
        const f = bullc(['add', 'q', 'from-flags', '{"by":"flags"}', ...shared.flags], { prefix, redis: null,
          env: { ...process.env, REDIS_URL: '', REDIS_PASSWORD: DATA_PW } });
        assert.strictEqual(f.status, 0, f.stderr);
        // the jobs are on the master, none on the replica's own writes
        const m = shared.data(shared.master);
        try {
          assert.strictEqual(await m.llen(`${prefix}:q:wait`), 3);
        } finally {
          m.disconnect();
        }
        // bullc-worker by flags: its blocking and command connections resolve too
        const bw = await startReady(['--queue', 'q', '--builtin', 'echo', ...shared.flags], { prefix, redis: null,
          env: { ...process.env, REDIS_URL: '', REDIS_PASSWORD: DATA_PW } });
        try {
          await eventually(async () => (await q.getJobCounts('completed')).completed === 3, 15000,
            'bullc-worker to process the three jobs');
          const done = await q.getJobs(['completed']);
          assert.deepStrictEqual(done.map(j => j.returnvalue.by).sort(), ['flags', 'node', 'url']);
        } finally {
          assert.strictEqual((await bw.stop()).code, 0);
        }
        // bullc reads through the sentinels as well
        const c = bullc(['counts', 'q', '--json'], { prefix, redis: shared.url, env: shared.env });
        assert.strictEqual(c.status, 0, c.stderr);
        assert.strictEqual(JSON.parse(c.stdout).completed, 3);
        // the sentinels' password never shows
        assert.doesNotMatch(r.stderr + f.stderr + c.stderr + bw.text(), new RegExp(`${SENTINEL_PW}|${DATA_PW}`));
      } finally {
        await q.close();
      }
    });
}

test('bullc-worker takes sentinels, sentinelMaster and sentinelPassword from its config file', { timeout: 60000 },
  async () => {
    const prefix = 'sentcfg';
    const q = new (nodeBullmq().Queue)('q', { prefix, connection: shared.conn });
    try {
      await q.add('a', { n: 1 });
      const config = path.join(dir, 'worker.json');
      fs.writeFileSync(config, JSON.stringify({ sentinels: shared.list, sentinelMaster: 'mymaster',
        sentinelPassword: SENTINEL_PW, prefix, queues: { q: { builtin: 'echo' } } }));
      const w = await startReady(['--config', config], { redis: null,
        env: { ...process.env, REDIS_URL: '', REDIS_PASSWORD: DATA_PW } });
      try {
        await eventually(async () => (await q.getJobCounts('completed')).completed === 1, 15000, 'the job done');
      } finally {
        assert.strictEqual((await w.stop()).code, 0);
      }
    } finally {
      await q.close();
    }
  });

// What a refused start must leave: nothing under the prefix on the master.
async function nothingWritten(prefix) {
  const m = shared.data(shared.master);
  try {
    assert.deepStrictEqual(await m.keys(`${prefix}:*`), []);
  } finally {
    m.disconnect();
  }
}

test('bad Sentinel input: unknown master, no live sentinel, wrong sentinel password: exit 3; malformed: exit 2',
  { timeout: 60000 }, async () => {
    const prefix = 'sentbad';
    const dead = await freePort();
    const cases = [
      [`redis+sentinel://:${DATA_PW}@${shared.list}/nosuchmaster`, shared.env, 3,
        /no sentinel knows a master named 'nosuchmaster' \(sentinel 127\.0\.0\.1:\d+ knows no master/],
      [`redis+sentinel://127.0.0.1:${dead}/mymaster`, shared.env, 3,
        new RegExp(`no sentinel answered for master 'mymaster' \\(sentinel 127\\.0\\.0\\.1:${dead}: Connection refused`)],
      [`redis+sentinel://:${DATA_PW}@${shared.list}/mymaster`, { ...process.env, REDIS_SENTINEL_PASSWORD: 'wrong' }, 3,
        /sentinel 127\.0\.0\.1:\d+ refused AUTH: WRONGPASS/],
      [`redis+sentinel://:${DATA_PW}@${shared.list}/mymaster`, process.env, 3, /NOAUTH.*--sentinel-password/],
      [`redis+sentinel://${shared.list}`, shared.env, 2, /needs the master's name/],
      ['redis+sentinel://127.0.0.1/mymaster', shared.env, 2, /invalid sentinel '127\.0\.0\.1': expected HOST:PORT/],
      ['redis+sentinel://127.0.0.1:99999/mymaster', shared.env, 2, /expected HOST:PORT/],
    ];
    for (const [url, env, code, message] of cases) {
      const r = bullc(['add', 'q', 'x', '{}'], { prefix, redis: url, env });
      assert.strictEqual(r.status, code, `${url}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, new RegExp(SENTINEL_PW));
    }
    // flags: a master's name without sentinels, and sentinels without a name
    const n = bullc(['add', 'q', 'x', '{}', '--sentinel-master', 'mymaster'], { prefix, redis: null });
    assert.strictEqual(n.status, 2, n.stderr);
    assert.match(n.stderr, /--sentinel-master without a sentinel/);
    const s = bullc(['add', 'q', 'x', '{}', '--sentinel', shared.list], { prefix, redis: null });
    assert.strictEqual(s.status, 2, s.stderr);
    assert.match(s.stderr, /without the master's name/);
    // bullc-worker stops at start with the same reason
    const w = startWorker(['--queue', 'q', '--builtin', 'echo', '--sentinel', shared.list, '--sentinel-master',
      'nosuchmaster'], { prefix, redis: null, env: shared.env });
    assert.strictEqual((await w.waitExit(20000)).code, 3, w.text());
    assert.match(w.text(), /no sentinel knows a master named 'nosuchmaster'/);
    await nothingWritten(prefix);
  });

// The producer: 2,000 adds with ids of their own (an add ioredis sends again
// after a reconnection cannot make a second job), ten at a time. Redis
// replicates asynchronously: a batch the master acknowledged may never reach
// the replica before the master is killed, and is then lost by Redis, not by
// bullc (the runs that timed out were missing exactly one batch: 1,990 job
// hashes on the promoted replica, each completed). So after each batch the
// producer asks, on the connection that carried its adds, which server
// answered (its run_id, before and after) and, while that is the first
// master, WAIT 1 (did the replica acknowledge the adds?): the test then knows
// which batches had to survive.
const PRODUCER = major => `
const { Queue } = require(${JSON.stringify(bullmqPackage(major))});
const conn = JSON.parse(process.argv[1]);
const masterId = process.argv[3];
const q = new Queue('fo', { prefix: process.argv[2], connection: conn, streams: { events: { maxLen: 100000 } } });
q.on('error', () => {});
(async () => {
  // 6.x reaches the ioredis client through the backend, 5.x through q.client
  const client = await (q.client || q.getBackend().client);
  const node = async () => /run_id:(\\w+)/.exec(await client.info('server'))[1];
  for (let i = 0; i < 2000; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => q.add('j', { i: i + k }, { jobId: 'j' + (i + k) })));
    const before = await node();
    // the promoted replica has no replica of its own: WAIT would only wait out its timeout there
    const replicas = before === masterId ? await client.wait(1, 1000) : 0;
    console.log('batch ' + i + ' node ' + before + ' replicas ' + replicas + ' node ' + await node());
    if (i % 200 === 0) console.log('added ' + (i + 10));
  }
  console.log('all added');
  await q.close();
})().catch(e => { console.error(e); process.exit(1); });
`;

const runId = async (t, port) => {
  const r = t.data(port);
  try {
    return /run_id:(\w+)/.exec(await r.info('server'))[1];
  } finally {
    r.disconnect();
  }
};

// Two bullc-workers through the sentinels and the Node producer (its own
// connection options `conn`), on a topology of their own.
async function flow(t, major, prefix, conn, masterId) {
  const args = ['--queue', 'fo', '--builtin', 'echo', '--concurrency', '8', '--lock-duration', '2000',
    '--stalled-interval', '1000', '--max-stalled-count', '1000', '--drain-delay', '1',
    '--sentinel-master', 'mymaster', '--bullmq-version', String(major)];
  // the sentinels from the URL, their password from the environment
  const opts = { prefix, redis: `redis+sentinel://:${DATA_PW}@${t.list}/mymaster`, env: t.env };
  const workers = [startWorker(args, opts), startWorker(args, opts)];
  const producer = new Proc(process.execPath, ['-e', PRODUCER(major), JSON.stringify(conn), prefix, masterId],
    { cwd: path.join(__dirname, '..') });
  return { workers, producer };
}

for (const major of [6, 5]) {
  test(`failover (the master killed) while Node BullMQ ${major} adds 2,000 jobs: each completed exactly once`,
    { timeout: 180000 }, async ctx => {
      const t = await topology(`fo${major}`);
      const prefix = `fo${major}`;
      const [masterId, replicaId] = [await runId(t, t.master), await runId(t, t.replica)];
      const { workers, producer } = await flow(t, major, prefix, t.conn, masterId);
      try {
        await producer.waitFor(/added 610/, 60000);
        // the master dies mid-flow: the sentinels promote the replica
        t.procs[t.master].kill('SIGKILL');
        await t.procs[t.master].exited;
        await producer.waitFor(/all added/, 120000);
        await assertExactlyOnce(ctx, t, producer, prefix, masterId, replicaId);
        // the workers lost the master and followed the failover, alive
        for (const w of workers) {
          assert.strictEqual(w.exit, undefined, w.text());
          assert.match(w.text(), new RegExp(`master at 127\\.0\\.0\\.1:${t.master}\\) lost`));
        }
      } finally {
        producer.kill('SIGKILL');
        for (const w of workers) await w.stop();
        for (const p of Object.values(t.procs)) p.kill('SIGKILL');
      }
    });
}

// The builtins' own connections (src/redis_pool.c, bullc_redis_conn) find the master through the
// sentinels and, idle across a SENTINEL FAILOVER, write the next round on the new master.
test('the game-data and notification builtins write through the sentinels and follow a SENTINEL FAILOVER',
  { timeout: 90000 }, async () => {
    const t = await topology('bi');
    const prefix = 'bi';
    const round = n => JSON.stringify({ provider: 'PA', messageType: 'round_result', timestamp: 1000 + n, data: { n } });
    const note = m => JSON.stringify({ userId: 'u1', type: 'info', message: m });
    const add = (q, name, data) => {
      const r = bullc(['add', q, name, data], { prefix, redis: t.url, env: t.env });
      assert.strictEqual(r.status, 0, r.stderr);
    };
    // both on one node, both written by the builtins on it
    const written = async (port, n) => {
      const c = t.data(port);
      try {
        await eventually(async () => (await c.zcard(`${prefix}:g:completed`)) === n &&
          (await c.zcard(`${prefix}:n:completed`)) === n, 15000, `round ${n} done on ${port}`);
        assert.deepStrictEqual(JSON.parse(await c.hget(`${prefix}:g:latest`, 'PA')).data, { n });
        assert.ok((await c.lrange(`${prefix}:n:user:u1`, 0, -1)).some(e => JSON.parse(e).message === `m${n}`),
          `notification m${n} stored on ${port}`);
      } finally {
        c.disconnect();
      }
    };
    const w = await startReady(['--queue', 'g', '--queue', 'n', '--builtin', 'g=game-data', '--builtin',
      'n=notification'], { prefix, redis: t.url, env: t.env });
    const sub = new IORedis({ host: '127.0.0.1', port: t.sentinels[1], password: SENTINEL_PW });
    const s = new IORedis({ host: '127.0.0.1', port: t.sentinels[0], password: SENTINEL_PW });
    try {
      add('g', 'game_data', round(1));
      add('n', 'send-notification', note('m1'));
      await written(t.master, 1);
      const switched = new Promise(resolve => sub.on('message', (ch, msg) => resolve(msg)));
      await sub.subscribe('+switch-master');
      assert.strictEqual(await s.call('SENTINEL', 'failover', 'mymaster'), 'OK');
      const msg = await Promise.race([switched, new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no +switch-master within 30 s')), 30000))]);
      assert.strictEqual(msg, `mymaster 127.0.0.1 ${t.master} 127.0.0.1 ${t.replica}`);
      add('g', 'game_data', round(2));
      add('n', 'send-notification', note('m2'));
      await written(t.replica, 2);
      assert.strictEqual(w.exit, undefined, w.text());
      assert.doesNotMatch(w.text(), new RegExp(`${SENTINEL_PW}|${DATA_PW}`));
    } finally {
      sub.disconnect();
      s.disconnect();
      assert.strictEqual((await w.stop()).code, 0, w.text());
      for (const p of Object.values(t.procs)) p.kill('SIGKILL');
    }
  });

for (const major of [6, 5]) {
  test(`SENTINEL FAILOVER with the old master alive while Node BullMQ ${major} adds 2,000 jobs: bullc-worker ` +
    'follows +switch-master at once, each job completed exactly once', { timeout: 180000 }, async ctx => {
    const t = await topology(`sw${major}`);
    const prefix = `sw${major}`;
    const [masterId, replicaId] = [await runId(t, t.master), await runId(t, t.replica)];
    // Node's producer follows +switch-master as well (ioredis's failoverDetector): without it, its adds
    // go on to the old master until the sentinels demote it, and are lost there
    const { workers, producer } = await flow(t, major, prefix, { ...t.conn, failoverDetector: true }, masterId);
    const sub = new IORedis({ host: '127.0.0.1', port: t.sentinels[1], password: SENTINEL_PW });
    const old = t.data(t.master);
    try {
      await producer.waitFor(/added 610/, 60000);
      const pids = workers.map(w => w.pid);
      assert.ok(connectionsTo(pids, t.master) >= 4, 'the workers work on the master');
      const switched = new Promise(resolve => sub.on('message', (ch, msg) => resolve(msg)));
      await sub.subscribe('+switch-master');
      const s = new IORedis({ host: '127.0.0.1', port: t.sentinels[0], password: SENTINEL_PW });
      try {
        assert.strictEqual(await s.call('SENTINEL', 'failover', 'mymaster'), 'OK');
      } finally {
        s.disconnect();
      }
      const msg = await Promise.race([switched, new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no +switch-master within 30 s')), 30000))]);
      assert.strictEqual(msg, `mymaster 127.0.0.1 ${t.master} 127.0.0.1 ${t.replica}`);
      const at = Date.now();
      // the workers leave the old master while it is still a master (the sentinels demote it, and it
      // drops its clients, seconds later): what they would write there would be lost
      await eventually(async () => connectionsTo(pids, t.master) === 0, 3000,
        'the workers off the old master', 20);
      assert.strictEqual((await old.call('ROLE'))[0], 'master',
        `the old master still a master ${Date.now() - at} ms after +switch-master`);
      ctx.diagnostic(`bullc-workers off the old master within ${Date.now() - at} ms`);
      await eventually(async () => connectionsTo(pids, t.replica) >= 4, 10000, 'the workers on the new master');
      await producer.waitFor(/all added/, 120000);
      await assertExactlyOnce(ctx, t, producer, prefix, masterId, replicaId);
      for (const w of workers) {
        assert.strictEqual(w.exit, undefined, w.text());
        assert.match(w.text(), new RegExp(`master at 127\\.0\\.0\\.1:${t.master}\\) lost: the sentinels moved ` +
          `the master to 127\\.0\\.0\\.1:${t.replica} \\(\\+switch-master\\)`));
      }
    } finally {
      sub.disconnect();
      old.disconnect();
      producer.kill('SIGKILL');
      for (const w of workers) await w.stop();
      for (const p of Object.values(t.procs)) p.kill('SIGKILL');
    }
  });
}

// The check above is for an idle connection only: a producer adding without pause opens no sentinel
// connection (bullc asks over a short-lived one, so the sentinels' connection counts show each ask).
test('a synchronous producer adding without pause does not ask the sentinels', { timeout: 30000 },
  async () => {
    const t = shared;
    const ss = t.sentinels.map(port => new IORedis({ host: '127.0.0.1', port, password: SENTINEL_PW }));
    const conns = async () => {
      let n = 0;
      for (const s of ss) n += Number(/total_connections_received:(\d+)/.exec(await s.info('stats'))[1]);
      return n;
    };
    const add = new Proc(bullcPath(), ['add-bulk', 'q', '--batch', '1', '--prefix', 'busy', '--redis', t.url],
      { env: t.env, stdin: true });
    try {
      add.child.stdin.write('{"name":"first","data":{}}\n');
      await add.waitFor(/^\d+$/, 10000);
      const before = await conns();
      let n = 1;
      for (const end = Date.now() + 2500; Date.now() < end; n++) {
        add.child.stdin.write(`{"name":"busy","data":{"i":${n}}}\n`);
        await new Promise(resolve => setTimeout(resolve, 20));
      }
      await eventually(async () => add.lines.filter(l => /^\d+$/.test(l)).length === n, 10000, `${n} jobs added`, 50);
      assert.strictEqual(await conns() - before, 0, 'no sentinel asked during 2.5 s of adds');
      add.child.stdin.end();
      assert.strictEqual((await add.waitExit(10000)).code, 0, add.text());
    } finally {
      add.kill('SIGKILL');
      for (const s of ss) s.disconnect();
    }
  });

// Last in this file: it moves the shared topology's master.
test('a synchronous producer idle across a SENTINEL FAILOVER adds its next job on the new master, not on the old ' +
  'one still taking writes', { timeout: 60000 }, async () => {
  const t = shared;
  const prefix = 'syncfo';
  const s = new IORedis({ host: '127.0.0.1', port: t.sentinels[0], password: SENTINEL_PW });
  const sub = new IORedis({ host: '127.0.0.1', port: t.sentinels[1], password: SENTINEL_PW });
  // one bullc_queue (a synchronous connection) adding a job per line of its stdin
  const add = new Proc(bullcPath(), ['add-bulk', 'q', '--batch', '1', '--prefix', prefix, '--redis', t.url],
    { env: t.env, stdin: true });
  const nodes = [];
  try {
    add.child.stdin.write('{"name":"before","data":{}}\n');
    const first = await add.waitFor(/^\d+$/, 10000);
    // a synchronous connection asks the sentinels after a second without a reply only: a failover
    // finished within a second of the first add would meet the documented window, not this check
    await new Promise(resolve => setTimeout(resolve, 1100));
    const switched = new Promise(resolve => sub.on('message', (ch, msg) => resolve(msg)));
    await sub.subscribe('+switch-master');
    assert.strictEqual(await s.call('SENTINEL', 'failover', 'mymaster'), 'OK');
    const msg = await Promise.race([switched, new Promise((_, reject) =>
      setTimeout(() => reject(new Error('no +switch-master within 30 s')), 30000))]);
    const [, , oldPort, , newPort] = msg.split(' ').map(Number);
    add.child.stdin.write('{"name":"after","data":{}}\n');
    const second = await add.waitFor(l => /^\d+$/.test(l) && l !== first, 10000);
    const [old, now] = [t.data(oldPort), t.data(newPort)];
    nodes.push(old, now);
    // the old master took writes still: a write there would have been lost when it was demoted
    assert.strictEqual((await old.call('ROLE'))[0], 'master', 'the old master not demoted yet');
    assert.strictEqual(await old.exists(`${prefix}:q:${second}`), 0, 'nothing added on the old master');
    assert.strictEqual(await now.hget(`${prefix}:q:${second}`, 'name'), 'after');
    add.child.stdin.end();
    assert.strictEqual((await add.waitExit(10000)).code, 0, add.text());
  } finally {
    add.kill('SIGKILL');
    for (const c of [s, sub, ...nodes]) c.disconnect();
  }
});
