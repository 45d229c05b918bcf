/* model.h: a reference model of task.h's scheduling rules, driven in
 * lockstep with the real scheduler by random operations.
 *
 * The model keeps plain arrays (O(n) everywhere) of what every task,
 * external id, token and timer should be, and its own ready queue. It runs
 * in the same process as the real scheduler: before task_tick() it
 * collects the due timers itself; then every step function call and every
 * timer callback the real scheduler makes is checked against the model's
 * queue (who runs next, with which why and value), the task does what the
 * random stream says, and the model applies the same effects. After every
 * operation model_verify() compares every id's status, cancellation,
 * token, result, the counts by state, the ready count, the next deadline,
 * the timeout, and checks that stale ids are rejected. task_info_of is
 * checked for every task: what it waits on (kind, target, deadline), its
 * token and trace, and, once a random operation has turned statistics on
 * (without a clock), its resumes and the tick times of its spawn and last
 * resume. The ready hook is set on every seed: it must be called exactly
 * when a host operation makes a task READY while none was, once between
 * two ticks. On odd seeds (the fuzzer's too) resume and suspend hooks
 * check that they bracket every step with what the step did.
 *
 * The fairness bound: the model counts the tasks queued when the first
 * step of a tick runs (the batch) and, once they are done, the resumes of
 * tasks woken during the tick, which may not exceed the wake limit; tasks
 * may be left queued only when the tick limit or that limit stopped the tick.
 *
 * Where the contract does not fix an order (the tasks woken together by
 * one token cancel, or the joiners of one task), the model puts them in a
 * "group" and accepts them in any order; everything else is exact FIFO.
 *
 * Use: model m; model_init(&m, seed); while (...) model_op(&m);
 * model_finish(&m). m.failed is set at the first divergence; m.rnd can be
 * replaced (a fuzzer feeds its input there).
 */
#ifndef TEST_MODEL_H
#define TEST_MODEL_H

#include "task.h"
#include "testlib.h"

#define M_MAXT 40   /* task slots */
#define M_MAXE 12   /* external ids */
#define M_MAXK 10   /* tokens */
#define M_MAXTM 16  /* timers */
#define M_STALE 32  /* stale ids remembered, per kind */

enum { MW_NONE, MW_PLAIN, MW_SLEEP, MW_JOIN, MW_EXT };

typedef struct mtask {
    task_id id;
    int used, state, wait, link; /* link: joined task or ext (model index) */
    uint64_t deadline;
    uint32_t seq;
    int flag_cancel, abort, detached, token; /* token: model index, -1 none */
    int why;                /* expected at the next step */
    uintptr_t value;        /* its wake value, then its result */
    int how;                /* TASK_EXIT_* once ended */
    uint64_t trace;
    uint64_t resumes, spawned, last; /* statistics, counted once m->stats */
} mtask;

typedef struct mext { task_id id; int used, resolved, waiter; uintptr_t value; } mext;
typedef struct mtok { task_id id; int used, parent, cancelled, held; } mtok;
typedef struct mtimer { task_id id; int used, collected; uint64_t deadline; uint32_t seq; } mtimer;
typedef struct mstale { task_id id[M_STALE]; int n; } mstale;

typedef struct model model;
struct model {
    task_sched *s;
    test_alloc A;
    uint64_t rng, now, host_trace;
    uint32_t seq;
    unsigned node, trace_seq;
    mtask t[M_MAXT];
    mext e[M_MAXE];
    mtok k[M_MAXK];
    mtimer tm[M_MAXTM];
    int rq[M_MAXT], rqg[M_MAXT], nrq; /* ready queue and group of each entry */
    int yq[M_MAXT], nyq;              /* yielded: ready at the next tick */
    int fired[M_MAXTM], nfired;       /* timers collected by this tick */
    int group, tick_limit, runs, in_tick, destroying;
    int wake_limit, nbatch, wruns;    /* nbatch: -1 until the tick's first step */
    int cur, arranged, wakenow;       /* the running task, and its step */
    int abort_now;                    /* stepped again at once, aborted */
    mstale st_task, st_ext, st_tok, st_timer;
    long op;
    const char *opname;
    int failed;
    uint32_t (*rnd)(model *m);
    long n_steps, n_fired, n_cancel_wake, n_abort_steps, n_exits[4]; /* statistics */
    long n_limit_stops;                                             /* ticks the wake limit ended */
    int stats;                        /* task_enable_stats(NULL clock) was called */
    int ready_armed, ready_calls, ready_expect; /* the ready hook */
    int hooked;                       /* resume and suspend hooks set */
    task_id hk_cur;                   /* the task between its resume and suspend hooks */
    int hk_did, hk_waits;             /* what the suspend hook must say */
    long n_ready_calls;
};

#define M_FAIL(m, ...) do { if (!(m)->failed) { printf("# model op %ld (%s): ", (m)->op, (m)->opname); \
    printf(__VA_ARGS__); printf("\n"); } (m)->failed = 1; } while (0)
#define M_EXPECT(m, got, want) do { long long m__g = (long long)(got), m__w = (long long)(want); \
    if (m__g != m__w) M_FAIL(m, "%s:%d: %s == %lld, expected %lld", __FILE__, __LINE__, #got, m__g, m__w); } while (0)

/* The queries that answer through an out-pointer, as values. */
static task_id m_token_of(const task_sched *s, task_id t) {
    task_id k = 0;
    (void)task_token_of(s, t, &k);
    return k;
}
static uint64_t m_trace_of(const task_sched *s, task_id t) {
    uint64_t v = 0;
    (void)task_trace_of(s, t, &v);
    return v;
}

static uint32_t model_xorshift(model *m) {
    uint64_t x = m->rng;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    m->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}
static uint32_t rnd(model *m, uint32_t n) { return n ? m->rnd(m) % n : 0; }
static int chance(model *m, unsigned pct) { return rnd(m, 100) < pct; }

static void stale_add(mstale *st, task_id id) { st->id[st->n++ % M_STALE] = id; }
static task_id stale_pick(model *m, mstale *st) {
    int n = st->n < M_STALE ? st->n : M_STALE;
    return n ? st->id[rnd(m, (uint32_t)n)] : (task_id)0;
}

/* ---- model state helpers ---------------------------------------------- */

static int m_cancelled(const model *m, int i) {
    const mtask *t = &m->t[i];
    return t->flag_cancel || (t->token >= 0 && m->k[t->token].cancelled);
}

static int m_live(const mtask *t) { return t->used && t->state != TASK_EXIT; }

static void m_token_gc(model *m) {
    int changed = 1;
    while (changed) {
        int j, i;
        changed = 0;
        for (j = 0; j < M_MAXK; j++) {
            int need;
            if (!m->k[j].used) continue;
            need = m->k[j].held;
            for (i = 0; i < M_MAXT && !need; i++) need = m_live(&m->t[i]) && m->t[i].token == j;
            for (i = 0; i < M_MAXK && !need; i++) need = m->k[i].used && m->k[i].parent == j;
            if (!need) { m->k[j].used = 0; stale_add(&m->st_tok, m->k[j].id); changed = 1; }
        }
    }
}

static void m_free_ext(model *m, int x) { m->e[x].used = 0; stale_add(&m->st_ext, m->e[x].id); }

static void m_free_task(model *m, int i) { m->t[i].used = 0; stale_add(&m->st_task, m->t[i].id); }

static void m_rq_push(model *m, int i, int group) { m->rq[m->nrq] = i; m->rqg[m->nrq] = group; m->nrq++; }

static void m_rq_remove(model *m, int i) {
    int k;
    for (k = 0; k < m->nrq; k++)
        if (m->rq[k] == i) {
            if (m->in_tick && k < m->nbatch) m->nbatch--;
            memmove(&m->rq[k], &m->rq[k + 1], sizeof m->rq[0] * (size_t)(m->nrq - k - 1));
            memmove(&m->rqg[k], &m->rqg[k + 1], sizeof m->rqg[0] * (size_t)(m->nrq - k - 1));
            m->nrq--;
            return;
        }
    for (k = 0; k < m->nyq; k++)
        if (m->yq[k] == i) {
            memmove(&m->yq[k], &m->yq[k + 1], sizeof m->yq[0] * (size_t)(m->nyq - k - 1));
            m->nyq--;
            return;
        }
}

static void m_unwait(model *m, int i) {
    mtask *t = &m->t[i];
    if (t->wait == MW_EXT) m_free_ext(m, t->link); /* the waiter gave up */
    t->wait = MW_NONE;
}

/* Wakes a parked task (or the running one, at the end of its step). */
static void m_wake(model *m, int i, int why, uintptr_t value, int group) {
    mtask *t = &m->t[i];
    m_unwait(m, i);
    t->why = why;
    t->value = value;
    if (t->state == TASK_RUN) m->wakenow = 1;
    else { t->state = TASK_READY; m_rq_push(m, i, group); }
}

static int m_cancellable(const model *m, int i) {
    const mtask *t = &m->t[i];
    if (t->abort) return 0;
    if (t->state == TASK_WAIT || t->state == TASK_SLEEP) return 1;
    return t->state == TASK_RUN && m->arranged && !m->wakenow;
}

static void m_exit(model *m, int i, int how, uintptr_t result) {
    mtask *t = &m->t[i];
    int j, g = ++m->group;
    m_unwait(m, i);
    t->state = TASK_EXIT;
    t->how = how;
    m->n_exits[how]++;
    t->value = result;
    t->token = -1;
    m_token_gc(m);
    for (j = 0; j < M_MAXT; j++)
        if (m->t[j].used && m->t[j].state == TASK_WAIT && m->t[j].wait == MW_JOIN && m->t[j].link == i) {
            m->t[j].wait = MW_NONE;
            m_wake(m, j, TASK_WHY_WAKE, result, g);
        }
    if (t->detached) m_free_task(m, i);
}

static void m_token_cancel(model *m, int j) {
    int g = ++m->group, changed = 1, i;
    static int mark[M_MAXK];
    memset(mark, 0, sizeof mark);
    if (m->k[j].cancelled) return; /* its subtree is cancelled already */
    mark[j] = 1;
    while (changed) { /* the subtree */
        int a;
        changed = 0;
        for (a = 0; a < M_MAXK; a++)
            if (m->k[a].used && !mark[a] && m->k[a].parent >= 0 && mark[m->k[a].parent]) { mark[a] = 1; changed = 1; }
    }
    for (i = 0; i < M_MAXK; i++) if (mark[i]) m->k[i].cancelled = 1;
    for (i = 0; i < M_MAXT; i++)
        if (m_live(&m->t[i]) && m->t[i].token >= 0 && mark[m->t[i].token] && m_cancellable(m, i))
            m_wake(m, i, TASK_WHY_CANCEL, 0, g);
}

/* ---- picking targets --------------------------------------------------- */

static int pick_task(model *m) { /* a used slot, or -1 */
    int k, start = (int)rnd(m, M_MAXT);
    for (k = 0; k < M_MAXT; k++) { int i = (start + k) % M_MAXT; if (m->t[i].used) return i; }
    return -1;
}

/* A task id of any sort: live, ended, stale, foreign or 0. */
static task_id pick_task_id(model *m, int *idx) {
    uint32_t r = rnd(m, 100);
    *idx = -1;
    if (r < 75) { int i = pick_task(m); if (i >= 0) { *idx = i; return m->t[i].id; } }
    if (r < 90) { task_id id = stale_pick(m, &m->st_task); if (id) return id; }
    if (r < 95) { int x; for (x = 0; x < M_MAXE; x++) if (m->e[x].used) return m->e[x].id; }
    return r & 1 ? 0 : (task_id)0x0100FFFF0000FFFFull;
}

static int pick_ext(model *m) {
    int k, start = (int)rnd(m, M_MAXE);
    for (k = 0; k < M_MAXE; k++) { int x = (start + k) % M_MAXE; if (m->e[x].used) return x; }
    return -1;
}

static int pick_tok(model *m) {
    int k, start = (int)rnd(m, M_MAXK);
    for (k = 0; k < M_MAXK; k++) { int x = (start + k) % M_MAXK; if (m->k[x].used) return x; }
    return -1;
}

static int pick_timer(model *m) {
    int k, start = (int)rnd(m, M_MAXTM);
    for (k = 0; k < M_MAXTM; k++) { int x = (start + k) % M_MAXTM; if (m->tm[x].used) return x; }
    return -1;
}

static int count_live(const model *m) {
    int i, n = 0;
    for (i = 0; i < M_MAXT; i++) n += m->t[i].used;
    return n;
}

static uint64_t pick_ns(model *m) {
    switch (rnd(m, 5)) {
    case 0: return 0;
    case 1: return 1 + rnd(m, 999);                     /* sub-microsecond */
    case 2: return 1 + rnd(m, 999999);                  /* sub-millisecond */
    default: return (uint64_t)rnd(m, 20) * TASK_MSEC + rnd(m, 1000);
    }
}

/* ---- operations shared by the host, the tasks and the callbacks -------- */

static int model_step(task_ctx *c);

static void op_spawn(model *m, int in_task) {
    task_opts o;
    task_id id = 0;
    int i, tok = -1, rc;
    for (i = 0; i < M_MAXT && m->t[i].used; i++) {}
    if (i == M_MAXT || count_live(m) > M_MAXT - 6) return;
    memset(&o, 0, sizeof o);
    if (!in_task && chance(m, 40) && (tok = pick_tok(m)) >= 0) o.token = m->k[tok].id;
    if (in_task) tok = m->t[m->cur].token;
    if (chance(m, 20)) o.flags = TASK_DETACHED;
    rc = task_spawn(m->s, model_step, (void *)(uintptr_t)i, &o, &id);
    M_EXPECT(m, rc, TASK_OK);
    if (rc) return;
    memset(&m->t[i], 0, sizeof m->t[i]);
    m->t[i].id = id;
    m->t[i].used = 1;
    m->t[i].state = TASK_READY;
    m->t[i].token = tok;
    m->t[i].detached = o.flags != 0;
    m->t[i].why = TASK_WHY_START;
    m->t[i].trace = in_task ? m->t[m->cur].trace : m->host_trace;
    m->t[i].spawned = m->stats ? m->now : 0;
    m_rq_push(m, i, ++m->group);
}

static void op_wakeup(model *m) {
    int i, want;
    task_id id = pick_task_id(m, &i);
    uintptr_t v = 1 + rnd(m, 1000);
    int unpark = chance(m, 10);
    int rc = unpark ? task_unpark(m->s, id, (void *)v) : task_wakeup(m->s, id, (void *)v);
    if (i < 0) want = TASK_ENOENT;
    else if (m->t[i].state != TASK_WAIT || unpark || m->t[i].wait != MW_PLAIN) want = TASK_ESTATE;
    else want = TASK_OK;
    M_EXPECT(m, rc, want);
    if (rc != TASK_OK) CHECK_CONTAINS(task_errmsg(m->s), unpark ? "task_unpark" : "task_wakeup");
    if (want == TASK_OK) { m->t[i].wait = MW_NONE; m_wake(m, i, TASK_WHY_WAKE, v, ++m->group); }
}

static void op_cancel(model *m, int not_self) {
    int i, rc;
    task_id id = pick_task_id(m, &i);
    if (not_self && i == m->cur) return;
    rc = task_cancel(m->s, id);
    if (i < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    if (m->t[i].state == TASK_EXIT) { M_EXPECT(m, rc, TASK_ESTATE); return; }
    M_EXPECT(m, rc, TASK_OK);
    m->t[i].flag_cancel = 1;
    if (m_cancellable(m, i)) m_wake(m, i, TASK_WHY_CANCEL, 0, ++m->group);
}

static void op_abort(model *m) {
    int i, rc;
    task_id id = pick_task_id(m, &i);
    if (i >= 0 && i == m->cur) return; /* the running task: see A_ABORT_SELF */
    rc = task_abort(m->s, id);
    if (i < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    if (m->t[i].state == TASK_EXIT) { M_EXPECT(m, rc, TASK_ESTATE); return; }
    M_EXPECT(m, rc, TASK_OK);
    if (m->t[i].abort) return;
    m->t[i].abort = 1;
    if (m->t[i].state == TASK_WAIT || m->t[i].state == TASK_SLEEP) {
        m_unwait(m, i);
        m->t[i].state = TASK_READY;
        m_rq_push(m, i, ++m->group);
    }
}

static void op_drop(model *m) {
    int i, rc;
    task_id id = pick_task_id(m, &i);
    rc = task_drop(m->s, id);
    if (i < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    if (i == m->cur) { M_EXPECT(m, rc, TASK_EBUSY); return; }
    M_EXPECT(m, rc, TASK_OK);
    if (m->t[i].state == TASK_READY) m_rq_remove(m, i);
    if (m->t[i].state != TASK_EXIT) m_exit(m, i, TASK_EXIT_ABORT, 0);
    if (m->t[i].used) m_free_task(m, i);
}

static void op_release(model *m) {
    int i, rc;
    task_id id = pick_task_id(m, &i);
    rc = task_release(m->s, id);
    if (i < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    if (m->t[i].detached) { M_EXPECT(m, rc, TASK_ESTATE); return; }
    M_EXPECT(m, rc, TASK_OK);
    if (m->t[i].state == TASK_EXIT) m_free_task(m, i);
    else m->t[i].detached = 1;
}

static void op_ext_resume(model *m) {
    int x = pick_ext(m), rc;
    uintptr_t v = 1 + rnd(m, 1000);
    task_id id = x >= 0 && chance(m, 85) ? m->e[x].id : stale_pick(m, &m->st_ext);
    if (x >= 0 && id != m->e[x].id) x = -1;
    rc = task_ext_resume(m->s, id, (void *)v);
    if (x < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    if (m->e[x].resolved) { M_EXPECT(m, rc, TASK_ESTATE); return; }
    M_EXPECT(m, rc, TASK_OK);
    if (m->e[x].waiter >= 0) {
        int w = m->e[x].waiter;
        m->t[w].wait = MW_NONE;
        m_free_ext(m, x);
        m_wake(m, w, TASK_WHY_WAKE, v, ++m->group);
    } else {
        m->e[x].resolved = 1;
        m->e[x].value = v;
    }
}

static void op_token_cancel(model *m) {
    int j = pick_tok(m), rc;
    task_id id = j >= 0 && chance(m, 90) ? m->k[j].id : stale_pick(m, &m->st_tok);
    if (j >= 0 && id != m->k[j].id) j = -1;
    rc = task_token_cancel(m->s, id);
    if (j < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    M_EXPECT(m, rc, TASK_OK);
    m_token_cancel(m, j);
}

static void op_timer_cancel(model *m) {
    int j = pick_timer(m), rc, k;
    task_id id = j >= 0 && chance(m, 85) ? m->tm[j].id : stale_pick(m, &m->st_timer);
    if (j >= 0 && id != m->tm[j].id) j = -1;
    rc = task_timer_cancel(m->s, id);
    if (j < 0) { M_EXPECT(m, rc, TASK_ENOENT); return; }
    M_EXPECT(m, rc, TASK_OK);
    m->tm[j].used = 0;
    stale_add(&m->st_timer, m->tm[j].id);
    for (k = 0; k < m->nfired; k++)
        if (m->fired[k] == j) {
            memmove(&m->fired[k], &m->fired[k + 1], sizeof m->fired[0] * (size_t)(m->nfired - k - 1));
            m->nfired--;
            break;
        }
}

static void model_timer_cb(task_sched *s, task_id timer, void *ud);

static void op_after(model *m, int short_only) {
    int j, rc;
    uint64_t ns = short_only ? rnd(m, 3) : pick_ns(m);
    task_id id = 0;
    for (j = 0; j < M_MAXTM && m->tm[j].used; j++) {}
    if (j == M_MAXTM) return;
    rc = task_after(m->s, ns, model_timer_cb, (void *)(uintptr_t)j, &id);
    M_EXPECT(m, rc, TASK_OK);
    m->tm[j].used = 1;
    m->tm[j].collected = 0;
    m->tm[j].id = id;
    m->tm[j].deadline = ns > UINT64_MAX - m->now ? UINT64_MAX : m->now + ns;
    m->tm[j].seq = m->seq++;
}

/* Something a task or a callback does besides suspending. */
static void side_action(model *m, int in_task) {
    switch (rnd(m, 8)) {
    case 0: op_wakeup(m); break;
    case 1: op_cancel(m, 0); break;
    case 2: op_ext_resume(m); break;
    case 3: op_spawn(m, in_task); break;
    case 4: op_abort(m); break;
    case 5: op_drop(m); break;
    case 6: op_token_cancel(m); break;
    default: if (in_task) op_after(m, 0); else op_timer_cancel(m); break;
    }
}

/* ---- the task: its step function --------------------------------------- */

enum { A_DONE, A_FAIL, A_YIELD, A_SLEEP, A_WAIT, A_NOTHING, A_EXT, A_JOIN, A_ABORT_SELF, A_SLEEP_CANCEL, A_N };
static const unsigned action_weight[A_N] = {10, 4, 14, 20, 14, 4, 10, 10, 3, 3};

static model *the_model;

/* The model's wait kinds as task_info_of names them. */
static int m_waits(int w) {
    switch (w) {
    case MW_PLAIN: return TASK_WAITS_WAKEUP;
    case MW_SLEEP: return TASK_WAITS_SLEEP;
    case MW_JOIN: return TASK_WAITS_JOIN;
    case MW_EXT: return TASK_WAITS_EXT;
    default: return TASK_WAITS_NONE;
    }
}

static int m_refused(model *m, int i, int rc, int want, const char *fn) {
    M_EXPECT(m, rc, want);
    if (rc != TASK_OK) CHECK_CONTAINS(task_errmsg(m->s), fn);
    (void)i;
    return rc != TASK_OK;
}

/* The end of a step: the state the real scheduler gives the task. */
static int m_return(model *m, int i, int code) {
    mtask *t = &m->t[i];
    int g;
    m->hk_did = TASK_DID_END;
    m->hk_waits = TASK_WAITS_NONE;
    if (m->abort_now == i) { m->cur = -1; return code; } /* the abort step follows at once */
    switch (code) {
    case TASK_STEP_DONE: case TASK_STEP_FAIL:
        if (code == TASK_STEP_DONE || chance(m, 50)) {
            uintptr_t r = 1 + rnd(m, 1000);
            M_EXPECT(m, task_set_result(m->s, (void *)r), TASK_OK);
            m_exit(m, i, code == TASK_STEP_DONE ? TASK_EXIT_DONE : TASK_EXIT_FAIL, r);
        } else m_exit(m, i, TASK_EXIT_FAIL, 0);
        break;
    case TASK_STEP_YIELD:
        t->state = TASK_READY;
        t->why = TASK_WHY_YIELD;
        m->yq[m->nyq++] = i;
        m->hk_did = TASK_DID_YIELD;
        break;
    default: /* TASK_STEP_SUSPEND */
        if (!m->arranged && !m->wakenow) {
            if (m_cancelled(m, i)) { m->wakenow = 1; t->why = TASK_WHY_CANCEL; t->value = 0; }
            else t->wait = MW_PLAIN;
        }
        m->hk_did = TASK_DID_PARK;
        if (m->wakenow) { t->state = TASK_READY; g = ++m->group; m_rq_push(m, i, g); }
        else {
            t->state = t->wait == MW_SLEEP ? TASK_SLEEP : TASK_WAIT;
            m->hk_waits = m_waits(t->wait);
        }
        break;
    }
    m->cur = -1;
    return code;
}

static int model_step(task_ctx *c) {
    model *m = the_model;
    int i = (int)(uintptr_t)c->ud, k, a;
    mtask *t = &m->t[i];
    uint32_t r;
    if (m->destroying) {
        M_EXPECT(m, c->why, TASK_WHY_ABORT);
        M_EXPECT(m, task_status(c->sched, c->self), TASK_RUN);
        return TASK_STEP_DONE;
    }
    if (m->failed) return TASK_STEP_DONE;
    if (!t->used || t->id != c->self) { M_FAIL(m, "stepped an unknown task %llx", (unsigned long long)c->self); return TASK_STEP_DONE; }
    if (m->abort_now == i) {
        M_EXPECT(m, c->why, TASK_WHY_ABORT);
    } else {
        /* it must be in the head group of the ready queue */
        int found = -1;
        if (m->nbatch < 0) m->nbatch = m->nrq;
        for (k = 0; k < m->nrq && m->rqg[k] == m->rqg[0]; k++) if (m->rq[k] == i) { found = k; break; }
        if (found < 0) {
            M_FAIL(m, "stepped task slot %d, expected slot %d (queue of %d)", i, m->nrq ? m->rq[0] : -1, m->nrq);
            return TASK_STEP_DONE;
        }
        if (found < m->nbatch) m->nbatch--;
        else if (++m->wruns > m->wake_limit) M_FAIL(m, "%d resumes of woken tasks, the limit is %d", m->wruns, m->wake_limit);
        if (m->tick_limit && m->runs >= m->tick_limit) M_FAIL(m, "more than %d resumes in a tick", m->tick_limit);
        memmove(&m->rq[found], &m->rq[found + 1], sizeof m->rq[0] * (size_t)(m->nrq - found - 1));
        memmove(&m->rqg[found], &m->rqg[found + 1], sizeof m->rqg[0] * (size_t)(m->nrq - found - 1));
        m->nrq--;
        m->runs++;
        M_EXPECT(m, c->why, t->abort ? TASK_WHY_ABORT : t->why);
        M_EXPECT(m, (uintptr_t)c->value, t->value);
    }
    M_EXPECT(m, task_status(c->sched, c->self), TASK_RUN);
    M_EXPECT(m, task_count(c->sched, TASK_RUN), 1);
    if (m->hooked) M_EXPECT(m, m->hk_cur, c->self); /* its resume hook ran */
    if (m->stats) { t->resumes++; t->last = m->now; }
    m->n_steps++;
    if (c->why == TASK_WHY_CANCEL) m->n_cancel_wake++;
    if (c->why == TASK_WHY_ABORT) m->n_abort_steps++;
    t->state = TASK_RUN;
    t->value = 0;
    m->cur = i;
    m->arranged = m->wakenow = 0;
    if (c->why == TASK_WHY_ABORT) {
        int rc = task_wait(c->sched);
        M_EXPECT(m, rc, TASK_ESTATE);
        m->abort_now = -1;
        if (chance(m, 50)) {
            uintptr_t v = 1 + rnd(m, 1000);
            M_EXPECT(m, task_set_result(c->sched, (void *)v), TASK_OK);
            m_exit(m, i, TASK_EXIT_ABORT, v);
        } else m_exit(m, i, TASK_EXIT_ABORT, 0);
        m->cur = -1;
        m->hk_did = TASK_DID_END;
        m->hk_waits = TASK_WAITS_NONE;
        return TASK_STEP_DONE;
    }
    /* trace: its own, inherited; sometimes a new root */
    M_EXPECT(m, m_trace_of(c->sched, c->self), t->trace);
    if (chance(m, 5)) {
        uint64_t old = task_trace_spawn(c->sched);
        M_EXPECT(m, old, t->trace);
        m->trace_seq = (m->trace_seq + 1) & 0xFFFFu;
        t->trace = ((uint64_t)m->node << 48) | (((m->now / TASK_SEC) & 0xFFFFu) << 32) |
                   ((uint64_t)m->trace_seq << 16) | m->node;
        M_EXPECT(m, m_trace_of(c->sched, c->self), t->trace);
    }
    if (chance(m, 30)) side_action(m, 1);
    if (!t->used || t->state != TASK_RUN) { M_FAIL(m, "the running task changed state"); return TASK_STEP_DONE; }
    /* the main action */
    r = rnd(m, 92);
    for (a = 0; a < A_N - 1 && r >= action_weight[a]; a++) r -= action_weight[a];
    switch (a) {
    case A_DONE: return m_return(m, i, TASK_STEP_DONE);
    case A_FAIL: return m_return(m, i, TASK_STEP_FAIL);
    case A_YIELD: return m_return(m, i, TASK_STEP_YIELD);
    case A_NOTHING: return m_return(m, i, TASK_STEP_SUSPEND);
    case A_SLEEP: case A_SLEEP_CANCEL: {
        uint64_t ns = pick_ns(m);
        int rc = task_sleep(c->sched, ns);
        if (m_refused(m, i, rc, m_cancelled(m, i) ? TASK_ECANCELED : TASK_OK, "task_sleep")) return m_return(m, i, TASK_STEP_FAIL);
        m->arranged = 1;
        t->wait = MW_SLEEP;
        t->deadline = ns > UINT64_MAX - m->now ? UINT64_MAX : m->now + ns;
        t->seq = m->seq++;
        if (a == A_SLEEP_CANCEL) { /* cancelled after arranging: woken at once */
            M_EXPECT(m, task_cancel(c->sched, c->self), TASK_OK);
            t->flag_cancel = 1;
            m_wake(m, i, TASK_WHY_CANCEL, 0, 0);
        }
        return m_return(m, i, TASK_STEP_SUSPEND);
    }
    case A_WAIT: {
        int rc = task_wait(c->sched);
        if (m_refused(m, i, rc, m_cancelled(m, i) ? TASK_ECANCELED : TASK_OK, "task_wait")) return m_return(m, i, TASK_STEP_FAIL);
        m->arranged = 1;
        t->wait = MW_PLAIN;
        return m_return(m, i, TASK_STEP_SUSPEND);
    }
    case A_EXT: {
        int x = pick_ext(m), rc, want;
        task_id id;
        if (x >= 0 && m->e[x].waiter >= 0 && chance(m, 70)) x = pick_ext(m);
        id = x >= 0 && chance(m, 90) ? m->e[x].id : stale_pick(m, &m->st_ext);
        if (x >= 0 && id != m->e[x].id) x = -1;
        rc = task_ext_wait(c->sched, id);
        if (m_cancelled(m, i)) want = TASK_ECANCELED;
        else if (x < 0) want = TASK_ENOENT;
        else if (m->e[x].waiter >= 0) want = TASK_ESTATE;
        else want = TASK_OK;
        if (m_refused(m, i, rc, want, "task_ext_wait")) return m_return(m, i, TASK_STEP_FAIL);
        m->arranged = 1;
        if (m->e[x].resolved) {
            uintptr_t v = m->e[x].value;
            m_free_ext(m, x);
            m->wakenow = 1;
            t->why = TASK_WHY_WAKE;
            t->value = v;
        } else {
            m->e[x].waiter = i;
            t->wait = MW_EXT;
            t->link = x;
        }
        return m_return(m, i, TASK_STEP_SUSPEND);
    }
    case A_JOIN: {
        int j, rc, want;
        task_id id = pick_task_id(m, &j);
        rc = task_join(c->sched, id);
        if (m_cancelled(m, i)) want = TASK_ECANCELED;
        else if (j < 0) want = TASK_ENOENT;
        else if (j == i) want = TASK_EDEADLK;
        else want = TASK_OK;
        if (m_refused(m, i, rc, want, "task_join")) return m_return(m, i, TASK_STEP_FAIL);
        m->arranged = 1;
        if (m->t[j].state == TASK_EXIT) {
            m->wakenow = 1;
            t->why = TASK_WHY_WAKE;
            t->value = m->t[j].value;
        } else {
            t->wait = MW_JOIN;
            t->link = j;
        }
        return m_return(m, i, TASK_STEP_SUSPEND);
    }
    default: { /* A_ABORT_SELF: what it arranged is undone, then one abort step */
        if (!m_cancelled(m, i) && chance(m, 50)) {
            M_EXPECT(m, task_sleep(c->sched, 5), TASK_OK);
            m->seq++;
        }
        M_EXPECT(m, task_abort(c->sched, c->self), TASK_OK);
        t->abort = 1;
        t->wait = MW_NONE;
        m->abort_now = i;
        t->value = 0;
        return m_return(m, i, chance(m, 50) ? TASK_STEP_YIELD : TASK_STEP_SUSPEND);
    }
    }
}

/* ---- timers ------------------------------------------------------------ */

static void model_timer_cb(task_sched *s, task_id timer, void *ud) {
    model *m = the_model;
    int j = (int)(uintptr_t)ud;
    if (m->failed) return;
    if (!m->nfired || m->fired[0] != j) {
        M_FAIL(m, "timer slot %d fired, expected %d", j, m->nfired ? m->fired[0] : -1);
        return;
    }
    memmove(&m->fired[0], &m->fired[1], sizeof m->fired[0] * (size_t)(m->nfired - 1));
    m->nfired--;
    M_EXPECT(m, timer, m->tm[j].id);
    if (task_now(s) < m->tm[j].deadline) M_FAIL(m, "timer fired early");
    M_EXPECT(m, task_self(s), 0);
    m->tm[j].used = 0;
    m->n_fired++;
    stale_add(&m->st_timer, m->tm[j].id);
    if (chance(m, 30)) op_after(m, 1); /* 0..2 ns: never in this tick */
    if (chance(m, 40)) side_action(m, 0);
}

/* ---- the tick ------------------------------------------------------------ */

static void m_tick(model *m, uint64_t now) {
    int k, n;
    if (now > m->now) m->now = now;
    for (k = 0; k < m->nyq; k++) m_rq_push(m, m->yq[k], ++m->group);
    m->nyq = 0;
    m->nfired = 0;
    for (;;) { /* collect every due timer, in (deadline, seq) order */
        int bt = -1, bm = -1, i;
        uint64_t bd = 0;
        uint32_t bs = 0;
        for (i = 0; i < M_MAXT; i++) {
            mtask *t = &m->t[i];
            if (t->used && t->state == TASK_SLEEP && t->deadline <= m->now &&
                (bt < 0 && bm < 0 ? 1 : (t->deadline < bd || (t->deadline == bd && (int32_t)(t->seq - bs) < 0)))) {
                bt = i; bm = -1; bd = t->deadline; bs = t->seq;
            }
        }
        for (i = 0; i < M_MAXTM; i++) {
            mtimer *x = &m->tm[i];
            if (x->used && !x->collected && x->deadline <= m->now &&
                (bt < 0 && bm < 0 ? 1 : (x->deadline < bd || (x->deadline == bd && (int32_t)(x->seq - bs) < 0)))) {
                bm = i; bt = -1; bd = x->deadline; bs = x->seq;
            }
        }
        if (bt >= 0) {
            m->t[bt].wait = MW_NONE;
            m->t[bt].state = TASK_READY;
            m->t[bt].why = TASK_WHY_TIMER;
            m->t[bt].value = 0;
            m_rq_push(m, bt, ++m->group);
        } else if (bm >= 0) {
            m->tm[bm].collected = 1;
            m->fired[m->nfired++] = bm;
        } else break;
    }
    m->runs = m->wruns = 0;
    m->nbatch = -1;
    m->in_tick = 1;
    n = task_tick(m->s, now);
    m->in_tick = 0;
    if (m->failed) return;
    M_EXPECT(m, m->nfired, 0);
    M_EXPECT(m, n, m->runs);
    m->ready_armed = m->nrq == 0 && m->nyq == 0;
    /* whatever is left was stopped by the tick limit or by the wake limit */
    if (m->nrq && !(m->tick_limit && n == m->tick_limit)) m->n_limit_stops++;
    if (m->nrq && !(m->tick_limit && n == m->tick_limit) && !(m->nbatch == 0 && m->wruns == m->wake_limit))
        M_FAIL(m, "%d tasks left READY after %d resumes (tick limit %d, %d woken, limit %d)", m->nrq, n, m->tick_limit,
               m->wruns, m->wake_limit);
}

/* ---- hooks ---------------------------------------------------------------- */

static void model_resume(task_sched *s, task_id t, void *ud) {
    model *m = (model *)ud;
    if (m->destroying) { M_FAIL(m, "resume hook inside task_destroy"); return; }
    M_EXPECT(m, m->hk_cur, 0);
    M_EXPECT(m, task_status(s, t), TASK_RUN);
    M_EXPECT(m, task_self(s), 0);
    m->hk_cur = t;
}

static void model_suspend(task_sched *s, task_id t, int did, int waits, void *ud) {
    model *m = (model *)ud;
    if (m->destroying) { M_FAIL(m, "suspend hook inside task_destroy"); return; }
    if (m->failed) return;
    M_EXPECT(m, t, m->hk_cur);
    M_EXPECT(m, task_status(s, t), TASK_RUN);
    M_EXPECT(m, did, m->hk_did);
    M_EXPECT(m, waits, m->hk_waits);
    m->hk_cur = 0;
}

static void model_ready(task_sched *s, void *ud) {
    model *m = (model *)ud;
    m->ready_calls++;
    m->n_ready_calls++;
    if (m->in_tick || m->destroying) M_FAIL(m, "ready hook inside %s", m->in_tick ? "task_tick" : "task_destroy");
    M_EXPECT(m, task_timeout(s, m->now), 0);
}

/* After a host operation: the ready hook, if armed and a task is READY. */
static void m_ready_after_op(model *m) {
    if (m->ready_armed && m->nrq > 0) { m->ready_expect++; m->ready_armed = 0; }
    M_EXPECT(m, m->ready_calls, m->ready_expect);
}

/* ---- checks -------------------------------------------------------------- */

static void model_verify(model *m) {
    int i, cnt[TASK_NSTATES] = {0};
    uint64_t next = TASK_FOREVER, to;
    task_sched *s = m->s;
    for (i = 0; i < M_MAXT; i++) {
        mtask *t = &m->t[i];
        if (!t->used) continue;
        cnt[t->state]++;
        M_EXPECT(m, task_status(s, t->id), t->state);
        M_EXPECT(m, task_cancelled(s, t->id), m_cancelled(m, i));
        M_EXPECT(m, m_token_of(s, t->id), t->token >= 0 ? m->k[t->token].id : 0);
        M_EXPECT(m, m_trace_of(s, t->id), t->trace);
        {
            task_info in;
            M_EXPECT(m, task_info_of(s, t->id, &in), TASK_OK);
            M_EXPECT(m, in.state, t->state);
            M_EXPECT(m, in.waits, m_waits(t->wait));
            M_EXPECT(m, in.target, t->wait == MW_JOIN ? m->t[t->link].id : t->wait == MW_EXT ? m->e[t->link].id : 0);
            M_EXPECT(m, in.deadline, t->wait == MW_SLEEP ? t->deadline : 0);
            M_EXPECT(m, in.code, 0);
            M_EXPECT(m, in.scope, 0);
            M_EXPECT(m, in.token, t->token >= 0 ? m->k[t->token].id : 0);
            M_EXPECT(m, in.trace, t->trace);
            M_EXPECT(m, in.stats, m->stats);
            M_EXPECT(m, in.resumes, t->resumes);
            M_EXPECT(m, in.busy, 0);
            M_EXPECT(m, in.longest, 0);
            M_EXPECT(m, in.spawned, t->spawned);
            M_EXPECT(m, in.last_resume, t->last);
        }
        if (t->state == TASK_EXIT) {
            void *v = NULL;
            int how = 0;
            M_EXPECT(m, task_result(s, t->id, &how, &v), TASK_OK);
            M_EXPECT(m, how, t->how);
            M_EXPECT(m, (uintptr_t)v, t->value);
        } else M_EXPECT(m, task_result(s, t->id, NULL, NULL), TASK_ESTATE);
        if (t->state == TASK_SLEEP && t->deadline < next) next = t->deadline;
    }
    for (i = 0; i < M_MAXTM; i++) if (m->tm[i].used && m->tm[i].deadline < next) next = m->tm[i].deadline;
    for (i = 0; i < TASK_NSTATES; i++) M_EXPECT(m, task_count(s, i), cnt[i]);
    M_EXPECT(m, task_count(s, -1), cnt[0] + cnt[1] + cnt[2] + cnt[3]);
    M_EXPECT(m, task_ready_count(s), cnt[TASK_READY]);
    M_EXPECT(m, cnt[TASK_READY], m->nrq + m->nyq);
    M_EXPECT(m, task_next_deadline(s), next);
    to = m->nrq || m->nyq ? 0 : next == TASK_FOREVER ? TASK_FOREVER : next <= m->now ? 0 : next - m->now;
    M_EXPECT(m, task_timeout(s, m->now), to);
    M_EXPECT(m, task_now(s), m->now);
    for (i = 0; i < M_MAXE; i++)
        if (m->e[i].used) M_EXPECT(m, task_ext_status(s, m->e[i].id), m->e[i].resolved);
    for (i = 0; i < M_MAXK; i++)
        if (m->k[i].used) M_EXPECT(m, task_token_cancelled(s, m->k[i].id), m->k[i].cancelled);
    for (i = 0; i < M_STALE; i++) {
        if (i < m->st_task.n) M_EXPECT(m, task_status(s, m->st_task.id[i]), TASK_ENOENT);
        if (i < m->st_ext.n) M_EXPECT(m, task_ext_status(s, m->st_ext.id[i]), TASK_ENOENT);
        if (i < m->st_tok.n) M_EXPECT(m, task_token_cancelled(s, m->st_tok.id[i]), TASK_ENOENT);
    }
}

/* Stale and foreign ids, to every function that takes one: refused,
   nothing changes (model_verify runs next). */
static void op_stale(model *m) {
    task_sched *s = m->s;
    task_id t = stale_pick(m, &m->st_task), x = stale_pick(m, &m->st_ext), k = stale_pick(m, &m->st_tok),
            tm = stale_pick(m, &m->st_timer), out;
    int j;
    if (t) {
        M_EXPECT(m, task_wakeup(s, t, NULL), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_wakeup");
        M_EXPECT(m, task_unpark(s, t, NULL), TASK_ENOENT);
        M_EXPECT(m, task_cancel(s, t), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_cancel");
        M_EXPECT(m, task_abort(s, t), TASK_ENOENT);
        M_EXPECT(m, task_drop(s, t), TASK_ENOENT);
        M_EXPECT(m, task_release(s, t), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_release");
        M_EXPECT(m, task_cancelled(s, t), TASK_ENOENT);
        M_EXPECT(m, task_result(s, t, NULL, NULL), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_result");
        M_EXPECT(m, task_token_of(s, t, &out), TASK_ENOENT);
        M_EXPECT(m, out, 0);
        M_EXPECT(m, task_trace_of(s, t, NULL), TASK_ENOENT);
        M_EXPECT(m, task_userdata(s, t, NULL), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_userdata");
        M_EXPECT(m, task_ext_status(s, t), TASK_ENOENT);   /* foreign kind */
        M_EXPECT(m, task_timer_cancel(s, t), TASK_ENOENT);
        M_EXPECT(m, task_token_cancel(s, t), TASK_ENOENT);
    }
    if (x) {
        M_EXPECT(m, task_ext_resume(s, x, NULL), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_ext_resume");
        M_EXPECT(m, task_ext_release(s, x), TASK_ENOENT);
        M_EXPECT(m, task_status(s, x), TASK_ENOENT);
    }
    if (k) {
        M_EXPECT(m, task_token_cancel(s, k), TASK_ENOENT);
        M_EXPECT(m, task_token_release(s, k), TASK_ENOENT);
        M_EXPECT(m, task_token_new(s, k, &out), TASK_ENOENT);
    }
    if (tm) {
        M_EXPECT(m, task_timer_cancel(s, tm), TASK_ENOENT);
        CHECK_CONTAINS(task_errmsg(s), "task_timer_cancel");
        M_EXPECT(m, task_wakeup(s, tm, NULL), TASK_ENOENT);
    }
    /* live ids of the wrong kind */
    if ((j = pick_timer(m)) >= 0) {
        M_EXPECT(m, task_cancel(s, m->tm[j].id), TASK_ENOENT);
        M_EXPECT(m, task_ext_resume(s, m->tm[j].id, NULL), TASK_ENOENT);
    }
    if ((j = pick_task(m)) >= 0) {
        M_EXPECT(m, task_timer_cancel(s, m->t[j].id), TASK_ENOENT);
        M_EXPECT(m, task_ext_release(s, m->t[j].id), TASK_ENOENT);
        M_EXPECT(m, task_token_release(s, m->t[j].id), TASK_ENOENT);
    }
    if ((j = pick_tok(m)) >= 0) M_EXPECT(m, task_abort(s, m->k[j].id), TASK_ENOENT);
}

/* ---- the driver -------------------------------------------------------- */

static void model_init(model *m, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    m->rnd = model_xorshift;
    m->cur = m->abort_now = -1;
    m->wake_limit = TASK_WAKE_LIMIT;
    m->s = task_create(test_alloc_fn, &m->A);
    if (!m->s) { m->failed = 1; printf("# task_create failed\n"); }
    the_model = m;
    if (m->s) {
        task_set_ready_hook(m->s, model_ready, m);
        m->ready_armed = 1;
        if (seed & 1) {
            task_hooks h;
            memset(&h, 0, sizeof h);
            h.resume = model_resume;
            h.suspend = model_suspend;
            h.ud = m;
            task_set_hooks(m->s, h);
            m->hooked = 1;
        }
    }
}

static void model_op(model *m) {
    uint32_t r = rnd(m, 100);
    int j, rc;
    m->op++;
    if (count_live(m) < 4) r = 0;
    if (r < 14) { m->opname = "spawn"; op_spawn(m, 0); }
    else if (r < 30) {
        uint64_t now = m->now, next = task_next_deadline(m->s);
        m->opname = "tick";
        switch (rnd(m, 6)) {
        case 0: break;
        case 1: now += 1; break;
        case 2: now += rnd(m, 2000000); break;
        case 3: now += rnd(m, 30) * TASK_MSEC; break;
        case 4: if (next != TASK_FOREVER && next > now) now = next; break;
        default: if (next != TASK_FOREVER && next > now + 1) now = next - 1; break;
        }
        m_tick(m, now);
    }
    else if (r < 38) { m->opname = "wakeup"; op_wakeup(m); }
    else if (r < 42) {
        m->opname = "ext_alloc";
        for (j = 0; j < M_MAXE && m->e[j].used; j++) {}
        if (j < M_MAXE) {
            rc = task_ext_alloc(m->s, &m->e[j].id);
            M_EXPECT(m, rc, TASK_OK);
            m->e[j].used = 1;
            m->e[j].resolved = 0;
            m->e[j].waiter = -1;
        }
    }
    else if (r < 49) { m->opname = "ext_resume"; op_ext_resume(m); }
    else if (r < 51) {
        m->opname = "ext_release";
        if ((j = pick_ext(m)) >= 0) {
            rc = task_ext_release(m->s, m->e[j].id);
            M_EXPECT(m, rc, m->e[j].waiter >= 0 ? TASK_ESTATE : TASK_OK);
            if (rc == TASK_OK) m_free_ext(m, j);
        }
    }
    else if (r < 56) { m->opname = "cancel"; op_cancel(m, 0); }
    else if (r < 60) { m->opname = "abort"; op_abort(m); }
    else if (r < 62) { m->opname = "drop"; op_drop(m); }
    else if (r < 66) {
        m->opname = "token_new";
        for (j = 0; j < M_MAXK && m->k[j].used; j++) {}
        if (j < M_MAXK) {
            int p = chance(m, 60) ? pick_tok(m) : -1;
            rc = task_token_new(m->s, p >= 0 ? m->k[p].id : 0, &m->k[j].id);
            M_EXPECT(m, rc, TASK_OK);
            m->k[j].used = 1;
            m->k[j].held = 1;
            m->k[j].parent = p;
            m->k[j].cancelled = p >= 0 ? m->k[p].cancelled : 0;
        }
    }
    else if (r < 69) { m->opname = "token_cancel"; op_token_cancel(m); }
    else if (r < 72) {
        m->opname = "token_release";
        if ((j = pick_tok(m)) >= 0) {
            rc = task_token_release(m->s, m->k[j].id);
            M_EXPECT(m, rc, m->k[j].held ? TASK_OK : TASK_ESTATE);
            m->k[j].held = 0;
            m_token_gc(m);
        }
    }
    else if (r < 78) { m->opname = "release"; op_release(m); }
    else if (r < 84) { m->opname = "after"; op_after(m, 0); }
    else if (r < 87) { m->opname = "timer_cancel"; op_timer_cancel(m); }
    else if (r < 89) {
        if (chance(m, 50)) {
            m->opname = "tick_limit";
            m->tick_limit = chance(m, 50) ? 0 : (int)(1 + rnd(m, 3));
            task_set_tick_limit(m->s, (unsigned)m->tick_limit);
        } else {
            m->opname = "wake_limit";
            m->wake_limit = chance(m, 40) ? TASK_WAKE_LIMIT : (int)rnd(m, 4);
            task_set_wake_limit(m->s, (unsigned)m->wake_limit);
        }
    }
    else if (r < 91 && !m->stats && chance(m, 3)) {
        int i;
        m->opname = "stats";
        M_EXPECT(m, task_enable_stats(m->s, NULL, NULL), TASK_OK);
        m->stats = 1;
        for (i = 0; i < M_MAXT; i++) m->t[i].resumes = m->t[i].spawned = m->t[i].last = 0;
    }
    else if (r < 91) {
        m->opname = "trace";
        if (chance(m, 50)) {
            m->node = rnd(m, 65536);
            M_EXPECT(m, task_trace_node(m->s, m->node), TASK_OK);
        } else {
            uint64_t v = ((uint64_t)m->rnd(m) << 32) | m->rnd(m);
            M_EXPECT(m, task_trace_set(m->s, v), m->host_trace);
            m->host_trace = v;
        }
    }
    else { m->opname = "stale"; op_stale(m); }
    if (!m->failed) m_ready_after_op(m);
    if (!m->failed) model_verify(m);
}

/* Destroys the scheduler (live tasks get their abort step) and checks
   that nothing is left allocated. */
static void model_finish(model *m) {
    if (!m->s) return;
    m->destroying = 1;
    M_EXPECT(m, task_destroy(m->s), TASK_OK);
    m->s = NULL;
    M_EXPECT(m, m->A.bytes, 0);
}

#endif
