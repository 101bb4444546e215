/*
 * bypass_key.h - the key of the flows map of `slowdown run --bypass bpf`,
 * shared by the kernel program (bypass.bpf.c) and the daemon (bpfpass.c).
 *
 * One element per direction of a settled flow: the packet's own source and
 * destination, as the program reads them, so it needs no ordering of the
 * two endpoints. Ports are in network order, as on the wire; IPv4
 * addresses fill the first 4 bytes of src and dst, the rest is zero.
 */
#ifndef SD_BYPASS_KEY_H
#define SD_BYPASS_KEY_H

#include <linux/types.h>

struct sd_bypass_key {
    __u8 src[16], dst[16];
    __u16 sport, dport;
    __u8 proto, family; /* IPPROTO_TCP / _UDP; 4 or 6 */
    __u8 pad[2];        /* zero */
};

#endif
