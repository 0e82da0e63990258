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
 * once cost one new BZPOPMIN.
 *
 * On Redis Cluster a BZPOPMIN names keys of one slot only, so the group
 * has a lane (a blocking connection and all of the above) per hash slot its
 * members' queues are in, made when its first member joins and routed to
 * that slot's master, following MOVED as any connection does. Commands go
 * over one connection per master: a MOVED there moves only that slot's lane
 * to the connection of its new master (see on_moved). Queues sharing a hash
 * tag (the prefix "{bull}") share a lane. Outside a cluster the members
 * are spread over a few lanes by count (PLAIN_LANES below), which share one
 * command connection. The cap on jobs in process is the group's, over every
 * lane (worker_group_turns.c, with the members' first stalled checks). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"
#include "worker_group_impl.h"

#define UNBLOCK_DELAY_MS 5 /* members starting to wait within this share one new BZPOPMIN */
#define POLL_SLACK_MS 50   /* a drain-delay poll due this soon is made now, with the others due */
#define POLL_TICK_MS 200   /* a lane's drain-delay polls are made at most this often */
#define POLL_PHASES 25     /* the members' first drain-delay polls are spread over this many phases */
#define LANE_BLOCK_S 10.0  /* a lane's BZPOPMIN timeout when no member waits for a delayed job */
/* Outside a cluster the members are spread over up to PLAIN_LANES lanes, a
 * new one opening once every lane serves LANE_MEMBERS: a job's marker makes
 * its lane send a new BZPOPMIN naming that lane's waiting members only (a
 * fifth of 5,000 queues' keys, not all of them), and the other lanes' waits
 * go on untouched. Registering and dropping a BZPOPMIN's keys is most of
 * what a job's start costs Redis (about 1 us a key), so the lanes share one
 * command connection and spend the connections on blocking: 5 lanes, their
 * command connection and bullc-worker's own (and --http's) stay within 8. */
#define PLAIN_LANES 5
#define LANE_MEMBERS 500

static void issue(bullc__lane *l);

/* ---- waiting on the lane's BZPOPMIN ------------------------------------------- */

/* A member a reply took out of the waiting ones: the next BZPOPMIN names
 * its key too (if the list cannot grow, it asks for a new one when it waits). */
static void back_add(bullc__lane *l, bullc_worker *w) {
    if (l->nback == l->cap_back) {
        int cap = l->cap_back ? l->cap_back * 2 : 64;
        bullc_worker **grown = realloc(l->back, (size_t)cap * sizeof(bullc_worker *));
        if (!grown) return;
        l->back = grown, l->cap_back = cap;
    }
    l->back[l->nback++] = w;
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
static void poll_cb(uv_timer_t *t);

/* The drain-delay polls run on a timer of their own, not as the BZPOPMIN's
 * timeout: a member polls (moveToActive, as a worker of its own does when
 * its BZPOPMIN times out) while the lane's BZPOPMIN stays in flight naming
 * it, and waits again on that same BZPOPMIN when the poll finds nothing. So
 * a poll costs no new BZPOPMIN (a thousand keys registered again), and the
 * polls can come spread out, a few every POLL_TICK_MS, instead of hundreds
 * at once in a few phases (a burst of moveToActive that held Redis, and
 * every job added meanwhile, for tens of ms on a loaded machine). */
static void poll_arm(bullc__lane *l, int64_t due) {
    int64_t now = bullc__now_ms();
    if (l->g->closing || (l->poll_at && l->poll_at <= due)) return;
    if (due < now + POLL_TICK_MS) due = now + POLL_TICK_MS;
    if (l->poll_at && l->poll_at <= due) return;
    l->poll_at = due;
    uv_timer_start(&l->poll_timer, poll_cb, (uint64_t)(due - now), 0);
}

/* A new BZPOPMIN is needed: now when none is in flight, else once the one in
 * flight is cut short. */
static void kick(bullc__lane *l) {
    if (l->g->closing || l->replying) return; /* a reply's handling ends with a new one */
    if (!uv_is_active((uv_handle_t *)&l->unblock_timer))
        uv_timer_start(&l->unblock_timer, kick_cb, l->blocking ? UNBLOCK_DELAY_MS : 0, 0);
}

void bullc__group_wait(bullc_worker_group *g, bullc_worker *w) {
    bullc__lane *l = w->lane;
    if (w->g_pending) {
        replay_marker(w);
        return;
    }
    if (!w->g_waited && !w->block_until) {
        /* Members that start together would poll together, every drain
         * delay, for ever: 5,000 moveToActive at once hold Redis (and a job
         * added meanwhile) for a tenth of a second. The first poll of each
         * comes earlier by a phase of its own (an early poll only finds the
         * queue empty), and the later ones keep that phase. */
        int64_t left = w->g_poll_due - bullc__now_ms();
        if (left > 0) w->g_poll_due -= left * (int64_t)(g->stagger_poll++ % POLL_PHASES) / POLL_PHASES;
    }
    w->g_waited = true;
    w->blocking = true;
    if (w->g_idle) {
        bullc__lane_due_sync(l, w);
        return;
    }
    bullc__lane_idle_add(l, w);
    /* a new BZPOPMIN unless the one in flight names its key and times out
     * no later than its delayed job is due (its drain-delay poll is
     * poll_timer's) */
    if (!l->blocking || w->g_snap < 0 || (w->block_until && w->g_poll_due < l->block_due)) kick(l);
    if (!w->block_until) poll_arm(l, w->g_poll_due - POLL_SLACK_MS);
}

void bullc__group_unwait(bullc_worker_group *g, bullc_worker *w) {
    (void)g;
    bullc__lane *l = w->lane;
    bullc__lane_idle_remove(l, w);
    w->blocking = false;
}

static const redisReply nil_reply = {.type = REDIS_REPLY_NIL};

/* Ends the waits in `h` due by `until`, earliest first (a member waiting
 * again at once is not woken twice). */
static void wake_heap(bullc__lane *l, bullc__wheap *h, int64_t until) {
    for (int left = h->n; left > 0 && h->n && h->at[0]->g_poll_due <= until; left--) {
        bullc_worker *w = h->at[0];
        bullc__lane_idle_remove(l, w);
        back_add(l, w);
        bullc__worker_block_done(w, &nil_reply);
    }
}

/* Ends the waits that are due (their drain delay passed, or the delayed job
 * they wait for is due). */
static void wake_due(bullc__lane *l) {
    int64_t now = bullc__now_ms();
    /* a delayed job's time is kept exactly: waking early only finds it not
     * due yet and waits again */
    wake_heap(l, &l->delayed, now + 1);
    wake_heap(l, &l->due, now + POLL_SLACK_MS);
}

static void poll_cb(uv_timer_t *t) {
    bullc__lane *l = t->data;
    int64_t now = bullc__now_ms();
    l->poll_at = 0;
    /* earliest first, the members due poll, keeping their key in the
     * BZPOPMIN in flight for their next wait (a member waiting again at
     * once is not polled twice in a tick) */
    for (int left = l->due.n; left > 0 && l->due.n && l->due.at[0]->g_poll_due <= now + POLL_SLACK_MS; left--) {
        bullc_worker *w = l->due.at[0];
        bullc__lane_idle_remove(l, w);
        bullc__worker_block_done(w, &nil_reply);
    }
    if (l->due.n) poll_arm(l, l->due.at[0]->g_poll_due - POLL_SLACK_MS);
}

static void block_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__lane *l = data;
    (void)c, (void)err;
    l->blocking = false;
    bullc_worker *hit = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING)
        hit = bullc__lane_marker_member(l, r->element[0]->str, r->element[0]->len);
    l->nback = 0;
    /* members whose drain-delay poll is out while this named them wait again
     * once it finds nothing: named again (a member that took a job has its
     * queue's marker put back, and is then kept pending as below) */
    for (int i = 0; i < l->nsnap; i++) {
        bullc_worker *w = l->snap[i];
        if (!w) continue;
        w->g_snap = -1;
        if (w != hit && !w->g_idle && !w->closing && w->fetching && !w->in_flight) back_add(l, w);
    }
    l->nsnap = 0;
    l->replying = true;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* the blocking connection failed: every waiting member polls, as a
         * worker of its own would (and blocks again once it is back) */
        while (l->nidle) {
            bullc_worker *w = l->idle->g_iprev; /* the newest first */
            bullc__lane_idle_remove(l, w);
            w->g_waited = false; /* all poll now: each takes a phase again */
            bullc__worker_block_done(w, NULL);
        }
        l->replying = false;
        return;
    }
    if (hit && hit->g_idle) {
        /* the next BZPOPMIN starts after it: round-robin over the queues */
        l->rot = hit;
        bullc__lane_idle_remove(l, hit);
        back_add(l, hit);
        bullc__worker_block_done(hit, r);
    } else if (hit && !hit->closing && r->element[2]->type == REDIS_REPLY_STRING) {
        /* fetching or processing: it fetches once it would wait. The first
         * such marker is mostly the one the script that gave it its job puts
         * back (BullMQ's prepareJobForProcessing does, for the next fetch):
         * named once more, its key is in flight when it waits again. A second
         * one means its queue is busy: not named until it waits. */
        int64_t score = bullc__double_to_i64(strtod(r->element[2]->str, NULL));
        if (!hit->g_pending) back_add(l, hit);
        if (!hit->g_pending || score < hit->g_pending_score) hit->g_pending_score = score;
        hit->g_pending = true;
    }
    wake_due(l);
    l->replying = false;
    issue(l);
}

static void issue(bullc__lane *l) {
    int nback = l->nback;
    l->nback = 0;
    if (l->blocking || l->g->closing || !l->nidle || !bullc__aconn_ready(&l->block)) return;
    int n = l->nidle + nback;
    if (n > l->cap_snap) {
        bullc_worker **grown = realloc(l->snap, (size_t)n * sizeof(bullc_worker *));
        if (!grown) return; /* the members' own timers are not running: retried on the next wait */
        l->snap = grown, l->cap_snap = n;
    }
    /* the keys' lengths are known (sds): no strlen over thousands of keys */
    const char **argv = malloc((size_t)(n + 2) * (sizeof *argv + sizeof(size_t)));
    if (!argv) return;
    size_t *lens = (size_t *)(argv + n + 2);
    int64_t now = bullc__now_ms(), due = now + (int64_t)(LANE_BLOCK_S * 1000);
    argv[0] = "BZPOPMIN";
    lens[0] = 8;
    bullc_worker *w = l->rot ? l->rot : l->idle;
    int k = 0;
    for (int i = 0; i < l->nidle; i++, w = w->g_inext) {
        l->snap[k] = w;
        w->g_snap = k;
        argv[++k] = w->keys.k[BULLC__K_MARKER];
        lens[k] = sdslen(w->keys.k[BULLC__K_MARKER]);
    }
    /* it times out when the first delayed job waited for is due */
    if (l->delayed.n && l->delayed.at[0]->g_poll_due < due) due = l->delayed.at[0]->g_poll_due;
    /* the members served by the last reply come last: their turn was taken */
    for (int i = 0; i < nback; i++) {
        w = l->back[i];
        if (!w || w->g_snap >= 0 || w->closing) continue; /* left, already named (waiting again), or closing */
        l->snap[k] = w;
        w->g_snap = k;
        argv[++k] = w->keys.k[BULLC__K_MARKER];
        lens[k] = sdslen(w->keys.k[BULLC__K_MARKER]);
    }
    l->nsnap = k;
    double timeout = fmax((double)(due - now) / 1000, l->min_block);
    if (l->integer_block) timeout = ceil(timeout);
    char ts[32];
    snprintf(ts, sizeof ts, "%.3f", timeout);
    argv[k + 1] = ts;
    lens[k + 1] = strlen(ts);
    l->blocking = true;
    l->block_due = now + (int64_t)(timeout * 1000);
    /* its own deadline, as a worker's BZPOPMIN: a blackholed socket is dropped */
    if (bullc__aconn_cmd(&l->block, (int64_t)(timeout * 1000) + 2000, block_reply, l, k + 2, argv, lens)) {
        l->blocking = false;
        for (int i = 0; i < k; i++) l->snap[i]->g_snap = -1;
        l->nsnap = 0;
    }
    free(argv);
}

static bool same_node(const bullc__aconn *a, const bullc__aconn *b) {
    const bullc_redis_opts *x = a->opts, *y = b->opts;
    return x->port == y->port && (x->host == y->host || (x->host && y->host && !strcmp(x->host, y->host)));
}

static void unblock_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__lane *l = data;
    (void)c, (void)r, (void)err;
    l->unblocking = false;
}

static void kick_cb(uv_timer_t *t) {
    bullc__lane *l = t->data;
    if (!l->blocking) {
        issue(l);
        return;
    }
    /* the BZPOPMIN in flight times out by itself; on a cluster a client id
     * names a client of one node only, and the command connection may be
     * on another for a moment (a MOVED) */
    if (l->unblocking || !l->block_id || !same_node(&l->node->conn, &l->block)) return;
    /* as if its timeout passed: the reply is nil (or the marker it took) */
    char id[24];
    snprintf(id, sizeof id, "%lld", l->block_id);
    const char *argv[] = {"CLIENT", "UNBLOCK", id, "TIMEOUT"};
    l->unblocking = bullc__aconn_cmd(&l->node->conn, 0, unblock_reply, l, 4, argv, NULL) == 0;
}

/* ---- members ------------------------------------------------------------------- */

static void join_cb(uv_timer_t *t) {
    bullc__lane *l = t->data;
    for (bullc_worker *w = l->members, *next; w; w = next) {
        next = w->gnext;
        if (!w->g_ready_due) continue;
        w->g_ready_due = false;
        bullc__worker_cmd_ready(w);
    }
}

void bullc__group_join(bullc_worker_group *g, bullc_worker *w) {
    bullc__lane *l = w->lane;
    w->gprev = NULL;
    w->gnext = l->members;
    if (l->members) l->members->gprev = w;
    l->members = w;
    l->nmembers++;
    g->nmembers++;
    bullc__lane_marker_link(l, w); /* room was made by bullc__group_lane */
    /* ready now: its own ready steps run from the loop (never inside
     * bullc_worker_new), with those of every member joining in this turn */
    if (bullc__aconn_ready(&l->node->conn)) {
        w->g_ready_due = true;
        if (!uv_is_active((uv_handle_t *)&l->join_timer)) uv_timer_start(&l->join_timer, join_cb, 0, 0);
    }
}

/* The lane moved to a connection that is ready already: its members' ready
 * steps, from the loop. */
static void join_soon(bullc__lane *l) {
    for (bullc_worker *w = l->members; w; w = w->gnext) w->g_ready_due = true;
    if (l->members && !uv_is_active((uv_handle_t *)&l->join_timer)) uv_timer_start(&l->join_timer, join_cb, 0, 0);
}

void bullc__group_leave(bullc_worker_group *g, bullc_worker *w) {
    bullc__lane *l = w->lane;
    bullc__lane_idle_remove(l, w);
    bullc__lane_marker_unlink(l, w);
    if (w->g_snap >= 0) l->snap[w->g_snap] = NULL;
    w->g_snap = -1;
    w->g_pending = false;
    for (int i = 0; i < l->nback; i++)
        if (l->back[i] == w) l->back[i] = NULL;
    w->blocking = false;
    bullc__group_turns_leave(g, w);
    if (w->gprev)
        w->gprev->gnext = w->gnext;
    else if (l->members == w)
        l->members = w->gnext;
    if (w->gnext) w->gnext->gprev = w->gprev;
    w->gprev = w->gnext = NULL;
    l->nmembers--;
    g->nmembers--;
}

void bullc__group_block_limits(const bullc__lane *l, double *min_block, bool *integer_block) {
    *min_block = l->min_block;
    *integer_block = l->integer_block;
}

/* ---- command connections: one per master ------------------------------------ */

static void info_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__gnode *n = data;
    (void)c, (void)err;
    for (int i = 0; i < n->g->nlanes; i++)
        if (n->g->lanes[i]->node == n)
            bullc__worker_info_limits(r, &n->g->lanes[i]->min_block, &n->g->lanes[i]->integer_block);
}

static void on_cmd_ready(bullc__aconn *c, void *data) {
    bullc__gnode *n = data;
    bullc_worker_group *g = n->g;
    const char *argv[] = {"INFO", "server"};
    bullc__aconn_cmd(c, 0, info_reply, n, 2, argv, NULL);
    /* once per connection for every member, whichever major each speaks:
     * the members' meta.version reads go out after these */
    bullc__worker_preload(c, &bullc__protocol_v6);
    bullc__worker_preload(c, &bullc__protocol_v5);
    for (int i = 0; i < g->nlanes; i++) {
        if (g->lanes[i]->node != n) continue;
        for (bullc_worker *w = g->lanes[i]->members, *next; w; w = next) {
            next = w->gnext;
            w->g_ready_due = false;
            bullc__worker_cmd_ready(w);
        }
    }
}

static void on_cmd_down(bullc__aconn *c, const bullc_error *err, void *data) {
    bullc__gnode *n = data;
    (void)c;
    if (n->g->closing) return;
    /* said once, by one member, not once per queue */
    for (int i = 0; i < n->g->nlanes; i++)
        if (n->g->lanes[i]->node == n && n->g->lanes[i]->members) {
            bullc__worker_error(n->g->lanes[i]->members, err->code, "worker group's command connection: %s",
                                err->message);
            return;
        }
}

static void maybe_done(bullc_worker_group *g) {
    if (g->handles_open || !g->close_cb) return;
    void (*cb)(bullc_worker_group *, void *) = g->close_cb;
    g->close_cb = NULL;
    cb(g, g->close_data);
}

static void on_node_closed(bullc__aconn *c, void *data) {
    bullc__gnode *n = data;
    (void)c;
    n->g->handles_open--;
    maybe_done(n->g);
}

static bullc__aconn *on_moved(bullc__aconn *c, int slot, const char *host, int port, void *data);

/* A command connection aimed at host:port (`host` NULL: at `slot`'s master,
 * found as any connection finds it), started unless `wait`; NULL when out
 * of memory. */
static bullc__gnode *node_make(bullc_worker_group *g, int slot, const char *host, int port, bool wait) {
    bullc__gnode **grown = realloc(g->nodes, (size_t)(g->nnodes + 1) * sizeof(bullc__gnode *));
    if (!grown) return NULL;
    g->nodes = grown;
    bullc__gnode *n = calloc(1, sizeof *n);
    bullc_redis_opts *ro = calloc(1, sizeof *ro);
    char *h = host ? strdup(host) : NULL;
    if (!n || !ro || bullc__redis_opts_copy(ro, g->redis) || (host && !h) ||
        bullc__aconn_init(&n->conn, g->loop, ro, NULL, NULL)) {
        free(h);
        bullc_redis_opts_free(ro);
        free(n);
        return NULL;
    }
    bullc_redis_opts_free(ro);
    /* reconnections look up the master of a slot of its (node_aim) */
    n->conn.opts->cluster_slot = slot;
    if (h) {
        free(n->conn.opts->host);
        n->conn.opts->host = h;
        n->conn.opts->port = port;
        n->conn.opts->cluster_redirected = true; /* the first connect goes straight there */
        n->fixed = true;
    }
    n->g = g;
    n->conn.on_ready = on_cmd_ready;
    n->conn.on_down = on_cmd_down;
    n->conn.on_closed = on_node_closed;
    if (g->redis->ncluster) n->conn.on_moved = on_moved;
    n->conn.hook_data = n;
    g->nodes[g->nnodes++] = n;
    g->handles_open++;
    n->waiting = wait;
    if (!wait) bullc__aconn_start(&n->conn);
    return n;
}

static bullc__gnode *node_new(bullc_worker_group *g, int slot, const char *host, int port) {
    return node_make(g, slot, host, port, false);
}

/* The command connection of the master on host:port, made if there is none. */
static bullc__gnode *node_at(bullc_worker_group *g, int slot, const char *host, int port) {
    for (int i = 0; i < g->nnodes; i++) {
        const bullc_redis_opts *o = g->nodes[i]->conn.opts;
        if (g->nodes[i]->fixed && o && o->port == port && o->host && !strcmp(o->host, host)) return g->nodes[i];
    }
    return node_new(g, slot, host, port);
}

/* A reconnection of `n` looks up the master of a slot one of its lanes is
 * in: the one it was made for may have moved away since. */
static void node_aim(bullc__gnode *n) {
    for (int i = 0; i < n->g->nlanes && n->conn.opts; i++)
        if (n->g->lanes[i]->node == n) {
            n->conn.opts->cluster_slot = n->g->lanes[i]->slot;
            return;
        }
}

/* A MOVED on a command connection: the lane of that slot (and its members'
 * later commands) goes to the connection of the master serving it now,
 * the others stay. */
static bullc__aconn *on_moved(bullc__aconn *c, int slot, const char *host, int port, void *data) {
    bullc__gnode *from = data;
    bullc_worker_group *g = from->g;
    (void)c;
    if (g->closing) return NULL;
    for (int i = 0; i < g->nlanes; i++) {
        bullc__lane *l = g->lanes[i];
        if (!l->live || l->slot != slot) continue;
        bullc__gnode *to = node_at(g, slot, host, port);
        if (!to) return NULL; /* retried here */
        if (l->node != to) {
            bullc__gnode *old = l->node;
            l->node = to;
            for (bullc_worker *w = l->members; w; w = w->gnext) w->cmd = &to->conn;
            node_aim(old);
            node_aim(to);
        }
        return &to->conn;
    }
    return NULL;
}

static void join_soon(bullc__lane *l);
static void map_in(int rc, const bullc_error *err, bullc_redis_opts *masters, size_t n, uint16_t *slot_node,
                   void *data);

static void map_closed(void *data) {
    bullc_worker_group *g = data;
    g->map_read = NULL;
    g->handles_open--;
    maybe_done(g);
}

/* The command connection for a new lane of `slot`: its master's, from the
 * slot map. The map is read on the loop when the first lane is made (never
 * a blocking read there: bullc_worker_new may run on a busy loop); lanes
 * made before it came wait on a connection that is never started, and
 * their members join once it is in. */
static bullc__gnode *node_for(bullc_worker_group *g, int slot) {
    if (slot < 0) return g->nnodes ? g->nodes[0] : node_new(g, slot, NULL, 0); /* the plain lanes share one */
    if (g->slot_node) {
        if (g->slot_node[slot] == 0xFFFF) return node_new(g, slot, NULL, 0);
        const bullc_redis_opts *m = &g->masters[g->slot_node[slot]];
        return node_at(g, slot, m->host, m->port);
    }
    if (!g->map_read) {
        bullc__map_read_hooks h = {map_in, map_closed, g};
        if (!(g->map_read = bullc__map_read_start(g->loop, g->redis, &h))) return NULL;
        g->handles_open++;
    }
    if (!g->wait_node) g->wait_node = node_make(g, slot, NULL, 0, true);
    return g->wait_node;
}

/* The slot map came (or a round of asking for it failed: said once, by one
 * waiting member, and asked again): the waiting lanes go to their
 * masters' connections, which give their members their ready steps. */
static void map_in(int rc, const bullc_error *err, bullc_redis_opts *masters, size_t n, uint16_t *slot_node,
                   void *data) {
    bullc_worker_group *g = data;
    if (rc) {
        for (int i = 0; i < g->nlanes; i++)
            if (g->lanes[i]->node == g->wait_node && g->lanes[i]->members) {
                bullc__worker_error(g->lanes[i]->members, rc, "worker group: %s", err->message);
                break;
            }
        return;
    }
    g->masters = masters;
    g->nmasters = n;
    g->slot_node = slot_node;
    g->map_read = NULL; /* it closes by itself; map_closed still counts it */
    for (int i = 0; i < g->nlanes; i++) {
        bullc__lane *l = g->lanes[i];
        if (l->node != g->wait_node) continue;
        bullc__gnode *to = node_for(g, l->slot);
        if (!to) continue; /* out of memory: this lane's members wait on */
        l->node = to;
        for (bullc_worker *w = l->members; w; w = w->gnext) w->cmd = &to->conn;
        if (bullc__aconn_ready(&to->conn)) join_soon(l);
    }
}

/* ---- blocking connections: one per lane ---------------------------------------- */

static void id_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__lane *l = data;
    (void)c, (void)err;
    l->block_id = r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

static void on_block_ready(bullc__aconn *c, void *data) {
    bullc__lane *l = data;
    const char *argv[] = {"CLIENT", "ID"};
    l->block_id = 0;
    bullc__aconn_cmd(c, 0, id_reply, l, 2, argv, NULL);
    for (bullc_worker *w = l->members, *next; w; w = next) {
        next = w->gnext;
        bullc__worker_block_ready(w);
    }
    issue(l);
}

static void on_block_down(bullc__aconn *c, const bullc_error *err, void *data) {
    bullc__lane *l = data;
    (void)c;
    /* said once, by one member, not once per queue */
    if (l->members && !l->g->closing)
        bullc__worker_error(l->members, err->code, "worker group's blocking connection: %s", err->message);
}

static void on_conn_closed(bullc__aconn *c, void *data) {
    (void)c;
    bullc__lane *l = data;
    l->g->handles_open--;
    maybe_done(l->g);
}

static void lane_timer_closed(uv_handle_t *h) {
    bullc__lane *l = h->data;
    l->g->handles_open--;
    maybe_done(l->g);
}

static void timer_closed(uv_handle_t *h) {
    bullc_worker_group *g = h->data;
    g->handles_open--;
    maybe_done(g);
}

/* A lane for `slot` with its blocking connection started, on the command
 * connection of the slot's master. */
static int lane_new(bullc_worker_group *g, int slot, bullc__lane **out, bullc_error *err) {
    bullc__lane **grown = realloc(g->lanes, (size_t)(g->nlanes + 1) * sizeof(bullc__lane *));
    if (!grown) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    g->lanes = grown;
    bullc__gnode *n = node_for(g, slot);
    if (!n) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    bullc__lane *l = calloc(1, sizeof *l);
    if (!l) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    l->g = g;
    l->slot = slot;
    l->node = n;
    l->min_block = 0.001;
    /* a later lane on a command connection that read INFO already (else
     * info_reply sets it with the others) */
    for (int i = 0; i < g->nlanes; i++)
        if (g->lanes[i]->node == n) {
            l->min_block = g->lanes[i]->min_block;
            l->integer_block = g->lanes[i]->integer_block;
            break;
        }
    bullc_redis_opts *ro = calloc(1, sizeof *ro);
    int rc = ro && !bullc__redis_opts_copy(ro, g->redis) ? 0 : bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (!rc) ro->cluster_slot = slot; /* it serves that slot's master */
    if (!rc) rc = bullc__aconn_init(&l->block, g->loop, ro, "bullc:worker-group", err);
    bullc_redis_opts_free(ro);
    if (rc) {
        free(l);
        return rc;
    }
    g->lanes[g->nlanes++] = l;
    l->block.on_ready = on_block_ready;
    l->block.on_down = on_block_down;
    l->block.on_closed = on_conn_closed;
    l->block.hook_data = l;
    uv_timer_t *timers[] = {&l->join_timer, &l->unblock_timer, &l->poll_timer};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(g->loop, timers[i]);
        timers[i]->data = l;
    }
    g->handles_open += 4;
    l->live = true;
    bullc__aconn_start(&l->block);
    *out = l;
    return 0;
}

static int pick_lane(bullc_worker_group *g, const char *prefix, const char *queue, bullc__lane **out,
                     bullc_error *err) {
    if (g->closing) return bullc__err(err, BULLC_ECLOSED, "the worker group is closing");
    int slot;
    int rc = bullc__cluster_slot_of(g->redis, prefix, queue, &slot, err);
    if (rc) return rc;
    if (slot < 0) {
        /* the live lane serving the fewest, unless all are full and one more may open */
        bullc__lane *least = NULL;
        int live = 0;
        for (int i = 0; i < g->nlanes; i++)
            if (g->lanes[i]->live && (live++, !least || g->lanes[i]->nmembers < least->nmembers)) least = g->lanes[i];
        if (least && (least->nmembers < LANE_MEMBERS || live >= PLAIN_LANES)) {
            *out = least;
            return 0;
        }
        return lane_new(g, slot, out, err);
    }
    for (int i = 0; i < g->nlanes; i++)
        if (g->lanes[i]->live && g->lanes[i]->slot == slot) {
            *out = g->lanes[i];
            return 0;
        }
    return lane_new(g, slot, out, err);
}

int bullc__group_lane(bullc_worker_group *g, const char *prefix, const char *queue, bullc__lane **out,
                      bullc_error *err) {
    bullc__lane *l;
    int rc = pick_lane(g, prefix, queue, &l, err);
    if (rc) return rc;
    /* room for one more member (the join cannot fail) */
    if (!bullc__lane_room(l, l->nmembers + 1)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    *out = l;
    return 0;
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
    g->loop = loop;
    int rc = 0;
    if (!redis)
        rc = bullc__redis_opts_default(&g->redis, err);
    else if (!(g->redis = calloc(1, sizeof *g->redis)) || bullc__redis_opts_copy(g->redis, redis))
        rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (rc) {
        bullc_worker_group_free(g);
        return rc;
    }
    uv_timer_init(loop, &g->slot_timer);
    uv_timer_init(loop, &g->stalled_timer);
    g->slot_timer.data = g->stalled_timer.data = g;
    g->handles_open = 2;
    bullc__lane *l;
    /* one server: its first lane connects now (the others as members
     * fill it); on a cluster each slot's connects when its first member joins */
    if (!g->redis->ncluster && (rc = lane_new(g, -1, &l, err))) {
        g->closing = true;
        g->close_cb = free_after_failed_new;
        for (int i = 0; i < g->nnodes; i++) bullc__aconn_close(&g->nodes[i]->conn);
        uv_close((uv_handle_t *)&g->slot_timer, timer_closed);
        uv_close((uv_handle_t *)&g->stalled_timer, timer_closed);
        return rc;
    }
    *out = g;
    return 0;
}

int bullc_worker_group_set_concurrency(bullc_worker_group *g, int max) {
    if (max < 0) return BULLC_EINVAL;
    g->max_active = max;
    bullc__group_slots_changed(g);
    return 0;
}

int bullc_worker_group_active_count(const bullc_worker_group *g) { return g->active; }

int bullc_worker_group_close(bullc_worker_group *g, void (*cb)(bullc_worker_group *g, void *data), void *data) {
    if (g->nmembers) return BULLC_ESTATE;
    if (g->closing) return BULLC_ECLOSED;
    g->closing = true;
    g->close_cb = cb;
    g->close_data = data;
    bullc__map_read_close(g->map_read); /* map_closed counts it closed */
    for (int i = 0; i < g->nnodes; i++) bullc__aconn_close(&g->nodes[i]->conn);
    for (int i = 0; i < g->nlanes; i++) {
        bullc__lane *l = g->lanes[i];
        bullc__aconn_close(&l->block);
        uv_close((uv_handle_t *)&l->join_timer, lane_timer_closed);
        uv_close((uv_handle_t *)&l->unblock_timer, lane_timer_closed);
        uv_close((uv_handle_t *)&l->poll_timer, lane_timer_closed);
    }
    uv_close((uv_handle_t *)&g->slot_timer, timer_closed);
    uv_close((uv_handle_t *)&g->stalled_timer, timer_closed);
    return 0;
}

void bullc_worker_group_free(bullc_worker_group *g) {
    if (!g) return;
    for (int i = 0; i < g->nlanes; i++) {
        free(g->lanes[i]->snap);
        free(g->lanes[i]->back);
        free(g->lanes[i]->due.at);
        free(g->lanes[i]->delayed.at);
        free(g->lanes[i]->mk);
        free(g->lanes[i]);
    }
    free(g->lanes);
    for (int i = 0; i < g->nnodes; i++) free(g->nodes[i]);
    free(g->nodes);
    free(g->slot_node);
    bullc__cluster_masters_free(g->masters, g->nmasters);
    free(g->want.at);
    free(g->stalled.at);
    bullc_redis_opts_free(g->redis);
    free(g);
}
