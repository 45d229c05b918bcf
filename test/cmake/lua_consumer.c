/* task::lua: the binding, with the Lua that CMake found. */
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "task_lua.h"
#include <lualib.h>

int main(void) {
    task_sched *s = task_create(NULL, NULL);
    lua_State *L = luaL_newstate();
    uint64_t now = 0;
    if (!s || !L) return 1;
    luaL_openlibs(L);
    if (task_lua_open(L, s) != TASK_OK) return 2;
    lua_pop(L, 1);
    if (luaL_loadstring(L, "local task = require 'task'\n"
                           "task.sleep(5)\n"
                           "print(task._VERSION .. ' in ' .. _VERSION .. ' from CMake')") != LUA_OK ||
        task_lua_spawn(L, 0, NULL) != TASK_OK) return 3;
    lua_pop(L, 1);
    while (task_count(s, -1) > 0) {
        task_tick(s, now);
        now += task_timeout(s, now);
    }
    lua_close(L);
    return task_destroy(s) != TASK_OK;
}
