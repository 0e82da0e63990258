// SPDX-License-Identifier: MIT
// OTLP over HTTPS (docs/observability.md): bullc-worker and bullc export
// their spans to Node https receivers with certificates made here with
// openssl, verified against OTEL_EXPORTER_OTLP_CERTIFICATE, with a client
// certificate for mutual TLS. A CA that does not match, or an https://
// endpoint on a plain port, drops the spans (counted, one log line) and
// never sends them in clear, while every job completes.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const { context, propagation, trace } = require('@opentelemetry/api');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { W3CTraceContextPropagator } = require('@opentelemetry/core');
const { BasicTracerProvider } = require('@opentelemetry/sdk-trace-base');
const { BullMQOtel } = require('bullmq-otel');
const IORedis = require('ioredis');
const { bullc, bullcPath, closeAll, eventually, newQueue, redisUrl, uniquePrefix } = require('../lib/harness');
const { Proc, freePort, killAll, startReady, tmpDir } = require('../lib/worker-proc');
const { certs } = require('../lib/certs');

const { f, cert } = certs(tmpDir('otlp-tls'));
const closers = [];
const servers = [];
let provider;

// A receiver: every POST to /v1/traces with the spans in it and the CN of
// the client's certificate (mutual TLS), or, plain, every request at all.
async function receiver(kind) {
  const got = [];
  const onRequest = (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', c => (body += c));
    req.on('end', () => {
      const peer = req.socket.getPeerCertificate ? req.socket.getPeerCertificate() : null;
      got.push({ url: req.url, body, client: peer && peer.subject ? peer.subject.CN : undefined });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  };
  const tls = { key: fs.readFileSync(f('server.key')), cert: fs.readFileSync(f('server.crt')) };
  const srv = kind === 'plain' ? http.createServer(onRequest)
    : https.createServer(kind === 'mutual' ? { ...tls, ca: fs.readFileSync(f('ca.crt')), requestCert: true,
      rejectUnauthorized: true } : tls, onRequest);
  srv.on('tlsClientError', () => {});
  await new Promise(r => srv.listen(0, '127.0.0.1', r));
  servers.push(srv);
  const port = srv.address().port;
  const spans = () => got.flatMap(g => {
    if (g.url !== '/v1/traces') return [];
    return JSON.parse(g.body).resourceSpans.flatMap(rs => rs.scopeSpans.flatMap(ss => ss.spans
      .map(s => ({ ...s, client: g.client, attributes: Object.fromEntries(s.attributes
        .map(a => [a.key, a.value.stringValue ?? a.value.intValue])) }))));
  });
  return { port, got, spans, url: `https://127.0.0.1:${port}` };
}

function env(endpoint, extra = {}) {
  const e = { ...process.env };
  for (const k of Object.keys(e)) if (k.startsWith('OTEL_')) delete e[k];
  return { ...e, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100', ...extra };
}

async function metric(port, name) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

before(() => {
  cert('ca', 'bullc otel CA');
  cert('otherca', 'another CA');
  cert('server', 'localhost', { ca: 'ca', san: 'DNS:localhost,IP:127.0.0.1' });
  cert('client', 'bullc otel client', { ca: 'ca' });
  // Node's producer: bullmq-otel writes the job's trace context ("tm")
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  provider = new BasicTracerProvider();
  trace.setGlobalTracerProvider(provider);
});

after(async () => {
  await killAll();
  await closeAll(closers);
  if (provider) await provider.shutdown();
  for (const s of servers) {
    s.closeAllConnections?.();
    await new Promise(r => s.close(r));
  }
});

describe('OTLP over HTTPS', () => {
  it('a Node producer\'s trace continues in bullc-worker\'s span, sent over HTTPS verified against the CA', async () => {
    const rx = await receiver('tls');
    const prefix = uniquePrefix('otls');
    const queue = newQueue('tq', prefix, { telemetry: new BullMQOtel('bullmq') });
    closers.push(queue);
    const job = await queue.add('j', { n: 1 });
    const r = new IORedis(redisUrl());
    closers.push(r);
    const tp = JSON.parse(JSON.parse(await r.hget(`${prefix}:tq:${job.id}`, 'opts')).tm).traceparent;
    const httpPort = await freePort();
    const w = await startReady(['--queue', 'tq', '--builtin', 'echo', '--http', `127.0.0.1:${httpPort}`],
      { prefix, env: env(rx.url, { OTEL_EXPORTER_OTLP_CERTIFICATE: f('ca.crt') }) });
    let s;
    await eventually(() => (s = rx.spans().find(x => x.attributes['bullmq.job.id'] === job.id)), 15000, 'the span');
    assert.equal(s.name, 'process tq');
    assert.equal(`00-${s.traceId}-${s.parentSpanId}-01`, tp);
    assert.equal(await metric(httpPort, 'bullc_worker_trace_spans_dropped_total'), 0);
    assert.ok(await metric(httpPort, 'bullc_worker_trace_spans_exported_total') >= 1);
    assert.doesNotMatch(w.text(), /tracing-export-failed/);
    assert.equal((await w.stop()).code, 0);

    // bullc's producer exports its add span the same way before it exits
    // (a child of its own: spawnSync would hold this process's receiver)
    const add = new Proc(bullcPath(), ['--redis', redisUrl(), '--prefix', prefix, 'add', 'tq', 'from-c', '{}'],
      { env: env(rx.url, { OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: f('ca.crt') }) });
    assert.equal((await add.waitExit(20000)).code, 0, add.text());
    const a = rx.spans().find(x => x.name === 'add tq.from-c');
    assert.ok(a, 'bullc add\'s span arrived before it exited');
    assert.deepEqual(add.lines, [a.attributes['bullmq.job.id']], 'the id, and nothing on stderr');
  });

  it('mutual TLS: the client certificate and key from OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/_CLIENT_KEY', async () => {
    const rx = await receiver('mutual');
    const prefix = uniquePrefix('otlm');
    const queue = newQueue('mq', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'mq', '--builtin', 'echo'], { prefix, env: env(rx.url, {
      OTEL_EXPORTER_OTLP_CERTIFICATE: f('ca.crt'), OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: f('client.crt'),
      OTEL_EXPORTER_OTLP_CLIENT_KEY: f('client.key') }) });
    const job = await queue.add('j', {});
    let s;
    await eventually(() => (s = rx.spans().find(x => x.attributes['bullmq.job.id'] === job.id)), 15000, 'the span');
    assert.equal(s.client, 'bullc otel client');
    assert.equal((await w.stop()).code, 0);

    // without a client certificate the receiver refuses the connection: dropped, said once
    const httpPort = await freePort();
    const w2 = await startReady(['--queue', 'mq', '--builtin', 'echo', '--http', `127.0.0.1:${httpPort}`],
      { prefix, env: env(rx.url, { OTEL_EXPORTER_OTLP_CERTIFICATE: f('ca.crt') }) });
    const before = rx.got.length;
    await queue.add('j2', {});
    await eventually(async () => await metric(httpPort, 'bullc_worker_trace_spans_dropped_total') === 1, 15000,
      'the span dropped');
    assert.equal(rx.got.length, before);
    assert.match(await w2.waitFor(/tracing-export-failed/), /OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE/);
    assert.equal((await w2.stop()).code, 0);
  });

  for (const [what, kind, ca, why] of [
    ['a CA that did not sign the collector\'s certificate', 'tls', 'otherca.crt',
      /certificate of https:\/\/127\.0\.0\.1:\d+ was refused: .*OTEL_EXPORTER_OTLP_CERTIFICATE names the CA/],
    ['an https:// endpoint on a plain HTTP port', 'plain', 'ca.crt', /TLS handshake with https:\/\/127\.0\.0\.1:\d+ failed/],
  ]) {
    it(`${what}: spans dropped and counted, one log line, nothing sent in clear, every job completed`, async () => {
      const rx = await receiver(kind);
      const prefix = uniquePrefix('otlx');
      const queue = newQueue('xq', prefix);
      closers.push(queue);
      const httpPort = await freePort();
      const w = await startReady(['--queue', 'xq', '--builtin', 'echo', '--concurrency', '4',
        '--http', `127.0.0.1:${httpPort}`], { prefix, env: env(rx.url, { OTEL_EXPORTER_OTLP_CERTIFICATE: f(ca),
        OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10' }) });
      const n = 200;
      await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'j', data: { i } })));
      await eventually(async () => (await queue.getJobCounts('completed')).completed === n, 20000, `${n} completed`);
      assert.equal((await queue.getJobCounts('failed')).failed, 0);
      await eventually(async () => await metric(httpPort, 'bullc_worker_trace_spans_dropped_total') === n, 15000,
        'every span counted as dropped');
      assert.equal(await metric(httpPort, 'bullc_worker_trace_spans_exported_total'), 0);
      assert.deepEqual(rx.got, [], 'no request reached the receiver');
      const lines = w.lines.filter(l => /tracing-export-failed/.test(l));
      assert.equal(lines.length, 1, `one line for the outage, not one per batch:\n${lines.join('\n')}`);
      assert.match(lines[0], /OTLP export to https:\/\/127\.0\.0\.1:\d+\/v1\/traces failed/);
      assert.match(lines[0], why);
      assert.equal((await w.stop()).code, 0);
    });
  }

  it('TLS settings with an http:// endpoint, or a client certificate without its key, are refused (exit 2)', () => {
    const http1 = bullc(['add', 'u', 'x'], { env: env('http://127.0.0.1:4318', {
      OTEL_EXPORTER_OTLP_CERTIFICATE: f('ca.crt') }) });
    assert.equal(http1.status, 2);
    assert.match(http1.stderr, /OTEL_EXPORTER_OTLP_CERTIFICATE is set but the endpoint 'http:\/\/127\.0\.0\.1:4318\/v1\/traces' is not https:\/\//);
    const half = bullc(['add', 'u', 'x'], { env: env('https://127.0.0.1:4318', {
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: f('client.crt') }) });
    assert.equal(half.status, 2);
    assert.match(half.stderr, /OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is set without OTEL_EXPORTER_OTLP_CLIENT_KEY/);
  });
});
