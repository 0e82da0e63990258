// SPDX-License-Identifier: MIT
// Sentinel over TLS (src/sentinel.c, the +switch-master subscription in
// src/aconn.c): a master, a replica and a sentinel of the test's own that
// speak TLS only (--port 0, tls-replication), with certificates made here.
// bullc (a rediss+sentinel:// URL, or --sentinel-tls with the TLS flags) and
// Node BullMQ 6.7.0 and 5.81.5 (ioredis's sentinelTLS and
// enableTLSForSentinelMode) find the master through it, jobs go both ways;
// bullc-worker follows a SENTINEL FAILOVER announced over TLS; a plain client
// at the TLS sentinel, TLS at a plain port and a wrong CA exit 3, nothing
// written.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const IORedis = require('ioredis');
const { bullc, eventually, nodeBullmq } = require('../lib/harness');
const { Proc, freePort, startReady, killAll, tmpDir } = require('../lib/worker-proc');
const { certs } = require('../lib/certs');

const dir = tmpDir('sentinel-tls');
const { f, cert } = certs(dir);
const t = { procs: {} };

// TLS settings of the data nodes and the sentinel (redis-server flags)
const tlsArgs = () => ['--tls-cert-file', f('server.crt'), '--tls-key-file', f('server.key'),
  '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no', '--tls-replication', 'yes'];
const tlsOpts = () => ({ ca: fs.readFileSync(f('ca.crt')) });
const data = port => new IORedis({ host: '127.0.0.1', port, tls: tlsOpts() });

before(async () => {
  cert('ca', 'bullc test CA');
  cert('otherca', 'another CA');
  cert('server', 'localhost', { ca: 'ca', san: 'DNS:localhost,IP:127.0.0.1' });
  const node = async (name, extra) => {
    const port = await freePort();
    const p = new Proc('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
      '--save', '', '--dir', dir, '--dbfilename', `${name}.rdb`, ...tlsArgs(), ...extra]);
    await p.waitFor(/Ready to accept connections/, 10000);
    t.procs[port] = p;
    return port;
  };
  t.master = await node('master', ['--repl-diskless-sync-delay', '0']);
  t.replica = await node('replica', ['--replicaof', '127.0.0.1', String(t.master)]);
  const r = data(t.replica);
  try {
    await eventually(async () => /master_link_status:up/.test(await r.info('replication')), 30000,
      'the replica in sync', 100);
  } finally {
    r.disconnect();
  }
  t.sentinel = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  fs.writeFileSync(conf, ['port 0', `tls-port ${t.sentinel}`, 'bind 127.0.0.1', `dir ${dir}`,
    `tls-cert-file ${f('server.crt')}`, `tls-key-file ${f('server.key')}`, `tls-ca-cert-file ${f('ca.crt')}`,
    'tls-auth-clients no', 'tls-replication yes', `sentinel monitor mymaster 127.0.0.1 ${t.master} 1`,
    'sentinel down-after-milliseconds mymaster 1000', 'sentinel failover-timeout mymaster 5000', ''].join('\n'));
  const p = new Proc('redis-server', [conf, '--sentinel']);
  await p.waitFor(/Sentinel ID is/, 10000);
  t.procs[t.sentinel] = p;
  const s = new IORedis({ host: '127.0.0.1', port: t.sentinel, tls: tlsOpts() });
  try {
    await eventually(async () => (await s.call('SENTINEL', 'replicas', 'mymaster')).length === 1, 30000,
      'the sentinel to see the replica', 200);
  } finally {
    s.disconnect();
  }
});

after(async () => {
  await killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ioredis through the TLS sentinel to the TLS master
const nodeConn = () => ({ sentinels: [{ host: '127.0.0.1', port: t.sentinel }], name: 'mymaster',
  sentinelTLS: tlsOpts(), enableTLSForSentinelMode: true, tls: tlsOpts(), maxRetriesPerRequest: null });
const flags = () => ['--sentinel', `127.0.0.1:${t.sentinel}`, '--sentinel-master', 'mymaster', '--sentinel-tls',
  '--tls-ca-cert', f('ca.crt')];
const url = () => `rediss+sentinel://127.0.0.1:${t.sentinel}/mymaster`;

for (const major of [6, 5]) {
  test(`bullc and Node BullMQ ${major} find the master through a TLS sentinel, jobs both ways`, { timeout: 60000 },
    async () => {
      const { Queue, Worker } = nodeBullmq(major);
      const prefix = `stls${major}`;
      const q = new Queue('q', { prefix, connection: nodeConn() });
      try {
        await q.add('from-node', { by: 'node' });
        // the URL (TLS to the sentinel and to the master), and the flags
        const u = bullc(['add', 'q', 'from-url', '{"by":"url"}', '--tls-ca-cert', f('ca.crt')], { prefix, redis: url() });
        assert.strictEqual(u.status, 0, u.stderr);
        const fl = bullc(['add', 'q', 'from-flags', '{"by":"flags"}', ...flags()], { prefix, redis: null,
          env: { ...process.env, REDIS_URL: '' } });
        assert.strictEqual(fl.status, 0, fl.stderr);
        const bw = await startReady(['--queue', 'q', '--builtin', 'echo', '--bullmq-version', String(major),
          ...flags()], { prefix, redis: null, env: { ...process.env, REDIS_URL: '' } });
        try {
          await eventually(async () => (await q.getJobCounts('completed')).completed === 3, 15000,
            'bullc-worker to process the three jobs');
        } finally {
          assert.strictEqual((await bw.stop()).code, 0);
        }
        const done = await q.getJobs(['completed']);
        assert.deepStrictEqual(done.map(j => j.returnvalue.by).sort(), ['flags', 'node', 'url']);
        // and the other way: a job bullc added through the sentinel, processed by Node
        const b = bullc(['add', 'q', 'for-node', '{"by":"bullc"}', '--tls-ca-cert', f('ca.crt')], { prefix, redis: url() });
        assert.strictEqual(b.status, 0, b.stderr);
        const seen = [];
        const w = new Worker('q', async job => { seen.push(job.data); }, { prefix, connection: nodeConn() });
        try {
          await eventually(() => seen.length === 1, 15000, 'the Node worker to take the bullc job');
        } finally {
          await w.close();
        }
        assert.deepStrictEqual(seen, [{ by: 'bullc' }]);
        // the jobs are on the master
        const m = data(t.master);
        try {
          assert.strictEqual(await m.zcard(`${prefix}:q:completed`), 4);
        } finally {
          m.disconnect();
        }
      } finally {
        await q.close();
      }
    });
}

test('REDIS_SENTINEL_TLS=1 with a redis+sentinel:// URL, and bullc-worker\'s sentinelTLS config key',
  { timeout: 60000 }, async () => {
    const prefix = 'stlscfg';
    const q = new (nodeBullmq().Queue)('q', { prefix, connection: nodeConn() });
    try {
      const r = bullc(['add', 'q', 'a', '{"n":1}', '--tls-ca-cert', f('ca.crt')], { prefix,
        redis: `redis+sentinel://127.0.0.1:${t.sentinel}/mymaster`, env: { ...process.env, REDIS_SENTINEL_TLS: '1' } });
      assert.strictEqual(r.status, 0, r.stderr);
      const bad = bullc(['add', 'q', 'a', '{}'], { prefix, redis: `redis+sentinel://127.0.0.1:${t.sentinel}/mymaster`,
        env: { ...process.env, REDIS_SENTINEL_TLS: 'yes' } });
      assert.strictEqual(bad.status, 2, bad.stderr);
      assert.match(bad.stderr, /REDIS_SENTINEL_TLS: 0 or 1/);
      const config = path.join(dir, 'worker.json');
      fs.writeFileSync(config, JSON.stringify({ sentinels: `127.0.0.1:${t.sentinel}`, sentinelMaster: 'mymaster',
        sentinelTLS: true, tlsCaCert: f('ca.crt'), prefix, queues: { q: { builtin: 'echo' } } }));
      const w = await startReady(['--config', config], { redis: null, env: { ...process.env, REDIS_URL: '' } });
      try {
        await eventually(async () => (await q.getJobCounts('completed')).completed === 1, 15000, 'the job done');
      } finally {
        assert.strictEqual((await w.stop()).code, 0);
      }
    } finally {
      await q.close();
    }
  });

test('bad TLS to a sentinel: plain at the TLS port, TLS at a plain port, a wrong CA: exit 3, nothing written',
  { timeout: 60000 }, async () => {
    const prefix = 'stlsbad';
    // a plain redis-server where a sentinel is expected
    const plainPort = await freePort();
    const plainServer = new Proc('redis-server', ['--port', String(plainPort), '--bind', '127.0.0.1', '--save', '']);
    await plainServer.waitFor(/Ready to accept connections/, 10000);
    const plain = `127.0.0.1:${plainPort}`;
    const cases = [
      [['--sentinel', `127.0.0.1:${t.sentinel}`, '--sentinel-master', 'mymaster'],
        new RegExp(`no sentinel answered for master 'mymaster' \\(sentinel 127\\.0\\.0\\.1:${t.sentinel}: .*` +
          'a TLS port\\? --sentinel-tls')],
      [['--sentinel', plain, '--sentinel-master', 'mymaster', '--sentinel-tls', '--tls-ca-cert', f('ca.crt')],
      /sentinel 127\.0\.0\.1:\d+: TLS handshake with .*is it a TLS port\?/],
      [['--sentinel', `127.0.0.1:${t.sentinel}`, '--sentinel-master', 'mymaster', '--sentinel-tls',
        '--tls-ca-cert', f('otherca.crt')], /sentinel 127\.0\.0\.1:\d+: TLS.*certificate/],
    ];
    for (const [args, message] of cases) {
      const r = bullc(['add', 'q', 'x', '{}', ...args], { prefix, redis: null,
        env: { ...process.env, REDIS_URL: '', REDIS_CONNECT_TIMEOUT: '2000' } });
      assert.strictEqual(r.status, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    plainServer.kill();
    await plainServer.exited;
    const m = data(t.master);
    try {
      assert.deepStrictEqual(await m.keys(`${prefix}:*`), []);
    } finally {
      m.disconnect();
    }
  });

// Last: it moves the master. bullc-worker's +switch-master subscription is
// made over TLS too, so the switch moves it at once.
test('bullc-worker follows a SENTINEL FAILOVER announced by a TLS sentinel', { timeout: 90000 }, async () => {
  const prefix = 'stlsfo';
  const add = (name) => {
    const r = bullc(['add', 'q', name, '{}', '--tls-ca-cert', f('ca.crt')], { prefix, redis: url() });
    assert.strictEqual(r.status, 0, r.stderr);
  };
  const completed = async (port) => {
    const m = data(port);
    try {
      return await m.zcard(`${prefix}:q:completed`);
    } finally {
      m.disconnect();
    }
  };
  const bw = await startReady(['--queue', 'q', '--builtin', 'echo', ...flags()], { prefix, redis: null,
    env: { ...process.env, REDIS_URL: '' } });
  try {
    add('before');
    await eventually(async () => (await completed(t.master)) === 1, 15000, 'the first job');
    const s = new IORedis({ host: '127.0.0.1', port: t.sentinel, tls: tlsOpts() });
    try {
      assert.strictEqual(await s.call('SENTINEL', 'failover', 'mymaster'), 'OK');
    } finally {
      s.disconnect();
    }
    await bw.waitFor(new RegExp(`lost: the sentinels moved the master to 127\\.0\\.0\\.1:${t.replica} ` +
      '\\(\\+switch-master\\)'), 30000);
    // bullc add asks the sentinel afresh: the job goes to the new master
    add('after');
    await eventually(async () => (await completed(t.replica)) === 2, 30000, 'the job added after the failover');
    const m = data(t.replica);
    try {
      assert.strictEqual((await m.call('ROLE'))[0], 'master');
    } finally {
      m.disconnect();
    }
  } finally {
    assert.strictEqual((await bw.stop()).code, 0);
  }
});
