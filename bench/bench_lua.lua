-- bench/bench_lua.lua [--smoke | --quick | --one | --fresh WORKLOAD N]: the Lua rows
-- of `make bench`, for the stock lua5.4 with task.so (TASK_BUILD names its
-- directory, default build). Prints the line format of bench/run.sh (row /
-- skip / note). BENCH_QUICK=1 in the environment (or --quick): fewer and
-- shorter repetitions; --smoke: one tiny iteration of every row, no timing
-- claims; --one WORKLOAD N: runs one workload (a name in the table W below)
-- once at size N and prints nothing, for bench/callgrind.sh; --fresh
-- WORKLOAD N: the same, printing its figure (the memory row runs each of
-- its two workloads so, in an interpreter of its own).
--
-- Every row is a ratio of two workloads measured side by side: each
-- repetition runs ours and its baseline back to back (in alternating
-- order), so a busy machine slows both alike.
--
-- Peers (Debian: lua-cqueues, lua-luv) are optional: a missing one turns
-- its rows into skip lines.
package.cpath = (os.getenv("TASK_BUILD") or "build") .. "/?.so;" .. package.cpath
local task = require "task"

local smoke, quick = false, (os.getenv("BENCH_QUICK") or "") ~= ""
local one, one_n, fresh
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--smoke" then smoke = true
    elseif a == "--quick" then quick = true
    elseif a == "--one" or a == "--fresh" then
      one, one_n, fresh = arg[i + 1], math.tointeger(tonumber(arg[i + 2])), a == "--fresh"
      i = i + 2
    else error("bench_lua.lua: unknown argument " .. a) end
    i = i + 1
  end
end

local REPS = smoke and 1 or quick and 3 or 7
local function n_of(full, q, s) return smoke and s or quick and q or full end

local clock = os.clock
local fmt = string.format

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
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
-- With --one, only the peer that workload needs: whatever is in
-- package.loaded changes the cost of a traceback.
local cqueues = (not one or one:match "^cq_") and try "cqueues"
local cqcond = cqueues and try "cqueues.condition"
local uv = (not one or one:match "^uv_") and try "luv"
local NOCQ = "lua-cqueues is not installed (apt-get install lua-cqueues)"
local NOUV = "lua-luv is not installed (apt-get install lua-luv)"

-- ns per unit of work: CPU seconds (os.clock) for n units.
local function ns(t0, n) return n > 0 and (clock() - t0) * 1e9 / n or 0 end

local function noop() end

---------------------------------------------------------------------------
-- Workloads: each takes its size n, runs, and returns ns per unit (bytes
-- per task for the memory ones).
---------------------------------------------------------------------------
local W = {}

-- spawn + join of a trivial function, one at a time
W.spawn_join = function(n)
  return task.run(function()
    local spawn = task.spawn
    local t0 = clock()
    for _ = 1, n do spawn(noop):join() end
    return ns(t0, n)
  end)
end

W.raw_create_resume = function(n)
  local create, resume = coroutine.create, coroutine.resume
  local t0 = clock()
  for _ = 1, n do resume(create(noop)) end
  return ns(t0, n)
end

-- batches of 1000: 1000 spawns, then 1000 joins (n < 1000: one batch of n)
local BATCH = 1000
W.spawn_batch = function(n)
  return task.run(function()
    local spawn = task.spawn
    local ts = {}
    local m = n < BATCH and n or BATCH
    local nb = m > 0 and n // m or 0
    local t0 = clock()
    for _ = 1, nb do
      for i = 1, m do ts[i] = spawn(noop) end
      for i = 1, m do ts[i]:join() end
    end
    return ns(t0, nb * m)
  end)
end

W.raw_batch = function(n)
  local create, resume = coroutine.create, coroutine.resume
  local cs = {}
  local m = n < BATCH and n or BATCH
  local nb = m > 0 and n // m or 0
  local t0 = clock()
  for _ = 1, nb do
    for i = 1, m do cs[i] = create(noop) end
    for i = 1, m do resume(cs[i]) end
  end
  return ns(t0, nb * m)
end

-- task.yield() round trip vs a raw resume/yield pair
W.yield = function(n)
  return task.run(function()
    local yield = task.yield
    local t0 = clock()
    for _ = 1, n do yield() end
    return ns(t0, n)
  end)
end

-- one raw resume/yield pair per unit, a value passed each way: the
-- baseline of the yield and the ping-pong rows
W.raw_resume_yield = function(n)
  local yield, resume = coroutine.yield, coroutine.resume
  local co = coroutine.create(function(v) while true do v = yield(v) end end)
  local t0 = clock()
  for i = 1, n do resume(co, i) end
  return ns(t0, n)
end

-- channel ping-pong, per message (each message is one switch): two tasks,
-- two channels of capacity 1
W.pingpong = function(n)
  return task.run(function()
    local a, b = task.channel(1), task.channel(1)
    local half = n // 2
    local t0 = clock()
    local p = task.spawn(function()
      for _ = 1, half do b:send(a:recv()) end
    end)
    for i = 1, half do a:send(i); b:recv() end
    p:join()
    return ns(t0, 2 * half)
  end)
end

-- cqueues: two coroutines, a one-slot mailbox guarded by condition variables
local function cq_pingpong(n, nowait)
  local cq = cqueues.new()
  local half = n // 2
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
W.cq_pingpong = function(n) return cq_pingpong(n, false) end
W.cq_pingpong_nowait = function(n) return cq_pingpong(n, true) end

-- luv: the usual coroutine queue on an idle handle: a run queue of
-- coroutines, drained by an idle callback; a channel wakes its receiver by
-- queueing it
local function uv_pingpong(n, nowait)
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
  local half = n // 2
  local pa, pb
  pa = create(function() for _ = 1, half do send(b, recv(a, pa)) end end)
  pb = create(function() for i = 1, half do send(a, i); recv(b, pb) end end)
  wake(pa); wake(pb)
  idle:start(function()
    if rh <= rt then -- one coroutine per loop turn: the queue is driven by the loop
      local co = runq[rh]; runq[rh] = nil; rh = rh + 1
      assert(resume(co))
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
W.uv_pingpong = function(n) return uv_pingpong(n, false) end
W.uv_pingpong_nowait = function(n) return uv_pingpong(n, true) end

-- task.timeout around a function that returns at once; its baseline is
-- spawn_join, which also runs f in a task of its own
W.timeout = function(n)
  return task.run(function()
    local timeout = task.timeout
    local t0 = clock()
    for _ = 1, n do timeout(1000, noop) end
    return ns(t0, n)
  end)
end

-- n tasks, each sleeping a random 0 to SLEEP_MS ms: CPU per task, from the
-- first spawn to the last wake-up. Every contender sleeps the same delays.
local NSLEEP = n_of(100000, 100000, 100)
local SLEEP_MS = smoke and 5 or 100
local delay_cache = {}
-- At least NSLEEP delays, so that the callgrind script's runs at N and at
-- 0 make the same ones and their cost cancels.
local function delays(n)
  local m = n > NSLEEP and n or NSLEEP
  local d = delay_cache[m]
  if d then return d end
  d = {}
  math.randomseed(42)
  for i = 1, m do d[i] = math.random() * SLEEP_MS end
  delay_cache[m] = d
  return d
end

W.sleep = function(n)
  local d = delays(n)
  local spawn, sleep = task.spawn, task.sleep
  local t0 = clock()
  task.run(function()
    for i = 1, n do spawn(sleep, d[i]) end
  end)
  return ns(t0, n)
end

-- The raw floor: what any coroutine scheduler in plain Lua must do at
-- least. Each coroutine runs up to a yield of its delay; the deadlines are
-- sorted; the coroutines are resumed to their end in deadline order. No
-- real sleeping, and no clock read per task.
W.raw_sleep = function(n)
  local d = delays(n)
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local function body(ms) yield(ms) end
  local t0 = clock()
  local now = clock() * 1000
  local cs, dl, order = {}, {}, {}
  for i = 1, n do
    local co = create(body)
    local _, ms = resume(co, d[i])
    cs[i], dl[i], order[i] = co, now + ms, i
  end
  table.sort(order, function(a, b) return dl[a] < dl[b] end)
  for k = 1, n do
    local i = order[k]
    resume(cs[i]); cs[i] = nil
  end
  return ns(t0, n)
end

W.cq_sleep = function(n)
  local d = delays(n)
  local csleep = cqueues.sleep
  local t0 = clock()
  local cq = cqueues.new()
  for i = 1, n do cq:wrap(csleep, d[i] / 1000) end
  assert(cq:loop())
  return ns(t0, n)
end

W.uv_sleep = function(n)
  local d = delays(n)
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local t0 = clock()
  local function body(ms)
    local co = coroutine.running()
    local tm = uv.new_timer()
    tm:start(ms, 0, function() tm:close(); resume(co) end)
    yield()
  end
  for i = 1, n do
    local co = create(body)
    resume(co, math.floor(d[i]))
  end
  uv.run()
  return ns(t0, n)
end

-- memory per sleeping task vs a raw suspended coroutine: bytes per task
-- when measure is true. The row runs each in a fresh interpreter (--fresh):
-- in a used one the core's task slots and heap and the anchor table are
-- already grown by earlier tasks, so their share would drop out of the
-- delta. With measure false (--one, for callgrind) the same work without
-- the full collections that measure it, and the process ends where the row
-- measures, so that only getting n tasks to their suspension is counted.
local function kb() collectgarbage(); collectgarbage(); return collectgarbage("count") end

W.mem = function(n, measure)
  return task.run(function()
    local spawn, sleep = task.spawn, task.sleep
    local function body() sleep(1e9) end
    local ts = {}
    local function core() return task.stats().core_bytes or 0 end
    local before, core0 = measure and kb() or 0, core()
    for i = 1, n do ts[i] = spawn(body) end
    task.yield() -- every one of them runs up to its sleep
    if not measure then os.exit(0) end
    -- the Lua heap plus the core's own bytes (its task slots and heap entries)
    local per = n > 0 and ((kb() - before) * 1024 + core() - core0) / n or 0
    -- abort, not cancel: a cancelled task ends with an error and its
    -- traceback, which costs far more than the row and is not measured
    for i = 1, n do ts[i]:abort() end
    return per
  end)
end

W.raw_mem = function(n, measure)
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local function body() yield() end
  local cs = {} -- luacheck: ignore 241 (it keeps the coroutines alive while they are measured)
  local before = measure and kb() or 0
  for i = 1, n do local co = create(body); resume(co); cs[i] = co end
  if not measure then os.exit(0) end
  return n > 0 and (kb() - before) * 1024 / n or 0
end

if one then
  local f = W[one]
  if not f or not one_n then error("bench_lua.lua: --one WORKLOAD N, WORKLOAD one of the W table's names") end
  local r = f(one_n, fresh)
  if fresh then print(fmt("%.17g", r)) end
  return
end

---------------------------------------------------------------------------
-- Side by side: a warm-up of each (none in smoke runs), then reps rounds;
-- each round runs every function once, after a full collection, starting
-- with a different one each round. Returns the median figure of each.
---------------------------------------------------------------------------
local function side(reps, n, ...)
  local fs = { ... }
  local k = #fs
  if not smoke then for j = 1, k do fs[j](n, true) end end
  local r = {}
  for j = 1, k do r[j] = {} end
  for i = 1, reps do
    for s = 0, k - 1 do
      local j = (i - 1 + s) % k + 1
      collectgarbage()
      r[j][i] = fs[j](n, true)
    end
  end
  local m = {}
  for j = 1, k do m[j] = median(r[j]) end
  return table.unpack(m, 1, k)
end

-- A workload's figure from a fresh interpreter running this script.
local function fresh_run(name)
  return function(n)
    local q = function(x) return "'" .. x:gsub("'", "'\\''") .. "'" end
    local cmd = fmt("%s %s --fresh %s %d", q(arg[-1] or "lua5.4"), q(arg[0]), name, n)
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    p:close()
    return assert(tonumber(out), "bench_lua.lua: " .. cmd .. " printed: " .. out)
  end
end

local NSPAWN = n_of(200000, 100000, 100)
local NYIELD = n_of(2000000, 500000, 100)
local NMSG = n_of(1000000, 300000, 100)
local NMSG_PEER = n_of(200000, 50000, 100)
local NTIMEOUT = n_of(200000, 100000, 100)
local SLEEP_REPS = smoke and 1 or quick and 1 or 3
local NMEM = n_of(100000, 50000, 100)

note(fmt("Lua: stock %s with task.so, %s, ours and its baseline side by side, median of %d rounds "
  .. "(sleep rows: %d) after a warm-up; ns of CPU time (os.clock) unless noted", _VERSION,
  smoke and "smoke run" or quick and "BENCH_QUICK" or "full run", REPS, SLEEP_REPS))

do
  local o, b = side(REPS, NSPAWN, W.spawn_join, W.raw_create_resume)
  row("Lua spawn(f):join() one at a time vs coroutine.create+resume (ns/task)", o, b, "ns", "ratio", 2.0)
  o, b = side(REPS, NSPAWN, W.spawn_batch, W.raw_batch)
  row("Lua spawn 1000 then join 1000 vs 1000 creates then 1000 resumes (ns/task)", o, b, "ns", "ratio", 1.2)
  o, b = side(REPS, NYIELD, W.yield, W.raw_resume_yield)
  row("Lua task.yield() round trip vs raw resume/yield (ns)", o, b, "ns", "ratio", 1.2)
end

do
  local o, b = side(REPS, NMSG, W.pingpong, W.raw_resume_yield)
  row("Lua channel ping-pong vs raw resume/yield (ns/msg)", o, b, "ns", "ratio", 2.0)
  -- the peers, information only, each side by side with ours
  local function peer(name, f, why)
    if not f then skip(name, why); return end
    local po, pp = side(REPS, NMSG_PEER, W.pingpong, f)
    row(name, po, pp, "ns", "info")
  end
  peer("  same, vs cqueues condvars (ns/msg)", cqcond and W.cq_pingpong, NOCQ)
  peer("  same, vs cqueues in no-wait mode (step(0))", cqcond and W.cq_pingpong_nowait, NOCQ)
  peer("  same, vs luv idle-handle queue (ns/msg)", uv and W.uv_pingpong, NOUV)
  peer("  same, vs luv in no-wait mode (run 'nowait')", uv and W.uv_pingpong_nowait, NOUV)
end

do
  local o, b = side(REPS, NTIMEOUT, W.timeout, W.spawn_join)
  row("Lua task.timeout(1000, f), f returns at once, vs spawn(f):join() (ns)", o, b, "ns", "ratio", 1.5)
end

do
  local SL = NSLEEP >= 1000 and fmt("%dk", NSLEEP // 1000) or tostring(NSLEEP)
  SL = fmt("Lua %s tasks sleeping random 0-%d ms, CPU/task", SL, SLEEP_MS)
  local o, b = side(SLEEP_REPS, NSLEEP, W.sleep, W.raw_sleep)
  row(SL .. " vs raw floor (ns)", o, b, "ns", "ratio", 2.0)
  if cqueues then
    local co, cb = side(SLEEP_REPS, NSLEEP, W.sleep, W.cq_sleep)
    row(SL .. " vs cqueues wrap+sleep (ns)", co, cb, "ns", "ratio", 0.3)
  else skip(SL .. " vs cqueues wrap+sleep (ns)", NOCQ) end
  if uv then
    local uo, ub = side(SLEEP_REPS, NSLEEP, W.sleep, W.uv_sleep)
    row("  same, vs luv timer+coroutine (ns)", uo, ub, "ns", "info")
  else skip("  same, vs luv timer+coroutine (ns)", NOUV) end
end

do
  local o, b = side(REPS, NMEM, fresh_run "mem", fresh_run "raw_mem")
  row("Lua memory per sleeping task, core bytes included, vs raw suspended coroutine (bytes)",
    o, b, "bytes", "ratio", 1.2)
end

note("Lua spawn+join rows: a trivial f; the batch row spawns 1000 then joins 1000. Ping-pong: two "
  .. "tasks, two channels of capacity 1, one message = one switch; its baseline, like yield's, is one "
  .. "raw resume/yield pair. timeout: task.timeout(1000, f) with f returning at once, against "
  .. "spawn(f):join() in the same run")
note("Lua sleep rows: the same seeded random delays for every contender; CPU time, including each "
  .. "peer's loop setup and teardown. The raw floor is plain Lua: each coroutine created and resumed "
  .. "to a yield of its delay, the deadlines sorted (table.sort), every coroutine resumed to its end "
  .. "in deadline order, with no real sleep")
note("cqueues and luv poll for I/O (epoll) on every loop turn; task.run does no I/O polling, it only "
  .. "sleeps until the next timer: the no-wait rows (info) drive the peers' loops without blocking")
note("Lua memory: collectgarbage('count') deltas plus the core's own bytes (its task slots and heap "
  .. "entries come from Lua's allocator but outside the collector's count; task.stats().core_bytes reports them), "
  .. "each contender in a fresh interpreter, so that nothing grown by earlier rows is left out")
