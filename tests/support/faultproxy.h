/* SPDX-License-Identifier: MIT */
/* A TCP fault proxy for tests, on loopback only: it relays between clients
 * and an upstream (the test's redis-server) and can delay, blackhole, reset
 * or drop a reply, on command. Runs on its own thread. */
#ifndef BULLC_FAULTPROXY_H
#define BULLC_FAULTPROXY_H

typedef enum fp_mode {
    FP_PASS = 0,       /* relay everything */
    FP_BLACKHOLE = 1,  /* read nothing, send nothing; sockets stay open */
    FP_DELAY = 2,      /* hold each chunk for delay_ms before relaying it */
    FP_DROP_REPLY = 3, /* drop the next chunk coming from upstream, then pass */
    FP_ERROR = 4,      /* answer every command with an error reply (fp_set_error), upstream untouched */
    FP_REFUSE = 5      /* close each new connection as soon as it is accepted; those open still relay */
} fp_mode;

typedef struct faultproxy faultproxy;

/* Listens on 127.0.0.1:<free port> and relays to 127.0.0.1:upstream_port. */
faultproxy *fp_start(int upstream_port);
int fp_port(const faultproxy *p);
void fp_set_mode(faultproxy *p, fp_mode mode, int delay_ms);
/* The error line FP_ERROR answers with, e.g. "LOADING Valkey is loading the dataset in memory". */
void fp_set_error(faultproxy *p, const char *error);
/* Commands answered with the error so far. */
int fp_errors_sent(const faultproxy *p);
/* Resets every connection now (RST), new ones are accepted. */
void fp_reset_all(faultproxy *p);
/* Connections accepted so far (relayed, not those FP_REFUSE closed). */
int fp_accepted(const faultproxy *p);
/* Connections FP_REFUSE closed so far. */
int fp_refused(const faultproxy *p);
void fp_stop(faultproxy *p);

#endif
