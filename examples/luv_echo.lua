-- luv_echo.lua: a TCP echo server on 127.0.0.1 in plain Lua: the stock
-- lua5.4 with luv (lua-luv) and task's standalone module (build/task.so)
-- through task.luv. Each connection is a task whose code reads like
-- blocking code; luv's loop does the I/O.
--
--   LUA_CPATH='build/?.so;;' lua5.4 examples/luv_echo.lua [--port 0]
--       [--max-conns N] [--duration-ms N] [--idle-ms N] [--grace-ms N]
--
-- Prints "luv_echo: listening on 127.0.0.1:PORT", then, once it stops
-- (after N connections, or the duration), a summary line. A connection
-- silent for --idle-ms is closed; at shutdown the open ones get
-- --grace-ms to finish, then their tasks are cancelled.
local task = require "task"
local tluv = require "task.luv"

local cfg = {port = 0, max_conns = 0, duration_ms = 60000, idle_ms = 10000, grace_ms = 1000}
do
  local i = 1
  while arg[i] do
    local k = arg[i]:match("^%-%-([%w-]+)$")
    local v = math.tointeger(tonumber(arg[i + 1]))
    if not (k and v and v >= 0 and cfg[k:gsub("-", "_")]) then
      io.stderr:write("usage: luv_echo.lua [--port N] [--max-conns N] [--duration-ms N] [--idle-ms N] [--grace-ms N]\n")
      os.exit(2)
    end
    cfg[k:gsub("-", "_")] = v
    i = i + 2
  end
end

local stats = {conns = 0, closed = 0, timeout = 0, cancelled = 0, errors = 0, bytes = 0}
local live = {} -- [Task] = true while its connection is open

-- One connection: echo until the peer closes, a read times out, an I/O
-- error, or the task is cancelled ("task cancelled" raised by read or
-- write); the <close> guard closes the socket in every case.
local function serve(conn)
  local self = task.running()
  local ok, why = pcall(function()
    local _ <close> = tluv.closing(conn)
    while true do
      local data, err = tluv.read(conn, cfg.idle_ms > 0 and cfg.idle_ms or nil)
      if not data then return err end
      local sent, werr = tluv.write(conn, data)
      if not sent then return werr end
      stats.bytes = stats.bytes + #data
    end
  end)
  live[self] = nil
  if not ok and why == "task cancelled" then stats.cancelled = stats.cancelled + 1
  elseif ok and why == "eof" then stats.closed = stats.closed + 1
  elseif ok and why == "timeout" then stats.timeout = stats.timeout + 1
  else
    stats.errors = stats.errors + 1
    io.stderr:write(("luv_echo: connection error: %s\n"):format(tostring(why)))
  end
end

local reason = "max-conns"
tluv.run(function()
  local lst = assert(tluv.tcp_listen("127.0.0.1", cfg.port))
  print(("luv_echo: listening on 127.0.0.1:%d"):format(lst:getsockname().port))
  io.stdout:flush()
  local t0 = task.now()
  task.scope("server", function(sc)
    while cfg.max_conns == 0 or stats.conns < cfg.max_conns do
      local left = math.max(0, cfg.duration_ms - (task.now() - t0))
      local c, err = tluv.accept(lst, left) -- a timeout per call: the duration bound
      if not c then reason = err == "timeout" and "duration" or err; break end
      stats.conns = stats.conns + 1
      live[sc:spawn(serve, c)] = true
    end
    tluv.close(lst)
    -- Let the open connections finish for grace_ms, then cancel the rest.
    local _, err = task.timeout(cfg.grace_ms, function()
      for t in pairs(live) do if not t:done() then t:join() end end
    end)
    if err == "timeout" then sc:cancel() end
  end)
end)

print(("luv_echo: stopped (%s): %d connections, %d closed by peer, %d timed out, %d cancelled, %d errors, %d bytes echoed")
  :format(reason, stats.conns, stats.closed, stats.timeout, stats.cancelled, stats.errors, stats.bytes))
