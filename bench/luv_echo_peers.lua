-- bench/luv_echo_peers.lua MODE [options]: the echo server of
-- examples/luv_echo.lua written without task, for the luv echo benchmark
-- (bench/luv_echo.lua):
--   luv       plain luv callbacks: read_start, write, a timer per connection
--   cqueues   cqueues sockets, a coroutine per connection (cq:wrap)
-- The same options and lines as the example: --port, --max-conns,
-- --duration-ms, --idle-ms (a read that waits longer closes the
-- connection), --grace-ms (ignored: the bench closes every connection);
-- prints "luv_echo: listening on 127.0.0.1:PORT", and a summary when it
-- stops.
local mode = arg[1]
local cfg = {port = 0, max_conns = 0, duration_ms = 60000, idle_ms = 10000, grace_ms = 0}
do
  local i = 2
  while arg[i] do
    local k = arg[i]:match("^%-%-([%w-]+)$")
    local v = math.tointeger(tonumber(arg[i + 1]))
    if not (k and v and v >= 0 and cfg[k:gsub("-", "_")]) then error("luv_echo_peers.lua: bad option " .. arg[i]) end
    cfg[k:gsub("-", "_")] = v
    i = i + 2
  end
end
local stats = {conns = 0, closed = 0, timeout = 0, errors = 0, bytes = 0}
local function listening(port)
  print(("luv_echo: listening on 127.0.0.1:%d"):format(port))
  io.stdout:flush()
end
local function summary(reason)
  print(("luv_echo: stopped (%s): %d connections, %d closed by peer, %d timed out, 0 cancelled, %d errors, %d bytes echoed")
    :format(reason, stats.conns, stats.closed, stats.timeout, stats.errors, stats.bytes))
end

if mode == "luv" then
  local uv = require "luv"
  local reason = "max-conns"
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", cfg.port))
  local open = 0
  local stop = uv.new_timer()
  local function shut(why)
    if server:is_closing() then return end
    reason = why
    server:close()
    stop:close()
  end
  assert(server:listen(128, function(err)
    assert(not err, err)
    local c = uv.new_tcp()
    assert(server:accept(c))
    stats.conns = stats.conns + 1
    open = open + 1
    if cfg.max_conns > 0 and stats.conns >= cfg.max_conns then shut("max-conns") end
    local idle = cfg.idle_ms > 0 and uv.new_timer() or nil
    local function finish(why)
      if c:is_closing() then return end
      stats[why] = stats[why] + 1
      c:close()
      if idle then idle:close() end
      open = open - 1
    end
    local function timed_out() finish("timeout") end
    if idle then idle:start(cfg.idle_ms, 0, timed_out) end
    c:read_start(function(rerr, data)
      if rerr then finish("errors")
      elseif not data then finish("closed")
      else
        if idle then idle:start(cfg.idle_ms, 0, timed_out) end
        c:write(data)
        stats.bytes = stats.bytes + #data
      end
    end)
  end))
  listening(server:getsockname().port)
  stop:start(cfg.duration_ms, 0, function() shut("duration") end)
  uv.run()
  summary(reason)
elseif mode == "cqueues" then
  local cqueues = require "cqueues"
  local socket = require "cqueues.socket"
  local cq = cqueues.new()
  local srv = assert(socket.listen{host = "127.0.0.1", port = cfg.port, reuseaddr = true})
  assert(srv:listen())
  local _, _, port = srv:localname()
  listening(port)
  local reason = "max-conns"
  local t0 = cqueues.monotime()
  local idle_s = cfg.idle_ms > 0 and cfg.idle_ms / 1000 or nil
  local function serve(c)
    c:setmode("bn", "bn") -- binary, no buffering: every write goes out at once
    while true do
      local data, err = c:xread(-16384, "bn", idle_s)
      if not data then
        if err == nil then stats.closed = stats.closed + 1
        elseif err == 110 then stats.timeout = stats.timeout + 1 -- ETIMEDOUT
        else stats.errors = stats.errors + 1 end
        break
      end
      local ok = c:xwrite(data, "bn")
      if not ok then stats.errors = stats.errors + 1; break end
      stats.bytes = stats.bytes + #data
    end
    c:close()
  end
  cq:wrap(function()
    while cfg.max_conns == 0 or stats.conns < cfg.max_conns do
      local left = math.max(0, cfg.duration_ms / 1000 - (cqueues.monotime() - t0))
      local c = srv:accept(left)
      if not c then reason = "duration"; break end
      stats.conns = stats.conns + 1
      cq:wrap(serve, c)
    end
    srv:close()
  end)
  assert(cq:loop())
  summary(reason)
else
  io.stderr:write("usage: luv_echo_peers.lua luv|cqueues [--port N] [--max-conns N] [--duration-ms N] [--idle-ms N]\n")
  os.exit(2)
end
