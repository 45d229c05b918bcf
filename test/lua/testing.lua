-- testing.lua: the Lua tests' harness. A script registers cases with
-- T.case(name, fn) and ends with T.run(): each case runs in a task of its
-- own, one after the other; an error fails it. Errors that reach the
-- host's error handler during a case (ERRORS, filled by the runner) fail
-- it too, unless the case takes them with T.errors().
local task = require "task"
local T = {}
local cases = {}

function T.case(name, fn) cases[#cases + 1] = {name = name, fn = fn} end

local function fmt(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function T.eq(got, want, what)
  if got ~= want then
    error(("%s: got %s, want %s"):format(what or "value", fmt(got), fmt(want)), 2)
  end
end

function T.ok(cond, what)
  if not cond then error((what or "condition") .. " is false", 2) end
end

-- Array equality, shallow.
function T.same(got, want, what)
  local g, w = {}, {}
  for i = 1, math.max(#got, #want) do g[i], w[i] = fmt(got[i]), fmt(want[i]) end
  local gs, ws = table.concat(g, ","), table.concat(w, ",")
  if gs ~= ws or #got ~= #want then error(("%s: got {%s}, want {%s}"):format(what or "list", gs, ws), 2) end
end

-- Calls fn(...) and wants it to raise an error whose string form contains
-- `plain` (a plain substring). Returns the error value.
function T.raises(plain, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error(("expected an error containing %q, got none"):format(plain), 2) end
  if not tostring(err):find(plain, 1, true) then
    error(("expected an error containing %q, got %s"):format(plain, fmt(tostring(err))), 2)
  end
  return err
end

-- The errors reported to the handler since the case began, taken.
function T.errors()
  local e = {}
  for i = 1, #ERRORS do e[i] = ERRORS[i]; ERRORS[i] = nil end
  return e
end

function T.run()
  local file = (SCRIPT or "?"):match("[^/]*$")
  for _, c in ipairs(cases) do
    for i = #ERRORS, 1, -1 do ERRORS[i] = nil end
    local t = task.spawn({name = c.name}, c.fn)
    local ok, err = pcall(t.join, t)
    if ok and #ERRORS > 0 then
      ok, err = false, "unexpected error in a task: " .. tostring(ERRORS[1].err) .. " in " .. tostring(ERRORS[1].task)
    end
    if ok then print(("ok - %s: %s"):format(file, c.name))
    else
      print(("not ok - %s: %s"):format(file, c.name))
      print("# " .. tostring(err):gsub("\n", "\n# "))
    end
  end
end

return T
