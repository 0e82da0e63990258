/* SPDX-License-Identifier: MIT */
/* bullc-test-reference-add: the reference producer helpers
 * (tools/reference/reference.h) from the command line, for the Node tests
 * that compare their jobs with the NestJS QueueService's.
 *
 *   bullc-test-reference-add PREFIX game-data PROVIDER DATA_JSON [MESSAGE_TYPE]
 *   bullc-test-reference-add PREFIX notification USER_ID TYPE MESSAGE [DATA_JSON]
 *
 * A left-out optional argument is NULL (the helper's default). Redis from
 * REDIS_URL. Prints the job id; exit 0, 2 (invalid input) or 3. */
#include <bullc/bullc.h>
#include <stdio.h>
#include <string.h>

#include "reference.h"

int main(int argc, char **argv) {
    bool game = argc >= 5 && !strcmp(argv[2], "game-data") && argc <= 6;
    bool note = argc >= 6 && !strcmp(argv[2], "notification") && argc <= 7;
    if (!game && !note) {
        fprintf(stderr,
                "usage: %s PREFIX game-data PROVIDER DATA_JSON [MESSAGE_TYPE]\n"
                "       %s PREFIX notification USER_ID TYPE MESSAGE [DATA_JSON]\n",
                argv[0], argv[0]);
        return 2;
    }
    bullc_queue_opts *o = NULL;
    if (bullc_queue_opts_new(&o) || bullc_queue_opts_set_prefix(o, argv[1])) return 3;
    bullc_queue *q = NULL;
    bullc_error err = {0};
    int rc = bullc_queue_new(&q, game ? BULLC_REFERENCE_TEST_QUEUE : BULLC_REFERENCE_NOTIFICATION_QUEUE, o, &err);
    bullc_queue_opts_free(o);
    if (rc) {
        fprintf(stderr, "%s\n", err.message);
        return 3;
    }
    char *id = NULL;
    rc = game
             ? bullc_reference_add_test_queue_job(q, argv[3], argv[4], argc > 5 ? argv[5] : NULL, &id, &err)
             : bullc_reference_add_notification_job(q, argv[3], argv[4], argv[5], argc > 6 ? argv[6] : NULL, &id, &err);
    if (rc < 0)
        fprintf(stderr, "%s\n", err.message);
    else
        printf("%s\n", id);
    bullc_free(id);
    bullc_queue_free(q);
    return rc == BULLC_EINVAL ? 2 : rc < 0 ? 3 : 0;
}
