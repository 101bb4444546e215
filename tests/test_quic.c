/*
 * test_quic.c - QUIC Initial decryption against the published vectors
 * (RFC 9001 and RFC 9369 Appendix A, the draft-31 Appendix A) and against
 * packets from tests/support/gen_quic.c, which derives its keys through
 * OpenSSL's own HKDF and TLS13-KDF: split and reordered ClientHellos,
 * coalesced packets, frame types, tampering, every truncation (flush against
 * a PROT_NONE page), and a count of OpenSSL allocations while decrypting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/crypto.h>

#include "gen_quic.h"
#include "quic.h"

#include "quic_vectors.h"

/* ---- helpers ---- */

static const uint8_t dcid8[8] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};

/* Decodes |s| into |out|; the whole string must be hex and fit. */
static size_t unhex(uint8_t *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    assert_true(n % 2 == 0 && n / 2 <= cap);
    for (size_t i = 0; i < n / 2; i++) {
        char b[3] = {s[2 * i], s[2 * i + 1], 0};
        char *e;
        out[i] = (uint8_t)strtoul(b, &e, 16);
        assert_true(*e == 0);
    }
    return n / 2;
}

/* Input placed flush against a PROT_NONE page, so any overread faults. */
struct guarded {
    uint8_t *map;
    size_t page;
};

static uint8_t *guard_put(struct guarded *g, const uint8_t *p, size_t n)
{
    g->page = (size_t)sysconf(_SC_PAGESIZE);
    assert_true(n <= 4 * g->page);
    g->map = mmap(NULL, 5 * g->page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + 4 * g->page, g->page, PROT_NONE), 0);
    uint8_t *at = g->map + 4 * g->page - n;
    if (n)
        memcpy(at, p, n);
    return at;
}

static void guard_drop(struct guarded *g)
{
    munmap(g->map, 5 * g->page);
}

/*
 * The server_name of a ClientHello handshake message, by a minimal walk (the
 * TLS parser lives in tls.c): type 1, length, version, random, session id,
 * cipher suites, compression methods, then extensions until type 0.
 * Returns the name's length (copied to |name|) or -1.
 */
static int find_sni(const uint8_t *p, size_t n, char *name, size_t cap)
{
    const uint8_t *end = p + n;
    if (n < 4 + 2 + 32 + 1 || p[0] != 1)
        return -1;
    p += 4 + 2 + 32;
    p += 1 + p[0]; /* session id */
    if (end - p < 2)
        return -1;
    p += 2 + (p[0] << 8 | p[1]); /* cipher suites */
    if (end - p < 1)
        return -1;
    p += 1 + p[0]; /* compression methods */
    if (end - p < 2)
        return -1;
    p += 2;
    while (end - p >= 4) {
        size_t type = (size_t)(p[0] << 8 | p[1]), len = (size_t)(p[2] << 8 | p[3]);
        p += 4;
        if ((size_t)(end - p) < len)
            return -1;
        /* server_name_list length (2), name_type 0 (1), host_name (2 + n) */
        if (type == 0 && len >= 5 && p[2] == 0) {
            size_t hl = (size_t)(p[3] << 8 | p[4]);
            if (hl + 5 > len || hl >= cap)
                return -1;
            memcpy(name, p + 5, hl);
            name[hl] = 0;
            return (int)hl;
        }
        p += len;
    }
    return -1;
}

/* A ClientHello of exactly |total| bytes naming |sni|, filled with a padding
 * extension (RFC 7685) and a deterministic random. */
static void make_hello(uint8_t *b, size_t total, const char *sni)
{
    size_t sl = strlen(sni), n = 0;
    size_t fixed = 4 + 2 + 32 + 1 + 4 + 2 + 2 + (4 + 2 + 1 + 2 + sl) + 4;
    assert_true(total >= fixed && total - 4 < 0x10000);
    size_t pad = total - fixed, ext = (4 + 2 + 1 + 2 + sl) + 4 + pad;
    b[n++] = 1;
    b[n++] = (uint8_t)((total - 4) >> 16);
    b[n++] = (uint8_t)((total - 4) >> 8);
    b[n++] = (uint8_t)(total - 4);
    b[n++] = 3;
    b[n++] = 3;
    for (int i = 0; i < 32; i++)
        b[n++] = (uint8_t)(i * 37 + 11);
    b[n++] = 0;                               /* session id */
    memcpy(b + n, "\x00\x02\x13\x01", 4);     /* TLS_AES_128_GCM_SHA256 */
    n += 4;
    memcpy(b + n, "\x01\x00", 2);             /* null compression */
    n += 2;
    b[n++] = (uint8_t)(ext >> 8);
    b[n++] = (uint8_t)ext;
    b[n++] = 0, b[n++] = 0;                   /* server_name */
    b[n++] = (uint8_t)((sl + 5) >> 8), b[n++] = (uint8_t)(sl + 5);
    b[n++] = (uint8_t)((sl + 3) >> 8), b[n++] = (uint8_t)(sl + 3);
    b[n++] = 0;
    b[n++] = (uint8_t)(sl >> 8), b[n++] = (uint8_t)sl;
    memcpy(b + n, sni, sl);
    n += sl;
    b[n++] = 0, b[n++] = 21;                  /* padding */
    b[n++] = (uint8_t)(pad >> 8), b[n++] = (uint8_t)pad;
    memset(b + n, 0, pad);
    n += pad;
    assert_int_equal(n, total);
}

/* A Handshake (or other non-Initial) long-header packet with |body| bytes
 * after the Length field: its content is never decrypted here. */
static size_t make_long(uint8_t *out, uint8_t first, uint32_t version, size_t body)
{
    size_t n = 0;
    out[n++] = first;
    out[n++] = (uint8_t)(version >> 24), out[n++] = (uint8_t)(version >> 16);
    out[n++] = (uint8_t)(version >> 8), out[n++] = (uint8_t)version;
    out[n++] = 8;
    memcpy(out + n, dcid8, 8);
    n += 8;
    out[n++] = 0; /* empty SCID */
    out[n++] = (uint8_t)(0x40 | body >> 8), out[n++] = (uint8_t)body;
    for (size_t i = 0; i < body; i++)
        out[n++] = (uint8_t)(i * 13 + 5);
    return n;
}

static struct sd_quic_ctx *ctx_of(void **state)
{
    return *state;
}

/* ---- key derivation ---- */

static void check_keys(struct sd_quic_ctx *ctx, uint32_t version, bool server, const char *key, const char *iv, const char *hp)
{
    struct sd_quic_keys k;
    uint8_t want[16];
    assert_int_equal(sd_quic_initial_keys(ctx, version, dcid8, sizeof(dcid8), server, &k), 0);
    assert_memory_equal(k.key, want, unhex(want, sizeof(want), key));
    assert_memory_equal(k.iv, want, unhex(want, sizeof(want), iv));
    assert_memory_equal(k.hp, want, unhex(want, sizeof(want), hp));
}

static void test_rfc_keys(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    /* RFC 9001 A.1 */
    check_keys(ctx, SD_QUIC_V1, false, "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c",
               "9f50449e04a0e810283a1e9933adedd2");
    check_keys(ctx, SD_QUIC_V1, true, "cf3a5331653c364c88f0f379b6067e37", "0ac1493ca1905853b0bba03e",
               "c206b8d9b9f0f37644430b490eeaa314");
    /* RFC 9369 A.1 */
    check_keys(ctx, SD_QUIC_V2, false, "8b1a0bc121284290a29e0971b5cd045d", "91f73e2351d8fa91660e909f",
               "45b95e15235d6f45a6b19cbcb0294ba9");
    check_keys(ctx, SD_QUIC_V2, true, "82db637861d55e1d011f19ea71d5d2a7", "dd13c276499c0249d3310652",
               "edf6d05c83121201b436e16877593c3a");
}

static void test_draft_keys(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    /* Drafts 23-28 (quicwg/base-drafts#2981, the draft-23 Appendix A). */
    for (uint32_t v = 0xff00001b; v <= 0xff00001c; v++)
        check_keys(ctx, v, false, "af7fd7efebd21878ff66811248983694", "8681359410a70bb9c92f0420",
                   "a980b8b4fb7d9fbc13e814c23164253d");
    /* Drafts 29-32 (draft-29 to -32 Appendix A). */
    for (uint32_t v = 0xff00001d; v <= 0xff000020; v++) {
        check_keys(ctx, v, false, "175257a31eb09dea9366d8bb79ad80ba", "6b26114b9cba2b63a9e8dd4f",
                   "9ddd12c994c0698b89374a9c077a3077");
        check_keys(ctx, v, true, "149d0b1662ab871fbe63c49b5e655a5d", "bab2b12a4c76016ace47856d",
                   "c0c499a65a60024a18a250974ea01dfa");
    }
    /* Drafts 33 and 34 took the final v1 salt. */
    for (uint32_t v = 0xff000021; v <= 0xff000022; v++)
        check_keys(ctx, v, false, "1f369613dd76d5467730efcbe3b1a22d", "fa044b2f42a3fd3b46fb255c",
                   "9f50449e04a0e810283a1e9933adedd2");

    struct sd_quic_keys k;
    uint8_t long_cid[21] = {0};
    assert_int_equal(sd_quic_initial_keys(ctx, 0xff00001a, dcid8, 8, false, &k), SD_ENOTSUP);
    assert_int_equal(sd_quic_initial_keys(ctx, 0x709a50c4, dcid8, 8, false, &k), SD_ENOTSUP);
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V1, long_cid, 21, false, &k), SD_EINVAL);
    /* An empty DCID is legal for the derivation (RFC 9000 7.2 wants >= 8
     * from clients, but that is the server's check). */
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V1, NULL, 0, false, &k), 0);
}

static void test_version_known(void **state)
{
    (void)state;
    assert_true(sd_quic_version_known(SD_QUIC_V1));
    assert_true(sd_quic_version_known(SD_QUIC_V2));
    for (uint32_t v = 0xff00001b; v <= 0xff000022; v++)
        assert_true(sd_quic_version_known(v));
    assert_false(sd_quic_version_known(0));
    assert_false(sd_quic_version_known(0xff00001a));
    assert_false(sd_quic_version_known(0xff000023));
    assert_false(sd_quic_version_known(0x709a50c4)); /* the v2 draft codepoint */
    assert_false(sd_quic_version_known(0x1a2a3a4a)); /* greased */
}

/* ---- long headers ---- */

static void test_parse_rfc_headers(void **state)
{
    (void)state;
    uint8_t pkt[1200];
    struct sd_quic_hdr h;

    size_t n = unhex(pkt, sizeof(pkt), rfc9001_client_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 1200);
    assert_true(h.long_header);
    assert_int_equal(h.type, SD_QUIC_INITIAL);
    assert_int_equal(h.version, SD_QUIC_V1);
    assert_int_equal(h.dcid.n, 8);
    assert_memory_equal(h.dcid.p, dcid8, 8);
    assert_int_equal(h.scid.n, 0);
    assert_int_equal(h.token.n, 0);
    assert_int_equal(h.pn_off, 18);
    assert_int_equal(h.len, 1200);

    n = unhex(pkt, sizeof(pkt), rfc9369_client_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 1200);
    assert_int_equal(h.type, SD_QUIC_INITIAL); /* 0b01 in v2 */
    assert_int_equal(h.version, SD_QUIC_V2);

    n = unhex(pkt, sizeof(pkt), rfc9001_server_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 135);
    assert_int_equal(h.dcid.n, 0);
    assert_int_equal(h.scid.n, 8);
    assert_int_equal(h.pn_off, 18);

    /* RFC 9001 A.4 and RFC 9369 A.4: Retry runs to the end of the datagram. */
    n = unhex(pkt, sizeof(pkt), "ff000000010008f067a5502a4262b5746f6b656e04a265ba2eff4d829058fb3f0f2496ba");
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    assert_int_equal(h.type, SD_QUIC_RETRY);
    n = unhex(pkt, sizeof(pkt), "cf6b3343cf0008f067a5502a4262b5746f6b656ec8646ce8bfe33952d955543665dcc7b6");
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    assert_int_equal(h.type, SD_QUIC_RETRY); /* 0b00 in v2 */
}

static void test_parse_types_and_errors(void **state)
{
    (void)state;
    uint8_t pkt[256] = {0}; /* GCC's -O3 cannot see make_long() fill it (-Wmaybe-uninitialized) */
    struct sd_quic_hdr h;

    /* v1 Handshake (0b10) and 0-RTT (0b01); v2 Handshake (0b11), 0-RTT (0b10). */
    size_t n = make_long(pkt, 0xe0, SD_QUIC_V1, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    assert_int_equal(h.type, SD_QUIC_HANDSHAKE);
    assert_int_equal(h.token.n, 0);
    n = make_long(pkt, 0xd0, SD_QUIC_V1, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    assert_int_equal(h.type, SD_QUIC_0RTT);
    n = make_long(pkt, 0xf0, SD_QUIC_V2, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    assert_int_equal(h.type, SD_QUIC_HANDSHAKE);
    n = make_long(pkt, 0xe0, SD_QUIC_V2, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    assert_int_equal(h.type, SD_QUIC_0RTT);
    /* Cut short inside the body. */
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n - 1, &h), SD_EPROTO);

    /* Short header, version negotiation, unknown version: fields so far. */
    pkt[0] = 0x40;
    assert_int_equal(sd_quic_parse_long(pkt, pkt + 30, &h), SD_ENOTSUP);
    assert_false(h.long_header);
    n = make_long(pkt, 0x80, 0, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), SD_ENOTSUP);
    assert_true(h.long_header);
    assert_int_equal(h.version, 0);
    assert_int_equal(h.dcid.n, 8);
    n = make_long(pkt, 0xc0, 0x1a2a3a4a, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), SD_ENOTSUP);
    assert_int_equal(h.version, 0x1a2a3a4a);
    assert_memory_equal(h.dcid.p, dcid8, 8);

    /* Empty, cut in the version, DCID longer than 20, token past the end. */
    assert_int_equal(sd_quic_parse_long(pkt, pkt, &h), SD_EPROTO);
    n = make_long(pkt, 0xc0, SD_QUIC_V1, 40);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + 4, &h), SD_EPROTO);
    uint8_t big[64] = {0xc0, 0, 0, 0, 1, 21};
    assert_int_equal(sd_quic_parse_long(big, big + sizeof(big), &h), SD_EPROTO);
    uint8_t tok[] = {0xc0, 0, 0, 0, 1, 0, 0, 0x05, 1, 2};
    assert_int_equal(sd_quic_parse_long(tok, tok + sizeof(tok), &h), SD_EPROTO);
    uint8_t tok2[] = {0xc0, 0, 0, 0, 1, 0, 0, 0x02, 0xaa, 0xbb, 0x03, 1, 2, 3};
    assert_int_equal(sd_quic_parse_long(tok2, tok2 + sizeof(tok2), &h), (int)sizeof(tok2));
    assert_int_equal(h.token.n, 2);
    assert_int_equal(h.token.p[0], 0xaa);
    assert_int_equal(h.pn_off, 11);
}

/* ---- the RFC packets ---- */

static void test_unprotect_rfc(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t pkt[1200], out[1200], want[256];
    struct sd_quic_hdr h;
    struct sd_quic_keys k;
    size_t off, len;
    uint64_t pn;

    size_t n = unhex(pkt, sizeof(pkt), rfc9001_client_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 1200);
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V1, h.dcid.p, h.dcid.n, false, &k), 0);
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, 1183, &off, &len, &pn), SD_ERANGE);
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, 1184, &off, &len, &pn), 0);
    assert_int_equal(pn, 2);
    assert_int_equal(off, 22);
    assert_int_equal(len, 1162);
    assert_memory_equal(out, want, unhex(want, sizeof(want), "c300000001088394c8f03e5157080000449e00000002"));
    size_t fl = unhex(want, sizeof(want), rfc9001_crypto_frame);
    assert_memory_equal(out + off, want, fl);
    for (size_t i = off + fl; i < off + len; i++)
        assert_int_equal(out[i], 0); /* PADDING */

    /* The server's Initial, with the server keys: 2-byte packet number. */
    n = unhex(pkt, sizeof(pkt), rfc9001_server_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 135);
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V1, dcid8, 8, true, &k), 0);
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, sizeof(out), &off, &len, &pn), 0);
    assert_int_equal(pn, 1);
    assert_memory_equal(out, want, unhex(want, sizeof(want), "c1000000010008f067a5502a4262b50040750001"));
    assert_int_equal(len, 99);
    assert_memory_equal(out + off, want, unhex(want, sizeof(want), rfc9001_server_payload));
    /* Client keys do not open it. */
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V1, dcid8, 8, false, &k), 0);
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, sizeof(out), &off, &len, &pn), SD_ECRYPTO);

    /* The same for v2. */
    n = unhex(pkt, sizeof(pkt), rfc9369_server_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 135);
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V2, dcid8, 8, true, &k), 0);
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, sizeof(out), &off, &len, &pn), 0);
    assert_int_equal(pn, 1);
    assert_memory_equal(out, want, unhex(want, sizeof(want), "d16b3343cf0008f067a5502a4262b50040750001"));
    assert_memory_equal(out + off, want, unhex(want, sizeof(want), rfc9001_server_payload));
    n = unhex(pkt, sizeof(pkt), rfc9369_client_initial);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 1200);
    assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V2, dcid8, 8, false, &k), 0);
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, sizeof(out), &off, &len, &pn), 0);
    assert_memory_equal(out, want, unhex(want, sizeof(want), "d36b3343cf088394c8f03e5157080000449e00000002"));
}

/* sd_quic_client_initials on a published client Initial: one packet, the
 * CRYPTO frame's 241 bytes at offset 0, a ClientHello for example.com. */
static void check_client_initial(struct sd_quic_ctx *ctx, const char *pkt_hex, const char *frame_hex, uint32_t version)
{
    uint8_t pkt[1200], frame[256], buf[2048];
    struct sd_reasm r;
    struct sd_quic_info info;
    char sni[64];
    struct guarded g;

    size_t n = unhex(pkt, sizeof(pkt), pkt_hex);
    size_t fl = unhex(frame, sizeof(frame), frame_hex);
    uint8_t *at = guard_put(&g, pkt, n);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, at, at + n, &r, &info), 1);
    guard_drop(&g);
    assert_int_equal(info.version, version);
    assert_int_equal(info.dcid_len, 8);
    assert_memory_equal(info.dcid, dcid8, 8);
    assert_int_equal(info.initials, 1);
    assert_int_equal(info.crypto_frames, 1);
    assert_int_equal(r.contig, 241);
    assert_int_equal(fl, 4 + 241); /* 06, offset 00, length 40f1 */
    assert_memory_equal(buf, frame + 4, 241);
    assert_int_equal(find_sni(buf, r.contig, sni, sizeof(sni)), 11);
    assert_string_equal(sni, "example.com");
}

static void test_client_initial_rfc(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    check_client_initial(ctx, rfc9001_client_initial, rfc9001_crypto_frame, SD_QUIC_V1);
    check_client_initial(ctx, rfc9369_client_initial, rfc9001_crypto_frame, SD_QUIC_V2);
    check_client_initial(ctx, draft31_client_initial, draft31_crypto_frame, 0xff00001f);

    /* A server Initial does not authenticate under the client keys. */
    uint8_t pkt[256], buf[256];
    struct sd_reasm r;
    size_t n = unhex(pkt, sizeof(pkt), rfc9001_server_initial);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, &r, NULL), SD_ECRYPTO);
    assert_int_equal(r.high, 0);

    /* Bytes past the cap are dropped and flagged. */
    uint8_t big[1200], small[100];
    n = unhex(big, sizeof(big), rfc9001_client_initial);
    sd_reasm_init(&r, small, sizeof(small));
    assert_int_equal(sd_quic_client_initials(ctx, big, big + n, &r, NULL), 1);
    assert_int_equal(r.contig, 100);
    assert_int_equal(r.clipped, 1);
}

/* ---- generated packets ---- */

enum { HELLO_LEN = 1800 };

static void test_split_across_datagrams_reversed(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t hello[HELLO_LEN], d1[1500], d2[1500], buf[4096];
    struct sd_reasm r;
    struct sd_quic_info info;
    char sni[64];

    make_hello(hello, sizeof(hello), "www.example.org");
    size_t n1 = sd_gen_quic_initial(d1, sizeof(d1), SD_QUIC_V1, dcid8, 8, 0, hello, 1100, 0, 1200);
    size_t n2 = sd_gen_quic_initial(d2, sizeof(d2), SD_QUIC_V1, dcid8, 8, 1, hello + 1100, HELLO_LEN - 1100, 1100, 1200);
    assert_int_equal(n1, 1200);
    assert_int_equal(n2, 1200);

    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, d2, d2 + n2, &r, &info), 1);
    assert_int_equal(info.crypto_frames, 1);
    assert_int_equal(r.contig, 0);
    assert_int_equal(r.high, HELLO_LEN);
    assert_int_equal(find_sni(buf, r.contig, sni, sizeof(sni)), -1);
    assert_int_equal(sd_quic_client_initials(ctx, d1, d1 + n1, &r, &info), 1);
    assert_int_equal(r.contig, HELLO_LEN);
    assert_memory_equal(buf, hello, HELLO_LEN);
    assert_int_equal(find_sni(buf, r.contig, sni, sizeof(sni)), 15);
    assert_string_equal(sni, "www.example.org");
}

static void test_two_frames_one_packet_reversed(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t hello[1000], frames[1100], pkt[1500], buf[2048];
    struct sd_reasm r;
    struct sd_quic_info info;

    make_hello(hello, sizeof(hello), "split.example");
    size_t f = sd_gen_quic_crypto_frame(frames, sizeof(frames), 600, hello + 600, 400);
    f += sd_gen_quic_crypto_frame(frames + f, sizeof(frames) - f, 0, hello, 600);
    size_t n = sd_gen_quic_initial_frames(pkt, sizeof(pkt), SD_QUIC_V1, dcid8, 8, 0, frames, f, 1200);
    assert_true(n >= 1200);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, &r, &info), 1);
    assert_int_equal(info.crypto_frames, 2);
    assert_int_equal(r.contig, sizeof(hello));
    assert_memory_equal(buf, hello, sizeof(hello));
}

static void test_coalesced(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t hello[1200], d[3000], buf[2048];
    struct sd_reasm r;
    struct sd_quic_info info;

    make_hello(hello, sizeof(hello), "coalesced.example");
    /* Initial + Handshake. */
    size_t n = sd_gen_quic_initial(d, sizeof(d), SD_QUIC_V1, dcid8, 8, 0, hello, 500, 0, 0);
    assert_true(n > 500);
    size_t init_len = n;
    n += make_long(d + n, 0xe0, SD_QUIC_V1, 300);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, d, d + n, &r, &info), 1);
    assert_int_equal(r.contig, 500);

    /* Handshake + Initial, then trailing zeros (padding outside any packet). */
    size_t hs = make_long(d, 0xe0, SD_QUIC_V1, 300);
    n = hs + sd_gen_quic_initial(d + hs, sizeof(d) - hs, SD_QUIC_V1, dcid8, 8, 0, hello, 500, 0, 0);
    memset(d + n, 0, 100);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, d, d + n + 100, &r, &info), 1);
    assert_int_equal(r.contig, 500);

    /* Initial + Initial (the rest of the hello) + 0-RTT. */
    n = sd_gen_quic_initial(d, sizeof(d), SD_QUIC_V1, dcid8, 8, 0, hello, 500, 0, 0);
    n += sd_gen_quic_initial(d + n, sizeof(d) - n, SD_QUIC_V1, dcid8, 8, 1, hello + 500, 700, 500, 0);
    n += make_long(d + n, 0xd0, SD_QUIC_V1, 50);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, d, d + n, &r, &info), 2);
    assert_int_equal(info.initials, 2);
    assert_int_equal(info.crypto_frames, 2);
    assert_int_equal(r.contig, sizeof(hello));
    assert_memory_equal(buf, hello, sizeof(hello));

    /* v2: Handshake is 0b11. */
    hs = make_long(d, 0xf0, SD_QUIC_V2, 64);
    n = hs + sd_gen_quic_initial(d + hs, sizeof(d) - hs, SD_QUIC_V2, dcid8, 8, 0, hello, 500, 0, 0);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, d, d + n, &r, &info), 1);
    assert_int_equal(info.version, SD_QUIC_V2);

    /* No Initial at all; an unknown version first; a short header. */
    n = make_long(d, 0xe0, SD_QUIC_V1, 300);
    assert_int_equal(sd_quic_client_initials(ctx, d, d + n, &r, NULL), SD_ENOENT);
    n = make_long(d, 0xc0, 0x1a2a3a4a, 30);
    n += sd_gen_quic_initial(d + n, sizeof(d) - n, SD_QUIC_V1, dcid8, 8, 0, hello, 500, 0, 0);
    assert_int_equal(sd_quic_client_initials(ctx, d, d + n, &r, NULL), SD_ENOENT);
    d[0] = 0x41;
    assert_int_equal(sd_quic_client_initials(ctx, d, d + 100, &r, NULL), SD_ENOENT);
    assert_int_equal(sd_quic_client_initials(ctx, d, d, &r, NULL), SD_ENOENT);

    /* A coalesced datagram cut at every length: the Initial is readable
     * exactly when it is whole; the cut Handshake behind it is junk. */
    n = sd_gen_quic_initial(d, sizeof(d), SD_QUIC_V1, dcid8, 8, 0, hello, 500, 0, 0);
    n += make_long(d + n, 0xe0, SD_QUIC_V1, 100);
    for (size_t cut = 0; cut <= n; cut++) {
        struct guarded g;
        uint8_t *at = guard_put(&g, d, cut);
        sd_reasm_init(&r, buf, sizeof(buf));
        int rc = sd_quic_client_initials(ctx, at, at + cut, &r, NULL);
        guard_drop(&g);
        if (cut == 0)
            assert_int_equal(rc, SD_ENOENT);
        else if (cut < init_len)
            assert_int_equal(rc, SD_EPROTO);
        else
            assert_int_equal(rc, 1);
    }
}

static void test_versions_round_trip(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    static const uint32_t versions[] = {SD_QUIC_V1, SD_QUIC_V2, 0xff00001b, 0xff00001c, 0xff00001d, 0xff00001e,
                                        0xff00001f, 0xff000020, 0xff000021, 0xff000022};
    uint8_t hello[700], pkt[1500], buf[1024], cid[20];
    struct sd_reasm r;
    struct sd_quic_info info;
    struct sd_quic_hdr h;

    make_hello(hello, sizeof(hello), "versions.example");
    for (size_t i = 0; i < SD_COUNTOF(versions); i++) {
        size_t cid_len = 1 + i * 2; /* 1 to 19 bytes */
        for (size_t j = 0; j < cid_len; j++)
            cid[j] = (uint8_t)(i * 31 + j);
        size_t n = sd_gen_quic_initial(pkt, sizeof(pkt), versions[i], cid, cid_len, i, hello, sizeof(hello), 0, 1200);
        assert_int_equal(n, 1200);
        assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), 1200);
        assert_int_equal(h.type, SD_QUIC_INITIAL);
        sd_reasm_init(&r, buf, sizeof(buf));
        assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, &r, &info), 1);
        assert_int_equal(info.version, versions[i]);
        assert_int_equal(info.dcid_len, cid_len);
        assert_memory_equal(info.dcid, cid, cid_len);
        assert_int_equal(r.contig, sizeof(hello));
        assert_memory_equal(buf, hello, sizeof(hello));
    }
    /* The maximal 20-byte DCID and the empty one. */
    memset(cid, 0x5a, sizeof(cid));
    size_t n = sd_gen_quic_initial(pkt, sizeof(pkt), SD_QUIC_V1, cid, 20, 0, hello, sizeof(hello), 0, 1200);
    assert_int_equal(n, 1200);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, &r, &info), 1);
    assert_int_equal(info.dcid_len, 20);
    n = sd_gen_quic_initial(pkt, sizeof(pkt), SD_QUIC_V1, NULL, 0, 0, hello, sizeof(hello), 0, 1200);
    assert_int_equal(n, 1200);
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, &r, &info), 1);
    assert_int_equal(info.dcid_len, 0);
}

static void test_packet_numbers(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    static const uint64_t pns[] = {0, 0xab, 0x1234, 0xabcdef, 0x12345678, 0xffffffff};
    static const size_t pn_lens[] = {1, 1, 2, 3, 4, 4};
    uint8_t pkt[1500], out[1500], data[3] = {1, 2, 3};
    struct sd_quic_hdr h;
    struct sd_quic_keys k;
    size_t off, len;
    uint64_t pn;

    for (size_t i = 0; i < SD_COUNTOF(pns); i++) {
        /* No padding: the shortest packets, where the sample needs the
         * generator's minimum payload. */
        size_t n = sd_gen_quic_initial(pkt, sizeof(pkt), SD_QUIC_V2, dcid8, 8, pns[i], data, 3, 0, 0);
        assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
        assert_int_equal(sd_quic_initial_keys(ctx, SD_QUIC_V2, dcid8, 8, false, &k), 0);
        assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, sizeof(out), &off, &len, &pn), 0);
        assert_int_equal(pn, pns[i]);
        assert_int_equal(off, h.pn_off + pn_lens[i]);
        assert_int_equal(out[0] & 3, pn_lens[i] - 1);
        assert_int_equal(out[0] & 0x0c, 0); /* reserved bits */
        assert_int_equal(out[off], 0x06);
    }
    /* Too short for the header-protection sample. */
    size_t n = sd_gen_quic_initial(pkt, sizeof(pkt), SD_QUIC_V1, dcid8, 8, 0, data, 0, 0, 0);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);
    h.len -= 1;
    assert_int_equal(sd_quic_unprotect(ctx, pkt, &h, &k, out, sizeof(out), &off, &len, &pn), SD_EPROTO);
}

/* ---- frames ---- */

/* Seals |frames| into a v1 Initial and reads it back into |buf|. */
static int run_frames(struct sd_quic_ctx *ctx, const uint8_t *frames, size_t n, size_t pad_to, struct sd_reasm *r,
                      uint8_t *buf, size_t cap, struct sd_quic_info *info)
{
    uint8_t pkt[1500];
    size_t len = sd_gen_quic_initial_frames(pkt, sizeof(pkt), SD_QUIC_V1, dcid8, 8, 0, frames, n, pad_to);
    assert_true(len > 0);
    sd_reasm_init(r, buf, (uint32_t)cap);
    return sd_quic_client_initials(ctx, pkt, pkt + len, r, info);
}

static void test_frames(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t f[256], buf[256], payload[128];
    struct sd_reasm r;
    struct sd_quic_info info;
    size_t n = 0;

    /* ACK with two more ranges, PING, CRYPTO, PADDING, ACK_ECN, CRYPTO. */
    memcpy(f, "\x02\x0a\x00\x02\x01\x00\x01\x01\x00\x01", 10);
    n = 10;
    n += sd_gen_quic_crypto_frame(f + n, sizeof(f) - n, 0, (const uint8_t *)"hello-part-1", 12);
    memcpy(f + n, "\x00\x00\x03\x05\x00\x00\x00\x01\x02\x03", 10);
    n += 10;
    n += sd_gen_quic_crypto_frame(f + n, sizeof(f) - n, 12, (const uint8_t *)"/part-2", 7);
    assert_int_equal(run_frames(ctx, f, n, 1200, &r, buf, sizeof(buf), &info), 1);
    assert_int_equal(info.crypto_frames, 2);
    assert_int_equal(r.contig, 19);
    assert_memory_equal(buf, "hello-part-1/part-2", 19);

    /* The RFC 9001 A.3 payload (ACK, then CRYPTO) as a client's frames. */
    size_t pl = unhex(payload, sizeof(payload), rfc9001_server_payload);
    assert_int_equal(run_frames(ctx, payload, pl, 1200, &r, buf, sizeof(buf), &info), 1);
    assert_int_equal(r.contig, 90);
    assert_memory_equal(buf, payload + 9, 90);

    /* CONNECTION_CLOSE, a STREAM frame, a non-minimal frame type: each ends
     * the walk, so the CRYPTO frame behind it is not read. */
    static const char *const stoppers[] = {"\x1c\x00\x00\x00", "\x08\x00\x03" "abc", "\x40\x06\x00\x03" "def"};
    static const size_t stopper_len[] = {4, 6, 7};
    for (size_t i = 0; i < SD_COUNTOF(stoppers); i++) {
        n = sd_gen_quic_crypto_frame(f, sizeof(f), 0, (const uint8_t *)"abc", 3);
        memcpy(f + n, stoppers[i], stopper_len[i]);
        n += stopper_len[i];
        n += sd_gen_quic_crypto_frame(f + n, sizeof(f) - n, 3, (const uint8_t *)"def", 3);
        assert_int_equal(run_frames(ctx, f, n, 1200, &r, buf, sizeof(buf), &info), 1);
        assert_int_equal(info.crypto_frames, 1);
        assert_int_equal(r.contig, 3);
        assert_int_equal(r.high, 3);
    }

    /* Malformed: CRYPTO longer than the packet, CRYPTO past 2^62, an ACK cut
     * short, an ACK whose range count runs past the end. Unpadded, then the
     * ones that stay malformed with 1,100 zero bytes (PADDING) behind them. */
    static const char *const bad[] = {"\x06\x00\x44\x00" "abc", "\x06\xff\xff\xff\xff\xff\xff\xff\xff\x03" "abc",
                                      "\x02\x00", "\x02\x00\x00\xbf\xff\xff\xff\x00", "\x06\x00\x7f\xff" "abc"};
    static const size_t bad_len[] = {7, 13, 2, 8, 7};
    static const bool bad_padded[] = {false, true, false, true, true};
    for (size_t i = 0; i < SD_COUNTOF(bad); i++) {
        assert_int_equal(run_frames(ctx, (const uint8_t *)bad[i], bad_len[i], 0, &r, buf, sizeof(buf), &info), SD_EPROTO);
        assert_int_equal(r.high, 0);
        int rc = run_frames(ctx, (const uint8_t *)bad[i], bad_len[i], 1200, &r, buf, sizeof(buf), &info);
        assert_int_equal(rc, bad_padded[i] ? SD_EPROTO : 1);
    }

    /* Without a reassembler the frames are still walked and counted. */
    uint8_t pkt[1500];
    n = sd_gen_quic_initial(pkt, sizeof(pkt), SD_QUIC_V1, dcid8, 8, 0, (const uint8_t *)"xyz", 3, 7, 1200);
    assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, NULL, &info), 1);
    assert_int_equal(info.crypto_frames, 1);
}

/* ---- tampering and truncation ---- */

static void check_tamper(struct sd_quic_ctx *ctx, const char *pkt_hex)
{
    uint8_t pkt[1200], buf[512];
    struct sd_reasm r;
    struct sd_quic_hdr h;
    size_t n = unhex(pkt, sizeof(pkt), pkt_hex);
    assert_int_equal(sd_quic_parse_long(pkt, pkt + n, &h), (int)n);

    /* Every single-bit change is refused, and none adds CRYPTO data. Past
     * the Length field every change is an authentication failure. */
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            pkt[i] ^= (uint8_t)(1 << bit);
            sd_reasm_init(&r, buf, sizeof(buf));
            int rc = sd_quic_client_initials(ctx, pkt, pkt + n, &r, NULL);
            pkt[i] ^= (uint8_t)(1 << bit);
            if (i >= h.pn_off)
                assert_int_equal(rc, SD_ECRYPTO);
            else
                assert_true(rc < 0);
            assert_int_equal(r.high, 0);
        }
    sd_reasm_init(&r, buf, sizeof(buf));
    assert_int_equal(sd_quic_client_initials(ctx, pkt, pkt + n, &r, NULL), 1);
}

static void test_tampered(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    check_tamper(ctx, rfc9001_client_initial);
    check_tamper(ctx, rfc9369_client_initial);
}

static void test_truncated_every_length(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t pkt[1200], buf[512];
    struct sd_reasm r;
    struct sd_quic_hdr h;
    size_t n = unhex(pkt, sizeof(pkt), rfc9001_client_initial);

    for (size_t cut = 0; cut <= n; cut++) {
        struct guarded g;
        uint8_t *at = guard_put(&g, pkt, cut);
        sd_reasm_init(&r, buf, sizeof(buf));
        int rc = sd_quic_client_initials(ctx, at, at + cut, &r, NULL);
        int hrc = sd_quic_parse_long(at, at + cut, &h);
        guard_drop(&g);
        if (cut == n) {
            assert_int_equal(rc, 1);
            assert_int_equal(hrc, (int)n);
        } else {
            assert_int_equal(rc, cut == 0 ? SD_ENOENT : SD_EPROTO);
            assert_int_equal(hrc, SD_EPROTO);
            assert_int_equal(r.high, 0);
        }
    }
}

/* ---- allocation ---- */

/* OpenSSL's allocator hooks, installed by main() before any other OpenSSL
 * call; the count is the only mutable global, and only a test's. */
static long openssl_allocs;

static void *count_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    openssl_allocs++;
    return malloc(n);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    openssl_allocs++;
    return realloc(p, n);
}

static void count_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    free(p);
}

static void test_no_allocation(void **state)
{
    struct sd_quic_ctx *ctx = ctx_of(state);
    uint8_t d[4][1500], buf[2048], hello[900], cid[12];
    size_t n[4];
    struct sd_reasm r;

    make_hello(hello, sizeof(hello), "alloc.example");
    memset(cid, 0x77, sizeof(cid));
    n[0] = unhex(d[0], sizeof(d[0]), rfc9001_client_initial);
    n[1] = unhex(d[1], sizeof(d[1]), rfc9369_client_initial);
    long before = openssl_allocs;
    n[2] = sd_gen_quic_initial(d[2], sizeof(d[2]), 0xff00001d, cid, sizeof(cid), 3, hello, sizeof(hello), 0, 1200);
    assert_true(openssl_allocs > before); /* the hooks do count */
    memcpy(d[3], d[2], n[2]);
    n[3] = n[2];
    d[3][100] ^= 1; /* fails authentication */

    /* Different versions and DCIDs in turn: every call derives keys. */
    int want[4] = {1, 1, 1, SD_ECRYPTO};
    for (int round = 0; round < 3; round++) {
        if (round == 1)
            before = openssl_allocs; /* the first round warms OpenSSL up */
        for (int i = 0; i < 4; i++) {
            sd_reasm_init(&r, buf, sizeof(buf));
            assert_int_equal(sd_quic_client_initials(ctx, d[i], d[i] + n[i], &r, NULL), want[i]);
        }
    }
    assert_int_equal(openssl_allocs - before, 0);
}

static int setup(void **state)
{
    *state = sd_quic_ctx_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sd_quic_ctx_free(*state);
    sd_quic_ctx_free(NULL);
    return 0;
}

int main(void)
{
    /* Before anything else touches OpenSSL, or the hooks are refused. */
    if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_known),
        cmocka_unit_test(test_rfc_keys),
        cmocka_unit_test(test_draft_keys),
        cmocka_unit_test(test_parse_rfc_headers),
        cmocka_unit_test(test_parse_types_and_errors),
        cmocka_unit_test(test_unprotect_rfc),
        cmocka_unit_test(test_client_initial_rfc),
        cmocka_unit_test(test_split_across_datagrams_reversed),
        cmocka_unit_test(test_two_frames_one_packet_reversed),
        cmocka_unit_test(test_coalesced),
        cmocka_unit_test(test_versions_round_trip),
        cmocka_unit_test(test_packet_numbers),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_no_allocation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
