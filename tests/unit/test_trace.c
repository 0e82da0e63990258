/* SPDX-License-Identifier: MIT */
/* Trace context and tracer settings: W3C traceparent parsing and printing
 * (the spec's rules on versions, case and all-zero ids), bullmq-otel's
 * metadata JSON, the sampler, and the OTEL_* variables. The export path is
 * tested end to end against Node in compat-tests/test/tracing.test.js. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

static const char *const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

Test(trace, traceparent_round_trip) {
    bullc__span_ctx c;
    cr_assert(bullc__traceparent_parse(good, &c));
    cr_assert_eq(c.trace[0], 0x4b);
    cr_assert_eq(c.span[7], 0xb7);
    cr_assert_eq(c.flags, 1);
    char out[56];
    bullc__traceparent_format(&c, out);
    cr_assert_str_eq(out, good);
}

Test(trace, traceparent_rejects_what_w3c_rejects) {
    bullc__span_ctx c;
    const char *bad[] = {
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",          /* short */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",       /* upper case */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",       /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",       /* zero span id */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", /* 00 has no more fields */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",       /* separator */
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",       /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(bullc__traceparent_parse(bad[i], &c), "%s", bad[i]);
    /* a later version may append fields: its first four are read */
    cr_assert(bullc__traceparent_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what", &c));
    cr_assert_eq(c.flags, 0);
}

Test(trace, metadata_as_bullmq_otel_writes_it) {
    bullc__span_ctx c;
    cr_assert(
        bullc__trace_metadata_parse("{\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\","
                                    "\"tracestate\":\"a=b\"}",
                                    &c));
    cr_assert_not(bullc__trace_metadata_parse("{}", &c));
    cr_assert_not(bullc__trace_metadata_parse("not json", &c));
    cr_assert_not(bullc__trace_metadata_parse(NULL, &c));
}

static bullc_tracer fake(double ratio, bool parent_based) {
    bullc_tracer t;
    memset(&t, 0, sizeof t);
    t.ratio = ratio;
    t.parent_based = parent_based;
    return t;
}

Test(trace, spans_continue_their_parent_with_fresh_ids) {
    bullc_tracer t = fake(1, true);
    bullc__span_ctx parent;
    cr_assert(bullc__traceparent_parse(good, &parent));
    bullc__span s, s2;
    bullc__span_start(&t, &s, BULLC__SPAN_CONSUMER, &parent);
    bullc__span_start(&t, &s2, BULLC__SPAN_CONSUMER, &parent);
    cr_assert_eq(memcmp(s.ctx.trace, parent.trace, 16), 0);
    cr_assert_eq(memcmp(s.parent, parent.span, 8), 0);
    cr_assert(s.has_parent);
    cr_assert_neq(memcmp(s.ctx.span, s2.ctx.span, 8), 0, "random span ids");
    sds m = bullc__span_metadata(&s);
    bullc__span_ctx back;
    cr_assert(bullc__trace_metadata_parse(m, &back));
    cr_assert_eq(memcmp(&back, &s.ctx, sizeof back), 0);
    sdsfree(m);
    bullc__span root, root2;
    bullc__span_start(&t, &root, BULLC__SPAN_PRODUCER, NULL);
    bullc__span_start(&t, &root2, BULLC__SPAN_PRODUCER, NULL);
    cr_assert_not(root.has_parent);
    cr_assert_neq(memcmp(root.ctx.trace, root2.ctx.trace, 16), 0, "random trace ids");
}

Test(trace, sampler) {
    bullc__span_ctx unsampled;
    cr_assert(bullc__traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &unsampled));
    bullc__span s;
    bullc_tracer pb = fake(1, true), on = fake(1, false), off = fake(0, false), half = fake(0.5, false);
    bullc__span_start(&pb, &s, BULLC__SPAN_CONSUMER, &unsampled);
    cr_assert_eq(s.ctx.flags, 0, "parent-based follows an unsampled parent");
    bullc__span_start(&on, &s, BULLC__SPAN_CONSUMER, &unsampled);
    cr_assert_eq(s.ctx.flags, 1, "always_on ignores it");
    bullc__span_start(&off, &s, BULLC__SPAN_PRODUCER, NULL);
    cr_assert_eq(s.ctx.flags, 0);
    int sampled = 0;
    for (int i = 0; i < 2000; i++) {
        bullc__span_start(&half, &s, BULLC__SPAN_PRODUCER, NULL);
        sampled += s.ctx.flags;
    }
    cr_assert(sampled > 800 && sampled < 1200, "%d of 2000 at 0.5", sampled);
}

static void clear_env(void) {
    const char *vars[] = {"OTEL_SDK_DISABLED",
                          "OTEL_TRACES_EXPORTER",
                          "OTEL_EXPORTER_OTLP_ENDPOINT",
                          "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                          "OTEL_EXPORTER_OTLP_PROTOCOL",
                          "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                          "OTEL_EXPORTER_OTLP_HEADERS",
                          "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                          "OTEL_EXPORTER_OTLP_TIMEOUT",
                          "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                          "OTEL_EXPORTER_OTLP_CERTIFICATE",
                          "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                          "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                          "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
                          "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                          "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
                          "OTEL_SERVICE_NAME",
                          "OTEL_RESOURCE_ATTRIBUTES",
                          "OTEL_TRACES_SAMPLER",
                          "OTEL_TRACES_SAMPLER_ARG",
                          "OTEL_BSP_SCHEDULE_DELAY",
                          "OTEL_BSP_MAX_QUEUE_SIZE",
                          "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
}

static int from_env(bullc_tracer_opts **o, bool *on, bullc_error *err) {
    cr_assert_eq(bullc_tracer_opts_new(o), 0);
    return bullc_tracer_opts_from_env(*o, on, err);
}

Test(trace, off_unless_configured) {
    clear_env();
    bullc_tracer_opts *o;
    bool on = true;
    cr_assert_eq(from_env(&o, &on, NULL), 0);
    cr_assert_not(on);
    bullc_tracer_opts_free(o);
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
    setenv("OTEL_SDK_DISABLED", "true", 1);
    cr_assert_eq(from_env(&o, &on, NULL), 0);
    cr_assert_not(on);
    bullc_tracer_opts_free(o);
    unsetenv("OTEL_SDK_DISABLED");
    setenv("OTEL_TRACES_EXPORTER", "none", 1);
    cr_assert_eq(from_env(&o, &on, NULL), 0);
    cr_assert_not(on);
    bullc_tracer_opts_free(o);
    clear_env();
}

Test(trace, env_settings) {
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs, team = a%2Cb ,region=eu", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=k%3Dv", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.25", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500", 1);
    bullc_tracer_opts *o;
    bool on = false;
    cr_assert_eq(from_env(&o, &on, NULL), 0);
    cr_assert(on);
    cr_assert_str_eq(o->endpoint, "http://collector:4318/v1/traces");
    cr_assert_str_eq(o->service, "from-attrs");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(o->resource, "team")->valuestring, "a,b");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(o->resource, "region")->valuestring, "eu");
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(o->resource, "service.name"));
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(o->headers, "api-key")->valuestring, "k=v");
    cr_assert_float_eq(o->ratio, 0.25, 1e-12);
    cr_assert(o->parent_based);
    cr_assert_eq(o->max_queue, 100);
    cr_assert_eq(o->max_batch, 100, "a batch never exceeds the queue");
    bullc_tracer_opts_free(o);
    setenv("OTEL_SERVICE_NAME", "svc", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:1234/custom", 1);
    cr_assert_eq(from_env(&o, &on, NULL), 0);
    cr_assert_str_eq(o->service, "svc", "OTEL_SERVICE_NAME wins");
    cr_assert_str_eq(o->endpoint, "http://other:1234/custom", "the traces endpoint is taken as is");
    bullc_tracer_opts_free(o);
    clear_env();
}

Test(trace, env_errors_name_the_variable) {
    struct {
        const char *var, *value;
    } cases[] = {{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"},
                 {"OTEL_TRACES_SAMPLER", "jaeger_remote"},
                 {"OTEL_TRACES_EXPORTER", "zipkin"},
                 {"OTEL_BSP_MAX_QUEUE_SIZE", "0"},
                 {"OTEL_RESOURCE_ATTRIBUTES", "novalue"},
                 {"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"},
                 {"OTEL_EXPORTER_OTLP_ENDPOINT", "grpc://c:4317"},
                 {"OTEL_EXPORTER_OTLP_CERTIFICATE", "/ca.pem"},
                 {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/client.key"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clear_env();
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
        setenv(cases[i].var, cases[i].value, 1);
        bullc_tracer_opts *o;
        bool on = true;
        bullc_error err = {0};
        cr_assert_eq(from_env(&o, &on, &err), BULLC_EINVAL, "%s=%s", cases[i].var, cases[i].value);
        cr_assert_not(on);
        cr_assert(strstr(err.message, cases[i].var), "%s", err.message);
        bullc_tracer_opts_free(o);
    }
    clear_env();
}

/* A header written the HTTP way holds a secret: the error names the entry,
 * not its text; a line break decoded from %0D%0A never reaches a request. */
Test(trace, header_errors_keep_secrets_and_lines) {
    static const char *const bad[] = {"Authorization: Bearer s3cret-token", "api-key=ok,x-key:s3cret-token",
                                      "x-a=1%0D%0AHost: evil", "x%0Ab=1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
        setenv("OTEL_EXPORTER_OTLP_HEADERS", bad[i], 1);
        bullc_tracer_opts *o;
        bool on = true;
        bullc_error err = {0};
        cr_assert_eq(from_env(&o, &on, &err), BULLC_EINVAL, "%s", bad[i]);
        cr_assert(strstr(err.message, "OTEL_EXPORTER_OTLP_HEADERS"), "%s", err.message);
        cr_assert_null(strstr(err.message, "s3cret"), "%s", err.message);
        bullc_tracer_opts_free(o);
    }
    clear_env();
}

Test(trace, tracer_new_checks_its_endpoint) {
    bullc_tracer_opts *o;
    bullc_tracer *t = NULL;
    cr_assert_eq(bullc_tracer_opts_new(&o), 0);
    cr_assert_eq(bullc_tracer_new(&t, o, NULL), BULLC_EINVAL, "no endpoint");
    cr_assert_eq(bullc_tracer_opts_set_endpoint(o, "ftp://x"), BULLC_EINVAL);
    cr_assert_eq(bullc_tracer_opts_set_endpoint(o, "https://"), BULLC_EINVAL);
    cr_assert_eq(bullc_tracer_opts_set_sampler(o, 1.5, false), BULLC_EINVAL);
    cr_assert_eq(bullc_tracer_opts_set_batching(o, 0, 1, 1, 1), BULLC_EINVAL);
    cr_assert_eq(bullc_tracer_opts_add_header(o, "x\r\ny", "v"), BULLC_EINVAL);
    cr_assert_eq(bullc_tracer_opts_set_endpoint(o, "http://[::1/v1/traces"), 0);
    cr_assert_eq(bullc_tracer_new(&t, o, NULL), BULLC_EINVAL, "an unclosed IPv6 literal");
    cr_assert_eq(bullc_tracer_opts_set_endpoint(o, "http://[::1]:4318"), 0);
    cr_assert_eq(bullc_tracer_new(&t, o, NULL), 0, "an IPv6 literal with a port, no path");
    bullc_tracer_free(t);
    cr_assert_eq(bullc_tracer_opts_set_endpoint(o, "http://127.0.0.1:9/v1/traces"), 0);
    cr_assert_eq(bullc_tracer_new(&t, o, NULL), 0);
    cr_assert_eq(bullc_tracer_dropped(t), 0);
    bullc_tracer_free(t);
    /* TLS settings protect nothing over http://: refused, not ignored */
    cr_assert_eq(bullc_tracer_opts_set_tls_ca(o, "/ca.pem"), 0);
    bullc_error err = {0};
    cr_assert_eq(bullc_tracer_new(&t, o, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "use https://"), "%s", err.message);
    cr_assert_eq(bullc_tracer_opts_set_endpoint(o, "https://127.0.0.1:9/v1/traces"), 0);
    cr_assert_eq(bullc_tracer_new(&t, o, NULL), 0, "a CA file is read at export, where a bad one drops spans");
    bullc_tracer_free(t);
    bullc_tracer_opts_free(o);
}

Test(trace, env_tls_settings) {
    clear_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318", 1);
    setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", "/general-ca.pem", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "/traces-ca.pem", 1);
    setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/client.crt", 1);
    setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/client.key", 1);
    bullc_tracer_opts *o;
    bool on = false;
    cr_assert_eq(from_env(&o, &on, NULL), 0);
    cr_assert(on);
    cr_assert_str_eq(o->endpoint, "https://collector:4318/v1/traces");
    cr_assert_str_eq(o->tls_ca, "/traces-ca.pem", "the traces variable wins, as for the endpoint");
    cr_assert_str_eq(o->tls_cert, "/client.crt");
    cr_assert_str_eq(o->tls_key, "/client.key");
    bullc_tracer_opts_free(o);
    clear_env();
}
