/* SPDX-License-Identifier: MIT */
/* The worker's span of a job, as Node's worker writes it through
 * bullmq-otel: "process <queue>", kind consumer, child of the context the
 * producer stored in the job's "tm" option (a new trace without one), with
 * the worker's and the job's ids and names, the attempts made, the
 * processed and finished timestamps, and a "job completed" or "job failed"
 * event. Only when the worker has a tracer: no cost otherwise. */
#include <string.h>

#include "bullc-private.h"

void bullc__trace_job_start(bullc_worker *w, bullc_job *job) {
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(job->opts, "telemetryMetadata");
    bullc__span_ctx parent;
    bool has = cJSON_IsString(tm) && bullc__trace_metadata_parse(tm->valuestring, &parent);
    bullc__span_start(w->o.tracer, &job->span, BULLC__SPAN_CONSUMER, has ? &parent : NULL);
}

void bullc__trace_job_end(bullc_worker *w, bullc_job *job, bool completed, const char *value) {
    if (!(job->span.ctx.flags & 1)) return;
    char name[512];
    int nl = snprintf(name, sizeof name, "process %s", w->queue);
    if (nl < 0) return;
    if ((size_t)nl >= sizeof name) nl = sizeof name - 1;
    /* Node's job.attemptsMade once moveToFinished has counted this attempt */
    int64_t finished = bullc__now_ms();
    bullc__attr a[] = {{"bullmq.queue.name", BULLC__ATTR_STR, w->queue, sdslen(w->queue), 0},
                       {"bullmq.queue.operation", BULLC__ATTR_STR, "process", 7, 0},
                       {"bullmq.worker.id", BULLC__ATTR_STR, w->id, strlen(w->id), 0},
                       {"bullmq.job.id", BULLC__ATTR_STR, job->id, sdslen(job->id), 0},
                       {"bullmq.job.name", BULLC__ATTR_STR, job->name, sdslen(job->name), 0},
                       {"bullmq.job.attempts.made", BULLC__ATTR_INT, NULL, 0, job->attempts_made + 1},
                       {"bullmq.job.attempt_finished_timestamp", BULLC__ATTR_INT, NULL, 0, finished},
                       {"bullmq.job.processed.timestamp", BULLC__ATTR_INT, NULL, 0, job->processed_on},
                       {"bullmq.worker.name", BULLC__ATTR_STR, w->name, w->name ? sdslen(w->name) : 0, 0},
                       /* 5.x also writes its deprecated name (6.x dropped it) */
                       {"bullmq.job.finished.timestamp", BULLC__ATTR_INT, NULL, 0, finished}};
    size_t n = sizeof a / sizeof a[0] - 2;
    if (w->name) n++;
    if (w->proto->major == 5) a[n++] = a[sizeof a / sizeof a[0] - 1];
    const char *v = value ? value : "";
    bullc__attr e = {completed ? "bullmq.job.result" : "bullmq.job.failed.reason", BULLC__ATTR_STR, v, strlen(v), 0};
    bullc__span_end(w->o.tracer, &job->span, name, (size_t)nl, a, n, completed ? "job completed" : "job failed", &e, 1);
}
