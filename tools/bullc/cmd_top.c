/* SPDX-License-Identifier: MIT */
/* bullc top [QUEUE...]: a live view of queues, one frame per interval. Each
 * frame costs Redis, per queue, one getCounts call, one events-stream read
 * (the added/completed/failed entries since the last frame give the rates:
 * counts alone cannot, as removeOnComplete keeps the completed set's size
 * flat), one read of the oldest waiting job and one CLIENT LIST for the
 * workers. On a terminal each frame replaces the last; otherwise frames are
 * appended as plain text, so that a pipe or a log gets them whole. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *const states[] = {"waiting", "active", "delayed", "prioritized", "completed", "failed"};
enum { NSTATES = sizeof states / sizeof states[0] };
enum { R_ADDED, R_COMPLETED, R_FAILED, NRATES };

typedef struct row {
    const char *name;
    bullc_queue *q;
    char last_id[48]; /* the events stream's last entry read */
    int64_t counts[NSTATES];
    double rates[NRATES];
    long workers;
    double oldest_ms; /* age of the oldest waiting job; < 0: none */
    bool ok;
    bullc_error err; /* the last frame's failure */
    char error[160];
} row;

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The added/completed/failed events since the last frame (`events` counts
 * each); the stream may hold more than one read gives, so read until it is
 * exhausted, 1,000 entries at a time. */
static int read_events(row *r, long events[NRATES], bullc_error *err) {
    for (;;) {
        char *json = NULL;
        int rc = bullc_queue_get_events(r->q, r->last_id, 1000, &json, err);
        if (rc) return rc;
        cJSON *a = cJSON_Parse(json);
        bullc_free(json);
        int n = 0;
        for (cJSON *e = a ? a->child : NULL; e; e = e->next, n++) {
            const cJSON *ev = cJSON_GetObjectItemCaseSensitive(e, "event");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
            if (cJSON_IsString(id)) snprintf(r->last_id, sizeof r->last_id, "%s", id->valuestring);
            if (!cJSON_IsString(ev)) continue;
            if (!strcmp(ev->valuestring, "added"))
                events[R_ADDED]++;
            else if (!strcmp(ev->valuestring, "completed"))
                events[R_COMPLETED]++;
            else if (!strcmp(ev->valuestring, "failed"))
                events[R_FAILED]++;
        }
        cJSON_Delete(a);
        if (n < 1000) return 0;
    }
}

static void sample(row *r, double elapsed_ms) {
    bullc_error err = {0};
    long events[NRATES] = {0};
    int rc = bullc_queue_count_jobs(r->q, states, NSTATES, r->counts, &err);
    if (!rc) rc = read_events(r, events, &err);
    char *json = NULL;
    if (!rc) rc = bullc_queue_get_workers(r->q, &json, &err);
    if (!rc) {
        cJSON *a = cJSON_Parse(json);
        r->workers = a ? cJSON_GetArraySize(a) : 0;
        cJSON_Delete(a);
        bullc_free(json);
        json = NULL;
        static const char *const waiting[] = {"waiting"};
        rc = bullc_queue_get_jobs(r->q, waiting, 1, 0, 0, true, &json, &err);
    }
    if (!rc) {
        cJSON *a = cJSON_Parse(json);
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(a ? a->child : NULL, "timestamp");
        r->oldest_ms = cJSON_IsNumber(ts) ? now_ms() - ts->valuedouble : -1;
        cJSON_Delete(a);
        bullc_free(json);
    }
    r->ok = rc == 0;
    r->err = err;
    if (rc) {
        char *p = cli_printable(err.message);
        snprintf(r->error, sizeof r->error, "%s", p ? p : "error");
        free(p);
        return;
    }
    for (int i = 0; i < NRATES; i++) r->rates[i] = elapsed_ms > 0 ? (double)events[i] * 1000.0 / elapsed_ms : -1;
}

static void age(double ms, char *buf, size_t n) {
    if (ms < 0)
        snprintf(buf, n, "-");
    else if (ms < 60e3)
        snprintf(buf, n, "%.1fs", ms / 1e3);
    else if (ms < 3600e3)
        snprintf(buf, n, "%lldm%02llds", (long long)(ms / 1e3) / 60, (long long)(ms / 1e3) % 60);
    else
        snprintf(buf, n, "%.1fh", ms / 3600e3);
}

static void rate(double r, char *buf, size_t n) {
    if (r < 0)
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, "%.1f", r);
}

static void frame(row *rows, int nrows, bool tty) {
    char when[40];
    cli_iso_time(now_ms(), when, sizeof when);
    if (tty) fputs("\033[H\033[2J", stdout); /* home, clear: the new frame replaces the last */
    printf("bullc top  %s\n", when);
    printf("%-20s %8s %7s %8s %6s %10s %8s %8s %8s %8s %7s %8s\n", "QUEUE", "WAITING", "ACTIVE", "DELAYED", "PRIO",
           "COMPLETED", "FAILED", "ADDED/S", "DONE/S", "FAIL/S", "WORKERS", "OLDEST");
    for (int i = 0; i < nrows; i++) {
        row *r = &rows[i];
        char *name = cli_printable(r->name);
        if (!r->ok) {
            printf("%-20s error: %s\n", name ? name : "?", r->error);
            free(name);
            continue;
        }
        char a[16], d[16], f[16], o[16];
        rate(r->rates[R_ADDED], a, sizeof a);
        rate(r->rates[R_COMPLETED], d, sizeof d);
        rate(r->rates[R_FAILED], f, sizeof f);
        age(r->oldest_ms, o, sizeof o);
        printf("%-20s %8lld %7lld %8lld %6lld %10lld %8lld %8s %8s %8s %7ld %8s\n", name ? name : "?",
               (long long)r->counts[0], (long long)r->counts[1], (long long)r->counts[2], (long long)r->counts[3],
               (long long)r->counts[4], (long long)r->counts[5], a, d, f, r->workers, o);
        free(name);
    }
    if (!tty) putchar('\n');
    fflush(stdout);
}

int cmd_top(cli *c) {
    cli_flag flags[] = {{"interval", true, NULL, 0}, {"count", true, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[64] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 64, NULL, NULL);
    long long interval = 1000, count = 0;
    if (!rc && flags[0].set) rc = cli_flag_i64(&flags[0], 100, 3600000, &interval);
    if (!rc && flags[1].set) rc = cli_flag_i64(&flags[1], 0, INT32_MAX, &count);
    if (rc) return rc;
    char *list = NULL;
    cJSON *names = NULL;
    if (!npos) { /* every queue under the prefix */
        bullc_redis_opts *ro = NULL;
        if ((rc = cli_redis_opts(c, &ro))) return rc;
        bullc_error err = {0};
        int r = bullc_queue_list(ro, c->prefix, &list, &err);
        bullc_redis_opts_free(ro);
        if (r) return cli_fail_err(r, &err);
        names = cJSON_Parse(list);
        for (cJSON *n = names ? names->child : NULL; n && npos < 64; n = n->next)
            if (cJSON_IsString(n)) pos[npos++] = n->valuestring;
        if (!npos) rc = cli_fail(EXIT_FAIL, "no queue under prefix '%s': name one", c->prefix ? c->prefix : "bull");
    }
    row *rows = calloc((size_t)npos + 1, sizeof *rows);
    if (!rc && !rows) rc = cli_fail(EXIT_FAIL, "out of memory");
    int nrows = 0;
    char start[32];
    snprintf(start, sizeof start, "%.0f-0", now_ms()); /* events from now on */
    for (int i = 0; i < npos && !rc; i++, nrows++) {
        rows[i].name = pos[i];
        rows[i].oldest_ms = -1;
        snprintf(rows[i].last_id, sizeof rows[i].last_id, "%s", start);
        rc = cli_open_admin(c, pos[i], &rows[i].q);
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    double last = now_ms(), elapsed = -1;
    for (long long n = 0; !rc && !stop && (!count || n < count); n++) {
        int failed = 0;
        for (int i = 0; i < nrows; i++) {
            sample(&rows[i], elapsed);
            failed += !rows[i].ok;
        }
        /* nothing readable at the start (Redis out of reach, a bad URL) is an
         * error as for the other verbs; later, a row says so and the next frame
         * tries again */
        if (n == 0 && failed == nrows) {
            rc = cli_fail_err(rows[0].err.code ? rows[0].err.code : BULLC_ECONN, &rows[0].err);
            break;
        }
        frame(rows, nrows, tty);
        if (count && n + 1 >= count) break;
        double until = now_ms() + (double)interval;
        while (!stop && now_ms() < until) usleep(20000);
        double t = now_ms();
        elapsed = t - last;
        last = t;
    }
    for (int i = 0; i < nrows; i++) bullc_queue_free(rows[i].q);
    free(rows);
    cJSON_Delete(names);
    bullc_free(list);
    return rc;
}
