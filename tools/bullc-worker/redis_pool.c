/* SPDX-License-Identifier: MIT */
/* Synchronous Redis connections for the builtins that write to Redis
 * (game-data, notification). They run as blocking processors on libuv's
 * thread pool, where a blocking call is the simplest correct thing: no
 * callbacks to hand back to the loop, no locking around a shared
 * asynchronous context. Each call borrows an idle connection (or opens
 * one), so there are at most as many connections as jobs in process, and
 * gives it back; a broken connection is dropped, never reused.
 *
 * The connections are the library's (bullc_redis_conn) made from
 * bullc-worker's own settings (--redis, REDIS_URL, ...), so the builtins
 * talk to the server and database the workers use, over TLS, through
 * Sentinel or on a Redis Cluster as the workers do. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

struct bw_redis_pool {
    const bullc_redis_opts *opts; /* borrowed: bullc-worker's; each new connection copies it */
    pthread_mutex_t mu;
    bullc_redis_conn **idle;
    size_t nidle, cap;
};

int bw_redis_pool_new(bw_redis_pool **out, const bullc_redis_opts *o) {
    bw_redis_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->opts = o;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

void bw_redis_pool_free(bw_redis_pool *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nidle; i++) bullc_redis_conn_free(p->idle[i]);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static bullc_redis_conn *take(bw_redis_pool *p, bool *reused) {
    bullc_redis_conn *c = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->nidle) c = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    *reused = c != NULL;
    return c;
}

static void give_back(bw_redis_pool *p, bullc_redis_conn *c) {
    pthread_mutex_lock(&p->mu);
    if (p->nidle == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        bullc_redis_conn **n = realloc(p->idle, cap * sizeof *n);
        if (n) p->idle = n, p->cap = cap;
    }
    if (p->nidle < p->cap) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    bullc_redis_conn_free(c); /* no room: close it rather than leak it */
}

bullc_redis_reply *bw_redis_pool_command(bw_redis_pool *p, int argc, const char **argv, const size_t *lens, char *why,
                                         size_t n) {
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused;
        bullc_error err = {0};
        bullc_redis_conn *c = take(p, &reused);
        if (!c && bullc_redis_conn_new(&c, p->opts, &err)) {
            snprintf(why, n, "%s", err.message);
            return NULL;
        }
        bullc_redis_reply *r = NULL;
        int rc = bullc_redis_conn_command(c, argc, argv, lens, &r, &err);
        if (!rc || (rc == BULLC_EREDIS && strncmp(err.message, "Redis error: READONLY", 21) != 0)) {
            give_back(p, c);
            if (rc) snprintf(why, n, "%s", err.message);
            return r;
        }
        /* Broken, timed out, refused, or READONLY (a replica now, after a
         * failover): this connection goes; the next one starts afresh. */
        snprintf(why, n, "%s", err.message);
        bullc_redis_conn_free(c);
        /* An idle connection may have died with a Redis restart: one more
         * try on a new one. A fresh connection that fails is the answer. */
        if (!reused || rc != BULLC_ECONN) return NULL;
    }
    return NULL;
}
