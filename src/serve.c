/*
 * serve.c - the measurement server (see serve.h for the protocol).
 *
 *   main thread: poll(TLS listener, plain listener, stop fd) -> accept
 *                -> refuse when max_conns are open, else one detached thread
 *   conn thread: [TLS handshake | ClientHello first] -> first read (request
 *                line, or an inverted ClientHello and request (replay.h),
 *                or someone else's bytes, or nothing for a moment)
 *                -> send / sink / echo, each bounded in bytes and time
 *
 * A thread per connection keeps every phase a straight line of code; the
 * cap on connections bounds the threads. Sockets are non-blocking and every
 * wait is a poll() of at most 200 ms, so a stop request reaches each
 * connection quickly. The certificate is made at start in memory (EC P-256,
 * self-signed, 30 days) and never written anywhere; OpenSSL accepts any SNI
 * by default, which is what a test server for arbitrary names needs.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fetch.h"
#include "mono.h"
#include "replay.h"
#include "serve.h"
#include "tconn.h"

enum {
    CHUNK = 16 * 1024,
    HELLO_MAX = 2048,
    SLICE_MS = 200,        /* longest single wait: how fast a stop is seen */
    HANDSHAKE_S = 10,
    DRAIN_MS = 1000,       /* after the last byte, read what the peer still sends */
};

struct sd_serve {
    struct sd_serve_config cfg;
    SSL_CTX *ctx;
    int lfd[2];            /* [0] TLS, [1] plain; -1 when not listening */
    uint16_t port[2];
    uint8_t hello[HELLO_MAX];
    size_t hello_len;
    atomic_uint active;
    atomic_bool stopping;
};

struct conn {
    struct sd_serve *s;
    struct sd_tconn c;
    bool tls;
    struct sockaddr_storage peer;
    uint64_t t0, deadline;
    struct sd_serve_report rep;
    uint8_t buf[CHUNK];
};

/* ---- start-up: certificate, listeners ---- */

static SSL_CTX *make_ctx(char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = NULL;
    uint64_t serial = 0;

    if (!key || !x)
        goto out;
    RAND_bytes((unsigned char *)&serial, sizeof(serial));
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"slowdown serve", -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (!X509_sign(x, key, EVP_sha256()))
        goto out;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        SSL_CTX_free(ctx);
        ctx = NULL;
        goto out;
    }
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_num_tickets(ctx, 0); /* no session tickets: fewer packets to look at */
out:
    if (!ctx)
        snprintf(err, errlen, "cannot make the TLS certificate: %s", ERR_reason_error_string(ERR_get_error()));
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

static int listen_on(const char *addr, uint16_t port, uint16_t *bound, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int one = 1, zero = 0;

    if (sd_tconn_sockaddr(addr, port, &ss, &len) < 0) {
        snprintf(err, errlen, "bad listen address '%s'", addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6) /* "::" serves IPv4 too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 256) < 0) {
        snprintf(err, errlen, "cannot listen on %s port %u: %s", addr, port, strerror(errno));
        close(fd);
        return -1;
    }
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
    return fd;
}

struct sd_serve *sd_serve_open(const struct sd_serve_config *cfg, char *err, size_t errlen)
{
    struct sd_serve *s = calloc(1, sizeof(*s));
    const char *addr = cfg->listen ? cfg->listen : "::";

    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->lfd[0] = s->lfd[1] = -1;
    if (!s->cfg.max_bytes)
        s->cfg.max_bytes = 1ull << 30;
    if (!s->cfg.max_seconds)
        s->cfg.max_seconds = 60;
    if (!s->cfg.max_conns)
        s->cfg.max_conns = 64;
    if (!s->cfg.request_wait_ms)
        s->cfg.request_wait_ms = 1000;
    if (!cfg->tls && !cfg->plain) {
        snprintf(err, errlen, "no port to listen on");
        goto fail;
    }
    if (cfg->hello_first) {
        int n = sd_fetch_client_hello(cfg->hello_first, s->hello, sizeof(s->hello));
        if (n < 0) {
            snprintf(err, errlen, "cannot make a ClientHello for '%s'", cfg->hello_first);
            goto fail;
        }
        s->hello_len = (size_t)n;
    }
    if (cfg->tls && !(s->ctx = make_ctx(err, errlen)))
        goto fail;
    /* The default "::" falls back to IPv4 only on a host without IPv6. */
    if (!cfg->listen && (cfg->tls || cfg->plain)) {
        int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0 && errno == EAFNOSUPPORT)
            addr = "0.0.0.0";
        if (probe >= 0)
            close(probe);
    }
    if (cfg->tls && (s->lfd[0] = listen_on(addr, cfg->tls_port, &s->port[0], err, errlen)) < 0)
        goto fail;
    if (cfg->plain && (s->lfd[1] = listen_on(addr, cfg->plain_port, &s->port[1], err, errlen)) < 0)
        goto fail;
    return s;
fail:
    sd_serve_free(s);
    return NULL;
}

uint16_t sd_serve_port(const struct sd_serve *s, bool tls)
{
    return s->port[tls ? 0 : 1];
}

/* ---- one connection ---- */

static bool stopping(const struct conn *cn)
{
    return atomic_load_explicit(&cn->s->stopping, memory_order_relaxed);
}

/* Waits for |events| up to one slice, or less before |deadline|. Returns
 * false when the deadline passed or the server is stopping. */
static bool wait_slice(struct conn *cn, short events, uint64_t deadline)
{
    uint64_t now = sd_mono_ns();

    if (now >= deadline || stopping(cn))
        return false;
    sd_tconn_wait(cn->c.fd, events, SD_MIN(deadline, now + SLICE_MS * (uint64_t)SD_NS_PER_MS));
    return true;
}

static void set_end(struct conn *cn, int code)
{
    cn->rep.end = sd_tconn_code_name(code);
}

static void set_time_end(struct conn *cn)
{
    cn->rep.end = stopping(cn) ? "stopped" : "timeout";
}

/*
 * First read: a request line, someone else's bytes, or nothing for a while.
 * Returns the number of leftover bytes in cn->buf (client data that followed
 * the request, or all of an opaque first payload), or -1 when the
 * connection ended.
 */
static int read_request(struct conn *cn, struct sd_serve_req *req)
{
    const struct sd_serve_config *cfg = &cn->s->cfg;
    uint64_t until = SD_MIN(cn->deadline, sd_mono_ns() + cfg->request_wait_ms * (uint64_t)SD_NS_PER_MS);
    size_t have = 0;

    memset(req, 0, sizeof(*req));
    req->mode = cfg->mode;
    for (;;) {
        int n = sd_tconn_read(&cn->c, cn->buf + have, SD_SERVE_REQ_MAX - have);
        if (n < 0) {
            set_end(cn, n);
            return -1;
        }
        if (n > 0) {
            struct sd_serve_req r;
            have += (size_t)n;
            int rc = sd_serve_parse_req(cn->buf, cn->buf + have, &r);
            if (rc == SD_EPROTO && !cn->tls)
                rc = sd_replay_parse(cn->buf, cn->buf + have, &r); /* the detector's inverted control */
            if (rc > 0) {
                *req = r;
                cn->rep.request = true;
                memmove(cn->buf, cn->buf + rc, have - (size_t)rc);
                return (int)(have - (size_t)rc);
            }
            if (rc == SD_EPROTO || have == SD_SERVE_REQ_MAX)
                return (int)have;
            continue;
        }
        if (!wait_slice(cn, cn->c.want, until)) {
            if (stopping(cn) || sd_mono_ns() >= cn->deadline) {
                set_time_end(cn);
                return -1;
            }
            return (int)have; /* no request: default mode */
        }
    }
}

static void do_send(struct conn *cn, const struct sd_serve_req *req, uint64_t limit, uint64_t deadline)
{
    uint64_t sent = 0;

    if (req->http) {
        char hdr[160];
        int n = snprintf(hdr, sizeof(hdr),
                         "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                         "Content-Length: %llu\r\nConnection: close\r\n\r\n",
                         (unsigned long long)limit);
        int x = sd_tconn_write_all(&cn->c, (const uint8_t *)hdr, (size_t)n, deadline);
        if (x < 0) {
            set_end(cn, x);
            return;
        }
    }
    memset(cn->buf, 'd', sizeof(cn->buf));
    while (sent < limit) {
        int w = sd_tconn_write(&cn->c, cn->buf, (size_t)SD_MIN(limit - sent, (uint64_t)sizeof(cn->buf)));
        if (w < 0) {
            set_end(cn, w);
            break;
        }
        sent += (uint64_t)w;
        cn->rep.bytes_out = sent;
        if (w > 0 && sd_mono_ns() < deadline && !stopping(cn))
            continue;
        if (w == 0 && wait_slice(cn, cn->c.want, deadline))
            continue;
        if (sent < limit)
            set_time_end(cn);
        if (sent < limit && req->seconds && !stopping(cn))
            cn->rep.end = "done"; /* the client asked for S seconds: they are over */
        break;
    }
    if (sent >= limit)
        cn->rep.end = "done";
}

static void do_sink(struct conn *cn, const struct sd_serve_req *req, uint64_t limit, uint64_t deadline, size_t have)
{
    uint64_t got = have;
    char reply[200];

    cn->rep.end = "done";
    while (got < limit) {
        int n = sd_tconn_read(&cn->c, cn->buf, (size_t)SD_MIN(limit - got, (uint64_t)sizeof(cn->buf)));
        if (n > 0) {
            got += (uint64_t)n;
            cn->rep.bytes_in = got;
            continue;
        }
        if (n == SD_TCONN_EOF)
            break; /* the upload ended: answer below */
        if (n < 0) {
            set_end(cn, n);
            return;
        }
        if (!wait_slice(cn, cn->c.want, deadline)) {
            set_time_end(cn);
            break;
        }
    }
    cn->rep.bytes_in = got;
    int len = snprintf(reply, sizeof(reply), "OK %llu\n", (unsigned long long)got);
    if (req->http) {
        char body[48];
        memcpy(body, reply, (size_t)len + 1);
        len = snprintf(reply, sizeof(reply), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                       len, body);
    }
    int x = sd_tconn_write_all(&cn->c, (const uint8_t *)reply, (size_t)len, deadline);
    if (x < 0)
        set_end(cn, x);
    else
        cn->rep.bytes_out = (uint64_t)len;
}

static void do_echo(struct conn *cn, const struct sd_serve_req *req, uint64_t limit, uint64_t deadline, size_t have)
{
    static const char hdr[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";
    uint64_t moved = 0;
    int x = 0;

    if (req->http)
        x = sd_tconn_write_all(&cn->c, (const uint8_t *)hdr, sizeof(hdr) - 1, deadline);
    if (x == 0 && have)
        x = sd_tconn_write_all(&cn->c, cn->buf, have, deadline);
    moved = have;
    cn->rep.end = "done";
    while (x == 0 && moved < limit) {
        int n = sd_tconn_read(&cn->c, cn->buf, (size_t)SD_MIN(limit - moved, (uint64_t)sizeof(cn->buf)));
        if (n > 0) {
            moved += (uint64_t)n;
            x = sd_tconn_write_all(&cn->c, cn->buf, (size_t)n, deadline);
            continue;
        }
        if (n < 0) {
            x = n;
            break;
        }
        if (!wait_slice(cn, cn->c.want, deadline)) {
            set_time_end(cn);
            break;
        }
    }
    if (x < 0)
        set_end(cn, x);
    cn->rep.bytes_in = cn->rep.bytes_out = moved;
    if (moved >= limit)
        cn->rep.end = "limit";
}

/* Ends politely: close_notify / FIN, then reads what is still in flight so
 * that close() does not answer unread data with a RST. */
static void linger_close(struct conn *cn)
{
    uint64_t until = sd_mono_ns() + DRAIN_MS * (uint64_t)SD_NS_PER_MS;

    if (cn->c.ssl)
        SSL_shutdown(cn->c.ssl);
    shutdown(cn->c.fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(cn->c.fd, cn->buf, sizeof(cn->buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            break;
        if (n < 0 && !wait_slice(cn, POLLIN, until))
            break;
    }
}

/*
 * A cooperating server, as XUE21's replay server was: a ChangeCipherSpec
 * record (14 03 0x 00 01 01) in front of the ClientHello -- the "CCS
 * prepend" circumvention of spec B3/B14 -- is read off the socket before
 * OpenSSL sees it (RFC 8446 lets a peer ignore a CCS only after the first
 * hello, so OpenSSL would answer unexpected_message). Peeks only: a hello
 * that starts with anything else is left untouched.
 */
static void skip_leading_ccs(struct conn *cn, uint64_t deadline)
{
    uint8_t b[6];

    for (;;) {
        ssize_t n = recv(cn->c.fd, b, sizeof(b), MSG_PEEK);
        if (n == 0 || (n > 0 && b[0] != 0x14) || (n < 0 && errno != EAGAIN && errno != EINTR))
            return;
        if (n == (ssize_t)sizeof(b)) {
            if (b[1] == 3 && b[3] == 0 && b[4] == 1 && b[5] == 1)
                recv(cn->c.fd, b, sizeof(b), 0);
            return;
        }
        if (n > 0)
            poll(NULL, 0, 5); /* part of a record: let the rest arrive */
        if (!wait_slice(cn, POLLIN, deadline))
            return;
    }
}

static void serve_conn(struct conn *cn)
{
    const struct sd_serve_config *cfg = &cn->s->cfg;
    struct sd_serve_req req;

    if (cn->tls) {
        cn->c.ssl = SSL_new(cn->s->ctx);
        if (!cn->c.ssl)
            return;
        SSL_set_fd(cn->c.ssl, cn->c.fd);
        SSL_set_accept_state(cn->c.ssl);
        uint64_t hs_deadline = SD_MIN(cn->deadline, cn->t0 + HANDSHAKE_S * (uint64_t)SD_NS_PER_S);
        skip_leading_ccs(cn, hs_deadline);
        int x = sd_tconn_handshake(&cn->c, hs_deadline);
        cn->rep.sni = SSL_get_servername(cn->c.ssl, TLSEXT_NAMETYPE_host_name);
        if (x < 0) {
            set_end(cn, x);
            return;
        }
    } else if (cn->s->hello_len) {
        int x = sd_tconn_write_all(&cn->c, cn->s->hello, cn->s->hello_len, cn->deadline);
        if (x < 0) {
            set_end(cn, x);
            return;
        }
    }
    int have = read_request(cn, &req);
    if (have < 0)
        return;
    cn->rep.mode = req.mode;
    uint64_t limit = req.bytes ? SD_MIN(req.bytes, cfg->max_bytes) : cfg->max_bytes;
    uint64_t deadline = cn->deadline;
    if (req.seconds)
        deadline = SD_MIN(deadline, sd_mono_ns() + req.seconds * (uint64_t)SD_NS_PER_S);
    if (req.mode == SD_SERVE_SEND)
        do_send(cn, &req, limit, deadline);
    else if (req.mode == SD_SERVE_SINK)
        do_sink(cn, &req, limit, deadline, (size_t)have);
    else
        do_echo(cn, &req, limit, deadline, (size_t)have);
    if (!strcmp(cn->rep.end, "done") || !strcmp(cn->rep.end, "limit") || !strcmp(cn->rep.end, "timeout"))
        linger_close(cn);
}

static void format_peer(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        snprintf(buf, len, "%s:%u", a, ntohs(s4->sin_port));
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            snprintf(buf, len, "%s:%u", a + 7, ntohs(s6->sin6_port));
        else
            snprintf(buf, len, "[%s]:%u", a, ntohs(s6->sin6_port));
    }
}

static void *conn_main(void *arg)
{
    struct conn *cn = arg;
    struct sd_serve *s = cn->s;

    cn->rep.end = "error";
    cn->rep.tls = cn->tls;
    cn->rep.mode = s->cfg.mode;
    format_peer(&cn->peer, cn->rep.peer, sizeof(cn->rep.peer));
    serve_conn(cn);
    cn->rep.duration_ns = sd_mono_ns() - cn->t0;
    if (s->cfg.on_conn)
        s->cfg.on_conn(s->cfg.arg, &cn->rep);
    SSL_free(cn->c.ssl);
    close(cn->c.fd);
    free(cn);
    ERR_clear_error();
    atomic_fetch_sub(&s->active, 1);
    return NULL;
}

/* ---- accept loop ---- */

static void accept_one(struct sd_serve *s, int which)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    int fd = accept4(s->lfd[which], (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
    pthread_attr_t attr;
    pthread_t tid;

    if (fd < 0)
        return;
    if (atomic_load(&s->active) >= s->cfg.max_conns) {
        close(fd); /* over the cap: refuse at once rather than queue */
        return;
    }
    struct conn *cn = calloc(1, sizeof(*cn));
    if (!cn) {
        close(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    cn->s = s;
    cn->c.fd = fd;
    cn->tls = which == 0;
    cn->peer = peer;
    cn->t0 = sd_mono_ns();
    cn->deadline = cn->t0 + s->cfg.max_seconds * (uint64_t)SD_NS_PER_S;
    atomic_fetch_add(&s->active, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&tid, &attr, conn_main, cn) != 0) {
        atomic_fetch_sub(&s->active, 1);
        close(fd);
        free(cn);
    }
    pthread_attr_destroy(&attr);
}

static void wait_idle(struct sd_serve *s, unsigned ms)
{
    atomic_store(&s->stopping, true);
    for (unsigned i = 0; i < ms / 10 && atomic_load(&s->active) > 0; i++)
        poll(NULL, 0, 10);
}

int sd_serve_run(struct sd_serve *s, int stop_fd)
{
    struct pollfd p[3];
    int rc = 0;

    for (;;) {
        int n = 0;
        for (int i = 0; i < 2; i++)
            p[n++] = (struct pollfd){s->lfd[i], POLLIN, 0}; /* fd -1 is ignored by poll */
        p[n++] = (struct pollfd){stop_fd, POLLIN, 0};
        if (poll(p, (nfds_t)n, -1) < 0) {
            if (errno == EINTR)
                continue;
            rc = SD_EIO;
            break;
        }
        if (p[2].revents)
            break;
        for (int i = 0; i < 2; i++) {
            if (p[i].revents & POLLIN)
                accept_one(s, i);
        }
    }
    wait_idle(s, 2000);
    return rc;
}

void sd_serve_free(struct sd_serve *s)
{
    if (!s)
        return;
    /* Connection threads use s: they must be gone first. */
    wait_idle(s, 10000);
    for (int i = 0; i < 2; i++) {
        if (s->lfd[i] >= 0)
            close(s->lfd[i]);
    }
    SSL_CTX_free(s->ctx);
    free(s);
}
