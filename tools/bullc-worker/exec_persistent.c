/* SPDX-License-Identifier: MIT */
/* The --exec-persistent processor: one long-lived child per concurrency slot,
 * fed one job per line on its stdin and answering with JSON lines on its
 * stdout (docs/worker.md, "--exec-persistent"). A process start per job is
 * what bounds --exec; here a child pays it once.
 *
 * A slot holds at most one job (the worker hands out at most `concurrency`
 * jobs, and there are as many slots), so a job always finds a slot; when the
 * slot's child is dead it waits for the restart. A child that misbehaves
 * (dies, hangs past --timeout, writes what is not an answer) is retired: its
 * job fails, it is killed and detached from its slot, and lives on alone
 * until its handles are closed; the slot starts a new one after a backoff
 * that doubles while children keep failing without answering. */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

#define MAX_LINE (16u << 20) /* a longer answer line is a protocol error (as --exec's 16 MiB of stdout) */
#define TAIL_LINES 20        /* a crash's reason holds at most the last 20 stderr lines */
#define TAIL_BYTES 4096
#define LOCK_CHECK_MS 250
#define PIPE_GRACE_MS 1000 /* after the exit, how long a grandchild may hold the pipes */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define SNIPPET 200 /* bytes of a bad line quoted in the reason */

typedef struct xslot xslot;

/* One child process; outlives its slot's interest in it when retired. */
typedef struct xchild {
    bw_queue *q;
    xslot *slot; /* NULL once retired */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer; /* kill grace, then pipe grace */
    int handles;
    int pid;
    bool exited, out_eof, err_eof, signalled;
    int64_t status;
    int term_signal;
    char *line; /* stdout's partial line */
    size_t len, cap;
    bool overlong; /* the current line passed MAX_LINE: the child is retired */
    bw_lines err_lines;
    char *tail[TAIL_LINES]; /* stderr since the last answer, for a crash's reason */
    size_t tail_next, tail_count;
} xchild;

enum { OUT_NONE, OUT_RESULT, OUT_ERROR, OUT_DELAY, OUT_WAIT };

struct xslot {
    bw_queue *q;
    bw_execp *pool;
    xchild *child;
    uv_timer_t restart, deadline;
    int failures; /* children retired since the last answer: the backoff's exponent */
    bullc_job *job;
    bool sent;   /* the job's line went to the current child */
    bool asked;  /* a cancel line went to it: the deadline is now the answer's grace */
    int pending; /* progress/log/data calls and a move not yet answered */
    int outcome; /* OUT_*: decided, applied once `pending` is 0 */
    char *value; /* the result's JSON text, or the error's text */
    int fail_flags;
    int64_t delay_ts;
    int move_code; /* 1 moved, 0 not, <0 BULLC_E* */
    char *wbuf;    /* the job's line, kept for the next one */
    size_t wcap;
};

struct bw_execp {
    bw_queue *q;
    xslot *slots;
    int nslots;
    uv_timer_t watch; /* lost locks */
    int handles;      /* the slots' timers and watch, still open */
    bool closing;
    char **env;
    size_t env_own;
};

static const char *prog(const bw_queue *q) { return q->cfg->proc.argv[0]; }

/* ---- children: start, stop, free ---------------------------------------------- */

static void child_closed(uv_handle_t *h) {
    xchild *c = h->data;
    if (--c->handles) return;
    free(c->line);
    bw_lines_free(&c->err_lines);
    for (size_t i = 0; i < TAIL_LINES; i++) free(c->tail[i]);
    free(c);
}

static void close_h(xchild *c, void *h) {
    if (!uv_is_closing(h)) uv_close(h, child_closed);
    (void)c;
}

static void signal_child(xchild *c, int sig) {
    if (c->exited || c->pid <= 0) return;
    /* a session leader: its own children (a shell's) get it too */
    if (kill(-c->pid, sig) != 0) uv_process_kill(&c->proc, sig);
}

static void child_close_all(xchild *c) {
    close_h(c, &c->proc);
    close_h(c, &c->in);
    close_h(c, &c->out);
    close_h(c, &c->err);
    close_h(c, &c->timer);
}

static void slot_child_gone(xslot *s, xchild *c, bool overlong);

static void grace_cb(uv_timer_t *t) {
    xchild *c = t->data;
    if (!c->exited) {
        signal_child(c, SIGKILL);
    } else { /* exited, but a grandchild still holds a pipe: do not wait for it */
        if (c->slot) slot_child_gone(c->slot, c, false);
        child_close_all(c);
    }
}

/* Gives up on the child: it no longer serves its slot, is told to stop
 * (stdin closed, `sig` to its group; SIGKILL after --kill-grace) and frees
 * itself once it exited and its pipes closed. */
static void retire(xchild *c, int sig) {
    xslot *s = c->slot;
    if (s) {
        s->child = NULL;
        c->slot = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&c->in)) uv_close((uv_handle_t *)&c->in, child_closed);
    if (c->exited) {
        if (c->out_eof && c->err_eof) child_close_all(c);
        return;
    }
    int64_t grace = c->q->cfg->s.kill_grace;
    if (!sig) sig = grace ? SIGTERM : SIGKILL;
    signal_child(c, sig);
    c->signalled = true;
    if (sig != SIGKILL) uv_timer_start(&c->timer, grace_cb, (uint64_t)grace, 0);
}

static void tail_push(xchild *c, const char *l, size_t n) {
    if (n > TAIL_BYTES) {
        l += n - TAIL_BYTES;
        n = TAIL_BYTES;
    }
    char *copy = strndup(l, n);
    if (!copy) return;
    free(c->tail[c->tail_next]);
    c->tail[c->tail_next] = copy;
    c->tail_next = (c->tail_next + 1) % TAIL_LINES;
    if (c->tail_count < TAIL_LINES) c->tail_count++;
}

static void tail_clear(xchild *c) {
    for (size_t i = 0; i < TAIL_LINES; i++) {
        free(c->tail[i]);
        c->tail[i] = NULL;
    }
    c->tail_next = c->tail_count = 0;
}

/* The newest stderr lines that fit in TAIL_BYTES, oldest first, into `b`. */
static void tail_put(const xchild *c, bw_sb *b) {
    size_t total = 0, take = 0;
    while (take < c->tail_count) {
        size_t n = strlen(c->tail[(c->tail_next + TAIL_LINES - 1 - take) % TAIL_LINES]) + 1;
        if (total + n > TAIL_BYTES) break;
        total += n;
        take++;
    }
    for (size_t k = take; k > 0; k--) {
        bw_sb_puts(b, c->tail[(c->tail_next + TAIL_LINES - k) % TAIL_LINES]);
        if (k > 1) bw_sb_puts(b, "\n");
    }
}

static void on_err_line(void *ctx, char *line, size_t len) {
    xchild *c = ctx;
    const char *v;
    (void)bw_line_classify(line, &len, &v); /* only for its clean-up: '\r', NULs */
    tail_push(c, line, len);
    const char *id = c->slot && c->slot->job && c->slot->sent ? bullc_job_id(c->slot->job) : NULL;
    TLOG(TLOG_INFO, "stderr", TLOG_S("queue", c->q->cfg->name), TLOG_I("pid", c->pid), TLOG_S("id", id ? id : ""),
         TLOG_S("line", line));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void maybe_gone(xchild *c) {
    if (!c->exited || !c->out_eof || !c->err_eof) return;
    uv_timer_stop(&c->timer);
    if (c->slot) slot_child_gone(c->slot, c, false);
    child_close_all(c);
}

static void err_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    xchild *c = st->data;
    if (n > 0) bw_lines_feed(&c->err_lines, buf->base, (size_t)n, on_err_line, c);
    free(buf->base);
    if (n < 0) {
        bw_lines_flush_line(&c->err_lines, on_err_line, c, false);
        uv_read_stop(st);
        c->err_eof = true;
        maybe_gone(c);
    }
}

static void on_answer(xchild *c, char *line, size_t len);

static void out_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    xchild *c = st->data;
    const char *p = buf->base, *end = p + (n > 0 ? n : 0);
    while (p < end && c->slot && !c->overlong) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = (size_t)((nl ? nl : end) - p);
        if (c->len + take >= MAX_LINE) {
            c->overlong = true;
            if (c->slot) slot_child_gone(c->slot, c, true);
            break;
        }
        if (c->len + take + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + take + 1) cap *= 2;
            char *b = realloc(c->line, cap);
            if (!b) { /* the answer cannot be held: as a line too long */
                c->overlong = true;
                slot_child_gone(c->slot, c, true);
                break;
            }
            c->line = b;
            c->cap = cap;
        }
        memcpy(c->line + c->len, p, take);
        c->len += take;
        p += take;
        if (!nl) break;
        p++;
        c->line[c->len] = '\0';
        size_t l = c->len;
        c->len = 0;
        on_answer(c, c->line, l);
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(st);
        c->out_eof = true;
        maybe_gone(c);
    }
}

static void exit_cb(uv_process_t *p, int64_t status, int sig) {
    xchild *c = p->data;
    c->exited = true;
    c->status = status;
    c->term_signal = sig;
    /* the answer it wrote before exiting may still be in the pipe */
    uv_timer_start(&c->timer, grace_cb, PIPE_GRACE_MS, 0);
    maybe_gone(c);
}

/* The environment plus BULLC_QUEUE and BULLC_PREFIX, without Redis's
 * password unless --exec-redis-env: made once per queue. */
static int build_env(bw_execp *x) {
    extern char **environ;
    bw_queue *q = x->q;
    size_t n = 0;
    while (environ[n]) n++;
    if (!(x->env = calloc(n + 3, sizeof *x->env))) return -1;
    const char *kv[][2] = {{"BULLC_QUEUE", q->cfg->name},
                           {"BULLC_PREFIX", q->cfg->s.prefix ? q->cfg->s.prefix : "bull"}};
    for (size_t i = 0; i < 2; i++) {
        size_t len = strlen(kv[i][0]) + strlen(kv[i][1]) + 2;
        if (!(x->env[x->env_own] = malloc(len))) return -1;
        snprintf(x->env[x->env_own++], len, "%s=%s", kv[i][0], kv[i][1]);
    }
    size_t k = x->env_own;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "BULLC_QUEUE=", 12) && strncmp(environ[i], "BULLC_PREFIX=", 13) &&
            strncmp(environ[i], "BULLC_JOB_", 10) && (q->app->cfg->exec_redis_env || !bw_exec_redis_secret(environ[i])))
            x->env[k++] = environ[i];
    return 0;
}

/* Starts the slot's child: 0, or a libuv error with the child freed. */
static int child_start(xslot *s) {
    bw_queue *q = s->q;
    uv_loop_t *loop = &q->app->loop;
    xchild *c = calloc(1, sizeof *c);
    if (!c) return UV_ENOMEM;
    c->q = q;
    uv_pipe_init(loop, &c->in, 0);
    uv_pipe_init(loop, &c->out, 0);
    uv_pipe_init(loop, &c->err, 0);
    uv_timer_init(loop, &c->timer);
    c->in.data = c->out.data = c->err.data = c->timer.data = c->proc.data = c;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&c->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->err}};
    uv_process_options_t po = {.file = prog(q),
                               .args = q->cfg->proc.argv,
                               .env = q->execp->env,
                               .exit_cb = exit_cb,
                               .stdio = stdio,
                               .stdio_count = 3,
                               /* its own session: Ctrl-C reaches bullc-worker only, which drains */
                               .flags = UV_PROCESS_DETACHED};
    int rc = uv_spawn(loop, &c->proc, &po);
    c->handles = 5; /* uv_spawn initialises the process handle even when it fails */
    if (rc) {
        c->exited = true;
        child_close_all(c);
        return rc;
    }
    c->pid = c->proc.pid;
    c->slot = s;
    s->child = c;
    uv_read_start((uv_stream_t *)&c->out, alloc_cb, out_read);
    uv_read_start((uv_stream_t *)&c->err, alloc_cb, err_read);
    TLOG(TLOG_DEBUG, "spawn", TLOG_S("queue", q->cfg->name), TLOG_I("pid", c->pid), TLOG_S("program", prog(q)),
         TLOG_I("slot", s - q->execp->slots));
    return 0;
}

/* ---- the job's end -------------------------------------------------------------- */

static void slot_finish(xslot *s) {
    bullc_job *job = s->job;
    if (!job || s->pending || s->outcome == OUT_NONE) return;
    uv_timer_stop(&s->deadline);
    s->job = NULL;
    s->sent = false;
    int outcome = s->outcome;
    char *value = s->value;
    s->outcome = OUT_NONE;
    s->value = NULL;
    if (outcome == OUT_RESULT) {
        bullc_job_complete(job, value);
    } else if (outcome == OUT_ERROR) {
        bullc_job_fail(job, value ? value : "failed", s->fail_flags);
    } else if (s->move_code == 1) {
        TLOG(TLOG_DEBUG, "moved", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(job)),
             TLOG_S("to", outcome == OUT_DELAY ? "delayed" : "waiting-children"));
        bullc_job_fail(job, NULL, BULLC_FAIL_MOVED);
    } else if (s->move_code < 0) {
        bw_sb b = {0};
        bw_sb_printf(&b, "%s: %s", outcome == OUT_DELAY ? "moveToDelayed" : "moveToWaitingChildren",
                     bullc_strerror(s->move_code));
        char *msg = bw_sb_take(&b);
        bullc_job_fail(job, msg ? msg : "move failed", 0);
        free(msg);
    } else { /* waitChildren without pending children: completes as a Node step job goes on */
        bullc_job_complete(job, value);
    }
    free(value);
    s->fail_flags = 0;
}

static void decide(xslot *s, int outcome, char *value, int flags) {
    if (s->outcome != OUT_NONE) {
        free(value);
        return;
    }
    s->outcome = outcome;
    s->value = value;
    s->fail_flags = flags;
    slot_finish(s);
}

static void slot_feed(xslot *s);

static void restart_cb(uv_timer_t *t) { slot_feed(t->data); }

static void backoff(xslot *s) {
    if (s->q->execp != s->pool || uv_is_active((uv_handle_t *)&s->restart)) return; /* closing */
    int64_t ms = BACKOFF_MIN_MS;
    for (int i = 1; i < s->failures && ms < BACKOFF_MAX_MS; i++) ms *= 2;
    if (ms > BACKOFF_MAX_MS) ms = BACKOFF_MAX_MS;
    uv_timer_start(&s->restart, restart_cb, (uint64_t)ms, 0);
}

/* Retires the slot's child; the next one starts after the backoff. */
static void slot_retire(xslot *s, int sig) {
    if (s->child) retire(s->child, sig);
    s->failures++;
    backoff(s);
}

/* Fails the slot's job with `reason` (printf) and retires its child. */
static void fail_and_retire(xslot *s, int sig, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_and_retire(xslot *s, int sig, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    slot_retire(s, sig);
    if (s->job && s->outcome == OUT_NONE) decide(s, OUT_ERROR, strdup(buf), 0);
}

/* The slot's child died (overlong false: it exited) or wrote a line too
 * long to hold. */
static void slot_child_gone(xslot *s, xchild *c, bool overlong) {
    bw_queue *q = s->q;
    char head[512];
    if (overlong)
        snprintf(head, sizeof head, "%s wrote an answer line longer than %u bytes", prog(q), MAX_LINE);
    else if (c->term_signal)
        snprintf(head, sizeof head, "%s killed by signal %d (%s)", prog(q), c->term_signal,
                 sigabbrev_np(c->term_signal) ? sigabbrev_np(c->term_signal) : "?");
    else
        snprintf(head, sizeof head, "%s exited with code %lld", prog(q), (long long)c->status);
    bool had_job = s->job && s->sent && s->outcome == OUT_NONE;
    TLOG(TLOG_WARN, overlong ? "protocol" : "exit", TLOG_S("queue", q->cfg->name), TLOG_I("pid", c->pid),
         TLOG_S("id", had_job ? bullc_job_id(s->job) : ""), TLOG_I("code", c->status), TLOG_I("signal", c->term_signal),
         TLOG_S("msg", head));
    bw_sb b = {0};
    bw_sb_puts(&b, head);
    if (had_job) {
        bw_sb_puts(&b, " while processing the job");
        if (c->tail_count) {
            bw_sb_puts(&b, ": ");
            tail_put(c, &b);
        }
    }
    char *msg = bw_sb_take(&b);
    slot_retire(s, SIGKILL);
    if (had_job)
        decide(s, OUT_ERROR, msg ? msg : strdup(head), 0);
    else
        free(msg);
}

/* ---- answers -------------------------------------------------------------------- */

static void pool_maybe_free(bw_execp *x);

static void op_done(bullc_job *job, int code, const char *message, void *data) {
    xslot *s = data;
    if (s->pool->closing) { /* the worker closed with force: the job is dropped */
        s->pending--;
        pool_maybe_free(s->pool);
        return;
    }
    if (code)
        TLOG(TLOG_WARN, "job-action", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(job)),
             TLOG_S("code", bullc_err_name(code)), TLOG_S("msg", message));
    s->pending--;
    slot_finish(s);
}

static void move_done(bullc_job *job, int code, const char *message, void *data) {
    xslot *s = data;
    (void)job;
    (void)message;
    if (s->pool->closing) {
        s->pending--;
        pool_maybe_free(s->pool);
        return;
    }
    s->move_code = code;
    s->pending--;
    slot_finish(s);
}

typedef int (*job_action_fn)(bullc_job *job, const char *arg, bullc_job_cb cb, void *data);

/* As exec.c's: with a callback while connected (the job ends after the
 * answers, as a Node processor awaits them); while Redis is away, kept by
 * libbullc and sent before the job's end. */
static int job_action(xslot *s, job_action_fn fn, const char *arg) {
    int rc = fn(s->job, arg, op_done, s);
    if (rc == 0)
        s->pending++;
    else if (rc == BULLC_ECONN)
        rc = fn(s->job, arg, NULL, NULL);
    return rc;
}

static char *span_dup(const bw_jspan *v) { return strndup(v->p, v->n); }

static bool id_matches(const bw_jspan *v, const char *id) {
    size_t n = strlen(id);
    /* the usual answer: the id as it was sent, without escapes */
    if (v->n == n + 2 && v->p[0] == '"' && !memcmp(v->p + 1, id, n) && !memchr(v->p, '\\', v->n)) return true;
    if (bw_json_kind(v) == BW_JSON_NUMBER) return n == v->n && !memcmp(v->p, id, v->n);
    char *s = bw_json_string_value(v);
    bool same = s && !strcmp(s, id);
    free(s);
    return same;
}

static void bad_line(xchild *c, const char *line, size_t len, const char *what) {
    xslot *s = c->slot;
    bw_queue *q = c->q;
    char snippet[SNIPPET + 1];
    size_t n = len < SNIPPET ? len : SNIPPET;
    for (size_t i = 0; i < n; i++) snippet[i] = line[i] ? line[i] : '?';
    snippet[n] = '\0';
    TLOG(TLOG_WARN, "protocol", TLOG_S("queue", q->cfg->name), TLOG_I("pid", c->pid), TLOG_S("msg", what),
         TLOG_S("line", snippet));
    fail_and_retire(s, SIGKILL, "%s %s: %s%s", prog(q), what, snippet, len > SNIPPET ? "..." : "");
}

static void on_answer(xchild *c, char *line, size_t len) {
    xslot *s = c->slot;
    if (!s) return;
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    if (!s->job || !s->sent || s->outcome != OUT_NONE) {
        bad_line(c, line, len, "wrote a line while no job was waiting for an answer");
        return;
    }
    bw_jspan id, v;
    if (!bw_json_valid(line, len) || !bw_json_member(line, len, "id", &id)) {
        bad_line(c, line, len, "wrote a line that is not a JSON object with an \"id\"");
        return;
    }
    if (!id_matches(&id, bullc_job_id(s->job))) {
        bad_line(c, line, len, "answered for another job id");
        return;
    }
    bool any = false;
    if (bw_json_member(line, len, "progress", &v)) {
        any = true;
        char *t = span_dup(&v);
        if (!t || job_action(s, bullc_job_update_progress, t))
            TLOG(TLOG_WARN, "protocol", TLOG_S("queue", c->q->cfg->name), TLOG_S("id", bullc_job_id(s->job)),
                 TLOG_S("msg", "ignored a progress that is neither a number nor an object"));
        free(t);
    }
    if (bw_json_member(line, len, "log", &v)) {
        any = true;
        char *t = bw_json_kind(&v) == BW_JSON_STRING ? bw_json_string_value(&v) : span_dup(&v);
        if (t) job_action(s, bullc_job_log, t);
        free(t);
    }
    if (bw_json_member(line, len, "data", &v)) {
        any = true;
        char *t = span_dup(&v);
        if (t) job_action(s, bullc_job_update_data, t);
        free(t);
    }
    /* the final answer: after the updates above, as a Node processor awaits them first */
    if (bw_json_member(line, len, "error", &v)) {
        char *t = bw_json_kind(&v) == BW_JSON_STRING ? bw_json_string_value(&v) : span_dup(&v);
        bw_jspan u;
        bool unrec = bw_json_member(line, len, "unrecoverable", &u) && u.n == 4 && !memcmp(u.p, "true", 4);
        s->failures = 0;
        tail_clear(c);
        decide(s, OUT_ERROR, t ? t : strdup("failed"), unrec ? BULLC_FAIL_UNRECOVERABLE : 0);
        return;
    }
    bool wait = bw_json_member(line, len, "waitChildren", &v) && v.n == 4 && !memcmp(v.p, "true", 4);
    bw_jspan d;
    bool delay = bw_json_member(line, len, "delay", &d);
    if (delay || wait) {
        char *end;
        long long ts = 0;
        if (delay) {
            char *t = span_dup(&d);
            ts = t ? strtoll(t, &end, 10) : 0;
            bool ok = t && end != t && !*end;
            free(t);
            if (!ok) {
                bad_line(c, line, len, "asked for a delay that is not a timestamp in ms");
                return;
            }
        }
        s->failures = 0;
        tail_clear(c);
        int rc = delay ? bullc_job_move_to_delayed(s->job, ts, move_done, s)
                       : bullc_job_move_to_waiting_children(s->job, move_done, s);
        s->move_code = rc;
        if (!rc) s->pending++;
        char *result = NULL;
        if (wait && bw_json_member(line, len, "result", &v)) result = span_dup(&v);
        decide(s, delay ? OUT_DELAY : OUT_WAIT, result, 0);
        return;
    }
    if (bw_json_member(line, len, "result", &v)) {
        s->failures = 0;
        tail_clear(c);
        char *t = span_dup(&v);
        if (!t) {
            decide(s, OUT_ERROR, strdup("bullc-worker: out of memory while storing the result"), 0);
            return;
        }
        decide(s, OUT_RESULT, t, 0);
        return;
    }
    if (!any)
        bad_line(c, line, len, "wrote a line with none of result, error, progress, log, data, delay, waitChildren");
}

/* ---- the slot's job ------------------------------------------------------------- */

static void deadline_cb(uv_timer_t *t) {
    xslot *s = t->data;
    if (!s->job || s->outcome != OUT_NONE) return;
    if (s->asked) {
        TLOG(TLOG_INFO, "cancelled", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(s->job)),
             TLOG_I("pid", s->child ? s->child->pid : 0),
             TLOG_S("msg", "no answer to the cancel line: stopping the child"));
        fail_and_retire(s, 0, "%s", bullc_job_cancel_reason(s->job));
        return;
    }
    TLOG(TLOG_WARN, "timeout", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(s->job)),
         TLOG_I("pid", s->child ? s->child->pid : 0), TLOG_I("timeout_ms", s->q->cfg->s.timeout));
    fail_and_retire(s, 0, "timed out after %lld ms", (long long)s->q->cfg->s.timeout);
}

/* The job's line: bullc_job_to_json's object with the queue and prefix
 * added, on one line (a C producer's data may hold newlines between its
 * tokens; in JSON they are whitespace, and strings cannot hold them raw). */
static int job_line(xslot *s, const bullc_job *job, size_t *len) {
    char *json = bullc_job_to_json(job);
    if (!json) return -1;
    size_t n = strlen(json);
    const bw_queue_cfg *cfg = s->q->cfg;
    bw_sb b = {.p = s->wbuf, .cap = s->wcap};
    bw_sb_put(&b, json, n - 1); /* without its '}' */
    bw_sb_puts(&b, ",\"queue\":");
    bw_sb_quote(&b, cfg->name);
    bw_sb_puts(&b, ",\"prefix\":");
    bw_sb_quote(&b, cfg->s.prefix ? cfg->s.prefix : "bull");
    bw_sb_puts(&b, "}\n");
    bullc_free(json);
    s->wbuf = b.p;
    s->wcap = b.cap;
    if (b.failed) return -1;
    for (char *p = b.p; (p = memchr(p, '\n', b.len - 1 - (size_t)(p - b.p))) != NULL;) *p = ' ';
    for (char *p = b.p; (p = memchr(p, '\r', b.len - (size_t)(p - b.p))) != NULL;) *p = ' ';
    *len = b.len;
    return 0;
}

typedef struct xwrite {
    uv_write_t req;
    char buf[];
} xwrite;

static void write_cb(uv_write_t *req, int status) {
    (void)status; /* EPIPE: the child is gone; its exit says the rest */
    free(req);
}

/* Hands the slot's job to its child: most lines fit the pipe at once; the
 * rest of a long one is copied and written as the child reads. */
static void send_job(xslot *s) {
    xchild *c = s->child;
    size_t len;
    if (job_line(s, s->job, &len)) {
        decide(s, OUT_ERROR, strdup("bullc-worker: out of memory while writing the job"), 0);
        return;
    }
    s->sent = true;
    s->asked = false;
    s->move_code = 0;
    uv_buf_t b = uv_buf_init(s->wbuf, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->in, &b, 1);
    if (n < 0 && n != UV_EAGAIN) n = 0; /* a closed pipe: the exit says why */
    if (n == UV_EAGAIN) n = 0;
    if ((size_t)n < len) {
        xwrite *w = malloc(sizeof *w + len - (size_t)n);
        if (w) {
            memcpy(w->buf, s->wbuf + n, len - (size_t)n);
            uv_buf_t rest = uv_buf_init(w->buf, (unsigned)(len - (size_t)n));
            if (uv_write(&w->req, (uv_stream_t *)&c->in, &rest, 1, write_cb)) free(w);
        }
    }
    if (s->q->cfg->s.timeout > 0) uv_timer_start(&s->deadline, deadline_cb, (uint64_t)s->q->cfg->s.timeout, 0);
}

/* A job waits in the slot: give it to the child, starting one if there is
 * none and no backoff is running. */
static void slot_feed(xslot *s) {
    if (!s->job || s->sent || s->outcome != OUT_NONE) return;
    if (!s->child) {
        if (uv_is_active((uv_handle_t *)&s->restart)) return; /* restart_cb feeds it */
        int rc = child_start(s);
        if (rc) {
            s->failures++;
            backoff(s);
            char msg[512];
            snprintf(msg, sizeof msg, "cannot run %s: %s (%s)", prog(s->q), uv_strerror(rc), uv_err_name(rc));
            decide(s, OUT_ERROR, strdup(msg), 0);
            return;
        }
    }
    send_job(s);
}

static void watch_cb(uv_timer_t *t) {
    bw_execp *x = t->data;
    for (int i = 0; i < x->nslots; i++) {
        xslot *s = &x->slots[i];
        if (!s->job || s->outcome != OUT_NONE || !bullc_job_lock_lost(s->job)) continue;
        TLOG(TLOG_WARN, "lock-lost", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(s->job)),
             TLOG_S("msg", "stopping the child"));
        fail_and_retire(s, 0, "the job's lock was lost: another worker may process it");
    }
}

/* The pool goes once its timers are closed and no job action it asked for
 * is still to be answered (they name a slot). */
static void pool_maybe_free(bw_execp *x) {
    if (!x->closing || x->handles) return;
    for (int i = 0; i < x->nslots; i++)
        if (x->slots[i].pending) return;
    for (int i = 0; i < x->nslots; i++) free(x->slots[i].wbuf);
    for (size_t i = 0; i < x->env_own; i++) free(x->env[i]);
    free(x->env);
    free(x->slots);
    free(x);
}

static void slot_handle_closed(uv_handle_t *h) {
    bw_execp *x = h->data;
    x->handles--;
    pool_maybe_free(x);
}

static bw_execp *pool_new(bw_queue *q) {
    bw_execp *x = calloc(1, sizeof *x);
    int n = q->cfg->s.concurrency > 0 ? q->cfg->s.concurrency : 1;
    if (!x || !(x->slots = calloc((size_t)n, sizeof *x->slots))) {
        free(x);
        return NULL;
    }
    x->q = q;
    q->execp = x;
    if (build_env(x)) {
        q->execp = NULL;
        for (size_t i = 0; i < x->env_own; i++) free(x->env[i]);
        free(x->env);
        free(x->slots);
        free(x);
        return NULL;
    }
    x->nslots = n;
    uv_loop_t *loop = &q->app->loop;
    for (int i = 0; i < n; i++) {
        xslot *s = &x->slots[i];
        s->q = q;
        s->pool = x;
        uv_timer_init(loop, &s->restart);
        uv_timer_init(loop, &s->deadline);
        s->restart.data = s->deadline.data = s;
    }
    uv_timer_init(loop, &x->watch);
    x->watch.data = x;
    x->handles = 2 * n + 1;
    uv_timer_start(&x->watch, watch_cb, LOCK_CHECK_MS, LOCK_CHECK_MS);
    return x;
}

/* Tells the child holding the job that it is cancelled, a line of its own:
 * {"cancel":ID,"reason":R}. */
static bool ask_child(xslot *s, const char *reason) {
    xchild *c = s->child;
    if (!c || uv_is_closing((uv_handle_t *)&c->in)) return false;
    bw_sb b = {0};
    bw_sb_puts(&b, "{\"cancel\":");
    bw_sb_quote(&b, bullc_job_id(s->job));
    bw_sb_puts(&b, ",\"reason\":");
    bw_sb_quote(&b, reason);
    bw_sb_puts(&b, "}\n");
    if (b.failed) {
        free(b.p);
        return false;
    }
    xwrite *w = malloc(sizeof *w + b.len);
    bool ok = w != NULL;
    if (w) {
        memcpy(w->buf, b.p, b.len);
        uv_buf_t buf = uv_buf_init(w->buf, (unsigned)b.len);
        /* queued behind the rest of a long job line, if any */
        ok = !uv_write(&w->req, (uv_stream_t *)&c->in, &buf, 1, write_cb);
        if (!ok) free(w);
    }
    free(b.p);
    return ok;
}

/* The job was cancelled: its child is told with a cancel line and has
 * --kill-grace to answer for the job (a cooperative processor fails it with
 * the reason, as a Node processor throwing signal.reason; one that ignores
 * it may complete it). Without an answer by then, or without a grace, the
 * child is retired the way a timed-out one is (stdin closed, SIGTERM, SIGKILL
 * after --kill-grace; the slot starts a new one) and the job fails with the
 * reason (retried per its attempts). */
static void cancelled(bullc_job *job, const char *reason, void *data) {
    xslot *s = data;
    if (!reason || s->job != job || s->outcome != OUT_NONE) return;
    int64_t grace = s->q->cfg->s.kill_grace;
    bool ask = s->sent && grace > 0 && ask_child(s, reason);
    TLOG(TLOG_INFO, "cancelled", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_I("pid", s->child ? s->child->pid : 0), TLOG_S("reason", reason),
         TLOG_S("msg", ask ? "told the child" : "stopping the child"));
    if (ask) {
        s->asked = true;
        uv_timer_start(&s->deadline, deadline_cb, (uint64_t)grace, 0);
    } else if (s->sent) {
        fail_and_retire(s, 0, "%s", reason);
    } else { /* no child has it yet: nothing to stop */
        decide(s, OUT_ERROR, strdup(reason), 0);
    }
}

void bw_execp_process(bullc_job *job, void *data) {
    bw_queue *q = data;
    bw_execp *x = q->execp ? q->execp : pool_new(q);
    if (!x) {
        bullc_job_fail(job, "bullc-worker: out of memory", 0);
        return;
    }
    /* an idle slot whose child runs, else any idle one (its child restarts) */
    xslot *pick = NULL;
    for (int i = 0; i < x->nslots; i++) {
        xslot *s = &x->slots[i];
        if (s->job) continue;
        if (s->child) {
            pick = s;
            break;
        }
        if (!pick) pick = s;
    }
    if (!pick) { /* more jobs than slots: the worker never does this */
        bullc_job_fail(job, "bullc-worker: no free exec-persistent slot", 0);
        return;
    }
    pick->job = job;
    pick->sent = false;
    pick->outcome = OUT_NONE;
    if (bullc_job_on_cancel(job, cancelled, pick) == 1) {
        decide(pick, OUT_ERROR, strdup(bullc_job_cancel_reason(job)), 0);
        return;
    }
    slot_feed(pick);
}

void bw_execp_kill_all(bw_queue *q, int sig) {
    bw_execp *x = q->execp;
    if (!x) return;
    for (int i = 0; i < x->nslots; i++)
        if (x->slots[i].child) signal_child(x->slots[i].child, sig);
}

void bw_execp_close(bw_queue *q) {
    bw_execp *x = q->execp;
    if (!x || x->closing) return;
    x->closing = true;
    q->execp = NULL;
    for (int i = 0; i < x->nslots; i++) {
        xslot *s = &x->slots[i];
        if (s->child) retire(s->child, 0); /* stdin's EOF ends a helper; the signal, the rest */
        /* only after a forced close: the worker keeps no job waiting otherwise */
        if (s->job) bullc_job_fail(s->job, "bullc-worker shut down", 0);
        s->job = NULL;
        uv_close((uv_handle_t *)&s->restart, slot_handle_closed);
        uv_close((uv_handle_t *)&s->deadline, slot_handle_closed);
        s->restart.data = s->deadline.data = x;
    }
    x->watch.data = x;
    uv_close((uv_handle_t *)&x->watch, slot_handle_closed);
}
