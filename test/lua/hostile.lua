-- hostile.lua: what an untrusted script can do to the binding from Lua
-- (SPEC "Untrusted scripts"): the coroutine library on a task's own thread,
-- weak lists and finalizers under task.select, metamethods called by hand,
-- aborts that must reach descendants, cancellation on entry of every
-- suspending call, and smaller contract points (durations, channel
-- capacities, traceparent headers, to-be-closed variables that suspend).
-- Every wait a broken binding could leave hanging is bounded by a timer
-- (the runner's clock is virtual: bounds cost no wall time).
--   HOSTILE_ONLY=<substring> build/lua_runner test/lua/hostile.lua
-- runs only the cases whose name contains the substring (HOSTILE_LIST=1:
-- lists the names and runs none).
local task = require "task"
local T = require "testing"

local only, list_cases = os.getenv("HOSTILE_ONLY"), os.getenv("HOSTILE_LIST")
local function case(name, fn)
  if list_cases then print("case: " .. name)
  elseif not only or name:find(only, 1, true) then T.case(name, fn) end
end

local function has(err, plain) return tostring(err):find(plain, 1, true) ~= nil end

-- Joins t, but gives up after ms of (virtual) time: "ok", values... /
-- "error", err / "timeout". Uses select, which delivers a Task's outcome
-- like join does.
local function bounded_join(t, ms)
  local r = table.pack(pcall(task.select, {t, task.timer(ms or 1000)}))
  if not r[1] then return "error", r[2] end
  if r[2] == 2 then return "timeout" end
  return "ok", table.unpack(r, 3, r.n)
end

-- Aborts what a failed case left behind, so the next case starts clean.
local function reap(...)
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t and not t:done() then t:abort() end
  end
end

-- Collects failed checks of a case and raises them together at its end.
local function checker()
  local bad = {}
  local C = {}
  function C.ok(cond, what) if not cond then bad[#bad + 1] = what end end
  function C.eq(got, want, what)
    if got ~= want then bad[#bad + 1] = ("%s: got %s, want %s"):format(what, tostring(got), tostring(want)) end
  end
  function C.done() if #bad > 0 then error(table.concat(bad, "\n"), 2) end end
  return C
end

-- A task parked in one of the ways a task parks, that kept its own thread.
local function parked_victim(kind, ch)
  local box = {}
  box.task = task.spawn({name = "victim-" .. kind}, function()
    box.th = coroutine.running()
    if kind == "select" then return task.select({ch})
    elseif kind == "recv" then return ch:recv()
    elseif kind == "sleep" then task.sleep(100); return "slept"
    elseif kind == "wait" then return task.wait()
    else coroutine.yield(); return "yielded" end
  end)
  return box
end
local PARK_KINDS = {"select", "recv", "sleep", "wait", "yield"}
local PARK_STATUS = {select = "WAIT", recv = "WAIT", sleep = "SLEEP", wait = "WAIT", yield = "READY"}

-- ---- 1. the coroutine library on a task's own thread ----------------------

for _, kind in ipairs(PARK_KINDS) do
  case("coroutine.resume of a task parked in " .. kind .. " from another task: false, 'outside the scheduler'; the task ends with that error; status stays 'suspended'", function()
    local C = checker()
    local ch = task.channel(1)
    local v = parked_victim(kind, ch)
    task.yield() -- the victim runs and parks (a plain yield: READY for the next tick)
    local th = v.th
    C.eq(task.status(v.task), PARK_STATUS[kind], "status of the parked task")
    -- (c) coroutine.status only looks
    C.eq(coroutine.status(th), "suspended", "coroutine.status of a parked task")
    C.eq(coroutine.status(th), "suspended", "coroutine.status again")
    C.eq(task.status(v.task), PARK_STATUS[kind], "status after coroutine.status")
    -- (a) resume by hand
    local ok, err = coroutine.resume(th, "intruder", 1, 2)
    C.eq(ok, false, "coroutine.resume returns")
    C.ok(has(err, "outside the scheduler"), "coroutine.resume's error: " .. tostring(err))
    local how, e = bounded_join(v.task, 1000)
    C.eq(how, "error", "the victim's end")
    C.ok(has(e, "outside the scheduler"), "the victim's error: " .. tostring(e))
    if kind == "select" or kind == "recv" then -- nothing it was waiting on is lost
      local r2 = task.spawn(function() return ch:recv() end)
      task.yield()
      C.eq(ch:send("later"), true, "send after the victim ended")
      local how2, got = bounded_join(r2, 1000)
      C.eq(how2, "ok", "another receiver got the later send")
      C.eq(got, "later", "its value")
      reap(r2)
    end
    reap(v.task)
    T.errors() -- the victim's error may have been reported too: not this case's concern
    C.done()
  end)
end

for _, kind in ipairs(PARK_KINDS) do
  case("coroutine.close of a task parked in " .. kind .. ": no crash, the channel still works, the task ends with 'closed outside the scheduler'", function()
    local C = checker()
    local ch = task.channel(1)
    local v = parked_victim(kind, ch)
    task.yield()
    pcall(coroutine.close, v.th) -- its own result is not specified
    v.th = nil
    collectgarbage(); collectgarbage()
    C.eq(ch:send("x"), true, "send on the channel it waited on")
    local r2 = task.spawn(function() return ch:recv() end)
    local how2, got = bounded_join(r2, 1000)
    C.eq(how2, "ok", "a later receiver")
    C.eq(got, "x", "the value was not handed to the dead task")
    local how, e = bounded_join(v.task, 1000)
    C.eq(how, "error", "the closed task's end")
    C.ok(has(e, "closed outside the scheduler"), "its error: " .. tostring(e))
    reap(r2, v.task)
    T.errors()
    C.done()
  end)
end

case("tasks resumed or closed by hand that nobody joins: their errors reach the error handler", function()
  local ch1, ch2 = task.channel(1), task.channel(1)
  local v1, v2 = parked_victim("recv", ch1), parked_victim("select", ch2)
  task.yield()
  local ok = coroutine.resume(v1.th, "intruder")
  pcall(coroutine.close, v2.th)
  v1.th, v2.th = nil, nil
  collectgarbage()
  task.sleep(1); task.sleep(1)
  local resumed, closed, all = false, false, {}
  for _, e in ipairs(T.errors()) do
    all[#all + 1] = tostring(e.err)
    if has(e.err, "closed outside the scheduler") then closed = true
    elseif has(e.err, "outside the scheduler") then resumed = true end
  end
  reap(v1.task, v2.task)
  T.errors()
  T.eq(ok, false, "coroutine.resume returns")
  T.ok(resumed and closed, "reported: {" .. table.concat(all, ", ") .. "}")
end)

-- ---- 2. task.select over weak lists and finalizers --------------------------

case("task.select over a weak list with the GC running: works or raises bad argument #1 to 'select', never crashes", function()
  local keep = task.channel(1)
  local worked, raised = 0, 0
  for i = 1, 2000 do
    local list = setmetatable({task.channel(1), keep}, {__mode = "v"})
    if i % 4 == 0 then collectgarbage("step") end
    local feeder = task.spawn(function()
      if i % 8 == 0 then collectgarbage() else collectgarbage("step") end
      keep:send(i)
    end)
    local ok, a, b = pcall(task.select, list)
    feeder:join()
    if ok then
      T.eq(a, 2, "index"); T.eq(b, i, "value")
      worked = worked + 1
    else
      T.ok(has(a, "bad argument #1 to 'select'") or has(a, "bad argument #1 to 'task.select'"), "select's error: " .. tostring(a))
      T.eq(keep:try_recv(), i, "the feeder's value is still queued")
      raised = raised + 1
    end
  end
  T.ok(worked > 0, "some selects worked")
end)

case("a finalizer that writes io.stdout (or nil) into the list while select runs: bad argument or a normal result, never a crash", function()
  local list, inside, hits = nil, false, 0
  local function fin()
    if inside and list then
      hits = hits + 1
      local v = hits % 3 ~= 0 and io.stdout or nil
      for k = 1, 4 do list[k] = v end
    end
  end
  -- a long list: select's one allocation (made before it reads the list)
  -- is large, so the collector step it pays for often reaches the finalizers
  local pad = {}
  for k = 1, 60 do pad[k] = task.channel(1) end
  local ok0, err0 = pcall(function()
    collectgarbage("incremental", 0, 400, 0) -- every allocation steps the collector
    for i = 1, 1500 do
      for _ = 1, 8 + i % 13 do setmetatable({}, {__gc = fin}) end
      list = {task.channel(1), task.channel(1), task.timer(0), table.unpack(pad)}
      inside = true
      local ok, a = pcall(task.select, list)
      inside = false
      list = nil
      if ok then T.eq(a, 3, "select's index (the timer) at " .. i)
      else T.ok(has(a, "bad argument"), "select's error: " .. tostring(a)) end
    end
  end)
  inside = false
  collectgarbage("incremental", 200, 100, 13)
  collectgarbage()
  T.ok(ok0, tostring(err0))
  T.ok(hits > 0, "the finalizer ran while select ran")
end)

-- ---- 5. metamethods called by hand -----------------------------------------

local function sample_objects()
  local t = task.spawn(function() return 1 end)
  task.yield()
  local sc
  task.scope(function(s) sc = s end)
  return {Task = t, Channel = task.channel(1), Timer = task.timer(1), CancelToken = task.cancel_token(), Scope = sc}
end
local CLASSES = {"Task", "Channel", "Timer", "CancelToken", "Scope"}
local METAMETHODS = {"__gc", "__index", "__newindex", "__tostring", "__call", "__close", "__len", "__eq", "__concat"}

case("metamethods called by hand with wrong values raise 'bad argument' for every class", function()
  local C = checker()
  local objs = sample_objects()
  local seen = {}
  for _, cls in ipairs(CLASSES) do
    local mt = debug.getmetatable(objs[cls])
    C.ok(type(mt) == "table", cls .. " has a metatable")
    for _, mm in ipairs(METAMETHODS) do
      local f = mt and rawget(mt, mm)
      if type(f) == "function" then
        seen[#seen + 1] = cls .. "." .. mm
        local wrong = {{"nil", nil}, {"io.stdout", io.stdout}, {"{}", {}}, {"5", 5}, {"'s'", "s"}}
        for _, other in ipairs(CLASSES) do
          if other ~= cls then wrong[#wrong + 1] = {"a " .. other, objs[other]} end
        end
        for _, w in ipairs(wrong) do
          local ok, err = pcall(f, w[2], "x", "y")
          C.ok(not ok and has(err, "bad argument"),
               ("%s.%s(%s): %s"):format(cls, mm, w[1], ok and "no error" or tostring(err)))
        end
      end
    end
  end
  C.ok(#seen >= 5, "metamethods found: " .. table.concat(seen, " "))
  collectgarbage()
  C.done()
end)

case("a real object's __gc called by hand, then the object used normally: works or raises a clear error, no crash", function()
  local C = checker()
  local function gc(o) return pcall(debug.getmetatable(o).__gc or function() end, o) end
  -- ok, v from a pcall (or a bounded join): the value it had before, or an error string
  local function fine(what, want, ok, v)
    if ok == true or ok == "ok" then C.eq(v, want, what)
    else C.ok(ok ~= "timeout" and type(v) == "string", what .. ": " .. tostring(ok) .. ", " .. tostring(v)) end
  end
  -- a live Task, then join
  local t = task.spawn(function() task.sleep(5); return "r" end)
  gc(t)
  fine("live Task join", "r", bounded_join(t, 1000))
  -- an ended Task, then join, cancel, abort, status
  local e = task.spawn(function() return "e" end)
  task.yield()
  gc(e)
  fine("ended Task join", "e", pcall(e.join, e))
  fine("ended Task cancel", false, pcall(e.cancel, e))
  pcall(e.abort, e); pcall(task.status, e); pcall(tostring, e)
  -- a Channel with a parked receiver, then send / recv
  local ch = task.channel(1)
  local r = task.spawn(function() return ch:recv() end)
  task.yield()
  gc(ch)
  fine("Channel send", true, pcall(ch.send, ch, "m"))
  fine("Channel recv", "m", bounded_join(r, 1000))
  fine("Channel try_send", true, pcall(ch.try_send, ch, 1))
  fine("Channel try_recv", 1, pcall(ch.try_recv, ch))
  -- a CancelToken with a task using it, then cancel
  local tok = task.cancel_token()
  local u = task.spawn({token = tok}, function() task.sleep(1e6) end)
  task.yield()
  gc(tok)
  fine("CancelToken cancel", true, pcall(tok.cancel, tok))
  pcall(tok.is_cancelled, tok); pcall(tok.check, tok)
  local how = bounded_join(u, 1000)
  if how == "timeout" then u:abort() end
  -- a Timer, then wait
  local tm = task.timer(2)
  gc(tm)
  local tw = task.spawn(function() return tm:wait() end)
  fine("Timer wait", true, bounded_join(tw, 1000))
  pcall(tm.cancel, tm); pcall(tm.done, tm)
  -- a Scope, from inside its function, then spawn
  local ok, err = pcall(task.scope, function(s)
    gc(s)
    local ok2, c = pcall(s.spawn, s, function() task.sleep(1); return "c" end)
    if ok2 then fine("Scope child join", "c", pcall(c.join, c)) end
    pcall(s.cancel, s)
  end)
  C.ok(ok or type(err) == "string", "scope after __gc: " .. tostring(err))
  reap(t, r, u, tw)
  collectgarbage(); collectgarbage()
  T.errors()
  C.done()
end)

-- ---- 8. abort reaches descendants -------------------------------------------

case("Task:abort reaches the task's scope children and their own children; a failing child's error is reported", function()
  local C = checker()
  local B, Cc, D
  local A = task.spawn({name = "A"}, function()
    task.scope(function(s)
      B = s:spawn(function()
        task.scope(function(s2)
          Cc = s2:spawn(function() task.wait() end)
          task.wait()
        end)
      end)
      D = s:spawn(function()
        local _ <close> = setmetatable({}, {__close = function() error("D failed", 0) end})
        pcall(task.sleep, 1e9)
      end)
      task.wait()
    end)
  end)
  task.sleep(1)
  C.ok(B and Cc and D, "A's scope spawned B, B's scope spawned C, and D")
  C.eq(A:abort(), true, "A:abort()")
  task.sleep(1); task.sleep(1)
  local sb, sc, sd = task.status(B), task.status(Cc), task.status(D)
  local errs = T.errors()
  C.ok(sb == nil or sb == "EXIT", "B ended: " .. tostring(sb))
  C.ok(sc == nil or sc == "EXIT", "C ended: " .. tostring(sc))
  C.ok(sd == nil or sd == "EXIT", "D ended: " .. tostring(sd))
  local reported = false
  for _, e in ipairs(errs) do if e.err == "D failed" then reported = true end end
  C.ok(reported, "D's error reached the error handler (" .. #errs .. " reported)")
  reap(B, Cc, D)
  local ok, e = pcall(A.join, A)
  C.ok(not ok and e == "task aborted", "A:join(): " .. tostring(e))
  ok, e = pcall(B.join, B)
  C.ok(not ok and e == "task aborted", "B:join(): " .. tostring(e))
  ok, e = pcall(Cc.join, Cc)
  C.ok(not ok and e == "task aborted", "C:join(): " .. tostring(e))
  T.errors()
  C.done()
end)

local function live_tasks()
  local n, set = 0, {}
  for t in pairs(task.tasks()) do n = n + 1; set[t] = true end
  return n, set
end

case("task.with_timeout aborts grandchildren that ignore cancellation: raises 'exceeded 10 ms', nothing it spawned lives on", function()
  local C = checker()
  local before, beforeset = live_tasks()
  local grand
  local w = task.spawn(function()
    return pcall(task.with_timeout, 10, function(sc)
      sc:spawn(function()
        task.scope(function()
          -- its own token: the scope's cancellation never reaches it, only an abort can
          grand = task.spawn({token = task.cancel_token()}, function()
            while true do pcall(task.sleep, 1e6) end
          end)
          task.wait()
        end)
      end)
      task.sleep(1e6)
    end)
  end)
  local how, ok, err = bounded_join(w, 5000)
  C.eq(how, "ok", "with_timeout returned")
  C.eq(ok, false, "with_timeout raised")
  C.eq(err, "task.with_timeout: exceeded 10 ms", "its error")
  task.sleep(1)
  local after, afterset = live_tasks()
  local left = {}
  for t in pairs(afterset) do if not beforeset[t] then left[#left + 1] = tostring(t) end end
  C.eq(after, before, "live tasks after with_timeout (left: " .. table.concat(left, ", ") .. ")")
  C.ok(grand ~= nil and grand:done(), "the grandchild ended")
  for t in pairs(afterset) do if not beforeset[t] then t:abort() end end
  reap(w)
  T.errors()
  C.done()
end)

-- ---- 10. cancellation on entry of every suspending call ---------------------

case("a cancelled task: recv, send, select, join, Timer:wait, checkpoint raise 'task cancelled' on entry and change nothing", function()
  local C = checker()
  local chr = task.channel(4); chr:send("queued-recv")
  local chs = task.channel(4)
  local chsel = task.channel(4); chsel:send("queued-select")
  local fin = task.spawn(function() return "r1", "r2" end)
  local tm = task.timer(0)
  task.sleep(1)
  C.eq(fin:done(), true, "the joined task has finished")
  C.eq(tm:done(), true, "the timer has fired")
  local W = task.spawn(function()
    task.running():cancel()
    local r = {}
    r.recv = table.pack(pcall(chr.recv, chr))
    r.send = table.pack(pcall(chs.send, chs, "sent"))
    r.select = table.pack(pcall(task.select, {chsel}))
    r.join = table.pack(pcall(fin.join, fin))
    r.timer = table.pack(pcall(tm.wait, tm))
    r.checkpoint = table.pack(pcall(task.checkpoint))
    return r
  end)
  local how, r = bounded_join(W, 1000)
  C.eq(how, "ok", "the cancelled task returned")
  r = r or {}
  for _, k in ipairs({"recv", "send", "select", "join", "timer", "checkpoint"}) do
    local p = r[k] or {}
    C.ok(p[1] == false and p[2] == "task cancelled",
         ("%s: got %s, %s"):format(k, tostring(p[1]), tostring(p[2])))
  end
  C.eq(chr:try_recv(), "queued-recv", "recv's value stays queued")
  C.eq(chs:len(), 0, "send queued nothing")
  C.eq(chsel:try_recv(), "queued-select", "select's value stays queued")
  local j = task.spawn(function() return fin:join() end)
  local how2, a, b = bounded_join(j, 1000)
  C.eq(how2, "ok", "another task joins the finished task")
  C.eq(a, "r1", "its first result"); C.eq(b, "r2", "its second result")
  reap(W, j)
  C.done()
end)

-- ---- 11. smaller points -----------------------------------------------------

local ABORT_PLACES = {
  ["a plain coroutine nested in the task"] = function(abort)
    local co = coroutine.create(function() abort(); return "went on" end)
    local ok, e = coroutine.resume(co)
    if ok then return true, e end
    return false, e
  end,
  ["a table.sort comparator"] = function(abort)
    return pcall(table.sort, {3, 2, 1}, function(a, b) abort(); return a < b end)
  end,
  ["an __index metamethod called from C"] = function(abort)
    local p = setmetatable({}, {__index = function() abort(); return 1 end})
    return pcall(table.unpack, p, 1, 1)
  end,
  ["a string.gsub callback"] = function(abort)
    return pcall(string.gsub, "a", "a", function() abort(); return "b" end)
  end,
}
for place, run in pairs(ABORT_PLACES) do
  case("task.running():abort() inside " .. place .. ": raises 'task aborted', the task never runs past its next suspension", function()
    local C = checker()
    local got, past = nil, false
    local t = task.spawn(function()
      got = table.pack(run(function() task.running():abort() end))
      task.yield()
      past = true
      task.sleep(1)
      past = "twice"
    end)
    local how, e = bounded_join(t, 1000)
    C.ok(got ~= nil, "the abort ran")
    got = got or {}
    C.ok(got[1] == false and has(got[2], "task aborted"),
         ("the abort call: %s, %s"):format(tostring(got[1]), tostring(got[2])))
    C.eq(past, false, "ran past its next suspension point")
    C.eq(how, "error", "join")
    C.eq(e, "task aborted", "join's error")
    reap(t)
    T.errors()
    C.done()
  end)
end

case("a second task waiting on the same external id raises 'another task waits for this id'", function()
  local C = checker()
  local id = task.alloc()
  local w1 = task.spawn(function() return task.wait(id) end)
  task.yield()
  local w2 = task.spawn(function() return task.wait(id) end)
  local how2, e2 = bounded_join(w2, 100)
  C.eq(how2, "error", "the second waiter")
  C.ok(has(e2, "another task waits for this id"), "its error: " .. tostring(e2))
  C.eq(task.resume(id, "v"), true, "resume")
  local how1, v1 = bounded_join(w1, 100)
  C.eq(how1, "ok", "the first waiter")
  C.eq(v1, "v", "the first waiter's value")
  reap(w1, w2)
  T.errors()
  C.done()
end)

case("a __close that sleeps while the task unwinds from an error: the sleep works, the close completes, join raises the original error", function()
  local flag = false
  local t = task.spawn(function()
    local _ <close> = setmetatable({}, {__close = function() task.sleep(1); flag = true end})
    error("original", 0)
  end)
  local how, e = bounded_join(t, 1000)
  reap(t)
  T.errors()
  T.eq(how, "error", "join")
  T.eq(e, "original", "join's error")
  T.eq(flag, true, "the __close completed")
end)

case("an error raised in __close while the task is aborted reaches the error handler", function()
  local t = task.spawn(function()
    local _ <close> = setmetatable({}, {__close = function() error("close failed on abort", 0) end})
    task.sleep(1e6)
  end)
  task.yield()
  T.eq(t:abort(), true, "abort")
  task.sleep(1); task.sleep(1)
  local found = {}
  for _, e in ipairs(T.errors()) do found[#found + 1] = tostring(e.err) end
  T.ok(table.concat(found, "|"):find("close failed on abort", 1, true), "reported: {" .. table.concat(found, ", ") .. "}")
end)

case("durations: numeric strings are milliseconds; other strings raise 'bad argument #1 to <fn> (number expected, got string)'", function()
  local C = checker()
  local t0 = task.now()
  local ok, e = pcall(task.sleep, "5")
  C.ok(ok, "sleep('5'): " .. tostring(e))
  C.eq(task.now() - t0, 5, "sleep('5') slept")
  t0 = task.now()
  ok, e = pcall(function() return task.timer("5"):wait() end)
  C.ok(ok, "timer('5'): " .. tostring(e))
  C.eq(task.now() - t0, 5, "timer('5') waited")
  t0 = task.now()
  local fired
  ok, e = pcall(task.after, "5", function() fired = task.now() end)
  C.ok(ok, "after('5'): " .. tostring(e))
  task.sleep(10)
  C.eq(fired and fired - t0, 5, "after('5') fired at")
  t0 = task.now()
  local ok1, r1, r2 = pcall(task.timeout, "5", function() task.sleep(100) end)
  C.ok(ok1 and r1 == nil and r2 == "timeout", ("timeout('5'): %s %s %s"):format(tostring(ok1), tostring(r1), tostring(r2)))
  C.eq(task.now() - t0, 5, "timeout('5') ended at")
  t0 = task.now()
  ok, e = pcall(task.with_timeout, "5", function() task.sleep(100) end)
  C.ok(not ok and has(e, "task.with_timeout: exceeded 5 ms"), "with_timeout('5'): " .. tostring(e))
  C.eq(task.now() - t0, 5, "with_timeout('5') ended at")
  local calls = {
    sleep = function() task.sleep("abc") end,
    timer = function() task.timer("abc") end,
    after = function() task.after("abc", function() end) end,
    timeout = function() task.timeout("abc", function() end) end,
    with_timeout = function() task.with_timeout("abc", function() end) end,
  }
  for _, name in ipairs({"sleep", "timer", "after", "timeout", "with_timeout"}) do
    ok, e = pcall(calls[name])
    local want = ("bad argument #1 to '%s' (number expected, got string)"):format(name)
    C.ok(not ok and has(e, want), name .. "('abc'): " .. tostring(e))
  end
  C.done()
end)

case("task.channel(2.0) has capacity 2; task.channel(2.5) raises 'capacity must be positive'", function()
  local C = checker()
  for _, arg in ipairs({2.0, {capacity = 2.0}}) do
    local ok, ch = pcall(task.channel, arg)
    C.ok(ok, "task.channel(" .. tostring(type(arg) == "table" and "{capacity = 2.0}" or arg) .. "): " .. tostring(ch))
    if ok then
      C.eq(ch:try_send(1), true, "first")
      C.eq(ch:try_send(2), true, "second")
      local a, b = ch:try_send(3)
      C.ok(a == nil and b == "full", "third: " .. tostring(a) .. ", " .. tostring(b))
    end
  end
  for _, arg in ipairs({2.5, {capacity = 2.5}}) do
    local ok, e = pcall(task.channel, arg)
    C.ok(not ok and has(e, "capacity must be positive"), "2.5: " .. tostring(e))
  end
  C.done()
end)

case("task.traceparent(header) with bytes after an embedded NUL returns nil and an error", function()
  local good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
  T.eq(math.type(task.traceparent(good)), "integer", "the header alone parses")
  local id, err = task.traceparent(good .. "\0junk")
  T.eq(id, nil, "the id")
  T.eq(type(err), "string", "the error")
end)

case("a traceparent header whose trace-id halves are equal gives an id that formats again", function()
  local h = "00-0123456789abcdef0123456789abcdef-00f067aa0ba902b7-01"
  local id, err = task.traceparent(h)
  T.eq(math.type(id), "integer", "parsed: " .. tostring(err))
  local old = task.traceset(id)
  local out, err2 = task.traceparent()
  task.traceset(old)
  T.eq(type(out), "string", "traceparent() after traceset: " .. tostring(err2))
end)

-- ---- 12. mutation-test gaps ---------------------------------------------------

case("fired, never-awaited and cancelled timers become collectable once unreachable", function()
  local weak = setmetatable({}, {__mode = "v"})
  local function make()
    weak.fired = task.timer(1)
    weak.awaited = task.timer(1); weak.awaited:wait()
    weak.cancelled = task.timer(1000); weak.cancelled:cancel()
  end
  make()
  task.sleep(5)
  collectgarbage(); collectgarbage()
  local left = {}
  for k in pairs(weak) do left[#left + 1] = k end
  table.sort(left)
  T.eq(table.concat(left, ","), "", "timers still reachable")
end)

case("in a scope the first child error wins, also over a child that fails after the scope was cancelled", function()
  local ok, e = pcall(task.scope, function(s)
    s:spawn(function() task.sleep(1); error("first", 0) end)
    s:spawn(function() pcall(task.sleep, 1000); error("second", 0) end)
  end)
  T.eq(ok, false, "the scope raised")
  T.eq(e, "first", "its error")
end)


-- ---- task.dump and task.tasks from callbacks -------------------------------

case("task.dump of tasks with long names: the report is whole (its buffer grows between blocks), no crash", function()
  local long = string.rep("n", 3000)
  local ts = {}
  for i = 1, 3 do ts[i] = task.spawn({name = long .. i}, function() task.sleep(10) end) end
  task.yield()
  local text = task.dump(false)
  for i = 1, 3 do T.ok(text:find(long .. i, 1, true) ~= nil, "block " .. i .. " in the dump") end
  T.ok(text:find("\n\ntask ", 1, true) ~= nil, "blocks separated by a blank line")
  reap(table.unpack(ts))
end)

case("task.dump and task.tasks in a term hook, while the ending task is still the core's: correct results", function()
  local sleepers = {}
  for i = 1, 3 do sleepers[i] = task.spawn({name = "sleeper" .. i}, function() task.sleep(10) end) end
  local got, errs = {}, {}
  task.hook(nil, function()
    local ok, text = pcall(task.dump, false)
    if ok then got[#got + 1] = text else errs[#errs + 1] = tostring(text) end
    local n = 0
    for _ in pairs(task.tasks()) do n = n + 1 end
    got[#got + 1] = n
  end)
  local ender = task.spawn({name = "ender"}, function() end)
  task.yield(); task.yield()
  task.hook()
  T.eq(#errs, 0, "dump errors: " .. table.concat(errs, "; "))
  T.eq(type(got[1]), "string", "the dump")
  for i = 1, 3 do T.ok(got[1]:find("(sleeper" .. i .. ")", 1, true) ~= nil, "sleeper " .. i .. " in the dump") end
  T.ok(not got[1]:find("(ender)", 1, true), "the ending task is not in the dump")
  T.ok(ender:done(), "the hooked task ended")
  reap(table.unpack(sleepers))
end)


-- ---- scopes whose slot is taken before their owner ends them ---------------
-- A scope closes in the core (its last member ended) before its owner runs
-- again; a scope another task opens in between gets the same slot.

case("a scope opened in the slot of one closed but not yet ended: its members' errors still reach it", function()
  local a = task.spawn(function() return task.scope(function() return "a" end) end)
  local b = task.spawn(function()
    return pcall(task.scope, function(sc)
      sc:spawn(function() task.sleep(1); error("child", 0) end)
      task.sleep(10)
      return "b finished"
    end)
  end)
  local ok, e = b:join()
  T.eq(ok, false, "the scope raised its member's error")
  T.eq(e, "child", "the error")
  T.eq(a:join(), "a", "the other scope's result")
  T.eq(#T.errors(), 0, "nothing reported to the error handler")
end)

case("with_timeout in the slot of a scope closed but not yet ended, its owner aborted: the deadline dies with it", function()
  local a = task.spawn(function() return task.with_timeout(1000, function() return "a" end) end)
  local b = task.spawn(function() return task.with_timeout(50, function() task.sleep(100) end) end)
  task.sleep(1)
  b:abort()
  task.yield()
  b = nil -- luacheck: ignore 311 (the Scope must become garbage)
  collectgarbage(); collectgarbage()
  task.sleep(60) -- past b's deadline: it must not fire on the collected Scope (ASan: use after free)
  T.eq(a:join(), "a", "the other scope's result")
end)


-- ---- suspend hooks that act on the task parking ---------------------------
-- task.hook's suspend hook runs after a task parked on a channel but before
-- its step returned (it is still RUN in the core): what the hook sends,
-- receives or closes must still reach the task.

-- Runs victim() in a task; act(v) runs in the suspend hook right after the
-- task parked in victim. Returns bounded_join's outcome.
local function on_park(victim, act)
  local armed = false
  local v = task.spawn({name = "parker"}, function() task.yield(); armed = true; return victim() end)
  task.hook(nil, nil, nil, function(t, did)
    if armed and did == "wait" and t == v then armed = false; act(v) end
  end)
  local r = table.pack(bounded_join(v, 100))
  task.hook(nil, nil, nil, nil)
  reap(v)
  return table.unpack(r, 1, r.n)
end

case("suspend hook: a value sent to the receiver parking reaches it", function()
  local ch = task.channel(1)
  local how, v = on_park(function() return ch:recv() end, function() ch:send("v") end)
  T.eq(how, "ok", "the receiver finished")
  T.eq(v, "v", "its value")
  T.eq(ch:len(), 0, "nothing left queued")
end)

case("suspend hook: a receive lets the sender parking on a full channel go on", function()
  local ch = task.channel(1)
  ch:send("first")
  local got
  local how, r = on_park(function() return ch:send("second") end, function() got = ch:try_recv() end)
  T.eq(got, "first", "the hook's value")
  T.eq(how, "ok", "the sender finished")
  T.eq(r, true, "its send")
  T.eq(ch:try_recv(), "second", "the sender's value, queued")
end)

case("suspend hook: a close wakes the select parking on the channel", function()
  local ch = task.channel(1)
  local how, i, v, e = on_park(function() return task.select({ch, ch}) end, function() ch:close() end)
  T.eq(how, "ok", "the select finished")
  T.eq(i, 1, "the index")
  T.eq(v, nil, "no value")
  T.eq(e, "closed", "closed")
end)

case("suspend hook: a value sent after the hook aborted or cancelled the receiver stays queued", function()
  for _, stop in ipairs({"abort", "cancel"}) do
    local ch = task.channel(1)
    local how = on_park(function() return ch:recv() end, function(v) v[stop](v); ch:send("kept") end)
    T.eq(how, "error", stop .. ": the receiver failed")
    T.eq(ch:try_recv(), "kept", stop .. ": the value")
  end
end)

T.run()
