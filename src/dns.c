/*
 * dns.c - the first question of a DNS query (RFC 1035 4.1), over UDP or TCP.
 *
 *   header   ID(2) FLAGS(2) QDCOUNT(2) ANCOUNT(2) NSCOUNT(2) ARCOUNT(2)
 *   question QNAME QTYPE(2) QCLASS(2)
 *   QNAME    a sequence of labels <len 1..63><bytes>, ended by a zero byte
 *            or by a compression pointer 11xxxxxx xxxxxxxx (RFC 1035 4.1.4)
 *
 * The name is decoded to dotted text in the caller's struct: label bytes
 * that are printable ASCII are copied as sent (case kept); any other byte,
 * and also '.' and '\' (which would otherwise make "a.b" as one label look
 * like two labels to a name matcher), is written as a \DDD decimal escape.
 * A decoded name longer than SD_DNS_NAME_MAX characters is rejected.
 *
 * Compression pointers are followed only backwards: the target lies past the
 * header and before the pointer, and everything read from there on must lie
 * before the pointer too (a name may not run into or past its own pointer).
 * Each jump thus shrinks the readable region, which rules out loops; the
 * DNS_MAX_HOPS bound and the 255-byte wire bound stand behind that. It also
 * means every byte the name uses lies before the question's end, so the
 * count returned covers all the bytes read.
 * Truncation anywhere gives SD_EAGAIN; every other check fails only on bytes
 * already present, so a prefix of a message yields SD_EAGAIN or the answer
 * the whole message gives.
 */
#include <string.h>

#include "bytes.h"
#include "dns.h"

enum {
    DNS_HDR = 12,
    DNS_MAX_HOPS = 16,
    DNS_WIRE_MAX = 255, /* RFC 1035 3.1: a name's wire form, length bytes included */
    DNS_LABEL_MAX = 63,
};

/* Appends one label to q->name in escaped text form. 0 or SD_EPROTO (too long). */
static int append_label(struct sd_dns_query *q, const uint8_t *l, size_t n)
{
    size_t o = q->name_len;
    if (o > 0) {
        if (o >= SD_DNS_NAME_MAX)
            return SD_EPROTO;
        q->name[o++] = '.';
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = l[i];
        if (c > 0x20 && c < 0x7f && c != '.' && c != '\\') {
            if (o >= SD_DNS_NAME_MAX)
                return SD_EPROTO;
            q->name[o++] = (char)c;
            continue;
        }
        if (SD_DNS_NAME_MAX - o < 4)
            return SD_EPROTO;
        q->name[o++] = '\\';
        q->name[o++] = (char)('0' + c / 100);
        q->name[o++] = (char)('0' + c / 10 % 10);
        q->name[o++] = (char)('0' + c % 10);
    }
    q->name_len = o;
    q->name[o] = '\0';
    return 0;
}

/*
 * Decodes the name at offset |off| of the message |msg|..|end|. Stores in
 * *after the offset just past the name as it sits at |off| (past the first
 * pointer, if any). 0, SD_EAGAIN or SD_EPROTO.
 */
static int read_name(const uint8_t *msg, const uint8_t *end, size_t off, struct sd_dns_query *q, size_t *after)
{
    /* |lim| bounds the bytes the name may use: the message, and after a jump
     * only the bytes before that pointer. A shortfall before any jump means
     * "cut short"; after one it means the name runs into its own pointer. */
    size_t lim = (size_t)(end - msg), pos = off, wire = 1;
    bool jumped = false;
    int hops = 0;
    for (;;) {
        if (pos >= lim)
            return jumped ? SD_EPROTO : SD_EAGAIN;
        uint8_t l = msg[pos];
        if (l == 0)
            break;
        if ((l & 0xc0) == 0xc0) {
            if (lim - pos < 2)
                return jumped ? SD_EPROTO : SD_EAGAIN;
            size_t target = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
            if (target >= pos || target < DNS_HDR || ++hops > DNS_MAX_HOPS)
                return SD_EPROTO;
            if (!jumped)
                *after = pos + 2;
            jumped = true;
            lim = pos;
            pos = target;
            continue;
        }
        if (l > DNS_LABEL_MAX)
            return SD_EPROTO; /* 01 and 10 prefixes: extended label types (RFC 6891) */
        wire += 1 + (size_t)l;
        if (wire > DNS_WIRE_MAX)
            return SD_EPROTO;
        if (lim - pos - 1 < l)
            return jumped ? SD_EPROTO : SD_EAGAIN;
        if (append_label(q, msg + pos + 1, l) != 0)
            return SD_EPROTO;
        pos += 1 + (size_t)l;
    }
    if (!jumped)
        *after = pos + 1;
    return 0;
}

int sd_dns_parse_query(const uint8_t *p, const uint8_t *end, struct sd_dns_query *q)
{
    size_t n = (size_t)(end - p), after = 0;
    memset(q, 0, sizeof(*q));
    if (n >= 3 && (p[2] & 0x80))
        return SD_EPROTO; /* a response */
    if (n >= 6 && sd_rd16be(p + 4) == 0)
        return SD_EPROTO; /* no question */
    if (n < DNS_HDR)
        return SD_EAGAIN;
    q->id = sd_rd16be(p);
    q->flags = sd_rd16be(p + 2);
    int rc = read_name(p, end, DNS_HDR, q, &after);
    if (rc != 0)
        return rc;
    if (n - after < 4)
        return SD_EAGAIN;
    q->qtype = sd_rd16be(p + after);
    q->qclass = sd_rd16be(p + after + 2);
    return (int)(after + 4);
}

int sd_dns_parse_query_tcp(const uint8_t *p, const uint8_t *end, struct sd_dns_query *q)
{
    memset(q, 0, sizeof(*q));
    if (end - p < 2)
        return SD_EAGAIN;
    size_t mlen = sd_rd16be(p);
    if (mlen < DNS_HDR)
        return SD_EPROTO;
    const uint8_t *m = p + 2;
    bool whole = (size_t)(end - m) >= mlen;
    int rc = sd_dns_parse_query(m, whole ? m + mlen : end, q);
    if (rc == SD_EAGAIN && whole)
        return SD_EPROTO; /* the question runs past the message's own length */
    return rc < 0 ? rc : rc + 2;
}
