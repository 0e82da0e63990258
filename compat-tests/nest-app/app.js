// SPDX-License-Identifier: MIT
// The reference deployment's NestJS side, as a user writes it with
// @nestjs/bullmq: BullModule.forRootAsync with the REDIS_* configuration,
// registerQueue of test-queue and notification, a QueueService with
// addTestQueueJob / addNotificationJob, and @Processor classes extending
// WorkerHost. Plain JavaScript: the decorators are applied with
// Reflect.decorate, exactly what the TypeScript compiler emits for them.
'use strict';
require('reflect-metadata');
const { Module, Injectable } = require('@nestjs/common');
const { NestFactory } = require('@nestjs/core');
// @nestjs/bullmq over 6.7.0, or 5.81.5 under BULLC_COMPAT_BULLMQ=5 (lib/nest-bullmq.js).
const { BullModule, InjectQueue, Processor, WorkerHost, OnWorkerEvent } = require('../lib/nest-bullmq').nestBullmq();

const decorate = (decorators, target, key, desc) => Reflect.decorate(decorators, target, key, desc);
const param = (index, decorator) => (target, key) => decorator(target, key, index);

// Where results go, so tests can read what the processors saw.
const seen = { 'test-queue': [], notification: [] };

class QueueService {
  constructor(testQueue, notificationQueue) {
    this.testQueue = testQueue;
    this.notificationQueue = notificationQueue;
  }

  async addTestQueueJob(provider, data, messageType = 'game_data') {
    return this.testQueue.add(
      'game_data',
      { provider, data, timestamp: Date.now(), messageType },
      { removeOnComplete: 10, removeOnFail: 5 },
    );
  }

  async addNotificationJob(userId, type, message, data = {}) {
    return this.notificationQueue.add(
      'send-notification',
      { userId, type, message, data },
      { removeOnComplete: 10, removeOnFail: 5 },
    );
  }
}
decorate(
  [
    Injectable(),
    param(0, InjectQueue('test-queue')),
    param(1, InjectQueue('notification')),
    Reflect.metadata('design:paramtypes', [Object, Object]),
  ],
  QueueService,
);

class TestQueueProcessor extends WorkerHost {
  async process(job) {
    seen['test-queue'].push({ id: job.id, name: job.name, data: job.data, opts: job.opts });
    if (job.name !== 'game_data') throw new Error(`unknown job name ${job.name}`);
    return { provider: job.data.provider, messageType: job.data.messageType };
  }
  onFailed(job, err) {
    seen['test-queue'].push({ id: job.id, failed: err.message });
  }
}
decorate([OnWorkerEvent('failed')], TestQueueProcessor.prototype, 'onFailed',
  Object.getOwnPropertyDescriptor(TestQueueProcessor.prototype, 'onFailed'));
decorate([Processor('test-queue')], TestQueueProcessor);

class NotificationProcessor extends WorkerHost {
  async process(job) {
    seen.notification.push({ id: job.id, name: job.name, data: job.data });
    return { delivered: true, userId: job.data.userId };
  }
}
decorate([Processor('notification')], NotificationProcessor);

function redisConnection() {
  const env = process.env;
  if (env.REDIS_URL) {
    const u = new URL(env.REDIS_URL);
    return {
      host: u.hostname, port: Number(u.port || 6379),
      password: u.password ? decodeURIComponent(u.password) : undefined,
      db: Number((u.pathname || '/0').slice(1) || 0),
    };
  }
  return {
    host: env.REDIS_HOST || '127.0.0.1',
    port: Number(env.REDIS_PORT || 6379),
    password: env.REDIS_PASSWORD || undefined,
    db: Number(env.REDIS_DB || 0),
  };
}

// processors: which @Processor classes to run ('test-queue', 'notification');
// an app that only produces (bullc-worker processes) passes [].
function makeModule({ prefix, processors }) {
  class AppModule {}
  const providers = [QueueService];
  if (processors.includes('test-queue')) providers.push(TestQueueProcessor);
  if (processors.includes('notification')) providers.push(NotificationProcessor);
  decorate(
    [
      Module({
        imports: [
          BullModule.forRootAsync({
            useFactory: async () => ({ connection: redisConnection(), prefix }),
          }),
          BullModule.registerQueue({ name: 'test-queue' }, { name: 'notification' }),
        ],
        providers,
      }),
    ],
    AppModule,
  );
  return AppModule;
}

async function start(opts = {}) {
  const app = await NestFactory.createApplicationContext(
    makeModule({ prefix: opts.prefix || 'bull', processors: opts.processors || [] }),
    { logger: false },
  );
  await app.init();
  return { app, queueService: app.get(QueueService), seen };
}

module.exports = { start, seen };

// `node nest-app/app.js` runs the app until SIGTERM; NEST_PROCESSORS names
// the @Processor classes to run (default both; empty: producer only, as in
// the reference deployment where bullc-worker processes).
if (require.main === module) {
  const processors = (process.env.NEST_PROCESSORS ?? 'test-queue,notification').split(',').filter(Boolean);
  start({ prefix: process.env.BULL_PREFIX || 'bull', processors }).then(({ app }) => {
    console.log('nest-app ready');
    const stop = () => app.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
