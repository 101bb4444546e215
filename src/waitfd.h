/*
 * waitfd.h - the wait at the top of every server and worker loop: until a
 * descriptor is readable, the stop descriptor is (or hangs up), or a time
 * passes.
 */
#ifndef SD_WAITFD_H
#define SD_WAITFD_H

#include <errno.h>
#include <poll.h>

#include "sd.h"

enum sd_wait { SD_WAIT_STOP = 0, SD_WAIT_READY = 1, SD_WAIT_IDLE = 2 };

/*
 * Waits on |fd| and |stop_fd| for at most |timeout_ms| (-1: no limit).
 * Returns SD_WAIT_STOP when stop_fd is readable or hung up (it wins over
 * fd), SD_WAIT_READY when fd is readable, SD_WAIT_IDLE when the time passed
 * or a signal interrupted the wait, SD_EIO when poll failed.
 */
static inline int sd_wait_in(int fd, int stop_fd, int timeout_ms)
{
    struct pollfd p[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    int n = poll(p, 2, timeout_ms);
    if (n < 0)
        return errno == EINTR ? SD_WAIT_IDLE : SD_EIO;
    if (p[1].revents)
        return SD_WAIT_STOP;
    return (p[0].revents & POLLIN) ? SD_WAIT_READY : SD_WAIT_IDLE;
}

#endif
