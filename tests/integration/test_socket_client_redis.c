/* SPDX-License-Identifier: MIT */
/* bullc-socket-client when Redis fails: a restart mid-stream (kill -9, AOF
 * with appendfsync always), a Redis that is down while messages arrive (the
 * buffer, its overflow), and SIGTERM with messages still buffered. Each test
 * has its own redis-server on a free port, so the shared one never moves. */
#include "private_redis.h"
#include "test_socket_client_util.h"

static private_redis pr;
static char port_s[16];

static void setup(void) { pr_init(&pr, "--appendonly yes --appendfsync always"); }
static void teardown(void) {
    sct_kill_all();
    pr_stop(&pr);
}
TestSuite(socket_client_redis, .init = setup, .fini = teardown, .timeout = 60);

static sct_proc *provider(const char *count, const char *rate) {
    snprintf(port_s, sizeof port_s, "%d", tu_free_port());
    const char *args[] = {"--port", port_s, "--duration", "50", "--sent-log", sct_path("sent.log"), "--count", count,
                          "--rate", rate,   "--linger",   "-1", NULL};
    sct_proc *p = sct_spawn("bullc-fake-provider", "provider", args);
    cr_assert(sct_wait_for(p->out, "bullc-fake-provider listening", 1, 5000), "the provider did not start");
    return p;
}

static sct_proc *client(const char *prefix, const char *const *extra) {
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%s/", port_s);
    const char *args[48] = {
        "--url", url,        "--provider", "NAMED_POWERBALL",  "--subscribe", "{\"op\":\"subscribe\"}", "--redis",
        pr.url,  "--prefix", prefix,       "--stats-interval", "500ms"};
    int n = 12;
    for (int i = 0; extra[i]; i++) args[n++] = extra[i];
    args[n] = NULL;
    return sct_spawn("bullc-socket-client", "client", args);
}

/* Every job holds the next seq: nothing lost, nothing doubled, in order. */
static void assert_seqs(redisContext *c, const char *prefix, long long count) {
    size_t n;
    sct_job *jobs = sct_jobs(c, prefix, &n);
    cr_assert_eq((long long)n, count, "%lld jobs expected, %zu in Redis", count, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(sct_seq(&jobs[i]), (long long)i + 1, "job %lld: seq %lld, expected %zu", jobs[i].id,
                     sct_seq(&jobs[i]), i + 1);
    sct_jobs_free(jobs, n);
}

Test(socket_client_redis, restart_mid_stream_loses_and_doubles_nothing) {
    const char *p = tu_prefix();
    pr_up(&pr);
    sct_proc *fp = provider("300", "100");
    sct_proc *sc = client(p, (const char *const[]){NULL});
    redisContext *c = pr_connect(&pr);
    cr_assert(sct_wait_jobs(c, p, 60, 10000), "the stream did not start");
    redisFree(c);
    pr_kill(&pr);
    sct_sleep_ms(1500);
    cr_assert(sct_wait_for(sc->err, "redis_down", 1, 3000), "the outage is logged");
    pr_up(&pr);
    c = pr_connect(&pr);
    cr_assert(sct_wait_jobs(c, p, 300, 20000), "300 jobs expected after the restart, %lld",
              sct_llen(c, p, "test-queue"));
    sct_sleep_ms(300);
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    cr_assert_eq(sct_field(fp->out, "summary", "sent"), 300);
    assert_seqs(c, p, 300);
    cr_assert_eq(sct_field(sc->err, "exit code=", "added") + sct_field(sc->err, "exit code=", "deduplicated"), 300);
    cr_assert(sct_wait_for(sc->err, "redis_up", 1, 100), "the recovery is logged");
    cr_assert_eq(sct_count(sc->out, "bullc-socket-client connected"), 1, "the socket never noticed");
    redisFree(c);
}

Test(socket_client_redis, buffer_overflow_drops_new_messages_counted_and_logged) {
    const char *p = tu_prefix();
    /* Redis is down from the start: the client starts anyway */
    sct_proc *fp = provider("30", "1000");
    sct_proc *sc = client(p, (const char *const[]){"--buffer", "5", NULL});
    cr_assert(sct_wait_for(sct_path("sent.log"), "\"kind\"", 30, 10000));
    cr_assert(sct_wait_for(sc->err, "received=30", 1, 5000), "the client did not receive all 30");
    cr_assert(sct_wait_for(sc->err, "redis_down", 1, 100), "Redis down at start is logged");
    pr_up(&pr);
    redisContext *c = pr_connect(&pr);
    cr_assert(sct_wait_jobs(c, p, 5, 10000), "the 5 buffered messages must be added");
    sct_sleep_ms(300);
    cr_assert_eq(sct_stop(sc, SIGTERM, 10000), 0);
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    /* the oldest five made it (new messages are the ones dropped) */
    assert_seqs(c, p, 5);
    cr_assert_eq(sct_field(sc->err, "exit code=", "dropped_overflow"), 25);
    cr_assert_eq(sct_count(sc->err, "warn  overflow msg=\"buffer full"), 1, "the overflow is logged once");
    cr_assert_geq(sct_count(sc->err, "stats received="), 1, "periodic stats lines");
    redisFree(c);
}

Test(socket_client_redis, sigterm_flushes_the_buffer_then_exits_0) {
    const char *p = tu_prefix();
    sct_proc *fp = provider("20", "1000");
    sct_proc *sc = client(p, (const char *const[]){NULL});
    cr_assert(sct_wait_for(sc->err, "received=20", 1, 10000), "the client did not receive all 20");
    cr_assert_eq(sct_field(sc->err, "stats received=", "buffered"), 20);
    /* Redis comes back as the signal arrives: the flush adds everything */
    pr_up(&pr);
    int64_t t0 = tu_now_ms();
    cr_assert_eq(sct_stop(sc, SIGTERM, 12000), 0, "exit 0 once the buffer is in Redis");
    cr_assert_lt(tu_now_ms() - t0, 10000, "within --flush-timeout");
    redisContext *c = pr_connect(&pr);
    assert_seqs(c, p, 20);
    cr_assert_eq(sct_field(sc->err, "exit code=", "lost"), 0);
    cr_assert(sct_wait_for(fp->out, "closed conn=1", 1, 2000), "the client closed its socket");
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
    redisFree(c);
}

Test(socket_client_redis, flush_timeout_exits_4_and_counts_the_lost) {
    const char *p = tu_prefix();
    sct_proc *fp = provider("20", "1000");
    sct_proc *sc = client(p, (const char *const[]){"--flush-timeout", "1s", NULL});
    cr_assert(sct_wait_for(sc->err, "received=20", 1, 10000));
    int64_t t0 = tu_now_ms();
    cr_assert_eq(sct_stop(sc, SIGTERM, 8000), 4, "Redis never came back: exit 4");
    cr_assert_lt(tu_now_ms() - t0, 5000);
    cr_assert_eq(sct_field(sc->err, "exit code=", "lost"), 20);
    cr_assert(sct_wait_for(sc->err, "flush_abandoned", 1, 100));
    cr_assert_eq(sct_stop(fp, SIGTERM, 5000), 0);
}
