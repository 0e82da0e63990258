# SPDX-License-Identifier: MIT
# bullc-worker --exec-persistent's Python helper with a processor that does
# nothing, for tools/bench (as sandbox_noop.js on Node's side).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bullc-worker", "helpers"))
import bullc_processor  # noqa: E402

bullc_processor.run(lambda job: None)
