// SPDX-License-Identifier: MIT
// OpenTelemetry traces across Node BullMQ with bullmq-otel and bullc
// (docs/observability.md): both export over OTLP/HTTP JSON to a receiver in
// this test (a Node HTTP server parsing what arrives, as a collector does).
// A Node producer's trace continues in bullc-worker's process span, a
// bullc-made trace in a Node worker's, and an endpoint that is down or never
// answers neither slows nor fails jobs: its spans are counted as dropped.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const { context, propagation, trace } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { BullMQOtel } = require('bullmq-otel');
const IORedis = require('ioredis');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { bullc, closeAll, eventually, newQueue, newWorker, redisUrl, uniquePrefix } =
  require('../lib/harness');
const { killAll, startReady } = require('../lib/worker-proc');

// What arrives at the receiver: every POST's headers and the spans in it,
// each with its resource's attributes (service.name ...).
const received = [];
let receiver, receiverUrl, provider;
const closers = [];

function attrs(list) {
  const o = {};
  for (const a of list || []) {
    const v = a.value;
    o[a.key] = 'stringValue' in v ? v.stringValue : 'intValue' in v ? Number(v.intValue)
      : 'arrayValue' in v ? v.arrayValue.values.map(x => x.stringValue) : 'boolValue' in v ? v.boolValue : v.doubleValue;
  }
  return o;
}

function spans() {
  const out = [];
  for (const r of received)
    for (const rs of r.body.resourceSpans || []) {
      const resource = attrs(rs.resource && rs.resource.attributes);
      for (const ss of rs.scopeSpans || [])
        for (const s of ss.spans || [])
          out.push({ ...s, attributes: attrs(s.attributes), resource, scope: ss.scope, headers: r.headers });
    }
  return out;
}

async function span(pred, what, ms = 15000) {
  let found;
  await eventually(() => (found = spans().find(pred)) !== undefined, ms, what);
  return found;
}

// A port nobody listens on.
async function deadPort() {
  const s = net.createServer();
  await new Promise(r => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise(r => s.close(r));
  return port;
}

function otelEnv(extra = {}) {
  return {
    ...process.env,
    OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    ...extra,
  };
}

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', c => (body += c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces' && /json/.test(req.headers['content-type']))
        received.push({ headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise(r => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
  // Node's side: the OpenTelemetry SDK exporting to the same receiver
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'node-side' }),
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${receiverUrl}/v1/traces` }))],
  });
  trace.setGlobalTracerProvider(provider);
});

after(async () => {
  await killAll();
  await closeAll(closers);
  if (provider) await provider.shutdown();
  if (receiver) await new Promise(r => receiver.close(r));
});

const telemetry = () => new BullMQOtel('bullmq');

describe('OpenTelemetry with bullmq-otel', () => {
  it('a Node producer\'s trace continues in bullc-worker\'s process span', async () => {
    const prefix = uniquePrefix('otel');
    const queue = newQueue('traced', prefix, { telemetry: telemetry() });
    closers.push(queue);
    const ok = await queue.add('ok', { n: 1 });
    const bad = await queue.add('bad', { n: 2 });
    // Node's reference span for the same work, from its own worker
    const nodeQueue = newQueue('nodetraced', prefix, { telemetry: telemetry() });
    closers.push(nodeQueue);
    await nodeQueue.add('ok', { n: 1 });
    const nodeWorker = newWorker('nodetraced', prefix, async () => ({ done: true }), { telemetry: telemetry() });
    closers.push(nodeWorker);

    const r = new IORedis(redisUrl());
    closers.push(r);
    const stored = JSON.parse(await r.hget(`${prefix}:traced:${ok.id}`, 'opts'));
    const tp = JSON.parse(stored.tm).traceparent;
    assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    const addSpan = await span(s => s.name === 'add traced.ok', 'Node\'s add span');
    assert.equal(tp, `00-${addSpan.traceId}-${addSpan.spanId}-01`);

    // a shell processor: the job named "bad" fails with its reason
    const w = await startReady(['--queue', 'traced', '--exec', '/bin/sh', '--arg', '-c', '--arg',
      'if [ "$BULLC_JOB_NAME" = bad ]; then echo broken >&2; exit 3; fi; echo \'{"r":1}\''],
      { prefix, env: otelEnv({ OTEL_SERVICE_NAME: 'bullc-test', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=ci,team=a%2Cb',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=s3cret' }) });
    const proc = await span(s => s.name === 'process traced' && s.attributes['bullmq.job.id'] === ok.id, 'bullc\'s process span');
    assert.equal(proc.traceId, addSpan.traceId);
    assert.equal(proc.parentSpanId, addSpan.spanId);
    assert.equal(proc.kind, 5); // SPAN_KIND_CONSUMER
    assert.equal(proc.scope.name, 'bullmq');
    assert.equal(proc.resource['service.name'], 'bullc-test');
    assert.equal(proc.resource['deployment.environment'], 'ci');
    assert.equal(proc.resource.team, 'a,b');
    assert.equal(proc.headers['x-api-key'], 's3cret');
    assert.equal(proc.attributes['bullmq.queue.name'], 'traced');
    assert.equal(proc.attributes['bullmq.queue.operation'], 'process');
    assert.equal(proc.attributes['bullmq.job.name'], 'ok');
    assert.equal(proc.attributes['bullmq.job.attempts.made'], 1);
    assert.ok(BigInt(proc.endTimeUnixNano) >= BigInt(proc.startTimeUnixNano));
    assert.ok(BigInt(proc.startTimeUnixNano) >= BigInt(addSpan.startTimeUnixNano));
    assert.deepEqual(proc.events.map(e => e.name), ['job completed']);
    assert.deepEqual(JSON.parse(attrs(proc.events[0].attributes)['bullmq.job.result']), { r: 1 });

    // the same attribute names and event as Node's worker writes
    const nodeProc = await span(s => s.name === 'process nodetraced', 'Node\'s process span');
    assert.deepEqual(Object.keys(proc.attributes).sort(), Object.keys(nodeProc.attributes).sort());
    assert.equal(nodeProc.kind, proc.kind);
    assert.deepEqual(nodeProc.events.map(e => e.name), ['job completed']);

    const failed = await span(s => s.name === 'process traced' && s.attributes['bullmq.job.id'] === bad.id, 'the failed job\'s span');
    const badTp = JSON.parse(JSON.parse(await r.hget(`${prefix}:traced:${bad.id}`, 'opts')).tm).traceparent;
    assert.equal(`00-${failed.traceId}-${failed.parentSpanId}-01`, badTp);
    assert.deepEqual(failed.events.map(e => e.name), ['job failed']);
    assert.match(attrs(failed.events[0].attributes)['bullmq.job.failed.reason'], /broken/);
    await w.stop();
  });

  it('bullc add\'s trace continues in a Node worker with bullmq-otel', async () => {
    const prefix = uniquePrefix('otelr');
    const env = otelEnv({ OTEL_SERVICE_NAME: 'bullc-producer' });
    const id = bullc(['add', 'rev', 'from-c', '{"a":1}'], { prefix, env }).stdout.trim();
    const bulk = bullc(['add-bulk', 'rev'], { prefix, env,
      input: '{"name":"b1","data":{}}\n{"name":"b2","data":{}}\n' }).stdout.trim().split('\n');
    assert.equal(bulk.length, 2);
    // bullc exported its add spans before exiting
    const addSpan = await span(s => s.name === 'add rev.from-c' && s.resource['service.name'] === 'bullc-producer', 'bullc\'s add span', 5000);
    assert.equal(addSpan.kind, 4); // SPAN_KIND_PRODUCER
    assert.equal(addSpan.parentSpanId || '', '');
    assert.deepEqual(addSpan.attributes, { 'bullmq.queue.name': 'rev', 'bullmq.queue.operation': 'add',
      'bullmq.job.name': 'from-c', 'bullmq.job.id': id });
    const bulkSpan = await span(s => s.name === 'addBulk rev', 'bullc\'s addBulk span', 5000);
    assert.deepEqual(bulkSpan.attributes, { 'bullmq.queue.name': 'rev', 'bullmq.queue.operation': 'addBulk',
      'bullmq.job.bulk.names': ['b1', 'b2'], 'bullmq.job.bulk.count': 2 });

    const queue = newQueue('rev', prefix);
    closers.push(queue);
    const job = await queue.getJob(id);
    assert.equal(job.opts.telemetry.metadata, `{"traceparent":"00-${addSpan.traceId}-${addSpan.spanId}-01"}`);

    const worker = newWorker('rev', prefix, async () => 'ok', { telemetry: telemetry() });
    closers.push(worker);
    const proc = await span(s => s.name === 'process rev' && s.attributes['bullmq.job.id'] === id, 'Node\'s process span');
    assert.equal(proc.traceId, addSpan.traceId);
    assert.equal(proc.parentSpanId, addSpan.spanId);
    for (const bid of bulk) {
      const p = await span(s => s.name === 'process rev' && s.attributes['bullmq.job.id'] === bid, `process span of ${bid}`);
      assert.equal(p.traceId, bulkSpan.traceId);
      assert.equal(p.parentSpanId, bulkSpan.spanId);
    }
    // Node's own add span carries the same attribute names as bullc's
    const nq = newQueue('rev', prefix, { telemetry: telemetry() });
    closers.push(nq);
    const nj = await nq.add('from-node', {});
    const nodeAdd = await span(s => s.name === 'add rev.from-node', 'Node\'s add span');
    // the stored options in the same shape as Node's: attempts and tm
    const r = new IORedis(redisUrl());
    closers.push(r);
    const optsOf = async jid => JSON.parse(await r.hget(`${prefix}:rev:${jid}`, 'opts'));
    assert.deepEqual(Object.keys(await optsOf(id)), Object.keys(await optsOf(nj.id)));
    assert.deepEqual(Object.keys(await optsOf(id)).sort(), ['attempts', 'tm']);
    assert.deepEqual(Object.keys(nodeAdd.attributes).sort(), Object.keys(addSpan.attributes).sort());
    assert.equal(nodeAdd.kind, addSpan.kind);
  });

  for (const kind of ['refuses connections', 'never answers']) {
    it(`an endpoint that ${kind} neither slows nor fails jobs; its spans are counted as dropped`, async () => {
      const prefix = uniquePrefix('oteld');
      let port, silent;
      const sockets = new Set();
      if (kind === 'refuses connections') {
        port = await deadPort();
      } else {
        silent = net.createServer(s => (sockets.add(s), s.on('error', () => {})));
        await new Promise(r => silent.listen(0, '127.0.0.1', r));
        port = silent.address().port;
      }
      try {
        const httpPort = await deadPort();
        const queue = newQueue('dead', prefix);
        closers.push(queue);
        const w = await startReady(['--queue', 'dead', '--builtin', 'echo', '--concurrency', '4', '--http', `127.0.0.1:${httpPort}`],
          { prefix, env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
            OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_BSP_MAX_QUEUE_SIZE: '50', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
            OTEL_EXPORTER_OTLP_TIMEOUT: '300' } });
        const n = 300;
        const t0 = Date.now();
        await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'j', data: { i } })));
        await eventually(async () => (await queue.getJobCounts('completed')).completed === n, 20000, `${n} completed`);
        const took = Date.now() - t0;
        assert.equal((await queue.getJobCounts('failed')).failed, 0);
        // 300 echo jobs take well under a second here; one blocked export
        // alone would be 300 ms, one per job 90 s
        assert.ok(took < 10000, `${n} jobs took ${took} ms`);
        let text = '';
        await eventually(async () => {
          text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
          return /^bullc_worker_trace_spans_dropped_total (\d+)$/m.exec(text)?.[1] === String(n);
        }, 15000, 'every span counted as dropped');
        assert.match(text, /^bullc_worker_trace_spans_exported_total 0$/m);
        const t1 = Date.now();
        const exit = await w.stop();
        assert.equal(exit.code, 0);
        assert.ok(Date.now() - t1 < 5000, 'shutdown is not held up by the endpoint');
      } finally {
        for (const s of sockets) s.destroy();
        if (silent) await new Promise(r => silent.close(r));
      }
    });
  }

  it('bullc_aqueue_add\'s trace continues in a Node worker as well', async () => {
    const prefix = uniquePrefix('otela');
    const env = otelEnv({ OTEL_SERVICE_NAME: 'bullc-async-producer' });
    // the asynchronous add (tests/support/aqueue_add.c: bullc add's command line over bullc_aqueue_add)
    const r = spawnSync(path.join(process.env.BULLC_BIN_DIR, 'bullc-test-aqueue-add'),
      ['--redis', redisUrl(), '--prefix', prefix, 'add', 'arev', 'from-async', '{"a":1}'], { env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const id = r.stdout.trim();
    const addSpan = await span(s => s.name === 'add arev.from-async' && s.resource['service.name'] ===
      'bullc-async-producer', 'bullc_aqueue_add\'s add span', 5000);
    assert.equal(addSpan.kind, 4); // SPAN_KIND_PRODUCER
    assert.deepEqual(addSpan.attributes, { 'bullmq.queue.name': 'arev', 'bullmq.queue.operation': 'add',
      'bullmq.job.name': 'from-async', 'bullmq.job.id': id });
    const queue = newQueue('arev', prefix);
    closers.push(queue);
    const job = await queue.getJob(id);
    assert.equal(job.opts.telemetry.metadata, `{"traceparent":"00-${addSpan.traceId}-${addSpan.spanId}-01"}`);
    const worker = newWorker('arev', prefix, async () => 'ok', { telemetry: telemetry() });
    closers.push(worker);
    const proc = await span(s => s.name === 'process arev' && s.attributes['bullmq.job.id'] === id,
      'Node\'s process span of the asynchronously added job');
    assert.equal(proc.traceId, addSpan.traceId);
    assert.equal(proc.parentSpanId, addSpan.spanId);
  });

  it('without OTEL_* settings nothing is traced and no context is stored', async () => {
    const prefix = uniquePrefix('oteln');
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
    const id = bullc(['add', 'plain', 'x'], { prefix, env }).stdout.trim();
    const r = new IORedis(redisUrl());
    closers.push(r);
    assert.equal(JSON.parse(await r.hget(`${prefix}:plain:${id}`, 'opts')).tm, undefined);
    const bad = bullc(['add', 'plain', 'x'], { prefix, env: { ...env, OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://collector:4317' } });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc:\/\/collector:4317' is not an http:\/\/ or https:\/\/ URL/);
  });
});
