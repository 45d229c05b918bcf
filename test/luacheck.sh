#!/bin/sh
# luacheck.sh: luacheck, with .luacheckrc, over every Lua file of the
# repository (*.lua, the rockspec, .luacheckrc itself; build/ is not the
# repository's). One TAP line per file.
files=$(find . \( -path ./build -o -path ./.git \) -prune -o -type f \
          \( -name '*.lua' -o -name '*.rockspec' -o -name .luacheckrc \) -print | sed 's|^\./||' | sort)
for f in $files; do
    # a rockspec on the command line stands for the modules it builds:
    # through stdin, the file itself is checked (as a rockspec)
    if luacheck --no-color --codes --filename "$f" - <"$f" >"${TMPDIR:-/tmp}/luacheck.$$" 2>&1; then
        echo "ok - luacheck $f"
    else
        echo "not ok - luacheck $f"; grep -E '^ +[^ ]+:[0-9]+:' "${TMPDIR:-/tmp}/luacheck.$$" | sed 's/^ */# /'
    fi
done
rm -f "${TMPDIR:-/tmp}/luacheck.$$"
[ -n "$files" ] || echo "not ok - luacheck: no Lua file found"
exit 0
