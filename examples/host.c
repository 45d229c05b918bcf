/* host: a C program that embeds Lua, opens the task module and drives the
 * scheduler from a poll() loop, with the timeout the core computes.
 *
 *   build/host [--fake-clock] [script.lua [args...]]   (default: examples/demo.lua)
 *
 * --fake-clock jumps the clock to the next deadline instead of sleeping,
 * so the output can be compared in tests; the order of events is the same.
 * This is the shape of any host loop: tick, then block until the next
 * deadline or an fd is ready (add your sockets to the poll set).
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#include <lualib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv) {
    const char *script = "examples/demo.lua";
    int fake = 0, i = 1, nargs = 0, status = 0;
    uint64_t clock = 0;
    task_sched *s;
    lua_State *L;
    if (i < argc && strcmp(argv[i], "--fake-clock") == 0) { fake = 1; i++; }
    if (i < argc) script = argv[i++];

    s = task_create(NULL, NULL);
    L = luaL_newstate();
    if (!s || !L) { fprintf(stderr, "host: out of memory\n"); return 1; }
    luaL_openlibs(L);
    task_lua_open(L, s);                       /* require "task" now works */
    lua_pop(L, 1);

    if (luaL_loadfile(L, script) != LUA_OK) {
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        return 1;
    }
    for (; i < argc; i++, nargs++) lua_pushstring(L, argv[i]);
    if (task_lua_spawn(L, nargs, NULL) != TASK_OK) { /* the script is the main task */
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_pop(L, 1);

    clock = fake ? 0 : now_ns();
    for (;;) {
        int wait_ms;
        task_tick(s, clock);
        if (task_count(s, -1) == 0) break;     /* every task has ended */
        if (fake) {
            uint64_t wait = task_timeout(s, clock);
            if (wait == TASK_FOREVER) { status = 2; break; }
            clock += wait;
            continue;
        }
        wait_ms = task_timeout_ms(s, now_ns());
        if (wait_ms < 0) {                     /* nothing can wake them: no fds here */
            fprintf(stderr, "host: %d task(s) wait for nothing\n", task_count(s, -1));
            status = 2;
            break;
        }
        poll(NULL, 0, wait_ms);                /* your fds go here */
        clock = now_ns();
    }
    lua_close(L);                              /* frees live Lua tasks too */
    task_destroy(s);
    return status;
}
