/* SPDX-License-Identifier: MIT */
/* Small helpers: UTF-8 validation (job data must be what JSON.stringify can
 * produce), saturating number conversion, base64 (client names). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "bullc-private.h"

static bool ok(const char *s) { return bullc__utf8_valid(s, strlen(s)); }

Test(util, utf8) {
    cr_assert(ok(""));
    cr_assert(ok("plain ascii {\"a\":1}"));
    cr_assert(ok("na\xc3\xafve \xe2\x82\xac \xf0\x9f\x8e\xb2"), "2, 3 and 4 byte forms");
    cr_assert_not(ok("\xc3"), "truncated");
    cr_assert_not(ok("\xe2\x82"), "truncated");
    cr_assert_not(ok("\x80"), "a continuation byte alone");
    cr_assert_not(ok("\xc0\xaf"), "overlong");
    cr_assert_not(ok("\xe0\x80\xaf"), "overlong");
    cr_assert_not(ok("\xed\xa0\x80"), "a surrogate");
    cr_assert_not(ok("\xf4\x90\x80\x80"), "past U+10FFFF");
    cr_assert_not(ok("\xff"), "not a lead byte");
}

Test(util, double_to_i64_saturates) {
    cr_assert_eq(bullc__double_to_i64(1.9), 1);
    cr_assert_eq(bullc__double_to_i64(-1.9), -1);
    cr_assert_eq(bullc__double_to_i64(1e30), INT64_MAX);
    cr_assert_eq(bullc__double_to_i64(-1e30), INT64_MIN);
    cr_assert_eq(bullc__double_to_i64(NAN), 0);
}

Test(util, base64) {
    sds b = bullc__base64("test-queue", 10);
    cr_assert_str_eq(b, "dGVzdC1xdWV1ZQ==");
    sdsfree(b);
}
