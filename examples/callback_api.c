/* callback_api: a C library with a callback-style API, seen from Lua tasks
 * as a blocking call.
 *
 *   build/callback_api [script.lua]   (default: examples/callback_api.lua)
 *
 * Many C libraries (HTTP clients, resolvers, database drivers) start a
 * request, return at once, and call a callback from the host's loop when
 * it completes. "fetch" below stands for one: fetch_start() starts a
 * request, fetch_poll() (called by the loop) runs the callbacks of the
 * requests that completed, and fetch_cancel() stops one, whose callback
 * still comes, later, with FETCH_CANCELLED (as libuv's uv_cancel does).
 *
 * The module "fetch" gives Lua fetch.start(url, id): it starts a request
 * whose callback resumes the external id with (status, body), and returns
 * the request as a to-be-closed value. examples/callback_api.lua wraps it
 * into a blocking get(url): task.alloc(), fetch.start, task.wait(id). A
 * task cancelled while it waits leaves task.wait with "task cancelled",
 * which closes its request: the library request is cancelled and the id
 * given up, so the callback that still comes is dropped (task_lua_resume
 * returns TASK_ENOENT) and nothing is left behind.
 *
 * The clock is simulated (it jumps to the next deadline), so the output is
 * the same on every run; make test compares it with callback_api.expected.
 */
#define _POSIX_C_SOURCE 200809L
#define TASK_IMPLEMENTATION
#define TASK_LUA_IMPLEMENTATION
#include "../task_lua.h"
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- "fetch": a stand-in for a library with a callback API ------------ */
#define FETCH_CANCELLED (-1)
typedef void (*fetch_cb)(void *ctx, int status, const char *body);
typedef struct fetch_req {
    struct fetch_req *next;
    uint64_t due;      /* when its callback runs, in ms of the host's clock */
    int status;        /* 200, or FETCH_CANCELLED */
    char body[64];
    fetch_cb cb;
    void *ctx;
} fetch_req;
static fetch_req *fetch_list; /* the requests whose callback has not run */
static uint64_t fetch_clock;  /* ms, as of the last fetch_poll */

/* Starts a request; its callback runs from fetch_poll once it completes:
   after 500 ms for a URL that ends in "/slow", 20 ms for any other. */
static fetch_req *fetch_start(const char *url, fetch_cb cb, void *ctx) {
    size_t n = strlen(url);
    fetch_req *r = (fetch_req *)malloc(sizeof *r);
    if (!r) return NULL;
    r->due = fetch_clock + (n >= 5 && strcmp(url + n - 5, "/slow") == 0 ? 500 : 20);
    r->status = 200;
    snprintf(r->body, sizeof r->body, "body of %s", url);
    r->cb = cb;
    r->ctx = ctx;
    r->next = fetch_list;
    fetch_list = r;
    return r;
}

/* Stops a request: its callback comes at the next fetch_poll, cancelled. */
static void fetch_cancel(fetch_req *r) {
    r->status = FETCH_CANCELLED;
    r->body[0] = 0;
    r->due = fetch_clock;
}

/* Runs the callbacks of the requests due by now (ms), then frees them. */
static void fetch_poll(uint64_t now) {
    fetch_req **p = &fetch_list;
    fetch_clock = now;
    while (*p) {
        fetch_req *r = *p;
        if (r->due > now) { p = &r->next; continue; }
        *p = r->next;
        r->cb(r->ctx, r->status, r->body);
        free(r);
        p = &fetch_list; /* a callback may have started or cancelled others */
    }
}

/* The earliest time a callback is due, or UINT64_MAX when none is. */
static uint64_t fetch_next_due(void) {
    uint64_t due = UINT64_MAX;
    const fetch_req *r;
    for (r = fetch_list; r; r = r->next) if (r->due < due) due = r->due;
    return due;
}

/* ---- the binding: module "fetch" --------------------------------------- */
static lua_State *host_L; /* the host's state: callbacks run outside any task */

struct call {          /* one request in flight; its callback frees it */
    task_id id;        /* the external id its task waits on */
    fetch_req *req;
    struct call **handle; /* the Lua request's pointer to it, while it has one */
    char url[48];
};

static void on_reply(void *ctx, int status, const char *body) {
    struct call *c = (struct call *)ctx;
    if (c->handle) *c->handle = NULL;        /* done: nothing to cancel at close */
    lua_pushinteger(host_L, status);
    lua_pushstring(host_L, body);
    if (task_lua_resume(host_L, c->id, 2) != TASK_OK)  /* values popped either way */
        printf("[c] %s: callback after its task gave up (status %d), dropped\n", c->url, status);
    free(c);
}

static int fetch_l_close(lua_State *L) {     /* __close, __gc: cancel if pending */
    struct call **h = (struct call **)luaL_checkudata(L, 1, "fetch.request");
    struct call *c = *h;
    if (c) {                                 /* its task gave up waiting */
        *h = NULL;
        c->handle = NULL;
        fetch_cancel(c->req);                /* the callback still comes, and frees c */
        if (task_lua_sched(L))               /* give up the id: the callback is dropped */
            task_ext_release(task_lua_sched(L), c->id);
        printf("[c] %s: cancelled\n", c->url);
    }
    return 0;
}

static int fetch_l_start(lua_State *L) {     /* fetch.start(url, id) -> request */
    const char *url = luaL_checkstring(L, 1);
    task_id id = (task_id)luaL_checkinteger(L, 2);
    struct call **h = (struct call **)lua_newuserdatauv(L, sizeof *h, 0);
    struct call *c = (struct call *)malloc(sizeof *c);
    *h = NULL;
    luaL_setmetatable(L, "fetch.request");
    if (!c) return luaL_error(L, "fetch.start: out of memory");
    c->id = id;
    c->handle = h;
    snprintf(c->url, sizeof c->url, "%s", url);
    if (!(c->req = fetch_start(url, on_reply, c))) { free(c); return luaL_error(L, "fetch.start: failed"); }
    *h = c;
    return 1;
}

static int luaopen_fetch(lua_State *L) {
    static const luaL_Reg funcs[] = {{"start", fetch_l_start}, {NULL, NULL}};
    luaL_newmetatable(L, "fetch.request");
    lua_pushcfunction(L, fetch_l_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, fetch_l_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}

/* ---- the host ---------------------------------------------------------- */
int main(int argc, char **argv) {
    const char *script = argc > 1 ? argv[1] : "examples/callback_api.lua";
    uint64_t now = 0; /* ms; simulated: the loop jumps to the next deadline */
    int status = 0;
    task_sched *s = task_create(NULL, NULL);
    lua_State *L = luaL_newstate();
    if (!s || !L) { fprintf(stderr, "callback_api: out of memory\n"); return 1; }
    host_L = L;
    luaL_openlibs(L);
    task_lua_open(L, s);
    lua_pop(L, 1);
    luaL_requiref(L, "fetch", luaopen_fetch, 0);
    lua_pop(L, 1);
    if (luaL_loadfile(L, script) != LUA_OK || task_lua_spawn(L, 0, NULL) != TASK_OK) {
        fprintf(stderr, "callback_api: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_pop(L, 1);
    for (;;) {
        uint64_t wait, due;
        fetch_poll(now);                       /* the library's callbacks */
        task_tick(s, now * TASK_MSEC);
        due = fetch_next_due();
        if (task_count(s, -1) == 0 && due == UINT64_MAX) break;
        /* A real host blocks here (poll, epoll_wait) for the shorter of
           task_timeout_ms and the library's own timeout. */
        wait = task_timeout(s, now * TASK_MSEC);
        if (wait == TASK_FOREVER && due == UINT64_MAX) {
            fprintf(stderr, "callback_api: %d task(s) wait for nothing\n", task_count(s, -1));
            status = 2;
            break;
        }
        if (wait != TASK_FOREVER && now + (wait + TASK_MSEC - 1) / TASK_MSEC < due)
            due = now + (wait + TASK_MSEC - 1) / TASK_MSEC;
        now = due > now ? due : now;
    }
    lua_close(L);
    task_destroy(s);
    return status;
}
