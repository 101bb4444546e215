/*
 * gen_quic.c - protected client Initials for tests, built as a client builds
 * them (RFC 9001 5): derive the Initial keys from the DCID, encrypt the
 * frames with AES-128-GCM (the header is the associated data), then mask the
 * first byte and the packet number with AES-128-ECB of a ciphertext sample.
 *
 *   c0|type|pnlen  version  dcid_len dcid  8 "slowdown"  00 (no token)  Length  PN  frames+PADDING  tag
 *
 * It is deliberately independent of quic.c: keys come from OpenSSL's own
 * HKDF and TLS13-KDF (HKDF-Expand-Label) and the version table is written out
 * again, so a derivation or table bug in quic.c cannot cancel out in a round
 * trip. Test code may allocate: contexts are made per packet.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "gen_quic.h"

enum { TAG_LEN = 16, SAMPLE_LEN = 16, CID_MAX = 20 };

struct gen_version {
    uint32_t version;
    const uint8_t *salt; /* 20 bytes */
    const char *prefix;  /* of the key, iv and hp labels */
    uint8_t initial_bits;
};

/* RFC 9001 5.2, RFC 9369 3.3.1, and the drafts' salts: draft-23 to 28, then
 * draft-29 to 32; draft-33 and 34 use the final v1 value. */
static const uint8_t salt_v1[20] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                                    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
static const uint8_t salt_v2[20] = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                                    0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};
static const uint8_t salt_d23[20] = {0xc3, 0xee, 0xf7, 0x12, 0xc7, 0x2e, 0xbb, 0x5a, 0x11, 0xa7,
                                     0xd2, 0x43, 0x2b, 0xb4, 0x63, 0x65, 0xbe, 0xf9, 0xf5, 0x02};
static const uint8_t salt_d29[20] = {0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
                                     0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99};

static const struct gen_version versions[] = {
    {0x00000001, salt_v1, "quic", 0},  {0x6b3343cf, salt_v2, "quicv2", 1}, {0xff00001b, salt_d23, "quic", 0},
    {0xff00001c, salt_d23, "quic", 0}, {0xff00001d, salt_d29, "quic", 0},  {0xff00001e, salt_d29, "quic", 0},
    {0xff00001f, salt_d29, "quic", 0}, {0xff000020, salt_d29, "quic", 0},  {0xff000021, salt_v1, "quic", 0},
    {0xff000022, salt_v1, "quic", 0},
};

static const struct gen_version *find_version(uint32_t version)
{
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
        if (versions[i].version == version)
            return &versions[i];
    return NULL;
}

/* Runs the KDF |name| with |params| into |out|. */
static bool kdf(const char *name, OSSL_PARAM *params, uint8_t *out, size_t len)
{
    EVP_KDF *k = EVP_KDF_fetch(NULL, name, NULL);
    EVP_KDF_CTX *c = k ? EVP_KDF_CTX_new(k) : NULL;
    bool ok = c && EVP_KDF_derive(c, out, len, params) == 1;
    EVP_KDF_CTX_free(c);
    EVP_KDF_free(k);
    return ok;
}

static bool expand_label(const uint8_t secret[32], const char *label, uint8_t *out, size_t len)
{
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)"tls13 ", 6),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, strlen(label)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, (void *)"", 0),
        OSSL_PARAM_construct_end(),
    };
    return kdf("TLS13-KDF", p, out, len);
}

/* Client Initial key (16), iv (12) and hp key (16) of |v| for |dcid|. */
static bool client_keys(const struct gen_version *v, const uint8_t *dcid, size_t dcid_len, uint8_t key[16], uint8_t iv[12],
                        uint8_t hp[16])
{
    uint8_t initial[32], secret[32];
    char label[16];
    int mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY;
    OSSL_PARAM p[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        /* OpenSSL wants a non-NULL pointer even for an empty DCID. */
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)(dcid_len ? dcid : (const uint8_t *)""), dcid_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)v->salt, 20),
        OSSL_PARAM_construct_end(),
    };
    if (!kdf("HKDF", p, initial, sizeof(initial)) || !expand_label(initial, "client in", secret, sizeof(secret)))
        return false;
    snprintf(label, sizeof(label), "%s key", v->prefix);
    if (!expand_label(secret, label, key, 16))
        return false;
    snprintf(label, sizeof(label), "%s iv", v->prefix);
    if (!expand_label(secret, label, iv, 12))
        return false;
    snprintf(label, sizeof(label), "%s hp", v->prefix);
    return expand_label(secret, label, hp, 16);
}

/* Encrypts |buf|[aad_len, aad_len + n) in place and appends the tag. */
static bool seal(const uint8_t key[16], const uint8_t nonce[12], uint8_t *buf, size_t aad_len, size_t n)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = c && EVP_EncryptInit_ex2(c, EVP_aes_128_gcm(), key, nonce, NULL) == 1 &&
              EVP_EncryptUpdate(c, NULL, &len, buf, (int)aad_len) == 1 &&
              EVP_EncryptUpdate(c, buf + aad_len, &len, buf + aad_len, (int)n) == 1 &&
              EVP_EncryptFinal_ex(c, buf + aad_len + n, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, buf + aad_len + n) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

static bool ecb_block(const uint8_t key[16], const uint8_t in[16], uint8_t out[32])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0;
    bool ok = c && EVP_EncryptInit_ex2(c, EVP_aes_128_ecb(), key, NULL, NULL) == 1 && EVP_CIPHER_CTX_set_padding(c, 0) == 1 &&
              EVP_EncryptUpdate(c, out, &len, in, 16) == 1 && len == 16;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

size_t sd_gen_quic_varint(uint8_t *out, uint64_t v)
{
    size_t n = v < 0x40 ? 1 : v < 0x4000 ? 2 : v < 0x40000000 ? 4 : 8;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    out[0] |= (uint8_t)((n == 1 ? 0 : n == 2 ? 1 : n == 4 ? 2 : 3) << 6);
    return n;
}

size_t sd_gen_quic_crypto_frame(uint8_t *out, size_t cap, uint64_t off, const uint8_t *data, size_t len)
{
    uint8_t hdr[17];
    size_t n = 0;
    hdr[n++] = 0x06;
    n += sd_gen_quic_varint(hdr + n, off);
    n += sd_gen_quic_varint(hdr + n, len);
    if (cap < n || cap - n < len)
        return 0;
    memcpy(out, hdr, n);
    if (len)
        memcpy(out + n, data, len);
    return n + len;
}

size_t sd_gen_quic_initial_frames(uint8_t *out, size_t cap, uint32_t version, const uint8_t *dcid, size_t dcid_len,
                                  uint64_t pn, const uint8_t *frames, size_t frames_len, size_t pad_to)
{
    const struct gen_version *v = find_version(version);
    if (!v || dcid_len > CID_MAX || pn > UINT32_MAX)
        return 0;
    size_t pn_len = pn < 0x100 ? 1 : pn < 0x10000 ? 2 : pn < 0x1000000 ? 3 : 4;
    /* The sample is 16 bytes from 4 bytes after the packet number offset. */
    size_t payload = frames_len < 4 - pn_len ? 4 - pn_len : frames_len;
    size_t base = 1 + 4 + 1 + dcid_len + 1 + 8 + 1; /* up to the Length field */
    size_t body = pn_len + payload + TAG_LEN, lsize = body < 0x4000 ? 2 : 4;
    if (base + lsize + body < pad_to) {
        payload += pad_to - (base + lsize + body);
        body = pn_len + payload + TAG_LEN;
        lsize = body < 0x4000 ? 2 : 4;
    }
    size_t total = base + lsize + body, pn_off = base + lsize, hdr_len = pn_off + pn_len;
    if (total > cap || body >= 0x40000000)
        return 0;

    uint8_t *q = out;
    *q++ = (uint8_t)(0xc0 | v->initial_bits << 4 | (pn_len - 1));
    for (int i = 3; i >= 0; i--)
        *q++ = (uint8_t)(version >> (8 * i));
    *q++ = (uint8_t)dcid_len;
    if (dcid_len)
        memcpy(q, dcid, dcid_len);
    q += dcid_len;
    *q++ = 8;
    memcpy(q, "slowdown", 8);
    q += 8;
    *q++ = 0; /* token length */
    for (size_t i = 0; i < lsize; i++)
        *q++ = (uint8_t)(body >> (8 * (lsize - 1 - i)));
    out[pn_off - lsize] |= lsize == 2 ? 0x40 : 0x80;
    for (size_t i = 0; i < pn_len; i++)
        *q++ = (uint8_t)(pn >> (8 * (pn_len - 1 - i)));
    if (frames_len)
        memcpy(q, frames, frames_len);
    memset(q + frames_len, 0, payload - frames_len); /* PADDING */

    uint8_t key[16], iv[12], hp[16], mask[32];
    if (!client_keys(v, dcid, dcid_len, key, iv, hp))
        return 0;
    for (size_t i = 0; i < 8; i++)
        iv[11 - i] ^= (uint8_t)(pn >> (8 * i));
    if (!seal(key, iv, out, hdr_len, payload) || !ecb_block(hp, out + pn_off + 4, mask))
        return 0;
    out[0] ^= mask[0] & 0x0f;
    for (size_t i = 0; i < pn_len; i++)
        out[pn_off + i] ^= mask[1 + i];
    return total;
}

size_t sd_gen_quic_initial(uint8_t *out, size_t cap, uint32_t version, const uint8_t *dcid, size_t dcid_len, uint64_t pn,
                           const uint8_t *crypto, size_t crypto_len, uint64_t crypto_off, size_t pad_to)
{
    size_t fcap = crypto_len + 17;
    uint8_t *frames = malloc(fcap);
    if (!frames)
        return 0;
    size_t n = sd_gen_quic_crypto_frame(frames, fcap, crypto_off, crypto, crypto_len);
    size_t len = n ? sd_gen_quic_initial_frames(out, cap, version, dcid, dcid_len, pn, frames, n, pad_to) : 0;
    free(frames);
    return len;
}
