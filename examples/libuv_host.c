/*
 * libuv_host.c: task.h driven from a libuv loop.
 *
 * The scheduler lives inside libuv's loop, the way it would in a server
 * that already has one:
 *   - a uv_prepare handle runs before libuv blocks for I/O, in every loop
 *     iteration: it calls task_tick(s, uv_hrtime()) (uv_hrtime is a
 *     monotonic clock in nanoseconds, the core's unit), then sets
 *   - a uv_timer from the core's next deadline (task_timeout), so the loop
 *     wakes up when the next sleeping task is due, and sleeps otherwise;
 *   - work that completes later wakes a task through an external id: a
 *     uv_timer callback, and a uv_async sent by a worker thread, call
 *     task_ext_resume(); the task runs at the next tick, in the next
 *     loop iteration's prepare phase.
 * When every task has ended, the handles are closed and uv_run() returns.
 *
 * The output depends only on the order of events, so make test compares
 * it with libuv_host.expected.
 *
 * Build: cc -std=c99 -I. examples/libuv_host.c $(pkg-config --cflags --libs libuv)
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct host {
    uv_loop_t *loop;
    task_sched *s;
    uv_prepare_t prepare; /* ticks the scheduler */
    uv_timer_t wake;      /* armed for the scheduler's next deadline */
    uv_timer_t io;        /* stands for some I/O that completes later */
    uv_async_t async;     /* a worker thread's way back into the loop */
    uv_thread_t thread;
    int thread_started;
    task_id io_ext, async_ext;
    unsigned long sum;    /* the worker thread's result */
    unsigned long ticks;
};

static void must(task_sched *s, int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "libuv_host: %s failed: %s\n", what, task_errmsg(s));
        exit(1);
    }
}

static void must_uv(int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "libuv_host: %s failed: %s\n", what, uv_strerror(rc));
        exit(1);
    }
}

/* ---- the scheduler inside the loop -------------------------------------- */

static void on_wake(uv_timer_t *t) {
    (void)t; /* nothing to do: it ended uv's wait; the prepare handle ticks */
}

static void on_prepare(uv_prepare_t *p) {
    struct host *h = (struct host *)p->data;
    uint64_t ns;
    must(h->s, task_tick(h->s, uv_hrtime()), "task_tick");
    h->ticks++;
    if (task_count(h->s, -1) == 0) { /* every task ended: let uv_run return */
        uv_close((uv_handle_t *)&h->prepare, NULL);
        uv_close((uv_handle_t *)&h->wake, NULL);
        uv_close((uv_handle_t *)&h->io, NULL);
        uv_close((uv_handle_t *)&h->async, NULL);
        return;
    }
    ns = task_timeout(h->s, uv_hrtime());
    if (ns == TASK_FOREVER) uv_timer_stop(&h->wake); /* only a callback can wake a task now */
    else uv_timer_start(&h->wake, on_wake, (ns + TASK_MSEC - 1) / TASK_MSEC, 0); /* uv counts ms */
}

/* ---- completions from libuv ------------------------------------------------ */

static void on_io(uv_timer_t *t) {
    struct host *h = (struct host *)t->data;
    printf("uv_timer callback: task_ext_resume(io id, \"42 bytes\")\n");
    must(h->s, task_ext_resume(h->s, h->io_ext, (void *)"42 bytes"), "task_ext_resume");
}

static void worker_thread(void *arg) { /* not the loop's thread: no task.h here */
    struct host *h = (struct host *)arg;
    unsigned long i, sum = 0;
    for (i = 1; i <= 1000; i++) sum += i;
    h->sum = sum;
    uv_async_send(&h->async); /* the one libuv call that is safe from any thread */
}

static void on_async(uv_async_t *a) {
    struct host *h = (struct host *)a->data;
    printf("uv_async callback: task_ext_resume(thread id, &sum)\n");
    must(h->s, task_ext_resume(h->s, h->async_ext, &h->sum), "task_ext_resume");
}

/* ---- tasks ------------------------------------------------------------------ */

struct nap { int pc; const char *name; uint64_t ns; };

static int nap(task_ctx *c) {
    struct nap *n = (struct nap *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, n->pc);
    TASK_PT_SLEEP(c, n->ns);
    printf("  %s woke (%s)\n", n->name, c->why == TASK_WHY_TIMER ? "timer" : "?");
    TASK_PT_END(c);
}

struct app { int pc, i; struct host *h; struct nap naps[3]; task_id kids[3]; };

static int app(task_ctx *c) {
    struct app *a = (struct app *)c->ud;
    struct host *h = a->h;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, a->pc);
    printf("app: started in the first tick; sleeps 5 ms\n");
    TASK_PT_SLEEP(c, 5 * TASK_MSEC);
    printf("app: woke from its sleep (the uv_timer set from task_timeout fired)\n");

    /* Some "I/O" that a uv_timer completes 10 ms from now. */
    must(c->sched, task_ext_alloc(c->sched, &h->io_ext), "task_ext_alloc");
    must_uv(uv_timer_start(&h->io, on_io, 10, 0), "uv_timer_start");
    printf("app: started I/O, waits for its external id\n");
    TASK_PT_EXT_WAIT(c, h->io_ext);
    printf("app: I/O done: \"%s\"\n", (const char *)c->value);

    /* Work on another thread, which comes back with uv_async_send. */
    must(c->sched, task_ext_alloc(c->sched, &h->async_ext), "task_ext_alloc");
    must_uv(uv_thread_create(&h->thread, worker_thread, h), "uv_thread_create");
    h->thread_started = 1;
    printf("app: started a worker thread, waits for its external id\n");
    TASK_PT_EXT_WAIT(c, h->async_ext);
    printf("app: the thread computed 1+2+...+1000 = %lu\n", *(unsigned long *)c->value);

    /* Three sleepers, one under a millisecond, joined in spawn order. */
    a->naps[0].name = "nap 2 ms";   a->naps[0].ns = 2 * TASK_MSEC;
    a->naps[1].name = "nap 0.5 ms"; a->naps[1].ns = 500 * TASK_USEC;
    a->naps[2].name = "nap 1 ms";   a->naps[2].ns = 1 * TASK_MSEC;
    for (a->i = 0; a->i < 3; a->i++)
        must(c->sched, task_spawn(c->sched, nap, &a->naps[a->i], NULL, &a->kids[a->i]), "task_spawn");
    printf("app: spawned 3 sleepers, joins them\n");
    for (a->i = 0; a->i < 3; a->i++) {
        TASK_PT_JOIN(c, a->kids[a->i]);
        must(c->sched, task_release(c->sched, a->kids[a->i]), "task_release");
    }
    printf("app: joined all 3; done\n");
    TASK_PT_END(c);
}

int main(void) {
    static struct host h;
    static struct app a;
    uv_loop_t loop;

    setvbuf(stdout, NULL, _IOLBF, 0);
    must_uv(uv_loop_init(&loop), "uv_loop_init");
    h.loop = &loop;
    if ((h.s = task_create(NULL, NULL)) == NULL) return 1;
    uv_prepare_init(&loop, &h.prepare);
    uv_timer_init(&loop, &h.wake);
    uv_timer_init(&loop, &h.io);
    must_uv(uv_async_init(&loop, &h.async, on_async), "uv_async_init");
    h.prepare.data = h.wake.data = h.io.data = h.async.data = &h;
    uv_prepare_start(&h.prepare, on_prepare);

    a.h = &h;
    must(h.s, task_spawn(h.s, app, &a, NULL, NULL), "task_spawn");
    printf("libuv_host: a uv_prepare handle ticks the scheduler, a uv_timer waits for it\n");
    uv_run(&loop, UV_RUN_DEFAULT);

    if (h.thread_started) uv_thread_join(&h.thread);
    printf("libuv_host: uv_run returned after more than one tick: %s; live tasks %d; "
           "the loop closes cleanly: %s\n",
           h.ticks > 1 ? "yes" : "no", task_count(h.s, -1), uv_loop_close(&loop) == 0 ? "yes" : "no");
    must(h.s, task_destroy(h.s), "task_destroy");
    return 0;
}
