/*
 * inline.h - the censor on live traffic: W worker threads, each owning one
 * NFQUEUE (io_nfq.h) and one engine (engine.h), turning engine verdicts into
 * queue verdicts.
 *
 * Flows are pinned to workers by the kernel: --queue-balance hashes a
 * packet's address pair symmetrically, so both directions of a flow, and
 * its IP fragments, reach the same queue and so the same engine. No state is
 * shared between workers but the read-only policy.
 */
#ifndef SD_INLINE_H
#define SD_INLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "io_nfq.h"
#include "policy.h"

enum { SD_INLINE_MAX_WORKERS = 64, SD_INLINE_MAX_RULES = SD_POLICY_MAX_RULES + 1 };

/* How flows that settled leave the queue. */
enum sd_bypass { SD_BYPASS_CONNTRACK = 0, SD_BYPASS_IPSET = 1, SD_BYPASS_BPF = 2 };

struct sd_inline_config {
    uint16_t queue;           /* first queue; worker i serves queue + i */
    uint16_t workers;         /* 1 .. SD_INLINE_MAX_WORKERS */
    uint32_t ct_mark;         /* conntrack mark bit(s) set on flows under an action (0: none) */
    uint32_t settled_mark;    /* conntrack mark bit(s) set on settled flows (inspection over, no
                                 action: the rules stop queueing them); 0: none */
    /* SD_BYPASS_IPSET: no conntrack marks; settled flows are added instead to the kernel set
     * sets[0] (IPv4) or sets[1] (IPv6), type hash:ip,port,ip keyed client address, client port and
     * protocol, server address, with timeout set_timeout_s (see inline.c). */
    /* SD_BYPASS_BPF: the same, in the pinned map bpf_map of the bypass program (bpfpass.h): both
     * directions of the flow, exact, idle timeout set_timeout_s. */
    uint8_t bypass;           /* enum sd_bypass */
    char sets[2][32];
    const char *bpf_map;
    uint32_t set_timeout_s;
    uint32_t copy_range, maxlen, rcvbuf; /* queue settings (io_nfq.h; 0 for defaults) */
    unsigned batch;           /* packets per receive (0: 256) */
    uint32_t max_flows;       /* per engine (0: engine default) */
    bool no_engine;           /* accept everything, engine never called (plumbing tests, benchmarks) */
    bool fail_closed;         /* a full queue drops (default: the kernel accepts unseen) */
    /* The event log: with it, the engines keep per-flow reports (track mode)
     * and every decision is handed to on_event, from the worker threads, so
     * it must be thread-safe (sd_eventlog_write is). Times are wall-clock
     * (CLOCK_REALTIME) nanoseconds. NULL: no events. */
    void (*on_event)(void *arg, const struct sd_event *ev);
    void *event_arg;
};

struct sd_inline_stats {
    struct sd_nfq_stats nfq;          /* summed over the queues */
    struct sd_engine_stats engine;    /* summed over the engines */
    uint64_t accepted, dropped, replaced, held;  /* queue verdicts by engine verdict */
    uint64_t released, release_errors;           /* held packets sent later through a raw socket */
    uint64_t decode_errors;           /* packets the decoder refused (accepted unseen) */
    uint64_t ct_marks, ct_errors;     /* conntrack marks (or set adds and deletes) sent / refused by the
                                         kernel */
    uint64_t settled_marks;           /* ... of which marked a flow settled (set: added it) */
    uint64_t io_errors;               /* failed receives or verdict sends (verdicts of a failed send are
                                         recovered by the next batch accept, or at stop) */
};

struct sd_inline;

/*
 * Opens the queues, makes the engines for |pol| (not copied: it must live
 * until replaced through sd_inline_set_policy and that call has returned)
 * and starts the workers. NULL with a reason in |err|.
 */
struct sd_inline *sd_inline_start(const struct sd_inline_config *c, const struct sd_policy *pol, char *err,
                                  size_t errlen);

/*
 * Hands |pol| to every worker (each calls sd_engine_set_policy between two
 * batches) and returns once all have switched, so that the caller may then
 * free the previous policy. Returns 0, or SD_EIO if a worker did not switch
 * within 5 s (the previous policy must then be kept).
 */
int sd_inline_set_policy(struct sd_inline *in, const struct sd_policy *pol);

/* Statistics as last published by the workers (at most 0.5 s old). */
void sd_inline_get_stats(struct sd_inline *in, struct sd_inline_stats *st);

/* One rule's counters, summed over the workers. */
struct sd_inline_rule {
    char name[SD_POLICY_NAME_MAX]; /* "" for packets of flows under no rule */
    uint8_t action;                /* enum sd_action_kind (SD_A_PASS for "") */
    struct sd_rule_stats st;
};

/*
 * The per-rule counters as last published by the workers, summed by rule
 * name and action, into |out| (at most |max|): [0] is always the no-rule
 * entry, then the rules in policy order. During a policy switch a rule of
 * both policies appears once. Returns how many entries were written.
 */
size_t sd_inline_get_rule_stats(struct sd_inline *in, struct sd_inline_rule *out, size_t max);

/* Stops the workers, unbinds the queues (the kernel accepts what is still
 * queued), frees the engines. Accepts NULL. */
void sd_inline_stop(struct sd_inline *in);

#endif
