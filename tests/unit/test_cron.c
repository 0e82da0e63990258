/* SPDX-License-Identifier: MIT */
/* The cron engine's corners (src/cron.c, cron_parse.c, tz.c): DST gaps and
 * repeated hours, L, nL, n#k, the day-of-month OR day-of-week rule, 45-minute
 * and 30-minute DST zones, seeded H, sub-second starts, zone names in any
 * case, and cron-parser's refusals with its messages. Every expected value
 * was printed by cron-parser 5.10.3 under Node 20 (compat_cron-diff checks
 * 100,000 more against it live). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <bullc/bullc.h>

struct expect {
    const char *pattern, *tz;
    int64_t from;
    int64_t want[3];
    int n;
    const char *seed;
};

static const struct expect cases[] = {
    {"0 0 * * *", "America/New_York", 1700000000000, {1700024400000}, 1, NULL},
    /* 02:30 does not exist on 10 March 2024 in New York: it fires at 03:30 */
    {"0 30 2 * * *", "America/New_York", 1709985600000, {1710055800000, 1710138600000}, 2, NULL},
    /* 01:30 happens twice on 3 November 2024: once */
    {"0 30 1 * * *", "America/New_York", 1730548800000, {1730611800000, 1730701800000}, 2, NULL},
    /* hourly across the repeated hour: 01:00 EDT, then 02:00 EST (01:00 EST skipped) */
    {"0 0 * * * *", "America/New_York", 1730608200000, {1730610000000, 1730613600000, 1730617200000}, 3, NULL},
    {"0 0 0 L * *", "UTC", 1707523200000, {1709164800000, 1711843200000}, 2, NULL},
    {"0 0 0 * * 5L", "UTC", 1704067200000, {1706227200000, 1708646400000}, 2, NULL},
    {"0 0 0 * * 1#2", "UTC", 1704067200000, {1704672000000, 1707696000000}, 2, NULL},
    /* both days restricted: the 13th OR a Friday */
    {"0 0 0 13 * 5", "UTC", 1704067200000, {1704412800000, 1705017600000, 1705104000000}, 3, NULL},
    {"@weekly", "Asia/Kathmandu", 1704067200000, {1704564900000}, 1, NULL},
    {"0 0 * * *", "Asia/Kathmandu", 1704067200000, {1704132900000}, 1, NULL},
    {"0 0 * * *", "america/new_york", 1700000000000, {1700024400000}, 1, NULL},
    /* Lord Howe's DST moves the clock by 30 minutes */
    {"0 0 2 * * *", "Australia/Lord_Howe", 1728129600000, {1728226800000, 1728313200000}, 2, NULL},
    {"H H * * *", "UTC", 1704067200000, {1704067440000}, 1, "seed"},
    {"* * * * * *", "UTC", 1500, {2000}, 1, NULL},
    {"0 0 29 2 *", "Europe/Berlin", 1735689600000, {1835391600000}, 1, NULL},
};

Test(cron, fire_times_match_cron_parser) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct expect *c = &cases[i];
        bullc_cron *cr;
        bullc_error err = {0};
        cr_assert_eq(bullc_cron_new(&cr, c->pattern, c->tz, c->seed, &err), 0, "%s: %s", c->pattern, err.message);
        bullc_cron_reset(cr, c->from);
        for (int k = 0; k < c->n; k++) {
            int64_t t = 0;
            cr_assert_eq(bullc_cron_next_time(cr, &t, &err), 0, "%s: %s", c->pattern, err.message);
            cr_expect_eq(t, c->want[k], "%s in %s, fire %d: %lld, cron-parser %lld", c->pattern, c->tz, k, (long long)t,
                         (long long)c->want[k]);
        }
        bullc_cron_free(cr);
        if (!c->seed) {
            int64_t t = 0;
            cr_assert_eq(bullc_cron_next(c->pattern, c->tz, c->from, &t, &err), 0);
            cr_expect_eq(t, c->want[0], "bullc_cron_next(%s)", c->pattern);
        }
    }
}

Test(cron, refuses_what_cron_parser_refuses_with_its_message) {
    static const char *const bad[][2] = {
        {"0 0 31 2 *", "Invalid explicit day of month definition"},
        {"61 * * * *", "Constraint error, got value 61 expected range 0-59"},
        {"* * * * * * *", "Invalid cron expression, too many fields"},
        {"0 0 * * 1#6", "Constraint error, invalid dayOfWeek occurrence number (#)"},
        {"0 0 * * L", "CronDayOfWeek Validation error, unexpected standalone L"},
        {"1,1 * * * *", "CronMinute Validation error, duplicate values found: 1"},
        {"*/0 * * * *", "Constraint error, cannot repeat at every 0 time."},
        {"5-1 * * * *", "Invalid range: 5-1, min(5) > max(1)"},
        {"0 0 * foo *", "Validation error, cannot resolve alias \"foo\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t t = 42;
        bullc_error err = {0};
        cr_expect_eq(bullc_cron_next(bad[i][0], "UTC", 0, &t, &err), BULLC_EINVAL, "%s", bad[i][0]);
        cr_expect_str_eq(err.message, bad[i][1]);
        cr_expect_eq(t, 42, "nothing written on failure");
    }
    int64_t t;
    cr_expect_eq(bullc_cron_next("0 0 * * sun-sat", "UTC", 0, &t, NULL), 0);
}

Test(cron, zones) {
    int64_t t;
    bullc_error err = {0};
    cr_expect_eq(bullc_cron_next("* * * * *", "Mars/Olympus", 0, &t, &err), BULLC_EINVAL);
    cr_expect_str_eq(err.message, "Invalid time zone: Mars/Olympus");
    cr_expect_eq(bullc_cron_next("* * * * *", "", 0, &t, NULL), BULLC_EINVAL);
    /* files under zoneinfo that are no zones, and Factory, which ICU refuses */
    cr_expect_eq(bullc_cron_next("* * * * *", "posixrules", 0, &t, NULL), BULLC_EINVAL);
    cr_expect_eq(bullc_cron_next("* * * * *", "Factory", 0, &t, NULL), BULLC_EINVAL);
    cr_expect_eq(bullc_cron_next("* * * * *", "../../etc/passwd", 0, &t, NULL), BULLC_EINVAL);
    /* ICU's own aliases and luxon's fixed offsets */
    cr_expect_eq(bullc_cron_next("0 0 * * *", "PST", 1700000000000, &t, NULL), 0);
    cr_expect_eq(t, 1700035200000);
    cr_expect_eq(bullc_cron_next("0 0 * * *", "UTC+5:30", 1700000000000, &t, NULL), 0);
    cr_expect_eq(t, 1700073000000);
}

Test(cron, no_fire_time_within_the_search_limit) {
    int64_t t = 7;
    bullc_error err = {0};
    cr_expect_eq(bullc_cron_next("0 0 31 4,6 *", "UTC", 0, &t, &err), BULLC_ENOTFOUND);
    cr_expect_str_eq(err.message, "Invalid expression, loop limit exceeded");
    cr_expect_eq(t, 7);
}

/* The process zone is read, never set: TZ is left as found. */
Test(cron, tz_null_reads_the_process_zone) {
    setenv("TZ", "Asia/Kathmandu", 1);
    int64_t t;
    cr_expect_eq(bullc_cron_next("0 0 * * *", NULL, 1704067200000, &t, NULL), 0);
    cr_expect_eq(t, 1704132900000);
    cr_expect_str_eq(getenv("TZ"), "Asia/Kathmandu");
    unsetenv("TZ");
}

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        int64_t t;
        if (bullc_cron_next("0 30 2 * * *", "America/New_York", 1709985600000, &t, NULL) != 0 || t != 1710055800000)
            return (void *)1;
    }
    return NULL;
}

Test(cron, threads) {
    pthread_t th[4];
    for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        cr_expect_null(r);
    }
}
