/* SPDX-License-Identifier: MIT */
/* Asynchronous Redis connection with reconnects and command deadlines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* ---- libuv adapter ------------------------------------------------------
 * hiredis's adapters/libuv.h returns early when uv_poll reports an error
 * status; libuv reports a socket error (POLLERR after a reset) exactly that
 * way and stops the handle, so the connection would sit dead, unnoticed,
 * until a deadline. This adapter lets hiredis read instead, which surfaces
 * the error and runs the disconnect callback at once. */
typedef struct uv_events {
    redisAsyncContext *context;
    uv_poll_t handle;
    uv_prepare_t flush; /* writes queued output once per loop iteration */
    uv_idle_t spin;     /* busy polling: keeps the loop from sleeping */
    uint64_t spin_ns, spin_until;
    int events;
    int open_handles;
    bool write_wanted;
} uv_events;

static void ev_poll(uv_poll_t *handle, int status, int events) {
    uv_events *p = handle->data;
    if (status < 0) events = UV_READABLE; /* let hiredis hit the error */
    if (p->context && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
    if (p->context && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

/* hiredis asks for write interest on every command it queues: restarting
 * the poll each time costs libuv a failing epoll_ctl per call, so only a
 * change of the event set reaches it. */
static void ev_set(uv_events *p, int events) {
    if (events == p->events) return;
    p->events = events;
    if (events)
        uv_poll_start(&p->handle, events, ev_poll);
    else
        uv_poll_stop(&p->handle);
}

/* Once connected, output is written just before the loop next waits for
 * I/O (a prepare handle), in one write for all the commands queued meanwhile:
 * the socket is nearly always writable, and arming write interest per
 * command costs two epoll_ctl calls for nothing. Writing here, not inside
 * the call that queued the command, keeps callbacks from ever running
 * inside that call when the write fails. */
/* Busy polling (bullc_redis_opts_set_busy_poll): an active idle handle makes
 * libuv poll for I/O without blocking, so while a reply is due the loop
 * spins instead of sleeping, up to spin_ns after the last request sent. */
static void ev_spin(uv_idle_t *h) {
    uv_events *p = h->data;
    if (!p->context || !p->context->replies.head || uv_hrtime() > p->spin_until) uv_idle_stop(h);
}

static void ev_flush(uv_prepare_t *h) {
    uv_events *p = h->data;
    uv_prepare_stop(h);
    if (!p->context || !p->write_wanted) return;
    p->write_wanted = false;
    if (p->spin_ns) {
        p->spin_until = uv_hrtime() + p->spin_ns;
        uv_idle_start(&p->spin, ev_spin);
    }
    redisAsyncHandleWrite(p->context);
    /* not all written: hiredis asked again; wait for writability */
    if (p->context && p->write_wanted) ev_set(p, p->events | UV_WRITABLE);
}

static void ev_add_read(void *d) { ev_set(d, ((uv_events *)d)->events | UV_READABLE); }
static void ev_del_read(void *d) { ev_set(d, ((uv_events *)d)->events & ~UV_READABLE); }
static void ev_add_write(void *d) {
    uv_events *p = d;
    if (p->context && (p->context->c.flags & REDIS_CONNECTED) && !(p->events & UV_WRITABLE)) {
        p->write_wanted = true;
        uv_prepare_start(&p->flush, ev_flush);
    } else {
        ev_set(p, p->events | UV_WRITABLE); /* the connect is detected by writability */
    }
}
static void ev_del_write(void *d) {
    uv_events *p = d;
    p->write_wanted = false;
    ev_set(p, p->events & ~UV_WRITABLE);
}
static void ev_closed(uv_handle_t *h) {
    uv_events *p = h->data;
    if (--p->open_handles == 0) free(p);
}
static void ev_cleanup(void *d) {
    uv_events *p = d;
    p->context = NULL;
    uv_close((uv_handle_t *)&p->handle, ev_closed);
    uv_close((uv_handle_t *)&p->flush, ev_closed);
    uv_close((uv_handle_t *)&p->spin, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop, int busy_poll_us) {
    uv_events *p = calloc(1, sizeof *p);
    if (!p) return REDIS_ERR;
    if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    uv_prepare_init(loop, &p->flush);
    uv_idle_init(loop, &p->spin);
    p->open_handles = 3;
    p->spin_ns = (uint64_t)busy_poll_us * 1000;
    p->context = ac;
    p->handle.data = p;
    p->flush.data = p;
    p->spin.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}

/* ---- reply objects from an arena ----------------------------------------
 * hiredis builds a reply with one malloc per element (two per string) and
 * frees it the same way after the callback: for the ~30-field job hash that
 * comes back with each job, that was a quarter of the worker's instructions.
 * Here the objects of a reply are carved from chunks the connection keeps,
 * and freeing a reply (hiredis does it after the callback, or drops one
 * half-read with the context) only rewinds them once no reply is left. The
 * aconn contract already forbids keeping a reply past its callback. */
enum { ARENA_CHUNK = 16384, ARENA_ALIGN = 16 };

/* Under AddressSanitizer the arena stays off: hiredis's own reply objects,
 * one allocation each, let ASan catch a reply used after its callback. */
#if defined(__SANITIZE_ADDRESS__)
#define USE_REPLY_ARENA 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define USE_REPLY_ARENA 0
#endif
#endif
#ifndef USE_REPLY_ARENA
#define USE_REPLY_ARENA 1
#endif

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
} arena_chunk;

typedef struct bullc__reply_arena {
    arena_chunk *chunks; /* the one being filled first */
    int live;            /* replies built and not yet freed */
} reply_arena;

/* Before each reply's root object: where it came from. */
typedef struct root_hdr {
    _Alignas(ARENA_ALIGN) reply_arena *arena;
} root_hdr;

static void *arena_alloc(reply_arena *a, size_t n) {
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    arena_chunk *c = a->chunks;
    if (!c || c->size - c->used < n) {
        size_t size = n > ARENA_CHUNK ? n : ARENA_CHUNK;
        if (!(c = malloc(sizeof *c + size))) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

/* No reply left: keep one standard chunk, emptied, and free the rest. */
static void arena_rewind(reply_arena *a) {
    arena_chunk *keep = NULL;
    for (arena_chunk *c = a->chunks, *next; c; c = next) {
        next = c->next;
        if (!keep && c->size == ARENA_CHUNK) {
            keep = c;
            continue;
        }
        free(c);
    }
    if (keep) keep->used = 0, keep->next = NULL;
    a->chunks = keep;
}

static void arena_free(reply_arena *a) {
    if (!a) return;
    for (arena_chunk *c = a->chunks, *next; c; c = next) next = c->next, free(c);
    free(a);
}

/* A reply object with `extra` bytes after it, linked into its parent. */
static redisReply *reply_new(const redisReadTask *task, int type, size_t extra) {
    reply_arena *a = task->privdata;
    redisReply *r;
    if (task->parent) {
        r = arena_alloc(a, sizeof *r + extra);
    } else {
        root_hdr *h = arena_alloc(a, sizeof *h + sizeof *r + extra);
        if (!h) return NULL;
        h->arena = a;
        r = (redisReply *)(h + 1);
        a->live++;
    }
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->type = type;
    if (task->parent) ((redisReply *)task->parent->obj)->element[task->idx] = r;
    return r;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len) {
    redisReply *r = reply_new(task, task->type, len + 1);
    if (!r) return NULL;
    r->str = (char *)(r + 1);
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *reply_array(const redisReadTask *task, int elements) {
    size_t n = elements > 0 ? (size_t)elements : 0;
    redisReply *r = reply_new(task, REDIS_REPLY_ARRAY, n * sizeof(redisReply *));
    if (!r) return NULL;
    if (n) {
        r->element = (redisReply **)(r + 1);
        memset(r->element, 0, n * sizeof(redisReply *));
    }
    r->elements = n;
    return r;
}

static void *reply_integer(const redisReadTask *task, long long value) {
    redisReply *r = reply_new(task, REDIS_REPLY_INTEGER, 0);
    if (r) r->integer = value;
    return r;
}

static void *reply_nil(const redisReadTask *task) { return reply_new(task, REDIS_REPLY_NIL, 0); }

/* hiredis frees only whole replies (their root objects). */
static void reply_free(void *reply) {
    if (!reply) return;
    reply_arena *a = ((root_hdr *)reply - 1)->arena;
    if (--a->live == 0) arena_rewind(a);
}

static redisReplyObjectFunctions reply_fns = {reply_string, reply_array, reply_integer, reply_nil, reply_free};

struct bullc__acmd {
    bullc__aconn *conn;
    bullc__areply_fn cb;
    void *data;
    int64_t deadline;   /* uv_now based */
    int64_t timeout_ms; /* what deadline was set from, for the message */
    bullc__acmd *next;
    /* For EVALSHA: what a NOSCRIPT answer needs to resend the call as EVAL,
     * the script and the arguments after numkeys, still formatted (the tail
     * of req). */
    const bullc__script *script;
    int argc;        /* arguments after numkeys */
    size_t tail_off; /* where they start in req */
    size_t req_len;
    char req[]; /* the request as sent, in RESP */
};

static void cmd_unlink(bullc__aconn *c, bullc__acmd *cmd) {
    bullc__acmd **pp = &c->head, *prev = NULL;
    while (*pp && *pp != cmd) prev = *pp, pp = &(*pp)->next;
    if (!*pp) return;
    *pp = cmd->next;
    if (c->tail == cmd) c->tail = prev;
}

static void cmd_free(bullc__acmd *cmd) { free(cmd); }

static size_t digits(size_t v) {
    size_t n = 1;
    while (v >= 10) v /= 10, n++;
    return n;
}

/* A command record with room for a request of `size` bytes. */
static bullc__acmd *cmd_new(bullc__areply_fn cb, void *data, size_t size) {
    bullc__acmd *cmd = malloc(sizeof *cmd + size);
    if (!cmd) return NULL;
    cmd->conn = NULL;
    cmd->cb = cb;
    cmd->data = data;
    cmd->deadline = 0;
    cmd->next = NULL;
    cmd->script = NULL;
    cmd->argc = 0;
    cmd->tail_off = cmd->req_len = size;
    return cmd;
}

static void arm_timer(bullc__aconn *c);

int bullc__aconn_init(bullc__aconn *c, uv_loop_t *loop, const bullc_redis_opts *opts, const char *name,
                      bullc_error *err) {
    memset(c, 0, sizeof *c);
    c->loop = loop;
    if (!(c->opts = calloc(1, sizeof *c->opts)) || bullc__redis_opts_copy(c->opts, opts) ||
        (name && !(c->name = strdup(name)))) {
        free(c->opts);
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->state = ACONN_IDLE;
    return 0;
}

bool bullc__aconn_ready(const bullc__aconn *c) { return c->state == ACONN_READY; }

static void schedule_retry(bullc__aconn *c);

static void on_timer(uv_timer_t *t);

/* Everything after the connection ended: callbacks of sent commands have run
 * (hiredis calls them with NULL while freeing the context). */
static void connection_ended(bullc__aconn *c, const bullc_error *why) {
    c->ac = NULL;
    if (c->state == ACONN_CLOSING) {
        return; /* on_closed runs from the timer's close callback */
    }
    bool was_ready = c->state == ACONN_READY;
    c->state = ACONN_WAIT_RETRY;
    if (c->on_down && (was_ready || c->attempts == 1)) c->on_down(c, why, c->hook_data);
    schedule_retry(c);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    bullc__aconn *c = ac->data;
    bullc_error err = {0};
    char where[256];
    bullc_redis_opts_describe(c->opts, where, sizeof where);
    bullc__err(&err, BULLC_ECONN, "connection to %s lost%s%s", where, status == REDIS_OK ? "" : ": ",
               status == REDIS_OK ? "" : ac->errstr);
    connection_ended(c, &err);
}

static void setup_reply(redisAsyncContext *ac, void *reply, void *priv) {
    bullc__aconn *c = ac->data;
    redisReply *r = reply;
    const char *what = priv;
    if (!r) return; /* the connection is going away; on_disconnect handles it */
    if (r->type == REDIS_REPLY_ERROR && strcmp(what, "CLIENT")) {
        /* AUTH or SELECT refused: report, drop, retry later (the password
         * may be fixed server-side; a program checks at start). */
        bullc_error err;
        char where[256];
        bullc_redis_opts_describe(c->opts, where, sizeof where);
        bullc__err(&err, BULLC_EAUTH, "%s refused by %s: %.*s", what, where, (int)r->len, r->str);
        c->attempts++;
        if (c->on_down) c->on_down(c, &err, c->hook_data);
        c->state = ACONN_CONNECTING; /* not ready; the disconnect below retries */
        redisAsyncDisconnect(ac);
        return;
    }
    if (!strcmp(what, "READY")) {
        c->state = ACONN_READY;
        c->attempts = 0;
        c->generation++;
        arm_timer(c);
        if (c->on_ready) c->on_ready(c, c->hook_data);
    }
}

static void on_connect(const redisAsyncContext *ac, int status) {
    bullc__aconn *c = ac->data;
    if (status == REDIS_OK && !c->opts->unix_path)
        /* NATs and load balancers drop idle TCP connections silently; probes
         * keep an idle worker's connections alive and expose dead ones. */
        redisEnableKeepAlive((redisContext *)&ac->c);
    if (status != REDIS_OK) {
        bullc_error err;
        char where[256];
        bullc_redis_opts_describe(c->opts, where, sizeof where);
        bullc__err(&err, BULLC_ECONN, "cannot connect to %s: %s", where, ac->errstr);
        c->attempts++;
        /* hiredis frees the context after this callback */
        connection_ended(c, &err);
        return;
    }
}

static void do_connect(bullc__aconn *c) {
    const bullc_redis_opts *o = c->opts;
    c->state = ACONN_CONNECTING;
    c->connect_started = (int64_t)uv_now(c->loop);
    redisAsyncContext *ac = o->unix_path ? redisAsyncConnectUnix(o->unix_path) : redisAsyncConnect(o->host, o->port);
    if (!ac || ac->err) {
        c->attempts++;
        bullc_error err;
        bullc__err(&err, BULLC_ECONN, "cannot connect: %s", ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        c->state = ACONN_WAIT_RETRY;
        if (c->on_down && c->attempts == 1) c->on_down(c, &err, c->hook_data);
        schedule_retry(c);
        return;
    }
    ac->data = c;
    if (USE_REPLY_ARENA && !c->replies) c->replies = calloc(1, sizeof *c->replies);
    if (c->replies) {
        ac->c.reader->fn = &reply_fns;
        ac->c.reader->privdata = c->replies;
    }
    if (ev_attach(ac, c->loop, c->opts->busy_poll_us) != REDIS_OK) {
        redisAsyncFree(ac);
        c->attempts++;
        c->state = ACONN_WAIT_RETRY;
        schedule_retry(c);
        return;
    }
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued before the connection completes; hiredis sends them first. */
    if (o->password) {
        const char *a[3] = {"AUTH", o->user ? o->user : o->password, o->password};
        redisAsyncCommandArgv(ac, setup_reply, "AUTH", o->user ? 3 : 2, a, NULL);
    }
    if (o->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", o->db);
        const char *a[2] = {"SELECT", db};
        redisAsyncCommandArgv(ac, setup_reply, "SELECT", 2, a, NULL);
    }
    if (c->name) {
        const char *a[3] = {"CLIENT", "SETNAME", c->name};
        redisAsyncCommandArgv(ac, setup_reply, "CLIENT", 3, a, NULL);
    }
    const char *ping[1] = {"PING"};
    redisAsyncCommandArgv(ac, setup_reply, "READY", 1, ping, NULL);
    arm_timer(c);
}

void bullc__aconn_start(bullc__aconn *c) {
    if (c->state == ACONN_IDLE) do_connect(c);
}

static void schedule_retry(bullc__aconn *c) {
    /* 100 ms doubling to 2 s, with jitter so that many workers do not stampede
     * a restarting Redis; the cap bounds how long work waits once Redis is
     * back (one connect attempt per 2 s costs a down server nothing). */
    unsigned n = c->attempts > 5 ? 5 : c->attempts;
    uint64_t base = 100u << n;
    if (base > 2000) base = 2000;
    uint64_t delay = base / 2 + (uint64_t)(rand() % (int)(base / 2 + 1));
    uv_timer_start(&c->timer, on_timer, delay, 0);
}

static void arm_timer(bullc__aconn *c) {
    if (c->state == ACONN_CLOSING || c->state == ACONN_CLOSED) return;
    int64_t now = (int64_t)uv_now(c->loop), due = -1;
    if (c->state == ACONN_CONNECTING) due = c->connect_started + c->opts->connect_timeout_ms;
    if (c->head && (due < 0 || c->head->deadline < due)) due = c->head->deadline;
    if (due < 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)(due > now ? due - now : 0), 0);
}

static void on_timer(uv_timer_t *t) {
    bullc__aconn *c = t->data;
    if (c->state == ACONN_WAIT_RETRY) {
        do_connect(c);
        return;
    }
    int64_t now = (int64_t)uv_now(c->loop);
    bool overdue = (c->state == ACONN_CONNECTING && now >= c->connect_started + c->opts->connect_timeout_ms) ||
                   (c->head && now >= c->head->deadline);
    if (overdue && c->ac) {
        /* The oldest command is late: the connection cannot be trusted any
         * more (a blackholed socket, a frozen server). Freeing the context
         * runs every pending callback with NULL and then on_disconnect. */
        if (c->state == ACONN_CONNECTING) c->attempts++;
        for (bullc__acmd *m = c->head; m; m = m->next) m->deadline = now; /* all report timeouts */
        redisAsyncContext *ac = c->ac;
        bool was_connected = ac->c.flags & REDIS_CONNECTED;
        redisAsyncFree(ac);
        if (!was_connected) { /* no disconnect callback for a context that never connected */
            bullc_error err;
            char where[256];
            bullc__err(&err, BULLC_ETIMEDOUT, BULLC__CONNECT_TIMEOUT_MSG,
                       bullc_redis_opts_describe(c->opts, where, sizeof where), c->opts->connect_timeout_ms);
            connection_ended(c, &err);
        }
        return;
    }
    arm_timer(c);
}

static void cmd_reply(redisAsyncContext *ac, void *reply, void *priv) {
    bullc__acmd *cmd = priv;
    bullc__aconn *c = cmd->conn;
    (void)ac;
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR && cmd->script && !strncmp(r->str, "NOSCRIPT", 8) && c->ac &&
        !(c->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))) {
        /* Resend as EVAL (which caches the script again); the command stays
         * in the list, now waiting for the EVAL's reply. The arguments after
         * numkeys are the formatted tail of the EVALSHA request. */
        const bullc__script *s = cmd->script;
        size_t tail_len = cmd->req_len - cmd->tail_off;
        char head[64];
        int n = snprintf(head, sizeof head, "*%d\r\n$4\r\nEVAL\r\n$%zu\r\n", cmd->argc + 3, s->len);
        int m =
            snprintf(head + n, sizeof head - (size_t)n, "\r\n$%zu\r\n%d\r\n", digits((size_t)s->numkeys), s->numkeys);
        size_t len = (size_t)n + s->len + (size_t)m + tail_len;
        char *req = malloc(len);
        cmd->script = NULL;
        /* keep the list in reply order: move to the tail */
        cmd_unlink(c, cmd);
        cmd->next = NULL;
        if (c->tail)
            c->tail->next = cmd;
        else
            c->head = cmd;
        c->tail = cmd;
        if (req) {
            char *p = req;
            memcpy(p, head, (size_t)n), p += n;
            memcpy(p, s->text, s->len), p += s->len;
            memcpy(p, head + n, (size_t)m), p += m;
            memcpy(p, cmd->req + cmd->tail_off, tail_len);
            int rc = redisAsyncFormattedCommand(c->ac, cmd_reply, cmd, req, len);
            free(req);
            if (rc == REDIS_OK) return;
        }
        cmd_unlink(c, cmd);
    } else {
        cmd_unlink(c, cmd);
    }
    bullc_error err = {0};
    if (!r) {
        int64_t now = (int64_t)uv_now(c->loop);
        if (cmd->deadline <= now) {
            char where[256];
            bullc__err(&err, BULLC_ETIMEDOUT, BULLC__TIMEOUT_MSG,
                       bullc_redis_opts_describe(c->opts, where, sizeof where), (int)cmd->timeout_ms);
        } else
            bullc__err(&err, BULLC_ECONN, "connection to Redis lost");
    } else if (r->type == REDIS_REPLY_ERROR) {
        bullc__areply_err(r, &err);
    }
    cmd->cb(c, r, &err, cmd->data);
    cmd_free(cmd);
    if (c->state == ACONN_READY) arm_timer(c);
}

int bullc__areply_err(const redisReply *r, bullc_error *err) { return bullc__reply_err(r, err); }

/* Sends cmd->req (formatted by the caller); frees `cmd` when it cannot. */
static int send_cmd(bullc__aconn *c, bullc__acmd *cmd, int64_t timeout_ms) {
    if (c->state != ACONN_READY || !c->ac) {
        cmd_free(cmd);
        return BULLC_ECONN;
    }
    cmd->conn = c;
    cmd->timeout_ms = timeout_ms > 0 ? timeout_ms : c->opts->command_timeout_ms;
    cmd->deadline = (int64_t)uv_now(c->loop) + cmd->timeout_ms;
    if (redisAsyncFormattedCommand(c->ac, cmd_reply, cmd, cmd->req, cmd->req_len) != REDIS_OK) {
        cmd_free(cmd);
        return BULLC_ECONN;
    }
    if (c->tail)
        c->tail->next = cmd;
    else
        c->head = cmd;
    c->tail = cmd;
    if (c->head == cmd) arm_timer(c);
    return 0;
}

int bullc__aconn_cmd(bullc__aconn *c, int64_t timeout_ms, bullc__areply_fn cb, void *data, int argc, const char **argv,
                     const size_t *lens) {
    size_t l[64];
    if (argc < 1 || argc > 64) return BULLC_EINVAL;
    for (int i = 0; i < argc; i++) l[i] = lens ? lens[i] : strlen(argv[i]);
    size_t size = bullc__resp_size(argc, l);
    bullc__acmd *cmd = cmd_new(cb, data, size);
    if (!cmd) return BULLC_ENOMEM;
    bullc__resp_write(cmd->req, argc, argv, l);
    return send_cmd(c, cmd, timeout_ms);
}

int bullc__aconn_eval(bullc__aconn *c, const bullc__script *s, int64_t timeout_ms, bullc__areply_fn cb, void *data,
                      int argc, const char **argv, const size_t *lens) {
    if (argc + 3 > 64 || argc < s->numkeys) return BULLC_EINVAL;
    const char *av[64];
    size_t al[64], tail_len = 0;
    char nk[24];
    size_t nkl = digits((size_t)s->numkeys);
    for (size_t i = nkl, v = (size_t)s->numkeys; i > 0; i--, v /= 10) nk[i - 1] = (char)('0' + v % 10);
    av[0] = "EVALSHA", al[0] = 7;
    av[1] = s->sha1, al[1] = 40;
    av[2] = nk, al[2] = nkl;
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen(argv[i]);
        tail_len += 5 + digits(al[i + 3]) + al[i + 3]; /* "$<len>\r\n<arg>\r\n" */
    }
    size_t size = bullc__resp_size(argc + 3, al);
    bullc__acmd *cmd = cmd_new(cb, data, size);
    if (!cmd) return BULLC_ENOMEM;
    bullc__resp_write(cmd->req, argc + 3, av, al);
    cmd->script = s;
    cmd->argc = argc;
    cmd->tail_off = size - tail_len;
    return send_cmd(c, cmd, timeout_ms);
}

void bullc__aconn_reset(bullc__aconn *c) {
    if (c->state == ACONN_READY && c->ac) {
        int64_t now = (int64_t)uv_now(c->loop);
        for (bullc__acmd *m = c->head; m; m = m->next) m->deadline = now;
        redisAsyncFree(c->ac); /* on_disconnect schedules the reconnect */
    }
}

static void timer_closed(uv_handle_t *h) {
    bullc__aconn *c = h->data;
    c->timer_closed = true;
    c->state = ACONN_CLOSED;
    arena_free(c->replies); /* the contexts, and the replies they held, are gone */
    c->replies = NULL;
    bullc_redis_opts_free(c->opts);
    c->opts = NULL;
    free(c->name);
    c->name = NULL;
    if (c->on_closed) c->on_closed(c, c->hook_data);
}

void bullc__aconn_close(bullc__aconn *c) {
    if (c->state == ACONN_CLOSING || c->state == ACONN_CLOSED) return;
    c->state = ACONN_CLOSING;
    uv_timer_stop(&c->timer);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        bool connected = ac->c.flags & REDIS_CONNECTED;
        redisAsyncFree(ac); /* pending callbacks run now, with NULL */
        if (!connected) c->ac = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}
