/* SPDX-License-Identifier: MIT */
/* PRIVATE: bullc's internal declarations, shared by the files in src/ only. Nothing here
 * is installed or part of the API; names carry the `bullc__` prefix. */
#ifndef BULLC_PRIVATE_H
#define BULLC_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <bullc/bullc.h>
#include <cJSON.h>
#include <hiredis.h>
#include <msgpack.h>
#include <sds.h>

#define BULLC__DEFAULT_PREFIX "bull"
#define BULLC__PRIORITY_LIMIT ((1 << 21) - 1)
#define BULLC__MAX_SAFE_INTEGER 9007199254740991.0

/* ---- error.c ---------------------------------------------------------- */
/* Fills `err` (when not NULL) and returns `code`, so callers can
 * `return bullc__err(err, BULLC_EINVAL, "...")`. */
int bullc__err(bullc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes an already-filled error message ("job 3: ..."). */
void bullc__err_prefix(bullc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- util.c ----------------------------------------------------------- */
int64_t bullc__now_ms(void);
/* Strict decimal integer parse of [s, s+len); false on junk or overflow. */
bool bullc__parse_i64(const char *s, size_t len, int64_t *out);
/* The base64 of `len` bytes, as an sds. */
sds bullc__base64(const char *s, size_t len);

/* ---- url.c (struct behind bullc_redis_opts) ---------------------------- */
struct bullc_redis_opts {
    char *host;
    int port;
    char *unix_path;
    char *user;
    char *password;
    int db;
    int connect_timeout_ms;
    int command_timeout_ms;
};
int bullc__redis_opts_copy(bullc_redis_opts *dst, const bullc_redis_opts *src);
void bullc__redis_opts_clear(bullc_redis_opts *opts);
/* Defaults, then the environment: what a handle created with no settings uses. */
int bullc__redis_opts_default(bullc_redis_opts **out, bullc_error *err);

/* ---- scripts.c + generated scripts_gen.c ------------------------------ */
typedef struct bullc__script {
    const char *name; /* "moveToActive" */
    const char *id;   /* "moveToActive-11" */
    int numkeys;
    const char *text;
    size_t len;
    const char *sha1; /* 40 hex digits */
} bullc__script;
extern const bullc__script bullc__scripts[];
extern const size_t bullc__scripts_count;
extern const char bullc__scripts_bullmq_version[];
/* By name ("addStandardJob"); aborts on an unknown name, a programming error. */
const bullc__script *bullc__script_get(const char *name);

/* ---- conn.c: a synchronous connection --------------------------------- */
typedef struct bullc__conn {
    redisContext *ctx;
    bullc_redis_opts *opts;
    char *client_name; /* CLIENT SETNAME after connecting, or NULL */
    /* Bumped on every successful connect, so callers can redo per-connection
     * setup (the queue's meta write). */
    unsigned generation;
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
int bullc__conn_read(bullc__conn *c, redisReply **reply, bullc_error *err);
/* Maps a Redis error reply to a bullc code and message. */
int bullc__reply_err(const redisReply *r, bullc_error *err);
/* Maps the negative codes BullMQ scripts return (ErrorCode enum). */
int bullc__script_code_err(long long code, const char *what, const char *job_id, bullc_error *err);

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
    int64_t timestamp; /* ms */
    double delay;
    int64_t priority;
    bool lifo;
} bullc__prepared_job;
/* Validates `opts` merged over `defaults` (either may be NULL) and `data`. */
int bullc__job_prepare(bullc__prepared_job *pj, const char *data_json, const bullc_job_opts *defaults,
                       const bullc_job_opts *opts, bullc_error *err);
void bullc__job_prepared_free(bullc__prepared_job *pj);
/* Node's rules for a custom job id. */
int bullc__validate_job_id(const char *id, bullc_error *err);

/* ---- keys.c ----------------------------------------------------------- */
/* The key "base" + suffix (base ends with ':'). */
sds bullc__key(const char *base, const char *suffix);
int bullc__validate_queue_name(const char *name, bullc_error *err);

#endif
