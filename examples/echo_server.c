/* echo_server: a TCP echo server on 127.0.0.1 where each connection is a
 * Lua task (examples/echo_server.lua). The C host owns the sockets and
 * the poll() loop; Lua code reads like blocking code because every
 * blocking call parks its task on an external id:
 *
 *     id = task.alloc()            -- in the `net` module's Lua part
 *     net.watch(fd, "r", id, ms)   -- the host remembers (fd, events, id, deadline)
 *     task.wait(id)                -- the task parks (WAIT)
 *     ...                          -- the host polls; when fd is ready it calls
 *                                  -- task_lua_resume(L, id, ...) and ticks
 *
 *   build/echo_server [--port N] [--max-conns N] [--duration-ms N]
 *                     [--idle-ms N] [--grace-ms N] [--profile] [script.lua]
 *
 *   --port 0 (the default) picks a free port; the first line of output is
 *   "echo_server: listening on 127.0.0.1:PORT". The server stops by itself
 *   after --max-conns connections (0: no limit) or --duration-ms (default
 *   60000), whichever comes first: it stops accepting, gives open
 *   connections --grace-ms (default 200) to finish, then cancels the rest
 *   (their sockets are closed by the tasks' to-be-closed variables). A
 *   read that waits longer than --idle-ms (default 5000) times out.
 *
 *   SIGUSR1 writes a dump of every task to stderr (task_lua_dump: what
 *   each waits on, for how long, its traceback); --profile adds each
 *   task's statistics and where it was spawned (task.profile()).
 *
 * The `net` module (require "net") that the host gives the scripts:
 *   net.listen(port [, backlog]) -> Listener | nil, err   (127.0.0.1 only)
 *   Listener:accept([ms]) -> Conn | nil, "timeout" | nil, err
 *   Listener.port, Listener:close()
 *   Conn:read([max [, ms]]) -> string | nil, "closed" | nil, "timeout" | nil, err
 *   Conn:write(data [, ms]) -> true | nil, "timeout" | nil, err
 *   Conn:close() -> true; Conn is to-be-closed (local c <close> = conn)
 * `ms` is a per-call timeout (nil: none). A cancelled task gets "task
 * cancelled" from any of them (the host forgets its fd), so task.timeout
 * and scopes work on sockets like on any other wait.
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#include <lualib.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---- the host: watched fds ------------------------------------------- */

typedef struct watch {
    int fd;
    short events;        /* POLLIN or POLLOUT */
    task_id id;          /* the external id the waiting task parked on */
    uint64_t deadline;   /* ns on the monotonic clock; 0: none */
} watch;

static struct {
    task_sched *s;
    lua_State *L;
    watch *w;
    size_t n, cap;
    struct pollfd *pfd;
    size_t pcap;
    int failed;          /* a task nobody joined raised */
} host;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * TASK_SEC + (uint64_t)ts.tv_nsec;
}

/* Wakes the task parked on id with true (ready) or nil, why. L is the
   running thread inside a task, the main one in the host loop. */
static void resume_watch(lua_State *L, task_id id, const char *why) {
    if (why) { lua_pushnil(L); lua_pushstring(L, why); }
    else lua_pushboolean(L, 1);
    task_lua_resume(L, id, why ? 2 : 1); /* ENOENT: its task gave up, fine */
}

static void remove_watch(size_t i) {
    host.w[i] = host.w[--host.n];
}

/* ---- the net module: C primitives ------------------------------------- */

static int set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int push_errno(lua_State *L, int e) {
    lua_pushnil(L);
    if (e == EAGAIN || e == EWOULDBLOCK) lua_pushliteral(L, "again");
    else lua_pushstring(L, strerror(e));
    return 2;
}

/* listen(port, backlog) -> fd, port | nil, err */
static int net_listen(lua_State *L) {
    lua_Integer port = luaL_checkinteger(L, 1), backlog = luaL_optinteger(L, 2, 128);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd, one = 1, e;
    luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port must be 0..65535");
    luaL_argcheck(L, backlog > 0 && backlog <= 65535, 2, "backlog must be 1..65535");
    if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) return push_errno(L, errno);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, (int)backlog) != 0 ||
        set_nonblock(fd) != 0 || getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        e = errno;
        close(fd);
        return push_errno(L, e);
    }
    lua_pushinteger(L, fd);
    lua_pushinteger(L, ntohs(a.sin_port));
    return 2;
}

/* accept(fd) -> newfd | nil, "again" | nil, err */
static int net_accept(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1), c;
    do c = accept(fd, NULL, NULL); while (c < 0 && errno == EINTR);
    if (c < 0) return push_errno(L, errno);
    if (set_nonblock(c) != 0) { int e = errno; close(c); return push_errno(L, e); }
    lua_pushinteger(L, c);
    return 1;
}

/* recv(fd, max) -> data | nil, "closed" | nil, "again" | nil, err */
static int net_recv(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    lua_Integer max = luaL_checkinteger(L, 2);
    luaL_Buffer b;
    char *p;
    ssize_t r;
    luaL_argcheck(L, max > 0 && max <= (1 << 24), 2, "max must be 1..16777216");
    p = luaL_buffinitsize(L, &b, (size_t)max);
    do r = recv(fd, p, (size_t)max, 0); while (r < 0 && errno == EINTR);
    if (r < 0) return push_errno(L, errno);
    if (r == 0) { lua_pushnil(L); lua_pushliteral(L, "closed"); return 2; }
    luaL_pushresultsize(&b, (size_t)r);
    return 1;
}

/* send(fd, data, from) -> bytes sent | nil, "again" | nil, err */
static int net_send(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    size_t len;
    const char *d = luaL_checklstring(L, 2, &len);
    lua_Integer from = luaL_checkinteger(L, 3);
    ssize_t r;
    luaL_argcheck(L, from >= 1 && (size_t)from <= len, 3, "out of range");
    do r = send(fd, d + from - 1, len - (size_t)(from - 1), 0); while (r < 0 && errno == EINTR);
    if (r < 0) return push_errno(L, errno);
    lua_pushinteger(L, (lua_Integer)r);
    return 1;
}

/* watch(fd, "r"|"w", id [, ms]): park-ready registration for one task. */
static int net_watch(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    const char *ev = luaL_checkstring(L, 2);
    task_id id = (task_id)luaL_checkinteger(L, 3);
    uint64_t deadline = 0;
    if (!lua_isnoneornil(L, 4)) {
        lua_Number ms = luaL_checknumber(L, 4);
        luaL_argcheck(L, ms >= 0 && ms < 1e12, 4, "timeout must be 0..1e12 ms");
        deadline = now_ns() + (uint64_t)(ms * 1e6);
        if (deadline == 0) deadline = 1;
    }
    luaL_argcheck(L, ev[0] == 'r' || ev[0] == 'w', 2, "\"r\" or \"w\" expected");
    if (host.n == host.cap) {
        size_t cap = host.cap ? host.cap * 2 : 64;
        watch *w = (watch *)realloc(host.w, cap * sizeof *w);
        if (!w) return luaL_error(L, "net.watch: out of memory");
        host.w = w;
        host.cap = cap;
    }
    host.w[host.n].fd = fd;
    host.w[host.n].events = ev[0] == 'r' ? POLLIN : POLLOUT;
    host.w[host.n].id = id;
    host.w[host.n].deadline = deadline;
    host.n++;
    return 0;
}

/* unwatch(id): its task stopped waiting (cancelled); frees the id too. */
static int net_unwatch(lua_State *L) {
    task_id id = (task_id)luaL_checkinteger(L, 1);
    size_t i;
    for (i = 0; i < host.n; i++)
        if (host.w[i].id == id) { remove_watch(i); break; }
    task_ext_release(host.s, id); /* ENOENT when the core already freed it */
    return 0;
}

/* close(fd): tasks still watching it get nil, "closed". */
static int net_close(lua_State *L) {
    int fd = (int)luaL_checkinteger(L, 1);
    size_t i = 0;
    while (i < host.n) {
        if (host.w[i].fd == fd) { task_id id = host.w[i].id; remove_watch(i); resume_watch(L, id, "closed"); }
        else i++;
    }
    close(fd);
    return 0;
}

/* The blocking API over the primitives, in Lua: what a script sees. */
static const char net_lua[] =
"local P, task = ...\n"
"local net = {}\n"
"local Conn, Listener = {}, {}\n"
"Conn.__index, Listener.__index = Conn, Listener\n"
"local function await(fd, ev, ms)\n"
"  local id = task.alloc()\n"
"  P.watch(fd, ev, id, ms)\n"
"  local ok, ready, err = pcall(task.wait, id)\n"
"  if not ok then P.unwatch(id); error(ready, 0) end -- cancelled: forget the fd\n"
"  return ready, err\n"
"end\n"
"function net.listen(port, backlog)\n"
"  local fd, p = P.listen(port, backlog)\n"
"  if not fd then return nil, p end\n"
"  return setmetatable({fd = fd, port = p}, Listener)\n"
"end\n"
"function Listener:accept(ms)\n"
"  while true do\n"
"    if self.fd < 0 then return nil, 'closed' end\n"
"    local c, err = P.accept(self.fd)\n"
"    if c then return setmetatable({fd = c}, Conn) end\n"
"    if err ~= 'again' then return nil, err end\n"
"    local ready, werr = await(self.fd, 'r', ms)\n"
"    if not ready then return nil, werr end\n"
"  end\n"
"end\n"
"function Conn:read(max, ms)\n"
"  while true do\n"
"    if self.fd < 0 then return nil, 'closed' end\n"
"    local data, err = P.recv(self.fd, max or 65536)\n"
"    if data then return data end\n"
"    if err ~= 'again' then return nil, err end\n"
"    local ready, werr = await(self.fd, 'r', ms)\n"
"    if not ready then return nil, werr end\n"
"  end\n"
"end\n"
"function Conn:write(data, ms)\n"
"  local off = 1\n"
"  while off <= #data do\n"
"    if self.fd < 0 then return nil, 'closed' end\n"
"    local n, err = P.send(self.fd, data, off)\n"
"    if n then off = off + n\n"
"    elseif err ~= 'again' then return nil, err\n"
"    else\n"
"      local ready, werr = await(self.fd, 'w', ms)\n"
"      if not ready then return nil, werr end\n"
"    end\n"
"  end\n"
"  return true\n"
"end\n"
"local function close(self)\n"
"  if self.fd >= 0 then P.close(self.fd); self.fd = -1 end\n"
"  return true\n"
"end\n"
"Conn.close, Conn.__close, Conn.__gc = close, close, close\n"
"Listener.close, Listener.__close, Listener.__gc = close, close, close\n"
"return net\n";

static const luaL_Reg net_prims[] = {
    {"listen", net_listen}, {"accept", net_accept}, {"recv", net_recv}, {"send", net_send},
    {"watch", net_watch}, {"unwatch", net_unwatch}, {"close", net_close}, {NULL, NULL}};

static int luaopen_net(lua_State *L) {
    if (luaL_loadbuffer(L, net_lua, sizeof net_lua - 1, "=net") != LUA_OK) return lua_error(L);
    luaL_newlib(L, net_prims);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "task"); /* the module the host opened */
    lua_remove(L, -2);
    lua_call(L, 2, 1);
    return 1;
}

/* SIGUSR1: the loop writes a task dump when poll() returns. */
static volatile sig_atomic_t dump_wanted;
static void on_sigusr1(int sig) { (void)sig; dump_wanted = 1; }

static uint64_t host_clock(void *ud) { (void)ud; return now_ns(); }

/* Errors of tasks nobody joins: report them and fail the run. */
static int on_task_error(lua_State *L) {
    fprintf(stderr, "echo_server: task error: %s\n", luaL_tolstring(L, 1, NULL));
    host.failed = 1;
    return 0;
}

static long opt_long(const char *v, const char *name) {
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < 0) {
        fprintf(stderr, "echo_server: %s wants a number >= 0, got '%s'\n", name, v);
        exit(2);
    }
    return x;
}

int main(int argc, char **argv) {
    const char *script = "examples/echo_server.lua";
    const char *keys[] = {"port", "max_conns", "duration_ms", "idle_ms", "grace_ms"};
    const char *flags[] = {"--port", "--max-conns", "--duration-ms", "--idle-ms", "--grace-ms"};
    long vals[] = {0, 0, 60000, 5000, 200};
    int i, k, status = 0, profile = 0;
    struct sigaction sa;

    for (i = 1; i < argc; i++) {
        for (k = 0; k < 5; k++)
            if (strcmp(argv[i], flags[k]) == 0 && i + 1 < argc) { vals[k] = opt_long(argv[++i], flags[k]); break; }
        if (k == 5 && strcmp(argv[i], "--profile") == 0) profile = 1;
        else if (k == 5) {
            if (argv[i][0] == '-') { fprintf(stderr, "echo_server: unknown option %s\n", argv[i]); return 2; }
            script = argv[i];
        }
    }
    if (vals[0] > 65535) { fprintf(stderr, "echo_server: --port must be 0..65535\n"); return 2; }
    signal(SIGPIPE, SIG_IGN); /* a peer that hung up is an EPIPE, not a signal */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1; /* no SA_RESTART: poll() returns at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);

    host.s = task_create(NULL, NULL);
    host.L = luaL_newstate();
    if (!host.s || !host.L) { fprintf(stderr, "echo_server: out of memory\n"); return 1; }
    luaL_openlibs(host.L);
    task_lua_open(host.L, host.s);
    lua_pop(host.L, 1);
    luaL_requiref(host.L, "net", luaopen_net, 0);
    lua_pop(host.L, 1);
    lua_pushcfunction(host.L, on_task_error);
    task_lua_set_error_handler(host.L, -1);
    lua_pop(host.L, 1);
    task_lua_set_clock(host.L, host_clock, NULL); /* for task.profile and task.warn_slow */
    if (profile && luaL_dostring(host.L, "require('task').profile()") != LUA_OK) {
        fprintf(stderr, "echo_server: %s\n", lua_tostring(host.L, -1));
        return 1;
    }

    if (luaL_loadfile(host.L, script) != LUA_OK) {
        fprintf(stderr, "echo_server: %s\n", lua_tostring(host.L, -1));
        return 1;
    }
    lua_createtable(host.L, 0, 5); /* the script's one argument: its settings */
    for (k = 0; k < 5; k++) {
        lua_pushinteger(host.L, vals[k]);
        lua_setfield(host.L, -2, keys[k]);
    }
    if (task_lua_spawn(host.L, 1, NULL) != TASK_OK) {
        fprintf(stderr, "echo_server: %s\n", lua_tostring(host.L, -1));
        return 1;
    }
    lua_pop(host.L, 1);

    for (;;) {
        uint64_t now = now_ns();
        int wait_ms;
        size_t j;
        task_tick(host.s, now);
        if (task_count(host.s, -1) == 0) break;       /* the script has ended */
        now = now_ns();
        wait_ms = task_timeout_ms(host.s, now);       /* -1: no timer pending */
        for (j = 0; j < host.n; j++) {                /* and the sockets' deadlines */
            if (host.w[j].deadline) {
                uint64_t d = host.w[j].deadline > now ? host.w[j].deadline - now : 0;
                int ms = (int)((d + TASK_MSEC - 1) / TASK_MSEC);
                if (wait_ms < 0 || ms < wait_ms) wait_ms = ms;
            }
        }
        if (wait_ms < 0 && host.n == 0) {
            fprintf(stderr, "echo_server: %d task(s) wait for nothing\n", task_count(host.s, -1));
            status = 2;
            break;
        }
        if (host.n > host.pcap) {
            struct pollfd *p = (struct pollfd *)realloc(host.pfd, host.n * sizeof *p);
            if (!p) { fprintf(stderr, "echo_server: out of memory\n"); status = 1; break; }
            host.pfd = p;
            host.pcap = host.n;
        }
        for (j = 0; j < host.n; j++) {
            host.pfd[j].fd = host.w[j].fd;
            host.pfd[j].events = host.w[j].events;
            host.pfd[j].revents = 0;
        }
        if (poll(host.pfd, (nfds_t)host.n, wait_ms) < 0 && errno != EINTR) {
            perror("echo_server: poll");
            status = 1;
            break;
        }
        if (dump_wanted) {
            dump_wanted = 0;
            task_lua_dump(host.L); /* the text, or why there is none */
            fprintf(stderr, "%s", lua_tostring(host.L, -1));
            fflush(stderr);
            lua_pop(host.L, 1);
        }
        /* Ready or expired watches resume their tasks; they run at the next
           tick. Walk backwards: remove_watch moves the last entry into i. */
        now = now_ns();
        for (j = host.n; j-- > 0;) {
            task_id id = host.w[j].id;
            if (host.pfd[j].revents) { remove_watch(j); resume_watch(host.L, id, NULL); }
            else if (host.w[j].deadline && host.w[j].deadline <= now) { remove_watch(j); resume_watch(host.L, id, "timeout"); }
        }
    }
    lua_close(host.L); /* frees the Lua tasks; Conn/Listener __gc close their fds */
    task_destroy(host.s);
    free(host.w);
    free(host.pfd);
    return status ? status : host.failed;
}
