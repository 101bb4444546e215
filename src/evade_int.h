/*
 * evade_int.h - what evade.c and the strategy files (strat_tcp.c,
 * strat_tls.c, strat_forge.c) share about one run. Not for other callers.
 */
#ifndef SD_EVADE_INT_H
#define SD_EVADE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evade.h"

struct ssl_st;
struct ssl_ctx_st;
struct sd__forge;

enum { SD__EVADE_FLIGHT_MAX = 20000 }; /* a first flight with 16 KB of padding, and headroom */

/* One run: the strategy, the target, the result being filled, the socket. */
struct sd__evade_run {
    const struct sd_evade_spec *spec;
    const struct sd_evade_target *t;
    struct sd_evade_result *r;
    int fd;                      /* the connection, once made */
    uint16_t sport;              /* its source port */
    char sni[SD_EVADE_NAME_MAX + 2]; /* the name sent ("" for none) */
    struct sd__forge *forge;     /* forging strategies: the client queue, else NULL */
    void *bio_meth;              /* the filter BIO's method (BIO_METHOD), freed after the run */
    bool first_done;             /* the first flight went out */
    bool read_seen;              /* the server has answered */
    bool idle_done;
    uint8_t buf[SD__EVADE_FLIGHT_MAX + 64]; /* rewritten first flight */
};

/* ---- strat_tcp.c ---- */

/* Writes all |n| bytes (send flags |flags|) before |deadline|. 0, or
 * SD_EIO / SD_EAGAIN (timed out) with errno kept. */
int sd__evade_send_all(int fd, const uint8_t *p, size_t n, int flags, uint64_t deadline);

/* Waits until the kernel has sent every byte written (SIOCOUTQNSD is 0),
 * so that the next write starts a segment of its own. 0 or SD_EAGAIN. */
int sd__evade_wait_sent(int fd, uint64_t deadline);

/* The first flight as TCP segments cut at the spec's positions. */
int sd__evade_split(struct sd__evade_run *x, const uint8_t *p, size_t n, uint64_t deadline);

/* The first flight with an urgent byte inserted at the spec's position. */
int sd__evade_oob(struct sd__evade_run *x, const uint8_t *p, size_t n, uint64_t deadline);

/* fetch hook: socket options before connect (MSS). */
int sd__evade_socket_hook(void *arg, int fd, char *detail, size_t len);

/* fetch hook: the proxy exchange (HTTP CONNECT or SOCKS5) after connect. */
int sd__evade_proxy_hook(void *arg, int fd, uint64_t deadline, char *detail, size_t len);

/* ---- strat_tls.c ---- */

/* fetch hook: registers the padding extension on the context. */
int sd__evade_tls_ctx_hook(void *arg, struct ssl_ctx_st *ctx, char *detail, size_t len);

/* fetch hook: puts the strategy's filter BIO under OpenSSL's writes. */
int sd__evade_tls_ssl_hook(void *arg, struct ssl_st *ssl, int fd, char *detail, size_t len);

/* ---- strat_quic.c ---- */

/* The whole run of a QUIC strategy (no fetch: UDP). 0 when it ran (x->r),
 * or SD_EPERM / SD_ENOTSUP / SD_EINVAL / SD_EIO / SD_ENOMEM (x->r->note). */
int sd__evade_quic(struct sd__evade_run *x);

/* ---- strat_forge.c ---- */

/* Opens the client queue and raw socket and installs the queue rule for
 * the connection from |x->sport| to the target. 0, SD_EPERM, SD_EIO,
 * SD_ENOTSUP (IPv6); reason in x->r->note. */
int sd__forge_open(struct sd__evade_run *x);

/* Sends the first flight |p| through the socket, takes its segment from the
 * queue and does the spec's forgery around it. 0 or a negative SD_E*
 * (x->r->note says why). */
int sd__forge_first(struct sd__evade_run *x, const uint8_t *p, size_t n, uint64_t deadline);

/* Removes the rule, closes the queue and the raw socket. Accepts NULL. */
void sd__forge_close(struct sd__forge *f);

/* Sets x->r->note (printf-style), keeping the first note written. */
void sd__evade_note(struct sd__evade_run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
