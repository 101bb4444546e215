/*
 * evade_proxy.c - the CONNECT / SOCKS5 proxy of the evasion harness (see
 * evade_proxy.h).
 *
 *   accept -> thread: read the head (5 s) -> parse -> check the target is
 *   this host -> connect (3 s) -> answer -> copy both ways until both sides
 *   closed, 120 s, or stop
 *
 * The target check is what keeps it a fixture: the target must be numeric
 * and equal to the local address of the accepted connection (the address
 * the client used to reach the proxy) or loopback; names are refused, so
 * the proxy never resolves anything.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bytes.h"
#include "evade_proxy.h"
#include "lab.h"
#include "mono.h"
#include "tconn.h"
#include "waitfd.h"

enum { MAX_CONNS = 32, HEAD_S = 5, CONNECT_S = 3, LIFE_S = 120, COPY_BUF = 32 * 1024 };

struct sd_proxy {
    int lfd;
    uint16_t port;
    atomic_uint active;
    atomic_bool stopping;
};

struct pconn {
    struct sd_proxy *px;
    int fd, up;
    uint8_t buf[COPY_BUF];
};

/* ---- parsers ---- */

static bool is_tchar(uint8_t c)
{
    return c > ' ' && c < 0x7f;
}

/* The first "\r\n" in [p, lim), or NULL. */
static const uint8_t *find_crlf(const uint8_t *p, const uint8_t *lim)
{
    for (; p + 2 <= lim; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

/* host ":" port, host possibly "[v6]". 0 or SD_EPROTO. */
static int parse_authority(const uint8_t *s, const uint8_t *e, struct sd_proxy_req *req)
{
    const uint8_t *colon = NULL;
    uint32_t port = 0;

    for (const uint8_t *q = s; q < e; q++) {
        if (!is_tchar(*q))
            return SD_EPROTO;
        if (*q == ':')
            colon = q;
    }
    if (!colon || colon == s || colon + 1 == e || e - colon > 6)
        return SD_EPROTO;
    for (const uint8_t *q = colon + 1; q < e; q++) {
        if (*q < '0' || *q > '9')
            return SD_EPROTO;
        port = port * 10 + (uint32_t)(*q - '0');
    }
    if (port == 0 || port > 65535)
        return SD_EPROTO;
    const uint8_t *h = s, *he = colon;
    if (*h == '[') {
        if (he - h < 3 || he[-1] != ']')
            return SD_EPROTO;
        h++;
        he--;
    }
    if (he == h || (size_t)(he - h) >= sizeof(req->host))
        return SD_EPROTO;
    memcpy(req->host, h, (size_t)(he - h));
    req->host[he - h] = '\0';
    req->port = (uint16_t)port;
    return 0;
}

int sd_proxy_parse_connect(const uint8_t *p, const uint8_t *end, struct sd_proxy_req *req)
{
    static const char verb[] = "CONNECT ";
    size_t n = (size_t)(end - p);
    const uint8_t *lim = p + SD_MIN(n, (size_t)SD_PROXY_REQ_MAX), *blank = NULL;

    memset(req, 0, sizeof(*req));
    if (memcmp(p, verb, SD_MIN(n, sizeof(verb) - 1)) != 0)
        return SD_EPROTO;
    for (const uint8_t *q = p; (q = find_crlf(q, lim)) != NULL; q += 2) {
        if (q + 4 <= lim && q[2] == '\r' && q[3] == '\n') {
            blank = q;
            break;
        }
    }
    if (!blank)
        return n >= SD_PROXY_REQ_MAX ? SD_EPROTO : SD_EAGAIN;
    const uint8_t *eol = find_crlf(p, blank + 2), *s = p + sizeof(verb) - 1;
    const uint8_t *sp = s < eol ? memchr(s, ' ', (size_t)(eol - s)) : NULL;
    if (!sp || eol - (sp + 1) != 8 || memcmp(sp + 1, "HTTP/1.", 7) != 0 || (sp[8] != '0' && sp[8] != '1'))
        return SD_EPROTO;
    if (parse_authority(s, sp, req) < 0)
        return SD_EPROTO;
    return (int)(blank + 4 - p);
}

int sd_proxy_parse_socks_greeting(const uint8_t *p, const uint8_t *end)
{
    if (end - p < 2)
        return end > p && p[0] != 5 ? SD_EPROTO : SD_EAGAIN;
    if (p[0] != 5 || p[1] == 0)
        return SD_EPROTO;
    size_t n = (size_t)p[1];
    if ((size_t)(end - p) < 2 + n)
        return SD_EAGAIN;
    for (size_t i = 0; i < n; i++)
        if (p[2 + i] == 0)
            return (int)(2 + n);
    return SD_EPROTO;
}

int sd_proxy_parse_socks_request(const uint8_t *p, const uint8_t *end, struct sd_proxy_req *req)
{
    size_t have = (size_t)(end - p), alen;

    memset(req, 0, sizeof(*req));
    if (have < 5)
        return have && p[0] != 5 ? SD_EPROTO : SD_EAGAIN;
    if (p[0] != 5 || p[1] != 1 || p[2] != 0)
        return SD_EPROTO;
    switch (p[3]) {
    case 1: alen = 4; break;
    case 4: alen = 16; break;
    case 3: alen = 1 + (size_t)p[4]; break;
    default: return SD_EPROTO;
    }
    if (p[3] == 3 && p[4] == 0)
        return SD_EPROTO;
    if (have < 4 + alen + 2)
        return SD_EAGAIN;
    const uint8_t *a = p + 4;
    if (p[3] == 1)
        inet_ntop(AF_INET, a, req->host, sizeof(req->host));
    else if (p[3] == 4)
        inet_ntop(AF_INET6, a, req->host, sizeof(req->host));
    else {
        for (size_t i = 1; i < alen; i++)
            if (!is_tchar(a[i]))
                return SD_EPROTO;
        memcpy(req->host, a + 1, alen - 1);
        req->host[alen - 1] = '\0';
    }
    req->port = sd_rd16be(a + alen);
    if (req->port == 0)
        return SD_EPROTO;
    return (int)(4 + alen + 2);
}

/* ---- server ---- */

struct sd_proxy *sd_proxy_open(const char *addr, uint16_t port, char *err, size_t errlen)
{
    struct sd_proxy *px = calloc(1, sizeof(*px));
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1;

    if (!px) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    px->lfd = -1;
    if (sd_tconn_sockaddr(addr ? addr : "0.0.0.0", port, &ss, &len) < 0) {
        snprintf(err, errlen, "bad proxy address '%s'", addr);
        goto fail;
    }
    px->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (px->lfd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto fail;
    }
    setsockopt(px->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(px->lfd, (struct sockaddr *)&ss, len) < 0 || listen(px->lfd, 64) < 0) {
        snprintf(err, errlen, "cannot listen on %s port %u: %s", addr ? addr : "0.0.0.0", port, strerror(errno));
        goto fail;
    }
    len = sizeof(ss);
    getsockname(px->lfd, (struct sockaddr *)&ss, &len);
    px->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                             : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return px;
fail:
    sd_proxy_free(px);
    return NULL;
}

uint16_t sd_proxy_port(const struct sd_proxy *px)
{
    return px->port;
}

static bool stop_now(const struct pconn *c)
{
    return atomic_load_explicit(&c->px->stopping, memory_order_relaxed);
}

/* The target must be this host: the address the client came in on, or loopback. */
static bool target_ok(int fd, const struct sd_proxy_req *req, struct sockaddr_storage *to, socklen_t *tolen)
{
    struct sockaddr_storage me = {0};
    socklen_t mlen = sizeof(me);
    char here[INET6_ADDRSTRLEN] = "";

    if (sd_tconn_sockaddr(req->host, req->port, to, tolen) < 0)
        return false; /* names are refused */
    if (getsockname(fd, (struct sockaddr *)&me, &mlen) < 0)
        return false;
    if (me.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&me)->sin_addr, here, sizeof(here));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&me)->sin6_addr, here, sizeof(here));
    const char *h = !strncmp(here, "::ffff:", 7) ? here + 7 : here;
    return !strcmp(req->host, h) || !strcmp(req->host, "127.0.0.1") || !strcmp(req->host, "::1");
}

static int dial(const struct sockaddr_storage *to, socklen_t tolen, uint64_t deadline)
{
    int fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err = 0, one = 1;
    socklen_t elen = sizeof(err);

    if (fd < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if ((connect(fd, (const struct sockaddr *)to, tolen) < 0 && errno != EINPROGRESS) ||
        !sd_tconn_wait(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n, uint64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        bool again = w == 0 || errno == EAGAIN || errno == EINTR;
        if (!again || !sd_tconn_wait(fd, POLLOUT, deadline))
            return -1;
    }
    return 0;
}

/* Reads the head into c->buf until |parse| is satisfied. Returns the bytes
 * held, or -1. |*used| gets the head's length. */
static int read_head(struct pconn *c, size_t have, uint64_t deadline, bool socks, struct sd_proxy_req *req,
                     int *used)
{
    for (;;) {
        int rc = socks ? sd_proxy_parse_socks_request(c->buf, c->buf + have, req)
                       : sd_proxy_parse_connect(c->buf, c->buf + have, req);
        if (rc > 0) {
            *used = rc;
            return (int)have;
        }
        if (rc != SD_EAGAIN || have >= SD_PROXY_REQ_MAX)
            return -1;
        ssize_t r = recv(c->fd, c->buf + have, SD_PROXY_REQ_MAX - have, 0);
        if (r > 0) {
            have += (size_t)r;
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR) || stop_now(c) ||
            !sd_tconn_wait(c->fd, POLLIN, SD_MIN(deadline, sd_mono_ns() + 200ull * SD_NS_PER_MS)) ||
            sd_mono_ns() >= deadline) {
            if (r < 0 && (errno == EAGAIN || errno == EINTR) && sd_mono_ns() < deadline && !stop_now(c))
                continue;
            return -1;
        }
    }
}

/* Copies both ways until both directions ended, or time or stop. */
static void relay(struct pconn *c, uint64_t deadline)
{
    int fds[2] = {c->fd, c->up};
    bool open_in[2] = {true, true};

    while ((open_in[0] || open_in[1]) && sd_mono_ns() < deadline && !stop_now(c)) {
        struct pollfd p[2] = {{fds[0], open_in[0] ? POLLIN : 0, 0}, {fds[1], open_in[1] ? POLLIN : 0, 0}};
        if (poll(p, 2, 200) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(fds[i], c->buf, sizeof(c->buf), 0);
            if (r > 0) {
                if (send_all(fds[1 - i], c->buf, (size_t)r, deadline) < 0)
                    return;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                open_in[i] = false;
                shutdown(fds[1 - i], SHUT_WR);
                if (r < 0)
                    return;
            }
        }
    }
}

static void serve_one(struct pconn *c)
{
    uint64_t t0 = sd_mono_ns(), head_dl = t0 + HEAD_S * (uint64_t)SD_NS_PER_S;
    struct sd_proxy_req req;
    struct sockaddr_storage to;
    socklen_t tolen;
    int used = 0, have = 0;

    if (!sd_tconn_wait(c->fd, POLLIN, head_dl))
        return;
    ssize_t r = recv(c->fd, c->buf, SD_PROXY_REQ_MAX, 0);
    if (r <= 0)
        return;
    bool socks = c->buf[0] == 5;
    have = (int)r;
    if (socks) {
        int g;
        while ((g = sd_proxy_parse_socks_greeting(c->buf, c->buf + have)) == SD_EAGAIN) {
            if (!sd_tconn_wait(c->fd, POLLIN, head_dl) || (r = recv(c->fd, c->buf + have, 64, 0)) <= 0)
                return;
            have += (int)r;
        }
        static const uint8_t ok[2] = {5, 0}, no[2] = {5, 0xff};
        send_all(c->fd, g > 0 ? ok : no, 2, head_dl);
        if (g < 0)
            return;
        memmove(c->buf, c->buf + g, (size_t)(have - g));
        have -= g;
    }
    have = read_head(c, (size_t)have, head_dl, socks, &req, &used);
    if (have < 0)
        return;
    bool ok = target_ok(c->fd, &req, &to, &tolen);
    c->up = ok ? dial(&to, tolen, sd_mono_ns() + CONNECT_S * (uint64_t)SD_NS_PER_S) : -1;
    if (socks) {
        uint8_t ans[10] = {5, c->up >= 0 ? 0 : (ok ? 5 : 2), 0, 1, 0, 0, 0, 0, 0, 0};
        send_all(c->fd, ans, sizeof(ans), head_dl);
    } else {
        const char *ans = c->up >= 0 ? "HTTP/1.1 200 Connection established\r\n\r\n"
                          : ok       ? "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"
                                     : "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        send_all(c->fd, (const uint8_t *)ans, strlen(ans), head_dl);
    }
    if (c->up < 0)
        return;
    if (have > used && send_all(c->up, c->buf + used, (size_t)(have - used), head_dl) < 0)
        return;
    relay(c, t0 + LIFE_S * (uint64_t)SD_NS_PER_S);
}

static void *conn_main(void *arg)
{
    struct pconn *c = arg;
    struct sd_proxy *px = c->px;

    serve_one(c);
    close(c->fd);
    if (c->up >= 0)
        close(c->up);
    free(c);
    atomic_fetch_sub(&px->active, 1);
    return NULL;
}

static void accept_one(struct sd_proxy *px)
{
    int fd = accept4(px->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    pthread_attr_t attr;
    pthread_t tid;

    if (fd < 0)
        return;
    struct pconn *c = atomic_load(&px->active) < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
    if (!c) {
        close(fd);
        return;
    }
    c->px = px;
    c->fd = fd;
    c->up = -1;
    atomic_fetch_add(&px->active, 1);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&tid, &attr, conn_main, c) != 0) {
        atomic_fetch_sub(&px->active, 1);
        close(fd);
        free(c);
    }
    pthread_attr_destroy(&attr);
}

int sd_proxy_run(struct sd_proxy *px, int stop_fd)
{
    for (;;) {
        int w = sd_wait_in(px->lfd, stop_fd, -1);
        if (w <= SD_WAIT_STOP)
            return w;
        if (w == SD_WAIT_READY)
            accept_one(px);
    }
}

void sd_proxy_free(struct sd_proxy *px)
{
    if (!px)
        return;
    atomic_store(&px->stopping, true);
    for (int i = 0; i < 200 && atomic_load(&px->active) > 0; i++)
        poll(NULL, 0, 10);
    if (px->lfd >= 0)
        close(px->lfd);
    if (atomic_load(&px->active) == 0)
        free(px);
    /* else: a connection thread still holds px; leaking it beats a use after free */
}

/* ---- on a thread ---- */

static void *proxy_thread(void *arg)
{
    struct sd_proxy_thread *t = arg;
    char ok = 0;

    if (t->lab_id && sd_lab_enter(t->lab_id, SD_LAB_SERVER, NULL) < 0) {
        snprintf(t->err, sizeof(t->err), "no lab '%s' (or its server namespace is gone)", t->lab_id);
        ok = 1;
    } else if (t->udp) {
        t->qb = sd_quicbulk_open(t->addr, t->port, t->err, sizeof(t->err));
        ok = t->qb ? 0 : 1;
        if (t->qb)
            t->port = sd_quicbulk_port(t->qb);
    } else {
        t->px = sd_proxy_open(t->addr, t->port, t->err, sizeof(t->err));
        ok = t->px ? 0 : 1;
        if (t->px)
            t->port = sd_proxy_port(t->px);
    }
    if (write(t->ready[1], &ok, 1) != 1 || ok)
        return NULL;
    if (t->udp)
        sd_quicbulk_run(t->qb, t->stop[0]);
    else
        sd_proxy_run(t->px, t->stop[0]);
    return NULL;
}

static int thread_start(struct sd_proxy_thread *t, bool udp, const char *lab_id, const char *addr, uint16_t port)
{
    pthread_t th;
    char ok = 1;

    memset(t, 0, sizeof(*t));
    t->udp = udp;
    t->lab_id = lab_id;
    t->addr = addr;
    t->port = port;
    if (pipe2(t->stop, O_CLOEXEC) < 0 || pipe2(t->ready, O_CLOEXEC) < 0) {
        snprintf(t->err, sizeof(t->err), "pipe: %s", strerror(errno));
        return SD_EIO;
    }
    if (pthread_create(&th, NULL, proxy_thread, t) != 0) {
        snprintf(t->err, sizeof(t->err), "cannot start the proxy thread");
        goto fail;
    }
    t->thread = (unsigned long)th;
    if (read(t->ready[0], &ok, 1) != 1 || ok) {
        pthread_join(th, NULL);
        sd_proxy_free(t->px);
        sd_quicbulk_free(t->qb);
        t->px = NULL;
        t->qb = NULL;
        goto fail;
    }
    t->running = true;
    return 0;
fail:
    close(t->stop[0]);
    close(t->stop[1]);
    close(t->ready[0]);
    close(t->ready[1]);
    return t->lab_id && strstr(t->err, "no lab") ? SD_ENOENT : SD_EIO;
}

int sd_proxy_thread_start(struct sd_proxy_thread *t, const char *lab_id, const char *addr, uint16_t port)
{
    return thread_start(t, false, lab_id, addr, port);
}

int sd_quicbulk_thread_start(struct sd_proxy_thread *t, const char *lab_id, const char *addr, uint16_t port)
{
    return thread_start(t, true, lab_id, addr, port);
}

void sd_proxy_thread_stop(struct sd_proxy_thread *t)
{
    if (!t->running)
        return;
    if (write(t->stop[1], "x", 1) != 1)
        return; /* cannot happen on a pipe nobody closed; leave the thread */
    pthread_join((pthread_t)t->thread, NULL);
    sd_proxy_free(t->px);
    sd_quicbulk_free(t->qb);
    t->px = NULL;
    t->qb = NULL;
    close(t->stop[0]);
    close(t->stop[1]);
    close(t->ready[0]);
    close(t->ready[1]);
    t->running = false;
}
