/* SPDX-License-Identifier: MIT */
/* One --exec-persistent child: started in a session of its own, fed on
 * stdin, read line by line on stdout, its stderr logged and kept (the last
 * lines make a crash's reason). A retired child is detached from its owner
 * and lives on alone until it exited and its handles are closed. What its
 * lines mean for jobs is exec_persistent.c's business. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "exec_child.h"

#define PIPE_GRACE_MS 1000 /* after the exit, how long a grandchild may hold the pipes */

struct xchild {
    bw_queue *q;
    const xchild_hooks *hooks;
    void *owner; /* NULL once retired */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer; /* kill grace, then pipe grace */
    int handles;
    int pid;
    bool exited, out_eof, err_eof;
    bool mute; /* closed its stdout and kept running: it can answer no more */
    int64_t status;
    int term_signal;
    char *line; /* stdout's partial line */
    size_t len, cap;
    bool overlong; /* the current line passed XCHILD_MAX_LINE: the child is retired */
    bw_lines err_lines;
    bw_tail tail; /* stderr since the last answer, for a crash's reason */
};

static const char *prog(const bw_queue *q) { return q->cfg->proc.argv[0]; }

int xchild_pid(const xchild *c) { return c->pid; }

void xchild_status(const xchild *c, int64_t *code, int *sig) {
    *code = c->status;
    *sig = c->term_signal;
}

static void child_closed(uv_handle_t *h) {
    xchild *c = h->data;
    if (--c->handles) return;
    free(c->line);
    bw_lines_free(&c->err_lines);
    bw_tail_clear(&c->tail);
    free(c);
}

static void close_h(void *h) {
    if (!uv_is_closing(h)) uv_close(h, child_closed);
}

void xchild_signal(xchild *c, int sig) {
    if (c->exited || c->pid <= 0) return;
    /* a session leader: its own children (a shell's) get it too */
    if (kill(-c->pid, sig) != 0) uv_process_kill(&c->proc, sig);
}

static void close_all(xchild *c) {
    close_h(&c->proc);
    close_h(&c->in);
    close_h(&c->out);
    close_h(&c->err);
    close_h(&c->timer);
}

static void gone(xchild *c, bool overlong) {
    if (c->owner) c->hooks->gone(c->owner, c, overlong);
}

static void grace_cb(uv_timer_t *t) {
    xchild *c = t->data;
    if (!c->exited) {
        xchild_signal(c, SIGKILL);
    } else { /* exited, but a grandchild still holds a pipe: do not wait for it */
        gone(c, false);
        close_all(c);
    }
}

void xchild_retire(xchild *c, int sig) {
    c->owner = NULL;
    close_h(&c->in);
    if (c->exited) {
        if (c->out_eof && c->err_eof) close_all(c);
        return;
    }
    int64_t grace = c->q->cfg->s.kill_grace;
    if (!sig) sig = grace ? SIGTERM : SIGKILL;
    xchild_signal(c, sig);
    if (sig != SIGKILL) uv_timer_start(&c->timer, grace_cb, (uint64_t)grace, 0);
}

/* ---- stderr: logged, and its last lines kept ------------------------------------ */

void xchild_tail_clear(xchild *c) { bw_tail_clear(&c->tail); }

char *xchild_tail_text(const xchild *c) { return bw_tail_text(&c->tail); }

void xchild_why(const xchild *c, bool overlong, char *buf, size_t size) {
    const char *p = prog(c->q);
    if (overlong)
        snprintf(buf, size, "%s wrote an answer line longer than %u bytes", p, XCHILD_MAX_LINE);
    else if (c->mute)
        snprintf(buf, size, "%s closed its stdout but kept running", p);
    else if (c->term_signal)
        snprintf(buf, size, "%s killed by signal %d (%s)", p, c->term_signal,
                 sigabbrev_np(c->term_signal) ? sigabbrev_np(c->term_signal) : "?");
    else
        snprintf(buf, size, "%s exited with code %lld", p, (long long)c->status);
}

static void on_err_line(void *ctx, char *line, size_t len) {
    xchild *c = ctx;
    const char *v;
    (void)bw_line_classify(line, &len, &v); /* only for its clean-up: '\r', NULs */
    bw_tail_push(&c->tail, line, len);
    const char *id = c->owner ? c->hooks->job_id(c->owner) : NULL;
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
    gone(c, false);
    close_all(c);
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

/* ---- stdout: the answers, a line at a time ---------------------------------------- */

/* stdout closed while the child runs: after the pipe grace (its exit is
 * usually a moment behind) it is gone for the jobs, since no answer can come;
 * without this they would wait for --timeout, or for ever without one. */
static void mute_cb(uv_timer_t *t) {
    xchild *c = t->data;
    if (c->exited) return;
    c->mute = true;
    gone(c, false);
}

bool xchild_mute(const xchild *c) { return c->mute; }

static void out_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
    xchild *c = st->data;
    const char *p = buf->base, *end = p + (n > 0 ? n : 0);
    while (p < end && c->owner && !c->overlong) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = (size_t)((nl ? nl : end) - p);
        bool fits = c->len + take < XCHILD_MAX_LINE;
        if (fits && c->len + take + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + take + 1) cap *= 2;
            char *b = realloc(c->line, cap);
            fits = b != NULL; /* an answer that cannot be held counts as too long */
            if (b) {
                c->line = b;
                c->cap = cap;
            }
        }
        if (!fits) {
            c->overlong = true;
            gone(c, true);
            break;
        }
        memcpy(c->line + c->len, p, take);
        c->len += take;
        p += take;
        if (!nl) break;
        p++;
        c->line[c->len] = '\0';
        size_t l = c->len;
        c->len = 0;
        c->hooks->line(c->owner, c, c->line, l);
    }
    free(buf->base);
    if (n < 0) {
        uv_read_stop(st);
        c->out_eof = true;
        if (!c->exited && c->owner) uv_timer_start(&c->timer, mute_cb, PIPE_GRACE_MS, 0);
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

/* ---- stdin ---------------------------------------------------------------------------- */

typedef struct xwrite {
    uv_write_t req;
    char buf[];
} xwrite;

static void write_cb(uv_write_t *req, int status) {
    (void)status; /* EPIPE: the child is gone; its exit says the rest */
    free(req);
}

void xchild_write(xchild *c, const char *p, size_t len) {
    if (uv_is_closing((uv_handle_t *)&c->in)) return;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
    /* EAGAIN also while earlier bytes wait in the queue: the order holds */
    int n = uv_try_write((uv_stream_t *)&c->in, &b, 1);
    if (n < 0) n = 0; /* a closed pipe: the exit says why */
    if ((size_t)n == len) return;
    xwrite *w = malloc(sizeof *w + len - (size_t)n);
    if (!w) return; /* the job's --timeout, or the lock check, ends it */
    memcpy(w->buf, p + n, len - (size_t)n);
    uv_buf_t rest = uv_buf_init(w->buf, (unsigned)(len - (size_t)n));
    if (uv_write(&w->req, (uv_stream_t *)&c->in, &rest, 1, write_cb)) free(w);
}

/* ---- start ------------------------------------------------------------------------------ */

int xchild_start(bw_queue *q, char **env, const xchild_hooks *hooks, void *owner, long slot, xchild **out) {
    uv_loop_t *loop = &q->app->loop;
    xchild *c = calloc(1, sizeof *c);
    if (!c) return UV_ENOMEM;
    c->q = q;
    c->hooks = hooks;
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
                               .env = env,
                               .exit_cb = exit_cb,
                               .stdio = stdio,
                               .stdio_count = 3,
                               /* its own session: Ctrl-C reaches bullc-worker only, which drains */
                               .flags = UV_PROCESS_DETACHED};
    int rc = uv_spawn(loop, &c->proc, &po);
    c->handles = 5; /* uv_spawn initialises the process handle even when it fails */
    if (rc) {
        c->exited = true;
        close_all(c);
        return rc;
    }
    c->pid = c->proc.pid;
    c->owner = owner;
    uv_read_start((uv_stream_t *)&c->out, alloc_cb, out_read);
    uv_read_start((uv_stream_t *)&c->err, alloc_cb, err_read);
    TLOG(TLOG_DEBUG, "spawn", TLOG_S("queue", q->cfg->name), TLOG_I("pid", c->pid), TLOG_S("program", prog(q)),
         TLOG_I("slot", slot));
    *out = c;
    return 0;
}
