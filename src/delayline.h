/*
 * delayline.h - a fixed delay for every packet of a netfilter queue: the
 * lab's stand-in for netem, which this kernel does not have.
 */
#ifndef SD_DELAYLINE_H
#define SD_DELAYLINE_H

#include <stddef.h>
#include <stdint.h>

struct sd_delayline_config {
    uint16_t queue;       /* NFQUEUE number to serve */
    uint64_t delay_ns;    /* how long each packet is held */
    uint32_t maxlen;      /* packets held at most (kernel queue length; 0: 65536) */
};

/*
 * Binds the queue and holds each packet for delay_ns before accepting it,
 * until |stop_fd| becomes readable. |on_ready| (may be NULL) is called once
 * the queue is bound. Returns 0, or SD_EIO with |err| filled.
 */
int sd_delayline_run(const struct sd_delayline_config *c, int stop_fd, void (*on_ready)(void *), void *arg,
                     char *err, size_t errlen);

#endif
