-- observe.lua: what every task waits on (task.tasks), task.dump, task.hook's
-- switch hooks, task.profile's statistics and task.warn_slow. The runner's
-- clock is virtual: host_advance(ms) lets time pass inside a step, so the
-- figures below are exact.
local task = require "task"
local T = require "testing"

local function entry(t) return task.tasks()[t] end

-- Parks a task with park(), checks what tasks() says of it, then wakes it
-- with wake() and checks that the wait is gone.
local function parked(wait, park, wake, check)
  local t = task.spawn({name = wait}, park)
  task.sleep(10)
  local e = entry(t)
  T.ok(e, wait .. ": listed")
  T.eq(e.wait, wait, "wait kind")
  T.eq(e.since, 10, wait .. ": since")
  T.eq(type(e.waits), "string", wait .. ": waits")
  T.eq(e.name, wait)
  T.eq(e.id, t.id)
  if check then check(e, t) end
  wake(t)
  task.yield()
  e = entry(t)
  if e then
    T.eq(e.wait, nil, wait .. ": cleared once woken")
    T.eq(e.target, nil, wait .. ": no target once woken")
  end
  if not t:done() then t:cancel() end
  pcall(t.join, t)
end

T.case("tasks(): every wait kind, its target, since, and cleared when woken", function()
  local now = task.now()
  parked("sleep", function() task.sleep(100) end, function(t) t:cancel() end, function(e)
    T.eq(e.status, "SLEEP")
    T.eq(e.deadline, now + 100, "deadline on task.now()'s clock")
    T.eq(e.target, nil)
  end)
  parked("wait", function() task.wait() end, function(t) task.wakeup(t) end, function(e)
    T.eq(e.status, "WAIT")
    T.eq(e.waits, "task.wakeup (task.wait)")
  end)
  local id = task.alloc()
  parked("external", function() task.wait(id) end, function() task.resume(id, 1) end, function(e)
    T.eq(e.target, id)
  end)
  local other = task.spawn(function() task.wait() end)
  parked("join", function() other:join() end, function() task.wakeup(other) end, function(e)
    T.eq(e.target, other)
  end)
  local ch = task.channel(1)
  parked("recv", function() ch:recv() end, function() ch:send(1) end, function(e)
    T.eq(e.target, ch)
    T.eq(e.waits, "a value from Channel (0/1)")
  end)
  ch:send("full")
  parked("send", function() ch:send(2) end, function() ch:recv() end, function(e)
    T.eq(e.target, ch)
  end)
  ch:recv()
  local tm = task.timer(1000)
  parked("timer", function() tm:wait() end, function(t) t:cancel() end, function(e)
    T.eq(e.target, tm)
  end)
  parked("select", function() task.select({task.channel(1), task.timer(1000)}) end, function(t) t:cancel() end,
    function(e) T.eq(e.waits, "the first of 2 awaitables (select)") end)
  parked("race", function() task.race(function() task.sleep(1000) end) end, function(t) t:cancel() end)
end)

T.case("tasks(): the running task, ready tasks and the fields of a plain task", function()
  local r = task.spawn(function() end)
  local all = task.tasks()
  local me = all[task.running()]
  T.eq(me.status, "RUN")
  T.eq(me.wait, nil)
  T.ok(me.traceback:find("observe.lua", 1, true), me.traceback)
  T.eq(all[r].status, "READY")
  T.eq(all[r].since, nil)
  T.eq(all[r].resumes, nil, "no statistics before task.profile")
  T.eq(all[r].spawned, nil, "no spawn place before task.profile")
  r:join()
  T.eq(task.tasks()[r], nil, "an ended task is not listed")
end)

T.case("dump(): one block per task, grouped RUN, READY, WAIT, SLEEP, to false, a function or :write", function()
  local ch = task.channel(1)
  local s = task.spawn({name = "sleeper"}, function() task.sleep(500) end)
  local w = task.spawn({name = "receiver"}, function() return ch:recv() end)
  task.yield()
  local r = task.spawn({name = "ready"}, function() end)
  local text = task.dump(false)
  T.ok(text:find("^task dump at [%d.]+ ms: %d+ tasks %(1 running, 1 ready, %d+ waiting, %d+ sleeping%)\n\n"), text)
  local pr = text:find("(" .. task.running().name .. ") RUN", 1, true)
  local pready = text:find("(ready) READY", 1, true)
  local pw = text:find("(receiver) WAIT for 0.0 ms: a value from Channel (0/1)", 1, true)
  local ps = text:find("(sleeper) SLEEP for 0.0 ms: the end of a sleep (due in 500.0 ms)", 1, true)
  T.ok(pr and pready and pw and ps, text)
  T.ok(pr < pready and pready < pw and pw < ps, "grouped by state")
  T.ok(text:find("in method 'recv'", 1, true) or text:find("in function 'recv'", 1, true), text)
  local got
  T.eq(task.dump(function(x) got = x end), got)
  T.eq(got:sub(1, 10), "task dump ")
  local sink = {n = 0}
  function sink:write(x) self.n = self.n + #x; return self end
  local t2 = task.dump(sink)
  T.eq(sink.n, #t2)
  T.raises("task.dump: out must be a file, an object with :write, a function or false, not a number", task.dump, 1)
  T.raises("task.dump: out has no write method", task.dump, {})
  s:cancel(); ch:send(1); w:join(); r:join(); pcall(s.join, s)
end)

T.case("hook(): resume and suspend bracket every run, with what it did; the old hooks come back", function()
  local log = {}
  local function name(t) return t.name or "?" end
  local p1, p2, p3, p4 = task.hook(nil, nil, function(t) log[#log + 1] = "resume " .. name(t) end,
    function(t, did) log[#log + 1] = "suspend " .. name(t) .. " " .. did end)
  T.eq(p1, nil); T.eq(p2, nil); T.eq(p3, nil); T.eq(p4, nil)
  local t = task.spawn({name = "x"}, function() task.yield(); task.sleep(1) end)
  t:join()
  local _, _, r, s = task.hook()
  T.eq(type(r), "function"); T.eq(type(s), "function")
  local mine = {}
  for _, l in ipairs(log) do if l:find(" x", 1, true) then mine[#mine + 1] = l end end
  T.same(mine, {"resume x", "suspend x yield", "resume x", "suspend x wait", "resume x", "suspend x end"})
  log = {}
  task.spawn(function() end):join()
  T.eq(#log, 0, "cleared")
end)

T.case("hook(): a hook that raises is reported and the task goes on; one that spawns works", function()
  local spawned
  task.hook(nil, nil, function() error("resume hook failed") end, function(t, did)
    if did == "end" and t.name == "a" then spawned = task.spawn(function() return 42 end) end
  end)
  local a = task.spawn({name = "a"}, function() return "done" end)
  T.eq(a:join(), "done")
  task.hook()
  T.ok(spawned, "the suspend hook spawned")
  T.eq(spawned:join(), 42)
  local errs = T.errors()
  T.ok(#errs >= 1, "reported")
  T.ok(tostring(errs[1].err):find("resume hook failed", 1, true), tostring(errs[1].err))
end)

T.case("hook(): a suspend hook that closes the task's thread cannot crash the host", function()
  local co
  task.hook(nil, nil, nil, function(t, did)
    if t.name == "victim" and did == "end" and co then coroutine.close(co) end
  end)
  local v = task.spawn({name = "victim"}, function() co = coroutine.running(); error("boom") end)
  local ok, err = pcall(v.join, v)
  task.hook()
  T.eq(ok, false)
  T.ok(tostring(err):find("boom", 1, true) or tostring(err):find("outside the scheduler", 1, true), tostring(err))
  local v2 = task.spawn({name = "victim"}, function() co = coroutine.running(); return 1, 2 end)
  task.hook(nil, nil, nil, function(t, did)
    if t.name == "victim" and did == "end" and co then coroutine.close(co) end
  end)
  ok, err = pcall(v2.join, v2)
  task.hook()
  T.ok(ok == false or err == 1, tostring(err))
end)

T.case("hook(): bad arguments", function()
  T.raises("bad argument #3", task.hook, nil, nil, 1)
  T.raises("bad argument #4", task.hook, nil, nil, nil, "x")
end)

T.case("warn_slow(): a resume over the limit goes to the error handler, with the task and 'slow'", function()
  T.eq(task.warn_slow(20), nil)
  local t = task.spawn({name = "hog"}, function() host_advance(30); task.yield(); host_advance(5) end)
  t:join()
  T.eq(task.warn_slow(nil), 20)
  local errs = T.errors()
  T.eq(#errs, 1)
  T.eq(errs[1].err, "one resume ran 30.0 ms (task.warn_slow: 20.0 ms)")
  T.eq(errs[1].task, t)
  T.eq(errs[1].kind, "slow")
  T.ok(tostring(errs[1].traceback):find("observe.lua", 1, true), tostring(errs[1].traceback))
  local u = task.spawn(function() host_advance(30) end)
  u:join()
  T.eq(#T.errors(), 0, "off")
  T.raises("task.warn_slow: invalid duration", task.warn_slow, -1)
end)

T.case("profile(): resumes, busy and longest are exact on the host's clock; spawned names the place", function()
  T.eq(task.profile(), false)
  local line = debug.getinfo(1, "l").currentline + 1
  local t = task.spawn({name = "worker"}, function() host_advance(5); task.yield(); host_advance(2); task.sleep(100) end)
  task.yield()
  task.yield()
  local e = entry(t)
  T.eq(e.resumes, 2)
  T.eq(e.busy, 7)
  T.eq(e.longest, 5)
  T.ok(e.spawned:find("observe.lua:" .. line .. "$"), e.spawned)
  local text = task.dump(false)
  T.ok(text:find("%(worker%) SLEEP for [%d.]+ ms: the end of a sleep %(due in [%d.]+ ms%)\n    resumes 2, busy 7%.0 ms, longest 5%.0 ms, age "), text)
  T.ok(text:find("spawned at [^\n]*observe%.lua:" .. line .. "\n"), text)
  t:join()
  T.eq(task.profile(false), true)
  local u = task.spawn(function() task.sleep(1) end)
  task.yield()
  T.eq(entry(u).spawned, nil)
  T.eq(entry(u).resumes, 1, "statistics stay on")
  u:join()
end)

T.case("on_ready(): the host drives this scheduler", function()
  T.raises("task.on_ready: the host drives this scheduler", task.on_ready, function() end)
end)

T.run()
