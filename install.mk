# install.mk: `make install` and `make uninstall`, and the suites that
# install the project the way each kind of user does, from outside the
# repository into temporary prefixes (included by the top-level Makefile).
#
#   make install   [PREFIX=/usr/local] [DESTDIR=...]
#       $(INCLUDEDIR)/task.h, task_lua.h     the headers
#       $(LUA_CMODDIR)/task.so               the standalone module (make module)
#       $(LUA_LMODDIR)/task/luv.lua          the luv adapter (require "task.luv")
#       $(TYPESDIR)/task.lua                 LuaLS definitions (types/task.lua)
#       $(PKGCONFIGDIR)/task.pc, task-lua.pc
#   make uninstall [PREFIX=...] [DESTDIR=...]   removes exactly those files
#
# The other ways in: task-$(TASK_VERSION)-1.rockspec (LuaRocks) and
# CMakeLists.txt (add_subdirectory, FetchContent, find_package after
# cmake --install). Suites: install (make install, pkg-config), luarocks,
# cmake, luacheck.

PREFIX       ?= /usr/local
INCLUDEDIR   ?= $(PREFIX)/include
DATADIR      ?= $(PREFIX)/share
PKGCONFIGDIR ?= $(DATADIR)/pkgconfig
TYPESDIR     ?= $(DATADIR)/task/types
# The Lua package (pkg-config name) that task-lua.pc requires, and the
# version of the interpreter the module is built for.
LUA_PC       ?= lua5.4
LUA_V        := $(or $(shell $(LUA) -e 'io.write((_VERSION:gsub("Lua ", "")))' 2>/dev/null),5.4)
# C modules go where require looks: under Lua's own prefix (/usr on
# Debian), its .pc file's INSTALL_CMOD; under any other, Lua's default
# layout PREFIX/lib/lua/5.4, which the stock interpreter searches for
# /usr/local. For a Lua built by hand, set LUA_CMODDIR (and LUA_PC).
LUA_PC_PREFIX := $(shell pkg-config --variable=prefix $(LUA_PC) 2>/dev/null)
LUA_CMODDIR  ?= $(if $(and $(LUA_PC_PREFIX),$(filter $(LUA_PC_PREFIX),$(PREFIX))),$(shell \
                  pkg-config --variable=INSTALL_CMOD $(LUA_PC)),$(PREFIX)/lib/lua/$(LUA_V))

# Lua modules likewise: INSTALL_LMOD, or PREFIX/share/lua/5.4.
LUA_LMODDIR  ?= $(if $(and $(LUA_PC_PREFIX),$(filter $(LUA_PC_PREFIX),$(PREFIX))),$(shell \
                  pkg-config --variable=INSTALL_LMOD $(LUA_PC)),$(PREFIX)/share/lua/$(LUA_V))

INSTALLED := $(INCLUDEDIR)/task.h $(INCLUDEDIR)/task_lua.h $(LUA_CMODDIR)/task.so $(TYPESDIR)/task.lua \
             $(LUA_LMODDIR)/task/luv.lua \
             $(PKGCONFIGDIR)/task.pc $(PKGCONFIGDIR)/task-lua.pc
PC_SUBST  := -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(TASK_VERSION)|g' -e 's|@LUA_PC@|$(LUA_PC)|g'

.PHONY: install uninstall
install: $(BUILD)/task.so
	install -d "$(DESTDIR)$(INCLUDEDIR)" "$(DESTDIR)$(LUA_CMODDIR)" "$(DESTDIR)$(TYPESDIR)" "$(DESTDIR)$(PKGCONFIGDIR)" \
	  "$(DESTDIR)$(LUA_LMODDIR)/task"
	install -m 644 task.h task_lua.h "$(DESTDIR)$(INCLUDEDIR)/"
	install -m 755 $(BUILD)/task.so "$(DESTDIR)$(LUA_CMODDIR)/task.so"
	install -m 644 types/task.lua "$(DESTDIR)$(TYPESDIR)/task.lua"
	install -m 644 task/luv.lua "$(DESTDIR)$(LUA_LMODDIR)/task/luv.lua"
	sed $(PC_SUBST) packaging/task.pc.in >"$(DESTDIR)$(PKGCONFIGDIR)/task.pc"
	sed $(PC_SUBST) packaging/task-lua.pc.in >"$(DESTDIR)$(PKGCONFIGDIR)/task-lua.pc"
	chmod 644 "$(DESTDIR)$(PKGCONFIGDIR)/task.pc" "$(DESTDIR)$(PKGCONFIGDIR)/task-lua.pc"

# Exactly the files install writes; directories are left (they may be
# shared), except the ones only task's files live in.
uninstall:
	rm -f $(foreach f,$(INSTALLED),"$(DESTDIR)$(f)")
	@rmdir "$(DESTDIR)$(TYPESDIR)" "$(DESTDIR)$(DATADIR)/task" 2>/dev/null || true
	@rmdir "$(DESTDIR)$(LUA_LMODDIR)/task" 2>/dev/null || true

# ---- test suites ------------------------------------------------------------
INSTALL_SUITES := suite-install suite-luarocks suite-cmake suite-luacheck
TEST_SUITES += $(INSTALL_SUITES)
.PHONY: $(INSTALL_SUITES)

# make install / uninstall into temporary prefixes, and programs built
# against them with pkg-config, from a directory outside the repository.
suite-install: $(BUILD)/task.so
	@test/run-one install sh test/install.sh "$(MAKE)" $(BUILD)

# luarocks make --tree <tmp> with the rockspec, then require "task" from
# that tree.
suite-luarocks: | deps
	@$(call or_skip,luarocks,luarocks) test/run-one luarocks sh test/luarocks.sh

# A consumer of task::task and task::lua through add_subdirectory,
# FetchContent and find_package after cmake --install.
suite-cmake: | deps
	@$(call or_skip,cmake,cmake) test/run-one cmake sh test/cmake.sh $(BUILD)/cmake

# Every Lua file of the repository, with .luacheckrc.
suite-luacheck:
	@$(call or_skip,lua-check,luacheck) test/run-one luacheck sh test/luacheck.sh
