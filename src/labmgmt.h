/*
 * labmgmt.h - the lab's management network: one namespace that several
 * labs' censors reach, as a fleet's boxes reach their centre.
 *
 *   sd-<m>-mgmt:  br0 198.51.100.1/24 (TEST-NET-2)  [slowdown serve --files DIR :80]
 *                  |-- m-<lab1> == mgmt0 198.51.100.2/24 in sd-<lab1>-censor
 *                  |-- m-<lab2> == mgmt0 198.51.100.3/24 in sd-<lab2>-censor
 *                  `-- ...
 *
 * `slowdown lab mgmt up --name M [--serve DIR]` makes the namespace and its
 * bridge, and optionally starts the policy server (filesrv.h) on
 * 198.51.100.1 port 80; `slowdown lab up --mgmt M` plugs the new lab's
 * censor into it, so `--policy http://198.51.100.1/NAME` reaches the centre
 * from every censor; `slowdown lab mgmt down M` stops the server and removes
 * the namespace (the censors' links go with it: the centre is unreachable).
 *
 * The censor's address is claimed with an exclusive file per host number
 * in the mark directory /run/slowdown/mgmt/<m>/ (host-N holds the lab id),
 * released by `slowdown lab down`. As with labs, nothing is deleted unless
 * the mark says this program created it (the namespace's inode matches).
 * Only addresses of TEST-NET-2, only inside namespaces made here.
 */
#ifndef SD_LABMGMT_H
#define SD_LABMGMT_H

#include <stddef.h>
#include <sys/types.h>

#include "lab.h"

#define SD_LAB_MGMT_DIR "/run/slowdown/mgmt"
#define SD_LAB_MGMT_CENTRE "198.51.100.1"

struct sd_lab_mgmt_config {
    char id[SD_LAB_ID_MAX];   /* 1-12 of [a-z0-9] */
    const char *serve_dir;    /* serve these files on SD_LAB_MGMT_CENTRE:80, or NULL */
    const char *exe;          /* slowdown binary for the server; NULL: this one */
};

/* Builds management network |cfg->id|. 0, SD_EEXIST, SD_EINVAL, SD_EPERM,
 * SD_EIO (|err|; what was built is removed again). */
int sd_lab_mgmt_up(const struct sd_lab_mgmt_config *cfg, char *err, size_t errlen);

/* Removes it: stops what runs in it, deletes the namespace and the mark.
 * 0, SD_ENOENT, SD_EIO. */
int sd_lab_mgmt_down(const char *id, char *err, size_t errlen);

/*
 * Plugs the censor namespace |censor_ns| of lab |lab_id| into management
 * network |id|: claims a host number, links mgmt0 to the bridge. Returns
 * the host number (2-254, the censor is 198.51.100.N), or SD_ENOENT (no such
 * network), SD_ERANGE (full), SD_EIO (|err|).
 */
int sd_lab_mgmt_attach(const char *id, const char *lab_id, const char *censor_ns, char *err, size_t errlen);

/* Gives back host number |host| of lab |lab_id| (the link went with the censor namespace). */
void sd_lab_mgmt_detach(const char *id, const char *lab_id, int host);

/* The pid of the policy server of |id|, 0 when none runs. */
pid_t sd_lab_mgmt_server_pid(const char *id);

#endif
