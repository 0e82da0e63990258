/* SPDX-License-Identifier: MIT */
/* Starting an --exec command cheaply. uv_spawn forks: the kernel copies the
 * worker's page tables, and every page the worker writes afterwards takes a
 * copy-on-write fault, in the child until its exec and in the worker for as
 * long as the child shares them. Where a page fault is dear (a VM: about
 * 40 µs each on the project's bench machine) that was 1.4-2 ms of the
 * worker's CPU per job, plus as much in the child before its exec.
 * posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK)) shares the memory until
 * the exec instead: no copy, no fault. Its exit is watched through a pidfd on
 * the loop (Linux 5.3), so libuv's SIGCHLD handling, which reaps only the
 * processes uv_spawn started, never sees these children. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bw.h"

/* A child's end of a pipe must not be 0, 1 or 2 (a worker started with
 * those closed): dup2 onto one of them could overwrite another end first. */
static int above_stdio(int fd) {
    if (fd > 2) return fd;
    int up = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return up;
}

void bw_spawn_kill(int pid) {
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) continue;
}

int bw_spawn(const char *file, char *const argv[], char *const env[], int fds[3], int *pid_out, int *pidfd_out) {
    /* [i][0] read end, [i][1] write end; the child reads stdin from p[0][0],
     * writes stdout and stderr to p[1][1] and p[2][1] */
    int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        if (pipe2(p[i], O_CLOEXEC)) {
            rc = -errno;
            break;
        }
        for (int k = 0; k < 2 && !rc; k++)
            if ((p[i][k] = above_stdio(p[i][k])) < 0) rc = -errno;
    }
    int child[3] = {p[0][0], p[1][1], p[2][1]};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    bool fa_ok = false, at_ok = false;
    if (!rc) rc = -posix_spawn_file_actions_init(&fa);
    fa_ok = !rc;
    if (!rc) rc = -posix_spawnattr_init(&at);
    at_ok = fa_ok && !rc;
    for (int i = 0; i < 3 && !rc; i++) rc = -posix_spawn_file_actions_adddup2(&fa, child[i], i);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    /* as uv_spawn's child: a session of its own (UV_PROCESS_DETACHED), no
     * blocked signal, every signal's default action (the worker's
     * handlers and ignored SIGPIPE are not the command's) */
    if (!rc) rc = -posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!rc) rc = -posix_spawnattr_setsigmask(&at, &none);
    if (!rc) rc = -posix_spawnattr_setsigdefault(&at, &all);
    pid_t pid = -1;
    if (!rc) rc = -posix_spawnp(&pid, file, &fa, &at, argv, env);
    if (at_ok) posix_spawnattr_destroy(&at);
    if (fa_ok) posix_spawn_file_actions_destroy(&fa);
    int pidfd = -1;
    if (!rc && (pidfd = pidfd_open(pid, 0)) < 0) {
        rc = -errno;
        bw_spawn_kill(pid); /* unwatchable: not left running unseen */
    }
    for (int i = 0; i < 3; i++) {
        if (child[i] >= 0) close(child[i]);
    }
    int mine[3] = {p[0][1], p[1][0], p[2][0]};
    for (int i = 0; i < 3; i++) {
        if (rc && mine[i] >= 0) close(mine[i]);
        fds[i] = rc ? -1 : mine[i];
    }
    if (rc) return rc;
    *pid_out = pid;
    *pidfd_out = pidfd;
    return 0;
}
