-- cancel.lua: cancellation at every suspension point, level-triggered
-- re-raise after pcall, and to-be-closed variables on every way out.
local task = require "task"
local T = require "testing"
local H = require "helpers"

-- Each point suspends the task indefinitely (or for long) when not cancelled.
local points = {
  sleep = function() task.sleep(10000) end,
  ["sleep(0)"] = function() task.sleep(0) end,
  yield = function() task.yield() end,
  wait = function() task.wait() end,
  ["wait(id)"] = function() task.wait(task.alloc()) end,
  external = function() task.external(function() end) end,
  join = function() local x = task.spawn(function() task.sleep(20000) end); x:detach(); x:join() end,
  ["Task:wait"] = function() local x = task.spawn(function() task.sleep(20000) end); x:detach(); x:wait() end,
  ["Channel:send"] = function() local ch = task.channel(1); ch:send(1); ch:send(2) end,
  ["Channel:recv"] = function() task.channel():recv() end,
  ["Channel:wait"] = function() task.channel():wait() end,
  select = function() task.select({task.channel(), task.timer(10000)}) end,
  ["Timer:wait"] = function() task.timer(10000):wait() end,
  await = function() task.await(task.timer(10000)) end,
  all = function() task.all(function() task.sleep(10000) end) end,
  race = function() task.race(function() task.sleep(10000) end) end,
  timeout = function() task.timeout(50000, function() task.sleep(10000) end) end,
  checkpoint = function() for _ = 1, 3 do task.yield() end; task.checkpoint(); task.sleep(10000) end,
}
local names = {}
for k in pairs(points) do names[#names + 1] = k end
table.sort(names)

for _, name in ipairs(names) do
  local point = points[name]
  T.case("cancel while suspended in " .. name .. ": woken at once, 'task cancelled', re-raised after pcall", function()
    local t = task.spawn(function()
      local ok, e = pcall(point)
      local ok2, e2 = pcall(task.sleep, 5)
      local ok3, e3 = pcall(task.checkpoint)
      local ok4, e4 = pcall(point)
      return ok, e, ok2, e2, ok3, e3, ok4, e4
    end)
    task.yield()
    local t0 = task.now()
    T.eq(t:cancel(), true)
    local ok, e, ok2, e2, ok3, e3, ok4, e4 = t:join()
    T.eq(ok, false, name); T.eq(e, "task cancelled", name)
    T.eq(ok2, false); T.eq(e2, "task cancelled")
    T.eq(ok3, false); T.eq(e3, "task cancelled")
    T.eq(ok4, false, name .. " again"); T.eq(e4, "task cancelled", name .. " again")
    T.ok(task.now() - t0 < 1, name .. ": woken at once, not at its deadline")
  end)

  T.case("already cancelled before " .. name .. ": raises at once", function()
    local tk = task.cancel_token()
    tk:cancel()
    local t = task.spawn({token = tk}, function()
      local ok, e = pcall(point)
      return ok, e
    end)
    local ok, e = t:join()
    T.eq(ok, false); T.eq(e, "task cancelled")
  end)
end

T.case("cancelled task: an uncaught 'task cancelled' ends it; join re-raises; no handler error", function()
  local t = task.spawn(function() task.sleep(100) end)
  task.yield()
  t:cancel()
  local ok, e = pcall(t.join, t)
  T.eq(ok, false); T.eq(e, "task cancelled")
  local u = task.spawn(function() task.sleep(100) end) -- nobody joins it
  task.yield()
  u:cancel()
  task.sleep(1)
  T.eq(#T.errors(), 0)
  T.eq(u:done(), true)
end)

T.case("a cancelled task may finish its work between suspension points and return", function()
  local t = task.spawn(function()
    local ok = pcall(task.sleep, 100)
    local x = 0
    for i = 1, 10 do x = x + i end
    return ok, x
  end)
  task.yield()
  t:cancel()
  local ok, x = t:join()
  T.eq(ok, false); T.eq(x, 55)
end)

T.case("to-be-closed: closed on return", function()
  local log = {}
  local t = task.spawn(function() local _ <close> = H.closer(log, "ret"); task.sleep(1); return 1 end)
  T.eq(t:join(), 1)
  T.same(log, {"ret"}); T.eq(log.err, nil)
end)

T.case("to-be-closed: closed on error, with the error", function()
  local log = {}
  local t = task.spawn(function() local _ <close> = H.closer(log, "err"); task.sleep(1); error("bad", 0) end)
  T.raises("bad", t.join, t)
  T.same(log, {"err"}); T.eq(log.err, "bad")
end)

T.case("to-be-closed: closed on cancel", function()
  local log = {}
  local t = task.spawn(function() local _ <close> = H.closer(log, "cancel"); task.sleep(1000) end)
  task.yield()
  t:cancel()
  T.raises("task cancelled", t.join, t)
  T.same(log, {"cancel"}); T.eq(log.err, "task cancelled")
end)

T.case("to-be-closed: closed on abort, innermost first, in every frame", function()
  local log = {}
  local t = task.spawn(function()
    local _ <close> = H.closer(log, "outer")
    local function inner()
      local _ <close> = H.closer(log, "inner")
      task.wait()
    end
    inner()
  end)
  task.yield()
  t:abort()
  T.raises("task aborted", t.join, t)
  T.same(log, {"inner", "outer"})
end)

T.case("to-be-closed: a task whose __close errors reports that error", function()
  local t = task.spawn(function()
    local _ <close> = setmetatable({}, {__close = function() error("close failed", 0) end})
    error("first", 0)
  end)
  local ok, e = pcall(t.join, t)
  T.eq(ok, false); T.eq(e, "close failed")
end)

T.case("cancel while closing a scope: children are cancelled, the scope ends at once, the next suspension raises", function()
  local child
  local t = task.spawn(function()
    local ok, e = pcall(task.scope, function(sc)
      child = sc:spawn(function() local ok, e = pcall(task.sleep, 10000); return ok, e end)
      return "body"
    end)
    local ok2, e2 = pcall(task.yield)
    return ok, e, ok2, e2
  end)
  task.yield(); task.yield()
  local t0 = task.now()
  t:cancel()
  local ok, e, ok2, e2 = t:join()
  T.eq(task.now(), t0, "at once")
  T.eq(ok2, false); T.eq(e2, "task cancelled")
  local cok, ce = child:join()
  T.eq(cok, false); T.eq(ce, "task cancelled")
  -- design question: the scope call itself returns normally (ok == true,
  -- e == "body") rather than raising "task cancelled"; not asserted here.
  T.ok(ok == true or e == "task cancelled", "either")
end)

T.case("the token of a task is inherited by the tasks it spawns", function()
  local tk = task.cancel_token()
  local inner
  local t = task.spawn({token = tk}, function()
    inner = task.spawn(function() local ok, e = pcall(task.sleep, 10); return ok, e end)
    pcall(task.sleep, 100)
    return "outer"
  end)
  task.yield()
  tk:cancel()
  T.eq(t:join(), "outer")
  local ok, e = inner:join()
  T.eq(ok, false); T.eq(e, "task cancelled")
end)

T.run()
