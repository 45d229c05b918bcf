-- realclock.lua: run with lua_runner --real-clock. with_timeout's last stage
-- (abort after grace_ms) needs a child that never suspends for long, so
-- the clock must move while it spins.
local task = require "task"
local T = require "testing"
local H = require "helpers"

T.case("with_timeout: a child that ignores cancellation is aborted after grace_ms", function()
  local log = {}
  local t0 = task.now()
  local e = T.raises("exceeded", task.with_timeout, 10, function(sc)
    sc:spawn(function()
      local _ <close> = H.closer(log, "spinner closed")
      while true do pcall(function() coroutine.yield() end) end
    end)
    task.sleep(1000)
  end, {grace_ms = 20})
  T.eq(e, "task.with_timeout: exceeded 10 ms")
  local took = task.now() - t0
  T.ok(took >= 30, "took " .. took .. " ms") -- no upper bound: a loaded machine is slow
  T.same(log, {"spinner closed"})
end)

T.case("real clock: sleep never returns early", function()
  local t0 = task.now()
  task.sleep(15)
  T.ok(task.now() - t0 >= 15, "slept")
end)

T.run()
