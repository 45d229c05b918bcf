# examples/examples.mk: the examples, `make run`, `make install` and
# `make uninstall`, and their test suites. Included by the top-level Makefile.
#
#   make examples      build/c_tasks, build/frame_loop, build/libuv_host
#                      (libuv1-dev is installed with apt-get when run as
#                      root; otherwise the libuv example is skipped)
#   make run           builds and runs the demo named by RUN_DEMO
#   make install   [PREFIX=/usr/local] [DESTDIR=...]
#                      task.h, task_lua.h (if present) into $(PREFIX)/include,
#                      task.pc into $(PREFIX)/share/pkgconfig
#   make uninstall [PREFIX=...] [DESTDIR=...]   removes exactly those files

# `make run`: the demo program and its arguments. Switching demos is this line.
RUN_DEMO := $(BUILD)/host

EX_OUT     := $(BUILD)/examples
EX_CFLAGS   = $(CFLAGS) $(STRICT) -std=c99 -I.
EX_CHECK   := sh examples/check.sh
# Looked for when a recipe runs, not when make starts: it may just have been installed.
EX_HAVE_UV  = $(CC) -E -include uv.h -x c /dev/null >/dev/null 2>&1
EX_UV_PKGS := libuv1-dev

.PHONY: examples examples-libuv examples-uv-deps install uninstall

examples: $(BUILD)/host $(BUILD)/c_tasks $(BUILD)/frame_loop examples-libuv

# The Lua demo host: embeds Lua, runs examples/demo.lua from a poll() loop.
$(BUILD)/host: examples/host.c task.h task_lua.h | deps $(BUILD)
	$(CC) $(EX_CFLAGS) $(LUA_INC) -o $@ examples/host.c $(LUA_LIB) -lm

run: $(firstword $(RUN_DEMO))
	@$(RUN_DEMO)

$(BUILD)/c_tasks: examples/c_tasks.c task.h | $(BUILD)
	$(CC) $(EX_CFLAGS) -o $@ examples/c_tasks.c

$(BUILD)/frame_loop: examples/frame_loop.c task.h | $(BUILD)
	$(CC) $(EX_CFLAGS) -o $@ examples/frame_loop.c

$(BUILD)/libuv_host: examples/libuv_host.c task.h | $(BUILD)
	@cmd="$(CC) $(EX_CFLAGS) $$(pkg-config --cflags libuv 2>/dev/null) -o $@ examples/libuv_host.c \
	  $$(pkg-config --libs libuv 2>/dev/null || echo -luv)"; echo "$$cmd"; $$cmd

# libuv headers: installed with apt-get when root, otherwise the command is printed.
examples-uv-deps:
	@if ! $(EX_HAVE_UV); then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(EX_UV_PKGS)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(EX_UV_PKGS) >/dev/null \
	      || echo "could not install $(EX_UV_PKGS)"; \
	  else echo "libuv headers are missing. Run: sudo apt-get install -y $(EX_UV_PKGS)"; fi; \
	fi

examples-libuv: examples-uv-deps
	@if $(EX_HAVE_UV); then $(MAKE) --no-print-directory -s $(BUILD)/libuv_host; \
	else echo "skipping examples/libuv_host.c: libuv headers are missing ($(EX_UV_PKGS))"; fi

# The sanitizer builds live apart from the normal ones.
$(EX_OUT)/%-san: examples/%.c task.h
	@mkdir -p $(EX_OUT)
	$(CC) $(SAN) $(STRICT) -std=c99 -I. -o $@ $<

# ---- install ----------------------------------------------------------------
PREFIX       ?= /usr/local
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(PREFIX)/share/pkgconfig
TASK_VERSION := 0.1.0

install:
	install -d "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(PKGCONFIGDIR)"
	install -m 644 task.h "$(DESTDIR)$(INCLUDEDIR)/task.h"
	@if [ -f task_lua.h ]; then \
	  echo 'install -m 644 task_lua.h "$(DESTDIR)$(INCLUDEDIR)/task_lua.h"'; \
	  install -m 644 task_lua.h "$(DESTDIR)$(INCLUDEDIR)/task_lua.h"; fi
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(TASK_VERSION)|g' examples/task.pc.in \
	  >"$(DESTDIR)$(PKGCONFIGDIR)/task.pc"
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/task.pc"

# Exactly the files install writes; directories are left, they may be shared.
uninstall:
	rm -f "$(DESTDIR)$(INCLUDEDIR)/task.h" "$(DESTDIR)$(INCLUDEDIR)/task_lua.h" \
	  "$(DESTDIR)$(PKGCONFIGDIR)/task.pc"

# ---- test suites ---------------------------------------------------------------
# Each example (built with $(STRICT)) runs and its stdout is compared with
# its .expected file; check.sh prints the TAP lines.
EX_SUITES := suite-examples-host suite-examples-c_tasks suite-examples-frame_loop suite-examples-libuv_host \
             suite-examples-san suite-examples-build suite-install
ifneq ($(VALGRIND),)
EX_SUITES += suite-examples-valgrind
endif
TEST_SUITES += $(EX_SUITES)
.PHONY: $(EX_SUITES)

suite-examples-host: $(BUILD)/host $(EX_OUT)/host-san
	@test/run-one examples-host $(EX_CHECK) host examples/demo.expected $(BUILD)/host --fake-clock
	@test/run-one examples-host-san $(EX_CHECK) host-san examples/demo.expected $(EX_OUT)/host-san --fake-clock

$(EX_OUT)/host-san: examples/host.c task.h task_lua.h
	@mkdir -p $(EX_OUT)
	$(CC) $(SAN) $(STRICT) -std=c99 -I. $(LUA_INC) -o $@ examples/host.c $(LUA_LIB) -lm

suite-examples-c_tasks: $(BUILD)/c_tasks
	@MAX_MS=30000 test/run-one examples-c_tasks $(EX_CHECK) c_tasks examples/c_tasks.expected $(BUILD)/c_tasks

# --fake-clock for the comparison; a short run on the real clock as well.
suite-examples-frame_loop: $(BUILD)/frame_loop
	@test/run-one examples-frame_loop $(EX_CHECK) frame_loop examples/frame_loop.expected $(BUILD)/frame_loop --fake-clock
	@test/run-one examples-frame_loop-realtime sh -c 'n=$$($(BUILD)/frame_loop --frames 12 | grep -c "^frame ") && [ "$$n" = 12 ] \
	  && echo "ok - frame_loop on the real clock: 12 frames" || echo "not ok - frame_loop on the real clock: $$n frames"'

suite-examples-libuv_host: examples-libuv
	@if $(EX_HAVE_UV) && [ -x $(BUILD)/libuv_host ]; then \
	  test/run-one examples-libuv_host $(EX_CHECK) libuv_host examples/libuv_host.expected $(BUILD)/libuv_host; \
	else test/run-one examples-libuv_host echo "ok - libuv_host # SKIP libuv headers missing (apt-get install $(EX_UV_PKGS))"; fi

suite-examples-san: $(EX_OUT)/c_tasks-san $(EX_OUT)/frame_loop-san
	@test/run-one examples-c_tasks-san $(EX_CHECK) c_tasks-san examples/c_tasks.expected $(EX_OUT)/c_tasks-san
	@test/run-one examples-frame_loop-san $(EX_CHECK) frame_loop-san examples/frame_loop.expected $(EX_OUT)/frame_loop-san --fake-clock

suite-examples-valgrind: $(BUILD)/c_tasks examples-libuv
	@test/run-one examples-c_tasks-valgrind $(EX_CHECK) c_tasks-valgrind examples/c_tasks.expected $(VG) $(BUILD)/c_tasks
	@if [ -x $(BUILD)/libuv_host ]; then \
	  test/run-one examples-libuv_host-valgrind $(EX_CHECK) libuv_host-valgrind examples/libuv_host.expected $(VG) $(BUILD)/libuv_host; fi

# Every example warning-free under $(STRICT) with $(CC) and $(CLANG), C99 and C11.
suite-examples-build:
	@STRICT="$(STRICT)" test/run-one examples-build sh examples/build-check.sh $(EX_OUT)/build-check "$(CC)" "$(CLANG)"

suite-install:
	@test/run-one install sh examples/test-install.sh "$(MAKE)" $(BUILD) "$(CC)"

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

$(EX_OUT)/echo_server-san: examples/echo_server.c task.h task_lua.h | deps
	@mkdir -p $(EX_OUT)
	$(CC) $(SAN) $(STRICT) -std=c99 -I. $(LUA_INC) -o $@ examples/echo_server.c $(LUA_LIB) -lm

EX_ECHO_SUITES := suite-examples-echo_server suite-examples-echo_server-san suite-examples-echo-build
EX_SUITES   += $(EX_ECHO_SUITES)
TEST_SUITES += $(EX_ECHO_SUITES)
.PHONY: $(EX_ECHO_SUITES)

suite-examples-echo_server: $(BUILD)/echo_server $(BUILD)/echo_client
	@test/run-one examples-echo_server sh examples/echo_test.sh echo_server $(BUILD)/echo_server $(BUILD)/echo_client

suite-examples-echo_server-san: $(EX_OUT)/echo_server-san $(EX_OUT)/echo_client-san
	@test/run-one examples-echo_server-san sh examples/echo_test.sh echo_server-san $(EX_OUT)/echo_server-san $(EX_OUT)/echo_client-san

# Both programs warning-free under $(STRICT) with $(CC) and $(CLANG), C99 and C11.
suite-examples-echo-build: | deps
	@mkdir -p $(EX_OUT)
	@test/run-one examples-echo-build sh -c 'for cc in "$(CC)" "$(CLANG)"; do \
	  if ! command -v $$cc >/dev/null 2>&1; then echo "ok - echo examples with $$cc # SKIP not installed"; continue; fi; \
	  for std in c99 c11; do for ex in echo_server echo_client; do \
	    if $$cc -std=$$std $(STRICT) -I. $(LUA_INC) -c examples/$$ex.c -o $(EX_OUT)/$$ex-build.o 2>$(EX_OUT)/$$ex-build.err; \
	    then echo "ok - $$ex $$cc -std=$$std"; else echo "not ok - $$ex $$cc -std=$$std"; head -n 20 $(EX_OUT)/$$ex-build.err; fi; \
	  done; done; done'

ifneq ($(VALGRIND),)
EX_SUITES   += suite-examples-echo_server-valgrind
TEST_SUITES += suite-examples-echo_server-valgrind
.PHONY: suite-examples-echo_server-valgrind
suite-examples-echo_server-valgrind: $(BUILD)/echo_server $(BUILD)/echo_client
	@test/run-one examples-echo_server-valgrind sh examples/echo_test.sh echo_server-valgrind "$(VG) $(BUILD)/echo_server" $(BUILD)/echo_client
endif
