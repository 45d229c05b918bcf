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

.PHONY: all run test test-suites module deps examples bench clean
all: module examples

# Lua 5.4 headers and pkg-config: installed with apt-get when root,
# otherwise the exact command to run is printed.
DEB_PKGS := liblua5.4-dev lua5.4 pkg-config
deps:
	@if [ ! -f /usr/include/lua5.4/lua.h ] || ! command -v lua5.4 >/dev/null 2>&1 || ! command -v pkg-config >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing $(DEB_PKGS)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	  else echo "Lua 5.4 headers are missing. Run: sudo apt-get install -y $(DEB_PKGS)"; exit 1; fi; \
	fi

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

test: deps
	@rm -rf $(BUILD)/results
	@$(MAKE) --no-print-directory -k test-suites || true
	@sh test/summary $(BUILD)/results

clean:
	rm -rf $(BUILD)

# After the includes: a rule's prerequisites are expanded when it is read.
include $(sort $(wildcard test/*.mk examples/*.mk bench/*.mk))
test-suites: $(TEST_SUITES)
