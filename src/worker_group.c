/* SPDX-License-Identifier: MIT */
/* Worker group: many workers on one command connection and one blocking
 * connection. The blocking side waits with a single BZPOPMIN on the marker
 * keys of every member whose queue is drained (BZPOPMIN takes many keys and
 * answers with the first non-empty one, in argument order: the order rotates
 * past the queue served last, so that one busy queue cannot be served ahead
 * of the others every time). With thousands of members each BZPOPMIN costs
 * Redis a registration per key, so a new one is sent as seldom as can be:
 * the one sent after a reply also names the members that reply took out of
 * the waiting ones (they wait again once their fetch is done, and then find
 * their key already named), and a marker it takes for a member that is not
 * waiting is kept for that member's next wait. A member that starts waiting
 * while a BZPOPMIN is in flight without its key has the wait cut short with
 * CLIENT UNBLOCK, a few milliseconds later so that many members joining at
 * once cost one new BZPOPMIN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

#define UNBLOCK_DELAY_MS 5 /* members starting to wait within this share one new BZPOPMIN */
#define POLL_SLACK_MS 250  /* a drain-delay poll due this soon is made now, with the others due */

static void issue(bullc_worker_group *g);

/* ---- the waiting members ------------------------------------------------------- */

/* The waiting members are a ring in the order they started waiting (a
 * member's removal keeps the others' order, which is the rotation's, in
 * O(1): thousands of queues wait, and each fetch removes one). */
static void idle_remove(bullc_worker_group *g, bullc_worker *w) {
    if (!w->g_idle) return;
    bullc_worker *next = w->g_inext;
    if (--g->nidle == 0) {
        g->idle = g->rot = NULL;
    } else {
        w->g_iprev->g_inext = next;
        next->g_iprev = w->g_iprev;
        if (g->idle == w) g->idle = next;
        /* the rotation goes on from the member after it */
        if (g->rot == w) g->rot = next;
    }
    w->g_idle = false;
    w->g_inext = w->g_iprev = NULL;
}

/* A member a reply took out of the waiting ones: the next BZPOPMIN names
 * its key too (if the list cannot grow, it asks for a new one when it waits). */
static void back_add(bullc_worker_group *g, bullc_worker *w) {
    if (g->nback == g->cap_back) {
        int cap = g->cap_back ? g->cap_back * 2 : 64;
        bullc_worker **grown = realloc(g->back, (size_t)cap * sizeof(bullc_worker *));
        if (!grown) return;
        g->back = grown, g->cap_back = cap;
    }
    g->back[g->nback++] = w;
}

/* The marker the group took for it while it was not waiting, handled as its
 * own BZPOPMIN's answer would be (a delayed job's score sets its wake-up). */
static void replay_marker(bullc_worker *w) {
    char score[32];
    int len = snprintf(score, sizeof score, "%lld", (long long)w->g_pending_score);
    redisReply key = {.type = REDIS_REPLY_STRING, .str = "", .len = 0};
    redisReply sc = {.type = REDIS_REPLY_STRING, .str = score, .len = (size_t)len};
    redisReply *el[3] = {&key, &key, &sc};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 3, .element = el};
    w->g_pending = false;
    bullc__worker_block_done(w, &r);
}

static void kick_cb(uv_timer_t *t);

/* A new BZPOPMIN is needed: now when none is in flight, else once the one in
 * flight is cut short. */
static void kick(bullc_worker_group *g) {
    if (g->closing || g->replying) return; /* a reply's handling ends with a new one */
    if (!uv_is_active((uv_handle_t *)&g->unblock_timer))
        uv_timer_start(&g->unblock_timer, kick_cb, g->blocking ? UNBLOCK_DELAY_MS : 0, 0);
}

void bullc__group_wait(bullc_worker_group *g, bullc_worker *w) {
    if (w->g_pending) {
        replay_marker(w);
        return;
    }
    w->blocking = true;
    if (w->g_idle) return;
    /* the newest: just before the oldest in the ring */
    if (!g->idle) {
        g->idle = w->g_inext = w->g_iprev = w;
    } else {
        w->g_inext = g->idle;
        w->g_iprev = g->idle->g_iprev;
        w->g_iprev->g_inext = w;
        g->idle->g_iprev = w;
    }
    w->g_idle = true;
    g->nidle++;
    /* a new BZPOPMIN unless the one in flight names its key and times out
     * no later than its own wait should */
    if (!g->blocking || w->g_snap < 0 || w->g_poll_due < g->block_due) kick(g);
}

void bullc__group_unwait(bullc_worker_group *g, bullc_worker *w) {
    idle_remove(g, w);
    w->blocking = false;
}

static const redisReply nil_reply = {.type = REDIS_REPLY_NIL};

/* Ends the waits that are due (their drain delay passed, or the delayed job
 * they wait for is due). */
static void wake_due(bullc_worker_group *g) {
    int64_t now = bullc__now_ms();
    /* oldest first; the members due are taken out of the ring */
    bullc_worker *w = g->idle;
    for (int left = g->nidle; left > 0; left--) {
        bullc_worker *next = w->g_inext;
        /* a delayed job's time is kept exactly: waking early only finds it
         * not due yet and waits again */
        bool due = w->block_until ? w->g_poll_due <= now + 1 : w->g_poll_due <= now + POLL_SLACK_MS;
        if (due) {
            idle_remove(g, w);
            back_add(g, w);
            bullc__worker_block_done(w, &nil_reply);
        }
        w = next;
    }
}

static void block_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker_group *g = data;
    (void)c, (void)err;
    g->blocking = false;
    for (int i = 0; i < g->nsnap; i++)
        if (g->snap[i]) g->snap[i]->g_snap = -1;
    bullc_worker *hit = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
        const redisReply *key = r->element[0];
        for (int i = 0; i < g->nsnap && !hit; i++) {
            bullc_worker *w = g->snap[i];
            const sds mk = w ? w->keys.k[BULLC__K_MARKER] : NULL;
            if (mk && sdslen(mk) == key->len && !memcmp(mk, key->str, key->len)) hit = w;
        }
    }
    g->nsnap = 0;
    g->nback = 0;
    g->replying = true;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* the blocking connection failed: every waiting member polls, as a
         * worker of its own would (and blocks again once it is back) */
        while (g->nidle) {
            bullc_worker *w = g->idle->g_iprev; /* the newest first */
            idle_remove(g, w);
            bullc__worker_block_done(w, NULL);
        }
        g->replying = false;
        return;
    }
    if (hit && hit->g_idle) {
        /* the next BZPOPMIN starts after it: round-robin over the queues */
        g->rot = hit;
        idle_remove(g, hit);
        back_add(g, hit);
        bullc__worker_block_done(hit, r);
    } else if (hit && !hit->closing && r->element[2]->type == REDIS_REPLY_STRING) {
        /* fetching or processing: it fetches once it would wait. The first
         * such marker is mostly the one the script that gave it its job puts
         * back (BullMQ's prepareJobForProcessing does, for the next fetch):
         * named once more, its key is in flight when it waits again. A second
         * one means its queue is busy: not named until it waits. */
        int64_t score = bullc__double_to_i64(strtod(r->element[2]->str, NULL));
        if (!hit->g_pending) back_add(g, hit);
        if (!hit->g_pending || score < hit->g_pending_score) hit->g_pending_score = score;
        hit->g_pending = true;
    }
    wake_due(g);
    g->replying = false;
    issue(g);
}

static void issue(bullc_worker_group *g) {
    int nback = g->nback;
    g->nback = 0;
    if (g->blocking || g->closing || !g->nidle || !bullc__aconn_ready(&g->block)) return;
    int n = g->nidle + nback;
    if (n > g->cap_snap) {
        bullc_worker **grown = realloc(g->snap, (size_t)n * sizeof(bullc_worker *));
        if (!grown) return; /* the members' own timers are not running: retried on the next wait */
        g->snap = grown, g->cap_snap = n;
    }
    const char **argv = malloc((size_t)(n + 2) * sizeof *argv);
    if (!argv) return;
    int64_t now = bullc__now_ms(), due = INT64_MAX;
    argv[0] = "BZPOPMIN";
    bullc_worker *w = g->rot ? g->rot : g->idle;
    int k = 0;
    for (int i = 0; i < g->nidle; i++, w = w->g_inext) {
        g->snap[k] = w;
        w->g_snap = k;
        argv[++k] = w->keys.k[BULLC__K_MARKER];
        if (w->g_poll_due < due) due = w->g_poll_due;
    }
    /* the members served by the last reply come last: their turn was taken */
    for (int i = 0; i < nback; i++) {
        w = g->back[i];
        if (!w || w->g_snap >= 0 || w->closing) continue; /* left, already named (waiting again), or closing */
        g->snap[k] = w;
        w->g_snap = k;
        argv[++k] = w->keys.k[BULLC__K_MARKER];
    }
    g->nsnap = k;
    double timeout = fmax((double)(due - now) / 1000, g->min_block);
    if (g->integer_block) timeout = ceil(timeout);
    char ts[32];
    snprintf(ts, sizeof ts, "%.3f", timeout);
    argv[k + 1] = ts;
    g->blocking = true;
    g->block_due = now + (int64_t)(timeout * 1000);
    /* its own deadline, as a worker's BZPOPMIN: a blackholed socket is dropped */
    if (bullc__aconn_cmd(&g->block, (int64_t)(timeout * 1000) + 2000, block_reply, g, k + 2, argv, NULL)) {
        g->blocking = false;
        for (int i = 0; i < k; i++) g->snap[i]->g_snap = -1;
        g->nsnap = 0;
    }
    free(argv);
}

static void unblock_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker_group *g = data;
    (void)c, (void)r, (void)err;
    g->unblocking = false;
}

static void kick_cb(uv_timer_t *t) {
    bullc_worker_group *g = t->data;
    if (!g->blocking) {
        issue(g);
        return;
    }
    if (g->unblocking || !g->block_id) return; /* the BZPOPMIN in flight times out by itself */
    /* as if its timeout passed: the reply is nil (or the marker it took) */
    char id[24];
    snprintf(id, sizeof id, "%lld", g->block_id);
    const char *argv[] = {"CLIENT", "UNBLOCK", id, "TIMEOUT"};
    g->unblocking = bullc__aconn_cmd(&g->cmd, 0, unblock_reply, g, 4, argv, NULL) == 0;
}

/* ---- the process-wide cap ------------------------------------------------------ */

static bool cap_reached(const bullc_worker_group *g) {
    return g->max_active && g->active + g->fetching >= g->max_active;
}

static void slots_changed(bullc_worker_group *g);

bool bullc__group_full(bullc_worker_group *g, bullc_worker *w) {
    /* a free slot goes to the member whose turn it is */
    if (!cap_reached(g) && (!g->nwant || w == g->granted)) return false;
    if (w->g_wanting) return true;
    if (g->nwant == g->cap_want) {
        int cap = g->cap_want ? g->cap_want * 2 : 64;
        bullc_worker **grown = malloc((size_t)cap * sizeof(bullc_worker *));
        if (!grown) return true; /* it fetches again when one of its own jobs ends */
        for (int i = 0; i < g->nwant; i++) grown[i] = g->want[(g->want_head + i) % g->cap_want];
        free(g->want);
        g->want = grown, g->cap_want = cap, g->want_head = 0;
    }
    g->want[(g->want_head + g->nwant++) % g->cap_want] = w;
    w->g_wanting = true;
    slots_changed(g);
    return true;
}

bool bullc__group_contended(const bullc_worker_group *g) { return g->nwant > 0; }

static void slot_cb(uv_timer_t *t) {
    bullc_worker_group *g = t->data;
    /* in turn: each member held back gets the next free slot */
    while (g->nwant && !cap_reached(g)) {
        bullc_worker *w = g->want[g->want_head];
        g->want_head = (g->want_head + 1) % g->cap_want;
        g->nwant--;
        if (!w) continue; /* it left the group */
        w->g_wanting = false;
        g->granted = w;
        bullc__worker_pump(w);
        g->granted = NULL;
        if (w->g_wanting) break; /* held back again */
    }
}

static void slots_changed(bullc_worker_group *g) {
    /* pumped from the loop, never from inside a member's finish */
    if (g->nwant && !cap_reached(g) && !g->closing && !uv_is_active((uv_handle_t *)&g->slot_timer))
        uv_timer_start(&g->slot_timer, slot_cb, 0, 0);
}

void bullc__group_slot_taken(bullc_worker_group *g) { g->active++; }

void bullc__group_slot_freed(bullc_worker_group *g) {
    g->active--;
    slots_changed(g);
}

void bullc__group_fetch(bullc_worker_group *g, int delta) {
    g->fetching += delta;
    if (delta < 0) slots_changed(g);
}

/* ---- members ------------------------------------------------------------------- */

static void join_cb(uv_timer_t *t) {
    bullc_worker_group *g = t->data;
    for (bullc_worker *w = g->members, *next; w; w = next) {
        next = w->gnext;
        if (!w->g_ready_due) continue;
        w->g_ready_due = false;
        bullc__worker_cmd_ready(w);
    }
}

void bullc__group_join(bullc_worker_group *g, bullc_worker *w) {
    w->gprev = NULL;
    w->gnext = g->members;
    if (g->members) g->members->gprev = w;
    g->members = w;
    g->nmembers++;
    /* ready now: its own ready steps run from the loop (never inside
     * bullc_worker_new), with those of every member joining in this turn */
    if (bullc__aconn_ready(&g->cmd)) {
        w->g_ready_due = true;
        if (!uv_is_active((uv_handle_t *)&g->join_timer)) uv_timer_start(&g->join_timer, join_cb, 0, 0);
    }
}

void bullc__group_leave(bullc_worker_group *g, bullc_worker *w) {
    idle_remove(g, w);
    if (w->g_snap >= 0) g->snap[w->g_snap] = NULL;
    w->g_snap = -1;
    w->g_pending = false;
    for (int i = 0; i < g->nback; i++)
        if (g->back[i] == w) g->back[i] = NULL;
    w->blocking = false;
    if (w->g_wanting) {
        for (int i = 0; i < g->nwant; i++)
            if (g->want[(g->want_head + i) % g->cap_want] == w) g->want[(g->want_head + i) % g->cap_want] = NULL;
        w->g_wanting = false;
    }
    if (w->gprev)
        w->gprev->gnext = w->gnext;
    else if (g->members == w)
        g->members = w->gnext;
    if (w->gnext) w->gnext->gprev = w->gprev;
    w->gprev = w->gnext = NULL;
    g->nmembers--;
}

void bullc__group_block_limits(const bullc_worker_group *g, double *min_block, bool *integer_block) {
    *min_block = g->min_block;
    *integer_block = g->integer_block;
}

/* ---- connections --------------------------------------------------------------- */

static void info_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker_group *g = data;
    (void)c, (void)err;
    bullc__worker_info_limits(r, &g->min_block, &g->integer_block);
}

static void on_cmd_ready(bullc__aconn *c, void *data) {
    bullc_worker_group *g = data;
    const char *argv[] = {"INFO", "server"};
    bullc__aconn_cmd(c, 0, info_reply, g, 2, argv, NULL);
    /* once per connection for every member, whichever major each speaks:
     * the members' meta.version reads go out after these */
    bullc__worker_preload(c, &bullc__protocol_v6);
    bullc__worker_preload(c, &bullc__protocol_v5);
    for (bullc_worker *w = g->members, *next; w; w = next) {
        next = w->gnext;
        w->g_ready_due = false;
        bullc__worker_cmd_ready(w);
    }
}

static void id_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc_worker_group *g = data;
    (void)c, (void)err;
    g->block_id = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

static void on_block_ready(bullc__aconn *c, void *data) {
    bullc_worker_group *g = data;
    const char *argv[] = {"CLIENT", "ID"};
    g->block_id = 0;
    bullc__aconn_cmd(c, 0, id_reply, g, 2, argv, NULL);
    for (bullc_worker *w = g->members, *next; w; w = next) {
        next = w->gnext;
        bullc__worker_block_ready(w);
    }
    issue(g);
}

static void on_down(bullc__aconn *c, const bullc_error *err, void *data) {
    bullc_worker_group *g = data;
    /* said once, by one member, not once per queue */
    if (g->members && !g->closing)
        bullc__worker_error(g->members, err->code, "worker group's %s connection: %s",
                            c == &g->block ? "blocking" : "command", err->message);
}

static void maybe_done(bullc_worker_group *g) {
    if (g->handles_open || !g->close_cb) return;
    void (*cb)(bullc_worker_group *, void *) = g->close_cb;
    g->close_cb = NULL;
    cb(g, g->close_data);
}

static void on_conn_closed(bullc__aconn *c, void *data) {
    (void)c;
    bullc_worker_group *g = data;
    g->handles_open--;
    maybe_done(g);
}

static void timer_closed(uv_handle_t *h) {
    bullc_worker_group *g = h->data;
    g->handles_open--;
    maybe_done(g);
}

/* ---- public API ---------------------------------------------------------------- */

static void free_after_failed_new(bullc_worker_group *g, void *data) {
    (void)data;
    bullc_worker_group_free(g);
}

int bullc_worker_group_new(bullc_worker_group **out, uv_loop_t *loop, const bullc_redis_opts *redis, bullc_error *err) {
    if (!out || !loop) return bullc__err(err, BULLC_EINVAL, "out and loop are required");
    bullc_worker_group *g = calloc(1, sizeof *g);
    if (!g) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc_redis_opts *ro = NULL;
    int rc = redis ? 0 : bullc__redis_opts_default(&ro, err);
    if (!rc && bullc_redis_opts_cluster_count(redis ? redis : ro))
        /* one BZPOPMIN over the queues' markers cannot span slots */
        rc = bullc__err(err, BULLC_EINVAL,
                        "worker groups do not support Redis Cluster yet: give each queue a worker of its own");
    if (!rc) rc = bullc__aconn_init(&g->cmd, loop, redis ? redis : ro, NULL, err);
    if (!rc && (rc = bullc__aconn_init(&g->block, loop, redis ? redis : ro, "bullc:worker-group", err))) {
        /* the command connection holds a timer handle: freed from its close */
        g->cmd.on_closed = on_conn_closed;
        g->cmd.hook_data = g;
        g->handles_open = 1;
        g->close_cb = free_after_failed_new;
        bullc__aconn_close(&g->cmd);
        bullc_redis_opts_free(ro);
        return rc;
    }
    bullc_redis_opts_free(ro);
    if (rc) {
        free(g);
        return rc;
    }
    g->loop = loop;
    g->min_block = 0.001;
    g->cmd.on_ready = on_cmd_ready;
    g->block.on_ready = on_block_ready;
    g->cmd.on_down = g->block.on_down = on_down;
    g->cmd.on_closed = g->block.on_closed = on_conn_closed;
    g->cmd.hook_data = g->block.hook_data = g;
    uv_timer_t *timers[] = {&g->join_timer, &g->unblock_timer, &g->slot_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = g;
    }
    g->handles_open = 5;
    bullc__aconn_start(&g->cmd);
    bullc__aconn_start(&g->block);
    *out = g;
    return 0;
}

int bullc_worker_group_set_concurrency(bullc_worker_group *g, int max) {
    if (max < 0) return BULLC_EINVAL;
    g->max_active = max;
    slots_changed(g);
    return 0;
}

int bullc_worker_group_active_count(const bullc_worker_group *g) { return g->active; }

int bullc_worker_group_close(bullc_worker_group *g, void (*cb)(bullc_worker_group *g, void *data), void *data) {
    if (g->nmembers) return BULLC_ESTATE;
    if (g->closing) return BULLC_ECLOSED;
    g->closing = true;
    g->close_cb = cb;
    g->close_data = data;
    bullc__aconn_close(&g->cmd);
    bullc__aconn_close(&g->block);
    uv_handle_t *hs[] = {(uv_handle_t *)&g->join_timer, (uv_handle_t *)&g->unblock_timer,
                         (uv_handle_t *)&g->slot_timer};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) uv_close(hs[i], timer_closed);
    return 0;
}

void bullc_worker_group_free(bullc_worker_group *g) {
    if (!g) return;
    free(g->snap);
    free(g->back);
    free(g->want);
    free(g);
}
