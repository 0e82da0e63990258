/* SPDX-License-Identifier: MIT */
/* PRIVATE: the libuv adapter for hiredis async contexts (uv_redis.c). */
#ifndef BULLC_UV_REDIS_H
#define BULLC_UV_REDIS_H

#include <async.h>
#include <uv.h>

/* Attaches `ac` to `loop`, as redisLibuvAttach does; the adapter frees
 * itself when hiredis frees the context. busy_poll_us > 0 keeps the loop
 * polling for that long after each write while a reply is due. With
 * tls_opts (borrowed: it must outlive the context), the socket carries TLS
 * (tls.c): the handshake runs before the connect callback, and hiredis's
 * buffers are written and fed through SSL. REDIS_OK, or REDIS_ERR (nothing
 * attached). Loop thread only. */
int bullc__uv_redis_attach(redisAsyncContext *ac, uv_loop_t *loop, int busy_poll_us, const bullc_redis_opts *tls_opts);

#endif
