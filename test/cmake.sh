#!/bin/sh
# cmake.sh: the CMake package (CMakeLists.txt) as CMake users take it. The
# tree is copied to a temporary directory, then the consumer in test/cmake
# (a C program on task::task, a Lua host on task::lua) is configured,
# built and run three ways: add_subdirectory, FetchContent from that local
# path, and find_package(task CONFIG COMPONENTS lua) after cmake --install
# into a temporary prefix, whose version file must accept TASK_VERSION's
# minor version and refuse the next one. TAP lines.
repo=$(pwd)
version=$(sed -n 's/^#define TASK_VERSION "\(.*\)"$/\1/p' task.h)
minor=${version%.*}
next=${version%%.*}.$((${minor#*.} + 1))
root=$(mktemp -d) || exit 1
trap 'rm -rf "$root"' EXIT

t() { # t NAME CMD...: one TAP line for a command's success
    name=$1; shift
    if "$@" >"$root/last.log" 2>&1; then echo "ok - $name"
    else echo "not ok - $name"; tail -n 20 "$root/last.log" | sed 's/^/# /'; fi
}

mkdir "$root/src" "$root/consumer"
tar -C "$repo" --exclude=./.git --exclude=./build -cf - . | tar -C "$root/src" -xf -
cp test/cmake/CMakeLists.txt test/cmake/*.c "$root/consumer/"
cd "$root" || exit 1

# consumer NAME ARGS...: configure, build and run the consumer
consumer() {
    via=$1; shift
    b="$root/build-$via"
    t "$via: configure" cmake -S consumer -B "$b" "$@"
    t "$via: build" cmake --build "$b"
    t "$via: task::task program runs" sh -c "[ \"\$('$b/c_consumer')\" = 'task.h $version from CMake' ]"
    t "$via: task::lua program runs" sh -c "'$b/lua_consumer' | grep -qx 'task $version in Lua 5\.[45] from CMake'"
}

consumer add_subdirectory -DTASK_VIA=add_subdirectory -DTASK_SOURCE_DIR="$root/src"
consumer FetchContent -DTASK_VIA=FetchContent -DTASK_SOURCE_DIR="$root/src"

t "cmake -S <tree> -B <tmp>" cmake -S src -B build-task
t "cmake --install --prefix <tmp>" cmake --install build-task --prefix "$root/prefix"
t "installed: headers, taskConfig.cmake, taskConfigVersion.cmake ($version)" sh -c "
  cmp src/task.h prefix/include/task.h && cmp src/task_lua.h prefix/include/task_lua.h &&
  test -f prefix/share/cmake/task/taskConfig.cmake &&
  grep -q 'set(PACKAGE_VERSION \"$version\")' prefix/share/cmake/task/taskConfigVersion.cmake"
consumer find_package -DTASK_VIA=find_package -DCMAKE_PREFIX_PATH="$root/prefix" -DTASK_WANT_VERSION="$minor"
t "find_package(task $next) refuses $version (a minor version may break the API)" sh -c \
  "! cmake -S consumer -B build-next -DTASK_VIA=find_package -DCMAKE_PREFIX_PATH='$root/prefix' -DTASK_WANT_VERSION=$next"
exit 0
