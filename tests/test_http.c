/*
 * test_http.c - HTTP/1.x request heads (Host, CONNECT, absolute-form targets,
 * bounds, truncation against a guard page) and SOCKS4/4a/5 first packets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http.h"

static bool iov_is(struct sd_iov v, const char *s)
{
    return v.p != NULL && v.n == strlen(s) && memcmp(v.p, s, v.n) == 0;
}

static int parse(const char *s, struct sd_http_req *req)
{
    const uint8_t *p = (const uint8_t *)s;
    return sd_http_parse_request(p, p + strlen(s), req);
}

static enum sd_socks_kind socks(const uint8_t *p, size_t n, struct sd_iov *host)
{
    return sd_socks_parse(p, p + n, host);
}

static void test_get_with_host(void **state)
{
    (void)state;
    static const char req_s[] = "GET /index.html HTTP/1.1\r\nUser-Agent: curl/8.0\r\nHost: twitter.com\r\n"
                                "Accept: */*\r\n\r\n";
    struct sd_http_req req;
    assert_int_equal(parse(req_s, &req), (int)strlen(req_s));
    assert_true(iov_is(req.method, "GET"));
    assert_true(iov_is(req.target, "/index.html"));
    assert_true(iov_is(req.host, "twitter.com"));
    assert_int_equal(req.port, 0);
    assert_int_equal(req.minor_version, 1);
    assert_false(req.is_connect);
    assert_false(req.is_proxy_form);
    /* Bytes after the head (a body) are not consumed. */
    static const char body[] = "POST / HTTP/1.0\nHost: a.example\n\nkey=value";
    assert_int_equal(parse(body, &req), (int)strlen(body) - 9);
    assert_int_equal(req.minor_version, 0);
    assert_true(iov_is(req.method, "POST"));
}

static void test_host_forms(void **state)
{
    (void)state;
    struct sd_http_req req;
    assert_true(parse("GET / HTTP/1.1\r\nhOsT:   twitter.com:8080  \r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "twitter.com"));
    assert_int_equal(req.port, 8080);
    assert_true(parse("GET / HTTP/1.1\r\nHost:\ttwitter.com\t\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "twitter.com"));
    assert_true(parse("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "::1"));
    assert_int_equal(req.port, 80);
    assert_true(parse("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "2001:db8::1"));
    assert_int_equal(req.port, 0);
    assert_true(parse("GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "example.com"));
    /* The first Host header counts. */
    assert_true(parse("GET / HTTP/1.1\r\nHost: first.example\r\nHost: second.example\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "first.example"));
    /* An empty Host header is no name; "Hostname" is another header. */
    assert_true(parse("GET / HTTP/1.1\r\nHost:\r\nHostname: x\r\n\r\n", &req) > 0);
    assert_null(req.host.p);
    assert_true(parse("GET / HTTP/1.1\r\n\r\n", &req) > 0);
    assert_null(req.host.p);
    /* Bad ports, stray brackets, a bare IPv6 literal, an empty name. */
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost: a.example:http\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a.example:65536\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a.example:123456\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: ::1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: :80\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: []:80\r\n\r\n",
    };
    for (size_t i = 0; i < SD_COUNTOF(bad); i++)
        assert_int_equal(parse(bad[i], &req), SD_EPROTO);
    assert_true(parse("GET / HTTP/1.1\r\nHost: a.example:65535\r\n\r\n", &req) > 0);
    assert_int_equal(req.port, 65535);
}

static void test_connect(void **state)
{
    (void)state;
    struct sd_http_req req;
    static const char c[] = "CONNECT twitter.com:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n";
    assert_int_equal(parse(c, &req), (int)strlen(c));
    assert_true(req.is_connect);
    assert_true(iov_is(req.host, "twitter.com")); /* the target, not the Host header */
    assert_int_equal(req.port, 443);
    assert_true(parse("CONNECT [2001:db8::2]:8443 HTTP/1.1\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "2001:db8::2"));
    assert_int_equal(req.port, 8443);
    assert_int_equal(parse("CONNECT twitter.com HTTP/1.1\r\n\r\n", &req), SD_EPROTO);
    assert_int_equal(parse("CONNECT twitter.com: HTTP/1.1\r\n\r\n", &req), SD_EPROTO);
    assert_int_equal(parse("CONNECT :443 HTTP/1.1\r\n\r\n", &req), SD_EPROTO);
}

static void test_absolute_form(void **state)
{
    (void)state;
    struct sd_http_req req;
    assert_true(parse("GET http://twitter.com/home?x=1 HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n", &req) > 0);
    assert_true(req.is_proxy_form);
    assert_true(iov_is(req.host, "twitter.com"));
    assert_true(iov_is(req.target, "http://twitter.com/home?x=1"));
    assert_true(parse("GET HTTP://user:pw@twitter.com:8080 HTTP/1.1\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "twitter.com"));
    assert_int_equal(req.port, 8080);
    assert_true(parse("GET http://[::1]:81/ HTTP/1.1\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "::1"));
    /* A Host header wins over the URL. */
    assert_true(parse("GET http://twitter.com/ HTTP/1.1\r\nHost: t.co\r\n\r\n", &req) > 0);
    assert_true(iov_is(req.host, "t.co"));
    assert_true(req.is_proxy_form);
    /* Origin-form and asterisk-form targets are not proxy requests. */
    assert_true(parse("OPTIONS * HTTP/1.1\r\nHost: a.example\r\n\r\n", &req) > 0);
    assert_false(req.is_proxy_form);
    assert_true(parse("GET /http://x.example/ HTTP/1.1\r\n\r\n", &req) > 0);
    assert_false(req.is_proxy_form);
    assert_null(req.host.p);
    assert_int_equal(parse("GET http:/// HTTP/1.1\r\n\r\n", &req), SD_EPROTO);
}

static void test_not_http(void **state)
{
    (void)state;
    struct sd_http_req req;
    static const char *const bad[] = {
        "get / HTTP/1.1\r\n\r\n",                     /* methods are case-sensitive */
        "BREW / HTTP/1.1\r\n\r\n",                    /* unknown method */
        "GET  / HTTP/1.1\r\n\r\n",                    /* empty target */
        "GET / HTTP/2.0\r\n\r\n",                     /* not HTTP/1.x */
        "GET / HTTP/1.2\r\n\r\n",                     /* minor 0 or 1 only */
        "GET / HTTP/1.1 \r\n\r\n",                    /* junk after the version */
        "GET / HTTP/1.1\rX\n\r\n",                    /* bare CR */
        "GET / HTTP/1.1\r\nHost\r\n\r\n",             /* no colon */
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",      /* space in a name */
        "GET / HTTP/1.1\r\n: x\r\n\r\n",              /* empty name */
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",  /* obs-fold */
        "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",          /* CR inside a value */
        "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",         /* control byte in a value */
        "GET / HTTP/1.1\r\n\r\r\n",                   /* bare CR on the empty line */
        "GET /\x7f HTTP/1.1\r\n\r\n",                 /* DEL in the target */
        "\x16\x03\x01\x00\x05GET / HTTP/1.1\r\n\r\n", /* TLS */
    };
    for (size_t i = 0; i < SD_COUNTOF(bad); i++)
        assert_int_equal(parse(bad[i], &req), SD_EPROTO);
}

static void test_header_cap(void **state)
{
    (void)state;
    static char buf[8192];
    struct sd_http_req req;
    size_t o = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 63; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "X-%d: %d\r\n", i, i);
    o += (size_t)snprintf(buf + o, sizeof(buf) - o, "Host: last.example\r\n");
    size_t head = o;
    snprintf(buf + o, sizeof(buf) - o, "\r\n");
    assert_int_equal(parse(buf, &req), (int)head + 2); /* 64 header lines */
    assert_true(iov_is(req.host, "last.example"));
    snprintf(buf + head, sizeof(buf) - head, "X-65: x\r\n\r\n");
    assert_int_equal(parse(buf, &req), SD_EPROTO); /* 65 */
    buf[head] = '\0';
    assert_int_equal(parse(buf, &req), SD_EAGAIN); /* 64 so far, the end may still come */
}

/* Every prefix of a request is SD_EAGAIN, with the name reported once its line is complete. */
static void test_truncation(void **state)
{
    (void)state;
    static const char s[] = "GET / HTTP/1.1\r\nHost: twitter.com:443\r\nAccept: */*\r\n\r\n";
    size_t n = strlen(s), page = (size_t)sysconf(_SC_PAGESIZE);
    size_t host_end = (size_t)(strstr(s, "Accept") - s);
    uint8_t *base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(base != MAP_FAILED);
    assert_int_equal(mprotect(base + page, page, PROT_NONE), 0);
    for (size_t k = 0; k <= n; k++) {
        uint8_t *p = base + page - k;
        memcpy(p, s, k);
        struct sd_http_req req;
        int rc = sd_http_parse_request(p, p + k, &req);
        assert_int_equal(rc, k == n ? (int)n : SD_EAGAIN);
        if (k >= host_end) {
            assert_true(iov_is(req.host, "twitter.com"));
            assert_int_equal(req.port, 443);
        } else {
            assert_null(req.host.p);
        }
        bool looks = k >= 4;
        assert_int_equal(sd_http_looks_like_request(p, p + k), looks);
    }
    static const char c[] = "CONNECT twitter.com:443 HTTP/1.1\r\n\r\n";
    n = strlen(c);
    for (size_t k = 0; k <= n; k++) {
        uint8_t *p = base + page - k;
        memcpy(p, c, k);
        struct sd_http_req req;
        assert_int_equal(sd_http_parse_request(p, p + k, &req), k == n ? (int)n : SD_EAGAIN);
    }
    munmap(base, 2 * page);
}

static void test_looks_like(void **state)
{
    (void)state;
    static const char *const yes[] = {"GET ",      "HEAD /", "POST /x",     "PUT ",  "DELETE ",
                                      "OPTIONS *", "TRACE ", "CONNECT h:1", "PATCH "};
    static const char *const no[] = {"GET", "GETX /", "get /", "CONNEC ", "", " GET /", "\x16\x03\x01"};
    for (size_t i = 0; i < SD_COUNTOF(yes); i++)
        assert_true(sd_http_looks_like_request((const uint8_t *)yes[i], (const uint8_t *)yes[i] + strlen(yes[i])));
    for (size_t i = 0; i < SD_COUNTOF(no); i++)
        assert_false(sd_http_looks_like_request((const uint8_t *)no[i], (const uint8_t *)no[i] + strlen(no[i])));
}

/* ---- SOCKS ---- */

static void test_socks4(void **state)
{
    (void)state;
    struct sd_iov host;
    static const uint8_t v4[] = {4, 1, 0, 80, 192, 0, 2, 1, 'u', 's', 'e', 'r', 0};
    assert_int_equal(socks(v4, sizeof(v4), &host), SD_SOCKS4);
    assert_null(host.p);
    static const uint8_t anon[] = {4, 2, 0, 80, 192, 0, 2, 1, 0}; /* BIND, empty user id */
    assert_int_equal(socks(anon, sizeof(anon), &host), SD_SOCKS4);
    static const uint8_t v4a[] = {4, 1, 1, 187, 0, 0, 0, 1, 'u', 0, 't', 'w', 'i', 't', 't', 'e', 'r', '.', 'c', 'o', 'm', 0};
    assert_int_equal(socks(v4a, sizeof(v4a), &host), SD_SOCKS4);
    assert_true(iov_is(host, "twitter.com"));
    /* Wrong command, missing NULs, extra bytes, an empty 4a domain. */
    static const uint8_t cd3[] = {4, 3, 0, 80, 192, 0, 2, 1, 0};
    assert_int_equal(socks(cd3, sizeof(cd3), &host), SD_SOCKS_NONE);
    assert_int_equal(socks(v4, sizeof(v4) - 1, &host), SD_SOCKS_NONE);
    assert_int_equal(socks(v4a, sizeof(v4a) - 1, &host), SD_SOCKS_NONE);
    assert_null(host.p);
    static const uint8_t extra[] = {4, 1, 0, 80, 192, 0, 2, 1, 0, 'x'};
    assert_int_equal(socks(extra, sizeof(extra), &host), SD_SOCKS_NONE);
    static const uint8_t empty4a[] = {4, 1, 0, 80, 0, 0, 0, 9, 0, 0};
    assert_int_equal(socks(empty4a, sizeof(empty4a), &host), SD_SOCKS_NONE);
    /* 0.0.0.0 is plain SOCKS4, not 4a. */
    static const uint8_t zero[] = {4, 1, 0, 80, 0, 0, 0, 0, 0};
    assert_int_equal(socks(zero, sizeof(zero), &host), SD_SOCKS4);
    assert_null(host.p);
}

static void test_socks5(void **state)
{
    (void)state;
    struct sd_iov host;
    static const uint8_t greet1[] = {5, 1, 0}, greet2[] = {5, 2, 0, 2};
    assert_int_equal(socks(greet1, sizeof(greet1), &host), SD_SOCKS5);
    assert_null(host.p);
    assert_int_equal(socks(greet2, sizeof(greet2), &host), SD_SOCKS5);
    assert_int_equal(socks(greet2, 3, &host), SD_SOCKS_NONE); /* a method short */
    static const uint8_t nomethods[] = {5, 0};
    assert_int_equal(socks(nomethods, sizeof(nomethods), &host), SD_SOCKS_NONE);
    static const uint8_t req[] = {5, 1, 0, 3, 11, 't', 'w', 'i', 't', 't', 'e', 'r', '.', 'c', 'o', 'm', 1, 187};
    assert_int_equal(socks(req, sizeof(req), &host), SD_SOCKS5);
    assert_true(iov_is(host, "twitter.com"));
    assert_int_equal(socks(req, sizeof(req) - 1, &host), SD_SOCKS_NONE);
    assert_null(host.p);
    static const uint8_t ipv4[] = {5, 1, 0, 1, 192, 0, 2, 1, 1, 187};
    assert_int_equal(socks(ipv4, sizeof(ipv4), &host), SD_SOCKS_NONE);
    static const uint8_t badcmd[] = {5, 9, 0, 3, 1, 'a', 0, 80};
    assert_int_equal(socks(badcmd, sizeof(badcmd), &host), SD_SOCKS_NONE);
    static const uint8_t rsv[] = {5, 1, 1, 3, 1, 'a', 0, 80};
    assert_int_equal(socks(rsv, sizeof(rsv), &host), SD_SOCKS_NONE);
    static const char get[] = "GET / HTTP/1.1\r\n\r\n";
    assert_int_equal(socks((const uint8_t *)get, strlen(get), &host), SD_SOCKS_NONE);
    assert_int_equal(socks(greet1, 0, &host), SD_SOCKS_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_with_host), cmocka_unit_test(test_host_forms), cmocka_unit_test(test_connect),
        cmocka_unit_test(test_absolute_form), cmocka_unit_test(test_not_http),   cmocka_unit_test(test_header_cap),
        cmocka_unit_test(test_truncation),    cmocka_unit_test(test_looks_like), cmocka_unit_test(test_socks4),
        cmocka_unit_test(test_socks5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
