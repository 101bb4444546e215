/*
 * engine_int.h - the engine's internal structures, shared by engine.c (flow
 * life cycle, verdicts), inspect.c (what the payload says) and act.c (what
 * the action does to a packet). Not part of the engine's API.
 */
#ifndef SD_ENGINE_INT_H
#define SD_ENGINE_INT_H

#include "engine.h"
#include "flow.h"
#include "names.h"
#include "pkt.h"
#include "policy.h"
#include "reasm.h"

struct sd_quic_ctx;
struct sd_frag;
struct sd_hostmark;

/* Bits of sd_flow.state. */
enum {
    SD_FS_KEEP = 1 << 0,      /* keep-looking mode entered (B6) */
    SD_FS_FACT = 1 << 1,      /* an inspection fact (hello, host, qname) was evaluated */
    SD_FS_ISN = 1 << 2,       /* u.r.isn holds the client's first sequence number */
    SD_FS_RST_SENT = 1 << 3,  /* freeze: the RST was sent */
    SD_FS_SEEN_S2C = 1 << 4,  /* a packet from the server was seen */
    SD_FS_QUIC = 1 << 5,      /* the first datagram looked like QUIC */
    SD_FS_LATE = 1 << 6,      /* quic.late-cut: a small non-QUIC first datagram; later Initials watched */
    SD_FS_LATE_ARMED = 1 << 7, /* ... an Initial matching the header rule came: budget counts server datagrams */
};

enum { SD_PREFETCH_MAX = 8 }; /* packets sd_engine_prefetch may run ahead */

/* Per-flow extras kept in tracking mode (pcap reports, explain). */
/* Two cache lines: what every packet updates first, the rest after (the
 * array is 64-byte aligned, so a packet touches one line of it). */
struct sd_flow_ext {
    uint64_t packets[2], bytes[2], dropped[2];
    uint64_t last_ns;
    uint32_t npkt;            /* packets seen, for the trace */
    uint64_t seq, first_ns;
    char *name[3];            /* sni, http host, dns qname (malloc'd once per flow) */
    char *why;                /* explain trace */
    uint32_t why_len, why_cap;
    uint16_t name_len[3];
};

enum { SD_NAME_SNI = 0, SD_NAME_HOST = 1, SD_NAME_QNAME = 2 };

/* A reassembly slot. A flow under an action keeps the action's state (policer
 * credit, freeze counters) in the union that the slot number and the ISN take
 * while it reassembles: the state waits here (saved, with has_saved) and goes
 * back to the flow when the slot is released. */
struct sd_reasm_slot {
    struct sd_reasm r;
    uint32_t next_free;
    uint32_t saved[2];
    bool has_saved;
};

/* What inspection of one packet found: the facts rules are evaluated on. */
struct sd_facts {
    struct sd_iov sni;        /* TLS/QUIC server_name */
    struct sd_iov host;       /* HTTP Host / CONNECT */
    struct sd_iov qname;      /* DNS */
    bool hello;               /* a ClientHello was parsed */
    bool quic;                /* the hello came from QUIC */
    bool ech;
    bool quic_hdr;            /* the QUIC header rule matched */
    bool quic_fail;
};

struct sd_engine {
    const struct sd_policy *pol;
    struct sd_engine_config cfg;
    struct sd_flow_table *ft;
    struct {                  /* packets announced by sd_engine_prefetch, oldest first */
        struct sd_flow_key k;
        uint64_t h;
    } pf[SD_PREFETCH_MAX];
    uint8_t pf_head, pf_n;
    struct sd_flow_ext *ext;  /* NULL unless cfg.track; 64-byte aligned inside ext_mem */
    void *ext_mem;
    uint64_t epoch_ns, now_ns;
    bool have_epoch;
    uint64_t next_seq;
    uint32_t sweep_hand;
    uint64_t rng;
    struct sd_reasm_slot *rslots;
    uint8_t *rmem;
    uint32_t rfree;           /* free list head of rslots */
    uint8_t *scratch;         /* TLS stream scratch, reasm_bytes */
    struct sd_quic_ctx *quic;
    struct sd_frag *frag;     /* held IP fragments (spec 4.4) */
    struct sd_hostmark *marks; /* host marks per client (spec 4.8) */
    uint8_t out[128];         /* replacement packet */
    struct sd_engine_stats st;
    struct sd_rule_stats *rst;  /* [SD_POLICY_MAX_RULES + 1]: per-rule counters, indexed like sd_flow.rule */
    struct sd_rule_stats *rst_spare; /* same size: the remapping buffer of sd_engine_set_policy */
};

/* inspect.c: looks at the payload of |pkt| for flow |slot| in direction |dir|
 * (0 c2s, 1 s2c); fills |facts|; returns true when inspection of the flow
 * should end after this packet (gave up, budget exhausted, decided). */
bool sd__inspect(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const struct sd_pkt *pkt, int dir,
                 struct sd_facts *facts);
void sd__reasm_release(struct sd_engine *e, struct sd_flow *f);
void sd__trace(struct sd_engine *e, uint32_t slot, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sd__set_name(struct sd_engine *e, uint32_t slot, int which, struct sd_iov v);

/* act.c: applies the flow's action to the packet. */
/* |prev_ms| is the flow's last-seen time before this packet (long idle gaps
 * are measured from it: the policer's 32-bit nanosecond clock wraps). */
void sd__act(struct sd_engine *e, struct sd_flow *f, const struct sd_pkt *pkt, int dir, bool trigger_pkt,
             uint32_t prev_ms, struct sd_verdict *v);
void sd__act_start(struct sd_engine *e, struct sd_flow *f, const struct sd_action *a);

/* Where the action's two words of state are: in the flow's union, or in its
 * reassembly slot while the flow holds one (struct sd_reasm_slot). */
static inline uint32_t *sd__act_state(struct sd_engine *e, struct sd_flow *f)
{
    return (f->flags & SD_FF_REASM) ? e->rslots[f->u.r.slot].saved : f->u.tok;
}
/* The engine's random numbers (xorshift64*, seeded from its key: runs repeat). */
uint64_t sd__rnd(struct sd_engine *e);

/* The flow's client address and family. */
static inline const uint8_t *sd__flow_client(const struct sd_flow *f, int *family)
{
    *family = (f->flags & SD_FF_V6) ? 6 : 4;
    return (f->flags & SD_FF_CLIENT_B) ? f->b : f->a;
}

static inline bool sd__flow_is_inside(const struct sd_engine *e, int family, const uint8_t *addr)
{
    if (e->pol->inside_set < 0)
        return false;
    return (sd_ipset_lookup(e->pol->ips, family, addr) >> e->pol->inside_set) & 1;
}

#endif
