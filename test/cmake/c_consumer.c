/* task::task: the core alone. */
#define TASK_IMPLEMENTATION
#include "task.h"
#include <stdio.h>

static int hello(task_ctx *c) {
    (void)c;
    printf("task.h %s from CMake\n", TASK_VERSION);
    return TASK_STEP_DONE;
}

int main(void) {
    task_sched *s = task_create(NULL, NULL);
    if (!s || task_spawn(s, hello, NULL, NULL, NULL) != TASK_OK || task_tick(s, 0) != 1) return 1;
    return task_destroy(s) != TASK_OK;
}
