// SPDX-License-Identifier: MIT
// The TCP connections processes hold to Redis, read from /proc: their sockets'
// inodes (/proc/PID/fd) among the established connections of /proc/net/tcp
// and tcp6. Counted from outside, so what a worker says of itself is checked.
// Used by the compat tests and by tools/bench/many_queues.js.
'use strict';

const fs = require('node:fs');

// The local ports of the established TCP connections the processes `pids`
// (a pid or an array) hold to any of the remote ports `ports` (a port or an
// array), on any address.
function localPortsTo(pids, ports) {
  const inodes = new Set();
  for (const pid of [].concat(pids)) {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed while listed
      }
    }
  }
  const remote = new Set([].concat(ports).map(Number));
  const out = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '01' && remote.has(parseInt(f[2].split(':')[1], 16)) && inodes.has(f[9])) {
        out.push(parseInt(f[1].split(':')[1], 16));
      }
    }
  }
  return out;
}

// How many such connections there are.
const connectionsTo = (pids, ports) => localPortsTo(pids, ports).length;

module.exports = { connectionsTo, localPortsTo };
