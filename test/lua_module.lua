-- lua_module.lua: the standalone module (make module: build/task.so) in the
-- stock lua5.4, with task.run and the real clock.
--   lua5.4 test/lua_module.lua build
local dir = arg and arg[1] or "build"
package.cpath = dir .. "/?.so;" .. package.cpath
local task = require "task"
local failed = 0
local function case(name, fn)
  local ok, err = pcall(fn)
  print((ok and "ok - " or "not ok - ") .. "module: " .. name)
  if not ok then failed = failed + 1; print("# " .. tostring(err)) end
end
local function eq(a, b, what) if a ~= b then error(("%s: got %s, want %s"):format(what or "value", tostring(a), tostring(b)), 2) end end

case("require returns the same table twice; task.run exists", function()
  eq(require "task", task); eq(type(task.run), "function")
end)

case("suspending outside a task raises naming the function", function()
  local ok, e = pcall(task.sleep, 1)
  eq(ok, false); eq(e, "task.sleep: must be called from inside a task")
  ok, e = pcall(task.channel().recv, task.channel())
  eq(ok, false); eq(e, "Channel:recv: must be called from inside a task")
end)

case("run(fn, ...) returns fn's results", function()
  local r = table.pack(task.run(function(a, b) task.sleep(1); return a + b, "x", nil end, 40, 2))
  eq(r.n, 3); eq(r[1], 42); eq(r[2], "x"); eq(r[3], nil)
end)

case("run raises fn's error (the original value)", function()
  local obj = {}
  local ok, e = pcall(task.run, function() task.sleep(1); error(obj) end)
  eq(ok, false); eq(e, obj)
  ok, e = pcall(task.run, function() error("plain", 0) end)
  eq(e, "plain")
end)

case("run waits for every task, also ones fn did not join", function()
  local log = {}
  task.run(function()
    task.spawn(function() task.sleep(30); log[#log + 1] = "late" end)
    log[#log + 1] = "main done"
  end)
  eq(#log, 2); eq(log[2], "late")
end)

case("run sleeps, not spins: little CPU over a 200 ms sleep; the real clock moves", function()
  local c0, t0 = os.clock(), nil
  local elapsed = task.run(function() t0 = task.now(); task.sleep(200); return task.now() - t0 end)
  local cpu = os.clock() - c0
  if not (elapsed >= 200 and elapsed < 1000) then error("elapsed " .. elapsed) end
  if cpu > 0.05 then error(("cpu %.3f s over a 200 ms sleep"):format(cpu)) end
end)

case("run with timers, channels and a timeout on the real clock", function()
  local r, e = task.run(function()
    local ch = task.channel(1)
    task.spawn(function() task.sleep(5); ch:send("v") end)
    local v = ch:recv()
    local r1, e1 = task.timeout(10, function() task.sleep(500) end)
    return v, e1
  end)
  eq(r, "v"); eq(e, "timeout")
end)

case("run reports a deadlock", function()
  local ok, e = pcall(task.run, function() task.wait() end)
  eq(ok, false)
  if not tostring(e):find("task.run: deadlock", 1, true) then error(tostring(e)) end
  -- and recovers: the stuck task does not block the next run forever
end)

case("run is not reentrant", function()
  local ok, e = pcall(task.run, function() return task.run(function() end) end)
  eq(ok, false)
  if not tostring(e):find("task.run: already running", 1, true) then error(tostring(e)) end
end)

case("a task's unjoined error goes to stderr, run goes on", function()
  local r = task.run(function()
    task.spawn(function() error("to stderr", 0) end)
    task.sleep(2)
    return "fine"
  end)
  eq(r, "fine")
end)

os.exit(failed == 0 and 0 or 1)
