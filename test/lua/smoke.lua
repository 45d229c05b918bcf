local task = require "task"
local T = require "testing"

T.case("spawn and join return all results", function()
  local t = task.spawn(function(a, b) return a + b, "ok", nil end, 40, 2)
  local x, y, z = t:join()
  T.eq(x, 42); T.eq(y, "ok"); T.eq(z, nil)
  T.raises("task already joined", t.join, t)
end)

T.case("sleep and now", function()
  local t0 = task.now()
  task.sleep(25.5)
  T.eq(task.now() - t0, 25.5, "elapsed ms")
end)

T.case("wait and wakeup", function()
  local t = task.spawn(function() return task.wait() end)
  task.yield()
  T.eq(task.status(t), "WAIT")
  task.wakeup(t, "hello")
  T.eq(t:join(), "hello")
end)

T.case("channel pipeline", function()
  local ch = task.channel(2)
  local got = {}
  local p = task.spawn(function() for i = 1, 5 do ch:send(i) end ch:close() end)
  local c = task.spawn(function()
    while true do
      local v, err = ch:recv()
      if err then break end
      got[#got + 1] = v
    end
  end)
  p:join(); c:join()
  T.same(got, {1, 2, 3, 4, 5})
end)

T.case("cancel wakes a sleeper", function()
  local t = task.spawn(function() task.sleep(1000) end)
  task.yield()
  T.eq(t:cancel(), true)
  T.raises("task cancelled", t.join, t)
end)

T.case("scope waits for children and re-raises", function()
  local log = {}
  local ok, err = pcall(task.scope, function(sc)
    sc:spawn(function() task.sleep(10); log[#log + 1] = "a" end)
    sc:spawn(function() task.sleep(5); error("boom", 0) end)
    sc:spawn(function() task.sleep(100); log[#log + 1] = "never" end)
  end)
  T.eq(ok, false); T.eq(err, "boom")
  T.same(log, {})
end)

T.case("timeout", function()
  local r, e = task.timeout(10, function() task.sleep(100) return 1 end)
  T.eq(r, nil); T.eq(e, "timeout")
  r, e = task.timeout(100, function() task.sleep(10) return 1 end)
  T.eq(r, 1); T.eq(e, nil)
end)

T.case("race and all", function()
  local i, v = task.race(function() task.sleep(20) return "slow" end, function() task.sleep(5) return "fast" end)
  T.eq(i, 2); T.eq(v, "fast")
  local r = task.all(function() task.sleep(3) return 1 end, function() return 2 end)
  T.same(r, {1, 2})
end)

T.case("select lowest index", function()
  local a, b = task.channel(), task.channel()
  b:send("b"); a:send("a")
  local i, v = task.select({a, b})
  T.eq(i, 1); T.eq(v, "a")
  local tm = task.timer(5)
  i = task.select({task.channel(), tm})
  T.eq(i, 2)
end)

T.case("external ids", function()
  local id = task.alloc()
  host_resume_later(id, 5, "late")
  T.eq(task.wait(id), "late")
  local id2 = task.alloc()
  T.eq(host_resume(id2, "early"), 0)
  T.eq(task.wait(id2), "early")
  T.eq(task.external(function(x) host_resume_later(x, 1, "ext") end), "ext")
end)

T.case("with_timeout", function()
  local err = T.raises("task.with_timeout: exceeded 10 ms", task.with_timeout, 10, function(sc)
    sc:spawn(function() task.sleep(1000) end)
    task.sleep(1000)
  end)
  T.eq(err, "task.with_timeout: exceeded 10 ms")
end)

T.run()
