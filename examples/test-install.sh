#!/bin/sh
# test-install.sh MAKE BUILD CC: `make install` into a temporary prefix under
# BUILD, build and run a program found through `pkg-config --cflags task`,
# check a DESTDIR (staged) install, then `make uninstall` and check that
# every installed file is gone. Prints TAP lines.
make=$1; build=$2; cc=${3:-cc}
mkdir -p "$build/install-test" || exit 1
root=$(cd "$build/install-test" && pwd)
rm -rf "$root"/*
prefix="$root/prefix"
pcdir="$prefix/share/pkgconfig"
files="include/task.h share/pkgconfig/task.pc"
[ -f task_lua.h ] && files="$files include/task_lua.h"
t() { # t NAME CMD...: one TAP line for a command's success
    name=$1; shift
    if "$@" >"$root/last.log" 2>&1; then echo "ok - $name"
    else echo "not ok - $name"; tail -n 20 "$root/last.log"; fi
}
all_present() { for f in $files; do [ -f "$1/$f" ] || { echo "missing: $1/$f"; return 1; }; done; }
none_present() { for f in $files; do [ ! -e "$1/$f" ] || { echo "left behind: $1/$f"; return 1; }; done; }

t "make install PREFIX=<tmp>" $make --no-print-directory install PREFIX="$prefix"
t "installed: $files" all_present "$prefix"
t "installed task.h is the repository's" cmp task.h "$prefix/include/task.h"

cflags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags task 2>"$root/pc.err")
rc=$?
cflags=$(echo $cflags) # pkg-config ends it with a space
if [ $rc -eq 0 ] && [ "$cflags" = "-I$prefix/include" ]; then echo "ok - pkg-config --cflags task gives -I<prefix>/include"
else echo "not ok - pkg-config --cflags task gives -I<prefix>/include (got: '$cflags')"; cat "$root/pc.err"; fi
t "pkg-config --modversion task" env PKG_CONFIG_PATH="$pcdir" pkg-config --modversion task
t "pkg-config --libs task is empty (header-only)" sh -c "[ -z \"\$(PKG_CONFIG_PATH='$pcdir' pkg-config --libs task | tr -d ' ')\" ]"

cat >"$root/hello.c" <<'C'
#define TASK_IMPLEMENTATION
#include <task.h>
#include <stdio.h>
static int hello(task_ctx *c) { (void)c; puts("hello from an installed task.h"); return TASK_STEP_DONE; }
int main(void) {
    task_sched *s = task_create(NULL, NULL);
    if (!s || task_spawn(s, hello, NULL, NULL, NULL) != TASK_OK || task_tick(s, 0) != 1) return 1;
    return task_destroy(s) != TASK_OK;
}
C
# Only the installed copy can be found: no -I. here, and the build runs elsewhere.
t "compile with \$(pkg-config --cflags task)" sh -c "cd '$root' && $cc -std=c99 -Wall -Werror $cflags -o hello hello.c"
t "run it" sh -c "'$root/hello' | grep -qx 'hello from an installed task.h'"
if [ -f task_lua.h ]; then
    cat >"$root/lua_decl.c" <<'C'
#include <task_lua.h>
int main(void) { return 0; }
C
    if pkg-config --exists lua5.4 2>/dev/null; then
        t "compile task_lua.h with \$(pkg-config --cflags task lua5.4)" sh -c \
          "cd '$root' && $cc -std=c99 -c \$(PKG_CONFIG_PATH='$pcdir' pkg-config --cflags task lua5.4) -o lua_decl.o lua_decl.c"
    else echo "ok - compile task_lua.h against the installed headers # SKIP no lua5.4.pc"; fi
fi

# A staged install, as a package build does it: files under DESTDIR, the
# .pc file still names the real prefix.
stage="$root/stage"
t "make install DESTDIR=<stage> PREFIX=/usr/local" $make --no-print-directory install DESTDIR="$stage" PREFIX=/usr/local
t "staged files are under DESTDIR" all_present "$stage/usr/local"
t "the staged task.pc names the real prefix" grep -qx 'prefix=/usr/local' "$stage/usr/local/share/pkgconfig/task.pc"
t "make uninstall DESTDIR=<stage> PREFIX=/usr/local" $make --no-print-directory uninstall DESTDIR="$stage" PREFIX=/usr/local
t "staged files are gone" none_present "$stage/usr/local"

echo '/* not ours */' >"$prefix/include/other.h"
t "make uninstall PREFIX=<tmp>" $make --no-print-directory uninstall PREFIX="$prefix"
t "uninstalled: every installed file is gone" none_present "$prefix"
t "uninstall leaves other files alone" test -f "$prefix/include/other.h"
exit 0
