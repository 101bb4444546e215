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

/*
 * Added with quic.c: the same packet around caller-made plaintext frames
 * |frames| (|frames_len| bytes: ACKs, several CRYPTO frames, PINGs, ...),
 * followed by PADDING up to |pad_to| bytes of packet and at least as much as
 * the header-protection sample needs. Returns the packet length, or 0.
 */
size_t sd_gen_quic_initial_frames(uint8_t *out, size_t cap, uint32_t version, const uint8_t *dcid, size_t dcid_len,
                                  uint64_t pn, const uint8_t *frames, size_t frames_len, size_t pad_to);

/* Writes a CRYPTO frame (type, offset, length, data) to |out| (capacity
 * |cap|). Returns its length, or 0 when it does not fit. */
size_t sd_gen_quic_crypto_frame(uint8_t *out, size_t cap, uint64_t off, const uint8_t *data, size_t len);

/* Writes |v| (< 2^62) as a QUIC variable-length integer of the shortest
 * form. Returns its length (1, 2, 4 or 8); |out| needs 8 bytes. */
size_t sd_gen_quic_varint(uint8_t *out, uint64_t v);

#endif
