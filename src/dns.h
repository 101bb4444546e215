/*
 * dns.h - the query name of a DNS message (UDP, or TCP with its 2-byte
 * length prefix). Names are decoded to dotted text in a caller's buffer;
 * compression pointers are followed with a loop bound.
 */
#ifndef SD_DNS_H
#define SD_DNS_H

#include <stddef.h>
#include <stdint.h>

#include "sd.h"

enum { SD_DNS_NAME_MAX = 255 };

struct sd_dns_query {
    uint16_t id;
    uint16_t qtype;
    uint16_t qclass;
    uint16_t flags;              /* header flags (QR, opcode, ...) */
    size_t name_len;             /* bytes in name, no trailing dot; 0 for the root */
    char name[SD_DNS_NAME_MAX + 1]; /* NUL-terminated dotted name, labels as sent (case kept) */
};

/*
 * Parses the first question of the DNS message |p|..|end| (a query: QR = 0,
 * QDCOUNT >= 1). Label bytes outside printable ASCII are written as \DDD
 * escapes only if they fit; otherwise the message is rejected. Returns the
 * bytes consumed through the question (> 0), SD_EAGAIN when cut short,
 * SD_EPROTO when malformed or not a query.
 */
int sd_dns_parse_query(const uint8_t *p, const uint8_t *end, struct sd_dns_query *q);

/* Same over TCP: |p| starts with the 2-byte message length. */
int sd_dns_parse_query_tcp(const uint8_t *p, const uint8_t *end, struct sd_dns_query *q);

#endif
