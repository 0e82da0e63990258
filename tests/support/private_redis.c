/* SPDX-License-Identifier: MIT */
#include "private_redis.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

/* Servers still running when the test's process exits normally (a failed
 * assertion skips the test's own pr_stop) are stopped then, with their
 * directories; PR_SET_PDEATHSIG covers the abnormal ends. Copies: the tests'
 * own structs may be on a stack long gone. */
static private_redis running[16];
static void stop_leftovers(void) {
    for (int i = 0; i < 16; i++)
        if (running[i].pid) pr_stop(&running[i]);
}

static void track(const private_redis *r) {
    static bool hooked;
    if (!hooked) {
        atexit(stop_leftovers);
        hooked = true;
    }
    int slot = -1;
    for (int i = 0; i < 16; i++) {
        if (running[i].port == r->port) slot = i;
        if (slot < 0 && !running[i].pid) slot = i;
    }
    if (slot >= 0) running[slot] = *r;
}

void pr_init(private_redis *r, const char *extra) {
    static int n;
    memset(r, 0, sizeof *r);
    /* A cluster node also listens on its port + 10000 (the cluster bus): a
     * free port above 55535 would leave it none, and the server would not
     * start. */
    bool cluster = extra && strstr(extra, "--cluster-enabled yes");
    do r->port = tu_free_port();
    while (cluster && r->port > 65535 - 10000);
    const char *tmp = getenv("BULLC_TEST_TMP");
    snprintf(r->dir, sizeof r->dir, "%s/pr-%d-%d", tmp ? tmp : "/tmp", (int)getpid(), ++n);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d", r->port);
    snprintf(r->extra, sizeof r->extra, "%s", extra ? extra : "");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", r->dir, r->dir);
    cr_assert_eq(tu_run(cmd, NULL), 0, "%s", cmd);
}

static bool answers(int port) {
    redisContext *c = redisConnect("127.0.0.1", port);
    bool ok = false;
    if (c && !c->err) {
        redisReply *rep = redisCommand(c, "PING");
        ok = rep && rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
    }
    redisFree(c);
    return ok;
}

void pr_up(private_redis *r) {
    char port[16], log[300], extra[512];
    snprintf(port, sizeof port, "%d", r->port);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    snprintf(extra, sizeof extra, "%s", r->extra);
    const char *argv[64] = {"redis-server", "--port", port, "--bind",    "127.0.0.1", "--dir",
                            r->dir,         "--save", "",   "--logfile", log};
    int n = 11;
    for (char *save, *a = strtok_r(extra, " ", &save); a && n < 63; a = strtok_r(NULL, " ", &save)) argv[n++] = a;
    argv[n] = NULL;
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0), dup2(null, 1);
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    r->pid = pid;
    track(r);
    for (int i = 0; i < 200; i++) {
        if (answers(r->port)) return;
        if (waitpid(pid, NULL, WNOHANG) == pid) break;
        struct timespec ts = {0, 25 * 1000000L};
        nanosleep(&ts, NULL);
    }
    pr_kill(r);
    cr_assert_fail("the private redis-server on port %d did not start (%s %s); see %s", r->port, "redis-server",
                   r->extra, log);
}

void pr_start(private_redis *r, const char *extra) {
    pr_init(r, extra);
    pr_up(r);
}

void pr_kill(private_redis *r) {
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    for (int i = 0; i < 16; i++)
        if (running[i].pid == r->pid) running[i].pid = 0;
    r->pid = 0;
}

void pr_stop(private_redis *r) {
    pr_kill(r);
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
