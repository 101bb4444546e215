/*
 * frag.c - holding IP fragments until their set is complete (spec 4.4).
 *
 * A queue is keyed by (family, source, destination, protocol, id). It keeps
 * the chunk indices of its fragments in arrival order and a coverage count:
 * the set is complete when the fragment with offset 0 and the last fragment
 * (MF clear) are both present and the bytes received add up to the total
 * length (duplicates and overlaps are not counted twice, because a fragment
 * whose range is already covered is dropped as a duplicate).
 *
 * Lookup is a linear probe over a small open-addressed table: fragments are
 * rare, and the table is bounded.
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "frag.h"
#include "pkt.h"

enum { CHUNK = 1600, MAX_FRAGS = SD_FRAG_MAX_FRAGS };

struct queue {
    bool used, condemned, have_first, have_last;
    uint8_t family, proto, n, ttl;
    uint8_t src[16], dst[16];
    uint32_t id;
    uint32_t total;      /* payload bytes of the whole packet, known from the last fragment */
    uint32_t got;        /* payload bytes received */
    uint64_t born_ns;
    struct {
        uint32_t chunk;
        uint16_t len, off, end;
    } f[MAX_FRAGS];
};

struct sd_frag {
    struct queue *q;
    uint32_t nq;
    uint8_t *chunks;
    uint32_t *free_chunks;
    uint32_t n_free, n_chunks;
};

struct sd_frag *sd_frag_new(uint32_t queues, uint32_t chunks)
{
    if (queues == 0)
        return NULL;
    if (chunks == 0) {
        uint64_t c = (uint64_t)queues * SD_FRAG_CHUNKS_PER_QUEUE;
        chunks = (uint32_t)(c < MAX_FRAGS ? MAX_FRAGS : c > UINT32_MAX / CHUNK ? UINT32_MAX / CHUNK : c);
    }
    struct sd_frag *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->q = calloc(queues, sizeof(*f->q));
    f->chunks = malloc((size_t)chunks * CHUNK);
    f->free_chunks = malloc(chunks * sizeof(uint32_t));
    if (!f->q || !f->chunks || !f->free_chunks) {
        sd_frag_free(f);
        return NULL;
    }
    f->nq = queues;
    f->n_chunks = chunks;
    for (uint32_t i = 0; i < chunks; i++)
        f->free_chunks[i] = chunks - 1 - i;
    f->n_free = chunks;
    return f;
}

void sd_frag_free(struct sd_frag *f)
{
    if (!f)
        return;
    free(f->q);
    free(f->chunks);
    free(f->free_chunks);
    free(f);
}

static void drop_queue(struct sd_frag *f, struct queue *q)
{
    for (unsigned i = 0; i < q->n; i++)
        f->free_chunks[f->n_free++] = q->f[i].chunk;
    memset(q, 0, sizeof(*q));
}

static struct queue *find(struct sd_frag *f, const struct sd_pkt *pkt, bool create)
{
    size_t alen = pkt->family == 6 ? 16 : 4;
    uint32_t h = pkt->frag_id * 2654435761u ^ pkt->saddr[alen - 1] ^ (uint32_t)pkt->daddr[alen - 1] << 8;
    struct queue *empty = NULL;
    for (uint32_t k = 0; k < f->nq; k++) {
        struct queue *q = &f->q[(h + k) % f->nq];
        if (!q->used) {
            if (!empty)
                empty = q;
            continue;
        }
        if (q->id == pkt->frag_id && q->family == pkt->family && q->proto == pkt->proto &&
            !memcmp(q->src, pkt->saddr, alen) && !memcmp(q->dst, pkt->daddr, alen))
            return q;
    }
    if (!create || !empty)
        return NULL;
    memset(empty, 0, sizeof(*empty));
    empty->used = true;
    empty->family = pkt->family;
    empty->proto = pkt->proto;
    empty->id = pkt->frag_id;
    memcpy(empty->src, pkt->saddr, alen);
    memcpy(empty->dst, pkt->daddr, alen);
    return empty;
}

int sd_frag_add(struct sd_frag *f, const struct sd_pkt *pkt, uint64_t now_ns, unsigned max, bool condemn,
                uint32_t *queue)
{
    size_t l3len = pkt->caplen - pkt->l3_off;
    if (pkt->ip_len < l3len)
        l3len = pkt->ip_len;
    if (l3len > CHUNK)
        return SD_FRAG_PASS;
    struct queue *q = find(f, pkt, true);
    if (!q)
        return SD_FRAG_PASS;
    if (!q->born_ns)
        q->born_ns = now_ns;
    q->condemned |= condemn;
    /* The fragment's payload range; payload_off/len cover the fragment data
     * (for a first fragment, the transport header is part of it). */
    size_t hdr = pkt->family == 4 ? (size_t)(pkt->frame[pkt->l3_off] & 15) * 4 : (size_t)(pkt->l4_off - pkt->l3_off);
    uint32_t dlen = (uint32_t)(pkt->ip_len - hdr);
    uint32_t off = pkt->frag_off, end = off + dlen;
    for (unsigned i = 0; i < q->n; i++)
        if (off >= q->f[i].off && end <= q->f[i].end)
            return SD_FRAG_DROP; /* a duplicate adds nothing */
    if (q->n >= max || q->n >= MAX_FRAGS || f->n_free == 0) {
        drop_queue(f, q);
        return SD_FRAG_DROP; /* "a packet with more than 45 fragments is not handled" */
    }
    uint32_t c = f->free_chunks[--f->n_free];
    memcpy(f->chunks + (size_t)c * CHUNK, pkt->frame + pkt->l3_off, l3len);
    q->f[q->n].chunk = c;
    q->f[q->n].len = (uint16_t)l3len;
    q->f[q->n].off = (uint16_t)off;
    q->f[q->n].end = (uint16_t)end;
    q->n++;
    q->got += dlen;
    if (off == 0) {
        q->have_first = true;
        q->ttl = pkt->ttl;
    }
    if (!(pkt->flags & SD_PKT_FRAG_MF)) {
        q->have_last = true;
        q->total = end;
    }
    if (q->have_first && q->have_last && q->got >= q->total) {
        *queue = (uint32_t)(q - f->q);
        if (q->condemned) {
            drop_queue(f, q);
            return SD_FRAG_DROP;
        }
        return SD_FRAG_RELEASE;
    }
    return SD_FRAG_HELD;
}

void sd_frag_release(struct sd_frag *f, uint32_t queue, void (*emit)(void *arg, const uint8_t *l3, size_t len),
                     void *arg)
{
    struct queue *q = &f->q[queue];
    for (unsigned i = 0; i < q->n; i++) {
        uint8_t *p = f->chunks + (size_t)q->f[i].chunk * CHUNK;
        if (q->family == 4) {
            p[8] = q->ttl;
            size_t hl = (size_t)(p[0] & 15) * 4;
            p[10] = p[11] = 0;
            uint16_t sum = sd_csum_fold(sd_csum_add(0, p, hl));
            sd_put16be(p + 10, sum);
        } else {
            p[7] = q->ttl;
        }
        emit(arg, p, q->f[i].len);
    }
    drop_queue(f, q);
}

uint32_t sd_frag_expire(struct sd_frag *f, uint64_t now_ns, uint64_t timeout_ns)
{
    uint32_t dropped = 0;
    for (uint32_t i = 0; i < f->nq; i++) {
        struct queue *q = &f->q[i];
        if (q->used && now_ns - q->born_ns > timeout_ns) {
            dropped += q->n;
            drop_queue(f, q);
        }
    }
    return dropped;
}
