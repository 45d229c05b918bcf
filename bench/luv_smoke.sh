#!/bin/sh
# luv_smoke.sh DIR: for make test. Runs the luv echo benchmark once with a
# few round trips per connection (bench/luv_echo.lua --smoke: each server
# starts, echoes every byte right and stops by itself) and the table
# driver on its output. Checks that it works, never how fast it is.
# Environment: TASK_BUILD, ECHO_LOAD, LUA (as bench/luv.mk sets them).
dir=$1
if ${LUA:-lua5.4} bench/luv_echo.lua --smoke >"$dir/smoke.out" 2>"$dir/smoke.err"; then
    echo "ok - luv_echo.lua --smoke runs"
else
    echo "not ok - luv_echo.lua --smoke runs"; cat "$dir/smoke.err"; exit 0
fi
grep '^row' "$dir/smoke.out" | cut -f2 | sed 's/^ */ok - row: /'
grep '^skip' "$dir/smoke.out" | cut -f2,3 | sed 's/^ */ok - row skipped (no peer): /'
if sh bench/run.sh "$dir/smoke.json" "cat $dir/smoke.out" >"$dir/smoke.table" &&
   [ "$(grep -c '^  {' "$dir/smoke.json")" -eq "$(grep -c '^\(row\|skip\)' "$dir/smoke.out")" ] &&
   [ "$(grep -c '^\(row\|skip\)' "$dir/smoke.out")" -eq 4 ]; then
    echo "ok - run.sh assembles the luv echo rows and the json"
else
    echo "not ok - run.sh assembles the luv echo rows and the json"; cat "$dir/smoke.table"
fi
