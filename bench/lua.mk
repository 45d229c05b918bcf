# bench/lua.mk: the Lua rows of `make bench` (bench/bench_lua.lua, run by
# the stock lua5.4 with build/task.so), and their one-iteration check in
# `make test` (suite bench-lua-smoke, no timing). Peers: the Debian
# packages lua-cqueues and lua-luv, installed with apt-get when root;
# otherwise their rows are skipped with a message.
BENCH_LUA_DEB := lua-cqueues lua-luv
BENCH_CMDS    += 'TASK_BUILD=$(BUILD) lua5.4 bench/bench_lua.lua'
BENCH_PREREQS += bench-lua-deps module

.PHONY: bench-lua-deps suite-bench-lua-smoke

bench-lua-deps:
	@if ! lua5.4 -e 'require "cqueues"; require "luv"' >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(BENCH_LUA_DEB)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_LUA_DEB) >/dev/null || \
	    echo "could not install $(BENCH_LUA_DEB): their rows are skipped"; \
	  else echo "lua-cqueues or lua-luv is missing, their rows are skipped. To run them: sudo apt-get install -y $(BENCH_LUA_DEB)"; fi; \
	fi

TEST_SUITES += suite-bench-lua-smoke
suite-bench-lua-smoke: module | $(BUILD)
	@mkdir -p $(BUILD)/bench-lua-smoke
	@TASK_BUILD=$(BUILD) test/run-one bench-lua-smoke sh bench/lua_smoke.sh $(BUILD)/bench-lua-smoke
