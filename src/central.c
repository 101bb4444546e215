/*
 * central.c - policy sources behind URLs, polled with ETag (see central.h).
 *
 * Each source has three texts, each owned by one side:
 *
 *   pending  written by the poller (under the lock) when a 200 brought a body
 *            it had not seen; the main thread takes it
 *   taken    the main thread's candidate while it builds a policy
 *   text     in force: the last candidate that built (and the cache file)
 *
 * The poller remembers the last ETag and a hash of the last body it saw, so
 * an unchanged policy costs one 304 (or, from a server without ETags, one
 * 200 that is recognised and dropped), and a body the main thread refused is
 * not offered again until the centre changes it. Times in the status are
 * wall-clock (they are shown as Unix times); the poll period is measured on
 * the monotonic clock.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "central.h"
#include "siphash.h"

bool sd_central_is_url(const char *s)
{
    return s && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
}

/* ---- one GET ---- */

struct body {
    char *p;
    size_t len, cap;
    bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > SD_CENTRAL_MAX_TEXT) {
        b->too_big = true;
        return 0; /* curl fails the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return 0;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sd_http_result *r = arg;
    size_t n = size * nmemb;
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        const char *v = data + 5, *end = data + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
            end--;
        if ((size_t)(end - v) < sizeof(r->etag)) {
            memcpy(r->etag, v, (size_t)(end - v));
            r->etag[end - v] = '\0';
        }
    }
    return n;
}

int sd_http_get(const char *url, const char *etag, uint32_t timeout_s, struct sd_http_result *r)
{
    struct body b = {0};
    struct curl_slist *hdr = NULL;
    int rc = SD_EIO;

    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(r->error, sizeof(r->error), "cannot start libcurl");
        return SD_EIO;
    }
    if (etag && etag[0]) {
        char inm[SD_CENTRAL_ETAG_MAX + 20];
        snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
        hdr = curl_slist_append(hdr, inm);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(timeout_s ? timeout_s : 10));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)SD_MIN(timeout_s ? timeout_s : 10, 5u));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "slowdown/" SD_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (cc != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "%s", b.too_big ? "policy text over 16 MiB" : curl_easy_strerror(cc));
    } else if (r->status == 200) {
        r->body = b.p ? b.p : strdup("");
        r->len = b.len;
        b.p = NULL;
        rc = r->body ? 0 : SD_EIO;
    } else if (r->status == 304) {
        rc = 0;
    } else {
        snprintf(r->error, sizeof(r->error), "HTTP status %ld", r->status);
    }
    free(b.p);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return rc;
}

int sd_central_first_word(const char *p, size_t n, char *out, size_t cap)
{
    const char *end = p + n;
    while (p < end) {
        if (*p == '#') {
            while (p < end && *p != '\n')
                p++;
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        } else {
            const char *w = p;
            while (p < end && !(*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '#'))
                p++;
            if ((size_t)(p - w) >= cap)
                return SD_ERANGE;
            memcpy(out, w, (size_t)(p - w));
            out[p - w] = '\0';
            return 0;
        }
    }
    return SD_ENOENT;
}

/* ---- sources ---- */

struct source {
    char *url;
    char etag[SD_CENTRAL_ETAG_MAX]; /* poller: the last ETag with a 200 */
    uint64_t seen_hash;             /* poller: hash of the last body seen */
    bool seen;
    char *pending;                  /* lock */
    size_t pending_n;
    struct sd_central_status st;    /* lock */
    char *taken;                    /* main thread */
    size_t taken_n;
    char *text;                     /* main thread: in force */
    size_t text_n;
};

struct sd_central {
    struct sd_central_config cfg;
    struct source src[SD_CENTRAL_MAX_SOURCES];
    size_t n;
    pthread_mutex_t lock;
    int efd, stop_fd;
    pthread_t tid;
    bool started;
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t body_hash(const char *p, size_t n)
{
    static const uint8_t key[SD_SIPHASH_KEY_LEN] = "slowdown-central";
    return sd_siphash(key, p, n);
}

/* The cache file of |s|: the URL with every byte outside [A-Za-z0-9.-] as '_'. */
static void cache_path(const struct sd_central *c, const struct source *s, char *buf, size_t len)
{
    char name[200];
    size_t k = 0;
    for (const char *u = s->url; *u && k + 1 < sizeof(name); u++) {
        char ch = *u;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
                  ch == '-';
        if (!ok)
            ch = '_';
        name[k++] = ch;
    }
    name[k] = '\0';
    snprintf(buf, len, "%s/%s.%016llx", c->cfg.cache_dir, name,
             (unsigned long long)body_hash(s->url, strlen(s->url))); /* long URLs cut: the hash keeps them apart */
}

static void cache_write(const struct sd_central *c, const struct source *s)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    if (!c->cfg.cache_dir)
        return;
    cache_path(c, s, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    size_t w = fwrite(s->text, 1, s->text_n, f);
    if (fclose(f) != 0 || w != s->text_n || rename(tmp, path) < 0)
        unlink(tmp);
}

static char *cache_read(const struct sd_central *c, const struct source *s, size_t *n)
{
    char path[PATH_MAX];
    if (!c->cfg.cache_dir)
        return NULL;
    cache_path(c, s, path, sizeof(path));
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    struct body b = {0};
    char buf[8192];
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), f)) > 0)
        if (on_body(buf, 1, r, &b) != r)
            break;
    bool bad = ferror(f) || b.too_big;
    fclose(f);
    if (bad || !b.p) {
        free(b.p);
        return NULL;
    }
    *n = b.len;
    return b.p;
}

struct sd_central *sd_central_new(const struct sd_central_config *cfg, char *err, size_t errlen)
{
    struct sd_central *c = calloc(1, sizeof(*c));
    if (!c || cfg->n > SD_CENTRAL_MAX_SOURCES) {
        snprintf(err, errlen, c ? "too many policy URLs" : "out of memory");
        free(c);
        return NULL;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* before any thread of ours exists */
    c->cfg = *cfg;
    c->n = cfg->n;
    c->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->stop_fd = eventfd(0, EFD_CLOEXEC);
    pthread_mutex_init(&c->lock, NULL);
    bool ok = c->efd >= 0 && c->stop_fd >= 0;
    for (size_t i = 0; i < c->n && ok; i++) {
        if (!sd_central_is_url(cfg->urls[i])) {
            snprintf(err, errlen, "not an http:// or https:// URL: %s", cfg->urls[i]);
            sd_central_free(c);
            return NULL;
        }
        c->src[i].url = strdup(cfg->urls[i]);
        c->src[i].st.url = c->src[i].url;
        ok = c->src[i].url != NULL;
    }
    if (!ok) {
        snprintf(err, errlen, "out of memory");
        sd_central_free(c);
        return NULL;
    }
    return c;
}

static void wake(struct sd_central *c)
{
    uint64_t one = 1;
    ssize_t w = write(c->efd, &one, sizeof(one));
    (void)w;
}

/* Fetches source |s| once and records the outcome. Returns true when a new pending text was stored. */
static bool poll_source(struct sd_central *c, struct source *s, uint32_t timeout_s)
{
    struct sd_http_result r;
    int rc = sd_http_get(s->url, s->etag, timeout_s, &r);
    double now = wall_now();
    bool fresh = false;

    if (rc == 0 && r.body) {
        uint64_t h = body_hash(r.body, r.len);
        snprintf(s->etag, sizeof(s->etag), "%s", r.etag);
        fresh = !s->seen || h != s->seen_hash;
        s->seen = true;
        s->seen_hash = h;
    }
    pthread_mutex_lock(&c->lock);
    s->st.last_attempt = now;
    if (rc == 0) {
        s->st.up = true;
        s->st.last_success = now;
        s->st.error[0] = '\0';
        if (r.body)
            s->st.fetch_ok++;
        else
            s->st.fetch_not_modified++;
        if (fresh) {
            free(s->pending);
            s->pending = r.body;
            s->pending_n = r.len;
            r.body = NULL;
        }
    } else {
        s->st.up = false;
        s->st.fetch_errors++;
        snprintf(s->st.error, sizeof(s->st.error), "%s", r.error);
    }
    pthread_mutex_unlock(&c->lock);
    free(r.body);
    return fresh;
}

int sd_central_fetch_now(struct sd_central *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->n; i++) {
        struct source *s = &c->src[i];
        /* At start a slow centre gets more time than a poll does: there is nothing to fall back on yet. */
        if (poll_source(c, s, SD_MAX(c->cfg.timeout_s, 10u)) || s->text)
            continue;
        size_t n = 0;
        char *t = cache_read(c, s, &n);
        pthread_mutex_lock(&c->lock);
        bool have = s->pending != NULL;
        if (!have && t) {
            s->pending = t;
            s->pending_n = n;
            s->st.from_cache = true;
            t = NULL;
            have = true;
        }
        pthread_mutex_unlock(&c->lock);
        free(t);
        if (!have) {
            snprintf(err, errlen, "cannot fetch %s: %s%s", s->url, s->st.error[0] ? s->st.error : "no text",
                     c->cfg.cache_dir ? " (and nothing cached)" : "");
            return SD_EIO;
        }
    }
    wake(c);
    return 0;
}

static void *poller_main(void *arg)
{
    struct sd_central *c = arg;
    int period_ms = (int)(c->cfg.interval_s ? c->cfg.interval_s : 30) * 1000;
    for (;;) {
        struct pollfd p = {c->stop_fd, POLLIN, 0};
        int rc = poll(&p, 1, period_ms);
        if (rc < 0 && errno == EINTR)
            continue; /* a signal is no reason to stop polling for good */
        if (rc != 0)
            break; /* stop (or a failed poll: stop rather than spin) */
        bool fresh = false;
        for (size_t i = 0; i < c->n; i++)
            fresh |= poll_source(c, &c->src[i], c->cfg.timeout_s);
        if (fresh)
            wake(c);
    }
    return NULL;
}

int sd_central_start(struct sd_central *c)
{
    if (pthread_create(&c->tid, NULL, poller_main, c) != 0)
        return SD_EIO;
    c->started = true;
    return 0;
}

int sd_central_fd(const struct sd_central *c)
{
    return c->efd;
}

bool sd_central_take(struct sd_central *c)
{
    uint64_t v;
    bool any = false;
    ssize_t r = read(c->efd, &v, sizeof(v)); /* clears it; EAGAIN when nothing was signalled */
    (void)r;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        struct source *s = &c->src[i];
        if (!s->pending)
            continue;
        free(s->taken);
        s->taken = s->pending;
        s->taken_n = s->pending_n;
        s->pending = NULL;
        any = true;
    }
    pthread_mutex_unlock(&c->lock);
    return any;
}

int sd_central_text(const struct sd_central *c, const char *url, const char **p, size_t *n)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct source *s = &c->src[i];
        if (strcmp(s->url, url) != 0)
            continue;
        if (s->taken) {
            *p = s->taken;
            *n = s->taken_n;
            return 0;
        }
        if (s->text) {
            *p = s->text;
            *n = s->text_n;
            return 0;
        }
        return SD_ENOENT;
    }
    return SD_ENOENT;
}

void sd_central_commit(struct sd_central *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct source *s = &c->src[i];
        if (!s->taken)
            continue;
        free(s->text);
        s->text = s->taken;
        s->text_n = s->taken_n;
        s->taken = NULL;
        cache_write(c, s);
        pthread_mutex_lock(&c->lock);
        s->st.have = true;
        pthread_mutex_unlock(&c->lock);
    }
}

void sd_central_reject(struct sd_central *c)
{
    for (size_t i = 0; i < c->n; i++) {
        struct source *s = &c->src[i];
        if (!s->taken)
            continue;
        free(s->taken);
        s->taken = NULL;
        pthread_mutex_lock(&c->lock);
        s->st.invalid++;
        pthread_mutex_unlock(&c->lock);
    }
}

size_t sd_central_status(struct sd_central *c, struct sd_central_status *out, size_t max)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n && i < max; i++)
        out[i] = c->src[i].st;
    pthread_mutex_unlock(&c->lock);
    return c->n;
}

void sd_central_free(struct sd_central *c)
{
    uint64_t one = 1;
    if (!c)
        return;
    if (c->started) {
        ssize_t w = write(c->stop_fd, &one, sizeof(one));
        (void)w;
        pthread_join(c->tid, NULL);
    }
    for (size_t i = 0; i < SD_CENTRAL_MAX_SOURCES; i++) {
        free(c->src[i].url);
        free(c->src[i].pending);
        free(c->src[i].taken);
        free(c->src[i].text);
    }
    if (c->efd >= 0)
        close(c->efd);
    if (c->stop_fd >= 0)
        close(c->stop_fd);
    pthread_mutex_destroy(&c->lock);
    free(c);
}
