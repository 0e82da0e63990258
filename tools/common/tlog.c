/* SPDX-License-Identifier: MIT */
/* The programs' log (bullc-worker, bullc-socket-client): one line per event,
 * as text (`TIME LEVEL EVENT key=value...`) or as one JSON object per line,
 * to stderr or to a file that SIGHUP reopens. Any thread may log: each line
 * is one write(), so lines never interleave. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tlog.h"

static struct {
    int fd;
    int format, level;
    char *path;
} lg = {2, TLOG_TEXT, TLOG_INFO, NULL};

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int tlog_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, level_names[i])) return i;
    if (!strcmp(s, "warning")) return TLOG_WARN;
    return -1;
}

static int open_file(const char *path) {
    /* 0600: job data, messages and failure reasons can be private */
    return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

int tlog_open(const char *path, int format, int level, char *why, size_t why_size) {
    lg.format = format;
    lg.level = level;
    if (!path) return 0;
    int fd = open_file(path);
    if (fd < 0) {
        int e = errno;
        snprintf(why, why_size, "cannot open log file %s: %s", path, strerror(e));
        return -e;
    }
    lg.path = strdup(path);
    lg.fd = fd;
    return 0;
}

void tlog_reopen(void) {
    if (!lg.path) return;
    int fd = open_file(lg.path);
    if (fd < 0) {
        /* keep writing to the old file rather than losing lines */
        TLOG(TLOG_ERROR, "log", TLOG_S("msg", "cannot reopen the log file; still writing to the old one"),
             TLOG_S("path", lg.path), TLOG_S("error", strerror(errno)));
        return;
    }
    /* dup2 swaps the file under the same descriptor number atomically, so
     * another thread never writes to a closed (or reused) descriptor */
    dup2(fd, lg.fd);
    close(fd);
    TLOG(TLOG_INFO, "log", TLOG_S("msg", "log file reopened"), TLOG_S("path", lg.path));
}

void tlog_close(void) {
    if (lg.path) {
        close(lg.fd);
        free(lg.path);
        lg.path = NULL;
        lg.fd = 2;
    }
}

bool tlog_enabled(int level) { return level >= lg.level; }

static void timestamp(char *buf, size_t size) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* Appends to a growing buffer; on allocation failure the line is cut. */
typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->len + n + 2 > b->cap) {
        size_t cap = (b->cap ? b->cap : 256);
        while (cap < b->len + n + 2) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* A text value: bare when it is one plain word, else quoted with escapes, so
 * that a line always splits back into its fields. */
static void put_text_value(buf *b, const char *s, size_t len) {
    bool plain = len != 0;
    for (size_t i = 0; i < len && plain; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' || s[i] == 0x7f) plain = false;
    if (plain) {
        put(b, s, len);
        return;
    }
    put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s, *end = c + len; c < end; c++) {
        char esc[8];
        switch (*c) {
        case '"':
            puts_(b, "\\\"");
            break;
        case '\\':
            puts_(b, "\\\\");
            break;
        case '\n':
            puts_(b, "\\n");
            break;
        case '\r':
            puts_(b, "\\r");
            break;
        case '\t':
            puts_(b, "\\t");
            break;
        default:
            if (*c < ' ' || *c == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", *c);
                puts_(b, esc);
            } else {
                put(b, (const char *)c, 1);
            }
        }
    }
    put(b, "\"", 1);
}

static void format_text(buf *b, const char *ts, int level, const char *event, size_t n, const tlog_field *f) {
    char head[96];
    snprintf(head, sizeof head, "%s %-5s %s", ts, level_names[level], event);
    puts_(b, head);
    for (size_t i = 0; i < n; i++) {
        if (f[i].type != TLOG_F_INT && f[i].type != TLOG_F_BOOL && !f[i].s) continue;
        put(b, " ", 1);
        puts_(b, f[i].key);
        put(b, "=", 1);
        char num[32];
        switch (f[i].type) {
        case TLOG_F_INT:
            snprintf(num, sizeof num, "%lld", (long long)f[i].i);
            puts_(b, num);
            break;
        case TLOG_F_BOOL:
            puts_(b, f[i].i ? "true" : "false");
            break;
        case TLOG_F_STRN:
            put_text_value(b, f[i].s, (size_t)f[i].i);
            break;
        default:
            put_text_value(b, f[i].s, strlen(f[i].s));
        }
    }
}

/* A string with NULs as a raw JSON item: cJSON's own strings end at the
 * first NUL. */
static cJSON *json_string_n(const char *s, size_t len) {
    if (!memchr(s, '\0', len)) return cJSON_CreateString(s);
    char *q = malloc(len * 6 + 3), *o = q;
    if (!q) return NULL;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s, *end = c + len; c < end; c++) {
        if (*c < 0x20 || *c == '"' || *c == '\\')
            o += sprintf(o, "\\u%04x", *c);
        else
            *o++ = (char)*c;
    }
    *o++ = '"';
    *o = '\0';
    cJSON *v = cJSON_CreateRaw(q);
    free(q);
    return v;
}

static void format_json(buf *b, const char *ts, int level, const char *event, size_t n, const tlog_field *f) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "level", level_names[level]);
    cJSON_AddStringToObject(o, "event", event);
    for (size_t i = 0; i < n; i++) {
        cJSON *v = NULL;
        switch (f[i].type) {
        case TLOG_F_INT:
            v = cJSON_CreateNumber((double)f[i].i);
            break;
        case TLOG_F_BOOL:
            v = cJSON_CreateBool(f[i].i != 0);
            break;
        case TLOG_F_JSON:
            if (f[i].s && !(v = cJSON_Parse(f[i].s))) v = cJSON_CreateString(f[i].s);
            break;
        case TLOG_F_STRN:
            if (f[i].s) v = json_string_n(f[i].s, (size_t)f[i].i);
            break;
        default:
            if (f[i].s) v = cJSON_CreateString(f[i].s);
        }
        if (v) cJSON_AddItemToObject(o, f[i].key, v);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) puts_(b, s);
    free(s);
}

void tlog(int level, const char *event, size_t n, const tlog_field *fields) {
    if (!tlog_enabled(level)) return;
    char ts[40];
    timestamp(ts, sizeof ts);
    buf b = {0};
    if (lg.format == TLOG_JSON)
        format_json(&b, ts, level, event, n, fields);
    else
        format_text(&b, ts, level, event, n, fields);
    if (!b.p) return;
    b.p[b.len++] = '\n';
    /* One write per line: with O_APPEND, lines of several processes sharing
     * the file never interleave. */
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(lg.fd, b.p + off, b.len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    free(b.p);
}

int64_t tlog_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tlog_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
