# test/luv.mk: task.luv (task/luv.lua, `require "task.luv"`), task's
# scheduler driven from a luv loop, in the stock lua5.4 with build/task.so
# (included by the top-level Makefile).
#   luv   test/luv.lua: the driver (run, install, ticks on wakes, deadlock,
#         errors of callbacks) and every wrapped call: success, error,
#         timeout and cancel while pending, with no handle left behind
# Needs lua-luv (installed by make test when root); without it the suite
# is skipped, naming the package.
.PHONY: suite-luv
TEST_SUITES += suite-luv
suite-luv: module
	@$(call or_skip,lua-luv,luv) test/run-one luv $(LUA) test/luv.lua $(BUILD)
