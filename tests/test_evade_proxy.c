/*
 * test_evade_proxy.c - the test proxy's request parsers (every prefix of
 * valid requests flush against a PROT_NONE guard page, and malformed ones),
 * and the proxy itself on loopback: a CONNECT and a SOCKS5 tunnel carry
 * bytes both ways, targets other than this host are refused.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "evade_proxy.h"

static void test_connect_parse(void **state)
{
    struct sd_proxy_req r;
    const char *ok = "CONNECT 203.0.113.2:443 HTTP/1.1\r\nHost: 203.0.113.2:443\r\n\r\nTLS...";
    (void)state;

    int n = sd_proxy_parse_connect((const uint8_t *)ok, (const uint8_t *)ok + strlen(ok), &r);
    assert_int_equal(n, (int)(strstr(ok, "TLS") - ok));
    assert_string_equal(r.host, "203.0.113.2");
    assert_int_equal(r.port, 443);

    const char *v6 = "CONNECT [2001:db8:2::2]:8443 HTTP/1.0\r\n\r\n";
    assert_int_equal(sd_proxy_parse_connect((const uint8_t *)v6, (const uint8_t *)v6 + strlen(v6), &r),
                     (int)strlen(v6));
    assert_string_equal(r.host, "2001:db8:2::2");
    assert_int_equal(r.port, 8443);

    static const char *const partial[] = {"", "CONN", "CONNECT 1.2.3.4:443 HTTP/1.1\r\n",
                                          "CONNECT 1.2.3.4:443 HTTP/1.1\r\nHost: x\r\n\r"};
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
        assert_int_equal(sd_proxy_parse_connect((const uint8_t *)partial[i],
                                                (const uint8_t *)partial[i] + strlen(partial[i]), &r),
                         SD_EAGAIN);

    static const char *const bad[] = {
        "GET / HTTP/1.1\r\n\r\n",
        "CONNECT 1.2.3.4 HTTP/1.1\r\n\r\n",          /* no port */
        "CONNECT 1.2.3.4:0 HTTP/1.1\r\n\r\n",
        "CONNECT 1.2.3.4:65536 HTTP/1.1\r\n\r\n",
        "CONNECT 1.2.3.4:44x HTTP/1.1\r\n\r\n",
        "CONNECT :443 HTTP/1.1\r\n\r\n",
        "CONNECT []:443 HTTP/1.1\r\n\r\n",
        "CONNECT [::1:443 HTTP/1.1\r\n\r\n",
        "CONNECT 1.2.3.4:443 HTTP/2.0\r\n\r\n",
        "CONNECT 1.2.3.4:443 HTTP/1.1 extra\r\n\r\n",
        "CONNECT 1.2.3.4:443\r\n\r\n",
        "CONNECT  1.2.3.4:443 HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            sd_proxy_parse_connect((const uint8_t *)bad[i], (const uint8_t *)bad[i] + strlen(bad[i]), &r),
            SD_EPROTO);

    /* A head that never ends is refused once it reaches the limit. */
    static uint8_t big[SD_PROXY_REQ_MAX + 10];
    memset(big, 'a', sizeof(big));
    memcpy(big, "CONNECT 1.2.3.4:443 HTTP/1.1\r\n", 30);
    assert_int_equal(sd_proxy_parse_connect(big, big + sizeof(big), &r), SD_EPROTO);
    assert_int_equal(sd_proxy_parse_connect(big, big + 100, &r), SD_EAGAIN);
}

static void test_socks_parse(void **state)
{
    struct sd_proxy_req r;
    (void)state;

    static const uint8_t g1[] = {5, 1, 0}, g2[] = {5, 2, 2, 0}, g_noauth[] = {5, 1, 2}, g_v4[] = {4, 1, 0};
    assert_int_equal(sd_proxy_parse_socks_greeting(g1, g1 + 3), 3);
    assert_int_equal(sd_proxy_parse_socks_greeting(g2, g2 + 4), 4);
    assert_int_equal(sd_proxy_parse_socks_greeting(g2, g2 + 3), SD_EAGAIN);
    assert_int_equal(sd_proxy_parse_socks_greeting(g1, g1 + 1), SD_EAGAIN);
    assert_int_equal(sd_proxy_parse_socks_greeting(g_noauth, g_noauth + 3), SD_EPROTO);
    assert_int_equal(sd_proxy_parse_socks_greeting(g_v4, g_v4 + 3), SD_EPROTO);

    static const uint8_t q4[] = {5, 1, 0, 1, 203, 0, 113, 2, 1, 187};
    assert_int_equal(sd_proxy_parse_socks_request(q4, q4 + sizeof(q4), &r), 10);
    assert_string_equal(r.host, "203.0.113.2");
    assert_int_equal(r.port, 443);
    static const uint8_t q6[] = {5, 1, 0, 4, 0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x1f, 0x90};
    assert_int_equal(sd_proxy_parse_socks_request(q6, q6 + sizeof(q6), &r), 22);
    assert_string_equal(r.host, "2001:db8:2::2");
    assert_int_equal(r.port, 8080);
    static const uint8_t qn[] = {5, 1, 0, 3, 11, 't', 'w', 'i', 't', 't', 'e', 'r', '.', 'c', 'o', 'm', 1, 187};
    assert_int_equal(sd_proxy_parse_socks_request(qn, qn + sizeof(qn), &r), (int)sizeof(qn));
    assert_string_equal(r.host, "twitter.com");
    for (size_t k = 0; k < sizeof(q4); k++)
        assert_int_equal(sd_proxy_parse_socks_request(q4, q4 + k, &r), SD_EAGAIN);

    static const uint8_t bind[] = {5, 2, 0, 1, 1, 2, 3, 4, 0, 80}, atyp[] = {5, 1, 0, 9, 1, 2, 3, 4, 0, 80},
                         port0[] = {5, 1, 0, 1, 1, 2, 3, 4, 0, 0}, empty[] = {5, 1, 0, 3, 0, 0, 80},
                         ctl[] = {5, 1, 0, 3, 2, 'a', '\n', 0, 80};
    assert_int_equal(sd_proxy_parse_socks_request(bind, bind + sizeof(bind), &r), SD_EPROTO);
    assert_int_equal(sd_proxy_parse_socks_request(atyp, atyp + sizeof(atyp), &r), SD_EPROTO);
    assert_int_equal(sd_proxy_parse_socks_request(port0, port0 + sizeof(port0), &r), SD_EPROTO);
    assert_int_equal(sd_proxy_parse_socks_request(empty, empty + sizeof(empty), &r), SD_EPROTO);
    assert_int_equal(sd_proxy_parse_socks_request(ctl, ctl + sizeof(ctl), &r), SD_EPROTO);
}

/* Every prefix of each request, ending flush against an unreadable page. */
static void test_guard_page(void **state)
{
    static const uint8_t s4[] = {5, 1, 0, 1, 203, 0, 113, 2, 1, 187};
    static const uint8_t sn[] = {5, 1, 0, 3, 5, 'a', '.', 'b', 'c', 'd', 1, 187};
    static const uint8_t gr[] = {5, 3, 1, 2, 0};
    static const char *const http[] = {
        "CONNECT 203.0.113.2:443 HTTP/1.1\r\nHost: 203.0.113.2:443\r\nUser-Agent: x\r\n\r\n",
        "CONNECT [2001:db8::1]:443 HTTP/1.0\r\n\r\n",
    };
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct sd_proxy_req r;
    (void)state;

    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    for (size_t c = 0; c < 2; c++) {
        size_t n = strlen(http[c]);
        for (size_t k = 0; k <= n; k++) {
            uint8_t *p = map + page - k;
            memcpy(p, http[c], k);
            int rc = sd_proxy_parse_connect(p, p + k, &r);
            assert_int_equal(rc, k == n ? (int)n : SD_EAGAIN);
        }
    }
    const struct {
        const uint8_t *b;
        size_t n;
    } bin[] = {{s4, sizeof(s4)}, {sn, sizeof(sn)}};
    for (size_t c = 0; c < 2; c++) {
        for (size_t k = 0; k <= bin[c].n; k++) {
            uint8_t *p = map + page - k;
            memcpy(p, bin[c].b, k);
            int rc = sd_proxy_parse_socks_request(p, p + k, &r);
            assert_int_equal(rc, k == bin[c].n ? (int)k : SD_EAGAIN);
        }
    }
    for (size_t k = 0; k <= sizeof(gr); k++) {
        uint8_t *p = map + page - k;
        memcpy(p, gr, k);
        int rc = sd_proxy_parse_socks_greeting(p, p + k);
        assert_int_equal(rc, k == sizeof(gr) ? (int)k : SD_EAGAIN);
    }
    munmap(map, (size_t)page * 2);
}

/* ---- the proxy on loopback, towards a local echo listener ---- */

static int listen_local(uint16_t *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

static int dial(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static ssize_t read_some(int fd, char *buf, size_t n)
{
    ssize_t r = recv(fd, buf, n - 1, 0);
    buf[r > 0 ? r : 0] = '\0';
    return r;
}

static void test_tunnels(void **state)
{
    struct sd_proxy_thread pt;
    uint16_t tport;
    char buf[256], req[128];
    (void)state;

    int lfd = listen_local(&tport);
    assert_int_equal(sd_proxy_thread_start(&pt, NULL, "127.0.0.1", 0), 0);
    assert_true(pt.port != 0);

    /* HTTP CONNECT: the answer, then bytes both ways (pipelined after the head). */
    int c = dial(pt.port);
    snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\nhello", tport);
    assert_int_equal(send(c, req, strlen(req), 0), (ssize_t)strlen(req));
    int s = accept(lfd, NULL, NULL);
    assert_true(s >= 0);
    assert_true(read_some(c, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "200"));
    struct timeval tv = {3, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(read_some(s, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(send(s, "world", 5, 0), 5);
    assert_int_equal(read_some(c, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "world");
    close(s);
    assert_int_equal(read_some(c, buf, sizeof(buf)), 0); /* the close travels too */
    close(c);

    /* SOCKS5: greeting and request at once. */
    c = dial(pt.port);
    uint8_t q[13] = {5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, (uint8_t)(tport >> 8), (uint8_t)tport};
    assert_int_equal(send(c, q, sizeof(q), 0), (ssize_t)sizeof(q));
    s = accept(lfd, NULL, NULL);
    uint8_t ans[12];
    size_t got = 0;
    while (got < 12) {
        ssize_t r = recv(c, ans + got, 12 - got, 0);
        assert_true(r > 0);
        got += (size_t)r;
    }
    assert_int_equal(ans[0], 5);
    assert_int_equal(ans[1], 0);
    assert_int_equal(ans[2], 5);
    assert_int_equal(ans[3], 0);
    assert_int_equal(send(c, "ping", 4, 0), 4);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(read_some(s, buf, sizeof(buf)), 4);
    close(s);
    close(c);

    /* Another host, or a name: refused, nothing dialled. */
    c = dial(pt.port);
    snprintf(req, sizeof(req), "CONNECT 192.0.2.99:%u HTTP/1.1\r\n\r\n", tport);
    send(c, req, strlen(req), 0);
    assert_true(read_some(c, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "403"));
    close(c);
    c = dial(pt.port);
    snprintf(req, sizeof(req), "CONNECT localhost:%u HTTP/1.1\r\n\r\n", tport);
    send(c, req, strlen(req), 0);
    assert_true(read_some(c, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "403"));
    close(c);
    c = dial(pt.port);
    send(c, "GET / HTTP/1.1\r\n\r\n", 18, 0);
    assert_int_equal(read_some(c, buf, sizeof(buf)), 0); /* not a proxy request: closed */
    close(c);
    struct pollfd p = {lfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 100), 0);

    sd_proxy_thread_stop(&pt);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_parse),
        cmocka_unit_test(test_socks_parse),
        cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_tunnels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
