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
its text. job.cancelled (a threading.Event) is set, with job.cancel_reason,
when the job is cancelled (`bullc cancel`, SIGUSR1 to bullc-worker): stop and
raise Exception(job.cancel_reason) to fail it with the reason; a job cancelled
while it waits behind another (--exec-children) fails with the reason without
starting. Jobs run one at a time, in the order they come. Whatever the
processor prints goes to stderr (bullc-worker's log): stdout belongs to the
protocol.
"""
import json
import os
import queue
import sys
import threading


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
        self.cancelled = threading.Event()  # set when the job is cancelled
        self.cancel_reason = None
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
    # Lines are read on a thread while a job runs: a cancel line sets the
    # job's `cancelled` event (and `cancel_reason`) for the processor to check.
    # bullc-worker may hand over several jobs at once (--exec-children): they
    # wait here and run one after another; a cancel line for one of them is
    # kept, and the job fails with its reason instead of starting.
    jobs = queue.Queue()
    current = [None]
    queued = set()  # ids read and not started
    cancels = {}  # id -> reason, for queued jobs
    lock = threading.Lock()

    def reader():
        for line in sys.stdin.buffer:
            if not line.strip():
                continue
            raw = json.loads(line)
            if "cancel" in raw:
                cid = str(raw["cancel"])
                with lock:
                    job = current[0]
                    if job is not None and str(job.id) == cid:
                        job.cancel_reason = raw.get("reason")
                        job.cancelled.set()
                    elif cid in queued:
                        cancels[cid] = raw.get("reason")
                continue
            queued.add(str(raw["id"]))
            jobs.put(raw)
        jobs.put(None)

    threading.Thread(target=reader, daemon=True).start()
    while True:
        raw = jobs.get()
        if raw is None:
            break
        job = Job(raw, out)
        jid = str(job.id)
        with lock:
            queued.discard(jid)
            current[0] = job
            reason = cancels.pop(jid, None) if cancels else None
        if reason is not None:
            job._send(error=reason or "cancelled")
            continue
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
