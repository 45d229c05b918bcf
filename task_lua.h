/*
 * task_lua.h: the task.h scheduler for Lua 5.4 scripts.
 *
 * WHAT IT IS
 *   A binding of task.h to Lua 5.4: scripts write
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
 *   The scheduler must outlive the lua_State. Errors of tasks nobody waits
 *   for go to the error handler (task_lua_set_error_handler); the default
 *   writes one line with the task's id, name and message, then the
 *   traceback, to stderr.
 *
 *   A task that never suspends would keep the host inside task_tick().
 *   task_lua_set_budget(L, n, mode) gives every resume of a Lua task a
 *   budget of n VM instructions, counted by a count hook (lua_sethook with
 *   LUA_MASKCOUNT) on the task's thread. When it is spent the task is
 *   either preempted (TASK_LUA_PREEMPT: it yields from the hook and runs
 *   again at the next tick, at the back of the queue; where it cannot
 *   yield, inside a metamethod or a C call, it is preempted at the next
 *   count that can) or fails with the error "task exceeded its budget"
 *   (TASK_LUA_RAISE; the error is raised again at every instruction, so a
 *   pcall cannot swallow it). Code in a plain coroutine nested inside a
 *   task cannot be preempted: it gets the error in both modes. The hook
 *   replaces any debug.sethook hook of a task's thread while a budget is
 *   set. n = 0 (the default) turns it off.
 *
 * STANDALONE MODULE
 *   Compiled with TASK_LUA_MODULE defined (make module: build/task.so), the
 *   header is a module for the stock lua5.4 that owns its scheduler:
 *   task.run(fn, ...) runs fn as the main task and drives the loop with the
 *   monotonic clock, sleeping between timers, until every task has ended.
 *
 * OPTIONS
 *   TASK_LUA_API   linkage of the host functions (default: extern).
 *   TASK_LUA_MODULE  build luaopen_task for a standalone module with
 *                  task.run (needs POSIX clock_gettime and nanosleep).
 *
 * The Lua API is documented in README.md ("Lua API reference").
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

#ifdef __cplusplus
extern "C" {
#endif

/* Binds the module to a scheduler on this lua_State, makes require "task"
   return it, and pushes the module table. */
TASK_LUA_API int task_lua_open(lua_State *L, task_sched *s);
/* The scheduler the module on L is bound to, or NULL. */
TASK_LUA_API task_sched *task_lua_sched(lua_State *L);
/* Spawns the function below the top nargs values with them as arguments;
   pops them and pushes the Task. On failure pushes a message instead. */
TASK_LUA_API int task_lua_spawn(lua_State *L, int nargs, task_id *out);
/* Resumes an external id (task.alloc) with the top nvalues values, popped.
   TASK_ENOENT if the id is unknown, already resumed or its waiter gave up. */
TASK_LUA_API int task_lua_resume(lua_State *L, task_id ext, int nvalues);
/* The function at idx (nil: the default) gets (err, task, traceback) for
   errors of tasks that nobody waits for. */
TASK_LUA_API void task_lua_set_error_handler(lua_State *L, int idx);
/* A per-resume instruction budget for Lua tasks (0: none, the default);
   mode TASK_LUA_PREEMPT or TASK_LUA_RAISE, see HOST SIDE above. */
enum { TASK_LUA_PREEMPT = 0, TASK_LUA_RAISE = 1 };
TASK_LUA_API void task_lua_set_budget(lua_State *L, int instructions, int mode);
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
#endif

#if LUA_VERSION_NUM != 504
#error "task_lua.h needs Lua 5.4"
#endif
#if LUA_VERSION_RELEASE_NUM >= 50406
#define TL_CLOSETHREAD(co, from) lua_closethread((co), (from))
#else
#define TL_CLOSETHREAD(co, from) ((void)(from), lua_resetthread(co))
#endif

#define TL_TASK "task.Task"
#define TL_SCOPE "task.Scope"
#define TL_CHAN "task.Channel"
#define TL_TOKEN "task.CancelToken"
#define TL_TIMER "task.Timer"
#define TL_STATE "task.State"

typedef struct tl_state tl_state;
typedef struct tl_task tl_task;
typedef struct tl_regq tl_regq;

enum { TL_K_TASK = 1, TL_K_CHAN, TL_K_TIMER };

/* One waiting task registered on one awaitable (a select has several). */
typedef struct tl_reg {
    struct tl_reg *next, *prev;
    tl_regq *q;        /* the queue it is in, NULL when not queued */
    tl_task *task;
    void *obj;         /* the awaitable */
    int kind;          /* TL_K_* */
    int index;         /* its position in a select list; 0: a direct wait */
    int vidx;          /* a blocked sender: stack index of its value */
} tl_reg;
struct tl_regq { tl_reg *head, *tail; };

struct tl_task {
    tl_state *st;
    lua_State *co;
    task_id id;
    uint64_t born;
    int npend;         /* values pushed on co for its next resume */
    int nres;          /* results left on co when it returned */
    int won;           /* select: the index that completed */
    int joiners;       /* Lua tasks waiting for it (join, select) */
    unsigned char ended, joined, claimed, detached, suspending, plain, code;
    int why;           /* the TASK_R_* of the resume a continuation runs in */
    tl_task *joining;  /* the task it waits for in Task:join */
    tl_reg direct;     /* a wait on one channel or timer */
    tl_reg *sel;
    int nsel;
    tl_regq waitq;     /* selects waiting for it to end */
};

typedef struct tl_chan { lua_Integer cap, count, head; int closed; tl_regq recvq, sendq; } tl_chan;
typedef struct tl_timer { tl_state *st; task_id id; int fired, cancelled; tl_regq waitq; } tl_timer;
typedef struct tl_token { tl_state *st; task_id id; int owned; } tl_token;
typedef struct tl_scope { task_id id; int failed; } tl_scope;

struct tl_state {
    task_sched *s;
    lua_Alloc lalloc;  /* standalone: the core allocates through Lua's allocator, */
    void *lalloc_ud;   /* counted in core_bytes (task.taskstat's second result) */
    size_t core_bytes;
    lua_State *L;      /* the main thread */
    tl_task *cur;      /* the Lua task running now */
    int owns, closed, looping;
    task_hooks prev;
    int r_anchors;     /* [slot index] = Task while the task lives, false after */
    uint32_t ahi;      /* anchors has a key at every slot index up to ahi + 1 */
    int r_timers;      /* [light Timer] = Timer, while armed */
    int r_ext;         /* [external id] = packed values resumed before the wait */
    int r_scopes;      /* [slot index] = Scope, while open */
    int r_handler, r_hcreate, r_hterm;
    int r_taskmt;      /* Task's metatable: spawning skips the registry lookup by name */
    int budget, budget_mode;  /* task_lua_set_budget */
};

static const char tl__statekey = 's';  /* addresses only: registry keys */
static const char tl__modkey = 'm';

/* ---- small helpers ---------------------------------------------------- */

static tl_state *tl_st(lua_State *L) { return (tl_state *)lua_touserdata(L, lua_upvalueindex(1)); }

static int tl_raise_cancelled(lua_State *L) {
    lua_pushliteral(L, "task cancelled");
    return lua_error(L);
}

static int tl_raise_literal(lua_State *L, const char *msg) {
    lua_pushstring(L, msg);
    return lua_error(L);
}

static void tl_getref(lua_State *L, int ref) { lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }

/* The running task, which L must be able to suspend. */
static tl_task *tl_need(lua_State *L, tl_state *st, const char *fn) {
    tl_task *t = st->cur;
    if (!t) luaL_error(L, "%s: must be called from inside a task", fn);
    else if (t->co != L) luaL_error(L, "%s: cannot suspend from a coroutine nested inside a task", fn);
    else if (!lua_isyieldable(L))
        luaL_error(L, "%s: cannot suspend here (a metamethod or C function that does not allow yields)", fn);
    return t;
}

static void tl_checkcancel(lua_State *L, tl_state *st, tl_task *t) {
    (void)t; /* the running task: the core knows it without a lookup */
    if (task_self_cancelled(st->s)) tl_raise_cancelled(L);
}

static int tl_fail(lua_State *L, int rc, const char *fn) {
    if (rc == TASK_ECANCELED) return tl_raise_cancelled(L);
    return luaL_error(L, "%s: %s", fn, task_strerror(rc));
}

/* Raises "<fn>: invalid duration (ms=<value>)" for a negative, NaN or
   infinite number at idx. */
static void tl_validms(lua_State *L, int idx, const char *fn) {
    lua_Number ms = lua_tonumber(L, idx);
    if (!(ms >= 0) || ms - ms != 0) {
        luaL_tolstring(L, idx, NULL);
        lua_pushfstring(L, "%s: invalid duration (ms=%s)", fn, lua_tostring(L, -1));
        lua_error(L);
    }
}

/* Milliseconds (fractions allowed) to the core's nanoseconds. */
static uint64_t tl_checkms(lua_State *L, int idx, const char *fn) {
    lua_Number ms = luaL_checknumber(L, idx), ns;
    tl_validms(L, idx, fn);
    ns = ms * 1e6;
    return ns >= 1.8e19 ? TASK_FOREVER : (uint64_t)ns;
}

static int tl_suspend(lua_State *L, tl_task *t, int code, lua_KFunction k) {
    t->suspending = 1;
    t->code = (unsigned char)code;
    return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), k);
}

/* In a continuation: the reason the step resumed the running task (kept
   in the task, not pushed: one less stack push and pop per resume). */
static int tl_why(lua_State *L) { return tl_st(L)->cur->why; }

static void tl_pushtask(lua_State *L, tl_state *st, tl_task *t) {
    tl_getref(L, st->r_anchors);
    lua_rawgeti(L, -1, (lua_Integer)(uint32_t)t->id);
    lua_remove(L, -2);
}

static double tl_ms(uint64_t ns) { return (double)ns / 1e6; }

/* ---- wait registrations ----------------------------------------------- */

static void tl_q_push(tl_regq *q, tl_reg *r) {
    r->q = q;
    r->next = NULL;
    r->prev = q->tail;
    if (q->tail) q->tail->next = r; else q->head = r;
    q->tail = r;
}

static void tl_q_del(tl_reg *r) {
    tl_regq *q = r->q;
    if (!q) return;
    if (r->prev) r->prev->next = r->next; else q->head = r->next;
    if (r->next) r->next->prev = r->prev; else q->tail = r->prev;
    r->q = NULL;
    r->next = r->prev = NULL;
    if (r->kind == TL_K_TASK) ((tl_task *)r->obj)->joiners--;
}

static void tl_reg_init(tl_reg *r, tl_task *t, void *obj, int kind, int index) {
    r->next = r->prev = NULL;
    r->q = NULL;
    r->task = t;
    r->obj = obj;
    r->kind = kind;
    r->index = index;
    r->vidx = 0;
}

static void tl_reg_add(tl_reg *r, tl_regq *q) {
    tl_q_push(q, r);
    if (r->kind == TL_K_TASK) ((tl_task *)r->obj)->joiners++;
}

/* The running task parks on one awaitable's queue (vidx: a sender's value). */
static int tl_park_on(lua_State *L, tl_state *st, const char *fn, void *obj, int kind, tl_regq *q,
                      int vidx, lua_KFunction k) {
    tl_task *t = tl_need(L, st, fn);
    int rc;
    tl_checkcancel(L, st, t);
    if ((rc = task_park(st->s)) != TASK_OK) return tl_fail(L, rc, fn);
    tl_reg_init(&t->direct, t, obj, kind, 0);
    t->direct.vidx = vidx;
    tl_reg_add(&t->direct, q);
    return tl_suspend(L, t, TASK_SUSPEND, k);
}

/* Drops every registration of t (its waits are over or abandoned). */
static void tl_unregister(tl_task *t) {
    int i;
    tl_q_del(&t->direct);
    for (i = 0; i < t->nsel; i++) tl_q_del(&t->sel[i]);
    t->sel = NULL;
    t->nsel = 0;
    if (t->joining) { t->joining->joiners--; t->joining = NULL; }
}

/* r's wait is satisfied: values (if any) are already on its thread. */
static void tl_complete(tl_state *st, tl_reg *r) {
    tl_task *t = r->task;
    t->won = r->index;
    tl_unregister(t);
    task_unpark(st->s, t->id, NULL);
}

static void tl_complete_all(tl_state *st, tl_regq *q) {
    while (q->head) tl_complete(st, q->head);
}

/* The first registration of q whose task still waits: one cancelled or
   aborted while parked is READY already and must not be handed a value. */
static tl_reg *tl_q_first(tl_state *st, tl_regq *q) {
    while (q->head && task_status(st->s, q->head->task->id) != TASK_WAIT) tl_q_del(q->head);
    return q->head;
}

/* Pushes values onto a parked task's thread for its next resume. */
static void tl_give(lua_State *L, tl_task *t, int n) {
    lua_xmove(L, t->co, n);
    t->npend += n;
}

/* ---- reporting errors --------------------------------------------------- */

/* msg for an error value that may not be a string, or whose __tostring fails */
static int tl_tostring_p(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static const char *tl_errstr(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, tl_tostring_p);
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
static void tl_info(lua_State *L, int idx, const char *field) {
    if (lua_getiuservalue(L, idx, 2) == LUA_TTABLE) {
        lua_getfield(L, -1, field);
        lua_remove(L, -2);
    } else if (field[0] != 'n') {
        lua_pop(L, 1);
        lua_pushnil(L);
    }
}

/* The default handler: (err, task, traceback) -> one line, then the traceback. */
static int tl_default_handler(lua_State *L) {
    const char *msg = tl_errstr(L, 1), *name = "?";
    lua_Integer id = 0;
    tl_task *t = (tl_task *)luaL_testudata(L, 2, TL_TASK);
    if (t) {
        id = (lua_Integer)t->id;
        tl_info(L, 2, "name");
        name = lua_isstring(L, -1) ? lua_tostring(L, -1) : "task";
    }
    fprintf(stderr, "task %lld (%s): %s\n%s\n", (long long)id, name, msg,
            lua_isstring(L, 3) ? lua_tostring(L, 3) : "");
    fflush(stderr);
    return 0;
}

/* Calls the error handler with (err, task, traceback) on top of L. */
static void tl_report(lua_State *L, tl_state *st) {
    int base = lua_gettop(L) - 3;
    if (st->r_handler != LUA_NOREF) tl_getref(L, st->r_handler);
    else lua_pushcfunction(L, tl_default_handler);
    lua_insert(L, base + 1);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) { /* a failing handler: say so, once */
        fprintf(stderr, "task: error handler failed: %s\n", tl_errstr(L, -1));
        lua_pop(L, 2);
    }
}

/* ---- the executor: how the core runs a Lua task ------------------------ */

static int tl_step(task_ctx *c);

static tl_task *tl_luatask(tl_state *st, task_id id) {
    tl_task *t;
    if (task_step_of(st->s, id) != tl_step) return NULL;
    t = (tl_task *)task_userdata(st->s, id);
    return t && t->st == st ? t : NULL;
}

/* It ended: selects waiting for it complete. */
static void tl_finished(tl_state *st, tl_task *t, int how) {
    t->ended = (unsigned char)how;
    tl_complete_all(st, &t->waitq);
}

/* Protected: routes the error of a task nobody waits for. Stack: Task. */
static int tl_route_p(lua_State *L) {
    tl_state *st = (tl_state *)lua_touserdata(L, 1);
    tl_task *t = (tl_task *)lua_touserdata(L, 2);
    task_id sid;
    tl_info(L, 2, "err");
    /* cancellation that ends a cancelled task is not an error */
    if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "task cancelled") == 0 &&
        task_cancelled(st->s, t->id) == 1)
        return 0;
    if (t->claimed || t->joiners > 0) return 0;
    if (!t->detached && (sid = task_scope_of(st->s, t->id)) != 0) {
        tl_getref(L, st->r_scopes);
        lua_rawgeti(L, -1, (lua_Integer)(uint32_t)sid);
        {
            tl_scope *sc = (tl_scope *)luaL_testudata(L, -1, TL_SCOPE);
            if (sc && sc->id == sid) { /* the scope re-raises it */
                if (!sc->failed) {
                    sc->failed = 1;
                    lua_pushvalue(L, 3);
                    lua_setiuservalue(L, -2, 2);
                }
                task_scope_cancel(st->s, sid);
                return 0;
            }
        }
        lua_pop(L, 2);
    }
    lua_pushvalue(L, 3);
    lua_pushvalue(L, 2);
    tl_info(L, 2, "tb");
    tl_report(L, st);
    return 0;
}

/* Protected: keeps the error and its traceback, then closes the thread so
   its to-be-closed variables run. Stack: st, Task. */
static int tl_errored_p(lua_State *L) {
    tl_state *st = (tl_state *)lua_touserdata(L, 1);
    tl_task *t = (tl_task *)lua_touserdata(L, 2);
    lua_State *co = t->co;
    int status;
    lua_createtable(L, 0, 3);
    lua_getiuservalue(L, 2, 2);
    lua_setfield(L, -2, "name");
    luaL_traceback(L, co, lua_type(co, -1) == LUA_TSTRING ? lua_tostring(co, -1) : NULL, 0);
    lua_setfield(L, -2, "tb");
    lua_xmove(co, L, 1);
    lua_setfield(L, -2, "err");
    status = TL_CLOSETHREAD(co, L);
    if (status != LUA_OK) { /* a __close failed: its error replaces the first */
        lua_xmove(co, L, 1);
        lua_setfield(L, -2, "err");
    }
    lua_setiuservalue(L, 2, 2);
    (void)st;
    return 0;
}

static void tl_call_p(tl_state *st, lua_CFunction f, tl_task *t) {
    lua_State *L = st->L;
    lua_pushcfunction(L, f);
    lua_pushlightuserdata(L, st);
    tl_pushtask(L, st, t);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1); /* out of memory: nothing more to do */
}

/* The instruction budget's count hook (task_lua_set_budget). */
static void tl_budget_hook(lua_State *L, lua_Debug *ar) {
    tl_state *st;
    (void)ar;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tl__statekey);
    st = (tl_state *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!st || st->closed || !st->cur || st->budget <= 0) return;
    if (st->budget_mode == TASK_LUA_PREEMPT && st->cur->co == L) {
        if (lua_isyieldable(L)) lua_yield(L, 0); /* a plain yield: READY at the next tick */
        return; /* not here: try again at the next count */
    }
    lua_sethook(L, tl_budget_hook, LUA_MASKCOUNT, 1); /* level-triggered */
    lua_pushliteral(L, "task exceeded its budget");
    lua_error(L);
}

/* Raises "task cancelled" at the first instruction after a plain
   coroutine.yield() of a cancelled task, as task.yield() would. */
static void tl_cancel_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    tl_raise_cancelled(L);
}

static void tl_abort_thread(tl_state *st, tl_task *t) {
    tl_task *saved = st->cur;
    tl_unregister(t);
    st->cur = t;
    if (TL_CLOSETHREAD(t->co, st->L) != LUA_OK) lua_settop(t->co, 0);
    st->cur = saved;
    t->npend = 0;
    tl_finished(st, t, TASK_X_ABORT);
}

static int tl_step(task_ctx *c) {
    tl_task *t = (tl_task *)c->ud, *saved;
    tl_state *st = t->st;
    lua_State *co = t->co;
    int nargs, nres = 0, rc, plain = t->plain && c->why != TASK_R_START, hooked = 0;
    if (c->why == TASK_R_ABORT) {
        tl_abort_thread(st, t);
        return TASK_DONE;
    }
    if (c->why == TASK_R_START) nargs = lua_gettop(co) - 1;
    else if (plain) nargs = 0;
    else nargs = t->npend;
    t->why = c->why;
    t->npend = 0;
    t->plain = t->suspending = 0;
    saved = st->cur;
    st->cur = t;
    if (st->budget > 0) {
        lua_sethook(co, tl_budget_hook, LUA_MASKCOUNT, st->budget);
        hooked = 1;
    }
    if (plain && task_self_cancelled(st->s)) { /* a plain yield raises, as task.yield would */
        lua_sethook(co, tl_cancel_hook, LUA_MASKCOUNT, 1);
        hooked = 1;
    }
    rc = lua_resume(co, st->L, nargs, &nres);
    st->cur = saved;
    if (hooked && (lua_gethook(co) == tl_budget_hook || lua_gethook(co) == tl_cancel_hook))
        lua_sethook(co, NULL, 0, 0); /* ours only: the script may hook its own thread */
    if (rc == LUA_YIELD) {
        lua_pop(co, nres); /* yielded values have nobody to go to */
        if (t->suspending) return t->code;
        t->plain = 1; /* a plain coroutine.yield(): same as task.yield() */
        return TASK_YIELD;
    }
    if (rc == LUA_OK) {
        t->nres = nres;
        tl_finished(st, t, TASK_X_DONE);
        return TASK_DONE;
    }
    tl_call_p(st, tl_errored_p, t);
    if (t->waitq.head) t->claimed = 1; /* a select waiting for it takes the error */
    tl_finished(st, t, TASK_X_FAIL);
    tl_call_p(st, tl_route_p, t);
    return TASK_FAIL;
}

/* ---- hooks: the core's, chained to whatever the host had ------------- */

static int tl_hook_p(lua_State *L) { /* st, Task, which */
    tl_state *st = (tl_state *)lua_touserdata(L, 1);
    int ref = lua_tointeger(L, 3) ? st->r_hterm : st->r_hcreate;
    if (ref == LUA_NOREF) return 0;
    tl_getref(L, ref);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        lua_pushvalue(L, 2);
        lua_pushnil(L);
        tl_report(L, st);
    }
    return 0;
}

static void tl_run_hook(tl_state *st, tl_task *t, int term) {
    lua_State *L = st->L;
    if ((term ? st->r_hterm : st->r_hcreate) == LUA_NOREF) return;
    lua_pushcfunction(L, tl_hook_p);
    lua_pushlightuserdata(L, st);
    tl_pushtask(L, st, t);
    lua_pushinteger(L, term);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) lua_pop(L, 1);
}

static void tl_core_create(task_sched *s, task_id id, void *ud) {
    tl_state *st = (tl_state *)ud;
    if (st->prev.create) st->prev.create(s, id, st->prev.ud);
}

static void tl_core_term(task_sched *s, task_id id, void *ud) {
    tl_state *st = (tl_state *)ud;
    tl_task *t;
    if (st->prev.term) st->prev.term(s, id, st->prev.ud);
    if ((t = tl_luatask(st, id)) == NULL) return;
    tl_run_hook(st, t, 1);
    tl_getref(st->L, st->r_anchors); /* no longer kept alive for the core; */
    lua_pushboolean(st->L, 0);       /* false, not nil: the key stays, so */
    lua_rawseti(st->L, -2, (lua_Integer)(uint32_t)id); /* nothing allocates */
    lua_pop(st->L, 1);
}

/* ---- spawning ------------------------------------------------------------ */

static int tl_anchor_p(lua_State *L) { /* anchors, key, Task */
    lua_rawset(L, 1);
    return 0;
}

/* Spawns the function at fidx with the nargs values after it; pushes the Task. */
static tl_task *tl_spawn_at(lua_State *L, tl_state *st, int fidx, int nargs, const task_opts *o,
                            int nameidx, const char *fn) {
    tl_task *t;
    lua_State *co;
    int i, rc;
    uint32_t slot;
    fidx = lua_absindex(L, fidx);
    if (nameidx) nameidx = lua_absindex(L, nameidx);
    luaL_checkstack(L, nargs + 8, fn);
    t = (tl_task *)lua_newuserdatauv(L, sizeof *t, 2);
    memset(t, 0, sizeof *t);
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->r_taskmt);
    lua_setmetatable(L, -2);
    co = lua_newthread(L);
    lua_setiuservalue(L, -2, 1);
    if (nameidx) {
        lua_pushvalue(L, nameidx);
        lua_setiuservalue(L, -2, 2);
    }
    if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "%s: too many arguments", fn);
    for (i = 0; i <= nargs; i++) lua_pushvalue(L, fidx + i);
    lua_xmove(L, co, nargs + 1);
    t->st = st;
    t->co = co;
    t->born = task_now(st->s);
    /* The core must never hold a task whose Task nobody holds, and anchoring
       after task_spawn must not fail: the key a new slot gets (ahi + 1) is
       made before, when a failure leaves nothing to undo. */
    tl_getref(L, st->r_anchors);
    if (lua_rawgeti(L, -1, (lua_Integer)st->ahi + 1) == LUA_TNIL) {
        lua_pushboolean(L, 0);
        lua_rawseti(L, -3, (lua_Integer)st->ahi + 1);
    }
    lua_pop(L, 1);
    rc = task_spawn(st->s, tl_step, t, o, &t->id);
    if (rc != TASK_OK) {
        lua_pop(L, 1);
        tl_fail(L, rc, fn);
    }
    slot = (uint32_t)t->id;
    if (slot <= st->ahi + 1) {
        lua_pushvalue(L, -2);
        lua_rawseti(L, -2, slot);
        if (slot > st->ahi) st->ahi = slot;
    } else { /* C tasks took the slots between: this key may need room */
        lua_pushcfunction(L, tl_anchor_p);
        lua_pushvalue(L, -2);
        lua_pushinteger(L, slot);
        lua_pushvalue(L, -5);
        if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
            task_drop(st->s, t->id);
            task_release(st->s, t->id);
            t->id = 0; /* its __gc has nothing to release */
            lua_error(L);
        }
    }
    lua_pop(L, 1);
    tl_run_hook(st, t, 0);
    return t;
}

static task_id tl_opt_token(lua_State *L, int idx, const char *fn) {
    tl_token *tk = (tl_token *)luaL_testudata(L, idx, TL_TOKEN);
    if (!tk) luaL_error(L, "%s: option 'token' must be a CancelToken", fn);
    else if (task_token_cancelled(tk->st->s, tk->id) < 0) luaL_error(L, "%s: the token is no longer valid", fn);
    return tk ? tk->id : 0;
}

/* spawn(fn, ...) or spawn(opts, fn, ...) */
static int tl_spawn(lua_State *L) {
    tl_state *st = tl_st(L);
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
            } else if (k && strcmp(k, "token") == 0) {
                o.token = tl_opt_token(L, lua_gettop(L), "task.spawn");
            } else {
                luaL_tolstring(L, -2, NULL);
                luaL_error(L, "task.spawn: unknown option '%s'", lua_tostring(L, -1));
            }
            lua_pop(L, 1);
        }
        if (lua_getfield(L, 1, "name") != LUA_TNIL) nameidx = lua_gettop(L);
        else lua_pop(L, 1);
        tl_spawn_at(L, st, 2, top - 2, &o, nameidx, "task.spawn");
        return 1;
    }
    luaL_checktype(L, 1, LUA_TFUNCTION);
    tl_spawn_at(L, st, 1, top - 1, NULL, 0, "task.spawn");
    return 1;
}

static int tl_fork(lua_State *L) {
    tl_state *st = tl_st(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 2);
    tl_spawn_at(L, st, 1, 1, NULL, 0, "task.fork");
    return 1;
}

/* ---- tasks ---------------------------------------------------------------- */

static tl_task *tl_checktask(lua_State *L, int idx) { return (tl_task *)luaL_checkudata(L, idx, TL_TASK); }

/* Delivers an ended task's outcome to a joiner: results, or its error. */
static int tl_take(lua_State *L, tl_state *st, tl_task *x, int idx) {
    if (x->joined) return tl_raise_literal(L, "task already joined");
    x->joined = 1;
    if (st->s && !st->closed) task_release(st->s, x->id);
    switch (x->ended) {
    case TASK_X_DONE:
        luaL_checkstack(L, x->nres, "Task:join");
        lua_xmove(x->co, L, x->nres);
        return x->nres;
    case TASK_X_FAIL:
        tl_info(L, idx, "err");
        return lua_error(L);
    default:
        return tl_raise_literal(L, "task aborted");
    }
}

static int tl_k_join(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1), *t = st->cur;
    int why = tl_why(L);
    (void)status; (void)ctx;
    if (t->joining) { x->joiners--; t->joining = NULL; }
    if (why == TASK_R_CANCEL) return tl_raise_cancelled(L);
    return tl_take(L, st, x, 1);
}

static int tl_join(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1), *t;
    int rc;
    lua_settop(L, 1);
    if (x->joined) return tl_raise_literal(L, "task already joined");
    if (x->ended) return tl_take(L, st, x, 1);
    t = tl_need(L, st, "Task:join");
    if (t == x) return luaL_error(L, "Task:join: a task cannot join itself");
    tl_checkcancel(L, st, t);
    if ((rc = task_join(st->s, x->id)) != TASK_OK) return tl_fail(L, rc, "Task:join");
    x->joiners++;
    t->joining = x;
    return tl_suspend(L, t, TASK_SUSPEND, tl_k_join);
}

static int tl_task_cancel(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1);
    lua_pushboolean(L, !x->ended && task_cancel(st->s, x->id) == 1);
    return 1;
}

static int tl_task_abort(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1);
    int r = !x->ended && task_abort(st->s, x->id) == 1;
    lua_pushboolean(L, r);
    if (r && x == st->cur && x->co == L && lua_isyieldable(L)) /* itself: stop here */
        return tl_suspend(L, x, TASK_SUSPEND, NULL);
    return 1;
}

static int tl_task_done(lua_State *L) {
    lua_pushboolean(L, tl_checktask(L, 1)->ended != 0);
    return 1;
}

static int tl_task_detach(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1);
    x->detached = 1;
    if (!x->ended) task_scope_leave(st->s, x->id);
    lua_pushboolean(L, 1);
    return 1;
}

static int tl_task_elapsed(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1);
    lua_pushnumber(L, tl_ms(task_now(st->s) - x->born));
    return 1;
}

static int tl_task_traceback(lua_State *L) {
    tl_task *x = tl_checktask(L, 1);
    if (x->ended == TASK_X_FAIL) tl_info(L, 1, "tb");
    else if (!x->ended) luaL_traceback(L, x->co, NULL, 0);
    else lua_pushnil(L);
    return 1;
}

static int tl_task_index(lua_State *L) {
    tl_task *x = tl_checktask(L, 1);
    const char *k = lua_tostring(L, 2);
    if (k && strcmp(k, "id") == 0) lua_pushinteger(L, (lua_Integer)x->id);
    else if (k && strcmp(k, "name") == 0) tl_info(L, 1, "name");
    else {
        lua_pushvalue(L, lua_upvalueindex(2)); /* the methods */
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
    }
    return 1;
}

static const char *tl_status_name(tl_state *st, tl_task *x) {
    int s = st->s && !st->closed ? task_status(st->s, x->id) : TASK_ENOENT;
    return s < 0 ? NULL : task_state_name(s);
}

static int tl_task_tostring(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1);
    const char *s = tl_status_name(st, x);
    tl_info(L, 1, "name");
    lua_pushfstring(L, "Task %I (%s): %s", (lua_Integer)x->id,
                    lua_isstring(L, -1) ? lua_tostring(L, -1) : "task", s ? s : "released");
    return 1;
}

static int tl_task_gc(lua_State *L) {
    tl_task *x = (tl_task *)lua_touserdata(L, 1);
    tl_state *st = x->st;
    if (st && x->id && st->s && !st->closed && !x->joined) task_release(st->s, x->id);
    return 0;
}

/* ---- the module's task functions ---------------------------------------- */

static int tl_running(lua_State *L) {
    tl_state *st = tl_st(L);
    if (st->cur) tl_pushtask(L, st, st->cur); else lua_pushnil(L);
    return 1;
}

static int tl_current(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *t = st->cur;
    if (!t) { lua_pushnil(L); return 1; }
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)t->id);
    lua_setfield(L, -2, "id");
    tl_pushtask(L, st, t);
    tl_info(L, -1, "name");
    lua_setfield(L, -3, "name");
    lua_pop(L, 1);
    lua_pushboolean(L, task_cancelled(st->s, t->id) == 1);
    lua_setfield(L, -2, "cancelled");
    return 1;
}

static int tl_status(lua_State *L) {
    tl_state *st = tl_st(L);
    const char *s = tl_status_name(st, tl_checktask(L, 1));
    if (s) lua_pushstring(L, s); else lua_pushnil(L);
    return 1;
}

/* Its context is st itself: the hottest continuation skips the upvalue. */
static int tl_k_sleep(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = (tl_state *)ctx;
    (void)status;
    /* also when cancelled while READY (a yield): nothing was handed to it */
    if (st->cur->why == TASK_R_CANCEL || task_self_cancelled(st->s)) return tl_raise_cancelled(L);
    return 0;
}

static int tl_suspend_st(lua_State *L, tl_state *st, tl_task *t, int code) {
    t->suspending = 1;
    t->code = (unsigned char)code;
    return lua_yieldk(L, 0, (lua_KContext)st, tl_k_sleep);
}

static int tl_yield(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *t = tl_need(L, st, "task.yield");
    tl_checkcancel(L, st, t);
    return tl_suspend_st(L, st, t, TASK_YIELD);
}

static int tl_sleep(lua_State *L) {
    tl_state *st = tl_st(L);
    uint64_t ns = tl_checkms(L, 1, "task.sleep");
    tl_task *t = tl_need(L, st, "task.sleep");
    int rc;
    tl_checkcancel(L, st, t);
    if (ns == 0) return tl_suspend_st(L, st, t, TASK_YIELD);
    if ((rc = task_sleep(st->s, ns)) != TASK_OK) return tl_fail(L, rc, "task.sleep");
    return tl_suspend_st(L, st, t, TASK_SUSPEND);
}

static int tl_checkpoint(lua_State *L) {
    tl_state *st = tl_st(L);
    if (st->cur) tl_checkcancel(L, st, st->cur);
    return 0;
}

/* Pushes the values resumed into external id `id` (kept in r_ext). */
static int tl_ext_values(lua_State *L, tl_state *st, lua_Integer id) {
    int n;
    tl_getref(L, st->r_ext);
    if (lua_rawgeti(L, -1, id) != LUA_TTABLE) { lua_pop(L, 2); return 0; }
    lua_pushnil(L);
    lua_rawseti(L, -3, id);
    lua_getfield(L, -1, "n");
    n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n, "task.wait");
    {
        int i, tbl = lua_gettop(L);
        for (i = 1; i <= n; i++) lua_rawgeti(L, tbl, i);
        lua_remove(L, tbl);
        lua_remove(L, tbl - 1);
    }
    return n;
}

static int tl_k_wait(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = tl_st(L);
    int why = tl_why(L);
    (void)status;
    if (why == TASK_R_CANCEL) return tl_raise_cancelled(L);
    if (ctx == 1 && lua_type(L, 1) == LUA_TNUMBER) { /* wait(id); ctx 0: a plain wait woken with a number */
        lua_settop(L, 1);
        return tl_ext_values(L, st, lua_tointeger(L, 1));
    }
    return lua_gettop(L) - (int)ctx;
}

/* wait() parks until wakeup(); wait(id) until resume(id, ...). */
static int tl_wait(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *t;
    int rc;
    if (!lua_isnoneornil(L, 1)) {
        lua_Integer id = luaL_checkinteger(L, 1);
        lua_settop(L, 1);
        t = tl_need(L, st, "task.wait");
        tl_checkcancel(L, st, t);
        if ((rc = task_ext_wait(st->s, (task_id)id)) != TASK_OK) {
            if (rc == TASK_ENOENT) return luaL_error(L, "task.wait: unknown, already used or stale external id");
            return tl_fail(L, rc, "task.wait");
        }
        return tl_suspend(L, t, TASK_SUSPEND, tl_k_wait);
    }
    lua_settop(L, 0);
    t = tl_need(L, st, "task.wait");
    tl_checkcancel(L, st, t);
    if ((rc = task_wait(st->s)) != TASK_OK) return tl_fail(L, rc, "task.wait");
    return tl_suspend(L, t, TASK_SUSPEND, tl_k_wait);
}

static int tl_wakeup(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *x = tl_checktask(L, 1);
    int s = task_status(st->s, x->id);
    lua_settop(L, 2);
    if (s != TASK_WAIT)
        return luaL_error(L, "task.wakeup: task is %s, not WAIT", s < 0 ? "released" : task_state_name(s));
    if (!lua_checkstack(x->co, 1)) return luaL_error(L, "task.wakeup: stack overflow");
    lua_pushvalue(L, 2);
    lua_xmove(L, x->co, 1);
    if (task_wakeup(st->s, x->id, NULL) != TASK_OK) {
        lua_pop(x->co, 1);
        return luaL_error(L, "task.wakeup: task is waiting for something else, not task.wait()");
    }
    x->npend = 1;
    return 0;
}

static int tl_alloc(lua_State *L) {
    tl_state *st = tl_st(L);
    task_id id;
    int rc = task_ext_alloc(st->s, &id);
    if (rc != TASK_OK) return tl_fail(L, rc, "task.alloc");
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static int tl_resume(lua_State *L) {
    lua_Integer id = luaL_checkinteger(L, 1);
    int n = lua_gettop(L) - 1, rc = task_lua_resume(L, (task_id)id, n);
    if (rc == TASK_OK) { lua_pushboolean(L, 1); return 1; }
    lua_pushboolean(L, 0);
    lua_pushstring(L, rc == TASK_ESTATE ? "task.resume: id already resumed"
                                        : "task.resume: unknown, already used or stale external id");
    return 2;
}

static int tl_ext_release(lua_State *L) {
    tl_state *st = tl_st(L);
    task_ext_release(st->s, (task_id)luaL_checkinteger(L, 1));
    return 0;
}

static int tl_now(lua_State *L) {
    lua_pushnumber(L, tl_ms(task_now(tl_st(L)->s)));
    return 1;
}

/* Ready-queue length; standalone, also the bytes the core holds (they come
   from Lua's allocator but collectgarbage("count") does not see them). */
static int tl_taskstat(lua_State *L) {
    tl_state *st = tl_st(L);
    lua_pushinteger(L, task_ready_count(st->s));
    if (!st->lalloc) return 1;
    lua_pushinteger(L, (lua_Integer)st->core_bytes);
    return 2;
}

static int tl_tasks(lua_State *L) {
    tl_state *st = tl_st(L);
    lua_newtable(L);
    tl_getref(L, st->r_anchors);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        tl_task *x = (tl_task *)luaL_testudata(L, -1, TL_TASK);
        const char *s;
        if (!x) { lua_pop(L, 1); continue; } /* luaL_ref's free list */
        s = tl_status_name(st, x);
        lua_createtable(L, 0, 2);
        if (x->co == L) luaL_traceback(L, L, NULL, 1);
        else luaL_traceback(L, x->co, NULL, 0);
        lua_setfield(L, -2, "traceback");
        lua_pushstring(L, s ? s : "EXIT");
        lua_setfield(L, -2, "status");
        lua_rawset(L, -5); /* result[Task] = info; the key stays for lua_next */
    }
    lua_pop(L, 1);
    return 1;
}

/* ---- tracing ----------------------------------------------------------- */

static int tl_tracenode(lua_State *L) {
    tl_state *st = tl_st(L);
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 0 || n > 65535) return luaL_error(L, "task.tracenode: node must be 0..65535, got %I", n);
    task_tracenode(st->s, (unsigned)n);
    return 0;
}

static int tl_tracespawn(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)task_tracespawn(tl_st(L)->s));
    return 1;
}

static int tl_traceset(lua_State *L) {
    lua_Integer id = luaL_checkinteger(L, 1);
    lua_pushinteger(L, (lua_Integer)task_traceset(tl_st(L)->s, (uint64_t)id));
    return 1;
}

static int tl_tracepropagate(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)task_tracepropagate(tl_st(L)->s));
    return 1;
}

/* traceparent() -> the W3C header for the running task's trace as it
   leaves this node (tracepropagate()); traceparent(header) -> trace id,
   or nil, err. The mapping is task.h's task_traceparent_format/parse. */
static int tl_traceparent(lua_State *L) {
    char buf[TASK_TRACEPARENT_LEN + 1];
    uint64_t id;
    if (lua_isnoneornil(L, 1)) {
        id = task_tracepropagate(tl_st(L)->s);
        if (task_traceparent_format(id, buf) != TASK_OK) {
            lua_pushnil(L);
            lua_pushliteral(L, "task.traceparent: no trace id (bits 63..16 are zero; call task.tracespawn())");
            return 2;
        }
        lua_pushstring(L, buf);
        return 1;
    }
    if (task_traceparent_parse(luaL_checkstring(L, 1), &id, NULL) != TASK_OK) {
        lua_pushnil(L);
        lua_pushliteral(L, "task.traceparent: invalid traceparent header");
        return 2;
    }
    lua_pushinteger(L, (lua_Integer)id);
    return 1;
}

static void tl_setref(lua_State *L, int idx, int *ref) {
    if (*ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    *ref = LUA_NOREF;
    if (!lua_isnil(L, idx)) {
        lua_pushvalue(L, idx);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
}

static int tl_hook(lua_State *L) {
    tl_state *st = tl_st(L);
    if (!lua_isnoneornil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    if (st->r_hcreate != LUA_NOREF) tl_getref(L, st->r_hcreate); else lua_pushnil(L);
    if (st->r_hterm != LUA_NOREF) tl_getref(L, st->r_hterm); else lua_pushnil(L);
    tl_setref(L, 1, &st->r_hcreate);
    tl_setref(L, 2, &st->r_hterm);
    return 2;
}

/* ---- cancel tokens ------------------------------------------------------ */

static tl_token *tl_pushtoken(lua_State *L, tl_state *st, task_id id, int owned) {
    tl_token *tk = (tl_token *)lua_newuserdatauv(L, sizeof *tk, 0);
    tk->st = st;
    tk->id = id;
    tk->owned = owned;
    luaL_setmetatable(L, TL_TOKEN);
    return tk;
}

static int tl_cancel_token(lua_State *L) {
    tl_state *st = tl_st(L);
    task_id parent = 0, id;
    int rc;
    if (!lua_isnoneornil(L, 1)) parent = ((tl_token *)luaL_checkudata(L, 1, TL_TOKEN))->id;
    tl_pushtoken(L, st, 0, 0); /* first, so a failure below leaks nothing */
    if ((rc = task_token_new(st->s, parent, &id)) != TASK_OK) return tl_fail(L, rc, "task.cancel_token");
    ((tl_token *)lua_touserdata(L, -1))->id = id;
    ((tl_token *)lua_touserdata(L, -1))->owned = 1;
    return 1;
}

static int tl_token_cancel(lua_State *L) {
    tl_token *tk = (tl_token *)luaL_checkudata(L, 1, TL_TOKEN);
    lua_pushboolean(L, task_token_cancel(tk->st->s, tk->id) == TASK_OK);
    return 1;
}

static int tl_token_is_cancelled(lua_State *L) {
    tl_token *tk = (tl_token *)luaL_checkudata(L, 1, TL_TOKEN);
    lua_pushboolean(L, task_token_cancelled(tk->st->s, tk->id) == 1);
    return 1;
}

static int tl_token_check(lua_State *L) {
    tl_token *tk = (tl_token *)luaL_checkudata(L, 1, TL_TOKEN);
    if (task_token_cancelled(tk->st->s, tk->id) == 1) return tl_raise_cancelled(L);
    return 0;
}

static int tl_token_gc(lua_State *L) {
    tl_token *tk = (tl_token *)lua_touserdata(L, 1);
    if (tk->owned && tk->st->s && !tk->st->closed) task_token_release(tk->st->s, tk->id);
    return 0;
}

/* ---- scopes (the Lua side in the embedded chunk) ---------------------- */

static tl_scope *tl_checkscope(lua_State *L, int idx) { return (tl_scope *)luaL_checkudata(L, idx, TL_SCOPE); }

static int tl_scope_open(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_task *t = tl_need(L, st, "task.scope");
    tl_scope *sc;
    task_id id;
    int rc;
    lua_settop(L, 1);
    sc = (tl_scope *)lua_newuserdatauv(L, sizeof *sc, 2);
    sc->id = 0;
    sc->failed = 0;
    luaL_setmetatable(L, TL_SCOPE);
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, -2, 1);
    tl_getref(L, st->r_scopes);
    if ((rc = task_scope_open(st->s, &id)) != TASK_OK) return tl_fail(L, rc, "task.scope");
    sc->id = id;
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)(uint32_t)id);
    lua_pop(L, 1);
    (void)t;
    return 1;
}

static int tl_scope_fail(lua_State *L) { /* scope, err: the first error wins */
    tl_state *st = tl_st(L);
    tl_scope *sc = tl_checkscope(L, 1);
    if (!sc->failed) {
        sc->failed = 1;
        lua_settop(L, 2);
        lua_setiuservalue(L, 1, 2);
    }
    task_scope_cancel(st->s, sc->id);
    return 0;
}

static int tl_k_scope_close(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = tl_st(L);
    tl_scope *sc = tl_checkscope(L, 1);
    (void)status; (void)ctx;
    tl_why(L);
    tl_getref(L, st->r_scopes);
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)(uint32_t)sc->id);
    return 0;
}

static int tl_scope_close(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_scope *sc = tl_checkscope(L, 1);
    tl_task *t = tl_need(L, st, "task.scope");
    int rc;
    lua_settop(L, 1);
    if ((rc = task_scope_close(st->s, sc->id)) != TASK_OK) return tl_fail(L, rc, "task.scope");
    return tl_suspend(L, t, TASK_SUSPEND, tl_k_scope_close);
}

static int tl_scope_error(lua_State *L) {
    tl_scope *sc = tl_checkscope(L, 1);
    lua_pushboolean(L, sc->failed);
    lua_getiuservalue(L, 1, 2);
    return 2;
}

static int tl_scope_abort(lua_State *L) {
    task_scope_abort(tl_st(L)->s, tl_checkscope(L, 1)->id);
    return 0;
}

static int tl_scope_spawn(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_scope *sc = tl_checkscope(L, 1);
    task_opts o;
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (task_scope_count(st->s, sc->id) < 0) return luaL_error(L, "Scope:spawn: the scope is closed");
    memset(&o, 0, sizeof o);
    o.scope = sc->id;
    tl_spawn_at(L, st, 2, lua_gettop(L) - 2, &o, 0, "Scope:spawn");
    return 1;
}

static int tl_scope_cancel(lua_State *L) {
    tl_state *st = tl_st(L);
    lua_pushboolean(L, task_scope_cancel(st->s, tl_checkscope(L, 1)->id) == TASK_OK);
    return 1;
}

static int tl_scope_token(lua_State *L) {
    tl_state *st = tl_st(L);
    task_id k = task_scope_token(st->s, tl_checkscope(L, 1)->id);
    if (!k) return luaL_error(L, "Scope:token: the scope is closed");
    tl_pushtoken(L, st, k, 0);
    return 1;
}

static int tl_scope_index(lua_State *L) {
    const char *k = lua_tostring(L, 2);
    tl_checkscope(L, 1);
    if (k && strcmp(k, "name") == 0) lua_getiuservalue(L, 1, 1);
    else {
        lua_pushvalue(L, lua_upvalueindex(2));
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
    }
    return 1;
}

/* ---- private helpers for the embedded chunk --------------------------- */

static int tl_p_intask(lua_State *L) {
    tl_state *st = tl_st(L);
    const char *fn = luaL_checkstring(L, 1);
    tl_task *t = st->cur;
    const char *why = !t ? "must be called from inside a task"
                      : t->co != L ? "cannot suspend from a coroutine nested inside a task"
                      : !lua_isyieldable(L) ? "cannot suspend here (a metamethod or C function that does not allow yields)"
                      : NULL;
    if (why) {
        lua_pushfstring(L, "%s: %s", fn, why);
        return lua_error(L);
    }
    tl_checkcancel(L, st, t);
    return 0;
}

static int tl_p_claim(lua_State *L) {
    tl_checktask(L, 1)->claimed = 1;
    return 0;
}

static int tl_p_checkms(lua_State *L) {
    const char *fn = luaL_checkstring(L, 2);
    if (lua_type(L, 1) != LUA_TNUMBER) {
        lua_pushfstring(L, "bad argument #1 to '%s' (number expected, got %s)",
                        strchr(fn, '.') ? strchr(fn, '.') + 1 : fn, luaL_typename(L, 1));
        return lua_error(L);
    }
    tl_validms(L, 1, fn);
    return 0;
}

/* ---- channels ------------------------------------------------------------ */

static tl_chan *tl_checkchan(lua_State *L, int idx) { return (tl_chan *)luaL_checkudata(L, idx, TL_CHAN); }

static int tl_channel(lua_State *L) {
    lua_Integer cap = 64;
    tl_chan *ch;
    if (lua_type(L, 1) == LUA_TNUMBER) {
        if (!lua_isinteger(L, 1) || (cap = lua_tointeger(L, 1)) <= 0) return luaL_error(L, "task.channel: capacity must be positive");
    } else if (lua_type(L, 1) == LUA_TTABLE) {
        int t = lua_getfield(L, 1, "capacity");
        if (t != LUA_TNIL && (!lua_isinteger(L, -1) || (cap = lua_tointeger(L, -1)) <= 0))
            return luaL_error(L, "task.channel: capacity must be positive");
        lua_pop(L, 1);
    } else if (!lua_isnoneornil(L, 1)) {
        return luaL_typeerror(L, 1, "nil, number or table");
    }
    ch = (tl_chan *)lua_newuserdatauv(L, sizeof *ch, 1);
    memset(ch, 0, sizeof *ch);
    ch->cap = cap;
    luaL_setmetatable(L, TL_CHAN);
    lua_createtable(L, cap < 64 ? (int)cap : 64, 0);
    lua_setiuservalue(L, -2, 1);
    return 1;
}

/* The buffer is a ring in the channel's user value: slots 1..cap. */
static void tl_chan_put(lua_State *L, int chidx, tl_chan *ch) { /* pops the value */
    lua_getiuservalue(L, chidx, 1);
    lua_insert(L, -2);
    lua_rawseti(L, -2, (ch->head + ch->count) % ch->cap + 1);
    lua_pop(L, 1);
    ch->count++;
}

static void tl_chan_take(lua_State *L, int chidx, tl_chan *ch) { /* pushes the value */
    lua_Integer slot = ch->head + 1;
    lua_getiuservalue(L, chidx, 1);
    lua_rawgeti(L, -1, slot);
    lua_pushnil(L);
    lua_rawseti(L, -3, slot);
    lua_remove(L, -2);
    ch->head = (ch->head + 1) % ch->cap;
    ch->count--;
}

/* A receiver took a slot: the first blocked sender's value moves in. */
static void tl_chan_refill(lua_State *L, tl_state *st, int chidx, tl_chan *ch) {
    tl_reg *r = tl_q_first(st, &ch->sendq);
    lua_State *sco;
    if (!r) return;
    sco = r->task->co;
    lua_pushvalue(sco, r->vidx);
    lua_xmove(sco, L, 1);
    tl_chan_put(L, chidx, ch);
    lua_pushboolean(L, 1);
    tl_give(L, r->task, 1);
    tl_complete(st, r);
}

static int tl_k_chan(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = tl_st(L);
    tl_task *t = st->cur;
    (void)status;
    tl_unregister(t);
    if (tl_why(L) == TASK_R_CANCEL) return tl_raise_cancelled(L);
    return lua_gettop(L) - (int)ctx;
}

static int tl_chan_send(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_chan *ch = tl_checkchan(L, 1);
    lua_settop(L, 2);
    if (ch->closed) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    if (tl_q_first(st, &ch->recvq)) { /* hand it straight to a waiting receiver */
        tl_reg *r = ch->recvq.head;
        if (!lua_checkstack(r->task->co, 1)) return luaL_error(L, "Channel:send: stack overflow");
        lua_pushvalue(L, 2);
        tl_give(L, r->task, 1);
        tl_complete(st, r);
        lua_pushboolean(L, 1);
        return 1;
    }
    if (ch->count < ch->cap) {
        tl_chan_put(L, 1, ch);
        lua_pushboolean(L, 1);
        return 1;
    }
    return tl_park_on(L, st, "Channel:send", ch, TL_K_CHAN, &ch->sendq, 2, tl_k_chan);
}

static int tl_chan_try_send(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_chan *ch = tl_checkchan(L, 1);
    lua_settop(L, 2);
    if (ch->closed) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    if (tl_q_first(st, &ch->recvq) || ch->count < ch->cap) return tl_chan_send(L); /* will not wait */
    lua_pushnil(L);
    lua_pushliteral(L, "full");
    return 2;
}

/* Non-blocking receive: pushes the outcome and returns its count, or 0. */
static int tl_chan_poll(lua_State *L, tl_state *st, int chidx, tl_chan *ch) {
    if (ch->count > 0) {
        tl_chan_take(L, chidx, ch);
        tl_chan_refill(L, st, chidx, ch);
        return 1;
    }
    if (ch->closed) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    return 0;
}

static int tl_chan_recv(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_chan *ch = tl_checkchan(L, 1);
    int n;
    lua_settop(L, 1);
    if ((n = tl_chan_poll(L, st, 1, ch)) > 0) return n;
    return tl_park_on(L, st, "Channel:recv", ch, TL_K_CHAN, &ch->recvq, 0, tl_k_chan);
}

static int tl_chan_try_recv(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_chan *ch = tl_checkchan(L, 1);
    int n;
    lua_settop(L, 1);
    if ((n = tl_chan_poll(L, st, 1, ch)) > 0) return n;
    lua_pushnil(L);
    lua_pushliteral(L, "empty");
    return 2;
}

static int tl_chan_close(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_chan *ch = tl_checkchan(L, 1);
    if (!ch->closed) {
        ch->closed = 1;
        while (ch->recvq.head || ch->sendq.head) {
            tl_reg *r = ch->recvq.head ? ch->recvq.head : ch->sendq.head;
            if (lua_checkstack(r->task->co, 2)) {
                lua_pushnil(L);
                lua_pushliteral(L, "closed");
                tl_give(L, r->task, 2);
            }
            tl_complete(st, r);
        }
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int tl_chan_len(lua_State *L) {
    lua_pushinteger(L, tl_checkchan(L, 1)->count);
    return 1;
}

static int tl_chan_tostring(lua_State *L) {
    tl_chan *ch = tl_checkchan(L, 1);
    lua_pushfstring(L, "Channel (%I/%I%s)", ch->count, ch->cap, ch->closed ? ", closed" : "");
    return 1;
}

/* ---- timers (awaitables) ------------------------------------------------ */

static tl_timer *tl_checktimer(lua_State *L, int idx) { return (tl_timer *)luaL_checkudata(L, idx, TL_TIMER); }

static void tl_timer_unanchor(tl_state *st, tl_timer *tm) {
    tl_getref(st->L, st->r_timers);
    lua_pushnil(st->L);
    lua_rawsetp(st->L, -2, tm);
    lua_pop(st->L, 1);
}

static void tl_timer_fired(task_sched *s, task_id id, void *ud) {
    tl_timer *tm = (tl_timer *)ud;
    (void)s; (void)id;
    tm->fired = 1;
    tl_complete_all(tm->st, &tm->waitq);
    tl_timer_unanchor(tm->st, tm);
}

static int tl_timer_new(lua_State *L) {
    tl_state *st = tl_st(L);
    uint64_t ns = tl_checkms(L, 1, "task.timer");
    tl_timer *tm = (tl_timer *)lua_newuserdatauv(L, sizeof *tm, 0);
    int rc;
    memset(tm, 0, sizeof *tm);
    tm->st = st;
    luaL_setmetatable(L, TL_TIMER);
    tl_getref(L, st->r_timers);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, tm); /* anchored while armed: the core holds its address */
    lua_pop(L, 1);
    if ((rc = task_after(st->s, ns, tl_timer_fired, tm, &tm->id)) != TASK_OK) {
        tl_timer_unanchor(st, tm);
        return tl_fail(L, rc, "task.timer");
    }
    return 1;
}

static int tl_k_timer(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = tl_st(L);
    (void)status; (void)ctx;
    tl_unregister(st->cur);
    if (tl_why(L) == TASK_R_CANCEL) return tl_raise_cancelled(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int tl_timer_wait(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_timer *tm = tl_checktimer(L, 1);
    lua_settop(L, 1);
    if (tm->fired) { lua_pushboolean(L, 1); return 1; }
    return tl_park_on(L, st, "Timer:wait", tm, TL_K_TIMER, &tm->waitq, 0, tl_k_timer);
}

static int tl_timer_cancel(lua_State *L) {
    tl_state *st = tl_st(L);
    tl_timer *tm = tl_checktimer(L, 1);
    int ok = !tm->fired && !tm->cancelled;
    if (ok) {
        task_timer_cancel(st->s, tm->id);
        tm->cancelled = 1;
        tl_timer_unanchor(st, tm);
    }
    lua_pushboolean(L, ok);
    return 1;
}

static int tl_timer_done(lua_State *L) {
    lua_pushboolean(L, tl_checktimer(L, 1)->fired);
    return 1;
}

/* ---- select ---------------------------------------------------------------- */

static int tl_k_select(lua_State *L, int status, lua_KContext ctx) {
    tl_state *st = tl_st(L);
    tl_task *t = st->cur;
    int why = tl_why(L), won = t->won, n;
    (void)status;
    tl_unregister(t);
    if (why == TASK_R_CANCEL) return tl_raise_cancelled(L);
    n = lua_gettop(L) - (int)ctx; /* a channel's value(s) */
    if (n == 0) {
        lua_rawgeti(L, 1, won);
        if (luaL_testudata(L, -1, TL_TASK)) { /* a task: its outcome, as join */
            int idx = lua_gettop(L);
            lua_pushinteger(L, won);
            return 1 + tl_take(L, st, (tl_task *)lua_touserdata(L, idx), idx);
        }
        lua_pop(L, 1);
    }
    lua_pushinteger(L, won);
    lua_insert(L, -(n + 1));
    return n + 1;
}

static int tl_select(lua_State *L) {
    tl_state *st = tl_st(L);
    lua_Integer i, n;
    tl_task *t;
    tl_reg *regs;
    int rc;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    n = luaL_len(L, 1);
    if (n < 1) return luaL_error(L, "task.select: the list is empty");
    if (n > 100000) return luaL_error(L, "task.select: the list is too long");
    for (i = 1; i <= n; i++) { /* ready now? the lowest index wins */
        void *u;
        lua_rawgeti(L, 1, i);
        if ((u = luaL_testudata(L, -1, TL_TASK)) != NULL) {
            tl_task *x = (tl_task *)u;
            if (x == st->cur) return luaL_error(L, "task.select: a task cannot wait for itself");
            if (x->ended || x->joined) {
                int idx = lua_gettop(L), r;
                lua_pushinteger(L, i);
                r = tl_take(L, st, x, idx);
                return r + 1;
            }
        } else if ((u = luaL_testudata(L, -1, TL_CHAN)) != NULL) {
            int idx = lua_gettop(L), r;
            lua_pushinteger(L, i);
            if ((r = tl_chan_poll(L, st, idx, (tl_chan *)u)) > 0) return r + 1;
            lua_pop(L, 1);
        } else if ((u = luaL_testudata(L, -1, TL_TIMER)) != NULL) {
            if (((tl_timer *)u)->fired) { lua_pushinteger(L, i); return 1; }
        } else {
            return luaL_error(L, "bad argument #1 to 'select' (element %I is not a Task, Channel or Timer)", i);
        }
        lua_pop(L, 1);
    }
    t = tl_need(L, st, "task.select");
    tl_checkcancel(L, st, t);
    regs = (tl_reg *)lua_newuserdatauv(L, sizeof *regs * (size_t)n, 0); /* lives on this stack */
    if ((rc = task_park(st->s)) != TASK_OK) return tl_fail(L, rc, "task.select");
    for (i = 1; i <= n; i++) {
        void *u;
        tl_reg *r = &regs[i - 1];
        lua_rawgeti(L, 1, i);
        if ((u = luaL_testudata(L, -1, TL_TASK)) != NULL) {
            tl_reg_init(r, t, u, TL_K_TASK, (int)i);
            tl_reg_add(r, &((tl_task *)u)->waitq);
        } else if ((u = luaL_testudata(L, -1, TL_CHAN)) != NULL) {
            tl_reg_init(r, t, u, TL_K_CHAN, (int)i);
            tl_reg_add(r, &((tl_chan *)u)->recvq);
        } else {
            u = lua_touserdata(L, -1);
            tl_reg_init(r, t, u, TL_K_TIMER, (int)i);
            tl_reg_add(r, &((tl_timer *)u)->waitq);
        }
        lua_pop(L, 1);
    }
    t->sel = regs;
    t->nsel = (int)n;
    t->won = 0;
    return tl_suspend(L, t, TASK_SUSPEND, tl_k_select);
}

/* ---- the standalone loop ------------------------------------------------ */

#ifdef TASK_LUA_MODULE
static int tl_abort_each(task_sched *s, task_id id, int state, void *ud) {
    (void)state;
    if (tl_luatask((tl_state *)ud, id)) task_abort(s, id);
    return 0;
}

static uint64_t tl_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}
#endif

static int tl_run(lua_State *L) {
#ifdef TASK_LUA_MODULE
    tl_state *st = tl_st(L);
    tl_task *main;
    int idx;
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (!st->owns) return luaL_error(L, "task.run: the host drives this scheduler (call task_tick from the host loop)");
    if (st->cur || st->looping) return luaL_error(L, "task.run: already running");
    main = tl_spawn_at(L, st, 1, lua_gettop(L) - 1, NULL, 0, "task.run");
    main->claimed = 1;
    idx = lua_gettop(L);
    st->looping = 1;
    for (;;) {
        uint64_t wait;
        task_tick(st->s, tl_clock());
        if (task_count(st->s, -1) == 0) break;
        /* ready tasks: no need to read the clock again before the next tick */
        wait = task_timeout(st->s, task_now(st->s));
        if (wait && wait != TASK_FOREVER) wait = task_timeout(st->s, tl_clock());
        if (wait == TASK_FOREVER) {
            int n = task_count(st->s, -1);
            task_foreach(st->s, tl_abort_each, st); /* so a later run starts clean */
            task_tick(st->s, tl_clock());
            st->looping = 0;
            return luaL_error(L, "task.run: deadlock: %d task(s) wait and nothing can wake them", n);
        }
        if (wait) {
            struct timespec ts;
            ts.tv_sec = (time_t)(wait / TASK_SEC);
            ts.tv_nsec = (long)(wait % TASK_SEC);
            nanosleep(&ts, NULL);
        }
    }
    st->looping = 0;
    lua_settop(L, idx);
    return tl_take(L, st, main, idx);
#else
    return luaL_error(L, "task.run: only in the standalone module; this host drives the scheduler");
#endif
}

/* ---- the embedded Lua part: combinators over the primitives ------------ */

/* Pieces: C99 promises string literals of 4095 characters only. */
static const char *const tl_chunk[] = {
"local task, P = ...\n"
"local spawn, sleep = task.spawn, task.sleep\n"
"local pack, unpack, nargs = table.pack, table.unpack, select\n"
"local intask, claim, checkms = P.intask, P.claim, P.checkms\n"
"local function checkfn(f, i, name)\n"
"  if type(f) ~= 'function' then\n"
"    error(('bad argument #%d to \\'%s\\' (function expected, got %s)'):format(i, name, type(f)), 3)\n"
"  end\n"
"end\n"
"local function checkfns(name, ...)\n"
"  local n = nargs('#', ...)\n"
"  if n == 0 then error(('bad argument #1 to \\'%s\\' (function expected, got no value)'):format(name), 3) end\n"
"  for i = 1, n do\n"
"    local f = (nargs(i, ...))\n"
"    if type(f) ~= 'function' then\n"
"      error(('bad argument #%d to \\'%s\\' (function expected, got %s)'):format(i, name, type(f)), 3)\n"
"    end\n"
"  end\n"
"  return n\n"
"end\n",
"function task.scope(name, fn)\n"
"  if fn == nil and type(name) == 'function' then name, fn = nil, name end\n"
"  checkfn(fn, 2, 'scope')\n"
"  if name ~= nil and type(name) ~= 'string' then\n"
"    error(('bad argument #1 to \\'scope\\' (string expected, got %s)'):format(type(name)), 2)\n"
"  end\n"
"  intask('task.scope')\n"
"  local sc = P.scope_open(name)\n"
"  local r = pack(pcall(fn, sc))\n"
"  if not r[1] then P.scope_fail(sc, r[2]) end\n"
"  P.scope_close(sc)\n"
"  local failed, err = P.scope_error(sc)\n"
"  if failed then error(err, 0) end\n"
"  task.checkpoint()\n"
"  return unpack(r, 2, r.n)\n"
"end\n",
"function task.all(...)\n"
"  local n = checkfns('all', ...)\n"
"  intask('task.all')\n"
"  local fns, results, failed, first = pack(...), {}, false, nil\n"
"  task.scope(function(sc)\n"
"    local ts = {}\n"
"    for i = 1, n do ts[i] = sc:spawn(fns[i]); claim(ts[i]) end\n"
"    for i = 1, n do\n"
"      local ok, v = pcall(ts[i].join, ts[i])\n"
"      if ok then results[i] = v elseif not failed then failed, first = true, v end\n"
"    end\n"
"  end)\n"
"  if failed then error(first, 0) end\n"
"  return results\n"
"end\n",
"function task.race(...)\n"
"  local n = checkfns('race', ...)\n"
"  intask('task.race')\n"
"  local fns, idx, res = pack(...), nil, nil\n"
"  task.scope(function(sc)\n"
"    local ts = {}\n"
"    for i = 1, n do ts[i] = sc:spawn(fns[i]); claim(ts[i]) end\n"
"    local r = pack(pcall(task.select, ts))\n"
"    sc:cancel()\n"
"    if not r[1] then error(r[2], 0) end\n"
"    idx, res = r[2], r[3]\n"
"  end)\n"
"  return idx, res\n"
"end\n",
"function task.timeout(ms, fn)\n"
"  checkms(ms, 'task.timeout')\n"
"  checkfn(fn, 2, 'timeout')\n"
"  intask('task.timeout')\n"
"  local expired, r = false, nil\n"
"  task.scope(function(sc)\n"
"    local t = sc:spawn(fn); claim(t)\n"
"    local wd = sc:spawn(function() sleep(ms); expired = true; t:cancel() end); claim(wd)\n"
"    r = pack(pcall(t.join, t))\n"
"    wd:cancel()\n"
"  end)\n"
"  if r[1] then return r[2], nil end\n"
"  if expired and r[2] == 'task cancelled' then return nil, 'timeout' end\n"
"  error(r[2], 0)\n"
"end\n",
"function task.with_timeout(ms, fn, opts)\n"
"  checkms(ms, 'task.with_timeout')\n"
"  checkfn(fn, 2, 'with_timeout')\n"
"  local grace = 1000\n"
"  if opts ~= nil then\n"
"    if type(opts) ~= 'table' then\n"
"      error(('bad argument #3 to \\'with_timeout\\' (table expected, got %s)'):format(type(opts)), 2)\n"
"    end\n"
"    for k in pairs(opts) do\n"
"      if k ~= 'grace_ms' then error(('task.with_timeout: unknown option \\'%s\\''):format(tostring(k)), 2) end\n"
"    end\n"
"    if opts.grace_ms ~= nil then checkms(opts.grace_ms, 'task.with_timeout'); grace = opts.grace_ms end\n"
"  end\n"
"  intask('task.with_timeout')\n"
"  local expired, sc = false, nil\n"
"  local wd = spawn(function()\n"
"    sleep(ms); expired = true; sc:cancel()\n"
"    sleep(grace); P.scope_abort(sc)\n"
"  end)\n"
"  claim(wd)\n"
"  local r = pack(pcall(task.scope, function(s) sc = s; return fn(s) end))\n"
"  wd:cancel()\n"
"  if expired then\n"
"    error(('task.with_timeout: exceeded %s ms'):format(tostring(math.tointeger(ms) or ms)), 0)\n"
"  end\n"
"  if not r[1] then error(r[2], 0) end\n"
"  return unpack(r, 2, r.n)\n"
"end\n",
"function task.external(start)\n"
"  checkfn(start, 1, 'external')\n"
"  intask('task.external')\n"
"  local id = task.alloc()\n"
"  local ok, err = pcall(start, id)\n"
"  if not ok then P.ext_release(id); error(err, 0) end\n"
"  return task.wait(id)\n"
"end\n",
"function task.await(a)\n"
"  local ok, w = pcall(function() return a.wait end)\n"
"  if ok and type(w) == 'function' then return w(a) end\n"
"  local mt = getmetatable(a)\n"
"  if type(mt) == 'table' and mt.__call then return a() end\n"
"  error(('bad argument #1 to \\'await\\' (awaitable expected, got %s)'):format(type(a)), 2)\n"
"end\n",
"function task.after(ms, fn)\n"
"  checkms(ms, 'task.after')\n"
"  checkfn(fn, 2, 'after')\n"
"  return spawn(function() sleep(ms); return fn() end)\n"
"end\n"
"task.task_hook = task.hook\n",
    NULL};

static const char *tl_chunk_reader(lua_State *L, void *ud, size_t *size) {
    int *i = (int *)ud;
    const char *piece = tl_chunk[*i];
    (void)L;
    if (!piece) return NULL;
    (*i)++;
    *size = strlen(piece);
    return piece;
}

/* ---- registration ------------------------------------------------------- */

static const luaL_Reg tl_funcs[] = {
    {"spawn", tl_spawn}, {"fork", tl_fork}, {"running", tl_running}, {"current", tl_current},
    {"status", tl_status}, {"sleep", tl_sleep}, {"yield", tl_yield}, {"checkpoint", tl_checkpoint},
    {"wait", tl_wait}, {"wakeup", tl_wakeup}, {"alloc", tl_alloc}, {"resume", tl_resume},
    {"cancel_token", tl_cancel_token}, {"now", tl_now}, {"select", tl_select}, {"timer", tl_timer_new},
    {"channel", tl_channel}, {"taskstat", tl_taskstat}, {"tasks", tl_tasks},
    {"tracenode", tl_tracenode}, {"tracespawn", tl_tracespawn}, {"traceset", tl_traceset},
    {"tracepropagate", tl_tracepropagate}, {"traceparent", tl_traceparent}, {"hook", tl_hook}, {"run", tl_run},
    {NULL, NULL}};

static const luaL_Reg tl_private[] = {
    {"intask", tl_p_intask}, {"claim", tl_p_claim}, {"checkms", tl_p_checkms},
    {"scope_open", tl_scope_open}, {"scope_fail", tl_scope_fail}, {"scope_close", tl_scope_close},
    {"scope_error", tl_scope_error}, {"scope_abort", tl_scope_abort}, {"ext_release", tl_ext_release},
    {NULL, NULL}};

static const luaL_Reg tl_task_methods[] = {
    {"wait", tl_join}, {"join", tl_join}, {"cancel", tl_task_cancel}, {"abort", tl_task_abort},
    {"done", tl_task_done}, {"is_finished", tl_task_done}, {"detach", tl_task_detach},
    {"elapsed", tl_task_elapsed}, {"traceback", tl_task_traceback}, {NULL, NULL}};

static const luaL_Reg tl_scope_methods[] = {
    {"spawn", tl_scope_spawn}, {"cancel", tl_scope_cancel}, {"token", tl_scope_token}, {NULL, NULL}};

static const luaL_Reg tl_chan_methods[] = {
    {"send", tl_chan_send}, {"try_send", tl_chan_try_send}, {"wait", tl_chan_recv}, {"recv", tl_chan_recv},
    {"try_recv", tl_chan_try_recv}, {"close", tl_chan_close}, {"len", tl_chan_len}, {NULL, NULL}};

static const luaL_Reg tl_token_methods[] = {
    {"cancel", tl_token_cancel}, {"is_cancelled", tl_token_is_cancelled}, {"check", tl_token_check}, {NULL, NULL}};

static const luaL_Reg tl_timer_methods[] = {
    {"wait", tl_timer_wait}, {"cancel", tl_timer_cancel}, {"done", tl_timer_done}, {NULL, NULL}};

static int tl_plain_tostring(lua_State *L) {
    lua_pushfstring(L, "%s: %p", luaL_typename(L, 1) ? lua_tostring(L, lua_upvalueindex(2)) : "?", lua_topointer(L, 1));
    return 1;
}

/* A metatable whose methods and metamethods all see st as upvalue 1. */
static void tl_newclass(lua_State *L, int sti, const char *tname, const luaL_Reg *methods,
                        lua_CFunction index, lua_CFunction tostring, lua_CFunction gc, lua_CFunction call) {
    luaL_newmetatable(L, tname);
    lua_newtable(L); /* methods */
    lua_pushvalue(L, sti);
    luaL_setfuncs(L, methods, 1);
    if (index) {
        lua_pushvalue(L, sti);
        lua_pushvalue(L, -2);
        lua_pushcclosure(L, index, 2);
        lua_setfield(L, -3, "__index");
        lua_pop(L, 1);
    } else lua_setfield(L, -2, "__index");
    lua_pushvalue(L, sti);
    if (tostring) lua_pushnil(L); else lua_pushstring(L, tname + 5);
    lua_pushcclosure(L, tostring ? tostring : tl_plain_tostring, 2);
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
    lua_pushstring(L, tname + 5); /* "Task", not "task.Task" */
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
}

/* Frees every Lua task of this state: lua_close is tearing it down. */
static int tl_drop_each(task_sched *s, task_id id, int state, void *ud) {
    /* an ended task's Task may be gone already (its __gc can fail to run
       when memory is short): do not look at it; task_destroy frees it */
    if (state == TASK_EXIT) return 0;
    if (tl_luatask((tl_state *)ud, id)) task_drop(s, id);
    return 0;
}

static int tl_state_gc(lua_State *L) {
    tl_state *st = (tl_state *)lua_touserdata(L, 1);
    if (st->closed || !st->s) return 0;
    task_foreach(st->s, tl_drop_each, st);
    tl_getref(L, st->r_timers);
    lua_pushnil(L);
    /* not a table when task_lua_open ran out of memory before making it */
    while (lua_istable(L, -2) && lua_next(L, -2)) {
        tl_timer *tm = (tl_timer *)lua_touserdata(L, -1);
        if (tm && !tm->fired && !tm->cancelled) task_timer_cancel(st->s, tm->id);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    task_set_hooks(st->s, st->prev);
    st->closed = 1;
    if (st->owns) task_destroy(st->s);
    st->s = NULL;
    return 0;
}

static void *tl_core_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    tl_state *st = (tl_state *)ud;
    void *p = st->lalloc(st->lalloc_ud, ptr, ptr ? osize : 0, nsize);
    if (p || nsize == 0) st->core_bytes = st->core_bytes - (ptr ? osize : 0) + nsize;
    return p;
}

static int tl_open(lua_State *L, task_sched *s, int owns) {
    tl_state *st;
    int sti, i;
    task_hooks h;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tl__modkey) == LUA_TTABLE) {
        if (owns) task_destroy(s);
        return 1;
    }
    lua_pop(L, 1);
    st = (tl_state *)lua_newuserdatauv(L, sizeof *st, 0);
    memset(st, 0, sizeof *st);
    st->r_anchors = st->r_timers = st->r_ext = st->r_scopes = LUA_NOREF;
    st->r_handler = st->r_hcreate = st->r_hterm = LUA_NOREF;
    st->owns = owns;
    if (!s) { /* a scheduler of its own, on Lua's allocator */
        st->lalloc = lua_getallocf(L, &st->lalloc_ud);
        if (!(s = task_create(tl_core_alloc, st))) return luaL_error(L, "task: out of memory");
    }
    st->s = s;
    luaL_newmetatable(L, TL_STATE);
    lua_pushcfunction(L, tl_state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    sti = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    st->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, sti);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tl__statekey);
    for (i = 0; i < 4; i++) {
        int *ref = i == 0 ? &st->r_anchors : i == 1 ? &st->r_timers : i == 2 ? &st->r_ext : &st->r_scopes;
        lua_newtable(L);
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    tl_newclass(L, sti, TL_TASK, tl_task_methods, tl_task_index, tl_task_tostring, tl_task_gc, tl_join);
    luaL_getmetatable(L, TL_TASK);
    st->r_taskmt = luaL_ref(L, LUA_REGISTRYINDEX);
    tl_newclass(L, sti, TL_SCOPE, tl_scope_methods, tl_scope_index, NULL, NULL, NULL);
    tl_newclass(L, sti, TL_CHAN, tl_chan_methods, NULL, tl_chan_tostring, NULL, tl_chan_recv);
    tl_newclass(L, sti, TL_TOKEN, tl_token_methods, NULL, NULL, tl_token_gc, NULL);
    tl_newclass(L, sti, TL_TIMER, tl_timer_methods, NULL, NULL, NULL, tl_timer_wait);
    luaL_newlibtable(L, tl_funcs);
    lua_pushvalue(L, sti);
    luaL_setfuncs(L, tl_funcs, 1);
    i = 0;
    if (lua_load(L, tl_chunk_reader, &i, "=task", "t") != LUA_OK) return lua_error(L);
    lua_pushvalue(L, -2);
    luaL_newlibtable(L, tl_private);
    lua_pushvalue(L, sti);
    luaL_setfuncs(L, tl_private, 1);
    lua_call(L, 2, 0);
    h.create = tl_core_create;
    h.term = tl_core_term;
    h.ud = st;
    st->prev = task_set_hooks(s, h);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &tl__modkey);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "task");
    lua_pop(L, 1);
    lua_remove(L, sti);
    return 1;
}

static tl_state *tl_state_of(lua_State *L) {
    tl_state *st;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &tl__statekey);
    st = (tl_state *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st && st->s && !st->closed ? st : NULL;
}

TASK_LUA_API int task_lua_open(lua_State *L, task_sched *s) {
    return tl_open(L, s, 0) ? TASK_OK : TASK_EINVAL;
}

TASK_LUA_API task_sched *task_lua_sched(lua_State *L) {
    tl_state *st = tl_state_of(L);
    return st ? st->s : NULL;
}

static int tl_spawn_p(lua_State *L) {
    tl_state *st = (tl_state *)lua_touserdata(L, 1);
    int nargs = (int)lua_tointeger(L, 2);
    lua_remove(L, 1);
    lua_remove(L, 1);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    tl_spawn_at(L, st, 1, nargs, NULL, 0, "task_lua_spawn");
    return 1;
}

TASK_LUA_API int task_lua_spawn(lua_State *L, int nargs, task_id *out) {
    tl_state *st = tl_state_of(L);
    if (!st) {
        lua_pop(L, nargs + 1);
        lua_pushliteral(L, "task_lua_spawn: the task module is not open on this state");
        return TASK_EINVAL;
    }
    lua_pushcfunction(L, tl_spawn_p);
    lua_pushlightuserdata(L, st);
    lua_pushinteger(L, nargs);
    lua_rotate(L, -(nargs + 4), 3);
    if (lua_pcall(L, nargs + 3, 1, 0) != LUA_OK) return TASK_ENOMEM;
    if (out) *out = ((tl_task *)lua_touserdata(L, -1))->id;
    return TASK_OK;
}

/* Protected part of task_lua_resume: st, ext, values... -> r_ext[ext] = {values, n = n} */
static int tl_resume_p(lua_State *L) {
    tl_state *st = (tl_state *)lua_touserdata(L, 1);
    lua_Integer ext = lua_tointeger(L, 2);
    int i, n = lua_gettop(L) - 2;
    lua_createtable(L, n, 1);
    for (i = 1; i <= n; i++) {
        lua_pushvalue(L, i + 2);
        lua_rawseti(L, -2, i);
    }
    lua_pushinteger(L, n);
    lua_setfield(L, -2, "n");
    tl_getref(L, st->r_ext);
    lua_insert(L, -2);
    lua_rawseti(L, -2, ext);
    return 0;
}

TASK_LUA_API int task_lua_resume(lua_State *L, task_id ext, int nvalues) {
    tl_state *st = tl_state_of(L);
    int i, s;
    if (!st) { lua_pop(L, nvalues); return TASK_EINVAL; }
    s = task_ext_status(st->s, ext);
    if (s != 0) { lua_pop(L, nvalues); return s < 0 ? s : TASK_ESTATE; }
    /* protected: the host may call this from a timer callback, outside any
       pcall, and packing the values can run out of memory */
    if (!lua_checkstack(L, 3)) { lua_pop(L, nvalues); return TASK_ENOMEM; }
    lua_pushcfunction(L, tl_resume_p);
    lua_pushlightuserdata(L, st);
    lua_pushinteger(L, (lua_Integer)ext);
    lua_rotate(L, -(nvalues + 3), 3);
    if (lua_pcall(L, nvalues + 2, 0, 0) != LUA_OK) { lua_pop(L, 1); return TASK_ENOMEM; }
    (void)i;
    return task_ext_resume(st->s, ext, NULL);
}

TASK_LUA_API void task_lua_set_budget(lua_State *L, int instructions, int mode) {
    tl_state *st = tl_state_of(L);
    if (!st) return;
    st->budget = instructions > 0 ? instructions : 0;
    st->budget_mode = mode == TASK_LUA_RAISE ? TASK_LUA_RAISE : TASK_LUA_PREEMPT;
}

TASK_LUA_API void task_lua_set_error_handler(lua_State *L, int idx) {
    tl_state *st = tl_state_of(L);
    if (st) tl_setref(L, idx, &st->r_handler);
}

TASK_LUA_API int luaopen_task(lua_State *L) {
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &tl__modkey) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    return tl_open(L, NULL, 1);
}

#endif /* TASK_LUA_IMPLEMENTATION */
