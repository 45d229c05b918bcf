# bench/luv.mk: the luv echo rows of `make bench` (bench/luv_echo.lua):
# examples/luv_echo.lua against the same server with plain luv callbacks
# and with cqueues sockets (bench/luv_echo_peers.lua), loaded by
# bench/echo_load.c on loopback; and their smoke run in `make test`
# (suite bench-luv-smoke: a few round trips each, no timing). Peers: the
# Debian packages lua-luv and lua-cqueues, installed with apt-get when
# root; otherwise their rows are skipped with a message.
BENCH_CMDS    += 'TASK_BUILD=$(BUILD) ECHO_LOAD=$(BENCH_BUILD)/echo_load $(LUA) bench/luv_echo.lua'
BENCH_PREREQS += bench-luv-deps module $(BENCH_BUILD)/echo_load

.PHONY: bench-luv-deps suite-bench-luv-smoke

bench-luv-deps:
	@test/need --optional "the luv echo rows are skipped" lua-luv lua-cqueues

$(BENCH_BUILD)/echo_load: bench/echo_load.c | $(BUILD)
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) $(STRICT) -o $@ bench/echo_load.c

TEST_SUITES += suite-bench-luv-smoke
suite-bench-luv-smoke: module $(BENCH_BUILD)/echo_load
	@mkdir -p $(BUILD)/bench-luv-smoke
	@$(call or_skip,lua-luv,bench-luv-smoke) TASK_BUILD=$(BUILD) ECHO_LOAD=$(BENCH_BUILD)/echo_load \
	  test/run-one bench-luv-smoke sh bench/luv_smoke.sh $(BUILD)/bench-luv-smoke
