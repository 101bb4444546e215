/*
 * http.h - just enough of HTTP/1.x requests and proxy greetings to find the
 * name a censor matches on: the Host header, the CONNECT target, and the
 * SOCKS4/4a/5 greetings a TSPU box recognises (spec B6, B10).
 */
#ifndef SD_HTTP_H
#define SD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_http_req {
    struct sd_iov method;   /* e.g. "GET" */
    struct sd_iov target;   /* request-target as sent */
    struct sd_iov host;     /* Host header value without port and surrounding spaces, or the
                               CONNECT target's host; p NULL when absent */
    uint16_t port;          /* port from Host/CONNECT target, 0 when none */
    bool is_connect;        /* CONNECT method (an HTTP proxy request) */
    bool is_proxy_form;     /* absolute-form target "http://host/..." (an HTTP proxy request) */
    uint8_t minor_version;  /* HTTP/1.x */
};

/*
 * Parses the request line and headers of an HTTP/1.0 or 1.1 request at
 * |p|..|end|. Known methods only (GET HEAD POST PUT DELETE OPTIONS TRACE
 * CONNECT PATCH). Returns bytes consumed through the empty line (> 0);
 * SD_EAGAIN when the header block is incomplete but valid so far (a name can
 * still be reported: |req->host| is filled if the Host line is complete);
 * SD_EPROTO when it is not an HTTP request. Header lines are capped at 64.
 */
int sd_http_parse_request(const uint8_t *p, const uint8_t *end, struct sd_http_req *req);

/* True when |p|..|end| starts with a known method followed by a space (the
 * cheap test the engine uses to classify a first packet). */
bool sd_http_looks_like_request(const uint8_t *p, const uint8_t *end);

enum sd_socks_kind { SD_SOCKS_NONE = 0, SD_SOCKS4 = 4, SD_SOCKS5 = 5 };

/* Recognises a SOCKS4/4a CONNECT or a SOCKS5 greeting (or a SOCKS5 request
 * with a domain name). Fills |host| with the domain of SOCKS4a/5 requests
 * when present (p NULL otherwise). Returns the kind, SD_SOCKS_NONE if not SOCKS. */
enum sd_socks_kind sd_socks_parse(const uint8_t *p, const uint8_t *end, struct sd_iov *host);

#endif
