/*
 * replay.c - the inverted first flight of the detector's control C (see
 * replay.h).
 *
 * Building inverts a copy; parsing un-inverts at most one request's worth of
 * bytes after the record into a stack buffer and hands them to the server's
 * own request parser, so the two grammars cannot drift apart. The record
 * length is read from the inverted header (two bytes, big-endian, inverted)
 * and bounded before anything is skipped.
 */
#include <string.h>

#include "bytes.h"
#include "replay.h"
#include "serve.h"

enum {
    REC_HDR = 5,
    INV_HANDSHAKE = 0xe9, /* ~0x16 */
    INV_MAJOR = 0xfc,     /* ~0x03 */
};

int sd_replay_build(const uint8_t *hello, size_t hello_len, const char *req, size_t req_len, uint8_t *out,
                    size_t cap)
{
    if (hello_len < REC_HDR || hello[0] != 0x16 || hello[1] != 0x03 ||
        (size_t)sd_rd16be(hello + 3) + REC_HDR != hello_len || req_len == 0 || req[req_len - 1] != '\n')
        return SD_EINVAL;
    if (hello_len + req_len > cap || hello_len + req_len > INT32_MAX)
        return SD_ERANGE;
    for (size_t i = 0; i < hello_len; i++)
        out[i] = (uint8_t)~hello[i];
    for (size_t i = 0; i < req_len; i++)
        out[hello_len + i] = (uint8_t)~(uint8_t)req[i];
    return (int)(hello_len + req_len);
}

int sd_replay_parse(const uint8_t *p, const uint8_t *end, struct sd_serve_req *req)
{
    uint8_t plain[SD_SERVE_REQ_MAX] = {0};
    size_t avail = (size_t)(end - p);

    memset(req, 0, sizeof(*req));
    /* The flight is written at once and fits a segment: until a byte after
     * the record is here, this is an inverted ClientHello alone (XUE21's
     * control without a request), which must not wait for anything. */
    if (avail < REC_HDR || p[0] != INV_HANDSHAKE || p[1] != INV_MAJOR)
        return SD_EPROTO;
    size_t rec = (size_t)(uint16_t)~sd_rd16be(p + 3);
    /* cppcheck-suppress knownConditionTrueFalse ; ~0xffff is 0 */
    if (rec == 0 || rec > SD_REPLAY_RECORD_MAX || avail < REC_HDR + rec + 1)
        return SD_EPROTO;
    const uint8_t *q = p + REC_HDR + rec;
    size_t n = SD_MIN((size_t)(end - q), sizeof(plain));
    for (size_t i = 0; i < n; i++)
        plain[i] = (uint8_t)~q[i];
    int rc = sd_serve_parse_req(plain, plain + n, req);
    if (rc == SD_EAGAIN && n == sizeof(plain))
        rc = SD_EPROTO; /* cannot grow past one request's worth */
    if (rc < 0)
        return rc;
    return (int)(REC_HDR + rec) + rc;
}
