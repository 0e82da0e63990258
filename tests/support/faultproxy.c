/* SPDX-License-Identifier: MIT */
#include "faultproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FP_MAX 64

typedef struct pair {
    int c, u; /* client and upstream sockets, -1 when free */
    /* RESP command counter of the client's stream (FP_ERROR answers per command) */
    int st; /* 0: expect '*', 1: in array header, 2: expect '$', 3: in bulk len, 4: in bulk body */
    long nargs, blen;
    char num[24];
    int numlen;
} pair;

struct faultproxy {
    int lfd, port, upstream;
    pthread_t th;
    atomic_int mode, delay_ms, stop, reset, accepted, refused, errors_sent;
    char error[256];
    pthread_mutex_t mu;
    pair pairs[FP_MAX];
};

static void close_pair(pair *p, int rst) {
    if (p->c < 0) return;
    if (rst) {
        struct linger l = {1, 0};
        setsockopt(p->c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        setsockopt(p->u, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(p->c);
    close(p->u);
    p->c = p->u = -1;
}

/* Counts the complete commands in a chunk of the client's RESP stream. */
static int count_commands(pair *p, const char *b, ssize_t n) {
    int done = 0;
    for (ssize_t i = 0; i < n; i++) {
        char ch = b[i];
        switch (p->st) {
        case 0:
            if (ch == '*') p->st = 1, p->numlen = 0;
            break;
        case 1:
        case 3:
            if (ch == '\n') {
                p->num[p->numlen] = 0;
                long v = atol(p->num);
                if (p->st == 1) {
                    p->nargs = v;
                    p->st = v > 0 ? 2 : 0;
                    if (v <= 0) done++;
                } else {
                    p->blen = v + 2; /* body and CRLF */
                    p->st = 4;
                }
            } else if (ch != '\r' && p->numlen < 22) {
                p->num[p->numlen++] = ch;
            }
            break;
        case 2:
            if (ch == '$') p->st = 3, p->numlen = 0;
            break;
        case 4:
            if (--p->blen == 0) {
                if (--p->nargs == 0) {
                    p->st = 0;
                    done++;
                } else {
                    p->st = 2;
                }
            }
            break;
        }
    }
    return done;
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static void *run(void *arg) {
    faultproxy *p = arg;
    char buf[65536];
    while (!atomic_load(&p->stop)) {
        if (atomic_exchange(&p->reset, 0))
            for (int i = 0; i < FP_MAX; i++) close_pair(&p->pairs[i], 1);
        struct pollfd fds[1 + 2 * FP_MAX];
        int map[1 + 2 * FP_MAX], n = 0;
        fds[n].fd = p->lfd, fds[n].events = POLLIN, map[n++] = -1;
        int mode = atomic_load(&p->mode);
        for (int i = 0; i < FP_MAX; i++) {
            if (p->pairs[i].c < 0 || mode == FP_BLACKHOLE) continue;
            fds[n].fd = p->pairs[i].c, fds[n].events = POLLIN, map[n++] = i * 2;
            fds[n].fd = p->pairs[i].u, fds[n].events = POLLIN, map[n++] = i * 2 + 1;
        }
        if (poll(fds, (nfds_t)n, 20) <= 0) continue;
        for (int k = 0; k < n; k++) {
            if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            if (map[k] < 0) {
                int c = accept(p->lfd, NULL, NULL);
                if (c < 0) continue;
                if (mode == FP_REFUSE) {
                    close(c);
                    atomic_fetch_add(&p->refused, 1);
                    continue;
                }
                int u = dial(p->upstream);
                int slot = -1;
                for (int i = 0; i < FP_MAX && slot < 0; i++)
                    if (p->pairs[i].c < 0) slot = i;
                if (u < 0 || slot < 0) {
                    close(c);
                    if (u >= 0) close(u);
                    continue;
                }
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                memset(&p->pairs[slot], 0, sizeof p->pairs[slot]);
                p->pairs[slot].c = c, p->pairs[slot].u = u;
                atomic_fetch_add(&p->accepted, 1);
                continue;
            }
            pair *pr = &p->pairs[map[k] / 2];
            if (pr->c < 0) continue;
            int from_upstream = map[k] % 2;
            int src = from_upstream ? pr->u : pr->c, dst = from_upstream ? pr->c : pr->u;
            ssize_t r = read(src, buf, sizeof buf);
            if (r <= 0) {
                close_pair(pr, 0);
                continue;
            }
            if (mode == FP_ERROR) {
                if (from_upstream) continue; /* nothing reaches the client but errors */
                int cmds = count_commands(pr, buf, r);
                for (int i = 0; i < cmds; i++) {
                    char line[300];
                    int len = snprintf(line, sizeof line, "-%s\r\n", p->error);
                    if (write(pr->c, line, (size_t)len) != len) break;
                    atomic_fetch_add(&p->errors_sent, 1);
                }
                continue;
            }
            if (!from_upstream) count_commands(pr, buf, r); /* stay in step for a later FP_ERROR */
            /* read afresh: a mode set while poll() waited applies to what it brought */
            int drop = FP_DROP_REPLY;
            if (from_upstream && atomic_compare_exchange_strong(&p->mode, &drop, FP_PASS)) continue;
            if (mode == FP_DELAY) {
                struct timespec ts = {atomic_load(&p->delay_ms) / 1000, (atomic_load(&p->delay_ms) % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            ssize_t off = 0;
            while (off < r) {
                ssize_t w = write(dst, buf + off, (size_t)(r - off));
                if (w <= 0) break;
                off += w;
            }
        }
    }
    for (int i = 0; i < FP_MAX; i++) close_pair(&p->pairs[i], 0);
    return NULL;
}

faultproxy *fp_start(int upstream_port) {
    faultproxy *p = calloc(1, sizeof *p);
    for (int i = 0; i < FP_MAX; i++) p->pairs[i].c = p->pairs[i].u = -1;
    p->upstream = upstream_port;
    p->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) || listen(p->lfd, 64) ||
        getsockname(p->lfd, (struct sockaddr *)&a, &len)) {
        close(p->lfd);
        free(p);
        return NULL;
    }
    p->port = ntohs(a.sin_port);
    pthread_create(&p->th, NULL, run, p);
    return p;
}

int fp_port(const faultproxy *p) { return p->port; }
void fp_set_mode(faultproxy *p, fp_mode mode, int delay_ms) {
    atomic_store(&p->delay_ms, delay_ms);
    atomic_store(&p->mode, (int)mode);
}
void fp_reset_all(faultproxy *p) { atomic_store(&p->reset, 1); }
void fp_set_error(faultproxy *p, const char *error) { snprintf(p->error, sizeof p->error, "%s", error); }
int fp_errors_sent(const faultproxy *p) { return atomic_load(&((faultproxy *)p)->errors_sent); }
int fp_accepted(const faultproxy *p) { return atomic_load(&((faultproxy *)p)->accepted); }
int fp_refused(const faultproxy *p) { return atomic_load(&((faultproxy *)p)->refused); }

void fp_stop(faultproxy *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_join(p->th, NULL);
    close(p->lfd);
    free(p);
}
