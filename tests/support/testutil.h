/* SPDX-License-Identifier: MIT */
/* Helpers shared by the Criterion tests. */
#ifndef BULLC_TESTUTIL_H
#define BULLC_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <bullc/bullc.h>
#include <hiredis.h>

/* The tests' Redis URL (REDIS_URL set by CTest); fails the test when unset. */
const char *tu_redis_url(void);
/* The port of the tests' Redis. */
int tu_redis_port(void);
/* A unique prefix per call ("bt<pid>x<n>"), so tests never share keys. */
const char *tu_prefix(void);
/* A direct hiredis connection to the tests' Redis, for assertions. */
redisContext *tu_redis(void);
/* Runs a command and returns the reply (the test fails on a NULL reply). */
redisReply *tu_cmd(redisContext *c, const char *fmt, ...);
/* Default settings (as bullc_*_opts_new gives them), freed when the test
 * process exits. */
bullc_worker_opts *tu_wopts(void);
bullc_queue_opts *tu_qopts(void);
bullc_queue_events_opts *tu_eopts(void);
/* Redis settings for the tests' Redis, or for the Redis at `url`; the
 * caller frees them. The test fails when the URL is refused. */
bullc_redis_opts *tu_redis_opts(void);
bullc_redis_opts *tu_redis_opts_url(const char *url);
/* Job options from a JSON object of Node's JobsOptions (NULL: NULL); the
 * caller frees them. The test fails when the JSON is refused. */
bullc_job_opts *tu_job_opts(const char *opts_json);
/* bullc_queue_add with tu_job_opts(opts_json); returns the id (bullc_free
 * it). The test fails on an error. */
char *tu_add(bullc_queue *q, const char *name, const char *data, const char *opts_json);
/* A queue handle on the tests' Redis with `prefix`. */
bullc_queue *tu_queue(const char *name, const char *prefix);
/* HGET as a malloc'd string, NULL when missing. */
char *tu_hget(redisContext *c, const char *key, const char *field);
/* Path of a program built into build/bin. */
const char *tu_bin(const char *name);
/* A TCP port free on 127.0.0.1 right now. */
int tu_free_port(void);
/* Monotonic milliseconds. */
int64_t tu_now_ms(void);
/* Runs a shell command line, captures stdout (malloc'd) and returns the exit code. */
int tu_run(const char *cmdline, char **out);

#endif
