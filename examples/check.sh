#!/bin/sh
# check.sh NAME EXPECTED CMD...: runs an example and prints TAP lines:
#   ok - NAME exits 0
#   ok - NAME output matches EXPECTED      (its stdout, byte for byte)
#   ok - NAME writes nothing on stderr     (sanitizer and valgrind reports)
# With MAX_MS set, also: ok - NAME runs in under MAX_MS ms (a bound for a
# hang, far above its real time, so a loaded machine does not fail it).
# The output goes to $CHECK_DIR (default build/examples)/NAME.out and .err.
name=$1; expected=$2; shift 2
dir=${CHECK_DIR:-build/examples}
mkdir -p "$dir"
out="$dir/$name.out"; err="$dir/$name.err"

start=$(date +%s%N 2>/dev/null)
"$@" >"$out" 2>"$err"
rc=$?
end=$(date +%s%N 2>/dev/null)

if [ $rc -eq 0 ]; then echo "ok - $name exits 0"
else echo "not ok - $name exits $rc"; tail -n 20 "$err"; fi

if cmp -s "$expected" "$out"; then echo "ok - $name output matches $expected"
else echo "not ok - $name output matches $expected"; diff -u "$expected" "$out" | head -n 40; fi

if [ ! -s "$err" ]; then echo "ok - $name writes nothing on stderr"
else echo "not ok - $name writes nothing on stderr"; head -n 40 "$err"; fi

if [ -n "$MAX_MS" ]; then
    case "$start$end" in
    *N*|"") echo "ok - $name runs in under $MAX_MS ms # SKIP no nanosecond date" ;;
    *) ms=$(( (end - start) / 1000000 ))
       if [ "$ms" -lt "$MAX_MS" ]; then echo "ok - $name runs in under $MAX_MS ms"
       else echo "not ok - $name runs in under $MAX_MS ms (took $ms ms)"; fi ;;
    esac
fi
exit 0
