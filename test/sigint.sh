#!/bin/sh
# sigint.sh BUILD: Ctrl-C stops a program under task.run as it stops the
# plain interpreter: while the loop sleeps between timers, while a task
# spins without suspending, and while every task is parked. Each case
# runs lua5.4 in the background, sends SIGINT, and wants it to exit in
# time with "interrupted!" on stderr and its to-be-closed variables run.
build=$1
dir=$build/sigint
mkdir -p "$dir"
run_case() { # name code [signals [closes]]
    out="$dir/$1.out"; err="$dir/$1.err"
    env -u LUA_CPATH_5_4 -u LUA_CPATH_5_5 LUA_CPATH="$build/?.so" ${LUA:-lua5.4} -e "$2" >"$out" 2>"$err" &
    pid=$!
    sleep 0.5
    n=0
    while [ $n -lt "${3:-1}" ]; do kill -INT $pid 2>/dev/null; sleep 0.2; n=$((n + 1)); done
    i=0
    while kill -0 $pid 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 $pid 2>/dev/null; then
        kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
        echo "not ok - sigint: $1: still running 5 s after SIGINT"; return
    fi
    wait $pid; st=$?
    closed=yes; [ "${4:-yes}" = yes ] && ! grep -q '^closed$' "$out" && closed=no
    if [ $st -ne 0 ] && grep -q 'interrupted!' "$err" && [ $closed = yes ]; then
        echo "ok - sigint: $1: exits (status $st) with 'interrupted!'${4:+}"
    else
        echo "not ok - sigint: $1: status $st"; sed 's/^/# /' "$err" | head -n 10; sed 's/^/# out: /' "$out" | head -n 5
    fi
}
pre='local task = require "task"; local function closer() return setmetatable({}, {__close = function() print("closed"); io.stdout:flush() end}) end '
run_case sleeping "$pre task.run(function() local c <close> = closer(); task.sleep(60000) end)"
run_case spinning "$pre task.run(function() local c <close> = closer(); local n = 0; while true do n = n + 1 end end)"
run_case parked "$pre task.run(function() local ch = task.channel(1); task.spawn(function() task.sleep(60000) end); local c <close> = closer(); ch:recv() end)"
# a pcall loop swallows the first interrupt, as in plain Lua: the second
# one cannot be swallowed (its to-be-closed variables may then not run)
run_case spinning_in_pcall "$pre task.run(function() local c <close> = closer(); while true do pcall(function() local n = 0; for i = 1, 1e9 do n = n + i end end) end end)" 2 no
