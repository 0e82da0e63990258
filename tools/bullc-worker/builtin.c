/* SPDX-License-Identifier: MIT */
/* Builtin processors, for tests, benchmarks and smoke checks of a
 * deployment: noop (completes at once), echo (returns the data) and sleep
 * (waits data.sleepMs on a loop timer, then returns the data). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

struct bw_sleep {
    uv_timer_t timer;
    bullc_job *job;
    bw_queue *q;
    bw_sleep *prev, *next;
};

bool bw_builtin_known(const char *name) {
    return !strcmp(name, "noop") || !strcmp(name, "echo") || !strcmp(name, "sleep");
}

static void sleep_closed(uv_handle_t *h) { free(h->data); }

static void sleep_unlink(bw_sleep *s) {
    if (s->prev) s->prev->next = s->next;
    else s->q->sleeps = s->next;
    if (s->next) s->next->prev = s->prev;
    uv_close((uv_handle_t *)&s->timer, sleep_closed);
}

static void sleep_done(uv_timer_t *t) {
    bw_sleep *s = t->data;
    bullc_job *job = s->job;
    sleep_unlink(s);
    bullc_job_complete(job, bullc_job_data(job));
}

/* data.sleepMs as a whole number of ms, or -1 when it is not one. */
static int64_t sleep_ms(const bullc_job *job) {
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, "sleepMs");
    int64_t ms = cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (int64_t)v->valuedouble : -1;
    if (!v) ms = 0; /* no sleepMs: no wait */
    cJSON_Delete(d);
    return ms;
}

void bw_builtin_process(bullc_job *job, void *data) {
    bw_queue *q = data;
    const char *name = q->cfg->proc.builtin;
    if (!strcmp(name, "noop")) {
        bullc_job_complete(job, NULL);
        return;
    }
    if (!strcmp(name, "echo")) {
        bullc_job_complete(job, bullc_job_data(job));
        return;
    }
    int64_t ms = sleep_ms(job);
    if (ms < 0) {
        /* retrying cannot fix the job's own data */
        bullc_job_fail(job, "sleep: data.sleepMs must be a number of milliseconds >= 0", BULLC_FAIL_UNRECOVERABLE);
        return;
    }
    bw_sleep *s = calloc(1, sizeof *s);
    if (!s) {
        bullc_job_fail(job, "sleep: out of memory", 0);
        return;
    }
    s->job = job;
    s->q = q;
    s->timer.data = s;
    uv_timer_init(&q->app->loop, &s->timer);
    s->next = q->sleeps;
    if (q->sleeps) q->sleeps->prev = s;
    q->sleeps = s;
    uv_timer_start(&s->timer, sleep_done, (uint64_t)ms, 0);
}

void bw_builtin_abort_all(bw_queue *q) {
    while (q->sleeps) {
        bw_sleep *s = q->sleeps;
        bullc_job *job = s->job;
        sleep_unlink(s);
        /* the worker is closing with force: this result is not stored, the
         * job stays active until stalled recovery moves it back */
        bullc_job_fail(job, "bullc-worker shut down", 0);
    }
}
