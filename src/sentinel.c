/* SPDX-License-Identifier: MIT */
/* Redis Sentinel: where the master is. Every connection asks here before it
 * connects (conn.c, aconn.c through the thread pool, the programs' own
 * through bullc_redis_opts_resolve), so discovery is written once. The
 * sentinels are asked in order, as ioredis does; the node they name is then
 * checked with ROLE by the connection itself, after AUTH, since a sentinel's
 * answer may be stale for a moment during a failover. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

enum { ASKED_DOWN, ASKED_UNKNOWN, ASKED_FOUND };

/* Asks one sentinel; ASKED_FOUND with host and port written into `o`. */
static int ask(bullc_redis_opts *o, const struct bullc__sentinel_addr *s, char *why, size_t size) {
    const char *a[3] = {"SENTINEL", "get-master-addr-by-name", o->sentinel_master};
    bullc__node_req q = {
        "sentinel", o->sentinel_tls, o->sentinel_user, o->sentinel_password, 3, a, " (a TLS port? --sentinel-tls)"};
    redisReply *r = bullc__node_ask(o, s, &q, why, size);
    int res = ASKED_DOWN;
    if (!r) return res;
    if (r->type == REDIS_REPLY_ERROR)
        bullc__note_reason(why, size, "sentinel %s:%d: %s%s", s->host, s->port, r->str,
                           strstr(r->str, "NOAUTH")
                               ? " (the sentinels' password: --sentinel-password or REDIS_SENTINEL_PASSWORD)"
                               : "");
    else if (r->type == REDIS_REPLY_NIL) {
        bullc__note_reason(why, size, "sentinel %s:%d knows no master named '%s'", s->host, s->port,
                           o->sentinel_master);
        res = ASKED_UNKNOWN;
    } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING) {
        int64_t port;
        char *host = strdup(r->element[0]->str);
        if (host && bullc__parse_i64(r->element[1]->str, r->element[1]->len, &port) && port > 0 && port <= 65535) {
            free(o->host);
            o->host = host;
            o->port = (int)port;
            res = ASKED_FOUND;
        } else {
            free(host);
            bullc__note_reason(why, size, "sentinel %s:%d: unexpected answer", s->host, s->port);
        }
    } else
        bullc__note_reason(why, size, "sentinel %s:%d: unexpected answer", s->host, s->port);
    freeReplyObject(r);
    return res;
}

int bullc__sentinel_resolve(bullc_redis_opts *o, bullc_error *err) {
    if (!o->nsentinels) return 0;
    if (!o->sentinel_master)
        return bullc__err(err, BULLC_EINVAL,
                          "Sentinel: no master name (redis+sentinel://.../MASTER or --sentinel-master)");
    char why[768] = "";
    bool unknown = false;
    o->sentinel_resolved = false;
    for (size_t i = 0; i < o->nsentinels; i++) {
        int res = ask(o, &o->sentinels[i], why, sizeof why);
        if (res == ASKED_FOUND) {
            o->sentinel_resolved = true;
            return 0;
        }
        unknown |= res == ASKED_UNKNOWN;
    }
    if (unknown)
        return bullc__err(err, BULLC_ECONN, "Sentinel: no sentinel knows a master named '%s' (%s)", o->sentinel_master,
                          why);
    return bullc__err(err, BULLC_ECONN, "Sentinel: no sentinel answered for master '%s' (%s)", o->sentinel_master, why);
}

bool bullc__sentinel_role_is_master(const redisReply *r, const bullc_redis_opts *o, bullc_error *err) {
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING &&
        !strcmp(r->element[0]->str, "master"))
        return true;
    const char *role = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING
                           ? r->element[0]->str
                       : r->type == REDIS_REPLY_ERROR ? r->str
                                                      : "?";
    bullc__err(err, BULLC_ECONN,
               "Sentinel: %s:%d, named master '%s' by a sentinel, is not a master (ROLE: %s); a failover may be "
               "under way",
               o->host, o->port, o->sentinel_master ? o->sentinel_master : "", role);
    return false;
}

int bullc_redis_opts_resolve(const bullc_redis_opts *opts, char *host, size_t host_size, int *port, bullc_error *err) {
    if (!opts || !host || !host_size || !port) return bullc__err(err, BULLC_EINVAL, "bullc_redis_opts_resolve: NULL");
    if (opts->unix_path) return bullc__err(err, BULLC_EINVAL, "a unix socket has no host and port");
    bullc_redis_opts t;
    if (bullc__redis_opts_copy(&t, opts)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = bullc__sentinel_resolve(&t, err);
    if (!rc && strlen(t.host) >= host_size) rc = bullc__err(err, BULLC_EINVAL, "host name longer than the buffer");
    if (!rc) {
        memcpy(host, t.host, strlen(t.host) + 1);
        *port = t.port;
    }
    bullc__redis_opts_clear(&t);
    return rc;
}
