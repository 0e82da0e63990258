/* SPDX-License-Identifier: MIT */
/* Adds a job as Node's `queue.add('send-notification', {...}, {attempts: 3})`.
 * Build: cc producer.c $(pkg-config --cflags --libs bullc) */
#include <bullc/bullc.h>
#include <stdio.h>

int main(void) {
    bullc_error err = {0};
    bullc_queue *queue = NULL;
    /* NULL options: key prefix "bull", Redis from REDIS_URL / REDIS_HOST... */
    if (bullc_queue_new(&queue, "notification", NULL, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    bullc_job_opts *opts = NULL;
    bullc_job_opts_new(&opts);
    /* Node's option names, as JSON or with setters */
    bullc_job_opts_merge_json(opts, "{\"removeOnComplete\":10,\"removeOnFail\":5}", NULL);
    bullc_job_opts_set_attempts(opts, 3);
    bullc_job_opts_set_backoff(opts, "exponential", 1000, -1);

    char *id = NULL;
    int rc =
        bullc_queue_add(queue, "send-notification",
                        "{\"userId\":\"u1\",\"type\":\"info\",\"message\":\"hello\",\"data\":{}}", opts, &id, &err);
    if (rc < 0)
        fprintf(stderr, "add failed: %s\n", err.message);
    else
        printf("added job %s%s\n", id, rc == 1 ? " (it already existed)" : "");
    bullc_free(id);
    bullc_job_opts_free(opts);
    bullc_queue_free(queue);
    return rc < 0;
}
