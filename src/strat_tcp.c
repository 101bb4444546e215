/*
 * strat_tcp.c - the strategies real sockets can do: segments cut where the
 * strategy says (split, multisplit), an urgent byte inside the hello (oob),
 * a small MSS, and the unencrypted proxies' exchange before TLS.
 *
 * Segment boundaries come from separate writes on a TCP_NODELAY socket.
 * The kernel may still coalesce a write with data it has not sent yet
 * (autocorking, a full congestion window), so each piece is written only
 * once SIOCOUTQNSD -- bytes written but not yet sent -- is back to 0: then
 * the next write starts a segment of its own. Nothing here changes a byte
 * of the stream, only where segments start; retransmissions may coalesce,
 * which is fine: the lab loses nothing before the censor.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "bytes.h"
#include "evade_int.h"
#include "mono.h"
#include "tconn.h"

enum { PROXY_REPLY_MAX = 1024 };

int sd__evade_send_all(int fd, const uint8_t *p, size_t n, int flags, uint64_t deadline)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = send(fd, p + off, n - off, flags | MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return SD_EIO;
        if (!sd_tconn_wait(fd, POLLOUT, deadline))
            return SD_EAGAIN;
    }
    return 0;
}

int sd__evade_wait_sent(int fd, uint64_t deadline)
{
    for (;;) {
        int unsent = 0;
        if (ioctl(fd, SIOCOUTQNSD, &unsent) < 0 || unsent == 0)
            return 0;
        if (sd_mono_ns() >= deadline)
            return SD_EAGAIN;
        poll(NULL, 0, 1);
    }
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int sd__evade_split(struct sd__evade_run *x, const uint8_t *p, size_t n, uint64_t deadline)
{
    const struct sd_evade_spec *s = x->spec;
    size_t cut[SD_EVADE_MAX_POS + 1] = {0}, k = 0, from = 0;
    struct sd_evade_marks m;
    char list[96] = "";
    int rc = 0;

    sd_evade_marks(p, n, &m);
    for (unsigned i = 0; i < s->n_pos; i++)
        cut[k++] = sd_evade_resolve(&s->pos[i], &m);
    qsort(cut, k, sizeof(cut[0]), cmp_size);
    cut[k++] = n;
    for (size_t i = 0; i < k && rc == 0; i++) {
        if (cut[i] <= from)
            continue; /* the same cut twice */
        if (from > 0)
            rc = sd__evade_wait_sent(x->fd, deadline);
        if (rc == 0)
            rc = sd__evade_send_all(x->fd, p + from, cut[i] - from, 0, deadline);
        if (cut[i] < n) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof(list) - l, "%s%zu", l ? "," : "", cut[i]);
        }
        from = cut[i];
    }
    if (rc < 0) {
        sd__evade_note(x, "split: %s", rc == SD_EAGAIN ? "the kernel did not send in time" : strerror(errno));
        return rc;
    }
    x->r->applied = true;
    sd__evade_note(x, "segments cut at %s of %zu", list, n);
    return 0;
}

int sd__evade_oob(struct sd__evade_run *x, const uint8_t *p, size_t n, uint64_t deadline)
{
    struct sd_evade_marks m;
    size_t at;
    int rc;

    sd_evade_marks(p, n, &m);
    at = sd_evade_resolve(&x->spec->pos[0], &m);
    memcpy(x->buf, p, at);
    x->buf[at] = 'x'; /* the urgent byte: the server's kernel keeps it out of the stream */
    /* One send: MSG_OOB marks the last byte of this very call as urgent. */
    ssize_t w = send(x->fd, x->buf, at + 1, MSG_OOB | MSG_NOSIGNAL);
    if (w != (ssize_t)(at + 1)) {
        sd__evade_note(x, "oob: send: %s", w < 0 ? strerror(errno) : "short write");
        return SD_EIO;
    }
    rc = sd__evade_wait_sent(x->fd, deadline);
    if (rc == 0)
        rc = sd__evade_send_all(x->fd, p + at, n - at, 0, deadline);
    if (rc < 0) {
        sd__evade_note(x, "oob: the rest of the hello could not be sent");
        return rc;
    }
    x->r->applied = true;
    sd__evade_note(x, "urgent byte after hello byte %zu of %zu", at, n);
    return 0;
}

int sd__evade_socket_hook(void *arg, int fd, char *detail, size_t len)
{
    struct sd__evade_run *x = arg;
    int mss;

    if (x->spec->def->op != SD_EVADE_MSS)
        return 0;
    mss = (int)x->spec->size;
    if (setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)) < 0) {
        snprintf(detail, len, "TCP_MAXSEG %d: %s", mss, strerror(errno));
        return SD_EINVAL;
    }
    x->r->applied = true;
    sd__evade_note(x, "MSS %d", mss);
    return 0;
}

/* ---- proxies ---- */

/* Reads exactly |n| bytes before |deadline|. 0, SD_EAGAIN (time), SD_EIO. */
static int recv_exact(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = recv(fd, p + got, n - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            return SD_EIO;
        if (!sd_tconn_wait(fd, POLLIN, deadline))
            return SD_EAGAIN;
    }
    return 0;
}

static int http_connect(struct sd__evade_run *x, int fd, uint64_t deadline, char *detail, size_t len)
{
    const struct sd_evade_target *t = x->t;
    bool v6 = strchr(t->addr, ':') != NULL;
    uint16_t port = t->port ? t->port : 443;
    char req[300], reply[PROXY_REPLY_MAX + 1];
    size_t got = 0;

    int n = snprintf(req, sizeof(req), "CONNECT %s%s%s:%u HTTP/1.1\r\nHost: %s%s%s:%u\r\n\r\n", v6 ? "[" : "",
                     t->addr, v6 ? "]" : "", port, v6 ? "[" : "", t->addr, v6 ? "]" : "", port);
    if (sd__evade_send_all(fd, (const uint8_t *)req, (size_t)n, 0, deadline) < 0) {
        snprintf(detail, len, "proxy: cannot send CONNECT");
        return SD_EIO;
    }
    /* Byte by byte up to the blank line: what follows is the server's. */
    while (got < PROXY_REPLY_MAX) {
        if (recv_exact(fd, (uint8_t *)reply + got, 1, deadline) < 0) {
            snprintf(detail, len, "proxy: no answer to CONNECT");
            return SD_EIO;
        }
        got++;
        if (got >= 4 && !memcmp(reply + got - 4, "\r\n\r\n", 4))
            break;
    }
    reply[got] = '\0';
    if (strncmp(reply, "HTTP/1.", 7) != 0 || got < 12 || strncmp(reply + 9, "200", 3) != 0) {
        snprintf(detail, len, "proxy refused: %.60s", reply);
        return SD_EIO;
    }
    return 0;
}

static int socks5_connect(struct sd__evade_run *x, int fd, uint64_t deadline, char *detail, size_t len)
{
    const struct sd_evade_target *t = x->t;
    uint8_t req[32], *p = req, ans[22];
    uint8_t a[16];
    bool v6 = inet_pton(AF_INET6, t->addr, a) == 1;

    if (!v6 && inet_pton(AF_INET, t->addr, a) != 1) {
        snprintf(detail, len, "proxy: bad address %s", t->addr);
        return SD_EINVAL;
    }
    /* Greeting (version 5, one method: no authentication) and the request at once. */
    p = sd_put8(p, 5), p = sd_put8(p, 1), p = sd_put8(p, 0);
    p = sd_put8(p, 5), p = sd_put8(p, 1), p = sd_put8(p, 0), p = sd_put8(p, v6 ? 4 : 1);
    memcpy(p, a, v6 ? 16 : 4);
    p += v6 ? 16 : 4;
    p = sd_put16be(p, t->port ? t->port : 443);
    if (sd__evade_send_all(fd, req, (size_t)(p - req), 0, deadline) < 0) {
        snprintf(detail, len, "proxy: cannot send the SOCKS5 request");
        return SD_EIO;
    }
    if (recv_exact(fd, ans, 2, deadline) < 0 || ans[0] != 5 || ans[1] != 0) {
        snprintf(detail, len, "proxy: SOCKS5 greeting refused");
        return SD_EIO;
    }
    if (recv_exact(fd, ans, 4, deadline) < 0 || ans[0] != 5 || ans[1] != 0 || (ans[3] != 1 && ans[3] != 4)) {
        snprintf(detail, len, "proxy: SOCKS5 CONNECT refused (reply %u)", ans[1]);
        return SD_EIO;
    }
    if (recv_exact(fd, ans + 4, ans[3] == 1 ? 6 : 18, deadline) < 0) {
        snprintf(detail, len, "proxy: short SOCKS5 reply");
        return SD_EIO;
    }
    return 0;
}

int sd__evade_proxy_hook(void *arg, int fd, uint64_t deadline, char *detail, size_t len)
{
    struct sd__evade_run *x = arg;
    int rc;

    if (x->spec->def->op != SD_EVADE_PROXY)
        return 0;
    x->fd = fd;
    if (x->spec->proxy == SD_EVADE_PROXY_SOCKS5)
        rc = socks5_connect(x, fd, deadline, detail, len);
    else
        rc = http_connect(x, fd, deadline, detail, len);
    if (rc == 0) {
        x->r->applied = true;
        sd__evade_note(x, "tunnel through the %s proxy %s:%u", x->spec->proxy ? "SOCKS5" : "HTTP",
                       x->t->proxy_addr, x->t->proxy_port);
    }
    return rc;
}
