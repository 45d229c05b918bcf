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
 *   test_hostile [--big N]   N: the number of C tasks alive at once (1M)
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "testlib.h"
#include <lualib.h>
#include <time.h>

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

typedef struct lrun { int budget, mode, handler, ticks_max, tick_budget; long ticks; int done; } lrun;

/* Runs code as the main task; the script sets DONE = true when it got to
   its end. Returns what the host loop saw. */
static void run_lua(const char *name, const char *code, lrun *r) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    uint64_t now = 1000 * TASK_SEC;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    L = lua_newstate(test_alloc_fn, &a);
    luaL_openlibs(L);
    task_lua_open(L, s);
    lua_setglobal(L, "task");
    lua_register(L, "check", lua_check);
    lua_newtable(L);
    lua_setglobal(L, "ERRORS");
    if (r->handler) {
        lua_pushcfunction(L, record_error);
        task_lua_set_error_handler(L, -1);
        lua_pop(L, 1);
    }
    if (r->budget) task_lua_set_budget(L, r->budget, r->mode);
    if (r->tick_budget) task_set_budget(s, (unsigned)r->tick_budget);
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
        "check(not ok and err == nil, 'nil error')\n"
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
    if (c->why == TASK_R_ABORT) return TASK_DONE;
    CHECK_INT(task_scope_close(c->sched, C_SCOPE), TASK_EPERM);
    CHECK_INT(task_scope_cancel(c->sched, C_SCOPE), TASK_OK);
    CHECK_INT(task_sleep(c->sched, 1), TASK_ECANCELED);
    return TASK_DONE;
}
static int c_owner(task_ctx *c) {
    if (c->why == TASK_R_START) {
        CHECK_INT(task_scope_open(c->sched, &C_SCOPE), TASK_OK);
        CHECK_INT(task_spawn(c->sched, c_child, NULL, NULL, NULL), TASK_OK);
        CHECK_INT(task_scope_close(c->sched, C_SCOPE), TASK_OK);
        return TASK_SUSPEND;
    }
    CHECK_INT(task_scope_count(c->sched, C_SCOPE), TASK_ENOENT);
    return TASK_DONE;
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
    if (c->why == TASK_R_ABORT) { *phase = 100; return TASK_DONE; }
    CHECK_INT(task_join(c->sched, c->self), TASK_EDEADLK);
    CHECK_INT(task_cancel(c->sched, c->self), 1);
    CHECK_INT(task_wait(c->sched), TASK_ECANCELED);
    CHECK_INT(task_abort(c->sched, c->self), 1);
    *phase = 1;
    return TASK_YIELD;
}

TEST_CASE(c_cancel_abort_join_self) {
    test_alloc a;
    task_sched *s;
    task_id t;
    int phase = 0;
    void *v;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    CHECK_INT(task_spawn(s, c_self, &phase, NULL, &t), TASK_OK);
    task_tick(s, 0);
    task_tick(s, 1);
    CHECK_INT(phase, 100);
    CHECK_INT(task_result(s, t, &v), TASK_X_ABORT);
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
        "check(ok == false and type(err) == 'string', 'resume of an id whose task ended: ' .. tostring(err))\n"
        "local id2 = task.alloc()\n"
        "t = task.spawn(function() return task.wait(id2) end)\n"
        "check(task.resume(id2, 'v') == true, 'first resume')\n"
        "check(task.resume(id2, 'w') == false, 'second resume is refused')\n"
        "check(t:join() == 'v', 'the first value wins')\n"
        "check(task.resume(id2, 'x') == false, 'resume after the task ended')\n"
        "check(task.resume(-1) == false and task.resume(0) == false and task.resume(math.maxinteger) == false, 'junk ids')\n"
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
   allocation failure there was a Lua panic. Now: TASK_ENOMEM. */
TEST_CASE(regression_host_resume_out_of_memory) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    lua_Integer id;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    L = lua_newstate(test_alloc_fn, &a);
    luaL_openlibs(L);
    task_lua_open(L, s);
    lua_setglobal(L, "task");
    CHECK(luaL_dostring(L, "ID = task.alloc(); T = task.spawn(function() return task.wait(ID) end)") == LUA_OK);
    task_tick(s, 0);
    lua_getglobal(L, "ID");
    id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushstring(L, "a value");
    lua_pushinteger(L, 2);
    a.fail_at = a.calls + 1;
    a.fail_all_after = 1;
    CHECK_INT(task_lua_resume(L, (task_id)id, 2), TASK_ENOMEM);
    a.fail_at = 0;
    lua_pushstring(L, "again");
    CHECK_INT(task_lua_resume(L, (task_id)id, 1), TASK_OK);
    task_tick(s, 1);
    CHECK(luaL_dostring(L, "assert(T:join() == 'again')") == LUA_OK);
    lua_close(L);
    task_destroy(s);
    CHECK_INT(a.bytes, 0);
}

static int c_waiter(task_ctx *c) {
    if (c->why == TASK_R_START) { CHECK_INT(task_ext_wait(c->sched, *(task_id *)c->ud), TASK_OK); return TASK_SUSPEND; }
    return TASK_DONE;
}
static int c_plain(task_ctx *c) {
    if (c->why == TASK_R_START) return TASK_SUSPEND; /* plain wait */
    return TASK_DONE;
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
    CHECK_INT(task_cancel(s, t), 1);
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
    if (c->why == TASK_R_START) {
        uintptr_t i = (uintptr_t)c->ud;
        if (i % 2) return task_sleep(c->sched, (uint64_t)(i % 1000) * TASK_MSEC) == TASK_OK ? TASK_SUSPEND : TASK_FAIL;
        return TASK_SUSPEND; /* plain wait, until cancelled */
    }
    return TASK_DONE;
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

int main(int argc, char **argv) {
    int i;
    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--big") == 0) big_n = atol(argv[++i]);
        else if (strcmp(argv[i], "--lua") == 0) lua_n = atol(argv[++i]);
    }
    RUN(never_yields_is_preempted);
    RUN(never_yields_raises);
    RUN(never_yields_in_nested_coroutine);
    RUN(never_yields_inside_metamethod);
    RUN(budget_off_by_default_and_resettable);
    RUN(term_hook_that_spawns_forever);
    RUN(deep_recursion);
    RUN(error_values_table_nil_bad_tostring);
    RUN(default_handler_with_bad_values);
    RUN(failing_error_handler);
    RUN(gc_finalizers_call_task_functions_at_close);
    RUN(scope_closed_from_inside_its_child);
    RUN(c_scope_closed_from_inside_its_child);
    RUN(cancel_abort_join_self);
    RUN(c_cancel_abort_join_self);
    RUN(resume_of_ended_and_wakeup_twice);
    RUN(c_resume_of_ended_and_wakeup_twice);
    RUN(regression_wakeup_with_a_number_value);
    RUN(regression_close_after_out_of_memory);
    RUN(regression_host_resume_out_of_memory);
    RUN(million_c_tasks);
    RUN(many_lua_tasks);
    RUN(many_lua_tasks_alive_at_close);
    return test_done();
}
