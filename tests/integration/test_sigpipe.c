/* SPDX-License-Identifier: MIT */
/* A program that leaves SIGPIPE at its default action (death) embeds a
 * queue and a worker while the fault proxy resets their connections in the
 * middle of large writes: a write to a reset connection raises SIGPIPE
 * (hiredis writes with write()), and the library must neither die of it nor
 * change the process's disposition or signal mask to avoid it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "faultproxy.h"
#include "testutil.h"
#include "worker_harness.h"

static faultproxy *fp;
static char url[64];
static redisContext *rc;

static void setup(void) {
    /* the program under test: SIGPIPE kills it, as in any C program that did
     * not ask otherwise */
    signal(SIGPIPE, SIG_DFL);
    rc = tu_redis();
    bullc_redis_opts *ro = tu_redis_opts();
    fp = fp_start(bullc_redis_opts_port(ro));
    bullc_redis_opts_free(ro);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fp_port(fp));
}
static void teardown(void) {
    if (fp) fp_stop(fp);
    redisFree(rc);
}
TestSuite(sigpipe, .init = setup, .fini = teardown, .timeout = 120);

/* What the library must leave as it found it: the disposition, this
 * thread's mask, and no SIGPIPE waiting to be delivered later. */
static void assert_signals_untouched(void) {
    struct sigaction sa;
    sigaction(SIGPIPE, NULL, &sa);
    cr_assert_eq(sa.sa_handler, SIG_DFL, "the disposition of SIGPIPE was changed");
    sigset_t mask, pend;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    cr_assert(!sigismember(&mask, SIGPIPE), "SIGPIPE left blocked");
    sigpending(&pend);
    cr_assert(!sigismember(&pend, SIGPIPE), "a SIGPIPE left pending");
}

static char *big_json(size_t n) {
    char *s = malloc(n + 9);
    strcpy(s, "{\"s\":\"");
    memset(s + 6, 'x', n);
    strcpy(s + 6 + n, "\"}");
    return s;
}

/* A server on a unix socket that answers small commands with +OK and, once
 * a connection has sent more than any small command takes (1 MiB of a 4 MiB
 * request), closes in the middle of it: the client, still writing the rest
 * (the socket buffers far less than 3 MiB), gets EPIPE on its next write()
 * and with it a SIGPIPE, every time. What the connection has sent is
 * counted across reads, not judged by one read: a reader faster than the
 * writer takes a large request in pieces smaller than its buffer, and
 * answering each piece +OK let the add read a status where EXEC's array
 * belongs (a failure once in a few dozen runs under load). */
typedef struct closer {
    int fd;
    int rounds;
} closer;
static void *closer_loop(void *arg) {
    closer *c = arg;
    static char buf[1 << 16];
    for (int i = 0; i < c->rounds;) {
        int s = accept(c->fd, NULL, NULL);
        if (s < 0) break;
        ssize_t n;
        size_t total = 0;
        while ((n = read(s, buf, sizeof buf)) > 0 && (total += (size_t)n) < (1u << 20))
            if (n < (ssize_t)sizeof buf) (void)!send(s, "+OK\r\n", 5, MSG_NOSIGNAL);
        close(s);
        if (total >= (1u << 20)) i++; /* closed mid-request */
    }
    return NULL;
}

Test(sigpipe, sync_connection_survives_a_close_mid_write) {
    char path[108];
    snprintf(path, sizeof path, "/tmp/bullc-sigpipe-%d.sock", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 8), 0);
    enum { ROUNDS = 5 };
    closer c = {fd, ROUNDS};
    pthread_t t;
    pthread_create(&t, NULL, closer_loop, &c);

    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_set_unix(ro, path);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_redis_opts_free(ro);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    char *data = big_json(4u << 20); /* far more than the socket's buffer */
    for (int i = 0; i < ROUNDS; i++) {
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_add(q, "big", data, NULL, NULL, &err), BULLC_ECONN, "%s", err.message);
    }
    pthread_join(t, NULL);
    close(fd);
    unlink(path);
    free(data);
    bullc_queue_free(q);
    assert_signals_untouched();
}

Test(sigpipe, queue_reconnects_after_resets_mid_write) {
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_queue_opts_set_prefix(qo, tu_prefix());
    bullc_redis_opts_free(ro);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    char *data = big_json(4u << 20);
    int failed = 0;
    for (int i = 0; i < 20; i++) {
        bullc_error err = {0};
        fp_reset_all(fp); /* mid-write when the reset lands during the add */
        if (bullc_queue_add(q, "big", data, NULL, NULL, &err) < 0) failed++;
    }
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_add(q, "big", data, NULL, NULL, &err), 0, "%s", err.message);
    (void)failed;
    free(data);
    bullc_queue_free(q);
    assert_signals_untouched();
}

/* ---- the worker: large results written while the connection resets ---- */

typedef struct storm {
    wh *h;
    uv_timer_t t;
    int ticks;
    char *result;
} storm;

static void big_result(bullc_job *job, void *data) {
    storm *s = data;
    bullc_job_complete(job, s->result);
}

static void storm_tick(uv_timer_t *t) {
    storm *s = t->data;
    if (s->ticks++ < 200) { /* a reset every 5 ms for about a second */
        fp_reset_all(fp);
        return;
    }
    uv_close((uv_handle_t *)t, NULL);
}

Test(sigpipe, worker_survives_resets_mid_write_and_completes_every_job) {
    enum { N = 30 };
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p); /* straight to Redis */
    for (int i = 0; i < N; i++) cr_assert_geq(bullc_queue_add(q, "j", "{}", NULL, NULL, NULL), 0);
    bullc_queue_free(q);

    wh h;
    wh_init(&h);
    h.want = N;
    storm s = {&h, {0}, 0, big_json(2u << 20)};
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    bullc_worker_opts_set_processor(o, big_result, &s);
    bullc_worker_opts_set_concurrency(o, 4);
    wh_add_worker(&h, "q", o);
    uv_timer_init(&h.loop, &s.t);
    s.t.data = &s;
    uv_timer_start(&s.t, storm_tick, 5, 5);
    wh_run(&h, 60000);
    free(s.result);
    cr_assert_eq(h.completed, N, "completed %d of %d", h.completed, N);
    cr_assert_geq(h.errors, 1, "the resets were reported");
    redisReply *z = tu_cmd(rc, "ZCARD %s:q:completed", p);
    cr_assert_eq(z->integer, N);
    freeReplyObject(z);
    assert_signals_untouched();
}
