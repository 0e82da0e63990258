/* SPDX-License-Identifier: MIT */
/* The --exec-persistent processor: long-lived children fed one job per line
 * on their stdin and answering with JSON lines on their stdout (docs/worker.md,
 * "--exec-persistent"). A process start per job is what bounds --exec; here a
 * child pays it once. The child itself (process, pipes, lines) is
 * exec_child.c's; this file owns the slots, the children's seats and what
 * the lines mean for the jobs.
 *
 * A slot holds at most one job (the worker hands out at most `concurrency`
 * jobs, and there are as many slots; shared children have as many spares, see
 * pool_new), so a job always finds a slot. Slot i
 * uses seat i % N, where a child runs: N is --exec-children, by default one
 * seat per slot. A seat's child holds the jobs of its slots, up to
 * ceil(concurrency / N) at once; with fewer seats than slots (shared
 * children) the lines handed to a child in one loop turn go out in one write,
 * and answers find their job by id. A child that misbehaves (dies, hangs past
 * --timeout, writes what is not an answer) is retired: every job it holds
 * fails, it is killed and detached from its seat, and the seat starts a new
 * one after a backoff that doubles while its children keep failing without
 * answering. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "exec_child.h"

#define LOCK_CHECK_MS 250
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 10000
#define SNIPPET 200 /* bytes of a bad line quoted in the reason */
#define LOCK_LOST "the job's lock was lost: another worker may process it"

typedef struct xslot xslot;

/* Where a child runs, for the slots index, index + N, index + 2N, ... */
typedef struct xseat {
    bw_execp *pool;
    int index;
    int load;   /* jobs its slots hold */
    int cap;    /* ceil(concurrency / N): what it holds but for jobs whose lock was lost */
    int nslots; /* its slots, spares included */
    xchild *child;
    uv_timer_t restart;
    int failures; /* children retired since the last answer: the backoff's exponent */
    char *pend;   /* shared children: the lines handed over in this loop turn */
    size_t plen, pcap;
    bool dirty; /* in the pool's list of seats to write */
} xseat;

enum { OUT_NONE, OUT_RESULT, OUT_ERROR, OUT_DELAY, OUT_WAIT };

struct xslot {
    bw_queue *q;
    bw_execp *pool;
    xseat *seat;
    uv_timer_t deadline;
    bullc_job *job;
    uint64_t seq;   /* when its line was handed over: a sequential child runs the oldest */
    bool sent;      /* the job's line went to the seat's current child */
    bool asked;     /* a cancel line went to it: the deadline is now the answer's grace */
    bool lock_lost; /* asked because the lock was lost: its answer is dropped */
    int pending;    /* progress/log/data calls and a move not yet answered */
    int outcome;    /* OUT_*: decided, applied once `pending` is 0 */
    char *value;    /* the result's JSON text, or the error's text */
    int fail_flags;
    int move_code; /* 1 moved, 0 not, <0 BULLC_E* */
    char *wbuf;    /* the job's line, kept for the next one */
    size_t wcap;
};

struct bw_execp {
    bw_queue *q;
    xslot *slots;
    int nslots; /* concurrency, twice that with shared children (below) */
    xseat *seats;
    int nseats;
    bool shared;        /* fewer seats than slots */
    uv_prepare_t flush; /* writes the dirty seats' lines, once per loop turn */
    xseat **dirty;
    int ndirty;
    uint64_t seq;
    uv_timer_t watch; /* lost locks */
    int handles;      /* the slots' and seats' timers, watch and flush, still open */
    bool closing;
    char **env;
    size_t env_own;
};

#define SEAT_SLOTS(t, s) \
    for (xslot *s = &(t)->pool->slots[(t)->index]; s < (t)->pool->slots + (t)->pool->nslots; s += (t)->pool->nseats)

static const char *prog(const bw_queue *q) { return q->cfg->proc.argv[0]; }

/* The job its child runs first: the oldest handed over and still undecided. */
static xslot *seat_oldest(xseat *t) {
    xslot *best = NULL;
    SEAT_SLOTS(t, s) {
        if (s->job && s->sent && s->outcome == OUT_NONE && (!best || s->seq < best->seq)) best = s;
    }
    return best;
}

static int seat_held(xseat *t) {
    int n = 0;
    SEAT_SLOTS(t, s) { n += s->job && s->sent && s->outcome == OUT_NONE; }
    return n;
}

/* The environment plus BULLC_QUEUE and BULLC_PREFIX, without Redis's
 * password unless --exec-redis-env: made once per queue. */
static int build_env(bw_execp *x, bw_queue *q) {
    extern char **environ;
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

/* ---- the job's end -------------------------------------------------------------- */

static void slot_finish(xslot *s) {
    bullc_job *job = s->job;
    if (!job || s->pending || s->outcome == OUT_NONE) return;
    uv_timer_stop(&s->deadline);
    s->job = NULL;
    s->seat->load--;
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

static void deadline_cb(uv_timer_t *h);

/* A shared child's clock: the helpers run the jobs a child holds one after
 * another, in the order handed over, so a job's --timeout, or the grace of a
 * cancel line sent to it, runs only while it is the oldest job its child
 * holds (a job waiting behind others has not started, nor can it answer). */
static void seat_clock(xseat *t) {
    if (!t->pool->shared) return;
    xslot *o = seat_oldest(t);
    if (!o || uv_is_active((uv_handle_t *)&o->deadline)) return;
    int64_t ms = o->asked ? t->pool->q->cfg->s.kill_grace : t->pool->q->cfg->s.timeout;
    if (ms > 0) uv_timer_start(&o->deadline, deadline_cb, (uint64_t)ms, 0);
}

/* Starts the job's clock for `ms` now, or for a shared child once the job is
 * the oldest it holds (seat_clock). */
static void slot_clock(xslot *s, int64_t ms) {
    if (s->pool->shared && seat_oldest(s->seat) != s) {
        uv_timer_stop(&s->deadline);
        return;
    }
    if (ms > 0) uv_timer_start(&s->deadline, deadline_cb, (uint64_t)ms, 0);
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
    seat_clock(s->seat);
}

static void slot_feed(xslot *s);

static void restart_cb(uv_timer_t *h) {
    xseat *t = h->data;
    SEAT_SLOTS(t, s) { slot_feed(s); }
}

static void backoff(xseat *t) {
    if (t->pool->closing || uv_is_active((uv_handle_t *)&t->restart)) return;
    int64_t ms = BACKOFF_MIN_MS;
    for (int i = 1; i < t->failures && ms < BACKOFF_MAX_MS; i++) ms *= 2;
    if (ms > BACKOFF_MAX_MS) ms = BACKOFF_MAX_MS;
    uv_timer_start(&t->restart, restart_cb, (uint64_t)ms, 0);
}

/* Retires the seat's child (`sig` as xchild_retire's); its next one starts
 * after the backoff. Every job the child holds fails: `culprit` (NULL: none
 * known) with `reason`, the others with what happened to `culprit` (`what`),
 * or with `reason` when there is no culprit. */
static void seat_stop(xseat *t, xslot *culprit, int sig, const char *reason, const char *what) {
    if (t->child) xchild_retire(t->child, sig);
    t->child = NULL;
    t->plen = 0; /* lines for it not yet written: their jobs fail below */
    t->failures++;
    backoff(t);
    char other[1024];
    if (culprit)
        snprintf(other, sizeof other, "its child (shared with job %s) was stopped: %s", bullc_job_id(culprit->job),
                 what);
    SEAT_SLOTS(t, s) {
        if (s->job && s->sent && s->outcome == OUT_NONE)
            decide(s, OUT_ERROR, strdup(!culprit || s == culprit ? reason : other), 0);
    }
}

/* The seat's child exited (and its pipes closed), or wrote a line too long
 * to hold. */
static void hook_gone(void *owner, xchild *c, bool overlong) {
    xseat *t = owner;
    bw_queue *q = t->pool->q;
    char head[512];
    xchild_why(c, overlong, head, sizeof head);
    int held = seat_held(t);
    xslot *first = seat_oldest(t);
    int64_t code;
    int sig;
    xchild_status(c, &code, &sig);
    TLOG(TLOG_WARN, overlong || xchild_mute(c) ? "protocol" : "exit", TLOG_S("queue", q->cfg->name),
         TLOG_I("pid", xchild_pid(c)), TLOG_S("id", first ? bullc_job_id(first->job) : ""), TLOG_I("code", code),
         TLOG_I("signal", sig), TLOG_S("msg", head));
    bw_sb b = {0};
    bw_sb_puts(&b, head);
    if (held == 1) bw_sb_puts(&b, " while processing the job");
    if (held > 1) bw_sb_printf(&b, " while holding this job and %d other%s", held - 1, held > 2 ? "s" : "");
    char *tail = held ? xchild_tail_text(c) : NULL;
    if (tail && *tail) {
        bw_sb_puts(&b, ": ");
        bw_sb_puts(&b, tail);
    }
    free(tail);
    char *msg = bw_sb_take(&b);
    seat_stop(t, NULL, SIGKILL, msg ? msg : head, NULL);
    free(msg);
}

static const char *hook_job_id(void *owner) {
    xslot *s = seat_oldest(owner);
    return s ? bullc_job_id(s->job) : NULL;
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

/* The child wrote what is not an answer: it is retired, `culprit`'s job (the
 * line's, if known) fails with the reason and the others it holds with it. */
static void bad_line(xseat *t, xslot *culprit, const char *line, size_t len, const char *what) {
    bw_queue *q = t->pool->q;
    char snippet[SNIPPET + 1];
    size_t n = len < SNIPPET ? len : SNIPPET;
    for (size_t i = 0; i < n; i++) snippet[i] = line[i] ? line[i] : '?';
    snippet[n] = '\0';
    TLOG(TLOG_WARN, "protocol", TLOG_S("queue", q->cfg->name), TLOG_I("pid", t->child ? xchild_pid(t->child) : 0),
         TLOG_S("msg", what), TLOG_S("line", snippet));
    char reason[512];
    snprintf(reason, sizeof reason, "%s %s: %s%s", prog(q), what, snippet, len > SNIPPET ? "..." : "");
    seat_stop(t, culprit, SIGKILL, reason, reason);
}

static bool is_answer(const char *line, size_t len) {
    bw_jspan v;
    return bw_json_member(line, len, "result", &v) || bw_json_member(line, len, "error", &v) ||
           bw_json_member(line, len, "delay", &v) || bw_json_member(line, len, "waitChildren", &v);
}

static void hook_line(void *owner, xchild *c, char *line, size_t len) {
    xseat *t = owner;
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    bw_jspan id, v;
    if (!bw_json_valid(line, len) || !bw_json_member(line, len, "id", &id)) {
        bad_line(t, NULL, line, len,
                 seat_oldest(t) ? "wrote a line that is not a JSON object with an \"id\""
                                : "wrote a line while no job was waiting for an answer");
        return;
    }
    xslot *s = NULL;
    SEAT_SLOTS(t, o) {
        if (o->job && o->sent && id_matches(&id, bullc_job_id(o->job))) {
            s = o;
            break;
        }
    }
    if (!s || s->outcome != OUT_NONE) { /* a second answer too: the first one counted */
        bad_line(t, NULL, line, len, "answered for a job id it does not hold (not handed to it, or answered already)");
        return;
    }
    if (s->lock_lost) { /* another worker may own the job now: only the end of the child's work counts */
        if (is_answer(line, len)) {
            t->failures = 0;
            xchild_tail_clear(c);
            decide(s, OUT_ERROR, strdup(LOCK_LOST), 0);
        }
        return;
    }
    bool any = false;
    if (bw_json_member(line, len, "progress", &v)) {
        any = true;
        char *txt = span_dup(&v);
        if (!txt || job_action(s, bullc_job_update_progress, txt))
            TLOG(TLOG_WARN, "protocol", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(s->job)),
                 TLOG_S("msg", "ignored a progress that is neither a number nor an object"));
        free(txt);
    }
    if (bw_json_member(line, len, "log", &v)) {
        any = true;
        char *txt = bw_json_kind(&v) == BW_JSON_STRING ? bw_json_string_value(&v) : span_dup(&v);
        if (txt) job_action(s, bullc_job_log, txt);
        free(txt);
    }
    if (bw_json_member(line, len, "data", &v)) {
        any = true;
        char *txt = span_dup(&v);
        if (txt) job_action(s, bullc_job_update_data, txt);
        free(txt);
    }
    /* the final answer: after the updates above, as a Node processor awaits them first */
    if (bw_json_member(line, len, "error", &v)) {
        char *txt = bw_json_kind(&v) == BW_JSON_STRING ? bw_json_string_value(&v) : span_dup(&v);
        bw_jspan u;
        bool unrec = bw_json_member(line, len, "unrecoverable", &u) && u.n == 4 && !memcmp(u.p, "true", 4);
        t->failures = 0;
        xchild_tail_clear(c);
        decide(s, OUT_ERROR, txt ? txt : strdup("failed"), unrec ? BULLC_FAIL_UNRECOVERABLE : 0);
        return;
    }
    bool wait = bw_json_member(line, len, "waitChildren", &v) && v.n == 4 && !memcmp(v.p, "true", 4);
    bw_jspan d;
    bool delay = bw_json_member(line, len, "delay", &d);
    if (delay || wait) {
        char *end;
        long long ts = 0;
        if (delay) {
            char *txt = span_dup(&d);
            ts = txt ? strtoll(txt, &end, 10) : 0;
            bool ok = txt && end != txt && !*end;
            free(txt);
            if (!ok) {
                bad_line(t, s, line, len, "asked for a delay that is not a timestamp in ms");
                return;
            }
        }
        t->failures = 0;
        xchild_tail_clear(c);
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
        t->failures = 0;
        xchild_tail_clear(c);
        char *txt = span_dup(&v);
        if (!txt) {
            decide(s, OUT_ERROR, strdup("bullc-worker: out of memory while storing the result"), 0);
            return;
        }
        decide(s, OUT_RESULT, txt, 0);
        return;
    }
    if (!any)
        bad_line(t, s, line, len, "wrote a line with none of result, error, progress, log, data, delay, waitChildren");
}

/* ---- the slot's job ------------------------------------------------------------- */

static void deadline_cb(uv_timer_t *h) {
    xslot *s = h->data;
    if (!s->job || s->outcome != OUT_NONE) return;
    const char *id = bullc_job_id(s->job);
    int pid = s->seat->child ? xchild_pid(s->seat->child) : 0;
    char reason[256], what[512];
    if (s->asked) {
        const char *why = s->lock_lost ? LOCK_LOST : bullc_job_cancel_reason(s->job);
        TLOG(TLOG_INFO, "cancelled", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", id), TLOG_I("pid", pid),
             TLOG_S("msg", "no answer to the cancel line: stopping the child"));
        snprintf(what, sizeof what, "job %s %s and did not answer its cancel line within --kill-grace", id,
                 s->lock_lost ? "lost its lock" : "was cancelled");
        seat_stop(s->seat, s, 0, why ? why : "cancelled", what);
        return;
    }
    TLOG(TLOG_WARN, "timeout", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", id), TLOG_I("pid", pid),
         TLOG_I("timeout_ms", s->q->cfg->s.timeout));
    snprintf(reason, sizeof reason, "timed out after %lld ms", (long long)s->q->cfg->s.timeout);
    snprintf(what, sizeof what, "job %s %s", id, reason);
    seat_stop(s->seat, s, 0, reason, what);
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

static void flush_cb(uv_prepare_t *h) {
    bw_execp *x = h->data;
    uv_prepare_stop(h);
    for (int i = 0; i < x->ndirty; i++) {
        xseat *t = x->dirty[i];
        t->dirty = false;
        if (t->child && t->plen) xchild_write(t->child, t->pend, t->plen);
        t->plen = 0;
    }
    x->ndirty = 0;
}

/* Hands a line to the seat's child: at once when the child is its slot's
 * own; a shared child gets everything of one loop turn in one write. */
static void seat_send(xseat *t, const char *p, size_t len) {
    bw_execp *x = t->pool;
    if (x->shared && t->plen + len > t->pcap) {
        size_t cap = t->pcap ? t->pcap : 4096;
        while (cap < t->plen + len) cap *= 2;
        char *b = realloc(t->pend, cap);
        if (b) {
            t->pend = b;
            t->pcap = cap;
        }
    }
    if (!x->shared || t->plen + len > t->pcap) { /* out of memory: unbatched, after what is queued */
        if (t->plen) xchild_write(t->child, t->pend, t->plen);
        t->plen = 0;
        xchild_write(t->child, p, len);
        return;
    }
    memcpy(t->pend + t->plen, p, len);
    t->plen += len;
    if (!t->dirty) {
        t->dirty = true;
        x->dirty[x->ndirty++] = t;
        uv_prepare_start(&x->flush, flush_cb);
    }
}

/* Hands the slot's job to its seat's child; its --timeout starts here (with
 * a shared child, once it is the oldest job the child holds). */
static void send_job(xslot *s) {
    size_t len;
    if (job_line(s, s->job, &len)) {
        decide(s, OUT_ERROR, strdup("bullc-worker: out of memory while writing the job"), 0);
        return;
    }
    s->sent = true;
    s->asked = s->lock_lost = false;
    s->move_code = 0;
    s->seq = ++s->pool->seq;
    seat_send(s->seat, s->wbuf, len);
    slot_clock(s, s->q->cfg->s.timeout);
}

static const xchild_hooks hooks = {hook_line, hook_gone, hook_job_id};

/* A job waits in the slot: give it to the seat's child, starting one if
 * there is none and no backoff is running. */
static void slot_feed(xslot *s) {
    if (!s->job || s->sent || s->outcome != OUT_NONE) return;
    xseat *t = s->seat;
    if (!t->child) {
        if (uv_is_active((uv_handle_t *)&t->restart)) return; /* restart_cb feeds it */
        int rc = xchild_start(s->q, s->pool->env, &hooks, t, t->index, &t->child);
        if (rc) {
            t->child = NULL;
            t->failures++;
            backoff(t);
            char msg[512];
            snprintf(msg, sizeof msg, "cannot run %s: %s (%s)", prog(s->q), uv_strerror(rc), uv_err_name(rc));
            decide(s, OUT_ERROR, strdup(msg), 0);
            return;
        }
    }
    send_job(s);
}

/* Tells the child holding the job that it is cancelled, a line of its own:
 * {"cancel":ID,"reason":R}, after the job's line. */
static bool ask_child(xslot *s, const char *reason) {
    xseat *t = s->seat;
    if (!t->child) return false;
    bw_sb b = {0};
    bw_sb_puts(&b, "{\"cancel\":");
    bw_sb_quote(&b, bullc_job_id(s->job));
    bw_sb_puts(&b, ",\"reason\":");
    bw_sb_quote(&b, reason);
    bw_sb_puts(&b, "}\n");
    bool ok = !b.failed;
    if (ok) seat_send(t, b.p, b.len);
    free(b.p);
    return ok;
}

/* A lost lock: another worker may process the job, so its outcome is not
 * stored. A child of its own is stopped at once (as a timed-out one); a
 * shared child is told with a cancel line, so that the other jobs it holds
 * go on, and is stopped only if it does not answer within --kill-grace. */
static void watch_cb(uv_timer_t *h) {
    bw_execp *x = h->data;
    int64_t grace = x->q->cfg->s.kill_grace;
    for (int i = 0; i < x->nslots; i++) {
        xslot *s = &x->slots[i];
        if (!s->job || s->outcome != OUT_NONE || s->lock_lost || !bullc_job_lock_lost(s->job)) continue;
        const char *id = bullc_job_id(s->job);
        if (!s->sent) { /* no child has it yet */
            decide(s, OUT_ERROR, strdup(LOCK_LOST), 0);
            continue;
        }
        bool ask = x->shared && grace > 0 && ask_child(s, LOCK_LOST);
        TLOG(TLOG_WARN, "lock-lost", TLOG_S("queue", x->q->cfg->name), TLOG_S("id", id),
             TLOG_S("msg", ask ? "told the child" : "stopping the child"));
        if (ask) {
            s->lock_lost = s->asked = true;
            slot_clock(s, grace);
        } else {
            char what[256];
            snprintf(what, sizeof what, "job %s lost its lock", id);
            seat_stop(s->seat, s, 0, LOCK_LOST, what);
        }
    }
}

/* The pool goes once its handles are closed and no job action it asked for
 * is still to be answered (they name a slot). */
static void pool_maybe_free(bw_execp *x) {
    if (!x->closing || x->handles) return;
    for (int i = 0; i < x->nslots; i++)
        if (x->slots[i].pending) return;
    for (int i = 0; i < x->nslots; i++) free(x->slots[i].wbuf);
    for (int i = 0; i < x->nseats; i++) free(x->seats[i].pend);
    for (size_t i = 0; i < x->env_own; i++) free(x->env[i]);
    free(x->env);
    free(x->dirty);
    free(x->seats);
    free(x->slots);
    free(x);
}

static void pool_handle_closed(uv_handle_t *h) {
    bw_execp *x = h->data;
    x->handles--;
    pool_maybe_free(x);
}

static bw_execp *pool_new(bw_queue *q) {
    bw_execp *x = calloc(1, sizeof *x);
    int c = q->cfg->s.concurrency > 0 ? q->cfg->s.concurrency : 1;
    int k = q->cfg->s.exec_children > 0 && q->cfg->s.exec_children < c ? q->cfg->s.exec_children : c;
    /* A job whose lock was lost leaves the worker's count at once, but a
     * shared child keeps it until it answers the cancel line: the spare
     * slots take the jobs the worker hands out meanwhile. */
    int n = k < c ? 2 * c : c;
    if (!x || !(x->slots = calloc((size_t)n, sizeof *x->slots)) || !(x->seats = calloc((size_t)k, sizeof *x->seats)) ||
        !(x->dirty = calloc((size_t)k, sizeof *x->dirty)) || build_env(x, q)) {
        if (x) {
            for (size_t i = 0; i < x->env_own; i++) free(x->env[i]);
            free(x->env);
            free(x->dirty);
            free(x->seats);
            free(x->slots);
        }
        free(x);
        return NULL;
    }
    x->q = q;
    q->execp = x;
    x->nslots = n;
    x->nseats = k;
    x->shared = k < c;
    uv_loop_t *loop = &q->app->loop;
    for (int i = 0; i < k; i++) {
        xseat *t = &x->seats[i];
        t->pool = x;
        t->index = i;
        t->cap = (c - i + k - 1) / k;
        t->nslots = (n - i + k - 1) / k;
        uv_timer_init(loop, &t->restart);
        t->restart.data = t;
    }
    for (int i = 0; i < n; i++) {
        xslot *s = &x->slots[i];
        s->q = q;
        s->pool = x;
        s->seat = &x->seats[i % k];
        uv_timer_init(loop, &s->deadline);
        s->deadline.data = s;
    }
    uv_timer_init(loop, &x->watch);
    uv_prepare_init(loop, &x->flush);
    x->watch.data = x->flush.data = x;
    x->handles = n + k + 2;
    uv_timer_start(&x->watch, watch_cb, LOCK_CHECK_MS, LOCK_CHECK_MS);
    return x;
}

/* The job was cancelled: its child is told with a cancel line and has
 * --kill-grace to answer for the job (a cooperative processor fails it with
 * the reason, as a Node processor throwing signal.reason; one that ignores
 * it may complete it). Without an answer by then, or without a grace, the
 * child is retired the way a timed-out one is (stdin closed, SIGTERM, SIGKILL
 * after --kill-grace; the seat starts a new one; the other jobs it holds
 * fail) and the job fails with the reason (retried per its attempts). */
static void cancelled(bullc_job *job, const char *reason, void *data) {
    xslot *s = data;
    if (!reason || s->job != job || s->outcome != OUT_NONE || s->lock_lost) return;
    int64_t grace = s->q->cfg->s.kill_grace;
    bool ask = s->sent && grace > 0 && ask_child(s, reason);
    TLOG(TLOG_INFO, "cancelled", TLOG_S("queue", s->q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_I("pid", s->seat->child ? xchild_pid(s->seat->child) : 0), TLOG_S("reason", reason),
         TLOG_S("msg", ask ? "told the child" : "stopping the child"));
    if (ask) {
        s->asked = true;
        slot_clock(s, grace);
    } else if (s->sent) {
        char what[512];
        snprintf(what, sizeof what, "job %s was cancelled: %s", bullc_job_id(job), reason);
        seat_stop(s->seat, s, 0, reason, what);
    } else { /* no child has it yet: nothing to stop */
        decide(s, OUT_ERROR, strdup(reason), 0);
    }
}

/* The seat for a new job: one below its cap whose child runs, holding the
 * fewest jobs; else one below its cap (its child starts); else a spare slot.
 * NULL when every slot is busy. */
static xseat *pick_seat(bw_execp *x) {
    xseat *pick = NULL;
    int best = 0;
    for (int i = 0; i < x->nseats; i++) {
        xseat *t = &x->seats[i];
        if (t->load >= t->nslots) continue;
        int score = t->load + (t->child ? 0 : 2 * x->nslots) + (t->load >= t->cap ? 4 * x->nslots : 0);
        if (!pick || score < best) {
            pick = t;
            best = score;
        }
    }
    return pick;
}

void bw_execp_process(bullc_job *job, void *data) {
    bw_queue *q = data;
    bw_execp *x = q->execp ? q->execp : pool_new(q);
    if (!x) {
        bullc_job_fail(job, "bullc-worker: out of memory", 0);
        return;
    }
    xseat *t = pick_seat(x);
    if (!t) { /* a job whose lock was lost no longer counts for the worker: free its slot now */
        watch_cb(&x->watch);
        t = pick_seat(x);
    }
    xslot *pick = NULL;
    if (t) SEAT_SLOTS(t, s) {
            if (!s->job) {
                pick = s;
                break;
            }
        }
    if (!pick) { /* more jobs than slots: the worker never does this (but for answers still due of lost jobs) */
        bullc_job_fail(job, "bullc-worker: no free exec-persistent slot", 0);
        return;
    }
    pick->job = job;
    pick->sent = false;
    pick->outcome = OUT_NONE;
    t->load++;
    if (bullc_job_on_cancel(job, cancelled, pick) == 1) {
        decide(pick, OUT_ERROR, strdup(bullc_job_cancel_reason(job)), 0);
        return;
    }
    slot_feed(pick);
}

void bw_execp_kill_all(bw_queue *q, int sig) {
    bw_execp *x = q->execp;
    if (!x) return;
    for (int i = 0; i < x->nseats; i++)
        if (x->seats[i].child) xchild_signal(x->seats[i].child, sig);
}

void bw_execp_close(bw_queue *q) {
    bw_execp *x = q->execp;
    if (!x || x->closing) return;
    x->closing = true;
    q->execp = NULL;
    for (int i = 0; i < x->nseats; i++) {
        xseat *t = &x->seats[i];
        if (t->child) xchild_retire(t->child, 0); /* stdin's EOF ends a helper; the signal, the rest */
        t->child = NULL;
        t->restart.data = x;
        uv_close((uv_handle_t *)&t->restart, pool_handle_closed);
    }
    for (int i = 0; i < x->nslots; i++) {
        xslot *s = &x->slots[i];
        /* only after a forced close: the worker keeps no job waiting otherwise */
        if (s->job) bullc_job_fail(s->job, "bullc-worker shut down", 0);
        s->job = NULL;
        s->deadline.data = x;
        uv_close((uv_handle_t *)&s->deadline, pool_handle_closed);
    }
    uv_close((uv_handle_t *)&x->watch, pool_handle_closed);
    uv_close((uv_handle_t *)&x->flush, pool_handle_closed);
}
