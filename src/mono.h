/*
 * mono.h - the one clock of the live tools: CLOCK_MONOTONIC in nanoseconds.
 *
 * I/O loops read it once per batch and pass the value down (house style 7);
 * nothing below the loops reads a clock of its own.
 */
#ifndef SD_MONO_H
#define SD_MONO_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

enum { SD_NS_PER_MS = 1000000, SD_NS_PER_S = 1000000000 };

/* Nanoseconds of CLOCK_MONOTONIC (never fails on Linux). */
static inline uint64_t sd_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SD_NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* Sleeps |ns| nanoseconds, the whole of them even when signals interrupt. */
static inline void sd_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / SD_NS_PER_S), (long)(ns % SD_NS_PER_S)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

#endif
