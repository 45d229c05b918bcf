#!/bin/sh
# compile_threads.sh OUTDIR: task.h with TASK_THREADS must build warning-free
# as C99, C11 and C++ under gcc and clang (the implementation and a caller
# of task_post_resume). One TAP line per combination.
out=$1
mkdir -p "$out"
W="${STRICT:-$(sed -n 's/^STRICT *:= *//p' Makefile)} -I."
src='#define TASK_THREADS\n#define TASK_IMPLEMENTATION\n#include "task.h"\nint main(void){ task_sched *s = task_create(0, 0); int rc = task_post_enable(s, 4, 0, 0);\n rc |= task_post_resume(s, 1, 0); task_tick(s, 0); task_destroy(s); return rc < 0; }'
for cc in gcc clang; do
    cxx=g++; [ $cc = clang ] && cxx=clang++
    if ! command -v $cc >/dev/null 2>&1; then test/need --skip "TASK_THREADS $cc" $cc; continue; fi
    for std in c99 c11 c++11 c++17; do
        case $std in c++*) c=$cxx; ext=cc;; *) c=$cc; ext=c;; esac
        if ! command -v $c >/dev/null 2>&1; then test/need --skip "TASK_THREADS $c -std=$std" "$([ $c = g++ ] && echo g++ || echo clang)"; continue; fi
        f="$out/threads-$cc-$std.$ext"
        printf '%b\n' "$src" >"$f"
        if $c -std=$std $W -pthread "$f" -o "$out/threads-$cc-$std" 2>"$f.err" && "$out/threads-$cc-$std"; then
            echo "ok - TASK_THREADS $c -std=$std"
        else echo "not ok - TASK_THREADS $c -std=$std"; head -n 20 "$f.err"; fi
    done
done
exit 0
