/* SPDX-License-Identifier: MIT */
/* PRIVATE: BullMQ's protocol as bullc speaks it, in one place (protocol.c):
 * a queue's key names, one descriptor per script call (its KEYS in order and
 * its ARGV layout), the job options' short names, the scripts' error codes,
 * moveToActive's fetch options and Node's KeepJobs. A BullMQ upgrade changes
 * protocol.c; compat-tests/test/protocol.test.js compares every descriptor
 * with the keys BullMQ's own classes send. */
#ifndef BULLC_PROTOCOL_H
#define BULLC_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bullc/bullc.h>
#include <cJSON.h>
#include <msgpack.h>
#include <sds.h>

struct bullc__script;

/* ---- a queue's keys (Node's QueueKeys.getKeys) ------------------------- */
typedef enum bullc__key_id {
    BULLC__K_BASE, /* "<prefix>:<queue>:", Node's toKey('') */
    BULLC__K_WAIT,
    BULLC__K_ACTIVE,
    BULLC__K_PAUSED,
    BULLC__K_DELAYED,
    BULLC__K_PRIORITIZED,
    BULLC__K_COMPLETED,
    BULLC__K_FAILED,
    BULLC__K_WAITING_CHILDREN,
    BULLC__K_META,
    BULLC__K_EVENTS,
    BULLC__K_MARKER,
    BULLC__K_PC,
    BULLC__K_ID,
    BULLC__K_STALLED,
    BULLC__K_STALLED_CHECK,
    BULLC__K_LIMITER,
    BULLC__K_REPEAT,
    BULLC__K_DE, /* deduplication keys are "<de>:<id>" */
    BULLC__K_METRICS_COMPLETED,
    BULLC__K_METRICS_COMPLETED_DATA,
    BULLC__K_METRICS_FAILED,
    BULLC__K_METRICS_FAILED_DATA,
    BULLC__K_N,
    /* Keys a descriptor takes from its call rather than from the key set. */
    BULLC__K_STATE = BULLC__K_N, /* a queue key the caller picks (a job state's) */
    BULLC__K_JOB,                /* "<base><job id>" */
    BULLC__K_JOB_LOGS,           /* "<base><job id>:logs" */
    BULLC__K_JOB_LOCK,           /* "<base><job id>:lock" */
    BULLC__K_JOB_DEPS,           /* "<base><job id>:dependencies" */
    BULLC__K_JOB_UNSUCCESSFUL,   /* "<base><job id>:unsuccessful" */
    BULLC__K_JOB_PROCESSED,      /* "<base><job id>:processed" */
    BULLC__K_DEDUP_ID,           /* "<base>de:<id>": the call's id is a deduplication id */
} bullc__key_id;

/* Every key name of one queue, built once per handle. */
typedef struct bullc__keys {
    sds k[BULLC__K_N];
    char *block; /* the keys as sds strings one after another in one allocation, or NULL: each its own */
} bullc__keys;
/* Node's rules for a queue name (not empty, no ':'). */
int bullc__validate_queue_name(const char *name, bullc_error *err);
int bullc__keys_init(bullc__keys *ks, const char *prefix, const char *queue);
void bullc__keys_free(bullc__keys *ks);
/* Node's `${keys.de}:${id}`: a deduplication id's key (NULL: out of memory). */
sds bullc__dedup_key(const bullc__keys *ks, const char *dedup_id);
/* A job's key (BULLC__K_JOB) or one of its own keys (BULLC__K_JOB_LOGS,
 * _LOCK, _DEPS, _UNSUCCESSFUL, _PROCESSED), or with BULLC__K_DEDUP_ID the
 * key of deduplication id `job_id`; NULL: out of memory. */
sds bullc__job_key(const bullc__keys *ks, const char *job_id, bullc__key_id which);
/* The key of a Node state name ("waiting" -> wait), or -1 for an unknown one. */
int bullc__keys_state(const char *state);
/* The suffix a key id stands for ("wait", "metrics:completed"...). */
const char *bullc__keys_suffix(int id);

/* ---- script calls ------------------------------------------------------- */
typedef enum bullc__call_id {
    BULLC__C_ADD_STANDARD,
    BULLC__C_ADD_DELAYED,
    BULLC__C_ADD_PRIORITIZED,
    BULLC__C_MOVE_TO_ACTIVE,
    BULLC__C_MOVE_TO_COMPLETED,
    BULLC__C_MOVE_TO_FAILED,
    BULLC__C_MOVE_TO_DELAYED,
    BULLC__C_RETRY_JOB,
    BULLC__C_MOVE_ACTIVE_TO_WAIT,
    BULLC__C_EXTEND_LOCKS,
    BULLC__C_EXTEND_LOCK,
    BULLC__C_MOVE_STALLED,
    BULLC__C_UPDATE_PROGRESS,
    BULLC__C_ADD_LOG,
    BULLC__C_UPDATE_DATA,
    BULLC__C_MOVE_TO_WAITING_CHILDREN,
    BULLC__C_PAUSE,
    BULLC__C_RESUME,
    BULLC__C_DRAIN,
    BULLC__C_CLEAN,
    BULLC__C_OBLITERATE,
    BULLC__C_MOVE_JOBS_TO_WAIT,
    BULLC__C_REMOVE_JOB,
    BULLC__C_REPROCESS_JOB,
    BULLC__C_PROMOTE,
    BULLC__C_CHANGE_DELAY,
    BULLC__C_CHANGE_PRIORITY,
    BULLC__C_GET_JOBS,
    BULLC__C_GET_COUNTS,
    BULLC__C_GET_STATE_V2,
    BULLC__C_GET_STATE,
    BULLC__C_IS_FINISHED,
    BULLC__C_GET_COUNTS_PER_PRIORITY,
    BULLC__C_GET_RATE_LIMIT_TTL,
    BULLC__C_IS_MAXED,
    BULLC__C_GET_METRICS_COMPLETED,
    BULLC__C_GET_METRICS_FAILED,
    BULLC__C_ADD_JOB_SCHEDULER,
    BULLC__C_UPDATE_JOB_SCHEDULER,
    BULLC__C_REMOVE_JOB_SCHEDULER,
    BULLC__C_GET_JOB_SCHEDULER,
    /* flows */
    BULLC__C_ADD_PARENT,
    BULLC__C_RELEASE_PARENT,
    BULLC__C_REMOVE_CHILD_DEPENDENCY,
    BULLC__C_REMOVE_UNPROCESSED_CHILDREN,
    BULLC__C_PAGINATE_PROCESSED,
    BULLC__C_PAGINATE_PENDING,
    BULLC__C_REMOVE_DEDUP_KEY_OF_JOB,
    BULLC__C_REMOVE_ORPHANED_JOBS,
    BULLC__C_ADD_REPEATABLE_JOB, /* 5.x only: legacy repeatable jobs (Node 5's Repeat) */
    BULLC__C_UPDATE_REPEATABLE_JOB_MILLIS,
    BULLC__C_REMOVE_REPEATABLE,
    BULLC__C_N
} bullc__call_id;

#define BULLC__CALL_MAX_KEYS 14

/* One way bullc calls one of BullMQ's scripts: its KEYS in order and what
 * its ARGV holds. A script called with different keys (moveToFinished to
 * completed or failed, pause to pause or resume) has one descriptor each. */
typedef struct bullc__call {
    const char *name;   /* "moveToFinished:completed" */
    const char *script; /* "moveToFinished"; NULL: this major has no such call */
    int nkeys;
    unsigned char keys[BULLC__CALL_MAX_KEYS]; /* bullc__key_id */
    int nargs;                                /* ARGV entries; -1: as many as the call needs */
    const char *args;                         /* the ARGV layout, as Node packs it */
} bullc__call;

/* ---- the protocol of one BullMQ major ----------------------------------- */
/* What differs between the majors bullc speaks: the script table, the calls
 * whose keys or arguments changed, the add scripts' packed argument count,
 * whether pausing moves `wait` to `paused` (5.x) or only flags the queue
 * (6.x). Every handle holds one, chosen when it is created or first reaches
 * Redis (bullc__protocol_resolve), and makes every script call through it. */
typedef struct bullc__protocol {
    int major;                  /* 5 or 6 */
    const char *version;        /* "6.7.0": the release its scripts come from */
    const char *meta_version;   /* "bullmq:6.7.0": what it writes to meta.version */
    const bullc__call *changed; /* BULLC__C_N entries, name NULL where 6.x's holds */
    int add_args;               /* items packed in the add scripts' ARGV[1] */
    bool paused_list;           /* a paused queue keeps its jobs in `paused` (5.x) */
    /* Job.moveToFailed retries no job started maxStartedAttempts times (6.x);
     * 5.x retries it and its next start fails it as unrecoverable */
    bool max_started_ends_retries;
} bullc__protocol;

extern const bullc__protocol bullc__protocol_v6;
extern const bullc__protocol bullc__protocol_v5;
/* The protocol of major 5 or 6; NULL for any other. */
const bullc__protocol *bullc__protocol_of(int major);
/* The major of a meta.version value ("bullmq:5.81.5" -> 5; 0: not BullMQ's
 * "bullmq:<major>." form). */
int bullc__meta_version_major(const char *meta_version);

/* Settles which protocol a handle speaks to queue `queue` from its explicit
 * major (0: auto), the queue's meta.version (NULL: the queue has none) and
 * the protocol it settled on before (NULL: none yet). Returns 0 and sets
 * *out and *write_version (whether the handle may write its meta.version:
 * never over another major's), or BULLC_EVERSION with a message naming the
 * way out. */
int bullc__protocol_settle(const char *queue, int explicit_major, const char *meta_version,
                           const bullc__protocol *before, const bullc__protocol **out, bool *write_version,
                           bullc_error *err);

/* The 6.x descriptors; bullc__call_of gives a protocol's. */
extern const bullc__call bullc__calls[BULLC__C_N];
static inline const bullc__call *bullc__call_of(const bullc__protocol *p, bullc__call_id c) {
    return p->changed && p->changed[c].name ? &p->changed[c] : &bullc__calls[c];
}
/* The embedded script of a call (looked up once per process); NULL for a
 * call the major does not have (5.x: releaseParentIfNoPendingDependencies). */
const struct bullc__script *bullc__call_script(const bullc__protocol *p, bullc__call_id c);

/* What a call's keys that are not in the key set refer to. */
typedef struct bullc__call_ctx {
    int state;                       /* BULLC__K_STATE: a bullc__key_id */
    const char *job, *logs, *lock;   /* BULLC__K_JOB, _JOB_LOGS, _JOB_LOCK */
    const char *deps, *unsuccessful; /* BULLC__K_JOB_DEPS, _JOB_UNSUCCESSFUL */
    const char *processed;           /* BULLC__K_JOB_PROCESSED */
    const char *dedup;               /* BULLC__K_DEDUP_ID */
} bullc__call_ctx;

/* Writes call `c`'s keys to argv/lens (BULLC__CALL_MAX_KEYS at most), borrowed
 * from `ks` and `x`; returns how many. */
int bullc__call_keys(const bullc__protocol *p, bullc__call_id c, const bullc__keys *ks, const bullc__call_ctx *x,
                     const char **argv, size_t *lens);

/* ---- Queue.removeOrphanedJobs ------------------------------------------ */
/* The key names of Node's QueueKeys.getKeys but '' (the keys a job id can be
 * found in, and the infrastructure names a scanned key is skipped by), in
 * Node's order, NULL-terminated: removeOrphanedJobs' ARGV takes them as sent. */
extern const char *const bullc__queuekeys_names[];
/* The job sub-keys removeOrphanedJobs deletes with an orphan's hash, in
 * Node's order, NULL-terminated. */
extern const char *const bullc__orphan_subkeys[];
/* The queue's keys Node's key map leaves out (metrics:completed, ...): their
 * first segment, which removeOrphanedJobs' scan skips where Node's does not
 * (Node takes metrics:failed for the failed key of job "metrics" and deletes
 * it). NULL-terminated. */
extern const char *const bullc__orphan_skip_extra[];

/* ---- job options: Node's optsEncodeMap / optsDecodeMap ------------------- */
typedef struct bullc__opt_name {
    const char *name, *short_name;
} bullc__opt_name;
extern const bullc__opt_name bullc__opt_names[];
extern const size_t bullc__opt_names_count;
/* The stored short name of a long option name ("keepLogs" -> "kl"), or NULL. */
const char *bullc__opt_short(const char *name);
/* The long name of a stored short one ("kl" -> "keepLogs"), or NULL. */
const char *bullc__opt_long(const char *short_name);
/* moveToFinished's parent flags, in the order it packs them: the short names
 * of failParentOnFailure, continueParentOnFailure, ignoreDependencyOnFailure,
 * removeDependencyOnFailure. */
extern const char *const bullc__opt_parent_flags[4];

/* ---- the scripts' error codes (Node's ErrorCode and finishedErrors) ------ */
/* A script's negative code as a BULLC_E* code and Node's message. `job_id`,
 * `command` and `state` may be NULL ("expected" state); for the parent's
 * codes (-5, -7) Node names the parent's key: pass it as `job_id`. */
int bullc__script_code_err(long long code, const char *job_id, const char *command, const char *state,
                           bullc_error *err);

/* ---- moveToActive's fetch options and Node's KeepJobs -------------------- */
typedef struct bullc__fetch_opts {
    int64_t lock_duration;
    int64_t limiter_max, limiter_duration; /* no limiter unless limiter_max > 0 */
    const char *name;                      /* the worker's name, or NULL */
} bullc__fetch_opts;
/* Packs {token, lockDuration, limiter?, name?} as Node's worker does. */
void bullc__pack_fetch_opts(msgpack_packer *pk, const bullc__fetch_opts *o, const char *token);
/* Packs Node's limiter entry: "limiter" then {max, duration}. */
void bullc__pack_limiter(msgpack_packer *pk, int64_t max, int64_t duration);
/* Node's getKeepJobs for a job's removeOn* value (true, false, a count, an
 * object; NULL: keep all), packed. */
void bullc__pack_keep_jobs(msgpack_packer *pk, const cJSON *v);

#endif
