/*
 * tool_fuzzseeds.c - writes the seed corpora of fuzz_pcap and fuzz_engine
 * (sd-fuzzseeds GOLDEN_DIR OUT_DIR; fuzz/README.md says when to run it).
 *
 * GOLDEN_DIR holds the captures sd-gencaps writes. A few are cut to their
 * first records (a handshake, the ClientHello, the start of the reply): a
 * seed of a few KB per kind of capture (names, split hellos, HTTP and DNS,
 * cooked and raw link types, IPv6).
 * Beside them come captures the golden set lacks: a QUIC Initial split over
 * two datagrams, a ClientHello cut into tiny IP fragments, the same flow as
 * pcapng with nanosecond timestamps and as a nanosecond classic pcap.
 *
 * OUT_DIR/pcap/ gets the captures (fuzz_pcap inputs as they are);
 * OUT_DIR/engine/ gets each capture re-encoded as fuzz_engine records (op =
 * the link type's index, dt the nearest step) plus flows written with the
 * generated-packet ops, which reach the QUIC decryptor and the fragment
 * path with a few hundred bytes. The layouts are those documented at the
 * top of fuzz/fuzz_engine.c and fuzz/fuzz_pcap.c.
 */
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "gen.h"
#include "gen_quic.h"
#include "pkt.h"
#include "quic.h"

#define T0 1615366800000000000ULL /* 2021-03-10 09:00 UTC */
#define MS 1000000ULL

static const char *out_dir;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static FILE *out_file(const char *sub, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path);
    return f;
}

static void close_file(FILE *f)
{
    if (fclose(f) != 0)
        die("write");
}

/* ---- fuzz_engine records ---- */

static int dlt_index(int dlt)
{
    static const int dlts[] = {0, 1, 12, 14, 101, 108, 113, 228, 229, 276};
    for (int i = 0; i < (int)SD_COUNTOF(dlts); i++)
        if (dlts[i] == dlt)
            return i;
    return -1;
}

/* The dt byte closest to (not above) |ns|. */
static uint8_t dt_byte(uint64_t ns)
{
    static const uint64_t unit[4] = {1000ull, 1000000ull, 100000000ull, 10000000000ull};
    for (int s = 3; s >= 0; s--)
        if (ns >= unit[s])
            return (uint8_t)(s << 6 | SD_MIN(ns / unit[s], 63));
    return 0;
}

static void record(FILE *f, uint8_t op, uint8_t dt, const uint8_t *body, size_t n)
{
    uint8_t h[4] = {op, dt, (uint8_t)(n >> 8), (uint8_t)n};
    if (fwrite(h, 4, 1, f) != 1 || (n && fwrite(body, n, 1, f) != 1))
        die("write");
}

/* A generated-packet record: endpoints byte, flags/mode, offset, fragment
 * size, payload. */
static void gen_record(FILE *f, uint8_t op, uint8_t dt, uint8_t ep, uint8_t fl, uint16_t off, uint8_t frag,
                       const uint8_t *pl, size_t n)
{
    uint8_t body[4096];
    if (n + 5 > sizeof(body))
        exit(2);
    body[0] = ep;
    body[1] = fl;
    sd_put16be(body + 2, off);
    body[4] = frag;
    if (n)
        memcpy(body + 5, pl, n);
    record(f, op, dt, body, n + 5);
}

/* ---- captures ---- */

/* Copies the first |keep| records of |in| to OUT_DIR/pcap/|name| and, as
 * records with policy byte |pol|, to OUT_DIR/engine/|name| if |engine|. */
static void trim(const char *in, const char *name, int keep, uint8_t pol, bool engine)
{
    char err[PCAP_ERRBUF_SIZE], path[1024];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) {
        fprintf(stderr, "sd-fuzzseeds: %s: %s\n", in, err);
        exit(1);
    }
    int dlt = pcap_datalink(pc);
    snprintf(path, sizeof(path), "%s/pcap/%s", out_dir, name);
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, dlt);
    FILE *e = engine ? out_file("engine", name) : fopen("/dev/null", "wb");
    if (!w || !e || dlt_index(dlt) < 0)
        die(path);
    fputc(pol, e);
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t prev = 0;
    for (int i = 0; i < keep && pcap_next_ex(pc, &h, &data) == 1; i++) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        if (sd_gen_pcap_write(w, ts, data, h->caplen) < 0)
            die(path);
        record(e, (uint8_t)dlt_index(dlt), i ? dt_byte(ts - prev) : 0, data, h->caplen);
        prev = ts;
    }
    pcap_close(pc);
    if (sd_gen_pcap_close(w) != 0)
        die(path);
    close_file(e);
}

static size_t client_hello(uint8_t *buf, size_t cap, const char *sni, bool record_layer)
{
    struct sd_gen_hello h = {.sni = sni, .alpn = {"h2", "http/1.1", NULL}};
    size_t n = record_layer ? sd_gen_client_hello_record(buf, cap, &h) : sd_gen_client_hello(buf, cap, &h);
    if (n == 0)
        exit(2);
    return n;
}

/* A QUIC client Initial whose ClientHello (twitter.com) spans two datagrams. */
static void cap_quic(void)
{
    static const uint8_t dcid[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    uint8_t ch[2048], dg[2][1500];
    char path[1024];
    size_t n = client_hello(ch, sizeof(ch), "twitter.com", false), half = n / 2;
    size_t d0 = sd_gen_quic_initial(dg[0], sizeof(dg[0]), SD_QUIC_V1, dcid, 8, 0, ch, half, 0, 1200);
    size_t d1 = sd_gen_quic_initial(dg[1], sizeof(dg[1]), SD_QUIC_V1, dcid, 8, 1, ch + half, n - half, half, 1200);
    snprintf(path, sizeof(path), "%s/pcap/quic_split", out_dir);
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 1);
    if (!w || !d0 || !d1)
        die("quic_split");
    struct sd_gen_pkt u = {.linktype = 1, .proto = 17, .sport = 50000, .dport = 443};
    u.src = sd_gen_addr("10.0.0.2");
    u.dst = sd_gen_addr("203.0.113.5");
    sd_gen_udp(w, &u, T0, dg[0], d0);
    sd_gen_udp(w, &u, T0 + MS, dg[1], d1);
    if (sd_gen_pcap_close(w) != 0)
        die("quic_split");

    /* The same as fuzz_engine records: op 11 seals the CRYPTO data itself. */
    FILE *e = out_file("engine", "quic_split");
    fputc(3, e); /* quic23-sni */
    gen_record(e, 11, 0, 0x00, 0x80, 0, 0, ch, half);
    gen_record(e, 11, dt_byte(MS), 0x00, 0x81, (uint16_t)half, 0, ch + half, n - half);
    close_file(e);
}

/* A TLS flow whose ClientHello segment is cut into 16-byte IP fragments. */
static void cap_frag(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/pcap/tls_frag16", out_dir);
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 101);
    if (!w)
        die(path);
    struct sd_gen_tcp c;
    uint8_t hello[2048], frame[4096];
    sd_gen_tcp_init(&c, w, "10.0.0.2", 40100, "203.0.113.5", 443, T0);
    sd_gen_tcp_handshake(&c, false);
    size_t n = client_hello(hello, sizeof(hello), "twitter.com", true);
    struct sd_gen_pkt s = c.tmpl;
    s.tcp_flags = SD_TCP_PSH | SD_TCP_ACK;
    s.seq = c.seq[SD_GEN_C2S];
    s.ack = c.seq[SD_GEN_S2C];
    s.payload = hello;
    s.payload_len = n;
    size_t len = sd_gen_frame(frame, sizeof(frame), &s);
    static uint8_t bufs[64][256];
    uint8_t *out[64];
    size_t out_len[64];
    for (int i = 0; i < 64; i++)
        out[i] = bufs[i];
    int k = sd_gen_fragment(frame, len, 101, 16, out, out_len, sizeof(bufs[0]), 64);
    if (k <= 0)
        die("fragment");
    for (int i = 0; i < k; i++)
        sd_gen_pcap_write(w, T0 + 30 * MS + (uint64_t)i * 1000, out[i], out_len[i]);
    if (sd_gen_pcap_close(w) != 0)
        die(path);
}

/* pcapng: a section header, one interface with if_tsresol 9 (ns), and an
 * enhanced packet block per record of |in|. */
static void to_pcapng(const char *in, const char *name, int keep)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) {
        fprintf(stderr, "sd-fuzzseeds: %s: %s\n", in, err);
        exit(1);
    }
    FILE *f = out_file("pcap", name);
    uint32_t shb[7] = {0x0a0d0d0a, 28, 0x1a2b3c4d, 1, 0xffffffff, 0xffffffff, 28};
    /* Host byte order throughout (the byte-order magic says which). The
     * option if_tsresol (code 9, length 1, value 9: 10^-9 s) is padded to 4
     * bytes, then opt_endofopt. */
    uint32_t idb[8] = {1, 32, (uint32_t)pcap_datalink(pc), 262144, 9u | 1u << 16, 9, 0, 32};
    fwrite(shb, sizeof(shb), 1, f);
    fwrite(idb, sizeof(idb), 1, f);
    struct pcap_pkthdr *h;
    const u_char *data;
    for (int i = 0; i < keep && pcap_next_ex(pc, &h, &data) == 1; i++) {
        uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
        uint32_t pad = (4 - h->caplen % 4) % 4, len = 32 + h->caplen + pad;
        uint32_t epb[7] = {6, len, 0, (uint32_t)(ts >> 32), (uint32_t)ts, h->caplen, h->len};
        static const uint8_t zero[4];
        fwrite(epb, sizeof(epb), 1, f);
        fwrite(data, h->caplen, 1, f);
        fwrite(zero, pad, 1, f);
        fwrite(&len, 4, 1, f);
    }
    pcap_close(pc);
    close_file(f);
}

/* A classic pcap with the nanosecond magic. */
static void to_nanopcap(const char *in, const char *name, int keep)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pc = pcap_open_offline_with_tstamp_precision(in, PCAP_TSTAMP_PRECISION_NANO, err);
    if (!pc) {
        fprintf(stderr, "sd-fuzzseeds: %s: %s\n", in, err);
        exit(1);
    }
    FILE *f = out_file("pcap", name);
    uint32_t fh[6] = {0xa1b23c4d, 2 | 4u << 16, 0, 0, 262144, (uint32_t)pcap_datalink(pc)};
    fwrite(fh, sizeof(fh), 1, f);
    struct pcap_pkthdr *h;
    const u_char *data;
    for (int i = 0; i < keep && pcap_next_ex(pc, &h, &data) == 1; i++) {
        uint32_t rh[4] = {(uint32_t)h->ts.tv_sec, (uint32_t)h->ts.tv_usec + 123, h->caplen, h->len};
        fwrite(rh, sizeof(rh), 1, f);
        fwrite(data, h->caplen, 1, f);
    }
    pcap_close(pc);
    close_file(f);
}

/* ---- fuzz_engine flows from generated-packet ops ---- */

/* Handshake, a request of |n| bytes from the client, two reply segments.
 * |ep| picks the endpoints (client direction); |frag| cuts the request. */
static void engine_tcp_flow(const char *name, uint8_t pol, uint8_t ep, const uint8_t *req, size_t n, uint8_t frag)
{
    uint8_t reply[1200];
    memset(reply, 0x42, sizeof(reply));
    FILE *e = out_file("engine", name);
    fputc(pol, e);
    gen_record(e, 10, 0, ep, SD_TCP_SYN, 0, 0, NULL, 0);
    gen_record(e, 10, dt_byte(20 * MS), ep | 8, SD_TCP_SYN | SD_TCP_ACK, 0, 0, NULL, 0);
    gen_record(e, 10, dt_byte(MS / 10), ep, SD_TCP_ACK, 1, 0, NULL, 0);
    gen_record(e, 10, dt_byte(MS), ep, SD_TCP_PSH | SD_TCP_ACK, 1, frag, req, n);
    gen_record(e, 10, dt_byte(20 * MS), ep | 8, SD_TCP_PSH | SD_TCP_ACK, 1, 0, reply, sizeof(reply));
    gen_record(e, 10, dt_byte(5 * MS), ep | 8, SD_TCP_PSH | SD_TCP_ACK, 1 + sizeof(reply), 0, reply, sizeof(reply));
    gen_record(e, 10, dt_byte(MS), ep, SD_TCP_ACK, (uint16_t)(1 + n), 0, NULL, 0);
    close_file(e);
}

static void engine_seeds(void)
{
    uint8_t hello[2048];
    size_t n = client_hello(hello, sizeof(hello), "twitter.com", true);
    engine_tcp_flow("gen_tls_tw21", 0x10, 0x00, hello, n, 0);
    engine_tcp_flow("gen_tls_harness", 0x18, 0x01, hello, n, 0);
    engine_tcp_flow("gen_tls_frag", 0x02, 0x02, hello, n, 0x82);
    engine_tcp_flow("gen_tls_v6_outside", 0x01, 0xe3, hello, n, 0);
    static const char get[] = "GET / HTTP/1.1\r\nHost: twitter.com\r\n\r\n";
    engine_tcp_flow("gen_http", 0x18, 0x14, (const uint8_t *)get, sizeof(get) - 1, 0);
    static const uint8_t q[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7, 't', 'w', 'i', 't', 't', 'e',
                                'r', 3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
    FILE *e = out_file("engine", "gen_dns_expire_swap");
    fputc(8, e);
    gen_record(e, 11, 0, 0x35, 0, 0, 0, q, sizeof(q));
    gen_record(e, 11, dt_byte(MS), 0x3d, 0, 0, 0, q, sizeof(q));
    gen_record(e, 11, dt_byte(MS), 0x35, 0, 0, 0, q, sizeof(q));
    gen_record(e, 11, dt_byte(MS), 0x35, 0, 0, 0, q, sizeof(q));
    uint8_t swap[4] = {13, dt_byte(MS), 0, 1}; /* set_policy(observe): no body */
    if (fwrite(swap, 4, 1, e) != 1)
        die("write");
    gen_record(e, 11, dt_byte(MS), 0x36, 0, 0, 0, q, sizeof(q));
    record(e, 12, 0xc2, NULL, 0); /* 20 s later: expire */
    close_file(e);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sd-fuzzseeds GOLDEN_DIR OUT_DIR\n");
        return 2;
    }
    const char *gold = argv[1];
    out_dir = argv[2];
    /* Link types beyond Ethernet are in the pcap seeds only: the engine
     * seeds would repeat the same flows behind another header. */
    static const struct {
        const char *cap;
        int keep;
        uint8_t pol;
        bool engine;
    } caps[] = {
        {"tls_names", 8, 0x00, true}, {"tls_split", 10, 0x01, true}, {"http_dns", 6, 0x18, true},
        {"tls_sll2", 8, 0x05, false}, {"tls_raw", 8, 0x04, false},
    };
    char in[1024];
    for (size_t i = 0; i < SD_COUNTOF(caps); i++) {
        snprintf(in, sizeof(in), "%s/%s.pcap", gold, caps[i].cap);
        trim(in, caps[i].cap, caps[i].keep, caps[i].pol, caps[i].engine);
    }
    snprintf(in, sizeof(in), "%s/tls_names.pcap", gold);
    to_pcapng(in, "tls_names_ns.pcapng", 6);
    to_nanopcap(in, "tls_names_ns.pcap", 6);
    cap_quic();
    cap_frag();
    engine_seeds();
    return 0;
}
