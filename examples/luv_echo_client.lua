-- luv_echo_client.lua: a bounded load client for an echo server on
-- 127.0.0.1, in plain Lua with task.luv (each connection a task).
--
--   LUA_CPATH='build/?.so;;' lua5.4 examples/luv_echo_client.lua PORT [CONNS [MSGS]]
--
-- Opens CONNS connections (default 20) at once and sends MSGS messages
-- (default 100) on each, one at a time, each of its own length (1..4096
-- bytes) and content; every echoed byte is checked. Prints one TAP line;
-- gives up after 60 s. Exits 0 when every check passed.
local task = require "task"
local tluv = require "task.luv"

local port = math.tointeger(tonumber(arg[1]))
local nconns = math.tointeger(tonumber(arg[2] or 20))
local nmsgs = math.tointeger(tonumber(arg[3] or 100))
if not (port and port > 0 and port < 65536 and nconns and nconns > 0 and nmsgs and nmsgs > 0) then
  io.stderr:write("usage: luv_echo_client.lua PORT [CONNS [MSGS]]\n")
  os.exit(2)
end

-- Message m of connection c: reproducible length and bytes.
local function message(c, m)
  local h = (c * 7919 + m * 104729) % 2147483647
  local len = 1 + h % (m % 25 == 24 and 4096 or 300)
  local b = {}
  for i = 1, len do b[i] = (h + i * 31) % 256 end
  return string.char(table.unpack(b))
end

local total, bad = 0, {}

-- One connection: send, read back exactly as many bytes, compare.
local function client(c)
  local conn, err = tluv.tcp_connect("127.0.0.1", port)
  if not conn then bad[#bad + 1] = ("connection %d: %s"):format(c, err); return end
  local _ <close> = tluv.closing(conn)
  for m = 1, nmsgs do
    local msg = message(c, m)
    local sent, werr = tluv.write(conn, msg)
    if not sent then bad[#bad + 1] = ("connection %d: message %d: %s"):format(c, m, werr); return end
    local got = {}
    local n = 0
    while n < #msg do
      local data, rerr = tluv.read(conn)
      if not data then bad[#bad + 1] = ("connection %d: message %d: %s"):format(c, m, rerr); return end
      got[#got + 1] = data
      n = n + #data
    end
    local echoed = table.concat(got)
    if echoed ~= msg then
      bad[#bad + 1] = ("connection %d: message %d: %d bytes back, sent %d, or different bytes"):format(c, m, #echoed, #msg)
      return
    end
    total = total + #msg
  end
end

local t0 = os.time()
local _, err = tluv.run(function()
  return task.timeout(60000, function()
    task.scope(function(sc)
      for c = 1, nconns do sc:spawn(client, c) end
    end)
    return true
  end)
end)
if err then bad[#bad + 1] = "gave up after 60 s" end
print(("%s - luv_echo_client: %d connections x %d messages, %d bytes echoed and checked (%d s)")
  :format(#bad == 0 and "ok" or "not ok", nconns, nmsgs, total, os.time() - t0))
for i = 1, math.min(#bad, 10) do print("# " .. bad[i]) end
os.exit(#bad == 0 and 0 or 1)
