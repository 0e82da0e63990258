/* SPDX-License-Identifier: MIT */
/* Processes the jobs of a queue, as a Node `new Worker('notification', fn)`,
 * until SIGINT. Build: cc worker.c $(pkg-config --cflags --libs bullc libuv) */
#include <bullc/bullc.h>
#include <stdio.h>
#include <uv.h>

/* An asynchronous processor: runs on the loop; completes or fails the job
 * (here at once; it may also do so later, from another callback). */
static void process(bullc_job *job, void *data) {
    (void)data;
    printf("job %s (%s): %s\n", bullc_job_id(job), bullc_job_name(job), bullc_job_data(job));
    bullc_job_update_progress(job, "100", NULL, NULL);
    bullc_job_complete(job, "{\"delivered\":true}");
}

static void on_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    (void)w, (void)data;
    printf("job %s failed: %s%s\n", bullc_job_id(job), reason, will_retry ? " (will retry)" : "");
}

static void on_closed(bullc_worker *w, void *data) { (void)w, (void)data; }

static void on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    bullc_worker_close(s->data, false, 10000, on_closed, NULL); /* finish jobs in process, then close */
    uv_close((uv_handle_t *)s, NULL);
}

int main(void) {
    uv_loop_t *loop = uv_default_loop();
    bullc_worker_opts *opts = NULL;
    if (bullc_worker_opts_new(&opts)) return 1; /* Node's defaults: concurrency 1, lockDuration 30000, ... */
    bullc_worker_opts_set_processor(opts, process, NULL);
    bullc_worker_opts_set_concurrency(opts, 8);
    bullc_worker_events events = {0};
    events.failed = on_failed;
    bullc_worker *worker = NULL;
    bullc_error err = {0};
    int rc = bullc_worker_new(&worker, loop, "notification", opts, &events, NULL, &err);
    bullc_worker_opts_free(opts); /* the worker keeps a copy */
    if (rc) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    uv_signal_t sig;
    uv_signal_init(loop, &sig);
    sig.data = worker;
    uv_signal_start(&sig, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    bullc_worker_free(worker);
    return uv_loop_close(loop) != 0;
}
