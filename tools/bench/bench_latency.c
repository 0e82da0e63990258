/* SPDX-License-Identifier: MIT */
/* bench_latency: add -> processor start latency of bullc's worker library
 * (public API only). A worker at --concurrency C (1) with an asynchronous
 * processor that reads data.t (the producer's wall clock in µs, taken just
 * before its add call), records now - t and completes the job at once.
 *
 *   bench_latency --queue Q --count N [--skip K] [--concurrency C]
 *
 * Prints {"ready":true} on stdout once connected, then, after K + N jobs,
 * the percentiles of the last N as one JSON line, and exits. */
#include <bullc/bullc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static int64_t *lat;
static long count = 1000, skip = 10, seen;
static bullc_worker *worker;
static uv_signal_t sigterm;

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const int64_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (double)v[k - 1];
}

static void closed(bullc_worker *w, void *data) {
    (void)w, (void)data;
    if (!uv_is_closing((uv_handle_t *)&sigterm)) uv_close((uv_handle_t *)&sigterm, NULL);
}

static void process(bullc_job *job, void *data) {
    int64_t now = wall_us();
    (void)data;
    const char *t = strstr(bullc_job_data(job), "\"t\":");
    if (t && seen < skip + count) {
        int64_t d = now - strtoll(t + 4, NULL, 10);
        if (seen >= skip) lat[seen - skip] = d;
        seen++;
    }
    bullc_job_complete(job, NULL);
    if (seen == skip + count) {
        seen++; /* once */
        bullc_worker_close(worker, false, 5000, closed, NULL);
    }
}

static void ready(bullc_worker *w, void *data) {
    (void)w, (void)data;
    printf("{\"ready\":true}\n");
    fflush(stdout);
}

static void on_error(bullc_worker *w, int code, const char *msg, void *data) {
    (void)w, (void)data;
    fprintf(stderr, "bench_latency: worker error %s: %s\n", bullc_err_name(code), msg);
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)s, (void)signum;
    bullc_worker_close(worker, true, 0, closed, NULL);
}

int main(int argc, char **argv) {
    const char *queue = NULL;
    int concurrency = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--queue"))
            queue = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            count = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--skip"))
            skip = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--concurrency"))
            concurrency = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_latency: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (!queue || count <= 0 || skip < 0 || concurrency < 1) {
        fprintf(stderr, "usage: bench_latency --queue Q --count N [--skip K] [--concurrency C]\n");
        return 2;
    }
    if (!(lat = calloc((size_t)count, sizeof *lat))) return 1;
    uv_loop_t *loop = uv_default_loop();
    bullc_worker_opts *o = NULL;
    if (bullc_worker_opts_new(&o) || bullc_worker_opts_set_processor(o, process, NULL) ||
        bullc_worker_opts_set_concurrency(o, concurrency))
        return 1;
    bullc_worker_events ev = {.ready = ready, .error = on_error};
    bullc_error err = {0};
    int rc = bullc_worker_new(&worker, loop, queue, o, &ev, NULL, &err);
    bullc_worker_opts_free(o);
    if (rc) {
        fprintf(stderr, "bench_latency: %s\n", err.message);
        return 1;
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_unref((uv_handle_t *)&sigterm);
    uv_run(loop, UV_RUN_DEFAULT);
    bullc_worker_free(worker);
    uv_loop_close(loop);
    long n = seen > skip ? (seen - skip > count ? count : seen - skip) : 0;
    if (n < count) {
        fprintf(stderr, "bench_latency: stopped after %ld of %ld jobs\n", n, count);
        return 1;
    }
    double sum = 0;
    for (long i = 0; i < n; i++) sum += (double)lat[i];
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    printf("{\"count\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f}\n", n,
           pct(lat, (size_t)n, 50), pct(lat, (size_t)n, 99), sum / (double)n, (double)lat[n - 1]);
    free(lat);
    return 0;
}
