// SPDX-License-Identifier: MIT
// @nestjs/bullmq over the tests' Node BullMQ major. The package is ESM and
// imports 'bullmq' resolved from its own location, so no require hook can
// redirect it: under BULLC_COMPAT_BULLMQ=5 a copy of the installed package
// is placed in node_modules/.bullc-nest5/node_modules, beside a `bullmq` link
// to the bullmq5 alias (5.81.5, which @nestjs/bullmq's peer range accepts).
// Everything else it imports (@nestjs/common, core) resolves up to the one
// instance the app uses. Nothing is downloaded: it is npm ci's own files.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { bullmqMajor } = require('./harness');

const modules = path.join(__dirname, '..', 'node_modules');

// The directory of a ready copy; built once, atomically (test files run in
// parallel and may all ask at once).
function nest5Dir() {
  const root = path.join(modules, '.bullc-nest5');
  const pkg = path.join(root, 'node_modules', '@nestjs', 'bullmq');
  if (fs.existsSync(path.join(root, 'ready'))) return pkg;
  const tmp = fs.mkdtempSync(path.join(modules, '.bullc-nest5-'));
  fs.cpSync(path.join(modules, '@nestjs', 'bullmq'), path.join(tmp, 'node_modules', '@nestjs', 'bullmq'),
    { recursive: true, dereference: true });
  fs.symlinkSync(path.join(modules, 'bullmq5'), path.join(tmp, 'node_modules', 'bullmq'), 'dir');
  fs.writeFileSync(path.join(tmp, 'ready'), '');
  try {
    fs.renameSync(tmp, root);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(root, 'ready'))) throw err;
  }
  return pkg;
}

// The @nestjs/bullmq module whose Queue, Worker and FlowProducer are the
// major's Node BullMQ.
function nestBullmq(major = bullmqMajor()) {
  return require(major === 5 ? nest5Dir() : '@nestjs/bullmq');
}

module.exports = { nestBullmq };
