/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int tu_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

int64_t tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *tu_redis_url(void) {
    const char *u = getenv("REDIS_URL");
    cr_assert(u && *u, "REDIS_URL is not set: run the tests through ctest (it starts redis-server)");
    return u;
}

const char *tu_prefix(void) {
    static char buf[64];
    static int n;
    snprintf(buf, sizeof buf, "bt%dx%d", (int)getpid(), ++n);
    return buf;
}

bullc_redis_opts *tu_redis_opts_url(const char *url) {
    bullc_redis_opts *o;
    cr_assert_eq(bullc_redis_opts_new(&o), 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_redis_opts_parse_url(o, url, &err), 0, "%s: %s", url, err.message);
    return o;
}

bullc_redis_opts *tu_redis_opts(void) { return tu_redis_opts_url(tu_redis_url()); }

int tu_redis_port(void) {
    bullc_redis_opts *o = tu_redis_opts();
    int port = bullc_redis_opts_port(o);
    bullc_redis_opts_free(o);
    return port;
}

redisContext *tu_redis(void) {
    bullc_redis_opts *o = tu_redis_opts();
    redisContext *c = redisConnect(bullc_redis_opts_host(o), bullc_redis_opts_port(o));
    bullc_redis_opts_free(o);
    cr_assert(c && !c->err, "cannot connect to the test Redis: %s", c ? c->errstr : "?");
    return c;
}

redisReply *tu_cmd(redisContext *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(r, "redis command failed: %s", c->errstr);
    return r;
}

/* Settings made by tu_*opts, freed when the test process exits: a test
 * that fails half-way frees them too. */
static struct {
    void *p;
    void (*free)(void *);
} owned_opts[256];
static int n_owned_opts;

static void free_owned_opts(void) {
    while (n_owned_opts > 0) {
        n_owned_opts--;
        owned_opts[n_owned_opts].free(owned_opts[n_owned_opts].p);
    }
}

static void *own_opts(int rc, void *p, void (*free_fn)(void *)) {
    cr_assert_eq(rc, 0, "out of memory");
    cr_assert_lt(n_owned_opts, 256);
    if (n_owned_opts == 0) atexit(free_owned_opts);
    owned_opts[n_owned_opts].p = p;
    owned_opts[n_owned_opts++].free = free_fn;
    return p;
}

static void free_wopts(void *p) { bullc_worker_opts_free(p); }
static void free_qopts(void *p) { bullc_queue_opts_free(p); }
static void free_eopts(void *p) { bullc_queue_events_opts_free(p); }

bullc_worker_opts *tu_wopts(void) {
    bullc_worker_opts *o = NULL;
    int rc = bullc_worker_opts_new(&o);
    return own_opts(rc, o, free_wopts);
}
bullc_queue_opts *tu_qopts(void) {
    bullc_queue_opts *o = NULL;
    int rc = bullc_queue_opts_new(&o);
    return own_opts(rc, o, free_qopts);
}
bullc_queue_events_opts *tu_eopts(void) {
    bullc_queue_events_opts *o = NULL;
    int rc = bullc_queue_events_opts_new(&o);
    return own_opts(rc, o, free_eopts);
}

bullc_job_opts *tu_job_opts(const char *opts_json) {
    if (!opts_json) return NULL;
    bullc_job_opts *o;
    cr_assert_eq(bullc_job_opts_new(&o), 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_merge_json(o, opts_json, &err), 0, "%s: %s", opts_json, err.message);
    return o;
}

char *tu_add(bullc_queue *q, const char *name, const char *data, const char *opts_json) {
    bullc_job_opts *o = tu_job_opts(opts_json);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, name, data, o, &id, &err), 0, "%s", err.message);
    bullc_job_opts_free(o);
    return id;
}

bullc_queue *tu_queue(const char *name, const char *prefix) {
    bullc_redis_opts *o = tu_redis_opts();
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_queue *q = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, name, qo, &err), 0, "%s", err.message);
    bullc_redis_opts_free(o);
    return q;
}

char *tu_hget(redisContext *c, const char *key, const char *field) {
    redisReply *r = tu_cmd(c, "HGET %s %s", key, field);
    char *s = r->type == REDIS_REPLY_STRING ? strndup(r->str, r->len) : NULL;
    freeReplyObject(r);
    return s;
}

const char *tu_bin(const char *name) {
    static char buf[4096];
    const char *d = getenv("BULLC_BIN_DIR");
    cr_assert(d, "BULLC_BIN_DIR is not set: run the tests through ctest");
    snprintf(buf, sizeof buf, "%s/%s", d, name);
    return buf;
}

int tu_run(const char *cmdline, char **out) {
    FILE *p = popen(cmdline, "r");
    cr_assert(p, "popen failed");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = 0;
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
