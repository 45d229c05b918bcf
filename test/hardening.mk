# test/hardening.mk: fuzzing, allocation-failure sweeps, hostile scripts and
# cross-thread resume (included by the top-level Makefile).
#
#   make test    adds quick suites: corpus replay of both fuzzers (ASan +
#                UBSan), the core sweep, a strided Lua sweep, the hostile
#                cases, TASK_THREADS builds and the threads test under TSan
#   make check   the long runs, filed into the same results and summed with
#                whatever `make test` filed: the full Lua sweep, the hostile
#                cases with 1M C tasks, and each fuzzer for FUZZ_CHECK_SECONDS
#   make fuzz FUZZ_SECONDS=N   runs each libFuzzer target for N seconds
#
# The fuzzers need clang with libFuzzer (Debian: clang, libclang-rt-14-dev);
# without it the fuzz suites report one failure saying so.

FUZZ_SECONDS       ?= 60
FUZZ_CHECK_SECONDS ?= 60
FUZZ_CC            := $(CLANG) -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I.
HARD_SAN           := $(CC) -std=c99 $(STRICT) $(SAN) -I.
# every Lua test script, on the virtual clock (LUA_SCRIPTS, test/lua.mk)
HARD_LUA_SCRIPTS    = $(LUA_SCRIPTS)
SWEEP_LUA_QUICK    := --max-runs 60 --max-seconds 3
SWEEP_LUA_FULL     := --max-runs 4000 --max-seconds 12
TSAN_CC            := $(CLANG) -std=c11 $(STRICT) -O1 -g -fsanitize=thread -pthread -I.
HAVE_FUZZER        := $(shell printf 'int LLVMFuzzerTestOneInput(const char*d,long n){(void)d;(void)n;return 0;}' | \
                        $(CLANG) -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null && echo yes)

$(BUILD)/fuzz_core_replay: test/fuzz/fuzz_core.c test/fuzz/replay.h task.h test/model.h test/testlib.h | $(BUILD)
	$(HARD_SAN) -DFUZZ_MAIN -o $@ test/fuzz/fuzz_core.c
$(BUILD)/fuzz_lua_replay: test/fuzz/fuzz_lua.c test/fuzz/replay.h $(HEADERS) test/testlib.h | deps $(BUILD)
	$(HARD_SAN) $(LUA_INC) -DFUZZ_MAIN -o $@ test/fuzz/fuzz_lua.c $(LUA_LIB)
$(BUILD)/fuzz_core: test/fuzz/fuzz_core.c task.h test/model.h test/testlib.h | $(BUILD)
	$(FUZZ_CC) -o $@ test/fuzz/fuzz_core.c
$(BUILD)/fuzz_lua: test/fuzz/fuzz_lua.c $(HEADERS) test/testlib.h | deps $(BUILD)
	$(FUZZ_CC) $(LUA_INC) -o $@ test/fuzz/fuzz_lua.c $(LUA_LIB)
$(BUILD)/sweep_core: test/sweep_core.c test/test_core.c task.h test/testlib.h | $(BUILD)
	$(HARD_SAN) -o $@ test/sweep_core.c
$(BUILD)/sweep_lua: test/sweep_lua.c test/lua_runner.c $(HEADERS) test/testlib.h | deps $(BUILD)
	$(HARD_SAN) $(LUA_INC) -o $@ test/sweep_lua.c $(LUA_LIB)
$(BUILD)/test_hostile: test/test_hostile.c $(HEADERS) test/testlib.h | deps $(BUILD)
	$(HARD_SAN) $(LUA_INC) -o $@ test/test_hostile.c $(LUA_LIB)
$(BUILD)/test_threads_tsan: test/test_threads.c task.h test/testlib.h | $(BUILD)
	$(TSAN_CC) -o $@ test/test_threads.c

.PHONY: suite-fuzz-replay-core suite-fuzz-replay-lua suite-sweep-core suite-sweep-lua-quick suite-hostile \
        suite-threads-compile suite-threads-tsan check check-suites fuzz \
        check-sweep-lua check-hostile-1m check-fuzz-core check-fuzz-lua
TEST_SUITES += suite-fuzz-replay-core suite-fuzz-replay-lua suite-sweep-core suite-sweep-lua-quick \
               suite-hostile suite-threads-compile suite-threads-tsan

suite-fuzz-replay-core: $(BUILD)/fuzz_core_replay
	@test/run-one fuzz-replay-core $(BUILD)/fuzz_core_replay test/fuzz/corpus/core
suite-fuzz-replay-lua: $(BUILD)/fuzz_lua_replay
	@test/run-one fuzz-replay-lua $(BUILD)/fuzz_lua_replay test/fuzz/corpus/lua
suite-sweep-core: $(BUILD)/sweep_core
	@test/run-one sweep-core $(BUILD)/sweep_core
suite-sweep-lua-quick: $(BUILD)/sweep_lua
	@test/run-one sweep-lua-quick $(BUILD)/sweep_lua $(SWEEP_LUA_QUICK) $(HARD_LUA_SCRIPTS)
suite-hostile: $(BUILD)/test_hostile
	@test/run-one hostile $(BUILD)/test_hostile --big 100000 --lua 5000
suite-threads-compile: | $(BUILD)
	@test/run-one threads-compile sh test/compile_threads.sh $(BUILD)/threads
suite-threads-tsan: $(BUILD)/test_threads_tsan
	@test/run-one threads-tsan $(BUILD)/test_threads_tsan

# ---- make check: the long runs ---------------------------------------------
check-sweep-lua: $(BUILD)/sweep_lua
	@test/run-one check-sweep-lua $(BUILD)/sweep_lua $(SWEEP_LUA_FULL) $(HARD_LUA_SCRIPTS)
check-hostile-1m: $(BUILD)/test_hostile
	@test/run-one check-hostile-1m $(BUILD)/test_hostile --big 1000000 --lua 50000
ifeq ($(HAVE_FUZZER),yes)
check-fuzz-core: $(BUILD)/fuzz_core
	@test/run-one check-fuzz-core test/fuzz/run-fuzz core $(BUILD)/fuzz_core test/fuzz/corpus/core $(FUZZ_CHECK_SECONDS)
check-fuzz-lua: $(BUILD)/fuzz_lua
	@test/run-one check-fuzz-lua test/fuzz/run-fuzz lua $(BUILD)/fuzz_lua test/fuzz/corpus/lua $(FUZZ_CHECK_SECONDS)
else
check-fuzz-core check-fuzz-lua:
	@test/run-one $@ sh -c 'echo "not ok - $@: clang with libFuzzer is missing (apt-get install clang libclang-rt-14-dev)"'
endif
CHECK_SUITES := check-sweep-lua check-hostile-1m check-fuzz-core check-fuzz-lua
check-suites: $(CHECK_SUITES)

# Files its suites next to those of `make test` (only its own are cleared),
# so the summary's last line counts both when they run one after the other.
check: deps
	@rm -f $(BUILD)/results/check-*.log $(BUILD)/results/check-*.log.out
	@$(MAKE) --no-print-directory -k check-suites || true
	@sh test/summary $(BUILD)/results

fuzz: $(BUILD)/fuzz_core $(BUILD)/fuzz_lua
	@test/fuzz/run-fuzz core $(BUILD)/fuzz_core test/fuzz/corpus/core $(FUZZ_SECONDS)
	@test/fuzz/run-fuzz lua $(BUILD)/fuzz_lua test/fuzz/corpus/lua $(FUZZ_SECONDS)
