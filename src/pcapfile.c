/*
 * pcapfile.c - classic pcap files read in large chunks, records handed out
 * in place.
 *
 *   file:   magic(4) major(2) minor(2) thiszone(4) sigfigs(4) snaplen(4) linktype(4)
 *   record: ts_sec(4) ts_frac(4) caplen(4) len(4) bytes[caplen]
 *
 * All fields are in the writer's byte order, which the magic reveals
 * (a1b2c3d4 microseconds, a1b23c4d nanoseconds). One buffer of
 * BUF_DATA + MAX_RECORD bytes holds a window of the file; when the next
 * record is not wholly inside it, the remainder moves to the front and the
 * buffer is topped up with read(). So every record is contiguous, nothing is
 * copied twice, and a system call fetches 256 KB or more: few enough calls,
 * and a window that stays in a 1 MB L2 cache between the kernel's copy and
 * the parsing.
 *
 * Edge cases follow libpcap's savefile reader (sf-pcap.c), so both paths
 * give the same packets and the same errors, in the same words: a snaplen
 * of 0 or above 2^31 - 1 means 256 KB; a record longer than the snaplen is
 * cut to it; a record above 256 KB, or a file that ends inside a record, is
 * an error. Versions other than 2.4 (whose caplen and len may be swapped)
 * and link types outside the set the decoder supports are left to libpcap
 * (SD_ENOTSUP), which names them in its errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <pcap/dlt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pcapfile.h"

enum {
    FILE_HDR = 24,
    REC_HDR = 16,
    MAX_CAPLEN = 262144,
    BUF_DATA = 1 << 18,
    BUF_CAP = BUF_DATA + REC_HDR + MAX_CAPLEN,
    LINKTYPE_RAW = 101,
};

struct sd_pcapfile {
    int fd;
    bool swapped;      /* fields are big-endian (byte-swapped on a little-endian host) */
    bool nano;         /* ts_frac counts nanoseconds */
    bool eof;
    int dlt;
    uint32_t snaplen;
    char err[96];      /* what the last error was, in libpcap's words */
    size_t pos, have;  /* next record at buf[pos]; buf[have] is the end of the data */
    uint8_t buf[BUF_CAP];
};

static uint32_t rd32(const struct sd_pcapfile *r, const uint8_t *p)
{
    if (r->swapped)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Makes at least |need| bytes available at buf[pos] unless the file ends
 * first. Returns the bytes available, or SD_EIO. */
static long fill(struct sd_pcapfile *r, size_t need)
{
    if (r->have - r->pos >= need || r->eof)
        return (long)(r->have - r->pos);
    memmove(r->buf, r->buf + r->pos, r->have - r->pos);
    r->have -= r->pos;
    r->pos = 0;
    while (r->have < need) {
        ssize_t n = read(r->fd, r->buf + r->have, BUF_CAP - r->have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(r->err, sizeof(r->err), "error reading dump file: %s", strerror(errno));
            return SD_EIO;
        }
        if (n == 0) {
            r->eof = true;
            break;
        }
        r->have += (size_t)n;
    }
    return (long)r->have;
}

/* The link types the decoder supports, as libpcap numbers them (its
 * linktype-to-DLT mapping; only raw IP differs), or -1. */
static int dlt_of(uint32_t linktype)
{
    if (linktype >> 16)
        return -1; /* reserved or FCS bits: libpcap's business */
    switch (linktype) {
    case LINKTYPE_RAW:
        return DLT_RAW;
    case 0:
    case 1:
    case 108:
    case 113:
    case 228:
    case 229:
    case 276:
        return (int)linktype;
    }
    return -1;
}

static int parse_header(struct sd_pcapfile *r)
{
    if (fill(r, FILE_HDR) < FILE_HDR)
        return SD_EPROTO;
    const uint8_t *h = r->buf;
    uint32_t magic = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d)
        r->swapped = true; /* written big-endian */
    else if (magic != 0xd4c3b2a1 && magic != 0x4d3cb2a1)
        return SD_ENOTSUP;
    r->nano = magic == 0xa1b23c4d || magic == 0x4d3cb2a1;
    uint16_t major = r->swapped ? (uint16_t)(h[4] << 8 | h[5]) : (uint16_t)(h[5] << 8 | h[4]);
    uint16_t minor = r->swapped ? (uint16_t)(h[6] << 8 | h[7]) : (uint16_t)(h[7] << 8 | h[6]);
    r->snaplen = rd32(r, h + 16);
    if (r->snaplen == 0 || r->snaplen > INT32_MAX) /* libpcap keeps any other value, even above 256 KB */
        r->snaplen = MAX_CAPLEN;
    r->dlt = dlt_of(rd32(r, h + 20));
    if (major != 2 || minor != 4 || r->dlt < 0)
        return SD_ENOTSUP; /* older versions may swap caplen and len: libpcap knows */
    r->pos = FILE_HDR;
    return 0;
}

int sd_pcapfile_open(struct sd_pcapfile **out, const char *path)
{
    *out = NULL;
    struct sd_pcapfile *r = malloc(sizeof(*r));
    if (!r)
        return SD_ENOMEM;
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        free(r);
        errno = e;
        return SD_EIO;
    }
    r->pos = r->have = 0;
    r->err[0] = 0;
    r->eof = false;
    r->swapped = r->nano = false;
    int rc = parse_header(r);
    if (rc < 0) {
        sd_pcapfile_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

const char *sd_pcapfile_error(const struct sd_pcapfile *r)
{
    return r->err;
}

int sd_pcapfile_dlt(const struct sd_pcapfile *r)
{
    return r->dlt;
}

/* Takes the next record. With |may_fill| false nothing is read or moved
 * (the records handed out stay valid): a record not wholly in the buffer, or
 * a bad one, returns 0 and is left for a call that may fill. */
static int take(struct sd_pcapfile *r, bool may_fill, struct sd_pcaprec *rec)
{
    long n = may_fill ? fill(r, REC_HDR) : (long)(r->have - r->pos);
    if (n < 0)
        return (int)n;
    if (n < REC_HDR && (!may_fill || n == 0))
        return 0;
    if (n < REC_HDR) {
        snprintf(r->err, sizeof(r->err), "truncated dump file; tried to read %d header bytes, only got %ld", REC_HDR, n);
        return SD_EPROTO;
    }
    const uint8_t *h = r->buf + r->pos;
    uint32_t sec = rd32(r, h), frac = rd32(r, h + 4), cap = rd32(r, h + 8);
    if (cap > MAX_CAPLEN) {
        if (!may_fill)
            return 0;
        if (cap > r->snaplen)
            snprintf(r->err, sizeof(r->err), "invalid packet capture length %u, bigger than snaplen of %u", cap,
                     r->snaplen);
        else
            snprintf(r->err, sizeof(r->err), "invalid packet capture length %u, bigger than maximum of %u", cap,
                     (unsigned)MAX_CAPLEN);
        return SD_EPROTO;
    }
    if (may_fill && (n = fill(r, REC_HDR + (size_t)cap)) < 0)
        return (int)n;
    if ((size_t)n < REC_HDR + (size_t)cap) {
        if (!may_fill)
            return 0;
        long got = n - REC_HDR; /* libpcap reads a cut record up to the snaplen first */
        snprintf(r->err, sizeof(r->err), "truncated dump file; tried to read %u captured bytes, only got %ld",
                 cap > r->snaplen && got < (long)r->snaplen ? r->snaplen : cap, got);
        return SD_EPROTO;
    }
    rec->data = r->buf + r->pos + REC_HDR;
    rec->caplen = SD_MIN(cap, r->snaplen);
    /* libpcap reads both fields as signed 32-bit numbers in a file of the
     * host's byte order and as unsigned ones in a byte-swapped file: the same
     * arithmetic, modulo 2^64, so that odd times come out the same. */
    bool native = r->swapped == (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__);
    uint64_t s64 = native ? (uint64_t)(int64_t)(int32_t)sec : sec;
    uint64_t f64 = native ? (uint64_t)(int64_t)(int32_t)frac : frac;
    rec->ts_ns = s64 * 1000000000u + f64 * (r->nano ? 1u : 1000u);
    r->pos += REC_HDR + (size_t)cap;
    return 1;
}

int sd_pcapfile_next_batch(struct sd_pcapfile *r, struct sd_pcaprec *recs, int max)
{
    int n = max > 0 ? take(r, true, &recs[0]) : 0;
    if (n <= 0)
        return n;
    while (n < max && take(r, false, &recs[n]) == 1)
        n++;
    return n;
}

int sd_pcapfile_next(struct sd_pcapfile *r, const uint8_t **data, uint32_t *caplen, uint64_t *ts_ns)
{
    struct sd_pcaprec rec = {NULL, 0, 0};
    int rc = take(r, true, &rec);
    if (rc == 1) {
        *data = rec.data;
        *caplen = rec.caplen;
        *ts_ns = rec.ts_ns;
    }
    return rc;
}

void sd_pcapfile_close(struct sd_pcapfile *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}
