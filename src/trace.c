/* SPDX-License-Identifier: MIT */
/* Trace context and spans: W3C traceparent in the job's "tm" option as
 * bullmq-otel's context manager writes it (JSON.stringify of the carrier
 * propagation.inject fills: {"traceparent":"00-<trace>-<span>-<flags>"}),
 * the sampler, and each finished span serialised as one OTLP/JSON span
 * object for the exporter (otlp.c). Settings and the standard OTEL_*
 * variables are read here too. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bullc-private.h"

int bullc_tracer_opts_new(bullc_tracer_opts **out) {
    bullc_tracer_opts *o = calloc(1, sizeof *o);
    if (!o || !(o->service = strdup("unknown_service:bullc")) || !(o->resource = cJSON_CreateObject()) ||
        !(o->headers = cJSON_CreateObject())) {
        bullc_tracer_opts_free(o);
        return BULLC_ENOMEM;
    }
    o->ratio = 1;
    o->parent_based = true;
    o->max_queue = 2048;
    o->max_batch = 512;
    o->delay_ms = 5000;
    o->timeout_ms = 10000;
    *out = o;
    return 0;
}

void bullc_tracer_opts_free(bullc_tracer_opts *o) {
    if (!o) return;
    free(o->endpoint);
    free(o->service);
    free(o->tls_ca);
    free(o->tls_cert);
    free(o->tls_key);
    cJSON_Delete(o->resource);
    cJSON_Delete(o->headers);
    free(o);
}

int bullc_tracer_opts_set_endpoint(bullc_tracer_opts *o, const char *url) {
    if (!url || !((!strncmp(url, "http://", 7) && url[7]) || (!strncmp(url, "https://", 8) && url[8])))
        return BULLC_EINVAL;
    return bullc__str_set(&o->endpoint, url);
}
int bullc_tracer_opts_set_tls_ca(bullc_tracer_opts *o, const char *path) {
    return path && *path ? bullc__str_set(&o->tls_ca, path) : BULLC_EINVAL;
}
int bullc_tracer_opts_set_tls_client_cert(bullc_tracer_opts *o, const char *cert, const char *key) {
    if (!cert || !*cert || !key || !*key) return BULLC_EINVAL;
    return bullc__str_set2(&o->tls_cert, cert, &o->tls_key, key, false);
}
void bullc_tracer_opts_set_error_cb(bullc_tracer_opts *o, bullc_tracer_error_cb cb, void *data) {
    o->on_error = cb;
    o->on_error_data = data;
}
int bullc_tracer_opts_set_service_name(bullc_tracer_opts *o, const char *name) {
    return name && *name ? bullc__str_set(&o->service, name) : BULLC_EINVAL;
}

static int put_str(cJSON *obj, const char *k, const char *v) {
    if (!k || !*k || !v) return BULLC_EINVAL;
    cJSON *s = cJSON_CreateString(v);
    if (!s) return BULLC_ENOMEM;
    if (cJSON_GetObjectItemCaseSensitive(obj, k))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, k, s);
    else
        cJSON_AddItemToObject(obj, k, s);
    return 0;
}
int bullc_tracer_opts_add_resource_attribute(bullc_tracer_opts *o, const char *key, const char *value) {
    return put_str(o->resource, key, value);
}
int bullc_tracer_opts_add_header(bullc_tracer_opts *o, const char *name, const char *value) {
    if (name && (strpbrk(name, "\r\n:") || (value && strpbrk(value, "\r\n")))) return BULLC_EINVAL;
    return put_str(o->headers, name, value);
}
int bullc_tracer_opts_set_sampler(bullc_tracer_opts *o, double ratio, bool parent_based) {
    if (!(ratio >= 0 && ratio <= 1)) return BULLC_EINVAL;
    o->ratio = ratio;
    o->parent_based = parent_based;
    return 0;
}
int bullc_tracer_opts_set_batching(bullc_tracer_opts *o, size_t max_queue, size_t max_batch, int64_t delay_ms,
                                   int64_t timeout_ms) {
    if (!max_queue || !max_batch || delay_ms <= 0 || timeout_ms <= 0) return BULLC_EINVAL;
    o->max_queue = max_queue;
    o->max_batch = max_batch < max_queue ? max_batch : max_queue;
    o->delay_ms = delay_ms;
    o->timeout_ms = timeout_ms;
    return 0;
}

/* ---- the OTEL_* variables ------------------------------------------------ */

static const char *env2(const char *specific, const char *general) {
    const char *v = getenv(specific);
    if (v && *v) return v;
    v = general ? getenv(general) : NULL;
    return v && *v ? v : NULL;
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* W3C Baggage-style percent-decoding and trimming, in place. */
static char *decode(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
            *w++ = (char)(hexval(r[1]) * 16 + hexval(r[2]));
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    while (w > s && (w[-1] == ' ' || w[-1] == '\t')) w--;
    *w = 0;
    return s;
}

/* The spec's TLS variables (file paths, PEM): the CA that signs the
 * collector's certificate, and a client certificate with its key for mutual
 * TLS. They need an https:// endpoint: with http:// they would protect
 * nothing, which the user believes they do, so that is refused. */
static int env_tls(bullc_tracer_opts *o, bullc_error *err) {
    const char *ca = env2("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE");
    const char *cert = env2("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE");
    const char *key = env2("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY");
    if ((ca || cert || key) && strncmp(o->endpoint, "https://", 8))
        return bullc__err(err, BULLC_EINVAL,
                          "OTEL_EXPORTER_OTLP_%s is set but the endpoint '%s' is not https:// (spans would go "
                          "unencrypted)",
                          ca     ? "CERTIFICATE"
                          : cert ? "CLIENT_CERTIFICATE"
                                 : "CLIENT_KEY",
                          o->endpoint);
    if (!cert != !key)
        return bullc__err(err, BULLC_EINVAL, "OTEL_EXPORTER_OTLP_CLIENT_%s is set without OTEL_EXPORTER_OTLP_CLIENT_%s",
                          cert ? "CERTIFICATE" : "KEY", cert ? "KEY" : "CERTIFICATE");
    int rc = ca ? bullc_tracer_opts_set_tls_ca(o, ca) : 0;
    if (!rc && cert) rc = bullc_tracer_opts_set_tls_client_cert(o, cert, key);
    return rc ? bullc__err(err, rc, "out of memory") : 0;
}

/* "k=v,k2=v2" (OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_HEADERS). */
static int parse_pairs(const char *var, const char *list, cJSON *into, bullc_error *err) {
    char *copy = strdup(list), *save = NULL;
    if (!copy) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    int rc = 0, n = 0;
    bool headers = strstr(var, "HEADERS") != NULL;
    for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        n++;
        if (!eq) {
            /* not echoed: a header entry written "Authorization: Bearer ..." holds a secret */
            rc = bullc__err(err, BULLC_EINVAL, "%s: entry %d is not key=value", var, n);
            break;
        }
        *eq = 0;
        char *k = decode(item), *v = decode(eq + 1);
        /* decoding may yield CR/LF: a header must not split the request */
        if (headers && (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n")))
            rc = bullc__err(err, BULLC_EINVAL, "%s: entry %d holds a line break or ':' in its name", var, n);
        else if (!*k || (into && put_str(into, k, v)))
            rc = bullc__err(err, BULLC_EINVAL, "%s: a bad entry (key '%s')", var, k);
    }
    free(copy);
    return rc;
}

static int env_int(const char *var, int64_t *out, bullc_error *err) {
    const char *v = getenv(var);
    if (!v || !*v) return 0;
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*end || n <= 0) return bullc__err(err, BULLC_EINVAL, "%s: '%s' is not a positive integer", var, v);
    *out = n;
    return 0;
}

static int env_sampler(bullc_tracer_opts *o, bullc_error *err) {
    const char *s = getenv("OTEL_TRACES_SAMPLER"), *arg = getenv("OTEL_TRACES_SAMPLER_ARG");
    if (!s || !*s) return 0;
    double ratio = 1;
    if (strstr(s, "traceidratio") && arg && *arg) {
        char *end;
        ratio = strtod(arg, &end);
        if (*end || !(ratio >= 0 && ratio <= 1))
            return bullc__err(err, BULLC_EINVAL, "OTEL_TRACES_SAMPLER_ARG: '%s' is not a ratio in [0, 1]", arg);
    }
    static const struct {
        const char *name;
        double ratio; /* < 0: the argument's */
        bool parent;
    } samplers[] = {{"always_on", 1, false},
                    {"always_off", 0, false},
                    {"traceidratio", -1, false},
                    {"parentbased_always_on", 1, true},
                    {"parentbased_always_off", 0, true},
                    {"parentbased_traceidratio", -1, true}};
    for (size_t i = 0; i < sizeof samplers / sizeof samplers[0]; i++)
        if (!strcmp(s, samplers[i].name)) {
            o->ratio = samplers[i].ratio < 0 ? ratio : samplers[i].ratio;
            o->parent_based = samplers[i].parent;
            return 0;
        }
    return bullc__err(err, BULLC_EINVAL,
                      "OTEL_TRACES_SAMPLER: '%s' is not supported (always_on, always_off, "
                      "traceidratio and their parentbased_ forms are)",
                      s);
}

int bullc_tracer_opts_from_env(bullc_tracer_opts *o, bool *enabled, bullc_error *err) {
    *enabled = false;
    const char *v = getenv("OTEL_SDK_DISABLED");
    if (v && !strcasecmp(v, "true")) return 0;
    v = getenv("OTEL_TRACES_EXPORTER");
    if (v && *v && strcmp(v, "otlp")) {
        if (!strcmp(v, "none")) return 0;
        return bullc__err(err, BULLC_EINVAL, "OTEL_TRACES_EXPORTER: '%s' is not supported (otlp or none)", v);
    }
    const char *ep = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if (!(ep && *ep) && !(base && *base)) return 0;
    if ((v = env2("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")) && strcmp(v, "http/json"))
        return bullc__err(err, BULLC_EINVAL, "OTEL_EXPORTER_OTLP_PROTOCOL: '%s' is not supported (http/json is)", v);
    int rc;
    if (ep && *ep) {
        rc = bullc_tracer_opts_set_endpoint(o, ep);
    } else {
        size_t n = strlen(base);
        sds url = sdscatfmt(sdsempty(), "%s/v1/traces", base);
        if (!url) return bullc__err(err, BULLC_ENOMEM, "out of memory");
        if (base[n - 1] == '/') { /* "http://c:4318/" + "/v1/traces": one slash */
            memmove(url + n - 1, url + n, sdslen(url) - n + 1);
            sdsupdatelen(url);
        }
        rc = bullc_tracer_opts_set_endpoint(o, url);
        sdsfree(url);
    }
    if (rc)
        return bullc__err(err, rc, "%s: '%s' is not an http:// or https:// URL",
                          ep && *ep ? "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT",
                          ep && *ep ? ep : base);
    if ((rc = env_tls(o, err))) return rc;
    if ((v = getenv("OTEL_RESOURCE_ATTRIBUTES")) && (rc = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", v, o->resource, err)))
        return rc;
    if ((v = getenv("OTEL_EXPORTER_OTLP_HEADERS")) &&
        (rc = parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", v, o->headers, err)))
        return rc;
    if ((v = getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")) &&
        (rc = parse_pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS", v, o->headers, err)))
        return rc;
    /* the spec: OTEL_SERVICE_NAME wins over service.name in the attributes */
    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(o->resource, "service.name");
    if ((v = getenv("OTEL_SERVICE_NAME")) && *v) {
        if (bullc__str_set(&o->service, v)) return bullc__err(err, BULLC_ENOMEM, "out of memory");
    } else if (cJSON_IsString(sn) && *sn->valuestring && bullc__str_set(&o->service, sn->valuestring)) {
        return bullc__err(err, BULLC_ENOMEM, "out of memory");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o->resource, "service.name");
    int64_t q = (int64_t)o->max_queue, b = (int64_t)o->max_batch;
    if ((rc = env_int("OTEL_BSP_MAX_QUEUE_SIZE", &q, err)) ||
        (rc = env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &b, err)) ||
        (rc = env_int("OTEL_BSP_SCHEDULE_DELAY", &o->delay_ms, err)))
        return rc;
    const char *tv = env2("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT");
    if (tv) {
        char *end;
        long long t = strtoll(tv, &end, 10);
        if (*end || t <= 0)
            return bullc__err(err, BULLC_EINVAL, "OTEL_EXPORTER_OTLP_TIMEOUT: '%s' is not a positive integer", tv);
        o->timeout_ms = t;
    }
    o->max_queue = (size_t)q;
    o->max_batch = (size_t)(b < q ? b : q);
    if ((rc = env_sampler(o, err))) return rc;
    *enabled = true;
    return 0;
}

/* ---- trace context ------------------------------------------------------- */

static bool hex_in(const char *s, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        /* W3C: lower-case hex only */
        if (hi < 0 || lo < 0 || (s[2 * i] >= 'A' && s[2 * i] <= 'F') || (s[2 * i + 1] >= 'A' && s[2 * i + 1] <= 'F'))
            return false;
        out[i] = (uint8_t)(hi * 16 + lo);
    }
    return true;
}

static bool all_zero(const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

bool bullc__traceparent_parse(const char *s, bullc__span_ctx *out) {
    /* version 00 is exactly 55 bytes; a later version may append fields */
    size_t n = strlen(s);
    uint8_t version;
    if (n < 55 || !hex_in(s, &version, 1) || version == 0xff || s[2] != '-' || s[35] != '-' || s[52] != '-' ||
        (version == 0 && n != 55) || (n > 55 && s[55] != '-'))
        return false;
    bullc__span_ctx c;
    if (!hex_in(s + 3, c.trace, 16) || !hex_in(s + 36, c.span, 8) || !hex_in(s + 53, &c.flags, 1) ||
        all_zero(c.trace, 16) || all_zero(c.span, 8))
        return false;
    *out = c;
    return true;
}

static char *hex_out(char *p, const uint8_t *b, size_t n) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *p++ = digits[b[i] >> 4];
        *p++ = digits[b[i] & 15];
    }
    return p;
}

void bullc__traceparent_format(const bullc__span_ctx *c, char out[56]) {
    char *p = out;
    memcpy(p, "00-", 3);
    p = hex_out(p + 3, c->trace, 16);
    *p++ = '-';
    p = hex_out(p, c->span, 8);
    *p++ = '-';
    p = hex_out(p, &c->flags, 1);
    *p = 0;
}

bool bullc__trace_metadata_parse(const char *tm, bullc__span_ctx *out) {
    cJSON *m = tm ? cJSON_Parse(tm) : NULL;
    const cJSON *tp = cJSON_GetObjectItemCaseSensitive(m, "traceparent");
    bool ok = cJSON_IsString(tp) && bullc__traceparent_parse(tp->valuestring, out);
    cJSON_Delete(m);
    return ok;
}

static void new_id(uint8_t *b, size_t n) {
    do bullc__random_bytes(b, n);
    while (all_zero(b, n));
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bullc__span_start(const bullc_tracer *t, bullc__span *s, int kind, const bullc__span_ctx *parent) {
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->start_ns = now_ns();
    bool sampled;
    if (parent) {
        memcpy(s->ctx.trace, parent->trace, 16);
        memcpy(s->parent, parent->span, 8);
        s->has_parent = true;
    } else {
        new_id(s->ctx.trace, 16);
    }
    if (parent && t->parent_based) {
        sampled = parent->flags & 1;
    } else {
        /* TraceIdRatioBased: the trace id's last 8 bytes below ratio * 2^64 */
        uint64_t low = 0;
        for (int i = 8; i < 16; i++) low = low << 8 | s->ctx.trace[i];
        sampled = t->ratio >= 1 || (double)low < t->ratio * 18446744073709551616.0;
    }
    s->ctx.flags = sampled ? 1 : 0;
    new_id(s->ctx.span, 8);
}

sds bullc__span_metadata(const bullc__span *s) {
    char tp[56];
    bullc__traceparent_format(&s->ctx, tp);
    return sdscatprintf(sdsempty(), "{\"traceparent\":\"%s\"}", tp);
}

/* ---- OTLP/JSON span objects ------------------------------------------------ */

static sds attrs_json(sds b, const bullc__attr *a, size_t n) {
    b = sdscat(b, "[");
    for (size_t i = 0; i < n && b; i++) {
        b = sdscat(b, i ? ",{\"key\":" : "{\"key\":");
        b = bullc__json_quote(b, a[i].key, strlen(a[i].key));
        if (!b) return NULL;
        switch (a[i].type) {
        case BULLC__ATTR_INT:
            b = sdscatprintf(b, ",\"value\":{\"intValue\":\"%lld\"}}", (long long)a[i].i);
            break;
        case BULLC__ATTR_STR_ARRAY: /* the strings one after another, each NUL-terminated */
            b = sdscat(b, ",\"value\":{\"arrayValue\":{\"values\":[");
            for (size_t k = 0, off = 0; k < (size_t)a[i].i && b; k++) {
                const char *e = a[i].s + off;
                size_t len = strlen(e);
                b = sdscat(b, k ? ",{\"stringValue\":" : "{\"stringValue\":");
                if (b) b = bullc__json_quote(b, e, len);
                if (b) b = sdscat(b, "}");
                off += len + 1;
            }
            if (b) b = sdscat(b, "]}}}");
            break;
        default:
            b = sdscat(b, ",\"value\":{\"stringValue\":");
            if (b) b = bullc__json_quote(b, a[i].s, a[i].len);
            if (b) b = sdscat(b, "}}");
        }
    }
    return b ? sdscat(b, "]") : NULL;
}

static void hex_field(sds *b, const char *name, const uint8_t *v, size_t n) {
    char hex[33];
    *hex_out(hex, v, n) = 0;
    if (*b) *b = sdscatprintf(*b, ",\"%s\":\"%s\"", name, hex);
}

void bullc__span_end(bullc_tracer *t, const bullc__span *s, const char *name, size_t name_len, const bullc__attr *a,
                     size_t n, const char *event, const bullc__attr *ea, size_t en) {
    if (!t || !(s->ctx.flags & 1)) return;
    int64_t end = now_ns();
    sds b = sdsnew("{\"name\":");
    if (b) b = bullc__json_quote(b, name, name_len);
    hex_field(&b, "traceId", s->ctx.trace, 16);
    hex_field(&b, "spanId", s->ctx.span, 8);
    if (s->has_parent) hex_field(&b, "parentSpanId", s->parent, 8);
    if (b)
        b = sdscatprintf(b, ",\"kind\":%d,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\",\"attributes\":",
                         s->kind, (long long)s->start_ns, (long long)end);
    if (b) b = attrs_json(b, a, n);
    if (b && event) {
        b = sdscatprintf(b, ",\"events\":[{\"timeUnixNano\":\"%lld\",\"name\":", (long long)end);
        if (b) b = bullc__json_quote(b, event, strlen(event));
        if (b) b = sdscat(b, ",\"attributes\":");
        if (b) b = attrs_json(b, ea, en);
        if (b) b = sdscat(b, "}]");
    }
    if (b) b = sdscat(b, ",\"status\":{}}");
    bullc__tracer_push(t, b);
}
