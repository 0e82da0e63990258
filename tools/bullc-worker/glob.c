/* SPDX-License-Identifier: MIT */
/* --queue-glob: the queues served include every queue Redis holds (a key
 * <prefix>:NAME:meta or <prefix>:NAME:id, as bullc_queue_list finds them
 * with SCAN) whose name matches one of the patterns (fnmatch). Matched at
 * start, every --queue-glob-interval and on SIGHUP. At run time the SCAN
 * runs on libuv's pool: it takes a connection of its own and a round trip
 * per thousand keys, which the loop serving the jobs must not wait for. A
 * change in the names found is applied as SIGHUP applies a new
 * --queues-file (run.c). */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bw.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void bw_glob_names_free(char **names, size_t n) {
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int bw_glob_scan(const bw_config *cfg, const bullc_redis_opts *redis, char ***out, size_t *nout, bullc_error *err) {
    *out = NULL;
    *nout = 0;
    char *json = NULL;
    int rc = bullc_queue_list(redis, cfg->glob_prefix, &json, err);
    if (rc) return rc;
    cJSON *list = cJSON_Parse(json);
    bullc_free(json);
    size_t cap = (size_t)cJSON_GetArraySize(list);
    char **names = calloc(cap ? cap : 1, sizeof *names);
    size_t n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        if (!names || !cJSON_IsString(e) || strchr(e->valuestring, ':')) continue;
        bool match = false;
        for (size_t g = 0; g < cfg->nglobs && !match; g++) match = fnmatch(cfg->globs[g], e->valuestring, 0) == 0;
        if (match && !(names[n++] = strdup(e->valuestring))) rc = BULLC_ENOMEM;
    }
    cJSON_Delete(list);
    if (!list || !names || rc) {
        bw_glob_names_free(names, n);
        snprintf(err->message, sizeof err->message, "out of memory");
        return BULLC_ENOMEM;
    }
    qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    *nout = n;
    return 0;
}

/* ---- at run time ------------------------------------------------------------ */

typedef struct scan {
    uv_work_t req;
    bw_app *app;
    char **names;
    size_t n;
    int rc;
    bullc_error err;
} scan;

static void scan_work(uv_work_t *req) {
    scan *s = req->data;
    s->rc = bw_glob_scan(s->app->cfg, s->app->redis, &s->names, &s->n, &s->err);
}

static bool same_names(char **a, size_t na, char **b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i])) return false;
    return true;
}

static void scan_done(uv_work_t *req, int status) {
    scan *s = req->data;
    bw_app *app = s->app;
    app->glob_scanning = false;
    if (app->shutting_down || status) {
        bw_glob_names_free(s->names, s->n);
    } else if (s->rc) {
        /* Redis away for a while: the queues found before stay served */
        TLOG(TLOG_WARN, "queue-glob", TLOG_S("code", bullc_err_name(s->rc)), TLOG_S("msg", s->err.message));
    } else if (same_names(s->names, s->n, app->found, app->nfound)) {
        bw_glob_names_free(s->names, s->n);
    } else {
        TLOG(TLOG_INFO, "queue-glob", TLOG_I("found", (int64_t)s->n), TLOG_I("was", (int64_t)app->nfound));
        bw_glob_names_free(app->found, app->nfound);
        app->found = s->names;
        app->nfound = s->n;
        bw_app_reload(app);
    }
    free(s);
    /* a SIGHUP came while this one ran: its scan starts now */
    if (app->glob_again && !app->shutting_down) {
        app->glob_again = false;
        bw_glob_rescan(app);
    }
}

void bw_glob_rescan(bw_app *app) {
    if (!app->cfg->nglobs || app->shutting_down) return;
    if (app->glob_scanning) {
        app->glob_again = true;
        return;
    }
    scan *s = calloc(1, sizeof *s);
    if (!s) return;
    s->app = app;
    s->req.data = s;
    if (uv_queue_work(&app->loop, &s->req, scan_work, scan_done)) {
        free(s);
        return;
    }
    app->glob_scanning = true;
}

static void on_glob_timer(uv_timer_t *t) { bw_glob_rescan(t->data); }

void bw_glob_start(bw_app *app) {
    if (!app->cfg->nglobs) return;
    uv_timer_init(&app->loop, &app->glob_timer);
    app->glob_timer.data = app;
    app->glob_timer_inited = true;
    uint64_t every = (uint64_t)app->cfg->glob_interval_ms;
    if (every) uv_timer_start(&app->glob_timer, on_glob_timer, every, every);
}

void bw_glob_stop(bw_app *app) {
    if (app->glob_timer_inited && !uv_is_closing((uv_handle_t *)&app->glob_timer))
        uv_close((uv_handle_t *)&app->glob_timer, NULL);
}
