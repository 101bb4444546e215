/*
 * central.h - central policy: policy sources given as http:// or https://
 * URLs, fetched with libcurl and polled with ETag (If-None-Match), so that
 * one change on a policy server reaches every node within a poll period.
 *
 * The fetching side and the using side never share a text being used:
 *
 *   poller thread:  GET (If-None-Match: last ETag) -> 304: nothing new
 *                   -> 200: body differs from the last body seen? keep it as
 *                      the source's pending text, wake the main thread
 *                   -> error: the source is down (the text in force stays)
 *   main thread:    sd_central_take -> build the policy from the taken texts
 *                   (the same validation as a file) -> sd_central_commit
 *                   (they are now in force) or sd_central_reject (they are
 *                   dropped; the same body is not offered again)
 *
 * A node whose centre cannot be reached keeps its last good policy and says
 * so through the status (up = false, stale = true in the metrics). With a
 * cache directory, each text in force is also kept on disk, so a node that
 * restarts while its centre is down starts with its last good policy.
 *
 * Presets and the timeline travel the same way: `--preset URL` takes the
 * preset name from the fetched text, `--at URL` the time (the first word
 * that is not a # comment), so one edit on the server moves every node to
 * another preset or another moment of the timeline.
 */
#ifndef SD_CENTRAL_H
#define SD_CENTRAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum {
    SD_CENTRAL_MAX_SOURCES = 10, /* 8 policy files, a preset and a time */
    SD_CENTRAL_MAX_TEXT = 16 << 20,
    SD_CENTRAL_ETAG_MAX = 256,
};

/* True when |s| is an http:// or https:// URL (a central source, not a file). */
bool sd_central_is_url(const char *s);

/* What one HTTP GET returned. */
struct sd_http_result {
    long status;                     /* HTTP status, 0 when no answer came */
    char *body;                      /* malloc'd, NUL-terminated (200 only), or NULL */
    size_t len;
    char etag[SD_CENTRAL_ETAG_MAX];  /* the ETag header as sent (quotes kept), or "" */
    char error[160];                 /* why it failed, when it did */
};

/*
 * One GET of |url| with If-None-Match: |etag| (NULL or "" for none),
 * following no redirects, within |timeout_s| seconds, refusing bodies over
 * SD_CENTRAL_MAX_TEXT. Returns 0 for a 200 (|r->body| filled; free it) or a
 * 304, SD_EIO when no usable answer came (connection refused, timeout, any
 * other status; |r->error| says which).
 */
int sd_http_get(const char *url, const char *etag, uint32_t timeout_s, struct sd_http_result *r);

/* Takes the first word of |p|..|p|+|n| that is not in a # comment into |out|
 * (NUL-terminated). 0, SD_ENOENT (none), SD_ERANGE (longer than |cap| - 1). */
int sd_central_first_word(const char *p, size_t n, char *out, size_t cap);

/* The state of one source, for the metrics and the log. */
struct sd_central_status {
    const char *url;
    bool have;                       /* a text is in force */
    bool up;                         /* the last fetch got an answer (200 or 304) */
    bool from_cache;                 /* the text in force came from the cache at start */
    uint64_t fetch_ok, fetch_not_modified, fetch_errors, invalid;
    double last_success, last_attempt; /* Unix times, 0 for never */
    char error[160];                 /* the last fetch error, "" after a success */
};

struct sd_central_config {
    const char *urls[SD_CENTRAL_MAX_SOURCES];
    size_t n;
    uint32_t interval_s;             /* poll period (0: 30) */
    uint32_t timeout_s;              /* per fetch (0: 10) */
    const char *cache_dir;           /* NULL: no cache */
};

struct sd_central;

/* Makes the sources (no fetch yet). NULL when out of memory or on a bad URL (|err|). */
struct sd_central *sd_central_new(const struct sd_central_config *cfg, char *err, size_t errlen);

/*
 * Fetches every source once, now, in this thread (start-up). A source that
 * cannot be fetched falls back to its cached text if there is one. Returns 0
 * when every source has a text to offer (sd_central_take), SD_EIO otherwise
 * (|err| names the first source that has none, and why).
 */
int sd_central_fetch_now(struct sd_central *c, char *err, size_t errlen);

/* Starts the poller thread. 0 or SD_EIO. */
int sd_central_start(struct sd_central *c);

/* A descriptor that is readable when pending texts wait (poll it; take
 * clears it). */
int sd_central_fd(const struct sd_central *c);

/* Moves the pending texts to the main thread's side. Returns true when there
 * was at least one. */
bool sd_central_take(struct sd_central *c);

/* The text to build with for |url|: the taken one, else the one in force.
 * 0, or SD_ENOENT (no such source, or no text yet). Valid until commit,
 * reject or free. */
int sd_central_text(const struct sd_central *c, const char *url, const char **p, size_t *n);

/* The taken texts built a good policy: they are now in force (and cached). */
void sd_central_commit(struct sd_central *c);

/* The taken texts did not build: they are dropped and counted invalid. */
void sd_central_reject(struct sd_central *c);

/* Copies the status of each source into |out| (at most |max|); returns how many there are. */
size_t sd_central_status(struct sd_central *c, struct sd_central_status *out, size_t max);

/* Stops the poller and frees. Accepts NULL. */
void sd_central_free(struct sd_central *c);

#endif
