# task::lua: task_lua.h, that is task::task plus Lua 5.4 or 5.5, found with
# CMake's FindLua (for another Lua than the one it finds, set
# LUA_INCLUDE_DIR and LUA_LIBRARY). Made only when such a Lua is found;
# task_lua_FOUND says whether. Included by CMakeLists.txt and by the
# installed taskConfig.cmake; TASK_LUA_TARGET_SCOPE may be GLOBAL.
if(NOT TARGET task::lua)
  find_package(Lua 5.4 QUIET)
  if(LUA_FOUND AND LUA_VERSION_STRING VERSION_LESS 5.6)
    add_library(task::lua INTERFACE IMPORTED ${TASK_LUA_TARGET_SCOPE})
    set_target_properties(task::lua PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${LUA_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "task::task;${LUA_LIBRARIES}")
  endif()
endif()
if(TARGET task::lua)
  set(task_lua_FOUND TRUE)
else()
  set(task_lua_FOUND FALSE)
endif()
