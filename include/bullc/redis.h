/* SPDX-License-Identifier: MIT */
/* Where Redis is and how to talk to it: URL, environment, timeouts. */
#ifndef BULLC_REDIS_H
#define BULLC_REDIS_H

#include <bullc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connection settings. Opaque; created with bullc_redis_opts_new and freed
 * with bullc_redis_opts_free. Objects that take one (queues, workers) copy
 * it, so it may be freed right after. Not thread-safe; use from one thread. */
typedef struct bullc_redis_opts bullc_redis_opts;

/* Creates settings for 127.0.0.1:6379, database 0, no password, connect
 * timeout 5000 ms, command timeout 10000 ms. Returns 0 or BULLC_ENOMEM. */
BULLC_EXPORT int bullc_redis_opts_new(bullc_redis_opts **out);

/* Frees the settings (the password is wiped). NULL is a no-op. */
BULLC_EXPORT void bullc_redis_opts_free(bullc_redis_opts *opts);

/* Applies a URL: redis://[[user]:password@]host[:port][/db] (also
 * `?db=N`), or unix:///path/to.sock[?db=N] (also `?password=`). Percent
 * escapes are decoded in user and password. On error returns BULLC_EINVAL,
 * leaves `opts` unchanged and fills `err` (the message masks the password). */
BULLC_EXPORT int bullc_redis_opts_parse_url(bullc_redis_opts *opts, const char *url, bullc_error *err);

/* Applies the environment: REDIS_URL when set; otherwise REDIS_HOST,
 * REDIS_PORT, REDIS_PASSWORD, REDIS_USERNAME and REDIS_DB, each when set.
 * In both cases also REDIS_CONNECT_TIMEOUT and REDIS_COMMAND_TIMEOUT
 * (milliseconds, as bullc_redis_opts_set_timeouts), each when set.
 * Returns 1 when the environment named a server (any variable but the
 * timeouts), 0 when not, BULLC_EINVAL when one is malformed (e.g.
 * REDIS_PORT=abc; `opts` is then unchanged). */
BULLC_EXPORT int bullc_redis_opts_from_env(bullc_redis_opts *opts, bullc_error *err);

/* Setters; a string is copied. Return 0, BULLC_EINVAL or BULLC_ENOMEM. */
BULLC_EXPORT int bullc_redis_opts_set_host(bullc_redis_opts *opts, const char *host, int port);
BULLC_EXPORT int bullc_redis_opts_set_unix(bullc_redis_opts *opts, const char *path);
BULLC_EXPORT int bullc_redis_opts_set_auth(bullc_redis_opts *opts, const char *user, const char *password);
BULLC_EXPORT int bullc_redis_opts_set_db(bullc_redis_opts *opts, int db);
/* Timeouts in milliseconds (> 0). A call made while Redis is down fails after
 * the connect timeout; a call Redis does not answer fails after the command
 * timeout; neither ever hangs. */
BULLC_EXPORT int bullc_redis_opts_set_timeouts(bullc_redis_opts *opts, int connect_ms, int command_ms);

/* Busy polling, for latency: after sending a request, wait for its reply
 * without sleeping for up to `us` microseconds before blocking in the kernel.
 * A Queue checks its socket in a loop; a Worker keeps its libuv loop polling
 * without a timeout (an idle handle) while one of its replies is due. Where
 * waking a sleeping thread is slow (virtual machines: tens of µs) this takes
 * that off every round trip, at the price of a busy CPU while waiting. 0 (the
 * default) never spins. Returns 0, or BULLC_EINVAL unless 0 <= us <= 100000. */
BULLC_EXPORT int bullc_redis_opts_set_busy_poll(bullc_redis_opts *opts, int us);

/* Getters. Strings are borrowed from `opts` (NULL when unset). */
BULLC_EXPORT const char *bullc_redis_opts_host(const bullc_redis_opts *opts);
BULLC_EXPORT int bullc_redis_opts_port(const bullc_redis_opts *opts);
BULLC_EXPORT const char *bullc_redis_opts_unix(const bullc_redis_opts *opts);
BULLC_EXPORT const char *bullc_redis_opts_user(const bullc_redis_opts *opts);
BULLC_EXPORT const char *bullc_redis_opts_password(const bullc_redis_opts *opts);
BULLC_EXPORT int bullc_redis_opts_db(const bullc_redis_opts *opts);
BULLC_EXPORT int bullc_redis_opts_connect_timeout(const bullc_redis_opts *opts);
BULLC_EXPORT int bullc_redis_opts_command_timeout(const bullc_redis_opts *opts);
BULLC_EXPORT int bullc_redis_opts_busy_poll(const bullc_redis_opts *opts);

/* Writes the settings as a URL with the password replaced by `***` into
 * `buf` (always NUL-terminated when size > 0); safe for logs. Returns `buf`. */
BULLC_EXPORT char *bullc_redis_opts_describe(const bullc_redis_opts *opts, char *buf, size_t size);

/* Replaces, in place, the password of a Redis URL (the userinfo's password,
 * or `password=` in the query) with `***` whatever its length, so that a
 * program can scrub its own argv after parsing and `ps` shows no secret
 * (nor its length). The text after it moves left and the bytes freed are
 * zeroed; a password shorter than 3 characters pushes the URL's last
 * characters out (the string never grows). Returns `url`. */
BULLC_EXPORT char *bullc_redis_url_mask(char *url);

#ifdef __cplusplus
}
#endif
#endif
