/* test_hostile.c: what hostile C hosts and Lua scripts do to the
 * scheduler, one case each: a task that never yields (both budget modes,
 * pcall loops, nested coroutines), deep Lua and C recursion, error values
 * that are tables, nil or have a failing __tostring, __gc finalizers that
 * call task functions during lua_close, a scope closed (or cancelled, or
 * spawned into) from inside its own child, cancel / abort / join of
 * oneself, resume of an id whose task has ended, wakeup twice, and a
 * million C tasks (and many Lua tasks) alive at once. Every case ends with
 * zero bytes outstanding.
 *
 *   test_hostile [--big N] [--lua N] [--only SUBSTRING]
 *     --big N   the number of C tasks alive at once (1M)
 *     --lua N   the number of Lua tasks alive at once
 *     --only S  runs only the cases whose name contains S
 *
 * The regression cases at the end (finalizers after the module's __gc,
 * a long pipeline against timers, the budget against debug.sethook and
 * coroutines made outside tasks, Channel:close under allocation failures)
 * each run in a child process, so a crash or a hang fails that case alone.
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#define TESTLIB_ISOLATED
#include "testlib.h"
#include <lualib.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long big_n = 1000000;
static long lua_n = 20000;

static double secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Lua harness: one script, one state, one scheduler ---------------- */

static int lua_check(lua_State *L) { /* check(cond, msg) */
    if (!lua_toboolean(L, 1)) TEST__FAIL("lua check failed: %s", luaL_optstring(L, 2, "?"));
    return 0;
}

static int record_error(lua_State *L) { /* errors of tasks nobody joins -> ERRORS */
    lua_getglobal(L, "ERRORS");
    if (!lua_istable(L, -1)) return 0;
    lua_createtable(L, 1, 0); /* {err}: the error may be nil */
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    return 0;
}

/* A state on a scheduler of its own, both on a counting allocator, with
   the module open as the global task. */
static lua_State *host_open(test_alloc *a, task_sched **s) {
    lua_State *L;
    memset(a, 0, sizeof *a);
    *s = task_create(test_alloc_fn, a);
    L = lua_newstate(test_alloc_fn, a);
    luaL_openlibs(L);
    CHECK_INT(task_lua_open(L, *s), TASK_OK);
    lua_setglobal(L, "task");
    return L;
}

typedef struct lrun { int budget, mode, handler, ticks_max, tick_budget; long ticks; int done; } lrun;

/* Runs code as the main task; the script sets DONE = true when it got to
   its end. Returns what the host loop saw. */
static void run_lua(const char *name, const char *code, lrun *r) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    uint64_t now = 1000 * TASK_SEC;
    L = host_open(&a, &s);
    lua_register(L, "check", lua_check);
    lua_newtable(L);
    lua_setglobal(L, "ERRORS");
    if (r->handler) {
        lua_pushcfunction(L, record_error);
        task_lua_set_error_handler(L, -1);
        lua_pop(L, 1);
    }
    if (r->budget) task_lua_set_budget(L, r->budget, r->mode);
    if (r->tick_budget) task_set_tick_limit(s, (unsigned)r->tick_budget);
    if (luaL_loadbuffer(L, code, strlen(code), name) != LUA_OK) {
        TEST__FAIL("%s: %s", name, lua_tostring(L, -1));
        lua_pop(L, 1);
    } else if (task_lua_spawn(L, 0, NULL) != TASK_OK) {
        TEST__FAIL("%s: spawn: %s", name, lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        lua_pop(L, 1);
        for (r->ticks = 0; r->ticks < (r->ticks_max ? r->ticks_max : 100000); r->ticks++) {
            uint64_t wait;
            CHECK(task_tick(s, now) >= 0);
            if (task_count(s, -1) == 0) break;
            wait = task_timeout(s, now);
            if (wait == TASK_FOREVER) break;
            now += wait;
        }
    }
    lua_getglobal(L, "DONE");
    r->done = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_close(L);
    CHECK_INT(task_count(s, -1), 0);
    task_destroy(s);
    CHECK_INT(a.bytes, 0);
}

static lrun R(int budget, int mode) { lrun r; memset(&r, 0, sizeof r); r.budget = budget; r.mode = mode; r.handler = 1; return r; }

/* ---- a task that never yields ------------------------------------------ */

TEST_CASE(never_yields_is_preempted) {
    lrun r = R(1000, TASK_LUA_PREEMPT);
    run_lua("=preempt",
        "local ticks = 0\n"
        "local hog = task.spawn(function() local x = 0; while true do x = x + 1 end end)\n"
        "local other = task.spawn(function() for i = 1, 5 do task.yield(); ticks = ticks + 1 end end)\n"
        "other:join()\n"
        "check(ticks == 5, 'the other task ran beside the hog')\n"
        "check(task.status(hog) == 'READY', 'the hog is READY again: ' .. tostring(task.status(hog)))\n"
        "check(hog:abort() == true, 'abort the hog')\n"
        "check(select(2, pcall(hog.join, hog)) == 'task aborted', 'joined: task aborted')\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(never_yields_raises) {
    lrun r = R(1000, TASK_LUA_RAISE);
    run_lua("=raise",
        "local hog = task.spawn(function() while true do end end)\n"
        "local ok, err = pcall(hog.join, hog)\n"
        "check(not ok and err == 'task exceeded its budget', 'hog: ' .. tostring(err))\n"
        "local swallow = task.spawn(function() while true do pcall(function() while true do end end) end end)\n"
        "ok, err = pcall(swallow.join, swallow)\n"
        "check(not ok and err == 'task exceeded its budget', 'a pcall loop cannot swallow it: ' .. tostring(err))\n"
        "local fine = task.spawn(function() for i = 1, 100 do task.yield() end return 'ok' end)\n"
        "check(fine:join() == 'ok', 'a task that yields in time is not touched')\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(never_yields_in_nested_coroutine) {
    lrun r = R(1000, TASK_LUA_PREEMPT);
    run_lua("=nested",
        "local t = task.spawn(function() return coroutine.wrap(function() while true do end end)() end)\n"
        "local ok, err = pcall(t.join, t)\n"
        "check(not ok and tostring(err):find('task exceeded its budget', 1, true), 'nested: ' .. tostring(err))\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(never_yields_inside_metamethod) {
    /* a hog inside a metamethod cannot yield: preempted at the first count
       after it returns */
    lrun r = R(500, TASK_LUA_PREEMPT);
    run_lua("=meta",
        "local mt = {__index = function(t, k) local x = 0; for i = 1, 20000 do x = x + i end; return x end}\n"
        "local t = task.spawn(function() local o = setmetatable({}, mt); local s = 0\n"
        "  for i = 1, 5 do s = s + o[i] end; return s end)\n"
        "check(t:join() == 5 * 200010000, 'result')\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(never_yields_where_it_cannot_yield) {
    /* a table.sort comparator cannot yield: one that loops forever would
       hold the host; after 100 budgets there the task fails instead. A
       comparator that does finish (and costs more than one budget) is
       left alone, and so is the task around it. */
    lrun r = R(500, TASK_LUA_PREEMPT);
    run_lua("=sort",
        "local stuck = task.spawn(function() table.sort({3, 2, 1}, function() while true do end end) end)\n"
        "local ok, err = pcall(stuck.join, stuck)\n"
        "check(not ok and tostring(err):find('task exceeded its budget', 1, true), 'stuck: ' .. tostring(err))\n"
        "local caught = task.spawn(function()\n"
        "  while true do pcall(table.sort, {3, 2, 1}, function() while true do end end) end end)\n"
        "task.yield(); task.yield()\n"
        "check(task.status(caught) == 'READY', 'a pcall around it: preempted again, not stuck')\n"
        "check(caught:abort() == true, 'abort it')\n"
        "local t = task.spawn(function()\n"
        "  local a = {}; for i = 1, 300 do a[i] = (i * 7919) % 300 end\n"
        "  table.sort(a, function(x, y) return x < y end) -- some 10 budgets\n"
        "  return a[1], a[300] end)\n"
        "local lo, hi = t:join()\n"
        "check(lo == 0 and hi == 299, 'a comparator that ends: sorted')\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(budget_off_by_default_and_resettable) {
    lrun r = R(0, 0);
    run_lua("=off",
        "local t = task.spawn(function() local x = 0; for i = 1, 1000000 do x = x + 1 end; return x end)\n"
        "check(t:join() == 1000000, 'no budget: runs to the end')\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(term_hook_that_spawns_forever) {
    /* every task's end spawns another: the host's per-tick budget keeps it
       in charge; lua_close frees the chain */
    lrun r = R(0, 0);
    r.tick_budget = 50;
    r.ticks_max = 20;
    run_lua("=spawnchain",
        "task.hook(nil, function() task.spawn(function() end) end)\n"
        "task.spawn(function() end)\n"
        "DONE = true\n", &r);
    CHECK(r.done);
    CHECK_INT(r.ticks, 20);
}

/* ---- deep recursion ---------------------------------------------------- */

TEST_CASE(deep_recursion) {
    lrun r = R(0, 0);
    run_lua("=recursion",
        "local function f(n) return 1 + f(n + 1) end\n"
        "local t = task.spawn(f, 1)\n"
        "local ok, err = pcall(t.join, t)\n"
        "check(not ok and tostring(err):find('stack overflow'), 'Lua stack: ' .. tostring(err))\n"
        "local function g() return coroutine.wrap(g)() end\n"
        "t = task.spawn(g)\n"
        "ok, err = pcall(t.join, t)\n"
        "check(not ok and tostring(err):find('overflow'), 'C stack: ' .. tostring(err))\n"
        "local function h(n) return pcall(h, n + 1) end\n"
        "t = task.spawn(h, 1)\n"
        "check(pcall(t.join, t), 'nested pcalls end')\n"
        "-- a chain of tasks each joining the next\n"
        "local function chain(n) if n == 0 then return 0 end; return task.spawn(chain, n - 1):join() + 1 end\n"
        "check(task.spawn(chain, 300):join() == 300, 'join chain')\n"
        "-- a task whose error handler recursion overflows: __tostring that recurses\n"
        "local rec = setmetatable({}, {}); getmetatable(rec).__tostring = function(o) return tostring(o) end\n"
        "task.spawn(function() error(rec) end)\n"
        "task.yield()\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

/* ---- error values ------------------------------------------------------ */

TEST_CASE(error_values_table_nil_bad_tostring) {
    lrun r = R(0, 0);
    run_lua("=errvalues",
        "local E = {code = 7}\n"
        "local t = task.spawn(function() error(E) end)\n"
        "local ok, err = pcall(t.join, t)\n"
        "check(not ok and rawequal(err, E), 'a table error is re-raised as itself')\n"
        "check(type(t:traceback()) == 'string' or t:traceback() == nil, 'traceback')\n"
        "t = task.spawn(function() error(nil) end)\n"
        "ok, err = pcall(t.join, t)\n"
        "-- Lua 5.5 raises error(nil) as this string\n"
        "local nil_error = _VERSION ~= 'Lua 5.4' and '<no error object>' or nil\n"
        "check(not ok and err == nil_error, 'nil error')\n"
        "local BAD = setmetatable({}, {__tostring = function() error('tostring fails') end})\n"
        "t = task.spawn(function() error(BAD) end)\n"
        "ok, err = pcall(t.join, t)\n"
        "check(not ok and rawequal(err, BAD), 'failing __tostring')\n"
        "-- nobody joins these: the handler gets them\n"
        "task.spawn(function() error(BAD) end)\n"
        "task.spawn(function() error(nil) end)\n"
        "task.spawn(function() error(setmetatable({}, {__tostring = function() return {} end})) end)\n"
        "task.spawn(function() local c <close> = setmetatable({}, {__close = function() error(BAD) end}); error('first') end)\n"
        "task.yield(); task.yield()\n"
        "check(#ERRORS == 4, 'four errors handled: ' .. #ERRORS)\n"
        "check(rawequal(ERRORS[1][1], BAD), 'the original value reaches the handler')\n"
        "check(rawequal(ERRORS[4][1], BAD), 'a failing __close replaces the error')\n"
        "-- a hook that throws values that cannot be printed\n"
        "task.hook(function() error(BAD) end, function() error(nil) end)\n"
        "check(task.spawn(function() return 1 end):join() == 1, 'hooks that fail do not stop tasks')\n"
        "task.hook(nil, nil)\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(default_handler_with_bad_values) {
    /* the default handler prints to stderr; it must survive these */
    lrun r = R(0, 0);
    r.handler = 0;
    run_lua("=defaulthandler",
        "local BAD = setmetatable({}, {__tostring = function() error('tostring fails') end})\n"
        "task.spawn(function() error(BAD) end)\n"
        "task.spawn(function() error(nil) end)\n"
        "task.spawn(function() error({}) end)\n"
        "task.yield()\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

TEST_CASE(failing_error_handler) {
    lrun r = R(0, 0);
    r.handler = 0;
    run_lua("=badhandler",
        "local BAD = setmetatable({}, {__tostring = function() error('tostring fails') end})\n"
        "task.spawn(function() error('x') end)\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

/* ---- __gc finalizers that call task functions during lua_close -------- */

TEST_CASE(gc_finalizers_call_task_functions_at_close) {
    lrun r = R(0, 0);
    run_lua("=gcclose",
        "local function fin() \n"
        "  pcall(task.spawn, function() task.sleep(1) end)\n"
        "  pcall(task.sleep, 1); pcall(task.yield); pcall(task.alloc)\n"
        "  pcall(task.resume, 12345, 1); pcall(task.channel, 2); pcall(task.cancel_token)\n"
        "  pcall(task.timer, 5); pcall(task.status, KEEP[1]); pcall(task.tasks); pcall(task.now)\n"
        "  if KEEP[1] then pcall(KEEP[1].cancel, KEEP[1]); pcall(KEEP[1].abort, KEEP[1]) end\n"
        "  if KEEP[2] then pcall(KEEP[2].send, KEEP[2], 1); pcall(KEEP[2].close, KEEP[2]) end\n"
        "  if KEEP[3] then pcall(KEEP[3].cancel, KEEP[3]) end\n"
        "  if KEEP[4] then pcall(KEEP[4].cancel, KEEP[4]) end\n"
        "end\n"
        "KEEP = {}\n"
        "KEEP[1] = task.spawn(function() task.sleep(100000) end)\n"
        "KEEP[2] = task.channel(1)\n"
        "KEEP[3] = task.cancel_token()\n"
        "KEEP[4] = task.timer(100000)\n"
        "for i = 1, 10 do GC = setmetatable({KEEP[1], KEEP[2]}, {__gc = fin}) end\n"
        "-- finalizers in tasks that are still alive at close\n"
        "for i = 1, 5 do task.spawn(function() local x <close> = setmetatable({}, {__close = fin}); local y = setmetatable({}, {__gc = fin}); task.wait() end) end\n"
        "task.yield()\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

/* ---- scopes closed from inside their own child ------------------------- */

TEST_CASE(scope_closed_from_inside_its_child) {
    lrun r = R(0, 0);
    run_lua("=scopechild",
        "local S\n"
        "local ok, err = pcall(task.scope, function(s)\n"
        "  S = s\n"
        "  s:spawn(function() s:cancel(); task.sleep(1) end)\n"
        "  s:spawn(function() local t = s:spawn(function() return 1 end); return t:join() end)\n"
        "  task.sleep(10)\n"
        "end)\n"
        "check(not ok and err == 'task cancelled', 'cancelled by its child: ' .. tostring(err))\n"
        "ok, err = pcall(S.spawn, S, function() end)\n"
        "check(not ok, 'spawn into a closed scope raises')\n"
        "pcall(S.cancel, S)\n"
        "-- a child that waits for its own scope to end: a cycle, broken by cancel\n"
        "local ok2, r1, r2 = pcall(task.timeout, 5, function()\n"
        "  task.scope(function(s) local me; me = s:spawn(function() task.sleep(1e9) end) end)\n"
        "end)\n"
        "check(ok2 and r1 == nil, 'timeout around a scope: ' .. tostring(r1))\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

static task_id C_SCOPE;
static int c_child(task_ctx *c) {
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    CHECK_INT(task_scope_close(c->sched, C_SCOPE), TASK_EPERM);
    CHECK_INT(task_scope_cancel(c->sched, C_SCOPE), TASK_OK);
    CHECK_INT(task_sleep(c->sched, 1), TASK_ECANCELED);
    return TASK_STEP_DONE;
}
static int c_owner(task_ctx *c) {
    if (c->why == TASK_WHY_START) {
        CHECK_INT(task_scope_open(c->sched, &C_SCOPE), TASK_OK);
        CHECK_INT(task_spawn(c->sched, c_child, NULL, NULL, NULL), TASK_OK);
        CHECK_INT(task_scope_close(c->sched, C_SCOPE), TASK_OK);
        return TASK_STEP_SUSPEND;
    }
    CHECK_INT(task_scope_count(c->sched, C_SCOPE), TASK_ENOENT);
    return TASK_STEP_DONE;
}

TEST_CASE(c_scope_closed_from_inside_its_child) {
    test_alloc a;
    task_sched *s;
    task_id t;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    CHECK_INT(task_spawn(s, c_owner, NULL, NULL, &t), TASK_OK);
    task_tick(s, 0);
    task_tick(s, 1);
    CHECK_INT(task_status(s, t), TASK_EXIT);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

/* ---- cancel, abort and join of oneself --------------------------------- */

TEST_CASE(cancel_abort_join_self) {
    lrun r = R(0, 0);
    run_lua("=self",
        "local t = task.spawn(function()\n"
        "  local me = task.running()\n"
        "  local ok, err = pcall(me.join, me)\n"
        "  check(not ok, 'join self raises: ' .. tostring(err))\n"
        "  check(me:cancel() == true, 'cancel self')\n"
        "  check(select(2, pcall(task.sleep, 1)) == 'task cancelled', 'then sleep raises')\n"
        "  check(select(2, pcall(task.yield)) == 'task cancelled', 'and again (level-triggered)')\n"
        "  return 'survived'\n"
        "end)\n"
        "check(t:join() == 'survived', 'a task that swallows its cancel ends normally')\n"
        "local closed = false\n"
        "t = task.spawn(function()\n"
        "  local c <close> = setmetatable({}, {__close = function() closed = true end})\n"
        "  task.running():abort()\n"
        "  error('not reached')\n"
        "end)\n"
        "check(select(2, pcall(t.join, t)) == 'task aborted', 'abort self')\n"
        "check(closed, 'to-be-closed variables closed on self abort')\n"
        "t = task.spawn(function() local me = task.running(); pcall(me.abort, me); return pcall(me.join, me) end)\n"
        "pcall(t.join, t)\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

static int c_self(task_ctx *c) {
    int *phase = (int *)c->ud;
    if (c->why == TASK_WHY_ABORT) { *phase = 100; return TASK_STEP_DONE; }
    CHECK_INT(task_join(c->sched, c->self), TASK_EDEADLK);
    CHECK_INT(task_cancel(c->sched, c->self), TASK_OK);
    CHECK_INT(task_wait(c->sched), TASK_ECANCELED);
    CHECK_INT(task_abort(c->sched, c->self), TASK_OK);
    *phase = 1;
    return TASK_STEP_YIELD;
}

TEST_CASE(c_cancel_abort_join_self) {
    test_alloc a;
    task_sched *s;
    task_id t;
    int phase = 0, how;
    void *v;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    CHECK_INT(task_spawn(s, c_self, &phase, NULL, &t), TASK_OK);
    task_tick(s, 0);
    task_tick(s, 1);
    CHECK_INT(phase, 100);
    CHECK_INT(task_result(s, t, &how, &v), TASK_OK); CHECK_INT(how, TASK_EXIT_ABORT);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

/* ---- resume of an id whose task has ended; wakeup twice ---------------- */

TEST_CASE(resume_of_ended_and_wakeup_twice) {
    lrun r = R(0, 0);
    run_lua("=resume",
        "local id = task.alloc()\n"
        "local t = task.spawn(function() return task.wait(id) end)\n"
        "task.yield()\n"
        "t:cancel()\n"
        "check(select(2, pcall(t.join, t)) == 'task cancelled', 'the waiter ended')\n"
        "local ok, err = task.resume(id, 'late')\n"
        "check(ok == nil and type(err) == 'string', 'resume of an id whose task ended: ' .. tostring(err))\n"
        "local id2 = task.alloc()\n"
        "t = task.spawn(function() return task.wait(id2) end)\n"
        "check(task.resume(id2, 'v') == true, 'first resume')\n"
        "check(task.resume(id2, 'w') == nil, 'second resume is refused')\n"
        "check(t:join() == 'v', 'the first value wins')\n"
        "check(task.resume(id2, 'x') == nil, 'resume after the task ended')\n"
        "check(task.resume(-1) == nil and task.resume(0) == nil and task.resume(math.maxinteger) == nil, 'junk ids')\n"
        "local w = task.spawn(function() return task.wait() end)\n"
        "task.yield()\n"
        "task.wakeup(w, 1)\n"
        "ok, err = pcall(task.wakeup, w, 2)\n"
        "check(not ok and tostring(err):find('READY'), 'wakeup twice: ' .. tostring(err))\n"
        "check(w:join() == 1, 'the first wakeup wins')\n"
        "ok, err = pcall(task.wakeup, w, 3)\n"
        "check(not ok, 'wakeup of an ended task: ' .. tostring(err))\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

/* Found by resume_of_ended_and_wakeup_twice: task.wait() woken with a
   number took it for an external id (wait(id)) and returned nil. */
TEST_CASE(regression_wakeup_with_a_number_value) {
    lrun r = R(0, 0);
    run_lua("=wakenumber",
        "local w = task.spawn(function() local a, b = task.wait(); return a, b end)\n"
        "task.yield()\n"
        "task.wakeup(w, 42)\n"
        "local a, b = w:join()\n"
        "check(a == 42 and b == nil, 'woken with 42: ' .. tostring(a))\n"
        "local id = task.alloc()\n"
        "w = task.spawn(function() return task.wait(id) end)\n"
        "task.resume(id, 7, 8)\n"
        "a, b = w:join()\n"
        "check(a == 7 and b == 8, 'wait(id) still gets the resumed values')\n"
        "DONE = true\n", &r);
    CHECK(r.done);
}

/* Found by the allocation sweep (sweep_lua): lua_close after task_lua_open
   ran out of memory walked a timers table that did not exist (lua_next on
   nil), and after a Task's __gc could not run, read the freed Task of an
   ended task. Every allocation from k on fails, for every k. */
static int open_p(lua_State *L) {
    luaL_openlibs(L);
    task_lua_open(L, (task_sched *)lua_touserdata(L, 1));
    lua_setglobal(L, "task");
    return 0;
}
static const char OOM_SCRIPT[] =
    "local ts = {}\n"
    "for i = 1, 8 do ts[i] = task.spawn(function(x) task.sleep(1); if x % 3 == 0 then error({x}) end; return x end, i) end\n"
    "for i = 1, 8, 2 do pcall(ts[i].join, ts[i]) end\n"
    "local ch = task.channel(2); task.spawn(function() ch:send(1); ch:close() end); ch:recv()\n"
    "task.scope(function(s) s:spawn(function() task.yield() end) end)\n";
TEST_CASE(regression_close_after_out_of_memory) {
    unsigned long k, total = 0;
    int bad = 0;
    for (k = 0; k == 0 || (k <= total && !bad); k++) {
        test_alloc a;
        task_sched *s;
        lua_State *L;
        int i;
        memset(&a, 0, sizeof a);
        s = task_create(test_alloc_fn, &a);
        L = lua_newstate(test_alloc_fn, &a);
        a.fail_at = k ? k : 0;
        a.fail_all_after = 1;
        if (k) a.calls = 2; /* count from the first allocation after those two */
        lua_pushcfunction(L, open_p);
        lua_pushlightuserdata(L, s);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
        else if (luaL_loadbuffer(L, OOM_SCRIPT, sizeof OOM_SCRIPT - 1, "=oom") != LUA_OK) lua_pop(L, 1);
        else if (task_lua_spawn(L, 0, NULL) != TASK_OK) lua_pop(L, 1);
        else {
            lua_pop(L, 1);
            for (i = 0; i < 50 && task_count(s, -1) > 0; i++) task_tick(s, (uint64_t)i * TASK_MSEC);
        }
        if (!k) total = a.calls;
        lua_close(L);
        task_destroy(s);
        if (a.bytes) { TEST__FAIL("k=%lu: %lu bytes leaked", k, (unsigned long)a.bytes); bad = 1; }
    }
    printf("# %lu allocation points, each failing with all after it\n", total);
}

/* Found while writing the sweep: task_lua_resume, called by the host from a
   timer callback (outside any pcall), packed the values unprotected, so an
   allocation failure there was a Lua panic. Now: TASK_ENOMEM when the
   values must be kept (nobody waits yet); a waiting task gets them without
   any allocation. */
TEST_CASE(regression_host_resume_out_of_memory) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    lua_Integer id;
    L = host_open(&a, &s);
    CHECK(luaL_dostring(L, "ID = task.alloc(); T = task.spawn(function() task.sleep(5); return task.wait(ID) end)") == LUA_OK);
    task_tick(s, 0);
    lua_getglobal(L, "ID");
    id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushstring(L, "a value");
    lua_pushinteger(L, 2);
    a.fail_at = a.calls + 1;
    a.fail_all_after = 1;
    CHECK_INT(task_lua_resume(L, (task_id)id, 2), TASK_ENOMEM); /* before the wait */
    a.fail_at = 0;
    CHECK_INT(lua_gettop(L), 0);
    task_tick(s, 10 * TASK_MSEC); /* now it waits */
    lua_pushstring(L, "again");
    a.fail_at = a.calls + 1; /* handed over with no allocation at all */
    CHECK_INT(task_lua_resume(L, (task_id)id, 1), TASK_OK);
    a.fail_at = 0;
    task_tick(s, 11 * TASK_MSEC);
    CHECK(luaL_dostring(L, "assert(T:join() == 'again')") == LUA_OK);
    lua_close(L);
    task_destroy(s);
    CHECK_INT(a.bytes, 0);
}

static int c_waiter(task_ctx *c) {
    if (c->why == TASK_WHY_START) { CHECK_INT(task_ext_wait(c->sched, *(task_id *)c->ud), TASK_OK); return TASK_STEP_SUSPEND; }
    return TASK_STEP_DONE;
}
static int c_plain(task_ctx *c) {
    if (c->why == TASK_WHY_START) return TASK_STEP_SUSPEND; /* plain wait */
    return TASK_STEP_DONE;
}

TEST_CASE(c_resume_of_ended_and_wakeup_twice) {
    test_alloc a;
    task_sched *s;
    task_id t, e, w;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    CHECK_INT(task_ext_alloc(s, &e), TASK_OK);
    CHECK_INT(task_spawn(s, c_waiter, &e, NULL, &t), TASK_OK);
    task_tick(s, 0);
    CHECK_INT(task_cancel(s, t), TASK_OK);
    task_tick(s, 1);
    CHECK_INT(task_status(s, t), TASK_EXIT);
    CHECK_INT(task_ext_resume(s, e, NULL), TASK_ENOENT);
    CHECK_INT(task_release(s, t), TASK_OK);
    CHECK_INT(task_ext_resume(s, e, NULL), TASK_ENOENT);
    CHECK_INT(task_wakeup(s, t, NULL), TASK_ENOENT);
    CHECK_INT(task_spawn(s, c_plain, NULL, NULL, &w), TASK_OK);
    task_tick(s, 2);
    CHECK_INT(task_wakeup(s, w, (void *)1), TASK_OK);
    CHECK_INT(task_wakeup(s, w, (void *)2), TASK_ESTATE);
    task_tick(s, 3);
    CHECK_INT(task_wakeup(s, w, (void *)3), TASK_ESTATE);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

/* ---- a million tasks alive at once ----------------------------------- */

static int c_sleeper(task_ctx *c) {
    if (c->why == TASK_WHY_START) {
        uintptr_t i = (uintptr_t)c->ud;
        if (i % 2) return task_sleep(c->sched, (uint64_t)(i % 1000) * TASK_MSEC) == TASK_OK ? TASK_STEP_SUSPEND : TASK_STEP_FAIL;
        return TASK_STEP_SUSPEND; /* plain wait, until cancelled */
    }
    return TASK_STEP_DONE;
}

TEST_CASE(million_c_tasks) {
    test_alloc a;
    task_sched *s;
    task_id tok;
    task_opts o;
    long i;
    double t0 = secs(), t1, t2;
    memset(&a, 0, sizeof a);
    memset(&o, 0, sizeof o);
    s = task_create(test_alloc_fn, &a);
    CHECK_INT(task_token_new(s, 0, &tok), TASK_OK);
    o.token = tok;
    o.flags = TASK_DETACHED;
    for (i = 0; i < big_n; i++)
        if (task_spawn(s, c_sleeper, (void *)(uintptr_t)i, &o, NULL) != TASK_OK) { TEST__FAIL("spawn %ld failed", i); break; }
    task_tick(s, 0);
    CHECK_INT(task_count(s, -1), big_n);
    CHECK_INT(task_count(s, TASK_SLEEP), big_n / 2);
    CHECK_INT(task_count(s, TASK_WAIT), big_n - big_n / 2);
    t1 = secs();
    task_tick(s, 500 * TASK_MSEC);           /* about half the sleepers wake */
    CHECK_INT(task_token_cancel(s, tok), TASK_OK); /* everyone else */
    task_tick(s, 501 * TASK_MSEC);
    CHECK_INT(task_count(s, -1), 0);
    t2 = secs();
    printf("# %ld C tasks alive at once: %lu bytes peak (%.0f per task), spawn+park %.2f s, wake+end %.2f s\n",
           big_n, (unsigned long)a.peak, (double)a.peak / (double)big_n, t1 - t0, t2 - t1);
    CHECK_INT(task_token_release(s, tok), TASK_OK);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

TEST_CASE(many_lua_tasks) {
    lrun r = R(0, 0);
    char code[1024];
    double t0 = secs();
    snprintf(code, sizeof code,
        "local N = %ld\n"
        "local ch = task.channel(N)\n"
        "local ts = {}\n"
        "for i = 1, N do ts[i] = task.spawn(function() if i %% 2 == 0 then task.sleep(i %% 100) else task.wait() end; ch:send(i) end) end\n"
        "task.yield()\n"
        "local st = task.taskstat()\n"
        "for i = 1, N, 2 do task.wakeup(ts[i], i) end\n"
        "local sum = 0\n"
        "for i = 1, N do sum = sum + ch:recv() end\n"
        "check(sum == N * (N + 1) // 2, 'every task ran to its end')\n"
        "DONE = true\n", lua_n);
    run_lua("=many", code, &r);
    CHECK(r.done);
    printf("# %ld Lua tasks alive at once: %.2f s\n", lua_n, secs() - t0);
}

TEST_CASE(many_lua_tasks_alive_at_close) {
    lrun r = R(0, 0);
    char code[512];
    snprintf(code, sizeof code,
        "for i = 1, %ld do task.spawn(function() local c <close> = setmetatable({}, {__close = function() end}); task.wait() end) end\n"
        "task.yield()\n"
        "DONE = true\n", lua_n / 4);
    run_lua("=manyclose", code, &r);
    CHECK(r.done);
}

/* ---- regression cases: each runs in a child process (isolated, in
   testlib.h), so a crash or a hang fails that case alone -------------- */

/* Found by the Lua fuzzer: lua_resume makes "cannot resume dead
   coroutine" outside any protected call, so a memory error there, in a
   task's coroutine.resume with no pcall on the main thread, was a Lua
   panic (abort). The module keeps the message interned. */
static test_alloc *dead_alloc;
static int l_failmem(lua_State *L) {
    if (lua_toboolean(L, 1)) { dead_alloc->fail_at = dead_alloc->calls + 1; dead_alloc->fail_all_after = 1; }
    else dead_alloc->fail_at = 0;
    return 0;
}
static void dead_resume_body(void) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    L = host_open(&a, &s);
    dead_alloc = &a;
    lua_register(L, "failmem", l_failmem);
    CHECK(luaL_loadstring(L,
        "local co = coroutine.create(function() end); coroutine.resume(co)\n"
        "local w = coroutine.create(function() coroutine.yield() end); coroutine.resume(w) -- the same calls, warmed\n"
        "failmem(true)\n"
        "local ok, msg = coroutine.resume(co)\n"
        "failmem(false)\n"
        "R = tostring(ok) .. ' ' .. tostring(msg)\n") == LUA_OK);
    CHECK_INT(task_lua_spawn(L, 0, NULL), TASK_OK);
    lua_pop(L, 1);
    task_tick(s, 0);
    lua_getglobal(L, "R");
    CHECK_STR(lua_tostring(L, -1), "false cannot resume dead coroutine");
    lua_pop(L, 1);
    lua_close(L);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}
TEST_CASE(regression_resume_of_dead_coroutine_out_of_memory) {
    isolated("coroutine.resume of a dead coroutine with memory gone", dead_resume_body, 30);
}

/* A task's thread resumed from outside the scheduler, with a pcall loop in
   its body: the error must leave the body, not let the task's code run on
   in the resumer (a host or a finalizer at lua_close, where no budget
   counts). Before, this resume never returned. */
static void foreign_loop_body(void) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    L = host_open(&a, &s);
    CHECK(luaL_dostring(L, "T = task.spawn(function() TH = coroutine.running()\n"
                           "  while true do pcall(task.sleep, 1) end end)") == LUA_OK);
    task_tick(s, 0);
    CHECK(luaL_dostring(L, "local ok, e = coroutine.resume(TH); R = tostring(ok) .. ' ' .. tostring(e)") == LUA_OK);
    lua_getglobal(L, "R");
    CHECK_STR(lua_tostring(L, -1), "false coroutine.resume: cannot resume a task's thread outside the scheduler");
    lua_pop(L, 1);
    task_tick(s, 2 * TASK_MSEC);
    CHECK(luaL_dostring(L, "R = task.status(T)") == LUA_OK);
    lua_getglobal(L, "R");
    CHECK_STR(lua_tostring(L, -1), "EXIT");
    lua_pop(L, 1);
    lua_close(L);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}
TEST_CASE(foreign_resume_of_a_pcall_loop_returns) {
    isolated("a task's thread with a pcall loop resumed from the host", foreign_loop_body, 20);
}

/* getmetatable gives a copy: removing __gc there must not stop the
   Task's finalizer, which releases an ended task nobody joined (before,
   the core kept every such task until lua_close). */
TEST_CASE(getmetatable_copy_keeps_the_finalizer) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    L = host_open(&a, &s);
    CHECK(luaL_dostring(L, "local t = task.spawn(function() end); local mt = getmetatable(t)\n"
                           "assert(mt ~= debug.getmetatable(t) and mt.__name == 'Task' and mt.__gc)\n"
                           "mt.__gc = nil; mt.__index = nil\n"
                           "assert(t.id and t:is_finished() == false, 'the real metatable is untouched')\n"
                           "for _ = 1, 10 do task.spawn(function() return 1 end) end") == LUA_OK);
    task_tick(s, 0);
    CHECK_INT(task_count(s, TASK_EXIT), 11);
    lua_gc(L, LUA_GCCOLLECT);
    lua_gc(L, LUA_GCCOLLECT);
    CHECK_INT(task_count(s, TASK_EXIT), 0);
    lua_close(L);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

/* ---- finalizers that run after the module's own __gc at lua_close ----- */

static int closed_calls, closed_good, closed_end;
static char closed_bad[4096];

static int closed_record(lua_State *L) { /* record(name, ok, err) */
    const char *name = luaL_checkstring(L, 1);
    const char *err = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : luaL_typename(L, 3);
    size_t used = strlen(closed_bad);
    if (strcmp(name, "END") == 0) { closed_end = 1; return 0; }
    closed_calls++;
    if (!lua_toboolean(L, 2) && strstr(err, "task module is closed")) closed_good++;
    else if (used + 200 < sizeof closed_bad)
        snprintf(closed_bad + used, sizeof closed_bad - used, "\n#   %s -> %s, %.120s", name,
                 lua_toboolean(L, 2) ? "returned" : "raised", err);
    return 0;
}

/* Made before the module is open, so Lua finalizes it after the module's
   own __gc (finalizers run newest first). K is filled in later. */
static const char CLOSED_BEFORE[] =
    "K = {}\n"
    "local K = K\n"
    "SENTINEL = setmetatable({}, {__gc = function()\n"
    "  local t, f = K.task, function() end\n"
    "  local function try(name, fn, ...) record(name, pcall(fn, ...)) end\n"
    "  local known = {}\n"
    "  local calls = {\n"
    "    {'spawn', f}, {'fork', f, 1}, {'running'}, {'current'}, {'status', K.done}, {'sleep', 1}, {'yield'},\n"
    "    {'checkpoint'}, {'wait'}, {'wakeup', K.recver, 1}, {'alloc'}, {'resume', 1, 2}, {'cancel_token'},\n"
    "    {'now'}, {'select', {K.ch}}, {'timer', 1}, {'channel', 1}, {'taskstat'}, {'tasks'}, {'tracenode', 1},\n"
    "    {'tracespawn'}, {'traceset', 1}, {'tracepropagate'}, {'traceparent'},\n"
    "    {'traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'},\n"
    "    {'hook', nil, nil}, {'task_hook', nil, nil}, {'run', f}, {'scope', f}, {'all', f}, {'race', f},\n"
    "    {'timeout', 1, f}, {'with_timeout', 1, f}, {'external', f}, {'await', K.ch}, {'after', 1, f},\n"
    "  }\n"
    "  for _, c in ipairs(calls) do\n"
    "    known[c[1]] = true\n"
    "    if type(t[c[1]]) ~= 'function' then record('task.' .. c[1] .. ' (missing)', true, nil)\n"
    "    else try('task.' .. c[1], t[c[1]], table.unpack(c, 2, 3)) end\n"
    "  end\n"
    "  for k, v in pairs(t) do\n"
    "    if type(v) == 'function' and not known[k] then try('task.' .. tostring(k), v) end\n"
    "  end\n"
    "  for _, m in ipairs(K.methods) do try(m[1], m[2], m[3], m[4]) end\n"
    "  -- a channel with a receiver still parked in it, one with a sender\n"
    "  try('Channel:send (parked receiver)', K.ch.send, K.ch, 'v')\n"
    "  try('Channel:close (parked receiver)', K.ch.close, K.ch)\n"
    "  try('Channel:recv (parked sender)', K.full.recv, K.full)\n"
    "  try('Channel:close (parked sender)', K.full.close, K.full)\n"
    "  -- these need not raise, but must not crash\n"
    "  for _, o in ipairs({K.done, K.recver, K.ch, K.tm, K.tok, K.scope}) do pcall(tostring, o) end\n"
    "  pcall(function() return K.done.id, K.done.name, K.scope.name end)\n"
    "  record('END')\n"
    "end})\n";

static const char CLOSED_AFTER[] =
    "local K = K\n"
    "K.task = task\n"
    "K.ch = task.channel(1)\n"
    "K.full = task.channel(1); K.full:send(0)\n"
    "K.recver = task.spawn(function() K.ch:recv() end)\n"
    "K.sender = task.spawn(function() K.full:send(1) end)\n"
    "K.done = task.spawn(function() return 1 end)\n"
    "K.live = task.spawn(function() task.sleep(1e6) end)\n"
    "K.tm = task.timer(1e6)\n"
    "K.tok = task.cancel_token()\n"
    "task.scope(function(s) K.scope = s end)\n"
    "task.yield()\n"
    "local f = function() end\n"
    "local M = {\n"
    "  Task = {K.live, {'wait', 'join', 'cancel', 'abort', 'done', 'is_finished', 'detach', 'elapsed', 'traceback'}},\n"
    "  Channel = {K.ch, {'send', 'try_send', 'wait', 'recv', 'try_recv', 'close', 'len'}},\n"
    "  Timer = {K.tm, {'wait', 'cancel', 'done'}},\n"
    "  CancelToken = {K.tok, {'cancel', 'is_cancelled', 'check'}},\n"
    "  Scope = {K.scope, {'spawn', 'cancel', 'token'}},\n"
    "}\n"
    "K.methods = {}\n"
    "for _, cls in ipairs({'Task', 'Channel', 'Timer', 'CancelToken', 'Scope'}) do\n"
    "  local obj, names = M[cls][1], M[cls][2]\n"
    "  for _, m in ipairs(names) do\n"
    "    local arg = (m == 'spawn') and f or (m == 'send' or m == 'try_send') and 'v' or nil\n"
    "    K.methods[#K.methods + 1] = {cls .. ':' .. m, obj[m], obj, arg}\n"
    "  end\n"
    "end\n"
    "check(task.status(K.recver) == 'WAIT' and task.status(K.sender) == 'WAIT', 'the receiver and the sender are parked')\n"
    "DONE = true\n";

static void closed_module_body(void) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    int i;
    memset(&a, 0, sizeof a);
    closed_calls = closed_good = closed_end = 0;
    closed_bad[0] = 0;
    s = task_create(test_alloc_fn, &a);
    L = lua_newstate(test_alloc_fn, &a);
    luaL_openlibs(L);
    lua_register(L, "record", closed_record);
    lua_register(L, "check", lua_check);
    CHECK(luaL_dostring(L, CLOSED_BEFORE) == LUA_OK);
    CHECK_INT(task_lua_open(L, s), TASK_OK);
    lua_setglobal(L, "task");
    if (luaL_loadstring(L, CLOSED_AFTER) != LUA_OK || task_lua_spawn(L, 0, NULL) != TASK_OK) {
        TEST__FAIL("setup: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    } else lua_pop(L, 1);
    for (i = 0; i < 5; i++) task_tick(s, (uint64_t)i * TASK_MSEC);
    lua_getglobal(L, "DONE");
    CHECK(lua_toboolean(L, -1));
    lua_pop(L, 1);
    lua_close(L); /* the module's __gc first, then SENTINEL's */
    CHECK(closed_end);
    CHECK(closed_calls >= 60);
    if (closed_good != closed_calls)
        TEST__FAIL("%d of %d calls did not raise 'task module is closed':%s", closed_calls - closed_good,
                   closed_calls, closed_bad);
    CHECK_INT(task_count(s, -1), 0);
    task_destroy(s);
    CHECK_INT(a.bytes, 0);
}

TEST_CASE(finalizers_after_the_module_gc_get_task_module_is_closed) {
    isolated("finalizers after the module's __gc", closed_module_body, 60);
}

/* ---- starvation: a pipeline cannot hold the host inside one tick ------ */

static long pipe_ticks;
static int lua_ticks(lua_State *L) { lua_pushinteger(L, pipe_ticks); return 1; }

static const char PIPELINE[] =
    "local N = 200000\n"
    "local ch = task.channel(1)\n"
    "local piped = false\n"
    "task.after(1, function() AFTER_AT = ticks(); AFTER_BEFORE_END = not piped end)\n"
    "local tmo = task.spawn(function()\n"
    "  local ch2 = task.channel(1)\n"
    "  local feeder = task.spawn(function() for i = 1, N do ch2:send(i) end; ch2:close() end)\n"
    "  local r1, r2 = task.timeout(10, function() local n = 0; while ch2:recv() do n = n + 1 end; return n end)\n"
    "  TIMEOUT_R1, TIMEOUT_R2, TIMEOUT_AT, TIMEOUT_BEFORE_END = tostring(r1), tostring(r2), ticks(), not piped\n"
    "  feeder:abort()\n"
    "end)\n"
    "local prod = task.spawn(function() for i = 1, N do ch:send(i) end end)\n"
    "local sum = 0\n"
    "for i = 1, N do sum = sum + ch:recv() end\n"
    "piped = true\n"
    "PIPE_AT = ticks()\n"
    "check(sum == N * (N + 1) // 2, 'every message arrived')\n"
    "tmo:join(); prod:join()\n"
    "DONE = true\n";

static void pipeline_body(void) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    uint64_t now = 1000 * TASK_SEC;
    L = host_open(&a, &s);
    lua_register(L, "check", lua_check);
    lua_register(L, "ticks", lua_ticks);
    if (luaL_loadstring(L, PIPELINE) != LUA_OK || task_lua_spawn(L, 0, NULL) != TASK_OK) {
        TEST__FAIL("setup: %s", lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    /* the host's clock advances 1 ms per tick (more when nothing is ready) */
    for (pipe_ticks = 1; pipe_ticks < 2000000; pipe_ticks++) {
        uint64_t wait;
        CHECK(task_tick(s, now) >= 0);
        if (task_count(s, -1) == 0) break;
        wait = task_timeout(s, now);
        if (wait == TASK_FOREVER) break;
        now += wait > TASK_MSEC ? wait : TASK_MSEC;
    }
    printf("# pipeline of 200000 messages: %ld ticks\n", pipe_ticks);
    CHECK(task_count(s, -1) == 0);
    lua_getglobal(L, "DONE");
    CHECK(lua_toboolean(L, -1));
    lua_getglobal(L, "PIPE_AT");
    CHECK(lua_tointeger(L, -1) > 50); /* the pipeline needed many ticks */
    lua_getglobal(L, "AFTER_BEFORE_END");
    CHECK(lua_toboolean(L, -1));      /* task.after(1) fired while it ran */
    lua_getglobal(L, "TIMEOUT_BEFORE_END");
    CHECK(lua_toboolean(L, -1));      /* task.timeout(10) returned while it ran */
    lua_getglobal(L, "TIMEOUT_R1");
    CHECK_STR(lua_tostring(L, -1), "nil");
    lua_getglobal(L, "TIMEOUT_R2");
    CHECK_STR(lua_tostring(L, -1), "timeout");
    lua_getglobal(L, "AFTER_AT");
    lua_getglobal(L, "TIMEOUT_AT");
    lua_getglobal(L, "PIPE_AT");
    printf("# after(1) fired at tick %lld, timeout(10) returned at tick %lld, the pipeline ended at tick %lld\n",
           (long long)lua_tointeger(L, -3), (long long)lua_tointeger(L, -2), (long long)lua_tointeger(L, -1));
    lua_settop(L, 0);
    lua_close(L);
    task_destroy(s);
    CHECK_INT(a.bytes, 0);
}

TEST_CASE(pipeline_of_200000_messages_lets_timers_fire) {
    isolated("pipeline", pipeline_body, 120);
}

/* ---- the instruction budget cannot be removed from inside a task ------ */

typedef struct bcase { int mode; const char *setup, *code; } bcase;
static bcase budget_now;

/* setup runs in the main chunk, outside any task; code runs as a task and
   sets HOG (the task that never suspends). 50 ticks, each must return. */
static void budget_body(void) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    int i;
    const char *err;
    L = host_open(&a, &s);
    lua_register(L, "check", lua_check);
    lua_newtable(L);
    lua_setglobal(L, "ERRORS");
    lua_pushcfunction(L, record_error);
    task_lua_set_error_handler(L, -1);
    lua_pop(L, 1);
    task_lua_set_budget(L, 1000, budget_now.mode);
    if (luaL_dostring(L, budget_now.setup) != LUA_OK) { TEST__FAIL("setup: %s", lua_tostring(L, -1)); lua_pop(L, 1); }
    if (luaL_loadstring(L, budget_now.code) != LUA_OK || task_lua_spawn(L, 0, NULL) != TASK_OK)
        TEST__FAIL("spawn: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    CHECK(luaL_dostring(L,
        "OTHER = 0\n"
        "task.spawn(function() for i = 1, 40 do task.yield(); OTHER = OTHER + 1 end end)\n"
        "task.spawn(function() while not HOG do task.yield() end\n"
        "  local ok, e = pcall(HOG.join, HOG); HOG_ERR = tostring(e) end)\n") == LUA_OK);
    for (i = 0; i < 50; i++) task_tick(s, (uint64_t)i * TASK_MSEC); /* the alarm catches a tick that never returns */
    lua_getglobal(L, "OTHER");
    CHECK_INT(lua_tointeger(L, -1), 40);    /* the host got control back at every tick */
    lua_getglobal(L, "HOG_ERR");
    err = lua_tostring(L, -1);
    if (budget_now.mode == TASK_LUA_RAISE) {
        CHECK_CONTAINS(err, "budget");
    } else if (!err) { /* preempted, not failed: still alive; abort it */
        CHECK(luaL_dostring(L, "HOG:abort()") == LUA_OK);
        task_tick(s, 60 * TASK_MSEC);
        task_tick(s, 61 * TASK_MSEC);
        lua_getglobal(L, "HOG_ERR");
        err = lua_tostring(L, -1);
        if (!err || (!strstr(err, "task aborted") && !strstr(err, "budget")))
            TEST__FAIL("the preempted task: %s", err ? err : "(not ended)");
    } else if (!strstr(err, "budget")) TEST__FAIL("the preempted task failed with: %s", err);
    lua_settop(L, 0);
    lua_close(L);
    task_destroy(s);
    CHECK_INT(a.bytes, 0);
}

static void budget_case(int mode, const char *setup, const char *code, const char *what) {
    budget_now.mode = mode;
    budget_now.setup = setup;
    budget_now.code = code;
    isolated(what, budget_body, 60);
}

static const char HOG_SETHOOK_OFF[] =
    "HOG = task.spawn(function() pcall(debug.sethook); local x = 0; while true do x = x + 1 end end)\n";
static const char HOG_SETHOOK_LINE[] =
    "HOG = task.spawn(function() pcall(debug.sethook, function() end, 'l'); local x = 0\n"
    "  while true do x = x + 1 end end)\n";
static const char HOG_WRAP_SETUP[] = "WRAP = coroutine.wrap(function() local x = 0; while true do x = x + 1 end end)\n";
static const char HOG_WRAP[] = "HOG = task.spawn(WRAP)\n";
static const char HOG_CO_SETUP[] = "CO = coroutine.create(function() local x = 0; while true do x = x + 1 end end)\n";
static const char HOG_CO[] =
    "HOG = task.spawn(function() local ok, e = coroutine.resume(CO); CO_ERR = tostring(e)\n"
    "  local x = 0; while true do x = x + 1 end end)\n";

TEST_CASE(budget_raise_survives_debug_sethook_off) {
    budget_case(TASK_LUA_RAISE, "", HOG_SETHOOK_OFF, "RAISE, debug.sethook()");
}
TEST_CASE(budget_preempt_survives_debug_sethook_off) {
    budget_case(TASK_LUA_PREEMPT, "", HOG_SETHOOK_OFF, "PREEMPT, debug.sethook()");
}
TEST_CASE(budget_raise_survives_debug_sethook_line_hook) {
    budget_case(TASK_LUA_RAISE, "", HOG_SETHOOK_LINE, "RAISE, debug.sethook(f, 'l')");
}
TEST_CASE(budget_preempt_survives_debug_sethook_line_hook) {
    budget_case(TASK_LUA_PREEMPT, "", HOG_SETHOOK_LINE, "PREEMPT, debug.sethook(f, 'l')");
}
TEST_CASE(budget_raise_bounds_a_wrap_made_outside_tasks) {
    budget_case(TASK_LUA_RAISE, HOG_WRAP_SETUP, HOG_WRAP, "RAISE, spawn(coroutine.wrap made outside)");
}
TEST_CASE(budget_preempt_bounds_a_wrap_made_outside_tasks) {
    budget_case(TASK_LUA_PREEMPT, HOG_WRAP_SETUP, HOG_WRAP, "PREEMPT, spawn(coroutine.wrap made outside)");
}
TEST_CASE(budget_raise_bounds_a_coroutine_made_outside_tasks) {
    budget_case(TASK_LUA_RAISE, HOG_CO_SETUP, HOG_CO, "RAISE, coroutine.resume of one made outside");
}
TEST_CASE(budget_preempt_bounds_a_coroutine_made_outside_tasks) {
    budget_case(TASK_LUA_PREEMPT, HOG_CO_SETUP, HOG_CO, "PREEMPT, coroutine.resume of one made outside");
}

/* ---- Channel:close interrupted by memory errors ----------------------- */

/* Three receivers parked on RCH (empty), two senders parked on SCH (full).
   The strings the waiters get are checked from C: no "closed" constant in
   Lua code keeps that string interned, so close may have to make it. */
static const char CLOSE_SETUP[] =
    "RCH = task.channel(4)\n"
    "SCH = task.channel(1); SCH:send(0)\n"
    "RES, W = {}, {}\n"
    "for i = 1, 3 do W[i] = task.spawn(function() RES[i] = table.pack(RCH:recv()) end) end\n"
    "for i = 4, 5 do W[i] = task.spawn(function() RES[i] = table.pack(SCH:send(i)) end) end\n";

/* 1 if every waiter of the channel named ch (global) is still parked, its
   result not set, and a non-destructive probe says the channel is open. */
static int close_untouched(lua_State *L, const char *ch) {
    int first = strcmp(ch, "RCH") == 0 ? 1 : 4, last = first == 1 ? 3 : 5, i, ok = 1;
    task_sched *s = task_lua_sched(L);
    lua_getglobal(L, "W");
    lua_getglobal(L, "RES");
    for (i = first; i <= last; i++) {
        lua_rawgeti(L, -2, i);
        lua_getfield(L, -1, "id"); /* the Task's id, as scripts see it */
        if (task_status(s, (task_id)lua_tointeger(L, -1)) != TASK_WAIT) ok = 0;
        lua_pop(L, 2);
        if (lua_rawgeti(L, -1, i) != LUA_TNIL) ok = 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    /* RCH is empty: try_recv says "empty" while open; SCH is full: try_send says "full" */
    lua_getglobal(L, ch);
    lua_getfield(L, -1, first == 1 ? "try_recv" : "try_send");
    lua_insert(L, -2);
    if (first != 1) lua_pushinteger(L, 99);
    if (lua_pcall(L, first == 1 ? 1 : 2, 2, 0) != LUA_OK) { lua_pop(L, 1); return 0; }
    if (!lua_isnil(L, -2) || !lua_isstring(L, -1) || strcmp(lua_tostring(L, -1), first == 1 ? "empty" : "full") != 0) ok = 0;
    lua_pop(L, 2);
    return ok;
}

static int close_sweep_bad;

/* One run: set up, fail the k-th allocation of ch:close() (and every later
   one when all), then check the outcome. Returns the allocations close made
   (k = 0: none failed). */
static unsigned long close_run(const char *ch, unsigned long k, int all) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    unsigned long before, made;
    int rc, i, raised;
    L = host_open(&a, &s);
    CHECK(luaL_dostring(L, CLOSE_SETUP) == LUA_OK);
    task_tick(s, 0);
    task_tick(s, 1);
    CHECK(close_untouched(L, "RCH") && close_untouched(L, "SCH"));
    CHECK(luaL_loadstring(L, "return (...):close()") == LUA_OK);
    lua_pushvalue(L, -1); /* a second copy for the retry */
    lua_getglobal(L, ch);
    lua_gc(L, LUA_GCCOLLECT, 0);
    before = a.calls;
    if (k) { a.fail_at = before + k; a.fail_all_after = all; }
    rc = lua_pcall(L, 1, 1, 0);
    a.fail_at = 0;
    made = a.calls - before;
    raised = rc != LUA_OK;
    if (!raised && !lua_toboolean(L, -1)) { TEST__FAIL("%s:close() k=%lu%s returned false", ch, k, all ? "+" : ""); close_sweep_bad = 1; }
    lua_pop(L, 1);
    if (raised) {
        if (!close_untouched(L, ch)) {
            TEST__FAIL("%s:close() k=%lu%s raised but changed the channel or its waiters", ch, k, all ? "+" : "");
            close_sweep_bad = 1;
        }
        lua_getglobal(L, ch);
        if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_toboolean(L, -1)) {
            TEST__FAIL("%s:close() k=%lu%s: the second close failed", ch, k, all ? "+" : "");
            close_sweep_bad = 1;
        }
        lua_pop(L, 1);
    } else lua_pop(L, 1);
    /* the other channel, unhurried; then every waiter must have its result */
    CHECK(luaL_dostring(L, strcmp(ch, "RCH") == 0 ? "SCH:close()" : "RCH:close()") == LUA_OK);
    for (i = 0; i < 5; i++) task_tick(s, (uint64_t)(2 + i));
    if (task_count(s, -1) != 0) {
        TEST__FAIL("%s:close() k=%lu%s: %d waiter(s) still parked", ch, k, all ? "+" : "", task_count(s, -1));
        close_sweep_bad = 1;
    }
    lua_settop(L, 0);
    lua_getglobal(L, "RES");
    for (i = 1; i <= 5; i++) {
        int good = 0;
        if (lua_rawgeti(L, -1, i) == LUA_TTABLE) {
            lua_getfield(L, -1, "n");
            lua_rawgeti(L, -2, 1);
            lua_rawgeti(L, -3, 2);
            good = lua_tointeger(L, -3) == 2 && lua_isnil(L, -2) && lua_type(L, -1) == LUA_TSTRING &&
                   strcmp(lua_tostring(L, -1), "closed") == 0;
        }
        if (!good) {
            TEST__FAIL("%s:close() k=%lu%s: waiter %d got %s instead of nil, \"closed\"", ch, k, all ? "+" : "", i,
                       lua_istable(L, 2) ? luaL_tolstring(L, -1, NULL) : "nothing");
            close_sweep_bad = 1;
        }
        lua_settop(L, 1);
    }
    lua_pop(L, 1);
    CHECK(luaL_dostring(L, "assert(SCH:try_recv() == 0, 'the queued item stays readable')") == LUA_OK);
    lua_settop(L, 0);
    lua_close(L);
    task_destroy(s);
    if (a.bytes) { TEST__FAIL("%s:close() k=%lu%s: %lu bytes leaked", ch, k, all ? "+" : "", (unsigned long)a.bytes); close_sweep_bad = 1; }
    return made;
}

static void close_sweep_body(void) {
    const char *chans[2] = {"RCH", "SCH"};
    int c, all;
    close_sweep_bad = 0;
    for (c = 0; c < 2; c++) {
        unsigned long n, k;
        close_sweep_bad = 0;
        n = close_run(chans[c], 0, 0);
        printf("# %s:close() makes %lu allocations\n", chans[c], n);
        for (all = 0; all < 2; all++)
            for (k = 1; k <= n + 2 && !close_sweep_bad; k++) close_run(chans[c], k, all);
    }
}

TEST_CASE(channel_close_interrupted_by_memory_errors) {
    isolated("Channel:close under allocation failures", close_sweep_body, 120);
}

/* --only SUBSTRING: runs the cases whose name contains it */
static const char *only;
#define RUN_IF(name) do { if (!only || strstr(#name, only)) RUN(name); } while (0)

int main(int argc, char **argv) {
    int i;
    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--big") == 0) big_n = atol(argv[++i]);
        else if (strcmp(argv[i], "--lua") == 0) lua_n = atol(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0) only = argv[++i];
    }
    RUN_IF(never_yields_is_preempted);
    RUN_IF(never_yields_raises);
    RUN_IF(never_yields_in_nested_coroutine);
    RUN_IF(never_yields_inside_metamethod);
    RUN_IF(never_yields_where_it_cannot_yield);
    RUN_IF(regression_resume_of_dead_coroutine_out_of_memory);
    RUN_IF(foreign_resume_of_a_pcall_loop_returns);
    RUN_IF(getmetatable_copy_keeps_the_finalizer);
    RUN_IF(budget_off_by_default_and_resettable);
    RUN_IF(term_hook_that_spawns_forever);
    RUN_IF(deep_recursion);
    RUN_IF(error_values_table_nil_bad_tostring);
    RUN_IF(default_handler_with_bad_values);
    RUN_IF(failing_error_handler);
    RUN_IF(gc_finalizers_call_task_functions_at_close);
    RUN_IF(scope_closed_from_inside_its_child);
    RUN_IF(c_scope_closed_from_inside_its_child);
    RUN_IF(cancel_abort_join_self);
    RUN_IF(c_cancel_abort_join_self);
    RUN_IF(resume_of_ended_and_wakeup_twice);
    RUN_IF(c_resume_of_ended_and_wakeup_twice);
    RUN_IF(regression_wakeup_with_a_number_value);
    RUN_IF(regression_close_after_out_of_memory);
    RUN_IF(regression_host_resume_out_of_memory);
    RUN_IF(million_c_tasks);
    RUN_IF(many_lua_tasks);
    RUN_IF(many_lua_tasks_alive_at_close);
    RUN_IF(finalizers_after_the_module_gc_get_task_module_is_closed);
    RUN_IF(pipeline_of_200000_messages_lets_timers_fire);
    RUN_IF(budget_raise_survives_debug_sethook_off);
    RUN_IF(budget_preempt_survives_debug_sethook_off);
    RUN_IF(budget_raise_survives_debug_sethook_line_hook);
    RUN_IF(budget_preempt_survives_debug_sethook_line_hook);
    RUN_IF(budget_raise_bounds_a_wrap_made_outside_tasks);
    RUN_IF(budget_preempt_bounds_a_wrap_made_outside_tasks);
    RUN_IF(budget_raise_bounds_a_coroutine_made_outside_tasks);
    RUN_IF(budget_preempt_bounds_a_coroutine_made_outside_tasks);
    RUN_IF(channel_close_interrupted_by_memory_errors);
    return test_done();
}
