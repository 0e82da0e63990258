/* SPDX-License-Identifier: MIT */
/* bullc_job_to_json (what an --exec processor reads): the job's data goes
 * through as stored, however deep, with its numbers as written. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static redisReply *str_reply(const char *s) {
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_STRING;
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}

/* The job JSON of a job whose hash has `data`. */
static char *job_json(const char *data) {
    redisReply *hash = calloc(1, sizeof *hash);
    hash->type = REDIS_REPLY_ARRAY;
    hash->elements = 4;
    hash->element = calloc(4, sizeof *hash->element);
    hash->element[0] = str_reply("name");
    hash->element[1] = str_reply("j");
    hash->element[2] = str_reply("data");
    hash->element[3] = str_reply(data);
    redisReply *id = str_reply("7");
    bullc_worker w;
    memset(&w, 0, sizeof w);
    bullc__keys_init(&w.keys, "bull", "q");
    w.queue = sdsnew("q");
    bullc_job *job = bullc__job_from_reply(&w, hash, id, sdsnew("tok"));
    cr_assert(job);
    cr_assert_null(job->bad, "%s", job->bad);
    char *s = bullc_job_to_json(job);
    bullc__job_free(job);
    bullc__keys_free(&w.keys);
    sdsfree(w.queue);
    freeReplyObject(hash);
    freeReplyObject(id);
    return s;
}

static void data_passes_through(const char *data) {
    char *s = job_json(data);
    cr_assert(s);
    const char *d = strstr(s, "\"data\":");
    cr_assert(d && !strncmp(d + 7, data, strlen(data)), "data as stored: %.200s", s);
    cr_assert(bullc__json_strict(s, strlen(s)), "the job JSON is JSON");
    bullc_free(s);
}

Test(job_json, deep_data_passes_through) {
    enum { DEPTH = 100000 };
    char *data = malloc(DEPTH * 6 + 2), *p = data;
    for (int i = 0; i < DEPTH; i++, p += 5) memcpy(p, "{\"a\":", 5);
    *p++ = '1';
    memset(p, '}', DEPTH);
    p[DEPTH] = '\0';
    data_passes_through(data);
    free(data);
}

Test(job_json, numbers_as_written) { data_passes_through("{\"price\":1.950,\"big\":12345678901234567890}"); }
