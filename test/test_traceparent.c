/* test_traceparent.c: task_trace_format / task_trace_parse
 * against the W3C Trace Context recommendation (its examples, and the
 * invalid headers its rules reject), the round trip of task.h's 64-bit
 * trace ids, and the running task's id through task_trace_spawn.
 */
#define TASK_IMPLEMENTATION
#include "task.h"
/* testlib's TEST_CASE trips gcc's indentation heuristic */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "testlib.h"

/* The example of the recommendation, section 3.2.2.1 / 3.2.4 */
#define W3C_EX1 "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define W3C_EX2 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* The documented fold: ((T.hi ^ T.lo) & ~0xFFFF) | (P & 0xFFFF) when that
   root part is not zero (see zero_fold_never_gives_zero_root otherwise) */
TEST_CASE(parses_the_w3c_examples) {
    uint64_t id = 0;
    unsigned flags = 99;
    CHECK_INT(task_trace_parse(W3C_EX1, &id, &flags), TASK_OK);
    CHECK_U64(id, 0x8ebf8e380a4d3331ull);
    CHECK_INT(flags, 1);
    CHECK_INT(task_trace_parse(W3C_EX2, &id, NULL), TASK_OK);
    CHECK_U64(id, 0xe837bda879bd02b7ull);
    /* not sampled */
    CHECK_INT(task_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &id, &flags), TASK_OK);
    CHECK_INT(flags, 0);
    /* a trace-id with a zero high half is fine, only all zeros is not */
    CHECK_INT(task_trace_parse("00-00000000000000000000000000000001-0000000000000001-01", &id, NULL), TASK_OK);
    CHECK_U64(id, 0x10001ull);
}

/* Valid headers whose first fold is zero in bits 63..16 (the halves agree
   there) get a root part that is not zero, the same every time, and that
   task_trace_format accepts. */
TEST_CASE(zero_fold_never_gives_zero_root) {
    static const struct { const char *h; uint64_t id; } cases[] = {
        /* high half == low half: their common root part */
        {"00-0af7651916cd43dd0af7651916cd43dd-b7ad6b7169203331-01", 0x0af7651916cd3331ull},
        /* they differ in bits 15..0 only */
        {"00-0af7651916cd43dd0af7651916cd0000-b7ad6b7169203331-01", 0x0af7651916cd3331ull},
        {"00-ffffffffffffffffffffffffffff0001-0000000000000002-01", 0xffffffffffff0002ull},
        /* both halves only in bits 15..0: they move up */
        {"00-000000000000abcd0000000000001234-0000000000000001-01", 0x0000abcd12340001ull},
        {"00-000000000000abcd000000000000abcd-000000000000ffff-01", 0x0000abcdabcdffffull},
        {"00-00000000000000010000000000000000-0000000000000001-01", 0x0000000100000001ull},
        {"00-0000000000000000000000000000ffff-0000000000000001-01", 0x00000000ffff0001ull},
        {"cc-00000000000000000000000000000001-0000000000000001-01-more", 0x10001ull},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t id = 0, again = 0, back = 0;
        char out[TASK_TRACE_HEADER_LEN + 1];
        if (task_trace_parse(cases[i].h, &id, NULL) != TASK_OK) { TEST__FAIL("refused \"%s\"", cases[i].h); continue; }
        if (id != cases[i].id) TEST__FAIL("\"%s\" -> %llx, expected %llx", cases[i].h, (unsigned long long)id,
                                          (unsigned long long)cases[i].id);
        CHECK_INT(task_trace_parse(cases[i].h, &again, NULL), TASK_OK);
        CHECK_U64(again, id);
        CHECK(id >> 16 != 0);
        CHECK_INT(task_trace_format(id, out), TASK_OK);
        CHECK_INT(task_trace_parse(out, &back, NULL), TASK_OK);
        CHECK_U64(back, id);
    }
}

/* Random valid headers, biased to the halves agreeing above bit 15: every
   one parses to an id that format accepts, and round-trips. */
TEST_CASE(every_valid_header_formats) {
    uint64_t x = 0x2545f4914f6cdd1dull;
    int i, bad = 0;
    for (i = 0; i < 20000 && !bad; i++) {
        static const char hexd[] = "0123456789abcdef";
        char h[TASK_TRACE_HEADER_LEN + 1], out[TASK_TRACE_HEADER_LEN + 1];
        uint64_t hi, lo, p, id = 0, back = 0;
        int k;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        hi = x;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        switch (i % 4) {
        case 0: lo = hi; break;
        case 1: lo = (hi & ~0xFFFFull) | (x & 0xFFFF); break;
        case 2: hi &= 0xFFFF; lo = x & 0xFFFF; break;
        default: lo = x; break;
        }
        if (hi == 0 && lo == 0) lo = 1;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        p = x ? x : 1;
        memcpy(h, "00-", 3);
        for (k = 0; k < 16; k++) h[3 + k] = hexd[(hi >> (60 - 4 * k)) & 0xF];
        for (k = 0; k < 16; k++) h[19 + k] = hexd[(lo >> (60 - 4 * k)) & 0xF];
        h[35] = '-';
        for (k = 0; k < 16; k++) h[36 + k] = hexd[(p >> (60 - 4 * k)) & 0xF];
        memcpy(h + 52, "-01", 4);
        if (task_trace_parse(h, &id, NULL) != TASK_OK || task_trace_format(id, out) != TASK_OK ||
            task_trace_parse(out, &back, NULL) != TASK_OK || back != id || (id & 0xFFFF) != (p & 0xFFFF)) {
            TEST__FAIL("%s -> %llx -> %s -> %llx", h, (unsigned long long)id, out, (unsigned long long)back);
            bad = 1;
        }
    }
}

TEST_CASE(later_versions) {
    uint64_t id = 0;
    unsigned flags = 0;
    /* "cc": a later version, more fields after a dash are ignored */
    CHECK_INT(task_trace_parse("cc-" "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", &id, NULL), TASK_OK);
    CHECK_U64(id, 0x8ebf8e380a4d3331ull);
    CHECK_INT(task_trace_parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-the-future-will-be-like",
                                     &id, &flags), TASK_OK);
    CHECK_INT(flags, 1);
    /* ...but not glued on without a dash */
    CHECK_INT(task_trace_parse("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01.what", &id, NULL), TASK_EINVAL);
    /* and version 00 must be exactly 55 characters */
    CHECK_INT(task_trace_parse(W3C_EX1 "-what-the-future-will-be-like", &id, NULL), TASK_EINVAL);
}

TEST_CASE(optional_whitespace_is_ignored) {
    uint64_t id = 0;
    CHECK_INT(task_trace_parse(" \t" W3C_EX1, &id, NULL), TASK_OK);
    CHECK_U64(id, 0x8ebf8e380a4d3331ull);
    CHECK_INT(task_trace_parse(W3C_EX1 "\t ", &id, NULL), TASK_OK);
}

TEST_CASE(rejects_invalid_headers) {
    static const char *const bad[] = {
        "",
        "00",
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* version ff */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  /* all-zero trace-id */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  /* all-zero parent-id */
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  /* uppercase trace-id */
        "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",  /* uppercase parent-id */
        "0A-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* uppercase version */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0A",  /* uppercase flags */
        "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",   /* trace-id 31 hex */
        "00-0af7651916cd43dd8448eb211c80319cc-b7ad6b7169203331-01", /* trace-id 33 hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",   /* parent-id 15 hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033311-01", /* parent-id 17 hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",   /* flags 1 hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-011", /* flags 3 hex */
        "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   /* version 1 hex */
        "000-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", /* version 3 hex */
        "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",  /* wrong separators */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331_01",
        "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",  /* not hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333z-01",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
        "00-0af7651916cd43dd 448eb211c80319c-b7ad6b7169203331-01",  /* inner space */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n",/* not OWS */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-", /* 00 with an extra dash */
        "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",     /* later version, too short */
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t id = 12345;
        unsigned flags = 7;
        if (task_trace_parse(bad[i], &id, &flags) != TASK_EINVAL) TEST__FAIL("accepted \"%s\"", bad[i]);
        if (id != 12345 || flags != 7) TEST__FAIL("\"%s\" changed the outputs", bad[i]);
    }
    CHECK_INT(task_trace_parse(NULL, &(uint64_t){0}, NULL), TASK_EINVAL);
    CHECK_INT(task_trace_parse(W3C_EX1, NULL, NULL), TASK_EINVAL);
}

TEST_CASE(format_layout) {
    char out[TASK_TRACE_HEADER_LEN + 1];
    CHECK_INT(task_trace_format(0x0001002a00070005ull, out), TASK_OK);
    CHECK_STR(out, "00-00000000000000000001002a00070000-0001002a00070005-01");
    CHECK_INT((int)strlen(out), TASK_TRACE_HEADER_LEN);
    CHECK_INT(task_trace_format(0xffffffffffffffffull, out), TASK_OK);
    CHECK_STR(out, "00-0000000000000000ffffffffffff0000-ffffffffffffffff-01");
    /* no trace (0), or only a hop: an all-zero trace-id is not allowed */
    CHECK_INT(task_trace_format(0, out), TASK_EINVAL);
    CHECK_STR(out, "");
    CHECK_INT(task_trace_format(0xFFFF, out), TASK_EINVAL);
    CHECK_INT(task_trace_format(0x10000, out), TASK_OK);
    CHECK_STR(out, "00-00000000000000000000000000010000-0000000000010000-01");
}

TEST_CASE(round_trip) {
    static const uint64_t ids[] = {0x10000ull, 0x1ffffull, 0x0001002a00070005ull, 0x8000000000000000ull,
                                   0xffffffffffffffffull, 0x123456789abcdef0ull, 0xfedcba9876543210ull};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t i;
    for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char out[TASK_TRACE_HEADER_LEN + 1];
        uint64_t back = 0;
        CHECK_INT(task_trace_format(ids[i], out), TASK_OK);
        CHECK_INT(task_trace_parse(out, &back, NULL), TASK_OK);
        CHECK_U64(back, ids[i]);
    }
    for (i = 0; i < 10000; i++) { /* xorshift64 */
        char out[TASK_TRACE_HEADER_LEN + 1];
        uint64_t back = 0;
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if ((x >> 16) == 0) continue;
        if (task_trace_format(x, out) != TASK_OK || task_trace_parse(out, &back, NULL) != TASK_OK || back != x) {
            TEST__FAIL("round trip of %llx: %s -> %llx", (unsigned long long)x, out, (unsigned long long)back);
            break;
        }
    }
}

/* A foreign trace keeps one id across hops: only the parent-id changes. */
TEST_CASE(foreign_trace_is_stable_across_hops) {
    uint64_t a = 0, b = 0;
    char out[TASK_TRACE_HEADER_LEN + 1], again[TASK_TRACE_HEADER_LEN + 1];
    CHECK_INT(task_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba90001-01", &a, NULL), TASK_OK);
    CHECK_INT(task_trace_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-53995c3f42cd0002-01", &b, NULL), TASK_OK);
    CHECK_U64(a >> 16, b >> 16);
    CHECK_INT((int)(a & 0xFFFF), 1);
    CHECK_INT((int)(b & 0xFFFF), 2);
    /* re-emitting it keeps the trace: format(parse(h)) parses to the same id */
    CHECK_INT(task_trace_format(a, out), TASK_OK);
    CHECK_INT(task_trace_parse(out, &b, NULL), TASK_OK);
    CHECK_U64(a, b);
    CHECK_INT(task_trace_format(b, again), TASK_OK);
    CHECK_STR(out, again);
}

typedef struct { char header[TASK_TRACE_HEADER_LEN + 1]; uint64_t mine, parsed; int rc; } probe;

static int trace_step(task_ctx *c) {
    probe *p = (probe *)c->ud;
    CHECK_INT(task_trace_of(c->sched, c->self, &p->mine), TASK_OK);
    p->rc = task_trace_format(task_trace_propagate(c->sched), p->header);
    if (p->rc == TASK_OK) p->rc = task_trace_parse(p->header, &p->parsed, NULL);
    return TASK_STEP_DONE;
}

/* The running task's trace, through the scheduler's trace functions. */
TEST_CASE(running_task_trace) {
    test_alloc a = {0};
    task_sched *s = task_create(test_alloc_fn, &a);
    probe p;
    memset(&p, 0, sizeof p);
    CHECK(s != NULL);
    if (!s) return;
    CHECK_INT(task_trace_node(s, 7), TASK_OK);
    task_tick(s, 3 * TASK_SEC);
    task_trace_spawn(s); /* the host's trace: node 7, second 3, sequence 1, hop 7 */
    CHECK_INT(task_spawn(s, trace_step, &p, NULL, NULL), TASK_OK);
    task_tick(s, 3 * TASK_SEC);
    CHECK_U64(p.mine, 0x0007000300010007ull);
    CHECK_INT(p.rc, TASK_OK);
    CHECK_STR(p.header, "00-00000000000000000007000300010000-0007000300010007-01");
    CHECK_U64(p.parsed, p.mine);
    task_destroy(s);
    CHECK_INT((long long)a.bytes, 0);
}

int main(void) {
    RUN(parses_the_w3c_examples);
    RUN(zero_fold_never_gives_zero_root);
    RUN(every_valid_header_formats);
    RUN(later_versions);
    RUN(optional_whitespace_is_ignored);
    RUN(rejects_invalid_headers);
    RUN(format_layout);
    RUN(round_trip);
    RUN(foreign_trace_is_stable_across_hops);
    RUN(running_task_trace);
    return test_done();
}
