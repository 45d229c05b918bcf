# examples/luv.mk: examples/luv_echo.lua, a TCP echo server in plain Lua (the
# stock lua5.4 with build/task.so, lua-luv and task.luv), and its client
# examples/luv_echo_client.lua (included by the top-level Makefile).
#   LUA_CPATH='build/?.so;;' lua5.4 examples/luv_echo.lua [--port 0] [--max-conns N]
#       [--duration-ms N] [--idle-ms N] [--grace-ms N]
#   LUA_CPATH='build/?.so;;' lua5.4 examples/luv_echo_client.lua PORT [CONNS [MSGS]]
# suite-examples-luv_echo: examples/luv_echo_test.sh starts the server on a
# free loopback port, loads it with build/echo_client and with the Lua
# client (every byte checked), lets it stop by itself and checks its
# summary. Skipped without lua-luv, naming the package.
.PHONY: suite-examples-luv_echo
TEST_SUITES += suite-examples-luv_echo
suite-examples-luv_echo: module $(BUILD)/echo_client
	@$(call or_skip,lua-luv,examples-luv_echo) \
	  CHECK_DIR=$(EX_OUT) test/run-one examples-luv_echo sh examples/luv_echo_test.sh $(BUILD)
