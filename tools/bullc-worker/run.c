/* SPDX-License-Identifier: MIT */
/* The running program: one bullc_worker per queue on one loop, their events
 * as log lines, and the signals (SIGINT/SIGTERM drain, a second one forces,
 * SIGHUP reopens the log and reads the configuration again: concurrency,
 * queues added and removed; SIGUSR1 cancels every job in process). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bw.h"

#define HARD_EXIT_MS 3000 /* after a forced shutdown, a plugin still running cannot delay the exit longer */

/* ---- worker events -------------------------------------------------------------- */

static void ev_active(bullc_worker *w, const bullc_job *job, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_INFO, "active", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_SN("name", bullc_job_name(job), bullc_job_name_len(job)),
         TLOG_I("attempt", bullc_job_attempts_made(job) + 1));
}

static int64_t duration(const bullc_job *job) {
    int64_t on = bullc_job_processed_on(job);
    return on > 0 ? tlog_now_ms() - on : 0;
}

static void ev_completed(bullc_worker *w, const bullc_job *job, const char *result, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_INFO, "completed", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_SN("name", bullc_job_name(job), bullc_job_name_len(job)), TLOG_I("duration_ms", duration(job)));
    TLOG(TLOG_DEBUG, "result", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_J("result", result));
}

static void ev_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_WARN, "failed", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_SN("name", bullc_job_name(job), bullc_job_name_len(job)),
         TLOG_I("attempt", bullc_job_attempts_made(job) + 1), TLOG_B("will_retry", will_retry),
         TLOG_I("duration_ms", duration(job)), TLOG_S("reason", reason));
}

static void ev_progress(bullc_worker *w, const bullc_job *job, const char *progress, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_DEBUG, "progress", TLOG_S("queue", q->cfg->name), TLOG_S("id", bullc_job_id(job)),
         TLOG_J("progress", progress));
}

static void ev_stalled(bullc_worker *w, const char *id, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_WARN, "stalled", TLOG_S("queue", q->cfg->name), TLOG_S("id", id),
         TLOG_S("msg", "moved back to wait (or failed) by the stalled-jobs check"));
}

static void ev_drained(bullc_worker *w, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_INFO, "drained", TLOG_S("queue", q->cfg->name));
}

static void graceful(bw_app *app, const char *why);

static void ev_error(bullc_worker *w, int code, const char *message, void *data) {
    bw_queue *q = data;
    (void)w;
    TLOG(TLOG_ERROR, "error", TLOG_S("queue", q->cfg->name), TLOG_S("code", bullc_err_name(code)),
         TLOG_S("msg", message));
    /* the queue's meta.version conflicts with the major spoken to it (a peer
     * of another major took it over): the worker fetches nothing more, and the
     * program stops with the guard rails' code */
    if (code == BULLC_EVERSION && !q->app->shutting_down) {
        q->app->exit_code = BW_EXIT_UNSAFE;
        graceful(q->app, "BullMQ major conflict");
    }
}

/* every queue is connected and fetching: say so once, for supervisors */
static void log_ready(bw_app *app) {
    app->ready_logged = true;
    size_t len = 1;
    /* thousands of queues: the first ones, and how many more */
    size_t listed = app->nqueues > 20 ? 20 : app->nqueues;
    for (size_t i = 0; i < listed; i++) len += strlen(app->queues[i]->cfg->name) + 16;
    len += 32;
    char *names = calloc(1, len), *conc = calloc(1, len);
    bool same = true;
    for (size_t i = 0; i < listed && names && conc; i++) {
        const bw_queue_cfg *c = app->queues[i]->cfg;
        int n = c->s.concurrency ? c->s.concurrency : 1;
        int n0 = app->queues[0]->cfg->s.concurrency ? app->queues[0]->cfg->s.concurrency : 1;
        same = same && n == n0;
        sprintf(names + strlen(names), "%s%s", i ? "," : "", c->name);
        sprintf(conc + strlen(conc), "%s%d", i ? "," : "", n);
    }
    if (names && listed < app->nqueues) sprintf(names + strlen(names), ",... (%zu in all)", app->nqueues);
    if (same && conc) *strchrnul(conc, ',') = '\0';
    TLOG(TLOG_INFO, "ready", TLOG_S("queues", names), TLOG_S("concurrency", conc), TLOG_I("pid", getpid()));
    free(names);
    free(conc);
}

static void ev_ready(bullc_worker *w, void *data) {
    bw_queue *q = data;
    bw_app *app = q->app;
    (void)w;
    if (q->ready_once) {
        TLOG(TLOG_INFO, "reconnected", TLOG_S("queue", q->cfg->name));
        return;
    }
    q->ready_once = true;
    if (app->ready_logged) {
        TLOG(TLOG_INFO, "ready", TLOG_S("queue", q->cfg->name)); /* a queue SIGHUP added */
        return;
    }
    if (++app->ready < app->nqueues - app->nremoved || app->shutting_down) return;
    log_ready(app);
}

/* ---- shutdown --------------------------------------------------------------------- */

static void close_all_handles(bw_app *app);

static void worker_closed(bullc_worker *w, void *data) {
    bw_queue *q = data;
    bw_app *app = q->app;
    q->closed = true;
    /* the library's error event named them; the exit code says so too */
    if (bullc_worker_close_left(w) > 0) app->exit_code = BW_EXIT_ABANDONED;
    TLOG(TLOG_DEBUG, "closed", TLOG_S("queue", q->cfg->name));
    if (--app->open == 0) close_all_handles(app);
}

static void hard_exit(uv_timer_t *t) {
    bw_app *app = t->data;
    (void)app;
    TLOG(TLOG_ERROR, "exit", TLOG_S("msg", "a processor did not return after the forced shutdown; exiting now"));
    tlog_close();
    _exit(BW_EXIT_ABANDONED);
}

static void force(bw_app *app, const char *why) {
    if (app->forced) return;
    app->forced = true;
    app->exit_code = BW_EXIT_ABANDONED;
    TLOG(TLOG_WARN, "shutdown", TLOG_S("mode", "forced"), TLOG_S("why", why),
         TLOG_S("msg", "jobs in process are left for stalled recovery"));
    /* Close with force first: the results the processors report below are
     * then dropped, and the jobs stay active until their locks expire. */
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (q->worker && !q->closed) bullc_worker_close(q->worker, true, 0, worker_closed, q);
    }
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_exec_kill_all(app->queues[i], SIGKILL);
        bw_execp_kill_all(app->queues[i], SIGKILL);
        bw_builtin_abort_all(app->queues[i]);
    }
    if (app->open) uv_timer_start(&app->hard_exit_timer, hard_exit, HARD_EXIT_MS, 0);
}

static void shutdown_timeout(uv_timer_t *t) { force(t->data, "--shutdown-timeout passed"); }

static int start_worker(bw_app *app, bw_queue *q);

static int by_name(const void *a, const void *b) {
    return strcmp((*(const bw_queue_cfg *const *)a)->name, (*(const bw_queue_cfg *const *)b)->name);
}

/* The queues' configurations sorted by name: SIGHUP compares thousands of
 * queues with thousands. NULL when out of memory. */
static const bw_queue_cfg **sorted_cfgs(const bw_queue_cfg *const *in, size_t n) {
    const bw_queue_cfg **v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return NULL;
    memcpy(v, in, n * sizeof *v);
    qsort(v, n, sizeof *v, by_name);
    return v;
}

static const bw_queue_cfg *find_cfg(const bw_queue_cfg **sorted, size_t n, const char *name) {
    bw_queue_cfg key = {.name = name};
    const bw_queue_cfg *k = &key, **hit = bsearch(&k, sorted, n, sizeof *sorted, by_name);
    return hit ? *hit : NULL;
}

/* A queue SIGHUP removed: its jobs in process finished (or were left at the
 * shutdown timeout) and its worker closed. */
static void removed_closed(bullc_worker *w, void *data) {
    bw_queue *q = data;
    bw_app *app = q->app;
    q->closed = true;
    bullc_cancel_listener_remove(app->cancel, w);
    int left = bullc_worker_close_left(w);
    /* what its processors still hold goes with the queue */
    bw_exec_kill_all(q, SIGKILL);
    bw_execp_kill_all(q, SIGKILL);
    bw_builtin_abort_all(q);
    bw_exec_close(q);
    bw_execp_close(q);
    TLOG(left ? TLOG_WARN : TLOG_INFO, "reload", TLOG_S("queue", q->cfg->name), TLOG_S("action", "removed"),
         TLOG_I("left", left));
    if (--app->open == 0 && app->shutting_down) close_all_handles(app);
}

static void apply_concurrency(bw_queue *q, const bw_queue_cfg *now) {
    int n = now->s.concurrency ? now->s.concurrency : 1;
    int was = bullc_worker_concurrency(q->worker);
    int slots = q->cfg->s.concurrency ? q->cfg->s.concurrency : 1;
    /* the shared children's seats are made once, with the slots */
    if (q->cfg->proc.kind == BW_PROC_EXEC_PERSISTENT && now->s.exec_children != q->cfg->s.exec_children)
        TLOG(TLOG_WARN, "reload", TLOG_S("queue", q->cfg->name),
             TLOG_I("execChildren", q->cfg->s.exec_children ? q->cfg->s.exec_children : slots),
             TLOG_S("msg", "execChildren changes only with a restart: kept"));
    if (n == was) return;
    /* exec-persistent made its slots for the start's concurrency */
    if (q->cfg->proc.kind == BW_PROC_EXEC_PERSISTENT && n > slots) {
        TLOG(TLOG_WARN, "reload", TLOG_S("queue", q->cfg->name), TLOG_I("concurrency", was),
             TLOG_S("msg", "exec-persistent cannot go above its starting concurrency"));
        return;
    }
    bullc_worker_set_concurrency(q->worker, n);
    TLOG(TLOG_INFO, "reload", TLOG_S("queue", q->cfg->name), TLOG_I("was", was), TLOG_I("concurrency", n));
}

/* Serves `c` (a configuration `fresh` holds) from now on. False when the
 * queue could not start (logged). */
static bool add_queue(bw_app *app, const bw_queue_cfg *c) {
    if (app->nqueues == app->queues_cap) {
        size_t cap = app->queues_cap ? app->queues_cap * 2 : 16;
        bw_queue **grown = realloc(app->queues, cap * sizeof *grown);
        if (!grown) return false;
        app->queues = grown;
        app->queues_cap = cap;
    }
    bw_queue *q = calloc(1, sizeof *q);
    if (!q) return false;
    q->app = app;
    q->cfg = c;
    app->queues[app->nqueues++] = q;
    char why[600];
    int code = bw_queue_load(q, app->redis, why, sizeof why);
    if (code) TLOG(TLOG_ERROR, "reload", TLOG_S("queue", c->name), TLOG_S("msg", why));
    if (!code) code = start_worker(app, q);
    if (code) {
        /* listed, so that exit finalises what its load made */
        q->removed = q->closed = true;
        app->nremoved++;
        return false;
    }
    TLOG(TLOG_INFO, "reload", TLOG_S("queue", c->name), TLOG_S("action", "added"));
    return true;
}

/* SIGHUP (and --queue-glob finding other queues): the flags, the config
 * file and --queues-file are read again. Each
 * queue they still name runs with the concurrency they now set (Node's
 * `worker.concurrency = n`); a queue they no longer name stops fetching,
 * finishes its jobs in process (up to --shutdown-timeout) and closes; a queue
 * they newly name starts. A configuration that does not parse changes
 * nothing. --http's /metrics follows: an added queue is counted from the
 * next fetch, a removed one is no longer listed. */
void bw_app_reload(bw_app *app) {
    bw_config *fresh = calloc(1, sizeof *fresh);
    int rc = fresh ? bw_config_parse(fresh, app->argc, app->argv, app->found, app->nfound) : BW_EXIT_FAIL;
    if (rc) {
        TLOG(TLOG_ERROR, "reload", TLOG_S("msg", "the configuration does not parse: nothing changed"));
        if (fresh) bw_config_free(fresh);
        free(fresh);
        return;
    }
    const bw_queue_cfg **now = NULL, **had = NULL;
    const bw_queue_cfg **ptrs = malloc((fresh->nqueues + app->nqueues + 1) * sizeof *ptrs);
    size_t nhad = 0;
    if (ptrs) {
        for (size_t k = 0; k < fresh->nqueues; k++) ptrs[k] = &fresh->queues[k];
        now = sorted_cfgs(ptrs, fresh->nqueues);
        for (size_t i = 0; i < app->nqueues; i++)
            if (!app->queues[i]->removed) ptrs[nhad++] = app->queues[i]->cfg;
        had = sorted_cfgs(ptrs, nhad);
    }
    free(ptrs);
    if (!now || !had) {
        TLOG(TLOG_ERROR, "reload", TLOG_S("msg", "out of memory: nothing changed"));
        goto done;
    }
    size_t adding = 0;
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (q->removed || !q->worker || q->closed) continue;
        const bw_queue_cfg *c = find_cfg(now, fresh->nqueues, q->cfg->name);
        if (c) {
            apply_concurrency(q, c);
        } else {
            q->removed = true;
            app->nremoved++;
            TLOG(TLOG_INFO, "reload", TLOG_S("queue", q->cfg->name), TLOG_S("action", "removing"));
            bullc_worker_close(q->worker, false, app->cfg->shutdown_timeout, removed_closed, q);
        }
    }
    /* room to keep `fresh`, where the added queues' settings live */
    bw_config **kept = realloc(app->kept, (app->nkept + 1) * sizeof *kept);
    if (kept) app->kept = kept;
    size_t nhad_before = app->nqueues;
    for (size_t k = 0; k < fresh->nqueues; k++) {
        if (find_cfg(had, nhad, fresh->queues[k].name)) continue;
        if (kept)
            add_queue(app, &fresh->queues[k]);
        else
            adding++;
    }
    if (adding) TLOG(TLOG_ERROR, "reload", TLOG_I("added", 0), TLOG_S("msg", "out of memory: no queue added"));
    if (app->nqueues > nhad_before) {
        app->kept[app->nkept++] = fresh;
        fresh = NULL;
    }
done:
    free(now);
    free(had);
    if (fresh) bw_config_free(fresh);
    free(fresh);
}

void bw_app_free_kept(bw_app *app) {
    for (size_t i = 0; i < app->nkept; i++) {
        bw_config_free(app->kept[i]);
        free(app->kept[i]);
    }
    free(app->kept);
    app->kept = NULL;
    app->nkept = 0;
}

static void on_signal(uv_signal_t *h, int signum) {
    bw_app *app = h->data;
    if (signum == SIGHUP) {
        tlog_reopen();
        if (!app->shutting_down) bw_app_reload(app);
        bw_glob_rescan(app);
        return;
    }
    if (signum == SIGUSR1) {
        for (size_t i = 0; i < app->nqueues; i++) {
            bw_queue *q = app->queues[i];
            if (!q->worker || q->closed) continue;
            int n = bullc_worker_cancel_all_jobs(q->worker, "cancelled by SIGUSR1");
            TLOG(TLOG_INFO, "cancel", TLOG_S("queue", q->cfg->name), TLOG_I("jobs", n), TLOG_S("signal", "SIGUSR1"));
        }
        return;
    }
    app->signals++;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (app->signals >= 3) {
        TLOG(TLOG_ERROR, "exit", TLOG_S("signal", name), TLOG_S("msg", "third signal: exiting now"));
        tlog_close();
        _exit(BW_EXIT_ABANDONED);
    }
    if (app->shutting_down) {
        force(app, name);
        return;
    }
    graceful(app, name);
}

static void graceful(bw_app *app, const char *why) {
    app->shutting_down = true;
    TLOG(TLOG_INFO, "shutdown", TLOG_S("mode", "graceful"), TLOG_S("signal", why),
         TLOG_I("timeout_ms", app->cfg->shutdown_timeout),
         TLOG_S("msg", "finishing the jobs in process; a second signal stops at once"));
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_queue *q = app->queues[i];
        if (q->worker && !q->closed) bullc_worker_close(q->worker, false, app->cfg->shutdown_timeout, worker_closed, q);
    }
    /* The workers give up on their jobs at the timeout, but a command or a
     * sleep still running holds its job: stop those too. */
    if (app->cfg->shutdown_timeout > 0 && app->open)
        uv_timer_start(&app->shutdown_timer, shutdown_timeout, (uint64_t)app->cfg->shutdown_timeout, 0);
    /* no worker (a glob that found nothing yet): nothing to wait for */
    if (!app->open) close_all_handles(app);
}

static void group_closed(bullc_worker_group *g, void *data) { (void)g, (void)data; }

static void close_all_handles(bw_app *app) {
    /* every member closed: the group's connections go too */
    if (app->group) bullc_worker_group_close(app->group, group_closed, NULL);
    uv_handle_t *hs[] = {(uv_handle_t *)&app->sig_int,        (uv_handle_t *)&app->sig_term,
                         (uv_handle_t *)&app->sig_hup,        (uv_handle_t *)&app->sig_usr1,
                         (uv_handle_t *)&app->shutdown_timer, (uv_handle_t *)&app->hard_exit_timer};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
        if (!uv_is_closing(hs[i])) uv_close(hs[i], NULL);
    for (size_t i = 0; i < app->nqueues; i++) {
        bw_exec_close(app->queues[i]);
        bw_execp_close(app->queues[i]);
    }
    bw_glob_stop(app);
    if (app->cancel) bullc_cancel_listener_close(app->cancel, NULL, NULL);
    bw_httpd_close(app);
    bw_metrics_stop(app);
}

/* ---- start ------------------------------------------------------------------------ */

static int start_worker(bw_app *app, bw_queue *q) {
    const bw_queue_cfg *c = q->cfg;
    bullc_worker_opts *o = NULL;
    if (bullc_worker_opts_new(&o)) return BW_EXIT_FAIL;
    char why[160];
    int rc = bullc_worker_opts_set_redis(o, app->redis);
    bullc_worker_opts_set_tracer(o, app->tracer);
    bullc_worker_opts_set_group(o, app->group);
    if (!rc && (rc = bw_settings_to_opts(&c->s, o, why, sizeof why))) {
        TLOG(TLOG_ERROR, "start", TLOG_S("queue", c->name), TLOG_S("code", bullc_err_name(rc)), TLOG_S("msg", why));
        bullc_worker_opts_free(o);
        return rc == BULLC_EINVAL ? BW_EXIT_USAGE : BW_EXIT_FAIL;
    }
    if (c->proc.kind == BW_PROC_EXEC || c->proc.kind == BW_PROC_EXEC_PERSISTENT) {
        /* their own timeout: the child is killed */
        bullc_worker_opts_set_processor(o, c->proc.kind == BW_PROC_EXEC ? bw_exec_process : bw_execp_process, q);
    } else {
        if (c->proc.kind == BW_PROC_BUILTIN && bw_builtin_blocking(c->proc.builtin))
            bullc_worker_opts_set_blocking_processor(o, bw_builtin_process_blocking, q);
        else if (c->proc.kind == BW_PROC_BUILTIN)
            bullc_worker_opts_set_processor(o, bw_builtin_process, q);
        else
            bullc_worker_opts_set_blocking_processor(o, bw_plugin_process, q);
        rc = bullc_worker_opts_set_job_timeout(o, c->s.timeout);
    }
    bullc_worker_events ev = {.active = ev_active,
                              .completed = ev_completed,
                              .failed = ev_failed,
                              .progress = ev_progress,
                              .stalled = ev_stalled,
                              .drained = ev_drained,
                              .error = ev_error,
                              .ready = ev_ready};
    bullc_error err = {0};
    if (rc)
        snprintf(err.message, sizeof err.message, "%s", bullc_strerror(rc));
    else
        rc = bullc_worker_new(&q->worker, &app->loop, c->name, o, &ev, q, &err);
    bullc_worker_opts_free(o);
    if (rc) {
        q->worker = NULL;
        TLOG(TLOG_ERROR, "start", TLOG_S("queue", c->name), TLOG_S("code", bullc_err_name(rc)),
             TLOG_S("msg", err.message));
        return rc == BULLC_EINVAL ? BW_EXIT_USAGE : BW_EXIT_FAIL;
    }
    app->open++;
    /* out of memory only: the queue runs, `bullc cancel` does not reach it */
    if ((rc = bullc_cancel_listener_add(app->cancel, q->worker, &err)))
        TLOG(TLOG_WARN, "start", TLOG_S("queue", c->name), TLOG_S("code", bullc_err_name(rc)),
             TLOG_S("msg", err.message));
    return 0;
}

/* Runs every queue's worker until a signal stops them. Returns the exit code. */
int bw_app_run(bw_app *app) {
    uv_signal_t *sigs[] = {&app->sig_int, &app->sig_term, &app->sig_hup, &app->sig_usr1};
    int signums[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < 4; i++) {
        uv_signal_init(&app->loop, sigs[i]);
        sigs[i]->data = app;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    uv_timer_init(&app->loop, &app->shutdown_timer);
    uv_timer_init(&app->loop, &app->hard_exit_timer);
    app->shutdown_timer.data = app->hard_exit_timer.data = app;
    int code = 0;
    if (app->cfg->http) {
        char why[200];
        if (bw_metrics_start(app)) {
            TLOG(TLOG_ERROR, "start", TLOG_S("msg", "--http: out of memory"));
            code = BW_EXIT_FAIL;
        } else if ((code = bw_httpd_start(app, why, sizeof why))) {
            TLOG(TLOG_ERROR, "start", TLOG_S("msg", why));
        }
    }
    bullc_error err = {0};
    if (!code && app->cfg->shared_connections) {
        if (bullc_worker_group_new(&app->group, &app->loop, app->redis, &err) ||
            bullc_worker_group_set_concurrency(app->group, app->cfg->global_concurrency)) {
            TLOG(TLOG_ERROR, "start", TLOG_S("msg", err.message));
            code = BW_EXIT_FAIL;
        }
    }
    /* one connection for the whole process hears `bullc cancel` for every queue */
    if (!code && bullc_cancel_listener_new(&app->cancel, &app->loop, app->redis, &err)) {
        TLOG(TLOG_ERROR, "start", TLOG_S("msg", err.message));
        code = BW_EXIT_FAIL;
    }
    for (size_t i = 0; i < app->nqueues && !code; i++) code = start_worker(app, app->queues[i]);
    if (!code) bw_glob_start(app);
    /* only globs, which found no queue yet: ready for the ones they will find */
    if (!code && !app->nqueues) log_ready(app);
    if (code) {
        /* one queue cannot start: stop the others before exiting */
        app->exit_code = code;
        app->shutting_down = app->forced = true;
        for (size_t i = 0; i < app->nqueues; i++)
            if (app->queues[i]->worker)
                bullc_worker_close(app->queues[i]->worker, true, 0, worker_closed, app->queues[i]);
        if (!app->open) close_all_handles(app);
    }
    uv_run(&app->loop, UV_RUN_DEFAULT);
    bw_httpd_finish(app);
    for (size_t i = 0; i < app->nqueues; i++) {
        bullc_worker_free(app->queues[i]->worker);
        app->queues[i]->worker = NULL;
    }
    bullc_worker_group_free(app->group);
    app->group = NULL;
    bullc_cancel_listener_free(app->cancel);
    app->cancel = NULL;
    return app->exit_code;
}
