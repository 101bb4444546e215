/*
 * siphash.c - one-shot SipHash over a byte string, built from the streaming
 * core in siphash.h: full 8-byte blocks are read little-endian without casts,
 * the tail and the length form the final word.
 */
#include "siphash.h"

static uint64_t siphash_cd(const uint8_t key[static SD_SIPHASH_KEY_LEN], const void *data, size_t n, int c, int d)
{
    const uint8_t *p = data;
    struct sd_sipstate s;
    sd_sip_init(&s, key);
    if (n == 0) /* data may be NULL: no pointer arithmetic on it */
        return sd_sip_final(&s, 0, c, d);
    size_t full = n & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8)
        sd_sip_block(&s, sd_sip_rd64le(p + i), c);
    return sd_sip_final(&s, sd_sip_lastword(p + full, n - full, n), c, d);
}

uint64_t sd_siphash(const uint8_t key[static SD_SIPHASH_KEY_LEN], const void *data, size_t n)
{
    return siphash_cd(key, data, n, 1, 3);
}

uint64_t sd_siphash24(const uint8_t key[static SD_SIPHASH_KEY_LEN], const void *data, size_t n)
{
    return siphash_cd(key, data, n, 2, 4);
}
