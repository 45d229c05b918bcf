-- pool.lua: threads of tasks that returned are reused for new tasks; the
-- next task finds nothing of the previous one.
local task = require "task"
local T = require "testing"

-- Spawns fn as the first task after an empty pool was refilled with one
-- thread, so it runs on that thread; returns its results and whether the
-- thread was the reused one.
local function on_reused_thread(first, second)
  local size = task.pool()
  task.pool(0); task.pool(size) -- empty
  local th
  local a = task.spawn(function(...) th = coroutine.running(); return first(...) end)
  a:join()
  local b = task.spawn(function(...) return coroutine.running() == th, second(...) end)
  return b:join()
end

T.case("a returned task's thread runs the next task", function()
  local same = on_reused_thread(function() end, function() end)
  T.eq(same, true)
  local _, idle = task.pool()
  T.ok(idle >= 1, "idle threads: " .. idle)
end)

T.case("nothing of the previous task reaches the next one", function()
  local log = {}
  local same, hook, nlocals, trace, args = on_reused_thread(function()
    local _ <close> = setmetatable({}, {__close = function() log[#log + 1] = "closed once" end})
    debug.sethook(coroutine.running(), function() end, "l")
    task.traceset(0x123450000)
    local up = "old upvalue"
    return function() return up end
  end, function(...)
    local n = 0 -- the caller's named locals (not its temporaries, nor 5.5's "(vararg table)")
    for i = 1, 255 do
      local name = debug.getlocal(2, i)
      if not name then break end
      if name:sub(1, 1) ~= "(" then n = n + 1 end
    end
    return debug.gethook(), n, task.traceset(0), select("#", ...)
  end)
  T.eq(same, true)
  T.eq(hook, nil, "no debug hook")
  T.eq(trace, 0, "the trace id is the spawner's")
  T.same(log, {"closed once"})
  T.eq(args, 0)
  T.eq(nlocals, 0, "named locals the next task sees in its caller")
end)

T.case("a failed or aborted task's thread is not reused; tracebacks stay whole", function()
  local size = task.pool()
  task.pool(0); task.pool(size)
  local f = task.spawn(function() error("boom") end)
  pcall(f.join, f)
  local _, idle = task.pool()
  T.eq(idle, 0, "a failed task's thread is closed, not pooled")
  local a = task.spawn(function() task.sleep(100) end)
  task.yield(); a:abort(); task.yield()
  _, idle = task.pool()
  T.eq(idle, 0, "an aborted task's thread is not pooled")
  -- a task on a reused thread fails with its own, whole traceback
  local ok = task.spawn(function() return 1 end); ok:join()
  local function deep(n) if n == 0 then error("deep") end; return deep(n - 1) + 1 end
  local e = task.spawn(function() return deep(3) end)
  local okj, err = pcall(e.join, e)
  T.eq(okj, false)
  T.ok(tostring(err):find("deep", 1, true), tostring(err))
  local tb = e:traceback()
  T.ok(tb:find("in upvalue 'deep'", 1, true) or tb:find("in function 'deep'", 1, true) or tb:find("in local 'deep'", 1, true), tb)
  T.ok(not tb:find("th1", 1, true))
end)

T.case("pool(n): bounded, settable, and the collector trims what is not used", function()
  local old = task.pool(4)
  local ts = {}
  for i = 1, 10 do ts[i] = task.spawn(function() return i end) end
  for i = 1, 10 do ts[i]:join() end
  local size, idle = task.pool()
  T.eq(size, 4); T.eq(idle, 4)
  collectgarbage(); collectgarbage()
  size, idle = task.pool()
  T.ok(idle < 4, "idle after two cycles with no spawn: " .. idle)
  task.pool(0)
  size, idle = task.pool()
  T.eq(size, 0); T.eq(idle, 0)
  task.spawn(function() end):join()
  size, idle = task.pool()
  T.eq(idle, 0, "pool off")
  task.pool(old)
  T.raises("pool size must be 0..1000000", task.pool, -1)
end)

T.run()
