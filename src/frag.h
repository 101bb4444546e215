/*
 * frag.h - TSPU's IP fragment handling (spec 4.4, XUE22 Fig. 8): fragments
 * are held until the set is complete, then forwarded as they came -- not
 * reassembled -- each with the TTL (hop limit) of the zero-offset fragment; a
 * packet of more than `max` fragments is not handled (dropped). Payload is
 * never inspected across fragments.
 *
 * Held fragments are copied into a fixed pool of chunks, sized by the caller
 * (an engine: from its configured fragment queues); queues live in a fixed
 * table. Nothing is allocated after creation. A queue that does not
 * complete within its timeout is dropped, as a kernel's reassembly queue is.
 */
#ifndef SD_FRAG_H
#define SD_FRAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_pkt;
struct sd_frag;

enum sd_frag_result {
    SD_FRAG_HELD = 0,     /* copied and kept */
    SD_FRAG_RELEASE = 1,  /* the set is complete: call sd_frag_release for the queue */
    SD_FRAG_DROP = 2,     /* not handled: too many fragments, or the set was condemned */
    SD_FRAG_PASS = 3,     /* not buffered (no room, too large): forward as is */
};

/* Most fragments one queue holds, whatever a larger frag.max says. */
enum { SD_FRAG_MAX_FRAGS = 64 };

/*
 * |queues| concurrent packets, |chunks| held fragments of at most 1600 bytes.
 * |chunks| 0 sizes the pool from the queues: SD_FRAG_CHUNKS_PER_QUEUE per
 * queue, and never less than one packet of SD_FRAG_MAX_FRAGS fragments.
 */
enum { SD_FRAG_CHUNKS_PER_QUEUE = 4 };
struct sd_frag *sd_frag_new(uint32_t queues, uint32_t chunks);
void sd_frag_free(struct sd_frag *f);

/*
 * Takes the fragment |pkt| (SD_PKT_FRAG set) seen at |now_ns|; |max| is the
 * most fragments a packet may have. On SD_FRAG_RELEASE, *queue says which
 * queue to release. |condemn| marks the set to be dropped when complete (its
 * first fragment was dropped by the flow's action).
 */
int sd_frag_add(struct sd_frag *f, const struct sd_pkt *pkt, uint64_t now_ns, unsigned max, bool condemn,
                uint32_t *queue);

/* Calls |emit| for every fragment of |queue| in arrival order, with the TTL of
 * the zero-offset fragment written in (checksums fixed), then frees the queue. */
void sd_frag_release(struct sd_frag *f, uint32_t queue, void (*emit)(void *arg, const uint8_t *l3, size_t len),
                     void *arg);

/* Drops queues older than |timeout_ns|. Returns how many fragments were dropped. */
uint32_t sd_frag_expire(struct sd_frag *f, uint64_t now_ns, uint64_t timeout_ns);

#endif
