// SPDX-License-Identifier: MIT
// bullc-worker --builtin notification=notification: in-app delivery (the
// capped per-user list, the per-user channel), the webhook POST (a Node
// http server records it) with its failures retried per attempts and
// backoff, validation failures, and the --builtin-config checks.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const { start } = require('../nest-app/app');
const { Job, closeAll, eventually, newQueue, redis, uniquePrefix } = require('../lib/harness');
const { killAll, startReady, startWorker } = require('../lib/worker-proc');

const closers = [];
const servers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
  for (const s of servers) s.closeAllConnections(), s.close();
});

async function finished(queue, id, ms = 15000) {
  await eventually(async () => ['completed', 'failed'].includes(await queue.getJobState(id)), ms, `job ${id} to finish`);
  return Job.fromId(queue, id);
}

async function subscriber(channel) {
  const sub = redis();
  closers.push(sub);
  const got = [];
  sub.on('message', (ch, msg) => ch === channel && got.push(JSON.parse(msg)));
  await sub.subscribe(channel);
  return got;
}

// A webhook receiver on a free port. `respond(n)` (n: 1-based request
// number) returns [status, body], or null to never answer.
async function webhook(respond = () => [200, 'ok']) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', c => (body += c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, at: Date.now() });
      const r = respond(requests.length);
      if (!r) return; // hang
      res.writeHead(r[0], { 'content-type': 'text/plain' });
      res.end(r[1]);
    });
  });
  servers.push(server);
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, requests, server };
}

async function setup(tag, extra = [], { env } = {}) {
  const prefix = uniquePrefix(tag);
  const queue = newQueue('notification', prefix);
  const client = redis();
  closers.push(queue, client);
  const w = await startReady(
    ['--queue', 'notification', '--builtin', 'notification=notification', '--drain-delay', '1', ...extra],
    { prefix, env });
  return { prefix, queue, client, w };
}

const retry3 = { attempts: 3, backoff: { type: 'fixed', delay: 200 } };

describe('bullc-worker --builtin notification: in-app', () => {
  it('pushes to the capped per-user list and publishes on the user\'s channel (NestJS producer)', async () => {
    const { prefix, queue, client, w } = await setup('ntapp', ['--builtin-config', '{"cap":3}']);
    const key = `${prefix}:notification:user:u1`;
    const published = await subscriber(key);
    const { app, queueService } = await start({ prefix, processors: [] });
    try {
      const jobs = [];
      for (let i = 1; i <= 5; i++) jobs.push(await queueService.addNotificationJob('u1', 'info', `m${i}`, { i }));
      const other = await queueService.addNotificationJob('u2', 'alert', 'hello'); // data defaults to {}
      for (const j of [...jobs, other]) assert.equal(await (await finished(queue, j.id)).getState(), 'completed');
      const list = (await client.lrange(key, 0, -1)).map(s => JSON.parse(s));
      assert.deepEqual(list.map(e => e.message), ['m5', 'm4', 'm3'], 'newest first, capped at 3');
      const j5 = await Job.fromId(queue, jobs[4].id);
      assert.deepEqual(list[0], { jobId: j5.id, userId: 'u1', type: 'info', message: 'm5', data: { i: 5 }, timestamp: j5.timestamp });
      assert.deepEqual(j5.returnvalue, { delivered: true, userId: 'u1', published: 1 });
      await eventually(() => published.length === 5, 5000, 'five published notifications');
      assert.deepEqual(published.map(e => e.message), ['m1', 'm2', 'm3', 'm4', 'm5']);
      const u2 = (await client.lrange(`${prefix}:notification:user:u2`, 0, -1)).map(s => JSON.parse(s));
      assert.deepEqual(u2.map(e => [e.message, e.data]), [['hello', {}]]);
      assert.deepEqual((await Job.fromId(queue, other.id)).returnvalue, { delivered: true, userId: 'u2', published: 0 });
    } finally {
      await app.close();
    }
    assert.equal((await w.stop()).code, 0);
  });

  it('the cap defaults to 100', async () => {
    const { prefix, queue, client, w } = await setup('ntcap');
    const jobs = await queue.addBulk(Array.from({ length: 105 }, (_, i) =>
      ({ name: 'send-notification', data: { userId: 'u', type: 't', message: `m${i}` } })));
    await finished(queue, jobs[104].id);
    await eventually(async () => (await queue.getJobCounts('completed')).completed === 105, 10000, '105 completions');
    assert.equal(await client.llen(`${prefix}:notification:user:u`), 100);
    await w.stop();
  });

  it('fails malformed jobs and other job names without retries, naming the field', async () => {
    const { prefix, queue, client, w } = await setup('ntbad');
    const ok = { userId: 'u1', type: 'info', message: 'hi', data: {} };
    const cases = [
      ['email', ok, /unknown job name 'email'/],
      ['send-notification', 'text', /the job data must be a JSON object/],
      ['send-notification', { ...ok, userId: undefined }, /"userId" must be a non-empty string/],
      ['send-notification', { ...ok, userId: '' }, /"userId" must be a non-empty string/],
      ['send-notification', { ...ok, userId: 42 }, /"userId" must be a non-empty string/],
      ['send-notification', { ...ok, type: undefined }, /"type" must be a non-empty string/],
      ['send-notification', { ...ok, type: '' }, /"type" must be a non-empty string/],
      ['send-notification', { ...ok, message: undefined }, /"message" must be a string/],
      ['send-notification', { ...ok, message: 5 }, /"message" must be a string/],
      ['send-notification', { ...ok, data: [1] }, /"data" must be an object/],
      ['send-notification', { ...ok, data: null }, /"data" must be an object/],
      ['send-notification', { ...ok, data: 'x' }, /"data" must be an object/],
    ];
    const jobs = [];
    for (const [name, data] of cases) jobs.push(await queue.add(name, data, retry3));
    for (let i = 0; i < cases.length; i++) {
      const j = await finished(queue, jobs[i].id);
      assert.equal(await j.getState(), 'failed', `case ${i}`);
      assert.match(j.failedReason, cases[i][2]);
      assert.equal(j.attemptsMade, 1, `case ${i}: no retry`);
    }
    assert.deepEqual(await client.keys(`${prefix}:notification:user:*`), [], 'nothing delivered');
    const empty = await queue.add('send-notification', { ...ok, message: '' });
    assert.equal(await (await finished(queue, empty.id)).getState(), 'completed', 'an empty message is a message');
    await w.stop();
  });
});

describe('bullc-worker --builtin notification: webhook', () => {
  it('POSTs the notification as JSON with the configured headers', async () => {
    const hook = await webhook(() => [200, 'ok']);
    const cfg = { webhookUrl: `${hook.url}?token=s3cret`, timeoutMs: 5000, headers: { Authorization: 'Bearer t0k' } };
    const { prefix, queue, client, w } = await setup('nthook', ['--builtin-config', `notification=${JSON.stringify(cfg)}`]);
    const job = await queue.add('send-notification', { userId: 'u1', type: 'info', message: 'hé "quoted"', data: { n: 1 } });
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.deepEqual(j.returnvalue, { delivered: true, userId: 'u1', published: 0, webhookStatus: 200 });
    assert.equal(hook.requests.length, 1);
    const r = hook.requests[0];
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/hook?token=s3cret');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers.authorization, 'Bearer t0k');
    assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body));
    const [entry] = await client.lrange(`${prefix}:notification:user:u1`, 0, -1);
    assert.equal(r.body, entry, 'the webhook gets the in-app entry');
    assert.deepEqual(JSON.parse(r.body),
      { jobId: job.id, userId: 'u1', type: 'info', message: 'hé "quoted"', data: { n: 1 }, timestamp: j.timestamp });
    assert.deepEqual(await client.keys(`${prefix}:notification:delivered:*`), [], 'no marker left after success');
    assert.doesNotMatch(w.text(), /s3cret/, 'the query string (a token) is not logged');
    await w.stop();
  });

  it('HTTP 500: retried per attempts and backoff, then failed with the reason; in-app delivered once', async () => {
    const hook = await webhook(() => [500, 'database down']);
    const { prefix, queue, client, w } = await setup('nt500', ['--builtin-config', JSON.stringify({ webhookUrl: hook.url })]);
    const job = await queue.add('send-notification', { userId: 'u1', type: 'info', message: 'hi' }, retry3);
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'failed');
    assert.equal(j.failedReason, `webhook ${hook.url}: HTTP 500: database down`);
    assert.equal(j.attemptsMade, 3);
    assert.equal(hook.requests.length, 3);
    for (let i = 1; i < 3; i++) {
      const gap = hook.requests[i].at - hook.requests[i - 1].at;
      assert.ok(gap >= 180, `attempt ${i + 1} came ${gap} ms after the previous one (backoff 200 ms)`);
    }
    assert.equal(await client.llen(`${prefix}:notification:user:u1`), 1, 'the retries did not push again');
    await w.stop();
  });

  it('a webhook that recovers: completed on the third attempt, in-app once', async () => {
    const hook = await webhook(n => (n <= 2 ? [503, 'busy'] : [204, '']));
    const { prefix, queue, client, w } = await setup('ntrecover', ['--builtin-config', JSON.stringify({ webhookUrl: hook.url })]);
    const channel = await subscriber(`${prefix}:notification:user:u1`);
    const job = await queue.add('send-notification', { userId: 'u1', type: 'info', message: 'hi' }, retry3);
    const j = await finished(queue, job.id);
    assert.equal(await j.getState(), 'completed', j.failedReason);
    assert.equal(j.attemptsMade, 3);
    assert.deepEqual(j.returnvalue, { delivered: true, userId: 'u1', published: null, webhookStatus: 204 });
    assert.equal(await client.llen(`${prefix}:notification:user:u1`), 1);
    assert.equal(channel.length, 1, 'published once');
    assert.deepEqual(hook.requests.map(r => r.body), [0, 1, 2].map(() => hook.requests[0].body), 'the same body each time');
    assert.deepEqual(await client.keys(`${prefix}:notification:delivered:*`), []);
    await w.stop();
  });

  it('connection refused and no answer within timeoutMs fail with their reasons, and are retried', async () => {
    const closed = await webhook();
    const refusedUrl = closed.url;
    await new Promise(resolve => closed.server.close(resolve));
    const hang = await webhook(() => null);
    const a = await setup('ntrefused', ['--builtin-config', JSON.stringify({ webhookUrl: refusedUrl })]);
    const b = await setup('nttimeout', ['--builtin-config', JSON.stringify({ webhookUrl: hang.url, timeoutMs: 300 })]);
    const opts = { attempts: 2, backoff: { type: 'fixed', delay: 100 } };
    const ja = await a.queue.add('send-notification', { userId: 'u', type: 't', message: 'm' }, opts);
    const jb = await b.queue.add('send-notification', { userId: 'u', type: 't', message: 'm' }, opts);
    const fa = await finished(a.queue, ja.id);
    assert.equal(await fa.getState(), 'failed');
    assert.match(fa.failedReason, new RegExp(`^webhook ${refusedUrl}: connection failed`));
    assert.equal(fa.attemptsMade, 2);
    const t0 = Date.now();
    const fb = await finished(b.queue, jb.id);
    assert.equal(await fb.getState(), 'failed');
    assert.equal(fb.failedReason, `webhook ${hang.url}: timed out after 300 ms`);
    assert.equal(fb.attemptsMade, 2);
    assert.equal(hang.requests.length, 2);
    assert.ok(Date.now() - t0 < 5000);
    await a.w.stop();
    await b.w.stop();
  });

  it('https: verified against the system store, or against caFile', async () => {
    const fs = require('node:fs');
    const https = require('node:https');
    const { execFileSync } = require('node:child_process');
    const { tmpDir } = require('../lib/worker-proc');
    const dir = tmpDir('nttls');
    const [key, cert] = ['key.pem', 'cert.pem'].map(f => require('node:path').join(dir, f));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const bodies = [];
    const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
      let b = '';
      req.on('data', c => (b += c));
      req.on('end', () => (bodies.push(b), res.writeHead(200), res.end('ok')));
    });
    servers.push(server);
    await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${server.address().port}/hook`;
    const strict = await setup('nttls1', ['--builtin-config', JSON.stringify({ webhookUrl: url })]);
    const a = await strict.queue.add('send-notification', { userId: 'u', type: 't', message: 'm' });
    const fa = await finished(strict.queue, a.id);
    assert.equal(await fa.getState(), 'failed');
    assert.match(fa.failedReason, new RegExp(`^webhook ${url}: connection failed: .*self-signed certificate`));
    const trusted = await setup('nttls2', ['--builtin-config', JSON.stringify({ webhookUrl: url, caFile: cert })]);
    const b = await trusted.queue.add('send-notification', { userId: 'u', type: 't', message: 'over tls' });
    const fb = await finished(trusted.queue, b.id);
    assert.equal(await fb.getState(), 'completed', fb.failedReason);
    assert.equal(fb.returnvalue.webhookStatus, 200);
    assert.equal(JSON.parse(bodies[0]).message, 'over tls');
    await strict.w.stop();
    await trusted.w.stop();
  });

  it('takes the URL from NOTIFICATION_WEBHOOK_URL; the config file\'s builtinConfig', async () => {
    const hook = await webhook(() => [201, 'created']);
    const { queue, w } = await setup('ntenv', [], { env: { ...process.env, NOTIFICATION_WEBHOOK_URL: hook.url } });
    const job = await queue.add('send-notification', { userId: 'u', type: 't', message: 'm' });
    assert.equal((await finished(queue, job.id)).returnvalue.webhookStatus, 201);
    assert.equal(hook.requests.length, 1);
    await w.stop();

    const fs = require('node:fs');
    const path = require('node:path');
    const { tmpDir } = require('../lib/worker-proc');
    const prefix = uniquePrefix('ntfile');
    const file = path.join(tmpDir('ntfile'), 'worker.json');
    fs.writeFileSync(file, JSON.stringify({
      prefix,
      queues: { notification: { builtin: 'notification', builtinConfig: { webhookUrl: hook.url, cap: 1 } } },
    }));
    const q2 = newQueue('notification', prefix);
    const c2 = redis();
    closers.push(q2, c2);
    const w2 = await startReady(['--config', file, '--drain-delay', '1'], { prefix: null });
    const jobs = await q2.addBulk([1, 2].map(i => ({ name: 'send-notification', data: { userId: 'u', type: 't', message: `m${i}` } })));
    for (const x of jobs) assert.equal(await (await finished(q2, x.id)).getState(), 'completed');
    assert.equal(hook.requests.length, 3);
    assert.equal(await c2.llen(`${prefix}:notification:user:u`), 1, 'cap 1 from the file');
    await w2.stop();
  });
});

describe('bullc-worker --builtin-config', () => {
  const bad = [
    [['--builtin-config', '{"cap":0}'], /"cap" must be an integer from 1/],
    [['--builtin-config', '{"timeoutMs":"5s"}'], /"timeoutMs" must be an integer/],
    [['--builtin-config', '{"webhook":"http://x"}'], /unknown key "webhook"/],
    [['--builtin-config', '{"webhookUrl":"ftp://x/"}'], /webhook URL must start with http/],
    [['--builtin-config', '{"webhookUrl":"http://u:p@x/"}'], /user:password@ is not supported/],
    [['--builtin-config', '{"webhookUrl":"http://x:99999/"}'], /bad port/],
    [['--builtin-config', '{"headers":{"A":"b"}}'], /"headers" needs a webhook URL/],
    [['--builtin-config', '{"webhookUrl":"https://x/","caFile":"/nonexistent.pem"}'], /"caFile": cannot read/],
    [['--builtin-config', '[1]'], /must be a JSON object/],
    [['--builtin-config', 'other={"cap":1}'], /names queue 'other', which is not run/],
  ];
  for (const [args, re] of bad) {
    it(`exits 2: ${args.join(' ')}`, async () => {
      const w = startWorker(['--queue', 'notification', '--builtin', 'notification=notification', ...args],
        { prefix: uniquePrefix('ntcfg') });
      assert.equal((await w.waitExit()).code, 2, w.text());
      assert.match(w.text().replace(/\\"/g, '"'), re); // text logs escape quotes
    });
  }

  it('exits 2 for a config without its builtin, or for a builtin that takes none', async () => {
    for (const [args, re] of [
      [['--queue', 'q', '--builtin-config', '{"cap":1}', '--builtin', 'notification'], /must follow a --builtin/],
      [['--queue', 'q', '--builtin', 'echo', '--builtin-config', '{"cap":1}'], /builtin echo takes no configuration/],
      [['--queue', 'q', '--exec', '/bin/true', '--builtin-config', 'q={"cap":1}'], /whose processor is not a builtin/],
    ]) {
      const w = startWorker(args, { prefix: uniquePrefix('ntcfg') });
      assert.equal((await w.waitExit()).code, 2, w.text());
      assert.match(w.text().replace(/\\"/g, '"'), re);
    }
  });
});
