-- channel.lua: channels (ward.async) and select.
local task = require "task"
local T = require "testing"
local H = require "helpers"

T.case("channel(): default capacity 64", function()
  local ch = task.channel()
  T.eq(getmetatable(ch).__name, "Channel")
  for i = 1, 64 do T.eq(ch:try_send(i), true) end
  local ok, err = ch:try_send(65)
  T.eq(ok, nil); T.eq(err, "full")
  T.eq(ch:len(), 64)
end)

T.case("channel(n) and channel{capacity = n}", function()
  for _, ch in ipairs({task.channel(2), task.channel({capacity = 2})}) do
    T.eq(ch:try_send("a"), true); T.eq(ch:try_send("b"), true)
    local ok, err = ch:try_send("c")
    T.eq(ok, nil); T.eq(err, "full")
  end
  T.eq(task.channel({}):try_send(1), true)
end)

T.case("channel: capacity must be positive", function()
  for _, bad in ipairs({0, -1, 1.5, {capacity = 0}, {capacity = -3}, {capacity = 2.5}, {capacity = "x"}}) do
    T.raises("capacity must be positive", task.channel, bad)
  end
  H.badarg(1, "channel", function() return task.channel("big") end)
end)

T.case("send/recv: FIFO, nil is a valid message", function()
  local ch = task.channel(4)
  ch:send(1); ch:send(nil); ch:send(false); ch:send("x")
  T.eq(ch:recv(), 1)
  local r = table.pack(ch:recv())
  T.eq(r.n, 1); T.eq(r[1], nil)
  T.eq(ch:recv(), false); T.eq(ch:wait(), "x")
end)

T.case("send waits while full; blocked senders resume in FIFO order", function()
  local ch = task.channel(1)
  ch:send(0)
  local log = {}
  local ts = {}
  for i = 1, 3 do ts[i] = task.spawn(function() local ok = ch:send(i); log[#log + 1] = i; return ok end) end
  task.yield()
  for i = 1, 3 do T.eq(task.status(ts[i]), "WAIT") end
  local got = {}
  for _ = 1, 4 do got[#got + 1] = ch:recv() end
  T.same(got, {0, 1, 2, 3})
  for i = 1, 3 do T.eq(ts[i]:join(), true) end
  T.same(log, {1, 2, 3})
end)

T.case("recv waits while empty; receivers are served FIFO", function()
  local ch = task.channel(8)
  local log, ts = {}, {}
  for i = 1, 3 do ts[i] = task.spawn(function() local v = ch:recv(); log[#log + 1] = i .. "=" .. v end) end
  task.yield()
  ch:send("a"); ch:send("b"); ch:send("c")
  for i = 1, 3 do ts[i]:join() end
  T.same(log, {"1=a", "2=b", "3=c"})
end)

T.case("try_send/try_recv: full, empty, closed", function()
  local ch = task.channel(1)
  local v, err = ch:try_recv()
  T.eq(v, nil); T.eq(err, "empty")
  T.eq(ch:try_send(nil), true)
  local r = table.pack(ch:try_recv())
  T.eq(r.n, 1); T.eq(r[1], nil)
  ch:close()
  v, err = ch:try_send(1)
  T.eq(v, nil); T.eq(err, "closed")
  v, err = ch:try_recv()
  T.eq(v, nil); T.eq(err, "closed")
end)

T.case("close: true; queued items stay readable, then nil, 'closed'; send after close", function()
  local ch = task.channel(4)
  ch:send(1); ch:send(2)
  T.eq(ch:close(), true)
  T.eq(ch:close(), true)
  local ok, err = ch:send(3)
  T.eq(ok, nil); T.eq(err, "closed")
  T.eq(ch:recv(), 1); T.eq(ch:recv(), 2)
  local v, e = ch:recv()
  T.eq(v, nil); T.eq(e, "closed")
  v, e = ch:wait()
  T.eq(v, nil); T.eq(e, "closed")
  T.ok(tostring(ch):find("closed", 1, true), tostring(ch))
end)

T.case("close wakes blocked receivers and senders with nil, 'closed'", function()
  local ch = task.channel(1)
  local r = task.spawn(function() return ch:recv() end)
  task.yield()
  ch:close()
  local v, e = r:join()
  T.eq(v, nil); T.eq(e, "closed")
  local ch2 = task.channel(1)
  ch2:send("kept")
  local s = task.spawn(function() return ch2:send("lost") end)
  task.yield()
  ch2:close()
  v, e = s:join()
  T.eq(v, nil); T.eq(e, "closed")
  T.eq(ch2:recv(), "kept")
  v, e = ch2:recv()
  T.eq(e, "closed")
end)

T.case("Channel is awaitable with __call", function()
  local ch = task.channel()
  task.spawn(function() ch:send("c") end)
  T.eq(ch(), "c")
end)

T.case("channel pipeline with many values", function()
  local ch, out = task.channel(3), task.channel(3)
  task.spawn(function() for i = 1, 200 do ch:send(i) end ch:close() end)
  task.spawn(function()
    while true do local v, e = ch:recv(); if e then break end; out:send(v * 2) end
    out:close()
  end)
  local sum = 0
  while true do local v, e = out:recv(); if e then break end; sum = sum + v end
  T.eq(sum, 200 * 201)
end)

T.case("select: a ready channel wins at once; lowest index wins a tie", function()
  local a, b = task.channel(), task.channel()
  b:send("b"); a:send("a")
  local i, v = task.select({a, b})
  T.eq(i, 1); T.eq(v, "a")
  i, v = task.select({a, b})
  T.eq(i, 2); T.eq(v, "b")
end)

T.case("select: waits for the first to complete; losers' waits are dropped", function()
  local a, b = task.channel(), task.channel()
  task.spawn(function() task.sleep(5); b:send("from b") end)
  local i, v = task.select({a, b, task.timer(50)})
  T.eq(i, 2); T.eq(v, "from b")
  a:send("stays")
  T.eq(a:try_recv(), "stays", "the loser's wait no longer takes values")
end)

T.case("select: tasks (results and errors), timers, closed channels", function()
  local t = task.spawn(function() task.sleep(3); return "r1", "r2" end)
  local i, x, y = task.select({task.channel(), t})
  T.eq(i, 2); T.eq(x, "r1"); T.eq(y, "r2")
  T.raises("task already joined", t.join, t)
  local bad = task.spawn(function() task.sleep(1); error("sel err", 0) end)
  T.raises("sel err", task.select, {bad, task.timer(100)})
  local tm = task.timer(2)
  i = task.select({task.channel(), tm})
  T.eq(i, 2)
  local c = task.channel(); c:close()
  local j, v, e = task.select({task.channel(), c})
  T.eq(j, 2); T.eq(v, nil); T.eq(e, "closed")
end)

T.case("select: several ready at call time: the lowest index wins (tasks, timers)", function()
  local t1, t2 = task.timer(5), task.timer(5)
  local a = task.spawn(function() return "a" end)
  local b = task.spawn(function() return "b" end)
  task.sleep(6)
  local i = task.select({t2, t1})
  T.eq(i, 1)
  local k, v = task.select({b, a})
  T.eq(k, 1); T.eq(v, "b")
  a:join()
end)

T.case("select: the losers' work is not cancelled", function()
  local slow = task.spawn(function() task.sleep(20) return "slow done" end)
  local i = task.select({slow, task.timer(5)})
  T.eq(i, 2)
  T.eq(slow:join(), "slow done")
end)

T.case("select: errors", function()
  T.raises("task.select: the list is empty", task.select, {})
  local e = H.badarg(1, "select", function() return task.select({task.channel(), 5}) end)
  T.ok(e:find("element 2 is not a Task, Channel or Timer", 1, true), e)
  H.badarg(1, "select", function() return task.select(5) end)
  T.raises("task.select: a task cannot wait for itself", task.select, {task.running()})
end)

T.run()
