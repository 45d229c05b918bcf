-- readme.lua: runs every fenced code block of README.md the way a reader
-- would, one TAP line per block ("README.md:LINE lang: first words").
--   lua5.4 test/readme.lua BUILD        (from the repository root, after
--                                        make module; make test does this)
--
-- What README.md must follow:
--   ```lua   a whole script for the stock lua5.4, the built module
--            (BUILD/task.so) and the repository's task/luv.lua, run from
--            an empty directory outside the repository; it must exit 0.
--   ```c     a whole program (it has `int main`), compiled with the
--            project's strict flags (and Lua's, if it includes task_lua.h)
--            and run; it must exit 0.
--   ```sh    commands a reader types, run with `sh -e` in a scratch copy
--            of the repository whose build/task.so is already built, with
--            make's own chatter off (MAKEFLAGS=s) and HOME a scratch
--            directory of its own (what ~/.local or luarocks --local get),
--            shared by every ```sh block in turn.
--   ```text  right after one of those: exactly what it prints on stdout.
--            That is the one place expected output goes: a `--> value`
--            comment in a Lua block is refused, since nothing checks it.
--   <!-- readme-check: skip (reason) -->   as the line before a block
--            that cannot run alone (a fragment, output of a long run);
--            it is reported as "ok - ... # SKIP reason".
--   <!-- readme-check: from FILE -->   as the line before a block that
--            shows part of a tested file: its lines must be lines of FILE,
--            in one piece, as they are there.
--   <!-- readme-check: needs PKG... -->   the block runs only where these
--            Debian packages are (test/need); elsewhere it is skipped,
--            with the command that installs them.
-- A block in any other language, or with none, must be marked as well.
-- Environment (make passes the Makefile's): CC, README_CFLAGS, LUA_INC,
-- LUA_LIB, LUA (the interpreter for ```lua blocks; for ```sh blocks it is
-- also what `lua5.4` runs).

local build = assert(arg[1], "usage: lua5.4 test/readme.lua BUILD")
local lua = os.getenv("LUA") or "lua5.4"
local build_in_tree = build:sub(1, 1) ~= "/" and build

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local function sh(cmd) return os.execute(cmd) == true end
local function readfile(path)
  local f = io.open(path, "rb"); if not f then return "" end
  local s = f:read("a"); f:close(); return s
end
local function writefile(path, s)
  local f = assert(io.open(path, "wb")); f:write(s); f:close()
end
local function capture(cmd) local p = io.popen(cmd); local s = p:read("a"); p:close(); return (s:gsub("%s+$", "")) end

local repo = capture("pwd")
if build:sub(1, 1) ~= "/" then build = repo .. "/" .. build end
local cc = os.getenv("CC") or "cc"
local cflags = os.getenv("README_CFLAGS") or
  "-std=c99 -O2 " .. capture("sed -n 's/^STRICT *:= *//p' Makefile")
local lua_inc = os.getenv("LUA_INC") or capture("pkg-config --cflags lua5.4")
local lua_lib = os.getenv("LUA_LIB") or capture("pkg-config --libs lua5.4")

-- Everything runs under one temporary directory outside the repository,
-- so no file of the tree (types/task.lua, say) is picked up by accident.
local tmp = capture("mktemp -d")
assert(tmp ~= "", "mktemp -d failed")
-- `lua5.4` in ```sh blocks is the interpreter under test (LUA).
local path = os.getenv("PATH")
if lua ~= "lua5.4" then
  assert(sh(("mkdir %s/bin && ln -s \"$(command -v %s)\" %s/bin/lua5.4"):format(q(tmp), q(lua), q(tmp))))
  path = tmp .. "/bin:" .. path
end

-- ---- the blocks ------------------------------------------------------------
-- A fence may be indented (inside a list item); its content loses that indent.
local blocks, lines = {}, {}
for l in (readfile("README.md") .. "\n"):gmatch("(.-)\r?\n") do lines[#lines + 1] = l end
local i = 1
while i <= #lines do
  local indent, lang = lines[i]:match("^(%s*)```%s*([%w_+-]*)%s*$")
  if indent then
    local b = { line = i, lang = lang, body = {} }
    local j = i - 1
    while j > 0 and lines[j]:match("^%s*$") do j = j - 1 end
    b.skip = j > 0 and lines[j]:match("<!%-%-%s*readme%-check:%s*skip%s*(.-)%s*%-%->")
    b.from = j > 0 and lines[j]:match("<!%-%-%s*readme%-check:%s*from%s+(%S+)%s*%-%->")
    b.needs = j > 0 and lines[j]:match("<!%-%-%s*readme%-check:%s*needs%s+(.-)%s*%-%->")
    i = i + 1
    while i <= #lines and not lines[i]:match("^%s*```%s*$") do
      b.body[#b.body + 1] = lines[i]:sub(1, #indent) == indent and lines[i]:sub(#indent + 1) or lines[i]
      i = i + 1
    end
    b.stop = i
    b.text = #b.body > 0 and table.concat(b.body, "\n") .. "\n" or ""
    blocks[#blocks + 1] = b
  end
  i = i + 1
end
-- A ```text block after a code block, with only blank lines between, is its output.
for n = 2, #blocks do
  local prev, b = blocks[n - 1], blocks[n]
  local gap = true
  for k = prev.stop + 1, b.line - 1 do gap = gap and lines[k]:match("^%s*$") ~= nil end
  if b.lang == "text" and gap and prev.lang ~= "text" then prev.expect, b.output_of = b, prev end
end

-- ---- running one ------------------------------------------------------------
local function run(cmd, dir, n)
  local out, err = ("%s/%d.out"):format(tmp, n), ("%s/%d.err"):format(tmp, n)
  local ok = sh(("cd %s && timeout 60 %s >%s 2>%s"):format(q(dir), cmd, q(out), q(err)))
  return ok, readfile(out), readfile(err)
end

-- Diagnostics, printed as TAP comments after the block's line.
local notes = {}
local function note(s)
  for l in (s:gsub("\n$", "") .. "\n"):gmatch("(.-)\n") do notes[#notes + 1] = "#   " .. l end
end

local scratch -- the copy of the repository for ```sh blocks, made on first use
local function scratch_copy()
  if scratch then return scratch end
  assert(sh("mkdir " .. q(tmp .. "/home")))
  scratch = tmp .. "/repo"
  -- build/task.so is copied after the headers so that make sees it up to date.
  local skip = "--exclude=./.git --exclude=./build" .. (build_in_tree and " --exclude=" .. q("./" .. build_in_tree) or "")
  assert(sh(("mkdir -p %s/build && tar -C %s %s -cf - . | tar -C %s -xf - && cp %s %s/build/")
    :format(q(scratch), q(repo), skip, q(scratch), q(build .. "/task.so"), q(scratch))), "scratch copy failed")
  return scratch
end

-- Returns nil when the block passed, else why not (with notes on the details).
local function check(b, n)
  local ok, out, err
  if b.lang == "lua" then
    for k, l in ipairs(b.body) do
      if l:match("%-%->") then return ("line %d: a `-->` comment; put the output in a ```text block"):format(b.line + k) end
    end
    local dir = ("%s/lua%d"):format(tmp, n)
    assert(sh("mkdir " .. q(dir)))
    writefile(dir .. "/main.lua", b.text)
    -- the module as built, and the repository's Lua modules (task.luv) as installed
    ok, out, err = run(("env -u LUA_CPATH_5_4 -u LUA_CPATH_5_5 -u LUA_PATH_5_4 -u LUA_PATH_5_5 -u LUA_INIT -u LUA_INIT_5_4 "
      .. "-u LUA_INIT_5_5 LUA_CPATH=%s LUA_PATH=%s %s main.lua")
      :format(q(build .. "/?.so;;"), q(repo .. "/?.lua;;"), q(lua)), dir, n)
  elseif b.lang == "c" then
    if not b.text:match("int%s+main") then return "a fragment (no int main): complete it or mark it skip" end
    local dir = ("%s/c%d"):format(tmp, n)
    assert(sh("mkdir " .. q(dir)))
    writefile(dir .. "/main.c", b.text)
    local luaflags = b.text:match('#%s*include%s*"task_lua.h"') and (" %s %s -lm"):format(lua_inc, lua_lib) or ""
    -- flags are shell words from the Makefile: left unquoted on purpose
    ok, out, err = run(("%s %s -I%s -o prog main.c%s"):format(cc, cflags, q(repo), luaflags), dir, n)
    if not ok then note(err); return "does not compile" end
    ok, out, err = run("./prog", dir, n)
  elseif b.lang == "sh" then
    -- make test (or check) would run this checker again, and for minutes.
    if b.text:match("make%s+test") or b.text:match("make%s+check") then return "runs make test/check: mark it skip" end
    local dir = scratch_copy()
    writefile(("%s/%d.sh"):format(tmp, n), b.text)
    ok, out, err = run(("env -u MAKELEVEL -u MFLAGS -u MAKEOVERRIDES -u LUA_CPATH -u LUA_CPATH_5_4 -u LUA_CPATH_5_5 "
      .. "-u LUA_PATH -u LUA_PATH_5_4 -u LUA_PATH_5_5 MAKEFLAGS=s HOME=%s PATH=%s sh -e %s")
      :format(q(tmp .. "/home"), q(path), q(("%s/%d.sh"):format(tmp, n))), dir, n)
  else
    return "nothing runs a ```" .. b.lang .. " block: mark it skip with the reason"
  end
  if not ok then note(err); return "failed (exit status not 0)" end
  if b.expect and out ~= b.expect.text then
    note("want (README.md:" .. b.expect.line .. "):"); note(b.expect.text)
    note("got:"); note(out)
    if err ~= "" then note("stderr:"); note(err) end
    return "stdout differs from the ```text block"
  end
end

-- Nil when the block is lines of path (relative to the repository), in
-- one piece, else why not.
local function excerpt(b, file)
  local src = readfile(file)
  if src == "" then return "cannot read " .. file end
  if b.text == "" or not ("\n" .. src .. "\n"):find("\n" .. b.text, 1, true) then
    return "not lines of " .. file .. " as they are there"
  end
end

for n, b in ipairs(blocks) do
  -- a trailing "# comment" would read as a TAP directive
  local first = (b.body[1] or ""):gsub("%s#.*", ""):gsub("%s+", " "):gsub("^ ", ""):sub(1, 40):gsub(" $", "")
  local name = ("README.md:%d %s: %s"):format(b.line, b.lang == "" and "(none)" or b.lang, first)
  local why = b.skip and (b.skip:match("^%((.*)%)$") or b.skip)
  b.missing = b.needs and not sh("test/need --have " .. b.needs .. " >/dev/null 2>&1")
  local src = b.output_of
  local compared = src and not (src.skip or src.from or src.missing) -- on its block's line
  if compared then
    b.compared = true
  elseif why == "" then
    print("not ok - " .. name .. ": a skip needs a reason")
  elseif b.from then
    local failed = excerpt(b, b.from)
    print((failed and "not ok - " or "ok - ") .. name .. " (from " .. b.from .. ")" .. (failed and (": " .. failed) or ""))
  elseif b.missing then
    print(capture("test/need --skip " .. q(name) .. " " .. b.needs))
  elseif why or src then
    print("ok - " .. name .. " # SKIP " .. (why or "output of the skipped block above"))
  else
    local failed = check(b, n)
    print((failed and "not ok - " or "ok - ") .. name .. (failed and (": " .. failed) or ""))
    for _, l in ipairs(notes) do print(l) end
    notes = {}
  end
end

sh("rm -rf " .. q(tmp))
