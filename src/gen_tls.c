/*
 * gen_tls.c - TLS 1.3 ClientHello and record builders for tests.
 *
 * The hello is shaped like a current browser's (Chrome's extension set,
 * without GREASE values and with a fixed extension order): TLS 1.3 and 1.2
 * suites, supported_versions, supported_groups, key_share (x25519, plus an
 * optional second, post-quantum-sized share), signature_algorithms, SNI, ALPN
 * and, on request, an outer encrypted_client_hello and a padding extension.
 * Random, session id, key shares and the ECH payload are filled from a fixed
 * byte pattern, so every build is byte-for-byte reproducible.
 *
 * Writing goes through a small buffer with an overflow flag: length-prefixed
 * vectors are opened (their length bytes reserved) and closed (the length
 * written once the body is known), so no length is computed by hand.
 */
#include <string.h>

#include "bytes.h"
#include "gen.h"
#include "sd.h"

enum {
    EXT_SERVER_NAME = 0,
    EXT_STATUS_REQUEST = 5,
    EXT_SUPPORTED_GROUPS = 10,
    EXT_EC_POINT_FORMATS = 11,
    EXT_SIG_ALGS = 13,
    EXT_ALPN = 16,
    EXT_SCT = 18,
    EXT_PADDING = 21,
    EXT_EMS = 23,
    EXT_COMPRESS_CERT = 27,
    EXT_SESSION_TICKET = 35,
    EXT_SUPPORTED_VERSIONS = 43,
    EXT_PSK_MODES = 45,
    EXT_KEY_SHARE = 51,
    EXT_ECH = 0xfe0d,
    EXT_RENEGOTIATION_INFO = 0xff01,
    GROUP_X25519 = 0x001d,
    GROUP_X25519MLKEM768 = 0x11ec,
    ECH_ENC_LEN = 32,
    ECH_PAYLOAD_LEN = 176,
};

struct wbuf {
    uint8_t *p;
    size_t cap;
    size_t n;
    bool overflow;
};

static uint8_t *reserve(struct wbuf *w, size_t n)
{
    if (w->overflow || w->cap - w->n < n) {
        w->overflow = true;
        return NULL;
    }
    uint8_t *at = w->p + w->n;
    w->n += n;
    return at;
}

static void put_bytes(struct wbuf *w, const void *src, size_t n)
{
    uint8_t *at = reserve(w, n);
    if (at && n)
        memcpy(at, src, n);
}

static void put_u8(struct wbuf *w, uint8_t v)
{
    uint8_t *at = reserve(w, 1);
    if (at)
        sd_put8(at, v);
}

static void put_u16(struct wbuf *w, uint16_t v)
{
    uint8_t *at = reserve(w, 2);
    if (at)
        sd_put16be(at, v);
}

/* Bytes of a fixed pseudo-random pattern seeded by |seed|. */
static void put_pattern(struct wbuf *w, size_t n, uint8_t seed)
{
    uint8_t *at = reserve(w, n);
    uint32_t x = 0x9e3779b9u ^ seed;
    for (size_t i = 0; at && i < n; i++) {
        x = x * 1103515245u + 12345u;
        at[i] = (uint8_t)(x >> 16);
    }
}

/* Reserves a |lenbytes|-byte length and returns where it sits. */
static size_t open_vec(struct wbuf *w, unsigned lenbytes)
{
    size_t at = w->n;
    reserve(w, lenbytes);
    return at;
}

/* Writes the length of the vector opened at |at|; overflow if it does not fit. */
static void close_vec(struct wbuf *w, size_t at, unsigned lenbytes)
{
    if (w->overflow)
        return;
    size_t len = w->n - at - lenbytes;
    if (len >> (8 * lenbytes) != 0) {
        w->overflow = true;
        return;
    }
    for (unsigned i = 0; i < lenbytes; i++)
        w->p[at + i] = (uint8_t)(len >> (8 * (lenbytes - 1 - i)));
}

static size_t open_ext(struct wbuf *w, uint16_t type)
{
    put_u16(w, type);
    return open_vec(w, 2);
}

static void put_u16_list(struct wbuf *w, unsigned lenbytes, const uint16_t *v, size_t n)
{
    size_t at = open_vec(w, lenbytes);
    for (size_t i = 0; i < n; i++)
        put_u16(w, v[i]);
    close_vec(w, at, lenbytes);
}

static void ext_server_name(struct wbuf *w, const char *sni)
{
    size_t e = open_ext(w, EXT_SERVER_NAME);
    size_t list = open_vec(w, 2);
    put_u8(w, 0); /* host_name */
    size_t name = open_vec(w, 2);
    put_bytes(w, sni, strlen(sni));
    close_vec(w, name, 2);
    close_vec(w, list, 2);
    close_vec(w, e, 2);
}

static void ext_alpn(struct wbuf *w, const char *const *alpn)
{
    if (alpn[0] == NULL)
        return;
    size_t e = open_ext(w, EXT_ALPN);
    size_t list = open_vec(w, 2);
    for (size_t i = 0; i < 4 && alpn[i]; i++) {
        size_t name = open_vec(w, 1);
        put_bytes(w, alpn[i], strlen(alpn[i]));
        close_vec(w, name, 1);
    }
    close_vec(w, list, 2);
    close_vec(w, e, 2);
}

static void ext_groups(struct wbuf *w, bool pq)
{
    static const uint16_t groups[] = {GROUP_X25519MLKEM768, GROUP_X25519, 0x0017, 0x0018};
    size_t skip = pq ? 0 : 1; /* the hybrid group is offered only with its share */
    size_t e = open_ext(w, EXT_SUPPORTED_GROUPS);
    put_u16_list(w, 2, groups + skip, SD_COUNTOF(groups) - skip);
    close_vec(w, e, 2);
}

/* key_share: the post-quantum-sized share first (as Chrome sends it), then x25519. */
static void ext_key_share(struct wbuf *w, size_t extra)
{
    size_t e = open_ext(w, EXT_KEY_SHARE);
    size_t list = open_vec(w, 2);
    if (extra > 0) {
        put_u16(w, GROUP_X25519MLKEM768);
        size_t ks = open_vec(w, 2);
        put_pattern(w, extra, 0x51);
        close_vec(w, ks, 2);
    }
    put_u16(w, GROUP_X25519);
    size_t ks = open_vec(w, 2);
    put_pattern(w, 32, 0x1d);
    close_vec(w, ks, 2);
    close_vec(w, list, 2);
    close_vec(w, e, 2);
}

static void ext_sig_algs(struct wbuf *w)
{
    static const uint16_t algs[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601};
    size_t e = open_ext(w, EXT_SIG_ALGS);
    put_u16_list(w, 2, algs, SD_COUNTOF(algs));
    close_vec(w, e, 2);
}

static void ext_supported_versions(struct wbuf *w)
{
    static const uint16_t vers[] = {0x0304, 0x0303};
    size_t e = open_ext(w, EXT_SUPPORTED_VERSIONS);
    size_t list = open_vec(w, 1);
    for (size_t i = 0; i < SD_COUNTOF(vers); i++)
        put_u16(w, vers[i]);
    close_vec(w, list, 1);
    close_vec(w, e, 2);
}

/* An outer ECH extension (draft-ietf-tls-esni: type, HPKE suite, config id, enc, payload). */
static void ext_ech(struct wbuf *w)
{
    size_t e = open_ext(w, EXT_ECH);
    put_u8(w, 0);       /* outer */
    put_u16(w, 0x0001); /* HKDF-SHA256 */
    put_u16(w, 0x0001); /* AES-128-GCM */
    put_u8(w, 0x2a);    /* config_id */
    size_t enc = open_vec(w, 2);
    put_pattern(w, ECH_ENC_LEN, 0xec);
    close_vec(w, enc, 2);
    size_t pl = open_vec(w, 2);
    put_pattern(w, ECH_PAYLOAD_LEN, 0xed);
    close_vec(w, pl, 2);
    close_vec(w, e, 2);
}

/* An extension with a fixed body. */
static void ext_raw(struct wbuf *w, uint16_t type, const uint8_t *body, size_t n)
{
    size_t e = open_ext(w, type);
    put_bytes(w, body, n);
    close_vec(w, e, 2);
}

static void put_extensions(struct wbuf *w, const struct sd_gen_hello *h)
{
    static const uint8_t reneg[] = {0}, ecpf[] = {1, 0}, status[] = {1, 0, 0, 0, 0}, psk[] = {1, 1}, ccert[] = {2, 0, 2};
    if (h->sni && h->sni_first)
        ext_server_name(w, h->sni);
    ext_raw(w, EXT_EMS, NULL, 0);
    ext_raw(w, EXT_RENEGOTIATION_INFO, reneg, sizeof(reneg));
    ext_groups(w, h->key_share_extra > 0);
    ext_raw(w, EXT_EC_POINT_FORMATS, ecpf, sizeof(ecpf));
    ext_raw(w, EXT_SESSION_TICKET, NULL, 0);
    if (h->sni && !h->sni_first)
        ext_server_name(w, h->sni);
    ext_alpn(w, h->alpn);
    ext_raw(w, EXT_STATUS_REQUEST, status, sizeof(status));
    ext_sig_algs(w);
    ext_raw(w, EXT_SCT, NULL, 0);
    ext_key_share(w, h->key_share_extra);
    ext_raw(w, EXT_PSK_MODES, psk, sizeof(psk));
    ext_supported_versions(w);
    ext_raw(w, EXT_COMPRESS_CERT, ccert, sizeof(ccert));
    if (h->ech)
        ext_ech(w);
    if (h->padding > 0) {
        size_t e = open_ext(w, EXT_PADDING);
        uint8_t *pad = reserve(w, h->padding);
        if (pad)
            memset(pad, 0, h->padding);
        close_vec(w, e, 2);
    }
}

size_t sd_gen_client_hello(uint8_t *buf, size_t cap, const struct sd_gen_hello *h)
{
    static const uint16_t suites[] = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9,
                                      0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035};
    struct wbuf w = {.p = buf, .cap = cap};
    uint8_t sid = h->session_id_len ? h->session_id_len : 32;
    put_u8(&w, 1); /* client_hello */
    size_t hs = open_vec(&w, 3);
    put_u16(&w, 0x0303);
    put_pattern(&w, 32, 0x7a); /* random */
    put_u8(&w, sid);
    put_pattern(&w, sid, 0x5d);
    put_u16_list(&w, 2, suites, SD_COUNTOF(suites));
    put_u8(&w, 1); /* compression methods: null only */
    put_u8(&w, 0);
    size_t ext = open_vec(&w, 2);
    put_extensions(&w, h);
    close_vec(&w, ext, 2);
    close_vec(&w, hs, 3);
    return w.overflow ? 0 : w.n;
}

size_t sd_gen_tls_record(uint8_t *buf, size_t cap, uint8_t type, const uint8_t *body, size_t len)
{
    if (len > 0xffff || cap < 5 || cap - 5 < len)
        return 0;
    memmove(buf + 5, body, len); /* body may already sit at buf + 5 */
    buf[0] = type;
    sd_put16be(buf + 1, 0x0301);
    sd_put16be(buf + 3, (uint16_t)len);
    return 5 + len;
}

size_t sd_gen_client_hello_record(uint8_t *buf, size_t cap, const struct sd_gen_hello *h)
{
    if (cap < 5)
        return 0;
    size_t n = sd_gen_client_hello(buf + 5, cap - 5, h);
    if (n == 0)
        return 0;
    return sd_gen_tls_record(buf, cap, 22, buf + 5, n);
}
