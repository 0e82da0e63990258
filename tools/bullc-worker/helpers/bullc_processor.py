# SPDX-License-Identifier: MIT
"""A Python processor for bullc-worker --exec-persistent (docs/worker.md).

    import bullc_processor

    def process(job):
        job.progress(50)
        job.log("resizing")
        return {"ok": True, "n": job.data["n"] * 2}   # raise to fail the job

    bullc_processor.run(process)

run() reads one job per line on stdin until EOF and answers each on stdout.
The job: id, name, data, opts, attempts_made, attempts_started, timestamp,
queue, prefix (and `raw`, the whole object). Raising Unrecoverable fails the
job without retries; Delay(epoch_ms) and WaitChildren() move it (Node's
moveToDelayed / moveToWaitingChildren); any other exception fails it with
its text. Whatever the processor prints goes to stderr (bullc-worker's log):
stdout belongs to the protocol.
"""
import json
import os
import sys


class Unrecoverable(Exception):
    """Fails the job without retries (Node's UnrecoverableError)."""


class Delay(Exception):
    """Moves the job to delayed until `timestamp` (epoch ms), no attempt counted."""

    def __init__(self, timestamp):
        super().__init__(timestamp)
        self.timestamp = int(timestamp)


class WaitChildren(Exception):
    """Moves the job to waiting-children; without pending children it
    completes with `result`."""

    def __init__(self, result=None):
        super().__init__("waiting for children")
        self.result = result


def _write(fd, data):
    # one write per line, unbuffered: bullc-worker reads the answer at once
    while data:
        data = data[os.write(fd, data):]


def _dumps(obj):
    # ensure_ascii keeps the line one line whatever the text holds
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class Job:
    def __init__(self, raw, out):
        self.raw = raw
        self.id = raw["id"]
        self.name = raw.get("name")
        self.data = raw.get("data")
        self.opts = raw.get("opts", {})
        self.attempts_made = raw.get("attemptsMade", 0)
        self.attempts_started = raw.get("attemptsStarted", 0)
        self.timestamp = raw.get("timestamp")
        self.queue = raw.get("queue")
        self.prefix = raw.get("prefix")
        self._out = out

    def _send(self, **kv):
        kv["id"] = self.id
        _write(self._out, _dumps(kv))

    def progress(self, value):
        """job.updateProgress(value): a number or a dict."""
        self._send(progress=value)

    def log(self, text):
        """job.log(text)."""
        self._send(log=str(text))

    def update_data(self, data):
        """job.updateData(data)."""
        self.data = data
        self._send(data=data)


def run(process):
    # The protocol keeps the real stdout; fd 1 becomes stderr, so that any
    # print (ours, a library's, a C extension's) lands in the log.
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        job = Job(json.loads(line), out)
        try:
            result = process(job)
        except Unrecoverable as e:
            job._send(error=str(e) or type(e).__name__, unrecoverable=True)
        except Delay as e:
            job._send(delay=e.timestamp)
        except WaitChildren as e:
            job._send(waitChildren=True, result=e.result)
        except Exception as e:  # the job's failure, not the helper's
            job._send(error=str(e) or type(e).__name__)
        else:
            job._send(result=result)
