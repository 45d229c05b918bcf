/* echo_client: a bounded load client for echo_server, loopback only.
 *
 *   build/echo_client PORT [CONNS [MSGS]] [--idle] [--cancel]
 *
 * Opens CONNS connections (default 50) to 127.0.0.1:PORT at once and
 * sends MSGS messages (default 200) on each, one at a time, each of a
 * different length (1..4096 bytes) and content; every echoed byte is
 * checked. Then, with --idle, opens one connection that sends nothing and
 * expects the server to close it (its read timeout); with --cancel, one
 * that echoes one message and then waits for the server to close it when
 * it shuts down (the connection's task is cancelled). Prints TAP lines;
 * gives up after 60 s. Exits 0 when every check passed.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXLEN 4096
#define GIVE_UP_MS 60000

typedef struct conn {
    int fd, msg;             /* msg: index of the message in flight */
    size_t len, sent, got;   /* its length, bytes sent, bytes echoed */
    unsigned char buf[MAXLEN];
} conn;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t mix(uint32_t x) { /* a small integer hash */
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}

/* Message m of connection c: its length and bytes, reproducible. */
static void make_msg(conn *k, int c) {
    uint32_t h = mix((uint32_t)c * 7919u + (uint32_t)k->msg);
    size_t i;
    k->len = 1 + h % (k->msg % 25 == 24 ? MAXLEN : 300);
    for (i = 0; i < k->len; i++) k->buf[i] = (unsigned char)mix(h + (uint32_t)i);
    k->sent = k->got = 0;
}

static int dial(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { close(fd); return -1; }
    return fd;
}

/* Waits up to ms for fd to be readable and reads into buf; returns recv's result, -2 on timeout. */
static long read_wait(int fd, unsigned char *buf, size_t n, int ms) {
    struct pollfd p;
    p.fd = fd; p.events = POLLIN; p.revents = 0;
    if (poll(&p, 1, ms) <= 0) return -2;
    return (long)recv(fd, buf, n, 0);
}

static int load(int port, int nconns, int nmsgs) {
    conn *cs = (conn *)calloc((size_t)nconns, sizeof *cs);
    struct pollfd *pf = (struct pollfd *)calloc((size_t)nconns, sizeof *pf);
    uint64_t start = now_ms(), total = 0;
    int i, active = 0, bad = 0, opened = 0;
    if (!cs || !pf) { printf("not ok - echo: out of memory\n"); return 1; }
    for (i = 0; i < nconns; i++) {
        if ((cs[i].fd = dial(port)) < 0) { printf("# connection %d: %s\n", i, strerror(errno)); bad = 1; continue; }
        fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL, 0) | O_NONBLOCK);
        make_msg(&cs[i], i);
        opened++;
        active++;
    }
    while (active > 0 && !bad) {
        int n = 0, r;
        if (now_ms() - start > GIVE_UP_MS) { printf("# gave up after %d ms\n", GIVE_UP_MS); bad = 1; break; }
        for (i = 0; i < nconns; i++) {
            conn *k = &cs[i];
            if (k->fd < 0) continue;
            pf[n].fd = k->fd;
            pf[n].events = (short)(k->sent < k->len ? POLLIN | POLLOUT : POLLIN);
            pf[n].revents = 0;
            n++;
        }
        if ((r = poll(pf, (nfds_t)n, 1000)) < 0 && errno != EINTR) { perror("poll"); bad = 1; break; }
        n = 0;
        for (i = 0; i < nconns && !bad; i++) {
            conn *k = &cs[i];
            unsigned char in[MAXLEN];
            short re;
            if (k->fd < 0) continue;
            re = pf[n++].revents;
            if ((re & POLLOUT) && k->sent < k->len) {
                ssize_t w = send(k->fd, k->buf + k->sent, k->len - k->sent, 0);
                if (w > 0) k->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                    printf("# connection %d: send: %s\n", i, strerror(errno)); bad = 1; break;
                }
            }
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t g = recv(k->fd, in, k->len - k->got, 0), j;
                if (g == 0 || (g < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    printf("# connection %d: message %d: the server closed or failed (%s)\n", i, k->msg,
                           g == 0 ? "EOF" : strerror(errno));
                    bad = 1; break;
                }
                for (j = 0; j < g; j++)
                    if (in[j] != k->buf[k->got + (size_t)j]) {
                        printf("# connection %d: message %d: byte %zu is %u, sent %u\n", i, k->msg,
                               k->got + (size_t)j, in[j], k->buf[k->got + (size_t)j]);
                        bad = 1; break;
                    }
                if (g > 0) k->got += (size_t)g;
                if (k->got > k->sent) { printf("# connection %d: more bytes back than sent\n", i); bad = 1; }
                if (!bad && k->got == k->len) {
                    total += k->len;
                    if (++k->msg == nmsgs) { close(k->fd); k->fd = -1; active--; }
                    else make_msg(k, i);
                }
            }
        }
    }
    for (i = 0; i < nconns; i++) if (cs[i].fd >= 0) close(cs[i].fd);
    printf("%s - echo: %d connections x %d messages, %llu bytes echoed and checked (%d opened, %llu ms)\n",
           bad ? "not ok" : "ok", nconns, nmsgs, (unsigned long long)total, opened,
           (unsigned long long)(now_ms() - start));
    free(cs);
    free(pf);
    return bad;
}

/* A connection that sends nothing: the server's read times out and closes it. */
static int idle(int port) {
    unsigned char b[16];
    uint64_t t0 = now_ms();
    int fd = dial(port);
    long r = fd < 0 ? -3 : read_wait(fd, b, sizeof b, 20000);
    if (fd >= 0) close(fd);
    printf("%s - echo: an idle connection is closed by the server's read timeout (%s after %llu ms)\n",
           r == 0 ? "ok" : "not ok", r == 0 ? "EOF" : r == -2 ? "still open" : "error",
           (unsigned long long)(now_ms() - t0));
    return r != 0;
}

/* One message echoed, then the server shuts down and cancels the task. */
static int cancelled(int port) {
    unsigned char b[8];
    long r = -3;
    int fd = dial(port), ok = 0;
    if (fd >= 0 && send(fd, "ping", 4, 0) == 4 && read_wait(fd, b, sizeof b, 20000) == 4 && memcmp(b, "ping", 4) == 0) {
        r = read_wait(fd, b, sizeof b, 20000);
        ok = r == 0;
    }
    if (fd >= 0) close(fd);
    printf("%s - echo: a connection open at shutdown is closed when its task is cancelled (%s)\n",
           ok ? "ok" : "not ok", r == 0 ? "EOF" : r == -2 ? "still open" : "no echo or error");
    return !ok;
}

int main(int argc, char **argv) {
    int port = 0, nconns = 50, nmsgs = 200, pos = 0, do_idle = 0, do_cancel = 0, i, bad;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--idle") == 0) do_idle = 1;
        else if (strcmp(argv[i], "--cancel") == 0) do_cancel = 1;
        else if (pos == 0) { port = atoi(argv[i]); pos++; }
        else if (pos == 1) { nconns = atoi(argv[i]); pos++; }
        else { nmsgs = atoi(argv[i]); pos++; }
    }
    if (port <= 0 || port > 65535 || nconns < 1 || nconns > 10000 || nmsgs < 1 || nmsgs > 1000000) {
        fprintf(stderr, "usage: echo_client PORT [CONNS [MSGS]] [--idle] [--cancel]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    bad = load(port, nconns, nmsgs);
    if (do_idle) bad |= idle(port);
    if (do_cancel) bad |= cancelled(port);
    return bad;
}
