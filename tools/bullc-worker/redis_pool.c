/* SPDX-License-Identifier: MIT */
/* Synchronous Redis connections for the builtins that write to Redis
 * (game-data, notification). They run as blocking processors on libuv's
 * thread pool, where a plain blocking hiredis call is the simplest correct
 * thing: no callbacks to hand back to the loop, no locking around a shared
 * asynchronous context. Each call borrows an idle connection (or opens
 * one), so there are at most as many connections as jobs in process, and
 * gives it back; a broken connection is dropped, never reused.
 *
 * The settings are bullc-worker's own (--redis, REDIS_URL, ...), read
 * through bullc_redis_opts' getters, so the builtins talk to the server and
 * database the workers use; through Sentinel, each new connection asks
 * bullc_redis_opts_resolve where the master is, as the library's do. */
#include <errno.h>
#include <hiredis.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "bw.h"

struct bw_redis_pool {
    const bullc_redis_opts *opts; /* borrowed: bullc-worker's, for Sentinel */
    char *host, *unix_path, *user, *password;
    int port, db;
    struct timeval connect_tv, command_tv;
    pthread_mutex_t mu;
    redisContext **idle;
    size_t nidle, cap;
};

static struct timeval tv_ms(int ms) {
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

int bw_redis_pool_new(bw_redis_pool **out, const bullc_redis_opts *o) {
    bw_redis_pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->opts = o;
    p->host = dup_or_null(bullc_redis_opts_host(o));
    p->unix_path = dup_or_null(bullc_redis_opts_unix(o));
    p->user = dup_or_null(bullc_redis_opts_user(o));
    p->password = dup_or_null(bullc_redis_opts_password(o));
    p->port = bullc_redis_opts_port(o);
    p->db = bullc_redis_opts_db(o);
    p->connect_tv = tv_ms(bullc_redis_opts_connect_timeout(o));
    p->command_tv = tv_ms(bullc_redis_opts_command_timeout(o));
    if ((bullc_redis_opts_host(o) && !p->host) || (bullc_redis_opts_unix(o) && !p->unix_path) ||
        (bullc_redis_opts_user(o) && !p->user) || (bullc_redis_opts_password(o) && !p->password) ||
        pthread_mutex_init(&p->mu, NULL)) {
        free(p->host), free(p->unix_path), free(p->user), free(p->password), free(p);
        return -ENOMEM;
    }
    *out = p;
    return 0;
}

void bw_redis_pool_free(bw_redis_pool *p) {
    if (!p) return;
    for (size_t i = 0; i < p->nidle; i++) redisFree(p->idle[i]);
    free(p->idle);
    if (p->password) memset(p->password, 0, strlen(p->password));
    free(p->host), free(p->unix_path), free(p->user), free(p->password);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* A reply that is an error: its text into `why`, and true. */
static bool reply_error(redisReply *r, const char *what, char *why, size_t n) {
    if (r && r->type != REDIS_REPLY_ERROR) return false;
    snprintf(why, n, "%s: %s", what, r ? r->str : "no reply");
    return true;
}

/* Opens a connection and authenticates; NULL with `why` filled. */
static redisContext *open_conn(bw_redis_pool *p, char *why, size_t n) {
    char master[256];
    int master_port = 0;
    bool sentinel = bullc_redis_opts_sentinel_count(p->opts) > 0;
    if (sentinel) {
        bullc_error err = {0};
        if (bullc_redis_opts_resolve(p->opts, master, sizeof master, &master_port, &err)) {
            snprintf(why, n, "%s", err.message);
            return NULL;
        }
    }
    redisContext *c = p->unix_path ? redisConnectUnixWithTimeout(p->unix_path, p->connect_tv)
                      : sentinel   ? redisConnectWithTimeout(master, master_port, p->connect_tv)
                                   : redisConnectWithTimeout(p->host ? p->host : "127.0.0.1", p->port, p->connect_tv);
    if (!c || c->err) {
        snprintf(why, n, "cannot connect to Redis: %s", c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, p->command_tv);
    redisReply *r = NULL;
    if (p->password) {
        r = p->user ? redisCommand(c, "AUTH %s %s", p->user, p->password) : redisCommand(c, "AUTH %s", p->password);
        bool bad = reply_error(r, "Redis refused AUTH", why, n);
        if (!r) snprintf(why, n, "Redis AUTH: %s", c->errstr);
        freeReplyObject(r);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    if (sentinel) {
        /* a sentinel's answer may lag a failover: the node must say master */
        r = redisCommand(c, "ROLE");
        bool bad = !r || r->type != REDIS_REPLY_ARRAY || !r->elements || r->element[0]->type != REDIS_REPLY_STRING ||
                   strcmp(r->element[0]->str, "master") != 0;
        if (bad)
            snprintf(why, n, "Redis at %s:%d is not the master (yet): a failover may be under way", master,
                     master_port);
        freeReplyObject(r);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    if (p->db) {
        r = redisCommand(c, "SELECT %d", p->db);
        bool bad = reply_error(r, "Redis refused SELECT", why, n);
        if (!r) snprintf(why, n, "Redis SELECT: %s", c->errstr);
        freeReplyObject(r);
        if (bad) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static redisContext *take(bw_redis_pool *p, bool *reused) {
    redisContext *c = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->nidle) c = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    *reused = c != NULL;
    return c;
}

static void give_back(bw_redis_pool *p, redisContext *c) {
    pthread_mutex_lock(&p->mu);
    if (p->nidle == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        redisContext **n = realloc(p->idle, cap * sizeof *n);
        if (n) p->idle = n, p->cap = cap;
    }
    if (p->nidle < p->cap) {
        p->idle[p->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    redisFree(c); /* no room: close it rather than leak it */
}

redisReply *bw_redis_pool_command(bw_redis_pool *p, int argc, const char **argv, const size_t *lens, char *why,
                                  size_t n) {
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused;
        redisContext *c = take(p, &reused);
        if (!c && !(c = open_conn(p, why, n))) return NULL;
        redisReply *r = redisCommandArgv(c, argc, argv, lens);
        if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "READONLY", 8)) {
            /* demoted by a failover: the next connection finds the master */
            redisFree(c);
            return r;
        }
        if (r) {
            give_back(p, c);
            return r;
        }
        snprintf(why, n, "Redis: %s", c->errstr[0] ? c->errstr : "connection lost");
        redisFree(c);
        /* An idle connection may have died with a Redis restart: one more
         * try on a new one. A fresh connection that fails is the answer. */
        if (!reused) return NULL;
    }
    return NULL;
}
