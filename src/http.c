/*
 * http.c - HTTP/1.x request heads and SOCKS greetings, read for the name a
 * censor matches on.
 *
 * The request parser follows picohttpparser's shape: one forward pass over
 * (p, end), results as views into the input, and three outcomes (bytes
 * consumed, SD_EAGAIN, SD_EPROTO). Every check fails only on bytes already
 * present; running out of bytes anywhere gives SD_EAGAIN. So a prefix of a
 * request yields SD_EAGAIN or the answer the whole request gives, and the
 * name is reported as soon as the line carrying it is complete:
 *
 *   METHOD SP target SP "HTTP/1." digit (CRLF | LF)   known methods only
 *   (name ":" OWS value OWS (CRLF | LF)){0,64}         no obs-fold, no bare CR
 *   (CRLF | LF)
 *
 * The host comes from, in order of precedence: the CONNECT target
 * (authority-form host:port), the first Host header, the authority of an
 * absolute-form target ("http://host:port/..."). Ports are stripped; an IPv6
 * literal "[::1]:80" yields the text between the brackets.
 *
 * SOCKS messages are recognised only when the input is exactly one message,
 * as a client's first packet is.
 */
#include <limits.h>
#include <string.h>

#include "bytes.h"
#include "http.h"

enum { HTTP_MAX_HEADERS = 64, METHOD_MAX = 7, SOCKS_NAME_MAX = 255 };

static const struct {
    char s[METHOD_MAX + 1];
    uint8_t n;
} methods[] = {
    {"GET", 3}, {"HEAD", 4}, {"POST", 4}, {"PUT", 3}, {"DELETE", 6}, {"OPTIONS", 7}, {"TRACE", 5}, {"CONNECT", 7}, {"PATCH", 5},
};

/* RFC 9110 tchar: the bytes of a header field name. */
static bool is_tchar(uint8_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Bytes allowed in a request-target: visible ASCII and obs-text. */
static bool is_target_char(uint8_t c)
{
    return (c > 0x20 && c < 0x7f) || c >= 0x80;
}

/* Bytes allowed in a field value: HTAB, SP, visible ASCII, obs-text. */
static bool is_value_char(uint8_t c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_alpha(uint8_t c)
{
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/*
 * Matches a known method followed by a space at |p|. Returns the method
 * length, 0 when the bytes there cannot start one, or SD_EAGAIN when they are
 * a proper prefix of "METHOD ".
 */
static int match_method(const uint8_t *p, const uint8_t *end)
{
    size_t avail = (size_t)(end - p);
    bool prefix = false;
    for (size_t i = 0; i < SD_COUNTOF(methods); i++) {
        size_t n = methods[i].n;
        size_t cmp = SD_MIN(avail, n);
        if (memcmp(p, methods[i].s, cmp) != 0)
            continue;
        if (avail <= n) {
            prefix = true;
            continue;
        }
        if (p[n] == ' ')
            return (int)n;
    }
    return prefix ? SD_EAGAIN : 0;
}

bool sd_http_looks_like_request(const uint8_t *p, const uint8_t *end)
{
    return match_method(p, end) > 0;
}

/* Parses decimal |p|..|end| (0-5 digits, <= 65535) into *port; empty is 0. */
static int parse_port(const uint8_t *p, const uint8_t *end, uint16_t *port)
{
    uint32_t v = 0;
    if (end - p > 5)
        return SD_EPROTO;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return SD_EPROTO;
        v = v * 10 + (uint32_t)(*p - '0');
    }
    if (v > 0xffff)
        return SD_EPROTO;
    *port = (uint16_t)v;
    return 0;
}

/*
 * Splits an authority "host[:port]" or "[v6]:port" at |p|..|end| into a host
 * view and a port. |need_port| demands a non-empty port (CONNECT). 0 or
 * SD_EPROTO (empty host, bad port, stray bracket).
 */
static int parse_authority(const uint8_t *p, const uint8_t *end, bool need_port, struct sd_iov *host, uint16_t *port)
{
    const uint8_t *hs = p, *he, *colon;
    if (p < end && *p == '[') {
        const uint8_t *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return SD_EPROTO;
        hs = p + 1;
        he = rb;
        colon = rb + 1;
        if (colon != end && *colon != ':')
            return SD_EPROTO;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        he = colon ? colon : end;
        colon = he;
    }
    if (he == hs)
        return SD_EPROTO;
    *port = 0;
    if (colon != end && parse_port(colon + 1, end, port) != 0)
        return SD_EPROTO;
    if (need_port && (colon == end || colon + 1 == end))
        return SD_EPROTO;
    host->p = hs;
    host->n = (size_t)(he - hs);
    return 0;
}

/* The authority of an absolute-form target "scheme://[userinfo@]authority[/?#...]",
 * or 0 with host->p NULL when |t| is not in absolute form. */
static int parse_absolute(struct sd_iov t, struct sd_http_req *req)
{
    const uint8_t *p = t.p, *end = t.p + t.n;
    if (p == end || !is_alpha(*p))
        return 0;
    while (p < end && (is_alpha(*p) || (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.'))
        p++;
    if (end - p < 3 || memcmp(p, "://", 3) != 0)
        return 0;
    p += 3;
    const uint8_t *a = p;
    while (p < end && *p != '/' && *p != '?' && *p != '#')
        p++;
    for (const uint8_t *q = p; q > a; q--) {
        if (q[-1] == '@') {
            a = q;
            break;
        }
    }
    req->is_proxy_form = true;
    return parse_authority(a, p, false, &req->host, &req->port);
}

/*
 * Request line. Returns the bytes through its line end, SD_EAGAIN or
 * SD_EPROTO. Fills method, target, minor_version, and for CONNECT and
 * absolute-form targets the host.
 */
static int parse_request_line(const uint8_t *p, const uint8_t *end, struct sd_http_req *req)
{
    static const char ver[] = "HTTP/1.";
    const uint8_t *start = p;
    int m = match_method(p, end);
    if (m <= 0)
        return m == 0 ? SD_EPROTO : SD_EAGAIN;
    req->method.p = p;
    req->method.n = (size_t)m;
    req->is_connect = m == 7 && memcmp(p, "CONNECT", 7) == 0;
    p += m + 1;
    const uint8_t *t = p;
    while (p < end && is_target_char(*p))
        p++;
    if (p == end)
        return SD_EAGAIN;
    if (*p != ' ' || p == t)
        return SD_EPROTO;
    req->target.p = t;
    req->target.n = (size_t)(p - t);
    p++;
    for (size_t i = 0; i < sizeof(ver) - 1; i++, p++) {
        if (p == end)
            return SD_EAGAIN;
        if (*p != (uint8_t)ver[i])
            return SD_EPROTO;
    }
    if (p == end)
        return SD_EAGAIN;
    if (*p != '0' && *p != '1')
        return SD_EPROTO;
    req->minor_version = (uint8_t)(*p++ - '0');
    if (p < end && *p == '\r')
        p++;
    if (p == end)
        return SD_EAGAIN;
    if (*p++ != '\n')
        return SD_EPROTO;
    int rc =
        req->is_connect ? parse_authority(t, t + req->target.n, true, &req->host, &req->port) : parse_absolute(req->target, req);
    return rc != 0 ? rc : (int)(p - start);
}

/*
 * One header line at |p| (not the empty line). Returns its length through
 * the line end, SD_EAGAIN or SD_EPROTO. Views of the name and of the value
 * (without surrounding OWS) go to |name| and |value|.
 */
static int parse_header_line(const uint8_t *p, const uint8_t *end, struct sd_iov *name, struct sd_iov *value)
{
    const uint8_t *start = p;
    while (p < end && is_tchar(*p))
        p++;
    if (p == end)
        return SD_EAGAIN;
    if (*p != ':' || p == start)
        return SD_EPROTO; /* also an obs-fold line, which starts with SP or HTAB */
    name->p = start;
    name->n = (size_t)(p - start);
    p++;
    while (p < end && is_ows(*p))
        p++;
    const uint8_t *v = p, *ve = p;
    while (p < end && is_value_char(*p)) {
        if (!is_ows(*p))
            ve = p + 1;
        p++;
    }
    value->p = v;
    value->n = (size_t)(ve - v);
    if (p < end && *p == '\r')
        p++;
    if (p == end)
        return SD_EAGAIN;
    if (*p != '\n')
        return SD_EPROTO; /* a control byte in the value, or a bare CR */
    return (int)(p + 1 - start);
}

static bool is_host(struct sd_iov name)
{
    static const char h[] = "host";
    if (name.n != 4)
        return false;
    for (size_t i = 0; i < 4; i++) {
        if ((name.p[i] | 0x20) != h[i])
            return false;
    }
    return true;
}

int sd_http_parse_request(const uint8_t *p, const uint8_t *end, struct sd_http_req *req)
{
    const uint8_t *start = p;
    bool host_seen = false;
    memset(req, 0, sizeof(*req));
    if (end - p > INT_MAX)
        end = p + INT_MAX; /* the byte count must fit the return value */
    int rc = parse_request_line(p, end, req);
    if (rc < 0)
        return rc;
    p += rc;
    for (int lines = 0;; lines++) {
        struct sd_iov name, value;
        const uint8_t *q = p;
        if (q < end && *q == '\r')
            q++;
        if (q == end)
            return SD_EAGAIN;
        if (*q == '\n')
            return (int)(q + 1 - start); /* the empty line */
        if (q != p || lines == HTTP_MAX_HEADERS)
            return SD_EPROTO; /* a bare CR, or a 65th header line */
        rc = parse_header_line(p, end, &name, &value);
        if (rc < 0)
            return rc;
        p += rc;
        if (!host_seen && is_host(name)) {
            host_seen = true;
            if (value.n > 0 && !req->is_connect && parse_authority(value.p, value.p + value.n, false, &req->host, &req->port) != 0)
                return SD_EPROTO;
        }
    }
}

/* ---- SOCKS ---- */

/* A NUL-terminated string at |p| of at most |max| bytes before the NUL.
 * Returns a pointer past the NUL, or NULL. */
static const uint8_t *socks_cstr(const uint8_t *p, const uint8_t *end, size_t max)
{
    size_t n = SD_MIN((size_t)(end - p), max + 1);
    const uint8_t *nul = memchr(p, 0, n);
    return nul ? nul + 1 : NULL;
}

/* SOCKS4: VN=4 CD=1|2 DSTPORT(2) DSTIP(4) USERID NUL [DOMAIN NUL when DSTIP is 0.0.0.x, x != 0]. */
static enum sd_socks_kind socks4(const uint8_t *p, const uint8_t *end, struct sd_iov *host)
{
    if (end - p < 9 || (p[1] != 1 && p[1] != 2))
        return SD_SOCKS_NONE;
    bool is4a = p[4] == 0 && p[5] == 0 && p[6] == 0 && p[7] != 0;
    const uint8_t *q = socks_cstr(p + 8, end, SOCKS_NAME_MAX);
    if (q == NULL)
        return SD_SOCKS_NONE;
    if (!is4a)
        return q == end ? SD_SOCKS4 : SD_SOCKS_NONE;
    const uint8_t *d = q;
    q = socks_cstr(d, end, SOCKS_NAME_MAX);
    if (q == NULL || q != end || q - 1 == d)
        return SD_SOCKS_NONE;
    host->p = d;
    host->n = (size_t)(q - 1 - d);
    return SD_SOCKS4;
}

/* SOCKS5 greeting VER=5 NMETHODS METHODS, or request VER=5 CMD RSV=0 ATYP=3 LEN DOMAIN PORT(2). */
static enum sd_socks_kind socks5(const uint8_t *p, const uint8_t *end, struct sd_iov *host)
{
    size_t n = (size_t)(end - p);
    if (n >= 2 && p[1] >= 1 && n == 2 + (size_t)p[1])
        return SD_SOCKS5;
    if (n < 7 || p[1] < 1 || p[1] > 3 || p[2] != 0 || p[3] != 3 || p[4] == 0 || n != 5 + (size_t)p[4] + 2)
        return SD_SOCKS_NONE;
    host->p = p + 5;
    host->n = p[4];
    return SD_SOCKS5;
}

enum sd_socks_kind sd_socks_parse(const uint8_t *p, const uint8_t *end, struct sd_iov *host)
{
    host->p = NULL;
    host->n = 0;
    if (p == end)
        return SD_SOCKS_NONE;
    if (p[0] == 4)
        return socks4(p, end, host);
    if (p[0] == 5)
        return socks5(p, end, host);
    return SD_SOCKS_NONE;
}
