/*
 * task.h: an embeddable coroutine scheduling core, in one header.
 * Version 0.2.0 (TASK_VERSION).
 *
 * WHAT IT IS
 *   A scheduler for cooperative tasks that lives inside your own loop.
 *   Tasks move between five states: RUN (the one running now), WAIT (parked
 *   until woken), READY (in the ready queue), SLEEP (parked on a timer) and
 *   EXIT (finished, kept until released). The core has a FIFO ready queue,
 *   an indexed timer heap, external completion ids, joins, cancel tokens
 *   with parents, scopes (nurseries) and 64-bit trace ids. It does no I/O,
 *   reads no clock, starts no thread and has no global state: you call
 *   task_tick(sched, now) from your loop and it runs whatever is due.
 *
 *   A task is a step function that the core calls each time the task is
 *   resumed (see EXECUTORS). Plain C code is a task this way without a
 *   second stack (the TASK_PT_* macros), and the Lua binding (task_lua.h)
 *   is an executor built on the same interface.
 *
 * HOW TO INCLUDE IT
 *   In exactly one C or C++ file:
 *       #define TASK_IMPLEMENTATION
 *       #include "task.h"
 *   Everywhere else, include "task.h" alone for the declarations.
 *
 * VERSION
 *   TASK_VERSION is the version as a string ("0.2.0"); TASK_VERSION_MAJOR,
 *   TASK_VERSION_MINOR and TASK_VERSION_PATCH are its parts, for #if.
 *   Until 1.0.0 a new minor version may change the API (0.2.0 did: one name
 *   per meaning and one result convention); from 1.0.0 only a new major
 *   version will.
 *
 * OPTIONS (define before the implementation include)
 *   TASK_API            linkage of the public functions (default: extern;
 *                       e.g. "static" to keep everything in one file).
 *   TASK_ASSERT(c)      internal consistency checks (default: assert()).
 *   TASK_REALLOC(p,n)   default allocator used when task_create() is given
 *   TASK_FREE(p)        no allocator (default: realloc() and free()).
 *   TASK_PAGE_SHIFT     log2 of tasks per storage page (default 10: 1024).
 *                       Tasks live in pages so growing never moves them.
 *   TASK_WAKE_LIMIT     default for task_set_wake_limit() (1024): resumes
 *                       of tasks woken during a tick, per tick.
 *   TASK_THREADS        adds task_post_enable() and task_post_resume(), the
 *                       one thread-safe entry point (see THREADS). Uses
 *                       pthreads: build and link with -pthread. Without it
 *                       the header has no thread dependency at all. Define
 *                       it wherever task_post_* is called, not only where
 *                       the implementation is: they are declared only then.
 *
 * TIME
 *   The unit is the nanosecond, as uint64_t, on a monotonic clock of the
 *   host's choosing. task_tick(s, now) sets the scheduler's clock (it never
 *   goes backwards) and timers count from it, like libuv's uv_now(): a
 *   sleep of d started during a tick at time T ends at the first tick with
 *   now >= T + d, never earlier. TASK_MSEC etc. help to write durations.
 *
 * THE HOST LOOP CONTRACT
 *   - task_tick(s, now): collects every due timer first (in deadline order,
 *     ties in the order they were set; with TASK_THREADS, after draining
 *     the posts) and runs due timer callbacks. Then it resumes, in FIFO
 *     order, the tasks READY at that point, then at most `wake_limit` more
 *     resumes of tasks that became READY during this tick (see
 *     task_set_wake_limit, default TASK_WAKE_LIMIT); the tick limit (see
 *     task_set_tick_limit) caps all resumes of the tick, whichever stops
 *     first. What is still READY then runs first at the next tick and
 *     task_timeout() is 0. So a task woken during the tick runs in the same
 *     tick (within the bound), a task that yields runs at the next tick,
 *     and no set of tasks that keep waking each other (a channel pipeline,
 *     ping-pong) can hold the host inside one task_tick(): due timers are
 *     collected and the host polls its I/O at least once per bound.
 *   - task_timeout(s, now): how long the host may block before the next
 *     tick is due: 0 when tasks are ready, TASK_FOREVER when nothing is
 *     pending. task_timeout_ms() rounds up to whole ms for poll()/epoll
 *     (-1 for TASK_FOREVER, as poll() takes it).
 *   - Deadlock: TASK_FOREVER while tasks are alive means that only the host
 *     can wake them (task_wakeup, task_ext_resume, ...). A host with no
 *     event source of its own that could do so is deadlocked:
 *         if (task_timeout(s, now) == TASK_FOREVER && task_count(s, -1) > 0)
 *             report(s);   // task_foreach + task_info_of: each task, what it waits on
 *   - A foreign loop (libuv's uv_run, an epoll_wait loop, a GUI's event
 *     loop) that calls task_tick from a timer of its own needs three things:
 *       task_timeout(s, now)    when to tick next: (re)arm the timer with it
 *                               after every tick and every event handler;
 *       task_set_ready_hook()   a call as soon as that becomes "now" behind
 *                               the loop's back: outside task_tick, a task
 *                               became READY (task_spawn, task_wakeup,
 *                               task_unpark, task_ext_resume, task_cancel,
 *                               task_abort, task_drop waking joiners,
 *                               task_token_cancel, task_scope_cancel/abort/
 *                               leave) while none was READY. The hook asks
 *                               the loop for a tick at once (uv_async_send,
 *                               a zero timer, a write to an eventfd) instead
 *                               of at its next timer. It is called at most
 *                               once between two ticks (armed when set and
 *                               after each tick that leaves no task READY),
 *                               never inside task_tick (what a tick wakes
 *                               runs in it, or task_timeout says 0 after
 *                               it), and task_timeout is 0 whenever it is
 *                               called. It runs at the end of the call that
 *                               made the task READY, and may call anything
 *                               but task_tick and task_destroy;
 *       task_count(s, -1)       the live tasks: 0 means the loop may stop
 *                               (or stop ticking) until it spawns again.
 *     The ready hook has its own setter, not a field of task_hooks: it
 *     belongs to whoever drives the loop, and hooks that a profiler or a
 *     binding sets (and chains) must not be able to drop it. Posts from
 *     other threads (TASK_THREADS) wake the loop through task_post_enable's
 *     own callback instead.
 *   - The scheduler is single-threaded: one scheduler is used by one
 *     thread at a time, and nothing in it is locked. The only exception is
 *     task_post_resume() (TASK_THREADS), see THREADS.
 *   - Callbacks: task_tick() and task_destroy() are refused (TASK_EBUSY)
 *     from inside anything the core calls: step functions, timer callbacks,
 *     hooks (the ready hook too), the statistics clock, task_foreach
 *     callbacks (and so a wake callback that runs inside one of them).
 *     Everything else may be called from there. A callback must return,
 *     not longjmp past the core: it counts them.
 *   - The allocator given to task_create is called in the middle of
 *     growing (or freeing) the scheduler's arrays, so it must not use
 *     that scheduler: task_tick and task_destroy refuse from inside it
 *     (TASK_EBUSY), a call that would allocate fails (TASK_ENOMEM), and
 *     any other call may see an array the allocator is moving.
 *
 * ERRORS
 *   One convention for every function that returns an int:
 *   - Failure is a negative TASK_E* code, and task_errmsg(s) then names
 *     that very function and the reason, e.g. "task_result: unknown,
 *     released or stale task id". A failed call changes nothing else; an
 *     allocation failure leaves the scheduler as it was.
 *   - Success is TASK_OK (0), or for a query its answer, never negative:
 *     task_status (a state), task_cancelled, task_token_cancelled and
 *     task_ext_status (1 or 0), task_scope_count (live members),
 *     task_tick (the resumes it ran), task_foreach (0, or the value its
 *     callback stopped the walk with). task_info_of answers TASK_OK and
 *     fills its struct, or TASK_ENOENT and zeroes it.
 *   - Operations answer TASK_OK or an error, never 1/0: task_cancel and
 *     task_abort are TASK_OK when the request stands (also when it was
 *     already made), TASK_ESTATE when the task has already ended.
 *   - An id, a pointer or a result comes back through an out-pointer, the
 *     last argument. Every out-pointer is optional (NULL: not wanted) and
 *     is written on failure too, with 0 or NULL. A query about an id takes
 *     the id and answers TASK_OK, with 0 through the out-pointer when there
 *     is nothing to name (task_scope_owner of a scope whose owner ended),
 *     or TASK_ENOENT for an unknown, released or stale id.
 *   - What cannot fail returns its value: task_now, task_timeout,
 *     task_timeout_ms, task_next_deadline, task_count, task_ready_count,
 *     task_self (0 outside tasks), task_self_cancelled, task_scope_current
 *     (0 when none), task_trace_spawn, task_trace_set, task_trace_propagate,
 *     task_set_hooks (the old hooks), task_errmsg, task_strerror,
 *     task_state_name, task_waits_name; the setters task_set_tick_limit,
 *     task_set_wake_limit and task_set_ready_hook return nothing.
 *     task_create returns NULL when it cannot allocate.
 *   Queries take a const scheduler and still record their failures: the
 *   message is not part of the scheduler's state. Where there is no
 *   scheduler to hold a message there is none: task_destroy(NULL), the
 *   W3C helpers (task_trace_format, task_trace_parse) and task_post_resume
 *   (it runs on other threads, so it must not write the message).
 *
 * IDS
 *   Tasks, timers, tokens, scopes and external ids are 64-bit values:
 *   slot index (bits 0..31), generation (32..55) and kind (56..63). A stale
 *   or foreign id is reported (TASK_ENOENT), never confused with a new one.
 *   0 is never a valid id.
 *
 * EXECUTORS
 *   A task is a step function, int step(task_ctx *c) (task_fn). The core
 *   calls it each time the task is resumed; c->why says why:
 *     TASK_WHY_START   the first run
 *     TASK_WHY_WAKE    woken (wakeup, unpark, external id, join, scope
 *                      closed), with the value in c->value
 *     TASK_WHY_TIMER   its sleep ended
 *     TASK_WHY_YIELD   it returned TASK_STEP_YIELD last time
 *     TASK_WHY_CANCEL  woken from a park because it was cancelled
 *     TASK_WHY_ABORT   aborted: free what it holds and return; it is never
 *                      called again and what it returns is ignored
 *   and it returns what happens next:
 *     TASK_STEP_DONE / TASK_STEP_FAIL   it ended (joiners get the value
 *                      of task_set_result; task_result says how it ended:
 *                      TASK_EXIT_DONE, TASK_EXIT_FAIL or TASK_EXIT_ABORT)
 *     TASK_STEP_YIELD  READY again, runs at the next tick
 *     TASK_STEP_SUSPEND  parked as arranged during the step (task_sleep,
 *                      task_join, task_ext_wait, task_scope_close,
 *                      task_park, task_park_as, task_wait); nothing
 *                      arranged: task_wait
 *   An executor runs another kind of code on this interface, as task_lua.h
 *   runs a Lua coroutine per task. What it needs is declared in one group
 *   below: the step and why codes, task_park/task_unpark (waits whose
 *   wakers it keeps itself: channels, select), task_self, task_userdata
 *   and task_step_of (is this task one of mine, and which), the hooks,
 *   task_set_result/task_result, task_foreach and task_drop (to tear down
 *   without stepping the task again).
 *   For introspection (see OBSERVING TASKS), task_park_as(s, code) parks
 *   like task_park and records a code of the executor's own (what kind of
 *   wait: a channel receive, a select, ...), which task_info_of reports with
 *   TASK_WAITS_PARK; task_park is task_park_as(s, 0). The resume and
 *   suspend hooks bracket every step, so a binding can time a task or keep
 *   its own "running" state there; task_info_of gives the rest of a task
 *   dump (state, wait, deadline, target, scope, token, trace, statistics).
 *
 *   Plain C tasks use the protothread macros: TASK_PT_BEGIN(c, pc) and
 *   TASK_PT_END(c) around the body, and inside it TASK_PT_YIELD,
 *   TASK_PT_SLEEP, TASK_PT_WAIT, TASK_PT_JOIN, TASK_PT_EXT_WAIT and
 *   TASK_PT_SCOPE_CLOSE, each a suspension that the task resumes right
 *   after; TASK_PT_CANCELLED(c) tests for cancellation. The body is one
 *   switch statement on __LINE__, hence the limits:
 *     - no `switch` of your own around a suspension: the resume point
 *       would be a case of your switch, not of the task's;
 *     - at most one suspension per source line: the line is the resume
 *       point;
 *     - locals do not survive a suspension: keep state in the task's ud.
 *
 * OBSERVING TASKS
 *   What each task does costs nothing until asked for:
 *   - task_info_of(s, t, &info) fills a task_info for any task (EXIT ones
 *     too): its state, and while it is parked what on (waits):
 *       TASK_WAITS_WAKEUP  task_wait, or a step that arranged nothing
 *       TASK_WAITS_PARK    task_park / task_park_as: `code`
 *       TASK_WAITS_SLEEP   task_sleep: `deadline` (scheduler clock)
 *       TASK_WAITS_JOIN    task_join: `target` is the joined task
 *       TASK_WAITS_EXT     task_ext_wait: `target` is the external id
 *       TASK_WAITS_SCOPE   task_scope_close: `target` is the scope
 *     and TASK_WAITS_NONE otherwise: READY and EXIT tasks, and a task
 *     woken, cancelled or aborted (the wait is cleared as it is undone).
 *     A RUN task shows what it has arranged in this step (it parks on it
 *     when the step returns), as seen from its own step or its suspend
 *     hook. Also its scope, effective token and trace id
 *     (task_scope_of, task_token_of, task_trace_of), and its statistics.
 *     task_waits_name() names a kind ("none", "wakeup", "park", "sleep",
 *     "join", "ext", "scope").
 *   - Statistics are off until task_enable_stats(s, clock, ud), then on
 *     until task_destroy. Off, they cost one flag test per step and no
 *     memory; on, 40 bytes per task slot, in pages of their own (one per
 *     page of tasks, allocated then and with each new page of tasks, so
 *     nothing moves; TASK_ENOMEM when it cannot, and they stay off). Per
 *     task: `resumes` (calls of its step function, the abort step
 *     included, the last step task_destroy makes not), `busy` (their total
 *     time), `longest` (the longest one), `spawned` (when task_spawn made
 *     it) and `last_resume` (when its last step began). Tasks that existed
 *     before start at zero (`spawned` 0). The times, in the core's unit:
 *       with a clock: clock(ud), read at each spawn and right before and
 *         after each step (inside the resume and suspend hooks, so their
 *         time is not counted): fine-grained, each step timed;
 *       without one (NULL): task_now(), the `now` of the current tick (of
 *         the last one, for a spawn from the host): every step of one tick
 *         starts and ends at the same time, so `busy` and `longest` stay 0
 *         and only the counts, `spawned` and `last_resume` are meaningful.
 *     Calling it again changes the clock and keeps the figures.
 *   - Hooks (task_set_hooks; each optional, NULL: none):
 *       create(t)   after task_spawn made t READY, before it returns;
 *       resume(t)   before each call of t's step function (t is RUN);
 *       suspend(t, did, waits)  right after it returns, before the core
 *                   acts on what it returned (t is still RUN): did is
 *                   TASK_DID_YIELD, TASK_DID_PARK (waits: on what; NONE if
 *                   what it waited for had already happened, so it is READY
 *                   again at once) or TASK_DID_END (returned DONE or FAIL,
 *                   or it is being aborted; term follows);
 *       term(t)     as t ends: EXIT, its joiners woken, not freed yet (a
 *                   detached task is freed after the hook).
 *     The abort step is bracketed by resume and suspend too; task_drop
 *     and task_destroy run none of the hooks for the tasks they end. No
 *     task is running in a hook (task_self is 0), so what a hook spawns
 *     joins no scope and takes the host's trace id. A hook may call
 *     anything but task_tick and task_destroy (TASK_EBUSY): spawn, wake,
 *     cancel, abort or drop tasks, t too (cancelling t in its suspend hook
 *     is as if its step had cancelled itself; dropping t in its resume
 *     hook means its step is not called: a binding whose interpreter the
 *     hook closes drops its tasks so). In C a hook has nothing to raise;
 *     it must return (no longjmp). Hooks take effect at once: a suspend
 *     hook set inside a step is called as that step returns, without the
 *     resume call before it. With no resume or suspend hook and statistics
 *     off, a step costs one flag test more than a bare call.
 *     task_set_hooks replaces all of them and returns the old set. To
 *     chain, keep that set and call each old hook from yours, with the old
 *     ud; set every field (memset the struct first: fields may be added):
 *         static task_hooks prev;
 *         static void my_resume(task_sched *s, task_id t, void *ud) {
 *             profile_enter(ud, t);
 *             if (prev.resume) prev.resume(s, t, prev.ud);
 *         }
 *         ...
 *         task_hooks h;
 *         memset(&h, 0, sizeof h);
 *         h.create = my_create; h.term = my_term;     // each forwards to prev
 *         h.resume = my_resume; h.suspend = my_suspend;
 *         h.ud = &my_profile;
 *         prev = task_set_hooks(s, h);
 *     To unhook, set `prev` back (only if nobody chained after you).
 *
 * THREADS
 *   With TASK_THREADS defined where the implementation is compiled (and
 *   where task_post_* is called), other threads (a worker pool finishing
 *   I/O) can complete external ids:
 *     - on the scheduler thread, once, before the other threads start:
 *       task_post_enable(s, capacity, wake, wake_ud);
 *     - on any thread: task_post_resume(s, ext, value) queues (ext, value)
 *       under a mutex, then calls wake(wake_ud) on the posting thread, so a
 *       host blocked in poll() can be woken (write to an eventfd or pipe);
 *     - the next task_tick() drains the queue first, as task_ext_resume()
 *       calls (an id that is stale by then is skipped), so the resumed
 *       tasks run in that same tick; task_timeout() is 0 while posts wait.
 *   The queue never allocates after task_post_enable: when `capacity`
 *   posts are pending, task_post_resume returns TASK_ENOMEM and queues
 *   nothing (retry after the host has ticked). Every other function must
 *   be called from the scheduler's thread only.
 *
 * EXAMPLE: a host loop with C tasks
 *
 *   #define _POSIX_C_SOURCE 200809L      // clock_gettime, nanosleep
 *   #define TASK_IMPLEMENTATION
 *   #include "task.h"
 *   #include <stdio.h>
 *   #include <time.h>
 *
 *   struct blink { int pc, i; const char *name; };
 *
 *   static int blink(task_ctx *c) {
 *       struct blink *b = (struct blink *)c->ud;
 *       TASK_PT_BEGIN(c, b->pc);
 *       for (b->i = 0; b->i < 3; b->i++) {
 *           printf("%s %d\n", b->name, b->i);
 *           TASK_PT_SLEEP(c, 100 * TASK_MSEC);   // parks; resumes here
 *       }
 *       TASK_PT_END(c);
 *   }
 *
 *   static uint64_t now_ns(void) {
 *       struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
 *       return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
 *   }
 *
 *   int main(void) {
 *       task_sched *s = task_create(NULL, NULL);
 *       struct blink a = {0, 0, "a"}, b = {0, 0, "b"};
 *       task_spawn(s, blink, &a, NULL, NULL);
 *       task_spawn(s, blink, &b, NULL, NULL);
 *       for (;;) {
 *           task_tick(s, now_ns());
 *           if (task_count(s, -1) == 0) break;     // every task ended
 *           uint64_t wait = task_timeout(s, now_ns());
 *           struct timespec ts = {(time_t)(wait / TASK_SEC), (long)(wait % TASK_SEC)};
 *           if (wait) nanosleep(&ts, NULL);   // or poll()/epoll_wait()
 *       }
 *       task_destroy(s);
 *   }
 *
 * LICENSE: MIT (see the end of this file).
 */
#ifndef TASK_H
#define TASK_H

#include <stddef.h>
#include <stdint.h>

#define TASK_VERSION_MAJOR 0
#define TASK_VERSION_MINOR 2
#define TASK_VERSION_PATCH 0
#define TASK_VERSION "0.2.0"

#ifndef TASK_API
#define TASK_API extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t task_id;          /* 0 = none */
typedef struct task_sched task_sched;

/* Durations, in the core's unit (nanoseconds). */
#define TASK_NSEC    ((uint64_t)1)
#define TASK_USEC    ((uint64_t)1000)
#define TASK_MSEC    ((uint64_t)1000000)
#define TASK_SEC     ((uint64_t)1000000000)
#define TASK_FOREVER UINT64_MAX

/* Default wake limit of a new scheduler (see task_set_wake_limit). */
#ifndef TASK_WAKE_LIMIT
#define TASK_WAKE_LIMIT 1024
#endif

/* Status codes (see ERRORS). */
enum {
    TASK_OK = 0,
    TASK_ENOMEM = -1,    /* the allocator failed; nothing changed */
    TASK_EINVAL = -2,    /* a bad argument */
    TASK_ENOENT = -3,    /* unknown, released or stale id */
    TASK_ESTATE = -4,    /* the object is in the wrong state for this */
    TASK_ECANCELED = -5, /* the running task is cancelled: it may not park */
    TASK_EBUSY = -6,     /* not allowed from inside a task or callback */
    TASK_EPERM = -7,     /* needs a running task, or the right one */
    TASK_EDEADLK = -8    /* a task would wait for itself */
};

/* Task states, as task_status() answers. */
enum { TASK_RUN = 0, TASK_WAIT, TASK_READY, TASK_SLEEP, TASK_EXIT, TASK_NSTATES };

typedef void (*task_timer_fn)(task_sched *s, task_id timer, void *ud);
/* lua_Alloc's shape: nsize 0 frees and returns NULL; otherwise like realloc. */
typedef void *(*task_alloc_fn)(void *ud, void *ptr, size_t osize, size_t nsize);

/* ---- the scheduler ---------------------------------------------------- */
TASK_API task_sched *task_create(task_alloc_fn alloc, void *alloc_ud); /* NULL on OOM */
/* Frees everything. Live tasks get one last step with TASK_WHY_ABORT (no
   hooks run). Refused (TASK_EBUSY) from inside a task or callback. */
TASK_API int task_destroy(task_sched *s);
TASK_API int task_tick(task_sched *s, uint64_t now);            /* the resumes it ran */
TASK_API uint64_t task_timeout(const task_sched *s, uint64_t now);
TASK_API int task_timeout_ms(const task_sched *s, uint64_t now); /* -1: forever */
TASK_API uint64_t task_now(const task_sched *s);
TASK_API uint64_t task_next_deadline(const task_sched *s);      /* TASK_FOREVER: none */
/* Both limits are read as a tick starts to resume tasks. The tick limit
   caps all the resumes of one tick (0: no cap). The wake limit caps the
   resumes of tasks that became READY during that tick, after the ones
   READY when it began (TASK_WAKE_LIMIT by default; 0: a task woken during
   a tick always waits for the next one). */
TASK_API void task_set_tick_limit(task_sched *s, unsigned max_resumes);
TASK_API void task_set_wake_limit(task_sched *s, unsigned max_resumes);
TASK_API const char *task_errmsg(const task_sched *s); /* the last failure's message */
TASK_API const char *task_strerror(int status);
TASK_API const char *task_state_name(int state);       /* "RUN" ..., "?" if none */

/* ---- executors: what a step function is and what a binding uses --------
   (see EXECUTORS above) */

/* Why a step function is called (task_ctx.why). */
enum {
    TASK_WHY_START = 0, /* first run */
    TASK_WHY_WAKE,      /* woken: wakeup, unpark, external id, join or scope; c->value */
    TASK_WHY_TIMER,     /* its sleep ended */
    TASK_WHY_YIELD,     /* running again after TASK_STEP_YIELD */
    TASK_WHY_CANCEL,    /* woken from a park because it was cancelled */
    TASK_WHY_ABORT      /* aborted: clean up and return (the result is ignored) */
};

/* What a step function returns. */
enum {
    TASK_STEP_DONE = 0, /* finished normally */
    TASK_STEP_YIELD,    /* READY again, runs at the next tick */
    TASK_STEP_SUSPEND,  /* parked as arranged (task_sleep, task_join, ...);
                           with nothing arranged, a plain task_wait() */
    TASK_STEP_FAIL      /* finished with an error */
};

/* How a task ended (task_result). */
enum { TASK_EXIT_DONE = 1, TASK_EXIT_FAIL, TASK_EXIT_ABORT };

typedef struct task_ctx {
    task_sched *sched;
    task_id self;
    int why;          /* TASK_WHY_* */
    void *value;      /* the value it was woken with (TASK_WHY_WAKE) */
    void *ud;         /* the pointer given to task_spawn */
    int err;          /* TASK_PT_* macros: status of the last arrangement */
} task_ctx;

typedef int (*task_fn)(task_ctx *c);

/* What a parked task waits on (task_info_of, the suspend hook). */
enum {
    TASK_WAITS_NONE = 0, /* not parked: READY, EXIT, or RUN with nothing arranged */
    TASK_WAITS_WAKEUP,   /* task_wait (or nothing arranged): until task_wakeup */
    TASK_WAITS_PARK,     /* task_park / task_park_as: an executor's own wait; its code */
    TASK_WAITS_SLEEP,    /* task_sleep: until its deadline */
    TASK_WAITS_JOIN,     /* task_join: until the target task ends */
    TASK_WAITS_EXT,      /* task_ext_wait: until the target external id is resumed */
    TASK_WAITS_SCOPE     /* task_scope_close: until the target scope has no members */
};

/* What a step did, for the suspend hook. */
enum {
    TASK_DID_YIELD = 1,  /* returned TASK_STEP_YIELD: READY, runs at the next tick */
    TASK_DID_PARK,       /* returned TASK_STEP_SUSPEND; `waits` says on what
                            (TASK_WAITS_NONE: it was woken already, READY again) */
    TASK_DID_END         /* it ends: returned DONE or FAIL, or it is being aborted */
};

/* Hooks (see OBSERVING TASKS above). All optional (NULL); ud goes to
   each. The fields after ud came later: set a task_hooks by a full
   initializer or memset it first. */
typedef struct task_hooks {
    void (*create)(task_sched *s, task_id t, void *ud); /* after task_spawn */
    void (*term)(task_sched *s, task_id t, void *ud);   /* as a task ends */
    void *ud;
    void (*resume)(task_sched *s, task_id t, void *ud); /* before each step */
    void (*suspend)(task_sched *s, task_id t, int did, int waits, void *ud); /* after it */
} task_hooks;
TASK_API task_hooks task_set_hooks(task_sched *s, task_hooks h); /* returns the old ones */

TASK_API task_id task_self(const task_sched *s);   /* the running task, 0 outside tasks */
/* The ud and the step function a task was spawned with (EXIT tasks too). */
TASK_API int task_userdata(const task_sched *s, task_id t, void **out);
TASK_API int task_step_of(const task_sched *s, task_id t, task_fn *out);
/* Parks the running task until task_unpark (an executor's own wait): a
   suspension like those in the next group. task_park_as records `code`
   (the executor's own name for the wait: a channel receive, a select...),
   which task_info_of reports; task_park is task_park_as(s, 0). */
TASK_API int task_park(task_sched *s);
TASK_API int task_park_as(task_sched *s, unsigned code);
/* Wakes a task parked in task_park() with a value. */
TASK_API int task_unpark(task_sched *s, task_id t, void *value);
/* The running task's result, delivered to joiners as their value. */
TASK_API int task_set_result(task_sched *s, void *value);
/* How an ended task ended (TASK_EXIT_* through `how`) and its result;
   TASK_ESTATE while it lives. */
TASK_API int task_result(const task_sched *s, task_id t, int *how, void **value);
/* Immediate removal without calling the task again, for executors that
   are tearing down: joiners are woken (TASK_EXIT_ABORT) and the slot is
   freed. Not the running task (TASK_EBUSY); a task in RUN whose step is
   not running (from its resume or suspend hook, or the statistics clock)
   may be dropped: its step is then not called, or what it returned is
   not acted on. */
TASK_API int task_drop(task_sched *s, task_id t);
/* Calls fn for every task (EXIT ones too) until it returns non-zero (a
   positive value: a negative one reads as an error) and returns that, or
   0. fn may spawn, end, drop or release tasks: every task that lives
   through the whole walk is visited once; one spawned during it may or
   may not be (it is not when it takes a slot never used before the walk,
   so a walk that spawns as it goes still ends). */
TASK_API int task_foreach(task_sched *s, int (*fn)(task_sched *s, task_id t, int state, void *ud), void *ud);

/* ---- tasks ------------------------------------------------------------ */
typedef struct task_opts {
    task_id token;    /* cancel with this token instead of the scope's */
    task_id scope;    /* 0: the running task's innermost open scope */
    unsigned flags;   /* TASK_DETACHED */
} task_opts;
#define TASK_DETACHED 1u   /* free the task as soon as it ends */

/* A new READY task; opts may be NULL. */
TASK_API int task_spawn(task_sched *s, task_fn fn, void *ud, const task_opts *opts, task_id *out);
TASK_API int task_status(const task_sched *s, task_id t);  /* TASK_RUN .. TASK_EXIT */
/* Free an ended task now, or a live one as soon as it ends. */
TASK_API int task_release(task_sched *s, task_id t);
/* Cooperative. A parked task is woken at once with TASK_WHY_CANCEL; every
   later park is refused (TASK_ECANCELED). The scopes it owns (all of
   them, nested too) are cancelled with it. TASK_OK also when it was
   cancelled already; TASK_ESTATE once it has ended. */
TASK_API int task_cancel(task_sched *s, task_id t);
TASK_API int task_cancelled(const task_sched *s, task_id t); /* 1 or 0 */
TASK_API int task_self_cancelled(const task_sched *s);       /* the running task: 1 or 0 */
/* Hard: unlinked now, then stepped once with TASK_WHY_ABORT at the next
   resume slot; joiners see TASK_EXIT_ABORT. A task that ends by abort
   (or task_drop) while it owns scopes it never closed aborts their
   members in turn, so the abort reaches every descendant, one
   generation per resume slot. TASK_OK also when it was aborted already;
   TASK_ESTATE once it has ended. */
TASK_API int task_abort(task_sched *s, task_id t);
/* Wakes a task parked in task_wait() (plain WAIT) with a value. */
TASK_API int task_wakeup(task_sched *s, task_id t, void *value);

/* ---- suspensions: called by the running task, which then returns
   TASK_STEP_SUSPEND. Each refuses with TASK_ECANCELED while the task is
   cancelled, and with TASK_EPERM outside a task. An arrangement whose
   event has already happened (ended task, resolved id, empty scope) wakes
   the task in the same tick. (task_park is with the executors.) */
TASK_API int task_wait(task_sched *s);                   /* until task_wakeup */
TASK_API int task_sleep(task_sched *s, uint64_t ns);     /* TASK_WHY_TIMER */
TASK_API int task_join(task_sched *s, task_id t);        /* until t ends */
TASK_API int task_ext_wait(task_sched *s, task_id ext);  /* until task_ext_resume */

/* ---- external ids (complete work later, from the host) --------------- */
TASK_API int task_ext_alloc(task_sched *s, task_id *out);
/* Resolves the id; a resume before the wait is kept for it. The id is
   freed once its waiter has taken the value. */
TASK_API int task_ext_resume(task_sched *s, task_id ext, void *value);
TASK_API int task_ext_release(task_sched *s, task_id ext);
TASK_API int task_ext_status(const task_sched *s, task_id ext); /* 1 resolved, 0 pending */
/* The task parked in task_ext_wait on it; 0: none yet. */
TASK_API int task_ext_waiter(const task_sched *s, task_id ext, task_id *out);

/* ---- cross-thread resume (only with TASK_THREADS; see THREADS above) -- */
#ifdef TASK_THREADS
typedef void (*task_wake_fn)(void *ud);
/* Scheduler thread, once: room for `capacity` pending posts (allocated
   now), and a wake callback (may be NULL). TASK_ESTATE if already on. */
TASK_API int task_post_enable(task_sched *s, unsigned capacity, task_wake_fn wake, void *wake_ud);
/* Any thread: the one thread-safe function. TASK_OK, TASK_ENOMEM (queue
   full, nothing queued) or TASK_EINVAL (posts not enabled); no message. */
TASK_API int task_post_resume(task_sched *s, task_id ext, void *value);
#endif

/* ---- timers (plain callbacks) ---------------------------------------- */
TASK_API int task_after(task_sched *s, uint64_t ns, task_timer_fn fn, void *ud, task_id *out);
TASK_API int task_timer_cancel(task_sched *s, task_id timer);

/* ---- cancel tokens ---------------------------------------------------- */
/* parent 0: a root token. A token created under a cancelled parent starts
   cancelled. The token lives until released and no task uses it. */
TASK_API int task_token_new(task_sched *s, task_id parent, task_id *out);
TASK_API int task_token_cancel(task_sched *s, task_id tok);
TASK_API int task_token_cancelled(const task_sched *s, task_id tok); /* 1 or 0 */
TASK_API int task_token_release(task_sched *s, task_id tok);
/* A task's effective token: its own, its scope's; 0: none. */
TASK_API int task_token_of(const task_sched *s, task_id t, task_id *out);

/* ---- scopes ------------------------------------------------------------ */
/* Opened by the running task: until closed, tasks it spawns join the scope
   and its own effective token is the scope's (a child of the previous). */
TASK_API int task_scope_open(task_sched *s, task_id *out);
/* Owner only, a suspension. Parks until every member has ended
   (cancellation does not interrupt it), then frees the scope and restores
   the owner's token. */
TASK_API int task_scope_close(task_sched *s, task_id scope);
/* A cancel scope (Trio's CancelScope, for timeouts): while open, the
   running task's effective token is its own child token, so cancelling
   the scope cancels the task, but it takes no members: tasks spawned
   meanwhile join the innermost open plain scope as before. Closed by its
   owner, innermost first, at once: it never parks. The other task_scope_*
   calls take it too; task_scope_close refuses it (TASK_ESTATE), as
   task_cancel_scope_close refuses a plain scope. */
TASK_API int task_cancel_scope_open(task_sched *s, task_id *out);
TASK_API int task_cancel_scope_close(task_sched *s, task_id scope);
TASK_API int task_scope_cancel(task_sched *s, task_id scope);
/* Aborts every member (task_abort); their descendants follow as they end. */
TASK_API int task_scope_abort(task_sched *s, task_id scope);      /* O(members) */
TASK_API int task_scope_count(const task_sched *s, task_id scope); /* live members */
TASK_API int task_scope_token(const task_sched *s, task_id scope, task_id *out);
/* The task that opened it; 0 once that task has ended. */
TASK_API int task_scope_owner(const task_sched *s, task_id scope, task_id *out);
/* The scope a task is a member of; 0: none. */
TASK_API int task_scope_of(const task_sched *s, task_id t, task_id *out);
TASK_API task_id task_scope_current(const task_sched *s); /* innermost plain scope, or 0 */
/* The task stops being a member: its scope no longer waits for it. */
TASK_API int task_scope_leave(task_sched *s, task_id t);

/* ---- trace ids: node(63..48) seconds(47..32) sequence(31..16) hop(15..0)
   Each task carries its own; a spawned task starts with its parent's.
   Outside tasks these act on the host's own trace id. */
TASK_API int task_trace_node(task_sched *s, unsigned node);       /* 0..65535 */
TASK_API uint64_t task_trace_spawn(task_sched *s);               /* a new root; returns the old id */
TASK_API uint64_t task_trace_set(task_sched *s, uint64_t trace); /* returns the old id */
TASK_API uint64_t task_trace_propagate(const task_sched *s);     /* the id with this node as hop */
TASK_API int task_trace_of(const task_sched *s, task_id t, uint64_t *out);

/* W3C Trace Context (https://www.w3.org/TR/trace-context/): the
   `traceparent` header value "00-<trace-id>-<parent-id>-<flags>".
   The mapping of a 64-bit id (node|seconds|sequence|hop) is:
     trace-id  (32 hex) = 16 zeros, then the id with its hop bits (15..0)
                          cleared: the root part, the same on every hop;
     parent-id (16 hex) = the whole id (the caller's hop);
     flags     (2 hex)  = 01 (sampled).
   Parsing folds any 128-bit trace-id T (halves H and L) and parent-id P
   back to 64 bits: id = root | (P & 0xFFFF), where root is the first of
     (H ^ L) & ~0xFFFF,
     (H | L) & ~0xFFFF                       (H and L agree on bits 63..16),
     (H & 0xFFFF) << 32 | (L & 0xFFFF) << 16 (both have only bits 15..0)
   that is not zero, so a valid header never gives an id whose root part
   is zero (one format would refuse). Format then parse gives the id
   back, and a header from another system (a random trace-id) still gives
   one stable id per trace.
   task_trace_format writes TASK_TRACE_HEADER_LEN (55) characters and a
   NUL; TASK_EINVAL (out untouched but for "") when bits 63..16 of the id
   are all zero: W3C forbids an all-zero trace-id. task_trace_parse
   accepts what the W3C rules accept: 2-hex version other than ff; version
   00 exactly 55 characters; a later version at least 55 with '-' after
   the flags; lowercase hex only; trace-id and parent-id not all zeros.
   Leading and trailing spaces and tabs (HTTP OWS) are ignored.
   TASK_EINVAL otherwise (*trace untouched). flags may be NULL. Neither
   needs a scheduler. */
#define TASK_TRACE_HEADER_LEN 55
TASK_API int task_trace_format(uint64_t trace, char out[TASK_TRACE_HEADER_LEN + 1]);
TASK_API int task_trace_parse(const char *header, uint64_t *trace, unsigned *flags);

/* ---- counts, task_info_of and statistics (see OBSERVING TASKS) -------- */
TASK_API int task_ready_count(const task_sched *s);
TASK_API int task_count(const task_sched *s, int state); /* -1: all live (not EXIT) */

/* Everything about one task (EXIT ones too). */
typedef struct task_info {
    int state;            /* TASK_RUN .. TASK_EXIT */
    int waits;            /* TASK_WAITS_*: what it is parked on */
    task_id target;       /* JOIN: the task, EXT: the external id, SCOPE: the scope; else 0 */
    unsigned code;        /* PARK: the code given to task_park_as; else 0 */
    uint64_t deadline;    /* SLEEP: when it is due, on the scheduler's clock; else 0 */
    task_id scope;        /* the scope it is a member of; 0: none */
    task_id token;        /* its effective cancel token (task_token_of); 0: none */
    uint64_t trace;       /* its trace id */
    int stats;            /* 1: statistics are on (task_enable_stats); 0: the rest is 0 */
    uint64_t resumes;     /* calls of its step function */
    uint64_t busy;        /* total time inside them */
    uint64_t longest;     /* the longest one */
    uint64_t spawned;     /* when it was spawned (0: before statistics were on) */
    uint64_t last_resume; /* when its last step began (0: not since statistics were on) */
} task_info;
TASK_API int task_info_of(const task_sched *s, task_id t, task_info *out);
TASK_API const char *task_waits_name(int waits);  /* "none", "wakeup", ...; "?" if none */
/* Per-task statistics, off until this is called (then on until
   task_destroy). clock: NULL, or a clock in the core's unit (ns), best
   the one the host passes to task_tick; called before and after every
   step and at every spawn. Calling it again changes the clock. */
typedef uint64_t (*task_clock_fn)(void *ud);
TASK_API int task_enable_stats(task_sched *s, task_clock_fn clock, void *ud);

/* ---- a foreign loop (see THE HOST LOOP CONTRACT) ------------------------
   fn(s, ud) is called when, outside task_tick, a task becomes READY while
   none was: at most once between two ticks. NULL: none. */
typedef void (*task_ready_fn)(task_sched *s, void *ud);
TASK_API void task_set_ready_hook(task_sched *s, task_ready_fn fn, void *ud);

/* ---- C tasks as protothreads (see EXECUTORS for their limits) ----------
   The step function resumes where it left off: `pc` is an int lvalue
   that lives as long as the task (zero before the first run). After a
   suspension, c->why says what happened (TASK_WHY_CANCEL if cancelled)
   and c->err is TASK_OK, or the status of an arrangement that was refused
   (the task then goes on without parking). An aborted task does not
   resume: TASK_PT_BEGIN returns at once; code that must free something on
   abort checks c->why == TASK_WHY_ABORT before TASK_PT_BEGIN. */
#define TASK_PT_BEGIN(c, pc)  int *task__pc = &(pc); \
    if ((c)->why == TASK_WHY_ABORT) { *task__pc = -1; return TASK_STEP_DONE; } switch (*task__pc) { case 0:
#define TASK_PT_END(c)        } *task__pc = -1; return TASK_STEP_DONE
#define TASK__PT_SUSPEND(c, arrange, code) \
    do { if (((c)->err = (arrange)) == TASK_OK) { *task__pc = __LINE__; return (code); case __LINE__:; } \
         else if ((c)->err == TASK_ECANCELED) (c)->why = TASK_WHY_CANCEL; } while (0)
#define TASK_PT_YIELD(c)         TASK__PT_SUSPEND(c, TASK_OK, TASK_STEP_YIELD)
#define TASK_PT_SLEEP(c, ns)     TASK__PT_SUSPEND(c, task_sleep((c)->sched, (ns)), TASK_STEP_SUSPEND)
#define TASK_PT_WAIT(c)          TASK__PT_SUSPEND(c, task_wait((c)->sched), TASK_STEP_SUSPEND)
#define TASK_PT_JOIN(c, t)       TASK__PT_SUSPEND(c, task_join((c)->sched, (t)), TASK_STEP_SUSPEND)
#define TASK_PT_EXT_WAIT(c, e)   TASK__PT_SUSPEND(c, task_ext_wait((c)->sched, (e)), TASK_STEP_SUSPEND)
#define TASK_PT_SCOPE_CLOSE(c, sc) TASK__PT_SUSPEND(c, task_scope_close((c)->sched, (sc)), TASK_STEP_SUSPEND)
/* Woken by a cancel, or cancelled since: the check a loop makes. */
#define TASK_PT_CANCELLED(c)     ((c)->why == TASK_WHY_CANCEL || task_self_cancelled((c)->sched))

#ifdef __cplusplus
}
#endif
#endif /* TASK_H */

/* ======================================================================= */
#if defined(TASK_IMPLEMENTATION) && !defined(TASK__IMPLEMENTED)
#define TASK__IMPLEMENTED
#include <string.h>
#include <stdio.h>   /* vsnprintf, for error messages only */
#include <stdarg.h>
#include <limits.h>
#ifdef TASK_THREADS
#include <pthread.h>
#endif

#ifndef TASK_ASSERT
#include <assert.h>
#define TASK_ASSERT(c) assert(c)
#endif
#if !defined(TASK_REALLOC) || !defined(TASK_FREE)
#include <stdlib.h>
#undef TASK_REALLOC
#undef TASK_FREE
#define TASK_REALLOC(p, n) realloc((p), (n))
#define TASK_FREE(p) free(p)
#endif
#ifndef TASK_PAGE_SHIFT
#define TASK_PAGE_SHIFT 10
#endif
/* Public definitions: with TASK_API=static, a program that uses only some
   functions must still build warning-free (as stb_sprintf does it). */
#if defined(__GNUC__) || defined(__clang__)
#define TASK__DEF TASK_API __attribute__((unused))
#else
#define TASK__DEF TASK_API
#endif

/* The implementation, one subsystem after the other, each using only what
   comes before it: errors, ids and slots, lists and the ready queue, the
   timer heap, parking and waking, tokens, scopes, tasks, external ids,
   the scheduler and its tick, timers, trace ids, introspection. */

#define TASK__PAGE ((uint32_t)1 << TASK_PAGE_SHIFT)
#define TASK__GENMASK 0xFFFFFFu
#define TASK__LIVE 0x80000000u          /* slot in use */
#define TASK__TIMERBIT 0x80000000u      /* heap ref names a timer, not a task */
#define TASK__FREE_STATE 0xFF
#define TASK__TICKING 0x10000           /* task_tick's share of s->depth (callbacks nest below it) */

enum { TASK__K_TASK = 1, TASK__K_TIMER, TASK__K_EXT, TASK__K_TOKEN, TASK__K_SCOPE };

/* task flags */
#define TASK__F_DETACHED 0x01u  /* free when it ends */
#define TASK__F_CANCELLED 0x02u /* task_cancel() was called on it */
#define TASK__F_ABORT 0x04u     /* task_abort(): step once more with TASK_WHY_ABORT */
#define TASK__F_ARRANGED 0x08u  /* this step arranged a suspension */
#define TASK__F_WAKENOW 0x10u   /* woken while still running: READY on return */
/* What task__step answers when a hook or the statistics clock dropped the
   task around its step: next to the TASK_STEP_* values, so task__run's
   switch stays one table. */
#define TASK__STEP_GONE (TASK_STEP_FAIL + 1)

/* what a parked task waits on (task__task.wait): the public TASK_WAITS_* */
enum { TASK__W_NONE = TASK_WAITS_NONE, TASK__W_PLAIN = TASK_WAITS_WAKEUP, TASK__W_PARK = TASK_WAITS_PARK,
       TASK__W_SLEEP = TASK_WAITS_SLEEP, TASK__W_JOIN = TASK_WAITS_JOIN, TASK__W_EXT = TASK_WAITS_EXT,
       TASK__W_SCOPE = TASK_WAITS_SCOPE };

/* 80 bytes: memory per sleeping task is this plus one 16-byte heap entry.
   What a parked task waits on is `wait` and `link` (task_info_of reads it). */
typedef struct task__task {
    uint32_t gen;            /* generation | TASK__LIVE */
    uint8_t state, flags, why, wait; /* why holds TASK_EXIT_* once ended */
    uint32_t next, prev;     /* ready queue, a wait list (joiners), or the free list */
    uint32_t link;           /* heap slot, joined task, ext, scope or park code */
    uint32_t token;          /* effective cancel token, 0: none */
    uint32_t tnext, tprev;   /* in that token's list of tasks */
    uint32_t scope;          /* scope it is a member of, 0: none */
    uint32_t mnext, mprev;   /* in that scope's list of members */
    uint32_t joiners;        /* circular list of tasks joining this one */
    task_fn fn;
    void *ud;
    void *value;             /* wake value, then the result */
    uint64_t trace;
} task__task;

/* Every pooled object starts with this: its generation, and its link in
   the free list (or, for a timer that fired, in the tick's fired list). */
typedef struct task__slot { uint32_t gen, nfree; } task__slot;
typedef struct task__timer { task__slot h; uint32_t heap; uint32_t state; task_timer_fn cb; void *ud; } task__timer;
typedef struct task__ext { task__slot h; uint32_t waiter, resolved; void *value; } task__ext;
typedef struct task__token {
    task__slot h;
    uint32_t parent, child, snext, sprev; /* the token tree */
    uint32_t tasks;                       /* circular list of bound tasks */
    uint32_t scope;                       /* owning scope, 0: standalone */
    uint8_t cancelled, held;              /* held: the user has not released it */
} task__token;
typedef struct task__scope {
    task__slot h;
    uint32_t token, owner, count, prev_token;
    uint32_t members;        /* circular list of live members */
    uint8_t closing;         /* its owner waits in task_scope_close */
    uint8_t cancel_only;     /* a cancel scope: no members */
} task__scope;

/* Per-task statistics (task_enable_stats): in pages of their own, one
   for each page of tasks, allocated only once they are on. */
typedef struct task__stat { uint64_t resumes, busy, longest, spawned, last; } task__stat;

typedef struct task__pool { char *items; uint32_t size, cap, used, free; } task__pool;
typedef struct task__hent { uint64_t when; uint32_t seq, ref; } task__hent;

enum { TASK__TM_ARMED = 1, TASK__TM_FIRED, TASK__TM_DEAD };

#ifdef TASK_THREADS
typedef struct task__post { task_id ext; void *value; } task__post;
#endif

struct task_sched {
    task_alloc_fn alloc;
    void *alloc_ud;
    task__task **pages;
    uint32_t npages, tused, tfree;
    /* The ready queues: r ready now, y ready next tick (yielded), b in
       task_tick the tasks READY when it began. Heads and tails are apart
       on purpose: a compiler that copies a head and tail pair as one
       8-byte load right after two 4-byte stores stalls the store buffer
       (it doubled the cost of a tick). */
    uint32_t rhead, yhead, bhead;
    uint32_t rtail, ytail, btail;
    task__hent *heap;
    uint32_t hn, hcap, seq;
    uint32_t fhead, ftail;                /* timers collected in this tick */
    task__pool timers, exts, tokens, scopes;
    uint64_t now, host_trace;
    uint32_t cur;                         /* running task, 0: the host */
    int depth, destroying;                /* depth: ticks, destroys and callbacks running */
    unsigned tick_limit, wake_limit;
    int count[TASK_NSTATES];
    task_hooks hooks;
    /* observing: obs is set while a step has more to do than call the
       step function (resume or suspend hooks, statistics) */
    uint8_t obs, stats_on, spawn_more;   /* spawn_more: see task__spawned */
    uint8_t ready_armed;                  /* call ready_fn at the next READY (see task__ready_check) */
    uint8_t allocating;                   /* inside the host's allocator (see task__alloc) */
    task_ready_fn ready_fn;
    void *ready_ud;
    task__stat **spages;                  /* stats_on: spcap entries, npages of them used */
    uint32_t spcap;
    task_clock_fn clock;
    void *clock_ud;
    unsigned node, trace_seq;
#ifdef TASK_THREADS
    pthread_mutex_t post_mu;              /* guards the post_* fields */
    task__post *post;
    uint32_t post_cap, post_head, post_n;
    task_wake_fn wake;
    void *wake_ud;
#endif
    char err[160];
};

/* ---- errors and names -------------------------------------------------- */

/* Records the message of a failed call and returns its code. The message
   is not part of the scheduler's state, so a query on a const scheduler
   records its failure too. */
static int task__err(const task_sched *cs, int code, const char *fmt, ...) {
    task_sched *s = (task_sched *)(uintptr_t)cs;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
    return code;
}

TASK__DEF const char *task_errmsg(const task_sched *s) { return s->err; }

TASK__DEF const char *task_strerror(int status) {
    switch (status) {
    case TASK_OK: return "ok";
    case TASK_ENOMEM: return "out of memory";
    case TASK_EINVAL: return "invalid argument";
    case TASK_ENOENT: return "unknown, released or stale id";
    case TASK_ESTATE: return "wrong state";
    case TASK_ECANCELED: return "task cancelled";
    case TASK_EBUSY: return "not allowed from inside a task or callback";
    case TASK_EPERM: return "not allowed here";
    case TASK_EDEADLK: return "a task cannot wait for itself";
    default: return "unknown status";
    }
}

TASK__DEF const char *task_state_name(int state) {
    static const char *const names[TASK_NSTATES] = {"RUN", "WAIT", "READY", "SLEEP", "EXIT"};
    return state >= 0 && state < TASK_NSTATES ? names[state] : "?";
}

/* What an unknown id of each kind is called in messages. */
static const char *task__unknown(unsigned kind) {
    switch (kind) {
    case TASK__K_TASK: return "unknown, released or stale task id";
    case TASK__K_TIMER: return "unknown, fired or stale timer id";
    case TASK__K_EXT: return "unknown, resumed or stale external id";
    case TASK__K_TOKEN: return "unknown or stale token";
    default: return "unknown, closed or stale scope";
    }
}

/* The end of a query that answers with an id through an optional
   out-pointer: TASK_OK if its lookup found what it asked about (the
   answer may still be 0: nothing to name), else TASK_ENOENT with 0. */
static int task__answer(task_id *out, int found, task_id answer) {
    if (out) *out = found ? answer : 0;
    return found ? TASK_OK : TASK_ENOENT;
}

/* Every call of the host's allocator. It is a callback like the others:
   task_tick and task_destroy refuse from inside it (the caller is in the
   middle of growing an array), and an allocation it causes by calling
   back in fails (TASK_ENOMEM for that call): a nested growth of the array
   being grown would free the block the outer call is moving. */
static void *task__alloc(task_sched *s, void *ptr, size_t osize, size_t nsize) {
    void *p;
    uint8_t was = s->allocating;
    if (was && nsize) return NULL;
    s->allocating = 1;
    s->depth++;
    p = s->alloc(s->alloc_ud, ptr, osize, nsize);
    s->depth--;
    s->allocating = was;
    return p;
}

/* ---- ids and slots -----------------------------------------------------
   An id is (kind, generation, slot index); a slot in use has TASK__LIVE in
   its generation word. Freeing a slot is two steps: retire it (the
   generation moves on, so every id made for it is stale from now on) and
   recycle it (onto its free list). They are apart because a timer
   cancelled after its tick collected it is retired at once but recycled
   only when the tick lets go of it. */

static task_id task__mkid(unsigned kind, uint32_t gen, uint32_t idx) {
    return ((uint64_t)kind << 56) | ((uint64_t)(gen & TASK__GENMASK) << 32) | (uint64_t)idx;
}

/* The generation word of a live slot that id names. */
static uint32_t task__idgen(task_id id) {
    return (uint32_t)(id >> 32 & TASK__GENMASK) | TASK__LIVE;
}

static void task__retire(uint32_t *gen) {
    uint32_t g = (*gen + 1) & TASK__GENMASK; /* TASK__LIVE goes too */
    *gen = g ? g : 1;
}

static void task__recycle(uint32_t *link, uint32_t *free_list, uint32_t i) {
    *link = *free_list;
    *free_list = i;
}

/* Pools: timers, external ids, tokens and scopes, in one growing array
   each (they are reached by index, so moving them is fine). */

#define TASK__AT(p, type, i) ((type *)(void *)((p)->items + (size_t)(i) * (p)->size))
#define TASK__TOK(s, i) TASK__AT(&(s)->tokens, task__token, i)
#define TASK__SCO(s, i) TASK__AT(&(s)->scopes, task__scope, i)
#define TASK__TMR(s, i) TASK__AT(&(s)->timers, task__timer, i)
#define TASK__EXT(s, i) TASK__AT(&(s)->exts, task__ext, i)

static int task__pool_alloc(task_sched *s, task__pool *p, uint32_t *out) {
    uint32_t i;
    task__slot *sl;
    if (p->free) {
        i = p->free;
        sl = TASK__AT(p, task__slot, i);
        p->free = sl->nfree;
    } else {
        if (p->used == p->cap) {
            uint32_t ncap = p->cap ? p->cap * 2 : 16, k;
            char *ni;
            if (ncap <= p->cap || ncap > 0x7FFFFFFFu) return TASK_ENOMEM;
            ni = (char *)task__alloc(s, p->items, (size_t)p->cap * p->size, (size_t)ncap * p->size);
            if (!ni) return TASK_ENOMEM;
            memset(ni + (size_t)p->cap * p->size, 0, (size_t)(ncap - p->cap) * p->size);
            p->items = ni;
            for (k = p->cap; k < ncap; k++) TASK__AT(p, task__slot, k)->gen = 1;
            p->cap = ncap;
            if (p->used == 0) p->used = 1; /* index 0 means "none" */
        }
        i = p->used++;
        sl = TASK__AT(p, task__slot, i);
    }
    sl->gen = (sl->gen & TASK__GENMASK) | TASK__LIVE;
    sl->nfree = 0;
    *out = i;
    return TASK_OK;
}

static void task__pool_free(task__pool *p, uint32_t i) {
    task__slot *sl = TASK__AT(p, task__slot, i);
    task__retire(&sl->gen);
    task__recycle(&sl->nfree, &p->free, i);
}

static void task__pool_destroy(task_sched *s, task__pool *p) {
    if (p->items) task__alloc(s, p->items, (size_t)p->cap * p->size, 0);
}

/* The slot a live id of this kind names, or 0. */
static uint32_t task__pool_get(const task__pool *p, unsigned kind, task_id id) {
    uint32_t i = (uint32_t)id;
    if ((id >> 56) != kind || i == 0 || i >= p->used) return 0;
    return TASK__AT(p, task__slot, i)->gen == task__idgen(id) ? i : 0;
}

/* task__pool_get for a public function: 0 after recording fn's message. */
static uint32_t task__pool_find(const task_sched *s, const task__pool *p, unsigned kind, task_id id, const char *fn) {
    uint32_t i = task__pool_get(p, kind, id);
    if (!i) task__err(s, TASK_ENOENT, "%s: %s", fn, task__unknown(kind));
    return i;
}

static task_id task__pool_id(const task__pool *p, unsigned kind, uint32_t i) {
    return task__mkid(kind, TASK__AT(p, task__slot, i)->gen, i);
}

/* Task slots: in pages that never move, so a task__task pointer stays
   valid while tasks are spawned (task_foreach relies on it). */

#define TASK__T(s, i) (&(s)->pages[(i) >> TASK_PAGE_SHIFT][(i) & (TASK__PAGE - 1)])
/* A task's statistics, while they are on: the same index, its own pages. */
#define TASK__ST(s, i) (&(s)->spages[(i) >> TASK_PAGE_SHIFT][(i) & (TASK__PAGE - 1)])

/* Room for n statistics pages in s->spages (its capacity only grows). */
static int task__spages_reserve(task_sched *s, uint32_t n) {
    task__stat **np;
    uint32_t ncap = s->spcap ? s->spcap : 4;
    if (n <= s->spcap) return TASK_OK;
    while (ncap < n) ncap *= 2; /* n is at most 2^31 >> TASK_PAGE_SHIFT */
    np = (task__stat **)task__alloc(s, s->spages, sizeof *np * s->spcap, sizeof *np * ncap);
    if (!np) return TASK_ENOMEM;
    s->spages = np;
    s->spcap = ncap;
    return TASK_OK;
}

/* A zeroed page of statistics, or NULL. */
static task__stat *task__stats_page(task_sched *s) {
    task__stat *sp = (task__stat *)task__alloc(s, NULL, 0, sizeof(task__stat) * TASK__PAGE);
    if (sp) memset(sp, 0, sizeof(task__stat) * TASK__PAGE);
    return sp;
}

static void task__stats_free(task_sched *s) {
    uint32_t k;
    if (s->stats_on)
        for (k = 0; k < s->npages; k++) task__alloc(s, s->spages[k], sizeof(task__stat) * TASK__PAGE, 0);
    if (s->spages) task__alloc(s, s->spages, sizeof *s->spages * s->spcap, 0);
    s->spages = NULL;
    s->spcap = 0;
    s->stats_on = 0;
}

static int task__task_alloc(task_sched *s, uint32_t *out) {
    uint32_t i;
    if (s->tfree) {
        i = s->tfree;
        s->tfree = TASK__T(s, i)->next;
    } else {
        if (s->tused == s->npages * TASK__PAGE) {
            task__task **np, *page;
            task__stat *sp = NULL;
            uint32_t k;
            if (s->npages >= (0x7FFFFFFFu >> TASK_PAGE_SHIFT)) return TASK_ENOMEM;
            if (s->stats_on && (task__spages_reserve(s, s->npages + 1) || !(sp = task__stats_page(s))))
                return TASK_ENOMEM;
            page = (task__task *)task__alloc(s, NULL, 0, sizeof(task__task) * TASK__PAGE);
            np = page ? (task__task **)task__alloc(s, s->pages, sizeof *np * s->npages, sizeof *np * (s->npages + 1))
                      : NULL;
            if (!np) {
                if (page) task__alloc(s, page, sizeof(task__task) * TASK__PAGE, 0);
                if (sp) task__alloc(s, sp, sizeof(task__stat) * TASK__PAGE, 0);
                return TASK_ENOMEM;
            }
            memset(page, 0, sizeof(task__task) * TASK__PAGE);
            for (k = 0; k < TASK__PAGE; k++) { page[k].gen = 1; page[k].state = TASK__FREE_STATE; }
            if (sp) s->spages[s->npages] = sp;
            np[s->npages++] = page;
            s->pages = np;
            if (s->tused == 0) s->tused = 1; /* index 0 means "none" */
        }
        i = s->tused++;
    }
    *out = i;
    return TASK_OK;
}

static void task__task_free(task_sched *s, uint32_t i) {
    task__task *t = TASK__T(s, i);
    s->count[t->state]--;
    t->state = TASK__FREE_STATE;
    t->fn = NULL;
    t->ud = t->value = NULL;
    task__retire(&t->gen);
    task__recycle(&t->next, &s->tfree, i);
}

static task_id task__tid(const task_sched *s, uint32_t i) {
    return task__mkid(TASK__K_TASK, TASK__T(s, i)->gen, i);
}

/* The live task id names, or NULL. */
static task__task *task__get(const task_sched *s, task_id id) {
    uint32_t i = (uint32_t)id;
    task__task *t;
    if ((id >> 56) != TASK__K_TASK || i == 0 || i >= s->tused) return NULL;
    t = TASK__T(s, i);
    return t->gen == task__idgen(id) ? t : NULL;
}

/* task__get for a public function: NULL after recording fn's message. */
static task__task *task__find(const task_sched *s, task_id id, const char *fn) {
    task__task *t = task__get(s, id);
    if (!t) task__err(s, TASK_ENOENT, "%s: %s", fn, task__unknown(TASK__K_TASK));
    return t;
}

static void task__setstate(task_sched *s, task__task *t, int st) {
    s->count[t->state]--;
    s->count[st]++;
    t->state = (uint8_t)st;
}

/* ---- lists and the ready queue ---------------------------------------- */

static void task__q_push(task_sched *s, uint32_t *head, uint32_t *tail, uint32_t i) {
    task__task *t = TASK__T(s, i);
    t->next = 0;
    t->prev = *tail;
    if (*tail) TASK__T(s, *tail)->next = i; else *head = i;
    *tail = i;
}

static uint32_t task__q_pop(task_sched *s, uint32_t *head, uint32_t *tail) {
    uint32_t i = *head;
    task__task *t = TASK__T(s, i);
    *head = t->next;
    if (*head) TASK__T(s, *head)->prev = 0; else *tail = 0;
    return i;
}

/* Appends the queue from bhead to btail (not empty) to the queue (*head,
   *tail). Inline: it joins the ready queues in every tick. */
static inline void task__q_concat(task_sched *s, uint32_t *head, uint32_t *tail, uint32_t bhead, uint32_t btail) {
    if (*tail) {
        TASK__T(s, *tail)->next = bhead;
        TASK__T(s, bhead)->prev = *tail;
    } else *head = bhead;
    *tail = btail;
}

/* Removes a READY task from whichever ready queue holds it: only a head
   or a tail needs to know which, and those are named in the scheduler. */
static void task__q_unlink(task_sched *s, uint32_t i) {
    task__task *t = TASK__T(s, i);
    if (t->prev) TASK__T(s, t->prev)->next = t->next;
    else if (s->rhead == i) s->rhead = t->next;
    else if (s->bhead == i) s->bhead = t->next;
    else s->yhead = t->next;
    if (t->next) TASK__T(s, t->next)->prev = t->prev;
    else if (s->rtail == i) s->rtail = t->prev;
    else if (s->btail == i) s->btail = t->prev;
    else s->ytail = t->prev;
    t->next = t->prev = 0;
}

/* READY, at the end of the ready queue: it runs in this tick if one is
   running (within the wake limit), else in the next. */
static void task__ready(task_sched *s, task__task *t, uint32_t i) {
    task__setstate(s, t, TASK_READY);
    task__q_push(s, &s->rhead, &s->rtail, i);
}

/* The ready hook. It is armed (ready_armed) when set and at the end of a
   tick, if no task is READY then; every public call that can make a task
   READY ends with task__ready_check, so the hook runs where a create or
   term hook could (the call's own work is done), never in the middle of
   one. A tick does not disarm it as it starts (that would cost every tick
   a store): the first check inside the tick that finds a task READY does. */
static void task__ready_fire(task_sched *s) {
    s->ready_armed = 0;
    if (s->depth >= TASK__TICKING) return; /* inside a tick: not for the hook */
    s->depth++;
    s->ready_fn(s, s->ready_ud);
    s->depth--;
}

static inline void task__ready_check(task_sched *s) {
    if (s->ready_armed && s->rhead) task__ready_fire(s);
}

static void task__ready_arm(task_sched *s) {
    s->ready_armed = (uint8_t)(s->ready_fn && s->depth < TASK__TICKING && !s->destroying && !s->rhead && !s->yhead);
}

/* Circular lists of tasks, through one of three pairs of links. */
enum { TASK__L_JOIN = 0, TASK__L_TOKEN, TASK__L_SCOPE };

static uint32_t *task__lnext(task__task *t, int w) {
    return w == TASK__L_JOIN ? &t->next : w == TASK__L_TOKEN ? &t->tnext : &t->mnext;
}
static uint32_t *task__lprev(task__task *t, int w) {
    return w == TASK__L_JOIN ? &t->prev : w == TASK__L_TOKEN ? &t->tprev : &t->mprev;
}

static void task__l_add(task_sched *s, uint32_t *head, uint32_t i, int w) {
    task__task *t = TASK__T(s, i);
    if (!*head) { *task__lnext(t, w) = *task__lprev(t, w) = i; *head = i; return; }
    {
        task__task *first = TASK__T(s, *head);
        uint32_t last = *task__lprev(first, w);
        *task__lprev(t, w) = last;
        *task__lnext(t, w) = *head;
        *task__lnext(TASK__T(s, last), w) = i;
        *task__lprev(first, w) = i;
    }
}

static void task__l_del(task_sched *s, uint32_t *head, uint32_t i, int w) {
    task__task *t = TASK__T(s, i);
    uint32_t n = *task__lnext(t, w), p = *task__lprev(t, w);
    if (n == i) *head = 0;
    else {
        *task__lnext(TASK__T(s, p), w) = n;
        *task__lprev(TASK__T(s, n), w) = p;
        if (*head == i) *head = n;
    }
    *task__lnext(t, w) = *task__lprev(t, w) = 0;
}

/* ---- the timer heap: (deadline, sequence), positions kept in the items - */
/* A 4-ary heap: parent (pos-1)/4, children 4*pos+1 .. 4*pos+4; shallower
   than a binary one, so fewer position updates per insert and removal. */

static int task__hless(const task__hent *a, const task__hent *b) {
    return a->when < b->when || (a->when == b->when && (int32_t)(a->seq - b->seq) < 0);
}

static void task__hput(task_sched *s, uint32_t pos, task__hent e) {
    s->heap[pos] = e;
    if (e.ref & TASK__TIMERBIT) TASK__TMR(s, e.ref & ~TASK__TIMERBIT)->heap = pos;
    else TASK__T(s, e.ref)->link = pos;
}

static void task__hup(task_sched *s, uint32_t pos, task__hent e) {
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 4;
        if (!task__hless(&e, &s->heap[parent])) break;
        task__hput(s, pos, s->heap[parent]);
        pos = parent;
    }
    task__hput(s, pos, e);
}

static void task__hdown(task_sched *s, uint32_t pos, task__hent e) {
    uint32_t n = s->hn;
    for (;;) { /* 4-ary: children 4*pos+1 .. 4*pos+4 */
        uint32_t c = 4 * pos + 1, k, end;
        if (pos > (n - 2) / 4 || c >= n) break;
        end = n - c < 4 ? n : c + 4;
        for (k = c + 1; k < end; k++)
            if (task__hless(&s->heap[k], &s->heap[c])) c = k;
        if (!task__hless(&s->heap[c], &e)) break;
        task__hput(s, pos, s->heap[c]);
        pos = c;
    }
    task__hput(s, pos, e);
}

static int task__hreserve(task_sched *s) {
    if (s->hn == s->hcap) {
        uint32_t ncap = s->hcap ? s->hcap * 2 : 64;
        task__hent *nh;
        if (ncap <= s->hcap || ncap > 0x7FFFFFFFu) return TASK_ENOMEM;
        nh = (task__hent *)task__alloc(s, s->heap, sizeof *nh * s->hcap, sizeof *nh * ncap);
        if (!nh) return TASK_ENOMEM;
        s->heap = nh;
        s->hcap = ncap;
    }
    return TASK_OK;
}

/* The caller has reserved room. ns counts from the scheduler's clock. */
static void task__hinsert(task_sched *s, uint64_t ns, uint32_t ref) {
    task__hent e;
    e.when = ns > UINT64_MAX - s->now ? UINT64_MAX : s->now + ns;
    e.seq = s->seq++;
    e.ref = ref;
    task__hup(s, s->hn++, e);
}

static void task__hremove(task_sched *s, uint32_t pos) {
    task__hent last;
    TASK_ASSERT(pos < s->hn);
    last = s->heap[--s->hn];
    if (pos == s->hn) return;
    if (task__hless(&last, &s->heap[pos])) task__hup(s, pos, last);
    else task__hdown(s, pos, last);
}

/* ---- parking and waking ------------------------------------------------
   A task parks by arranging, during its step, what it waits for (wait,
   link); it is woken by undoing that and making it READY, or, while its
   step still runs, by marking it to be READY when the step returns. */

static int task__is_cancelled(const task_sched *s, const task__task *t) {
    return (t->flags & TASK__F_CANCELLED) || (t->token && TASK__TOK(s, t->token)->cancelled);
}

/* Is the task parked in a way that cancellation interrupts? */
static int task__cancellable(const task__task *t) {
    if (t->wait == TASK__W_SCOPE || (t->flags & TASK__F_ABORT)) return 0;
    if (t->state == TASK_WAIT || t->state == TASK_SLEEP) return 1;
    return t->state == TASK_RUN && (t->flags & TASK__F_ARRANGED) && !(t->flags & TASK__F_WAKENOW);
}

/* Undoes whatever the task is parked on. */
static void task__unwait(task_sched *s, uint32_t i) {
    task__task *t = TASK__T(s, i);
    switch (t->wait) {
    case TASK__W_SLEEP: task__hremove(s, t->link); break;
    case TASK__W_JOIN: task__l_del(s, &TASK__T(s, t->link)->joiners, i, TASK__L_JOIN); break;
    case TASK__W_EXT: /* the waiter gave up: the id is of no use to anyone */
        task__pool_free(&s->exts, t->link);
        break;
    case TASK__W_SCOPE: TASK__SCO(s, t->link)->closing = 0; break;
    default: break;
    }
    t->wait = TASK__W_NONE;
}

static void task__wake(task_sched *s, uint32_t i, int why, void *value) {
    task__task *t = TASK__T(s, i);
    task__unwait(s, i);
    t->why = (uint8_t)why;
    t->value = value;
    if (t->state == TASK_RUN) t->flags |= TASK__F_WAKENOW;
    else task__ready(s, t, i);
}

/* The event the task waited for happened, and its source has already let
   go of the task (a joined task's list, an external id, a scope). */
static void task__wake_done(task_sched *s, uint32_t i, void *value) {
    TASK__T(s, i)->wait = TASK__W_NONE;
    task__wake(s, i, TASK_WHY_WAKE, value);
}

/* task_abort of a live task. It stays a member of its scope (and in
   every list) until its abort step has run and it ends. */
static void task__abort(task_sched *s, uint32_t i) {
    task__task *t = TASK__T(s, i);
    if (t->flags & TASK__F_ABORT) return;
    t->flags |= TASK__F_ABORT;
    if (t->state == TASK_RUN) { /* itself: finished when its step returns */
        task__unwait(s, i);
        t->flags &= (uint8_t)~(TASK__F_ARRANGED | TASK__F_WAKENOW);
    } else if (t->state == TASK_WAIT || t->state == TASK_SLEEP) {
        task__unwait(s, i);
        task__ready(s, t, i);
    }
}

/* The running task, if it may arrange a suspension now; else NULL, with
   *rc the refusal recorded for fn. A step arranges one suspension at most. */
static task__task *task__arrange(task_sched *s, const char *fn, int cancellable, int *rc) {
    task__task *t;
    if (!s->cur) { *rc = task__err(s, TASK_EPERM, "%s: no task is running", fn); return NULL; }
    t = TASK__T(s, s->cur);
    if (t->flags & TASK__F_ABORT) { *rc = task__err(s, TASK_ESTATE, "%s: the task is being aborted", fn); return NULL; }
    if (t->flags & (TASK__F_ARRANGED | TASK__F_WAKENOW)) {
        *rc = task__err(s, TASK_ESTATE, "%s: the task already arranged to wait in this step", fn);
        return NULL;
    }
    if (cancellable && task__is_cancelled(s, t)) { *rc = task__err(s, TASK_ECANCELED, "%s: task cancelled", fn); return NULL; }
    *rc = TASK_OK;
    return t;
}

/* Marks the running task, whose arrangement was allowed, as parked on kind
   once its step returns. TASK__W_NONE: what it waits for has already
   happened, and the caller wakes it (it is READY again as the step
   returns). */
static task__task *task__arranged(task__task *t, int kind) {
    t->flags |= TASK__F_ARRANGED;
    t->wait = (uint8_t)kind;
    return t;
}

/* ---- tokens ------------------------------------------------------------ */

/* A token lives while the user holds it, a task is bound to it, a scope
   owns it or it has children (a scope's token is a child of the token its
   owner had before, which must outlive it). */
static void task__tok_gc(task_sched *s, uint32_t k) {
    while (k) {
        task__token *tk = TASK__TOK(s, k);
        uint32_t parent = tk->parent;
        if (tk->held || tk->tasks || tk->scope || tk->child) return;
        if (parent) {
            if (tk->sprev) TASK__TOK(s, tk->sprev)->snext = tk->snext;
            else TASK__TOK(s, parent)->child = tk->snext;
            if (tk->snext) TASK__TOK(s, tk->snext)->sprev = tk->sprev;
        }
        task__pool_free(&s->tokens, k);
        k = parent;
    }
}

static int task__tok_make(task_sched *s, uint32_t parent, uint32_t *out) {
    uint32_t k;
    task__token *tk;
    int rc = task__pool_alloc(s, &s->tokens, &k);
    if (rc) return rc;
    tk = TASK__TOK(s, k);
    tk->parent = parent;
    tk->child = tk->snext = tk->sprev = tk->tasks = tk->scope = 0;
    tk->cancelled = tk->held = 0;
    if (parent) {
        task__token *pk = TASK__TOK(s, parent);
        tk->snext = pk->child;
        if (pk->child) TASK__TOK(s, pk->child)->sprev = k;
        pk->child = k;
        tk->cancelled = pk->cancelled;
    }
    *out = k;
    return TASK_OK;
}

static void task__bind(task_sched *s, uint32_t i, uint32_t k) {
    TASK__T(s, i)->token = k;
    if (k) task__l_add(s, &TASK__TOK(s, k)->tasks, i, TASK__L_TOKEN);
}

static void task__unbind(task_sched *s, uint32_t i) {
    uint32_t k = TASK__T(s, i)->token;
    if (!k) return;
    task__l_del(s, &TASK__TOK(s, k)->tasks, i, TASK__L_TOKEN);
    TASK__T(s, i)->token = 0;
    task__tok_gc(s, k);
}

/* Binds the task to another token; the old one may be collected. */
static void task__rebind(task_sched *s, uint32_t i, uint32_t k) {
    task__unbind(s, i);
    task__bind(s, i, k);
}

/* Cancels a token and its subtree, waking the parked tasks bound to them.
   Iterative: token trees may be deep. */
static void task__tok_cancel(task_sched *s, uint32_t root) {
    uint32_t k = root;
    for (;;) {
        task__token *tk = TASK__TOK(s, k);
        if (!tk->cancelled) {
            tk->cancelled = 1;
            if (tk->tasks) {
                uint32_t i = tk->tasks;
                do {
                    if (task__cancellable(TASK__T(s, i))) task__wake(s, i, TASK_WHY_CANCEL, NULL);
                    i = TASK__T(s, i)->tnext;
                } while (i != tk->tasks);
            }
            if (tk->child) { k = tk->child; continue; }
        }
        while (k != root && !TASK__TOK(s, k)->snext) k = TASK__TOK(s, k)->parent;
        if (k == root) break;
        k = TASK__TOK(s, k)->snext;
    }
}

TASK__DEF int task_token_new(task_sched *s, task_id parent, task_id *out) {
    uint32_t p = 0, k;
    if (out) *out = 0;
    if (parent && !(p = task__pool_find(s, &s->tokens, TASK__K_TOKEN, parent, "task_token_new"))) return TASK_ENOENT;
    if (task__tok_make(s, p, &k)) return task__err(s, TASK_ENOMEM, "task_token_new: out of memory");
    TASK__TOK(s, k)->held = 1;
    if (out) *out = task__pool_id(&s->tokens, TASK__K_TOKEN, k);
    return TASK_OK;
}

TASK__DEF int task_token_cancel(task_sched *s, task_id tok) {
    uint32_t k = task__pool_find(s, &s->tokens, TASK__K_TOKEN, tok, "task_token_cancel");
    if (!k) return TASK_ENOENT;
    task__tok_cancel(s, k);
    task__ready_check(s);
    return TASK_OK;
}

TASK__DEF int task_token_cancelled(const task_sched *s, task_id tok) {
    uint32_t k = task__pool_find(s, &s->tokens, TASK__K_TOKEN, tok, "task_token_cancelled");
    return k ? (int)TASK__TOK(s, k)->cancelled : (int)TASK_ENOENT;
}

TASK__DEF int task_token_release(task_sched *s, task_id tok) {
    uint32_t k = task__pool_find(s, &s->tokens, TASK__K_TOKEN, tok, "task_token_release");
    if (!k) return TASK_ENOENT;
    if (!TASK__TOK(s, k)->held) return task__err(s, TASK_ESTATE, "task_token_release: this token belongs to a scope");
    TASK__TOK(s, k)->held = 0;
    task__tok_gc(s, k);
    return TASK_OK;
}

TASK__DEF int task_token_of(const task_sched *s, task_id id, task_id *out) {
    const task__task *t = task__find(s, id, "task_token_of");
    return task__answer(out, t != NULL, t && t->token ? task__pool_id(&s->tokens, TASK__K_TOKEN, t->token) : 0);
}

/* ---- scopes ------------------------------------------------------------
   A scope owns a token, a child of the token its owner had (prev_token),
   which the owner is bound to while the scope is open. Its members are
   the tasks spawned meanwhile; a cancel scope has none. */

/* The scope the task opened last and has not closed, or 0. */
static uint32_t task__own_scope(const task_sched *s, uint32_t i) {
    uint32_t k = TASK__T(s, i)->token, sc;
    if (!k) return 0;
    sc = TASK__TOK(s, k)->scope;
    return sc && TASK__SCO(s, sc)->owner == i ? sc : 0;
}

/* The scope opened by the same owner just before sc (outside it), or 0. */
static uint32_t task__outer_scope(const task_sched *s, uint32_t sc) {
    const task__scope *p = TASK__SCO(s, sc);
    uint32_t up = p->prev_token ? TASK__TOK(s, p->prev_token)->scope : 0;
    return up && TASK__SCO(s, up)->owner == p->owner ? up : 0;
}

/* The plain scope the task's spawns join: its innermost one, looking
   through the cancel scopes opened inside it. */
static uint32_t task__join_scope(const task_sched *s, uint32_t i) {
    uint32_t sc = task__own_scope(s, i);
    while (sc && TASK__SCO(s, sc)->cancel_only) sc = task__outer_scope(s, sc);
    return sc;
}

/* The last member ended and nobody waits any more: restore and free. */
static void task__scope_done(task_sched *s, uint32_t sc) {
    task__scope *p = TASK__SCO(s, sc);
    uint32_t k = p->token, owner = p->owner;
    if (owner) task__rebind(s, owner, p->prev_token);
    TASK__TOK(s, k)->scope = 0;
    task__pool_free(&s->scopes, sc);
    task__tok_gc(s, k);
}

/* The task is no longer a member of its scope: the last one out wakes a
   closing owner, or frees a scope whose owner is gone. */
static void task__leave_scope(task_sched *s, uint32_t i) {
    task__task *t = TASK__T(s, i);
    uint32_t sc = t->scope;
    task__scope *p;
    if (!sc) return;
    p = TASK__SCO(s, sc);
    t->scope = 0;
    task__l_del(s, &p->members, i, TASK__L_SCOPE);
    if (--p->count == 0) {
        if (p->closing) {
            uint32_t owner = p->owner;
            task__scope_done(s, sc);
            task__wake_done(s, owner, NULL);
        } else if (!p->owner) task__scope_done(s, sc);
    }
}

/* Aborting only the members, not their scopes' members: those follow as
   each member ends, through the ready queue, so a deep tree needs no
   recursion here. task__abort changes no member list. */
static void task__abort_members(task_sched *s, uint32_t sc) {
    uint32_t head = TASK__SCO(s, sc)->members, i = head;
    if (i) do {
        task__abort(s, i);
        i = TASK__T(s, i)->mnext;
    } while (i != head);
}

static int task__scope_open(task_sched *s, task_id *out, int cancel_only, const char *fn) {
    uint32_t k, sc, i = s->cur;
    task__task *t;
    task__scope *p;
    if (out) *out = 0;
    if (!i) return task__err(s, TASK_EPERM, "%s: no task is running", fn);
    t = TASK__T(s, i);
    if (task__tok_make(s, t->token, &k)) return task__err(s, TASK_ENOMEM, "%s: out of memory", fn);
    if (task__pool_alloc(s, &s->scopes, &sc)) {
        task__tok_gc(s, k);
        return task__err(s, TASK_ENOMEM, "%s: out of memory", fn);
    }
    p = TASK__SCO(s, sc);
    p->token = k;
    p->owner = i;
    p->count = p->members = 0;
    p->closing = 0;
    p->cancel_only = (uint8_t)cancel_only;
    p->prev_token = t->token;
    TASK__TOK(s, k)->scope = sc;
    if (t->flags & TASK__F_CANCELLED) TASK__TOK(s, k)->cancelled = 1;
    task__rebind(s, i, k); /* the new token is a child of the old: that one stays */
    if (out) *out = task__pool_id(&s->scopes, TASK__K_SCOPE, sc);
    return TASK_OK;
}

TASK__DEF int task_scope_open(task_sched *s, task_id *out) {
    return task__scope_open(s, out, 0, "task_scope_open");
}

TASK__DEF int task_cancel_scope_open(task_sched *s, task_id *out) {
    return task__scope_open(s, out, 1, "task_cancel_scope_open");
}

/* What both closes check: the scope exists, is of this kind, and is the
   one the running task opened last. */
static int task__closable(task_sched *s, task_id scope, int cancel_only, const char *fn, uint32_t *out) {
    uint32_t sc = *out = task__pool_find(s, &s->scopes, TASK__K_SCOPE, scope, fn);
    if (!sc) return TASK_ENOENT;
    if (TASK__SCO(s, sc)->cancel_only != cancel_only)
        return task__err(s, TASK_ESTATE, "%s: a %s scope closes with %s", fn, cancel_only ? "plain" : "cancel",
                         cancel_only ? "task_scope_close" : "task_cancel_scope_close");
    if (!s->cur || TASK__SCO(s, sc)->owner != s->cur)
        return task__err(s, TASK_EPERM, "%s: only the task that opened the scope can close it", fn);
    if (task__own_scope(s, s->cur) != sc)
        return task__err(s, TASK_ESTATE, "%s: close the scopes opened inside it first", fn);
    return TASK_OK;
}

TASK__DEF int task_cancel_scope_close(task_sched *s, task_id scope) {
    uint32_t sc;
    int rc = task__closable(s, scope, 1, "task_cancel_scope_close", &sc);
    if (rc == TASK_OK) task__scope_done(s, sc); /* no members: the owner's token comes back now */
    return rc;
}

TASK__DEF int task_scope_close(task_sched *s, task_id scope) {
    uint32_t sc;
    int rc = task__closable(s, scope, 0, "task_scope_close", &sc);
    task__task *t = rc == TASK_OK ? task__arrange(s, "task_scope_close", 0, &rc) : NULL;
    if (!t) return rc;
    if (TASK__SCO(s, sc)->count == 0) {
        task__scope_done(s, sc);
        task__arranged(t, TASK__W_NONE);
        task__wake(s, s->cur, TASK_WHY_WAKE, NULL);
    } else {
        TASK__SCO(s, sc)->closing = 1;
        task__arranged(t, TASK__W_SCOPE)->link = sc;
    }
    return TASK_OK;
}

/* task_scope_cancel and task_scope_abort: the scope's token, or its members. */
static int task__scope_stop(task_sched *s, task_id scope, int abort, const char *fn) {
    uint32_t sc = task__pool_find(s, &s->scopes, TASK__K_SCOPE, scope, fn);
    if (!sc) return TASK_ENOENT;
    if (abort) task__abort_members(s, sc);
    else task__tok_cancel(s, TASK__SCO(s, sc)->token);
    task__ready_check(s);
    return TASK_OK;
}

TASK__DEF int task_scope_cancel(task_sched *s, task_id scope) {
    return task__scope_stop(s, scope, 0, "task_scope_cancel");
}

TASK__DEF int task_scope_abort(task_sched *s, task_id scope) {
    return task__scope_stop(s, scope, 1, "task_scope_abort");
}

TASK__DEF int task_scope_leave(task_sched *s, task_id id) {
    if (!task__find(s, id, "task_scope_leave")) return TASK_ENOENT;
    task__leave_scope(s, (uint32_t)id);
    task__ready_check(s);
    return TASK_OK;
}

TASK__DEF task_id task_scope_current(const task_sched *s) {
    uint32_t sc = s->cur ? task__join_scope(s, s->cur) : 0;
    return sc ? task__pool_id(&s->scopes, TASK__K_SCOPE, sc) : 0;
}

TASK__DEF int task_scope_of(const task_sched *s, task_id id, task_id *out) {
    const task__task *t = task__find(s, id, "task_scope_of");
    return task__answer(out, t != NULL, t && t->scope ? task__pool_id(&s->scopes, TASK__K_SCOPE, t->scope) : 0);
}

TASK__DEF int task_scope_owner(const task_sched *s, task_id scope, task_id *out) {
    uint32_t sc = task__pool_find(s, &s->scopes, TASK__K_SCOPE, scope, "task_scope_owner");
    return task__answer(out, sc != 0, sc && TASK__SCO(s, sc)->owner ? task__tid(s, TASK__SCO(s, sc)->owner) : 0);
}

TASK__DEF int task_scope_token(const task_sched *s, task_id scope, task_id *out) {
    uint32_t sc = task__pool_find(s, &s->scopes, TASK__K_SCOPE, scope, "task_scope_token");
    return task__answer(out, sc != 0, sc ? task__pool_id(&s->tokens, TASK__K_TOKEN, TASK__SCO(s, sc)->token) : 0);
}

TASK__DEF int task_scope_count(const task_sched *s, task_id scope) {
    uint32_t sc = task__pool_find(s, &s->scopes, TASK__K_SCOPE, scope, "task_scope_count");
    return sc ? (int)TASK__SCO(s, sc)->count : (int)TASK_ENOENT;
}

/* ---- tasks: ending, stepping, spawning, and the calls on a task ------- */

/* The task ends (how: TASK_EXIT_*): it lets go of everything it was
   part of, wakes its joiners and, if detached, is freed. */
static void task__exit(task_sched *s, uint32_t i, int how, int hooks) {
    task__task *t = TASK__T(s, i);
    uint32_t sc, gen;
    task__unwait(s, i);
    t->flags &= (uint8_t)~(TASK__F_ARRANGED | TASK__F_WAKENOW);
    /* scopes it opened and never closed lose their owner; after an abort,
       nobody will close them, so their members are aborted too */
    while ((sc = task__own_scope(s, i)) != 0) {
        task__scope *p = TASK__SCO(s, sc);
        if (how == TASK_EXIT_ABORT) task__abort_members(s, sc);
        p->owner = 0;
        task__rebind(s, i, p->prev_token);
        if (p->count == 0) task__scope_done(s, sc);
    }
    task__unbind(s, i);
    task__setstate(s, t, TASK_EXIT);
    t->why = (uint8_t)how;
    task__leave_scope(s, i);
    while (t->joiners) {
        uint32_t j = t->joiners;
        task__l_del(s, &t->joiners, j, TASK__L_JOIN);
        task__wake_done(s, j, t->value);
    }
    gen = t->gen;
    if (hooks && s->hooks.term) {
        s->depth++;
        s->hooks.term(s, task__tid(s, i), s->hooks.ud);
        s->depth--;
    }
    /* unless the hook has released it already */
    if (t->gen == gen && (t->flags & TASK__F_DETACHED)) task__task_free(s, i);
}

/* The statistics' clock: the host's, or the tick's time. A callback. */
static uint64_t task__clock(task_sched *s) {
    uint64_t now;
    if (!s->clock) return s->now;
    s->depth++;
    now = s->clock(s->clock_ud);
    s->depth--;
    return now;
}

/* What the suspend hook is told about a step that returned rc. */
static int task__did(const task_sched *s, const task__task *t, int why, int rc, int *waits) {
    *waits = TASK_WAITS_NONE;
    if ((t->flags & TASK__F_ABORT) || why == TASK_WHY_ABORT) return TASK_DID_END;
    if (rc == TASK_STEP_YIELD) return TASK_DID_YIELD;
    if (rc != TASK_STEP_SUSPEND) return TASK_DID_END;
    if (t->flags & TASK__F_WAKENOW) return TASK_DID_PARK;
    if (t->flags & TASK__F_ARRANGED) *waits = t->wait;
    else if (!task__is_cancelled(s, t)) *waits = TASK_WAITS_WAKEUP; /* a plain task_wait */
    return TASK_DID_PARK;
}

/* A step with hooks or statistics around it: the resume hook, the clock,
   the step, the clock, the suspend hook. The hooks run as the host
   would (no task is running), with the task still in RUN. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static int task__step_observed(task_sched *s, uint32_t i, task_ctx *c) {
    task__task *t = TASK__T(s, i);
    task__stat *st = NULL;
    uint64_t t0 = 0;
    uint32_t gen = t->gen;
    int rc, waits, did;
    /* the hooks and the clock may drop the task (task_drop): then its step
       is not called, or what it returned is not acted on (TASK__STEP_GONE) */
    if (s->hooks.resume) {
        s->depth++;
        s->hooks.resume(s, c->self, s->hooks.ud);
        s->depth--;
        if (t->gen != gen) return TASK__STEP_GONE;
    }
    if (s->stats_on) { /* the page never moves: st stays valid through the step */
        st = TASK__ST(s, i);
        t0 = task__clock(s);
        if (t->gen != gen) return TASK__STEP_GONE;
    }
    s->cur = i;
    rc = t->fn(c);
    s->cur = 0;
    if (rc == TASK__STEP_GONE) rc = TASK_STEP_FAIL; /* not a value of its own to return */
    if (st) {
        uint64_t t1 = task__clock(s), d = t1 > t0 ? t1 - t0 : 0;
        if (t->gen != gen) return TASK__STEP_GONE;
        st->resumes++;
        st->busy += d;
        if (d > st->longest) st->longest = d;
        st->last = t0;
    }
    if (s->hooks.suspend) {
        did = task__did(s, t, c->why, rc, &waits);
        s->depth++;
        s->hooks.suspend(s, c->self, did, waits, s->hooks.ud);
        s->depth--;
        if (t->gen != gen) return TASK__STEP_GONE;
    }
    return rc;
}

static int task__step(task_sched *s, uint32_t i, int why) {
    task__task *t = TASK__T(s, i);
    task_ctx c;
    int rc;
    c.sched = s;
    c.self = task__tid(s, i);
    c.why = why;
    c.value = t->value;
    c.ud = t->ud;
    c.err = TASK_OK;
    t->value = NULL;
    t->flags &= (uint8_t)~(TASK__F_ARRANGED | TASK__F_WAKENOW);
    if (s->obs) return task__step_observed(s, i, &c);
    s->cur = i;
    rc = t->fn(&c);
    s->cur = 0;
    return rc;
}

/* The last step of an aborted task, then its end (unless a hook around
   the step dropped it: a step function may return TASK__STEP_GONE too,
   but then the task is still RUN). */
static void task__abort_step(task_sched *s, uint32_t i) {
    if (task__step(s, i, TASK_WHY_ABORT) == TASK__STEP_GONE && TASK__T(s, i)->state != TASK_RUN) return;
    task__exit(s, i, TASK_EXIT_ABORT, 1);
}

/* One resume of a READY task, and what its step returned. */
static void task__run(task_sched *s, uint32_t i) {
    task__task *t = TASK__T(s, i);
    int rc;
    task__setstate(s, t, TASK_RUN);
    if (t->flags & TASK__F_ABORT) { task__abort_step(s, i); return; }
    rc = task__step(s, i, t->why);
    if (t->flags & TASK__F_ABORT) { /* it aborted itself (or a hook dropped it, aborted or not) */
        if (rc == TASK__STEP_GONE && t->state != TASK_RUN) return;
        task__unwait(s, i);
        task__abort_step(s, i);
        return;
    }
    switch (rc) {
    case TASK_STEP_DONE: task__exit(s, i, TASK_EXIT_DONE, 1); break;
    case TASK_STEP_YIELD:
        task__unwait(s, i);
        t->flags &= (uint8_t)~(TASK__F_ARRANGED | TASK__F_WAKENOW);
        t->why = TASK_WHY_YIELD;
        task__setstate(s, t, TASK_READY);
        task__q_push(s, &s->yhead, &s->ytail, i);
        break;
    case TASK_STEP_SUSPEND:
        if (!(t->flags & (TASK__F_ARRANGED | TASK__F_WAKENOW))) {
            if (task__is_cancelled(s, t)) {
                t->flags |= TASK__F_WAKENOW;
                t->why = TASK_WHY_CANCEL;
            } else t->wait = TASK__W_PLAIN;
        }
        if (t->flags & TASK__F_WAKENOW) task__ready(s, t, i);
        else task__setstate(s, t, t->wait == TASK__W_SLEEP ? TASK_SLEEP : TASK_WAIT);
        break;
    case TASK__STEP_GONE: /* a hook dropped it: its slot is free, or a new task's */
        if (t->state != TASK_RUN) break;
        task__exit(s, i, TASK_EXIT_FAIL, 1); /* a step function returned this value */
        break;
    default: /* TASK_STEP_FAIL, or a value no step should return */
        task__exit(s, i, TASK_EXIT_FAIL, 1);
        break;
    }
}

/* The end of task_spawn when there is more to do than queue the task:
   statistics, the create hook, the ready hook (s->spawn_more). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((noinline))
#endif
static void task__spawned(task_sched *s, uint32_t i) {
    if (s->stats_on) {
        task__stat *st = TASK__ST(s, i);
        memset(st, 0, sizeof *st);
        st->spawned = task__clock(s);
    }
    if (s->hooks.create) { /* it may end, drop or release the new task */
        s->depth++;
        s->hooks.create(s, task__tid(s, i), s->hooks.ud);
        s->depth--;
    }
    task__ready_check(s);
}

TASK__DEF int task_spawn(task_sched *s, task_fn fn, void *ud, const task_opts *opts, task_id *out) {
    uint32_t i, sc = 0, tok = 0;
    task__task *t;
    if (out) *out = 0;
    if (!fn) return task__err(s, TASK_EINVAL, "task_spawn: no step function");
    if (s->destroying) return task__err(s, TASK_EBUSY, "task_spawn: the scheduler is being destroyed");
    if (opts && opts->scope) {
        if (!(sc = task__pool_find(s, &s->scopes, TASK__K_SCOPE, opts->scope, "task_spawn"))) return TASK_ENOENT;
        if (TASK__SCO(s, sc)->cancel_only)
            return task__err(s, TASK_EINVAL, "task_spawn: a cancel scope takes no members");
    } else if (s->cur) sc = task__join_scope(s, s->cur);
    if (opts && opts->token) {
        if (!(tok = task__pool_find(s, &s->tokens, TASK__K_TOKEN, opts->token, "task_spawn"))) return TASK_ENOENT;
    } else if (sc) tok = TASK__SCO(s, sc)->token;
    else if (s->cur) tok = TASK__T(s, s->cur)->token;
    if (task__task_alloc(s, &i) != TASK_OK) return task__err(s, TASK_ENOMEM, "task_spawn: out of memory");
    t = TASK__T(s, i);
    t->gen = (t->gen & TASK__GENMASK) | TASK__LIVE;
    t->state = TASK_READY;
    s->count[TASK_READY]++;
    t->flags = (uint8_t)(opts && (opts->flags & TASK_DETACHED) ? TASK__F_DETACHED : 0);
    t->why = TASK_WHY_START;
    t->wait = TASK__W_NONE;
    t->link = t->joiners = 0;
    t->fn = fn;
    t->ud = ud;
    t->value = NULL;
    t->trace = s->cur ? TASK__T(s, s->cur)->trace : s->host_trace;
    t->scope = sc;
    if (sc) {
        TASK__SCO(s, sc)->count++;
        task__l_add(s, &TASK__SCO(s, sc)->members, i, TASK__L_SCOPE);
    } else t->mnext = t->mprev = 0;
    t->tnext = t->tprev = 0;
    task__bind(s, i, tok);
    task__q_push(s, &s->rhead, &s->rtail, i);
    if (out) *out = task__tid(s, i);
    if (s->spawn_more) task__spawned(s, i);
    return TASK_OK;
}

TASK__DEF int task_status(const task_sched *s, task_id id) {
    const task__task *t = task__find(s, id, "task_status");
    return t ? (int)t->state : (int)TASK_ENOENT;
}

TASK__DEF task_id task_self(const task_sched *s) { return s->cur ? task__tid(s, s->cur) : 0; }

TASK__DEF int task_userdata(const task_sched *s, task_id id, void **out) {
    const task__task *t = task__find(s, id, "task_userdata");
    if (out) *out = t ? t->ud : NULL;
    return t ? TASK_OK : TASK_ENOENT;
}

TASK__DEF int task_step_of(const task_sched *s, task_id id, task_fn *out) {
    const task__task *t = task__find(s, id, "task_step_of");
    if (out) *out = t ? t->fn : NULL;
    return t ? TASK_OK : TASK_ENOENT;
}

TASK__DEF int task_release(task_sched *s, task_id id) {
    task__task *t = task__find(s, id, "task_release");
    if (!t) return TASK_ENOENT;
    if (t->flags & TASK__F_DETACHED) return task__err(s, TASK_ESTATE, "task_release: task already released");
    if (t->state == TASK_EXIT) task__task_free(s, (uint32_t)id);
    else t->flags |= TASK__F_DETACHED;
    return TASK_OK;
}

/* The checks of task_cancel and task_abort: TASK_OK for a live task. */
static int task__check_live(task_sched *s, task_id id, const char *fn) {
    const task__task *t = task__find(s, id, fn);
    if (!t) return TASK_ENOENT;
    if (t->state == TASK_EXIT) return task__err(s, TASK_ESTATE, "%s: the task has already ended", fn);
    return TASK_OK;
}

TASK__DEF int task_cancel(task_sched *s, task_id id) {
    uint32_t i = (uint32_t)id, sc, up;
    int rc = task__check_live(s, id, "task_cancel");
    if (rc) return rc;
    TASK__T(s, i)->flags |= TASK__F_CANCELLED;
    if ((sc = task__own_scope(s, i)) != 0) {
        /* the outermost scope it owns: the inner ones' tokens are its children */
        while ((up = task__outer_scope(s, sc)) != 0) sc = up;
        task__tok_cancel(s, TASK__SCO(s, sc)->token);
    }
    if (task__cancellable(TASK__T(s, i))) task__wake(s, i, TASK_WHY_CANCEL, NULL);
    task__ready_check(s);
    return TASK_OK;
}

TASK__DEF int task_cancelled(const task_sched *s, task_id id) {
    const task__task *t = task__find(s, id, "task_cancelled");
    return t ? task__is_cancelled(s, t) : (int)TASK_ENOENT;
}

TASK__DEF int task_self_cancelled(const task_sched *s) {
    return s->cur ? task__is_cancelled(s, TASK__T(s, s->cur)) : 0;
}

TASK__DEF int task_abort(task_sched *s, task_id id) {
    int rc = task__check_live(s, id, "task_abort");
    if (rc == TASK_OK) task__abort(s, (uint32_t)id);
    task__ready_check(s);
    return rc;
}

TASK__DEF int task_drop(task_sched *s, task_id id) {
    uint32_t i = (uint32_t)id;
    task__task *t = task__find(s, id, "task_drop");
    if (!t) return TASK_ENOENT;
    /* RUN but not running: its resume or suspend hook, or the statistics
       clock around its step (task__step_observed lets go of it) */
    if (t->state == TASK_RUN && s->cur == i) return task__err(s, TASK_EBUSY, "task_drop: the task is running");
    if (t->state == TASK_READY) task__q_unlink(s, i);
    if (t->state != TASK_EXIT) {
        t->value = NULL; /* no result: not a wake value it never saw */
        task__exit(s, i, TASK_EXIT_ABORT, 0);
    }
    if (task__get(s, id)) task__task_free(s, i); /* unless it was detached: then it is gone */
    task__ready_check(s);
    return TASK_OK;
}

TASK__DEF int task_set_result(task_sched *s, void *value) {
    if (!s->cur) return task__err(s, TASK_EPERM, "task_set_result: no task is running");
    TASK__T(s, s->cur)->value = value;
    return TASK_OK;
}

TASK__DEF int task_result(const task_sched *s, task_id id, int *how, void **value) {
    const task__task *t = task__find(s, id, "task_result");
    int rc = t ? TASK_OK : TASK_ENOENT;
    if (t && t->state != TASK_EXIT)
        rc = task__err(s, TASK_ESTATE, "task_result: task is %s, not EXIT", task_state_name(t->state));
    if (how) *how = rc == TASK_OK ? (int)t->why : 0;
    if (value) *value = rc == TASK_OK ? t->value : NULL;
    return rc;
}

static inline int task__wake_parked(task_sched *s, task_id id, void *value, int kind, const char *fn) {
    task__task *t = task__find(s, id, fn);
    if (!t) return TASK_ENOENT;
    if (t->state != TASK_WAIT)
        return task__err(s, TASK_ESTATE, "%s: task is %s, not WAIT", fn, task_state_name(t->state));
    if (t->wait != kind)
        return task__err(s, TASK_ESTATE, "%s: task is waiting for something else", fn);
    task__wake(s, (uint32_t)id, TASK_WHY_WAKE, value);
    task__ready_check(s);
    return TASK_OK;
}

TASK__DEF int task_wakeup(task_sched *s, task_id id, void *value) {
    return task__wake_parked(s, id, value, TASK__W_PLAIN, "task_wakeup");
}

TASK__DEF int task_unpark(task_sched *s, task_id id, void *value) {
    return task__wake_parked(s, id, value, TASK__W_PARK, "task_unpark");
}

static int task__park_as(task_sched *s, int kind, unsigned code, const char *fn) {
    int rc;
    task__task *t = task__arrange(s, fn, 1, &rc);
    if (!t) return rc;
    task__arranged(t, kind);
    if (kind == TASK__W_PARK) t->link = (uint32_t)code; /* task_wait: no store */
    return TASK_OK;
}

TASK__DEF int task_wait(task_sched *s) { return task__park_as(s, TASK__W_PLAIN, 0, "task_wait"); }
TASK__DEF int task_park(task_sched *s) { return task__park_as(s, TASK__W_PARK, 0, "task_park"); }
TASK__DEF int task_park_as(task_sched *s, unsigned code) { return task__park_as(s, TASK__W_PARK, code, "task_park_as"); }

TASK__DEF int task_sleep(task_sched *s, uint64_t ns) {
    int rc;
    task__task *t = task__arrange(s, "task_sleep", 1, &rc);
    if (!t) return rc;
    if (task__hreserve(s)) return task__err(s, TASK_ENOMEM, "task_sleep: out of memory");
    task__arranged(t, TASK__W_SLEEP);
    task__hinsert(s, ns, s->cur);
    return TASK_OK;
}

TASK__DEF int task_join(task_sched *s, task_id id) {
    int rc;
    task__task *t = task__arrange(s, "task_join", 1, &rc), *x;
    if (!t) return rc;
    if (!(x = task__find(s, id, "task_join"))) return TASK_ENOENT;
    if (x == t) return task__err(s, TASK_EDEADLK, "task_join: a task cannot join itself");
    if (x->state == TASK_EXIT) {
        task__arranged(t, TASK__W_NONE);
        task__wake(s, s->cur, TASK_WHY_WAKE, x->value);
    } else {
        task__arranged(t, TASK__W_JOIN)->link = (uint32_t)id;
        task__l_add(s, &x->joiners, s->cur, TASK__L_JOIN);
    }
    return TASK_OK;
}

/* ---- external ids ------------------------------------------------------
   Before the tick, which drains the cross-thread posts into
   task_ext_resume. */

TASK__DEF int task_ext_alloc(task_sched *s, task_id *out) {
    uint32_t k;
    task__ext *e;
    if (out) *out = 0;
    if (task__pool_alloc(s, &s->exts, &k)) return task__err(s, TASK_ENOMEM, "task_ext_alloc: out of memory");
    e = TASK__EXT(s, k);
    e->waiter = e->resolved = 0;
    e->value = NULL;
    if (out) *out = task__pool_id(&s->exts, TASK__K_EXT, k);
    return TASK_OK;
}

TASK__DEF int task_ext_wait(task_sched *s, task_id ext) {
    int rc;
    task__task *t = task__arrange(s, "task_ext_wait", 1, &rc);
    uint32_t k;
    task__ext *e;
    if (!t) return rc;
    if (!(k = task__pool_find(s, &s->exts, TASK__K_EXT, ext, "task_ext_wait"))) return TASK_ENOENT;
    e = TASK__EXT(s, k);
    if (e->waiter) return task__err(s, TASK_ESTATE, "task_ext_wait: another task waits for this id");
    if (e->resolved) { /* the resume came first: it was kept */
        void *value = e->value;
        task__pool_free(&s->exts, k);
        task__arranged(t, TASK__W_NONE);
        task__wake(s, s->cur, TASK_WHY_WAKE, value);
    } else {
        e->waiter = s->cur;
        task__arranged(t, TASK__W_EXT)->link = k;
    }
    return TASK_OK;
}

TASK__DEF int task_ext_resume(task_sched *s, task_id ext, void *value) {
    uint32_t k = task__pool_find(s, &s->exts, TASK__K_EXT, ext, "task_ext_resume"), w;
    task__ext *e;
    if (!k) return TASK_ENOENT;
    e = TASK__EXT(s, k);
    if (e->resolved) return task__err(s, TASK_ESTATE, "task_ext_resume: id already resumed");
    if ((w = e->waiter) != 0) {
        task__pool_free(&s->exts, k);
        task__wake_done(s, w, value);
        task__ready_check(s);
    } else {
        e->resolved = 1;
        e->value = value;
    }
    return TASK_OK;
}

TASK__DEF int task_ext_release(task_sched *s, task_id ext) {
    uint32_t k = task__pool_find(s, &s->exts, TASK__K_EXT, ext, "task_ext_release");
    if (!k) return TASK_ENOENT;
    if (TASK__EXT(s, k)->waiter) return task__err(s, TASK_ESTATE, "task_ext_release: a task waits for this id");
    task__pool_free(&s->exts, k);
    return TASK_OK;
}

TASK__DEF int task_ext_status(const task_sched *s, task_id ext) {
    uint32_t k = task__pool_find(s, &s->exts, TASK__K_EXT, ext, "task_ext_status");
    return k ? (int)TASK__EXT(s, k)->resolved : (int)TASK_ENOENT;
}

/* A waiter is always live: it frees the id when it stops waiting. */
TASK__DEF int task_ext_waiter(const task_sched *s, task_id ext, task_id *out) {
    uint32_t k = task__pool_find(s, &s->exts, TASK__K_EXT, ext, "task_ext_waiter");
    return task__answer(out, k != 0, k && TASK__EXT(s, k)->waiter ? task__tid(s, TASK__EXT(s, k)->waiter) : 0);
}

/* ---- the scheduler and its tick ---------------------------------------- */

static void *task__default_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    (void)ud; (void)osize;
    if (nsize == 0) { TASK_FREE(ptr); return NULL; }
    return TASK_REALLOC(ptr, nsize);
}

TASK__DEF task_sched *task_create(task_alloc_fn alloc, void *alloc_ud) {
    task_sched *s;
    if (!alloc) alloc = task__default_alloc;
    s = (task_sched *)alloc(alloc_ud, NULL, 0, sizeof *s);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->alloc = alloc;
    s->alloc_ud = alloc_ud;
    s->timers.size = (uint32_t)sizeof(task__timer);
    s->exts.size = (uint32_t)sizeof(task__ext);
    s->tokens.size = (uint32_t)sizeof(task__token);
    s->scopes.size = (uint32_t)sizeof(task__scope);
    s->wake_limit = TASK_WAKE_LIMIT;
#ifdef TASK_THREADS
    if (pthread_mutex_init(&s->post_mu, NULL) != 0) { alloc(alloc_ud, s, sizeof *s, 0); return NULL; }
#endif
    return s;
}

TASK__DEF int task_destroy(task_sched *s) {
    uint32_t i;
    if (!s) return TASK_EINVAL;
    if (s->depth) /* the caller would return into freed memory */
        return task__err(s, TASK_EBUSY, "task_destroy: called from inside a task or callback");
    s->destroying = 1;
    s->obs = 0;         /* no hooks, no statistics: they go with it */
    s->ready_armed = 0;
    s->depth++; /* the steps below are callbacks */
    for (i = 1; i < s->tused; i++) {
        task__task *t = TASK__T(s, i);
        if (t->state == TASK__FREE_STATE || t->state == TASK_EXIT) continue;
        t->flags |= TASK__F_ABORT;
        task__setstate(s, t, TASK_RUN); /* it is the running task meanwhile */
        task__step(s, i, TASK_WHY_ABORT);
        task__setstate(s, t, TASK_EXIT);
    }
    for (i = 0; i < s->npages; i++)
        task__alloc(s, s->pages[i], sizeof(task__task) * TASK__PAGE, 0);
    if (s->pages) task__alloc(s, s->pages, sizeof(task__task *) * s->npages, 0);
    if (s->heap) task__alloc(s, s->heap, sizeof(task__hent) * s->hcap, 0);
    task__pool_destroy(s, &s->timers);
    task__pool_destroy(s, &s->exts);
    task__pool_destroy(s, &s->tokens);
    task__pool_destroy(s, &s->scopes);
    task__stats_free(s);
#ifdef TASK_THREADS
    if (s->post) task__alloc(s, s->post, sizeof *s->post * s->post_cap, 0);
    pthread_mutex_destroy(&s->post_mu);
#endif
    s->alloc(s->alloc_ud, s, sizeof *s, 0); /* not task__alloc: s goes with it */
    return TASK_OK;
}

#ifdef TASK_THREADS
TASK__DEF int task_post_enable(task_sched *s, unsigned capacity, task_wake_fn wake, void *wake_ud) {
    task__post *q;
    if (!capacity || capacity > (1u << 30)) return task__err(s, TASK_EINVAL, "task_post_enable: capacity must be 1..2^30");
    if (s->post) return task__err(s, TASK_ESTATE, "task_post_enable: already enabled");
    q = (task__post *)task__alloc(s, NULL, 0, sizeof *q * capacity);
    if (!q) return task__err(s, TASK_ENOMEM, "task_post_enable: out of memory");
    pthread_mutex_lock(&s->post_mu);
    s->post = q;
    s->post_cap = (uint32_t)capacity;
    s->post_head = s->post_n = 0;
    s->wake = wake;
    s->wake_ud = wake_ud;
    pthread_mutex_unlock(&s->post_mu);
    return TASK_OK;
}

TASK__DEF int task_post_resume(task_sched *s, task_id ext, void *value) {
    task_wake_fn wake;
    void *ud;
    task__post *p;
    if (!s) return TASK_EINVAL;
    pthread_mutex_lock(&s->post_mu);
    if (!s->post) { pthread_mutex_unlock(&s->post_mu); return TASK_EINVAL; }
    if (s->post_n == s->post_cap) { pthread_mutex_unlock(&s->post_mu); return TASK_ENOMEM; }
    p = &s->post[(s->post_head + s->post_n) % s->post_cap];
    p->ext = ext;
    p->value = value;
    s->post_n++;
    wake = s->wake;
    ud = s->wake_ud;
    pthread_mutex_unlock(&s->post_mu);
    if (wake) wake(ud);
    return TASK_OK;
}

/* Tick, first: every post becomes a task_ext_resume (stale ids skipped). */
static void task__post_drain(task_sched *s) {
    pthread_mutex_lock(&s->post_mu);
    while (s->post_n) {
        task__post p = s->post[s->post_head];
        s->post_head = (s->post_head + 1) % s->post_cap;
        s->post_n--;
        (void)task_ext_resume(s, p.ext, p.value);
    }
    pthread_mutex_unlock(&s->post_mu);
}
#endif

/* Tick: every due timer, before anything runs, so nothing that runs can
   make a timer due in this same tick. A sleeping task becomes READY; a
   timer callback is queued on the fired list, in deadline order. */
static void task__collect_timers(task_sched *s) {
    while (s->hn && s->heap[0].when <= s->now) {
        uint32_t ref = s->heap[0].ref;
        task__hremove(s, 0);
        if (ref & TASK__TIMERBIT) {
            uint32_t k = ref & ~TASK__TIMERBIT;
            TASK__TMR(s, k)->state = TASK__TM_FIRED;
            TASK__TMR(s, k)->h.nfree = 0;
            if (s->ftail) TASK__TMR(s, s->ftail)->h.nfree = k; else s->fhead = k;
            s->ftail = k;
        } else {
            task__task *t = TASK__T(s, ref);
            t->wait = TASK__W_NONE;
            t->why = TASK_WHY_TIMER;
            task__ready(s, t, ref);
        }
    }
}

/* Tick: the fired callbacks. Each timer is freed before its callback
   runs (its id is stale there); one cancelled since it was collected was
   retired then and is only recycled here. */
static void task__run_timers(task_sched *s) {
    while (s->fhead) {
        uint32_t k = s->fhead;
        task__timer *tm = TASK__TMR(s, k);
        s->fhead = tm->h.nfree;
        if (!s->fhead) s->ftail = 0;
        if (tm->state == TASK__TM_DEAD) task__recycle(&tm->h.nfree, &s->timers.free, k);
        else {
            task_timer_fn cb = tm->cb;
            void *ud = tm->ud;
            task_id id = task__pool_id(&s->timers, TASK__K_TIMER, k);
            task__pool_free(&s->timers, k);
            cb(s, id, ud);
        }
    }
}

/* Tick: the fairness bound. The batch of tasks READY now runs first; what
   they wake goes to the ready queue, which gets at most wake_limit
   resumes in this tick; tick_limit caps them all. One loop, one call
   site: task__run inlines. */
static unsigned task__run_ready(task_sched *s) {
    unsigned n = 0, stop = s->tick_limit ? s->tick_limit : UINT_MAX, wake_limit = s->wake_limit;
    uint32_t *head = &s->bhead, *tail = &s->btail;
    s->bhead = s->rhead;
    s->btail = s->rtail;
    s->rhead = s->rtail = 0;
    for (;;) {
        if (!*head) {
            if (head == &s->rhead) break;
            if (wake_limit < stop - n) stop = n + wake_limit;
            head = &s->rhead;
            tail = &s->rtail;
            continue;
        }
        if (n == stop) break;
        task__run(s, task__q_pop(s, head, tail));
        n++;
    }
    if (s->bhead) { /* the tick limit stopped it: the rest of the batch goes first next time */
        if (s->rhead) task__q_concat(s, &s->bhead, &s->btail, s->rhead, s->rtail);
        s->rhead = s->bhead;
        s->rtail = s->btail;
        s->bhead = s->btail = 0;
    }
    return n;
}

TASK__DEF int task_tick(task_sched *s, uint64_t now) {
    unsigned n;
    if (s->depth) /* steps only run inside task_tick and task_destroy */
        return task__err(s, TASK_EBUSY, "task_tick: called from inside a task or callback");
    if (now > s->now) s->now = now;
    s->depth += TASK__TICKING; /* what it calls runs inside it */
    if (s->yhead) { /* yielded in the last tick: their turn now */
        task__q_concat(s, &s->rhead, &s->rtail, s->yhead, s->ytail);
        s->yhead = s->ytail = 0;
    }
#ifdef TASK_THREADS
    task__post_drain(s);
#endif
    task__collect_timers(s);
    task__run_timers(s);
    n = task__run_ready(s);
    s->depth -= TASK__TICKING;
    if (s->ready_fn) s->ready_armed = !(s->rhead | s->yhead); /* task__ready_arm, outside the tick */
    return n > INT_MAX ? INT_MAX : (int)n;
}

TASK__DEF uint64_t task_timeout(const task_sched *s, uint64_t now) {
    if (s->rhead || s->yhead || s->bhead) return 0;
#ifdef TASK_THREADS
    {
        task_sched *m = (task_sched *)(uintptr_t)s; /* the mutex is not part of the value */
        uint32_t n;
        pthread_mutex_lock(&m->post_mu);
        n = m->post_n;
        pthread_mutex_unlock(&m->post_mu);
        if (n) return 0;
    }
#endif
    if (!s->hn) return TASK_FOREVER;
    return s->heap[0].when <= now ? 0 : s->heap[0].when - now;
}

TASK__DEF int task_timeout_ms(const task_sched *s, uint64_t now) {
    uint64_t ns = task_timeout(s, now), ms;
    if (ns == TASK_FOREVER) return -1;
    ms = ns / TASK_MSEC + (ns % TASK_MSEC != 0);
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

TASK__DEF uint64_t task_now(const task_sched *s) { return s->now; }
TASK__DEF uint64_t task_next_deadline(const task_sched *s) { return s->hn ? s->heap[0].when : TASK_FOREVER; }
TASK__DEF void task_set_tick_limit(task_sched *s, unsigned max_resumes) { s->tick_limit = max_resumes; }
TASK__DEF void task_set_wake_limit(task_sched *s, unsigned max_resumes) { s->wake_limit = max_resumes; }

/* ---- timers ------------------------------------------------------------ */

TASK__DEF int task_after(task_sched *s, uint64_t ns, task_timer_fn fn, void *ud, task_id *out) {
    uint32_t k;
    task__timer *tm;
    if (out) *out = 0;
    if (!fn) return task__err(s, TASK_EINVAL, "task_after: no callback");
    if (task__hreserve(s) || task__pool_alloc(s, &s->timers, &k))
        return task__err(s, TASK_ENOMEM, "task_after: out of memory");
    tm = TASK__TMR(s, k);
    tm->cb = fn;
    tm->ud = ud;
    tm->state = TASK__TM_ARMED;
    task__hinsert(s, ns, k | TASK__TIMERBIT);
    if (out) *out = task__pool_id(&s->timers, TASK__K_TIMER, k);
    return TASK_OK;
}

TASK__DEF int task_timer_cancel(task_sched *s, task_id id) {
    uint32_t k = task__pool_find(s, &s->timers, TASK__K_TIMER, id, "task_timer_cancel");
    task__timer *tm;
    if (!k) return TASK_ENOENT;
    tm = TASK__TMR(s, k);
    if (tm->state == TASK__TM_ARMED) {
        task__hremove(s, tm->heap);
        task__pool_free(&s->timers, k);
    } else { /* collected in this tick: skipped, recycled when the tick reaches it */
        tm->state = TASK__TM_DEAD;
        task__retire(&tm->h.gen);
    }
    return TASK_OK;
}

/* ---- trace ids ---------------------------------------------------------- */

static uint64_t *task__trace_slot(task_sched *s) {
    return s->cur ? &TASK__T(s, s->cur)->trace : &s->host_trace;
}

TASK__DEF int task_trace_node(task_sched *s, unsigned node) {
    if (node > 0xFFFFu) return task__err(s, TASK_EINVAL, "task_trace_node: node %u is out of range 0..65535", node);
    s->node = node;
    return TASK_OK;
}

TASK__DEF uint64_t task_trace_spawn(task_sched *s) {
    uint64_t *p = task__trace_slot(s), old = *p;
    s->trace_seq = (s->trace_seq + 1) & 0xFFFFu;
    *p = ((uint64_t)s->node << 48) | (((s->now / TASK_SEC) & 0xFFFFu) << 32) |
         ((uint64_t)s->trace_seq << 16) | (uint64_t)s->node;
    return old;
}

TASK__DEF uint64_t task_trace_set(task_sched *s, uint64_t trace) {
    uint64_t *p = task__trace_slot(s), old = *p;
    *p = trace;
    return old;
}

TASK__DEF uint64_t task_trace_propagate(const task_sched *s) {
    uint64_t cur = s->cur ? TASK__T(s, s->cur)->trace : s->host_trace;
    return (cur & ~(uint64_t)0xFFFF) | (uint64_t)s->node;
}

TASK__DEF int task_trace_of(const task_sched *s, task_id id, uint64_t *out) {
    const task__task *t = task__find(s, id, "task_trace_of");
    if (out) *out = t ? t->trace : 0;
    return t ? TASK_OK : TASK_ENOENT;
}

static void task__hex(char *out, uint64_t v, int digits) {
    static const char hex[] = "0123456789abcdef";
    while (digits-- > 0) { out[digits] = hex[v & 0xFu]; v >>= 4; }
}

/* Lowercase hex only (W3C: HEXDIGLC); -1 on any other character. */
static int task__unhex(const char *p, int digits, uint64_t *v) {
    uint64_t r = 0;
    int i;
    for (i = 0; i < digits; i++) {
        char c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a') + 10u;
        else return -1;
        r = (r << 4) | d;
    }
    *v = r;
    return 0;
}

TASK__DEF int task_trace_format(uint64_t trace, char out[TASK_TRACE_HEADER_LEN + 1]) {
    uint64_t root = trace & ~(uint64_t)0xFFFF;
    out[0] = '\0';
    if (root == 0) return TASK_EINVAL;
    memcpy(out, "00-0000000000000000", 19);
    task__hex(out + 19, root, 16);
    out[35] = '-';
    task__hex(out + 36, trace, 16);
    memcpy(out + 52, "-01", 4);   /* and the NUL */
    return TASK_OK;
}

TASK__DEF int task_trace_parse(const char *h, uint64_t *trace, unsigned *flags) {
    size_t n;
    uint64_t ver, hi, lo, parent, fl;
    if (!h || !trace) return TASK_EINVAL;
    while (*h == ' ' || *h == '\t') h++;
    n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    if (n < TASK_TRACE_HEADER_LEN || task__unhex(h, 2, &ver) != 0 || ver == 0xFF) return TASK_EINVAL;
    if (ver == 0 ? n != TASK_TRACE_HEADER_LEN : (n > TASK_TRACE_HEADER_LEN && h[TASK_TRACE_HEADER_LEN] != '-'))
        return TASK_EINVAL;
    if (h[2] != '-' || h[35] != '-' || h[52] != '-') return TASK_EINVAL;
    if (task__unhex(h + 3, 16, &hi) != 0 || task__unhex(h + 19, 16, &lo) != 0 ||
        task__unhex(h + 36, 16, &parent) != 0 || task__unhex(h + 53, 2, &fl) != 0)
        return TASK_EINVAL;
    if ((hi == 0 && lo == 0) || parent == 0) return TASK_EINVAL;
    {
        const uint64_t hop = 0xFFFF;
        uint64_t root = (hi ^ lo) & ~hop;
        if (!root) root = (hi | lo) & ~hop;
        if (!root) root = (hi & hop) << 32 | (lo & hop) << 16; /* not 0: hi or lo is not */
        *trace = root | (parent & hop);
    }
    if (flags) *flags = (unsigned)fl;
    return TASK_OK;
}

/* ---- introspection ------------------------------------------------------ */

/* Whether a step needs task__step_observed, and a spawn task__spawned. */
static void task__observe(task_sched *s) {
    s->obs = (uint8_t)(!s->destroying && (s->hooks.resume || s->hooks.suspend || s->stats_on));
    s->spawn_more = (uint8_t)(s->hooks.create || s->stats_on || s->ready_fn);
}

TASK__DEF task_hooks task_set_hooks(task_sched *s, task_hooks h) {
    task_hooks old = s->hooks;
    s->hooks = h;
    task__observe(s);
    return old;
}

TASK__DEF void task_set_ready_hook(task_sched *s, task_ready_fn fn, void *ud) {
    s->ready_fn = fn;
    s->ready_ud = ud;
    task__ready_arm(s);
    task__observe(s);
}

TASK__DEF int task_enable_stats(task_sched *s, task_clock_fn clock, void *ud) {
    if (!s->stats_on) { /* a page of statistics for each page of tasks, all zero */
        uint32_t k;
        if (task__spages_reserve(s, s->npages))
            return task__err(s, TASK_ENOMEM, "task_enable_stats: out of memory");
        for (k = 0; k < s->npages; k++)
            if (!(s->spages[k] = task__stats_page(s))) {
                while (k--) task__alloc(s, s->spages[k], sizeof(task__stat) * TASK__PAGE, 0);
                task__stats_free(s); /* the array: stats off means nothing allocated */
                return task__err(s, TASK_ENOMEM, "task_enable_stats: out of memory");
            }
        s->stats_on = 1;
    }
    s->clock = clock;
    s->clock_ud = ud;
    task__observe(s);
    return TASK_OK;
}

TASK__DEF const char *task_waits_name(int waits) {
    static const char *const names[] = {"none", "wakeup", "park", "sleep", "join", "ext", "scope"};
    return waits >= 0 && waits <= TASK_WAITS_SCOPE ? names[waits] : "?";
}

TASK__DEF int task_info_of(const task_sched *s, task_id id, task_info *out) {
    const task__task *t = task__find(s, id, "task_info_of");
    task_info r;
    memset(&r, 0, sizeof r);
    if (t) {
        r.state = t->state;
        r.waits = t->wait;
        switch (t->wait) {
        case TASK__W_PARK: r.code = t->link; break;
        case TASK__W_SLEEP: r.deadline = s->heap[t->link].when; break;
        case TASK__W_JOIN: r.target = task__tid(s, t->link); break;
        case TASK__W_EXT: r.target = task__pool_id(&s->exts, TASK__K_EXT, t->link); break;
        case TASK__W_SCOPE: r.target = task__pool_id(&s->scopes, TASK__K_SCOPE, t->link); break;
        default: break;
        }
        r.scope = t->scope ? task__pool_id(&s->scopes, TASK__K_SCOPE, t->scope) : 0;
        r.token = t->token ? task__pool_id(&s->tokens, TASK__K_TOKEN, t->token) : 0;
        r.trace = t->trace;
        if (s->stats_on) {
            const task__stat *st = TASK__ST(s, (uint32_t)id);
            r.stats = 1;
            r.resumes = st->resumes;
            r.busy = st->busy;
            r.longest = st->longest;
            r.spawned = st->spawned;
            r.last_resume = st->last;
        }
    }
    if (out) *out = r;
    return t ? TASK_OK : TASK_ENOENT;
}

TASK__DEF int task_ready_count(const task_sched *s) { return s->count[TASK_READY]; }

TASK__DEF int task_count(const task_sched *s, int state) {
    if (state == -1) return s->count[TASK_RUN] + s->count[TASK_WAIT] + s->count[TASK_READY] + s->count[TASK_SLEEP];
    return state >= 0 && state < TASK_NSTATES ? s->count[state] : 0;
}

/* Slot by slot, up to the slots in use as it starts: fn may spawn (new
   pages; no task moves) or free slots, and a freed slot is simply
   skipped. A task spawned into a new slot is not visited: a callback that
   spawns one task per task it sees would otherwise never reach the end. */
TASK__DEF int task_foreach(task_sched *s, int (*fn)(task_sched *, task_id, int, void *), void *ud) {
    uint32_t i, end = s->tused;
    int r = 0;
    if (!fn) return task__err(s, TASK_EINVAL, "task_foreach: no callback");
    s->depth++;
    for (i = 1; i < end && r == 0; i++) {
        const task__task *t = TASK__T(s, i);
        if (t->state != TASK__FREE_STATE) r = fn(s, task__tid(s, i), t->state, ud);
    }
    s->depth--;
    return r;
}

#endif /* TASK_IMPLEMENTATION */

/*
 * Copyright (c) 2026 the task.h authors
 *
 * Permission is hereby granted, free of charge, to any person obtaining a
 * copy of this software and associated documentation files (the
 * "Software"), to deal in the Software without restriction, including
 * without limitation the rights to use, copy, modify, merge, publish,
 * distribute, sublicense, and/or sell copies of the Software, and to permit
 * persons to whom the Software is furnished to do so, subject to the
 * following conditions:
 *
 * The above copyright notice and this permission notice shall be included
 * in all copies or substantial portions of the Software.
 *
 * THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
 * OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF
 * MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT.
 * IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY
 * CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT,
 * TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE
 * SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
 */
