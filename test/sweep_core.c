/* sweep_core.c: the allocation-failure sweep over test_core.c's scenarios.
 *
 *   sweep_core [--stride N] [case-name-substring]
 *
 * Every test case of test_core.c is run once to count the allocations it
 * makes (N), then again N times, failing the k-th allocation (k = 1..N,
 * every stride-th k). Each run must inject its failure, end (a 10 s alarm
 * otherwise), leave zero bytes outstanding and trip no sanitizer; the
 * case's own checks may fail (they expect success) and are not counted.
 * A scheduler's own first allocation (task_create) is not failed here:
 * test_core's create_destroy covers it, and the cases do not expect it.
 * One TAP line per case, with its allocation count.
 */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

static unsigned long sw_calls, sw_fail, sw_failed;
static long sw_bytes;
static int sw_on;

/* Wraps test_alloc_fn (each case's own counting allocator still runs) to
   count and fail allocations across the whole case. */
static void *sweep_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    test_alloc *a = (test_alloc *)ud;
    void *p;
    size_t old = ptr ? osize : 0;
    if (sw_on && nsize > old && !(ptr == NULL && a->bytes == 0)) {
        sw_calls++;
        if (sw_calls == sw_fail) { sw_failed++; return NULL; }
    }
    p = test_alloc_fn(ud, ptr, osize, nsize);
    if (nsize == 0) sw_bytes -= (long)old;
    else if (p) sw_bytes += (long)nsize - (long)old;
    return p;
}

typedef struct sw_case { const char *name; void (*fn)(void); } sw_case;
static sw_case CASES[128];
static int NCASES;
static void sw_register(const char *name, void (*fn)(void)) {
    if (NCASES < 128) { CASES[NCASES].name = name; CASES[NCASES].fn = fn; NCASES++; }
}

#undef RUN
#define RUN(name) sw_register(#name, name##_run)
#define test_alloc_fn sweep_alloc
#define main test_core_main
#include "test_core.c"
#undef main
#undef test_alloc_fn

static int quiet_fd = -1, saved_out = -1;
static void quiet(int on) {
    fflush(stdout);
    if (on) { saved_out = dup(1); dup2(quiet_fd, 1); }
    else { dup2(saved_out, 1); close(saved_out); }
}

int main(int argc, char **argv) {
    unsigned long stride = 1, total_sites = 0, total_runs = 0;
    const char *only = NULL;
    int i, bad_cases = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--stride") == 0 && i + 1 < argc) stride = strtoul(argv[++i], NULL, 0);
        else only = argv[i];
    }
    if (!stride) stride = 1;
    quiet_fd = open("/dev/null", O_WRONLY);
    quiet(1);
    test_core_main();
    quiet(0);
    for (i = 0; i < NCASES; i++) {
        unsigned long n, k, runs = 0;
        int bad = 0;
        if (only && !strstr(CASES[i].name, only)) continue;
        sw_on = 1; sw_calls = 0; sw_fail = 0; sw_failed = 0; sw_bytes = 0;
        quiet(1);
        CASES[i].fn();
        quiet(0);
        n = sw_calls;
        if (sw_bytes != 0) { printf("# %s: %ld bytes outstanding without failures\n", CASES[i].name, sw_bytes); bad = 1; }
        for (k = 1; k <= n && !bad; k += stride) {
            sw_calls = 0; sw_fail = k; sw_failed = 0; sw_bytes = 0;
            quiet(1);
            alarm(10);
            CASES[i].fn();
            alarm(0);
            quiet(0);
            runs++;
            if (sw_failed != 1) { printf("# %s: k=%lu: the failure was not injected (%lu)\n", CASES[i].name, k, sw_failed); bad = 1; }
            if (sw_bytes != 0) { printf("# %s: k=%lu: %ld bytes outstanding\n", CASES[i].name, k, sw_bytes); bad = 1; }
        }
        sw_on = 0;
        total_sites += n;
        total_runs += runs;
        bad_cases += bad;
        printf("%s - sweep %s: %lu allocations, %lu runs with one failing\n", bad ? "not ok" : "ok", CASES[i].name, n, runs);
        fflush(stdout);
    }
    printf("# core sweep: %d cases, %lu allocation sites, %lu runs (stride %lu)\n", NCASES, total_sites, total_runs, stride);
    return bad_cases ? 1 : 0;
}
