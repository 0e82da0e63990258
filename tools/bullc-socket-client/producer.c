/* SPDX-License-Identifier: MIT */
/* The Redis side, on the loop: it adds the buffer's entries as game_data
 * jobs, oldest first, in atomic batches (bullc_aqueue_add_bulk: MULTI/EXEC,
 * so a batch is written whole or not at all), one batch in flight at a time. A batch that fails is retried, the
 * same entries in the same order, until Redis takes it; only then are they
 * removed from the buffer. So jobs are added in arrival order, and nothing
 * is lost while Redis is down or restarting (the buffer holds it).
 *
 * One window is ambiguous: when the connection breaks after the batch was
 * sent and before its reply came back (a kill -9 of Redis lands there often
 * with appendfsync always: the reply waits for the fsync), Redis may or may
 * not have written the batch (bullc_aqueue_add_bulk says so and never sends
 * it again itself), and there is no way to ask (no job lookup; Node's job
 * ids must stay the queue's counter, so no custom ids).
 * So each job carries a BullMQ deduplication id, "<instance>:<serial>", with
 * a TTL (--dedup-ttl): the retry of a batch that was written adds nothing
 * (the add script finds the id and returns the job that has it). With
 * --dedup-ttl 0 the jobs are exactly Node's, and the retry may double a
 * batch: at-least-once in that window. See docs/socket-client.md. */
#include <stdlib.h>
#include <string.h>

#include "sc.h"

/* Retry delays while Redis fails: short enough that a restart costs about
 * a second, long enough not to spin. */
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000
/* How often the "still failing" line repeats during a long outage. */
#define OUTAGE_LOG_MS 30000

/* The index of the job bullc refused, from its message ("job <i>: ..."). */
static size_t refused_index(const char *message, size_t n) {
    unsigned long i;
    if (sscanf(message, "job %lu:", &i) == 1 && i < n) return (size_t)i;
    return 0; /* unknown: the first, so that the retry always makes progress */
}

static bool is_outage(int rc) { return rc == BULLC_ECONN || rc == BULLC_ETIMEDOUT; }

/* With deduplication ids every job needs its own options: one set per slot
 * of a batch, made once from the base options, whose id is set per job. */
static bullc_job_opts **per_job_opts(const sc_producer *p) {
    bullc_job_opts **o = calloc(p->batch, sizeof *o);
    char *base = bullc_job_opts_to_json(p->opts);
    bool ok = o && base;
    for (size_t i = 0; ok && i < p->batch; i++)
        ok = bullc_job_opts_new(&o[i]) == 0 && bullc_job_opts_merge_json(o[i], base, NULL) == 0;
    bullc_free(base);
    if (ok) return o;
    for (size_t i = 0; o && i < p->batch; i++) bullc_job_opts_free(o[i]);
    free(o);
    return NULL;
}

static const bullc_job_opts *job_opts(const sc_producer *p, bullc_job_opts **per_job, size_t k, uint64_t serial) {
    if (!per_job) return p->opts;
    char id[64];
    snprintf(id, sizeof id, "%s:%llu", p->instance, (unsigned long long)serial);
    if (bullc_job_opts_set_deduplication(per_job[k], id, p->dedup_ttl_ms, false, false)) return NULL;
    return per_job[k];
}

static void kick(sc_producer *p);

static void on_retry(uv_timer_t *t) { kick(t->data); }

/* Redis is down, restarting (LOADING), read-only, out of memory...: keep
 * the batch and try again after a pause. */
static void failed(sc_producer *p, int rc, const char *message) {
    atomic_fetch_add(&sc_st.redis_failures, 1);
    p->failures++;
    int64_t now = tlog_mono_ms();
    if (!p->failing_since || now - p->last_report >= OUTAGE_LOG_MS) {
        TLOG(TLOG_WARN, p->failing_since ? "redis_still_down" : "redis_down",
             TLOG_S("msg", is_outage(rc) ? "Redis is unreachable; messages wait in the buffer"
                                         : "Redis refused the batch; it will be retried"),
             TLOG_S("code", bullc_err_name(rc)), TLOG_S("error", message), TLOG_I("buffered", sc_buffer_count(p->buf)));
        p->last_report = now;
        if (!p->failing_since) p->failing_since = now;
    }
    atomic_store(&sc_st.redis_up, false);
    uv_timer_start(&p->retry, on_retry, (uint64_t)p->retry_ms, 0);
    p->retry_ms = p->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->retry_ms * 2;
}

/* bullc refused one job (the batch wrote nothing): drop that one; the rest
 * goes again. */
static void refused(sc_producer *p, const char *message, size_t k) {
    size_t i = p->slot[refused_index(message, k)];
    p->entries[i]->rejected = true;
    atomic_fetch_add(&sc_st.rejected, 1);
    TLOG(TLOG_ERROR, "rejected", TLOG_S("msg", "bullc refused a job; it is dropped"), TLOG_S("error", message));
}

static void added(sc_producer *p, const bullc_bulk_job *jobs, size_t k) {
    size_t existing = 0, recovered = 0;
    for (size_t i = 0; i < k; i++) {
        existing += jobs[i].status == 1;
        /* 2: added although its deduplication key named another job (a
         * stale key BullMQ recovered): our keys have a TTL, so this should
         * not happen; if it does, it may be a double */
        recovered += jobs[i].status == 2;
    }
    if (recovered)
        TLOG(TLOG_WARN, "dedup_key_recovered",
             TLOG_S("msg", "jobs added over a deduplication key that named another job"), TLOG_I("jobs", recovered));
    sc_buffer_pop(p->buf, p->taken);
    atomic_fetch_add(&sc_st.added, k - existing);
    if (existing) {
        /* the retry of a batch Redis had written before the connection
         * broke: its deduplication ids kept it single */
        atomic_fetch_add(&sc_st.deduplicated, existing);
        TLOG(TLOG_INFO, "deduplicated", TLOG_S("msg", "jobs already in Redis were not added twice"),
             TLOG_I("jobs", existing));
    }
    if (p->failing_since) {
        TLOG(TLOG_INFO, "redis_up", TLOG_S("msg", "Redis takes jobs again"),
             TLOG_I("outage_ms", tlog_mono_ms() - p->failing_since), TLOG_I("failed_attempts", p->failures),
             TLOG_I("buffered", sc_buffer_count(p->buf)));
        p->failing_since = 0;
        p->failures = 0;
    }
    atomic_store(&sc_st.redis_up, true);
    p->retry_ms = RETRY_MIN_MS;
}

static void on_added(bullc_aqueue *aq, int status, const bullc_bulk_job *jobs, size_t k, const bullc_error *err,
                     void *data) {
    sc_producer *p = data;
    (void)aq;
    p->in_flight = false;
    if (p->stopped) return; /* the close answered it: what it held stays counted as buffered */
    if (status == 0)
        added(p, jobs, k);
    else if (status == BULLC_EINVAL)
        refused(p, err->message, k);
    else {
        failed(p, status, err->message);
        return;
    }
    kick(p);
}

/* Sends the next batch when none is in flight and no retry is waiting. */
static void kick(sc_producer *p) {
    while (!p->stopped && !p->in_flight && !uv_is_active((uv_handle_t *)&p->retry)) {
        if (sc_buffer_finished(p->buf)) {
            if (!p->finished) {
                p->finished = true;
                p->on_finished();
            }
            return;
        }
        size_t n = sc_buffer_peek(p->buf, p->entries, p->batch);
        if (!n) return;
        size_t k = 0, used = 0; /* jobs made from entries[0, used) */
        for (; used < n; used++) {
            if (p->entries[used]->rejected) continue;
            const bullc_job_opts *o = job_opts(p, p->per_job, k, p->entries[used]->serial);
            if (!o) break; /* out of memory: a smaller batch */
            p->jobs[k] = (bullc_bulk_job){p->job_name, p->entries[used]->data, o, NULL, 0};
            p->slot[k++] = used;
        }
        if (!used) {
            uv_timer_start(&p->retry, on_retry, RETRY_MAX_MS, 0);
            return;
        }
        p->taken = used;
        if (!k) { /* every one of them refused */
            sc_buffer_pop(p->buf, used);
            continue;
        }
        bullc_error err = {0};
        int rc = bullc_aqueue_add_bulk(p->queue, p->jobs, k, on_added, p, &err);
        if (!rc) {
            p->in_flight = true;
            return;
        }
        if (rc == BULLC_EINVAL)
            refused(p, err.message, k);
        else
            failed(p, rc, err.message);
    }
}

static void kick_cb(void *arg) { kick(arg); }

int sc_producer_start(sc_producer *p) {
    p->entries = calloc(p->batch, sizeof *p->entries);
    p->jobs = calloc(p->batch, sizeof *p->jobs);
    p->slot = calloc(p->batch, sizeof *p->slot);
    p->per_job = p->dedup_ttl_ms > 0 ? per_job_opts(p) : NULL;
    p->retry_ms = RETRY_MIN_MS;
    uv_timer_init(p->loop, &p->retry);
    p->retry.data = p;
    p->started = true;
    if (!p->entries || !p->jobs || !p->slot || (!p->per_job && p->dedup_ttl_ms > 0)) {
        TLOG(TLOG_ERROR, "producer", TLOG_S("msg", "out of memory: nothing will be added to Redis"));
        return -1;
    }
    p->buf->on_data = kick_cb;
    p->buf->on_data_arg = p;
    kick(p);
    return 0;
}

static void retry_closed(uv_handle_t *h) {
    sc_producer *p = h->data;
    for (size_t i = 0; p->per_job && i < p->batch; i++) bullc_job_opts_free(p->per_job[i]);
    free(p->per_job);
    free(p->entries);
    free(p->jobs);
    free(p->slot);
}

void sc_producer_stop(sc_producer *p) {
    if (p->stopped) return;
    p->stopped = true;
    if (!p->started) return;
    p->buf->on_data = NULL;
    uv_close((uv_handle_t *)&p->retry, retry_closed);
}
