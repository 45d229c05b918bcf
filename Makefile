# task.h / task_lua.h
#   make run      build and run the demo
#   make test     every test suite; the last line is "N passed, N failed"
#   make module   build/task.so, for the stock lua5.4
#   make examples / make bench / make clean
# Each area adds its own targets and suites in its .mk file (included below).

BUILD     := build
CC        ?= cc
CLANG     ?= clang
STRICT    := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror
CFLAGS    ?= -O2 -g
LUA_INC   := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIB   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
SAN       := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
VALGRIND  := $(shell command -v valgrind 2>/dev/null)
VG        := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
HEADERS   := task.h task_lua.h

# Suites: each .mk file appends phony targets to TEST_SUITES; a suite runs
# its program through test/run-one, which files the results.
TEST_SUITES :=

.PHONY: all run test test-suites module deps test-deps examples bench clean
all: module examples

# What the build needs is installed with apt-get when root; otherwise the
# exact command to run is printed. `deps`: Lua 5.4 (make run, make module);
# `test-deps`: also the compilers, sanitizer runtimes, valgrind and libuv
# that the suites use.
DEB_PKGS      := gcc liblua5.4-dev lua5.4 pkg-config
DEB_TEST_PKGS := $(DEB_PKGS) clang libclang-rt-14-dev valgrind libuv1-dev
define need_pkgs
	@missing=""; if command -v dpkg >/dev/null 2>&1; then \
	  for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	elif [ ! -f /usr/include/lua5.4/lua.h ]; then missing="$(1)"; fi; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing packages. Run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi
endef
deps:
	$(call need_pkgs,$(DEB_PKGS))
test-deps:
	$(call need_pkgs,$(DEB_TEST_PKGS))

$(BUILD):
	@mkdir -p $(BUILD)

# The standalone module for the stock lua5.4: the same header, compiled alone.
module: $(BUILD)/task.so
$(BUILD)/task.so: task.h task_lua.h | deps $(BUILD)
	$(CC) -std=c99 $(CFLAGS) $(STRICT) -fPIC -shared $(LUA_INC) -DTASK_LUA_MODULE \
	  -DTASK_IMPLEMENTATION -DTASK_LUA_IMPLEMENTATION -x c task_lua.h -o $@

# The headers on their own, in every language mode users have.
TEST_SUITES += suite-compile
suite-compile: deps | $(BUILD)
	@test/run-one compile sh test/compile.sh $(BUILD)/compile "$(LUA_INC)"

test: test-deps
	@rm -rf $(BUILD)/results
	@$(MAKE) --no-print-directory -k test-suites || true
	@sh test/summary $(BUILD)/results

clean:
	rm -rf $(BUILD)

# After the includes: a rule's prerequisites are expanded when it is read.
include $(sort $(wildcard test/*.mk examples/*.mk bench/*.mk))
test-suites: $(TEST_SUITES)
