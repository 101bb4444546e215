/*
 * privs.h - giving up capabilities once set-up is done (`slowdown run`).
 *
 * Capabilities belong to threads, not to the process: capset() and the
 * bounding-set prctl change the calling thread only, and a new thread starts
 * with its creator's sets. So sd_privs_drop() must run before the first
 * thread that should not keep the dropped capabilities starts; every thread
 * created afterwards has the reduced sets. It uses libcap-ng.
 */
#ifndef SD_PRIVS_H
#define SD_PRIVS_H

#include <stddef.h>

enum {
    SD_PRIVS_MAX_KEEP = 8,
    SD_PRIVS_EXEC = 1, /* the kept capabilities must survive exec for a non-root uid (ambient set) */
};

/* What sd_privs_drop() did, for the caller to tell. */
struct sd_privs_result {
    int kept[SD_PRIVS_MAX_KEEP]; /* the capabilities of |keep| that were held and stay */
    int n_kept;
    int bounding; /* 1: the bounding set is reduced to |kept|; 0: left as is (no CAP_SETPCAP) */
};

/*
 * Reduces the calling thread's capabilities to those of |keep| (|n| CAP_*
 * values, at most SD_PRIVS_MAX_KEEP) that it holds now: effective and
 * permitted keep exactly these, the inheritable and ambient sets are emptied
 * (with SD_PRIVS_EXEC and a non-root uid, the kept ones that were ambient
 * stay inheritable and ambient, so that a program this process runs gets
 * them), the bounding set is cut to them when the thread has CAP_SETPCAP,
 * and no_new_privs is set: nothing this process runs can gain privileges
 * through set-user-ID bits or file capabilities. A root uid stays root; a
 * program it runs gets the kept capabilities when the bounding set was cut.
 * Returns 0, or SD_EPERM with |err| filled when a set could not be changed
 * (the sets may then be partly reduced).
 */
int sd_privs_drop(const int *keep, size_t n, unsigned flags, struct sd_privs_result *res, char *err,
                  size_t errlen);

/* "cap_net_admin,cap_net_raw" (or "none") for |res|'s kept capabilities, into |buf|. */
void sd_privs_describe(const struct sd_privs_result *res, char *buf, size_t len);

#endif
