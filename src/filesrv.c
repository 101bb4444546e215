/*
 * filesrv.c - the lab's policy server: files of one directory over HTTP,
 * with ETags (see filesrv.h).
 *
 *   accept -> read the request head (2 s, 4 KiB) -> method, path, name
 *   allowed?, If-None-Match -> file readable? -> ETag of its bytes ->
 *   304 if the client has it, else 200 with the bytes -> close
 *
 * The steps up to the file are sd_filesrv_route(), a function of the head's
 * bytes alone, so that the fuzzer and the unit tests reach all of the
 * parsing of what the network sent without a socket or a directory.
 *
 * The ETag is a strong validator derived from the content (SipHash-2-4 under
 * a fixed key, 16 hex digits in quotes), not from the modification time, so
 * two servers with the same file give the same ETag and a rewrite with equal
 * bytes is no change.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "filesrv.h"
#include "mono.h"
#include "siphash.h"
#include "tconn.h"
#include "waitfd.h"

enum { REQ_MAX = 4096, REQ_WAIT_MS = 2000, FILE_MAX = 64 << 20 };

struct sd_filesrv {
    int fd;
    uint16_t port;
    char dir[1024];
};

void sd_filesrv_etag(const void *p, size_t n, char out[static 24])
{
    static const uint8_t key[SD_SIPHASH_KEY_LEN] = "slowdown-filesrv";
    snprintf(out, 24, "\"%016llx\"", (unsigned long long)sd_siphash24(key, p, n));
}

bool sd_filesrv_etag_match(const char *v, size_t n, const char *etag)
{
    size_t el = strlen(etag), i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t stop = i;
        while (stop > start && (v[stop - 1] == ' ' || v[stop - 1] == '\t'))
            stop--;
        const char *tag = v + start;
        size_t tn = stop - start;
        /* cppcheck 2.10 takes tn for 0 here (it does not follow the two index loops); " * " tests it. */
        // cppcheck-suppress knownConditionTrueFalse
        if (tn == 1 && tag[0] == '*')
            return true;
        // cppcheck-suppress knownConditionTrueFalse
        if (tn > 2 && tag[0] == 'W' && tag[1] == '/') {
            tag += 2; /* a weak comparison is what If-None-Match asks for */
            tn -= 2;
        }
        if (tn == el && memcmp(tag, etag, el) == 0)
            return true;
    }
    return false;
}

static bool name_ok(const char *p, size_t n)
{
    if (n == 0 || n > SD_FILESRV_NAME_MAX || p[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return false;
    }
    return true;
}

/* Reads DIR/name into a malloc'd buffer. NULL when it is not a readable plain file (or too large). */
static char *read_file(const struct sd_filesrv *s, const char *name, size_t *len)
{
    char path[1300];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= FILE_MAX) {
        buf = malloc((size_t)st.st_size + 1);
        if (buf && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)st.st_size;
    }
    fclose(f);
    return buf;
}

/* The value of header |name| (with its colon) in the request head, or NULL; |n| gets its length.
 * The head ends at its first empty line: what a client sent after it (a body, the next request)
 * holds no header of this request. */
static const char *header(const char *head, const char *name, size_t *n)
{
    size_t k = strlen(name);
    for (const char *l = strchr(head, '\n'); l; l = strchr(l, '\n')) {
        l++;
        if (*l == '\n' || (*l == '\r' && l[1] == '\n'))
            return NULL;
        if (strncasecmp(l, name, k) != 0)
            continue;
        const char *v = l + k;
        while (*v == ' ' || *v == '\t')
            v++;
        const char *e = v + strcspn(v, "\r\n");
        *n = (size_t)(e - v);
        return v;
    }
    return NULL;
}

static void reply(int fd, const char *status, const char *etag, const char *body, size_t len, bool head_only)
{
    char h[320];
    int n = snprintf(h, sizeof(h), "HTTP/1.1 %s\r\n%s%s%sContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n", status,
                     etag ? "ETag: " : "", etag ? etag : "", etag ? "\r\n" : "", len);
    struct sd_tconn c = {.fd = fd};
    uint64_t deadline = sd_mono_ns() + 10ULL * SD_NS_PER_S;
    if (sd_tconn_write_all(&c, (const uint8_t *)h, (size_t)n, deadline) == 0 && !head_only && len)
        sd_tconn_write_all(&c, (const uint8_t *)body, len, deadline);
}

enum sd_filesrv_route sd_filesrv_route(const char *req, bool *head_only, char *name, size_t namecap, const char **inm,
                                       size_t *inm_len)
{
    *inm = NULL;
    *inm_len = 0;
    const char *path = sd_tconn_get_path(req, head_only);
    if (!path)
        return SD_FILESRV_BAD_METHOD;
    size_t pn = strcspn(path, " ?\r\n");
    /* A name cut to fit |name| would be another file: refused instead. */
    if (pn < 2 || path[0] != '/' || !name_ok(path + 1, pn - 1) || pn - 1 >= namecap)
        return SD_FILESRV_NO_NAME;
    memcpy(name, path + 1, pn - 1);
    name[pn - 1] = '\0';
    *inm = header(req, "If-None-Match:", inm_len);
    return SD_FILESRV_FILE;
}

static void answer(const struct sd_filesrv *s, int fd)
{
    char req[REQ_MAX], name[SD_FILESRV_NAME_MAX + 1], etag[24];
    const char *inm;
    size_t len = 0, vn;
    bool head_only;
    if (sd_tconn_read_head(fd, req, sizeof(req), sd_mono_ns() + (uint64_t)REQ_WAIT_MS * SD_NS_PER_MS) < 0)
        return;
    enum sd_filesrv_route r = sd_filesrv_route(req, &head_only, name, sizeof(name), &inm, &vn);
    if (r == SD_FILESRV_BAD_METHOD) {
        reply(fd, "405 Method Not Allowed", NULL, "GET or HEAD\n", 12, false);
        return;
    }
    char *body = r == SD_FILESRV_FILE ? read_file(s, name, &len) : NULL;
    if (!body) {
        reply(fd, "404 Not Found", NULL, "not found\n", 10, head_only);
        return;
    }
    sd_filesrv_etag(body, len, etag);
    if (inm && sd_filesrv_etag_match(inm, vn, etag))
        reply(fd, "304 Not Modified", etag, NULL, 0, true);
    else
        reply(fd, "200 OK", etag, body, len, head_only);
    free(body);
}

struct sd_filesrv *sd_filesrv_open(const char *addr, uint16_t port, const char *dir, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    struct stat st;
    int one = 1;

    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "%s: not a directory", dir);
        return NULL;
    }
    if (sd_tconn_sockaddr(addr ? addr : "::", port, &ss, &sl) < 0) {
        snprintf(err, errlen, "bad address '%s'", addr);
        return NULL;
    }
    struct sd_filesrv *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s->fd < 0 || setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(s->fd, (struct sockaddr *)&ss, sl) < 0 || listen(s->fd, 64) < 0) {
        snprintf(err, errlen, "cannot listen on port %u: %s", port, strerror(errno));
        sd_filesrv_free(s);
        return NULL;
    }
    sl = sizeof(ss);
    getsockname(s->fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    return s;
}

uint16_t sd_filesrv_port(const struct sd_filesrv *s)
{
    return s->port;
}

int sd_filesrv_run(struct sd_filesrv *s, int stop_fd)
{
    for (;;) {
        int w = sd_wait_in(s->fd, stop_fd, -1);
        if (w <= SD_WAIT_STOP)
            return w;
        if (w != SD_WAIT_READY)
            continue;
        int c = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c < 0)
            continue;
        answer(s, c);
        close(c);
    }
}

void sd_filesrv_free(struct sd_filesrv *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}
