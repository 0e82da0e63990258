// SPDX-License-Identifier: MIT
// PM2 processes of the reference deployment (a game back end):
//   socket-client  bullc-socket-client: the provider's WebSocket feed -> test-queue jobs
//   queue-worker   bullc-worker: test-queue (game-data) and notification processors
//   api            the NestJS app (QueueService producer; its own processors off)
// Start:  (cd compat-tests && npm ci)   # once: the api app's Node packages
//         pm2 start tools/pm2/ecosystem.config.js   (from the repository root)
// Redis comes from REDIS_HOST / REDIS_PORT / REDIS_PASSWORD / REDIS_DB (the
// deployment: port 6329, a password, database 2); nothing here holds a secret.
// Signals: PM2 stops with SIGINT, then SIGKILL after kill_timeout. bullc-worker
// drains (finishes the jobs in process) within --shutdown-timeout, so
// kill_timeout is set above it; a SIGKILL would leave jobs to stalled recovery.
// Readiness: each C program prints one ready line (bullc-worker: "ready
// queues=..."; bullc-socket-client: "connected url=...") in its log file
// (one file per component: stdout and stderr both go to logs/<name>.log).
'use strict';
const path = require('path');

const root = path.resolve(__dirname, '..', '..');
const bin = process.env.BULLC_BIN_DIR || path.join(root, 'build', 'bin');
const logs = process.env.BULLC_LOG_DIR || path.join(root, 'logs');
const shutdownMs = Number(process.env.BULLC_SHUTDOWN_MS || 10000);
const env = {
  REDIS_HOST: process.env.REDIS_HOST || '127.0.0.1',
  REDIS_PORT: process.env.REDIS_PORT || '6329',
  REDIS_DB: process.env.REDIS_DB || '2',
  // REDIS_PASSWORD is inherited from the environment PM2 runs in, never written here
};

module.exports = {
  apps: [
    {
      name: 'socket-client',
      script: path.join(bin, 'bullc-socket-client'),
      interpreter: 'none',
      exec_mode: 'fork',
      args: [
        '--url', process.env.PROVIDER_URL || 'ws://127.0.0.1:8765/feed',
        '--provider', process.env.PROVIDER_NAME || 'NAMED_POWERBALL',
        '--subscribe', process.env.PROVIDER_SUBSCRIBE || '{"type":"subscribe","channel":"rounds"}',
        '--queue', 'test-queue',
      ],
      env,
      kill_timeout: shutdownMs + 5000,
      out_file: path.join(logs, 'socket-client.log'),
      error_file: path.join(logs, 'socket-client.log'),
      merge_logs: true,
      autorestart: true,
      restart_delay: 1000,
    },
    {
      name: 'queue-worker',
      script: path.join(bin, 'bullc-worker'),
      interpreter: 'none',
      exec_mode: 'fork',
      args: [
        '--queue', 'test-queue', '--queue', 'notification',
        '--builtin', 'test-queue=game-data', '--builtin', 'notification=notification',
        '--concurrency', process.env.WORKER_CONCURRENCY || '8',
        '--shutdown-timeout', String(shutdownMs),
      ],
      env,
      kill_timeout: shutdownMs + 5000,
      out_file: path.join(logs, 'queue-worker.log'),
      error_file: path.join(logs, 'queue-worker.log'),
      merge_logs: true,
      autorestart: true,
      restart_delay: 1000,
    },
    {
      name: 'api',
      script: path.join(root, 'compat-tests', 'nest-app', 'app.js'),
      exec_mode: 'fork',
      env: { ...env, NEST_PROCESSORS: '' },
      kill_timeout: shutdownMs + 5000,
      out_file: path.join(logs, 'api.log'),
      error_file: path.join(logs, 'api.log'),
      merge_logs: true,
    },
  ],
};
