/* test_lua_host.c: the host (C) API of task_lua.h: task_lua_open,
 * task_lua_spawn, task_lua_resume, task_lua_set_error_handler, lua_close
 * with live tasks, and the default error handler's stderr line.
 * Every case runs on a counting allocator and ends with zero bytes out. */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#include "testlib.h"
#include <lualib.h>
#include <unistd.h>

typedef struct host { test_alloc a; task_sched *s; lua_State *L; uint64_t now; } host;

static void host_open(host *h) {
    memset(h, 0, sizeof *h);
    h->s = task_create(test_alloc_fn, &h->a);
    h->L = lua_newstate(test_alloc_fn, &h->a);
    luaL_openlibs(h->L);
    h->now = 1000 * TASK_SEC;
    CHECK_INT(task_lua_open(h->L, h->s), TASK_OK);
    CHECK(lua_istable(h->L, -1));
    lua_setglobal(h->L, "task");
}

static void host_close(host *h) {
    lua_close(h->L);
    CHECK_INT(task_count(h->s, -1), 0);
    task_destroy(h->s);
    CHECK_INT(h->a.bytes, 0);
}

static void run(host *h, const char *code) {
    if (luaL_dostring(h->L, code) != LUA_OK) {
        TEST__FAIL("lua: %s", lua_tostring(h->L, -1));
        lua_pop(h->L, 1);
    }
}

/* Ticks until nothing is ready or due within ms of virtual time. */
static void drive(host *h, uint64_t ms) {
    uint64_t end = h->now + ms * TASK_MSEC;
    int ticks = 0;
    task_tick(h->s, h->now);
    while (ticks++ < 10000) { /* a yield loop keeps tasks ready forever */
        uint64_t w = task_timeout(h->s, h->now);
        if (w == TASK_FOREVER || h->now + w > end) break;
        h->now += w;
        task_tick(h->s, h->now);
    }
}

static const char *gets_(host *h, const char *global) {
    lua_getglobal(h->L, global);
    {
        const char *s = lua_tostring(h->L, -1);
        lua_pop(h->L, 1);
        return s;
    }
}

TEST_CASE(open_binds_and_require_works) {
    host h;
    host_open(&h);
    CHECK(task_lua_sched(h.L) == h.s);
    run(&h, "R = (require 'task' == task) and 'same' or 'different'");
    CHECK_STR(gets_(&h, "R"), "same");
    CHECK_INT(task_lua_open(h.L, h.s), TASK_OK); /* twice: the same module */
    lua_getglobal(h.L, "task");
    CHECK(lua_rawequal(h.L, -1, -2));
    lua_pop(h.L, 2);
    host_close(&h);
}

TEST_CASE(spawn_from_c_with_arguments) {
    host h;
    task_id id = 0;
    host_open(&h);
    run(&h, "F = function(a, b, c) task.sleep(5); R = a .. tostring(b) .. c; return 'ret' end");
    lua_getglobal(h.L, "F");
    lua_pushstring(h.L, "x");
    lua_pushnil(h.L);
    lua_pushinteger(h.L, 3);
    CHECK_INT(task_lua_spawn(h.L, 3, &id), TASK_OK);
    CHECK(id != 0);
    CHECK(luaL_testudata(h.L, -1, "task.Task") != NULL);
    lua_setglobal(h.L, "T1");
    CHECK_INT(task_status(h.s, id), TASK_READY);
    drive(&h, 100);
    CHECK_STR(gets_(&h, "R"), "xnil3");
    run(&h, "R2 = T1:join()");
    CHECK_STR(gets_(&h, "R2"), "ret");
    /* not a function: a message, no task */
    lua_pushinteger(h.L, 5);
    CHECK(task_lua_spawn(h.L, 0, NULL) != TASK_OK);
    CHECK(lua_isstring(h.L, -1));
    lua_pop(h.L, 1);
    CHECK_INT(lua_gettop(h.L), 0);
    host_close(&h);
}

TEST_CASE(resume_from_c_with_values_and_stale_id) {
    host h;
    lua_Integer ext;
    host_open(&h);
    run(&h, "ID = task.alloc(); task.spawn(function() R = table.pack(task.wait(ID)) end)");
    drive(&h, 1);
    lua_getglobal(h.L, "ID");
    ext = lua_tointeger(h.L, -1);
    lua_pop(h.L, 1);
    lua_pushstring(h.L, "s");
    lua_pushinteger(h.L, 42);
    lua_pushnil(h.L);
    lua_newtable(h.L);
    lua_pushboolean(h.L, 1);
    lua_setfield(h.L, -2, "k");
    CHECK_INT(task_lua_resume(h.L, (task_id)ext, 4), TASK_OK);
    CHECK_INT(lua_gettop(h.L), 0);
    drive(&h, 1);
    run(&h, "S = R.n .. R[1] .. R[2] .. tostring(R[3]) .. tostring(R[4].k)");
    CHECK_STR(gets_(&h, "S"), "4s42niltrue");
    /* again: the id is used up; popped all the same */
    lua_pushinteger(h.L, 1);
    CHECK(task_lua_resume(h.L, (task_id)ext, 1) != TASK_OK);
    CHECK_INT(lua_gettop(h.L), 0);
    CHECK(task_lua_resume(h.L, (task_id)0x7777777, 0) != TASK_OK);
    /* before the wait: kept, not lost */
    run(&h, "ID2 = task.alloc()");
    lua_getglobal(h.L, "ID2");
    ext = lua_tointeger(h.L, -1);
    lua_pop(h.L, 1);
    lua_pushstring(h.L, "early");
    CHECK_INT(task_lua_resume(h.L, (task_id)ext, 1), TASK_OK);
    CHECK(task_lua_resume(h.L, (task_id)ext, 0) != TASK_OK);
    run(&h, "task.spawn(function() R3 = task.wait(ID2) end)");
    drive(&h, 1);
    CHECK_STR(gets_(&h, "R3"), "early");
    host_close(&h);
}

static int handler_calls;
static int my_handler(lua_State *L) {
    handler_calls++;
    lua_pushvalue(L, 1);
    lua_setglobal(L, "HERR");
    lua_pushboolean(L, luaL_testudata(L, 2, "task.Task") != NULL);
    lua_setglobal(L, "HTASK");
    lua_pushvalue(L, 3);
    lua_setglobal(L, "HTB");
    return 0;
}

TEST_CASE(error_handler_set_and_reset) {
    host h;
    host_open(&h);
    handler_calls = 0;
    lua_pushcfunction(h.L, my_handler);
    task_lua_set_error_handler(h.L, -1);
    lua_pop(h.L, 1);
    run(&h, "task.spawn(function() task.sleep(1); error('oops', 0) end)");
    run(&h, "J = task.spawn(function() task.sleep(1); error('joined', 0) end); task.spawn(function() pcall(J.join, J) end)");
    drive(&h, 10);
    CHECK_INT(handler_calls, 1);
    CHECK_STR(gets_(&h, "HERR"), "oops");
    run(&h, "HT = tostring(HTASK)");
    CHECK_STR(gets_(&h, "HT"), "true");
    CHECK_CONTAINS(gets_(&h, "HTB"), "stack traceback");
    /* a failing handler: reported on stderr, the scheduler goes on */
    run(&h, "task_handler_fail = true");
    (void)luaL_dostring(h.L, "return function() error('handler broke') end");
    task_lua_set_error_handler(h.L, -1);
    lua_pop(h.L, 1);
    run(&h, "task.spawn(function() error('x', 0) end); task.spawn(function() OK = 'ran' end)");
    drive(&h, 1);
    CHECK_STR(gets_(&h, "OK"), "ran");
    lua_pushnil(h.L); /* back to the default */
    task_lua_set_error_handler(h.L, -1);
    lua_pop(h.L, 1);
    host_close(&h);
}

TEST_CASE(default_handler_writes_one_line_to_stderr) {
    host h;
    char path[] = "/tmp/tl_stderrXXXXXX", buf[4096];
    int fd = mkstemp(path), saved = dup(2);
    size_t n;
    FILE *f;
    CHECK(fd >= 0);
    host_open(&h);
    fflush(stderr);
    dup2(fd, 2);
    run(&h, "BAD = task.spawn({name = 'worker'}, function() local function fails() error('kaput', 0) end fails() end)");
    drive(&h, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    f = fdopen(fd, "r");
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    remove(path);
    {
        char want[128];
        lua_getglobal(h.L, "BAD");
        snprintf(want, sizeof want, "task %lld (worker): kaput\n",
                 (long long)((tl_task *)lua_touserdata(h.L, -1))->id);
        lua_pop(h.L, 1);
        CHECK(strncmp(buf, want, strlen(want)) == 0);
        if (strncmp(buf, want, strlen(want)) != 0) printf("# got: %s# want: %s", buf, want);
    }
    CHECK_CONTAINS(buf, "stack traceback");
    CHECK_CONTAINS(buf, "fails");
    host_close(&h);
}

TEST_CASE(close_with_live_tasks_frees_everything) {
    host h;
    host_open(&h);
    run(&h,
        "local ch, full = task.channel(1), task.channel(1); full:send(0)\n"
        "local c <const> = nil\n"
        "KEEP = {}\n"
        "KEEP[1] = task.spawn(function() task.sleep(100000) end)\n"
        "KEEP[2] = task.spawn(function() ch:recv() end)\n"
        "KEEP[3] = task.spawn(function() full:send(1) end)\n"
        "KEEP[4] = task.spawn(function() task.select({ch, task.timer(50000), KEEP[1]}) end)\n"
        "KEEP[5] = task.spawn(function() KEEP[1]:join() end)\n"
        "KEEP[6] = task.spawn(function() task.wait() end)\n"
        "KEEP[7] = task.spawn(function() task.wait(task.alloc()) end)\n"
        "task.spawn(function() local x <close> = setmetatable({}, {__close = function() CLOSED = true end}); task.sleep(9e9) end)\n"
        "task.spawn(function() task.scope(function(sc) sc:spawn(task.sleep, 1e6) end) end)\n"
        "task.spawn(function() while true do task.yield() end end)\n"
        "TOK = task.cancel_token(); TM = task.timer(1e6)\n");
    drive(&h, 10);
    CHECK(task_count(h.s, -1) >= 11);
    host_close(&h);
}

TEST_CASE(close_with_tasks_never_started_and_errors_pending) {
    host h;
    host_open(&h);
    run(&h, "for i = 1, 100 do task.spawn(function() task.sleep(i) end) end\n"
            "E = task.spawn(function() error('x') end)\n");
    host_close(&h);
}

TEST_CASE(suspending_outside_a_task_raises_naming_the_function) {
    host h;
    host_open(&h);
    run(&h, "local ok, e = pcall(task.sleep, 1); R = e");
    CHECK_STR(gets_(&h, "R"), "task.sleep: must be called from inside a task");
    run(&h, "local ok, e = pcall(task.scope, function() end); R = e");
    CHECK_CONTAINS(gets_(&h, "R"), "task.scope: must be called from inside a task");
    run(&h, "local ok, e = pcall(task.run, function() end); R = e");
    CHECK_CONTAINS(gets_(&h, "R"), "task.run");
    run(&h, "R = tostring(task.running())");
    CHECK_STR(gets_(&h, "R"), "nil");
    host_close(&h);
}

int main(void) {
    RUN(open_binds_and_require_works);
    RUN(spawn_from_c_with_arguments);
    RUN(resume_from_c_with_values_and_stale_id);
    RUN(error_handler_set_and_reset);
    RUN(default_handler_writes_one_line_to_stderr);
    RUN(close_with_live_tasks_frees_everything);
    RUN(close_with_tasks_never_started_and_errors_pending);
    RUN(suspending_outside_a_task_raises_naming_the_function);
    return test_done();
}
