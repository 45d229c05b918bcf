/* bench_core.c: the C core's benchmarks (the C rows of make bench).
 *
 *   bench_core [--quick] [--smoke] [--reps N] [--n N] [--only KEY,...]
 *
 * --n sets the size of the rows that take one (tasks, round trips,
 * timers, ops): with --smoke --reps 1 and two sizes, callgrind gives the
 * exact instructions per operation as the difference of the two counts.
 * Prints one line per row on stdout, tab-separated, for bench/run.sh:
 *   row  NAME  OURS  PEER  UNIT  KIND  TARGET
 *   skip NAME  REASON
 *   note TEXT
 * KIND is "abs" (met when OURS <= TARGET), "ratio" (met when OURS/PEER <=
 * TARGET) or "info" (no target); PEER is "-" when there is none.
 * Every figure is the median of REPS repetitions (after one warm-up run)
 * in this one process. --smoke runs one tiny iteration of everything
 * (for make test: it checks the benchmarks work, not how fast they are).
 *
 * Built with -DBENCH_HAVE_UV and -luv, the timer rows also run libuv on
 * the same deadlines; without it they are skipped with a message. Built
 * with -DBENCH_HAVE_PCL and -lpcl (Debian's libpcl1-dev, a stackful C
 * coroutine library), the spawn, switch and memory rows are also measured
 * for PCL coroutines.
 */
#define _POSIX_C_SOURCE 200809L
#include "task.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif
#ifdef BENCH_HAVE_PCL
#include <malloc.h> /* mallinfo2: PCL allocates with malloc */
#include <pcl.h>
#endif

static int smoke, quick;
static int reps = 7;

/* ---- clocks, statistics, output ---------------------------------------- */

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#ifdef BENCH_HAVE_UV
static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
#endif

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void row(const char *name, double ours, double peer, const char *unit, const char *kind, double target) {
    char p[64];
    if (peer < 0) strcpy(p, "-");
    else snprintf(p, sizeof p, "%.4g", peer);
    printf("row\t%s\t%.4g\t%s\t%s\t%s\t%g\n", name, ours, p, unit, kind, target);
    fflush(stdout);
}

static void die(const char *what, task_sched *s) {
    fprintf(stderr, "bench_core: %s failed: %s\n", what, s ? task_errmsg(s) : "");
    exit(1);
}

static char *label(const char *fmt, unsigned long n) {
    static char buf[8][96];
    static int k;
    char *b = buf[k++ & 7], num[32];
    if (n >= 1000000 && n % 1000000 == 0) snprintf(num, sizeof num, "%luM", n / 1000000);
    else if (n >= 1000 && n % 1000 == 0) snprintf(num, sizeof num, "%luk", n / 1000);
    else snprintf(num, sizeof num, "%lu", n);
    snprintf(b, 96, fmt, num);
    return b;
}

/* xorshift64*: the same deadlines for us and for the peer */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* ---- a counting allocator (task_alloc_fn, lua_Alloc's shape) ----------- */

typedef struct counter { size_t bytes, peak; } counter;

static void *count_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    counter *c = (counter *)ud;
    void *q;
    if (nsize == 0) {
        if (ptr) c->bytes -= osize;
        free(ptr);
        return NULL;
    }
    if (!(q = realloc(ptr, nsize))) return NULL;
    if (ptr) c->bytes -= osize;
    c->bytes += nsize;
    if (c->bytes > c->peak) c->peak = c->bytes;
    return q;
}

/* ---- step functions ---------------------------------------------------- */

static int step_done(task_ctx *c) { (void)c; return TASK_STEP_DONE; }

typedef struct counted { long left; } counted;

static int step_yield(task_ctx *c) {
    counted *y = (counted *)c->ud;
    if (c->why == TASK_WHY_ABORT || y->left-- <= 0) return TASK_STEP_DONE;
    return TASK_STEP_YIELD;
}

typedef struct pingpong { task_id other; long *left; int leads; } pingpong;

/* Wakes the other task, then waits to be woken; the task that does not
   lead only waits on its first run. Ends, leaving the other one waiting,
   when *left runs out. */
static int step_ping(task_ctx *c) {
    pingpong *p = (pingpong *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    if (c->why != TASK_WHY_START || p->leads) {
        if (*p->left <= 0) return TASK_STEP_DONE;
        --*p->left;
        if (task_wakeup(c->sched, p->other, NULL) != TASK_OK) die("task_wakeup", c->sched);
    }
    if (task_wait(c->sched) != TASK_OK) die("task_wait", c->sched);
    return TASK_STEP_SUSPEND;
}

/* Sleeps once for (uintptr_t)ud ns, then ends. */
static int step_sleep(task_ctx *c) {
    if (c->why != TASK_WHY_START) return TASK_STEP_DONE;
    if (task_sleep(c->sched, (uint64_t)(uintptr_t)c->ud) != TASK_OK) die("task_sleep", c->sched);
    return TASK_STEP_SUSPEND;
}

static void cb_count(task_sched *s, task_id id, void *ud) {
    (void)s; (void)id;
    ++*(long *)ud;
}

/* ---- 1. spawn + run + exit --------------------------------------------- */

static double b_spawn(unsigned long n) {
    task_sched *s = task_create(NULL, NULL);
    task_opts o;
    double v[64];
    int r;
    uint64_t now = 1;
    memset(&o, 0, sizeof o);
    o.flags = TASK_DETACHED;
    for (r = -1; r < reps; r++) {
        unsigned long done = 0;
        double t0 = mono();
        while (done < n) { /* a host loop: spawn a batch, then tick */
            unsigned long b = n - done < 1024 ? n - done : 1024, k;
            for (k = 0; k < b; k++)
                if (task_spawn(s, step_done, NULL, &o, NULL) != TASK_OK) die("task_spawn", s);
            if (task_tick(s, now++) != (int)b) die("task_tick", s);
            done += b;
        }
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
    }
    if (task_count(s, -1) != 0) die("spawn: tasks left", s);
    task_destroy(s);
    return median(v, reps);
}

/* ---- 2. yield round trip ----------------------------------------------- */

/* For the observed variant: hooks that count, a real clock. */
static long hook_count;
static void hook_resume(task_sched *s, task_id t, void *ud) { (void)s; (void)t; ++*(long *)ud; }
static void hook_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    (void)s; (void)t; (void)did; (void)waits;
    ++*(long *)ud;
}
static uint64_t clock_ns(void *ud) {
    struct timespec ts;
    (void)ud;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}

/* observed: with resume and suspend hooks, and statistics on a clock */
static double b_yield(unsigned long n, int observed) {
    double v[64];
    int r;
    for (r = -1; r < reps; r++) {
        task_sched *s = task_create(NULL, NULL);
        counted y;
        unsigned long k;
        uint64_t now = 1;
        double t0;
        y.left = (long)n + 1; /* the first run, n round trips */
        if (observed) {
            task_hooks h;
            memset(&h, 0, sizeof h);
            h.resume = hook_resume;
            h.suspend = hook_suspend;
            h.ud = &hook_count;
            task_set_hooks(s, h);
            if (task_enable_stats(s, clock_ns, NULL) != TASK_OK) die("task_enable_stats", s);
        }
        if (task_spawn(s, step_yield, &y, NULL, NULL) != TASK_OK) die("task_spawn", s);
        task_tick(s, now++); /* first run */
        t0 = mono();
        for (k = 0; k < n; k++) task_tick(s, now++); /* one yield, tick, resume each */
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
        if (y.left != 0 || task_tick(s, now) != 1 || task_count(s, -1) != 0) die("yield: count", s);
        task_destroy(s);
    }
    return median(v, reps);
}

/* ---- 3. wait/wakeup ping-pong ------------------------------------------ */

static double b_pingpong(unsigned long n) {
    double v[64];
    int r;
    for (r = -1; r < reps; r++) {
        task_sched *s = task_create(NULL, NULL);
        pingpong a, b;
        long left = (long)n;
        double t0;
        a.left = b.left = &left;
        a.leads = 1;
        b.leads = 0;
        if (task_spawn(s, step_ping, &b, NULL, &a.other) != TASK_OK) die("task_spawn", s);
        if (task_spawn(s, step_ping, &a, NULL, &b.other) != TASK_OK) die("task_spawn", s);
        t0 = mono();
        /* b parks, a wakes it; a tick returns after the default wake limit
           of resumes, so the pair takes many ticks: their cost is counted */
        while (left != 0 && task_count(s, -1) > 0) task_tick(s, 1);
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
        if (left != 0) die("pingpong: count", s);
        task_destroy(s);
    }
    return median(v, reps);
}

/* ---- PCL: the same spawn, switch and memory with stackful coroutines ----
   A PCL coroutine needs a stack of its own: PCL's smallest (4 KiB), which
   favours it (a real task calling printf needs more). Its switch is a
   co_call into the coroutine and a co_resume back, the round trip our yield
   row makes through the scheduler. */
#ifdef BENCH_HAVE_PCL
#define PCL_STACK 4096

static void pcl_exit_at_once(void *ud) { (void)ud; co_exit(); }

static double b_pcl_spawn(unsigned long n) {
    double v[64];
    int r;
    for (r = -1; r < reps; r++) {
        unsigned long k;
        double t0 = mono();
        for (k = 0; k < n; k++) { /* co_exit deletes the coroutine */
            coroutine_t co = co_create(pcl_exit_at_once, NULL, NULL, PCL_STACK);
            if (!co) die("co_create", NULL);
            co_call(co);
        }
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
    }
    return median(v, reps);
}

static void pcl_resume_forever(void *ud) {
    long *left = (long *)ud;
    while (--*left > 0) co_resume();
    co_exit();
}

static double b_pcl_switch(unsigned long n) {
    double v[64];
    int r;
    for (r = -1; r < reps; r++) {
        long left = (long)n + 1;
        unsigned long k;
        coroutine_t co = co_create(pcl_resume_forever, &left, NULL, PCL_STACK);
        double t0;
        if (!co) die("co_create", NULL);
        co_call(co); /* started: parked in co_resume */
        t0 = mono();
        for (k = 0; k < n; k++) co_call(co); /* the last call ends it */
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
        if (left != 0) die("pcl switch: count", NULL);
    }
    return median(v, reps);
}

static void pcl_park(void *ud) { (void)ud; co_resume(); co_exit(); }

/* Bytes per coroutine parked after its first run: stack and PCL's record
   (inside the stack) with malloc's rounding. 10k of them: 1M would take
   4 GiB for a figure that does not change with the count. */
static double b_pcl_memory(unsigned long n) {
    coroutine_t *cos = (coroutine_t *)malloc(sizeof *cos * n);
    size_t base;
    unsigned long i;
    double per;
    if (!cos) die("malloc", NULL);
    base = mallinfo2().uordblks;
    for (i = 0; i < n; i++) {
        if (!(cos[i] = co_create(pcl_park, NULL, NULL, PCL_STACK))) die("co_create", NULL);
        co_call(cos[i]);
    }
    per = (double)(mallinfo2().uordblks - base) / (double)n;
    for (i = 0; i < n; i++) co_call(cos[i]); /* each ends, and is deleted */
    free(cos);
    return per;
}
#endif

/* ---- 4/5. timers vs libuv ---------------------------------------------- */

static uint64_t *deadlines_ms(unsigned long n, uint64_t range_ms) {
    uint64_t *d = (uint64_t *)malloc(sizeof *d * n);
    unsigned long i;
    if (!d) die("malloc", NULL);
    for (i = 0; i < n; i++) d[i] = rnd() % range_ms;
    return d;
}

/* insert n timers, then one tick at the last deadline fires them all */
static double b_timers_fire(const uint64_t *dl, unsigned long n, uint64_t range_ms) {
    task_sched *s = task_create(NULL, NULL);
    double v[64];
    long fired = 0;
    int r;
    uint64_t now = TASK_SEC;
    for (r = -1; r < reps; r++) {
        unsigned long i;
        double t0;
        task_tick(s, now);
        fired = 0;
        t0 = mono();
        for (i = 0; i < n; i++)
            if (task_after(s, dl[i] * TASK_MSEC, cb_count, &fired, NULL) != TASK_OK) die("task_after", s);
        now += range_ms * TASK_MSEC;
        task_tick(s, now);
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
        if (fired != (long)n) die("timers: not all fired", s);
    }
    task_destroy(s);
    return median(v, reps);
}

static double b_timers_cancel(const uint64_t *dl, unsigned long n) {
    task_sched *s = task_create(NULL, NULL);
    task_id *ids = (task_id *)malloc(sizeof *ids * n);
    double v[64];
    long fired = 0;
    int r;
    if (!ids) die("malloc", NULL);
    task_tick(s, TASK_SEC);
    for (r = -1; r < reps; r++) {
        unsigned long i;
        double t0 = mono();
        for (i = 0; i < n; i++)
            if (task_after(s, dl[i] * TASK_MSEC, cb_count, &fired, &ids[i]) != TASK_OK) die("task_after", s);
        for (i = 0; i < n; i++)
            if (task_timer_cancel(s, ids[i]) != TASK_OK) die("task_timer_cancel", s);
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
        if (task_next_deadline(s) != TASK_FOREVER) die("cancel: heap not empty", s);
    }
    free(ids);
    task_destroy(s);
    return median(v, reps);
}

#ifdef BENCH_HAVE_UV
static void uv_cb(uv_timer_t *h) { ++*(long *)h->data; }

static void sleep_until_ms(uv_loop_t *loop, uint64_t until) {
    /* uv_hrtime is the clock libuv's loop time comes from */
    for (;;) {
        uint64_t now_ms = uv_hrtime() / 1000000u;
        struct timespec ts;
        if (now_ms > until) return;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)((until + 1 - now_ms) * 1000000u);
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec = ts.tv_nsec / 1000000000L; ts.tv_nsec %= 1000000000L; }
        nanosleep(&ts, NULL);
    }
    (void)loop;
}

/* mode 0: start all, sleep past the last deadline (not timed), then
   uv_run finds them all due: timer work only, like our tick.
   mode 1: start all, then uv_run(UV_RUN_DEFAULT) straight away: the loop
   sleeps in epoll_wait between deadlines, so the figure is CPU time. */
static double b_uv_fire(const uint64_t *dl, unsigned long n, uint64_t range_ms, int mode) {
    uv_loop_t loop;
    uv_timer_t *tm = (uv_timer_t *)malloc(sizeof *tm * n);
    double v[64];
    long fired = 0;
    unsigned long i;
    int r;
    if (!tm || uv_loop_init(&loop)) die("uv_loop_init", NULL);
    for (i = 0; i < n; i++) { uv_timer_init(&loop, &tm[i]); tm[i].data = &fired; }
    for (r = -1; r < reps; r++) {
        double t0, t1, t2, t3;
        uint64_t base;
        fired = 0;
        uv_update_time(&loop);
        base = uv_now(&loop);
        t0 = mode ? cpu() : mono();
        for (i = 0; i < n; i++) uv_timer_start(&tm[i], uv_cb, dl[i], 0);
        t1 = mode ? cpu() : mono();
        if (!mode) sleep_until_ms(&loop, base + range_ms);
        t2 = mode ? cpu() : mono();
        uv_run(&loop, UV_RUN_DEFAULT);
        t3 = mode ? cpu() : mono();
        if (r >= 0) v[r] = ((t1 - t0) + (t3 - t2)) * 1e9 / (double)n;
        if (fired != (long)n) die("uv timers: not all fired", NULL);
    }
    for (i = 0; i < n; i++) uv_close((uv_handle_t *)&tm[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(tm);
    return median(v, reps);
}

static double b_uv_cancel(const uint64_t *dl, unsigned long n) {
    uv_loop_t loop;
    uv_timer_t *tm = (uv_timer_t *)malloc(sizeof *tm * n);
    double v[64];
    long fired = 0;
    unsigned long i;
    int r;
    if (!tm || uv_loop_init(&loop)) die("uv_loop_init", NULL);
    for (i = 0; i < n; i++) { uv_timer_init(&loop, &tm[i]); tm[i].data = &fired; }
    for (r = -1; r < reps; r++) {
        double t0 = mono();
        for (i = 0; i < n; i++) uv_timer_start(&tm[i], uv_cb, dl[i], 0);
        for (i = 0; i < n; i++) uv_timer_stop(&tm[i]);
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)n;
    }
    for (i = 0; i < n; i++) uv_close((uv_handle_t *)&tm[i], NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    free(tm);
    return median(v, reps);
}
#endif

/* ---- 6. idle tick ------------------------------------------------------ */

/* ns per task_tick when nothing is due, with `tasks` tasks asleep */
static double b_idle(unsigned long tasks, unsigned long ticks) {
    task_sched *s = task_create(NULL, NULL);
    double v[64];
    unsigned long i;
    uint64_t now = 1;
    int r;
    for (i = 0; i < tasks; i++) /* asleep for one to two hours */
        if (task_spawn(s, step_sleep, (void *)(uintptr_t)(3600 * TASK_SEC + rnd() % (3600 * TASK_SEC)), NULL, NULL) != TASK_OK)
            die("task_spawn", s);
    task_tick(s, now++);
    if (task_count(s, TASK_SLEEP) != (int)tasks) die("idle: not asleep", s);
    for (r = -1; r < reps; r++) {
        double t0 = mono();
        for (i = 0; i < ticks; i++)
            if (task_tick(s, now++) != 0) die("idle: something ran", s);
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)ticks;
    }
    task_destroy(s);
    return median(v, reps);
}

/* ---- 7. per-op timer cost at a given number of live timers ------------ */

/* `live` timers armed at random deadlines; one op = arm a new timer at a
   random deadline + cancel the oldest live one (a random heap position),
   so the heap stays at `live` entries. */
static double b_timer_op(unsigned long live, unsigned long ops) {
    task_sched *s = task_create(NULL, NULL);
    task_id *ring = (task_id *)malloc(sizeof *ring * live);
    double v[64];
    long fired = 0;
    unsigned long i, head = 0;
    int r;
    const uint64_t span = 3600 * TASK_SEC;
    if (!ring) die("malloc", NULL);
    task_tick(s, 1);
    for (i = 0; i < live; i++)
        if (task_after(s, span + rnd() % span, cb_count, &fired, &ring[i]) != TASK_OK) die("task_after", s);
    for (r = -1; r < reps; r++) {
        double t0 = mono();
        for (i = 0; i < ops; i++) {
            task_id id;
            if (task_after(s, span + rnd() % span, cb_count, &fired, &id) != TASK_OK) die("task_after", s);
            if (task_timer_cancel(s, ring[head]) != TASK_OK) die("task_timer_cancel", s);
            ring[head] = id;
            if (++head == live) head = 0;
        }
        if (r >= 0) v[r] = (mono() - t0) * 1e9 / (double)ops;
    }
    free(ring);
    task_destroy(s);
    return median(v, reps);
}

/* ---- 8. memory per sleeping task --------------------------------------- */

static double b_memory(unsigned long n) {
    counter c = {0, 0};
    task_sched *s = task_create(count_alloc, &c);
    size_t base;
    unsigned long i;
    double per;
    if (!s) die("task_create", NULL);
    base = c.bytes; /* the scheduler object itself */
    for (i = 0; i < n; i++)
        if (task_spawn(s, step_sleep, (void *)(uintptr_t)(3600 * TASK_SEC + rnd() % (3600 * TASK_SEC)), NULL, NULL) != TASK_OK)
            die("task_spawn", s);
    task_tick(s, 1);
    if (task_count(s, TASK_SLEEP) != (int)n) die("memory: not asleep", s);
    per = (double)(c.bytes - base) / (double)n;
    task_destroy(s);
    if (c.bytes != 0) die("memory: leak", NULL);
    return per;
}

/* ---- main -------------------------------------------------------------- */

/* --only LIST: a comma-separated subset of these keys (for profiling) */
static const char *only;
static int want(const char *key) {
    const char *p = only;
    size_t k = strlen(key);
    if (!p) return 1;
    while ((p = strstr(p, key)) != NULL) {
        if ((p == only || p[-1] == ',') && (p[k] == ',' || p[k] == 0)) return 1;
        p += k;
    }
    return 0;
}

int main(int argc, char **argv) {
    unsigned long n = 1000000, small = 1000, ops = 1000000;
    uint64_t range_ms = 1000, *dl = NULL;
    const char *q = getenv("BENCH_QUICK");
    int i, setreps = 0;
    unsigned long setn = 0;
    double ours, peer;
    if (q && *q && strcmp(q, "0") != 0) quick = 1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--smoke")) smoke = 1;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) setreps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc) setn = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--quick] [--smoke] [--reps N] [--n N] [--only KEY,...]\n"
                    "keys: spawn yield observed pingpong fire cancel idle timerop memory\n", argv[0]);
            return 2;
        }
    }
    if (quick) { reps = 5; range_ms = 200; }
    if (smoke) { reps = 1; n = 2000; small = 100; ops = 1000; range_ms = 5; }
    if (setreps > 0 && setreps <= 63) reps = setreps;
    if (setn > 0) n = ops = setn; /* e.g. for callgrind: marginal counts between two sizes */

    printf("note\tC core: C step tasks, %s, median of %d runs after a warm-up run; ns unless noted\n",
           smoke ? "smoke run" : quick ? "BENCH_QUICK" : "full run", reps);

#ifdef BENCH_HAVE_PCL
    if (co_thread_init() != 0) die("co_thread_init", NULL);
#endif
    if (want("spawn")) {
        row(label("spawn+run+exit, %s detached C tasks (ns/task)", n), ours = b_spawn(n), -1, "ns", "abs", 30);
#ifdef BENCH_HAVE_PCL
        row("  same, vs PCL co_create+co_call+co_exit, 4 KiB stacks (ns/task)", ours, b_pcl_spawn(n), "ns", "info", 0);
#else
        printf("skip\t  same, vs PCL co_create+co_call+co_exit (ns/task)\tPCL not built in (install libpcl1-dev)\n");
#endif
    }
    if (want("yield")) {
        row(label("yield round trip (yield, tick, resume), %s (ns)", n), ours = b_yield(n, 0), -1, "ns", "abs", 15);
#ifdef BENCH_HAVE_PCL
        row("  same, vs PCL co_call+co_resume round trip (ns)", ours, b_pcl_switch(n), "ns", "info", 0);
#else
        printf("skip\t  same, vs PCL co_call+co_resume round trip (ns)\tPCL not built in (install libpcl1-dev)\n");
#endif
    }
    if (want("observed")) { /* what observing costs: vs the row above */
        ours = b_yield(n, 1);
        peer = b_yield(n, 0);
        row(label("  same, resume+suspend hooks and statistics on a clock, %s (ns)", n), ours, peer, "ns", "info", 0);
    }
    if (want("pingpong"))
        row(label("wait/wakeup ping-pong, 2 tasks, %s (ns/switch)", n), b_pingpong(n), -1, "ns", "abs", 20);

    if (want("fire") || want("cancel")) dl = deadlines_ms(n, range_ms);
    if (want("fire")) {
        ours = b_timers_fire(dl, n, range_ms);
#ifdef BENCH_HAVE_UV
        peer = b_uv_fire(dl, n, range_ms, 0);
        row(label("%s timers, random deadlines: insert+fire vs libuv (ns/timer)", n), ours, peer, "ns", "ratio", 0.5);
        peer = b_uv_fire(dl, n, range_ms, 1);
        row("  same, libuv in its blocking uv_run, CPU time (ns/timer)", ours, peer, "ns", "info", 0);
#else
        (void)ours;
        printf("skip\t%s\tlibuv not built in (install libuv1-dev)\n", label("%s timers, random deadlines: insert+fire vs libuv (ns/timer)", n));
#endif
    }
    if (want("cancel")) {
        ours = b_timers_cancel(dl, n);
#ifdef BENCH_HAVE_UV
        peer = b_uv_cancel(dl, n);
        row(label("%s timers: insert then cancel all vs libuv start/stop (ns/timer)", n), ours, peer, "ns", "ratio", 0.5);
#else
        (void)ours;
        printf("skip\t%s\tlibuv not built in (install libuv1-dev)\n", label("%s timers: insert then cancel all vs libuv start/stop (ns/timer)", n));
#endif
    }
    free(dl);

    if (want("idle")) {
        ours = b_idle(n, n);
        peer = b_idle(0, n);
        row(label("idle task_tick: %s sleeping tasks vs none (ns/tick)", n), ours, peer, "ns", "ratio", 1.5);
    }
    if (want("timerop")) {
        char name[128];
        ours = b_timer_op(n, ops);
        peer = b_timer_op(small, ops);
        snprintf(name, sizeof name, "%s", label("timer arm+cancel at %s live timers", n));
        snprintf(name + strlen(name), sizeof name - strlen(name), "%s", label(" vs at %s (ns/op)", small));
        row(name, ours, peer, "ns", "ratio", 2.5);
    }
    if (want("memory")) {
        row(label("memory per sleeping C task, %s tasks (bytes)", n), ours = b_memory(n), -1, "bytes", "abs", 96);
#ifdef BENCH_HAVE_PCL
        row(label("  same, vs a parked PCL coroutine, 4 KiB stack, %s of them (bytes)", smoke ? 100 : 10000), ours,
            b_pcl_memory(smoke ? 100 : 10000), "bytes", "info", 0);
#else
        printf("skip\t  same, vs a parked PCL coroutine (bytes)\tPCL not built in (install libpcl1-dev)\n");
#endif
    }
    if (want("fire") || want("cancel"))
        printf("note\tlibuv polls for I/O (epoll) on every loop turn and ours does no I/O: the gated libuv rows"
               " sleep past every deadline untimed and then run the loop once (no waiting); the \"blocking\" row"
               " is libuv's ordinary uv_run in CPU time (ours there: the same run as above, which never sleeps)\n");
    return 0;
}
