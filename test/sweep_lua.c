/* sweep_lua.c: the allocation-failure sweep over the Lua test scripts.
 *
 *   sweep_lua [--stride N] [--max-runs M] [--max-seconds S] script.lua ...
 *
 * Runs each script as test/lua_runner.c does (host mode, virtual clock,
 * the same host functions), once to count the allocations the whole run
 * makes (lua_newstate, the libraries, the module, the script, lua_close),
 * then again failing the k-th allocation for k = 1..N (every stride-th k;
 * with --max-runs the stride grows so at most M values of k are tried),
 * twice: failing that one allocation only (Lua's emergency collection
 * often absorbs it: the retry path), and failing it and every later one
 * (the memory error path). --max-seconds bounds the time per script (the
 * line then says where it stopped). Setup runs
 * in protected mode, so a failure anywhere ends in a Lua memory error (or
 * a failed test case inside the script), never a panic. Each run must
 * end and leave zero bytes outstanding (almost every run must reach its
 * k-th allocation: counts vary by a few, Lua seeds its hashes); a sanitizer
 * build makes any memory error fatal. One TAP line per script.
 */
#define _POSIX_C_SOURCE 200809L
#define main lua_runner_main
#include "lua_runner.c"
#undef main
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

typedef struct sw_out { unsigned long calls, failed; size_t bytes; int outcome; } sw_out;
enum { SW_PASSED, SW_ERROR, SW_STUCK };

static void sw_run(const char *path, unsigned long fail_at, int all_after, sw_out *o) {
    test_alloc a;
    task_sched *s;
    lua_State *L;
    uint64_t deadline = mono_ns() + 5 * TASK_SEC;
    long ticks;
    runner_now = 1000 * TASK_SEC; /* the runner's virtual clock (host_advance moves it too) */
    memset(&a, 0, sizeof a);
    a.fail_at = fail_at;
    a.fail_all_after = all_after;
    o->outcome = SW_ERROR;
    s = task_create(test_alloc_fn, &a);
    L = s ? lua_newstate(test_alloc_fn, &a) : NULL;
    if (L) {
        lua_pushcfunction(L, runner_setup_p);
        lua_pushlightuserdata(L, s);
        lua_pushlightuserdata(L, (void *)(uintptr_t)path); /* pushing a string could fail here */
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) lua_pop(L, 1);
        else if (task_lua_spawn(L, 0, NULL) != TASK_OK) lua_pop(L, 1);
        else {
            lua_pop(L, 1);
            o->outcome = SW_PASSED;
            for (ticks = 0; ticks < 200000; ticks++) {
                uint64_t wait;
                if ((ticks & 1023) == 1023 && mono_ns() > deadline) { o->outcome = SW_STUCK; break; }
                if (task_tick(s, runner_now) < 0) { o->outcome = SW_ERROR; break; }
            /* a script that polls in a loop after a failure would spin: a
               run longer than 200000 ticks or 5 s ends as "left waiting" */
                if (task_count(s, -1) == 0) break;
                wait = task_timeout(s, runner_now);
                if (wait == TASK_FOREVER) { o->outcome = SW_STUCK; break; }
                runner_now += wait;
            }
        }
        lua_close(L);
    }
    if (s) {
        if (task_count(s, -1) != 0) o->outcome = SW_STUCK;
        task_destroy(s);
    }
    o->calls = a.calls;
    o->failed = a.failed;
    o->bytes = a.bytes;
}

#if defined(__SANITIZE_ADDRESS__)
#define SW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SW_ASAN 1
#endif
#endif
#ifdef SW_ASAN
void __sanitizer_set_report_fd(void *fd);
#endif

static int quiet_fd = -1, saved_out = -1, saved_err = -1;
static void quiet(int on) {
    fflush(stdout); fflush(stderr);
    if (on) { saved_out = dup(1); saved_err = dup(2); dup2(quiet_fd, 1); dup2(quiet_fd, 2); }
    else { dup2(saved_out, 1); dup2(saved_err, 2); close(saved_out); close(saved_err); }
}

/* A run that takes far longer than the same script without failures is
   stuck in a loop: say which one, then stop (a slow machine only makes
   every run slower, so the limit scales with the script's own time). */
static const char *sw_script;
static unsigned long sw_k;
static unsigned sw_limit;
static void sw_on_alarm(int sig) {
    char msg[512];
    int n;
    (void)sig;
    n = snprintf(msg, sizeof msg, "not ok - sweep %s: the run failing allocation %lu did not end in %u s\n",
                 sw_script, sw_k, sw_limit);
    if (n > 0) { ssize_t w = write(saved_out >= 0 ? saved_out : 1, msg, (size_t)n); (void)w; }
    _exit(1);
}

int main(int argc, char **argv) {
    unsigned long stride = 1, max_runs = 0, total_sites = 0, total_runs = 0;
    double max_seconds = 0;
    int i, bad_scripts = 0, nscripts = 0;
    (void)lua_runner_main;
    quiet_fd = open("/dev/null", O_WRONLY);
    signal(SIGALRM, sw_on_alarm);
#ifdef SW_ASAN
    /* sanitizer reports go to the real stderr even while runs are quiet */
    __sanitizer_set_report_fd((void *)(intptr_t)dup(2));
#endif
    for (i = 1; i < argc; i++) {
        sw_out o;
        unsigned long n, k, st, runs = 0, counts[3] = {0, 0, 0}, cut = 0, missed = 0;
        uint64_t t0;
        int bad = 0;
        if (strcmp(argv[i], "--stride") == 0 && i + 1 < argc) { stride = strtoul(argv[++i], NULL, 0); continue; }
        if (strcmp(argv[i], "--max-runs") == 0 && i + 1 < argc) { max_runs = strtoul(argv[++i], NULL, 0); continue; }
        if (strcmp(argv[i], "--max-seconds") == 0 && i + 1 < argc) { max_seconds = atof(argv[++i]); continue; }
        nscripts++;
        t0 = mono_ns();
        quiet(1);
        sw_run(argv[i], 0, 0, &o);
        quiet(0);
        n = o.calls;
        sw_script = argv[i];
        sw_limit = (unsigned)((double)(mono_ns() - t0) / 1e9 * 20) + 60;
        if (o.bytes) { printf("# %s: %lu bytes leaked without failures\n", argv[i], (unsigned long)o.bytes); bad = 1; }
        st = stride ? stride : 1;
        if (max_runs && n / st > max_runs) st = (n + max_runs - 1) / max_runs;
        t0 = mono_ns();
        for (k = 1; k <= n && !bad; k += st) {
            int all;
            if (max_seconds > 0 && (double)(mono_ns() - t0) / 1e9 > max_seconds) { cut = k; break; }
            for (all = 0; all < 2 && !bad; all++) {
                quiet(1);
                sw_k = k;
                alarm(sw_limit);
                sw_run(argv[i], k, all, &o);
                alarm(0);
                quiet(0);
                runs++;
                counts[o.outcome]++;
                if (o.failed < 1) missed++; /* the run made fewer allocations (Lua seeds its hashes randomly) */
                if (o.bytes) { printf("# %s: k=%lu%s: %lu bytes leaked\n", argv[i], k, all ? " and after" : "", (unsigned long)o.bytes); bad = 1; }
            }
        }
        total_sites += n;
        total_runs += runs;
        bad_scripts += bad;
        printf("%s - sweep %s: %lu allocations, %lu runs failing the k-th allocation, or it and all after (stride %lu): %lu still passed, %lu ended in an error, %lu left tasks waiting\n",
               bad ? "not ok" : "ok", argv[i], n, runs, st, counts[SW_PASSED], counts[SW_ERROR], counts[SW_STUCK]);
        if (missed) printf("# %s: %lu runs ended before their k-th allocation\n", argv[i], missed);
        if (missed > runs / 10) { printf("not ok - sweep %s: too many runs without their failure\n", argv[i]); bad_scripts++; }
        if (cut) printf("# %s: time budget spent, stopped before k=%lu of %lu\n", argv[i], cut, n);
        fflush(stdout);
    }
    printf("# lua sweep: %d scripts, %lu allocation sites, %lu runs\n", nscripts, total_sites, total_runs);
    return bad_scripts ? 1 : 0;
}
