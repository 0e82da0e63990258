/* SPDX-License-Identifier: MIT */
/* bench_add: the producer side of tools/bench (bullc's public API only).
 *
 *   bench_add --queue Q --mode bulk   --count N [--batch 1000]   bulk add throughput
 *   bench_add --queue Q --mode single --count N [--warmup 50]    sequential adds, latency per call
 *   bench_add --queue Q --mode fill   --count N [--batch 1000]   bulk add, no timing (fills a paused queue)
 *   bench_add --queue Q --mode paced  --count N --interval-us U  one add every U µs, data {"t": µs wall clock}
 *   bench_add --queue Q --mode ping   --count N                  PING round trips (bullc_queue_ping): the floor
 *   --busy-poll US   bullc_redis_opts_set_busy_poll (spin up to US µs for each reply; 0: off)
 *
 * Redis from REDIS_URL (as every bullc program). Every job has the options
 * {"removeOnComplete":true}, as the Node side's. Prints one JSON line. */
#include <bullc/bullc.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted values. */
static double pct(const int64_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return (double)v[k - 1];
}

/* The job data of every workload: small, like a typical notification job. */
static void job_data(char *buf, size_t len, long i) {
    snprintf(buf, len,
             "{\"i\":%ld,\"userId\":\"u%ld\",\"kind\":\"bench\",\"payload\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}",
             i, i % 1000);
}

static void die(const char *what, const bullc_error *err) {
    fprintf(stderr, "bench_add: %s: %s\n", what, err ? err->message : "");
    exit(1);
}

int main(int argc, char **argv) {
    const char *queue_name = NULL, *mode = NULL;
    long count = 1000, batch = 1000, warmup = 50, interval_us = 2000, busy_poll = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_add: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--queue"))
            queue_name = v;
        else if (!strcmp(a, "--mode"))
            mode = v;
        else if (!strcmp(a, "--count"))
            count = strtol(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            batch = strtol(v, NULL, 10);
        else if (!strcmp(a, "--warmup"))
            warmup = strtol(v, NULL, 10);
        else if (!strcmp(a, "--interval-us"))
            interval_us = strtol(v, NULL, 10);
        else if (!strcmp(a, "--busy-poll"))
            busy_poll = strtol(v, NULL, 10);
        else {
            fprintf(stderr, "bench_add: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (!queue_name || !mode || count <= 0 || batch <= 0) {
        fprintf(stderr, "usage: bench_add --queue Q --mode bulk|single|fill|paced --count N [--batch N] "
                        "[--warmup N] [--interval-us U] [--busy-poll US]\n");
        return 2;
    }

    bullc_error err = {0};
    bullc_queue *q;
    bullc_redis_opts *ro;
    if (bullc_redis_opts_new(&ro) || bullc_redis_opts_from_env(ro, &err) < 0) die("Redis settings", &err);
    if (bullc_redis_opts_set_busy_poll(ro, (int)busy_poll)) die("--busy-poll: 0 to 100000", NULL);
    bullc_queue_opts *qo;
    if (bullc_queue_opts_new(&qo) || bullc_queue_opts_set_redis(qo, ro)) die("bullc_queue_opts", NULL);
    if (bullc_queue_new(&q, queue_name, qo, &err)) die("bullc_queue_new", &err);
    bullc_queue_opts_free(qo);
    bullc_redis_opts_free(ro);
    bullc_job_opts *opts;
    if (bullc_job_opts_new(&opts)) die("bullc_job_opts_new", NULL);
    if (bullc_job_opts_merge_json(opts, "{\"removeOnComplete\":true}", &err)) die("options", &err);
    if (bullc_queue_ping(q, &err)) die("ping", &err);
    char data[256];

    if (!strcmp(mode, "bulk") || !strcmp(mode, "fill")) {
        bullc_bulk_job *jobs = calloc((size_t)batch, sizeof *jobs);
        char(*datas)[256] = calloc((size_t)batch, sizeof *datas);
        if (!jobs || !datas) die("out of memory", NULL);
        bool timed = !strcmp(mode, "bulk");
        if (timed) { /* warm-up: connection, queue meta, script cache; not counted */
            for (long j = 0; j < 10; j++) {
                job_data(datas[j], sizeof datas[j], -1 - j);
                jobs[j] = (bullc_bulk_job){.name = "bench", .data_json = datas[j], .opts = opts};
            }
            if (bullc_queue_add_bulk(q, jobs, 10, &err)) die("add_bulk (warm-up)", &err);
            for (long j = 0; j < 10; j++) bullc_free(jobs[j].id);
        }
        int64_t t0 = mono_ns();
        for (long done = 0; done < count;) {
            long n = count - done < batch ? count - done : batch;
            for (long j = 0; j < n; j++) {
                job_data(datas[j], sizeof datas[j], done + j);
                jobs[j] = (bullc_bulk_job){.name = "bench", .data_json = datas[j], .opts = opts};
            }
            if (bullc_queue_add_bulk(q, jobs, (size_t)n, &err)) die("add_bulk", &err);
            for (long j = 0; j < n; j++) bullc_free(jobs[j].id);
            done += n;
        }
        double s = (double)(mono_ns() - t0) / 1e9;
        printf("{\"mode\":\"%s\",\"count\":%ld,\"batch\":%ld,\"seconds\":%.6f,\"jobs_per_s\":%.1f}\n", mode, count,
               batch, s, (double)count / s);
        free(jobs);
        free(datas);
    } else if (!strcmp(mode, "single") || !strcmp(mode, "ping")) {
        bool ping = !strcmp(mode, "ping");
        int64_t *lat = calloc((size_t)count, sizeof *lat);
        if (!lat) die("out of memory", NULL);
        for (long i = -warmup; i < count; i++) {
            job_data(data, sizeof data, i);
            int64_t t0 = mono_ns();
            char *id = NULL;
            if (ping) {
                if (bullc_queue_ping(q, &err)) die("ping", &err);
            } else if (bullc_queue_add(q, "bench", data, opts, &id, &err) < 0) {
                die("add", &err);
            }
            int64_t dt = mono_ns() - t0;
            bullc_free(id);
            if (i >= 0) lat[i] = dt;
        }
        double sum = 0;
        for (long i = 0; i < count; i++) sum += (double)lat[i];
        qsort(lat, (size_t)count, sizeof *lat, cmp_i64);
        printf("{\"mode\":\"%s\",\"count\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,\"mean_us\":%.1f,\"max_us\":%.1f}\n",
               mode, count, pct(lat, (size_t)count, 50) / 1e3, pct(lat, (size_t)count, 99) / 1e3,
               sum / (double)count / 1e3, (double)lat[count - 1] / 1e3);
        free(lat);
    } else if (!strcmp(mode, "paced")) {
        /* one add every interval_us (absolute schedule, so a slow add does not shift the rest) */
        int64_t next = mono_ns();
        for (long i = 0; i < count; i++) {
            next += (int64_t)interval_us * 1000;
            snprintf(data, sizeof data, "{\"t\":%" PRId64 ",\"i\":%ld}", wall_us(), i);
            char *id = NULL;
            if (bullc_queue_add(q, "lat", data, opts, &id, &err) < 0) die("add", &err);
            bullc_free(id);
            int64_t now = mono_ns();
            if (next > now) {
                struct timespec ts = {(time_t)((next - now) / 1000000000), (long)((next - now) % 1000000000)};
                while (nanosleep(&ts, &ts) && errno == EINTR) {
                }
            }
        }
        printf("{\"mode\":\"paced\",\"count\":%ld}\n", count);
    } else {
        fprintf(stderr, "bench_add: unknown mode %s\n", mode);
        return 2;
    }
    bullc_job_opts_free(opts);
    bullc_queue_free(q);
    return 0;
}
