/*
 * policy.h - what the censor does, as data: named sets of names, addresses
 * and ports; inspection parameters; state timeouts; and an ordered list of
 * rules, each a conjunction of conditions and one action.
 *
 * A policy is parsed from the line-based language described in
 * docs/policy.md (and man/slowdown-policy.5); presets are policy files shipped
 * in the binary. Once built, a policy is immutable and may be shared by any
 * number of engines (threads). Errors are reported as FILE:LINE:COL: message.
 */
#ifndef SD_POLICY_H
#define SD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_names;
struct sd_ipset;

enum {
    SD_POLICY_MAX_SETS = 64, /* names and ip sets share one tag space each */
    SD_POLICY_MAX_RULES = 256,
    SD_POLICY_MAX_CONDS = 8,
    SD_POLICY_NAME_MAX = 32,
    SD_POLICY_MAX_MARKS = 16, /* host marks (spec 4.8) */
};

/* How a TLS ClientHello is found in TCP payload (spec B3, B7). */
enum sd_tls_mode {
    SD_TLS_STRICT = 0,  /* 2021: one segment, first record, whole hello in it */
    SD_TLS_RECORDS = 1, /* 2024: records inside one segment are reassembled */
    SD_TLS_STREAM = 2,  /* 2026 / observe: the TCP stream is reassembled (in and out of order) */
    SD_TLS_HELLO = 3,   /* 2024-25: a ClientHello whose first segment starts with its record header is
                           gathered from the following in-order segments; out-of-order pieces, or a first
                           segment too short to hold the record header, are not reassembled */
};

enum sd_quic_mode {
    SD_QUIC_OFF = 0,    /* UDP payload is not looked at as QUIC */
    SD_QUIC_HEADER = 1, /* long-header checks only (quic22 rules) */
    SD_QUIC_DECRYPT = 2,/* Initial decrypted, CRYPTO reassembled, SNI parsed */
};

/* Which bytes the policer counts (spec B8: unknown, L3 by default). */
enum sd_count { SD_COUNT_L3 = 0, SD_COUNT_L4 = 1, SD_COUNT_L2 = 2 };

/* Direction masks, from the flow's client point of view. */
enum { SD_DIR_C2S = 1, SD_DIR_S2C = 2, SD_DIR_BOTH = 3 };

struct sd_inspect {
    uint8_t dirs;               /* SD_DIR_*: which directions' payload is inspected (B5: both) */
    uint8_t extra_packets;      /* keep-looking budget after a recognised, non-triggering packet (B6) */
    uint16_t giveup_bytes;      /* unrecognised first payload >= this ends inspection (B6: 101) */
    uint8_t tls_mode;           /* enum sd_tls_mode */
    uint8_t quic_mode;          /* enum sd_quic_mode */
    bool http;                  /* parse HTTP requests (Host, CONNECT) */
    bool dns;                   /* parse DNS queries (UDP and TCP port 53) */
    bool require_inside_open;   /* B1: only flows opened from the inside are inspected */
    bool remote_syn_unblocks;   /* B1 (2022): a SYN from outside makes the flow ineligible */
    bool unknown_eligible;      /* flows whose opening was not seen are inspected */
    bool verify_csum;           /* packets with bad TCP/UDP checksums are not inspected */
    bool casefold;              /* names compared case-insensitively */
    bool strip_dot;             /* one trailing dot removed before matching */
    bool frag_buffer;           /* 4.4: IP fragments held until complete, then forwarded */
    uint8_t frag_max;           /* 4.4: at most this many fragments per packet (45) */
    uint16_t reasm_bytes;       /* byte cap of stream / CRYPTO reassembly per flow */
    uint8_t quic_packets;       /* datagrams examined for a complete QUIC ClientHello */
    uint16_t quic_min_len;      /* header rule: minimum UDP payload (quic22-v1: 1001) */
    uint32_t quic_versions[4];  /* header rule: versions that match (0-terminated; empty = any known) */
    bool quic_port443;          /* QUIC looked at on UDP port 443 only */
    bool quic_fail_block;       /* Initials that fail to decrypt or carry no SNI trigger 'quic_fail' */
    uint8_t quic_late_cut;      /* quic22-initial: a flow past the header rule by a small fake first
                                 * datagram is cut at this many server datagrams after its Initial (0 off) */
    uint16_t quic_late_phase;   /* ... a fake first datagram longer than this avoids the cut (600) */
};

struct sd_timeouts {
    uint32_t action_s;          /* B9: idle release of a flow under an action (600) */
    uint32_t tcp_s;             /* idle release of other TCP flows */
    uint32_t syn_s;             /* flows that saw only a SYN */
    uint32_t udp_s;             /* UDP flows */
    bool clear_on_fin_rst;      /* B9: FIN/RST release the flow (false in 2021) */
};

/* Condition kinds. Names compare against a name set; addresses against an ip set. */
enum sd_cond_kind {
    SD_C_SNI,        /* TLS or QUIC ClientHello server_name in set */
    SD_C_HOST,       /* HTTP Host / CONNECT target in set */
    SD_C_DNS,        /* DNS query name in set */
    SD_C_NAME,       /* any of the three */
    SD_C_SERVER_IP,  /* server address in set */
    SD_C_CLIENT_IP,  /* client address in set */
    SD_C_REMOTE_IP,  /* the outside endpoint's address in set (the server, or the opener if it came from outside) */
    SD_C_PORT,       /* server port in list */
    SD_C_TCP,        /* protocol is TCP */
    SD_C_UDP,        /* protocol is UDP */
    SD_C_TLS,        /* a ClientHello was parsed */
    SD_C_ECH,        /* the ClientHello has an ECH extension */
    SD_C_NOSNI,      /* a ClientHello without server_name */
    SD_C_QUIC,       /* first datagram passes the QUIC header rule */
    SD_C_QUIC_FAIL,  /* QUIC Initial that failed decryption or had no SNI */
    SD_C_OPENED_INSIDE,
    SD_C_MARKED,     /* the client carries host mark |set| (spec 4.8) */
};

struct sd_cond {
    uint8_t kind;    /* enum sd_cond_kind */
    bool negate;
    uint8_t set;     /* set index (names or ips) for the set conditions */
    uint8_t n_ports;
    uint16_t ports[8];
};

enum sd_action_kind {
    SD_A_PASS = 0,
    SD_A_THROTTLE,   /* token-bucket policer per direction */
    SD_A_LOSS,       /* random early drops aimed at a target rate (yt24-loss) */
    SD_A_RST,        /* SNI-I: server packets replaced by RST/ACK */
    SD_A_DROP_AFTER, /* SNI-II: n more packets pass, then data packets dropped */
    SD_A_DROP,       /* SNI-IV: drop from the trigger on */
    SD_A_FREEZE,     /* cdn25: after n bytes server->client, drop server packets */
    SD_A_IPBLOCK,    /* 4.1 IP: inside SYN dropped; outside-opened: inside packets -> RST/ACK */
    SD_A_MARK,       /* 4.8: the flow passes; its client carries mark |mark| for |seconds| after each
                        client packet */
};

struct sd_action {
    uint8_t kind;         /* enum sd_action_kind */
    uint8_t dirs;         /* SD_DIR_* the action applies to */
    uint8_t count;        /* enum sd_count (throttle, loss) */
    bool police_acks;     /* pure ACKs are policed too (default: exempt) */
    bool data_only;       /* drop actions: pure ACKs still pass */
    bool rst;             /* freeze: the first dropped server packet becomes an RST/ACK */
    uint32_t rate_bps;    /* throttle, loss: bits per second */
    uint32_t burst;       /* throttle, loss: bucket depth in bytes */
    uint32_t n;           /* drop_after: packets; freeze: bytes */
    uint32_t seconds;     /* mark: how long the mark lasts after the client's last packet */
    uint8_t mark;         /* mark: its index in sd_policy.marks */
    bool has_mark;        /* mark: tag= was given */
    uint16_t chance;      /* of the flows the rule holds for, this many in 10000 get the action; the
                             others pass (cdn25: "not every connection is limited"); 10000 = all */
};

struct sd_rule {
    char name[SD_POLICY_NAME_MAX];
    uint8_t n_conds;
    bool l7;               /* has a condition that needs inspection (evaluated on inspection events) */
    struct sd_cond conds[SD_POLICY_MAX_CONDS];
    struct sd_action action;
};

struct sd_policy {
    char name[64];             /* preset name or file name */
    char period[96];           /* "2021-04-02T00:00Z 2021-05-17T13:40Z" as written, may be empty */
    char summary[160];
    char sources[160];
    struct sd_inspect inspect;
    struct sd_timeouts timeouts;
    struct sd_names *names;    /* all name sets, tag = set index */
    struct sd_ipset *ips;      /* all ip sets, tag = set index */
    int inside_set;            /* index of the ip set "inside", or -1 */
    unsigned n_name_sets, n_ip_sets;
    char name_sets[SD_POLICY_MAX_SETS][SD_POLICY_NAME_MAX];
    char ip_sets[SD_POLICY_MAX_SETS][SD_POLICY_NAME_MAX];
    unsigned n_marks;          /* host marks, named by the rules that set or test them */
    char marks[SD_POLICY_MAX_MARKS][SD_POLICY_NAME_MAX];
    unsigned n_rules;
    struct sd_rule rules[SD_POLICY_MAX_RULES];
};

/* Parse errors: where and what. */
struct sd_policy_error {
    char file[256];
    unsigned line, col;
    char msg[256];
};

/* Formats an error as "FILE:LINE:COL: message" into |buf|. */
void sd_policy_error_format(const struct sd_policy_error *err, char *buf, size_t len);

struct sd_policy_builder;

/*
 * Building a policy: start, feed one or more sources (a preset, then files
 * that add to it), optionally replace the inside networks, then finish.
 * Sources are parsed into the builder; sets with the same name accumulate.
 */
struct sd_policy_builder *sd_policy_builder_new(void);
void sd_policy_builder_free(struct sd_policy_builder *b);
/* Parses |len| bytes of |text|; |file| names it in errors. 0 or SD_EINVAL with |err| filled. */
int sd_policy_builder_parse(struct sd_policy_builder *b, const char *file, const char *text, size_t len,
                            struct sd_policy_error *err);
/* Parses a built-in preset by name. SD_ENOENT when there is no such preset. */
int sd_policy_builder_preset(struct sd_policy_builder *b, const char *name, struct sd_policy_error *err);
/* Reads and parses a file. SD_EIO when it cannot be read. */
int sd_policy_builder_file(struct sd_policy_builder *b, const char *path, struct sd_policy_error *err);
/* Replaces the inside networks with a comma-separated CIDR list. 0 or SD_EINVAL. */
int sd_policy_builder_inside(struct sd_policy_builder *b, const char *cidrs, struct sd_policy_error *err);
/* Compiles the sets and returns the policy (caller frees with sd_policy_free), or NULL with |err|. */
struct sd_policy *sd_policy_builder_finish(struct sd_policy_builder *b, struct sd_policy_error *err);

void sd_policy_free(struct sd_policy *p);

/* Names for output. */
const char *sd_action_name(const struct sd_action *a); /* "pass", "throttle", "block", "freeze" (mark: "pass") */
const char *sd_action_kind_name(unsigned kind);         /* "throttle", "loss", "rst", ... */

#endif
