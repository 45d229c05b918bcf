/* fuzz_lua.c: libFuzzer target for task_lua.h.
 *
 * The input bytes pick a host configuration (instruction budget and its
 * mode, error handler, an allocation to fail once the module is open) and
 * then a program: a main task whose statements, and the bodies of the
 * tasks it spawns (nested two deep), are drawn from a repertoire of calls
 * of the task API with hostile arguments: wrong types, NaN, infinities,
 * huge and negative numbers, stale handles of ended tasks, error values
 * that are tables, nil or have a failing __tostring, errors thrown from
 * tasks and from hooks, pcall around cancellation, plain coroutines that
 * try to suspend, channel close while senders and receivers wait, scopes,
 * select, race, all, timeouts, abort. Each statement runs under pcall so a
 * program goes on after an expected error.
 *
 * The host drives it with a virtual clock for a bounded number of ticks,
 * then calls lua_close (tasks may still be alive) and task_destroy; zero
 * bytes must be outstanding, and nothing may crash (ASan + UBSan).
 *
 *   FUZZ_LUA_PRINT=1 fuzz_lua_replay FILE   prints the generated program.
 */
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../../task_lua.h"
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "../testlib.h"
#include <lualib.h>
#include <stdarg.h>

typedef struct gen { const uint8_t *p; size_t n, i; char *buf; size_t len, cap; int depth, stmts; } gen;

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
    }
}

/* values: the hostile ones first */
static const char *const VALS[] = {
    "nil", "0/0", "math.huge", "-math.huge", "-1", "1e308", "2^63", "math.mininteger", "0", "1",
    "0.5", "3", "'x'", "{}", "BADSTR", "print", "true", "T[1]", "C[1]", "K[1]", "E[1]", "DEAD",
    "coroutine.running()", "1e-9", "7", "{capacity=0}", "{capacity=2}", "TM[1]"};
#define NVALS (sizeof VALS / sizeof VALS[0])
static const char *const ERRS[] = {
    "'boom'", "nil", "{code=1}", "BADSTR", "setmetatable({}, {__tostring=function() return {} end})",
    "'task cancelled'", "42", "coroutine.running()"};
#define NERRS (sizeof ERRS / sizeof ERRS[0])

static const char *g_val(gen *g) { return VALS[g_pick(g, NVALS)]; }
static unsigned g_ix(gen *g) { return 1 + g_pick(g, 4); }
static const char *g_ms(gen *g) {
    static const char *const MS[] = {"0", "1", "0.25", "5", "20", "1000"};
    return g_pick(g, 4) == 0 ? g_val(g) : MS[g_pick(g, 6)];
}

static void g_body(gen *g, unsigned n);

static void g_fn(gen *g) { /* an anonymous function with a generated body */
    g_put(g, "function(...) ");
    g->depth++;
    g_body(g, 1 + g_pick(g, 4));
    g->depth--;
    g_put(g, " end");
}

static void g_stmt(gen *g) {
    unsigned op = g_pick(g, 48), a = g_ix(g), b = g_ix(g);
    g->stmts++;
    g_put(g, "P(function() ");
    switch (op) {
    case 0: case 1: if (g->depth < 2) { g_put(g, "T[%u] = task.spawn(", a); g_fn(g); g_put(g, ", %s)", g_val(g)); }
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
    case 13: g_put(g, "C[%u] = task.channel(%s)", a, g_pick(g, 2) ? "2" : g_val(g)); break;
    case 14: g_put(g, "C[%u]:send(%s)", a, g_val(g)); break;
    case 15: g_put(g, "C[%u]:recv()", a); break;
    case 16: g_put(g, "C[%u]:close()", a); break;
    case 17: g_put(g, "C[%u]:try_send(%s); C[%u]:try_recv()", a, g_val(g), b); break;
    case 18: g_put(g, "K[%u] = task.cancel_token()", a); break;
    case 19: g_put(g, "K[%u]:cancel()", a); break;
    case 20: if (g->depth < 2) { g_put(g, "T[%u] = task.spawn({token = K[%u], name = %s}, ", a, b, g_val(g)); g_fn(g); g_put(g, ")"); }
             else g_put(g, "K[%u]:check()", a); break;
    case 21: g_put(g, "error(%s, 0)", ERRS[g_pick(g, NERRS)]); break;
    case 22: g_put(g, "task.hook(function(t) %s end, function(t) %s end)",
                   g_pick(g, 2) ? "error(BADSTR)" : "local _ = task.status(t)", g_pick(g, 2) ? "error(nil)" : "task.spawn(function() end)"); break;
    case 23: g_put(g, "task.hook(nil, nil)"); break;
    case 24: g_put(g, "coroutine.wrap(function() task.sleep(1) end)()"); break;
    case 25: if (g->depth < 2) { g_put(g, "task.scope(function(s) S[%u] = s; s:spawn(", a); g_fn(g); g_put(g, "); "); g_body(g, 1 + g_pick(g, 3)); g_put(g, " end)"); }
             else g_put(g, "S[%u]:cancel()", a); break;
    case 26: g_put(g, "S[%u]:spawn(function() task.sleep(1) end)", a); break;
    case 27: g_put(g, "S[%u]:cancel()", a); break;
    case 28: g_put(g, "task.running():cancel(); task.checkpoint()"); break;
    case 29: g_put(g, "pcall(task.sleep, 1); pcall(task.checkpoint); task.yield()"); break;
    case 30: g_put(g, "task.select({C[%u], T[%u], task.timer(%s)})", a, b, g_ms(g)); break;
    case 31: if (g->depth < 2) { g_put(g, "task.race("); g_fn(g); g_put(g, ", function() task.sleep(%s) end)", g_ms(g)); }
             else g_put(g, "task.race(%s)", g_val(g)); break;
    case 32: if (g->depth < 2) { g_put(g, "task.all("); g_fn(g); g_put(g, ", function() return 1 end)"); }
             else g_put(g, "task.all(%s)", g_val(g)); break;
    case 33: if (g->depth < 2) { g_put(g, "task.timeout(%s, ", g_ms(g)); g_fn(g); g_put(g, ")"); }
             else g_put(g, "task.timeout(%s, %s)", g_val(g), g_val(g)); break;
    case 34: g_put(g, "task.status(%s); task.status(T[%u]); task.tasks(); task.taskstat()", g_val(g), a); break;
    case 35: g_put(g, "task.tracenode(%s); task.tracespawn(); task.traceset(%s); task.tracepropagate()", g_val(g), g_val(g)); break;
    case 36: g_put(g, "TM[%u] = task.timer(%s)", a, g_ms(g)); break;
    case 37: g_put(g, "TM[%u]:wait()", a); break;
    case 38: g_put(g, "TM[%u]:cancel()", a); break;
    case 39: g_put(g, "task.running():join()"); break;
    case 40: g_put(g, "task.running():abort()"); break;
    case 41: g_put(g, "local c <close> = setmetatable({}, {__close=function() task.sleep(%s) end}); task.sleep(1)", g_ms(g)); break;
    case 42: g_put(g, "setmetatable({}, {__gc=function() task.spawn(function() end); task.alloc() end}); collectgarbage()"); break;
    case 43: g_put(g, "task.wakeup(T[%u], 1); task.wakeup(T[%u], 2)", a, a); break;
    case 44: g_put(g, "task.resume(DEADEXT, 1)"); break;
    case 45: if (g->depth < 2) { g_put(g, "task.with_timeout(%s, ", g_ms(g)); g_fn(g); g_put(g, ", {grace_ms = %s})", g_ms(g)); }
             else g_put(g, "task.with_timeout(%s, %s)", g_val(g), g_val(g)); break;
    case 46: g_put(g, "local co = coroutine.create(function() return task.spawn(function() end) end); coroutine.resume(co)"); break;
    default: g_put(g, "T[%u]:elapsed(); task.current(); T[%u]:done(); task.now()", a, b); break;
    }
    g_put(g, " end)\n");
}

static void g_body(gen *g, unsigned n) {
    while (n-- && g->i < g->n && g->stmts < 400) g_stmt(g);
}

static const char PRELUDE[] =
    "local task = require 'task'\n"
    "T, C, K, E, S, TM = {}, {}, {}, {}, {}, {}\n"
    "BADSTR = setmetatable({}, {__tostring = function() error('bad __tostring') end})\n"
    "DEAD = task.spawn(function() end)\n"
    "DEADEXT = nil\n"
    "local function P(f) return pcall(f) end\n"
    "_G.P = P\n"
    "task.spawn(function() local id = task.alloc(); DEADEXT = id; task.wait(id) end):cancel()\n";

/* A quiet error handler that still formats the message (a failing
   __tostring must not escape it). */
static int quiet_handler(lua_State *L) {
    lua_settop(L, 1);
    luaL_tolstring(L, 1, NULL);
    return 0;
}

static int setup_p(lua_State *L) {
    task_sched *s = (task_sched *)lua_touserdata(L, 1);
    int handler = (int)lua_tointeger(L, 2);
    luaL_openlibs(L);
    task_lua_open(L, s);
    lua_pop(L, 1);
    if (handler == 1) {
        lua_pushcfunction(L, quiet_handler);
        task_lua_set_error_handler(L, -1);
        lua_pop(L, 1);
    } else if (handler == 2) {
        (void)luaL_dostring(L, "local t = require 'task'; return function(e) error(e) end");
        task_lua_set_error_handler(L, -1);
        lua_pop(L, 1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int print = -1;
    gen g;
    test_alloc a;
    task_sched *s;
    lua_State *L;
    unsigned cfg, handler, budget, mode, failsel, ticks;
    uint64_t now = 1000 * TASK_SEC;
    (void)test_done; (void)test__name; (void)test__failed_in_case; /* the rest of testlib.h */
    if (print < 0) print = getenv("FUZZ_LUA_PRINT") != NULL;
    memset(&g, 0, sizeof g);
    g.p = data; g.n = size;
    cfg = g_byte(&g);
    handler = cfg % 3;
    budget = (cfg >> 2) & 3;           /* 0: none, else 200, 2000, 20000 instructions */
    mode = (cfg >> 4) & 1;
    failsel = g_byte(&g) | (g_byte(&g) << 8);
    g.cap = 4096;
    g.buf = (char *)malloc(g.cap);
    g.buf[0] = 0;
    g_put(&g, "%s", PRELUDE);
    g_body(&g, 400);
    if (print) fprintf(stderr, "-- handler %u budget %u mode %u failsel %u\n%s\n", handler, budget, mode, failsel, g.buf);

    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    L = lua_newstate(test_alloc_fn, &a);
    if (!s || !L) abort();
    task_set_budget(s, 64); /* a term hook that spawns would keep one tick going */
    lua_pushcfunction(L, setup_p);
    lua_pushlightuserdata(L, s);
    lua_pushinteger(L, (lua_Integer)handler);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) abort();
    if (budget) task_lua_set_budget(L, budget == 1 ? 200 : budget == 2 ? 2000 : 20000, mode ? TASK_LUA_RAISE : TASK_LUA_PREEMPT);
    /* one allocation in 4 runs fails, somewhere in the program's first ~16k */
    if ((failsel & 3) == 0) a.fail_at = a.calls + 1 + (failsel >> 2);
    if (luaL_loadbuffer(L, g.buf, g.len, "=fuzz") != LUA_OK) {
        if (!a.failed) { fprintf(stderr, "fuzz_lua: generated program does not compile: %s\n%s\n", lua_tostring(L, -1), g.buf); abort(); }
        lua_pop(L, 1);
    } else if (task_lua_spawn(L, 0, NULL) != TASK_OK) {
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        long resumes = 0;
        for (ticks = 0; ticks < 200 && resumes < 2000; ticks++) {
            uint64_t wait;
            int n = task_tick(s, now);
            if (n < 0) abort();
            resumes += n;
            if (task_count(s, -1) == 0) break;
            wait = task_timeout(s, now);
            if (wait == TASK_FOREVER) break; /* deadlocked: lua_close cleans up */
            now += wait > 50 * TASK_MSEC ? 50 * TASK_MSEC : wait;
        }
    }
    lua_close(L);
    if (task_count(s, -1) != 0) { fprintf(stderr, "fuzz_lua: %d task(s) left after lua_close\n", task_count(s, -1)); abort(); }
    task_destroy(s);
    if (a.bytes != 0) { fprintf(stderr, "fuzz_lua: %lu bytes leaked\n", (unsigned long)a.bytes); abort(); }
    free(g.buf);
    return 0;
}

#ifdef FUZZ_MAIN
#include "replay.h"
#endif
