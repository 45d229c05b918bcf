-- trace.lua: taskstat, tasks, tracenode/tracespawn/traceset/tracepropagate, hook.
local task = require "task"
local T = require "testing"
local H = require "helpers"

T.case("taskstat(): the ready-queue length", function()
  T.eq(task.taskstat(), 0)
  local ts = {}
  for i = 1, 3 do ts[i] = task.spawn(function() end) end
  T.eq(task.taskstat(), 3)
  task.yield()
  T.eq(task.taskstat(), 0)
  for i = 1, 3 do ts[i]:join() end
end)

T.case("tasks(): {[Task] = {traceback, status}} for every live task", function()
  local s = task.spawn(function() task.sleep(5) end)
  local w = task.spawn(function() task.wait() end)
  task.yield()
  local all = task.tasks()
  T.eq(all[s].status, "SLEEP"); T.eq(all[w].status, "WAIT")
  T.eq(all[task.running()].status, "RUN")
  T.eq(type(all[s].traceback), "string")
  T.ok(all[s].traceback:find("sleep", 1, true), all[s].traceback)
  task.wakeup(w)
  s:join(); w:join()
  T.eq(task.tasks()[s], nil)
end)

T.case("tracenode/tracespawn/traceset/tracepropagate: silly's layout", function()
  task.tracenode(0x1234)
  local old = task.tracespawn()
  T.eq(math.type(old), "integer")
  local id = task.traceset(0)
  T.eq(task.traceset(id), 0)
  T.eq((id >> 48) & 0xFFFF, 0x1234, "root node")
  T.eq((id >> 32) & 0xFFFF, math.floor(task.now() / 1000) % 65536, "seconds")
  T.eq(id & 0xFFFF, 0x1234, "hop node")
  local id2 = task.tracespawn()
  T.eq(id2, id, "tracespawn returns the old id")
  local id3 = task.traceset(id)
  T.ok(((id3 >> 16) & 0xFFFF) ~= ((id >> 16) & 0xFFFF), "the sequence moves")
  task.tracenode(7)
  local p = task.tracepropagate()
  T.eq(p & 0xFFFF, 7); T.eq(p >> 16, id >> 16)
  T.eq(task.traceset(0x1111222233334444), id)
  T.eq(task.tracepropagate(), (0x1111222233334444 & ~0xFFFF) | 7)
  task.traceset(old)
end)

T.case("trace ids: each task its own, a spawned task starts with its parent's", function()
  task.traceset(0x0A0B0C0D00010002)
  local t = task.spawn(function()
    local inherited = task.traceset(0x99)
    return inherited, task.traceset(0x99)
  end)
  local inherited, own = t:join()
  T.eq(inherited, 0x0A0B0C0D00010002); T.eq(own, 0x99)
  T.eq(task.traceset(0), 0x0A0B0C0D00010002, "the parent's id is untouched")
end)

T.case("tracenode: range and argument errors", function()
  T.raises("task.tracenode: node must be 0..65535, got -1", task.tracenode, -1)
  T.raises("task.tracenode: node must be 0..65535, got 65536", task.tracenode, 65536)
  H.badarg(1, "tracenode", function() return task.tracenode("x") end)
  H.badarg(1, "traceset", function() return task.traceset({}) end)
  task.tracenode(0)
end)

T.case("hook(create, term): called per task, returns the previous ones; task_hook is the same", function()
  local log = {}
  local c = function(t) log[#log + 1] = "create " .. tostring(t.name) end
  local e = function(t) log[#log + 1] = "term " .. tostring(t.name) end
  local pc, pt = task.hook(c, e)
  local t = task.spawn({name = "h"}, function() return 1 end)
  t:join()
  local rc, rt = task.task_hook(pc, pt)
  T.eq(rc, c); T.eq(rt, e)
  T.ok(log[1]:find("^create"), log[1]); T.eq(log[#log], "term h")
  local n = #log
  task.spawn(function() end):join()
  T.eq(#log, n, "hooks removed")
  T.eq(task.hook, task.task_hook)
  H.badarg(1, "hook", function() return task.hook(5) end)
  H.badarg(2, "hook", function() return task.hook(nil, 5) end)
end)

T.run()
