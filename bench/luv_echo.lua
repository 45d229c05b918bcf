-- bench/luv_echo.lua [--smoke | --quick]: the luv echo rows of `make bench`.
-- The echo server of examples/luv_echo.lua (tasks over luv, task.luv)
-- against the same server written with plain luv callbacks and with
-- cqueues sockets (bench/luv_echo_peers.lua), each a lua5.4 process on a
-- free loopback port, loaded by bench/echo_load.c: 64 connections
-- ping-ponging 64-byte messages, every byte checked. Prints the line
-- format of bench/run.sh (row / skip / note).
--
-- Environment: TASK_BUILD (the directory of task.so, default build),
-- ECHO_LOAD (the load client, default $TASK_BUILD/bench/echo_load), LUA
-- (the interpreter, default lua5.4), BENCH_QUICK=1 (or --quick): fewer,
-- shorter rounds. --smoke: a few round trips per connection, no timing
-- claims (make test). Each round runs the three servers back to back, in
-- rotating order, so a busy machine slows all alike; the figures are the
-- medians over the rounds. Every server stops by itself after its 64
-- connections (or a duration bound).
local build = os.getenv("TASK_BUILD") or "build"
local load = os.getenv("ECHO_LOAD") or (build .. "/bench/echo_load")
local lua = os.getenv("LUA") or "lua5.4"

local smoke, quick = false, (os.getenv("BENCH_QUICK") or "") ~= ""
for _, a in ipairs(arg) do
  if a == "--smoke" then smoke = true
  elseif a == "--quick" then quick = true
  else error("luv_echo.lua: unknown argument " .. a) end
end

local fmt = string.format
local function row(name, ours, peer, unit, kind, target)
  print(fmt("row\t%s\t%.4g\t%s\t%s\t%s\t%s", name, ours, peer and fmt("%.4g", peer) or "-", unit, kind, target or "-"))
end
local function skip(name, why) print(fmt("skip\t%s\t%s", name, why)) end
local function note(s) print("note\t" .. s) end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local CONNS, SIZE = 64, 64
local ROUNDS = smoke and 1 or quick and 3 or 5
local MS, WARM = quick and 1000 or 2000, quick and 200 or 300

local function have(m) return (pcall(require, m)) end
local NOUV = "lua-luv is not installed (apt-get install lua-luv)"
local NOCQ = "lua-cqueues is not installed (apt-get install lua-cqueues)"

local env = fmt("LUA_CPATH=%s LUA_PATH=%s ", q(build .. "/?.so;;"), q("./?.lua;;"))
local servers = {
  {name = "task.luv", cmd = env .. q(lua) .. " examples/luv_echo.lua"},
  {name = "luv", cmd = env .. q(lua) .. " bench/luv_echo_peers.lua luv"},
  {name = "cqueues", cmd = env .. q(lua) .. " bench/luv_echo_peers.lua cqueues", skip = not have("cqueues") and NOCQ},
}

-- One server under load: {rps, p99_us, p50_us}, or raises with what went wrong.
local function measure(s)
  local out = os.tmpname()
  local srv = assert(io.popen(fmt("%s --port 0 --max-conns %d --idle-ms 10000 --grace-ms 30000 --duration-ms 60000 2>%s",
    s.cmd, CONNS, q(out .. ".err"))))
  local first = srv:read("l") or ""
  local port = first:match("^luv_echo: listening on 127%.0%.0%.1:(%d+)$")
  if not port then
    srv:close()
    error(fmt("%s: no port from the server: %q %s", s.name, first, io.open(out .. ".err"):read("a")))
  end
  local how = smoke and "--count 20" or fmt("%d %d", MS, WARM)
  local p = assert(io.popen(fmt("%s %s %d %d %s 2>&1", q(load), port, CONNS, SIZE, how)))
  local res = p:read("a")
  local cok = p:close()
  local summary = srv:read("a")
  local sok = srv:close()
  local ef = io.open(out .. ".err")
  local err = ef and ef:read("a") or ""
  if ef then ef:close() end
  os.remove(out .. ".err"); os.remove(out)
  local n, rps, p50, p99, errors = res:match("requests (%d+) ms [%d.]+ rps ([%d.]+) p50_us ([%d.]+) p99_us ([%d.]+) errors (%d+)")
  if not (cok and sok and n and errors == "0" and err == "" and summary:find(fmt("stopped %%(max%%-conns%%): %d connections, %d closed by peer", CONNS, CONNS))) then
    error(fmt("%s: the run failed:\n%s\n%s\n%s", s.name, res, summary, err))
  end
  return {rps = tonumber(rps), p99 = tonumber(p99), p50 = tonumber(p50), n = tonumber(n)}
end

local function median(t)
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local m = #s
  if m % 2 == 1 then return s[(m + 1) // 2] end
  return (s[m // 2] + s[m // 2 + 1]) / 2
end

if not have("luv") then
  skip("Lua echo server: task.luv vs plain luv callbacks (us/request)", NOUV)
  skip("Lua echo server: task.luv vs cqueues sockets (us/request)", NOUV)
  skip("  same, p99 latency vs plain luv (us)", NOUV)
  skip("  same, p99 latency vs cqueues (us)", NOUV)
  os.exit(0)
end

local got = {}
for _, s in ipairs(servers) do got[s.name] = {rps = {}, p99 = {}, p50 = {}} end
local ok, err = pcall(function()
  for r = 1, ROUNDS do
    for i = 0, #servers - 1 do
      local s = servers[(r + i - 1) % #servers + 1]
      if not s.skip then
        local m = measure(s)
        local g = got[s.name]
        g.rps[#g.rps + 1], g.p99[#g.p99 + 1], g.p50[#g.p50 + 1] = m.rps, m.p99, m.p50
      end
    end
  end
end)
if not ok then io.stderr:write("luv_echo.lua: ", tostring(err), "\n"); os.exit(1) end

local fig = {}
for _, s in ipairs(servers) do
  local g = got[s.name]
  if #g.rps > 0 then fig[s.name] = {rps = median(g.rps), p99 = median(g.p99), p50 = median(g.p50)} end
end
local function us(f) return 1e6 / f.rps end -- time per request: lower is better, as run.sh wants
local T, L, C = fig["task.luv"], fig.luv, fig.cqueues
row("Lua echo server: task.luv vs plain luv callbacks (us/request)", us(T), us(L), "us", "ratio", 1.25)
if C then
  row("Lua echo server: task.luv vs cqueues sockets (us/request)", us(T), us(C), "us", "ratio", 1.0)
else skip("Lua echo server: task.luv vs cqueues sockets (us/request)", NOCQ) end
row("  same, p99 latency vs plain luv (us)", T.p99, L.p99, "us", "info")
if C then row("  same, p99 latency vs cqueues (us)", T.p99, C.p99, "us", "info")
else skip("  same, p99 latency vs cqueues (us)", NOCQ) end

local function rps(f) return f and fmt("%.0f", f.rps) or "-" end
local function lat(f) return f and fmt("%.0f/%.0f", f.p50, f.p99) or "-" end
note(fmt("Lua echo server (%s): %d connections x %d-byte messages on loopback, one lua5.4 process per server, "
  .. "load from bench/echo_load.c; median of %d rounds of %s; requests/s task.luv %s, plain luv %s, cqueues %s; "
  .. "p50/p99 us %s, %s, %s. Target: at least 0.8 of plain luv's requests/s (ratio <= 1.25), ahead of cqueues",
  smoke and "smoke run, no timing claims" or quick and "BENCH_QUICK" or "full run",
  CONNS, SIZE, ROUNDS, smoke and "20 round trips per connection" or fmt("%d ms after %d ms warm-up", MS, WARM),
  rps(T), rps(L), rps(C), lat(T), lat(L), lat(C)))
note("Lua echo servers: the same behaviour in each (echo, a 10 s idle timeout per read, stop after 64 connections); "
  .. "task.luv is examples/luv_echo.lua as shipped, a task per connection; the peers are bench/luv_echo_peers.lua")
