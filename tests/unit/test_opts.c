/* SPDX-License-Identifier: MIT */
/* Job options: every validation rule of src/opts.c (accepted and rejected
 * values, with the message), Node's job id rules, and what an add derives
 * from options and data (defaults merged under per-job options, null as unset,
 * attempts and backoff normalisation, short keys, minified data). No Redis. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

TestSuite(opts);

/* ---- helpers ------------------------------------------------------------ */

/* merge_json into fresh options; returns the code, fills `err`. */
static int merge(const char *json, bullc_error *err) {
    bullc_job_opts *o;
    cr_assert_eq(bullc_job_opts_new(&o), 0);
    int rc = bullc_job_opts_merge_json(o, json, err);
    bullc_job_opts_free(o);
    return rc;
}

#define ACCEPTS(json)                                                \
    do {                                                             \
        bullc_error e_ = {0};                                        \
        int rc_ = merge((json), &e_);                                \
        cr_expect_eq(rc_, 0, "rejected %s: %s", (json), e_.message); \
    } while (0)

/* Rejected with BULLC_EINVAL and exactly this message. */
#define REJECTS(json, msg)                                                                \
    do {                                                                                  \
        bullc_error e_ = {0};                                                             \
        int rc_ = merge((json), &e_);                                                     \
        cr_expect_eq(rc_, BULLC_EINVAL, "accepted %s", (json));                           \
        cr_expect_eq(e_.code, rc_, "%s: err.code %d, returned %d", (json), e_.code, rc_); \
        cr_expect_str_eq(e_.message, (msg), "%s", (json));                                \
    } while (0)

/* Rejected with BULLC_EINVAL and a message containing `msg` (as Node's
 * tests check with toThrow(msg)). */
#define REJECTS_WITH(json, msg)                                                                                     \
    do {                                                                                                            \
        bullc_error e_ = {0};                                                                                       \
        int rc_ = merge((json), &e_);                                                                               \
        cr_expect_eq(rc_, BULLC_EINVAL, "accepted %s", (json));                                                     \
        cr_expect(strstr(e_.message, (msg)) != NULL, "%s: message \"%s\" lacks \"%s\"", (json), e_.message, (msg)); \
    } while (0)

/* The job id rule alone. */
static int job_id(const char *id, bullc_error *err) { return bullc__validate_job_id(id, 6, err); }

#define ID_OK(id)                                                                           \
    do {                                                                                    \
        bullc_error e_ = {0};                                                               \
        cr_expect_eq(job_id((id), &e_), 0, "job id \"%s\" rejected: %s", (id), e_.message); \
    } while (0)

#define ID_BAD(id, msg)                                                                \
    do {                                                                               \
        bullc_error e_ = {0};                                                          \
        cr_expect_eq(job_id((id), &e_), BULLC_EINVAL, "job id \"%s\" accepted", (id)); \
        cr_expect_str_eq(e_.message, (msg), "job id \"%s\"", (id));                    \
    } while (0)

static bullc_job_opts *opts_of(const char *json) {
    bullc_job_opts *o;
    cr_assert_eq(bullc_job_opts_new(&o), 0);
    if (json) {
        bullc_error err = {0};
        cr_assert_eq(bullc_job_opts_merge_json(o, json, &err), 0, "%s: %s", json, err.message);
    }
    return o;
}

/* bullc__job_prepare with defaults and options as JSON (either may be NULL);
 * on success returns the packed opts decoded to JSON. */
static cJSON *prepare(bullc__prepared_job *pj, const char *data, const char *defaults, const char *opts) {
    bullc_job_opts *d = defaults ? opts_of(defaults) : NULL, *o = opts ? opts_of(opts) : NULL;
    bullc_error err = {0};
    int rc = bullc__job_prepare(pj, data, d, o, &err);
    bullc_job_opts_free(d);
    bullc_job_opts_free(o);
    cr_assert_eq(rc, 0, "prepare(data=%s, defaults=%s, opts=%s): %s", data ? data : "NULL",
                 defaults ? defaults : "NULL", opts ? opts : "NULL", err.message);
    cJSON *j = bullc__unpack_to_json(pj->packed_opts, sdslen(pj->packed_opts));
    cr_assert_not_null(j, "packed opts do not decode");
    return j;
}

static int prepare_fails(const char *data, const char *defaults, const char *opts, bullc_error *err) {
    bullc_job_opts *d = defaults ? opts_of(defaults) : NULL, *o = opts ? opts_of(opts) : NULL;
    bullc__prepared_job pj;
    int rc = bullc__job_prepare(&pj, data, d, o, err);
    if (rc == 0) bullc__job_prepared_free(&pj);
    bullc_job_opts_free(d);
    bullc_job_opts_free(o);
    return rc;
}

static void expect_json(const cJSON *got, const char *want_text) {
    cJSON *want = cJSON_Parse(want_text);
    cr_assert_not_null(want, "bad expected JSON %s", want_text);
    char *g = cJSON_PrintUnformatted(got);
    cr_expect(cJSON_Compare(got, want, true), "got %s, expected %s", g, want_text);
    free(g);
    cJSON_Delete(want);
}

/* ---- options that do not exist or are not supported --------------------- */

Test(opts, unknown_option_is_rejected) {
    REJECTS("{\"bogus\":1}", "unknown job option 'bogus'");
    REJECTS("{\"JobId\":\"x\"}", "unknown job option 'JobId'");
}

Test(opts, repeat_job_key_and_telemetry_are_not_supported_yet) {
    const char *names[] = {"repeatJobKey", "telemetry"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char json[96], msg[160];
        snprintf(json, sizeof json, "{\"%s\":{\"id\":\"1\",\"queue\":\"bull:q\"}}", names[i]);
        snprintf(msg, sizeof msg, "job option '%s' is not supported by bullc yet (repeatable jobs)", names[i]);
        REJECTS(json, msg);
    }
}

Test(opts, parent_is_an_id_and_a_qualified_queue_name) {
    bullc_job_opts *o;
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_new(&o), 0);
    cr_assert_eq(bullc_job_opts_merge_json(o, "{\"parent\":{\"id\":\"p1\",\"queue\":\"bull:parents\"}}", &err), 0, "%s",
                 err.message);
    bullc_job_opts_free(o);
    REJECTS("{\"parent\":\"p1\"}", "parent must be an object {id, queue}");
    REJECTS("{\"parent\":{\"id\":\"p1\",\"queue\":\"parents\"}}",
            "parent.queue must be the parent queue's \"<prefix>:<name>\"");
    REJECTS("{\"parent\":{\"id\":\"\",\"queue\":\"bull:q\"}}", "parent.id must be a job id");
    REJECTS("{\"parent\":{\"id\":\"p1\",\"queue\":\"bull:q\",\"x\":1}}", "parent: unknown field 'x'");
}

/* node: "[.create > when deduplication and parent options are provided] throws an error" */
Test(opts, deduplication_and_parent_together_are_refused) {
    REJECTS("{\"parent\":{\"id\":\"p1\",\"queue\":\"bull:q\"},\"deduplication\":{\"id\":\"d\"}}",
            "Deduplication and parent options cannot be used together");
}

/* node: "[.create > when removed debounce option is provided] throws an error" */
Test(opts, debounce_was_removed) {
    /* 5.x still takes it: refused by the add of a 6.x queue, when the major is known */
    ACCEPTS("{\"debounce\":{\"id\":\"legacy\"}}");
    bullc_error err = {0};
    cr_expect_eq(prepare_fails(NULL, NULL, "{\"debounce\":{\"id\":\"legacy\"}}", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "Debounce option has been removed. Use deduplication option instead");
}

/* BullMQ 5.x's add of {debounce}: deduplication under its old name (5.81.5's
 * optsEncodeMap packs both as "de", Job takes deduplicationId from
 * deduplication.id, else debounce.id), with its own messages. */
static int prepare5(bullc__prepared_job *pj, const char *opts, bullc_error *err) {
    bullc_job_opts *o = opts_of(opts);
    int rc = bullc__job_prepare_major(pj, 5, "j", "{}", NULL, o, NULL, err);
    bullc_job_opts_free(o);
    return rc;
}

/* repeat is 5.x's legacy repeatable job (Queue.add's); 6.x removed it */
Test(opts, repeat_is_taken_on_5x_only) {
    bullc_error err = {0};
    cr_expect_eq(prepare_fails("{}", NULL, "{\"repeat\":{\"every\":1000}}", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "job option 'repeat' belongs to repeatable jobs, which BullMQ 6 removed: use a job "
                                  "scheduler (bullc_queue_upsert_job_scheduler, bullc scheduler upsert)");
    bullc__prepared_job pj;
    cr_assert_eq(prepare5(&pj, "{\"repeat\":{\"every\":1000},\"prevMillis\":1700000000000}", &err), 0, "%s",
                 err.message);
    cr_expect(pj.repeat);
    bullc__job_prepared_free(&pj);
    REJECTS("{\"repeat\":5}", "repeat must be an object");
}

Test(opts, debounce_is_deduplication_on_5x) {
    bullc__prepared_job pj;
    bullc_error err = {0};
    cr_assert_eq(prepare5(&pj, "{\"debounce\":{\"id\":\"legacy\",\"ttl\":500}}", &err), 0, "%s", err.message);
    cJSON *j = bullc__unpack_to_json(pj.packed_opts, sdslen(pj.packed_opts));
    expect_json(j, "{\"de\":{\"id\":\"legacy\",\"ttl\":500},\"attempts\":0}");
    cr_expect_str_eq(pj.dedup_id, "legacy");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* both: "de" where the first was, with the last one's value; the id is deduplication's */
    cr_assert_eq(
        prepare5(&pj, "{\"deduplication\":{\"id\":\"new\"},\"lifo\":true,\"debounce\":{\"id\":\"old\"}}", &err), 0,
        "%s", err.message);
    j = bullc__unpack_to_json(pj.packed_opts, sdslen(pj.packed_opts));
    char *text = cJSON_PrintUnformatted(j);
    cr_expect_str_eq(text, "{\"de\":{\"id\":\"old\"},\"lifo\":true,\"attempts\":0}");
    cr_expect_str_eq(pj.dedup_id, "new");
    free(text);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    cr_expect_eq(prepare5(&pj, "{\"debounce\":{\"ttl\":5}}", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "Debounce id must be provided");
    cr_expect_eq(prepare5(&pj, "{\"parent\":{\"id\":\"p1\",\"queue\":\"bull:q\"},\"debounce\":{\"id\":\"d\"}}", &err),
                 BULLC_EINVAL);
    cr_expect_str_eq(err.message, "Debounce and parent options cannot be used together");
    cr_expect_eq(prepare5(&pj, "{\"debounce\":{\"id\":\"d\",\"extend\":1}}", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "debounce.extend must be true or false");
}

/* ---- jobId ---------------------------------------------------------------- */

Test(opts, job_id_must_be_a_string) {
    REJECTS("{\"jobId\":5}", "jobId must be a string");
    REJECTS("{\"jobId\":true}", "jobId must be a string");
    REJECTS("{\"jobId\":{}}", "jobId must be a string");
    ACCEPTS("{\"jobId\":\"abc\"}");
    ACCEPTS("{\"jobId\":\"\"}");
}

Test(opts, job_id_zero_and_zero_colon) {
    ID_BAD("0", "JobId cannot be '0' or start with '0:'");
    ID_BAD("0:x", "JobId cannot be '0' or start with '0:'");
    ID_BAD("0:a:b", "JobId cannot be '0' or start with '0:'");
    /* merge_json leaves it to the add, whose queue's major words it */
    ACCEPTS("{\"jobId\":\"0\"}");
    bullc_error err = {0};
    cr_expect_eq(prepare_fails(NULL, NULL, "{\"jobId\":\"0:x\"}", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "JobId cannot be '0' or start with '0:'");
    bullc__prepared_job pj;
    cr_expect_eq(prepare5(&pj, "{\"jobId\":\"0\"}", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "JobId cannot be '0' or start with 0:", "5.x's words");
    cr_expect_eq(bullc__validate_job_id("0", 0, &err), 0, "not checked before the major is known");
    ID_OK("00");
    ID_OK("a0:b:c");
}

/* node: "[when jobId is provided as integer] throws error" */
Test(opts, integer_looking_job_ids_are_rejected) {
    ID_BAD("2", "Custom Id cannot be integers");
    ID_BAD("123", "Custom Id cannot be integers");
    ID_BAD("-5", "Custom Id cannot be integers");
    ID_BAD("9007199254740991", "Custom Id cannot be integers");
    ID_BAD("-9007199254740991", "Custom Id cannot be integers");
    REJECTS("{\"jobId\":\"123\"}", "Custom Id cannot be integers");
}

/* Node rejects when `${parseInt(id, 10)}` === id: what does not print back
 * the same is accepted. */
Test(opts, job_ids_that_do_not_round_trip_through_parseInt_are_accepted) {
    const char *ok[] = {"0123", "-0", "+5", "12a", " 12", "1e3", "1.5", "-01", "-0123", "9007199254740993",
                        "12345678901234567", "12345678901234567890", "123456789012345678901",
                        /* >= 1e21: JavaScript prints these as 1e+21 */
                        "999999999999999999999", "1000000000000000000000",
                        /* 2^68: printed back as 295147905179352830000 */
                        "295147905179352825856", "1e21", "abc", "", "ünï"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) ID_OK(ok[i]);
}

/* Integers beyond 2^53 that JavaScript prints back unchanged are rejected by
 * Node too: `${parseInt("9007199254740992", 10)}` === "9007199254740992". */
Test(opts, integer_job_ids_beyond_2_pow_53_are_rejected_as_in_node) {
    ID_BAD("9007199254740992", "Custom Id cannot be integers");
    ID_BAD("-9007199254740992", "Custom Id cannot be integers");
    ID_BAD("18014398509481984", "Custom Id cannot be integers");
    ID_BAD("100000000000000000000", "Custom Id cannot be integers");
    ID_BAD("-100000000000000000000", "Custom Id cannot be integers");
    ID_BAD("4503599627370497", "Custom Id cannot be integers");
    ID_BAD("-1", "Custom Id cannot be integers");
}

/* node: "[when custom job id contains :] throws an error" */
Test(opts, job_ids_with_colons) {
    ID_BAD("1:0", "Custom Id cannot contain :");
    ID_BAD("a:b", "Custom Id cannot contain :");
    ID_BAD(":", "Custom Id cannot contain :");
    ID_BAD("a:b:c:d", "Custom Id cannot contain :");
    ID_OK("a:b:c");
    ID_OK("::");
    ID_OK("repeat:abc:1700000000000");
    REJECTS("{\"jobId\":\"a:b\"}", "Custom Id cannot contain :");
    ACCEPTS("{\"jobId\":\"a:b:c\"}");
}

/* ---- delay, priority, integers ---------------------------------------------- */

Test(opts, delay) {
    ACCEPTS("{\"delay\":0}");
    ACCEPTS("{\"delay\":1500}");
    ACCEPTS("{\"delay\":1500.5}");
    REJECTS("{\"delay\":-1}", "delay must not be negative (got -1)");
    REJECTS("{\"delay\":-0.5}", "delay must not be negative (got -0.5)");
    REJECTS("{\"delay\":\"100\"}", "delay must be a number of milliseconds");
    REJECTS("{\"delay\":true}", "delay must be a number of milliseconds");
}

/* node: "[when priority option is provided as float] throws an error" */
Test(opts, priority_float) { REJECTS("{\"priority\":1.1}", "Priority should not be float"); }

/* node: "[when priority option is provided with a value greater than 2097151] throws an error" */
Test(opts, priority_above_limit) {
    REJECTS("{\"priority\":2097152}", "Priority should be between 0 and 2097151");
    ACCEPTS("{\"priority\":2097151}");
}

Test(opts, priority_other_values) {
    ACCEPTS("{\"priority\":0}");
    ACCEPTS("{\"priority\":1}");
    REJECTS("{\"priority\":-1}", "Priority should be between 0 and 2097151");
    REJECTS("{\"priority\":\"1\"}", "priority must be an integer");
    REJECTS("{\"priority\":true}", "priority must be an integer");
}

Test(opts, integer_options_ranges) {
    ACCEPTS("{\"attempts\":0}");
    ACCEPTS("{\"attempts\":9007199254740991}");
    REJECTS("{\"attempts\":-1}", "attempts must be between 0 and 9007199254740991 (got -1)");
    REJECTS("{\"attempts\":1.5}", "attempts must be an integer");
    REJECTS("{\"attempts\":\"3\"}", "attempts must be an integer");
    REJECTS("{\"attempts\":1e300}", "attempts must be an integer");
    ACCEPTS("{\"keepLogs\":0}");
    REJECTS("{\"keepLogs\":-1}", "keepLogs must be between 0 and 9007199254740991 (got -1)");
    REJECTS("{\"keepLogs\":\"5\"}", "keepLogs must be an integer");
    ACCEPTS("{\"stackTraceLimit\":0}");
    REJECTS("{\"stackTraceLimit\":-1}", "stackTraceLimit must be between 0 and 9007199254740991 (got -1)");
    ACCEPTS("{\"sizeLimit\":1}");
    REJECTS("{\"sizeLimit\":0}", "sizeLimit must be between 1 and 9007199254740991 (got 0)");
    REJECTS("{\"sizeLimit\":2.5}", "sizeLimit must be an integer");
    ACCEPTS("{\"timestamp\":0}");
    ACCEPTS("{\"timestamp\":1700000000000}");
    REJECTS("{\"timestamp\":-1}", "timestamp must be between 0 and 9007199254740991 (got -1)");
    REJECTS("{\"timestamp\":1.5}", "timestamp must be an integer");
}

/* ---- backoff ----------------------------------------------------------------- */

Test(opts, backoff_values) {
    ACCEPTS("{\"backoff\":0}");
    ACCEPTS("{\"backoff\":1000}");
    ACCEPTS("{\"backoff\":{\"type\":\"fixed\"}}");
    ACCEPTS("{\"backoff\":{\"type\":\"fixed\",\"delay\":100}}");
    ACCEPTS("{\"backoff\":{\"type\":\"exponential\",\"delay\":100,\"jitter\":0}}");
    ACCEPTS("{\"backoff\":{\"type\":\"exponential\",\"delay\":100,\"jitter\":1}}");
    ACCEPTS("{\"backoff\":{\"type\":\"my-custom\",\"delay\":5,\"jitter\":0.5}}");
    REJECTS("{\"backoff\":-1}", "backoff must be between 0 and 9007199254740991 (got -1)");
    REJECTS("{\"backoff\":1.5}", "backoff must be an integer");
    REJECTS("{\"backoff\":\"fixed\"}", "backoff must be a number or {type, delay, jitter}");
    REJECTS("{\"backoff\":{}}", "backoff.type must be \"fixed\", \"exponential\" or a custom strategy's name");
    REJECTS("{\"backoff\":{\"type\":\"\"}}",
            "backoff.type must be \"fixed\", \"exponential\" or a custom strategy's name");
    REJECTS("{\"backoff\":{\"type\":1}}",
            "backoff.type must be \"fixed\", \"exponential\" or a custom strategy's name");
    REJECTS("{\"backoff\":{\"type\":\"fixed\",\"delay\":-5}}",
            "backoff.delay must be between 0 and 9007199254740991 (got -5)");
    REJECTS("{\"backoff\":{\"type\":\"fixed\",\"delay\":1.5}}", "backoff.delay must be an integer");
    REJECTS("{\"backoff\":{\"type\":\"fixed\",\"delay\":1,\"foo\":1}}", "backoff: unknown field 'foo'");
    REJECTS("{\"backoff\":{\"type\":\"fixed\",\"jitter\":\"0.5\"}}", "Jitter should be between 0 and 1");
}

/* node: "[when jitter backoff option is provided with a value lesser than 0] throws an error" */
Test(opts, jitter_below_zero) {
    REJECTS("{\"backoff\":{\"type\":\"fixed\",\"jitter\":-1}}", "Jitter should be between 0 and 1");
}

/* node: "[when jitter backoff option is provided with a value greater than 1] throws an error" */
Test(opts, jitter_above_one) {
    REJECTS("{\"backoff\":{\"type\":\"fixed\",\"jitter\":5}}", "Jitter should be between 0 and 1");
}

/* ---- removeOnComplete / removeOnFail ------------------------------------------ */

Test(opts, keep_jobs_values) {
    const char *names[] = {"removeOnComplete", "removeOnFail"};
    for (int i = 0; i < 2; i++) {
        const char *n = names[i];
        char json[128], msg[160];
        const char *ok[] = {"true",
                            "false",
                            "0",
                            "-1",
                            "10",
                            "{}",
                            "{\"age\":0}",
                            "{\"age\":3600,\"count\":5}",
                            "{\"count\":-1}",
                            "{\"age\":1,\"count\":2,\"limit\":3}"};
        for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
            snprintf(json, sizeof json, "{\"%s\":%s}", n, ok[k]);
            ACCEPTS(json);
        }
        snprintf(json, sizeof json, "{\"%s\":\"yes\"}", n);
        snprintf(msg, sizeof msg, "%s must be a boolean, a count or {age, count, limit}", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":-2}", n);
        snprintf(msg, sizeof msg, "%s must be between -1 and 9007199254740991 (got -2)", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":1.5}", n);
        snprintf(msg, sizeof msg, "%s must be an integer", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":{\"age\":-1}}", n);
        snprintf(msg, sizeof msg, "%s.age must be between 0 and 9007199254740991 (got -1)", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":{\"count\":-2}}", n);
        snprintf(msg, sizeof msg, "%s.count must be between -1 and 9007199254740991 (got -2)", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":{\"limit\":-1}}", n);
        snprintf(msg, sizeof msg, "%s.limit must be between 0 and 9007199254740991 (got -1)", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":{\"age\":\"60\"}}", n);
        snprintf(msg, sizeof msg, "%s.age must be an integer", n);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":{\"ttl\":1}}", n);
        snprintf(msg, sizeof msg, "%s: unknown field 'ttl'", n);
        REJECTS(json, msg);
    }
}

/* ---- deduplication ------------------------------------------------------------- */

Test(opts, deduplication_values) {
    ACCEPTS("{\"deduplication\":{\"id\":\"a\"}}");
    ACCEPTS("{\"deduplication\":{\"id\":\"a\",\"ttl\":1,\"extend\":true,\"replace\":false,\"keepLastIfActive\":true,"
            "\"reschedule\":false}}");
    REJECTS("{\"deduplication\":\"a\"}", "deduplication must be an object {id, ttl, extend, replace}");
    REJECTS("{\"deduplication\":{\"ttl\":5}}", "Deduplication id must be provided");
    REJECTS("{\"deduplication\":{\"id\":5}}", "Deduplication id must be provided");
    REJECTS("{\"deduplication\":{\"id\":\"a\",\"ttl\":0}}",
            "deduplication.ttl must be between 1 and 9007199254740991 (got 0)");
    REJECTS("{\"deduplication\":{\"id\":\"a\",\"ttl\":1.5}}", "deduplication.ttl must be an integer");
    REJECTS("{\"deduplication\":{\"id\":\"a\",\"extend\":1}}", "deduplication.extend must be true or false");
    REJECTS("{\"deduplication\":{\"id\":\"a\",\"replace\":\"yes\"}}", "deduplication.replace must be true or false");
    REJECTS("{\"deduplication\":{\"id\":\"a\",\"keepLastIfActive\":0}}",
            "deduplication.keepLastIfActive must be true or false");
    /* null means unset, nested too, as undefined in Node */
    ACCEPTS("{\"deduplication\":{\"id\":\"a\",\"reschedule\":null,\"ttl\":null}}");
    ACCEPTS("{\"backoff\":{\"type\":\"fixed\",\"delay\":5,\"jitter\":null}}");
    ACCEPTS("{\"removeOnComplete\":{\"age\":60,\"count\":null}}");
    REJECTS("{\"deduplication\":{\"id\":\"a\",\"foo\":1}}", "deduplication: unknown field 'foo'");
}

/* node: "[when deduplication id option is provided as empty string] throws an error" */
Test(opts, deduplication_empty_id) {
    REJECTS("{\"deduplication\":{\"id\":\"\"}}", "Deduplication id must be provided");
}

/* ---- booleans and the exclusive *OnFailure options ------------------------------ */

Test(opts, boolean_options) {
    const char *names[] = {"lifo", "failParentOnFailure", "continueParentOnFailure", "ignoreDependencyOnFailure",
                           "removeDependencyOnFailure"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char json[96], msg[128];
        snprintf(json, sizeof json, "{\"%s\":true}", names[i]);
        ACCEPTS(json);
        snprintf(json, sizeof json, "{\"%s\":false}", names[i]);
        ACCEPTS(json);
        snprintf(msg, sizeof msg, "%s must be true or false", names[i]);
        snprintf(json, sizeof json, "{\"%s\":1}", names[i]);
        REJECTS(json, msg);
        snprintf(json, sizeof json, "{\"%s\":\"true\"}", names[i]);
        REJECTS(json, msg);
    }
}

Test(opts, one_on_failure_option_at_a_time) {
    ACCEPTS("{\"failParentOnFailure\":true,\"removeDependencyOnFailure\":false,\"ignoreDependencyOnFailure\":false}");
    ACCEPTS("{\"continueParentOnFailure\":true}");
}

/* Node's message lists the options that are set, in its own order
 * (removeDependencyOnFailure, failParentOnFailure, continueParentOnFailure,
 * ignoreDependencyOnFailure); its tests check it with toThrow(substring). */
/* node: "[when removeDependencyOnFailure and failParentOnFailure options are provided] throws an error" */
Test(opts, remove_dependency_and_fail_parent) {
    REJECTS_WITH("{\"removeDependencyOnFailure\":true,\"failParentOnFailure\":true}",
                 "The following options cannot be used together: removeDependencyOnFailure, failParentOnFailure");
}

/* node: "[when removeDependencyOnFailure and ignoreDependencyOnFailure options are provided] throws an error" */
Test(opts, remove_dependency_and_ignore_dependency) {
    REJECTS_WITH("{\"removeDependencyOnFailure\":true,\"ignoreDependencyOnFailure\":true}",
                 "The following options cannot be used together: removeDependencyOnFailure, ignoreDependencyOnFailure");
}

/* node: "[when failParentOnFailure and ignoreDependencyOnFailure options are provided] throws an error" */
Test(opts, fail_parent_and_ignore_dependency) {
    REJECTS_WITH("{\"ignoreDependencyOnFailure\":true,\"failParentOnFailure\":true}",
                 "The following options cannot be used together: failParentOnFailure, ignoreDependencyOnFailure");
}

/* ---- merge_json, setters, validate ----------------------------------------------- */

Test(opts, merge_json_input_errors_leave_options_unchanged) {
    bullc_job_opts *o = opts_of("{\"attempts\":2}");
    char *before = bullc_job_opts_to_json(o);
    bullc_error err = {0};
    cr_expect_eq(bullc_job_opts_merge_json(o, "{not json", &err), BULLC_EINVAL);
    cr_expect(!strncmp(err.message, "options: invalid JSON", 21), "%s", err.message);
    cr_expect_eq(bullc_job_opts_merge_json(o, "[1,2]", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "options must be a JSON object");
    cr_expect_eq(bullc_job_opts_merge_json(o, "null", &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "options must be a JSON object");
    cr_expect_eq(bullc_job_opts_merge_json(o, "{\"attempts\":1} trailing", &err), BULLC_EINVAL);
    cr_expect_eq(bullc_job_opts_merge_json(o, NULL, &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "options: NULL JSON");
    /* one bad option: none of the others is taken */
    cr_expect_eq(bullc_job_opts_merge_json(o, "{\"lifo\":true,\"priority\":-1}", &err), BULLC_EINVAL);
    char *after = bullc_job_opts_to_json(o);
    cr_expect_str_eq(after, before);
    free(before);
    free(after);
    bullc_job_opts_free(o);
}

Test(opts, merge_json_replaces_given_keys_and_keeps_others) {
    bullc_job_opts *o = opts_of("{\"attempts\":1,\"delay\":100}");
    bullc_error err = {0};
    cr_assert_eq(bullc_job_opts_merge_json(o, "{\"attempts\":2,\"lifo\":true}", &err), 0, "%s", err.message);
    char *s = bullc_job_opts_to_json(o);
    cJSON *j = cJSON_Parse(s);
    expect_json(j, "{\"attempts\":2,\"delay\":100,\"lifo\":true}");
    cJSON_Delete(j);
    free(s);
    bullc_job_opts_free(o);
}

Test(opts, setters_record_and_validation_checks_later) {
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    bullc_error err = {0};
    cr_expect_eq(bullc_job_opts_validate(o, &err), 0);
    cr_expect_eq(bullc_job_opts_set_priority(o, -3), 0, "setters do not check ranges");
    cr_expect_eq(bullc_job_opts_validate(o, &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "Priority should be between 0 and 2097151");
    cr_expect_eq(bullc_job_opts_set_priority(o, 3), 0);
    cr_expect_eq(bullc_job_opts_validate(o, &err), 0, "%s", err.message);
    cr_expect_eq(bullc_job_opts_set_delay(o, -1), 0);
    cr_expect_eq(bullc_job_opts_validate(o, &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "delay must not be negative (got -1)");
    cr_expect_eq(bullc_job_opts_set_delay(o, 0), 0);
    cr_expect_eq(bullc_job_opts_set_job_id(o, "123"), 0);
    cr_expect_eq(bullc_job_opts_validate(o, &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "Custom Id cannot be integers");
    cr_expect_eq(bullc_job_opts_set_job_id(o, NULL), BULLC_EINVAL);
    cr_expect_eq(bullc_job_opts_set_backoff(o, NULL, 1, -1), BULLC_EINVAL);
    cr_expect_eq(bullc_job_opts_set_deduplication(o, NULL, 1, false, false), BULLC_EINVAL);
    bullc_job_opts_free(o);
}

Test(opts, setters_write_node_shapes) {
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    bullc_job_opts_set_job_id(o, "j-1");
    bullc_job_opts_set_delay(o, 250);
    bullc_job_opts_set_priority(o, 4);
    bullc_job_opts_set_lifo(o, true);
    bullc_job_opts_set_attempts(o, 3);
    bullc_job_opts_set_backoff(o, "exponential", 100, 0.5);
    bullc_job_opts_set_keep_on_complete(o, 5, 60);
    bullc_job_opts_set_keep_on_fail(o, 7, -1);
    bullc_job_opts_set_keep_logs(o, 9);
    bullc_job_opts_set_stack_trace_limit(o, 2);
    bullc_job_opts_set_size_limit(o, 1000);
    bullc_job_opts_set_timestamp(o, 1700000000000);
    bullc_job_opts_set_deduplication(o, "d", 100, true, true);
    char *s = bullc_job_opts_to_json(o);
    cJSON *j = cJSON_Parse(s);
    expect_json(j, "{\"jobId\":\"j-1\",\"delay\":250,\"priority\":4,\"lifo\":true,\"attempts\":3,"
                   "\"backoff\":{\"type\":\"exponential\",\"delay\":100,\"jitter\":0.5},"
                   "\"removeOnComplete\":{\"age\":60,\"count\":5},\"removeOnFail\":7,\"keepLogs\":9,"
                   "\"stackTraceLimit\":2,\"sizeLimit\":1000,\"timestamp\":1700000000000,"
                   "\"deduplication\":{\"id\":\"d\",\"ttl\":100,\"extend\":true,\"replace\":true}}");
    cJSON_Delete(j);
    free(s);
    bullc_error err = {0};
    cr_expect_eq(bullc_job_opts_validate(o, &err), 0, "%s", err.message);
    /* the other forms */
    bullc_job_opts_set_backoff(o, "fixed", 10, -1);
    bullc_job_opts_set_keep_on_complete(o, -1, -1);
    bullc_job_opts_set_keep_on_fail(o, -1, 30);
    bullc_job_opts_set_deduplication(o, "e", 0, false, false);
    bullc_job_opts_set_remove_on_complete(o, true);
    s = bullc_job_opts_to_json(o);
    j = cJSON_Parse(s);
    expect_json(cJSON_GetObjectItem(j, "backoff"), "{\"type\":\"fixed\",\"delay\":10}");
    expect_json(cJSON_GetObjectItem(j, "removeOnComplete"), "true");
    expect_json(cJSON_GetObjectItem(j, "removeOnFail"), "{\"age\":30}");
    expect_json(cJSON_GetObjectItem(j, "deduplication"), "{\"id\":\"e\"}");
    cJSON_Delete(j);
    free(s);
    bullc_job_opts_set_keep_on_complete(o, -1, -1);
    s = bullc_job_opts_to_json(o);
    j = cJSON_Parse(s);
    expect_json(cJSON_GetObjectItem(j, "removeOnComplete"), "false");
    cJSON_Delete(j);
    free(s);
    bullc_job_opts_free(o);
}

/* ---- what an add derives ------------------------------------------------------- */

Test(opts, attempts_defaults_to_zero) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, NULL, NULL);
    expect_json(j, "{\"attempts\":0}");
    cr_expect_str_eq(pj.data, "{}");
    cr_expect_null(pj.job_id);
    cr_expect_null(pj.dedup_id);
    cr_expect_eq(pj.delay, 0);
    cr_expect_eq(pj.priority, 0);
    cr_expect(!pj.lifo);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    j = prepare(&pj, "{}", NULL, "{\"attempts\":3}");
    expect_json(j, "{\"attempts\":3}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

Test(opts, backoff_number_becomes_fixed) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, NULL, "{\"attempts\":3,\"backoff\":1000}");
    expect_json(j, "{\"attempts\":3,\"backoff\":{\"type\":\"fixed\",\"delay\":1000}}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    j = prepare(&pj, NULL, NULL, "{\"backoff\":{\"type\":\"exponential\",\"delay\":5,\"jitter\":0.5}}");
    expect_json(j, "{\"attempts\":0,\"backoff\":{\"type\":\"exponential\",\"delay\":5,\"jitter\":0.5}}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

Test(opts, stored_opts_use_node_short_keys) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, NULL,
                       "{\"deduplication\":{\"id\":\"x\",\"ttl\":5},\"keepLogs\":4,\"failParentOnFailure\":true,"
                       "\"removeOnFail\":2}");
    expect_json(j, "{\"attempts\":0,\"de\":{\"id\":\"x\",\"ttl\":5},\"kl\":4,\"fpof\":true,\"removeOnFail\":2}");
    cr_expect_str_eq(pj.dedup_id, "x");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    const char *pairs[][2] = {{"continueParentOnFailure", "cpof"},
                              {"ignoreDependencyOnFailure", "idof"},
                              {"removeDependencyOnFailure", "rdof"}};
    for (int i = 0; i < 3; i++) {
        char in[96], want[96];
        snprintf(in, sizeof in, "{\"%s\":true}", pairs[i][0]);
        snprintf(want, sizeof want, "{\"attempts\":0,\"%s\":true}", pairs[i][1]);
        j = prepare(&pj, NULL, NULL, in);
        expect_json(j, want);
        cJSON_Delete(j);
        bullc__job_prepared_free(&pj);
    }
}

Test(opts, derived_fields) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, NULL,
                       "{\"jobId\":\"my-id\",\"delay\":1500.5,\"priority\":9,\"lifo\":true,\"timestamp\":1700000000123,"
                       "\"deduplication\":{\"id\":\"dup\"}}");
    cr_expect_str_eq(pj.job_id, "my-id");
    cr_expect_str_eq(pj.dedup_id, "dup");
    cr_expect_eq(pj.delay, 1500.5);
    cr_expect_eq(pj.priority, 9);
    cr_expect(pj.lifo);
    cr_expect_eq(pj.timestamp, 1700000000123);
    /* jobId stays in the stored opts, as Node stores it */
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(j, "jobId")), "my-id");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

/* "" means no custom id (the numeric id Redis then gives is checked in
 * compat-tests/test/add-compat.test.js). */
Test(opts, empty_job_id_means_automatic) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, NULL, "{\"jobId\":\"\"}");
    cr_expect_null(pj.job_id);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

Test(opts, timestamp_defaults_to_now) {
    int64_t before = bullc__now_ms();
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, NULL, NULL);
    int64_t after = bullc__now_ms();
    cr_expect(pj.timestamp >= before && pj.timestamp <= after, "timestamp %lld not in [%lld, %lld]",
              (long long)pj.timestamp, (long long)before, (long long)after);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* Node: opts.timestamp ? opts.timestamp : Date.now() */
    j = prepare(&pj, NULL, NULL, "{\"timestamp\":0}");
    cr_expect_geq(pj.timestamp, before);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

Test(opts, default_job_options_are_merged_under_per_job_options) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, "{\"attempts\":3,\"removeOnComplete\":true,\"priority\":5,\"backoff\":100}",
                       "{\"priority\":1,\"lifo\":true}");
    expect_json(j, "{\"attempts\":3,\"removeOnComplete\":true,\"priority\":1,\"lifo\":true,"
                   "\"backoff\":{\"type\":\"fixed\",\"delay\":100}}");
    cr_expect_eq(pj.priority, 1);
    cr_expect(pj.lifo);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* defaults alone */
    j = prepare(&pj, NULL, "{\"delay\":5000,\"attempts\":2}", NULL);
    expect_json(j, "{\"delay\":5000,\"attempts\":2}");
    cr_expect_eq(pj.delay, 5000);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* a per-job object replaces the default one whole (a shallow merge, as
     * Node's object spread) */
    j = prepare(&pj, NULL, "{\"removeOnFail\":{\"age\":60,\"count\":3}}", "{\"removeOnFail\":{\"count\":1}}");
    expect_json(j, "{\"attempts\":0,\"removeOnFail\":{\"count\":1}}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

/* Node: {...defaultJobOptions, ...opts, jobId: opts.jobId}: a jobId among the
 * defaults never applies. */
Test(opts, default_job_id_is_ignored) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, NULL, "{\"jobId\":\"from-defaults\",\"attempts\":1}", NULL);
    cr_expect_null(pj.job_id);
    expect_json(j, "{\"attempts\":1}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    j = prepare(&pj, NULL, "{\"jobId\":\"from-defaults\"}", "{\"jobId\":\"mine\"}");
    cr_expect_str_eq(pj.job_id, "mine");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

Test(opts, null_means_unset) {
    bullc__prepared_job pj;
    cJSON *j =
        prepare(&pj, NULL, NULL, "{\"priority\":null,\"lifo\":null,\"delay\":null,\"jobId\":null,\"backoff\":null}");
    expect_json(j, "{\"attempts\":0}");
    cr_expect_eq(pj.priority, 0);
    cr_expect_eq(pj.delay, 0);
    cr_expect_null(pj.job_id);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* a per-job null removes a default */
    j = prepare(&pj, NULL, "{\"delay\":5000,\"attempts\":4}", "{\"delay\":null}");
    expect_json(j, "{\"attempts\":4}");
    cr_expect_eq(pj.delay, 0);
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* a null attempts is unset, so the default 0 applies */
    j = prepare(&pj, NULL, NULL, "{\"attempts\":null}");
    expect_json(j, "{\"attempts\":0}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* nulls are not validated: they are not values */
    ACCEPTS("{\"priority\":null,\"deduplication\":null,\"removeOnComplete\":null,\"debounce\":null}");
}

Test(opts, validation_sees_defaults_and_options_together) {
    bullc_error err = {0};
    cr_expect_eq(prepare_fails(NULL, "{\"failParentOnFailure\":true}", "{\"removeDependencyOnFailure\":true}", &err),
                 BULLC_EINVAL);
    const char *head = "The following options cannot be used together: ";
    cr_expect(!strncmp(err.message, head, strlen(head)), "%s", err.message);
}

Test(opts, data_is_checked_and_minified) {
    bullc__prepared_job pj;
    cJSON *j = prepare(&pj, " { \"a\" : [1, 2.50, -3e2] ,\n\t\"s\" : \" x  y \" , \"u\":\"\\u00e9\\n\" } ", NULL, NULL);
    cr_expect_str_eq(pj.data, "{\"a\":[1,2.50,-3e2],\"s\":\" x  y \",\"u\":\"\\u00e9\\n\"}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    const char *scalars[] = {"0", "\"str\"", "[1]", "null", "true"};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
        j = prepare(&pj, scalars[i], NULL, NULL);
        cr_expect_str_eq(pj.data, scalars[i]);
        cJSON_Delete(j);
        bullc__job_prepared_free(&pj);
    }
    bullc_error err = {0};
    cr_expect_eq(prepare_fails("{not json", NULL, NULL, &err), BULLC_EINVAL);
    cr_expect(!strncmp(err.message, "data is not valid JSON (at byte ", 32), "%s", err.message);
    cr_expect_eq(prepare_fails("{\"a\":1} x", NULL, NULL, &err), BULLC_EINVAL);
    cr_expect(!strncmp(err.message, "data is not valid JSON", 22), "%s", err.message);
    cr_expect_eq(prepare_fails("", NULL, NULL, &err), BULLC_EINVAL);
}

/* node: "should set default size limit and succeed in creating job" */
Test(opts, size_limit_at_or_above_the_data_size) {
    bullc__prepared_job pj;
    /* {"foo":"bar"} is 13 bytes */
    cJSON *j = prepare(&pj, "{\"foo\":\"bar\"}", NULL, "{\"sizeLimit\":20}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    j = prepare(&pj, "{\"foo\":\"bar\"}", NULL, "{\"sizeLimit\":13}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
    /* the stored (minified) size counts, not the text as given */
    j = prepare(&pj, " { \"foo\" : \"bar\" } ", NULL, "{\"sizeLimit\":13}");
    cJSON_Delete(j);
    bullc__job_prepared_free(&pj);
}

Test(opts, size_limit_below_the_data_size) {
    bullc_error err = {0};
    cr_expect_eq(prepare_fails("{\"foo\":\"bar\"}", NULL, "{\"sizeLimit\":12}", &err), BULLC_EINVAL);
    cr_expect(strstr(err.message, "exceeds the limit 12 bytes") != NULL, "%s", err.message);
    /* UTF-8 bytes, as Node's lengthInUtf8Bytes: {"foo":"βÅ®"} is 16 bytes */
    cr_expect_eq(prepare_fails("{\"foo\":\"\xce\xb2\xc3\x85\xc2\xae\"}", NULL, "{\"sizeLimit\":15}", &err),
                 BULLC_EINVAL);
    cr_expect(strstr(err.message, "exceeds the limit 15 bytes") != NULL, "%s", err.message);
    cr_expect_eq(prepare_fails("{\"foo\":\"\xce\xb2\xc3\x85\xc2\xae\"}", NULL, "{\"sizeLimit\":16}", &err), 0);
    /* with the job's name, as Node words it */
    bullc_job_opts *o = opts_of("{\"sizeLimit\":12}");
    bullc__prepared_job pj;
    cr_expect_eq(bullc__job_prepare_named(&pj, "test", "{\"foo\":\"bar\"}", NULL, o, &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "The size of job test exceeds the limit 12 bytes");
    bullc_job_opts_free(o);
    /* from the default job options too */
    cr_expect_eq(prepare_fails("{\"foo\":\"bar\"}", "{\"sizeLimit\":5}", NULL, &err), BULLC_EINVAL);
}
