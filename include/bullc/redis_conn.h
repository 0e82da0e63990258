/* SPDX-License-Identifier: MIT */
/* Any Redis command on the library's own synchronous connection: TLS,
 * Sentinel and Cluster as every bullc handle has them, for programs that
 * write keys of their own next to their queues. */
#ifndef BULLC_REDIS_CONN_H
#define BULLC_REDIS_CONN_H

#include <stdbool.h>

#include <bullc/common.h>
#include <bullc/redis.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A synchronous connection. Opaque. It connects at its first command, and
 * again after a failure, with everything the settings say: TLS, AUTH,
 * SELECT; through Sentinel it asks the sentinels where the master is and
 * checks its ROLE, and a READONLY reply (the node was demoted) makes the
 * next command find the master again; on a Redis Cluster it connects to the
 * master of the command's keys' slot and follows MOVED, ASK, TRYAGAIN and
 * CLUSTERDOWN as the library's handles do. Used by one thread at a time
 * (any thread; a pool of them serves several threads). */
typedef struct bullc_redis_conn bullc_redis_conn;

/* A reply. Opaque: read it with the bullc_redis_reply_* accessors; the
 * caller frees the one a command returns with bullc_redis_reply_free (its
 * elements go with it). */
typedef struct bullc_redis_reply bullc_redis_reply;

/* What a reply holds (RESP2). An error reply comes back as a command's
 * error code, not as a reply; ERROR appears only as an element of an array
 * (a transaction's EXEC, a script returning a table with an error). */
typedef enum bullc_reply_type {
    BULLC_REPLY_NIL = 0,
    BULLC_REPLY_STRING = 1,  /* a bulk string */
    BULLC_REPLY_STATUS = 2,  /* a simple string: "OK" */
    BULLC_REPLY_INTEGER = 3, /* an integer */
    BULLC_REPLY_ARRAY = 4,   /* elements: bullc_redis_reply_count, _element */
    BULLC_REPLY_ERROR = 5    /* an error inside an array */
} bullc_reply_type;

/* Creates a connection with a copy of `opts` (NULL: the defaults, then the
 * environment, as for a queue); nothing is sent until the first command.
 * Returns 0 with *out set, BULLC_ENOMEM, or BULLC_EINVAL (a malformed
 * environment). Any thread. */
BULLC_EXPORT int bullc_redis_conn_new(bullc_redis_conn **out, const bullc_redis_opts *opts, bullc_error *err);

/* Closes the connection and frees it (the password copy is wiped). NULL is
 * a no-op. The thread that uses it. */
BULLC_EXPORT void bullc_redis_conn_free(bullc_redis_conn *conn);

/* Sends one command (`argc` arguments; `lens` gives their lengths, binary
 * safe, or NULL for NUL-terminated strings), connecting first when needed,
 * and waits for its reply within the command timeout. On a cluster the
 * command goes to the master of its keys' slot, the keys being where the
 * server's command table says (COMMAND INFO, asked once per command name
 * per connection, its key specs applied here; COMMAND GETKEYS per call for
 * the few commands whose specs cannot tell: SORT ... STORE, MIGRATE ...
 * KEYS, modules' commands without specs, any movable-keys command of a
 * Redis 6): XREAD ... STREAMS k, OBJECT ENCODING k, ZUNION 2 k1 k2 and
 * EVALSHA sha 1 k route by k. A command without keys (INFO, PING, PUBLISH,
 * CLIENT LIST) runs on the master the connection is on (any master when it
 * has none yet). Keys of several slots are refused with BULLC_EINVAL ("keys
 * in different slots"; give them one hash tag) and nothing is sent. If the
 * server refuses COMMAND (renamed, or denied by ACL), a script call routes
 * by its first key and any other command by argv[1]. Between MULTI and
 * EXEC / DISCARD commands are not routed (a lookup would join the
 * transaction): they go to the connection's node, and a redirection
 * there is returned, not followed (sent again elsewhere it would run
 * outside the transaction; EXEC then fails). A connection yet to be
 * made goes to the keys' master; a live one is used as it is and a MOVED
 * reply repoints it and the command is sent again; ASK, TRYAGAIN and
 * CLUSTERDOWN (it did not run) are sent again after a pause.
 * Returns 0 with *reply set (the caller frees it), or: BULLC_EREDIS (Redis
 * replied with an error: its text in `err`), BULLC_EAUTH (AUTH, SELECT or
 * permissions refused), BULLC_ECONN (cannot connect, or the connection broke:
 * the command may or may not have run), BULLC_ETIMEDOUT (no reply within the
 * command timeout: likewise), BULLC_EINVAL (argc < 1, keys of several
 * slots on a cluster), BULLC_ENOMEM. After ECONN or
 * ETIMEDOUT the next command reconnects. The thread that uses `conn`. */
BULLC_EXPORT int bullc_redis_conn_command(bullc_redis_conn *conn, int argc, const char *const *argv, const size_t *lens,
                                          bullc_redis_reply **reply, bullc_error *err);

/* Frees a reply returned by bullc_redis_conn_command (not an element).
 * NULL is a no-op. Any thread. */
BULLC_EXPORT void bullc_redis_reply_free(bullc_redis_reply *reply);

/* Accessors; `reply` is borrowed. The type (a bullc_reply_type). The text
 * of a STRING, STATUS or ERROR (NUL-terminated, binary safe with *len;
 * `len` may be NULL), NULL for other types. The value of an INTEGER, 0 for
 * other types. The number of elements of an ARRAY, 0 for other types; an
 * element (borrowed from its array), NULL past the end. */
BULLC_EXPORT int bullc_redis_reply_type(const bullc_redis_reply *reply);
BULLC_EXPORT const char *bullc_redis_reply_str(const bullc_redis_reply *reply, size_t *len);
BULLC_EXPORT long long bullc_redis_reply_integer(const bullc_redis_reply *reply);
BULLC_EXPORT size_t bullc_redis_reply_count(const bullc_redis_reply *reply);
BULLC_EXPORT const bullc_redis_reply *bullc_redis_reply_element(const bullc_redis_reply *reply, size_t i);

#ifdef __cplusplus
}
#endif
#endif
