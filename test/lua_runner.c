/* lua_runner: runs Lua test scripts against task_lua.h in host mode.
 *
 *   lua_runner [--real-clock] script.lua ...
 *
 * Each script gets a fresh lua_State and scheduler on a counting
 * allocator; its main chunk runs as a task (module "testing" in test/lua
 * runs its cases) and the host loop below drives task_tick(). Time is
 * virtual unless --real-clock: when nothing is ready the clock jumps to the
 * next deadline, so sleeping tests take no wall time. After lua_close and
 * task_destroy, zero bytes must be outstanding.
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#include "testlib.h"
#include <lualib.h>
#include <time.h>

static int real_clock;
static uint64_t runner_now; /* the clock task_tick gets; virtual unless --real-clock */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}

/* Errors of tasks nobody waits for land in the global table ERRORS. */
static int record_error(lua_State *L) {
    lua_getglobal(L, "ERRORS");
    if (!lua_istable(L, -1)) return 0;
    lua_createtable(L, 0, 3);
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "err");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "task");
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "traceback");
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "kind");
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    return 0;
}

/* Host-side hooks for scripts: resume an external id from C after a delay,
   as a host completing I/O would. The pending record is a userdata, so a
   failed task_after (out of memory) leaks nothing. */
typedef struct pending { task_id ext; lua_State *L; int ref; } pending;

static void deliver(task_sched *s, task_id timer, void *ud) {
    pending *p = (pending *)ud;
    lua_State *L = p->L;
    (void)s; (void)timer;
    lua_rawgeti(L, LUA_REGISTRYINDEX, p->ref);  /* the userdata */
    lua_getiuservalue(L, -1, 1);                /* the value */
    luaL_unref(L, LUA_REGISTRYINDEX, p->ref);
    lua_remove(L, -2);
    task_lua_resume(L, p->ext, 1);
}

/* host_resume_later(id, ms, value): the host resumes id after ms. */
static int host_resume_later(lua_State *L) {
    task_sched *s = task_lua_sched(L);
    task_id ext = (task_id)luaL_checkinteger(L, 1);
    uint64_t ns = (uint64_t)(luaL_checknumber(L, 2) * 1e6);
    pending *p;
    lua_settop(L, 3);
    p = (pending *)lua_newuserdatauv(L, sizeof *p, 1);
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, -2, 1);
    p->ext = ext;
    p->L = L;
    p->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (task_after(s, ns, deliver, p, NULL) != TASK_OK) {
        luaL_unref(L, LUA_REGISTRYINDEX, p->ref);
        return luaL_error(L, "not enough memory");
    }
    return 0;
}

/* host_resume(id, ...): resume from C right now, with any values. */
static int host_resume(lua_State *L) {
    task_id ext = (task_id)luaL_checkinteger(L, 1);
    int rc = task_lua_resume(L, ext, lua_gettop(L) - 1);
    lua_pushinteger(L, rc);
    return 1;
}

/* The binding's clock (task_lua_set_clock): the one task_tick gets. */
static uint64_t runner_clock(void *ud) {
    (void)ud;
    return real_clock ? mono_ns() : runner_now;
}

/* host_advance(ms): virtual time passes inside the running step, as if
   it computed that long (exact figures for task.profile, task.warn_slow). */
static int host_advance(lua_State *L) {
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_argcheck(L, ms >= 0 && !real_clock, 1, "a duration >= 0, virtual clock only");
    runner_now += (uint64_t)(ms * 1e6);
    return 0;
}

/* Opens the libraries and the module, installs the globals the scripts use
   and loads the script: protected, so running out of memory is an error. */
static int runner_setup_p(lua_State *L) {
    task_sched *s = (task_sched *)lua_touserdata(L, 1);
    const char *path = (const char *)lua_touserdata(L, 2);
    luaL_openlibs(L);
    task_lua_open(L, s);
    lua_setglobal(L, "task");
    lua_newtable(L);
    lua_setglobal(L, "ERRORS");
    lua_pushcfunction(L, record_error);
    task_lua_set_error_handler(L, -1);
    lua_pop(L, 1);
    lua_register(L, "host_resume_later", host_resume_later);
    lua_register(L, "host_resume", host_resume);
    lua_register(L, "host_advance", host_advance);
    task_lua_set_clock(L, runner_clock, NULL);
    lua_pushstring(L, path);
    lua_setglobal(L, "SCRIPT");
    if (luaL_dostring(L, "package.path = 'test/lua/?.lua;' .. package.path") != LUA_OK) return lua_error(L);
    if (luaL_loadfile(L, path) != LUA_OK) return lua_error(L);
    return 1;
}

static int run_script(const char *path) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    int failed = 0, rc;
    runner_now = real_clock ? mono_ns() : 1000 * TASK_SEC;
    memset(&a, 0, sizeof a);
    s = task_create(test_alloc_fn, &a);
    L = lua_newstate(test_alloc_fn, &a);
    lua_pushcfunction(L, runner_setup_p);
    lua_pushlightuserdata(L, s);
    lua_pushlightuserdata(L, (void *)(uintptr_t)path);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
        printf("not ok - %s: %s\n", path, lua_tostring(L, -1));
        failed = 1;
    } else if (task_lua_spawn(L, 0, NULL) != TASK_OK) {
        printf("not ok - %s: spawn: %s\n", path, lua_tostring(L, -1));
        failed = 1;
    } else {
        lua_pop(L, 1);
        task_tick(s, runner_now);
        for (;;) {
            uint64_t wait;
            if (task_count(s, -1) == 0) break;
            wait = task_timeout(s, real_clock ? mono_ns() : runner_now);
            if (wait == TASK_FOREVER) {
                printf("not ok - %s: deadlock: %d task(s) wait and nothing can wake them\n", path, task_count(s, -1));
                failed = 1;
                break;
            }
            if (real_clock) {
                struct timespec ts;
                ts.tv_sec = (time_t)(wait / TASK_SEC);
                ts.tv_nsec = (long)(wait % TASK_SEC);
                if (wait) nanosleep(&ts, NULL);
                runner_now = mono_ns();
            } else runner_now += wait;
            if ((rc = task_tick(s, runner_now)) < 0) { printf("not ok - %s: task_tick: %d\n", path, rc); failed = 1; break; }
        }
    }
    /* An error outside the cases (the script's own chunk) fails the script. */
    lua_getglobal(L, "ERRORS");
    if (lua_istable(L, -1) && luaL_len(L, -1) > 0) {
        lua_rawgeti(L, -1, 1);
        lua_getfield(L, -1, "err");
        printf("not ok - %s: error outside the cases: %s\n", path, luaL_tolstring(L, -1, NULL));
        failed = 1;
    }
    lua_settop(L, 0);
    fflush(stdout);
    lua_close(L);
    if (task_count(s, -1) != 0) {
        printf("not ok - %s: %d task(s) left in the scheduler after lua_close\n", path, task_count(s, -1));
        failed = 1;
    }
    task_destroy(s);
    if (a.bytes != 0) {
        printf("not ok - %s: %lu bytes leaked\n", path, (unsigned long)a.bytes);
        failed = 1;
    } else printf("ok - %s: no bytes leaked\n", path);
    return failed;
}

int main(int argc, char **argv) {
    int i, failed = 0;
    (void)test_done; (void)test__name; (void)test__failed_in_case; /* the rest of testlib.h */
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--real-clock") == 0) real_clock = 1;
        else failed |= run_script(argv[i]);
    }
    return failed;
}
