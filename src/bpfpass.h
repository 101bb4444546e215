/*
 * bpfpass.h - the daemon's half of `slowdown run --bypass bpf`: the pinned
 * eBPF program that iptables' bpf match runs on every packet, and the map of
 * settled flows it reads (the kernel's half: bpf/bypass.bpf.c).
 *
 *   start (root):  sd_bpfpass_install  load the program embedded in the
 *                  binary, pin program and map under SD_BPFPASS_DIR
 *   rules:         -m bpf --object-pinned PROG -j RETURN
 *   workers:       sd_bpfpass_open(MAP) once, sd_bpfpass_set per settled
 *                  flow (add) and per bare SYN (delete)
 *   stop:          sd_bpfpass_remove: unpinned, the kernel frees both once
 *                  the rules that hold the program are gone
 *
 * Pins are per network namespace and queue, so labs side by side and two
 * daemons on different queues never share one.
 */
#ifndef SD_BPFPASS_H
#define SD_BPFPASS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io_nfq.h"
#include "sd.h"

#define SD_BPFPASS_DIR "/run/slowdown/bpf"
enum { SD_BPFPASS_PATH = 80 };

/* The pin paths of |queue|'s program and map in this process's network namespace
 * (SD_BPFPASS_DIR/net-INODE-q-QUEUE-prog and -map: bpffs refuses dots). 0, or SD_EIO when the namespace cannot be named. */
int sd_bpfpass_paths(uint16_t queue, char prog[SD_BPFPASS_PATH], char map[SD_BPFPASS_PATH]);

/*
 * Mounts a bpf filesystem at SD_BPFPASS_DIR unless one is there, loads the
 * program with a map of at most |max| flows (least recently used go first
 * when it is full) and pins both, replacing stale pins. Needs CAP_SYS_ADMIN
 * for the mount, CAP_BPF and CAP_NET_ADMIN for the rest. 0, or SD_EIO with
 * the reason in |err|.
 */
int sd_bpfpass_install(const char *prog, const char *map, uint32_t max, char *err, size_t errlen);

/* Unpins both; how many pins were there (0-2). */
int sd_bpfpass_remove(const char *prog, const char *map);

/* Unpins whatever is pinned for network namespace |netns_ino| (every queue's program and map): what a
 * daemon killed before it could clean up left. How many pins went. */
int sd_bpfpass_remove_netns(unsigned long long netns_ino);

/* The pinned map: an fd for sd_bpfpass_set, or SD_EIO. */
int sd_bpfpass_open(const char *map);

/*
 * Adds both directions of flow |t| as last seen at |now_ns| (CLOCK_MONOTONIC,
 * sd_mono_ns()), to match until idle for |timeout_s| seconds (|add|), or
 * deletes them. Synchronous. 0, SD_EINVAL, or SD_EIO (map full cannot
 * happen: an LRU map makes room).
 */
int sd_bpfpass_set(int fd, const struct sd_nfq_tuple *t, bool add, uint64_t now_ns, uint32_t timeout_s);

#endif
