/*
 * test_serve.c - the request line of `slowdown serve` (serve_req.c): every
 * route, parameters, the HTTP form and its header, the three outcomes
 * (consumed / incomplete / not a request), and every prefix of every case
 * placed flush against a PROT_NONE page so that an overread crashes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "serve.h"

static int parse(const char *s, struct sd_serve_req *r)
{
    return sd_serve_parse_req((const uint8_t *)s, (const uint8_t *)s + strlen(s), r);
}

static void test_routes(void **state)
{
    struct sd_serve_req r;
    (void)state;

    assert_int_equal(parse("GET /down\n", &r), 10);
    assert_int_equal(r.mode, SD_SERVE_SEND);
    assert_false(r.http);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(r.seconds, 0);
    assert_int_equal(parse("GET /\r\n", &r), 7);
    assert_int_equal(r.mode, SD_SERVE_SEND);
    assert_int_equal(parse("PUT /up\n", &r), 8);
    assert_int_equal(r.mode, SD_SERVE_SINK);
    assert_int_equal(parse("POST /up\n", &r), 9);
    assert_int_equal(r.mode, SD_SERVE_SINK);
    assert_int_equal(parse("POST /echo\n", &r), 11);
    assert_int_equal(r.mode, SD_SERVE_ECHO);
    assert_int_equal(parse("GET /echo\n", &r), 10);
    assert_int_equal(r.mode, SD_SERVE_ECHO);
    /* Wrong method for the path, unknown path, missing path. */
    assert_int_equal(parse("GET /up\n", &r), SD_EPROTO);
    assert_int_equal(parse("PUT /down\n", &r), SD_EPROTO);
    assert_int_equal(parse("GET /favicon.ico\n", &r), SD_EPROTO);
    assert_int_equal(parse("GET \n", &r), SD_EPROTO);
    assert_string_equal(sd_serve_mode_name(SD_SERVE_SINK), "sink");
    assert_string_equal(sd_serve_mode_name(9), "unknown");
}

static void test_params(void **state)
{
    struct sd_serve_req r;
    (void)state;

    assert_int_equal(parse("GET /down?bytes=1048576&seconds=5\n", &r), 34);
    assert_int_equal(r.bytes, 1048576);
    assert_int_equal(r.seconds, 5);
    assert_int_equal(parse("GET /down?seconds=7&x=y&bytes=12\n", &r), 33);
    assert_int_equal(r.bytes, 12);
    assert_int_equal(r.seconds, 7);
    assert_int_equal(parse("GET /down?junk&bytes=3\n", &r), 23);
    assert_int_equal(r.bytes, 3);
    assert_int_equal(parse("GET /down?bytes=4611686018427387903\n", &r), 36); /* 2^62 - 1 */
    assert_int_equal(r.bytes, 4611686018427387903ull);
    assert_int_equal(parse("GET /down?bytes=9223372036854775808\n", &r), SD_EPROTO); /* 2^63: too big */
    assert_int_equal(parse("GET /down?seconds=4294967295\n", &r), 29);
    assert_int_equal(r.seconds, 4294967295u);
    assert_int_equal(parse("GET /down?seconds=4294967296\n", &r), SD_EPROTO);
    assert_int_equal(parse("GET /down?bytes=\n", &r), SD_EPROTO);
    assert_int_equal(parse("GET /down?bytes=-1\n", &r), SD_EPROTO);
    assert_int_equal(parse("GET /down?bytes=1x\n", &r), SD_EPROTO);
}

static void test_http(void **state)
{
    struct sd_serve_req r;
    (void)state;
    static const char get[] = "GET /down?bytes=100 HTTP/1.1\r\nHost: twitter.com\r\nUser-Agent: t\r\n\r\nEXTRA";

    assert_int_equal(parse(get, &r), (int)strlen(get) - 5);
    assert_true(r.http);
    assert_int_equal(r.bytes, 100);
    static const char put[] = "PUT /up HTTP/1.0\r\ncontent-LENGTH:  12345 \r\n\r\n";
    assert_int_equal(parse(put, &r), (int)strlen(put));
    assert_int_equal(r.mode, SD_SERVE_SINK);
    assert_int_equal(r.bytes, 12345);
    /* bytes= wins over Content-Length; a bad Content-Length is not a request. */
    assert_int_equal(parse("PUT /up?bytes=9 HTTP/1.1\nContent-Length: 5\n\n", &r), 44);
    assert_int_equal(r.bytes, 9);
    assert_int_equal(parse("PUT /up HTTP/1.1\nContent-Length: five\n\n", &r), SD_EPROTO);
    /* Header not finished yet; unknown version. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\n", &r), SD_EAGAIN);
    assert_int_equal(parse("GET / HTTP/2.0\r\n\r\n", &r), SD_EPROTO);
    assert_int_equal(parse("GET / FOO\n", &r), SD_EPROTO);
}

static void test_outcomes(void **state)
{
    struct sd_serve_req r;
    uint8_t hello[5] = {0x16, 0x03, 0x01, 0x02, 0x00}, inverted[5];
    (void)state;

    /* A request that may still come. */
    assert_int_equal(sd_serve_parse_req(NULL, NULL, &r), SD_EAGAIN);
    assert_int_equal(parse("G", &r), SD_EAGAIN);
    assert_int_equal(parse("POS", &r), SD_EAGAIN);
    assert_int_equal(parse("GET /down?bytes=1", &r), SD_EAGAIN);
    /* Decided on the first byte that cannot start a method. */
    assert_int_equal(sd_serve_parse_req(hello, hello + 1, &r), SD_EPROTO);
    for (int i = 0; i < 5; i++)
        inverted[i] = (uint8_t)~hello[i];
    assert_int_equal(sd_serve_parse_req(inverted, inverted + 5, &r), SD_EPROTO);
    assert_int_equal(parse("GEX", &r), SD_EPROTO);
    assert_int_equal(parse("get /down\n", &r), SD_EPROTO);
    /* A line longer than 512 bytes without LF is not a request. */
    char longline[600];
    memset(longline, 'a', sizeof(longline));
    memcpy(longline, "GET /down?", 10);
    longline[sizeof(longline) - 1] = '\0';
    assert_int_equal(parse(longline, &r), SD_EPROTO);
    longline[400] = '\0';
    assert_int_equal(parse(longline, &r), SD_EAGAIN);
}

/* Every prefix of every case ends exactly at a PROT_NONE page. */
static void test_guard_page(void **state)
{
    static const char *const cases[] = {
        "GET /down?bytes=1048576&seconds=5\n",
        "PUT /up HTTP/1.1\r\nContent-Length: 5\r\nHost: a\r\n\r\nhello",
        "POST /echo?seconds=1 HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 12\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01",
    };
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    (void)state;

    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t n = strlen(cases[c]);
        for (size_t k = 0; k <= n; k++) {
            uint8_t *p = map + page - k;
            struct sd_serve_req r;
            memcpy(p, cases[c], k);
            int rc = sd_serve_parse_req(p, p + k, &r);
            assert_true(rc == SD_EAGAIN || rc == SD_EPROTO || (rc > 0 && (size_t)rc <= k));
        }
    }
    munmap(map, (size_t)page * 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),   cmocka_unit_test(test_params),     cmocka_unit_test(test_http),
        cmocka_unit_test(test_outcomes), cmocka_unit_test(test_guard_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
