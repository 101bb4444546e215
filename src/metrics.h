/*
 * metrics.h - what a running censor counts, in the Prometheus text
 * exposition format (version 0.0.4), and the small HTTP listener that
 * serves it (`slowdown run --metrics ADDR:PORT`, GET /metrics).
 *
 * Three layers, each usable alone:
 *   sd_prom_*           writing the format: families (# HELP, # TYPE) and
 *                       samples with escaped label values, into a growable
 *                       buffer (scrapes allocate; packets never do);
 *   sd_metrics_render   every metric of `slowdown run` from one snapshot
 *                       struct (struct sd_metrics_in), so the exposition is
 *                       a pure function that tests check line by line;
 *   sd_metrics_server   a thread that accepts one connection at a time,
 *                       asks its collect callback for a fresh exposition and
 *                       answers; it never touches the engines itself.
 */
#ifndef SD_METRICS_H
#define SD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_inline_stats;
struct sd_inline_rule;
struct sd_central_status;

/* A growable text buffer; |oom| is set (and text dropped) if it could not grow. */
struct sd_prom {
    char *p;
    size_t len, cap;
    bool oom;
};

/* Empties |b| (keeps its memory). */
void sd_prom_reset(struct sd_prom *b);
/* Frees |b|'s memory. */
void sd_prom_free(struct sd_prom *b);
/* Appends printf-style text. */
void sd_prom_printf(struct sd_prom *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Starts a metric family: "# HELP name help" and "# TYPE name type" (counter, gauge). */
void sd_prom_family(struct sd_prom *b, const char *name, const char *type, const char *help);
/*
 * One sample line: name{l1="v1",...} value. |labels| is NULL or a
 * NULL-terminated list of label name, value pairs; values are escaped as the
 * format says (backslash, double quote, line feed).
 */
void sd_prom_u64(struct sd_prom *b, const char *name, const char *const *labels, uint64_t v);
void sd_prom_f64(struct sd_prom *b, const char *name, const char *const *labels, double v);

/* The kernel's counters of one NFQUEUE (/proc/net/netfilter/nfnetlink_queue). */
struct sd_queue_stats {
    uint16_t queue;
    uint32_t waiting;         /* packets in the queue now */
    uint64_t dropped;         /* queue full (accepted unseen when fail-open, else dropped) */
    uint64_t user_dropped;    /* netlink socket full */
};

/*
 * Parses the text of /proc/net/netfilter/nfnetlink_queue ([p, end)) and
 * fills |out| with the lines of queues |first| .. |first| + |n| - 1, in
 * queue order. Returns how many of them were found (0 .. n).
 */
size_t sd_metrics_parse_nfqueue(const char *p, const char *end, uint16_t first, size_t n,
                                struct sd_queue_stats *out);

/* A snapshot of everything `slowdown run` exposes. */
struct sd_metrics_in {
    const struct sd_inline_stats *st;       /* summed over the workers */
    const struct sd_inline_rule *rules;     /* per rule (sd_inline_get_rule_stats), [0] = no rule */
    size_t n_rules;
    const struct sd_queue_stats *queues;    /* kernel queue counters */
    size_t n_queues;
    const char *policy_name;                /* the policy in force */
    uint64_t policy_generation;             /* 1 at start, +1 per policy swap */
    double policy_loaded_at;                /* Unix time of the last swap */
    uint64_t reloads_ok, reloads_failed;    /* swaps, and new policies refused (invalid, unfetchable) */
    const struct sd_central_status *sources;/* central policy sources (URLs), may be NULL */
    size_t n_sources;
    double start_time;                      /* Unix time the censor started */
};

/* Appends the whole exposition of |in| to |b|. */
void sd_metrics_render(struct sd_prom *b, const struct sd_metrics_in *in);

/* Fills |b| with a fresh exposition; called from the listener's thread. */
typedef void (*sd_metrics_collect_fn)(void *arg, struct sd_prom *b);

struct sd_metrics_server;

/*
 * Listens on |addr| ("127.0.0.1:9469", "[::1]:9469", port 0 for any) and
 * serves GET /metrics from a thread of its own until stopped. NULL with a
 * reason in |err| (bad address, port in use).
 */
struct sd_metrics_server *sd_metrics_server_start(const char *addr, sd_metrics_collect_fn collect, void *arg,
                                                  char *err, size_t errlen);

/* The port it listens on (useful with port 0). */
uint16_t sd_metrics_server_port(const struct sd_metrics_server *s);

/* Stops the thread, closes the socket, frees. Accepts NULL. */
void sd_metrics_server_stop(struct sd_metrics_server *s);

/* What a request head asks of the listener (sd_metrics_route). */
enum sd_metrics_route {
    SD_METRICS_EXPOSITION, /* 200: /metrics (a query string is ignored) */
    SD_METRICS_INDEX,      /* 200: "/", a line that points to /metrics */
    SD_METRICS_NOT_FOUND,  /* 404: any other path */
    SD_METRICS_BAD_METHOD, /* 405: neither GET nor HEAD */
};

/*
 * Decides the answer to the NUL-terminated request head |req|, as read from
 * the network, without a socket; |head_only| is set for HEAD.
 */
enum sd_metrics_route sd_metrics_route(const char *req, bool *head_only);

/* Splits "host:port" / "[v6]:port" into |host| and |port|. 0 or SD_EINVAL. */
int sd_metrics_split_addr(const char *text, char *host, size_t hostlen, uint16_t *port);

#endif
