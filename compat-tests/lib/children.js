// SPDX-License-Identifier: MIT
// Every child process a compat test starts is tracked here and killed
// (SIGKILL) when the test's process ends, however it ends: normally, on an
// uncaught error, or on SIGTERM/SIGINT/SIGHUP (the runner's timeout, ctest's
// bullc-test-guard). Node leaves children running when it exits; a test that
// fails before its own clean-up must not leave a worker or a redis-server
// behind. Tests still stop what they start (killAll() in an `after` hook):
// this is the floor under them.
'use strict';

const live = new Set();
const cleanups = [];

// Tracks a ChildProcess until it exits; returns it.
function track(child) {
  if (child.pid === undefined) return child; // it never started ('error' follows)
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

// Runs `fn` (synchronous) when the process ends, for what track() cannot
// see: a daemon a tool started (PM2's), stopped with that tool.
function onExit(fn) {
  cleanups.push(fn);
}

function killTracked() {
  for (const fn of cleanups.splice(0)) {
    try {
      fn();
    } catch {}
  }
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {}
  }
  live.clear();
}

process.on('exit', killTracked);
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.once(sig, () => {
    killTracked();
    process.kill(process.pid, sig); // the default action now: die of it
  });
}

module.exports = { onExit, track };
