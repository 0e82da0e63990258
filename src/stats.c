/* SPDX-License-Identifier: MIT */
/* Worker statistics (bullc_worker_stats): the worker counts on its loop
 * thread as its events fire; a snapshot copies the counters, so exporting
 * them costs no Redis command and no allocation. */
#include <math.h>
#include <stdlib.h>

#include "bullc-private.h"

/* Prometheus' default histogram bounds (client_golang's DefBuckets), so
 * that a dashboard made for other exporters' job durations reads ours. */
static const double bounds[BULLC__DURATION_BUCKETS - 1] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct bullc_stats {
    bullc__wstats w;
    int active;
    bool redis_up;
};

void bullc__wstats_duration(bullc__wstats *s, double seconds) {
    size_t i = 0;
    while (i < BULLC__DURATION_BUCKETS - 1 && seconds > bounds[i]) i++;
    s->duration_buckets[i]++;
    s->duration_count++;
    s->duration_sum += seconds;
}

int bullc_stats_new(bullc_stats **out) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : BULLC_ENOMEM;
}

void bullc_stats_free(bullc_stats *s) { free(s); }

int bullc_worker_stats(const bullc_worker *w, bullc_stats *s) {
    if (!w || !s) return BULLC_EINVAL;
    s->w = w->stats;
    s->active = w->in_flight;
    s->redis_up = bullc__aconn_ready(w->cmd) && bullc__aconn_ready(w->block);
    return 0;
}

uint64_t bullc_stats_completed(const bullc_stats *s) { return s->w.completed; }
uint64_t bullc_stats_failed(const bullc_stats *s) { return s->w.failed; }
uint64_t bullc_stats_lock_lost(const bullc_stats *s) { return s->w.lock_lost; }
uint64_t bullc_stats_stalled(const bullc_stats *s) { return s->w.stalled; }
uint64_t bullc_stats_reconnects(const bullc_stats *s) { return s->w.reconnects; }
int bullc_stats_active(const bullc_stats *s) { return s->active; }
bool bullc_stats_redis_up(const bullc_stats *s) { return s->redis_up; }
uint64_t bullc_stats_duration_count(const bullc_stats *s) { return s->w.duration_count; }
double bullc_stats_duration_sum(const bullc_stats *s) { return s->w.duration_sum; }
size_t bullc_stats_duration_buckets(const bullc_stats *s) {
    (void)s;
    return BULLC__DURATION_BUCKETS;
}

uint64_t bullc_stats_duration_bucket(const bullc_stats *s, size_t i, double *le) {
    if (i >= BULLC__DURATION_BUCKETS) return 0;
    if (le) *le = i < BULLC__DURATION_BUCKETS - 1 ? bounds[i] : INFINITY;
    uint64_t n = 0;
    for (size_t k = 0; k <= i; k++) n += s->w.duration_buckets[k];
    return n;
}
