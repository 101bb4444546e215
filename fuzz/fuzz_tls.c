/*
 * fuzz_tls.c - the three ClientHello entry points on one input: strict,
 * stream (with a fixed scratch buffer) and bare handshake message. Beyond
 * memory safety it checks what the engine relies on: byte counts within the
 * input, views inside the input or the scratch, and that a prefix of a stream
 * answers SD_EAGAIN or exactly what the whole stream answers.
 */
#include <stdlib.h>

#include "tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct sd_tls_hello *h, const uint8_t *lo, size_t n, const uint8_t *s, size_t sn)
{
    const struct sd_iov *v[SD_TLS_ALPN_MAX + 1] = {&h->sni};
    for (int i = 0; i < h->n_alpn; i++)
        v[i + 1] = &h->alpn[i];
    for (int i = 0; i <= h->n_alpn; i++) {
        const uint8_t *p = v[i]->p;
        if (p && !((p >= lo && p + v[i]->n <= lo + n) || (s && p >= s && p + v[i]->n <= s + sn)))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t scratch[4096];
    struct sd_tls_hello h;
    const uint8_t *end = data + size;
    int r = sd_tls_strict(data, end, &h);
    if (r > 0 && ((size_t)r > size || h.records != 1))
        abort();
    if (r > 0)
        check(&h, data, size, NULL, 0);
    int s = sd_tls_stream(data, end, scratch, sizeof(scratch), &h);
    if (s > 0)
        check(&h, data, size, scratch, sizeof(scratch));
    for (size_t k = size / 2; k < size; k += (size - k + 1) / 2) {
        int sp = sd_tls_stream(data, data + k, scratch, sizeof(scratch), &h);
        if (sp != SD_EAGAIN && sp != s)
            abort();
        if (s > 0 && (size_t)s <= k && sp != s)
            abort();
    }
    r = sd_tls_client_hello(data, end, &h);
    if (r > 0 && (size_t)r > size)
        abort();
    if (r > 0)
        check(&h, data, size, NULL, 0);
    (void)sd_tls_looks_like_record(data, end);
    return 0;
}
