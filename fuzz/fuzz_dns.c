/*
 * fuzz_dns.c - the DNS question parser in its UDP and TCP forms on one input.
 * Checks counts against the input, the decoded name's length and
 * termination, and that a prefix answers SD_EAGAIN or what the whole input
 * answers.
 */
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int r, const struct sd_dns_query *q, size_t size)
{
    if (r > 0 && ((size_t)r > size || q->name_len > SD_DNS_NAME_MAX || strlen(q->name) != q->name_len))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sd_dns_query q;
    const uint8_t *end = data + size;
    int r = sd_dns_parse_query(data, end, &q);
    check(r, &q, size);
    int t = sd_dns_parse_query_tcp(data, end, &q);
    check(t, &q, size);
    for (size_t k = size / 2; k < size; k += (size - k + 1) / 2) {
        int rp = sd_dns_parse_query(data, data + k, &q);
        if ((rp != SD_EAGAIN && rp != r) || (r > 0 && (size_t)r <= k && rp != r))
            abort();
        int tp = sd_dns_parse_query_tcp(data, data + k, &q);
        if ((tp != SD_EAGAIN && tp != t) || (t > 0 && (size_t)t <= k && tp != t))
            abort();
    }
    return 0;
}
