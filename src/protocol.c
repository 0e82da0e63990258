/* SPDX-License-Identifier: MIT */
/* BullMQ's protocol as bullc speaks it, 6.7.0's and 5.81.5's: each script
 * call's keys and arguments (Node 6's RedisQueueBackend and Node 5's Scripts
 * build the same lists), the option names, the error codes, and the option
 * objects the worker packs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

/* ---- keys ------------------------------------------------------------------ */

static const char *const key_suffix[BULLC__K_N] = {
    [BULLC__K_BASE] = "",
    [BULLC__K_WAIT] = "wait",
    [BULLC__K_ACTIVE] = "active",
    [BULLC__K_PAUSED] = "paused",
    [BULLC__K_DELAYED] = "delayed",
    [BULLC__K_PRIORITIZED] = "prioritized",
    [BULLC__K_COMPLETED] = "completed",
    [BULLC__K_FAILED] = "failed",
    [BULLC__K_WAITING_CHILDREN] = "waiting-children",
    [BULLC__K_META] = "meta",
    [BULLC__K_EVENTS] = "events",
    [BULLC__K_MARKER] = "marker",
    [BULLC__K_PC] = "pc",
    [BULLC__K_ID] = "id",
    [BULLC__K_STALLED] = "stalled",
    [BULLC__K_STALLED_CHECK] = "stalled-check",
    [BULLC__K_LIMITER] = "limiter",
    [BULLC__K_REPEAT] = "repeat",
    [BULLC__K_DE] = "de",
    [BULLC__K_METRICS_COMPLETED] = "metrics:completed",
    [BULLC__K_METRICS_COMPLETED_DATA] = "metrics:completed:data",
    [BULLC__K_METRICS_FAILED] = "metrics:failed",
    [BULLC__K_METRICS_FAILED_DATA] = "metrics:failed:data",
};

int bullc__validate_queue_name(const char *name, bullc_error *err) {
    if (!name || !*name) return bullc__err(err, BULLC_EINVAL, "queue name must not be empty");
    /* Node's Queue constructor throws on ':' because keys are split on it. */
    if (strchr(name, ':')) return bullc__err(err, BULLC_EINVAL, "queue name cannot contain ':' (\"%s\")", name);
    return 0;
}

const char *bullc__keys_suffix(int id) { return id >= 0 && id < BULLC__K_N ? key_suffix[id] : NULL; }

/* A queue's keys in one allocation, as sds strings of type 8 (a queue's
 * handle holds twenty-odd keys: with thousands of queues in a process, an
 * allocation each doubles what they take). Keys longer than type 8 holds
 * are allocated one by one. */
static bool keys_in_block(bullc__keys *ks, const char *prefix, size_t pl, const char *queue, size_t ql) {
    size_t bl = pl + ql + 2, total = 0;
    for (int i = 0; i < BULLC__K_N; i++) {
        size_t len = bl + (i ? strlen(key_suffix[i]) : 0);
        if (len > UINT8_MAX) return false;
        total += sizeof(struct sdshdr8) + len + 1;
    }
    char *p = ks->block = malloc(total);
    if (!p) return false;
    for (int i = 0; i < BULLC__K_N; i++) {
        size_t sl = i ? strlen(key_suffix[i]) : 0;
        struct sdshdr8 *h = (struct sdshdr8 *)p;
        h->len = h->alloc = (uint8_t)(bl + sl);
        h->flags = SDS_TYPE_8;
        memcpy(h->buf, prefix, pl);
        h->buf[pl] = ':';
        memcpy(h->buf + pl + 1, queue, ql);
        h->buf[bl - 1] = ':';
        memcpy(h->buf + bl, i ? key_suffix[i] : "", sl + 1);
        ks->k[i] = h->buf;
        p += sizeof *h + bl + sl + 1;
    }
    return true;
}

int bullc__keys_init(bullc__keys *ks, const char *prefix, const char *queue) {
    memset(ks, 0, sizeof *ks);
    size_t pl = strlen(prefix), ql = strlen(queue), bl = pl + ql + 2;
    if (keys_in_block(ks, prefix, pl, queue, ql)) return 0;
    ks->block = NULL;
    for (int i = 0; i < BULLC__K_N; i++) {
        size_t sl = i ? strlen(key_suffix[i]) : 0;
        if (!(ks->k[i] = sdsnewlen(NULL, bl + sl))) {
            bullc__keys_free(ks);
            return BULLC_ENOMEM;
        }
        memcpy(ks->k[i], prefix, pl);
        ks->k[i][pl] = ':';
        memcpy(ks->k[i] + pl + 1, queue, ql);
        ks->k[i][bl - 1] = ':';
        memcpy(ks->k[i] + bl, i ? key_suffix[i] : "", sl);
    }
    return 0;
}

void bullc__keys_free(bullc__keys *ks) {
    if (ks->block)
        free(ks->block);
    else
        for (int i = 0; i < BULLC__K_N; i++) sdsfree(ks->k[i]);
    memset(ks, 0, sizeof *ks);
}

sds bullc__dedup_key(const bullc__keys *ks, const char *dedup_id) {
    sds k = sdsdup(ks->k[BULLC__K_DE]);
    if (k) k = sdscatlen(k, ":", 1);
    return k ? sdscat(k, dedup_id) : NULL;
}

sds bullc__job_key(const bullc__keys *ks, const char *job_id, bullc__key_id which) {
    if (which == BULLC__K_DEDUP_ID) return bullc__dedup_key(ks, job_id);
    sds k = sdscat(sdsdup(ks->k[BULLC__K_BASE]), job_id);
    static const char *const own[] = {":logs", ":lock", ":dependencies", ":unsuccessful", ":processed"};
    if (k && which != BULLC__K_JOB) k = sdscat(k, own[which - BULLC__K_JOB_LOGS]);
    return k;
}

int bullc__keys_state(const char *state) {
    static const int states[] = {BULLC__K_WAIT,      BULLC__K_ACTIVE, BULLC__K_DELAYED,          BULLC__K_PRIORITIZED,
                                 BULLC__K_COMPLETED, BULLC__K_FAILED, BULLC__K_WAITING_CHILDREN, BULLC__K_PAUSED};
    if (!state) return -1;
    if (!strcmp(state, "waiting")) return BULLC__K_WAIT;
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (!strcmp(state, key_suffix[states[i]])) return states[i];
    return -1;
}

/* ---- script calls ------------------------------------------------------------ */

#define KEYS(...) .nkeys = sizeof((const unsigned char[]){__VA_ARGS__}) / sizeof(unsigned char), .keys = {__VA_ARGS__}
#define QUEUE_MOVE_KEYS                                                                                        \
    BULLC__K_WAIT, BULLC__K_ACTIVE, BULLC__K_PRIORITIZED, BULLC__K_EVENTS, BULLC__K_STALLED, BULLC__K_LIMITER, \
        BULLC__K_DELAYED, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_PC
#define STATE_KEYS                                                                                          \
    BULLC__K_COMPLETED, BULLC__K_FAILED, BULLC__K_DELAYED, BULLC__K_ACTIVE, BULLC__K_WAIT, BULLC__K_PAUSED, \
        BULLC__K_WAITING_CHILDREN, BULLC__K_PRIORITIZED

const bullc__call bullc__calls[BULLC__C_N] = {
    /* the add scripts (Node's addJobToTransaction); ARGV[1] packs [base, custom
     * id or "", name, timestamp, parentKey, parent dependencies key, parent,
     * repeatJobKey, deduplication key, deferParentRelease], nil where unset */
    [BULLC__C_ADD_STANDARD] = {"addStandardJob", "addStandardJob",
                               KEYS(BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_ID, BULLC__K_COMPLETED,
                                    BULLC__K_DELAYED, BULLC__K_ACTIVE, BULLC__K_EVENTS, BULLC__K_MARKER),
                               3, "packed args, data JSON, packed opts (short names)"},
    [BULLC__C_ADD_DELAYED] = {"addDelayedJob", "addDelayedJob",
                              KEYS(BULLC__K_MARKER, BULLC__K_META, BULLC__K_ID, BULLC__K_DELAYED, BULLC__K_COMPLETED,
                                   BULLC__K_EVENTS),
                              3, "packed args, data JSON, packed opts (short names)"},
    [BULLC__C_ADD_PRIORITIZED] = {"addPrioritizedJob", "addPrioritizedJob",
                                  KEYS(BULLC__K_MARKER, BULLC__K_META, BULLC__K_ID, BULLC__K_PRIORITIZED,
                                       BULLC__K_DELAYED, BULLC__K_COMPLETED, BULLC__K_ACTIVE, BULLC__K_EVENTS,
                                       BULLC__K_PC),
                                  3, "packed args, data JSON, packed opts (short names)"},
    /* the worker */
    [BULLC__C_MOVE_TO_ACTIVE] = {"moveToActive", "moveToActive", KEYS(QUEUE_MOVE_KEYS, BULLC__K_MARKER), 3,
                                 "base, now, packed fetch opts (bullc__pack_fetch_opts)"},
    [BULLC__C_MOVE_TO_COMPLETED] = {"moveToFinished:completed", "moveToFinished",
                                    KEYS(QUEUE_MOVE_KEYS, BULLC__K_COMPLETED, BULLC__K_JOB, BULLC__K_METRICS_COMPLETED,
                                         BULLC__K_MARKER),
                                    9,
                                    "job id, now, \"returnvalue\", result JSON, \"completed\", fetch next (1/0), base, "
                                    "packed {token, name?, keepJobs, limiter?, lockDuration, attempts, "
                                    "maxMetricsSize, fpof, cpof, idof, rdof}, \"\""},
    [BULLC__C_MOVE_TO_FAILED] = {"moveToFinished:failed", "moveToFinished",
                                 KEYS(QUEUE_MOVE_KEYS, BULLC__K_FAILED, BULLC__K_JOB, BULLC__K_METRICS_FAILED,
                                      BULLC__K_MARKER),
                                 9,
                                 "job id, now, \"failedReason\", reason, \"failed\", fetch next (1/0), base, packed "
                                 "opts (as completed), packed [failedReason, r, stacktrace, JSON]"},
    [BULLC__C_MOVE_TO_DELAYED] = {"moveToDelayed", "moveToDelayed",
                                  KEYS(BULLC__K_MARKER, BULLC__K_ACTIVE, BULLC__K_PRIORITIZED, BULLC__K_DELAYED,
                                       BULLC__K_JOB, BULLC__K_EVENTS, BULLC__K_META, BULLC__K_STALLED, BULLC__K_WAIT,
                                       BULLC__K_LIMITER, BULLC__K_PC),
                                  9,
                                  "base, now, job id, token, delay, skipAttempt \"0\", packed fail fields, fetch "
                                  "next (1/0), packed fetch opts or \"\""},
    [BULLC__C_RETRY_JOB] = {"retryJob", "retryJob",
                            KEYS(BULLC__K_ACTIVE, BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_JOB, BULLC__K_META,
                                 BULLC__K_EVENTS, BULLC__K_DELAYED, BULLC__K_PRIORITIZED, BULLC__K_PC, BULLC__K_MARKER,
                                 BULLC__K_STALLED),
                            6, "base, now, LPUSH or RPUSH (lifo), job id, token, packed fail fields"},
    [BULLC__C_MOVE_ACTIVE_TO_WAIT] = {"moveJobFromActiveToWait", "moveJobFromActiveToWait",
                                      KEYS(BULLC__K_ACTIVE, BULLC__K_WAIT, BULLC__K_STALLED, BULLC__K_PAUSED,
                                           BULLC__K_META, BULLC__K_LIMITER, BULLC__K_PRIORITIZED, BULLC__K_MARKER,
                                           BULLC__K_EVENTS),
                                      3, "job id, token, job key"},
    [BULLC__C_EXTEND_LOCKS] = {"extendLocks", "extendLocks", KEYS(BULLC__K_STALLED), 4,
                               "base, packed [tokens], packed [job ids], lock duration"},
    [BULLC__C_EXTEND_LOCK] = {"extendLock", "extendLock", KEYS(BULLC__K_JOB_LOCK, BULLC__K_STALLED), 3,
                              "token, lock duration, job id"},
    [BULLC__C_MOVE_STALLED] = {"moveStalledJobsToWait", "moveStalledJobsToWait",
                               KEYS(BULLC__K_STALLED, BULLC__K_WAIT, BULLC__K_ACTIVE, BULLC__K_STALLED_CHECK,
                                    BULLC__K_META, BULLC__K_PAUSED, BULLC__K_MARKER, BULLC__K_EVENTS, BULLC__K_REPEAT),
                               4, "maxStalledCount, base, now, stalledInterval"},
    [BULLC__C_UPDATE_PROGRESS] = {"updateProgress", "updateProgress",
                                  KEYS(BULLC__K_JOB, BULLC__K_EVENTS, BULLC__K_META), 2, "job id, progress JSON"},
    [BULLC__C_ADD_LOG] = {"addLog", "addLog", KEYS(BULLC__K_JOB, BULLC__K_JOB_LOGS), 3,
                          "job id, log line, keepLogs or \"\""},
    [BULLC__C_UPDATE_DATA] = {"updateData", "updateData", KEYS(BULLC__K_JOB), 1, "data JSON"},
    [BULLC__C_MOVE_TO_WAITING_CHILDREN] = {"moveToWaitingChildren", "moveToWaitingChildren",
                                           KEYS(BULLC__K_ACTIVE, BULLC__K_WAITING_CHILDREN, BULLC__K_JOB,
                                                BULLC__K_JOB_DEPS, BULLC__K_JOB_UNSUCCESSFUL, BULLC__K_STALLED,
                                                BULLC__K_EVENTS),
                                           5, "token, child key or \"\", now (JSON), job id, base"},
    /* the queue's administration and getters */
    [BULLC__C_PAUSE] = {"pause", "pause",
                        KEYS(BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_PRIORITIZED, BULLC__K_EVENTS,
                             BULLC__K_DELAYED, BULLC__K_MARKER),
                        2, "\"paused\", emit event (1/0)"},
    [BULLC__C_RESUME] = {"pause:resume", "pause",
                         KEYS(BULLC__K_PAUSED, BULLC__K_WAIT, BULLC__K_META, BULLC__K_PRIORITIZED, BULLC__K_EVENTS,
                              BULLC__K_DELAYED, BULLC__K_MARKER),
                         2, "\"resumed\", emit event (1/0)"},
    [BULLC__C_DRAIN] = {"drain", "drain",
                        KEYS(BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_DELAYED, BULLC__K_PRIORITIZED, BULLC__K_REPEAT),
                        2, "base, delayed too (1/0)"},
    [BULLC__C_CLEAN] = {"cleanJobsInSet", "cleanJobsInSet", KEYS(BULLC__K_STATE, BULLC__K_EVENTS, BULLC__K_REPEAT), 4,
                        "base, timestamp, limit, state"},
    [BULLC__C_OBLITERATE] = {"obliterate", "obliterate", KEYS(BULLC__K_META, BULLC__K_BASE), 2,
                             "count, \"force\" or \"\""},
    [BULLC__C_MOVE_JOBS_TO_WAIT] = {"moveJobsToWait", "moveJobsToWait",
                                    KEYS(BULLC__K_BASE, BULLC__K_EVENTS, BULLC__K_STATE, BULLC__K_WAIT, BULLC__K_PAUSED,
                                         BULLC__K_META, BULLC__K_ACTIVE, BULLC__K_MARKER),
                                    3, "count, timestamp, state"},
    [BULLC__C_REMOVE_JOB] = {"removeJob", "removeJob", KEYS(BULLC__K_JOB, BULLC__K_REPEAT), 3,
                             "job id, remove children (1/0), base"},
    [BULLC__C_REPROCESS_JOB] = {"reprocessJob", "reprocessJob",
                                KEYS(BULLC__K_JOB, BULLC__K_EVENTS, BULLC__K_STATE, BULLC__K_WAIT, BULLC__K_META,
                                     BULLC__K_ACTIVE, BULLC__K_MARKER, BULLC__K_PRIORITIZED, BULLC__K_PC),
                                6,
                                "job id, LPUSH or RPUSH (lifo), \"failedReason\" or \"returnvalue\", state, reset "
                                "attemptsMade (1/0), reset attemptsStarted (1/0)"},
    [BULLC__C_PROMOTE] = {"promote", "promote",
                          KEYS(BULLC__K_DELAYED, BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_PRIORITIZED,
                               BULLC__K_ACTIVE, BULLC__K_PC, BULLC__K_EVENTS, BULLC__K_MARKER),
                          2, "base, job id"},
    [BULLC__C_CHANGE_DELAY] = {"changeDelay", "changeDelay",
                               KEYS(BULLC__K_DELAYED, BULLC__K_META, BULLC__K_MARKER, BULLC__K_EVENTS), 4,
                               "delay, now, job id, job key"},
    [BULLC__C_CHANGE_PRIORITY] = {"changePriority", "changePriority",
                                  KEYS(BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_PRIORITIZED,
                                       BULLC__K_ACTIVE, BULLC__K_PC, BULLC__K_MARKER),
                                  4, "priority, base, job id, lifo (1/0)"},
    [BULLC__C_GET_JOBS] = {"getJobs", "getJobs", KEYS(BULLC__K_BASE), -1,
                           "start, end, asc (1/0), backfill bound 5, the state key names"},
    [BULLC__C_GET_COUNTS] = {"getCounts", "getCounts", KEYS(BULLC__K_BASE), -1, "the state key names"},
    [BULLC__C_GET_STATE_V2] = {"getStateV2", "getStateV2", KEYS(STATE_KEYS), 1, "job id"},
    [BULLC__C_GET_STATE] = {"getState", "getState", KEYS(STATE_KEYS), 1, "job id"},
    [BULLC__C_IS_FINISHED] = {"isFinished", "isFinished", KEYS(BULLC__K_COMPLETED, BULLC__K_FAILED, BULLC__K_JOB), 2,
                              "job id, \"1\" (answer the return value or failed reason too)"},
    [BULLC__C_GET_COUNTS_PER_PRIORITY] = {"getCountsPerPriority", "getCountsPerPriority",
                                          KEYS(BULLC__K_WAIT, BULLC__K_PRIORITIZED), -1, "the priorities"},
    [BULLC__C_GET_RATE_LIMIT_TTL] = {"getRateLimitTtl", "getRateLimitTtl", KEYS(BULLC__K_LIMITER, BULLC__K_META), 1,
                                     "max jobs"},
    [BULLC__C_IS_MAXED] = {"isMaxed", "isMaxed", KEYS(BULLC__K_META, BULLC__K_ACTIVE), 0, ""},
    [BULLC__C_GET_METRICS_COMPLETED] = {"getMetrics:completed", "getMetrics",
                                        KEYS(BULLC__K_METRICS_COMPLETED, BULLC__K_METRICS_COMPLETED_DATA), 2,
                                        "start, end"},
    [BULLC__C_GET_METRICS_FAILED] = {"getMetrics:failed", "getMetrics",
                                     KEYS(BULLC__K_METRICS_FAILED, BULLC__K_METRICS_FAILED_DATA), 2, "start, end"},
    /* job schedulers (Node's JobScheduler); the iteration's job options are
     * packed as an add's, with short names */
    [BULLC__C_ADD_JOB_SCHEDULER] = {"addJobScheduler", "addJobScheduler",
                                    KEYS(BULLC__K_REPEAT, BULLC__K_DELAYED, BULLC__K_WAIT, BULLC__K_PAUSED,
                                         BULLC__K_META, BULLC__K_PRIORITIZED, BULLC__K_MARKER, BULLC__K_ID,
                                         BULLC__K_EVENTS, BULLC__K_PC, BULLC__K_ACTIVE),
                                    9,
                                    "next millis (\"\" for every), packed {name, startDate, endDate, tz, pattern, "
                                    "every, limit, offset}, scheduler id, template data JSON, packed template opts, "
                                    "packed iteration opts, now, base, producer job key or \"\""},
    /* KEYS[11] is the producer's job key: "<base><producer job id>" */
    [BULLC__C_UPDATE_JOB_SCHEDULER] = {"updateJobScheduler", "updateJobScheduler",
                                       KEYS(BULLC__K_REPEAT, BULLC__K_DELAYED, BULLC__K_WAIT, BULLC__K_PAUSED,
                                            BULLC__K_META, BULLC__K_PRIORITIZED, BULLC__K_MARKER, BULLC__K_ID,
                                            BULLC__K_EVENTS, BULLC__K_PC, BULLC__K_JOB, BULLC__K_ACTIVE),
                                       7,
                                       "next millis (\"\" for every), scheduler id, job data JSON, packed iteration "
                                       "opts, now, base, producer job id"},
    [BULLC__C_REMOVE_JOB_SCHEDULER] = {"removeJobScheduler", "removeJobScheduler",
                                       KEYS(BULLC__K_REPEAT, BULLC__K_DELAYED, BULLC__K_EVENTS), 2,
                                       "scheduler id, base"},
    [BULLC__C_GET_JOB_SCHEDULER] = {"getJobScheduler", "getJobScheduler", KEYS(BULLC__K_REPEAT), 1, "scheduler id"},
    /* flows (Node's RedisQueueBackend.addFlow): a node with children is added
     * to waiting-children, packed as the add scripts are; once the whole tree
     * is in the transaction each parent is released if nothing is pending */
    [BULLC__C_ADD_PARENT] = {"addParentJob", "addParentJob",
                             KEYS(BULLC__K_META, BULLC__K_ID, BULLC__K_DELAYED, BULLC__K_WAITING_CHILDREN,
                                  BULLC__K_COMPLETED, BULLC__K_EVENTS),
                             3, "packed args, data JSON, packed opts (short names)"},
    [BULLC__C_RELEASE_PARENT] = {"releaseParentIfNoPendingDependencies", "releaseParentIfNoPendingDependencies",
                                 KEYS(BULLC__K_JOB, BULLC__K_JOB_DEPS), 3,
                                 "parent queue's qualified name, parent id, now"},
    /* a parent's dependencies changed from outside the workers (Node's
     * job.removeChildDependency and job.removeUnprocessedChildren) */
    [BULLC__C_REMOVE_CHILD_DEPENDENCY] = {"removeChildDependency", "removeChildDependency", KEYS(BULLC__K_BASE), 2,
                                          "child's job key, parent's job key"},
    [BULLC__C_REMOVE_UNPROCESSED_CHILDREN] = {"removeUnprocessedChildren", "removeUnprocessedChildren",
                                              KEYS(BULLC__K_JOB, BULLC__K_META), 2, "base, job id"},
    /* Node's queue.getDependencies(parent, type, start, end): a page of the
     * parent's processed hash or pending set, with the children's hashes */
    [BULLC__C_PAGINATE_PROCESSED] = {"paginate:processed", "paginate", KEYS(BULLC__K_JOB_PROCESSED), 6,
                                     "start, end, cursor, offset, max iterations, fetch jobs (1)"},
    [BULLC__C_PAGINATE_PENDING] = {"paginate:pending", "paginate", KEYS(BULLC__K_JOB_DEPS), 6,
                                   "start, end, cursor, offset, max iterations, fetch jobs (1)"},
    /* Node's job.removeDeduplicationKey(): the key goes only while it names the job */
    [BULLC__C_REMOVE_DEDUP_KEY_OF_JOB] = {"removeDeduplicationKey", "removeDeduplicationKey", KEYS(BULLC__K_DEDUP_ID),
                                          1, "job id"},
    [BULLC__C_REMOVE_ORPHANED_JOBS] = {"removeOrphanedJobs", "removeOrphanedJobs", KEYS(BULLC__K_BASE), -1,
                                       "N, N state key suffixes, M, M job sub-key suffixes, candidate job ids"},
    /* 5.x's legacy repeatable jobs (Node 5's Repeat class); 6.x has none */
    [BULLC__C_ADD_REPEATABLE_JOB] = {"addRepeatableJob", NULL, 0, {0}, 0, "absent in 6.x"},
    [BULLC__C_UPDATE_REPEATABLE_JOB_MILLIS] = {"updateRepeatableJobMillis", NULL, 0, {0}, 0, "absent in 6.x"},
    [BULLC__C_REMOVE_REPEATABLE] = {"removeRepeatable", NULL, 0, {0}, 0, "absent in 6.x"},
};

const char *const bullc__queuekeys_names[] = {
    "active",        "wait",      "waiting-children", "paused",  "id",     "delayed", "prioritized",
    "stalled-check", "completed", "failed",           "stalled", "repeat", "limiter", "meta",
    "events",        "pc",        "marker",           "de",      NULL};
const char *const bullc__orphan_skip_extra[] = {"metrics", NULL};
const char *const bullc__orphan_subkeys[] = {"logs",         "dependencies", "processed", "failed",
                                             "unsuccessful", "lock",         NULL};

/* 5.81.5's calls that differ from 6.7.0's (its Scripts class): keys that 6.x
 * dropped or added around its pause-by-flag layout, and pause's arguments. */
static const bullc__call calls_v5[BULLC__C_N] = {
    [BULLC__C_PAUSE] = {"pause", "pause",
                        KEYS(BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_PRIORITIZED, BULLC__K_EVENTS,
                             BULLC__K_DELAYED, BULLC__K_MARKER),
                        1, "\"paused\""},
    [BULLC__C_RESUME] = {"pause:resume", "pause",
                         KEYS(BULLC__K_PAUSED, BULLC__K_WAIT, BULLC__K_META, BULLC__K_PRIORITIZED, BULLC__K_EVENTS,
                              BULLC__K_DELAYED, BULLC__K_MARKER),
                         1, "\"resumed\""},
    [BULLC__C_MOVE_TO_DELAYED] = {"moveToDelayed", "moveToDelayed",
                                  KEYS(BULLC__K_MARKER, BULLC__K_ACTIVE, BULLC__K_PRIORITIZED, BULLC__K_DELAYED,
                                       BULLC__K_JOB, BULLC__K_EVENTS, BULLC__K_META, BULLC__K_STALLED, BULLC__K_WAIT,
                                       BULLC__K_LIMITER, BULLC__K_PAUSED, BULLC__K_PC),
                                  9,
                                  "base, now, job id, token, delay, skipAttempt \"0\", packed fail fields, fetch "
                                  "next (1/0), packed fetch opts or \"\""},
    [BULLC__C_REPROCESS_JOB] = {"reprocessJob", "reprocessJob",
                                KEYS(BULLC__K_JOB, BULLC__K_EVENTS, BULLC__K_STATE, BULLC__K_WAIT, BULLC__K_META,
                                     BULLC__K_PAUSED, BULLC__K_ACTIVE, BULLC__K_MARKER),
                                6,
                                "job id, LPUSH or RPUSH (lifo), \"failedReason\" or \"returnvalue\", state, reset "
                                "attemptsMade (1/0), reset attemptsStarted (1/0)"},
    [BULLC__C_GET_COUNTS_PER_PRIORITY] = {"getCountsPerPriority", "getCountsPerPriority",
                                          KEYS(BULLC__K_WAIT, BULLC__K_PAUSED, BULLC__K_META, BULLC__K_PRIORITIZED), -1,
                                          "the priorities"},
    [BULLC__C_ADD_REPEATABLE_JOB] = {"addRepeatableJob", "addRepeatableJob", KEYS(BULLC__K_REPEAT, BULLC__K_DELAYED), 5,
                                     "next millis, packed {name, endDate, tz, pattern, every}, legacy key, key, base"},
    [BULLC__C_UPDATE_REPEATABLE_JOB_MILLIS] = {"updateRepeatableJobMillis", "updateRepeatableJobMillis",
                                               KEYS(BULLC__K_REPEAT), 3, "next millis, key, legacy key"},
    [BULLC__C_REMOVE_REPEATABLE] = {"removeRepeatable", "removeRepeatable",
                                    KEYS(BULLC__K_REPEAT, BULLC__K_DELAYED, BULLC__K_EVENTS), 4,
                                    "legacy job id, concatenated options or the key, key, base"},
    /* 5.x's FlowProducer releases no parent at the end: no such script */
    [BULLC__C_RELEASE_PARENT] = {"releaseParentIfNoPendingDependencies", NULL, 0, {0}, 0, "absent in 5.x"},
};

const bullc__protocol bullc__protocol_v6 = {
    6, bullc__scripts_bullmq_version, "bullmq:" BULLC_BULLMQ_VERSION, NULL, 10, false, true};
const bullc__protocol bullc__protocol_v5 = {
    5, bullc__scripts5_bullmq_version, "bullmq:" BULLC_BULLMQ5_VERSION, calls_v5, 9, true, false};

const bullc__protocol *bullc__protocol_of(int major) {
    return major == 6 ? &bullc__protocol_v6 : major == 5 ? &bullc__protocol_v5 : NULL;
}

int bullc__meta_version_major(const char *v) {
    if (!v || strncmp(v, "bullmq:", 7)) return 0;
    char *end;
    long m = strtol(v + 7, &end, 10);
    return end > v + 7 && (*end == '.' || !*end) && m > 0 && m < 1000 ? (int)m : 0;
}

#define WAY_OUT                                                                                            \
    "set the major explicitly (--bullmq-version 5|6, BULLC_BULLMQ_VERSION, bullmqVersion, or the C API's " \
    "*_set_bullmq_version) to the one the queue's Node peers run"

int bullc__protocol_settle(const char *queue, int explicit_major, const char *meta_version,
                           const bullc__protocol *before, const bullc__protocol **out, bool *write_version,
                           bullc_error *err) {
    int m = meta_version ? bullc__meta_version_major(meta_version) : -1; /* -1: none, 0: not BullMQ's form */
    const bullc__protocol *p;
    if (explicit_major) {
        p = bullc__protocol_of(explicit_major);
        if (m > 0 && bullc__protocol_of(m) && m != explicit_major)
            return bullc__err(err, BULLC_EVERSION,
                              "queue %s: its meta.version is %s (BullMQ %d) but BullMQ %d was chosen: nothing "
                              "written; choose %d or auto, or move all of the queue's peers to BullMQ %d first "
                              "(mixing majors on one queue loses jobs when it is paused)",
                              queue, meta_version, m, explicit_major, m, explicit_major);
    } else if (m < 0) {
        p = before ? before : &bullc__protocol_v6;
    } else if (!(p = bullc__protocol_of(m))) {
        return bullc__err(err, BULLC_EVERSION,
                          "queue %s: its meta.version is %s, a BullMQ major bullc does not speak (5 and 6): "
                          "nothing written; " WAY_OUT " if that major is compatible",
                          queue, meta_version);
    }
    if (before && before != p)
        return bullc__err(err, BULLC_EVERSION,
                          "queue %s: its meta.version changed to %s while bullc spoke BullMQ %d to it: a peer of "
                          "another major took the queue over; stopped; " WAY_OUT,
                          queue, meta_version ? meta_version : "(none)", before->major);
    *out = p;
    /* a meta.version of another major stays: Node's peers of that major read it */
    *write_version = m < 0 || m == p->major;
    return 0;
}

/* The scripts of every call, per protocol; [0] is 6.x, [1] is 5.x. */
static const bullc__script *call_scripts[2][BULLC__C_N];
static pthread_once_t call_scripts_once = PTHREAD_ONCE_INIT;

static void find_scripts_of(const bullc__protocol *p, const bullc__script *table, size_t n, const bullc__script **out) {
    for (int c = 0; c < BULLC__C_N; c++) {
        const bullc__call *d = bullc__call_of(p, c);
        if (!d->script) { /* a call this major does not have */
            out[c] = NULL;
            continue;
        }
        const bullc__script *s = bullc__script_find(table, n, d->script);
        /* a descriptor that disagrees with the embedded script is a bullc bug
         * that must not reach Redis */
        if (s->numkeys != d->nkeys) {
            fprintf(stderr, "bullc: %s (bullmq %s) takes %d keys, its descriptor lists %d\n", s->id, p->version,
                    s->numkeys, d->nkeys);
            abort();
        }
        out[c] = s;
    }
}

static void find_call_scripts(void) {
    find_scripts_of(&bullc__protocol_v6, bullc__scripts, bullc__scripts_count, call_scripts[0]);
    find_scripts_of(&bullc__protocol_v5, bullc__scripts5, bullc__scripts5_count, call_scripts[1]);
}

const bullc__script *bullc__call_script(const bullc__protocol *p, bullc__call_id c) {
    pthread_once(&call_scripts_once, find_call_scripts);
    return call_scripts[p->major == 5][c];
}

int bullc__call_keys(const bullc__protocol *p, bullc__call_id c, const bullc__keys *ks, const bullc__call_ctx *x,
                     const char **argv, size_t *lens) {
    const bullc__call *d = bullc__call_of(p, c);
    for (int i = 0; i < d->nkeys; i++) {
        int k = d->keys[i];
        const char *s;
        switch (k) {
        case BULLC__K_STATE:
            s = ks->k[x->state];
            break;
        case BULLC__K_JOB:
            s = x->job;
            break;
        case BULLC__K_JOB_LOGS:
            s = x->logs;
            break;
        case BULLC__K_JOB_LOCK:
            s = x->lock;
            break;
        case BULLC__K_JOB_DEPS:
            s = x->deps;
            break;
        case BULLC__K_JOB_UNSUCCESSFUL:
            s = x->unsuccessful;
            break;
        case BULLC__K_JOB_PROCESSED:
            s = x->processed;
            break;
        case BULLC__K_DEDUP_ID:
            s = x->dedup;
            break;
        default:
            argv[i] = ks->k[k];
            lens[i] = sdslen(ks->k[k]);
            continue;
        }
        argv[i] = s;
        lens[i] = strlen(s);
    }
    return d->nkeys;
}

/* ---- job options ---------------------------------------------------------------- */

/* Node's optsEncodeMap (and its inverse, optsDecodeMap). */
const bullc__opt_name bullc__opt_names[] = {
    {"deduplication", "de"},
    {"failParentOnFailure", "fpof"},
    {"continueParentOnFailure", "cpof"},
    {"ignoreDependencyOnFailure", "idof"},
    {"keepLogs", "kl"},
    {"removeDependencyOnFailure", "rdof"},
};

const size_t bullc__opt_names_count = sizeof bullc__opt_names / sizeof bullc__opt_names[0];

const char *const bullc__opt_parent_flags[4] = {"fpof", "cpof", "idof", "rdof"};

const char *bullc__opt_short(const char *name) {
    for (size_t i = 0; i < bullc__opt_names_count; i++)
        if (!strcmp(name, bullc__opt_names[i].name)) return bullc__opt_names[i].short_name;
    return NULL;
}

const char *bullc__opt_long(const char *short_name) {
    for (size_t i = 0; i < bullc__opt_names_count; i++)
        if (!strcmp(short_name, bullc__opt_names[i].short_name)) return bullc__opt_names[i].name;
    return NULL;
}

/* ---- error codes -------------------------------------------------------------------- */

int bullc__script_code_err(long long code, const char *job_id, const char *command, const char *state,
                           bullc_error *err) {
    const char *id = job_id ? job_id : "";
    const char *cmd = command ? command : "";
    const char *st = state ? state : "expected";
    switch (code) {
    case -1: /* JobNotExist */
        return bullc__err(err, BULLC_ENOTFOUND, "Missing key for job %s. %s", id, cmd);
    case -2: /* JobLockNotExist */
        return bullc__err(err, BULLC_ELOCK, "Missing lock for job %s. %s", id, cmd);
    case -3: /* JobNotInState */
        return bullc__err(err, BULLC_ESTATE, "Job %s is not in the %s state. %s", id, st, cmd);
    case -4: /* JobPendingChildren */
        return bullc__err(err, BULLC_ESTATE, "Job %s has pending dependencies. %s", id, cmd);
    case -5: /* ParentJobNotExist */
        return bullc__err(err, BULLC_ENOTFOUND, "Missing key for parent job %s. %s", id, cmd);
    case -6: /* JobLockMismatch */
        return bullc__err(err, BULLC_ELOCK, "Lock mismatch for job %s. Cmd %s from %s", id, cmd, st);
    case -7: /* ParentJobCannotBeReplaced */
        return bullc__err(err, BULLC_ESTATE, "The parent job %s cannot be replaced. %s", id, cmd);
    case -8: /* JobBelongsToJobScheduler */
        return bullc__err(err, BULLC_ESTATE, "Job %s belongs to a job scheduler and cannot be removed directly. %s", id,
                          cmd);
    case -9: /* JobHasFailedChildren */
        return bullc__err(err, BULLC_ESTATE, "Cannot complete job %s because it has at least one failed child. %s", id,
                          cmd);
    case -10: /* SchedulerJobIdCollision */
        return bullc__err(err, BULLC_ESTATE, "Cannot create job scheduler iteration - job ID already exists. %s", cmd);
    case -11: /* SchedulerJobSlotsBusy */
        return bullc__err(err, BULLC_ESTATE,
                          "Cannot create job scheduler iteration - current and next time slots already have jobs. %s",
                          cmd);
    default:
        return bullc__err(err, BULLC_EREDIS, "Unknown code %lld error for %s. %s", code, id, cmd);
    }
}

/* ---- option objects the worker packs -------------------------------------------------- */

void bullc__pack_limiter(msgpack_packer *pk, int64_t max, int64_t duration) {
    bullc__pack_str(pk, "limiter");
    msgpack_pack_map(pk, 2);
    bullc__pack_str(pk, "max");
    msgpack_pack_int64(pk, max);
    bullc__pack_str(pk, "duration");
    msgpack_pack_int64(pk, duration);
}

void bullc__pack_fetch_opts(msgpack_packer *pk, const bullc__fetch_opts *o, const char *token) {
    msgpack_pack_map(pk, 2 + (o->limiter_max > 0) + (o->name != NULL));
    bullc__pack_str(pk, "token");
    bullc__pack_str(pk, token);
    bullc__pack_str(pk, "lockDuration");
    msgpack_pack_int64(pk, o->lock_duration);
    if (o->limiter_max > 0) bullc__pack_limiter(pk, o->limiter_max, o->limiter_duration);
    if (o->name) {
        bullc__pack_str(pk, "name");
        bullc__pack_str(pk, o->name);
    }
}

/* Node's getKeepJobs: an object as it is, else {count}: true keeps none (0),
 * false or nothing keeps all (-1), a number keeps that many. */
static double keep_count(const cJSON *v) { return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsTrue(v) ? 0 : -1; }

void bullc__pack_keep_jobs(msgpack_packer *pk, const cJSON *v) {
    if (cJSON_IsObject(v)) {
        bullc__pack_json(pk, v);
        return;
    }
    msgpack_pack_map(pk, 1);
    bullc__pack_str(pk, "count");
    bullc__pack_number(pk, keep_count(v));
}
