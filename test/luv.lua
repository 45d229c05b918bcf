-- luv.lua: task.luv (task/luv.lua), the scheduler driven from a luv loop,
-- in the stock lua5.4 with the standalone module and lua-luv.
--   lua5.4 test/luv.lua [MODULE_DIR]   (default build; run from the repository root)
-- Every case runs its own tluv.run and then checks that the loop is left
-- with nothing alive and no handle (uv.walk). No timing assertions: ticks
-- and counts; deadlines only catch hangs.
local dir = arg and arg[1] or "build"
package.cpath = dir .. "/?.so;" .. package.cpath
package.path = "./?.lua;" .. package.path
local uv = require "luv"
local task = require "task"
local tluv = require "task.luv"

local failed = 0
local function handles()
  local n, names = 0, {}
  uv.walk(function(h) n = n + 1; names[#names + 1] = tostring(h) end)
  return n, table.concat(names, ", ")
end
local function case(name, fn)
  local ok, err = xpcall(fn, debug.traceback)
  if ok then
    local n, names = handles()
    if uv.loop_alive() then ok, err = false, "the loop is still alive afterwards"
    elseif n > 0 then ok, err = false, n .. " handle(s) left: " .. names end
  end
  print((ok and "ok - " or "not ok - ") .. "luv: " .. name)
  if not ok then
    failed = failed + 1
    print("# " .. tostring(err):gsub("\n", "\n# "))
    -- leave a clean loop for the next case
    uv.walk(function(h) if not h:is_closing() then h:close() end end)
    for _ = 1, 100 do if not uv.loop_alive() then break end uv.run("nowait") end
  end
end
local function eq(a, b, what)
  if a ~= b then error(("%s: got %s, want %s"):format(what or "value", tostring(a), tostring(b)), 2) end
end
local function has(s, pat, what)
  if type(s) ~= "string" or not s:find(pat, 1, true) then
    error(("%s: %s does not contain %q"):format(what or "value", tostring(s), pat), 2)
  end
end

-- A hang guard for one case: fails it after ms instead of waiting forever.
local function bounded(ms, fn)
  return function()
    local v, err = task.timeout(ms, fn)
    if err == "timeout" then error("gave up after " .. ms .. " ms (a hang)") end
    return v
  end
end

-- Inside a task: a connected pair (client, server side) over loopback.
local function pair()
  local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
  local port = lst:getsockname().port
  local c = assert(tluv.tcp_connect("127.0.0.1", port))
  local s = assert(tluv.accept(lst))
  tluv.close(lst)
  return c, s, port
end

-- A loopback port nothing listens on (bound, then closed).
local function dead_port()
  local t = uv.new_tcp()
  assert(t:bind("127.0.0.1", 0))
  local port = t:getsockname().port
  return port, t
end

-- The process's open file descriptors.
local function nfds()
  local req = assert(uv.fs_scandir("/proc/self/fd"))
  local n = 0
  while uv.fs_scandir_next(req) do n = n + 1 end
  return n
end

local function ticks() return tluv.stats().ticks end

-- Inside a task: runs fn in a new task and cancels that task in the same
-- tick, right after fn started its luv call and parked (no loop turn in
-- between: the call is pending for sure); at_cancel() runs just before.
-- Returns pcall(join)'s results.
local function cancel_pending(fn, at_cancel)
  local t
  t = task.spawn(function()
    task.spawn(function()
      eq(task.status(t), "WAIT", "the task at its cancel")
      if at_cancel then at_cancel() end
      t:cancel()
    end)
    return fn()
  end)
  return pcall(t.join, t)
end

-- Collects what goes to task's error handler during fn.
local function with_errors(fn)
  local got = {}
  local prev = task.set_error_handler(function(err, t, tb) got[#got + 1] = {err = err, task = t, tb = tb} end)
  local ok, e = pcall(fn, got)
  task.set_error_handler(prev)
  if not ok then error(e, 0) end
  return got
end

-- ---- the driver ---------------------------------------------------------------

case("run returns fn's results, nil included", function()
  local r = table.pack(tluv.run(function(a, b) task.sleep(1); return a + b, nil, "x" end, 40, 2))
  eq(r.n, 3); eq(r[1], 42); eq(r[2], nil); eq(r[3], "x")
end)

case("run raises fn's error: the value itself, a string with the traceback", function()
  local obj = {}
  local ok, e = pcall(tluv.run, function() task.sleep(1); error(obj) end)
  eq(ok, false); eq(e, obj)
  ok, e = pcall(tluv.run, function() error("plain", 0) end)
  eq(ok, false)
  assert(e:find("^plain\ntraceback of the failing task:\n"), e)
  has(e, "test/luv.lua", "traceback")
end)

case("run waits for every task, also ones fn did not join", function()
  local log = {}
  tluv.run(function()
    task.spawn(function() task.sleep(5); log[#log + 1] = "late" end)
    log[#log + 1] = "main"
  end)
  eq(#log, 2); eq(log[2], "late")
end)

case("run refuses a non-function, a nested run and a call from a task", function()
  local ok, e = pcall(tluv.run, 42)
  eq(ok, false); has(e, "function expected")
  ok, e = pcall(tluv.run, function() return tluv.run(function() end) end)
  eq(ok, false); has(e, "task.luv.run: called from inside a task")
  -- and the next run works
  eq(tluv.run(function() return "again" end), "again")
end)

case("run reports a deadlock, aborts the stuck tasks and leaves the loop clean", function()
  local closed = false
  local ok, e = pcall(tluv.run, function()
    local _ <close> = setmetatable({}, {__close = function() closed = true end})
    task.wait()
  end)
  eq(ok, false)
  has(e, "task.luv.run: deadlock: 1 task waits and nothing can wake them")
  eq(closed, true, "the stuck task's to-be-closed variable ran")
  eq(task.count(), 0)
  eq(tluv.run(function() return 1 end), 1)
end)

case("a task woken from a luv callback while the loop is idle runs at the next tick", function()
  local at_resume, at_run, spawned_at, spawned_ran
  tluv.run(bounded(10000, function()
    -- a far timer: without a tick on the wake, nothing would run for ten minutes
    local sleeper = task.spawn(function() task.sleep(600000) end)
    local id = task.alloc()
    local t = uv.new_timer()
    t:start(5, 0, tluv.protect(function()
      at_resume = ticks()
      task.resume(id, "woken")
      t:close()
    end))
    eq(task.wait(id), "woken")
    at_run = ticks()
    -- a spawn from a luv callback (outside any task) as well
    local done = task.alloc()
    local t2 = uv.new_timer()
    t2:start(5, 0, tluv.protect(function()
      spawned_at = ticks()
      task.spawn(function() spawned_ran = ticks(); task.resume(done) end)
      t2:close()
    end))
    task.wait(done)
    sleeper:cancel()
  end))
  eq(at_run, at_resume + 1, "ticks between the resume and the task running, + 1")
  eq(spawned_ran, spawned_at + 1, "ticks between the spawn and the task running, + 1")
end)

case("loop turns that wake no task run no tick", function()
  local before, after, readies0, readies1
  tluv.run(bounded(10000, function()
    local id = task.alloc()
    local n = 0
    local t = uv.new_timer()
    t:start(1, 1, tluv.protect(function()
      n = n + 1
      if n == 1 then before, readies0 = ticks(), tluv.stats().readies end
      if n == 30 then t:close(); task.resume(id) end
    end))
    task.wait(id)
    after, readies1 = ticks(), tluv.stats().readies
  end))
  if after - before > 2 then error(("%d ticks over 30 loop turns with one wake"):format(after - before)) end
  if tluv.stats().on_ready then eq(readies1 - readies0, 1, "ready callbacks") end
end)

case("an error in a protected luv callback goes to the error handler; the loop goes on", function()
  local got = with_errors(function()
    local r = tluv.run(bounded(10000, function()
      local id = task.alloc()
      local t = uv.new_timer()
      t:start(1, 0, tluv.protect(function()
        t:close()
        task.resume(id)
        error("boom")
      end))
      task.wait(id)
      task.sleep(2)   -- the loop goes on after the error
      local t2 = uv.new_timer()
      local id2 = task.alloc()
      t2:start(1, 0, tluv.protect(function() t2:close(); task.resume(id2); error({code = 7}) end))
      task.wait(id2)
      task.sleep(1)
      return "after"
    end))
    eq(r, "after")
  end)
  eq(#got, 2, "errors reported")
  has(got[1].err, "boom"); eq(got[1].task, nil)
  has(got[1].tb, "stack traceback:"); has(got[1].tb, "test/luv.lua")
  eq(got[2].err.code, 7, "a non-string error reaches the handler as it is")
end)

case("a failing error handler and the default one: reported on stderr, the loop goes on", function()
  local lua = os.getenv("LUA") or "lua5.4"
  local script = [[
    package.cpath = ARGDIR .. "/?.so;" .. package.cpath
    package.path = "./?.lua;" .. package.path
    local uv, task, tluv = require "luv", require "task", require "task.luv"
    print(tluv.run(function()
      for i = 1, 2 do
        if i == 2 then task.set_error_handler(function() error("handler broke") end) end
        local id, t = task.alloc(), uv.new_timer()
        t:start(1, 0, tluv.protect(function() t:close(); task.resume(id); error("cb" .. i) end))
        task.wait(id)
      end
      return "survived"
    end))]]
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write((script:gsub("ARGDIR", ("%q"):format(dir))))
  f:close()
  local p = assert(io.popen(lua .. " " .. path .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  eq(ok, true, "exit status")
  has(out, "survived"); has(out, "cb1"); has(out, "handler broke"); has(out, "cb2")
end)

case("install: tasks run while the program runs uv.run itself", function()
  local log = {}
  tluv.install()
  task.spawn(function() task.sleep(2); log[#log + 1] = "slept" end)
  local t = uv.new_timer()
  t:start(1, 0, tluv.protect(function()
    t:close()
    task.spawn(function() log[#log + 1] = "from callback" end)
  end))
  uv.run()
  eq(task.count(), 0)
  eq(#log, 2)
  tluv.uninstall()
  uv.run()
end)

-- ---- TCP connect ---------------------------------------------------------------

case("tcp_connect: success, by address and by name", function()
  tluv.run(bounded(10000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    local c = assert(tluv.tcp_connect("127.0.0.1", port))
    eq(c:getpeername().port, port)
    local s = assert(tluv.accept(lst))
    tluv.close(c); tluv.close(s)
    local addrs = assert(tluv.getaddrinfo("localhost", nil, {socktype = "stream", family = "inet"}))
    if #addrs > 0 then
      c = assert(tluv.tcp_connect("localhost", port))
      tluv.close(c); tluv.close(assert(tluv.accept(lst)))
    end
    tluv.close(lst)
  end))
end)

case("tcp_connect: error (nothing listens) is nil, message", function()
  tluv.run(bounded(10000, function()
    local port, t = dead_port()
    tluv.close(t)
    local c, err = tluv.tcp_connect("127.0.0.1", port)
    eq(c, nil); has(err, "ECONNREFUSED")
  end))
end)

case("tcp_connect: task.timeout while pending gives timeout; the half-open handle is closed", function()
  tluv.run(bounded(10000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    -- a deadline already due: it fires at the next tick, before the loop polls
    local v, err = task.timeout(0, function() return tluv.tcp_connect("127.0.0.1", port) end)
    eq(v, nil); eq(err, "timeout")
    tluv.close(lst)
  end))
end)

case("tcp_connect: cancelled while pending raises task cancelled", function()
  tluv.run(bounded(10000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    local ok, e = cancel_pending(function() return tluv.tcp_connect("127.0.0.1", port) end)
    eq(ok, false); eq(e, "task cancelled")
    tluv.close(lst)
  end))
end)

-- ---- read ----------------------------------------------------------------------

case("read: data, then eof (again at every later read)", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    assert(tluv.write(c, "hello"))
    eq(tluv.read(s), "hello")
    tluv.close(c)
    local d, err = tluv.read(s)
    eq(d, nil); eq(err, "eof")
    d, err = tluv.read(s)
    eq(d, nil); eq(err, "eof")
    tluv.close(s)
  end))
end)

case("read: an error (connection reset) is nil, message", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local id = task.alloc()
    c:close_reset(function() task.resume(id) end)
    task.wait(id)
    local d, err = tluv.read(s)
    eq(d, nil); has(err, "ECONNRESET")
    tluv.close(s)
  end))
end)

case("read: its timeout returns nil, timeout; the stream still reads afterwards", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local d, err = tluv.read(s, 5)
    eq(d, nil); eq(err, "timeout")
    assert(tluv.write(c, "later"))
    eq(tluv.read(s, 5000), "later")
    local ok = pcall(tluv.read, s, -1)
    eq(ok, false, "a negative timeout raises")
    tluv.close(c); tluv.close(s)
  end))
end)

case("read: task.timeout around it gives timeout", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local v, err = task.timeout(0, function() return tluv.read(s) end)
    eq(v, nil); eq(err, "timeout")
    v, err = task.timeout(5, function() return tluv.read(s) end)
    eq(v, nil); eq(err, "timeout")
    tluv.close(c); tluv.close(s)
  end))
end)

case("read: cancelled while pending: raises, stops reading, loses no data", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local ok, e = cancel_pending(function() return tluv.read(s) end,
      function() eq(s:is_active(), true, "reading while a task waits") end)
    eq(ok, false); eq(e, "task cancelled")
    eq(s:is_active(), false, "reading stopped")
    assert(tluv.write(c, "kept"))
    eq(tluv.read(s), "kept")
    tluv.close(c); tluv.close(s)
  end))
end)

case("read and accept at a deadline: what came with it is kept for the next call", function()
  tluv.run(bounded(20000, function()
    local c, s = pair()
    local sent, got = {}, {}
    for i = 1, 50 do
      local m = ("<%d>"):format(i)
      sent[#sent + 1] = m
      assert(tluv.write(c, m))
      -- data read ahead comes at once; else the deadline fires
      local v, err = task.timeout(0, function() return tluv.read(s) end)
      if v then got[#got + 1] = v else eq(err, "timeout") end
    end
    local all = table.concat(sent)
    while #table.concat(got) < #all do got[#got + 1] = assert(tluv.read(s)) end
    eq(table.concat(got), all, "every byte once, in order")
    tluv.close(c); tluv.close(s)
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    for _ = 1, 20 do
      local cl = assert(tluv.tcp_connect("127.0.0.1", port))
      local v, err = task.timeout(0, function() return tluv.accept(lst) end)
      if not v then eq(err, "timeout") end
      local sv = v or assert(tluv.accept(lst, 5000))
      assert(tluv.write(cl, "k")); eq(tluv.read(sv), "k")
      tluv.close(cl); tluv.close(sv)
    end
    tluv.close(lst)
  end))
end)

case("read: a second reader raises; close wakes the reader with closed; outside a task it raises", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local t = task.spawn(function() return tluv.read(s) end)
    task.yield()
    local ok, e = pcall(tluv.read, s)
    eq(ok, false); has(e, "another task is waiting")
    tluv.close(s)
    local d, err = t:join()
    eq(d, nil); eq(err, "closed")
    d, err = tluv.read(s)
    eq(d, nil); eq(err, "closed", "read after close")
    tluv.close(c)
  end))
  local ok, e = pcall(tluv.read, uv.new_tcp())
  eq(ok, false); has(e, "must be called from inside a task")
  uv.walk(function(h) h:close() end); uv.run()
end)

case("read: a reader aborted while parked leaves the stream to the next reader", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local t = task.spawn(function()
      local _ <close> = tluv.closing(c) -- runs at the abort: c is closed
      return tluv.read(s)
    end)
    task.yield()
    eq(task.status(t), "WAIT")
    t:abort()
    eq(select(2, pcall(t.join, t)), "task aborted")
    eq(c:is_closing(), true, "the aborted task's guard closed its handle")
    local d, err = tluv.read(s, 5000)
    eq(d, nil); eq(err, "eof", "the next reader takes over")
    tluv.close(s)
  end))
end)

-- ---- write ---------------------------------------------------------------------

-- More than a loopback socket's buffers hold while the peer does not read.
local BIG = string.rep("x", 64 * 1024 * 1024)

case("write: success, also of more than the socket takes at once", function()
  tluv.run(bounded(60000, function()
    local c, s = pair()
    assert(tluv.write(c, "small"))
    eq(tluv.read(s), "small")
    local n = 0
    local reader = task.spawn(function()
      while n < #BIG do n = n + #assert(tluv.read(s)) end
    end)
    assert(tluv.write(c, BIG))
    reader:join()
    eq(n, #BIG)
    assert(tluv.write(c, {"a", "b"}))
    eq(tluv.read(s), "ab")
    tluv.close(c); tluv.close(s)
  end))
end)

case("write: an error (peer reset) is nil, message", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local id = task.alloc()
    s:close_reset(function() task.resume(id) end)
    task.wait(id)
    local _, rerr = tluv.read(c) -- the reset has arrived
    has(rerr, "ECONNRESET")
    local ok, err = tluv.write(c, "x")
    eq(ok, nil); assert(err and (err:find("EPIPE") or err:find("ECONNRESET")), err)
    tluv.close(c)
  end))
end)

case("write: task.timeout and cancel while pending; the stream stays usable", function()
  tluv.run(bounded(60000, function()
    local c, s = pair()
    local v, err = task.timeout(0, function() return tluv.write(c, BIG) end)
    eq(v, nil); eq(err, "timeout")
    local ok, e = cancel_pending(function() return tluv.write(c, BIG) end)
    eq(ok, false); eq(e, "task cancelled")
    -- both writes go on in the background, in order, then a new one
    local reader = task.spawn(function()
      local n = 0
      while n < 2 * #BIG + 3 do n = n + #assert(tluv.read(s)) end
      return n
    end)
    assert(tluv.write(c, "end"))
    eq(reader:join(), 2 * #BIG + 3)
    tluv.close(c); tluv.close(s)
  end))
end)

-- ---- close and accept ------------------------------------------------------------

case("close: waits for libuv, twice is fine, a cancelled task closes without raising", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    eq(tluv.close(c), true)
    eq(c:is_closing(), true)
    eq(tluv.close(c), true)
    local t = task.spawn(function()
      local _ <close> = tluv.closing(s)
      task.sleep(600000)
    end)
    task.yield()
    t:cancel()
    local ok, e = pcall(t.join, t)
    eq(ok, false); eq(e, "task cancelled")
    eq(s:is_closing(), true, "closed by the cancelled task's <close> guard")
  end))
end)

case("accept: timeout, task.timeout and cancel while pending", function()
  tluv.run(bounded(10000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local c, err = tluv.accept(lst, 5)
    eq(c, nil); eq(err, "timeout")
    c, err = task.timeout(0, function() return tluv.accept(lst) end)
    eq(c, nil); eq(err, "timeout")
    eq(select(2, cancel_pending(function() return tluv.accept(lst) end)), "task cancelled")
    -- the connection that comes next is kept for the next accept
    local port = lst:getsockname().port
    local cl = assert(tluv.tcp_connect("127.0.0.1", port))
    local s = assert(tluv.accept(lst, 5000))
    assert(tluv.write(cl, "x")); eq(tluv.read(s), "x")
    tluv.close(cl); tluv.close(s); tluv.close(lst)
  end))
end)

case("accept: close wakes the waiter with closed; connections not taken are closed", function()
  tluv.run(bounded(10000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local waiter = task.spawn(function() return tluv.accept(lst) end)
    task.yield()
    tluv.close(lst)
    local w1, w2 = waiter:join()
    eq(w1, nil); eq(w2, "closed")
    w1, w2 = tluv.accept(lst)
    eq(w1, nil); eq(w2, "closed", "accept after close")
    -- a connection the listener accepted and nobody took: closed with it
    -- (the loop check after the case finds no handle left)
    lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    local cl = assert(tluv.tcp_connect("127.0.0.1", port))
    task.sleep(10) -- loop turns: the listener's callback queues it
    tluv.close(lst)
    local d, err = tluv.read(cl)
    eq(d, nil); assert(err == "eof" or err:find("ECONNRESET"), err)
    tluv.close(cl)
  end))
end)

-- ---- files -----------------------------------------------------------------------

case("fs_open, fs_read, fs_close: success and errors", function()
  tluv.run(bounded(10000, function()
    local fd = assert(tluv.fs_open("test/luv.lua", "r", 0))
    local head = assert(tluv.fs_read(fd, 9, 0))
    eq(head, "-- luv.lu")
    eq(tluv.fs_close(fd), true)
    local f, err = tluv.fs_open("test/no-such-file", "r", 0)
    eq(f, nil); has(err, "ENOENT")
    local d
    d, err = tluv.fs_read(fd, 10, 0) -- closed now
    eq(d, nil); has(err, "EBADF")
    local ok
    ok, err = tluv.fs_close(fd)
    eq(ok, nil); has(err, "EBADF")
  end))
end)

case("fs_open under task.timeout or cancelled while pending: no descriptor leaks", function()
  local before = nfds()
  tluv.run(bounded(10000, function()
    for _ = 1, 20 do
      local v, err = task.timeout(0, function() return tluv.fs_open("test/luv.lua", "r", 0) end)
      eq(v, nil); eq(err, "timeout")
    end
    for _ = 1, 20 do
      local ok, e = cancel_pending(function() return tluv.fs_open("test/luv.lua", "r", 0) end)
      eq(ok, false); eq(e, "task cancelled")
    end
  end))
  eq(nfds(), before, "open descriptors")
end)

case("fs_read and fs_close under task.timeout or cancelled while pending", function()
  local before = nfds()
  tluv.run(bounded(10000, function()
    local fd = assert(tluv.fs_open("test/luv.lua", "r", 0))
    local v, err = task.timeout(0, function() return tluv.fs_read(fd, 100, 0) end)
    eq(v, nil); eq(err, "timeout")
    eq(select(2, cancel_pending(function() return tluv.fs_read(fd, 100, 0) end)), "task cancelled")
    eq(#assert(tluv.fs_read(fd, 100, 0)), 100, "the descriptor still reads")
    -- a cancelled close still closes
    eq(select(2, cancel_pending(function() return tluv.fs_close(fd) end)), "task cancelled")
  end))
  eq(nfds(), before, "open descriptors")
end)

-- ---- names -----------------------------------------------------------------------

case("getaddrinfo: success, error, task.timeout and cancel while pending", function()
  tluv.run(bounded(10000, function()
    local r = assert(tluv.getaddrinfo("127.0.0.1", "80", {socktype = "stream"}))
    eq(r[1].addr, "127.0.0.1"); eq(r[1].port, 80)
    local v, err = tluv.getaddrinfo("127.0.0.1", "no-such-service-x", {socktype = "stream"})
    eq(v, nil); has(err, "EAI_SERVICE")
    v, err = task.timeout(0, function() return tluv.getaddrinfo("localhost") end)
    eq(v, nil); eq(err, "timeout")
    eq(select(2, cancel_pending(function() return tluv.getaddrinfo("localhost") end)), "task cancelled")
  end))
end)

-- ---- hostile use ---------------------------------------------------------------------

-- Aborts the task running fn once it is parked in fn's call (a task spawned
-- before fn runs does it, in the same tick).
local function abort_pending(fn)
  local t
  t = task.spawn(function()
    task.spawn(function()
      eq(task.status(t), "WAIT", "the task at its abort")
      t:abort()
    end)
    return fn()
  end)
  return pcall(t.join, t)
end

case("tcp_connect: a task aborted while connecting leaves no handle behind", function()
  tluv.run(bounded(10000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    local ok, e = abort_pending(function() return tluv.tcp_connect("127.0.0.1", port) end)
    eq(ok, false); eq(e, "task aborted")
    task.sleep(20) -- the connect completes meanwhile, for nobody
    tluv.close(lst)
  end))
  -- the case checks that no handle is left (uv.walk)
end)

case("wrong argument types raise naming the call; no handle or per-handle state is left", function()
  tluv.run(bounded(10000, function()
    local function fails(want, f, ...)
      local ok, e = pcall(f, ...)
      eq(ok, false, want); has(e, want)
    end
    fails("bad argument #1 to 'task.luv.read' (luv stream expected, got number)", tluv.read, 42)
    fails("bad argument #1 to 'task.luv.read' (luv stream expected, got userdata)", tluv.read, task.channel())
    fails("bad argument #1 to 'task.luv.write' (luv stream expected, got string)", tluv.write, "x", "y")
    fails("bad argument #1 to 'task.luv.close' (luv handle expected, got number)", tluv.close, 1)
    -- a userdata that is not luv's never reaches a luv function (luv would read it as a handle)
    fails("bad argument #1 to 'task.luv.close' (luv handle expected, got userdata)", tluv.close, task.channel())
    fails("bad argument #1 to 'task.luv.close' (luv handle expected, got userdata)", tluv.close, io.stdout)
    fails("bad argument #1 to 'task.luv.closing' (luv handle expected, got table)", tluv.closing, {})
    fails("bad argument #1 to 'task.luv.tcp_connect' (string expected, got nil)", tluv.tcp_connect, nil, 80)
    fails("bad argument #2 to 'task.luv.tcp_connect' (integer expected, got string)", tluv.tcp_connect, "127.0.0.1", "x")
    fails("bad argument #1 to 'task.luv.tcp_listen' (string expected, got nil)", tluv.tcp_listen, nil, 0)
    fails("bad argument #2 to 'task.luv.tcp_listen' (integer expected, got number)", tluv.tcp_listen, "127.0.0.1", 0.5)
    fails("bad argument #3 to 'task.luv.tcp_listen' (integer expected, got string)", tluv.tcp_listen, "127.0.0.1", 0, "x")
    -- what luv itself refuses, named after the call
    fails("task.luv.fs_open: bad argument #1 to 'fs_open'", tluv.fs_open, nil, "r", 0)
    fails("task.luv.fs_read: bad argument #2 to 'fs_read' (number has no integer representation)", tluv.fs_read, 0, 0 / 0)
    fails("task.luv.getaddrinfo: bad argument #3", tluv.getaddrinfo, "localhost", nil, 5)
    -- an address luv cannot parse: luv raises; the handle made for it is closed
    fails("task.luv.tcp_connect: ", tluv.tcp_connect, "999.1.1.1", 80)
    -- a listener is not read
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    fails("task.luv.read: a listener", tluv.read, lst)
    tluv.close(lst)
    -- reads of values that are no stream keep nothing per value
    collectgarbage(); collectgarbage()
    local kb = collectgarbage("count")
    for i = 1, 5000 do pcall(tluv.read, "not a stream " .. i) end
    collectgarbage(); collectgarbage()
    local grew = collectgarbage("count") - kb
    if grew > 200 then error(("%d KB kept after 5000 bad reads"):format(grew)) end
  end))
end)

case("read and accept: timeouts no timer can hold raise 'invalid timeout' before anything starts", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    for _, ms in ipairs({1e300, 2^63, math.huge, -1, 0 / 0, "5"}) do
      local ok, e = pcall(tluv.read, s, ms)
      eq(ok, false); has(e, "task.luv.read: invalid timeout")
      ok, e = pcall(tluv.accept, lst, ms)
      eq(ok, false); has(e, "task.luv.accept: invalid timeout")
    end
    -- nothing was started: the stream still reads, the data is not lost
    assert(tluv.write(c, "after"))
    eq(tluv.read(s, 5000), "after")
    tluv.close(lst); tluv.close(c); tluv.close(s)
  end))
end)

case("read: a stream closed behind task.luv's back (h:close()) wakes its reader with closed", function()
  tluv.run(bounded(10000, function()
    local c, s = pair()
    local t = task.spawn(function() return tluv.read(s, 20) end)
    task.yield()
    eq(task.status(t), "WAIT")
    s:close() -- not tluv.close: libuv calls no read callback any more
    local d, err = t:join()
    eq(d, nil); eq(err, "closed")
    d, err = tluv.read(s)
    eq(d, nil); eq(err, "closed", "a later read")
    tluv.close(c)
  end))
end)

case("uninstall inside run raises: run's loop keeps its handles and ends", function()
  local ok, e = pcall(tluv.run, bounded(10000, function()
    local ok2, e2 = pcall(tluv.uninstall)
    eq(ok2, false); has(e2, "task.luv.uninstall: task.luv.run is running")
    task.sleep(5) -- still driven: the timer wakes it
    return "driven"
  end))
  eq(ok, true, tostring(e)); eq(e, "driven")
end)

-- ---- many at once ------------------------------------------------------------------

case("200 tasks ping-pong over 100 connections; every byte checked", function()
  local total = tluv.run(bounded(60000, function()
    local lst = assert(tluv.tcp_listen("127.0.0.1", 0))
    local port = lst:getsockname().port
    local sum = 0
    task.scope(function(sc)
      sc:spawn(function()
        for _ = 1, 100 do
          local s = assert(tluv.accept(lst))
          sc:spawn(function()
            local _ <close> = tluv.closing(s)
            while true do
              local d = tluv.read(s)
              if not d then return end
              assert(tluv.write(s, d))
            end
          end)
        end
      end)
      for i = 1, 100 do
        sc:spawn(function()
          local c = assert(tluv.tcp_connect("127.0.0.1", port))
          local _ <close> = tluv.closing(c)
          for m = 1, 50 do
            local msg = ("%d:%d:"):format(i, m) .. string.rep(string.char(65 + m % 26), m)
            assert(tluv.write(c, msg))
            local got = ""
            while #got < #msg do got = got .. assert(tluv.read(c)) end
            eq(got, msg)
            sum = sum + #msg
          end
        end)
      end
    end)
    tluv.close(lst)
    return sum
  end))
  local want = 0
  for i = 1, 100 do for m = 1, 50 do want = want + #(("%d:%d:"):format(i, m)) + m end end
  eq(total, want, "bytes echoed")
end)

print(failed == 0 and "# all passed" or ("# " .. failed .. " failed"))
os.exit(failed == 0 and 0 or 1)
