/* The standalone Lua module (luaopen_task) as a C file, for build tools
 * that compile only .c sources, such as LuaRocks' builtin backend: the
 * same build as `make module`, which compiles task_lua.h as C with these
 * three macros. */
#define TASK_LUA_MODULE
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
