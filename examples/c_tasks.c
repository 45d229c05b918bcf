/*
 * c_tasks.c: C tasks on task.h alone, no Lua.
 *
 * A tour of the core, one part after the other:
 *   1. sleeping, one sleep shorter than a millisecond
 *   2. waiting, and being woken with a value
 *   3. external ids completed by the host: once before the task waits
 *      (the value is kept for it), once after
 *   4. joining a task, and joining one that was cancelled
 *   5. a scope whose tasks are cancelled, then drained by closing it
 *   6. a cancel token with a child token
 *   7. trace ids
 *   8. a summary: hooks, counts, and the bytes the allocator saw
 *
 * Each task is a step function written with the TASK_PT_BEGIN macros: its
 * state lives in a struct passed as the task's ud, because locals do not
 * survive a suspension. The host loop is the one from the top of task.h:
 * tick with the current time, ask task_timeout() how long it may sleep,
 * nanosleep(). The output depends only on the order of events, never on
 * how fast the machine is, so `make test` compares it with c_tasks.expected.
 *
 * Build: cc -std=c99 -I. examples/c_tasks.c -o build/c_tasks
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#define TASK_IMPLEMENTATION
#include "task.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the host's side: clock, allocator, loop ---------------------------- */

static uint64_t t0;

static uint64_t clock_ns(void) { /* monotonic, counted from the start */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec - t0;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / TASK_SEC);
    ts.tv_nsec = (long)(ns % TASK_SEC);
    nanosleep(&ts, NULL);
}

/* Every byte the scheduler uses goes through this (lua_Alloc's shape). */
struct counting_alloc { size_t bytes, peak; unsigned long calls; };

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct counting_alloc *a = (struct counting_alloc *)ud;
    void *p;
    if (!ptr) osize = 0;
    if (nsize == 0) {
        a->bytes -= osize;
        free(ptr);
        return NULL;
    }
    if ((p = realloc(ptr, nsize)) == NULL) return NULL;
    a->bytes = a->bytes - osize + nsize;
    if (a->bytes > a->peak) a->peak = a->bytes;
    a->calls++;
    return p;
}

/* A host call that must not fail. */
static void must(task_sched *s, int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "c_tasks: %s failed: %s\n", what, task_errmsg(s));
        exit(1);
    }
}

/* Host work that completes an external id later, as a socket or a worker
   thread would: armed once a task waits for it, done `delay` after that. */
struct host_job {
    task_id ext, waiter;
    uint64_t delay, due;
    const char *value;
    int state; /* 0 idle, 1 waiting for the waiter to park, 2 armed, 3 done */
};
static struct host_job job;

/* Returns how long the host itself may sleep (TASK_FOREVER: no limit). */
static uint64_t host_poll(task_sched *s, uint64_t now) {
    if (job.state == 1 && task_status(s, job.waiter) == TASK_WAIT) {
        job.due = now + job.delay;
        job.state = 2;
    }
    if (job.state == 2) {
        if (now < job.due) return job.due - now;
        printf("host: the work is done, task_ext_resume(ext B, \"%s\")\n", job.value);
        must(s, task_ext_resume(s, job.ext, (void *)job.value), "task_ext_resume");
        job.state = 3;
    }
    return TASK_FOREVER;
}

/* Runs the scheduler until every task has ended. */
static void run(task_sched *s) {
    for (;;) {
        uint64_t host_wait, wait;
        host_poll(s, clock_ns());
        must(s, task_tick(s, clock_ns()), "task_tick");
        if (task_count(s, -1) == 0) break;
        host_wait = host_poll(s, clock_ns()); /* may resume: then the timeout is 0 */
        wait = task_timeout(s, clock_ns());
        if (host_wait < wait) wait = host_wait;
        if (wait == TASK_FOREVER) {
            fprintf(stderr, "c_tasks: every task waits and nothing can wake them\n");
            exit(1);
        }
        if (wait) sleep_ns(wait); /* or poll()/epoll_wait() with task_timeout_ms() */
    }
}

static void part(const char *title) { printf("\n== %s\n", title); }

static const char *why_name(int why) {
    static const char *const names[] = {"START", "WAKE", "TIMER", "YIELD", "CANCEL", "ABORT"};
    return why >= 0 && why <= TASK_WHY_ABORT ? names[why] : "?";
}

static const char *ending_name(int how) {
    return how == TASK_EXIT_DONE ? "DONE" : how == TASK_EXIT_FAIL ? "FAIL" : how == TASK_EXIT_ABORT ? "ABORT" : "?";
}

static const char *dur(uint64_t ns, char *buf, size_t n) {
    if (ns % TASK_MSEC == 0) snprintf(buf, n, "%lu ms", (unsigned long)(ns / TASK_MSEC));
    else snprintf(buf, n, "%lu us", (unsigned long)(ns / TASK_USEC));
    return buf;
}

static const char *yes(int b) { return b ? "yes" : "no"; }

static task_opts detached = {0, 0, TASK_DETACHED}; /* freed as soon as it ends */
static int early_wakeups;                          /* sleeps that ended early */

/* ---- 1. sleeping --------------------------------------------------------- */

struct sleeper { int pc; const char *name; uint64_t ns, start; };

static int sleeper(task_ctx *c) {
    struct sleeper *z = (struct sleeper *)c->ud;
    char b[32];
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE; /* task_destroy with it alive */
    TASK_PT_BEGIN(c, z->pc);
    z->start = task_now(c->sched);
    printf("  %-6s sleeps %s\n", z->name, dur(z->ns, b, sizeof b));
    TASK_PT_SLEEP(c, z->ns);
    if (task_now(c->sched) - z->start < z->ns) early_wakeups++;
    printf("  %-6s woke up (%s), after at least %s: %s\n", z->name, why_name(c->why),
           dur(z->ns, b, sizeof b), yes(task_now(c->sched) - z->start >= z->ns));
    TASK_PT_END(c);
}

/* ---- 2. wait and wakeup ---------------------------------------------------- */

struct waiter { int pc; };

static int waiter(task_ctx *c) {
    struct waiter *w = (struct waiter *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, w->pc);
    printf("  waiter: task_wait()\n");
    TASK_PT_WAIT(c);
    printf("  waiter: woken (%s) with \"%s\"\n", why_name(c->why), (const char *)c->value);
    TASK_PT_END(c);
}

struct waker { int pc; task_id target; };

static int waker(task_ctx *c) {
    struct waker *w = (struct waker *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, w->pc);
    TASK_PT_SLEEP(c, 2 * TASK_MSEC);
    printf("  waker: waiter is %s; task_wakeup(waiter, \"ping\")\n",
           task_state_name(task_status(c->sched, w->target)));
    must(c->sched, task_wakeup(c->sched, w->target, (void *)"ping"), "task_wakeup");
    if (task_wakeup(c->sched, w->target, (void *)"again") < 0)
        printf("  waker: a second wakeup is refused: %s\n", task_errmsg(c->sched));
    TASK_PT_END(c);
}

/* ---- 3. external ids --------------------------------------------------------- */

struct fetcher { int pc; const char *name, *label; task_id ext; };

static int fetcher(task_ctx *c) {
    struct fetcher *f = (struct fetcher *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, f->pc);
    printf("  %s: waits for ext %s\n", f->name, f->label);
    TASK_PT_EXT_WAIT(c, f->ext);
    printf("  %s: got \"%s\" (%s)\n", f->name, (const char *)c->value, why_name(c->why));
    TASK_PT_END(c);
}

/* ---- 4. join --------------------------------------------------------------- */

static int answer = 42;

struct worker { int pc; };

static int worker(task_ctx *c) {
    struct worker *w = (struct worker *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, w->pc);
    printf("  worker: computing for 1 ms\n");
    TASK_PT_SLEEP(c, 1 * TASK_MSEC);
    printf("  worker: done, result %d\n", answer);
    task_set_result(c->sched, &answer);
    TASK_PT_END(c);
}

struct stuck { int pc; };

static int stuck(task_ctx *c) {
    struct stuck *k = (struct stuck *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, k->pc);
    printf("  stuck: waits for a wakeup that never comes\n");
    TASK_PT_WAIT(c);
    printf("  stuck: woken (%s): cleaning up and returning\n", why_name(c->why));
    TASK_PT_END(c);
}

struct parent { int pc; task_id child; struct worker w; struct stuck k; };

static int parent(task_ctx *c) {
    struct parent *p = (struct parent *)c->ud;
    void *result = NULL;
    int how;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, p->pc);
    must(c->sched, task_spawn(c->sched, worker, &p->w, NULL, &p->child), "task_spawn");
    printf("  parent: spawned worker, joins it\n");
    TASK_PT_JOIN(c, p->child);
    must(c->sched, task_result(c->sched, p->child, &how, &result), "task_result");
    printf("  parent: worker ended %s, result %d (the join's value is the result: %s)\n",
           ending_name(how), *(int *)result, yes(c->value == result));
    must(c->sched, task_release(c->sched, p->child), "task_release");
    printf("  parent: after task_release the id is stale: status %s\n",
           task_status(c->sched, p->child) == TASK_ENOENT ? "ENOENT" : "live?");

    must(c->sched, task_spawn(c->sched, stuck, &p->k, NULL, &p->child), "task_spawn");
    TASK_PT_YIELD(c); /* let it start and park */
    printf("  parent: stuck is %s; task_cancel(stuck), then join it\n",
           task_state_name(task_status(c->sched, p->child)));
    task_cancel(c->sched, p->child);
    TASK_PT_JOIN(c, p->child);
    must(c->sched, task_result(c->sched, p->child, &how, NULL), "task_result");
    printf("  parent: stuck ended %s: a cancelled task still wakes its joiners\n", ending_name(how));
    must(c->sched, task_release(c->sched, p->child), "task_release");
    TASK_PT_END(c);
}

/* ---- 5. a scope, cancelled and drained ------------------------------------- */

struct member { int pc, n; };

static int member(task_ctx *c) {
    struct member *m = (struct member *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, m->pc);
    printf("  member %d: sleeps 10 s\n", m->n);
    TASK_PT_SLEEP(c, 10 * TASK_SEC);
    printf("  member %d: woken (%s)\n", m->n, why_name(c->why));
    if (m->n == 1) { /* cancellation is level-triggered: it holds at every park */
        TASK_PT_SLEEP(c, 1 * TASK_MSEC);
        printf("  member 1: a cleanup sleep is refused too: %s\n", task_strerror(c->err));
    }
    TASK_PT_END(c);
}

struct supervisor { int pc; task_id scope; struct member m[3]; int walked, in_scope, sleeping; };

static int walk(task_sched *s, task_id t, int state, void *ud) {
    struct supervisor *v = (struct supervisor *)ud;
    task_id scope = 0;
    v->walked++;
    if (task_scope_of(s, t, &scope) == TASK_OK && scope == v->scope) v->in_scope++;
    if (state == TASK_SLEEP) v->sleeping++;
    return 0; /* non-zero stops the walk */
}

static int supervisor(task_ctx *c) {
    struct supervisor *v = (struct supervisor *)c->ud;
    int i;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, v->pc);
    must(c->sched, task_scope_open(c->sched, &v->scope), "task_scope_open");
    for (i = 0; i < 3; i++) {
        v->m[i].pc = 0;
        v->m[i].n = i + 1;
        must(c->sched, task_spawn(c->sched, member, &v->m[i], &detached, NULL), "task_spawn");
    }
    printf("  supervisor: opened a scope, spawned 3 members into it\n");
    TASK_PT_SLEEP(c, 1 * TASK_MSEC);
    task_foreach(c->sched, walk, v);
    printf("  supervisor: task_foreach: %d tasks, %d in the scope, %d SLEEP; counts: RUN %d, SLEEP %d\n",
           v->walked, v->in_scope, v->sleeping, task_count(c->sched, TASK_RUN), task_count(c->sched, TASK_SLEEP));
    printf("  supervisor: %d members live; task_scope_cancel, then close (drain)\n",
           task_scope_count(c->sched, v->scope));
    must(c->sched, task_scope_cancel(c->sched, v->scope), "task_scope_cancel");
    TASK_PT_SCOPE_CLOSE(c, v->scope);
    printf("  supervisor: scope closed, every member ended; the scope id is now stale: %s\n",
           yes(task_scope_count(c->sched, v->scope) == TASK_ENOENT));
    printf("  supervisor: still cancelled after the scope closed: %s\n",
           yes(task_cancelled(c->sched, c->self) == 1));
    TASK_PT_END(c);
}

/* ---- 6. a cancel token with a child ---------------------------------------- */

struct holder { int pc; const char *name; };

static int holder(task_ctx *c) {
    struct holder *h = (struct holder *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, h->pc);
    printf("  %s: waits\n", h->name);
    TASK_PT_WAIT(c);
    printf("  %s: woken (%s); cancelled: %s\n", h->name, why_name(c->why),
           yes(TASK_PT_CANCELLED(c)));
    TASK_PT_END(c);
}

struct canceller { int pc; task_id parent_tok, child_tok, grandchild_tok; };

static int canceller(task_ctx *c) {
    struct canceller *k = (struct canceller *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, k->pc);
    TASK_PT_SLEEP(c, 1 * TASK_MSEC);
    printf("  canceller: task_token_cancel(parent)\n");
    must(c->sched, task_token_cancel(c->sched, k->parent_tok), "task_token_cancel");
    printf("  canceller: the child token is cancelled too: %s\n",
           yes(task_token_cancelled(c->sched, k->child_tok) == 1));
    must(c->sched, task_token_new(c->sched, k->child_tok, &k->grandchild_tok), "task_token_new");
    printf("  canceller: a token made under it starts cancelled: %s\n",
           yes(task_token_cancelled(c->sched, k->grandchild_tok) == 1));
    TASK_PT_END(c);
}

/* ---- 7. trace ids ---------------------------------------------------------- */

static void print_trace(const char *who, const char *what, uint64_t id) {
    /* bits 47..32 hold the seconds of the clock: left out, they vary */
    printf("  %s: %s: root node %u, seq %u, hop %u\n", who, what, (unsigned)(id >> 48),
           (unsigned)(id >> 16 & 0xFFFF), (unsigned)(id & 0xFFFF));
}

/* The running task's own trace id. */
static uint64_t my_trace(task_ctx *c) {
    uint64_t id = 0;
    must(c->sched, task_trace_of(c->sched, c->self, &id), "task_trace_of");
    return id;
}

struct subcall { int pc; uint64_t parent_trace; };

static int subcall(task_ctx *c) {
    struct subcall *u = (struct subcall *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, u->pc);
    printf("  subcall: started with the request's trace: %s\n",
           yes(my_trace(c) == u->parent_trace));
    TASK_PT_END(c);
}

struct request { int pc; task_id sub; struct subcall u; };

static int request(task_ctx *c) {
    struct request *r = (struct request *)c->ud;
    uint64_t old, remote;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, r->pc);
    old = task_trace_spawn(c->sched);
    print_trace("request", "task_trace_spawn", my_trace(c));
    printf("  request: the old id was %llu\n", (unsigned long long)old);
    r->u.parent_trace = my_trace(c);
    must(c->sched, task_spawn(c->sched, subcall, &r->u, NULL, &r->sub), "task_spawn");
    TASK_PT_JOIN(c, r->sub);
    must(c->sched, task_release(c->sched, r->sub), "task_release");
    print_trace("request", "task_trace_propagate (to send)", task_trace_propagate(c->sched));
    /* an id received from node 3, as a message header would carry it */
    remote = (uint64_t)3 << 48 | (uint64_t)5 << 16 | 3;
    task_trace_set(c->sched, remote);
    print_trace("request", "task_trace_set (received)", my_trace(c));
    print_trace("request", "task_trace_propagate", task_trace_propagate(c->sched));
    TASK_PT_END(c);
}

/* ---- 8. hooks for the summary ---------------------------------------------- */

struct tally { int created, ended; };

static void on_create(task_sched *s, task_id t, void *ud) { (void)s; (void)t; ((struct tally *)ud)->created++; }
static void on_term(task_sched *s, task_id t, void *ud) { (void)s; (void)t; ((struct tally *)ud)->ended++; }

/* ---- main: the parts, one after the other ---------------------------------- */

int main(void) {
    struct counting_alloc mem = {0, 0, 0};
    struct tally tally = {0, 0};
    task_hooks hooks, old;
    task_sched *s;
    struct timespec ts;

    setvbuf(stdout, NULL, _IOLBF, 0); /* lines appear as they happen */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t0 = (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;

    if ((s = task_create(counting_alloc, &mem)) == NULL) return 1;
    memset(&hooks, 0, sizeof hooks); /* resume, suspend: none */
    hooks.create = on_create;
    hooks.term = on_term;
    hooks.ud = &tally;
    old = task_set_hooks(s, hooks);
    printf("c_tasks: task.h with C step functions; hooks installed (previous ones: %s)\n",
           old.create || old.term ? "set" : "none");

    {
        static struct sleeper z[3] = {{0, "slow", 12 * TASK_MSEC, 0},
                                      {0, "medium", 3 * TASK_MSEC, 0},
                                      {0, "quick", 250 * TASK_USEC, 0}};
        int i;
        part("1. sleeping (ends in deadline order, whatever the spawn order)");
        for (i = 0; i < 3; i++) must(s, task_spawn(s, sleeper, &z[i], &detached, NULL), "task_spawn");
        run(s);
    }
    {
        static struct waiter w;
        static struct waker k;
        task_id wt;
        part("2. wait, and wakeup with a value");
        must(s, task_spawn(s, waiter, &w, &detached, &wt), "task_spawn");
        k.target = wt;
        must(s, task_spawn(s, waker, &k, &detached, NULL), "task_spawn");
        run(s);
    }
    {
        static struct fetcher early = {0, "early", "A", 0}, late = {0, "late", "B", 0};
        part("3. external ids, completed by the host");
        must(s, task_ext_alloc(s, &early.ext), "task_ext_alloc");
        must(s, task_ext_resume(s, early.ext, (void *)"kept for you"), "task_ext_resume");
        printf("host: task_ext_resume(ext A) before anyone waits; status %d (resolved)\n",
               task_ext_status(s, early.ext));
        must(s, task_ext_alloc(s, &late.ext), "task_ext_alloc");
        must(s, task_spawn(s, fetcher, &early, &detached, NULL), "task_spawn");
        must(s, task_spawn(s, fetcher, &late, &detached, &job.waiter), "task_spawn");
        job.ext = late.ext;
        job.delay = 5 * TASK_MSEC;
        job.value = "done later";
        job.state = 1;
        run(s);
        printf("host: both ids were freed once taken: %s\n",
               yes(task_ext_status(s, early.ext) == TASK_ENOENT && task_ext_status(s, late.ext) == TASK_ENOENT));
    }
    {
        static struct parent p;
        part("4. join");
        must(s, task_spawn(s, parent, &p, &detached, NULL), "task_spawn");
        run(s);
    }
    {
        static struct supervisor v;
        part("5. a scope: cancelled, then drained");
        must(s, task_spawn(s, supervisor, &v, &detached, NULL), "task_spawn");
        run(s);
    }
    {
        static struct holder a = {0, "holder-a (parent token)"}, b = {0, "holder-b (child token)"};
        static struct canceller k;
        task_opts oa = {0, 0, TASK_DETACHED}, ob = {0, 0, TASK_DETACHED};
        part("6. a cancel token with a child");
        must(s, task_token_new(s, 0, &k.parent_tok), "task_token_new");
        must(s, task_token_new(s, k.parent_tok, &k.child_tok), "task_token_new");
        oa.token = k.parent_tok;
        ob.token = k.child_tok;
        must(s, task_spawn(s, holder, &a, &oa, NULL), "task_spawn");
        must(s, task_spawn(s, holder, &b, &ob, NULL), "task_spawn");
        must(s, task_spawn(s, canceller, &k, &detached, NULL), "task_spawn");
        run(s);
        must(s, task_token_release(s, k.grandchild_tok), "task_token_release");
        must(s, task_token_release(s, k.child_tok), "task_token_release");
        must(s, task_token_release(s, k.parent_tok), "task_token_release");
        printf("host: tokens released; the parent's id is now stale: %s\n",
               yes(task_token_cancelled(s, k.parent_tok) == TASK_ENOENT));
    }
    {
        static struct request r;
        part("7. trace ids (this node is 7)");
        must(s, task_trace_node(s, 7), "task_trace_node");
        must(s, task_spawn(s, request, &r, &detached, NULL), "task_spawn");
        run(s);
        {   /* outside tasks the trace calls act on the host's own id */
            uint64_t host = task_trace_set(s, 0);
            printf("host: its own trace id was left alone by the tasks: %s\n", yes(host == 0));
        }
    }

    part("8. summary");
    printf("tasks created %d, ended %d, live %d, ready %d\n", tally.created, tally.ended,
           task_count(s, -1), task_ready_count(s));
    printf("no sleep ended early: %s\n", yes(early_wakeups == 0));
    printf("the allocator was used: %s\n", yes(mem.calls > 0 && mem.peak > 0));
    must(s, task_destroy(s), "task_destroy");
    printf("bytes still allocated after task_destroy: %lu\n", (unsigned long)mem.bytes);
    return mem.bytes != 0 || early_wakeups != 0 || tally.created != tally.ended;
}
