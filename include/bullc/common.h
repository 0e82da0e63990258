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

/* The library's version ("0.1.0") and the BullMQ version whose scripts it
 * embeds ("6.7.0"). Static strings. */
BULLC_EXPORT const char *bullc_version(void);
BULLC_EXPORT const char *bullc_bullmq_version(void);

#ifdef __cplusplus
}
#endif
#endif
