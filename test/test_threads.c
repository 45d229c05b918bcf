/* test_threads.c: cross-thread resume (TASK_THREADS), under ThreadSanitizer.
 *
 * The scheduler thread runs NTASK C tasks, each waiting on an external id;
 * NTHREAD worker threads resume those ids with task_post_resume() (the one
 * thread-safe entry point) in a shuffled order, and every post writes a
 * byte to a pipe (the wake callback), which wakes the host blocked in
 * poll(). Every task must get exactly its own value; a full queue is
 * retried; a post for a stale id is skipped.
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_THREADS
#define TASK_IMPLEMENTATION
#include "../task.h"
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#endif
#include "testlib.h"
#include <pthread.h>
#include <poll.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>

#define NTHREAD 4
#define NTASK 4000

static task_sched *S;
static task_id EXT[NTASK];
static uintptr_t GOT[NTASK];
static int WAKE_PIPE[2];
static int ended;

static void wake(void *ud) {
    char b = 1;
    (void)ud;
    if (write(WAKE_PIPE[1], &b, 1) < 0) { /* full pipe: the host is awake anyway */ }
}

static int waiter(task_ctx *c) {
    uintptr_t i = (uintptr_t)c->ud;
    if (c->why == TASK_WHY_START) return task_ext_wait(c->sched, EXT[i]) == TASK_OK ? TASK_STEP_SUSPEND : TASK_STEP_FAIL;
    if (c->why == TASK_WHY_WAKE) GOT[i] = (uintptr_t)c->value;
    ended++;
    return TASK_STEP_DONE;
}

static void *worker(void *arg) {
    uintptr_t k = (uintptr_t)arg, i;
    unsigned retries = 0;
    for (i = k; i < NTASK; i += NTHREAD) {
        int rc;
        while ((rc = task_post_resume(S, EXT[i], (void *)(i + 1))) == TASK_ENOMEM) {
            struct timespec ts = {0, 100000};
            retries++;
            nanosleep(&ts, NULL);
        }
        if (rc != TASK_OK) return (void *)1;
    }
    (void)retries;
    return NULL;
}

TEST_CASE(threads_resume_external_ids) {
    test_alloc a;
    pthread_t th[NTHREAD];
    uintptr_t i;
    int polls = 0;
    memset(&a, 0, sizeof a);
    S = task_create(test_alloc_fn, &a);
    CHECK(S != NULL);
    CHECK_INT(task_post_resume(S, 1, NULL), TASK_EINVAL); /* not enabled yet */
    CHECK_INT(task_post_enable(S, 64, wake, NULL), TASK_OK);
    CHECK_INT(task_post_enable(S, 64, wake, NULL), TASK_ESTATE);
    for (i = 0; i < NTASK; i++) {
        CHECK_INT(task_ext_alloc(S, &EXT[i]), TASK_OK);
        CHECK_INT(task_spawn(S, waiter, (void *)i, NULL, NULL), TASK_OK);
    }
    task_tick(S, 0);
    CHECK_INT(task_count(S, TASK_WAIT), NTASK);
    for (i = 0; i < NTHREAD; i++) CHECK_INT(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    while (ended < NTASK && polls < 1000000) {
        struct pollfd p;
        char buf[256];
        p.fd = WAKE_PIPE[0];
        p.events = POLLIN;
        p.revents = 0;
        (void)poll(&p, 1, 1000);  /* TASK_FOREVER here: only a post wakes us */
        while (read(WAKE_PIPE[0], buf, sizeof buf) > 0) {}
        task_tick(S, 0);
        polls++;
    }
    for (i = 0; i < NTHREAD; i++) {
        void *r;
        CHECK_INT(pthread_join(th[i], &r), 0);
        CHECK(r == NULL);
    }
    CHECK_INT(ended, NTASK);
    for (i = 0; i < NTASK; i++) if (GOT[i] != i + 1) { TEST__FAIL("task %lu got %lu", (unsigned long)i, (unsigned long)GOT[i]); break; }
    printf("# %d resumes from %d threads in %d host wakeups\n", NTASK, NTHREAD, polls);
    /* a post for a stale id is skipped at the next tick */
    CHECK_INT(task_post_resume(S, EXT[0], NULL), TASK_OK);
    CHECK_U64(task_timeout(S, 0), 0);
    CHECK_INT(task_tick(S, 1), 0);
    CHECK_INT(task_destroy(S), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

TEST_CASE(full_queue_and_destroy_with_posts_pending) {
    test_alloc a;
    task_id e;
    memset(&a, 0, sizeof a);
    S = task_create(test_alloc_fn, &a);
    CHECK_INT(task_post_enable(S, 2, NULL, NULL), TASK_OK);
    CHECK_INT(task_ext_alloc(S, &e), TASK_OK);
    CHECK_INT(task_post_resume(S, e, (void *)1), TASK_OK);
    CHECK_INT(task_post_resume(S, e, (void *)2), TASK_OK);
    CHECK_INT(task_post_resume(S, e, (void *)3), TASK_ENOMEM);
    CHECK_INT(task_tick(S, 0), 0);
    CHECK_INT(task_ext_status(S, e), 1); /* the first resolved it, the second was refused */
    CHECK_INT(task_post_resume(S, e, (void *)4), TASK_OK);
    CHECK_INT(task_destroy(S), TASK_OK); /* pending posts are dropped */
    CHECK_INT(a.bytes, 0);
    memset(&a, 0, sizeof a);
    a.fail_at = 2;
    S = task_create(test_alloc_fn, &a);
    CHECK_INT(task_post_enable(S, 8, NULL, NULL), TASK_ENOMEM);
    CHECK_INT(task_post_resume(S, 1, NULL), TASK_EINVAL);
    CHECK_INT(task_destroy(S), TASK_OK);
    CHECK_INT(a.bytes, 0);
}

int main(void) {
    if (pipe(WAKE_PIPE) != 0) return 2;
    (void)fcntl(WAKE_PIPE[0], F_SETFL, O_NONBLOCK);
    (void)fcntl(WAKE_PIPE[1], F_SETFL, O_NONBLOCK);
    RUN(threads_resume_external_ids);
    RUN(full_queue_and_destroy_with_posts_pending);
    return test_done();
}
