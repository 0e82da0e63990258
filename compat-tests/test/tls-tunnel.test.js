// SPDX-License-Identifier: MIT
// TLS to Redis: Debian 12's hiredis 0.14 has no TLS, so bullc reaches a
// TLS-only Redis through a local TLS tunnel (stunnel in client mode, on
// loopback). bullc adds and bullc-worker processes through the tunnel;
// Node reads the result over TLS directly.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const net = require('node:net');
const { bullc, eventually, nodeBullmq, sleep } = require('../lib/harness');

const { Queue } = nodeBullmq(); // the Node peer's major (BULLC_COMPAT_BULLMQ)
const { Proc, startReady, killAll, tmpDir } = require('../lib/worker-proc');

after(killAll);

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

const which = cmd => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim();

test('bullc through a stunnel TLS tunnel to a TLS-only Redis', { timeout: 60000 }, async () => {
  const stunnel = which('stunnel4') || which('stunnel');
  assert.ok(stunnel, 'stunnel is not installed (tools/bootstrap.sh installs stunnel4)');
  const dir = tmpDir('tls');
  const cert = path.join(dir, 'cert.pem'), key = path.join(dir, 'key.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  assert.strictEqual(gen.status, 0, gen.stderr);
  const tlsPort = await freePort();
  const plainPort = await freePort();
  new Proc('redis-server', ['--port', '0', '--tls-port', String(tlsPort), '--bind', '127.0.0.1',
    '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no',
    '--save', '', '--dir', dir]);
  const conf = path.join(dir, 'stunnel.conf');
  fs.writeFileSync(conf, [
    'foreground = yes', `pid =`, 'output = ' + path.join(dir, 'stunnel.log'),
    '[redis]', 'client = yes', `accept = 127.0.0.1:${plainPort}`, `connect = 127.0.0.1:${tlsPort}`,
    `CAfile = ${cert}`, 'verifyChain = yes', 'checkIP = 127.0.0.1', '',
  ].join('\n'));
  new Proc(stunnel, [conf]);
  const url = `redis://127.0.0.1:${plainPort}`;
  await eventually(() => bullc(['add', 'q', 'probe', '{}'], { prefix: 'tls', redis: url }).status === 0, 10000,
    'the tunnel and Redis to come up', 200);

  const id = bullc(['add', 'q', 'secure', '{"over":"tls"}'], { prefix: 'tls', redis: url }).stdout.trim();
  const w = await startReady(['--queue', 'q', '--builtin', 'echo'], { prefix: 'tls', redis: url });
  const q = new Queue('q', {
    prefix: 'tls',
    connection: { host: '127.0.0.1', port: tlsPort, tls: { ca: fs.readFileSync(cert), servername: '127.0.0.1' } },
  });
  try {
    const job = await eventually(async () => {
      const j = await q.getJob(id);
      return j && j.finishedOn ? j : null;
    }, 15000, 'the job processed through the tunnel');
    assert.deepStrictEqual(job.returnvalue, { over: 'tls' });
    await w.stop();
  } finally {
    await q.close();
    await sleep(10);
  }
});
