-- LuaRocks: `luarocks make` in this directory builds the standalone module
-- with LuaRocks' own builtin backend (packaging/task_module.c: task_lua.h
-- compiled as C, the same build as `make module`) and installs the LuaLS
-- definitions (types/) in the rock's directory, and the luv adapter
-- (task/luv.lua, require "task.luv"). The version is task.h's
-- TASK_VERSION (make test checks that they agree).
rockspec_format = "3.0"
package = "task"
version = "0.2.0-1"
source = {
  -- the project's public repository once it has one: luarocks make builds
  -- from this directory and fetches nothing
  url = "git+https://example.invalid/task.h.git",
  tag = "v0.2.0",
}
description = {
  summary = "Coroutine scheduler for Lua 5.4 and 5.5 from a single-header C core",
  detailed = [[
    task.h is a scheduling core in one C header; task_lua.h binds it to Lua.
    Scripts write `local task = require "task"` and get spawn/join, sleep,
    wait/wakeup, external resumes, cancellation, scopes, timeouts, race/all,
    channels, select and tracing; task.run(fn) drives the loop.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.6",
}
build = {
  type = "builtin",
  modules = {
    task = {
      sources = { "packaging/task_module.c" },
    },
    -- the luv adapter; luv itself is the user's choice, not a dependency
    ["task.luv"] = "task/luv.lua",
  },
  copy_directories = { "types" },
}
