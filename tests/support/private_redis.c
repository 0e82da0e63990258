/* SPDX-License-Identifier: MIT */
#include "private_redis.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static void launch(private_redis *r, const char *extra) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "redis-server --port %d --bind 127.0.0.1 --dir %s --save '' --daemonize yes --pidfile %s/redis.pid "
             "--logfile %s/redis.log %s && "
             "for i in $(seq 1 100); do redis-cli -p %d ping 2>/dev/null | grep -q PONG && exit 0; sleep 0.05; done; "
             "exit 1",
             r->port, r->dir, r->dir, r->dir, extra ? extra : "", r->port);
    cr_assert_eq(tu_run(cmd, NULL), 0, "cannot start a private redis-server: %s", cmd);
}

/* Servers still running when the test process exits (a failed assertion
 * skips the test's own pr_stop) are killed then, so none is left behind. */
static private_redis running[16]; /* copies: the tests' own may be on a stack long gone */
static void kill_leftovers(void) {
    for (int i = 0; i < 16; i++)
        if (running[i].port) pr_stop(&running[i]);
}

void pr_start(private_redis *r, const char *extra) {
    static int n;
    static bool hooked;
    if (!hooked) {
        atexit(kill_leftovers);
        hooked = true;
    }
    int slot = -1;
    for (int i = 0; i < 16 && slot < 0; i++)
        if (!running[i].port) slot = i;
    /* A cluster node also listens on its port + 10000 (the cluster bus): a
     * free port above 55535 would leave it none, and the server would not
     * start. */
    bool cluster = extra && strstr(extra, "--cluster-enabled yes");
    do r->port = tu_free_port();
    while (cluster && r->port > 65535 - 10000);
    const char *tmp = getenv("BULLC_TEST_TMP");
    snprintf(r->dir, sizeof r->dir, "%s/pr-%d-%d", tmp ? tmp : "/tmp", (int)getpid(), ++n);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", r->dir, r->dir);
    tu_run(cmd, NULL);
    launch(r, extra);
    if (slot >= 0) running[slot] = *r;
}

void pr_kill(private_redis *r) {
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "pid=$(cat %s/redis.pid 2>/dev/null) && kill -9 $pid; "
             "for i in $(seq 1 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done; rm -f %s/redis.pid",
             r->dir, r->dir);
    tu_run(cmd, NULL);
}

void pr_restart(private_redis *r, const char *extra) { launch(r, extra); }

void pr_stop(private_redis *r) {
    int port = r->port;
    pr_kill(r);
    for (int i = 0; i < 16; i++)
        if (running[i].port == port) running[i].port = 0;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r->dir);
    tu_run(cmd, NULL);
}

redisContext *pr_connect(const private_redis *r) {
    redisContext *c = redisConnect("127.0.0.1", r->port);
    cr_assert(c && !c->err, "cannot connect to the private redis");
    return c;
}

void pr_cmd(const private_redis *r, const char *fmt, ...) {
    redisContext *c = pr_connect(r);
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert(rep && rep->type != REDIS_REPLY_ERROR, "%s: %s", fmt, rep ? rep->str : c->errstr);
    freeReplyObject(rep);
    redisFree(c);
}
