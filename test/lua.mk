# test/lua.mk: the Lua binding's test suites (included by the top-level Makefile).
#   lua, lua-asan      test/lua/*.lua run by test/lua_runner.c (host mode, virtual
#                      clock; realclock.lua on the real clock), -O2 and ASan/UBSan
#   lua-valgrind       the same under valgrind (scale.lua with TASK_LUA_SCALE=2000;
#                      skipped without valgrind)
#   lua-host, lua-host-asan   test/test_lua_host.c: the C host API of task_lua.h
#   lua-module         build/task.so in the stock lua5.4: test/lua_module.lua
# One script alone: build/lua_runner test/lua/channel.lua

# Every test/lua/*.lua is a test script (the sweep in hardening.mk runs
# them too), except the harness modules they require and realclock.lua,
# which runs on the real clock.
LUA_TEST_LIBS := test/lua/testing.lua test/lua/helpers.lua
LUA_SCRIPTS   := $(filter-out $(LUA_TEST_LIBS) test/lua/realclock.lua,$(sort $(wildcard test/lua/*.lua)))
LUA_TEST_ARGS := $(LUA_SCRIPTS) --real-clock test/lua/realclock.lua
LUA_TEST_DEPS := task.h task_lua.h test/testlib.h
LUA_CFLAGS    := -std=c99 $(STRICT) -Wno-misleading-indentation -I. $(LUA_INC)

$(BUILD)/lua_runner: test/lua_runner.c $(LUA_TEST_DEPS) | deps $(BUILD)
	$(CC) $(LUA_CFLAGS) -O2 -g -o $@ test/lua_runner.c $(LUA_LIB) -lm
$(BUILD)/lua_runner_asan: test/lua_runner.c $(LUA_TEST_DEPS) | deps $(BUILD)
	$(CC) $(LUA_CFLAGS) $(SAN) -o $@ test/lua_runner.c $(LUA_LIB) -lm
$(BUILD)/test_lua_host: test/test_lua_host.c $(LUA_TEST_DEPS) | deps $(BUILD)
	$(CC) $(LUA_CFLAGS) -O2 -g -o $@ test/test_lua_host.c $(LUA_LIB) -lm
$(BUILD)/test_lua_host_asan: test/test_lua_host.c $(LUA_TEST_DEPS) | deps $(BUILD)
	$(CC) $(LUA_CFLAGS) $(SAN) -o $@ test/test_lua_host.c $(LUA_LIB) -lm

.PHONY: suite-lua suite-lua-asan suite-lua-valgrind suite-lua-host suite-lua-host-asan suite-lua-module suite-sigint
TEST_SUITES += suite-lua suite-lua-asan suite-lua-valgrind suite-lua-host suite-lua-host-asan suite-lua-module \
               suite-sigint
suite-lua: $(BUILD)/lua_runner
	@test/run-one lua $(BUILD)/lua_runner $(LUA_TEST_ARGS)
suite-lua-asan: $(BUILD)/lua_runner_asan
	@test/run-one lua-asan $(BUILD)/lua_runner_asan $(LUA_TEST_ARGS)
suite-lua-host: $(BUILD)/test_lua_host
	@test/run-one lua-host $(BUILD)/test_lua_host
suite-lua-host-asan: $(BUILD)/test_lua_host_asan
	@test/run-one lua-host-asan $(BUILD)/test_lua_host_asan
suite-lua-module: module
	@test/run-one lua-module $(LUA) test/lua_module.lua $(BUILD)
suite-lua-valgrind: $(BUILD)/lua_runner
	@$(call or_skip,valgrind,lua-valgrind) TASK_LUA_SCALE=2000 test/run-one lua-valgrind $(VG) $(BUILD)/lua_runner $(LUA_TEST_ARGS)
suite-sigint: module
	@test/run-one sigint sh test/sigint.sh $(BUILD)
