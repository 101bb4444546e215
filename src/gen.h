/*
 * gen.h - a small packet and pcap generator for tests, golden captures and
 * benchmarks. Everything it writes is built from fields, never copied from
 * captures, so the test suite has no opaque binaries.
 *
 * Frames are built from a struct sd_gen_pkt spec into a caller's buffer with
 * valid checksums; a TCP conversation helper keeps sequence numbers and pcap
 * time, so a test can write "handshake, ClientHello, 2 MB at 2.3 Mbit/s" in a
 * few lines.
 */
#ifndef SD_GEN_H
#define SD_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- pcap files ---- */

struct sd_gen_pcap;

/* Opens |path| for writing a classic pcap (microsecond timestamps, snaplen
 * 262144) of link type |linktype| (a LINKTYPE_* value, e.g. 1 Ethernet,
 * 101 raw IP, 113 SLL, 276 SLL2). NULL on error (errno set). */
struct sd_gen_pcap *sd_gen_pcap_open(const char *path, int linktype);
/* Writes one record; |ts_ns| is nanoseconds since the epoch. 0 or -1. */
int sd_gen_pcap_write(struct sd_gen_pcap *w, uint64_t ts_ns, const uint8_t *frame, size_t len);
/* Flushes and closes; accepts NULL. 0 or -1 (write error). */
int sd_gen_pcap_close(struct sd_gen_pcap *w);
/* The link type the writer was opened with. */
int sd_gen_pcap_linktype(const struct sd_gen_pcap *w);

/* ---- single frames ---- */

struct sd_gen_addr {
    int family;        /* 4 or 6 */
    uint8_t a[16];     /* 4 or 16 bytes used */
};

/* Parses "192.0.2.1" or "2001:db8::1"; aborts the test program on bad input. */
struct sd_gen_addr sd_gen_addr(const char *text);

struct sd_gen_pkt {
    int linktype;              /* 1, 101, 113, 276 (LINKTYPE_*) */
    uint16_t vlan[2];          /* Ethernet only: 802.1Q tags, outer first */
    int n_vlan;                /* 0, 1 or 2 (2 = QinQ with 0x88a8 outer) */
    struct sd_gen_addr src, dst;
    uint8_t proto;             /* IPPROTO_TCP or IPPROTO_UDP */
    uint16_t sport, dport;
    uint8_t tcp_flags;         /* SD_TCP_* of pkt.h */
    uint32_t seq, ack;
    uint16_t win;              /* 0 means 65535 */
    uint8_t ttl;               /* 0 means 64 */
    uint16_t ip_id;
    int ipv4_opts_len;         /* bytes of IPv4 options (NOPs + EOL), multiple of 4, <= 40 */
    int ipv6_ext;              /* number of IPv6 extension headers to insert (hop-by-hop, dest-opts, ...) */
    bool bad_csum;             /* write a wrong TCP/UDP checksum */
    bool tcp_md5;              /* add a TCP MD5 signature option */
    const uint8_t *payload;
    size_t payload_len;
};

/* Builds the frame of |spec| into |buf| (capacity |cap|). Returns its length,
 * or 0 when it does not fit. */
size_t sd_gen_frame(uint8_t *buf, size_t cap, const struct sd_gen_pkt *spec);

/*
 * Splits the frame |frame| (|len| bytes, built by sd_gen_frame with link type
 * |linktype|) into IP fragments whose payload parts are at most |frag_size|
 * bytes (rounded down to a multiple of 8). Fragment i is written to out[i]
 * (each of capacity |cap|) with its length in out_len[i]. Returns the number
 * of fragments, or 0 when they do not fit in |max| buffers.
 */
int sd_gen_fragment(const uint8_t *frame, size_t len, int linktype, size_t frag_size, uint8_t **out, size_t *out_len,
                    size_t cap, int max);

/* ---- TCP conversations ---- */

/* Directions, from the client's point of view. */
enum { SD_GEN_C2S = 0, SD_GEN_S2C = 1 };

struct sd_gen_tcp {
    struct sd_gen_pcap *w;
    struct sd_gen_pkt tmpl;    /* linktype, vlans, addresses (src = client), ports, ttl */
    uint32_t seq[2];           /* next sequence number per direction */
    uint64_t now_ns;           /* pcap time of the next packet */
    uint64_t rtt_ns;           /* used to space handshake and ACKs; default 20 ms */
    uint16_t mss;              /* default 1460 */
    uint16_t ip_id[2];
};

/* Initialises a conversation between |client| and |server| written to |w| at
 * time |start_ns|. Initial sequence numbers derive from the ports. */
void sd_gen_tcp_init(struct sd_gen_tcp *c, struct sd_gen_pcap *w, const char *client, uint16_t cport, const char *server,
                     uint16_t sport, uint64_t start_ns);
/* SYN, SYN/ACK, ACK. When |server_opens| the server sends the SYN. */
void sd_gen_tcp_handshake(struct sd_gen_tcp *c, bool server_opens);
/* Sends |len| bytes in direction |dir| as one segment (PSH/ACK), advancing
 * time by |gap_ns| first. Segments larger than the MSS are still one segment. */
void sd_gen_tcp_send(struct sd_gen_tcp *c, int dir, const uint8_t *data, size_t len, uint64_t gap_ns);
/* Like sd_gen_tcp_send but with an explicit sequence offset relative to the
 * next sequence number (negative = retransmission/overlap, positive = gap,
 * for out-of-order tests) and without advancing the stream. */
void sd_gen_tcp_send_at(struct sd_gen_tcp *c, int dir, int32_t seq_delta, const uint8_t *data, size_t len,
                        uint64_t gap_ns);
/* Advances the stream of |dir| by |len| bytes without writing (pairs with
 * sd_gen_tcp_send_at). */
void sd_gen_tcp_advance(struct sd_gen_tcp *c, int dir, size_t len);
/* Sends a bare flag packet (FIN|ACK, RST|ACK, ACK) in |dir|. */
void sd_gen_tcp_flags(struct sd_gen_tcp *c, int dir, uint8_t flags, uint64_t gap_ns);
/*
 * Streams |total| bytes of filler in |dir| as MSS-sized segments paced at
 * |rate_bps| bits per second of IP bytes, with an ACK from the other side
 * every second segment. Returns the pcap time after the last segment.
 */
uint64_t sd_gen_tcp_bulk(struct sd_gen_tcp *c, int dir, size_t total, uint64_t rate_bps);

/* One UDP datagram from |src|:|sport| to |dst|:|dport| at |ts_ns|. */
void sd_gen_udp(struct sd_gen_pcap *w, const struct sd_gen_pkt *tmpl, uint64_t ts_ns, const uint8_t *data, size_t len);

/* ---- TLS ClientHello ---- */

struct sd_gen_hello {
    const char *sni;           /* NULL: no server_name extension */
    const char *alpn[4];       /* NULL-terminated list, may be empty */
    bool ech;                  /* add an encrypted_client_hello extension (0xfe0d) */
    size_t padding;            /* add a padding extension (21) with this many bytes (0: none) */
    size_t key_share_extra;    /* extra bytes in the key_share (post-quantum sized hellos) */
    uint8_t session_id_len;    /* default 32 */
    bool sni_first;            /* put server_name first among the extensions */
};

/* Builds a ClientHello handshake message (4-byte handshake header first, no
 * record layer) into |buf|. Returns its length, or 0 when it does not fit. */
size_t sd_gen_client_hello(uint8_t *buf, size_t cap, const struct sd_gen_hello *h);
/* Wraps |len| bytes of |body| into one TLS record of content type |type| (22
 * handshake, 20 CCS, 21 alert, 23 data). Returns the record length. */
size_t sd_gen_tls_record(uint8_t *buf, size_t cap, uint8_t type, const uint8_t *body, size_t len);
/* ClientHello in one record: sd_gen_client_hello + sd_gen_tls_record. */
size_t sd_gen_client_hello_record(uint8_t *buf, size_t cap, const struct sd_gen_hello *h);

#endif
