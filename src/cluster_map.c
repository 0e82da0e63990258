/* SPDX-License-Identifier: MIT */
/* Redis Cluster's slot map read on the loop, for what shares one connection
 * per master there (a worker group, a bullc_aqueue_conn whose first read
 * failed): CLUSTER SLOTS over an asynchronous connection to one seed at a
 * time, its reply parsed by cluster.c as the blocking read's is. A seed that
 * cannot be reached, is slow (paused) or answers no map is left for the
 * next; a round with none is reported and tried again after the
 * reconnections' backoff (backoff.c). */
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

#define NSLOTS 16384

struct bullc__map_read {
    uv_loop_t *loop;
    bullc_redis_opts *opts; /* a copy: the seeds, and TLS and AUTH for them */
    bullc__map_read_hooks h;
    bullc__aconn conn; /* to seed `seed` during an attempt */
    bool conn_open;    /* conn was set up and has not closed yet */
    bool conn_closing;
    bool attempt_over; /* this seed failed: its connection goes, then the next is asked */
    bool asked;        /* CLUSTER SLOTS was sent on conn */
    size_t seed;       /* the seed asked now */
    size_t tried;      /* seeds asked this round */
    unsigned rounds;   /* failed rounds in a row, for the backoff */
    char why[768];     /* what each seed answered this round */
    uv_timer_t timer;  /* an attempt's deadline, the backoff, and deferred steps */
    bool done;         /* the map came, or it was closed: winding down */
    bool timer_closing;
};

static void timer_cb(uv_timer_t *t);

static void timer_closed(uv_handle_t *h) {
    bullc__map_read *m = h->data;
    if (m->h.on_closed) m->h.on_closed(m->h.data);
    bullc_redis_opts_free(m->opts);
    free(m);
}

/* Closes the connection, then the timer (the connection's close callback
 * comes back here). */
static void wind_down(bullc__map_read *m) {
    if (m->conn_open) {
        if (!m->conn_closing) {
            m->conn_closing = true;
            bullc__aconn_close(&m->conn);
        }
        return;
    }
    if (!m->timer_closing) {
        m->timer_closing = true;
        uv_close((uv_handle_t *)&m->timer, timer_closed);
    }
}

/* The seed asked now failed: its connection is dropped from the loop (not
 * inside one of its own callbacks), and the next is asked. */
static void seed_failed(bullc__map_read *m) {
    if (m->attempt_over || m->done) return;
    m->attempt_over = true;
    uv_timer_start(&m->timer, timer_cb, 0, 0);
}

static void slots_reply(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data) {
    bullc__map_read *m = data;
    const struct bullc__sentinel_addr *s = &m->opts->cluster_nodes[m->seed];
    (void)c;
    if (m->done || m->attempt_over) return;
    if (!r) {
        bullc__note_reason(m->why, sizeof m->why, "node %s:%d: %s", s->host, s->port, err->message);
        seed_failed(m);
        return;
    }
    if (!bullc__cluster_slots_ok(r, s, m->why, sizeof m->why)) {
        seed_failed(m);
        return;
    }
    uint16_t *slot_node = malloc(NSLOTS * sizeof *slot_node);
    bullc_redis_opts *masters = NULL;
    size_t n = 0;
    int rc = slot_node ? 0 : BULLC_ENOMEM;
    if (slot_node) memset(slot_node, 0xFF, NSLOTS * sizeof *slot_node); /* no master */
    if (!rc) rc = bullc__cluster_map(m->opts, s, r, &masters, &n, slot_node, m->why, sizeof m->why);
    if (rc == BULLC_ENOMEM) bullc__note_reason(m->why, sizeof m->why, "out of memory");
    if (rc) {
        free(slot_node);
        seed_failed(m);
        return;
    }
    m->done = true;
    uv_timer_start(&m->timer, timer_cb, 0, 0); /* its connection goes, from the loop */
    m->h.on_map(0, NULL, masters, n, slot_node, m->h.data);
}

static void seed_ready(bullc__aconn *c, void *data) {
    bullc__map_read *m = data;
    if (m->asked || m->done || m->attempt_over) return;
    const char *argv[] = {"CLUSTER", "SLOTS"};
    m->asked = true;
    if (bullc__aconn_cmd(c, 0, slots_reply, m, 2, argv, NULL)) seed_failed(m);
}

static void seed_down(bullc__aconn *c, const bullc_error *err, void *data) {
    bullc__map_read *m = data;
    const struct bullc__sentinel_addr *s = &m->opts->cluster_nodes[m->seed];
    (void)c;
    if (m->done || m->attempt_over) return;
    bullc__note_reason(m->why, sizeof m->why, "node %s:%d: %s", s->host, s->port, err->message);
    seed_failed(m);
}

static void seed_closed(bullc__aconn *c, void *data) {
    bullc__map_read *m = data;
    (void)c;
    m->conn_open = m->conn_closing = false;
    if (m->done) {
        wind_down(m);
        return;
    }
    m->seed = (m->seed + 1) % m->opts->ncluster;
    if (++m->tried < m->opts->ncluster) {
        uv_timer_start(&m->timer, timer_cb, 0, 0);
        return;
    }
    /* a round without a map: said, and asked again after a pause */
    bullc_error err;
    bullc__err(&err, BULLC_ECONN, "Redis Cluster: no seed node gave the slot map (%s)", m->why);
    m->why[0] = '\0';
    m->tried = 0;
    /* the reconnections' backoff: a cluster down is asked as a lost node is */
    uint64_t delay = bullc__retry_delay_ms(++m->rounds, BULLC__RECONNECT_BASE_MS, BULLC__RECONNECT_CAP_MS);
    uv_timer_start(&m->timer, timer_cb, delay, 0);
    m->h.on_map(err.code, &err, NULL, 0, NULL, m->h.data); /* may close it */
}

/* Asks seed `seed`: a plain connection to it (no lookup: it is the node),
 * with a deadline of its own for a seed that accepts and never answers. */
static void attempt(bullc__map_read *m) {
    const struct bullc__sentinel_addr *s = &m->opts->cluster_nodes[m->seed];
    bullc_redis_opts t = *m->opts;
    t.cluster_nodes = NULL;
    t.ncluster = 0;
    t.cluster_slot = -1;
    t.cluster_redirected = false;
    t.host = s->host;
    t.port = s->port;
    bullc_error err = {0};
    m->attempt_over = m->asked = false;
    if (bullc__aconn_init(&m->conn, m->loop, &t, NULL, &err)) {
        bullc__note_reason(m->why, sizeof m->why, "node %s:%d: %s", s->host, s->port, err.message);
        /* nothing to close: straight on to the next seed */
        m->conn_open = true;
        seed_closed(&m->conn, m);
        return;
    }
    m->conn.on_ready = seed_ready;
    m->conn.on_down = seed_down;
    m->conn.on_closed = seed_closed;
    m->conn.hook_data = m;
    m->conn_open = true;
    bullc__aconn_start(&m->conn);
    uv_timer_start(&m->timer, timer_cb, (uint64_t)t.connect_timeout_ms + (uint64_t)t.command_timeout_ms + 100, 0);
}

static void timer_cb(uv_timer_t *t) {
    bullc__map_read *m = t->data;
    if (m->done) {
        wind_down(m);
        return;
    }
    if (!m->conn_open) {
        attempt(m);
        return;
    }
    if (!m->attempt_over) {
        const struct bullc__sentinel_addr *s = &m->opts->cluster_nodes[m->seed];
        bullc__note_reason(m->why, sizeof m->why, "node %s:%d: no slot map within %d ms", s->host, s->port,
                           m->opts->connect_timeout_ms + m->opts->command_timeout_ms);
        m->attempt_over = true;
    }
    if (!m->conn_closing) {
        m->conn_closing = true;
        bullc__aconn_close(&m->conn);
    }
}

bullc__map_read *bullc__map_read_start(uv_loop_t *loop, const bullc_redis_opts *o, const bullc__map_read_hooks *h) {
    bullc__map_read *m = o->ncluster ? calloc(1, sizeof *m) : NULL;
    if (!m) return NULL;
    if (!(m->opts = calloc(1, sizeof *m->opts)) || bullc__redis_opts_copy(m->opts, o)) {
        bullc_redis_opts_free(m->opts);
        free(m);
        return NULL;
    }
    m->loop = loop;
    m->h = *h;
    uv_timer_init(loop, &m->timer);
    m->timer.data = m;
    uv_timer_start(&m->timer, timer_cb, 0, 0); /* from the loop: no hook inside this call */
    return m;
}

void bullc__map_read_close(bullc__map_read *m) {
    if (!m || m->done) return;
    m->done = true;
    uv_timer_start(&m->timer, timer_cb, 0, 0);
}
