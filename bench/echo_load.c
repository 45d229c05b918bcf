/* echo_load: the load client of the luv echo benchmark (bench/luv_echo.lua),
 * loopback only.
 *
 *   echo_load PORT CONNS SIZE MS [WARMUP_MS]   ping-pong for WARMUP_MS, then measure MS
 *   echo_load PORT CONNS SIZE --count N        N round trips per connection (a smoke run)
 *
 * Opens CONNS connections to 127.0.0.1:PORT; each sends a SIZE-byte
 * message, waits for all of it to come back (every byte checked), and
 * sends the next: a request is one round trip, its latency from the send
 * to the last byte back. Prints one line:
 *   echo_load: requests R ms T rps X p50_us A p99_us B errors E
 * counting the requests that completed in the measured window. Gives up
 * after 120 s. Exits 0 when every byte matched and nothing failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXSIZE 65536
#define GIVE_UP_NS (120ull * 1000000000ull)

typedef struct conn {
    int fd;
    uint32_t seq;            /* the message in flight */
    size_t sent, got;        /* bytes of it sent and echoed */
    uint64_t t_sent;         /* when its first byte went out */
    unsigned char msg[MAXSIZE];
} conn;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void make_msg(conn *k, int c, size_t size) {
    size_t i;
    uint32_t h = (uint32_t)c * 2654435761u ^ k->seq * 40503u;
    for (i = 0; i < size; i++) { h = h * 1103515245u + 12345u; k->msg[i] = (unsigned char)(h >> 16); }
    k->sent = k->got = 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int port, nconns, i, errors = 0, active, stopping = 0;
    size_t size;
    long count = 0;
    uint64_t dur, warm = 0, t0, t_meas, t_end, *lat = NULL;
    size_t nlat = 0, caplat = 0;
    conn *cs;
    struct pollfd *pf;
    if (argc < 5) {
        fprintf(stderr, "usage: echo_load PORT CONNS SIZE MS [WARMUP_MS] | PORT CONNS SIZE --count N\n");
        return 2;
    }
    port = atoi(argv[1]); nconns = atoi(argv[2]); size = (size_t)atol(argv[3]);
    if (strcmp(argv[4], "--count") == 0) { count = argc > 5 ? atol(argv[5]) : 1; dur = 0; }
    else { dur = (uint64_t)atol(argv[4]) * 1000000ull; if (argc > 5) warm = (uint64_t)atol(argv[5]) * 1000000ull; }
    if (port <= 0 || port > 65535 || nconns < 1 || nconns > 10000 || size < 1 || size > MAXSIZE || (count <= 0 && dur == 0)) {
        fprintf(stderr, "echo_load: bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    cs = (conn *)calloc((size_t)nconns, sizeof *cs);
    pf = (struct pollfd *)calloc((size_t)nconns, sizeof *pf);
    if (!cs || !pf) { fprintf(stderr, "echo_load: out of memory\n"); return 1; }
    for (i = 0; i < nconns; i++) {
        struct sockaddr_in a;
        int one = 1;
        cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (cs[i].fd < 0 || connect(cs[i].fd, (struct sockaddr *)&a, sizeof a) != 0) {
            fprintf(stderr, "echo_load: connection %d: %s\n", i, strerror(errno));
            return 1;
        }
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL, 0) | O_NONBLOCK);
        make_msg(&cs[i], i, size);
    }
    t0 = now_ns();
    t_meas = t0 + warm;
    t_end = t_meas + dur;
    for (i = 0; i < nconns; i++) cs[i].t_sent = t0;
    active = nconns;
    while (active > 0) {
        uint64_t now = now_ns();
        int n = 0;
        if (now - t0 > GIVE_UP_NS) { fprintf(stderr, "echo_load: gave up\n"); errors++; break; }
        if (dur && !stopping && now >= t_end) stopping = 1;
        for (i = 0; i < nconns; i++) {
            conn *k = &cs[i];
            if (k->fd < 0) continue;
            pf[n].fd = k->fd;
            pf[n].events = (short)(k->sent < size ? POLLIN | POLLOUT : POLLIN);
            pf[n].revents = 0;
            n++;
        }
        if (poll(pf, (nfds_t)n, 1000) < 0 && errno != EINTR) { perror("poll"); errors++; break; }
        n = 0;
        for (i = 0; i < nconns; i++) {
            conn *k = &cs[i];
            short re;
            if (k->fd < 0) continue;
            re = pf[n++].revents;
            if ((re & POLLOUT) && k->sent < size) {
                ssize_t w = send(k->fd, k->msg + k->sent, size - k->sent, 0);
                if (w > 0) k->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { errors++; close(k->fd); k->fd = -1; active--; continue; }
            }
            if (re & (POLLIN | POLLHUP | POLLERR)) {
                unsigned char in[MAXSIZE];
                ssize_t g = recv(k->fd, in, size - k->got, 0);
                if (g == 0 || (g < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    fprintf(stderr, "echo_load: connection %d: %s\n", i, g == 0 ? "closed by the server" : strerror(errno));
                    errors++; close(k->fd); k->fd = -1; active--; continue;
                }
                if (g < 0) continue;
                if (k->got + (size_t)g > k->sent || memcmp(in, k->msg + k->got, (size_t)g) != 0) {
                    fprintf(stderr, "echo_load: connection %d: wrong bytes back\n", i);
                    errors++; close(k->fd); k->fd = -1; active--; continue;
                }
                k->got += (size_t)g;
                if (k->got == size) {
                    uint64_t t = now_ns();
                    if (count || (k->t_sent >= t_meas && t <= t_end)) {
                        if (nlat == caplat) {
                            caplat = caplat ? caplat * 2 : 65536;
                            lat = (uint64_t *)realloc(lat, caplat * sizeof *lat);
                            if (!lat) { fprintf(stderr, "echo_load: out of memory\n"); return 1; }
                        }
                        lat[nlat++] = t - k->t_sent;
                    }
                    k->seq++;
                    if ((count && (long)k->seq >= count) || (dur && stopping)) {
                        close(k->fd); k->fd = -1; active--; continue;
                    }
                    make_msg(k, i, size);
                    k->t_sent = t;
                    {
                        ssize_t w = send(k->fd, k->msg, size, 0);
                        if (w > 0) k->sent = (size_t)w;
                        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { errors++; close(k->fd); k->fd = -1; active--; }
                    }
                }
            }
        }
    }
    for (i = 0; i < nconns; i++) if (cs[i].fd >= 0) close(cs[i].fd);
    {
        double ms = count ? (double)(now_ns() - t0) / 1e6 : (double)dur / 1e6;
        double p50 = 0, p99 = 0;
        if (nlat) {
            qsort(lat, nlat, sizeof *lat, cmp_u64);
            p50 = (double)lat[nlat / 2] / 1e3;
            p99 = (double)lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] / 1e3;
        }
        printf("echo_load: requests %zu ms %.1f rps %.1f p50_us %.1f p99_us %.1f errors %d\n",
               nlat, ms, ms > 0 ? (double)nlat * 1000.0 / ms : 0.0, p50, p99, errors);
    }
    free(lat); free(cs); free(pf);
    return errors ? 1 : 0;
}
