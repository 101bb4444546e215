/*
 * fuzz_http_servers.c - the request routing of slowdown's two small HTTP
 * servers on arbitrary request heads: sd_filesrv_route() (the lab's policy
 * server: method, file name, If-None-Match) and sd_metrics_route() (the
 * Prometheus listener), and sd_filesrv_etag_match() on the If-None-Match
 * value found and on the raw bytes.
 *
 * One target for both: each server gets the same thing, a NUL-terminated
 * head of at most REQ_MAX - 1 bytes from sd_tconn_read_head(), so one corpus
 * of request heads serves both, and their common rules (GET or HEAD, the
 * HEAD flag) are checked against each other.
 *
 * Besides memory safety (the head is copied to an allocation of its exact
 * size, names are written to buffers of the exact size they need) it checks
 * what the servers rely on: a name to serve follows the name rules (1 to
 * SD_FILESRV_NAME_MAX bytes of [A-Za-z0-9._-], no leading dot, so no '/'
 * and no way out of the directory) and is the whole first path segment, not
 * a cut of it; a name too long for the caller's buffer is refused; the
 * If-None-Match value lies inside the head, holds no line break and is the
 * value of the first such header line before the empty line that ends the head; the routes agree with a naive model
 * written from the rules; and sd_filesrv_etag_match agrees with a model that
 * splits the list at commas.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "filesrv.h"
#include "metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* filesrv.c's and metrics.c's REQ_MAX: the buffer sd_tconn_read_head() fills, its NUL included. */
enum { REQ_MAX = 4096, NAME_CAP = SD_FILESRV_NAME_MAX + 1 };

static const char name_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";

/* The If-None-Match model: a comma-separated list of "*", TAG or W/TAG, blanks around each. */
static bool model_match(const char *v, size_t n, const char *etag)
{
    size_t el = strlen(etag);
    const char *end = v + n;
    for (const char *p = v; p <= end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *a = p, *b = comma ? comma : end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        size_t k = (size_t)(b - a);
        if ((k == 1 && *a == '*') || (k == el && !memcmp(a, etag, el)) ||
            (k == el + 2 && !memcmp(a, "W/", 2) && !memcmp(a + 2, etag, el)))
            return true;
        if (!comma)
            break;
        p = comma + 1;
    }
    return false;
}

static void check_match(const char *v, size_t n, const char *etag)
{
    bool m = sd_filesrv_etag_match(v, n, etag);
    if (m != model_match(v, n, etag))
        abort();
    /* Whatever comes before it, a list that ends in the ETag names it. */
    size_t el = strlen(etag);
    char *w = malloc(n + 1 + el);
    if (!w)
        return;
    if (n)
        memcpy(w, v, n);
    w[n] = ',';
    memcpy(w + n + 1, etag, el);
    if (!sd_filesrv_etag_match(w, n + 1 + el, etag))
        abort();
    free(w);
}

static void check_filesrv(const char *req, size_t len, bool get_or_head, bool is_head, const char *etag)
{
    char name[NAME_CAP];
    const char *inm;
    size_t inm_len;
    bool head_only;
    enum sd_filesrv_route r = sd_filesrv_route(req, &head_only, name, sizeof(name), &inm, &inm_len);

    if (head_only != is_head || (r == SD_FILESRV_BAD_METHOD) != !get_or_head)
        abort();
    if (r != SD_FILESRV_FILE) {
        if (r != SD_FILESRV_BAD_METHOD && r != SD_FILESRV_NO_NAME)
            abort();
        if (inm || inm_len)
            abort();
    }
    if (!get_or_head)
        return;

    /* The model: "/" then the first path segment, which is a name by the rules. */
    const char *path = req + (is_head ? 5 : 4);
    size_t seg = path[0] == '/' ? strcspn(path + 1, " ?\r\n") : 0;
    bool want = seg >= 1 && seg <= SD_FILESRV_NAME_MAX && path[1] != '.' && strspn(path + 1, name_chars) >= seg;
    if ((r == SD_FILESRV_FILE) != want)
        abort();
    if (r != SD_FILESRV_FILE)
        return;

    size_t nl = strnlen(name, sizeof(name));
    if (nl != seg || memcmp(name, path + 1, nl) != 0 || name[0] == '.' || strchr(name, '/') ||
        strspn(name, name_chars) != nl)
        abort();

    /* The first line after the request line that starts with the header's name, any case, before
     * the empty line that ends the head. */
    const char *line = NULL;
    for (const char *l = strchr(req, '\n'); l && !line; l = strchr(l + 1, '\n')) {
        if (l[1] == '\n' || (l[1] == '\r' && l[2] == '\n'))
            break;
        if (strncasecmp(l + 1, "If-None-Match:", 14) == 0)
            line = l + 1;
    }
    if (!line != !inm)
        abort();
    if (inm) {
        const char *v = line + 14;
        v += strspn(v, " \t");
        if (inm != v || inm_len != strcspn(v, "\r\n") || inm + inm_len > req + len)
            abort();
        check_match(inm, inm_len, etag);
    }

    /* A buffer just big enough gives the same name; one byte less, a refusal, never a cut name. */
    char *exact = malloc(nl + 1);
    const char *inm2;
    size_t inm2_len;
    bool h2;
    if (!exact)
        return;
    if (sd_filesrv_route(req, &h2, exact, nl + 1, &inm2, &inm2_len) != SD_FILESRV_FILE || strcmp(exact, name) ||
        inm2 != inm || inm2_len != inm_len || h2 != head_only)
        abort();
    if (sd_filesrv_route(req, &h2, exact, nl, &inm2, &inm2_len) != SD_FILESRV_NO_NAME || inm2)
        abort();
    free(exact);
}

static void check_metrics(const char *req, bool get_or_head, bool is_head)
{
    bool head_only;
    enum sd_metrics_route r = sd_metrics_route(req, &head_only);
    if (head_only != is_head)
        abort();
    enum sd_metrics_route want = SD_METRICS_BAD_METHOD;
    if (get_or_head) {
        const char *path = req + (is_head ? 5 : 4);
        if (strncmp(path, "/metrics", 8) == 0 && (path[8] == ' ' || path[8] == '?'))
            want = SD_METRICS_EXPOSITION;
        else if (path[0] == '/' && path[1] == ' ')
            want = SD_METRICS_INDEX;
        else
            want = SD_METRICS_NOT_FOUND;
    }
    if (r != want)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char etag[24];
    sd_filesrv_etag("", 0, etag); /* the ETag of an empty file: the seeds name it */

    size_t n = size < REQ_MAX - 1 ? size : REQ_MAX - 1;
    char *req = malloc(n + 1);
    if (!req)
        return 0;
    if (n)
        memcpy(req, data, n);
    req[n] = '\0';
    size_t len = strlen(req); /* the servers see the head up to its first NUL */
    bool is_head = strncmp(req, "HEAD ", 5) == 0, get_or_head = is_head || strncmp(req, "GET ", 4) == 0;

    check_filesrv(req, len, get_or_head, is_head, etag);
    check_metrics(req, get_or_head, is_head);
    free(req);

    /* The list parser alone, on bytes that no header line would carry (NULs, line breaks). */
    char *raw = malloc(size ? size : 1);
    if (!raw)
        return 0;
    if (size)
        memcpy(raw, data, size);
    check_match(raw, size, etag);
    free(raw);
    return 0;
}
