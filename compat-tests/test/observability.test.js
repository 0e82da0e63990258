// SPDX-License-Identifier: MIT
// bullc-worker --http (docs/observability.md): /metrics checked by Debian's
// promtool and scraped by a real Prometheus server, counters equal to the
// jobs processed and job counts equal to Node's getJobCounts; /healthz
// measured (Redis stopped and back, the process frozen); /readyz during a
// graceful drain.
'use strict';

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const IORedis = require('ioredis');
const {
  bullc, bullcOk, bullmqVersionString, closeAll, eventually, newQueue, newWorker, redisUrl, uniquePrefix,
} = require('../lib/harness');
const { Proc, RedisServer, killAll, startReady, tmpDir } = require('../lib/worker-proc');
const { panels: dashboardPanels, readDashboard } = require('../../tools/dashboard/queries');

const closers = [];
after(async () => {
  await killAll();
  await closeAll(closers);
});

// The test's HTTP (and own redis-server) ports: 5 to 9 above the suite's
// Redis port, the range given to this suite's observability tests.
const base = Number(new URL(redisUrl()).port) + 5;
const HTTP = base, PROM = base + 1, OWN_REDIS = base + 2, HTTP2 = base + 3;

async function get(port, p) {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

// The samples of a Prometheus text page: {name, labels, value}.
function samples(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}
const value = (text, name, labels = {}) => {
  const s = samples(text).find(x => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : undefined;
};

describe('bullc-worker --http', () => {
  it('/metrics: promtool accepts it, counters equal the jobs processed, counts equal getJobCounts', async () => {
    const prefix = uniquePrefix('obsm');
    const queue = newQueue('obs', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'obs', '--builtin', 'echo', '--http', `127.0.0.1:${HTTP}`,
      '--counts-cache', '0'], { prefix });
    await queue.addBulk(Array.from({ length: 20 }, (_, i) => ({ name: 'ok', data: { i } })));
    await queue.add('later', {}, { delay: 60000 });
    await eventually(async () => (await queue.getJobCounts('completed')).completed === 20, 10000, '20 completed');
    const m = await get(HTTP, '/metrics');
    assert.equal(m.status, 200);
    assert.equal(m.type, 'text/plain; version=0.0.4; charset=utf-8');
    const counts = await queue.getJobCounts();
    for (const [state, n] of Object.entries(counts))
      assert.equal(value(m.body, 'bullmq_job_count', { queue: 'obs', state }), n, `bullmq_job_count ${state}`);
    assert.equal(value(m.body, 'bullmq_job_count', { queue: 'obs', state: 'delayed' }), 1);
    assert.equal(value(m.body, 'bullc_worker_jobs_total', { queue: 'obs', result: 'completed' }), 20);
    assert.equal(value(m.body, 'bullc_worker_jobs_total', { queue: 'obs', result: 'failed' }), 0);
    assert.equal(value(m.body, 'bullc_worker_job_duration_seconds_count', { queue: 'obs' }), 20);
    assert.equal(value(m.body, 'bullc_worker_job_duration_seconds_bucket', { queue: 'obs', le: '+Inf' }), 20);
    assert.equal(value(m.body, 'bullc_worker_active_jobs', { queue: 'obs' }), 0);
    assert.equal(value(m.body, 'bullc_worker_redis_up'), 1);
    assert.equal(value(m.body, 'bullc_worker_reconnects_total'), 0);
    assert.equal(value(m.body, 'bullc_worker_lock_lost_total', { queue: 'obs' }), 0);
    assert.equal(value(m.body, 'bullc_worker_stalled_total', { queue: 'obs' }), 0);
    assert.ok(value(m.body, 'process_resident_memory_bytes') > 1e6);
    assert.ok(value(m.body, 'process_cpu_seconds_total') > 0);
    assert.match(m.body, /^bullc_worker_info\{version="\d+\.\d+\.\d+",bullmq="\d+\.\d+\.\d+"\} 1$/m);
    // promtool's only complaint is the name Node's exportPrometheusMetrics
    // chose (and dashboards use): a gauge ending in _count
    const pt = spawnSync('promtool', ['check', 'metrics'], { input: m.body, encoding: 'utf8' });
    assert.equal(pt.error, undefined, 'promtool runs (Debian package prometheus)');
    const complaints = (pt.stdout + pt.stderr).split('\n').filter(Boolean);
    assert.deepEqual(complaints,
      ['bullmq_job_count non-histogram and non-summary metrics should not have "_count" suffix'], pt.stdout + pt.stderr);
    // a scrape within --counts-cache 0 reads Redis again
    await queue.add('more', {});
    await eventually(async () =>
      value((await get(HTTP, '/metrics')).body, 'bullc_worker_jobs_total', { queue: 'obs', result: 'completed' }) === 21,
    10000, 'the 21st job counted');
    assert.equal((await get(HTTP, '/nope')).status, 404);
    assert.equal((await w.stop()).code, 0);
  });

  it("/metrics serving a BullMQ 5.x and a 6.x queue: each one's counts as its Node major lists them, info per major",
    async () => {
      const prefix = uniquePrefix('obs56');
      const q5 = newQueue('q5', prefix, { bullmqMajor: 5 });
      const q6 = newQueue('q6', prefix, { bullmqMajor: 6 });
      closers.push(q5, q6);
      // paused: a 5.x queue keeps its waiting jobs in `paused`, a 6.x one in `wait`
      await q5.pause();
      await q6.pause();
      await q5.addBulk([1, 2, 3].map(i => ({ name: 'p', data: { i } })));
      await q5.add('later', {}, { delay: 60000 });
      await q6.addBulk([1, 2].map(i => ({ name: 'p', data: { i } })));
      const dir = tmpDir('obs56');
      const file = path.join(dir, 'worker.json');
      fs.writeFileSync(file, JSON.stringify({
        queues: { q5: { builtin: 'echo', bullmqVersion: 5 }, q6: { builtin: 'echo', bullmqVersion: 6 } },
      }));
      const w = await startReady(['--config', file, '--http', `127.0.0.1:${HTTP}`, '--counts-cache', '0'], { prefix });
      const check = async (m, what) => {
        for (const [queue, q] of [['q5', q5], ['q6', q6]]) {
          const node = await q.getJobCounts();
          const listed = samples(m.body).filter(x => x.name === 'bullmq_job_count' && x.labels.queue === queue);
          assert.deepEqual(listed.map(x => [x.labels.state, x.value]), Object.entries(node),
            `${what}: ${queue}'s states, their order and counts are its Node major's getJobCounts()`);
        }
      };
      let m = await get(HTTP, '/metrics');
      await check(m, 'paused');
      assert.equal(value(m.body, 'bullmq_job_count', { queue: 'q5', state: 'paused' }), 3);
      assert.equal(value(m.body, 'bullmq_job_count', { queue: 'q5', state: 'waiting' }), 0);
      assert.equal(value(m.body, 'bullmq_job_count', { queue: 'q6', state: 'waiting' }), 2);
      assert.equal(value(m.body, 'bullmq_job_count', { queue: 'q6', state: 'paused' }), undefined);
      const info = samples(m.body).filter(x => x.name === 'bullc_worker_info');
      assert.deepEqual(info.map(x => x.labels.bullmq),
        [5, 6].map(major => bullmqVersionString(major).replace('bullmq:', '')), 'one bullc_worker_info per major');
      const pt = spawnSync('promtool', ['check', 'metrics'], { input: m.body, encoding: 'utf8' });
      assert.deepEqual((pt.stdout + pt.stderr).split('\n').filter(Boolean),
        ['bullmq_job_count non-histogram and non-summary metrics should not have "_count" suffix'], pt.stdout + pt.stderr);
      // resumed by their Node peers, both queues are processed by the one bullc-worker
      await q5.resume();
      await q6.resume();
      await eventually(async () => {
        m = await get(HTTP, '/metrics');
        return value(m.body, 'bullmq_job_count', { queue: 'q5', state: 'completed' }) === 3 &&
          value(m.body, 'bullmq_job_count', { queue: 'q6', state: 'completed' }) === 2;
      }, 10000, 'the 5 jobs completed and counted');
      await check(m, 'resumed');
      assert.equal(value(m.body, 'bullc_worker_jobs_total', { queue: 'q5', result: 'completed' }), 3);
      assert.equal((await w.stop()).code, 0);
    });

  it('a Prometheus server scrapes it: the counter it stores equals the jobs processed', async () => {
    const prefix = uniquePrefix('obsp');
    const queue = newQueue('scraped', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'scraped', '--builtin', 'echo', '--http', `127.0.0.1:${HTTP}`], { prefix });
    const dir = tmpDir('prometheus');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global: {scrape_interval: 1s, scrape_timeout: 900ms}',
      'scrape_configs:',
      '  - job_name: bullc-worker',
      `    static_configs: [{targets: ['127.0.0.1:${HTTP}']}]`,
      '',
    ].join('\n'));
    const prom = new Proc('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${PROM}`]);
    await prom.waitFor(/Server is ready to receive web requests/, 30000);
    await queue.addBulk(Array.from({ length: 37 }, (_, i) => ({ name: 'n', data: { i } })));
    const query = async q => {
      const r = await fetch(`http://127.0.0.1:${PROM}/api/v1/query?query=${encodeURIComponent(q)}`);
      const j = await r.json();
      if (j.status !== 'success') throw new Error(`Prometheus refused ${q}: ${j.error}`);
      return j.data.result;
    };
    await eventually(async () => {
      const r = await query('bullc_worker_jobs_total{queue="scraped",result="completed"}');
      return r.length === 1 && r[0].value[1] === '37';
    }, 30000, 'Prometheus to store 37 completed jobs', 500);
    // every panel of the Grafana dashboard (docs/grafana) has queries, and
    // each evaluates, on this server, to some series: expanded as
    // tools/dashboard/render.js expands them for docs/grafana/dashboard.png
    const panels = dashboardPanels(readDashboard(), { rateInterval: '1m' });
    assert.ok(panels.length >= 8, `${panels.length} dashboard panels`);
    for (const p of panels) {
      assert.ok(p.targets.length > 0, `the panel "${p.title}" has no query`);
      assert.ok(['timeseries', 'stat'].includes(p.type), `the panel "${p.title}" is a ${p.type}, which render.js does not draw`);
      for (const t of p.targets)
        await eventually(async () => (await query(t.expr)).length > 0, 15000,
          `the query ${t.expr} of "${p.title}" to return series`, 500);
    }
    const up = await query('up{job="bullc-worker"}');
    assert.equal(up[0].value[1], '1');
    const waiting = await query('bullmq_job_count{queue="scraped",state="completed"}');
    assert.equal(waiting[0].value[1], '37');
    prom.kill('SIGTERM');
    assert.equal((await prom.waitExit(15000)).code, 0);
    assert.equal((await w.stop()).code, 0);
  });

  it('/healthz: 503 with the reason while Redis is stopped, 200 again after it restarts, processing resumed', async () => {
    const r = await new RedisServer(OWN_REDIS, tmpDir('obs-redis')).start();
    const client = new IORedis(OWN_REDIS, { maxRetriesPerRequest: null });
    closers.push(client);
    const queue = newQueue('health', 'obsh', { connection: { port: OWN_REDIS } });
    closers.push(queue);
    const w = await startReady(['--queue', 'health', '--prefix', 'obsh', '--builtin', 'echo',
      '--http', `127.0.0.1:${HTTP2}`], { redis: r.url });
    let h = await get(HTTP2, '/healthz');
    assert.deepEqual([h.status, h.body], [200, 'ok\n']);
    assert.equal((await get(HTTP2, '/readyz')).status, 200);
    await r.kill();
    await eventually(async () => (await get(HTTP2, '/healthz')).status === 503, 10000, '/healthz 503');
    h = await get(HTTP2, '/healthz');
    assert.match(h.body, /^redis unreachable \(queue health: not connected\)\n$/);
    assert.equal((await get(HTTP2, '/readyz')).status, 503);
    let m = await get(HTTP2, '/metrics');
    assert.equal(m.status, 200, 'metrics still answer, without job counts');
    assert.equal(value(m.body, 'bullc_worker_redis_up'), 0);
    assert.equal(value(m.body, 'bullmq_job_count', { queue: 'health', state: 'waiting' }), undefined);
    await r.start();
    await eventually(async () => (await get(HTTP2, '/healthz')).status === 200, 20000, '/healthz 200 again');
    const job = await queue.add('after', { x: 1 });
    await eventually(async () => (await queue.getJobState(job.id)) === 'completed', 10000, 'a job after the restart');
    m = await get(HTTP2, '/metrics');
    assert.equal(value(m.body, 'bullc_worker_redis_up'), 1);
    assert.ok(value(m.body, 'bullc_worker_reconnects_total') >= 1);
    assert.equal(value(m.body, 'bullc_worker_jobs_total', { queue: 'health', result: 'completed' }), 1);
    assert.equal((await w.stop()).code, 0);
    await r.kill();
  });

  it('/healthz: 503 after the event loop was stuck longer than --health-max-lag (process frozen)', async () => {
    const prefix = uniquePrefix('obsl');
    const w = await startReady(['--queue', 'lag', '--builtin', 'noop', '--http', `127.0.0.1:${HTTP}`,
      '--health-max-lag', '500'], { prefix });
    assert.equal((await get(HTTP, '/healthz')).status, 200);
    process.kill(w.pid, 'SIGSTOP');
    await new Promise(res => setTimeout(res, 1500));
    process.kill(w.pid, 'SIGCONT');
    const h = await get(HTTP, '/healthz');
    assert.equal(h.status, 503);
    assert.match(h.body, /^event loop stalled for \d+ ms \(limit 500 ms\) \d+ s ago\n$/);
    await w.waitFor(/stalled-loop ms=\d+/);
    assert.equal((await w.stop()).code, 0);
  });

  it('/readyz: 503 while a graceful shutdown drains the job in process', async () => {
    const prefix = uniquePrefix('obsr');
    const queue = newQueue('drain', prefix);
    closers.push(queue);
    const w = await startReady(['--queue', 'drain', '--builtin', 'sleep', '--http', `127.0.0.1:${HTTP}`], { prefix });
    assert.deepEqual(await get(HTTP, '/readyz').then(r => [r.status, r.body]), [200, 'ok\n']);
    const job = await queue.add('slow', { sleepMs: 1500 });
    await eventually(async () => (await queue.getJobState(job.id)) === 'active', 5000, 'job active');
    w.kill('SIGTERM');
    await w.waitFor(/shutdown mode=graceful/);
    const r = await get(HTTP, '/readyz');
    assert.deepEqual([r.status, r.body], [503, 'shutting down: draining the jobs in process\n']);
    assert.equal((await get(HTTP, '/healthz')).status, 200, 'draining is healthy');
    assert.equal((await w.waitExit(10000)).code, 0);
    assert.equal(await queue.getJobState(job.id), 'completed');
  });

  it('--http refuses a bad address (exit 2) and a port in use', async () => {
    const prefix = uniquePrefix('obsb');
    const { startWorker } = require('../lib/worker-proc');
    // checked with the other options: an unreachable Redis is not reached first (that would exit 3)
    const bad = startWorker(['--queue', 'b', '--builtin', 'noop', '--http', 'nonsense'],
      { prefix, redis: 'redis://127.0.0.1:1' });
    assert.equal((await bad.waitExit()).code, 2, bad.text());
    assert.match(bad.text(), /^bullc-worker: --http must be ADDR:PORT \(e\.g\. 127\.0\.0\.1:9464\), not 'nonsense'/);
    const first = await startReady(['--queue', 'b', '--builtin', 'noop', '--http', `127.0.0.1:${HTTP}`], { prefix });
    const second = startWorker(['--queue', 'b', '--builtin', 'noop', '--http', `127.0.0.1:${HTTP}`], { prefix });
    assert.equal((await second.waitExit()).code, 2);
    assert.match(second.text(), /cannot listen there/);
    assert.equal((await first.stop()).code, 0);
  });
});

describe('bullc metrics --prometheus', () => {
  it("prints what Node's exportPrometheusMetrics prints, with and without labels", async () => {
    const prefix = uniquePrefix('obsx');
    const name = 'm"q\\x\ny';
    const queue = newQueue(name, prefix);
    closers.push(queue);
    const worker = newWorker(name, prefix, async job => {
      if (job.data.fail) throw new Error('no');
      return 1;
    }, { metrics: { maxDataPoints: 10 } });
    closers.push(worker);
    await queue.addBulk([{ name: 'a', data: {} }, { name: 'b', data: {} }, { name: 'c', data: { fail: 1 } }]);
    await eventually(async () => {
      const c = await queue.getJobCounts('completed', 'failed');
      return c.completed === 2 && c.failed === 1;
    }, 10000, 'jobs processed by Node');
    await worker.close();
    await queue.add('later', {}, { delay: 60000 });
    await queue.add('prio', {}, { priority: 3 });
    const node = await queue.exportPrometheusMetrics();
    assert.match(node, /bullmq_job_completed_total\{queue="m\\"q\\\\x\\ny"\} 2/);
    assert.equal(bullcOk(['metrics', name, '--prometheus'], { prefix }), `${node}\n`);
    const labels = { env: 'prod', tricky: 'a"b\\c\nd', env2: 'x' };
    const withLabels = await queue.exportPrometheusMetrics({ ...labels, env: 'again' });
    assert.equal(bullcOk(['metrics', name, '--prometheus', '--label', 'env=prod', '--label', `tricky=${labels.tricky}`,
      '--label', 'env2=x', '--label', 'env=again'], { prefix }), `${withLabels}\n`);
    const bad = bullc(['metrics', name, '--prometheus', '--label', 'novalue'], { prefix });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--label must be KEY=VALUE/);
    assert.equal(bullc(['metrics', name, '--label', 'a=b'], { prefix }).status, 2, '--label needs --prometheus');
  });

  it("on a BullMQ 5.x queue prints what Node 5's exportPrometheusMetrics prints (paused is a state there)", async () => {
    const prefix = uniquePrefix('obs5');
    const queue = newQueue('m5', prefix, { bullmqMajor: 5 });
    closers.push(queue);
    await queue.add('w', {});
    await queue.pause();
    await queue.addBulk([{ name: 'p1', data: {} }, { name: 'p2', data: {} }]);
    await queue.add('later', {}, { delay: 60000 });
    const node = await queue.exportPrometheusMetrics();
    assert.match(node, /state="paused"\} 3/, 'Node 5 counts the paused jobs apart');
    assert.equal(bullcOk(['metrics', 'm5', '--prometheus'], { prefix }), `${node}\n`);
  });
});

// Node's #exportPrometheusMetrics cases stub getJobCounts and getMetrics with sinon; here the queue
// really holds those counts (jobs in each state, metrics counted by a worker), and bullc's page is
// Node's page byte for byte besides holding the lines Node's case expects.
describe("bullc metrics --prometheus: Node's #exportPrometheusMetrics cases", () => {
  // A queue holding `counts` jobs per state (waiting, active, completed, delayed, failed), the
  // completed and failed ones processed by a Node worker collecting metrics unless `metrics` is false.
  async function queueWith(name, prefix, counts, { metrics = true } = {}) {
    const queue = newQueue(name, prefix);
    closers.push(queue);
    const finished = (counts.completed || 0) + (counts.failed || 0);
    if (finished) {
      const worker = newWorker(name, prefix, async job => {
        if (job.data.fail) throw new Error('no');
        return 1;
      }, metrics ? { metrics: { maxDataPoints: 10 } } : {});
      closers.push(worker);
      await queue.addBulk([
        ...Array.from({ length: counts.completed || 0 }, () => ({ name: 'c', data: {} })),
        ...Array.from({ length: counts.failed || 0 }, () => ({ name: 'f', data: { fail: 1 } })),
      ]);
      await eventually(async () => {
        const c = await queue.getJobCounts('completed', 'failed');
        return c.completed === (counts.completed || 0) && c.failed === (counts.failed || 0);
      }, 20000, 'jobs processed by Node');
      await worker.close();
    }
    if (counts.active) {
      // taken by a worker that does not process them: they stay active
      await queue.addBulk(Array.from({ length: counts.active }, () => ({ name: 'a', data: {} })));
      const manual = newWorker(name, prefix, null, { autorun: false });
      closers.push(manual);
      for (let i = 0; i < counts.active; i++) assert.ok(await manual.getNextJob(`t${i}`), 'an active job');
    }
    for (let i = 0; i < (counts.delayed || 0); i++) await queue.add('d', {}, { delay: 600000 });
    if (counts.waiting) await queue.addBulk(Array.from({ length: counts.waiting }, () => ({ name: 'w', data: {} })));
    return queue;
  }

  // bullc's page, checked equal to Node's
  async function page(queue, name, prefix, labels = {}) {
    const node = await queue.exportPrometheusMetrics(Object.keys(labels).length ? labels : undefined);
    const flags = Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    const out = bullcOk(['metrics', name, '--prometheus', ...flags], { prefix });
    assert.equal(out, `${node}\n`);
    return out;
  }

  const counts = { waiting: 5, active: 3, completed: 10, delayed: 2, failed: 1 };

  // node: "should export all job states in Prometheus gauge format"
  it('every job state as a bullmq_job_count gauge', async () => {
    const prefix = uniquePrefix('obsg');
    const queue = await queueWith('gauge', prefix, counts);
    const out = await page(queue, 'gauge', prefix);
    assert.ok(out.includes('# HELP bullmq_job_count Number of jobs in the queue by state\n'), out);
    assert.ok(out.includes('# TYPE bullmq_job_count gauge\n'), out);
    for (const [state, n] of Object.entries(counts))
      assert.ok(out.includes(`bullmq_job_count{queue="gauge", state="${state}"} ${n}\n`), `${state} ${n}:\n${out}`);
  });

  // node: "should export all job states in Prometheus gauge format with global variables"
  it('every job state with the global variables as labels, in their order', async () => {
    const prefix = uniquePrefix('obsv');
    const queue = await queueWith('vars', prefix, counts);
    const out = await page(queue, 'vars', prefix, { env: 'Production', server: '1' });
    for (const [state, n] of Object.entries(counts))
      assert.ok(out.includes(`bullmq_job_count{queue="vars", state="${state}", env="Production", server="1"} ${n}\n`),
        `${state} ${n}:\n${out}`);
  });

  // node: "should export bullmq_job_completed_total and bullmq_job_failed_total counters from getMetrics"
  it('completed and failed totals from the metrics a worker counted', async () => {
    const prefix = uniquePrefix('obsc');
    const queue = await queueWith('totals', prefix, { completed: 42, failed: 7 });
    const out = await page(queue, 'totals', prefix);
    for (const line of ['# HELP bullmq_job_completed_total Total number of completed jobs',
      '# TYPE bullmq_job_completed_total counter', 'bullmq_job_completed_total{queue="totals"} 42',
      '# HELP bullmq_job_failed_total Total number of failed jobs', '# TYPE bullmq_job_failed_total counter',
      'bullmq_job_failed_total{queue="totals"} 7'])
      assert.ok(out.split('\n').includes(line), `${line}:\n${out}`);
  });

  // node: "should emit zero-valued counters when metrics collection is disabled"
  it('zero totals when no worker collected metrics, though jobs finished', async () => {
    const prefix = uniquePrefix('obsz');
    const queue = await queueWith('zero', prefix, { completed: 2, failed: 1 }, { metrics: false });
    const out = await page(queue, 'zero', prefix);
    assert.ok(out.includes('bullmq_job_completed_total{queue="zero"} 0\n'), out);
    assert.ok(out.includes('bullmq_job_failed_total{queue="zero"} 0\n'), out);
    assert.ok(out.includes('bullmq_job_count{queue="zero", state="completed"} 2\n'), out);
  });

  // node: "should escape special characters in queue names and global variable values"
  it('a queue name and a label value with a double quote, a backslash and a newline, escaped', async () => {
    const prefix = uniquePrefix('obse');
    const rawName = 'queue' + '"' + 'name' + '\\' + 'with' + '\n' + 'specials';
    const queue = await queueWith(rawName, prefix, { waiting: 1 });
    const out = await page(queue, rawName, prefix, { env: 'pro' + '"' + 'd' });
    assert.ok(out.includes('queue="' + 'queue' + '\\"' + 'name' + '\\\\' + 'with' + '\\n' + 'specials' + '"'), out);
    assert.ok(out.includes('env="' + 'pro' + '\\"' + 'd' + '"'), out);
    assert.ok(out.includes('state="waiting", env="pro\\"d"} 1\n'), out);
  });
});

describe('bullc top', () => {
  it('plain frames when stdout is a pipe: counts, rates from the events stream, workers, oldest waiting age', async () => {
    const prefix = uniquePrefix('obst');
    const idle = newQueue('idle', prefix);
    const busy = newQueue('busy', prefix);
    closers.push(idle, busy);
    await idle.add('old', {});
    await idle.add('new', {});
    const w = await startReady(['--queue', 'busy', '--builtin', 'echo'], { prefix });
    const top = new Proc(require('../lib/harness').bullcPath(), ['--redis', redisUrl(), '--prefix', prefix, 'top',
      '--count', '2', '--interval', '1500']);
    await top.waitFor(/^bullc top /);
    await busy.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: 'x', data: { i } })));
    const exit = await top.waitExit(15000);
    assert.equal(exit.code, 0, top.text());
    const out = top.text();
    assert.doesNotMatch(out, /\x1b/, 'no escape sequences on a pipe');
    const frames = out.split(/\n(?=bullc top )/);
    assert.equal(frames.length, 2, out);
    const rows = f => Object.fromEntries(f.split('\n').slice(2).filter(Boolean).map(l => {
      const c = l.trim().split(/\s+/);
      return [c[0], { waiting: +c[1], active: +c[2], completed: +c[5], added: c[7], done: c[8], fail: c[9],
        workers: +c[10], oldest: c[11] }];
    }));
    const first = rows(frames[0]), second = rows(frames[1]);
    assert.deepEqual(Object.keys(second).sort(), ['busy', 'idle'], 'every queue under the prefix');
    assert.equal(first.busy.added, '-', 'no rate before a second frame');
    assert.equal(second.idle.waiting, 2);
    assert.match(second.idle.oldest, /^\d+\.\ds$/);
    assert.ok(parseFloat(second.idle.oldest) >= 1, `the oldest waiting job is older than a frame: ${second.idle.oldest}`);
    assert.equal(second.idle.workers, 0);
    assert.equal(second.idle.added, '0.0');
    assert.equal(second.busy.completed, 12);
    assert.equal(second.busy.workers, 1);
    assert.equal(second.busy.oldest, '-');
    // 12 added and 12 completed within one interval of about 1.5 s
    assert.ok(Math.abs(parseFloat(second.busy.added) * 1.5 - 12) < 2.5, `added/s ${second.busy.added}`);
    assert.ok(Math.abs(parseFloat(second.busy.done) * 1.5 - 12) < 2.5, `done/s ${second.busy.done}`);
    assert.equal(second.busy.fail, '0.0');
    assert.equal((await w.stop()).code, 0);
  });
});
