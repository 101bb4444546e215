/*
 * gen_quic.h - builds protected client Initial packets for tests: the
 * inverse of quic.c, using the same libcrypto primitives.
 */
#ifndef SD_GEN_QUIC_H
#define SD_GEN_QUIC_H

#include <stddef.h>
#include <stdint.h>

/*
 * Builds one protected client Initial of |version| with destination CID
 * |dcid| (|dcid_len| bytes), an 8-byte source CID, packet number |pn| and one
 * CRYPTO frame carrying |crypto_len| bytes at stream offset |crypto_off|,
 * padded with PADDING frames so the packet is at least |pad_to| bytes.
 * Returns the packet length, or 0 when it does not fit in |cap|.
 */
size_t sd_gen_quic_initial(uint8_t *out, size_t cap, uint32_t version, const uint8_t *dcid, size_t dcid_len, uint64_t pn,
                           const uint8_t *crypto, size_t crypto_len, uint64_t crypto_off, size_t pad_to);

#endif
