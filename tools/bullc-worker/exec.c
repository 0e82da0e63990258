/* SPDX-License-Identifier: MIT */
/* The --exec processor: one child process per job, started with bw_spawn
 * (posix_spawn, no shell; spawn.c says why not uv_spawn). The job goes to
 * its stdin as JSON; its stdout is the result; its stderr carries progress,
 * log and data lines, the flow-control moves (delay, wait-children) and, on
 * failure, the reason.
 * Everything is asynchronous: a slow or stuck command never blocks the loop
 * that renews the locks of the other jobs. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bw.h"

#define MAX_STDOUT (16u << 20) /* a larger result fails the job */
#define LOCK_CHECK_MS 250      /* how often a lost lock is looked for */
#define PIPE_GRACE_MS 1000     /* after the exit, how long a grandchild may hold the pipes */

enum { KILL_NONE, KILL_TIMEOUT, KILL_LOCK, KILL_SHUTDOWN, KILL_CANCEL };
enum { MOVE_NONE, MOVE_DELAYED, MOVE_WAIT_CHILDREN };
enum { PHASE_RUN, PHASE_GRACE, PHASE_EXITED };

struct bw_run {
    bw_queue *q;
    bullc_job *job;  /* NULL once handed back */
    uv_poll_t exitw; /* the pidfd: readable once the command exited */
    bool exitw_open; /* exitw was initialised: a failed start must close it too */
    int pidfd;
    uv_pipe_t in, out, err;
    uv_timer_t deadline; /* the timeout, then the kill grace, then the pipe grace */
    uv_timer_t watch;    /* lost locks */
    uv_write_t wreq;
    char *input;
    int handles;     /* still open */
    int pending;     /* progress/log calls not yet answered */
    bool finish_due; /* the command is done; the job goes back once `pending` is 0 */
    int move;        /* MOVE_*: asked for on stderr, made at a clean exit */
    int64_t move_ts; /* MOVE_DELAYED's timestamp, ms */
    bool move_sent;
    int move_code;     /* its answer: 1 moved, 0 not moved, or a BULLC_E* code */
    char *move_reason; /* why it failed */
    int phase, kill_reason;
    bool exited, out_eof, err_eof;
    int64_t exit_status;
    int term_signal;
    int pid;
    char *out_buf;
    size_t out_len, out_cap;
    bool out_overflow;
    bw_lines err_lines; /* stderr, cut into lines */
    bw_tail tail;       /* its last stderr lines */
    char **env;
    size_t env_own; /* the first env_own entries are ours (malloc'd) */
    bw_run *prev, *next;
};

static void run_closed(uv_handle_t *h) {
    bw_run *r = h->data;
    if (--r->handles) return;
    bw_tail_clear(&r->tail);
    for (size_t i = 0; i < r->env_own; i++) free(r->env[i]);
    free(r->move_reason);
    free(r->env);
    free(r->out_buf);
    bw_lines_free(&r->err_lines);
    free(r->input);
    if (r->pidfd >= 0) close(r->pidfd);
    free(r);
}

static void close_handle(uv_handle_t *h) {
    if (!uv_is_closing(h)) uv_close(h, run_closed);
}

/* Signals the child's process group: the command was started as a session
 * leader (UV_PROCESS_DETACHED), so a shell script's own children get the
 * signal too and do not keep the pipes open. */
static void signal_child(bw_run *r, int sig) {
    if (r->exited || r->pid <= 0) return;
    if (kill(-r->pid, sig) != 0) kill(r->pid, sig);
}

static const char *prog(const bw_run *r) { return r->q->cfg->proc.argv[0]; }

/* ---- stderr: progress, log and ordinary lines -------------------------------- */

static void finish(bw_run *r);

/* A progress or log call answered. The job is handed back only after all of
 * them, as a Node processor awaits job.updateProgress() before it returns:
 * else an update could land after the job finished (libbullc re-sends a
 * script Redis did not cache behind later commands). */
static void op_done(bullc_job *job, int code, const char *message, void *data) {
    bw_run *r = data;
    if (code)
        TLOG(TLOG_WARN, "job-action", TLOG_S("queue", r->q->cfg->name), TLOG_S("id", bullc_job_id(job)),
             TLOG_S("code", bullc_err_name(code)), TLOG_S("msg", message));
    if (--r->pending == 0 && r->finish_due) finish(r);
}

typedef int (*job_action_fn)(bullc_job *job, const char *arg, bullc_job_cb cb, void *data);

/* With a callback while connected (the job goes back after the answers);
 * while Redis is away, without one: libbullc keeps it and sends it once
 * Redis is back, before the job's finish (a warning per line would flood
 * the log and lose it). */
static int job_action(bw_run *r, job_action_fn fn, const char *arg) {
    int rc = fn(r->job, arg, op_done, r);
    if (rc == 0)
        r->pending++;
    else if (rc == BULLC_ECONN)
        rc = fn(r->job, arg, NULL, NULL);
    return rc;
}

static void on_line(void *ctx, char *line, size_t len) {
    bw_run *r = ctx;
    if (!r->job) return;
    const char *v;
    bw_line_kind kind = bw_line_classify(line, &len, &v);
    bw_queue *q = r->q;
    const char *id = bullc_job_id(r->job);
    if (kind == BW_LINE_PROGRESS) {
        if (job_action(r, bullc_job_update_progress, v) == 0) return;
        TLOG(TLOG_WARN, "stderr", TLOG_S("queue", q->cfg->name), TLOG_S("id", id),
             TLOG_S("msg", "ignored a progress line that is not JSON"), TLOG_S("line", line));
    } else if (kind == BW_LINE_LOG) {
        if (job_action(r, bullc_job_log, v) == 0) {
            TLOG(TLOG_DEBUG, "log", TLOG_S("queue", q->cfg->name), TLOG_S("id", id), TLOG_S("line", v));
            return;
        }
    } else if (kind == BW_LINE_DATA) {
        if (job_action(r, bullc_job_update_data, v) == 0) return;
        TLOG(TLOG_WARN, "stderr", TLOG_S("queue", q->cfg->name), TLOG_S("id", id),
             TLOG_S("msg", "ignored a data line that is not JSON"), TLOG_S("line", line));
    } else if (kind == BW_LINE_DELAY) {
        char *end;
        long long ts = strtoll(v, &end, 10);
        if (end != v && !*end) {
            r->move = MOVE_DELAYED; /* the last move asked for is the one made */
            r->move_ts = ts;
            return;
        }
        TLOG(TLOG_WARN, "stderr", TLOG_S("queue", q->cfg->name), TLOG_S("id", id),
             TLOG_S("msg", "ignored a delay line that is not a timestamp in ms"), TLOG_S("line", line));
    } else if (kind == BW_LINE_WAIT_CHILDREN) {
        r->move = MOVE_WAIT_CHILDREN;
        return;
    }
    bw_tail_push(&r->tail, line, len);
    TLOG(TLOG_DEBUG, "stderr", TLOG_S("queue", q->cfg->name), TLOG_S("id", id), TLOG_S("line", line));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void maybe_finish(bw_run *r);

static void err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    bw_run *r = s->data;
    if (n > 0 && r->job) bw_lines_feed(&r->err_lines, buf->base, (size_t)n, on_line, r);
    free(buf->base);
    if (n < 0) {
        if (r->job) bw_lines_flush_line(&r->err_lines, on_line, r, false);
        uv_read_stop(s);
        r->err_eof = true;
        maybe_finish(r);
    }
}

static void out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    bw_run *r = s->data;
    if (n > 0 && !r->out_overflow) {
        if (r->out_len + (size_t)n + 1 > MAX_STDOUT) {
            r->out_overflow = true; /* keep draining so the child is not blocked */
        } else {
            if (r->out_len + (size_t)n + 1 > r->out_cap) {
                size_t cap = r->out_cap ? r->out_cap : 4096;
                while (cap < r->out_len + (size_t)n + 1) cap *= 2;
                char *b = realloc(r->out_buf, cap);
                if (!b) {
                    r->out_overflow = true;
                } else {
                    r->out_buf = b;
                    r->out_cap = cap;
                }
            }
            if (!r->out_overflow) {
                memcpy(r->out_buf + r->out_len, buf->base, (size_t)n);
                r->out_len += (size_t)n;
            }
        }
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(s);
        r->out_eof = true;
        maybe_finish(r);
    }
}

/* ---- the end ------------------------------------------------------------------ */

static void complete_with_stdout(bw_run *r, bullc_job *job) {
    char *s = r->out_buf ? r->out_buf : (char[]){'\0'};
    s[r->out_len] = '\0';
    size_t n = r->out_len;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++, n--;
    if (!n) {
        bullc_job_complete(job, NULL);
        return;
    }
    /* JSON as JSON (at any depth: JSON.parse has no limit), anything else
     * as a JSON string, NULs kept */
    if (bw_json_valid(s, n)) {
        bullc_job_complete(job, s);
        return;
    }
    bw_sb b = {0};
    bw_sb_quote_n(&b, s, n);
    char *json = bw_sb_take(&b);
    if (json)
        bullc_job_complete(job, json);
    else
        bullc_job_fail(job, "bullc-worker: out of memory while storing the result", 0);
    free(json);
}

/* The answer to the move a command asked for. */
static void move_done(bullc_job *job, int code, const char *message, void *data) {
    bw_run *r = data;
    (void)job;
    r->move_code = code;
    if (code < 0) r->move_reason = strdup(message ? message : bullc_strerror(code));
    if (--r->pending == 0 && r->finish_due) finish(r);
}

/* A clean exit that asked for a move makes it now, as a Node processor
 * awaits job.moveToDelayed / moveToWaitingChildren before it throws.
 * Returns true when the answer is awaited. */
static bool start_move(bw_run *r) {
    if (r->move == MOVE_NONE || r->move_sent || r->kill_reason != KILL_NONE || r->term_signal || r->exit_status ||
        r->out_overflow)
        return false;
    r->move_sent = true;
    int rc = r->move == MOVE_DELAYED ? bullc_job_move_to_delayed(r->job, r->move_ts, move_done, r)
                                     : bullc_job_move_to_waiting_children(r->job, move_done, r);
    if (rc) {
        r->move_code = rc;
        r->move_reason = strdup(bullc_strerror(rc));
        return false;
    }
    r->pending++;
    return true;
}

static void finish(bw_run *r) {
    bullc_job *job = r->job;
    if (!job) return;
    uv_timer_stop(&r->deadline);
    uv_timer_stop(&r->watch);
    if (r->pending || start_move(r)) {
        r->finish_due = true; /* op_done / move_done finishes */
        return;
    }
    r->job = NULL;
    bw_queue *q = r->q;
    if (r->prev)
        r->prev->next = r->next;
    else
        q->runs = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
    char msg[BW_TAIL_BYTES + 256];
    char *tail = bw_tail_text(&r->tail);
    const char *t = tail ? tail : "";
    TLOG(TLOG_DEBUG, "exit", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)), TLOG_I("pid", r->pid),
         TLOG_I("code", r->exit_status), TLOG_I("signal", r->term_signal));
    if (r->kill_reason == KILL_TIMEOUT) {
        snprintf(msg, sizeof msg, "timed out after %lld ms", (long long)q->cfg->s.timeout);
        bullc_job_fail(job, msg, 0);
    } else if (r->kill_reason == KILL_LOCK) {
        /* not stored (the lock is gone); said for the log */
        bullc_job_fail(job, "the job's lock was lost: another worker may process it", 0);
    } else if (r->kill_reason == KILL_SHUTDOWN) {
        bullc_job_fail(job, "bullc-worker shut down", 0);
    } else if (r->kill_reason == KILL_CANCEL) {
        /* as a Node processor throwing signal.reason: retried per its
         * attempts, unless the command chose to exit unrecoverable */
        bullc_job_fail(job, bullc_job_cancel_reason(job),
                       r->exited && r->exit_status == BW_EXIT_UNRECOVERABLE ? BULLC_FAIL_UNRECOVERABLE : 0);
    } else if (r->term_signal) {
        snprintf(msg, sizeof msg, "%s killed by signal %d (%s)%s%s", prog(r), r->term_signal,
                 sigabbrev_np(r->term_signal) ? sigabbrev_np(r->term_signal) : "?", *t ? ": " : "", t);
        bullc_job_fail(job, msg, 0);
    } else if (r->exit_status != 0) {
        if (!*t) snprintf(msg, sizeof msg, "%s exited with code %lld", prog(r), (long long)r->exit_status);
        bullc_job_fail(job, *t ? t : msg, r->exit_status == BW_EXIT_UNRECOVERABLE ? BULLC_FAIL_UNRECOVERABLE : 0);
    } else if (r->out_overflow) {
        snprintf(msg, sizeof msg, "%s wrote more than %u bytes on stdout", prog(r), MAX_STDOUT);
        bullc_job_fail(job, msg, 0);
    } else if (r->move_sent && r->move_code == 1) {
        TLOG(TLOG_DEBUG, "moved", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
             TLOG_S("to", r->move == MOVE_DELAYED ? "delayed" : "waiting-children"));
        bullc_job_fail(job, NULL, BULLC_FAIL_MOVED);
    } else if (r->move_sent && r->move_code < 0) { /* as the error a Node processor's await throws */
        snprintf(msg, sizeof msg, "%s: %s", r->move == MOVE_DELAYED ? "moveToDelayed" : "moveToWaitingChildren",
                 r->move_reason ? r->move_reason : "failed");
        bullc_job_fail(job, msg, 0);
    } else { /* wait-children without pending children: the job completes */
        complete_with_stdout(r, job);
    }
    free(tail);
    close_handle((uv_handle_t *)&r->exitw);
    close_handle((uv_handle_t *)&r->in);
    close_handle((uv_handle_t *)&r->out);
    close_handle((uv_handle_t *)&r->err);
    close_handle((uv_handle_t *)&r->deadline);
    close_handle((uv_handle_t *)&r->watch);
}

static void maybe_finish(bw_run *r) {
    if (r->exited && r->out_eof && r->err_eof) finish(r);
}

static void deadline_cb(uv_timer_t *t) {
    bw_run *r = t->data;
    if (r->phase == PHASE_EXITED) {
        /* a background grandchild still holds stdout/stderr: do not wait for it */
        finish(r);
    } else if (r->phase == PHASE_RUN) {
        if (r->kill_reason == KILL_NONE) r->kill_reason = KILL_TIMEOUT;
        TLOG(TLOG_WARN, "timeout", TLOG_S("queue", r->q->cfg->name), TLOG_S("id", bullc_job_id(r->job)),
             TLOG_I("pid", r->pid), TLOG_I("timeout_ms", r->q->cfg->s.timeout));
        r->phase = PHASE_GRACE;
        signal_child(r, r->q->cfg->s.kill_grace ? SIGTERM : SIGKILL);
        if (r->q->cfg->s.kill_grace) uv_timer_start(&r->deadline, deadline_cb, (uint64_t)r->q->cfg->s.kill_grace, 0);
    } else {
        signal_child(r, SIGKILL);
    }
}

static void watch_cb(uv_timer_t *t) {
    bw_run *r = t->data;
    if (!r->job || r->kill_reason != KILL_NONE || !bullc_job_lock_lost(r->job)) return;
    /* Another worker may own the job now: stop the duplicate work. */
    r->kill_reason = KILL_LOCK;
    TLOG(TLOG_WARN, "lock-lost", TLOG_S("queue", r->q->cfg->name), TLOG_S("id", bullc_job_id(r->job)),
         TLOG_I("pid", r->pid), TLOG_S("msg", "stopping the command"));
    uv_timer_stop(&r->watch);
    r->phase = PHASE_GRACE;
    signal_child(r, SIGTERM);
    uv_timer_start(&r->deadline, deadline_cb, (uint64_t)(r->q->cfg->s.kill_grace ? r->q->cfg->s.kill_grace : 1), 0);
}

/* The job was cancelled (bullc_worker_cancel_job, SIGUSR1): the command
 * gets SIGTERM, and SIGKILL after --kill-grace if it is still there. */
static void cancelled(bullc_job *job, const char *reason, void *data) {
    bw_run *r = data;
    if (!reason || r->kill_reason != KILL_NONE || r->phase != PHASE_RUN) return;
    r->kill_reason = KILL_CANCEL;
    TLOG(TLOG_INFO, "cancelled", TLOG_S("queue", r->q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_I("pid", r->pid), TLOG_S("reason", reason), TLOG_S("msg", "stopping the command"));
    uv_timer_stop(&r->watch);
    r->phase = PHASE_GRACE;
    signal_child(r, r->q->cfg->s.kill_grace ? SIGTERM : SIGKILL);
    uv_timer_start(&r->deadline, deadline_cb, (uint64_t)(r->q->cfg->s.kill_grace ? r->q->cfg->s.kill_grace : 1), 0);
}

static void exit_cb(uv_poll_t *p, int status, int events) {
    bw_run *r = p->data;
    (void)status;
    (void)events;
    int ws;
    pid_t got;
    while ((got = waitpid(r->pid, &ws, WNOHANG)) < 0 && errno == EINTR) continue;
    if (got == 0) return; /* not yet */
    uv_poll_stop(p);
    r->exited = true;
    if (got < 0) { /* cannot happen: only this run reaps its pid */
        r->exit_status = 1;
    } else if (WIFSIGNALED(ws)) {
        r->term_signal = WTERMSIG(ws);
    } else {
        r->exit_status = WEXITSTATUS(ws);
    }
    r->phase = PHASE_EXITED;
    uv_timer_stop(&r->watch);
    uv_timer_start(&r->deadline, deadline_cb, PIPE_GRACE_MS, 0);
    maybe_finish(r);
}

static void write_cb(uv_write_t *req, int status) {
    bw_run *r = req->data;
    (void)status; /* EPIPE: the command did not read its input; its exit says the rest */
    free(r->input);
    r->input = NULL;
    close_handle((uv_handle_t *)&r->in); /* EOF for the command */
}

/* ---- the start ------------------------------------------------------------------ */

/* Whether an environment entry gives away Redis's password: REDIS_PASSWORD,
 * or a REDIS_URL with one (redis://user:secret@host). */
bool bw_exec_redis_secret(const char *e) {
    if (!strncmp(e, "REDIS_PASSWORD=", 15)) return true;
    if (strncmp(e, "REDIS_URL=", 10)) return false;
    const char *auth = strstr(e, "://");
    if (!auth) return false;
    auth += 3;
    const char *at = strchr(auth, '@'), *slash = strchr(auth, '/');
    if (!at || (slash && slash < at)) return false;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    return colon && colon + 1 < at;
}

/* The environment plus BULLC_QUEUE, BULLC_PREFIX, BULLC_JOB_ID,
 * BULLC_JOB_NAME, BULLC_JOB_ATTEMPT; without Redis's password unless --exec-redis-env (a
 * command that needs Redis is told so; the rest should not hold it). */
static int build_env(bw_run *r, const bullc_job *job) {
    extern char **environ;
    size_t n = 0;
    while (environ[n]) n++;
    r->env = calloc(n + 6, sizeof *r->env);
    if (!r->env) return -1;
    char attempt[24];
    snprintf(attempt, sizeof attempt, "%lld", (long long)bullc_job_attempts_made(job) + 1);
    /* the prefix lets a command name this job as a child's parent:
     * {"id": BULLC_JOB_ID, "queue": "BULLC_PREFIX:BULLC_QUEUE"} */
    const char *kv[][2] = {{"BULLC_QUEUE", r->q->cfg->name},
                           {"BULLC_PREFIX", r->q->cfg->s.prefix ? r->q->cfg->s.prefix : "bull"},
                           {"BULLC_JOB_ID", bullc_job_id(job)},
                           {"BULLC_JOB_NAME", bullc_job_name(job)},
                           {"BULLC_JOB_ATTEMPT", attempt}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        size_t len = strlen(kv[i][0]) + strlen(kv[i][1]) + 2;
        if (!(r->env[r->env_own] = malloc(len))) return -1;
        snprintf(r->env[r->env_own++], len, "%s=%s", kv[i][0], kv[i][1]);
    }
    size_t k = r->env_own;
    bool keep_secret = r->q->app->cfg->exec_redis_env;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "BULLC_QUEUE=", 12) && strncmp(environ[i], "BULLC_PREFIX=", 13) &&
            strncmp(environ[i], "BULLC_JOB_", 10) && (keep_secret || !bw_exec_redis_secret(environ[i])))
            r->env[k++] = environ[i];
    return 0;
}

/* ---- when the worker cannot start commands ------------------------------------ */

#define SPAWN_BACKOFF_MIN_MS 100
#define SPAWN_BACKOFF_MAX_MS 10000
#define SPAWN_WARN_EVERY_MS 60000

/* Out of fds, memory or processes: the worker's trouble, not the job's. */
static bool worker_fault(int rc) { return rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOMEM || rc == UV_EAGAIN; }

static void spawn_resume(uv_timer_t *t) {
    bw_queue *q = t->data;
    q->spawned_since_resume = false;
    if (q->worker && !q->closed && !q->app->shutting_down) bullc_worker_resume(q->worker);
}

/* Gives the job back to wait without counting an attempt (as Node's worker
 * does with a rate-limited job) and stops fetching for a while: the pause
 * doubles while no command starts at all, and stays short while some do
 * (the queue then runs as many commands as the worker can hold). Said once,
 * then at most once a minute with the count of jobs handed back. */
static void spawn_backoff(bw_queue *q, bullc_job *job, const char *why) {
    if (!q->spawn_timer_inited) {
        uv_timer_init(&q->app->loop, &q->spawn_timer);
        q->spawn_timer.data = q;
        q->spawn_timer_inited = true;
        q->spawn_backoff_ms = SPAWN_BACKOFF_MIN_MS;
    }
    q->spawn_handed_back++;
    int64_t now = tlog_now_ms();
    if (!q->spawn_warned_at || now - q->spawn_warned_at >= SPAWN_WARN_EVERY_MS) {
        TLOG(TLOG_WARN, "spawn-failed", TLOG_S("queue", q->cfg->name), TLOG_S("error", why),
             TLOG_I("handed_back", q->spawn_handed_back),
             TLOG_S("msg", "the worker cannot start commands: their jobs go back to wait without counting an "
                           "attempt, and fetching pauses (said at most once a minute)"));
        q->spawn_warned_at = now;
        q->spawn_handed_back = 0;
    }
    TLOG(TLOG_DEBUG, "handed-back", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)));
    bullc_worker_pause(q->worker);
    if (!uv_is_active((uv_handle_t *)&q->spawn_timer)) {
        if (q->spawned_since_resume)
            q->spawn_backoff_ms = SPAWN_BACKOFF_MIN_MS;
        else if ((q->spawn_backoff_ms *= 2) > SPAWN_BACKOFF_MAX_MS)
            q->spawn_backoff_ms = SPAWN_BACKOFF_MAX_MS;
        uv_timer_start(&q->spawn_timer, spawn_resume, (uint64_t)q->spawn_backoff_ms, 0);
    }
    bullc_job_fail(job, why, BULLC_FAIL_RATE_LIMITED);
}

void bw_exec_close(bw_queue *q) {
    if (q->spawn_timer_inited && !uv_is_closing((uv_handle_t *)&q->spawn_timer))
        uv_close((uv_handle_t *)&q->spawn_timer, NULL);
}

void bw_exec_process(bullc_job *job, void *data) {
    bw_queue *q = data;
    uv_loop_t *loop = &q->app->loop;
    bw_run *r = calloc(1, sizeof *r);
    if (!r) {
        spawn_backoff(q, job, "bullc-worker: out of memory");
        return;
    }
    r->q = q;
    r->job = job;
    r->pidfd = -1;
    uv_handle_t *hs[] = {(uv_handle_t *)&r->in, (uv_handle_t *)&r->out, (uv_handle_t *)&r->err,
                         (uv_handle_t *)&r->deadline, (uv_handle_t *)&r->watch};
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_pipe_init(loop, &r->err, 0);
    uv_timer_init(loop, &r->deadline);
    uv_timer_init(loop, &r->watch);
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) hs[i]->data = r;
    r->handles = 5;
    r->exitw.data = r;
    r->wreq.data = r;
    r->next = q->runs;
    if (q->runs) q->runs->prev = r;
    q->runs = r;

    int fds[3] = {-1, -1, -1};
    int rc = build_env(r, job) ? UV_ENOMEM : 0;
    /* a session of its own: signals from the terminal go to bullc-worker,
     * which drains gracefully; the group can be killed as a whole */
    if (!rc) rc = bw_spawn(prog(r), q->cfg->proc.argv, r->env, fds, &r->pid, &r->pidfd);
    if (!rc) {
        uv_pipe_t *ps[] = {&r->in, &r->out, &r->err};
        for (int i = 0; i < 3; i++) {
            int e = rc ? rc : uv_pipe_open(ps[i], fds[i]);
            if (e) close(fds[i]); /* the handle owns it only once opened */
            if (!rc) rc = e;
        }
        if (!rc && !(rc = uv_poll_init(loop, &r->exitw, r->pidfd))) {
            r->handles++;
            r->exitw_open = true;
            rc = uv_poll_start(&r->exitw, UV_READABLE, exit_cb);
        }
        if (rc) { /* the loop cannot watch it: not left running unseen */
            bw_spawn_kill(r->pid);
            r->exited = true;
        }
    }
    if (rc) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot run %s: %s (%s)", prog(r), uv_strerror(rc), uv_err_name(rc));
        r->job = NULL;
        if (r->prev)
            r->prev->next = r->next;
        else
            q->runs = r->next;
        if (r->next) r->next->prev = r->prev;
        TLOG(TLOG_DEBUG, "spawn-failed", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
             TLOG_S("error", msg));
        /* a missing or non-executable program is the command's failure:
         * the job fails with it, as before */
        if (worker_fault(rc))
            spawn_backoff(q, job, msg);
        else
            bullc_job_fail(job, msg, 0);
        for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) close_handle(hs[i]);
        if (r->exitw_open) close_handle((uv_handle_t *)&r->exitw);
        return;
    }
    q->spawned_since_resume = true;
    TLOG(TLOG_DEBUG, "spawn", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)), TLOG_I("pid", r->pid),
         TLOG_S("program", prog(r)));
    uv_read_start((uv_stream_t *)&r->out, alloc_cb, out_read);
    uv_read_start((uv_stream_t *)&r->err, alloc_cb, err_read);
    char *json = bullc_job_to_json(job);
    size_t len = json ? strlen(json) : 0;
    r->input = json ? malloc(len + 2) : NULL;
    if (r->input) {
        memcpy(r->input, json, len);
        r->input[len] = '\n';
        uv_buf_t b = uv_buf_init(r->input, (unsigned)len + 1);
        if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, write_cb)) {
            free(r->input);
            r->input = NULL;
            close_handle((uv_handle_t *)&r->in);
        }
    } else {
        close_handle((uv_handle_t *)&r->in);
    }
    bullc_free(json);
    if (q->cfg->s.timeout > 0) uv_timer_start(&r->deadline, deadline_cb, (uint64_t)q->cfg->s.timeout, 0);
    uv_timer_start(&r->watch, watch_cb, LOCK_CHECK_MS, LOCK_CHECK_MS);
    if (bullc_job_on_cancel(job, cancelled, r) == 1) cancelled(job, bullc_job_cancel_reason(job), r);
}

void bw_exec_kill_all(bw_queue *q, int sig) {
    for (bw_run *r = q->runs; r; r = r->next) {
        if (r->kill_reason == KILL_NONE) r->kill_reason = KILL_SHUTDOWN;
        signal_child(r, sig);
    }
}
