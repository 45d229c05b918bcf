-- combinators.lua: scope, all, race, timeout, with_timeout, await, timer.
local task = require "task"
local T = require "testing"
local H = require "helpers"

T.case("scope([name,] fn): fn(scope) results, .name, waits for every child", function()
  local log = {}
  local t0 = task.now()
  local a, b = task.scope("grp", function(sc)
    T.eq(sc.name, "grp"); T.eq(getmetatable(sc).__name, "Scope")
    sc:spawn(function(x) task.sleep(10); log[#log + 1] = x end, "c1")
    sc:spawn(function() task.sleep(5); log[#log + 1] = "c2" end)
    return 1, 2
  end)
  T.eq(a, 1); T.eq(b, 2); T.eq(task.now() - t0, 10)
  T.same(log, {"c2", "c1"})
  T.eq(task.scope(function(sc) T.eq(sc.name, nil); return "x" end), "x")
end)

T.case("scope: task.spawn inside the body attaches to the scope", function()
  local done = false
  task.scope(function() task.spawn(function() task.sleep(7); done = true end) end)
  T.eq(done, true)
end)

T.case("scope: a child's error cancels the rest and is re-raised (first error wins)", function()
  local log = {}
  local ok, e = pcall(task.scope, function(sc)
    sc:spawn(function() local ok2, e2 = pcall(task.sleep, 100); log[#log + 1] = e2 end)
    sc:spawn(function() task.sleep(1); error({tag = "first"}) end)
    sc:spawn(function() task.sleep(2); error("second", 0) end)
  end)
  T.eq(ok, false); T.eq(type(e), "table"); T.eq(e.tag, "first")
  T.same(log, {"task cancelled"})
  T.eq(#T.errors(), 0, "scoped errors do not reach the handler")
end)

T.case("scope: the body's error cancels the children and is re-raised after they end", function()
  local log = {}
  local ok, e = pcall(task.scope, function(sc)
    sc:spawn(function() local _ <close> = H.closer(log, "child closed"); task.sleep(100) end)
    task.yield()
    error("body", 0)
  end)
  T.eq(ok, false); T.eq(e, "body")
  T.same(log, {"child closed"})
end)

T.case("scope: Scope:cancel, Scope:token, spawn after close", function()
  local saved, tok
  local t0 = task.now()
  task.scope(function(sc)
    saved = sc
    tok = sc:token()
    T.eq(getmetatable(tok).__name, "CancelToken")
    T.eq(tok:is_cancelled(), false)
    sc:spawn(function() task.sleep(1000) end)
    task.yield()
    T.eq(sc:cancel(), true)
    T.eq(tok:is_cancelled(), true)
  end)
  T.eq(task.now(), t0, "cancelled children end at once")
  T.raises("Scope:spawn: the scope is closed", saved.spawn, saved, function() end)
  T.raises("Scope:token: the scope is closed", saved.token, saved)
end)

T.case("scope: bad arguments", function()
  H.badarg(2, "scope", function() return task.scope("n", 5) end)
  H.badarg(2, "scope", function() return task.scope() end)
  H.badarg(1, "scope", function() return task.scope(5, function() end) end)
  task.scope(function(sc) H.badarg(1, "spawn", function() return sc:spawn(5) end) end) -- a method: Lua counts from after self
end)

T.case("scope: nested scopes", function()
  local log = {}
  task.scope(function(outer)
    outer:spawn(function() task.sleep(3); log[#log + 1] = "o" end)
    task.scope(function(inner) inner:spawn(function() task.sleep(1); log[#log + 1] = "i" end) end)
    log[#log + 1] = "inner closed"
  end)
  T.same(log, {"i", "inner closed", "o"})
end)

T.case("all: results in order, concurrently", function()
  local t0 = task.now()
  local r = task.all(function() task.sleep(10) return "a" end, function() task.sleep(5) return "b" end,
                     function() return nil end, function() return 4 end)
  T.eq(task.now() - t0, 10)
  T.eq(r[1], "a"); T.eq(r[2], "b"); T.eq(r[3], nil); T.eq(r[4], 4)
end)

T.case("all: the first error propagates after the rest finished", function()
  local log = {}
  local ok, e = pcall(task.all,
    function() task.sleep(1); error("e1", 0) end,
    function() local ok2, e2 = pcall(task.sleep, 10); log[#log + 1] = tostring(e2) end,
    function() task.sleep(2); error("e2", 0) end)
  T.eq(ok, false); T.eq(e, "e1")
  T.eq(#log, 1, "the other branch finished before all returned")
  T.eq(#T.errors(), 0)
end)

T.case("all/race: bad arguments; all() is {}", function()
  local r = task.all()
  T.eq(type(r), "table"); T.eq(#r, 0)
  T.eq(#task.all(table.unpack({})), 0)
  H.badarg(1, "all", function() return task.all(5) end)
  H.badarg(2, "all", function() return task.all(function() end, 5) end)
  H.badarg(1, "race", function() return task.race() end)
  H.badarg(1, "race", function() return task.race("x") end)
end)

T.case("race: first to return wins, the others are cancelled", function()
  local log = {}
  local t0 = task.now()
  local i, v = task.race(
    function() local _ <close> = H.closer(log, "slow closed"); task.sleep(50); return "slow" end,
    function() task.sleep(5); return "fast", "extra" end)
  T.eq(i, 2); T.eq(v, "fast"); T.eq(task.now() - t0, 5)
  T.same(log, {"slow closed"})
end)

T.case("race: an error propagates, losers cancelled first", function()
  local log = {}
  local ok, e = pcall(task.race,
    function() local _ <close> = H.closer(log, "loser closed"); task.sleep(50) end,
    function() task.sleep(1); error("racefail", 0) end)
  T.eq(ok, false); T.eq(e, "racefail")
  T.same(log, {"loser closed"})
  T.eq(#T.errors(), 0)
end)

T.case("race: a tie goes to the lowest index", function()
  local i, v = task.race(function() task.sleep(3); return "a" end, function() task.sleep(3); return "b" end)
  T.eq(i, 1); T.eq(v, "a")
end)

T.case("timeout: result, nil in time; nil, 'timeout' on the deadline with fn cancelled", function()
  local r, e = task.timeout(10, function() task.sleep(3); return "v", "dropped" end)
  T.eq(r, "v"); T.eq(e, nil)
  local log = {}
  local t0 = task.now()
  r, e = task.timeout(10, function()
    local _ <close> = H.closer(log, "closed")
    local ok, err = pcall(task.sleep, 100)
    log[#log + 1] = err
    error(err, 0)
  end)
  T.eq(r, nil); T.eq(e, "timeout"); T.eq(task.now() - t0, 10)
  T.same(log, {"task cancelled", "closed"})
end)

T.case("timeout: once the deadline fired the result is nil, 'timeout' whatever fn does", function()
  local r, e = task.timeout(20, function() pcall(task.sleep, 1000) return "late" end)
  T.eq(r, nil); T.eq(e, "timeout")
  r, e = task.timeout(20, function()
    local ok, err = pcall(task.sleep, 1000)
    error("query failed: " .. tostring(err), 0)
  end)
  T.eq(r, nil); T.eq(e, "timeout")
  -- an outer cancel is not a timeout: it propagates
  local t = task.spawn(function() return task.timeout(1000, function() task.sleep(500) end) end)
  task.yield()
  t:cancel()
  T.raises("task cancelled", t.join, t)
  -- runs in the calling task, and what it spawns is not waited for
  local me = task.running()
  local bg
  r, e = task.timeout(50, function()
    T.eq(task.running(), me)
    bg = task.spawn(function() task.sleep(1000) end)
    return "quick"
  end)
  T.eq(r, "quick"); T.eq(e, nil)
  task.yield()
  T.eq(task.status(bg), "SLEEP")
  bg:cancel()
end)

T.case("race/with_timeout/scope: a child that swallows or rewraps its cancellation", function()
  -- race: the winner's result; the losers' outcomes are dropped
  local i, v = task.race(function() task.sleep(5); return "win" end,
                         function() pcall(task.sleep, 100); return "swallowed" end,
                         function() local ok, err = pcall(task.sleep, 100); error("wrapped: " .. err, 0) end)
  T.eq(i, 1); T.eq(v, "win")
  T.eq(#T.errors(), 0)
  -- with_timeout: exceeded, whatever fn does with the cancel
  T.raises("task.with_timeout: exceeded 10 ms", task.with_timeout, 10, function()
    local ok, err = pcall(task.sleep, 1000)
    error("query failed: " .. err, 0)
  end)
  T.raises("task.with_timeout: exceeded 10 ms", task.with_timeout, 10, function()
    pcall(task.sleep, 1000)
    return "late"
  end)
  -- scope: the first error wins, also over a child that raises after it was cancelled
  local ok, e = pcall(task.scope, function(sc)
    sc:spawn(function() pcall(task.sleep, 100); error("second", 0) end)
    sc:spawn(function() task.sleep(1); error("first", 0) end)
  end)
  T.eq(ok, false); T.eq(e, "first")
  T.eq(#T.errors(), 0)
end)

T.case("timeout: fn's error propagates; bad arguments; invalid durations", function()
  T.raises("inner", task.timeout, 10, function() error("inner", 0) end)
  H.badarg(2, "timeout", function() return task.timeout(10, 5) end)
  H.durations("task.timeout", function(v) return task.timeout(v, function() end) end)
  T.raises("number expected", task.timeout, "x", function() end)
end)

T.case("with_timeout: in time returns fn(scope)'s results", function()
  local a, b = task.with_timeout(50, function(sc)
    T.eq(getmetatable(sc).__name, "Scope")
    sc:spawn(function() task.sleep(5) end)
    return 1, 2
  end)
  T.eq(a, 1); T.eq(b, 2)
end)

T.case("with_timeout: on the deadline children are cancelled, then it raises", function()
  local log = {}
  local t0 = task.now()
  local e = T.raises("exceeded", task.with_timeout, 10, function(sc)
    sc:spawn(function() local _ <close> = H.closer(log, "child"); task.sleep(1000) end)
    task.sleep(1000)
  end)
  T.eq(e, "task.with_timeout: exceeded 10 ms")
  T.eq(task.now() - t0, 10)
  T.same(log, {"child"})
  e = T.raises("exceeded", task.with_timeout, 2.5, function() task.sleep(10) end)
  T.eq(e, "task.with_timeout: exceeded 2.5 ms")
end)

T.case("with_timeout: a child that catches the cancel gets grace_ms to finish", function()
  local log = {}
  local t0 = task.now()
  T.raises("exceeded 10 ms", task.with_timeout, 10, function(sc)
    sc:spawn(function()
      pcall(task.sleep, 1000)
      log[#log + 1] = ("cleanup at %g"):format(task.now() - t0)
    end)
    task.sleep(1000)
  end, {grace_ms = 30})
  T.same(log, {"cleanup at 10"})
end)

T.case("with_timeout: options and arguments", function()
  T.raises("task.with_timeout: unknown option 'grace'", task.with_timeout, 10, function() end, {grace = 1})
  H.badarg(3, "with_timeout", function() return task.with_timeout(10, function() end, 5) end)
  H.badarg(2, "with_timeout", function() return task.with_timeout(10) end)
  H.durations("task.with_timeout", function(v) return task.with_timeout(v, function() end) end)
  H.durations("task.with_timeout", function(v) return task.with_timeout(1, function() end, {grace_ms = v}) end)
  T.raises("inner", task.with_timeout, 10, function() error("inner", 0) end)
end)

T.case("timer(ms): completes after ms; wait, done, cancel, __call", function()
  local t0 = task.now()
  local tm = task.timer(5)
  T.eq(getmetatable(tm).__name, "Timer")
  T.eq(tm:done(), false)
  T.eq(tm:wait(), true)
  T.eq(task.now() - t0, 5); T.eq(tm:done(), true)
  T.eq(tm:wait(), true, "a fired timer completes at once")
  T.eq(tm:cancel(), false)
  local tm2 = task.timer(3)
  T.eq(tm2(), true)
  local tm3 = task.timer(100)
  T.eq(tm3:cancel(), true); T.eq(tm3:cancel(), false)
  H.durations("task.timer", task.timer)
  H.badarg(1, "timer", function() return task.timer("x") end)
end)

T.case("timer: a dropped, unreferenced timer still fires for a task waiting on it", function()
  local t = task.spawn(function() return task.timer(4):wait() end)
  task.yield()
  collectgarbage(); collectgarbage()
  T.eq(t:join(), true)
end)

T.case("await(a): Task, Channel, Timer, anything with :wait or __call", function()
  local t = task.spawn(function() return 1, 2 end)
  local a, b = task.await(t)
  T.eq(a, 1); T.eq(b, 2)
  local ch = task.channel(); ch:send("m")
  T.eq(task.await(ch), "m")
  T.eq(task.await(task.timer(1)), true)
  T.eq(task.await({wait = function() return "custom" end}), "custom")
  T.eq(task.await(setmetatable({}, {__call = function() return "called" end})), "called")
  H.badarg(1, "await", function() return task.await(5) end)
end)


-- A waiter cancelled at the tick its task fails is READY, not resumed yet:
-- it raises "task cancelled", so it must not keep the error from the scope.
T.case("scope: a member's error reaches the scope when the select waiting for it was cancelled that tick", function()
  local ok, err = pcall(task.scope, function(sc)
    local y = sc:spawn(function() task.yield(); error("member failed", 0) end)
    local w = task.spawn(function() return task.select({y, y}) end)
    task.yield()  -- w parked on y; y fails at the next tick
    w:cancel()    -- that same tick: w is READY with its registrations still on y
    T.eq(select(2, pcall(w.join, w)), "task cancelled", "the selector")
    return "returned"
  end)
  T.eq(ok, false, "the scope raised")
  T.eq(err, "member failed", "the member's error")
end)

T.case("scope: a member's error reaches the scope when the Task:join waiting for it was cancelled that tick", function()
  local ok, err = pcall(task.scope, function(sc)
    local y = sc:spawn(function() task.yield(); error("member failed", 0) end)
    local w = task.spawn(function() return y:join() end)
    task.yield()
    w:cancel()
    T.eq(select(2, pcall(w.join, w)), "task cancelled", "the joiner")
    return "returned"
  end)
  T.eq(ok, false, "the scope raised")
  T.eq(err, "member failed", "the member's error")
end)

T.case("an error nobody takes goes to the handler when its only waiter was cancelled that tick", function()
  local x = task.spawn(function() task.yield(); error("unwatched", 0) end)
  local w = task.spawn(function() return task.select({x}) end)
  task.yield()
  w:cancel()
  T.eq(select(2, pcall(w.join, w)), "task cancelled", "the selector")
  local e = T.errors()
  T.eq(#e, 1, "errors reported")
  T.eq(e[1] and e[1].err, "unwatched", "the error")
  T.eq(select(2, pcall(x.join, x)), "unwatched", "a later join still raises it")
end)

T.run()
