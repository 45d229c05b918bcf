-- lua_module.lua: the standalone module (make module: build/task.so) in the
-- stock lua5.4, with task.run and the real clock.
--   lua5.4 test/lua_module.lua build
local dir = arg and arg[1] or "build"
package.cpath = dir .. "/?.so;" .. package.cpath
local task = require "task"
local failed = 0
local function case(name, fn)
  local ok, err = pcall(fn)
  print((ok and "ok - " or "not ok - ") .. "module: " .. name)
  if not ok then failed = failed + 1; print("# " .. tostring(err)) end
end
local function eq(a, b, what) if a ~= b then error(("%s: got %s, want %s"):format(what or "value", tostring(a), tostring(b)), 2) end end

case("require returns the same table twice; task.run exists", function()
  eq(require "task", task); eq(type(task.run), "function")
end)

case("suspending outside a task raises naming the function", function()
  local ok, e = pcall(task.sleep, 1)
  eq(ok, false); eq(e, "task.sleep: must be called from inside a task")
  ok, e = pcall(task.channel().recv, task.channel())
  eq(ok, false); eq(e, "Channel:recv: must be called from inside a task")
end)

case("run(fn, ...) returns fn's results", function()
  local r = table.pack(task.run(function(a, b) task.sleep(1); return a + b, "x", nil end, 40, 2))
  eq(r.n, 3); eq(r[1], 42); eq(r[2], "x"); eq(r[3], nil)
end)

case("run raises fn's error: the value itself, a string with the failing task's traceback", function()
  local obj = {}
  local ok, e = pcall(task.run, function() task.sleep(1); error(obj) end)
  eq(ok, false); eq(e, obj)
  ok, e = pcall(task.run, function() error("plain", 0) end)
  eq(ok, false)
  assert(e:find("^plain\ntraceback of the failing task:"), e)
  -- a joined task's error keeps the traceback of where it was raised
  ok, e = pcall(task.run, function()
    local t = task.spawn(function() local x = nil; return x.field end)
    return t:join()
  end)
  eq(ok, false)
  assert(e:find("attempt to index a nil value", 1, true), e)
  assert(e:find("lua_module.lua:%d+: in function <"), e)
end)

case("run waits for every task, also ones fn did not join", function()
  local log = {}
  task.run(function()
    task.spawn(function() task.sleep(30); log[#log + 1] = "late" end)
    log[#log + 1] = "main done"
  end)
  eq(#log, 2); eq(log[2], "late")
end)

case("run sleeps, not spins: little CPU over a 200 ms sleep; the real clock moves", function()
  local c0, t0 = os.clock(), nil
  local elapsed = task.run(function() t0 = task.now(); task.sleep(200); return task.now() - t0 end)
  local cpu = os.clock() - c0
  if not (elapsed >= 200) then error("elapsed " .. elapsed) end -- luacheck: ignore 581 (NaN too)
  if cpu > 0.05 then error(("cpu %.3f s over a 200 ms sleep"):format(cpu)) end
end)

case("run with timers, channels and a timeout on the real clock", function()
  local r, e = task.run(function()
    local ch = task.channel(1)
    task.spawn(function() task.sleep(5); ch:send("v") end)
    local v = ch:recv()
    local r1, e1 = task.timeout(10, function() task.sleep(500) end)
    return v, e1
  end)
  eq(r, "v"); eq(e, "timeout")
end)

case("run reports a deadlock", function()
  local ok, e = pcall(task.run, function() task.wait() end)
  eq(ok, false)
  if not tostring(e):find("task.run: deadlock", 1, true) then error(tostring(e)) end
  -- and recovers: the stuck task does not block the next run forever
end)

case("a deadlock names every stuck task: what it waits on and its traceback", function()
  local ok, e = pcall(task.run, function()
    local ch = task.channel(1)
    local c = task.spawn({name = "consumer"}, function() return ch:recv() end)
    task.spawn({name = "waiter"}, function() return task.wait() end)
    return c:join()
  end)
  eq(ok, false)
  e = tostring(e)
  assert(e:find("task.run: deadlock: 3 tasks wait and nothing can wake them:", 1, true), e)
  assert(e:find("%(consumer%) WAIT for [%d.]+ m?s: a value from Channel %(0/1%)"), e)
  assert(e:find("%(waiter%) WAIT for [%d.]+ m?s: task.wakeup %(task.wait%)"), e)
  assert(e:find("WAIT for [%d.]+ m?s: the end of task %d+ %(consumer%) %(join%)"), e)
  assert(e:find("in method 'recv'", 1, true) or e:find("in function 'recv'", 1, true), e)
end)

case("step, poll_timeout and count drive the scheduler from a loop of one's own", function()
  eq(task.count(), 0)
  eq(task.poll_timeout(), nil) -- nothing pending: block as long as you like
  local log = {}
  task.spawn(function() log[#log + 1] = "ran"; task.sleep(5); log[#log + 1] = "woke"; return "r" end)
  eq(task.count(), 1)
  eq(task.poll_timeout(), 0) -- ready: tick at once
  eq(task.step(), 1)
  eq(log[1], "ran")
  local ms = task.poll_timeout()
  assert(ms > 0 and ms <= 5, "ms " .. tostring(ms))
  local deadline = os.clock() + 5
  while task.count() > 0 and os.clock() < deadline do
    local wait = task.poll_timeout()
    if wait and wait > 0 then local t0 = os.clock(); while os.clock() - t0 < wait / 1000 do end end
    task.step()
  end
  eq(log[2], "woke")
  eq(task.count(), 0)
  -- step(max) caps one tick; inside a task or under run it refuses
  for _ = 1, 3 do task.spawn(function() end) end
  eq(task.step(2), 2)
  eq(task.step(), 1)
  local ok, e = pcall(task.run, function() return task.step() end)
  eq(ok, false)
  assert(tostring(e):find("task.step: called from inside a task", 1, true), tostring(e))
end)

case("run is not reentrant", function()
  local ok, e = pcall(task.run, function() return task.run(function() end) end)
  eq(ok, false)
  if not tostring(e):find("task.run: already running", 1, true) then error(tostring(e)) end
end)

case("a task's unjoined error goes to stderr, run goes on", function()
  local r = task.run(function()
    task.spawn(function() error("to stderr", 0) end)
    task.sleep(2)
    return "fine"
  end)
  eq(r, "fine")
end)

-- ---- regression cases -------------------------------------------------------

-- The interpreter running this script, for child processes.
local function interpreter()
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end
  return arg and arg[i] or "lua5.4"
end

-- A finalizer made before require "task" runs after the module's own __gc
-- when lua5.4 closes the state at exit: every module function and method it
-- calls must raise "task module is closed" (not crash). In a child process;
-- its whole output (stdout and stderr) must be exactly the expected lines.
local CLOSED_CHILD = [==[
package.cpath = DIR .. "/?.so;" .. package.cpath
local K = {}
local out = io.stdout
SENTINEL = setmetatable({}, {__gc = function()
  local t, f = K.task, function() end
  local n, bad, known = 0, {}, {}
  local function try(name, fn, ...)
    n = n + 1
    local ok, e = pcall(fn, ...)
    if ok or not tostring(e):find("task module is closed", 1, true) then
      bad[#bad + 1] = name .. " -> " .. (ok and "returned " or "raised ") .. tostring(e)
    end
  end
  local calls = {
    {"spawn", f}, {"fork", f, 1}, {"running"}, {"current"}, {"status", K.done}, {"sleep", 1}, {"yield"},
    {"checkpoint"}, {"wait"}, {"wakeup", K.pending, 1}, {"alloc"}, {"resume", 1, 2}, {"cancel_token"},
    {"now"}, {"select", {K.ch}}, {"timer", 1}, {"channel", 1}, {"taskstat"}, {"tasks"}, {"tracenode", 1},
    {"tracespawn"}, {"traceset", 1}, {"tracepropagate"}, {"traceparent"},
    {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    {"hook", nil, nil}, {"task_hook", nil, nil}, {"run", f}, {"scope", f}, {"all", f}, {"race", f},
    {"timeout", 1, f}, {"with_timeout", 1, f}, {"external", f}, {"await", K.ch}, {"after", 1, f},
  }
  for _, c in ipairs(calls) do
    known[c[1]] = true
    if type(t[c[1]]) ~= "function" then bad[#bad + 1] = "task." .. c[1] .. " is missing"
    else try("task." .. c[1], t[c[1]], table.unpack(c, 2, 3)) end
  end
  for k, v in pairs(t) do
    if type(v) == "function" and not known[k] then try("task." .. tostring(k), v) end
  end
  for _, m in ipairs(K.methods) do try(m[1], m[2], m[3], m[4]) end
  for _, o in ipairs({K.done, K.pending, K.ch, K.tm, K.tok, K.scope}) do pcall(tostring, o) end
  out:write(("CLOSED %d calls\n"):format(n))
  for _, b in ipairs(bad) do out:write("WRONG " .. b .. "\n") end
  out:write("END\n")
end})
local task = require "task"
K.task = task
task.run(function()
  K.ch = task.channel(2); K.ch:send("kept")
  K.done = task.spawn(function() return 1 end)
  K.tok = task.cancel_token()
  task.scope(function(s) K.scope = s end)
  task.yield()
end)
K.tm = task.timer(1e6)                   -- armed at exit
K.pending = task.spawn(function() end)   -- never ran: alive at exit
local f = function() end
local M = {
  Task = {K.pending, {"wait", "join", "cancel", "abort", "done", "is_finished", "detach", "elapsed", "traceback"}},
  Channel = {K.ch, {"send", "try_send", "wait", "recv", "try_recv", "close", "len"}},
  Timer = {K.tm, {"wait", "cancel", "done"}},
  CancelToken = {K.tok, {"cancel", "is_cancelled", "check"}},
  Scope = {K.scope, {"spawn", "cancel", "token"}},
}
K.methods = {}
for _, cls in ipairs({"Task", "Channel", "Timer", "CancelToken", "Scope"}) do
  local obj, names = M[cls][1], M[cls][2]
  for _, m in ipairs(names) do
    local a = (m == "spawn") and f or (m == "send" or m == "try_send") and "v" or nil
    K.methods[#K.methods + 1] = {cls .. ":" .. m, obj[m], obj, a}
  end
end
]==]

case("finalizers that run after the module's __gc at exit get 'task module is closed', no crash", function()
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(("local DIR = %q\n"):format(dir), CLOSED_CHILD)
  f:close()
  local p = assert(io.popen(("%s %s 2>&1"):format(interpreter(), path)))
  local output = p:read("a")
  local ok, how, code = p:close()
  os.remove(path)
  if not (how == "exit" and code == 0) then error(("the child ended by %s %s; output:\n%s"):format(how, code, output)) end
  local lines = {}
  for l in output:gmatch("[^\n]+") do lines[#lines + 1] = l end
  if not (#lines == 2 and lines[1]:match("^CLOSED %d+ calls$") and lines[2] == "END") then
    error("unexpected output:\n" .. output)
  end
  local n = tonumber(lines[1]:match("%d+"))
  if n < 60 then error("only " .. n .. " calls made") end
end)

case("task.after(1, fn) fires while a 2-million-message ping-pong still runs", function()
  local fired_during
  local r = task.run(function()
    local a2b, b2a = task.channel(1), task.channel(1)
    local running = true
    task.after(1, function() fired_during = running end)
    local N = 1000000
    local b = task.spawn(function() for _ = 1, N do b2a:send(a2b:recv()) end end)
    for i = 1, N do a2b:send(i); b2a:recv() end
    running = false
    b:join()
    return "done"
  end)
  eq(r, "done")
  eq(fired_during, true, "after(1) fired before the ping-pong ended")
end)

case("on_ready(fn): called once when a task becomes ready outside ticks; errors go to the handler", function()
  local calls = 0
  eq(task.on_ready(function() calls = calls + 1 end), nil)
  local a = task.spawn(function() return 1 end)
  eq(calls, 1, "a spawn outside ticks")
  task.spawn(function() end)
  eq(calls, 1, "at most once between two ticks")
  eq(task.step(), 2)
  eq(calls, 1, "not for what a tick makes ready")
  local id = task.alloc()
  local w = task.spawn(function() return task.wait(id) end)
  task.step()
  eq(calls, 2)
  eq(task.resume(id, "v"), true)
  eq(calls, 3, "an external resume makes a task ready")
  task.step()
  eq(a:join(), 1); eq(w:join(), "v")
  local seen
  local old = task.set_error_handler(function(e) seen = tostring(e) end)
  local prev = task.on_ready(function() error("ready hook failed") end)
  eq(type(prev), "function")
  task.spawn(function() end)
  eq(seen and seen:find("ready hook failed", 1, true) ~= nil, true, "reported: " .. tostring(seen))
  task.step()
  task.on_ready(nil)
  task.set_error_handler(old)
  task.spawn(function() end)
  task.step()
  eq(task.on_ready(nil), nil)
  local ok, e = pcall(task.on_ready, 1)
  eq(ok, false); assert(tostring(e):find("bad argument #1", 1, true), e)
end)

case("warn_slow and profile use the monotonic clock; dump goes to stderr by default", function()
  eq(task.warn_slow(1000), nil)
  eq(task.warn_slow(nil), 1000)
  eq(task.profile(), false)
  task.run(function()
    local t = task.spawn({name = "p"}, function() task.sleep(1) end)
    task.yield()
    local e = task.tasks()[t]
    eq(e.resumes, 1)
    assert(e.busy >= 0 and e.longest >= 0 and e.longest <= e.busy + 1e-9)
    assert(e.spawned:find("lua_module.lua:%d+$"), e.spawned)
    local text = task.dump(false)
    assert(text:find("(p) SLEEP for ", 1, true), text)
    t:join()
  end)
  eq(task.profile(false), true)
end)

-- Runs code in a child lua5.4 (package.cpath set to the module's dir) under
-- timeout: a crash or a hang fails one case, not the suite. Its output.
local function child(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(("package.cpath = %q .. '/?.so;' .. package.cpath\n"):format(dir), code)
  f:close()
  local p = assert(io.popen(("timeout 20 %s %s 2>&1"):format(interpreter(), path)))
  local output = p:read("a")
  local _, how, code_ = p:close()
  os.remove(path)
  if not (how == "exit" and code_ == 0) then
    error(("the child ended by %s %s (124: a hang; 139: a crash); output:\n%s"):format(how, code_, output), 2)
  end
  return output
end

-- task.run where no tick can run (a hook, the error handler, on_ready's
-- callback) must raise: a broken run spins in C for good.
case("task.run inside a hook, the error handler or on_ready's callback raises instead of spinning", function()
  local output = child([==[
local task = require "task"
local function try(where) print(where, select(2, pcall(task.run, function() return 1 end))) end
task.on_ready(function() task.on_ready(nil); try("on_ready") end)
task.spawn(function() end)
task.hook(nil, nil, function() task.hook(); try("hook") end)
task.step()
task.set_error_handler(function() task.set_error_handler(nil); try("handler") end)
task.spawn(function() error("x") end)
task.step()
task.step()
print("left", task.count())
]==])
  local want = "task.run: called from inside a hook, an error handler or task.on_ready's callback"
  for _, where in ipairs({"on_ready", "hook", "handler"}) do
    if not output:find(where .. "\t" .. want, 1, true) then error(where .. ": unexpected output:\n" .. output) end
  end
  if not output:find("left\t0", 1, true) then error("tasks left behind:\n" .. output) end
end)

-- A coroutine.close of a task's thread from outside runs its __close
-- metamethods there and then; one that ticks (task.step, task.run) must not
-- make the scheduler close or empty that thread under its closer's feet.
case("task.step / task.run / Task:abort inside a __close of a task's thread closed by coroutine.close: no crash", function()
  local output = child([==[
local task = require "task"
task.set_error_handler(function(e) print("reported", e) end)
for _, mode in ipairs({"step", "abort", "nested", "run"}) do
  local th, t
  t = task.spawn(function()
    th = coroutine.running()
    local _ <close> = setmetatable({}, {__close = function()
      if mode == "step" then assert(pcall(task.step))
      elseif mode == "abort" then t:abort(); assert(pcall(task.step))
      elseif mode == "nested" then assert(coroutine.wrap(function() return pcall(task.step) end)())
      else assert(pcall(task.run, function() task.sleep(1) end)) end
    end})
    task.yield()
    task.sleep(5)
  end)
  task.step()
  assert(coroutine.close(th))
  collectgarbage()
  task.step()
  print(mode, t:done(), task.count())
end
]==])
  for _, mode in ipairs({"step", "abort", "nested", "run"}) do
    if not output:find(mode .. "\ttrue\t0", 1, true) then error(mode .. ": unexpected output:\n" .. output) end
  end
  local n = select(2, output:gsub("reported\ttask thread closed outside the scheduler", ""))
  if n ~= 4 then error("want 4 reports of the closed threads:\n" .. output) end
end)

case("a join that finds the results lost (thread closed by hand) releases the task: the core keeps nothing", function()
  local function once()
    local th
    local t = task.spawn(function() th = coroutine.running(); return 1, 2 end)
    task.step()
    coroutine.close(th) -- the results on its thread are gone
    local j = task.spawn(function() return pcall(t.join, t) end)
    task.step()
    local ok, e = j:join()
    eq(ok, false); assert(tostring(e):find("results were lost", 1, true), e)
  end
  for _ = 1, 50 do once() end
  collectgarbage(); collectgarbage(); task.step()
  local b0 = task.stats().core_bytes
  for _ = 1, 1000 do once() end
  collectgarbage(); collectgarbage(); task.step()
  local grew = task.stats().core_bytes - b0
  if grew > 4096 then error(("the core grew by %d bytes over 1000 such joins"):format(grew)) end
  -- and the ended tasks it kept are no dangling Tasks to task.run's deadlock abort
  local ok, e = pcall(task.run, function() task.wait() end)
  eq(ok, false); assert(tostring(e):find("deadlock", 1, true), e)
end)

os.exit(failed == 0 and 0 or 1)
