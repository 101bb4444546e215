/*
 * replay.h - the bit-inverted replay of XUE21 (spec 3.1 step 3) as a framing
 * both ends of a measurement understand: the detector's control C sends a
 * target ClientHello and then its request line with every byte inverted, so
 * that a censor sees no structure at all, and `slowdown serve` (plain port)
 * still learns what it is asked to do.
 *
 *   ~(TLS record: ClientHello, one record)  ~("GET /down?seconds=S\n")  [upload bytes]
 *
 * The server recognises the inverted record header (0xe9 0xfc, i.e. ~0x16
 * ~0x03), skips the record by its (inverted) length and parses the inverted
 * request that follows. Anything else stays "not a request" (the server's
 * default mode), as before.
 */
#ifndef SD_REPLAY_H
#define SD_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_serve_req;

enum { SD_REPLAY_RECORD_MAX = 16384 + 256 }; /* the largest TLS record we accept to skip */

/*
 * Writes into |out| (capacity |cap|) the first flight of control C: the TLS
 * record |hello| (|hello_len| bytes, one whole record as
 * sd_fetch_client_hello makes it) and the request line |req| (|req_len|
 * bytes, ending in LF), every byte inverted. Returns the length, SD_EINVAL
 * when |hello| is not one TLS handshake record, SD_ERANGE when |cap| is too
 * small.
 */
int sd_replay_build(const uint8_t *hello, size_t hello_len, const char *req, size_t req_len, uint8_t *out,
                    size_t cap);

/*
 * Parses the start of [p, end) as an inverted first flight. Returns the bytes
 * it takes up (the record and the request line; |req| filled), SD_EAGAIN when
 * the bytes so far can still become one, SD_EPROTO when they cannot (not an
 * inverted handshake record, a record over SD_REPLAY_RECORD_MAX, or no
 * request after it). Reads only [p, end); copies at most SD_SERVE_REQ_MAX
 * bytes to a stack buffer.
 */
int sd_replay_parse(const uint8_t *p, const uint8_t *end, struct sd_serve_req *req);

#endif
