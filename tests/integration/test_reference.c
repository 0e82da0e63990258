/* SPDX-License-Identifier: MIT */
/* The reference producer helpers (tools/reference/reference.h) against a
 * real redis-server: the job hash they write (name, data bytes, options),
 * their defaults, and invalid input writing nothing. That Node reads these
 * jobs as the NestJS QueueService's own is checked by
 * compat-tests/test/reference-deployment.test.js. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reference.h"
#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(reference, .init = setup, .fini = teardown, .timeout = 30);

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *field(const char *prefix, const char *queue, const char *id, const char *name) {
    char key[256];
    snprintf(key, sizeof key, "%s:%s:%s", prefix, queue, id);
    return tu_hget(rc, key, name);
}

static void assert_reference_opts(const char *prefix, const char *queue, const char *id) {
    char *opts = field(prefix, queue, id, "opts");
    cJSON *o = cJSON_Parse(opts);
    cr_assert(o, "opts %s", opts);
    cr_assert_eq(cJSON_GetObjectItem(o, "removeOnComplete")->valueint, 10, "%s", opts);
    cr_assert_eq(cJSON_GetObjectItem(o, "removeOnFail")->valueint, 5, "%s", opts);
    cJSON_Delete(o);
    free(opts);
}

Test(reference, game_data_job_keeps_the_data_bytes) {
    const char *prefix = tu_prefix();
    bullc_queue *q = tu_queue(BULLC_REFERENCE_TEST_QUEUE, prefix);
    bullc_error err = {0};
    char *id = NULL;
    int64_t before = wall_ms();
    cr_assert_eq(bullc_reference_add_test_queue_job(q, "NAMED_POWERBALL",
                                                    "{ \"round\": 7, \"odds\": 1.950, \"big\": 12345678901234567890 }",
                                                    "round_result", &id, &err),
                 0, "%s", err.message);
    int64_t after = wall_ms();
    char *name = field(prefix, "test-queue", id, "name"), *data = field(prefix, "test-queue", id, "data");
    cr_assert_str_eq(name, "game_data");
    /* the QueueService's key order; data as given, whitespace outside strings dropped */
    const char *head =
        "{\"provider\":\"NAMED_POWERBALL\",\"data\":{\"round\":7,\"odds\":1.950,\"big\":12345678901234567890},"
        "\"timestamp\":";
    cr_assert(!strncmp(data, head, strlen(head)), "%s", data);
    char *end;
    long long ts = strtoll(data + strlen(head), &end, 10);
    cr_assert(ts >= before && ts <= after, "timestamp %lld not in [%lld, %lld]", ts, (long long)before,
              (long long)after);
    cr_assert_str_eq(end, ",\"messageType\":\"round_result\"}");
    assert_reference_opts(prefix, "test-queue", id);
    free(name), free(data), bullc_free(id);
    bullc_queue_free(q);
}

Test(reference, game_data_defaults_and_text_messages) {
    const char *prefix = tu_prefix();
    bullc_queue *q = tu_queue(BULLC_REFERENCE_TEST_QUEUE, prefix);
    bullc_error err = {0};
    char *id = NULL;
    /* a raw text message is a JSON string; NULL message_type is "game_data" */
    cr_assert_eq(bullc_reference_add_test_queue_job(q, "P \"quoted\"\n", "\"not json: <b>\"", NULL, &id, &err), 0, "%s",
                 err.message);
    char *data = field(prefix, "test-queue", id, "data");
    cJSON *d = cJSON_Parse(data);
    cr_assert(d, "%s", data);
    cr_assert_str_eq(cJSON_GetObjectItem(d, "provider")->valuestring, "P \"quoted\"\n");
    cr_assert_str_eq(cJSON_GetObjectItem(d, "data")->valuestring, "not json: <b>");
    cr_assert_str_eq(cJSON_GetObjectItem(d, "messageType")->valuestring, "game_data");
    cr_assert(strstr(data, "\"provider\":\"P \\\"quoted\\\"\\n\""), "escaped as JSON.stringify: %s", data);
    cJSON_Delete(d);
    free(data), bullc_free(id);
    bullc_queue_free(q);
}

Test(reference, notification_job) {
    const char *prefix = tu_prefix();
    bullc_queue *q = tu_queue(BULLC_REFERENCE_NOTIFICATION_QUEUE, prefix);
    bullc_error err = {0};
    char *a = NULL, *b = NULL;
    cr_assert_eq(bullc_reference_add_notification_job(q, "user-1", "info", "round 7 is over", NULL, &a, &err), 0, "%s",
                 err.message);
    cr_assert_eq(bullc_reference_add_notification_job(q, "user-2", "alert", "", "{\"round\": 7}", &b, &err), 0, "%s",
                 err.message);
    char *na = field(prefix, "notification", a, "name"), *da = field(prefix, "notification", a, "data");
    char *db = field(prefix, "notification", b, "data");
    cr_assert_str_eq(na, "send-notification");
    cr_assert_str_eq(da, "{\"userId\":\"user-1\",\"type\":\"info\",\"message\":\"round 7 is over\",\"data\":{}}");
    cr_assert_str_eq(db, "{\"userId\":\"user-2\",\"type\":\"alert\",\"message\":\"\",\"data\":{\"round\":7}}");
    assert_reference_opts(prefix, "notification", a);
    free(na), free(da), free(db), bullc_free(a), bullc_free(b);
    bullc_queue_free(q);
}

Test(reference, invalid_input_writes_nothing) {
    const char *prefix = tu_prefix();
    bullc_queue *t = tu_queue(BULLC_REFERENCE_TEST_QUEUE, prefix);
    bullc_queue *n = tu_queue(BULLC_REFERENCE_NOTIFICATION_QUEUE, prefix);
    bullc_error err = {0};
    char *id = NULL;
    cr_assert_eq(bullc_reference_add_test_queue_job(t, NULL, "{}", NULL, &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "provider"), "%s", err.message);
    cr_assert_eq(bullc_reference_add_test_queue_job(t, "", "{}", NULL, &id, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_reference_add_test_queue_job(t, "P", "{}", "", &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "message_type"), "%s", err.message);
    cr_assert_eq(bullc_reference_add_test_queue_job(t, "P", NULL, NULL, &id, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_reference_add_test_queue_job(t, "P", "{\"a\":", NULL, &id, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_reference_add_test_queue_job(t, "P", "1 2", NULL, &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "data_json"), "%s", err.message);
    cr_assert_eq(bullc_reference_add_notification_job(n, "", "info", "m", NULL, &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "user_id"), "%s", err.message);
    cr_assert_eq(bullc_reference_add_notification_job(n, "u", NULL, "m", NULL, &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "type"), "%s", err.message);
    cr_assert_eq(bullc_reference_add_notification_job(n, "u", "info", NULL, NULL, &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "message"), "%s", err.message);
    cr_assert_eq(bullc_reference_add_notification_job(n, "u", "info", "m", "[1]", &id, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "object"), "%s", err.message);
    cr_assert_eq(err.code, BULLC_EINVAL);
    cr_assert_null(id);
    redisReply *r = tu_cmd(rc, "KEYS %s:*", prefix);
    cr_assert_eq(r->elements, 0, "invalid input wrote %zu keys", r->elements);
    freeReplyObject(r);
    bullc_queue_free(t);
    bullc_queue_free(n);
}
