/*
 * fuzz_proxy_req.c - the evasion harness's proxy parsers (evade_proxy.h) on
 * arbitrary first bytes of a connection: the HTTP CONNECT head, the SOCKS5
 * greeting and the SOCKS5 request. Each must consume no more than it was
 * given, return only its documented codes, and parse a complete head the
 * same when more bytes follow it; a parsed host is a NUL-terminated string
 * and a parsed port is never 0. The first input byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evade_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int rc, size_t size, const struct sd_proxy_req *r)
{
    if (rc == 0 || (rc < 0 && rc != SD_EAGAIN && rc != SD_EPROTO) || (rc > 0 && (size_t)rc > size))
        abort();
    if (rc > 0 && r && (r->port == 0 || memchr(r->host, 0, sizeof(r->host)) == NULL))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_proxy_req a, b;
    int rc, again;

    if (size == 0)
        return 0;
    const uint8_t *p = data + 1, *end = data + size;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        rc = sd_proxy_parse_connect(p, end, &a);
        check(rc, n, &a);
        if (rc > 0 && (size_t)rc < n) {
            again = sd_proxy_parse_connect(p, p + rc, &b);
            if (again != rc || strcmp(a.host, b.host) != 0 || a.port != b.port)
                abort();
        }
        break;
    case 1:
        rc = sd_proxy_parse_socks_greeting(p, end);
        check(rc, n, NULL);
        if (rc > 0 && (size_t)rc < n && sd_proxy_parse_socks_greeting(p, p + rc) != rc)
            abort();
        break;
    default:
        rc = sd_proxy_parse_socks_request(p, end, &a);
        check(rc, n, &a);
        if (rc > 0 && (size_t)rc < n) {
            again = sd_proxy_parse_socks_request(p, p + rc, &b);
            if (again != rc || strcmp(a.host, b.host) != 0 || a.port != b.port)
                abort();
        }
        break;
    }
    return 0;
}
