/*
 * strat.h - the byte and packet rewrites behind the evasion strategies
 * (evade.h), as pure functions over caller buffers: what goes on the wire
 * is decided here, and tested on real bytes (tests/test_evade.c); the
 * strat_*.c files only move it to sockets.
 */
#ifndef SD_STRAT_H
#define SD_STRAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkt.h"
#include "sd.h"

/* ---- TLS first flight (strat_tls.c) ---- */

/*
 * Record split: rewrites the single handshake record |in| (|n| bytes:
 * header and body) as two records, the first carrying handshake bytes
 * [0, |at| - 5) and the second the rest, into |out|. |at| is a position in
 * |in| (5 < at < n). The handshake message is unchanged, so the TLS
 * transcript is too. Returns n + 5, SD_ERANGE when |out| is too small,
 * SD_EINVAL for a bad position or a flight that is not one record.
 */
int sd_strat_tlsrec(const uint8_t *in, size_t n, size_t at, uint8_t *out, size_t cap);

/*
 * Writes a ChangeCipherSpec record (14 03 03 00 01 01) followed by |in| into
 * |out|. Returns n + 6 or SD_ERANGE.
 */
int sd_strat_ccs(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/*
 * Spells |name| for SNI mode |mode| (enum sd_evade_sni) into |out|: with a
 * trailing dot, in upper case, in alternating case, or |other| for
 * SD_EVADE_SNI_OTHER. Returns the length, 0 for SD_EVADE_SNI_NONE, or
 * SD_ERANGE.
 */
int sd_strat_sni(int mode, const char *name, const char *other, char *out, size_t cap);

/* The extension type that carries padding (see strat_tls.c for why not 21). */
enum { SD_STRAT_PAD_EXT = 0x3a3a };

/* ---- QUIC (strat_quic.c) ---- */

/*
 * Builds a protected client Initial of |version| (QUIC v1 or an IETF draft:
 * the v1 packet layout) with destination CID |dcid| (|dcid_len| bytes), an
 * 8-byte source CID, packet number 0 and one CRYPTO frame carrying the
 * ClientHello handshake message |ch| (|ch_len| bytes, no record header),
 * padded to |pad_to| bytes. Returns the datagram length, SD_ERANGE (|cap|),
 * SD_EINVAL, SD_ENOTSUP (a version quic.h has no keys for), SD_ECRYPTO.
 */
int sd_strat_quic_initial(uint8_t *out, size_t cap, uint32_t version, const uint8_t *dcid, size_t dcid_len,
                          const uint8_t *ch, size_t ch_len, size_t pad_to);

/* ---- forged packets (strat_forge.c) ---- */

/* How a forged copy differs from the packet it is made from. */
struct sd_strat_tweak {
    uint8_t ttl;        /* 0: keep */
    bool badsum;        /* a wrong TCP checksum (off by one bit pattern) */
    uint8_t flags;      /* 0: keep the TCP flags; else these */
    uint16_t ip_id;     /* 0: keep */
};

/*
 * Builds, from the decoded IPv4 TCP packet |pkt|, a segment with the same
 * addresses, ports, options and ack, sequence number pkt->seq + |seq_off|,
 * and payload |payload| (|n| bytes, may be 0), changed as |tw| says. IP and
 * TCP checksums are valid unless tw->badsum. Returns the length written, or
 * SD_ERANGE (|cap| too small or a payload over 64 KiB), SD_ENOTSUP (IPv6,
 * IPv4 options, not TCP).
 */
int sd_strat_segment(uint8_t *out, size_t cap, const struct sd_pkt *pkt, uint32_t seq_off, const uint8_t *payload,
                     size_t n, const struct sd_strat_tweak *tw);

/*
 * Builds one IPv4 fragment of the TCP or UDP packet |pkt|: transport bytes
 * [|from|, |to|) of it (header included, so the first fragment starts at 0),
 * with its transport checksum made right whatever the field said, with
 * identification |ip_id|, DF cleared, MF set unless |to| is the end. |from|
 * must be a multiple of 8. Returns the length, SD_EINVAL (bad range),
 * SD_ERANGE or SD_ENOTSUP (as sd_strat_segment).
 */
int sd_strat_fragment(uint8_t *out, size_t cap, const struct sd_pkt *pkt, size_t from, size_t to, uint16_t ip_id);

/*
 * Fills |out| with |n| bytes of junk from |seed| (xorshift, reproducible)
 * that no protocol parser of the censor recognises: the first byte is 0,
 * which starts no TLS record, HTTP method or SOCKS greeting.
 */
void sd_strat_junk(uint8_t *out, size_t n, uint64_t seed);

#endif
