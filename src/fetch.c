/*
 * fetch.c - the measurement client (see fetch.h).
 *
 * One call is one connection, run as three phases with a deadline each:
 *
 *   connect (non-blocking, poll)  ->  TLS handshake (SSL_connect loop, poll
 *   on WANT_READ/WANT_WRITE)  ->  request line or first payload  ->  transfer
 *
 * The socket and the optional SSL sit in a struct sd_tconn (tconn.h), so the
 * transfer loop is the same for TLS and plain TCP.
 *
 * Download goodput is counted as the bytes handed to us, binned by the time
 * they arrived. Upload goodput cannot be seen from the sender's writes (the
 * socket buffer hides the path), so it is sampled from TCP_INFO's
 * tcpi_bytes_acked at every wakeup, with wakeups at least once per bin. The
 * same samples (RTT, retransmissions, out-of-order arrivals) are kept per
 * bin for callers that ask (the detector tells policing from shaping by
 * them). A download with samples wakes at least once per bin to take
 * them: TCP's count of bytes received moves smoothly where TLS hands over
 * whole 16 KB records, once a second at 128 kbit/s.
 *
 * Certificate verification is off on purpose: the server is our own
 * `slowdown serve` with a throw-away certificate, and the SNI is whatever
 * name is under test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_acked */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fetch.h"
#include "mono.h"
#include "tconn.h"

enum {
    CHUNK = 64 * 1024,
    UP_CHUNK = 16 * 1024,
};

static void set_end(struct sd_fetch_result *r, int end, int err, const char *what)
{
    r->end = (uint8_t)end;
    r->sys_err = err;
    if (what)
        snprintf(r->detail, sizeof(r->detail), "%s", what);
    else if (err)
        snprintf(r->detail, sizeof(r->detail), "%s", strerror(err));
}

static int errno_end(int err)
{
    if (err == ECONNRESET || err == ECONNREFUSED || err == EPIPE || err == ECONNABORTED)
        return SD_FETCH_RST;
    if (err == ETIMEDOUT)
        return SD_FETCH_TIMEOUT;
    return SD_FETCH_ERROR;
}

/* Socket and optional bind. Returns the fd or a negative SD_E* with r->detail set. */
static int open_socket(const struct sd_fetch_opts *o, const struct sockaddr_storage *dst, struct sd_fetch_result *r)
{
    int fd = socket(dst->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0) {
        snprintf(r->detail, sizeof(r->detail), "socket: %s", strerror(errno));
        return SD_EIO;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (o->max_rate && o->dir == SD_FETCH_UP) {
        unsigned long rate = (unsigned long)o->max_rate;
        setsockopt(fd, SOL_SOCKET, SO_MAX_PACING_RATE, &rate, sizeof(rate));
    }
    if (o->bind_addr || o->src_port) {
        struct sockaddr_storage src;
        socklen_t slen;
        const char *any = dst->ss_family == AF_INET ? "0.0.0.0" : "::";
        if (sd_tconn_sockaddr(o->bind_addr ? o->bind_addr : any, o->src_port, &src, &slen) < 0 ||
            src.ss_family != dst->ss_family) {
            snprintf(r->detail, sizeof(r->detail), "bad source address '%s'", o->bind_addr);
            close(fd);
            return SD_EINVAL;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, slen) < 0) {
            snprintf(r->detail, sizeof(r->detail), "bind: %s", strerror(errno));
            close(fd);
            return SD_EIO;
        }
    }
    if (o->hooks && o->hooks->socket) {
        int rc = o->hooks->socket(o->hook_arg, fd, r->detail, sizeof(r->detail));
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    return fd;
}

/* Runs hook |rc| returned: on failure the measurement ends as an error. */
static int hook_failed(struct sd_fetch_result *r, int rc)
{
    if (rc >= 0)
        return 0;
    r->end = SD_FETCH_ERROR;
    if (!r->detail[0])
        snprintf(r->detail, sizeof(r->detail), "hook: %s", sd_strerror(rc));
    return -1;
}

/* Non-blocking connect with a deadline. 0, or -1 with r's end set. */
static int do_connect(int fd, const struct sockaddr_storage *dst, socklen_t dlen, uint64_t deadline,
                      struct sd_fetch_result *r)
{
    int err = 0;
    socklen_t elen = sizeof(err);

    if (connect(fd, (const struct sockaddr *)dst, dlen) < 0 && errno != EINPROGRESS) {
        set_end(r, errno_end(errno), errno, NULL);
        return -1;
    }
    if (!sd_tconn_wait(fd, POLLOUT, deadline)) {
        set_end(r, SD_FETCH_TIMEOUT, ETIMEDOUT, "connect timed out");
        return -1;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
        err = errno;
    if (err) {
        set_end(r, errno_end(err), err, NULL);
        return -1;
    }
    return 0;
}

/* Records how the connection ended from an SD_TCONN_* code. */
static void code_end(struct sd_fetch_result *r, int code, const struct sd_tconn *c, const char *phase)
{
    char what[100];

    switch (code) {
    case SD_TCONN_EOF:
        set_end(r, SD_FETCH_EOF, 0, "");
        return;
    case SD_TCONN_RST:
        set_end(r, SD_FETCH_RST, c->sys_err ? c->sys_err : ECONNRESET, NULL);
        return;
    case SD_TCONN_TIMEOUT:
        snprintf(what, sizeof(what), "%s timed out", phase);
        set_end(r, SD_FETCH_TIMEOUT, ETIMEDOUT, what);
        return;
    }
    unsigned long e = ERR_peek_last_error();
    if (c->ssl && e) {
        ERR_error_string_n(e, what, sizeof(what));
        set_end(r, SD_FETCH_ERROR, 0, what);
    } else {
        set_end(r, SD_FETCH_ERROR, c->sys_err, NULL);
    }
}

static SSL_CTX *client_ctx(const struct sd_fetch_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (!ctx)
        return NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o->tls_max_version)
        SSL_CTX_set_max_proto_version(ctx, o->tls_max_version);
    return ctx;
}

static void bin_add(const struct sd_fetch_opts *o, uint64_t bin_ns, struct sd_fetch_result *r, uint64_t t,
                    uint64_t n)
{
    uint64_t i = t / bin_ns;

    if (i < o->max_bins && o->bins) {
        o->bins[i] += n;
        if (i + 1 > r->n_bins)
            r->n_bins = (uint32_t)(i + 1);
    }
}

/* Reads TCP_INFO into |s| (zero on failure); |up| picks the MSS of our direction. */
static void tcp_sample(int fd, bool up, struct sd_fetch_tcp *s)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    memset(s, 0, sizeof(*s));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return;
    s->rtt_us = ti.tcpi_rtt;
    s->rcv_rtt_us = ti.tcpi_rcv_rtt;
    s->min_rtt_us = ti.tcpi_min_rtt;
    s->retrans = ti.tcpi_total_retrans;
    s->ooo = ti.tcpi_rcv_ooopack;
    s->mss = up ? ti.tcpi_snd_mss : ti.tcpi_rcv_mss;
    s->segs = up ? ti.tcpi_data_segs_out : ti.tcpi_data_segs_in;
    s->bytes_in = ti.tcpi_bytes_received;
    s->bytes_acked = ti.tcpi_bytes_acked;
}

/* Keeps |s| as the sample of the bin of time |t| (the last one taken wins). */
static void tcp_bin(const struct sd_fetch_opts *o, uint64_t bin_ns, uint64_t t, const struct sd_fetch_tcp *s)
{
    uint64_t i = t / bin_ns;

    if (o->tcp_bins && i < o->max_bins)
        o->tcp_bins[i] = *s;
}

static uint64_t bytes_acked(int fd)
{
    struct sd_fetch_tcp s;

    tcp_sample(fd, true, &s);
    return s.bytes_acked;
}

/* The earliest of the transfer deadline and |now| + |idle|. */
static uint64_t next_wake(uint64_t deadline, uint64_t now, uint64_t step)
{
    return SD_MIN(deadline, now + step);
}

/* The transfer's end: t0 + duration, or the absolute deadline, the earlier. */
static uint64_t transfer_deadline(const struct sd_fetch_opts *o, uint64_t t0, uint64_t forever)
{
    uint64_t d = o->duration_ns ? t0 + o->duration_ns : forever;
    return o->deadline_ns ? SD_MIN(d, o->deadline_ns) : d;
}

/* A paced download: 0 when |bytes| may grow now, else the time it may (the
 * rate's allowance since t0, plus one chunk of slack). */
static uint64_t pace_hold(const struct sd_fetch_opts *o, uint64_t t0, uint64_t bytes, uint64_t now)
{
    if (!o->max_rate)
        return 0;
    uint64_t allowed = CHUNK + (now - t0) / 1000 * o->max_rate / 1000000;
    if (bytes < allowed)
        return 0;
    return t0 + (bytes - CHUNK + 1) * 1000000 / o->max_rate * 1000 + 1000;
}

static void transfer_down(const struct sd_fetch_opts *o, struct sd_tconn *c, uint64_t t0, uint64_t bin_ns,
                          uint64_t idle_ns, struct sd_fetch_result *r)
{
    static const uint64_t forever = UINT64_MAX / 2;
    uint64_t deadline = transfer_deadline(o, t0, forever);
    uint64_t last = t0, sampled_bin = UINT64_MAX;
    uint8_t buf[CHUNK];

    for (;;) {
        size_t want = sizeof(buf);
        if (o->bytes && o->bytes - r->bytes < want)
            want = (size_t)(o->bytes - r->bytes);
        uint64_t hold = pace_hold(o, t0, r->bytes, sd_mono_ns());
        int n = hold ? 0 : sd_tconn_read(c, buf, want);
        uint64_t now = sd_mono_ns();
        if (n < 0) {
            code_end(r, n, c, "transfer");
            break;
        }
        if (n > 0) {
            if (r->bytes == 0)
                r->ttfb_ns = now - t0;
            r->bytes += (uint64_t)n;
            bin_add(o, bin_ns, r, now - t0, (uint64_t)n);
            last = now;
            if (o->bytes && r->bytes >= o->bytes) {
                set_end(r, SD_FETCH_DONE, 0, "");
                break;
            }
        }
        /* TCP's view once per bin: bytes arrive there before TLS hands over a whole record. */
        if (o->tcp_bins && (now - t0) / bin_ns != sampled_bin) {
            struct sd_fetch_tcp ts;
            sampled_bin = (now - t0) / bin_ns;
            tcp_sample(c->fd, false, &ts);
            tcp_bin(o, bin_ns, now - t0, &ts);
        }
        if (now >= deadline) {
            set_end(r, SD_FETCH_DONE, 0, "");
            break;
        }
        if (n > 0)
            continue;
        uint64_t wake = next_wake(deadline, last, idle_ns);
        if (o->tcp_bins)
            wake = SD_MIN(wake, t0 + (sampled_bin + 1) * bin_ns);
        if (hold) {
            /* Ahead of the cap: let the receive window fill, not idle. */
            uint64_t until = SD_MIN(wake, hold);
            if (until > now) {
                struct timespec ts = {(time_t)((until - now) / SD_NS_PER_S), (long)((until - now) % SD_NS_PER_S)};
                nanosleep(&ts, NULL);
            }
            last = sd_mono_ns();
            continue;
        }
        if (!sd_tconn_wait(c->fd, c->want, wake)) {
            now = sd_mono_ns();
            if (now >= deadline) {
                set_end(r, SD_FETCH_DONE, 0, "");
                break;
            }
            if (now - last >= idle_ns) {
                set_end(r, SD_FETCH_TIMEOUT, ETIMEDOUT, "no data within the idle timeout");
                break;
            }
        }
    }
    r->transfer_ns = sd_mono_ns() - t0;
}

/* Upload: write until the limit, sampling acknowledged bytes into the bins. */
static void transfer_up(const struct sd_fetch_opts *o, struct sd_tconn *c, uint64_t t0, uint64_t bin_ns,
                        uint64_t idle_ns, struct sd_fetch_result *r)
{
    static const uint64_t forever = UINT64_MAX / 2;
    uint64_t deadline = transfer_deadline(o, t0, forever);
    uint64_t acked0 = bytes_acked(c->fd), acked = acked0, sent = 0, last = t0;
    uint8_t buf[UP_CHUNK];
    bool writing = true;

    memset(buf, 'u', sizeof(buf));
    for (;;) {
        int n = 0;
        if (writing) {
            size_t want = sizeof(buf);
            if (o->bytes && o->bytes - sent < want)
                want = (size_t)(o->bytes - sent);
            n = sd_tconn_write(c, buf, want);
            if (n < 0) {
                code_end(r, n, c, "transfer");
                break;
            }
            sent += (uint64_t)n;
            if (o->bytes && sent >= o->bytes)
                writing = false; /* now wait for the acknowledgements */
        }
        struct sd_fetch_tcp ts;
        uint64_t now = sd_mono_ns();
        tcp_sample(c->fd, true, &ts);
        uint64_t a = ts.bytes_acked;
        tcp_bin(o, bin_ns, now - t0, &ts);
        if (a > acked) {
            bin_add(o, bin_ns, r, now - t0, a - acked);
            acked = a;
            last = now;
        }
        if (now >= deadline || (!writing && acked - acked0 >= sent)) {
            set_end(r, SD_FETCH_DONE, 0, "");
            break;
        }
        if (now - last >= idle_ns) {
            set_end(r, SD_FETCH_TIMEOUT, ETIMEDOUT, "nothing acknowledged within the idle timeout");
            break;
        }
        if (writing && n > 0)
            continue;
        /* Wake at least once per bin to sample the acknowledgements; once
         * everything is written, only the acknowledgements are awaited. */
        if (writing)
            sd_tconn_wait(c->fd, c->want, next_wake(deadline, now, bin_ns));
        else
            poll(NULL, 0, 5);
    }
    r->bytes = acked - acked0;
    r->transfer_ns = sd_mono_ns() - t0;
}

static int request_line(const struct sd_fetch_opts *o, char *buf, size_t len)
{
    unsigned secs = o->duration_ns ? (unsigned)((o->duration_ns + SD_NS_PER_S - 1) / SD_NS_PER_S) + 1 : 0;
    int n = snprintf(buf, len, "%s", o->dir == SD_FETCH_UP ? "PUT /up" : "GET /down");
    char sep = '?';

    if (o->bytes) {
        n += snprintf(buf + n, len - (size_t)n, "%cbytes=%llu", sep, (unsigned long long)o->bytes);
        sep = '&';
    }
    if (secs)
        n += snprintf(buf + n, len - (size_t)n, "%cseconds=%u", sep, secs);
    n += snprintf(buf + n, len - (size_t)n, "\n");
    return n;
}

/* The phases after connect; |c| is open. */
static int run_conn(const struct sd_fetch_opts *o, struct sd_tconn *c, struct sd_fetch_result *r)
{
    uint64_t hs_to = o->handshake_timeout_ns ? o->handshake_timeout_ns : 10ull * SD_NS_PER_S;
    uint64_t idle = o->idle_timeout_ns ? o->idle_timeout_ns : 10ull * SD_NS_PER_S;
    uint64_t bin_ns = o->bin_ns ? o->bin_ns : 100ull * SD_NS_PER_MS;
    uint64_t t;
    SSL_CTX *ctx = NULL;
    int rc = 0;

    if (!o->plain) {
        r->stage = SD_FETCH_HANDSHAKE;
        ctx = client_ctx(o);
        if (ctx && o->hooks && o->hooks->tls_ctx &&
            hook_failed(r, o->hooks->tls_ctx(o->hook_arg, ctx, r->detail, sizeof(r->detail))))
            goto out;
        c->ssl = ctx ? SSL_new(ctx) : NULL;
        if (!c->ssl) {
            rc = SD_ENOMEM;
            goto out;
        }
        SSL_set_fd(c->ssl, c->fd);
        if (o->sni && !SSL_set_tlsext_host_name(c->ssl, o->sni)) {
            snprintf(r->detail, sizeof(r->detail), "SNI '%s' rejected by OpenSSL", o->sni);
            rc = SD_EINVAL;
            goto out;
        }
        if (o->hooks && o->hooks->tls_ssl &&
            hook_failed(r, o->hooks->tls_ssl(o->hook_arg, c->ssl, c->fd, r->detail, sizeof(r->detail))))
            goto out;
        SSL_set_connect_state(c->ssl);
        t = sd_mono_ns();
        int x = sd_tconn_handshake(c, t + hs_to);
        if (x < 0) {
            code_end(r, x, c, "TLS handshake");
            goto out;
        }
        r->handshake_ns = sd_mono_ns() - t;
        snprintf(r->tls_version, sizeof(r->tls_version), "%s", SSL_get_version(c->ssl));
    }
    if (o->hooks && o->hooks->ready && hook_failed(r, o->hooks->ready(o->hook_arg, c->fd, r->detail, sizeof(r->detail))))
        goto out;
    r->stage = SD_FETCH_TRANSFER;
    t = sd_mono_ns();
    int x = 0;
    if (o->plain && o->first) {
        x = sd_tconn_write_all(c, o->first, o->first_len, t + idle);
    } else if (!o->no_request) {
        char req[96];
        int n = request_line(o, req, sizeof(req));
        x = sd_tconn_write_all(c, (const uint8_t *)req, (size_t)n, t + idle);
    }
    if (x < 0) {
        code_end(r, x, c, "request");
        goto out;
    }
    t = sd_mono_ns();
    r->transfer_start_ns = t;
    tcp_sample(c->fd, o->dir == SD_FETCH_UP, &r->tcp_start);
    if (o->dir == SD_FETCH_UP)
        transfer_up(o, c, t, bin_ns, idle, r);
    else
        transfer_down(o, c, t, bin_ns, idle, r);
    tcp_sample(c->fd, o->dir == SD_FETCH_UP, &r->tcp);
    if (c->ssl && r->end == SD_FETCH_DONE)
        SSL_shutdown(c->ssl); /* best effort: one close_notify, not awaited */
out:
    SSL_free(c->ssl);
    c->ssl = NULL;
    SSL_CTX_free(ctx);
    return rc;
}

int sd_fetch_run(const struct sd_fetch_opts *o, struct sd_fetch_result *r)
{
    struct sockaddr_storage dst;
    socklen_t dlen;
    struct sd_tconn c = {-1, NULL, 0, 0};
    int rc;

    memset(r, 0, sizeof(*r));
    r->start_ns = sd_mono_ns();
    if (!o->addr || (!o->bytes && !o->duration_ns && !o->deadline_ns) || o->dir > SD_FETCH_UP)
        return SD_EINVAL;
    if (sd_tconn_sockaddr(o->addr, o->port, &dst, &dlen) < 0) {
        snprintf(r->detail, sizeof(r->detail), "bad address '%s'", o->addr);
        return SD_EINVAL;
    }
    if (o->bins)
        memset(o->bins, 0, sizeof(o->bins[0]) * o->max_bins);
    if (o->tcp_bins)
        memset(o->tcp_bins, 0, sizeof(o->tcp_bins[0]) * o->max_bins);
    r->stage = SD_FETCH_CONNECT;
    c.fd = open_socket(o, &dst, r);
    if (c.fd < 0)
        return c.fd;
    uint64_t ct = o->connect_timeout_ns ? o->connect_timeout_ns : 5ull * SD_NS_PER_S;
    rc = 0;
    if (do_connect(c.fd, &dst, dlen, r->start_ns + ct, r) == 0) {
        r->connect_ns = sd_mono_ns() - r->start_ns;
        if (!(o->hooks && o->hooks->connected &&
              hook_failed(r, o->hooks->connected(o->hook_arg, c.fd, r->start_ns + ct, r->detail, sizeof(r->detail)))))
            rc = run_conn(o, &c, r);
    }
    close(c.fd);
    return rc;
}

double sd_fetch_kbps(const struct sd_fetch_result *r, const uint64_t *bins, uint64_t bin_ns, uint64_t skip_ns)
{
    if (r->transfer_ns == 0 || r->bytes == 0)
        return 0.0;
    if (!bin_ns)
        bin_ns = 100ull * SD_NS_PER_MS;
    uint64_t skip_bins = skip_ns / bin_ns;
    /* Less than a bin left after the skip (a --seconds equal to --skip ends a hair after it): the rate of
     * a sliver of time is no measurement, the whole transfer's is. */
    if (!bins || r->transfer_ns < skip_ns + bin_ns || skip_bins >= r->n_bins || skip_bins == 0)
        return (double)r->bytes * 8.0 / ((double)r->transfer_ns / 1e9) / 1000.0;
    uint64_t sum = 0;
    for (uint64_t i = skip_bins; i < r->n_bins; i++)
        sum += bins[i];
    double secs = (double)(r->transfer_ns - skip_bins * bin_ns) / 1e9;
    return (double)sum * 8.0 / secs / 1000.0;
}

int sd_fetch_client_hello(const char *sni, uint8_t *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    int rc = SD_ECRYPTO;

    if (!ssl || !rb || !wb)
        goto out;
    SSL_set_bio(ssl, rb, wb); /* ssl owns both BIOs from here on */
    rb = wb = NULL;
    if (sni && !SSL_set_tlsext_host_name(ssl, sni))
        goto out;
    if (SSL_connect(ssl) == 1)
        goto out; /* cannot complete without a server */
    BIO *w = SSL_get_wbio(ssl);
    size_t pending = BIO_ctrl_pending(w);
    if (pending == 0)
        goto out;
    if (pending > cap) {
        rc = SD_ERANGE;
        goto out;
    }
    rc = BIO_read(w, out, (int)pending);
    if (rc <= 0)
        rc = SD_ECRYPTO;
out:
    BIO_free(rb);
    BIO_free(wb);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

const char *sd_fetch_end_name(unsigned end)
{
    static const char *const names[] = {"done", "eof", "rst", "timeout", "error"};
    return end < SD_COUNTOF(names) ? names[end] : "unknown";
}
