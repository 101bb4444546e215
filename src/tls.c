/*
 * tls.c - ClientHello parsing for the strict (one segment) and stream
 * (reassembled) inspection models.
 *
 * The hello itself is walked the way picotls' decode_client_hello() walks it:
 * every length-prefixed vector is opened with open_block(), which reads a 1-,
 * 2- or 3-byte length, checks it against the current end and hands back the
 * block's end; the caller then parses inside [p, block_end) and requires that
 * it consumed the block exactly. No offset is ever computed by hand, so a lie
 * in any length field is caught where it is read.
 *
 *   record   16 03 01 LL LL                          (5 bytes, strict/stream only)
 *   hs hdr   01 LL LL LL                             (type 1, 24-bit length)
 *   body     version(2) random(32) sid<0..32> suites<2..2^16-2> comp<1..2^8-1>
 *            [extensions<0..2^16-1>, ending exactly at the end of the body]
 *
 * Only four extensions are looked into: server_name (0), ALPN (16), padding
 * (21) and encrypted_client_hello (0xfe0d). When an extension occurs twice,
 * the first occurrence supplies the values (both must still be well formed).
 *
 * The strict entry point emulates the 2021 TSPU (spec B3, B6): the first
 * record of one segment must hold the whole hello. Its two failure codes
 * matter to the engine: SD_ENOENT means "TLS, but not a complete ClientHello
 * in this segment" (the box keeps looking), SD_EPROTO means "not TLS or
 * malformed" (the box may give up).
 *
 * The stream entry point is stateless: each call re-reads the stream from its
 * first byte, so a caller feeds it a growing reassembly buffer. A hello that
 * sits in one record is parsed in place; one that spans records is copied,
 * record by record, into the caller's scratch buffer and parsed there. Checks
 * on a partial stream only ever fail on bytes already present, so a prefix of
 * a stream yields SD_EAGAIN or the same answer as the whole stream.
 */
#include <string.h>

#include "bytes.h"
#include "tls.h"

enum {
    REC_HDR = 5,
    HS_HDR = 4,
    REC_MAX = 16384 + 2048, /* TLSCiphertext limit: the largest length a record header may carry */
    SID_MAX = 32,
    /* The largest body the vectors allow: version, random, sid, suites, comp, extensions. */
    HELLO_BODY_MAX = 2 + 32 + (1 + 32) + (2 + 65534) + (1 + 255) + (2 + 65535),
    EXT_SERVER_NAME = 0,
    EXT_ALPN = 16,
    EXT_PADDING = 21,
    EXT_ECH = 0xfe0d,
    NAME_TYPE_HOST = 0,
};

/*
 * Opens a vector whose length is the |lenbytes|-byte big-endian integer at
 * *p: checks that the vector fits before |end|, moves *p to its first byte
 * and stores its end in *bend. 0 or SD_EPROTO.
 */
static int open_block(const uint8_t **p, const uint8_t *end, unsigned lenbytes, const uint8_t **bend)
{
    const uint8_t *q = *p;
    if ((size_t)(end - q) < lenbytes)
        return SD_EPROTO;
    size_t n = 0;
    for (unsigned i = 0; i < lenbytes; i++)
        n = n << 8 | q[i];
    q += lenbytes;
    if ((size_t)(end - q) < n)
        return SD_EPROTO;
    *p = q;
    *bend = q + n;
    return 0;
}

/* server_name (RFC 6066 3): ServerName server_name_list<1..2^16-1>, each
 * entry a name_type byte and an opaque<1..2^16-1>. The first host_name wins. */
static int parse_server_name(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h)
{
    const uint8_t *lend, *nend;
    bool keep = !h->has_sni;
    if (open_block(&p, end, 2, &lend) != 0 || lend != end || p == end)
        return SD_EPROTO;
    while (p != end) {
        uint8_t type;
        p = sd_get8(&type, p);
        if (open_block(&p, end, 2, &nend) != 0 || nend == p)
            return SD_EPROTO;
        if (keep && type == NAME_TYPE_HOST && h->sni.p == NULL) {
            h->sni.p = p;
            h->sni.n = (size_t)(nend - p);
        }
        p = nend;
    }
    h->has_sni = true;
    return 0;
}

/* ALPN (RFC 7301 3.1): ProtocolName protocol_name_list<2..2^16-1>, each an
 * opaque<1..2^8-1>. Up to SD_TLS_ALPN_MAX names are kept. */
static int parse_alpn(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h)
{
    const uint8_t *lend, *nend;
    bool keep = h->n_alpn == 0;
    if (open_block(&p, end, 2, &lend) != 0 || lend != end || p == end)
        return SD_EPROTO;
    while (p != end) {
        if (open_block(&p, end, 1, &nend) != 0 || nend == p)
            return SD_EPROTO;
        if (keep && h->n_alpn < SD_COUNTOF(h->alpn)) {
            h->alpn[h->n_alpn].p = p;
            h->alpn[h->n_alpn].n = (size_t)(nend - p);
            h->n_alpn++;
        }
        p = nend;
    }
    return 0;
}

/* Walks the extension list [p, end); each extension's body is consumed exactly. */
static int parse_extensions(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h)
{
    while (p != end) {
        uint16_t type;
        const uint8_t *bend;
        int rc = 0;
        if (end - p < 4)
            return SD_EPROTO;
        p = sd_get16be(&type, p);
        if (open_block(&p, end, 2, &bend) != 0)
            return SD_EPROTO;
        h->n_ext++;
        switch (type) {
        case EXT_SERVER_NAME:
            rc = parse_server_name(p, bend, h);
            break;
        case EXT_ALPN:
            rc = parse_alpn(p, bend, h);
            break;
        case EXT_PADDING:
            if (!h->has_padding)
                h->padding_len = (uint16_t)(bend - p);
            h->has_padding = true;
            break;
        case EXT_ECH:
            h->has_ech = true;
            break;
        default:
            break;
        }
        if (rc != 0)
            return rc;
        p = bend;
    }
    return 0;
}

/* Walks a ClientHello body [p, end) (after the 4-byte handshake header). */
static int parse_hello_body(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h)
{
    const uint8_t *bend;
    if (end - p < 2 + 32)
        return SD_EPROTO;
    p = sd_get16be(&h->legacy_version, p);
    p += 32; /* random */
    if (open_block(&p, end, 1, &bend) != 0 || bend - p > SID_MAX)
        return SD_EPROTO;
    p = bend;
    if (open_block(&p, end, 2, &bend) != 0 || bend == p || (bend - p) % 2 != 0)
        return SD_EPROTO;
    p = bend;
    if (open_block(&p, end, 1, &bend) != 0 || bend == p)
        return SD_EPROTO;
    p = bend;
    if (p == end)
        return 0; /* a pre-TLS-1.2 hello may omit the extensions */
    if (open_block(&p, end, 2, &bend) != 0 || bend != end)
        return SD_EPROTO;
    return parse_extensions(p, end, h);
}

/* Parses the hello body of |hs_len| bytes at |p| into |h|. On failure the
 * views a partial walk may have set are cleared, so none outlives an error. */
static int walk_hello(const uint8_t *p, uint32_t hs_len, struct sd_tls_hello *h)
{
    int rc = parse_hello_body(p, p + hs_len, h);
    if (rc != 0) {
        memset(&h->sni, 0, sizeof(h->sni));
        memset(h->alpn, 0, sizeof(h->alpn));
        h->n_alpn = 0;
        h->has_sni = h->has_ech = h->has_padding = false;
        h->padding_len = 0;
        h->n_ext = 0;
    }
    return rc;
}

bool sd_tls_looks_like_record(const uint8_t *p, const uint8_t *end)
{
    if (end - p < REC_HDR)
        return false;
    return p[0] >= SD_TLS_CT_CCS && p[0] <= SD_TLS_CT_APPDATA && p[1] == 3 && sd_rd16be(p + 3) <= REC_MAX;
}

int sd_tls_strict(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h)
{
    memset(h, 0, sizeof(*h));
    if (!sd_tls_looks_like_record(p, end))
        return SD_EPROTO;
    h->record_version = sd_rd16be(p + 1);
    h->record_len = sd_rd16be(p + 3);
    size_t seg = (size_t)(end - p), rlen = h->record_len;
    if (REC_HDR + rlen <= seg)
        h->facts |= SD_TLS_RECORD_IN_SEGMENT;
    if (p[0] != SD_TLS_CT_HANDSHAKE)
        return SD_ENOENT;
    /* What of the handshake header lies inside both the record and the segment. */
    size_t vis = SD_MIN(rlen, seg - REC_HDR);
    const uint8_t *hs = p + REC_HDR;
    if (vis >= 1 && hs[0] != SD_TLS_HS_CLIENT_HELLO)
        return SD_ENOENT;
    if (vis < HS_HDR)
        return SD_ENOENT;
    h->hs_len = sd_rd24be(hs + 1);
    if ((size_t)h->hs_len + HS_HDR <= rlen)
        h->facts |= SD_TLS_HS_IN_RECORD;
    if (!(h->facts & SD_TLS_RECORD_IN_SEGMENT) || !(h->facts & SD_TLS_HS_IN_RECORD))
        return SD_ENOENT;
    int rc = walk_hello(hs + HS_HDR, h->hs_len, h);
    if (rc != 0)
        return rc;
    h->records = 1;
    h->facts |= SD_TLS_FIRST_RECORD;
    return (int)(REC_HDR + rlen);
}

int sd_tls_client_hello(const uint8_t *p, const uint8_t *end, struct sd_tls_hello *h)
{
    memset(h, 0, sizeof(*h));
    if (p == end)
        return SD_EAGAIN;
    if (p[0] != SD_TLS_HS_CLIENT_HELLO)
        return SD_EPROTO;
    if (end - p < HS_HDR)
        return SD_EAGAIN;
    h->hs_len = sd_rd24be(p + 1);
    if (h->hs_len > HELLO_BODY_MAX)
        return SD_EPROTO;
    if ((size_t)(end - p) - HS_HDR < h->hs_len)
        return SD_EAGAIN;
    int rc = walk_hello(p + HS_HDR, h->hs_len, h);
    if (rc != 0)
        return rc;
    return (int)(HS_HDR + h->hs_len);
}

/* ---- stream mode ---- */

/* Handshake bytes gathered from the records seen so far. */
struct gather {
    uint8_t *buf;
    size_t cap;
    size_t have;
    size_t need; /* 4 + hs_len once the handshake header is known, else 0 */
};

/*
 * Checks the record header at |q| (record number |rec|). 0 when it is a whole
 * handshake record header; SD_EAGAIN when fewer than 5 bytes are there and
 * those are plausible; SD_ENOENT for another content type in the first
 * record; SD_EPROTO otherwise.
 */
static int stream_record_header(const uint8_t *q, const uint8_t *end, unsigned rec)
{
    size_t n = (size_t)(end - q);
    if (n >= 1 && (q[0] < SD_TLS_CT_CCS || q[0] > SD_TLS_CT_APPDATA))
        return SD_EPROTO;
    if (n >= 2 && q[1] != 3)
        return SD_EPROTO;
    if (n < REC_HDR)
        return SD_EAGAIN;
    if (!sd_tls_looks_like_record(q, end))
        return SD_EPROTO;
    if (q[0] != SD_TLS_CT_HANDSHAKE)
        return rec == 0 ? SD_ENOENT : SD_EPROTO; /* no interleaving inside a handshake message */
    if (sd_rd16be(q + 3) == 0)
        return SD_EPROTO; /* RFC 8446 5.1: no zero-length handshake fragments */
    return 0;
}

/* Appends up to |n| bytes at |src| that belong to the hello. 0, or the
 * error the bytes already prove (not a ClientHello, too large). */
static int gather_add(struct gather *g, const uint8_t *src, size_t n, struct sd_tls_hello *h)
{
    while (n > 0 && (g->need == 0 || g->have < g->need)) {
        if (g->have == 0 && src[0] != SD_TLS_HS_CLIENT_HELLO)
            return SD_ENOENT;
        size_t take = SD_MIN(n, g->need ? g->need - g->have : HS_HDR - g->have);
        if (take > g->cap - g->have)
            return SD_ERANGE;
        memcpy(g->buf + g->have, src, take);
        g->have += take;
        src += take;
        n -= take;
        if (g->need == 0 && g->have == HS_HDR) {
            h->hs_len = sd_rd24be(g->buf + 1);
            if (h->hs_len > HELLO_BODY_MAX)
                return SD_EPROTO;
            g->need = HS_HDR + (size_t)h->hs_len;
            if (g->need > g->cap)
                return SD_ERANGE;
        }
    }
    return 0;
}

/*
 * The first record of the stream. When it holds the whole hello, parses it in
 * place and returns what sd_tls_stream() returns; the same when its visible
 * bytes already settle the answer (not a ClientHello, SD_EAGAIN until the
 * handshake header is visible). Sets *done to false, returning 0, when the
 * hello spans records and the caller must gather it.
 */
static int stream_first_record(const uint8_t *q, const uint8_t *end, struct sd_tls_hello *h, bool *done)
{
    size_t len = sd_rd16be(q + 3);
    const uint8_t *body = q + REC_HDR;
    size_t avail = SD_MIN(len, (size_t)(end - body));
    *done = true;
    if (avail >= 1 && body[0] != SD_TLS_HS_CLIENT_HELLO)
        return SD_ENOENT;
    if (len >= HS_HDR && avail < HS_HDR)
        return SD_EAGAIN; /* cannot tell yet whether the hello fits in this record */
    if (len >= HS_HDR) {
        uint32_t hs_len = sd_rd24be(body + 1);
        if (hs_len > HELLO_BODY_MAX) {
            h->hs_len = hs_len;
            return SD_EPROTO;
        }
        if ((size_t)hs_len + HS_HDR <= len) {
            h->hs_len = hs_len;
            h->facts |= SD_TLS_HS_IN_RECORD;
            if (avail < len)
                return SD_EAGAIN;
            int rc = walk_hello(body + HS_HDR, hs_len, h);
            if (rc != 0)
                return rc;
            h->records = 1;
            h->facts |= SD_TLS_FIRST_RECORD;
            return (int)(REC_HDR + len);
        }
    }
    *done = false;
    return 0;
}

int sd_tls_stream(const uint8_t *p, const uint8_t *end, uint8_t *scratch, size_t scratch_cap, struct sd_tls_hello *h)
{
    struct gather g = {.buf = scratch, .cap = scratch_cap};
    const uint8_t *q = p;
    memset(h, 0, sizeof(*h));
    for (unsigned rec = 0;; rec++) {
        int rc = stream_record_header(q, end, rec);
        if (rc != 0 && rc != SD_ENOENT)
            return rc;
        if (rec == 0) { /* the header is whole and well formed */
            h->record_version = sd_rd16be(q + 1);
            h->record_len = sd_rd16be(q + 3);
        }
        if (rc != 0)
            return rc;
        size_t len = sd_rd16be(q + 3);
        const uint8_t *body = q + REC_HDR;
        size_t avail = SD_MIN(len, (size_t)(end - body));
        if (rec == 0) {
            bool done;
            if (avail == len)
                h->facts |= SD_TLS_RECORD_IN_SEGMENT;
            rc = stream_first_record(q, end, h, &done);
            if (done)
                return rc;
        }
        rc = gather_add(&g, body, avail, h);
        if (rc != 0)
            return rc;
        if (avail < len)
            return SD_EAGAIN;
        q = body + len;
        if (g.need != 0 && g.have == g.need) {
            rc = walk_hello(g.buf + HS_HDR, h->hs_len, h);
            if (rc != 0)
                return rc;
            h->records = (uint8_t)SD_MIN(rec + 1, 255u);
            h->facts |= SD_TLS_FIRST_RECORD | (rec > 0 ? SD_TLS_MULTI_RECORD : 0);
            return (int)(q - p);
        }
    }
}
