/* SPDX-License-Identifier: MIT */
/* The `payment` queue's processor, as a bullc-worker plugin: step 1 of
 * docs/adding-a-queue.md (built as bin/libbullc_payment_plugin.so, target
 * bullc-payment-plugin; the tests run it).
 *
 *   bullc-worker --queue payment --plugin ./libbullc_payment_plugin.so \
 *                --plugin-config '{"maxAmount":10000,"currencies":["EUR","USD"]}'
 *
 * It processes `process-payment` jobs {orderId, amount, currency}:
 *  - a job it can never process (another name, a missing or ill-typed
 *    field, an amount over maxAmount, a currency not accepted) fails
 *    without retries (out->fail_flags = BULLC_FAIL_UNRECOVERABLE);
 *  - a failure of the payment provider fails it as usual, so the job's
 *    attempts and backoff retry it ("outageAttempts": N in the config
 *    simulates an outage: the first N attempts of every job fail);
 *  - success returns the receipt {orderId, amount, currency, status,
 *    paymentId}; the paymentId is made from the job id, the same on every
 *    attempt, so the provider can refuse a second charge (idempotency).
 * It runs on libuv's thread pool, up to --concurrency jobs at once: its
 * state is read-only after bullc_plugin_init. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bullc/plugin.h>

typedef struct payment_cfg {
    double max_amount;
    char currencies[16][4]; /* accepted ISO 4217 codes; none listed: any */
    int ncurrencies;
    int outage_attempts;
} payment_cfg;

int bullc_plugin_init(const char *queue, const char *config_json, void **state) {
    (void)queue;
    payment_cfg *c = calloc(1, sizeof *c);
    if (!c) return -1;
    c->max_amount = 10000;
    cJSON *j = config_json ? cJSON_Parse(config_json) : NULL;
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(j, "maxAmount");
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(j, "currencies");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(j, "outageAttempts");
    if (cJSON_IsNumber(max)) c->max_amount = max->valuedouble;
    if (cJSON_IsNumber(out)) c->outage_attempts = out->valueint;
    const cJSON *code;
    cJSON_ArrayForEach(code, cur) {
        if (cJSON_IsString(code) && strlen(code->valuestring) == 3 && c->ncurrencies < 16)
            memcpy(c->currencies[c->ncurrencies++], code->valuestring, 4);
    }
    cJSON_Delete(j);
    *state = c;
    return 0;
}

void bullc_plugin_fini(void *state) { free(state); }

/* A failure that a retry cannot fix. */
static int refuse(bullc_job_result *out, cJSON *data, const char *why) {
    out->error = strdup(why);
    out->fail_flags = BULLC_FAIL_UNRECOVERABLE;
    cJSON_Delete(data);
    return 1;
}

static int accepted_currency(const payment_cfg *c, const char *code) {
    if (strlen(code) != 3 || code[strspn(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ")]) return 0;
    for (int i = 0; i < c->ncurrencies; i++)
        if (!strcmp(c->currencies[i], code)) return 1;
    return c->ncurrencies == 0;
}

int bullc_plugin_process(bullc_job *job, bullc_job_result *out, void *state) {
    const payment_cfg *c = state;
    if (strcmp(bullc_job_name(job), "process-payment")) {
        char msg[300];
        snprintf(msg, sizeof msg, "payment: unknown job name '%s' (this queue takes process-payment jobs)",
                 bullc_job_name(job));
        return refuse(out, NULL, msg);
    }
    cJSON *data = cJSON_Parse(bullc_job_data(job));
    const cJSON *order = cJSON_GetObjectItemCaseSensitive(data, "orderId");
    const cJSON *amount = cJSON_GetObjectItemCaseSensitive(data, "amount");
    const cJSON *currency = cJSON_GetObjectItemCaseSensitive(data, "currency");
    if (!cJSON_IsString(order) || !*order->valuestring)
        return refuse(out, data, "process-payment: \"orderId\" must be a non-empty string");
    if (!cJSON_IsNumber(amount) || !isfinite(amount->valuedouble) || amount->valuedouble <= 0)
        return refuse(out, data, "process-payment: \"amount\" must be a number > 0");
    if (amount->valuedouble > c->max_amount)
        return refuse(out, data, "process-payment: \"amount\" is over the limit (maxAmount)");
    if (!cJSON_IsString(currency) || !accepted_currency(c, currency->valuestring))
        return refuse(out, data, "process-payment: \"currency\" must be an accepted ISO 4217 code");

    char line[200];
    snprintf(line, sizeof line, "charging %.2f %s for order %s", amount->valuedouble, currency->valuestring,
             order->valuestring);
    bullc_job_log(job, line, NULL, NULL); /* from the thread pool: no callback */

    /* Here a real plugin calls its payment provider. A timeout or a 5xx is
     * an ordinary failure: return it, and the job's backoff retries. */
    if (bullc_job_attempts_made(job) < c->outage_attempts) {
        out->error = strdup("payment provider unavailable (simulated outage)");
        cJSON_Delete(data);
        return 1;
    }

    char payment_id[160];
    snprintf(payment_id, sizeof payment_id, "pay_%s", bullc_job_id(job));
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "orderId", order->valuestring);
    cJSON_AddNumberToObject(r, "amount", amount->valuedouble);
    cJSON_AddStringToObject(r, "currency", currency->valuestring);
    cJSON_AddStringToObject(r, "status", "captured");
    cJSON_AddStringToObject(r, "paymentId", payment_id);
    out->result_json = cJSON_PrintUnformatted(r); /* malloc'd: bullc-worker frees it */
    cJSON_Delete(r);
    cJSON_Delete(data);
    return 0;
}
