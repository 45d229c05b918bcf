#!/bin/sh
# echo_test.sh NAME SERVER CLIENT: the echo server end to end, on loopback.
#   1. starts SERVER on a free port (--port 0; it prints the port), runs
#      CLIENT (50 connections x 200 messages, every byte checked, then an
#      idle connection and one left open at shutdown), waits for the
#      server to stop by itself (--max-conns 52) and checks its summary;
#   2. starts SERVER with a short --duration-ms and no client: it must
#      stop by itself.
# SERVER may be a command with arguments (valgrind ... build/echo_server).
# Prints TAP lines. Every wait is bounded; a server still running at the
# end is killed (by its pid).
name=$1; server=$2; client=$3
dir=${CHECK_DIR:-build/examples}
mkdir -p "$dir"
out="$dir/$name.server.out"; err="$dir/$name.server.err"

# wait_exit PID SECONDS: 0 when PID ended in time (its status in $st).
wait_exit() {
    i=0
    while kill -0 "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -gt $(($2 * 10)) ]; then kill "$1" 2>/dev/null; wait "$1" 2>/dev/null; st=killed; return 1; fi
        sleep 0.1
    done
    wait "$1"; st=$?
    return 0
}

# ---- 1. load, idle timeout, cancellation at shutdown ----
rm -f "$out" "$err" # the port is read from $out: never a past run's
$server --port 0 --max-conns 52 --idle-ms 300 --grace-ms 100 --duration-ms 30000 >"$out" 2>"$err" &
pid=$!
port=; i=0
while [ -z "$port" ] && [ $i -lt 100 ] && kill -0 $pid 2>/dev/null; do
    port=$(sed -n 's/^echo_server: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$out")
    [ -n "$port" ] || sleep 0.05
    i=$((i + 1))
done
if [ -z "$port" ]; then
    echo "not ok - $name: the server prints its port"; cat "$err"
    kill $pid 2>/dev/null
    exit 0
fi
echo "ok - $name: the server listens on a free loopback port"

"$client" "$port" 50 200 --idle --cancel >"$dir/$name.client.out" 2>&1
crc=$?
sed "s/^\(not ok\|ok\) - echo: /\1 - $name: /" "$dir/$name.client.out"
[ $crc -eq 0 ] || { echo "not ok - $name: the client exits $crc"; grep '^#' "$dir/$name.client.out" | head -n 10; }

if wait_exit $pid 15 && [ "$st" = 0 ]; then echo "ok - $name: the server stops by itself after 52 connections"
else echo "not ok - $name: the server stops by itself after 52 connections (status $st)"; fi

bytes=$(sed -n 's/.* \([0-9][0-9]*\) bytes echoed and checked.*/\1/p' "$dir/$name.client.out")
want="echo_server: stopped (max-conns): 52 connections, 50 closed by peer, 1 timed out, 1 cancelled, 0 errors, $((${bytes:-0} + 4)) bytes echoed"
got=$(tail -n 1 "$out")
if [ "$got" = "$want" ]; then echo "ok - $name: the server's summary counts every connection and byte"
else echo "not ok - $name: the server's summary"; echo "#  got: $got"; echo "# want: $want"; fi

if [ ! -s "$err" ]; then echo "ok - $name: the server writes nothing on stderr"
else echo "not ok - $name: the server writes nothing on stderr"; head -n 40 "$err"; fi

# ---- 2. the duration bound alone ----
$server --port 0 --duration-ms 200 >"$out" 2>"$err" &
pid=$!
if wait_exit $pid 15 && [ "$st" = 0 ] && tail -n 1 "$out" | grep -q '^echo_server: stopped (duration): 0 connections' && [ ! -s "$err" ]; then
    echo "ok - $name: with no client the server stops after --duration-ms"
else
    echo "not ok - $name: with no client the server stops after --duration-ms (status $st)"; cat "$out" "$err" | head -n 20
fi

# ---- 3. a task dump on SIGUSR1 ----
rm -f "$out" "$err" # so the wait below cannot see the last run's lines
$server --port 0 --duration-ms 1500 --profile >"$out" 2>"$err" &
pid=$!
i=0
until grep -q '^echo_server: listening' "$out" 2>/dev/null || [ $i -ge 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -USR1 $pid 2>/dev/null
if wait_exit $pid 15 && [ "$st" = 0 ] && grep -q '^task dump at [0-9.]* ms: 1 task (0 running, 0 ready, 1 waiting, 0 sleeping)$' "$err" &&
   grep -q ' WAIT for [0-9.]* ms: external id [0-9]* (task.resume)$' "$err" && grep -q 'spawned at ' "$err" &&
   grep -q "echo_server.lua:[0-9]*: in" "$err"; then
    echo "ok - $name: SIGUSR1 writes a task dump to stderr and the server goes on"
else
    echo "not ok - $name: SIGUSR1 writes a task dump to stderr (status $st)"; cat "$out" "$err" | head -n 30
fi
exit 0
