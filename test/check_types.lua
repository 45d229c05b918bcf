-- check_types.lua MODULE_DIR TYPES: the real module (MODULE_DIR/task.so),
-- listed at run time, against the definitions file, both ways.
local dir, types = arg[1], arg[2]
package.cpath = dir .. "/?.so;" .. package.cpath
local task = require "task"

local defs, src = {}, assert(io.open(types)):read("a")
for cls, _, name in src:gmatch("\nfunction ([%w_]+)([.:])([%w_]+)%(") do
  defs[(cls == "task" and "task." or cls .. ":") .. name] = true
end

local real = {}
for k, v in pairs(task) do if type(v) == "function" then real["task." .. k] = true end end
local function methods(cls, obj)
  local idx = getmetatable(obj).__index
  if type(idx) == "function" then -- a C closure: (state, methods)
    local _, m = debug.getupvalue(idx, 2)
    idx = m
  end
  for k, v in pairs(idx) do if type(v) == "function" then real[cls .. ":" .. k] = true end end
end
task.run(function()
  methods("Task", task.spawn(function() end))
  methods("Channel", task.channel())
  methods("CancelToken", task.cancel_token())
  local tm = task.timer(0); methods("Timer", tm); tm:wait()
  task.scope(function(sc) methods("Scope", sc) end)
end)

local function diff(a, b, what)
  local miss = {}
  for k in pairs(a) do if not b[k] then miss[#miss + 1] = k end end
  table.sort(miss)
  if #miss == 0 then print("ok - types: " .. what)
  else print("not ok - types: " .. what .. ": " .. table.concat(miss, ", ")) end
end
diff(real, defs, "every function and method of the loaded module is defined")
diff(defs, real, "every definition exists in the loaded module")
