/*
 * locate.h - where the trigger is, once the detector found one:
 *
 *   which bytes: the target's ClientHello is sent as the first payload of
 *     plain connections with parts of it inverted (XUE21 section 6.2, after
 *     lib*erate): a probe that is no longer throttled or blocked had a part
 *     inverted that the censor needs. Each field of the hello is masked on
 *     its own, then the fields that matter are halved and halved again,
 *     down to single bytes or a probe budget;
 *   which hop: the ClientHello is injected on an established connection
 *     with an IP TTL of 1, 2, ... (spec 3.1 step 6, XUE21 section 6.4); the
 *     first TTL whose connection is throttled puts the box at that hop.
 *
 * A probe downloads from a `slowdown serve` plain port (its default mode,
 * send) for a short window and counts as triggered when it got fewer bytes
 * than a threshold between the throttled and the free rate. Probes run in
 * parallel: a policer acts per connection.
 */
#ifndef SD_LOCATE_H
#define SD_LOCATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum {
    SD_HELLO_MAX = 2048,
    SD_HELLO_FIELDS_MAX = 96,
    SD_LOCATE_REGIONS_MAX = 256,
    SD_LOCATE_TTL_MAX = 32,
};

/* One field of a ClientHello record, by offset from the record's first byte. */
struct sd_hello_field {
    uint16_t off, len;
    char name[56];       /* "record type", "server_name host", "ext 0x002b (supported_versions) data" */
};

/*
 * Labels the fields of the TLS record [p, end) holding one ClientHello:
 * record header (type, version, length), handshake header, version, random,
 * session id, cipher suites, compression, extensions length, and for each
 * extension its header and its data (server_name split into list length,
 * name type, name length and host). Fields cover the record exactly, in
 * order. Writes up to |cap| fields into |out|; returns how many, SD_EPROTO
 * when the bytes are not such a record (a length overruns its block, a
 * block is not consumed exactly), SD_ERANGE when |cap| is too small.
 */
int sd_hello_fields(const uint8_t *p, const uint8_t *end, struct sd_hello_field *out, size_t cap);

struct sd_locate_config {
    const char *addr;           /* the slowdown serve */
    uint16_t plain_port;        /* 0: 80 */
    const char *bind_addr;
    const char *name;           /* the name whose ClientHello is probed */
    uint64_t window_ns;         /* per probe; 0: 1.5 s */
    uint64_t threshold_bytes;   /* fewer bytes in the window: triggered (sd_locate_threshold) */
    uint32_t max_probes;        /* budget of the byte search; 0: 128 */
    uint32_t parallel;          /* probes at once; 0: 16 (at most SD_DETECT_MAX_PARALLEL) */
};

/*
 * The threshold of a probe of |window_ns|: the geometric mean of the
 * throttled rate |slow_kbps| (at least 16 kbit/s) and the free rate
 * |fast_kbps|, over the window, plus a 64 KB burst allowance; at most 8 MB.
 */
uint64_t sd_locate_threshold(uint64_t window_ns, double slow_kbps, double fast_kbps);

/* A run of bytes that matter: inverting any of them alone lifts the trigger. */
struct sd_locate_region {
    uint16_t off, len;
    bool resolved;              /* down to single bytes; false when the budget ran out first */
};

struct sd_trigger_result {
    uint8_t hello[SD_HELLO_MAX];
    size_t hello_len;
    struct sd_hello_field fields[SD_HELLO_FIELDS_MAX];
    int n_fields;
    bool field_matters[SD_HELLO_FIELDS_MAX];
    bool baseline;              /* the unmasked hello triggers on the plain port */
    bool inverted;              /* the wholly inverted hello triggers too (then nothing can be told) */
    struct sd_locate_region regions[SD_LOCATE_REGIONS_MAX]; /* merged runs, in order */
    int n_regions;
    uint32_t probes;
    double seconds;
};

/*
 * Searches which bytes of the ClientHello of cfg->name matter to the path's
 * censor (blocking, a few rounds of cfg->window_ns). Returns 0 (see
 * res->baseline before reading the regions), SD_EINVAL for bad options or a
 * name OpenSSL refuses, SD_EPROTO if OpenSSL's hello cannot be labelled.
 */
int sd_locate_trigger(const struct sd_locate_config *cfg, struct sd_trigger_result *res);

struct sd_hop_result {
    int max_ttl;
    bool triggered[SD_LOCATE_TTL_MAX + 1]; /* by TTL, 1..max_ttl */
    bool probed[SD_LOCATE_TTL_MAX + 1];    /* the injection worked for this TTL */
    int hop;                    /* the least TTL that triggers when every larger one does too, else 0 */
    bool baseline;              /* an uninjected control connection was not triggered */
    char detail[160];           /* why nothing could be probed, or "" */
};

/*
 * Injects the ClientHello of cfg->name with TTL 1..max_ttl (IPv4 only; raw
 * socket, needs CAP_NET_RAW and CAP_NET_ADMIN for TCP_REPAIR, i.e. root) on
 * fresh plain connections, one per TTL, all at once, then downloads on each.
 * Returns 0 (res->detail says when no TTL could be probed), SD_EINVAL for
 * bad options or an IPv6 server, SD_EPERM without the privileges.
 */
int sd_locate_hop(const struct sd_locate_config *cfg, int max_ttl, struct sd_hop_result *res);

#endif
