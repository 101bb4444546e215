/*
 * detect.h - the throttling detector: does the path to a `slowdown serve`
 * throttle or block a name? One run of paired, concurrent measurements
 * (spec 3.1 and 3.5, after XUE21 and Wehe):
 *
 *   A  real TLS with the target name in the SNI          (TLS port)
 *   B  real TLS with an innocuous name of the same length (TLS port)
 *   C  A's ClientHello and request with every byte inverted (plain port)
 *
 * in each direction asked for, all six connections at once so that they
 * share the path's conditions (a policer acts per flow, a shaper or
 * congestion on all of them). Each transfer is binned into a goodput series
 * with TCP_INFO samples; the steady part after a warm-up is compared with
 * the controls (ratio, KS test) and its shape names the mechanism
 * (stats.h). The verdict per direction is one of
 *
 *   throttled      A is slower than the control by 10x or more (KS-significant),
 *                  with a rate estimate and the kind: policing, shaping, loss
 *   blocked        A never completed or stopped for good: rst, handshake
 *                  timeout, connect failure, or freeze after N bytes
 *   not_throttled  A is not slower than the controls by the margin
 *   inconclusive   no usable control, or a difference inside the gray zone
 *
 * The thresholds and their reasons are in man/slowdown-detect.1.
 */
#ifndef SD_DETECT_H
#define SD_DETECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch.h"
#include "stats.h"

enum sd_detect_role { SD_DETECT_A = 0, SD_DETECT_B = 1, SD_DETECT_C = 2, SD_DETECT_ROLES = 3 };

enum sd_detect_verdict {
    SD_VERDICT_NOT_THROTTLED = 0,
    SD_VERDICT_THROTTLED = 1,
    SD_VERDICT_BLOCKED = 2,
    SD_VERDICT_INCONCLUSIVE = 3,
};

/* The kind of a verdict, and how a single flow failed (NONE: it flowed). */
enum sd_detect_kind {
    SD_KIND_NONE = 0,
    SD_KIND_POLICING = 1,   /* throttled: a plateau kept by drops */
    SD_KIND_SHAPING = 2,    /* throttled: a plateau kept by a queue */
    SD_KIND_LOSS = 3,       /* throttled: no plateau (random loss, yt24) */
    SD_KIND_LIMITED = 4,    /* throttled: a plateau whose mechanism could not be told */
    SD_KIND_RST = 5,        /* blocked: the connection was reset */
    SD_KIND_HS_TIMEOUT = 6, /* blocked: the TLS handshake never completed */
    SD_KIND_CONNECT = 7,    /* blocked: the TCP connection was not established */
    SD_KIND_FREEZE = 8,     /* blocked: data stopped for good after some bytes */
    SD_KIND_ERROR = 9,      /* blocked: another failure (TLS alert, protocol error) */
};

/* Whom a verdict concerns, by what the controls showed. */
enum sd_detect_scope {
    SD_SCOPE_NONE = 0,
    SD_SCOPE_NAME = 1, /* A alone: the name is the trigger */
    SD_SCOPE_TLS = 2,  /* A and B alike, C not: TLS to this server, whatever the name */
    SD_SCOPE_ALL = 3,  /* every flow, the inverted one too: the address or the path */
};

struct sd_detect_config {
    const char *addr;       /* the slowdown serve: a numeric IPv4 or IPv6 address */
    uint16_t tls_port;      /* 0: 443 */
    uint16_t plain_port;    /* the inverted control's port; 0: 80 */
    bool no_inverted;       /* leave control C out */
    const char *bind_addr;  /* source address, or NULL */
    const char *name;       /* the name under test */
    const char *control;    /* B's name; NULL: made up by sd_detect_control_name */
    bool down, up;          /* directions; neither means both */
    uint64_t seconds_ns;    /* transfer per flow; 0: 12 s */
    uint64_t warmup_ns;     /* left out of the steady window; 0: 3 s */
    uint64_t bin_ns;        /* series bin; 0: 10 ms */
    uint64_t max_kbps;      /* cap on every flow, kbit/s of payload; 0: 200 Mbit/s; SD_DETECT_UNCAPPED: none */
    uint64_t seed;          /* letters of the made-up control */
    bool no_prime;          /* skip the 1 s warm-up connection before the measurement */
};

struct sd_detect_flow {
    bool used;                /* measured (C is left out with no_inverted) */
    int rc;                   /* sd_fetch_run's return (< 0: a local failure, see r.detail) */
    struct sd_fetch_result r;
    uint64_t *bins;           /* bytes per bin (storage of the result) */
    struct sd_fetch_tcp *tcp; /* TCP_INFO per bin */
    uint32_t *rtt_us, *lost, *segs; /* the series' RTT, loss and segment columns, taken from tcp */
    uint32_t n;               /* bins of the transfer (transfer_ns / bin_ns, capped) */
    bool lost_is_ooo;         /* lost counts out-of-order arrivals (downloads), not retransmissions */
    uint8_t fail;             /* enum sd_detect_kind: NONE when data flowed to the end */
    uint64_t fail_bytes;      /* payload bytes before a freeze or reset (TCP level when known) */
    struct sd_series_stats st;
    int mech;                 /* enum sd_mechanism of the series */
};

struct sd_detect_dir {
    bool measured;
    uint8_t dir;              /* enum sd_fetch_dir */
    struct sd_detect_flow f[SD_DETECT_ROLES];
    /* The judgement (sd_detect_judge). */
    uint8_t verdict, kind, scope;
    int control;              /* the reference: the slower flowing control, -1 none */
    double kbps, control_kbps;        /* steady goodput of A and of the reference */
    double b_kbps, inverted_kbps;     /* of B and of C */
    double ratio;                     /* A / reference; -1 when undefined */
    double ratio_b, ratio_inverted;   /* A / B and A / C; -1 when undefined */
    struct sd_ks ks;                  /* A's windows against the reference's */
    double rate_estimate_kbps;        /* L3 rate (IP bytes) of a throttled flow; -1 none */
    char evidence[512];               /* readable reasons, "; "-separated */
};

struct sd_detect_result {
    char name[256], control[256];
    uint64_t bin_ns, warmup_ns, seconds_ns;
    bool ipv6;
    double duration_s;        /* wall time of the measurement */
    struct sd_detect_dir d[2];/* [SD_FETCH_DOWN], [SD_FETCH_UP] */
    void *storage;            /* the series' memory (sd_detect_result_free) */
};

enum {
    SD_DETECT_NAME_MAX = 253,
    SD_DETECT_MAX_BINS = 4096, /* bins per series: longer runs get wider bins */
    SD_DETECT_MAX_PARALLEL = 64,
    SD_DETECT_DEFAULT_MAX_KBPS = 200000,
};

#define SD_DETECT_UNCAPPED UINT64_MAX

/*
 * Writes into |out| (capacity |cap|) an innocuous name of the same length
 * and shape as |name|: every letter and digit replaced by a letter drawn
 * from "bdfhjkmpqvwxz" (consonants: no words, no 't.co'), dots and hyphens
 * kept, the last label kept when it is a top-level domain of 2+ letters and
 * the name has 2+ labels. The letters depend on |seed| and |name| only.
 * Returns 0, SD_EINVAL for an empty or over-long name, SD_ERANGE when |cap|
 * is too small.
 */
int sd_detect_control_name(const char *name, uint64_t seed, char *out, size_t cap);

/*
 * Runs the measurement of |cfg| (blocking: a 1 s warm-up connection, then
 * seconds + 1 s at most, connects and handshakes included) and judges it
 * into |res|, which owns memory afterwards:
 * release it with sd_detect_result_free. Threads are made per flow; they
 * inherit the caller's network namespace. The process must ignore SIGPIPE
 * (fetch.h). Returns 0 when the measurement ran whatever it found (a flow
 * whose thread could not be made counts as failed), SD_EINVAL for bad
 * options (no address or name, an unparsable address, a name OpenSSL
 * refuses), SD_ENOMEM.
 */
int sd_detect_run(const struct sd_detect_config *cfg, struct sd_detect_result *res);

/*
 * Judges one direction from its flows' series (fills verdict, kind, scope,
 * ratios, KS, rate estimate, evidence; computes the flows' features first).
 * Pure: no clock, no I/O. |ipv6| picks the header size of the L3
 * conversion. Used by sd_detect_run, and by tests on synthetic flows.
 */
void sd_detect_judge(struct sd_detect_dir *d, uint64_t bin_ns, uint64_t warmup_ns, bool ipv6);

/*
 * Runs the |n| measurements o[i] at once (a thread each, released together
 * once all exist) and waits for all: r[i] and rc[i] get each sd_fetch_run's
 * result and return value. With |span_ns|, every transfer ends |span_ns|
 * after the release at the latest (o[i].deadline_ns is set). Returns 0,
 * SD_EINVAL for n outside 0..SD_DETECT_MAX_PARALLEL, SD_ENOMEM when nothing
 * could run (every rc[i] is SD_ENOMEM), or SD_EIO when a thread could not
 * be made (its rc[i] is SD_EIO; the others still ran). The flows' hooks are
 * left as the caller set them (sd_detect_run's own measurement also holds
 * its flows at a start barrier, see detect.c).
 */
int sd_detect_fetch_many(struct sd_fetch_opts *o, struct sd_fetch_result *r, int *rc, int n, uint64_t span_ns);

/* Releases what sd_detect_run allocated. Accepts a zeroed result. */
void sd_detect_result_free(struct sd_detect_result *res);

/* Names: "throttled", "blocked", "not_throttled", "inconclusive". */
const char *sd_detect_verdict_name(unsigned v);
/* "policing", "shaping", "loss", "limited", "rst", "handshake_timeout", "connect", "freeze", "error"; NULL for NONE. */
const char *sd_detect_kind_name(unsigned k);
/* "name", "tls", "all"; NULL for NONE. */
const char *sd_detect_scope_name(unsigned s);

#endif
