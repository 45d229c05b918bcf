# examples/examples.mk: the examples, `make run`, and their test suites.
# Included by the top-level Makefile.
#
#   make examples      every example into $(BUILD) (examples/libuv_host.c
#                      needs libuv1-dev: installed with apt-get when run as
#                      root, otherwise skipped)
#   make run           builds and runs the demo named by RUN_DEMO

# `make run`: the demo program and its arguments. Switching demos is this line.
RUN_DEMO := $(BUILD)/host

EX_OUT     := $(BUILD)/examples
EX_CFLAGS   = $(CFLAGS) $(STRICT) -std=c99 -I.
EX_CHECK   := sh examples/check.sh
# where check.sh and echo_test.sh keep each run's output
export CHECK_DIR := $(EX_OUT)

.PHONY: examples examples-libuv

examples: $(BUILD)/host $(BUILD)/c_tasks $(BUILD)/frame_loop $(BUILD)/callback_api examples-libuv

# The Lua demo host: embeds Lua, runs examples/demo.lua from a poll() loop.
$(BUILD)/host: examples/host.c task.h task_lua.h | deps $(BUILD)
	$(CC) $(EX_CFLAGS) $(LUA_INC) -o $@ examples/host.c $(LUA_LIB) -lm

run: $(firstword $(RUN_DEMO))
	@$(RUN_DEMO)

$(BUILD)/c_tasks: examples/c_tasks.c task.h | $(BUILD)
	$(CC) $(EX_CFLAGS) -o $@ examples/c_tasks.c

$(BUILD)/frame_loop: examples/frame_loop.c task.h | $(BUILD)
	$(CC) $(EX_CFLAGS) -o $@ examples/frame_loop.c

# A callback-style C API seen from Lua tasks as a blocking call
# (examples/callback_api.lua is its script).
$(BUILD)/callback_api: examples/callback_api.c task.h task_lua.h | deps $(BUILD)
	$(CC) $(EX_CFLAGS) $(LUA_INC) -o $@ examples/callback_api.c $(LUA_LIB) -lm

$(BUILD)/libuv_host: examples/libuv_host.c task.h | $(BUILD)
	@cmd="$(CC) $(EX_CFLAGS) $$(pkg-config --cflags libuv 2>/dev/null) -o $@ examples/libuv_host.c \
	  $$(pkg-config --libs libuv 2>/dev/null || echo -luv)"; echo "$$cmd"; $$cmd

# Built only where libuv's headers are (looked for when this runs: they
# may just have been installed).
examples-libuv:
	@test/need --optional "examples/libuv_host.c is skipped" libuv1-dev
	@if test/need --have libuv1-dev; then $(MAKE) --no-print-directory -s $(BUILD)/libuv_host; fi

# The sanitizer builds live apart from the normal ones.
$(EX_OUT)/%-san: examples/%.c task.h
	@mkdir -p $(EX_OUT)
	$(CC) $(SAN) $(STRICT) -std=c99 -I. -o $@ $<
$(EX_OUT)/host-san $(EX_OUT)/callback_api-san $(EX_OUT)/echo_server-san: $(EX_OUT)/%-san: examples/%.c task.h task_lua.h | deps
	@mkdir -p $(EX_OUT)
	$(CC) $(SAN) $(STRICT) -std=c99 -I. $(LUA_INC) -o $@ $< $(LUA_LIB) -lm

# ---- test suites ---------------------------------------------------------------
# Each example (built with $(STRICT)) runs and its stdout is compared with
# its .expected file; check.sh prints the TAP lines. Each also runs built
# with ASan and UBSan (-san) and, where valgrind is, under it (-valgrind).
EX_SUITES := suite-examples-host suite-examples-host-san \
             suite-examples-c_tasks suite-examples-c_tasks-san suite-examples-c_tasks-valgrind \
             suite-examples-frame_loop suite-examples-frame_loop-san suite-examples-frame_loop-realtime \
             suite-examples-callback_api suite-examples-callback_api-san suite-examples-callback_api-valgrind \
             suite-examples-libuv_host suite-examples-libuv_host-valgrind suite-examples-build
TEST_SUITES += $(EX_SUITES)
.PHONY: $(EX_SUITES)

suite-examples-host: $(BUILD)/host
	@test/run-one examples-host $(EX_CHECK) host examples/demo.expected $(BUILD)/host --fake-clock
suite-examples-host-san: $(EX_OUT)/host-san
	@test/run-one examples-host-san $(EX_CHECK) host-san examples/demo.expected $(EX_OUT)/host-san --fake-clock

suite-examples-c_tasks: $(BUILD)/c_tasks
	@MAX_MS=30000 test/run-one examples-c_tasks $(EX_CHECK) c_tasks examples/c_tasks.expected $(BUILD)/c_tasks
suite-examples-c_tasks-san: $(EX_OUT)/c_tasks-san
	@test/run-one examples-c_tasks-san $(EX_CHECK) c_tasks-san examples/c_tasks.expected $(EX_OUT)/c_tasks-san
suite-examples-c_tasks-valgrind: $(BUILD)/c_tasks
	@$(call or_skip,valgrind,examples-c_tasks-valgrind) \
	  test/run-one examples-c_tasks-valgrind $(EX_CHECK) c_tasks-valgrind examples/c_tasks.expected $(VG) $(BUILD)/c_tasks

# --fake-clock for the comparison; a short run on the real clock as well.
suite-examples-frame_loop: $(BUILD)/frame_loop
	@test/run-one examples-frame_loop $(EX_CHECK) frame_loop examples/frame_loop.expected $(BUILD)/frame_loop --fake-clock
suite-examples-frame_loop-san: $(EX_OUT)/frame_loop-san
	@test/run-one examples-frame_loop-san $(EX_CHECK) frame_loop-san examples/frame_loop.expected $(EX_OUT)/frame_loop-san --fake-clock
suite-examples-frame_loop-realtime: $(BUILD)/frame_loop
	@test/run-one examples-frame_loop-realtime sh -c 'n=$$($(BUILD)/frame_loop --frames 12 | grep -c "^frame ") && [ "$$n" = 12 ] \
	  && echo "ok - frame_loop on the real clock: 12 frames" || echo "not ok - frame_loop on the real clock: $$n frames"'

suite-examples-callback_api: $(BUILD)/callback_api
	@test/run-one examples-callback_api $(EX_CHECK) callback_api examples/callback_api.expected $(BUILD)/callback_api
suite-examples-callback_api-san: $(EX_OUT)/callback_api-san
	@test/run-one examples-callback_api-san $(EX_CHECK) callback_api-san examples/callback_api.expected $(EX_OUT)/callback_api-san
suite-examples-callback_api-valgrind: $(BUILD)/callback_api
	@$(call or_skip,valgrind,examples-callback_api-valgrind) \
	  test/run-one examples-callback_api-valgrind $(EX_CHECK) callback_api-valgrind examples/callback_api.expected \
	  $(VG) $(BUILD)/callback_api

suite-examples-libuv_host: examples-libuv
	@$(call or_skip,libuv1-dev,examples-libuv_host) \
	  test/run-one examples-libuv_host $(EX_CHECK) libuv_host examples/libuv_host.expected $(BUILD)/libuv_host
suite-examples-libuv_host-valgrind: examples-libuv
	@$(call or_skip,libuv1-dev valgrind,examples-libuv_host-valgrind) \
	  test/run-one examples-libuv_host-valgrind $(EX_CHECK) libuv_host-valgrind examples/libuv_host.expected \
	  $(VG) $(BUILD)/libuv_host

# Every example warning-free under $(STRICT) with $(CC) and $(CLANG), C99 and C11.
suite-examples-build: | deps
	@test/run-one examples-build sh examples/build-check.sh $(EX_OUT)/build-check "$(CC)" "$(CLANG)"

# ---- echo_server: a TCP echo server, each connection a Lua task ------------
# build/echo_server [--port 0] [--max-conns N] [--duration-ms N] [--idle-ms N]
#                   [--grace-ms N]   (prints "echo_server: listening on 127.0.0.1:PORT")
# build/echo_client PORT [CONNS [MSGS]] [--idle] [--cancel]
# suite-examples-echo_server[-san]: examples/echo_test.sh starts the server on
# a free loopback port, runs the client (50 x 200 messages, every byte
# checked), lets the server stop by itself and checks its summary.
examples: $(BUILD)/echo_server $(BUILD)/echo_client

$(BUILD)/echo_server: examples/echo_server.c task.h task_lua.h | deps $(BUILD)
	$(CC) $(EX_CFLAGS) $(LUA_INC) -o $@ examples/echo_server.c $(LUA_LIB) -lm

$(BUILD)/echo_client: examples/echo_client.c | $(BUILD)
	$(CC) $(EX_CFLAGS) -o $@ examples/echo_client.c

EX_ECHO_SUITES := suite-examples-echo_server suite-examples-echo_server-san suite-examples-echo_server-valgrind
EX_SUITES   += $(EX_ECHO_SUITES)
TEST_SUITES += $(EX_ECHO_SUITES)
.PHONY: $(EX_ECHO_SUITES)

suite-examples-echo_server: $(BUILD)/echo_server $(BUILD)/echo_client
	@test/run-one examples-echo_server sh examples/echo_test.sh echo_server $(BUILD)/echo_server $(BUILD)/echo_client
suite-examples-echo_server-san: $(EX_OUT)/echo_server-san $(EX_OUT)/echo_client-san
	@test/run-one examples-echo_server-san sh examples/echo_test.sh echo_server-san $(EX_OUT)/echo_server-san $(EX_OUT)/echo_client-san
suite-examples-echo_server-valgrind: $(BUILD)/echo_server $(BUILD)/echo_client
	@$(call or_skip,valgrind,examples-echo_server-valgrind) \
	  test/run-one examples-echo_server-valgrind sh examples/echo_test.sh echo_server-valgrind "$(VG) $(BUILD)/echo_server" $(BUILD)/echo_client
