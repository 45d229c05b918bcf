-- traceparent.lua: task.traceparent(), the W3C Trace Context header.
-- The examples are those of the W3C Trace Context recommendation; the
-- mapping between the 64-bit trace id and the header is task.h's
-- (trace-id = 16 zeros .. hex(id with bits 15..0 cleared), parent-id =
-- hex(id); parsing folds ((T.hi ~ T.lo) & ~0xFFFF) | (P & 0xFFFF)).
local task = require "task"
local T = require "testing"

local EX1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
local EX2 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

T.case("parses the W3C examples", function()
  T.eq(task.traceparent(EX1), 0x8ebf8e380a4d3331)
  T.eq(task.traceparent(EX2), 0xe837bda879bd02b7)
  T.eq(task.traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), 0xe837bda879bd02b7)
  -- a later version may carry more fields after a dash
  T.eq(task.traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future"), 0x8ebf8e380a4d3331)
  -- HTTP optional whitespace around the value
  T.eq(task.traceparent(" \t" .. EX1 .. " "), 0x8ebf8e380a4d3331)
end)

T.case("rejects invalid headers with nil, err", function()
  local bad = {
    "",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  -- version ff
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",  -- all-zero trace-id
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  -- all-zero parent-id
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  -- uppercase
    "00-0af7651916cd43dd8448eb211c80319c-B7AD6B7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",   -- 31 hex
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033311-01", -- 17 hex
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",   -- 1 hex flags
    EX1 .. "-extra",                                            -- 00 is exactly 55
    "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",  -- not hex
    "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", -- later version, no dash
  }
  for _, h in ipairs(bad) do
    local id, err = task.traceparent(h)
    T.eq(id, nil, h)
    T.eq(err, "task.traceparent: invalid traceparent header", h)
  end
  T.raises("string expected, got table", task.traceparent, {})
end)

T.case("the running task's trace round-trips", function()
  task.tracenode(42)
  task.tracespawn()
  local h = assert(task.traceparent())
  T.eq(#h, 55)
  T.ok(h:match("^00%-0000000000000000%x%x%x%x%x%x%x%x%x%x%x%x0000%-%x+%-01$"), "header shape " .. h)
  -- the header carries the id as it leaves this node: tracepropagate()
  T.eq(task.traceparent(h), task.tracepropagate())
  T.eq(task.tracepropagate() & 0xFFFF, 42)
  -- set a known id: the header is exact
  task.traceset(0x0001002a00070005)
  T.eq(task.traceparent(), "00-00000000000000000001002a00070000-0001002a0007002a-01")
  task.tracenode(5)
  T.eq(task.traceparent(), "00-00000000000000000001002a00070000-0001002a00070005-01")
  T.eq(task.traceparent(task.traceparent()), 0x0001002a00070005)
end)

T.case("an incoming header continues the trace in a task", function()
  task.tracenode(9)
  local id = assert(task.traceparent(EX2))
  local t = task.spawn(function()
    task.traceset(id)
    return task.traceparent()
  end)
  local h = t:join()
  -- same trace (bits 63..16), this node as the hop
  T.eq(task.traceparent(h), (id & ~0xFFFF) | 9)
  T.eq(h, "00-0000000000000000e837bda879bd0000-e837bda879bd0009-01")
end)

T.case("no trace id: nil, err", function()
  task.traceset(0)
  task.tracenode(0)
  local h, err = task.traceparent()
  T.eq(h, nil)
  T.ok(err:find("no trace id", 1, true), "message " .. tostring(err))
end)

T.run()
