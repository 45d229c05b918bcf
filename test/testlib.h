/* testlib.h: the tests' tiny harness.
 *
 * TAP-style lines ("ok - name" / "not ok - name"), counted by
 * test/run-one and test/summary; CHECK macros that report the expression
 * and its values; and a counting allocator (lua_Alloc / task_alloc_fn
 * shape) that can fail the k-th allocation, so every test can end by
 * checking that zero bytes are outstanding.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

/* Lua 5.5's lua_newstate also takes the seed of the string hashes: the
   tests call it as on 5.4, and get the seed luaL_newstate would use.
   (Included after lua.h, as the Lua tests do.) */
#if defined(LUA_VERSION_NUM) && LUA_VERSION_NUM >= 505
#define lua_newstate(f, ud) (lua_newstate)((f), (ud), luaL_makeseed(NULL))
#endif

typedef struct test_alloc {
    size_t bytes;      /* outstanding */
    size_t peak;
    unsigned long calls;  /* allocations and growths seen */
    unsigned long fail_at; /* fail the fail_at-th allocation (1-based); 0: never */
    unsigned long failed;  /* how many were failed */
    int fail_all_after;    /* once failing, keep failing */
} test_alloc;

static void *test_alloc_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
    test_alloc *a = (test_alloc *)ud;
    if (nsize == 0) {
        if (ptr) a->bytes -= osize;
        free(ptr);
        return NULL;
    }
    if (!ptr) osize = 0; /* lua_Alloc passes a type tag in osize for new blocks */
    if (nsize > osize) {
        a->calls++;
        if (a->fail_at && (a->calls == a->fail_at || (a->fail_all_after && a->calls > a->fail_at))) {
            a->failed++;
            return NULL;
        }
    }
    {
        void *p = realloc(ptr, nsize);
        if (!p) return NULL;
        a->bytes = a->bytes - osize + nsize;
        if (a->bytes > a->peak) a->peak = a->bytes;
        return p;
    }
}

static int test__failed_in_case;
static int test__cases, test__fails;
static const char *test__name;

#define TEST_CASE(name) \
    static void name(void); \
    static void name##_run(void) { test__name = #name; test__failed_in_case = 0; name(); \
        test__cases++; if (test__failed_in_case) { test__fails++; printf("not ok - %s\n", #name); } \
        else printf("ok - %s\n", #name); fflush(stdout); } \
    static void name(void)

#define RUN(name) name##_run()

#define TEST__FAIL(...) do { test__failed_in_case = 1; printf("# %s:%d: ", __FILE__, __LINE__); \
    printf(__VA_ARGS__); printf("\n"); } while (0)

#define CHECK(cond) do { if (!(cond)) TEST__FAIL("CHECK(%s) failed", #cond); } while (0)
#define CHECK_INT(a, b) do { long long test__a = (long long)(a), test__b = (long long)(b); \
    if (test__a != test__b) TEST__FAIL("%s == %lld, expected %s == %lld", #a, test__a, #b, test__b); } while (0)
#define CHECK_U64(a, b) do { unsigned long long test__a = (unsigned long long)(a), test__b = (unsigned long long)(b); \
    if (test__a != test__b) TEST__FAIL("%s == %llu, expected %s == %llu", #a, test__a, #b, test__b); } while (0)
#define CHECK_STR(a, b) do { const char *test__a = (a), *test__b = (b); \
    if (!test__a || !test__b || strcmp(test__a, test__b) != 0) \
        TEST__FAIL("%s == \"%s\", expected \"%s\"", #a, test__a ? test__a : "(null)", test__b ? test__b : "(null)"); } while (0)
#define CHECK_CONTAINS(hay, needle) do { const char *test__h = (hay); \
    if (!test__h || !strstr(test__h, (needle))) \
        TEST__FAIL("%s == \"%s\" does not contain \"%s\"", #hay, test__h ? test__h : "(null)", (needle)); } while (0)

#ifdef TESTLIB_ISOLATED
/* isolated(what, fn, seconds): runs fn in a child process, so a crash or a
   hang (an alarm after seconds) fails that case alone. HOSTILE_NOFORK in
   the environment runs it in place, for a debugger. (POSIX: define
   TESTLIB_ISOLATED before including this file.) */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void isolated(const char *what, void (*fn)(void), unsigned seconds) {
    pid_t pid;
    int status = 0;
    fflush(stdout);
    fflush(stderr);
    if (getenv("HOSTILE_NOFORK")) { fn(); return; } /* for a debugger */
    pid = fork();
    if (pid < 0) { TEST__FAIL("%s: fork failed", what); return; }
    if (pid == 0) {
        alarm(seconds);
        test__failed_in_case = 0;
        fn();
        fflush(stdout);
        fflush(stderr);
        _exit(test__failed_in_case ? 1 : 0);
    }
    if (waitpid(pid, &status, 0) != pid) { TEST__FAIL("%s: waitpid failed", what); return; }
    if (WIFSIGNALED(status)) {
        if (WTERMSIG(status) == SIGALRM) TEST__FAIL("%s: still running after %u s (hung)", what, seconds);
        else TEST__FAIL("%s: crashed with signal %d", what, WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
        TEST__FAIL("%s: failed (exit status %d)", what, WEXITSTATUS(status));
    }
}
#endif

static int test_done(void) {
    printf("# %d cases, %d failed\n", test__cases, test__fails);
    return test__fails ? 1 : 0;
}

#endif
