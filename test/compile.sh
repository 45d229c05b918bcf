#!/bin/sh
# compile.sh OUTDIR LUA_CFLAGS: the headers and the examples must build
# warning-free ($STRICT, the Makefile's flags) with gcc and clang at -O0,
# -O2, -O3 and -O3 -flto, where the optimisers' flow analysis finds what
# -O0 does not:
#   task.h        declarations alone (task_post_* only with TASK_THREADS);
#                 the implementation in a small program (linked and run at
#                 -O3 -flto) as C99, C11, C++11 and C++17; each documented
#                 option (TASK_API=static, TASK_THREADS, TASK_PAGE_SHIFT,
#                 TASK_ASSERT, TASK_REALLOC/TASK_FREE, TASK_WAKE_LIMIT) alone
#                 as C99 at -O2 and -O3, and all of them at once as C99 and
#                 C++17 at every level (and C11 at -O3)
#   task_lua.h    the implementation as C99, C11, C++11 and C++17
#   examples/*.c  -std=c99 at -O2, -O3 (gcc), -O3 -flto, linked (the ones
#                 that embed Lua are task_lua.h's build at those levels)
# One TAP line per combination; the jobs run in parallel (one per CPU). A
# compiler that is not installed is skipped, saying which package has it.
out=$1; luainc=$2
W="${STRICT:-$(sed -n 's/^STRICT *:= *//p' Makefile)} -I."
LUALIB=${LUA_LIB:-$(pkg-config --libs lua5.4 2>/dev/null || echo -llua5.4)}
rm -rf "$out/jobs" "$out/res"
mkdir -p "$out/src" "$out/jobs" "$out/res" "$out/bin"
n=0

# job NAME CMD...: compiles (and runs, when the command says so) later.
job() {
    n=$((n + 1))
    id=$(printf '%04d' $n)
    name=$1; shift
    {
        echo "if ( $* ) >$out/res/$id.err 2>&1; then echo 'ok - $name' >$out/res/$id.tap"
        echo "else { echo 'not ok - $name'; head -n 20 $out/res/$id.err; } >$out/res/$id.tap; fi"
    } >"$out/jobs/$id.sh"
}

# ---- sources --------------------------------------------------------------
cat >"$out/src/decl.c" <<'EOF'
#include "task.h"
int main(void) { task_sched *s = task_create(0, 0); return s != 0; }
EOF

# The program each implementation build links and runs: enough of the API
# (timers, sleeps, ids, tokens, scopes, trace headers) for the inliner.
cat >"$out/src/prog.h" <<'EOF'
#define TASK_IMPLEMENTATION
#include "task.h"
struct st { int pc, n; task_id sc; };
static int child(task_ctx *c) { return c->why == TASK_WHY_START ? TASK_STEP_YIELD : TASK_STEP_DONE; }
static int step(task_ctx *c) {
    struct st *p = (struct st *)c->ud;
    TASK_PT_BEGIN(c, p->pc);
    TASK_PT_SLEEP(c, TASK_MSEC);
    TASK_PT_YIELD(c);
    if (task_scope_open(c->sched, &p->sc) == TASK_OK) {
        (void)task_spawn(c->sched, child, NULL, NULL, NULL);
        TASK_PT_SCOPE_CLOSE(c, p->sc);
    }
    p->n++;
    TASK_PT_END(c);
}
static void cb(task_sched *s, task_id t, void *ud) { (void)s; (void)t; ++*(int *)ud; }
int main(void) {
    task_sched *s = task_create(0, 0);
    struct st a = {0, 0, 0};
    task_id id, ext, tok;
    int fired = 0;
    uint64_t now = 0, tr = 0;
    char tp[TASK_TRACE_HEADER_LEN + 1];
    if (!s) return 1;
    if (task_token_new(s, 0, &tok) != TASK_OK || task_ext_alloc(s, &ext) != TASK_OK) return 2;
    if (task_spawn(s, step, &a, NULL, &id) != TASK_OK || task_after(s, 5, cb, &fired, NULL) != TASK_OK) return 3;
#ifdef TASK_THREADS
    if (task_post_enable(s, 4, NULL, NULL) != TASK_OK || task_post_resume(s, ext, NULL) != TASK_OK) return 4;
#else
    if (task_ext_resume(s, ext, NULL) != TASK_OK) return 4;
#endif
    while (task_count(s, -1) > 0 && now < TASK_SEC) { task_tick(s, now); now += TASK_MSEC / 4; }
    task_tick(s, now);
    (void)task_token_cancel(s, tok);
    (void)task_token_release(s, tok);
    (void)task_trace_spawn(s);
    if (task_trace_format(task_trace_propagate(s) | 0x10000u, tp) != TASK_OK ||
        task_trace_parse(tp, &tr, NULL) != TASK_OK) return 5;
    if (task_destroy(s) != TASK_OK) return 6;
    return a.n == 1 && fired == 1 ? 0 : 7;
}
EOF

cat >"$out/src/realloc.h" <<'EOF'
#include <stdlib.h>
static size_t my_calls;
static void *my_realloc(void *p, size_t n) { my_calls++; return realloc(p, n); }
static void my_free(void *p) { free(p); }
#define TASK_REALLOC(p, n) my_realloc((p), (n))
#define TASK_FREE(p) my_free(p)
EOF

cfg() { # NAME LINES...: a source with these lines before the program
    f="$out/src/$1.c"; shift
    : >"$f"
    for line in "$@"; do printf '%s\n' "$line" >>"$f"; done
    printf '#include "prog.h"\n' >>"$f"
}
cfg default
cfg static '#define TASK_API static'
cfg threads '#define TASK_THREADS'
cfg pageshift '#define TASK_PAGE_SHIFT 3'
cfg assert '#include <stdio.h>' '#include <stdlib.h>' \
    '#define TASK_ASSERT(c) do { if (!(c)) { fputs("assert\n", stderr); abort(); } } while (0)'
cfg realloc '#include "realloc.h"'
cfg wakelimit '#define TASK_WAKE_LIMIT 2'
cfg all '#define TASK_API static' '#define TASK_THREADS' '#define TASK_PAGE_SHIFT 3' \
    '#include <stdio.h>' '#include <stdlib.h>' \
    '#define TASK_ASSERT(c) do { if (!(c)) { fputs("assert\n", stderr); abort(); } } while (0)' \
    '#include "realloc.h"' '#define TASK_WAKE_LIMIT 2'

# without TASK_THREADS, task_post_* is not declared (a call must not build)
cat >"$out/src/nopost.c" <<'EOF'
#include "task.h"
int main(void) { return task_post_resume(0, 0, 0); }
EOF

cat >"$out/src/lua.c" <<'EOF'
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "task_lua.h"
int main(void) { return 0; }
EOF

# ---- the jobs ---------------------------------------------------------------
I="-I$out/src"
for cc in gcc clang; do
    cxx=g++; [ $cc = clang ] && cxx=clang++
    if ! command -v $cc >/dev/null 2>&1; then test/need --skip "$cc" $cc; continue; fi
    cxxstds="c++11 c++17"
    if ! command -v $cxx >/dev/null 2>&1; then test/need --skip "$cxx" "$([ $cc = gcc ] && echo g++ || echo clang)"; cxxstds=; fi
    for std in c99 c11 $cxxstds; do
        case $std in c++*) c="$cxx -x c++";; *) c=$cc;; esac
        job "task.h declarations $cc -std=$std" $c -std=$std $W -c "$out/src/decl.c" -o "$out/bin/decl-$cc-$std.o"
    done
    job "task_post_resume undeclared without TASK_THREADS, $cc" "! $cc -std=c99 $W -c $out/src/nopost.c -o $out/bin/nopost-$cc.o"
    for opt in O0 O2 O3 O3-flto; do
        o=$(echo "-$opt" | sed 's/-flto/ -flto/')
        for cf in default static threads pageshift assert realloc wakelimit all; do
            # each option alone where the optimisers look (C99, -O2 and -O3);
            # -O0, -flto, C11 and C++: the default and all options at once
            case $cf/$opt in
            default/*) stds="c99 c11 $cxxstds";;
            all/O3) stds="c99 c11 ${cxxstds#c++11 }";;
            all/*) stds="c99 ${cxxstds#c++11 }";;
            */O2|*/O3) stds=c99;;
            *) continue;;
            esac
            pt=; case $cf in threads|all) pt=-pthread;; esac
            for std in $stds; do
                case $std in c++*) c="$cxx -x c++";; *) c=$cc;; esac
                b="$out/bin/$cf-$cc-$std-$opt"
                case $opt in # -flto: linked, and the program runs
                *flto) job "task.h $cf $cc -std=$std $o" "$c -std=$std $o $W $I $pt $out/src/$cf.c -o $b && $b";;
                *) job "task.h $cf $cc -std=$std $o" "$c -std=$std $o $W $I -c $out/src/$cf.c -o $b.o";;
                esac
            done
        done
        # task_lua.h at -O2 and up: through examples/host.c and echo_server.c
        if [ -f task_lua.h ] && [ $opt = O0 ]; then
            for std in c99 c11 $cxxstds; do
                case $std in c++*) c="$cxx -x c++";; *) c=$cc;; esac
                job "task_lua.h $cc -std=$std $o" "$c -std=$std $o $W $luainc $out/src/lua.c -o $out/bin/lua-$cc-$std-$opt -x none $LUALIB -lm"
            done
        fi
        # the standalone module (TASK_LUA_MODULE: task.run, signals, clock)
        if [ -f task_lua.h ] && [ $opt != O0 ]; then
            job "task_lua.h module $cc -std=c99 $o" "$cc -std=c99 $o $W $luainc -fPIC -shared -DTASK_LUA_MODULE -DTASK_IMPLEMENTATION -DTASK_LUA_IMPLEMENTATION -x c task_lua.h -o $out/bin/module-$cc-$opt.so"
        fi
        # clang's warnings come from its front end, whatever the level: a
        # plain -O3 build of the examples adds nothing to -O2 and -O3 -flto
        case $cc/$opt in */O0|clang/O3) continue;; esac
        have_uv=0
        test/need --have libuv1-dev && have_uv=1
        for ex in examples/*.c; do
            e=$(basename "$ex" .c)
            libs=
            grep -q 'include "../task_lua.h"' "$ex" && libs="$luainc $LUALIB -lm"
            case $e in
            libuv_host)
                if [ $have_uv = 0 ]; then test/need --skip "$e $cc $o" libuv1-dev; continue; fi
                libs="$(pkg-config --cflags --libs libuv 2>/dev/null || echo -luv)";;
            esac
            job "examples/$e.c $cc -std=c99 $o" "$cc -std=c99 $o $W $ex -o $out/bin/ex-$e-$cc-$opt $libs"
        done
    done
done

P=$(nproc 2>/dev/null || echo 2)
ls "$out"/jobs/*.sh | xargs -P "$P" -n 1 sh
cat "$out"/res/*.tap
exit 0
