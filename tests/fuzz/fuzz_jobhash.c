/* SPDX-License-Identifier: MIT */
/* libFuzzer target: a job hash as a buggy producer may have written it (the
 * HGETALL reply moveToActive returns). Input: field\0value\0field\0value...
 * Both readers (the worker's and Node's Job.fromJSON rules) must cope. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static redisReply *str_reply(const char *s, size_t len) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->str = malloc(len + 1);
    memcpy(r->str, s, len);
    r->str[len] = 0;
    r->len = len;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    redisReply *hash = calloc(1, sizeof *hash);
    hash->type = REDIS_REPLY_ARRAY;
    hash->element = calloc(64, sizeof *hash->element);
    const char *p = (const char *)data, *end = p + size;
    while (p < end && hash->elements < 64) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        size_t len = z ? (size_t)(z - p) : (size_t)(end - p);
        hash->element[hash->elements++] = str_reply(p, len);
        p += len + 1;
    }
    redisReply *id = str_reply("42", 2);
    bullc_worker w;
    memset(&w, 0, sizeof w);
    bullc__keys_init(&w.keys, "bull", "q");
    w.queue = sdsnew("q");
    bullc_job *job = bullc__job_from_reply(&w, hash, id, sdsnew("token:1")); /* takes the token */
    if (job) {
        char *j = bullc_job_to_json(job);
        free(j);
        bullc__job_free(job);
    }
    cJSON *node_view = bullc__job_json("42", 2, hash);
    cJSON_Delete(node_view);
    bullc__keys_free(&w.keys);
    sdsfree(w.queue);
    freeReplyObject(hash);
    freeReplyObject(id);
    return 0;
}
