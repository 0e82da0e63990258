// SPDX-License-Identifier: MIT
// The benchmark's figures are in one place: the table that tools/bench/run.sh
// --update-docs writes into docs/performance.md (between its bench:results
// markers). No other page, and no other part of performance.md, repeats a
// figure of that table; no other page states benchmark figures of its own.
//   node figures.js SOURCE_DIR
'use strict';
const fs = require('fs');
const path = require('path');

const src = process.argv[2];
const pages = ['README.md', ...fs.readdirSync(path.join(src, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const read = (p) => fs.readFileSync(path.join(src, p), 'utf8');
const failures = [];

const perf = read('docs/performance.md');
const begin = perf.indexOf('<!-- bench:results begin'), end = perf.indexOf('<!-- bench:results end -->');
if (begin < 0 || end < begin) failures.push('docs/performance.md has no bench:results markers');
const table = perf.slice(begin, end);
if (!/^\| metric \| unit \|/m.test(table)) failures.push('docs/performance.md: no results table between the markers');
if (perf.indexOf('<!-- bench:results begin', begin + 1) >= 0) failures.push('docs/performance.md: two results sections');

// the table's medians that cannot be an accident elsewhere: 3+ digits with a separator ("6,106", "97.9")
const figures = new Set();
for (const row of table.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| metric'))) {
  for (const cell of row.split('|').slice(3, 5)) {
    const m = cell.trim().match(/^([\d,.]+)/);
    if (m && /[,.]/.test(m[1]) && m[1].replace(/\D/g, '').length >= 3) figures.add(m[1]);
  }
}
if (figures.size < 10) failures.push(`docs/performance.md: only ${figures.size} figures found in the table`);
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
for (const p of pages) {
  const text = p === 'docs/performance.md' ? perf.slice(0, begin) + perf.slice(end) : read(p);
  text.split('\n').forEach((line, i) => {
    for (const f of figures) {
      if (new RegExp(`(?<![\\d,.])${esc(f)}(?![\\d,k])`).test(line)) {
        failures.push(`${p}:${i + 1}: repeats the benchmark figure ${f} (refer to the table's row instead): ${line.trim()}`);
      }
    }
    if (p !== 'docs/performance.md' && /benchmark/i.test(line) && /\d[\d.,]*\s*k?\s*(µs|us|ms|jobs\/s)\b/.test(line)) {
      failures.push(`${p}:${i + 1}: a benchmark figure outside docs/performance.md: ${line.trim()}`);
    }
  });
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log(`figures: the ${figures.size} figures of docs/performance.md's table appear nowhere else`);
