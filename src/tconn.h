/*
 * tconn.h - one non-blocking TCP connection, with or without TLS, behind the
 * same read/write calls. Shared by the measurement client (fetch.c) and the
 * measurement server (serve.c).
 *
 * Calls never block: they move bytes (> 0), or return 0 with |want| set to
 * the poll events to wait for, or a negative SD_TCONN_* code. The caller
 * owns the socket and the SSL object; tconn only drives them.
 */
#ifndef SD_TCONN_H
#define SD_TCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ssl_st SSL;

struct sd_tconn {
    int fd;
    SSL *ssl;     /* NULL for plain TCP */
    short want;   /* POLLIN or POLLOUT after a call returned 0 */
    int sys_err;  /* errno behind the last SD_TCONN_RST / SD_TCONN_ERR, or 0 */
};

enum {
    SD_TCONN_EOF = -1, /* orderly close (FIN, or TLS close_notify) */
    SD_TCONN_RST = -2, /* reset by the peer (ECONNRESET, EPIPE, ECONNREFUSED) */
    SD_TCONN_ERR = -3, /* any other failure (see sys_err, or the OpenSSL error queue) */
    SD_TCONN_TIMEOUT = -4, /* only from sd_tconn_handshake */
};

/* Reads up to |n| bytes. Bytes read, 0 (would block), or SD_TCONN_EOF/RST/ERR. */
int sd_tconn_read(struct sd_tconn *c, uint8_t *buf, size_t n);

/* Writes up to |n| bytes. Bytes written, 0 (would block), or SD_TCONN_RST/ERR. */
int sd_tconn_write(struct sd_tconn *c, const uint8_t *buf, size_t n);

/* Runs the TLS handshake (client or server side as set on c->ssl) until done
 * or |deadline| (CLOCK_MONOTONIC ns). 0, or SD_TCONN_EOF/RST/ERR/TIMEOUT. */
int sd_tconn_handshake(struct sd_tconn *c, uint64_t deadline);

/* Writes all |n| bytes before |deadline|. 0, or SD_TCONN_RST/ERR/TIMEOUT. */
int sd_tconn_write_all(struct sd_tconn *c, const uint8_t *buf, size_t n, uint64_t deadline);

/* Waits until |fd| is ready for |events| or |deadline| passes: 1 ready (or
 * poll failed: the next I/O call reports it), 0 timed out. */
int sd_tconn_wait(int fd, short events, uint64_t deadline);

/* Reads an HTTP request head from the non-blocking socket |fd|, through its
 * blank line, into |buf| (NUL-terminated) before |deadline|. Its length, or
 * -1: closed, timed out, or longer than |cap| - 1. (The small HTTP servers:
 * metrics, policy files.) */
ssize_t sd_tconn_read_head(int fd, char *buf, size_t cap, uint64_t deadline);

/* The path of a GET or HEAD request head |req| (what follows the method and
 * its space), with |head_only| set for HEAD; NULL for any other method. */
const char *sd_tconn_get_path(const char *req, bool *head_only);

/* Fills |ss| (and |len|) from a numeric IPv4 or IPv6 address and a port.
 * 0, or SD_EINVAL when |text| is neither. */
int sd_tconn_sockaddr(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* Returns "eof", "rst", "error", "timeout" for an SD_TCONN_* code. */
const char *sd_tconn_code_name(int code);

#endif
