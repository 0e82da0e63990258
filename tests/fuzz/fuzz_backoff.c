/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the retry delay of a failed job whose stored backoff is
 * any JSON (a number or {type, delay, jitter}, values of any size), then
 * printed as moveToDelayed's ARGV. Under UBSan an out-of-range conversion
 * (the 1e19 hot-retry bug) aborts; the printed delay must read back as the
 * number computed. Input: attempts byte, then the backoff JSON. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static int64_t strategy(int64_t attempts_made, const char *type, const char *error, const bullc_job *job, void *data) {
    (void)type, (void)error, (void)job, (void)data;
    return attempts_made * 1000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uv_loop_t *loop;
    if (!loop) loop = uv_default_loop();
    if (size < 2) return 0;
    int64_t attempts = data[0] % 64 + 1;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    cJSON *backoff = cJSON_Parse(text);
    free(text);
    if (!backoff) return 0;
    bullc_worker w;
    memset(&w, 0, sizeof w);
    w.loop = loop;
    if (data[0] & 0x80) w.o.backoff_strategy = strategy;
    bullc_job job;
    memset(&job, 0, sizeof job);
    job.id = sdsnew("1");
    job.opts = cJSON_CreateObject();
    cJSON_AddItemToObject(job.opts, "backoff", backoff);
    double d = bullc__backoff_delay(&w, &job, attempts, "boom");
    char buf[BULLC__JS_NUMBER_MAX];
    size_t n = bullc__js_number(buf, d);
    if (n != strlen(buf)) abort();
    if (isnan(d)) {
        if (strcmp(buf, "NaN")) abort();
    } else if (!isinf(d) && strtod(buf, NULL) != d) {
        abort(); /* Lua's tonumber must read back the delay Node would send */
    }
    cJSON_Delete(job.opts);
    sdsfree(job.id);
    free(w.last_error); /* the worker keeps its first error's text on the heap */
    return 0;
}
