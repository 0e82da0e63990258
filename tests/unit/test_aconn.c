/* SPDX-License-Identifier: MIT */
/* bullc__aconn_init when memory runs out (src/aconn.c): each failure must
 * leave the connection holding nothing, closeable without effect and free
 * of leaks, and a success must give all it took back on close. Every
 * allocation the library makes in this program goes through the wrappers
 * below (linked with --wrap), which fail the n-th one on request. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "bullc-private.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);

static bool armed;
static int calls, fail_at, live;

static bool fail_now(void) { return armed && ++calls == fail_at; }
static void *counted(void *p) {
    if (p && armed) live++;
    return p;
}

void *__wrap_malloc(size_t n) { return fail_now() ? NULL : counted(__real_malloc(n)); }
void *__wrap_calloc(size_t n, size_t size) { return fail_now() ? NULL : counted(__real_calloc(n, size)); }
char *__wrap_strdup(const char *s) { return fail_now() ? NULL : counted(__real_strdup(s)); }
void *__wrap_realloc(void *p, size_t n) {
    if (fail_now()) return NULL;
    if (!p) return counted(__real_realloc(p, n));
    return __real_realloc(p, n);
}
void __wrap_free(void *p) {
    if (p && armed) live--;
    __real_free(p);
}

static int closed_calls;
static void on_closed(bullc__aconn *c, void *data) {
    (void)c, (void)data;
    closed_calls++;
}

Test(aconn, init_out_of_memory_leaves_nothing_to_close) {
    bullc_redis_opts *o;
    cr_assert_eq(bullc_redis_opts_new(&o), 0);
    cr_assert_eq(bullc_redis_opts_set_host(o, "127.0.0.1", 6600), 0);
    cr_assert_eq(bullc_redis_opts_set_auth(o, "user", "secret"), 0);
    int failures = 0;
    for (int n = 1;; n++) {
        uv_loop_t loop;
        cr_assert_eq(uv_loop_init(&loop), 0);
        bullc__aconn c;
        bullc_error err = {0};
        closed_calls = 0;
        calls = 0, live = 0, fail_at = n, armed = true;
        int rc = bullc__aconn_init(&c, &loop, o, "bull:cXVldWU=:w:name", &err);
        bool failed = calls >= n;
        if (failed) {
            cr_assert_eq(rc, BULLC_ENOMEM, "allocation %d failed, init returned %d", n, rc);
            cr_assert_eq(err.code, BULLC_ENOMEM);
            cr_assert_null(c.opts, "allocation %d: opts left set", n);
            cr_assert_null(c.name, "allocation %d: name left set", n);
            failures++;
        } else {
            cr_assert_eq(rc, 0);
        }
        c.on_closed = on_closed;
        bullc__aconn_close(&c); /* a no-op after a failure, a close after a success */
        bullc__aconn_close(&c); /* and never twice */
        cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
        armed = false;
        cr_assert_eq(live, 0, "allocation %d: %d allocations left after close", n, live);
        cr_assert_eq(closed_calls, failed ? 0 : 1);
        cr_assert_eq(uv_loop_close(&loop), 0, "allocation %d: a handle is left", n);
        if (!failed) break;
    }
    /* opts, host, user, password, name */
    cr_assert_geq(failures, 5, "only %d allocations were tried", failures);
    bullc_redis_opts_free(o);
}
