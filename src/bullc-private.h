/* SPDX-License-Identifier: MIT */
/* PRIVATE: bullc's internal declarations, shared by the files in src/ only. Nothing here
 * is installed or part of the API; names carry the `bullc__` prefix. */
#ifndef BULLC_PRIVATE_H
#define BULLC_PRIVATE_H

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>

#include <bullc/bullc.h>
#include <cJSON.h>
#include <hiredis.h>
#include <msgpack.h>
#include <sds.h>
#include <async.h>
#include <uv.h>

#include "protocol.h"

#define BULLC__DEFAULT_PREFIX "bull"
#define BULLC__PRIORITY_LIMIT ((1 << 21) - 1)
#define BULLC__MAX_SAFE_INTEGER 9007199254740991.0

/* ---- error.c ---------------------------------------------------------- */
/* Fills `err` (when not NULL) and returns `code`, so callers can
 * `return bullc__err(err, BULLC_EINVAL, "...")`. */
int bullc__err(bullc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes an already-filled error message ("job 3: ..."). */
void bullc__err_prefix(bullc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A timed-out connection's message: where, after how long, and what
 * changes that (the programs read the environment; C sets it). */
#define BULLC__TIMEOUT_MSG                                                                                    \
    "Redis at %s did not answer within %d ms (the command timeout; change it with REDIS_COMMAND_TIMEOUT=MS, " \
    "or bullc_redis_opts_set_timeouts in C)"
#define BULLC__CONNECT_TIMEOUT_MSG                                                                 \
    "Redis at %s did not accept the connection within %d ms (the connect timeout; change it with " \
    "REDIS_CONNECT_TIMEOUT=MS, or bullc_redis_opts_set_timeouts in C)"

/* ---- util.c ----------------------------------------------------------- */
int64_t bullc__now_ms(void);
/* Strict decimal integer parse of [s, s+len); false on junk or overflow. */
bool bullc__parse_i64(const char *s, size_t len, int64_t *out);
/* Truncates toward zero, saturating (NaN: 0): numbers from Redis may be
 * anything a buggy producer wrote. */
int64_t bullc__double_to_i64(double d);
/* v as JavaScript's String(v) prints it ("1e+21", "1.5", "Infinity"): how
 * ioredis sends a number Node computed. Returns the length written. */
enum { BULLC__JS_NUMBER_MAX = 32 };
size_t bullc__js_number(char out[BULLC__JS_NUMBER_MAX], double v);
/* Whether [s, s+len) is well-formed UTF-8 (what JSON.stringify produces). */
bool bullc__utf8_valid(const char *s, size_t len);
/* The base64 of `len` bytes, as an sds. */
sds bullc__base64(const char *s, size_t len);
/* Appends [s, s+len) to `out` as a JSON string: quotes, escapes, and every
 * byte kept (a NUL becomes \u0000, where a C string would end). NULL when
 * out of memory (`out` is freed then). Takes `out` over. */
sds bullc__json_quote(sds out, const char *s, size_t len);
/* The setters' string fields. *dst = a copy of `s` (NULL: none), the old
 * value freed; BULLC_ENOMEM leaves *dst as it was. */
int bullc__str_set(char **dst, const char *s);
/* Two fields set together (a user and a password, a file and a
 * directory): both or, out of memory, neither. With `secret_b` the old and
 * the unused new value of *b are wiped (bullc__wipe_free). */
int bullc__str_set2(char **a, const char *sa, char **b, const char *sb, bool secret_b);
/* Frees a secret (a password), zeroed first; NULL is fine. */
void bullc__wipe_free(char *s);

/* ---- random.c: the process's random source ----------------------------- */
/* Seeded from the kernel on first use and again after fork; any thread. For
 * jitter and ids, never for secrets. */
uint64_t bullc__random_u64(void);
/* Uniform in [0, n); 0 when n <= 1. */
uint64_t bullc__random_below(uint64_t n);
/* Uniform in [0, 1). */
double bullc__random01(void);
void bullc__random_bytes(void *buf, size_t n);
/* A random (version 4) UUID, as Node's crypto.randomUUID prints it. */
void bullc__uuid4(char out[37]);

/* ---- trace.c, otlp.c: OpenTelemetry spans ------------------------------ */
struct bullc_tracer_opts {
    char *endpoint, *service;
    char *tls_ca, *tls_cert, *tls_key; /* https:// only */
    bullc_tracer_error_cb on_error;
    void *on_error_data;
    cJSON *resource, *headers; /* string values */
    double ratio;
    bool parent_based;
    size_t max_queue, max_batch;
    int64_t delay_ms, timeout_ms;
};
struct bullc_tracer {
    /* settings, read-only once started (any thread reads them) */
    double ratio;
    bool parent_based;
    char *host, *host_header, *port, *path;
    char *endpoint;        /* for messages */
    bullc_redis_opts *tls; /* https://: TLS settings for tls.c; NULL: plain HTTP */
    bullc_tracer_error_cb on_error;
    void *on_error_data;
    bool failing; /* export thread only: the last export failed */
    sds head;     /* the request line and headers before Content-Length */
    sds resource; /* the body's start: resource and scope, up to "spans":[ */
    size_t max_queue, max_batch;
    int64_t delay_ms, timeout_ms;
    /* the queue: a ring of serialised spans, under mu */
    uv_mutex_t mu;
    uv_cond_t cv;
    sds *ring;
    size_t head_i, count;
    bool stopping;
    uv_thread_t thread;
    _Atomic uint64_t dropped, exported;
};
/* OTLP span kinds */
enum { BULLC__SPAN_INTERNAL = 1, BULLC__SPAN_PRODUCER = 4, BULLC__SPAN_CONSUMER = 5 };
typedef struct bullc__span_ctx {
    uint8_t trace[16], span[8], flags; /* flags bit 0: sampled */
} bullc__span_ctx;
typedef struct bullc__span {
    bullc__span_ctx ctx;
    uint8_t parent[8];
    bool has_parent;
    int kind;
    int64_t start_ns; /* wall clock */
} bullc__span;
enum { BULLC__ATTR_STR, BULLC__ATTR_INT, BULLC__ATTR_STR_ARRAY };
typedef struct bullc__attr {
    const char *key;
    int type;
    const char *s; /* STR: len bytes; STR_ARRAY: i strings, each NUL-terminated, one after another */
    size_t len;
    int64_t i;
} bullc__attr;
/* A W3C traceparent header value; false when malformed (or all-zero ids). */
bool bullc__traceparent_parse(const char *s, bullc__span_ctx *out);
/* Its text, 55 characters and a NUL. */
void bullc__traceparent_format(const bullc__span_ctx *c, char out[56]);
/* The parent in a job's "tm" option (bullmq-otel's metadata JSON). */
bool bullc__trace_metadata_parse(const char *tm, bullc__span_ctx *out);
/* Starts a span now: a child of `parent` (NULL: a new trace), sampled as
 * `t` says. No allocation. */
void bullc__span_start(const bullc_tracer *t, bullc__span *s, int kind, const bullc__span_ctx *parent);
/* The span's context as bullmq-otel stores it in "tm": {"traceparent":"..."}. */
sds bullc__span_metadata(const bullc__span *s);
/* Ends the span now and queues it for export when sampled (never blocks:
 * a full queue drops and counts it). An optional event at the end. */
void bullc__span_end(bullc_tracer *t, const bullc__span *s, const char *name, size_t name_len, const bullc__attr *a,
                     size_t n, const char *event, const bullc__attr *ea, size_t en);
/* Takes the serialised span over (NULL counts as dropped). Any thread. */
void bullc__tracer_push(bullc_tracer *t, sds span);

/* ---- sigpipe.c: writes that cannot kill the process ------------------- */
/* Around every hiredis call that may write: SIGPIPE blocked in this thread
 * only, and one the write raised consumed before the mask is restored (the
 * process's disposition is never touched). Any thread; pairs nest nowhere. */
typedef struct bullc__sigpipe {
    sigset_t old;
    bool active, pending_before;
} bullc__sigpipe;
void bullc__sigpipe_block(bullc__sigpipe *g);
/* `write_failed`: the guarded call reported an error (only then is a
 * pending SIGPIPE looked for). Keeps errno. */
void bullc__sigpipe_unblock(bullc__sigpipe *g, bool write_failed);
/* hiredis's blocking redisCommandArgv with SIGPIPE kept from the process. */
redisReply *bullc__command_argv(redisContext *ctx, int argc, const char **argv);

/* ---- resp.c: requests in RESP ------------------------------------------ */
/* Bytes of the request argv/lens (every length given) formats to. */
/* Argument lengths for the formatters: `lens` when given, else measured
 * into `stack` (room for BULLC__RESP_STACK_ARGS) or, past that, into a heap
 * array stored in *heap for the caller to free. NULL when out of memory. */
enum { BULLC__RESP_STACK_ARGS = 64 };
const size_t *bullc__resp_arg_lens(int argc, const char *const *argv, const size_t *lens, size_t *stack, size_t **heap);
size_t bullc__resp_size(int argc, const size_t *lens);
/* Writes that request at `p` (bullc__resp_size bytes free); returns its end. */
char *bullc__resp_write(char *p, int argc, const char *const *argv, const size_t *lens);
/* Appends that request to `s`; NULL when out of memory (then `s` is left
 * as it was, still the caller's to free). */
sds bullc__resp_cat(sds s, int argc, const char *const *argv, const size_t *lens);

/* ---- url.c (struct behind bullc_redis_opts) ---------------------------- */
/* How TLS errors (tls.c) name the settings that would mend them and the
 * peer: Redis's flags unless a bullc_redis_opts says otherwise (the OTLP
 * exporter reuses the TLS code for https:// with its OTEL_* variables). */
typedef struct bullc__tls_words {
    const char *scheme;      /* "https://": with host and port, the peer in messages */
    const char *ca;          /* what names the CA */
    const char *client_cert; /* what names the client certificate and key */
    const char *server_name; /* after "not for host name 'x'" */
    const char *plain;       /* what to use for a port without TLS */
    const char *timeout;     /* what bounds the handshake */
} bullc__tls_words;
struct bullc_redis_opts {
    char *host;
    int port;
    char *unix_path;
    char *user;
    char *password;
    int db;
    int connect_timeout_ms;
    int command_timeout_ms;
    int busy_poll_us;
    /* TLS (tls.c): on for rediss:// or any TLS setting; verification stays
     * on unless tls_insecure. */
    bool tls;
    bool tls_insecure;
    char *tls_ca_file, *tls_ca_dir, *tls_cert, *tls_key, *tls_server_name;
    /* Sentinel (sentinel.c): with sentinels, host and port are only where
     * the master was last found; each connect asks the sentinels again. */
    struct bullc__sentinel_addr {
        char *host;
        int port;
    } * sentinels;
    size_t nsentinels;
    bool sentinel_resolved; /* host and port are the master's */
    bool sentinel_tls;      /* the sentinels are spoken to over TLS */
    char *sentinel_master, *sentinel_user, *sentinel_password;
    /* Redis Cluster (cluster.c): the seed nodes; with them, host and port
     * are the master last found serving `cluster_slot`. */
    struct bullc__sentinel_addr *cluster_nodes;
    size_t ncluster;
    int cluster_slot;                  /* the slot this connection serves; -1: any */
    bool cluster_redirected;           /* host and port came from a MOVED: no lookup */
    const bullc__tls_words *tls_words; /* static; NULL: Redis's */
};
int bullc__redis_opts_copy(bullc_redis_opts *dst, const bullc_redis_opts *src);
void bullc__redis_opts_clear(bullc_redis_opts *opts);
/* Defaults, then the environment: what a handle created with no settings uses. */
int bullc__redis_opts_default(bullc_redis_opts **out, bullc_error *err);

/* ---- sentinel.c --------------------------------------------------------- */
/* The one place every connection (conn.c, aconn.c, and through
 * bullc_redis_opts_resolve the programs' own) learns where to connect: with
 * sentinels, asks them in turn for the master's address and writes it into
 * o->host / o->port (the connection's own copy of the settings); without,
 * does nothing. Blocks for up to the connect timeout per sentinel; any
 * thread. 0, BULLC_EINVAL (no master name) or BULLC_ECONN with `err` saying
 * what each sentinel answered. */
int bullc__sentinel_resolve(bullc_redis_opts *o, bullc_error *err);
/* ---- node_ask.c: one short-lived request to a sentinel or a seed node --- */
/* Appends "; what" to a list of reasons in `why` (truncated when full): what
 * each sentinel or seed node answered. */
void bullc__note_reason(char *why, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
typedef struct bullc__node_req {
    const char *label;           /* how reasons name the node: "sentinel", "node" */
    bool tls;                    /* over TLS with o's settings, checked against the node's own name */
    const char *user, *password; /* AUTH first when there is a password */
    int argc;
    const char **argv;
    const char *plain_hint; /* added when a plain request found the connection closed (a TLS port?) */
} bullc__node_req;
/* Connects to `node` within o's connect timeout, sends AUTH (when asked)
 * and the command with o's command timeout, and returns its reply (the
 * caller frees it; an error reply too), or NULL with why it failed added to
 * `why` ("<label> host:port: ..."). Strings are borrowed. Blocking; any
 * thread. */
redisReply *bullc__node_ask(const bullc_redis_opts *o, const struct bullc__sentinel_addr *node,
                            const bullc__node_req *q, char *why, size_t size);
/* Whether a ROLE reply names a master; `err` says what it named otherwise. */
bool bullc__sentinel_role_is_master(const redisReply *r, const bullc_redis_opts *o, bullc_error *err);

/* ---- cluster.c ---------------------------------------------------------- */
/* Redis Cluster's slot of a key (CRC16 of its hash tag, or of the key). */
int bullc__cluster_key_slot(const char *key, size_t len);
/* With seed nodes, asks them in turn for the slot map (CLUSTER SLOTS) and
 * writes the master serving o->cluster_slot (any master for -1) into
 * o->host / o->port, unless a MOVED named it already; without, does
 * nothing. Blocking (up to the connect timeout per seed); any thread. 0 or
 * BULLC_ECONN with `err` saying what each seed answered. */
int bullc__cluster_resolve(bullc_redis_opts *o, bullc_error *err);
/* Every master of the cluster, for the getters that must visit each node
 * (queue listing, CLIENT LIST): the slot map of the first seed that gives
 * one, as copies of `o` aimed at one master each, without seed nodes (the
 * caller frees them with bullc__cluster_masters_free). Without seed nodes,
 * one copy of `o`. With `slot_node` (16384 entries), each served slot's
 * master's index in *out (the other entries left as they were). Blocking;
 * any thread. 0, BULLC_ENOMEM or BULLC_ECONN. */
int bullc__cluster_masters(const bullc_redis_opts *o, bullc_redis_opts **out, size_t *n, uint16_t *slot_node,
                           bullc_error *err);
void bullc__cluster_masters_free(bullc_redis_opts *nodes, size_t n);
/* One seed's CLUSTER SLOTS reply `r` (any reply: an error or odd one is
 * noted in `why`) as bullc__cluster_masters gives it: the one parser of the
 * map, for the blocking read above and the loop's (cluster_map.c). 0,
 * BULLC_ENOMEM, or BULLC_ECONN (noted in `why`: no master in it). */
int bullc__cluster_map(const bullc_redis_opts *o, const struct bullc__sentinel_addr *seed, const redisReply *r,
                       bullc_redis_opts **out, size_t *nout, uint16_t *slot_node, char *why, size_t size);
/* Whether `r` is a CLUSTER SLOTS map (an array); else why not, into `why`. */
bool bullc__cluster_slots_ok(const redisReply *r, const struct bullc__sentinel_addr *seed, char *why, size_t size);

/* ---- cluster_map.c: the slot map read on the loop ------------------------- */
/* CLUSTER SLOTS asked of the seeds in turn over an asynchronous connection
 * (never a blocking call on the loop), until one gives a map; a round in
 * which none did is reported and, after the reconnections' backoff, asked
 * again. Heap-allocated; frees itself after on_closed. */
typedef struct bullc__map_read bullc__map_read;
typedef struct bullc__map_read_hooks {
    /* the map is in (0: the masters and each slot's index into them, which
     * the hook takes over, with bullc__cluster_masters_free and free), or a
     * round failed (`err`: what each seed answered; asked again later) */
    void (*on_map)(int rc, const bullc_error *err, bullc_redis_opts *masters, size_t n, uint16_t *slot_node,
                   void *data);
    /* its handles are closed (after the map came, or bullc__map_read_close) */
    void (*on_closed)(void *data);
    void *data;
} bullc__map_read_hooks;
/* Starts reading the map of the cluster `o` names (its seeds); NULL when
 * out of memory (no hook runs). Hooks run from the loop, never inside this
 * call. Loop thread. */
bullc__map_read *bullc__map_read_start(uv_loop_t *loop, const bullc_redis_opts *o, const bullc__map_read_hooks *h);
/* Stops it: on_map does not run again, on_closed runs from the loop. */
void bullc__map_read_close(bullc__map_read *m);
/* Routes a handle's connection settings to the slot of queue `name` under
 * `prefix` (no-op without seed nodes). BULLC_EINVAL when neither carries a
 * hash tag: BullMQ's scripts need all of a queue's keys in one slot. */
int bullc__cluster_route(bullc_redis_opts *o, const char *prefix, const char *name, bullc_error *err);
/* The same check, and the slot into *slot (-1 without seed nodes), leaving
 * `o` as it is. */
int bullc__cluster_slot_of(const bullc_redis_opts *o, const char *prefix, const char *name, int *slot,
                           bullc_error *err);
/* The slot of the queue "<prefix>:<name>" (`qualified`); BULLC_EINVAL when
 * it carries no hash tag. The one place the hash-tag rule is checked. */
int bullc__cluster_queue_slot(const char *qualified, int *slot, bullc_error *err);
enum { BULLC__CLUSTER_NONE, BULLC__CLUSTER_MOVED, BULLC__CLUSTER_RETRY };
/* What kind of redirection a reply is, with no side effect (NONE, MOVED or
 * RETRY as below). */
int bullc__cluster_reply_kind(const redisReply *r);
/* What a reply asks of a cluster client: NONE (an ordinary reply), MOVED
 * (the slot's master is elsewhere: written into `o`, reconnect and resend)
 * or RETRY (ASK, TRYAGAIN, CLUSTERDOWN: the command did not run; send it
 * again after a pause). Always NONE without seed nodes. */
int bullc__cluster_redirect(bullc_redis_opts *o, const redisReply *r);
/* A MOVED reply's slot and node: *host newly allocated, or NULL when the
 * reply names the node that answered; false when malformed or out of memory. */
bool bullc__cluster_moved(const redisReply *r, int *slot, char **host, int *port);
/* Whether a connection with these settings is resolved before connecting. */
static inline bool bullc__opts_resolved(const bullc_redis_opts *o) { return o->nsentinels || o->ncluster; }

/* ---- scripts.c + generated scripts_gen.c ------------------------------ */
typedef struct bullc__script {
    const char *name; /* "moveToActive" */
    const char *id;   /* "moveToActive-11" */
    int numkeys;
    const char *text;
    size_t len;
    const char *sha1; /* 40 hex digits */
} bullc__script;
/* The 6.x table (bullc_script_* describe it) and the 5.x one. */
extern const bullc__script bullc__scripts[];
extern const size_t bullc__scripts_count;
extern const char bullc__scripts_bullmq_version[];
extern const bullc__script bullc__scripts5[];
extern const size_t bullc__scripts5_count;
extern const char bullc__scripts5_bullmq_version[];
/* By name ("addStandardJob") in one table; aborts on an unknown name, a
 * programming error. */
const bullc__script *bullc__script_find(const bullc__script *table, size_t n, const char *name);

/* ---- resp.c: script calls ---------------------------------------------- */
/* Every EVALSHA is formatted here, whichever connection sends it: a head
 * (EVALSHA, the SHA1, numkeys; or EVAL, the text, numkeys when `eval`) and a
 * tail, the `argc` keys then arguments. The tail does not depend on the
 * head, so the NOSCRIPT resend as EVAL can reuse the bytes already
 * formatted after EVALSHA's head. */
size_t bullc__resp_script_head_size(const bullc__script *s, int argc, bool eval);
char *bullc__resp_script_head_write(char *p, const bullc__script *s, int argc, bool eval);
/* The whole call's size; *tail_len (may be NULL) gets the tail's. */
size_t bullc__resp_script_size(const bullc__script *s, int argc, const size_t *lens, bool eval, size_t *tail_len);
char *bullc__resp_script_write(char *p, const bullc__script *s, int argc, const char *const *argv, const size_t *lens,
                               bool eval);
/* Appends the whole call to `out`; NULL when out of memory (`out` intact). */
sds bullc__resp_script_cat(sds out, const bullc__script *s, int argc, const char *const *argv, const size_t *lens,
                           bool eval);

/* ---- tls.c: TLS over a connected socket (OpenSSL) --------------------- */
struct ssl_st;
/* Sets --tls-ca-cert's path: a directory of hashed certificates or a file. */
int bullc__tls_set_ca_path(bullc_redis_opts *o, const char *path);
/* An SSL object over `fd` for the settings (CA, client certificate, SNI,
 * host name check), its handshake not begun. */
int bullc__tls_start(const bullc_redis_opts *o, int fd, struct ssl_st **out, bullc_error *err);
/* One step of the handshake: 0 done, 1 wants readability, 2 writability,
 * or BULLC_ECONN with what failed (certificate, host name, handshake). */
int bullc__tls_handshake(struct ssl_st *ssl, const bullc_redis_opts *o, bullc_error *err);
/* The whole handshake on a blocking socket within timeout_ms. */
int bullc__tls_connect(const bullc_redis_opts *o, int fd, int timeout_ms, struct ssl_st **out, bullc_error *err);
/* Bytes moved (> 0), 0 when the socket would block (or, on a blocking socket,
 * timed out), or BULLC_ECONN with the reason. SIGPIPE is kept from the
 * process. *want_write (may be NULL): the read needs writability. */
ssize_t bullc__tls_read(struct ssl_st *ssl, char *buf, size_t n, bool *want_write, bullc_error *err);
ssize_t bullc__tls_write(struct ssl_st *ssl, const char *buf, size_t n, bullc_error *err);
/* Between calls of a synchronous connection: false when the server closed. */
bool bullc__tls_alive(struct ssl_st *ssl, int fd);
size_t bullc__tls_pending(struct ssl_st *ssl);
void bullc__tls_free(struct ssl_st *ssl);

/* ---- conn_setup.c: a connection's hand-shake and Redis's error replies -- */
/* The hand-shake every connection sends right after connecting, built once
 * for conn.c and aconn.c: AUTH, ROLE (through Sentinel), SELECT, CLIENT
 * SETNAME, in that order, each only when configured. */
enum {
    BULLC__SETUP_AUTH,
    BULLC__SETUP_ROLE,
    BULLC__SETUP_SELECT,
    BULLC__SETUP_NAME,
    BULLC__SETUP_READY /* aconn.c's PING after the others: not built here */
};
typedef struct bullc__setup_cmd {
    int kind; /* BULLC__SETUP_* */
    int argc;
    const char *argv[3];
} bullc__setup_cmd;
typedef struct bullc__conn_setup {
    int n;
    bullc__setup_cmd cmd[4];
    char db[16];
} bullc__conn_setup;
/* Fills `s` from `o` and `client_name` (NULL: no name), whose strings it
 * borrows; argv may point into `s` itself, so it is used where it was built,
 * never copied. */
void bullc__conn_setup_build(bullc__conn_setup *s, const bullc_redis_opts *o, const char *client_name);
/* Whether the reply to a hand-shake command of `kind` lets the set-up go
 * on: 0, or BULLC_EAUTH (AUTH or SELECT refused) or BULLC_ECONN (ROLE: not
 * the master yet; the closing PING refused, e.g. LOADING) with `err` set. A
 * refused CLIENT SETNAME is fine (best effort). */
int bullc__conn_setup_check(int kind, const redisReply *r, const bullc_redis_opts *o, bullc_error *err);
/* What a reply asks of a connection, decided here for both stacks:
 * FINE (not an error), ERROR (hand it to the caller), NOSCRIPT (send the
 * script call again as EVAL, once), NOAUTH / DENIED (a password missing or
 * refused: BULLC_EAUTH), READONLY (through Sentinel: the node was demoted,
 * reconnect), LOADING / BUSY (reported as errors: the caller's own retry
 * decides), MOVED and RETRY (ASK, TRYAGAIN, CLUSTERDOWN: in a cluster, the
 * command did not run; cluster.c's classifier). With `o`, READONLY counts
 * only through Sentinel and MOVED / RETRY only in a cluster; NULL: always. */
enum {
    BULLC__REPLY_FINE,
    BULLC__REPLY_ERROR,
    BULLC__REPLY_NOSCRIPT,
    BULLC__REPLY_NOAUTH,
    BULLC__REPLY_DENIED,
    BULLC__REPLY_READONLY,
    BULLC__REPLY_LOADING,
    BULLC__REPLY_BUSY,
    BULLC__REPLY_MOVED,
    BULLC__REPLY_RETRY,
};
int bullc__reply_class(const redisReply *r, const bullc_redis_opts *o);
/* Whether `r` is Redis's NOSCRIPT error (the script cache lost the SHA1). */
bool bullc__reply_is_noscript(const redisReply *r);
/* A READONLY error: the node was demoted under us (a failover). */
bool bullc__reply_is_readonly(const redisReply *r);
/* Maps a Redis error reply to a bullc code and message. */
int bullc__reply_err(const redisReply *r, bullc_error *err);

/* ---- conn.c: a synchronous connection --------------------------------- */
typedef struct bullc__conn {
    redisContext *ctx;
    struct ssl_st *ssl; /* TLS over ctx's socket, or NULL */
    bullc_redis_opts *opts;
    char *client_name; /* CLIENT SETNAME after connecting, or NULL */
    /* Bumped on every successful connect, so callers can redo per-connection
     * setup (the queue's meta write). */
    unsigned generation;
    /* Commands appended whose replies are not read yet: while some are, the
     * socket may hold their replies, so it is not checked for a close. */
    size_t unread;
    /* A READONLY reply came through Sentinel, or a MOVED in a cluster: the
     * connection is dropped once the replies still due are read, so the
     * next call finds the master. */
    bool demoted;
    /* Inside a transaction (MULTI, set by redis_conn.c): a redirection is
     * not followed, as the command was not queued and sending it again,
     * on another connection, would run it outside the transaction. */
    bool in_multi;
    /* Through Sentinel: when the last reply due was read or the sentinels
     * last asked (CLOCK_MONOTONIC ms); a call after a second or more of this
     * idleness asks them again, see bullc__conn_ensure. */
    int64_t active_ms;
} bullc__conn;
int bullc__conn_init(bullc__conn *c, const bullc_redis_opts *opts, bullc_error *err);
void bullc__conn_close(bullc__conn *c);
/* Closes the socket only (unsent or unread commands are discarded); the
 * next call reconnects. */
void bullc__conn_drop(bullc__conn *c);
/* Connects when there is no live connection. */
int bullc__conn_ensure(bullc__conn *c, bullc_error *err);
/* Sends one command and reads its reply (freeReplyObject it). An error
 * reply becomes BULLC_EREDIS and is freed; I/O errors drop the connection so
 * the next call reconnects. */
int bullc__conn_command(bullc__conn *c, redisReply **reply, bullc_error *err, int argc, const char **argv,
                        const size_t *lens);
/* EVALSHA of a script with its exact number of keys; on NOSCRIPT, EVAL with
 * the text (which caches it) — transparently. `argv` are keys then args. */
int bullc__conn_eval(bullc__conn *c, const bullc__script *s, int argc, const char **argv, const size_t *lens,
                     redisReply **reply, bullc_error *err);
/* Pipelining: append the commands, then read each reply in order. */
int bullc__conn_append(bullc__conn *c, int argc, const char **argv, const size_t *lens, bullc_error *err);
/* Appends a script call (EVALSHA, or EVAL when `eval`) formatted by resp.c;
 * `lens` may be NULL for NUL-terminated arguments. */
int bullc__conn_append_script(bullc__conn *c, const bullc__script *s, bool eval, int argc, const char *const *argv,
                              const size_t *lens, bullc_error *err);
/* Sends what is appended so far without waiting for replies, so Redis parses
 * a long pipeline while the rest of it is being formatted. One write; what
 * the socket does not take now goes with the next read. */
int bullc__conn_flush_some(bullc__conn *c, bullc_error *err);
int bullc__conn_read(bullc__conn *c, redisReply **reply, bullc_error *err);
/* SCRIPT LOAD of `scripts` unless *loaded is this connection's generation
 * (then sets it): an EVALSHA inside MULTI cannot fall back to EVAL. */
int bullc__conn_load_scripts(bullc__conn *c, const bullc__script *const *scripts, size_t n, unsigned *loaded,
                             bullc_error *err);

/* ---- command_keys.c ----------------------------------------------------- */
/* A connection's cache of the server's command table (COMMAND INFO per
 * name, asked on first use): which arguments of a command are keys. */
typedef struct bullc__cmd_table bullc__cmd_table;
void bullc__cmd_table_free(bullc__cmd_table *t);
typedef struct bullc__cmd_key {
    const char *p; /* borrowed: an argument, or a string of `held` */
    size_t len;
} bullc__cmd_key;
typedef struct bullc__cmd_keys {
    bullc__cmd_key *key;
    size_t n;
    redisReply *held; /* COMMAND GETKEYS's reply, when the server was asked */
} bullc__cmd_keys;
/* The keys of a command, in order (bullc__cmd_keys_clear frees them). The
 * table (*t, created at first use) is filled from the server through `c`,
 * which may connect: COMMAND INFO for a new name, COMMAND GETKEYS where the
 * key specs cannot tell. Without COMMAND (renamed, denied): a script call's
 * first key, else argv[1]. 0, BULLC_ENOMEM, or `c`'s ECONN / ETIMEDOUT. */
int bullc__command_keys(bullc__cmd_table **t, bullc__conn *c, int argc, const char *const *argv, const size_t *lens,
                        bullc__cmd_keys *out, bullc_error *err);
void bullc__cmd_keys_clear(bullc__cmd_keys *k);
/* The slot of a command's keys into *slot (-1: no key); BULLC_EINVAL "keys
 * in different slots" when they span several. As bullc__command_keys. */
int bullc__command_slot(bullc__cmd_table **t, bullc__conn *c, int argc, const char *const *argv, const size_t *lens,
                        int *slot, bullc_error *err);

/* ---- codec.c: msgpack as Node's msgpackr writes it and Lua reads it ---- */
typedef struct bullc__packbuf {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} bullc__packbuf;
void bullc__packbuf_init(bullc__packbuf *b);
void bullc__packbuf_destroy(bullc__packbuf *b);
void bullc__pack_str(msgpack_packer *pk, const char *s);
void bullc__pack_strn(msgpack_packer *pk, const char *s, size_t len);
void bullc__pack_number(msgpack_packer *pk, double v);
/* Packs a JSON value: objects as maps with str keys, arrays, str, real
 * booleans, nil, numbers as integers when integral and safe, else float64. */
void bullc__pack_json(msgpack_packer *pk, const cJSON *v);
/* A msgpack value back to JSON (tests and diagnostics). */
cJSON *bullc__unpack_to_json(const char *buf, size_t len);

/* ---- handle_opts.c: queue, worker and listener settings ------------------- */
/* The structs behind the opaque settings. Pointers are owned (NULL: unset);
 * the handle copies the scalars and takes copies of what it keeps. */
struct bullc_queue_opts {
    bullc_redis_opts *redis;
    char *prefix;
    bullc_job_opts *default_job_opts;
    int64_t max_len_events;
    bool skip_meta_update;
    int bullmq_version;   /* 0: auto, 5, 6 */
    bullc_tracer *tracer; /* borrowed; NULL: no spans */
    bullc_repeat_strategy_fn repeat_strategy;
    void *repeat_data;
};
struct bullc_worker_opts {
    bullc_redis_opts *redis;
    char *prefix, *name;
    int concurrency;
    int64_t lock_duration, lock_renew_time, stalled_interval;
    int max_stalled_count;
    double drain_delay; /* seconds */
    int64_t limiter_max, limiter_duration, maximum_rate_limit_delay;
    cJSON *keep_complete, *keep_fail; /* Node's KeepJobs objects; NULL: keep all */
    int64_t max_started_attempts, metrics_max_data_points, job_timeout;
    bool skip_stalled_check, skip_lock_renewal, autorun;
    int bullmq_version; /* 0: auto, 5, 6 */
    bullc_processor_fn processor;
    bullc_blocking_processor_fn blocking_processor;
    void *processor_data;
    bullc_backoff_fn backoff_strategy;
    void *backoff_data;
    bullc_repeat_strategy_fn repeat_strategy;
    void *repeat_data;
    bullc_tracer *tracer;      /* borrowed; NULL: no spans */
    bullc_worker_group *group; /* borrowed; NULL: the worker's own connections */
};
struct bullc_queue_events_opts {
    bullc_redis_opts *redis;
    char *prefix, *last_event_id;
    int64_t blocking_timeout;
    bool autorun;
    int bullmq_version; /* 0: auto, 5, 6 */
};
/* What bullc_queue_opts_new and bullc_queue_events_opts_new give; also used
 * when a constructor is passed NULL settings. */
extern const bullc_queue_opts bullc__queue_opts_default;
extern const bullc_queue_events_opts bullc__queue_events_opts_default;
/* A copy of `src` (NULL gives NULL) in *dst, replacing what *dst held. */
int bullc__redis_opts_replace(bullc_redis_opts **dst, const bullc_redis_opts *src);

/* ---- opts.c: job options ---------------------------------------------- */
struct bullc_job_opts {
    cJSON *obj; /* Node's names, as given */
};
/* Everything an add needs, derived from validated options and data. */
typedef struct bullc__prepared_job {
    sds data;          /* minified JSON */
    sds packed_opts;   /* msgpack map, short keys */
    sds job_id;        /* custom id or NULL */
    sds dedup_id;      /* deduplication id or NULL */
    sds parent_key;    /* opts.parent's job key "<prefix>:<queue>:<id>", or NULL */
    sds parent_packed; /* the add scripts' `parent` argument (msgpack), or NULL */
    int64_t timestamp; /* ms */
    double delay;
    int64_t priority;
    bool lifo;
    bool timestamp_given; /* by the options, not the clock */
    double size_limit;    /* sizeLimit, or -1 */
    int major;            /* the BullMQ major whose rules it was checked and packed by; 0: not known yet */
    bool repeat;          /* opts.repeat: a 5.x legacy repeatable job's add (repeat5.c) */
    sds rjk;              /* the add scripts' repeatJobKey argument, or NULL */
} bullc__prepared_job;
/* Validates `opts` merged over `defaults` (either may be NULL) and `data`. */
/* A deep copy of `src` (the caller frees it), or NULL: out of memory. */
bullc_job_opts *bullc__job_opts_dup(const bullc_job_opts *src);
int bullc__job_prepare(bullc__prepared_job *pj, const char *data_json, const bullc_job_opts *defaults,
                       const bullc_job_opts *opts, bullc_error *err);
/* The same, naming the job in the sizeLimit message as Node does. */
int bullc__job_prepare_named(bullc__prepared_job *pj, const char *name, const char *data_json,
                             const bullc_job_opts *defaults, const bullc_job_opts *opts, bullc_error *err);
/* The same by the rules of BullMQ major 5 or 6 (the two prepare a 6.x job):
 * the jobId '0' message, and `debounce`, refused by 6.x and 5.x's old name
 * of deduplication. 0 (the queue's major is not known yet) leaves those two
 * unchecked: a job prepared so is prepared again once the major is known.
 * `tm` (a trace context, bullmq-otel's metadata; NULL: none) is stored in
 * the options as Node's traced add does. */
int bullc__job_prepare_major(bullc__prepared_job *pj, int major, const char *name, const char *data_json,
                             const bullc_job_opts *defaults, const bullc_job_opts *opts, const char *tm,
                             bullc_error *err);
/* The same for jobs of a bulk add that share the options object of the one
 * before (`like`, prepared from the same defaults and options): only the data
 * and the clock are new, the validated and packed options are copied. */
int bullc__job_prepare_like(bullc__prepared_job *pj, const bullc__prepared_job *like, const char *name,
                            const char *data_json, bullc_error *err);
void bullc__job_prepared_free(bullc__prepared_job *pj);
/* Node's rules for a custom job id, by major 5 or 6 (0: all but the rule on
 * '0', whose message differs between the majors). */
int bullc__validate_job_id(const char *id, int major, bullc_error *err);

/* ---- queue.c: one add script call ---------------------------------------- */
/* The KEYS and ARGV of one add, as Node's addJobToTransaction builds them:
 * the script Node picks, the keys of `ks`'s queue (borrowed), the packed
 * positional args (owned: free with bullc__add_call_free), the job's data
 * and packed options (borrowed from the prepared job). A job whose options
 * hold `parent` is added as that parent's child (flows, and children added
 * from a processor). */
typedef struct bullc__add_call {
    const bullc__protocol *proto; /* the one it was built for */
    const bullc__script *script;
    int argc;
    const char *argv[12];
    size_t lens[12];
    sds args;
} bullc__add_call;
#define BULLC__ADD_WAITING_CHILDREN 1u /* addParentJob: a flow node with children */
#define BULLC__ADD_DEFER_RELEASE 2u    /* leave the parent in waiting-children (6.x's addFlow releases it) */
/* 0 or BULLC_ENOMEM. */
int bullc__add_call_build(bullc__add_call *c, const bullc__protocol *proto, const bullc__keys *ks, const char *name,
                          const bullc__prepared_job *pj, unsigned flags);
void bullc__add_call_free(bullc__add_call *c);

/* ---- add_batch.c: a batch of adds (queue.c's, aqueue_add.c's) ------------- */
/* The queue a batch is added to: its major's protocol, its keys and default
 * job options (borrowed), and `major`, the queue's major when told or
 * settled, 0 when not known yet (jobs are then checked again by its rules). */
typedef struct bullc__add_target {
    const bullc__protocol *proto;
    const bullc__keys *keys;
    const bullc_job_opts *defaults;
    int major;
} bullc__add_target;
/* `jobs[0, n)` (borrowed; their id and status are the results), each
 * prepared and its script call built in turn, `pending` until EXEC's reply
 * answered it. `prefix_index`: errors start "job <i>: " (add_bulk). */
typedef struct bullc__add_batch {
    bullc_bulk_job *jobs;
    bullc__prepared_job *pj;
    bullc__add_call *calls;
    bool *pending;
    size_t n, prepared;
    bool prefix_index;
    sds tm; /* the add span's context for every job's options (borrowed), or NULL */
} bullc__add_batch;
/* The probes' answers for one job, read before its script's reply. */
typedef struct bullc__add_probes_seen {
    bool job_existed;
    bool has_dedup_owner;
    sds dedup_owner;
} bullc__add_probes_seen;
/* 0 or BULLC_ENOMEM (free with bullc__add_batch_free either way). */
int bullc__add_batch_init(bullc__add_batch *b, bullc_bulk_job *jobs, size_t n, bool prefix_index, sds tm);
void bullc__add_batch_free(bullc__add_batch *b);
/* Prepares job b->prepared (checks it, builds its call for t->proto). */
int bullc__add_batch_prepare(bullc__add_batch *b, const bullc__add_target *t, bullc_error *err);
/* Job `i` again once the queue's major is known: checked by its rules when it
 * was prepared without them, its call built again for another major. */
int bullc__add_batch_rebuild(bullc__add_batch *b, size_t i, const bullc__add_target *t, bullc_error *err);
/* How many probes a job's add is preceded by in the MULTI. */
size_t bullc__add_probes(const bullc__prepared_job *pj);
/* Where a batch's commands go: `script` NULL for a plain command, else an
 * EVALSHA of `script` with these keys and args. 0 or a BULLC_E* code. */
typedef int (*bullc__add_emit_fn)(void *ctx, const bullc__script *script, int argc, const char *const *argv,
                                  const size_t *lens, bullc_error *err);
/* Emits job i's commands: its probes (EXISTS of a custom id's job, GET of
 * the deduplication key), then its add script call. */
int bullc__add_batch_emit(const bullc__add_batch *b, size_t i, const bullc__keys *ks, bullc__add_emit_fn emit,
                          void *ctx, bullc_error *err);
/* The add script's reply `r` for one job: 0 and job->id / job->status
 * (0 added, 1 an existing job's id, 2 added over a stale deduplication
 * key), or the error. */
int bullc__add_reply(const redisReply *r, const bullc__prepared_job *pj, const bullc__add_probes_seen *pr,
                     bullc_bulk_job *job, bullc_error *err);
/* EXEC's reply to the pending jobs' `queued` commands: each job's result
 * (the first failure is returned, its job's status set). A job whose script
 * met NOSCRIPT (a SCRIPT FLUSH since the load) did nothing and stays
 * pending, with *noscript set. */
int bullc__add_batch_exec(bullc__add_batch *b, const redisReply *r, size_t queued, bool *noscript, bullc_error *err);
/* After a failure: no job keeps an id, only the failing job its status. */
void bullc__add_batch_fail(bullc__add_batch *b);
/* Ends an add's producer span `s` (started when the add was called) as Node
 * names it, with the jobs' names and, for a single add, its id. */
void bullc__add_span_end(bullc_tracer *tracer, const bullc__span *s, const char *queue, const bullc_bulk_job *jobs,
                         size_t n, bool bulk);

/* ---- repeat5.c: 5.x's legacy repeatable jobs (Node 5's Repeat) --------------- */
/* One iteration to schedule, by Node 5's updateRepeatableJob. */
typedef struct bullc__repeat5 {
    cJSON *opts;         /* the job's options with `repeat` as the next job carries it (less count) */
    sds key, legacy_key; /* the repeat key (repeat.key or the md5 of the legacy one) and the legacy one */
    int64_t next;        /* the next time; 0: none (limit or end reached) */
    int64_t count;       /* the next job's repeat.count */
    bool immediately;    /* hasImmediately: the job runs at once */
    bool has_offset;     /* repeat.offset (every with immediately) */
    double offset;
} bullc__repeat5;
/* Plans the next iteration of `opts` (its repeat, prevMillis and jobId, by
 * their names either long or short: none of them is shortened). 0 with
 * p->next 0: no more iterations. Free with bullc__repeat5_free. */
int bullc__repeat5_plan(bullc__repeat5 *p, const char *name, const cJSON *opts, bullc_error *err);
void bullc__repeat5_free(bullc__repeat5 *p);
/* getRepeatConcatOptions: "name:jobId:endDate:tz:pattern|every". */
sds bullc__repeat5_concat(const char *name, const cJSON *repeat);
/* addRepeatableJob's packed {name, endDate, tz, pattern, every}. */
sds bullc__repeat5_pack_meta(const char *name, const cJSON *opts);
/* createNextJob: the job id for repeat key `rjk`, the time it is stamped
 * with and its delay, and its options (returned, owned; NULL: out of memory). */
cJSON *bullc__repeat5_next_opts(const bullc__repeat5 *p, const char *name, const char *data_json, const char *rjk,
                                sds *job_id, int64_t *now, double *delay);
/* Queue.add of a job with `repeat` on a 5.x queue as its two calls, for the
 * synchronous add (bullc__repeat5_add) and the asynchronous one
 * (aqueue_add.c) alike: addRepeatableJob, then the first iteration's add,
 * built from the first call's reply. */
typedef struct bullc__repeat5_calls {
    bullc__repeat5 plan;
    sds meta;
    char next[24];
    const bullc__script *script; /* the first call: addRepeatableJob's keys and args (into this struct) */
    int argc;
    const char *argv[BULLC__CALL_MAX_KEYS + 5];
    size_t lens[BULLC__CALL_MAX_KEYS + 5];
    cJSON *opts; /* the second: the iteration's options, job and add call */
    sds job_id;
    bullc__prepared_job pj;
    bullc__add_call call;
} bullc__repeat5_calls;
/* Plans the add of `job` (the queue's `defaults`, borrowed, merged under its
 * options) and builds the first call. 0 with c->plan.next 0: no iteration
 * left (Node adds nothing and returns no job). Free with
 * bullc__repeat5_calls_free whatever it returns; `c` must not move. */
int bullc__repeat5_first(bullc__repeat5_calls *c, const bullc__protocol *proto, const bullc__keys *ks,
                         const bullc_job_opts *defaults, const bullc_bulk_job *job, bullc_error *err);
/* The second call (c->call) from the first's reply `r` (an error reply is
 * returned as the error). */
int bullc__repeat5_second(bullc__repeat5_calls *c, const redisReply *r, const bullc__protocol *proto,
                          const bullc__keys *ks, const bullc_bulk_job *job, bullc_error *err);
/* The second call's reply: 0 and job->id (owned), or the error. */
int bullc__repeat5_result(const bullc__repeat5_calls *c, const redisReply *r, bullc_bulk_job *job, bullc_error *err);
void bullc__repeat5_calls_free(bullc__repeat5_calls *c);
/* Queue.add of a job with `repeat` on a 5.x queue (settled, connected), the
 * two calls in turn; job->id is NULL when no iteration is left. */
int bullc__repeat5_add(bullc_queue *q, bullc_bulk_job *job, bullc_error *err);

/* ---- flow_read.c ------------------------------------------------------------ */
/* Node's getFlow on connection `c`: job `id` of "<prefix>:<queue>" and its
 * children, `depth` levels, `max_children` of each kind. */
int bullc__flow_get(bullc__conn *c, const char *prefix, const char *queue, const char *id, int depth, int max_children,
                    char **out_json, bullc_error *err);

/* ---- aconn.c: an asynchronous connection on libuv ---------------------- */
/* It reconnects with backoff, replays AUTH/SELECT/CLIENT SETNAME on each
 * connect, and puts a deadline on every command: hiredis 0.14 has no async
 * timeouts, so a libuv timer drops a connection whose oldest command is
 * overdue. Its event-loop glue is uv_redis.c, its reply objects come from
 * reply_arena.c (private headers of their own: only aconn.c uses them). */
typedef struct bullc__aconn bullc__aconn;

/* A command's reply. `r` is NULL when the connection was lost or the command
 * timed out (then `err` says which); otherwise it may be an error reply. The
 * reply is freed after the callback returns. */
typedef void (*bullc__areply_fn)(bullc__aconn *c, redisReply *r, const bullc_error *err, void *data);

typedef struct bullc__acmd bullc__acmd;

struct bullc__aconn {
    uv_loop_t *loop;
    redisAsyncContext *ac;
    bullc_redis_opts *opts;
    char *name; /* CLIENT SETNAME, or NULL */
    enum {
        ACONN_IDLE,
        ACONN_RESOLVING, /* asking the sentinels, on libuv's thread pool */
        ACONN_CONNECTING,
        ACONN_READY,
        ACONN_WAIT_RETRY,
        ACONN_CLOSING,
        ACONN_CLOSED
    } state;
    uv_timer_t timer;         /* connect timeout, reconnect delay, command deadlines */
    bullc__acmd *head, *tail; /* commands sent, in reply order */
    unsigned attempts;        /* failed connects in a row (backoff) */
    int64_t connect_started;
    unsigned generation; /* successful connects so far */
    /* The generation the asynchronous add scripts (aqueue_add.c) were loaded
     * on, of 6.x [0] and of 5.x [1]: once per connection, however many
     * handles share it. */
    unsigned add_scripts[2];
    /* Hooks, all optional; `hook_data` is passed to each. */
    void (*on_ready)(bullc__aconn *c, void *data);
    void (*on_down)(bullc__aconn *c, const bullc_error *err, void *data);
    void (*on_closed)(bullc__aconn *c, void *data);
    void *hook_data;
    struct bullc__reply_arena *replies; /* where replies are built (reply_arena.c) */
    /* Through Sentinel: the master is looked up off the loop, on a copy of
     * the settings; a close waits for the lookup to end. */
    uv_work_t resolve;
    bullc_redis_opts *resolving;
    int resolve_rc;
    bullc_error resolve_err;
    /* Through Sentinel: a subscription to +switch-master on one sentinel
     * (aconn.c), so that a failover moves the connection at once, not only
     * when the old master drops it or answers READONLY. */
    redisAsyncContext *watch;
    bullc_redis_opts watch_tls; /* over TLS: the settings, naming the sentinel (borrowed strings) */
    size_t watch_next;          /* the sentinel to subscribe on next */
    int64_t watch_retry_at;     /* uv_now when a lost subscription is made again */
    bool switch_during_resolve;
    char switched_to[300]; /* "host:port" a +switch-master named, for the message */
    /* In a cluster: commands a MOVED, ASK, TRYAGAIN or CLUSTERDOWN answered
     * (they did not run), sent again once reconnected to the slot's master
     * or at resend_at (uv_now); `redirecting` keeps that reconnection from
     * being reported as a lost connection. */
    bullc__acmd *resend, *resend_tail;
    int64_t resend_at;
    unsigned redirect_tries; /* ASK / TRYAGAIN / CLUSTERDOWN pauses in a row (backoff) */
    bool redirecting;
    unsigned unlinked; /* commands taken off head..tail so far (bullc__aconn_forget's walk) */
    /* Optional, for a connection shared by the slots of one master: a MOVED
     * leaves it where it is and the command goes to the connection this
     * names for `slot` (host:port serves it now), sent there once that one
     * is ready; NULL (none to name): the command is retried here later. */
    bullc__aconn *(*on_moved)(bullc__aconn *c, int slot, const char *host, int port, void *data);
    /* A slot's order across a hand-over (on_moved): once another connection
     * handed commands over to this one, what is sent here waits on `held`
     * until that one (`held_for`) has answered, or lost, every command
     * written to it up to `held_until`: the slot's older commands, handed
     * over as their MOVED come in, are written here before its newer ones.
     * `holding` lists the connections held for this one (by hold_next). */
    uint64_t sent; /* commands written so far, each numbered by it */
    bullc__aconn *held_for, *holding, *hold_next;
    uint64_t held_until;
    bullc__acmd *held, *held_tail;
};

/* Sets `c` up on `loop` with a copy of `opts` and of `name`; nothing is sent
 * before bullc__aconn_start. On failure (BULLC_ENOMEM) `c` holds nothing and
 * counts as closed: bullc__aconn_close does nothing (on_closed does not run)
 * and `c` may be freed at once. Loop thread. */
int bullc__aconn_init(bullc__aconn *c, uv_loop_t *loop, const bullc_redis_opts *opts, const char *name,
                      bullc_error *err);
/* The connection of one queue's handle (aqueue.c, events.c): `opts` (NULL:
 * the defaults) aimed, in a cluster, at the slot of "<prefix>:<name>"
 * (BULLC_EINVAL when neither carries a hash tag), and named as Node names
 * that queue's connection ("<prefix>:<base64(name)><suffix>"). Same
 * contract as bullc__aconn_init. */
int bullc__aconn_init_queue(bullc__aconn *c, uv_loop_t *loop, const bullc_redis_opts *opts, const char *prefix,
                            const char *name, const char *suffix, bullc_error *err);
/* Starts connecting (and reconnecting whenever the connection is lost). */
void bullc__aconn_start(bullc__aconn *c);
bool bullc__aconn_ready(const bullc__aconn *c);
/* Sends a command (any number of arguments) when the connection is ready: returns 0 and `cb` runs
 * exactly once; otherwise returns BULLC_ECONN and `cb` never runs.
 * `timeout_ms` <= 0 uses the command timeout of the settings. */
int bullc__aconn_cmd(bullc__aconn *c, int64_t timeout_ms, bullc__areply_fn cb, void *data, int argc, const char **argv,
                     const size_t *lens);
/* EVALSHA of a BullMQ script (argv = keys then args); on NOSCRIPT it is sent
 * again as EVAL, transparently. Same contract as bullc__aconn_cmd. */
int bullc__aconn_eval(bullc__aconn *c, const bullc__script *s, int64_t timeout_ms, bullc__areply_fn cb, void *data,
                      int argc, const char **argv, const size_t *lens);
/* As bullc__aconn_cmd and _eval, the command belonging to `owner` (any
 * address; NULL: none), for bullc__aconn_forget. */
int bullc__aconn_cmd_for(bullc__aconn *c, const void *owner, int64_t timeout_ms, bullc__areply_fn cb, void *data,
                         int argc, const char **argv, const size_t *lens);
int bullc__aconn_eval_for(bullc__aconn *c, const void *owner, const bullc__script *s, int64_t timeout_ms,
                          bullc__areply_fn cb, void *data, int argc, const char **argv, const size_t *lens);
/* The owner of commands in flight goes away while the connection stays (a
 * queue handle closed on a shared connection): the callback of each of its
 * commands runs now, with r == NULL and `why`, and never again; the replies
 * are read and dropped when they come. Loop thread, never from a reply
 * callback of `c` with this owner's command in progress. */
void bullc__aconn_forget(bullc__aconn *c, const void *owner, const bullc_error *why);
/* Closes for good: pending callbacks run with r == NULL, then on_closed runs
 * once the libuv handles are closed; only then may `c` be freed. */
void bullc__aconn_close(bullc__aconn *c);

/* ---- aqueue.c / aqueue_add.c: calls made outside aqueue.c ---------------- */
/* A call that waits in the aqueue's queue like its getters (for the
 * connection and the queue's major): `send` runs on the loop once both are
 * there (0: the call is sent and answers itself; else its code, with `err`
 * filled, and `fail` runs later); `fail` runs instead, once, when the call
 * cannot be sent (Redis down, the handle closed). */
typedef struct bullc__aq_ext {
    int (*send)(bullc_aqueue *q, void *ext, bullc_error *err);
    void (*fail)(bullc_aqueue *q, void *ext, int rc, const bullc_error *err);
} bullc__aq_ext;
/* 0, BULLC_ECLOSED or BULLC_ENOMEM (then nothing runs). */
int bullc__aqueue_enqueue(bullc_aqueue *q, const bullc__aq_ext *ops, void *ext);
bullc__aconn *bullc__aqueue_conn(bullc_aqueue *q);
const bullc__keys *bullc__aqueue_keys(const bullc_aqueue *q);
const bullc__protocol *bullc__aqueue_proto(const bullc_aqueue *q); /* NULL: not settled yet */
int bullc__aqueue_explicit_major(const bullc_aqueue *q);
bool bullc__aqueue_write_version(const bullc_aqueue *q);
bool bullc__aqueue_closing(const bullc_aqueue *q);
/* The producer's settings and per-connection state of an aqueue's adds. */
typedef struct bullc__aq_adds bullc__aq_adds;
bullc__aq_adds *bullc__aqueue_adds(bullc_aqueue *q);
/* `name`: the queue's, for its add spans. NULL: out of memory. */
bullc__aq_adds *bullc__aq_adds_new(const bullc_queue_opts *opts, const char *name);
void bullc__aq_adds_free(bullc__aq_adds *a);

/* ---- aqueue_conn.c: connections shared by asynchronous queue handles ---- */
/* An aqueue's place in its node's list of users. */
typedef struct bullc__aq_link {
    struct bullc__aq_link *prev, *next;
    bullc_aqueue *q;
} bullc__aq_link;

/* One connection of a bullc_aqueue_conn (one per cluster master) and the
 * aqueues whose calls it carries; `down` and `down_err` say whether its
 * last connect failed or it was lost (for the aqueues that attach later). */
typedef struct bullc__aq_node {
    bullc__aconn conn;
    bullc_aqueue_conn *owner;
    bullc__aq_link *users;
    bool down;
    bullc_error down_err;
} bullc__aq_node;

/* A connection set of one queue's handle (bullc_aqueue_new): one node, aimed
 * at the queue's slot in a cluster, named as Node's Queue's. Closed and
 * freed through the public calls. */
int bullc__aqueue_conn_own(bullc_aqueue_conn **out, uv_loop_t *loop, const bullc_redis_opts *opts, const char *prefix,
                           const char *name, bullc_error *err);
uv_loop_t *bullc__aqueue_conn_loop(const bullc_aqueue_conn *c);
/* Puts `link` on the node that serves queue "<prefix>:<name>" (in a
 * cluster, its slot's master's) into *node. BULLC_EINVAL (no hash tag in a
 * cluster), BULLC_ECLOSED (the set is closing) or BULLC_ENOMEM. */
int bullc__aqueue_conn_attach(bullc_aqueue_conn *c, bullc__aq_link *link, const char *prefix, const char *name,
                              bullc__aq_node **node, bullc_error *err);
/* Takes `link` off its node; the set closes if it was asked to and this was
 * its last user. */
void bullc__aqueue_conn_detach(bullc_aqueue_conn *c, bullc__aq_node *node, bullc__aq_link *link);
/* aqueue.c: `q`'s calls go over `node` from now on (a cluster's map came
 * after the handle was made: none was sent on the node it waited on). */
void bullc__aqueue_set_node(bullc_aqueue *q, bullc__aq_node *node);
/* aqueue.c: the node of `q` became ready (`down` NULL) or went down. */
void bullc__aqueue_node_event(bullc_aqueue *q, const bullc_error *down);

/* ---- worker_group.c ------------------------------------------------------ */
/* A command connection of a group: one per lane outside a cluster; on Redis Cluster
 * one per master serving the group's slots (`fixed`: aimed at that master,
 * known from the slot map or a MOVED, and shared by the lanes of its slots;
 * else aimed at one lane's slot, found as any connection finds it). */
typedef struct bullc__gnode {
    bullc__aconn conn;
    bullc_worker_group *g;
    bool fixed;
    bool waiting; /* never started: the lanes made before the slot map came wait on it */
} bullc__gnode;

/* A binary min-heap of a lane's members on g_poll_due (worker_group_wait.c);
 * a member's g_due is 1 + its index. */
typedef struct bullc__wheap {
    bullc_worker **at;
    int n, cap;
} bullc__wheap;

/* A group's blocking connection, with the BZPOPMIN state of the members it
 * serves, and the command connection they use. Outside a cluster a group
 * has one lane per LANE_MEMBERS members, at most PLAIN_LANES (worker_group.c); on Redis Cluster one per hash slot its
 * members' queues are in (a BZPOPMIN over many keys must name keys of one slot). */
typedef struct bullc__lane {
    bullc_worker_group *g;
    int slot;           /* the slot it was made for; -1 outside a cluster */
    bool live;          /* its blocking connection and its timers were set up */
    bullc__gnode *node; /* the command connection of its slot's master */
    bullc__aconn block;
    bullc_worker *members; /* a list through gprev/gnext */
    int nmembers;
    bullc_worker *idle; /* members waiting for their marker: a ring through g_inext/g_iprev, oldest first */
    int nidle;
    /* the waiting members in two binary min-heaps on g_poll_due: `due`
     * without a delayed job (their drain-delay polls: a poll tick looks at
     * those due only), `delayed` with one; a reply wakes those due from
     * both. Room for every member is kept (bullc__group_lane). */
    bullc__wheap due, delayed;
    bullc_worker **mk; /* the members by marker key: nmk buckets chained through g_mnext */
    int nmk;
    bullc_worker **snap; /* the keys of the BZPOPMIN in flight, in order (NULL: left the group since) */
    int nsnap, cap_snap;
    bullc_worker **back; /* members a reply took out of the waiting ones, named in the next BZPOPMIN too */
    int nback, cap_back;
    int64_t block_due;  /* ms since the epoch: when the BZPOPMIN in flight times out */
    bullc_worker *rot;  /* the waiting member the next BZPOPMIN's keys start at, for fairness (NULL: the oldest) */
    bool blocking;      /* a BZPOPMIN is in flight */
    bool replying;      /* its reply is being handled (a new one follows: no kick) */
    bool unblocking;    /* a CLIENT UNBLOCK is in flight or due */
    long long block_id; /* the blocking connection's CLIENT ID (0: unknown) */
    int64_t poll_at;    /* ms since the epoch: when poll_timer fires (0: not running) */
    double min_block;
    bool integer_block;
    bool said_heap_full; /* the poll heap's "cannot be" was said (due_sync) */
    uv_timer_t join_timer, unblock_timer, poll_timer;
} bullc__lane;

/* A FIFO ring of a group's members (worker_group_turns.c); a member that leaves is
 * NULLed in place. */
typedef struct bullc__wring {
    bullc_worker **at;
    int head, n, cap;
} bullc__wring;

struct bullc_worker_group {
    uv_loop_t *loop;
    bullc_redis_opts *redis; /* a copy: lanes are made as members join */
    bullc__lane **lanes;
    int nlanes;
    bullc__gnode **nodes; /* the command connections */
    int nnodes;
    /* in a cluster, read on the loop when the first lane is made
     * (cluster_map.c): each slot's master (an index into masters; 0xFFFF:
     * none); NULL until it came. The lanes made meanwhile wait on wait_node. */
    uint16_t *slot_node;
    bullc_redis_opts *masters;
    size_t nmasters;
    bullc__map_read *map_read; /* the read under way (NULL: none) */
    bullc__gnode *wait_node;
    int nmembers;
    int max_active, active, fetching; /* the process-wide cap (0: none), jobs in process, moveToActive out */
    bullc__wring want;                /* members held back by the cap, in turn order */
    bullc_worker *granted;            /* the member being given a free slot in turn */
    unsigned stagger_poll;            /* the members' poll phases, in the order they waited first */
    /* members whose first stalled check is due, in the order they came
     * ready: sent a few a millisecond (bullc__group_stalled_due) */
    bullc__wring stalled;
    uint64_t stalled_at; /* uv_now of the last batch */
    uv_timer_t slot_timer, stalled_timer;
    int handles_open;
    bool closing;
    void (*close_cb)(bullc_worker_group *g, void *data);
    void *close_data;
};

/* ---- worker.c, job.c, locks.c ---------------------------------------- */
typedef struct bullc__jobop bullc__jobop;
typedef struct bullc__finish bullc__finish;

enum { BULLC__JOB_PROCESSING, BULLC__JOB_FINISHING, BULLC__JOB_FINISHED };

struct bullc_job {
    bullc_worker *w;
    sds id, name, data, opts_json, token, key, progress, defa, stacktrace, rjk;
    cJSON *opts; /* parsed stored opts, long names */
    int64_t timestamp, processed_on, attempts_made, attempts_started, priority, delay;
    sds bad; /* why the hash cannot be processed (corrupt data), or NULL */
    int state;
    bool processor_done; /* the processor handed the job back */
    bool lock_lost, timed_out;
    bool moved;          /* its processor moved it to delayed or waiting-children: the lock is gone, nothing to store */
    int64_t lock_ts;     /* uv_now of the last lock renewal */
    int64_t started;     /* uv_now when processing started */
    uint64_t started_ns; /* uv_hrtime then: the duration histogram wants sub-ms times */
    bullc__span span;    /* the process span, when the worker traces */
    /* A blocking processor: uv_hrtime() / 1e6 when a pool thread took the job
     * (0 while it waits for one; written by that thread). The timeout counts
     * from there: a job cannot be late before it runs. */
    _Atomic int64_t run_started;
    bool stuck; /* timed out while its processor runs: it keeps its slot until that returns */
    /* cancel.c: set once on the loop thread (the reason first), read by
     * blocking processors on pool threads */
    _Atomic bool cancelled;
    sds cancel_reason;
    bullc_job_cancel_cb cancel_cb; /* registered by an asynchronous processor, not run yet */
    void *cancel_data;
    int ops_pending;    /* job actions sent, not yet answered: the finish waits for them */
    bullc__finish *fin; /* the pending move out of active */
    /* bullc_job_move_to_completed / _failed: the caller's answer, due once
     * the move is stored (with the next job it fetched) or failed */
    struct bullc__manual_ctx *next_req;
    bool next_fetch; /* ... and it asked for the next job in the same call */
    bullc_job *prev, *next;
    uv_work_t work;
    bullc_job_result result;
    /* job.c: the options the worker reads per job, found while parsing them
     * (the first member of each name, as cJSON_GetObjectItemCaseSensitive
     * finds it; NULL when absent). They point into `opts`. */
    const cJSON *o_attempts, *o_remove_on_complete, *o_remove_on_fail, *o_lifo, *o_stack_trace_limit, *o_keep_logs;
    const cJSON *o_parent[4]; /* failParentOnFailure, continueParentOnFailure, ignore-, removeDependencyOnFailure */
};

/* worker_trace.c: the worker's "process <queue>" span of a job, started
 * when processing starts and ended when its finish was stored (`kind`:
 * 0 completed, 1 failed, with the result JSON or the reason). */
void bullc__trace_job_start(bullc_worker *w, bullc_job *job);
void bullc__trace_job_end(bullc_worker *w, bullc_job *job, bool completed, const char *value);

/* stats.c: what bullc_worker_stats reports; loop thread only. */
enum { BULLC__DURATION_BUCKETS = 12 }; /* Prometheus' 11 default bounds, then +Inf */
typedef struct bullc__wstats {
    uint64_t completed, failed, lock_lost, stalled, reconnects;
    uint64_t duration_count, duration_buckets[BULLC__DURATION_BUCKETS]; /* per bucket, not cumulative */
    double duration_sum;
    bool cmd_ready_once;
} bullc__wstats;
/* A job's processing took `seconds` (its finish was stored). */
void bullc__wstats_duration(bullc__wstats *s, double seconds);

struct bullc_worker {
    uv_loop_t *loop;
    /* own_cmd/own_block, or a group's shared pair (worker_group.c) */
    bullc__aconn *cmd, *block;
    bullc__aconn *own;               /* its own command and blocking connections, allocated only outside a group */
    bullc_worker_group *group;       /* NULL: the worker's own two connections */
    bullc__lane *lane;               /* the group's connections it is served by */
    bullc_worker *gprev, *gnext;     /* in the group's members */
    bool g_idle;                     /* in the group's waiting members */
    bullc_worker *g_inext, *g_iprev; /* its neighbours in that ring */
    int g_snap;                      /* index in the keys of the group's BZPOPMIN in flight, -1: not in it */
    bool g_pending;                  /* that BZPOPMIN took its marker while it was not waiting */
    int64_t g_pending_score;         /* the marker's score, handled when it waits next */
    int64_t g_poll_due;              /* ms since the epoch: poll once then (drain delay) without a marker */
    bool g_ready_due;                /* the group's command connection is ready: run this worker's ready steps */
    bool g_wanting;                  /* held back by the group's cap, in its turn ring */
    bool g_waited;                   /* it waited once: its drain-delay polls have their phase */
    bool g_stalled_due;              /* in the group's ring of first stalled checks */
    int g_due;                       /* 1 + its index in its lane's heap of waiting members; 0: in none */
    bool g_delayed;                  /* that heap is `delayed` (else `due`) */
    bullc_worker *g_mnext;           /* the next member in its lane's marker-key bucket */
    bool stalled_first;              /* a member's stalled checker runs, its first check is not sent yet */
    sds queue, prefix, name;
    sds qualified_name;           /* "<prefix>:<queue>", Node's queueQualifiedName */
    bullc__keys keys;             /* keys.k[BULLC__K_BASE] is "<prefix>:<queue>:" */
    const bullc__protocol *proto; /* the BullMQ major spoken to this queue */
    bool settled;                 /* proto read from the queue's meta.version once */
    bool version_stopped;         /* meta.version conflicts: fetch nothing more */
    bool cmd_settling;            /* the command connection is up, its meta.version read not answered */
    char id[37];
    uint64_t token_seq;
    bullc_worker_opts o;
    cJSON *keep_complete, *keep_fail; /* worker-level keepJobs objects or NULL */
    bullc_worker_events ev;
    void *ev_data;
    bullc_job *jobs; /* being processed or finished in Redis but not yet handed back */
    int in_flight;   /* jobs holding a concurrency slot */
    int fetching;    /* moveToActive calls (or fetch-next finishes) outstanding */
    bool blocking, drained, running, paused, closing, forced, closed_cmd;
    bool pause_pending, pause_done;   /* the paused event is due / ran (see bullc__worker_maybe_paused) */
    int64_t block_until, limit_until; /* ms since the epoch */
    double min_block;                 /* seconds: 0.001 on Redis >= 7.0.8, else 0.002 */
    bool integer_block;               /* Redis < 6: whole seconds only */
    uv_timer_t wake_timer, stalled_timer, lock_timer, deferred_timer;
    /* started by few workers (a close's timeout, the job timeout watchdog,
     * result resends): allocated on first start (bullc__worker_timer), 152
     * bytes each, 2 MB for 5,000 queues */
    uv_timer_t *close_timer, *watchdog_timer, *retry_timer;
    struct bullc__manual_ctx *deferred;     /* bullc_worker_get_next_job answers due on the next loop turn */
    struct bullc__sched_call *sched_parked; /* next iterations to schedule once reconnected */
    uv_async_t ops_async;
    uv_mutex_t ops_mutex;
    bullc__jobop *ops_head, *ops_tail;
    /* progress, logs and data updates made while Redis is away, in the
     * order they were made (loop thread only), sent once it is back */
    bullc__jobop *parked_head, *parked_tail;
    int nparked;
    uint64_t op_seq;
    uv_thread_t loop_thread; /* compared with uv_thread_equal */
    int handles_open;
    int conns_open;
    void (*close_cb)(bullc_worker *w, void *data);
    void *close_data;
    int64_t last_error_at; /* a repeated error event is held back for a while */
    int errors_suppressed, last_error_code;
    int close_left;   /* jobs (and fetches) the close left active */
    char *last_error; /* NULL until the first */
    /* process.c: the parts of moveToFinished's packed options that are the
     * same for every job, built on first use; freed with the worker. */
    sds fin_opts[6];
    /* tokens of fetches (moveToActive, or a finish that asked for the next
     * job) whose reply was lost: Redis may have locked a job with one; looked
     * for (bullc__adopt) once the command connection is back */
    sds *lost_fetches;
    int nlost_fetches;
    bullc__wstats stats;
    bullc_cancel_listener *cancel_listener; /* cancel_channel.c: the one it joined, or NULL */
};

/* job.c; takes `token` (freed on failure too) */
bullc_job *bullc__job_from_reply(bullc_worker *w, const redisReply *hash, const redisReply *id, sds token);
void bullc__job_free(bullc_job *job);
/* Runs the cross-thread job actions queued by blocking processors. */
void bullc__jobops_drain(bullc_worker *w);
/* The connection is back: the parked actions go out, in order. */
void bullc__jobops_send_parked(bullc_worker *w);
/* A forced close: the parked actions are dropped. */
void bullc__jobops_drop_parked(bullc_worker *w);
/* How many job actions are kept while Redis is away (docs/reliability.md). */
enum { BULLC__PARKED_MAX = 10000 };
void bullc__jobops_async_cb(uv_async_t *h);
/* worker.c */
void bullc__worker_pump(bullc_worker *w);
/* Starts one of the worker's timers allocated on first use (`*slot`, one of
 * w->close_timer...); BULLC_ENOMEM, or BULLC_ECLOSED once its handles are
 * closing. Loop thread. */
int bullc__worker_timer_start(bullc_worker *w, uv_timer_t **slot, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
/* moveToActive's packed options with `token` (also a fetch-next's); NULL
 * when out of memory. */
sds bullc__worker_fetch_opts(const bullc_worker *w, const char *token);
/* takes `token` */
void bullc__worker_handle_next(bullc_worker *w, const redisReply *r, sds token);
/* No job was there to take: the worker blocks on its next fetch (the
 * drained event, once per run of empty answers). */
void bullc__worker_drained(bullc_worker *w);
void bullc__worker_maybe_closed(bullc_worker *w);
void bullc__worker_maybe_paused(bullc_worker *w);
/* The reply of a fetch under `token` was lost (copied; adopted once the
 * command connection is back). */
void bullc__worker_lost_fetch(bullc_worker *w, const char *token);
/* A caller waiting for a next job (bullc_worker_get_next_job's request, also
 * used by bullc_job_move_to_completed / _failed): made with a copy of
 * `token` (NULL when out of memory); answered once, by _reply (a reply
 * holding the next job or none, on a reply callback) or _fail (on the next
 * loop turn, with `code` and no job), which free it. */
struct bullc__manual_ctx *bullc__worker_next_req(bullc_worker *w, const char *token, bullc_next_job_cb cb, void *data);
void bullc__worker_next_req_reply(struct bullc__manual_ctx *m, const redisReply *r);
void bullc__worker_next_req_fail(struct bullc__manual_ctx *m, int code);
/* cancel.c: the processor handed `job` back; a cancel callback still
 * registered runs now, told the job was not cancelled. */
void bullc__cancel_settle(bullc_job *job);
/* process.c */
/* A job just taken is the worker's: listed, counted in flight, locked now. */
void bullc__process_track(bullc_worker *w, bullc_job *job);
void bullc__process_start(bullc_worker *w, bullc_job *job);
void bullc__process_resend(bullc_worker *w);
/* A forced close gives up the results waiting for Redis to come back (their
 * jobs are left to stalled recovery), or it would wait for ever. */
void bullc__process_drop_parked(bullc_worker *w);
void bullc__process_resend_timer(uv_timer_t *t);
/* A job action (progress, log...) of `job` was answered. */
void bullc__process_op_done(bullc_job *job);
/* adopt.c: a fetch under `token` answered an error; the job it may have
 * taken anyway (active, locked with `token`) is found and processed. */
void bullc__adopt(bullc_worker *w, const char *token);
/* Whether an error reply came from inside a running script (which may have
 * written before it), not from Redis refusing to run it (BUSY, LOADING...). */
bool bullc__script_runtime_error(const bullc_error *err);
/* The job's lock is gone: free its slot without writing anything. */
void bullc__process_abandon(bullc_job *job);
/* backoff.c: Node's Backoffs.calculate, as a JavaScript number (any size:
 * 1e19 or Infinity are delays Node passes on); -1: no retry */
double bullc__backoff_delay(bullc_worker *w, const bullc_job *job, int64_t attempts_made, const char *error);
/* The one reconnect / retry policy of every connection (docs/connection.md):
 * the wait before retry number `attempt` (from 1), drawn uniformly from
 * [d/2, d] where d = base_ms doubled `attempt` times, at most cap_ms: for
 * reconnects 100-200 ms first, up to 1-2 s; for a cluster's ASK, TRYAGAIN
 * and CLUSTERDOWN 25-50 ms first, up to 400-800 ms. Any thread. */
enum {
    BULLC__RECONNECT_BASE_MS = 100,
    BULLC__RECONNECT_CAP_MS = 2000,
    BULLC__REDIRECT_BASE_MS = 25,
    BULLC__REDIRECT_CAP_MS = 800,
};
uint64_t bullc__retry_delay_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms);
void bullc__worker_error(bullc_worker *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* process.c: the job's processing ended (processor result, timeout, defa). */
void bullc__process_end(bullc_job *job, bool ok, const char *value, int fail_flags);
/* locks.c */
void bullc__locks_start(bullc_worker *w);
void bullc__locks_stop(bullc_worker *w);
void bullc__stalled_start(bullc_worker *w);
/* A group member's command side is ready (its meta.version read): its first
 * stalled check, if still to come, is queued in the group's ring. */
void bullc__stalled_ready(bullc_worker *w);
/* The group's turn for the member's first stalled check: sent (unless the
 * member is paused) and its interval timer started; true when sent. False,
 * and nothing done, when its command connection is down again (queued anew
 * by its next ready) or it is closing. */
bool bullc__stalled_first(bullc_worker *w);

/* queue.c: the handle's keys. */
const bullc__keys *bullc__queue_keys(const bullc_queue *q);
/* queue.c: the handle's default job options, or NULL. */
const bullc_job_opts *bullc__queue_default_opts(const bullc_queue *q);
/* The queue's repeat strategy (NULL: none) and its data. */
bullc_repeat_strategy_fn bullc__queue_repeat_strategy(const bullc_queue *q, void **data);
/* queue.c: the settings the handle connects with (for checks.c's own connection). */
const bullc_redis_opts *bullc__queue_redis_opts(const bullc_queue *q);

/* worker_group.c, worker_group_wait.c, worker_group_turns.c: many workers on one command and one
 * blocking connection. */
/* The lane of the group serving queue `prefix`:`queue` (made, and its
 * connections started, when it is the first of its slot): 0, or
 * BULLC_EINVAL (no hash tag on a cluster), BULLC_ECLOSED, BULLC_ENOMEM. */
int bullc__group_lane(bullc_worker_group *g, const char *prefix, const char *queue, bullc__lane **out,
                      bullc_error *err);
/* Joins/leaves the group's members (bullc_worker_new / the close); w->lane
 * is set before the join. */
void bullc__group_join(bullc_worker_group *g, bullc_worker *w);
void bullc__group_leave(bullc_worker_group *g, bullc_worker *w);
/* Queues the member's first stalled check: the group sends a few a
 * millisecond, in the order they came (bullc__stalled_first), not all at once. */
void bullc__group_stalled_due(bullc_worker_group *g, bullc_worker *w);
/* The worker's queue is drained: wait for its marker on the group's blocking
 * connection (w->blocking is set); bullc__worker_block_done runs once. */
void bullc__group_wait(bullc_worker_group *g, bullc_worker *w);
/* Stops waiting (a close): w->blocking is cleared, nothing runs. */
void bullc__group_unwait(bullc_worker_group *g, bullc_worker *w);
/* Whether the process-wide cap leaves no slot: the worker is queued and
 * pumped when one frees (round-robin across the group's workers). */
bool bullc__group_full(bullc_worker_group *g, bullc_worker *w);
/* A job of a member took / left a slot (in_flight went up / down). */
void bullc__group_slot_taken(bullc_worker_group *g);
void bullc__group_slot_freed(bullc_worker_group *g);
/* Whether workers wait for a slot under the cap: a finishing job then
 * leaves its slot to them instead of fetching its queue's next job. */
bool bullc__group_contended(const bullc_worker_group *g);
/* A member's moveToActive went out / came back (the cap counts it). */
void bullc__group_fetch(bullc_worker_group *g, int delta);
/* worker.c: the shortest BZPOPMIN timeout the server takes, and whether it
 * takes whole seconds only, from an INFO server reply (unchanged when it is
 * not one: INFO may be forbidden). */
void bullc__worker_info_limits(const redisReply *r, double *min_block, bool *integer_block);
/* worker.c: loads the worker scripts of `proto` on `c`. */
void bullc__worker_preload(bullc__aconn *c, const bullc__protocol *proto);
/* The group's Redis facts for its workers' BZPOPMIN timeouts. */
void bullc__group_block_limits(const bullc__lane *l, double *min_block, bool *integer_block);
/* worker.c: the group's command connection is ready (its scripts loaded):
 * the worker's own ready steps (meta.version, resends, pump). */
void bullc__worker_cmd_ready(bullc_worker *w);
void bullc__worker_block_ready(bullc_worker *w);
/* A wait ended: `r` the BZPOPMIN reply ([key, member, score] or nil), or
 * NULL when the blocking connection failed. */
void bullc__worker_block_done(bullc_worker *w, const redisReply *r);

/* worker.c: meta.version read again (at each stalled-jobs check): a change
 * of major stops the worker's fetching with an error event. */
void bullc__worker_check_version(bullc_worker *w);

/* ---- admin.c / events.c ---- */
/* queue.c: the handle's connection, connected (and the queue's meta written
 * once per connection unless the handle skips it), as an add would. */
int bullc__queue_conn(bullc_queue *q, bullc__conn **out, bullc_error *err);
/* The protocol the queue speaks (its major is resolved on the first connection). */
const bullc__protocol *bullc__queue_proto(const bullc_queue *q);
/* The major set with bullc_queue_opts_set_bullmq_version (0: auto). */
int bullc__queue_explicit_major(const bullc_queue *q);

/* ---- scheduler.c, sched_worker.c: job schedulers ---------------------- */
/* cron-parser's next time of `pattern` in zone `tz` (NULL: UTC) after
 * `from` (epoch ms); BULLC_ENOTFOUND when there is none. */
int bullc__sched_cron_next(const char *pattern, const char *tz, int64_t from, int64_t *next, bullc_error *err);
/* Node's repeatStrategy(millis, repeat, name) through a caller's function:
 * 0 and *next (never before millis), 1 for no time, or its error. */
int bullc__sched_strategy_next(bullc_repeat_strategy_fn fn, void *data, int64_t millis, const cJSON *repeat,
                               const char *name, int64_t *next, bullc_error *err);
/* Node's getNextJobOpts over `opts` (an iteration's stored options, short
 * names; taken): its jobId, delay, timestamp, prevMillis, repeatJobKey and
 * `repeat` (taken) with offset, count, startDate, endDate. `next` NULL: an
 * `every` scheduler (the script computes the time); `offset` NULL: none.
 * NULL when out of memory (both are freed). */
cJSON *bullc__sched_iteration_opts(cJSON *opts, const char *id, const int64_t *next, cJSON *repeat, int64_t count,
                                   const double *offset, int64_t now);
/* A copy of a job's stored options as Node's Job constructor holds them
 * ({attempts: 0, ...opts} less repeatJobKey, which it keeps apart); NULL:
 * out of memory. */
cJSON *bullc__sched_job_opts(const cJSON *stored);
/* A JSON value packed with msgpack, as an sds (NULL: out of memory). */
sds bullc__sched_pack(const cJSON *v);
/* The worker took `job`, an iteration of a scheduler (job->rjk): schedules
 * the next one as Node's worker does (updateJobScheduler, override false,
 * the job's id as producer). Loop thread. */
/* Node's hasLegacyRepeatableKeyShape: a BullMQ 5 repeatable job's key
 * ("name:id:endDate:tz:<cron|every>"), which 6.x refuses with this message. */
bool bullc__sched_legacy_shape(const char *key);
#define BULLC__SCHED_LEGACY_MSG                                                                                   \
    "Legacy repeatable job metadata is not supported in BullMQ v6 (key: \"%s\"). Migrate legacy repeatable jobs " \
    "to Job Schedulers before upgrading. See https://docs.bullmq.io/guide/migrations/migrate-from-v5-to-v6"
void bullc__sched_next(bullc_worker *w, const bullc_job *job);
/* The same; `then(arg)` runs once on the loop thread when the scheduling is
 * done or given up (never inside this call unless it fails at once). */
void bullc__sched_next_then(bullc_worker *w, const bullc_job *job, void (*then)(void *arg), void *arg);
/* Schedules again what a lost connection left unscheduled (Node's worker
 * retries the upsert until Redis is back); on a forced close, gives it up. */
void bullc__sched_resend(bullc_worker *w);
void bullc__sched_drop_parked(bullc_worker *w);

/* ---- args.c ----------------------------------------------------------- */
/* A growing argument vector for commands and scripts; strings are borrowed
 * unless added with an _own/_key/_i64 call. */
typedef struct bullc__args {
    int argc, cap;
    const char **argv;
    size_t *lens;
    sds *owned;
    int nowned, capowned;
    bool oom;
    int rc;          /* bullc__args_call could not reach the queue: reported when run */
    bullc_error err; /* its message */
} bullc__args;
void bullc__args_init(bullc__args *a);
void bullc__args_free(bullc__args *a);
void bullc__args_add(bullc__args *a, const char *s);
void bullc__args_addn(bullc__args *a, const char *s, size_t len);
void bullc__args_own(bullc__args *a, sds s); /* takes `s` */
/* The key of job `id` ("<prefix>:<queue>:<id>"). */
void bullc__args_job_key(bullc__args *a, bullc_queue *q, const char *id);
void bullc__args_i64(bullc__args *a, int64_t v);
/* A key of the queue's key set, borrowed. */
void bullc__args_qkey(bullc__args *a, bullc_queue *q, bullc__key_id k);
/* Starts `a` (uninitialised) with the keys of call `c`: the queue's, the
 * keys of job `job_id`, the key of `state` (a bullc__key_id) for the caller's.
 * Connects first: the keys depend on the major the queue settles on. */
void bullc__args_call(bullc__args *a, bullc_queue *q, bullc__call_id c, const char *job_id, int state);
/* The same keys from a key set and a protocol, for a handle without a
 * bullc_queue (aqueue.c): `a` is started here. */
void bullc__args_call_keys(bullc__args *a, const bullc__protocol *p, const bullc__keys *ks, bullc__call_id c,
                           const char *job_id, int state);
/* Runs call `c` with `a` (BULLC_ENOMEM if building it failed). */
int bullc__args_eval(bullc_queue *q, bullc__call_id c, bullc__args *a, redisReply **reply, bullc_error *err);
/* Runs call `c` whose script answers one integer (nil: 0) and frees `a`. */
int bullc__args_eval_int(bullc_queue *q, bullc__call_id c, bullc__args *a, long long *out, bullc_error *err);
int bullc__args_cmd(bullc_queue *q, bullc__args *a, redisReply **reply, bullc_error *err);

/* ---- getters.c -------------------------------------------------------- */
/* `s` with SCAN MATCH's glob characters escaped (NULL: out of memory). */
sds bullc__glob_escape(const char *s);
/* Shared by the synchronous getters and aqueue.c, so that both send the same
 * calls and read their replies alike. Node's sanitizeJobTypes in two halves:
 * bullc__states_check validates `states` (NULL/0: Node's defaults, then
 * *defaults is set) and drops duplicates into *names (malloc'd, the caller
 * frees it; borrowed strings, room for bullc__states_for's additions) and
 * returns the count or a negative error; bullc__states_for, once the major
 * is known, adds what 5.x lists ("paused") and returns the new count. */
int bullc__states_check(const char *const *states, size_t n, const char ***names, bool *defaults, bullc_error *err);
int bullc__states_for(const bullc__protocol *p, const char **names, int k, bool defaults);
/* getCounts' ARGV (after its keys) for checked state names. */
void bullc__counts_args(bullc__args *a, const char *const *names, size_t n);
/* getCounts' reply into counts[n]. */
int bullc__counts_read(const redisReply *r, size_t n, int64_t *counts, bullc_error *err);
/* getJobCounts' JSON object ({name: count}) in *out_json (malloc'd). */
int bullc__counts_json(const char *const *names, const int64_t *counts, size_t n, char **out_json, bullc_error *err);
/* getJob's JSON from the HGETALL reply of job `id` (BULLC_ENOTFOUND when empty). */
int bullc__job_reply(const char *id, const redisReply *r, char **out_json, bullc_error *err);

/* ---- admin.c ---------------------------------------------------------- */
/* Hands JSON to the caller (malloc'd text); frees `json`. */
int bullc__json_out(cJSON *json, char **out, bullc_error *err);
/* Checks a job id argument (not NULL or empty). */
int bullc__check_job_id(const char *id, bullc_error *err);
/* Whether the job hash exists: 1, 0, or an error. */
int bullc__job_exists(bullc_queue *q, const char *id, bullc_error *err);
/* BULLC_ENOTFOUND, "job <id> not found". */
int bullc__job_not_found(const char *id, bullc_error *err);
/* The Redis key suffix of a Node state name ("waiting" -> "wait"), or NULL
 * for an unknown one. */
const char *bullc__state_key(const char *state);
/* Node's client names: "<prefix>:<base64(queue)><suffix>". */
sds bullc__client_name(const char *prefix, const char *queue, const char *suffix);

/* jobread.c: a job hash (HGETALL reply) as Node's Job.fromJSON reads it,
 * as JSON with Node's names; NULL when out of memory. */
cJSON *bullc__job_json(const char *id, size_t id_len, const redisReply *hash);
/* JSON text from a stored value, leniently: the parsed value, or NULL when
 * it is not JSON. */
cJSON *bullc__parse_stored(const char *s, size_t len);

/* ---- json_scan.c ------------------------------------------------------- */
/* Whether s (len = strlen(s)) is JSON as JSON.parse reads it, at any depth,
 * scanned in place without building a tree or recursing. */
bool bullc__json_strict(const char *s, size_t len);
/* That, or what cJSON_Parse accepts (laxer in places; what bullc took
 * before): the test a job's data, results and progress pass. */
bool bullc__json_parses(const char *s, size_t len);
#endif
