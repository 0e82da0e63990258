/* SPDX-License-Identifier: MIT */
/* A redis-server of a test's own, on a free port, for faults that must not
 * touch the shared one (restarts, REPLICAOF, maxmemory). It runs as a child
 * of the test's process, not daemonized, and dies with it
 * (PR_SET_PDEATHSIG): a test that fails, crashes or is killed at its timeout
 * leaves no server behind. The kernel ties that signal to the thread that
 * started the server: start it from the test's own thread. */
#ifndef BULLC_PRIVATE_REDIS_H
#define BULLC_PRIVATE_REDIS_H

#include <hiredis.h>
#include <sys/types.h>

typedef struct private_redis {
    int port;
    pid_t pid; /* 0 while it is down */
    char dir[256];
    char url[64];
    char extra[512];
} private_redis;

/* Picks a free port and an empty data directory, and keeps `extra`
 * (redis-server arguments separated by spaces, may be NULL); starts nothing. */
void pr_init(private_redis *r, const char *extra);
/* Starts it on its port and directory (again, after pr_kill, with the data
 * the directory kept); the test fails if it does not answer PING. */
void pr_up(private_redis *r);
/* pr_init and pr_up. */
void pr_start(private_redis *r, const char *extra);
/* kill -9 (as a crash), waiting until it is gone; the directory stays. */
void pr_kill(private_redis *r);
/* pr_kill, and the directory removed. */
void pr_stop(private_redis *r);
/* A direct connection for assertions and reconfiguration. */
redisContext *pr_connect(const private_redis *r);
/* Runs one command (formatted as redisCommand) and frees the reply; fails
 * the test on an error reply. */
void pr_cmd(const private_redis *r, const char *fmt, ...);

#endif
