/*
 * task_lua.h: the task.h scheduler for Lua 5.4 and 5.5 scripts.
 *
 * WHAT IT IS
 *   A binding of task.h to Lua (5.4.0 through 5.5): scripts write
 *       local task = require "task"
 *   and get spawn/join, sleep, wait/wakeup, external resumes, cancellation,
 *   scopes, timeouts, race/all, channels, select and tracing. Each task is
 *   a Lua thread run by a task.h step function (the executor); the host
 *   keeps driving the scheduler with task_tick() from its own loop.
 *
 * HOW TO INCLUDE IT
 *   In exactly one C file, after the Lua headers are reachable:
 *       #define TASK_IMPLEMENTATION
 *       #define TASK_LUA_IMPLEMENTATION
 *       #include "task_lua.h"      // includes task.h
 *   Elsewhere include "task_lua.h" alone for the declarations.
 *
 * HOST SIDE
 *       task_sched *s = task_create(NULL, NULL);
 *       lua_State *L = luaL_newstate();
 *       luaL_openlibs(L);
 *       task_lua_open(L, s);          // pushes the module; require "task" works
 *       lua_pop(L, 1);
 *       ... load a chunk, task_lua_spawn(L, 0, NULL) ...
 *       for (;;) { task_tick(s, now); ... poll(fds, n, task_timeout_ms(s, now)); }
 *       lua_close(L);                 // frees every Lua task, even live ones
 *       task_destroy(s);
 *   The scheduler must outlive the lua_State. A Lua task's waits are the
 *   binding's: from C, stop one with task_cancel or task_abort and hand it
 *   values through an external id (task_lua_resume); task_unpark and
 *   task_drop on a Lua task bypass the binding (an unparked channel wait
 *   returns nonsense, and a Lua select on a dropped Task never completes).
 *   lua_close may be called from the core's callbacks (a hook, a timer,
 *   the ready hook), but not from code running on L itself (a C function
 *   a task calls, the clock of task_lua_set_clock). The host functions
 *   take any thread of the state, also one that cannot make calls (a
 *   task's thread that a C function kept, now suspended): they then do
 *   their calls on the main thread, with the same effect on L's stack.
 *   Errors of tasks nobody waits for go to the error handler
 *   (task_lua_set_error_handler); the default writes one line with the
 *   task's id, name and message, then the traceback, to stderr.
 *
 *   A task that never suspends would keep the host inside task_tick().
 *   task_lua_set_budget(L, n, mode) gives every resume of a Lua task a
 *   budget of n VM instructions, counted by a count hook (lua_sethook with
 *   LUA_MASKCOUNT) on the task's thread. When it is spent the task is
 *   either preempted (TASK_LUA_PREEMPT: it yields from the hook and runs
 *   again at the next tick, at the back of the queue; where it cannot
 *   yield, inside a metamethod or a C call such as table.sort's
 *   comparator, it is preempted at the next count that can, and fails as
 *   below after 100 more budgets spent there) or fails with the error
 *   "task exceeded its budget" (TASK_LUA_RAISE; the error is raised again
 *   at every instruction, so a pcall cannot swallow it). Code in a plain
 *   coroutine nested inside a task cannot be preempted: it gets the error
 *   in both modes. The hook
 *   replaces any debug.sethook hook of a task's thread while a budget is
 *   set. n = 0 (the default) turns it off.
 *
 * STANDALONE MODULE
 *   Compiled with TASK_LUA_MODULE defined (make module: build/task.so), the
 *   header is a module for the stock lua5.4 that owns its scheduler:
 *   task.run(fn, ...) runs fn as the main task and drives the loop with the
 *   monotonic clock, sleeping between timers, until every task has ended.
 *   A loop of one's own drives it with task.step([max]) (one tick),
 *   task.poll_timeout() (ms until the next tick is due, or nil) and
 *   task.count(), and learns of tasks made ready from outside a tick with
 *   task.on_ready(fn); task/luv.lua (require "task.luv") is such a driver
 *   for luv's loop, with TCP, fs and getaddrinfo calls that suspend.
 *
 * OPTIONS
 *   TASK_LUA_API   linkage of the host functions (default: extern).
 *   TASK_LUA_MODULE  build luaopen_task for a standalone module with
 *                  task.run (needs POSIX clock_gettime and nanosleep).
 *   TASK_LUA_POOL  idle threads of returned tasks kept for new ones
 *                  (default 1024; task_lua_set_pool, task.pool(n)).
 *
 * The Lua API is documented in README.md ("Lua scripts").
 * LICENSE: MIT, as task.h.
 */
#ifndef TASK_LUA_H
#define TASK_LUA_H

#if defined(TASK_LUA_MODULE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif
#include <lua.h>
#include <lauxlib.h>
#ifdef __cplusplus
}
#endif

#ifndef TASK_LUA_API
#define TASK_LUA_API extern
#endif
#ifndef TASK_LUA_POOL
#define TASK_LUA_POOL 1024 /* idle threads kept for new tasks (task_lua_set_pool) */
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Binds the module to a scheduler on this lua_State, makes require "task"
   return it, and pushes the module table. */
TASK_LUA_API int task_lua_open(lua_State *L, task_sched *s);
/* The scheduler the module on L is bound to, or NULL. */
TASK_LUA_API task_sched *task_lua_sched(lua_State *L);
/* Spawns the function below the top nargs values with them as arguments;
   pops them and pushes the Task. On failure pushes a message instead,
   except for a count out of range (negative, or not that many values and
   a function slot below them): TASK_EINVAL, the stack left as it was. */
TASK_LUA_API int task_lua_spawn(lua_State *L, int nargs, task_id *out);
/* Resumes an external id (task.alloc) with the top nvalues values, popped.
   TASK_ENOENT if the id is unknown, already resumed or its waiter gave up.
   A count out of range (negative, or more values than the stack holds):
   TASK_EINVAL, the stack left as it was. */
TASK_LUA_API int task_lua_resume(lua_State *L, task_id ext, int nvalues);
/* The function at idx (nil: the default) gets (err, task, traceback) for
   errors of tasks that nobody waits for. Anything else at idx (a value
   that is not a function, an index out of the stack), or no memory to
   keep it, restores the default handler. */
TASK_LUA_API void task_lua_set_error_handler(lua_State *L, int idx);
/* A per-resume instruction budget for Lua tasks (0: none, the default);
   mode TASK_LUA_PREEMPT or TASK_LUA_RAISE, see HOST SIDE above. */
enum { TASK_LUA_PREEMPT = 0, TASK_LUA_RAISE = 1 };
TASK_LUA_API void task_lua_set_budget(lua_State *L, int instructions, int mode);
/* How many threads of tasks that returned are kept for new tasks
   (TASK_LUA_POOL, 1024, by default; 0 turns the pool off). The collector
   trims the pool to what new tasks took from it since its last cycle.
   TASK_EINVAL for a count outside 0..1000000 (task.pool's range),
   TASK_ENOMEM when out of memory. */
TASK_LUA_API int task_lua_set_pool(lua_State *L, int threads);
/* The clock the binding times resumes with (task.warn_slow, task.profile),
   in the core's unit (ns), best the one the host passes to task_tick. A
   host that sets none cannot use task.warn_slow, and task.profile then
   counts resumes only. The standalone module uses the monotonic clock. */
TASK_LUA_API void task_lua_set_clock(lua_State *L, task_clock_fn clock, void *ud);
/* Pushes the text of task.dump() (every live task, grouped by state, with
   what it waits on and its traceback) for the host to write where it
   wants: a live dump on a signal or a key. Never raises: TASK_ENOMEM
   (with a message pushed instead) when out of memory. */
TASK_LUA_API int task_lua_dump(lua_State *L);
/* Standalone module / generic entry for require: binds to a scheduler of
   its own when the host did not open the module. */
TASK_LUA_API int luaopen_task(lua_State *L);

#ifdef __cplusplus
}
#endif
#endif /* TASK_LUA_H */
#if defined(TASK_LUA_IMPLEMENTATION) && !defined(TASK_LUA__IMPLEMENTED)
#define TASK_LUA__IMPLEMENTED
#include <string.h>
#include <stdio.h>
#ifdef TASK_LUA_MODULE
#include <time.h>
#include <signal.h>
#include <limits.h>
#endif

#if LUA_VERSION_NUM != 504 && LUA_VERSION_NUM != 505
#error "task_lua.h needs Lua 5.4 or 5.5"
#endif
/* What differs between the Lua versions, each named once here. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define TASK__L_CLOSETHREAD(co, from) lua_closethread((co), (from))
#else
#define TASK__L_CLOSETHREAD(co, from) ((void)(from), lua_resetthread(co))
#endif
#ifdef lua_numbertointeger
#define TASK__L_NUM2INT(n, p) lua_numbertointeger((n), (p))
#else /* 5.5 keeps it out of luaconf.h: the same test */
#define TASK__L_NUM2INT(n, p) ((n) >= (lua_Number)(LUA_MININTEGER) && \
    (n) < -(lua_Number)(LUA_MININTEGER) && (*(p) = (lua_Integer)(n), 1))
#endif

/* Registry names of the classes; messages use the part after "task.". */
enum { TASK__L_C_NONE = 0, TASK__L_C_TASK, TASK__L_C_CHAN, TASK__L_C_TIMER, TASK__L_C_TOKEN, TASK__L_C_SCOPE, TASK__L_NCLASS };
static const char *const task__l_class_key[TASK__L_NCLASS] = {
    "", "task.Task", "task.Channel", "task.Timer", "task.CancelToken", "task.Scope"};
#define TASK__L_CLASS_NAME(c) (task__l_class_key[c] + 5)
#define TASK__L_STATE "task.State"

typedef struct task__l_state task__l_state;
typedef struct task__l_task task__l_task;
typedef struct task__l_regq task__l_regq;

/* How the binding woke a task parked on one of its queues (task__l_task.wake);
   the continuation turns it into results in the task's own context, so
   waking never allocates. */
enum { TASK__L_W_NONE = 0, TASK__L_W_VALUE, TASK__L_W_CLOSED, TASK__L_W_SENT, TASK__L_W_FIRED, TASK__L_W_ENDED };

/* An error a plain coroutine.yield() raises when the task runs again. */
enum { TASK__L_RAISE_NONE = 0, TASK__L_RAISE_CANCEL, TASK__L_RAISE_YIELDED, TASK__L_RAISE_DURATION, TASK__L_RAISE_EXTID };

/* What a parked Lua task waits for (task__l_task.waitkind), for reports. */
enum { TASK__L_WK_NONE = 0, TASK__L_WK_YIELD, TASK__L_WK_SLEEP, TASK__L_WK_WAIT, TASK__L_WK_EXT, TASK__L_WK_JOIN, TASK__L_WK_RECV,
       TASK__L_WK_SEND, TASK__L_WK_TIMER, TASK__L_WK_SELECT, TASK__L_WK_SCOPE, TASK__L_WK_RACE };

/* Why a task's thread is no longer the scheduler's (task__l_task.lost). */
enum { TASK__L_LOST_NONE = 0, TASK__L_LOST_RESUMED, TASK__L_LOST_CLOSED };

/* Stack room reserved on a task's thread when it parks: what a waker
   pushes onto it (a value, or the guard) never has to grow the stack. */
#define TASK__L_RESERVE 4

/* One waiting task registered on one awaitable (a select has several). */
typedef struct task__l_reg {
    struct task__l_reg *next, *prev;
    task__l_regq *q;        /* the queue it is in, NULL when not queued */
    task__l_task *task;
    void *obj;         /* the awaitable */
    int kind;          /* TASK__L_C_TASK, TASK__L_C_CHAN or TASK__L_C_TIMER */
    int index;         /* its position in a select list; 0: a direct wait */
    int vidx;          /* a blocked sender: stack index of its value */
} task__l_reg;
struct task__l_regq { task__l_reg *head, *tail; };

struct task__l_task {
    task__l_state *st;
    lua_State *co;
    task_id id;
    task_id extwait;   /* the external id a plain coroutine.yield(id) waits for */
    uint64_t born;
    uint64_t parked_at; /* task_now() when its last resume ended */
    int nstart;        /* arguments of the body, until it starts */
    int npend;         /* values given for the next resume */
    int nres;          /* results left on co when it returned */
    int kbase;         /* stack top of the frame a continuation resumes */
    int won;           /* the select index whose wait completed */
    int joiners;       /* Lua tasks waiting for it (join, select) */
    int nscopes;       /* Lua scopes it owns that are open */
    int nsel;          /* (sel below; here, with the ints, it leaves no padding) */
    double raisenum;   /* the value a TASK__L_RAISE_DURATION error names */
    unsigned char why; /* the TASK_WHY_* of the resume a continuation runs in */
    unsigned char ended, joined, claimed, detached, suspending, code;
    unsigned char plain;    /* parked by a plain coroutine.yield() */
    unsigned char waitkind; /* TASK__L_WK_* */
    unsigned char wake;     /* TASK__L_W_* */
    unsigned char raise;    /* TASK__L_RAISE_* */
    unsigned char raisetype;/* the Lua type a TASK__L_RAISE_YIELDED error names */
    unsigned char lost;     /* TASK__L_LOST_* */
    unsigned char failed;   /* the body ended with an error (on top of co) */
    unsigned char aborting; /* aborted itself where it could not stop at once */
    unsigned char closing;  /* being aborted: its to-be-closed variables run */
    unsigned char gcdone;   /* its __gc ran (possibly by hand) */
    unsigned char anchored; /* its select registrations are anchored in r_parked */
    unsigned char hooking;  /* its step runs the suspend hooks: parked, yet RUN in the core */
    task__l_task *joining;  /* the task it waits for in Task:join */
    task__l_reg direct;     /* a wait on one channel or timer, or a Task:join (index 0) */
    task__l_reg *sel;
    task__l_regq waitq;     /* selects waiting for it to end */
};

typedef struct task__l_chan { lua_Integer cap, count, head; int closed; task__l_regq recvq, sendq; } task__l_chan;
typedef struct task__l_timer { task__l_state *st; task_id id; int fired, cancelled; task__l_regq waitq; } task__l_timer;
typedef struct task__l_token { task__l_state *st; task_id id; int owned; } task__l_token;
typedef struct task__l_scope {
    task_id id;
    task_id timer;      /* its deadline, then its grace period */
    uint64_t grace;     /* from the deadline to the abort; TASK_FOREVER: none */
    task__l_task *owner;
    unsigned char kind, open, failed, expired;
} task__l_scope;

struct task__l_state {
    task_sched *s;
    lua_Alloc lalloc;  /* standalone: the core allocates through Lua's allocator, */
    void *lalloc_ud;   /* counted in core_bytes */
    size_t core_bytes;
    lua_State *L;      /* the main thread */
    task__l_task *cur;      /* the Lua task running now */
    int owns, closed, looping;
    int r_anchors;     /* [slot index] = Task while the task lives, false after */
    uint32_t ahi;      /* anchors has a key at every slot index up to ahi + 1 */
    uint32_t amade;    /* ahi + 1 when that key is known to be made (spawn skips the check) */
    int r_timers;      /* [light Timer] = Timer, while armed */
    int r_ext;         /* [external id] = packed values resumed before the wait */
    int r_scopes;      /* [slot index] = Scope, while open */
    uint32_t shi;      /* r_scopes has a key at every slot index up to shi + 1 */
    int r_parked;      /* [light task__l_task] = select registrations, while parked */
    int r_tb;          /* [light task__l_task] = traceback of the error leaving its body */
    int r_pool;        /* [1..npool] = idle threads of tasks that returned; false above */
    int npool, pool_max; /* task_lua_set_pool; TASK_LUA_POOL by default */
    int pool_taken;    /* threads taken from the pool since the collector's last cycle */
    int r_handler, r_hcreate, r_hterm;
    int r_hresume, r_hsuspend; /* task.hook's switch hooks */
    int r_ready;       /* task.on_ready's callback */
    int r_where;       /* [Task] = "source:line" of its spawn, weak keys, while profiling */
    int watch;         /* a switch hook or the slow-resume warning is set */
    uint64_t slow;     /* task.warn_slow: a resume longer than this is reported; 0: off */
    task_clock_fn clock; void *clock_ud; /* task_lua_set_clock; the module's own monotonic clock */
    int r_taskmt;      /* Task's metatable: spawning skips the lookup by name */
    int r_body;        /* the closure every task's thread starts in */
    const void *mt[TASK__L_NCLASS]; /* metatables, for type checks that run no code */
    int budget, budget_mode, spent;
    int64_t stuck;     /* instructions a preempted resume ran where it could not yield */
};

static const char task__l_statekey = 's';  /* addresses only: registry keys */
static const char task__l_modkey = 'm';
static const char task__l_originkey = 'o'; /* the Task whose error was last handed to a joiner */

static int task__l_step(task_ctx *c);

/* ---- small helpers ---------------------------------------------------- */

/* Every entry point after the module's state is gone (a finalizer that
   runs late in lua_close) raises, naming the function it can find. */
static int task__l_closed_error(lua_State *L) {
    lua_Debug ar;
    const char *fn = "task";
    if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name) fn = ar.name;
    return luaL_error(L, "%s: the task module is closed", fn);
}

static inline task__l_state *task__l_st(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    if (st->closed) task__l_closed_error(L);
    return st;
}

static task__l_state *task__l_state_of(lua_State *L) {
    task__l_state *st;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &task__l_statekey);
    st = (task__l_state *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st && st->s && !st->closed ? st : NULL;
}

/* Can the host functions make calls on L? Not on a suspended coroutine (a
   task's thread that a C function kept, as a host that completes I/O later
   does) or one that died in an error: lua_pcall there breaks the Lua API's
   rules. They then work on the main thread, moving values across. */
static int task__l_callable(lua_State *L) { return lua_status(L) == LUA_OK; }

static lua_State *task__l_mainthread(lua_State *L) {
    lua_State *M;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    M = lua_tothread(L, -1);
    lua_pop(L, 1);
    return M;
}

/* Moves what a call on M pushed above top back to L; TASK_ENOMEM (and
   nothing on L) when L has no room for it. */
static int task__l_moveback(lua_State *M, int top, lua_State *L, int rc) {
    int n = lua_gettop(M) - top;
    if (n <= 0) return rc;
    if (!lua_checkstack(L, n)) { lua_settop(M, top); return TASK_ENOMEM; }
    lua_xmove(M, L, n);
    return rc;
}

static int task__l_raise_cancelled(lua_State *L) {
    lua_pushliteral(L, "task cancelled");
    return lua_error(L);
}

static int task__l_raise_literal(lua_State *L, const char *msg) {
    lua_pushstring(L, msg);
    return lua_error(L);
}

static void task__l_getref(lua_State *L, int ref) { lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }

/* The class of the value at idx, by its metatable; runs no metamethod. */
static int task__l_classof(lua_State *L, int idx, const task__l_state *st) {
    const void *mt;
    int c;
    if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return TASK__L_C_NONE;
    mt = lua_topointer(L, -1);
    lua_pop(L, 1);
    for (c = 1; c < TASK__L_NCLASS; c++)
        if (st->mt[c] == mt) return c;
    return TASK__L_C_NONE;
}

/* Is the value at idx of class cls? One metatable compare. Inline, as
   task__l_check and task__l_st: they run in every method call. */
static inline int task__l_is(lua_State *L, int idx, const task__l_state *st, int cls) {
    int r;
    if (!lua_getmetatable(L, idx)) return 0; /* also for values that have none */
    r = lua_topointer(L, -1) == st->mt[cls] && lua_type(L, idx) == LUA_TUSERDATA;
    lua_pop(L, 1);
    return r;
}

static inline void *task__l_check(lua_State *L, const task__l_state *st, int idx, int cls) {
    if (!task__l_is(L, idx, st, cls)) luaL_typeerror(L, idx, TASK__L_CLASS_NAME(cls));
    return lua_touserdata(L, idx);
}

/* For metamethods, which may run after the state closed (finalizers). */
static void *task__l_check_raw(lua_State *L, int idx, int cls) {
    return task__l_check(L, (const task__l_state *)lua_touserdata(L, lua_upvalueindex(1)), idx, cls);
}

#define task__l_checktask(L, st, i) ((task__l_task *)task__l_check((L), (st), (i), TASK__L_C_TASK))

/* A cancelled task raises at every suspending call, also one that could
   complete at once, as Trio's checkpoints do. */
static void task__l_checkcancel(lua_State *L, task__l_state *st) {
    if (st->cur && task_self_cancelled(st->s)) task__l_raise_cancelled(L);
}

/* The running task, which L must be able to suspend; reserves the stack
   room wakers use. Called before anything is arranged with the core. */
static task__l_task *task__l_need(lua_State *L, task__l_state *st, const char *fn) {
    task__l_task *t = st->cur;
    const char *why = NULL;
    if (t && t->aborting && !t->closing) task__l_raise_literal(L, "task aborted");
    if (!t) why = "must be called from inside a task";
    else if (t->closing) why = "cannot suspend while the task is being aborted";
    else if (t->co != L) why = "cannot suspend from a coroutine nested inside a task";
    else if (!lua_isyieldable(L)) why = "cannot suspend here (a metamethod or C function that does not allow yields)";
    if (why) luaL_error(L, "%s: %s", fn, why);
    if (!lua_checkstack(L, TASK__L_RESERVE)) luaL_error(L, "%s: stack overflow", fn);
    return t;
}

/* A core error as a Lua error: the core's own message, with the Lua
   function's name in place of the C one. */
static int task__l_fail(lua_State *L, task__l_state *st, int rc, const char *fn) {
    const char *m = task_errmsg(st->s), *p;
    if (rc == TASK_ECANCELED) return task__l_raise_cancelled(L);
    if (rc == TASK_ENOMEM) return luaL_error(L, "%s: not enough memory", fn);
    p = strstr(m, ": ");
    return luaL_error(L, "%s: %s", fn, p ? p + 2 : task_strerror(rc));
}

/* Durations: milliseconds, numbers or numeric strings (Lua's usual
   coercion), fractions allowed, 0 up to what the clock can hold. */
#define TASK__L_MS_MAX 9.2e12  /* 2^63 ns, rounded down: about 292 years */

/* lua_error, as everywhere a hook may raise (luaL_error from a C
   function adds no position anyway). */
static int task__l_badms(lua_State *L, double ms, const char *fn) {
    lua_Integer i;
    if (ms != ms) lua_pushfstring(L, "%s: invalid duration (ms=nan)", fn);
    else if (ms - ms != 0) lua_pushfstring(L, "%s: invalid duration (ms=%s)", fn, ms > 0 ? "inf" : "-inf");
    else {
        if (ms == (double)(lua_Number)ms && TASK__L_NUM2INT((lua_Number)ms, &i) && (double)i == ms)
            lua_pushinteger(L, i);
        else lua_pushnumber(L, (lua_Number)ms);
        lua_pushfstring(L, "%s: invalid duration (ms=%s)", fn, luaL_tolstring(L, -1, NULL));
    }
    return lua_error(L);
}

static int task__l_msok(double ms) { return ms >= 0 && ms <= TASK__L_MS_MAX; }

static uint64_t task__l_ms2ns(double ms) { return (uint64_t)(ms * 1e6); }

/* Milliseconds at idx to the core's nanoseconds, or an error naming fn. */
static uint64_t task__l_checkms(lua_State *L, int idx, const char *fn) {
    lua_Number ms = luaL_checknumber(L, idx);
    if (!task__l_msok(ms)) task__l_badms(L, ms, fn);
    return task__l_ms2ns(ms);
}

static double task__l_ms(uint64_t ns) { return (double)ns / 1e6; }

/* Parks the running task (already arranged with the core): the
   continuation k gets the task as its context. */
static int task__l_park(lua_State *L, task__l_task *t, int code, int kind, lua_KFunction k) {
    t->waitkind = (unsigned char)kind;
    t->suspending = 1;
    t->code = (unsigned char)code;
    t->kbase = lua_gettop(L);
    t->wake = TASK__L_W_NONE;
    return lua_yieldk(L, 0, (lua_KContext)t, k);
}

static void task__l_pushtask(lua_State *L, task__l_state *st, task__l_task *t) {
    task__l_getref(L, st->r_anchors);
    lua_rawgeti(L, -1, (lua_Integer)(uint32_t)t->id);
    lua_remove(L, -2);
}

/* ---- wait registrations ----------------------------------------------- */

static void task__l_q_push(task__l_regq *q, task__l_reg *r) {
    r->q = q;
    r->next = NULL;
    r->prev = q->tail;
    if (q->tail) q->tail->next = r; else q->head = r;
    q->tail = r;
}

static void task__l_q_del(task__l_reg *r) {
    task__l_regq *q = r->q;
    if (!q) return;
    if (r->prev) r->prev->next = r->next; else q->head = r->next;
    if (r->next) r->next->prev = r->prev; else q->tail = r->prev;
    r->q = NULL;
    r->next = r->prev = NULL;
    if (r->kind == TASK__L_C_TASK) ((task__l_task *)r->obj)->joiners--;
}

static void task__l_reg_add(task__l_reg *r, task__l_task *t, void *obj, int kind, int index, task__l_regq *q) {
    r->task = t;
    r->obj = obj;
    r->kind = kind;
    r->index = index;
    r->vidx = 0;
    task__l_q_push(q, r);
    if (kind == TASK__L_C_TASK) ((task__l_task *)obj)->joiners++;
}

/* Takes t off every queue it waits in; plain C, so it is safe anywhere. */
static void task__l_unqueue(task__l_task *t) {
    int i;
    task__l_q_del(&t->direct);
    for (i = 0; i < t->nsel; i++) task__l_q_del(&t->sel[i]);
    t->sel = NULL;
    t->nsel = 0;
    t->joining = NULL; /* its registration was t->direct */
}

/* Anchors the registrations at idx (a userdata) while t waits in a
   select or race; they live off its stack, which others could unwind. */
static void task__l_anchor_sel(lua_State *L, task__l_state *st, task__l_task *t, int idx) {
    idx = lua_absindex(L, idx);
    task__l_getref(L, st->r_parked);
    lua_pushvalue(L, idx);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
    t->anchored = 1;
}

/* Drops that anchor (no allocation). */
static void task__l_unanchor_sel(lua_State *L, task__l_state *st, task__l_task *t) {
    if (!t->anchored) return;
    task__l_getref(L, st->r_parked);
    lua_pushnil(L);
    lua_rawsetp(L, -2, t);
    lua_pop(L, 1);
    t->anchored = 0;
}

/* r's wait is satisfied: values (if any) are already on its thread. A
   task still in its step (task__l_waits) is not WAIT yet: its step sees
   t->wake and runs it again at once. */
static void task__l_complete(task__l_state *st, task__l_reg *r, int wake) {
    task__l_task *t = r->task;
    t->won = r->index;
    t->wake = (unsigned char)wake;
    task__l_unqueue(t);
    if (!t->hooking) task_unpark(st->s, t->id, NULL);
}

/* Its thread was closed outside the scheduler while it waited: nothing
   may be handed to it; the scheduler ends it with an error. */
static void task__l_thread_lost(task__l_state *st, task__l_task *t) {
    task__l_unqueue(t);
    if (!t->lost) t->lost = TASK__L_LOST_CLOSED;
    task_abort(st->s, t->id);
}

/* Does t still wait? WAIT, or parked by a step that has not returned: a
   suspend hook (task.hook, task.warn_slow's handler) runs Lua code then,
   and what it sends or closes must reach t. */
static int task__l_waits(task__l_state *st, task__l_task *t) {
    if (t->hooking) return t->wake == TASK__L_W_NONE && task_cancelled(st->s, t->id) == 0;
    return task_status(st->s, t->id) == TASK_WAIT;
}

/* The first registration of q whose task still waits. One cancelled or
   aborted while parked is READY already and must not be handed a value;
   one whose thread was closed from outside is ended. */
static task__l_reg *task__l_q_first(task__l_state *st, task__l_regq *q) {
    while (q->head) {
        task__l_task *t = q->head->task;
        if (lua_status(t->co) != LUA_YIELD) task__l_thread_lost(st, t);
        else if (!task__l_waits(st, t)) task__l_q_del(q->head);
        else return q->head;
    }
    return NULL;
}

static void task__l_complete_all(task__l_state *st, task__l_regq *q, int wake) {
    task__l_reg *r;
    while ((r = task__l_q_first(st, q)) != NULL) task__l_complete(st, r, wake);
}

/* Pushes values onto a parked task's thread for its next resume; the
   room was reserved when it parked. */
static void task__l_give(lua_State *L, task__l_task *t, int n) {
    lua_xmove(L, t->co, n);
    t->npend += n;
}

/* ---- reporting errors --------------------------------------------------- */

/* msg for an error value that may not be a string, or whose __tostring fails */
static int task__l_tostring_p(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static const char *task__l_errstr(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, task__l_tostring_p);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_isstring(L, -1)) {
        lua_pop(L, 1);
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
    }
    return lua_tostring(L, -1);
}

/* A Task's second user value is its name (or nil) until it fails, then a
   table {name, err, tb}: the common task keeps nothing more. Pushes one
   of "name", "err", "tb" of the Task at idx. */
static void task__l_info(lua_State *L, int idx, const char *field) {
    if (lua_getiuservalue(L, idx, 2) == LUA_TTABLE) {
        lua_getfield(L, -1, field);
        lua_remove(L, -2);
    } else if (field[0] != 'n') {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* The default handler: (err, task, traceback) -> one line, then the traceback. */
static int task__l_default_handler(lua_State *L) {
    const char *msg = task__l_errstr(L, 1), *name = "task";
    lua_Integer id = 0;
    task__l_state *st = task__l_state_of(L);
    if (st && task__l_classof(L, 2, st) == TASK__L_C_TASK) {
        id = (lua_Integer)((task__l_task *)lua_touserdata(L, 2))->id;
        task__l_info(L, 2, "name");
        if (lua_isstring(L, -1)) name = lua_tostring(L, -1);
    }
    fprintf(stderr, "task %lld (%s): %s\n", (long long)id, name, msg);
    if (lua_isstring(L, 3)) fprintf(stderr, "%s\n", lua_tostring(L, 3));
    fflush(stderr);
    return 0;
}

/* Calls the error handler with (err, task, traceback) on top of L. */
static void task__l_report(lua_State *L, task__l_state *st) {
    int base = lua_gettop(L) - 3;
    if (st->r_handler != LUA_NOREF) task__l_getref(L, st->r_handler);
    else lua_pushcfunction(L, task__l_default_handler);
    lua_insert(L, base + 1);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) { /* a failing handler: say so, once */
        fprintf(stderr, "task: error handler failed: %s\n", task__l_errstr(L, -1));
        lua_pop(L, 2);
    }
}

/* Runs f(st, Task, arg) protected on the main thread: the executor's Lua
   work outside the task's own thread (it may be dead or closing). */
static int task__l_call_p(task__l_state *st, lua_CFunction f, task__l_task *t, lua_Integer arg) {
    lua_State *L = st->L;
    if (!lua_checkstack(L, 4)) return 0;
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, st);
    task__l_pushtask(L, st, t);
    lua_pushinteger(L, arg);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) { lua_pop(L, 1); return 0; } /* out of memory */
    return 1;
}

/* ---- hooks on task threads -------------------------------------------- */

static task__l_state *task__l_hook_state(lua_State *L) {
    task__l_state *st;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &task__l_statekey);
    st = (task__l_state *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st && !st->closed ? st : NULL;
}

/* A preempted task stuck where it cannot yield gets this many more
   budgets, then fails as TASK_LUA_RAISE would. */
#define TASK__L_STUCK_BUDGETS 100

/* How often the budget hook fires on threads other than the running
   task's own (coroutines it resumes, and code outside tasks). */
static int task__l_budget_step(const task__l_state *st) { return st->budget / 8 + 1; }

/* The instruction budget (task_lua_set_budget). On the running task's
   own thread the count is the whole budget, set at every resume; any
   other thread (a coroutine the task resumes, whoever created it) adds
   its count to what the resume has spent, so no code run on behalf of a
   task escapes the budget. */
static void task__l_budget_hook(lua_State *L, lua_Debug *ar) {
    task__l_state *st = task__l_hook_state(L);
    task__l_task *t;
    int n;
    if (!st || st->budget <= 0 || (t = st->cur) == NULL) return;
    if (t->co == L) {
        if (st->budget_mode == TASK_LUA_PREEMPT && !t->closing) {
            if (ar->event == LUA_HOOKCOUNT && lua_isyieldable(L)) {
                lua_yield(L, 0); /* a plain yield: READY at the next tick */
                return;
            }
            /* Inside a call that cannot yield (table.sort's comparator, a
               string.gsub callback, a metamethod called from C): try again
               every step, and after TASK__L_STUCK_BUDGETS more budgets
               there, raise: a loop that never gets back to code that can
               yield would hold the host for good. */
            n = task__l_budget_step(st);
            st->stuck += n;
            if (st->stuck < (int64_t)st->budget * TASK__L_STUCK_BUDGETS) {
                lua_sethook(L, task__l_budget_hook, LUA_MASKCOUNT, n); /* at the next count that can */
                return;
            }
        }
        lua_sethook(L, task__l_budget_hook, LUA_MASKCOUNT, 1); /* level-triggered */
        task__l_raise_literal(L, "task exceeded its budget");
        return;
    }
    n = lua_gethookcount(L);
    st->spent += n;
    if (st->spent >= st->budget) {
        if (n != 1) lua_sethook(L, task__l_budget_hook, LUA_MASKCOUNT, 1);
        task__l_raise_literal(L, "task exceeded its budget");
        return;
    }
    if (n != task__l_budget_step(st)) lua_sethook(L, task__l_budget_hook, LUA_MASKCOUNT, task__l_budget_step(st));
}

/* Armed on the thread of a task parked by a plain coroutine.yield(): if
   anything runs on it, someone other than the scheduler resumed it. It
   keeps raising until the error leaves the task's body. */
static int task__l_in_body(lua_State *L);

static void task__l_guard_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (!task__l_in_body(L)) { /* its thread is being closed: let its __close run */
        lua_sethook(L, NULL, 0, 0);
        return;
    }
    task__l_raise_literal(L, "coroutine.resume: cannot resume a task's thread outside the scheduler");
}

static int task__l_is_ours(lua_Hook h);

/* Raises, at the first event after the scheduler resumes a plain
   coroutine.yield(), the error that yield earned (cancellation, a value
   that is not a duration or an external id). */
static void task__l_raise_hook(lua_State *L, lua_Debug *ar) {
    task__l_state *st = task__l_hook_state(L);
    task__l_task *t = st ? st->cur : NULL;
    int code;
    (void)ar;
    if (!t || t->co != L) { lua_sethook(L, NULL, 0, 0); return; }
    code = t->raise;
    t->raise = TASK__L_RAISE_NONE;
    if (st->budget > 0) lua_sethook(L, task__l_budget_hook, LUA_MASKCOUNT, st->budget);
    else lua_sethook(L, NULL, 0, 0);
    /* lua_error, not luaL_error: a return hook may run where the frame's
       values are gone, and luaL_error's concatenation would reach below
       them (a position would say nothing here anyway) */
    switch (code) {
    case TASK__L_RAISE_CANCEL: task__l_raise_cancelled(L); break;
    case TASK__L_RAISE_DURATION: task__l_badms(L, t->raisenum, "coroutine.yield"); break;
    case TASK__L_RAISE_EXTID:
        task__l_raise_literal(L, "coroutine.yield: unknown, already used or stale external id");
        break;
    case TASK__L_RAISE_YIELDED:
        lua_pushfstring(L, "coroutine.yield: a task yields nothing (task.yield), a duration in ms "
                           "(task.sleep) or an external id (task.wait), not a %s",
                        lua_typename(L, t->raisetype));
        lua_error(L);
        break;
    default: break;
    }
}

#ifdef TASK_LUA_MODULE
static void task__l_interrupt_hook(lua_State *L, lua_Debug *ar);
#define TASK__L_INTERRUPT_HOOK(h) ((h) == task__l_interrupt_hook)
#else
#define TASK__L_INTERRUPT_HOOK(h) 0
#endif

static int task__l_is_ours(lua_Hook h) {
    return h == task__l_budget_hook || h == task__l_guard_hook || h == task__l_raise_hook || TASK__L_INTERRUPT_HOOK(h);
}

/* Before the scheduler runs a task's to-be-closed variables outside a
   resume (abort, a thread that died): the budget, or none of ours. */
static void task__l_arm_close(task__l_state *st, lua_State *co) {
    if (st->budget > 0) lua_sethook(co, task__l_budget_hook, LUA_MASKCOUNT, st->budget);
    else if (lua_gethook(co) && task__l_is_ours(lua_gethook(co))) lua_sethook(co, NULL, 0, 0);
}

/* Before a resume: the hook this resume needs, and none of ours left
   over from the last park (a hook the script set itself stays). */
static void task__l_arm(task__l_state *st, task__l_task *t, int why) {
    lua_State *co = t->co;
    if (t->plain) {
        t->plain = 0;
        if (!t->raise && (why == TASK_WHY_CANCEL || task_self_cancelled(st->s))) t->raise = TASK__L_RAISE_CANCEL;
    }
    if (t->raise) lua_sethook(co, task__l_raise_hook, LUA_MASKCOUNT | LUA_MASKRET, 1);
    else if (st->budget > 0) lua_sethook(co, task__l_budget_hook, LUA_MASKCOUNT, st->budget);
    else if (lua_gethook(co) && task__l_is_ours(lua_gethook(co))) lua_sethook(co, NULL, 0, 0);
}

/* ---- the executor: how the core runs a Lua task ------------------------ */

/* The message handler of a task's body: keeps the traceback of where an
   error was raised (r_tb[task]) for the executor, and leaves the error
   itself as it is, for the to-be-closed variables that see it. */
static int task__l_msgh(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    task__l_task *t = st->cur;
    size_t n;
    const char *tb;
    if (st->closed || !t || t->co != L) return 1; /* not the scheduler's resume */
    lua_settop(L, 1);
    /* a cancellation is no one's error: its traceback (a scan of
       package.loaded for names, microseconds) would never be read */
    if (lua_type(L, 1) == LUA_TSTRING && task_cancelled(st->s, t->id) == 1 && strcmp(lua_tostring(L, 1), "task cancelled") == 0)
        return 1;
    luaL_traceback(L, L, NULL, 1);
    /* the last frame is the body's own C trampoline: no use to anyone */
    tb = lua_tolstring(L, 2, &n);
    if (n >= 11 && strcmp(tb + n - 11, "\n\t[C]: in ?") == 0) {
        lua_pushlstring(L, tb, n - 11);
        lua_replace(L, 2);
    }
    task__l_getref(L, st->r_tb);
    lua_insert(L, 2);
    lua_rawsetp(L, 2, t);
    lua_settop(L, 1);
    return 1;
}

/* Pushes the traceback the body's message handler kept for t (or nil),
   and forgets it. */
static void task__l_take_tb(lua_State *L, task__l_state *st, task__l_task *t) {
    task__l_getref(L, st->r_tb);
    lua_rawgetp(L, -1, t);
    lua_pushnil(L);
    lua_rawsetp(L, -3, t);
    lua_remove(L, -2);
}

static int task__l_foreign(lua_State *L, task__l_task *t);

/* The body ended: its results, or its error (then t->failed). */
static int task__l_body_k(lua_State *L, int status, lua_KContext ctx) {
    task__l_task *t = (task__l_task *)ctx;
    if (t->st->cur != t) { /* unwinding a resume that was not the scheduler's */
        if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
        return task__l_foreign(L, t);
    }
    if (status != LUA_OK && status != LUA_YIELD) {
        t->failed = 1;
        return 1;
    }
    return lua_gettop(L) - 2;
}

/* Every task's thread starts here: (fn, args...) runs under a yieldable
   protected call, so an error unwinds inside the task, where the
   to-be-closed variables it closes may still suspend. Below it, the Task
   itself is a to-be-closed variable: a coroutine.close of the thread from
   outside runs its __close, and the scheduler learns of it at once. */
static int task__l_body(lua_State *L) { /* Task, fn, args... */
    task__l_task *t = (task__l_task *)lua_touserdata(L, 1);
    int n = lua_gettop(L) - 2;
    lua_toclose(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1)); /* task__l_msgh */
    lua_insert(L, 2);
    return task__l_body_k(L, lua_pcallk(L, n, LUA_MULTRET, 2, (lua_KContext)t, task__l_body_k), (lua_KContext)t);
}

/* Is a task's body (task__l_body) at the bottom of L's calls? Not when its
   thread is being closed: closing unwinds the calls first. */
static int task__l_in_body(lua_State *L) {
    lua_Debug ar;
    int level = 0, r;
    while (lua_getstack(L, level + 1, &ar)) level++;
    if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "f", &ar)) return 0;
    r = lua_tocfunction(L, -1) == task__l_body;
    lua_pop(L, 1);
    return r;
}

/* On top of a task's thread whenever it is not running or parked (before
   it starts, after it returned): a coroutine.resume from outside calls it
   instead of the task's function or results. */
static int task__l_guard(lua_State *L) {
    return task__l_raise_literal(L, "coroutine.resume: cannot resume a task's thread outside the scheduler");
}

/* A continuation ran in a resume that was not the scheduler's: the task
   lost its thread. It waits for nothing any more, the scheduler ends it
   with an error at its next turn, and the resume fails with the same. */
static int task__l_foreign(lua_State *L, task__l_task *t) {
    task__l_state *st = t->st;
    /* The error must leave the task's body: raised again at every call,
       return and instruction, a pcall in the body cannot swallow it and
       run the task's code on in the resumer (a finalizer at lua_close, a
       loop no budget counts). */
    lua_sethook(L, task__l_guard_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    if (st->closed) return luaL_error(L, "task: the task module is closed");
    task__l_unqueue(t);
    task__l_unanchor_sel(L, st, t);
    if (!t->lost) t->lost = TASK__L_LOST_RESUMED;
    if (!t->ended) task_abort(st->s, t->id);
    return task__l_raise_literal(L, "coroutine.resume: cannot resume a task's thread outside the scheduler");
}

/* The prologue of every continuation: ctx is the task. */
#define TASK__L_RESUMED(L, ctx, t) \
    task__l_task *t = (task__l_task *)(ctx); \
    if (t->st->cur != t) return task__l_foreign((L), t)

static task__l_task *task__l_luatask(task__l_state *st, task_id id) {
    task__l_task *t;
    task_fn fn;
    void *ud;
    if (task_step_of(st->s, id, &fn) != TASK_OK || fn != task__l_step) return NULL;
    task_userdata(st->s, id, &ud);
    t = (task__l_task *)ud;
    return t && t->st == st ? t : NULL;
}

/* ---- the end of a task ------------------------------------------------ */

static void task__l_run_hook(task__l_state *st, task__l_task *t, int term);

/* Protected: routes the error of a task nobody waits for. Stack: st, Task. */
static int task__l_route_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    task__l_task *t = (task__l_task *)lua_touserdata(L, 2);
    task_id sid, owner;
    lua_settop(L, 2);
    task__l_info(L, 2, "err");
    /* cancellation that ends a cancelled task is not an error */
    if (lua_type(L, 3) == LUA_TSTRING && strcmp(lua_tostring(L, 3), "task cancelled") == 0 &&
        task_cancelled(st->s, t->id) == 1)
        return 0;
    if (t->claimed || t->joiners > 0) return 0;
    if (!t->detached && task_scope_of(st->s, t->id, &sid) == TASK_OK && sid != 0 &&
        task_scope_owner(st->s, sid, &owner) == TASK_OK && owner != 0) {
        task__l_getref(L, st->r_scopes);
        lua_rawgeti(L, -1, (lua_Integer)(uint32_t)sid);
        if (task__l_classof(L, -1, st) == TASK__L_C_SCOPE && ((task__l_scope *)lua_touserdata(L, -1))->id == sid) {
            task__l_scope *sc = (task__l_scope *)lua_touserdata(L, -1);
            if (!sc->failed) { /* the scope re-raises the first one */
                lua_pushvalue(L, 3);
                lua_setiuservalue(L, -2, 2);
                lua_pushvalue(L, 2);
                lua_setiuservalue(L, -2, 3);
                sc->failed = 1;
            }
            task_scope_cancel(st->s, sid);
            return 0;
        }
        lua_settop(L, 3);
    }
    lua_pushvalue(L, 2);
    task__l_info(L, 2, "tb");
    task__l_report(L, st);
    return 0;
}

/* Protected: reports an error that a to-be-closed variable raised while
   its task was aborted. Stack: st, Task; the error on top of co. */
static int task__l_close_failed_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    task__l_task *t = (task__l_task *)lua_touserdata(L, 2);
    lua_settop(L, 2);
    lua_xmove(t->co, L, 1);
    lua_pushvalue(L, 2);
    lua_pushnil(L);
    task__l_report(L, st);
    return 0;
}

static void task__l_scope_end(lua_State *L, task__l_state *st, task__l_scope *sc);

/* Protected: the scopes a task still owns when it ends (it was aborted,
   or lost its thread) end with it; an error one of them kept for an owner
   that will never re-raise it goes to the error handler. Stack: st, Task. */
static int task__l_orphans_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    task__l_task *t = (task__l_task *)lua_touserdata(L, 2);
    lua_settop(L, 2);
    task__l_getref(L, st->r_scopes);
    lua_pushnil(L);
    while (t->nscopes > 0 && lua_next(L, 3)) {
        if (task__l_classof(L, -1, st) == TASK__L_C_SCOPE && ((task__l_scope *)lua_touserdata(L, -1))->owner == t) {
            task__l_scope *sc = (task__l_scope *)lua_touserdata(L, -1);
            int failed = sc->failed, sci = lua_gettop(L);
            task__l_scope_end(L, st, sc); /* keeps the key: the traversal goes on */
            if (failed) {
                lua_getiuservalue(L, sci, 2);
                if (lua_getiuservalue(L, sci, 3) == LUA_TUSERDATA && task__l_classof(L, -1, st) == TASK__L_C_TASK)
                    task__l_info(L, -1, "tb");
                else lua_pushnil(L);
                task__l_report(L, st);
            }
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* The thread of a task that returned and whose results were taken goes
   back to the pool, unless the pool is full or the thread was touched
   from outside: its stack is empty, its to-be-closed variables and
   upvalues were closed when the body returned, and no hook is left, so
   nothing of the old task reaches the next one. taskidx: the Task on L,
   which lets go of the thread. Allocates nothing. */
static void task__l_pool_put(lua_State *L, task__l_state *st, task__l_task *x, int taskidx) {
    lua_State *co = x->co;
    if (!co || x->lost || st->npool >= st->pool_max || lua_status(co) != LUA_OK) return;
    if (lua_gethook(co)) lua_sethook(co, NULL, 0, 0);
    lua_settop(co, 0);
    taskidx = lua_absindex(L, taskidx);
    task__l_getref(L, st->r_pool);
    lua_getiuservalue(L, taskidx, 1);
    lua_rawseti(L, -2, ++st->npool);
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_setiuservalue(L, taskidx, 1);
    x->co = NULL;
}

/* Keeps at most n idle threads: the rest go to the collector. */
static void task__l_pool_trim(lua_State *L, task__l_state *st, int n) {
    if (st->npool <= n) return;
    task__l_getref(L, st->r_pool);
    while (st->npool > n) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, -2, st->npool--);
    }
    lua_pop(L, 1);
}

/* Once per collector cycle (a finalizer that makes its successor): the
   pool keeps as many threads as new tasks took from it since the last
   cycle, so a burst's threads do not stay forever. */
static int task__l_pool_cycle(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    if (!st->s) return 0; /* the module's state is gone: the chain ends */
    if (!st->closed) { /* (still opening: a cycle may end in the middle) */
        task__l_pool_trim(L, st, st->pool_taken);
        st->pool_taken = 0;
    }
    lua_newuserdatauv(L, 0, 0);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_setmetatable(L, -2);
    return 0;
}

/* It ended: anything it still waited on is dropped, selects waiting for
   it complete, errors nobody will take are routed, the term hook runs and
   the core no longer keeps its Task alive. */
static void task__l_end(task__l_state *st, task__l_task *t, int how) {
    lua_State *L = st->L;
    task__l_reg *r;
    t->ended = (unsigned char)how;
    task__l_unqueue(t);
    if (t->anchored && lua_checkstack(L, 3)) task__l_unanchor_sel(L, st, t);
    /* Only a waiter still parked takes the error: one cancelled at this
       tick (READY, not resumed yet) raises "task cancelled" instead, and
       the error must go to the handler or the scope. */
    while ((r = task__l_q_first(st, &t->waitq)) != NULL) {
        if (how == TASK_EXIT_FAIL) t->claimed = 1;
        if (r->index == 0) task__l_q_del(r); /* a Task:join: the core wakes it */
        else task__l_complete(st, r, TASK__L_W_ENDED);
    }
    if (how == TASK_EXIT_FAIL) task__l_call_p(st, task__l_route_p, t, 0);
    if (t->nscopes > 0) task__l_call_p(st, task__l_orphans_p, t, 0);
    task__l_run_hook(st, t, 1);
    if (lua_checkstack(L, 4)) {
        lua_Integer slot = (lua_Integer)(uint32_t)t->id;
        task__l_getref(L, st->r_anchors);
        if (how == TASK_EXIT_DONE && t->nres == 0) { /* nothing to take: its thread is free now */
            if (lua_rawgeti(L, -1, slot) == LUA_TUSERDATA) task__l_pool_put(L, st, t, -1);
            lua_pop(L, 1);
        }
        lua_pushboolean(L, 0); /* false, not nil: the key stays, so nothing allocates */
        lua_rawseti(L, -2, slot);
        lua_pop(L, 1);
    }
}

/* Is co running now? Outside its resumes, a task's thread runs only while
   a coroutine.close from outside the scheduler runs its __close
   metamethods and one of them calls back in (task.step, task.run):
   closing or emptying it from here would unwind the frames that called. */
static int task__l_busy(lua_State *co) {
    lua_Debug ar;
    return lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar);
}

/* Protected: keeps the error and its traceback in the Task, then closes
   the thread so any to-be-closed variables still open run (unless it is
   being closed already: task__l_busy). Stack: st, Task, lost. The error
   is on top of the thread unless lost. */
static int task__l_failed_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    task__l_task *t = (task__l_task *)lua_touserdata(L, 2), *saved;
    lua_State *co = t->co;
    int status, lost = (int)lua_tointeger(L, 3);
    lua_settop(L, 2);
    lua_createtable(L, 0, 3);
    lua_getiuservalue(L, 2, 2);
    lua_setfield(L, 3, "name");
    if (lost) {
        lua_pushstring(L, lost == TASK__L_LOST_CLOSED
                              ? "task thread closed outside the scheduler (coroutine.close)"
                              : "coroutine.resume: cannot resume a task's thread outside the scheduler");
        lua_setfield(L, 3, "err");
    } else {
        task__l_take_tb(L, st, t); /* what the body's message handler kept */
        if (lua_status(co) != LUA_OK) { /* died with its frames: they tell more */
            lua_pop(L, 1);
            luaL_traceback(L, co, NULL, 0);
        }
        lua_setfield(L, 3, "tb");
        lua_xmove(co, L, 1);
        /* the error of a task it joined, raised again: where it began */
        if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task__l_originkey) == LUA_TUSERDATA) {
            int o = lua_gettop(L);
            task__l_info(L, o, "err");
            if (lua_rawequal(L, -1, o - 1)) {
                task__l_info(L, o, "otb");
                if (lua_isnil(L, -1)) { lua_pop(L, 1); task__l_info(L, o, "tb"); }
                lua_setfield(L, 3, "otb");
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        lua_setfield(L, 3, "err");
    }
    if (task__l_busy(co)) { /* its closer goes on with it */
        lua_setiuservalue(L, 2, 2);
        return 0;
    }
    task__l_arm_close(st, co);
    saved = st->cur;
    t->closing = 1;
    st->cur = t;
    status = TASK__L_CLOSETHREAD(co, L);
    st->cur = saved;
    t->closing = 0;
    if (status != LUA_OK && !lost) { /* a __close failed: its error replaces the first */
        lua_xmove(co, L, 1);
        lua_setfield(L, 3, "err");
    }
    lua_setiuservalue(L, 2, 2);
    return 0;
}

/* It failed, or its thread was taken from the scheduler (lost). */
static int task__l_fail_task(task__l_state *st, task__l_task *t) {
    if (!task__l_call_p(st, task__l_failed_p, t, t->lost) && !task__l_busy(t->co)) {
        task__l_arm_close(st, t->co);
        (void)TASK__L_CLOSETHREAD(t->co, st->L);
    }
    t->npend = 0;
    task__l_end(st, t, TASK_EXIT_FAIL);
    return TASK_STEP_FAIL;
}

static void task__l_abort(task__l_state *st, task__l_task *t) {
    task__l_task *saved = st->cur;
    int status;
    if (t->ended) return;
    if (!t->lost && task__l_busy(t->co)) t->lost = TASK__L_LOST_CLOSED; /* closed from outside right now */
    if (t->lost) { task__l_fail_task(st, t); return; }
    task__l_unqueue(t);
    task__l_arm_close(st, t->co);
    t->closing = 1;
    st->cur = t;
    status = TASK__L_CLOSETHREAD(t->co, st->L);
    st->cur = saved;
    t->closing = 0;
    t->npend = 0;
    if (status != LUA_OK) task__l_call_p(st, task__l_close_failed_p, t, 0);
    lua_settop(t->co, 0);
    task__l_end(st, t, TASK_EXIT_ABORT);
}

/* Protected: moves the values resumed into t->extwait before the wait
   (kept in r_ext) onto its thread. Stack: st, Task. */
static int task__l_ext_pull_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    task__l_task *t = (task__l_task *)lua_touserdata(L, 2);
    lua_Integer id = (lua_Integer)t->extwait;
    int n, i;
    lua_settop(L, 2);
    task__l_getref(L, st->r_ext);
    if (lua_rawgeti(L, -1, id) != LUA_TTABLE) return 0;
    lua_getfield(L, 4, "n");
    n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (!lua_checkstack(t->co, n)) return luaL_error(L, "stack overflow");
    lua_pushnil(L);
    lua_rawseti(L, 3, id);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, 4, i);
        lua_xmove(L, t->co, 1);
    }
    t->npend = n;
    return 0;
}

/* A plain coroutine.yield(...) in a task's body: nothing (task.yield), a
   duration in ms (task.sleep) or an external id (task.wait); anything
   else raises when the task runs again. Also a preemption by the budget. */
static int task__l_plain_yield(task__l_state *st, task__l_task *t, int nres) {
    lua_State *co = t->co;
    int code = TASK_STEP_YIELD, rc;
    t->waitkind = TASK__L_WK_YIELD;
    if (nres == 1 && lua_type(co, -1) == LUA_TNUMBER) {
        lua_Integer id;
        if (lua_isinteger(co, -1) && ((uint64_t)(id = lua_tointeger(co, -1)) >> 56) != 0) {
            rc = task_ext_wait(st->s, (task_id)id);
            if (rc == TASK_OK) { t->extwait = (task_id)id; code = TASK_STEP_SUSPEND; t->waitkind = TASK__L_WK_EXT; }
            else if (rc == TASK_ECANCELED) t->raise = TASK__L_RAISE_CANCEL;
            else t->raise = TASK__L_RAISE_EXTID;
        } else {
            double ms = lua_tonumber(co, -1);
            if (!task__l_msok(ms)) { t->raise = TASK__L_RAISE_DURATION; t->raisenum = ms; }
            else if (task__l_ms2ns(ms) > 0) {
                rc = task_sleep(st->s, task__l_ms2ns(ms));
                if (rc == TASK_OK) { code = TASK_STEP_SUSPEND; t->waitkind = TASK__L_WK_SLEEP; }
                else if (rc == TASK_ECANCELED) t->raise = TASK__L_RAISE_CANCEL;
            }
        }
    } else if (nres > 0) {
        t->raise = TASK__L_RAISE_YIELDED;
        t->raisetype = (unsigned char)lua_type(co, -nres);
    }
    lua_pop(co, nres); /* yielded values have nobody else to go to */
    t->plain = 1;
    if (!lua_gethook(co) || task__l_is_ours(lua_gethook(co)))
        lua_sethook(co, task__l_guard_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    return code;
}

#define TASK__L_UNTIMED (~(uint64_t)0)
static void task__l_watch_in(task__l_state *st, task__l_task *t, uint64_t *t0);
static void task__l_watch_out(task__l_state *st, task__l_task *t, int did, uint64_t t0);

static int task__l_step(task_ctx *c) {
    task__l_task *t = (task__l_task *)c->ud, *saved;
    task__l_state *st = t->st;
    lua_State *co = t->co;
    int nargs, nres = 0, rc, res;
    uint64_t t0 = TASK__L_UNTIMED;
    if (st->closed) return TASK_STEP_DONE;
    if (c->why == TASK_WHY_ABORT) {
        task__l_abort(st, t);
        return TASK_STEP_DONE;
    }
    /* before the checks below: a hook may do anything to the thread */
    if (st->watch) task__l_watch_in(st, t, &t0);
    if (c->why == TASK_WHY_START) { /* [body, Task, fn, args..., guard] */
        if (lua_status(co) != LUA_OK || lua_gettop(co) != t->nstart + 4) {
            t->lost = lua_status(co) != LUA_OK ? TASK__L_LOST_RESUMED : TASK__L_LOST_CLOSED;
            return task__l_fail_task(st, t);
        }
        lua_settop(co, -2);
        nargs = t->nstart + 2;
    } else {
        if (lua_status(co) != LUA_YIELD || t->lost) {
            if (!t->lost) t->lost = lua_status(co) == LUA_OK ? TASK__L_LOST_CLOSED : TASK__L_LOST_RESUMED;
            return task__l_fail_task(st, t);
        }
        if (t->plain && t->extwait) { /* coroutine.yield(id): the values resumed before it waited */
            if (t->npend == 0 && c->why == TASK_WHY_WAKE) task__l_call_p(st, task__l_ext_pull_p, t, 0);
            t->extwait = 0;
        }
        nargs = t->npend;
    }
    t->why = (unsigned char)c->why;
    t->npend = 0;
    t->suspending = 0;
    task__l_arm(st, t, c->why);
    saved = st->cur;
    st->cur = t;
    st->spent = 0;
    st->stuck = 0;
    rc = lua_resume(co, st->L, nargs, &nres);
    st->cur = saved;
    t->parked_at = task_now(st->s);
    if (rc == LUA_YIELD) {
        if (t->suspending) res = t->code;
        else if (t->aborting) res = TASK_STEP_SUSPEND; /* the core aborts it now */
        else res = task__l_plain_yield(st, t, nres);
        if (st->watch) {
            t->hooking = t->suspending && res == TASK_STEP_SUSPEND && !t->aborting;
            task__l_watch_out(st, t, t->aborting ? TASK_DID_END : res == TASK_STEP_YIELD ? TASK_DID_YIELD : TASK_DID_PARK, t0);
            t->hooking = 0;
            /* completed by a hook (task__l_complete): READY at once */
            if (t->suspending && res == TASK_STEP_SUSPEND && t->wake != TASK__L_W_NONE) res = TASK_STEP_YIELD;
        }
        return res;
    }
    if (st->watch) {
        task__l_watch_out(st, t, TASK_DID_END, t0);
        /* a hook that closed the thread (coroutine.close) took what it left */
        if (!t->lost && (lua_status(co) != rc || lua_gettop(co) < (rc == LUA_OK && !t->failed ? nres : 1)))
            t->lost = TASK__L_LOST_CLOSED;
    }
    if (t->aborting) return TASK_STEP_DONE; /* stopped by its own abort: the core ends it */
    if (rc == LUA_OK && !t->failed && !t->lost) {
        t->nres = nres;
        if (nres > 0 && lua_checkstack(co, 1)) lua_pushcfunction(co, task__l_guard);
        task__l_end(st, t, TASK_EXIT_DONE);
        return TASK_STEP_DONE;
    }
    return task__l_fail_task(st, t);
}

/* ---- hooks set from Lua, and the slow-resume warning --------------------- */

enum { TASK__L_H_CREATE = 0, TASK__L_H_TERM, TASK__L_H_RESUME, TASK__L_H_SUSPEND };

static const char *task__l_did_name(int did) {
    return did == TASK_DID_YIELD ? "yield" : did == TASK_DID_PARK ? "wait" : "end";
}

static int task__l_hook_p(lua_State *L) { /* st, Task, which | did << 4 */
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    int which = (int)lua_tointeger(L, 3), nargs = 1;
    int ref = (which & 15) == TASK__L_H_CREATE ? st->r_hcreate : (which & 15) == TASK__L_H_TERM ? st->r_hterm
            : (which & 15) == TASK__L_H_RESUME ? st->r_hresume : st->r_hsuspend;
    if (ref == LUA_NOREF) return 0;
    task__l_getref(L, ref);
    lua_pushvalue(L, 2);
    if ((which & 15) == TASK__L_H_SUSPEND) {
        lua_pushstring(L, task__l_did_name(which >> 4));
        nargs = 2;
    }
    if (lua_pcall(L, nargs, 0, 0) != LUA_OK) {
        lua_pushvalue(L, 2);
        lua_pushnil(L);
        task__l_report(L, st);
    }
    return 0;
}

static void task__l_pushtb(lua_State *L, lua_State *co, int level);
static void task__l_pushlabel(lua_State *L, int idx);

/* Protected: reports a resume that took longer than task.warn_slow allows.
   Stack: st, Task, ns. Goes to the error handler as (msg, Task, traceback,
   "slow"): the traceback is where the task stopped, when it can go on. */
static int task__l_slow_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    task__l_task *t = (task__l_task *)lua_touserdata(L, 2);
    char took[32], lim[32];
    snprintf(took, sizeof took, "%.1f", task__l_ms((uint64_t)lua_tointeger(L, 3)));
    snprintf(lim, sizeof lim, "%.1f", task__l_ms(st->slow));
    lua_pushfstring(L, "one resume ran %s ms (task.warn_slow: %s ms)", took, lim);
    lua_pushvalue(L, 2);
    if (!t->ended && lua_status(t->co) == LUA_YIELD) task__l_pushtb(L, t->co, 0);
    else lua_pushnil(L);
    lua_pushliteral(L, "slow");
    if (st->r_handler != LUA_NOREF) task__l_getref(L, st->r_handler);
    else lua_pushcfunction(L, task__l_default_handler);
    lua_insert(L, -5);
    if (lua_pcall(L, 4, 0, 0) != LUA_OK) {
        fprintf(stderr, "task: error handler failed: %s\n", task__l_errstr(L, -1));
        lua_pop(L, 2);
    }
    return 0;
}

/* Around every resume while a switch hook or the slow warning is set. */
static void task__l_watch_in(task__l_state *st, task__l_task *t, uint64_t *t0) {
    if (st->r_hresume != LUA_NOREF) task__l_call_p(st, task__l_hook_p, t, TASK__L_H_RESUME);
    if (st->slow && st->clock) *t0 = st->clock(st->clock_ud); /* after the hook: its time is not the task's */
}

static void task__l_watch_out(task__l_state *st, task__l_task *t, int did, uint64_t t0) {
    if (st->slow && st->clock && t0 != TASK__L_UNTIMED) {
        uint64_t t1 = st->clock(st->clock_ud), dt = t1 > t0 ? t1 - t0 : 0; /* a clock that went back: 0 */
        if (dt > st->slow) task__l_call_p(st, task__l_slow_p, t, (lua_Integer)dt);
    }
    if (st->r_hsuspend != LUA_NOREF) task__l_call_p(st, task__l_hook_p, t, TASK__L_H_SUSPEND | did << 4);
}

static void task__l_run_hook(task__l_state *st, task__l_task *t, int term) {
    if ((term ? st->r_hterm : st->r_hcreate) == LUA_NOREF) return;
    task__l_call_p(st, task__l_hook_p, t, term ? TASK__L_H_TERM : TASK__L_H_CREATE);
}

/* ---- spawning ------------------------------------------------------------ */

static int task__l_anchor_p(lua_State *L) { /* anchors, key, Task */
    lua_rawset(L, 1);
    return 0;
}

static int task__l_where_p(lua_State *L) { /* Task, where */
    task__l_state *st = ((task__l_task *)lua_touserdata(L, 1))->st;
    if (st->r_where == LUA_NOREF) return 0;
    task__l_getref(L, st->r_where);
    lua_insert(L, 1);
    lua_rawset(L, 1);
    return 0;
}

/* Spawns the function at fidx with the nargs values after it; pushes the Task. */
static task__l_task *task__l_spawn_at(lua_State *L, task__l_state *st, int fidx, int nargs, const task_opts *o,
                            int nameidx, const char *fn) {
    task__l_task *t;
    lua_State *co;
    int i, rc, where;
    uint32_t slot;
    fidx = lua_absindex(L, fidx);
    if (nameidx) nameidx = lua_absindex(L, nameidx);
    luaL_checkstack(L, nargs + 9, fn);
    t = (task__l_task *)lua_newuserdatauv(L, sizeof *t, 2);
    memset(t, 0, sizeof *t);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->r_taskmt);
    lua_setmetatable(L, -2);
    if (st->npool > 0) { /* a thread of a task that returned: no allocation */
        task__l_getref(L, st->r_pool);
        lua_rawgeti(L, -1, st->npool);
        co = lua_tothread(L, -1);
        lua_setiuservalue(L, -3, 1);
        lua_pushboolean(L, 0); /* false, not nil: the array keeps its slot */
        lua_rawseti(L, -2, st->npool);
        lua_settop(L, -2);
        st->npool--;
        st->pool_taken++;
    } else {
        co = lua_newthread(L);
        lua_setiuservalue(L, -2, 1);
    }
    if (nameidx) {
        lua_pushvalue(L, nameidx);
        lua_setiuservalue(L, -2, 2);
    }
    if (!lua_checkstack(co, nargs + 3 + TASK__L_RESERVE)) luaL_error(L, "%s: too many arguments", fn);
    task__l_getref(co, st->r_body);
    lua_pushvalue(L, -1); /* the Task: the body's first argument */
    for (i = 0; i <= nargs; i++) lua_pushvalue(L, fidx + i);
    lua_xmove(L, co, nargs + 2);
    lua_pushcfunction(co, task__l_guard);
    t->st = st;
    t->co = co;
    t->nstart = nargs;
    t->born = task_now(st->s);
    /* The core must never hold a task whose Task nobody holds, and anchoring
       after task_spawn must not fail: the key a new slot gets (ahi + 1) is
       made before, when a failure leaves nothing to undo. */
    task__l_getref(L, st->r_anchors);
    if (st->amade != st->ahi + 1) { /* keys are never removed: once made, it stays */
        if (lua_rawgeti(L, -1, (lua_Integer)st->ahi + 1) == LUA_TNIL) {
            lua_pushboolean(L, 0);
            lua_rawseti(L, -3, (lua_Integer)st->ahi + 1);
        }
        lua_pop(L, 1);
        st->amade = st->ahi + 1;
    }
    if ((where = st->r_where != LUA_NOREF)) { /* task.profile: where it was spawned */
        lua_Debug ar;
        int level;
        ar.currentline = -1;
        for (level = 1; lua_getstack(L, level, &ar); level++) {
            lua_getinfo(L, "Sl", &ar);
            if (ar.currentline > 0) break;
            ar.currentline = -1;
        }
        if (ar.currentline > 0) lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
        else lua_pushliteral(L, "[C]"); /* task_lua_spawn from the host, say */
        lua_insert(L, -3); /* [where, Task, anchors] */
    }
    rc = task_spawn(st->s, task__l_step, t, o, &t->id);
    if (rc != TASK_OK) {
        t->ended = TASK_EXIT_ABORT;
        lua_pop(L, 1);
        task__l_fail(L, st, rc, fn);
    }
    slot = (uint32_t)t->id;
    if (slot <= st->ahi + 1) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, slot);
        if (slot > st->ahi) st->ahi = slot;
    } else { /* other tasks took the slots between: this key may need room */
        lua_pushcfunction(L, task__l_anchor_p);
        lua_pushvalue(L, -2);
        lua_pushinteger(L, slot);
        lua_pushvalue(L, -5);
        if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
            task_drop(st->s, t->id);
            t->id = 0; /* its __gc has nothing to release */
            t->ended = TASK_EXIT_ABORT;
            lua_error(L);
        }
    }
    lua_pop(L, 1);
    if (where) { /* [where, Task]; a finalizer may have ended profiling since */
        lua_pushcfunction(L, task__l_where_p);
        lua_pushvalue(L, -2);
        lua_pushvalue(L, -4);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1); /* out of memory: no location */
        lua_remove(L, -2);
    }
    task__l_run_hook(st, t, 0);
    return t;
}

static task_id task__l_opt_token(lua_State *L, task__l_state *st, int idx, const char *fn) {
    task__l_token *tk;
    if (task__l_classof(L, idx, st) != TASK__L_C_TOKEN) luaL_error(L, "%s: option 'token' must be a CancelToken", fn);
    tk = (task__l_token *)lua_touserdata(L, idx);
    if (task_token_cancelled(st->s, tk->id) < 0) luaL_error(L, "%s: the token is no longer valid", fn);
    return tk->id;
}

/* spawn(fn, ...) or spawn(opts, fn, ...) */
static int task__l_spawn(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task_opts o;
    int nameidx = 0, top = lua_gettop(L);
    memset(&o, 0, sizeof o);
    if (lua_type(L, 1) == LUA_TTABLE) {
        luaL_checktype(L, 2, LUA_TFUNCTION);
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (k && strcmp(k, "name") == 0) {
                if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "task.spawn: option 'name' must be a string");
                if (!lua_isnil(L, -1)) {
                    lua_pushvalue(L, -1);
                    lua_insert(L, top + 1); /* below the iteration's key */
                    nameidx = top + 1;
                }
            } else if (k && strcmp(k, "token") == 0) {
                o.token = task__l_opt_token(L, st, lua_gettop(L), "task.spawn");
            } else {
                luaL_tolstring(L, -2, NULL);
                luaL_error(L, "task.spawn: unknown option '%s'", lua_tostring(L, -1));
            }
            lua_pop(L, 1);
        }
        task__l_spawn_at(L, st, 2, top - 2, &o, nameidx, "task.spawn");
        return 1;
    }
    luaL_checktype(L, 1, LUA_TFUNCTION);
    task__l_spawn_at(L, st, 1, top - 1, NULL, 0, "task.spawn");
    return 1;
}

static int task__l_fork(lua_State *L) {
    task__l_state *st = task__l_st(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 2);
    task__l_spawn_at(L, st, 1, 1, NULL, 0, "task.fork");
    return 1;
}

/* ---- tasks ---------------------------------------------------------------- */

/* An ended task's outcome, without raising: pushes its results (only the
   first with first_only: nil for none) and returns how many, or pushes its
   error and returns -1. The task counts as joined from then on. */
static int task__l_outcome(lua_State *L, task__l_state *st, task__l_task *x, int idx, int first_only) {
    int n = x->nres;
    if (x->ended == TASK_EXIT_DONE && n > 0 && (!x->co || lua_status(x->co) != LUA_OK || lua_gettop(x->co) < n)) {
        x->joined = 1; /* as below: joined, its __gc releases nothing, so release it here */
        task_release(st->s, x->id);
        lua_pushliteral(L, "Task:join: the task's results were lost (its thread was used outside the scheduler)");
        return -1;
    }
    luaL_checkstack(L, (first_only ? 1 : n) + 2, "Task:join"); /* the results, then task__l_pool_put's two */
    x->joined = 1;
    task_release(st->s, x->id);
    if (x->ended == TASK_EXIT_FAIL) {
        lua_pushvalue(L, idx); /* an error re-raised from it keeps its traceback (otb) */
        lua_rawsetp(L, LUA_REGISTRYINDEX, &task__l_originkey);
        task__l_info(L, idx, "err");
        return -1;
    }
    if (x->ended != TASK_EXIT_DONE) { lua_pushliteral(L, "task aborted"); return -1; }
    if (n == 0) { /* none (its thread may be pooled already) */
        if (first_only) { lua_pushnil(L); n = 1; }
    } else {
        if (first_only) n = 1;
        lua_settop(x->co, n); /* drops the guard above them (and the rest, for first_only) */
        lua_xmove(x->co, L, n);
    }
    x->nres = 0;
    task__l_pool_put(L, st, x, idx);
    return n;
}

/* Delivers an ended task's outcome to a joiner: results, or its error. */
static int task__l_take(lua_State *L, task__l_state *st, task__l_task *x, int idx) {
    int n;
    if (x->joined) return task__l_raise_literal(L, "task already joined");
    if ((n = task__l_outcome(L, st, x, idx, 0)) < 0) return lua_error(L);
    return n;
}

static int task__l_k_join(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    task__l_task *x = (task__l_task *)lua_touserdata(L, 1);
    (void)status;
    task__l_unqueue(t);
    if (t->why == TASK_WHY_CANCEL) return task__l_raise_cancelled(L);
    return task__l_take(L, t->st, x, 1);
}

static int task__l_join(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1), *t;
    int rc;
    lua_settop(L, 1);
    task__l_checkcancel(L, st);
    if (x->joined) return task__l_raise_literal(L, "task already joined");
    if (x->ended) return task__l_take(L, st, x, 1);
    t = task__l_need(L, st, "Task:join");
    if (t == x) return luaL_error(L, "Task:join: a task cannot join itself");
    if ((rc = task_join(st->s, x->id)) != TASK_OK) return task__l_fail(L, st, rc, "Task:join");
    /* in x's waitq as a select is (index 0), so that its end knows which
       joiners still wait; the core wakes it */
    task__l_reg_add(&t->direct, t, x, TASK__L_C_TASK, 0, &x->waitq);
    t->joining = x;
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_JOIN, task__l_k_join);
}

static int task__l_task_cancel(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1);
    /* false once finished or already cancelled (its own or its scope's token) */
    int r = !x->ended && task_cancelled(st->s, x->id) == 0 && task_cancel(st->s, x->id) == TASK_OK;
    lua_pushboolean(L, r);
    return 1;
}

static int task__l_task_abort(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1);
    int r = !x->ended && !x->aborting && task_abort(st->s, x->id) == TASK_OK;
    if (r && x == st->cur) { /* itself: it stops here, or raises where it cannot */
        if (x->co == L && lua_isyieldable(L) && !x->closing)
            return task__l_park(L, x, TASK_STEP_SUSPEND, TASK__L_WK_NONE, NULL);
        x->aborting = 1;
        return task__l_raise_literal(L, "task aborted");
    }
    if (r && x->hooking) task__l_unqueue(x); /* still RUN: task__l_waits cannot tell */
    lua_pushboolean(L, r);
    return 1;
}

static int task__l_task_done(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_pushboolean(L, task__l_checktask(L, st, 1)->ended != 0);
    return 1;
}

static int task__l_task_detach(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1);
    x->detached = 1;
    if (!x->ended) task_scope_leave(st->s, x->id);
    lua_pushboolean(L, 1);
    return 1;
}

static int task__l_task_elapsed(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1);
    lua_pushnumber(L, task__l_ms(task_now(st->s) - x->born));
    return 1;
}

static int task__l_task_traceback(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1);
    if (x->ended == TASK_EXIT_FAIL) task__l_info(L, 1, "tb");
    else if (!x->ended && lua_status(x->co) == LUA_YIELD) luaL_traceback(L, x->co, NULL, 0);
    else if (!x->ended && x->co == L) luaL_traceback(L, L, NULL, 1);
    else lua_pushnil(L);
    return 1;
}

/* Upvalue 2 is the methods table, which also maps "id" and "name" to the
   integers TASK__L_F_ID and TASK__L_F_NAME: one raw lookup, in place of the
   key, answers every key (t:join() is the hot one). */
enum { TASK__L_F_ID = 1, TASK__L_F_NAME = 2 };
static int task__l_task_index(lua_State *L) {
    task__l_task *x;
    int f;
    if (lua_gettop(L) != 2) lua_settop(L, 2);
    f = lua_rawget(L, lua_upvalueindex(2));
    /* a method, the common case: it does not look at the value, so it needs no check */
    if (f == LUA_TFUNCTION) return 1;
    x = (task__l_task *)task__l_check_raw(L, 1, TASK__L_C_TASK);
    if (f != LUA_TNUMBER) return 1; /* nil: no such field */
    if (lua_tointeger(L, 2) == TASK__L_F_ID) lua_pushinteger(L, (lua_Integer)x->id);
    else task__l_info(L, 1, "name");
    return 1;
}

static const char *task__l_status_name(task__l_state *st, task__l_task *x) {
    int s = st->s && !st->closed && x->id ? task_status(st->s, x->id) : TASK_ENOENT;
    return s < 0 ? NULL : task_state_name(s);
}

static int task__l_task_tostring(lua_State *L) {
    task__l_task *x = (task__l_task *)task__l_check_raw(L, 1, TASK__L_C_TASK);
    const char *s = task__l_status_name(x->st, x);
    task__l_info(L, 1, "name");
    lua_pushfstring(L, "Task %I (%s): %s", (lua_Integer)x->id,
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "task", s ? s : "released");
    return 1;
}

/* The Task is a to-be-closed variable at the bottom of its own thread
   (task__l_body): this runs when that thread is closed. Only a close from
   outside the scheduler (coroutine.close) does anything: then the calls
   were unwound first, so nothing is below this one. Called by hand, or
   at the task's own end, it does nothing. */
static int task__l_task_close(lua_State *L) {
    task__l_task *t = (task__l_task *)task__l_check_raw(L, 1, TASK__L_C_TASK);
    task__l_state *st = t->st;
    lua_Debug ar;
    if (!st || st->closed || t->closing || t->ended || L != t->co || lua_getstack(L, 1, &ar)) return 0;
    if (!t->lost) t->lost = TASK__L_LOST_CLOSED;
    task__l_unqueue(t);
    task__l_unanchor_sel(L, st, t);
    task_abort(st->s, t->id); /* the scheduler ends it with the error at its next turn */
    return 0;
}

/* Safe to call by hand on a live Task: releasing only tells the core to
   free the task once it ends. */
/* A Task being collected that the core no longer knows (task_drop from C)
   and that never ended here: before its memory goes, it leaves every
   queue it waited in, and the scopes it opened end (each keeps a pointer
   to its owner). Assigning existing keys during lua_next is allowed. */
static void task__l_forget_dropped(lua_State *L, task__l_state *st, task__l_task *x) {
    task__l_unqueue(x);
    if (!st->s || st->closed) return; /* lua_close: everything goes at once */
    task__l_unanchor_sel(L, st, x);
    if (x->nscopes > 0 && lua_checkstack(L, 4)) {
        task__l_getref(L, st->r_scopes);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            task__l_scope *sc = lua_type(L, -1) == LUA_TUSERDATA ? (task__l_scope *)lua_touserdata(L, -1) : NULL;
            if (sc && sc->owner == x) task__l_scope_end(L, st, sc);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

static int task__l_task_gc(lua_State *L) {
    task__l_task *x = (task__l_task *)task__l_check_raw(L, 1, TASK__L_C_TASK);
    task__l_state *st = x->st;
    if (!st) return 0;
    if (!x->ended && (!st->s || st->closed || task_status(st->s, x->id) < 0)) task__l_forget_dropped(L, st, x);
    if (x->gcdone) return 0;
    x->gcdone = 1;
    if (x->id && st->s && !st->closed && !x->joined) task_release(st->s, x->id);
    return 0;
}

/* ---- the module's task functions ---------------------------------------- */

static int task__l_running(lua_State *L) {
    task__l_state *st = task__l_st(L);
    if (st->cur) task__l_pushtask(L, st, st->cur); else lua_pushnil(L);
    return 1;
}

static int task__l_current(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *t = st->cur;
    if (!t) { lua_pushnil(L); return 1; }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)t->id);
    lua_setfield(L, -2, "id");
    task__l_pushtask(L, st, t);
    task__l_info(L, -1, "name");
    lua_setfield(L, -3, "name");
    lua_pop(L, 1);
    lua_pushboolean(L, task_cancelled(st->s, t->id) == 1);
    lua_setfield(L, -2, "cancelled");
    return 1;
}

static int task__l_status(lua_State *L) {
    task__l_state *st = task__l_st(L);
    const char *s = task__l_status_name(st, task__l_checktask(L, st, 1));
    if (s) lua_pushstring(L, s); else lua_pushnil(L);
    return 1;
}

/* sleep and yield: nothing to hand back; a cancel raises (also one that
   came while the task was READY after a yield) */
static int task__l_k_sleep(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    (void)status;
    if (t->why == TASK_WHY_CANCEL || task_self_cancelled(t->st->s)) return task__l_raise_cancelled(L);
    return 0;
}

static int task__l_yield(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *t;
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.yield");
    return task__l_park(L, t, TASK_STEP_YIELD, TASK__L_WK_YIELD, task__l_k_sleep);
}

static int task__l_sleep(lua_State *L) {
    task__l_state *st = task__l_st(L);
    uint64_t ns = task__l_checkms(L, 1, "task.sleep");
    task__l_task *t;
    int rc;
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.sleep");
    if (ns == 0) return task__l_park(L, t, TASK_STEP_YIELD, TASK__L_WK_YIELD, task__l_k_sleep);
    if ((rc = task_sleep(st->s, ns)) != TASK_OK) return task__l_fail(L, st, rc, "task.sleep");
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_SLEEP, task__l_k_sleep);
}

static int task__l_checkpoint(lua_State *L) {
    task__l_checkcancel(L, task__l_st(L));
    return 0;
}

/* Pushes the values resumed into external id `id` before the wait (kept
   in r_ext); returns how many. */
static int task__l_ext_values(lua_State *L, task__l_state *st, lua_Integer id) {
    int n, i, tbl;
    task__l_getref(L, st->r_ext);
    if (lua_rawgeti(L, -1, id) != LUA_TTABLE) { lua_pop(L, 2); return 0; }
    lua_getfield(L, -1, "n");
    n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 1, "task.wait");
    lua_pushnil(L);
    lua_rawseti(L, -3, id);
    tbl = lua_gettop(L);
    for (i = 1; i <= n; i++) lua_rawgeti(L, tbl, i);
    lua_remove(L, tbl);
    lua_remove(L, tbl - 1);
    return n;
}

/* wait() and wait(id): the values given (by wakeup or a resume of the id
   while it waited) are on top; a resume that came first left them in r_ext */
static int task__l_k_wait(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    int n = lua_gettop(L) - t->kbase;
    task_id id = t->extwait;
    (void)status;
    t->extwait = 0;
    if (t->why == TASK_WHY_CANCEL) return task__l_raise_cancelled(L);
    if (n == 0 && id) return task__l_ext_values(L, t->st, (lua_Integer)id); /* resumed before it waited */
    return n;
}

/* wait() parks until wakeup(); wait(id) until resume(id, ...). */
static int task__l_wait(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *t;
    int rc;
    if (!lua_isnoneornil(L, 1)) {
        lua_Integer id = luaL_checkinteger(L, 1);
        lua_settop(L, 1);
        task__l_checkcancel(L, st);
        t = task__l_need(L, st, "task.wait");
        if ((rc = task_ext_wait(st->s, (task_id)id)) != TASK_OK) {
            if (rc == TASK_ENOENT) return luaL_error(L, "task.wait: unknown, already used or stale external id");
            return task__l_fail(L, st, rc, "task.wait");
        }
        t->extwait = (task_id)id;
        return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_EXT, task__l_k_wait);
    }
    lua_settop(L, 0);
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.wait");
    if ((rc = task_wait(st->s)) != TASK_OK) return task__l_fail(L, st, rc, "task.wait");
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_WAIT, task__l_k_wait);
}

static int task__l_wakeup(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *x = task__l_checktask(L, st, 1);
    int s = x->id ? task_status(st->s, x->id) : TASK_ENOENT;
    lua_settop(L, 2);
    if (s != TASK_WAIT)
        return luaL_error(L, "task.wakeup: task is %s, not WAIT", s < 0 ? "released" : task_state_name(s));
    if (lua_status(x->co) != LUA_YIELD) { /* closed from outside: it ends now */
        task__l_thread_lost(st, x);
        return 0;
    }
    lua_pushvalue(L, 2);
    lua_xmove(L, x->co, 1); /* room reserved when it parked */
    if (task_wakeup(st->s, x->id, NULL) != TASK_OK) {
        lua_pop(x->co, 1);
        return luaL_error(L, "task.wakeup: task is waiting for something else, not task.wait()");
    }
    x->npend = 1;
    return 0;
}

static int task__l_alloc(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task_id id = 0;
    int rc = task_ext_alloc(st->s, &id);
    if (rc != TASK_OK) return task__l_fail(L, st, rc, "task.alloc");
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

/* Protected part of a resume nobody waits for yet: st, ext, values... ->
   r_ext[ext] = {values, n = n} */
static int task__l_resume_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    lua_Integer ext = lua_tointeger(L, 2);
    int i, n = lua_gettop(L) - 2;
    lua_createtable(L, n, 1);
    for (i = 1; i <= n; i++) {
        lua_pushvalue(L, i + 2);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    task__l_getref(L, st->r_ext);
    lua_insert(L, -2);
    lua_rawseti(L, -2, ext);
    return 0;
}

/* task_lua_resume's work; msg (if not NULL) gets why it failed. */
static int task__l_resume_ext(lua_State *L, task__l_state *st, task_id ext, int nvalues, const char **msg) {
    int s = task_ext_status(st->s, ext);
    task_id w;
    task_fn fn;
    void *ud;
    const char *why = NULL;
    int rc = TASK_OK;
    if (s < 0) { rc = TASK_ENOENT; why = "unknown, already used or stale external id"; }
    else if (s > 0) { rc = TASK_ESTATE; why = "id already resumed"; }
    else if (task_ext_waiter(st->s, ext, &w) == TASK_OK && w != 0) {
        task__l_task *wt = task_step_of(st->s, w, &fn) == TASK_OK && fn == task__l_step &&
                      task_userdata(st->s, w, &ud) == TASK_OK ? (task__l_task *)ud : NULL;
        if (wt && wt->st != st) { rc = TASK_EINVAL; why = "the task waiting for this id belongs to another lua_State"; }
        else if (wt && (lua_status(wt->co) != LUA_YIELD || !lua_checkstack(wt->co, nvalues))) {
            rc = TASK_ENOMEM; why = "cannot hand the values to the waiting task";
        } else {
            if (wt) { lua_xmove(L, wt->co, nvalues); wt->npend += nvalues; nvalues = 0; }
            lua_pop(L, nvalues); /* a C task waits: it gets no Lua values */
            return task_ext_resume(st->s, ext, NULL);
        }
    } else { /* nobody waits yet: the values wait in r_ext */
        if (!lua_checkstack(L, 3)) { rc = TASK_ENOMEM; why = "not enough memory"; }
        else {
            lua_pushcfunction(L, task__l_resume_p);
            lua_pushlightuserdata(L, st);
            lua_pushinteger(L, (lua_Integer)ext);
            lua_rotate(L, -(nvalues + 3), 3);
            if (lua_pcall(L, nvalues + 2, 0, 0) != LUA_OK) {
                lua_pop(L, 1);
                if (msg) *msg = "not enough memory";
                return TASK_ENOMEM;
            }
            return task_ext_resume(st->s, ext, NULL);
        }
    }
    lua_pop(L, nvalues);
    if (msg) *msg = why;
    return rc;
}

static int task__l_resume(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_Integer id = luaL_checkinteger(L, 1);
    const char *why = NULL;
    int rc = task__l_resume_ext(L, st, (task_id)id, lua_gettop(L) - 1, &why);
    if (rc == TASK_OK) { lua_pushboolean(L, 1); return 1; }
    luaL_pushfail(L); /* Lua's convention for a call that reports: fail, message */
    lua_pushfstring(L, "task.resume: %s", why ? why : task_strerror(rc));
    return 2;
}

/* Makes room for n idle threads (raises when out of memory), or keeps
   fewer. */
static void task__l_pool_size(lua_State *L, task__l_state *st, int n) {
    int i;
    if (n > st->pool_max) {
        task__l_getref(L, st->r_pool);
        for (i = st->pool_max + 1; i <= n; i++) { /* the slots exist before they fill */
            lua_pushboolean(L, 0);
            lua_rawseti(L, -2, i);
        }
        lua_pop(L, 1);
    }
    task__l_pool_trim(L, st, n);
    st->pool_max = n;
}

/* pool([n]) -> the previous size and the idle threads kept now */
static int task__l_pool(lua_State *L) {
    task__l_state *st = task__l_st(L);
    int old = st->pool_max;
    if (!lua_isnoneornil(L, 1)) {
        lua_Integer n = luaL_checkinteger(L, 1);
        luaL_argcheck(L, n >= 0 && n <= 1000000, 1, "pool size must be 0..1000000");
        task__l_pool_size(L, st, (int)n);
    }
    lua_pushinteger(L, old);
    lua_pushinteger(L, st->npool);
    return 2;
}

static int task__l_now(lua_State *L) {
    lua_pushnumber(L, task__l_ms(task_now(task__l_st(L)->s)));
    return 1;
}

/* The ready-queue length, one integer, as silly's taskstat. */
static int task__l_taskstat(lua_State *L) {
    lua_pushinteger(L, task_ready_count(task__l_st(L)->s));
    return 1;
}

/* stats() -> {tasks, ready, running, waiting, sleeping, core_bytes}: the
   scheduler's counts (every task it runs, C ones too); core_bytes, in
   the standalone module, is what the core holds (it comes from Lua's
   allocator, but collectgarbage("count") does not see it). */
static int task__l_stats(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_createtable(L, 0, 6);
    lua_pushinteger(L, task_count(st->s, -1));
    lua_setfield(L, -2, "tasks");
    lua_pushinteger(L, task_count(st->s, TASK_READY));
    lua_setfield(L, -2, "ready");
    lua_pushinteger(L, task_count(st->s, TASK_RUN));
    lua_setfield(L, -2, "running");
    lua_pushinteger(L, task_count(st->s, TASK_WAIT));
    lua_setfield(L, -2, "waiting");
    lua_pushinteger(L, task_count(st->s, TASK_SLEEP));
    lua_setfield(L, -2, "sleeping");
    if (st->lalloc) {
        lua_pushinteger(L, (lua_Integer)st->core_bytes);
        lua_setfield(L, -2, "core_bytes");
    }
    return 1;
}

/* ---- reports: what a task waits for --------------------------------------- */

/* Pushes the traceback of a task's parked thread, without the body's own
   C trampoline at the bottom. */
static void task__l_pushtb(lua_State *L, lua_State *co, int level) {
    size_t n;
    const char *tb;
    luaL_traceback(L, co, NULL, level);
    tb = lua_tolstring(L, -1, &n);
    if (n >= 11 && strcmp(tb + n - 11, "\n\t[C]: in ?") == 0) {
        lua_pushlstring(L, tb, n - 11);
        lua_remove(L, -2);
    }
}

/* Pushes "task <id> (<name>)" for the Task at idx. */
static void task__l_pushlabel(lua_State *L, int idx) {
    task__l_task *x = (task__l_task *)lua_touserdata(L, idx);
    task__l_info(L, idx, "name");
    lua_pushfstring(L, "task %I (%s)", (lua_Integer)x->id, lua_isstring(L, -1) ? lua_tostring(L, -1) : "task");
    lua_remove(L, -2);
}

/* Pushes what a parked Lua task waits for, in words. */
static void task__l_pushwait(lua_State *L, task__l_state *st, task__l_task *t) {
    switch (t->waitkind) {
    case TASK__L_WK_YIELD: lua_pushliteral(L, "its next turn (yield)"); break;
    case TASK__L_WK_SLEEP: lua_pushliteral(L, "the end of a sleep"); break;
    case TASK__L_WK_WAIT: lua_pushliteral(L, "task.wakeup (task.wait)"); break;
    case TASK__L_WK_EXT: lua_pushfstring(L, "external id %I (task.resume)", (lua_Integer)t->extwait); break;
    case TASK__L_WK_JOIN:
        if (t->joining) {
            task__l_pushtask(L, st, t->joining);
            if (task__l_classof(L, -1, st) == TASK__L_C_TASK) {
                task__l_pushlabel(L, lua_gettop(L));
                lua_pushfstring(L, "the end of %s (join)", lua_tostring(L, -1));
                lua_replace(L, -3);
                lua_pop(L, 1);
                break;
            }
            lua_pop(L, 1);
        }
        lua_pushliteral(L, "the end of a task (join)");
        break;
    case TASK__L_WK_RECV: case TASK__L_WK_SEND: {
        task__l_chan *ch = (task__l_chan *)t->direct.obj;
        if (ch && t->direct.q)
            lua_pushfstring(L, "%s Channel (%I/%I%s)", t->waitkind == TASK__L_WK_RECV ? "a value from" : "room in",
                            ch->count, ch->cap, ch->closed ? ", closed" : "");
        else lua_pushstring(L, t->waitkind == TASK__L_WK_RECV ? "a value from a Channel" : "room in a Channel");
        break;
    }
    case TASK__L_WK_TIMER: lua_pushliteral(L, "a Timer"); break;
    case TASK__L_WK_SELECT: lua_pushfstring(L, "the first of %d awaitables (select)", t->nsel); break;
    case TASK__L_WK_SCOPE: lua_pushliteral(L, "the end of the tasks of its scope"); break;
    case TASK__L_WK_RACE: lua_pushfstring(L, "the first of %d tasks (race)", t->nsel); break;
    default: lua_pushliteral(L, "nothing known"); break;
    }
}

/* Now, for reports: the binding's clock when it has one (the last tick's
   now may be long past in a host blocked in poll), else the tick's. */
static uint64_t task__l_report_now(task__l_state *st) {
    uint64_t now = task_now(st->s), c;
    if (st->clock && (c = st->clock(st->clock_ud)) > now) now = c;
    return now;
}

/* The word for a wait kind, as task.tasks() gives it. */
static const char *const task__l_wk_name[] = {
    NULL, "yield", "sleep", "wait", "external", "join", "recv", "send", "timer", "select", "scope", "race"};

/* Pushes the Lua value a parked task waits on (the Task it joins, the
   Channel, the Timer, the external id), or nil. A Channel is found as the
   first argument of the method call it is parked in. */
static void task__l_pushtarget(lua_State *L, task__l_state *st, task__l_task *t) {
    switch (t->waitkind) {
    case TASK__L_WK_JOIN:
        if (t->joining) { task__l_pushtask(L, st, t->joining); return; }
        break;
    case TASK__L_WK_EXT:
        if (t->extwait) { lua_pushinteger(L, (lua_Integer)t->extwait); return; }
        break;
    case TASK__L_WK_RECV: case TASK__L_WK_SEND:
        if (t->direct.q && t->co != L && lua_status(t->co) == LUA_YIELD && lua_gettop(t->co) >= 1 &&
            lua_touserdata(t->co, 1) == t->direct.obj) {
            lua_pushvalue(t->co, 1);
            lua_xmove(t->co, L, 1);
            return;
        }
        break;
    case TASK__L_WK_TIMER:
        if (t->direct.q) {
            task__l_getref(L, st->r_timers);
            lua_rawgetp(L, -1, t->direct.obj);
            lua_remove(L, -2);
            return;
        }
        break;
    default: break;
    }
    lua_pushnil(L);
}

/* Sets field k of the table on top to ns in ms. */
static void task__l_setms(lua_State *L, const char *k, uint64_t ns) {
    lua_pushnumber(L, task__l_ms(ns));
    lua_setfield(L, -2, k);
}

/* Pushes the traceback of a live Lua task: its parked thread, or the
   running one (level 1 when it is L itself: not this call). */
static void task__l_pushtb_of(lua_State *L, task__l_task *x) {
    lua_Debug ar;
    if (x->co == L) task__l_pushtb(L, L, 1);
    else if (lua_status(x->co) == LUA_YIELD || (lua_status(x->co) == LUA_OK && lua_getstack(x->co, 0, &ar)))
        task__l_pushtb(L, x->co, 0);
    else lua_pushliteral(L, "stack traceback:");
}

/* Fills the table on top with what is known of the live Task at idx. */
static void task__l_entry(lua_State *L, task__l_state *st, int idx) {
    task__l_task *x = (task__l_task *)lua_touserdata(L, idx);
    task_info in;
    int parked;
    memset(&in, 0, sizeof in);
    task_info_of(st->s, x->id, &in);
    parked = (in.state == TASK_WAIT || in.state == TASK_SLEEP) && x->co != L;
    lua_pushinteger(L, (lua_Integer)x->id);
    lua_setfield(L, -2, "id");
    task__l_info(L, idx, "name");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, task_state_name(in.state));
    lua_setfield(L, -2, "status");
    task__l_pushtb_of(L, x);
    lua_setfield(L, -2, "traceback");
    if (parked && x->waitkind != TASK__L_WK_NONE && (size_t)x->waitkind < sizeof task__l_wk_name / sizeof *task__l_wk_name) {
        task__l_pushwait(L, st, x);
        lua_setfield(L, -2, "waits");
        lua_pushstring(L, task__l_wk_name[x->waitkind]);
        lua_setfield(L, -2, "wait");
        task__l_pushtarget(L, st, x);
        lua_setfield(L, -2, "target");
    }
    if (parked) task__l_setms(L, "since", task__l_report_now(st) - x->parked_at);
    if (in.waits == TASK_WAITS_SLEEP) task__l_setms(L, "deadline", in.deadline);
    if (in.trace) {
        lua_pushinteger(L, (lua_Integer)in.trace);
        lua_setfield(L, -2, "trace");
    }
    if (in.stats) {
        lua_pushinteger(L, (lua_Integer)in.resumes);
        lua_setfield(L, -2, "resumes");
        task__l_setms(L, "busy", in.busy);
        task__l_setms(L, "longest", in.longest);
    }
    if (st->r_where != LUA_NOREF) {
        task__l_getref(L, st->r_where);
        lua_pushvalue(L, idx);
        lua_rawget(L, -2);
        lua_setfield(L, -3, "spawned");
        lua_pop(L, 1);
    }
}

/* tasks() -> {[Task] = {id, name, status, traceback, waits, wait, target,
   since, deadline, trace, resumes, busy, longest, spawned}} for the live
   Lua tasks of this state. */
static int task__l_tasks(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_settop(L, 0);
    luaL_checkstack(L, 12, "task.tasks");
    lua_newtable(L);
    task__l_getref(L, st->r_anchors);
    lua_pushnil(L);
    while (lua_next(L, 2)) {
        if (task__l_classof(L, -1, st) != TASK__L_C_TASK || ((task__l_task *)lua_touserdata(L, -1))->ended) {
            lua_pop(L, 1);
            continue;
        }
        lua_createtable(L, 0, 14);
        task__l_entry(L, st, lua_gettop(L) - 1);
        lua_rawset(L, 1); /* result[Task] = info; the key stays for lua_next */
    }
    lua_pop(L, 1);
    return 1;
}

/* ---- task.dump: every task, grouped by state ------------------------------ */

static int task__l_collect(task_sched *s, task_id id, int state, void *ud) {
    task_id **p = (task_id **)ud; /* [next, end] */
    (void)s;
    if (state == TASK_EXIT) return 0;
    if (p[0] == p[1]) return 1;
    *p[0]++ = id;
    return 0;
}

static void task__l_fmtms(char *buf, size_t n, uint64_t ns) {
    double ms = task__l_ms(ns);
    if (ms >= 10000) snprintf(buf, n, "%.1f s", ms / 1000);
    else if (ms >= 1 || ns == 0) snprintf(buf, n, "%.1f ms", ms);
    else snprintf(buf, n, "%.3f ms", ms);
}

/* Is id a Lua task of any lua_State (on this scheduler)? */
static int task__l_luatask_any(task__l_state *st, task_id id) {
    task_fn fn = NULL;
    return task_step_of(st->s, id, &fn) == TASK_OK && fn == task__l_step;
}

/* Pushes one block of the dump for task id: its label, state, what it
   waits on and for how long, its statistics and spawn place, and (a Lua
   task) its traceback. Returns 0 for a task of no concern (ended). */
static int task__l_push_block(lua_State *L, task__l_state *st, task_id id, const task_info *in, uint64_t now) {
    task__l_task *t = task__l_luatask(st, id);
    int base = lua_gettop(L), parked = in->state == TASK_WAIT || in->state == TASK_SLEEP;
    char a[40], b[40], c[40];
    if (t) {
        if (t->ended) return 0;
        task__l_pushtask(L, st, t);
        if (task__l_classof(L, -1, st) != TASK__L_C_TASK) { lua_settop(L, base); return 0; }
        task__l_pushlabel(L, base + 1);
    } else {
        lua_pushnil(L);
        lua_pushfstring(L, "task %I (%s)", (lua_Integer)id, task__l_luatask_any(st, id) ? "Lua task of another lua_State" : "C task");
    }
    lua_pushfstring(L, " %s", task_state_name(in->state));
    if (parked && t && t->co != L) {
        task__l_fmtms(a, sizeof a, now > t->parked_at ? now - t->parked_at : 0);
        lua_pushfstring(L, " for %s: ", a);
        task__l_pushwait(L, st, t);
    } else if (parked) {
        lua_pushliteral(L, ": ");
        if (in->waits == TASK_WAITS_PARK && t == NULL && task__l_luatask_any(st, id) &&
            in->code > 0 && (size_t)in->code < sizeof task__l_wk_name / sizeof *task__l_wk_name)
            lua_pushstring(L, task__l_wk_name[in->code]); /* a Lua task of another lua_State */
        else if (in->waits == TASK_WAITS_PARK) lua_pushfstring(L, "park (code %d)", (int)in->code);
        else if (in->waits == TASK_WAITS_JOIN || in->waits == TASK_WAITS_EXT || in->waits == TASK_WAITS_SCOPE)
            lua_pushfstring(L, "%s %I", task_waits_name(in->waits), (lua_Integer)in->target);
        else lua_pushstring(L, task_waits_name(in->waits));
    } else {
        lua_pushliteral(L, "");
        lua_pushliteral(L, "");
    }
    if (in->waits == TASK_WAITS_SLEEP) {
        task__l_fmtms(a, sizeof a, in->deadline > now ? in->deadline - now : 0);
        lua_pushfstring(L, " (due in %s)", a);
    } else lua_pushliteral(L, "");
    lua_concat(L, 5);
    if (in->stats) {
        task__l_fmtms(a, sizeof a, in->busy);
        task__l_fmtms(b, sizeof b, in->longest);
        task__l_fmtms(c, sizeof c, now > in->spawned ? now - in->spawned : 0);
        lua_pushfstring(L, "\n    resumes %I, busy %s, longest %s, age %s", (lua_Integer)in->resumes, a, b, in->spawned ? c : "?");
        lua_concat(L, 2);
    }
    if (t && st->r_where != LUA_NOREF) {
        task__l_getref(L, st->r_where);
        lua_pushvalue(L, base + 1);
        if (lua_rawget(L, -2) == LUA_TSTRING) {
            lua_pushfstring(L, "\n    spawned at %s", lua_tostring(L, -1));
            lua_replace(L, -3);
            lua_pop(L, 1);
            lua_concat(L, 2);
        } else lua_pop(L, 2);
    }
    if (t) {
        lua_pushliteral(L, "\n");
        task__l_pushtb_of(L, t);
        lua_concat(L, 3);
    }
    lua_replace(L, base + 1);
    lua_settop(L, base + 1);
    return 1;
}

/* Pushes the report of every live task of the scheduler, grouped by
   state (RUN, READY, WAIT, SLEEP); only the parked ones with `parked`.
   Returns how many blocks it has. */
static int task__l_push_report(lua_State *L, task__l_state *st, int parked, uint64_t now) {
    static const int order[] = {TASK_RUN, TASK_READY, TASK_WAIT, TASK_SLEEP};
    int n = task_count(st->s, -1), blocks = 0, g, i, m;
    task_id *ids, *p[2];
    luaL_Buffer buf;
    luaL_checkstack(L, 16, "task report");
    ids = (task_id *)lua_newuserdatauv(L, sizeof(task_id) * (size_t)(n > 0 ? n : 1), 0);
    p[0] = ids;
    p[1] = ids + n;
    task_foreach(st->s, task__l_collect, p);
    m = (int)(p[0] - ids);
    luaL_buffinit(L, &buf);
    for (g = parked ? 2 : 0; g < 4; g++) {
        for (i = 0; i < m; i++) {
            task_info in;
            if (task_info_of(st->s, ids[i], &in) != TASK_OK || in.state != order[g]) continue;
            /* the buffer's own calls need its box on top: a block is
               pushed whole (it pushes nothing when it returns 0), with its
               separator, and added by luaL_addvalue alone */
            if (!task__l_push_block(L, st, ids[i], &in, now)) continue;
            if (blocks++) {
                lua_pushliteral(L, "\n\n");
                lua_insert(L, -2);
                lua_concat(L, 2);
            }
            luaL_addvalue(&buf);
        }
    }
    luaL_pushresult(&buf);
    lua_remove(L, -2);
    return blocks;
}

/* dump([out]) -> text: a report of every live task (Go's goroutine dump),
   written to out (a file, anything with :write, or a function; default:
   stderr; false: nowhere) and returned. */
static int task__l_dump(lua_State *L) {
    task__l_state *st = task__l_st(L);
    char hdr[160];
    int n, m;
    uint64_t now = task__l_report_now(st);
    lua_settop(L, 1);
    n = task__l_push_report(L, st, 0, now);
    m = task_count(st->s, -1);
    snprintf(hdr, sizeof hdr, "task dump at %.1f ms: %d task%s (%d running, %d ready, %d waiting, %d sleeping)\n%s",
             task__l_ms(now), m, m == 1 ? "" : "s", task_count(st->s, TASK_RUN), task_count(st->s, TASK_READY),
             task_count(st->s, TASK_WAIT), task_count(st->s, TASK_SLEEP), n ? "\n" : "");
    lua_pushstring(L, hdr);
    lua_insert(L, -2);
    lua_pushstring(L, n ? "\n" : "");
    lua_concat(L, 3);
    if (lua_isnil(L, 1)) {
        fputs(lua_tostring(L, -1), stderr);
        fflush(stderr);
    } else if (lua_type(L, 1) == LUA_TFUNCTION) {
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -2);
        lua_call(L, 1, 0);
    } else if (lua_type(L, 1) == LUA_TTABLE || lua_type(L, 1) == LUA_TUSERDATA) {
        if (lua_getfield(L, 1, "write") != LUA_TFUNCTION)
            return luaL_error(L, "task.dump: out has no write method (a file, an object with :write, a function, or false)");
        lua_pushvalue(L, 1);
        lua_pushvalue(L, -3);
        lua_call(L, 2, 0);
    } else if (lua_toboolean(L, 1))
        return luaL_error(L, "task.dump: out must be a file, an object with :write, a function or false, not a %s", luaL_typename(L, 1));
    return 1;
}

/* ---- tracing ----------------------------------------------------------- */

static int task__l_tracenode(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0 || n > 65535) return luaL_error(L, "task.tracenode: node must be 0..65535, got %I", n);
    task_trace_node(st->s, (unsigned)n);
    return 0;
}

static int task__l_tracespawn(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)task_trace_spawn(task__l_st(L)->s));
    return 1;
}

static int task__l_traceset(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_Integer id = luaL_checkinteger(L, 1);
    lua_pushinteger(L, (lua_Integer)task_trace_set(st->s, (uint64_t)id));
    return 1;
}

static int task__l_tracepropagate(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)task_trace_propagate(task__l_st(L)->s));
    return 1;
}

/* traceparent() -> the W3C header for the running task's trace as it
   leaves this node (tracepropagate()); traceparent(header) -> trace id,
   or nil, err. The mapping is task.h's task_trace_format/parse. */
static int task__l_traceparent(lua_State *L) {
    task__l_state *st = task__l_st(L);
    char buf[TASK_TRACE_HEADER_LEN + 1];
    uint64_t id;
    size_t len;
    const char *h;
    if (lua_isnoneornil(L, 1)) {
        id = task_trace_propagate(st->s);
        if (task_trace_format(id, buf) != TASK_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "task.traceparent: no trace id (bits 63..16 are zero; call task.tracespawn())");
            return 2;
        }
        lua_pushstring(L, buf);
        return 1;
    }
    h = luaL_checklstring(L, 1, &len);
    if (strlen(h) != len || task_trace_parse(h, &id, NULL) != TASK_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "task.traceparent: invalid traceparent header");
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static void task__l_setref(lua_State *L, int idx, int *ref) {
    if (*ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    *ref = LUA_NOREF;
    if (!lua_isnil(L, idx)) {
        lua_pushvalue(L, idx);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

/* set_error_handler(fn | nil) -> the previous handler (nil: the default) */
static int task__l_set_error_handler(lua_State *L) {
    task__l_state *st = task__l_st(L);
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    if (st->r_handler != LUA_NOREF) task__l_getref(L, st->r_handler); else lua_pushnil(L);
    task__l_setref(L, 1, &st->r_handler);
    return 1;
}

static void task__l_rewatch(task__l_state *st) {
    st->watch = st->r_hresume != LUA_NOREF || st->r_hsuspend != LUA_NOREF || st->slow != 0;
}

/* hook([create [, term [, resume [, suspend]]]]) -> the previous four.
   create(Task) and term(Task) as a task is spawned and ends; resume(Task)
   before and suspend(Task, "yield" | "wait" | "end") after each time its
   code runs. nil clears one. */
static int task__l_hook(lua_State *L) {
    task__l_state *st = task__l_st(L);
    int *refs[4], i;
    refs[0] = &st->r_hcreate; refs[1] = &st->r_hterm; refs[2] = &st->r_hresume; refs[3] = &st->r_hsuspend;
    for (i = 1; i <= 4; i++)
        if (!lua_isnoneornil(L, i)) luaL_checktype(L, i, LUA_TFUNCTION);
    lua_settop(L, 4);
    for (i = 0; i < 4; i++) {
        if (*refs[i] != LUA_NOREF) task__l_getref(L, *refs[i]); else lua_pushnil(L);
    }
    for (i = 0; i < 4; i++) task__l_setref(L, i + 1, refs[i]);
    task__l_rewatch(st);
    return 4;
}

/* warn_slow(ms | nil) -> the previous limit (nil: off). A resume of a Lua
   task longer than ms goes to the error handler. */
static int task__l_warn_slow(lua_State *L) {
    task__l_state *st = task__l_st(L);
    uint64_t prev = st->slow;
    if (lua_isnoneornil(L, 1)) st->slow = 0;
    else {
        uint64_t ns = task__l_checkms(L, 1, "task.warn_slow");
        if (!st->clock) return luaL_error(L, "task.warn_slow: no clock to time resumes with (the host sets one with task_lua_set_clock)");
        st->slow = ns ? ns : 1;
    }
    task__l_rewatch(st);
    if (prev) lua_pushnumber(L, task__l_ms(prev)); else lua_pushnil(L);
    return 1;
}

/* profile([on]) -> whether it was on. On: per-task statistics (resumes,
   busy, longest) from now until the scheduler ends, timed with the clock
   of task_lua_set_clock (the module: the monotonic clock), and the place
   each new task is spawned at. Off: no more spawn places (the core keeps
   its statistics on). */
static int task__l_profile(lua_State *L) {
    task__l_state *st = task__l_st(L);
    int was = st->r_where != LUA_NOREF, on = lua_isnone(L, 1) || lua_toboolean(L, 1), rc;
    lua_pushboolean(L, was);
    if (on && !was) {
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        if ((rc = task_enable_stats(st->s, st->clock, st->clock_ud)) != TASK_OK) return task__l_fail(L, st, rc, "task.profile");
        st->r_where = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (!on && was) {
        luaL_unref(L, LUA_REGISTRYINDEX, st->r_where);
        st->r_where = LUA_NOREF;
    }
    return 1;
}

/* The ready hook of the standalone scheduler: task.on_ready's callback,
   protected, on the main thread. */
static int task__l_ready_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    if (st->r_ready == LUA_NOREF) return 0;
    task__l_getref(L, st->r_ready);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        lua_pushnil(L);
        lua_pushnil(L);
        task__l_report(L, st);
    }
    return 0;
}

static void task__l_on_ready_cb(task_sched *s, void *ud) {
    task__l_state *st = (task__l_state *)ud;
    lua_State *L = st->L;
    (void)s;
    if (st->closed || st->r_ready == LUA_NOREF || !lua_checkstack(L, 3)) return;
    lua_pushcfunction(L, task__l_ready_p);
    lua_pushlightuserdata(L, st);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1); /* out of memory */
}

/* on_ready(fn | nil) -> the previous callback. fn() is called, outside
   ticks, when a task becomes ready while none was: a foreign event loop
   (luv, cqueues) then knows to tick soon instead of blocking. */
static int task__l_on_ready(lua_State *L) {
    task__l_state *st = task__l_st(L);
    if (!st->owns) return luaL_error(L, "task.on_ready: the host drives this scheduler (task_set_ready_hook is the host's)");
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    if (st->r_ready != LUA_NOREF) task__l_getref(L, st->r_ready); else lua_pushnil(L);
    task__l_setref(L, 1, &st->r_ready);
    task_set_ready_hook(st->s, st->r_ready != LUA_NOREF ? task__l_on_ready_cb : NULL, st);
    return 1;
}

/* ---- cancel tokens ------------------------------------------------------ */

static task__l_token *task__l_pushtoken(lua_State *L, task__l_state *st, task_id id, int owned) {
    task__l_token *tk = (task__l_token *)lua_newuserdatauv(L, sizeof *tk, 0);
    tk->st = st;
    tk->id = id;
    tk->owned = owned;
    luaL_setmetatable(L, task__l_class_key[TASK__L_C_TOKEN]);
    return tk;
}

static int task__l_cancel_token(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task_id parent = 0, id = 0;
    task__l_token *tk;
    int rc;
    if (!lua_isnoneornil(L, 1)) parent = ((task__l_token *)task__l_check(L, st, 1, TASK__L_C_TOKEN))->id;
    tk = task__l_pushtoken(L, st, 0, 0); /* first, so a failure below leaks nothing */
    if ((rc = task_token_new(st->s, parent, &id)) != TASK_OK) return task__l_fail(L, st, rc, "task.cancel_token");
    tk->id = id;
    tk->owned = 1;
    return 1;
}

static int task__l_token_cancel(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_token *tk = (task__l_token *)task__l_check(L, st, 1, TASK__L_C_TOKEN);
    lua_pushboolean(L, task_token_cancel(st->s, tk->id) == TASK_OK);
    return 1;
}

static int task__l_token_is_cancelled(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_token *tk = (task__l_token *)task__l_check(L, st, 1, TASK__L_C_TOKEN);
    lua_pushboolean(L, task_token_cancelled(st->s, tk->id) == 1);
    return 1;
}

static int task__l_token_check(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_token *tk = (task__l_token *)task__l_check(L, st, 1, TASK__L_C_TOKEN);
    if (task_token_cancelled(st->s, tk->id) == 1) return task__l_raise_cancelled(L);
    return 0;
}

static int task__l_token_gc(lua_State *L) {
    task__l_token *tk = (task__l_token *)task__l_check_raw(L, 1, TASK__L_C_TOKEN);
    if (tk->owned && tk->st->s && !tk->st->closed) task_token_release(tk->st->s, tk->id);
    tk->owned = 0;
    return 0;
}

/* ---- channels ------------------------------------------------------------ */

#define task__l_checkchan(L, st, i) ((task__l_chan *)task__l_check((L), (st), (i), TASK__L_C_CHAN))

static int task__l_channel(lua_State *L) {
    lua_Integer cap = 64;
    task__l_chan *ch;
    task__l_st(L); /* only to refuse once the module is closed */
    if (lua_type(L, 1) == LUA_TNUMBER) { /* 2.0 is 2, as everywhere in Lua 5.4 */
        int isint;
        cap = lua_tointegerx(L, 1, &isint);
        if (!isint || cap <= 0) return luaL_error(L, "task.channel: capacity must be positive");
    } else if (lua_type(L, 1) == LUA_TTABLE) {
        if (lua_getfield(L, 1, "capacity") != LUA_TNIL) {
            int isint;
            cap = lua_tointegerx(L, -1, &isint);
            if (!isint || lua_type(L, -1) != LUA_TNUMBER || cap <= 0)
                return luaL_error(L, "task.channel: capacity must be positive");
        }
        lua_pop(L, 1);
    } else if (!lua_isnoneornil(L, 1)) {
        return luaL_typeerror(L, 1, "nil, number or table");
    }
    ch = (task__l_chan *)lua_newuserdatauv(L, sizeof *ch, 1);
    memset(ch, 0, sizeof *ch);
    ch->cap = cap;
    luaL_setmetatable(L, task__l_class_key[TASK__L_C_CHAN]);
    lua_createtable(L, cap < 64 ? (int)cap : 64, 0);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* The buffer is a ring in the channel's user value: slots 1..cap. A store
   that may allocate (a new key) comes before the count changes, so a
   memory error leaves the channel as it was. */
static void task__l_chan_put(lua_State *L, int chidx, task__l_chan *ch) { /* pops the value */
    lua_getiuservalue(L, chidx, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (ch->head + ch->count) % ch->cap + 1);
    lua_pop(L, 1);
    ch->count++;
}

/* Pushes the value at the head. A blocked sender's value takes the freed
   place: the ring is full while senders wait, so that place is the tail
   and the store overwrites a key that exists. */
static void task__l_chan_take(lua_State *L, task__l_state *st, int chidx, task__l_chan *ch) {
    lua_Integer slot = ch->head + 1;
    task__l_reg *r = ch->count == ch->cap ? task__l_q_first(st, &ch->sendq) : NULL;
    lua_getiuservalue(L, chidx, 1);
    lua_rawgeti(L, -1, slot);
    if (r) {
        lua_State *sco = r->task->co;
        lua_pushvalue(sco, r->vidx); /* room reserved when it parked */
        lua_xmove(sco, L, 1);
    } else lua_pushnil(L);
    lua_rawseti(L, -3, slot);
    lua_remove(L, -2);
    ch->head = (ch->head + 1) % ch->cap;
    if (r) task__l_complete(st, r, TASK__L_W_SENT);
    else ch->count--;
}

/* Non-blocking receive: pushes the outcome and returns its count, or 0. */
static int task__l_chan_poll(lua_State *L, task__l_state *st, int chidx, task__l_chan *ch) {
    if (ch->count > 0) {
        task__l_chan_take(L, st, chidx, ch);
        return 1;
    }
    if (ch->closed) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    return 0;
}

/* After a wait on a channel (recv, send) or a timer: the outcome. */
static int task__l_k_chan(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    (void)status;
    task__l_unqueue(t);
    if (t->why == TASK_WHY_CANCEL) return task__l_raise_cancelled(L);
    switch (t->wake) {
    case TASK__L_W_VALUE: return lua_gettop(L) - t->kbase;
    case TASK__L_W_CLOSED: lua_pushnil(L); lua_pushliteral(L, "closed"); return 2;
    default: lua_pushboolean(L, 1); return 1; /* sent, fired */
    }
}

/* The running task parks on one awaitable's queue (vidx: a sender's value). */
static int task__l_park_on(lua_State *L, task__l_state *st, const char *fn, void *obj, int kind, task__l_regq *q, int vidx, int wk) {
    task__l_task *t = task__l_need(L, st, fn);
    int rc;
    if ((rc = task_park_as(st->s, (unsigned)wk)) != TASK_OK) return task__l_fail(L, st, rc, fn);
    task__l_reg_add(&t->direct, t, obj, kind, 0, q);
    t->direct.vidx = vidx;
    return task__l_park(L, t, TASK_STEP_SUSPEND, wk, task__l_k_chan);
}

static int task__l_chan_send(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_chan *ch = task__l_checkchan(L, st, 1);
    task__l_reg *r;
    lua_settop(L, 2);
    task__l_checkcancel(L, st);
    if (ch->closed) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    if ((r = task__l_q_first(st, &ch->recvq)) != NULL) { /* straight to a waiting receiver */
        lua_pushvalue(L, 2);
        task__l_give(L, r->task, 1);
        task__l_complete(st, r, TASK__L_W_VALUE);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (ch->count < ch->cap) {
        lua_pushvalue(L, 2);
        task__l_chan_put(L, 1, ch);
        lua_pushboolean(L, 1);
        return 1;
    }
    return task__l_park_on(L, st, "Channel:send", ch, TASK__L_C_CHAN, &ch->sendq, 2, TASK__L_WK_SEND);
}

static int task__l_chan_try_send(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_chan *ch = task__l_checkchan(L, st, 1);
    task__l_reg *r;
    lua_settop(L, 2);
    if (ch->closed) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    if ((r = task__l_q_first(st, &ch->recvq)) != NULL) {
        lua_pushvalue(L, 2);
        task__l_give(L, r->task, 1);
        task__l_complete(st, r, TASK__L_W_VALUE);
    } else if (ch->count < ch->cap) {
        lua_pushvalue(L, 2);
        task__l_chan_put(L, 1, ch);
    } else {
        lua_pushnil(L);
        lua_pushliteral(L, "full");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int task__l_chan_recv(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_chan *ch = task__l_checkchan(L, st, 1);
    int n;
    lua_settop(L, 1);
    task__l_checkcancel(L, st);
    if ((n = task__l_chan_poll(L, st, 1, ch)) > 0) return n;
    return task__l_park_on(L, st, "Channel:recv", ch, TASK__L_C_CHAN, &ch->recvq, 0, TASK__L_WK_RECV);
}

static int task__l_chan_try_recv(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_chan *ch = task__l_checkchan(L, st, 1);
    int n;
    lua_settop(L, 1);
    if ((n = task__l_chan_poll(L, st, 1, ch)) > 0) return n;
    lua_pushnil(L);
    lua_pushliteral(L, "empty");
    return 2;
}

/* Wakes every waiter with its closed result; allocates nothing, so it
   completes whatever the memory left. */
static int task__l_chan_close(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_chan *ch = task__l_checkchan(L, st, 1);
    if (!ch->closed) {
        ch->closed = 1;
        task__l_complete_all(st, &ch->recvq, TASK__L_W_CLOSED);
        task__l_complete_all(st, &ch->sendq, TASK__L_W_CLOSED);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int task__l_chan_len(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_pushinteger(L, task__l_checkchan(L, st, 1)->count);
    return 1;
}

static int task__l_chan_tostring(lua_State *L) {
    task__l_chan *ch = (task__l_chan *)task__l_check_raw(L, 1, TASK__L_C_CHAN);
    lua_pushfstring(L, "Channel (%I/%I%s)", ch->count, ch->cap, ch->closed ? ", closed" : "");
    return 1;
}

/* ---- timers (awaitables) ------------------------------------------------ */

#define task__l_checktimer(L, st, i) ((task__l_timer *)task__l_check((L), (st), (i), TASK__L_C_TIMER))

static void task__l_timer_unanchor(lua_State *L, task__l_state *st, task__l_timer *tm) {
    task__l_getref(L, st->r_timers);
    lua_pushnil(L);
    lua_rawsetp(L, -2, tm);
    lua_pop(L, 1);
}

static void task__l_timer_fired(task_sched *s, task_id id, void *ud) {
    task__l_timer *tm = (task__l_timer *)ud;
    task__l_state *st = tm->st;
    (void)s; (void)id;
    tm->fired = 1;
    task__l_complete_all(st, &tm->waitq, TASK__L_W_FIRED);
    if (lua_checkstack(st->L, 3)) task__l_timer_unanchor(st->L, st, tm);
}

static int task__l_timer_new(lua_State *L) {
    task__l_state *st = task__l_st(L);
    uint64_t ns = task__l_checkms(L, 1, "task.timer");
    task__l_timer *tm = (task__l_timer *)lua_newuserdatauv(L, sizeof *tm, 0);
    int rc;
    memset(tm, 0, sizeof *tm);
    tm->st = st;
    luaL_setmetatable(L, task__l_class_key[TASK__L_C_TIMER]);
    task__l_getref(L, st->r_timers);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, tm); /* anchored while armed: the core holds its address */
    lua_pop(L, 1);
    if ((rc = task_after(st->s, ns, task__l_timer_fired, tm, &tm->id)) != TASK_OK) {
        task__l_timer_unanchor(L, st, tm);
        return task__l_fail(L, st, rc, "task.timer");
    }
    return 1;
}

static int task__l_timer_wait(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_timer *tm = task__l_checktimer(L, st, 1);
    lua_settop(L, 1);
    task__l_checkcancel(L, st);
    if (tm->fired) { lua_pushboolean(L, 1); return 1; }
    return task__l_park_on(L, st, "Timer:wait", tm, TASK__L_C_TIMER, &tm->waitq, 0, TASK__L_WK_TIMER);
}

static int task__l_timer_cancel(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_timer *tm = task__l_checktimer(L, st, 1);
    int ok = !tm->fired && !tm->cancelled;
    if (ok) {
        task_timer_cancel(st->s, tm->id);
        tm->cancelled = 1;
        task__l_timer_unanchor(L, st, tm);
    }
    lua_pushboolean(L, ok);
    return 1;
}

static int task__l_timer_done(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_pushboolean(L, task__l_checktimer(L, st, 1)->fired);
    return 1;
}

/* ---- select ---------------------------------------------------------------- */

/* Stack: list, registrations (their user values anchor the awaitables). */
static int task__l_k_select(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    task__l_state *st = t->st;
    int won = t->won, n = lua_gettop(L) - t->kbase, w;
    (void)status;
    task__l_unqueue(t);
    task__l_unanchor_sel(L, st, t);
    if (t->why == TASK_WHY_CANCEL) return task__l_raise_cancelled(L);
    switch (t->wake) {
    case TASK__L_W_VALUE: /* a channel's value */
        lua_pushinteger(L, won);
        lua_insert(L, -(n + 1));
        return n + 1;
    case TASK__L_W_CLOSED:
        lua_pushinteger(L, won);
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 3;
    case TASK__L_W_ENDED: /* a task: its outcome, as join */
        lua_getiuservalue(L, 2, won);
        w = lua_gettop(L);
        lua_pushinteger(L, won);
        return 1 + task__l_take(L, st, (task__l_task *)lua_touserdata(L, w), w);
    default: /* a timer */
        lua_pushinteger(L, won);
        lua_pushboolean(L, 1);
        return 2;
    }
}

static int task__l_select(lua_State *L) {
    task__l_state *st = task__l_st(L);
    lua_Integer i, n;
    task__l_task *t;
    task__l_reg *regs;
    int rc;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    task__l_checkcancel(L, st);
    n = (lua_Integer)lua_rawlen(L, 1);
    if (n < 1) return luaL_error(L, "task.select: the list is empty");
    if (n > 100000) return luaL_error(L, "task.select: the list is too long");
    /* Made before the list is read, which is read once: allocating can run
       the collector (weak entries, finalizers that rewrite the list). */
    regs = (task__l_reg *)lua_newuserdatauv(L, sizeof *regs * (size_t)n, (int)n);
    memset(regs, 0, sizeof *regs * (size_t)n);
    for (i = 1; i <= n; i++) { /* ready now? the lowest index wins */
        int cls, r;
        void *u;
        lua_rawgeti(L, 1, i);
        cls = task__l_classof(L, -1, st);
        u = lua_touserdata(L, -1);
        switch (cls) {
        case TASK__L_C_TASK:
            if (u == st->cur) return luaL_error(L, "task.select: a task cannot wait for itself");
            if (((task__l_task *)u)->ended || ((task__l_task *)u)->joined) {
                int idx = lua_gettop(L);
                lua_pushinteger(L, i);
                return 1 + task__l_take(L, st, (task__l_task *)u, idx);
            }
            break;
        case TASK__L_C_CHAN:
            lua_pushinteger(L, i);
            if ((r = task__l_chan_poll(L, st, lua_gettop(L) - 1, (task__l_chan *)u)) > 0) return r + 1;
            lua_pop(L, 1);
            break;
        case TASK__L_C_TIMER:
            if (((task__l_timer *)u)->fired) { lua_pushinteger(L, i); lua_pushboolean(L, 1); return 2; }
            break;
        default:
            lua_pushfstring(L, "element %I is not a Task, Channel or Timer", i);
            return luaL_argerror(L, 1, lua_tostring(L, -1));
        }
        regs[i - 1].kind = cls;
        regs[i - 1].obj = u;
        lua_setiuservalue(L, 2, (int)i);
    }
    t = task__l_need(L, st, "task.select");
    task__l_anchor_sel(L, st, t, 2);
    if ((rc = task_park_as(st->s, TASK__L_WK_SELECT)) != TASK_OK) {
        task__l_unanchor_sel(L, st, t);
        return task__l_fail(L, st, rc, "task.select");
    }
    for (i = 0; i < n; i++) {
        task__l_reg *r = &regs[i];
        task__l_regq *q = r->kind == TASK__L_C_TASK ? &((task__l_task *)r->obj)->waitq
                   : r->kind == TASK__L_C_CHAN ? &((task__l_chan *)r->obj)->recvq : &((task__l_timer *)r->obj)->waitq;
        task__l_reg_add(r, t, r->obj, r->kind, (int)i + 1, q);
    }
    t->sel = regs;
    t->nsel = (int)n;
    t->won = 0;
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_SELECT, task__l_k_select);
}

/* ---- scopes and the combinators ------------------------------------------ */

/* A Scope's user values: 1 name, 2 the first error, 3 the Task that raised
   it. What runs in it (sc->kind) decides what closing it returns. */
enum { TASK__L_SC_SCOPE = 0, TASK__L_SC_WITH_TIMEOUT, TASK__L_SC_ALL, TASK__L_SC_RACE, TASK__L_SC_TIMEOUT };

#define task__l_checkscope(L, st, i) ((task__l_scope *)task__l_check((L), (st), (i), TASK__L_C_SCOPE))

/* Raises the error left on top when the task parked (to finish an
   arrangement the core needs it to park for). */
static int task__l_k_raise(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    (void)status;
    return lua_error(L);
}

/* Opens a scope owned by the running task t and pushes its Scope (its name
   at nameidx, or none). The Scope is recorded under its slot in r_scopes:
   errors of its members find it there, and a deadline timer holds its
   address, so it lives until the scope ends (task__l_scope_end). */
static task__l_scope *task__l_scope_new(lua_State *L, task__l_state *st, task__l_task *t, int nameidx, int kind) {
    task__l_scope *sc;
    task_id id = 0;
    uint32_t slot;
    int rc;
    if (nameidx) nameidx = lua_absindex(L, nameidx);
    luaL_checkstack(L, 6, "task.scope");
    sc = (task__l_scope *)lua_newuserdatauv(L, sizeof *sc, 3);
    memset(sc, 0, sizeof *sc);
    sc->kind = (unsigned char)kind;
    luaL_setmetatable(L, task__l_class_key[TASK__L_C_SCOPE]);
    if (nameidx) {
        lua_pushvalue(L, nameidx);
        lua_setiuservalue(L, -2, 1);
    }
    task__l_getref(L, st->r_scopes); /* the key a new slot gets is made now: storing later cannot fail */
    if (lua_rawgeti(L, -1, (lua_Integer)st->shi + 1) == LUA_TNIL) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, -3, (lua_Integer)st->shi + 1);
    }
    lua_pop(L, 1);
    rc = kind == TASK__L_SC_TIMEOUT ? task_cancel_scope_open(st->s, &id) : task_scope_open(st->s, &id);
    if (rc != TASK_OK) task__l_fail(L, st, rc, "task.scope");
    sc->id = id;
    sc->owner = t;
    sc->open = 1;
    t->nscopes++;
    slot = (uint32_t)id;
    /* The core frees a scope's slot when the scope closes (its last
       member ended), before its owner runs again to end it here: a scope
       opened in between gets that slot. The old one ends now, so its
       deadline cannot outlive it and its end cannot clear the new one's
       record (which errors of its members, and the end of its owner, find
       it by). */
    if (slot <= st->shi) {
        if (lua_rawgeti(L, -1, slot) == LUA_TUSERDATA) {
            task__l_scope *old = (task__l_scope *)lua_touserdata(L, -1);
            if (old != sc && old->open) task__l_scope_end(L, st, old);
        }
        lua_pop(L, 1);
    }
    lua_pushvalue(L, -2);
    if (slot <= st->shi + 1) {
        lua_rawseti(L, -2, slot);
        if (slot > st->shi) st->shi = slot;
    } else { /* slots others took: the store may need room */
        lua_pushcfunction(L, task__l_anchor_p);
        lua_insert(L, -3);
        lua_pushinteger(L, slot);
        lua_insert(L, -2);
        if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
            sc->open = 0;
            t->nscopes--;
            sc->owner = NULL;
            if (kind == TASK__L_SC_TIMEOUT) {
                task_cancel_scope_close(st->s, id);
                lua_error(L);
            }
            /* an empty scope closes at once, but the core needs the owner
               to park for it */
            if (task_scope_close(st->s, id) == TASK_OK) task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_NONE, task__l_k_raise);
            lua_error(L);
        }
        lua_pushnil(L); /* for the pop below */
    }
    lua_pop(L, 1);
    return sc;
}

/* The scope is over (closed, or its owner ended): no deadline may fire
   for it any more, and it is no longer recorded. */
static void task__l_scope_end(lua_State *L, task__l_state *st, task__l_scope *sc) {
    if (sc->timer) {
        task_timer_cancel(st->s, sc->timer);
        sc->timer = 0;
    }
    if (sc->open) {
        task__l_getref(L, st->r_scopes);
        lua_pushboolean(L, 0); /* false, not nil: the key stays for the next scope */
        lua_rawseti(L, -2, (lua_Integer)(uint32_t)sc->id);
        lua_pop(L, 1);
        sc->open = 0;
        if (sc->owner) sc->owner->nscopes--;
    }
    sc->owner = NULL;
}

static void task__l_grace_fired(task_sched *s, task_id id, void *ud) {
    task__l_scope *sc = (task__l_scope *)ud;
    (void)id;
    sc->timer = 0;
    task_scope_abort(s, sc->id);
}

/* A scope's deadline: cancel it; grace later, abort what is left. */
static void task__l_deadline_fired(task_sched *s, task_id id, void *ud) {
    task__l_scope *sc = (task__l_scope *)ud;
    (void)id;
    sc->timer = 0;
    sc->expired = 1;
    task_scope_cancel(s, sc->id);
    if (sc->grace != TASK_FOREVER && task_after(s, sc->grace, task__l_grace_fired, sc, &sc->timer) != TASK_OK) {
        sc->timer = 0;
        task_scope_abort(s, sc->id); /* no room for the grace timer: no grace */
    }
}


static int task__l_k_scope_closed(lua_State *L, int status, lua_KContext ctx);

/* The body of a scope (fn, or a combinator's own) returned or raised; its
   results are above the Scope at index 3. An error is the scope's first
   unless a member failed before, and cancels the rest. Then the owner
   waits for every member. */
static int task__l_k_scope_body(lua_State *L, int status, lua_KContext ctx) {
    task__l_task *t = (task__l_task *)ctx;
    task__l_state *st = t->st;
    task__l_scope *sc;
    int rc;
    if (st->cur != t) { /* a resume that was not the scheduler's */
        if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
        return task__l_foreign(L, t);
    }
    sc = (task__l_scope *)lua_touserdata(L, 3);
    if (status != LUA_OK && status != LUA_YIELD) {
        if (!sc->failed) {
            lua_pushvalue(L, -1);
            lua_setiuservalue(L, 3, 2);
            sc->failed = 1;
        }
        lua_settop(L, 3);
        task_scope_cancel(st->s, sc->id);
    }
    if (!lua_checkstack(L, TASK__L_RESERVE)) { /* out of room: end the scope the hard way */
        task_scope_abort(st->s, sc->id);
        return luaL_error(L, "task.scope: stack overflow");
    }
    if ((rc = task_scope_close(st->s, sc->id)) != TASK_OK) return task__l_fail(L, st, rc, "task.scope");
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_SCOPE, task__l_k_scope_closed);
}

/* Runs the function below the top nargs values as the body of the scope at
   index 3 (a yieldable protected call), then closes the scope. */
static int task__l_scope_run(lua_State *L, task__l_task *t, int nargs) {
    return task__l_k_scope_body(L, lua_pcallk(L, nargs, LUA_MULTRET, 0, (lua_KContext)t, task__l_k_scope_body),
                           (lua_KContext)t);
}


/* Closing the scope at index 3 is over: what each combinator returns. */
static int task__l_k_scope_closed(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    task__l_state *st = t->st;
    task__l_scope *sc = (task__l_scope *)lua_touserdata(L, 3);
    int base = 3, i, n;
    (void)status;
    task__l_scope_end(L, st, sc);
    if (sc->kind == TASK__L_SC_WITH_TIMEOUT && sc->expired) {
        lua_Number ms = lua_tonumber(L, 1);
        lua_Integer whole;
        if (TASK__L_NUM2INT(ms, &whole) && (lua_Number)whole == ms) lua_pushinteger(L, whole); /* 10, not 10.0 */
        else lua_pushnumber(L, ms);
        return luaL_error(L, "task.with_timeout: exceeded %s ms", lua_tostring(L, -1));
    }
    if (sc->failed) {
        lua_getiuservalue(L, 3, 2);
        return lua_error(L);
    }
    task__l_checkcancel(L, st); /* the owner's own cancel: the body may have swallowed it */
    switch (sc->kind) {
    case TASK__L_SC_ALL: { /* 4: the children; results in order, the first error (by index) raised */
        int failed = 0;
        n = (int)lua_rawlen(L, 4);
        lua_createtable(L, n, 0); /* 5 */
        lua_pushnil(L);           /* 6: the first error */
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, 4, i);
            if (task__l_outcome(L, st, (task__l_task *)lua_touserdata(L, -1), lua_gettop(L), 1) >= 0) lua_rawseti(L, 5, i);
            else if (!failed) { failed = 1; lua_replace(L, 6); }
            else lua_pop(L, 1);
            lua_pop(L, 1);
        }
        if (failed) return lua_error(L);
        lua_pop(L, 1);
        return 1;
    }
    case TASK__L_SC_RACE: { /* 4: the winner's index, 5: the children */
        lua_Integer won = lua_tointeger(L, 4);
        lua_rawgeti(L, 5, won);
        if (task__l_outcome(L, st, (task__l_task *)lua_touserdata(L, -1), lua_gettop(L), 1) < 0) return lua_error(L);
        lua_pushinteger(L, won);
        lua_insert(L, -2);
        return 2;
    }
    default: /* scope, with_timeout: the body's results */
        return lua_gettop(L) - base;
    }
}

/* scope([name,] fn) */
static int task__l_scope_fn(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_task *t;
    if (lua_isnoneornil(L, 2) && lua_type(L, 1) == LUA_TFUNCTION) { /* scope(fn) */
        lua_settop(L, 1);
        lua_pushnil(L);
        lua_insert(L, 1);
    }
    lua_settop(L, 2);
    if (!lua_isnil(L, 1) && lua_type(L, 1) != LUA_TSTRING) luaL_typeerror(L, 1, "string");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.scope");
    task__l_scope_new(L, st, t, lua_isnil(L, 1) ? 0 : 1, TASK__L_SC_SCOPE); /* 3 */
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    return task__l_scope_run(L, t, 1);
}

/* The grace of with_timeout's opts at idx (nil: the default). */
static uint64_t task__l_grace(lua_State *L, int idx) {
    uint64_t grace = 1000 * TASK_MSEC;
    if (lua_isnoneornil(L, idx)) return grace;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "grace_ms") != 0) {
            luaL_tolstring(L, -2, NULL);
            luaL_error(L, "task.with_timeout: unknown option '%s'", lua_tostring(L, -1));
        }
        lua_pop(L, 1);
    }
    if (lua_getfield(L, idx, "grace_ms") != LUA_TNIL) {
        int isnum;
        lua_Number g = lua_tonumberx(L, -1, &isnum);
        if (!isnum) luaL_error(L, "task.with_timeout: option 'grace_ms' must be a number");
        if (!task__l_msok(g)) task__l_badms(L, g, "task.with_timeout");
        grace = task__l_ms2ns(g);
    }
    lua_pop(L, 1);
    return grace;
}

/* with_timeout(ms, fn [, opts]): fn(scope) in a scope with a deadline */
static int task__l_with_timeout(lua_State *L) {
    task__l_state *st = task__l_st(L);
    uint64_t ns = task__l_checkms(L, 1, "task.with_timeout"), grace;
    task__l_task *t;
    task__l_scope *sc;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    grace = task__l_grace(L, 3);
    lua_settop(L, 2);
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.with_timeout");
    sc = task__l_scope_new(L, st, t, 0, TASK__L_SC_WITH_TIMEOUT); /* 3 */
    sc->grace = grace;
    if (task_after(st->s, ns, task__l_deadline_fired, sc, &sc->timer) != TASK_OK) {
        /* the scope is empty: end it as the body's error */
        sc->timer = 0;
        lua_pushliteral(L, "task.with_timeout: not enough memory");
        return task__l_k_scope_body(L, LUA_ERRMEM, (lua_KContext)t);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    return task__l_scope_run(L, t, 1);
}

/* all's body: spawns the functions as claimed members of the scope (its
   arguments: the Scope, then the functions); returns the table of their
   Tasks. */
static int task__l_all_body(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    int i, n = lua_gettop(L) - 1; /* the Scope, then the functions */
    task__l_scope *sc = (task__l_scope *)lua_touserdata(L, 1);
    task_opts o;
    memset(&o, 0, sizeof o);
    o.scope = sc->id;
    lua_createtable(L, n, 0);
    for (i = 1; i <= n; i++) {
        task__l_spawn_at(L, st, i + 1, 0, &o, 0, "task.all")->claimed = 1;
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* all(f1, ..., fn) -> {r1, ..., rn} */
static int task__l_all(lua_State *L) {
    task__l_state *st = task__l_st(L);
    int i, n = lua_gettop(L);
    task__l_task *t;
    for (i = 1; i <= n; i++) luaL_checktype(L, i, LUA_TFUNCTION);
    task__l_checkcancel(L, st);
    if (n == 0) { lua_newtable(L); return 1; } /* so all(table.unpack(fns)) works on {} */
    t = task__l_need(L, st, "task.all");
    luaL_checkstack(L, n + 8, "task.all");
    lua_pushnil(L);
    lua_pushnil(L);
    lua_rotate(L, 1, 2); /* 1, 2: unused; the functions from 3 */
    task__l_scope_new(L, st, t, 0, TASK__L_SC_ALL);
    lua_insert(L, 3); /* 3: the Scope */
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, task__l_all_body, 1);
    lua_insert(L, 4); /* the body, then its arguments: the Scope and the functions */
    lua_pushvalue(L, 3);
    lua_insert(L, 5);
    return task__l_scope_run(L, t, n + 1);
}

/* race's body, after its first wait: the index of the first child to end */
static int task__l_k_race_first(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    task__l_state *st = t->st;
    (void)status;
    task__l_unqueue(t);
    task__l_unanchor_sel(L, st, t);
    task_scope_cancel(st->s, ((task__l_scope *)lua_touserdata(L, 1))->id); /* the losers */
    if (t->why == TASK_WHY_CANCEL) return task__l_raise_cancelled(L);
    lua_pushinteger(L, t->won);
    lua_insert(L, -2); /* index, children */
    return 2;
}

/* race's body: spawns the functions as claimed members of the scope, then
   waits for the first of them to end. Stack: Scope, functions. */
static int task__l_race_body(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    int i, n = lua_gettop(L) - 1, rc;
    task__l_scope *sc = (task__l_scope *)lua_touserdata(L, 1);
    task__l_task *t = st->cur;
    task__l_reg *regs;
    task_opts o;
    memset(&o, 0, sizeof o);
    o.scope = sc->id;
    regs = (task__l_reg *)lua_newuserdatauv(L, sizeof *regs * (size_t)n, 0); /* n + 2 */
    memset(regs, 0, sizeof *regs * (size_t)n);
    lua_createtable(L, n, 0); /* n + 3: the children */
    for (i = 1; i <= n; i++) {
        task__l_spawn_at(L, st, i + 1, 0, &o, 0, "task.race")->claimed = 1;
        lua_rawseti(L, n + 3, i);
    }
    if (!lua_checkstack(L, TASK__L_RESERVE)) return luaL_error(L, "task.race: stack overflow");
    task__l_anchor_sel(L, st, t, n + 2);
    if ((rc = task_park_as(st->s, TASK__L_WK_RACE)) != TASK_OK) {
        task__l_unanchor_sel(L, st, t);
        return task__l_fail(L, st, rc, "task.race");
    }
    for (i = 1; i <= n; i++) {
        task__l_task *x;
        lua_rawgeti(L, n + 3, i);
        x = (task__l_task *)lua_touserdata(L, -1);
        lua_pop(L, 1);
        task__l_reg_add(&regs[i - 1], t, x, TASK__L_C_TASK, i, &x->waitq);
    }
    t->sel = regs;
    t->nsel = n;
    t->won = 0;
    lua_replace(L, 2); /* 1: Scope, 2: children */
    lua_settop(L, 2);
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_RACE, task__l_k_race_first);
}

/* race(f1, ..., fn) -> index, result of the first to end */
static int task__l_race(lua_State *L) {
    task__l_state *st = task__l_st(L);
    int i, n = lua_gettop(L);
    task__l_task *t;
    if (n == 0) return luaL_argerror(L, 1, "function expected, got no value");
    for (i = 1; i <= n; i++) luaL_checktype(L, i, LUA_TFUNCTION);
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.race");
    luaL_checkstack(L, n + 8, "task.race");
    lua_pushnil(L);
    lua_pushnil(L);
    lua_rotate(L, 1, 2);
    task__l_scope_new(L, st, t, 0, TASK__L_SC_RACE);
    lua_insert(L, 3);
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, task__l_race_body, 1);
    lua_insert(L, 4);
    lua_pushvalue(L, 3);
    lua_insert(L, 5);
    return task__l_scope_run(L, t, n + 1);
}

/* timeout's fn returned or raised: once the deadline fired, whatever fn
   did, the result is nil, "timeout". Stack: ms, fn, Scope, results. */
static int task__l_k_timeout(lua_State *L, int status, lua_KContext ctx) {
    task__l_task *t = (task__l_task *)ctx;
    task__l_state *st = t->st;
    task__l_scope *sc;
    int expired;
    if (st->cur != t) {
        if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
        return task__l_foreign(L, t);
    }
    sc = (task__l_scope *)lua_touserdata(L, 3);
    expired = sc->expired;
    task__l_scope_end(L, st, sc);
    task_cancel_scope_close(st->s, sc->id);
    if (expired) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
    lua_settop(L, 4); /* the first result, or nil */
    lua_pushnil(L);
    return 2;
}

/* timeout(ms, fn): fn runs in the calling task under a cancel scope whose
   token a core timer cancels: no task, no Lua allocation but the Scope. */
static int task__l_timeout(lua_State *L) {
    task__l_state *st = task__l_st(L);
    uint64_t ns = task__l_checkms(L, 1, "task.timeout");
    task__l_task *t;
    task__l_scope *sc;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.timeout");
    sc = task__l_scope_new(L, st, t, 0, TASK__L_SC_TIMEOUT); /* 3 */
    if (task_after(st->s, ns, task__l_deadline_fired, sc, &sc->timer) != TASK_OK) {
        sc->timer = 0;
        task__l_scope_end(L, st, sc);
        task_cancel_scope_close(st->s, sc->id);
        return luaL_error(L, "task.timeout: not enough memory");
    }
    sc->grace = TASK_FOREVER;
    lua_pushvalue(L, 2);
    return task__l_k_timeout(L, lua_pcallk(L, 0, LUA_MULTRET, 0, (lua_KContext)t, task__l_k_timeout), (lua_KContext)t);
}

/* external(start): alloc, start(id), wait(id) */
static int task__l_k_external(lua_State *L, int status, lua_KContext ctx) {
    task__l_task *t = (task__l_task *)ctx;
    task__l_state *st = t->st;
    task_id id;
    int rc;
    if (st->cur != t) {
        if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
        return task__l_foreign(L, t);
    }
    id = (task_id)lua_tointeger(L, 2);
    if (status != LUA_OK && status != LUA_YIELD) {
        task_ext_release(st->s, id);
        return lua_error(L);
    }
    lua_settop(L, 2);
    if (!lua_checkstack(L, TASK__L_RESERVE)) return luaL_error(L, "task.external: stack overflow");
    if ((rc = task_ext_wait(st->s, id)) != TASK_OK) {
        if (rc == TASK_ENOENT) return luaL_error(L, "task.external: unknown, already used or stale external id");
        return task__l_fail(L, st, rc, "task.external");
    }
    t->extwait = id;
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_EXT, task__l_k_wait);
}

static int task__l_external(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task_id id = 0;
    task__l_task *t;
    int rc;
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    task__l_checkcancel(L, st);
    t = task__l_need(L, st, "task.external");
    if ((rc = task_ext_alloc(st->s, &id)) != TASK_OK) return task__l_fail(L, st, rc, "task.external");
    lua_pushinteger(L, (lua_Integer)id); /* 2 */
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    return task__l_k_external(L, lua_pcallk(L, 1, 0, 0, (lua_KContext)t, task__l_k_external), (lua_KContext)t);
}

/* await(a): a:wait(), or a() for a callable */
static int task__l_index_wait_p(lua_State *L) {
    lua_getfield(L, 1, "wait");
    return 1;
}

static int task__l_k_await(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    return lua_gettop(L) - (int)ctx;
}

static int task__l_await(lua_State *L) {
    task__l_st(L);
    lua_settop(L, 1);
    lua_pushcfunction(L, task__l_index_wait_p);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_type(L, 2) == LUA_TFUNCTION) {
        lua_pushvalue(L, 1);
        lua_callk(L, 1, LUA_MULTRET, 1, task__l_k_await);
        return task__l_k_await(L, LUA_OK, 1);
    }
    lua_settop(L, 1);
    if (luaL_getmetafield(L, 1, "__call") != LUA_TNIL) {
        lua_pop(L, 1);
        lua_pushvalue(L, 1);
        lua_callk(L, 0, LUA_MULTRET, 1, task__l_k_await);
        return task__l_k_await(L, LUA_OK, 1);
    }
    return luaL_typeerror(L, 1, "awaitable");
}

/* after(ms, fn): a task that sleeps ms, then returns fn() */
static int task__l_k_after_call(lua_State *L, int status, lua_KContext ctx) {
    (void)status; (void)ctx;
    return lua_gettop(L) - 2;
}

static int task__l_k_after(lua_State *L, int status, lua_KContext ctx) {
    TASK__L_RESUMED(L, ctx, t);
    (void)status;
    if (t->why == TASK_WHY_CANCEL || task_self_cancelled(t->st->s)) return task__l_raise_cancelled(L);
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    lua_callk(L, 0, LUA_MULTRET, 0, task__l_k_after_call);
    return task__l_k_after_call(L, LUA_OK, 0);
}

static int task__l_after_body(lua_State *L) { /* ms (ns as an integer), fn */
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    task__l_task *t = task__l_need(L, st, "task.after");
    uint64_t ns = (uint64_t)lua_tointeger(L, 1);
    int rc;
    if (ns == 0) return task__l_park(L, t, TASK_STEP_YIELD, TASK__L_WK_YIELD, task__l_k_after);
    if ((rc = task_sleep(st->s, ns)) != TASK_OK) return task__l_fail(L, st, rc, "task.after");
    return task__l_park(L, t, TASK_STEP_SUSPEND, TASK__L_WK_SLEEP, task__l_k_after);
}

static int task__l_after(lua_State *L) {
    task__l_state *st = task__l_st(L);
    uint64_t ns = task__l_checkms(L, 1, "task.after");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, task__l_after_body, 1);
    lua_pushinteger(L, (lua_Integer)ns);
    lua_pushvalue(L, 2);
    task__l_spawn_at(L, st, 3, 2, NULL, 0, "task.after");
    return 1;
}

/* Scope methods */

static int task__l_scope_spawn(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_scope *sc = task__l_checkscope(L, st, 1);
    task_opts o;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!sc->open || sc->kind == TASK__L_SC_TIMEOUT || task_scope_count(st->s, sc->id) < 0)
        return luaL_error(L, "Scope:spawn: the scope is closed");
    memset(&o, 0, sizeof o);
    o.scope = sc->id;
    task__l_spawn_at(L, st, 2, lua_gettop(L) - 2, &o, 0, "Scope:spawn");
    return 1;
}

static int task__l_scope_cancel(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_scope *sc = task__l_checkscope(L, st, 1);
    lua_pushboolean(L, sc->open && task_scope_cancel(st->s, sc->id) == TASK_OK);
    return 1;
}

static int task__l_scope_token(lua_State *L) {
    task__l_state *st = task__l_st(L);
    task__l_scope *sc = task__l_checkscope(L, st, 1);
    task_id k = 0;
    if (sc->open) task_scope_token(st->s, sc->id, &k);
    if (!k) return luaL_error(L, "Scope:token: the scope is closed");
    task__l_pushtoken(L, st, k, 0);
    return 1;
}

static int task__l_scope_index(lua_State *L) {
    const char *k = lua_tostring(L, 2);
    task__l_check_raw(L, 1, TASK__L_C_SCOPE);
    if (k && strcmp(k, "name") == 0) lua_getiuservalue(L, 1, 1);
    else {
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
    }
    return 1;
}

/* ---- the standalone loop ------------------------------------------------ */

#ifdef TASK_LUA_MODULE
static int task__l_abort_each(task_sched *s, task_id id, int state, void *ud) {
    /* an ended one has nothing to abort, and its Task may be gone (see
       task__l_drop_each): do not look at it */
    if (state == TASK_EXIT) return 0;
    if (task__l_luatask((task__l_state *)ud, id)) task_abort(s, id);
    return 0;
}

static uint64_t task__l_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}

static uint64_t task__l_mono(void *ud) { (void)ud; return task__l_clock(); }

/* Ctrl-C under task.run: signals are the process's, so this is the one
   place with state outside the scheduler. The handler only sets a flag
   and, as lua.c does, a hook on the thread running now; the loop does
   the rest. */
static volatile sig_atomic_t task__l_sigint;
static task__l_state *volatile task__l_sigst;

/* The first Ctrl-C raises once, as in lua.c, so the task's to-be-closed
   variables run; from the second on it raises at every instruction, so a
   pcall loop cannot swallow it. */
static void task__l_interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    if (task__l_sigint < 2) lua_sethook(L, NULL, 0, 0);
    task__l_raise_literal(L, "interrupted!");
}

static void task__l_on_sigint(int sig) {
    task__l_state *st = task__l_sigst;
    task__l_task *t = st ? st->cur : NULL;
    (void)sig;
    if (task__l_sigint < 2) task__l_sigint++;
    if (t) lua_sethook(t->co, task__l_interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Ends every task (their to-be-closed variables run) and the loop. */
static void task__l_run_stop(task__l_state *st) {
    int i;
    for (i = 0; i < 100 && task_count(st->s, -1) > 0; i++) {
        task_foreach(st->s, task__l_abort_each, st);
        task_tick(st->s, task__l_clock());
    }
    st->looping = 0;
}

/* The main task failed: its error, and when it is a string, the traceback
   of the task where it was raised below it. */
static int task__l_run_error(lua_State *L, task__l_state *st, task__l_task *main, int idx) {
    if (main->ended != TASK_EXIT_FAIL) return task__l_take(L, st, main, idx);
    task__l_info(L, idx, "err");
    if (lua_type(L, -1) == LUA_TSTRING) {
        task__l_info(L, idx, "otb");
        if (lua_isnil(L, -1)) { lua_pop(L, 1); task__l_info(L, idx, "tb"); }
        if (lua_isstring(L, -1)) {
            const char *tb = lua_tostring(L, -1);
            if (strncmp(tb, "stack traceback:", 16) == 0) tb += 16;
            lua_pushfstring(L, "%s\ntraceback of the failing task:%s", lua_tostring(L, -2), tb);
            lua_replace(L, -3);
        }
        lua_pop(L, 1);
    }
    main->joined = 1;
    task_release(st->s, main->id);
    return lua_error(L);
}
#endif

/* ---- driving the scheduler from a loop of one's own (standalone) ------- */

/* The owned scheduler, or an error naming fn: a host drives its own. */
static task__l_state *task__l_owned(lua_State *L, const char *fn) {
    task__l_state *st = task__l_st(L);
    if (!st->owns) luaL_error(L, "%s: the host drives this scheduler (call task_tick from the host loop)", fn);
    if (st->cur) luaL_error(L, "%s: called from inside a task", fn);
    return st;
}

/* step([max]) -> resumes: one tick on the monotonic clock, at most max
   resumes (the tick limit for this tick only). */
static int task__l_step_fn(lua_State *L) {
    task__l_state *st = task__l_owned(L, "task.step");
    lua_Integer max = luaL_optinteger(L, 1, 0);
    int n;
    luaL_argcheck(L, max >= 0 && max <= (lua_Integer)UINT_MAX, 1, "max must be 0..2^32-1 (0: no limit)");
    if (st->looping) return luaL_error(L, "task.step: task.run is driving the scheduler");
#ifdef TASK_LUA_MODULE
    task_set_tick_limit(st->s, (unsigned)max);
    n = task_tick(st->s, task__l_clock());
    task_set_tick_limit(st->s, 0);
#else
    n = TASK_EBUSY;
#endif
    if (n < 0) return task__l_fail(L, st, n, "task.step");
    lua_pushinteger(L, n);
    return 1;
}

/* poll_timeout() -> ms until the next tick is due (0: tasks are ready),
   or nil when nothing is pending: the time a loop may block. */
static int task__l_poll_timeout(lua_State *L) {
    task__l_state *st = task__l_owned(L, "task.poll_timeout");
    uint64_t ns;
#ifdef TASK_LUA_MODULE
    ns = task_timeout(st->s, task__l_clock());
#else
    ns = task_timeout(st->s, task_now(st->s));
#endif
    if (ns == TASK_FOREVER) lua_pushnil(L);
    else lua_pushnumber(L, task__l_ms(ns));
    return 1;
}

/* count() -> the live tasks of the scheduler */
static int task__l_count(lua_State *L) {
    lua_pushinteger(L, task_count(task__l_st(L)->s, -1));
    return 1;
}

/* run([opts,] fn, ...): fn as the main task, on the monotonic clock, until
   every task has ended; fn's results, or its error. opts.wake_limit sets
   task_set_wake_limit. */
static int task__l_run(lua_State *L) {
    task__l_state *st = task__l_st(L);
#ifdef TASK_LUA_MODULE
    task__l_task *main;
    int idx, fidx = 1;
    struct sigaction sa, old;
    if (lua_type(L, 1) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (k && strcmp(k, "wake_limit") == 0) {
                int isint;
                lua_Integer n = lua_tointegerx(L, -1, &isint);
                if (!isint || n < 0 || n > (lua_Integer)UINT_MAX)
                    return luaL_error(L, "task.run: option 'wake_limit' must be an integer 0..%u", UINT_MAX);
            } else {
                luaL_tolstring(L, -2, NULL);
                return luaL_error(L, "task.run: unknown option '%s'", lua_tostring(L, -1));
            }
            lua_pop(L, 1);
        }
        fidx = 2;
    }
    luaL_checktype(L, fidx, LUA_TFUNCTION);
    if (!st->owns) return luaL_error(L, "task.run: the host drives this scheduler (call task_tick from the host loop)");
    if (st->cur || st->looping) return luaL_error(L, "task.run: already running");
    if (fidx == 2 && lua_getfield(L, 1, "wake_limit") == LUA_TNUMBER)
        task_set_wake_limit(st->s, (unsigned)lua_tointeger(L, -1));
    if (fidx == 2) lua_pop(L, 1);
    main = task__l_spawn_at(L, st, fidx, lua_gettop(L) - fidx, NULL, 0, "task.run");
    main->claimed = 1;
    idx = lua_gettop(L);
    st->looping = 1;
    task__l_sigint = 0;
    task__l_sigst = st;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = task__l_on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    for (;;) {
        uint64_t wait;
        if (task_tick(st->s, task__l_clock()) == TASK_EBUSY) {
            /* inside a callback of a tick (a hook, the error handler) or
               of task.on_ready: no tick can run here, and the loop would
               spin for good. main never ran: it ends at the caller's. */
            sigaction(SIGINT, &old, NULL);
            task__l_sigst = NULL;
            st->looping = 0;
            task_abort(st->s, main->id);
            return luaL_error(L, "task.run: called from inside a hook, an error handler or task.on_ready's callback");
        }
        if (task__l_sigint) break;
        if (task_count(st->s, -1) == 0) break;
        /* ready tasks: no need to read the clock again before the next tick */
        wait = task_timeout(st->s, task_now(st->s));
        if (wait && wait != TASK_FOREVER) wait = task_timeout(st->s, task__l_clock());
        if (wait == TASK_FOREVER) { /* nothing can wake them: name each */
            int n = task__l_push_report(L, st, 1, task__l_report_now(st));
            sigaction(SIGINT, &old, NULL);
            task__l_sigst = NULL;
            task__l_run_stop(st);
            return luaL_error(L, "task.run: deadlock: %d task%s wait%s and nothing can wake them:\n%s",
                              n, n == 1 ? "" : "s", n == 1 ? "s" : "", lua_tostring(L, -1));
        }
        if (wait) {
            struct timespec ts;
            ts.tv_sec = (time_t)(wait / TASK_SEC);
            ts.tv_nsec = (long)(wait % TASK_SEC);
            nanosleep(&ts, NULL); /* a signal ends it early */
        }
    }
    sigaction(SIGINT, &old, NULL);
    task__l_sigst = NULL;
    if (task__l_sigint) {
        task__l_run_stop(st);
        lua_settop(L, idx);
        if (!main->ended) {
            main->claimed = 1;
        }
        return luaL_error(L, "interrupted!");
    }
    st->looping = 0;
    lua_settop(L, idx);
    return task__l_run_error(L, st, main, idx);
#else
    (void)st;
    return luaL_error(L, "task.run: only in the standalone module; this host drives the scheduler");
#endif
}

/* ---- registration ------------------------------------------------------- */

static const luaL_Reg task__l_funcs[] = {
    {"spawn", task__l_spawn}, {"fork", task__l_fork}, {"running", task__l_running}, {"current", task__l_current},
    {"status", task__l_status}, {"sleep", task__l_sleep}, {"yield", task__l_yield}, {"checkpoint", task__l_checkpoint},
    {"wait", task__l_wait}, {"wakeup", task__l_wakeup}, {"alloc", task__l_alloc}, {"resume", task__l_resume},
    {"cancel_token", task__l_cancel_token}, {"now", task__l_now}, {"select", task__l_select}, {"timer", task__l_timer_new},
    {"channel", task__l_channel}, {"taskstat", task__l_taskstat}, {"stats", task__l_stats}, {"pool", task__l_pool},
    {"set_error_handler", task__l_set_error_handler}, {"tasks", task__l_tasks},
    {"tracenode", task__l_tracenode}, {"tracespawn", task__l_tracespawn}, {"traceset", task__l_traceset},
    {"tracepropagate", task__l_tracepropagate}, {"traceparent", task__l_traceparent}, {"hook", task__l_hook},
    {"run", task__l_run}, {"step", task__l_step_fn}, {"poll_timeout", task__l_poll_timeout},
    {"count", task__l_count}, {"scope", task__l_scope_fn}, {"all", task__l_all}, {"race", task__l_race},
    {"timeout", task__l_timeout}, {"with_timeout", task__l_with_timeout}, {"external", task__l_external},
    {"await", task__l_await}, {"after", task__l_after}, {"dump", task__l_dump}, {"warn_slow", task__l_warn_slow},
    {"profile", task__l_profile}, {"on_ready", task__l_on_ready}, {NULL, NULL}};

static const luaL_Reg task__l_task_methods[] = {
    {"wait", task__l_join}, {"join", task__l_join}, {"cancel", task__l_task_cancel}, {"abort", task__l_task_abort},
    {"done", task__l_task_done}, {"is_finished", task__l_task_done}, {"detach", task__l_task_detach},
    {"elapsed", task__l_task_elapsed}, {"traceback", task__l_task_traceback}, {NULL, NULL}};

static const luaL_Reg task__l_scope_methods[] = {
    {"spawn", task__l_scope_spawn}, {"cancel", task__l_scope_cancel}, {"token", task__l_scope_token}, {NULL, NULL}};

static const luaL_Reg task__l_chan_methods[] = {
    {"send", task__l_chan_send}, {"try_send", task__l_chan_try_send}, {"wait", task__l_chan_recv}, {"recv", task__l_chan_recv},
    {"try_recv", task__l_chan_try_recv}, {"close", task__l_chan_close}, {"len", task__l_chan_len}, {NULL, NULL}};

static const luaL_Reg task__l_token_methods[] = {
    {"cancel", task__l_token_cancel}, {"is_cancelled", task__l_token_is_cancelled}, {"check", task__l_token_check}, {NULL, NULL}};

static const luaL_Reg task__l_timer_methods[] = {
    {"wait", task__l_timer_wait}, {"cancel", task__l_timer_cancel}, {"done", task__l_timer_done}, {NULL, NULL}};

/* "<Class>: 0x..." for the classes without a __tostring of their own;
   upvalue 2 is the class. */
static int task__l_plain_tostring(lua_State *L) {
    int cls = (int)lua_tointeger(L, lua_upvalueindex(2));
    task__l_check_raw(L, 1, cls);
    lua_pushfstring(L, "%s: %p", TASK__L_CLASS_NAME(cls), lua_topointer(L, 1));
    return 1;
}

/* A metatable whose methods and metamethods all see st as upvalue 1. */
static void task__l_newclass(lua_State *L, task__l_state *st, int sti, int cls, const luaL_Reg *methods,
                        lua_CFunction index, lua_CFunction tostring, lua_CFunction gc, lua_CFunction call) {
    luaL_newmetatable(L, task__l_class_key[cls]);
    st->mt[cls] = lua_topointer(L, -1);
    lua_newtable(L); /* methods */
    lua_pushvalue(L, sti);
    luaL_setfuncs(L, methods, 1);
    if (index == task__l_task_index) { /* its fields, see there */
        lua_pushinteger(L, TASK__L_F_ID);
        lua_setfield(L, -2, "id");
        lua_pushinteger(L, TASK__L_F_NAME);
        lua_setfield(L, -2, "name");
    }
    if (index) {
        lua_pushvalue(L, sti);
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, index, 2);
        lua_setfield(L, -3, "__index");
        lua_pop(L, 1);
    } else lua_setfield(L, -2, "__index");
    lua_pushvalue(L, sti);
    lua_pushinteger(L, cls);
    lua_pushcclosure(L, tostring ? tostring : task__l_plain_tostring, 2);
    lua_setfield(L, -2, "__tostring");
    if (gc) {
        lua_pushvalue(L, sti);
        lua_pushcclosure(L, gc, 1);
        lua_setfield(L, -2, "__gc");
    }
    if (call) {
        lua_pushvalue(L, sti);
        lua_pushcclosure(L, call, 1);
        lua_setfield(L, -2, "__call");
    }
    lua_pushstring(L, TASK__L_CLASS_NAME(cls)); /* "Task", not "task.Task" */
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* Frees every Lua task of this state: lua_close is tearing it down. */
static int task__l_drop_each(task_sched *s, task_id id, int state, void *ud) {
    /* an ended task's Task may be gone already (its __gc can fail to run
       when memory is short): do not look at it; task_destroy frees it */
    if (state == TASK_EXIT) return 0;
    if (task__l_luatask((task__l_state *)ud, id)) task_drop(s, id);
    return 0;
}

static int task__l_state_gc(lua_State *L) {
    task__l_state *st = (task__l_state *)luaL_testudata(L, 1, TASK__L_STATE);
    if (!st || !st->s) return 0;
    if (st->r_ready != LUA_NOREF) task_set_ready_hook(st->s, NULL, NULL);
    if (!st->closed) { /* (closed already: task_lua_open failed half way) */
        if (st->budget > 0 && lua_gethook(st->L) == task__l_budget_hook) lua_sethook(st->L, NULL, 0, 0);
        task_foreach(st->s, task__l_drop_each, st);
        task__l_getref(L, st->r_timers);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            task__l_timer *tm = (task__l_timer *)lua_touserdata(L, -1);
            if (tm && !tm->fired && !tm->cancelled) task_timer_cancel(st->s, tm->id);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        /* and the deadlines of open scopes (timeout, with_timeout): their
           timers point at Scopes this state is about to free, and a
           scheduler shared with another state would fire them */
        task__l_getref(L, st->r_scopes);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            task__l_scope *sc = (task__l_scope *)lua_touserdata(L, -1);
            if (sc && sc->timer) {
                task_timer_cancel(st->s, sc->timer);
                sc->timer = 0;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    st->closed = 1;
    if (st->owns) task_destroy(st->s);
    st->s = NULL;
    return 0;
}

static void *task__l_core_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    task__l_state *st = (task__l_state *)ud;
    void *p = st->lalloc(st->lalloc_ud, ptr, ptr ? osize : 0, nsize);
    if (p || nsize == 0) st->core_bytes = st->core_bytes - (ptr ? osize : 0) + nsize;
    return p;
}

/* Opens the module on L, bound to s (NULL: a scheduler of its own). With
   the module already open, returns it if bound to s (or s is NULL), else
   raises. Pushes the module. */
static int task__l_open(lua_State *L, task_sched *s) {
    task__l_state *st;
    int sti, i, owns = s == NULL;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &task__l_modkey) == LUA_TTABLE) {
        task__l_state *cur = task__l_state_of(L);
        if (s && (!cur || cur->s != s))
            return luaL_error(L, "task_lua_open: the module is already open on this lua_State with another scheduler");
        return 1;
    }
    lua_pop(L, 1);
    st = (task__l_state *)lua_newuserdatauv(L, sizeof *st, 1);
    memset(st, 0, sizeof *st);
    st->r_anchors = st->r_timers = st->r_ext = st->r_scopes = st->r_parked = st->r_tb = LUA_NOREF;
    st->r_pool = LUA_NOREF;
    st->pool_max = TASK_LUA_POOL;
    st->r_handler = st->r_hcreate = st->r_hterm = st->r_taskmt = st->r_body = LUA_NOREF;
    st->r_hresume = st->r_hsuspend = st->r_ready = st->r_where = LUA_NOREF;
#ifdef TASK_LUA_MODULE
    if (owns) st->clock = task__l_mono;
#endif
    st->owns = owns;
    st->closed = 1; /* until it is whole: its __gc then does nothing */
    luaL_newmetatable(L, TASK__L_STATE);
    lua_pushcfunction(L, task__l_state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    sti = lua_gettop(L);
    /* lua_resume makes these messages outside any protected call (a
       coroutine.resume of a dead or running coroutine, an error in error
       handling): with no pcall on the main thread, a memory error there
       aborts the process. Kept interned, making one never allocates. */
    lua_createtable(L, 4, 0);
    for (i = 0; i < 4; i++) {
        static const char *const keep[4] = {"cannot resume dead coroutine", "cannot resume non-suspended coroutine",
                                            "C stack overflow", "error in error handling"};
        lua_pushstring(L, keep[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setiuservalue(L, sti, 1);
    if (!s) { /* a scheduler of its own, on Lua's allocator */
        st->lalloc = lua_getallocf(L, &st->lalloc_ud);
        if (!(s = task_create(task__l_core_alloc, st))) return luaL_error(L, "task: not enough memory");
    }
    st->s = s;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    st->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_createtable(L, st->pool_max, 0); /* its array never grows while it fills */
    st->r_pool = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newuserdatauv(L, 0, 0); /* the first cycle's sentinel */
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, sti);
    lua_pushvalue(L, -2);
    lua_pushcclosure(L, task__l_pool_cycle, 2);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
    for (i = 0; i < 6; i++) {
        int *ref = i == 0 ? &st->r_anchors : i == 1 ? &st->r_timers : i == 2 ? &st->r_ext
                 : i == 3 ? &st->r_scopes : i == 4 ? &st->r_parked : &st->r_tb;
        lua_newtable(L);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    task__l_newclass(L, st, sti, TASK__L_C_TASK, task__l_task_methods, task__l_task_index, task__l_task_tostring, task__l_task_gc, task__l_join);
    luaL_getmetatable(L, task__l_class_key[TASK__L_C_TASK]);
    lua_pushvalue(L, sti);
    lua_pushcclosure(L, task__l_task_close, 1);
    lua_setfield(L, -2, "__close");
    st->r_taskmt = luaL_ref(L, LUA_REGISTRYINDEX);
    task__l_newclass(L, st, sti, TASK__L_C_SCOPE, task__l_scope_methods, task__l_scope_index, NULL, NULL, NULL);
    task__l_newclass(L, st, sti, TASK__L_C_CHAN, task__l_chan_methods, NULL, task__l_chan_tostring, NULL, task__l_chan_recv);
    task__l_newclass(L, st, sti, TASK__L_C_TOKEN, task__l_token_methods, NULL, NULL, task__l_token_gc, NULL);
    task__l_newclass(L, st, sti, TASK__L_C_TIMER, task__l_timer_methods, NULL, NULL, NULL, task__l_timer_wait);
    /* getmetatable gives a copy of each class's metatable: a script can
       call its metamethods by hand (each checks its argument) but not
       remove a __gc the scheduler's bookkeeping relies on. */
    for (i = TASK__L_C_NONE + 1; i < TASK__L_NCLASS; i++) {
        luaL_getmetatable(L, task__l_class_key[i]);
        lua_createtable(L, 0, 8);
        lua_pushnil(L);
        while (lua_next(L, -3)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -4);
        }
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pushvalue(L, sti);
    lua_pushcclosure(L, task__l_msgh, 1);
    lua_pushcclosure(L, task__l_body, 1);
    st->r_body = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_newlibtable(L, task__l_funcs);
    lua_pushvalue(L, sti);
    luaL_setfuncs(L, task__l_funcs, 1);
    lua_getfield(L, -1, "hook"); /* silly's name for it */
    lua_setfield(L, -2, "task_hook");
    lua_pushliteral(L, "task " TASK_VERSION);
    lua_setfield(L, -2, "_VERSION");
    st->closed = 0;
    lua_pushboolean(L, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task__l_originkey);
    lua_pushvalue(L, sti);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task__l_statekey);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &task__l_modkey);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "task");
    lua_pop(L, 1);
    lua_remove(L, sti);
    return 1;
}

static int task__l_open_p(lua_State *L) {
    return task__l_open(L, (task_sched *)lua_touserdata(L, 1));
}

/* Returns TASK_OK and pushes the module, or an error status and pushes
   the message; never raises. */
TASK_LUA_API int task_lua_open(lua_State *L, task_sched *s) {
    if (!task__l_callable(L)) {
        lua_State *M = task__l_mainthread(L);
        int top = lua_gettop(M);
        return task__l_moveback(M, top, L, task_lua_open(M, s));
    }
    if (!s) {
        lua_pushliteral(L, "task_lua_open: no scheduler");
        return TASK_EINVAL;
    }
    if (!lua_checkstack(L, 2)) return TASK_ENOMEM;
    lua_pushcfunction(L, task__l_open_p);
    lua_pushlightuserdata(L, s);
    switch (lua_pcall(L, 1, 1, 0)) {
    case LUA_OK: return TASK_OK;
    case LUA_ERRMEM: return TASK_ENOMEM;
    default: return TASK_EINVAL;
    }
}

TASK_LUA_API task_sched *task_lua_sched(lua_State *L) {
    task__l_state *st = task__l_state_of(L);
    return st ? st->s : NULL;
}

static int task__l_spawn_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    int nargs = (int)lua_tointeger(L, 2);
    lua_remove(L, 1);
    lua_remove(L, 1);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    task__l_spawn_at(L, st, 1, nargs, NULL, 0, "task_lua_spawn");
    return 1;
}

TASK_LUA_API int task_lua_spawn(lua_State *L, int nargs, task_id *out) {
    task__l_state *st;
    int rc;
    if (out) *out = 0;
    /* not that many values above a function slot: popping them (or reading
       the slot) would go below the caller's frame */
    if (nargs < 0 || nargs >= lua_gettop(L)) return TASK_EINVAL;
    if (!task__l_callable(L)) {
        lua_State *M = task__l_mainthread(L);
        int top = lua_gettop(M);
        if (!lua_checkstack(M, nargs + 1)) {
            lua_pop(L, nargs + 1);
            lua_pushliteral(L, "task_lua_spawn: stack overflow");
            return TASK_ENOMEM;
        }
        lua_xmove(L, M, nargs + 1);
        rc = task_lua_spawn(M, nargs, out); /* pushes the Task or a message */
        return task__l_moveback(M, top, L, rc);
    }
    st = task__l_state_of(L);
    if (!st) {
        lua_pop(L, nargs + 1);
        lua_pushliteral(L, "task_lua_spawn: the task module is not open on this state");
        return TASK_EINVAL;
    }
    if (lua_type(L, -(nargs + 1)) != LUA_TFUNCTION) {
        lua_pop(L, nargs + 1);
        lua_pushliteral(L, "task_lua_spawn: the value below the arguments is not a function");
        return TASK_EINVAL;
    }
    if (!lua_checkstack(L, 3)) {
        lua_pop(L, nargs + 1);
        lua_pushliteral(L, "task_lua_spawn: stack overflow");
        return TASK_ENOMEM;
    }
    lua_pushcfunction(L, task__l_spawn_p);
    lua_pushlightuserdata(L, st);
    lua_pushinteger(L, nargs);
    lua_rotate(L, -(nargs + 4), 3);
    rc = lua_pcall(L, nargs + 3, 1, 0);
    if (rc != LUA_OK) return rc == LUA_ERRMEM ? TASK_ENOMEM : TASK_EINVAL;
    if (out) *out = ((task__l_task *)lua_touserdata(L, -1))->id;
    return TASK_OK;
}

TASK_LUA_API int task_lua_resume(lua_State *L, task_id ext, int nvalues) {
    task__l_state *st;
    if (nvalues < 0 || nvalues > lua_gettop(L)) return TASK_EINVAL; /* nothing popped */
    st = task__l_state_of(L);
    if (!st) { lua_pop(L, nvalues); return TASK_EINVAL; }
    if (!task__l_callable(L)) {
        if (!lua_checkstack(st->L, nvalues)) { lua_pop(L, nvalues); return TASK_ENOMEM; }
        lua_xmove(L, st->L, nvalues);
        L = st->L;
    }
    return task__l_resume_ext(L, st, ext, nvalues, NULL);
}

/* debug.sethook while a budget is set: the hooks the scheduler keeps on
   threads (the budget, the guard of parked tasks) are not the script's
   to change. Upvalues: st, the original debug.sethook. */
static int task__l_sethook_guard(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, lua_upvalueindex(1));
    if (!st->closed && st->budget > 0) {
        lua_State *L1 = lua_type(L, 1) == LUA_TTHREAD ? lua_tothread(L, 1) : L;
        lua_Hook h = lua_gethook(L1);
        if (st->cur || (h && task__l_is_ours(h)))
            return luaL_error(L, "debug.sethook: the host's instruction budget for tasks cannot be changed by a script");
    }
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static int task__l_guard_debug_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "debug") != LUA_TTABLE) return 0;
    if (lua_getfield(L, -1, "sethook") != LUA_TFUNCTION || lua_tocfunction(L, -1) == task__l_sethook_guard) return 0;
    lua_pushlightuserdata(L, st);
    lua_insert(L, -2);
    lua_pushcclosure(L, task__l_sethook_guard, 2);
    lua_setfield(L, -2, "sethook");
    return 0;
}

TASK_LUA_API void task_lua_set_budget(lua_State *L, int instructions, int mode) {
    task__l_state *st = task__l_state_of(L);
    lua_Hook h;
    if (!st) return;
    st->budget = instructions > 0 ? instructions : 0;
    st->budget_mode = mode == TASK_LUA_RAISE ? TASK_LUA_RAISE : TASK_LUA_PREEMPT;
    h = lua_gethook(st->L);
    if (st->budget > 0) {
        /* threads created from now on inherit the main thread's hook, so
           a coroutine made outside any task is counted when a task runs it */
        if (!h || h == task__l_budget_hook) lua_sethook(st->L, task__l_budget_hook, LUA_MASKCOUNT, task__l_budget_step(st));
        if (lua_checkstack(st->L, 2)) { /* on the main thread: L may be a suspended coroutine */
            lua_pushcfunction(st->L, task__l_guard_debug_p);
            lua_pushlightuserdata(st->L, st);
            if (lua_pcall(st->L, 1, 0, 0) != LUA_OK) lua_pop(st->L, 1);
        }
    } else if (h == task__l_budget_hook) lua_sethook(st->L, NULL, 0, 0);
}

static int task__l_pool_p(lua_State *L) {
    task__l_pool_size(L, (task__l_state *)lua_touserdata(L, 1), (int)lua_tointeger(L, 2));
    return 0;
}

TASK_LUA_API int task_lua_set_pool(lua_State *L, int threads) {
    task__l_state *st = task__l_state_of(L);
    if (!st || threads < 0 || threads > 1000000) return TASK_EINVAL; /* task.pool's range */
    if (!task__l_callable(L)) L = st->L;
    if (!lua_checkstack(L, 3)) return TASK_ENOMEM;
    lua_pushcfunction(L, task__l_pool_p);
    lua_pushlightuserdata(L, st);
    lua_pushinteger(L, threads);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) { lua_pop(L, 1); return TASK_ENOMEM; }
    return TASK_OK;
}

static int task__l_set_handler_p(lua_State *L) { /* st, fn */
    task__l_setref(L, 2, &((task__l_state *)lua_touserdata(L, 1))->r_handler);
    return 0;
}

TASK_LUA_API void task_lua_set_error_handler(lua_State *L, int idx) {
    task__l_state *st = task__l_state_of(L);
    int top = lua_gettop(L);
    if (!st) return;
    if (!task__l_callable(L)) { /* the value to the main thread, the work there */
        int fn = ((idx > 0 && idx <= top) || (idx < 0 && -idx <= top)) && lua_type(L, idx) == LUA_TFUNCTION;
        if (fn && lua_checkstack(st->L, 1)) {
            lua_pushvalue(L, idx);
            lua_xmove(L, st->L, 1);
            task_lua_set_error_handler(st->L, -1);
            lua_pop(st->L, 1);
        } else task_lua_set_error_handler(st->L, 0); /* the default */
        return;
    }
    /* anything but a function at a valid index (nil, none, an index out of
       range, a number...) is the default: errors must still be seen */
    if (((idx > 0 && idx <= top) || (idx < 0 && -idx <= top)) && lua_type(L, idx) == LUA_TFUNCTION &&
        lua_checkstack(L, 3)) {
        lua_pushcfunction(L, task__l_set_handler_p);
        lua_pushlightuserdata(L, st);
        lua_pushvalue(L, idx < 0 ? idx - 2 : idx);
        if (lua_pcall(L, 2, 0, 0) == LUA_OK) return;
        lua_pop(L, 1); /* out of memory: the default, below */
    }
    if (st->r_handler != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, st->r_handler);
    st->r_handler = LUA_NOREF;
}

TASK_LUA_API void task_lua_set_clock(lua_State *L, task_clock_fn clock, void *ud) {
    task__l_state *st = task__l_state_of(L);
    if (!st) return;
    st->clock = clock;
    st->clock_ud = ud;
    if (!clock) { st->slow = 0; task__l_rewatch(st); }
}

static int task__l_dump_p(lua_State *L) {
    task__l_state *st = (task__l_state *)lua_touserdata(L, 1);
    lua_settop(L, 0);
    lua_pushboolean(L, 0); /* out: nowhere */
    lua_pushlightuserdata(L, st);
    lua_pushcclosure(L, task__l_dump, 1);
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

TASK_LUA_API int task_lua_dump(lua_State *L) {
    task__l_state *st;
    int rc;
    if (!task__l_callable(L)) {
        lua_State *M = task__l_mainthread(L);
        int top = lua_gettop(M);
        return task__l_moveback(M, top, L, task_lua_dump(M));
    }
    st = task__l_state_of(L);
    if (!lua_checkstack(L, 3)) return TASK_ENOMEM;
    if (!st) {
        lua_pushliteral(L, "task_lua_dump: the module is not open on this lua_State");
        return TASK_EINVAL;
    }
    lua_pushcfunction(L, task__l_dump_p);
    lua_pushlightuserdata(L, st);
    rc = lua_pcall(L, 1, 1, 0);
    return rc == LUA_OK ? TASK_OK : rc == LUA_ERRMEM ? TASK_ENOMEM : TASK_EINVAL;
}

TASK_LUA_API int luaopen_task(lua_State *L) {
    return task__l_open(L, NULL);
}

#endif /* TASK_LUA_IMPLEMENTATION */
