#!/bin/sh
# compile.sh OUTDIR LUA_CFLAGS: both headers must build warning-free as C99,
# C11 and C++ with gcc and clang, declarations alone and with the
# implementation. Prints one TAP line per combination.
out=$1; luainc=$2
mkdir -p "$out"
W="-Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror -I. $luainc"
n=0
check() { # name lang compiler std source
    n=$((n + 1))
    src="$out/$1.$2"
    printf '%b\n' "$5" >"$src"
    if $3 $4 $W -c "$src" -o "$out/$1.o" 2>"$out/$1.err"; then echo "ok - $1"
    else echo "not ok - $1"; head -n 20 "$out/$1.err"; fi
}
core_impl='#define TASK_IMPLEMENTATION\n#include "task.h"\nint main(void){return 0;}'
core_decl='#include "task.h"\nint main(void){ task_sched *s = task_create(0, 0); return s != 0; }'
lua_impl='#define TASK_IMPLEMENTATION\n#define TASK_LUA_IMPLEMENTATION\n#include "task_lua.h"\nint main(void){return 0;}'
for cc in gcc clang; do
    cxx=g++; [ $cc = clang ] && cxx=clang++
    for std in c99 c11; do
        check "task.h-$cc-$std" c $cc -std=$std "$core_impl"
        check "task.h-decl-$cc-$std" c $cc -std=$std "$core_decl"
        [ -f task_lua.h ] && check "task_lua.h-$cc-$std" c $cc -std=$std "$lua_impl"
    done
    for std in c++11 c++17; do
        check "task.h-$cxx-$std" cc $cxx -std=$std "$core_impl"
        [ -f task_lua.h ] && check "task_lua.h-$cxx-$std" cc $cxx -std=$std "$lua_impl"
    done
done
exit 0
