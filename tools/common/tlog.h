/* SPDX-License-Identifier: MIT */
/* The programs' log: one line per event, text or JSON (tlog.c). Shared by
 * bullc-worker and bullc-socket-client, which log the same way. */
#ifndef BULLC_TOOLS_TLOG_H
#define BULLC_TOOLS_TLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { TLOG_DEBUG, TLOG_INFO, TLOG_WARN, TLOG_ERROR };
enum { TLOG_TEXT, TLOG_JSON };
enum { TLOG_F_STR, TLOG_F_INT, TLOG_F_BOOL, TLOG_F_JSON, TLOG_F_STRN };

/* One key=value of a log line. TLOG_F_JSON values are JSON texts, embedded as
 * such in JSON lines and printed as they are in text lines. */
typedef struct tlog_field {
    const char *key;
    int type;
    const char *s;
    int64_t i;
} tlog_field;

#define TLOG_S(k, v) ((tlog_field){(k), TLOG_F_STR, (v), 0})
#define TLOG_I(k, v) ((tlog_field){(k), TLOG_F_INT, NULL, (int64_t)(v)})
#define TLOG_B(k, v) ((tlog_field){(k), TLOG_F_BOOL, NULL, (v) ? 1 : 0})
#define TLOG_J(k, v) ((tlog_field){(k), TLOG_F_JSON, (v), 0})
/* A string of `n` bytes that may hold NULs (a job name from Node can). */
#define TLOG_SN(k, v, n) ((tlog_field){(k), TLOG_F_STRN, (v), (int64_t)(n)})

/* Opens the log: `path` NULL means stderr, else the file is opened with
 * O_APPEND (created with mode 0600). 0, or -errno with `why` filled. */
int tlog_open(const char *path, int format, int level, char *why, size_t why_size);
/* Reopens the log file (SIGHUP, after logrotate moved it). */
void tlog_reopen(void);
void tlog_close(void);
bool tlog_enabled(int level);
/* Writes one line: `event` and then the fields, in order. NULL string
 * fields are left out. */
void tlog(int level, const char *event, size_t n, const tlog_field *fields);
/* The first element only makes the array non-empty; it is skipped. */
#define TLOG(level, event, ...)                                                          \
    do {                                                                                 \
        if (tlog_enabled(level)) {                                                       \
            const tlog_field tlog_f_[] = {{NULL, 0, NULL, 0}, __VA_ARGS__};              \
            tlog((level), (event), sizeof tlog_f_ / sizeof tlog_f_[0] - 1, tlog_f_ + 1); \
        }                                                                                \
    } while (0)
int tlog_level_parse(const char *s);

/* The wall clock and a monotonic clock, in ms. */
int64_t tlog_now_ms(void);
int64_t tlog_mono_ms(void);

#endif
