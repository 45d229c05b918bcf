-- echo_server.lua: run by build/echo_server (examples/echo_server.c), which
-- passes its settings as the one argument and provides `require "net"`.
-- Each connection is a task that reads like blocking code; the host's
-- poll() loop resumes it when its socket is ready.
local task = require "task"
local net = require "net"

local cfg = ...
local stats = {conns = 0, closed = 0, timeout = 0, cancelled = 0, errors = 0, bytes = 0}
local live = {}            -- [Task] = true while its connection is open

-- One connection: echo until the peer closes, a read times out, an I/O
-- error, or the task is cancelled (then "task cancelled" is raised from
-- c:read/c:write; the <close> variable closes the socket either way).
local function serve(conn)
  local self = task.running()
  local ok, why = pcall(function()
    local c <close> = conn
    while true do
      local data, err = c:read(16384, cfg.idle_ms)
      if not data then return err end
      local sent, werr = c:write(data)
      if not sent then return werr end
      stats.bytes = stats.bytes + #data
    end
  end)
  live[self] = nil
  if not ok and why == "task cancelled" then stats.cancelled = stats.cancelled + 1
  elseif ok and why == "closed" then stats.closed = stats.closed + 1
  elseif ok and why == "timeout" then stats.timeout = stats.timeout + 1
  else
    stats.errors = stats.errors + 1
    io.stderr:write(("echo_server: connection error: %s\n"):format(tostring(why)))
  end
end

local lst = assert(net.listen(cfg.port))
print(("echo_server: listening on 127.0.0.1:%d"):format(lst.port))
io.stdout:flush()

local t0, reason = task.now(), "max-conns"
task.scope("server", function(sc)
  while cfg.max_conns == 0 or stats.conns < cfg.max_conns do
    local left = math.max(0, cfg.duration_ms - (task.now() - t0))
    local c, err = lst:accept(left)          -- a per-call timeout: the duration bound
    if not c then reason = err == "timeout" and "duration" or err; break end
    stats.conns = stats.conns + 1
    live[sc:spawn(serve, c)] = true     -- now: it may not have run yet at shutdown
  end
  lst:close()
  -- Let the open connections finish for grace_ms, then cancel the rest.
  local _, err = task.timeout(cfg.grace_ms, function()
    for t in pairs(live) do if not t:done() then t:join() end end
  end)
  if err == "timeout" then sc:cancel() end
end)

print(("echo_server: stopped (%s): %d connections, %d closed by peer, %d timed out, %d cancelled, %d errors, %d bytes echoed")
  :format(reason, stats.conns, stats.closed, stats.timeout, stats.cancelled, stats.errors, stats.bytes))
