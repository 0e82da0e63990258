/* SPDX-License-Identifier: MIT */
/* bullc_aqueue_conn: the connections bullc_aqueue handles send their calls
 * over. bullc_aqueue_new makes one of its own (one connection, named and
 * aimed as Node's Queue's); a program reading thousands of queues makes
 * one and shares it (bullc_aqueue_new_shared), so that its connection count
 * does not grow with the queues: one connection, or in a cluster one per
 * master, each queue sent to its slot's. A node tells its handles when its
 * connection comes and goes; the handles keep their calls themselves. */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

#define NSLOTS 16384
#define NO_NODE 0xFFFF

struct bullc_aqueue_conn {
    uv_loop_t *loop;
    bullc__aq_node *nodes; /* never moved: each holds libuv handles */
    size_t nnodes;
    uint16_t *slot_node; /* shared, in a cluster: each slot's node (NO_NODE: none served it) */
    /* a cluster whose map could not be read at _new: it is read on the loop
     * (cluster_map.c) while the handles wait on `wait`, a connection never
     * started, down with the reason (their calls fail at once) */
    bullc__map_read *map_read;
    bullc__aq_node *wait;
    bullc_redis_opts *redis; /* the settings, for the nodes made once the map is in */
    size_t users;            /* handles attached */
    size_t open;             /* nodes whose connection has not closed */
    bool closing, nodes_closing;
    void (*close_cb)(bullc_aqueue_conn *c, void *data);
    void *close_data;
};

static void on_ready(bullc__aconn *a, void *data) {
    bullc__aq_node *n = data;
    (void)a;
    n->down = false;
    for (bullc__aq_link *l = n->users; l; l = l->next) bullc__aqueue_node_event(l->q, NULL);
}

static void on_down(bullc__aconn *a, const bullc_error *err, void *data) {
    bullc__aq_node *n = data;
    (void)a;
    n->down = true;
    n->down_err = *err;
    for (bullc__aq_link *l = n->users; l; l = l->next) bullc__aqueue_node_event(l->q, &n->down_err);
}

static void on_closed(bullc__aconn *a, void *data) {
    bullc__aq_node *n = data;
    bullc_aqueue_conn *c = n->owner;
    (void)a;
    if (--c->open == 0 && c->close_cb) c->close_cb(c, c->close_data);
}

static bullc_aqueue_conn *conn_alloc(uv_loop_t *loop, size_t nnodes) {
    bullc_aqueue_conn *c = calloc(1, sizeof *c);
    if (c && !(c->nodes = calloc(nnodes, sizeof *c->nodes))) {
        free(c);
        c = NULL;
    }
    if (c) c->loop = loop;
    return c;
}

/* Hooks node `i`, whose connection was just set up, to the set. */
static void node_hook(bullc_aqueue_conn *c, size_t i) {
    bullc__aq_node *n = &c->nodes[i];
    n->owner = c;
    n->conn.on_ready = on_ready;
    n->conn.on_down = on_down;
    n->conn.on_closed = on_closed;
    n->conn.hook_data = n;
    c->open++;
}

static void conn_start(bullc_aqueue_conn *c) {
    for (size_t i = 0; i < c->nnodes; i++) bullc__aconn_start(&c->nodes[i].conn);
}

/* A set whose making failed part way, freed once its connections closed. */
static void free_when_closed(bullc_aqueue_conn *c, void *data) {
    (void)data;
    bullc_aqueue_conn_free(c);
}

int bullc__aqueue_conn_own(bullc_aqueue_conn **out, uv_loop_t *loop, const bullc_redis_opts *opts, const char *prefix,
                           const char *name, bullc_error *err) {
    bullc_aqueue_conn *c = conn_alloc(loop, 1);
    if (!c) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__aconn_init_queue(&c->nodes[0].conn, loop, opts, prefix, name, "", err);
    if (rc) {
        bullc_aqueue_conn_free(c);
        return rc;
    }
    c->nnodes = 1;
    node_hook(c, 0);
    conn_start(c);
    *out = c;
    return 0;
}

static void close_nodes(bullc_aqueue_conn *c) {
    c->nodes_closing = true;
    bullc__map_read_close(c->map_read); /* its close is counted as the nodes' */
    if (c->wait && c->wait->owner) bullc__aconn_close(&c->wait->conn);
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].owner) bullc__aconn_close(&c->nodes[i].conn); /* (the others were never set up) */
}

/* Puts `link` first in the users of `n`. */
static void link_to(bullc__aq_node *n, bullc__aq_link *link) {
    link->prev = NULL;
    link->next = n->users;
    if (n->users) n->users->prev = link;
    n->users = link;
}

/* The first slot of node `i`, for its reconnections' lookups. */
static int first_slot(const uint16_t *slot_node, size_t i) {
    for (int s = 0; s < NSLOTS; s++)
        if (slot_node[s] == i) return s;
    return -1;
}

/* Sets up (without starting) node i of `c` from the slot map: aimed at
 * master i, with the seeds kept so that a MOVED is followed and a lost
 * master looked up again, for a slot of this master's. */
static int node_init(bullc_aqueue_conn *c, size_t i, const bullc_redis_opts *o, const bullc_redis_opts *masters,
                     bullc_error *err) {
    bullc_redis_opts t = *o;
    if (masters) {
        t.host = masters[i].host;
        t.port = masters[i].port;
        t.cluster_slot = first_slot(c->slot_node, i);
        t.cluster_redirected = true; /* the first connect goes straight there */
    }
    int rc = bullc__aconn_init(&c->nodes[i].conn, c->loop, &t, NULL, err);
    if (!rc) node_hook(c, i);
    return rc;
}

static void map_in(int rc, const bullc_error *err, bullc_redis_opts *masters, size_t n, uint16_t *slot_node,
                   void *data);
static void map_closed(void *data);

/* A cluster whose seeds did not answer at _new: the handles wait on a
 * connection that is down with `why` until the map read on the loop is in. */
static int wait_for_map(bullc_aqueue_conn *c, const bullc_redis_opts *o, const bullc_error *why, bullc_error *err) {
    bullc__map_read_hooks h = {map_in, map_closed, c};
    if (!(c->wait = calloc(1, sizeof *c->wait)) || !(c->redis = calloc(1, sizeof *c->redis)) ||
        bullc__redis_opts_copy(c->redis, o))
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__aconn_init(&c->wait->conn, c->loop, o, NULL, err);
    if (rc) return rc;
    bullc__aq_node *w = c->wait;
    w->owner = c;
    w->conn.on_closed = on_closed;
    w->conn.hook_data = w;
    w->down = true;
    w->down_err = *why;
    c->open++;
    if (!(c->map_read = bullc__map_read_start(c->loop, o, &h))) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    c->open++;
    return 0;
}

/* A set whose making failed part way: freed at once, or once the
 * connections set up have closed their timers (the others count as closed
 * already). */
static int conn_failed(bullc_aqueue_conn *c, int rc) {
    if (!c->open) {
        bullc_aqueue_conn_free(c);
        return rc;
    }
    c->closing = true;
    c->close_cb = free_when_closed;
    close_nodes(c);
    return rc;
}

int bullc_aqueue_conn_new(bullc_aqueue_conn **out, uv_loop_t *loop, const bullc_redis_opts *redis, bullc_error *err) {
    if (!loop) return bullc__err(err, BULLC_EINVAL, "loop: NULL");
    bullc_redis_opts *ro = NULL;
    int rc = redis ? 0 : bullc__redis_opts_default(&ro, err);
    if (rc) return rc;
    const bullc_redis_opts *o = redis ? redis : ro;
    bullc_redis_opts *masters = NULL;
    size_t n = 1;
    uint16_t *slot_node = NULL;
    bullc_error why = {0};
    if (o->ncluster) {
        if (!(slot_node = malloc(NSLOTS * sizeof *slot_node)))
            rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
        else
            memset(slot_node, 0xFF, NSLOTS * sizeof *slot_node); /* NO_NODE */
        /* blocking, once, at creation; if no seed answers, the map is read
         * on the loop (wait_for_map), never by a blocking call there */
        if (!rc) rc = bullc__cluster_masters(o, &masters, &n, slot_node, &why);
        if (rc == BULLC_ECONN) n = 0;
        if (rc) rc = rc == BULLC_ECONN ? 0 : bullc__err(err, rc, "%s", why.message);
    }
    bullc_aqueue_conn *c = rc ? NULL : conn_alloc(loop, n ? n : 1);
    if (!rc && !c) rc = bullc__err(err, BULLC_ENOMEM, "out of memory");
    if (c && n) {
        c->slot_node = slot_node;
        slot_node = NULL;
        c->nnodes = n;
    }
    for (size_t i = 0; c && !rc && i < c->nnodes; i++) rc = node_init(c, i, o, masters, err);
    if (c && !rc && !n) rc = wait_for_map(c, o, &why, err);
    bullc__cluster_masters_free(masters, masters ? n : 0);
    bullc_redis_opts_free(ro);
    free(slot_node);
    if (rc) return c ? conn_failed(c, rc) : rc;
    conn_start(c);
    *out = c;
    return 0;
}

/* The slot map read on the loop came: the nodes are made and started, and
 * each waiting handle goes to its slot's (a round that failed is what the
 * waiting handles' calls fail with until then). */
static void map_in(int rc, const bullc_error *err, bullc_redis_opts *masters, size_t n, uint16_t *slot_node,
                   void *data) {
    bullc_aqueue_conn *c = data;
    if (rc) {
        c->wait->down_err = *err;
        return;
    }
    c->map_read = NULL; /* it closes by itself; map_closed still counts it */
    bullc__aq_node *nodes = calloc(n, sizeof *nodes);
    bullc_error e = {0};
    if (nodes) free(c->nodes); /* (none was set up in it) */
    for (size_t i = 0; nodes && i < n; i++) {
        c->nodes = nodes; /* node_init and node_hook index it */
        c->slot_node = slot_node;
        if (node_init(c, i, c->redis, masters, &e)) break;
        c->nnodes = i + 1;
    }
    bullc__cluster_masters_free(masters, n);
    if (!nodes || c->nnodes < n) {
        /* out of memory: the handles stay on the waiting node, down */
        for (size_t i = 0; i < c->nnodes; i++) bullc__aconn_close(&c->nodes[i].conn);
        c->nnodes = 0; /* (their close callbacks still count down `open`) */
        c->slot_node = NULL;
        free(slot_node);
        bullc__err(&c->wait->down_err, BULLC_ENOMEM, "out of memory");
        return;
    }
    for (bullc__aq_link *l = c->wait->users, *next; l; l = next) {
        next = l->next;
        const bullc__keys *k = bullc__aqueue_keys(l->q);
        int slot = bullc__cluster_key_slot(k->k[BULLC__K_BASE], sdslen(k->k[BULLC__K_BASE]));
        bullc__aq_node *to = &c->nodes[c->slot_node[slot] != NO_NODE ? c->slot_node[slot] : 0];
        link_to(to, l);
        bullc__aqueue_set_node(l->q, to);
    }
    c->wait->users = NULL;
    conn_start(c);
}

static void map_closed(void *data) {
    bullc_aqueue_conn *c = data;
    c->map_read = NULL;
    if (--c->open == 0 && c->close_cb) c->close_cb(c, c->close_data);
}

uv_loop_t *bullc__aqueue_conn_loop(const bullc_aqueue_conn *c) { return c->loop; }

int bullc__aqueue_conn_attach(bullc_aqueue_conn *c, bullc__aq_link *link, const char *prefix, const char *name,
                              bullc__aq_node **node, bullc_error *err) {
    if (c->closing) return bullc__err(err, BULLC_ECLOSED, "the connection set was closed");
    int slot = -1;
    int rc = bullc__cluster_slot_of(c->nodes[0].conn.opts, prefix, name, &slot, err);
    if (rc) return rc;
    size_t i = 0;
    /* a slot no master served when the map was read: any node, whose
     * connection follows the MOVED it gets */
    if (c->slot_node && slot >= 0 && c->slot_node[slot] != NO_NODE) i = c->slot_node[slot];
    bullc__aq_node *n = c->wait && !c->slot_node ? c->wait : &c->nodes[i];
    link_to(n, link);
    c->users++;
    *node = n;
    return 0;
}

void bullc__aqueue_conn_detach(bullc_aqueue_conn *c, bullc__aq_node *node, bullc__aq_link *link) {
    if (link->prev)
        link->prev->next = link->next;
    else
        node->users = link->next;
    if (link->next) link->next->prev = link->prev;
    link->prev = link->next = NULL;
    if (--c->users == 0 && c->closing && !c->nodes_closing) close_nodes(c);
}

void bullc_aqueue_conn_close(bullc_aqueue_conn *c, void (*cb)(bullc_aqueue_conn *conn, void *data), void *data) {
    if (c->closing) return;
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    if (!c->users) close_nodes(c); /* their close callbacks come from the loop */
}

void bullc_aqueue_conn_free(bullc_aqueue_conn *c) {
    if (!c) return;
    free(c->slot_node);
    free(c->nodes);
    free(c->wait);
    bullc_redis_opts_free(c->redis);
    free(c);
}
