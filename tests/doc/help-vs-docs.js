// SPDX-License-Identifier: MIT
// Every flag, environment variable and config-file key that a program's --help
// names is in its doc page, and every one the page's flag tables (and cli.md's
// verb headings) describe is in --help: the two cannot drift apart unnoticed.
// --help is generated from each program's one table of options. Also: bullc's
// exit codes agree in --help, cli.md and README; every event bullc-worker logs
// is in worker.md's event table.
//   node help-vs-docs.js BIN_DIR SOURCE_DIR
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const [bin, src] = process.argv.slice(2);
const help = (prog, ...args) => execFileSync(path.join(bin, prog), [...args, '--help'], { encoding: 'utf8' });
const doc = (name) => fs.readFileSync(path.join(src, 'docs', name), 'utf8');

const FLAG = /--[a-z][a-z0-9-]*[a-z0-9]/g;
const ENV = /\b(?:REDIS_[A-Z_]+|NOTIFICATION_WEBHOOK_URL|UV_THREADPOOL_SIZE)\b/g;
const all = (text, re) => new Set(text.match(re) || []);
// What a page describes: the first cell of its table rows (the flags a row is
// about), every cell for variables; cli.md's verb headings too.
function described(text) {
  const rows = text.split('\n').filter((l) => l.startsWith('| `'));
  const firstCells = rows.map((l) => l.split(/(?<!\\)\|/)[1]).join('\n');
  const headings = text.split('\n').filter((l) => /^### `/.test(l)).join('\n');
  return { flags: all(firstCells + '\n' + headings, FLAG), env: all(rows.join('\n'), ENV) };
}

const failures = [];
function compare(prog, helpText, page, extra = {}) {
  const text = doc(page);
  const d = described(text);
  const check = (what, fromHelp, inDoc, fromDoc, inHelp) => {
    for (const x of fromHelp) if (!inDoc.has(x)) failures.push(`${prog} --help names ${what} ${x}; docs/${page} does not`);
    for (const x of fromDoc) if (!inHelp.has(x)) failures.push(`docs/${page} describes ${what} ${x}; ${prog} --help does not`);
  };
  check('flag', all(helpText, FLAG), all(text, FLAG), d.flags, all(helpText, FLAG));
  check('variable', all(helpText, ENV), all(text, ENV), d.env, all(helpText, ENV));
  if (extra.keys) {
    const hk = extra.keys(helpText), dk = extra.docKeys(text);
    check('config key', hk, dk, dk, hk);
  }
}

// bullc: the global help and every verb's
const top = help('bullc');
const verbs = top.split('Verbs:\n')[1].split('\n\n')[0].split('\n').map((l) => l.trim().split(' ')[0]).filter(Boolean);
if (verbs.length < 20) failures.push(`bullc --help lists ${verbs.length} verbs`);
compare('bullc', [top, ...verbs.map((v) => help('bullc', v))].join('\n'), 'cli.md');
// each verb's parser refuses to run with a flag its usage line (the source of
// its --help) does not name; a run with an unreachable Redis shows it
const { spawnSync } = require('child_process');
for (const v of verbs) {
  const r = spawnSync(path.join(bin, 'bullc'), ['--redis', 'redis://127.0.0.1:1', v, 'q', '1'],
    { encoding: 'utf8', input: '' });
  if (/internal error/.test(r.stderr)) failures.push(`bullc ${v}: ${r.stderr.trim()}`);
}

// bullc-worker: flags, variables, and the config-file key of every option
// ("file: KEY" in --help; the "config key" column of worker.md's tables)
compare('bullc-worker', help('bullc-worker'), 'worker.md', {
  keys: (h) => new Set([...h.matchAll(/file: ([A-Za-z.]+)/g)].map((m) => m[1])),
  docKeys: (t) => new Set(t.split('\n').filter((l) => l.startsWith('| `--'))
    .map((l) => l.split(/(?<!\\)\|/)[2].trim()).filter((c) => /^`[A-Za-z.]+`$/.test(c)).map((c) => c.slice(1, -1))),
});
// the notification builtin's settings, as --help and worker.md list them
const hs = help('bullc-worker').match(/notification: \{([\s\S]*?)\} \(webhookUrl/);
const ds = doc('worker.md').match(/`\{("webhookUrl"[^}]*)\}`/);
if (!hs || !ds) failures.push('the notification settings are not listed in bullc-worker --help and worker.md');
else {
  const hk = new Set([...hs[1].matchAll(/"(\w+)"/g)].map((m) => m[1]));
  const dk = new Set([...ds[1].matchAll(/"(\w+)"/g)].map((m) => m[1]));
  for (const k of hk) if (!dk.has(k)) failures.push(`bullc-worker --help names notification setting ${k}; worker.md does not`);
  for (const k of dk) if (!hk.has(k)) failures.push(`worker.md names notification setting ${k}; bullc-worker --help does not`);
}

compare('bullc-socket-client', help('bullc-socket-client'), 'socket-client.md');

// bullc's exit codes: --help, cli.md's table and README's list name the same ones
const codes = (text) => new Set((text.match(/\b\d\b(?= [A-Za-z`])/g) || []));
const helpCodes = codes(top.split('Exit codes:')[1] || '');
const tableCodes = new Set([...doc('cli.md').split('## Exit codes')[1].split('\n## ')[0].matchAll(/^\| (\d) \|/gm)].map((m) => m[1]));
const readme = fs.readFileSync(path.join(src, "README.md"), "utf8").match(/Exit codes: ([^\n]*\n[^\n]*)/);
const readmeCodes = codes(readme ? readme[1] : '');
for (const [what, set] of [['cli.md', tableCodes], ['README.md', readmeCodes]]) {
  const a = [...helpCodes].sort().join(','), b = [...set].sort().join(',');
  if (a !== b) failures.push(`bullc --help gives exit codes ${a}; ${what} ${b}`);
}

// every event bullc-worker logs is in worker.md's event table
const events = new Set();
for (const dir of ['tools/bullc-worker', 'tools/common']) {
  for (const f of fs.readdirSync(path.join(src, dir)).filter((f) => f.endsWith('.c'))) {
    const text = fs.readFileSync(path.join(src, dir, f), 'utf8');
    for (const m of text.matchAll(/TLOG\(\s*[^,]+,\s*"([a-z-]+)"/g)) events.add(m[1]);
  }
}
const table = doc('worker.md').split('\n').filter((l) => /^\| `[a-z-]+`/.test(l) && /\| (debug|info|warn|error)/.test(l)).join('\n');
for (const e of events) if (!table.includes(`\`${e}\``)) failures.push(`bullc-worker logs the event ${e}; worker.md's event table does not list it`);
if (events.size < 15) failures.push(`only ${events.size} log events found in tools/bullc-worker`);

if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log('help-vs-docs: bullc (%d verbs), bullc-worker and bullc-socket-client agree with their pages', verbs.length);
