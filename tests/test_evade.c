/*
 * test_evade.c - the evasion client: strategy parsing and positions, the
 * byte rewrites of the first flight checked with the project's own TLS
 * parser on real OpenSSL ClientHellos, the forged-packet builders checked
 * by decoding what they build, the external adapter's placeholders, and the
 * socket-level strategies run for real against a slowdown serve and a test
 * proxy on loopback (every one must still complete its TLS handshake and
 * download, and the server must see the name the strategy sent). Forging
 * strategies need a client queue in a namespace of their own: the lab test
 * (tests/sh/lab_matrix_b14.sh) runs them.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bytes.h"
#include "evade.h"
#include "evade_proxy.h"
#include "fetch.h"
#include "mono.h"
#include "pkt.h"
#include "quic.h"
#include "reasm.h"
#include "serve.h"
#include "strat.h"
#include "tls.h"

/* ---- parsing ---- */

static void test_parse_defaults(void **state)
{
    struct sd_evade_spec s;
    char err[200];
    (void)state;

    assert_int_equal(sd_evade_parse("split-sni", &s, err, sizeof(err)), 0);
    assert_int_equal(s.def->op, SD_EVADE_SPLIT);
    assert_int_equal(s.n_pos, 1);
    assert_int_equal(s.pos[0].base, SD_EVADE_AT_MIDSNI);
    assert_string_equal(s.text, "split-sni");

    assert_int_equal(sd_evade_parse("multisplit", &s, err, sizeof(err)), 0);
    assert_int_equal(s.n_pos, 3);
    assert_int_equal(s.pos[0].base, SD_EVADE_AT_ABS);
    assert_int_equal(s.pos[0].delta, 1);
    assert_int_equal(s.pos[1].base, SD_EVADE_AT_SNI);

    assert_int_equal(sd_evade_parse("junk-large", &s, err, sizeof(err)), 0);
    assert_int_equal(s.size, 300);
    assert_int_equal(s.ttl, 1);
    assert_false(s.badsum);

    assert_int_equal(sd_evade_parse("rst-after", &s, err, sizeof(err)), 0);
    assert_int_equal(s.tcp_flags, SD_TCP_RST | SD_TCP_ACK);
    assert_int_equal(sd_evade_parse("fin-after", &s, err, sizeof(err)), 0);
    assert_int_equal(s.tcp_flags, SD_TCP_FIN | SD_TCP_ACK);

    assert_int_equal(sd_evade_parse("sni-other", &s, err, sizeof(err)), 0);
    assert_int_equal(s.sni_mode, SD_EVADE_SNI_OTHER);
    assert_string_equal(s.name, "example.org");
    assert_int_equal(sd_evade_parse("idle", &s, err, sizeof(err)), 0);
    assert_int_equal(s.wait_ns, 3ull * SD_NS_PER_S);
    assert_int_equal(sd_evade_parse("socks-proxy", &s, err, sizeof(err)), 0);
    assert_int_equal(s.proxy, SD_EVADE_PROXY_SOCKS5);

    /* Every catalogue row parses with its own defaults. */
    size_t n;
    const struct sd_evade_def *c = sd_evade_catalogue(&n);
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sd_evade_parse(c[i].name, &s, err, sizeof(err)), 0);
        assert_ptr_equal(s.def, &c[i]);
        assert_true(strlen(c[i].wire) > 20);
    }
}

static void test_parse_args(void **state)
{
    struct sd_evade_spec s;
    char err[200];
    (void)state;

    /* Arguments replace positions... */
    assert_int_equal(sd_evade_parse("split:midsni+3", &s, err, sizeof(err)), 0);
    assert_int_equal(s.n_pos, 1);
    assert_int_equal(s.pos[0].base, SD_EVADE_AT_MIDSNI);
    assert_int_equal(s.pos[0].delta, 3);
    assert_string_equal(s.text, "split:midsni+3");
    assert_int_equal(sd_evade_parse("multisplit:2,sni-1,endsni,40", &s, err, sizeof(err)), 0);
    assert_int_equal(s.n_pos, 4);
    assert_int_equal(s.pos[1].base, SD_EVADE_AT_SNI);
    assert_int_equal(s.pos[1].delta, -1);
    assert_int_equal(s.pos[2].base, SD_EVADE_AT_ENDSNI);
    assert_int_equal(s.pos[3].delta, 40);
    /* ... and override the rest, keeping defaults not mentioned. */
    assert_int_equal(sd_evade_parse("junk-large:600,ttl=2", &s, err, sizeof(err)), 0);
    assert_int_equal(s.size, 600);
    assert_int_equal(s.ttl, 2);
    assert_int_equal(sd_evade_parse("junk-large:badsum", &s, err, sizeof(err)), 0);
    assert_int_equal(s.size, 300);
    assert_true(s.badsum);
    assert_int_equal(s.ttl, 0);
    assert_int_equal(sd_evade_parse("fake-ttl:sni=innocent.example", &s, err, sizeof(err)), 0);
    assert_int_equal(s.ttl, 1);
    assert_string_equal(s.name, "innocent.example");
    assert_int_equal(sd_evade_parse("rst-after:fin,ttl=3", &s, err, sizeof(err)), 0);
    assert_int_equal(s.tcp_flags, SD_TCP_FIN | SD_TCP_ACK);
    assert_int_equal(s.ttl, 3);
    assert_int_equal(sd_evade_parse("idle:0.25", &s, err, sizeof(err)), 0);
    assert_int_equal(s.wait_ns, 250ull * SD_NS_PER_MS);
    assert_int_equal(sd_evade_parse("sni-other:cdn.example.net", &s, err, sizeof(err)), 0);
    assert_string_equal(s.name, "cdn.example.net");
    assert_int_equal(sd_evade_parse("padding:3000", &s, err, sizeof(err)), 0);
    assert_int_equal(s.size, 3000);

    static const char *const bad[] = {
        "nosuch", "split:", "split:abc", "split:midsni3", "split:+3", "split:70000", "disorder:1,2",
        "multisplit:1,2,3,4,5,6,7,8,9", "junk-small:0", "junk-small:2000", "junk-small:ttl=0",
        "junk-small:ttl=256", "fake-ttl:sni=", "fake-ttl:bogus", "rst-after:ttl=1,maybe", "mss:20", "padding:0",
        "idle:-1", "idle:0", "sni-other:a,b", "http-proxy:ftp", "none:1", "tlsrec:1,2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_true(sd_evade_parse(bad[i], &s, err, sizeof(err)) < 0);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(sd_evade_parse("nosuch", &s, err, sizeof(err)), SD_ENOENT);
}

/* ---- positions and first-flight rewrites on real hellos ---- */

static int hello(const char *sni, uint8_t *buf, size_t cap)
{
    int n = sd_fetch_client_hello(sni, buf, cap);
    assert_true(n > 100);
    return n;
}

static void test_marks(void **state)
{
    uint8_t ch[2048];
    struct sd_evade_marks m;
    struct sd_evade_pos p;
    (void)state;

    int n = hello("twitter.com", ch, sizeof(ch));
    assert_int_equal(sd_evade_marks(ch, (size_t)n, &m), 0);
    assert_int_equal(m.len, (size_t)n);
    assert_int_equal(m.sni_len, 11);
    assert_memory_equal(ch + m.sni, "twitter.com", 11);

    p = (struct sd_evade_pos){SD_EVADE_AT_MIDSNI, 0};
    assert_int_equal(sd_evade_resolve(&p, &m), m.sni + 5);
    p = (struct sd_evade_pos){SD_EVADE_AT_ENDSNI, -1};
    assert_int_equal(sd_evade_resolve(&p, &m), m.sni + 10);
    p = (struct sd_evade_pos){SD_EVADE_AT_SNI, 2};
    assert_int_equal(sd_evade_resolve(&p, &m), m.sni + 2);
    /* Clamped into the flight: at least one byte on each side. */
    p = (struct sd_evade_pos){SD_EVADE_AT_ABS, 0};
    assert_int_equal(sd_evade_resolve(&p, &m), 1);
    p = (struct sd_evade_pos){SD_EVADE_AT_SNI, -5000};
    assert_int_equal(sd_evade_resolve(&p, &m), 1);
    p = (struct sd_evade_pos){SD_EVADE_AT_ABS, 60000};
    assert_int_equal(sd_evade_resolve(&p, &m), (size_t)n - 1);

    /* No name: name-relative positions fall back to the middle. */
    n = hello(NULL, ch, sizeof(ch));
    assert_int_equal(sd_evade_marks(ch, (size_t)n, &m), 0);
    assert_int_equal(m.sni, 0);
    p = (struct sd_evade_pos){SD_EVADE_AT_MIDSNI, 0};
    assert_int_equal(sd_evade_resolve(&p, &m), (size_t)n / 2);

    /* Not a hello record. */
    assert_int_equal(sd_evade_marks((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18, &m), SD_EPROTO);
}

static void test_tlsrec(void **state)
{
    uint8_t ch[2048], out[2100], scratch[4096];
    struct sd_evade_marks m;
    struct sd_tls_hello h;
    (void)state;

    int n = hello("abs.twimg.com", ch, sizeof(ch));
    assert_int_equal(sd_evade_marks(ch, (size_t)n, &m), 0);
    size_t at = m.sni + m.sni_len / 2;
    int k = sd_strat_tlsrec(ch, (size_t)n, at, out, sizeof(out));
    assert_int_equal(k, n + 5);
    /* Two handshake records whose bodies are the original body, cut at |at|. */
    assert_int_equal(out[0], SD_TLS_CT_HANDSHAKE);
    assert_int_equal(sd_rd16be(out + 3), at - 5);
    assert_memory_equal(out + 5, ch + 5, at - 5);
    assert_int_equal(out[at], SD_TLS_CT_HANDSHAKE);
    assert_int_equal(sd_rd16be(out + at + 3), (size_t)n - at);
    assert_memory_equal(out + at + 5, ch + at, (size_t)n - at);
    /* A box that wants the hello in the first record finds none... */
    assert_int_equal(sd_tls_strict(out, out + k, &h), SD_ENOENT);
    /* ... one that gathers records finds the same name. */
    assert_true(sd_tls_stream(out, out + k, scratch, sizeof(scratch), &h) > 0);
    assert_int_equal(h.sni.n, 13);
    assert_memory_equal(h.sni.p, "abs.twimg.com", 13);
    assert_int_equal(h.records, 2);

    assert_int_equal(sd_strat_tlsrec(ch, (size_t)n, 5, out, sizeof(out)), SD_EINVAL);
    assert_int_equal(sd_strat_tlsrec(ch, (size_t)n, (size_t)n, out, sizeof(out)), SD_EINVAL);
    assert_int_equal(sd_strat_tlsrec(ch, (size_t)n, at, out, (size_t)n + 4), SD_ERANGE);
    assert_int_equal(sd_strat_tlsrec(ch, (size_t)n - 1, at, out, sizeof(out)), SD_EINVAL); /* not one record */
}

static void test_ccs(void **state)
{
    uint8_t ch[2048], out[2100], scratch[4096];
    struct sd_tls_hello h;
    (void)state;

    int n = hello("twitter.com", ch, sizeof(ch));
    int k = sd_strat_ccs(ch, (size_t)n, out, sizeof(out));
    assert_int_equal(k, n + 6);
    static const uint8_t ccs[6] = {0x14, 3, 3, 0, 1, 1};
    assert_memory_equal(out, ccs, 6);
    assert_memory_equal(out + 6, ch, (size_t)n);
    /* The first record of the segment is a CCS, not a hello (spec B3). */
    assert_int_equal(sd_tls_strict(out, out + k, &h), SD_ENOENT);
    assert_int_equal(sd_tls_stream(out, out + k, scratch, sizeof(scratch), &h), SD_ENOENT);
    assert_int_equal(sd_strat_ccs(ch, (size_t)n, out, (size_t)n + 5), SD_ERANGE);
}

static void test_sni_spelling(void **state)
{
    char out[64];
    (void)state;

    assert_int_equal(sd_strat_sni(SD_EVADE_SNI_KEEP, "twitter.com", NULL, out, sizeof(out)), 11);
    assert_string_equal(out, "twitter.com");
    assert_int_equal(sd_strat_sni(SD_EVADE_SNI_DOT, "twitter.com", NULL, out, sizeof(out)), 12);
    assert_string_equal(out, "twitter.com.");
    sd_strat_sni(SD_EVADE_SNI_UPPER, "abs.twimg.com", NULL, out, sizeof(out));
    assert_string_equal(out, "ABS.TWIMG.COM");
    sd_strat_sni(SD_EVADE_SNI_MIXED, "twitter.com", NULL, out, sizeof(out));
    assert_string_equal(out, "TwItTeR.cOm");
    assert_int_equal(sd_strat_sni(SD_EVADE_SNI_NONE, "twitter.com", NULL, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    sd_strat_sni(SD_EVADE_SNI_OTHER, "twitter.com", "example.org", out, sizeof(out));
    assert_string_equal(out, "example.org");
    assert_int_equal(sd_strat_sni(SD_EVADE_SNI_DOT, "twitter.com", NULL, out, 12), SD_ERANGE);
    assert_int_equal(sd_strat_sni(SD_EVADE_SNI_KEEP, "twitter.com", NULL, out, 12), 11);
}

/* ---- forged packets ---- */

/* An IPv4 TCP segment 192.0.2.2:40000 -> 203.0.113.2:443 with timestamps,
 * DF, TTL 64, PSH/ACK, seq 1000, carrying |pl|. Valid checksums. */
static size_t make_segment(uint8_t *b, const uint8_t *pl, size_t n)
{
    static const uint8_t ip[20] = {0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 2, 203, 0, 113, 2};
    static const uint8_t tcp[32] = {0x9c, 0x40, 0x01, 0xbb, 0, 0, 0x03, 0xe8, 0, 0, 0x07, 0xd0, 0x80, 0x18, 0x01,
                                    0xf5, 0, 0, 0, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
    memcpy(b, ip, 20);
    memcpy(b + 20, tcp, 32);
    memcpy(b + 52, pl, n);
    sd_put16be(b + 2, (uint16_t)(52 + n));
    assert_int_equal(sd_pkt_fix_csums(b, 52 + n), 0);
    return 52 + n;
}

static void decode(struct sd_pkt *p, const uint8_t *b, size_t n)
{
    assert_int_equal(sd_pkt_decode(p, SD_DLT_RAW, b, n), 0);
}

static void test_segment(void **state)
{
    uint8_t orig[2048], out[2048], ch[1500];
    struct sd_pkt p, q;
    (void)state;

    int chn = hello("twitter.com", ch, sizeof(ch));
    decode(&p, orig, make_segment(orig, ch, (size_t)chn));
    assert_true(sd_pkt_l4_csum_ok(&p));

    /* The tail of the hello at its own sequence number, headers kept. */
    struct sd_strat_tweak keep = {0};
    int n = sd_strat_segment(out, sizeof(out), &p, 100, ch + 100, (size_t)chn - 100, &keep);
    assert_int_equal(n, 52 + chn - 100);
    decode(&q, out, (size_t)n);
    assert_int_equal(q.seq, 1100);
    assert_int_equal(q.ack, 2000);
    assert_int_equal(q.ttl, 64);
    assert_int_equal(q.tcp_flags, SD_TCP_PSH | SD_TCP_ACK);
    assert_int_equal(q.tcp_hlen, 32);
    assert_true(q.flags & SD_PKT_TCP_TS);
    assert_int_equal(q.payload_len, chn - 100);
    assert_memory_equal(out + q.payload_off, ch + 100, (size_t)chn - 100);
    assert_true(sd_pkt_l4_csum_ok(&q));

    /* A low-TTL junk segment at the hello's own sequence number. */
    uint8_t junk[300];
    sd_strat_junk(junk, sizeof(junk), 42);
    struct sd_strat_tweak low = {.ttl = 1};
    n = sd_strat_segment(out, sizeof(out), &p, 0, junk, sizeof(junk), &low);
    decode(&q, out, (size_t)n);
    assert_int_equal(q.ttl, 1);
    assert_int_equal(q.seq, 1000);
    assert_true(sd_pkt_l4_csum_ok(&q));

    /* A bad checksum, and only that. */
    struct sd_strat_tweak bad = {.badsum = true};
    n = sd_strat_segment(out, sizeof(out), &p, 0, junk, sizeof(junk), &bad);
    decode(&q, out, (size_t)n);
    assert_int_equal(q.ttl, 64);
    assert_false(sd_pkt_l4_csum_ok(&q));

    /* A RST/ACK after the hello: no payload, next sequence number. */
    struct sd_strat_tweak rst = {.ttl = 1, .flags = SD_TCP_RST | SD_TCP_ACK, .ip_id = 7};
    n = sd_strat_segment(out, sizeof(out), &p, (uint32_t)chn, NULL, 0, &rst);
    assert_int_equal(n, 52);
    decode(&q, out, (size_t)n);
    assert_int_equal(q.seq, 1000 + (uint32_t)chn);
    assert_int_equal(q.tcp_flags, SD_TCP_RST | SD_TCP_ACK);
    assert_int_equal(q.ip_id, 7);
    assert_int_equal(q.payload_len, 0);
    assert_true(sd_pkt_l4_csum_ok(&q));

    assert_int_equal(sd_strat_segment(out, 60, &p, 0, junk, sizeof(junk), &keep), SD_ERANGE);
}

static void test_fragments(void **state)
{
    uint8_t orig[2048], a[2048], b[2048], whole[2048], ch[1500];
    struct sd_pkt p, fa, fb, w;
    (void)state;

    int chn = hello("twitter.com", ch, sizeof(ch));
    size_t len = make_segment(orig, ch, (size_t)chn);
    decode(&p, orig, len);
    size_t l4 = len - 20, cut = (32 + 150) & ~(size_t)7;
    int na = sd_strat_fragment(a, sizeof(a), &p, 0, cut, 0x5d5d);
    int nb = sd_strat_fragment(b, sizeof(b), &p, cut, l4, 0x5d5d);
    assert_int_equal(na, 20 + (int)cut);
    assert_int_equal(nb, 20 + (int)(l4 - cut));
    decode(&fa, a, (size_t)na);
    decode(&fb, b, (size_t)nb);
    assert_true((fa.flags & SD_PKT_FRAG) && (fa.flags & SD_PKT_FRAG_MF));
    assert_int_equal(fa.frag_off, 0);
    assert_true(fa.flags & SD_PKT_L4); /* the first fragment holds the TCP header */
    assert_true((fb.flags & SD_PKT_FRAG) && !(fb.flags & SD_PKT_FRAG_MF));
    assert_int_equal(fb.frag_off, cut);
    assert_false(fb.flags & SD_PKT_L4);
    assert_int_equal(fa.frag_id, 0x5d5d);
    assert_int_equal(fb.frag_id, 0x5d5d);
    assert_int_equal(a[6] & 0x40, 0); /* DF cleared */
    /* IP header checksums are valid. */
    assert_int_equal(sd_csum_fold(sd_csum_add(0, a, 20)), 0);
    assert_int_equal(sd_csum_fold(sd_csum_add(0, b, 20)), 0);
    /* Reassembled, they are the original segment, checksum and all. */
    memcpy(whole, orig, 20);
    memcpy(whole + 20, a + 20, cut);
    memcpy(whole + 20 + cut, b + 20, l4 - cut);
    decode(&w, whole, len);
    assert_true(sd_pkt_l4_csum_ok(&w));
    assert_memory_equal(whole + 20, orig + 20, l4);

    /* Even when the original's checksum field was wrong (a checksum left
     * to offload), the fragments carry the right one. */
    orig[20 + 16] ^= 0xff;
    decode(&p, orig, len);
    assert_false(sd_pkt_l4_csum_ok(&p));
    na = sd_strat_fragment(a, sizeof(a), &p, 0, cut, 1);
    memcpy(whole + 20, a + 20, cut);
    decode(&w, whole, len);
    assert_true(sd_pkt_l4_csum_ok(&w));

    assert_int_equal(sd_strat_fragment(a, sizeof(a), &p, 4, 40, 1), SD_EINVAL); /* not a multiple of 8 */
    assert_int_equal(sd_strat_fragment(a, sizeof(a), &p, 40, 40, 1), SD_EINVAL);
    assert_int_equal(sd_strat_fragment(a, sizeof(a), &p, 0, l4 + 1, 1), SD_EINVAL);
    assert_int_equal(sd_strat_fragment(a, 30, &p, 0, cut, 1), SD_ERANGE);
}

static void test_junk(void **state)
{
    uint8_t a[300], b[300], c[300];
    (void)state;

    sd_strat_junk(a, sizeof(a), 7);
    sd_strat_junk(b, sizeof(b), 7);
    sd_strat_junk(c, sizeof(c), 8);
    assert_memory_equal(a, b, sizeof(a)); /* reproducible */
    assert_true(memcmp(a, c, sizeof(a)) != 0);
    assert_int_equal(a[0], 0);
    assert_false(sd_tls_looks_like_record(a, a + sizeof(a)));
    unsigned distinct = 0;
    for (int v = 0; v < 256; v++)
        distinct += memchr(a, v, sizeof(a)) != NULL;
    assert_true(distinct > 100); /* noise, not a pattern */
}

static void test_expand(void **state)
{
    struct sd_evade_target t = {.addr = "203.0.113.2", .port = 443, .sni = "twitter.com",
                                .duration_ns = 2500ull * SD_NS_PER_MS};
    char out[256];
    (void)state;

    int n = sd_evade_expand("curl -sk --resolve {resolve} {url} -o - # {addr} {port} {sni} {seconds} {x} {", &t, out,
                            sizeof(out));
    assert_true(n > 0);
    assert_string_equal(out, "curl -sk --resolve twitter.com:443:203.0.113.2 https://twitter.com:443/down?seconds=4 "
                             "-o - # 203.0.113.2 443 twitter.com 3 {x} {");
    assert_int_equal(sd_evade_expand("{url}{url}{url}", &t, out, 40), SD_ERANGE);
}

/* ---- QUIC ---- */

static void check_initial(uint32_t version, size_t pad, const char *sni)
{
    uint8_t rec[2048], out[1500], data[4096];
    static const uint8_t dcid[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct sd_quic_ctx *qc = sd_quic_ctx_new();
    struct sd_reasm r;
    struct sd_quic_info info;
    struct sd_tls_hello h;

    int n = hello(sni, rec, sizeof(rec));
    int k = sd_strat_quic_initial(out, sizeof(out), version, dcid, sizeof(dcid), rec + 5, (size_t)n - 5, pad);
    assert_int_equal(k, (int)pad);
    assert_int_equal(out[0] & 0xf0, 0xc0); /* long header, Initial */
    assert_int_equal(sd_rd32be(out + 1), version);
    /* The censor's own decryption finds the hello and its name. */
    sd_reasm_init(&r, data, sizeof(data));
    assert_int_equal(sd_quic_client_initials(qc, out, out + k, &r, &info), 1);
    assert_int_equal(info.version, version);
    assert_int_equal(info.dcid_len, 8);
    assert_int_equal(r.contig, (uint32_t)n - 5);
    assert_memory_equal(data, rec + 5, (size_t)n - 5);
    assert_true(sd_tls_client_hello(data, data + r.contig, &h) > 0);
    assert_int_equal(h.sni.n, strlen(sni));
    assert_memory_equal(h.sni.p, sni, h.sni.n);
    /* One flipped bit anywhere protected: authentication fails. */
    out[k - 20] ^= 1;
    sd_reasm_init(&r, data, sizeof(data));
    assert_int_equal(sd_quic_client_initials(qc, out, out + k, &r, &info), SD_ECRYPTO);
    sd_quic_ctx_free(qc);
}

static void test_quic_initial(void **state)
{
    uint8_t out[1500], ch[300] = {1, 0, 0, 4, 3, 3, 0, 0};
    static const uint8_t dcid[8] = {9};
    (void)state;

    check_initial(SD_QUIC_V1, 1250, "twitter.com");
    check_initial(SD_QUIC_V1, 900, "abs.twimg.com");
    check_initial(0xff00001d, 1200, "www.facebook.com");
    assert_int_equal(sd_strat_quic_initial(out, 1000, SD_QUIC_V1, dcid, 8, ch, sizeof(ch), 1250), SD_ERANGE);
    assert_int_equal(sd_strat_quic_initial(out, sizeof(out), 0x12345678, dcid, 8, ch, sizeof(ch), 1250), SD_ENOTSUP);
    assert_int_equal(sd_strat_quic_initial(out, sizeof(out), SD_QUIC_V1, dcid, 21, ch, sizeof(ch), 1250), SD_EINVAL);
    /* Too little padding asked: as long as the frame needs. */
    int k = sd_strat_quic_initial(out, sizeof(out), SD_QUIC_V1, dcid, 8, ch, sizeof(ch), 100);
    assert_true(k > (int)sizeof(ch) && k < 400);
}

static void test_udp_fragments(void **state)
{
    uint8_t pkt[1400], a[1400], b[1400], whole[1400];
    struct sd_pkt p, w;
    (void)state;

    static const uint8_t ip[20] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 192, 0, 2, 2, 203, 0, 113, 2};
    memcpy(pkt, ip, 20);
    sd_put16be(pkt + 20, 50000);
    sd_put16be(pkt + 22, 443);
    sd_put16be(pkt + 24, 8 + 1250);
    sd_put16be(pkt + 26, 0);
    sd_strat_junk(pkt + 28, 1250, 3);
    sd_put16be(pkt + 2, 28 + 1250);
    assert_int_equal(sd_pkt_fix_csums(pkt, 28 + 1250), 0);
    decode(&p, pkt, 28 + 1250);
    assert_int_equal(p.proto, 17);
    int na = sd_strat_fragment(a, sizeof(a), &p, 0, 520, 77);
    int nb = sd_strat_fragment(b, sizeof(b), &p, 520, 8 + 1250, 77);
    assert_int_equal(na, 540);
    assert_int_equal(nb, 20 + 738);
    memcpy(whole, pkt, 20);
    memcpy(whole + 20, a + 20, 520);
    memcpy(whole + 540, b + 20, 738);
    decode(&w, whole, 28 + 1250);
    assert_true(sd_pkt_l4_csum_ok(&w));
    struct sd_pkt fa;
    decode(&fa, a, (size_t)na);
    assert_true(fa.flags & SD_PKT_FRAG_MF);
    assert_int_equal(fa.payload_len, 512); /* what a header rule sees: under 1001 bytes */
}

/* ---- socket-level strategies, for real, on loopback ---- */

enum { MAX_REPORTS = 64 };

static struct {
    struct sd_serve *s;
    pthread_t tid;
    int stop[2];
    pthread_mutex_t lock;
    int n;
    char sni[MAX_REPORTS][300];
    struct sd_proxy_thread proxy, udp;
} srv;

static void on_conn(void *arg, const struct sd_serve_report *r)
{
    (void)arg;
    pthread_mutex_lock(&srv.lock);
    if (srv.n < MAX_REPORTS && r->tls)
        snprintf(srv.sni[srv.n++], sizeof(srv.sni[0]), "%s", r->sni ? r->sni : "(none)");
    pthread_mutex_unlock(&srv.lock);
}

static void *serve_thread(void *arg)
{
    (void)arg;
    sd_serve_run(srv.s, srv.stop[0]);
    return NULL;
}

static int setup(void **state)
{
    struct sd_serve_config c = {.tls = true, .listen = "127.0.0.1", .on_conn = on_conn};
    char err[256];
    (void)state;

    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&srv.lock, NULL);
    srv.s = sd_serve_open(&c, err, sizeof(err));
    if (!srv.s || pipe(srv.stop) < 0 || pthread_create(&srv.tid, NULL, serve_thread, NULL) != 0)
        return -1;
    if (sd_quicbulk_thread_start(&srv.udp, NULL, "127.0.0.1", 0) < 0)
        return -1;
    return sd_proxy_thread_start(&srv.proxy, NULL, "127.0.0.1", 0) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    sd_proxy_thread_stop(&srv.proxy);
    sd_proxy_thread_stop(&srv.udp);
    if (write(srv.stop[1], "x", 1) != 1)
        return -1;
    pthread_join(srv.tid, NULL);
    sd_serve_free(srv.s);
    return 0;
}

/* The SNI the server saw on the connection that closed after |from| reports. */
static const char *seen_sni(int from)
{
    static char sni[300];
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&srv.lock);
        int n = srv.n;
        if (n > from)
            snprintf(sni, sizeof(sni), "%s", srv.sni[n - 1]);
        pthread_mutex_unlock(&srv.lock);
        if (n > from)
            return sni;
        poll(NULL, 0, 10);
    }
    return "(no report)";
}

static void run_one(const char *strategy, const char *expect_sni)
{
    struct sd_evade_spec s;
    struct sd_evade_result r;
    uint64_t bins[64];
    char err[200];
    struct sd_evade_target t = {.addr = "127.0.0.1", .port = sd_serve_port(srv.s, true), .sni = "twitter.com",
                                .proxy_addr = "127.0.0.1", .bytes = 1 << 20, .bins = bins, .max_bins = 64};

    t.proxy_port = srv.proxy.port;
    assert_int_equal(sd_evade_parse(strategy, &s, err, sizeof(err)), 0);
    pthread_mutex_lock(&srv.lock);
    int before = srv.n;
    pthread_mutex_unlock(&srv.lock);
    assert_int_equal(sd_evade_run(&s, &t, &r), 0);
    if (r.f.end != SD_FETCH_DONE || !r.applied)
        fprintf(stderr, "%s: end %s, applied %d: %s / %s\n", strategy, sd_fetch_end_name(r.f.end), r.applied,
                r.note, r.f.detail);
    assert_int_equal(r.f.end, SD_FETCH_DONE);
    assert_true(r.applied);
    assert_int_equal(r.f.bytes, 1 << 20);
    assert_string_equal(r.f.tls_version, "TLSv1.3");
    assert_string_equal(seen_sni(before), expect_sni);
}

static void test_socket_strategies(void **state)
{
    (void)state;
    run_one("none", "twitter.com");
    run_one("split", "twitter.com");
    run_one("split-sni", "twitter.com");
    run_one("multisplit:1,2,3,sni,midsni,endsni", "twitter.com");
    run_one("tlsrec", "twitter.com");
    run_one("tlsrec:6", "twitter.com");
    run_one("padding", "twitter.com");
    run_one("padding:15000", "twitter.com");
    run_one("ccs", "twitter.com"); /* serve reads the CCS off */
    run_one("oob", "twitter.com"); /* the server's kernel drops the urgent byte */
    run_one("mss", "twitter.com");
    run_one("sni-dot", "twitter.com.");
    run_one("sni-upper", "TWITTER.COM");
    run_one("sni-mixed", "TwItTeR.cOm");
    run_one("no-sni", "(none)");
    run_one("sni-other", "example.org");
    run_one("idle:0.3", "twitter.com");
    run_one("http-proxy", "twitter.com");
    run_one("socks-proxy", "twitter.com");
}

static void run_quic(const char *strategy)
{
    struct sd_evade_spec s;
    struct sd_evade_result r;
    uint64_t bins[64];
    char err[200];
    struct sd_evade_target t = {.addr = "127.0.0.1", .port = srv.udp.port, .sni = "twitter.com",
                                .bytes = 1 << 20, .bins = bins, .max_bins = 64};

    assert_int_equal(sd_evade_parse(strategy, &s, err, sizeof(err)), 0);
    assert_int_equal(sd_evade_run(&s, &t, &r), 0);
    if (r.f.end != SD_FETCH_DONE)
        fprintf(stderr, "%s: %s: %s / %s\n", strategy, sd_fetch_end_name(r.f.end), r.note, r.f.detail);
    assert_int_equal(r.f.end, SD_FETCH_DONE);
    assert_true(r.applied);
    assert_true(r.f.bytes >= 1 << 20);
    assert_string_equal(r.f.tls_version, "QUIC");
}

static void test_quic_strategies(void **state)
{
    (void)state;
    run_quic("quic-none");
    run_quic("quic-small");
    run_quic("quic-draft29");
    run_quic("quic-junk-first");
    run_quic("quic-sni-other");
    if (geteuid() == 0)
        run_quic("quic-ipfrag"); /* a raw socket */

    /* Nobody answers: a timeout at the handshake stage, not an error. */
    struct sd_evade_spec s;
    struct sd_evade_result r;
    char err[200];
    struct sd_evade_target t = {.addr = "127.0.0.1", .port = 9, .sni = "twitter.com", .bytes = 1000,
                                .handshake_timeout_ns = 300ull * SD_NS_PER_MS};
    assert_int_equal(sd_evade_parse("quic-none", &s, err, sizeof(err)), 0);
    assert_int_equal(sd_evade_run(&s, &t, &r), 0);
    assert_true(r.f.end == SD_FETCH_TIMEOUT || r.f.end == SD_FETCH_ERROR);
    assert_int_equal(r.f.stage, SD_FETCH_HANDSHAKE);
}

static void test_run_errors(void **state)
{
    struct sd_evade_spec s;
    struct sd_evade_result r;
    char err[200];
    struct sd_evade_target t = {.addr = "127.0.0.1", .port = sd_serve_port(srv.s, true), .sni = "twitter.com",
                                .bytes = 1000};
    (void)state;

    /* A proxy strategy without a proxy. */
    assert_int_equal(sd_evade_parse("http-proxy", &s, err, sizeof(err)), 0);
    assert_int_equal(sd_evade_run(&s, &t, &r), SD_EINVAL);
    assert_non_null(strstr(r.note, "proxy"));
    /* Nothing to fetch. */
    t.bytes = 0;
    assert_int_equal(sd_evade_parse("none", &s, err, sizeof(err)), 0);
    assert_int_equal(sd_evade_run(&s, &t, &r), SD_EINVAL);
    /* A closed port is a result (rst at connect), not an error. */
    t.bytes = 1000;
    t.port = 1;
    assert_int_equal(sd_evade_run(&s, &t, &r), 0);
    assert_int_equal(r.f.end, SD_FETCH_RST);
    assert_int_equal(r.f.stage, SD_FETCH_CONNECT);
}

static void test_external(void **state)
{
    struct sd_evade_result r;
    uint64_t bins[64];
    struct sd_evade_target t = {.addr = "127.0.0.1", .port = 443, .sni = "twitter.com",
                                .duration_ns = 400ull * SD_NS_PER_MS, .bins = bins, .max_bins = 64};
    (void)state;

    /* A command that writes 100000 bytes and exits 0. */
    assert_int_equal(sd_evade_run_external("head -c 100000 /dev/zero", &t, &r), 0);
    assert_int_equal(r.f.end, SD_FETCH_DONE);
    assert_int_equal(r.f.bytes, 100000);
    assert_true(r.applied);
    /* One that keeps writing is stopped when the time is over. */
    uint64_t t0 = sd_mono_ns();
    assert_int_equal(sd_evade_run_external("yes", &t, &r), 0);
    assert_int_equal(r.f.end, SD_FETCH_DONE);
    assert_true(r.f.bytes > 0);
    assert_true(sd_mono_ns() - t0 < 3ull * SD_NS_PER_S);
    /* One that fails says how. */
    assert_int_equal(sd_evade_run_external("echo nope >&2; exit 3", &t, &r), 0);
    assert_int_equal(r.f.end, SD_FETCH_ERROR);
    assert_non_null(strstr(r.f.detail, "exit 3"));
    assert_non_null(strstr(r.f.detail, "nope"));
    /* One that writes nothing in time: a timeout. */
    t.handshake_timeout_ns = 300ull * SD_NS_PER_MS;
    assert_int_equal(sd_evade_run_external("sleep 5", &t, &r), 0);
    assert_int_equal(r.f.end, SD_FETCH_TIMEOUT);
    assert_int_equal(r.f.bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_defaults),  cmocka_unit_test(test_parse_args),
        cmocka_unit_test(test_marks),           cmocka_unit_test(test_tlsrec),
        cmocka_unit_test(test_ccs),             cmocka_unit_test(test_sni_spelling),
        cmocka_unit_test(test_segment),         cmocka_unit_test(test_fragments),
        cmocka_unit_test(test_junk),            cmocka_unit_test(test_expand),
        cmocka_unit_test(test_quic_initial),    cmocka_unit_test(test_udp_fragments),
        cmocka_unit_test(test_socket_strategies), cmocka_unit_test(test_quic_strategies),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_external),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
