# test/trace.mk: W3C trace context and the editor definitions (included by
# the top-level Makefile).
#   trace, trace-asan    test/test_traceparent.c: task_trace_format /
#                        task_trace_parse against the W3C examples
#   trace-valgrind       under valgrind (skipped without it)
#   types                types/task.lua (Lua Language Server ---@meta file)
#                        loads, and names every function and method that
#                        task_lua.h registers (test/check_types.sh; with
#                        build/task.so, also the module listed at run time)
# The Lua side, test/lua/traceparent.lua, runs with the Lua test suites.

$(BUILD)/test_traceparent: test/test_traceparent.c task.h test/testlib.h | $(BUILD)
	$(CC) -std=c99 $(STRICT) -O2 -g -I. -o $@ test/test_traceparent.c
$(BUILD)/test_traceparent_asan: test/test_traceparent.c task.h test/testlib.h | $(BUILD)
	$(CC) -std=c99 $(STRICT) $(SAN) -I. -o $@ test/test_traceparent.c

TRACE_SUITES := suite-trace suite-trace-asan suite-trace-valgrind suite-types
TEST_SUITES += $(TRACE_SUITES)
.PHONY: $(TRACE_SUITES)

suite-trace: $(BUILD)/test_traceparent
	@test/run-one trace $(BUILD)/test_traceparent
suite-trace-asan: $(BUILD)/test_traceparent_asan
	@test/run-one trace-asan $(BUILD)/test_traceparent_asan
suite-trace-valgrind: $(BUILD)/test_traceparent
	@$(call or_skip,valgrind,trace-valgrind) test/run-one trace-valgrind $(VG) $(BUILD)/test_traceparent
suite-types: $(BUILD)/task.so
	@test/run-one types sh test/check_types.sh $(BUILD)
