/* SPDX-License-Identifier: MIT */
/* Retry delays: a job's, as Node's Backoffs.calculate, and a connection's
 * (one policy for every reconnect and cluster retry). */
#include <math.h>
#include <string.h>

#include "bullc-private.h"

/* Node's numbers, unclamped: a delay past int64 (1e19, 1e308, Infinity) is
 * what Node hands moveToDelayed, whose script parks the job that far ahead;
 * converting it to an integer here was undefined and made it a retry at once. */
double bullc__backoff_delay(bullc_worker *w, const bullc_job *job, int64_t attempts_made, const char *error) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(job->opts, "backoff");
    double delay = 0, jitter = 0;
    const char *type = "fixed";
    if (cJSON_IsNumber(b)) {
        delay = b->valuedouble;
    } else if (cJSON_IsObject(b)) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(b, "type");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(b, "delay");
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(b, "jitter");
        type = cJSON_IsString(t) ? t->valuestring : "";
        delay = cJSON_IsNumber(d) ? d->valuedouble : 0;
        jitter = cJSON_IsNumber(j) ? j->valuedouble : 0;
    } else {
        return 0; /* no backoff: retried at once */
    }
    if (!strcmp(type, "fixed")) {
        if (jitter > 0) return floor(bullc__random01() * delay * jitter + delay * (1 - jitter));
        return delay;
    }
    if (!strcmp(type, "exponential")) {
        double max = round(pow(2, (double)(attempts_made - 1)) * delay);
        if (jitter > 0) return floor(bullc__random01() * max * jitter + max * (1 - jitter));
        return max;
    }
    if (w->o.backoff_strategy) return (double)w->o.backoff_strategy(attempts_made, type, error, job, w->o.backoff_data);
    bullc__worker_error(w, BULLC_EINVAL, "job %s: unknown backoff strategy '%s' and no custom strategy: not retried",
                        job->id, type);
    return -1;
}

uint64_t bullc__retry_delay_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms) {
    /* Exponential so that a long outage costs a down server little, capped
     * so that work resumes soon after it is back, and jittered over the
     * upper half so that many clients that lost Redis together do not come
     * back in step (the random source is seeded per process). */
    uint64_t d = (uint64_t)base_ms << (attempt > 16 ? 16 : attempt);
    if (d > cap_ms) d = cap_ms;
    return d / 2 + bullc__random_below(d / 2 + 1);
}
