/* test_lua_host.c: the host (C) API of task_lua.h: task_lua_open,
 * task_lua_spawn, task_lua_resume, task_lua_set_error_handler, lua_close
 * with live tasks, and the default error handler's stderr line.
 * Every case runs on a counting allocator and ends with zero bytes out.
 * The regression cases at the end (the coroutine library on a task's
 * thread from the main chunk, two lua_States on one scheduler) each run
 * in a child process, so a crash or a hang fails that case alone. */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#define TESTLIB_ISOLATED
#include "testlib.h"
#include <lualib.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
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
        lua_getfield(h.L, -1, "id");
        snprintf(want, sizeof want, "task %lld (worker): kaput\n", (long long)lua_tointeger(h.L, -1));
        lua_pop(h.L, 2);
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

/* ---- the coroutine library on a task's thread, from the main chunk ---- */

static const char *const PARKS[] = {"CH:recv()", "task.select({CH})", "task.sleep(100)", "task.wait()", "coroutine.yield()"};
static int park_now;

static void resume_from_main_body(void) {
    host h;
    char code[512];
    host_open(&h);
    snprintf(code, sizeof code,
             "CH = task.channel(1)\n"
             "V = task.spawn(function() TH = coroutine.running(); return %s end)\n", PARKS[park_now]);
    run(&h, code);
    task_tick(h.s, h.now); /* it parks (a plain yield: READY for the next tick) */
    run(&h, "ST1 = task.status(V); CS = coroutine.status(TH); ST2 = task.status(V)\n"
            "local ok, e = coroutine.resume(TH, 'intruder'); OK, ERR = tostring(ok), tostring(e)");
    CHECK_STR(gets_(&h, "CS"), "suspended");
    CHECK_STR(gets_(&h, "ST1"), gets_(&h, "ST2"));
    CHECK_STR(gets_(&h, "OK"), "false");
    CHECK_CONTAINS(gets_(&h, "ERR"), "outside the scheduler");
    drive(&h, 1000);
    run(&h, "DONE = tostring(V:done()); local ok, e = pcall(V.join, V); JOK, JERR = tostring(ok), tostring(e)");
    CHECK_STR(gets_(&h, "DONE"), "true");
    CHECK_STR(gets_(&h, "JOK"), "false");
    CHECK_CONTAINS(gets_(&h, "JERR"), "outside the scheduler");
    /* nothing it waited on is lost: another receiver gets a later send */
    run(&h, "R2 = task.spawn(function() return CH:recv() end)");
    drive(&h, 1);
    run(&h, "SENT = tostring(CH:send('later'))");
    drive(&h, 1);
    run(&h, "local ok, v = pcall(R2.join, R2); GOT = tostring(v)");
    CHECK_STR(gets_(&h, "SENT"), "true");
    CHECK_STR(gets_(&h, "GOT"), "later");
    host_close(&h);
}

static void resume_from_main(int which) {
    char what[96];
    park_now = which;
    snprintf(what, sizeof what, "coroutine.resume from the main chunk of a task parked in %s", PARKS[which]);
    isolated(what, resume_from_main_body, 30);
}

TEST_CASE(coroutine_resume_from_main_chunk_of_task_in_recv) { resume_from_main(0); }
TEST_CASE(coroutine_resume_from_main_chunk_of_task_in_select) { resume_from_main(1); }
TEST_CASE(coroutine_resume_from_main_chunk_of_task_in_sleep) { resume_from_main(2); }
TEST_CASE(coroutine_resume_from_main_chunk_of_task_in_wait) { resume_from_main(3); }
TEST_CASE(coroutine_resume_from_main_chunk_of_task_in_plain_yield) { resume_from_main(4); }

static void close_from_main_body(void) {
    host h;
    char code[512];
    host_open(&h);
    snprintf(code, sizeof code,
             "CH = task.channel(1)\n"
             "V = task.spawn(function() TH = coroutine.running(); return %s end)\n", PARKS[park_now]);
    run(&h, code);
    task_tick(h.s, h.now);
    run(&h, "pcall(coroutine.close, TH); TH = nil; collectgarbage(); collectgarbage()\n"
            "SENT = tostring(CH:send('x'))\n"
            "R2 = task.spawn(function() return CH:recv() end)");
    drive(&h, 1000);
    run(&h, "local ok, v = pcall(R2.join, R2); GOT = tostring(v)\n"
            "local ok2, e = pcall(V.join, V); JOK, JERR = tostring(ok2), tostring(e)");
    CHECK_STR(gets_(&h, "SENT"), "true");
    CHECK_STR(gets_(&h, "GOT"), "x");
    CHECK_STR(gets_(&h, "JOK"), "false");
    CHECK_CONTAINS(gets_(&h, "JERR"), "closed outside the scheduler");
    host_close(&h);
}

TEST_CASE(coroutine_close_from_main_chunk_of_task_in_recv) {
    park_now = 0;
    isolated("coroutine.close from the main chunk of a task parked in CH:recv()", close_from_main_body, 30);
}
TEST_CASE(coroutine_close_from_main_chunk_of_task_in_select) {
    park_now = 1;
    isolated("coroutine.close from the main chunk of a task parked in task.select({CH})", close_from_main_body, 30);
}

/* ---- outside any task, send with room and recv of a queued value work -- */

TEST_CASE(send_and_recv_that_complete_at_once_work_outside_tasks) {
    host h;
    host_open(&h);
    run(&h, "local ch = task.channel(2)\n"
            "local a = ch:send('one'); local b = ch:send(nil)\n"
            "local v1 = ch:recv(); local v2, e2 = ch:recv()\n"
            "R = table.concat({tostring(a), tostring(b), tostring(v1), tostring(v2), tostring(e2)}, ',')");
    CHECK_STR(gets_(&h, "R"), "true,true,one,nil,nil");
    host_close(&h);
}

/* ---- two lua_States on one scheduler ----------------------------------- */

static int hk_create, hk_term, hk_c_create, hk_c_term, hk_marker;
static void hk_on_create(task_sched *s, task_id t, void *ud) {
    CHECK(ud == &hk_marker);
    hk_create++;
    { void *u; if (task_userdata(s, t, &u) == TASK_OK && u == &hk_marker) hk_c_create++; }
}
static void hk_on_term(task_sched *s, task_id t, void *ud) {
    CHECK(ud == &hk_marker);
    hk_term++;
    { void *u; if (task_userdata(s, t, &u) == TASK_OK && u == &hk_marker) hk_c_term++; }
}
static int hk_c_task(task_ctx *c) {
    if (c->why == TASK_WHY_START) return task_sleep(c->sched, 3 * TASK_MSEC) == TASK_OK ? TASK_STEP_SUSPEND : TASK_STEP_FAIL;
    return TASK_STEP_DONE;
}

static const char TWO_SETUP[] =
    "CH = task.channel(1); LOG = {}\n"
    "task.spawn(function() task.sleep(2); CH:send('a') end)\n"
    "local B = task.spawn(function() local v = CH:recv(); LOG[#LOG + 1] = v; return 'b' end)\n"
    "task.spawn(function() local v = B:join(); LOG[#LOG + 1] = v end)\n"
    "LONG = task.spawn(function() for i = 1, 5 do task.sleep(10) end; LONG_DONE = 'yes' end)\n"
    "FOREVER = task.spawn(function() local x <close> = setmetatable({}, {__close = function() end}); task.wait() end)\n"
    /* deadlines in flight when the state closes: the core must not fire
       them into its freed Scopes (ASan) */
    "task.spawn(function() TO_R = select(2, task.timeout(30, function() task.sleep(1000) end)) end)\n"
    "task.spawn(function() TO_W = select(2, pcall(task.with_timeout, 20, function(sc)\n"
    "  sc:spawn(function() pcall(task.sleep, 1000); task.sleep(1000) end); task.sleep(1000) end, {grace_ms = 15})) end)\n";

static int two_reverse;

static void tick_ms(task_sched *s, uint64_t *now, int ms) {
    int i;
    for (i = 0; i < ms; i++) { task_tick(s, *now); *now += TASK_MSEC; }
}

static void spawn_c(task_sched *s, int n) {
    int i;
    for (i = 0; i < n; i++) CHECK_INT(task_spawn(s, hk_c_task, &hk_marker, NULL, NULL), TASK_OK);
}

static const char *gs(lua_State *L, const char *g) {
    const char *r;
    lua_getglobal(L, g);
    r = lua_tostring(L, -1);
    lua_pop(L, 1);
    return r;
}

static void two_states_body(void) {
    test_alloc a;
    task_sched *s;
    lua_State *L[2], *first, *second;
    task_hooks h, got;
    uint64_t now = 1000 * TASK_SEC;
    int i;
    memset(&a, 0, sizeof a);
    hk_create = hk_term = hk_c_create = hk_c_term = 0;
    s = task_create(test_alloc_fn, &a);
    memset(&h, 0, sizeof h);
    h.create = hk_on_create;
    h.term = hk_on_term;
    h.ud = &hk_marker;
    task_set_hooks(s, h);
    spawn_c(s, 2);
    for (i = 0; i < 2; i++) {
        L[i] = lua_newstate(test_alloc_fn, &a);
        luaL_openlibs(L[i]);
        CHECK_INT(task_lua_open(L[i], s), TASK_OK);
        lua_setglobal(L[i], "task");
        CHECK(task_lua_sched(L[i]) == s);
        if (luaL_dostring(L[i], TWO_SETUP) != LUA_OK) TEST__FAIL("setup %d: %s", i, lua_tostring(L[i], -1));
    }
    spawn_c(s, 2);
    tick_ms(s, &now, 5);
    for (i = 0; i < 2; i++) {
        CHECK(luaL_dostring(L[i], "R = (LOG[1] == 'a' and LOG[2] == 'b') and 'ok' or 'bad'") == LUA_OK);
        CHECK_STR(gs(L[i], "R"), "ok");
    }
    first = L[two_reverse ? 1 : 0];
    second = L[two_reverse ? 0 : 1];
    lua_close(first); /* its tasks still live: dropped */
    spawn_c(s, 2);
    tick_ms(s, &now, 60);
    CHECK_STR(gs(second, "LONG_DONE"), "yes"); /* the other state's tasks ran to their end */
    CHECK_STR(gs(second, "TO_R"), "timeout");
    CHECK_STR(gs(second, "TO_W"), "task.with_timeout: exceeded 20 ms");
    CHECK(luaL_dostring(second, "N = task.spawn(function() task.sleep(1); return 'new' end)") == LUA_OK);
    tick_ms(s, &now, 3);
    CHECK(luaL_dostring(second, "local ok, v = pcall(N.join, N); NEW = tostring(v)") == LUA_OK);
    CHECK_STR(gs(second, "NEW"), "new");
    CHECK(luaL_dostring(second, "R = task.status(FOREVER)") == LUA_OK);
    CHECK_STR(gs(second, "R"), "WAIT");
    lua_close(second);
    spawn_c(s, 2);
    tick_ms(s, &now, 10);
    got = task_set_hooks(s, h);
    CHECK(got.create == hk_on_create);
    CHECK(got.term == hk_on_term);
    CHECK(got.ud == &hk_marker);
    CHECK_INT(hk_c_create, 8);
    CHECK_INT(hk_c_term, 8);
    CHECK_INT(task_count(s, -1), 0);
    CHECK_INT(task_destroy(s), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

TEST_CASE(two_lua_states_on_one_scheduler_close_first_then_second) {
    two_reverse = 0;
    isolated("two states, the first opened closed first", two_states_body, 30);
}
TEST_CASE(two_lua_states_on_one_scheduler_close_second_then_first) {
    two_reverse = 1;
    isolated("two states, the second opened closed first", two_states_body, 30);
}

static uint64_t host_clock(void *ud) { return ((host *)ud)->now; }

static int dump_c_task(task_ctx *c) {
    (void)c;
    return TASK_STEP_SUSPEND; /* task_wait: parked until woken */
}

TEST_CASE(dump_names_lua_and_c_tasks_and_the_clock_enables_warn_slow) {
    host h, h2;
    const char *text;
    task_id ct;
    host_open(&h);
    run(&h, "local ok, e = pcall(task.warn_slow, 5); E = tostring(e)");
    CHECK(strstr(gets_(&h, "E"), "task.warn_slow: no clock to time resumes with (the host sets one with task_lua_set_clock)") != NULL);
    task_lua_set_clock(h.L, host_clock, &h);
    run(&h, "task.warn_slow(5); task.profile(); CH = task.channel(1)\n"
            "W = task.spawn({name = 'reader'}, function() return CH:recv() end)");
    CHECK_INT(task_spawn(h.s, dump_c_task, NULL, NULL, &ct), TASK_OK);
    drive(&h, 10);
    /* a second lua_State on the same scheduler: its task is named as such */
    h2.L = lua_newstate(test_alloc_fn, &h.a);
    luaL_openlibs(h2.L);
    CHECK_INT(task_lua_open(h2.L, h.s), TASK_OK);
    lua_pop(h2.L, 1);
    CHECK(luaL_dostring(h2.L, "local t = require('task'); local c = t.channel(1); t.spawn(function() c:recv() end)") == LUA_OK);
    lua_settop(h2.L, 0);
    drive(&h, 1);
    CHECK_INT(task_lua_dump(h.L), TASK_OK);
    text = lua_tostring(h.L, -1);
    CHECK(text != NULL);
    if (text) {
        CHECK(strncmp(text, "task dump at ", 13) == 0);
        CHECK(strstr(text, ": 3 tasks (0 running, 0 ready, 3 waiting, 0 sleeping)\n\n") != NULL);
        CHECK(strstr(text, "(reader) WAIT for ") != NULL);
        CHECK(strstr(text, ": a value from Channel (0/1)\n    resumes 1, busy 0.0 ms, longest 0.0 ms, age ") != NULL);
        CHECK(strstr(text, "(C task) WAIT: wakeup") != NULL);
        CHECK(strstr(text, "(Lua task of another lua_State) WAIT: recv") != NULL);
        CHECK(strstr(text, "in method 'recv'") != NULL || strstr(text, "in function 'recv'") != NULL);
    }
    lua_pop(h.L, 1);
    lua_close(h2.L);
    task_abort(h.s, ct);
    drive(&h, 1);
    task_lua_set_clock(h.L, NULL, NULL); /* turns the warning off */
    run(&h, "R = tostring(task.warn_slow(nil))");
    CHECK_STR(gets_(&h, "R"), "nil");
    host_close(&h);
}

/* ---- counts out of range: task_lua_spawn's nargs and task_lua_resume's
   nvalues, negative or beyond the stack. Before, they popped below the
   caller's frame (an API check failure, a crash, or a huge settop). ---- */

static void counts_out_of_range_body(void) {
    host h;
    lua_State *L2;
    task_id id = 7;
    lua_Integer ext;
    host_open(&h);
    run(&h, "F = function(...) R = select('#', ...) end; ID = task.alloc()");
    lua_getglobal(h.L, "F");
    lua_pushinteger(h.L, 1);
    CHECK_INT(task_lua_spawn(h.L, 2, &id), TASK_EINVAL); /* two values, no function below them */
    CHECK_U64(id, 0);
    CHECK_INT(lua_gettop(h.L), 2);
    CHECK_INT(task_lua_spawn(h.L, 5, NULL), TASK_EINVAL);
    CHECK_INT(task_lua_spawn(h.L, -1, NULL), TASK_EINVAL);
    CHECK_INT(task_lua_spawn(h.L, -4, NULL), TASK_EINVAL);
    CHECK_INT(lua_gettop(h.L), 2);
    CHECK(lua_isfunction(h.L, 1));
    CHECK_INT(task_lua_spawn(h.L, 1, &id), TASK_OK); /* the stack is intact: this one works */
    CHECK(id != 0);
    CHECK_INT(lua_gettop(h.L), 1);
    lua_pop(h.L, 1);
    lua_getglobal(h.L, "ID");
    ext = lua_tointeger(h.L, -1);
    lua_pop(h.L, 1);
    lua_pushstring(h.L, "v");
    CHECK_INT(task_lua_resume(h.L, (task_id)ext, 10), TASK_EINVAL);
    CHECK_INT(task_lua_resume(h.L, (task_id)ext, -2), TASK_EINVAL);
    CHECK_INT(lua_gettop(h.L), 1);
    CHECK_INT(task_ext_status(h.s, (task_id)ext), 0); /* not resumed */
    CHECK_INT(task_lua_resume(h.L, (task_id)ext, 1), TASK_OK);
    CHECK_INT(lua_gettop(h.L), 0);
    drive(&h, 1);
    run(&h, "R2 = R");
    CHECK_STR(gets_(&h, "R2"), "1");
    /* a state without the module, with an empty stack */
    L2 = lua_newstate(test_alloc_fn, &h.a);
    CHECK_INT(task_lua_resume(L2, (task_id)ext, 3), TASK_EINVAL);
    CHECK_INT(task_lua_spawn(L2, 2, NULL), TASK_EINVAL);
    CHECK_INT(lua_gettop(L2), 0);
    lua_close(L2);
    host_close(&h);
}

TEST_CASE(spawn_and_resume_with_counts_out_of_range) {
    isolated("task_lua_spawn / task_lua_resume with counts out of range", counts_out_of_range_body, 30);
}

/* ---- lua_close from a C host's switch hook (a profiler that shuts the
   interpreter down): the Lua task about to run, or that has just run, is
   in RUN there. Before, task_drop refused it, and the core stepped a task
   whose memory lua_close had freed. ---- */

static lua_State *hook_close_L;
static int hook_close_mode;

static void hook_close_resume(task_sched *s, task_id t, void *ud) {
    (void)s; (void)t; (void)ud;
    if (hook_close_mode == 0 && hook_close_L) { lua_close(hook_close_L); hook_close_L = NULL; }
}

static void hook_close_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    (void)s; (void)t; (void)did; (void)waits; (void)ud;
    if (hook_close_mode == 1 && hook_close_L) { lua_close(hook_close_L); hook_close_L = NULL; }
}

static void hook_close_body(void) {
    host h;
    task_hooks hk;
    int i;
    host_open(&h);
    run(&h, "for i = 1, 3 do task.spawn(function() for k = 1, 3 do task.sleep(1) end end) end");
    memset(&hk, 0, sizeof hk);
    hk.resume = hook_close_resume;
    hk.suspend = hook_close_suspend;
    task_set_hooks(h.s, hk);
    hook_close_L = h.L;
    for (i = 0; i < 10; i++) task_tick(h.s, h.now + (uint64_t)i * TASK_MSEC);
    CHECK(hook_close_L == NULL);
    CHECK_INT(task_count(h.s, -1), 0);
    task_destroy(h.s);
    CHECK_INT(h.a.bytes, 0);
}

TEST_CASE(lua_close_from_a_resume_hook) {
    hook_close_mode = 0;
    isolated("lua_close from the resume hook of a Lua task", hook_close_body, 30);
}

TEST_CASE(lua_close_from_a_suspend_hook) {
    hook_close_mode = 1;
    isolated("lua_close from the suspend hook of a Lua task", hook_close_body, 30);
}

/* ---- task_lua_set_pool with a huge count: task.pool's range (0..1000000)
   holds for the host too. Before, it filled a table up to INT_MAX slots
   (its loop counter then overflowed), until memory ran out. ---- */

static size_t pool_cap;
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    test_alloc *a = (test_alloc *)ud;
    if (nsize > (ptr ? osize : 0) && a->bytes + nsize > pool_cap) return NULL;
    return test_alloc_fn(ud, ptr, osize, nsize);
}

TEST_CASE(set_pool_out_of_range) {
    host h;
    host_open(&h);
    pool_cap = h.a.bytes + 64u * 1024 * 1024; /* before the fix: ENOMEM at this cap, not EINVAL */
    lua_setallocf(h.L, capped_alloc, &h.a);
    CHECK_INT(task_lua_set_pool(h.L, INT_MAX), TASK_EINVAL);
    CHECK_INT(task_lua_set_pool(h.L, 1000001), TASK_EINVAL);
    CHECK_INT(task_lua_set_pool(h.L, -1), TASK_EINVAL);
    CHECK_INT(task_lua_set_pool(h.L, 2000), TASK_OK);
    run(&h, "R = select(1, task.pool())");
    CHECK_STR(gets_(&h, "R"), "2000");
    CHECK_INT(lua_gettop(h.L), 0);
    lua_setallocf(h.L, test_alloc_fn, &h.a);
    host_close(&h);
}

/* ---- task.warn_slow with a host clock that goes back (or wraps): a
   resume timed by it took 0, not 2^64 - a bit. Before, every resume was
   reported slow. ---- */

static uint64_t back_now;
static uint64_t back_clock(void *ud) {
    (void)ud;
    back_now -= TASK_MSEC;
    return back_now;
}

TEST_CASE(warn_slow_with_a_clock_that_goes_back) {
    host h;
    host_open(&h);
    back_now = 1000 * TASK_SEC;
    task_lua_set_clock(h.L, back_clock, NULL);
    run(&h, "SLOW = 0; task.set_error_handler(function(e, t, tb, kind) if kind == 'slow' then SLOW = SLOW + 1 end end)\n"
            "task.warn_slow(5); task.spawn(function() for i = 1, 3 do task.yield() end end)");
    drive(&h, 10);
    CHECK_INT(task_count(h.s, -1), 0);
    run(&h, "R = tostring(SLOW)");
    CHECK_STR(gets_(&h, "R"), "0");
    host_close(&h);
}

/* ---- task_lua_set_error_handler with something that is not a function
   at idx (a number, an index past the top): the default handler, so the
   errors are still seen. Before, the handler became the number (or nil,
   through LUA_REFNIL), and every error was lost behind "error handler
   failed". ---- */

static const char *stderr_of(host *h, const char *code, char *buf, size_t size) {
    char path[] = "/tmp/tl_stderrXXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    size_t n = 0;
    FILE *f;
    buf[0] = 0;
    if (fd < 0) return buf;
    fflush(stderr);
    dup2(fd, 2);
    run(h, code);
    drive(h, 1);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    f = fdopen(fd, "r");
    if (f) {
        rewind(f);
        n = fread(buf, 1, size - 1, f);
        fclose(f);
    }
    buf[n] = 0;
    remove(path);
    return buf;
}

TEST_CASE(error_handler_that_is_not_a_function) {
    host h;
    char buf[4096];
    host_open(&h);
    handler_calls = 0;
    lua_pushinteger(h.L, 42);
    task_lua_set_error_handler(h.L, -1);
    CHECK_INT(lua_gettop(h.L), 1);
    lua_pop(h.L, 1);
    stderr_of(&h, "task.spawn({name = 'n1'}, function() error('first', 0) end)", buf, sizeof buf);
    CHECK_CONTAINS(buf, "(n1): first");
    CHECK(strstr(buf, "error handler failed") == NULL);
    lua_pushcfunction(h.L, my_handler);
    task_lua_set_error_handler(h.L, -1);
    lua_pop(h.L, 1);
    task_lua_set_error_handler(h.L, 7); /* past the top: none */
    CHECK_INT(lua_gettop(h.L), 0);
    stderr_of(&h, "task.spawn({name = 'n2'}, function() error('second', 0) end)", buf, sizeof buf);
    CHECK_CONTAINS(buf, "(n2): second");
    CHECK(strstr(buf, "error handler failed") == NULL);
    CHECK_INT(handler_calls, 0);
    lua_pushcfunction(h.L, my_handler); /* a function still works */
    task_lua_set_error_handler(h.L, 1);
    lua_pop(h.L, 1);
    run(&h, "task.spawn(function() error('third', 0) end)");
    drive(&h, 1);
    CHECK_INT(handler_calls, 1);
    CHECK_STR(gets_(&h, "HERR"), "third");
    host_close(&h);
}

/* ---- the host functions given a task's thread that a C function kept
   and that is now suspended (lua_status LUA_YIELD), as a host completing
   I/O later does: each works, through the main thread, with the effect
   it documents on the kept thread's stack. Before, each made a lua_pcall
   on the suspended coroutine (against the Lua API's rules: with API
   checks, an abort; without, a call run on a yielded thread). ---- */

static lua_State *kept_thread;
static int keep_thread(lua_State *L) {
    kept_thread = L;
    return 0;
}

static void suspended_thread_body(void) {
    host h;
    lua_Integer ext, ext2;
    task_id id = 0;
    int top;
    host_open(&h);
    lua_register(h.L, "keep", keep_thread);
    lua_pushcfunction(h.L, my_handler);
    task_lua_set_error_handler(h.L, -1);
    lua_pop(h.L, 1);
    handler_calls = 0;
    run(&h, "ID = task.alloc(); ID2 = task.alloc(); T = task.spawn(function() keep(); R = task.wait(ID) end)");
    drive(&h, 1);
    lua_getglobal(h.L, "ID");
    ext = lua_tointeger(h.L, -1);
    lua_getglobal(h.L, "ID2");
    ext2 = lua_tointeger(h.L, -1);
    lua_pop(h.L, 2);
    CHECK(kept_thread != NULL);
    if (!kept_thread) { host_close(&h); return; }
    CHECK_INT(lua_status(kept_thread), LUA_YIELD);
    top = lua_gettop(kept_thread);
    CHECK_INT(lua_checkstack(kept_thread, 4), 1);
    CHECK_INT(luaL_loadstring(kept_thread, "error('from the kept thread', 0)"), LUA_OK);
    CHECK_INT(task_lua_spawn(kept_thread, 0, &id), TASK_OK); /* the Task, on the kept thread */
    CHECK(id != 0);
    CHECK(luaL_testudata(kept_thread, -1, "task.Task") != NULL);
    lua_pop(kept_thread, 1);
    CHECK_INT(task_lua_dump(kept_thread), TASK_OK);
    CHECK(lua_type(kept_thread, -1) == LUA_TSTRING);
    lua_pop(kept_thread, 1);
    CHECK_INT(task_lua_set_pool(kept_thread, 10), TASK_OK);
    CHECK_INT(task_lua_open(kept_thread, h.s), TASK_OK);
    CHECK(lua_type(kept_thread, -1) == LUA_TTABLE);
    lua_pop(kept_thread, 1);
    lua_pushinteger(kept_thread, 5); /* nobody waits for ID2 yet: kept for its waiter */
    CHECK_INT(task_lua_resume(kept_thread, (task_id)ext2, 1), TASK_OK);
    CHECK_INT(lua_gettop(kept_thread), top);
    lua_pushstring(kept_thread, "v"); /* its own wait: the value stays there for its resume */
    CHECK_INT(task_lua_resume(kept_thread, (task_id)ext, 1), TASK_OK);
    CHECK_INT(lua_gettop(kept_thread), top + 1);
    CHECK_INT(lua_gettop(h.L), 0);
    drive(&h, 1);
    CHECK_STR(gets_(&h, "R"), "v");
    CHECK_INT(handler_calls, 1); /* the spawned task's error, to the handler set before */
    CHECK_STR(gets_(&h, "HERR"), "from the kept thread");
    run(&h, "task.spawn(function() R2 = task.wait(ID2) end)");
    drive(&h, 1);
    CHECK_STR(gets_(&h, "R2"), "5");
    CHECK_INT(task_count(h.s, -1), 0);
    kept_thread = NULL;
    host_close(&h);
}

TEST_CASE(host_functions_take_a_suspended_thread) {
    isolated("the host functions on a suspended task thread", suspended_thread_body, 30);
}

/* ---- task_drop from C on a Lua task parked on a channel, or owning an
   open scope (unsupported, see task_lua.h: the binding is bypassed), then
   its slot reused and its Task collected: neither the channel's queue nor
   the scope may keep a pointer into the freed Task. Before, the next send
   (or the next scope given the old one's slot) used freed memory. ---- */

static void dropped_lua_task_body(void) {
    host h;
    lua_Integer a;
    host_open(&h);
    run(&h, "CH = task.channel(1); A = task.spawn(function() CH:recv() end); "
            "B = task.spawn(function() R = CH:recv() end); AID = A.id");
    drive(&h, 1);
    lua_getglobal(h.L, "AID");
    a = lua_tointeger(h.L, -1);
    lua_pop(h.L, 1);
    CHECK_INT(task_status(h.s, (task_id)a), TASK_WAIT);
    CHECK_INT(task_drop(h.s, (task_id)a), TASK_OK);
    run(&h, "A = nil; task.spawn(function() end); collectgarbage(); collectgarbage()"); /* A's slot, then A */
    run(&h, "task.spawn(function() CH:send(7) end)");
    drive(&h, 1);
    CHECK_STR(gets_(&h, "R"), "7");
    CHECK_INT(task_count(h.s, -1), 0);
    /* the owner of an open scope: the scope's slot goes to the next scope,
       which ends the old one (it pointed at its owner) */
    run(&h, "A = task.spawn(function() task.scope(function() task.sleep(1000) end) end); AID = A.id");
    drive(&h, 1);
    lua_getglobal(h.L, "AID");
    a = lua_tointeger(h.L, -1);
    lua_pop(h.L, 1);
    CHECK_INT(task_drop(h.s, (task_id)a), TASK_OK);
    run(&h, "A = nil; task.spawn(function() end); collectgarbage(); collectgarbage()");
    run(&h, "task.spawn(function() task.scope(function() OK = 'yes' end) end)");
    drive(&h, 1);
    CHECK_STR(gets_(&h, "OK"), "yes");
    CHECK_INT(task_count(h.s, -1), 0);
    host_close(&h);
}

TEST_CASE(lua_task_dropped_from_c_then_collected) {
    isolated("a Lua task dropped from C while on a channel, then collected", dropped_lua_task_body, 30);
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
    RUN(coroutine_resume_from_main_chunk_of_task_in_recv);
    RUN(coroutine_resume_from_main_chunk_of_task_in_select);
    RUN(coroutine_resume_from_main_chunk_of_task_in_sleep);
    RUN(coroutine_resume_from_main_chunk_of_task_in_wait);
    RUN(coroutine_resume_from_main_chunk_of_task_in_plain_yield);
    RUN(coroutine_close_from_main_chunk_of_task_in_recv);
    RUN(coroutine_close_from_main_chunk_of_task_in_select);
    RUN(send_and_recv_that_complete_at_once_work_outside_tasks);
    RUN(two_lua_states_on_one_scheduler_close_first_then_second);
    RUN(two_lua_states_on_one_scheduler_close_second_then_first);
    RUN(dump_names_lua_and_c_tasks_and_the_clock_enables_warn_slow);
    RUN(spawn_and_resume_with_counts_out_of_range);
    RUN(lua_close_from_a_resume_hook);
    RUN(lua_close_from_a_suspend_hook);
    RUN(set_pool_out_of_range);
    RUN(warn_slow_with_a_clock_that_goes_back);
    RUN(error_handler_that_is_not_a_function);
    RUN(host_functions_take_a_suspended_thread);
    RUN(lua_task_dropped_from_c_then_collected);
    return test_done();
}
