-- task.luv: task's standalone scheduler driven from a luv (libuv) loop, and
-- luv's I/O seen from tasks as calls that read like blocking code.
--
--   local uv = require "luv"
--   local tluv = require "task.luv"
--   tluv.run(function()
--     local c = assert(tluv.tcp_connect("127.0.0.1", 7000))
--     assert(tluv.write(c, "ping"))
--     print(tluv.read(c, 1000))          -- data | nil, "eof" | nil, "timeout"
--     tluv.close(c)
--   end)
--
-- The scheduler runs inside uv.run(): a timer armed from task.poll_timeout()
-- after every tick, a check handle that ticks after the loop's I/O
-- callbacks when they made tasks ready, and an idle handle started when a
-- task becomes ready outside a tick (task.on_ready), so a task woken from
-- any luv callback runs in the same loop turn instead of at the next
-- timer. With a task.so that has no task.on_ready, a prepare handle does
-- that job before the loop polls.
--
-- Every wrapped call suspends only the calling task and is a cancellation
-- point: when the task is cancelled (Task:cancel, a scope, task.timeout),
-- the call raises "task cancelled" and what it had started is stopped
-- (read_stop, uv.cancel, closing a half-open connection) or its late result
-- is dropped safely (an fd opened too late is closed). Errors are returned
-- as nil, message (luv's own messages, "eof", "timeout", "closed").
--
-- luv ends the process on an error raised in one of its callbacks: every
-- callback here is protected and its errors go to task's error handler
-- (task.set_error_handler). Wrap callbacks of your own with tluv.protect.
local task = require "task"
local has_uv, uv = pcall(require, "luv")
if not has_uv then
  error("task.luv needs luv, libuv for Lua (Debian: apt-get install lua-luv; LuaRocks: luarocks install luv)\n"
    .. tostring(uv), 0)
end

local alloc, wait, resume = task.alloc, task.wait, task.resume
local step, poll_timeout, count = task.step, task.poll_timeout, task.count
local running, checkpoint = task.running, task.checkpoint
local pcall, type, ceil, traceback = pcall, type, math.ceil, debug.traceback

local M = {}

-- ---- errors of callbacks ----------------------------------------------------

-- Calls task's current error handler with (err, nil, traceback): there is
-- no task to name. For the default handler (nil), what task's default
-- prints for a task: one line and the traceback on stderr.
local function report(err, tb)
  local h = task.set_error_handler(nil)
  task.set_error_handler(h)
  local failed
  if h then
    local ok, e = pcall(h, err, nil, tb)
    if ok then return end
    failed = e
  end
  local msg = ("(error object is a %s value)"):format(type(err))
  local mt = getmetatable(err)
  if type(err) == "string" or type(err) == "number" or (mt and mt.__tostring) then msg = tostring(err) end
  io.stderr:write("task.luv: error in a luv callback: ", msg, "\n", tb and (tb .. "\n") or "")
  if failed then io.stderr:write("task.luv: error handler failed: ", tostring(failed), "\n") end
  io.stderr:flush()
end

-- xpcall's message handler: the error and the traceback where it was raised.
local function catch(e) return {e, traceback(nil, 2)} end

---Wraps `fn` for use as a luv callback: an error it raises goes to task's
---error handler (with its traceback) instead of ending the process.
---@param fn function
---@return function
function M.protect(fn)
  return function(...)
    local ok, e = xpcall(fn, catch, ...)
    if not ok then report(e[1], e[2]) end
  end
end

-- ---- the driver: ticks from luv handles -----------------------------------

local D = {
  installed = false, -- the handles below exist (install / run)
  runmode = false,   -- inside M.run: stop the loop when no task is left
  ticks = 0,         -- ticks run by the adapter
  readies = 0,       -- calls of the ready callback
  idle_on = false,
  inflight = 0,      -- luv requests started by wrapped calls, not called back yet
  timer_due = nil,   -- the loop time the timer is armed for, or nil
  prev_ready = nil,  -- the ready callback before ours (restored)
}
local has_on_ready = task.on_ready ~= nil
local taskstat, now = task.taskstat, uv.now

-- After a tick (or from outside one): arm the handles for what is pending.
local function rearm()
  if not D.installed then return end -- uninstalled by a task in this tick
  local ms = poll_timeout()
  if ms == 0 then
    if not D.idle_on then D.idle:start(D.on_idle); D.idle_on = true end
    return
  end
  if D.idle_on then D.idle:stop(); D.idle_on = false end
  if ms then
    -- whole ms, rounded up: the tick it causes is not early for the
    -- scheduler's timer (one more tick and a re-arm if it is)
    local due = now() + ceil(ms)
    if due ~= D.timer_due then D.timer:start(ceil(ms), 0, D.on_timer); D.timer_due = due end
  else
    if D.timer_due then D.timer:stop(); D.timer_due = nil end
    if D.runmode and count() == 0 then uv.stop() end
  end
end

local function tick()
  if D.ticking then return end -- never from inside a tick (a nested uv.run)
  D.ticking = true
  D.ticks = D.ticks + 1
  local ok, e = pcall(step)
  D.ticking = false
  if not ok then report(e, traceback()) end
  ok, e = pcall(rearm)
  if not ok then report(e, traceback()) end
end

-- The handles' callbacks. The check (and without task.on_ready the
-- prepare) ticks only when tasks are ready: loop turns that woke no task
-- cost no tick. The idle handle runs only while a tick is owed.
local function on_turn() if taskstat() > 0 then tick() end end
local function on_timer() D.timer_due = nil; tick() end
local function on_ready()
  D.readies = D.readies + 1
  if not D.idle_on and D.idle then D.idle:start(D.on_idle); D.idle_on = true end
end

-- A callback for luv that reports what fn raises (no traceback needed:
-- these are the driver's own, small and not expected to fail).
local function guarded(fn)
  return function()
    local ok, e = pcall(fn)
    if not ok then report(e, traceback()) end
  end
end

-- Per-handle timers of calls with a timeout (read, accept); all closed at
-- uninstall, also ones of handles closed behind task.luv's back.
local alltimers = {}

---Installs the driver in luv's default loop without running it: tasks
---spawned from then on run while the program calls `uv.run()` itself.
---`M.run` does this on its own. A second call does nothing.
function M.install()
  if D.installed then return end
  D.idle, D.timer, D.check = uv.new_idle(), uv.new_timer(), uv.new_check()
  D.on_idle, D.on_timer = guarded(tick), guarded(on_timer)
  -- The check ticks after the loop's I/O callbacks of this turn; it (and
  -- the prepare) must not keep the loop alive: the timer and the idle
  -- handle do, while something is pending.
  D.check:start(guarded(on_turn))
  D.check:unref()
  if has_on_ready then
    D.prev_ready = task.on_ready(guarded(on_ready))
  else
    -- without the ready callback: a task woken before the loop polls (by
    -- a timer's callback, say) is run here, not after the poll
    D.prepare = uv.new_prepare()
    D.prepare:start(guarded(on_turn))
    D.prepare:unref()
  end
  D.installed, D.idle_on, D.timer_due = true, false, nil
  rearm()
end

---Stops and closes the driver's handles (and the timers of calls with a
---timeout); the loop closes them at its next turn, which `M.run` runs
---before it returns. Tasks still alive stay in the scheduler.
function M.uninstall()
  if not D.installed then return end
  -- run's loop would go on without its handles: ticks no more, or spins
  if D.runmode then error("task.luv.uninstall: task.luv.run is running (it uninstalls as it returns)", 2) end
  D.installed = false
  if has_on_ready then task.on_ready(D.prev_ready); D.prev_ready = nil end
  for _, h in ipairs({D.idle, D.timer, D.check, D.prepare or false}) do
    if h and not h:is_closing() then h:close() end
  end
  D.idle, D.timer, D.check, D.prepare, D.idle_on, D.timer_due = nil, nil, nil, nil, false, nil
  for t in pairs(alltimers) do if not t:is_closing() then t:close() end end
  alltimers = {}
end

---The driver's counters: `ticks` run, `readies` (calls of the ready
---callback), and whether task.on_ready is used.
---@return {ticks: integer, readies: integer, on_ready: boolean}
function M.stats()
  return {ticks = D.ticks, readies = D.readies, on_ready = has_on_ready}
end

-- Closes handles that are closing: the loop's last turns, bounded.
local function drain()
  for _ = 1, 100 do
    if not uv.loop_alive() then return end
    uv.run("nowait")
  end
end

-- The live tasks, each with what it waits for, for a deadlock report.
local function stuck_report()
  local lines, n = {}, 0
  for t, info in pairs(task.tasks()) do
    n = n + 1
    lines[#lines + 1] = ("%s waits for %s\n%s"):format(tostring(t), info.waits or "?", info.traceback or "")
  end
  return n, table.concat(lines, "\n")
end

local function abort_all()
  for _ = 1, 100 do
    if count() == 0 then return end
    for t in pairs(task.tasks()) do t:abort() end
    pcall(step)
  end
end

---Runs `fn(...)` as the main task inside `uv.run()` until every task has
---ended, then closes the driver's handles; returns `fn`'s results or
---raises its error (a string error with the traceback where it was
---raised). Raises `"task.luv.run: deadlock: ..."` when tasks are left
---waiting and the loop has nothing that could wake them (they are aborted
---first). Handles of your own that stay open keep `uv.run()` going only
---while tasks are alive; close them (M.close) before `fn` returns.
---@param fn fun(...): ...
---@param ... any
---@return any ...
function M.run(fn, ...)
  if type(fn) ~= "function" then error("bad argument #1 to 'task.luv.run' (function expected, got " .. type(fn) .. ")", 2) end
  if running() then error("task.luv.run: called from inside a task", 2) end
  if D.runmode then error("task.luv.run: already running", 2) end
  local res
  local function main(...)
    res = table.pack(xpcall(fn, catch, ...))
  end
  M.install()
  D.runmode = true
  local ok, err = pcall(function(...)
    task.spawn({name = "main"}, main, ...)
    rearm()
    while true do
      uv.run("default")
      if count() == 0 then return end
      -- The loop ran dry (or was stopped) with tasks alive: a wake may be
      -- owed; if nothing is pending after it, nothing can come.
      tick()
      if count() == 0 then return end
      if poll_timeout() == nil and not uv.loop_alive() then
        local n, rep = stuck_report()
        abort_all()
        error(("task.luv.run: deadlock: %d task%s wait%s and nothing can wake them:\n%s")
          :format(n, n == 1 and "" or "s", n == 1 and "s" or "", rep), 0)
      end
    end
  end, ...)
  D.runmode = false
  -- Requests that tasks gave up on still call back (a descriptor to close,
  -- say): wait for them, not for handles the program keeps open.
  while D.inflight > 0 and uv.loop_alive() do uv.run("once") end
  M.uninstall()
  drain()
  if not ok then error(err, 0) end
  if not res then error("task.luv.run: the main task was aborted", 0) end
  if res[1] then return table.unpack(res, 2, res.n) end
  local e = res[2]
  if type(e[1]) == "string" then
    error(e[1] .. "\ntraceback of the failing task:\n" .. e[2]:gsub("^stack traceback:\n", ""), 0)
  end
  error(e[1], 0)
end

-- ---- suspending on a luv completion -----------------------------------------

local function intask(fname)
  if not running() then error(fname .. ": must be called from inside a task", 3) end
end

-- Argument checks, before anything is created or started: a value of the
-- wrong type raises naming the call (not a luv method deep inside), and
-- leaves no handle or per-handle state behind (states would keep a string
-- or number key forever).
-- (level: of the caller of the function that checks, as error's)
local function argerr(fname, i, want, v, level)
  error(("bad argument #%d to '%s' (%s expected, got %s)"):format(i, fname, want, type(v)), (level or 2) + 1)
end
-- Does h have the method? Looked up through h's own metatable: a luv
-- function called with a userdata that is not luv's (uv.is_closing(chan))
-- reads it as a handle pointer and crashes the process.
local function get(o, k) return o[k] end
local function has_method(h, name)
  local ok, f = pcall(get, h, name)
  return ok and type(f) == "function"
end
local function check_handle(fname, h)
  if type(h) ~= "userdata" or not has_method(h, "is_closing") then argerr(fname, 1, "luv handle", h, 3) end
end
local function check_port(fname, i, port)
  if math.type(port) ~= "integer" and not (type(port) == "number" and math.tointeger(port)) then
    argerr(fname, i, "integer", port, 3)
  end
end
-- ms: nil, or 0 up to what the C side accepts as a duration (about 292
-- years): larger ones no luv timer can hold.
local MS_MAX = 9.2e12
local function check_ms(fname, ms)
  if ms ~= nil and (type(ms) ~= "number" or not (ms >= 0 and ms <= MS_MAX)) then
    error(("%s: invalid timeout (ms=%s)"):format(fname, type(ms) == "string" and ("%q"):format(ms) or tostring(ms)), 3)
  end
end

-- What a luv callback does with its values: resumes the waiting task, or,
-- when its waiter is gone (cancelled), hands them to drop(...) if any.
local function complete(id, drop, ...)
  local ok, r, e = pcall(resume, id, ...)
  if not ok then report(r, traceback()) end
  if ok and not r and drop then
    ok, e = pcall(drop, ...)
    if not ok then report(e, traceback()) end
  end
end

-- A completion can reach a task in the same tick as its cancel (a
-- task.timeout deadline, say): it is then woken with the result, and
-- task.timeout would throw the result away. So a call that hands over
-- something to release (a descriptor, a connection, data) checks after
-- its wait and, when cancelled, gives it back and raises.
local function cancelled()
  local ok, e = pcall(checkpoint)
  if ok then return nil end
  return e
end

-- start(cb) begins a luv request and returns it (or nil, err: the error is
-- returned as the callback's first value would be); then the task waits
-- for the callback's values. The id is allocated once the request exists
-- (libuv never calls back before that), so a refused start leaves none
-- behind. Cancelled while waiting, cancel(req) runs and the error
-- propagates; cancelled as the result came, drop(result...) runs and the
-- cancellation is raised. pool: a request of the thread pool (files,
-- names), which M.run waits for before it returns.
local function request(fname, start, pool, cancel, drop)
  intask(fname)
  local id
  -- luv raises on arguments of the wrong type: the error names the call
  local sok, req, err = pcall(start, function(...)
    if pool then D.inflight = D.inflight - 1 end
    complete(id, drop, ...)
  end)
  if not sok then error(("%s: %s"):format(fname, (tostring(req):gsub("^[^\n]-%.lua:%d+: ", ""))), 3) end
  if not req then return err end
  if pool then D.inflight = D.inflight + 1 end
  id = alloc()
  local ok, a, b = pcall(wait, id)
  if not ok then
    if cancel then pcall(cancel, req) end
    error(a, 0)
  end
  if drop then
    local c = cancelled()
    if c then pcall(drop, a, b); error(c, 0) end
  end
  return a, b
end

local function cancel_req(req) uv.cancel(req) end

-- ---- streams: read, write, close, accept --------------------------------------

-- Per handle: chunks read ahead (or connections accepted) nobody took yet,
-- the parked waiter, its Task, and whether the handle is reading.
local states = setmetatable({}, {__mode = "k"})

local function push(s, v)
  local t = s.tail + 1
  s.tail = t
  s[t] = v
end

local function pop(s)
  local h = s.head
  if h > s.tail then return nil end
  local v = s[h]
  s[h] = nil
  s.head = h + 1
  return v
end

-- A call's timeout fires the handle's timer. The timer is not restarted
-- for every call: a call only moves the deadline, and the timer, when it
-- fires early for the current deadline, sleeps again for the rest. A
-- handle closed behind task.luv's back has its timer closed here.
local function on_deadline(s, h)
  s.timer_due = nil
  local t = s.timer
  if h:is_closing() then
    -- closed behind task.luv's back (h:close(), not tluv.close): libuv
    -- calls no read or listen callback any more, so the waiter hears it
    -- from here or never
    alltimers[t] = nil
    if not t:is_closing() then t:close() end
    s.final = s.final or "closed"
    local id = s.waiter
    if id then s.waiter, s.deadline = nil, nil; resume(id, nil, "closed") end
    return
  end
  local id, dl = s.waiter, s.deadline
  if not (id and dl) then return end
  local n = now()
  if n >= dl then
    s.waiter, s.deadline = nil, nil
    resume(id, nil, "timeout")
  else
    t:start(dl - n, 0, s.on_timeout)
    s.timer_due = dl
  end
end

-- Sets the deadline of the call about to park on handle h: ms from now on
-- luv's loop clock (whole ms, rounded up), or none.
local function deadline(s, h, ms)
  if not ms then s.deadline = nil; return end
  local d = ceil(ms)
  local dl = now() + d
  s.deadline = dl
  local due = s.timer_due
  if due and due <= dl then return end -- armed for no later than the deadline
  local t = s.timer
  if not t or t:is_closing() then
    t = uv.new_timer()
    t:unref() -- what keeps the loop alive is the handle waited on, reading or listening
    s.timer = t
    alltimers[t] = true
    s.on_timeout = function()
      local ok, e = pcall(on_deadline, s, h)
      if not ok then report(e, traceback()) end
    end
  end
  t:start(d, 0, s.on_timeout)
  s.timer_due = dl
end

local function state(h)
  local s = states[h]
  if s then return s end
  s = {head = 1, tail = 0, waiter = nil, reader = nil, reading = false, final = nil}
  states[h] = s
  return s
end

-- The read callback. A chunk goes to the parked reader, else it is kept
-- and reading stops until a task asks again (the peer waits meanwhile:
-- no unbounded buffering). The end (EOF, an error) is kept for every
-- later read.
local function on_read(s, h, err, data)
  local final
  if err then final = err elseif not data then final = "eof" end
  if final then
    s.final = final
    h:read_stop()
    s.reading = false
  end
  local id = s.waiter
  if id then
    s.waiter = nil
    if final then
      if resume(id, nil, final) then return end
    elseif resume(id, data) then return end
  end
  if not final then
    push(s, data)
    h:read_stop()
    s.reading = false
  end
end

local function stream_state(h)
  local s = states[h]
  if s and s.on_read then return s end
  s = state(h)
  s.on_read = function(err, data)
    local ok, e = pcall(on_read, s, h, err, data)
    if not ok then report(e, traceback()) end
  end
  return s
end

-- Parks the running task as s's waiter for at most ms; pcall(wait)'s
-- results: true and the values it is resumed with, or false and the error
-- (cancelled).
local function park(s, h, ms, fname, t)
  t = t or running()
  if not t then error(fname .. ": must be called from inside a task", 3) end
  if s.waiter then
    if s.reader and not s.reader:done() then
      error(fname .. ": another task is waiting on this handle", 3)
    end
    s.waiter = nil -- left by a task that was aborted
  end
  deadline(s, h, ms)
  local id = alloc()
  s.waiter, s.reader = id, t
  local ok, a, b = pcall(wait, id)
  if s.waiter == id then s.waiter, s.deadline = nil, nil end
  s.reader = nil
  return ok, a, b
end

---Reads the next chunk from a stream (TCP, pipe, TTY): waits until data
---comes, at most `ms` milliseconds when given. Returns the data, or `nil`
---and `"eof"`, `"timeout"`, `"closed"` (tluv.close from another task) or
---luv's error message. At most one task reads a stream at a time.
---@param stream userdata a luv stream
---@param ms? number timeout in milliseconds
---@return string|nil data
---@return string|nil err
function M.read(stream, ms)
  if ms ~= nil then check_ms("task.luv.read", ms) end
  local s = states[stream]
  if s and s.head <= s.tail and not s.accepting then
    checkpoint()
    return pop(s)
  end
  if not (s and s.on_read) then
    if type(stream) ~= "userdata" or not has_method(stream, "read_start") then argerr("task.luv.read", 1, "luv stream", stream) end
    if s and s.accepting then error("task.luv.read: a listener (take its connections with task.luv.accept)", 2) end
    s = stream_state(stream)
  end
  if not s.final and stream:is_closing() then s.final = "closed" end -- closed behind task.luv's back
  if s.final then checkpoint(); return nil, s.final end
  local t = running()
  if not t then error("task.luv.read: must be called from inside a task", 2) end
  if not s.reading then
    local ok, err = stream:read_start(s.on_read)
    if not ok then return nil, err end
    s.reading = true
  end
  local ok, data, err = park(s, stream, ms, "task.luv.read", t)
  if ok and data then
    local c = cancelled()
    if c then -- the data stays for the next read
      s.head = s.head - 1
      s[s.head] = data
      ok, data = false, c
    end
  end
  if not ok then
    -- cancelled: nobody reads now; stop so the peer is not read for nobody
    if s.reading and not stream:is_closing() then stream:read_stop(); s.reading = false end
    error(data, 0)
  end
  return data, err
end

---Writes `data` (a string, or a table of strings) to a stream; returns
---once it is written (handed to the kernel). A write the stream takes at
---once does not suspend. Cancelled while waiting, the write goes on in the
---background (libuv cannot take back bytes it may have sent) and its
---result is dropped.
---@param stream userdata a luv stream
---@param data string|string[]
---@return true|nil ok
---@return string|nil err
function M.write(stream, data)
  if type(stream) ~= "userdata" then argerr("task.luv.write", 1, "luv stream", stream) end
  checkpoint()
  if type(data) == "string" then
    -- most writes fit in the socket buffer: no request, no suspension
    local n, err, name = stream:try_write(data)
    if n == #data then return true end
    if n then data = data:sub(n + 1)
    elseif name ~= "EAGAIN" then return nil, err end
  end
  local werr = request("task.luv.write", function(cb) return stream:write(data, cb) end, false)
  if werr then return nil, werr end
  return true
end

---Closes a luv handle (stream, listener, timer, ...): a task parked on it
---(read, accept) gets `nil, "closed"`, connections accepted and not taken
---are closed. Inside a task, waits until libuv has closed it (not when the
---task is cancelled: closing is also cleanup); outside one, returns at
---once and the loop finishes the close. Closing a closing handle is a no-op.
---@param h userdata a luv handle
---@return true
function M.close(h)
  check_handle("task.luv.close", h)
  if h:is_closing() then return true end
  local s = states[h]
  if s then
    s.final = "closed" -- for every later read or accept
    local t = s.timer
    if t then alltimers[t] = nil; if not t:is_closing() then t:close() end end
    local id = s.waiter
    if id then s.waiter = nil; resume(id, nil, "closed") end
    if s.accepting then
      for i = s.head, s.tail do
        local c = s[i]
        s[i] = nil
        if not c:is_closing() then c:close() end
      end
      s.head, s.tail = 1, 0
    end
  end
  if not running() then h:close(); return true end
  local id
  h:close(function() complete(id) end)
  id = alloc()
  -- A cancelled or aborted task (its to-be-closed guards) cannot wait: the
  -- close is under way all the same, so that is no error.
  pcall(wait, id)
  return true
end

local closer = {__close = function(o) M.close(o.h) end}

---A to-be-closed guard: `local _ <close> = tluv.closing(h)` closes `h`
---(tluv.close) when the block ends, also on an error or a cancel.
---@param h userdata
---@return table
function M.closing(h)
  check_handle("task.luv.closing", h)
  return setmetatable({h = h}, closer)
end

-- ---- TCP ---------------------------------------------------------------------

local function is_ip(host)
  return host:match("^%d+%.%d+%.%d+%.%d+$") or host:find(":", 1, true)
end

-- Closes the handle a task was connecting when the task is aborted there:
-- an abort closes the task's thread, so the pcall around its wait never
-- returns; only to-be-closed variables run.
local half_open = {__close = function(g) local tcp = g[1]; if tcp and not tcp:is_closing() then tcp:close() end end}

local function connect_ip(ip, port)
  local tcp = uv.new_tcp()
  local id
  -- luv raises on an address it cannot parse ("999.1.1.1")
  local sok, req, err = pcall(tcp.connect, tcp, ip, port, function(e) complete(id, nil, e) end)
  if not sok then tcp:close(); error("task.luv.tcp_connect: " .. tostring(req), 0) end
  if not req then tcp:close(); return nil, err end
  local guard <close> = setmetatable({tcp}, half_open)
  id = alloc()
  local ok, cerr = pcall(wait, id)
  if not ok then
    -- cancelled: closing the handle cancels the connect (its callback gets
    -- ECANCELED, for nobody)
    tcp:close()
    error(cerr, 0)
  end
  if cerr then tcp:close(); return nil, cerr end
  local c = cancelled()
  if c then tcp:close(); error(c, 0) end
  guard[1] = nil
  return tcp
end

---Connects to `host:port` (an address, or a name looked up with
---getaddrinfo, its addresses tried in order) and returns the connected
---luv TCP handle, or `nil, err`. Wrap it in task.timeout for a deadline.
---@param host string
---@param port integer
---@return userdata|nil tcp
---@return string|nil err
function M.tcp_connect(host, port)
  intask("task.luv.tcp_connect")
  if type(host) ~= "string" then argerr("task.luv.tcp_connect", 1, "string", host) end
  check_port("task.luv.tcp_connect", 2, port)
  if is_ip(host) then return connect_ip(host, port) end
  local addrs, err = M.getaddrinfo(host, nil, {socktype = "stream"})
  if not addrs then return nil, err end
  for _, a in ipairs(addrs) do
    local tcp
    tcp, err = connect_ip(a.addr, port)
    if tcp then return tcp end
  end
  return nil, err or ("no address for " .. host)
end

-- The listen callback: the connection goes to the parked accept, else it
-- is queued for the next one.
local function on_connection(s, server, lerr)
  if lerr then
    local id = s.waiter
    if id then s.waiter = nil; resume(id, nil, lerr) end
    return
  end
  local c = uv.new_tcp()
  local ok, aerr = server:accept(c)
  if not ok then c:close(); report(aerr, traceback()); return end
  local id = s.waiter
  if id then
    s.waiter = nil
    if resume(id, c) then return end
  end
  push(s, c)
end

---A listening TCP handle on `host:port` (port 0: any free port, see
---`h:getsockname().port`); take connections with `tluv.accept`.
---@param host string
---@param port integer
---@param backlog? integer default 128
---@return userdata|nil server
---@return string|nil err
function M.tcp_listen(host, port, backlog)
  if type(host) ~= "string" then argerr("task.luv.tcp_listen", 1, "string", host) end
  check_port("task.luv.tcp_listen", 2, port)
  if backlog ~= nil then check_port("task.luv.tcp_listen", 3, backlog) end
  local server = uv.new_tcp()
  local ok, err = server:bind(host, port)
  if not ok then server:close(); return nil, err end
  local s = state(server)
  s.accepting = true
  ok, err = server:listen(backlog or 128, function(lerr)
    local pok, e = pcall(on_connection, s, server, lerr)
    if not pok then report(e, traceback()) end
  end)
  if not ok then states[server] = nil; server:close(); return nil, err end
  return server
end

---Waits for the next connection on a listener from `tluv.tcp_listen`, at
---most `ms` milliseconds when given: the connected TCP handle, or `nil`
---and `"timeout"`, `"closed"` or luv's error message.
---@param server userdata
---@param ms? number
---@return userdata|nil tcp
---@return string|nil err
function M.accept(server, ms)
  local s = states[server]
  if not (s and s.accepting) then error("task.luv.accept: not a listener from task.luv.tcp_listen", 2) end
  if ms ~= nil then check_ms("task.luv.accept", ms) end
  if s.head <= s.tail then checkpoint(); return pop(s) end
  if s.final then checkpoint(); return nil, s.final end
  local ok, c, err = park(s, server, ms, "task.luv.accept")
  if not ok then error(c, 0) end
  if c then
    local e = cancelled()
    if e then -- kept for the next accept
      s.head = s.head - 1
      s[s.head] = c
      error(e, 0)
    end
  end
  return c, err
end

-- ---- files and names -----------------------------------------------------------

---uv.fs_open from a task: the file descriptor, or `nil, err`. Cancelled,
---the request is cancelled, or the descriptor it opened is closed.
---@param path string
---@param flags string|integer
---@param mode integer
---@return integer|nil fd
---@return string|nil err
function M.fs_open(path, flags, mode)
  local err, fd = request("task.luv.fs_open", function(cb) return uv.fs_open(path, flags, mode, cb) end, true,
    cancel_req, function(e, f) if not e and f then uv.fs_close(f) end end)
  if err then return nil, err end
  return fd
end

---uv.fs_read from a task: the data read (`""` at the end of the file), or
---`nil, err`. Cancelled, the request is cancelled or its data dropped.
---@param fd integer
---@param size integer
---@param offset? integer default -1 (the current position)
---@return string|nil data
---@return string|nil err
function M.fs_read(fd, size, offset)
  local err, data = request("task.luv.fs_read", function(cb) return uv.fs_read(fd, size, offset or -1, cb) end, true,
    cancel_req)
  if err then return nil, err end
  return data
end

---uv.fs_close from a task: `true`, or `nil, err`. Cancelled, the close
---still happens (a cancelled close would leak the descriptor); the task
---raises at once.
---@param fd integer
---@return true|nil ok
---@return string|nil err
function M.fs_close(fd)
  local err = request("task.luv.fs_close", function(cb) return uv.fs_close(fd, cb) end, true)
  if err then return nil, err end
  return true
end

---uv.getaddrinfo from a task: the list of addresses, or `nil, err`.
---Cancelled, the lookup is cancelled (or its result dropped).
---@param host string|nil
---@param service string|nil
---@param hints? table luv's hints (family, socktype, ...)
---@return table|nil addresses
---@return string|nil err
function M.getaddrinfo(host, service, hints)
  local err, res = request("task.luv.getaddrinfo",
    function(cb) return uv.getaddrinfo(host, service, hints or {}, cb) end, true, cancel_req)
  if err then return nil, err end
  return res
end

return M
