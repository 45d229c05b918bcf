#!/bin/sh
# smoke.sh DIR CC FLAGS...: for make test. Builds the benchmarks with the
# given (strict) flags and runs one tiny iteration of every row through the
# table driver. Checks that they work, never how fast they are.
dir=$1; shift
if sh bench/build.sh "$dir/bench_core" "$@" 2>"$dir.err"; then echo "ok - bench_core builds warning-free"
else echo "not ok - bench_core builds warning-free"; cat "$dir.err"; exit 0; fi
if "$dir/bench_core" --smoke >"$dir/smoke.out"; then echo "ok - bench_core --smoke runs"
else echo "not ok - bench_core --smoke runs"; exit 0; fi
grep '^row' "$dir/smoke.out" | cut -f2 | sed 's/^ */ok - row: /'
grep '^skip' "$dir/smoke.out" | cut -f2,3 | sed 's/^ */ok - row skipped (no peer): /'
if sh bench/run.sh "$dir/smoke.json" "cat $dir/smoke.out" >"$dir/smoke.table" &&
   [ "$(grep -c '^  {' "$dir/smoke.json")" -eq "$(grep -c '^\(row\|skip\)' "$dir/smoke.out")" ] &&
   [ "$(grep -c '^row' "$dir/smoke.out")" -ge 7 ]; then
    echo "ok - run.sh assembles the table and the json"
else
    echo "not ok - run.sh assembles the table and the json"; cat "$dir/smoke.table"
fi
