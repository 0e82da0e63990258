// SPDX-License-Identifier: MIT
// cron-parser 5.10.3 (bullmq 6.7.0's) on the differential test's cases, split
// over worker threads: luxon's steps go through Intl and are slow, and
// 100,000 cases on one thread take minutes.
'use strict';

const path = require('node:path');
const os = require('node:os');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const bullmqDir = path.dirname(require.resolve('bullmq/package.json'));
const cronParserPkg = require.resolve('cron-parser/package.json', { paths: [bullmqDir] });
const luxonPath = require.resolve('luxon', { paths: [path.dirname(cronParserPkg)] });

// One case as bullmq's repeat strategy computes it (a Date as currentDate),
// iterated `count` times: "ok T1 T2 ..." or "invalid".
function nodeCase(pattern, tz, from, count) {
  const { CronExpressionParser } = require(path.dirname(cronParserPkg));
  let e;
  try {
    e = CronExpressionParser.parse(pattern, { currentDate: new Date(from), tz, hashSeed: 'diff' });
  } catch {
    return 'invalid';
  }
  const out = ['ok'];
  for (let i = 0; i < count; i++) {
    try {
      out.push(String(e.next().getTime()));
    } catch {
      break;
    }
  }
  return out.join(' ');
}

// How many threads (and bullc processes) share the cases: the machine's cores, at most 4.
const threads = () => Math.max(1, Math.min(4, os.availableParallelism ? os.availableParallelism() : os.cpus().length));

// Results of all cases, in order; TZ (the zone of cases without one) is set in each thread.
async function nodeResults(cases, tz) {
  const n = threads();
  const size = Math.ceil(cases.length / n);
  const parts = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new Promise((resolve, reject) => {
        const w = new Worker(__filename, { workerData: { cases: cases.slice(i * size, (i + 1) * size), tz } });
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', code => code !== 0 && reject(new Error(`cron worker exited ${code}`)));
      })),
  );
  return parts.flat();
}

if (!isMainThread) {
  process.env.TZ = workerData.tz;
  parentPort.postMessage(workerData.cases.map(k => nodeCase(k.pattern, k.zone, k.from, k.count)));
}

module.exports = { nodeResults, threads, cronParserPkg, luxonPath };
