/*
 * test_gen.c - the packet and pcap generator (tests/support/gen.c).
 *
 * Every capture is written to a temporary file and read back with libpcap
 * (pcap_open_offline), so the files are checked by an independent reader:
 * header fields, record counts, timestamps, and the exact pacing of bulk
 * transfers that policer tests rely on. Frames are decoded with pkt.c and
 * their checksums verified.
 */
/* cmocka needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "gen.h"
#include "pkt.h"

enum { MAX_RECS = 1024, REC_BYTES = 2048 };

struct rec {
    uint64_t ts_us; /* seconds * 1e6 + microseconds */
    uint32_t len;
    uint8_t data[REC_BYTES];
};

struct capture {
    int linktype;
    int n;
    struct rec *r; /* MAX_RECS of them */
};

static void tmp_path(char *path, size_t cap)
{
    snprintf(path, cap, "%s/sd_test_gen_XXXXXX", P_tmpdir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* Reads |path| back with libpcap. */
static void read_capture(const char *path, struct capture *c)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(path, err);
    if (!p)
        fail_msg("pcap_open_offline: %s", err);
    c->linktype = pcap_datalink(p);
    c->n = 0;
    c->r = calloc(MAX_RECS, sizeof(*c->r));
    assert_non_null(c->r);
    struct pcap_pkthdr *h;
    const u_char *data;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        assert_true(c->n < MAX_RECS);
        assert_int_equal(h->caplen, h->len);
        assert_true(h->caplen <= REC_BYTES);
        struct rec *r = &c->r[c->n++];
        r->ts_us = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
        r->len = h->caplen;
        memcpy(r->data, data, h->caplen);
    }
    assert_int_equal(rc, PCAP_ERROR_BREAK);
    pcap_close(p);
}

/* Decodes record |i| and checks its checksums. */
static struct sd_pkt decode_rec(const struct capture *c, int i)
{
    struct sd_pkt p;
    assert_int_equal(sd_pkt_decode(&p, c->linktype, c->r[i].data, c->r[i].len), 0);
    assert_true(sd_pkt_l4_csum_ok(&p));
    return p;
}

static void test_pcap_file(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof(path));
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 113);
    assert_non_null(w);
    assert_int_equal(sd_gen_pcap_linktype(w), 113);
    static const uint8_t a[] = {1, 2, 3}, b[] = {4};
    assert_int_equal(sd_gen_pcap_write(w, 1500000000123456789ull, a, sizeof(a)), 0);
    assert_int_equal(sd_gen_pcap_write(w, 1500000001000000999ull, b, sizeof(b)), 0);
    assert_int_equal(sd_gen_pcap_close(w), 0);
    assert_int_equal(sd_gen_pcap_close(NULL), 0);

    /* The global header, byte by byte (little-endian classic pcap). */
    uint8_t hdr[24 + 16 + 3];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(hdr, 1, sizeof(hdr), f), sizeof(hdr));
    fclose(f);
    static const uint8_t want[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 113, 0, 0, 0};
    assert_memory_equal(hdr, want, 24);
    /* First record: 1500000000 s, 123456 us (floor), 3 bytes. */
    static const uint8_t rec[16] = {0x00, 0x2f, 0x68, 0x59, 0x40, 0xe2, 0x01, 0x00, 3, 0, 0, 0, 3, 0, 0, 0};
    assert_memory_equal(hdr + 24, rec, 16);

    struct capture c;
    read_capture(path, &c);
    assert_int_equal(c.linktype, 113);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.r[0].ts_us, 1500000000123456ull);
    assert_int_equal(c.r[1].ts_us, 1500000001000000ull);
    assert_int_equal(c.r[1].len, 1);
    assert_int_equal(c.r[1].data[0], 4);
    free(c.r);
    unlink(path);

    errno = 0;
    assert_null(sd_gen_pcap_open("/nonexistent-dir/x.pcap", 1));
    assert_int_equal(errno, ENOENT);
}

static void test_addr_and_frame_errors(void **state)
{
    (void)state;
    struct sd_gen_addr a = sd_gen_addr("2001:db8::1");
    assert_int_equal(a.family, 6);
    assert_memory_equal(a.a, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    a = sd_gen_addr("192.0.2.200");
    assert_int_equal(a.family, 4);
    assert_memory_equal(a.a, "\xc0\x00\x02\xc8", 4);

    uint8_t buf[256];
    struct sd_gen_pkt s;
    memset(&s, 0, sizeof(s));
    s.linktype = 1;
    s.src = sd_gen_addr("10.0.0.1");
    s.dst = sd_gen_addr("10.0.0.2");
    s.proto = IPPROTO_TCP;
    size_t n = sd_gen_frame(buf, sizeof(buf), &s);
    assert_int_equal(n, 14 + 20 + 20);
    assert_int_equal(sd_gen_frame(buf, n, &s), n);
    assert_int_equal(sd_gen_frame(buf, n - 1, &s), 0);
    s.n_vlan = 3;
    assert_int_equal(sd_gen_frame(buf, sizeof(buf), &s), 0);
    s.n_vlan = 0;
    s.ipv4_opts_len = 6;
    assert_int_equal(sd_gen_frame(buf, sizeof(buf), &s), 0);
    s.ipv4_opts_len = 44;
    assert_int_equal(sd_gen_frame(buf, sizeof(buf), &s), 0);
    s.ipv4_opts_len = 0;
    s.linktype = 999;
    assert_int_equal(sd_gen_frame(buf, sizeof(buf), &s), 0);
    s.linktype = 101;
    s.dst = sd_gen_addr("::1");
    assert_int_equal(sd_gen_frame(buf, sizeof(buf), &s), 0);

    /* Defaults: window 65535, TTL 64. */
    s.dst = sd_gen_addr("10.0.0.2");
    n = sd_gen_frame(buf, sizeof(buf), &s);
    struct sd_pkt p;
    assert_int_equal(sd_pkt_decode(&p, 101, buf, n), 0);
    assert_int_equal(p.tcp_win, 65535);
    assert_int_equal(p.ttl, 64);
    assert_true(sd_pkt_l4_csum_ok(&p));
    s.bad_csum = true;
    n = sd_gen_frame(buf, sizeof(buf), &s);
    assert_int_equal(sd_pkt_decode(&p, 101, buf, n), 0);
    assert_false(sd_pkt_l4_csum_ok(&p));
}

static void test_conversation(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof(path));
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 1);
    assert_non_null(w);
    struct sd_gen_tcp c;
    const uint64_t t0 = 1700000000000000000ull;
    sd_gen_tcp_init(&c, w, "192.0.2.1", 50000, "203.0.113.5", 443, t0);
    c.tmpl.n_vlan = 1;
    c.tmpl.vlan[0] = 42;
    uint32_t isn_c = c.seq[SD_GEN_C2S], isn_s = c.seq[SD_GEN_S2C];
    sd_gen_tcp_handshake(&c, false);
    static const uint8_t hello[] = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    sd_gen_tcp_send(&c, SD_GEN_C2S, hello, sizeof(hello) - 1, 1000000);
    sd_gen_tcp_send(&c, SD_GEN_S2C, NULL, 1200, 20000000);
    sd_gen_tcp_send_at(&c, SD_GEN_C2S, 100, (const uint8_t *)"later", 5, 1000); /* out of order */
    sd_gen_tcp_send_at(&c, SD_GEN_C2S, -10, (const uint8_t *)"overlap...", 10, 1000);
    sd_gen_tcp_advance(&c, SD_GEN_C2S, 105);
    sd_gen_tcp_flags(&c, SD_GEN_C2S, SD_TCP_FIN | SD_TCP_ACK, 5000);
    sd_gen_tcp_flags(&c, SD_GEN_S2C, SD_TCP_RST | SD_TCP_ACK, 5000);
    assert_int_equal(sd_gen_pcap_close(w), 0);

    struct capture cap;
    read_capture(path, &cap);
    unlink(path);
    assert_int_equal(cap.linktype, 1);
    assert_int_equal(cap.n, 9);
    struct sd_pkt p[9];
    for (int i = 0; i < cap.n; i++) {
        p[i] = decode_rec(&cap, i);
        assert_int_equal(p[i].n_vlan, 1);
        assert_int_equal(p[i].vlan[0], 42);
        bool c2s = memcmp(p[i].saddr, "\xc0\x00\x02\x01", 4) == 0;
        assert_int_equal(p[i].sport, c2s ? 50000 : 443);
        assert_int_equal(p[i].dport, c2s ? 443 : 50000);
    }
    const uint64_t us0 = t0 / 1000;
    /* Handshake: SYN, SYN/ACK one RTT later, ACK shortly after. */
    assert_int_equal(p[0].tcp_flags, SD_TCP_SYN);
    assert_int_equal(p[0].seq, isn_c);
    assert_int_equal(p[0].ack, 0);
    assert_int_equal(cap.r[0].ts_us, us0);
    assert_int_equal(p[1].tcp_flags, SD_TCP_SYN | SD_TCP_ACK);
    assert_int_equal(p[1].seq, isn_s);
    assert_int_equal(p[1].ack, isn_c + 1);
    assert_int_equal(cap.r[1].ts_us, us0 + 20000);
    assert_int_equal(p[2].tcp_flags, SD_TCP_ACK);
    assert_int_equal(p[2].seq, isn_c + 1);
    assert_int_equal(p[2].ack, isn_s + 1);
    assert_true(cap.r[2].ts_us > cap.r[1].ts_us);
    /* Data. */
    assert_int_equal(p[3].tcp_flags, SD_TCP_PSH | SD_TCP_ACK);
    assert_int_equal(p[3].seq, isn_c + 1);
    assert_int_equal(p[3].payload_len, sizeof(hello) - 1);
    assert_memory_equal(sd_pkt_payload(&p[3]).p, hello, sizeof(hello) - 1);
    assert_int_equal(cap.r[3].ts_us, cap.r[2].ts_us + 1000);
    assert_int_equal(p[4].seq, isn_s + 1);
    assert_int_equal(p[4].ack, isn_c + 1 + sizeof(hello) - 1);
    assert_int_equal(p[4].payload_len, 1200);
    assert_int_equal(cap.r[4].ts_us, cap.r[3].ts_us + 20000);
    uint32_t next = isn_c + 1 + (uint32_t)sizeof(hello) - 1;
    assert_int_equal(p[5].seq, next + 100);
    assert_memory_equal(sd_pkt_payload(&p[5]).p, "later", 5);
    assert_int_equal(p[6].seq, next - 10);
    /* Flags after advance(105): FIN consumes one sequence number. */
    assert_int_equal(p[7].tcp_flags, SD_TCP_FIN | SD_TCP_ACK);
    assert_int_equal(p[7].seq, next + 105);
    assert_int_equal(p[7].payload_len, 0);
    assert_int_equal(p[8].tcp_flags, SD_TCP_RST | SD_TCP_ACK);
    assert_int_equal(p[8].seq, isn_s + 1 + 1200);
    assert_int_equal(p[8].ack, next + 106);
    /* IP ids count up per direction. */
    assert_int_equal((uint16_t)(p[2].ip_id - p[0].ip_id), 1);
    assert_int_equal((uint16_t)(p[4].ip_id - p[1].ip_id), 1);
    free(cap.r);
}

static void test_server_opens(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof(path));
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 276);
    assert_non_null(w);
    struct sd_gen_tcp c;
    sd_gen_tcp_init(&c, w, "2001:db8::1", 40000, "2001:db8::2", 8443, 1000000000);
    c.rtt_ns = 5000000;
    sd_gen_tcp_handshake(&c, true);
    assert_int_equal(sd_gen_pcap_close(w), 0);
    struct capture cap;
    read_capture(path, &cap);
    unlink(path);
    assert_int_equal(cap.linktype, 276);
    assert_int_equal(cap.n, 3);
    struct sd_pkt s = decode_rec(&cap, 0), sa = decode_rec(&cap, 1), a = decode_rec(&cap, 2);
    assert_int_equal(s.family, 6);
    assert_int_equal(s.tcp_flags, SD_TCP_SYN);
    assert_int_equal(s.sport, 8443); /* from the server */
    assert_int_equal(sa.tcp_flags, SD_TCP_SYN | SD_TCP_ACK);
    assert_int_equal(sa.sport, 40000);
    assert_int_equal(sa.ack, s.seq + 1);
    assert_int_equal(a.tcp_flags, SD_TCP_ACK);
    assert_int_equal(a.sport, 8443);
    assert_int_equal(a.ack, sa.seq + 1);
    assert_int_equal(cap.r[1].ts_us - cap.r[0].ts_us, 5000);
    free(cap.r);
}

/*
 * Streams |total| bytes at |rate| and checks every data segment's timestamp
 * against the pacing rule recomputed here from the decoded IP lengths.
 */
static void check_bulk(const char *cli, const char *srv, int linktype, size_t total, uint64_t rate, uint16_t mss)
{
    char path[256];
    tmp_path(path, sizeof(path));
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, linktype);
    assert_non_null(w);
    struct sd_gen_tcp c;
    const uint64_t t0 = 1720000000123456789ull;
    sd_gen_tcp_init(&c, w, cli, 51000, srv, 443, t0);
    c.mss = mss;
    sd_gen_tcp_handshake(&c, false);
    uint64_t start = c.now_ns;
    uint32_t seq0 = c.seq[SD_GEN_S2C];
    uint64_t end = sd_gen_tcp_bulk(&c, SD_GEN_S2C, total, rate);
    assert_int_equal(c.now_ns, end);
    assert_int_equal(c.seq[SD_GEN_S2C], seq0 + total);
    assert_int_equal(sd_gen_pcap_close(w), 0);

    struct capture cap;
    read_capture(path, &cap);
    unlink(path);
    size_t nseg = (total + mss - 1) / mss;
    assert_int_equal(cap.n, 3 + nseg + nseg / 2);
    uint64_t ip_bytes = 0;
    size_t data = 0, acks = 0, payload = 0;
    uint32_t last_end = seq0;
    for (int i = 3; i < cap.n; i++) {
        struct sd_pkt p = decode_rec(&cap, i);
        if (p.sport == 51000) { /* the client's ACK */
            acks++;
            assert_int_equal(p.tcp_flags, SD_TCP_ACK);
            assert_int_equal(p.ack, last_end);
            assert_int_equal(data % 2, 0);
            assert_int_equal(cap.r[i].ts_us, cap.r[i - 1].ts_us);
            continue;
        }
        uint64_t want_ns = start + (uint64_t)((unsigned __int128)ip_bytes * 8000000000u / rate);
        assert_int_equal(cap.r[i].ts_us, want_ns / 1000);
        assert_int_equal(p.seq, last_end);
        assert_int_equal(p.payload_len, data + 1 < nseg ? mss : total - (nseg - 1) * mss);
        last_end = p.seq + p.payload_len;
        ip_bytes += p.ip_len;
        payload += p.payload_len;
        data++;
    }
    assert_int_equal(data, nseg);
    assert_int_equal(acks, nseg / 2);
    assert_int_equal(payload, total);
    assert_int_equal(end, start + (uint64_t)((unsigned __int128)ip_bytes * 8000000000u / rate));
    /* The achieved rate over the transfer is the requested one. */
    double got = (double)ip_bytes * 8e9 / (double)(end - start);
    assert_true(got > (double)rate * 0.99999 && got < (double)rate * 1.00001);
    free(cap.r);
}

static void test_bulk_pacing(void **state)
{
    (void)state;
    check_bulk("192.0.2.1", "198.51.100.1", 101, 200000, 2300000, 1460); /* 2.3 Mbit/s */
    check_bulk("2001:db8::1", "2001:db8::2", 1, 100001, 128000, 1440);   /* 128 kbit/s */
    check_bulk("10.1.1.1", "10.2.2.2", 113, 1460 * 3, 1000000000, 1460); /* 1 Gbit/s, odd count */
}

static void test_udp(void **state)
{
    (void)state;
    char path[256];
    tmp_path(path, sizeof(path));
    struct sd_gen_pcap *w = sd_gen_pcap_open(path, 101);
    assert_non_null(w);
    struct sd_gen_pkt t;
    memset(&t, 0, sizeof(t));
    t.linktype = 1; /* overridden by the writer's link type */
    t.src = sd_gen_addr("192.0.2.7");
    t.dst = sd_gen_addr("192.0.2.8");
    t.sport = 5353;
    t.dport = 443;
    static const uint8_t q[] = {0xc0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8};
    sd_gen_udp(w, &t, 2000000000, q, sizeof(q));
    sd_gen_udp(w, &t, 2000001000, NULL, 0);
    assert_int_equal(sd_gen_pcap_close(w), 0);
    struct capture cap;
    read_capture(path, &cap);
    unlink(path);
    assert_int_equal(cap.n, 2);
    struct sd_pkt p = decode_rec(&cap, 0);
    assert_int_equal(p.proto, IPPROTO_UDP);
    assert_int_equal(p.l3_off, 0);
    assert_int_equal(p.sport, 5353);
    assert_int_equal(p.payload_len, sizeof(q));
    assert_memory_equal(sd_pkt_payload(&p).p, q, sizeof(q));
    assert_int_equal(cap.r[0].ts_us, 2000000);
    p = decode_rec(&cap, 1);
    assert_int_equal(p.payload_len, 0);
    assert_int_equal(cap.r[1].ts_us, 2000001);
    free(cap.r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcap_file),    cmocka_unit_test(test_addr_and_frame_errors), cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_server_opens), cmocka_unit_test(test_bulk_pacing),           cmocka_unit_test(test_udp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
