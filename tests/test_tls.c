/*
 * test_tls.c - ClientHello parsing: generated browser-like hellos, the RFC
 * 8448 "Simple 1-RTT" hello, the 2021 TSPU field checks of spec B3 (which
 * failures keep the box looking, SD_ENOENT, and which do not, SD_EPROTO),
 * stream gathering across records, and truncation at every length with the
 * input flush against a PROT_NONE page.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bytes.h"
#include "gen.h"
#include "tls.h"

enum { BUF = 70000, GUARD_AREA = 1 << 17 };

/* RFC 8448 section 3, {client} send handshake record: the ClientHello record. */
static const uint8_t rfc8448_ch[] = {
    0x16, 0x03, 0x01, 0x00, 0xc4, 0x01, 0x00, 0x00, 0xc0, 0x03, 0x03, 0xcb, 0x34, 0xec, 0xb1, 0xe7, 0x81, 0x63, 0xba, 0x1c, 0x38,
    0xc6, 0xda, 0xcb, 0x19, 0x6a, 0x6d, 0xff, 0xa2, 0x1a, 0x8d, 0x99, 0x12, 0xec, 0x18, 0xa2, 0xef, 0x62, 0x83, 0x02, 0x4d, 0xec,
    0xe7, 0x00, 0x00, 0x06, 0x13, 0x01, 0x13, 0x03, 0x13, 0x02, 0x01, 0x00, 0x00, 0x91, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x09, 0x00,
    0x00, 0x06, 0x73, 0x65, 0x72, 0x76, 0x65, 0x72, 0xff, 0x01, 0x00, 0x01, 0x00, 0x00, 0x0a, 0x00, 0x14, 0x00, 0x12, 0x00, 0x1d,
    0x00, 0x17, 0x00, 0x18, 0x00, 0x19, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00, 0x00,
    0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20, 0x99, 0x38, 0x1d, 0xe5, 0x60, 0xe4, 0xbd, 0x43, 0xd2, 0x3d, 0x8e, 0x43,
    0x5a, 0x7d, 0xba, 0xfe, 0xb3, 0xc0, 0x6e, 0x51, 0xc1, 0x3c, 0xae, 0x4d, 0x54, 0x13, 0x69, 0x1e, 0x52, 0x9a, 0xaf, 0x2c, 0x00,
    0x2b, 0x00, 0x03, 0x02, 0x03, 0x04, 0x00, 0x0d, 0x00, 0x20, 0x00, 0x1e, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x02, 0x03, 0x08,
    0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x02, 0x01, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x02, 0x02,
    0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x1c, 0x00, 0x02, 0x40, 0x01,
};

/* ---- helpers ---- */

/* An mmap'd area whose last readable byte is followed by a PROT_NONE page. */
struct guard {
    uint8_t *base;
    size_t size, page;
};

static void guard_init(struct guard *g)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    g->size = GUARD_AREA;
    g->base = mmap(NULL, g->size + g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->base != MAP_FAILED);
    assert_int_equal(mprotect(g->base + g->size, g->page, PROT_NONE), 0);
}

/* Copies |n| bytes so that the last one sits just before the guard page. */
static const uint8_t *guard_put(struct guard *g, const uint8_t *src, size_t n)
{
    assert_true(n <= g->size);
    uint8_t *dst = g->base + g->size - n;
    if (n)
        memcpy(dst, src, n);
    return dst;
}

static void guard_free(struct guard *g)
{
    munmap(g->base, g->size + g->page);
}

static bool iov_is(struct sd_iov v, const char *s)
{
    return v.p != NULL && v.n == strlen(s) && memcmp(v.p, s, v.n) == 0;
}

static bool inside(const uint8_t *q, const uint8_t *lo, size_t n)
{
    return q >= lo && q < lo + n;
}

/* The default generated hello: SNI twitter.com, ALPN h2 and http/1.1. */
static struct sd_gen_hello twitter_hello(void)
{
    struct sd_gen_hello h = {.sni = "twitter.com", .alpn = {"h2", "http/1.1", NULL}};
    return h;
}

/* Offset of extension |type|'s type field in the one-record hello |r|, or 0. */
static size_t ext_at(const uint8_t *r, size_t n, uint16_t type)
{
    size_t o = 5 + 4 + 2 + 32;
    o += 1 + r[o];
    o += 2 + sd_rd16be(r + o);
    o += 1 + r[o];
    size_t end = o + 2 + sd_rd16be(r + o);
    for (o += 2; o + 4 <= end && end <= n; o += 4 + sd_rd16be(r + o + 2)) {
        if (sd_rd16be(r + o) == type)
            return o;
    }
    return 0;
}

/*
 * A hand-built hello record: session id, cipher suites and compression
 * vectors of the given lengths (filled with plausible bytes), then the
 * extension block |ext| (omitted when NULL), then |trail| stray bytes inside
 * the handshake message.
 */
static size_t raw_hello(uint8_t *buf, uint8_t sid, uint16_t suites, uint8_t comp, const uint8_t *ext, size_t ext_n, size_t trail)
{
    uint8_t hs[2048];
    size_t o = 4;
    hs[0] = 1;
    o = (size_t)(sd_put16be(hs + o, 0x0303) - hs);
    memset(hs + o, 0xab, 32);
    o += 32;
    hs[o++] = sid;
    memset(hs + o, 0x5d, sid);
    o += sid;
    o = (size_t)(sd_put16be(hs + o, suites) - hs);
    for (size_t i = 0; i < suites; i++)
        hs[o++] = i % 2 ? 0x01 : 0x13;
    hs[o++] = comp;
    memset(hs + o, 0, comp);
    o += comp;
    if (ext) {
        o = (size_t)(sd_put16be(hs + o, (uint16_t)ext_n) - hs);
        memcpy(hs + o, ext, ext_n);
        o += ext_n;
    }
    memset(hs + o, 0, trail);
    o += trail;
    sd_put24be(hs + 1, (uint32_t)(o - 4));
    return sd_gen_tls_record(buf, BUF, 22, hs, o);
}

/* Splits the handshake message |hs| (|n| bytes) into records at |cuts| (sizes
 * of all but the last record), writing them back to back into |out|. */
static size_t split_records(uint8_t *out, const uint8_t *hs, size_t n, const size_t *cuts, size_t ncuts)
{
    size_t o = 0, at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t len = i < ncuts ? cuts[i] : n - at;
        size_t w = sd_gen_tls_record(out + o, BUF - o, 22, hs + at, len);
        assert_true(w == len + 5);
        o += w;
        at += len;
    }
    assert_int_equal(at, n);
    return o;
}

/* ---- generated hellos, strict mode ---- */

static void test_generated_basic(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_true(n > 200 && n < 1000);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(iov_is(h.sni, "twitter.com"));
    assert_true(inside(h.sni.p, r, n));
    assert_true(h.has_sni);
    assert_int_equal(h.n_alpn, 2);
    assert_true(iov_is(h.alpn[0], "h2"));
    assert_true(iov_is(h.alpn[1], "http/1.1"));
    assert_false(h.has_ech);
    assert_false(h.has_padding);
    assert_int_equal(h.legacy_version, 0x0303);
    assert_int_equal(h.record_version, 0x0301);
    assert_int_equal(h.record_len, n - 5);
    assert_int_equal(h.hs_len, n - 9);
    assert_int_equal(h.n_ext, 14);
    assert_int_equal(h.records, 1);
    assert_int_equal(h.facts, SD_TLS_RECORD_IN_SEGMENT | SD_TLS_HS_IN_RECORD | SD_TLS_FIRST_RECORD);
    assert_true(sd_tls_looks_like_record(r, r + n));
}

static void test_generated_options(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = {.sni = "abs.twimg.com",
                             .alpn = {"h2", "http/1.1", "h3", "spdy/3"},
                             .ech = true,
                             .padding = 300,
                             .key_share_extra = 1184,
                             .session_id_len = 16,
                             .sni_first = true};
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_true(n > 1184 + 300 + 176);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(iov_is(h.sni, "abs.twimg.com"));
    assert_int_equal(h.n_alpn, 4);
    assert_true(iov_is(h.alpn[3], "spdy/3"));
    assert_true(h.has_ech);
    assert_true(h.has_padding);
    assert_int_equal(h.padding_len, 300);
    assert_int_equal(h.n_ext, 16);
    assert_int_equal(r[43], 16); /* session id length */
    /* sni_first: server_name is the first extension. */
    size_t first = 5 + 4 + 2 + 32 + 1 + 16 + 2 + 30 + 2 + 2;
    assert_int_equal(ext_at(r, n, 0), first);
    g.sni_first = false;
    n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_true(ext_at(r, n, 0) > first);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(iov_is(h.sni, "abs.twimg.com"));
}

static void test_generated_no_sni_no_alpn(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = {0};
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_false(h.has_sni);
    assert_null(h.sni.p);
    assert_int_equal(h.n_alpn, 0);
    assert_int_equal(r[43], 32); /* the default session id length */
}

static void test_generator_capacity(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_int_equal(sd_gen_client_hello_record(r, n - 1, &g), 0);
    assert_int_equal(sd_gen_client_hello_record(r, n, &g), n);
    assert_int_equal(sd_gen_client_hello(r, n - 6, &g), 0);
    assert_int_equal(sd_gen_client_hello(r, n - 5, &g), n - 5);
    g.key_share_extra = 70000; /* a share cannot exceed 2^16 - 1 bytes */
    assert_int_equal(sd_gen_client_hello(r, sizeof(r), &g), 0);
    uint8_t body[3] = {1, 2, 3};
    assert_int_equal(sd_gen_tls_record(r, 7, 23, body, 3), 0);
    assert_int_equal(sd_gen_tls_record(r, 8, 23, body, 3), 8);
    static const uint8_t want[] = {23, 3, 1, 0, 3, 1, 2, 3};
    assert_memory_equal(r, want, sizeof(want));
}

static void test_rfc8448(void **state)
{
    (void)state;
    struct sd_tls_hello h;
    const uint8_t *p = rfc8448_ch, *end = p + sizeof(rfc8448_ch);
    assert_int_equal(sizeof(rfc8448_ch), 201);
    assert_int_equal(sd_tls_strict(p, end, &h), 201);
    assert_true(iov_is(h.sni, "server"));
    assert_int_equal(h.n_alpn, 0);
    assert_int_equal(h.n_ext, 9);
    assert_int_equal(h.legacy_version, 0x0303);
    assert_int_equal(h.record_len, 196);
    assert_int_equal(h.hs_len, 192);
    assert_false(h.has_ech);
    assert_int_equal(sd_tls_client_hello(p + 5, end, &h), 196);
    assert_true(iov_is(h.sni, "server"));
    uint8_t scratch[64];
    assert_int_equal(sd_tls_stream(p, end, scratch, sizeof(scratch), &h), 201);
    assert_ptr_equal(h.sni.p, p + 5 + 4 + 2 + 32 + 1 + 2 + 6 + 2 + 2 + 4 + 5);
}

/* ---- strict mode: what keeps the box looking (spec B3, B6) ---- */

static void test_strict_ccs_first(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    memcpy(r, ccs, sizeof(ccs));
    size_t n = sizeof(ccs) + sd_gen_client_hello_record(r + sizeof(ccs), sizeof(r) - sizeof(ccs), &g);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
    assert_int_equal(h.record_len, 1);
    assert_int_equal(h.record_version, 0x0303);
    assert_null(h.sni.p);
    /* The same hello without the CCS record in front is found. */
    assert_int_equal(sd_tls_strict(r + 6, r + n, &h), (int)n - 6);
    /* An application-data or alert record first is TLS too. */
    r[0] = 23;
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
    r[0] = 21;
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
}

static void test_strict_record_longer_than_segment(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_int_equal(sd_tls_strict(r, r + n - 1, &h), SD_ENOENT);
    assert_int_equal(h.record_len, n - 5);
    assert_int_equal(h.hs_len, n - 9);
    assert_int_equal(h.facts, SD_TLS_HS_IN_RECORD);
    /* A record length one larger than what the segment carries. */
    sd_put16be(r + 3, (uint16_t)(n - 4));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
    assert_false(h.facts & SD_TLS_RECORD_IN_SEGMENT);
    /* A segment with extra bytes after the record: the record alone is consumed. */
    n = sd_gen_client_hello_record(r, sizeof(r), &g);
    memset(r + n, 0xee, 40);
    assert_int_equal(sd_tls_strict(r, r + n + 40, &h), (int)n);
    assert_true(iov_is(h.sni, "twitter.com"));
}

static void test_strict_handshake_longer_than_record(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    sd_put24be(r + 6, (uint32_t)(n - 9 + 1));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
    assert_int_equal(h.hs_len, n - 8);
    assert_int_equal(h.facts, SD_TLS_RECORD_IN_SEGMENT);
    /* A shorter handshake length leaves stray bytes inside the hello: malformed. */
    sd_put24be(r + 6, (uint32_t)(n - 9 - 1));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    /* Record length 4 larger than needed, with the handshake message intact:
     * the record holds the hello and 4 more bytes (another message). */
    n = sd_gen_client_hello_record(r, sizeof(r), &g);
    memset(r + n, 0, 4);
    sd_put16be(r + 3, (uint16_t)(n - 5 + 4));
    assert_int_equal(sd_tls_strict(r, r + n + 4, &h), (int)n + 4);
    assert_true(iov_is(h.sni, "twitter.com"));
}

static void test_strict_scrambled_type_bytes(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    r[0] = 0x00; /* byte 0: not a TLS content type */
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    r[0] = 0xff;
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    r[0] = 0x16;
    r[5] = 0x02; /* byte 5: a ServerHello, still a valid-looking TLS record */
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
    r[5] = 0xfe;
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_ENOENT);
    r[5] = 0x01;
    r[1] = 0x04; /* major version */
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    r[1] = 0x03;
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
}

static void test_strict_record_length_limit(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    g.key_share_extra = 16384; /* a 17 KB hello still fits the 2^14 + 2048 header limit */
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_true(n - 5 > 16384 && n - 5 <= 18432);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(iov_is(h.sni, "twitter.com"));
    g.key_share_extra = 20000;
    n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_true(n - 5 > 18432);
    assert_false(sd_tls_looks_like_record(r, r + n));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
}

static void test_strict_scrambled_lengths(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    const size_t sid_at = 43, suites_at = 44 + 32;
    static const uint8_t sid_vals[] = {0, 31, 33, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(sid_vals); i++) {
        r[sid_at] = sid_vals[i];
        assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    }
    r[sid_at] = 32;
    static const uint16_t suite_vals[] = {0, 28, 29, 31, 32, 0x1000, 0xffff};
    for (size_t i = 0; i < SD_COUNTOF(suite_vals); i++) {
        sd_put16be(r + suites_at, suite_vals[i]);
        assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    }
    sd_put16be(r + suites_at, 30);
    /* The extensions block length, one off either way. */
    size_t ext_len_at = suites_at + 2 + 30 + 2;
    uint16_t el = sd_rd16be(r + ext_len_at);
    sd_put16be(r + ext_len_at, (uint16_t)(el + 1));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    sd_put16be(r + ext_len_at, (uint16_t)(el - 1));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    sd_put16be(r + ext_len_at, el);
    /* One extension's length, one larger. */
    size_t sni = ext_at(r, n, 0);
    sd_put16be(r + sni + 2, (uint16_t)(sd_rd16be(r + sni + 2) + 1));
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
}

static void test_strict_server_name_type_scrambled(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    size_t sni = ext_at(r, n, 0);
    assert_true(sni > 0);
    sd_put16be(r + sni, 0x0f0f); /* an unknown extension now: the hello is fine, without SNI */
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_false(h.has_sni);
    assert_null(h.sni.p);
    assert_int_equal(h.n_alpn, 2);
}

static void test_strict_name_type_scrambled(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    size_t sni = ext_at(r, n, 0);
    assert_int_equal(r[sni + 6], 0); /* name_type host_name */
    r[sni + 6] = 0x01;
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(h.has_sni);
    assert_null(h.sni.p); /* no host_name: not found */
}

static void test_strict_sni_moved(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = {.alpn = {"twitter.com", NULL}};
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    assert_non_null(memmem(r, n, "twitter.com", 11)); /* the name is in the packet ... */
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_false(h.has_sni); /* ... but not where a structural walk looks */
    assert_null(h.sni.p);
    assert_true(iov_is(h.alpn[0], "twitter.com"));
}

static void test_strict_short_segments(void **state)
{
    (void)state;
    struct sd_tls_hello h;
    static const uint8_t hdr[] = {22, 3, 1, 0, 0, 1};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(sd_tls_strict(hdr, hdr + i, &h), SD_EPROTO);
    /* A zero-length handshake record, and one too short for a handshake header. */
    assert_int_equal(sd_tls_strict(hdr, hdr + 5, &h), SD_ENOENT);
    static const uint8_t tiny[] = {22, 3, 1, 0, 3, 1, 0, 0};
    assert_int_equal(sd_tls_strict(tiny, tiny + sizeof(tiny), &h), SD_ENOENT);
    assert_int_equal(h.record_len, 3);
    assert_int_equal(h.hs_len, 0);
    static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: twitter.com\r\n\r\n";
    assert_int_equal(sd_tls_strict(http, http + sizeof(http) - 1, &h), SD_EPROTO);
    assert_false(sd_tls_looks_like_record(http, http + sizeof(http) - 1));
    assert_false(sd_tls_looks_like_record(hdr, hdr + 4));
    assert_true(sd_tls_looks_like_record(hdr, hdr + 5));
}

/* ---- extension bodies and vectors (hand-built hellos) ---- */

static void test_server_name_list(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_tls_hello h;
    /* An entry of another name_type first, then two host_names: the first host_name wins. */
    static const uint8_t ext[] = {0, 0,   0,   24,  0,   22,  7, 0, 3, 'x', 'y', 'z', 0,   0,
                                  5, 'a', '.', 'c', 'o', 'm', 0, 0, 5, 'b', '.', 'c', 'o', 'm'};
    size_t n = raw_hello(r, 0, 2, 1, ext, sizeof(ext), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(iov_is(h.sni, "a.com"));
    assert_int_equal(h.n_ext, 1);
    /* A second server_name extension does not replace the first. */
    static const uint8_t two[] = {0, 0, 0, 8, 0, 6, 0, 0, 3, 'o', 'n', 'e', 0, 0, 0, 8, 0, 6, 0, 0, 3, 't', 'w', 'o'};
    n = raw_hello(r, 0, 2, 1, two, sizeof(two), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(iov_is(h.sni, "one"));
    assert_int_equal(h.n_ext, 2);
}

static void test_server_name_malformed(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_tls_hello h;
    static const uint8_t empty_body[] = {0, 0, 0, 0};
    static const uint8_t empty_list[] = {0, 0, 0, 2, 0, 0};
    static const uint8_t empty_name[] = {0, 0, 0, 5, 0, 3, 0, 0, 0};
    static const uint8_t list_short[] = {0, 0, 0, 7, 0, 4, 0, 0, 2, 'a', 'b'};
    static const uint8_t list_long[] = {0, 0, 0, 7, 0, 6, 0, 0, 2, 'a', 'b'};
    static const uint8_t name_long[] = {0, 0, 0, 7, 0, 5, 0, 0, 3, 'a', 'b'};
    static const uint8_t cut_entry[] = {0, 0, 0, 4, 0, 2, 0, 0};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{empty_body, sizeof(empty_body)}, {empty_list, sizeof(empty_list)}, {empty_name, sizeof(empty_name)},
               {list_short, sizeof(list_short)}, {list_long, sizeof(list_long)},   {name_long, sizeof(name_long)},
               {cut_entry, sizeof(cut_entry)}};
    for (size_t i = 0; i < SD_COUNTOF(bad); i++) {
        size_t n = raw_hello(r, 0, 2, 1, bad[i].p, bad[i].n, 0);
        assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
        assert_int_equal(sd_tls_client_hello(r + 5, r + n, &h), SD_EPROTO);
    }
}

static void test_alpn_cap_and_malformed(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    uint8_t ext[64];
    struct sd_tls_hello h;
    size_t o = 6;
    for (int i = 0; i < 10; i++) {
        ext[o++] = 2;
        ext[o++] = 'p';
        ext[o++] = (uint8_t)('0' + i);
    }
    sd_put16be(ext, 16);
    sd_put16be(ext + 2, (uint16_t)(o - 4));
    sd_put16be(ext + 4, (uint16_t)(o - 6));
    size_t n = raw_hello(r, 0, 2, 1, ext, o, 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_int_equal(h.n_alpn, SD_TLS_ALPN_MAX);
    assert_true(iov_is(h.alpn[0], "p0"));
    assert_true(iov_is(h.alpn[7], "p7"));
    static const uint8_t name0[] = {0, 16, 0, 3, 0, 1, 0};
    static const uint8_t empty_list[] = {0, 16, 0, 2, 0, 0};
    static const uint8_t name_overruns[] = {0, 16, 0, 5, 0, 3, 3, 'h', '2'};
    static const uint8_t list_short[] = {0, 16, 0, 5, 0, 2, 1, 'h', '2'};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{name0, sizeof(name0)},
               {empty_list, sizeof(empty_list)},
               {name_overruns, sizeof(name_overruns)},
               {list_short, sizeof(list_short)}};
    for (size_t i = 0; i < SD_COUNTOF(bad); i++) {
        n = raw_hello(r, 0, 2, 1, bad[i].p, bad[i].n, 0);
        assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    }
}

static void test_hello_vectors(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_tls_hello h;
    static const uint8_t pad[] = {0, 21, 0, 3, 0, 0, 0, 0xfe, 0x0d, 0, 0};
    /* No extension block at all (TLS 1.0 style) is fine. */
    size_t n = raw_hello(r, 32, 2, 1, NULL, 0, 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_int_equal(h.n_ext, 0);
    /* An empty extension block; padding and an (empty-bodied) ECH extension. */
    n = raw_hello(r, 0, 4, 2, pad, 0, 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    n = raw_hello(r, 0, 4, 2, pad, sizeof(pad), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), (int)n);
    assert_true(h.has_padding && h.has_ech);
    assert_int_equal(h.padding_len, 3);
    /* Session id over 32 bytes, odd or empty suites, empty compression. */
    n = raw_hello(r, 33, 2, 1, pad, sizeof(pad), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    n = raw_hello(r, 0, 3, 1, pad, sizeof(pad), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    n = raw_hello(r, 0, 0, 1, pad, sizeof(pad), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    n = raw_hello(r, 0, 2, 0, pad, sizeof(pad), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    /* Bytes after the extension block, or a lone byte where it would start. */
    n = raw_hello(r, 0, 2, 1, pad, sizeof(pad), 1);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    n = raw_hello(r, 0, 2, 1, NULL, 0, 1);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    /* A truncated extension header inside the block. */
    static const uint8_t cut[] = {0, 21, 0};
    n = raw_hello(r, 0, 2, 1, cut, sizeof(cut), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    /* A good server_name, then a malformed extension: no view survives the error. */
    static const uint8_t late[] = {0, 0, 0, 8, 0, 6, 0, 0, 3, 'o', 'n', 'e', 0, 21, 0};
    n = raw_hello(r, 0, 2, 1, late, sizeof(late), 0);
    assert_int_equal(sd_tls_strict(r, r + n, &h), SD_EPROTO);
    assert_null(h.sni.p);
    assert_false(h.has_sni);
    assert_int_equal(sd_tls_client_hello(r + 5, r + n, &h), SD_EPROTO);
    assert_null(h.sni.p);
    /* A body too short for version and random. */
    static const uint8_t stub[] = {22, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0};
    assert_int_equal(sd_tls_strict(stub, stub + sizeof(stub), &h), SD_EPROTO);
}

/* ---- bare handshake messages ---- */

static void test_bare_hello(void **state)
{
    (void)state;
    static uint8_t b[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello(b, sizeof(b), &g);
    memset(b + n, 0x77, 10);
    assert_int_equal(sd_tls_client_hello(b, b + n + 10, &h), (int)n);
    assert_true(iov_is(h.sni, "twitter.com"));
    assert_int_equal(h.records, 0);
    assert_int_equal(h.hs_len, n - 4);
    assert_int_equal(sd_tls_client_hello(b, b + n - 1, &h), SD_EAGAIN);
    assert_int_equal(sd_tls_client_hello(b, b, &h), SD_EAGAIN);
    b[0] = 2;
    assert_int_equal(sd_tls_client_hello(b, b + n, &h), SD_EPROTO);
    assert_int_equal(sd_tls_client_hello(b, b + 1, &h), SD_EPROTO);
    b[0] = 1;
    sd_put24be(b + 1, 0xffffff); /* larger than any hello can be */
    assert_int_equal(sd_tls_client_hello(b, b + 4, &h), SD_EPROTO);
}

/* ---- stream mode ---- */

static void check_stream_growing(const uint8_t *s, size_t n, uint8_t *scratch, size_t scratch_cap, int records)
{
    struct guard gd;
    struct sd_tls_hello h;
    guard_init(&gd);
    for (size_t k = 0; k < n; k++) {
        const uint8_t *p = guard_put(&gd, s, k);
        assert_int_equal(sd_tls_stream(p, p + k, scratch, scratch_cap, &h), SD_EAGAIN);
    }
    const uint8_t *p = guard_put(&gd, s, n);
    assert_int_equal(sd_tls_stream(p, p + n, scratch, scratch_cap, &h), (int)n);
    assert_true(iov_is(h.sni, "twitter.com"));
    assert_int_equal(h.records, records);
    assert_true(h.facts & SD_TLS_FIRST_RECORD);
    assert_true(h.facts & SD_TLS_RECORD_IN_SEGMENT);
    if (records > 1) {
        assert_true(h.facts & SD_TLS_MULTI_RECORD);
        assert_false(h.facts & SD_TLS_HS_IN_RECORD);
        assert_true(inside(h.sni.p, scratch, scratch_cap));
        assert_true(inside(h.alpn[0].p, scratch, scratch_cap));
    } else {
        assert_true(inside(h.sni.p, p, n));
    }
    guard_free(&gd);
}

static void test_stream_one_record(void **state)
{
    (void)state;
    static uint8_t r[BUF], scratch[BUF];
    struct sd_gen_hello g = twitter_hello();
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    check_stream_growing(r, n, scratch, sizeof(scratch), 1);
    /* Scratch is not needed when the hello sits in one record. */
    struct sd_tls_hello h;
    assert_int_equal(sd_tls_stream(r, r + n, NULL, 0, &h), (int)n);
    /* Bytes after the record are not consumed. */
    memset(r + n, 0x17, 20);
    assert_int_equal(sd_tls_stream(r, r + n + 20, scratch, sizeof(scratch), &h), (int)n);
}

static void test_stream_two_and_three_records(void **state)
{
    (void)state;
    static uint8_t hs[BUF], s[BUF], scratch[BUF];
    struct sd_gen_hello g = twitter_hello();
    size_t n = sd_gen_client_hello(hs, sizeof(hs), &g);
    size_t two[] = {100};
    size_t m = split_records(s, hs, n, two, 1);
    check_stream_growing(s, m, scratch, sizeof(scratch), 2);
    struct sd_tls_hello h;
    assert_int_equal(sd_tls_strict(s, s + m, &h), SD_ENOENT); /* the 2021 box sees no hello */
    assert_int_equal(h.hs_len, n - 4);
    /* The handshake header itself split (2 bytes, then 1, then the rest). */
    size_t three[] = {2, 1};
    m = split_records(s, hs, n, three, 2);
    check_stream_growing(s, m, scratch, sizeof(scratch), 3);
    assert_int_equal(sd_tls_strict(s, s + m, &h), SD_ENOENT);
    /* Cut right inside the server name. */
    size_t at_sni[] = {(size_t)((const uint8_t *)memmem(hs, n, "twitter", 7) - hs) + 3, 50};
    m = split_records(s, hs, n, at_sni, 2);
    check_stream_growing(s, m, scratch, sizeof(scratch), 3);
}

static void test_stream_large_hello(void **state)
{
    (void)state;
    static uint8_t hs[BUF], s[BUF], scratch[BUF];
    struct sd_gen_hello g = twitter_hello();
    g.key_share_extra = 17000;
    size_t n = sd_gen_client_hello(hs, sizeof(hs), &g);
    assert_true(n > 16384);
    size_t cut[] = {16384};
    size_t m = split_records(s, hs, n, cut, 1);
    struct sd_tls_hello h;
    assert_int_equal(sd_tls_stream(s, s + m, scratch, sizeof(scratch), &h), (int)m);
    assert_true(iov_is(h.sni, "twitter.com"));
    assert_int_equal(h.records, 2);
    assert_int_equal(h.record_len, 16384);
    assert_int_equal(h.hs_len, n - 4);
    assert_int_equal(sd_tls_stream(s, s + m - 1, scratch, sizeof(scratch), &h), SD_EAGAIN);
    assert_int_equal(sd_tls_stream(s, s + m, scratch, n - 1, &h), SD_ERANGE);
    assert_int_equal(sd_tls_stream(s, s + 100, scratch, n - 1, &h), SD_ERANGE); /* known from the header */
    assert_int_equal(sd_tls_stream(s, s + m, scratch, n, &h), (int)m);
    assert_int_equal(sd_tls_strict(s, s + m, &h), SD_ENOENT);
    assert_true(h.facts & SD_TLS_RECORD_IN_SEGMENT);
    assert_false(h.facts & SD_TLS_HS_IN_RECORD);
}

static void test_stream_not_a_hello(void **state)
{
    (void)state;
    static uint8_t hs[BUF], s[BUF], scratch[BUF];
    struct sd_gen_hello g = twitter_hello();
    struct sd_tls_hello h;
    size_t n = sd_gen_client_hello(hs, sizeof(hs), &g);
    /* A ChangeCipherSpec record before the hello. */
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    memcpy(s, ccs, sizeof(ccs));
    size_t m = sizeof(ccs) + sd_gen_tls_record(s + sizeof(ccs), BUF, 22, hs, n);
    assert_int_equal(sd_tls_stream(s, s + m, scratch, sizeof(scratch), &h), SD_ENOENT);
    assert_int_equal(h.record_len, 1);
    assert_int_equal(sd_tls_stream(s, s + 5, scratch, sizeof(scratch), &h), SD_ENOENT);
    assert_int_equal(sd_tls_stream(s, s + 1, scratch, sizeof(scratch), &h), SD_EAGAIN);
    /* An alert between two parts of the hello: interleaving is malformed. */
    size_t o = sd_gen_tls_record(s, BUF, 22, hs, 50);
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 1, 0};
    memcpy(s + o, alert, sizeof(alert));
    o += sizeof(alert);
    o += sd_gen_tls_record(s + o, BUF - o, 22, hs + 50, n - 50);
    assert_int_equal(sd_tls_stream(s, s + o, scratch, sizeof(scratch), &h), SD_EPROTO);
    /* A ServerHello type, in one record or with the type byte in its own record. */
    hs[0] = 2;
    m = sd_gen_tls_record(s, BUF, 22, hs, n);
    assert_int_equal(sd_tls_stream(s, s + m, scratch, sizeof(scratch), &h), SD_ENOENT);
    assert_int_equal(sd_tls_stream(s, s + 6, scratch, sizeof(scratch), &h), SD_ENOENT);
    size_t one[] = {1};
    m = split_records(s, hs, n, one, 1);
    assert_int_equal(sd_tls_stream(s, s + 6, scratch, sizeof(scratch), &h), SD_ENOENT);
    hs[0] = 1;
    /* Not TLS; a zero-length handshake record; a second record of a bad type. */
    static const uint8_t get[] = "GET / HTTP/1.1\r\n";
    assert_int_equal(sd_tls_stream(get, get + 16, scratch, sizeof(scratch), &h), SD_EPROTO);
    assert_int_equal(sd_tls_stream(get, get + 1, scratch, sizeof(scratch), &h), SD_EPROTO);
    static const uint8_t zero[] = {22, 3, 1, 0, 0};
    assert_int_equal(sd_tls_stream(zero, zero + 5, scratch, sizeof(scratch), &h), SD_EPROTO);
    o = sd_gen_tls_record(s, BUF, 22, hs, 50);
    s[o] = 0x30;
    assert_int_equal(sd_tls_stream(s, s + o + 1, scratch, sizeof(scratch), &h), SD_EPROTO);
    /* A malformed hello gathered across records. */
    size_t two[] = {60};
    m = split_records(s, hs, n, two, 1);
    s[5 + 4 + 2 + 32] = 0x40; /* the session id length, inside the first record */
    assert_int_equal(sd_tls_stream(s, s + m, scratch, sizeof(scratch), &h), SD_EPROTO);
}

/* ---- truncation at every length, against a guard page ---- */

static void check_truncations(const uint8_t *r, size_t n)
{
    static uint8_t scratch[BUF];
    struct guard gd;
    struct sd_tls_hello h;
    guard_init(&gd);
    for (size_t k = 0; k <= n; k++) {
        const uint8_t *p = guard_put(&gd, r, k);
        int want = k == n ? (int)n : k < 5 ? SD_EPROTO : SD_ENOENT;
        assert_int_equal(sd_tls_strict(p, p + k, &h), want);
        assert_int_equal(sd_tls_stream(p, p + k, scratch, sizeof(scratch), &h), k == n ? (int)n : SD_EAGAIN);
        if (k >= 5) {
            int bare = sd_tls_client_hello(p + 5, p + k, &h);
            assert_int_equal(bare, k == n ? (int)n - 5 : SD_EAGAIN);
        }
    }
    guard_free(&gd);
}

static void test_truncation_generated(void **state)
{
    (void)state;
    static uint8_t r[BUF];
    struct sd_gen_hello g = {.sni = "video.twimg.com", .alpn = {"h2", NULL}, .ech = true, .padding = 33};
    size_t n = sd_gen_client_hello_record(r, sizeof(r), &g);
    check_truncations(r, n);
}

static void test_truncation_rfc8448(void **state)
{
    (void)state;
    check_truncations(rfc8448_ch, sizeof(rfc8448_ch));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_basic),
        cmocka_unit_test(test_generated_options),
        cmocka_unit_test(test_generated_no_sni_no_alpn),
        cmocka_unit_test(test_generator_capacity),
        cmocka_unit_test(test_rfc8448),
        cmocka_unit_test(test_strict_ccs_first),
        cmocka_unit_test(test_strict_record_longer_than_segment),
        cmocka_unit_test(test_strict_handshake_longer_than_record),
        cmocka_unit_test(test_strict_scrambled_type_bytes),
        cmocka_unit_test(test_strict_record_length_limit),
        cmocka_unit_test(test_strict_scrambled_lengths),
        cmocka_unit_test(test_strict_server_name_type_scrambled),
        cmocka_unit_test(test_strict_name_type_scrambled),
        cmocka_unit_test(test_strict_sni_moved),
        cmocka_unit_test(test_strict_short_segments),
        cmocka_unit_test(test_server_name_list),
        cmocka_unit_test(test_server_name_malformed),
        cmocka_unit_test(test_alpn_cap_and_malformed),
        cmocka_unit_test(test_hello_vectors),
        cmocka_unit_test(test_bare_hello),
        cmocka_unit_test(test_stream_one_record),
        cmocka_unit_test(test_stream_two_and_three_records),
        cmocka_unit_test(test_stream_large_hello),
        cmocka_unit_test(test_stream_not_a_hello),
        cmocka_unit_test(test_truncation_generated),
        cmocka_unit_test(test_truncation_rfc8448),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
