# test/readme.mk: README.md's code blocks, run as a reader would run them
# (included by the top-level Makefile).
#   readme    test/readme.lua: each ```lua block with build/task.so in the
#             stock lua5.4, each ```c program built with the strict flags,
#             each ```sh block in a scratch copy; stdout compared with the
#             ```text block that follows. Its top comment has the conventions.

.PHONY: suite-readme
TEST_SUITES += suite-readme
suite-readme: module
	@CC='$(CC)' README_CFLAGS='-std=c99 $(CFLAGS) $(STRICT)' LUA_INC='$(LUA_INC)' LUA_LIB='$(LUA_LIB)' \
	  test/run-one readme $(LUA) test/readme.lua $(BUILD)
