-- scale.lua: 100 000 concurrent sleeping tasks (TASK_LUA_SCALE=n to change).
local task = require "task"
local T = require "testing"
local N = tonumber(os.getenv("TASK_LUA_SCALE") or "") or 100000

T.case(N .. " concurrent sleeping tasks all finish, in deadline order", function()
  local woke, last, bad = 0, -1, 0
  local t0 = task.now()
  for i = 1, N do
    task.spawn(function()
      local d = (i * 7919) % 1000 + 1
      task.sleep(d)
      if task.now() - t0 < d then bad = bad + 1 end
      if d < last then bad = bad + 1 end
      last = d
      woke = woke + 1
    end)
  end
  task.yield()
  T.eq(task.taskstat(), 0)
  collectgarbage()
  task.sleep(1001)
  T.eq(woke, N); T.eq(bad, 0)
end)

T.case(N .. " tasks joined one by one return their values", function()
  local ts = {}
  for i = 1, N do ts[i] = task.spawn(function() task.sleep(i % 10); return i end) end
  local sum = 0
  for i = 1, N do sum = sum + ts[i]:join() end
  T.eq(sum, N * (N + 1) // 2)
end)

T.run()
