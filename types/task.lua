---@meta task
-- Lua Language Server definitions for `require "task"` (task_lua.h).
-- Editor support only: this file is never loaded at run time. Point the
-- language server at this folder, e.g. in .luarc.json:
--   { "workspace.library": ["path/to/types"] }
-- Durations are milliseconds (fractions allowed); a negative, NaN or
-- infinite duration raises "<function>: invalid duration (ms=<value>)".
-- Suspending functions must be called from inside a task (not from a
-- plain coroutine nested in one); while the running task is cancelled
-- every suspension raises the string "task cancelled".

---A task: a Lua function running as a scheduled coroutine. A dropped,
---unreachable handle does not stop its task.
---@class Task
---@field id integer The task's 64-bit id (slot and generation); never reused for another task.
---@field name string|nil The name given with `spawn({name = ...}, fn)`.
---@overload fun(): ... Calling a Task joins it: same as `Task:join()`.
local Task = {}

---Waits for the task to end and returns all its results. Re-raises its
---error (the original value; `Task:traceback()` has the traceback), or
---`"task aborted"`. A second call raises `"task already joined"`.
---@return any ...
function Task:join() end

---Same as `Task:join()`.
---@return any ...
function Task:wait() end

---Cooperative cancel: the task is woken at once if it waits or sleeps,
---and every later suspension point raises `"task cancelled"`.
---@return boolean requested `true` if requested, `false` if it had already finished
function Task:cancel() end

---Hard abort: the task never runs again, its to-be-closed variables are
---closed, and joiners get `"task aborted"`.
---@return boolean requested `true` if requested, `false` if it had already finished
function Task:abort() end

---@return boolean finished `true` once the task has ended (returned, failed or aborted)
function Task:done() end

---Same as `Task:done()`.
---@return boolean finished
function Task:is_finished() end

---Its scope no longer waits for it; an error nobody joins goes to the
---host's error handler.
---@return boolean ok always `true`
function Task:detach() end

---@return number ms milliseconds since the task was spawned (scheduler clock)
function Task:elapsed() end

---The traceback of a failed task, or the current traceback of a live
---one; `nil` for a task that ended without an error.
---@return string|nil traceback
function Task:traceback() end

---A structured-concurrency scope (nursery): `task.scope` returns only when
---every task spawned in it has ended.
---@class Scope
---@field name string|nil The name given to `task.scope(name, fn)`.
local Scope = {}

---Spawns `fn(...)` as a member of this scope.
---@param fn fun(...): ...
---@param ... any
---@return Task
function Scope:spawn(fn, ...) end

---Cancels every task of the scope (the owner's waits too).
---@return boolean ok `false` once the scope is closed
function Scope:cancel() end

---The scope's cancel token (a child of the owner's).
---@return CancelToken
function Scope:token() end

---A FIFO channel between tasks (ward.async style). `nil` is a valid message.
---@class Channel
---@overload fun(): any, string|nil Calling a Channel receives: same as `Channel:recv()`.
local Channel = {}

---Sends `v`, waiting while the channel is full.
---@param v any
---@return true|nil ok
---@return "closed"|nil err
function Channel:send(v) end

---Sends `v` without waiting.
---@param v any
---@return true|nil ok
---@return "full"|"closed"|nil err
function Channel:try_send(v) end

---Receives a value, waiting while the channel is empty; `nil, "closed"`
---once it is closed and drained.
---@return any value
---@return "closed"|nil err
function Channel:recv() end

---Same as `Channel:recv()`.
---@return any value
---@return "closed"|nil err
function Channel:wait() end

---Receives a value without waiting.
---@return any value
---@return "empty"|"closed"|nil err
function Channel:try_recv() end

---Closes the channel: senders get `nil, "closed"`; queued items stay readable.
---@return true
function Channel:close() end

---@return integer n the number of queued items
function Channel:len() end

---A cancel token (std.task style). Tokens form a tree: cancelling a
---parent cancels its children.
---@class CancelToken
local CancelToken = {}

---Cancels the token, its children and the tasks that use it.
---@return boolean ok `false` if the token is no longer valid
function CancelToken:cancel() end

---@return boolean cancelled
function CancelToken:is_cancelled() end

---Raises `"task cancelled"` if the token is cancelled, else returns.
function CancelToken:check() end

---An awaitable that completes after a delay (ward.async `timer`).
---@class Timer
---@overload fun(): true Calling a Timer waits for it: same as `Timer:wait()`.
local Timer = {}

---Waits until the timer fires (at once if it already has).
---@return true
function Timer:wait() end

---Cancels the timer if it has not fired.
---@return boolean cancelled `false` if it had already fired or been cancelled
function Timer:cancel() end

---@return boolean fired
function Timer:done() end

---What `task.current()` returns.
---@class task.Current
---@field id integer the running task's id
---@field name string|nil its name
---@field cancelled boolean whether its effective token is cancelled

---What `task.tasks()` returns for each live task.
---@class task.Info
---@field id integer the task's id
---@field name string|nil its name
---@field traceback string its current traceback (where it is parked, or runs)
---@field status "RUN"|"WAIT"|"READY"|"SLEEP"
---@field wait task.WaitKind|nil what kind of wait it is parked in
---@field target Task|Channel|Timer|integer|nil what it waits on: the Task it joins, the Channel, the Timer, the external id
---@field waits string|nil what it waits for, in words (parked tasks)
---@field since number|nil ms since it parked
---@field deadline number|nil a sleep's end, in ms on `task.now()`'s clock
---@field trace integer|nil its trace id, when it has one
---@field resumes integer|nil runs of its code (statistics on: `task.profile()`)
---@field busy number|nil their total time, ms (statistics on)
---@field longest number|nil the longest one, ms (statistics on)
---@field spawned string|nil "file.lua:line" where it was spawned (`task.profile()` on at the time)

---@alias task.WaitKind "sleep"|"wait"|"external"|"join"|"recv"|"send"|"timer"|"select"|"scope"|"race"

---Options of `task.spawn(opts, fn, ...)`; any other key raises.
---@class task.SpawnOpts
---@field name? string the task's name (`Task.name`, error messages)
---@field token? CancelToken cancel the task with this token instead of its scope's

---Options of `task.with_timeout`.
---@class task.WithTimeoutOpts
---@field grace_ms? number how long cancelled children may drain before they are aborted (default 1000)

---@alias task.Status "RUN"|"WAIT"|"READY"|"SLEEP"|"EXIT"
---@alias task.Awaitable Task|Channel|Timer

---The module: `local task = require "task"`.
---@class task
local task = {}

-- ---- tasks -------------------------------------------------------------

---Spawns a new task running `fn(...)` (READY; it starts at the next
---resume slot), attached to the current scope. With a table first:
---`spawn(opts, fn, ...)`.
---@param fn fun(...): ...
---@param ... any
---@return Task
---@overload fun(opts: task.SpawnOpts, fn: fun(...): ..., ...: any): Task
function task.spawn(fn, ...) end

---silly's `fork(fn, ud)`: `spawn(fn, ud)`.
---@param fn fun(ud: any): ...
---@param ud? any
---@return Task
function task.fork(fn, ud) end

---The running task (a Task, not a coroutine), or `nil` outside tasks.
---@return Task|nil
function task.running() end

---The running task's id, name and cancellation, or `nil` outside tasks.
---@return task.Current|nil
function task.current() end

---A task's state, or `nil` once its handle is released.
---@param t Task
---@return task.Status|nil
function task.status(t) end

-- ---- suspension and cancellation ----------------------------------------

---Sleeps `ms` milliseconds (SLEEP); `sleep(0)` is `yield()`.
---@param ms number
function task.sleep(ms) end

---Becomes READY again; runs at the next tick.
function task.yield() end

---Raises `"task cancelled"` if the running task is cancelled, else returns at once.
function task.checkpoint() end

---`wait()`: WAIT until `task.wakeup(t, value)`, returns the value.
---`wait(id)`: WAIT until `task.resume(id, ...)` (or the host's
---`task_lua_resume`), returns the values resumed with.
---@param id? integer an external id from `task.alloc()`
---@return any ...
function task.wait(id) end

---Wakes a task parked in `task.wait()` with `value`; raises (naming the
---status) if `t` is not in WAIT.
---@param t Task
---@param value? any
function task.wakeup(t, value) end

---A fresh external id, for `task.wait(id)` / `task.resume(id, ...)`.
---@return integer id
function task.alloc() end

---Resolves an external id with any values; a resume that comes before
---the wait is kept for it.
---@param id integer
---@param ... any
---@return true|nil ok `nil` (Lua's fail value) when refused
---@return string|nil err why the id was refused (unknown, already resumed, stale)
function task.resume(id, ...) end

---`alloc()` an id, call `start(id)`, then `wait(id)`.
---@param start fun(id: integer)
---@return any ...
function task.external(start) end

---A new cancel token, optionally a child of `parent`.
---@param parent? CancelToken
---@return CancelToken
function task.cancel_token(parent) end

---The scheduler's clock in milliseconds, as of the current tick.
---@return number ms
function task.now() end

-- ---- combinators and structure -------------------------------------------

---Runs the functions concurrently and waits for all; the first error
---propagates after the rest have finished.
---@param ... fun(): any
---@return any[] results the first result of each, in order
function task.all(...) end

---Runs the functions concurrently; the first to return wins and the
---others are cancelled. An error propagates (losers cancelled first).
---@param ... fun(): any
---@return integer index
---@return any result
function task.race(...) end

---Runs `fn` with a deadline: on the deadline `fn` is cancelled.
---@param ms number
---@param fn fun(): any
---@return any result `fn`'s first result, or `nil`
---@return "timeout"|nil err
function task.timeout(ms, fn) end

---Runs `fn(scope)` as a scope with a deadline: on the deadline the scope
---is cancelled, children drain for `opts.grace_ms`, the rest are aborted,
---and it raises `"task.with_timeout: exceeded <ms> ms"`.
---@param ms number
---@param fn fun(scope: Scope): ...
---@param opts? task.WithTimeoutOpts
---@return any ...
function task.with_timeout(ms, fn, opts) end

---Runs `fn(scope)`; returns `fn`'s results only when every child has
---ended. An error (of `fn` or a child) cancels the rest and is re-raised.
---@param name string
---@param fn fun(scope: Scope): ...
---@return any ...
---@overload fun(fn: fun(scope: Scope): ...): ...
function task.scope(name, fn) end

---Waits for the first awaitable to complete; the lowest index wins a
---tie. Returns its index, then a Task's results or a Channel's value;
---losers' waits are dropped, their work is not cancelled.
---@param list task.Awaitable[]
---@return integer index
---@return any ...
function task.select(list) end

---`a:wait()`.
---@param a task.Awaitable
---@return any ...
function task.await(a) end

---An awaitable that completes after `ms`.
---@param ms number
---@return Timer
function task.timer(ms) end

---Runs `fn()` in a new task after `ms`.
---@param ms number
---@param fn fun(): any
---@return Task
function task.after(ms, fn) end

---A new channel: `nil` (capacity 64), a capacity, or `{capacity = N}`;
---N must be a positive integer, else "capacity must be positive".
---@param opts? integer|{capacity: integer}
---@return Channel
function task.channel(opts) end

---The library's version, "task <major>.<minor>.<patch>".
---@type string
task._VERSION = ""

-- ---- tracing and statistics ------------------------------------------------

---@return integer n the ready-queue length
function task.taskstat() end

---@class task.Stats
---@field tasks integer live tasks of the scheduler (C ones too)
---@field ready integer
---@field running integer
---@field waiting integer
---@field sleeping integer
---@field core_bytes integer? bytes the core holds (standalone module only)

---The scheduler's counts.
---@return task.Stats
function task.stats() end

---Standalone module: one tick on the monotonic clock (at most `max`
---resumes), for a program that runs its own loop (a luv loop, say);
---`task.run` is one such loop. Raises inside a task or under `task.run`.
---@param max? integer
---@return integer resumes
function task.step(max) end

---Standalone module: how long a loop may block before the next tick is
---due, in ms (0 when tasks are ready), or nil when nothing is pending.
---@return number|nil ms
function task.poll_timeout() end

---The live tasks of the scheduler.
---@return integer
function task.count() end

---Sets the handler for errors of tasks nobody waits for (no joiner, not
---in a scope, not claimed by a combinator): `fn(err, task, traceback)`;
---`task.warn_slow`'s reports add a fourth argument, `"slow"`.
---`nil` restores the default (one line on stderr, then the traceback).
---@param fn? fun(err: any, task: Task, traceback: string?, kind: "slow"|nil)
---@return function|nil previous the handler before this call (nil: the default)
function task.set_error_handler(fn) end

---The pool of threads of tasks that returned, reused for new tasks:
---`pool(n)` keeps at most `n` idle threads (0: none; 1024 by default).
---The collector trims it to what new tasks took since its last cycle.
---@param n? integer
---@return integer size the size before this call
---@return integer idle the idle threads kept now
function task.pool(n) end

---Every live Lua task of this lua_State: what it waits on, since when,
---its traceback, and with `task.profile()` its statistics.
---@return table<Task, task.Info>
function task.tasks() end

---A report of every live task (C ones too), one block each, grouped by
---state: what it waits on and for how long, its statistics, its
---traceback. Written to `out` (a file, anything with `:write`, a
---function; default: stderr; `false`: nowhere) and returned.
---@param out? file*|{write: fun(self: any, s: string)}|fun(s: string)|false
---@return string text
function task.dump(out) end

---Per-task statistics (resumes, busy, longest) from now on, timed with
---the host's clock (`task_lua_set_clock`; the module: monotonic), and the
---place where each new task is spawned. `profile(false)` stops recording
---spawn places; the statistics stay on.
---@param on? boolean default true
---@return boolean was whether it was on
function task.profile(on) end

---Reports a resume of a Lua task longer than `ms` to the error handler as
---`(msg, Task, traceback, "slow")`; `nil` turns it off. Needs a clock
---(the host's `task_lua_set_clock`; the module has its own).
---@param ms? number
---@return number|nil previous the previous limit
function task.warn_slow(ms) end

---Standalone module: `fn()` is called, outside ticks, when a task becomes
---ready while none was (a foreign event loop then ticks soon instead of
---blocking). `nil` clears it.
---@param fn? fun()
---@return fun()|nil previous
function task.on_ready(fn) end

---Sets this node's number (0..65535) for trace ids.
---@param n integer
function task.tracenode(n) end

---Gives the running task a new root trace id
---(node 63..48 | seconds 47..32 | sequence 31..16 | hop 15..0).
---@return integer old the previous trace id
function task.tracespawn() end

---Sets the running task's trace id.
---@param id integer
---@return integer old the previous trace id
function task.traceset(id) end

---The running task's trace id with its hop bits (15..0) set to this node.
---@return integer id
function task.tracepropagate() end

---W3C Trace Context. `traceparent()` returns the `traceparent` header for
---the running task's trace as it leaves this node (`tracepropagate()`):
---"00-" .. 16 zeros .. hex(id & ~0xFFFF) .. "-" .. hex(id) .. "-01", or
---`nil, err` when bits 63..16 of the id are zero. `traceparent(header)`
---parses a header (W3C rules: lowercase hex, no version ff, no all-zero
---ids) into a trace id: ((T.hi ~ T.lo) & ~0xFFFF) | (P & 0xFFFF), or
---`nil, err`.
---@param header? string
---@return integer|string|nil result the trace id (with a header) or the header
---@return string|nil err
---@overload fun(): string|nil, string|nil
---@overload fun(header: string): integer|nil, string|nil
function task.traceparent(header) end

---Sets the hooks (`nil` clears one). `create(Task)` and `term(Task)` as a
---Lua task is spawned and ends; `resume(Task)` before and
---`suspend(Task, did)` after each run of its code (a profiler's switch
---hooks). They run on the main thread; an error goes to the error handler.
---@param create? fun(t: Task)
---@param term? fun(t: Task)
---@param resume? fun(t: Task)
---@param suspend? fun(t: Task, did: "yield"|"wait"|"end")
---@return fun(t: Task)|nil create the previous create hook
---@return fun(t: Task)|nil term the previous terminate hook
---@return fun(t: Task)|nil resume the previous resume hook
---@return fun(t: Task, did: string)|nil suspend the previous suspend hook
function task.hook(create, term, resume, suspend) end

---Same as `task.hook` (silly's name).
---@param create? fun(t: Task)
---@param term? fun(t: Task)
---@param resume? fun(t: Task)
---@param suspend? fun(t: Task, did: "yield"|"wait"|"end")
---@return fun(t: Task)|nil create
---@return fun(t: Task)|nil term
---@return fun(t: Task)|nil resume
---@return fun(t: Task, did: string)|nil suspend
function task.task_hook(create, term, resume, suspend) end

---Standalone module only (build/task.so for the stock lua5.4): runs
---`fn(...)` as the main task, drives the loop on the monotonic clock
---until every task has ended, and returns `fn`'s results (or raises its
---error). In a host that drives the scheduler it raises.
---@param fn fun(...): ...
---@param ... any
---@return any ...
function task.run(fn, ...) end

return task
