#!/bin/sh
# build-check.sh OUTDIR CC [CLANG]: every example (examples/*.c) compiles
# warning-free with $STRICT (the top-level Makefile's flags), as C99 and
# C11, with each compiler given; the ones that embed Lua with $LUA_INC,
# libuv_host only where the libuv headers are. TAP lines.
out=$1; shift
mkdir -p "$out"
: "${STRICT:=$(sed -n 's/^STRICT *:= *//p' Makefile)}"
: "${LUA_INC:=$(pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)}"
for cc in "$@"; do
    [ -n "$cc" ] || continue
    if ! command -v "$cc" >/dev/null 2>&1; then test/need --skip "examples with $cc" "$(basename "$cc")"; continue; fi
    for std in c99 c11; do
        for src in examples/*.c; do
            ex=$(basename "$src" .c)
            name="$ex $cc -std=$std"
            extra=
            if grep -q 'include "../task_lua.h"' "$src"; then extra=$LUA_INC; fi
            if [ "$ex" = libuv_host ]; then
                if ! test/need --have libuv1-dev; then test/need --skip "$name" libuv1-dev; continue; fi
                extra=$(pkg-config --cflags libuv 2>/dev/null)
            fi
            obj="$out/$ex-$(basename "$cc")-$std.o"
            # shellcheck disable=SC2086
            if $cc -std=$std $STRICT -I. $extra -c "$src" -o "$obj" 2>"$obj.err"; then echo "ok - $name"
            else echo "not ok - $name"; head -n 20 "$obj.err"; fi
        done
    done
done
exit 0
