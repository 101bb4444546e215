/*
 * test_serve_limits.c - `slowdown serve` (serve.c) is neither an amplifier
 * nor a relay: on loopback, a request for more bytes than --bytes gets
 * --bytes and no more (download, echo, the default mode of a connection that
 * sends no request), connections past --max-conns are closed at once while
 * the others are served and a slot that frees up is used again, and requests
 * naming another host (CONNECT, an absolute URI) make the server connect
 * nowhere: a listener of the test's own, named in them, sees no connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "serve.h"

enum { CAP_BYTES = 20000, MAX_CONNS = 2 };

struct srv {
    struct sd_serve *s;
    int stop;
    pthread_t tid;
    uint16_t port;
};

static void *srv_main(void *arg)
{
    struct srv *v = arg;
    sd_serve_run(v->s, v->stop);
    return NULL;
}

static void srv_start(struct srv *v, uint8_t mode)
{
    struct sd_serve_config c = {.listen = "127.0.0.1", .plain = true, .mode = mode, .max_bytes = CAP_BYTES,
                                .max_seconds = 5, .max_conns = MAX_CONNS, .request_wait_ms = 300};
    char err[256];

    signal(SIGPIPE, SIG_IGN);
    v->s = sd_serve_open(&c, err, sizeof(err));
    assert_non_null(v->s);
    v->port = sd_serve_port(v->s, false);
    v->stop = eventfd(0, EFD_CLOEXEC);
    assert_true(v->stop >= 0);
    assert_int_equal(pthread_create(&v->tid, NULL, srv_main, v), 0);
}

static void srv_stop(struct srv *v)
{
    uint64_t one = 1;
    assert_int_equal(write(v->stop, &one, sizeof(one)), sizeof(one));
    pthread_join(v->tid, NULL);
    sd_serve_free(v->s);
    close(v->stop);
}

static int dial(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    struct timeval tv = {.tv_sec = 8};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void send_str(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until EOF (or an error, or the receive timeout); the byte count. */
static size_t drain(int fd)
{
    char buf[16384];
    size_t total = 0;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0)
            return total;
        total += (size_t)n;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_bytes_capped(void **state)
{
    struct srv v;
    (void)state;
    srv_start(&v, SD_SERVE_SEND);

    int fd = dial(v.port);
    send_str(fd, "GET /down?bytes=100000000\n");
    assert_int_equal(drain(fd), CAP_BYTES);
    close(fd);

    /* No request at all: the default mode, capped the same. */
    fd = dial(v.port);
    assert_int_equal(drain(fd), CAP_BYTES);
    close(fd);

    /* HTTP: the header says the capped length, the body has it. */
    fd = dial(v.port);
    send_str(fd, "GET /down?bytes=100000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    char hdr[512];
    ssize_t n = recv(fd, hdr, sizeof(hdr) - 1, MSG_PEEK);
    assert_true(n > 0);
    hdr[n] = '\0';
    assert_non_null(strstr(hdr, "Content-Length: 20000\r\n"));
    const char *body = strstr(hdr, "\r\n\r\n");
    assert_non_null(body);
    assert_int_equal(drain(fd), (size_t)(body + 4 - hdr) + CAP_BYTES);
    close(fd);
    srv_stop(&v);
}

/* Echo sends back what it got, never more, and stops at the cap. */
static void test_echo_capped(void **state)
{
    static char junk[60000];
    struct srv v;
    (void)state;
    srv_start(&v, SD_SERVE_SEND);

    int fd = dial(v.port);
    send_str(fd, "POST /echo\n");
    memset(junk, 'x', sizeof(junk));
    size_t got = 0, sent = 0;
    while (sent < sizeof(junk)) {
        ssize_t w = send(fd, junk + sent, sizeof(junk) - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break; /* the server stopped reading at its cap and closed */
        char buf[16384];
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0)
            break;
        else if (w <= 0)
            poll(NULL, 0, 5);
    }
    shutdown(fd, SHUT_WR);
    got += drain(fd);
    assert_true(got <= CAP_BYTES);
    assert_true(got >= 1000); /* it did echo */
    close(fd);
    srv_stop(&v);
}

/* Past max_conns a connection is closed at once; the ones inside keep their slot; a freed slot is reused. */
static void test_conns_capped(void **state)
{
    struct srv v;
    int held[MAX_CONNS];
    (void)state;
    srv_start(&v, SD_SERVE_SINK); /* silent clients hold their slot: a sink waits for their upload */

    for (int i = 0; i < MAX_CONNS; i++)
        held[i] = dial(v.port);
    poll(NULL, 0, 200); /* let the server accept them */
    for (int k = 0; k < 3; k++) {
        double t0 = now_s();
        int fd = dial(v.port);
        send_str(fd, "GET /down?bytes=1000\n");
        assert_int_equal(drain(fd), 0); /* closed without a byte */
        assert_true(now_s() - t0 < 2.0);
        close(fd);
    }
    for (int i = 0; i < MAX_CONNS; i++) {
        /* still served: the upload is counted */
        send_str(held[i], "hello");
        shutdown(held[i], SHUT_WR);
        char buf[64] = {0};
        assert_true(recv(held[i], buf, sizeof(buf) - 1, 0) > 0);
        assert_non_null(strstr(buf, "OK "));
        close(held[i]);
    }
    poll(NULL, 0, 300); /* the connection threads end */
    int fd = dial(v.port);
    send_str(fd, "GET /down?bytes=1000\n");
    assert_int_equal(drain(fd), 1000);
    close(fd);
    srv_stop(&v);
}

/* Requests that name another host: the server connects to nothing. */
static void test_not_a_relay(void **state)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    struct srv v;
    char req[256];
    (void)state;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 8), 0);
    getsockname(lfd, (struct sockaddr *)&a, &al);
    unsigned target = ntohs(a.sin_port);

    srv_start(&v, SD_SERVE_SEND);
    for (int f = 0; f < 3; f++) {
        int fd = dial(v.port), n;
        if (f == 0)
            n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", target,
                         target);
        else if (f == 1)
            n = snprintf(req, sizeof(req),
                         "GET http://127.0.0.1:%u/down?bytes=100000000 HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
                         target, target);
        else {
            /* a SOCKS5 greeting and CONNECT 127.0.0.1:target */
            static const char socks[] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1};
            memcpy(req, socks, sizeof(socks));
            req[sizeof(socks)] = (char)(target >> 8);
            req[sizeof(socks) + 1] = (char)(target & 0xff);
            n = (int)sizeof(socks) + 2;
        }
        assert_int_equal(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
        assert_true(drain(fd) <= CAP_BYTES + 512);
        close(fd);
    }
    struct pollfd p = {lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 200), 0); /* nobody knocked */
    close(lfd);
    srv_stop(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_capped),
        cmocka_unit_test(test_echo_capped),
        cmocka_unit_test(test_conns_capped),
        cmocka_unit_test(test_not_a_relay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
