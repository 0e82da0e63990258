/* SPDX-License-Identifier: MIT */
/* /metrics' text: the workers' own figures (bullc_worker_stats, read on the
 * loop, free) and the queues' job counts, which cost Redis a script call
 * each. The counts are asked for on the loop itself, through an
 * asynchronous bullc_aqueue per queue, at most once per --counts-cache; the
 * HTTP server (httpd.c) is told when the last answer is in. No thread: a
 * slow Redis delays the scrape, never the workers. The handles share one
 * bullc_aqueue_conn (one connection, one per master in a cluster): with
 * thousands of queues, not thousands of connections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bw.h"

/* The states Node's getJobCounts() with no arguments lists (queue-getters.js,
 * sanitizeJobTypes), in its order: exportPrometheusMetrics prints these. A
 * 6.x queue has all but "paused"; a 5.x one has "paused" too (its paused
 * queue keeps the waiting jobs there). bullc_aqueue_get_job_counts gives
 * the queue's major's list. */
static const char *const states[] = {"active", "completed",   "delayed", "failed",
                                     "paused", "prioritized", "waiting", "waiting-children"};
#define NSTATES (sizeof states / sizeof states[0])

struct bw_metrics {
    bw_app *app;
    bullc_stats *stats;
    bullc_aqueue_conn *conn; /* the queues' handles' connections, made at start (or at a fetch) */
    bullc_aqueue **queues;   /* one per queue, made at the first fetch */
    size_t n;                /* rows in the arrays: SIGHUP adds queues, the arrays follow at the next fetch */
    size_t pending;          /* counts asked for and not answered yet */
    size_t open;             /* handles whose close has not completed */
    bool stopping;
    uint64_t fetched_at; /* uv_hrtime ms of the last fetch (0: never) */
    int64_t *counts;     /* nqueues x NSTATES, -1: a state the queue's major does not list */
    bool *have;          /* whether queue i's counts were read by the last fetch */
    bool *got;           /* this fetch's answers, moved to `have` once all are in */
};

typedef struct {
    bw_metrics *m;
    size_t i;
} ask;

static uint64_t mono_ms(void) { return uv_hrtime() / 1000000; }

static void free_metrics(bw_metrics *m) {
    bullc_stats_free(m->stats);
    free(m->counts);
    free(m->have);
    free(m->got);
    free(m->queues);
    free(m);
}

static void fetch_done(bw_metrics *m) {
    memcpy(m->have, m->got, m->n * sizeof *m->have);
    m->fetched_at = mono_ms();
    bw_httpd_counts_ready(m->app->httpd);
}

/* Node's getJobCounts() of the queue's major into the queue's row (-1 where
 * that major lists no such state). */
static void on_counts(bullc_aqueue *aq, int status, const char *json, const bullc_error *err, void *data) {
    ask *a = data;
    bw_metrics *m = a->m;
    size_t i = a->i;
    (void)aq;
    (void)err;
    free(a);
    cJSON *o = status ? NULL : cJSON_Parse(json);
    m->got[i] = o != NULL; /* Redis did not answer: no figure rather than an old one */
    for (size_t s = 0; o && s < NSTATES; s++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, states[s]);
        m->counts[i * NSTATES + s] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    }
    cJSON_Delete(o);
    if (--m->pending == 0 && !m->stopping) fetch_done(m);
}

/* The handles' connections; NULL when they cannot be made (out of memory:
 * again at the next fetch). On a cluster they ask a seed for the slot map,
 * blocking, at start before the loop runs; when no seed answers then, the
 * set reads it on the loop by itself (no blocking call after start). */
static bullc_aqueue_conn *shared_conn(bw_metrics *m) {
    if (m->conn) return m->conn;
    bullc_error err = {0};
    if (bullc_aqueue_conn_new(&m->conn, &m->app->loop, m->app->redis, &err)) {
        TLOG(TLOG_WARN, "metrics", TLOG_S("msg", err.message));
        return NULL;
    }
    m->open++;
    return m->conn;
}

/* A queue's handle, made as the worker's queue is opened: its prefix, and
 * its major so that a queue without meta.version counts as it is served. */
static bullc_aqueue *queue_handle(bw_metrics *m, size_t i) {
    if (m->queues[i]) return m->queues[i];
    bw_app *app = m->app;
    if (!shared_conn(m)) return NULL;
    const bw_queue_cfg *c = app->queues[i]->cfg;
    bullc_queue_opts *o = NULL;
    bullc_error err = {0};
    int rc = bullc_queue_opts_new(&o);
    if (!rc && c->s.prefix) rc = bullc_queue_opts_set_prefix(o, c->s.prefix);
    if (!rc) rc = bullc_queue_opts_set_bullmq_version(o, c->s.bullmq_version);
    if (!rc) rc = bullc_aqueue_new_shared(&m->queues[i], m->conn, c->name, o, &err);
    bullc_queue_opts_free(o);
    if (!rc) m->open++;
    return rc ? NULL : m->queues[i];
}

int bw_metrics_start(bw_app *app) {
    bw_metrics *m = calloc(1, sizeof *m);
    if (!m) return BULLC_ENOMEM;
    m->app = app;
    m->n = app->nqueues;
    m->counts = calloc(m->n * NSTATES, sizeof *m->counts);
    m->have = calloc(m->n, sizeof *m->have);
    m->got = calloc(m->n, sizeof *m->got);
    m->queues = calloc(m->n, sizeof *m->queues);
    if ((m->n && (!m->counts || !m->have || !m->got || !m->queues)) || bullc_stats_new(&m->stats)) {
        free_metrics(m);
        return BULLC_ENOMEM;
    }
    app->metrics = m;
    shared_conn(m);
    return 0;
}

static void closed_one(bw_metrics *m) {
    if (--m->open == 0 && m->stopping) free_metrics(m);
}

static void on_queue_closed(bullc_aqueue *aq, void *data) {
    bullc_aqueue_free(aq);
    closed_one(data);
}

static void on_conn_closed(bullc_aqueue_conn *conn, void *data) {
    bullc_aqueue_conn_free(conn);
    closed_one(data);
}

/* Rows for the queues SIGHUP added since the last fetch (zeroed: no figure
 * yet). False when out of memory: the new queues then have no counts. */
static bool grow(bw_metrics *m) {
    size_t n = m->app->nqueues;
    if (n <= m->n) return true;
    int64_t *counts = realloc(m->counts, n * NSTATES * sizeof *counts);
    if (counts) m->counts = counts;
    bool *have = realloc(m->have, n * sizeof *have);
    if (have) m->have = have;
    bool *got = realloc(m->got, n * sizeof *got);
    if (got) m->got = got;
    bullc_aqueue **queues = realloc(m->queues, n * sizeof *queues);
    if (queues) m->queues = queues;
    if (!counts || !have || !got || !queues) return false;
    memset(counts + m->n * NSTATES, 0, (n - m->n) * NSTATES * sizeof *counts);
    memset(have + m->n, 0, (n - m->n) * sizeof *have);
    memset(got + m->n, 0, (n - m->n) * sizeof *got);
    memset(queues + m->n, 0, (n - m->n) * sizeof *queues);
    m->n = n;
    return true;
}

void bw_metrics_stop(bw_app *app) {
    bw_metrics *m = app->metrics;
    if (!m) return;
    app->metrics = NULL;
    m->stopping = true;
    if (!m->open) {
        free_metrics(m);
        return;
    }
    /* a fetch in progress is answered (cancelled) by the closes; the last
     * close frees the rest */
    for (size_t i = 0; i < m->n; i++)
        if (m->queues[i]) bullc_aqueue_close(m->queues[i], on_queue_closed, m);
    if (m->conn) bullc_aqueue_conn_close(m->conn, on_conn_closed, m); /* once the handles are closed */
}

bool bw_metrics_refresh(bw_app *app) {
    bw_metrics *m = app->metrics;
    if (!m) return false;
    if (m->pending) return true;
    if (m->fetched_at && mono_ms() - m->fetched_at < (uint64_t)app->cfg->counts_cache_ms) return false;
    grow(m);
    for (size_t i = 0; i < m->n; i++) {
        m->got[i] = false;
        if (app->queues[i]->removed) {
            /* SIGHUP removed it: no more figures, and its connection goes */
            if (m->queues[i]) bullc_aqueue_close(m->queues[i], on_queue_closed, m);
            m->queues[i] = NULL;
            continue;
        }
        bullc_aqueue *aq = queue_handle(m, i);
        ask *a = aq ? malloc(sizeof *a) : NULL;
        if (!a) continue;
        *a = (ask){m, i};
        if (bullc_aqueue_get_job_counts(aq, NULL, 0, on_counts, a))
            free(a);
        else
            m->pending++;
    }
    if (m->pending) return true;
    fetch_done(m); /* nothing could be asked: no figures, at once */
    return false;
}

bool bw_queue_redis_up(bw_queue *q) {
    bw_metrics *m = q->app->metrics;
    return m && q->worker && !bullc_worker_stats(q->worker, m->stats) && bullc_stats_redis_up(m->stats);
}

/* A label value as Prometheus' text format (and Node's
 * escapePrometheusLabelValue) escapes it. */
static void put_label(bw_sb *b, const char *v) {
    for (; *v; v++) {
        if (*v == '\\')
            bw_sb_puts(b, "\\\\");
        else if (*v == '"')
            bw_sb_puts(b, "\\\"");
        else if (*v == '\n')
            bw_sb_puts(b, "\\n");
        else
            bw_sb_put(b, v, 1);
    }
}

static void head(bw_sb *b, const char *name, const char *type, const char *help) {
    bw_sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void queue_sample(bw_sb *b, const char *name, const bw_queue *q, const char *more, uint64_t v) {
    bw_sb_printf(b, "%s{queue=\"", name);
    put_label(b, q->cfg->name);
    bw_sb_printf(b, "\"%s} %llu\n", more ? more : "", (unsigned long long)v);
}

/* Per-queue counter or gauge read from the workers' stats. */
typedef uint64_t (*stat_fn)(const bullc_stats *s);
static void per_queue(bw_app *app, bw_sb *b, const char *name, const char *type, const char *help, stat_fn fn) {
    bw_metrics *m = app->metrics;
    head(b, name, type, help);
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (!q->removed && q->worker && !bullc_worker_stats(q->worker, m->stats))
            queue_sample(b, name, q, NULL, fn(m->stats));
    }
}

static uint64_t st_lock_lost(const bullc_stats *s) { return bullc_stats_lock_lost(s); }
static uint64_t st_stalled(const bullc_stats *s) { return bullc_stats_stalled(s); }
static uint64_t st_active(const bullc_stats *s) { return (uint64_t)bullc_stats_active(s); }

void bw_metrics_write(bw_app *app, bw_sb *b) {
    bw_metrics *m = app->metrics;
    head(b, "bullmq_job_count", "gauge", "Number of jobs in the queue by state");
    for (size_t i = 0; i < m->n; i++) {
        /* Redis did not answer (yet): no figure rather than an old one */
        if (app->queues[i]->removed || (m->pending ? !m->got[i] : !m->have[i])) continue;
        for (size_t s = 0; s < NSTATES; s++) {
            if (m->counts[i * NSTATES + s] < 0) continue;
            char more[64];
            snprintf(more, sizeof more, ",state=\"%s\"", states[s]);
            queue_sample(b, "bullmq_job_count", app->queues[i], more, (uint64_t)m->counts[i * NSTATES + s]);
        }
    }

    head(b, "bullc_worker_jobs_total", "counter",
         "Jobs this worker finished, by result (failed: every failed attempt)");
    uint64_t reconnects = 0;
    bool up = true;
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (q->removed || !q->worker || bullc_worker_stats(q->worker, m->stats)) continue;
        queue_sample(b, "bullc_worker_jobs_total", q, ",result=\"completed\"", bullc_stats_completed(m->stats));
        queue_sample(b, "bullc_worker_jobs_total", q, ",result=\"failed\"", bullc_stats_failed(m->stats));
        reconnects += bullc_stats_reconnects(m->stats);
        up = up && bullc_stats_redis_up(m->stats);
    }

    head(b, "bullc_worker_job_duration_seconds", "histogram",
         "Processing time of the jobs this worker finished, from active to the stored result");
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (q->removed || !q->worker || bullc_worker_stats(q->worker, m->stats)) continue;
        size_t nb = bullc_stats_duration_buckets(m->stats);
        for (size_t k = 0; k < nb; k++) {
            double le;
            uint64_t n = bullc_stats_duration_bucket(m->stats, k, &le);
            char more[48];
            if (isinf(le))
                snprintf(more, sizeof more, ",le=\"+Inf\"");
            else
                snprintf(more, sizeof more, ",le=\"%g\"", le);
            queue_sample(b, "bullc_worker_job_duration_seconds_bucket", q, more, n);
        }
        bw_sb_puts(b, "bullc_worker_job_duration_seconds_sum{queue=\"");
        put_label(b, q->cfg->name);
        bw_sb_printf(b, "\"} %.9g\n", bullc_stats_duration_sum(m->stats));
        queue_sample(b, "bullc_worker_job_duration_seconds_count", q, NULL, bullc_stats_duration_count(m->stats));
    }
    per_queue(app, b, "bullc_worker_active_jobs", "gauge", "Jobs being processed now", st_active);
    per_queue(app, b, "bullc_worker_lock_lost_total", "counter",
              "Jobs given up because their lock could not be renewed", st_lock_lost);
    per_queue(app, b, "bullc_worker_stalled_total", "counter",
              "Stalled jobs this worker's stalled check moved back to wait or failed", st_stalled);
    head(b, "bullc_worker_redis_up", "gauge", "1 when every queue's connections to Redis are ready, else 0");
    bw_sb_printf(b, "bullc_worker_redis_up %d\n", up ? 1 : 0);
    head(b, "bullc_worker_reconnects_total", "counter", "Times a worker's connection to Redis came back");
    bw_sb_printf(b, "bullc_worker_reconnects_total %llu\n", (unsigned long long)reconnects);
    /* one sample per BullMQ release spoken: each queue speaks its Node
     * peers' major, so a worker serving 5.x and 6.x queues is counted in both */
    head(b, "bullc_worker_info", "gauge", "bullc-worker's version and the BullMQ version it speaks");
    bool spoken[2] = {false, false}; /* 5.x, 6.x */
    for (size_t i = 0; i < app->nqueues; i++)
        if (app->queues[i]->worker) spoken[bullc_worker_bullmq_version(app->queues[i]->worker) == 5 ? 0 : 1] = true;
    if (!spoken[0] && !spoken[1]) spoken[1] = true; /* no worker yet: the default */
    for (int k = 0; k < 2; k++)
        if (spoken[k])
            bw_sb_printf(b, "bullc_worker_info{version=\"%s\",bullmq=\"%s\"} 1\n", bullc_version(),
                         k == 0 ? BULLC_BULLMQ5_VERSION : bullc_bullmq_version());
    if (app->tracer) {
        head(b, "bullc_worker_trace_spans_exported_total", "counter", "Spans the OTLP endpoint accepted");
        bw_sb_printf(b, "bullc_worker_trace_spans_exported_total %llu\n",
                     (unsigned long long)bullc_tracer_exported(app->tracer));
        head(b, "bullc_worker_trace_spans_dropped_total", "counter",
             "Spans dropped: the export queue was full, or their export failed or timed out");
        bw_sb_printf(b, "bullc_worker_trace_spans_dropped_total %llu\n",
                     (unsigned long long)bullc_tracer_dropped(app->tracer));
    }

    uv_rusage_t ru;
    if (!uv_getrusage(&ru)) {
        double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                     (double)ru.ru_stime.tv_usec / 1e6;
        head(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        bw_sb_printf(b, "process_cpu_seconds_total %.6f\n", cpu);
    }
    size_t rss;
    if (!uv_resident_set_memory(&rss)) {
        head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        bw_sb_printf(b, "process_resident_memory_bytes %zu\n", rss);
    }
}
