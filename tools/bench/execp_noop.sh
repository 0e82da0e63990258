# SPDX-License-Identifier: MIT
# bullc-worker --exec-persistent's POSIX sh helper with a processor that
# does nothing, for tools/bench (as sandbox_noop.js on Node's side).
. "${0%/*}/../bullc-worker/helpers/bullc_processor.sh"
noop() { bullc_result null; }
bullc_run noop
