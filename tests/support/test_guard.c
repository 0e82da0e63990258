/* SPDX-License-Identifier: MIT */
/* bullc-test-guard: runs one test command (ctest runs every test through it)
 * and makes sure nothing the test started outlives it.
 *
 *   bullc-test-guard [--grace MS] -- COMMAND ARGS...
 *
 * Two processes: the one ctest started (the "front") and a guardian below it.
 * The guardian is a child subreaper (PR_SET_CHILD_SUBREAPER), so whatever the
 * test starts, daemons that detached with setsid included, is re-parented to
 * it rather than to init once its own parent is gone. When the command exits,
 * the guardian waits up to MS (default 3000) for what is left to exit by
 * itself, then kills and lists what is still running and fails the test: a
 * test must stop what it starts, also when it fails.
 * ctest kills a test that runs past its TIMEOUT with SIGKILL on the process
 * it started alone, which cannot be caught: that is why the front is a
 * separate process. The guardian asked the kernel for SIGTERM when the front
 * dies (PR_SET_PDEATHSIG), and then kills the command's whole tree.
 *
 * Concurrent runs (ctest -j with tools/test.sh's resource spec): a test that
 * needs the tests' Redis is given one of BULLC_TEST_SLOTS slots, each a
 * redis-server pair of its own (tests/redis-fixture.sh), so tests that touch
 * server-wide state (SCRIPT FLUSH, CLIENT KILL, DBSIZE, CONFIG) never meet.
 * ctest names the slot in CTEST_RESOURCE_GROUP_0_REDIS ("id:K,slots:1"); the
 * guard points the test at slot K's pair before running it. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_sig;
static void on_signal(int sig) { stop_sig = sig; }

static pid_t parent_of(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* The command name may hold spaces and parentheses: the fields that
     * follow start after the last ')'. */
    char *p = strrchr(buf, ')');
    char state;
    int ppid;
    if (!p || sscanf(p + 1, " %c %d", &state, &ppid) != 2) return -1;
    return state == 'Z' ? -1 : ppid; /* a zombie is dead, only not yet reaped */
}

/* The live processes whose parent chain reaches `root` (root excluded),
 * parents before children; returns how many. */
static int descendants(pid_t root, pid_t *out, int cap) {
    pid_t pids[4096], ppids[4096];
    int n = 0;
    DIR *d = opendir("/proc");
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0) continue;
        pid_t pp = parent_of((pid_t)pid);
        if (pp < 0) continue;
        pids[n] = (pid_t)pid;
        ppids[n++] = pp;
    }
    closedir(d);
    int m = 0;
    out[m++] = root;
    for (int i = 0; i < m && m < cap; i++)
        for (int j = 0; j < n && m < cap; j++)
            if (ppids[j] == out[i]) out[m++] = pids[j];
    for (int i = 1; i < m; i++) out[i - 1] = out[i];
    return m - 1;
}

static void describe(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    for (size_t i = 0; i + 1 < n; i++)
        if (!buf[i]) buf[i] = ' ';
    buf[n] = 0;
    fprintf(stderr, "bullc-test-guard: left running: pid %d: %s\n", (int)pid, buf);
}

static void reap(void) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Kills every descendant until none is left (a dying parent's children come
 * back to us as orphans, so one pass may not see them all); returns how many
 * were found still running. */
static int kill_all(bool report) {
    int found = 0;
    pid_t pids[1024];
    for (int round = 0; round < 50; round++) {
        int n = descendants(getpid(), pids, 1024);
        if (!n) break;
        for (int i = 0; i < n; i++) {
            if (report) describe(pids[i]);
            kill(pids[i], SIGKILL);
        }
        found += n;
        report = false; /* what the first pass found is what was left */
        usleep(20000);
        reap();
    }
    return found;
}

static int guardian(pid_t front, long grace_ms, char **cmd) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != front) return 1; /* the front died before we asked */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t child = fork();
    if (child < 0) return perror("bullc-test-guard: fork"), 1;
    if (child == 0) {
        signal(SIGTERM, SIG_DFL), signal(SIGINT, SIG_DFL), signal(SIGHUP, SIG_DFL);
        execvp(cmd[0], cmd);
        fprintf(stderr, "bullc-test-guard: %s: %s\n", cmd[0], strerror(errno));
        _exit(127);
    }
    int status = 0, code = -1;
    while (code < 0) {
        pid_t p = waitpid(-1, &status, 0);
        if (p == child) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (p < 0 && errno == EINTR && stop_sig) {
            fprintf(stderr, "bullc-test-guard: signal %d: killing the test and all it started\n", (int)stop_sig);
            kill_all(false);
            return 128 + stop_sig;
        }
        if (p < 0 && errno == ECHILD) code = 1;
    }
    pid_t pids[1024];
    for (long deadline = now_ms() + grace_ms; descendants(getpid(), pids, 1024) && now_ms() < deadline;) {
        usleep(20000);
        reap();
    }
    if (kill_all(true)) {
        fprintf(stderr, "bullc-test-guard: the test left processes running (listed above, now killed)\n");
        if (!code) code = 1;
    }
    return code;
}

/* Slot K owns the 10 ports from BULLC_TEST_REDIS_PORT + 10K: its pair on the
 * first two (the second with a password), and the test's own servers on the
 * last five (compat_observability, compat_worker_many_queues: 5 to 9 above
 * REDIS_URL's port). Slot 0, and a test run without a slot, keep the base. */
static void use_redis_slot(void) {
    const char *slot = getenv("CTEST_RESOURCE_GROUP_0_REDIS"), *base = getenv("BULLC_TEST_REDIS_PORT");
    int k, port;
    if (!slot || !base || sscanf(slot, "id:%d", &k) != 1 || k <= 0) return;
    port = atoi(base) + 10 * k;
    char v[64];
    snprintf(v, sizeof v, "%d", port);
    setenv("BULLC_TEST_REDIS_PORT", v, 1);
    snprintf(v, sizeof v, "%d", port + 1);
    setenv("BULLC_TEST_AUTH_PORT", v, 1);
    snprintf(v, sizeof v, "redis://127.0.0.1:%d", port);
    setenv("REDIS_URL", v, 1);
}

int main(int argc, char **argv) {
    long grace_ms = 3000;
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--grace")) grace_ms = atol(argv[i + 1]), i += 2;
    if (i < argc && !strcmp(argv[i], "--")) i++;
    if (i >= argc) {
        fprintf(stderr, "usage: bullc-test-guard [--grace MS] -- COMMAND ARGS...\n");
        return 2;
    }
    use_redis_slot();
    /* If ctest itself goes away, so does the front, and the guardian cleans
     * up after it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pid_t front = getpid();
    pid_t g = fork();
    if (g < 0) return perror("bullc-test-guard: fork"), 1;
    if (g == 0) _exit(guardian(front, grace_ms, argv + i));
    /* ctest's own SIGTERM/SIGINT (an interrupted run) goes to the guardian. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int status;
    for (;;) {
        pid_t p = waitpid(g, &status, 0);
        if (p == g) break;
        if (p < 0 && errno == EINTR && stop_sig)
            kill(g, (int)stop_sig), stop_sig = 0;
        else if (p < 0 && errno != EINTR)
            return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
