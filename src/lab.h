/*
 * lab.h - the one-command network lab: three network namespaces in a row,
 *
 *   client (inside)          censor (router)                 server (outside)
 *   eth0 192.0.2.2/24   ==   in0 192.0.2.1/24
 *        2001:db8:1::2/64        2001:db8:1::1/64
 *                                out0 203.0.113.1/24   ==   eth0 203.0.113.2/24
 *                                     2001:db8:2::1/64           2001:db8:2::2/64
 *
 * with `slowdown run` inline in the censor (NFQUEUE, inside = the client's
 * networks; only packets coming in on in0 and out0 are inspected) and
 * `slowdown serve` in the server (TLS on 443, plain TCP on 80). With a
 * management network (labmgmt.h) the censor has a third link, mgmt0, to a
 * policy server shared with other labs.
 * Only TEST-NET and documentation prefixes are used, and only inside the
 * lab's own namespaces.
 *
 * A lab is named by an id ([a-z0-9], up to 12 characters); its namespaces are
 * sd-<id>-client, sd-<id>-censor and sd-<id>-server, and it is marked by the
 * directory /run/slowdown/labs/<id>/ (state file, logs). Nothing is touched
 * without that mark: a namespace of the right name but another origin (its
 * inode differs from the one recorded at creation) is left alone.
 *
 * Setting up and tearing down run the `ip`, `tc` and `iptables-legacy`
 * commands and report the first failure with the command's own message.
 * Every function here needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN).
 */
#ifndef SD_LAB_H
#define SD_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sd.h"

#define SD_LAB_CLIENT4 "192.0.2.2"
#define SD_LAB_CLIENT6 "2001:db8:1::2"
#define SD_LAB_SERVER4 "203.0.113.2"
#define SD_LAB_SERVER6 "2001:db8:2::2"
#define SD_LAB_INSIDE "192.0.2.0/24,2001:db8:1::/64"
#define SD_LAB_DIR "/run/slowdown/labs"

enum {
    SD_LAB_ID_MAX = 13,       /* 12 characters and the NUL */
    SD_LAB_TLS_PORT = 443,
    SD_LAB_PLAIN_PORT = 80,
    SD_LAB_CENSOR_QUEUE = 0,  /* NFQUEUE numbers are per namespace */
    SD_LAB_DELAY_QUEUE = 100,
};

enum sd_lab_role { SD_LAB_CLIENT = 0, SD_LAB_CENSOR = 1, SD_LAB_SERVER = 2 };

struct sd_lab_config {
    char id[SD_LAB_ID_MAX];   /* "" to have one made up */
    const char *preset;       /* censor preset; NULL with no policy: tw21-initial */
    const char *policy;       /* censor policy file (made absolute here), or an http:// URL */
    const char *mgmt;         /* join this management network (labmgmt.h), or NULL */
    bool no_censor;           /* plain router, no slowdown run */
    uint32_t rtt_ms;          /* added round-trip time (a delay line in the censor), 0 for none */
    uint32_t shape_kbit;      /* HTB shaping of both directions in the censor, 0 for none */
    const char *exe;          /* slowdown binary for the censor and server; NULL: this one */
    char *const *run_args;    /* more options for `slowdown run`, NULL-terminated, or NULL */
    char *const *serve_args;  /* more options for `slowdown serve`, or NULL */
};

/* What a lab's state file says, for list and for callers that need the pids. */
struct sd_lab_info {
    char id[SD_LAB_ID_MAX];
    char preset[64];
    char policy[256];
    uint32_t rtt_ms, shape_kbit;
    bool no_censor;
    bool complete;            /* set-up finished */
    pid_t censor_pid, server_pid, delay_pid; /* 0 when none */
    char mgmt[SD_LAB_ID_MAX]; /* the management network joined, or "" */
    int mgmt_host;            /* ... the censor's host number there (198.51.100.N) */
    bool censor_alive, server_alive;
};

/* Checks an id: 1-12 characters of [a-z0-9]. */
bool sd_lab_id_ok(const char *id);

/* Writes the namespace name of |role| in lab |id| ("sd-<id>-client"). */
void sd_lab_ns_name(const char *id, int role, char *buf, size_t len);

/*
 * Builds a lab. On success the id is in |id_out| and the censor and server
 * run detached (their logs are in /run/slowdown/labs/<id>/). On failure,
 * whatever was built is torn down again and |err| says what failed.
 * Returns 0, SD_EEXIST (a lab or namespace of that name exists), SD_EINVAL
 * (bad id or option), SD_EPERM (not root) or SD_EIO (a step failed).
 */
int sd_lab_up(const struct sd_lab_config *cfg, char id_out[SD_LAB_ID_MAX], char *err, size_t errlen);

/*
 * Tears lab |id| down: stops every process in its namespaces (SIGTERM, then
 * SIGKILL after 3 s), deletes the namespaces it created and its mark.
 * Returns 0, SD_ENOENT when there is no lab of that id, or SD_EIO when a
 * step failed (|err|; the rest is still done).
 */
int sd_lab_down(const char *id, char *err, size_t errlen);

/* Reads lab |id|'s state. 0, SD_ENOENT or SD_EIO. */
int sd_lab_info(const char *id, struct sd_lab_info *info);

/* Lists the ids of the labs on this machine into |ids| (up to |max|).
 * Returns how many there are (may exceed |max|). */
int sd_lab_list(char ids[][SD_LAB_ID_MAX], int max);

/*
 * Moves the calling thread into the network namespace of |role| in lab |id|
 * (setns). Sockets made afterwards live there. |prev_fd|, when not NULL,
 * receives an fd of the previous namespace for sd_lab_leave. 0, SD_ENOENT,
 * SD_EIO.
 */
int sd_lab_enter(const char *id, int role, int *prev_fd);

/* Returns the calling thread to the namespace of |prev_fd| and closes it. */
int sd_lab_leave(int prev_fd);

/* Role names "client", "censor", "server"; sd_lab_role_parse returns -1 for others. */
const char *sd_lab_role_name(int role);
int sd_lab_role_parse(const char *name);

#endif
