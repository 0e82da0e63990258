/* SPDX-License-Identifier: MIT */
/* A redis-server of a test's own, on a free port, for faults that must not
 * touch the shared one (restarts, REPLICAOF, maxmemory). */
#ifndef BULLC_PRIVATE_REDIS_H
#define BULLC_PRIVATE_REDIS_H

#include <hiredis.h>

typedef struct private_redis {
    int port;
    char dir[256];
    char url[64];
} private_redis;

/* Starts it with `extra` arguments (may be ""); the test fails if it cannot. */
void pr_start(private_redis *r, const char *extra);
/* kill -9 (as a crash), and a restart with the same data directory. */
void pr_kill(private_redis *r);
void pr_restart(private_redis *r, const char *extra);
void pr_stop(private_redis *r);
/* A direct connection for assertions and reconfiguration. */
redisContext *pr_connect(const private_redis *r);
/* Runs one command (formatted as redisCommand) and frees the reply; fails
 * the test on an error reply. */
void pr_cmd(const private_redis *r, const char *fmt, ...);

#endif
