-- The configuration of luacheck for every Lua file of the repository
-- (make test, suite luacheck: test/luacheck.sh). The scripts run on Lua
-- 5.4 and 5.5; 5.4's standard library is the part they share.
std = "lua54"
-- Test tables and assertions read better on one line.
max_line_length = false
-- `local ok, err = pcall(f)` where only err matters, and the like.
unused_secondaries = false

-- The test runner (test/lua_runner.c) gives the scripts in test/lua the
-- module as the global task, the script's name, host_resume(id, ...) and
-- host_resume_later(id, ms, ...) (completions from the host, as C would),
-- host_advance(ms) (virtual time passing inside a step),
-- and the table ERRORS, which collects errors of tasks nobody waits for.
files["test/lua"] = {
  read_globals = { "task", "SCRIPT", "host_resume", "host_resume_later", "host_advance" },
  globals = { "ERRORS" },
}

-- The LuaLS definitions: functions declared for the language server, with
-- parameters and no bodies.
files["types/task.lua"] = { unused = false }
