/* SPDX-License-Identifier: MIT */
/* bullc-worker's JSON-as-text helpers (tools/bullc-worker/json.c): member
 * spans must be the producer's bytes and must pick the member JSON.parse
 * would pick; the string builder must quote as JSON.stringify. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bw.h"

static char *member(const char *json, const char *key) {
    bw_jspan v;
    if (!bw_json_member(json, strlen(json), key, &v)) return NULL;
    return strndup(v.p, v.n);
}

#define ASSERT_MEMBER(json, key, want)                        \
    do {                                                      \
        char *got_ = member((json), (key));                   \
        cr_assert(got_, "no member %s in %s", (key), (json)); \
        cr_assert_str_eq(got_, (want));                       \
        free(got_);                                           \
    } while (0)

Test(bw_json, member_spans_keep_the_bytes) {
    const char *j = "{\"provider\":\"P\",\"data\":{\"odds\":1.950,\"big\":12345678901234567890,\"s\":\"}]\\\"{\"},"
                    "\"timestamp\":1717171717171,\"messageType\":\"round\"}";
    ASSERT_MEMBER(j, "provider", "\"P\"");
    ASSERT_MEMBER(j, "data", "{\"odds\":1.950,\"big\":12345678901234567890,\"s\":\"}]\\\"{\"}");
    ASSERT_MEMBER(j, "timestamp", "1717171717171");
    ASSERT_MEMBER(j, "messageType", "\"round\"");
    cr_assert_null(member(j, "odds"), "only top-level members");
    cr_assert_null(member(j, "missing"));
}

Test(bw_json, whitespace_nesting_and_scalars) {
    const char *j =
        " { \"a\" : [ 1 , { \"b\" : [ [ ] , { } ] } , \"x\" ] ,\n\t\"n\" : null , \"t\":true,\"f\" : false , "
        "\"neg\": -1.5e-3 , \"s\" : \"\" } ";
    ASSERT_MEMBER(j, "a", "[ 1 , { \"b\" : [ [ ] , { } ] } , \"x\" ]");
    ASSERT_MEMBER(j, "n", "null");
    ASSERT_MEMBER(j, "t", "true");
    ASSERT_MEMBER(j, "f", "false");
    ASSERT_MEMBER(j, "neg", "-1.5e-3");
    ASSERT_MEMBER(j, "s", "\"\"");
}

Test(bw_json, escaped_and_repeated_keys_read_as_json_parse_reads_them) {
    /* "\u0064ata" is "data"; JSON.parse keeps the last of repeated keys */
    ASSERT_MEMBER("{\"\\u0064ata\":1}", "data", "1");
    ASSERT_MEMBER("{\"data\":1,\"x\":2,\"data\":[3]}", "data", "[3]");
    cr_assert_null(member("{\"da\\\"ta\":1}", "data"));
    cr_assert_null(member("[1,2]", "data"), "not an object");
    cr_assert_null(member("\"data\"", "data"));
}

Test(bw_json, kinds_strings_and_validity) {
    bw_jspan v = {"\"a\\nb\\u00e9\"", 12};
    cr_assert_eq(bw_json_kind(&v), BW_JSON_STRING);
    char *s = bw_json_string_value(&v);
    cr_assert_str_eq(s, "a\nb\xc3\xa9");
    free(s);
    const char *nums[] = {"0", "-1", "2.5"};
    for (size_t i = 0; i < 3; i++) {
        bw_jspan n = {nums[i], strlen(nums[i])};
        cr_assert_eq(bw_json_kind(&n), BW_JSON_NUMBER, "%s", nums[i]);
        cr_assert_null(bw_json_string_value(&n));
    }
    cr_assert(bw_json_valid("{\"a\":1} \n", 9));
    cr_assert_not(bw_json_valid("{\"a\":1} x", 9), "trailing text");
    cr_assert_not(bw_json_valid("{\"a\":", 5));
}

Test(bw_json, builder_quotes_as_json_stringify) {
    bw_sb b = {0};
    bw_sb_puts(&b, "{\"k\":");
    bw_sb_quote(&b, "q\"\\\n\r\t\b\f\x01 é/");
    bw_sb_printf(&b, ",\"n\":%d}", 42);
    char *t = bw_sb_take(&b);
    cr_assert_str_eq(t, "{\"k\":\"q\\\"\\\\\\n\\r\\t\\b\\f\\u0001 é/\",\"n\":42}");
    cJSON *p = cJSON_Parse(t);
    cr_assert_str_eq(cJSON_GetObjectItem(p, "k")->valuestring, "q\"\\\n\r\t\b\f\x01 é/");
    cJSON_Delete(p);
    free(t);
    cr_assert_null(b.p);
}

/* The exec processor decides with bw_json_valid whether stdout is stored as
 * JSON or as a string: it must say what JSON.parse says, at any depth (cJSON
 * refuses more than 1,000 levels, so a deep result used to become a string). */
Test(bw_json, valid_agrees_with_json_parse_at_any_depth) {
    const char *yes[] = {
        "0",    "-0.5e+3", "\"a\\u0000b\\/\"", "[]", "{}", " [1, {\"a\": [null]}] ", "true", "{\"a\":1,\"a\":2}", "1E5",
        "[[]]", "\"\"",    "{\"\":{\"\":[]}}"};
    const char *no[] = {"",        "01",     "1.",      ".5",         "[1,]", "{\"a\":1,}", "{a:1}", "[1 2]",
                        "\"\\x\"", "\"\t\"", "\"\\u12", "tru",        "nul",  "[",          "]",     "{\"a\"}",
                        "1 2",     "+1",     "-",       "{\"a\":1]}", "[}",   "\"abc",      "1e",    "[1]]"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        cr_assert(bw_json_valid(yes[i], strlen(yes[i])), "%s", yes[i]);
        cJSON *c = cJSON_Parse(yes[i]);
        cr_assert(c, "cJSON agrees on %s", yes[i]);
        cJSON_Delete(c);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        cr_assert_not(bw_json_valid(no[i], strlen(no[i])), "%s", no[i]);
    cr_assert_not(bw_json_valid("\"a\0b\"", 5), "a raw NUL is a control character");
    size_t depth = 200000, n = depth * 2 + 1;
    char *deep = malloc(n + 1);
    memset(deep, '[', depth);
    deep[depth] = '1';
    memset(deep + depth + 1, ']', depth);
    deep[n] = '\0';
    cr_assert(bw_json_valid(deep, n), "200,000 levels");
    deep[n - 1] = '}';
    cr_assert_not(bw_json_valid(deep, n), "a mismatched bracket at the end");
    for (size_t i = 0; i < depth; i++) deep[i] = i % 2 ? '[' : '{';
    cr_assert_not(bw_json_valid(deep, n), "an object needs keys");
    free(deep);
}

Test(bw_json, quote_n_keeps_nuls) {
    bw_sb b = {0};
    bw_sb_quote_n(&b, "before\0after", 12);
    char *t = bw_sb_take(&b);
    cr_assert_str_eq(t, "\"before\\u0000after\"");
    free(t);
}
