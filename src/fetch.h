/*
 * fetch.h - the measurement client: one TCP connection to a `slowdown serve`
 * (or any server speaking its request line), a real TLS handshake with a
 * chosen SNI, then a bulk download or upload for N bytes or T seconds,
 * recorded as a goodput time series.
 *
 * Used by demo, detect, evade and the lab tests. Blocking from the caller's
 * point of view (one connection per call) but built on non-blocking sockets
 * and poll(), so every phase has its own deadline. Times are CLOCK_MONOTONIC
 * nanoseconds (mono.h). The caller owns the series storage.
 *
 * The request line (see man/slowdown-serve.1): after the handshake the client
 * sends "GET /down?bytes=N&seconds=S\n" (download) or "PUT /up?bytes=N&
 * seconds=S\n" (upload). In plain mode a caller-given first payload (for
 * example a ClientHello with every byte inverted) replaces it.
 */
#ifndef SD_FETCH_H
#define SD_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum sd_fetch_dir { SD_FETCH_DOWN = 0, SD_FETCH_UP = 1 };

/* How the connection ended. */
enum sd_fetch_end {
    SD_FETCH_DONE = 0,    /* the byte or time limit was reached */
    SD_FETCH_EOF = 1,     /* the server closed the connection (before the limit) */
    SD_FETCH_RST = 2,     /* connection reset (or refused: a RST answered the SYN) */
    SD_FETCH_TIMEOUT = 3, /* connect, handshake or idle timeout */
    SD_FETCH_ERROR = 4,   /* anything else: unreachable, TLS alert, protocol error */
};

/* Where it ended. */
enum sd_fetch_stage { SD_FETCH_CONNECT = 0, SD_FETCH_HANDSHAKE = 1, SD_FETCH_TRANSFER = 2 };

/* A TCP_INFO sample, as the measurement uses it (kernel units). */
struct sd_fetch_tcp {
    uint32_t rtt_us;       /* tcpi_rtt: smoothed RTT of what we send (meaningful when uploading) */
    uint32_t rcv_rtt_us;   /* tcpi_rcv_rtt: the receiver's RTT estimate (downloading) */
    uint32_t min_rtt_us;   /* tcpi_min_rtt */
    uint32_t retrans;      /* tcpi_total_retrans: segments we retransmitted */
    uint32_t ooo;          /* tcpi_rcv_ooopack: segments that arrived after a hole (loss upstream of us) */
    uint32_t mss;          /* tcpi_snd_mss when uploading, tcpi_rcv_mss when downloading */
    uint32_t segs;         /* tcpi_data_segs_out when uploading, tcpi_data_segs_in when downloading */
    uint64_t bytes_in;     /* tcpi_bytes_received: TCP payload bytes in, TLS handshake included */
    uint64_t bytes_acked;  /* tcpi_bytes_acked: TCP payload bytes out that the peer acknowledged */
};

struct ssl_st;
struct ssl_ctx_st;

/*
 * Optional hooks, for the evasion harness (evade.h): each may be NULL and
 * gets the caller's |arg|. A hook returns 0 to go on, or a negative SD_E*
 * to end the measurement as SD_FETCH_ERROR at the current stage, with the
 * hook's one-line reason (written into |detail|, |len| bytes) in the result.
 *   socket          the socket is made (and bound), not yet connected:
 *                   socket options such as TCP_MAXSEG
 *   connected       the TCP connection is up, nothing sent yet: a proxy's
 *                   CONNECT exchange, say; |deadline| ends the connect stage
 *   tls_ctx         the SSL_CTX, before the SSL object is made from it
 *                   (extensions must be registered here)
 *   tls_ssl         the SSL object, its fd set and SNI given, before the
 *                   handshake: BIOs may be wrapped here
 *   ready           connected and, with TLS, the handshake done; nothing of
 *                   the request (or of the plain first payload) sent yet:
 *                   the detector holds its flows here so that their
 *                   transfers start together
 */
struct sd_fetch_hooks {
    int (*socket)(void *arg, int fd, char *detail, size_t len);
    int (*connected)(void *arg, int fd, uint64_t deadline, char *detail, size_t len);
    int (*tls_ctx)(void *arg, struct ssl_ctx_st *ctx, char *detail, size_t len);
    int (*tls_ssl)(void *arg, struct ssl_st *ssl, int fd, char *detail, size_t len);
    int (*ready)(void *arg, int fd, char *detail, size_t len);
};

/* Fields grouped by purpose, not packed: one per transfer. */
struct sd_fetch_opts { /* NOLINT(clang-analyzer-optin.performance.Padding) */
    const char *addr;           /* server: numeric IPv4 or IPv6 address */
    uint16_t port;
    const char *bind_addr;      /* source address, or NULL */
    uint16_t src_port;          /* source port, 0 for any */
    bool plain;                 /* plain TCP instead of TLS */
    const char *sni;            /* TLS server_name; NULL sends no SNI extension */
    int tls_max_version;        /* 0 or TLS1_2_VERSION / TLS1_3_VERSION */
    const uint8_t *first;       /* plain: raw bytes sent right after connect instead of the request line */
    size_t first_len;
    bool no_request;            /* send no request line (the server then uses its default mode) */
    uint8_t dir;                /* enum sd_fetch_dir */
    uint64_t bytes;             /* stop after this many payload bytes (0: no byte limit) */
    uint64_t duration_ns;       /* stop after this long of transfer (0: no time limit) */
    uint64_t deadline_ns;       /* CLOCK_MONOTONIC time the transfer stops at, whatever the phases
                                   before took (0: none); the earlier of this and duration_ns wins */
    uint64_t max_rate;          /* cap in payload bytes per second (0: none): uploads are paced by
                                   the kernel (SO_MAX_PACING_RATE), downloads by reading no faster
                                   (the receive window then holds the sender back) */
    uint64_t bin_ns;            /* series bin width (0: 100 ms) */
    uint64_t connect_timeout_ns;   /* 0: 5 s */
    uint64_t handshake_timeout_ns; /* 0: 10 s */
    uint64_t idle_timeout_ns;      /* no progress for this long ends the transfer (0: 10 s) */
    uint64_t *bins;             /* caller storage: bytes per bin, zeroed by sd_fetch_run */
    uint32_t max_bins;          /* capacity of bins (bytes past the last bin are counted, not binned) */
    struct sd_fetch_tcp *tcp_bins; /* optional caller storage (max_bins): the last TCP_INFO sample taken
                                      in each bin, all zero for a bin without one; zeroed by sd_fetch_run */
    const struct sd_fetch_hooks *hooks; /* NULL for none */
    void *hook_arg;
};

struct sd_fetch_result {
    uint8_t end;                /* enum sd_fetch_end */
    uint8_t stage;              /* enum sd_fetch_stage */
    int sys_err;                /* errno behind RST/ERROR/TIMEOUT, or 0 */
    char detail[128];           /* one line on what failed, "" when DONE/EOF */
    char tls_version[16];       /* "TLSv1.3", "" in plain mode or before the handshake */
    uint64_t start_ns;          /* CLOCK_MONOTONIC when sd_fetch_run started */
    uint64_t connect_ns;        /* duration of the TCP handshake */
    uint64_t handshake_ns;      /* duration of the TLS handshake (0 in plain mode) */
    uint64_t ttfb_ns;           /* download: request sent -> first payload byte (0 if none) */
    uint64_t transfer_ns;       /* duration of the transfer phase */
    uint64_t bytes;             /* payload bytes received (down) or acknowledged by the server (up) */
    uint32_t n_bins;            /* bins used in opts.bins */
    uint64_t transfer_start_ns; /* CLOCK_MONOTONIC when the transfer began (bin 0 starts here), 0 if never */
    struct sd_fetch_tcp tcp_start; /* TCP_INFO when the transfer began (all zero if it never began) */
    struct sd_fetch_tcp tcp;    /* TCP_INFO when the transfer ended (all zero if it never began) */
};

/*
 * Runs one measurement as |o| says and fills |r|. Returns 0 when the
 * measurement ran, whatever its outcome (r->end, r->stage say how it ended):
 * a reset or a timeout is a result, not an error. Returns SD_EINVAL for bad
 * options (no address, no limit, unparsable address), SD_EIO when a local
 * step failed (socket, bind: r->detail says which) and SD_ENOMEM when
 * OpenSSL could not allocate.
 *
 * Upload goodput comes from the kernel's count of acknowledged bytes
 * (TCP_INFO tcpi_bytes_acked), so it includes TLS record overhead (< 1 %).
 * With o->tcp_bins, TCP_INFO is also sampled once per bin (a download then
 * wakes at least once per bin; an upload samples at every wakeup, the last
 * sample of a bin winning).
 * Thread-safe: concurrent calls share nothing.
 * OpenSSL writes with write(2): the process must ignore SIGPIPE.
 */
int sd_fetch_run(const struct sd_fetch_opts *o, struct sd_fetch_result *r);

/*
 * Mean goodput in kbit/s of the transfer in |r|, leaving out its first
 * |skip_ns| (a burst allowance). When the transfer was no longer than
 * |skip_ns|, the whole transfer counts. 0 when nothing was transferred.
 */
double sd_fetch_kbps(const struct sd_fetch_result *r, const uint64_t *bins, uint64_t bin_ns, uint64_t skip_ns);

/*
 * Writes into |out| (capacity |cap|) the first flight of an OpenSSL TLS
 * client, i.e. its ClientHello record, carrying server_name |sni| (NULL for
 * none). Returns its length, SD_ERANGE when |cap| is too small, SD_ECRYPTO
 * when OpenSSL fails.
 */
int sd_fetch_client_hello(const char *sni, uint8_t *out, size_t cap);

/* Returns a static name for an enum sd_fetch_end value: "done", "eof", "rst", "timeout", "error". */
const char *sd_fetch_end_name(unsigned end);

#endif
