/* SPDX-License-Identifier: MIT */
/* bullc-socket-client's private header: shared by its .c files only.
 *
 * The program has two sides that never wait for each other, both on one
 * libuv loop on one thread. The socket side (ws.c, driven by libwebsockets)
 * turns each text message into job data and appends it to a bounded FIFO
 * (buffer.c). The Redis side (producer.c, a bullc_aqueue: adds answered on
 * the loop) takes batches from the front of the FIFO and adds them with
 * bullc_aqueue_add_bulk, one batch in flight at a time, retrying a batch
 * until Redis takes it. So a slow or absent Redis never stalls the socket,
 * and jobs are added in arrival order. It uses bullc's public API,
 * libwebsockets, libuv, cJSON and libc, like any user would. */
#ifndef SC_H
#define SC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <bullc/bullc.h>
#include <uv.h>

/* Exit codes (also in --help and docs/socket-client.md). */
enum {
    SC_EXIT_OK = 0,     /* stopped by a signal; every message received was added to Redis (or dropped as counted) */
    SC_EXIT_FAIL = 1,   /* a failure at start or run time (libwebsockets context, memory) */
    SC_EXIT_USAGE = 2,  /* bad flags, bad JSON in --subscribe / --job-opts, bad URL, log file */
    SC_EXIT_REDIS = 3,  /* Redis refused the password or database at start, or was unreachable with --require-redis */
    SC_EXIT_LOST = 4,   /* the flush at shutdown timed out (or a second signal): buffered messages were lost */
    SC_EXIT_VERSION = 5 /* the queue's meta.version is another BullMQ major than the one chosen (nothing written) */
};

#include "tlog.h"
#include "tls_flags.h"

/* ---- config.c: flags ------------------------------------------------------------ */

typedef struct sc_url {
    bool tls;
    char *host; /* as given (a name or an address) */
    int port;
    char *path;        /* with its leading '/' and the query string */
    char *host_header; /* host, or host:port when the port is not the scheme's default */
    char *display;     /* for logs: the query string and any user:password@ are left out */
} sc_url;

typedef struct sc_config {
    const char *url_text;
    sc_url url;
    const char *provider;
    const char **subscribe; /* messages sent after each (re)connect, in order */
    size_t nsubscribe;
    const char **headers; /* "Name: value" added to the handshake */
    size_t nheaders;
    const char *subprotocol, *origin, *ca_file;
    bool insecure;
    const char *queue, *job_name, *type_field;
    const char *redis_url, *prefix;
    cli_tls tls;                                     /* --tls-*: Redis over TLS */
    int bullmq_version;                              /* --bullmq-version / BULLC_BULLMQ_VERSION: 0 auto, 5, 6 */
    const char *remove_on_complete, *remove_on_fail; /* JSON values */
    const char *job_opts;                            /* JSON object, merged last */
    size_t buffer_size, max_message_bytes, batch;
    int64_t dedup_ttl_ms; /* 0: jobs without a deduplication id (at-least-once across Redis failures) */
    int64_t ping_interval_ms, dead_timeout_ms, connect_timeout_ms;
    int64_t reconnect_min_ms, reconnect_max_ms;
    int64_t flush_timeout_ms, stats_interval_ms;
    bool require_redis;
    const char *log_file;
    int log_format, log_level;
} sc_config;

/* Parses argv into `cfg`. Returns 0; -1 when --help or --version was
 * printed (exit 0); or SC_EXIT_USAGE after printing the reason to stderr. */
int sc_config_parse(sc_config *cfg, int argc, char **argv);
void sc_config_free(sc_config *cfg);

/* ---- counters ------------------------------------------------------------------------ */

typedef struct sc_stats {
    _Atomic uint64_t received;          /* text messages received whole */
    _Atomic uint64_t added;             /* jobs added to Redis */
    _Atomic uint64_t dropped_overflow;  /* text messages dropped because the buffer was full */
    _Atomic uint64_t dropped_oversized; /* messages over --max-message-bytes (text or binary) */
    _Atomic uint64_t ignored_binary;    /* binary messages (no job) */
    _Atomic uint64_t rejected;          /* jobs bullc refused (e.g. over a sizeLimit job option) */
    _Atomic uint64_t deduplicated;      /* jobs of a retried batch that Redis had already written */
    _Atomic uint64_t connects;          /* WebSocket connections established */
    _Atomic uint64_t disconnects;       /* established connections that ended */
    _Atomic uint64_t connect_failures;  /* connection attempts that failed before the handshake ended */
    _Atomic uint64_t redis_failures;    /* add_bulk calls that failed and were retried */
    _Atomic bool redis_up;
} sc_stats;

extern sc_stats sc_st;

/* ---- buffer.c: the bounded FIFO between the two sides ------------------------------- */

typedef struct sc_entry {
    char *data;      /* the job data (JSON text, NUL-terminated, malloc'd) */
    uint64_t serial; /* arrival number, from 1: part of the job's deduplication id */
    bool rejected;
} sc_entry;

typedef struct sc_buffer {
    sc_entry *ring;
    size_t cap, head, count;
    bool closed;  /* no more input: the producer stops once it is empty */
    bool abandon; /* the producer stops after its current call */
    bool full;    /* in an overflow episode (for its log lines) */
    int64_t last_overflow_log;
    uint64_t next_serial;
    uint64_t episode_drops;
    void (*on_data)(void *arg); /* after each push and the close: the producer's kick */
    void *on_data_arg;
} sc_buffer;

int sc_buffer_init(sc_buffer *b, size_t cap);
void sc_buffer_destroy(sc_buffer *b);
/* Appends `data` (taking it over). When the buffer is full the new entry
 * is dropped (freed), counted and logged, and false is returned. */
bool sc_buffer_push(sc_buffer *b, char *data);
/* Points `out` at up to `max` of the oldest entries, which stay in the
 * buffer (and count against its size) until sc_buffer_pop. Returns how
 * many; 0 when empty or abandoned. */
size_t sc_buffer_peek(sc_buffer *b, sc_entry **out, size_t max);
/* Removes (and frees) the `n` oldest entries. */
void sc_buffer_pop(sc_buffer *b, size_t n);
/* No more input: the producer stops once it is empty. */
void sc_buffer_close(sc_buffer *b);
void sc_buffer_abandon(sc_buffer *b);
/* True when the producer should stop: abandoned, or closed and empty. */
bool sc_buffer_finished(const sc_buffer *b);
size_t sc_buffer_count(const sc_buffer *b);

/* ---- message.c: a message as job data ------------------------------------------------ */

/* The job data of a text message received at `ts_ms`:
 * {"provider":P,"data":D,"timestamp":T,"messageType":M}. D is the message's
 * own text when it is JSON (kept byte for byte, so numbers are never
 * re-printed), else the text as a JSON string; M is the string value of the
 * message's `type_field`, else "game_data". `provider_json` is the provider
 * name as a JSON string. `msg` has `len` bytes and a NUL after them.
 * Returns malloc'd text, or NULL when out of memory. */
char *sc_message_to_data(const char *provider_json, const char *type_field, const char *msg, size_t len, int64_t ts_ms);
/* `s` (`len` bytes) as a JSON string literal; malloc'd, NULL when out of memory. */
char *sc_json_string(const char *s, size_t len);

/* ---- producer.c: the Redis side -------------------------------------------------------- */

typedef struct sc_producer {
    uv_loop_t *loop;
    sc_buffer *buf;
    bullc_aqueue *queue; /* owned by main.c */
    const bullc_job_opts *opts;
    const char *job_name;
    size_t batch;
    int64_t dedup_ttl_ms;
    char instance[20];         /* random, per process: deduplication ids are "<instance>:<serial>" */
    void (*on_finished)(void); /* once, when the buffer is closed and empty, or abandoned */
    /* the producer's own */
    bool started, in_flight, finished, stopped;
    uv_timer_t retry;
    sc_entry **entries;
    bullc_bulk_job *jobs;
    size_t *slot; /* jobs[k] is entries[slot[k]] */
    bullc_job_opts **per_job;
    size_t taken; /* entries of the batch in flight */
    int64_t retry_ms, failing_since, last_report;
    uint64_t failures;
} sc_producer;

/* Starts adding the buffer's entries (the buffer's on_data kicks it). 0 or -1. */
int sc_producer_start(sc_producer *p);
/* Stops: no new batch (the one in flight ends with the aqueue's close); its
 * timer closes on the loop. */
void sc_producer_stop(sc_producer *p);

/* ---- ws.c: the socket side ------------------------------------------------------------- */

/* Creates the libwebsockets context on `loop` and starts connecting. `on_stopped` runs (on the loop,
 * outside lws callbacks) once sc_ws_stop has closed the connection. 0 or -1 (logged). */
int sc_ws_start(uv_loop_t *loop, const sc_config *cfg, sc_buffer *buf, void (*on_stopped)(void));
/* Stops reconnecting and closes the connection with a close frame. */
void sc_ws_stop(void);
/* Destroys the lws context (after on_stopped); its handles close on the loop. */
void sc_ws_destroy(void);

#endif
