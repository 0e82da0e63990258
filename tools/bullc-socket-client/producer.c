/* SPDX-License-Identifier: MIT */
/* The Redis side: a thread that adds the buffer's entries as game_data jobs,
 * oldest first, in atomic batches (bullc_queue_add_bulk: MULTI/EXEC, so a
 * batch is written whole or not at all). A batch that fails is retried, the
 * same entries in the same order, until Redis takes it; only then are they
 * removed from the buffer. So jobs are added in arrival order, and nothing
 * is lost while Redis is down or restarting (the buffer holds it).
 *
 * One window is ambiguous: when the connection breaks after the batch was
 * sent and before its reply came back (a kill -9 of Redis lands there often
 * with appendfsync always: the reply waits for the fsync), Redis may or may
 * not have written the batch, and bullc's API has no way to ask (no job
 * lookup; Node's job ids must stay the queue's counter, so no custom ids).
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

static void *run(void *arg) {
    sc_producer *p = arg;
    sc_entry **entries = calloc(p->batch, sizeof *entries);
    bullc_bulk_job *jobs = calloc(p->batch, sizeof *jobs);
    size_t *slot = calloc(p->batch, sizeof *slot); /* jobs[k] is entries[slot[k]] */
    bullc_job_opts **per_job = p->dedup_ttl_ms > 0 ? per_job_opts(p) : NULL;
    int64_t retry_ms = RETRY_MIN_MS, failing_since = 0, last_report = 0;
    uint64_t failures = 0;
    bool ok = entries && jobs && slot && (per_job || p->dedup_ttl_ms <= 0);
    if (!ok) {
        TLOG(TLOG_ERROR, "producer", TLOG_S("msg", "out of memory: nothing will be added to Redis"));
        sc_buffer_abandon(p->buf);
    }
    while (ok && !sc_buffer_finished(p->buf)) {
        size_t n = sc_buffer_peek(p->buf, entries, p->batch, 1000);
        if (!n) continue;
        size_t k = 0, used = 0; /* jobs made from entries[0, used) */
        for (; used < n; used++) {
            if (entries[used]->rejected) continue;
            const bullc_job_opts *o = job_opts(p, per_job, k, entries[used]->serial);
            if (!o) break; /* out of memory: a smaller batch */
            jobs[k] = (bullc_bulk_job){p->job_name, entries[used]->data, o, NULL, 0};
            slot[k++] = used;
        }
        if (!used) {
            sc_buffer_sleep(p->buf, RETRY_MAX_MS);
            continue;
        }
        n = used;
        bullc_error err = {0};
        int rc = k ? bullc_queue_add_bulk(p->queue, jobs, k, &err) : 0;
        if (rc == 0) {
            size_t existing = 0, recovered = 0;
            for (size_t i = 0; i < k; i++) {
                existing += jobs[i].status == 1;
                /* 2: added although its deduplication key named another job
                 * (a stale key BullMQ recovered): our keys have a TTL, so
                 * this should not happen; if it does, it may be a double */
                recovered += jobs[i].status == 2;
                bullc_free(jobs[i].id);
            }
            if (recovered)
                TLOG(TLOG_WARN, "dedup_key_recovered",
                     TLOG_S("msg", "jobs added over a deduplication key that named another job"),
                     TLOG_I("jobs", recovered));
            sc_buffer_pop(p->buf, n);
            atomic_fetch_add(&sc_st.added, k - existing);
            if (existing) {
                /* the retry of a batch Redis had written before the
                 * connection broke: its deduplication ids kept it single */
                atomic_fetch_add(&sc_st.deduplicated, existing);
                TLOG(TLOG_INFO, "deduplicated", TLOG_S("msg", "jobs already in Redis were not added twice"),
                     TLOG_I("jobs", existing));
            }
            if (failing_since) {
                TLOG(TLOG_INFO, "redis_up", TLOG_S("msg", "Redis takes jobs again"),
                     TLOG_I("outage_ms", tlog_mono_ms() - failing_since), TLOG_I("failed_attempts", failures),
                     TLOG_I("buffered", sc_buffer_count(p->buf)));
                failing_since = 0;
                failures = 0;
            }
            atomic_store(&sc_st.redis_up, true);
            retry_ms = RETRY_MIN_MS;
            continue;
        }
        if (rc == BULLC_EINVAL) {
            /* bullc refused one job (the batch wrote nothing): drop that one
             * and send the rest again */
            size_t i = slot[refused_index(err.message, k)];
            entries[i]->rejected = true;
            atomic_fetch_add(&sc_st.rejected, 1);
            TLOG(TLOG_ERROR, "rejected", TLOG_S("msg", "bullc refused a job; it is dropped"),
                 TLOG_S("error", err.message));
            continue;
        }
        /* Redis is down, restarting (LOADING), read-only, out of memory...:
         * keep the batch and try again */
        atomic_fetch_add(&sc_st.redis_failures, 1);
        failures++;
        int64_t now = tlog_mono_ms();
        if (!failing_since || now - last_report >= OUTAGE_LOG_MS) {
            TLOG(TLOG_WARN, failing_since ? "redis_still_down" : "redis_down",
                 TLOG_S("msg", is_outage(rc) ? "Redis is unreachable; messages wait in the buffer"
                                             : "Redis refused the batch; it will be retried"),
                 TLOG_S("code", bullc_err_name(rc)), TLOG_S("error", err.message),
                 TLOG_I("buffered", sc_buffer_count(p->buf)));
            last_report = now;
            if (!failing_since) failing_since = now;
        }
        atomic_store(&sc_st.redis_up, false);
        if (sc_buffer_sleep(p->buf, retry_ms)) break;
        retry_ms = retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : retry_ms * 2;
    }
    for (size_t i = 0; per_job && i < p->batch; i++) bullc_job_opts_free(per_job[i]);
    free(per_job);
    free(entries);
    free(jobs);
    free(slot);
    /* the main thread closes the async when it gives up on us (abandon):
     * then the loop may be gone, so the check and the send are under the
     * lock the main thread takes to close it */
    pthread_mutex_lock(&p->buf->mu);
    if (!p->done_closed) uv_async_send(p->done);
    pthread_mutex_unlock(&p->buf->mu);
    return NULL;
}

int sc_producer_start(sc_producer *p) {
    int rc = pthread_create(&p->thread, NULL, run, p);
    if (rc) return -rc;
    p->started = true;
    return 0;
}
