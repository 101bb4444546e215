/*
 * fuzz_http.c - the HTTP request parser, the cheap request test and the SOCKS
 * recogniser on one input. Checks that counts and views stay inside the
 * input, that a prefix answers SD_EAGAIN or what the whole input answers,
 * and that a parsed request also "looks like" one.
 */
#include <stdlib.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void in(struct sd_iov v, const uint8_t *lo, size_t n)
{
    if (v.p && !(v.p >= lo && v.p + v.n <= lo + n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_http_req req;
    const uint8_t *end = data + size;
    int r = sd_http_parse_request(data, end, &req);
    if (r > 0 && ((size_t)r > size || !sd_http_looks_like_request(data, end)))
        abort();
    in(req.method, data, size);
    in(req.target, data, size);
    in(req.host, data, size);
    for (size_t k = size / 2; k < size; k += (size - k + 1) / 2) {
        int rp = sd_http_parse_request(data, data + k, &req);
        if ((rp != SD_EAGAIN && rp != r) || (r > 0 && (size_t)r <= k && rp != r))
            abort();
    }
    struct sd_iov host;
    enum sd_socks_kind s = sd_socks_parse(data, end, &host);
    if (s != SD_SOCKS_NONE && s != SD_SOCKS4 && s != SD_SOCKS5)
        abort();
    in(host, data, size);
    return 0;
}
