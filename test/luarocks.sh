#!/bin/sh
# luarocks.sh: the rockspec as LuaRocks users run it. The tree is copied to
# a temporary directory (luarocks make builds in place), `luarocks make
# --tree <tmp>` runs there, then a script in another temporary directory
# requires the module from that tree only and runs task.run. TAP lines.
# Environment (from make): LUA, the interpreter; when it is not Debian's
# lua5.4, LuaRocks is pointed at its installation (--lua-dir).
repo=$(pwd)
lua=${LUA:-lua5.4}
version=$(sed -n 's/^#define TASK_VERSION "\(.*\)"$/\1/p' task.h)
rockspec=task-$version-1.rockspec
root=$(mktemp -d) || exit 1
trap 'rm -rf "$root"' EXIT

t() { # t NAME CMD...: one TAP line for a command's success
    name=$1; shift
    if "$@" >"$root/last.log" 2>&1; then echo "ok - $name"
    else echo "not ok - $name"; tail -n 20 "$root/last.log" | sed 's/^/# /'; fi
}

luaver=$("$lua" -e 'print((_VERSION:gsub("Lua ", "")))')
if [ "$(command -v "$lua")" = "$(command -v lua5.4)" ]; then lr="luarocks --lua-version $luaver"
else lr="luarocks --lua-version $luaver --lua-dir $(dirname "$(dirname "$(command -v "$lua")")")"; fi

t "one rockspec, $rockspec (its version is TASK_VERSION)" \
  sh -c "[ \"\$(ls task-*.rockspec)\" = '$rockspec' ] && grep -qx 'version = \"$version-1\"' '$rockspec'"
t "it declares lua >= 5.4, < 5.6" grep -q '"lua >= 5.4, < 5.6"' "$rockspec"
t "luarocks lint $rockspec" luarocks lint "$rockspec"

mkdir "$root/src" "$root/run"
tar -C "$repo" --exclude=./.git --exclude=./build -cf - . | tar -C "$root/src" -xf -
# shellcheck disable=SC2086
t "luarocks make --tree <tmp> (Lua $luaver)" sh -c "cd '$root/src' && $lr make --tree '$root/tree' '$rockspec'"
t "the tree has task.so, the luv adapter and the LuaLS definitions" sh -c \
  "test -f '$root/tree/lib/lua/$luaver/task.so' && cmp '$repo/task/luv.lua' '$root/tree/share/lua/$luaver/task/luv.lua' &&
   cmp '$repo/types/task.lua' '$root/tree/lib/luarocks/rocks-$luaver/task/$version-1/types/task.lua'"

cat >"$root/run/main.lua" <<'LUA'
local task = require "task"
local where = package.searchpath("task", package.cpath)
local tasks = {}
for i = 1, 3 do tasks[i] = task.spawn(function() task.sleep(i) return i * 10 end) end
print(where, task._VERSION, task.run(function()
  local sum = 0
  for _, t in ipairs(tasks) do sum = sum + t:join() end
  return sum
end))
LUA
# luarocks path: the tree's LUA_PATH and LUA_CPATH, as users set them
# shellcheck disable=SC2086
paths=$($lr --tree "$root/tree" path 2>/dev/null)
t "require \"task\" from the tree, outside the repository: task.run" sh -c \
  "cd '$root/run' && unset LUA_INIT LUA_CPATH_5_4 LUA_CPATH_5_5 LUA_PATH_5_4 LUA_PATH_5_5 && $paths &&
   out=\$('$lua' main.lua) && echo \"\$out\" &&
   [ \"\$out\" = \"$root/tree/lib/lua/$luaver/task.so	task $version	60\" ]"
exit 0
