/*
 * siphash.h - SipHash, the keyed hash for every table an outsider can fill
 * (flow tables, rule tables). With a secret random key, nobody who chooses the
 * keys (addresses, server names) can aim them at one bucket.
 *
 * sd_siphash() is SipHash-1-3 (one compression round per 8-byte block, three
 * finalisation rounds), the variant Rust and CPython use for hash tables;
 * sd_siphash24() is the original SipHash-2-4 of Aumasson and Bernstein, whose
 * published vectors the tests check (both share every line of code but the
 * round counts).
 *
 * The streaming pieces below are for callers that hash many related strings
 * in one pass (the name matcher hashes every label suffix of a name while
 * reading it once). A message is: init, one block() per full 8-byte
 * little-endian word, then final() with the last 0..7 bytes packed into the
 * low bytes of a word (sd_sip_lastword()) and the total length.
 */
#ifndef SD_SIPHASH_H
#define SD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

enum { SD_SIPHASH_KEY_LEN = 16 };

/* SipHash-1-3 of |n| bytes at |data| (may be NULL when n == 0) under |key|. */
uint64_t sd_siphash(const uint8_t key[static SD_SIPHASH_KEY_LEN], const void *data, size_t n);

/* SipHash-2-4 of |n| bytes at |data| under |key| (reference vectors). */
uint64_t sd_siphash24(const uint8_t key[static SD_SIPHASH_KEY_LEN], const void *data, size_t n);

/* ---- streaming core ---- */

struct sd_sipstate {
    uint64_t v0, v1, v2, v3;
};

/* Reads 8 bytes as a little-endian word, byte by byte (compilers emit one load). */
static inline uint64_t sd_sip_rd64le(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint64_t sd_sip_rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

static inline void sd_sip_round(struct sd_sipstate *s)
{
    s->v0 += s->v1;
    s->v1 = sd_sip_rotl(s->v1, 13);
    s->v1 ^= s->v0;
    s->v0 = sd_sip_rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = sd_sip_rotl(s->v3, 16);
    s->v3 ^= s->v2;
    s->v0 += s->v3;
    s->v3 = sd_sip_rotl(s->v3, 21);
    s->v3 ^= s->v0;
    s->v2 += s->v1;
    s->v1 = sd_sip_rotl(s->v1, 17);
    s->v1 ^= s->v2;
    s->v2 = sd_sip_rotl(s->v2, 32);
}

/* Starts a message under |key| (16 bytes, read little-endian as k0, k1). */
static inline void sd_sip_init(struct sd_sipstate *s, const uint8_t key[static SD_SIPHASH_KEY_LEN])
{
    uint64_t k0 = sd_sip_rd64le(key), k1 = sd_sip_rd64le(key + 8);
    s->v0 = k0 ^ 0x736f6d6570736575ULL;
    s->v1 = k1 ^ 0x646f72616e646f6dULL;
    s->v2 = k0 ^ 0x6c7967656e657261ULL;
    s->v3 = k1 ^ 0x7465646279746573ULL;
}

/* Absorbs one 8-byte word |m| with |c| compression rounds. */
static inline void sd_sip_block(struct sd_sipstate *s, uint64_t m, int c)
{
    s->v3 ^= m;
    for (int i = 0; i < c; i++)
        sd_sip_round(s);
    s->v0 ^= m;
}

/* Packs the last |n| (< 8) bytes at |p| and the total length |len| into the final word. */
static inline uint64_t sd_sip_lastword(const uint8_t *p, size_t n, size_t len)
{
    uint64_t w = (uint64_t)len << 56;
    for (size_t i = 0; i < n; i++)
        w |= (uint64_t)p[i] << (8 * i);
    return w;
}

/* Absorbs the final word |last| (see sd_sip_lastword) and returns the hash;
 * |s| is consumed, so callers finalise a copy to keep going. */
static inline uint64_t sd_sip_final(struct sd_sipstate *s, uint64_t last, int c, int d)
{
    sd_sip_block(s, last, c);
    s->v2 ^= 0xff;
    for (int i = 0; i < d; i++)
        sd_sip_round(s);
    return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

#endif
