/* SPDX-License-Identifier: MIT */
/* Small helpers: UTF-8 validation (job data must be what JSON.stringify can
 * produce), saturating number conversion, JavaScript's number printing (how
 * ioredis sends a computed delay), base64 (client names). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static bool ok(const char *s) { return bullc__utf8_valid(s, strlen(s)); }

Test(util, utf8) {
    cr_assert(ok(""));
    cr_assert(ok("plain ascii {\"a\":1}"));
    cr_assert(ok("na\xc3\xafve \xe2\x82\xac \xf0\x9f\x8e\xb2"), "2, 3 and 4 byte forms");
    cr_assert_not(ok("\xc3"), "truncated");
    cr_assert_not(ok("\xe2\x82"), "truncated");
    cr_assert_not(ok("\x80"), "a continuation byte alone");
    cr_assert_not(ok("\xc0\xaf"), "overlong");
    cr_assert_not(ok("\xe0\x80\xaf"), "overlong");
    cr_assert_not(ok("\xed\xa0\x80"), "a surrogate");
    cr_assert_not(ok("\xf4\x90\x80\x80"), "past U+10FFFF");
    cr_assert_not(ok("\xff"), "not a lead byte");
}

Test(util, double_to_i64_saturates) {
    cr_assert_eq(bullc__double_to_i64(1.9), 1);
    cr_assert_eq(bullc__double_to_i64(-1.9), -1);
    cr_assert_eq(bullc__double_to_i64(1e30), INT64_MAX);
    cr_assert_eq(bullc__double_to_i64(-1e30), INT64_MIN);
    cr_assert_eq(bullc__double_to_i64(NAN), 0);
}

static const char *js(double v) {
    static char buf[BULLC__JS_NUMBER_MAX];
    size_t n = bullc__js_number(buf, v);
    cr_assert_eq(n, strlen(buf));
    return buf;
}

Test(util, js_number_known_values) {
    cr_assert_str_eq(js(1e19), "10000000000000000000", "a delay past int64: Node sends every digit");
    cr_assert_str_eq(js(1e21), "1e+21");
    cr_assert_str_eq(js(1e308), "1e+308");
    cr_assert_str_eq(js(INFINITY), "Infinity");
    cr_assert_str_eq(js(-INFINITY), "-Infinity");
    cr_assert_str_eq(js(NAN), "NaN");
    cr_assert_str_eq(js(-0.0), "0");
    cr_assert_str_eq(js(1000), "1000");
    cr_assert_str_eq(js(-2500), "-2500");
    cr_assert_str_eq(js(1.5), "1.5");
    cr_assert_str_eq(js(0.1), "0.1");
    cr_assert_str_eq(js(1e-6), "0.000001");
    cr_assert_str_eq(js(1e-7), "1e-7");
    cr_assert_str_eq(js(123456789.125), "123456789.125");
    cr_assert_str_eq(js(5e-324), "5e-324");
    cr_assert_str_eq(js(1.7976931348623157e308), "1.7976931348623157e+308");
    cr_assert_str_eq(js(-1.25e-10), "-1.25e-10");
}

/* Random doubles of every magnitude, printed by bullc and by node. */
Test(util, js_number_matches_node) {
    char path[] = "/tmp/bullc-jsnum-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    enum { N = 3000 };
    static double vals[N];
    srand(12);
    for (int i = 0; i < N; i++) {
        double m = (double)rand() / RAND_MAX * (rand() % 2 ? 1 : -1);
        int e = rand() % 620 - 320; /* finite: %.17g of an infinity is not a JS literal */
        vals[i] = i % 3 == 0 ? (double)(rand() % 100000) * pow(10, rand() % 25) : m * pow(10, e);
        fprintf(f, "%.17g\n", vals[i]);
    }
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "node -e 'for (const l of require(\"fs\").readFileSync(\"%s\",\"utf8\").split(\"\\n\")) "
             "if (l) console.log(String(Number(l)))'",
             path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    char line[64];
    int i = 0;
    while (fgets(line, sizeof line, p) && i < N) {
        line[strcspn(line, "\n")] = '\0';
        cr_assert_str_eq(js(vals[i]), line, "%.17g", vals[i]);
        i++;
    }
    pclose(p);
    unlink(path);
    cr_assert_eq(i, N, "node printed every number");
}

Test(util, base64) {
    sds b = bullc__base64("test-queue", 10);
    cr_assert_str_eq(b, "dGVzdC1xdWV1ZQ==");
    sdsfree(b);
}

/* The one-pass RESP formatter must produce exactly what hiredis's own
 * formatter does, for empty, binary and multi-digit-length arguments. */
Test(resp, matches_hiredis_formatting) {
    static char big[12345];
    memset(big, 'x', sizeof big);
    const char *argv[] = {"EVALSHA", "", "a\r\nb\0c", big, "0123456789"};
    size_t lens[] = {7, 0, 6, sizeof big, 10};
    for (int argc = 1; argc <= 5; argc++) {
        sds want = NULL;
        long long wl = redisFormatSdsCommandArgv(&want, argc, argv, lens);
        cr_assert_gt(wl, 0);
        cr_assert_eq(bullc__resp_size(argc, lens), (size_t)wl);
        sds got = bullc__resp_cat(sdsnew("prefix"), argc, argv, lens);
        cr_assert_not_null(got);
        cr_assert_eq(sdslen(got), 6 + (size_t)wl);
        cr_assert(memcmp(got, "prefix", 6) == 0);
        cr_assert(memcmp(got + 6, want, (size_t)wl) == 0, "argc %d differs", argc);
        sdsfree(got);
        sdsfree(want);
    }
    /* eleven arguments: a two-digit array length */
    const char *many[11];
    size_t ml[11];
    for (int i = 0; i < 11; i++) many[i] = "k", ml[i] = 1;
    sds want = NULL;
    long long wl = redisFormatSdsCommandArgv(&want, 11, many, ml);
    sds got = bullc__resp_cat(sdsempty(), 11, many, ml);
    cr_assert_eq(sdslen(got), (size_t)wl);
    cr_assert(memcmp(got, want, (size_t)wl) == 0);
    sdsfree(got);
    sdsfree(want);
}

/* Every connection formats a script call with resp.c: EVALSHA and the EVAL
 * resend must be exactly hiredis's formatting of the same argv, and EVAL's
 * head followed by the tail of the EVALSHA request (what the async
 * connection resends on NOSCRIPT) must be the whole EVAL request. Scripts
 * with one- and two-digit key counts, one- and two-digit array lengths. */
Test(resp, script_calls_match_hiredis_formatting) {
    const char *vals[20];
    size_t vl[20];
    static char big[1000];
    memset(big, 'y', sizeof big);
    for (int i = 0; i < 20; i++)
        vals[i] = i == 5 ? big : "bull:q:k\r\n\0", vl[i] = i == 5 ? sizeof big : (size_t)(i % 12);
    int tried_two_digit_keys = 0;
    /* both embedded tables: 6.x's, then 5.x's */
    for (size_t k = 0; k < bullc__scripts_count + bullc__scripts5_count; k++) {
        const bullc__script *s =
            k < bullc__scripts_count ? &bullc__scripts[k] : &bullc__scripts5[k - bullc__scripts_count];
        if (s->numkeys > 16) continue;
        tried_two_digit_keys += s->numkeys >= 10;
        for (int argc = s->numkeys; argc <= 16; argc++) {
            for (int eval = 0; eval < 2; eval++) {
                const char *av[20];
                size_t al[20];
                char nk[8];
                snprintf(nk, sizeof nk, "%d", s->numkeys);
                av[0] = eval ? "EVAL" : "EVALSHA", al[0] = strlen(av[0]);
                av[1] = eval ? s->text : s->sha1, al[1] = eval ? s->len : 40;
                av[2] = nk, al[2] = strlen(nk);
                for (int i = 0; i < argc; i++) av[i + 3] = vals[i], al[i + 3] = vl[i];
                sds want = NULL;
                long long wl = redisFormatSdsCommandArgv(&want, argc + 3, av, al);
                size_t tail = 0;
                cr_assert_eq(bullc__resp_script_size(s, argc, vl, eval, &tail), (size_t)wl, "%s argc %d", s->id, argc);
                sds got = bullc__resp_script_cat(sdsnew("p"), s, argc, vals, vl, eval);
                cr_assert_eq(sdslen(got), 1 + (size_t)wl);
                cr_assert(memcmp(got + 1, want, (size_t)wl) == 0, "%s argc %d eval %d differs", s->id, argc, eval);
                if (!eval) {
                    /* the NOSCRIPT resend: EVAL's head, then this tail */
                    size_t hl = bullc__resp_script_head_size(s, argc, true);
                    char *resend = malloc(hl + tail);
                    cr_assert_eq(bullc__resp_script_head_write(resend, s, argc, true), resend + hl);
                    memcpy(resend + hl, got + 1 + (size_t)wl - tail, tail);
                    sds ev = bullc__resp_script_cat(sdsempty(), s, argc, vals, vl, true);
                    cr_assert_eq(sdslen(ev), hl + tail);
                    cr_assert(memcmp(ev, resend, hl + tail) == 0, "%s argc %d: resend differs", s->id, argc);
                    sdsfree(ev);
                    free(resend);
                }
                sdsfree(got);
                sdsfree(want);
            }
        }
    }
    cr_assert_gt(tried_two_digit_keys, 0, "no script with 10 or more keys was tried");
}

Test(resp, noscript_is_recognised) {
    redisReply e = {.type = REDIS_REPLY_ERROR, .str = "NOSCRIPT No matching script.", .len = 28};
    redisReply other = {.type = REDIS_REPLY_ERROR, .str = "ERR wrong", .len = 9};
    redisReply status = {.type = REDIS_REPLY_STATUS, .str = "NOSCRIPT", .len = 8};
    cr_assert(bullc__reply_is_noscript(&e));
    cr_assert_not(bullc__reply_is_noscript(&other));
    cr_assert_not(bullc__reply_is_noscript(&status));
    cr_assert_not(bullc__reply_is_noscript(NULL));
}

/* A queue's keys are sds strings whatever their length: in one block when
 * they are short, one by one past 255 bytes. */
static void check_keys(const char *prefix, const char *queue) {
    bullc__keys ks;
    cr_assert_eq(bullc__keys_init(&ks, prefix, queue), 0);
    for (int i = 0; i < BULLC__K_N; i++) {
        char want[1024];
        snprintf(want, sizeof want, "%s:%s:%s", prefix, queue, bullc__keys_suffix(i));
        cr_assert_str_eq(ks.k[i], want);
        cr_assert_eq(sdslen(ks.k[i]), strlen(want), "%s", want);
        sds copy = sdscat(sdsdup(ks.k[i]), "x");
        cr_assert_eq(sdslen(copy), strlen(want) + 1);
        sdsfree(copy);
    }
    bullc__keys_free(&ks);
}

Test(util, queue_keys_short_and_long) {
    check_keys("bull", "q");
    check_keys("{bull}", "tenant-42");
    char longq[301];
    memset(longq, 'q', 300);
    longq[300] = '\0';
    check_keys("bull", longq);
    char edge[256]; /* base 255 bytes: the base fits type 8, its keys do not */
    memset(edge, 'e', 249);
    edge[249] = '\0';
    check_keys("bull", edge);
}
