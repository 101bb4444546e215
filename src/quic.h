/*
 * quic.h - QUIC long headers, Initial packet protection and the CRYPTO
 * stream of a client's first flight (RFC 9000, 9001, 9369; drafts 27-34).
 *
 * A censor sees only what an on-path observer can compute: the Initial keys
 * derive from the Destination Connection ID in clear, so the client's
 * Initials can be decrypted, their CRYPTO frames gathered (in and out of
 * order, across packets and datagrams) and the ClientHello parsed with tls.h.
 *
 * Cryptography is OpenSSL's libcrypto (HKDF over HMAC-SHA256, AES-128-GCM,
 * AES-128-ECB for header protection). All OpenSSL contexts live in one
 * struct sd_quic_ctx made at start-up and reused, so decrypting a packet
 * allocates nothing. A context is not thread-safe: use one per worker.
 */
#ifndef SD_QUIC_H
#define SD_QUIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reasm.h"
#include "sd.h"

enum {
    SD_QUIC_V1 = 0x00000001,
    SD_QUIC_V2 = 0x6b3343cf,
    SD_QUIC_CID_MAX = 20,
};

/* Long-header packet types, in QUIC v1 numbering (v2's are mapped to these). */
enum sd_quic_type { SD_QUIC_INITIAL = 0, SD_QUIC_0RTT = 1, SD_QUIC_HANDSHAKE = 2, SD_QUIC_RETRY = 3 };

struct sd_quic_hdr {
    bool long_header;
    uint8_t type;             /* enum sd_quic_type, long headers only */
    uint32_t version;         /* 0 for version negotiation */
    struct sd_iov dcid, scid; /* views into the packet */
    struct sd_iov token;      /* Initial only */
    size_t pn_off;            /* offset of the (protected) packet number */
    size_t len;               /* bytes of this packet in the datagram (header + Length field's bytes) */
};

/* True for the versions whose Initial protection this module knows:
 * v1, v2 and the IETF drafts 27 to 34 (0xff00001b .. 0xff000022). */
bool sd_quic_version_known(uint32_t version);

/*
 * Parses the long header at the start of |p|..|end| (one packet of a
 * possibly coalesced datagram). Does not remove protection. Returns the
 * packet's length in the datagram (> 0); SD_ENOTSUP for a short header or an
 * unknown version (the fields parsed so far are filled); SD_EPROTO when
 * malformed or cut short.
 */
int sd_quic_parse_long(const uint8_t *p, const uint8_t *end, struct sd_quic_hdr *h);

struct sd_quic_ctx;

/* Makes the context (OpenSSL contexts, scratch). NULL on failure. */
struct sd_quic_ctx *sd_quic_ctx_new(void);
/* Frees it; accepts NULL. */
void sd_quic_ctx_free(struct sd_quic_ctx *ctx);

/* What sd_quic_client_initials() saw. */
struct sd_quic_info {
    uint32_t version;       /* of the first Initial */
    uint8_t dcid[SD_QUIC_CID_MAX];
    uint8_t dcid_len;
    uint16_t initials;      /* Initial packets decrypted from this datagram */
    uint16_t crypto_frames; /* CRYPTO frames added */
};

/*
 * Decrypts every client Initial in the UDP payload |p|..|end| (coalesced
 * packets of other types are skipped) with the client Initial keys of its
 * Destination Connection ID, and adds the data of each CRYPTO frame to
 * |crypto| at its offset. PADDING, PING and ACK frames are skipped; other frame
 * types end the walk of that packet.
 *
 * Returns the number of Initials decrypted (> 0); SD_ENOENT when the datagram
 * holds no Initial of a known version; SD_ECRYPTO when an Initial failed
 * authentication; SD_EPROTO when malformed. Allocates nothing.
 */
int sd_quic_client_initials(struct sd_quic_ctx *ctx, const uint8_t *p, const uint8_t *end, struct sd_reasm *crypto,
                            struct sd_quic_info *info);

/*
 * Lower-level access, used by tests and by the test generator:
 * the client (|server| false) or server Initial secrets of |version| for a
 * DCID: key (16), iv (12) and header-protection key (16).
 */
struct sd_quic_keys {
    uint8_t key[16];
    uint8_t iv[12];
    uint8_t hp[16];
};
int sd_quic_initial_keys(struct sd_quic_ctx *ctx, uint32_t version, const uint8_t *dcid, size_t dcid_len, bool server,
                         struct sd_quic_keys *k);

/*
 * Removes header and packet protection of the long-header packet |pkt|
 * (|h| from sd_quic_parse_long) with |k|. Writes the unprotected header and
 * plaintext payload into |out| (capacity |cap|): *payload_off is where the
 * plaintext starts, *payload_len its length, *pn the full packet number.
 * Returns 0, SD_ECRYPTO on authentication failure, SD_ERANGE when |cap| is
 * too small, SD_EPROTO when malformed.
 */
int sd_quic_unprotect(struct sd_quic_ctx *ctx, const uint8_t *pkt, const struct sd_quic_hdr *h, const struct sd_quic_keys *k,
                      uint8_t *out, size_t cap, size_t *payload_off, size_t *payload_len, uint64_t *pn);

#endif
