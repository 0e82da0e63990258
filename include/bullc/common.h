/* SPDX-License-Identifier: MIT */
/* Export macro, error codes and the caller-owned error record shared by every bullc API. */
#ifndef BULLC_COMMON_H
#define BULLC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(BULLC_BUILDING)
#define BULLC_EXPORT __attribute__((visibility("default")))
#else
#define BULLC_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Every fallible call returns 0 or one of these negative codes. */
typedef enum bullc_errcode {
    BULLC_OK = 0,
    BULLC_EINVAL = -1,    /* invalid argument: bad JSON, option, id, name, URL */
    BULLC_ENOMEM = -2,    /* out of memory */
    BULLC_ECONN = -3,     /* cannot connect to Redis, or the connection broke */
    BULLC_ETIMEDOUT = -4, /* Redis did not answer within the command timeout */
    BULLC_EAUTH = -5,     /* AUTH or SELECT was refused */
    BULLC_EREDIS = -6,    /* Redis or a Lua script replied with an error */
    BULLC_EPROTO = -7,    /* a reply of an unexpected shape */
    BULLC_ENOTFOUND = -8, /* the job (or its parent) does not exist (Lua code -1 / -5) */
    BULLC_ELOCK = -9,     /* the job's lock is missing or held by another token (-2 / -6) */
    BULLC_ESTATE = -10,   /* the job (or queue) is not in the state the call needs (-3, -4, -7, -8, -9;
                             obliterating a queue that is not paused or has active jobs) */
    BULLC_ECLOSED = -11,  /* the handle is closing or closed */
    BULLC_ESYS = -12,     /* an operating-system call failed (see the message) */
    BULLC_EVERSION = -13  /* the queue's meta.version is another BullMQ major than the one chosen (or
                             changed major while the handle runs): nothing was written */
} bullc_errcode;

/* Filled by fallible calls when the caller passes one (it may pass NULL).
 * Owned by the caller, usually on the stack; no free needed. `message` never
 * holds a password. */
typedef struct bullc_error {
    int code;
    char message[512];
} bullc_error;

/* A static, human-readable description of a bullc_errcode. Thread-safe. */
BULLC_EXPORT const char *bullc_strerror(int code);

/* The code's name ("BULLC_EINVAL", ...). Thread-safe. */
BULLC_EXPORT const char *bullc_err_name(int code);

/* Releases memory that a bullc call handed to the caller (job ids, JSON
 * texts). NULL is a no-op. */
BULLC_EXPORT void bullc_free(void *ptr);

/* A custom repeat strategy (Node's settings.repeatStrategy), set on a queue
 * (its upserts) and on a worker (the iterations it schedules): the next time
 * of a scheduler with a `pattern`, in place of the cron engine, so a pattern
 * may be anything the function reads (an RRULE, say). `millis` is Node's
 * "now" (the clock, or the template's prevMillis when later), `repeat_json`
 * the repeat options as Node hands them (pattern, tz, startDate, ...),
 * `name` the job name. Returns 0 with *next_ms set (a time before `millis`
 * is taken as `millis`), 1 for no next time (nothing is scheduled, as when
 * Node's returns undefined), or a negative BULLC_E* code: the upsert fails
 * with it, a worker reports it as its scheduling error. Called on the
 * thread of the call that schedules: the upsert's, the worker's loop. */
typedef int (*bullc_repeat_strategy_fn)(int64_t millis, const char *repeat_json, const char *name, int64_t *next_ms,
                                        void *data);

/* Test hook, never for production: freezes the wall clock bullc reads for
 * every time it computes or sends to Redis (job timestamps and delays, the
 * "now" of every script call, a scheduler's next iteration) at `epoch_ms`,
 * as Node's tests freeze Date.now() with fake timers, so a test can run a
 * scenario of days or months against a real Redis at once; `epoch_ms` <= 0
 * returns to the system clock. Process-wide (every handle, every thread; an
 * atomic, callable from any thread). Event-loop timers and blocking waits
 * (lock renewal, stalled checks, retries' and rate limits' waits, command
 * timeouts, a worker's block on the marker, capped at 10 s) keep real time:
 * move the frozen clock before an operation that should see the new time. */
BULLC_EXPORT void bullc_test_clock_set(int64_t epoch_ms);

/* Moves the frozen clock of bullc_test_clock_set forward by `ms` (Node's
 * clock.tick, without running timers) and returns the new time; on the
 * system clock it changes nothing and returns 0. Any thread. */
BULLC_EXPORT int64_t bullc_test_clock_tick(int64_t ms);

/* The library's version ("0.1.0") and the BullMQ version whose scripts it
 * embeds ("6.7.0"). Static strings. */
BULLC_EXPORT const char *bullc_version(void);
BULLC_EXPORT const char *bullc_bullmq_version(void);

#ifdef __cplusplus
}
#endif
#endif
