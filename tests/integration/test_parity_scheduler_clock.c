/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_scheduler.test.ts cases that freeze and move the clock
 * with sinon: days and months of iterations, the 'every' boundaries (the
 * clock on an iteration's millisecond, one before, one after, an offset),
 * clocks out of sync. bullc_test_clock_set freezes the time bullc reads for
 * everything it sends to Redis, as sinon freezes Date.now(); a processor
 * moves it forward before its job completes, as Node's processors call
 * clock.tick, so the completion's fetch finds the next iteration due. The
 * Redis is real; only the clients' "now" is frozen, as in Node's tests. */
#include "test_sched_util.h"

TestSuite(parity_scheduler_clock, .timeout = 120);

static const int64_t ONE_SECOND = 1000, ONE_HOUR = 3600 * 1000, ONE_DAY = 24 * 3600 * 1000;

/* Node's new Date('Y-M-D h:m:s'): a local time, in the zone bullc's
 * scheduler uses without tz (TZ, else /etc/localtime), as mktime reads it. */
static int64_t local_ms(int y, int mo, int d, int h, int mi, int s) {
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s, .tm_isdst = -1};
    return (int64_t)mktime(&tm) * 1000;
}

/* One calendar month after `ms` in local time (moment().add(1, 'months')). */
static int64_t month_after(int64_t ms) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    int mday = tm.tm_mday;
    tm.tm_mon++;
    tm.tm_isdst = -1;
    time_t r = mktime(&tm);
    if (tm.tm_mday != mday) { /* moment clamps the 31st to the month's last day */
        tm.tm_mday = 0;
        tm.tm_isdst = -1;
        r = mktime(&tm);
    }
    return (int64_t)r * 1000 + ms % 1000;
}

static void clock_restore(void) { bullc_test_clock_set(0); }

/* The case's ph; on 5 its queue's meta is written as a Node 5.81.5 Queue
 * writes it, so that every handle (auto) speaks 5.x to it. */
static ph *clock_ph(int major) {
    ph *h = ph_new("q");
    if (major == 5)
        freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, h->qname));
    return h;
}

#define BOTH_MAJORS(name) PH_BOTH_MAJORS(parity_scheduler_clock, name, .fini = clock_restore)

/* ---- processors that move the clock, as Node's call clock.tick ---- */

static int64_t tick_first, tick_next; /* tick_first 0: every job ticks tick_next */
static bool tick_monthly;
static int nprocessed;
static char delays[16][32]; /* each job's opts.delay as its processor saw it */

static int hold_from; /* 0, or the first job the processor keeps */
static bullc_job *held;

static void tick_then_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (hold_from && nprocessed >= hold_from) {
        /* the worker keeps a job in process, as Node's still runs when it checks the counts */
        held = job;
        nprocessed++;
        return;
    }
    if (nprocessed < 16) {
        /* Node's processor reads job.opts.delay */
        cJSON *j = ph_job(h, bullc_job_id(job));
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "opts"), "delay");
        snprintf(delays[nprocessed], sizeof delays[0], "%s", cJSON_IsNumber(d) ? "" : "none");
        if (cJSON_IsNumber(d)) snprintf(delays[nprocessed], sizeof delays[0], "%lld", (long long)d->valuedouble);
        cJSON_Delete(j);
    }
    if (tick_monthly)
        bullc_test_clock_set(month_after(bullc_test_clock_tick(0)));
    else
        bullc_test_clock_tick(nprocessed == 0 && tick_first ? tick_first : tick_next);
    nprocessed++;
    ph_complete(h, job, NULL);
}

/* A worker on the frozen clock whose processor ticks it. autorun false
 * (started by bullc_worker_run) unless `autorun`; Node's day-long cases also
 * skip the stalled check and lock renewal. */
static bullc_repeat_strategy_fn worker_strategy; /* the next ticking_worker's settings.repeatStrategy */
static int worker_strategy_calls;

static bullc_worker *ticking_worker(ph *h, int major, int64_t first, int64_t next, bool autorun) {
    tick_first = first, tick_next = next, tick_monthly = false, nprocessed = 0, hold_from = 0, held = NULL;
    h->proc = tick_then_complete;
    bullc_worker_opts *o = ph_wopts(h);
    if (worker_strategy) bullc_worker_opts_set_repeat_strategy(o, worker_strategy, &worker_strategy_calls);
    bullc_worker_opts_set_autorun(o, autorun);
    bullc_worker_opts_set_skip_stalled_check(o, true);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1), "worker not ready");
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    return w;
}

/* The k-th completed job (0-based) as getJob returns it. */
static cJSON *completed(ph *h, int k) {
    ph_wev *e = ph_wget(h, 'c', k);
    cr_assert_not_null(e, "completed event %d", k);
    cJSON *j = ph_job(h, e->id);
    cr_assert_not_null(j, "job %s", e->id);
    return j;
}

static int64_t jnum(const cJSON *j, const char *k) { return (int64_t)ph_jnum(j, k); }

/* The slot an iteration was made for: its id is "repeat:<key>:<ms>". */
static int64_t slot_of(const cJSON *j) {
    const char *id = cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring;
    return strtoll(strrchr(id, ':') + 1, NULL, 10);
}

static bullc_scheduler_opts *daily_at_1(int64_t end_date, bool immediately) {
    bullc_scheduler_opts *o = pattern("0 1 * * *");
    if (end_date) cr_assert_eq(bullc_scheduler_opts_set_end_date(o, end_date), 0);
    if (immediately) cr_assert_eq(bullc_scheduler_opts_set_immediately(o, true), 0);
    return o;
}

/* Five completions, each job's `field` at least `gap` after the job
 * before's timestamp (`first_gap` for the second job, when not 0). */
static void assert_five_apart(ph *h, const char *field, int64_t first_gap, int64_t gap) {
    cr_assert(PH_WAIT(h, 30000, h->n_completed >= 5), "%d completed", h->n_completed);
    for (int k = 1; k < 5; k++) {
        cJSON *prev = completed(h, k - 1), *job = completed(h, k);
        cr_assert_lt(jnum(prev, "timestamp"), jnum(job, "timestamp"), "job %d", k);
        int64_t want = k == 1 && first_gap ? first_gap : gap;
        cr_assert_geq(jnum(job, field) - jnum(prev, "timestamp"), want, "job %d: %s %lld - timestamp %lld", k, field,
                      (long long)jnum(job, field), (long long)jnum(prev, "timestamp"));
        cJSON_Delete(prev), cJSON_Delete(job);
    }
}

/* Moves the clock `tick` on, runs the worker and checks five jobs at least
 * a day apart (`first_gap` for the second, when not 0). */
static void run_days(ph *h, bullc_worker *w, int64_t tick, const char *field, int64_t first_gap) {
    bullc_test_clock_tick(tick);
    cr_assert_eq(bullc_worker_run(w), 0);
    assert_five_apart(h, field, first_gap, ONE_DAY);
}

/* node: "[Job Scheduler] should repeat once a day for 5 days" */
BOTH_MAJORS(once_a_day_for_5_days) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(local_ms(2017, 5, 5, 13, 12, 0));
    const int64_t next_tick = ONE_DAY + 10 * ONE_SECOND, delay = 5 * ONE_SECOND + 500;
    bullc_worker *w = ticking_worker(h, major, 0, next_tick, false);
    bullc_free(upsert(h, "repeat", daily_at_1(local_ms(2017, 5, 10, 1, 0, 0), false), NULL, "{\"foo\":\"bar\"}", NULL));
    run_days(h, w, next_tick + delay, "timestamp", 0);
    /* each made for 1:00 of the 6th to the 10th; the 10th's was the last before endDate */
    for (int k = 0; k < 5; k++) {
        cJSON *j = completed(h, k);
        cr_assert_eq(slot_of(j), local_ms(2017, 5, 6 + k, 1, 0, 0), "iteration %d", k);
        cJSON_Delete(j);
    }
    cr_assert_eq(ph_count(h, "delayed") + ph_count(h, "wait"), 0, "no iteration past endDate");
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat once a day for 5 days and start immediately using endDate" */
BOTH_MAJORS(once_a_day_immediately_until_end_date) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(local_ms(2017, 5, 5, 1, 1, 0));
    const int64_t next_tick = ONE_DAY + 10 * ONE_SECOND, delay = 5 * ONE_SECOND + 500;
    bullc_worker *w = ticking_worker(h, major, 0, next_tick, false);
    bullc_free(
        upsert(h, "repeat", daily_at_1(local_ms(2017, 5, 10, 13, 13, 0), true), NULL, "{\"foo\":\"bar\"}", NULL));
    run_days(h, w, delay, "timestamp", delay);
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat once a day for 5 days and start immediately" */
BOTH_MAJORS(once_a_day_immediately) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(local_ms(2017, 5, 5, 1, 1, 0));
    const int64_t next_tick = ONE_DAY + 10 * ONE_SECOND, delay = 5 * ONE_SECOND + 500;
    bullc_worker *w = ticking_worker(h, major, 6 * ONE_HOUR, next_tick, false);
    bullc_scheduler_opts *o = pattern("0 0 7 * * *");
    cr_assert_eq(bullc_scheduler_opts_set_immediately(o, true), 0);
    bullc_free(upsert(h, "repeat", o, NULL, "{\"foo\":\"bar\"}", NULL));
    run_days(h, w, delay, "processedOn", delay);
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat once a day after startDate that is equal as first iteration" */
BOTH_MAJORS(once_a_day_from_a_start_date_on_an_iteration) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(1728558000000); /* 2024-10-10T16:30:00.000+05:30 */
    const int64_t next_tick = ONE_DAY + 10 * ONE_SECOND, delay = 5 * ONE_HOUR + 500;
    bullc_worker *w = ticking_worker(h, major, 0, next_tick, false);
    bullc_scheduler_opts *o;
    cr_assert_eq(bullc_scheduler_opts_new(&o), 0);
    cr_assert_eq(bullc_scheduler_opts_set_pattern(o, "30 19 * * *", "Asia/Calcutta"), 0);
    cr_assert_eq(bullc_scheduler_opts_set_start_date(o, 1728568800000), 0); /* 2024-10-10T19:30:00.000+05:30 */
    char *id = upsert(h, "repeat", o, NULL, "{\"foo\":\"bar\"}", NULL);
    /* cron-parser's next() is strictly after the start date: the day after */
    cr_assert_str_eq(id, "repeat:repeat:1728655200000", "%s", id);
    bullc_free(id);
    run_days(h, w, delay + ONE_DAY, "processedOn", delay);
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat 7:th day every month at 9:25" */
BOTH_MAJORS(seventh_of_every_month_at_9_25) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(local_ms(2017, 2, 2, 7, 21, 42));
    bullc_worker *w = ticking_worker(h, major, 0, 0, false);
    tick_monthly = true;
    cr_assert_eq(bullc_worker_run(w), 0);
    UPSERT(h, "repeat", pattern("25 9 7 * *"));
    bullc_test_clock_set(month_after(bullc_test_clock_tick(0)));
    cr_assert(PH_WAIT(h, 60000, h->n_completed >= 25), "%d completed", h->n_completed);
    for (int k = 0; k < 25; k++) {
        cJSON *j = completed(h, k);
        /* 9:25 on the 7th of February 2017, March 2017, ... February 2019 */
        cr_assert_eq(slot_of(j), local_ms(2017 + (1 + k) / 12, (1 + k) % 12 + 1, 7, 9, 25, 0), "iteration %d", k);
        if (k) {
            cJSON *prev = completed(h, k - 1);
            cr_assert_lt(jnum(prev, "timestamp"), jnum(j, "timestamp"));
            cr_assert_geq(jnum(j, "processedOn"), month_after(jnum(prev, "timestamp")), "a month apart, job %d", k);
            cJSON_Delete(prev);
        }
        cJSON_Delete(j);
    }
    ph_end(h);
}

/* node: "[Job Scheduler] should repeat every day with a startDate in the future" */
BOTH_MAJORS(every_day_from_a_future_start_date) {
    ph *h = clock_ph(major);
    int64_t initial = local_ms(2024, 1, 1, 10, 0, 0), start = local_ms(2024, 1, 1, 10, 0, 10);
    bullc_test_clock_set(initial);
    bullc_worker *w = ticking_worker(h, major, 0, ONE_DAY, false);
    bullc_scheduler_opts *o = every(ONE_DAY);
    cr_assert_eq(bullc_scheduler_opts_set_start_date(o, start), 0);
    char *id = upsert(h, "test", o, NULL, "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(ph_job_num(h, id, "delay"), 10000);
    bullc_free(id);
    bullc_test_clock_tick(start - initial);
    cr_assert_eq(bullc_worker_run(w), 0);
    assert_five_apart(h, "timestamp", 0, 2000);
    for (int k = 1; k < 5; k++) {
        cJSON *j = completed(h, k);
        cr_assert_eq(jnum(j, "processedOn"), local_ms(2024, 1, 1 + k, 10, 0, 10), "job %d processed", k);
        cJSON_Delete(j);
    }
    ph_end(h);
}

/* ---- 'every' on, before and after the iteration's millisecond ---- */

/* Five completions: the second job made within 1 ms of the first, each
 * later one 2000 ms (or [min, max]) after the one before. */
static void assert_every_2s(ph *h, int64_t min, int64_t max) {
    cr_assert(PH_WAIT(h, 30000, h->n_completed >= 5), "%d completed", h->n_completed);
    for (int k = 1; k < 5; k++) {
        cJSON *prev = completed(h, k - 1), *job = completed(h, k);
        int64_t d = jnum(job, "timestamp") - jnum(prev, "timestamp");
        if (k == 1)
            cr_assert(d >= 0 && d <= 1, "the second job made with the first: %lld", (long long)d);
        else
            cr_assert(d >= min && d <= max, "job %d made %lld ms after the one before", k, (long long)d);
        cJSON_Delete(prev), cJSON_Delete(job);
    }
}

/* node: "[when using 'every' option is on same millis as iteration time] should repeat every 2 seconds and start immediately" */
BOTH_MAJORS(every_on_the_iteration_millisecond) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(local_ms(2017, 2, 7, 9, 24, 0));
    bullc_worker *w = ticking_worker(h, major, 0, 2 * ONE_SECOND, false);
    hold_from = 5;
    bullc_free(upsert(h, "repeat", every(2000), NULL, "{\"foo\":\"bar\"}", NULL));
    cr_assert_eq(ph_count(h, "wait"), 1);
    cr_assert_eq(bullc_worker_run(w), 0);
    assert_every_2s(h, 2000, 2000);
    cr_assert_str_eq(delays[0], "0", "the first job runs at once");
    for (int k = 1; k < 5; k++) cr_assert_str_eq(delays[k], "2000", "job %d's delay %s", k, delays[k]);
    /* the sixth taken (its iteration made) once the fifth completed */
    cr_assert(PH_WAIT(h, 5000, held != NULL), "the sixth job in process");
    cr_assert_eq(ph_count(h, "wait"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_complete(h, held, NULL);
    ph_end(h);
}

/* A running worker whose processor ticks `tick`, and "repeat" (every 2 s)
 * upserted at `start`: five jobs, each made [min, max] ms after the one
 * before (the second with the first). */
static ph *every_2s_at(int major, int64_t start, int64_t tick, int64_t min, int64_t max) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(start);
    ticking_worker(h, major, 0, tick, true);
    bullc_free(upsert(h, "repeat", every(2000), NULL, "{\"foo\":\"bar\"}", NULL));
    assert_every_2s(h, min, max);
    return h;
}

/* node: "[when using 'every' and time is one millisecond before iteration time] should repeat every 2 seconds and start immediately" */
BOTH_MAJORS(every_one_ms_before_the_iteration) {
    ph_end(every_2s_at(major, local_ms(2017, 2, 7, 9, 24, 0) - 1, 2 * ONE_SECOND, 2000, 2000));
}

/* node: "[when using 'every' and time is one millisecond after iteration time] should repeat every 2 seconds and start immediately" */
BOTH_MAJORS(every_one_ms_after_the_iteration) {
    ph_end(every_2s_at(major, local_ms(2017, 2, 7, 9, 24, 0) + 1, 2 * ONE_SECOND, 2000, 2000));
}

/* node: "[when using 'every' and offset plus delay of being picked by a worker is same as delay] should repeat every 2 seconds and start immediately" */
BOTH_MAJORS(every_with_an_offset_and_a_late_pick) {
    ph *h = every_2s_at(major, local_ms(2017, 2, 7, 9, 24, 0) + 1900, 2 * ONE_SECOND + 100, 2000, 2100);
    for (int k = 0; k < 5; k++) {
        cJSON *j = completed(h, k);
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "opts"), "repeat"), "offset");
        if (cJSON_IsNumber(off) && off->valuedouble != 0) cr_assert_eq(off->valuedouble, 1900, "job %d's offset", k);
        cJSON_Delete(j);
    }
    ph_end(h);
}

/* node: "[Job Scheduler > when clocks are slightly out of sync] should create only one delayed job" */
BOTH_MAJORS(clocks_slightly_out_of_sync) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(local_ms(2017, 2, 7, 9, 24, 0));
    for (int i = 0; i < 3; i++) {
        char opts[64];
        snprintf(opts, sizeof opts, "{\"prevMillis\":%lld}", (long long)bullc_test_clock_tick(i ? 1 : 0));
        bullc_free(upsert(h, "test-scheduler1", every(100), NULL, NULL, opts));
    }
    cr_assert_eq(bullc_queue_bullmq_version(h->q), major);
    cr_assert_eq(nschedulers(h), 1);
    cr_assert_eq(ph_count(h, "wait"), 1);
    ph_end(h);
}

/* ---- upserts over an iteration already promoted or in process ---- */

/* The queue's schedulers (getJobSchedulers) are exactly `want` (JSON). */
static void assert_schedulers(ph *h, const char *want) {
    cJSON *got = schedulers(h), *w = cJSON_Parse(want);
    char *text = cJSON_PrintUnformatted(got);
    cr_assert(cJSON_Compare(got, w, true), "schedulers %s, not %s", text, want);
    free(text);
    cJSON_Delete(got), cJSON_Delete(w);
}

static char seen_inside[128];

/* Node's processor: a job of data {foo: bar} upserts its scheduler again
 * with data {foo: baz} and reads the delayed jobs back. */
static void upsert_from_inside(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (strstr(bullc_job_data(job), "\"bar\"")) {
        bullc_free(upsert(h, "test", pattern("*/10 * * * * *"), NULL, "{\"foo\":\"baz\"}", NULL));
        cJSON *delayed = ph_jobs(h, "delayed", 0, -1, true);
        cJSON *d = cJSON_GetArrayItem(delayed, 0);
        char *data = d ? ph_jtext(d, "data") : NULL;
        snprintf(seen_inside, sizeof seen_inside, "%d %s %lld", cJSON_GetArraySize(delayed), data ? data : "-",
                 d ? (long long)ph_jnum(d, "delay") : -1LL);
        free(data);
        cJSON_Delete(delayed);
    }
    ph_complete(h, job, NULL);
}

/* node: "[when job scheduler is being updated with upsertJobScheduler method] updates scheduler and creates next iteration" */
BOTH_MAJORS(upsert_from_a_promoted_iteration) {
    ph *h = clock_ph(major);
    const int64_t initial = 1486439640000; /* 2017-02-07T09:24:00.000+05:30 */
    bullc_test_clock_set(initial);
    bullc_worker *w = ticking_worker(h, major, 0, 0, false);
    h->proc = upsert_from_inside;
    seen_inside[0] = '\0';
    char *id = upsert(h, "test", pattern("*/10 * * * * *"), NULL, "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_queue_promote_job(h->q, id, NULL), 0);
    bullc_free(id);
    cr_assert_eq(bullc_worker_run(w), 0);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1), "processed");
    /* one delayed job, the new data, 10 s away: the clock has not moved */
    cr_assert_str_eq(seen_inside, "1 {\"foo\":\"baz\"} 10000");
    char want[256];
    snprintf(want, sizeof want,
             "[{\"key\":\"test\",\"name\":\"test\",\"next\":%lld,\"iterationCount\":2,\"offset\":0,"
             "\"pattern\":\"*/10 * * * * *\",\"template\":{\"data\":{\"foo\":\"baz\"}}}]",
             (long long)(initial + 10 * ONE_SECOND));
    assert_schedulers(h, want);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

static int64_t repeat_every(const cJSON *job) {
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(job, "opts"), "repeat");
    return (int64_t)ph_jnum(r, "every");
}

/* The only job in `state`, checked to be alone there. */
static cJSON *only_job(ph *h, const char *state) {
    cJSON *l = ph_jobs(h, state, 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(l), 1, "one job in %s", state);
    cJSON *j = cJSON_DetachItemFromArray(l, 0);
    cJSON_Delete(l);
    return j;
}

/* node: "[when job scheduler is being updated with upsertJobScheduler method] should reschedule immediately when changing every interval" */
BOTH_MAJORS(changing_every_reschedules_at_once) {
    ph *h = clock_ph(major);
    const int64_t initial = local_ms(2017, 2, 7, 9, 24, 0);
    bullc_test_clock_set(initial);
    bullc_free(upsert(h, "test-scheduler", every(10 * ONE_SECOND), "test-job1", NULL, NULL));
    cJSON *job1 = only_job(h, "wait");
    cr_assert_eq(repeat_every(job1), 10000);
    cJSON_Delete(job1);
    ticking_worker(h, major, 0, 0, true);
    bullc_test_clock_tick(1);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1), "processed");
    cr_assert_eq(ph_count(h, "wait"), 0);
    cJSON *after = only_job(h, "delayed");
    cr_assert_eq(repeat_every(after), 10000);
    cJSON_Delete(after);
    ph_close_worker(h, 0, false);
    /* a new interval starts afresh: due now, not in 2 s */
    bullc_free(upsert(h, "test-scheduler", every(2 * ONE_SECOND), "test-job2", NULL, NULL));
    cr_assert_eq(ph_count(h, "delayed"), 0);
    cJSON *job2 = only_job(h, "wait");
    cr_assert_eq(ph_jnum(job2, "delay"), 0);
    cr_assert_eq(repeat_every(job2), 2000);
    int64_t ts = (int64_t)ph_jnum(job2, "timestamp");
    cr_assert(ts - initial <= 100 && initial - ts <= 100, "timestamp %lld, now %lld", (long long)ts,
              (long long)initial);
    cJSON_Delete(job2);
    ph_end(h);
}

static bool baz_processed;

/* Node's processor: every job moves the clock 5 s on; note the new data. */
static void tick_5s_note_baz(ph *h, bullc_job *job, int widx) {
    (void)widx;
    bullc_test_clock_tick(5000);
    if (strstr(bullc_job_data(job), "\"baz\"")) baz_processed = true;
    ph_complete(h, job, NULL);
}

/* node: "[when job scheduler is removed and updated] emits duplicated event and does not add job scheduler" */
BOTH_MAJORS(removed_and_updated_emits_duplicated) {
    ph *h = clock_ph(major);
    bullc_test_clock_set(1486439640000); /* 2017-02-07T09:24:00.000+05:30 */
    ph_qe(h);
    bullc_worker *w = ticking_worker(h, major, 0, 0, false);
    h->proc = tick_5s_note_baz;
    baz_processed = false;
    char *id = upsert(h, "test", pattern("*/10 * * * * *"), NULL, "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_queue_promote_job(h->q, id, NULL), 0);
    bullc_free(id);
    cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "test", NULL), 0);
    bullc_free(upsert(h, "test", pattern("*/5 * * * * *"), NULL, "{\"foo\":\"baz\"}", NULL));
    cr_assert_eq(bullc_worker_run(w), 0);
    cr_assert(PH_WAIT(h, 10000, baz_processed), "the new scheduler's job processed");
    /* its next slot (9:24:10) is the promoted job's id, done already */
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "duplicated", "repeat:test:1486439650000") == 1), "duplicated event");
    cr_assert_eq(nschedulers(h), 1);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

/* ---- a custom repeat strategy (Node's settings.repeatStrategy) ---- */

/* Node's test strategy: rrule's "RRULE:FREQ=SECONDLY;INTERVAL=n" without a
 * DTSTART, which rrule takes as the clock's whole second, and the first
 * occurrence after max(startDate, millis). */
static int rrule_seconds(int64_t millis, const cJSON *repeat, int64_t *next) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(repeat, "pattern");
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(repeat, "startDate");
    int interval = 0;
    if (!cJSON_IsString(p) || sscanf(p->valuestring, "RRULE:FREQ=SECONDLY;INTERVAL=%d", &interval) != 1 || interval < 1)
        return BULLC_EINVAL;
    int64_t from = cJSON_IsNumber(start) && start->valuedouble > (double)millis ? (int64_t)start->valuedouble : millis;
    int64_t dtstart = bullc_test_clock_tick(0) / 1000 * 1000, step = interval * ONE_SECOND;
    *next = from < dtstart ? dtstart : dtstart + ((from - dtstart) / step + 1) * step;
    return 0;
}

static int rrule_strategy(int64_t millis, const char *repeat_json, const char *name, int64_t *next, void *data) {
    (void)name;
    ++*(int *)data;
    cJSON *r = cJSON_Parse(repeat_json);
    int rc = rrule_seconds(millis, r, next);
    cJSON_Delete(r);
    return rc;
}

/* The second case's: rrule for jobs named "rrule", else Node's
 * getNextMillis (the cron engine from max(startDate, millis)). */
static int strategy_by_name(int64_t millis, const char *repeat_json, const char *name, int64_t *next, void *data) {
    ++*(int *)data;
    cJSON *r = cJSON_Parse(repeat_json);
    int rc;
    if (!strcmp(name, "rrule")) {
        rc = rrule_seconds(millis, r, next);
    } else {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "pattern"),
                    *tz = cJSON_GetObjectItemCaseSensitive(r, "tz");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(r, "startDate");
        int64_t from =
            cJSON_IsNumber(start) && start->valuedouble > (double)millis ? (int64_t)start->valuedouble : millis;
        rc = bullc_cron_next(cJSON_IsString(p) ? p->valuestring : "", cJSON_IsString(tz) ? tz->valuestring : NULL, from,
                             next, NULL);
    }
    cJSON_Delete(r);
    return rc;
}

/* A second handle on the ph's queue with settings.repeatStrategy. */
static bullc_queue *queue_with_strategy(ph *h, bullc_repeat_strategy_fn fn, int *calls) {
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_queue_opts_set_prefix(qo, h->prefix);
    cr_assert_eq(bullc_queue_opts_set_repeat_strategy(qo, fn, calls), 0);
    bullc_queue *q = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, h->qname, qo, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    return q;
}

static const char *RRULE = "RRULE:FREQ=SECONDLY;INTERVAL=2;WKST=MO";

/* Jobs k0..k0+4 completed, their timestamps at least 2 s apart. */
static void assert_2s_apart_from(ph *h, int k0) {
    cr_assert(PH_WAIT(h, 30000, h->n_completed >= k0 + 5), "%d completed", h->n_completed);
    for (int k = k0 + 1; k < k0 + 5; k++) {
        cJSON *prev = completed(h, k - 1), *job = completed(h, k);
        cr_assert_geq(jnum(job, "timestamp") - jnum(prev, "timestamp"), 2000, "job %d", k);
        cJSON_Delete(prev), cJSON_Delete(job);
    }
}

/* node: "[Job Scheduler > when custom cron strategy is provided] should repeat every 2 seconds" */
BOTH_MAJORS(custom_strategy_repeats_every_2_seconds) {
    ph *h = clock_ph(major);
    int queue_calls = 0;
    bullc_queue *q = queue_with_strategy(h, rrule_strategy, &queue_calls);
    worker_strategy = rrule_strategy, worker_strategy_calls = 0;
    bullc_test_clock_set(local_ms(2017, 2, 7, 9, 24, 0));
    ticking_worker(h, major, 0, 2 * ONE_SECOND + 100, true);
    char *id = NULL;
    bullc_error err = {0};
    bullc_scheduler_opts *so = pattern(RRULE);
    cr_assert_eq(bullc_queue_upsert_job_scheduler(q, "test", so, NULL, "{\"foo\":\"bar\"}", NULL, &id, &err), 0, "%s",
                 err.message);
    bullc_scheduler_opts_free(so);
    bullc_free(id);
    bullc_test_clock_tick(2 * ONE_SECOND + 100);
    assert_2s_apart_from(h, 0);
    cr_assert_eq(queue_calls, 1, "the queue's upsert asked the strategy");
    cr_assert_geq(worker_strategy_calls, 5, "each iteration taken asked the worker's");
    worker_strategy = NULL;
    bullc_queue_free(q);
    ph_end(h);
}

/* The processor of the second case: ticks; the rrule scheduler's fifth
 * iteration removes it. */
static void tick_remove_at_5(ph *h, bullc_job *job, int widx) {
    (void)widx;
    bullc_test_clock_tick(2 * ONE_SECOND + 100);
    cJSON *j = ph_job(h, bullc_job_id(job));
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "opts"), "repeat");
    if (ph_jnum(r, "count") == 5 && !strcmp(bullc_job_name(job), "rrule"))
        cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "rrule", NULL), 0, "removed");
    cJSON_Delete(j);
    ph_complete(h, job, NULL);
}

/* node: "[when custom cron strategy is provided > when differentiating strategy by job name] should repeat every 2 seconds" */
BOTH_MAJORS(custom_strategy_by_job_name) {
    ph *h = clock_ph(major);
    int queue_calls = 0;
    bullc_queue *q = queue_with_strategy(h, strategy_by_name, &queue_calls);
    worker_strategy = strategy_by_name, worker_strategy_calls = 0;
    ticking_worker(h, major, 0, 0, true);
    h->proc = tick_remove_at_5;
    bullc_test_clock_set(1486481040000); /* 2017-02-07T15:24:00.000Z */
    char *id = NULL;
    bullc_error err = {0};
    bullc_scheduler_opts *so = pattern(RRULE);
    cr_assert_eq(bullc_queue_upsert_job_scheduler(q, "rrule", so, "rrule", NULL, NULL, &id, &err), 0, "%s",
                 err.message);
    bullc_scheduler_opts_free(so);
    bullc_free(id);
    char *json = NULL;
    cr_assert_eq(bullc_queue_get_job_scheduler(h->q, "rrule", &json, NULL), 0);
    cJSON *got = cJSON_Parse(json), *want = cJSON_Parse("{\"iterationCount\":1,\"key\":\"rrule\",\"name\":\"rrule\","
                                                        "\"offset\":0,\"next\":1486481042000,\"pattern\":"
                                                        "\"RRULE:FREQ=SECONDLY;INTERVAL=2;WKST=MO\"}");
    cr_assert(cJSON_Compare(got, want, true), "%s", json);
    cJSON_Delete(got), cJSON_Delete(want);
    bullc_free(json);
    bullc_test_clock_tick(2 * ONE_SECOND + 100);
    assert_2s_apart_from(h, 0);
    /* upserted again by the plain queue, as a cron pattern for jobs named "standard" */
    bullc_scheduler_opts *o = pattern("*/2 * * * * *");
    cr_assert_eq(bullc_scheduler_opts_set_start_date(o, local_ms(2017, 2, 7, 9, 24, 5)), 0);
    bullc_free(upsert(h, "rrule", o, "standard", NULL, NULL));
    bullc_test_clock_tick(2 * ONE_SECOND + 100);
    assert_2s_apart_from(h, 5);
    for (int k = 5; k < 10; k++) {
        cJSON *j = completed(h, k);
        cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring, "standard");
        cJSON_Delete(j);
    }
    cr_assert_eq(queue_calls, 1);
    worker_strategy = NULL;
    bullc_queue_free(q);
    ph_end(h);
}
