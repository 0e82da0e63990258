/* SPDX-License-Identifier: MIT */
/* The --plugin processor: a shared library's bullc_plugin_process, run as a
 * blocking processor on libuv's thread pool. */
#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <bullc/plugin.h>

#include "bw.h"

typedef int (*init_fn)(const char *, const char *, void **);
typedef int (*process_fn)(bullc_job *, bullc_job_result *, void *);
typedef void (*fini_fn)(void *);

struct bw_plugin {
    void *dl;
    init_fn init;
    process_fn process;
    fini_fn fini;
};

int bw_plugin_load(bw_queue *q, char *why, size_t why_size) {
    const char *path = q->cfg->proc.path;
    bw_plugin *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(why, why_size, "out of memory");
        return -1;
    }
    /* RTLD_NOW: a missing symbol is an error now, not a crash mid-job.
     * RTLD_LOCAL: two plugins may both define the entry points. Loading the
     * same path for two queues gives the same handle (counted). */
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl) {
        snprintf(why, why_size, "cannot load plugin %s: %s", path, dlerror());
        free(p);
        return -1;
    }
    /* POSIX: a function pointer from dlsym's object pointer */
    *(void **)&p->process = dlsym(p->dl, "bullc_plugin_process");
    *(void **)&p->init = dlsym(p->dl, "bullc_plugin_init");
    *(void **)&p->fini = dlsym(p->dl, "bullc_plugin_fini");
    if (!p->process) {
        snprintf(why, why_size, "plugin %s has no bullc_plugin_process function", path);
        dlclose(p->dl);
        free(p);
        return -1;
    }
    q->plugin = p;
    return 0;
}

int bw_plugin_init(bw_queue *q, char *why, size_t why_size) {
    if (!q->plugin->init) {
        q->plugin_inited = true;
        return 0;
    }
    int rc = q->plugin->init(q->cfg->name, q->cfg->proc.config_json, &q->plugin_state);
    if (rc) {
        snprintf(why, why_size, "plugin %s: bullc_plugin_init failed for queue %s (returned %d)", q->cfg->proc.path,
                 q->cfg->name, rc);
        return -1;
    }
    q->plugin_inited = true;
    return 0;
}

void bw_plugin_fini(bw_queue *q) {
    if (q->plugin && q->plugin_inited && q->plugin->fini) q->plugin->fini(q->plugin_state);
    q->plugin_inited = false;
}

void bw_plugin_unload(bw_queue *q) {
    if (!q->plugin) return;
    dlclose(q->plugin->dl);
    free(q->plugin);
    q->plugin = NULL;
}

/* Thread-pool thread. */
void bw_plugin_process(bullc_job *job, bullc_job_result *out, void *data) {
    bw_queue *q = data;
    int rc = q->plugin->process(job, out, q->plugin_state);
    if (rc && !out->error && !(out->fail_flags & BULLC_FAIL_MOVED)) {
        char msg[64];
        snprintf(msg, sizeof msg, "plugin returned %d", rc);
        out->error = strdup(msg);
    }
    if (out->error || (out->fail_flags & BULLC_FAIL_MOVED)) {
        free(out->result_json);
        out->result_json = NULL;
        return;
    }
    if (out->result_json) {
        /* Node parses returnvalue as JSON: never store text it cannot read */
        cJSON *v = cJSON_Parse(out->result_json);
        cJSON_Delete(v);
        if (!v) {
            free(out->result_json);
            out->result_json = NULL;
            out->error = strdup("plugin returned invalid JSON as its result");
            out->fail_flags = BULLC_FAIL_UNRECOVERABLE;
        }
    }
}
