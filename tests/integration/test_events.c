/* SPDX-License-Identifier: MIT */
/* The QueueEvents listener (events.h) on a libuv loop against a real
 * redis-server: it delivers exactly the stream's entries, in order, with
 * their stored fields; it resumes after a dropped connection without losing
 * or repeating an entry; it closes clean from anywhere. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "testutil.h"

#define MAXEV 512

typedef struct fx {
    uv_loop_t loop;
    bullc_queue_events *qe;
    bullc_queue *q;
    const char *prefix;
    char *got[MAXEV];
    int ngot;
    char after[8][64];
    int ready, errors, last_error, closed;
    uv_timer_t guard, tick;
    bool finishing, guard_fired;
    int step;
    void (*on_tick)(struct fx *f);
    bool close_in_event;
    bullc_worker *w;
    int w_closed, done;
    char first_id[64];
} fx;

/* "id event name=value ..." */
static char *fmt_event(const char *id, const char *event, const bullc_event_field *f, size_t n) {
    size_t cap = 256;
    for (size_t i = 0; i < n; i++) cap += strlen(f[i].name) + f[i].value_len + 2;
    char *s = malloc(cap);
    int len = snprintf(s, cap, "%s %s", id, event);
    for (size_t i = 0; i < n; i++) len += snprintf(s + len, cap - (size_t)len, " %s=%s", f[i].name, f[i].value);
    return s;
}

/* The stream's entries after `after` (NULL: all), formatted as fmt_event does. */
static int stream(const char *prefix, const char *after, char **out, int max) {
    redisContext *c = tu_redis();
    char key[128];
    snprintf(key, sizeof key, "%s:q:events", prefix);
    redisReply *r = tu_cmd(c, "XRANGE %s - +", key);
    int n = 0;
    bool on = after == NULL;
    for (size_t i = 0; i < r->elements && n < max; i++) {
        const redisReply *e = r->element[i];
        if (!on) {
            on = !strcmp(e->element[0]->str, after);
            continue;
        }
        const redisReply *f = e->element[1];
        bullc_event_field fields[32];
        size_t nf = 0;
        const char *name = "";
        for (size_t k = 0; k + 1 < f->elements; k += 2) {
            if (!strcmp(f->element[k]->str, "event") && !*name) {
                name = f->element[k + 1]->str;
                continue;
            }
            fields[nf++] = (bullc_event_field){f->element[k]->str, f->element[k + 1]->str, f->element[k + 1]->len};
        }
        out[n++] = fmt_event(e->element[0]->str, name, fields, nf);
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

static void assert_same_as_stream(fx *f, const char *after) {
    char *want[MAXEV];
    int n = stream(f->prefix, after, want, MAXEV);
    for (int i = 0; i < n && i < f->ngot; i++) cr_expect_str_eq(f->got[i], want[i], "event %d", i);
    cr_assert_eq(f->ngot, n, "delivered %d events, the stream has %d", f->ngot, n);
    for (int i = 0; i < n; i++) free(want[i]);
}

static void on_closed(bullc_queue_events *qe, void *data);

static void on_event(bullc_queue_events *qe, const bullc_event *ev, void *data) {
    fx *f = data;
    cr_assert_eq(qe, f->qe);
    cr_assert(!f->closed, "no event after close");
    if (f->ngot < MAXEV) f->got[f->ngot++] = fmt_event(ev->id, ev->name, ev->fields, ev->nfields);
    cr_assert_str_eq(bullc_queue_events_last_id(qe), ev->id, "the id is recorded before the callback");
    if (ev->nfields && !strcmp(ev->fields[0].name, "jobId"))
        cr_assert_eq(bullc_event_get(ev, "jobId"), ev->fields[0].value);
    cr_assert_null(bullc_event_get(ev, "event"), "the event name is not a field");
    if (f->close_in_event) bullc_queue_events_close(qe, on_closed, f);
}

static void on_ready(bullc_queue_events *qe, const char *after, void *data) {
    fx *f = data;
    (void)qe;
    if (f->ready < 8) snprintf(f->after[f->ready], sizeof f->after[0], "%s", after);
    f->ready++;
}

static void on_error(bullc_queue_events *qe, int code, const char *message, void *data) {
    fx *f = data;
    (void)qe;
    cr_log_info("listener error: %s", message);
    f->errors++;
    f->last_error = code;
}

static void on_closed(bullc_queue_events *qe, void *data) {
    fx *f = data;
    (void)qe;
    f->closed++;
}

static void on_worker_closed(bullc_worker *w, void *data) {
    (void)w;
    ((fx *)data)->w_closed++;
}

/* Closes everything; the loop then ends by itself. */
static void finish(fx *f) {
    if (f->finishing) return;
    f->finishing = true;
    bullc_queue_events_close(f->qe, on_closed, f);
    if (f->w) bullc_worker_close(f->w, false, 5000, on_worker_closed, f);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_close((uv_handle_t *)&f->guard, NULL);
}

static void guard_cb(uv_timer_t *t) {
    fx *f = t->data;
    f->guard_fired = true;
    cr_log_error("guard fired at step %d: got %d events, ready %d, errors %d", f->step, f->ngot, f->ready, f->errors);
    finish(f);
}

static void tick_cb(uv_timer_t *t) {
    fx *f = t->data;
    if (f->on_tick && !f->finishing) f->on_tick(f);
}

static bullc_redis_opts *redis_opts(void) {
    bullc_redis_opts *ro = tu_redis_opts();
    return ro;
}

/* A fixture: a loop, a fresh prefix and a queue handle on queue "q". */
static void fx_init(fx *f) {
    memset(f, 0, sizeof *f);
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    f->prefix = strdup(tu_prefix());
    f->q = tu_queue("q", f->prefix);
}

/* Then a listener on "q" (opts may be NULL) and a ticker calling on_tick. */
static void fx_listen(fx *f, bullc_queue_events_opts *o, void (*on_tick)(fx *f)) {
    if (!o) o = tu_eopts();
    bullc_redis_opts *ro = redis_opts();
    bullc_queue_events_opts_set_redis(o, ro);
    bullc_queue_events_opts_set_prefix(o, f->prefix);
    bullc_queue_events_callbacks cbs = {on_event, on_ready, on_error};
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_events_new(&f->qe, &f->loop, "q", o, &cbs, f, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    f->on_tick = on_tick;
    uv_timer_init(&f->loop, &f->guard);
    uv_timer_init(&f->loop, &f->tick);
    f->guard.data = f->tick.data = f;
    uv_timer_start(&f->guard, guard_cb, 15000, 0);
    uv_timer_start(&f->tick, tick_cb, 20, 20);
}

static void fx_start(fx *f, bullc_queue_events_opts *o, void (*on_tick)(fx *f)) {
    fx_init(f);
    fx_listen(f, o, on_tick);
}

/* Runs the loop to the end and checks that it closed clean. */
static void fx_run(fx *f) {
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_assert_eq(f->closed, 1, "the close callback runs once");
    cr_assert_eq(uv_loop_close(&f->loop), 0, "the loop must close clean (no handle left)");
    bullc_queue_events_free(f->qe);
    bullc_worker_free(f->w);
    cr_assert(!f->guard_fired, "timed out");
}

static void fx_free(fx *f) {
    for (int i = 0; i < f->ngot; i++) free(f->got[i]);
    bullc_queue_free(f->q);
    free((void *)f->prefix);
}

static long long xlen(const char *prefix) {
    redisContext *c = tu_redis();
    redisReply *r = tu_cmd(c, "XLEN %s:q:events", prefix);
    long long n = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* ---- jobs processed by a bullc worker -------------------------------------------------- */

static void processor(bullc_job *job, void *data) {
    (void)data;
    const char *name = bullc_job_name(job);
    if (!strcmp(name, "bad")) {
        bullc_job_fail(job, "it failed", BULLC_FAIL_RETRY);
        return;
    }
    if (!strcmp(name, "prog")) cr_assert_eq(bullc_job_update_progress(job, "{\"pct\":50}", NULL, NULL), 0);
    bullc_job_complete(job, "{\"r\":[1,\"two\"]}");
}

static void w_completed(bullc_worker *w, const bullc_job *job, const char *res, void *data) {
    (void)w, (void)job, (void)res;
    ((fx *)data)->done++;
}

static void w_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    (void)w, (void)job, (void)reason;
    if (!will_retry) ((fx *)data)->done++;
}

static void worker_jobs_tick(fx *f) {
    bullc_error err = {0};
    if (f->step == 0 && f->ready == 1) {
        f->step = 1;
        bullc_free(tu_add(f->q, "ok", "{\"n\":1}", NULL));
        bullc_free(tu_add(f->q, "prog", "{\"n\":2}", NULL));
        bullc_free(tu_add(f->q, "bad", "{\"n\":3}", "{\"attempts\":2}"));
        bullc_free(tu_add(f->q, "late", "{\"n\":4}", "{\"delay\":150}"));
        const char *fields[] = {"k", "v w", "empty", ""};
        cr_assert_eq(bullc_queue_publish_event(f->q, "custom-event", fields, 2, 0, NULL, &err), 0, "%s", err.message);
        bullc_worker_opts *o = tu_wopts();
        bullc_redis_opts *ro = redis_opts();
        bullc_worker_opts_set_redis(o, ro);
        bullc_worker_opts_set_prefix(o, f->prefix);
        bullc_worker_opts_set_processor(o, processor, NULL);
        bullc_worker_opts_set_drain_delay(o, 1);
        bullc_worker_events ev = {.completed = w_completed, .failed = w_failed};
        cr_assert_eq(bullc_worker_new(&f->w, &f->loop, "q", o, &ev, f, &err), 0, "%s", err.message);
        bullc_redis_opts_free(ro);
    } else if (f->step == 1 && f->done == 4) {
        f->step = 2;
    } else if (f->step == 2 && f->ngot > 0 && f->ngot == xlen(f->prefix) - 2) {
        finish(f);
    }
}

Test(events, delivers_the_streams_entries_for_jobs_of_a_bullc_worker) {
    fx f;
    fx_start(&f, NULL, worker_jobs_tick);
    /* entries written before the listener starts from "$" are not delivered */
    bullc_free(tu_add(f.q, "before", "{}", "{\"delay\":600000}"));
    char *before[4];
    cr_assert_eq(stream(f.prefix, NULL, before, 4), 2);
    fx_run(&f);
    char last_before[64];
    sscanf(before[1], "%63s", last_before);
    cr_assert_str_eq(f.after[0], last_before, "ready reports the stream's last id as the start");
    assert_same_as_stream(&f, last_before);
    static const char *const kinds[] = {" added ",
                                        " waiting ",
                                        " active ",
                                        " progress ",
                                        " completed ",
                                        " failed ",
                                        " retries-exhausted ",
                                        " delayed ",
                                        " custom-event k=v w empty="};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        bool seen = false;
        for (int i = 0; i < f.ngot && !seen; i++) seen = strstr(f.got[i], kinds[k]) != NULL;
        cr_assert(seen, "a%s event was delivered", kinds[k]);
    }
    for (int i = 0; i < 2; i++) free(before[i]);
    cr_assert_eq(f.errors, 0);
    fx_free(&f);
}

/* ---- reconnects ------------------------------------------------------------------------- */

/* CLIENT KILL of the listener's connection (named "<prefix>:cQ==:qe"). */
static void kill_listener(const char *prefix) {
    char name[128];
    snprintf(name, sizeof name, "name=%s:cQ==:qe ", prefix);
    redisContext *c = tu_redis();
    redisReply *r = tu_cmd(c, "CLIENT LIST");
    const char *line = strstr(r->str, name);
    cr_assert(line, "the listener's connection is named as Node names QueueEvents");
    while (line > r->str && line[-1] != '\n') line--;
    long long id = strtoll(line + 3, NULL, 10); /* "id=" */
    freeReplyObject(r);
    r = tu_cmd(c, "CLIENT KILL ID %lld", id);
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}

static void reconnect_tick(fx *f) {
    if (f->step == 0 && f->ready == 1) {
        f->step = 1;
        bullc_free(tu_add(f->q, "a", "{}", NULL));
    } else if (f->step == 1 && f->ngot == 2) {
        f->step = 2;
        kill_listener(f->prefix);
        bullc_free(tu_add(f->q, "b", "{}", NULL)); /* written while the listener is away */
    } else if (f->step == 2 && f->ready == 2 && f->ngot == 4) {
        f->step = 3;
        bullc_free(tu_add(f->q, "c", "{\"x\":1}", "{\"priority\":1}"));
    } else if (f->step == 3 && f->ngot == 6) {
        finish(f);
    }
}

Test(events, resumes_after_the_last_entry_when_the_connection_drops) {
    fx f;
    fx_start(&f, NULL, reconnect_tick);
    fx_run(&f);
    assert_same_as_stream(&f, NULL);
    cr_assert_geq(f.errors, 1, "the drop is reported");
    cr_assert_eq(f.last_error, BULLC_ECONN);
    char second[64];
    sscanf(f.got[1], "%63s", second);
    cr_assert_str_eq(f.after[1], second, "resumed after the last entry delivered");
    cr_assert_str_eq(f.after[0], "0-0", "an empty stream starts from 0-0");
    fx_free(&f);
}

/* ---- closing ------------------------------------------------------------------------------- */

static void close_in_event_tick(fx *f) {
    if (f->closed) {
        uv_close((uv_handle_t *)&f->tick, NULL);
        uv_close((uv_handle_t *)&f->guard, NULL);
        f->finishing = true;
    }
}

Test(events, close_from_an_event_callback_stops_delivery) {
    fx f;
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_last_event_id(o, "0-0");
    fx_init(&f);
    for (int i = 0; i < 3; i++) bullc_free(tu_add(f.q, "x", "{}", NULL));
    f.close_in_event = true;
    fx_listen(&f, o, close_in_event_tick);
    fx_run(&f);
    cr_assert_eq(f.ngot, 1, "one event, then nothing");
    fx_free(&f);
}

static void close_cb_count(bullc_queue_events *qe, void *data) {
    (void)qe;
    (*(int *)data)++;
}

Test(events, close_before_running_and_twice) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_autorun(o, false);
    bullc_redis_opts *ro = redis_opts();
    bullc_queue_events_opts_set_redis(o, ro);
    bullc_queue_events *qe = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_events_new(&qe, &loop, "q", o, NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_str_eq(bullc_queue_events_last_id(qe), "$");
    int closed = 0, second = 0;
    bullc_queue_events_close(qe, close_cb_count, &closed);
    bullc_queue_events_close(qe, close_cb_count, &second);
    cr_assert_eq(bullc_queue_events_run(qe), BULLC_ECLOSED);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(closed, 1);
    cr_assert_eq(second, 0, "a second close does nothing");
    cr_assert_eq(uv_loop_close(&loop), 0);
    bullc_queue_events_free(qe);
    /* invalid arguments */
    cr_assert_eq(bullc_queue_events_new(&qe, &loop, "a:b", o, NULL, NULL, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_events_new(&qe, NULL, "q", o, NULL, NULL, &err), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_events_opts_set_blocking_timeout(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_queue_events_opts_set_last_event_id(o, ""), BULLC_EINVAL);
    bullc_redis_opts_free(ro);
}

/* ---- autorun, naming, errors, short blocks ------------------------------------------------------- */

static bool listener_connected(const char *prefix) {
    char name[128];
    snprintf(name, sizeof name, "name=%s:cQ==:qe ", prefix);
    redisContext *c = tu_redis();
    redisReply *r = tu_cmd(c, "CLIENT LIST");
    bool found = strstr(r->str, name) != NULL;
    freeReplyObject(r);
    redisFree(c);
    return found;
}

static void autorun_tick(fx *f) {
    f->step++;
    if (f->step == 10) {
        cr_assert_eq(f->ready, 0, "not started without run");
        cr_assert(!listener_connected(f->prefix));
        cr_assert_eq(bullc_queue_events_run(f->qe), 0);
        cr_assert_eq(bullc_queue_events_run(f->qe), BULLC_EINVAL, "already running");
    } else if (f->step > 10 && f->ready == 1 && f->ngot == 0 && f->step < 1000) {
        cr_assert(listener_connected(f->prefix));
        bullc_free(tu_add(f->q, "x", "{}", NULL));
        f->step = 1000;
    } else if (f->step > 1000 && f->ngot == 2) {
        finish(f);
    }
}

Test(events, autorun_off_waits_for_run) {
    fx f;
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_autorun(o, false);
    fx_start(&f, o, autorun_tick);
    fx_run(&f);
    assert_same_as_stream(&f, NULL);
    fx_free(&f);
}

static void error_tick(fx *f) {
    char key[128];
    snprintf(key, sizeof key, "%s:q:events", f->prefix);
    if (f->step == 0 && f->errors >= 1) {
        f->step = 1;
        cr_assert_eq(f->last_error, BULLC_EREDIS);
        redisContext *c = tu_redis();
        freeReplyObject(tu_cmd(c, "DEL %s", key));
        redisFree(c);
        bullc_free(tu_add(f->q, "x", "{}", NULL));
    } else if (f->step == 1 && f->ngot == 2) {
        finish(f);
    }
}

Test(events, an_error_reply_is_reported_and_retried) {
    fx f;
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_last_event_id(o, "0-0");
    fx_init(&f);
    redisContext *c = tu_redis();
    freeReplyObject(tu_cmd(c, "SET %s:q:events not-a-stream", f.prefix)); /* XREAD: WRONGTYPE */
    redisFree(c);
    fx_listen(&f, o, error_tick);
    fx_run(&f);
    assert_same_as_stream(&f, NULL);
    fx_free(&f);
}

static void short_block_tick(fx *f) {
    f->step++;
    if (f->step == 25 && f->ready == 1) { /* 500 ms: ten 50 ms blocks timed out */
        bullc_free(tu_add(f->q, "x", "{}", NULL));
    } else if (f->step > 25 && f->ngot == 2) {
        finish(f);
    }
}

Test(events, short_blocking_timeouts_keep_listening) {
    fx f;
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_blocking_timeout(o, 50);
    fx_start(&f, o, short_block_tick);
    fx_run(&f);
    assert_same_as_stream(&f, NULL);
    cr_assert_eq(f.errors, 0, "a BLOCK timeout is not an error");
    cr_assert_eq(f.ready, 1, "and does not reconnect");
    fx_free(&f);
}
