/* SPDX-License-Identifier: MIT */
/* bullc-test-aqueue-add: one job added with bullc_aqueue_add (the
 * asynchronous add, on a libuv loop), with the command line of `bullc add`,
 * so that the Node tests that compare `bullc add` with Node's queue.add run
 * the same cases over the asynchronous path:
 *
 *   bullc-test-aqueue-add --redis URL [--prefix P] add QUEUE NAME [DATA] [--opts JSON]
 *
 * DATA is stored as given (the CLI minifies it; the library does not).
 * BULLC_BULLMQ_VERSION (5 or 6) sets the major as it does for the CLI, and
 * OTEL_EXPORTER_OTLP_ENDPOINT (and the other OTEL_* the CLI reads) traces
 * the add.
 * Prints the job id (nothing when there is none: a 5.x repeatable job whose
 * limit or end is reached); exit 0, 2 (usage, invalid input) or 3 (Redis). */
#include <bullc/bullc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

typedef struct outcome {
    int calls;
    int status;
    char *id;
    char message[256];
} outcome;

static void on_added(bullc_aqueue *aq, int status, const char *job_id, const bullc_error *err, void *data) {
    (void)aq;
    outcome *o = data;
    o->calls++;
    o->status = status;
    if (job_id) o->id = strdup(job_id);
    if (status < 0 && err) snprintf(o->message, sizeof o->message, "%s", err->message);
}

static void on_closed(bullc_aqueue *aq, void *data) {
    (void)aq;
    *(int *)data = 1;
}

static int usage(const char *argv0) {
    fprintf(stderr, "usage: %s --redis URL [--prefix P] add QUEUE NAME [DATA] [--opts JSON]\n", argv0);
    return 2;
}

int main(int argc, char **argv) {
    const char *url = NULL, *prefix = NULL, *queue = NULL, *name = NULL, *data = "{}", *opts_json = NULL;
    int i = 1;
    for (; i + 1 < argc && argv[i][0] == '-'; i += 2)
        if (!strcmp(argv[i], "--redis"))
            url = argv[i + 1];
        else if (!strcmp(argv[i], "--prefix"))
            prefix = argv[i + 1];
        else
            return usage(argv[0]);
    if (!url || i + 2 >= argc || strcmp(argv[i], "add")) return usage(argv[0]);
    queue = argv[i + 1], name = argv[i + 2], i += 3;
    if (i < argc && strcmp(argv[i], "--opts")) data = argv[i++];
    if (i + 1 < argc && !strcmp(argv[i], "--opts")) opts_json = argv[i + 1], i += 2;
    if (i != argc) return usage(argv[0]);

    bullc_error err = {0};
    bullc_redis_opts *ro = NULL;
    bullc_queue_opts *qo = NULL;
    bullc_job_opts *jo = NULL;
    if (bullc_redis_opts_new(&ro) || bullc_queue_opts_new(&qo) || bullc_job_opts_new(&jo)) return 1;
    const char *major = getenv("BULLC_BULLMQ_VERSION");
    bullc_tracer_opts *to = NULL;
    bullc_tracer *tracer = NULL;
    bool traced = false;
    int rc = bullc_tracer_opts_new(&to);
    if (!rc) rc = bullc_tracer_opts_from_env(to, &traced, &err);
    if (!rc && traced) rc = bullc_tracer_new(&tracer, to, &err);
    bullc_tracer_opts_free(to);
    if (!rc) rc = bullc_queue_opts_set_tracer(qo, tracer);
    if (!rc) rc = bullc_redis_opts_parse_url(ro, url, &err);
    if (!rc) rc = bullc_queue_opts_set_redis(qo, ro);
    if (!rc && prefix) rc = bullc_queue_opts_set_prefix(qo, prefix);
    if (!rc && major && *major) rc = bullc_queue_opts_set_bullmq_version(qo, atoi(major));
    if (!rc && opts_json) rc = bullc_job_opts_merge_json(jo, opts_json, &err);
    bullc_redis_opts_free(ro);
    if (rc) {
        fprintf(stderr, "%s\n", err.message[0] ? err.message : "invalid options");
        bullc_queue_opts_free(qo), bullc_job_opts_free(jo);
        bullc_tracer_free(tracer);
        return 2;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    bullc_aqueue *aq = NULL;
    rc = bullc_aqueue_new(&aq, &loop, queue, qo, &err);
    bullc_queue_opts_free(qo);
    outcome out = {0};
    if (!rc) {
        rc = bullc_aqueue_add(aq, name, data, jo, on_added, &out, &err);
        if (!rc && out.calls) {
            fprintf(stderr, "the callback ran inside bullc_aqueue_add\n");
            return 1;
        }
        /* the handle copied the options: the caller's may go now */
        bullc_job_opts_free(jo), jo = NULL;
        while (!rc && !out.calls) uv_run(&loop, UV_RUN_ONCE);
        int closed = 0;
        bullc_aqueue_close(aq, on_closed, &closed);
        while (!closed) uv_run(&loop, UV_RUN_ONCE);
        bullc_aqueue_free(aq);
    }
    bullc_job_opts_free(jo);
    uv_loop_close(&loop);
    bullc_tracer_free(tracer); /* exports the add's span */
    int status = rc ? rc : out.status;
    if (status < 0)
        fprintf(stderr, "%s\n", rc ? err.message : out.message);
    else if (out.id) /* none: a repeatable job whose limit or end is reached */
        printf("%s\n", out.id);
    free(out.id);
    if (out.calls > 1) return 1;
    return status == BULLC_EINVAL ? 2 : status < 0 ? 3 : 0;
}
