-- callback_api.lua: run by examples/callback_api.c, whose module "fetch"
-- starts requests of a C library with a callback API.
local task = require "task"
local fetch = require "fetch"

-- A blocking call for tasks: the library's callback resumes the id.
local function get(url)
  local id = task.alloc()
  local _ <close> = fetch.start(url, id) -- closed before the reply: cancels it
  return task.wait(id)                   -- what the callback passed: status, body
end

task.spawn(function()
  print("a:", get("/a"))
  print("b:", get("/b"))
end)

local slow = task.spawn(function()
  print("slow:", pcall(get, "/slow"))
end)
task.spawn(function()
  task.sleep(50)
  print("cancelling slow")
  slow:cancel()
end)

print("timeout:", task.timeout(100, function() return get("/other/slow") end))
