// SPDX-License-Identifier: MIT
// Redis Cluster (src/cluster.c): three masters of the test's own, each with a
// replica, made with `redis-cli --cluster create --cluster-replicas 1`. bullc
// add and bullc-worker over queues whose hash tags put them on different
// masters, listed by `bullc queues` and `bullc workers` (every master); Node BullMQ over ioredis's
// Cluster client producing for bullc-worker and consuming what bullc adds;
// a queue's slot moved to another master (CLUSTER SETSLOT IMPORTING /
// MIGRATING, MIGRATE, SETSLOT NODE, as `redis-cli --cluster reshard` does)
// while a Node producer adds jobs and bullc-worker processes them: each job
// completed exactly once. The master of a queue's slot killed while jobs
// flow: bullc-workers follow the promoted replica. Bad input: no live seed node (exit 3), a prefix and
// queue without a hash tag (exit 2), nothing written. A TLS-only cluster node
// (--tls-cluster): its seed asked over TLS (rediss+cluster://, --cluster with
// --tls-ca-cert), a plain request to it exit 3. Worker groups (--shared-connections): 20 queues under a
// {bull} prefix on one lane (its connections counted), six tagged queues over the three masters with a
// lane per slot, one master of them killed under a Node producer (every job kept completed once, the lanes
// on the promoted replica); a slot's commands in issue order across a group's MOVED hand-over between two
// command connections (tests/support/aconn_moved.c); a group made on a running loop and a bullc_aqueue_conn
// while a seed node is paused (the loop never held by a slot-map read); `bullc cancel` reaching a group's
// worker through a listener on another master. The
// game-data and notification builtins writing to the masters of their queues' slots, and following one
// moved to another master. bullc_redis_conn routing each command by the keys the server's command
// table names (XREAD ... STREAMS, OBJECT ENCODING, ZUNION: no MOVED), keyless ones, keys of two slots refused.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const IORedis = require('ioredis');
const { bullc, bullmqMajor, bullmqPackage, completedEvents, eventually, nodeBullmq } = require('../lib/harness');
const { Proc, freePort, startReady, startWorker, killAll, tmpDir } = require('../lib/worker-proc');
const { assertExactlyOnce } = require('../lib/failover');
const { certs } = require('../lib/certs');
const { connectionsTo } = require('../lib/tcp');

const dir = tmpDir('cluster');
const major = bullmqMajor();
const version = ['--bullmq-version', String(major)];
let cl;

// Three masters, each with a replica (the failover case promotes one), on
// ports of their own (bus ports too: cluster-port, since port + 10000 may not
// exist for a high free port).
async function cluster() {
  const t = { procs: {}, ports: [], replicaOf: {} };
  const all = [];
  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    const bus = await freePort();
    const d = path.join(dir, String(port));
    fs.mkdirSync(d, { recursive: true });
    const p = new Proc('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', d,
      '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '2000']);
    t.procs[port] = p;
    all.push(port);
  }
  for (const port of all) await t.procs[port].waitFor(/Ready to accept connections/, 10000);
  const r = spawnSync('redis-cli', ['--cluster', 'create', ...all.map(p => `127.0.0.1:${p}`),
    '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 60000 });
  assert.strictEqual(r.status, 0, r.stdout + r.stderr);
  t.node = port => new IORedis({ host: '127.0.0.1', port });
  // ready once every node says ok and knows the three masters, each with its replica
  for (const port of all) {
    const n = t.node(port);
    try {
      await eventually(async () => /cluster_state:ok/.test(await n.cluster('INFO')) &&
        (await n.cluster('SLOTS')).every(s => s.length === 4), 30000, `node ${port} to see the cluster`, 100);
    } finally {
      n.disconnect();
    }
  }
  const n = t.node(all[0]);
  try {
    for (const [, , [, master], [, replica]] of await n.cluster('SLOTS')) {
      t.ports.push(master);
      t.replicaOf[master] = replica;
    }
  } finally {
    n.disconnect();
  }
  t.seeds = t.ports.map(p => `127.0.0.1:${p}`).join(',');
  t.url = `redis+cluster://${t.seeds}`;
  t.startup = t.ports.map(port => ({ host: '127.0.0.1', port }));
  return t;
}

// The port of the master serving `key`'s slot.
async function masterOf(key) {
  const n = cl.node(cl.ports[0]);
  try {
    const slot = await n.cluster('KEYSLOT', key);
    for (const [lo, hi, [, port]] of await n.cluster('SLOTS')) if (slot >= lo && slot <= hi) return port;
    throw new Error(`no master for slot ${slot}`);
  } finally {
    n.disconnect();
  }
}

const runId = async port => {
  const r = cl.node(port);
  try {
    return /run_id:(\w+)/.exec(await r.info('server'))[1];
  } finally {
    r.disconnect();
  }
};

const ioCluster = () => new IORedis.Cluster(cl.startup, { redisOptions: { maxRetriesPerRequest: null } });

before(async () => {
  cl = await cluster();
});
after(async () => {
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('bullc add and one bullc-worker over queues on all three masters; the --cluster flag', { timeout: 60000 },
  async () => {
    const prefix = `cl${major}`;
    // queue names carrying the hash tag, chosen to land on three masters
    const queues = ['{a}', '{b}', '{c}'];
    const homes = await Promise.all(queues.map(q => masterOf(`${prefix}:${q}:wait`)));
    assert.strictEqual(new Set(homes).size, 3, `the queues spread over the masters: ${homes}`);
    for (const [i, q] of queues.entries()) {
      for (let k = 0; k < 5; k++) {
        const r = bullc(['add', q, 'j', JSON.stringify({ q, k }), ...version], { prefix, redis: cl.url });
        assert.strictEqual(r.status, 0, r.stderr);
      }
      // the keys are on the master of the queue's slot, not elsewhere
      const n = cl.node(homes[i]);
      try {
        assert.strictEqual(await n.llen(`${prefix}:${q}:wait`), 5);
      } finally {
        n.disconnect();
      }
    }
    // one seed named by the flag is enough to find every master
    const w = await startReady(['--cluster', `127.0.0.1:${cl.ports[1]}`, ...queues.flatMap(q => ['--queue', q]),
      '--builtin', 'echo', ...version], { prefix, redis: null });
    try {
      for (const [i, q] of queues.entries()) {
        const n = cl.node(homes[i]);
        try {
          await eventually(async () => (await n.zcard(`${prefix}:${q}:completed`)) === 5, 15000, `${q} done`);
        } finally {
          n.disconnect();
        }
      }
      // getters that visit every master: each queue's workers (CLIENT LIST on its own master) ...
      for (const q of queues) {
        const r = bullc(['workers', q, '--json'], { prefix, redis: cl.url });
        assert.strictEqual(r.status, 0, r.stderr);
        assert.ok(JSON.parse(r.stdout).length >= 1, `${q}'s worker listed: ${r.stdout}`);
      }
    } finally {
      assert.strictEqual((await w.stop()).code, 0, w.text());
    }
    // ... and the queues, whose keys are on three masters (SCAN reads one node)
    const l = bullc(['queues', '--json'], { prefix, redis: cl.url });
    assert.strictEqual(l.status, 0, l.stderr);
    assert.deepStrictEqual(JSON.parse(l.stdout), queues);
    // bullc's reads route as well
    const c = bullc(['counts', '{b}', '--json'], { prefix, redis: cl.url });
    assert.strictEqual(c.status, 0, c.stderr);
    assert.strictEqual(JSON.parse(c.stdout).completed, 5);
  });

test('the game-data and notification builtins write to the masters of their queues\' slots', { timeout: 60000 },
  async () => {
    const prefix = `clb${major}`;
    const queues = ['{a}', '{b}', '{c}'];
    const homes = await Promise.all(queues.map(q => masterOf(`${prefix}:${q}:wait`)));
    assert.strictEqual(new Set(homes).size, 3, `the queues spread over the masters: ${homes}`);
    const round = (p, n) => JSON.stringify({ provider: p, messageType: 'round_result', timestamp: 1000 + n, data: { n } });
    for (const [q, name, data] of [['{a}', 'game_data', round('PA', 1)], ['{b}', 'game_data', round('PB', 2)],
      ['{c}', 'send-notification', JSON.stringify({ userId: 'u1', type: 'info', message: 'hi' })]]) {
      const r = bullc(['add', q, name, data, ...version], { prefix, redis: cl.url });
      assert.strictEqual(r.status, 0, r.stderr);
    }
    const w = await startReady([...queues.flatMap(q => ['--queue', q]), '--builtin', '{a}=game-data',
      '--builtin', '{b}=game-data', '--builtin', '{c}=notification', ...version], { prefix, redis: cl.url });
    try {
      for (const [i, q] of queues.entries()) {
        const n = cl.node(homes[i]);
        try {
          await eventually(async () => (await n.zcard(`${prefix}:${q}:completed`)) === 1, 15000, `${q} done`);
          // what each builtin wrote is on its queue's master
          if (q === '{c}') {
            const [entry] = await n.lrange(`${prefix}:{c}:user:u1`, 0, -1);
            assert.strictEqual(JSON.parse(entry).message, 'hi');
          } else {
            const p = q === '{a}' ? 'PA' : 'PB';
            assert.deepStrictEqual(JSON.parse(await n.hget(`${prefix}:${q}:latest`, p)).data, { n: i + 1 });
          }
        } finally {
          n.disconnect();
        }
      }
      // {a}'s slot moved to {b}'s master: game-data's pooled connection follows the MOVED
      const n = cl.node(homes[0]);
      const slot = await n.cluster('KEYSLOT', `${prefix}:{a}:latest`);
      n.disconnect();
      await moveSlot(slot, homes[0], homes[1]);
      const r = bullc(['add', '{a}', 'game_data', round('PA', 3), ...version], { prefix, redis: cl.url });
      assert.strictEqual(r.status, 0, r.stderr);
      const m = cl.node(homes[1]);
      try {
        await eventually(async () => (await m.zcard(`${prefix}:{a}:completed`)) === 2, 15000, 'the moved {a} done');
        assert.deepStrictEqual(JSON.parse(await m.hget(`${prefix}:{a}:latest`, 'PA')).data, { n: 3 });
      } finally {
        m.disconnect();
        await moveSlot(slot, homes[1], homes[0]); // the later cases want {a}, {b}, {c} on three masters
      }
    } finally {
      assert.strictEqual((await w.stop()).code, 0, w.text());
    }
  });

// bullc_redis_conn (bullc-test-redis-command: one connection per run, fresh) routes by the keys
// COMMAND INFO's key specs name, not by argv[1]: no MOVED on any master (INFO errorstats).
test('bullc_redis_conn sends each command to its keys\' master (XREAD ... STREAMS, OBJECT ENCODING, ZUNION), ' +
  'keyless ones to any, keys of two slots nowhere', { timeout: 30000 }, async () => {
  const p = `kr${major}`;
  const errors = async what => {
    let n = 0;
    for (const port of cl.ports) {
      const c = cl.node(port);
      try {
        n += Number((new RegExp(`errorstat_${what}:count=(\\d+)`).exec(await c.info('errorstats')) || [0, 0])[1]);
      } finally {
        c.disconnect();
      }
    }
    return n;
  };
  const run = (...cmds) => {
    const r = spawnSync(path.join(process.env.BULLC_BIN_DIR, 'bullc-test-redis-command'),
      cmds.flatMap((c, i) => (i ? ['--', ...c] : c)), { env: { ...process.env, REDIS_URL: cl.url }, encoding: 'utf8' });
    assert.strictEqual(r.status, 0, r.stderr);
    return r.stdout.trim().split('\n');
  };
  const [moved, crossslot] = [await errors('MOVED'), await errors('CROSSSLOT')];
  const s = `${p}{t}s`;
  const [added] = run(['XADD', s, '*', 'f', 'v']);
  assert.match(added, /^ok \d+-\d+$/);
  const id = added.slice(3);
  assert.deepStrictEqual(run(['XREAD', 'COUNT', '1', 'STREAMS', s, '0'], ['OBJECT', 'ENCODING', s]),
    [`ok [[${s}, [[${id}, [f, v]]]]]`, 'ok stream']);
  const [info, pong] = run(['INFO', 'server'], ['PING']);
  assert.match(info, /^ok # Server .*redis_version:/);
  assert.strictEqual(pong, 'ok PONG');
  run(['ZADD', `${p}{a}x`, '1', 'm'], ['ZADD', `${p}{a}y`, '2', 'n']);
  assert.deepStrictEqual(run(['ZUNION', '2', `${p}{a}x`, `${p}{a}y`]), ['ok [m, n]']);
  // inside MULTI nothing is looked up (a COMMAND INFO would join the transaction)
  assert.deepStrictEqual(run(['WATCH', `${p}{a}x`], ['MULTI'], ['SET', `${p}{a}w`, '1'], ['INCR', `${p}{a}w`], ['EXEC']),
    ['ok OK', 'ok OK', 'ok QUEUED', 'ok QUEUED', 'ok [OK, 2]']);
  assert.strictEqual(await errors('MOVED'), moved, 'no command was redirected');
  const [cross] = run(['MSET', `${p}{a}k`, '1', `${p}{b}k`, '2']);
  assert.match(cross, /^error BULLC_EINVAL keys in different slots/);
  assert.strictEqual(await errors('CROSSSLOT'), crossslot, 'nothing sent');
  // inside MULTI a redirected command is not sent again elsewhere (it would run outside the
  // transaction): its MOVED is the caller's, and EXEC runs nothing
  const [, multi, queued, exec] = run(['GET', `${p}{a}q`], ['MULTI'], ['SET', `${p}{b}m`, '1'], ['EXEC']);
  assert.strictEqual(multi, 'ok OK');
  assert.match(queued, /^error \S+ .*MOVED/);
  assert.match(exec, /^error /);
  for (const k of [`${p}{a}k`, `${p}{b}k`, `${p}{b}m`]) {
    const c = cl.node(await masterOf(k));
    try {
      assert.strictEqual(await c.exists(k), 0);
    } finally {
      c.disconnect();
    }
  }
});

test(`Node BullMQ ${major} over ioredis Cluster ({bull} prefix): its jobs run on bullc-worker, bullc's on a Node Worker`,
  { timeout: 60000 }, async () => {
    const { Queue, Worker } = nodeBullmq(major);
    const prefix = `{bull${major}}`;
    const conn = ioCluster();
    const q = new Queue('nq', { prefix, connection: conn });
    try {
      for (let i = 0; i < 20; i++) await q.add('n', { i });
      const w = await startReady(['--queue', 'nq', '--builtin', 'echo', ...version], { prefix, redis: cl.url });
      try {
        await eventually(async () => (await q.getJobCounts('completed')).completed === 20, 15000, 'the 20 jobs');
        const done = await q.getJobs(['completed']);
        assert.deepStrictEqual(done.map(j => j.returnvalue.i).sort((a, b) => a - b), [...Array(20).keys()]);
      } finally {
        assert.strictEqual((await w.stop()).code, 0, w.text());
      }
      // the other way: bullc adds, a Node Worker over the Cluster client runs them
      for (let i = 0; i < 10; i++) {
        const r = bullc(['add', 'bq', 'b', JSON.stringify({ i }), ...version], { prefix, redis: cl.url });
        assert.strictEqual(r.status, 0, r.stderr);
      }
      const seen = [];
      const wconn = ioCluster();
      const nw = new Worker('bq', async job => {
        seen.push(job.data.i);
        return job.data.i;
      }, { prefix, connection: wconn });
      try {
        await eventually(async () => seen.length === 10, 15000, 'the Node Worker to run bullc\'s 10 jobs');
        // ioredis names the worker's connection on whichever node it sent CLIENT SETNAME to: bullc
        // reads every master's CLIENT LIST and keeps the longest, as Node's getWorkers does
        const bq = new Queue('bq', { prefix, connection: conn });
        try {
          const nodeSide = await bq.getWorkers();
          assert.ok(nodeSide.length >= 1, 'Node sees its worker');
          const r = bullc(['workers', 'bq', '--json'], { prefix, redis: cl.url });
          assert.strictEqual(r.status, 0, r.stderr);
          assert.deepStrictEqual(JSON.parse(r.stdout).map(c => c.name), nodeSide.map(c => c.name));
        } finally {
          await bq.close();
        }
      } finally {
        await nw.close();
        wconn.disconnect();
      }
      assert.deepStrictEqual(seen.sort((a, b) => a - b), [...Array(10).keys()]);
    } finally {
      await q.close();
      conn.disconnect();
    }
  });

test('a flow over two queues of one hash tag: added by bullc flow add, run by bullc-worker, read by Node',
  { timeout: 60000 }, async () => {
    const { Queue } = nodeBullmq(major);
    const prefix = `{flow${major}}`;
    const tree = { name: 'parent', queueName: 'fp', data: { p: 1 },
      children: [{ name: 'c1', queueName: 'fc', data: { c: 1 } }, { name: 'c2', queueName: 'fc', data: { c: 2 } }] };
    const r = bullc(['flow', 'add', '-', ...version], { prefix, redis: cl.url, input: JSON.stringify(tree) });
    assert.strictEqual(r.status, 0, r.stderr);
    // a tree spanning two hash tags is refused before anything is written
    const bad = bullc(['flow', 'add', '-', ...version], { prefix: 'plain', redis: cl.url,
      input: JSON.stringify({ name: 'p', queueName: '{x}', children: [{ name: 'c', queueName: '{y}' }] }) });
    assert.strictEqual(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /a flow's queues must share one hash tag/);
    const w = await startReady(['--queue', 'fp', '--queue', 'fc', '--builtin', 'echo', ...version],
      { prefix, redis: cl.url });
    const conn = ioCluster();
    const q = new Queue('fp', { prefix, connection: conn });
    try {
      await eventually(async () => (await q.getJobCounts('completed')).completed === 1, 15000, 'the parent done');
      const [parent] = await q.getJobs(['completed']);
      const values = await parent.getChildrenValues();
      assert.deepStrictEqual(Object.values(values).map(v => v.c).sort(), [1, 2]);
    } finally {
      await q.close();
      conn.disconnect();
      assert.strictEqual((await w.stop()).code, 0, w.text());
    }
  });

// The TCP connections process `pid` holds to the cluster's nodes.
const nodeConnections = pid => connectionsTo(pid, Object.keys(cl.procs));

// The clients named `name` on each master.
async function named(name) {
  const out = {};
  for (const port of cl.ports) {
    const n = cl.node(port);
    try {
      out[port] = (await n.client('LIST')).split('\n').filter(l => l.includes(` name=${name} `)).length;
    } finally {
      n.disconnect();
    }
  }
  return out;
}

// Node producers add `per` jobs to each queue; all must complete, each started once.
async function produceAndCheck(prefix, queues, per) {
  const { Queue } = nodeBullmq(major);
  const conn = ioCluster();
  const qs = queues.map(name => new Queue(name, { prefix, connection: conn }));
  try {
    await Promise.all(qs.map(q => q.addBulk(Array.from({ length: per }, (_, i) => ({ name: 'j', data: { i } })))));
    await eventually(async () => (await Promise.all(qs.map(q => q.getJobCounts('completed'))))
      .every(c => c.completed === per), 30000, `${queues.length * per} jobs completed`, 200);
    for (const q of qs) {
      const counts = await q.getJobCounts('failed', 'active', 'wait');
      assert.deepStrictEqual(counts, { failed: 0, active: 0, wait: 0 }, q.name);
      const ats = await Promise.all((await q.getJobs(['completed'])).map(j => conn.hget(`${prefix}:${q.name}:${j.id}`,
        'ats')));
      assert.deepStrictEqual([...new Set(ats)], ['1'], `${q.name}: every job started exactly once`);
    }
  } finally {
    await Promise.all(qs.map(q => q.close()));
    conn.disconnect();
  }
}

test('--shared-connections on a cluster: 20 queues under {bull} share one blocking connection; queues of ' +
  'different slots over the three masters get one lane per slot', { timeout: 90000 }, async () => {
  // one hash tag in the prefix: every queue in one slot, one lane (command + blocking connection)
  const prefix = `{bull${major}g}`;
  const queues = Array.from({ length: 20 }, (_, i) => `g${i}`);
  const w = await startReady(['--shared-connections', ...queues.flatMap(q => ['--queue', q]), '--builtin', 'echo',
    ...version], { prefix, redis: cl.url });
  try {
    await produceAndCheck(prefix, queues, 5);
    // two for the lane and one for the cancel channel, where a worker per queue would hold 40
    assert.strictEqual(nodeConnections(w.pid), 3, w.text());
    const blocking = await named('bullc:worker-group');
    assert.strictEqual(Object.values(blocking).reduce((a, b) => a + b, 0), 1, JSON.stringify(blocking));
    assert.strictEqual(blocking[await masterOf(`${prefix}:g0:wait`)], 1);
  } finally {
    assert.strictEqual((await w.stop()).code, 0, w.text());
  }
  // hash tags in the names: six slots over three masters, a lane each, on its slot's master
  const sprefix = `spread${major}`;
  const tagged = ['{a}', '{b}', '{c}', '{d}', '{e}', '{f}'];
  const homes = await Promise.all(tagged.map(q => masterOf(`${sprefix}:${q}:wait`)));
  assert.strictEqual(new Set(homes).size, 3, `the queues spread over the masters: ${homes}`);
  const s = await startReady(['--shared-connections', ...tagged.flatMap(q => ['--queue', q]), '--builtin', 'echo',
    ...version], { prefix: sprefix, redis: cl.url });
  try {
    await produceAndCheck(sprefix, tagged, 10);
    // a blocking connection per slot, a command connection per master, the cancel channel
    assert.strictEqual(nodeConnections(s.pid), tagged.length + 3 + 1, s.text());
    const blocking = await named('bullc:worker-group');
    for (const port of cl.ports) assert.strictEqual(blocking[port], homes.filter(h => h === port).length, port);
  } finally {
    assert.strictEqual((await s.stop()).code, 0, s.text());
  }
});

test('bullc cancel on a cluster: the listener subscribes on one master and hears the PUBLISH made on each ' +
  'queue\'s master; the group\'s worker cancels the job', { timeout: 60000 }, async () => {
  const { Queue } = nodeBullmq(major);
  const prefix = `cc${major}`;
  const tagged = ['{a}', '{b}', '{c}'];
  const homes = await Promise.all(tagged.map(q => masterOf(`${prefix}:${q}:wait`)));
  assert.strictEqual(new Set(homes).size, 3, `the queues spread over the masters: ${homes}`);
  const slow = path.join(dir, 'slow.sh');
  fs.writeFileSync(slow, '#!/bin/sh\ncat >/dev/null\nsleep 30 & wait $!\n', { mode: 0o755 });
  const w = await startReady(['--shared-connections', ...tagged.flatMap(q => ['--queue', q]), '--exec', slow,
    ...version], { prefix, redis: cl.url });
  const conn = ioCluster();
  const qs = tagged.map(name => new Queue(name, { prefix, connection: conn }));
  try {
    const jobs = await Promise.all(qs.map(q => q.add('slow', {})));
    for (const [i, q] of qs.entries()) {
      await eventually(async () => (await q.getJobState(jobs[i].id)) === 'active', 10000, `${q.name}'s job active`);
      const r = bullc(['cancel', q.name, jobs[i].id, '--reason', `stop ${i}`], { prefix, redis: cl.url });
      assert.strictEqual(r.status, 0, r.stderr + w.text());
      assert.match(r.stdout, new RegExp(`^job ${jobs[i].id} cancelled by worker [0-9a-f-]{36}\\n$`));
      await eventually(async () => (await q.getJobState(jobs[i].id)) === 'failed', 10000, `${q.name}'s job failed`);
      assert.strictEqual((await q.getJob(jobs[i].id)).failedReason, `stop ${i}`);
    }
  } finally {
    await Promise.all(qs.map(q => q.close()));
    conn.disconnect();
    assert.strictEqual((await w.stop()).code, 0, w.text());
  }
});

// Moves `slot` from the master on `from` to the one on `to` as redis-cli's
// reshard does, in batches of 10 keys with a pause between them so that the
// migration overlaps the traffic.
async function moveSlot(slot, from, to) {
  const src = cl.node(from);
  const dst = cl.node(to);
  const others = cl.ports.filter(p => p !== from && p !== to).map(p => cl.node(p));
  try {
    const srcId = await src.cluster('MYID');
    const dstId = await dst.cluster('MYID');
    await dst.cluster('SETSLOT', slot, 'IMPORTING', srcId);
    await src.cluster('SETSLOT', slot, 'MIGRATING', dstId);
    for (;;) {
      const keys = await src.cluster('GETKEYSINSLOT', slot, 10);
      if (!keys.length) break;
      await src.call('MIGRATE', '127.0.0.1', to, '', 0, 5000, 'REPLACE', 'KEYS', ...keys);
      await new Promise(r => setTimeout(r, 20));
    }
    await dst.cluster('SETSLOT', slot, 'NODE', dstId);
    await src.cluster('SETSLOT', slot, 'NODE', dstId);
    for (const o of others) await o.cluster('SETSLOT', slot, 'NODE', dstId);
  } finally {
    for (const c of [src, dst, ...others]) c.disconnect();
  }
}

const PRODUCER = `
const IORedis = require('ioredis');
const { Queue } = require(process.argv[3]);
// ioredis gives up after 16 redirections by default: a migration's ASK /
// TRYAGAIN / MOVED rounds can take more
const conn = new IORedis.Cluster(JSON.parse(process.argv[1]), { redisOptions: { maxRetriesPerRequest: null },
  maxRedirections: 1000, retryDelayOnTryAgain: 20, retryDelayOnMoved: 10 });
const q = new Queue('{mv}', { prefix: process.argv[2], connection: conn });
q.on('error', () => {});
(async () => {
  for (let i = 0; i < 1000; i += 10) {
    await Promise.all(Array.from({ length: 10 }, (_, k) => q.add('j', { i: i + k }, { jobId: 'j' + (i + k) })));
    if (i % 100 === 0) console.log('added ' + (i + 10));
    await new Promise(r => setTimeout(r, 5));
  }
  console.log('all added');
  await q.close();
  conn.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
`;

test('the queue\'s slot moved to another master while jobs flow: each of 1,000 jobs completed exactly once',
  { timeout: 180000 }, async () => {
    const prefix = `mv${major}`;
    const key = `${prefix}:{mv}:wait`;
    const from = await masterOf(key);
    const to = cl.ports.find(p => p !== from);
    const n = cl.node(cl.ports[0]);
    const slot = await n.cluster('KEYSLOT', key);
    n.disconnect();
    const w = await startReady(['--queue', '{mv}', '--builtin', 'echo', '--concurrency', '8', ...version],
      { prefix, redis: cl.url });
    const producer = new Proc(process.execPath, ['-e', PRODUCER, JSON.stringify(cl.startup), prefix,
      bullmqPackage(major)], { cwd: path.join(__dirname, '..') });
    try {
      await producer.waitFor(/added 310/, 60000);
      await moveSlot(slot, from, to);
      assert.strictEqual(await masterOf(key), to, 'the slot moved');
      await producer.waitFor(/all added/, 60000);
      const m = cl.node(to);
      try {
        await eventually(async () => (await m.zcard(`${prefix}:{mv}:completed`)) === 1000, 60000,
          'all 1,000 jobs completed on the new master', 200);
        assert.strictEqual(await m.zcard(`${prefix}:{mv}:failed`), 0);
        // once each: every job was started once (ats) and completed once
        const pipe = m.pipeline();
        for (let i = 0; i < 1000; i++) pipe.hget(`${prefix}:{mv}:j${i}`, 'ats');
        const ats = (await pipe.exec()).map(([, v]) => v);
        assert.deepStrictEqual([...new Set(ats)], ['1'], 'every job started exactly once');
        const completed = w.lines.filter(l => /\bcompleted\b/.test(l)).map(l => /id=(\S+)/.exec(l)[1]);
        assert.strictEqual(completed.length, 1000, 'bullc-worker reported 1,000 completions');
        assert.strictEqual(new Set(completed).size, 1000, 'no job completed twice');
      } finally {
        m.disconnect();
      }
      // nothing left on the old master
      const o = cl.node(from);
      try {
        assert.deepStrictEqual(await o.cluster('GETKEYSINSLOT', slot, 10), []);
      } finally {
        o.disconnect();
      }
    } catch (err) {
      err.message += `\nproducer: ${producer.text()}`;
      console.error("PRIMARY", err);
      throw err;
    } finally {
      await producer.stop();
      const stopped = await w.stop();
      // eslint-disable-next-line no-unsafe-finally
      if (stopped.code !== 0) throw new Error(`bullc-worker ended ${JSON.stringify(stopped)}:\n${w.text()}`);
    }
  });

const GROUP_PRODUCER = `
const IORedis = require('ioredis');
const { Queue } = require(process.argv[3]);
const conn = new IORedis.Cluster(JSON.parse(process.argv[1]), { redisOptions: { maxRetriesPerRequest: null },
  maxRedirections: 1000, retryDelayOnTryAgain: 20, retryDelayOnMoved: 10 });
const qs = JSON.parse(process.argv[4]).map(n => new Queue(n, { prefix: process.argv[2], connection: conn }));
for (const q of qs) q.on('error', () => {});
(async () => {
  for (let i = 0; i < 150; i++) {
    await Promise.all(qs.map(q => q.add('j', { i }, { jobId: 'j' + i })));
    if (i % 10 === 9) console.log('round ' + (i + 1));
    await new Promise(r => setTimeout(r, 10));
  }
  console.log('all added');
  await Promise.all(qs.map(q => q.close()));
  conn.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
`;

test('--shared-connections: a slot of the group moved to another master and back while jobs flow; each job ' +
  'completed once, one command connection per master', { timeout: 120000 }, async () => {
  const prefix = `mvg${major}`;
  const tagged = ['{a}', '{b}', '{c}', '{d}', '{e}', '{f}'];
  const homes = await Promise.all(tagged.map(q => masterOf(`${prefix}:${q}:wait`)));
  assert.strictEqual(new Set(homes).size, 3, `the queues spread over the masters: ${homes}`);
  const from = homes[0];
  const to = homes.find(h => h !== from); // a master holding another lane's slot
  const n = cl.node(cl.ports[0]);
  const slot = await n.cluster('KEYSLOT', `${prefix}:{a}:wait`);
  n.disconnect();
  const w = await startReady(['--shared-connections', ...tagged.flatMap(q => ['--queue', q]), '--builtin', 'echo',
    '--concurrency', '4', ...version], { prefix, redis: cl.url });
  const producer = new Proc(process.execPath, ['-e', GROUP_PRODUCER, JSON.stringify(cl.startup), prefix,
    bullmqPackage(major), JSON.stringify(tagged)], { cwd: path.join(__dirname, '..') });
  const { Queue } = nodeBullmq(major);
  const conn = ioCluster();
  const qs = tagged.map(name => new Queue(name, { prefix, connection: conn }));
  try {
    await producer.waitFor(/round 30\b/, 60000);
    await moveSlot(slot, from, to);
    assert.strictEqual(await masterOf(`${prefix}:{a}:wait`), to, 'the slot moved');
    await producer.waitFor(/round 90\b/, 60000);
    await moveSlot(slot, to, from);
    assert.strictEqual(await masterOf(`${prefix}:{a}:wait`), from, 'the slot moved back');
    await producer.waitFor(/all added/, 60000);
    await eventually(async () => (await Promise.all(qs.map(q => q.getJobCounts('completed'))))
      .every(c => c.completed === 150), 60000, 'every job completed', 200);
    for (const q of qs) {
      assert.deepStrictEqual(await q.getJobCounts('failed', 'active', 'wait'), { failed: 0, active: 0, wait: 0 },
        q.name);
      const ats = await Promise.all(Array.from({ length: 150 }, (_, i) => conn.hget(`${prefix}:${q.name}:j${i}`,
        'ats')));
      assert.deepStrictEqual([...new Set(ats)], ['1'], `${q.name}: every job started exactly once`);
    }
    const completed = w.lines.filter(l => /\bcompleted\b/.test(l)).map(l => /id=(\S+)/.exec(l)[1]);
    assert.strictEqual(completed.length, 900, 'bullc-worker reported 900 completions');
    // a blocking connection per slot, a command connection per master (the
    // one the slot left stays), the cancel channel
    assert.strictEqual(nodeConnections(w.pid), tagged.length + 3 + 1, w.text());
  } catch (err) {
    err.message += `\nproducer: ${producer.text()}\nworker: ${w.text()}`;
    throw err;
  } finally {
    await producer.stop();
    await Promise.all(qs.map(q => q.close()));
    conn.disconnect();
    const stopped = await w.stop();
    // eslint-disable-next-line no-unsafe-finally
    if (stopped.code !== 0) throw new Error(`bullc-worker ended ${JSON.stringify(stopped)}:\n${w.text()}`);
  }
});

// A worker group's command connections hand a moved slot's commands over
// (aconn's on_moved): the older ones, answered MOVED one by one on the old
// master's connection, still run before newer ones sent straight to the new
// master's (tests/support/aconn_moved.c holds the old master's replies back
// with a WAIT while a newer command is sent).
test('a slot\'s commands keep their issue order across a MOVED hand-over between two command connections',
  { timeout: 30000 }, async () => {
  const key = `mvo${major}:{order}:list`;
  const from = await masterOf(key);
  const to = cl.ports.find(p => p !== from);
  const n = cl.node(cl.ports[0]);
  const slot = await n.cluster('KEYSLOT', key);
  n.disconnect();
  await moveSlot(slot, from, to);
  try {
    const r = spawnSync(path.join(process.env.BULLC_BIN_DIR, 'bullc-test-aconn-moved'),
      [String(cl.ports[0]), String(from), String(to), key], { encoding: 'utf8', timeout: 20000 });
    assert.strictEqual(r.status, 0, `exit ${r.status} ${r.signal || ''}: ${r.stderr}`);
    assert.strictEqual(r.stdout.trim(), '1 2 3 4 5 6 7 8 9 10 11', 'run on the new master in issue order');
  } finally {
    await moveSlot(slot, to, from);
  }
});

test('a TLS-only cluster: bullc add (rediss+cluster://) and bullc-worker (--cluster --tls-ca-cert) ask the seed ' +
  'over TLS; a plain request to it exits 3', { timeout: 60000 }, async () => {
  const tdir = path.join(dir, 'tls');
  fs.mkdirSync(tdir, { recursive: true });
  const { f, cert } = certs(tdir);
  cert('ca', 'bullc test CA');
  cert('server', 'localhost', { ca: 'ca', san: 'DNS:localhost,IP:127.0.0.1' });
  // one node holding every slot: a cluster with no plain port at all
  const port = await freePort();
  const bus = await freePort();
  const p = new Proc('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'),
    '--tls-auth-clients', 'no', '--tls-cluster', 'yes', '--tls-replication', 'yes', '--save', '', '--dir', tdir,
    '--cluster-enabled', 'yes', '--cluster-port', String(bus), '--cluster-config-file', 'nodes.conf']);
  await p.waitFor(/Ready to accept connections/, 10000);
  const n = new IORedis({ host: '127.0.0.1', port,
    tls: { ca: fs.readFileSync(f('ca.crt')), servername: 'localhost' } });
  try {
    await n.cluster('ADDSLOTSRANGE', '0', '16383');
    await eventually(async () => /cluster_state:ok/.test(await n.cluster('INFO')), 10000, 'the TLS cluster up', 100);
    const prefix = `cltls${major}`;
    const tls = ['--tls-ca-cert', f('ca.crt')];
    const r = bullc(['add', '{t}', 'j', '{"x":1}', ...tls, ...version],
      { prefix, redis: `rediss+cluster://127.0.0.1:${port}` });
    assert.strictEqual(r.status, 0, r.stderr);
    const w = await startReady(['--cluster', `127.0.0.1:${port}`, ...tls, '--queue', '{t}', '--builtin', 'echo',
      ...version], { prefix, redis: null });
    try {
      await eventually(async () => (await n.zcard(`${prefix}:{t}:completed`)) === 1, 15000, 'the job done over TLS');
    } finally {
      assert.strictEqual((await w.stop()).code, 0, w.text());
    }
    // the seed closes a plain request: exit 3, with the hint, nothing written
    const plain = bullc(['add', '{t}', 'j', '{}', ...version], { prefix, redis: `redis+cluster://127.0.0.1:${port}` });
    assert.strictEqual(plain.status, 3, plain.stderr);
    assert.match(plain.stderr,
      /no seed node gave the master of slot \d+ \(node 127\.0\.0\.1:\d+: .*a TLS port\? use rediss\+cluster:\/\//);
    assert.strictEqual(await n.llen(`${prefix}:{t}:wait`), 0);
    assert.strictEqual(await n.zcard(`${prefix}:{t}:completed`), 1);
  } finally {
    n.disconnect();
    p.kill();
  }
});

test('bad cluster input: no live seed node exits 3, no hash tag exits 2, a malformed URL exits 2; nothing written',
  { timeout: 60000 }, async () => {
    const prefix = `clbad${major}`;
    const dead = await freePort();
    const cases = [
      [`redis+cluster://127.0.0.1:${dead}`, 'q{t}', 3,
        new RegExp(`Redis Cluster: no seed node gave the master of slot \\d+ \\(node 127\\.0\\.0\\.1:${dead}: Connection refused`)],
      [cl.url, 'untagged', 2, /Redis Cluster needs a hash-tagged prefix such as "\{bull\}"/],
      ['redis+cluster://127.0.0.1', 'q{t}', 2, /invalid cluster node '127\.0\.0\.1': expected HOST:PORT/],
      [`${cl.url}/3`, 'q{t}', 2, /takes no database/],
    ];
    for (const [url, q, code, message] of cases) {
      const r = bullc(['add', q, 'x', '{}'], { prefix, redis: url });
      assert.strictEqual(r.status, code, `${url}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    // bullc-worker stops at start with the same reasons
    for (const [args, code, message] of [
      [['--cluster', `127.0.0.1:${dead}`, '--queue', 'q{t}'], 3, /no seed node gave the master/],
      [['--cluster', cl.seeds, '--queue', 'untagged'], 2, /needs a hash-tagged prefix/],
      [['--cluster', cl.seeds, '--sentinel', cl.seeds, '--queue', 'q{t}'], 2, /do not go together/],
      // a worker group's queue too
      [['--cluster', cl.seeds, '--queue', 'untagged', '--queue', 'q{t}', '--global-concurrency', '4'], 2,
        /needs a hash-tagged prefix/],
    ]) {
      const w = startWorker([...args, '--builtin', 'echo'], { prefix, redis: null });
      assert.strictEqual((await w.waitExit(20000)).code, code, w.text());
      // the exit may be seen before the last of its output is read
      await eventually(async () => message.test(w.text()), 2000, `${message} in: ${w.text()}`);
    }
    for (const port of cl.ports) {
      const n = cl.node(port);
      try {
        assert.deepStrictEqual(await n.keys(`${prefix}:*`), [], `nothing written on ${port}`);
      } finally {
        n.disconnect();
      }
    }
  });

// The failover producers (FO_PRODUCER: 2,000 adds with ids of their own, ten
// at a time; KG_PRODUCER below), over ioredis's Cluster client. Replication is asynchronous, as with
// Sentinel (compat-tests/test/sentinel.test.js): after each batch it asks the
// connection to the slot's master which server answered (run_id, before and
// after) and, while that is the first master, WAIT 1, so that the test knows
// which batches had to survive.
const FAILOVER_CLIENT = `
const IORedis = require('ioredis');
const { Queue } = require(process.argv[3]);
const masterId = process.argv[4];
const mk = () => new IORedis.Cluster(JSON.parse(process.argv[1]), { redisOptions: { maxRetriesPerRequest: null },
  maxRedirections: 1000, retryDelayOnClusterDown: 100, retryDelayOnFailover: 100 });
let conn = mk();
// what was made on conn, made again on a new one (see retry)
const renew = [];
let renewedAt = Date.now();
const renewConn = () => {
  const old = conn;
  conn = mk();
  renewedAt = Date.now();
  for (const f of renew) f();
  old.disconnect();
};
const slot = Number(process.argv[5]);
// the connection the cluster client sends the slot's commands on
const master = () => conn.connectionPool.getInstanceByKey(conn.slots[slot][0]);
// the killed master's connection fails until the client has the new slot map: ask again. A command
// sent to the dead node's connection before the map changed never fails (maxRetriesPerRequest: null
// queues it for a reconnect that never comes): it is given up after 2 s, as a failure
const within = (p, ms) => Promise.race([p, new Promise((_, reject) =>
  setTimeout(() => reject(new Error('no answer within ' + ms + ' ms')), ms).unref())]);
// ioredis's cluster client has been seen to keep a killed master's slots for over 60 s (every
// add given up, under load): after 10 s of failures a new client reads the slot map afresh
let failingSince = 0;
const retry = async f => {
  for (;;) {
    try {
      const r = await within(f(), 2000);
      failingSince = 0;
      return r;
    } catch {
      const now = Date.now();
      if (!failingSince) failingSince = now;
      else if (now - failingSince > 10000 && now - renewedAt > 10000) {
        console.error('a new cluster client after ' + (now - failingSince) + ' ms of failures');
        renewConn();
      }
      await new Promise(r => setTimeout(r, 100));
    }
  }
};
const node = () => retry(async () => /run_id:(\\w+)/.exec(await master().info('server'))[1]);
const report = async i => {
  const before = await node();
  const replicas = before === masterId ? await within(master().wait(1, 1000), 2000).catch(() => 0) : 0;
  console.log('batch ' + i + ' node ' + before + ' replicas ' + replicas + ' node ' + await node());
};
`;

const FO_PRODUCER = `${FAILOVER_CLIENT}
const mkQueue = () => {
  const q = new Queue('{fo}', { prefix: process.argv[2], connection: conn, streams: { events: { maxLen: 100000 } } });
  q.on('error', () => {});
  return q;
};
let q = mkQueue();
renew.push(() => { q = mkQueue(); });
(async () => {
  for (let i = 0; i < 2000; i += 10) {
    // an add on the killed master's connection hangs as INFO there does: asked again (same jobId: once)
    await Promise.all(Array.from({ length: 10 }, (_, k) => retry(() => q.add('j', { i: i + k }, { jobId: 'j' + (i + k) }))));
    await report(i);
    if (i % 200 === 0) console.log('added ' + (i + 10));
  }
  console.log('all added');
  await q.close();
  conn.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
`;

test('the slot map read on the loop: a worker group made on a running loop, and a connection set whose only ' +
  'seed is paused at start, never hold the loop while a seed is paused (SIGSTOP)', { timeout: 60000 }, async ctx => {
  const prefix = `lp${major}`;
  const tagged = ['{a}', '{b}', '{c}', '{d}', '{e}', '{f}'];
  const paused = cl.replicaOf[cl.ports[1]]; // a replica: its pause fails nothing over
  const { Queue } = nodeBullmq(major);
  const conn = ioCluster();
  const qs = tagged.map(name => new Queue(name, { prefix, connection: conn }));
  // paused before the program starts: a quick start would read the map from it first
  cl.procs[paused].kill('SIGSTOP');
  let p;
  try {
    p = new Proc(path.join(process.env.BULLC_BIN_DIR, 'bullc-test-cluster-loop'),
      [`redis+cluster://127.0.0.1:${paused},${cl.seeds}`, `redis+cluster://127.0.0.1:${paused}`, prefix, '60', ...tagged]);
    await p.waitFor(/^started$/, 10000);
    await Promise.all(qs.map(q => q.addBulk(Array.from({ length: 10 }, (_, i) => ({ name: 'j', data: { i } })))));
    // the group's map came from the next seed; the set's waits for this one
    await p.waitFor(/^completed 60$/, 15000);
    assert.doesNotMatch(p.text(), /counts ok/);
    cl.procs[paused].kill('SIGCONT');
    await p.waitFor(/^counts ok$/, 15000);
    const { code } = await p.exited;
    assert.strictEqual(code, 0, p.text());
    // a blocking read would have held it for the command timeout (1 s)
    const gap = Number(/max gap (\d+) ms/.exec(p.text())[1]);
    assert.ok(gap < 300, `the loop was held ${gap} ms:\n${p.text()}`);
    ctx.diagnostic(`the loop was held ${gap} ms at most`);
  } finally {
    cl.procs[paused].kill('SIGCONT');
    if (p) p.kill('SIGKILL');
    await Promise.all(qs.map(q => q.close()));
    conn.disconnect();
  }
});

// The group failover's producer: 20 batches of ten jobs on each of the
// group's queues, reporting after each batch, as FO_PRODUCER does, on the
// connection to the master of the killed one's first queue.
const KG_PRODUCER = `${FAILOVER_CLIENT}
const mkQueues = () => JSON.parse(process.argv[6]).map(n => {
  const q = new Queue(n, { prefix: process.argv[2], connection: conn });
  q.on('error', () => {});
  return q;
});
let qs = mkQueues();
renew.push(() => { qs = mkQueues(); });
(async () => {
  for (let i = 0; i < 200; i += 10) {
    // qs[n] read at each try: a retry may have made the queues again on a new client
    await Promise.all(qs.flatMap((_, n) => Array.from({ length: 10 }, (_, k) => retry(() => qs[n].add('j', { i: i + k },
      { jobId: 'j' + (i + k) })))));
    await report(i);
  }
  console.log('all added');
  await Promise.all(qs.map(q => q.close()));
  conn.disconnect();
})().catch(e => { console.error(e); process.exit(1); });
`;

test('--shared-connections: a master of the group\'s queues killed while Node BullMQ adds 1,200 jobs over six ' +
  'queues; the group follows the promoted replica, each job kept completed exactly once', { timeout: 120000 },
async ctx => {
  const prefix = `kg${major}`;
  const tagged = ['{a}', '{b}', '{c}', '{d}', '{e}', '{f}'];
  const homes = await Promise.all(tagged.map(q => masterOf(`${prefix}:${q}:wait`)));
  assert.strictEqual(new Set(homes).size, 3, `the queues spread over the masters: ${homes}`);
  // not the master masterOf() asks, nor the one the next case kills (it needs its replica)
  const fo = await masterOf(`fo${major}:{fo}:wait`);
  const victim = cl.ports.find(p => p !== cl.ports[0] && p !== fo);
  const lost = tagged.filter((q, i) => homes[i] === victim);
  const kept = tagged.filter((q, i) => homes[i] !== victim);
  const replica = cl.replicaOf[victim];
  const n = cl.node(victim);
  const slot = await n.cluster('KEYSLOT', `${prefix}:${lost[0]}:wait`);
  n.disconnect();
  const [victimId, replicaId] = [await runId(victim), await runId(replica)];
  const w = await startReady(['--shared-connections', ...tagged.flatMap(q => ['--queue', q]), '--builtin', 'echo',
    '--concurrency', '8', '--lock-duration', '2000', '--stalled-interval', '1000', '--max-stalled-count', '1000',
    '--drain-delay', '1', ...version], { prefix, redis: cl.url });
  const producer = new Proc(process.execPath, ['-e', KG_PRODUCER, JSON.stringify(cl.startup), prefix,
    bullmqPackage(major), victimId, String(slot), JSON.stringify(tagged)], { cwd: path.join(__dirname, '..') });
  try {
    await producer.waitFor(/batch 60 /, 60000);
    cl.procs[victim].kill('SIGKILL');
    await cl.procs[victim].exited;
    await producer.waitFor(/all added/, 60000);
    for (const q of lost)
      await assertExactlyOnce(ctx, { data: cl.node, replica }, producer, prefix, victimId, replicaId, q, 20);
    // the queues on the masters left alive: every job, none lost
    for (const q of kept) {
      const m = cl.node(homes[tagged.indexOf(q)]);
      try {
        await eventually(async () => (await m.zcard(`${prefix}:${q}:completed`)) === 200, 30000, `${q} completed`, 200);
        assert.strictEqual(await m.zcard(`${prefix}:${q}:failed`), 0, q);
        const completed = await completedEvents(m, prefix, q);
        assert.deepStrictEqual([...completed].filter(([, c]) => c !== 1), [], `${q}: every job completed once`);
        assert.strictEqual(completed.size, 200, q);
      } finally {
        m.disconnect();
      }
    }
    // the lanes of the killed master's slots block on the promoted replica (once their
    // reconnection's backoff, begun while the map still named the killed master, is over)
    const r = cl.node(replica);
    try {
      let names = [];
      await eventually(async () => {
        names = (await r.client('LIST')).split('\n').filter(l => l.includes(' name=bullc:worker-group '));
        return names.length === new Set(lost).size;
      }, 20000, 'the lanes on the promoted replica', 200).catch(err => {
        err.message += `: ${names.length} of ${new Set(lost).size}\n${names.join('\n')}`;
        throw err;
      });
    } finally {
      r.disconnect();
    }
    assert.strictEqual(w.exit, undefined, w.text());
  } catch (err) {
    err.message += `\nproducer: ${producer.text()}\nworker: ${w.text()}`;
    throw err;
  } finally {
    producer.kill('SIGKILL');
    const stopped = await w.stop();
    // eslint-disable-next-line no-unsafe-finally
    if (stopped.code !== 0) throw new Error(`bullc-worker ended ${JSON.stringify(stopped)}:\n${w.text()}`);
  }
});

test('the master of the queue\'s slot killed while Node BullMQ adds 2,000 jobs: bullc-worker follows the ' +
  'promoted replica, each job kept completed exactly once', { timeout: 180000 }, async ctx => {
  const prefix = `fo${major}`;
  const key = `${prefix}:{fo}:wait`;
  const master = await masterOf(key);
  const replica = cl.replicaOf[master];
  const n = cl.node(master);
  const slot = await n.cluster('KEYSLOT', key);
  n.disconnect();
  const [masterId, replicaId] = [await runId(master), await runId(replica)];
  const args = ['--queue', '{fo}', '--builtin', 'echo', '--concurrency', '8', '--lock-duration', '2000',
    '--stalled-interval', '1000', '--max-stalled-count', '1000', '--drain-delay', '1', ...version];
  const workers = [await startReady(args, { prefix, redis: cl.url }), await startReady(args, { prefix, redis: cl.url })];
  const producer = new Proc(process.execPath, ['-e', FO_PRODUCER, JSON.stringify(cl.startup), prefix,
    bullmqPackage(major), masterId, String(slot)], { cwd: path.join(__dirname, '..') });
  try {
    await producer.waitFor(/added 610/, 60000);
    cl.procs[master].kill('SIGKILL');
    await cl.procs[master].exited;
    await producer.waitFor(/all added/, 120000);
    await assertExactlyOnce(ctx, { data: cl.node, replica }, producer, prefix, masterId, replicaId, '{fo}');
    // the workers lost the master and came back once the replica took its slot, alive
    for (const w of workers) {
      assert.strictEqual(w.exit, undefined, w.text());
      assert.match(w.text(), new RegExp(`slot ${slot} at 127\\.0\\.0\\.1:${master}\\) lost`));
      // (one worker may have served the last jobs while the other's backoff ran)
      await w.waitFor(/reconnected queue=\{fo\}/, 30000);
    }
  } catch (err) {
    err.message += `\nproducer: ${producer.text()}\nworker: ${workers[0].text()}`;
    throw err;
  } finally {
    producer.kill('SIGKILL');
    for (const w of workers) await w.stop();
  }
});
