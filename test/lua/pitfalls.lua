-- pitfalls.lua: the Lua 5.4 pitfalls a binding must handle: anchored threads,
-- handles the collector takes, values piling up on stacks, yields across C
-- calls, and plain coroutines inside tasks.
local task = require "task"
local T = require "testing"

T.case("anchored threads: tasks with no handle survive full GCs while suspended", function()
  local done = 0
  local ch = task.channel()
  local before = {}
  for t in pairs(task.tasks()) do before[t] = true end
  for i = 1, 50 do
    task.spawn(function()
      if i % 3 == 0 then task.sleep(i) elseif i % 3 == 1 then ch:recv() else task.wait(task.alloc() and task.alloc() or 0) end
      done = done + 1
    end)
  end
  task.yield()
  collectgarbage(); collectgarbage()
  for _ = 1, 17 do ch:send(true) end
  task.sleep(60)
  collectgarbage(); collectgarbage()
  T.ok(done >= 33, "sleepers and receivers finished: " .. done)
  -- the rest wait for external ids nobody resumes: abort them via tasks()
  for t, info in pairs(task.tasks()) do if info.status == "WAIT" and not before[t] then t:abort() end end
end)

T.case("GC of dropped handles: the task still runs to the end", function()
  local finished = false
  task.spawn(function() task.sleep(10); finished = true end)
  collectgarbage(); collectgarbage()
  task.sleep(5)
  collectgarbage(); collectgarbage()
  task.sleep(10)
  T.eq(finished, true)
end)

T.case("GC of a dropped handle of a finished task releases it", function()
  local before = 0
  for _ in pairs(task.tasks()) do before = before + 1 end
  for _ = 1, 20 do task.spawn(function() return 1 end) end
  task.yield()
  collectgarbage(); collectgarbage()
  local after = 0
  for _ in pairs(task.tasks()) do after = after + 1 end
  T.eq(after, before)
end)

T.case("yielded values do not pile up on a task's stack (plain coroutine.yield raises for them)", function()
  local errs = 0
  local t = task.spawn(function()
    for _ = 1, 20000 do
      local ok, e = pcall(coroutine.yield, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, {})
      if not ok and tostring(e):find("coroutine.yield: a task yields nothing", 1, true) then errs = errs + 1 end
    end
    return "done"
  end)
  collectgarbage(); local m0 = collectgarbage("count")
  for _ = 1, 100 do task.yield() end
  collectgarbage(); local m1 = collectgarbage("count")
  T.ok(m1 - m0 < 256, ("memory grew %.0f KB over 100 yields"):format(m1 - m0))
  T.eq(t:join(), "done")
  T.eq(errs, 20000)
  collectgarbage(); local m2 = collectgarbage("count")
  T.ok(m2 - m0 < 256, ("memory grew %.0f KB over 20000 yields"):format(m2 - m0))
end)

T.case("values handed to a task do not pile up (many wakeups and sends)", function()
  local ch = task.channel(1)
  local t = task.spawn(function()
    local n = 0
    for _ = 1, 5000 do n = n + (task.wait() or 0); n = n + ch:recv() end
    return n
  end)
  collectgarbage(); local m0 = collectgarbage("count")
  for _ = 1, 5000 do task.yield(); task.wakeup(t, 1); ch:send(1) end
  T.eq(t:join(), 10000)
  collectgarbage(); local m1 = collectgarbage("count")
  T.ok(m1 - m0 < 256, ("memory grew %.0f KB"):format(m1 - m0))
end)

T.case("a failed task keeps its traceback after its thread is closed", function()
  local t = task.spawn(function()
    local function deep_function_name() task.sleep(1); error("deep", 0) end
    deep_function_name()
  end)
  T.raises("deep", t.join, t)
  collectgarbage()
  local tb = t:traceback()
  T.ok(tb:find("deep_function_name", 1, true), tb)
  T.ok(tb:find("stack traceback", 1, true), tb)
  local live = task.spawn(function() task.sleep(5) end)
  task.yield()
  T.ok(live:traceback():find("sleep", 1, true), "a live task's traceback")
  live:join()
end)

-- Each module function that may suspend, called normally from a task in
-- the ways Lua 5.4 allows (pcall, xpcall, metamethods, iterators).
local suspending = {
  sleep = function() task.sleep(1) end,
  yield = function() task.yield() end,
  ["wait(id)"] = function() local id = task.alloc(); task.resume(id, 1); task.wait(id) end,
  external = function() task.external(function(id) host_resume_later(id, 1, 1) end) end,
  join = function() task.spawn(function() task.sleep(1) end):join() end,
  send = function() local ch = task.channel(1); ch:send(1); task.spawn(function() ch:recv() end); ch:send(2) end,
  recv = function() local ch = task.channel(); task.spawn(function() ch:send(1) end); ch:recv() end,
  select = function() task.select({task.channel(), task.timer(1)}) end,
  timer = function() task.timer(1):wait() end,
  scope = function() task.scope(function(sc) sc:spawn(task.sleep, 1) end) end,
  all = function() task.all(function() task.sleep(1) end) end,
  race = function() task.race(function() task.sleep(1) end) end,
  timeout = function() task.timeout(5, function() task.sleep(1) end) end,
  with_timeout = function() task.with_timeout(5, function() task.sleep(1) end) end,
  await = function() task.await(task.timer(1)) end,
}
local names = {}
for k in pairs(suspending) do names[#names + 1] = k end
table.sort(names)

T.case("no 'attempt to yield across a C-call boundary' from any function called normally", function()
  for _, name in ipairs(names) do
    local f = suspending[name]
    local ok, e = pcall(f)
    T.ok(ok, name .. " in pcall: " .. tostring(e))
    ok, e = xpcall(f, debug.traceback)
    T.ok(ok, name .. " in xpcall: " .. tostring(e))
    local proxy = setmetatable({}, {__index = function() f(); return true end, __add = function() f(); return 1 end,
                                    __call = function() f(); return "c" end})
    T.eq(proxy.x, true, name .. " in __index")
    T.eq(proxy + 1, 1, name .. " in __add")
    T.eq(proxy(), "c", name .. " in __call")
    for _ in function(_, c) if not c then f(); return 1 end end do end
  end
end)

T.case("suspending where Lua cannot yield raises a clear error naming the function", function()
  for _, name in ipairs({"sleep", "yield", "join", "timer", "scope"}) do
    local ok, e = pcall(table.sort, {3, 2, 1}, function(a, b) suspending[name](); return a < b end)
    T.eq(ok, false)
    T.ok(not tostring(e):find("C-call boundary", 1, true), name .. ": " .. tostring(e))
    T.ok(tostring(e):find("cannot suspend here", 1, true), name .. ": " .. tostring(e))
  end
  local ok, e = pcall(string.gsub, "a", "a", function() task.sleep(1) end)
  T.eq(ok, false)
  T.ok(tostring(e):find("task.sleep: cannot suspend here", 1, true), tostring(e))
end)

local nested = {
  ["task.sleep"] = function() task.sleep(1) end,
  ["task.yield"] = function() task.yield() end,
  ["task.wait"] = function() task.wait() end,
  ["Task:join"] = function() task.spawn(function() end):join() end,
  ["Channel:send"] = function() local ch = task.channel(1); ch:send(1); ch:send(2) end,
  ["Channel:recv"] = function() task.channel():recv() end,
  ["task.select"] = function() task.select({task.channel()}) end,
  ["Timer:wait"] = function() task.timer(1):wait() end,
  ["task.scope"] = function() task.scope(function() end) end,
  ["task.all"] = function() task.all(function() end) end,
  ["task.race"] = function() task.race(function() end) end,
  ["task.timeout"] = function() task.timeout(1, function() end) end,
  ["task.with_timeout"] = function() task.with_timeout(1, function() end) end,
  ["task.external"] = function() task.external(function() end) end,
}

T.case("a suspending function called from a plain coroutine nested in a task raises naming it", function()
  local keys = {}
  for k in pairs(nested) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, name in ipairs(keys) do
    local co = coroutine.create(nested[name])
    local ok, e = coroutine.resume(co)
    T.eq(ok, false, name)
    T.ok(tostring(e):find(name .. ": cannot suspend from a coroutine nested inside a task", 1, true),
         name .. ": " .. tostring(e))
  end
  -- and the task itself is unharmed
  task.sleep(1)
  local co = coroutine.wrap(function() coroutine.yield(task.channel(1):try_send(1)); return task.running() end)
  T.eq(co(), true)
  T.eq(co(), task.running(), "non-suspending functions work there")
end)

T.case("a plain coroutine.yield() in a task body behaves like task.yield()", function()
  local n = 0
  local t = task.spawn(function()
    for _ = 1, 3 do n = n + 1; local r = table.pack(coroutine.yield()); assert(r.n == 0) end
    return "done"
  end)
  task.yield(); T.eq(n, 1)
  T.eq(task.status(t), "READY")
  task.yield(); T.eq(n, 2)
  task.yield(); T.eq(n, 3)
  T.eq(t:join(), "done")
end)

T.case("a plain coroutine.yield() raises 'task cancelled' once the task is cancelled, like task.yield()", function()
  local t = task.spawn(function()
    local ok, e = pcall(function() for _ = 1, 100 do coroutine.yield() end end)
    return ok, e
  end)
  task.yield()
  t:cancel()
  local ok, e = t:join()
  T.eq(ok, false); T.eq(e, "task cancelled")
end)

T.case("coroutines inside a task still work normally", function()
  local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
  T.eq(gen(), 1); task.sleep(1); T.eq(gen(), 2); T.eq(gen(), 3)
end)

T.run()
