/* The core's implementation in a translation unit of its own, as a user
   builds it: the benchmarks call it through the public API, so nothing of
   the core is inlined into the benchmark loops. */
#define TASK_IMPLEMENTATION
#include "task.h"
