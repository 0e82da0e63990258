/* SPDX-License-Identifier: MIT */
/* A domain service that uses the payment queue: step 4 of
 * docs/adding-a-queue.md (built as bin/bullc-example-checkout; the tests
 * run it).
 *
 *   bullc-example-checkout ORDER_ID AMOUNT CURRENCY
 *
 * The checkout confirms an order and hands its payment to the queue; the
 * payment itself happens in bullc-worker, later, with retries. Redis from
 * REDIS_URL (or REDIS_HOST...), key prefix from BULL_PREFIX (default bull). */
#include <bullc/bullc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payment_queue.h"

/* The service holds one queue handle for its lifetime (one connection,
 * opened on first use). */
typedef struct checkout {
    bullc_queue *payments;
} checkout;

static int checkout_init(checkout *c, bullc_error *err) {
    bullc_queue_opts *o = NULL;
    int rc = bullc_queue_opts_new(&o);
    if (!rc) rc = bullc_queue_opts_set_prefix(o, getenv("BULL_PREFIX")); /* NULL: "bull" */
    if (!rc) rc = bullc_queue_new(&c->payments, PAYMENT_QUEUE, o, err);
    bullc_queue_opts_free(o);
    return rc;
}

static void checkout_free(checkout *c) { bullc_queue_free(c->payments); }

/* Confirms an order: its payment is queued, once, whatever the retries of
 * this call. The job id to follow it in *payment_job (bullc_free). Returns
 * 0 when the payment job was added, 1 when this order's payment was queued
 * before (nothing added), or a negative BULLC_E* code. */
static int checkout_confirm_order(checkout *c, const char *order_id, double amount, const char *currency,
                                  char **payment_job, bullc_error *err) {
    /* ... the order is validated and stored here ... */
    int rc = payment_add_process_payment_job(c->payments, order_id, amount, currency, payment_job, err);
    return rc;
}

int main(int argc, char **argv) {
    /* asked for, the usage is the output (exit 0); a wrong call is an error (exit 2) */
    bool help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    if (help || argc != 4) {
        fprintf(help ? stdout : stderr, "usage: %s ORDER_ID AMOUNT CURRENCY\n", argv[0]);
        return help ? 0 : 2;
    }
    checkout c;
    bullc_error err = {0};
    if (checkout_init(&c, &err)) {
        fprintf(stderr, "checkout: %s\n", err.message);
        return 1;
    }
    char *job = NULL;
    int rc = checkout_confirm_order(&c, argv[1], strtod(argv[2], NULL), argv[3], &job, &err);
    if (rc < 0)
        fprintf(stderr, "checkout: %s (%s)\n", err.message, bullc_err_name(rc));
    else
        printf("%s\n", job);
    /* as `bullc add`: the id either way, and a word when nothing was added */
    if (rc == 1) fprintf(stderr, "checkout: order %s was queued before as %s; nothing added\n", argv[1], job);
    bullc_free(job);
    checkout_free(&c);
    return rc == BULLC_EINVAL ? 2 : rc < 0 ? 3 : 0;
}
