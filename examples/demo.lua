-- The task module in five scenes: tasks, sleep, a channel pipeline, a
-- timeout and a cancelled scope. Run with `make run`.
local task = require "task"

local t0 = task.now()
local function say(fmt, ...)
  print(("[%5.0f ms] " .. fmt):format(task.now() - t0, ...))
end

-- 1. Tasks sleep side by side; each returns a value to whoever joins it.
say("1. three tasks sleep 30, 10 and 20 ms")
local sleepers = {}
for i, ms in ipairs({30, 10, 20}) do
  sleepers[i] = task.spawn({name = "sleeper" .. i}, function()
    task.sleep(ms)
    say("   %s woke after %d ms", task.current().name, ms)
    return ms * 2
  end)
end
for _, t in ipairs(sleepers) do say("   joined %s -> %d", t.name, t:join()) end

-- 2. A pipeline: producer -> squarer -> consumer, over bounded channels.
say("2. pipeline through two channels of capacity 2")
local numbers, squares = task.channel(2), task.channel {capacity = 2}
task.spawn(function()
  for n = 1, 5 do numbers:send(n); task.sleep(1) end
  numbers:close()
end)
task.spawn(function()
  for n in function() return (numbers:recv()) end do squares:send(n * n) end
  squares:close()
end)
local got = {}
while true do
  local v, err = squares:recv()
  if err == "closed" then break end
  got[#got + 1] = v
end
say("   consumer got %s", table.concat(got, " "))

-- 3. A timeout: the slow call is cancelled at its deadline.
say("3. timeout of 50 ms around work that takes 200 ms")
local result, err = task.timeout(50, function()
  local ok, e = pcall(task.sleep, 200)
  say("   the slow call saw: %s", tostring(e))
  error(e, 0)                      -- cancellation goes on up
end)
say("   timeout returned %s, %s", tostring(result), tostring(err))

-- 4. A scope: its children are cancelled together and it waits for them.
say("4. a scope with three workers, cancelled after 25 ms")
local ok, e = pcall(task.scope, "workers", function(scope)
  for _ = 1, 3 do
    scope:spawn(function()
      while true do task.sleep(10) end   -- would run forever
    end)
  end
  scope:spawn(function()
    local _ <close> = setmetatable({}, {__close = function(_, why)
      say("   worker's cleanup ran (%s)", tostring(why or "no error"))
    end})
    task.sleep(1000)
  end)
  task.sleep(25)
  say("   cancelling scope %q", scope.name)
  scope:cancel()
  task.checkpoint()                -- raises: the body is in the scope too
end)
say("   scope ended: ok=%s, err=%s", tostring(ok), tostring(e))

-- 5. select: whichever is first, a channel message or a timer.
say("5. select between a channel and a 15 ms timer")
local ch = task.channel()
task.spawn(function() task.sleep(40); ch:send("late message") end)
local idx = task.select({ch, task.timer(15)})
say("   select picked #%d (%s)", idx, idx == 1 and "channel" or "timer")
say("   the message still arrives: %s", ch:recv())
say("done: %d tasks still alive besides this one", task.stats().tasks - 1)
