/* fuzz_core.c: libFuzzer target for task.h's C API.
 *
 * The input is the random stream of test/model.h: every byte sequence is a
 * sequence of operations (spawn, tick with time steps, wakeup, external
 * alloc/resume/release, cancel, abort, drop, release, tokens, timers,
 * tick limits, trace ids, stale ids; and inside step functions sleep, wait,
 * join, external waits and side actions), and the real scheduler is
 * checked against the reference model after every operation. The run
 * ends with task_destroy and a check that zero bytes are outstanding.
 * Any divergence aborts, so libFuzzer records the input.
 *
 * Built with -fsanitize=fuzzer,address,undefined (make fuzz), or with
 * FUZZ_MAIN defined as a plain program that replays files and directories
 * (make test: suite fuzz-replay-core).
 */
#define TASK_IMPLEMENTATION
#include "../../task.h"
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "../testlib.h"
#include "../model.h"

typedef struct feed { const uint8_t *p; size_t n, i; } feed;
static feed F;

/* 4 input bytes per random number; zeros once the input is used up. */
static uint32_t feed_rnd(model *m) {
    uint32_t v = 0;
    int k;
    (void)m;
    for (k = 0; k < 4; k++) v = (v << 8) | (F.i < F.n ? F.p[F.i++] : 0u);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static model m;
    long ops = 0;
    F.p = data; F.n = size; F.i = 0;
    (void)test_done; (void)test__name;
    test__failed_in_case = 0;
    model_init(&m, 1);
    m.rnd = feed_rnd;
    /* one operation per ~8 input bytes; a run always ends */
    while (F.i < F.n && ops < 4000 && !m.failed && !test__failed_in_case) { model_op(&m); ops++; }
    model_finish(&m);
    if (m.failed || test__failed_in_case) {
        fprintf(stderr, "fuzz_core: the scheduler diverged from the model at op %ld (%s)\n", m.op, m.opname ? m.opname : "?");
        abort();
    }
    return 0;
}

#ifdef FUZZ_MAIN
#include "replay.h"
#endif
