/*
 * pkt.c - one-pass frame decoder (link -> IP -> TCP/UDP), checksums and the
 * RST builder.
 *
 * The decoder is a straight walk in the spirit of masscan's preprocess_frame():
 *
 *     link header          Ethernet [+ up to 4 VLAN/QinQ tags], SLL, SLL2,
 *         |                NULL/LOOP family word, or nothing (raw IP)
 *         v
 *     IPv4 (+ options)  or  IPv6 (+ up to 8 extension headers)
 *         |                          fragment?  non-first: stop here
 *         v
 *     TCP (+ option walk)  or  UDP  or  anything else (no L4)
 *
 * All positions are size_t offsets from the start of the frame, compared
 * against two limits: |cap| (bytes captured) and |claim| (where the IP header
 * says the packet ends). Headers must fit in both, else SD_EPROTO; the
 * payload is whatever lies before min(cap, claim), so Ethernet padding beyond
 * the IP length never counts and a short capture only sets SD_PKT_TRUNCATED.
 * Offsets, not pointers, are compared so that a lying length field can never
 * form an out-of-bounds pointer.
 *
 * Decisions the header leaves open, made here:
 * - When no transport header is decoded (a non-first fragment, ESP, ICMP, or
 *   a first fragment too short to hold its TCP/UDP header), l4_off and
 *   payload_off both point just past the IP headers and payload_len counts
 *   the IP payload present there (for a fragment: its fragment data).
 * - An IPv4 total length or IPv6 payload length of 0 (TSO/GSO captures,
 *   jumbograms) means "as long as the capture", capped at 65535.
 * - ip_len saturates at 65535 for an IPv6 packet with a payload length above
 *   65495 (the field is 16 bits wide).
 * - A fragment header with offset 0 and M clear (an RFC 6946 atomic
 *   fragment) is not a fragment.
 * - sd_csum_add() returns a 32-bit partial sum that is congruent to the RFC
 *   1071 sum; sd_csum_fold() folds it and returns its one's complement, i.e.
 *   the value to store in a checksum field (0 when verifying a correct one).
 */
#include "pkt.h"

#include <string.h>

#include "bytes.h"

enum {
    ETH_IPV4 = 0x0800,
    ETH_IPV6 = 0x86dd,
    IPP_HOPOPTS = 0,
    IPP_TCP = 6,
    IPP_UDP = 17,
    IPP_ROUTING = 43,
    IPP_FRAGMENT = 44,
    IPP_AH = 51,
    IPP_DSTOPTS = 60,
    VLAN_KEEP = 2,   /* tags recorded in pkt->vlan[] */
    VLAN_MAX = 4,    /* tags skipped before giving up */
    IP6_EXT_MAX = 8, /* extension headers before SD_EPROTO */
    IP_LEN_MAX = 65535,
};

/* Maps an ethertype to the IP version it carries (0: none). */
static inline int ethertype_version(uint16_t type)
{
    return type == ETH_IPV4 ? 4 : type == ETH_IPV6 ? 6 : 0;
}

static inline bool is_vlan_tpid(uint16_t type)
{
    return type == 0x8100 || type == 0x88a8 || type == 0x9100;
}

/*
 * Skips VLAN tags starting at *off, where |type| is the ethertype already
 * read. Records the first two ids, skips up to VLAN_MAX. Returns the IP
 * version carried, or a negative SD_E* code.
 */
static int skip_vlans(struct sd_pkt *pkt, const uint8_t *f, size_t cap, size_t *off, uint16_t type)
{
    size_t o = *off;
    unsigned n = 0;
    while (SD_UNLIKELY(is_vlan_tpid(type))) {
        if (n == VLAN_MAX)
            return SD_ENOTSUP;
        if (cap - o < 4)
            return SD_EPROTO;
        if (n < VLAN_KEEP)
            pkt->vlan[n] = sd_rd16be(f + o) & 0x0fff;
        type = sd_rd16be(f + o + 2);
        o += 4;
        n++;
    }
    pkt->n_vlan = (uint8_t)SD_MIN(n, (unsigned)VLAN_KEEP);
    *off = o;
    int v = ethertype_version(type);
    return v ? v : SD_ENOTSUP;
}

/* Maps a NULL/LOOP address family to an IP version (AF_INET6 differs by OS). */
static int family_version(uint32_t af)
{
    switch (af) {
    case 2:
        return 4;
    case 10: /* Linux */
    case 24: /* NetBSD, OpenBSD */
    case 28: /* FreeBSD */
    case 30: /* macOS */
        return 6;
    default:
        return SD_ENOTSUP;
    }
}

/*
 * Decodes the link header of |dlt|. Sets *off to the L3 offset and returns
 * the IP version the link header announces (4 or 6; 0 for raw IP, where the
 * version nibble decides) or a negative SD_E* code.
 */
static int decode_link(struct sd_pkt *pkt, int dlt, const uint8_t *f, size_t cap, size_t *off)
{
    uint32_t af;
    switch (dlt) {
    case SD_DLT_EN10MB:
        if (cap < 14)
            return SD_EPROTO;
        *off = 14;
        return skip_vlans(pkt, f, cap, off, sd_rd16be(f + 12));
    case SD_DLT_RAW:
    case SD_DLT_RAW_BSD:
    case SD_DLT_RAW_FILE:
        *off = 0;
        return 0;
    case SD_DLT_IPV4:
        *off = 0;
        return 4;
    case SD_DLT_IPV6:
        *off = 0;
        return 6;
    case SD_DLT_LINUX_SLL:
        if (cap < 16)
            return SD_EPROTO;
        *off = 16;
        return skip_vlans(pkt, f, cap, off, sd_rd16be(f + 14));
    case SD_DLT_LINUX_SLL2:
        if (cap < 20)
            return SD_EPROTO;
        *off = 20;
        return skip_vlans(pkt, f, cap, off, sd_rd16be(f));
    case SD_DLT_NULL:
        if (cap < 4)
            return SD_EPROTO;
        /* Host byte order of the capturing machine: accept either. */
        af = (uint32_t)f[0] | (uint32_t)f[1] << 8 | (uint32_t)f[2] << 16 | (uint32_t)f[3] << 24;
        if (af > 0xffff)
            af = sd_rd32be(f);
        *off = 4;
        return family_version(af);
    case SD_DLT_LOOP:
        if (cap < 4)
            return SD_EPROTO;
        *off = 4;
        return family_version(sd_rd32be(f));
    default:
        return SD_ENOTSUP;
    }
}

/*
 * Walks the TCP options in [o, end) and sets the MD5/TS flags. Malformed
 * options (length < 2 or past the header) end the walk: the header itself
 * was already validated by its data offset.
 */
static void tcp_options(struct sd_pkt *pkt, const uint8_t *f, size_t o, size_t end)
{
    while (o < end) {
        uint8_t kind = f[o];
        if (kind == 0)
            return;
        if (kind == 1) {
            o++;
            continue;
        }
        if (end - o < 2)
            return;
        uint8_t len = f[o + 1];
        if (len < 2 || len > end - o)
            return;
        if (kind == 8)
            pkt->flags |= SD_PKT_TCP_TS;
        else if (kind == 19)
            pkt->flags |= SD_PKT_TCP_MD5;
        o += len;
    }
}

/*
 * Decodes the TCP or UDP header at |o|. |lim| = min(cap, claim). A first
 * fragment whose transport header does not fit is not an error: it simply
 * has no L4. Sets l4/payload offsets; *claim may shrink to the UDP length.
 */
static int decode_l4(struct sd_pkt *pkt, const uint8_t *f, size_t o, size_t lim, size_t *claim)
{
    const uint8_t *h = f + o;
    bool frag = pkt->flags & SD_PKT_FRAG;
    size_t hl;
    if (pkt->proto == IPP_TCP) {
        if (lim - o < 20)
            return frag ? 0 : SD_EPROTO;
        hl = (size_t)(h[12] >> 4) * 4;
        if (hl < 20)
            return SD_EPROTO;
        if (lim - o < hl)
            return frag ? 0 : SD_EPROTO;
        pkt->seq = sd_rd32be(h + 4);
        pkt->ack = sd_rd32be(h + 8);
        pkt->tcp_flags = h[13];
        pkt->tcp_hlen = (uint8_t)hl;
        pkt->tcp_win = sd_rd16be(h + 14);
        pkt->urg_ptr = sd_rd16be(h + 18);
        if (hl > 20)
            tcp_options(pkt, f, o + 20, o + hl);
    } else if (pkt->proto == IPP_UDP) {
        if (lim - o < 8)
            return frag ? 0 : SD_EPROTO;
        size_t ulen = sd_rd16be(h + 4);
        hl = 8;
        if (ulen < 8)
            return SD_EPROTO;
        /* In a first fragment the UDP length covers the whole datagram. */
        if (!frag) {
            if (ulen > *claim - o)
                return SD_EPROTO;
            *claim = o + ulen;
        }
    } else {
        return 0;
    }
    pkt->sport = sd_rd16be(h);
    pkt->dport = sd_rd16be(h + 2);
    pkt->payload_off = (uint16_t)(o + hl);
    pkt->flags |= SD_PKT_L4;
    return 0;
}

/* Sets ip_len, the TRUNCATED flag and the claimed end from an L3 length. */
static size_t set_claim(struct sd_pkt *pkt, size_t l3, size_t cap, size_t len)
{
    if (len == 0) /* TSO/GSO capture or jumbogram: trust the capture */
        len = SD_MIN(cap - l3, (size_t)IP_LEN_MAX);
    if (cap - l3 < len)
        pkt->flags |= SD_PKT_TRUNCATED;
    return l3 + len;
}

/* Decodes the IPv4 header at |o|. Returns the offset past it or SD_E*. */
static int decode_ip4(struct sd_pkt *pkt, const uint8_t *f, size_t o, size_t cap, size_t *claim)
{
    const uint8_t *h = f + o;
    if (cap - o < 20 || (h[0] >> 4) != 4)
        return SD_EPROTO;
    size_t ihl = (size_t)(h[0] & 15) * 4;
    if (ihl < 20 || cap - o < ihl)
        return SD_EPROTO;
    size_t tot = sd_rd16be(h + 2);
    if (tot != 0 && tot < ihl)
        return SD_EPROTO;
    *claim = set_claim(pkt, o, cap, tot);
    pkt->ip_len = (uint16_t)(*claim - o);
    pkt->family = 4;
    pkt->ttl = h[8];
    pkt->proto = h[9];
    pkt->saddr = h + 12;
    pkt->daddr = h + 16;
    pkt->ip_id = sd_rd16be(h + 4);
    uint16_t fo = sd_rd16be(h + 6);
    if (fo & 0x3fff) {
        pkt->flags |= SD_PKT_FRAG | ((fo & 0x2000) ? SD_PKT_FRAG_MF : 0);
        pkt->frag_id = pkt->ip_id;
        pkt->frag_off = (uint16_t)((fo & 0x1fff) * 8);
    }
    if (ihl > 20)
        pkt->flags |= SD_PKT_IP_OPTS;
    return (int)(o + ihl);
}

/*
 * Decodes the IPv6 header at |o| and its extension chain. Returns the offset
 * of the upper-layer header (pkt->proto says which) or SD_E*.
 */
static int decode_ip6(struct sd_pkt *pkt, const uint8_t *f, size_t o, size_t cap, size_t *claim)
{
    const uint8_t *h = f + o;
    if (cap - o < 40 || (h[0] >> 4) != 6)
        return SD_EPROTO;
    size_t plen = sd_rd16be(h + 4);
    *claim = set_claim(pkt, o + 40, cap, plen);
    pkt->ip_len = (uint16_t)SD_MIN(*claim - o, (size_t)IP_LEN_MAX);
    pkt->family = 6;
    pkt->ttl = h[7];
    pkt->saddr = h + 8;
    pkt->daddr = h + 24;
    size_t lim = SD_MIN(cap, *claim);
    uint8_t nh = h[6];
    unsigned n = 0;
    o += 40;
    for (;;) {
        size_t len;
        if (nh != IPP_HOPOPTS && nh != IPP_ROUTING && nh != IPP_DSTOPTS && nh != IPP_FRAGMENT && nh != IPP_AH)
            break;
        if (n == IP6_EXT_MAX || lim - o < 8)
            return SD_EPROTO;
        const uint8_t *e = f + o;
        n++;
        if (nh == IPP_FRAGMENT) {
            uint16_t fo = sd_rd16be(e + 2);
            len = 8;
            if (fo & 0xfff9) { /* offset or M: a real fragment */
                pkt->flags |= SD_PKT_FRAG | ((fo & 1) ? SD_PKT_FRAG_MF : 0);
                pkt->frag_off = fo & 0xfff8;
                pkt->frag_id = sd_rd32be(e + 4);
            }
        } else if (nh == IPP_AH) {
            len = ((size_t)e[1] + 2) * 4;
        } else {
            len = ((size_t)e[1] + 1) * 8;
        }
        if (lim - o < len)
            return SD_EPROTO;
        nh = e[0];
        o += len;
        /* Past a non-first fragment header lies data, not headers. */
        if (pkt->frag_off != 0)
            break;
    }
    if (n)
        pkt->flags |= SD_PKT_IP_OPTS;
    pkt->proto = nh;
    return (int)o;
}

int sd_pkt_decode(struct sd_pkt *pkt, int dlt, const uint8_t *frame, size_t caplen)
{
    memset(pkt, 0, sizeof(*pkt));
    pkt->frame = frame;
    pkt->caplen = (uint32_t)SD_MIN(caplen, (size_t)UINT32_MAX);
    size_t cap = pkt->caplen, l3 = 0, claim, o;
    int v = decode_link(pkt, dlt, frame, cap, &l3);
    if (SD_UNLIKELY(v < 0))
        return v;
    if (v == 0) { /* raw IP: the version nibble decides */
        if (cap < 1)
            return SD_EPROTO;
        v = frame[0] >> 4;
    }
    int r;
    if (v == 4)
        r = decode_ip4(pkt, frame, l3, cap, &claim);
    else if (v == 6)
        r = decode_ip6(pkt, frame, l3, cap, &claim);
    else
        r = SD_EPROTO;
    if (SD_UNLIKELY(r < 0))
        return r;
    o = (size_t)r;
    pkt->l3_off = (uint16_t)l3;
    pkt->l4_off = (uint16_t)o;
    pkt->payload_off = (uint16_t)o;
    if (pkt->frag_off == 0) {
        r = decode_l4(pkt, frame, o, SD_MIN(cap, claim), &claim);
        if (SD_UNLIKELY(r < 0))
            return r;
    }
    size_t lim = SD_MIN(cap, claim);
    pkt->payload_len = (uint16_t)(lim - pkt->payload_off);
    return 0;
}

uint32_t sd_csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    uint64_t acc = sum;
    /* 32-bit words are congruent to the sum of their 16-bit halves mod 0xffff. */
    for (; n >= 8; p += 8, n -= 8)
        acc += (uint64_t)sd_rd32be(p) + sd_rd32be(p + 4);
    for (; n >= 2; p += 2, n -= 2)
        acc += sd_rd16be(p);
    if (n)
        acc += (uint32_t)p[0] << 8;
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return (uint32_t)acc;
}

uint16_t sd_csum_fold(uint32_t sum)
{
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* The pseudo-header sum for an L4 segment of |len| bytes. */
static uint32_t pseudo_sum(int family, const uint8_t *saddr, const uint8_t *daddr, uint8_t proto, size_t len)
{
    size_t alen = family == 4 ? 4 : 16;
    uint32_t sum = sd_csum_add(0, saddr, alen);
    sum = sd_csum_add(sum, daddr, alen);
    return sum + proto + (uint32_t)(len & 0xffff) + (uint32_t)(len >> 16);
}

/* Length of the TCP/UDP segment (header + payload) of a decoded packet. */
static size_t l4_len(const struct sd_pkt *pkt)
{
    return (size_t)(pkt->payload_off - pkt->l4_off) + pkt->payload_len;
}

bool sd_pkt_l4_csum_ok(const struct sd_pkt *pkt)
{
    if ((pkt->flags & (SD_PKT_L4 | SD_PKT_FRAG | SD_PKT_TRUNCATED)) != SD_PKT_L4)
        return false;
    /* SD_PKT_L4 is only ever set for TCP and UDP. */
    const uint8_t *l4 = pkt->frame + pkt->l4_off;
    if (pkt->proto == IPP_UDP && sd_rd16be(l4 + 6) == 0)
        return pkt->family == 4;
    size_t n = l4_len(pkt);
    uint32_t sum = pseudo_sum(pkt->family, pkt->saddr, pkt->daddr, pkt->proto, n);
    return sd_csum_fold(sd_csum_add(sum, l4, n)) == 0;
}

int sd_pkt_fix_csums(uint8_t *l3, size_t len)
{
    struct sd_pkt pkt;
    if (sd_pkt_decode(&pkt, SD_DLT_RAW, l3, len) < 0 || (pkt.flags & (SD_PKT_FRAG | SD_PKT_TRUNCATED)))
        return SD_EPROTO;
    if (pkt.family == 4) {
        size_t ihl = (size_t)(l3[0] & 15) * 4;
        sd_put16be(l3 + 10, 0);
        sd_put16be(l3 + 10, sd_csum_fold(sd_csum_add(0, l3, ihl)));
    }
    if (!(pkt.flags & SD_PKT_L4))
        return 0;
    uint8_t *l4 = l3 + pkt.l4_off;
    uint8_t *ck = l4 + (pkt.proto == IPP_TCP ? 16 : 6);
    size_t n = l4_len(&pkt);
    sd_put16be(ck, 0);
    uint16_t c = sd_csum_fold(sd_csum_add(pseudo_sum(pkt.family, pkt.saddr, pkt.daddr, pkt.proto, n), l4, n));
    if (c == 0 && pkt.proto == IPP_UDP)
        c = 0xffff; /* 0 means "no checksum" for UDP */
    sd_put16be(ck, c);
    return 0;
}

int sd_pkt_build_rst(uint8_t *out, size_t cap, const struct sd_pkt *pkt)
{
    if (!(pkt->flags & SD_PKT_L4) || pkt->proto != IPP_TCP)
        return SD_EINVAL;
    const uint8_t *ip = pkt->frame + pkt->l3_off;
    size_t iphl = pkt->family == 4 ? 20 : 40, alen = pkt->family == 4 ? 4 : 16;
    size_t total = iphl + 20;
    if (cap < total)
        return SD_ERANGE;
    uint8_t *p = out;
    if (pkt->family == 4) {
        p = sd_put8(p, 0x45);
        p = sd_put8(p, ip[1]); /* TOS */
        p = sd_put16be(p, (uint16_t)total);
        p = sd_put16be(p, pkt->ip_id);
        p = sd_put16be(p, ip[6] & 0x40 ? 0x4000 : 0); /* keep DF */
        p = sd_put8(p, pkt->ttl);
        p = sd_put8(p, IPP_TCP);
        p = sd_put16be(p, 0);
    } else {
        memcpy(p, ip, 4); /* version, traffic class, flow label */
        p = sd_put16be(p + 4, 20);
        p = sd_put8(p, IPP_TCP);
        p = sd_put8(p, pkt->ttl);
    }
    memcpy(p, pkt->saddr, alen);
    memcpy(p + alen, pkt->daddr, alen);
    p += 2 * alen;
    if (pkt->family == 4)
        sd_put16be(out + 10, sd_csum_fold(sd_csum_add(0, out, 20)));
    uint8_t *tcp = p;
    p = sd_put16be(p, pkt->sport);
    p = sd_put16be(p, pkt->dport);
    p = sd_put32be(p, pkt->seq);
    p = sd_put32be(p, pkt->ack);
    p = sd_put8(p, 5 << 4);
    p = sd_put8(p, SD_TCP_RST | SD_TCP_ACK);
    p = sd_put16be(p, 0); /* window */
    p = sd_put16be(p, 0); /* checksum, below */
    sd_put16be(p, 0);     /* urgent pointer */
    uint32_t sum = pseudo_sum(pkt->family, pkt->saddr, pkt->daddr, IPP_TCP, 20);
    sd_put16be(tcp + 16, sd_csum_fold(sd_csum_add(sum, tcp, 20)));
    return (int)total;
}
