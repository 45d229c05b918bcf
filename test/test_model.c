/* test_model.c: a randomized model test of task.h (see model.h).
 *
 *   test_model [steps [seed [nseeds]]]
 *
 * Runs nseeds sequences (seeds seed, seed+1, ...) of `steps` random
 * operations each, checking the real scheduler against the model after
 * every one. One TAP line per seed; a failing seed prints the operation
 * number and how to re-run it alone.
 */
#define TASK_IMPLEMENTATION
#include "task.h"
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "testlib.h"
#include "model.h"

int main(int argc, char **argv) {
    long steps = argc > 1 ? atol(argv[1]) : 5000;
    unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
    long nseeds = argc > 3 ? atol(argv[3]) : 20, k, i;
    static model m;
    printf("# test_model steps=%ld seed=%llu nseeds=%ld\n", steps, seed, nseeds);
    for (k = 0; k < nseeds; k++) {
        unsigned long long sd = seed + (unsigned long long)k;
        test__name = "model";
        test__failed_in_case = 0;
        model_init(&m, sd);
        for (i = 0; i < steps && !m.failed && !test__failed_in_case; i++) model_op(&m);
        if (m.failed || test__failed_in_case)
            printf("# diverged at op %ld; re-run: %s %ld %llu 1\n", m.op, argv[0], steps, sd);
        model_finish(&m);
        test__cases++;
        if (m.failed || test__failed_in_case) { test__fails++; printf("not ok - model seed %llu\n", sd); }
        else printf("ok - model seed %llu (%ld ops: %ld steps, %ld timers, %ld cancel wakes, %ld abort steps, exits %ld/%ld/%ld, "
                    "%ld wake-limit stops)\n", sd, m.op, m.n_steps, m.n_fired, m.n_cancel_wake, m.n_abort_steps,
                    m.n_exits[1], m.n_exits[2], m.n_exits[3], m.n_limit_stops);
        fflush(stdout);
    }
    return test_done();
}
