// SPDX-License-Identifier: MIT
// A private redis-server for the doc tests: a free port, no persistence,
// stopped by the caller (stop()), also when the test fails.
'use strict';
const { spawn, spawnSync } = require('child_process');
const net = require('net');

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

async function startRedis() {
  let port;
  do port = await freePort(); while (port > 55535);
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG') {
      return { port, url: `redis://127.0.0.1:${port}`, stop: () => proc.kill() };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill();
  throw new Error(`redis-server did not start on port ${port}`);
}

module.exports = { startRedis };
