/*
 * bytes.h - big-endian readers and writers over a cursor.
 *
 * Readers follow ngtcp2_conv.h: `p = sd_get16be(&v, p)` stores the value and
 * returns the advanced pointer. They never check bounds: the caller checks the
 * minimum length once (`if (end - p < 4) return SD_EAGAIN;`), then reads.
 * Never cast a byte pointer to a wider integer type (alignment, endianness).
 */
#ifndef SD_BYTES_H
#define SD_BYTES_H

#include <stdint.h>

static inline const uint8_t *sd_get8(uint8_t *v, const uint8_t *p)
{
    *v = p[0];
    return p + 1;
}

static inline const uint8_t *sd_get16be(uint16_t *v, const uint8_t *p)
{
    *v = (uint16_t)((uint16_t)p[0] << 8 | p[1]);
    return p + 2;
}

static inline const uint8_t *sd_get24be(uint32_t *v, const uint8_t *p)
{
    *v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return p + 3;
}

static inline const uint8_t *sd_get32be(uint32_t *v, const uint8_t *p)
{
    *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return p + 4;
}

static inline const uint8_t *sd_get64be(uint64_t *v, const uint8_t *p)
{
    uint32_t hi, lo;
    p = sd_get32be(&hi, p);
    p = sd_get32be(&lo, p);
    *v = (uint64_t)hi << 32 | lo;
    return p;
}

/* Value-returning forms, for expressions where no cursor is kept. */
static inline uint16_t sd_rd16be(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t sd_rd24be(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static inline uint32_t sd_rd32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sd_rd64be(const uint8_t *p)
{
    return (uint64_t)sd_rd32be(p) << 32 | sd_rd32be(p + 4);
}

static inline uint8_t *sd_put8(uint8_t *p, uint8_t v)
{
    p[0] = v;
    return p + 1;
}

static inline uint8_t *sd_put16be(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static inline uint8_t *sd_put24be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
    return p + 3;
}

static inline uint8_t *sd_put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

#endif
