/*
 * gen.c - the packet and pcap generator of gen.h (all but the TLS builders,
 * which live in gen_tls.c).
 *
 * A frame is written back to front in one buffer: the builder first lays out
 * the link header, the IP header (with IPv4 options or IPv6 extension
 * headers) and the transport header, copies the payload after them, and only
 * then fills the length and checksum fields, whose values depend on what
 * follows. Checksums are computed with the production helpers of pkt.c.
 *
 * The pcap writer emits the classic format (magic a1b2c3d4, microsecond
 * timestamps) in little-endian byte order, so generated files are identical on
 * every host. Time is always integer nanoseconds; the microsecond field is the
 * floor of ts_ns / 1000.
 *
 * The TCP conversation helper keeps one next-sequence number per direction
 * and a pcap clock. Bulk transfers are paced by IP bytes: segment i leaves at
 * start + floor(ip_bytes_before_i * 8e9 / rate), computed in 128-bit
 * integers so that policer tests can predict every timestamp exactly.
 *
 * It serves the tests, the benchmarks and the offline demo, all of which
 * build from fixed inputs: on a frame that cannot be built or a pcap that
 * cannot be written, the conversation helpers print a message and abort.
 */
#include "gen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "pkt.h"

enum {
    GEN_SNAPLEN = 262144,
    GEN_FRAME_MAX = 65535 + 256, /* largest frame the helpers build */
    GEN_TURNAROUND_NS = 50000,   /* host turnaround before an ACK (50 us) */
    GEN_EXT_MAX = 16,            /* IPv6 extension headers sd_gen_frame inserts at most */
    GEN_LINK_MAX = 32,           /* longest link header built */
};

struct sd_gen_pcap {
    FILE *f;
    int linktype;
    int err;
};

static uint8_t *put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static uint8_t *put16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

struct sd_gen_pcap *sd_gen_pcap_open(const char *path, int linktype)
{
    struct sd_gen_pcap *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->f = fopen(path, "wb");
    if (!w->f) {
        int e = errno;
        free(w);
        errno = e;
        return NULL;
    }
    w->linktype = linktype;
    uint8_t h[24], *p = h;
    p = put32le(p, 0xa1b2c3d4);
    p = put16le(p, 2);
    p = put16le(p, 4);
    p = put32le(p, 0); /* thiszone */
    p = put32le(p, 0); /* sigfigs */
    p = put32le(p, GEN_SNAPLEN);
    put32le(p, (uint32_t)linktype);
    if (fwrite(h, sizeof(h), 1, w->f) != 1)
        w->err = 1;
    return w;
}

int sd_gen_pcap_write(struct sd_gen_pcap *w, uint64_t ts_ns, const uint8_t *frame, size_t len)
{
    uint8_t h[16], *p = h;
    if (len > UINT32_MAX)
        return -1;
    p = put32le(p, (uint32_t)(ts_ns / 1000000000u));
    p = put32le(p, (uint32_t)(ts_ns % 1000000000u / 1000u));
    p = put32le(p, (uint32_t)len);
    put32le(p, (uint32_t)len);
    if (fwrite(h, sizeof(h), 1, w->f) != 1 || (len && fwrite(frame, len, 1, w->f) != 1)) {
        w->err = 1;
        return -1;
    }
    return 0;
}

int sd_gen_pcap_close(struct sd_gen_pcap *w)
{
    if (!w)
        return 0;
    int rc = w->err ? -1 : 0;
    if (fclose(w->f) != 0)
        rc = -1;
    free(w);
    return rc;
}

int sd_gen_pcap_linktype(const struct sd_gen_pcap *w)
{
    return w->linktype;
}

struct sd_gen_addr sd_gen_addr(const char *text)
{
    struct sd_gen_addr a;
    memset(&a, 0, sizeof(a));
    if (inet_pton(AF_INET, text, a.a) == 1) {
        a.family = 4;
    } else if (inet_pton(AF_INET6, text, a.a) == 1) {
        a.family = 6;
    } else {
        fprintf(stderr, "sd_gen_addr: bad address '%s'\n", text);
        abort();
    }
    return a;
}

/* ---- single frames ---- */

/* Writes the link header of s->linktype for an IP packet of s->src.family
 * into |buf| (at least GEN_LINK_MAX bytes). Returns its length, or -1 for an
 * unknown link type. */
static int put_link(uint8_t *buf, const struct sd_gen_pkt *s)
{
    static const uint8_t mac_dst[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x02};
    static const uint8_t mac_src[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};
    uint16_t etype = s->src.family == 4 ? 0x0800 : 0x86dd;
    uint32_t af = s->src.family == 4 ? 2 : 24; /* AF_INET6 of the BSDs */
    uint8_t *p = buf;
    switch (s->linktype) {
    case 1:
        if (s->n_vlan < 0 || s->n_vlan > 2)
            return -1;
        memcpy(p, mac_dst, 6);
        memcpy(p + 6, mac_src, 6);
        p += 12;
        for (int i = 0; i < s->n_vlan; i++) {
            p = sd_put16be(p, s->n_vlan == 2 && i == 0 ? 0x88a8 : 0x8100);
            p = sd_put16be(p, s->vlan[i] & 0x0fff);
        }
        p = sd_put16be(p, etype);
        break;
    case 12:
    case 14:
    case 101:
    case 228:
    case 229:
        break;
    case 0: /* NULL: host order, written little-endian */
        p = put32le(p, af);
        break;
    case 108: /* LOOP: network order */
        p = sd_put32be(p, af);
        break;
    case 113:
        p = sd_put16be(p, 0); /* packet type: to us */
        p = sd_put16be(p, 1); /* ARPHRD_ETHER */
        p = sd_put16be(p, 6);
        memcpy(p, mac_src, 6);
        memset(p + 6, 0, 2);
        p = sd_put16be(p + 8, etype);
        break;
    case 276:
        p = sd_put16be(p, etype);
        p = sd_put16be(p, 0); /* reserved */
        p = sd_put32be(p, 2); /* interface index */
        p = sd_put16be(p, 1); /* ARPHRD_ETHER */
        p = sd_put8(p, 0);    /* packet type: to us */
        p = sd_put8(p, 6);    /* address length */
        memcpy(p, mac_src, 6);
        memset(p + 6, 0, 2);
        p += 8;
        break;
    default:
        return -1;
    }
    return (int)(p - buf);
}

/* Writes |n| IPv6 extension headers (8 bytes each) ending in |last_nh|:
 * hop-by-hop first, then a routing header (segments left 0), then
 * destination options. Returns the next-header value of the first. */
static uint8_t put_ip6_ext(uint8_t *p, int n, uint8_t last_nh)
{
    uint8_t types[GEN_EXT_MAX];
    for (int i = 0; i < n; i++)
        types[i] = i == 0 ? 0 : i == 1 && n > 2 ? 43 : 60;
    for (int i = 0; i < n; i++, p += 8) {
        p[0] = i + 1 < n ? types[i + 1] : last_nh;
        p[1] = 0;
        if (types[i] == 43) {
            p[2] = 253; /* experimental routing type (RFC 4727) */
            p[3] = 0;   /* segments left */
            memset(p + 4, 0, 4);
        } else {
            p[2] = 1; /* PadN, 4 bytes */
            p[3] = 4;
            memset(p + 4, 0, 4);
        }
    }
    return n ? types[0] : last_nh;
}

/* Writes the TCP or UDP header (checksum 0); returns its length. */
static size_t put_l4(uint8_t *p, const struct sd_gen_pkt *s, size_t l4len)
{
    if (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP)
        return 0; /* any other protocol: the payload follows the IP header */
    p = sd_put16be(p, s->sport);
    p = sd_put16be(p, s->dport);
    if (s->proto == IPPROTO_UDP) {
        p = sd_put16be(p, (uint16_t)l4len);
        sd_put16be(p, 0);
        return 8;
    }
    size_t hl = s->tcp_md5 ? 40 : 20;
    p = sd_put32be(p, s->seq);
    p = sd_put32be(p, s->ack);
    p = sd_put8(p, (uint8_t)(hl / 4 << 4));
    p = sd_put8(p, s->tcp_flags);
    p = sd_put16be(p, s->win ? s->win : 65535);
    p = sd_put16be(p, 0);
    p = sd_put16be(p, 0);
    if (s->tcp_md5) {
        p = sd_put8(p, 19);
        p = sd_put8(p, 18);
        for (int i = 0; i < 16; i++)
            p = sd_put8(p, (uint8_t)(0xa0 + i)); /* a fixed fake digest */
        p = sd_put8(p, 1);
        sd_put8(p, 1);
    }
    return hl;
}

/*
 * Fills the checksums of the packet at |ip| from what the builder knows (the
 * decoder is not used, so a 9-header IPv6 chain still gets valid sums): the
 * IPv4 header sum over |iphl| bytes, then the TCP/UDP sum of the |l4len|
 * bytes at |l4|, spoiled on request.
 */
static void put_csums(uint8_t *ip, size_t iphl, uint8_t *l4, size_t l4len, const struct sd_gen_pkt *s)
{
    size_t alen = s->src.family == 4 ? 4 : 16;
    if (s->src.family == 4)
        sd_put16be(ip + 10, sd_csum_fold(sd_csum_add(0, ip, iphl)));
    if (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP)
        return;
    uint8_t pseudo[40], *p = pseudo;
    memcpy(p, s->src.a, alen);
    memcpy(p + alen, s->dst.a, alen);
    p += 2 * alen;
    /* IPv6 layout; for IPv4 (0, proto, 16-bit length) the sum is the same. */
    p = sd_put32be(p, (uint32_t)l4len);
    p = sd_put32be(p, s->proto);
    uint8_t *ck = l4 + (s->proto == IPPROTO_TCP ? 16 : 6);
    uint16_t c = sd_csum_fold(sd_csum_add(sd_csum_add(0, pseudo, (size_t)(p - pseudo)), l4, l4len));
    if (s->bad_csum)
        c ^= 0x5555;
    if (c == 0 && s->proto == IPPROTO_UDP)
        c = s->bad_csum ? 0x1111 : 0xffff; /* UDP 0 means "no checksum" */
    sd_put16be(ck, c);
}

size_t sd_gen_frame(uint8_t *buf, size_t cap, const struct sd_gen_pkt *s)
{
    int v4 = s->src.family == 4;
    if ((s->src.family != 4 && s->src.family != 6) || s->dst.family != s->src.family)
        return 0;
    if (s->ipv4_opts_len < 0 || s->ipv4_opts_len > 40 || s->ipv4_opts_len % 4 || s->ipv6_ext < 0 || s->ipv6_ext > GEN_EXT_MAX)
        return 0;
    uint8_t link[GEN_LINK_MAX];
    int ll = put_link(link, s);
    if (ll < 0 || cap < (size_t)ll)
        return 0;
    size_t iphl = v4 ? 20 + (size_t)s->ipv4_opts_len : 40 + 8 * (size_t)s->ipv6_ext;
    size_t l4hl = s->proto == IPPROTO_TCP ? (s->tcp_md5 ? 40 : 20) : s->proto == IPPROTO_UDP ? 8 : 0;
    size_t l4len = l4hl + s->payload_len;
    size_t iplen = iphl + l4len;
    if ((v4 ? iplen : l4len + 8 * (size_t)s->ipv6_ext) > 65535 || cap - (size_t)ll < iplen)
        return 0;
    uint8_t *ip = buf + ll, *p = ip;
    memcpy(buf, link, (size_t)ll);
    if (v4) {
        p = sd_put8(p, (uint8_t)(0x40 | iphl / 4));
        p = sd_put8(p, 0);
        p = sd_put16be(p, (uint16_t)iplen);
        p = sd_put16be(p, s->ip_id);
        p = sd_put16be(p, 0); /* no DF: the fragmenter may split it */
        p = sd_put8(p, s->ttl ? s->ttl : 64);
        p = sd_put8(p, s->proto);
        p = sd_put16be(p, 0);
        memcpy(p, s->src.a, 4);
        memcpy(p + 4, s->dst.a, 4);
        p += 8;
        if (s->ipv4_opts_len) { /* NOPs, then an EOL */
            memset(p, 1, (size_t)s->ipv4_opts_len - 1);
            p[s->ipv4_opts_len - 1] = 0;
            p += s->ipv4_opts_len;
        }
    } else {
        p = sd_put32be(p, 0x60000000);
        p = sd_put16be(p, (uint16_t)(iplen - 40));
        p = sd_put8(p, put_ip6_ext(ip + 40, s->ipv6_ext, s->proto));
        p = sd_put8(p, s->ttl ? s->ttl : 64);
        memcpy(p, s->src.a, 16);
        memcpy(p + 16, s->dst.a, 16);
        p += 32 + 8 * (size_t)s->ipv6_ext;
    }
    uint8_t *l4 = p;
    p += put_l4(p, s, l4len);
    if (s->payload_len)
        memcpy(p, s->payload, s->payload_len);
    put_csums(ip, iphl, l4, l4len, s);
    return (size_t)ll + iplen;
}

/* ---- fragmentation ---- */

/* Copies the IPv4 options of a non-first fragment: only those with the
 * "copied" bit, padded with EOL to a multiple of 4. Returns their length. */
static size_t copied_ip4_opts(uint8_t *out, const uint8_t *o, size_t n)
{
    size_t i = 0, w = 0;
    while (i < n && o[i] != 0) {
        if (o[i] == 1) {
            i++;
            continue;
        }
        if (n - i < 2 || o[i + 1] < 2 || o[i + 1] > n - i)
            break;
        if (o[i] & 0x80) {
            memcpy(out + w, o + i, o[i + 1]);
            w += o[i + 1];
        }
        i += o[i + 1];
    }
    while (w % 4)
        out[w++] = 0;
    return w;
}

/* Length of the IPv6 per-fragment part: the fixed header plus hop-by-hop,
 * routing and destination options that precede a routing header. Sets
 * *nh_at to the offset of the next-header byte that must become 44. */
static size_t ip6_unfrag_len(const uint8_t *ip, size_t len, size_t *nh_at)
{
    size_t o = 40;
    *nh_at = 6;
    uint8_t nh = ip[6];
    while (len - o >= 8) {
        bool more = nh == 0 || nh == 43 || (nh == 60 && ip[o] == 43);
        if (!more)
            break;
        *nh_at = o;
        nh = ip[o];
        o += ((size_t)ip[o + 1] + 1) * 8;
        if (o > len)
            return 0;
    }
    return o;
}

/* FNV-1a over the bytes, for a deterministic IPv6 fragment id. */
static uint32_t fnv32(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Writes the IPv4 header of fragment |off| (|part| data bytes) at |q|;
 * returns the header length. */
static size_t frag_hdr4(uint8_t *q, const uint8_t *ip, size_t hl, size_t off, size_t part, bool last)
{
    size_t h = 20;
    memcpy(q, ip, 20);
    if (off == 0) {
        memcpy(q + 20, ip + 20, hl - 20);
        h = hl;
    } else {
        h += copied_ip4_opts(q + 20, ip + 20, hl - 20);
    }
    q[0] = (uint8_t)(0x40 | h / 4);
    sd_put16be(q + 2, (uint16_t)(h + part));
    sd_put16be(q + 6, (uint16_t)((last ? 0 : 0x2000) | off / 8)); /* DF cleared */
    sd_put16be(q + 10, 0);
    sd_put16be(q + 10, sd_csum_fold(sd_csum_add(0, q, h)));
    return h;
}

/* Writes the IPv6 per-fragment headers plus a fragment header at |q|;
 * returns their length. */
static size_t frag_hdr6(uint8_t *q, const uint8_t *ip, size_t hl, size_t nh_at, size_t off, size_t part, bool last, uint32_t id)
{
    memcpy(q, ip, hl);
    uint8_t *fh = q + hl;
    fh[0] = ip[nh_at];
    fh[1] = 0;
    sd_put16be(fh + 2, (uint16_t)(off | (last ? 0 : 1)));
    sd_put32be(fh + 4, id);
    q[nh_at] = 44;
    sd_put16be(q + 4, (uint16_t)(hl + 8 - 40 + part));
    return hl + 8;
}

int sd_gen_fragment(const uint8_t *frame, size_t len, int linktype, size_t frag_size, uint8_t **out, size_t *out_len, size_t cap,
                    int max)
{
    struct sd_pkt pkt;
    frag_size &= ~(size_t)7;
    if (frag_size == 0 || sd_pkt_decode(&pkt, linktype, frame, len) < 0 || (pkt.flags & (SD_PKT_FRAG | SD_PKT_TRUNCATED)))
        return 0;
    const uint8_t *ip = frame + pkt.l3_off;
    size_t ll = pkt.l3_off, iplen = pkt.ip_len, hl, nh_at = 0;
    if (pkt.family == 4)
        hl = (size_t)(ip[0] & 15) * 4;
    else if ((hl = ip6_unfrag_len(ip, iplen, &nh_at)) == 0)
        return 0;
    size_t data = iplen - hl;
    size_t nfrag = data ? (data + frag_size - 1) / frag_size : 1;
    if (nfrag > (size_t)max)
        return 0;
    uint32_t id = fnv32(ip + hl, data);
    for (size_t i = 0; i < nfrag; i++) {
        size_t off = i * frag_size, part = SD_MIN(frag_size, data - off);
        bool last = i + 1 == nfrag;
        if (cap < ll + hl + (pkt.family == 6 ? 8 : 0) + part)
            return 0;
        uint8_t *q = out[i] + ll;
        memcpy(out[i], frame, ll);
        size_t h = pkt.family == 4 ? frag_hdr4(q, ip, hl, off, part, last) : frag_hdr6(q, ip, hl, nh_at, off, part, last, id);
        memcpy(q + h, ip + hl + off, part);
        out_len[i] = ll + h + part;
    }
    return (int)nfrag;
}

/* ---- TCP conversations ---- */

void sd_gen_tcp_init(struct sd_gen_tcp *c, struct sd_gen_pcap *w, const char *client, uint16_t cport, const char *server,
                     uint16_t sport, uint64_t start_ns)
{
    memset(c, 0, sizeof(*c));
    c->w = w;
    c->tmpl.linktype = w ? sd_gen_pcap_linktype(w) : 101;
    c->tmpl.src = sd_gen_addr(client);
    c->tmpl.dst = sd_gen_addr(server);
    c->tmpl.proto = IPPROTO_TCP;
    c->tmpl.sport = cport;
    c->tmpl.dport = sport;
    c->seq[SD_GEN_C2S] = 0x10000000u + (uint32_t)cport * 65537u;
    c->seq[SD_GEN_S2C] = 0x80000000u + (uint32_t)sport * 65537u;
    c->now_ns = start_ns;
    c->rtt_ns = 20000000;
    c->mss = 1460;
    c->ip_id[SD_GEN_C2S] = (uint16_t)(cport * 7u);
    c->ip_id[SD_GEN_S2C] = (uint16_t)(sport * 13u);
}

/* Builds and writes one segment of the conversation; returns its IP length. */
static size_t emit(struct sd_gen_tcp *c, int dir, uint8_t flags, uint32_t seq, const uint8_t *data, size_t len)
{
    static const char filler[] = "slowdown-filler-0123456789abcdef";
    uint8_t *frame = malloc(GEN_FRAME_MAX), *fill = NULL;
    struct sd_gen_pkt s = c->tmpl;
    if (!frame)
        abort();
    if (!data && len) { /* NULL data: a repeating filler pattern */
        fill = malloc(len);
        if (!fill)
            abort();
        for (size_t i = 0; i < len; i++)
            fill[i] = (uint8_t)filler[i % (sizeof(filler) - 1)];
        data = fill;
    }
    if (dir == SD_GEN_S2C) {
        s.src = c->tmpl.dst;
        s.dst = c->tmpl.src;
        s.sport = c->tmpl.dport;
        s.dport = c->tmpl.sport;
    }
    s.proto = IPPROTO_TCP;
    s.tcp_flags = flags;
    s.seq = seq;
    s.ack = (flags & SD_TCP_ACK) ? c->seq[!dir] : 0;
    s.ip_id = c->ip_id[dir]++;
    s.payload = data;
    s.payload_len = len;
    size_t n = sd_gen_frame(frame, GEN_FRAME_MAX, &s);
    if (n == 0) {
        fprintf(stderr, "sd_gen_tcp: cannot build a %zu-byte segment\n", len);
        abort();
    }
    if (c->w && sd_gen_pcap_write(c->w, c->now_ns, frame, n) < 0) {
        fprintf(stderr, "sd_gen_tcp: pcap write failed\n");
        abort();
    }
    uint8_t link[GEN_LINK_MAX];
    size_t iplen = n - (size_t)put_link(link, &s);
    free(fill);
    free(frame);
    return iplen;
}

void sd_gen_tcp_handshake(struct sd_gen_tcp *c, bool server_opens)
{
    int a = server_opens ? SD_GEN_S2C : SD_GEN_C2S, b = !a;
    emit(c, a, SD_TCP_SYN, c->seq[a]++, NULL, 0);
    c->now_ns += c->rtt_ns;
    emit(c, b, SD_TCP_SYN | SD_TCP_ACK, c->seq[b]++, NULL, 0);
    c->now_ns += GEN_TURNAROUND_NS;
    emit(c, a, SD_TCP_ACK, c->seq[a], NULL, 0);
}

void sd_gen_tcp_send(struct sd_gen_tcp *c, int dir, const uint8_t *data, size_t len, uint64_t gap_ns)
{
    c->now_ns += gap_ns;
    emit(c, dir, SD_TCP_PSH | SD_TCP_ACK, c->seq[dir], data, len);
    c->seq[dir] += (uint32_t)len;
}

void sd_gen_tcp_send_at(struct sd_gen_tcp *c, int dir, int32_t seq_delta, const uint8_t *data, size_t len, uint64_t gap_ns)
{
    c->now_ns += gap_ns;
    emit(c, dir, SD_TCP_PSH | SD_TCP_ACK, c->seq[dir] + (uint32_t)seq_delta, data, len);
}

void sd_gen_tcp_advance(struct sd_gen_tcp *c, int dir, size_t len)
{
    c->seq[dir] += (uint32_t)len;
}

void sd_gen_tcp_flags(struct sd_gen_tcp *c, int dir, uint8_t flags, uint64_t gap_ns)
{
    c->now_ns += gap_ns;
    emit(c, dir, flags, c->seq[dir], NULL, 0);
    if (flags & (SD_TCP_SYN | SD_TCP_FIN))
        c->seq[dir]++;
}

uint64_t sd_gen_tcp_bulk(struct sd_gen_tcp *c, int dir, size_t total, uint64_t rate_bps)
{
    uint64_t start = c->now_ns;
    unsigned __int128 sent = 0; /* IP bytes written so far in |dir| */
    size_t mss = c->mss ? c->mss : 1460;
    for (size_t off = 0, i = 0; off < total; i++) {
        size_t len = SD_MIN(mss, total - off);
        c->now_ns = start + (rate_bps ? (uint64_t)(sent * 8u * 1000000000u / rate_bps) : 0);
        sent += emit(c, dir, SD_TCP_PSH | SD_TCP_ACK, c->seq[dir], NULL, len);
        c->seq[dir] += (uint32_t)len;
        off += len;
        if (i % 2 == 1) /* the peer ACKs every second segment */
            emit(c, !dir, SD_TCP_ACK, c->seq[!dir], NULL, 0);
    }
    c->now_ns = start + (rate_bps ? (uint64_t)(sent * 8u * 1000000000u / rate_bps) : 0);
    return c->now_ns;
}

void sd_gen_udp(struct sd_gen_pcap *w, const struct sd_gen_pkt *tmpl, uint64_t ts_ns, const uint8_t *data, size_t len)
{
    uint8_t *frame = malloc(GEN_FRAME_MAX);
    struct sd_gen_pkt s = *tmpl;
    if (!frame)
        abort();
    s.linktype = sd_gen_pcap_linktype(w);
    s.proto = IPPROTO_UDP;
    s.payload = data;
    s.payload_len = len;
    size_t n = sd_gen_frame(frame, GEN_FRAME_MAX, &s);
    if (n == 0 || sd_gen_pcap_write(w, ts_ns, frame, n) < 0) {
        fprintf(stderr, "sd_gen_udp: cannot build or write a %zu-byte datagram\n", len);
        abort();
    }
    free(frame);
}
