-- helpers.lua: small checks shared by the Lua suites (next to testing.lua).
local T = require "testing"
local H = {}

-- f() must raise "bad argument #n to '<name>'" (the name may carry a
-- "task." prefix when Lua finds it through package.loaded).
function H.badarg(n, name, f)
  local ok, err = pcall(f)
  if ok then error(("expected bad argument #%d to '%s', got no error"):format(n, name), 2) end
  err = tostring(err)
  local a = ("bad argument #%d to '%s'"):format(n, name)
  local b = ("bad argument #%d to 'task.%s'"):format(n, name)
  if not (err:find(a, 1, true) or err:find(b, 1, true)) then
    error(("expected %q, got %q"):format(a, err), 2)
  end
  return err
end

-- f(v) must raise "<fname>: invalid duration (ms=<v>)" for a negative, a
-- NaN and an infinite v.
function H.durations(fname, f)
  for _, v in ipairs({-1, -0.5, 0/0, math.huge, -math.huge}) do
    local ok, err = pcall(f, v)
    if ok then error(("%s(%s): expected an invalid duration error"):format(fname, tostring(v)), 2) end
    local shown = v ~= v and "nan" or tostring(v)
    local want = ("%s: invalid duration (ms=%s)"):format(fname, shown)
    if not tostring(err):find(want, 1, true) then
      error(("expected %q, got %q"):format(want, tostring(err)), 2)
    end
  end
end

-- A to-be-closed value that logs ("close", err) into log.
function H.closer(log, tag)
  return setmetatable({}, {__close = function(_, e)
    log[#log + 1] = tag or "closed"
    log.err = e
  end})
end

-- The task values spawned for a case, joined later.
function H.pack(...) return table.pack(...) end

H.T = T
return H
