/* test_core.c: unit tests of task.h, the scheduling core.
 *
 * Most tests drive "bots": C step tasks that follow a small script of
 * actions (wait, sleep, join, ...) and write what happened into a log, so
 * orders can be checked as strings. A log entry is the bot's name and a
 * letter for why it was stepped (S start, W wake, T timer, Y yield,
 * C cancel, A abort), "=v" for a wake value, and "x!rc" when an
 * arrangement of bot x was refused with status rc. Timer callbacks log
 * "t<ud>".
 *
 * Every test starts with begin() (a scheduler on the counting allocator)
 * and ends with finish() (task_destroy, then zero bytes outstanding).
 */
#define TASK_IMPLEMENTATION
#include "task.h"
/* testlib's TEST_CASE trips gcc's indentation heuristic; the bots' scripts
   are partial initializers on purpose */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include "testlib.h"
#include <stdarg.h>
#include <limits.h>

static test_alloc A;
static task_sched *S;
static task_id T[32], E[8], SC[8], TK[8], TM[8];
static int retry_enomem; /* bots retry an arrangement refused with ENOMEM */
static int enomem_seen;

/* ---- the log ---------------------------------------------------------- */

static char LOG[16384];
static size_t LOGN;

static void logp(const char *fmt, ...) {
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(LOG + LOGN, sizeof LOG - LOGN, fmt, ap);
    va_end(ap);
    if (n > 0) LOGN += (size_t)n;
    if (LOGN >= sizeof LOG) LOGN = sizeof LOG - 1;
}

static const char *log_take(void) {
    static char out[sizeof LOG];
    size_t n = LOGN;
    while (n && LOG[n - 1] == ' ') n--;
    memcpy(out, LOG, n);
    out[n] = 0;
    LOGN = 0;
    LOG[0] = 0;
    return out;
}

static void begin(void) {
    memset(&A, 0, sizeof A);
    memset(T, 0, sizeof T);
    memset(E, 0, sizeof E);
    memset(SC, 0, sizeof SC);
    memset(TK, 0, sizeof TK);
    memset(TM, 0, sizeof TM);
    LOGN = 0;
    LOG[0] = 0;
    retry_enomem = 0;
    enomem_seen = 0;
    S = task_create(test_alloc_fn, &A);
    CHECK(S != NULL);
}

static void finish(void) {
    CHECK_INT(task_destroy(S), TASK_OK);
    S = NULL;
    CHECK_INT(A.bytes, 0);
}

#define V(n) ((void *)(uintptr_t)(n))
#define IV(p) ((int)(uintptr_t)(p))

/* ---- bots --------------------------------------------------------------- */

enum { A_DONE = 0, A_FAIL, A_YIELD, A_NOTHING, A_WAIT, A_PARK, A_SLEEP, A_JOIN, A_EXT, A_CLOSE, A_OPEN, A_PARK_AS };
typedef struct act { int op; uint64_t arg; } act;
typedef struct bot bot;
struct bot {
    const char *name;
    act s[12];
    int (*hook)(task_ctx *c, bot *b); /* before the script; >= 0: return that */
    int n, steps, why, aborts;
    int rc[12];
    void *value;
    task_id self;
    int x;    /* free for hooks */
};

static int bot_step(task_ctx *c) {
    bot *b = (bot *)c->ud;
    static const char W[] = "SWTYCA";
    b->steps++;
    b->why = c->why;
    b->value = c->value;
    b->self = c->self;
    if (c->value) logp("%s%c=%d ", b->name, W[c->why], IV(c->value));
    else logp("%s%c ", b->name, W[c->why]);
    if (c->why == TASK_WHY_ABORT) {
        b->aborts++;
        if (b->hook) b->hook(c, b);
        return TASK_STEP_DONE;
    }
    if (b->hook) {
        int r = b->hook(c, b);
        if (r >= 0) return r;
    }
    for (;;) {
        int i = b->n, rc;
        act a;
        if (i >= 12) return TASK_STEP_DONE;
        a = b->s[i];
        b->n++;
    again:
        switch (a.op) {
        case A_DONE:
            if (a.arg) CHECK_INT(task_set_result(c->sched, V(a.arg)), TASK_OK);
            return TASK_STEP_DONE;
        case A_FAIL:
            if (a.arg) CHECK_INT(task_set_result(c->sched, V(a.arg)), TASK_OK);
            return TASK_STEP_FAIL;
        case A_YIELD: return TASK_STEP_YIELD;
        case A_NOTHING: return TASK_STEP_SUSPEND;
        case A_WAIT: rc = task_wait(c->sched); break;
        case A_PARK: rc = task_park(c->sched); break;
        case A_PARK_AS: rc = task_park_as(c->sched, (unsigned)a.arg); break;
        case A_SLEEP: rc = task_sleep(c->sched, a.arg); break;
        case A_JOIN: rc = task_join(c->sched, T[a.arg]); break;
        case A_EXT: rc = task_ext_wait(c->sched, E[a.arg]); break;
        case A_CLOSE: rc = task_scope_close(c->sched, SC[a.arg]); break;
        case A_OPEN:
            rc = task_scope_open(c->sched, &SC[a.arg]);
            if (rc == TASK_ENOMEM && retry_enomem) { enomem_seen++; goto again; }
            b->rc[i] = rc;
            if (rc) logp("%s!%d ", b->name, rc);
            continue;
        default: return TASK_STEP_FAIL;
        }
        if (rc == TASK_ENOMEM && retry_enomem) { enomem_seen++; goto again; }
        b->rc[i] = rc;
        if (rc == TASK_OK) return TASK_STEP_SUSPEND;
        logp("%s!%d ", b->name, rc);
    }
}

/* Readies a bot that outlives its test case's frame (one a hook spawns):
   a name and its first action. */
static void bot_reset(bot *b, const char *name, int op, uint64_t arg) {
    memset(b, 0, sizeof *b);
    b->name = name;
    b->s[0].op = op;
    b->s[0].arg = arg;
}

static task_id spawn_opts(bot *b, const task_opts *o) {
    task_id id = 0;
    int rc = task_spawn(S, bot_step, b, o, &id);
    while (rc == TASK_ENOMEM && retry_enomem) { enomem_seen++; rc = task_spawn(S, bot_step, b, o, &id); }
    CHECK_INT(rc, TASK_OK);
    CHECK(id != 0);
    return id;
}
static task_id spawn(bot *b) { return spawn_opts(b, NULL); }

static void timer_cb(task_sched *s, task_id timer, void *ud) {
    (void)s; (void)timer;
    logp("t%d ", IV(ud));
}

/* ---- queries that answer through an out-pointer, as values ------------
   Tests compare ids; each helper also checks the result convention: a
   failing query answers TASK_ENOENT, writes 0 (or NULL) and names itself
   in task_errmsg. */

static task_id id_query(int (*q)(const task_sched *, task_id, task_id *), const char *name, task_sched *s,
                        task_id x) {
    task_id out = 12345;
    int rc = q(s, x, &out);
    if (rc != TASK_OK) {
        CHECK_INT(rc, TASK_ENOENT);
        CHECK_U64(out, 0);
        CHECK_CONTAINS(task_errmsg(s), name);
    }
    return out;
}
static task_id token_of(task_sched *s, task_id t) { return id_query(task_token_of, "task_token_of", s, t); }
static task_id scope_token(task_sched *s, task_id sc) { return id_query(task_scope_token, "task_scope_token", s, sc); }
static task_id scope_owner(task_sched *s, task_id sc) { return id_query(task_scope_owner, "task_scope_owner", s, sc); }
static task_id scope_of(task_sched *s, task_id t) { return id_query(task_scope_of, "task_scope_of", s, t); }
static task_id ext_waiter(task_sched *s, task_id e) { return id_query(task_ext_waiter, "task_ext_waiter", s, e); }

static uint64_t trace_of(task_sched *s, task_id t) {
    uint64_t out = 12345;
    if (task_trace_of(s, t, &out) != TASK_OK) { CHECK_U64(out, 0); CHECK_CONTAINS(task_errmsg(s), "task_trace_of"); }
    return out;
}

static void *userdata_of(task_sched *s, task_id t) {
    void *out = &out;
    if (task_userdata(s, t, &out) != TASK_OK) { CHECK(out == NULL); CHECK_CONTAINS(task_errmsg(s), "task_userdata"); }
    return out;
}

static task_fn step_of(task_sched *s, task_id t) {
    task_fn out = bot_step;
    if (task_step_of(s, t, &out) != TASK_OK) { CHECK(out == NULL); CHECK_CONTAINS(task_errmsg(s), "task_step_of"); }
    return out;
}

/* How a task ended (TASK_EXIT_*) and its result, or task_result's error. */
static int ended_with(task_sched *s, task_id t, void **value) {
    int how = -1, rc = task_result(s, t, &how, value);
    if (rc == TASK_OK) return how;
    CHECK_INT(how, 0);
    if (value) CHECK(*value == NULL);
    CHECK_CONTAINS(task_errmsg(s), "task_result");
    return rc;
}
static int ended(task_sched *s, task_id t) { return ended_with(s, t, NULL); }

/* ---- the scheduler object --------------------------------------------- */

TEST_CASE(create_destroy) {
    task_sched *s;
    begin();
    CHECK(A.bytes > 0);
    CHECK_U64(task_now(S), 0);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    CHECK_U64(task_timeout(S, 0), TASK_FOREVER);
    CHECK_INT(task_timeout_ms(S, 0), -1);
    CHECK_INT(task_count(S, -1), 0);
    CHECK_INT(task_ready_count(S), 0);
    CHECK_INT(task_tick(S, 5), 0);
    CHECK_U64(task_now(S), 5);
    CHECK_STR(task_errmsg(S), "");
    finish();
    /* the default allocator */
    s = task_create(NULL, NULL);
    CHECK(s != NULL);
    if (s) {
        bot a = {"a", {{A_SLEEP, 10}}, 0, 0, 0, 0, 0, {0}, 0, 0, 0};
        task_id id;
        CHECK_INT(task_spawn(s, bot_step, &a, NULL, &id), TASK_OK);
        CHECK_INT(task_tick(s, 0), 1);
        CHECK_INT(task_destroy(s), TASK_OK);
        CHECK_INT(a.aborts, 1);
    }
    log_take();
    CHECK_INT(task_destroy(NULL), TASK_EINVAL);
    /* out of memory on the scheduler itself */
    memset(&A, 0, sizeof A);
    A.fail_at = 1;
    CHECK(task_create(test_alloc_fn, &A) == NULL);
    CHECK_INT(A.bytes, 0);
    CHECK_INT(A.failed, 1);
}

TEST_CASE(strerror_and_state_names) {
    begin();
    CHECK_STR(task_strerror(TASK_OK), "ok");
    CHECK_STR(task_strerror(TASK_ENOMEM), "out of memory");
    CHECK_STR(task_strerror(TASK_EINVAL), "invalid argument");
    CHECK_STR(task_strerror(TASK_ENOENT), "unknown, released or stale id");
    CHECK_STR(task_strerror(TASK_ESTATE), "wrong state");
    CHECK_STR(task_strerror(TASK_ECANCELED), "task cancelled");
    CHECK_STR(task_strerror(TASK_EBUSY), "not allowed from inside a task or callback");
    CHECK_STR(task_strerror(TASK_EPERM), "not allowed here");
    CHECK_STR(task_strerror(TASK_EDEADLK), "a task cannot wait for itself");
    CHECK_STR(task_strerror(-99), "unknown status");
    CHECK_STR(task_strerror(1), "unknown status");
    CHECK_STR(task_state_name(TASK_RUN), "RUN");
    CHECK_STR(task_state_name(TASK_WAIT), "WAIT");
    CHECK_STR(task_state_name(TASK_READY), "READY");
    CHECK_STR(task_state_name(TASK_SLEEP), "SLEEP");
    CHECK_STR(task_state_name(TASK_EXIT), "EXIT");
    CHECK_STR(task_state_name(TASK_NSTATES), "?");
    CHECK_STR(task_state_name(-1), "?");
    CHECK_STR(task_state_name(TASK_ENOENT), "?");
    finish();
}

TEST_CASE(version) {
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", TASK_VERSION_MAJOR, TASK_VERSION_MINOR, TASK_VERSION_PATCH);
    CHECK_STR(TASK_VERSION, v);
#if TASK_VERSION_MAJOR == 0 && TASK_VERSION_MINOR < 2
    CHECK(0); /* the numbers are usable in #if */
#endif
}

/* Every failing call answers a negative code and names itself in
   task_errmsg; every out-pointer may be NULL and is zeroed on failure. */
static void expect_refused(int rc, int want, const char *fn) {
    CHECK_INT(rc, want);
    CHECK_CONTAINS(task_errmsg(S), fn);
    task__err(S, TASK_OK, "%s", ""); /* so the next check sees a fresh message */
}

static int stop_walk(task_sched *s, task_id t, int state, void *ud) {
    (void)s; (void)t; (void)state; (void)ud;
    return 5;
}

TEST_CASE(result_convention) {
    bot a = {"a"};
    task_id dead, id = 1, tok, ext, sc = 1;
    uint64_t trace = 1;
    void *v = &v;
    task_fn fn = bot_step;
    int how = 1;
    begin();
    dead = spawn(&a);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_release(S, dead), TASK_OK);
    CHECK_INT(task_token_new(S, 0, &tok), TASK_OK);
    CHECK_INT(task_ext_alloc(S, &ext), TASK_OK);
    /* queries of an unknown id */
    expect_refused(task_status(S, dead), TASK_ENOENT, "task_status: unknown, released or stale task id");
    expect_refused(task_cancelled(S, dead), TASK_ENOENT, "task_cancelled");
    expect_refused(task_result(S, dead, &how, &v), TASK_ENOENT, "task_result: unknown, released or stale task id");
    CHECK_INT(how, 0);
    CHECK(v == NULL);
    expect_refused(task_userdata(S, dead, &v), TASK_ENOENT, "task_userdata");
    expect_refused(task_step_of(S, dead, &fn), TASK_ENOENT, "task_step_of");
    CHECK(fn == NULL);
    expect_refused(task_token_of(S, dead, &id), TASK_ENOENT, "task_token_of");
    CHECK_U64(id, 0);
    expect_refused(task_scope_of(S, dead, &sc), TASK_ENOENT, "task_scope_of");
    CHECK_U64(sc, 0);
    expect_refused(task_trace_of(S, dead, &trace), TASK_ENOENT, "task_trace_of");
    CHECK_U64(trace, 0);
    expect_refused(task_token_cancelled(S, ext), TASK_ENOENT, "task_token_cancelled: unknown or stale token");
    expect_refused(task_ext_status(S, tok), TASK_ENOENT, "task_ext_status: unknown, resumed or stale external id");
    id = 1;
    expect_refused(task_ext_waiter(S, tok, &id), TASK_ENOENT, "task_ext_waiter");
    CHECK_U64(id, 0);
    expect_refused(task_scope_count(S, tok), TASK_ENOENT, "task_scope_count: unknown, closed or stale scope");
    id = 1;
    expect_refused(task_scope_token(S, tok, &id), TASK_ENOENT, "task_scope_token");
    CHECK_U64(id, 0);
    id = 1;
    expect_refused(task_scope_owner(S, tok, &id), TASK_ENOENT, "task_scope_owner");
    CHECK_U64(id, 0);
    /* the same with no out-pointers */
    expect_refused(task_result(S, dead, NULL, NULL), TASK_ENOENT, "task_result");
    expect_refused(task_userdata(S, dead, NULL), TASK_ENOENT, "task_userdata");
    expect_refused(task_step_of(S, dead, NULL), TASK_ENOENT, "task_step_of");
    expect_refused(task_token_of(S, dead, NULL), TASK_ENOENT, "task_token_of");
    expect_refused(task_trace_of(S, dead, NULL), TASK_ENOENT, "task_trace_of");
    expect_refused(task_ext_waiter(S, 0, NULL), TASK_ENOENT, "task_ext_waiter");
    /* a query that succeeds with nothing to name */
    id = 1;
    CHECK_INT(task_ext_waiter(S, ext, &id), TASK_OK);
    CHECK_U64(id, 0);
    CHECK_INT(task_ext_waiter(S, ext, NULL), TASK_OK);
    /* operations on an ended task: TASK_ESTATE, never 0 */
    T[0] = spawn(&a);
    expect_refused(task_result(S, T[0], &how, NULL), TASK_ESTATE, "task_result: task is READY, not EXIT");
    CHECK_INT(how, 0);
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    CHECK_INT(task_cancel(S, T[0]), TASK_OK); /* already requested: still TASK_OK */
    CHECK_INT(task_tick(S, 0), 1);
    expect_refused(task_cancel(S, T[0]), TASK_ESTATE, "task_cancel: the task has already ended");
    expect_refused(task_abort(S, T[0]), TASK_ESTATE, "task_abort: the task has already ended");
    CHECK_INT(task_result(S, T[0], &how, NULL), TASK_OK);
    CHECK_INT(how, TASK_EXIT_DONE);
    CHECK_INT(task_result(S, T[0], NULL, NULL), TASK_OK);
    /* optional out-pointers of the calls that make ids */
    CHECK_INT(task_ext_alloc(S, NULL), TASK_OK);
    CHECK_INT(task_token_new(S, 0, NULL), TASK_OK);
    CHECK_INT(task_after(S, 5, timer_cb, NULL, NULL), TASK_OK);
    id = 1;
    expect_refused(task_token_new(S, dead, &id), TASK_ENOENT, "task_token_new");
    CHECK_U64(id, 0);
    /* task_foreach: the value that stopped it, or a refusal */
    CHECK_INT(task_foreach(S, stop_walk, NULL), 5);
    expect_refused(task_foreach(S, NULL, NULL), TASK_EINVAL, "task_foreach");
    expect_refused(task_trace_node(S, 70000), TASK_EINVAL, "task_trace_node");
    log_take();
    finish();
}

/* ---- spawning, FIFO order and the tick --------------------------------- */

static int self_hook(task_ctx *c, bot *b) {
    CHECK(task_self(c->sched) == c->self);
    CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
    CHECK_INT(task_count(c->sched, TASK_RUN), 1);
    CHECK(userdata_of(c->sched, c->self) == (void *)b);
    CHECK(c->ud == (void *)b);
    CHECK(c->sched == S);
    return -1;
}

TEST_CASE(spawn_and_fifo) {
    bot a = {"a"}, b = {"b"}, c = {"c"};
    task_id id;
    begin();
    a.hook = b.hook = c.hook = self_hook;
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    CHECK_INT(task_spawn(S, bot_step, &c, NULL, NULL), TASK_OK); /* out may be NULL */
    CHECK(T[0] != T[1]);
    CHECK_U64(T[0] >> 56, 1); /* the task kind */
    CHECK_INT(task_status(S, T[0]), TASK_READY);
    CHECK_INT(task_ready_count(S), 3);
    CHECK_INT(task_count(S, TASK_READY), 3);
    CHECK_INT(task_count(S, -1), 3);
    CHECK(userdata_of(S, T[1]) == (void *)&b);
    CHECK(userdata_of(S, 0) == NULL);
    CHECK(task_self(S) == 0);
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_timeout_ms(S, 0), 0);
    CHECK_INT(task_spawn(S, NULL, NULL, NULL, &id), TASK_EINVAL);
    CHECK_CONTAINS(task_errmsg(S), "task_spawn");
    CHECK_INT(task_count(S, -1), 3);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "aS bS cS");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(task_count(S, TASK_EXIT), 3);
    CHECK_INT(task_count(S, -1), 0);
    CHECK_INT(task_ready_count(S), 0);
    CHECK_INT(task_tick(S, 0), 0);
    finish();
}

static int wake_a_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_wakeup(c->sched, T[0], V(7)), TASK_OK);
    CHECK_INT(task_status(c->sched, T[0]), TASK_READY);
    return -1;
}

TEST_CASE(woken_runs_same_tick_yield_next_tick) {
    bot a = {"a", {{A_WAIT}}}, b = {"b", {{A_YIELD}}}, c = {"c", {{A_YIELD}, {A_YIELD}}};
    begin();
    b.hook = wake_a_hook;
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "aS bS cS aW=7");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(task_status(S, T[1]), TASK_READY);
    CHECK_INT(task_status(S, T[2]), TASK_READY);
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_ready_count(S), 2);
    b.hook = NULL;
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "bY cY");
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "cY");
    CHECK_INT(task_tick(S, 0), 0);
    finish();
}

static int yield_forever(task_ctx *c) {
    int *n = (int *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    ++*n;
    return TASK_STEP_YIELD;
}

TEST_CASE(yield_loop_does_not_trap_tick) {
    int n = 0, k;
    begin();
    CHECK_INT(task_spawn(S, yield_forever, &n, NULL, &T[0]), TASK_OK);
    for (k = 1; k <= 5; k++) {
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_INT(n, k);
        CHECK_U64(task_timeout(S, 0), 0);
    }
    finish();
}

TEST_CASE(tick_limit) {
    bot b[5] = {{"a", {{A_YIELD}}}, {"b", {{A_YIELD}}}, {"c", {{A_YIELD}}}, {"d", {{A_YIELD}}}, {"e", {{A_YIELD}}}};
    int i;
    begin();
    for (i = 0; i < 5; i++) T[i] = spawn(&b[i]);
    task_set_tick_limit(S, 2);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "aS bS");
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_ready_count(S), 5);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "cS dS");
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "eS aY");
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "bY cY");
    task_set_tick_limit(S, 0); /* no cap */
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "dY eY");
    CHECK_INT(task_count(S, TASK_EXIT), 5);
    /* a task woken during the tick is subject to the tick limit too */
    {
        bot w = {"w", {{A_WAIT}}}, x = {"x"}, y = {"y"};
        T[0] = spawn(&w);
        CHECK_INT(task_tick(S, 0), 1);
        T[1] = spawn(&x);
        T[2] = spawn(&y);
        CHECK_INT(task_wakeup(S, T[0], V(1)), TASK_OK);
        task_set_tick_limit(S, 1);
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_INT(task_tick(S, 0), 0);
        CHECK_STR(log_take(), "wS xS yS wW=1");
    }
    finish();
}

/* ---- time: sleeps, timers, timeouts ------------------------------------ */

TEST_CASE(sleep_never_early) {
    bot a = {"a", {{A_SLEEP, 10 * TASK_MSEC}}}, b = {"b", {{A_SLEEP, 1500}}}, z = {"z", {{A_SLEEP, 0}}};
    uint64_t t0 = 1000;
    begin();
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&z);
    CHECK_INT(task_tick(S, t0), 3);
    CHECK_STR(log_take(), "aS bS zS");
    CHECK_INT(task_status(S, T[0]), TASK_SLEEP);
    CHECK_INT(task_count(S, TASK_SLEEP), 3);
    /* sleep(0) is due at once but runs at the next tick */
    CHECK_U64(task_timeout(S, t0), 0);
    CHECK_U64(task_next_deadline(S), t0);
    CHECK_INT(task_tick(S, t0), 1);
    CHECK_STR(log_take(), "zT");
    CHECK_U64(task_next_deadline(S), t0 + 1500);
    CHECK_U64(task_timeout(S, t0), 1500);
    CHECK_INT(task_timeout_ms(S, t0), 1);
    /* sub-millisecond */
    CHECK_INT(task_tick(S, t0 + 1499), 0);
    CHECK_INT(task_status(S, T[1]), TASK_SLEEP);
    CHECK_INT(task_tick(S, t0 + 1500), 1);
    CHECK_STR(log_take(), "bT");
    CHECK_INT(task_tick(S, t0 + 10 * TASK_MSEC - 1), 0);
    CHECK_INT(task_status(S, T[0]), TASK_SLEEP);
    CHECK_INT(task_tick(S, t0 + 10 * TASK_MSEC), 1);
    CHECK_STR(log_take(), "aT");
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    finish();
}

TEST_CASE(sleep_counts_from_the_tick_clock) {
    /* deadlines count from the scheduler's clock (the last tick's now) */
    bot a = {"a", {{A_SLEEP, 100}, {A_SLEEP, 100}}};
    begin();
    T[0] = spawn(&a);
    CHECK_INT(task_tick(S, 50), 1);        /* sleeps until 150 */
    CHECK_INT(task_tick(S, 400), 1);       /* late: sleeps until 500 */
    CHECK_U64(task_next_deadline(S), 500);
    CHECK_INT(task_tick(S, 499), 0);
    CHECK_INT(task_tick(S, 500), 1);
    CHECK_STR(log_take(), "aS aT aT");
    /* the clock never goes backwards */
    CHECK_INT(task_tick(S, 10), 0);
    CHECK_U64(task_now(S), 500);
    /* a huge sleep saturates */
    {
        static bot h;
        bot_reset(&h, "h", A_SLEEP, TASK_FOREVER - 1);
        T[1] = spawn(&h);
        CHECK_INT(task_tick(S, 600), 1);
        CHECK_U64(task_next_deadline(S), TASK_FOREVER);
        CHECK_INT(task_timeout_ms(S, 600), INT_MAX);
        CHECK_INT(task_tick(S, UINT64_MAX - 1), 0);
        CHECK_INT(task_status(S, T[1]), TASK_SLEEP);
    }
    log_take();
    finish();
}

TEST_CASE(timeout_values) {
    bot a = {"a", {{A_SLEEP, 2500000}}};
    begin();
    CHECK_U64(task_timeout(S, 0), TASK_FOREVER);
    CHECK_INT(task_timeout_ms(S, 0), -1);
    T[0] = spawn(&a);
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_timeout_ms(S, 0), 0);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_U64(task_timeout(S, 0), 2500000);
    CHECK_INT(task_timeout_ms(S, 0), 3);          /* rounds up */
    CHECK_U64(task_timeout(S, 1000000), 1500000);
    CHECK_INT(task_timeout_ms(S, 1000000), 2);
    CHECK_INT(task_timeout_ms(S, 1500000), 1);    /* exactly 1 ms */
    CHECK_INT(task_timeout_ms(S, 1500001), 1);
    CHECK_INT(task_timeout_ms(S, 2499999), 1);    /* 1 ns: still 1 ms */
    CHECK_U64(task_timeout(S, 2499999), 1);
    CHECK_U64(task_timeout(S, 2500000), 0);
    CHECK_INT(task_timeout_ms(S, 2500000), 0);
    CHECK_U64(task_timeout(S, 9000000), 0);       /* overdue */
    CHECK_U64(task_next_deadline(S), 2500000);
    CHECK_INT(task_tick(S, 2500000), 1);
    CHECK_U64(task_timeout(S, 2500000), TASK_FOREVER);
    CHECK_INT(task_timeout_ms(S, 2500000), -1);
    /* a far timer: the ms value is capped at INT_MAX */
    CHECK_INT(task_after(S, (uint64_t)3000000000 * TASK_MSEC, timer_cb, V(1), &TM[0]), TASK_OK);
    CHECK_INT(task_timeout_ms(S, 2500000), INT_MAX);
    CHECK_INT(task_timer_cancel(S, TM[0]), TASK_OK);
    log_take();
    finish();
}

TEST_CASE(timers_order_and_ties) {
    task_id id;
    begin();
    CHECK_INT(task_after(S, 5 * TASK_MSEC, timer_cb, V(1), &TM[1]), TASK_OK);
    CHECK_INT(task_after(S, 3 * TASK_MSEC, timer_cb, V(2), &TM[2]), TASK_OK);
    CHECK_INT(task_after(S, 5 * TASK_MSEC, timer_cb, V(3), &TM[3]), TASK_OK);
    CHECK_INT(task_after(S, 3 * TASK_MSEC, timer_cb, V(4), &TM[4]), TASK_OK);
    CHECK_INT(task_after(S, 0, timer_cb, V(5), NULL), TASK_OK);
    CHECK_INT(task_after(S, 3 * TASK_MSEC, timer_cb, V(6), &TM[6]), TASK_OK);
    CHECK_U64(TM[1] >> 56, 2); /* the timer kind */
    CHECK_INT(task_after(S, 1, NULL, NULL, &id), TASK_EINVAL);
    CHECK_CONTAINS(task_errmsg(S), "task_after");
    CHECK_INT(task_timer_cancel(S, TM[6]), TASK_OK);
    CHECK_INT(task_timer_cancel(S, TM[6]), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_timer_cancel");
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_tick(S, 0), 0); /* callbacks are not resumes */
    CHECK_STR(log_take(), "t5");
    CHECK_U64(task_next_deadline(S), 3 * TASK_MSEC);
    CHECK_INT(task_tick(S, 3 * TASK_MSEC - 1), 0);
    CHECK_STR(log_take(), "");
    CHECK_INT(task_tick(S, 3 * TASK_MSEC), 0);
    CHECK_STR(log_take(), "t2 t4");
    /* a fired timer's id is stale */
    CHECK_INT(task_timer_cancel(S, TM[2]), TASK_ENOENT);
    CHECK_INT(task_tick(S, 100 * TASK_MSEC), 0);
    CHECK_STR(log_take(), "t1 t3");
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    finish();
}

static void own_id_cb(task_sched *s, task_id timer, void *ud) {
    (void)ud;
    CHECK(timer == TM[0]);
    CHECK_INT(task_timer_cancel(s, timer), TASK_ENOENT); /* it is firing */
    CHECK(task_self(s) == 0);
    logp("own ");
}

static void chain_cb(task_sched *s, task_id timer, void *ud) {
    (void)timer;
    logp("t%d ", IV(ud));
    if (IV(ud) == 1) CHECK_INT(task_after(s, 0, chain_cb, V(2), NULL), TASK_OK);
}

static void cancel_other_cb(task_sched *s, task_id timer, void *ud) {
    (void)timer;
    logp("t%d ", IV(ud));
    /* TM[2] was collected in this tick but has not run: it never will */
    CHECK_INT(task_timer_cancel(s, TM[2]), TASK_OK);
    CHECK_INT(task_timer_cancel(s, TM[2]), TASK_ENOENT);
}

TEST_CASE(timer_callbacks) {
    bot a = {"a", {{A_SLEEP, TASK_MSEC}}};
    int i;
    begin();
    /* the callback gets its own id */
    CHECK_INT(task_after(S, 10, own_id_cb, NULL, &TM[0]), TASK_OK);
    CHECK_INT(task_tick(S, 10), 0);
    CHECK_STR(log_take(), "own");
    /* a 0-delay timer set by a callback fires at the next tick, not this one */
    CHECK_INT(task_after(S, 0, chain_cb, V(1), NULL), TASK_OK);
    CHECK_INT(task_tick(S, 10), 0);
    CHECK_STR(log_take(), "t1");
    CHECK_INT(task_tick(S, 10), 0);
    CHECK_STR(log_take(), "t2");
    /* cancelling a collected timer from another callback */
    CHECK_INT(task_after(S, 5, cancel_other_cb, V(1), &TM[1]), TASK_OK);
    CHECK_INT(task_after(S, 5, timer_cb, V(2), &TM[2]), TASK_OK);
    CHECK_INT(task_after(S, 5, timer_cb, V(3), &TM[3]), TASK_OK);
    CHECK_INT(task_tick(S, 15), 0);
    CHECK_STR(log_take(), "t1 t3");
    /* the pool stays sound after that: reuse the slots many times */
    for (i = 0; i < 40; i++) CHECK_INT(task_after(S, (uint64_t)(i % 3), timer_cb, V(10 + i % 3), &TM[4]), TASK_OK);
    CHECK_INT(task_timer_cancel(S, TM[4]), TASK_OK);
    CHECK_INT(task_tick(S, 15), 0);
    CHECK_INT(task_tick(S, 17), 0);
    {
        const char *l = log_take();
        size_t k, n10 = 0, n11 = 0, n12 = 0;
        for (k = 0; l[k]; k++)
            if (l[k] == 't') { if (l[k + 2] == '0') n10++; else if (l[k + 2] == '1') n11++; else n12++; }
        CHECK_INT(n10, 13); /* 14, less the cancelled last one (i = 39) */
        CHECK_INT(n11, 13);
        CHECK_INT(n12, 13);
    }
    /* callbacks run before tasks woken by timers, whatever the set order */
    T[0] = spawn(&a);
    CHECK_INT(task_tick(S, 20), 1);
    CHECK_INT(task_after(S, TASK_MSEC, timer_cb, V(9), NULL), TASK_OK);
    CHECK_INT(task_tick(S, 20 + TASK_MSEC), 1);
    CHECK_STR(log_take(), "aS t9 aT");
    finish();
}

static int tick_in_task_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_tick(c->sched, 100), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_tick");
    CHECK_INT(task_destroy(c->sched), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_destroy");
    return -1;
}

static void tick_in_cb(task_sched *s, task_id timer, void *ud) {
    (void)timer; (void)ud;
    CHECK_INT(task_tick(s, 100), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(s), "task_tick");
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(s), "task_destroy");
    logp("cb ");
}

TEST_CASE(tick_and_destroy_refused_inside) {
    bot a = {"a"};
    begin();
    a.hook = tick_in_task_hook;
    T[0] = spawn(&a);
    CHECK_INT(task_after(S, 0, tick_in_cb, NULL, NULL), TASK_OK);
    CHECK_INT(task_tick(S, 1), 1);
    CHECK_STR(log_take(), "cb aS");
    CHECK_U64(task_now(S), 1);
    finish();
}

/* ---- wakeup / unpark and their errors ---------------------------------- */

static int wake_self_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_wakeup(c->sched, c->self, NULL), TASK_ESTATE);
    CHECK_STR(task_errmsg(c->sched), "task_wakeup: task is RUN, not WAIT");
    return -1;
}

TEST_CASE(wakeup_errors) {
    bot a = {"a"}, b = {"b", {{A_SLEEP, 100}}}, w = {"w", {{A_WAIT}, {A_WAIT}}}, p = {"p", {{A_PARK}}},
        j = {"j", {{A_JOIN, 2}}};
    task_id old, id, fake;
    begin();
    a.hook = wake_self_hook;
    T[0] = spawn(&a);
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_ESTATE);
    CHECK_STR(task_errmsg(S), "task_wakeup: task is READY, not WAIT");
    CHECK_INT(task_wakeup(S, 0, NULL), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_wakeup");
    fake = T[0] + 5; /* a slot never used */
    CHECK_INT(task_wakeup(S, fake, NULL), TASK_ENOENT);
    CHECK_INT(task_wakeup(S, T[0] ^ ((uint64_t)1 << 32), NULL), TASK_ENOENT); /* wrong generation */
    CHECK_INT(task_wakeup(S, (T[0] & 0x00FFFFFFFFFFFFFFull) | ((uint64_t)2 << 56), NULL), TASK_ENOENT); /* kind */
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "aS");
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_ESTATE);
    CHECK_STR(task_errmsg(S), "task_wakeup: task is EXIT, not WAIT");
    /* stale after release and reuse of the slot */
    old = T[0];
    CHECK_INT(task_release(S, old), TASK_OK);
    CHECK_INT(task_status(S, old), TASK_ENOENT);
    T[1] = spawn(&b);
    CHECK((uint32_t)T[1] == (uint32_t)old); /* same slot, */
    CHECK(T[1] != old);                     /* new generation */
    CHECK_INT(task_wakeup(S, old, NULL), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_wakeup");
    CHECK_INT(task_status(S, T[1]), TASK_READY);
    /* a timer id is not a task id, and the reverse */
    CHECK_INT(task_after(S, 10, timer_cb, NULL, &TM[0]), TASK_OK);
    CHECK_INT(task_wakeup(S, TM[0], NULL), TASK_ENOENT);
    CHECK_INT(task_status(S, TM[0]), TASK_ENOENT);
    CHECK_INT(task_timer_cancel(S, T[1]), TASK_ENOENT);
    T[2] = spawn(&w);
    T[3] = spawn(&p);
    T[4] = spawn(&j);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "bS wS pS jS");
    CHECK_INT(task_wakeup(S, T[1], NULL), TASK_ESTATE);
    CHECK_STR(task_errmsg(S), "task_wakeup: task is SLEEP, not WAIT");
    /* WAIT, but for something else */
    CHECK_INT(task_status(S, T[4]), TASK_WAIT);
    CHECK_INT(task_wakeup(S, T[4], NULL), TASK_ESTATE);
    CHECK_STR(task_errmsg(S), "task_wakeup: task is waiting for something else");
    CHECK_INT(task_unpark(S, T[4], NULL), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(S), "task_unpark");
    CHECK_INT(task_wakeup(S, T[3], NULL), TASK_ESTATE);
    CHECK_INT(task_unpark(S, T[2], NULL), TASK_ESTATE);
    CHECK_INT(task_unpark(S, 0, NULL), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_unpark");
    CHECK_INT(task_unpark(S, T[3], V(4)), TASK_OK);
    CHECK_INT(task_unpark(S, T[3], V(4)), TASK_ESTATE);
    CHECK_INT(task_wakeup(S, T[2], V(3)), TASK_OK);
    CHECK_INT(task_wakeup(S, T[2], V(3)), TASK_ESTATE);
    CHECK_STR(task_errmsg(S), "task_wakeup: task is READY, not WAIT");
    CHECK_INT(task_tick(S, 0), 2); /* p ends; w waits again */
    CHECK_INT(task_wakeup(S, T[2], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "pW=4 wW=3 wW jW");
    (void)id;
    finish();
}

/* ---- suspensions outside a task, twice, while aborting ----------------- */

TEST_CASE(suspensions_need_a_task) {
    task_id sc = 0;
    begin();
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    CHECK_INT(task_wait(S), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_wait");
    CHECK_INT(task_park(S), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_park");
    CHECK_INT(task_sleep(S, 5), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_sleep");
    CHECK_INT(task_join(S, 0), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_join");
    CHECK_INT(task_ext_wait(S, E[0]), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_ext_wait");
    CHECK_INT(task_set_result(S, V(1)), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_set_result");
    CHECK_INT(task_scope_open(S, &sc), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_scope_open");
    CHECK(sc == 0);
    CHECK(task_scope_current(S) == 0);
    CHECK_INT(task_ext_status(S, E[0]), 0); /* nothing changed */
    CHECK_INT(task_ext_release(S, E[0]), TASK_OK);
    finish();
}

static int twice_hook(task_ctx *c, bot *b) {
    task_sched *s = c->sched;
    (void)b;
    CHECK_INT(task_wait(s), TASK_OK);
    CHECK_INT(task_sleep(s, 10), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(s), "task_sleep");
    CHECK_INT(task_wait(s), TASK_ESTATE);
    CHECK_INT(task_park(s), TASK_ESTATE);
    CHECK_INT(task_join(s, T[1]), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(s), "task_join");
    CHECK_INT(task_ext_wait(s, E[0]), TASK_ESTATE);
    CHECK_INT(task_ext_status(s, E[0]), 0);
    return TASK_STEP_SUSPEND;
}

TEST_CASE(arrange_twice_refused) {
    bot a = {"a"}, b = {"b", {{A_WAIT}}};
    begin();
    a.hook = twice_hook;
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER); /* the refused sleep left nothing */
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    a.hook = NULL;
    CHECK_INT(task_wakeup(S, T[0], V(2)), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "aS bS aW=2");
    finish();
}

/* ---- external ids ------------------------------------------------------ */

TEST_CASE(ext_ids) {
    bot a = {"a", {{A_EXT, 0}}}, b = {"b", {{A_EXT, 1}}}, c = {"c", {{A_EXT, 1}}};
    task_id x;
    begin();
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    CHECK_INT(task_ext_alloc(S, &E[1]), TASK_OK);
    CHECK_U64(E[0] >> 56, 3);
    CHECK(E[0] != E[1]);
    CHECK_INT(task_ext_status(S, E[0]), 0);
    /* a resume before the wait is kept */
    CHECK_INT(task_ext_resume(S, E[0], V(9)), TASK_OK);
    CHECK_INT(task_ext_status(S, E[0]), 1);
    CHECK_INT(task_ext_resume(S, E[0], V(9)), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(S), "task_ext_resume");
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "aS bS cS c!-4 aW=9");
    CHECK_CONTAINS(task_errmsg(S), "task_ext_wait: another task waits");
    /* taken: the id is gone */
    CHECK_INT(task_ext_status(S, E[0]), TASK_ENOENT);
    CHECK_INT(task_ext_resume(S, E[0], NULL), TASK_ENOENT);
    CHECK_INT(task_ext_release(S, E[0]), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_ext_release");
    /* a resume after the wait */
    CHECK_INT(task_status(S, T[1]), TASK_WAIT);
    CHECK_INT(task_ext_status(S, E[1]), 0);
    CHECK_INT(task_ext_release(S, E[1]), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(S), "task_ext_release");
    CHECK_INT(task_wakeup(S, T[1], NULL), TASK_ESTATE); /* not a plain wait */
    CHECK_INT(task_ext_resume(S, E[1], V(3)), TASK_OK);
    CHECK_INT(task_status(S, T[1]), TASK_READY);
    CHECK_INT(task_ext_status(S, E[1]), TASK_ENOENT);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "bW=3");
    /* release: pending and resolved ids */
    CHECK_INT(task_ext_alloc(S, &x), TASK_OK);
    CHECK_INT(task_ext_release(S, x), TASK_OK);
    CHECK_INT(task_ext_status(S, x), TASK_ENOENT);
    CHECK_INT(task_ext_resume(S, x, NULL), TASK_ENOENT);
    CHECK_INT(task_ext_alloc(S, &E[2]), TASK_OK);
    CHECK((uint32_t)E[2] == (uint32_t)x && E[2] != x); /* reused slot, new generation */
    CHECK_INT(task_ext_resume(S, E[2], NULL), TASK_OK);
    CHECK_INT(task_ext_release(S, E[2]), TASK_OK);
    /* foreign ids */
    CHECK_INT(task_ext_status(S, T[0]), TASK_ENOENT);
    CHECK_INT(task_ext_resume(S, T[0], NULL), TASK_ENOENT);
    CHECK_INT(task_ext_status(S, 0), TASK_ENOENT);
    CHECK_INT(task_ext_alloc(S, &E[3]), TASK_OK); /* left pending: freed by destroy */
    finish();
}

static int ext_wait_bad_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_ext_wait(c->sched, T[0]), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_ext_wait");
    CHECK_INT(task_ext_wait(c->sched, 0), TASK_ENOENT);
    return -1;
}

TEST_CASE(ext_waiter_gives_up) {
    bot a = {"a", {{A_EXT, 0}}};
    begin();
    a.hook = ext_wait_bad_hook;
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    T[0] = spawn(&a);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    /* the waiter gave up: the id is of no use and is freed */
    CHECK_INT(task_ext_status(S, E[0]), TASK_ENOENT);
    CHECK_INT(task_ext_resume(S, E[0], V(1)), TASK_ENOENT);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "aS aC");
    finish();
}

/* ---- join -------------------------------------------------------------- */

static int join_bad_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_join(c->sched, c->self), TASK_EDEADLK);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_join");
    CHECK_INT(task_join(c->sched, 0), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_join");
    CHECK_INT(task_join(c->sched, TM[0]), TASK_ENOENT);
    CHECK_INT(task_join(c->sched, T[9]), TASK_ENOENT); /* released */
    return -1;
}

TEST_CASE(join) {
    bot a = {"a", {{A_JOIN, 1}}}, b = {"b", {{A_SLEEP, TASK_MSEC}, {A_DONE, 42}}},
        c = {"c", {{A_JOIN, 1}}}, d = {"d", {{A_DONE, 5}}}, e = {"e", {{A_JOIN, 3}}}, g = {"g"};
    void *v = NULL;
    begin();
    a.hook = join_bad_hook;
    T[9] = spawn(&g);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_release(S, T[9]), TASK_OK);
    CHECK_INT(task_after(S, 99, timer_cb, NULL, &TM[0]), TASK_OK);
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    CHECK_INT(ended_with(S, T[1], &v), TASK_ESTATE);
    CHECK_INT(ended_with(S, 0, &v), TASK_ENOENT);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    CHECK_INT(task_tick(S, TASK_MSEC), 3);
    /* joiners woken in join order, with the result as value */
    CHECK_STR(log_take(), "gS aS bS cS t0 bT aW=42 cW=42");
    CHECK_INT(ended_with(S, T[1], &v), TASK_EXIT_DONE);
    CHECK(v == V(42));
    CHECK_INT(ended(S, T[1]), TASK_EXIT_DONE);
    /* join an already-ended task: woken in the same tick */
    T[3] = spawn(&d);
    CHECK_INT(task_tick(S, TASK_MSEC), 1);
    T[4] = spawn(&e);
    CHECK_INT(task_tick(S, TASK_MSEC), 2);
    CHECK_STR(log_take(), "dS eS eW=5");
    CHECK_INT(ended_with(S, T[4], &v), TASK_EXIT_DONE);
    CHECK(v == NULL);
    finish();
}

TEST_CASE(join_failed_cancelled_aborted) {
    bot f = {"f", {{A_WAIT}, {A_FAIL, 5}}}, k = {"k", {{A_WAIT}, {A_DONE, 6}}}, x = {"x", {{A_WAIT}}},
        j1 = {"j", {{A_JOIN, 0}}}, j2 = {"l", {{A_JOIN, 1}}}, j3 = {"m", {{A_JOIN, 2}}};
    void *v = V(1);
    begin();
    T[0] = spawn(&f);
    T[1] = spawn(&k);
    T[2] = spawn(&x);
    T[3] = spawn(&j1);
    T[4] = spawn(&j2);
    T[5] = spawn(&j3);
    CHECK_INT(task_tick(S, 0), 6);
    CHECK_STR(log_take(), "fS kS xS jS lS mS");
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_OK);
    CHECK_INT(task_cancel(S, T[1]), TASK_OK);
    CHECK_INT(task_abort(S, T[2]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 6);
    CHECK_STR(log_take(), "fW kC xA jW=5 lW=6 mW");
    CHECK_INT(ended_with(S, T[0], &v), TASK_EXIT_FAIL);
    CHECK(v == V(5));
    CHECK_INT(ended_with(S, T[1], &v), TASK_EXIT_DONE);
    CHECK(v == V(6));
    CHECK_INT(ended_with(S, T[2], &v), TASK_EXIT_ABORT);
    CHECK(v == NULL);
    finish();
}

TEST_CASE(joiner_cancelled_leaves_the_list) {
    bot a = {"a", {{A_JOIN, 1}}}, b = {"b", {{A_SLEEP, 10}}}, c = {"c", {{A_JOIN, 1}}};
    begin();
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(task_release(S, T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 10), 2);
    CHECK_STR(log_take(), "aS bS cS aC bT cW");
    finish();
}

/* ---- cancellation ------------------------------------------------------ */

static int cancel_self_hook(task_ctx *c, bot *b) {
    if (b->steps == 1) {
        CHECK_INT(task_cancelled(c->sched, c->self), 0);
        CHECK_INT(task_cancel(c->sched, c->self), TASK_OK);
        CHECK_INT(task_cancelled(c->sched, c->self), 1);
        return TASK_STEP_SUSPEND; /* nothing arranged: woken at once, cancelled */
    }
    return -1;
}

static int arrange_then_cancel_hook(task_ctx *c, bot *b) {
    if (b->steps == 1) {
        CHECK_INT(task_sleep(c->sched, TASK_SEC), TASK_OK);
        CHECK_INT(task_cancel(c->sched, c->self), TASK_OK);
        CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
        return TASK_STEP_SUSPEND;
    }
    return -1;
}

TEST_CASE(cancel) {
    bot a = {"a", {{A_WAIT}, {A_WAIT}, {A_SLEEP, 1}, {A_PARK}, {A_JOIN, 1}, {A_EXT, 0}, {A_DONE}}},
        b = {"b", {{A_SLEEP, TASK_SEC}, {A_YIELD}, {A_WAIT}}}, c = {"c", {{A_WAIT}}},
        d = {"d", {{A_WAIT}}}, e = {"e"};
    begin();
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "aS bS");
    /* a parked task is woken at once */
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    CHECK_INT(task_status(S, T[0]), TASK_READY);
    CHECK_INT(task_cancelled(S, T[0]), 1);
    CHECK_INT(task_cancel(S, T[0]), TASK_OK); /* again: still requested */
    CHECK_INT(task_cancel(S, T[1]), TASK_OK);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER); /* the sleep is gone */
    CHECK_INT(task_tick(S, 0), 2);
    /* level-triggered: every later park is refused */
    CHECK_STR(log_take(), "aC a!-5 a!-5 a!-5 a!-5 a!-5 bC");
    CHECK_CONTAINS(task_errmsg(S), "task_");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(task_status(S, T[1]), TASK_READY); /* yielded: yield is not a park */
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "bY b!-5");
    CHECK_INT(task_cancel(S, T[0]), TASK_ESTATE); /* already ended */
    CHECK_INT(task_cancelled(S, T[0]), 1);
    CHECK_INT(task_ext_status(S, E[0]), 0); /* the refused wait did not take it */
    /* TASK_STEP_SUSPEND with nothing arranged while cancelled: woken at once */
    c.hook = cancel_self_hook;
    T[2] = spawn(&c);
    d.hook = arrange_then_cancel_hook;
    T[3] = spawn(&d);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "cS dS cC c!-5 dC d!-5");
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    /* a READY task: its first park is refused */
    T[4] = spawn(&e);
    e.s[0].op = A_WAIT;
    CHECK_INT(task_cancel(S, T[4]), TASK_OK);
    CHECK_INT(task_status(S, T[4]), TASK_READY);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "eS e!-5");
    /* errors */
    CHECK_INT(task_cancel(S, 0), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_cancel");
    CHECK_INT(task_cancelled(S, 0), TASK_ENOENT);
    CHECK_INT(task_cancelled(S, E[0]), TASK_ENOENT);
    CHECK_INT(task_release(S, T[4]), TASK_OK);
    CHECK_INT(task_cancel(S, T[4]), TASK_ENOENT);
    CHECK_INT(task_cancelled(S, T[4]), TASK_ENOENT);
    finish();
}

/* ---- cancel tokens ----------------------------------------------------- */

static int spawn_child_hook(task_ctx *c, bot *b) {
    if (b->steps == 1) {
        static bot kid = {"k", {{A_WAIT}}};
        bot_reset(&kid, "k", A_WAIT, 0);
        CHECK_INT(task_spawn(c->sched, bot_step, &kid, NULL, &T[7]), TASK_OK);
        CHECK(token_of(c->sched, T[7]) == token_of(c->sched, c->self));
    }
    return -1;
}

TEST_CASE(tokens) {
    task_id p, c1, c2, g, stale, r;
    task_opts o;
    bot a = {"a", {{A_WAIT}, {A_WAIT}}}, b = {"b", {{A_SLEEP, 100}}}, x = {"x", {{A_WAIT}}};
    begin();
    CHECK_INT(task_token_new(S, 0, &p), TASK_OK);
    CHECK_U64(p >> 56, 4);
    CHECK_INT(task_token_new(S, p, &c1), TASK_OK);
    CHECK_INT(task_token_new(S, c1, &g), TASK_OK);
    CHECK_INT(task_token_cancelled(S, p), 0);
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    CHECK_INT(task_token_new(S, E[0], &r), TASK_ENOENT); /* not a token */
    CHECK_INT(task_token_new(S, 12345, &r), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_token_new");
    /* tasks bound to a token */
    memset(&o, 0, sizeof o);
    o.token = g;
    a.hook = spawn_child_hook;
    T[0] = spawn_opts(&a, &o);
    CHECK(token_of(S, T[0]) == g);
    o.token = c1;
    T[1] = spawn_opts(&b, &o);
    T[2] = spawn(&x);
    CHECK(token_of(S, T[2]) == 0);
    CHECK(token_of(S, 0) == 0);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "aS bS xS kS");
    /* cancelling the parent cancels the children and wakes their tasks */
    CHECK_INT(task_token_cancel(S, p), TASK_OK);
    CHECK_INT(task_token_cancelled(S, p), 1);
    CHECK_INT(task_token_cancelled(S, c1), 1);
    CHECK_INT(task_token_cancelled(S, g), 1);
    CHECK_INT(task_cancelled(S, T[0]), 1);
    CHECK_INT(task_cancelled(S, T[7]), 1);
    CHECK_INT(task_cancelled(S, T[2]), 0);
    CHECK_INT(task_status(S, T[0]), TASK_READY);
    CHECK_INT(task_status(S, T[1]), TASK_READY);
    CHECK_INT(task_status(S, T[2]), TASK_WAIT);
    CHECK_INT(task_count(S, TASK_READY), 3);
    CHECK_INT(task_tick(S, 0), 3);
    {
        const char *l = log_take(); /* the order among them is not promised */
        CHECK(strstr(l, "aC a!-5") && strstr(l, "bC") && strstr(l, "kC"));
        CHECK_INT(strlen(l), strlen("aC a!-5 bC kC"));
    }
    /* a child made under a cancelled parent starts cancelled */
    CHECK_INT(task_token_new(S, p, &c2), TASK_OK);
    CHECK_INT(task_token_cancelled(S, c2), 1);
    CHECK_INT(task_token_cancel(S, c2), TASK_OK); /* again: no-op */
    /* release: a token lives until released and no task uses it */
    CHECK_INT(task_token_release(S, c2), TASK_OK);
    CHECK_INT(task_token_cancelled(S, c2), TASK_ENOENT);
    CHECK_INT(task_token_release(S, c2), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_token_release");
    CHECK_INT(task_token_cancel(S, c2), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_token_cancel");
    /* p has a child (c1): it outlives its release */
    CHECK_INT(task_token_release(S, p), TASK_OK);
    CHECK_INT(task_token_cancelled(S, p), 1);
    CHECK_INT(task_token_release(S, p), TASK_ESTATE); /* released already */
    CHECK_CONTAINS(task_errmsg(S), "task_token_release");
    CHECK_INT(task_token_release(S, g), TASK_OK); /* T[0] ended: g goes, c1 stays */
    CHECK_INT(task_token_cancelled(S, g), TASK_ENOENT);
    /* c1 still has a task? T[1] ended too; its release frees c1 and then p */
    CHECK_INT(task_token_release(S, c1), TASK_OK);
    CHECK_INT(task_token_cancelled(S, c1), TASK_ENOENT);
    CHECK_INT(task_token_cancelled(S, p), TASK_ENOENT);
    /* a released token stays while a live task uses it */
    CHECK_INT(task_token_new(S, 0, &r), TASK_OK);
    o.token = r;
    {
        bot y = {"y", {{A_WAIT}}};
        T[3] = spawn_opts(&y, &o);
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_INT(task_token_release(S, r), TASK_OK);
        CHECK_INT(task_token_cancelled(S, r), 0);
        CHECK_INT(task_token_cancel(S, r), TASK_OK); /* still works */
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_STR(log_take(), "yS yC");
        CHECK_INT(task_token_cancelled(S, r), TASK_ENOENT); /* the task ended */
        /* a task spawned with a cancelled token starts cancelled */
        CHECK_INT(task_token_new(S, 0, &stale), TASK_OK);
        CHECK_INT(task_token_cancel(S, stale), TASK_OK);
        o.token = stale;
        bot_reset(&y, "z", A_SLEEP, 0);
        T[4] = spawn_opts(&y, &o);
        CHECK_INT(task_cancelled(S, T[4]), 1);
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_STR(log_take(), "zS z!-5");
        CHECK_INT(task_token_release(S, stale), TASK_OK);
        o.token = stale;
        CHECK_INT(task_spawn(S, bot_step, &y, &o, NULL), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(S), "task_spawn");
    }
    CHECK_INT(task_token_cancelled(S, 0), TASK_ENOENT);
    CHECK_INT(task_token_release(S, T[2]), TASK_ENOENT);
    finish();
}

/* ---- scopes ------------------------------------------------------------ */

static bot m1, m2, m3;

static int scope_owner_hook(task_ctx *c, bot *b) {
    task_sched *s = c->sched;
    if (b->steps != 1) return -1;
    CHECK(task_scope_current(s) == 0);
    CHECK_INT(task_scope_open(s, &SC[0]), TASK_OK);
    CHECK_U64(SC[0] >> 56, 5);
    CHECK(task_scope_current(s) == SC[0]);
    CHECK(token_of(s, c->self) == scope_token(s, SC[0]));
    CHECK(scope_token(s, SC[0]) != 0);
    CHECK_INT(task_token_cancelled(s, scope_token(s, SC[0])), 0);
    CHECK_INT(task_token_release(s, scope_token(s, SC[0])), TASK_ESTATE); /* the scope's */
    CHECK_CONTAINS(task_errmsg(s), "task_token_release");
    CHECK_INT(task_spawn(s, bot_step, &m1, NULL, &T[1]), TASK_OK);
    CHECK_INT(task_spawn(s, bot_step, &m2, NULL, &T[2]), TASK_OK);
    CHECK(scope_of(s, T[1]) == SC[0]);
    CHECK(scope_of(s, c->self) == 0);
    CHECK(token_of(s, T[1]) == scope_token(s, SC[0]));
    CHECK_INT(task_scope_count(s, SC[0]), 2);
    return -1;
}

static void scope_setup(bot *o, const char *n1, act a1, const char *n2, act a2) {
    bot_reset(o, "o", A_CLOSE, 0);
    o->hook = scope_owner_hook;
    bot_reset(&m1, n1, a1.op, a1.arg);
    bot_reset(&m2, n2, a2.op, a2.arg);
}

TEST_CASE(scope_close_waits_for_all) {
    bot o;
    act sl = {A_SLEEP, TASK_MSEC}, wt = {A_WAIT, 0};
    begin();
    scope_setup(&o, "m", sl, "n", wt);
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "oS mS nS");
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_ESTATE); /* closing is no plain wait */
    CHECK_INT(task_scope_count(S, SC[0]), 2);
    CHECK_INT(task_wakeup(S, T[2], V(1)), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_scope_count(S, SC[0]), 1);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    CHECK_INT(task_tick(S, TASK_MSEC), 2);
    CHECK_STR(log_take(), "nW=1 mT oW");
    /* closed: the id is stale and the owner's token is restored */
    CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT);
    CHECK(scope_token(S, SC[0]) == 0);
    CHECK(scope_of(S, T[1]) == 0);
    CHECK(token_of(S, T[0]) == 0);
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    finish();
}

TEST_CASE(scope_close_not_interrupted_by_cancel) {
    bot o;
    act w1 = {A_WAIT, 0}, w2 = {A_WAIT, 0};
    begin();
    scope_setup(&o, "m", w1, "n", w2);
    m1.s[1].op = A_WAIT; /* m ignores the first cancel... then is refused */
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "oS mS nS");
    /* cancelling the owner cancels its scope: the members are woken, the
       closing owner is not */
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    CHECK_INT(task_status(S, T[1]), TASK_READY);
    CHECK_INT(task_status(S, T[2]), TASK_READY);
    CHECK_INT(task_token_cancelled(S, scope_token(S, SC[0])), 1);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "mC m!-5 nC oW");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT);
    finish();
}

TEST_CASE(scope_cancel_and_abort) {
    bot o;
    act sl = {A_SLEEP, TASK_SEC}, wt = {A_WAIT, 0};
    begin();
    scope_setup(&o, "m", sl, "n", wt);
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    log_take();
    CHECK_INT(task_scope_cancel(S, SC[0]), TASK_OK);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT); /* closing */
    CHECK_INT(task_cancelled(S, T[0]), 1);      /* its token is the scope's */
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "mC nC oW");
    CHECK_INT(task_cancelled(S, T[0]), 0); /* the scope closed: its token is restored */
    CHECK_INT(task_scope_cancel(S, SC[0]), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_scope_cancel");
    CHECK_INT(task_scope_abort(S, SC[0]), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_scope_abort");
    /* abort: members never run again but get one abort step */
    scope_setup(&o, "m", sl, "n", wt);
    m2.s[1].op = A_WAIT;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    log_take();
    CHECK_INT(task_scope_abort(S, SC[0]), TASK_OK);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "mA nA oW");
    CHECK_INT(ended(S, T[1]), TASK_EXIT_ABORT);
    CHECK_INT(ended(S, T[2]), TASK_EXIT_ABORT);
    CHECK_INT(ended(S, T[0]), TASK_EXIT_DONE);
    finish();
}

static int open_and_leave_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    CHECK_INT(task_spawn(c->sched, bot_step, &m1, NULL, &T[1]), TASK_OK);
    return TASK_STEP_DONE;
}

static int open_empty_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(c->sched, &SC[1]), TASK_OK);
    return TASK_STEP_FAIL;
}

TEST_CASE(scope_ownerless) {
    bot o = {"o"}, p = {"p"};
    task_opts op;
    begin();
    bot_reset(&m1, "m", A_WAIT, 0);
    bot_reset(&m2, "n", A_WAIT, 0);
    o.hook = open_and_leave_hook;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "oS mS");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(task_scope_count(S, SC[0]), 1);  /* it lives on, without owner */
    CHECK(token_of(S, T[0]) == 0);
    /* the host can still add members */
    memset(&op, 0, sizeof op);
    op.scope = SC[0];
    T[2] = spawn_opts(&m2, &op);
    CHECK(scope_of(S, T[2]) == SC[0]);
    CHECK(token_of(S, T[2]) == scope_token(S, SC[0]));
    CHECK_INT(task_scope_count(S, SC[0]), 2);
    /* only the owner closes, and there is none */
    CHECK_INT(task_scope_close(S, SC[0]), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_scope_close");
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_wakeup(S, T[1], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_scope_count(S, SC[0]), 1);
    CHECK_INT(task_wakeup(S, T[2], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "nS mW nW");
    CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT); /* freed with the last member */
    /* an empty scope whose owner ends goes at once */
    p.hook = open_empty_hook;
    T[3] = spawn(&p);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_scope_count(S, SC[1]), TASK_ENOENT);
    CHECK_INT(ended(S, T[3]), TASK_EXIT_FAIL);
    op.scope = SC[1];
    CHECK_INT(task_spawn(S, bot_step, &m2, &op, NULL), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_spawn");
    log_take();
    finish();
}

static int close_other_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_scope_close(c->sched, SC[0]), TASK_EPERM);
    CHECK_STR(task_errmsg(c->sched), "task_scope_close: only the task that opened the scope can close it");
    CHECK_INT(task_scope_close(c->sched, T[0]), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_scope_close");
    return -1;
}

static int nested_hook(task_ctx *c, bot *b) {
    task_sched *s = c->sched;
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(s, &SC[0]), TASK_OK);
    CHECK_INT(task_scope_open(s, &SC[1]), TASK_OK);
    CHECK(task_scope_current(s) == SC[1]);
    CHECK(SC[0] != SC[1]);
    CHECK_INT(task_scope_close(s, SC[0]), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(s), "task_scope_close");
    CHECK_INT(task_spawn(s, bot_step, &m3, NULL, &T[3]), TASK_OK);
    CHECK(scope_of(s, T[3]) == SC[1]);
    return -1;
}

TEST_CASE(scope_nested_and_owner_only) {
    bot o = {"o", {{A_CLOSE, 1}, {A_CLOSE, 0}}}, x = {"x"};
    begin();
    bot_reset(&m3, "m", A_WAIT, 0);
    o.hook = nested_hook;
    x.hook = close_other_hook;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "oS mS");
    T[1] = spawn(&x);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_scope_close(S, SC[1]), TASK_EPERM); /* the host */
    CHECK_INT(task_scope_close(S, 0), TASK_ENOENT);
    CHECK_INT(task_scope_count(S, SC[1]), 1);
    CHECK_INT(task_scope_count(S, SC[0]), 0);
    CHECK_INT(task_wakeup(S, T[3], NULL), TASK_OK);
    /* m ends; o wakes from the inner close, closes the empty outer one and
       wakes at once in the same tick */
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "xS mW oW oW");
    CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT);
    CHECK_INT(task_scope_count(S, SC[1]), TASK_ENOENT);
    CHECK(scope_token(S, 0) == 0);
    CHECK(scope_of(S, 0) == 0);
    finish();
}

static int cancelled_open_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_cancel(c->sched, c->self), TASK_OK);
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    CHECK_INT(task_token_cancelled(c->sched, scope_token(c->sched, SC[0])), 1);
    CHECK_INT(task_spawn(c->sched, bot_step, &m1, NULL, &T[1]), TASK_OK);
    CHECK_INT(task_cancelled(c->sched, T[1]), 1);
    return -1;
}

TEST_CASE(scope_of_cancelled_task) {
    bot o = {"o", {{A_CLOSE, 0}}};
    begin();
    bot_reset(&m1, "m", A_WAIT, 0);
    o.hook = cancelled_open_hook;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    /* the close is not refused though cancelled; the member's wait is */
    CHECK_STR(log_take(), "oS mS m!-5 oW");
    finish();
}

/* ---- abort and drop ---------------------------------------------------- */

static int abort_hook(task_ctx *c, bot *b) {
    if (c->why == TASK_WHY_ABORT) {
        CHECK_INT(task_wait(c->sched), TASK_ESTATE);
        CHECK_CONTAINS(task_errmsg(c->sched), "task_wait");
        CHECK_INT(task_sleep(c->sched, 1), TASK_ESTATE);
        CHECK_INT(task_cancel(c->sched, c->self), TASK_OK);
        CHECK_INT(task_set_result(c->sched, V(b->x)), TASK_OK);
        CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
        CHECK_INT(task_abort(c->sched, c->self), TASK_OK);
    }
    return -1;
}

static int self_abort_hook(task_ctx *c, bot *b) {
    if (c->why == TASK_WHY_ABORT) return abort_hook(c, b);
    CHECK_INT(task_sleep(c->sched, 10), TASK_OK);
    CHECK_INT(task_abort(c->sched, c->self), TASK_OK);
    CHECK_INT(task_abort(c->sched, c->self), TASK_OK);
    CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
    return TASK_STEP_YIELD;
}

static int abort_other_hook(task_ctx *c, bot *b) {
    (void)b;
    if (c->why == TASK_WHY_START) CHECK_INT(task_abort(c->sched, T[0]), TASK_OK);
    return -1;
}

TEST_CASE(abort_tasks) {
    bot a = {"a", {{A_WAIT}}}, b = {"b", {{A_SLEEP, 100}}}, c = {"c"}, d = {"d"},
        j = {"j", {{A_JOIN, 0}}}, k = {"k", {{A_JOIN, 3}}}, x = {"x"}, y = {"y", {{A_WAIT}}};
    void *v;
    begin();
    a.hook = b.hook = c.hook = d.hook = abort_hook;
    a.x = 11;
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[4] = spawn(&j);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "aS bS jS");
    /* parked (WAIT and SLEEP): READY at once, stepped once with TASK_WHY_ABORT */
    CHECK_INT(task_abort(S, T[0]), TASK_OK);
    CHECK_INT(task_status(S, T[0]), TASK_READY);
    CHECK_INT(task_abort(S, T[0]), TASK_OK);
    CHECK_INT(task_abort(S, T[1]), TASK_OK);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    CHECK_INT(task_cancel(S, T[0]), TASK_OK); /* an aborting task is not woken twice */
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_ESTATE);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "aA bA jW=11");
    CHECK_INT(a.steps, 2);
    CHECK_INT(a.aborts, 1);
    CHECK_INT(ended_with(S, T[0], &v), TASK_EXIT_ABORT);
    CHECK(v == V(11));
    CHECK_INT(task_abort(S, T[0]), TASK_ESTATE);
    /* READY, before its first step: the first step is the abort */
    T[2] = spawn(&c);
    CHECK_INT(task_abort(S, T[2]), TASK_OK);
    CHECK_INT(task_status(S, T[2]), TASK_READY);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "cA");
    CHECK_INT(c.steps, 1);
    /* the running task itself: what it arranged is undone, then one abort step */
    d.hook = self_abort_hook;
    T[3] = spawn(&d);
    T[5] = spawn(&k);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "dS dA kS kW"); /* k joins an ended task */
    CHECK_INT(d.aborts, 1);
    CHECK_INT(ended(S, T[3]), TASK_EXIT_ABORT);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    /* another task aborts a parked one: it runs in the same tick */
    T[0] = spawn(&y);
    CHECK_INT(task_tick(S, 0), 1);
    x.hook = abort_other_hook;
    T[6] = spawn(&x);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "yS xS yA");
    /* errors */
    CHECK_INT(task_abort(S, 0), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_abort");
    CHECK_INT(task_abort(S, TM[0] | ((uint64_t)2 << 56)), TASK_ENOENT);
    finish();
}

static int drop_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_drop(c->sched, c->self), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(c->sched), "task_drop");
    CHECK_INT(task_drop(c->sched, T[2]), TASK_OK); /* READY, later in the queue */
    return -1;
}

static int n_term;
static void term_count(task_sched *s, task_id t, void *ud) { (void)s; (void)t; (void)ud; n_term++; }

TEST_CASE(drop) {
    bot a = {"a", {{A_WAIT}}}, b = {"b", {{A_SLEEP, 100}}}, c = {"c"}, d = {"d"}, j = {"j", {{A_JOIN, 0}}},
        e = {"e"};
    task_hooks h = {NULL, term_count, NULL};
    begin();
    task_set_hooks(S, h);
    n_term = 0;
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[4] = spawn(&j);
    T[5] = spawn(&e);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "aS bS jS eS");
    CHECK_INT(n_term, 1);
    CHECK_INT(task_drop(S, T[0]), TASK_OK); /* WAIT: no step; joiners woken */
    CHECK_INT(task_status(S, T[0]), TASK_ENOENT);
    CHECK_INT(task_status(S, T[4]), TASK_READY);
    CHECK_INT(task_drop(S, T[1]), TASK_OK); /* SLEEP */
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    CHECK_INT(task_drop(S, T[5]), TASK_OK); /* EXIT: freed */
    CHECK_INT(task_status(S, T[5]), TASK_ENOENT);
    CHECK_INT(task_count(S, TASK_EXIT), 0);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "jW");
    CHECK_INT(n_term, 2); /* j only: drop runs no hooks */
    CHECK_INT(a.steps, 1);
    /* READY: removed from the queue, also by a running task */
    c.hook = drop_hook;
    T[6] = spawn(&e);
    T[3] = spawn(&c);
    T[2] = spawn(&d);
    CHECK_INT(task_drop(S, T[6]), TASK_OK); /* by the host, at the head */
    CHECK_INT(task_ready_count(S), 2);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "cS");
    CHECK_INT(d.steps, 0);
    CHECK_INT(task_status(S, T[2]), TASK_ENOENT);
    CHECK_INT(task_count(S, -1), 0);
    CHECK_INT(task_drop(S, 0), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_drop");
    CHECK_INT(task_drop(S, T[0]), TASK_ENOENT);
    finish();
}

TEST_CASE(drop_gives_no_stale_value) {
    /* a dropped task has no result: its joiners must not get the value it
       was woken with and never saw */
    bot a = {"a", {{A_WAIT}}}, j = {"j", {{A_JOIN, 0}}};
    begin();
    T[0] = spawn(&a);
    T[1] = spawn(&j);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_wakeup(S, T[0], V(77)), TASK_OK);
    CHECK_INT(task_drop(S, T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "aS jS jW");
    finish();
}

/* ---- release, slots, many tasks ---------------------------------------- */

TEST_CASE(release) {
    bot a = {"a", {{A_WAIT}}}, b = {"b"}, c = {"c"}, j = {"j", {{A_JOIN, 0}}};
    task_opts o;
    begin();
    T[0] = spawn(&a);
    T[3] = spawn(&j);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_release(S, T[0]), TASK_OK); /* live: freed when it ends */
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    CHECK_INT(task_release(S, T[0]), TASK_ESTATE);
    CHECK_CONTAINS(task_errmsg(S), "task_release");
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "aS jS aW jW");
    CHECK_INT(task_status(S, T[0]), TASK_ENOENT);
    CHECK_INT(task_count(S, TASK_EXIT), 1); /* j */
    CHECK_INT(task_release(S, T[0]), TASK_ENOENT);
    CHECK_INT(task_release(S, T[3]), TASK_OK);
    CHECK_INT(task_count(S, TASK_EXIT), 0);
    /* spawned detached */
    memset(&o, 0, sizeof o);
    o.flags = TASK_DETACHED;
    T[1] = spawn_opts(&b, &o);
    CHECK_INT(task_release(S, T[1]), TASK_ESTATE);
    T[2] = spawn(&c);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_status(S, T[1]), TASK_ENOENT);
    CHECK_INT(task_status(S, T[2]), TASK_EXIT);
    CHECK_INT(task_release(S, 0), TASK_ENOENT);
    CHECK_INT(task_release(S, TM[0]), TASK_ENOENT);
    log_take();
    finish();
}

static int quick(task_ctx *c) { (void)c; return TASK_STEP_DONE; }

TEST_CASE(many_tasks_and_slot_reuse) {
    static task_id ids[3000];
    int i, st = 0;
    begin();
    for (i = 0; i < 3000; i++) {
        CHECK_INT(task_spawn(S, quick, NULL, NULL, &ids[i]), TASK_OK);
        if (i && ids[i] == ids[i - 1]) st = 1;
    }
    CHECK_INT(st, 0);
    CHECK_INT(task_count(S, TASK_READY), 3000);
    CHECK_INT(task_tick(S, 0), 3000);
    CHECK_INT(task_count(S, TASK_EXIT), 3000);
    for (i = 0; i < 3000; i++) CHECK_INT(task_release(S, ids[i]), TASK_OK);
    CHECK_INT(task_count(S, TASK_EXIT), 0);
    {
        size_t b = A.bytes;
        task_id again;
        CHECK_INT(task_spawn(S, quick, NULL, NULL, &again), TASK_OK);
        CHECK_INT(A.bytes, b); /* reused slot, no allocation */
        for (i = 0; i < 3000; i++)
            if (ids[i] == again) st = 1;
        CHECK_INT(st, 0);
        for (i = 0; i < 3000; i++) CHECK_INT(task_status(S, ids[i]), TASK_ENOENT);
    }
    finish();
}

/* ---- trace ids --------------------------------------------------------- */

static uint64_t trace_seen;
static int trace_hook(task_ctx *c, bot *b) {
    task_sched *s = c->sched;
    if (b->steps != 1) return -1;
    CHECK_U64(task_trace_propagate(s), (trace_seen & ~0xFFFFull) | 3);
    CHECK_U64(trace_of(s, c->self), trace_seen);
    if (b->x) {
        uint64_t old = task_trace_spawn(s);
        CHECK_U64(old, trace_seen);
        CHECK_U64(trace_of(s, c->self), (3ull << 48) | (4464ull << 32) | (3ull << 16) | 3);
        CHECK_INT(task_spawn(s, bot_step, &m1, NULL, &T[5]), TASK_OK);
        CHECK_U64(trace_of(s, T[5]), trace_of(s, c->self));
        CHECK_U64(task_trace_set(s, 0xABCD), (3ull << 48) | (4464ull << 32) | (3ull << 16) | 3);
        CHECK_U64(trace_of(s, c->self), 0xABCD);
    }
    return -1;
}

TEST_CASE(trace_ids) {
    uint64_t now = 70000 * TASK_SEC + 123, t1, t2;
    bot a = {"a"}, b = {"b"};
    begin();
    CHECK_INT(task_trace_node(S, 65536), TASK_EINVAL);
    CHECK_CONTAINS(task_errmsg(S), "task_trace_node");
    CHECK_INT(task_trace_node(S, 0xFFFFFFFFu), TASK_EINVAL);
    CHECK_INT(task_trace_node(S, 65535), TASK_OK);
    CHECK_INT(task_trace_node(S, 7), TASK_OK);
    CHECK_INT(task_tick(S, now), 0);
    CHECK_U64(task_trace_propagate(S), 7); /* the host's id is 0 */
    CHECK_U64(task_trace_spawn(S), 0);
    /* 70000 s mod 65536 = 4464 */
    t1 = (7ull << 48) | (4464ull << 32) | (1ull << 16) | 7;
    CHECK_U64(task_trace_propagate(S), t1);
    CHECK_U64(task_trace_spawn(S), t1);
    t2 = (7ull << 48) | (4464ull << 32) | (2ull << 16) | 7;
    CHECK_U64(task_trace_set(S, t1), t2);
    CHECK_INT(task_trace_node(S, 3), TASK_OK);
    CHECK_U64(task_trace_propagate(S), (t1 & ~0xFFFFull) | 3);
    /* a task spawned by the host starts with the host's trace */
    trace_seen = t1;
    a.hook = trace_hook;
    T[0] = spawn(&a);
    CHECK_U64(trace_of(S, T[0]), t1);
    b.hook = trace_hook;
    b.x = 1;
    bot_reset(&m1, "m", A_DONE, 0);
    T[1] = spawn(&b);
    CHECK_INT(task_tick(S, now), 3);
    CHECK_STR(log_take(), "aS bS mS");
    /* the task's own changes did not touch the host's */
    CHECK_U64(task_trace_set(S, 0), t1);
    CHECK_U64(trace_of(S, T[1]), 0xABCD);
    CHECK_U64(trace_of(S, 0), 0);
    CHECK_INT(task_release(S, T[1]), TASK_OK);
    CHECK_U64(trace_of(S, T[1]), 0);
    /* the sequence is 16 bits */
    {
        int i;
        uint64_t x;
        for (i = 0; i < 65536; i++) task_trace_spawn(S);
        x = task_trace_propagate(S);
        CHECK_U64((x >> 16) & 0xFFFF, 3); /* 3 + 65536 */
        CHECK_U64(x >> 48, 3);
    }
    finish();
}

/* ---- hooks ------------------------------------------------------------- */

static task_hooks prev_hooks;
static void h1_create(task_sched *s, task_id t, void *ud) { (void)s; (void)t; logp("c1%s ", (const char *)ud); }
static void h1_term(task_sched *s, task_id t, void *ud) { (void)s; (void)t; logp("t1%s ", (const char *)ud); }
static void h2_create(task_sched *s, task_id t, void *ud) {
    CHECK_INT(task_status(s, t), TASK_READY);
    logp("c2%s ", (const char *)ud);
    if (prev_hooks.create) prev_hooks.create(s, t, prev_hooks.ud);
}
static void h2_term(task_sched *s, task_id t, void *ud) {
    CHECK_INT(task_status(s, t), TASK_EXIT);
    CHECK(task_self(s) == 0);
    logp("t2%s ", (const char *)ud);
    if (prev_hooks.term) prev_hooks.term(s, t, prev_hooks.ud);
}
static void h_release(task_sched *s, task_id t, void *ud) {
    (void)ud;
    CHECK_INT(task_release(s, t), TASK_OK); /* freeing from the hook is allowed */
    logp("rel ");
}

TEST_CASE(hooks_chain) {
    task_hooks h1, h2, old, h3;
    bot a = {"a"}, b = {"b", {{A_FAIL}}}, c = {"c", {{A_WAIT}}}, d = {"d", {{A_WAIT}}}, e = {"e", {{A_WAIT}}};
    begin();
    memset(&h1, 0, sizeof h1); /* the fields it does not set: none */
    memset(&h2, 0, sizeof h2);
    h1.create = h1_create;
    h1.term = h1_term;
    h1.ud = (void *)"x";
    old = task_set_hooks(S, h1);
    CHECK(old.create == NULL && old.term == NULL && old.ud == NULL);
    h2.create = h2_create;
    h2.term = h2_term;
    h2.ud = (void *)"y";
    prev_hooks = task_set_hooks(S, h2);
    CHECK(prev_hooks.create == h1_create && prev_hooks.term == h1_term && prev_hooks.ud == h1.ud);
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    T[3] = spawn(&d);
    T[4] = spawn(&e);
    CHECK_STR(log_take(), "c2y c1x c2y c1x c2y c1x c2y c1x c2y c1x");
    CHECK_INT(task_tick(S, 0), 5);
    CHECK_INT(task_abort(S, T[2]), TASK_OK);
    CHECK_INT(task_drop(S, T[3]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "aS t2y t1x bS t2y t1x cS dS eS cA t2y t1x");
    /* a term hook that releases the task */
    memset(&h3, 0, sizeof h3);
    h3.term = h_release;
    old = task_set_hooks(S, h3);
    CHECK(old.create == h2_create && old.term == h2_term && old.ud == h2.ud);
    CHECK_INT(task_wakeup(S, T[4], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "eW rel");
    CHECK_INT(task_status(S, T[4]), TASK_ENOENT);
    /* release from the hook of a task that was already released (detached) */
    {
        task_opts o;
        bot f = {"f"};
        memset(&o, 0, sizeof o);
        o.flags = TASK_DETACHED;
        task_set_hooks(S, old); /* the logging hooks: no double free */
        T[5] = spawn_opts(&f, &o);
        CHECK_INT(task_tick(S, 0), 1);
        CHECK_STR(log_take(), "c2y c1x fS t2y t1x");
        CHECK_INT(task_status(S, T[5]), TASK_ENOENT);
    }
    /* destroy runs no hooks */
    {
        static bot g = {"g", {{A_WAIT}}};
        T[6] = spawn(&g);
    }
    CHECK_INT(task_tick(S, 0), 1);
    log_take();
    CHECK_INT(task_destroy(S), TASK_OK);
    S = NULL;
    CHECK_STR(log_take(), "gA");
    CHECK_INT(A.bytes, 0);
}

/* ---- counts and walks --------------------------------------------------- */

static int walk_fn(task_sched *s, task_id t, int state, void *ud) {
    int *seen = (int *)ud;
    CHECK_INT(task_status(s, t), state);
    seen[state]++;
    seen[5]++;
    return 0;
}

static int walk_stop(task_sched *s, task_id t, int state, void *ud) {
    (void)s; (void)t; (void)state;
    return ++*(int *)ud == 2 ? 77 : 0;
}

static int count_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_count(c->sched, TASK_RUN), 1);
    CHECK_INT(task_count(c->sched, -1), 4);
    return -1;
}

TEST_CASE(counts_and_foreach) {
    bot a = {"a", {{A_WAIT}}}, b = {"b", {{A_SLEEP, 5}}}, c = {"c", {{A_YIELD}}}, d = {"d"};
    int seen[6] = {0}, n = 0;
    begin();
    CHECK_INT(task_foreach(S, walk_fn, seen), 0);
    CHECK_INT(seen[5], 0);
    a.hook = count_hook;
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    T[3] = spawn(&d);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_INT(task_count(S, TASK_RUN), 0);
    CHECK_INT(task_count(S, TASK_WAIT), 1);
    CHECK_INT(task_count(S, TASK_SLEEP), 1);
    CHECK_INT(task_count(S, TASK_READY), 1);
    CHECK_INT(task_count(S, TASK_EXIT), 1);
    CHECK_INT(task_count(S, -1), 3);
    CHECK_INT(task_count(S, TASK_NSTATES), 0);
    CHECK_INT(task_count(S, -2), 0);
    CHECK_INT(task_count(S, 99), 0);
    CHECK_INT(task_ready_count(S), 1);
    CHECK_INT(task_foreach(S, walk_fn, seen), 0);
    CHECK_INT(seen[5], 4);
    CHECK_INT(seen[TASK_WAIT], 1);
    CHECK_INT(seen[TASK_SLEEP], 1);
    CHECK_INT(seen[TASK_READY], 1);
    CHECK_INT(seen[TASK_EXIT], 1);
    CHECK_INT(task_foreach(S, walk_stop, &n), 77);
    CHECK_INT(n, 2);
    log_take();
    finish();
}

/* ---- protothreads ------------------------------------------------------ */

struct pt { int pc, k; task_id other, ext; int err[16], why[16]; intptr_t val[16]; };

static void pt_rec(struct pt *p, task_ctx *c) {
    p->err[p->k] = c->err;
    p->why[p->k] = c->why;
    p->val[p->k] = (intptr_t)c->value;
    p->k++;
}

static int pt_step(task_ctx *c) {
    struct pt *p = (struct pt *)c->ud;
    TASK_PT_BEGIN(c, p->pc);
    logp("p0 ");
    TASK_PT_SLEEP(c, TASK_MSEC);
    pt_rec(p, c);                     /* 0: timer */
    TASK_PT_YIELD(c);
    pt_rec(p, c);                     /* 1: yield */
    TASK_PT_WAIT(c);
    pt_rec(p, c);                     /* 2: woken, value 5 */
    TASK_PT_JOIN(c, p->other);
    pt_rec(p, c);                     /* 3: joined, value 8 */
    TASK_PT_EXT_WAIT(c, p->ext);
    pt_rec(p, c);                     /* 4: ext resolved before: same tick, value 9 */
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    CHECK_INT(task_spawn(c->sched, bot_step, &m1, NULL, &T[4]), TASK_OK);
    TASK_PT_SCOPE_CLOSE(c, SC[0]);
    pt_rec(p, c);                     /* 5: the scope closed */
    TASK_PT_JOIN(c, c->self);
    pt_rec(p, c);                     /* 6: refused EDEADLK, went on */
    CHECK_INT(task_cancel(c->sched, c->self), TASK_OK);
    TASK_PT_WAIT(c);
    pt_rec(p, c);                     /* 7: refused ECANCELED, why = CANCEL */
    CHECK(TASK_PT_CANCELLED(c));
    TASK_PT_SLEEP(c, 5);
    pt_rec(p, c);                     /* 8: refused too */
    TASK_PT_YIELD(c);                /* not a park: allowed */
    pt_rec(p, c);                     /* 9 */
    CHECK(TASK_PT_CANCELLED(c));         /* by the flag */
    logp("p1 ");
    TASK_PT_END(c);
}

TEST_CASE(protothreads) {
    struct pt p;
    bot o = {"o", {{A_WAIT}, {A_DONE, 8}}};
    begin();
    memset(&p, 0, sizeof p);
    bot_reset(&m1, "m", A_YIELD, 0);
    CHECK_INT(task_ext_alloc(S, &p.ext), TASK_OK);
    p.other = T[1] = spawn(&o);
    CHECK_INT(task_spawn(S, pt_step, &p, NULL, &T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_tick(S, TASK_MSEC), 1);
    CHECK_INT(task_tick(S, TASK_MSEC), 1);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    CHECK_INT(task_wakeup(S, T[0], V(5)), TASK_OK);
    CHECK_INT(task_tick(S, TASK_MSEC), 1);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT); /* joining o */
    CHECK_INT(task_ext_resume(S, p.ext, V(9)), TASK_OK);
    CHECK_INT(task_wakeup(S, T[1], NULL), TASK_OK);
    CHECK_INT(task_tick(S, TASK_MSEC), 4); /* o, p (join), p (ext), m */
    CHECK_INT(task_status(S, T[0]), TASK_WAIT); /* closing */
    CHECK_INT(task_tick(S, TASK_MSEC), 2);      /* m ends, p goes to its end */
    CHECK_INT(task_status(S, T[0]), TASK_READY); /* after the yield */
    CHECK_INT(task_tick(S, TASK_MSEC), 1);
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_INT(ended(S, T[0]), TASK_EXIT_DONE);
    CHECK_STR(log_take(), "oS p0 oW mS mY p1");
    CHECK_INT(p.k, 10);
    CHECK_INT(p.err[0], TASK_OK); CHECK_INT(p.why[0], TASK_WHY_TIMER);
    CHECK_INT(p.err[1], TASK_OK); CHECK_INT(p.why[1], TASK_WHY_YIELD);
    CHECK_INT(p.why[2], TASK_WHY_WAKE); CHECK_INT(p.val[2], 5);
    CHECK_INT(p.why[3], TASK_WHY_WAKE); CHECK_INT(p.val[3], 8);
    CHECK_INT(p.why[4], TASK_WHY_WAKE); CHECK_INT(p.val[4], 9);
    CHECK_INT(p.why[5], TASK_WHY_WAKE); CHECK_INT(p.err[5], TASK_OK);
    CHECK_INT(p.err[6], TASK_EDEADLK); CHECK_INT(p.why[6], TASK_WHY_WAKE);
    CHECK_INT(p.err[7], TASK_ECANCELED); CHECK_INT(p.why[7], TASK_WHY_CANCEL);
    CHECK_INT(p.err[8], TASK_ECANCELED); CHECK_INT(p.why[8], TASK_WHY_CANCEL);
    CHECK_INT(p.err[9], TASK_OK); CHECK_INT(p.why[9], TASK_WHY_YIELD);
    CHECK_INT(p.pc, -1);
    finish();
}

/* ---- destroy with live tasks ------------------------------------------- */

static int spawn_in_destroy_hook(task_ctx *c, bot *b) {
    (void)b;
    if (c->why == TASK_WHY_ABORT) {
        CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
        CHECK_INT(task_count(c->sched, TASK_RUN), 1);
        CHECK_INT(task_spawn(c->sched, quick, NULL, NULL, NULL), TASK_EBUSY);
        CHECK_CONTAINS(task_errmsg(c->sched), "task_spawn");
        CHECK_INT(task_tick(c->sched, 0), TASK_EBUSY);
        CHECK_INT(task_destroy(c->sched), TASK_EBUSY);
    }
    return -1;
}

TEST_CASE(destroy_with_live_tasks) {
    bot a = {"a", {{A_WAIT}}}, b = {"b", {{A_SLEEP, 100}}}, c = {"c"}, d = {"d"}, e = {"e", {{A_EXT, 0}}};
    task_id tok;
    begin();
    a.hook = spawn_in_destroy_hook;
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    CHECK_INT(task_token_new(S, 0, &tok), TASK_OK);
    CHECK_INT(task_after(S, 100, timer_cb, NULL, NULL), TASK_OK);
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    T[3] = spawn(&d);
    T[4] = spawn(&e);
    CHECK_INT(task_tick(S, 0), 4);
    T[2] = spawn(&c);
    CHECK_STR(log_take(), "aS bS dS eS");
    finish();
    CHECK_STR(log_take(), "aA bA eA cA");
    CHECK_INT(a.aborts + b.aborts + c.aborts + e.aborts, 4);
    CHECK_INT(d.aborts, 0);
}

/* ---- out of memory ----------------------------------------------------- */

static void fail_next(void) { A.fail_at = A.calls + 1; A.failed = 0; }
static void fail_second(void) { A.fail_at = A.calls + 2; A.failed = 0; }

static int sleep_oom_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    /* the heap's first allocation */
    fail_next();
    CHECK_INT(task_sleep(c->sched, 10), TASK_ENOMEM);
    CHECK_STR(task_errmsg(c->sched), "task_sleep: out of memory");
    CHECK_INT(A.failed, 1);
    CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
    CHECK_U64(task_next_deadline(c->sched), TASK_FOREVER);
    /* a scope: the token pool is full, so its growth fails first, then
       the scope pool's first allocation */
    fail_next();
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_ENOMEM);
    CHECK_STR(task_errmsg(c->sched), "task_scope_open: out of memory");
    CHECK_INT(A.failed, 1);
    CHECK(task_scope_current(c->sched) == 0);
    CHECK(token_of(c->sched, c->self) == TK[0]);
    fail_second();
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_ENOMEM);
    CHECK_INT(A.failed, 1);
    CHECK(task_scope_current(c->sched) == 0);
    CHECK(token_of(c->sched, c->self) == TK[0]);
    A.fail_at = 0;
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    CHECK(token_of(c->sched, c->self) == scope_token(c->sched, SC[0]));
    CHECK_INT(task_scope_close(c->sched, SC[0]), TASK_OK);
    return TASK_STEP_SUSPEND;
}

TEST_CASE(oom_in_task) {
    bot a = {"a", {{A_SLEEP, 10}}};
    task_opts o;
    task_id more[14];
    int i;
    begin();
    CHECK_INT(task_token_new(S, 0, &TK[0]), TASK_OK);
    for (i = 0; i < 14; i++) CHECK_INT(task_token_new(S, TK[0], &more[i]), TASK_OK); /* slots 2..15 */
    a.hook = sleep_oom_hook;
    memset(&o, 0, sizeof o);
    o.token = TK[0];
    T[0] = spawn_opts(&a, &o);
    CHECK_INT(task_tick(S, 5), 2); /* a; a again after the empty close */
    CHECK_STR(log_take(), "aS aW");
    CHECK_INT(task_status(S, T[0]), TASK_SLEEP);
    CHECK(token_of(S, T[0]) == TK[0]);
    CHECK_INT(task_tick(S, 15), 1);
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    CHECK_STR(log_take(), "aT");
    /* the token tree is intact: cancel reaches every child */
    CHECK_INT(task_token_cancel(S, TK[0]), TASK_OK);
    for (i = 0; i < 14; i++) CHECK_INT(task_token_cancelled(S, more[i]), 1);
    for (i = 0; i < 14; i++) CHECK_INT(task_token_release(S, more[i]), TASK_OK);
    CHECK_INT(task_token_release(S, TK[0]), TASK_OK);
    CHECK_INT(task_token_cancelled(S, TK[0]), TASK_ENOENT);
    finish();
}

TEST_CASE(oom_host_functions) {
    task_id id = 0, x = 0;
    size_t before;
    int i;
    begin();
    /* task_spawn: the page, then the page table */
    fail_next();
    before = A.bytes;
    CHECK_INT(task_spawn(S, quick, NULL, NULL, &id), TASK_ENOMEM);
    CHECK_STR(task_errmsg(S), "task_spawn: out of memory");
    CHECK(id == 0);
    CHECK_INT(A.bytes, before);
    fail_second();
    CHECK_INT(task_spawn(S, quick, NULL, NULL, &id), TASK_ENOMEM);
    CHECK_INT(A.failed, 1);
    CHECK_INT(A.bytes, before);
    CHECK_INT(task_count(S, -1), 0);
    CHECK_INT(task_ready_count(S), 0);
    A.fail_at = 0;
    /* the first page holds 1023 tasks; the next spawn allocates */
    for (i = 0; i < 1023; i++) CHECK_INT(task_spawn(S, quick, NULL, NULL, &id), TASK_OK);
    fail_next();
    CHECK_INT(task_spawn(S, quick, NULL, NULL, &x), TASK_ENOMEM);
    CHECK_INT(A.failed, 1);
    CHECK_INT(task_count(S, TASK_READY), 1023);
    A.fail_at = 0;
    CHECK_INT(task_spawn(S, quick, NULL, NULL, &x), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1024);
    /* task_after: the heap, then the timer pool */
    fail_next();
    CHECK_INT(task_after(S, 5, timer_cb, NULL, &id), TASK_ENOMEM);
    CHECK_STR(task_errmsg(S), "task_after: out of memory");
    fail_second();
    CHECK_INT(task_after(S, 5, timer_cb, NULL, &id), TASK_ENOMEM);
    CHECK_INT(A.failed, 1);
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    A.fail_at = 0;
    CHECK_INT(task_after(S, 5, timer_cb, V(1), &TM[0]), TASK_OK);
    /* the heap's growth past 64 entries */
    for (i = 1; i < 64; i++) CHECK_INT(task_after(S, 7, timer_cb, V(2), NULL), TASK_OK);
    fail_next();
    CHECK_INT(task_after(S, 6, timer_cb, V(3), NULL), TASK_ENOMEM);
    CHECK_INT(A.failed, 1);
    A.fail_at = 0;
    /* task_ext_alloc, task_token_new: their pools */
    fail_next();
    CHECK_INT(task_ext_alloc(S, &x), TASK_ENOMEM);
    CHECK_STR(task_errmsg(S), "task_ext_alloc: out of memory");
    A.fail_at = 0;
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    fail_next();
    CHECK_INT(task_token_new(S, 0, &x), TASK_ENOMEM);
    CHECK_STR(task_errmsg(S), "task_token_new: out of memory");
    A.fail_at = 0;
    CHECK_INT(task_token_new(S, 0, &TK[0]), TASK_OK);
    /* still usable */
    CHECK_INT(task_tick(S, 10), 0);
    {
        const char *l = log_take();
        CHECK_INT(strlen(l), strlen("t1") + 63 * strlen(" t2"));
    }
    CHECK_INT(task_ext_resume(S, E[0], V(1)), TASK_OK);
    CHECK_INT(task_ext_status(S, E[0]), 1);
    finish();
}

/* The sweep: a scenario that uses every allocating path; each call that
   fails with ENOMEM is retried (the allocator fails one allocation only),
   so the log must come out exactly as without failures. */
static int scen_hook(task_ctx *c, bot *b) {
    task_sched *s = c->sched;
    int rc;
    if (b->steps != 1) return -1;
    while ((rc = task_ext_alloc(s, &E[1])) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    while ((rc = task_token_new(s, TK[0], &TK[1])) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    while ((rc = task_after(s, 3, timer_cb, V(2), NULL)) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    while ((rc = task_scope_open(s, &SC[0])) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    while ((rc = task_spawn(s, bot_step, &m1, NULL, &T[5])) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    CHECK_INT(task_ext_resume(s, E[1], V(4)), TASK_OK);
    return -1;
}

static const char *scenario(void) {
    static const bot a0 = {"a", {{A_SLEEP, 2}, {A_CLOSE, 0}, {A_EXT, 1}, {A_DONE, 3}}}, b0 = {"b", {{A_EXT, 0}}},
        c0 = {"c", {{A_JOIN, 0}, {A_SLEEP, 0}, {A_WAIT}}};
    static bot a, b, c, d[40]; /* outlive the call: destroy steps the live ones */
    task_opts o;
    int i, rc;
    a = a0;
    b = b0;
    c = c0;
    retry_enomem = 1;
    bot_reset(&m1, "m", A_SLEEP, 4);
    a.hook = scen_hook;
    while ((rc = task_token_new(S, 0, &TK[0])) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    while ((rc = task_ext_alloc(S, &E[0])) == TASK_ENOMEM) enomem_seen++;
    CHECK_INT(rc, TASK_OK);
    memset(&o, 0, sizeof o);
    o.token = TK[0];
    T[0] = spawn_opts(&a, &o);
    T[1] = spawn(&b);
    T[2] = spawn(&c);
    for (i = 0; i < 40; i++) { /* enough timers and sleepers to grow the heap and pools */
        memset(&d[i], 0, sizeof d[i]);
        d[i].name = "d";
        d[i].s[0].op = A_SLEEP;
        d[i].s[0].arg = (uint64_t)(i % 7);
        spawn(&d[i]);
        while ((rc = task_after(S, (uint64_t)(i % 5), timer_cb, V(1), NULL)) == TASK_ENOMEM) enomem_seen++;
        CHECK_INT(rc, TASK_OK);
    }
    for (i = 0; i < 20; i++) {
        task_id x;
        while ((rc = task_ext_alloc(S, &x)) == TASK_ENOMEM) enomem_seen++;
        CHECK_INT(rc, TASK_OK);
        if (i % 2) CHECK_INT(task_ext_release(S, x), TASK_OK);
        while ((rc = task_token_new(S, TK[0], &x)) == TASK_ENOMEM) enomem_seen++;
        CHECK_INT(rc, TASK_OK);
    }
    for (i = 0; i < 10; i++) task_tick(S, (uint64_t)i);
    CHECK_INT(task_ext_resume(S, E[0], V(6)), TASK_OK);
    CHECK_INT(task_token_cancel(S, TK[0]), TASK_OK);
    for (i = 10; i < 14; i++) task_tick(S, (uint64_t)i);
    retry_enomem = 0;
    return log_take();
}

TEST_CASE(oom_sweep) {
    static char ref[sizeof LOG];
    unsigned long k, total;
    int bad = 0;
    begin();
    strcpy(ref, scenario());
    total = A.calls;
    CHECK(total > 10);
    CHECK_INT(task_count(S, -1), 1); /* c, left waiting */
    finish();
    for (k = 1; k <= total + 1 && !bad; k++) {
        memset(&A, 0, sizeof A);
        A.fail_at = k;
        S = task_create(test_alloc_fn, &A);
        if (!S) { CHECK_INT(A.bytes, 0); CHECK_INT(k, 1); continue; }
        LOGN = 0;
        enomem_seen = 0;
        memset(E, 0, sizeof E);
        memset(TK, 0, sizeof TK);
        memset(SC, 0, sizeof SC);
        {
            const char *got = scenario();
            if (strcmp(got, ref) != 0) { TEST__FAIL("k=%lu: log \"%s\", expected \"%s\"", k, got, ref); bad = 1; }
        }
        if (k <= total && (A.failed != 1 || enomem_seen != 1)) {
            TEST__FAIL("k=%lu: failed %lu, ENOMEM seen %d", k, A.failed, enomem_seen);
            bad = 1;
        }
        CHECK_INT(task_destroy(S), TASK_OK);
        S = NULL;
        if (A.bytes != 0) { TEST__FAIL("k=%lu: %lu bytes outstanding", k, (unsigned long)A.bytes); bad = 1; }
    }
    /* and with every allocation failing from the k-th on: give up at the
       first failure, destroy, nothing leaks */
    for (k = 1; k <= total && !bad; k++) {
        int i, rc = TASK_OK;
        static bot d[8];
        memset(&A, 0, sizeof A);
        A.fail_at = k;
        A.fail_all_after = 1;
        S = task_create(test_alloc_fn, &A);
        if (!S) continue;
        for (i = 0; i < 8 && rc == TASK_OK; i++) {
            task_id x;
            memset(&d[i], 0, sizeof d[i]);
            d[i].name = "d";
            d[i].s[0].op = A_SLEEP;
            d[i].s[0].arg = 1;
            rc = task_spawn(S, bot_step, &d[i], NULL, NULL);
            if (rc == TASK_OK) rc = task_after(S, 1, timer_cb, NULL, NULL);
            if (rc == TASK_OK) rc = task_ext_alloc(S, &x);
            if (rc == TASK_OK) rc = task_token_new(S, 0, &x);
            if (rc != TASK_OK && rc != TASK_ENOMEM) { TEST__FAIL("k=%lu: rc %d", k, rc); bad = 1; }
        }
        task_tick(S, 0);
        CHECK_INT(task_destroy(S), TASK_OK);
        S = NULL;
        if (A.bytes != 0) { TEST__FAIL("k=%lu (all after): %lu bytes outstanding", k, (unsigned long)A.bytes); bad = 1; }
    }
    log_take();
}

/* ---- task_step_of, task_scope_leave, TASK_PT_BEGIN on abort --------------- */

TEST_CASE(step_of_known_tasks) {
    bot a = {"a"};
    begin();
    T[0] = spawn(&a);
    CHECK(step_of(S, T[0]) == bot_step);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK(step_of(S, T[0]) == bot_step); /* EXIT: still known */
    CHECK_INT(task_release(S, T[0]), TASK_OK);
    CHECK(step_of(S, T[0]) == NULL);
    CHECK(step_of(S, 0) == NULL);
    CHECK_INT(task_after(S, 1, timer_cb, NULL, &TM[0]), TASK_OK);
    CHECK(step_of(S, TM[0]) == NULL);
    log_take();
    finish();
}

static int leave_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_leave(c->sched, c->self), TASK_OK); /* no scope: nothing to do */
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    CHECK_INT(task_spawn(c->sched, bot_step, &m1, NULL, &T[1]), TASK_OK);
    CHECK_INT(task_spawn(c->sched, bot_step, &m2, NULL, &T[2]), TASK_OK);
    CHECK_INT(task_scope_count(c->sched, SC[0]), 2);
    return -1;
}

TEST_CASE(scope_leave) {
    bot o = {"o", {{A_CLOSE, 0}}};
    begin();
    bot_reset(&m1, "m", A_WAIT, 0);
    bot_reset(&m2, "n", A_WAIT, 0);
    o.hook = leave_hook;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "oS mS nS");
    CHECK_INT(task_scope_leave(S, T[1]), TASK_OK);
    CHECK(scope_of(S, T[1]) == 0);
    CHECK_INT(task_scope_count(S, SC[0]), 1);
    CHECK_INT(task_scope_leave(S, T[1]), TASK_OK); /* again: no-op */
    CHECK_INT(task_scope_count(S, SC[0]), 1);
    CHECK_INT(task_status(S, T[0]), TASK_WAIT);
    /* the last member out wakes the closing owner */
    CHECK_INT(task_scope_leave(S, T[2]), TASK_OK);
    CHECK_INT(task_status(S, T[0]), TASK_READY);
    CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "oW");
    /* the members live on, outside any scope */
    CHECK_INT(task_status(S, T[1]), TASK_WAIT);
    CHECK_INT(task_wakeup(S, T[1], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "mW");
    /* an ownerless scope goes with its last member's leave */
    {
        bot p = {"p"};
        bot_reset(&m1, "k", A_WAIT, 0);
        p.hook = open_and_leave_hook;
        T[3] = spawn(&p);
        CHECK_INT(task_tick(S, 0), 2);
        CHECK_STR(log_take(), "pS kS");
        CHECK_INT(task_scope_count(S, SC[0]), 1);
        CHECK_INT(task_scope_leave(S, T[1]), TASK_OK);
        CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT);
    }
    CHECK_INT(task_scope_leave(S, 0), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(S), "task_scope_leave");
    CHECK_INT(task_scope_leave(S, SC[1]), TASK_ENOENT);
    finish();
}

struct pt2 { int pc, after; };
static int pt2_step(task_ctx *c) {
    struct pt2 *p = (struct pt2 *)c->ud;
    TASK_PT_BEGIN(c, p->pc);
    TASK_PT_WAIT(c);
    p->after++; /* never reached on abort */
    TASK_PT_WAIT(c);
    p->after++;
    TASK_PT_END(c);
}

TEST_CASE(protothread_abort) {
    struct pt2 p = {0, 0}, q = {0, 0};
    begin();
    CHECK_INT(task_spawn(S, pt2_step, &p, NULL, &T[0]), TASK_OK);
    CHECK_INT(task_spawn(S, pt2_step, &q, NULL, &T[1]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_abort(S, T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(p.after, 0);
    CHECK_INT(p.pc, -1);
    CHECK_INT(ended(S, T[0]), TASK_EXIT_ABORT);
    CHECK_INT(task_wakeup(S, T[1], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(q.after, 1);
    finish(); /* q is aborted by destroy: no more progress */
    CHECK_INT(q.after, 1);
    CHECK_INT(q.pc, -1);
}

static int two_scopes_hook(task_ctx *c, bot *b) {
    task_sched *s = c->sched;
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(s, &SC[0]), TASK_OK);
    CHECK_INT(task_spawn(s, bot_step, &m1, NULL, &T[1]), TASK_OK);
    CHECK_INT(task_scope_open(s, &SC[1]), TASK_OK);
    CHECK_INT(task_spawn(s, bot_step, &m2, NULL, &T[2]), TASK_OK);
    return -1;
}

TEST_CASE(cancel_owner_of_nested_scopes) {
    /* cancelling a task cancels everything in the scopes it owns, the
       outer ones too: else closing the outer scope would wait forever */
    bot o = {"o", {{A_CLOSE, 1}, {A_CLOSE, 0}}};
    begin();
    bot_reset(&m1, "m", A_WAIT, 0);
    bot_reset(&m2, "n", A_WAIT, 0);
    o.hook = two_scopes_hook;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "oS mS nS");
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    CHECK_INT(task_cancelled(S, T[1]), 1);
    CHECK_INT(task_cancelled(S, T[2]), 1);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "mC nC oW oW");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    finish();
}

/* ---- the fairness bound -------------------------------------------------- */

/* Two tasks that wake each other for ever (ping-pong); each stops after
   `max` steps, so a scheduler without the bound still returns. */
struct pp { const char *name; task_id *other; int n, max; };

static int pp_step(task_ctx *c) {
    struct pp *p = (struct pp *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    logp("%s ", p->name);
    if (task_status(c->sched, *p->other) == TASK_WAIT) CHECK_INT(task_wakeup(c->sched, *p->other, NULL), TASK_OK);
    if (++p->n >= p->max) return TASK_STEP_DONE;
    CHECK_INT(task_wait(c->sched), TASK_OK);
    return TASK_STEP_SUSPEND;
}

static void pp_spawn(struct pp *a, struct pp *b, int max) {
    a->name = "a"; a->other = &T[1]; a->n = 0; a->max = max;
    b->name = "b"; b->other = &T[0]; b->n = 0; b->max = max;
    CHECK_INT(task_spawn(S, pp_step, a, NULL, &T[0]), TASK_OK);
    CHECK_INT(task_spawn(S, pp_step, b, NULL, &T[1]), TASK_OK);
}

TEST_CASE(wake_limit_ping_pong) {
    struct pp a, b;
    int k, before;
    begin();
    /* the default: the 2 tasks READY when the tick began, then 1024 more */
    CHECK_INT(TASK_WAKE_LIMIT, 1024);
    pp_spawn(&a, &b, 100000);
    CHECK_INT(task_tick(S, 0), 2 + 1024);
    CHECK_INT(a.n + b.n, 2 + 1024);
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_ready_count(S), 1);
    CHECK_INT(task_status(S, T[0]), TASK_READY); /* b's last step woke it */
    CHECK_INT(task_tick(S, 0), 1 + 1024);
    CHECK_INT(task_drop(S, T[0]), TASK_OK);
    CHECK_INT(task_drop(S, T[1]), TASK_OK);
    log_take();
    /* a small limit: exact resumes per tick, and a due timer fires between */
    task_set_wake_limit(S, 3);
    pp_spawn(&a, &b, 100000);
    CHECK_INT(task_after(S, 10, timer_cb, V(1), NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 5);
    CHECK_STR(log_take(), "a b a b a");
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_tick(S, 9), 4);
    CHECK_STR(log_take(), "b a b a");
    CHECK_INT(task_tick(S, 10), 4);
    CHECK_STR(log_take(), "t1 b a b a");
    for (k = 0; k < 10; k++) CHECK_INT(task_tick(S, 11), 4);
    CHECK_INT(a.n + b.n, 5 + 4 + 4 + 40);
    /* 0: a task woken during a tick always waits for the next one */
    task_set_wake_limit(S, 0);
    log_take();
    CHECK_INT(task_tick(S, 11), 1);
    CHECK_STR(log_take(), "b");
    CHECK_INT(task_tick(S, 11), 1);
    CHECK_STR(log_take(), "a");
    CHECK_U64(task_timeout(S, 11), 0);
    /* with the tick limit: whichever stops first */
    task_set_wake_limit(S, 3);
    task_set_tick_limit(S, 2);
    CHECK_INT(task_tick(S, 11), 2);
    CHECK_STR(log_take(), "b a");
    task_set_tick_limit(S, 10);
    CHECK_INT(task_tick(S, 11), 4);
    CHECK_STR(log_take(), "b a b a");
    task_set_tick_limit(S, 4);
    CHECK_INT(task_tick(S, 11), 4);
    CHECK_STR(log_take(), "b a b a");
    task_set_tick_limit(S, 1);
    task_set_wake_limit(S, 100);
    CHECK_INT(task_tick(S, 11), 1);
    CHECK_STR(log_take(), "b");
    task_set_tick_limit(S, 0);
    task_set_wake_limit(S, UINT_MAX); /* no bound: runs until both stop */
    before = a.n + b.n;
    CHECK_INT(before, 53 + 2 + 2 + 4 + 4 + 1);
    CHECK_INT(task_tick(S, 11), 2 * 100000 - before);
    CHECK_INT(a.n, 100000);
    CHECK_INT(b.n, 100000);
    CHECK_INT(task_count(S, -1), 0);
    log_take();
    finish();
}

static int wake_w_hook(task_ctx *c, bot *b) {
    (void)b;
    if (c->why == TASK_WHY_START) CHECK_INT(task_wakeup(c->sched, T[3], V(1)), TASK_OK);
    return -1;
}

static void wake_w_cb(task_sched *s, task_id timer, void *ud) {
    (void)timer; (void)ud;
    CHECK_INT(task_wakeup(s, T[3], V(2)), TASK_OK);
    logp("cb ");
}

TEST_CASE(wake_limit_batch_order) {
    /* the tick limit cuts the batch: its rest runs first at the next tick,
       before what it woke and before what yielded */
    bot x = {"x", {{A_YIELD}}}, y = {"y", {{A_YIELD}}}, z = {"z"}, w = {"w", {{A_WAIT}, {A_WAIT}}};
    begin();
    T[3] = spawn(&w);
    CHECK_INT(task_tick(S, 0), 1);
    x.hook = wake_w_hook;
    T[0] = spawn(&x);
    T[1] = spawn(&y);
    T[2] = spawn(&z);
    task_set_tick_limit(S, 2);
    task_set_wake_limit(S, 0);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_status(S, T[3]), TASK_READY);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(task_tick(S, 0), 0);
    CHECK_STR(log_take(), "wS xS yS zS wW=1 xY yY");
    /* a task woken by a timer callback is in the batch: it runs in this
       tick even with the limit at 0 */
    task_set_tick_limit(S, 0);
    CHECK_INT(task_after(S, 5, wake_w_cb, NULL, NULL), TASK_OK);
    CHECK_INT(task_tick(S, 5), 1);
    CHECK_STR(log_take(), "cb wW=2");
    finish();
}

/* ---- callbacks: no tick or destroy inside, and what they may do --------- */

static int refuse_walk(task_sched *s, task_id t, int state, void *ud) {
    (void)t; (void)state;
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    CHECK_STR(task_errmsg(s), "task_destroy: called from inside a task or callback");
    CHECK_INT(task_tick(s, 50), TASK_EBUSY);
    CHECK_STR(task_errmsg(s), "task_tick: called from inside a task or callback");
    ++*(int *)ud;
    return 0;
}

static int walk_count(task_sched *s, task_id t, int state, void *ud) {
    (void)s; (void)t; (void)state;
    ++*(int *)ud;
    return 0;
}

/* nested: a walk inside a walk; the outer one is still refused after it */
static int nested_walk(task_sched *s, task_id t, int state, void *ud) {
    int n = 0;
    (void)t; (void)state;
    CHECK_INT(task_foreach(s, refuse_walk, &n), 0);
    CHECK(n > 0);
    CHECK_INT(task_tick(s, 50), TASK_EBUSY);
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    ++*(int *)ud;
    return 0;
}

static void refuse_create(task_sched *s, task_id t, void *ud) {
    (void)ud;
    CHECK_INT(task_status(s, t), TASK_READY);
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(s), "task_destroy");
    CHECK_INT(task_tick(s, 50), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(s), "task_tick");
    logp("c ");
}

static void refuse_term(task_sched *s, task_id t, void *ud) {
    (void)ud;
    CHECK_INT(task_status(s, t), TASK_EXIT);
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(s), "task_destroy");
    CHECK_INT(task_tick(s, 50), TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(s), "task_tick");
    logp("e ");
}

static int walk_in_task_hook(task_ctx *c, bot *b) {
    int n = 0;
    (void)b;
    CHECK_INT(task_foreach(c->sched, refuse_walk, &n), 0);
    CHECK_INT(n, 2);
    /* still inside the task after the walk */
    CHECK_INT(task_tick(c->sched, 50), TASK_EBUSY);
    return -1;
}

TEST_CASE(no_tick_or_destroy_in_callbacks) {
    bot a = {"a"}, b = {"b", {{A_WAIT}}};
    task_hooks h = {refuse_create, refuse_term, NULL};
    int n = 0;
    begin();
    T[1] = spawn(&b);
    CHECK_INT(task_foreach(S, refuse_walk, &n), 0);
    CHECK_INT(n, 1);
    n = 0;
    CHECK_INT(task_foreach(S, nested_walk, &n), 0);
    CHECK_INT(n, 1);
    CHECK_U64(task_now(S), 0);
    /* back on the host: both work again */
    CHECK_INT(task_tick(S, 1), 1);
    CHECK_U64(task_now(S), 1);
    task_set_hooks(S, h);
    a.hook = walk_in_task_hook;
    T[0] = spawn(&a); /* the create hook, from the host */
    CHECK_INT(task_tick(S, 2), 1);
    CHECK_STR(log_take(), "bS c aS e");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    finish();
}

/* task_foreach while its callback spawns (new pages), drops, releases,
   aborts and cancels tasks */
static int walk_seen[3000];
static task_id walk_ids[3000];
static int walk_n;

static int walk_index(task_id t) {
    int k;
    for (k = 0; k < walk_n; k++) if (walk_ids[k] == t) return k;
    return -1;
}

static int mutating_walk(task_sched *s, task_id t, int state, void *ud) {
    int k = walk_index(t), j;
    (void)ud;
    CHECK_INT(task_status(s, t), state);
    if (k < 0) { walk_seen[2999]++; return 0; } /* spawned by this walk */
    walk_seen[k]++;
    if (k == 0) /* spawn 2000: two new pages */
        for (j = 0; j < 2000; j++) CHECK_INT(task_spawn(s, quick, NULL, NULL, NULL), TASK_OK);
    if (k == 10) CHECK_INT(task_drop(s, walk_ids[11]), TASK_OK);       /* not visited */
    if (k == 12) CHECK_INT(task_drop(s, walk_ids[12]), TASK_OK);       /* itself */
    if (k == 13) CHECK_INT(task_release(s, walk_ids[5]), TASK_OK);     /* already visited */
    if (k == 14) CHECK_INT(task_abort(s, walk_ids[15]), TASK_OK);
    if (k == 16) CHECK_INT(task_cancel(s, walk_ids[17]), TASK_OK);
    if (k == 18) CHECK_INT(task_drop(s, walk_ids[1000]), TASK_OK);     /* far ahead */
    return 0;
}

TEST_CASE(foreach_callback_changes_tasks) {
    static bot w[1100];
    int k, extra, seen_once = 1;
    begin();
    walk_n = 1100;
    memset(walk_seen, 0, sizeof walk_seen);
    for (k = 0; k < walk_n; k++) {
        memset(&w[k], 0, sizeof w[k]);
        w[k].name = "w";
        w[k].s[0].op = A_WAIT;
        walk_ids[k] = spawn(&w[k]);
    }
    CHECK_INT(task_tick(S, 0), walk_n);
    CHECK_INT(task_foreach(S, mutating_walk, NULL), 0);
    for (k = 0; k < walk_n; k++)
        if (k != 11 && k != 1000 && walk_seen[k] != 1) { seen_once = 0; TEST__FAIL("task %d seen %d times", k, walk_seen[k]); }
    CHECK(seen_once);
    CHECK_INT(walk_seen[11], 0);
    CHECK_INT(walk_seen[1000], 0);
    extra = walk_seen[2999];
    CHECK_INT(extra, 0); /* may or may not be visited; here all took new slots, past the walk's end */
    CHECK_INT(task_status(S, walk_ids[12]), TASK_ENOENT);
    CHECK_INT(task_status(S, walk_ids[15]), TASK_READY);
    CHECK_INT(task_status(S, walk_ids[17]), TASK_READY);
    CHECK_INT(task_count(S, -1), walk_n - 3 + 2000);
    log_take();
    CHECK_INT(task_tick(S, 0), 2 + 2000);
    CHECK_STR(log_take(), "wA wC");
    CHECK_INT(ended(S, walk_ids[15]), TASK_EXIT_ABORT);
    k = 0;
    CHECK_INT(task_foreach(S, walk_count, &k), 0);
    CHECK_INT(k, walk_n - 3 + 2000); /* all still held: none was detached */
    finish();
}

/* A create hook that ends the new task at once, or releases it. */
static int hook_mode;
static void create_drops(task_sched *s, task_id t, void *ud) {
    (void)ud;
    if (hook_mode == 1) CHECK_INT(task_drop(s, t), TASK_OK);
    if (hook_mode == 2) CHECK_INT(task_release(s, t), TASK_OK);
    if (hook_mode == 3) CHECK_INT(task_abort(s, t), TASK_OK);
    logp("h%d ", hook_mode);
}

/* A term hook that releases or drops the ended task, or spawns. */
static bot term_spawned = {"n"};
static void term_mutates(task_sched *s, task_id t, void *ud) {
    (void)ud;
    logp("e%d ", hook_mode);
    if (hook_mode == 1) CHECK_INT(task_drop(s, t), TASK_OK);
    if (hook_mode == 2) CHECK_INT(task_release(s, t), TASK_OK);
    if (hook_mode == 3) { hook_mode = 0; CHECK_INT(task_spawn(s, bot_step, &term_spawned, NULL, &T[7]), TASK_OK); }
    if (hook_mode == 1 || hook_mode == 2) CHECK_INT(task_status(s, t), TASK_ENOENT);
}

static int spawn_m1_in_scope(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    hook_mode = 1;
    CHECK_INT(task_spawn(c->sched, bot_step, &m1, NULL, &T[5]), TASK_OK);
    hook_mode = 0;
    CHECK_INT(task_status(c->sched, T[5]), TASK_ENOENT);
    CHECK_INT(task_scope_count(c->sched, SC[0]), 0);
    return -1;
}

TEST_CASE(hooks_change_their_task) {
    bot a = {"a"}, b = {"b"}, c = {"c"}, o = {"o", {{A_CLOSE, 0}}}, d = {"d"}, e = {"e"}, f = {"f"};
    task_hooks h = {create_drops, NULL, NULL}, g = {NULL, term_mutates, NULL};
    begin();
    task_set_hooks(S, h);
    hook_mode = 1;
    T[0] = spawn(&a);
    CHECK_INT(task_status(S, T[0]), TASK_ENOENT);
    CHECK_INT(task_count(S, -1), 0);
    CHECK_INT(task_ready_count(S), 0);
    hook_mode = 2;
    T[1] = spawn(&b);
    CHECK_INT(task_status(S, T[1]), TASK_READY);
    hook_mode = 3;
    T[2] = spawn(&c);
    hook_mode = 0;
    bot_reset(&m1, "m", A_DONE, 0);
    o.hook = spawn_m1_in_scope;
    T[3] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "h1 h2 h3 h0 bS cA oS h1 oW");
    CHECK_INT(task_status(S, T[1]), TASK_ENOENT); /* released: freed at its end */
    CHECK_INT(ended(S, T[2]), TASK_EXIT_ABORT);
    CHECK_INT(task_count(S, -1), 0);
    /* term hooks */
    task_set_hooks(S, g);
    T[4] = spawn(&d);
    T[5] = spawn(&e);
    T[6] = spawn(&f);
    task_set_tick_limit(S, 1);
    hook_mode = 1;
    CHECK_INT(task_tick(S, 0), 1);
    hook_mode = 2;
    CHECK_INT(task_tick(S, 0), 1);
    task_set_tick_limit(S, 0);
    hook_mode = 3;
    CHECK_INT(task_tick(S, 0), 2); /* the task the hook spawned runs in this tick */
    CHECK_STR(log_take(), "dS e1 eS e2 fS e3 nS e0");
    CHECK_INT(task_status(S, T[4]), TASK_ENOENT);
    CHECK_INT(task_status(S, T[5]), TASK_ENOENT);
    CHECK_INT(task_status(S, T[6]), TASK_EXIT);
    CHECK_INT(task_status(S, T[7]), TASK_EXIT);
    finish();
}

/* Timer callbacks that cancel themselves, cancel timers collected in the
   same tick or armed ones, and spawn. */
static void tm_mutates(task_sched *s, task_id timer, void *ud) {
    int k = IV(ud);
    logp("t%d ", k);
    CHECK_INT(task_timer_cancel(s, timer), TASK_ENOENT);
    CHECK_CONTAINS(task_errmsg(s), "task_timer_cancel");
    if (k == 1) {
        CHECK_INT(task_timer_cancel(s, TM[2]), TASK_OK);  /* collected, not run yet */
        CHECK_INT(task_timer_cancel(s, TM[3]), TASK_OK);  /* collected too */
        CHECK_INT(task_timer_cancel(s, TM[5]), TASK_OK);  /* armed, later */
        CHECK_INT(task_timer_cancel(s, TM[2]), TASK_ENOENT);
        /* the slots of the cancelled timers are not reused while listed */
        CHECK_INT(task_after(s, 0, tm_mutates, V(6), &TM[6]), TASK_OK);
        CHECK(TM[6] != TM[2] && TM[6] != TM[3]);
        CHECK_INT(task_spawn(s, bot_step, &m1, NULL, &T[0]), TASK_OK);
    }
}

TEST_CASE(timer_callbacks_change_timers) {
    int i;
    begin();
    bot_reset(&m1, "m", A_DONE, 0);
    CHECK_INT(task_after(S, 1, tm_mutates, V(1), &TM[1]), TASK_OK);
    CHECK_INT(task_after(S, 1, tm_mutates, V(2), &TM[2]), TASK_OK);
    CHECK_INT(task_after(S, 2, tm_mutates, V(3), &TM[3]), TASK_OK);
    CHECK_INT(task_after(S, 2, tm_mutates, V(4), &TM[4]), TASK_OK);
    CHECK_INT(task_after(S, 9, tm_mutates, V(5), &TM[5]), TASK_OK);
    CHECK_INT(task_tick(S, 5), 1); /* the spawned task runs in this tick */
    CHECK_STR(log_take(), "t1 t4 mS");
    CHECK_U64(task_next_deadline(S), 5);
    CHECK_INT(task_tick(S, 20), 0);
    CHECK_STR(log_take(), "t6");
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    /* the pool is sound after that */
    for (i = 0; i < 20; i++) CHECK_INT(task_after(S, 1, timer_cb, V(i % 2), NULL), TASK_OK);
    CHECK_INT(task_tick(S, 21), 0);
    CHECK_INT(strlen(log_take()), 20 * 3 - 1);
    finish();
}

#ifdef TASK_THREADS
static void wake_ticks(void *ud) {
    task_sched *s = (task_sched *)ud;
    CHECK_INT(task_tick(s, 99), TASK_EBUSY);
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    logp("wake ");
}

static int post_hook(task_ctx *c, bot *b) {
    (void)b;
    CHECK_INT(task_post_resume(c->sched, E[0], V(3)), TASK_OK);
    return -1;
}

TEST_CASE(wake_callback_inside_a_task) {
    bot a = {"a"}, w = {"w", {{A_EXT, 0}}};
    begin();
    CHECK_INT(task_post_enable(S, 4, wake_ticks, S), TASK_OK);
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    T[1] = spawn(&w);
    a.hook = post_hook;
    T[0] = spawn(&a);
    CHECK_INT(task_tick(S, 1), 2);
    CHECK_INT(task_tick(S, 2), 1);
    CHECK_STR(log_take(), "wS aS wake wW=3");
    finish();
}
#endif

/* ---- abort reaches every descendant ------------------------------------- */

static int tree_owner_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(c->sched, &SC[b->x]), TASK_OK);
    CHECK_INT(task_spawn(c->sched, bot_step, b->x == 0 ? &m1 : &m2, NULL, &T[b->x + 1]), TASK_OK);
    return -1;
}

TEST_CASE(abort_reaches_descendants) {
    bot o = {"o", {{A_WAIT}}}, j = {"j", {{A_JOIN, 0}}}, k = {"k", {{A_JOIN, 2}}};
    int pass;
    for (pass = 0; pass < 3; pass++) {
        begin();
        bot_reset(&m1, "m", A_CLOSE, 1);
        m1.hook = tree_owner_hook;
        m1.x = 1;
        bot_reset(&m2, "g", A_WAIT, 0);
        o.n = o.steps = 0;
        j.n = j.steps = 0;
        k.n = k.steps = 0;
        o.hook = tree_owner_hook;
        o.x = 0;
        T[0] = spawn(&o);
        CHECK_INT(task_tick(S, 0), 3);
        CHECK_STR(log_take(), "oS mS gS");
        T[3] = spawn(&j);
        T[4] = spawn(&k);
        CHECK_INT(task_tick(S, 0), 2);
        log_take();
        CHECK(scope_owner(S, SC[0]) == T[0]);
        CHECK(scope_owner(S, SC[1]) == T[1]);
        CHECK(scope_of(S, T[1]) == SC[0]);
        CHECK(scope_of(S, T[2]) == SC[1]);
        if (pass == 0) {
            CHECK_INT(task_abort(S, T[0]), TASK_OK);
            CHECK_INT(task_tick(S, 0), 5);
            CHECK_STR(log_take(), "oA mA jW gA kW");
            CHECK_INT(ended(S, T[0]), TASK_EXIT_ABORT);
        } else if (pass == 1) { /* dropped: no step of its own, its members are still aborted */
            CHECK_INT(task_drop(S, T[0]), TASK_OK);
            CHECK(scope_owner(S, SC[0]) == 0);
            CHECK_INT(task_scope_count(S, SC[0]), 1);
            CHECK_INT(task_status(S, T[1]), TASK_READY);
            CHECK_INT(task_tick(S, 0), 4);
            CHECK_STR(log_take(), "mA jW gA kW");
        } else { /* the scope aborted: the owner lives on, the member's own scope follows it */
            CHECK_INT(task_scope_abort(S, SC[0]), TASK_OK);
            CHECK_INT(task_tick(S, 0), 3);
            CHECK_STR(log_take(), "mA gA kW");
            CHECK_INT(task_status(S, T[0]), TASK_WAIT);
            CHECK_INT(task_scope_count(S, SC[0]), 0);
            CHECK(scope_owner(S, SC[0]) == T[0]);
            CHECK_INT(task_wakeup(S, T[0], NULL), TASK_OK);
            CHECK_INT(task_tick(S, 0), 2);
            CHECK_STR(log_take(), "oW jW");
            CHECK_INT(ended(S, T[0]), TASK_EXIT_DONE);
        }
        CHECK_INT(ended(S, T[1]), TASK_EXIT_ABORT);
        CHECK_INT(ended(S, T[2]), TASK_EXIT_ABORT);
        CHECK_INT(ended(S, T[3]), TASK_EXIT_DONE);
        CHECK_INT(ended(S, T[4]), TASK_EXIT_DONE);
        CHECK_INT(task_count(S, -1), 0);
        CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT);
        CHECK_INT(task_scope_count(S, SC[1]), TASK_ENOENT);
        CHECK(scope_owner(S, SC[0]) == 0);
        finish();
    }
}

static int fail_tree_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
    CHECK_INT(task_spawn(c->sched, bot_step, &m1, NULL, &T[1]), TASK_OK);
    return TASK_STEP_FAIL;
}

TEST_CASE(abort_only_on_abort) {
    /* an owner that ends by failing leaves its scope ownerless: the
       members go on (that is not an abort) */
    bot o = {"o"};
    begin();
    bot_reset(&m1, "m", A_WAIT, 0);
    o.hook = fail_tree_hook;
    T[0] = spawn(&o);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_INT(ended(S, T[0]), TASK_EXIT_FAIL);
    CHECK(scope_owner(S, SC[0]) == 0);
    CHECK_INT(task_scope_count(S, SC[0]), 1);
    CHECK_INT(task_status(S, T[1]), TASK_WAIT);
    CHECK_STR(log_take(), "oS mS");
    /* errors of task_scope_owner */
    CHECK(scope_owner(S, 0) == 0);
    CHECK(scope_owner(S, T[1]) == 0);
    finish();
}

/* The deep chain: each level opens a scope, spawns the next level into
   it and waits. */
#ifdef test_alloc_fn /* the allocation sweep runs every case once per allocation */
#define DEEP 3000
#else
#define DEEP 100000
#endif
static int deep_aborts, deep_ends;

static int deep_step(task_ctx *c) {
    uintptr_t level = (uintptr_t)c->ud;
    task_opts o;
    if (c->why == TASK_WHY_ABORT) { deep_aborts++; return TASK_STEP_DONE; }
    if (c->why != TASK_WHY_START) return TASK_STEP_DONE;
    if (level + 1 < DEEP) {
        task_id sc;
        if (task_scope_open(c->sched, &sc) != TASK_OK) return TASK_STEP_FAIL;
        memset(&o, 0, sizeof o);
        o.flags = TASK_DETACHED;
        if (task_spawn(c->sched, deep_step, (void *)(level + 1), &o, NULL) != TASK_OK) return TASK_STEP_FAIL;
    }
    CHECK_INT(task_wait(c->sched), TASK_OK);
    return TASK_STEP_SUSPEND;
}

static void deep_term(task_sched *s, task_id t, void *ud) {
    (void)ud;
    if (ended(s, t) == TASK_EXIT_ABORT) deep_ends++;
}

TEST_CASE(abort_deep_chain) {
    task_hooks h = {NULL, deep_term, NULL};
    int k;
    begin();
    task_set_hooks(S, h);
    deep_aborts = deep_ends = 0;
    CHECK_INT(task_spawn(S, deep_step, (void *)0, NULL, &T[0]), TASK_OK);
    for (k = 0; k < 1000 && task_count(S, TASK_READY) > 0; k++) task_tick(S, 0);
    CHECK_INT(task_count(S, TASK_WAIT), DEEP);
    CHECK_INT(task_abort(S, T[0]), TASK_OK);
    for (k = 0; k < 1000 && task_count(S, -1) > 0; k++) task_tick(S, 0);
    CHECK_INT(task_count(S, -1), 0);
    CHECK_INT(deep_aborts, DEEP);
    CHECK_INT(deep_ends, DEEP);
    CHECK_INT(ended(S, T[0]), TASK_EXIT_ABORT);
    CHECK_INT(task_count(S, TASK_EXIT), 1); /* the root; the rest were detached */
    /* and a deep chain left alive: task_destroy takes it down */
    CHECK_INT(task_spawn(S, deep_step, (void *)0, NULL, &T[1]), TASK_OK);
    for (k = 0; k < 1000 && task_count(S, TASK_READY) > 0; k++) task_tick(S, 0);
    CHECK_INT(task_count(S, TASK_WAIT), DEEP);
    deep_aborts = 0;
    finish();
    CHECK_INT(deep_aborts, DEEP);
}

static int many_step(task_ctx *c) {
    int *n = (int *)c->ud;
    if (c->why == TASK_WHY_ABORT) { n[1]++; return TASK_STEP_DONE; }
    n[0]++;
    if (task_wait(c->sched) != TASK_OK) return TASK_STEP_FAIL;
    return TASK_STEP_SUSPEND;
}

static int scope_abort_self_hook(task_ctx *c, bot *b) {
    (void)b;
    if (c->why == TASK_WHY_WAKE) {
        CHECK_INT(task_scope_abort(c->sched, SC[1]), TASK_OK);
        CHECK_INT(task_status(c->sched, c->self), TASK_RUN);
    }
    return -1;
}

TEST_CASE(scope_abort_many_members) {
    static int cnt[2], other[2];
    static task_id ids[5000];
    task_opts in, out;
    bot p = {"p"}, q = {"q"}, s1 = {"s", {{A_WAIT}}};
    int k;
    begin();
    memset(cnt, 0, sizeof cnt);
    memset(other, 0, sizeof other);
    /* an ownerless scope (its owner ended) that the host fills */
    p.hook = open_and_leave_hook;
    bot_reset(&m1, "m", A_WAIT, 0);
    T[0] = spawn(&p);
    CHECK_INT(task_tick(S, 0), 2);
    memset(&in, 0, sizeof in);
    in.scope = SC[0];
    memset(&out, 0, sizeof out);
    for (k = 0; k < 5000; k++) {
        CHECK_INT(task_spawn(S, many_step, cnt, &in, &ids[k]), TASK_OK);
        CHECK_INT(task_spawn(S, many_step, other, &out, NULL), TASK_OK);
    }
    CHECK_INT(task_tick(S, 0), 10000);
    CHECK_INT(task_scope_count(S, SC[0]), 5001);
    /* one member left the scope, one is dropped, one is aborted already:
       exactly the others are aborted, each once */
    CHECK_INT(task_scope_leave(S, T[1]), TASK_OK);
    CHECK_INT(task_drop(S, ids[0]), TASK_OK);
    CHECK_INT(task_abort(S, ids[1]), TASK_OK);
    CHECK_INT(task_scope_count(S, SC[0]), 4999);
    CHECK_INT(task_ready_count(S), 1);
    CHECK_INT(task_scope_abort(S, SC[0]), TASK_OK);
    CHECK_INT(task_ready_count(S), 4999);
    CHECK_INT(task_status(S, T[1]), TASK_WAIT);
    CHECK_INT(task_scope_abort(S, SC[0]), TASK_OK); /* again: nothing more */
    CHECK_INT(task_ready_count(S), 4999);
    task_set_wake_limit(S, 0); /* they are all in the batch */
    CHECK_INT(task_tick(S, 0), 4999);
    CHECK_INT(cnt[0], 5000);
    CHECK_INT(cnt[1], 4999);
    CHECK_INT(other[1], 0);
    CHECK_INT(task_count(S, TASK_WAIT), 5001);
    CHECK_INT(task_scope_count(S, SC[0]), TASK_ENOENT); /* ownerless: freed with the last */
    /* from inside a member: it aborts itself too */
    task_set_wake_limit(S, TASK_WAKE_LIMIT);
    bot_reset(&m1, "x", A_SLEEP, 100);
    q.hook = open_and_leave_hook;
    T[2] = spawn(&q);
    CHECK_INT(task_tick(S, 0), 2);
    SC[1] = SC[0];
    in.scope = SC[1];
    s1.hook = scope_abort_self_hook;
    T[3] = spawn_opts(&s1, &in);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_wakeup(S, T[3], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "pS mS qS xS sS sW sA xA");
    CHECK_U64(task_next_deadline(S), TASK_FOREVER);
    CHECK_INT(ended(S, T[3]), TASK_EXIT_ABORT);
    CHECK_INT(task_scope_count(S, SC[1]), TASK_ENOENT);
    finish();
}

/* ---- external ids: who waits --------------------------------------------- */

TEST_CASE(ext_waiter_follows_the_wait) {
    bot a = {"a", {{A_EXT, 0}}}, b = {"b", {{A_EXT, 1}}};
    task_id fake;
    begin();
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    CHECK_INT(task_ext_alloc(S, &E[1]), TASK_OK);
    CHECK(ext_waiter(S, E[0]) == 0);
    T[0] = spawn(&a);
    T[1] = spawn(&b);
    CHECK(ext_waiter(S, E[0]) == 0); /* spawned, not waiting yet */
    CHECK_INT(task_tick(S, 0), 2);
    CHECK(ext_waiter(S, E[0]) == T[0]);
    CHECK(ext_waiter(S, E[1]) == T[1]);
    CHECK_INT(task_ext_resume(S, E[0], V(5)), TASK_OK);
    CHECK(ext_waiter(S, E[0]) == 0);  /* resumed: the id is gone */
    CHECK_INT(task_cancel(S, T[1]), TASK_OK);    /* the waiter gives up */
    CHECK(ext_waiter(S, E[1]) == 0);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "aS bS aW=5 bC");
    /* resolved before anyone waits */
    CHECK_INT(task_ext_alloc(S, &E[2]), TASK_OK);
    CHECK_INT(task_ext_resume(S, E[2], V(1)), TASK_OK);
    CHECK(ext_waiter(S, E[2]) == 0);
    /* unknown, stale, foreign */
    CHECK(ext_waiter(S, 0) == 0);
    CHECK(ext_waiter(S, T[0]) == 0);
    fake = E[2] + ((uint64_t)1 << 32);
    CHECK(ext_waiter(S, fake) == 0);
    /* the waiter aborted */
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    a.n = 0;
    T[2] = spawn(&a);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK(ext_waiter(S, E[0]) == T[2]);
    CHECK_INT(task_abort(S, T[2]), TASK_OK);
    CHECK(ext_waiter(S, E[0]) == 0);
    CHECK_INT(task_tick(S, 0), 1);
    log_take();
    finish();
}

/* ---- the timer heap: removal where the last entry must move up ---------- */

static const uint64_t HEAP_DL[10] = {1, 50, 10, 100, 100, 60, 61, 62, 63, 11};

struct hs { int pc; uint64_t dl; int timer; };
static int heap_step(task_ctx *c) {
    struct hs *h = (struct hs *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    if (c->why == TASK_WHY_START) {
        if (h->timer) {
            CHECK_INT(task_after(c->sched, h->dl, timer_cb, V(h->dl), &TM[h->timer - 1]), TASK_OK);
            return TASK_STEP_DONE;
        }
        CHECK_INT(task_sleep(c->sched, h->dl), TASK_OK);
        return TASK_STEP_SUSPEND;
    }
    logp("s%d%c ", (int)h->dl, c->why == TASK_WHY_TIMER ? 'T' : c->why == TASK_WHY_CANCEL ? 'C' : '?');
    return TASK_STEP_DONE;
}

TEST_CASE(heap_remove_moves_last_up) {
    static struct hs hs[10];
    int k;
    /* plain timers, set in this order: a 4-ary heap [1 50 10 100 100 60 61
       62 63 11]; removing 60 (under 50) must move 11 up past 50 */
    begin();
    for (k = 0; k < 10; k++) CHECK_INT(task_after(S, HEAP_DL[k], timer_cb, V(HEAP_DL[k]), &T[k]), TASK_OK);
    CHECK_INT(task_timer_cancel(S, T[5]), TASK_OK);
    CHECK_INT(task_tick(S, 11), 0);
    CHECK_STR(log_take(), "t1 t10 t11");
    CHECK_U64(task_next_deadline(S), 50);
    CHECK_INT(task_tick(S, 1000), 0);
    CHECK_STR(log_take(), "t50 t61 t62 t63 t100 t100");
    finish();
    /* the same heap of sleeping tasks and timers; 60 is a sleeping task,
       removed by its cancellation */
    begin();
    for (k = 0; k < 10; k++) {
        hs[k].pc = 0;
        hs[k].dl = HEAP_DL[k];
        hs[k].timer = (k == 0 || k == 2 || k == 4 || k == 6) ? k + 1 : 0;
        CHECK_INT(task_spawn(S, heap_step, &hs[k], NULL, &T[k]), TASK_OK);
    }
    CHECK_INT(task_tick(S, 0), 10);
    CHECK_INT(task_cancel(S, T[5]), TASK_OK);
    CHECK_INT(task_tick(S, 11), 2);
    CHECK_STR(log_take(), "t1 t10 s60C s11T");
    CHECK_U64(task_next_deadline(S), 50);
    CHECK_INT(task_tick(S, 1000), 4);
    CHECK_STR(log_take(), "t61 t100 s50T s62T s63T s100T");
    finish();
}

/* ---- failed calls: an id out-parameter is always written ---------------- */

static int scope_out_hook(task_ctx *c, bot *b) {
    task_id x = 77;
    (void)b;
    CHECK_INT(task_abort(c->sched, c->self), TASK_OK);
    CHECK_INT(task_scope_open(c->sched, &x), TASK_OK); /* allowed while aborting */
    CHECK(x != 0);
    return -1;
}

TEST_CASE(failed_calls_zero_their_out_id) {
    task_id id;
    bot a = {"a"};
    begin();
    id = 77;
    CHECK_INT(task_spawn(S, NULL, NULL, NULL, &id), TASK_EINVAL);
    CHECK(id == 0);
    id = 77;
    CHECK_INT(task_after(S, 1, NULL, NULL, &id), TASK_EINVAL);
    CHECK(id == 0);
    id = 77;
    CHECK_INT(task_token_new(S, T[0] | 1, &id), TASK_ENOENT);
    CHECK(id == 0);
    id = 77;
    CHECK_INT(task_scope_open(S, &id), TASK_EPERM);
    CHECK(id == 0);
    id = 77;
    fail_next();
    CHECK_INT(task_ext_alloc(S, &id), TASK_ENOMEM);
    CHECK(id == 0);
    A.fail_at = 0;
    a.hook = scope_out_hook;
    T[0] = spawn(&a);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "aS aA");
    CHECK_INT(ended(S, T[0]), TASK_EXIT_ABORT);
    finish();
}

/* A cancel scope: cancelling it (or its owner) cancels the owner, not the
   plain scope the owner's spawns join; it closes at once, never parking. */
static int cs_child(task_ctx *c) {
    if (c->why == TASK_WHY_START) { CHECK_INT(task_sleep(c->sched, TASK_SEC), TASK_OK); return TASK_STEP_SUSPEND; }
    logp("%s ", c->why == TASK_WHY_CANCEL ? "childC" : "childT");
    return TASK_STEP_DONE;
}

static int cs_owner(task_ctx *c) {
    task_id child = 0;
    switch (c->why) {
    case TASK_WHY_START:
        CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
        CHECK_INT(task_cancel_scope_open(c->sched, &SC[1]), TASK_OK);
        CHECK(task_scope_current(c->sched) == SC[0]); /* spawns join the plain scope */
        CHECK(token_of(c->sched, c->self) == scope_token(c->sched, SC[1]));
        CHECK_INT(task_spawn(c->sched, cs_child, NULL, NULL, &child), TASK_OK);
        T[1] = child;
        CHECK(scope_of(c->sched, child) == SC[0]);
        CHECK(token_of(c->sched, child) == scope_token(c->sched, SC[0]));
        CHECK_INT(task_scope_count(c->sched, SC[1]), 0);
        CHECK_INT(task_scope_close(c->sched, SC[1]), TASK_ESTATE);
        CHECK_INT(task_cancel_scope_close(c->sched, SC[0]), TASK_ESTATE);
        CHECK_INT(task_scope_close(c->sched, SC[0]), TASK_ESTATE); /* the cancel scope is inside */
        { task_opts o; memset(&o, 0, sizeof o); o.scope = SC[1];
          CHECK_INT(task_spawn(c->sched, cs_child, NULL, &o, NULL), TASK_EINVAL); }
        CHECK_INT(task_sleep(c->sched, TASK_SEC), TASK_OK);
        return TASK_STEP_SUSPEND;
    case TASK_WHY_CANCEL: /* the cancel scope was cancelled: the child was not */
        logp("ownerC ");
        CHECK_INT(task_cancelled(c->sched, T[1]), 0);
        CHECK_INT(task_sleep(c->sched, 1), TASK_ECANCELED);
        CHECK_INT(task_cancel_scope_close(c->sched, SC[1]), TASK_OK);
        CHECK_INT(task_scope_count(c->sched, SC[1]), TASK_ENOENT);
        CHECK(token_of(c->sched, c->self) == scope_token(c->sched, SC[0]));
        CHECK_INT(task_cancelled(c->sched, c->self), 0); /* its token is back */
        CHECK_INT(task_scope_cancel(c->sched, SC[0]), TASK_OK);
        CHECK_INT(task_scope_close(c->sched, SC[0]), TASK_OK);
        return TASK_STEP_SUSPEND;
    default:
        logp("ownerW ");
        return TASK_STEP_DONE;
    }
}

TEST_CASE(cancel_scope) {
    begin();
    CHECK_INT(task_spawn(S, cs_owner, NULL, NULL, &T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2); /* the owner parks, the child sleeps */
    CHECK_INT(task_cancel_scope_close(S, SC[1]), TASK_EPERM); /* the host is not the owner */
    CHECK_INT(task_scope_cancel(S, SC[1]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "ownerC childC ownerW");
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    /* an owner that ends with a cancel scope open: it is freed with it */
    finish();
}

/* ---- observing tasks: task_info_of, statistics, switch and ready hooks -- */

static int info_is_zero(const task_info *i) {
    return i->state == 0 && i->waits == 0 && i->target == 0 && i->code == 0 && i->deadline == 0 && i->scope == 0 &&
           i->token == 0 && i->trace == 0 && i->stats == 0 && i->resumes == 0 && i->busy == 0 && i->longest == 0 &&
           i->spawned == 0 && i->last_resume == 0;
}

/* task_info_of, and the result convention when it fails. */
static task_info info_of(task_sched *s, task_id t) {
    task_info i;
    memset(&i, 0x5A, sizeof i);
    if (task_info_of(s, t, &i) != TASK_OK) {
        CHECK(info_is_zero(&i));
        CHECK_CONTAINS(task_errmsg(s), "task_info_of: unknown, released or stale task id");
    }
    return i;
}

/* The state, what it waits on, and the target or code or deadline. */
#define CHECK_WAITS(t, st, w, tgt, cd, dl) do { task_info ci__ = info_of(S, (t)); \
    CHECK_INT(ci__.state, (st)); CHECK_STR(task_waits_name(ci__.waits), task_waits_name(w)); \
    CHECK_U64(ci__.target, (tgt)); CHECK_INT(ci__.code, (cd)); CHECK_U64(ci__.deadline, (dl)); } while (0)

/* A running task sees what it has arranged in this step. */
static int info_self_hook(task_ctx *c, bot *b) {
    if (b->steps != 1) return -1;
    CHECK_WAITS(c->self, TASK_RUN, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_INT(task_sleep(c->sched, 3 * TASK_MSEC), TASK_OK);
    CHECK_WAITS(c->self, TASK_RUN, TASK_WAITS_SLEEP, 0, 0, task_now(c->sched) + 3 * TASK_MSEC);
    return TASK_STEP_SUSPEND;
}

TEST_CASE(info_wait_kinds) {
    bot o, w = {"w", {{A_WAIT}}}, p = {"p", {{A_PARK_AS, 7}, {A_PARK}, {A_WAIT}}}, sl = {"s", {{A_SLEEP, 5 * TASK_MSEC}}},
        j = {"j", {{A_JOIN, 3}}}, e = {"e", {{A_EXT, 0}}}, r = {"r"}, k = {"k", {{A_JOIN, 3}}};
    act wt = {A_WAIT, 0};
    task_info i;
    const char *names[] = {"none", "wakeup", "park", "sleep", "join", "ext", "scope"};
    int n;
    begin();
    for (n = 0; n <= TASK_WAITS_SCOPE; n++) CHECK_STR(task_waits_name(n), names[n]);
    CHECK_STR(task_waits_name(-1), "?");
    CHECK_STR(task_waits_name(TASK_WAITS_SCOPE + 1), "?");
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    task_trace_set(S, 0x1234);
    scope_setup(&o, "m", wt, "n", wt);
    T[0] = spawn(&o); /* T[1], T[2]: its members */
    T[3] = spawn(&w);
    T[4] = spawn(&p);
    T[5] = spawn(&sl);
    T[6] = spawn(&j);
    T[7] = spawn(&e);
    r.hook = info_self_hook;
    T[8] = spawn(&r);
    T[9] = spawn(&k);
    i = info_of(S, T[3]);
    CHECK_INT(i.state, TASK_READY);
    CHECK_INT(i.waits, TASK_WAITS_NONE);
    CHECK_U64(i.trace, 0x1234);
    CHECK_INT(i.stats, 0);
    CHECK_INT(task_tick(S, 0), 10);
    CHECK_STR(log_take(), "oS wS pS sS jS eS rS kS mS nS");
    /* every kind while parked */
    CHECK_WAITS(T[0], TASK_WAIT, TASK_WAITS_SCOPE, SC[0], 0, 0);
    CHECK_WAITS(T[1], TASK_WAIT, TASK_WAITS_WAKEUP, 0, 0, 0);
    CHECK_WAITS(T[3], TASK_WAIT, TASK_WAITS_WAKEUP, 0, 0, 0);
    CHECK_WAITS(T[4], TASK_WAIT, TASK_WAITS_PARK, 0, 7, 0);
    CHECK_WAITS(T[5], TASK_SLEEP, TASK_WAITS_SLEEP, 0, 0, 5 * TASK_MSEC);
    CHECK_WAITS(T[6], TASK_WAIT, TASK_WAITS_JOIN, T[3], 0, 0);
    CHECK_WAITS(T[7], TASK_WAIT, TASK_WAITS_EXT, E[0], 0, 0);
    CHECK_WAITS(T[8], TASK_SLEEP, TASK_WAITS_SLEEP, 0, 0, 3 * TASK_MSEC);
    /* the rest of the record */
    i = info_of(S, T[1]);
    CHECK_U64(i.scope, SC[0]);
    CHECK_U64(i.token, scope_token(S, SC[0]));
    CHECK_U64(i.trace, 0x1234);
    i = info_of(S, T[0]);
    CHECK_U64(i.scope, 0);
    CHECK_U64(i.token, scope_token(S, SC[0])); /* its effective token: the open scope's */
    CHECK_INT(task_info_of(S, T[3], NULL), TASK_OK);
    /* cleared as each wait ends: woken, unparked, resumed, cancelled, aborted */
    CHECK_INT(task_wakeup(S, T[3], NULL), TASK_OK);
    CHECK_WAITS(T[3], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_WAITS(T[6], TASK_WAIT, TASK_WAITS_JOIN, T[3], 0, 0);
    CHECK_INT(task_unpark(S, T[4], NULL), TASK_OK);
    CHECK_WAITS(T[4], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_INT(task_ext_resume(S, E[0], V(2)), TASK_OK);
    CHECK_WAITS(T[7], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_INT(task_abort(S, T[5]), TASK_OK);
    CHECK_WAITS(T[5], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_U64(task_next_deadline(S), 3 * TASK_MSEC); /* only r's sleep is left */
    CHECK_INT(task_abort(S, T[9]), TASK_OK);       /* a joiner: it leaves w's list */
    CHECK_WAITS(T[9], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_INT(task_tick(S, 0), 6); /* w ends and wakes j in the same tick */
    CHECK_STR(log_take(), "wW pW eW=2 sA kA jW");
    CHECK_WAITS(T[3], TASK_EXIT, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_WAITS(T[6], TASK_EXIT, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_WAITS(T[5], TASK_EXIT, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_WAITS(T[4], TASK_WAIT, TASK_WAITS_PARK, 0, 0, 0); /* task_park: code 0 */
    CHECK_INT(task_cancel(S, T[4]), TASK_OK);
    CHECK_WAITS(T[4], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "pC p!-5");
    CHECK_WAITS(T[4], TASK_EXIT, TASK_WAITS_NONE, 0, 0, 0);
    /* a cancel does not interrupt a scope's close; an abort does */
    CHECK_INT(task_cancel(S, T[0]), TASK_OK);
    CHECK_WAITS(T[0], TASK_WAIT, TASK_WAITS_SCOPE, SC[0], 0, 0);
    CHECK_WAITS(T[1], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    m1.s[1].op = A_WAIT; /* m waits again (refused: cancelled) */
    CHECK_INT(task_abort(S, T[0]), TASK_OK);
    CHECK_WAITS(T[0], TASK_READY, TASK_WAITS_NONE, 0, 0, 0);
    CHECK_INT(task_tick(S, 0), 3);
    CHECK_STR(log_take(), "mC m!-5 nC oA");
    /* unknown ids */
    i = info_of(S, 0);
    i = info_of(S, E[0]);
    i = info_of(S, SC[0]);
    CHECK_INT(task_info_of(S, 0, NULL), TASK_ENOENT);
    CHECK_INT(task_release(S, T[3]), TASK_OK);
    CHECK_INT(task_info_of(S, T[3], &i), TASK_ENOENT);
    CHECK(info_is_zero(&i));
    finish();
}

TEST_CASE(park_as) {
    bot p = {"p", {{A_PARK_AS, 0xFFFFFFFFu}, {A_PARK_AS, 1}}}, q = {"q", {{A_PARK_AS, 2}}};
    begin();
    CHECK_INT(task_park_as(S, 3), TASK_EPERM);
    CHECK_CONTAINS(task_errmsg(S), "task_park_as: no task is running");
    T[0] = spawn(&p);
    T[1] = spawn(&q);
    CHECK_INT(task_cancel(S, T[1]), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "pS qS q!-5");
    CHECK_WAITS(T[0], TASK_WAIT, TASK_WAITS_PARK, 0, 0xFFFFFFFFu, 0);
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_ESTATE); /* a park is no plain wait */
    CHECK_INT(task_unpark(S, T[0], V(4)), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_WAITS(T[0], TASK_WAIT, TASK_WAITS_PARK, 0, 1, 0);
    CHECK_INT(task_unpark(S, T[0], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "pW=4 pW");
    finish();
}

/* ---- statistics ----------------------------------------------------------- */

static uint64_t vclock;
static int clock_calls;
static uint64_t read_vclock(void *ud) {
    CHECK(ud == (void *)&vclock);
    clock_calls++;
    return vclock;
}

/* A step that "runs" for d[k] time units at its k-th resume (it moves the
   virtual clock), yields until the last one, then ends. */
typedef struct timed { uint64_t d[4]; int n, k, aborted; } timed;
static int timed_step(task_ctx *c) {
    timed *t = (timed *)c->ud;
    if (c->why == TASK_WHY_ABORT) { t->aborted++; return TASK_STEP_DONE; }
    vclock += t->d[t->k++];
    CHECK_INT(task_tick(c->sched, 0), TASK_EBUSY);
    return t->k < t->n ? TASK_STEP_YIELD : TASK_STEP_DONE;
}

static task_id spawn_timed(timed *t) {
    task_id id = 0;
    CHECK_INT(task_spawn(S, timed_step, t, NULL, &id), TASK_OK);
    return id;
}

#define CHECK_STATS(t, res, bz, lg, sp, last) do { task_info cs__ = info_of(S, (t)); CHECK_INT(cs__.stats, 1); \
    CHECK_U64(cs__.resumes, (res)); CHECK_U64(cs__.busy, (bz)); CHECK_U64(cs__.longest, (lg)); \
    CHECK_U64(cs__.spawned, (sp)); CHECK_U64(cs__.last_resume, (last)); } while (0)

static void vclock_hook(task_sched *s, task_id t, void *ud) { (void)s; (void)t; (void)ud; vclock += 1000; }
static void vclock_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    (void)s; (void)t; (void)did; (void)waits; (void)ud;
    vclock += 1000;
}

TEST_CASE(stats_with_a_clock) {
    timed a = {{10, 20, 5}, 3, 0, 0}, b = {{7, 100}, 2, 0, 0}, c = {{3}, 1, 0, 0}, d = {{4, 6}, 2, 0, 0},
          e = {{50, 50}, 2, 0, 0};
    task_hooks h;
    begin();
    clock_calls = 0;
    T[3] = spawn_timed(&d); /* before statistics are on */
    CHECK_INT(task_tick(S, 0), 1);
    vclock = 1000;
    CHECK_INT(task_enable_stats(S, read_vclock, &vclock), TASK_OK);
    CHECK_STATS(T[3], 0, 0, 0, 0, 0);
    T[0] = spawn_timed(&a);
    vclock = 1100;
    T[1] = spawn_timed(&b);
    CHECK_STATS(T[0], 0, 0, 0, 1000, 0);
    CHECK_STATS(T[1], 0, 0, 0, 1100, 0);
    /* tick 1: a 1100..1110, b 1110..1117, d (yielded before) 1117..1123 */
    CHECK_INT(task_tick(S, 5), 3);
    /* tick 2: a 1123..1143, b 1143..1243 (ends) */
    CHECK_INT(task_tick(S, 6), 2);
    /* tick 3: a 1243..1248 (ends) */
    CHECK_INT(task_tick(S, 7), 1);
    CHECK_STATS(T[0], 3, 35, 20, 1000, 1243);
    CHECK_STATS(T[1], 2, 107, 100, 1100, 1143);
    CHECK_STATS(T[3], 1, 6, 6, 0, 1117);  /* counted from when they were on */
    CHECK_INT(clock_calls, 2 + 2 * 6);    /* two spawns, six steps */
    CHECK_INT(task_status(S, T[0]), TASK_EXIT);
    /* the hooks' time is not the task's */
    memset(&h, 0, sizeof h);
    h.resume = vclock_hook;
    h.suspend = vclock_suspend;
    task_set_hooks(S, h);
    T[2] = spawn_timed(&c); /* at 1248 */
    CHECK_INT(task_tick(S, 8), 1); /* resume hook to 2248, step to 2251, suspend hook to 3251 */
    CHECK_STATS(T[2], 1, 3, 3, 1248, 2248);
    CHECK_U64(vclock, 3251);
    memset(&h, 0, sizeof h);
    task_set_hooks(S, h);
    /* an abort step counts as a resume; a reused slot starts again */
    CHECK_INT(task_release(S, T[0]), TASK_OK);
    T[4] = spawn_timed(&e);
    CHECK_U64((uint32_t)T[4], (uint32_t)T[0]);
    CHECK_STATS(T[4], 0, 0, 0, 3251, 0);
    CHECK_INT(task_tick(S, 9), 1);
    CHECK_INT(task_abort(S, T[4]), TASK_OK);
    CHECK_INT(task_tick(S, 10), 1);
    CHECK_INT(e.aborted, 1);
    CHECK_STATS(T[4], 2, 50, 50, 3251, 3301);
    CHECK_INT(task_info_of(S, T[0], NULL), TASK_ENOENT);
    finish();
}

TEST_CASE(stats_without_a_clock) {
    timed a = {{10, 20, 5}, 3, 0, 0}, b = {{7}, 1, 0, 0};
    bot w = {"w", {{A_WAIT}, {A_WAIT}}};
    begin();
    CHECK_INT(task_tick(S, 100), 0);
    CHECK_INT(task_enable_stats(S, NULL, NULL), TASK_OK);
    T[0] = spawn_timed(&a); /* from the host: the last tick's time */
    T[2] = spawn(&w);
    CHECK_STATS(T[0], 0, 0, 0, 100, 0);
    CHECK_INT(task_tick(S, 250), 2);
    CHECK_STATS(T[0], 1, 0, 0, 100, 250); /* every step of a tick: the tick's time */
    CHECK_STATS(T[2], 1, 0, 0, 100, 250);
    CHECK_INT(task_tick(S, 250), 1);
    CHECK_INT(task_tick(S, 400), 1);
    CHECK_STATS(T[0], 3, 0, 0, 100, 400);
    /* a spawn inside a tick: that tick's time */
    CHECK_INT(task_wakeup(S, T[2], NULL), TASK_OK);
    w.hook = NULL;
    CHECK_INT(task_tick(S, 500), 1);
    CHECK_STATS(T[2], 2, 0, 0, 100, 500);
    /* with a clock from now on: the figures stay */
    vclock = 9000;
    CHECK_INT(task_enable_stats(S, read_vclock, &vclock), TASK_OK);
    CHECK_STATS(T[0], 3, 0, 0, 100, 400);
    T[1] = spawn_timed(&b);
    CHECK_INT(task_wakeup(S, T[2], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 600), 2);
    CHECK_STATS(T[1], 1, 7, 7, 9000, 9000);
    CHECK_STATS(T[2], 3, 0, 0, 100, 9007);
    log_take();
    finish();
}

/* Off, statistics allocate nothing; on, one page of them per page of tasks. */
TEST_CASE(stats_off_costs_no_memory) {
    int k;
    size_t base;
    task_info i;
    begin();
    for (k = 0; k < (int)TASK__PAGE + 10; k++) CHECK_INT(task_spawn(S, quick, NULL, NULL, &T[0]), TASK_OK);
    CHECK_INT(task_tick(S, 1), (int)TASK__PAGE + 10);
    /* the scheduler, two pages of tasks and their index: nothing else */
    CHECK_INT(A.bytes, sizeof(task_sched) + 2 * (sizeof(task__task) * TASK__PAGE + sizeof(task__task *)));
    CHECK(S->spages == NULL);
    i = info_of(S, T[0]);
    CHECK_INT(i.state, TASK_EXIT);
    CHECK_INT(i.stats, 0);
    CHECK_U64(i.resumes, 0);
    CHECK_U64(i.last_resume, 0);
    base = A.bytes;
    CHECK_INT(task_enable_stats(S, NULL, NULL), TASK_OK);
    CHECK_INT(A.bytes - base, 2 * sizeof(task__stat) * TASK__PAGE + 4 * sizeof(task__stat *));
    CHECK_INT(sizeof(task__stat), 40);
    CHECK_STATS(T[0], 0, 0, 0, 0, 0);
    CHECK_INT(task_enable_stats(S, NULL, NULL), TASK_OK); /* again: nothing more */
    CHECK_INT(A.bytes - base, 2 * sizeof(task__stat) * TASK__PAGE + 4 * sizeof(task__stat *));
    finish();
}

TEST_CASE(stats_out_of_memory) {
    int k, n;
    size_t before;
    unsigned long calls;
    task_id id;
    begin();
    for (n = 1; n < 3 * (int)TASK__PAGE; n++) CHECK_INT(task_spawn(S, quick, NULL, NULL, &T[0]), TASK_OK);
    CHECK_INT(S->npages, 3); /* slot 0 is never used */
    /* enabling: the index, then three pages; any of them fails: still off */
    for (k = 1;; k++) {
        int rc;
        before = A.bytes;
        A.fail_at = A.calls + (unsigned long)k;
        rc = task_enable_stats(S, NULL, NULL);
        A.fail_at = 0;
        if (rc == TASK_OK) break;
        CHECK_INT(rc, TASK_ENOMEM);
        CHECK_CONTAINS(task_errmsg(S), "task_enable_stats: out of memory");
        CHECK_INT(A.bytes, before);
        CHECK(S->spages == NULL);
        CHECK_INT(info_of(S, T[0]).stats, 0);
        if (k > 10) break;
    }
    CHECK_INT(k, 5);
    CHECK_INT(info_of(S, T[0]).stats, 1);
    /* on: a fourth page fits the index; a fifth grows it. Whatever fails,
       the spawn fails and changes nothing but the index's capacity */
    for (n = 0; n < (int)TASK__PAGE; n++) CHECK_INT(task_spawn(S, quick, NULL, NULL, NULL), TASK_OK);
    for (k = 1;; k++) {
        int rc;
        before = A.bytes;
        calls = A.calls;
        A.fail_at = calls + (unsigned long)k;
        id = 1;
        rc = task_spawn(S, quick, NULL, NULL, &id);
        A.fail_at = 0;
        if (rc == TASK_OK) break;
        CHECK_INT(rc, TASK_ENOMEM);
        CHECK_U64(id, 0);
        CHECK_INT(task_count(S, -1), 4 * (int)TASK__PAGE - 1);
        CHECK(A.bytes == before || A.bytes == before + 4 * sizeof(task__stat *)); /* 4 -> 8 entries */
        if (k > 10) break;
    }
    /* k=1 fails growing the index; from k=2 on it has grown (and stays
       so), then the statistics page, task page and page table each fail */
    CHECK_INT(k, 4);
    CHECK_INT(S->npages, 5);
    CHECK_INT(S->spcap, 8);
    CHECK_INT(task_count(S, -1), 4 * (int)TASK__PAGE);
    CHECK_STATS(id, 0, 0, 0, 0, 0);
    CHECK_INT(task_tick(S, 3), 4 * (int)TASK__PAGE);
    CHECK_STATS(id, 1, 0, 0, 0, 3);
    finish();
    /* every allocation failing from the k-th on, statistics on from the start */
    for (k = 1; k < 12; k++) {
        int rc = TASK_OK;
        memset(&A, 0, sizeof A);
        A.fail_at = (unsigned long)k;
        A.fail_all_after = 1;
        S = task_create(test_alloc_fn, &A);
        if (!S) continue;
        rc = task_enable_stats(S, read_vclock, &vclock);
        for (n = 0; n < 2 * (int)TASK__PAGE + 5 && rc == TASK_OK; n++) rc = task_spawn(S, quick, NULL, NULL, NULL);
        if (rc != TASK_ENOMEM) CHECK_INT(rc, TASK_OK);
        task_tick(S, 1);
        CHECK_INT(task_destroy(S), TASK_OK);
        S = NULL;
        CHECK_INT(A.bytes, 0);
    }
}

/* ---- switch hooks ------------------------------------------------------------ */

static const char *bot_name(task_sched *s, task_id t) {
    bot *b = (bot *)userdata_of(s, t);
    return b ? b->name : "?";
}

static void sw_create(task_sched *s, task_id t, void *ud) { (void)ud; logp("+%s ", bot_name(s, t)); }
static void sw_term(task_sched *s, task_id t, void *ud) { (void)ud; logp("-%s ", bot_name(s, t)); }
static void sw_resume(task_sched *s, task_id t, void *ud) {
    CHECK(ud == (void *)&A);
    CHECK_INT(task_status(s, t), TASK_RUN);
    CHECK(task_self(s) == 0);
    CHECK_INT(task_tick(s, 0), TASK_EBUSY);
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    CHECK_INT(task_wait(s), TASK_EPERM); /* no task is running in a hook */
    logp("<%s ", bot_name(s, t));
}
static void sw_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    CHECK(ud == (void *)&A);
    CHECK_INT(task_status(s, t), TASK_RUN);
    CHECK(task_self(s) == 0);
    CHECK_INT(task_tick(s, 0), TASK_EBUSY);
    if (did == TASK_DID_PARK) logp(">%s:%s ", bot_name(s, t), task_waits_name(waits));
    else {
        CHECK_INT(waits, TASK_WAITS_NONE);
        logp(">%s:%s ", bot_name(s, t), did == TASK_DID_YIELD ? "yield" : did == TASK_DID_END ? "end" : "?");
    }
}

static int abort_self_hook(task_ctx *c, bot *b) {
    if (c->why == TASK_WHY_ABORT) return -1;
    (void)b;
    CHECK_INT(task_sleep(c->sched, 1), TASK_OK);
    CHECK_INT(task_abort(c->sched, c->self), TASK_OK);
    return TASK_STEP_SUSPEND;
}

TEST_CASE(switch_hooks) {
    bot y = {"y", {{A_YIELD}}}, w = {"w", {{A_WAIT}}}, z = {"z", {{A_NOTHING}}}, sl = {"s", {{A_SLEEP, 10}}},
        j = {"j", {{A_JOIN, 0}}}, f = {"f", {{A_FAIL}}}, p = {"p", {{A_PARK_AS, 3}}}, e = {"e", {{A_EXT, 0}}},
        x = {"x"}, c = {"c", {{A_NOTHING}}};
    static bot g = {"g", {{A_WAIT}}};
    task_hooks h, old;
    begin();
    memset(&h, 0, sizeof h);
    h.create = sw_create;
    h.term = sw_term;
    h.resume = sw_resume;
    h.suspend = sw_suspend;
    h.ud = &A;
    old = task_set_hooks(S, h);
    CHECK(old.create == NULL && old.resume == NULL && old.suspend == NULL);
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    CHECK_INT(task_ext_resume(S, E[0], V(5)), TASK_OK);
    T[0] = spawn(&f);
    T[1] = spawn(&y);
    T[2] = spawn(&w);
    T[3] = spawn(&z);
    T[4] = spawn(&sl);
    T[5] = spawn(&j);
    T[6] = spawn(&p);
    T[7] = spawn(&e);
    x.hook = abort_self_hook;
    T[8] = spawn(&x);
    T[9] = spawn(&c);
    CHECK_INT(task_cancel(S, T[9]), TASK_OK);
    CHECK_STR(log_take(), "+f +y +w +z +s +j +p +e +x +c");
    CHECK_INT(task_tick(S, 0), 13);
    CHECK_STR(log_take(),
              "<f fS >f:end -f "
              "<y yS >y:yield "
              "<w wS >w:wakeup "
              "<z zS >z:wakeup "          /* nothing arranged: a plain wait */
              "<s sS >s:sleep "
              "<j jS >j:none "            /* f has ended: woken at once */
              "<p pS >p:park "
              "<e eS >e:none "            /* resumed before: woken at once */
              "<x xS >x:end <x xA >x:end -x " /* aborted itself: its abort step follows */
              "<c cS >c:none "            /* cancelled: woken at once */
              "<j jW >j:end -j <e eW=5 >e:end -e <c cC >c:end -c");
    CHECK_INT(task_abort(S, T[4]), TASK_OK); /* the abort step is bracketed too */
    CHECK_INT(task_tick(S, 1), 2);
    CHECK_STR(log_take(), "<s sA >s:end -s <y yY >y:end -y"); /* READY now, then the yielded */
    /* task_drop and task_destroy run no hooks */
    CHECK_INT(task_drop(S, T[2]), TASK_OK);
    T[10] = spawn(&g);
    CHECK_INT(task_tick(S, 2), 1);
    CHECK_STR(log_take(), "+g <g gS >g:wakeup");
    CHECK_INT(task_destroy(S), TASK_OK);
    S = NULL;
    CHECK_STR(log_take(), "gA zA pA"); /* slot order: g took w's */
    CHECK_INT(A.bytes, 0);
}

/* Hooks that change things: spawn, wake, cancel, abort. */
static int hk_mode;
static bot hk_spawned, hk_sleeper;
static void act_resume(task_sched *s, task_id t, void *ud) {
    (void)ud;
    logp("<%s ", bot_name(s, t));
    if (hk_mode == 1) { /* spawn, as the host: no scope, the host's trace */
        hk_mode = 0;
        bot_reset(&hk_spawned, "n", A_DONE, 0);
        CHECK_INT(task_spawn(s, bot_step, &hk_spawned, NULL, &T[20]), TASK_OK);
        CHECK(scope_of(s, T[20]) == 0);
        CHECK_U64(trace_of(s, T[20]), 77);
        CHECK(token_of(s, T[20]) == 0);
    }
    if (hk_mode == 2) { hk_mode = 0; CHECK_INT(task_cancel(s, t), TASK_OK); }
}
static void act_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    (void)ud; (void)did; (void)waits;
    logp(">%s ", bot_name(s, t));
    if (hk_mode == 3) { hk_mode = 0; CHECK_INT(task_wakeup(s, T[2], V(9)), TASK_OK); }
    if (hk_mode == 4) { hk_mode = 0; CHECK_INT(task_cancel(s, t), TASK_OK); }
    if (hk_mode == 5) { hk_mode = 0; CHECK_INT(task_abort(s, t), TASK_OK); }
    if (hk_mode == 6) { hk_mode = 0; CHECK_INT(task_drop(s, t), TASK_OK); CHECK_INT(task_release(s, t), TASK_ENOENT); }
}

static int open_scope_hook(task_ctx *c, bot *b) {
    if (b->steps == 1) {
        CHECK_INT(task_scope_open(c->sched, &SC[0]), TASK_OK);
        task_trace_set(c->sched, 55);
    }
    return -1;
}

TEST_CASE(switch_hooks_change_things) {
    bot a = {"a", {{A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}}}, b = {"b", {{A_WAIT}, {A_WAIT}}},
        c = {"c", {{A_WAIT}, {A_WAIT}, {A_WAIT}}};
    task_hooks h;
    begin();
    memset(&h, 0, sizeof h);
    h.resume = act_resume;
    h.suspend = act_suspend;
    task_set_hooks(S, h);
    task_trace_set(S, 77);
    a.hook = open_scope_hook;
    T[0] = spawn(&a);
    T[2] = spawn(&b);
    T[3] = spawn(&c);
    hk_mode = 1; /* a's resume hook spawns: the new task runs in this tick */
    CHECK_INT(task_tick(S, 0), 4);
    CHECK_STR(log_take(), "<a aS >a <b bS >b <c cS >c <n nS >n");
    CHECK_INT(ended(S, T[20]), TASK_EXIT_DONE);
    /* a suspend hook wakes another task: it runs in the same tick */
    hk_mode = 3;
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "<a aW >a <b bW=9 >b");
    /* a suspend hook cancels the task that has just parked: woken at once */
    hk_mode = 4;
    CHECK_INT(task_wakeup(S, T[3], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 2);
    CHECK_STR(log_take(), "<c cW >c <c cC c!-5 >c");
    CHECK_INT(ended(S, T[3]), TASK_EXIT_DONE);
    /* a resume hook cancels the task about to run: its wait is refused */
    hk_mode = 2;
    CHECK_INT(task_wakeup(S, T[0], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "<a aW a!-5 a!-5 a!-5 >a");
    CHECK_INT(ended(S, T[0]), TASK_EXIT_DONE);
    /* a suspend hook aborts the task: its abort step follows at once */
    hk_mode = 5;
    CHECK_INT(task_wakeup(S, T[2], NULL), TASK_OK);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "<b bW >b <b bA >b");
    CHECK_INT(ended(S, T[2]), TASK_EXIT_ABORT);
    /* its suspend hook drops it (its step is over): gone, its yield ignored */
    bot_reset(&hk_sleeper, "z", A_YIELD, 0);
    T[4] = spawn(&hk_sleeper);
    hk_mode = 6;
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_INT(task_tick(S, 0), 0);
    CHECK_STR(log_take(), "<z zS >z");
    CHECK_INT(task_status(S, T[4]), TASK_ENOENT);
    finish();
}

/* Chaining: each hook calls the one it replaced. */
static task_hooks chained;
static void c1_resume(task_sched *s, task_id t, void *ud) { (void)s; (void)t; logp("r1%s ", (const char *)ud); }
static void c1_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    (void)s; (void)t; (void)waits;
    logp("s1%s%d ", (const char *)ud, did);
}
static void c2_resume(task_sched *s, task_id t, void *ud) {
    logp("r2%s ", (const char *)ud);
    if (chained.resume) chained.resume(s, t, chained.ud);
}
static void c2_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    logp("s2%s%d ", (const char *)ud, did);
    if (chained.suspend) chained.suspend(s, t, did, waits, chained.ud);
}

TEST_CASE(switch_hooks_chain) {
    task_hooks h1, h2, got;
    bot a = {"a", {{A_YIELD}}};
    begin();
    memset(&h1, 0, sizeof h1);
    h1.resume = c1_resume;
    h1.suspend = c1_suspend;
    h1.ud = (void *)"x";
    memset(&h2, 0, sizeof h2);
    h2.create = h1_create; /* create and term as in hooks_chain: h1's only */
    h2.resume = c2_resume;
    h2.suspend = c2_suspend;
    h2.ud = (void *)"y";
    task_set_hooks(S, h1);
    chained = task_set_hooks(S, h2);
    CHECK(chained.resume == c1_resume && chained.suspend == c1_suspend && chained.ud == h1.ud);
    T[0] = spawn(&a);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "c1y r2y r1x aS s2y1 s1x1");
    got = task_set_hooks(S, chained); /* unhook: the first set again */
    CHECK(got.resume == c2_resume && got.suspend == c2_suspend && got.create == h1_create && got.term == NULL);
    CHECK_INT(task_tick(S, 0), 1);
    CHECK_STR(log_take(), "r1x aY s1x3");
    finish();
}

/* ---- the ready hook --------------------------------------------------------- */

static int ready_calls, ready_spawn;
static bot ready_bot;
static void on_ready(task_sched *s, void *ud) {
    CHECK(ud == (void *)&ready_calls);
    ready_calls++;
    CHECK_U64(task_timeout(s, task_now(s)), 0);
    CHECK(task_ready_count(s) > 0);
    CHECK_INT(task_tick(s, task_now(s)), TASK_EBUSY);
    CHECK_INT(task_destroy(s), TASK_EBUSY);
    CHECK(task_self(s) == 0);
    logp("R ");
    if (ready_spawn) { /* what it makes READY calls it no more */
        ready_spawn = 0;
        bot_reset(&ready_bot, "q", A_DONE, 0);
        CHECK_INT(task_spawn(s, bot_step, &ready_bot, NULL, NULL), TASK_OK);
    }
}

/* Ticks until nothing is READY; the calls the hook had meanwhile. */
static int settle(uint64_t now) {
    int n = ready_calls;
    task_tick(S, now);
    CHECK_INT(task_ready_count(S), 0);
    CHECK_INT(ready_calls, n); /* never inside a tick */
    return ready_calls;
}

/* The ready hook from inside the walk of task_foreach: not a tick. */
static int wake_in_walk(task_sched *s, task_id t, int state, void *ud) {
    (void)ud;
    if (state == TASK_WAIT) CHECK_INT(task_wakeup(s, t, NULL), TASK_OK);
    return 0;
}

static void spawn_in_timer(task_sched *s, task_id timer, void *ud) {
    (void)timer; (void)ud;
    bot_reset(&m3, "t", A_DONE, 0);
    CHECK_INT(task_spawn(s, bot_step, &m3, NULL, NULL), TASK_OK);
}

static int wake_other_hook(task_ctx *c, bot *b) {
    (void)b;
    if (task_status(c->sched, T[9]) == TASK_WAIT) CHECK_INT(task_wakeup(c->sched, T[9], NULL), TASK_OK);
    return -1;
}

static int wake_on_abort(task_ctx *c, bot *b) {
    (void)b;
    if (c->why == TASK_WHY_ABORT && task_status(c->sched, T[16]) == TASK_WAIT)
        CHECK_INT(task_wakeup(c->sched, T[16], NULL), TASK_OK);
    return -1;
}

TEST_CASE(ready_hook) {
    bot a = {"a"}, b = {"b"}, w = {"w", {{A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}}}, p = {"p", {{A_PARK}}},
        e = {"e", {{A_EXT, 0}}}, s1 = {"s", {{A_SLEEP, TASK_SEC}}}, k = {"k", {{A_WAIT}}}, j = {"j", {{A_JOIN, 8}}},
        x = {"x", {{A_WAIT}}}, y = {"y", {{A_YIELD}, {A_YIELD}}}, o, v = {"v", {{A_WAIT}, {A_WAIT}}},
        u = {"u", {{A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}, {A_WAIT}}};
    static bot d1 = {"d", {{A_WAIT}}}, d2 = {"D", {{A_WAIT}}};
    act wt = {A_WAIT, 0};
    task_opts opt;
    begin();
    ready_calls = ready_spawn = 0;
    task_set_ready_hook(S, on_ready, &ready_calls);
    /* from the host, once between two ticks */
    T[0] = spawn(&a);
    CHECK_INT(ready_calls, 1);
    T[1] = spawn(&b);
    CHECK_INT(ready_calls, 1);
    CHECK_INT(task_token_new(S, 0, &TK[0]), TASK_OK);
    memset(&opt, 0, sizeof opt);
    opt.token = TK[0];
    CHECK_INT(task_ext_alloc(S, &E[0]), TASK_OK);
    T[2] = spawn(&w);
    T[3] = spawn(&p);
    T[4] = spawn(&e);
    T[5] = spawn(&s1);
    T[6] = spawn_opts(&k, &opt);
    T[8] = spawn(&x);
    T[7] = spawn(&j);
    T[9] = spawn(&v);
    CHECK_INT(settle(1), 1);
    CHECK_STR(log_take(), "R aS bS wS pS eS sS kS xS jS vS");
    /* each way a task becomes READY from outside a tick */
    CHECK_INT(task_wakeup(S, T[2], NULL), TASK_OK);
    CHECK_INT(ready_calls, 2);
    CHECK_INT(task_wakeup(S, T[9], NULL), TASK_OK);
    CHECK_INT(ready_calls, 2);
    settle(2);
    CHECK_INT(task_unpark(S, T[3], NULL), TASK_OK);
    CHECK_INT(ready_calls, 3);
    settle(3);
    CHECK_INT(task_ext_resume(S, E[0], NULL), TASK_OK);
    CHECK_INT(ready_calls, 4);
    settle(4);
    CHECK_INT(task_abort(S, T[5]), TASK_OK);
    CHECK_INT(ready_calls, 5);
    settle(5);
    CHECK_INT(task_token_cancel(S, TK[0]), TASK_OK);
    CHECK_INT(ready_calls, 6);
    settle(6);
    CHECK_INT(task_drop(S, T[8]), TASK_OK); /* wakes its joiner */
    CHECK_INT(ready_calls, 7);
    settle(7);
    CHECK_INT(task_cancel(S, T[2]), TASK_OK);
    CHECK_INT(ready_calls, 8);
    settle(8);
    CHECK_STR(log_take(), "R wW vW R pW R eW R sA R kC R jW R wC w!-5 w!-5");
    /* nothing made READY: no call */
    CHECK_INT(task_ext_alloc(S, &E[1]), TASK_OK);
    CHECK_INT(task_ext_resume(S, E[1], NULL), TASK_OK); /* nobody waits for it */
    CHECK_INT(task_after(S, 1, timer_cb, V(1), NULL), TASK_OK);
    CHECK_INT(task_cancel(S, T[2]), TASK_ESTATE);       /* ended */
    CHECK_INT(ready_calls, 8);
    CHECK_INT(task_cancel(S, T[9]), TASK_OK);           /* v waits: READY now */
    CHECK_INT(ready_calls, 9);
    settle(9);
    CHECK_STR(log_take(), "R t1 vC");
    /* scopes: cancel, abort, and the last member leaving a closing scope */
    scope_setup(&o, "m", wt, "n", wt);
    m1.s[1] = wt;
    m2.s[1] = wt;
    T[10] = spawn(&o); /* its members: T[1], T[2] */
    CHECK_INT(ready_calls, 10);
    settle(10);
    CHECK_INT(task_scope_cancel(S, SC[0]), TASK_OK);
    CHECK_INT(ready_calls, 11);
    settle(11);
    CHECK_STR(log_take(), "R oS mS nS R mC m!-5 nC n!-5 oW");
    scope_setup(&o, "m", wt, "n", wt);
    T[10] = spawn(&o);
    settle(12);
    CHECK_INT(task_scope_abort(S, SC[0]), TASK_OK);
    CHECK_INT(ready_calls, 13);
    settle(13);
    CHECK_STR(log_take(), "R oS mS nS R mA nA oW");
    scope_setup(&o, "m", wt, "n", wt);
    T[10] = spawn(&o);
    settle(14);
    CHECK_INT(task_scope_leave(S, T[1]), TASK_OK);
    CHECK_INT(ready_calls, 14); /* n is left: the owner still waits */
    CHECK_INT(task_scope_leave(S, T[2]), TASK_OK);
    CHECK_INT(ready_calls, 15);
    settle(15);
    CHECK_STR(log_take(), "R oS mS nS R oW");
    /* inside a tick (a step wakes another, a timer spawns): no call */
    u.hook = wake_other_hook;
    bot_reset(&v, "v", A_WAIT, 0);
    T[9] = spawn(&v);
    T[11] = spawn(&u);
    CHECK_INT(ready_calls, 16);
    CHECK_INT(task_after(S, 0, spawn_in_timer, NULL, NULL), TASK_OK);
    settle(16);
    CHECK_STR(log_take(), "R vS uS tS vW");
    CHECK_INT(task_wakeup(S, T[11], NULL), TASK_OK); /* armed again after that tick */
    CHECK_INT(ready_calls, 17);
    settle(17);
    /* a tick that leaves a task READY does not arm it: task_timeout says 0 */
    T[12] = spawn(&y);
    CHECK_INT(ready_calls, 18);
    CHECK_INT(task_tick(S, 18), 1);
    CHECK_U64(task_timeout(S, 18), 0);
    CHECK_INT(task_wakeup(S, T[11], NULL), TASK_OK);
    CHECK_INT(ready_calls, 18);
    CHECK_INT(task_tick(S, 19), 2);
    CHECK_INT(task_tick(S, 20), 1);
    CHECK_INT(task_ready_count(S), 0);
    CHECK_STR(log_take(), "R uW R yS uW yY yY");
    /* the hook may spawn; what it makes READY calls it no more */
    ready_spawn = 1;
    CHECK_INT(task_wakeup(S, T[11], NULL), TASK_OK);
    CHECK_INT(ready_calls, 19);
    settle(21);
    CHECK_STR(log_take(), "R uW qS");
    /* from a task_foreach callback (not a tick): called */
    bot_reset(&v, "v", A_WAIT, 0);
    T[9] = spawn(&v);
    CHECK_INT(ready_calls, 20);
    settle(22);
    CHECK_INT(task_foreach(S, wake_in_walk, NULL), 0);
    CHECK_INT(ready_calls, 21);
    settle(23);
    log_take();
    /* set while a task is READY: armed only after the next tick */
    task_set_ready_hook(S, NULL, NULL);
    T[13] = spawn(&a);
    task_set_ready_hook(S, on_ready, &ready_calls);
    T[14] = spawn(&b);
    CHECK_INT(ready_calls, 21);
    settle(24);
    bot_reset(&v, "v", A_DONE, 0);
    T[9] = spawn(&v);
    CHECK_INT(ready_calls, 22);
    settle(25);
    /* off: never */
    task_set_ready_hook(S, NULL, NULL);
    T[9] = spawn(&v);
    CHECK_INT(ready_calls, 22);
    settle(26);
    log_take();
    /* task_destroy: an abort step wakes another task; no call */
    task_set_ready_hook(S, on_ready, &ready_calls);
    d1.hook = wake_on_abort;
    T[15] = spawn(&d1);
    T[16] = spawn(&d2);
    settle(27);
    CHECK_INT(ready_calls, 23);
    finish();
    CHECK_INT(ready_calls, 23);
    log_take();
}

/* A create hook that drops the new task: nothing is READY, so no call. */
static void create_then_drop(task_sched *s, task_id t, void *ud) {
    (void)ud;
    CHECK_INT(task_drop(s, t), TASK_OK);
}

TEST_CASE(ready_hook_and_create_hook) {
    bot a = {"a"}, b = {"b"};
    task_hooks h;
    begin();
    ready_calls = ready_spawn = 0;
    task_set_ready_hook(S, on_ready, &ready_calls);
    memset(&h, 0, sizeof h);
    h.create = create_then_drop;
    task_set_hooks(S, h);
    T[0] = spawn(&a);
    CHECK_INT(task_status(S, T[0]), TASK_ENOENT);
    CHECK_INT(ready_calls, 0);
    memset(&h, 0, sizeof h);
    task_set_hooks(S, h);
    T[1] = spawn(&b); /* still armed */
    CHECK_INT(ready_calls, 1);
    CHECK_INT(task_tick(S, 1), 1);
    log_take();
    finish();
}

/* An allocator that calls back into its own scheduler (a careless host
   that ticks or cleans up under memory pressure, or logs through a task):
   task_destroy and task_tick refuse (before, task_destroy freed the
   scheduler under the spawn that was growing it), and an allocation the
   call-back causes fails instead of growing the array the outer call is
   moving (before, both reallocated the same block). */
static int reenter_mode, reenter_rc[3];
static void *reenter_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    if (reenter_mode && S && nsize > (ptr ? osize : 0)) {
        int mode = reenter_mode;
        task_id x = 0;
        reenter_mode = 0; /* once */
        if (mode == 1) reenter_rc[0] = task_destroy(S);
        else if (mode == 2) reenter_rc[1] = task_tick(S, 7);
        else {
            reenter_rc[2] = task_ext_alloc(S, &x);
            CHECK_U64(x, 0);
        }
    }
    return test_alloc_fn(ud, ptr, osize, nsize);
}

TEST_CASE(allocator_calls_back_in) {
    bot a = {"a"};
    task_id x = 0, e[20];
    int k, n = 0;
    memset(&A, 0, sizeof A);
    memset(reenter_rc, 0, sizeof reenter_rc);
    S = NULL; /* the allocator leaves task_create alone */
    S = task_create(reenter_alloc, &A);
    CHECK(S != NULL);
    if (!S) return;
    reenter_mode = 1; /* the first spawn allocates the first page */
    CHECK_INT(task_spawn(S, bot_step, &a, NULL, &x), TASK_OK);
    CHECK_INT(reenter_rc[0], TASK_EBUSY);
    CHECK_CONTAINS(task_errmsg(S), "task_destroy");
    reenter_mode = 2; /* the first external id allocates the pool */
    CHECK_INT(task_ext_alloc(S, &e[n]), TASK_OK);
    n++;
    CHECK_INT(reenter_rc[1], TASK_EBUSY);
    CHECK_U64(task_now(S), 0);
    while (n < 15) CHECK_INT(task_ext_alloc(S, &e[n++]), TASK_OK); /* the pool is full */
    reenter_mode = 3;
    CHECK_INT(task_ext_alloc(S, &e[n]), TASK_OK); /* grows it, and its allocator asks for one more */
    n++;
    CHECK_INT(reenter_rc[2], TASK_ENOMEM);
    CHECK_INT(reenter_mode, 0);
    CHECK_INT(task_ext_alloc(S, &e[n]), TASK_OK); /* the grown pool works */
    n++;
    for (k = 0; k < n; k++) {
        CHECK_INT(task_ext_status(S, e[k]), 0);
        CHECK_INT(task_ext_release(S, e[k]), TASK_OK);
    }
    CHECK_INT(task_tick(S, 1), 1);
    CHECK_INT(task_status(S, x), TASK_EXIT);
    finish();
}

/* The hooks and the statistics clock around a step drop the task (as a
   binding does when the hook closes its interpreter, lua_close): the step
   is not called, or what it returned is not acted on, even when the slot
   is reused at once. Before, task_drop refused (TASK_EBUSY), and a binding
   that had freed the task's memory was stepped again. */
static int gone_steps, gone_mode, gone_rc;
static task_id gone_target, gone_new;

static int gone_step(task_ctx *c) {
    gone_steps++;
    if (c->why == TASK_WHY_START && task_sleep(c->sched, 5) == TASK_OK) return TASK_STEP_SUSPEND;
    return TASK_STEP_DONE;
}

static void gone_drop(task_sched *s, task_id t) {
    if (t != gone_target || task_status(s, t) != TASK_RUN) return;
    gone_rc = task_drop(s, t);
    if (gone_mode == 2 || gone_mode == 3) /* the freed slot, reused at once */
        CHECK_INT(task_spawn(s, gone_step, NULL, NULL, &gone_new), TASK_OK);
    gone_target = 0;
}

static void gone_resume(task_sched *s, task_id t, void *ud) {
    (void)ud;
    if (gone_mode == 1 || gone_mode == 3) gone_drop(s, t);
}

static void gone_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    (void)did; (void)waits; (void)ud;
    if (gone_mode == 2) gone_drop(s, t);
}

static uint64_t gone_clock(void *ud) {
    (void)ud;
    if (gone_mode == 4 && gone_target) gone_drop(S, gone_target);
    return 0;
}

TEST_CASE(hooks_drop_the_task_around_its_step) {
    task_hooks h;
    task_id a, j;
    bot jb = {"j"};
    begin();
    memset(&h, 0, sizeof h);
    h.resume = gone_resume;
    h.suspend = gone_suspend;
    task_set_hooks(S, h);
    gone_steps = 0;
    /* 1: the resume hook drops it; a joiner sees it aborted */
    gone_mode = 1;
    gone_rc = 99;
    bot_reset(&jb, "j", A_JOIN, 0);
    j = spawn(&jb);
    CHECK_INT(task_spawn(S, gone_step, NULL, NULL, &a), TASK_OK);
    gone_target = T[0] = a;
    CHECK_INT(task_tick(S, 1), 3); /* j parks, a (dropped), j woken */
    CHECK_INT(gone_rc, TASK_OK);
    CHECK_INT(gone_steps, 0);
    CHECK_INT(jb.why, TASK_WHY_WAKE);
    CHECK_STR(log_take(), "jS jW");
    CHECK_INT(task_status(S, a), TASK_ENOENT);
    CHECK_INT(ended(S, j), TASK_EXIT_DONE);
    CHECK_INT(task_count(S, -1), 0);
    /* 2: the suspend hook drops it after it arranged a sleep, and spawns
       into the same slot */
    gone_mode = 2;
    gone_rc = 99;
    CHECK_INT(task_spawn(S, gone_step, NULL, NULL, &a), TASK_OK);
    gone_target = a;
    CHECK_INT(task_tick(S, 2), 2); /* a, then the new one in the same tick */
    CHECK_INT(gone_rc, TASK_OK);
    CHECK_INT(gone_steps, 2);
    CHECK_INT(task_status(S, a), TASK_ENOENT);
    CHECK_U64((uint32_t)gone_new, (uint32_t)a);
    CHECK_INT(task_status(S, gone_new), TASK_SLEEP);
    CHECK_INT(task_count(S, TASK_SLEEP), 1);
    CHECK_U64(task_next_deadline(S), 7); /* a's sleep went with it */
    CHECK_INT(task_tick(S, 7), 1);
    CHECK_INT(task_count(S, -1), 0);
    /* 3: aborted, then dropped by the resume hook of its abort step */
    gone_mode = 3;
    gone_rc = 99;
    gone_steps = 0;
    CHECK_INT(task_spawn(S, gone_step, NULL, NULL, &a), TASK_OK);
    CHECK_INT(task_tick(S, 8), 1);
    CHECK_INT(task_abort(S, a), TASK_OK);
    gone_target = a;
    CHECK_INT(task_tick(S, 9), 2); /* the abort slot, then the new task */
    CHECK_INT(gone_rc, TASK_OK);
    CHECK_INT(gone_steps, 2); /* a's first step and the new one's */
    CHECK_INT(task_status(S, a), TASK_ENOENT);
    CHECK_INT(task_status(S, gone_new), TASK_SLEEP);
    CHECK_INT(task_tick(S, 20), 1);
    /* 4: the statistics clock drops it before its step */
    memset(&h, 0, sizeof h);
    task_set_hooks(S, h);
    CHECK_INT(task_enable_stats(S, gone_clock, NULL), TASK_OK);
    gone_mode = 4;
    gone_rc = 99;
    gone_steps = 0;
    CHECK_INT(task_spawn(S, gone_step, NULL, NULL, &a), TASK_OK);
    gone_target = a;
    CHECK_INT(task_tick(S, 21), 1);
    CHECK_INT(gone_rc, TASK_OK);
    CHECK_INT(gone_steps, 0);
    CHECK_INT(task_status(S, a), TASK_ENOENT);
    gone_mode = 0;
    CHECK_INT(task_count(S, -1), 0);
    finish();
}

/* A task_foreach callback that spawns a task for every task it sees (a
   watcher per task): the walk ends after the tasks there were as it
   started. Before, it visited each new task too, and spawned again,
   until memory ran out. */
static int spawning_walk(task_sched *s, task_id t, int state, void *ud) {
    int *n = (int *)ud;
    (void)t; (void)state;
    if (++*n > 5000) return 1; /* never ending: give up */
    CHECK_INT(task_spawn(s, quick, NULL, NULL, NULL), TASK_OK);
    return 0;
}

TEST_CASE(foreach_callback_spawns_for_each_task) {
    int k, n = 0;
    begin();
    for (k = 0; k < 3; k++) CHECK_INT(task_spawn(S, quick, NULL, NULL, NULL), TASK_OK);
    CHECK_INT(task_foreach(S, spawning_walk, &n), 0);
    CHECK_INT(n, 3);
    CHECK_INT(task_count(S, -1), 6);
    CHECK_INT(task_tick(S, 1), 6);
    finish();
}

int main(void) {
    RUN(create_destroy);
    RUN(strerror_and_state_names);
    RUN(version);
    RUN(result_convention);
    RUN(spawn_and_fifo);
    RUN(woken_runs_same_tick_yield_next_tick);
    RUN(yield_loop_does_not_trap_tick);
    RUN(tick_limit);
    RUN(sleep_never_early);
    RUN(sleep_counts_from_the_tick_clock);
    RUN(timeout_values);
    RUN(timers_order_and_ties);
    RUN(timer_callbacks);
    RUN(tick_and_destroy_refused_inside);
    RUN(wakeup_errors);
    RUN(suspensions_need_a_task);
    RUN(arrange_twice_refused);
    RUN(ext_ids);
    RUN(ext_waiter_gives_up);
    RUN(join);
    RUN(join_failed_cancelled_aborted);
    RUN(joiner_cancelled_leaves_the_list);
    RUN(cancel);
    RUN(tokens);
    RUN(scope_close_waits_for_all);
    RUN(scope_close_not_interrupted_by_cancel);
    RUN(scope_cancel_and_abort);
    RUN(scope_ownerless);
    RUN(scope_nested_and_owner_only);
    RUN(scope_of_cancelled_task);
    RUN(cancel_owner_of_nested_scopes);
    RUN(abort_tasks);
    RUN(drop);
    RUN(drop_gives_no_stale_value);
    RUN(release);
    RUN(many_tasks_and_slot_reuse);
    RUN(trace_ids);
    RUN(hooks_chain);
    RUN(counts_and_foreach);
    RUN(protothreads);
    RUN(destroy_with_live_tasks);
    RUN(step_of_known_tasks);
    RUN(scope_leave);
    RUN(protothread_abort);
    RUN(oom_host_functions);
    RUN(oom_in_task);
    RUN(oom_sweep);
    RUN(wake_limit_ping_pong);
    RUN(wake_limit_batch_order);
    RUN(no_tick_or_destroy_in_callbacks);
    RUN(foreach_callback_changes_tasks);
    RUN(hooks_change_their_task);
    RUN(timer_callbacks_change_timers);
#ifdef TASK_THREADS
    RUN(wake_callback_inside_a_task);
#endif
    RUN(abort_reaches_descendants);
    RUN(abort_only_on_abort);
    RUN(abort_deep_chain);
    RUN(scope_abort_many_members);
    RUN(ext_waiter_follows_the_wait);
    RUN(heap_remove_moves_last_up);
    RUN(failed_calls_zero_their_out_id);
    RUN(cancel_scope);
    RUN(info_wait_kinds);
    RUN(park_as);
    RUN(stats_with_a_clock);
    RUN(stats_without_a_clock);
    RUN(stats_off_costs_no_memory);
    RUN(stats_out_of_memory);
    RUN(switch_hooks);
    RUN(switch_hooks_change_things);
    RUN(switch_hooks_chain);
    RUN(ready_hook);
    RUN(ready_hook_and_create_hook);
    RUN(allocator_calls_back_in);
    RUN(hooks_drop_the_task_around_its_step);
    RUN(foreach_callback_spawns_for_each_task);
    return test_done();
}
