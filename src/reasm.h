/*
 * reasm.h - reassembly of a byte stream from pieces at offsets, into a
 * fixed buffer the caller owns, with a byte cap.
 *
 * One reassembler serves TCP streams (offset = seq - isn) and QUIC CRYPTO
 * streams (offset from the frame). Pieces may arrive in any order, overlap and
 * repeat. Overlapping bytes keep what arrived first (the common IDS policy and
 * the one evasion tests assume; see the comment in reasm.c). Nothing is
 * allocated: the buffer comes from the caller, holes are tracked in a small
 * fixed range list, and bytes beyond the cap are dropped.
 */
#ifndef SD_REASM_H
#define SD_REASM_H

#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum { SD_REASM_RANGES = 6 };

struct sd_reasm {
    uint8_t *data;      /* caller's buffer, cap bytes */
    uint32_t cap;
    uint32_t contig;    /* bytes available without holes from offset 0 */
    uint32_t high;      /* highest end offset stored */
    uint8_t n;          /* out-of-order ranges beyond contig */
    uint8_t clipped;    /* set when bytes past cap were dropped */
    struct {
        uint32_t start, end;
    } r[SD_REASM_RANGES];
};

/* Starts an empty stream over |buf| of |cap| bytes. */
void sd_reasm_init(struct sd_reasm *r, uint8_t *buf, uint32_t cap);

/*
 * Adds |n| bytes at stream offset |off|. Bytes beyond the cap are dropped
 * (and `clipped` is set); bytes already present are kept as they were.
 * Returns the new contiguous length (>= 0), or SD_ENOMEM when the piece would
 * need more than SD_REASM_RANGES holes (the piece is then ignored).
 */
int sd_reasm_add(struct sd_reasm *r, uint64_t off, const uint8_t *p, size_t n);

#endif
