/* SPDX-License-Identifier: MIT */
/* bullc-worker plugins: the entry points a shared library gives
 * `bullc-worker --plugin PATH.so`. A plugin includes it as <bullc/plugin.h>
 * (installed with libbullc's headers); libbullc itself implements none of
 * these: bullc-worker looks them up in the plugin.
 *
 * bullc-worker loads the library with dlopen(PATH, RTLD_NOW | RTLD_LOCAL),
 * from the explicit path given only. Link the plugin with libbullc
 * (-lbullc) so that the bullc_job_* calls resolve to the same library
 * bullc-worker uses. */
#ifndef BULLC_WORKER_PLUGIN_H
#define BULLC_WORKER_PLUGIN_H

#include <bullc/bullc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Optional. Called once per queue served by the plugin, on the main thread,
 * before any job: `queue` is the queue name, `config_json` the JSON text of
 * --plugin-config (or the config file's "pluginConfig"), NULL when none.
 * Store per-queue state in *state (NULL on entry); it is passed to the other
 * two calls. Return 0, or non-zero to stop bullc-worker (exit code 1). */
int bullc_plugin_init(const char *queue, const char *config_json, void **state);

/* Required. Processes one job, on one of libuv's thread-pool threads: up to
 * --concurrency calls run at once (on different jobs), so the code must be
 * thread-safe. bullc-worker sizes UV_THREADPOOL_SIZE to the plugins' total
 * concurrency unless that variable is set.
 *
 * `job` is borrowed until the call returns; use the getters
 * (bullc_job_data, bullc_job_id, ...) and bullc_job_update_progress /
 * bullc_job_log / bullc_job_update_data with a NULL callback.
 * bullc_job_lock_lost() turns true when the job's lock was lost or its
 * --timeout passed: the result will be dropped, so a long job should stop.
 * bullc_job_is_cancelled() turns true when the job is cancelled (SIGUSR1 to
 * bullc-worker, `bullc cancel QUEUE ID`, or bullc_worker_cancel_job in a
 * program embedding the worker): stop, and fail the job with bullc_job_cancel_reason() as
 * out->error (retried per its attempts; BULLC_FAIL_UNRECOVERABLE if it must
 * not be), as a Node processor throws signal.reason. A plugin that ignores
 * it completes the job as usual.
 *
 * On success return 0 and set out->result_json to the return value as JSON
 * text, malloc'd (NULL stores null). On failure set out->error (malloc'd
 * message; it becomes failedReason) and return non-zero; out->fail_flags =
 * BULLC_FAIL_UNRECOVERABLE fails the job without retries. A non-zero return
 * without out->error fails the job with "plugin returned N". bullc-worker
 * frees both strings.
 *
 * Flow control (Node's moveToDelayed / moveToWaitingChildren and their
 * DelayedError / WaitingChildrenError): call bullc_job_move_to_delayed or
 * bullc_job_move_to_waiting_children with a NULL callback (they wait for
 * Redis's answer: 1 moved, 0 not moved, or a BULLC_E* code); after a move,
 * set out->fail_flags = BULLC_FAIL_MOVED and return non-zero: the job is
 * neither completed nor failed, and comes back later with the data it holds
 * then (bullc_job_update_data before the move: the step-job pattern). */
int bullc_plugin_process(bullc_job *job, bullc_job_result *out, void *state);

/* Optional. Called once per queue after its worker closed (no call of
 * bullc_plugin_process runs any more), on the main thread. */
void bullc_plugin_fini(void *state);

#ifdef __cplusplus
}
#endif
#endif
