/*
 * serve_req.c - the request line of `slowdown serve` (grammar in serve.h).
 *
 * The parser answers one question for the server's first read: is this the
 * start of a request, a complete request, or someone else's bytes? It has to
 * decide on the first byte that cannot start "GET ", "PUT " or "POST ", so a
 * raw or inverted ClientHello (first byte 0x16 or 0xe9) never waits for a
 * line end. Like picohttpparser it never copies and says how much it used:
 * bytes consumed, SD_EAGAIN (incomplete) or SD_EPROTO (not a request).
 */
#include <string.h>

#include "serve.h"

enum { LINE_MAX_BYTES = 512 };

struct span {
    const uint8_t *p, *end;
};

static const struct {
    const char *name;
    size_t len;
} methods[] = {{"GET ", 4}, {"PUT ", 4}, {"POST ", 5}};

/* Which method starts [p, end): its index, -1 if it may still become one, -2 if none can. */
static int match_method(const uint8_t *p, const uint8_t *end)
{
    size_t avail = (size_t)(end - p);
    bool maybe = false;

    for (size_t i = 0; i < SD_COUNTOF(methods); i++) {
        size_t k = SD_MIN(avail, methods[i].len);
        if (memcmp(p, methods[i].name, k) != 0)
            continue;
        if (avail >= methods[i].len)
            return (int)i;
        maybe = true;
    }
    return maybe ? -1 : -2;
}

static bool span_eq(struct span s, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(s.end - s.p) == n && memcmp(s.p, lit, n) == 0;
}

/* Decimal digits of [p, end) into |v| (at most |max|). 0 or SD_EPROTO. */
static int parse_u64(const uint8_t *p, const uint8_t *end, uint64_t max, uint64_t *v)
{
    uint64_t x = 0;

    if (p == end)
        return SD_EPROTO;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return SD_EPROTO;
        unsigned d = (unsigned)(*p - '0');
        if (x > (max - d) / 10)
            return SD_EPROTO;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

/* The query string after '?': bytes=N and seconds=S, others ignored. */
static int parse_query(struct span q, struct sd_serve_req *req)
{
    while (q.p < q.end) {
        const uint8_t *amp = memchr(q.p, '&', (size_t)(q.end - q.p));
        const uint8_t *pend = amp ? amp : q.end;
        const uint8_t *eq = memchr(q.p, '=', (size_t)(pend - q.p));
        if (eq) {
            struct span key = {q.p, eq};
            uint64_t v;
            if (span_eq(key, "bytes")) {
                if (parse_u64(eq + 1, pend, UINT64_MAX >> 1, &v) < 0)
                    return SD_EPROTO;
                req->bytes = v;
            } else if (span_eq(key, "seconds")) {
                if (parse_u64(eq + 1, pend, UINT32_MAX, &v) < 0)
                    return SD_EPROTO;
                req->seconds = (uint32_t)v;
            }
        }
        q.p = amp ? amp + 1 : q.end;
    }
    return 0;
}

/* Mode from method index and path, or -1. */
static int route(int method, struct span path)
{
    if (span_eq(path, "/echo"))
        return SD_SERVE_ECHO;
    if (method == 0 && (span_eq(path, "/down") || span_eq(path, "/")))
        return SD_SERVE_SEND;
    if (method != 0 && span_eq(path, "/up"))
        return SD_SERVE_SINK;
    return -1;
}

static bool ascii_prefix_nocase(const uint8_t *p, const uint8_t *end, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c + 32);
        if (c != (uint8_t)lit[i])
            return false;
    }
    return true;
}

/* HTTP header lines after the request line, through the blank line. Bytes used, EAGAIN or EPROTO. */
static int parse_header(const uint8_t *start, const uint8_t *p, const uint8_t *end, struct sd_serve_req *req)
{
    const uint8_t *limit = start + SD_MIN((size_t)(end - start), (size_t)SD_SERVE_REQ_MAX);

    for (;;) {
        const uint8_t *lf = p < limit ? memchr(p, '\n', (size_t)(limit - p)) : NULL;
        if (!lf)
            return (size_t)(end - start) >= SD_SERVE_REQ_MAX ? SD_EPROTO : SD_EAGAIN;
        const uint8_t *le = (lf > p && lf[-1] == '\r') ? lf - 1 : lf;
        if (le == p)
            return (int)(lf + 1 - start);
        if (req->mode == SD_SERVE_SINK && req->bytes == 0 && ascii_prefix_nocase(p, le, "content-length:")) {
            const uint8_t *v = p + 15;
            while (v < le && (*v == ' ' || *v == '\t'))
                v++;
            const uint8_t *ve = le;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            if (parse_u64(v, ve, UINT64_MAX >> 1, &req->bytes) < 0)
                return SD_EPROTO;
        }
        p = lf + 1;
    }
}

int sd_serve_parse_req(const uint8_t *p, const uint8_t *end, struct sd_serve_req *req)
{
    const uint8_t *start = p;
    int m;

    memset(req, 0, sizeof(*req));
    if (p >= end)
        return SD_EAGAIN;
    m = match_method(p, end);
    if (m < 0)
        return m == -1 ? SD_EAGAIN : SD_EPROTO;
    const uint8_t *scan_end = p + SD_MIN((size_t)(end - p), (size_t)LINE_MAX_BYTES);
    const uint8_t *lf = memchr(p, '\n', (size_t)(scan_end - p));
    if (!lf)
        return end - p >= LINE_MAX_BYTES ? SD_EPROTO : SD_EAGAIN;
    const uint8_t *le = (lf > p && lf[-1] == '\r') ? lf - 1 : lf;

    p += methods[m].len;
    const uint8_t *sp = memchr(p, ' ', (size_t)(le - p));
    struct span target = {p, sp ? sp : le};
    if (sp) {
        struct span ver = {sp + 1, le};
        if (!span_eq(ver, "HTTP/1.0") && !span_eq(ver, "HTTP/1.1"))
            return SD_EPROTO;
        req->http = true;
    }
    const uint8_t *qm = memchr(target.p, '?', (size_t)(target.end - target.p));
    struct span path = {target.p, qm ? qm : target.end};
    int mode = route(m, path);
    if (mode < 0)
        return SD_EPROTO;
    req->mode = (uint8_t)mode;
    if (qm && parse_query((struct span){qm + 1, target.end}, req) < 0)
        return SD_EPROTO;
    if (!req->http)
        return (int)(lf + 1 - start);
    return parse_header(start, lf + 1, end, req);
}

const char *sd_serve_mode_name(unsigned mode)
{
    static const char *const names[] = {"send", "sink", "echo"};
    return mode < SD_COUNTOF(names) ? names[mode] : "unknown";
}
