/* SPDX-License-Identifier: MIT */
/* The `payment` queue's producer helper (see payment_queue.h). */
#include "payment_queue.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int invalid(bullc_error *err, const char *msg) {
    if (err) {
        err->code = BULLC_EINVAL;
        snprintf(err->message, sizeof err->message, "%s", msg);
    }
    return BULLC_EINVAL;
}

int payment_add_process_payment_job(bullc_queue *q, const char *order_id, double amount, const char *currency,
                                    char **out_id, bullc_error *err) {
    /* Refuse here what the processor would refuse: a caller learns it now,
     * not from a failed job later. */
    if (!order_id || !*order_id) return invalid(err, "order_id must be a non-empty string");
    if (!isfinite(amount) || amount <= 0) return invalid(err, "amount must be a number > 0");
    if (!currency || strlen(currency) != 3 || currency[strspn(currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")])
        return invalid(err, "currency must be an ISO 4217 code such as EUR");

    /* cJSON escapes the strings; its numbers print as JSON.stringify's do
     * for amounts like 12.5 */
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "orderId", order_id);
    cJSON_AddNumberToObject(d, "amount", amount);
    cJSON_AddStringToObject(d, "currency", currency);
    char *data = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);

    char job_id[300];
    snprintf(job_id, sizeof job_id, "payment-%s", order_id);
    bullc_job_opts *opts = NULL;
    int rc = data ? bullc_job_opts_new(&opts) : BULLC_ENOMEM;
    if (!rc)
        rc = bullc_job_opts_merge_json(opts,
                                       "{\"attempts\":5,\"backoff\":{\"type\":\"exponential\",\"delay\":2000},"
                                       "\"removeOnComplete\":1000,\"removeOnFail\":5000}",
                                       err);
    if (!rc) rc = bullc_job_opts_set_job_id(opts, job_id);
    if (!rc) rc = bullc_queue_add(q, PAYMENT_JOB, data, opts, out_id, err);
    bullc_job_opts_free(opts);
    cJSON_free(data);
    return rc;
}
