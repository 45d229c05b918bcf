-- bench/bench_lua.lua [--smoke]: the Lua rows of `make bench`, for the
-- stock lua5.4 with build/task.so (run from the repository's top directory,
-- or with LUA_CPATH pointing at task.so). Prints the line format of
-- bench/run.sh (row / skip / note). BENCH_QUICK=1 in the environment: fewer
-- and shorter repetitions; --smoke: one tiny iteration of every row.
--
-- Peers (Debian: lua-cqueues, lua-luv) are optional: a missing one turns
-- its rows into skip lines.
package.cpath = (os.getenv("TASK_BUILD") or "build") .. "/?.so;" .. package.cpath
local task = require "task"

local smoke, quick = false, (os.getenv("BENCH_QUICK") or "") ~= ""
for _, a in ipairs(arg) do
  if a == "--smoke" then smoke = true
  elseif a == "--quick" then quick = true end
end

local REPS = smoke and 1 or quick and 3 or 7
local function n_of(full, q, s) return smoke and s or quick and q or full end

local clock = os.clock
local fmt = string.format

local function median(t)
  table.sort(t)
  local n = #t
  if n % 2 == 1 then return t[(n + 1) // 2] end
  return (t[n // 2] + t[n // 2 + 1]) / 2
end

-- Runs f() reps times after one warm-up (none in smoke runs); f returns a
-- figure; the median of the figures.
local function med(f)
  if not smoke then f() end
  local r = {}
  for i = 1, REPS do collectgarbage(); r[i] = f() end
  return median(r)
end

local function row(name, ours, peer, unit, kind, target)
  print(fmt("row\t%s\t%.4g\t%s\t%s\t%s\t%s", name, ours,
    peer and fmt("%.4g", peer) or "-", unit, kind, target or "-"))
end
local function skip(name, why) print(fmt("skip\t%s\t%s", name, why)) end
local function note(s) print("note\t" .. s) end

local function try(name)
  local ok, m = pcall(require, name)
  if ok then return m end
  return nil
end
local cqueues = try "cqueues"
local cqcond = cqueues and try "cqueues.condition"
local uv = try "luv"
local NOCQ = "lua-cqueues is not installed (apt-get install lua-cqueues)"
local NOUV = "lua-luv is not installed (apt-get install lua-luv)"

-- ns per unit of work: CPU seconds (os.clock) for n units.
local function ns(t0, n) return (clock() - t0) * 1e9 / n end

local function noop() end

---------------------------------------------------------------------------
-- spawn + join of a trivial function
---------------------------------------------------------------------------
local NSPAWN = n_of(200000, 100000, 100)
local BATCH = 1000

local function ours_spawn()
  local spawn = task.spawn
  return task.run(function()
    local ts = {}
    local t0 = clock()
    for _ = 1, NSPAWN // BATCH > 0 and NSPAWN // BATCH or 1 do
      local m = NSPAWN < BATCH and NSPAWN or BATCH
      for i = 1, m do ts[i] = spawn(noop) end
      for i = 1, m do ts[i]:join() end
    end
    return ns(t0, NSPAWN)
  end)
end

local function raw_spawn()
  local create, resume = coroutine.create, coroutine.resume
  local cs = {}
  local t0 = clock()
  for _ = 1, NSPAWN // BATCH > 0 and NSPAWN // BATCH or 1 do
    local m = NSPAWN < BATCH and NSPAWN or BATCH
    for i = 1, m do cs[i] = create(noop) end
    for i = 1, m do resume(cs[i]) end
  end
  return ns(t0, NSPAWN)
end

---------------------------------------------------------------------------
-- task.yield() round trip vs a raw resume/yield pair
---------------------------------------------------------------------------
local NYIELD = n_of(2000000, 500000, 100)

local function ours_yield()
  return task.run(function()
    local yield = task.yield
    local t0 = clock()
    for _ = 1, NYIELD do yield() end
    return ns(t0, NYIELD)
  end)
end

local function raw_yield()
  local yield, resume = coroutine.yield, coroutine.resume
  local co = coroutine.create(function() while true do yield() end end)
  local t0 = clock()
  for _ = 1, NYIELD do resume(co) end
  return ns(t0, NYIELD)
end

---------------------------------------------------------------------------
-- channel ping-pong, per message (each message is one switch)
---------------------------------------------------------------------------
local NMSG = n_of(1000000, 300000, 100)
local NMSG_PEER = n_of(200000, 50000, 100)

local function ours_pingpong()
  return task.run(function()
    local a, b = task.channel(1), task.channel(1)
    local half = NMSG // 2
    local t0 = clock()
    local p = task.spawn(function()
      for _ = 1, half do b:send(a:recv()) end
    end)
    for i = 1, half do a:send(i); b:recv() end
    p:join()
    return ns(t0, 2 * half)
  end)
end

-- the baseline: one raw resume/yield pair per message, the value passed
local function raw_pingpong()
  local yield, resume = coroutine.yield, coroutine.resume
  local co = coroutine.create(function(v) while true do v = yield(v) end end)
  local t0 = clock()
  for i = 1, NMSG do resume(co, i) end
  return ns(t0, NMSG)
end

-- cqueues: two coroutines, a one-slot mailbox guarded by condition variables
local function cq_pingpong(nowait)
  local cq = cqueues.new()
  local half = NMSG_PEER // 2
  local ca, cb = cqcond.new(), cqcond.new()
  local ma, mb
  cq:wrap(function()
    for _ = 1, half do
      while ma == nil do ca:wait() end
      mb, ma = ma, nil; cb:signal()
    end
  end)
  cq:wrap(function()
    for i = 1, half do
      ma = i; ca:signal()
      while mb == nil do cb:wait() end
      mb = nil
    end
  end)
  local t0 = clock()
  if nowait then
    while not cq:empty() do assert(cq:step(0)) end
  else
    assert(cq:loop())
  end
  return ns(t0, 2 * half)
end

-- luv: the usual coroutine queue on an idle handle: a run queue of
-- coroutines, drained by an idle callback; a channel wakes its receiver by
-- queueing it
local function uv_pingpong(nowait)
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local runq, rh, rt = {}, 1, 0
  local idle = uv.new_idle()
  local function wake(co) rt = rt + 1; runq[rt] = co end
  local function chan()
    return { waiter = nil, v = nil, has = false }
  end
  local function send(c, v)
    c.v, c.has = v, true
    local w = c.waiter
    if w then c.waiter = nil; wake(w) end
  end
  local function recv(c, self)
    while not c.has do c.waiter = self; yield() end
    c.has = false
    return c.v
  end
  local a, b = chan(), chan()
  local half = NMSG_PEER // 2
  local pa, pb
  pa = create(function() for _ = 1, half do send(b, recv(a, pa)) end end)
  pb = create(function() for i = 1, half do send(a, i); recv(b, pb) end end)
  wake(pa); wake(pb)
  idle:start(function()
    while rh <= rt do
      local co = runq[rh]; runq[rh] = nil; rh = rh + 1
      assert(resume(co))
      break -- one coroutine per loop turn: the queue is driven by the loop
    end
    if rh > rt then idle:stop() end
  end)
  local t0 = clock()
  if nowait then
    while uv.run("nowait") do end
  else
    uv.run()
  end
  local r = ns(t0, 2 * half)
  idle:close()
  uv.run()
  return r
end

---------------------------------------------------------------------------
-- 100k tasks each sleeping a random 0-100 ms: CPU per task
---------------------------------------------------------------------------
local NSLEEP = n_of(100000, 100000, 100)
local SLEEP_MS = smoke and 5 or 100
local SLEEP_REPS = smoke and 1 or quick and 1 or 3

local function delays()
  local d = {}
  math.randomseed(42)
  for i = 1, NSLEEP do d[i] = math.random() * SLEEP_MS end
  return d
end

local function med_sleep(f)
  local r = {}
  for i = 1, SLEEP_REPS do collectgarbage(); r[i] = f() end
  return median(r)
end

local function ours_sleep()
  local d = delays()
  local spawn, sleep = task.spawn, task.sleep
  local t0 = clock()
  task.run(function()
    for i = 1, NSLEEP do spawn(sleep, d[i]) end
  end)
  return ns(t0, NSLEEP)
end

local function cq_sleep(nowait)
  local d = delays()
  local csleep = cqueues.sleep
  local t0 = clock()
  local cq = cqueues.new()
  for i = 1, NSLEEP do cq:wrap(csleep, d[i] / 1000) end
  if nowait then
    while not cq:empty() do assert(cq:step(0)) end
  else
    assert(cq:loop())
  end
  return ns(t0, NSLEEP)
end

local function uv_sleep(nowait)
  local d = delays()
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local t0 = clock()
  local function body(ms)
    local co = coroutine.running()
    local tm = uv.new_timer()
    tm:start(ms, 0, function() tm:close(); resume(co) end)
    yield()
  end
  for i = 1, NSLEEP do
    local co = create(body)
    resume(co, math.floor(d[i]))
  end
  if nowait then
    while uv.run("nowait") do end
  else
    uv.run()
  end
  return ns(t0, NSLEEP)
end

---------------------------------------------------------------------------
-- memory per sleeping task vs a raw suspended coroutine
---------------------------------------------------------------------------
local NMEM = n_of(100000, 50000, 100)

local function kb() collectgarbage(); collectgarbage(); return collectgarbage("count") end

local function ours_mem()
  return task.run(function()
    local spawn, sleep = task.spawn, task.sleep
    local function body() sleep(1e9) end
    local ts = {}
    local function core() return task.stats().core_bytes or 0 end
    local before, core0 = kb(), core()
    for i = 1, NMEM do ts[i] = spawn(body) end
    task.yield() -- every one of them runs up to its sleep
    -- the Lua heap plus the core's own bytes (its task slots and heap entries)
    local per = ((kb() - before) * 1024 + core() - core0) / NMEM
    for i = 1, NMEM do ts[i]:cancel() end
    return per
  end)
end

local function raw_mem()
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local function body() yield() end
  local cs = {}
  local before = kb()
  for i = 1, NMEM do local co = create(body); resume(co); cs[i] = co end
  local per = (kb() - before) * 1024 / NMEM
  cs = nil
  return per
end

---------------------------------------------------------------------------

note(fmt("Lua: stock %s with task.so, %s, median of %d runs (sleep rows: %d) after a warm-up; "
  .. "ns of CPU time (os.clock) unless noted", _VERSION,
  smoke and "smoke run" or quick and "BENCH_QUICK" or "full run", REPS, SLEEP_REPS))

row(fmt("Lua spawn+join, trivial fn vs coroutine.create+resume (ns/task)"),
  med(ours_spawn), med(raw_spawn), "ns", "ratio", 2.0)
row("Lua task.yield() round trip vs raw resume/yield (ns)",
  med(ours_yield), med(raw_yield), "ns", "ratio", 1.5)

local pp = med(ours_pingpong)
row("Lua channel ping-pong vs raw resume/yield (ns/msg)", pp, med(raw_pingpong), "ns", "ratio", 2.5)
local CQPP = "Lua channel ping-pong vs cqueues condvars (ns/msg)"
local UVPP = "Lua channel ping-pong vs luv idle-handle queue (ns/msg)"
if cqueues and cqcond then
  row(CQPP, pp, med(function() return cq_pingpong(false) end), "ns", "ratio", 0.2)
  row("  same, cqueues loop in no-wait mode (step(0))", pp,
    med(function() return cq_pingpong(true) end), "ns", "info")
else skip(CQPP, NOCQ) end
if uv then
  row(UVPP, pp, med(function() return uv_pingpong(false) end), "ns", "ratio", 0.2)
  row("  same, luv loop in no-wait mode (run 'nowait')", pp,
    med(function() return uv_pingpong(true) end), "ns", "info")
else skip(UVPP, NOUV) end

local SL = fmt("%dk tasks sleeping random 0-%d ms, CPU/task", NSLEEP // 1000, SLEEP_MS)
if NSLEEP < 1000 then SL = fmt("%d tasks sleeping random 0-%d ms, CPU/task", NSLEEP, SLEEP_MS) end
local sl = med_sleep(ours_sleep)
if cqueues then
  row("Lua " .. SL .. " vs cqueues wrap+sleep (ns)", sl, med_sleep(function() return cq_sleep(false) end),
    "ns", "ratio", 0.2)
  row("  same, cqueues loop in no-wait mode (step(0))", sl,
    med_sleep(function() return cq_sleep(true) end), "ns", "info")
else skip("Lua " .. SL .. " vs cqueues wrap+sleep (ns)", NOCQ) end
if uv then
  row("Lua " .. SL .. " vs luv timer+coroutine (ns)", sl, med_sleep(function() return uv_sleep(false) end),
    "ns", "ratio", 0.2)
  row("  same, luv loop in no-wait mode (run 'nowait')", sl,
    med_sleep(function() return uv_sleep(true) end), "ns", "info")
else skip("Lua " .. SL .. " vs luv timer+coroutine (ns)", NOUV) end

row("Lua memory per sleeping task vs raw suspended coroutine (bytes)",
  med(ours_mem), med(raw_mem), "bytes", "ratio", 1.25)

note("cqueues and luv poll for I/O (epoll) on every loop turn; task.run does no I/O polling, it only "
  .. "sleeps until the next timer: the no-wait rows (info) drive the peers' loops without blocking")
note("Lua spawn+join: batches of 1000 spawns, then 1000 joins; ping-pong: two tasks, two channels of "
  .. "capacity 1, one message = one switch; the sleep rows count CPU time, including each peer's "
  .. "loop setup and teardown")
note("Lua memory: collectgarbage('count') deltas plus the core's own bytes (its task slots and heap "
  .. "entries come from Lua's allocator but outside the collector's count; task.stats().core_bytes reports them)")
