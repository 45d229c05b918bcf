#!/bin/sh
# install.sh MAKE BUILD: `make install` (install.mk) as users run it, into
# temporary prefixes outside the repository; every program and script
# below is built and run from there, so only the installed files can be
# found. Prints TAP lines.
#   - make install PREFIX=<tmp>: each file, the same as the repository's
#   - pkg-config: task (-I<prefix>/include, the version of task.h, no libs)
#     and task-lua (task and Lua); a C program and a Lua host built with them
#   - the module: lua5.4 finds task.so where make install put it
#   - DESTDIR (a staged install, as package builds do) with PREFIX=/usr/local
#     and PREFIX=/usr (Lua's own prefix: the module goes to its INSTALL_CMOD)
#   - make uninstall: every installed file gone, other files left alone
# Environment (from make): CC, LUA, STRICT.
make=$1; build=$2
repo=$(pwd)
case $build in /*) ;; *) build=$repo/$build ;; esac
cc=${CC:-cc}; lua=${LUA:-lua5.4}
version=$(sed -n 's/^#define TASK_VERSION "\(.*\)"$/\1/p' task.h)
luaver=$("$lua" -e 'print((_VERSION:gsub("Lua ", "")))')
# Debian's Lua, whose lua5.4.pc task-lua.pc names (not so for a Lua built by hand)
debian_lua=; [ "$(command -v "$lua")" = "$(command -v lua5.4)" ] && pkg-config --exists lua5.4 && debian_lua=1
root=$(mktemp -d) || exit 1
trap 'rm -rf "$root"' EXIT
prefix="$root/prefix"
pcdir="$prefix/share/pkgconfig"
files="include/task.h include/task_lua.h lib/lua/$luaver/task.so share/task/types/task.lua share/lua/$luaver/task/luv.lua
       share/pkgconfig/task.pc share/pkgconfig/task-lua.pc"

t() { # t NAME CMD...: one TAP line for a command's success
    name=$1; shift
    if "$@" >"$root/last.log" 2>&1; then echo "ok - $name"
    else echo "not ok - $name"; tail -n 20 "$root/last.log" | sed 's/^/# /'; fi
}
present() { # present DIR FILES...
    d=$1; shift
    for f in "$@"; do [ -f "$d/$f" ] || { echo "missing: $d/$f"; return 1; }; done
}
absent() {
    d=$1; shift
    for f in "$@"; do [ ! -e "$d/$f" ] || { echo "left behind: $d/$f"; return 1; }; done
}
mk() { (cd "$repo" && $make --no-print-directory -s BUILD="$build" "$@"); }
pc() { PKG_CONFIG_PATH="$pcdir" pkg-config "$@"; }
same() { # same WANT CMD...: the command's output (spaces trimmed) is WANT
    want=$1; shift
    got=$("$@" 2>&1); got=$(echo $got)
    [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }
}

# shellcheck disable=SC2086
{
t "make install PREFIX=<tmp>" mk install PREFIX="$prefix"
t "installed: $(echo $files)" present "$prefix" $files
t "installed headers and definitions are the repository's" sh -c \
  "cmp task.h '$prefix/include/task.h' && cmp task_lua.h '$prefix/include/task_lua.h' &&
   cmp types/task.lua '$prefix/share/task/types/task.lua' && cmp task/luv.lua '$prefix/share/lua/$luaver/task/luv.lua'"
}

mkdir "$root/work" && cd "$root/work" || exit 1

# ---- pkg-config --------------------------------------------------------------
t "pkg-config --cflags task is -I<prefix>/include" same "-I$prefix/include" pc --cflags task
t "pkg-config --modversion task is TASK_VERSION ($version)" same "$version" pc --modversion task
t "pkg-config --libs task is empty (header-only)" same "" pc --libs task
t "pkg-config --modversion task-lua is TASK_VERSION" same "$version" pc --modversion task-lua

cat >hello.c <<'C'
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
# shellcheck disable=SC2046
t "a C program built with \$(pkg-config --cflags task)" $cc -std=c99 $STRICT $(pc --cflags task) -o hello hello.c
t "it runs" same "hello from an installed task.h" ./hello

cat >host.c <<'C'
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include <task_lua.h>
#include <lualib.h>
#include <stdio.h>
int main(void) {
    task_sched *s = task_create(NULL, NULL);
    lua_State *L = luaL_newstate();
    uint64_t now = 0;
    luaL_openlibs(L);
    if (task_lua_open(L, s) != TASK_OK) return 1;
    lua_pop(L, 1);
    if (luaL_loadstring(L, "local task = require 'task'; task.sleep(5); print('lua task done')") != LUA_OK ||
        task_lua_spawn(L, 0, NULL) != TASK_OK) return 2;
    lua_pop(L, 1);
    while (task_count(s, -1) > 0) { task_tick(s, now); now += task_timeout(s, now); }
    lua_close(L);
    return task_destroy(s) != TASK_OK;
}
C
if [ -n "$debian_lua" ]; then
    # shellcheck disable=SC2046
    t "a Lua host built with \$(pkg-config --cflags --libs task-lua)" sh -c \
      "$cc -std=c99 $STRICT \$(PKG_CONFIG_PATH='$pcdir' pkg-config --cflags task-lua) -o host host.c \
       \$(PKG_CONFIG_PATH='$pcdir' pkg-config --libs task-lua)"
    t "it runs" same "lua task done" ./host
else
    echo "ok - a Lua host built with pkg-config task-lua # SKIP another Lua than Debian's lua5.4 is in use"
fi

# ---- the installed module ----------------------------------------------------
t "$lua finds the installed task.so" same "$prefix/lib/lua/$luaver/task.so task $version done" \
  env -u LUA_CPATH_5_4 -u LUA_CPATH_5_5 -u LUA_INIT LUA_CPATH="$prefix/lib/lua/$luaver/?.so" "$lua" -e '
    local task = require "task"
    print(package.searchpath("task", package.cpath), task._VERSION,
          task.run(function() task.sleep(1) return "done" end))'

# ---- staged installs ---------------------------------------------------------
cd "$repo" || exit 1
stage="$root/stage"
t "make install DESTDIR=<stage> PREFIX=/usr/local" mk install DESTDIR="$stage" PREFIX=/usr/local
# shellcheck disable=SC2086
t "staged files are under DESTDIR" present "$stage/usr/local" $files
t "the staged task.pc names the real prefix" grep -qx 'prefix=/usr/local' "$stage/usr/local/share/pkgconfig/task.pc"
t "make uninstall DESTDIR=<stage> PREFIX=/usr/local" mk uninstall DESTDIR="$stage" PREFIX=/usr/local
# shellcheck disable=SC2086
t "staged files are gone" absent "$stage/usr/local" $files

cmod=$(pkg-config --variable=INSTALL_CMOD lua5.4 2>/dev/null)
if [ -n "$debian_lua" ] && [ -n "$cmod" ] && [ "$(pkg-config --variable=prefix lua5.4)" = /usr ]; then
    t "make install DESTDIR=<stage> PREFIX=/usr: the module goes to INSTALL_CMOD ($cmod)" sh -c \
      "cd '$repo' && $make --no-print-directory -s BUILD='$build' install DESTDIR='$stage' PREFIX=/usr &&
       test -f '$stage$cmod/task.so'"
    t "make uninstall DESTDIR=<stage> PREFIX=/usr" sh -c \
      "cd '$repo' && $make --no-print-directory -s BUILD='$build' uninstall DESTDIR='$stage' PREFIX=/usr &&
       test ! -e '$stage$cmod/task.so' && test ! -e '$stage/usr/include/task.h'"
else
    echo "ok - make install PREFIX=/usr puts the module at INSTALL_CMOD # SKIP another Lua than Debian's lua5.4 is in use"
fi

# ---- uninstall ---------------------------------------------------------------
echo '/* not ours */' >"$prefix/include/other.h"
t "make uninstall PREFIX=<tmp>" mk uninstall PREFIX="$prefix"
# shellcheck disable=SC2086
t "uninstalled: every installed file is gone" absent "$prefix" $files
t "uninstall leaves other files alone" test -f "$prefix/include/other.h"
t "uninstall removes the directory only the adapter lives in" test ! -e "$prefix/share/lua/$luaver/task"
exit 0
