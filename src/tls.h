/*
 * tls.h - TLS ClientHello parsing over a cursor.
 *
 * The parser walks the structure (picotls' decode_client_hello shape: each
 * length-prefixed block narrows `end` and must be consumed exactly), finds the
 * server_name, ALPN, ECH and padding extensions and records the structural
 * facts a TSPU-2021 box checks (spec B3). It never allocates: results are
 * views into the caller's bytes (or into the caller's scratch buffer in
 * stream mode).
 *
 * Two entry points match the two inspection models:
 *  - sd_tls_strict(): one TCP segment, first record only, whole hello in that
 *    record (TSPU 2021: no reassembly).
 *  - sd_tls_stream(): a reassembled TCP byte stream, handshake bytes gathered
 *    across any number of records (later TSPU, and the `observe` preset).
 */
#ifndef SD_TLS_H
#define SD_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum {
    SD_TLS_CT_CCS = 20,
    SD_TLS_CT_ALERT = 21,
    SD_TLS_CT_HANDSHAKE = 22,
    SD_TLS_CT_APPDATA = 23,
    SD_TLS_HS_CLIENT_HELLO = 1,
    SD_TLS_ALPN_MAX = 8,
};

/* Structural facts, as bits of sd_tls_hello.facts. */
enum sd_tls_fact {
    SD_TLS_RECORD_IN_SEGMENT = 1 << 0, /* the first record lies wholly inside the segment */
    SD_TLS_HS_IN_RECORD = 1 << 1,      /* record length >= handshake length + 4 */
    SD_TLS_FIRST_RECORD = 1 << 2,      /* the hello is in the first record of the segment/stream */
    SD_TLS_MULTI_RECORD = 1 << 3,      /* stream mode: the hello spanned more than one record */
};

struct sd_tls_hello {
    struct sd_iov sni;                 /* first host_name of server_name; p NULL when absent */
    struct sd_iov alpn[SD_TLS_ALPN_MAX];
    uint8_t n_alpn;                    /* protocols kept (at most SD_TLS_ALPN_MAX) */
    bool has_sni;                      /* a server_name extension was present (possibly empty) */
    bool has_ech;                      /* encrypted_client_hello (0xfe0d) present */
    bool has_padding;                  /* padding extension (21) present */
    uint16_t padding_len;
    uint16_t legacy_version;           /* client_version field of the hello */
    uint16_t record_version;           /* version field of the first record header */
    uint16_t record_len;               /* length of the first record */
    uint32_t hs_len;                   /* handshake body length (bytes 6-8 of the first record) */
    uint16_t n_ext;                    /* number of extensions */
    uint8_t records;                   /* records the hello spanned (1 in strict mode) */
    uint32_t facts;                    /* SD_TLS_* facts */
};

/*
 * Strict (TSPU-2021) inspection of one segment's payload |p|..|end|.
 *
 * Succeeds only if the first record is a handshake record (type 22) that lies
 * wholly inside the segment, carries a ClientHello (type 1) whose handshake
 * length + 4 fits in the record, and whose structure walks cleanly. Extra bytes
 * after the record are allowed (and ignored).
 *
 * Returns the bytes consumed (the first record, > 0) on success, filling |h|;
 * SD_ENOENT when the segment starts with a well-formed TLS record header
 * (known content type 20-23, version 0x03xx, length <= 2^14 + 2048) that is not
 * a ClientHello, or a ClientHello record cut short by the segment end (B6: such
 * packets keep the box looking); SD_EPROTO otherwise (not TLS or malformed).
 * |h| is zeroed on entry; on SD_ENOENT it still holds record_version,
 * record_len and hs_len when present.
 */
int sd_tls_strict(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h);

/*
 * Stream inspection: |p|..|end| is a TCP byte stream starting at its first
 * byte. Handshake bytes are gathered from consecutive handshake records into
 * |scratch| (|scratch_cap| bytes) until the whole ClientHello is there.
 *
 * Returns the stream bytes consumed through the record that completed the
 * hello (> 0), filling |h| with views into |scratch| (or into |p| when the
 * hello sat in one record); SD_EAGAIN when more stream bytes are needed;
 * SD_ENOENT when the stream is TLS but its first handshake message is not a
 * ClientHello (or a non-handshake record precedes it); SD_ERANGE when the hello
 * is larger than |scratch_cap|; SD_EPROTO when it is not TLS or is malformed.
 */
int sd_tls_stream(const uint8_t *p, const uint8_t *end, uint8_t *scratch, size_t scratch_cap, struct sd_tls_hello *h);

/*
 * Parses a bare ClientHello handshake message (4-byte header: type 1, 24-bit
 * length, then the body), as carried in QUIC CRYPTO frames. Returns bytes
 * consumed, SD_EAGAIN when |p|..|end| holds only part of it, SD_EPROTO when
 * malformed or not a ClientHello.
 */
int sd_tls_client_hello(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h);

/* True when |p|..|end| begins like a TLS record header (content type 20-23,
 * major version 3, length <= 18432). At least 5 bytes are needed. */
bool sd_tls_looks_like_record(const uint8_t *p, const uint8_t *end);

#endif
