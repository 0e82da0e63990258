/* SPDX-License-Identifier: MIT */
/* Helpers of the bullc-socket-client tests (test_socket_client*.c): run the
 * programs as child processes with their output in files, wait for lines,
 * and read the jobs back. Everything is bounded in time; children die with
 * the test (PR_SET_PDEATHSIG) and are killed by the suites' fini. */
#ifndef TEST_SOCKET_CLIENT_UTIL_H
#define TEST_SOCKET_CLIENT_UTIL_H

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

typedef struct sct_proc {
    pid_t pid;
    bool exited;
    int code; /* exit code, or 128 + signal */
    char out[600], err[600];
} sct_proc;

#define SCT_MAX_PROCS 16
static sct_proc sct_procs[SCT_MAX_PROCS];
static int sct_nprocs;
static char sct_dir[512];

static inline void sct_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* A directory of this test's own under BULLC_TEST_TMP. */
static inline const char *sct_tmpdir(void) {
    if (!sct_dir[0]) {
        const char *tmp = getenv("BULLC_TEST_TMP");
        static int n;
        snprintf(sct_dir, sizeof sct_dir, "%s/socket-client-%d-%d", tmp ? tmp : "/tmp", (int)getpid(), ++n);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", sct_dir, sct_dir);
        cr_assert_eq(tu_run(cmd, NULL), 0);
    }
    return sct_dir;
}

static inline const char *sct_path(const char *name) {
    static char bufs[4][600];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", sct_tmpdir(), name);
    return b;
}

/* Runs BULLC_BIN_DIR/`prog` with `args` (NULL-terminated); stdout and stderr
 * go to <tmp>/<tag>-<n>.out and .err. */
static inline sct_proc *sct_spawn(const char *prog, const char *tag, const char *const *args) {
    cr_assert(sct_nprocs < SCT_MAX_PROCS);
    sct_proc *p = &sct_procs[sct_nprocs++];
    memset(p, 0, sizeof *p);
    snprintf(p->out, sizeof p->out, "%s/%s-%d.out", sct_tmpdir(), tag, sct_nprocs);
    snprintf(p->err, sizeof p->err, "%s/%s-%d.err", sct_tmpdir(), tag, sct_nprocs);
    char bin[600];
    snprintf(bin, sizeof bin, "%s", tu_bin(prog));
    const char *argv[64];
    int n = 0;
    argv[n++] = bin;
    for (int i = 0; args[i]; i++) {
        cr_assert(n < 62);
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0600), e = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0) _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    return p;
}

static inline char *sct_read(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    size_t cap = 4096, len = 0, n;
    char *b = malloc(cap);
    while ((n = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) b = realloc(b, cap *= 2);
    }
    b[len] = 0;
    fclose(f);
    return b;
}

static inline int sct_count(const char *path, const char *needle) {
    char *s = sct_read(path);
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    free(s);
    return n;
}

/* Polls until `path` holds `needle` at least `times` times. */
static inline bool sct_wait_for(const char *path, const char *needle, int times, int timeout_ms) {
    int64_t until = tu_now_ms() + timeout_ms;
    do {
        if (sct_count(path, needle) >= times) return true;
        sct_sleep_ms(20);
    } while (tu_now_ms() < until);
    return false;
}

static inline bool sct_poll_exit(sct_proc *p) {
    if (p->exited) return true;
    int st;
    if (waitpid(p->pid, &st, WNOHANG) != p->pid) return false;
    p->exited = true;
    p->code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return true;
}

/* Waits up to `timeout_ms` for the exit; then SIGKILL and -1. */
static inline int sct_wait_exit(sct_proc *p, int timeout_ms) {
    int64_t until = tu_now_ms() + timeout_ms;
    while (!sct_poll_exit(p)) {
        if (tu_now_ms() > until) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->exited = true;
            return -1;
        }
        sct_sleep_ms(10);
    }
    return p->code;
}

static inline int sct_stop(sct_proc *p, int sig, int timeout_ms) {
    if (!sct_poll_exit(p)) kill(p->pid, sig);
    return sct_wait_exit(p, timeout_ms);
}

static inline void sct_kill_all(void) {
    for (int i = 0; i < sct_nprocs; i++)
        if (!sct_poll_exit(&sct_procs[i])) {
            kill(sct_procs[i].pid, SIGKILL);
            waitpid(sct_procs[i].pid, NULL, 0);
        }
    sct_nprocs = 0;
}

/* The integer after "key=" in the last line of `path` that contains `event`. */
static inline long long sct_field(const char *path, const char *event, const char *key) {
    char *s = sct_read(path), *line = NULL;
    for (char *p = s; (p = strstr(p, event)); p++) line = p;
    long long v = -1;
    char k[64];
    snprintf(k, sizeof k, " %s=", key);
    char *at = line ? strstr(line, k) : NULL;
    char *eol = line ? strchr(line, '\n') : NULL;
    if (at && (!eol || at < eol)) v = strtoll(at + strlen(k), NULL, 10);
    free(s);
    return v;
}

/* ---- jobs ------------------------------------------------------------------- */

static inline long long sct_llen(redisContext *c, const char *prefix, const char *queue) {
    redisReply *r = tu_cmd(c, "LLEN %s:%s:wait", prefix, queue);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static inline bool sct_wait_jobs(redisContext *c, const char *prefix, long long n, int timeout_ms) {
    int64_t until = tu_now_ms() + timeout_ms;
    do {
        if (sct_llen(c, prefix, "test-queue") >= n) return true;
        sct_sleep_ms(20);
    } while (tu_now_ms() < until);
    return false;
}

typedef struct sct_job {
    long long id;
    char *name, *opts, *raw; /* raw: the data field as stored */
    cJSON *data;             /* parsed */
} sct_job;

static inline int sct_cmp_job(const void *a, const void *b) {
    long long x = ((const sct_job *)a)->id, y = ((const sct_job *)b)->id;
    return x < y ? -1 : x > y;
}

/* The waiting jobs of test-queue in id order (no worker takes them). */
static inline sct_job *sct_jobs(redisContext *c, const char *prefix, size_t *n) {
    redisReply *r = tu_cmd(c, "LRANGE %s:test-queue:wait 0 -1", prefix);
    sct_job *jobs = calloc(r->elements + 1, sizeof *jobs);
    for (size_t i = 0; i < r->elements; i++) {
        sct_job *j = &jobs[i];
        j->id = strtoll(r->element[i]->str, NULL, 10);
        char key[256];
        snprintf(key, sizeof key, "%s:test-queue:%s", prefix, r->element[i]->str);
        j->name = tu_hget(c, key, "name");
        j->opts = tu_hget(c, key, "opts");
        j->raw = tu_hget(c, key, "data");
        cr_assert(j->raw, "job %s has no data", key);
        j->data = cJSON_Parse(j->raw);
        cr_assert(j->data, "job %s: data is not JSON: %s", key, j->raw);
    }
    *n = r->elements;
    freeReplyObject(r);
    qsort(jobs, *n, sizeof *jobs, sct_cmp_job);
    return jobs;
}

static inline void sct_jobs_free(sct_job *jobs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].name);
        free(jobs[i].opts);
        free(jobs[i].raw);
        cJSON_Delete(jobs[i].data);
    }
    free(jobs);
}

/* The round's seq of a job (data.data.seq), -1 for other messages. */
static inline long long sct_seq(const sct_job *j) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j->data, "data");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(d, "seq");
    return cJSON_IsNumber(s) ? (long long)s->valuedouble : -1;
}

/* The provider's sent log: one JSON object per message it wrote. */
static inline cJSON *sct_sent_log(const char *path) {
    char *s = sct_read(path);
    cJSON *arr = cJSON_CreateArray();
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert(o, "bad sent log line: %s", line);
        cJSON_AddItemToArray(arr, o);
    }
    free(s);
    return arr;
}

#endif
