// SPDX-License-Identifier: MIT
// Every C code block (```c) of README.md and docs/*.md is checked, so that an
// API change that breaks an example fails the suite. The info string says how:
//   ```c                 compiled (-Wall -Wextra -Werror) against this build's headers
//   ```c run             compiled, linked with libbullc and run against a private
//                        redis-server this script starts: must exit 0, stderr empty
//   ```c excerpt=PATH[,PATH...]  an excerpt of those files (which the build compiles): its
//                        code lines, comments and `...` elisions aside, appear there in order
// A block is C at file scope (includes, declarations, functions) followed by
// statements; the statements are wrapped in a function that receives
// `bullc_queue *queue` (a queue on the private Redis, for `run`).
//   node c-examples.js BUILD_DIR SOURCE_DIR
'use strict';
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startRedis } = require('./redis');

const [build, src] = process.argv.slice(2);
const pages = ['README.md', ...fs.readdirSync(path.join(src, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

function blocks(page) {
  const out = [];
  const lines = fs.readFileSync(path.join(src, page), 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = lines[i].match(/^```c(?:\s+(.*))?$/);
    if (!m) continue;
    const start = i + 1;
    let j = start;
    while (j < lines.length && lines[j] !== '```') j++;
    out.push({ page, line: start, info: (m[1] || '').trim(), code: lines.slice(start, j).join('\n') });
    i = j;
  }
  return out;
}

// File scope: preprocessor lines, function definitions and typedef'd structs,
// each starting in column 0 and ending with a '}' in column 0. The rest (block
// scope declarations included) is the body.
function split(code) {
  const lines = code.split('\n');
  const top = [], body = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (/^#/.test(l)) { top.push(l); continue; }
    let j = i;
    if (/^(?!(if|for|while|switch|return|do|else)\b)[A-Za-z_][\w\s*]*\b\w+\s*\(/.test(l) && !/;\s*(\/\*.*)?$/.test(l)) {
      while (j < lines.length && !/\{\s*$/.test(lines[j])) j++; // a signature over several lines
    } else if (!/^typedef .*\{\s*$/.test(l)) {
      body.push(l);
      continue;
    }
    while (j < lines.length && !/^\}/.test(lines[j])) j++;
    top.push(...lines.slice(i, j + 1));
    i = j;
  }
  return { top: top.join('\n'), body: body.join('\n') };
}

const PREAMBLE = ['#include <bullc/bullc.h>', '#include <cjson/cJSON.h>', '#include <math.h>', '#include <stdio.h>',
  '#include <stdlib.h>', '#include <string.h>', '#include <uv.h>'].join('\n');
const pc = (args) => execFileSync('pkg-config', args, { encoding: 'utf8' }).trim().split(/\s+/).filter(Boolean);
const san = process.env.BULLC_SANITIZED === '1' ? ['-fsanitize=address,undefined'] : [];
const CFLAGS = ['-std=c11', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror', '-Wno-unused-function', '-Wno-unused-variable',
  '-Wno-unused-parameter', '-Wno-unused-but-set-variable', ...san, `-I${src}/include`, `-I${build}/include`,
  `-I${src}/tools/reference`, `-I${src}/tools/reference/examples`, ...pc(['--cflags', 'libuv', 'libcjson'])];
const LIBS = [`-L${build}`, `-Wl,-rpath,${build}`, '-lbullc', ...pc(['--libs', 'libuv', 'libcjson']), '-lm'];

// Code without comments or spacing (so a line wrapped otherwise still
// matches); a doc line with an elision (`...`, in a comment or not) stands for
// code left out and is not compared.
const strip = (s) => s.replace(/\/\*[\s\S]*?\*\//g, (c) => (c.includes('...') ? '\u2026' : ''))
  .replace(/\/\/.*$/gm, '');
const docLines = (s) => strip(s).split('\n').map((l) => l.replace(/\s+/g, ''))
  .filter((l) => l && !l.includes('...') && !l.includes('\u2026'));

const failures = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bullc-doc-c-'));
const toRun = [];
let n = 0;
for (const b of pages.flatMap(blocks)) {
  const where = `${b.page}:${b.line}`;
  n++;
  const ex = b.info.match(/^excerpt=(\S+)$/);
  if (ex) {
    const files = ex[1].split(',').map((f) => path.join(src, f));
    const missing = files.filter((f) => !fs.existsSync(f));
    if (missing.length) { failures.push(`${where}: excerpt of ${missing.join(', ')}, which does not exist`); continue; }
    const hay = strip(files.map((f) => fs.readFileSync(f, 'utf8')).join('\n')).replace(/\s+/g, '');
    let k = 0;
    for (const l of docLines(b.code)) {
      const at = hay.indexOf(l, k);
      if (at < 0) { failures.push(`${where}: not in ${ex[1]} (in this order): ${l}`); break; }
      k = at + l.length;
    }
    continue;
  }
  if (b.info && b.info !== 'run') { failures.push(`${where}: unknown \`\`\`c mode '${b.info}'`); continue; }
  const { top, body } = split(b.code);
  const param = /bullc_queue\s*\*\s*queue\b/.test(body) ? 'doc_queue' : 'queue'; // the block declares its own
  const c = path.join(tmp, `ex${n}.c`);
  const run = b.info === 'run';
  fs.writeFileSync(c, [PREAMBLE, `#line 1 "${where}"`, top, 'void doc_example(bullc_queue *queue);',
    `void doc_example(bullc_queue *${param}) {`, body, '}',
    run ? ['int main(void) {', '    bullc_queue *queue = NULL;',
      '    if (bullc_queue_new(&queue, "doc-example", NULL, NULL)) return 99;',
      '    doc_example(queue);', '    bullc_queue_free(queue);', '    return 0;', '}'].join('\n') : ''].join('\n'));
  const exe = path.join(tmp, `ex${n}`);
  const r = spawnSync('cc', [...CFLAGS, ...(run ? [c, '-o', exe, ...LIBS] : ['-c', c, '-o', exe + '.o'])], { encoding: 'utf8' });
  if (r.status !== 0) { failures.push(`${where}: does not compile:\n${r.stderr}`); continue; }
  if (run) toRun.push({ where, exe });
}

async function main() {
  let redis = null;
  try {
    if (toRun.length) {
      redis = await startRedis();
      for (const t of toRun) {
        const r = spawnSync(t.exe, [], {
          encoding: 'utf8', timeout: 20000,
          env: { PATH: process.env.PATH, REDIS_URL: redis.url, ASAN_OPTIONS: 'detect_leaks=0' },
        });
        // the examples report a failed call on stderr
        if (r.status !== 0 || r.stderr) failures.push(`${t.where}: exited ${r.status}${r.signal ? ` (${r.signal})` : ''}: ${r.stderr}`);
      }
    }
  } finally {
    if (redis) redis.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  if (failures.length) {
    console.error(failures.join('\n'));
    process.exit(1);
  }
  console.log(`c-examples: ${n} C blocks checked (${toRun.length} run against a private redis-server)`);
}
main();
