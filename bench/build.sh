#!/bin/sh
# build.sh OUT CC FLAGS...: builds the C benchmark program OUT, with the
# libuv rows when libuv's headers are there (pkg-config, or uv.h in the
# default include path), and the PCL rows when libpcl links; without them
# otherwise.
out=$1; cc=$2; shift 2
uv=""; lib=""
if pkg-config --exists libuv 2>/dev/null; then
    uv="-DBENCH_HAVE_UV $(pkg-config --cflags libuv)"; lib=$(pkg-config --libs libuv)
elif printf '#include <uv.h>\n' | $cc -E -x c - >/dev/null 2>&1; then
    uv=-DBENCH_HAVE_UV; lib=-luv
fi
# PCL (libpcl1-dev), the stackful C coroutine peer: when it links
pcl=""
if printf '#include <pcl.h>\nint main(void) { return co_thread_init(); }\n' |
   $cc -x c - -lpcl -o /dev/null >/dev/null 2>&1; then
    pcl=-DBENCH_HAVE_PCL; lib="$lib -lpcl"
fi
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086
exec $cc "$@" -I. $uv $pcl bench/bench_core.c bench/task_impl.c -o "$out" $lib
