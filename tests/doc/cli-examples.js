// SPDX-License-Identifier: MIT
// Runs the CLI examples of docs/cli.md, in the page's order, against a private
// redis-server, and compares what they print with what the page shows.
//
// An example is a ```sh block with `$ COMMAND` lines (a trailing `\` continues
// one), each followed by its output (stdout and stderr as a terminal shows
// them). Comparison ignores trailing spaces and normalises what cannot repeat:
// ISO times, epoch milliseconds and stream ids; `...` in the page's output
// stands for any text within a line. HTML comments steer the run, unseen on
// the rendered page:
//   <!-- doctest: setup SHELL -->   run before the next block (output dropped)
//   <!-- doctest: after SHELL -->   run after the previous block
//   <!-- doctest: skip REASON -->   the next block is not run (say why)
// Setup code may call `bg NAME COMMAND...` (a background process, stopped by
// `stop NAME` or at the end) and `wait_for 'SHELL CONDITION'`.
// `node cli-examples.js BIN_DIR SOURCE_DIR --print` prints what each command
// printed, to write the page from.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startRedis } = require('./redis');

const [bin, src, mode] = process.argv.slice(2);
const page = 'docs/cli.md';

function parse(text) {
  const lines = text.split('\n');
  const steps = []; // {kind: 'setup'|'after'|'block', ...}
  let skip = null;
  for (let i = 0; i < lines.length; i++) {
    const c = lines[i].match(/^<!-- doctest: (setup|after|skip) ([\s\S]*?)-->$/) ||
      (lines[i].startsWith('<!-- doctest: ') && (() => {
        let j = i, t = '';
        while (j < lines.length && !lines[j].includes('-->')) t += lines[j++] + '\n';
        t += lines[j];
        const m = t.match(/^<!-- doctest: (setup|after|skip)\s+([\s\S]*?)-->\s*$/);
        if (m) i = j;
        return m;
      })());
    if (c) {
      if (c[1] === 'skip') skip = c[2].trim();
      else steps.push({ kind: c[1], shell: c[2].trim(), line: i + 1 });
      continue;
    }
    if (!/^```sh\s*$/.test(lines[i])) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j] !== '```') j++;
    const body = lines.slice(start, j);
    i = j;
    if (!body.some((l) => l.startsWith('$ '))) continue;
    if (skip !== null) {
      if (!skip) throw new Error(`${page}:${start}: a skip needs a reason`);
      skip = null;
      continue;
    }
    const cmds = [];
    for (let k = 0; k < body.length; k++) {
      if (!body[k].startsWith('$ ')) {
        if (!cmds.length) throw new Error(`${page}:${start + k + 1}: output before any command`);
        cmds[cmds.length - 1].expected.push(body[k]);
        continue;
      }
      let cmd = body[k].slice(2);
      const line = start + k + 1;
      while (cmd.endsWith('\\') && k + 1 < body.length) cmd += '\n' + body[++k]; // bash joins them
      cmds.push({ cmd, line, expected: [] });
    }
    steps.push({ kind: 'block', cmds, line: start });
  }
  return steps;
}

const normalise = (s) => s.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<TIME>')
  .replace(/\b\d{13}-\d+\b/g, '<SID>').replace(/\b1\d{12}\b/g, '<MS>')
  .split('\n').map((l) => l.replace(/\s+$/, '')).join('\n').replace(/\n+$/, '');
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
function matches(expected, actual) {
  const want = normalise(expected.join('\n')).split('\n');
  const got = normalise(actual).split('\n');
  if (want.length !== got.length) return false;
  return want.every((w, i) => new RegExp('^' + w.split('...').map(escape).join('.*') + '$').test(got[i]));
}

async function main() {
  const steps = parse(fs.readFileSync(path.join(src, page), 'utf8'));
  const redis = await startRedis();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bullc-doc-cli-'));
  // what setup code may use: background processes, waiting for a condition
  const helpers = `
bg() { local n=$1; shift; "$@" >"${tmp}/$n.log" 2>&1 & echo $! >"${tmp}/$n.pid"; }
stop() { local p; p=$(cat "${tmp}/$1.pid") && kill "$p" && while kill -0 "$p" 2>/dev/null; do sleep 0.05; done; rm -f "${tmp}/$1.pid"; }
wait_for() { for _ in $(seq 200); do eval "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "timed out: $1" >&2; for l in "${tmp}"/*.log; do [ -e "$l" ] && { echo "--- $l:"; tail -n 20 "$l"; } >&2; done; return 1; }
`;
  const env = { PATH: `${bin}:${process.env.PATH}`, REDIS_URL: redis.url, TZ: 'UTC', HOME: tmp, LC_ALL: 'C',
    DOC: path.join(src, 'tests', 'doc'),
    // stdbuf preloads its library ahead of an ASan build's runtime, which ASan refuses unless told
    ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'verify_asan_link_order=0'].filter(Boolean).join(':') };
  for (const k of ['UBSAN_OPTIONS', 'BULLC_TEST_RUN']) if (process.env[k]) env[k] = process.env[k];
  // line-buffered stdout, as on a terminal, so that stdout and stderr interleave as the page shows them
  const sh = (code) => spawnSync('stdbuf', ['-oL', 'bash', '-c', `${helpers}\n{ ${code}\n} 2>&1`],
    { env, encoding: 'utf8', timeout: 60000 });
  const failures = [];
  let n = 0;
  try {
    for (const s of steps) {
      if (s.kind !== 'block') {
        const r = sh(`set -e\n${s.shell}`);
        if (r.status !== 0) throw new Error(`${page}:${s.line}: ${s.kind} failed (${r.status}): ${r.stdout}`);
        continue;
      }
      for (const c of s.cmds) {
        n++;
        const r = sh(c.cmd);
        if (mode === '--print') {
          console.log(`${page}:${c.line}: $ ${c.cmd}\n${r.stdout}`);
          continue;
        }
        if (!matches(c.expected, r.stdout)) {
          failures.push(`${page}:${c.line}: $ ${c.cmd}\n--- the page shows\n${c.expected.join('\n')}\n--- it printed\n${r.stdout}`);
        }
      }
    }
  } finally {
    for (const f of fs.readdirSync(tmp).filter((f) => f.endsWith('.pid'))) {
      try { process.kill(Number(fs.readFileSync(path.join(tmp, f), 'utf8')), 'SIGKILL'); } catch (e) { /* gone */ }
    }
    redis.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(failures.join('\n\n'));
    process.exit(1);
  }
  console.log(`cli-examples: ${n} commands of ${page} printed what the page shows`);
}
main().catch((e) => { console.error(e.message); process.exit(1); });
