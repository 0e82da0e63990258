// SPDX-License-Identifier: MIT
// Node BullMQ's sandboxed processor for tools/bench (a child process per
// concurrency slot): does nothing, as execp_noop.py and execp_noop.sh.
'use strict';

module.exports = async () => null;
