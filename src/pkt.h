/*
 * pkt.h - zero-copy, bounds-checked packet decoding (link -> IP -> TCP/UDP).
 *
 * sd_pkt_decode() walks one captured frame the way masscan's
 * preprocess_frame() does and fills a flat struct of offsets and fields; it
 * never copies payload and never allocates. Views (saddr, daddr, payload)
 * point into the frame and live exactly as long as the frame does.
 */
#ifndef SD_PKT_H
#define SD_PKT_H

#include <stddef.h>
#include <stdint.h>

#include "sd.h"

/* Link types, as returned by libpcap's pcap_datalink() (DLT_*) and as the
 * pcap file format writes them (LINKTYPE_*). All of the raw-IP values are
 * accepted: 12 and 14 (DLT_RAW on different systems) and 101 (LINKTYPE_RAW). */
enum sd_dlt {
    SD_DLT_NULL = 0,      /* BSD loopback: 4-byte host-order family */
    SD_DLT_EN10MB = 1,    /* Ethernet II, with 802.1Q / QinQ tags */
    SD_DLT_RAW = 12,      /* raw IPv4/IPv6 (Linux value of DLT_RAW) */
    SD_DLT_RAW_BSD = 14,  /* raw IP on some BSDs */
    SD_DLT_RAW_FILE = 101,/* LINKTYPE_RAW in files */
    SD_DLT_LOOP = 108,    /* OpenBSD loopback: 4-byte network-order family */
    SD_DLT_LINUX_SLL = 113,
    SD_DLT_IPV4 = 228,
    SD_DLT_IPV6 = 229,
    SD_DLT_LINUX_SLL2 = 276,
};

enum sd_pkt_flags {
    SD_PKT_TRUNCATED = 1 << 0,  /* caplen < what the IP header claims */
    SD_PKT_FRAG = 1 << 1,       /* an IP fragment (v4 MF/offset or a v6 fragment header) */
    SD_PKT_FRAG_MF = 1 << 2,    /* more fragments follow */
    SD_PKT_L4 = 1 << 3,         /* the transport header was decoded (not a non-first fragment) */
    SD_PKT_TCP_MD5 = 1 << 4,    /* TCP carries an MD5 signature option (kind 19) */
    SD_PKT_TCP_TS = 1 << 5,     /* TCP carries a timestamp option (kind 8) */
    SD_PKT_IP_OPTS = 1 << 6,    /* IPv4 options or IPv6 extension headers present */
};

/* TCP flag bits, as on the wire. */
enum { SD_TCP_FIN = 0x01, SD_TCP_SYN = 0x02, SD_TCP_RST = 0x04, SD_TCP_PSH = 0x08, SD_TCP_ACK = 0x10, SD_TCP_URG = 0x20 };

struct sd_pkt {
    const uint8_t *frame;    /* the whole captured frame */
    uint32_t caplen;         /* captured bytes */
    uint32_t flags;          /* SD_PKT_* */
    uint16_t l3_off;         /* offset of the IP header in frame */
    uint16_t l4_off;         /* offset of the TCP/UDP header (valid with SD_PKT_L4) */
    uint16_t payload_off;    /* offset of the transport payload */
    uint16_t payload_len;    /* payload bytes present: min(captured, claimed by IP length) */
    uint16_t ip_len;         /* L3 length claimed by the IP header (IPv4 total length; IPv6 40 + payload length) */
    uint16_t vlan[2];        /* outer, inner VLAN ids (n_vlan of them valid) */
    uint8_t n_vlan;
    uint8_t family;          /* 4 or 6 */
    uint8_t proto;           /* IPPROTO_*: the upper-layer protocol after the IPv6 extension chain */
    uint8_t ttl;             /* IPv4 TTL or IPv6 hop limit */
    uint16_t urg_ptr;        /* TCP urgent pointer */
    const uint8_t *saddr;    /* 4 or 16 bytes inside frame */
    const uint8_t *daddr;
    uint32_t frag_id;        /* IPv4 identification (16 bits) or IPv6 fragment id; 0 when not a fragment */
    uint16_t frag_off;       /* fragment offset in bytes */
    uint16_t ip_id;          /* IPv4 identification, 0 for IPv6 */
    uint16_t sport, dport;   /* 0 when SD_PKT_L4 is not set */
    uint8_t tcp_flags;       /* SD_TCP_* */
    uint8_t tcp_hlen;        /* TCP header length in bytes incl. options */
    uint16_t tcp_win;
    uint32_t seq, ack;
};

/*
 * Decodes |caplen| bytes at |frame| of link type |dlt| into |pkt|.
 *
 * Returns 0 on success; SD_ENOTSUP for an unsupported link type or a frame
 * that carries no IPv4/IPv6 (ARP, LLDP, ...); SD_EPROTO for a malformed or
 * truncated header (bad IHL, IP version mismatch, header past caplen, an IPv6
 * extension chain longer than 8 headers or past caplen, TCP data offset < 5).
 * Payload that the capture cut short is not an error: payload_len then counts
 * what is present and SD_PKT_TRUNCATED is set.
 */
int sd_pkt_decode(struct sd_pkt *pkt, int dlt, const uint8_t *frame, size_t caplen);

/* The transport payload as a view (NULL, 0 when there is none). */
static inline struct sd_iov sd_pkt_payload(const struct sd_pkt *pkt)
{
    struct sd_iov v = {pkt->frame + pkt->payload_off, pkt->payload_len};
    if (pkt->payload_len == 0)
        v.p = NULL;
    return v;
}

/* True when the TCP/UDP checksum of a fully captured, unfragmented packet is
 * correct (a zero UDP-over-IPv4 checksum counts as correct). False when wrong or
 * when it cannot be checked (truncated, fragment). */
bool sd_pkt_l4_csum_ok(const struct sd_pkt *pkt);

/* Recomputes the IPv4 header checksum (if IPv4) and the TCP or UDP checksum of
 * the L3 packet at |l3| (|len| bytes, IP header first) in place. Returns 0, or
 * SD_EPROTO when the packet cannot be parsed or is a fragment. */
int sd_pkt_fix_csums(uint8_t *l3, size_t len);

/*
 * Builds in |out| (at most |cap| bytes) the L3 packet (IP header first) of a
 * TCP RST/ACK that takes the place of |pkt|: same addresses, ports and
 * direction, seq = pkt->seq, ack = pkt->ack, no payload, TTL and IPv4 id copied,
 * valid checksums. This is TSPU's SNI-I behaviour: the original packet is
 * dropped and this one delivered instead. Returns the length written, or
 * SD_ERANGE if |cap| is too small, or SD_EINVAL if |pkt| is not TCP.
 */
int sd_pkt_build_rst(uint8_t *out, size_t cap, const struct sd_pkt *pkt);

/* Internet checksum helpers (RFC 1071), exposed for builders and tests. */
uint32_t sd_csum_add(uint32_t sum, const uint8_t *p, size_t n);
uint16_t sd_csum_fold(uint32_t sum);

#endif
