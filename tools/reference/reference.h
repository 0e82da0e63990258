/* SPDX-License-Identifier: MIT */
/* Producer helpers of the reference deployment: what its NestJS
 * QueueService does (compat-tests/nest-app/app.js), for C programs.
 *
 *   addTestQueueJob(provider, data, messageType = 'game_data')
 *     -> testQueue.add('game_data', {provider, data, timestamp: Date.now(), messageType},
 *                      {removeOnComplete: 10, removeOnFail: 5})
 *   addNotificationJob(userId, type, message, data = {})
 *     -> notificationQueue.add('send-notification', {userId, type, message, data},
 *                              {removeOnComplete: 10, removeOnFail: 5})
 *
 * A job added here reads, in Node, exactly as one the QueueService added:
 * same name, same data (keys in the same order; `data_json` is stored as
 * given, apart from whitespace outside strings, as JSON.stringify writes
 * it), same options. Retries are the queue's business, as in NestJS
 * (registerQueue's defaultJobOptions): give the queue handle
 * bullc_queue_opts_set_default_job_opts, e.g. {"attempts":5,"backoff":{...}}
 * for notifications whose webhook may be down.
 *
 * Static library `bullc_reference` (tools/reference/); it uses bullc's
 * public API only. Thread rules are the queue handle's: one thread at a
 * time per handle. */
#ifndef BULLC_REFERENCE_H
#define BULLC_REFERENCE_H

#include <bullc/bullc.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BULLC_REFERENCE_TEST_QUEUE "test-queue"
#define BULLC_REFERENCE_NOTIFICATION_QUEUE "notification"
#define BULLC_REFERENCE_GAME_DATA_JOB "game_data"
#define BULLC_REFERENCE_NOTIFICATION_JOB "send-notification"
/* The options both QueueService methods give every job. */
#define BULLC_REFERENCE_JOB_OPTS "{\"removeOnComplete\":10,\"removeOnFail\":5}"

/* Adds a `game_data` job to `q` (the test-queue), with the data
 * {"provider":P,"data":D,"timestamp":<now, ms>,"messageType":T}.
 *
 * `provider` and `message_type` are non-empty strings (NULL message_type:
 * "game_data", the QueueService's default); `data_json` is any JSON value
 * as text (a raw text message is a JSON string: "\"text\""), kept as given.
 * Returns bullc_queue_add's result: 0 added (or 1, 2: see there), with the
 * id in *out_id when not NULL (free with bullc_free); or BULLC_EINVAL for
 * a NULL or empty argument or invalid JSON (nothing is written), or the
 * Redis error. `err` may be NULL. */
int bullc_reference_add_test_queue_job(bullc_queue *q, const char *provider, const char *data_json,
                                       const char *message_type, char **out_id, bullc_error *err);

/* Adds a `send-notification` job to `q` (the notification queue), with the
 * data {"userId":U,"type":T,"message":M,"data":D}.
 *
 * `user_id` and `type` are non-empty strings, `message` a string (may be
 * empty); `data_json` a JSON object as text, or NULL for {} (the
 * QueueService's default). Returns as bullc_reference_add_test_queue_job
 * (BULLC_EINVAL also when data_json is not an object: the notification
 * builtin would refuse the job). */
int bullc_reference_add_notification_job(bullc_queue *q, const char *user_id, const char *type, const char *message,
                                         const char *data_json, char **out_id, bullc_error *err);

#ifdef __cplusplus
}
#endif
#endif
