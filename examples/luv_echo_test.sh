#!/bin/sh
# luv_echo_test.sh BUILD: examples/luv_echo.lua end to end on loopback, with
# BUILD/task.so and BUILD/echo_client (examples/echo_client.c). TAP lines.
#   1. the server on a free port (--port 0; it prints the port), loaded by
#      echo_client (50 connections x 200 messages, every byte checked, then
#      an idle connection and one left open at shutdown); it must stop by
#      itself after 52 connections and its summary must count them all;
#   2. the same with the Lua client examples/luv_echo_client.lua (20 x 100);
#   3. with a short --duration-ms and no client it must stop by itself.
# Every wait is bounded; a server still running at the end is killed (by
# its pid). Environment: LUA (default lua5.4), CHECK_DIR (its files).
build=$1
lua=${LUA:-lua5.4}
dir=${CHECK_DIR:-$build/examples}
mkdir -p "$dir"
out="$dir/luv_echo.server.out"; err="$dir/luv_echo.server.err"
export LUA_CPATH="$build/?.so;;" LUA_PATH="./?.lua;;"

# wait_exit PID SECONDS: 0 when PID ended in time (its status in $st).
wait_exit() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt $(($2 * 10)) ]; then kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; st=killed; return 1; fi
        sleep 0.1
    done
    wait "$1"; st=$?
    return 0
}

# start ARGS...: the server in the background ($pid), its port in $port.
start() {
    : >"$out"; : >"$err" # emptied here, not by the child: no stale port from the last run
    "$lua" examples/luv_echo.lua "$@" >"$out" 2>"$err" &
    pid=$!
    port=; i=0
    while [ -z "$port" ] && [ $i -lt 200 ] && kill -0 $pid 2>/dev/null; do
        port=$(sed -n 's/^luv_echo: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out")
        [ -n "$port" ] || sleep 0.05
        i=$((i + 1))
    done
    [ -n "$port" ] && return 0
    echo "not ok - luv_echo: the server prints its port"; cat "$err"
    kill $pid 2>/dev/null
    return 1
}

# check_end WHAT WANT: the server stopped by itself, with summary WANT and nothing on stderr.
check_end() {
    if wait_exit $pid 20 && [ "$st" = 0 ]; then echo "ok - luv_echo: $1: the server stops by itself"
    else echo "not ok - luv_echo: $1: the server stops by itself (status $st)"; fi
    got=$(tail -n 1 "$out")
    if [ "$got" = "$2" ]; then echo "ok - luv_echo: $1: the summary counts every connection and byte"
    else echo "not ok - luv_echo: $1: the summary"; echo "#  got: $got"; echo "# want: $2"; fi
    if [ ! -s "$err" ]; then echo "ok - luv_echo: $1: nothing on stderr"
    else echo "not ok - luv_echo: $1: nothing on stderr"; head -n 40 "$err" | sed 's/^/# /'; fi
}

# ---- 1. the C client: load, idle timeout, cancellation at shutdown ----
if start --port 0 --max-conns 52 --idle-ms 300 --grace-ms 100 --duration-ms 30000; then
    echo "ok - luv_echo: the server listens on a free loopback port"
    "$build/echo_client" "$port" 50 200 --idle --cancel >"$dir/luv_echo.client.out" 2>&1
    crc=$?
    sed "s/^\(not ok\|ok\) - echo: /\1 - luv_echo: C client: /" "$dir/luv_echo.client.out"
    [ $crc -eq 0 ] || echo "not ok - luv_echo: C client exits $crc"
    bytes=$(sed -n 's/.* \([0-9][0-9]*\) bytes echoed and checked.*/\1/p' "$dir/luv_echo.client.out")
    check_end "C client" "luv_echo: stopped (max-conns): 52 connections, 50 closed by peer, 1 timed out, 1 cancelled, 0 errors, $((${bytes:-0} + 4)) bytes echoed"
fi

# ---- 2. the Lua client ----
if start --port 0 --max-conns 20 --idle-ms 10000 --grace-ms 10000 --duration-ms 60000; then
    "$lua" examples/luv_echo_client.lua "$port" 20 100 >"$dir/luv_echo.luaclient.out" 2>&1
    crc=$?
    sed "s/^\(not ok\|ok\) - luv_echo_client: /\1 - luv_echo: Lua client: /" "$dir/luv_echo.luaclient.out"
    [ $crc -eq 0 ] || { echo "not ok - luv_echo: Lua client exits $crc"; tail -n 20 "$dir/luv_echo.luaclient.out" | sed 's/^/# /'; }
    bytes=$(sed -n 's/.* \([0-9][0-9]*\) bytes echoed and checked.*/\1/p' "$dir/luv_echo.luaclient.out")
    check_end "Lua client" "luv_echo: stopped (max-conns): 20 connections, 20 closed by peer, 0 timed out, 0 cancelled, 0 errors, ${bytes:-0} bytes echoed"
fi

# ---- 3. the duration bound alone ----
if start --port 0 --duration-ms 200; then
    check_end "no client" "luv_echo: stopped (duration): 0 connections, 0 closed by peer, 0 timed out, 0 cancelled, 0 errors, 0 bytes echoed"
fi
exit 0
