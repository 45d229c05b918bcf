/*
 * frame_loop.c: task.h in a fixed 60 Hz frame loop, the way a game engine
 * would drive it. No graphics: each frame ticks the scheduler once, with a
 * tick limit (resumes per tick) so a burst of tasks can never blow the
 * frame's time, and prints one line.
 *
 * The tasks:
 *   ai        "thinks" once per frame: it yields every frame (TASK_PT_YIELD),
 *             so it runs at the next tick, never twice in one
 *   spawner   every 8 frames spawns a wave of particles (3 waves)
 *   particle  lives 4 resumes (it yields in between), then ends
 *   door      sleeps across frames: opens after 0.25 s, closes 0.2 s later
 * With a tick limit of 4 resumes, a wave does not all run in the frame
 * it was spawned: what is left stays queued, first in line at the next
 * frame (the ready queue is FIFO), and the per-frame line shows it.
 *
 * Usage: frame_loop [--fake-clock] [--frames N]
 *   --fake-clock  frame f happens at exactly f/60 s and nothing sleeps, so
 *                 the output is the same on every machine (make test
 *                 compares it with frame_loop.expected)
 *   default       real time: the loop sleeps until each frame's start on
 *                 the monotonic clock (clock_nanosleep, absolute)
 *
 * Build: cc -std=c99 -I. examples/frame_loop.c -o build/frame_loop
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, clock_nanosleep */
#define TASK_IMPLEMENTATION
#include "task.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FRAME_NS (TASK_SEC / 60) /* 16.67 ms */
#define TICK_LIMIT 4u            /* resumes per tick */
#define WAVES 3
#define WAVE_SIZE 5
#define PARTICLE_LIFE 3          /* yields before it ends */

/* ---- the game's state, and the line printed for each frame ------------ */

static struct {
    int frame;
    char events[256];            /* what happened during this frame's tick */
    int particles_alive, particles_spawned;
} game;

static void event(const char *fmt, ...) {
    size_t n = strlen(game.events);
    va_list ap;
    if (n && n + 2 < sizeof game.events) { strcpy(game.events + n, "; "); n += 2; }
    va_start(ap, fmt);
    vsnprintf(game.events + n, sizeof game.events - n, fmt, ap);
    va_end(ap);
}

static void must(task_sched *s, int rc, const char *what) {
    if (rc < 0) {
        fprintf(stderr, "frame_loop: %s failed: %s\n", what, task_errmsg(s));
        exit(1);
    }
}

/* ---- tasks -------------------------------------------------------------- */

struct ai { int pc, thinks; const char *mode; };

static int ai(task_ctx *c) {
    struct ai *a = (struct ai *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE; /* the game shuts down */
    TASK_PT_BEGIN(c, a->pc);
    for (;;) {
        const char *mode = a->thinks < 10 ? "patrols" : a->thinks < 20 ? "chases the player" : "returns to post";
        a->thinks++;
        if (mode != a->mode) event("ai %s", a->mode = mode);
        TASK_PT_YIELD(c); /* one think per frame */
    }
    TASK_PT_END(c);
}

struct particle { int pc, n, age; };
static struct particle particles[WAVES * WAVE_SIZE];

static int particle(task_ctx *c) {
    struct particle *p = (struct particle *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, p->pc);
    for (p->age = 0; p->age < PARTICLE_LIFE; p->age++) TASK_PT_YIELD(c);
    game.particles_alive--;
    TASK_PT_END(c);
}

struct spawner { int pc, wave; };

static int spawner(task_ctx *c) {
    struct spawner *w = (struct spawner *)c->ud;
    static const task_opts detached = {0, 0, TASK_DETACHED};
    int i;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, w->pc);
    for (w->wave = 1; w->wave <= WAVES; w->wave++) {
        TASK_PT_SLEEP(c, (w->wave == 1 ? 2 : 8) * FRAME_NS);
        for (i = 0; i < WAVE_SIZE; i++) {
            struct particle *p = &particles[game.particles_spawned++];
            p->pc = 0;
            p->n = game.particles_spawned;
            must(c->sched, task_spawn(c->sched, particle, p, &detached, NULL), "task_spawn");
            game.particles_alive++;
        }
        event("spawner: wave %d, %d particles", w->wave, WAVE_SIZE);
    }
    TASK_PT_END(c);
}

struct door { int pc; };

static int door(task_ctx *c) {
    struct door *d = (struct door *)c->ud;
    if (c->why == TASK_WHY_ABORT) return TASK_STEP_DONE;
    TASK_PT_BEGIN(c, d->pc);
    TASK_PT_SLEEP(c, 250 * TASK_MSEC); /* a duration in seconds, not in frames */
    event("door opens");
    TASK_PT_SLEEP(c, 200 * TASK_MSEC);
    event("door closes");
    TASK_PT_END(c);
}

/* ---- the frame loop ------------------------------------------------------- */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t when) {
    struct timespec ts;
    ts.tv_sec = (time_t)(when / TASK_SEC);
    ts.tv_nsec = (long)(when % TASK_SEC);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
}

int main(int argc, char **argv) {
    int fake = 0, frames = 30, i, ran;
    uint64_t start;
    task_sched *s;
    static struct ai a;
    static struct spawner sp;
    static struct door d;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fake-clock") == 0) fake = 1;
        else if (strcmp(argv[i], "--frames") == 0 && i + 1 < argc) frames = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--fake-clock] [--frames N]\n", argv[0]);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((s = task_create(NULL, NULL)) == NULL) return 1;
    task_set_tick_limit(s, TICK_LIMIT);
    must(s, task_spawn(s, ai, &a, NULL, NULL), "task_spawn");
    must(s, task_spawn(s, spawner, &sp, NULL, NULL), "task_spawn");
    must(s, task_spawn(s, door, &d, NULL, NULL), "task_spawn");
    printf("frame_loop: 60 Hz, %d frames, tick limit %u resumes, %s clock\n", frames, TICK_LIMIT,
           fake ? "fake" : "real");

    start = mono_ns();
    for (game.frame = 0; game.frame < frames; game.frame++) {
        /* The frame's time: exact in fake mode, the real clock otherwise. */
        uint64_t t = fake ? (uint64_t)game.frame * FRAME_NS : mono_ns() - start;
        unsigned long tenths = (unsigned long)((t + TASK_MSEC / 20) / (TASK_MSEC / 10));
        game.events[0] = '\0';
        /* ... input, physics ... */
        must(s, ran = task_tick(s, t), "task_tick");
        /* ... render ... */
        printf("frame %02d %5lu.%lu ms  ran %d/%u  queued %d  sleeping %d  particles %2d%s%s\n",
               game.frame, tenths / 10, tenths % 10,
               ran, TICK_LIMIT, task_ready_count(s), task_count(s, TASK_SLEEP), game.particles_alive,
               game.events[0] ? "  | " : "", game.events);
        if (!fake) sleep_until(start + (uint64_t)(game.frame + 1) * FRAME_NS);
    }
    printf("after %d frames: the ai thought %d times (the tick limit made it skip %d frames), "
           "%d particles spawned, %d alive\n",
           frames, a.thinks, frames - a.thinks, game.particles_spawned, game.particles_alive);
    printf("task_destroy ends the %d task(s) still live (each gets one last step, TASK_WHY_ABORT)\n",
           task_count(s, -1));
    must(s, task_destroy(s), "task_destroy");
    return 0;
}
