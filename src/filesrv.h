/*
 * filesrv.h - a small HTTP/1.1 file server with ETags, the policy server of
 * the lab (`slowdown serve --files DIR`): GET or HEAD /NAME answers the file
 * DIR/NAME, with an ETag that is a hash of its bytes, and 304 Not Modified
 * when the request's If-None-Match names that ETag.
 *
 * Only plain files directly in DIR are served, and only names of
 * [A-Za-z0-9._-] that do not start with a dot, so no path leaves DIR. Files
 * are read afresh for each request, so editing a file is publishing it
 * (write a temporary file and rename it over the old one, so that no reader
 * ever sees half a file). One thread, one connection at a time, 2 s to send
 * a request, files up to 64 MiB: meant for a lab's or a test bed's few
 * nodes; a fleet's centre would put a real web server in front.
 */
#ifndef SD_FILESRV_H
#define SD_FILESRV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_filesrv;

/*
 * Listens on |addr| (a numeric IPv4 or IPv6 address, NULL for "::") and
 * |port| (0: any free port) and serves |dir|. NULL with a reason in |err|.
 */
struct sd_filesrv *sd_filesrv_open(const char *addr, uint16_t port, const char *dir, char *err, size_t errlen);

/* The port it listens on. */
uint16_t sd_filesrv_port(const struct sd_filesrv *s);

/* Serves until |stop_fd| becomes readable (a signalfd or an eventfd). 0, or SD_EIO. */
int sd_filesrv_run(struct sd_filesrv *s, int stop_fd);

/* Closes and frees. Accepts NULL. */
void sd_filesrv_free(struct sd_filesrv *s);

/* The ETag of |n| bytes at |p| (with its quotes) into |out|. */
void sd_filesrv_etag(const void *p, size_t n, char out[static 24]);

/* True when the If-None-Match value [v, v + n) names |etag| (a list, or "*"). */
bool sd_filesrv_etag_match(const char *v, size_t n, const char *etag);

/* The longest file name the server serves. */
#define SD_FILESRV_NAME_MAX 200

/* What a request head asks of the server (sd_filesrv_route). */
enum sd_filesrv_route {
    SD_FILESRV_BAD_METHOD, /* 405: neither GET nor HEAD */
    SD_FILESRV_NO_NAME,    /* 404: the path names no file the server may serve */
    SD_FILESRV_FILE,       /* the file |name|: 200, 304, or 404 when it cannot be read */
};

/*
 * Decides the answer to the NUL-terminated request head |req|, as read from
 * the network, without touching a socket or a file. |head_only| is set for
 * HEAD. For SD_FILESRV_FILE, |name| gets the file name (NUL-terminated; it
 * follows the name rules above) and |inm| the value of the first
 * If-None-Match header (a pointer into |req|, |inm_len| bytes, no line
 * break), or NULL; otherwise |inm| is NULL. A name that does not fit in
 * |namecap| bytes with its NUL is refused as SD_FILESRV_NO_NAME, never cut
 * to another name: SD_FILESRV_NAME_MAX + 1 bytes hold any.
 */
enum sd_filesrv_route sd_filesrv_route(const char *req, bool *head_only, char *name, size_t namecap, const char **inm,
                                       size_t *inm_len);

#endif
