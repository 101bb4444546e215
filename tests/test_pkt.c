/*
 * test_pkt.c - the frame decoder, checksums and RST builder of pkt.c.
 *
 * Frames come from the generator (every link type, VLAN/QinQ, IPv4 options,
 * IPv6 extension chains, fragments, MD5) and from a few hand-written byte
 * arrays whose checksums were computed independently (Python), so a bug
 * shared by the generator and the decoder cannot hide. Every decode of a
 * truncated frame runs on bytes placed flush against a PROT_NONE page, so
 * a single byte of overread crashes the test.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bytes.h"
#include "gen.h"
#include "pkt.h"

/* ---- guard page ---- */

enum { GUARD_SPAN = 5 * 4096 };

struct guard {
    uint8_t *map;
    size_t pages; /* usable bytes before the guard page */
};

static void guard_init(struct guard *g)
{
    long ps = sysconf(_SC_PAGESIZE);
    g->pages = ((GUARD_SPAN + (size_t)ps - 1) / (size_t)ps) * (size_t)ps;
    g->map = mmap(NULL, g->pages + (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + g->pages, (size_t)ps, PROT_NONE), 0);
}

static void guard_free(struct guard *g)
{
    munmap(g->map, g->pages + (size_t)sysconf(_SC_PAGESIZE));
}

/* Copies |n| bytes so that the last one sits right before the guard page. */
static const uint8_t *guarded(struct guard *g, const uint8_t *src, size_t n)
{
    assert_true(n <= g->pages);
    uint8_t *p = g->map + g->pages - n;
    if (n)
        memcpy(p, src, n);
    return p;
}

/* ---- helpers ---- */

static const uint8_t hello[] = "hello, middlebox";

static struct sd_gen_pkt spec(int linktype, int family, uint8_t proto)
{
    struct sd_gen_pkt s;
    memset(&s, 0, sizeof(s));
    s.linktype = linktype;
    s.src = sd_gen_addr(family == 4 ? "192.0.2.10" : "2001:db8::10");
    s.dst = sd_gen_addr(family == 4 ? "198.51.100.20" : "2001:db8:1::20");
    s.proto = proto;
    s.sport = 40001;
    s.dport = 443;
    s.tcp_flags = SD_TCP_PSH | SD_TCP_ACK;
    s.seq = 0x01020304;
    s.ack = 0xa0b0c0d0;
    s.ttl = 57;
    s.ip_id = 0x4242;
    s.payload = hello;
    s.payload_len = sizeof(hello) - 1;
    return s;
}

static size_t build(uint8_t *buf, size_t cap, const struct sd_gen_pkt *s)
{
    size_t n = sd_gen_frame(buf, cap, s);
    assert_true(n > 0);
    return n;
}

/* Invariants every successful decode must satisfy. */
static void check_invariants(const struct sd_pkt *p, size_t caplen)
{
    assert_true(p->l3_off <= p->l4_off);
    assert_true(p->l4_off <= p->payload_off);
    assert_true((size_t)p->payload_off + p->payload_len <= caplen);
    assert_true(p->family == 4 || p->family == 6);
    assert_true(p->saddr >= p->frame && p->daddr + (p->family == 4 ? 4 : 16) <= p->frame + caplen);
    assert_true(p->n_vlan <= 2);
    if (!(p->flags & SD_PKT_L4))
        assert_true(p->sport == 0 && p->dport == 0);
}

static size_t link_len(int linktype, int n_vlan)
{
    switch (linktype) {
    case 1:
        return 14 + 4 * (size_t)n_vlan;
    case 113:
        return 16;
    case 276:
        return 20;
    case 0:
    case 108:
        return 4;
    default:
        return 0;
    }
}

/* ---- link types ---- */

static void check_decoded(const struct sd_pkt *p, const struct sd_gen_pkt *s, size_t n)
{
    size_t alen = s->src.family == 4 ? 4 : 16;
    check_invariants(p, n);
    assert_int_equal(p->l3_off, link_len(s->linktype, s->n_vlan));
    assert_int_equal(p->family, s->src.family);
    assert_int_equal(p->proto, s->proto);
    assert_int_equal(p->ttl, s->ttl);
    assert_memory_equal(p->saddr, s->src.a, alen);
    assert_memory_equal(p->daddr, s->dst.a, alen);
    assert_true(p->flags & SD_PKT_L4);
    assert_false(p->flags & (SD_PKT_TRUNCATED | SD_PKT_FRAG));
    assert_int_equal(p->sport, s->sport);
    assert_int_equal(p->dport, s->dport);
    assert_int_equal(p->ip_len, n - p->l3_off);
    assert_int_equal(p->ip_id, s->src.family == 4 ? s->ip_id : 0);
    struct sd_iov v = sd_pkt_payload(p);
    assert_int_equal(v.n, s->payload_len);
    assert_memory_equal(v.p, s->payload, s->payload_len);
    assert_true(sd_pkt_l4_csum_ok(p));
    if (s->proto == IPPROTO_TCP) {
        assert_int_equal(p->seq, s->seq);
        assert_int_equal(p->ack, s->ack);
        assert_int_equal(p->tcp_flags, s->tcp_flags);
        assert_int_equal(p->tcp_hlen, 20);
        assert_int_equal(p->tcp_win, 65535);
        assert_int_equal(p->payload_off, p->l4_off + 20);
    } else {
        assert_int_equal(p->payload_off, p->l4_off + 8);
    }
}

static void test_link_types(void **state)
{
    (void)state;
    static const int links[] = {1, 101, 113, 276, 0, 108, 12, 14, 228, 229};
    static const uint8_t protos[] = {IPPROTO_TCP, IPPROTO_UDP};
    uint8_t buf[256];
    struct sd_pkt p;
    for (size_t i = 0; i < SD_COUNTOF(links); i++) {
        for (int fam = 4; fam <= 6; fam += 2) {
            for (size_t k = 0; k < SD_COUNTOF(protos); k++) {
                struct sd_gen_pkt s = spec(links[i], fam, protos[k]);
                size_t n = build(buf, sizeof(buf), &s);
                int rc = sd_pkt_decode(&p, links[i], buf, n);
                if ((links[i] == 228 && fam == 6) || (links[i] == 229 && fam == 4)) {
                    assert_int_equal(rc, SD_EPROTO); /* version mismatch */
                    continue;
                }
                assert_int_equal(rc, 0);
                check_decoded(&p, &s, n);
            }
        }
    }
}

static void test_vlan(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct sd_pkt p;
    struct sd_gen_pkt s = spec(1, 4, IPPROTO_TCP);
    s.n_vlan = 1;
    s.vlan[0] = 100;
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), 0);
    check_decoded(&p, &s, n);
    assert_int_equal(p.n_vlan, 1);
    assert_int_equal(p.vlan[0], 100);

    s = spec(1, 6, IPPROTO_UDP);
    s.n_vlan = 2;
    s.vlan[0] = 4000;
    s.vlan[1] = 7;
    n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_rd16be(buf + 12), 0x88a8);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), 0);
    check_decoded(&p, &s, n);
    assert_int_equal(p.n_vlan, 2);
    assert_int_equal(p.vlan[0], 4000);
    assert_int_equal(p.vlan[1], 7);
}

/* Builds an Ethernet frame with |ntags| tags (TPIDs cycling through the three
 * accepted ones, priority bits set) in front of a generated IPv4 packet. */
static size_t eth_tags(uint8_t *out, int ntags)
{
    static const uint16_t tpid[] = {0x9100, 0x88a8, 0x8100};
    uint8_t raw[128];
    struct sd_gen_pkt s = spec(101, 4, IPPROTO_TCP);
    size_t n = build(raw, sizeof(raw), &s);
    uint8_t *p = out;
    memset(p, 0xee, 12);
    p += 12;
    for (int i = 0; i < ntags; i++) {
        p = sd_put16be(p, tpid[i % 3]);
        p = sd_put16be(p, (uint16_t)(0xe000 | (10 + i)));
    }
    p = sd_put16be(p, 0x0800);
    memcpy(p, raw, n);
    return (size_t)(p - out) + n;
}

static void test_vlan_deep(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct sd_pkt p;
    for (int t = 3; t <= 4; t++) {
        size_t n = eth_tags(buf, t);
        assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), 0);
        assert_int_equal(p.n_vlan, 2);
        assert_int_equal(p.vlan[0], 10);
        assert_int_equal(p.vlan[1], 11);
        assert_int_equal(p.l3_off, 14 + 4 * t);
        assert_true(sd_pkt_l4_csum_ok(&p));
    }
    size_t n = eth_tags(buf, 5);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), SD_ENOTSUP);
}

static void test_not_ip(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct sd_pkt p;
    struct sd_gen_pkt s = spec(1, 4, IPPROTO_TCP);
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, 105, buf, n), SD_ENOTSUP); /* 802.11 */
    sd_put16be(buf + 12, 0x0806);                                 /* ARP */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), SD_ENOTSUP);
    sd_put16be(buf + 12, 0x86dd); /* says IPv6, carries IPv4 */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), SD_EPROTO);

    /* NULL: either byte order; unknown families are not IP. */
    s = spec(0, 6, IPPROTO_UDP);
    n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_NULL, buf, n), 0);
    memcpy(buf, "\x00\x00\x00\x1e", 4); /* 30 (macOS AF_INET6), big-endian host */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_NULL, buf, n), 0);
    assert_int_equal(p.family, 6);
    memcpy(buf, "\x07\x00\x00\x00", 4);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_NULL, buf, n), SD_ENOTSUP);
    /* LOOP is network order only. */
    memcpy(buf, "\x1c\x00\x00\x00", 4);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_LOOP, buf, n), SD_ENOTSUP);
    memcpy(buf, "\x00\x00\x00\x1c", 4);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_LOOP, buf, n), 0);

    /* Raw IP with a version nibble that is neither 4 nor 6. */
    s = spec(101, 4, IPPROTO_TCP);
    n = build(buf, sizeof(buf), &s);
    buf[0] = 0x55;
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), SD_EPROTO);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, 0), SD_EPROTO);
}

/* ---- hand-written frames (checksums computed outside this code base) ---- */

/* SLL2, outgoing, IPv4/UDP 10.0.0.1:53000 -> 8.8.8.8:53, a DNS query for
 * example.com A; UDP checksum 0x34b4. */
static const uint8_t sll2_udp[] = {
    0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x04, 0x06, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
    0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x04, 0x5e, 0x0a, 0x00, 0x00, 0x01, 0x08, 0x08, 0x08, 0x08,
    0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0x34, 0xb4, 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
};

/* Raw IPv4 SYN 192.0.2.1:40000 -> 198.51.100.7:443 with MSS, SACK-permitted,
 * timestamps, NOP, window scale; TCP checksum 0x18ea. */
static const uint8_t raw_syn_ts[] = {
    0x45, 0x00, 0x00, 0x3c, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x4e, 0x7f, 0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x07,
    0x9c, 0x40, 0x01, 0xbb, 0xa1, 0xb2, 0xc3, 0xd4, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x18, 0xea, 0x00, 0x00,
    0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

static void test_hand_sll2(void **state)
{
    (void)state;
    struct sd_pkt p;
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_LINUX_SLL2, sll2_udp, sizeof(sll2_udp)), 0);
    assert_int_equal(p.l3_off, 20);
    assert_int_equal(p.l4_off, 40);
    assert_int_equal(p.family, 4);
    assert_int_equal(p.proto, IPPROTO_UDP);
    assert_int_equal(p.ip_len, 57);
    assert_int_equal(p.ip_id, 0x1c46);
    assert_int_equal(p.ttl, 64);
    assert_int_equal(p.sport, 53000);
    assert_int_equal(p.dport, 53);
    assert_int_equal(p.payload_off, 48);
    assert_int_equal(p.payload_len, 29);
    assert_memory_equal(p.daddr, "\x08\x08\x08\x08", 4);
    assert_int_equal(p.flags, SD_PKT_L4);
    assert_true(sd_pkt_l4_csum_ok(&p));

    /* Recomputing must reproduce the independently computed checksums. */
    uint8_t ip[sizeof(sll2_udp) - 20];
    memcpy(ip, sll2_udp + 20, sizeof(ip));
    memset(ip + 10, 0xaa, 2);
    memset(ip + 26, 0xbb, 2);
    assert_int_equal(sd_pkt_fix_csums(ip, sizeof(ip)), 0);
    assert_memory_equal(ip, sll2_udp + 20, sizeof(ip));
}

static void test_hand_syn_options(void **state)
{
    (void)state;
    struct sd_pkt p;
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW_FILE, raw_syn_ts, sizeof(raw_syn_ts)), 0);
    assert_int_equal(p.tcp_flags, SD_TCP_SYN);
    assert_int_equal(p.tcp_hlen, 40);
    assert_int_equal(p.tcp_win, 64240);
    assert_int_equal(p.seq, 0xa1b2c3d4);
    assert_int_equal(p.payload_len, 0);
    assert_null(sd_pkt_payload(&p).p);
    assert_int_equal(p.flags, SD_PKT_L4 | SD_PKT_TCP_TS);
    assert_true(sd_pkt_l4_csum_ok(&p));

    uint8_t ip[sizeof(raw_syn_ts)];
    memcpy(ip, raw_syn_ts, sizeof(ip));
    memset(ip + 36, 0, 2);
    assert_false(sd_pkt_decode(&p, SD_DLT_RAW, ip, sizeof(ip)) == 0 && sd_pkt_l4_csum_ok(&p));
    assert_int_equal(sd_pkt_fix_csums(ip, sizeof(ip)), 0);
    assert_memory_equal(ip, raw_syn_ts, sizeof(ip));
}

/* ---- truncation ---- */

/* Decodes every prefix of |frame| against the guard page. A prefix that cuts
 * a header must fail with SD_EPROTO; one that only cuts payload decodes with
 * SD_PKT_TRUNCATED and payload_len = what is left. */
static void check_prefixes(struct guard *g, int dlt, const uint8_t *frame, size_t n)
{
    struct sd_pkt full, p;
    assert_int_equal(sd_pkt_decode(&full, dlt, frame, n), 0);
    size_t hdr_end = full.payload_off;
    for (size_t len = 0; len < n; len++) {
        const uint8_t *f = guarded(g, frame, len);
        int rc = sd_pkt_decode(&p, dlt, f, len);
        if (len < hdr_end) {
            assert_int_equal(rc, SD_EPROTO);
            continue;
        }
        assert_int_equal(rc, 0);
        check_invariants(&p, len);
        assert_true(p.flags & SD_PKT_TRUNCATED);
        assert_int_equal(p.payload_len, len - hdr_end);
        assert_int_equal(p.ip_len, full.ip_len);
        assert_false(sd_pkt_l4_csum_ok(&p));
        uint8_t rst[128];
        assert_true(sd_pkt_build_rst(rst, sizeof(rst), &p) > 0 || full.proto != IPPROTO_TCP);
    }
    assert_int_equal(sd_pkt_decode(&p, dlt, guarded(g, frame, n), n), 0);
    assert_false(p.flags & SD_PKT_TRUNCATED);
    assert_true(sd_pkt_l4_csum_ok(&p));
}

static void test_truncated_everywhere(void **state)
{
    (void)state;
    static const int links[] = {1, 101, 113, 276, 0, 108};
    struct guard g;
    uint8_t buf[512];
    guard_init(&g);
    for (size_t i = 0; i < SD_COUNTOF(links); i++) {
        for (int fam = 4; fam <= 6; fam += 2) {
            for (int variant = 0; variant < 3; variant++) {
                struct sd_gen_pkt s = spec(links[i], fam, variant == 1 ? IPPROTO_UDP : IPPROTO_TCP);
                if (variant == 2) {
                    s.tcp_md5 = true;
                    s.ipv4_opts_len = fam == 4 ? 12 : 0;
                    s.ipv6_ext = fam == 6 ? 3 : 0;
                    s.n_vlan = links[i] == 1 ? 2 : 0;
                }
                size_t n = build(buf, sizeof(buf), &s);
                check_prefixes(&g, links[i], buf, n);
            }
        }
    }
    check_prefixes(&g, SD_DLT_LINUX_SLL2, sll2_udp, sizeof(sll2_udp));
    check_prefixes(&g, SD_DLT_RAW, raw_syn_ts, sizeof(raw_syn_ts));
    guard_free(&g);
}

static void test_eth_padding(void **state)
{
    (void)state;
    uint8_t buf[128];
    struct sd_pkt p;
    struct sd_gen_pkt s = spec(1, 4, IPPROTO_TCP);
    s.payload = (const uint8_t *)"ab";
    s.payload_len = 2;
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(n, 56);
    memset(buf + n, 0, 60 - n); /* pad to the Ethernet minimum */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, 60), 0);
    assert_int_equal(p.payload_len, 2);
    assert_int_equal(p.ip_len, 42);
    assert_false(p.flags & SD_PKT_TRUNCATED);
    assert_true(sd_pkt_l4_csum_ok(&p));

    s = spec(1, 4, IPPROTO_UDP);
    s.payload_len = 0;
    n = build(buf, sizeof(buf), &s);
    memset(buf + n, 0x55, 60 - n);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, 60), 0);
    assert_int_equal(p.payload_len, 0);
    assert_true(sd_pkt_l4_csum_ok(&p));
}

/* ---- IPv4 ---- */

static void test_ipv4_header(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct sd_pkt p;
    struct sd_gen_pkt s = spec(101, 4, IPPROTO_TCP);
    s.ipv4_opts_len = 40;
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.l4_off, 60);
    assert_true(p.flags & SD_PKT_IP_OPTS);
    check_decoded(&p, &s, n);

    uint8_t b2[256];
    memcpy(b2, buf, n);
    b2[0] = 0x44; /* IHL 4 */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, b2, n), SD_EPROTO);
    b2[0] = 0x4f;
    sd_put16be(b2 + 2, 59); /* total length below the header */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, b2, n), SD_EPROTO);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, b2, 59), SD_EPROTO); /* IHL past caplen */

    /* TSO capture: total length 0 means "as captured". */
    s = spec(101, 4, IPPROTO_TCP);
    n = build(buf, sizeof(buf), &s);
    sd_put16be(buf + 2, 0);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.ip_len, n);
    assert_int_equal(p.payload_len, s.payload_len);

    /* Total length beyond the capture: payload cut, flag set. */
    n = build(buf, sizeof(buf), &s);
    sd_put16be(buf + 2, (uint16_t)(n + 100));
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_true(p.flags & SD_PKT_TRUNCATED);
    assert_int_equal(p.payload_len, s.payload_len);
    assert_int_equal(p.ip_len, n + 100);
}

static void test_tcp_header(void **state)
{
    (void)state;
    struct guard g;
    uint8_t buf[256];
    struct sd_pkt p;
    guard_init(&g);
    struct sd_gen_pkt s = spec(101, 4, IPPROTO_TCP);
    s.tcp_md5 = true;
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.tcp_hlen, 40);
    assert_int_equal(p.flags, SD_PKT_L4 | SD_PKT_TCP_MD5);
    assert_true(sd_pkt_l4_csum_ok(&p));

    buf[32] = 0x40; /* data offset 4 */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), SD_EPROTO);

    /* Options that lie about their length end the walk, never overread:
     * a header with no payload, its last option byte flush with the guard. */
    s.payload_len = 0;
    s.tcp_md5 = false;
    uint8_t raw[128];
    n = build(raw, sizeof(raw), &s);
    memcpy(buf, raw, n);
    buf[32] = 0x60; /* 24-byte header, options appended */
    sd_put16be(buf + 2, (uint16_t)(n + 4));
    static const uint8_t opts[][4] = {
        {1, 1, 1, 8},   /* TS kind in the last byte, no length */
        {8, 10, 0, 0},  /* TS claiming 10 bytes in a 4-byte area */
        {19, 0, 0, 0},  /* length 0 */
        {19, 1, 8, 10}, /* length 1 */
        {1, 8, 2, 19},  /* TS fits (len 2), then kind 19 without length */
        {0, 8, 10, 0},  /* EOL ends the list before a would-be TS */
    };
    for (size_t i = 0; i < SD_COUNTOF(opts); i++) {
        memcpy(buf + n, opts[i], 4);
        assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, guarded(&g, buf, n + 4), n + 4), 0);
        assert_int_equal(p.tcp_hlen, 24);
        assert_int_equal(p.flags & SD_PKT_TCP_MD5, 0);
        assert_int_equal(!!(p.flags & SD_PKT_TCP_TS), i == 4);
    }
    guard_free(&g);
}

static void test_udp_length(void **state)
{
    (void)state;
    uint8_t buf[256];
    struct sd_pkt p;
    struct sd_gen_pkt s = spec(1, 4, IPPROTO_UDP);
    size_t n = build(buf, sizeof(buf), &s);
    size_t ul = 14 + 20 + 4;
    sd_put16be(buf + ul, 7);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), SD_EPROTO);
    sd_put16be(buf + ul, (uint16_t)(8 + s.payload_len + 1));
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), SD_EPROTO);
    /* A UDP length shorter than the IP payload trims the payload. */
    sd_put16be(buf + ul, 8 + 5);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), 0);
    assert_int_equal(p.payload_len, 5);
    assert_int_equal(sd_pkt_fix_csums(buf + 14, n - 14), 0);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_EN10MB, buf, n), 0);
    assert_true(sd_pkt_l4_csum_ok(&p));
}

/* ---- IPv6 ---- */

static void test_ipv6_chain(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct sd_pkt p;
    for (int ext = 0; ext <= 9; ext++) {
        struct sd_gen_pkt s = spec(113, 6, IPPROTO_TCP);
        s.ipv6_ext = ext;
        size_t n = build(buf, sizeof(buf), &s);
        int rc = sd_pkt_decode(&p, SD_DLT_LINUX_SLL, buf, n);
        if (ext > 8) {
            assert_int_equal(rc, SD_EPROTO);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(p.l4_off, 16 + 40 + 8 * ext);
        assert_int_equal(!!(p.flags & SD_PKT_IP_OPTS), ext > 0);
        check_decoded(&p, &s, n);
    }

    /* ESP ends the chain: proto 50, no transport header. */
    struct sd_gen_pkt s = spec(101, 6, 50);
    s.ipv6_ext = 1;
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.proto, 50);
    assert_int_equal(p.flags, SD_PKT_IP_OPTS);
    assert_int_equal(p.payload_off, 48);
    assert_int_equal(p.payload_len, s.payload_len);
    assert_false(sd_pkt_l4_csum_ok(&p));
    uint8_t rst[128];
    assert_int_equal(sd_pkt_build_rst(rst, sizeof(rst), &p), SD_EINVAL);
    buf[40] = 59; /* no next header */
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.proto, 59);

    /* AH: length in 4-byte units minus 2. Turn the hop-by-hop header into a
     * 16-byte AH followed by TCP. */
    s = spec(101, 6, IPPROTO_TCP);
    s.ipv6_ext = 2;
    n = build(buf, sizeof(buf), &s);
    buf[6] = 51;
    buf[40] = IPPROTO_TCP;
    buf[41] = 2;
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.proto, IPPROTO_TCP);
    assert_int_equal(p.l4_off, 56);
    assert_true(sd_pkt_l4_csum_ok(&p));

    /* An extension header longer than the packet. */
    buf[41] = 200;
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), SD_EPROTO);

    /* Payload length 0 (jumbogram or GSO): as captured. */
    s = spec(101, 6, IPPROTO_UDP);
    n = build(buf, sizeof(buf), &s);
    sd_put16be(buf + 4, 0);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_int_equal(p.ip_len, n);
    assert_int_equal(p.payload_len, s.payload_len);
}

/* ---- fragments ---- */

/* Fragments |frame| and checks every fragment decodes as the contract says,
 * and that the fragment data put back together is the original IP payload.
 * Non-first fragments carry |later_proto| (the header after the fragment
 * header for IPv6). */
static void check_fragments(int dlt, const uint8_t *frame, size_t n, size_t fsize, int expect, size_t unfrag, uint8_t later_proto)
{
    uint8_t store[8][2048], *out[8], joined[4096];
    size_t lens[8], total = 0;
    struct sd_pkt orig, p;
    for (int i = 0; i < 8; i++)
        out[i] = store[i];
    assert_int_equal(sd_pkt_decode(&orig, dlt, frame, n), 0);
    int nf = sd_gen_fragment(frame, n, dlt, fsize, out, lens, sizeof(store[0]), 8);
    assert_int_equal(nf, expect);
    assert_int_equal(sd_gen_fragment(frame, n, dlt, fsize, out, lens, sizeof(store[0]), expect - 1), 0);
    uint32_t id = 0;
    for (int i = 0; i < nf; i++) {
        assert_int_equal(sd_pkt_decode(&p, dlt, out[i], lens[i]), 0);
        check_invariants(&p, lens[i]);
        assert_true(p.flags & SD_PKT_FRAG);
        assert_int_equal(!!(p.flags & SD_PKT_FRAG_MF), i + 1 < nf);
        assert_int_equal(!!(p.flags & SD_PKT_L4), i == 0);
        assert_int_equal(p.proto, i == 0 ? orig.proto : later_proto);
        assert_false(sd_pkt_l4_csum_ok(&p));
        assert_int_equal(p.frag_off, total);
        if (i == 0)
            id = p.frag_id;
        assert_int_equal(p.frag_id, id);
        assert_int_equal(p.ip_id, orig.family == 4 ? orig.ip_id : 0);
        /* Fragment data follows the per-fragment headers (plus the IPv6
         * fragment header); in later fragments that is l4_off. */
        size_t start = i ? p.l4_off : p.l3_off + unfrag + (p.family == 6 ? 8 : 0);
        size_t part = lens[i] - start;
        memcpy(joined + total, out[i] + start, part);
        total += part;
        if (i > 0) {
            assert_int_equal(p.sport, 0);
            assert_int_equal(p.payload_off, p.l4_off);
            assert_int_equal(p.payload_len, part);
        } else {
            assert_int_equal(p.sport, orig.sport);
            assert_int_equal(p.dport, orig.dport);
        }
        uint8_t copy[2048];
        memcpy(copy, out[i] + p.l3_off, lens[i] - p.l3_off);
        assert_int_equal(sd_pkt_fix_csums(copy, lens[i] - p.l3_off), SD_EPROTO);
        if (p.family == 4) /* the fragmenter wrote a valid header checksum */
            assert_int_equal(sd_csum_fold(sd_csum_add(0, out[i] + p.l3_off, p.l4_off - p.l3_off)), 0);
    }
    assert_int_equal(total, n - orig.l3_off - unfrag);
    assert_memory_equal(joined, frame + orig.l3_off + unfrag, total);
}

static void test_fragments_v4(void **state)
{
    (void)state;
    uint8_t payload[3000], buf[4096];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    struct sd_gen_pkt s = spec(1, 4, IPPROTO_UDP);
    s.payload = payload;
    s.payload_len = sizeof(payload);
    size_t n = build(buf, sizeof(buf), &s);
    check_fragments(1, buf, n, 1000, 4, 20, IPPROTO_UDP); /* 3008 bytes of UDP: 1000 x 3 + 8 */

    /* Options: the first fragment keeps them all, later ones only the
     * "copied" ones (NOP and EOL are not). */
    s = spec(101, 4, IPPROTO_TCP);
    s.ipv4_opts_len = 8;
    s.payload = payload;
    s.payload_len = 100;
    n = build(buf, sizeof(buf), &s);
    check_fragments(101, buf, n, 64, 2, 28, IPPROTO_TCP);
    uint8_t a[256], b[256], *out[2] = {a, b};
    size_t lens[2];
    assert_int_equal(sd_gen_fragment(buf, n, 101, 64, out, lens, 256, 2), 2);
    assert_int_equal(a[0], 0x47);
    assert_int_equal(b[0], 0x45);

    /* A first fragment too short for the TCP header has no L4, no error. */
    assert_int_equal(sd_gen_fragment(buf, n, 101, 8, out, lens, 256, 2), 0);
    uint8_t *many[16], store[16][64];
    size_t ml[16];
    for (int i = 0; i < 16; i++)
        many[i] = store[i];
    assert_int_equal(sd_gen_fragment(buf, n, 101, 8, many, ml, 64, 16), 15);
    struct sd_pkt p;
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, many[0], ml[0]), 0);
    assert_int_equal(p.flags & (SD_PKT_FRAG | SD_PKT_L4 | SD_PKT_FRAG_MF), SD_PKT_FRAG | SD_PKT_FRAG_MF);
    assert_int_equal(p.payload_len, 8);
    assert_int_equal(p.proto, IPPROTO_TCP);
}

static void test_fragments_v6(void **state)
{
    (void)state;
    uint8_t payload[2500], buf[4096];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 13 + 1);
    struct sd_gen_pkt s = spec(276, 6, IPPROTO_TCP);
    s.payload = payload;
    s.payload_len = sizeof(payload);
    size_t n = build(buf, sizeof(buf), &s);
    check_fragments(276, buf, n, 1280, 2, 40, IPPROTO_TCP);

    /* Hop-by-hop and routing stay in front of the fragment header; the
     * destination options after the routing header travel fragmented. */
    s.ipv6_ext = 3;
    n = build(buf, sizeof(buf), &s);
    check_fragments(276, buf, n, 1000, 3, 40 + 16, 60);
    uint8_t store[3][2048], *out[3] = {store[0], store[1], store[2]};
    size_t lens[3];
    assert_int_equal(sd_gen_fragment(buf, n, 276, 1000, out, lens, 2048, 3), 3);
    struct sd_pkt p;
    assert_int_equal(sd_pkt_decode(&p, 276, out[1], lens[1]), 0);
    assert_int_equal(p.l4_off, 20 + 40 + 16 + 8);
    assert_int_equal(p.proto, 60); /* the header after the fragment header */
    assert_int_equal(p.frag_off, 1000);

    /* An atomic fragment (offset 0, M clear) is a whole packet. */
    s = spec(101, 6, IPPROTO_UDP);
    n = build(buf, sizeof(buf), &s);
    uint8_t at[256];
    memcpy(at, buf, 40);
    at[6] = 44;
    sd_put16be(at + 4, (uint16_t)(sd_rd16be(buf + 4) + 8));
    memcpy(at + 40, "\x11\x00\x00\x00\x12\x34\x56\x78", 8);
    memcpy(at + 48, buf + 40, n - 40);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, at, n + 8), 0);
    assert_int_equal(p.flags, SD_PKT_L4 | SD_PKT_IP_OPTS);
    assert_int_equal(p.frag_id, 0);
    assert_true(sd_pkt_l4_csum_ok(&p));
}

/* ---- checksums ---- */

static void test_csum_helpers(void **state)
{
    (void)state;
    /* RFC 1071 section 3 example: the sum is 0xddf2 (carries folded). */
    static const uint8_t v[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    assert_int_equal(sd_csum_fold(sd_csum_add(0, v, sizeof(v))), (uint16_t)~0xddf2);
    /* Pieces of even length chain; an odd tail is padded with zero. */
    assert_int_equal(sd_csum_fold(sd_csum_add(sd_csum_add(0, v, 2), v + 2, 6)), (uint16_t)~0xddf2);
    assert_int_equal(sd_csum_fold(sd_csum_add(0, v, 3)), (uint16_t) ~(0x0001 + 0xf200));
    assert_int_equal(sd_csum_fold(0), 0xffff);
    /* Large inputs do not overflow: 64 KB of 0xff sums to 0xffff. */
    uint8_t ff[65536];
    memset(ff, 0xff, sizeof(ff));
    assert_int_equal(sd_csum_fold(sd_csum_add(0xffffffffu, ff, sizeof(ff))), 0);
}

static void test_csum_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[512];
    struct sd_pkt p;
    for (int fam = 4; fam <= 6; fam += 2) {
        for (int proto = 0; proto < 2; proto++) {
            struct sd_gen_pkt s = spec(1, fam, proto ? IPPROTO_UDP : IPPROTO_TCP);
            s.bad_csum = true;
            s.ipv4_opts_len = 4;
            s.ipv6_ext = 2;
            size_t n = build(buf, sizeof(buf), &s);
            assert_int_equal(sd_pkt_decode(&p, 1, buf, n), 0);
            assert_false(sd_pkt_l4_csum_ok(&p));
            assert_int_equal(sd_pkt_fix_csums(buf + 14, n - 14), 0);
            assert_int_equal(sd_pkt_decode(&p, 1, buf, n), 0);
            assert_true(sd_pkt_l4_csum_ok(&p));
            if (fam == 4)
                assert_int_equal(sd_csum_fold(sd_csum_add(0, buf + 14, 24)), 0);
            buf[n - 1] ^= 0x01; /* one payload bit */
            assert_int_equal(sd_pkt_decode(&p, 1, buf, n), 0);
            assert_false(sd_pkt_l4_csum_ok(&p));
            assert_int_equal(sd_pkt_fix_csums(buf + 14, n - 14), 0);
            assert_int_equal(sd_pkt_decode(&p, 1, buf, n), 0);
            assert_true(sd_pkt_l4_csum_ok(&p));
            /* UDP checksum 0: "none" over IPv4, invalid over IPv6. */
            if (proto) {
                sd_put16be(buf + p.l4_off + 6, 0);
                assert_int_equal(sd_pkt_decode(&p, 1, buf, n), 0);
                assert_int_equal(sd_pkt_l4_csum_ok(&p), fam == 4);
            }
        }
    }
    assert_int_equal(sd_pkt_fix_csums(buf, 10), SD_EPROTO);
    struct sd_gen_pkt s = spec(101, 4, IPPROTO_TCP);
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_fix_csums(buf, n - 1), SD_EPROTO); /* truncated */

    /* A UDP sum that computes to 0 is sent as 0xffff: make the payload
     * word equal to the checksum of a zero payload, which cancels it. */
    static const uint8_t zero2[2];
    s = spec(101, 4, IPPROTO_UDP);
    s.payload = zero2;
    s.payload_len = 2;
    n = build(buf, sizeof(buf), &s);
    memcpy(buf + 28, buf + 26, 2);
    assert_int_equal(sd_pkt_fix_csums(buf, n), 0);
    assert_int_equal(sd_rd16be(buf + 26), 0xffff);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, buf, n), 0);
    assert_true(sd_pkt_l4_csum_ok(&p));

    /* No transport header: only the IPv4 header sum is fixed. */
    s = spec(101, 4, 50);
    n = build(buf, sizeof(buf), &s);
    memset(buf + 10, 0, 2);
    buf[n - 1] ^= 0xff;
    assert_int_equal(sd_pkt_fix_csums(buf, n), 0);
    assert_int_equal(sd_csum_fold(sd_csum_add(0, buf, 20)), 0);
}

/* ---- RST ---- */

static void check_rst(int fam)
{
    uint8_t buf[256], rst[128];
    struct sd_pkt orig, p;
    struct sd_gen_pkt s = spec(1, fam, IPPROTO_TCP);
    s.n_vlan = 1;
    s.vlan[0] = 5;
    s.tcp_md5 = true;
    s.ipv6_ext = 1;
    s.ipv4_opts_len = 8;
    size_t n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&orig, 1, buf, n), 0);
    size_t want = fam == 4 ? 40 : 60;
    assert_int_equal(sd_pkt_build_rst(rst, want - 1, &orig), SD_ERANGE);
    assert_int_equal(sd_pkt_build_rst(rst, want, &orig), (int)want);
    assert_int_equal(sd_pkt_decode(&p, SD_DLT_RAW, rst, want), 0);
    assert_int_equal(p.family, fam);
    assert_int_equal(p.flags, SD_PKT_L4);
    assert_int_equal(p.tcp_flags, SD_TCP_RST | SD_TCP_ACK);
    assert_int_equal(p.seq, s.seq);
    assert_int_equal(p.ack, s.ack);
    assert_int_equal(p.sport, s.sport);
    assert_int_equal(p.dport, s.dport);
    assert_int_equal(p.ttl, s.ttl);
    assert_int_equal(p.ip_id, fam == 4 ? s.ip_id : 0);
    assert_int_equal(p.ip_len, want);
    assert_int_equal(p.tcp_hlen, 20);
    assert_int_equal(p.payload_len, 0);
    assert_memory_equal(p.saddr, s.src.a, fam == 4 ? 4 : 16);
    assert_memory_equal(p.daddr, s.dst.a, fam == 4 ? 4 : 16);
    assert_true(sd_pkt_l4_csum_ok(&p));
    if (fam == 4)
        assert_int_equal(sd_csum_fold(sd_csum_add(0, rst, 20)), 0);

    s.proto = IPPROTO_UDP;
    n = build(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&orig, 1, buf, n), 0);
    assert_int_equal(sd_pkt_build_rst(rst, sizeof(rst), &orig), SD_EINVAL);
}

static void test_rst(void **state)
{
    (void)state;
    check_rst(4);
    check_rst(6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_types),
        cmocka_unit_test(test_vlan),
        cmocka_unit_test(test_vlan_deep),
        cmocka_unit_test(test_not_ip),
        cmocka_unit_test(test_hand_sll2),
        cmocka_unit_test(test_hand_syn_options),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_eth_padding),
        cmocka_unit_test(test_ipv4_header),
        cmocka_unit_test(test_tcp_header),
        cmocka_unit_test(test_udp_length),
        cmocka_unit_test(test_ipv6_chain),
        cmocka_unit_test(test_fragments_v4),
        cmocka_unit_test(test_fragments_v6),
        cmocka_unit_test(test_csum_helpers),
        cmocka_unit_test(test_csum_roundtrip),
        cmocka_unit_test(test_rst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
