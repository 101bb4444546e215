/*
 * serve.h - the measurement server behind `slowdown serve`: TLS (any SNI,
 * a certificate made up at start) and plain TCP listeners; per connection it
 * sends bulk data, sinks what the client sends, or echoes.
 *
 * The protocol (man/slowdown-serve.1) is one request line, optionally in
 * HTTP/1.x form so that curl and browsers work too:
 *
 *   GET /down[?bytes=N][&seconds=S]      the server sends N bytes (or until S s)
 *   PUT /up[?bytes=N][&seconds=S]        the server reads N bytes (or until EOF
 *   POST /up...                          or S s), then answers "OK <bytes>\n"
 *   POST /echo[?bytes=N][&seconds=S]     the server echoes
 *   GET / ...                            same as GET /down
 *
 * A connection whose first bytes are not a request (a raw or inverted
 * ClientHello, say), or that sends nothing for a moment, gets the server's
 * default mode. Every connection is bounded: bytes per request, seconds per
 * connection, and the number of connections at once, so the server is not an
 * amplifier: it only ever talks to a peer that completed a TCP handshake.
 */
#ifndef SD_SERVE_H
#define SD_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum sd_serve_mode { SD_SERVE_SEND = 0, SD_SERVE_SINK = 1, SD_SERVE_ECHO = 2 };

struct sd_serve_req {
    uint8_t mode;      /* enum sd_serve_mode */
    bool http;         /* the request line ended in HTTP/1.x: answer in HTTP */
    uint64_t bytes;    /* bytes=N, or an HTTP Content-Length for uploads; 0 when absent */
    uint32_t seconds;  /* seconds=S, 0 when absent */
};

enum { SD_SERVE_REQ_MAX = 4096 }; /* a request (with HTTP header) longer than this is not one */

/*
 * Parses the request at the start of [p, end) into |req|. Returns the bytes
 * it takes up (through the LF of the request line, or through the blank line
 * that ends an HTTP header), SD_EAGAIN when the bytes so far are the start of
 * a request that is not complete yet, or SD_EPROTO when they are not a
 * request (the connection then gets the default mode, and these bytes are
 * its first data). Unknown parameters and headers are ignored.
 */
int sd_serve_parse_req(const uint8_t *p, const uint8_t *end, struct sd_serve_req *req);

/* What one connection did, handed to on_conn when it closes. */
struct sd_serve_report {
    char peer[64];       /* "192.0.2.2:40000" or "[2001:db8:1::2]:40000" */
    bool tls;
    const char *sni;     /* TLS server_name or NULL */
    uint8_t mode;        /* enum sd_serve_mode in force */
    bool request;        /* a request line was seen */
    uint64_t bytes_in, bytes_out;  /* payload bytes */
    uint64_t duration_ns;
    const char *end;     /* "done", "eof", "rst", "timeout", "limit", "error", "stopped" */
};

struct sd_serve_config {
    const char *listen;        /* address to listen on; NULL: "::" (IPv6 and IPv4) */
    bool tls, plain;           /* which listeners to open (at least one) */
    uint16_t tls_port;         /* 0: any free port (see sd_serve_port) */
    uint16_t plain_port;
    uint8_t mode;              /* default mode (enum sd_serve_mode) */
    uint64_t max_bytes;        /* cap per request, each direction (0: 1 GiB) */
    uint32_t max_seconds;      /* cap per connection (0: 60) */
    uint32_t max_conns;        /* connections at once; more are closed at accept (0: 64) */
    uint32_t request_wait_ms;  /* wait for a request line this long, then use the default mode (0: 1000) */
    const char *hello_first;   /* plain connections: send a TLS ClientHello with this SNI first */
    /* Called from the connection's thread when it closes (may be NULL). */
    void (*on_conn)(void *arg, const struct sd_serve_report *r);
    void *arg;
};

struct sd_serve;

/*
 * Makes the certificate and binds the listeners. On failure returns NULL
 * and writes one line into |err|: address in use, bad address, OpenSSL.
 */
struct sd_serve *sd_serve_open(const struct sd_serve_config *cfg, char *err, size_t errlen);

/*
 * Accepts and serves connections (one thread each) until |stop_fd| becomes
 * readable, then stops accepting, tells the connections to finish and waits
 * up to 2 s for them. Returns 0, or SD_EIO if poll fails for good. The
 * process must ignore SIGPIPE (OpenSSL writes with write(2)).
 */
int sd_serve_run(struct sd_serve *s, int stop_fd);

/* The port a listener is bound to (useful with port 0): tls or plain. 0 when none. */
uint16_t sd_serve_port(const struct sd_serve *s, bool tls);

/* Closes the listeners and frees; waits for connection threads. Accepts NULL. */
void sd_serve_free(struct sd_serve *s);

const char *sd_serve_mode_name(unsigned mode); /* "send", "sink", "echo" */

#endif
