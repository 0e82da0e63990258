/* SPDX-License-Identifier: MIT */
/* Asynchronous Redis connection: a command queue with deadlines, and
 * reconnection with backoff. The event-loop glue is uv_redis.c, the reply
 * objects come from reply_arena.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"
#include "hiredis_glue.h"
#include "reply_arena.h"
#include "uv_redis.h"

struct bullc__acmd {
    bullc__aconn *conn;
    bullc__areply_fn cb;
    void *data;
    int64_t deadline;   /* uv_now based */
    int64_t timeout_ms; /* what deadline was set from, for the message */
    bullc__acmd *next;
    uint64_t seq;      /* its connection's `sent` when written there */
    const void *owner; /* whose it is, for bullc__aconn_forget; cb NULL once forgotten */
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
    c->unlinked++;
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
    cmd->seq = 0;
    cmd->owner = NULL;
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
    /* A failure leaves `c` holding nothing and already closed, so that
     * bullc__aconn_close on it does nothing and it may be freed at once: no
     * handle exists before the last step that can fail. */
    c->state = ACONN_CLOSED;
    if (!(c->opts = calloc(1, sizeof *c->opts)) || bullc__redis_opts_copy(c->opts, opts) ||
        (name && !(c->name = strdup(name)))) {
        bullc_redis_opts_free(c->opts); /* with what was copied into it */
        c->opts = NULL;
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->state = ACONN_IDLE;
    return 0;
}

int bullc__aconn_init_queue(bullc__aconn *c, uv_loop_t *loop, const bullc_redis_opts *opts, const char *prefix,
                            const char *name, const char *suffix, bullc_error *err) {
    memset(c, 0, sizeof *c);
    c->state = ACONN_CLOSED; /* as a failed bullc__aconn_init leaves it */
    bullc_redis_opts *ro = NULL;
    int rc = opts ? 0 : bullc__redis_opts_default(&ro, err), slot = -1;
    if (!opts) opts = ro;
    sds cname = NULL;
    if (!rc) rc = bullc__cluster_slot_of(opts, prefix, name, &slot, err);
    if (!rc && !(cname = bullc__client_name(prefix, name, suffix))) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (!rc) rc = bullc__aconn_init(c, loop, opts, cname, err);
    if (!rc && slot >= 0) c->opts->cluster_slot = slot;
    bullc_redis_opts_free(ro);
    sdsfree(cname);
    return rc;
}

bool bullc__aconn_ready(const bullc__aconn *c) { return c->state == ACONN_READY; }

static void schedule_retry(bullc__aconn *c);
static void do_connect(bullc__aconn *c);
static void resend_due(bullc__aconn *c, bool all);

static void on_timer(uv_timer_t *t);
static void cmd_reply(redisAsyncContext *ac, void *reply, void *priv);

/* Everything after the connection ended: callbacks of sent commands have run
 * (hiredis calls them with NULL while freeing the context). */
static void connection_ended(bullc__aconn *c, const bullc_error *why) {
    c->ac = NULL;
    if (c->state == ACONN_CLOSING) {
        return; /* on_closed runs from the timer's close callback */
    }
    bool was_ready = c->state == ACONN_READY;
    c->state = ACONN_WAIT_RETRY;
    if (c->redirecting) {
        /* a MOVED repointed the connection: not an outage to report, and
         * the node it named is connected to at once */
        c->redirecting = false;
        do_connect(c);
        return;
    }
    if (c->on_down && (was_ready || c->attempts == 1)) c->on_down(c, why, c->hook_data);
    schedule_retry(c);
}

static void watch_start(bullc__aconn *c);

static void on_disconnect(const redisAsyncContext *ac, int status) {
    bullc__aconn *c = ac->data;
    bullc_error err = {0};
    char where[256];
    bullc_redis_opts_describe(c->opts, where, sizeof where);
    /* a TLS failure ends the context through redisAsyncFree, which reports
       REDIS_OK: its reason is in ac->err/errstr all the same */
    bool failed = status != REDIS_OK || ac->err;
    if (c->switched_to[0])
        bullc__err(&err, BULLC_ECONN, "connection to %s lost: the sentinels moved the master to %s (+switch-master)",
                   where, c->switched_to);
    else
        bullc__err(&err, BULLC_ECONN, "connection to %s lost%s%s", where, failed ? ": " : "", failed ? ac->errstr : "");
    c->switched_to[0] = '\0';
    connection_ended(c, &err);
}

/* Each setup reply's command kind, as the callbacks' private data (static:
 * it outlives the context). */
static const int setup_kinds[] = {BULLC__SETUP_AUTH, BULLC__SETUP_ROLE, BULLC__SETUP_SELECT, BULLC__SETUP_NAME,
                                  BULLC__SETUP_READY};

static void setup_reply(redisAsyncContext *ac, void *reply, void *priv) {
    bullc__aconn *c = ac->data;
    redisReply *r = reply;
    int kind = *(const int *)priv;
    /* the connection is going away (on_disconnect handles it), or being
     * dropped after a refused step: later setup replies change nothing */
    if (!r || bullc__hiredis_is_disconnecting(ac)) return;
    bullc_error err;
    if (bullc__conn_setup_check(kind, r, c->opts, &err)) {
        /* AUTH or SELECT refused, or not the master (yet): report, drop,
         * retry later (the password may be fixed server-side; a program
         * checks at start; the sentinels are asked again). */
        c->attempts++;
        if (c->on_down) c->on_down(c, &err, c->hook_data);
        c->state = ACONN_CONNECTING; /* not ready; the disconnect below retries */
        redisAsyncDisconnect(ac);
        return;
    }
    if (kind == BULLC__SETUP_READY) {
        c->state = ACONN_READY;
        c->attempts = 0;
        c->generation++;
        if (c->opts->nsentinels && !c->watch) watch_start(c);
        resend_due(c, true); /* what a MOVED sent here */
        arm_timer(c);
        if (c->on_ready) c->on_ready(c, c->hook_data);
    }
}

static void on_connect(const redisAsyncContext *ac, int status) {
    bullc__aconn *c = ac->data;
    if (status == REDIS_OK && !c->opts->unix_path)
        /* NATs and load balancers drop idle TCP connections silently; probes
         * keep an idle worker's connections alive and expose dead ones. */
        bullc__hiredis_keepalive((redisAsyncContext *)ac);
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

static void connect_now(bullc__aconn *c);
static void do_connect(bullc__aconn *c);
static void timer_closed(uv_handle_t *h);

static void resolve_work(uv_work_t *w) {
    bullc__aconn *c = w->data;
    c->resolve_rc = bullc__sentinel_resolve(c->resolving, &c->resolve_err);
    if (!c->resolve_rc) c->resolve_rc = bullc__cluster_resolve(c->resolving, &c->resolve_err);
}

static void resolve_done(uv_work_t *w, int status) {
    bullc__aconn *c = w->data;
    bullc_redis_opts *found = c->resolving;
    c->resolving = NULL;
    if (c->state == ACONN_CLOSING) {
        bullc_redis_opts_free(found);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
        return;
    }
    if (c->switch_during_resolve) {
        /* the sentinels may have answered before the switch: ask again */
        c->switch_during_resolve = false;
        bullc_redis_opts_free(found);
        do_connect(c);
        return;
    }
    if (status == 0 && c->resolve_rc == 0) {
        /* the connection's settings now point at the master */
        char *h = c->opts->host;
        c->opts->host = found->host;
        found->host = h;
        c->opts->port = found->port;
        c->opts->sentinel_resolved = true;
        c->opts->cluster_redirected = false;
        bullc_redis_opts_free(found);
        connect_now(c);
        return;
    }
    bullc_redis_opts_free(found);
    c->attempts++;
    c->state = ACONN_WAIT_RETRY;
    if (c->on_down && c->attempts == 1) c->on_down(c, &c->resolve_err, c->hook_data);
    schedule_retry(c);
}

/* Through Sentinel or in a cluster, asks where the master is first
 * (blocking calls, so on the thread pool, never on the loop); then
 * connects. A MOVED named the node already. */
static void do_connect(bullc__aconn *c) {
    if (!bullc__opts_resolved(c->opts) || c->opts->cluster_redirected) {
        c->opts->cluster_redirected = false;
        connect_now(c);
        return;
    }
    c->state = ACONN_RESOLVING;
    c->resolve_err = (bullc_error){0};
    c->resolve.data = c;
    if (!(c->resolving = calloc(1, sizeof *c->resolving)) || bullc__redis_opts_copy(c->resolving, c->opts) ||
        uv_queue_work(c->loop, &c->resolve, resolve_work, resolve_done)) {
        bullc_redis_opts_free(c->resolving); /* a failed copy left it empty */
        c->resolving = NULL;
        c->attempts++;
        c->state = ACONN_WAIT_RETRY;
        schedule_retry(c);
    }
}

static void connect_now(bullc__aconn *c) {
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
    if (!c->replies) c->replies = bullc__reply_arena_new();
    if (c->replies) bullc__reply_arena_attach(&ac->c, c->replies);
    if (bullc__uv_redis_attach(ac, c->loop, c->opts->busy_poll_us, o->tls && !o->unix_path ? c->opts : NULL) !=
        REDIS_OK) {
        redisAsyncFree(ac);
        c->attempts++;
        c->state = ACONN_WAIT_RETRY;
        schedule_retry(c);
        return;
    }
    c->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* The hand-shake (conn_setup.c), queued before the connection completes:
     * hiredis sends it first; a PING after it says when it is done. */
    bullc__conn_setup s;
    bullc__conn_setup_build(&s, o, c->name);
    for (int i = 0; i < s.n; i++)
        redisAsyncCommandArgv(ac, setup_reply, (void *)&setup_kinds[s.cmd[i].kind], s.cmd[i].argc, s.cmd[i].argv, NULL);
    const char *ping[1] = {"PING"};
    redisAsyncCommandArgv(ac, setup_reply, (void *)&setup_kinds[BULLC__SETUP_READY], 1, ping, NULL);
    arm_timer(c);
}

/* +switch-master, as ioredis's failoverDetector follows it: after a
 * SENTINEL FAILOVER the old master stays up and keeps its clients until the
 * sentinels turn it into a replica, seconds later, and what is written there
 * meanwhile is lost in its resynchronisation. One subscription per
 * connection, on one sentinel at a time; lost, it is made again a second
 * later on the next sentinel, and until then a failover is still followed
 * when the old master drops the connection or answers READONLY. */
static void watch_lost(bullc__aconn *c) {
    c->watch = NULL;
    c->watch_next++;
    if (c->state == ACONN_CLOSING || c->state == ACONN_CLOSED) return;
    c->watch_retry_at = (int64_t)uv_now(c->loop) + 1000;
    if (c->state == ACONN_READY) arm_timer(c);
}

/* Drops the connection at once: the replies due from the old master run
 * their callbacks as lost (what they wrote there would not survive). */
static void drop_now(bullc__aconn *c) {
    redisAsyncContext *ac = c->ac;
    bool was_connected = bullc__hiredis_is_connected(ac);
    redisAsyncFree(ac);
    if (!was_connected) { /* no disconnect callback for a context that never connected */
        bullc_error err;
        bullc__err(&err, BULLC_ECONN, "the sentinels moved the master to %s (+switch-master)", c->switched_to);
        c->switched_to[0] = '\0';
        connection_ended(c, &err);
    }
}

static void watch_message(redisAsyncContext *ac, void *reply, void *priv) {
    bullc__aconn *c = ac->data;
    const redisReply *r = reply;
    (void)priv;
    if (!r || c->watch != ac) return;
    if (r->type == REDIS_REPLY_ERROR) { /* AUTH refused: another sentinel, later */
        redisAsyncDisconnect(ac);
        return;
    }
    /* ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"] */
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(r->element[0]->str, "message") || r->element[2]->type != REDIS_REPLY_STRING)
        return;
    char name[256], old_host[256], host[256];
    int old_port, port;
    if (sscanf(r->element[2]->str, "%255s %255s %d %255s %d", name, old_host, &old_port, host, &port) != 5 ||
        strcmp(name, c->opts->sentinel_master) || (!strcmp(host, c->opts->host) && port == c->opts->port))
        return;
    snprintf(c->switched_to, sizeof c->switched_to, "%s:%d", host, port);
    if (c->state == ACONN_RESOLVING)
        c->switch_during_resolve = true;
    else if ((c->state == ACONN_READY || c->state == ACONN_CONNECTING) && c->ac && !bullc__hiredis_is_ending(c->ac))
        drop_now(c);
    else
        c->switched_to[0] = '\0'; /* waiting to reconnect: it will ask the sentinels */
}

static void watch_connected(const redisAsyncContext *ac, int status) {
    bullc__aconn *c = ac->data;
    if (status != REDIS_OK && c->watch == ac) watch_lost(c); /* hiredis frees it after this */
}

static void watch_disconnected(const redisAsyncContext *ac, int status) {
    bullc__aconn *c = ac->data;
    (void)status;
    if (c->watch == ac) watch_lost(c);
}

static void watch_start(bullc__aconn *c) {
    const bullc_redis_opts *o = c->opts;
    const struct bullc__sentinel_addr *s = &o->sentinels[c->watch_next % o->nsentinels];
    c->watch_retry_at = 0;
    if (o->sentinel_tls) {
        /* the sentinel's certificate must name it, not the master */
        c->watch_tls = *o;
        c->watch_tls.host = s->host;
        c->watch_tls.port = s->port;
        c->watch_tls.tls_server_name = NULL;
    }
    redisAsyncContext *ac = redisAsyncConnect(s->host, s->port);
    if (!ac || ac->err || bullc__uv_redis_attach(ac, c->loop, 0, o->sentinel_tls ? &c->watch_tls : NULL) != REDIS_OK) {
        if (ac) redisAsyncFree(ac);
        watch_lost(c);
        return;
    }
    ac->data = c;
    c->watch = ac;
    redisAsyncSetConnectCallback(ac, watch_connected);
    redisAsyncSetDisconnectCallback(ac, watch_disconnected);
    if (o->sentinel_password) {
        const char *a[3] = {"AUTH", o->sentinel_user ? o->sentinel_user : o->sentinel_password, o->sentinel_password};
        redisAsyncCommandArgv(ac, watch_message, NULL, o->sentinel_user ? 3 : 2, a, NULL);
    }
    const char *a[2] = {"SUBSCRIBE", "+switch-master"};
    redisAsyncCommandArgv(ac, watch_message, NULL, 2, a, NULL);
}

void bullc__aconn_start(bullc__aconn *c) {
    if (c->state == ACONN_IDLE) do_connect(c);
}

static void schedule_retry(bullc__aconn *c) {
    uint64_t delay = bullc__retry_delay_ms(c->attempts, BULLC__RECONNECT_BASE_MS, BULLC__RECONNECT_CAP_MS);
    uv_timer_start(&c->timer, on_timer, delay, 0);
}

static void arm_timer(bullc__aconn *c) {
    if (c->state == ACONN_CLOSING || c->state == ACONN_CLOSED) return;
    int64_t now = (int64_t)uv_now(c->loop), due = -1;
    if (c->state == ACONN_CONNECTING) due = c->connect_started + c->opts->connect_timeout_ms;
    if (c->head && (due < 0 || c->head->deadline < due)) due = c->head->deadline;
    if (c->state == ACONN_READY && !c->watch && c->watch_retry_at && (due < 0 || c->watch_retry_at < due))
        due = c->watch_retry_at;
    if (c->resend && c->resend_at && c->state == ACONN_READY && (due < 0 || c->resend_at < due)) due = c->resend_at;
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
    if (c->state == ACONN_READY && !c->watch && c->watch_retry_at && now >= c->watch_retry_at) watch_start(c);
    bool overdue = (c->state == ACONN_CONNECTING && now >= c->connect_started + c->opts->connect_timeout_ms) ||
                   (c->head && now >= c->head->deadline);
    if (overdue && c->ac) {
        /* The oldest command is late: the connection cannot be trusted any
         * more (a blackholed socket, a frozen server). Freeing the context
         * runs every pending callback with NULL and then on_disconnect. */
        if (c->state == ACONN_CONNECTING) c->attempts++;
        for (bullc__acmd *m = c->head; m; m = m->next) m->deadline = now; /* all report timeouts */
        redisAsyncContext *ac = c->ac;
        bool was_connected = bullc__hiredis_is_connected(ac);
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
    resend_due(c, false);
    arm_timer(c);
}

/* Runs a command's callback with no reply and frees it. */
static void cmd_fail(bullc__aconn *c, bullc__acmd *cmd, int code) {
    if (!cmd->cb) { /* forgotten: its owner was answered already */
        free(cmd);
        return;
    }
    bullc_error err = {0};
    char where[256];
    if (code == BULLC_ETIMEDOUT)
        bullc__err(&err, code, BULLC__TIMEOUT_MSG, bullc_redis_opts_describe(c->opts, where, sizeof where),
                   (int)cmd->timeout_ms);
    else
        bullc__err(&err, code, "connection to Redis lost");
    cmd->cb(c, NULL, &err, cmd->data);
    free(cmd);
}

/* Puts `cmd` last on a list of commands (pending, resend, held). */
static void list_push(bullc__acmd **head, bullc__acmd **tail, bullc__acmd *cmd) {
    cmd->next = NULL;
    if (*tail)
        (*tail)->next = cmd;
    else
        *head = cmd;
    *tail = cmd;
}

/* Writes cmd->req to the connection, last of the commands whose replies
 * are due (a new one, or one a cluster redirected: it did not run); false
 * when it cannot be queued. */
static bool cmd_write(bullc__aconn *c, bullc__acmd *cmd) {
    if (redisAsyncFormattedCommand(c->ac, cmd_reply, cmd, cmd->req, cmd->req_len) != REDIS_OK) return false;
    cmd->seq = ++c->sent;
    list_push(&c->head, &c->tail, cmd);
    return true;
}

/* Sends what waits on the resend list: all of it on a new connection (`all`),
 * else once resend_at has come. A command past its deadline gets its
 * timeout instead. */
static void resend_due(bullc__aconn *c, bool all) {
    int64_t now = (int64_t)uv_now(c->loop);
    if (!c->resend || c->state != ACONN_READY || !c->ac || (!all && now < c->resend_at)) return;
    bullc__acmd *list = c->resend;
    c->resend = c->resend_tail = NULL;
    c->resend_at = 0;
    while (list) {
        bullc__acmd *cmd = list;
        list = cmd->next;
        if (cmd->deadline <= now)
            cmd_fail(c, cmd, BULLC_ETIMEDOUT);
        else if (c->state != ACONN_READY || !c->ac || !cmd_write(c, cmd))
            cmd_fail(c, cmd, BULLC_ECONN);
    }
}

/* Puts `cmd` last on the list of what `c` sends once it can. */
static void resend_push(bullc__aconn *c, bullc__acmd *cmd) { list_push(&c->resend, &c->resend_tail, cmd); }

/* Ends the hold of `c` (see held_for): what it held goes out after what
 * was handed over to it. */
static void release(bullc__aconn *c) {
    c->held_for = NULL;
    c->hold_next = NULL;
    c->held_until = 0;
    if (!c->held) return;
    if (c->resend_tail)
        c->resend_tail->next = c->held;
    else
        c->resend = c->held;
    c->resend_tail = c->held_tail;
    c->held = c->held_tail = NULL;
    resend_due(c, true); /* when not ready, once it is */
    arm_timer(c);
}

/* Releases the connections held for `c` whose wait is over: no command
 * written to `c` up to their held_until is still unanswered. */
static void release_check(bullc__aconn *c) {
    for (bullc__aconn **pp = &c->holding; *pp;) {
        bullc__aconn *h = *pp;
        bool waiting = false;
        for (const bullc__acmd *m = c->head; m && !waiting; m = m->next) waiting = m->seq <= h->held_until;
        if (waiting) {
            pp = &h->hold_next;
            continue;
        }
        *pp = h->hold_next;
        release(h);
    }
}

/* `to` was handed a command `from` had been sent: what is sent to `to`
 * from now on waits for `from`'s older commands (the handed-over command's
 * slot's may be among them). Held for one connection at a time: a second
 * one's hand-over meanwhile (two masters giving slots to one at once) keeps
 * only the first's order. */
static void hold(bullc__aconn *to, bullc__aconn *from) {
    if (!to->held_for) {
        to->held_for = from;
        to->hold_next = from->holding;
        from->holding = to;
    }
    if (to->held_for == from) to->held_until = from->sent;
    release_check(from);
}

/* `c` is closing: the connections held for it are released, and it leaves
 * the one it is held for. */
static void hold_end(bullc__aconn *c) {
    while (c->holding) {
        bullc__aconn *h = c->holding;
        c->holding = h->hold_next;
        release(h);
    }
    if (!c->held_for) return;
    for (bullc__aconn **pp = &c->held_for->holding; *pp; pp = &(*pp)->hold_next)
        if (*pp == c) {
            *pp = c->hold_next;
            break;
        }
    c->held_for = c->hold_next = NULL;
}

enum { HANDED_OVER = -1 };

/* A MOVED on a connection that serves several slots (on_moved): it stays
 * where it is, the command goes to the connection on_moved names, sent at
 * once when that one is ready, else when it becomes so (its resend list).
 * HANDED_OVER, or what this connection does with it: NONE (not a
 * redirection), RETRY (on_moved named none, or this one). */
static int hand_over(bullc__aconn *c, bullc__acmd *cmd, const redisReply *r) {
    int kind = c->opts->ncluster ? bullc__cluster_reply_kind(r) : BULLC__CLUSTER_NONE;
    if (kind != BULLC__CLUSTER_MOVED) return kind;
    int slot, port;
    char *host;
    bullc__aconn *to = NULL;
    if (bullc__cluster_moved(r, &slot, &host, &port))
        to = c->on_moved(c, slot, host ? host : c->opts->host, port, c->hook_data);
    else
        host = NULL;
    free(host);
    if (!to || to == c || to->state == ACONN_CLOSING || to->state == ACONN_CLOSED) return BULLC__CLUSTER_RETRY;
    cmd_unlink(c, cmd);
    cmd->next = NULL;
    cmd->conn = to;
    if (to->state == ACONN_READY && to->ac && !to->resend) {
        if (!cmd_write(to, cmd)) cmd_fail(to, cmd, BULLC_ECONN);
        arm_timer(to);
    } else {
        resend_push(to, cmd);
    }
    hold(to, c);
    return HANDED_OVER;
}

/* A cluster's redirection of a command, which did not run: MOVED
 * repointed the settings (cluster.c), so the connection is dropped once
 * the replies due are in and the command sent again on the next one; ASK,
 * TRYAGAIN and CLUSTERDOWN send it again after the retry policy's pause
 * (backoff.c), longer while they go on (a slot migrating, a failover).
 * True when `cmd` was taken. */
static bool cluster_redirected(bullc__aconn *c, bullc__acmd *cmd, const redisReply *r) {
    int kind = c->on_moved ? hand_over(c, cmd, r) : bullc__cluster_redirect(c->opts, r);
    if (kind == HANDED_OVER) return true;
    if (kind == BULLC__CLUSTER_NONE) return false;
    cmd_unlink(c, cmd);
    resend_push(c, cmd);
    if (kind == BULLC__CLUSTER_MOVED) {
        if (c->ac && !bullc__hiredis_is_ending(c->ac)) {
            c->redirecting = true;
            redisAsyncDisconnect(c->ac);
        }
    } else if (!c->resend_at) {
        c->redirect_tries++;
        c->resend_at =
            (int64_t)uv_now(c->loop) +
            (int64_t)bullc__retry_delay_ms(c->redirect_tries, BULLC__REDIRECT_BASE_MS, BULLC__REDIRECT_CAP_MS);
        arm_timer(c);
    }
    return true;
}

static void cmd_reply(redisAsyncContext *ac, void *reply, void *priv) {
    bullc__acmd *cmd = priv;
    bullc__aconn *c = cmd->conn;
    (void)ac;
    redisReply *r = reply;
    int cls = bullc__reply_class(r, c->opts);
    if ((cls == BULLC__REPLY_MOVED || cls == BULLC__REPLY_RETRY) && c->state != ACONN_CLOSING && cmd->cb &&
        cluster_redirected(c, cmd, r))
        return;
    if (r) c->redirect_tries = 0; /* a command ran: a migration or failover ended */
    if (cmd->script && cmd->cb && cls == BULLC__REPLY_NOSCRIPT && c->ac && !bullc__hiredis_is_ending(c->ac)) {
        /* Resend as EVAL (which caches the script again); the command stays
         * in the list, now waiting for the EVAL's reply. The arguments after
         * numkeys are the formatted tail of the EVALSHA request. */
        const bullc__script *s = cmd->script;
        size_t tail_len = cmd->req_len - cmd->tail_off;
        size_t head_len = bullc__resp_script_head_size(s, cmd->argc, true), len = head_len + tail_len;
        char *req = malloc(len);
        /* once only: a server answering NOSCRIPT to EVAL too must not make
         * a hot loop (it_faults_server) */
        cmd->script = NULL;
        /* keep the list in reply order: move to the tail */
        cmd_unlink(c, cmd);
        list_push(&c->head, &c->tail, cmd);
        if (req) {
            bullc__resp_script_head_write(req, s, cmd->argc, true);
            memcpy(req + head_len, cmd->req + cmd->tail_off, tail_len);
            int rc = redisAsyncFormattedCommand(c->ac, cmd_reply, cmd, req, len);
            free(req);
            if (rc == REDIS_OK) return;
        }
        cmd_unlink(c, cmd);
    } else {
        cmd_unlink(c, cmd);
    }
    bullc_error err = {0};
    if (!cmd->cb) {
        /* forgotten: its owner was answered when it went away */
    } else if (!r) {
        int64_t now = (int64_t)uv_now(c->loop);
        if (cmd->deadline <= now) {
            char where[256];
            bullc__err(&err, BULLC_ETIMEDOUT, BULLC__TIMEOUT_MSG,
                       bullc_redis_opts_describe(c->opts, where, sizeof where), (int)cmd->timeout_ms);
        } else
            bullc__err(&err, BULLC_ECONN, "connection to Redis lost");
    } else if (cls != BULLC__REPLY_FINE) {
        bullc__reply_err(r, &err);
    }
    if (cmd->cb) cmd->cb(c, r, &err, cmd->data);
    free(cmd);
    /* READONLY through Sentinel: the node was demoted by a failover; the
     * reconnection asks the sentinels where the master went. */
    if (cls == BULLC__REPLY_READONLY && c->ac && !bullc__hiredis_is_ending(c->ac)) redisAsyncDisconnect(c->ac);
    if (c->holding) release_check(c);
    if (c->state == ACONN_READY) arm_timer(c);
}

/* Formats a command (`s` NULL) or the EVALSHA of `s` and sends it, or
 * holds it behind what was handed over (held_for). */
static int send_new(bullc__aconn *c, const void *owner, const bullc__script *s, int64_t timeout_ms, bullc__areply_fn cb,
                    void *data, int argc, const char **argv, const size_t *lens) {
    size_t stack[BULLC__RESP_STACK_ARGS], *heap, tail_len = 0;
    if (argc < (s ? s->numkeys : 1)) return BULLC_EINVAL;
    if (c->state != ACONN_READY || !c->ac) return BULLC_ECONN;
    const size_t *l = bullc__resp_arg_lens(argc, argv, lens, stack, &heap);
    if (!l) return BULLC_ENOMEM;
    size_t size = s ? bullc__resp_script_size(s, argc, l, false, &tail_len) : bullc__resp_size(argc, l);
    bullc__acmd *cmd = cmd_new(cb, data, size);
    if (cmd && s)
        bullc__resp_script_write(cmd->req, s, argc, argv, l, false);
    else if (cmd)
        bullc__resp_write(cmd->req, argc, argv, l);
    free(heap);
    if (!cmd) return BULLC_ENOMEM;
    if (s) { /* for a NOSCRIPT's resend as EVAL (cmd_reply) */
        cmd->script = s;
        cmd->argc = argc;
        cmd->tail_off = size - tail_len;
    }
    cmd->conn = c;
    cmd->owner = owner;
    cmd->timeout_ms = timeout_ms > 0 ? timeout_ms : c->opts->command_timeout_ms;
    cmd->deadline = (int64_t)uv_now(c->loop) + cmd->timeout_ms;
    if (c->held_for) {
        list_push(&c->held, &c->held_tail, cmd);
        return 0;
    }
    if (!cmd_write(c, cmd)) {
        free(cmd);
        return BULLC_ECONN;
    }
    if (c->head == cmd) arm_timer(c);
    return 0;
}

int bullc__aconn_cmd_for(bullc__aconn *c, const void *owner, int64_t timeout_ms, bullc__areply_fn cb, void *data,
                         int argc, const char **argv, const size_t *lens) {
    return send_new(c, owner, NULL, timeout_ms, cb, data, argc, argv, lens);
}

int bullc__aconn_cmd(bullc__aconn *c, int64_t timeout_ms, bullc__areply_fn cb, void *data, int argc, const char **argv,
                     const size_t *lens) {
    return send_new(c, NULL, NULL, timeout_ms, cb, data, argc, argv, lens);
}

int bullc__aconn_eval_for(bullc__aconn *c, const void *owner, const bullc__script *s, int64_t timeout_ms,
                          bullc__areply_fn cb, void *data, int argc, const char **argv, const size_t *lens) {
    return send_new(c, owner, s, timeout_ms, cb, data, argc, argv, lens);
}

int bullc__aconn_eval(bullc__aconn *c, const bullc__script *s, int64_t timeout_ms, bullc__areply_fn cb, void *data,
                      int argc, const char **argv, const size_t *lens) {
    return send_new(c, NULL, s, timeout_ms, cb, data, argc, argv, lens);
}

/* bullc__aconn_forget on a list of commands not written yet: they end at
 * once. */
static void forget_unwritten(bullc__aconn *c, bullc__acmd **head, bullc__acmd **tail, const void *owner,
                             const bullc_error *why) {
    for (bullc__acmd **pp = head; *pp;) {
        bullc__acmd *cmd = *pp;
        if (cmd->owner != owner || !cmd->cb) {
            pp = &cmd->next;
            continue;
        }
        *pp = cmd->next;
        if (*tail == cmd) { /* the one before it, found again */
            *tail = NULL;
            for (bullc__acmd *m = *head; m; m = m->next) *tail = m;
        }
        cmd->cb(c, NULL, why, cmd->data);
        free(cmd);
        pp = head; /* the callback may have changed the list */
    }
}

/* The commands sent stay where they are (their replies still due, their
 * deadlines still watched): only their callbacks are taken away. A callback
 * may send or end commands; `unlinked` says when the walk must start over. */
void bullc__aconn_forget(bullc__aconn *c, const void *owner, const bullc_error *why) {
    forget_unwritten(c, &c->resend, &c->resend_tail, owner, why);
    forget_unwritten(c, &c->held, &c->held_tail, owner, why);
    bullc__acmd *cmd = c->head;
    while (cmd) {
        if (cmd->owner != owner || !cmd->cb) {
            cmd = cmd->next;
            continue;
        }
        bullc__areply_fn cb = cmd->cb;
        cmd->cb = NULL; /* its reply, when it comes, is dropped */
        unsigned unlinked = c->unlinked;
        cb(c, NULL, why, cmd->data);
        cmd = unlinked == c->unlinked ? cmd->next : c->head;
    }
}

static void timer_closed(uv_handle_t *h) {
    bullc__aconn *c = h->data;
    c->state = ACONN_CLOSED;
    bullc__reply_arena_free(c->replies); /* the contexts, and the replies they held, are gone */
    c->replies = NULL;
    bullc_redis_opts_free(c->opts);
    c->opts = NULL;
    free(c->name);
    c->name = NULL;
    if (c->on_closed) c->on_closed(c, c->hook_data);
}

void bullc__aconn_close(bullc__aconn *c) {
    if (c->state == ACONN_CLOSING || c->state == ACONN_CLOSED) return;
    bool resolving = c->state == ACONN_RESOLVING;
    c->state = ACONN_CLOSING;
    hold_end(c);
    /* redirected and held commands end as the pending ones do */
    bullc__acmd **lists[] = {&c->resend, &c->held};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        while (*lists[i]) {
            bullc__acmd *cmd = *lists[i];
            *lists[i] = cmd->next;
            cmd_fail(c, cmd, BULLC_ECONN);
        }
    c->resend_tail = c->held_tail = NULL;
    uv_timer_stop(&c->timer);
    redisAsyncContext *watch = c->watch;
    c->watch = NULL; /* its callbacks see it is no longer watched */
    if (watch) redisAsyncFree(watch);
    if (resolving) return; /* resolve_done closes the timer */
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        bool connected = bullc__hiredis_is_connected(ac);
        redisAsyncFree(ac); /* pending callbacks run now, with NULL */
        if (!connected) c->ac = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}
