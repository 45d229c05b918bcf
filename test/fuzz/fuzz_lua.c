/* fuzz_lua.c: libFuzzer target for task_lua.h, written as a hostile script
 * author (a mod or plugin that wants to crash or freeze its host).
 *
 * The first input bytes pick a host configuration:
 *   - an instruction budget (none, 200, 2000, 20000; preempt or raise),
 *   - whether the debug library is loaded,
 *   - the error handler (default, quiet, one that raises),
 *   - one lua_State, or two on the same scheduler (opened and closed in
 *     either order, the first one maybe closed while the other keeps
 *     running and spawning); the host's own hooks and C tasks share the
 *     scheduler with them and go on after both are closed,
 *   - the collector's mode (incremental, generational, or a step at every
 *     allocation so that weak entries are cleared and finalizers run inside
 *     the binding's own allocations),
 *   - the core's tick limit (none, so the wake limit is what keeps the
 *     host responsive, or 64),
 *   - memory running out: one allocation (Lua then collects and retries),
 *     or a burst of 2 to 256, anywhere from the opening of the module to
 *     lua_close,
 *   - how many finalizers are registered before the module is opened (they
 *     run after the module's own __gc at lua_close, and call it).
 * The rest is a program (per state): a main task whose statements, and the
 * bodies of the tasks, nested coroutines, finalizers and hooks it makes,
 * are drawn from a repertoire of task API calls with hostile arguments
 * (wrong types, NaN, infinities, stale handles, error values that are
 * tables, nil or have a failing __tostring) and of attacks on the binding:
 *   - the coroutine library on task threads: every task records its thread
 *     (coroutine.running()); others close or resume it while it is parked
 *     in select, recv, sleep, wait, join or a plain coroutine.yield();
 *     status/isyieldable/wrap on task threads and nested coroutines;
 *   - weak tables (__mode "k", "v", "kv") holding Tasks, Channels, Timers
 *     and tokens, also as the list given to task.select; finalizers that
 *     rewrite such lists (io.stdout, nil, other objects) or call the API;
 *   - collectgarbage in every mode between operations;
 *   - metamethods (__gc, __index, __tostring, __call, __close, ...) of
 *     every class called by hand with foreign values, a real object's __gc
 *     called and the object used again, metamethods swapped between classes;
 *   - producers and consumers (channels, wakeup, external ids) that keep
 *     waking each other;
 *   - with a budget: loops that never suspend, also after debug.sethook()
 *     replaced the task's hook, inside metamethods and C calls that cannot
 *     yield, in coroutines made by other tasks, finalizers or hooks, and in
 *     coroutines the host made outside any task once the budget was set;
 *   - channel close while senders and receivers wait; scopes, select, race,
 *     all, timeouts, abort, hooks that spawn; external ids that the host
 *     resumes from C between ticks.
 * Each statement runs under pcall so a program goes on after an error.
 *
 * The host drives it with a virtual clock for a bounded number of ticks,
 * then calls lua_close (tasks may still be alive) and task_destroy. A run
 * fails (abort, so libFuzzer keeps the input) when:
 *   - ASan or UBSan reports anything;
 *   - one task_tick resumes more than (live tasks at its start + the wake
 *     limit + 64) tasks: the contract says a tick returns after a bounded
 *     number of resumes (the binding's lua_resume calls are counted);
 *   - one task_tick uses more than FUZZ_LUA_TICK_SECONDS (default 5) of
 *     CPU: the host is stuck (a budget that a task removed, a coroutine
 *     it cannot preempt); libFuzzer's -timeout backs this up;
 *   - bytes are still allocated, or tasks still alive, after lua_close and
 *     task_destroy;
 *   - after lua_close of every state the scheduler's hooks are not the
 *     host's own again, or they missed the start or end of a C task.
 * Infinite loops are generated only where the contract promises to stop
 * them: in task code while an instruction budget is set, never in
 * finalizers or hooks (which no budget covers).
 *
 *   FUZZ_LUA_PRINT=1 fuzz_lua_replay FILE   prints the configuration and the
 *                                           generated programs.
 *   FUZZ_LUA_PROGRAM=prog.lua fuzz_lua_replay FILE   runs prog.lua instead of
 *       the program of state 1, in the host FILE configures: a printed
 *       program can be cut down by hand to a regression test.
 */
#define _POSIX_C_SOURCE 200809L
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- host-side view of a tick ------------------------------------------
   The binding resumes every Lua task with lua_resume. Counting those calls
   during one task_tick shows a tick that would never return long before a
   timeout would, and says why. */
static struct {
    volatile sig_atomic_t in_tick;
    long resumes, limit;
    int live;
    unsigned tick, tick_limit;
    int budget, budget_mode;
    lua_State *co; /* the thread being resumed */
} H;

static void wd_arm(int on);

static int fuzz_lua_resume(lua_State *co, lua_State *from, int nargs, int *nres) {
    if (H.in_tick && ++H.resumes > H.limit) {
        fprintf(stderr,
                "fuzz_lua: task_tick %u has resumed %ld tasks and not returned (%d live tasks at its start, "
                "tick limit %u): tasks that keep waking each other hold the host inside one tick\n",
                H.tick, H.resumes, H.live, H.tick_limit);
        abort();
    }
    {
        lua_State *outer = H.co;
        int rc;
        /* the watchdog times each task's resume (a tick's count is
           bounded above): what the collector does in a huge heap adds up
           over thousands of resumes, but no one resume runs on for good */
        if (H.in_tick && !outer) wd_arm(1);
        H.co = co;
        rc = lua_resume(co, from, nargs, nres);
        H.co = outer;
        return rc;
    }
}

#define lua_resume fuzz_lua_resume
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../../task_lua.h"
#undef lua_resume
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "../testlib.h"

#ifndef TASK_WAKE_LIMIT
#define TASK_WAKE_LIMIT 1024 /* what the contract documents as the default */
#endif

/* A resume that burns this much CPU is stuck: a run normally takes ms. The
   timer counts CPU time (ITIMER_PROF), so a loaded machine does not fire it,
   and it uses SIGPROF, which neither libFuzzer nor the sanitizers use. */
static int wd_seconds = 5;

static void wd_fire(int sig) {
    char msg[300];
    int n;
    (void)sig;
    n = snprintf(msg, sizeof msg,
                 "fuzz_lua: the host is stuck inside task_tick %u (%d s of CPU in one resume, %ld resumes in the tick; "
                 "instruction budget %d, %s): task code runs on and the budget does not stop it\n",
                 H.tick, wd_seconds, H.resumes, H.budget, H.budget_mode ? "raise" : "preempt");
    if (n > 0 && write(2, msg, (size_t)n) < 0) n = 0;
    if (H.co) { /* where the task is: lua_getinfo "Sln" does not allocate */
        lua_Debug ar;
        int level;
        n = snprintf(msg, sizeof msg, "fuzz_lua: the task resumed last is at");
        for (level = 0; level < 12 && n > 0 && (size_t)n < sizeof msg - 40 && lua_getstack(H.co, level, &ar); level++)
            if (lua_getinfo(H.co, "Sln", &ar) && ar.currentline > 0)
                n += snprintf(msg + n, sizeof msg - (size_t)n, " %s:%d", ar.short_src, ar.currentline);
            else if (ar.what[0] == 'C') /* a task running a C function: coroutine.wrap's, coroutine.resume */
                n += snprintf(msg + n, sizeof msg - (size_t)n, " [C]%s", ar.name ? ar.name : "?");
        if (n > 0 && (size_t)n < sizeof msg - 1) msg[n++] = '\n';
        if (n > 0 && write(2, msg, (size_t)n) < 0) n = 0;
        /* none: the budget was taken away; a count hook: the loop runs
           where it does not reach (another coroutine, a call that cannot yield) */
        if (lua_gethook(H.co) && (lua_gethookmask(H.co) & LUA_MASKCOUNT))
            n = snprintf(msg, sizeof msg, "fuzz_lua: its thread has a count hook every %d instructions\n",
                         lua_gethookcount(H.co));
        else n = snprintf(msg, sizeof msg, "fuzz_lua: its thread has %s\n", lua_gethook(H.co) ? "a hook without a count" : "no hook");
        if (n > 0 && write(2, msg, (size_t)n) < 0) n = 0;
    }
    abort();
}

static void wd_arm(int on) {
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_sec = on ? wd_seconds : 0;
    setitimer(ITIMER_PROF, &it, NULL);
}

/* An error with no protected call around it: Lua aborts after this;
   say which error, and where the task resumed last was. */
static int fz_panic(lua_State *L) {
    const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "(not a string)";
    fprintf(stderr, "fuzz_lua: unprotected error (Lua aborts): %s\n", m);
    return 0;
}

/* ---- allocator: counts bytes and fails where the configuration says ---- */
typedef struct fz_alloc {
    size_t bytes, peak;
    unsigned long calls, fail_at, fail_n, failed; /* fail calls fail_at .. fail_at+fail_n-1 */
} fz_alloc;

static void *fz_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
    fz_alloc *a = (fz_alloc *)ud;
    if (nsize == 0) {
        if (ptr) a->bytes -= osize;
        free(ptr);
        return NULL;
    }
    if (!ptr) osize = 0; /* lua_Alloc passes a type tag in osize for new blocks */
    if (nsize > osize) {
        a->calls++;
        if (a->fail_at && a->calls >= a->fail_at && a->calls - a->fail_at < a->fail_n) {
            a->failed++;
            return NULL;
        }
    }
    {
        void *p = realloc(ptr, nsize);
        if (!p) return NULL;
        a->bytes = a->bytes - osize + nsize;
        if (a->bytes > a->peak) a->peak = a->bytes;
        return p;
    }
}

/* ---- the program generator ---------------------------------------------- */

/* Where generated code runs: it decides what may suspend or loop forever. */
enum { CX_TASK, CX_NEST, CX_FIN, CX_HOOK };

typedef struct gen {
    const uint8_t *p;
    size_t n, i;
    char *buf;
    size_t len, cap;
    int depth, stmts, max_stmts;
    int cx;      /* CX_* of the code being generated */
    int spin;    /* an endless loop here is stopped by the budget (task code, budget set) */
    int inloop;  /* inside a generated loop: no more long loops */
    int cheap;   /* inside an endless loop or a hook: a budget counts VM instructions,
                    not the work of C calls, so no full collections, task lists or spawns */
    int budget, dbg;
} gen;

/* Every g_* call below consumes input bytes. C leaves the order in which
   function arguments are evaluated unspecified (gcc and clang differ), so no
   argument list may hold two of them: the replay built with cc must make
   the same program from a file as the fuzzer built with clang. */
static unsigned g_byte(gen *g) { return g->i < g->n ? g->p[g->i++] : 0u; }
static unsigned g_pick(gen *g, unsigned n) { return g_byte(g) % n; }

static void g_put(gen *g, const char *fmt, ...) {
    va_list ap;
    int n;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(g->buf + g->len, g->cap - g->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < g->cap - g->len) { g->len += (size_t)n; return; }
        g->cap = g->cap * 2 + (size_t)(n > 0 ? n : 64);
        g->buf = (char *)realloc(g->buf, g->cap);
        if (!g->buf) abort();
    }
}

/* values: the hostile ones first */
static const char *const VALS[] = {
    "nil", "0/0", "math.huge", "-math.huge", "-1", "1e308", "2^63", "math.mininteger", "0", "1",
    "0.5", "3", "'x'", "{}", "BADSTR", "type", "true", "T[1]", "C[1]", "K[1]", "E[1]", "DEAD",
    "coroutine.running()", "1e-9", "7", "{capacity=0}", "{capacity=2}", "TM[1]", "io.stdout", "TH[1]",
    "TH[2]", "NC[1]", "S[1]", "SL[1]", "T[2]", "C[2]", "E[2]", "task.alloc()"};
#define NVALS (sizeof VALS / sizeof VALS[0])
static const char *const ERRS[] = {
    "'boom'", "nil", "{code=1}", "BADSTR", "setmetatable({}, {__tostring=function() return {} end})",
    "'task cancelled'", "42", "coroutine.running()", "io.stdout", "T[1]"};
#define NERRS (sizeof ERRS / sizeof ERRS[0])
/* objects whose metatables and methods are attacked */
static const char *const OBJS[] = {
    "T[%u]", "C[%u]", "TM[%u]", "K[%u]", "S[%u]", "DEAD", "task.running()", "task.channel(1)",
    "task.timer(1)", "task.cancel_token()", "TH[%u]", "NC[%u]", "SL[%u]", "W[%u]"};
#define NOBJS (sizeof OBJS / sizeof OBJS[0])
static const char *const MMS[] = {"__gc", "__index", "__tostring", "__call", "__close", "__len",
                                  "__newindex", "__eq", "__name", "__mode", "__metatable", "__lt"};
#define NMMS (sizeof MMS / sizeof MMS[0])
static const char *const GCMODES[] = { /* the first NGCFULL cost up to a full collection */
    "'collect'", "'step', 1000", "'incremental'", "'generational'", "'incremental', 1, 100, 1", "'generational', 1, 100",
    "'step'", "'step', 0", "'stop'", "'restart'", "'count'", "'isrunning'"};
#define NGCMODES (sizeof GCMODES / sizeof GCMODES[0])
#define NGCFULL 6

static const char *g_val(gen *g) { return VALS[g_pick(g, NVALS)]; }
static unsigned g_ix(gen *g) { return 1 + g_pick(g, 3); }
static const char *g_ms(gen *g) {
    static const char *const MS[] = {"0", "1", "0.25", "5", "20", "1000"};
    return g_pick(g, 4) == 0 ? g_val(g) : MS[g_pick(g, 6)];
}
static void g_obj(gen *g) {
    const char *o = OBJS[g_pick(g, NOBJS)];
    g_put(g, o, g_ix(g));
}
static const char *g_mode(gen *g) {
    static const char *const M[] = {"'v'", "'k'", "'kv'", "nil"};
    return M[g_pick(g, 4)];
}

static void g_body(gen *g, unsigned n);

/* A full collection, or a bounded step where an endless loop repeats it. */
static const char *g_full(gen *g) { return g->cheap ? "collectgarbage('step', 0)" : "collectgarbage()"; }

/* A body in another context; restores the generator's state after it. */
static void g_sub(gen *g, int cx, int spin, unsigned n) {
    int ocx = g->cx, ospin = g->spin, oloop = g->inloop, ocheap = g->cheap;
    g->cx = cx;
    g->spin = spin && g->budget;
    if (cx != CX_NEST) g->inloop = 0; /* a new task or callback: its own loops */
    /* hooks run at every spawn and end, outside any budget: a create hook
       that spawns twice recurses without end, so they stay cheap */
    if (cx == CX_HOOK) g->cheap = 1;
    g->depth++;
    g_body(g, n);
    g->depth--;
    g->cx = ocx;
    g->spin = ospin;
    g->inloop = oloop;
    g->cheap = ocheap;
}

/* A task body; it records its thread first, so others can attack it. */
static void g_taskfn(gen *g, unsigned a) {
    g_put(g, "function(...) TH[%u] = coroutine.running()\n", a);
    g_sub(g, CX_TASK, 1, 1 + g_pick(g, 4));
    g_put(g, " end");
}
static void g_fn(gen *g) { /* a function that runs as a task (scope, race, all, timeout) */
    g_put(g, "function(...) ");
    g_sub(g, CX_TASK, 1, 1 + g_pick(g, 4));
    g_put(g, " end");
}
/* A plain coroutine body: spin says whether only tasks will ever resume it. */
static void g_cofn(gen *g, int spin) {
    g_put(g, "function(...) ");
    g_sub(g, CX_NEST, spin, 1 + g_pick(g, 3));
    g_put(g, " end");
}
static void g_finfn(gen *g) {
    g_put(g, "function(o) ");
    g_sub(g, CX_FIN, 0, 1 + g_pick(g, 3));
    g_put(g, " end");
}

/* An element of a select list: mostly ones that keep it waiting, fresh
   ones that only a weak list holds, now and then one it must refuse. */
static void g_awaitable(gen *g) {
    unsigned a = g_ix(g);
    switch (g_pick(g, 16)) {
    case 0: case 1: case 2: g_put(g, "C[%u]", a); break;
    case 3: g_put(g, "T[%u]", a); break;
    case 4: g_put(g, "TM[%u]", a); break;
    case 5: case 6: case 7: case 8: g_put(g, "task.channel(1)"); break;
    case 9: case 10: g_put(g, "task.timer(%s)", g_ms(g)); break;
    case 11: case 12: g_put(g, "task.spawn(function() task.sleep(%s) end)", g_ms(g)); break;
    case 13: g_put(g, "io.stdout"); break;
    case 14: g_put(g, "K[%u]", a); break;
    default: g_put(g, "DEAD"); break;
    }
}

static void g_list(gen *g) {
    unsigned k, n = 1 + g_pick(g, 4), mt = g_pick(g, 4);
    if (mt) g_put(g, "setmetatable(");
    g_put(g, "{");
    for (k = 0; k < n; k++) {
        if (k) g_put(g, ", ");
        g_awaitable(g);
    }
    g_put(g, "}");
    if (mt == 3) {
        const char *m = g_mode(g);
        g_put(g, ", {__mode = %s, __len = function() return %u end})", m, 1 + g_pick(g, 5));
    }
    else if (mt) g_put(g, ", {__mode = %s})", g_mode(g));
}

/* A statement run in a loop by a task that keeps waking another. */
static void g_pump(gen *g) {
    unsigned b = g_ix(g), c = g_ix(g);
    switch (g_pick(g, 8)) {
    case 0: g_put(g, "C[%u]:send(i)", b); break;
    case 1: g_put(g, "C[%u]:recv()", b); break;
    case 2: g_put(g, "task.select({C[%u], C[%u]})", b, c); break;
    case 3: g_put(g, "C[%u]:send(C[%u]:recv())", b, c); break;
    case 4: g_put(g, "pcall(task.wakeup, T[%u], i); task.wait()", b); break;
    case 5: g_put(g, "task.select({T[%u], C[%u]})", b, c); break;
    case 6: g_put(g, "C[%u]:try_send(i); C[%u]:recv()", b, c); break;
    default: g_put(g, "task.resume(E[%u] or 0, i); E[%u] = task.alloc(); task.wait(E[%u])", b, c, c); break;
    }
}

/* A loop that never suspends: only where a budget must stop it. */
static void g_spin(gen *g) {
    unsigned a = g_ix(g);
    switch (g_pick(g, 12)) {
    case 0: case 1: g_put(g, "while true do end"); break;
    case 2: g_put(g, "LOOP[%u]()", a); break;
    case 3: g_put(g, "T[%u] = task.spawn(LOOP[%u])", a, a); break;
    case 4: g_put(g, "coroutine.resume(LOOPCO[%u])", a); break;
    case 5: g_put(g, "T[%u] = task.spawn(coroutine.wrap(function() while true do end end))", a); break;
    case 6: g_put(g, "pcall(function() while true do end end); while true do end"); break;
    case 7: g_put(g, "table.sort({3, 2, 1}, function(x, y) while true do end end)"); break;
    case 8: g_put(g, "local _ = setmetatable({}, {__index = function() while true do end end}).x"); break;
    case 9: g_put(g, "string.gsub('aaa', 'a', function() while true do end end)"); break;
    case 10: g_put(g, "local c <close> = setmetatable({}, {__close = function() while true do end end})"); break;
    default: g_put(g, "for i = 1, math.maxinteger do end"); break;
    }
}

static void g_debug(gen *g) {
    unsigned a = g_ix(g);
    switch (g_pick(g, 10)) {
    case 0: case 1: g_put(g, "debug.sethook()"); break;
    case 2: g_put(g, "debug.sethook(function() end, '', 1000000)"); break;
    case 3: g_put(g, "debug.sethook(TH[%u])", a); break;
    case 4: g_put(g, "debug.sethook(TH[%u], function() error('hook') end, 'c')", a); break;
    case 5: g_put(g, "debug.sethook(function() end, 'l')"); break;
    case 6: g_put(g, "debug.sethook(coroutine.running(), nil)"); break;
    case 7: g_put(g, "debug.gethook(); debug.gethook(TH[%u])", a); break;
    case 8: g_put(g, "debug.traceback(TH[%u]); debug.getinfo(TH[%u], 1)", a, a); break;
    default: g_put(g, "debug.sethook(function() task.yield() end, '', 7)"); break;
    }
    if (g->spin && g_pick(g, 2)) { g_put(g, "; "); g_spin(g); } /* and then run away */
}

/* Hand-called and swapped metamethods. */
static void g_meta(gen *g) {
    unsigned v = g_pick(g, 8);
    g_put(g, "local o = ");
    g_obj(g);
    if (v == 0) { /* a real object finalized by hand, then used again */
        g_put(g, "; getmetatable(o).__gc(o); USE(o, %s); ", g_val(g));
        g_put(g, "%s", g_full(g));
    } else if (v == 3 || v == 4) { /* __gc with anything */
        g_put(g, "; getmetatable(o).__gc(");
        if (g_pick(g, 3) == 0) g_obj(g); else g_put(g, "%s", g_val(g));
        g_put(g, ")");
    } else if (v == 1) { /* a class's metamethod replaced by another class's */
        g_put(g, "; local m = getmetatable(o); local n = getmetatable(");
        g_obj(g);
        g_put(g, "); m.%s = ", MMS[g_pick(g, 4)]);
        g_put(g, "n.%s", MMS[g_pick(g, 4)]);
    } else if (v == 2) {
        g_put(g, "; getmetatable(o).%s = ", MMS[g_pick(g, 5)]);
        g_put(g, "%s", g_pick(g, 2) ? "nil" : "function() error('mm') end");
    } else {
        g_put(g, "; getmetatable(o).%s(", MMS[g_pick(g, NMMS)]);
        if (g_pick(g, 3) == 0) g_obj(g); else g_put(g, "%s", g_val(g));
        g_put(g, ", %s)", g_val(g));
    }
}

/* A statement of a finalizer: what a finalizer can do to running code. */
static void g_fin_stmt(gen *g) {
    unsigned a = g_ix(g), b = g_ix(g);
    switch (g_pick(g, 10)) {
    case 0: case 1: {
        static const char *const W[] = {"io.stdout", "nil", "task.channel(1)", "'x'", "{}", "T[%u]", "K[%u]", "0"};
        g_put(g, "SL[%u][%u] = ", a, 1 + g_pick(g, 4));
        g_put(g, W[g_pick(g, 8)], b);
        break;
    }
    case 2: g_put(g, "C[%u]:send(%s); C[%u]:close()", a, g_val(g), b); break;
    case 3: g_put(g, "USE(T[%u], %s)", a, g_val(g)); break;
    case 4: g_put(g, "USE(C[%u], %s)", a, g_val(g)); break;
    case 5: g_put(g, "T[%u]:cancel(); T[%u]:abort()", a, b); break;
    case 6: if (g->cheap) g_put(g, "T[%u]:cancel()", a); /* made in an endless loop: no spawning */
            else { g_put(g, "T[%u] = task.spawn(", a); g_taskfn(g, a); g_put(g, ")"); }
            break;
    case 7: g_put(g, "task.resume(E[%u], o); task.wakeup(T[%u], o)", a, b); break;
    case 8: g_put(g, "TM[%u]:cancel(); K[%u]:cancel(); S[%u]:cancel()", a, b, a); break;
    default: g_put(g, "local t = task; t.now(); t.running(); t.status(T[%u]); t.taskstat(); t.alloc(); t.hook(); t.channel(); t.timer(1); t.cancel_token(); t.tracenode(1); t.tracespawn()", a); break;
    }
}

static void g_stmt(gen *g) {
    unsigned op, a = g_ix(g), b = g_ix(g), sub = g->depth < 2;
    g->stmts++;
    g_put(g, "P(function() ");
    if (g->cx == CX_FIN && g_pick(g, 2)) { g_fin_stmt(g); g_put(g, " end)\n"); return; }
    op = g_pick(g, 84);
    if (g->cheap) { /* no spawning inside an endless loop: each resume could make thousands */
        static const unsigned char SPAWNS[] = {0, 1, 20, 22, 25, 31, 32, 33, 45, 56, 65, 72, 73, 77, 78, 81, 82};
        size_t k;
        for (k = 0; k < sizeof SPAWNS; k++)
            if (op == SPAWNS[k]) op = 3;
    }
    switch (op) {
    case 0: case 1: if (sub) { g_put(g, "T[%u] = task.spawn(", a); g_taskfn(g, a); g_put(g, ", %s)", g_val(g)); }
                    else g_put(g, "T[%u] = task.spawn(%s)", a, g_val(g)); break;
    case 2: g_put(g, "task.sleep(%s)", g_ms(g)); break;
    case 3: g_put(g, "task.yield()"); break;
    case 4: g_put(g, "T[%u]:cancel()", a); break;
    case 5: g_put(g, "T[%u]:abort()", a); break;
    case 6: g_put(g, "T[%u]:join()", a); break;
    case 7: g_put(g, "T[%u]:detach()", a); break;
    case 8: g_put(g, "task.wakeup(T[%u], %s)", a, g_val(g)); break;
    case 9: g_put(g, "task.wait()"); break;
    case 10: g_put(g, "E[%u] = task.alloc()", a); break;
    case 11: g_put(g, "task.resume(E[%u], %s)", a, g_val(g)); break;
    case 12: g_put(g, "task.wait(E[%u])", a); break;
    case 13: g_put(g, "C[%u] = task.channel(%s)", a, g_pick(g, 2) ? (g_pick(g, 2) ? "1" : "2") : g_val(g)); break;
    case 14: g_put(g, "C[%u]:send(%s)", a, g_val(g)); break;
    case 15: g_put(g, "C[%u]:recv()", a); break;
    case 16: g_put(g, "C[%u]:close()", a); break;
    case 17: g_put(g, "C[%u]:try_send(%s); C[%u]:try_recv()", a, g_val(g), b); break;
    case 18: g_put(g, "K[%u] = task.cancel_token(%s)", a, g_pick(g, 2) ? "" : "K[1]"); break;
    case 19: g_put(g, "K[%u]:cancel()", a); break;
    case 20: if (sub) { g_put(g, "T[%u] = task.spawn({token = K[%u], name = %s}, ", a, b, g_val(g)); g_taskfn(g, a); g_put(g, ")"); }
             else g_put(g, "K[%u]:check()", a); break;
    case 21: g_put(g, "error(%s, 0)", ERRS[g_pick(g, NERRS)]); break;
    case 22: if (sub && g_pick(g, 2)) { /* hooks with bodies: a term hook that spawns keeps a tick busy */
                 g_put(g, "task.hook(function(t) ");
                 g_sub(g, CX_HOOK, 0, 1 + g_pick(g, 2));
                 g_put(g, " end, function(t) ");
                 g_sub(g, CX_HOOK, 0, 1 + g_pick(g, 2));
                 g_put(g, " end)");
             } else {
                 g_put(g, "task.hook(function(t) %s end, ", g_pick(g, 2) ? "error(BADSTR)" : "local _ = task.status(t)");
                 g_put(g, "function(t) %s end)", g_pick(g, 2) ? "error(nil)" : "task.spawn(function() end)");
             }
             break;
    case 23: g_put(g, "task.hook(nil, nil)"); break;
    case 24: g_put(g, "coroutine.wrap(function() task.sleep(1) end)()"); break;
    case 25: if (sub) { g_put(g, "task.scope(function(s) S[%u] = s; s:spawn(", a); g_fn(g); g_put(g, "); ");
                        g_sub(g, CX_TASK, 1, 1 + g_pick(g, 3)); g_put(g, " end)"); }
             else g_put(g, "S[%u]:cancel()", a); break;
    case 26: g_put(g, "S[%u]:spawn(function() task.sleep(1) end)", a); break;
    case 27: g_put(g, "S[%u]:cancel()", a); break;
    case 28: g_put(g, "task.running():cancel(); task.checkpoint()"); break;
    case 29: g_put(g, "pcall(task.sleep, 1); pcall(task.checkpoint); task.yield()"); break;
    case 30: g_put(g, "task.select({C[%u], T[%u], task.timer(%s)})", a, b, g_ms(g)); break;
    case 31: if (sub) { g_put(g, "task.race("); g_fn(g); g_put(g, ", function() task.sleep(%s) end)", g_ms(g)); }
             else g_put(g, "task.race(%s)", g_val(g)); break;
    case 32: if (sub) { g_put(g, "task.all("); g_fn(g); g_put(g, ", function() return 1 end)"); }
             else g_put(g, "task.all(%s)", g_val(g)); break;
    case 33: if (sub) { g_put(g, "task.timeout(%s, ", g_ms(g)); g_fn(g); g_put(g, ")"); }
             else { g_put(g, "task.timeout(%s, ", g_val(g)); g_put(g, "%s)", g_val(g)); } break;
    case 34: g_put(g, "task.status(%s); task.status(T[%u]); task.taskstat()", g_val(g), a); break;
    case 35: g_put(g, "task.tracenode(%s); task.tracespawn(); ", g_val(g));
             g_put(g, "task.traceset(%s); task.tracepropagate()", g_val(g)); break;
    case 36: g_put(g, "TM[%u] = task.timer(%s)", a, g_ms(g)); break;
    case 37: g_put(g, "TM[%u]:wait()", a); break;
    case 38: g_put(g, "TM[%u]:cancel()", a); break;
    case 39: g_put(g, "task.running():join()"); break;
    case 40: g_put(g, "task.running():abort()"); break;
    case 41: if (sub) { g_put(g, "local c <close> = setmetatable({}, {__close = function() ");
                        g_sub(g, g->cx, g->spin, 1 + g_pick(g, 2)); g_put(g, " end}); task.sleep(%s)", g_ms(g)); }
             else g_put(g, "local c <close> = setmetatable({}, {__close=function() task.sleep(%s) end}); task.sleep(1)", g_ms(g));
             break;
    case 42: g_put(g, "setmetatable({}, {__gc=function() task.spawn(function() end); task.alloc() end}); %s", g_full(g)); break;
    case 43: g_put(g, "task.wakeup(T[%u], 1); task.wakeup(T[%u], 2)", a, a); break;
    case 44: g_put(g, "task.resume(DEADEXT, 1)"); break;
    case 45: if (sub) { g_put(g, "task.with_timeout(%s, ", g_ms(g)); g_fn(g); g_put(g, ", {grace_ms = %s})", g_ms(g)); }
             else { g_put(g, "task.with_timeout(%s, ", g_val(g)); g_put(g, "%s)", g_val(g)); } break;
    case 46: g_put(g, "local co = coroutine.create(function() return task.spawn(function() end) end); coroutine.resume(co)"); break;
    case 47: g_put(g, "T[%u]:elapsed(); task.current(); T[%u]:done(); task.now(); T[%u]:traceback()", a, b, a); break;
    /* ---- the coroutine library on task threads ---- */
    case 48: g_put(g, "TH[%u] = coroutine.running()", a); break;
    case 49: g_put(g, "coroutine.close(TH[%u])", a);
             if (g_pick(g, 2)) g_put(g, "; %s", g_full(g));
             break;
    case 50: if (g_pick(g, 2)) g_put(g, "coroutine.resume(TH[%u], %s)", a, g_val(g));
             else g_put(g, "coroutine.wrap(function(...) return coroutine.resume(TH[%u], ...) end)(%s)", a, g_val(g));
             break;
    case 51: g_put(g, "for _, th in pairs(TH) do pcall(coroutine.%s, ", g_pick(g, 2) ? "close" : "resume");
             g_put(g, "th, %s) end", g_val(g));
             if (g_pick(g, 2)) g_put(g, "; %s", g_full(g));
             break;
    case 52: g_put(g, "coroutine.status(TH[%u]); coroutine.isyieldable(TH[%u]); coroutine.isyieldable(); coroutine.status(NC[%u])", a, a, b); break;
    case 53: {
        static const char *const Y[] = {"", "0", "1", "5", "0.25", "E[%u]", "'x'", "-1", "0/0", "math.huge", "T[%u]", "task.alloc()"};
        g_put(g, "coroutine.yield(");
        g_put(g, Y[g_pick(g, 12)], a);
        g_put(g, ")");
        break;
    }
    case 54: if (sub) { g_put(g, "local co = coroutine.wrap("); g_cofn(g, g->spin); g_put(g, "); co(%s); ", g_val(g)); g_put(g, "co(%s)", g_val(g)); }
             else g_put(g, "coroutine.wrap(function() coroutine.yield(1) end)()"); break;
    case 55: if (sub) { g_put(g, "NC[%u] = coroutine.create(", a); g_cofn(g, 1); g_put(g, ")"); }
             else g_put(g, "NC[%u] = coroutine.create(type)", a); break;
    case 56: if (g->cx == CX_FIN || g->cx == CX_HOOK) { g_put(g, "coroutine.close(NC[%u])", a); break; }
             switch (g_pick(g, 5)) { /* plain coroutines: only tasks resume them */
             case 0: g_put(g, "coroutine.resume(NC[%u], %s)", a, g_val(g)); break;
             case 1: g_put(g, "coroutine.close(NC[%u])", a); break;
             case 2: g_put(g, "T[%u] = task.spawn(coroutine.resume, NC[%u], %s)", a, b, g_val(g)); break;
             case 3: g_put(g, "T[%u] = task.spawn(coroutine.close, TH[%u])", a, b); break;
             default: if (sub) { g_put(g, "T[%u] = task.spawn(coroutine.wrap(", a); g_cofn(g, 1); g_put(g, "), %s)", g_val(g)); }
                      else g_put(g, "T[%u] = task.spawn(coroutine.wrap(type))", a);
                      break;
             }
             break;
    /* ---- the collector, weak tables, finalizers ---- */
    case 57: case 58:
        if (g->cheap) g_put(g, "collectgarbage(%s)", GCMODES[NGCFULL + g_pick(g, NGCMODES - NGCFULL)]);
        else g_put(g, "collectgarbage(%s)", GCMODES[g_pick(g, NGCMODES)]);
        break;
    case 59: {
        static const char *const D[] = {"T", "C", "TM", "K", "S", "TH", "SL", "NC", "FZ", "W"};
        g_put(g, "%s[%u] = nil", D[g_pick(g, 10)], a);
        if (g_pick(g, 2)) g_put(g, "; %s", g_full(g));
        break;
    }
    case 60: g_put(g, "SL[%u] = ", a); g_list(g); break;
    case 61: if (g_pick(g, 2)) g_put(g, "task.select(SL[%u])", a);
             else { /* fresh awaitables in a weak list, again and again: a timer lets each select end */
                 g_put(g, "for i = 1, %u do task.select(setmetatable({", g->inloop ? 2u : 40u);
                 g_awaitable(g);
                 g_put(g, ", ");
                 g_awaitable(g);
                 g_put(g, ", task.timer(0)}, {__mode = %s})) end", g_mode(g));
             }
             break;
    case 62: g_put(g, "W[%u] = setmetatable({", a); g_obj(g); g_put(g, ", "); g_obj(g); g_put(g, ", [");
             g_obj(g); g_put(g, "] = "); g_obj(g); g_put(g, "}, {__mode = %s}); for k, v in pairs(W[%u]) do USE(k, v); USE(v, k) end", g_mode(g), a);
             break;
    case 63: if (sub) { g_put(g, "setmetatable({"); g_obj(g); g_put(g, "}, {__gc = "); g_finfn(g); g_put(g, "})"); if (g_pick(g, 2)) g_put(g, "; %s", g_full(g)); }
             else g_put(g, "setmetatable({}, {__gc = function() SL[%u][1] = io.stdout end})", a);
             break;
    case 64: if (sub) { g_put(g, "FZ[%u] = setmetatable({", a); g_obj(g); g_put(g, "}, {__gc = "); g_finfn(g); g_put(g, "})"); }
             else g_put(g, "FZ[%u] = nil", a);
             break;
    case 65: g_put(g, "setmetatable({}, {__gc = function(o) R[#R + 1] = o; setmetatable(o, getmetatable(o)); USE(T[%u], o) end})", a); break;
    /* ---- metamethods by hand ---- */
    case 66: case 67: g_meta(g); break;
    case 68: g_put(g, "local o = "); g_obj(g); g_put(g, "; USE(o, %s); tostring(o); local _ = o.id, o.name, #o", g_val(g)); break;
    /* ---- hooks and endless loops (where a budget must stop them) ---- */
    case 69: case 70: if (g->dbg) g_debug(g); else g_put(g, "collectgarbage('step')"); break;
    case 71: if (g->spin) g_spin(g); else g_put(g, "for i = 1, 100 do local _ = {} end"); break;
    /* ---- tasks that keep waking each other ---- */
    case 72: case 73: {
        static const unsigned N[] = {8, 300, 3000};
        unsigned k, n = 1 + g_pick(g, 2); /* one task, or both ends of a pipeline */
        g_put(g, "C[%u] = C[%u] or task.channel(%u)", b, b, 1 + g_pick(g, 2));
        for (k = 0; k < n; k++) {
            unsigned t = k ? b : a;
            g_put(g, "; T[%u] = task.spawn(function() TH[%u] = coroutine.running(); ", t, t);
            if (g->budget && g_pick(g, 2)) g_put(g, "local i = 0; while true do i = i + 1; ");
            else g_put(g, "for i = 1, %u do ", N[g_pick(g, 3)]);
            if (n == 1) g_pump(g);
            else switch (g_pick(g, 3)) { /* the other end of the same channel, or each other */
            case 0: g_put(g, k ? "C[%u]:recv()" : "C[%u]:send(i)", b); break;
            case 1: g_put(g, k ? "task.select({C[%u]})" : "C[%u]:try_send(i); task.yield()", b); break;
            default: g_put(g, "pcall(task.wakeup, T[%u], i); task.wait()", k ? a : b); break;
            }
            g_put(g, " end end)");
        }
        break;
    }
    case 74: if (!g->inloop && sub) { /* a loop around generated statements */
                 static const unsigned N[] = {2, 3, 20, 200};
                 int ocheap = g->cheap;
                 g->inloop = 1;
                 if (g->spin && g_pick(g, 4) == 0) { g_put(g, "while true do "); g->cheap = 1; }
                 else g_put(g, "for i = 1, %u do ", N[g_pick(g, 4)]);
                 g_body(g, 1 + g_pick(g, 3));
                 g_put(g, " end");
                 g->inloop = 0;
                 g->cheap = ocheap;
             } else g_put(g, "for i = 1, 3 do task.yield() end");
             break;
    case 75: g_put(g, "for _, c in pairs(C) do c:close() end"); break;
    case 76: g_put(g, "HX = %s", g_pick(g, 2) ? "task.alloc()" : g_pick(g, 2) ? "E[1]" : g_val(g));
             if (g_pick(g, 2)) g_put(g, "; E[%u] = HX; task.wait(HX)", a);
             break;
    case 77: g_put(g, "T[%u] = task.spawn(task.select, SL[%u]); T[%u] = task.spawn(task.wait)", a, b, b); break;
    case 78: g_put(g, "T[%u] = task.spawn(C[%u] and C[%u].recv or type, C[%u]); T[%u] = task.spawn(C[%u] and C[%u].send or type, C[%u], 1)",
                   a, b, b, b, b, a, a, a); break;
    case 79: g_put(g, "for _, t in pairs(T) do t:cancel() end"); break;
    case 80: g_put(g, "%s", g->cheap ? "task.taskstat()" : "task.tasks()"); break;
    case 81: g_put(g, "local t = task.spawn(function() return coroutine.running() end); task.yield(); local th = t:join(); "
                      "coroutine.close(th); coroutine.resume(th)"); break;
    case 82: g_put(g, "TM[%u] = task.timer(%s); T[%u] = task.spawn(function() TH[%u] = coroutine.running(); TM[%u]:wait() end)",
                   a, g_ms(g), b, b, a); break;
    default: g_put(g, "T[%u]:wait(); task.await(T[%u]); task.await(C[%u]); task.await(TM[%u])", a, b, a, b); break;
    }
    g_put(g, " end)\n");
}

static void g_body(gen *g, unsigned n) {
    while (n-- && g->i < g->n && g->stmts < g->max_stmts) g_stmt(g);
}

/* Runs on each lua_State before the module is opened: the globals the
   programs share, helpers, coroutines made outside any task, and
   finalizers registered before require "task" (at lua_close they run after
   the module's own __gc). */
static const char PREOPEN[] =
    "P = function(f) return pcall(f) end\n"
    "T, C, K, E, S, TM, TH, SL, W, NC, FZ, R, PRE = {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}\n"
    "BADSTR = setmetatable({}, {__tostring = function() error('bad __tostring') end})\n"
    "local METHODS = {'cancel', 'done', 'detach', 'elapsed', 'traceback', 'is_finished', 'try_send', 'try_recv',\n"
    "  'len', 'is_cancelled', 'check', 'token', 'spawn', 'close', 'send', 'abort', 'join', 'wait', 'recv'}\n"
    "USE = function(o, v)\n"
    "  for _, m in ipairs(METHODS) do pcall(function() local f = o[m]; if f then return f(o, v) end end) end\n"
    "  pcall(tostring, o)\n"
    "end\n"
    /* A collection is one call the budget cannot count, and its cost
       grows with the heap (in generational mode a step is a whole minor
       or major collection): after 256 collections or steps, the rest do
       nothing, so the watchdog and libFuzzer's time limit see the
       scheduler's stalls, not the collector's. */
    "do local cg, calls = collectgarbage, 0\n"
    "  collectgarbage = function(opt, ...)\n"
    "    if opt == nil or opt == 'collect' or opt == 'step' then\n"
    "      calls = calls + 1; if calls > 256 then return 0 end\n"
    "    end\n"
    "    return cg(opt, ...)\n"
    "  end\n"
    "end\n";
/* Run by the host on the main thread, outside any task, once the module is
   open and the budget set (threads made before the budget are the host's
   business): coroutines that only a budget stops, for tasks to resume. */
static const char HOSTCHUNK[] =
    "LOOP, LOOPCO = {}, {}\n"
    "for i = 1, 3 do\n"
    "  LOOP[i] = coroutine.wrap(function() while true do end end)\n"
    "  LOOPCO[i] = coroutine.create(function() while true do end end)\n"
    "end\n";

static const char PRELUDE[] =
    "local task = require 'task'\n"
    "DEAD = task.spawn(function() end)\n"
    "DEADEXT = nil\n"
    "task.spawn(function() local id = task.alloc(); DEADEXT = id; task.wait(id) end):cancel()\n";

static void g_preopen(gen *g, unsigned nfin) {
    unsigned k;
    g_put(g, "%s", PREOPEN);
    for (k = 1; k <= nfin; k++) {
        g_put(g, "PRE[%u] = setmetatable({}, {__gc = function(o) local task = package.loaded.task; if not task then return end\n", k);
        g_sub(g, CX_FIN, 0, 1 + g_pick(g, 4));
        g_put(g, "end})\n");
    }
}

static void g_program(gen *g, unsigned max_stmts) {
    g_put(g, "%s", PRELUDE);
    g->cx = CX_TASK;
    g->spin = g->budget != 0;
    g->depth = 0;
    g->stmts = 0;
    g->max_stmts = (int)max_stmts;
    g_body(g, max_stmts);
}

/* ---- the host ------------------------------------------------------------ */

/* The host's own hooks and C tasks share the scheduler with the binding:
   every state must chain to the hooks it found and put them back when it
   closes, and the host goes on using the scheduler after lua_close. */
static int hk_marker;
static struct { long c_spawned, c_create, c_term; } HK;

static void hk_check(void *ud, const char *which) {
    if (ud != &hk_marker) {
        fprintf(stderr, "fuzz_lua: the host's %s hook was called with a foreign user pointer\n", which);
        abort();
    }
}
static void hk_create(task_sched *s, task_id t, void *ud) {
    hk_check(ud, "create");
    { void *u; if (task_userdata(s, t, &u) == TASK_OK && u == &hk_marker) HK.c_create++; }
}
static void hk_term(task_sched *s, task_id t, void *ud) {
    hk_check(ud, "term");
    { void *u; if (task_userdata(s, t, &u) == TASK_OK && u == &hk_marker) HK.c_term++; }
}
static int c_task(task_ctx *c) { /* sleeps 1 ms once, then ends */
    if (c->why == TASK_WHY_START && task_sleep(c->sched, TASK_MSEC) == TASK_OK) return TASK_STEP_SUSPEND;
    return TASK_STEP_DONE;
}
static void c_spawn(task_sched *s) {
    if (task_spawn(s, c_task, &hk_marker, NULL, NULL) == TASK_OK) HK.c_spawned++;
}

/* A quiet error handler that still formats the message (a failing
   __tostring must not escape it). */
static int quiet_handler(lua_State *L) {
    lua_settop(L, 1);
    luaL_tolstring(L, 1, NULL);
    return 0;
}

typedef struct host_cfg { int handler, dbg, budget, mode, gc; const char *pre; size_t prelen; } host_cfg;

/* Protected: libraries, the pre-open chunk, the module, the error handler. */
static int setup_p(lua_State *L) {
    task_sched *s = (task_sched *)lua_touserdata(L, 1);
    const host_cfg *c = (const host_cfg *)lua_touserdata(L, 2);
    luaL_openlibs(L);
    if (!c->dbg) { /* a sandbox without the debug library */
        lua_pushnil(L);
        lua_setglobal(L, "debug");
        luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_pushnil(L);
        lua_setfield(L, -2, "debug");
        lua_pop(L, 1);
    }
    if (luaL_loadbuffer(L, c->pre, c->prelen, "=preopen") != LUA_OK) lua_error(L);
    lua_call(L, 0, 0);
    if (task_lua_open(L, s) != TASK_OK) luaL_error(L, "task_lua_open failed");
    lua_pop(L, 1);
    if (c->handler == 1) {
        lua_pushcfunction(L, quiet_handler);
        task_lua_set_error_handler(L, -1);
        lua_pop(L, 1);
    } else if (c->handler == 2) {
        if (luaL_dostring(L, "return function(e) error(e) end") != LUA_OK) lua_error(L);
        task_lua_set_error_handler(L, -1);
        lua_pop(L, 1);
    }
    return 0;
}

/* Protected: takes the global HX (an external id the script wants the host
   to complete) and pushes it with two values for task_lua_resume. */
static int hx_get_p(lua_State *L) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_pushliteral(L, "HX");
    if (lua_rawget(L, -2) != LUA_TNUMBER || !lua_isinteger(L, -1)) return 0;
    lua_pushliteral(L, "HX");
    lua_pushnil(L);
    lua_rawset(L, -4);
    lua_pushliteral(L, "from the host");
    lua_createtable(L, 0, 0);
    return 3;
}

static void host_resume(lua_State *L) {
    if (lua_pcall(L, 0, 3, 0) == LUA_OK && lua_isinteger(L, -3)) {
        task_id id = (task_id)lua_tointeger(L, -3);
        lua_remove(L, -3);
        (void)task_lua_resume(L, id, 2); /* from C, outside any pcall, as a host would */
    }
    lua_settop(L, 0);
}

static int print_cfg = -1;

/* One task_tick, watched: bounded resumes, bounded CPU. */
static int checked_tick(task_sched *s, uint64_t now, unsigned tick) {
    int n;
    H.live = task_count(s, -1);
    H.limit = (long)H.live + TASK_WAKE_LIMIT + 64;
    H.resumes = 0;
    H.tick = tick;
    H.in_tick = 1;
    wd_arm(1);
    n = task_tick(s, now);
    wd_arm(0);
    H.in_tick = 0;
    if (n < 0) { fprintf(stderr, "fuzz_lua: task_tick failed: %d %s\n", n, task_errmsg(s)); abort(); }
    if ((long)n > H.limit) {
        fprintf(stderr, "fuzz_lua: task_tick %u ran %d resumes (%d live tasks at its start): more than the fairness bound\n",
                tick, n, H.live);
        abort();
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gen g;
    fz_alloc a;
    host_cfg hc;
    task_sched *s;
    lua_State *Ls[2] = {NULL, NULL};
    size_t prog_at[2], prog_len[2];
    unsigned b0, b1, b2, b3, b4, b5, nstates, open_rev, close_rev, early, gcmode, tick_limit, nfin, n2, ticks, k;
    unsigned long fail_at = 0, fail_n = 0;
    long total = 0;
    uint64_t now = 1000 * TASK_SEC;
    (void)test_done; (void)test__name; (void)test__failed_in_case; (void)test_alloc_fn; /* the rest of testlib.h */
    if (print_cfg < 0) {
        const char *w = getenv("FUZZ_LUA_TICK_SECONDS");
        struct sigaction sa;
        print_cfg = getenv("FUZZ_LUA_PRINT") != NULL;
        if (w && atoi(w) > 0) wd_seconds = atoi(w);
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = wd_fire;
        sigaction(SIGPROF, &sa, NULL);
    }
    memset(&g, 0, sizeof g);
    memset(&H, 0, sizeof H);
    g.p = data; g.n = size;
    b0 = g_byte(&g); b1 = g_byte(&g); b2 = g_byte(&g); b3 = g_byte(&g); b4 = g_byte(&g); b5 = g_byte(&g);
    hc.handler = (int)(b0 % 3);
    hc.budget = ((b0 >> 2) & 3) == 0 ? 0 : ((b0 >> 2) & 3) == 1 ? 200 : ((b0 >> 2) & 3) == 2 ? 2000 : 20000;
    hc.mode = (int)((b0 >> 4) & 1);
    hc.dbg = (int)((b0 >> 5) & 1);
    nfin = (b0 >> 6) & 3;                  /* finalizers registered before the module */
    nstates = (b1 & 3) == 3 ? 2 : 1;      /* zero bytes: the plainest host */
    open_rev = (b1 >> 2) & 1;              /* open the second state first */
    close_rev = (b1 >> 3) & 1;             /* close the second state first */
    early = (b1 >> 4) & 7;                 /* close one state at tick 2^(early-1), the other runs on */
    gcmode = b2 & 3;                       /* 0, 1: as is; 2: generational; 3: a step at every allocation */
    tick_limit = ((b2 >> 2) & 3) == 3 ? 64 : 0;
    n2 = 1 + ((b2 >> 4) & 15);             /* statements of the second state's program */
    switch (b3 & 7) { /* memory running out: a single failure only makes Lua collect and retry */
    case 5: fail_n = 1; break;
    case 6: fail_n = 2 + ((b3 >> 3) & 7); break;
    case 7: fail_n = 256; break; /* not for ever: each failure costs Lua a full collection */
    default: break;
    }
    if (fail_n) fail_at = 1 + ((b4 | (b5 << 8)) >> ((b3 >> 6) * 2)); /* skewed towards the start */
    H.tick_limit = tick_limit;
    H.budget = hc.budget;
    H.budget_mode = hc.mode;

    g.cap = 8192;
    g.buf = (char *)malloc(g.cap);
    if (!g.buf) abort();
    g.budget = hc.budget;
    g.dbg = hc.dbg;
    g.max_stmts = 64;
    g_preopen(&g, nfin);
    hc.pre = NULL; /* g.buf moves while it grows: offsets until the end */
    hc.prelen = g.len;
    for (k = 0; k < nstates; k++) {
        /* the second state's program is short and comes first, so both get bytes */
        unsigned which = nstates == 2 ? 1 - k : 0;
        prog_at[which] = g.len;
        g_program(&g, nstates == 2 && k == 0 ? n2 : 400);
        prog_len[which] = g.len - prog_at[which];
    }
    {   /* a program from a file replaces the generated one of state 1 */
        const char *path = getenv("FUZZ_LUA_PROGRAM");
        FILE *f = path ? fopen(path, "rb") : NULL;
        if (path && !f) { fprintf(stderr, "fuzz_lua: cannot read %s\n", path); abort(); }
        if (f) {
            char chunk[4096];
            size_t got;
            prog_at[0] = g.len;
            while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) g_put(&g, "%.*s", (int)got, chunk);
            prog_len[0] = g.len - prog_at[0];
            fclose(f);
        }
    }
    hc.pre = g.buf;
    if (print_cfg) {
        fprintf(stderr, "-- handler %d, budget %d %s, debug %s, %u finalizer(s) before the module, %u state(s) (open %s, "
                        "close %s, early close %u), gc %u, tick limit %u, oom %lu x%lu\n",
                hc.handler, hc.budget, hc.mode ? "raise" : "preempt", hc.dbg ? "on" : "off", nfin, nstates,
                open_rev ? "2,1" : "1,2", close_rev ? "2,1" : "1,2", early ? 1u << (early - 1) : 0u, gcmode,
                tick_limit, fail_at, fail_n);
        fprintf(stderr, "-- pre-open chunk (each state, before task_lua_open)\n%.*s", (int)hc.prelen, g.buf);
        if (hc.budget) fprintf(stderr, "-- host chunk (each state, outside tasks, after task_lua_set_budget)\n%s", HOSTCHUNK);
        for (k = 0; k < nstates; k++)
            fprintf(stderr, "-- program of state %u\n%.*s", k + 1, (int)prog_len[k], g.buf + prog_at[k]);
        fprintf(stderr, "-- end of the programs\n");
    }

    memset(&a, 0, sizeof a);
    s = task_create(fz_alloc_fn, &a);
    if (!s) abort();
    for (k = 0; k < nstates; k++) {
        if (!(Ls[k] = lua_newstate(fz_alloc_fn, &a))) abort();
        lua_atpanic(Ls[k], fz_panic);
    }
    if (tick_limit) task_set_tick_limit(s, tick_limit);
    {
        task_hooks mine;
        memset(&mine, 0, sizeof mine);
        mine.create = hk_create;
        mine.term = hk_term;
        mine.ud = &hk_marker;
        task_set_hooks(s, mine);
        memset(&HK, 0, sizeof HK);
        c_spawn(s);
    }
    if (fail_n) { a.fail_at = a.calls + fail_at; a.fail_n = fail_n; }
    for (k = 0; k < nstates; k++) {
        unsigned which = open_rev && nstates == 2 ? 1 - k : k;
        lua_State *L = Ls[which];
        lua_pushcfunction(L, setup_p);
        lua_pushlightuserdata(L, s);
        lua_pushlightuserdata(L, &hc);
        if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
            if (!a.failed) { fprintf(stderr, "fuzz_lua: setup failed: %s\n", lua_tostring(L, -1)); abort(); }
            lua_settop(L, 0);
            continue; /* out of memory: the state is closed at the end all the same */
        }
        if (hc.budget) {
            task_lua_set_budget(L, hc.budget, hc.mode ? TASK_LUA_RAISE : TASK_LUA_PREEMPT);
            if (luaL_loadbuffer(L, HOSTCHUNK, sizeof HOSTCHUNK - 1, "=host") != LUA_OK || lua_pcall(L, 0, 0, 0) != LUA_OK)
                lua_settop(L, 0);
        }
        if (gcmode == 2) lua_gc(L, LUA_GCGEN, 0, 0);
        else if (gcmode == 3) lua_gc(L, LUA_GCINC, 1, 100, 13);
        if (luaL_loadbuffer(L, g.buf + prog_at[which], prog_len[which], which ? "=state2" : "=fuzz") != LUA_OK) {
            if (!a.failed) {
                fprintf(stderr, "fuzz_lua: generated program does not compile: %s\n%.*s\n", lua_tostring(L, -1),
                        (int)prog_len[which], g.buf + prog_at[which]);
                abort();
            }
        } else (void)task_lua_spawn(L, 0, NULL);
        lua_settop(L, 0);
    }

    /* bounded work: a task that spins under a budget runs at every tick, and
       with the collector stepping at every allocation each one costs more */
    /* bounded work per input: a program that piles up thousands of tasks
       in a large heap makes every later tick slow (the collector's work),
       and libFuzzer would report the input as a timeout */
    for (ticks = 0; ticks < 200 && total < 20000 && a.calls < (gcmode == 3 ? 100000u : 300000u) &&
                    task_count(s, -1) < 3000; ticks++) {
        uint64_t wait;
        if (nstates == 2 && early && ticks == 1u << (early - 1)) { /* one closes, the other runs on */
            unsigned first = close_rev;
            lua_close(Ls[first]);
            Ls[first] = NULL;
            c_spawn(s);
        }
        if ((ticks & 15) == 7) c_spawn(s);
        total += checked_tick(s, now, ticks);
        for (k = 0; k < nstates; k++)
            if (Ls[k]) {
                lua_pushcfunction(Ls[k], hx_get_p);
                host_resume(Ls[k]);
            }
        if (task_count(s, -1) == 0) break;
        wait = task_timeout(s, now);
        if (wait == TASK_FOREVER) break; /* deadlocked: lua_close cleans up */
        now += wait > 50 * TASK_MSEC ? 50 * TASK_MSEC : wait;
    }
    if (print_cfg)
        fprintf(stderr, "-- ran %u ticks, %ld resumes, %d live tasks, %lu allocations, peak %lu bytes\n", ticks, total,
                task_count(s, -1), a.calls, (unsigned long)a.peak);
    for (k = 0; k < nstates; k++) {
        unsigned which = close_rev && nstates == 2 ? 1 - k : k;
        if (Ls[which]) lua_close(Ls[which]);
        c_spawn(s);
    }
    /* the host goes on: its own tasks run to their end, under its own hooks */
    for (k = 0; k < 8 && task_count(s, -1) > 0; k++) {
        now += 2 * TASK_MSEC;
        checked_tick(s, now, ticks + k);
    }
    if (task_count(s, -1) != 0) { fprintf(stderr, "fuzz_lua: %d task(s) left after lua_close\n", task_count(s, -1)); abort(); }
    {
        task_hooks mine, got;
        memset(&mine, 0, sizeof mine);
        mine.create = hk_create;
        mine.term = hk_term;
        mine.ud = &hk_marker;
        got = task_set_hooks(s, mine);
        if (got.create != hk_create || got.term != hk_term || got.ud != &hk_marker) {
            fprintf(stderr, "fuzz_lua: after lua_close of every state the scheduler's hooks are not the host's own\n");
            abort();
        }
        if (HK.c_create != HK.c_spawned || HK.c_term != HK.c_spawned) {
            fprintf(stderr, "fuzz_lua: the host's hooks saw %ld creates and %ld ends of its %ld C tasks\n", HK.c_create,
                    HK.c_term, HK.c_spawned);
            abort();
        }
    }
    task_destroy(s);
    if (a.bytes != 0) { fprintf(stderr, "fuzz_lua: %lu bytes leaked\n", (unsigned long)a.bytes); abort(); }
    free(g.buf);
    return 0;
}

#ifdef FUZZ_MAIN
#include "replay.h"
#endif
