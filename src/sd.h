/*
 * sd.h - what every slowdown module shares: error codes, byte views and a few
 * compiler helpers. Nothing here allocates or keeps state.
 *
 * Errors follow libuv/ngtcp2: functions return int, 0 (or a byte count) on
 * success and a negative SD_E* code on failure. Parsers return the number of
 * bytes consumed (> 0), SD_EAGAIN when the input is incomplete and SD_EPROTO
 * when it is malformed (the picohttpparser convention).
 */
#ifndef SD_H
#define SD_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define SD_VERSION "0.1.0"

enum sd_err {
    SD_OK = 0,
    SD_EAGAIN = -1,   /* incomplete input: call again with more bytes */
    SD_EPROTO = -2,   /* malformed input */
    SD_ENOMEM = -3,   /* out of memory or out of a fixed-size pool */
    SD_EINVAL = -4,   /* invalid argument or value */
    SD_ENOENT = -5,   /* not found / not present */
    SD_EIO = -6,      /* I/O error (errno may say more) */
    SD_ERANGE = -7,   /* value out of range, capacity exceeded */
    SD_ENOTSUP = -8,  /* valid but unsupported (link type, version) */
    SD_EEXIST = -9,   /* already exists */
    SD_EPERM = -10,   /* not permitted (privileges) */
    SD_ECRYPTO = -11, /* authentication or decryption failed */
};

/* Returns a static, human-readable string for an SD_E* code. */
const char *sd_strerror(int err);

/* A view of bytes owned by someone else (ptls_iovec_t). */
struct sd_iov {
    const uint8_t *p;
    size_t n;
};

#define SD_LIKELY(x) __builtin_expect(!!(x), 1)
#define SD_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Number of elements of an array; fails to compile on a pointer. */
#define SD_COUNTOF(a) \
    (sizeof(a) / sizeof((a)[0]) + 0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))

#define SD_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SD_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
