/* SPDX-License-Identifier: MIT */
/* bullc-fake-provider's private header: shared by its .c files only. A test
 * double of a game-data WebSocket feed (NAMED_POWERBALL rounds), with the
 * faults the socket client must survive: dropped connections, bad frames,
 * stalls. It uses libwebsockets on a libuv loop, cJSON and libc. */
#ifndef FP_H
#define FP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libwebsockets.h>
#include <uv.h>

/* Kinds of message; the others are inserted between rounds (--bad-every).
 * text: not JSON; binary; oversized: valid JSON, too big; untyped: JSON
 * whose type is not a string; inject: not JSON, but JSON once pasted into
 * an object (`1,"messageType":"forged"`); bignum: JSON whose numbers a
 * re-printing client would change. */
enum {
    FP_ROUND,
    FP_BAD_TEXT,
    FP_BAD_BINARY,
    FP_BAD_OVERSIZED,
    FP_BAD_UNTYPED,
    FP_BAD_INJECT,
    FP_BAD_BIGNUM,
    FP_NKINDS
};
extern const char *const fp_kind_names[FP_NKINDS]; /* "round", "text", ... as in --bad-kinds */

typedef struct fp_config {
    int port;
    const char *bind;     /* listen address; default 127.0.0.1 */
    const char *provider; /* the provider name in every round */
    double rate;          /* rounds per second per connection; 0: as fast as the socket takes them */
    uint64_t count;       /* rounds in total, over all connections; 0: no limit */
    double duration;      /* seconds before exiting anyway; 0: no limit */
    int64_t linger_ms;    /* after --count: wait, then close and exit; < 0: stay until a signal */
    bool wait_subscribe;  /* emit only after the client's first message */
    uint64_t drop_every;  /* drop a connection after every N rounds on it; 0: never */
    uint64_t stall_after; /* after N rounds on a connection, stop writing and reading it */
    uint64_t bad_every;   /* a bad message after every N rounds; 0: never */
    int bad_kinds[FP_NKINDS];
    int nbad_kinds;
    size_t oversize_bytes; /* size of the oversized text frame */
    size_t fragment_bytes; /* send text longer than this in fragments of this size; 0: never */
    const char *sent_log;  /* one JSON line per message written */
    const char *tls_cert, *tls_key;
} fp_config;

/* Counters, printed in the summary line. */
typedef struct fp_stats {
    uint64_t rounds;   /* round messages written */
    uint64_t last_seq; /* the seq of the last round written */
    uint64_t bad[FP_NKINDS];
    uint64_t connections; /* accepted */
    uint64_t drops;       /* connections dropped on purpose */
    uint64_t subscribes;  /* first messages received (recorded in the log) */
} fp_stats;

typedef struct fp_conn fp_conn;

typedef struct fp_app {
    fp_config cfg;
    uv_loop_t loop;
    struct lws_context *ctx;
    uv_timer_t tick, linger, deadline, grace;
    uv_signal_t sig_int, sig_term, sig_usr1, sig_usr2;
    fp_stats st;
    fp_conn *conns; /* established connections */
    FILE *sent_log;
    bool finishing; /* --count reached, a signal or --duration: closing everything */
    bool lingering;
    int64_t start_ms;
} fp_app;

extern fp_app fp;

/* conn.c: the WebSocket protocol and the emission of messages. */
extern const struct lws_protocols fp_protocols[];
/* Called by the tick timer: schedules writes on connections with messages due. */
void fp_conns_tick(void);
/* SIGUSR1: drop every connection (after the message being written). */
void fp_conns_drop_all(void);
/* Closes every connection with a close frame (normal closure). */
void fp_conns_close_all(void);
/* True when --count is reached and every message is written. */
bool fp_all_sent(void);

/* main.c */
int64_t fp_now_ms(void);
void fp_summary(const char *why);
void fp_finish(const char *why);

#endif
