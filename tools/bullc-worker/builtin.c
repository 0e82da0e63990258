/* SPDX-License-Identifier: MIT */
/* Builtin processors. For tests, benchmarks and smoke checks of a
 * deployment: noop (completes at once), echo (returns the data) and sleep
 * (waits data.sleepMs on a loop timer, then returns the data), all three
 * asynchronous on the loop. For the reference deployment: game-data
 * (builtin_game_data.c) and notification (builtin_notification.c), blocking
 * processors on the thread pool, since they wait on Redis and HTTP. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

struct bw_sleep {
    uv_timer_t timer;
    bullc_job *job;
    bw_queue *q;
    bw_sleep *prev, *next;
};

/* The blocking builtins: state made at start, a processor on the pool. */
typedef struct blocking_def {
    const char *name;
    int (*init)(bw_queue *q, const bullc_redis_opts *redis, const char *config_json, char *why, size_t n);
    void (*fini)(bw_queue *q);
    bullc_blocking_processor_fn process;
    void (*abort)(bw_queue *q); /* forced shutdown; may be NULL */
} blocking_def;

static const blocking_def blocking[] = {
    {"game-data", bw_game_data_init, bw_game_data_fini, bw_game_data_process, NULL},
    {"notification", bw_notification_init, bw_notification_fini, bw_notification_process, bw_notification_abort},
};

static const blocking_def *blocking_def_of(const char *name) {
    for (size_t i = 0; i < sizeof blocking / sizeof blocking[0]; i++)
        if (!strcmp(blocking[i].name, name)) return &blocking[i];
    return NULL;
}

bool bw_builtin_known(const char *name) {
    return !strcmp(name, "noop") || !strcmp(name, "echo") || !strcmp(name, "sleep") || blocking_def_of(name);
}

bool bw_builtin_blocking(const char *name) { return blocking_def_of(name) != NULL; }

/* The asynchronous builtins, told apart once at start: their state is
 * which one runs (bw_builtin_process is called per job). */
typedef enum { ASYNC_NOOP, ASYNC_ECHO, ASYNC_SLEEP } async_kind;
static const async_kind async_kinds[] = {ASYNC_NOOP, ASYNC_ECHO, ASYNC_SLEEP};

static async_kind async_kind_of(const char *name) {
    return !strcmp(name, "noop") ? ASYNC_NOOP : !strcmp(name, "echo") ? ASYNC_ECHO : ASYNC_SLEEP;
}

int bw_builtin_init(bw_queue *q, const bullc_redis_opts *redis, char *why, size_t why_size) {
    const blocking_def *d = blocking_def_of(q->cfg->proc.builtin);
    if (d) return d->init(q, redis, q->cfg->proc.config_json, why, why_size);
    if (q->cfg->proc.config_json) {
        snprintf(why, why_size, "builtin %s takes no configuration (queue %s)", q->cfg->proc.builtin, q->cfg->name);
        return BW_EXIT_USAGE;
    }
    q->builtin_state = (void *)&async_kinds[async_kind_of(q->cfg->proc.builtin)];
    return 0;
}

void bw_builtin_fini(bw_queue *q) {
    const blocking_def *d = blocking_def_of(q->cfg->proc.builtin);
    if (d && q->builtin_state) d->fini(q);
}

/* Thread-pool thread. */
void bw_builtin_process_blocking(bullc_job *job, bullc_job_result *out, void *data) {
    bw_queue *q = data;
    blocking_def_of(q->cfg->proc.builtin)->process(job, out, data);
}

static void sleep_closed(uv_handle_t *h) { free(h->data); }

static void sleep_unlink(bw_sleep *s) {
    if (s->prev)
        s->prev->next = s->next;
    else
        s->q->sleeps = s->next;
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
    const async_kind *k = q->builtin_state;
    async_kind kind = k ? *k : async_kind_of(q->cfg->proc.builtin);
    if (kind == ASYNC_NOOP) {
        bullc_job_complete(job, NULL);
        return;
    }
    if (kind == ASYNC_ECHO) {
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
    const blocking_def *d = q->cfg->proc.kind == BW_PROC_BUILTIN ? blocking_def_of(q->cfg->proc.builtin) : NULL;
    if (d && d->abort && q->builtin_state) d->abort(q);
    while (q->sleeps) {
        bw_sleep *s = q->sleeps;
        bullc_job *job = s->job;
        sleep_unlink(s);
        /* the worker is closing with force: this result is not stored, the
         * job stays active until stalled recovery moves it back */
        bullc_job_fail(job, "bullc-worker shut down", 0);
    }
}
