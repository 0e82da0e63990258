/* SPDX-License-Identifier: MIT */
/* Where Redis is and how to talk to it: URL, environment, timeouts. */
#ifndef BULLC_REDIS_H
#define BULLC_REDIS_H

#include <stdbool.h>

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
 * `?db=N`), rediss://... (the same over TLS: turns TLS on), or
 * unix:///path/to.sock[?db=N] (also `?password=`; turns TLS off). A redis://
 * URL leaves TLS as it was (on when a TLS setting asked for it: never a
 * silent fallback to plain TCP).
 * redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/db]
 * replaces the sentinel list and sets the master's name (the user and
 * password are the master's, not the sentinels'); redis://, rediss:// and
 * unix:// clear the sentinel list.
 * redis+cluster://[user:password@]host:port[,host:port...] replaces the
 * cluster's seed nodes (see _add_cluster_node; the user and password are
 * every node's; no database but 0); redis://, rediss://, unix:// and
 * redis+sentinel:// clear them. Percent escapes are decoded in user and
 * password. On error returns BULLC_EINVAL,
 * leaves `opts` unchanged and fills `err` (the message masks the password). */
BULLC_EXPORT int bullc_redis_opts_parse_url(bullc_redis_opts *opts, const char *url, bullc_error *err);

/* Applies the environment: REDIS_URL when set; otherwise REDIS_HOST,
 * REDIS_PORT, REDIS_PASSWORD, REDIS_USERNAME and REDIS_DB, each when set.
 * In both cases also REDIS_CONNECT_TIMEOUT and REDIS_COMMAND_TIMEOUT
 * (milliseconds, as bullc_redis_opts_set_timeouts), and the TLS settings
 * REDIS_TLS_CA (a CA file, or a directory of hashed CA certificates),
 * REDIS_TLS_CERT with REDIS_TLS_KEY, REDIS_TLS_SERVER_NAME and
 * REDIS_TLS_INSECURE=1, each when set (each turns TLS on), and
 * REDIS_SENTINEL_PASSWORD (the sentinels' password).
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

/* TLS (OpenSSL 3). bullc_redis_opts_set_tls turns it on or off; every other
 * TLS setter also turns it on. The server's certificate is verified, against
 * the system's CAs unless a CA file or directory is given, and must name the
 * host (or the server name when set); the server name is also sent as SNI
 * (not for an IP address). A client certificate and its key (PEM) are for
 * servers that require them (mutual TLS). _set_tls_insecure(true) skips the
 * verification of the server (tests only: anyone on the path can read and
 * change the traffic). Files are read when a connection is opened: a missing
 * or bad file is reported then, as BULLC_ECONN with what failed. Strings are
 * copied; NULL or "" clears one. Return 0, BULLC_EINVAL (a certificate
 * without its key, or the reverse) or BULLC_ENOMEM. Not for unix:// sockets. */
BULLC_EXPORT int bullc_redis_opts_set_tls(bullc_redis_opts *opts, bool on);
BULLC_EXPORT int bullc_redis_opts_set_tls_ca(bullc_redis_opts *opts, const char *ca_file, const char *ca_dir);
BULLC_EXPORT int bullc_redis_opts_set_tls_cert(bullc_redis_opts *opts, const char *cert_file, const char *key_file);
BULLC_EXPORT int bullc_redis_opts_set_tls_server_name(bullc_redis_opts *opts, const char *name);
BULLC_EXPORT int bullc_redis_opts_set_tls_insecure(bullc_redis_opts *opts, bool insecure);
/* Whether connections use TLS. */
BULLC_EXPORT bool bullc_redis_opts_tls(const bullc_redis_opts *opts);

/* Redis Sentinel. With at least one sentinel, every connection (and every
 * reconnection) asks the sentinels, in the order given, for the address of
 * the master named by _set_sentinel_master (SENTINEL
 * get-master-addr-by-name), connects there and checks with ROLE that the node
 * is a master; a lost connection or a READONLY reply (the node was demoted)
 * makes the next connection ask again. To leave an old master that still
 * takes writes after a failover, asynchronous connections (workers,
 * QueueEvents) subscribe to +switch-master, and a synchronous call
 * (producers, administration) asks the sentinels again, at most once a
 * second, before it sends on an open connection. Sentinels are reached over plain TCP
 * unless _set_sentinel_tls(true) (ioredis's sentinelTLS); the password and
 * the database apply to the master, the TLS settings to the master when TLS
 * is on and to the sentinels when sentinel TLS is on (a sentinel's
 * certificate must name its host as given, not the server name).
 * _add_sentinel appends one sentinel; _add_sentinels appends a list
 * "host:port[,host:port...]" (IPv6 as [addr]:port; on error `opts` is
 * unchanged and `err` says why); _set_host, _set_unix and a redis://,
 * rediss:// or unix:// URL clear the list. _set_sentinel_auth sets the
 * sentinels' own user (may be NULL) and password (NULL or "" clears it; it is
 * never logged). Strings are copied. Return 0, BULLC_EINVAL or BULLC_ENOMEM.
 * Any thread that owns `opts`. */
BULLC_EXPORT int bullc_redis_opts_add_sentinel(bullc_redis_opts *opts, const char *host, int port);
BULLC_EXPORT int bullc_redis_opts_add_sentinels(bullc_redis_opts *opts, const char *list, bullc_error *err);
BULLC_EXPORT int bullc_redis_opts_set_sentinel_master(bullc_redis_opts *opts, const char *name);
BULLC_EXPORT int bullc_redis_opts_set_sentinel_auth(bullc_redis_opts *opts, const char *user, const char *password);
/* TLS to the sentinels on or off (off by default; a rediss+sentinel:// URL
 * turns it on with TLS to the master). Returns 0. Any thread that owns
 * `opts`. */
BULLC_EXPORT int bullc_redis_opts_set_sentinel_tls(bullc_redis_opts *opts, bool on);
/* Whether the sentinels are spoken to over TLS. */
BULLC_EXPORT bool bullc_redis_opts_sentinel_tls(const bullc_redis_opts *opts);
/* How many sentinels are set (0: not through Sentinel), and the master's name
 * (borrowed; NULL when unset). */
BULLC_EXPORT size_t bullc_redis_opts_sentinel_count(const bullc_redis_opts *opts);
BULLC_EXPORT const char *bullc_redis_opts_sentinel_master(const bullc_redis_opts *opts);

/* Redis Cluster. With at least one seed node, every connection (and every
 * reconnection) asks the seeds, in the order given, for the slot map
 * (CLUSTER SLOTS) and connects to the master serving its queue's slot: a
 * queue's handles (producer, admin, worker, QueueEvents) each route to the
 * master of the slot of the queue's keys, which must share one slot through
 * a hash tag in the prefix or the queue name ("{bull}"); a handle made for a
 * queue without one fails with BULLC_EINVAL, before anything is sent. A
 * MOVED reply repoints the connection at the node it names and the command
 * is sent again there; ASK, TRYAGAIN and CLUSTERDOWN (the command did not
 * run) are sent again after a pause, so a resharded or failed-over slot is
 * followed. Seed nodes are reached over plain TCP with the password; the
 * database is 0. _add_cluster_node appends one seed node; _add_cluster_nodes
 * a list "host:port[,host:port...]" (IPv6 as [addr]:port; on error `opts` is
 * unchanged and `err` says why). Either clears the sentinel list; _set_host,
 * _set_unix and a redis://, rediss://, unix:// or redis+sentinel:// URL
 * clear the seed nodes. Strings are copied. Return 0, BULLC_EINVAL or
 * BULLC_ENOMEM. Any thread that owns `opts`. */
BULLC_EXPORT int bullc_redis_opts_add_cluster_node(bullc_redis_opts *opts, const char *host, int port);
BULLC_EXPORT int bullc_redis_opts_add_cluster_nodes(bullc_redis_opts *opts, const char *list, bullc_error *err);
/* How many seed nodes are set (0: not a cluster). */
BULLC_EXPORT size_t bullc_redis_opts_cluster_count(const bullc_redis_opts *opts);

/* Where a connection made now would go: the master's address as the
 * sentinels give it now (blocking: up to the connect timeout per sentinel
 * that does not answer), or the host and port as set. For programs that open
 * connections of their own with the same settings. Writes the host (NUL
 * terminated) into `host` and the port into `*port`; `opts` is not changed.
 * Returns 0, BULLC_EINVAL (a unix socket, no master name, `host_size` too
 * small) or BULLC_ECONN (no sentinel answered, or none knows the master:
 * `err` says what each said). Any thread. */
BULLC_EXPORT int bullc_redis_opts_resolve(const bullc_redis_opts *opts, char *host, size_t host_size, int *port,
                                          bullc_error *err);

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
