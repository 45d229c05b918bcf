#!/bin/sh
# build-check.sh OUTDIR CC [CLANG]: every example compiles warning-free with
# $STRICT (the top-level Makefile's flags), as C99 and C11, with each
# compiler given. libuv_host only where the libuv headers are. TAP lines.
out=$1; shift
mkdir -p "$out"
: "${STRICT:=-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror}"
for cc in "$@"; do
    [ -n "$cc" ] || continue
    if ! command -v "$cc" >/dev/null 2>&1; then echo "ok - examples with $cc # SKIP $cc not installed"; continue; fi
    have_uv=0
    $cc -E -include uv.h -x c /dev/null >/dev/null 2>&1 && have_uv=1
    for std in c99 c11; do
        for ex in c_tasks frame_loop libuv_host; do
            name="$ex $cc -std=$std"
            extra=
            if [ $ex = libuv_host ]; then
                if [ $have_uv = 0 ]; then echo "ok - $name # SKIP libuv headers missing"; continue; fi
                extra=$(pkg-config --cflags libuv 2>/dev/null)
            fi
            obj="$out/$ex-$(basename "$cc")-$std.o"
            # shellcheck disable=SC2086
            if $cc -std=$std $STRICT -I. $extra -c "examples/$ex.c" -o "$obj" 2>"$obj.err"; then echo "ok - $name"
            else echo "not ok - $name"; head -n 20 "$obj.err"; fi
        done
    done
done
exit 0
