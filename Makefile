# task.h / task_lua.h
#   make run      build and run the demo
#   make test     every test suite; the last line is "N passed, N failed"
#   make module   build/task.so, for the stock lua5.4
#   make install / make uninstall   headers, module, pkg-config, CMake and
#                 LuaLS files (install.mk)
#   make examples / make bench / make clean
# Each area adds its own targets and suites in its .mk file (included below).
#
# Another Lua (5.4 or 5.5) for everything Lua: its headers, library and
# interpreter, e.g.  make test LUA_INC=-I/opt/lua/include
#                    LUA_LIB='/opt/lua/lib/liblua.a -lm -ldl' LUA=/opt/lua/bin/lua

BUILD     := build
RESULTS   ?= $(BUILD)/results
CC        ?= cc
CLANG     ?= clang
LUA       ?= lua5.4
STRICT    := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror
CFLAGS    ?= -O2 -g
LUA_INC   := $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
LUA_LIB   := $(shell pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)
SAN       := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
VG        := valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
HEADERS   := task.h task_lua.h
TASK_VERSION := $(shell sed -n 's/^\#define TASK_VERSION "\(.*\)"$$/\1/p' task.h)
# Scripts run by the recipes read these (test/need, test/run-one, the
# compile checks); a script run by hand reads STRICT from this file.
export RESULTS STRICT CC CLANG LUA LUA_INC LUA_LIB

# Suites: each .mk file appends phony targets to TEST_SUITES. Suite
# suite-NAME runs its program through `test/run-one NAME`, which files the
# results; test/summary counts a suite that filed nothing as failed.
TEST_SUITES :=

.PHONY: all run test test-suites module deps test-deps examples bench clean
all: module examples

# Packages (test/need): the required ones are installed with apt-get when
# root, otherwise make stops with the command to run. The optional ones
# are installed when root; otherwise each suite that needs one is skipped,
# saying which package and the command.
DEB_PKGS      := gcc make liblua5.4-dev lua5.4 pkg-config
DEB_TEST_PKGS := valgrind clang libclang-rt-14-dev g++ libuv1-dev libpcl1-dev lua-cqueues lua-luv luarocks cmake lua-check
deps:
	@test/need $(DEB_PKGS)
test-deps: deps
	@test/need --optional "the suites that use them are skipped" $(DEB_TEST_PKGS)

# $(call or_skip,PKGS,NAME) begins a suite's recipe line: without PKGS, the
# suite NAME is filed as skipped (with the reason and the command) instead.
or_skip = test/need --have $(1) || exec test/run-one $(2) test/need --skip $(2) $(1);

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
	@rm -rf $(RESULTS)
	@$(MAKE) --no-print-directory -k test-suites || true
	@sh test/summary $(RESULTS) $(TEST_SUITES:suite-%=%)

clean:
	rm -rf $(BUILD)

# After the includes: a rule's prerequisites are expanded when it is read.
include install.mk $(sort $(wildcard test/*.mk examples/*.mk bench/*.mk))
test-suites: $(TEST_SUITES)
