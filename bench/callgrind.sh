#!/bin/sh
# bench/callgrind.sh: instructions per operation of each Lua benchmark
# workload (bench/bench_lua.lua --one) and of its baseline, counted by
# valgrind's callgrind. Run by hand or by `make bench-callgrind`; never by
# `make test` (it takes a few minutes).
#
# Each figure is (count at N - count at 0) / N: the interpreter's start,
# `require "task"`, task.run's own set-up and the prepared data are in both
# runs and cancel. Unlike the timed rows, counts do not move with the
# machine's load, so they are the figures to compare before and after a
# change: the same binary gives the same counts within about 0.5% (Lua
# seeds its string hashes from the time; the sleep rows sleep on the real
# clock and cqueues polls, so timers group into ticks a little differently).
# A baseline's count can move when task.so changes: the module's heap sets
# the pace of the collector for the whole process. The memory row counts
# instructions to get n tasks to their suspension, not bytes.
#
# Environment: TASK_BUILD (the directory of task.so, default build), LUA
# (the interpreter, default lua5.4; one with symbols shows Lua's own
# functions in callgrind_annotate), CALLGRIND_OUT (a directory to keep the
# callgrind.out files in, for callgrind_annotate --inclusive=yes).
set -u
LUA=${LUA:-lua5.4}
export TASK_BUILD="${TASK_BUILD:-build}"
if ! command -v valgrind >/dev/null 2>&1; then
    echo "callgrind.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1
fi
if [ ! -f "$TASK_BUILD/task.so" ]; then
    echo "callgrind.sh: no $TASK_BUILD/task.so (make module, or set TASK_BUILD)" >&2; exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/callgrind.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
out=${CALLGRIND_OUT:-$tmp}
mkdir -p "$out"
cq=yes
"$LUA" -e 'require "cqueues"' >/dev/null 2>&1 || cq=

# count WORKLOAD N: total instructions of one run (cached per WORKLOAD N)
count() {
    f="$out/callgrind.out.$1.$2"
    if [ ! -s "$f" ]; then
        valgrind -q --tool=callgrind --callgrind-out-file="$f" \
            "$LUA" bench/bench_lua.lua --one "$1" "$2" >"$tmp/log" 2>&1 ||
            { cat "$tmp/log" >&2; echo "callgrind.sh: $1 at $2 failed" >&2; exit 1; }
    fi
    sed -n 's/^summary:[[:space:]]*//p; s/^totals:[[:space:]]*//p' "$f" | head -n 1 | cut -d ' ' -f 1
}

# per WORKLOAD N: instructions per operation
per() {
    a=$(count "$1" "$2") || exit 1
    b=$(count "$1" 0) || exit 1
    echo "$a $b $2" | awk '{ printf "%.0f", ($1 - $2) / $3 }'
}

# line NAME N OURS BASELINE
line() {
    o=$(per "$3" "$2") || exit 1
    b=$(per "$4" "$2") || exit 1
    printf '%s\t%s\t%s\n' "$1" "$o" "$b" >>"$tmp/table"
}

: >"$tmp/table"
line "spawn(f):join() one at a time (per task)" 50000 spawn_join raw_create_resume
line "spawn 1000, then join 1000 (per task)" 50000 spawn_batch raw_batch
line "task.yield() round trip" 100000 yield raw_resume_yield
line "channel ping-pong (per message)" 100000 pingpong raw_resume_yield
line "task.timeout(1000, f) vs spawn(f):join()" 50000 timeout spawn_join
line "100k sleepers vs raw floor (per task)" 100000 sleep raw_sleep
if [ -n "$cq" ]; then
    line "100k sleepers vs cqueues wrap+sleep (per task)" 100000 sleep cq_sleep
else
    printf '%s\t-\t-\n' "100k sleepers vs cqueues: lua-cqueues is not installed" >>"$tmp/table"
fi
line "spawn to a sleep, the memory row (per task)" 100000 mem raw_mem

echo "instructions per operation (callgrind, $LUA, $TASK_BUILD/task.so)"
awk -F '\t' '
{ n++; name[n] = $1; o[n] = $2; b[n] = $3; if (length($1) > w) w = length($1) }
END {
    fmt = "%-" w "s  %9s  %9s  %6s\n"
    printf fmt, "workload", "ours", "baseline", "ratio"
    for (i = 1; i <= n; i++)
        printf fmt, name[i], o[i], b[i], (b[i] + 0 > 0) ? sprintf("%.2f", o[i] / b[i]) : "-"
}' "$tmp/table"
