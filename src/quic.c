/*
 * quic.c - what an on-path observer can read of a QUIC client's first flight:
 * long headers, Initial keys, header and packet protection, CRYPTO frames.
 *
 * A client Initial is protected with keys that anyone can compute from the
 * Destination Connection ID in clear (RFC 9001 5.2):
 *
 *   initial_secret = HKDF-Extract(salt(version), DCID)
 *   client_secret  = HKDF-Expand-Label(initial_secret, "client in", "", 32)
 *   key/iv/hp      = HKDF-Expand-Label(client_secret, "quic key"/"quic iv"/"quic hp")
 *
 * QUIC v2 (RFC 9369) changes the salt, the labels ("quicv2 key", ...) and the
 * long-header type numbers; the IETF drafts 27 to 34 differ from v1 only in
 * the salt. Removing protection is then: sample 16 bytes 4 bytes after the
 * packet number offset, AES-128-ECB them with hp to get a mask, unmask the low
 * 4 bits of the first byte (which give the packet-number length) and the
 * packet number, and open the payload with AES-128-GCM, the unprotected header
 * being the associated data and iv XOR packet number the nonce.
 *
 * Allocation. The contract says nothing is allocated per packet. AES-GCM and
 * AES-ECB keep that promise through EVP: the cipher contexts are made once in
 * sd_quic_ctx_new() and re-keyed with EVP_*Init_ex2(ctx, NULL, key, ...),
 * which allocates nothing (measured). HMAC does not: in OpenSSL 3.0 every
 * EVP_MAC_init() with a new key, every EVP_DigestInit_ex2() and every
 * EVP_MD_CTX_copy_ex() frees and re-creates the provider's digest context
 * (EVP_MAC_init: 5 allocations; EVP_KDF_derive for HKDF: 16). Key derivation
 * needs a new HMAC key for each connection ID, so HKDF here is written out
 * (RFC 5869, RFC 2104; every output is at most one SHA-256 block) over
 * libcrypto's SHA256_Init/Update/Final, which work on a caller's SHA256_CTX
 * and allocate nothing. Those functions are deprecated in 3.0 but present in
 * every 3.x release; the deprecation warning is suppressed for this file only.
 * The last client keys derived are also cached, so the second Initial of a
 * split ClientHello (same DCID) costs no derivation at all.
 *
 * Frames. An Initial may carry PADDING, PING, ACK, CRYPTO and
 * CONNECTION_CLOSE (RFC 9000 12.4). CRYPTO data goes to the caller's
 * reassembler at its stream offset; a censor needs nothing else, so any other
 * frame type ends the walk of that packet.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "bytes.h"
#include "quic.h"

enum {
    SHA256_LEN = 32,
    SHA256_BLOCK = 64,
    AEAD_TAG_LEN = 16,
    HP_SAMPLE_LEN = 16,
    SALT_LEN = 20,
    /* Longest UDP payload (IPv6 without jumbograms) rounded up; one packet of
     * a datagram never exceeds it. */
    SCRATCH_LEN = 65536,
};

#define VARINT_MAX ((uint64_t)1 << 62)

struct sd_quic_ctx {
    EVP_CIPHER *gcm, *ecb;
    EVP_CIPHER_CTX *aead, *hp;
    /* The last client keys derived, by version and DCID. */
    bool cached;
    uint32_t cache_version;
    uint8_t cache_dcid_len;
    uint8_t cache_dcid[SD_QUIC_CID_MAX];
    struct sd_quic_keys cache_keys;
    /* Unprotected header and plaintext of the packet being read. */
    uint8_t scratch[SCRATCH_LEN];
};

/* ---- versions ---- */

static const uint8_t salt_v1[SALT_LEN] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                          0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
static const uint8_t salt_v2[SALT_LEN] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                          0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
static const uint8_t salt_d29[SALT_LEN] = {0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
                                           0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99};
static const uint8_t salt_d23[SALT_LEN] = {0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7,
                                           0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02};

struct version_params {
    const uint8_t *salt;
    const char *key_label, *iv_label, *hp_label;
    bool v2;
};

static const struct version_params params_v1 = {salt_v1, "quic key", "quic iv", "quic hp", false};
static const struct version_params params_v2 = {salt_v2, "quicv2 key", "quicv2 iv", "quicv2 hp", true};
static const struct version_params params_d29 = {salt_d29, "quic key", "quic iv", "quic hp", false};
static const struct version_params params_d23 = {salt_d23, "quic key", "quic iv", "quic hp", false};

/*
 * Salts by draft, from the drafts' change logs: draft-23 changed the salt to
 * c3eef712..., draft-29 to afbfec28..., and draft-33 took the final RFC 9001
 * value ("Since draft-ietf-quic-tls-32: Added final values for Initial key
 * derivation ...", quicwg/base-drafts#4431).
 */
static const struct version_params *version_params(uint32_t version)
{
    if (version == SD_QUIC_V1)
        return &params_v1;
    if (version == SD_QUIC_V2)
        return &params_v2;
    if (version >= 0xff00001b && version <= 0xff00001c)
        return &params_d23;
    if (version >= 0xff00001d && version <= 0xff000020)
        return &params_d29;
    if (version >= 0xff000021 && version <= 0xff000022)
        return &params_v1;
    return NULL;
}

bool sd_quic_version_known(uint32_t version)
{
    return version_params(version) != NULL;
}

/* ---- HKDF over HMAC-SHA256 (see the allocation note above) ---- */

/* HMAC-SHA256 of |m1| || |m2| under a key of at most one block. */
static void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *m1, size_t n1, const uint8_t *m2, size_t n2,
                        uint8_t out[SHA256_LEN])
{
    uint8_t pad[SHA256_BLOCK], inner[SHA256_LEN];
    SHA256_CTX c;

    memset(pad, 0x36, sizeof(pad));
    for (size_t i = 0; i < key_len; i++)
        pad[i] ^= key[i];
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof(pad));
    SHA256_Update(&c, m1, n1);
    SHA256_Update(&c, m2, n2);
    SHA256_Final(inner, &c);

    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] ^= 0x36 ^ 0x5c;
    SHA256_Init(&c);
    SHA256_Update(&c, pad, sizeof(pad));
    SHA256_Update(&c, inner, sizeof(inner));
    SHA256_Final(out, &c);
    OPENSSL_cleanse(pad, sizeof(pad));
}

/* HKDF-Expand-Label(secret, label, "", len) of TLS 1.3 (RFC 8446 7.1); |len|
 * is at most 32, so HKDF-Expand is one block: T(1) = HMAC(secret, info | 1). */
static void expand_label(const uint8_t secret[SHA256_LEN], const char *label, uint8_t *out, size_t len)
{
    static const char prefix[] = "tls13 ";
    uint8_t info[2 + 1 + 32 + 1 + 1], t[SHA256_LEN];
    size_t llen = strlen(label), n = 0;

    info[n++] = 0;
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(sizeof(prefix) - 1 + llen);
    memcpy(info + n, prefix, sizeof(prefix) - 1);
    n += sizeof(prefix) - 1;
    memcpy(info + n, label, llen);
    n += llen;
    info[n++] = 0; /* empty context */
    info[n++] = 1; /* HKDF-Expand block counter */
    hmac_sha256(secret, SHA256_LEN, info, n, NULL, 0, t);
    memcpy(out, t, len);
    OPENSSL_cleanse(t, sizeof(t));
}

int sd_quic_initial_keys(struct sd_quic_ctx *ctx, uint32_t version, const uint8_t *dcid, size_t dcid_len, bool server,
                         struct sd_quic_keys *k)
{
    const struct version_params *vp = version_params(version);
    if (!vp)
        return SD_ENOTSUP;
    if (dcid_len > SD_QUIC_CID_MAX)
        return SD_EINVAL;
    if (!server && ctx->cached && ctx->cache_version == version && ctx->cache_dcid_len == dcid_len &&
        (dcid_len == 0 || memcmp(ctx->cache_dcid, dcid, dcid_len) == 0)) {
        *k = ctx->cache_keys;
        return 0;
    }

    uint8_t initial[SHA256_LEN], secret[SHA256_LEN];
    hmac_sha256(vp->salt, SALT_LEN, dcid, dcid_len, NULL, 0, initial); /* HKDF-Extract */
    expand_label(initial, server ? "server in" : "client in", secret, sizeof(secret));
    expand_label(secret, vp->key_label, k->key, sizeof(k->key));
    expand_label(secret, vp->iv_label, k->iv, sizeof(k->iv));
    expand_label(secret, vp->hp_label, k->hp, sizeof(k->hp));
    OPENSSL_cleanse(initial, sizeof(initial));
    OPENSSL_cleanse(secret, sizeof(secret));

    if (!server) {
        ctx->cached = true;
        ctx->cache_version = version;
        ctx->cache_dcid_len = (uint8_t)dcid_len;
        if (dcid_len)
            memcpy(ctx->cache_dcid, dcid, dcid_len);
        ctx->cache_keys = *k;
    }
    return 0;
}

/* ---- context ---- */

struct sd_quic_ctx *sd_quic_ctx_new(void)
{
    struct sd_quic_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    ctx->gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    ctx->ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    ctx->aead = EVP_CIPHER_CTX_new();
    ctx->hp = EVP_CIPHER_CTX_new();
    if (!ctx->gcm || !ctx->ecb || !ctx->aead || !ctx->hp)
        goto fail;
    /* Bind each context to its cipher once; packets only change the key. */
    if (EVP_DecryptInit_ex2(ctx->aead, ctx->gcm, NULL, NULL, NULL) != 1 ||
        EVP_EncryptInit_ex2(ctx->hp, ctx->ecb, NULL, NULL, NULL) != 1 || EVP_CIPHER_CTX_set_padding(ctx->hp, 0) != 1)
        goto fail;
    return ctx;
fail:
    sd_quic_ctx_free(ctx);
    return NULL;
}

void sd_quic_ctx_free(struct sd_quic_ctx *ctx)
{
    if (!ctx)
        return;
    EVP_CIPHER_CTX_free(ctx->aead);
    EVP_CIPHER_CTX_free(ctx->hp);
    EVP_CIPHER_free(ctx->gcm);
    EVP_CIPHER_free(ctx->ecb);
    OPENSSL_cleanse(&ctx->cache_keys, sizeof(ctx->cache_keys));
    free(ctx);
}

/* ---- long headers ---- */

/* Reads a variable-length integer (RFC 9000 16). Returns the advanced
 * pointer, or NULL when the input ends inside it. */
static const uint8_t *get_varint(uint64_t *v, const uint8_t *p, const uint8_t *end)
{
    if (p >= end)
        return NULL;
    size_t n = (size_t)1 << (p[0] >> 6);
    if ((size_t)(end - p) < n)
        return NULL;
    uint64_t x = p[0] & 0x3f;
    for (size_t i = 1; i < n; i++)
        x = x << 8 | p[i];
    *v = x;
    return p + n;
}

/* Reads a connection ID: a length byte and that many bytes. */
static const uint8_t *get_cid(struct sd_iov *cid, const uint8_t *p, const uint8_t *end)
{
    if (p >= end || (size_t)(end - p) < 1u + p[0])
        return NULL;
    cid->n = p[0];
    cid->p = p + 1;
    return p + 1 + p[0];
}

/*
 * The invariant part (RFC 8999) is read for every version, so the caller of
 * an SD_ENOTSUP result still gets the version and both connection IDs; the
 * rest (type, token, Length) only for versions this module knows. The fixed
 * bit (0x40) is not checked: RFC 9287 lets a client clear it even in its
 * Initials, and a censor that insisted on it would be trivially evaded.
 */
int sd_quic_parse_long(const uint8_t *p, const uint8_t *end, struct sd_quic_hdr *h)
{
    const uint8_t *q;

    memset(h, 0, sizeof(*h));
    if (p >= end)
        return SD_EPROTO;
    if (!(p[0] & 0x80))
        return SD_ENOTSUP; /* short header */
    h->long_header = true;
    if (end - p < 5)
        return SD_EPROTO;
    h->version = sd_rd32be(p + 1);
    q = get_cid(&h->dcid, p + 5, end);
    if (q)
        q = get_cid(&h->scid, q, end);
    if (!q)
        return SD_EPROTO;
    const struct version_params *vp = version_params(h->version);
    if (!vp)
        return SD_ENOTSUP; /* version negotiation (0) or unknown */
    if (h->dcid.n > SD_QUIC_CID_MAX || h->scid.n > SD_QUIC_CID_MAX)
        return SD_EPROTO;

    unsigned bits = (p[0] >> 4) & 3;
    h->type = (uint8_t)(vp->v2 ? (bits + 3) & 3 : bits); /* v2: 1 Initial, 2 0-RTT, 3 Handshake, 0 Retry */
    if (h->type == SD_QUIC_RETRY) {
        /* No Length field: a Retry runs to the end of the datagram. */
        h->len = (size_t)(end - p);
        return h->len > INT_MAX ? SD_EPROTO : (int)h->len;
    }
    uint64_t v;
    if (h->type == SD_QUIC_INITIAL) {
        q = get_varint(&v, q, end);
        if (!q || v > (uint64_t)(end - q))
            return SD_EPROTO;
        h->token.p = q;
        h->token.n = (size_t)v;
        q += v;
    }
    q = get_varint(&v, q, end);
    if (!q || v > (uint64_t)(end - q))
        return SD_EPROTO;
    h->pn_off = (size_t)(q - p);
    h->len = h->pn_off + (size_t)v;
    if (h->len > INT_MAX)
        return SD_EPROTO;
    return (int)h->len;
}

/* ---- packet protection ---- */

/*
 * Expands a truncated packet number of |nbits| bits next to |expected|, the
 * largest number received plus one (RFC 9000 17.1 and A.3). An observer of a
 * first flight has received nothing, so callers here pass 0.
 */
static uint64_t decode_pn(uint64_t expected, uint64_t truncated, unsigned nbits)
{
    uint64_t win = (uint64_t)1 << nbits, hwin = win / 2, mask = win - 1;
    uint64_t cand = (expected & ~mask) | truncated;

    if (cand + hwin <= expected && cand < VARINT_MAX - win)
        return cand + win;
    if (cand > expected + hwin && cand >= win)
        return cand - win;
    return cand;
}

/* AES-128-ECB of one block with the header-protection key. */
static int hp_mask(struct sd_quic_ctx *ctx, const uint8_t hp[16], const uint8_t *sample, uint8_t mask[32])
{
    int n = 0;
    if (EVP_EncryptInit_ex2(ctx->hp, NULL, hp, NULL, NULL) != 1 ||
        EVP_EncryptUpdate(ctx->hp, mask, &n, sample, HP_SAMPLE_LEN) != 1 || n != HP_SAMPLE_LEN)
        return SD_ECRYPTO;
    return 0;
}

/* AES-128-GCM open of |ct| (|n| bytes) and |tag| into |out|. */
static int aead_open(struct sd_quic_ctx *ctx, const uint8_t key[16], const uint8_t nonce[12], const uint8_t *aad,
                     size_t aad_len, const uint8_t *ct, size_t n, const uint8_t *tag, uint8_t *out)
{
    uint8_t t[AEAD_TAG_LEN], fin[AEAD_TAG_LEN];
    int len = 0;

    memcpy(t, tag, sizeof(t)); /* the ctrl takes a non-const pointer */
    if (EVP_DecryptInit_ex2(ctx->aead, NULL, key, nonce, NULL) != 1 ||
        EVP_DecryptUpdate(ctx->aead, NULL, &len, aad, (int)aad_len) != 1 ||
        (n > 0 && EVP_DecryptUpdate(ctx->aead, out, &len, ct, (int)n) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx->aead, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, t) != 1 ||
        EVP_DecryptFinal_ex(ctx->aead, fin, &len) != 1) {
        ERR_clear_error(); /* a forged packet is not an error of this thread's caller */
        return SD_ECRYPTO;
    }
    return 0;
}

int sd_quic_unprotect(struct sd_quic_ctx *ctx, const uint8_t *pkt, const struct sd_quic_hdr *h, const struct sd_quic_keys *k,
                      uint8_t *out, size_t cap, size_t *payload_off, size_t *payload_len, uint64_t *pn)
{
    /* The sample starts 4 bytes after the packet number offset, whatever
     * the packet number length (RFC 9001 5.4.2). */
    if (!h->long_header || h->type == SD_QUIC_RETRY || h->len > INT_MAX || h->pn_off + 4 + HP_SAMPLE_LEN > h->len)
        return SD_EPROTO;
    uint8_t mask[32];
    if (hp_mask(ctx, k->hp, pkt + h->pn_off + 4, mask) != 0)
        return SD_ECRYPTO;

    uint8_t first = (uint8_t)(pkt[0] ^ (mask[0] & 0x0f));
    size_t pn_len = (size_t)(first & 3) + 1;
    size_t hdr_len = h->pn_off + pn_len;
    if (hdr_len + AEAD_TAG_LEN > h->len)
        return SD_EPROTO;
    size_t ct_len = h->len - hdr_len - AEAD_TAG_LEN;
    if (cap < hdr_len + ct_len)
        return SD_ERANGE;

    memcpy(out, pkt, h->pn_off);
    out[0] = first;
    uint64_t truncated = 0;
    for (size_t i = 0; i < pn_len; i++) {
        out[h->pn_off + i] = (uint8_t)(pkt[h->pn_off + i] ^ mask[1 + i]);
        truncated = truncated << 8 | out[h->pn_off + i];
    }
    uint64_t full = decode_pn(0, truncated, (unsigned)(8 * pn_len));
    /* The reserved bits (0x0c) are left to the endpoints: a nonzero value
     * is a protocol violation for the server, not a reason to stop reading. */

    uint8_t nonce[12];
    memcpy(nonce, k->iv, sizeof(nonce));
    for (size_t i = 0; i < 8; i++)
        nonce[sizeof(nonce) - 1 - i] ^= (uint8_t)(full >> (8 * i));
    int rc = aead_open(ctx, k->key, nonce, out, hdr_len, pkt + hdr_len, ct_len, pkt + hdr_len + ct_len, out + hdr_len);
    if (rc != 0)
        return rc;
    *payload_off = hdr_len;
    *payload_len = ct_len;
    *pn = full;
    return 0;
}

/* ---- frames ---- */

/* Skips the body of an ACK frame (RFC 9000 19.3); |ecn| for type 0x03. */
static const uint8_t *skip_ack(const uint8_t *p, const uint8_t *end, bool ecn)
{
    uint64_t v, ranges;
    for (int i = 0; i < 2 && p; i++) /* Largest Acknowledged, ACK Delay */
        p = get_varint(&v, p, end);
    if (p)
        p = get_varint(&ranges, p, end);
    if (p)
        p = get_varint(&v, p, end); /* First ACK Range */
    /* Each range takes at least two bytes, so a bogus count ends at |end|. */
    for (uint64_t i = 0; p && i < ranges; i++) {
        p = get_varint(&v, p, end); /* Gap */
        if (p)
            p = get_varint(&v, p, end); /* ACK Range Length */
    }
    for (int i = 0; ecn && i < 3 && p; i++) /* ECT0, ECT1, ECN-CE counts */
        p = get_varint(&v, p, end);
    return p;
}

/*
 * Walks the frames of one Initial's plaintext, adding CRYPTO data to
 * |crypto| (may be NULL). Frame types are read as one byte: the types an
 * Initial may carry are all below 0x40, and a longer (non-minimal) encoding
 * is just another type that ends the walk. Returns 0 or SD_EPROTO.
 */
static int walk_frames(const uint8_t *p, const uint8_t *end, struct sd_reasm *crypto, uint16_t *n_crypto)
{
    while (p < end) {
        uint64_t off, len;
        switch (p[0]) {
        case 0x00: /* PADDING: usually the rest of the packet */
            while (p < end && p[0] == 0)
                p++;
            break;
        case 0x01: /* PING */
            p++;
            break;
        case 0x02:
        case 0x03:
            p = skip_ack(p + 1, end, p[0] == 0x03);
            if (!p)
                return SD_EPROTO;
            break;
        case 0x06:
            p = get_varint(&off, p + 1, end);
            if (p)
                p = get_varint(&len, p, end);
            if (!p || len > (uint64_t)(end - p) || off + len >= VARINT_MAX)
                return SD_EPROTO;
            if ((!crypto || sd_reasm_add(crypto, off, p, (size_t)len) >= 0) && *n_crypto < UINT16_MAX)
                (*n_crypto)++;
            p += len;
            break;
        default: /* CONNECTION_CLOSE (0x1c) and anything else */
            return 0;
        }
    }
    return 0;
}

/* ---- datagrams ---- */

/* Decrypts the client Initial |pkt| (header |h|) and walks its frames. */
static int read_initial(struct sd_quic_ctx *ctx, const uint8_t *pkt, const struct sd_quic_hdr *h, struct sd_reasm *crypto,
                        struct sd_quic_info *info)
{
    struct sd_quic_keys k;
    size_t off, len;
    uint64_t pn;

    int rc = sd_quic_initial_keys(ctx, h->version, h->dcid.p, h->dcid.n, false, &k);
    if (rc != 0)
        return SD_EPROTO;
    rc = sd_quic_unprotect(ctx, pkt, h, &k, ctx->scratch, sizeof(ctx->scratch), &off, &len, &pn);
    if (rc == SD_ERANGE)
        rc = SD_EPROTO; /* longer than any UDP payload */
    if (rc != 0)
        return rc;
    if (info->initials == 0) {
        info->version = h->version;
        info->dcid_len = (uint8_t)h->dcid.n;
        if (h->dcid.n)
            memcpy(info->dcid, h->dcid.p, h->dcid.n);
    }
    if (info->initials < UINT16_MAX)
        info->initials++;
    return walk_frames(ctx->scratch + off, ctx->scratch + off + len, crypto, &info->crypto_frames);
}

/*
 * Coalesced packets (RFC 9000 12.2) are walked by their Length fields. The
 * walk stops at a short header (it runs to the end of the datagram; zero
 * bytes that some stacks append after the last packet look like one) and at
 * an unknown version, whose length cannot be known. A header that does not
 * parse after a decrypted Initial is trailing junk and ends the walk; an
 * Initial that fails authentication, or whose frames are malformed, fails the
 * whole datagram (CRYPTO data of earlier frames stays in |crypto|).
 */
int sd_quic_client_initials(struct sd_quic_ctx *ctx, const uint8_t *p, const uint8_t *end, struct sd_reasm *crypto,
                            struct sd_quic_info *info)
{
    struct sd_quic_info scratch_info;
    int err = SD_ENOENT;

    if (!info)
        info = &scratch_info;
    memset(info, 0, sizeof(*info));
    while (p < end && (p[0] & 0x80)) {
        struct sd_quic_hdr h;
        int n = sd_quic_parse_long(p, end, &h);
        if (n < 0) {
            if (n != SD_ENOTSUP)
                err = n;
            break;
        }
        if (h.type == SD_QUIC_INITIAL) {
            int rc = read_initial(ctx, p, &h, crypto, info);
            if (rc < 0)
                return rc;
        }
        p += n;
    }
    return info->initials > 0 ? info->initials : err;
}
