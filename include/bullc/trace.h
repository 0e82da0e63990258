/* SPDX-License-Identifier: MIT */
/* OpenTelemetry traces: a tracer exports the spans Node BullMQ writes with
 * bullmq-otel ("add <queue>.<name>" for an add, "process <queue>" for a
 * processed job) over OTLP/HTTP JSON, and carries the W3C trace context in
 * the job's options as bullmq-otel does ("tm"), so traces continue between
 * Node and bullc producers and workers (docs/observability.md). */
#ifndef BULLC_TRACE_H
#define BULLC_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <bullc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Settings of a tracer. Owned by the caller (_new/_free); the tracer takes
 * copies. Setters: 0, BULLC_EINVAL (a NULL or bad value, settings unchanged)
 * or BULLC_ENOMEM. Any thread, one at a time. */
typedef struct bullc_tracer_opts bullc_tracer_opts;
/* An exporter: a bounded queue of finished spans and one thread that sends
 * them in batches. Handed to queue and worker settings, which borrow it: it
 * must outlive every handle made with them. */
typedef struct bullc_tracer bullc_tracer;

/* Defaults: no endpoint, service "unknown_service:bullc", sampler
 * parentbased_always_on, queue 2048 spans, batches of 512 every 5000 ms,
 * 10000 ms per export. 0 or BULLC_ENOMEM. */
BULLC_EXPORT int bullc_tracer_opts_new(bullc_tracer_opts **out);
/* NULL is a no-op. */
BULLC_EXPORT void bullc_tracer_opts_free(bullc_tracer_opts *o);
/* Reads the standard variables: OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER
 * (otlp or none), OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (as is) or
 * OTEL_EXPORTER_OTLP_ENDPOINT (+ "/v1/traces"), OTEL_EXPORTER_OTLP[_TRACES]
 * _PROTOCOL (http/json only), _HEADERS, _TIMEOUT, _CERTIFICATE,
 * _CLIENT_CERTIFICATE and _CLIENT_KEY (with an https:// endpoint only), OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and _ARG, OTEL_BSP_
 * SCHEDULE_DELAY, MAX_QUEUE_SIZE and MAX_EXPORT_BATCH_SIZE. *enabled tells
 * whether tracing is configured (an endpoint, not disabled): tracing is off
 * unless it is. 0, or BULLC_EINVAL with a message naming the variable. */
BULLC_EXPORT int bullc_tracer_opts_from_env(bullc_tracer_opts *o, bool *enabled, bullc_error *err);
/* The URL spans are POSTed to, "http://host[:port]/path" or
 * "https://host[:port]/path" (TLS 1.2+, the server's certificate verified
 * against the CA below or the system's store, and its host name checked;
 * never a fallback to plain HTTP). */
BULLC_EXPORT int bullc_tracer_opts_set_endpoint(bullc_tracer_opts *o, const char *url);
/* The CA certificates (a PEM file or a directory of hashed certificates)
 * that verify an https:// endpoint instead of the system's store. */
BULLC_EXPORT int bullc_tracer_opts_set_tls_ca(bullc_tracer_opts *o, const char *path);
/* A client certificate (PEM chain) and its key for an https:// endpoint that
 * asks for one (mutual TLS). */
BULLC_EXPORT int bullc_tracer_opts_set_tls_client_cert(bullc_tracer_opts *o, const char *cert, const char *key);
/* Called when an export fails after the previous one succeeded (or on the
 * first export): once per outage, not once per batch, so a log it writes
 * says once why spans are being dropped. `err` is borrowed for the call and
 * names the endpoint and the cause (a refused certificate, a connection
 * refused, an HTTP status). Runs on the tracer's export thread, never on a
 * loop: it must be thread-safe and quick. NULL (the default): nothing. */
typedef void (*bullc_tracer_error_cb)(const bullc_error *err, void *data);
BULLC_EXPORT void bullc_tracer_opts_set_error_cb(bullc_tracer_opts *o, bullc_tracer_error_cb cb, void *data);
/* The resource's service.name. */
BULLC_EXPORT int bullc_tracer_opts_set_service_name(bullc_tracer_opts *o, const char *name);
/* A resource attribute (a string); a key given again replaces its value. */
BULLC_EXPORT int bullc_tracer_opts_add_resource_attribute(bullc_tracer_opts *o, const char *key, const char *value);
/* A header sent with every export (e.g. an API key). */
BULLC_EXPORT int bullc_tracer_opts_add_header(bullc_tracer_opts *o, const char *name, const char *value);
/* The sampler: a span without a parent is sampled with probability `ratio`
 * (0 to 1, by its trace id); with `parent_based`, a span with a parent
 * follows the parent's sampled flag. An unsampled span is not exported but
 * its context still travels in the job (flag 00), as Node's does. */
BULLC_EXPORT int bullc_tracer_opts_set_sampler(bullc_tracer_opts *o, double ratio, bool parent_based);
/* At most `max_queue` spans wait for export (more are dropped and counted);
 * a batch holds at most `max_batch` and is sent when full or every
 * `delay_ms`; one export may take `timeout_ms` (then its spans are dropped). */
BULLC_EXPORT int bullc_tracer_opts_set_batching(bullc_tracer_opts *o, size_t max_queue, size_t max_batch,
                                                int64_t delay_ms, int64_t timeout_ms);

/* Starts a tracer (its export thread) in *out. BULLC_EINVAL without an
 * endpoint, with one that is not http:// or https://, or with TLS settings
 * and an http:// endpoint; BULLC_ENOMEM; BULLC_ESYS when the
 * thread cannot start. `o` stays the caller's. Any thread. */
BULLC_EXPORT int bullc_tracer_new(bullc_tracer **out, const bullc_tracer_opts *o, bullc_error *err);
/* Exports what is queued (waiting at most the export timeout), stops the
 * thread and frees the tracer. Call it after every handle using it is freed.
 * NULL is a no-op. */
BULLC_EXPORT void bullc_tracer_free(bullc_tracer *t);
/* Spans dropped: the queue was full, or their export failed or timed out.
 * Any thread. */
BULLC_EXPORT uint64_t bullc_tracer_dropped(const bullc_tracer *t);
/* Spans the endpoint accepted (a 2xx answer). Any thread. */
BULLC_EXPORT uint64_t bullc_tracer_exported(const bullc_tracer *t);

#ifdef __cplusplus
}
#endif
#endif
