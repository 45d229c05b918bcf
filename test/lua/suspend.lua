-- suspend.lua: sleep, yield, checkpoint, wait/wakeup, alloc/wait(id)/resume,
-- external, cancel tokens and now.
local task = require "task"
local T = require "testing"
local H = require "helpers"

T.case("sleep(ms): SLEEP for exactly ms on the clock, fractions and sub-ms", function()
  local t0 = task.now()
  task.sleep(10)
  T.eq(task.now() - t0, 10)
  task.sleep(0.25)
  T.eq(task.now() - t0, 10.25)
  local s = task.spawn(function() task.sleep(3) end)
  task.yield()
  T.eq(task.status(s), "SLEEP")
  s:join()
  T.eq(task.sleep(1), nil)
  T.eq(select("#", task.sleep(1)), 0)
end)

T.case("sleep: sleepers wake in deadline order, ties in the order they slept", function()
  local log = {}
  local ts = {}
  for i, d in ipairs({5, 1, 5, 3, 1}) do
    ts[i] = task.spawn(function() task.sleep(d); log[#log + 1] = i end)
  end
  for i = 1, #ts do ts[i]:join() end
  T.same(log, {2, 5, 4, 1, 3})
end)

T.case("sleep(0) is yield(): READY again, runs at the next tick", function()
  local n = 0
  local t = task.spawn(function() for _ = 1, 3 do n = n + 1; task.sleep(0) end end)
  task.yield(); T.eq(n, 1)
  T.eq(task.status(t), "READY")
  task.yield(); T.eq(n, 2)
  task.yield(); T.eq(n, 3)
  t:join()
end)

T.case("yield(): one run per tick, so a yield loop never traps the host", function()
  local n = 0
  local t = task.spawn(function() for _ = 1, 100 do n = n + 1; task.yield() end end)
  local t0 = task.now()
  for i = 1, 10 do task.yield(); T.eq(n, i, "runs of the yielding task") end
  T.eq(task.now(), t0)
  t:join()
  T.eq(n, 100)
  T.eq(select("#", task.yield()), 0)
end)

T.case("yield(): ready tasks run FIFO", function()
  local log = {}
  local ts = {}
  for i = 1, 3 do ts[i] = task.spawn(function() for r = 1, 2 do log[#log + 1] = i .. r; task.yield() end end) end
  for i = 1, 3 do ts[i]:join() end
  T.same(log, {"11", "21", "31", "12", "22", "32"})
end)

T.case("sleep: bad arguments and invalid durations", function()
  H.badarg(1, "sleep", function() return task.sleep() end)
  H.badarg(1, "sleep", function() return task.sleep("soon") end)
  H.badarg(1, "sleep", function() return task.sleep({}) end)
  H.durations("task.sleep", task.sleep)
  local e = T.raises("invalid duration", task.sleep, -1)
  T.eq(e, "task.sleep: invalid duration (ms=-1)")
  e = T.raises("invalid duration", task.sleep, -2.5)
  T.eq(e, "task.sleep: invalid duration (ms=-2.5)")
end)

T.case("checkpoint(): returns at once when not cancelled, without suspending", function()
  local ran = false
  local t = task.spawn(function() ran = true end)
  T.eq(select("#", task.checkpoint()), 0)
  T.eq(ran, false)
  t:join()
end)

T.case("wait() and wakeup(t, value): the value, nil included, exactly one", function()
  local t = task.spawn(function()
    local a = table.pack(task.wait())
    local b = table.pack(task.wait())
    return a, b
  end)
  task.yield()
  T.eq(task.status(t), "WAIT")
  T.eq(task.wakeup(t, {1}) , nil)
  task.yield()
  task.wakeup(t, nil)
  local a, b = t:join()
  T.eq(a.n, 1); T.eq(a[1][1], 1)
  T.eq(b.n, 1); T.eq(b[1], nil)
end)

T.case("wakeup: a number value is not mistaken for an external id", function()
  local t = task.spawn(function() return task.wait() end)
  task.yield()
  task.wakeup(t, 12345)
  T.eq(t:join(), 12345)
end)

T.case("wakeup: FIFO — woken tasks run in the order they were woken", function()
  local log, ts = {}, {}
  for i = 1, 4 do ts[i] = task.spawn(function() local v = task.wait(); log[#log + 1] = v end) end
  task.yield()
  for _, i in ipairs({3, 1, 4, 2}) do task.wakeup(ts[i], i) end
  task.yield()
  T.same(log, {3, 1, 4, 2})
end)

T.case("wakeup: a task not in WAIT raises, naming its status", function()
  local r = task.spawn(function() task.sleep(5) end)
  local e = T.raises("not WAIT", task.wakeup, r, 1)
  T.eq(e, "task.wakeup: task is READY, not WAIT")
  task.yield()
  e = T.raises("not WAIT", task.wakeup, r, 1)
  T.eq(e, "task.wakeup: task is SLEEP, not WAIT")
  r:join()
  e = T.raises("not WAIT", task.wakeup, r, 1)
  T.eq(e, "task.wakeup: task is released, not WAIT")
  local x = task.spawn(function() end)
  task.yield()
  e = T.raises("not WAIT", task.wakeup, x)
  T.eq(e, "task.wakeup: task is EXIT, not WAIT")
  e = T.raises("not WAIT", task.wakeup, task.running())
  T.eq(e, "task.wakeup: task is RUN, not WAIT")
  x:join()
  H.badarg(1, "wakeup", function() return task.wakeup("t") end)
end)

T.case("wakeup: a task waiting for something else is not woken", function()
  local ch = task.channel()
  local t = task.spawn(function() return ch:recv() end)
  task.yield()
  T.eq(task.status(t), "WAIT")
  T.raises("task.wakeup: task is waiting for something else", task.wakeup, t, 1)
  ch:send("ok")
  T.eq(t:join(), "ok")
end)

T.case("alloc(): fresh integer ids", function()
  local a, b = task.alloc(), task.alloc()
  T.eq(math.type(a), "integer")
  T.ok(a ~= b, "distinct")
  task.resume(a); task.resume(b)
end)

T.case("wait(id)/resume(id, ...): all values, resume before wait is not lost", function()
  local id = task.alloc()
  local t = task.spawn(function() return table.pack(task.wait(id)) end)
  task.yield()
  T.eq(task.status(t), "WAIT")
  T.eq(task.resume(id, 1, nil, "three", nil), true)
  local r = t:join()
  T.eq(r.n, 4); T.eq(r[1], 1); T.eq(r[2], nil); T.eq(r[3], "three")
  local id2 = task.alloc()
  T.eq(task.resume(id2, "early"), true)
  T.eq(task.wait(id2), "early")
  local id3 = task.alloc()
  task.resume(id3)
  T.eq(select("#", task.wait(id3)), 0)
end)

T.case("resume: twice, stale and unknown ids", function()
  local id = task.alloc()
  T.eq(task.resume(id, 1), true)
  local ok, err = task.resume(id, 2)
  T.eq(ok, false); T.eq(err, "task.resume: id already resumed")
  T.eq(task.wait(id), 1)
  ok, err = task.resume(id, 3)
  T.eq(ok, false); T.eq(err, "task.resume: unknown, already used or stale external id")
  ok, err = task.resume(987654321, 3)
  T.eq(ok, false); T.eq(err, "task.resume: unknown, already used or stale external id")
  H.badarg(1, "resume", function() return task.resume("x") end)
end)

T.case("wait(id): unknown, used or stale ids raise", function()
  T.raises("task.wait: unknown, already used or stale external id", task.wait, 424242)
  local id = task.alloc()
  task.resume(id, "v")
  T.eq(task.wait(id), "v")
  T.raises("task.wait: unknown, already used or stale external id", task.wait, id)
  H.badarg(1, "wait", function() return task.wait("nope") end)
  H.badarg(1, "wait", function() return task.wait(1.5) end)
end)

T.case("resume from the host (C) with several values, later and now", function()
  local id = task.alloc()
  host_resume_later(id, 7, {k = "v"})
  local t0 = task.now()
  local v = task.wait(id)
  T.eq(v.k, "v"); T.eq(task.now() - t0, 7)
  local id2 = task.alloc()
  local t = task.spawn(function() return table.pack(task.wait(id2)) end)
  task.yield()
  T.eq(host_resume(id2, "a", nil, 3, nil), 0)
  local r = t:join()
  T.eq(r.n, 4); T.eq(r[1], "a"); T.eq(r[2], nil); T.eq(r[3], 3); T.eq(r[4], nil)
  T.ok(host_resume(id2, "again") ~= 0, "a stale id is refused")
  T.ok(host_resume(77777, 1) ~= 0, "an unknown id is refused")
end)

T.case("external(start): alloc, start(id), wait", function()
  local seen
  local v = task.external(function(id) seen = id; host_resume_later(id, 3, "done") end)
  T.eq(v, "done"); T.eq(math.type(seen), "integer")
  v = task.external(function(id) task.resume(id, "sync") end)
  T.eq(v, "sync")
  local e = T.raises("start failed", task.external, function() error("start failed", 0) end)
  T.eq(e, "start failed")
  H.badarg(1, "external", function() return task.external(5) end)
end)

T.case("cancel_token(): cancel, is_cancelled, check; parents; spawn token", function()
  local tk = task.cancel_token()
  T.eq(getmetatable(tk).__name, "CancelToken")
  T.eq(tk:is_cancelled(), false)
  T.eq(tk:check(), nil)
  local child = task.cancel_token(tk)
  local grand = task.cancel_token(child)
  T.eq(tk:cancel(), true)
  T.eq(tk:is_cancelled(), true)
  T.eq(child:is_cancelled(), true); T.eq(grand:is_cancelled(), true)
  local e = T.raises("task cancelled", tk.check, tk)
  T.eq(e, "task cancelled")
  local other = task.cancel_token()
  local c2 = task.cancel_token(other)
  c2:cancel()
  T.eq(other:is_cancelled(), false, "a child does not cancel its parent")
  H.badarg(1, "cancel_token", function() return task.cancel_token(5) end)
end)

T.case("cancel_token: cancelling a parent cancels the tasks of its children", function()
  local parent = task.cancel_token()
  local ts = {}
  for i = 1, 3 do
    local tk = task.cancel_token(parent)
    ts[i] = task.spawn({token = tk}, function() task.sleep(1000) end)
  end
  task.yield()
  local t0 = task.now()
  parent:cancel()
  for i = 1, 3 do T.raises("task cancelled", ts[i].join, ts[i]) end
  T.eq(task.now(), t0, "woken at once")
end)

T.case("now(): ms as of the current tick, fractional", function()
  local a = task.now()
  T.eq(type(a), "number")
  T.ok(a >= 1000 * 1000, "the runner starts at 1000 s")
  local x = 0
  for i = 1, 1000 do x = x + i end
  T.eq(task.now(), a, "does not move inside a tick")
  task.sleep(0.001)
  T.ok(task.now() - a >= 0.001, "sub-millisecond")
end)

T.run()
