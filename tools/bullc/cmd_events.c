/* SPDX-License-Identifier: MIT */
/* bullc events QUEUE [--from ID] [--follow]: the queue's events stream, one
 * event per line; --follow keeps listening with the libuv QueueEvents
 * listener until SIGINT/SIGTERM (exit 0). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <uv.h>

#include "cli.h"

/* One event: {"id":..., "event":..., fields...} with --json, else
 * "<id> <event> name=value ...". */
static void print_event(cli *c, const char *id, const char *event, const bullc_event_field *fields, size_t n) {
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "event", event);
        for (size_t i = 0; i < n; i++) cJSON_AddStringToObject(o, fields[i].name, fields[i].value);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        printf("%s %s", id, event);
        for (size_t i = 0; i < n; i++) printf(" %s=%s", fields[i].name, fields[i].value);
        printf("\n");
    }
    fflush(stdout);
}

/* Prints the JSON array of bullc_queue_get_events line by line. */
static void print_stored(cli *c, const char *json) {
    cJSON *a = cJSON_Parse(json);
    for (cJSON *e = a ? a->child : NULL; e; e = e->next) {
        if (c->json) {
            char *s = cJSON_PrintUnformatted(e);
            printf("%s\n", s ? s : "{}");
            free(s);
            continue;
        }
        cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *ev = cJSON_GetObjectItemCaseSensitive(e, "event");
        printf("%s %s", cJSON_IsString(id) ? id->valuestring : "?", cJSON_IsString(ev) ? ev->valuestring : "");
        for (cJSON *f = e->child; f; f = f->next)
            if (f != id && f != ev) printf(" %s=%s", f->string, cJSON_IsString(f) ? f->valuestring : "");
        printf("\n");
    }
    cJSON_Delete(a);
    fflush(stdout);
}

typedef struct follow {
    cli *c;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    bullc_queue_events *qe;
} follow;

static void on_event(bullc_queue_events *qe, const bullc_event *ev, void *data) {
    (void)qe;
    follow *f = data;
    print_event(f->c, ev->id, ev->name, ev->fields, ev->nfields);
}

static void on_ready(bullc_queue_events *qe, const char *after_id, void *data) {
    (void)data;
    (void)qe;
    fprintf(stderr, "bullc: following events after %s\n", after_id);
}

static void on_error(bullc_queue_events *qe, int code, const char *message, void *data) {
    (void)qe;
    (void)data;
    fprintf(stderr, "bullc: %s (%s); retrying\n", message, bullc_err_name(code));
}

static void on_closed(bullc_queue_events *qe, void *data) {
    (void)qe;
    (void)data;
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    follow *f = s->data;
    bullc_queue_events_close(f->qe, on_closed, f);
    uv_close((uv_handle_t *)&f->sigint, NULL);
    uv_close((uv_handle_t *)&f->sigterm, NULL);
}

static int follow_events(cli *c, const char *queue, const char *from) {
    bullc_redis_opts *ro = NULL;
    int rc = cli_redis_opts(c, &ro);
    if (rc) return rc;
    follow f = {.c = c};
    if (uv_loop_init(&f.loop)) {
        bullc_redis_opts_free(ro);
        return cli_fail(EXIT_FAIL, "cannot create an event loop");
    }
    bullc_queue_events_callbacks cbs = {on_event, on_ready, on_error};
    bullc_error err = {0};
    bullc_queue_events_opts *o = NULL;
    int r = bullc_queue_events_opts_new(&o);
    if (!r) r = bullc_queue_events_opts_set_redis(o, ro);
    if (!r) r = bullc_queue_events_opts_set_prefix(o, c->prefix);
    if (!r) r = bullc_queue_events_opts_set_bullmq_version(o, c->bullmq_version);
    if (!r) r = bullc_queue_events_opts_set_last_event_id(o, from);
    if (!r)
        r = bullc_queue_events_new(&f.qe, &f.loop, queue, o, &cbs, &f, &err);
    else
        snprintf(err.message, sizeof err.message, "%s", bullc_strerror(r));
    bullc_queue_events_opts_free(o);
    bullc_redis_opts_free(ro);
    if (r) {
        uv_loop_close(&f.loop);
        return cli_fail_err(r, &err);
    }
    uv_signal_init(&f.loop, &f.sigint);
    uv_signal_init(&f.loop, &f.sigterm);
    f.sigint.data = f.sigterm.data = &f;
    uv_signal_start(&f.sigint, on_signal, SIGINT);
    uv_signal_start(&f.sigterm, on_signal, SIGTERM);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    bullc_queue_events_free(f.qe);
    if (uv_loop_close(&f.loop)) return cli_fail(EXIT_FAIL, "the event loop did not close cleanly");
    return 0;
}

/* "MS" or "MS-SEQ", or "$" (only new events). */
static bool valid_id(const char *s) {
    if (!strcmp(s, "$")) return true;
    size_t n = strspn(s, "0123456789");
    if (!n || n > 19) return false;
    if (!s[n]) return true;
    size_t m = strspn(s + n + 1, "0123456789");
    return s[n] == '-' && m && m <= 19 && !s[n + 1 + m];
}

int cmd_events(cli *c) {
    cli_flag flags[] = {{"from", true, NULL, 0}, {"follow", false, NULL, 0}, {NULL, false, NULL, 0}};
    const char *pos[1] = {0};
    int npos, rc = cli_parse_args(c, flags, pos, &npos, 1, NULL, NULL);
    if (rc) return rc;
    if (npos != 1) return cli_fail(EXIT_USAGE, "usage: bullc events QUEUE [--from ID] [--follow]");
    const char *from = flags[0].set ? flags[0].value : NULL;
    if (from && !valid_id(from)) return cli_fail(EXIT_USAGE, "--from: '%s' is not a stream id (MS or MS-SEQ)", from);
    bullc_queue *q = NULL;
    if ((rc = cli_open_admin(c, pos[0], &q))) return rc;
    bullc_error err = {0};
    int r;
    if (flags[1].set) {
        /* fail fast (exit 3) when Redis is not there; once following, the
         * listener reconnects by itself */
        if ((r = bullc_queue_ping(q, &err))) rc = cli_fail_err(r, &err);
        bullc_queue_free(q);
        return rc ? rc : follow_events(c, pos[0], from);
    }
    char *json = NULL;
    r = bullc_queue_get_events(q, from, 0, &json, &err);
    if (r)
        rc = cli_fail_err(r, &err);
    else
        print_stored(c, json);
    bullc_free(json);
    bullc_queue_free(q);
    return rc;
}
