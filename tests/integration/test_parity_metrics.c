/* SPDX-License-Identifier: MIT */
/* Node BullMQ's metrics.test.ts. The metrics scripts count a finished job in
 * the minute of the timestamp the worker sends with moveToFinished (its own
 * clock, not Redis's), and Node's tests move that clock with sinon's fake
 * Date; here bullc's test clock (bullc_test_clock_set) is frozen at
 * 2017-02-07 09:24:00 UTC, as Node's is (in its local time: the minute
 * boundaries are the same), and each processor moves it by the job's timing
 * with bullc_test_clock_tick, as Node's call clock.tick. Each case runs
 * speaking BullMQ 6 and 5. */
#include "test_parity_util.h"

/* clock.setSystemTime(new Date('2017-02-07 9:24:00')) */
static void set_system_time(void) { bullc_test_clock_set(1486459440000LL); }
static void tick(int64_t ms) { bullc_test_clock_tick(ms); }

#define SECOND 1000
#define MINUTE (60 * SECOND)
#define HOUR (60 * MINUTE)
#define TWO_HOURS_OF_POINTS 120
#define FIFTEEN_MINUTES_OF_POINTS 15

#define BOTH_MAJORS(name)                             \
    static void name(int major);                      \
    Test(parity_metrics, name) { name(6); }           \
    Test(parity_metrics, name##_bullmq5) { name(5); } \
    static void name(int major)

typedef struct run {
    const int64_t *timings;
    bool fail;
} run;

/* Moves the clock by the job's timing, then ends it: as Node's processors. */
static void ticking(ph *h, bullc_job *job, int widx) {
    (void)widx;
    const run *r = h->user;
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    int i = (int)cJSON_GetObjectItem(d, "index")->valuedouble;
    cJSON_Delete(d);
    tick(r->timings[i]);
    if (r->fail)
        ph_fail(h, job, "test", 0);
    else
        ph_complete(h, job, "null");
}

/* Adds n jobs {index: i} and processes them with one worker keeping
 * `max_points` data points; returns the ph with the worker closed. */
static ph *process(int major, const int64_t *timings, int n, bool fail, int64_t max_points, run *r) {
    ph *h = ph_new("q");
    if (major == 5) freeReplyObject(ph_cmd("HSET %s:q:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix));
    set_system_time();
    r->timings = timings;
    r->fail = fail;
    h->user = r;
    h->proc = ticking;
    for (int i = 0; i < n; i++) {
        char d[32];
        snprintf(d, sizeof d, "{\"index\":%d}", i);
        ph_add(h, "test", d, NULL);
    }
    cr_assert_eq(bullc_queue_bullmq_version(h->q), major);
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_metrics(o, max_points);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, (fail ? h->n_failed : h->n_completed) == n), "%d of %d", h->n_completed + h->n_failed,
              n);
    ph_close_worker(h, 0, false);
    return h;
}

static cJSON *metrics(ph *h, const char *type, int64_t start, int64_t end) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_metrics(h->q, type, start, end, &s, &err), 0, "%s", err.message);
    cJSON *m = cJSON_Parse(s);
    bullc_free(s);
    return m;
}

static int64_t sum_minutes(const int64_t *t, int n) {
    int64_t s = 0;
    for (int i = 0; i < n; i++) s += t[i];
    return s / MINUTE;
}

/* The data points equal `fixture` (n of them), and the meta counts `jobs`. */
static void assert_metrics(const cJSON *m, int jobs, const int *fixture, int n) {
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "meta"), "count")->valuedouble, jobs);
    const cJSON *data = cJSON_GetObjectItem(m, "data");
    char *got = cJSON_PrintUnformatted(data);
    cr_assert_eq(cJSON_GetArraySize(data), n, "%s", got);
    cr_assert_eq(cJSON_GetObjectItem(m, "count")->valuedouble, n);
    for (int i = 0; i < n; i++)
        cr_assert_eq(cJSON_GetArrayItem(data, i)->valuedouble, fixture[i], "point %d: %s", i, got);
    free(got);
}

static const int64_t completed_timings[] = {
    0, 0, MINUTE / 2, MINUTE / 2, 0, 0, MINUTE, MINUTE, MINUTE * 3, SECOND * 70, SECOND * 50, HOUR, MINUTE,
};

/* node: "should gather metrics for completed jobs" */
BOTH_MAJORS(completed) {
    static const int fixture[] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 3, 3};
    int n = (int)(sizeof completed_timings / sizeof *completed_timings);
    run r;
    ph *h = process(major, completed_timings, n, false, TWO_HOURS_OF_POINTS, &r);
    cr_assert_eq(sum_minutes(completed_timings, n), (int64_t)(sizeof fixture / sizeof *fixture));
    cJSON *m = metrics(h, "completed", 0, -1);
    assert_metrics(m, n, fixture, (int)(sizeof fixture / sizeof *fixture));
    cJSON_Delete(m);
    ph_end(h);
    bullc_test_clock_set(0);
}

/* node: "should only keep metrics for "maxDataPoints"" */
BOTH_MAJORS(max_data_points) {
    static const int64_t timings[] = {
        0, 0, MINUTE / 2, MINUTE / 2, 0, 0, MINUTE, MINUTE, MINUTE * 3, HOUR, 0, 0, MINUTE, MINUTE,
    };
    static const int fixture[] = {1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    int n = (int)(sizeof timings / sizeof *timings);
    run r;
    ph *h = process(major, timings, n, false, FIFTEEN_MINUTES_OF_POINTS, &r);
    cJSON *m = metrics(h, "completed", 0, -1);
    assert_metrics(m, n, fixture, FIFTEEN_MINUTES_OF_POINTS);
    cJSON_Delete(m);
    ph_end(h);
    bullc_test_clock_set(0);
}

/* node: "should gather metrics for failed jobs" */
BOTH_MAJORS(failed) {
    static const int64_t timings[] = {0, MINUTE, MINUTE / 5, MINUTE / 2, 0, MINUTE, MINUTE * 3, 0};
    static const int fixture[] = {0, 0, 1, 4, 1};
    int n = (int)(sizeof timings / sizeof *timings);
    run r;
    ph *h = process(major, timings, n, true, TWO_HOURS_OF_POINTS, &r);
    cr_assert_eq(sum_minutes(timings, n), 5);
    cJSON *m = metrics(h, "failed", 0, -1);
    assert_metrics(m, n, fixture, 5);
    cJSON_Delete(m);
    cJSON *c = metrics(h, "completed", 0, -1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(c, "data")), 0, "no completed metrics");
    cJSON_Delete(c);
    ph_end(h);
    bullc_test_clock_set(0);
}

/* node: "should get metrics with pagination" */
BOTH_MAJORS(pagination) {
    static const int64_t timings[] = {
        0, 0, MINUTE / 2, MINUTE / 2, 0, 0, MINUTE, MINUTE, MINUTE * 3, HOUR, MINUTE,
    };
    int n = (int)(sizeof timings / sizeof *timings);
    run r;
    ph *h = process(major, timings, n, false, TWO_HOURS_OF_POINTS, &r);
    int points = (int)sum_minutes(timings, n), page = 10;
    cJSON *all = metrics(h, "completed", 0, -1);
    const cJSON *data = cJSON_GetObjectItem(all, "data");
    cr_assert_eq(cJSON_GetArraySize(data), points);
    int k = 0;
    for (int skip = 0; skip < points; skip += page) {
        cJSON *m = metrics(h, "completed", skip, skip + page - 1);
        cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "meta"), "count")->valuedouble, n);
        const cJSON *d = cJSON_GetObjectItem(m, "data");
        cr_assert_eq(cJSON_GetArraySize(d), points - skip < page ? points - skip : page);
        const cJSON *v;
        cJSON_ArrayForEach(v, d) cr_assert_eq(v->valuedouble, cJSON_GetArrayItem(data, k++)->valuedouble);
        cJSON_Delete(m);
    }
    cr_assert_eq(k, points, "the pages hold every point");
    cJSON_Delete(all);
    ph_end(h);
    bullc_test_clock_set(0);
}
