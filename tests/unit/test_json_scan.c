/* SPDX-License-Identifier: MIT */
/* The worker checks each job's data with a scan that builds nothing
 * (src/json_scan.c) and asks cJSON_Parse only when the scan is not sure: its
 * verdict must always be cJSON's, on valid texts, on edge cases and on
 * texts mutated at random. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static bool cjson_accepts(const char *s) {
    cJSON *j = cJSON_Parse(s);
    cJSON_Delete(j);
    return j != NULL;
}

static void same_verdict(const char *s) {
    bool want = cjson_accepts(s), got = bullc__json_parses(s, strlen(s));
    cr_assert_eq(got, want, "cJSON says %d, the scan %d: [%s]", want, got, s);
}

Test(json_scan, edge_cases) {
    const char *cases[] = {"{}",
                           "[]",
                           "{\"a\":1}",
                           "{\"a\":1,}",
                           "[1,]",
                           "{\"a\" : [1, 2.5e-3, -0, true, false, null, \"x\\u00e9\\n\"]}",
                           "\"\\ud800\"",
                           "\"\\ud800\\udc00\"",
                           "\"\\udc00\"",
                           "\"\\uZZZZ\"",
                           "01",
                           "[01]",
                           "1.",
                           "[1.]",
                           ".5",
                           "+1",
                           "{}x",
                           "[] ",
                           " {} ",
                           "\xef\xbb\xbf{}",
                           "",
                           " ",
                           "nul",
                           "truex",
                           "[truex]",
                           "{broken",
                           "{\"a\":\"\x01\"}",
                           "\"\t\"",
                           "[1e5]",
                           "[1E+400]",
                           "[-]",
                           "{\"a\"}",
                           "{1:2}",
                           "[\"\\x\"]",
                           "\"\\/\"",
                           "[\"a\" \"b\"]",
                           "[1 2]",
                           "[1,\n2]",
                           "\v{}",
                           "[\v1]",
                           "-0.0e0",
                           "[0x10]",
                           "[1e]",
                           "[1e+]",
                           "[Infinity]",
                           "[NaN]",
                           "\"\\ud800\\u0041\"",
                           "\"\\ud800x\""};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) same_verdict(cases[i]);
}

Test(json_scan, long_numbers_and_deep_nesting) {
    static char buf[2100];
    for (int len = 60; len < 70; len++) {
        memset(buf, 0, sizeof buf);
        buf[0] = '[';
        memset(buf + 1, '1', (size_t)len);
        buf[len + 1] = ']';
        same_verdict(buf);
        memset(buf, 0, sizeof buf);
        memcpy(buf, "[0.", 3);
        memset(buf + 3, '1', (size_t)len);
        buf[len + 3] = ']';
        same_verdict(buf);
    }
    for (int d = 190; d < 1040; d += 10) {
        memset(buf, 0, sizeof buf);
        memset(buf, '[', (size_t)d);
        memset(buf + d, ']', (size_t)d);
        same_verdict(buf);
    }
}

/* A fixed-seed generator, so a failure reproduces. */
static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static unsigned next_rand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

Test(json_scan, random_mutations_of_a_job) {
    const char *base = "{\"i\":12,\"userId\":\"u12\",\"kind\":\"bench\",\"arr\":[1,-2.5e3,true,false,null,"
                       "{\"x\":\"\\u00e9\\ud83d\\ude00\\\"\"}],\"payload\":\"abc\"}";
    static const char alphabet[] = "{}[]\",:0123456789-+.eEtrufalsn \\u\x01\x7f\xc3\xa9"
                                   "dDx";
    char buf[256];
    for (int it = 0; it < 300000; it++) {
        strcpy(buf, base);
        size_t len = strlen(buf);
        int muts = 1 + (int)(next_rand() % 3);
        for (int m = 0; m < muts && len > 0; m++) {
            unsigned op = next_rand() % 3;
            size_t pos = next_rand() % len;
            char c = alphabet[next_rand() % (sizeof alphabet - 1)];
            if (op == 0) {
                buf[pos] = c;
            } else if (op == 1) {
                memmove(buf + pos, buf + pos + 1, len - pos);
                len--;
            } else {
                memmove(buf + pos + 1, buf + pos, len - pos + 1);
                buf[pos] = c;
                len++;
            }
        }
        same_verdict(buf);
    }
}
