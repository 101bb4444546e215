/*
 * tconn.c - TLS or plain TCP I/O over a non-blocking socket (see tconn.h).
 *
 * OpenSSL reports a dead socket as SSL_ERROR_SYSCALL with errno set, and an
 * unexpected EOF as SSL_ERROR_SYSCALL with errno 0 once
 * SSL_OP_IGNORE_UNEXPECTED_EOF is on (the contexts of fetch.c and serve.c set
 * it): both are mapped here onto EOF / RST / ERR, which is what the
 * measurements care about (a censor's RST must be told from a timeout).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mono.h"
#include "sd.h"
#include "tconn.h"

static int errno_code(struct sd_tconn *c, int err)
{
    c->sys_err = err;
    if (err == ECONNRESET || err == EPIPE || err == ECONNREFUSED || err == ECONNABORTED)
        return SD_TCONN_RST;
    return SD_TCONN_ERR;
}

static int ssl_code(struct sd_tconn *c, int rc)
{
    int saved = errno;
    int e = SSL_get_error(c->ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want = POLLIN;
        return 0;
    case SSL_ERROR_WANT_WRITE:
        c->want = POLLOUT;
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        return SD_TCONN_EOF;
    case SSL_ERROR_SYSCALL:
        if (saved == 0)
            return SD_TCONN_EOF;
        if (saved == EAGAIN || saved == EINTR) {
            c->want = POLLIN;
            return 0;
        }
        return errno_code(c, saved);
    }
    c->sys_err = 0;
    return SD_TCONN_ERR;
}

int sd_tconn_read(struct sd_tconn *c, uint8_t *buf, size_t n)
{
    if (c->ssl) {
        errno = 0;
        ERR_clear_error();
        int rc = SSL_read(c->ssl, buf, (int)SD_MIN(n, (size_t)INT32_MAX));
        return rc > 0 ? rc : ssl_code(c, rc);
    }
    ssize_t rc = recv(c->fd, buf, n, 0);
    if (rc > 0)
        return (int)rc;
    if (rc == 0)
        return SD_TCONN_EOF;
    if (errno == EAGAIN || errno == EINTR) {
        c->want = POLLIN;
        return 0;
    }
    return errno_code(c, errno);
}

int sd_tconn_write(struct sd_tconn *c, const uint8_t *buf, size_t n)
{
    if (c->ssl) {
        errno = 0;
        ERR_clear_error();
        int rc = SSL_write(c->ssl, buf, (int)SD_MIN(n, (size_t)INT32_MAX));
        return rc > 0 ? rc : ssl_code(c, rc);
    }
    ssize_t rc = send(c->fd, buf, n, MSG_NOSIGNAL);
    if (rc >= 0)
        return (int)rc;
    if (errno == EAGAIN || errno == EINTR) {
        c->want = POLLOUT;
        return 0;
    }
    return errno_code(c, errno);
}

int sd_tconn_wait(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = sd_mono_ns();
        if (now >= deadline)
            return 0;
        uint64_t left_ms = (deadline - now + SD_NS_PER_MS - 1) / SD_NS_PER_MS;
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, (int)SD_MIN(left_ms, 60000u));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 1;
    }
}

ssize_t sd_tconn_read_head(int fd, char *buf, size_t cap, uint64_t deadline)
{
    size_t n = 0;
    while (n + 1 < cap && sd_tconn_wait(fd, POLLIN, deadline)) {
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
            return (ssize_t)n;
    }
    return -1;
}

const char *sd_tconn_get_path(const char *req, bool *head_only)
{
    *head_only = strncmp(req, "HEAD ", 5) == 0;
    return *head_only ? req + 5 : strncmp(req, "GET ", 4) == 0 ? req + 4 : NULL;
}

int sd_tconn_handshake(struct sd_tconn *c, uint64_t deadline)
{
    for (;;) {
        errno = 0;
        ERR_clear_error();
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1)
            return 0;
        int x = ssl_code(c, rc);
        if (x < 0)
            return x;
        if (!sd_tconn_wait(c->fd, c->want, deadline))
            return SD_TCONN_TIMEOUT;
    }
}

int sd_tconn_write_all(struct sd_tconn *c, const uint8_t *buf, size_t n, uint64_t deadline)
{
    size_t off = 0;

    while (off < n) {
        int w = sd_tconn_write(c, buf + off, n - off);
        if (w < 0)
            return w;
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (!sd_tconn_wait(c->fd, c->want, deadline))
            return SD_TCONN_TIMEOUT;
    }
    return 0;
}

int sd_tconn_sockaddr(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        *len = sizeof(*s6);
        return 0;
    }
    return SD_EINVAL;
}

const char *sd_tconn_code_name(int code)
{
    switch (code) {
    case SD_TCONN_EOF: return "eof";
    case SD_TCONN_RST: return "rst";
    case SD_TCONN_TIMEOUT: return "timeout";
    }
    return "error";
}
