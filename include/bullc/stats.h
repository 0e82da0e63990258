/* SPDX-License-Identifier: MIT */
/* Worker statistics: what a worker counted since it was created, as typed
 * figures for programs that export them their own way (bullc-worker's
 * /metrics is one such program). */
#ifndef BULLC_STATS_H
#define BULLC_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <bullc/common.h>
#include <bullc/worker.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A snapshot of one worker's figures. Opaque, so that a new figure is a new
 * getter and never a new struct layout. Created with bullc_stats_new
 * (owned by the caller, freed with bullc_stats_free), filled by
 * bullc_stats; one snapshot may be refilled any number of times. */
typedef struct bullc_stats bullc_stats;

/* A new, zeroed snapshot in *out. 0 or BULLC_ENOMEM. Any thread. */
BULLC_EXPORT int bullc_stats_new(bullc_stats **out);
/* NULL is a no-op. */
BULLC_EXPORT void bullc_stats_free(bullc_stats *s);

/* Copies `w`'s figures into `s` (no Redis command, no allocation). 0, or
 * BULLC_EINVAL when either is NULL. Loop thread of `w` (the figures change
 * there, so a snapshot is consistent). */
BULLC_EXPORT int bullc_worker_stats(const bullc_worker *w, bullc_stats *s);

/* Jobs this worker stored as completed. */
BULLC_EXPORT uint64_t bullc_stats_completed(const bullc_stats *s);
/* Failed attempts this worker stored (retried ones included: Node's
 * `failed` event fires for each). */
BULLC_EXPORT uint64_t bullc_stats_failed(const bullc_stats *s);
/* Jobs given up because their lock could not be renewed (the lock_lost event). */
BULLC_EXPORT uint64_t bullc_stats_lock_lost(const bullc_stats *s);
/* Stalled jobs this worker's stalled checker moved back to wait or failed
 * (the stalled event). */
BULLC_EXPORT uint64_t bullc_stats_stalled(const bullc_stats *s);
/* Times the command connection came back after it had been ready once. */
BULLC_EXPORT uint64_t bullc_stats_reconnects(const bullc_stats *s);
/* Jobs being processed when the snapshot was taken. */
BULLC_EXPORT int bullc_stats_active(const bullc_stats *s);
/* Whether both of the worker's connections were ready (Redis reachable). */
BULLC_EXPORT bool bullc_stats_redis_up(const bullc_stats *s);
/* Processing time of the jobs counted by _completed and _failed, from the
 * `active` event to the stored finish: their number and sum in seconds. */
BULLC_EXPORT uint64_t bullc_stats_duration_count(const bullc_stats *s);
BULLC_EXPORT double bullc_stats_duration_sum(const bullc_stats *s);
/* The same times as a histogram of fixed buckets (Prometheus' default
 * bounds, 0.005 s to 10 s): how many buckets (the last one unbounded) ... */
BULLC_EXPORT size_t bullc_stats_duration_buckets(const bullc_stats *s);
/* ... and bucket `i`'s upper bound in seconds (INFINITY for the last) with
 * the number of times at or under it (cumulative, as Prometheus' `le`).
 * 0 when `i` is out of range. */
BULLC_EXPORT uint64_t bullc_stats_duration_bucket(const bullc_stats *s, size_t i, double *le);

#ifdef __cplusplus
}
#endif
#endif
