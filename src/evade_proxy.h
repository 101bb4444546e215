/*
 * evade_proxy.h - the test fixtures the evasion harness places outside the
 * censor (the lab's server namespace): the UDP responder of the QUIC
 * strategies (strat_quic.c), and an unencrypted HTTP CONNECT and SOCKS5
 * proxy (strategies http-proxy and socks-proxy, spec B10) that
 * connects to its own host only: the target must be the address the client
 * reached the proxy on, or loopback. It is a test fixture placed outside
 * the censor (the lab's server namespace), never an open relay.
 *
 * Both protocols share one port: a first byte of 5 is SOCKS5, anything else
 * is read as an HTTP CONNECT request. The parsers are cursor functions over
 * untrusted bytes (fuzz/fuzz_proxy_req.c).
 */
#ifndef SD_EVADE_PROXY_H
#define SD_EVADE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum { SD_PROXY_REQ_MAX = 4096 };

struct sd_proxy_req {
    char host[256];   /* as written: numeric address, or a name (which the proxy refuses) */
    uint16_t port;
};

/*
 * Parses an HTTP CONNECT request head at [p, end): "CONNECT host:port
 * HTTP/1.x" CRLF, header lines, CRLF (host may be [v6]). Returns the bytes
 * of the head (through the blank line), SD_EAGAIN when incomplete (and
 * shorter than SD_PROXY_REQ_MAX), SD_EPROTO otherwise.
 */
int sd_proxy_parse_connect(const uint8_t *p, const uint8_t *end, struct sd_proxy_req *req);

/*
 * Parses a SOCKS5 greeting (5, n, n methods). Returns its length when it
 * offers method 0 (no authentication), SD_EAGAIN when incomplete,
 * SD_EPROTO when malformed or without method 0.
 */
int sd_proxy_parse_socks_greeting(const uint8_t *p, const uint8_t *end);

/*
 * Parses a SOCKS5 request (5, 1 = CONNECT, 0, address type 1/3/4, address,
 * port). Returns its length, SD_EAGAIN, SD_EPROTO (also for commands other
 * than CONNECT).
 */
int sd_proxy_parse_socks_request(const uint8_t *p, const uint8_t *end, struct sd_proxy_req *req);

struct sd_proxy;

/* Listens on |addr| (numeric; NULL: 0.0.0.0) port |port|. NULL with a
 * one-line reason in |err|. */
struct sd_proxy *sd_proxy_open(const char *addr, uint16_t port, char *err, size_t errlen);

/* The port it listens on (the one picked when port 0 was asked). */
uint16_t sd_proxy_port(const struct sd_proxy *p);

/* Serves (a thread per connection, at most 32) until |stop_fd| is
 * readable. 0 or SD_EIO. */
int sd_proxy_run(struct sd_proxy *p, int stop_fd);

/* Closes and frees, after waiting up to 2 s for connections. Accepts NULL. */
void sd_proxy_free(struct sd_proxy *p);

/* ---- the UDP responder of the QUIC strategies (strat_quic.c) ---- */

struct sd_quicbulk;

/* Binds UDP |addr| (IPv4; NULL: 0.0.0.0) |port|. NULL with |err|. */
struct sd_quicbulk *sd_quicbulk_open(const char *addr, uint16_t port, char *err, size_t errlen);

/* The port it is bound to. */
uint16_t sd_quicbulk_port(const struct sd_quicbulk *b);

/* Answers until |stop_fd| is readable: a long-header datagram starts a
 * session with its sender (up to 16 at once), a request datagram gets up to
 * 64 datagrams of 1200 bytes, anything else is ignored. 0 or SD_EIO. */
int sd_quicbulk_run(struct sd_quicbulk *b, int stop_fd);

/* Accepts NULL. */
void sd_quicbulk_free(struct sd_quicbulk *b);

/* ---- a fixture on a thread of its own, optionally in a lab's server namespace ---- */

struct sd_proxy_thread {
    struct sd_proxy *px;
    struct sd_quicbulk *qb;  /* the UDP responder instead (sd_quicbulk_thread_start) */
    int stop[2];            /* pipe: a byte on [1] stops the proxy */
    int ready[2];           /* pipe: the thread's start-up result */
    bool running;
    bool udp;               /* the UDP responder, not the proxy */
    const char *lab_id;
    const char *addr;
    uint16_t port;          /* as asked; once running, the port it listens on */
    char err[200];
    unsigned long thread;   /* pthread_t */
};

/*
 * Starts a proxy on |addr| (NULL: 0.0.0.0) |port| on a new thread, inside
 * the server namespace of lab |lab_id| (NULL: the caller's namespace), and
 * waits until it listens. 0, or SD_EIO / SD_ENOENT with t->err set.
 */
int sd_proxy_thread_start(struct sd_proxy_thread *t, const char *lab_id, const char *addr, uint16_t port);

/* The same for the UDP responder. */
int sd_quicbulk_thread_start(struct sd_proxy_thread *t, const char *lab_id, const char *addr, uint16_t port);

/* Stops the fixture and joins its thread. Does nothing when it is not running. */
void sd_proxy_thread_stop(struct sd_proxy_thread *t);

#endif
