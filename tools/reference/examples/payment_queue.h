/* SPDX-License-Identifier: MIT */
/* The `payment` queue's producer helper: step 3 of docs/adding-a-queue.md,
 * in the manner of the reference helpers (tools/reference/reference.h). */
#ifndef PAYMENT_QUEUE_H
#define PAYMENT_QUEUE_H

#include <bullc/bullc.h>

#define PAYMENT_QUEUE "payment"
#define PAYMENT_JOB "process-payment"

/* Adds a `process-payment` job {"orderId","amount","currency"} to `q` (the
 * payment queue) with 5 attempts, exponential backoff from 2 s, and job id
 * "payment-<orderId>": asking twice for one order's payment adds nothing
 * the second time (returns 1 with the first job's id) while that job is
 * kept. `amount` > 0 and finite; `currency` three capital letters.
 * Returns bullc_queue_add's result (id in *out_id, free with bullc_free),
 * or BULLC_EINVAL. */
int payment_add_process_payment_job(bullc_queue *q, const char *order_id, double amount, const char *currency,
                                    char **out_id, bullc_error *err);

#endif
