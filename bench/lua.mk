# bench/lua.mk: the Lua rows of `make bench` (bench/bench_lua.lua, run by
# the stock lua5.4 with build/task.so), and their one-iteration check in
# `make test` (suite bench-lua-smoke, no timing); `make bench-callgrind`
# counts their instructions (bench/callgrind.sh). Peers: the Debian
# packages lua-cqueues and lua-luv, installed with apt-get when root;
# otherwise their rows are skipped with a message.
BENCH_CMDS    += 'TASK_BUILD=$(BUILD) $(LUA) bench/bench_lua.lua'
BENCH_PREREQS += bench-lua-deps module

.PHONY: bench-lua-deps suite-bench-lua-smoke

bench-lua-deps:
	@test/need --optional "their rows are skipped" lua-cqueues lua-luv

TEST_SUITES += suite-bench-lua-smoke
suite-bench-lua-smoke: module | $(BUILD)
	@mkdir -p $(BUILD)/bench-lua-smoke
	@TASK_BUILD=$(BUILD) test/run-one bench-lua-smoke sh bench/lua_smoke.sh $(BUILD)/bench-lua-smoke

# Instructions per operation of every Lua row's workload and its baseline
# (bench/callgrind.sh); by hand only, it takes minutes.
.PHONY: bench-callgrind
bench-callgrind: module
	@LUA=$(LUA) TASK_BUILD=$(BUILD) sh bench/callgrind.sh
