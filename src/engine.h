/*
 * engine.h - the censor: packets in, verdicts out.
 *
 * One engine owns one flow table and inspects, matches and polices the
 * packets given to it, in order, with their timestamps. It never reads a
 * clock: time is the packet's (pcap time offline, arrival time inline), so
 * offline runs are exact and repeatable. An engine is single-threaded; run one
 * per worker and pin each flow to one worker (hash of the symmetric 5-tuple,
 * sd_engine_flow_hash). The policy is shared, read-only.
 *
 * Per packet the engine allocates nothing: flows live in a table sized at
 * creation, reassembly buffers come from a fixed pool, and held fragments from
 * a fixed pool of frame buffers.
 */
#ifndef SD_ENGINE_H
#define SD_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sd.h"

struct sd_pkt;
struct sd_policy;

enum sd_verdict_kind {
    SD_V_PASS = 0,    /* forward unchanged */
    SD_V_DROP = 1,    /* discard */
    SD_V_REPLACE = 2, /* discard, and forward the L3 packet in data/len instead (an RST/ACK) */
    SD_V_HOLD = 3,    /* the engine kept a copy (an IP fragment); it comes back through on_release */
};

/* What the verdict says about the packet's flow (for inline mode, which can
 * stop sending a flow to user space once nothing more will happen to it). */
enum sd_verdict_flag {
    SD_VF_ACTION = 1 << 0,  /* the flow is under an action (throttle, block, freeze) */
    SD_VF_SETTLED = 1 << 1, /* inspection is over and no action: the flow's later packets all pass */
    SD_VF_S2C = 1 << 2,     /* the packet went server to client (its destination opened the flow) */
};

struct sd_verdict {
    uint8_t kind;         /* enum sd_verdict_kind */
    uint8_t flags;        /* enum sd_verdict_flag */
    const uint8_t *data;  /* SD_V_REPLACE: L3 packet, valid until the next engine call */
    size_t len;
};

/* What triggered a flow's action (JSON "trigger"). */
enum sd_trigger {
    SD_T_NONE = 0,
    SD_T_TLS_SNI,
    SD_T_QUIC_SNI,
    SD_T_HTTP_HOST,
    SD_T_DNS_QNAME,
    SD_T_IP,
    SD_T_QUIC_HEADER,
    SD_T_VOLUME,
};
const char *sd_trigger_name(unsigned t); /* "tls_sni", ... or NULL for none */

enum sd_opener { SD_OPEN_UNKNOWN = 0, SD_OPEN_INSIDE = 1, SD_OPEN_OUTSIDE = 2 };

/* Why a flow's state ended. */
enum sd_end { SD_END_IDLE = 0, SD_END_EVICTED, SD_END_FINRST, SD_END_SHUTDOWN };

/* One flow's summary, handed to on_flow_end (views valid during the call). */
struct sd_flow_report {
    uint64_t seq;             /* order of first packet, from 0 */
    uint64_t first_ns, last_ns;
    uint8_t family, proto;
    uint8_t caddr[16], saddr[16];
    uint16_t cport, sport;
    uint8_t opened_by;        /* enum sd_opener */
    uint8_t trigger;          /* enum sd_trigger */
    uint8_t end;              /* enum sd_end */
    const char *rule;         /* rule name or NULL */
    const char *action;       /* "pass", "throttle", "block", "freeze" */
    struct sd_iov sni, http_host, dns_qname; /* p NULL when not found */
    uint64_t packets[2], bytes[2], dropped[2]; /* [0] c2s, [1] s2c; bytes are L3 bytes */
    const char *why;          /* explain mode: the inspection trace, NUL-terminated, or NULL */
};

/* Decision events, for the event log (eve.json-shaped lines; eventlog.h). */
enum sd_event_type {
    SD_EV_FLOW_OPEN = 0, /* a flow's first packet */
    SD_EV_NAME = 1,      /* a name was parsed: name_kind says which */
    SD_EV_RULE = 2,      /* a rule fired (also pass rules) */
    SD_EV_RELEASE = 3,   /* the flow's state was released: report holds its summary */
    SD_EV_ACTION_END = 4,/* the flow's action ended while its state lives on (policy reload, a
                            remote SYN): rule and action say which; reason why */
};

struct sd_event {
    uint8_t type;             /* enum sd_event_type */
    uint8_t name_kind;        /* SD_EV_NAME: 0 sni, 1 http host, 2 dns qname */
    bool quic;                /* SD_EV_NAME: the ClientHello came from QUIC */
    uint64_t ts_ns;
    const struct sd_flow_report *flow; /* the flow (counters as of now; names so far) */
    struct sd_iov name;       /* SD_EV_NAME */
    const char *rule;         /* SD_EV_RULE */
    const char *action;       /* SD_EV_RULE, SD_EV_ACTION_END: the action kind ("throttle", "rst", ...) */
    const char *reason;       /* SD_EV_ACTION_END: "policy" (a reload dropped the rule), "remote_syn" */
};

struct sd_engine_config {
    uint32_t max_flows;       /* flow table capacity (default 1<<20 when 0) */
    uint32_t reasm_slots;     /* concurrent reassembly buffers (default 4096 when 0) */
    uint32_t frag_slots;      /* concurrent fragment queues (default 1024 when 0), room for 4 fragments each,
                                 allocated once a policy sets frag.buffer */
    uint32_t mark_slots;      /* host marks, clients x tags (default 4096 when 0; spec 4.8) */
    uint64_t key[2];          /* SipHash key of the flow table; 0,0 = fixed test key */
    bool track;               /* keep per-flow reports (counters, names) and call on_flow_end */
    bool explain;             /* with track: record an inspection trace per flow */
    void (*on_flow_end)(void *arg, const struct sd_flow_report *r);
    /* A held packet (fragment) is released: |l3| is the packet to forward. */
    void (*on_release)(void *arg, const uint8_t *l3, size_t len, uint64_t ts_ns);
    /* With track: every decision as an event (the event log). */
    void (*on_event)(void *arg, const struct sd_event *ev);
    void *arg;
};

struct sd_engine;

/* Makes an engine for |pol| (not copied: it must outlive the engine or be
 * replaced with sd_engine_set_policy). NULL when out of memory. */
struct sd_engine *sd_engine_new(const struct sd_policy *pol, const struct sd_engine_config *cfg);

/* Releases every flow (on_flow_end with SD_END_SHUTDOWN, in first-packet
 * order) and frees the engine. Accepts NULL. */
void sd_engine_free(struct sd_engine *e);

/*
 * Decides the fate of one decoded packet seen at |now_ns|. |pkt|'s frame must
 * stay valid during the call (a copy is taken when it is held). Fills |v|.
 * Never fails: packets it cannot use (non-IP, malformed) pass.
 */
void sd_engine_packet(struct sd_engine *e, const struct sd_pkt *pkt, uint64_t now_ns, struct sd_verdict *v);

/*
 * Optional: announces |pkt| (decoded, its frame valid until it is passed to
 * sd_engine_packet), which will be passed to sd_engine_packet after the
 * packets announced before it. The engine starts fetching the packet's flow
 * state into the cache and keeps its flow key and hash for that call.
 * Announcing packets two to four ahead hides most of a flow lookup's memory
 * latency. Nothing observable changes: a packet announced out of order, or
 * never, is looked up without help.
 */
void sd_engine_prefetch(struct sd_engine *e, const struct sd_pkt *pkt);

/* Releases flows idle past their timeouts as of |now_ns| (call now and then
 * when no packets arrive; sd_engine_packet also sweeps a little each call). */
void sd_engine_expire(struct sd_engine *e, uint64_t now_ns);

/* Swaps the policy. Flows under an action keep it if the new policy has a
 * rule of the same name (with that rule's new parameters); otherwise they
 * return to pass. New flows see only the new policy. */
void sd_engine_set_policy(struct sd_engine *e, const struct sd_policy *pol);

/* Worker selection: a hash of the symmetric 5-tuple of |pkt| (same value in
 * both directions), 0 for packets without one. */
uint32_t sd_engine_flow_hash(const struct sd_pkt *pkt);

struct sd_engine_stats {
    uint64_t packets, dropped, replaced, held;
    uint64_t flows_created, flows_active, flows_evicted, flows_expired;
    uint64_t triggers, reasm_exhausted, frag_exhausted;
    uint64_t names[3];        /* names parsed: [0] TLS/QUIC SNI, [1] HTTP host, [2] DNS qname */
    uint64_t inspect_rule;    /* inspections that ended with a rule firing (pass rules too) */
    uint64_t inspect_none;    /* inspections that ended without one (gave up, budget spent, no match) */
    uint64_t flow_capacity;   /* the flow table's size */
};
void sd_engine_get_stats(const struct sd_engine *e, struct sd_engine_stats *st);

/* Counters of one rule (or, at index 0, of packets of flows under no rule). */
struct sd_rule_stats {
    uint64_t packets, bytes;  /* packets seen under the rule, and their L3 bytes */
    uint64_t dropped;         /* ... of which dropped or replaced by an RST */
    uint64_t flows;           /* times the rule fired (index 0: unused) */
};

/*
 * Copies the per-rule counters into |out|: [0] for packets of flows under no
 * rule, [i] for rule i - 1 of the current policy, at most |max| entries.
 * Returns the policy's rule count + 1 (which may exceed |max|). A rule's
 * counters survive sd_engine_set_policy when the new policy has a rule of the
 * same name and action kind; otherwise they start again from zero.
 */
size_t sd_engine_rule_stats(const struct sd_engine *e, struct sd_rule_stats *out, size_t max);

#endif
