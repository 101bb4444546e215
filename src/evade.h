/*
 * evade.h - the evasion harness: a catalogue of circumvention strategies
 * (spec evasion.md section 3, spec B14) and a client that fetches from a
 * `slowdown serve` through exactly one of them.
 *
 * A strategy is written NAME or NAME:ARGS (`split-sni`, `split:5`,
 * `multisplit:1,sni,midsni`, `junk-large:600,ttl=2`). Each catalogue entry
 * says in its `wire` text what it does on the wire; `slowdown evade --list`
 * prints them. Strategies come in three families, one file each:
 *
 *   strat_tcp.c    real sockets: pieces written one by one (split), an urgent
 *                  byte (oob), a small MSS, a proxy's CONNECT or SOCKS5
 *                  exchange before TLS
 *   strat_tls.c    the TLS layer: a filter BIO under OpenSSL that rewrites
 *                  the first flight (record split, a leading CCS record), a
 *                  padding extension, the SNI spelled otherwise, a pause
 *                  before the client's Finished (idle)
 *   strat_forge.c  forged packets (root, IPv4): the real ClientHello is held
 *                  in a client-side NFQUEUE (mangle OUTPUT) and junk, fake
 *                  hellos, a RST/FIN, reordered segments or IP fragments are
 *                  sent around it from a raw socket
 *   strat_quic.c   QUIC: a protected Initial with the ClientHello, as is,
 *                  small, draft-29, after junk, fragmented, another name;
 *                  then a UDP transfer from a responder (evade_proxy.h)
 *
 * Offsets ("positions") count bytes of the first flight as it would go on
 * the wire, the 5-byte record header included: a number, or `sni`, `midsni`,
 * `endsni` (first byte, middle, end of the server name) with an optional
 * +N/-N. A position outside the hello is clamped to [1, length - 1].
 */
#ifndef SD_EVADE_H
#define SD_EVADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fetch.h"
#include "sd.h"

enum sd_evade_op {
    SD_EVADE_NONE = 0,
    SD_EVADE_SPLIT,     /* TCP segments cut at positions (real socket writes) */
    SD_EVADE_DISORDER,  /* two segments, the second sent first (forged) */
    SD_EVADE_TLSREC,    /* two TLS records in one segment */
    SD_EVADE_PADDING,   /* an extension of N zero bytes in the hello */
    SD_EVADE_CCS,       /* a ChangeCipherSpec record before the hello, same segment */
    SD_EVADE_OOB,       /* one urgent (out-of-band) byte inside the hello */
    SD_EVADE_MSS,       /* a small MSS: every segment small */
    SD_EVADE_JUNK,      /* a junk segment the server never gets, first */
    SD_EVADE_FAKE,      /* a fake hello (innocent SNI) the server never gets, first */
    SD_EVADE_TEARDOWN,  /* a RST or FIN the server never gets, after the hello */
    SD_EVADE_IPFRAG,    /* the hello's IP packet in two fragments */
    SD_EVADE_SNI,       /* the server name spelled otherwise, or left out */
    SD_EVADE_IDLE,      /* a pause after the trigger, before any transfer */
    SD_EVADE_PROXY,     /* through an unencrypted HTTP CONNECT or SOCKS5 proxy */
    SD_EVADE_QUIC,      /* a QUIC Initial, then a UDP transfer (strat_quic.c) */
};

/* What a strategy needs beyond a socket. */
enum sd_evade_need {
    SD_EVADE_NEED_FORGE = 1 << 0,   /* root: client NFQUEUE and a raw socket; IPv4 only */
    SD_EVADE_NEED_PROXY = 1 << 1,   /* a proxy outside the censor (evade_proxy.h) */
    SD_EVADE_NEED_TIMEOUT = 1 << 2, /* the censor's timeout.action must be shorter than the wait */
    SD_EVADE_NEED_COOP = 1 << 3,    /* a cooperating server (slowdown serve drops a leading CCS) */
    SD_EVADE_NEED_ROOT = 1 << 4,    /* root: a raw socket (IPv4 only) */
    SD_EVADE_NEED_UDP = 1 << 5,     /* QUIC over UDP: the UDP responder (evade_proxy.h); for QUIC presets */
};

struct sd_evade_def {
    const char *name;
    uint8_t op;       /* enum sd_evade_op */
    uint8_t needs;    /* enum sd_evade_need bits */
    const char *args; /* default arguments ("" for none) */
    const char *syntax; /* argument syntax, for help */
    const char *wire; /* what happens on the wire, one paragraph */
};

enum sd_evade_base { SD_EVADE_AT_ABS = 0, SD_EVADE_AT_SNI, SD_EVADE_AT_MIDSNI, SD_EVADE_AT_ENDSNI };

struct sd_evade_pos {
    uint8_t base;   /* enum sd_evade_base */
    int32_t delta;
};

enum sd_evade_sni {
    SD_EVADE_SNI_KEEP = 0,
    SD_EVADE_SNI_DOT,   /* "twitter.com." */
    SD_EVADE_SNI_UPPER, /* "TWITTER.COM" */
    SD_EVADE_SNI_MIXED, /* "TwItTeR.cOm" */
    SD_EVADE_SNI_NONE,  /* no server_name extension */
    SD_EVADE_SNI_OTHER, /* another name on the same server */
};

enum sd_evade_proxy { SD_EVADE_PROXY_HTTP = 0, SD_EVADE_PROXY_SOCKS5 = 1 };

enum {
    SD_EVADE_MAX_POS = 8,
    SD_EVADE_NAME_MAX = 253, /* longest DNS name */
    SD_EVADE_TEXT_MAX = 160,
};

/* A strategy with its arguments, as parsed. */
struct sd_evade_spec {
    const struct sd_evade_def *def;
    char text[SD_EVADE_TEXT_MAX];  /* as written: NAME, or NAME:ARGS when arguments were given */
    struct sd_evade_pos pos[SD_EVADE_MAX_POS];
    uint8_t n_pos;
    uint32_t size;       /* junk and padding bytes, MSS */
    uint8_t ttl;         /* forged packets: IP TTL (0 with badsum: the usual 64) */
    bool badsum;         /* forged packets: a wrong TCP checksum */
    uint8_t tcp_flags;   /* teardown: SD_TCP_RST or SD_TCP_FIN (with ACK) */
    uint8_t sni_mode;    /* enum sd_evade_sni */
    char name[SD_EVADE_NAME_MAX + 1]; /* sni-other's name, a fake hello's name ("" for the default) */
    uint64_t wait_ns;    /* idle */
    uint8_t proxy;       /* enum sd_evade_proxy */
    uint32_t quic_version; /* QUIC: the Initial's version (size: its length) */
    uint32_t size_junk;  /* QUIC: a junk datagram of this many bytes first (0: none) */
    bool quic_frag;      /* QUIC: the Initial in two IP fragments */
};

/* The catalogue, in display order; |*n| receives its length. */
const struct sd_evade_def *sd_evade_catalogue(size_t *n);

/* The entry named |name| (exactly), or NULL. */
const struct sd_evade_def *sd_evade_find(const char *name);

/*
 * Parses NAME[:ARGS] into |spec|. ARGS replace the entry's default
 * arguments. Returns 0, SD_ENOENT (no such strategy) or SD_EINVAL (bad
 * arguments), with a one-line reason in |err|.
 */
int sd_evade_parse(const char *text, struct sd_evade_spec *spec, char *err, size_t errlen);

/* Where the first flight's server name is, for positions. */
struct sd_evade_marks {
    size_t len;      /* bytes of the first flight */
    size_t sni;      /* offset of the first byte of the name, 0 when there is none */
    size_t sni_len;
};

/*
 * Finds the server name in a first flight |p|, |n| bytes (one TLS record
 * holding a ClientHello). Returns 0 (a hello without a name leaves sni 0),
 * or SD_EPROTO when |p| is not one ClientHello record.
 */
int sd_evade_marks(const uint8_t *p, size_t n, struct sd_evade_marks *m);

/* The absolute offset of |pos| in a flight described by |m|, clamped to
 * [1, len - 1]. A name-relative position in a hello without a name counts
 * from the middle of the flight. */
size_t sd_evade_resolve(const struct sd_evade_pos *pos, const struct sd_evade_marks *m);

/* The server and the measurement, for one run. */
struct sd_evade_target {
    const char *addr;             /* server address (numeric) */
    uint16_t port;                /* its TLS port (0: 443) */
    const char *sni;              /* the name under test */
    const char *fake_sni;         /* innocent name of fake hellos (NULL: www.example.com) */
    const char *proxy_addr;       /* proxy strategies: where the proxy listens */
    uint16_t proxy_port;
    uint64_t duration_ns;         /* transfer time (0 with bytes) */
    uint64_t bytes;               /* transfer bytes (0 with duration) */
    uint64_t bin_ns;              /* 0: 100 ms */
    uint64_t skip_ns;             /* left out of kbps (burst allowance) */
    uint64_t connect_timeout_ns, handshake_timeout_ns, idle_timeout_ns; /* 0: fetch.h defaults */
    uint16_t queue;               /* forging: client NFQUEUE number (0: derived from the source port) */
    uint64_t *bins;               /* caller storage for the goodput series */
    uint32_t max_bins;
};

struct sd_evade_result {
    struct sd_fetch_result f;
    double kbps;                  /* goodput after skip_ns */
    uint64_t tail_bytes;          /* bytes in the second half of the transfer (a freeze has none) */
    uint32_t forged;              /* packets forged and sent */
    bool applied;                 /* the strategy found what it works on (the hello) and acted */
    char note[160];               /* what the strategy did, or why it could not */
};

/*
 * Fetches from |t| through strategy |s|: connect, TLS handshake with the
 * strategy applied, then a download for the duration (or bytes) asked.
 * Forging strategies install one iptables rule (mangle OUTPUT, this source
 * port only) in the caller's network namespace and remove it again.
 * Returns 0 when the run happened, whatever its outcome (|r|); SD_EINVAL
 * for options the strategy cannot use (no proxy given, an IPv6 server for a
 * forging strategy), SD_EPERM / SD_EIO when a local step failed (r->note).
 */
int sd_evade_run(const struct sd_evade_spec *s, const struct sd_evade_target *t, struct sd_evade_result *r);

/*
 * The external adapter: runs |cmd| with /bin/sh in the caller's network
 * namespace as the client, in place of a built-in strategy, and measures
 * the bytes it writes to stdout over time (it should write the body it
 * downloads: `curl -sk ... -o -`). Placeholders are replaced first (see
 * sd_evade_expand). It is stopped (SIGTERM to its process group) when the
 * transfer time is over. Returns 0 when it ran (r->f.end: done when bytes
 * flowed to the end or it exited 0 after some, timeout when none came,
 * error when it failed), SD_EIO when it could not be started.
 */
int sd_evade_run_external(const char *cmd, const struct sd_evade_target *t, struct sd_evade_result *r);

/*
 * Expands {addr} {port} {sni} {seconds} {bytes} {url} (https://SNI:PORT/
 * down?seconds=S) and {resolve} (SNI:PORT:ADDR, for curl --resolve) in
 * |tmpl| into |out|. Returns the length, or SD_ERANGE when it does not fit.
 */
int sd_evade_expand(const char *tmpl, const struct sd_evade_target *t, char *out, size_t cap);

#endif
