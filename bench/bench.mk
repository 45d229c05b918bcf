# bench/bench.mk: `make bench` (BENCH_QUICK=1: under a minute) prints one
# table of every benchmark row and writes them to $(BUILD)/bench.json; the
# suite bench-smoke checks, in `make test`, that the benchmarks build and
# run one tiny iteration (no timing there).
#
# A benchmark program prints rows in the line format described in
# bench/run.sh. To add one (the Lua rows, say), append to these from your
# own .mk file:
#   BENCH_CMDS    += 'lua5.4 bench/bench_lua.lua'   (one quoted command each)
#   BENCH_PREREQS += module                          (targets to build first)
BENCH_BUILD   := $(BUILD)/bench
BENCH_CFLAGS  := -std=c99 -O2 -g -DNDEBUG
BENCH_QUICK   ?=
BENCH_CMDS    := '$(BENCH_BUILD)/bench_core'
BENCH_PREREQS := bench-core

.PHONY: bench-deps bench-core suite-bench-smoke

# libuv is the peer of the timer rows and PCL (a stackful C coroutine
# library) of the spawn, switch and memory rows: installed with apt-get
# when root, otherwise those rows are skipped with a message.
bench-deps:
	@test/need --optional "the libuv and PCL rows are skipped" libuv1-dev libpcl1-dev

# Always rebuilt (a second or two): whether libuv is in may have changed.
bench-core: | $(BUILD)
	@sh bench/build.sh $(BENCH_BUILD)/bench_core $(CC) $(BENCH_CFLAGS) $(STRICT)

bench: | $(BUILD)
	@$(MAKE) --no-print-directory bench-deps
	@$(MAKE) --no-print-directory $(BENCH_PREREQS)
	@BENCH_QUICK='$(BENCH_QUICK)' sh bench/run.sh $(BUILD)/bench.json $(BENCH_CMDS)

TEST_SUITES += suite-bench-smoke
suite-bench-smoke: | $(BUILD)
	@mkdir -p $(BUILD)/bench-smoke
	@test/run-one bench-smoke sh bench/smoke.sh $(BUILD)/bench-smoke $(CC) $(BENCH_CFLAGS) $(STRICT)
