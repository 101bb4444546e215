/* err.c - error strings for the SD_E* codes of sd.h. */
#include "sd.h"

const char *sd_strerror(int err)
{
    switch (err) {
    case SD_OK: return "success";
    case SD_EAGAIN: return "incomplete input";
    case SD_EPROTO: return "malformed input";
    case SD_ENOMEM: return "out of memory";
    case SD_EINVAL: return "invalid argument";
    case SD_ENOENT: return "not found";
    case SD_EIO: return "input/output error";
    case SD_ERANGE: return "value out of range";
    case SD_ENOTSUP: return "not supported";
    case SD_EEXIST: return "already exists";
    case SD_EPERM: return "permission denied";
    case SD_ECRYPTO: return "decryption failed";
    }
    return "unknown error";
}
