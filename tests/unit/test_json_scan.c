/* SPDX-License-Identifier: MIT */
/* The worker checks each job's data with a scan that builds nothing
 * (src/json_scan.c): it accepts what node's JSON.parse accepts, at any depth,
 * and what cJSON_Parse (laxer in places) accepted before; on edge cases, deep
 * nesting and texts mutated at random, checked against node itself. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bullc-private.h"

/* JSON.parse's verdict on each text (bytes read as latin1: no byte >= 0x80
 * is structural, so the verdict is the one on the UTF-8 text). */
static bool *node_accepts(char *const *texts, size_t n) {
    char path[] = "/tmp/bullc-jsonscan-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    FILE *f = fdopen(fd, "w");
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)texts[i]; *p; p++) fprintf(f, "%02x", *p);
        fputc('\n', f);
    }
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "node -e 'const out = []; for (const l of require(\"fs\").readFileSync(\"%s\", \"utf8\").split(\"\\n\")"
             ".slice(0, -1)) { let ok = 1; try { JSON.parse(Buffer.from(l, \"hex\").toString(\"latin1\")); } "
             "catch (e) { ok = 0; } out.push(ok); } process.stdout.write(out.join(\"\"))'",
             path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    bool *v = calloc(n, sizeof *v);
    size_t i = 0;
    for (int c; (c = fgetc(p)) != EOF && i < n; i++) v[i] = c == '1';
    pclose(p);
    unlink(path);
    cr_assert_eq(i, n, "node judged every text");
    return v;
}

static bool cjson_accepts_before(const char *s) {
    cJSON *j = cJSON_Parse(s);
    cJSON_Delete(j);
    return j != NULL;
}

/* The scan's verdict is JSON.parse's, or cJSON's where that is laxer. */
static void same_verdicts(char *const *texts, size_t n) {
    bool *node = node_accepts(texts, n);
    for (size_t i = 0; i < n; i++) {
        const char *s = texts[i];
        bool want = node[i] || cjson_accepts_before(s), got = bullc__json_parses(s, strlen(s));
        cr_assert_eq(got, want, "node %d, cJSON %d, the scan %d: [%.200s]", node[i], cjson_accepts_before(s), got, s);
    }
    free(node);
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
    same_verdicts((char *const *)cases, sizeof cases / sizeof cases[0]);
}

static char *nested(size_t depth, const char *open, const char *inner, const char *close, size_t closes) {
    size_t ol = strlen(open), il = strlen(inner), cl = strlen(close);
    char *b = malloc(depth * ol + il + closes * cl + 1), *p = b;
    for (size_t i = 0; i < depth; i++, p += ol) memcpy(p, open, ol);
    memcpy(p, inner, il), p += il;
    for (size_t i = 0; i < closes; i++, p += cl) memcpy(p, close, cl);
    *p = '\0';
    return b;
}

Test(json_scan, long_numbers_and_deep_nesting) {
    enum { MAX = 200 };
    char *t[MAX];
    size_t n = 0;
    for (int len = 60; len < 70; len++) {
        t[n] = calloc(1, (size_t)len + 8);
        t[n][0] = '[';
        memset(t[n] + 1, '1', (size_t)len);
        t[n][len + 1] = ']';
        n++;
        t[n] = calloc(1, (size_t)len + 8);
        memcpy(t[n], "[0.", 3);
        memset(t[n] + 3, '1', (size_t)len);
        t[n][len + 3] = ']';
        n++;
    }
    /* across cJSON's limit of 1,000 and the scan's inline 512 levels */
    size_t depths[] = {190, 511, 512, 513, 999, 1000, 1001, 1100, 5000, 100000};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        size_t d = depths[i];
        t[n++] = nested(d, "[", "", "]", d);
        t[n++] = nested(d, "{\"a\":", "1", "}", d);
        t[n++] = nested(d, "[{\"k\" : [", "\"x\"", "]}]", d);
        t[n++] = nested(d, "[", "", "]", d - 1);    /* one left open */
        t[n++] = nested(d, "[", "", "]", d + 1);    /* one closed too many */
        t[n++] = nested(d, "{\"a\":", "1", "]", d); /* closed by the wrong kind */
        t[n++] = nested(d, "[1,", "", "]", d);      /* a trailing comma deep down */
    }
    same_verdicts(t, n);
    for (size_t i = 0; i < n; i++) free(t[i]);
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
    enum { N = 300000 };
    char **t = malloc(N * sizeof *t);
    char buf[256];
    for (int it = 0; it < N; it++) {
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
        t[it] = strdup(buf);
    }
    same_verdicts(t, N);
    for (int i = 0; i < N; i++) free(t[i]);
    free(t);
}
