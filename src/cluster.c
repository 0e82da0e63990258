/* SPDX-License-Identifier: MIT */
/* Redis Cluster: which master serves a connection's slot. BullMQ keeps all
 * of a queue's keys in one slot (a hash tag), and its scripts touch only
 * that queue's keys, so each connection serves one slot: it is routed to
 * that slot's master before connecting (conn.c, aconn.c through the thread
 * pool), and follows MOVED afterwards. Written once, as Sentinel's lookup
 * is (sentinel.c), for every stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* CRC16-CCITT (XMODEM), the checksum Redis Cluster takes modulo 16384. */
static unsigned crc16(const char *buf, size_t len) {
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)buf[i] << 8;
        for (int b = 0; b < 8; b++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1;
        crc &= 0xffff;
    }
    return crc;
}

int bullc__cluster_key_slot(const char *key, size_t len) {
    /* the first {...} with something inside is what is hashed */
    const char *o = memchr(key, '{', len);
    if (o) {
        const char *c = memchr(o + 1, '}', len - (size_t)(o + 1 - key));
        if (c && c > o + 1) return (int)(crc16(o + 1, (size_t)(c - o - 1)) & 16383);
    }
    return (int)(crc16(key, len) & 16383);
}

static bool has_hash_tag(const char *s) {
    const char *o = strchr(s, '{');
    const char *c = o ? strchr(o + 1, '}') : NULL;
    return c && c > o + 1;
}

int bullc__cluster_queue_slot(const char *qualified, int *slot, bullc_error *err) {
    if (!has_hash_tag(qualified))
        return bullc__err(err, BULLC_EINVAL,
                          "Redis Cluster needs a hash-tagged prefix such as \"{bull}\" (or a queue name with one): "
                          "all of queue '%s''s keys must share a slot",
                          qualified);
    /* BullMQ's keys are <prefix>:<name>:<suffix>: the tag decides the slot */
    *slot = bullc__cluster_key_slot(qualified, strlen(qualified));
    return 0;
}

int bullc__cluster_slot_of(const bullc_redis_opts *o, const char *prefix, const char *name, int *slot,
                           bullc_error *err) {
    *slot = -1;
    if (!o || !o->ncluster) return 0;
    sds q = sdscatprintf(sdsempty(), "%s:%s", prefix, name);
    if (!q) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__cluster_queue_slot(q, slot, err);
    sdsfree(q);
    return rc;
}

int bullc__cluster_route(bullc_redis_opts *o, const char *prefix, const char *name, bullc_error *err) {
    int slot, rc = bullc__cluster_slot_of(o, prefix, name, &slot, err);
    if (!rc && o->ncluster) o->cluster_slot = slot;
    return rc;
}

/* The master of one CLUSTER SLOTS entry, [start, end, [host, port, id...],
 * replicas...]: its [host, port, id...], or NULL when malformed. */
static const redisReply *entry_master(const redisReply *e) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
        e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY ||
        e->element[2]->elements < 2 || e->element[2]->element[0]->type != REDIS_REPLY_STRING ||
        e->element[2]->element[1]->type != REDIS_REPLY_INTEGER)
        return NULL;
    return e->element[2];
}

/* The master of `slot` (any master for -1) in a CLUSTER SLOTS reply; an
 * empty host in it means the node asked. */
static const redisReply *slot_master(const redisReply *r, int slot) {
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        const redisReply *e = r->element[i], *m = entry_master(e);
        if (m && (slot < 0 || (slot >= e->element[0]->integer && slot <= e->element[1]->integer))) return m;
    }
    return NULL;
}

/* Asks one seed for the slot map: its CLUSTER SLOTS reply (an array), or
 * NULL with what went wrong noted in `why`. */
static redisReply *slots_of(const bullc_redis_opts *o, const struct bullc__sentinel_addr *s, char *why, size_t size) {
    const char *a[2] = {"CLUSTER", "SLOTS"};
    /* the seeds speak TLS when the masters do: one cluster, one setting */
    bullc__node_req q = {"node", o->tls, o->user, o->password, 2, a, " (a TLS port? use rediss+cluster://)"};
    redisReply *r = bullc__node_ask(o, s, &q, why, size);
    if (r && !bullc__cluster_slots_ok(r, s, why, size)) {
        freeReplyObject(r);
        r = NULL;
    }
    return r;
}

bool bullc__cluster_slots_ok(const redisReply *r, const struct bullc__sentinel_addr *s, char *why, size_t size) {
    if (r->type == REDIS_REPLY_ERROR)
        bullc__note_reason(why, size, "node %s:%d: %s%s", s->host, s->port, r->str,
                           strstr(r->str, "cluster support disabled") ? " (not a cluster: use redis://)" : "");
    else if (r->type != REDIS_REPLY_ARRAY)
        bullc__note_reason(why, size, "node %s:%d: unexpected answer", s->host, s->port);
    return r->type == REDIS_REPLY_ARRAY;
}

/* A node named in a slot map entry ([host, port, id...]): its host (an
 * empty one is the seed asked) into *host, newly allocated; false when the
 * entry is unusable or out of memory. */
static bool node_addr(const redisReply *m, const struct bullc__sentinel_addr *seed, char **host, int *port) {
    if (m->element[1]->integer <= 0 || m->element[1]->integer > 65535) return false;
    *host = strdup(m->element[0]->len ? m->element[0]->str : seed->host);
    *port = (int)m->element[1]->integer;
    return *host != NULL;
}

/* Asks one seed where o->cluster_slot is served; true with host and port in `o`. */
static bool ask(bullc_redis_opts *o, const struct bullc__sentinel_addr *s, char *why, size_t size) {
    redisReply *r = slots_of(o, s, why, size);
    const redisReply *m = r ? slot_master(r, o->cluster_slot) : NULL;
    char *h = NULL;
    int port = 0;
    bool found = false;
    if (r && !m)
        bullc__note_reason(why, size, "node %s:%d: no master serves slot %d (the cluster is down or not set up)",
                           s->host, s->port, o->cluster_slot);
    else if (m && !node_addr(m, s, &h, &port))
        bullc__note_reason(why, size, "node %s:%d: unexpected answer", s->host, s->port);
    else if (m) {
        free(o->host);
        o->host = h;
        o->port = port;
        found = true;
    }
    freeReplyObject(r);
    return found;
}

int bullc__cluster_resolve(bullc_redis_opts *o, bullc_error *err) {
    if (!o->ncluster) return 0;
    if (o->cluster_redirected) {
        /* a MOVED named the node; if it cannot be reached, ask next time */
        o->cluster_redirected = false;
        return 0;
    }
    char why[768] = "";
    for (size_t i = 0; i < o->ncluster; i++)
        if (ask(o, &o->cluster_nodes[i], why, sizeof why)) return 0;
    return bullc__err(err, BULLC_ECONN, "Redis Cluster: no seed node gave the master of slot %d (%s)", o->cluster_slot,
                      why);
}

/* Appends a copy of `o` aimed at host:port alone (no seed nodes: a plain
 * connection to that node), unless one for that node is there already;
 * its index into *at. */
static int add_node(bullc_redis_opts **nodes, size_t *n, const bullc_redis_opts *o, char *host, int port, size_t *at) {
    for (size_t i = 0; i < *n; i++)
        if ((*nodes)[i].port == port && !strcmp((*nodes)[i].host, host)) {
            free(host);
            *at = i;
            return 0;
        }
    *at = *n;
    bullc_redis_opts *more = realloc(*nodes, sizeof **nodes * (*n + 1));
    if (!more) {
        free(host);
        return BULLC_ENOMEM;
    }
    *nodes = more;
    bullc_redis_opts t = *o;
    t.cluster_nodes = NULL;
    t.ncluster = 0;
    t.cluster_slot = -1;
    t.cluster_redirected = false;
    int rc = bullc__redis_opts_copy(&more[*n], &t);
    if (!rc) {
        free(more[*n].host);
        more[*n].host = host;
        more[*n].port = port;
        (*n)++;
    } else {
        free(host);
    }
    return rc;
}

int bullc__cluster_masters(const bullc_redis_opts *o, bullc_redis_opts **out, size_t *nout, uint16_t *slot_node,
                           bullc_error *err) {
    *out = NULL;
    *nout = 0;
    if (!o->ncluster) {
        bullc_redis_opts *one = malloc(sizeof *one);
        if (!one || bullc__redis_opts_copy(one, o)) {
            free(one);
            return bullc__err(err, BULLC_ENOMEM, "out of memory");
        }
        *out = one;
        *nout = 1;
        return 0;
    }
    char why[768] = "";
    for (size_t i = 0; i < o->ncluster; i++) {
        redisReply *r = slots_of(o, &o->cluster_nodes[i], why, sizeof why);
        int rc =
            r ? bullc__cluster_map(o, &o->cluster_nodes[i], r, out, nout, slot_node, why, sizeof why) : BULLC_ECONN;
        freeReplyObject(r);
        if (rc == BULLC_ENOMEM) return bullc__err(err, rc, "out of memory");
        if (!rc) return 0;
    }
    return bullc__err(err, BULLC_ECONN, "Redis Cluster: no seed node gave the slot map (%s)", why);
}

int bullc__cluster_map(const bullc_redis_opts *o, const struct bullc__sentinel_addr *seed, const redisReply *r,
                       bullc_redis_opts **out, size_t *nout, uint16_t *slot_node, char *why, size_t size) {
    *out = NULL;
    *nout = 0;
    int rc = 0;
    for (size_t k = 0; k < r->elements && !rc; k++) {
        const redisReply *m = entry_master(r->element[k]);
        char *h;
        int port;
        size_t at;
        if (!m || !node_addr(m, seed, &h, &port) || (rc = add_node(out, nout, o, h, port, &at))) continue;
        const redisReply *e = r->element[k];
        for (long long sl = e->element[0]->integer; slot_node && sl <= e->element[1]->integer && sl < 16384; sl++)
            if (sl >= 0) slot_node[sl] = (uint16_t)at;
    }
    if (!rc && *nout) return 0;
    bullc__cluster_masters_free(*out, *nout);
    *out = NULL;
    *nout = 0;
    if (rc) return rc;
    bullc__note_reason(why, size, "node %s:%d: no master serves a slot", seed->host, seed->port);
    return BULLC_ECONN;
}

void bullc__cluster_masters_free(bullc_redis_opts *nodes, size_t n) {
    for (size_t i = 0; i < n; i++) bullc__redis_opts_clear(&nodes[i]);
    free(nodes);
}

int bullc__cluster_reply_kind(const redisReply *r) {
    if (!r || r->type != REDIS_REPLY_ERROR || !r->str) return BULLC__CLUSTER_NONE;
    if (!strncmp(r->str, "MOVED ", 6)) return BULLC__CLUSTER_MOVED;
    if (!strncmp(r->str, "ASK ", 4) || !strncmp(r->str, "TRYAGAIN", 8) || !strncmp(r->str, "CLUSTERDOWN", 11))
        return BULLC__CLUSTER_RETRY;
    return BULLC__CLUSTER_NONE;
}

bool bullc__cluster_moved(const redisReply *r, int *slot, char **host, int *port) {
    /* MOVED <slot> <host>:<port> (an empty host: the node that answered) */
    char *end;
    long sl = strtol(r->str + 6, &end, 10);
    const char *addr = *end == ' ' ? end + 1 : NULL, *colon = addr ? strrchr(addr, ':') : NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!colon || *end || p <= 0 || p > 65535 || sl < 0 || sl > 16383) return false;
    *host = NULL;
    if (colon > addr) {
        size_t hl = (size_t)(colon - addr);
        if (*addr == '[' && colon[-1] == ']') addr++, hl -= 2;
        if (!(*host = strndup(addr, hl))) return false;
    }
    *slot = (int)sl;
    *port = (int)p;
    return true;
}

int bullc__cluster_redirect(bullc_redis_opts *o, const redisReply *r) {
    int kind = o->ncluster ? bullc__cluster_reply_kind(r) : BULLC__CLUSTER_NONE;
    if (kind != BULLC__CLUSTER_MOVED) return kind;
    int slot, port;
    char *h;
    if (!bullc__cluster_moved(r, &slot, &h, &port)) return BULLC__CLUSTER_RETRY;
    if (h) {
        free(o->host);
        o->host = h;
    }
    o->port = port;
    o->cluster_slot = slot;
    o->cluster_redirected = true;
    return BULLC__CLUSTER_MOVED;
}
