/* SPDX-License-Identifier: MIT */
/* The queue's events stream: a listener on a libuv loop (Node's
 * QueueEvents), custom events (Node's QueueEventsProducer) and reading the
 * stream synchronously. See docs/events.md. */
#ifndef BULLC_EVENTS_H
#define BULLC_EVENTS_H

#include <stdbool.h>
#include <bullc/common.h>
#include <bullc/queue.h>
#include <bullc/redis.h>

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s; /* libuv's loop; this header does not include uv.h */

/* One field of an event, as stored in the stream (values are text; Node
 * writes `returnvalue` of `completed` and `data` of `progress` as JSON, and
 * `delay` of `delayed` as the absolute run time in ms). */
typedef struct bullc_event_field {
    const char *name;
    const char *value;
    size_t value_len;
} bullc_event_field;

/* One entry of the events stream. Borrowed: valid during the callback. */
typedef struct bullc_event {
    const char *id;                  /* stream entry id, "1700000000000-0" */
    const char *name;                /* the `event` field: "completed", "waiting", ... ("" if absent) */
    const bullc_event_field *fields; /* every other field, in stored order (jobId, returnvalue, prev, ...) */
    size_t nfields;
} bullc_event;

/* The value of field `name` of `ev`, or NULL. Borrowed. */
BULLC_EXPORT const char *bullc_event_get(const bullc_event *ev, const char *name);

/* A listener on one queue's events stream. Opaque. Every call and every
 * callback is on the loop's thread. */
typedef struct bullc_queue_events bullc_queue_events;

/* Listener settings (Node's QueueEventsOptions). Opaque; created with
 * bullc_queue_events_opts_new, freed with bullc_queue_events_opts_free.
 * bullc_queue_events_new copies them, so they may be freed right after. Not
 * thread-safe. Setters copy strings and return 0, BULLC_EINVAL (out of range;
 * `opts` unchanged) or BULLC_ENOMEM. */
typedef struct bullc_queue_events_opts bullc_queue_events_opts;

/* Creates the defaults: Redis from bullc_redis_opts' defaults then the
 * environment, prefix "bull", only new events ("$"), blockingTimeout
 * 10000 ms, autorun on. 0 or BULLC_ENOMEM. */
BULLC_EXPORT int bullc_queue_events_opts_new(bullc_queue_events_opts **out);

/* Frees the settings. NULL is a no-op. */
BULLC_EXPORT void bullc_queue_events_opts_free(bullc_queue_events_opts *opts);

/* Where Redis is; NULL: the defaults, then the environment. */
BULLC_EXPORT int bullc_queue_events_opts_set_redis(bullc_queue_events_opts *opts, const bullc_redis_opts *redis);
/* The key prefix; NULL: "bull". */
BULLC_EXPORT int bullc_queue_events_opts_set_prefix(bullc_queue_events_opts *opts, const char *prefix);
/* lastEventId: deliver the entries after this id ("0-0": the whole stream);
 * NULL: only new ones ("$"). "" is BULLC_EINVAL. */
BULLC_EXPORT int bullc_queue_events_opts_set_last_event_id(bullc_queue_events_opts *opts, const char *id);
/* blockingTimeout: XREAD BLOCK, ms, >= 0 (0 blocks without limit). */
BULLC_EXPORT int bullc_queue_events_opts_set_blocking_timeout(bullc_queue_events_opts *opts, int64_t ms);
/* autorun (default true): start listening at once; else call
 * bullc_queue_events_run. */
BULLC_EXPORT int bullc_queue_events_opts_set_autorun(bullc_queue_events_opts *opts, bool autorun);
/* The BullMQ major of the queue's events: 5, 6 or 0 (auto: the queue's
 * meta.version, else 6), as bullc_queue_opts_set_bullmq_version. A conflict
 * with the queue's meta.version is reported as an error event
 * (BULLC_EVERSION) and the listener stops. Else BULLC_EINVAL, unchanged. */
BULLC_EXPORT int bullc_queue_events_opts_set_bullmq_version(bullc_queue_events_opts *opts, int major);

/* Callbacks, all optional; `data` is passed last to each. */
typedef struct bullc_queue_events_callbacks {
    /* one call per stream entry, in stream order */
    void (*event)(bullc_queue_events *qe, const bullc_event *ev, void *data);
    /* listening (at start, and again after each reconnect): events after
     * `after_id` will be delivered */
    void (*ready)(bullc_queue_events *qe, const char *after_id, void *data);
    /* the connection broke or Redis answered with an error; the listener
     * keeps retrying and resumes after the last entry delivered */
    void (*error)(bullc_queue_events *qe, int code, const char *message, void *data);
} bullc_queue_events_callbacks;

/* Creates a listener for `queue` on `loop`, with its own connection, named
 * "<prefix>:<base64(queue)>:qe" as Node's. Listening means XREAD BLOCK
 * <blocking_timeout> on "<prefix>:<queue>:events" from the last id read;
 * when started from "$", the stream's current last id is fetched first, so
 * that a reconnect loses nothing. Copies `opts` and `cbs` (either may be
 * NULL). Returns 0 and *out, or BULLC_EINVAL / BULLC_ENOMEM. Close it with
 * bullc_queue_events_close, free it after the close callback. */
BULLC_EXPORT int bullc_queue_events_new(bullc_queue_events **out, struct uv_loop_s *loop, const char *queue,
                                        const bullc_queue_events_opts *opts, const bullc_queue_events_callbacks *cbs,
                                        void *data, bullc_error *err);

/* Starts listening (when autorun is off). 0, or BULLC_EINVAL when already
 * running (Node: "Queue Events is already running."), BULLC_ECLOSED when
 * closing. */
BULLC_EXPORT int bullc_queue_events_run(bullc_queue_events *qe);

/* The id of the last entry delivered, or the starting id ("$" until the
 * stream's last id is known). Borrowed; changes as events arrive. */
BULLC_EXPORT const char *bullc_queue_events_last_id(const bullc_queue_events *qe);

/* Stops listening and closes the connection. No event callback runs after
 * this call (even one called from inside an event callback); `cb` runs
 * exactly once on the loop thread when everything is closed; then call
 * bullc_queue_events_free. A second call does nothing (its `cb` never runs). */
BULLC_EXPORT void bullc_queue_events_close(bullc_queue_events *qe, void (*cb)(bullc_queue_events *qe, void *data),
                                           void *data);

/* Frees a listener whose close callback ran. NULL is a no-op. */
BULLC_EXPORT void bullc_queue_events_free(bullc_queue_events *qe);

/* Publishes a custom event (Node's QueueEventsProducer.publishEvent): XADD
 * to the queue's events stream with MAXLEN ~ `max_events` (0: Node's
 * default 1000) of `event` = `event_name` followed by `nfields` name/value
 * pairs (`fields[2*i]`, `fields[2*i+1]`, text). *out_id (may be NULL): the
 * entry's id, free with bullc_free. */
BULLC_EXPORT int bullc_queue_publish_event(bullc_queue *queue, const char *event_name, const char *const *fields,
                                           size_t nfields, int64_t max_events, char **out_id, bullc_error *err);

/* Reads the events stream without blocking: the entries after `after_id`
 * (NULL or "": from the start; "$": none), at most `count` (0: all), as a
 * JSON array of objects {"id": ..., "event": ..., <field>: <value as stored,
 * a string>...}. Free with bullc_free. */
BULLC_EXPORT int bullc_queue_get_events(bullc_queue *queue, const char *after_id, size_t count, char **out_json,
                                        bullc_error *err);

#ifdef __cplusplus
}
#endif
#endif
