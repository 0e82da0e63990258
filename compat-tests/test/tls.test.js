// SPDX-License-Identifier: MIT
// Native TLS (src/tls.c): redis-servers of the test's own with --tls-port and
// certificates made here with openssl (a CA, a server and a client
// certificate; another CA, an expired and a self-signed server certificate),
// with and without client certificates required. Jobs go both ways between
// bullc (bullc add, bullc-worker) and Node BullMQ 6.7.0 and 5.81.5 over
// ioredis's TLS; every bad setting is a clear error, exit 3 (2 for usage),
// with nothing written.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const IORedis = require('ioredis');
const { bullc, bullmqPackage, completedEvents, eventually, nodeBullmq, redis, redisUrl, sleep } = require('../lib/harness');
const { Proc, freePort, startNode, startReady, startWorker, killAll, tmpDir } = require('../lib/worker-proc');
const { certs } = require('../lib/certs');

const dir = tmpDir('tls');
const { f, cert } = certs(dir);
const servers = {};

async function tlsServer(name, crt, extra = []) {
  const port = await freePort();
  const p = new Proc('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
    '--tls-cert-file', f(`${crt}.crt`), '--tls-key-file', f(`${crt}.key`), '--tls-ca-cert-file', f('ca.crt'),
    '--save', '', '--dir', dir, '--dbfilename', `${name}.rdb`, ...extra]);
  await p.waitFor(/Ready to accept connections/, 10000);
  servers[name] = port;
  return port;
}

// ioredis over TLS to one of the servers, with the client certificate
const tlsConn = (port, more = {}) => ({
  host: '127.0.0.1', port, maxRetriesPerRequest: null,
  tls: { ca: fs.readFileSync(f('ca.crt')), cert: fs.readFileSync(f('client.crt')), key: fs.readFileSync(f('client.key')),
    servername: 'localhost', ...more },
});

before(async () => {
  cert('ca', 'bullc test CA');
  cert('otherca', 'another CA');
  cert('server', 'localhost', { ca: 'ca', san: 'DNS:localhost,IP:127.0.0.1' });
  cert('client', 'bullc client', { ca: 'ca' });
  cert('expired', 'localhost', { ca: 'ca', san: 'DNS:localhost,IP:127.0.0.1', start: '200101000000Z',
    end: '200102000000Z' });
  cert('selfsigned', 'localhost', { san: 'DNS:localhost,IP:127.0.0.1' });
  await tlsServer('open', 'server', ['--tls-auth-clients', 'no']);
  await tlsServer('mutual', 'server', ['--tls-auth-clients', 'yes']);
  await tlsServer('expired', 'expired', ['--tls-auth-clients', 'no']);
  await tlsServer('selfsigned', 'selfsigned', ['--tls-auth-clients', 'no']);
});

after(killAll);

// bullc's TLS flags for one server
const flags = (extra = []) => ['--tls-ca-cert', f('ca.crt'), ...extra];
const withClient = ['--tls-cert', f('client.crt'), '--tls-key', f('client.key')];
const url = (name, host = 'localhost') => `rediss://${host}:${servers[name]}`;

for (const major of [6, 5]) {
  test(`over TLS without client certificates, bullc and Node BullMQ ${major} both ways`, { timeout: 60000 }, async () => {
    const { Queue, Worker } = nodeBullmq(major);
    const prefix = `tls${major}`;
    const conn = tlsConn(servers.open);
    const q = new Queue('q', { prefix, connection: conn });
    try {
      // bullc adds, Node processes
      const r = bullc(['add', 'q', 'from-bullc', '{"by":"bullc"}', ...flags()], { prefix, redis: url('open') });
      assert.strictEqual(r.status, 0, r.stderr);
      const seen = [];
      const w = new Worker('q', async (job) => { seen.push(job.data); return { ok: job.data.by }; },
        { prefix, connection: conn });
      await eventually(() => seen.length === 1, 15000, 'the Node worker to take the bullc job');
      assert.deepStrictEqual(seen, [{ by: 'bullc' }]);
      await w.close();
      // Node adds, bullc-worker processes (the async connection over TLS)
      const job = await q.add('from-node', { by: 'node' });
      const bw = await startReady(['--queue', 'q', '--builtin', 'echo', ...flags()], { prefix, redis: url('open') });
      try {
        const done = await eventually(async () => {
          const j = await q.getJob(job.id);
          return j && j.finishedOn ? j : null;
        }, 15000, 'bullc-worker to process the Node job over TLS');
        assert.deepStrictEqual(done.returnvalue, { by: 'node' });
      } finally {
        assert.strictEqual((await bw.stop()).code, 0);
      }
      // an IP address is checked against the certificate's IP entry (no SNI)
      const ip = bullc(['counts', 'q', '--json', ...flags()], { prefix, redis: url('open', '127.0.0.1') });
      assert.strictEqual(ip.status, 0, ip.stderr);
      assert.strictEqual(JSON.parse(ip.stdout).completed, 2);
    } finally {
      await q.close();
    }
  });
}

test('the game-data builtin writes over TLS (the library\'s synchronous connections)', { timeout: 60000 }, async () => {
  const prefix = 'tlsgd';
  const conn = tlsConn(servers.mutual);
  const q = new (nodeBullmq().Queue)('gd', { prefix, connection: conn });
  const client = new IORedis(conn);
  try {
    const jobs = await Promise.all(['P1', 'P2'].map((provider, i) => q.add('game_data',
      { provider, messageType: 'round_result', timestamp: 1000 + i, data: { round: i + 1 } })));
    const w = await startReady(['--queue', 'gd', '--builtin', 'game-data', ...flags(withClient)],
      { prefix, redis: url('mutual') });
    try {
      await eventually(async () => (await q.getJobCounts('completed')).completed === 2, 15000, 'two rounds recorded');
    } finally {
      assert.strictEqual((await w.stop()).code, 0);
    }
    const done = await Promise.all(jobs.map((j) => q.getJob(j.id)));
    assert.deepStrictEqual(done.map((j) => j.returnvalue), [1, 2].map((round, i) =>
      ({ provider: `P${i + 1}`, messageType: 'round_result', round, published: 0 })));
    const latest = await client.hgetall(`${prefix}:gd:latest`);
    assert.deepStrictEqual(Object.keys(latest).sort(), ['P1', 'P2']);
    assert.strictEqual(JSON.parse(latest.P2).jobId, jobs[1].id);
    assert.deepStrictEqual(JSON.parse(latest.P2).data, { round: 2 });
  } finally {
    await q.close();
    await client.quit();
  }
});

test('mutual TLS: a client certificate from flags, the environment and the config file', { timeout: 60000 }, async () => {
  const prefix = 'mtls';
  const q = new (nodeBullmq().Queue)('q', { prefix, connection: tlsConn(servers.mutual) });
  try {
    const r = bullc(['add', 'q', 'a', '{"n":1}', ...flags(withClient)], { prefix, redis: url('mutual') });
    assert.strictEqual(r.status, 0, r.stderr);
    const env = { ...process.env, REDIS_URL: url('mutual'), REDIS_TLS_CA: f('ca.crt'),
      REDIS_TLS_CERT: f('client.crt'), REDIS_TLS_KEY: f('client.key') };
    const e = bullc(['add', 'q', 'b', '{"n":2}'], { prefix, redis: null, env });
    assert.strictEqual(e.status, 0, e.stderr);
    // a directory of hashed CA certificates works as the CA file does
    const cadir = f('cadir');
    fs.mkdirSync(cadir, { recursive: true });
    fs.copyFileSync(f('ca.crt'), path.join(cadir, 'ca.pem'));
    assert.strictEqual(spawnSync('openssl', ['rehash', cadir]).status, 0);
    const d = bullc(['add', 'q', 'c', '{"n":3}', '--tls-ca-cert', cadir, ...withClient], { prefix, redis: url('mutual') });
    assert.strictEqual(d.status, 0, d.stderr);
    // bullc-worker with its TLS settings in the config file
    const config = f('worker.json');
    fs.writeFileSync(config, JSON.stringify({ redis: url('mutual'), prefix, tlsCaCert: f('ca.crt'),
      tlsCert: f('client.crt'), tlsKey: f('client.key'), queues: { q: { builtin: 'echo' } } }));
    const w = await startReady(['--config', config], { redis: null });
    try {
      await eventually(async () => (await q.getJobCounts('completed')).completed === 3, 15000, 'three jobs done');
    } finally {
      assert.strictEqual((await w.stop()).code, 0);
    }
  } finally {
    await q.close();
  }
});

// What a refused connection must leave: no key under the prefix on the server.
// (the check itself skips the verification: some servers carry bad certificates on purpose)
async function nothingWritten(port, prefix) {
  const c = new IORedis(tlsConn(port, { rejectUnauthorized: false }));
  try {
    assert.deepStrictEqual(await c.keys(`${prefix}:*`), []);
  } finally {
    c.disconnect();
  }
}

const bad = [
  ['the wrong CA', 'open', ['--tls-ca-cert', f('otherca.crt')], /certificate .* was refused: .*(self-signed|local issuer)/],
  ['no CA (the system store does not know the test CA)', 'open', [], /certificate .* was refused/],
  ['an expired certificate', 'expired', flags(), /was refused: certificate has expired/],
  ['a self-signed certificate', 'selfsigned', flags(), /was refused: self-signed certificate/],
  ['a server name the certificate does not carry', 'open', flags(['--tls-server-name', 'redis.example.com']),
    /not for host name 'redis.example.com' \(host name check failed/],
  ['no client certificate where one is required', 'mutual', flags(), /client certificate|certificate required/],
  ['a client key that is not the certificate\'s', 'mutual', flags(['--tls-cert', f('client.crt'), '--tls-key',
    f('server.key')]), /does not belong to the certificate/],
  ['a CA file that does not exist', 'open', ['--tls-ca-cert', f('missing.crt')], /cannot load the CA certificates/],
];
for (const [what, server, args, message] of bad) {
  test(`bad TLS input: ${what}: exit 3, a clear error, nothing written`, { timeout: 30000 }, async () => {
    const prefix = `bad${Math.floor(Math.random() * 1e9)}`;
    const r = bullc(['add', 'q', 'x', '{}', ...args], { prefix, redis: url(server) });
    assert.strictEqual(r.status, 3, r.stderr);
    assert.match(r.stderr, message);
    await nothingWritten(servers[server], prefix);
  });
}

test('bullc-worker with a refused certificate exits 3 at start', { timeout: 30000 }, async () => {
  const w = startWorker(['--queue', 'q', '--builtin', 'echo', '--tls-ca-cert', f('otherca.crt')],
    { prefix: 'badw', redis: url('open') });
  const exit = await w.waitExit(20000);
  assert.strictEqual(exit.code, 3, w.lines.join('\n'));
  assert.match(w.lines.join('\n'), /certificate .* was refused/);
  await nothingWritten(servers.open, 'badw');
});

test('TLS to a plain port and plain to a TLS port: exit 3, nothing written', { timeout: 30000 }, async () => {
  const plain = new URL(redisUrl());
  const prefix = `plainport${Math.floor(Math.random() * 1e9)}`;
  // a plain Redis reads the TLS hello as an inline command and waits for its end: the connect timeout
  const t = bullc(['add', 'q', 'x', '{}', ...flags()], { prefix, redis: `rediss://localhost:${plain.port}`,
    env: { ...process.env, REDIS_CONNECT_TIMEOUT: '1500' } });
  assert.strictEqual(t.status, 3, t.stderr);
  assert.match(t.stderr, /TLS handshake with .* failed: no answer within 1500 ms .*is it a TLS port\?/);
  const c = redis();
  try {
    assert.deepStrictEqual(await c.keys(`${prefix}:*`), []);
  } finally {
    c.disconnect();
  }
  const p = bullc(['add', 'q', 'x', '{}'], { prefix, redis: `redis://localhost:${servers.open}` });
  assert.strictEqual(p.status, 3, p.stderr);
  assert.match(p.stderr, /use rediss:\/\//);
  await nothingWritten(servers.open, prefix);
});

test('usage errors exit 2: a certificate without its key, a Cluster URL for a queue without a hash tag', async () => {
  const k = bullc(['counts', 'q', '--tls-cert', f('client.crt')], { redis: url('open') });
  assert.strictEqual(k.status, 2, k.stderr);
  assert.match(k.stderr, /--tls-cert and --tls-key go together/);
  for (const u of ['redis+cluster://127.0.0.1:7000,127.0.0.1:7001']) {
    const r = bullc(['counts', 'q'], { redis: u });
    assert.strictEqual(r.status, 2, r.stderr);
    assert.match(r.stderr, /Redis Cluster needs a hash-tagged prefix/);
  }
  await sleep(1);
});

// Node's producer over TLS for the restart case: 3,000 jobs with ids of
// their own (an add ioredis sends again after the restart finds its job
// there: a duplicated event, never a second job), in batches of 50.
const RESTART_PRODUCER = `
const fs = require('node:fs');
const { Queue } = require(process.argv[4]);
const [port, ca] = [Number(process.argv[1]), process.argv[2]];
const q = new Queue('rs', { prefix: process.argv[3], streams: { events: { maxLen: 100000 } }, connection: {
  host: '127.0.0.1', port, maxRetriesPerRequest: null, tls: { ca: fs.readFileSync(ca), servername: 'localhost' } } });
q.on('error', () => {});
(async () => {
  for (let i = 0; i < 3000; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => q.add('j', { i: i + k }, { jobId: 'j' + (i + k) })));
    console.log('added ' + (i + 50));
  }
  console.log('all added');
  await q.close();
})().catch(e => { console.error(e); process.exit(1); });
`;

test('the TLS server restarted while Node BullMQ adds 3,000 jobs over TLS: bullc-workers reconnect over TLS, ' +
  'each job completed exactly once', { timeout: 120000 }, async ctx => {
  const port = await freePort();
  // appendonly: a restart keeps every write Redis acknowledged
  const args = ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', f('server.crt'),
    '--tls-key-file', f('server.key'), '--tls-ca-cert-file', f('ca.crt'), '--tls-auth-clients', 'no', '--save', '',
    '--dir', dir, '--appendonly', 'yes', '--appenddirname', 'restart-aof', '--appendfsync', 'always'];
  const start = async () => {
    const p = new Proc('redis-server', args);
    await p.waitFor(/Ready to accept connections/, 10000);
    return p;
  };
  let server = await start();
  const prefix = 'restart';
  const opts = { prefix, redis: `rediss://localhost:${port}` };
  // short locks and stalled checks, as in compat_sentinel's failovers: a job whose lock the restart
  // lost is recovered in seconds, not after the default 30 s
  const wargs = ['--queue', 'rs', '--builtin', 'echo', '--concurrency', '8', '--drain-delay', '1', '--lock-duration',
    '2000', '--stalled-interval', '1000', '--max-stalled-count', '1000', ...flags()];
  const workers = [await startReady(wargs, opts), await startReady(wargs, opts)];
  const producer = startNode(RESTART_PRODUCER, [String(port), f('ca.crt'), prefix, bullmqPackage()]);
  const c = () => new IORedis(tlsConn(port));
  try {
    await producer.waitFor(/added 1000$/, 60000);
    // a clean restart: SIGTERM (the AOF synced), the same port, certificates and data
    server.kill('SIGTERM');
    assert.strictEqual((await server.waitExit(10000)).code, 0, server.text());
    server = await start();
    await producer.waitFor(/all added/, 60000);
    const r = c();
    try {
      await eventually(async () => (await r.zcard(`${prefix}:rs:completed`)) === 3000, 60000,
        'every job completed after the restart', 250);
      assert.strictEqual(await r.zcard(`${prefix}:rs:failed`), 0);
      assert.strictEqual(await r.llen(`${prefix}:rs:active`), 0);
      const completed = await completedEvents(r, prefix, 'rs');
      assert.deepStrictEqual([...completed].filter(([, n]) => n !== 1), [], 'every job completed exactly once');
      assert.strictEqual(completed.size, 3000);
    } finally {
      r.disconnect();
    }
    // both workers lost the server mid-flow and came back to it over TLS, alive
    let held = 0;
    for (const w of workers) {
      assert.strictEqual(w.exit, undefined, w.text());
      assert.match(w.text(), /connection to rediss:\/\/localhost:\d+\/0 lost/);
      assert.match(w.text(), /\breconnected\b/);
      held += w.lines.filter(l => /cannot store its result yet/.test(l)).length;
    }
    ctx.diagnostic(`results held over the restart and stored after it: ${held}`);
  } finally {
    producer.kill('SIGKILL');
    for (const w of workers) await w.stop();
    server.kill('SIGKILL');
  }
});
