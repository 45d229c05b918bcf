#!/bin/sh
# check_types.sh [MODULE_DIR]: types/task.lua, the Lua Language Server
# definitions, against task_lua.h. TAP lines:
#   - the file starts with ---@meta and loads (luac5.4 -p, or lua5.4 loadfile);
#   - every name in task_lua.h's public luaL_Reg tables is defined there
#     (module functions as `function task.X(`, methods as `function Class:X(`);
#   - with MODULE_DIR (holding task.so, `make module`), the real module's
#     functions and methods, listed at run time, match the file both ways.
types=types/task.lua; src=task_lua.h; moddir=$1
if [ "$(head -n 1 $types | cut -c1-8)" = "---@meta" ]; then echo "ok - types: $types starts with ---@meta"
else echo "not ok - types: $types starts with ---@meta"; fi
if command -v luac5.4 >/dev/null 2>&1; then
    if luac5.4 -p $types; then echo "ok - types: luac5.4 -p $types"; else echo "not ok - types: luac5.4 -p $types"; fi
elif ${LUA:-lua5.4} -e "assert(loadfile('$types'))"; then echo "ok - types: ${LUA:-lua5.4} loadfile $types"
else echo "not ok - types: ${LUA:-lua5.4} loadfile $types"; fi

# "table name" pairs from the luaL_Reg tables.
names=$(awk '
  /static const luaL_Reg [a-z_]+\[\] *= *\{/ { t = $0; sub(/.*luaL_Reg /, "", t); sub(/\[.*/, "", t); inreg = 1 }
  inreg { s = $0; while (match(s, /\{"[A-Za-z_0-9]+"/)) { n = substr(s, RSTART + 2, RLENGTH - 3); print t, n; s = substr(s, RSTART + RLENGTH) } }
  inreg && /\}\};/ { inreg = 0 }
' $src)
total=0; missing=0
echo "$names" | { while read -r tbl name; do
    [ -n "$name" ] || continue
    case $tbl in
    task__l_private) continue ;;
    task__l_funcs) pat="^function task\.$name(" ;;
    task__l_task_methods) pat="^function Task:$name(" ;;
    task__l_scope_methods) pat="^function Scope:$name(" ;;
    task__l_chan_methods) pat="^function Channel:$name(" ;;
    task__l_token_methods) pat="^function CancelToken:$name(" ;;
    task__l_timer_methods) pat="^function Timer:$name(" ;;
    *) pat="^function [A-Za-z_.]*[.:]$name(" ;;
    esac
    total=$((total + 1))
    if ! grep -q "$pat" $types; then echo "not ok - types: $tbl \"$name\" is not in $types"; missing=$((missing + 1)); fi
done
if [ "$total" -lt 60 ]; then echo "not ok - types: only $total names found in $src (is the parser still right?)"
elif [ $missing = 0 ]; then echo "ok - types: all $total functions and methods of $src are in $types"; fi; }

for f in "Task id" "Task name" "Scope name"; do
    set -- $f
    if awk -v c="$1" -v f="$2" '$0 == "---@class " c { on = 1; next } /^---@class / { on = 0 } on && $1 == "---@field" && $2 == f { found = 1 } END { exit !found }' $types
    then echo "ok - types: $1.$2 is a typed field"; else echo "not ok - types: $1.$2 is a typed field"; fi
done

if [ -n "$moddir" ] && [ -f "$moddir/task.so" ]; then
    ${LUA:-lua5.4} test/check_types.lua "$moddir" $types
fi
exit 0
