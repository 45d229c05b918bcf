#!/bin/sh
# lua_smoke.sh DIR: for make test. Runs one tiny iteration of every Lua
# benchmark row (bench_lua.lua --smoke) and the table driver on its output.
# Checks that they work, never how fast they are.
dir=$1
if ${LUA:-lua5.4} bench/bench_lua.lua --smoke >"$dir/smoke.out" 2>"$dir/smoke.err"; then
    echo "ok - bench_lua.lua --smoke runs"
else
    echo "not ok - bench_lua.lua --smoke runs"; cat "$dir/smoke.err"; exit 0
fi
grep '^row' "$dir/smoke.out" | cut -f2 | sed 's/^ */ok - row: /'
grep '^skip' "$dir/smoke.out" | cut -f2,3 | sed 's/^ */ok - row skipped (no peer): /'
if sh bench/run.sh "$dir/smoke.json" "cat $dir/smoke.out" >"$dir/smoke.table" &&
   [ "$(grep -c '^  {' "$dir/smoke.json")" -eq "$(grep -c '^\(row\|skip\)' "$dir/smoke.out")" ] &&
   [ "$(grep -c '^\(row\|skip\)' "$dir/smoke.out")" -ge 6 ]; then
    echo "ok - run.sh assembles the Lua table and the json"
else
    echo "not ok - run.sh assembles the Lua table and the json"; cat "$dir/smoke.table"
fi
