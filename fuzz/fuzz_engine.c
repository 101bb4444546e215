/*
 * fuzz_engine.c - the whole censor on a sequence of packets: decode,
 * flows, inspection, rules, actions, expiry, policy swaps and the reports.
 *
 * Input layout (all numbers big-endian):
 *
 *   byte 0       policy (low 4 bits, modulo the harness table), explain (bit 4)
 *   then records, each a 4-byte header and a body:
 *     op         low 4 bits: what the record is (below)
 *     dt         time step before it: (dt & 63) units of 1 us, 1 ms, 100 ms
 *                or 10 s (dt >> 6), so the 60 s and 600 s timeouts are reached
 *     len[2]     body length (cut to what is left of the input)
 *
 *   op 0-9       a raw frame of link type dlts[op]
 *   op 10        a generated TCP segment (body: see struct shape)
 *   op 11        a generated UDP datagram; bit 7 of `mode` seals the payload
 *                as the CRYPTO data of a valid QUIC v1 client Initial
 *   op 12        sd_engine_expire at the current time
 *   op 13        sd_engine_set_policy(len % policies)
 *   op 14, 15    a raw Ethernet frame
 *
 * Generated packets (ops 10 and 11) let short inputs hold consistent flows:
 * the body starts with 5 bytes -- endpoints, TCP flags or UDP mode, a 16-bit
 * sequence (TCP) or CRYPTO (UDP) offset, a fragment size -- and the rest is
 * the payload. A non-zero fragment size cuts the packet into IP fragments of
 * 8 * (frag & 127) bytes, sent in reverse when bit 7 is set.
 *
 * Each input gets a fresh engine (harness.h), so findings replay alone.
 */
#include <stdlib.h>
#include <string.h>

#include "../tests/support/gen_quic.c"
#include "gen.h"
#include "harness.h"
#include "quic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MAX_FRAGS = 64, FRAG_CAP = 1600 };

struct feed {
    struct sd_engine *e;
    uint64_t now;
    unsigned pol;
};

static void feed_frame(struct feed *fd, int dlt, const uint8_t *frame, size_t len)
{
    struct sd_pkt p;
    struct sd_verdict v = {.kind = SD_V_PASS};
    if (sd_pkt_decode(&p, dlt, frame, len) != 0)
        return;
    sd_engine_packet(fd->e, &p, fd->now, &v);
    sd_harness_check_verdict(&v);
}

/* The endpoints of a generated packet, from one byte: client port (bits
 * 0-2), direction (bit 3, set = server to client), server (bits 4-5), an
 * outside client (bit 6), IP options or extension headers (bit 7). */
static void endpoints(struct sd_gen_pkt *s, uint8_t b, uint8_t proto)
{
    static const char *const servers[4] = {"203.0.113.5", "203.0.113.5", "2001:db8::5", "198.51.100.53"};
    static const uint16_t sports[4] = {443, 80, 443, 53};
    unsigned srv = (b >> 4) & 3;
    bool v6 = srv == 2;
    struct sd_gen_addr c = sd_gen_addr(v6 ? ((b & 0x40) ? "2001:db8:9::9" : "fd00::2")
                                          : ((b & 0x40) ? "198.51.100.9" : "10.0.0.2"));
    struct sd_gen_addr sv = sd_gen_addr(servers[srv]);
    uint16_t cport = (uint16_t)(40000 + (b & 7)), sport = sports[srv];
    if (proto == 6 && srv == 3)
        sport = 8080; /* the ipblock rule of the harness policy */
    bool s2c = b & 8;
    s->src = s2c ? sv : c;
    s->dst = s2c ? c : sv;
    s->sport = s2c ? sport : cport;
    s->dport = s2c ? cport : sport;
    s->proto = proto;
    s->ipv4_opts_len = (b & 0x80) && !v6 ? 8 : 0;
    s->ipv6_ext = (b & 0x80) && v6 ? 2 : 0;
}

/* Builds and feeds one generated packet, fragmented when asked. */
static void feed_generated(struct feed *fd, uint8_t op, const uint8_t *body, size_t n)
{
    static uint8_t frame[70000], sealed[70000];
    static uint8_t frags[MAX_FRAGS][FRAG_CAP];
    static const uint8_t dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    if (n < 5)
        return;
    struct sd_gen_pkt s;
    memset(&s, 0, sizeof(s));
    s.linktype = 101;
    endpoints(&s, body[0], op == 10 ? 6 : 17);
    bool s2c = body[0] & 8;
    uint16_t off = (uint16_t)(body[2] << 8 | body[3]);
    s.payload = body + 5;
    s.payload_len = n - 5;
    if (op == 10) {
        s.tcp_flags = body[1];
        s.seq = (s2c ? 900000u : 1000u) + off;
        s.ack = (s2c ? 1001u : 900001u);
        s.tcp_md5 = (body[1] & 0xc0) == 0xc0;
    } else if (body[1] & 0x80) {
        size_t q = sd_gen_quic_initial(sealed, sizeof(sealed), SD_QUIC_V1, dcid, sizeof(dcid), body[1] & 0x7f,
                                       body + 5, n - 5, (uint64_t)off, 1200);
        if (q == 0)
            return;
        s.payload = sealed;
        s.payload_len = q;
    }
    size_t len = sd_gen_frame(frame, sizeof(frame), &s);
    if (len == 0)
        return;
    uint8_t fsz = body[4];
    if ((fsz & 0x7f) == 0) {
        feed_frame(fd, SD_DLT_RAW_FILE, frame, len);
        return;
    }
    uint8_t *out[MAX_FRAGS];
    size_t out_len[MAX_FRAGS];
    for (int i = 0; i < MAX_FRAGS; i++)
        out[i] = frags[i];
    int k = sd_gen_fragment(frame, len, 101, 8u * (fsz & 0x7f), out, out_len, FRAG_CAP, MAX_FRAGS);
    for (int i = 0; i < k; i++) {
        int j = (fsz & 0x80) ? k - 1 - i : i;
        feed_frame(fd, SD_DLT_RAW_FILE, out[j], out_len[j]);
    }
}

static uint64_t step_ns(uint8_t dt)
{
    static const uint64_t unit[4] = {1000ull, 1000000ull, 100000000ull, 10000000000ull};
    return (uint64_t)(dt & 63) * unit[dt >> 6];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int dlts[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
    if (size < 1)
        return 0;
    struct feed fd = {.now = 1615366800000000000ull, .pol = data[0] & 15};
    bool why = data[0] & 0x10;
    struct sd_report *rep = sd_report_new();
    if (!rep)
        abort();
    fd.e = sd_harness_engine(sd_harness_policy(fd.pol), rep, why);
    const uint8_t *p = data + 1, *end = data + size;
    while (end - p >= 4) {
        uint8_t op = p[0] & 15, dt = p[1];
        size_t len = (size_t)(p[2] << 8 | p[3]);
        p += 4;
        if (len > (size_t)(end - p))
            len = (size_t)(end - p);
        fd.now += step_ns(dt);
        if (op < SD_COUNTOF(dlts))
            feed_frame(&fd, dlts[op], p, len);
        else if (op == 10 || op == 11)
            feed_generated(&fd, op, p, len);
        else if (op == 12)
            sd_engine_expire(fd.e, fd.now);
        else if (op == 13)
            sd_engine_set_policy(fd.e, sd_harness_policy((unsigned)len));
        else
            feed_frame(&fd, SD_DLT_EN10MB, p, len);
        if (op != 13)
            p += len;
    }
    sd_harness_finish(fd.e, rep, why);
    return 0;
}
