/*
 * engine.c - the life of a flow, and the verdict for each packet.
 *
 * For every TCP or UDP packet:
 *
 *   decode (caller) -> find or create the flow -> expire it if it idled past
 *   its timeout (B9) -> note who opened it (B1) -> inspect the payload while
 *   the flow is still being inspected (inspect.c) -> evaluate the rules on
 *   what inspection found -> apply the flow's action (act.c) -> verdict.
 *
 * Rules that need no inspection (addresses, ports) are evaluated once, when
 * the flow is created. Rules that name an inspected field (sni, host, dns,
 * ech, quic, ...) are evaluated each time inspection finds such a fact, and
 * once when inspection ends without having found any. The first rule whose
 * conditions all hold fires; its action stays with the flow until the flow's
 * state is released (idle timeout, eviction; FIN and RST do not release it
 * unless the policy says so: B9).
 *
 * Time is the packet's. The engine keeps the latest time it has seen, so a
 * capture with slightly out-of-order timestamps never runs the clock back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine_int.h"
#include "frag.h"
#include "hostmark.h"
#include "names.h"
#include "quic.h"

_Static_assert(sizeof(struct sd_flow_ext) == 128, "two cache lines per flow's report counters");

#ifndef IPPROTO_TCP
#define IPPROTO_TCP 6
#endif
#ifndef IPPROTO_UDP
#define IPPROTO_UDP 17
#endif

const char *sd_trigger_name(unsigned t)
{
    static const char *const names[] = {NULL, "tls_sni", "quic_sni", "http_host", "dns_qname", "ip", "quic_header",
                                        "volume"};
    return t < SD_COUNTOF(names) ? names[t] : NULL;
}

static uint32_t now_ms(const struct sd_engine *e)
{
    return (uint32_t)((e->now_ns - e->epoch_ns) / 1000000u);
}

/* ---- creation and release ---- */

/* Asks for 2 MB pages over the whole 2 MB blocks of a large, lazily zeroed
 * array indexed by flow slot: fewer page faults as it fills, fewer TLB
 * misses once it has. */
static void advise_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t a = ((uintptr_t)p + huge - 1) & ~(huge - 1), b = ((uintptr_t)p + n) & ~(huge - 1);
    if (b > a) /* the whole huge pages inside, as offsets from p */
        madvise((char *)p + (a - (uintptr_t)p), b - a, MADV_HUGEPAGE);
#else
    (void)p;
    (void)n;
#endif
}

struct sd_engine *sd_engine_new(const struct sd_policy *pol, const struct sd_engine_config *cfg)
{
    struct sd_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->pol = pol;
    if (cfg)
        e->cfg = *cfg;
    if (!e->cfg.max_flows)
        e->cfg.max_flows = 1u << 20;
    if (!e->cfg.reasm_slots)
        e->cfg.reasm_slots = 4096;
    uint64_t key[2] = {e->cfg.key[0], e->cfg.key[1]};
    if (!key[0] && !key[1]) {
        key[0] = 0x736c6f77646f776eULL; /* fixed test key: "slowdown" */
        key[1] = 0x7473707532303231ULL;
    }
    e->rng = key[0] ^ (key[1] << 1) ^ 0x9e3779b97f4a7c15ULL;
    e->ft = sd_flow_table_new(e->cfg.max_flows, key);
    uint32_t rb = pol->inspect.reasm_bytes ? pol->inspect.reasm_bytes : 16384;
    e->rslots = calloc(e->cfg.reasm_slots, sizeof(*e->rslots));
    e->rmem = malloc((size_t)e->cfg.reasm_slots * rb);
    e->scratch = malloc(65536);
    e->quic = sd_quic_ctx_new();
    e->marks = sd_hostmark_new(e->cfg.mark_slots ? e->cfg.mark_slots : 4096, key);
    if (!e->cfg.frag_slots)
        e->cfg.frag_slots = 1024;
    /* The fragment pool (frag_slots queues, 4 chunks of 1600 bytes each: 6.5
     * MB by default) only when the policy holds fragments; a later policy
     * that does gets it in sd_engine_set_policy. */
    bool frag_ok = !pol->inspect.frag_buffer || (e->frag = sd_frag_new(e->cfg.frag_slots, 0)) != NULL;
    if (e->cfg.track && (e->ext_mem = calloc((size_t)e->cfg.max_flows + 1, sizeof(*e->ext))) != NULL) {
        e->ext = (struct sd_flow_ext *)((char *)e->ext_mem + (-(uintptr_t)e->ext_mem & 63)); /* 64-aligned */
        advise_huge(e->ext, (size_t)e->cfg.max_flows * sizeof(*e->ext));
    }
    e->rst = calloc(SD_POLICY_MAX_RULES + 1, sizeof(*e->rst));
    e->rst_spare = calloc(SD_POLICY_MAX_RULES + 1, sizeof(*e->rst_spare));
    if (!e->ft || !e->rslots || !e->rmem || !e->scratch || !e->quic || !frag_ok || !e->marks ||
        (e->cfg.track && !e->ext) || !e->rst || !e->rst_spare) {
        e->cfg.track = false;
        sd_engine_free(e);
        return NULL;
    }
    for (uint32_t i = 0; i < e->cfg.reasm_slots; i++) {
        sd_reasm_init(&e->rslots[i].r, e->rmem + (size_t)i * rb, rb);
        e->rslots[i].next_free = i + 1 < e->cfg.reasm_slots ? i + 1 : SD_FLOW_NONE;
    }
    e->rfree = 0;
    return e;
}

static void fill_report(struct sd_engine *e, uint32_t slot, struct sd_flow_report *r, int end)
{
    struct sd_flow *f = sd_flow_at(e->ft, slot);
    struct sd_flow_ext *x = &e->ext[slot];
    memset(r, 0, sizeof(*r));
    r->seq = x->seq;
    r->first_ns = x->first_ns;
    r->last_ns = x->last_ns;
    r->family = (f->flags & SD_FF_V6) ? 6 : 4;
    r->proto = f->proto;
    bool cb = f->flags & SD_FF_CLIENT_B;
    memcpy(r->caddr, cb ? f->b : f->a, 16);
    memcpy(r->saddr, cb ? f->a : f->b, 16);
    r->cport = cb ? f->pb : f->pa;
    r->sport = cb ? f->pa : f->pb;
    r->opened_by = (f->flags & SD_FF_OPEN_INSIDE) ? SD_OPEN_INSIDE
                   : (f->flags & SD_FF_OPEN_OUTSIDE) ? SD_OPEN_OUTSIDE
                                                      : SD_OPEN_UNKNOWN;
    r->trigger = f->trigger;
    r->end = (uint8_t)end;
    if (f->rule && f->rule <= e->pol->n_rules) {
        const struct sd_rule *rule = &e->pol->rules[f->rule - 1];
        r->rule = rule->name;
    }
    struct sd_action pass = {0};
    pass.kind = f->action;
    r->action = sd_action_name(&pass);
    struct sd_iov *names[3] = {&r->sni, &r->http_host, &r->dns_qname};
    for (int i = 0; i < 3; i++)
        if (x->name[i])
            *names[i] = (struct sd_iov){(const uint8_t *)x->name[i], x->name_len[i]};
    for (int d = 0; d < 2; d++) {
        r->packets[d] = x->packets[d];
        r->bytes[d] = x->bytes[d];
        r->dropped[d] = x->dropped[d];
    }
    r->why = x->why;
}

static void emit_event(struct sd_engine *e, uint32_t slot, struct sd_event *ev, int end)
{
    if (!e->cfg.on_event || !e->ext)
        return;
    struct sd_flow_report r;
    fill_report(e, slot, &r, end);
    ev->ts_ns = e->now_ns;
    ev->flow = &r;
    e->cfg.on_event(e->cfg.arg, ev);
}

/* Ends the action of flow |f| (its state lives on, under no rule) and says so. */
static void action_end(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const char *reason)
{
    struct sd_event ev = {.type = SD_EV_ACTION_END, .rule = e->pol->rules[f->rule - 1].name,
                          .action = sd_action_kind_name(f->action), .reason = reason};
    emit_event(e, slot, &ev, SD_END_SHUTDOWN); /* before the flow forgets its rule */
    f->action = SD_A_PASS;
    f->rule = 0;
    f->trigger = SD_T_NONE;
}

/* Ends a flow's state: report it, free what it holds. The slot itself is
 * freed by the caller (or by the table when evicting). */
static void flow_end(struct sd_engine *e, uint32_t slot, int why)
{
    struct sd_flow *f = sd_flow_at(e->ft, slot);
    sd__reasm_release(e, f);
    if (why == SD_END_EVICTED)
        e->st.flows_evicted++;
    else if (why == SD_END_IDLE)
        e->st.flows_expired++;
    if (e->ext) {
        struct sd_flow_ext *x = &e->ext[slot];
        struct sd_event ev = {.type = SD_EV_RELEASE};
        emit_event(e, slot, &ev, why);
        if (e->cfg.on_flow_end) {
            struct sd_flow_report r;
            fill_report(e, slot, &r, why);
            e->cfg.on_flow_end(e->cfg.arg, &r);
        }
        for (int i = 0; i < 3; i++)
            free(x->name[i]);
        free(x->why);
        memset(x, 0, sizeof(*x));
    }
}

static void before_evict(void *arg, uint32_t slot)
{
    flow_end(arg, slot, SD_END_EVICTED);
}

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void sd_engine_free(struct sd_engine *e)
{
    if (!e)
        return;
    if (e->ft) {
        /* Report the remaining flows in first-packet order. */
        uint32_t n = sd_flow_count(e->ft), hand = 0, k = 0;
        uint64_t *order = n ? malloc((size_t)n * sizeof(*order)) : NULL;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t s = sd_flow_next_used(e->ft, &hand, sd_flow_capacity(e->ft));
            if (s == SD_FLOW_NONE)
                break;
            if (order)
                order[k++] = (e->ext ? e->ext[s].seq << 32 : 0) | s;
        }
        if (order && e->ext)
            qsort(order, k, sizeof(*order), cmp_seq);
        for (uint32_t i = 0; i < k; i++) {
            uint32_t s = (uint32_t)order[i];
            flow_end(e, s, SD_END_SHUTDOWN);
            sd_flow_remove(e->ft, s);
        }
        free(order);
    }
    sd_flow_table_free(e->ft);
    free(e->ext_mem);
    free(e->rslots);
    free(e->rmem);
    free(e->scratch);
    sd_quic_ctx_free(e->quic);
    sd_frag_free(e->frag);
    sd_hostmark_free(e->marks);
    free(e->rst);
    free(e->rst_spare);
    free(e);
}

/* ---- timeouts ---- */

static uint32_t timeout_ms(const struct sd_engine *e, const struct sd_flow *f)
{
    const struct sd_timeouts *t = &e->pol->timeouts;
    uint32_t s;
    if (f->action != SD_A_PASS)
        s = t->action_s;
    else if (f->proto == IPPROTO_UDP)
        s = t->udp_s;
    else if (f->flags & SD_FF_SYN_ONLY)
        s = t->syn_s;
    else
        s = t->tcp_s;
    return s > 4000000 ? 4000000000u : s * 1000u;
}

static bool expired(const struct sd_engine *e, const struct sd_flow *f, uint32_t now)
{
    return now - f->last_ms > timeout_ms(e, f);
}

/* Ends the flow in slot |s| (in use) if it has been idle past its timeout. */
static void reap_if_idle(struct sd_engine *e, uint32_t s, uint32_t now)
{
    if (expired(e, sd_flow_at(e->ft, s), now)) {
        flow_end(e, s, SD_END_IDLE);
        sd_flow_remove(e->ft, s);
    }
}

/* Releases a few idle flows per call, so memory is given back without a
 * separate timer. */
static void sweep(struct sd_engine *e, uint32_t visits)
{
    uint32_t now = now_ms(e);
    for (uint32_t i = 0; i < visits; i++) {
        uint32_t s = sd_flow_next_used(e->ft, &e->sweep_hand, 4);
        if (s != SD_FLOW_NONE)
            reap_if_idle(e, s, now);
    }
}

void sd_engine_expire(struct sd_engine *e, uint64_t now_ns)
{
    if (!e->have_epoch)
        return;
    if (now_ns > e->now_ns)
        e->now_ns = now_ns;
    /* The slots in use, by the table's bitmap: a full table of 1 M slots is
     * 64 MB, which a slot-by-slot walk would read every time. */
    uint32_t cap = sd_flow_capacity(e->ft), now = now_ms(e), hand = 0;
    while (hand < cap) {
        uint32_t s = sd_flow_next_used(e->ft, &hand, cap - hand);
        if (s == SD_FLOW_NONE)
            break;
        reap_if_idle(e, s, now);
        if (s + 1 >= cap)
            break; /* the hand wrapped to 0 */
    }
}

/* ---- rules ---- */

static bool ports_has(const struct sd_cond *c, uint16_t port)
{
    for (unsigned i = 0; i < c->n_ports; i++)
        if (c->ports[i] == port)
            return true;
    return false;
}

struct eval {
    const struct sd_engine *e;
    const struct sd_flow *f;
    uint64_t sni_m, host_m, dns_m, srv_m, cli_m, rem_m;
    uint16_t sport;
    uint8_t proto;
    bool opened_inside;
    const struct sd_facts *facts; /* NULL at flow start */
};

static bool cond_holds(const struct sd_cond *c, const struct eval *ev)
{
    const struct sd_facts *fa = ev->facts;
    uint64_t bit = 1ULL << c->set;
    bool r = false;
    switch (c->kind) {
    case SD_C_SNI:
        r = fa && fa->sni.p && (ev->sni_m & bit);
        break;
    case SD_C_HOST:
        r = fa && fa->host.p && (ev->host_m & bit);
        break;
    case SD_C_DNS:
        r = fa && fa->qname.p && (ev->dns_m & bit);
        break;
    case SD_C_NAME:
        r = fa && ((ev->sni_m | ev->host_m | ev->dns_m) & bit);
        break;
    case SD_C_SERVER_IP:
        r = ev->srv_m & bit;
        break;
    case SD_C_CLIENT_IP:
        r = ev->cli_m & bit;
        break;
    case SD_C_REMOTE_IP:
        r = ev->rem_m & bit;
        break;
    case SD_C_PORT:
        r = ports_has(c, ev->sport);
        break;
    case SD_C_TCP:
        r = ev->proto == IPPROTO_TCP;
        break;
    case SD_C_UDP:
        r = ev->proto == IPPROTO_UDP;
        break;
    case SD_C_TLS:
        r = fa && fa->hello;
        break;
    case SD_C_ECH:
        r = fa && fa->hello && fa->ech;
        break;
    case SD_C_NOSNI:
        r = fa && fa->hello && !fa->sni.p;
        break;
    case SD_C_QUIC:
        r = fa && fa->quic_hdr;
        break;
    case SD_C_QUIC_FAIL:
        r = fa && fa->quic_fail;
        break;
    case SD_C_OPENED_INSIDE:
        r = ev->opened_inside;
        break;
    case SD_C_MARKED: {
        int fam;
        const uint8_t *cli = sd__flow_client(ev->f, &fam);
        r = sd_hostmark_has(ev->e->marks, c->set, fam, cli, ev->e->now_ns);
        break;
    }
    }
    return c->negate ? !r : r;
}

static uint8_t trigger_of(const struct sd_rule *r, const struct sd_facts *fa)
{
    if (r->action.kind == SD_A_FREEZE)
        return SD_T_VOLUME;
    for (unsigned i = 0; i < r->n_conds; i++) {
        const struct sd_cond *c = &r->conds[i];
        if (c->negate)
            continue;
        switch (c->kind) {
        case SD_C_SNI:
        case SD_C_ECH:
        case SD_C_NOSNI:
        case SD_C_TLS:
            return fa && fa->quic ? SD_T_QUIC_SNI : SD_T_TLS_SNI;
        case SD_C_HOST:
            return SD_T_HTTP_HOST;
        case SD_C_DNS:
            return SD_T_DNS_QNAME;
        case SD_C_NAME:
            if (fa && fa->sni.p)
                return fa->quic ? SD_T_QUIC_SNI : SD_T_TLS_SNI;
            return fa && fa->host.p ? SD_T_HTTP_HOST : SD_T_DNS_QNAME;
        case SD_C_QUIC:
        case SD_C_QUIC_FAIL:
            return SD_T_QUIC_HEADER;
        }
    }
    return SD_T_IP;
}

/* The patterns of one set that matched a name, gathered for the trace. */
struct why_patterns {
    uint64_t bit;
    char text[200];
    size_t len;
    unsigned n;
};

static void why_pattern(void *arg, const char *pattern, size_t n, uint64_t tags)
{
    struct why_patterns *w = arg;
    if (!(tags & w->bit) || w->len + n + 5 >= sizeof(w->text))
        return;
    w->len += (size_t)snprintf(w->text + w->len, sizeof(w->text) - w->len, "%s'%.*s'", w->n++ ? ", " : "", (int)n,
                               pattern);
}

/* For the explain trace (--why): which patterns of the sets rule |r| names
 * matched the flow's names, e.g. "sni 'reddit.com' matched '*t.co*' of set
 * 'tw21'". Only when tracing: sd_names_explain() tries every substring. */
static void trace_patterns(struct sd_engine *e, uint32_t slot, const struct sd_rule *r, const struct eval *ev)
{
    const struct sd_facts *fa = ev->facts;
    if (!e->cfg.explain || !e->ext || !fa)
        return;
    for (unsigned k = 0; k < r->n_conds; k++) {
        const struct sd_cond *c = &r->conds[k];
        const struct {
            const char *what;
            const struct sd_iov *v;
            uint64_t m;
            bool ok;
        } fields[] = {
            {"sni", &fa->sni, ev->sni_m, c->kind == SD_C_SNI || c->kind == SD_C_NAME},
            {"host", &fa->host, ev->host_m, c->kind == SD_C_HOST || c->kind == SD_C_NAME},
            {"dns", &fa->qname, ev->dns_m, c->kind == SD_C_DNS || c->kind == SD_C_NAME},
        };
        if (c->negate)
            continue;
        for (size_t i = 0; i < SD_COUNTOF(fields); i++) {
            struct why_patterns w = {.bit = 1ULL << c->set};
            if (!fields[i].ok || !fields[i].v->p || !(fields[i].m & w.bit))
                continue;
            if (sd_names_explain(e->pol->names, fields[i].v->p, fields[i].v->n, why_pattern, &w) == 0 && w.n)
                sd__trace(e, slot, "%s '%.*s' matched %s of set '%s'", fields[i].what,
                          (int)SD_MIN(fields[i].v->n, (size_t)255), (const char *)fields[i].v->p, w.text,
                          e->pol->name_sets[c->set]);
        }
    }
}

/* Evaluates the rules of the given stage (l7 or not) for flow |f|. Returns
 * true when a rule fired. */
static bool evaluate(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const struct sd_facts *fa, bool l7)
{
    const struct sd_policy *p = e->pol;
    struct eval ev;
    memset(&ev, 0, sizeof(ev));
    ev.e = e;
    ev.f = f;
    bool cb = f->flags & SD_FF_CLIENT_B;
    int fam = (f->flags & SD_FF_V6) ? 6 : 4;
    ev.srv_m = sd_ipset_lookup(p->ips, fam, cb ? f->a : f->b);
    ev.cli_m = sd_ipset_lookup(p->ips, fam, cb ? f->b : f->a);
    ev.rem_m = (f->flags & SD_FF_OPEN_OUTSIDE) ? ev.cli_m : ev.srv_m;
    ev.sport = cb ? f->pa : f->pb;
    ev.proto = f->proto;
    ev.opened_inside = f->flags & SD_FF_OPEN_INSIDE;
    ev.facts = fa;
    if (fa) {
        if (fa->sni.p)
            ev.sni_m = sd_names_lookup(p->names, fa->sni.p, fa->sni.n);
        if (fa->host.p)
            ev.host_m = sd_names_lookup(p->names, fa->host.p, fa->host.n);
        if (fa->qname.p)
            ev.dns_m = sd_names_lookup(p->names, fa->qname.p, fa->qname.n);
    }
    for (unsigned i = 0; i < p->n_rules; i++) {
        const struct sd_rule *r = &p->rules[i];
        if (r->l7 != l7)
            continue;
        unsigned k = 0;
        while (k < r->n_conds && cond_holds(&r->conds[k], &ev))
            k++;
        if (k < r->n_conds)
            continue;
        f->rule = (uint16_t)(i + 1);
        e->rst[i + 1].flows++;
        /* Not every flow the rule holds for gets its action (chance=): the others pass. */
        static const struct sd_action spare = {.kind = SD_A_PASS};
        bool spared = r->action.chance < 10000 && sd__rnd(e) % 10000 >= r->action.chance;
        const struct sd_action *a = spared ? &spare : &r->action;
        f->trigger = a->kind == SD_A_PASS ? SD_T_NONE : trigger_of(r, fa);
        sd__act_start(e, f, a);
        if (a->kind != SD_A_PASS)
            e->st.triggers++;
        if (spared)
            sd__trace(e, slot, "rule '%s' holds but spares this flow (chance=%u.%02u%%)", r->name,
                      r->action.chance / 100, r->action.chance % 100);
        else
            sd__trace(e, slot, "rule '%s' fired: %s", r->name, sd_action_kind_name(a->kind));
        trace_patterns(e, slot, r, &ev);
        struct sd_event evr = {.type = SD_EV_RULE, .rule = r->name, .action = sd_action_kind_name(a->kind)};
        emit_event(e, slot, &evr, SD_END_SHUTDOWN);
        return true;
    }
    return false;
}

/* ---- flows ---- */

static bool is_inside(const struct sd_engine *e, int family, const uint8_t *addr)
{
    return sd__flow_is_inside(e, family, addr);
}

/* Sets up a new flow from its first packet. |dir| is 0 when the sender is
 * endpoint a. */
static void flow_open(struct sd_engine *e, uint32_t slot, struct sd_flow *f, const struct sd_pkt *pkt, int dir)
{
    const struct sd_inspect *in = &e->pol->inspect;
    int sender_is_b = dir; /* endpoint b sent this packet */
    int client_is_b = sender_is_b;
    int opener = SD_OPEN_UNKNOWN;
    if (pkt->proto == IPPROTO_TCP) {
        uint8_t fl = pkt->tcp_flags & (SD_TCP_SYN | SD_TCP_ACK | SD_TCP_RST);
        if (fl == SD_TCP_SYN) {
            opener = is_inside(e, pkt->family, pkt->saddr) ? SD_OPEN_INSIDE : SD_OPEN_OUTSIDE;
            f->flags |= SD_FF_SYN_ONLY;
        } else if (fl == (SD_TCP_SYN | SD_TCP_ACK)) {
            /* The SYN was missed: the receiver of the SYN/ACK opened it. */
            client_is_b = !sender_is_b;
            opener = is_inside(e, pkt->family, pkt->daddr) ? SD_OPEN_INSIDE : SD_OPEN_OUTSIDE;
        } else if (pkt->sport < 1024 && pkt->dport >= 1024) {
            client_is_b = !sender_is_b; /* mid-flow: the low port is probably the server */
        }
    } else {
        opener = is_inside(e, pkt->family, pkt->saddr) ? SD_OPEN_INSIDE : SD_OPEN_OUTSIDE;
    }
    if (client_is_b)
        f->flags |= SD_FF_CLIENT_B;
    if (opener == SD_OPEN_INSIDE)
        f->flags |= SD_FF_OPEN_INSIDE;
    else if (opener == SD_OPEN_OUTSIDE)
        f->flags |= SD_FF_OPEN_OUTSIDE;
    bool eligible = opener == SD_OPEN_INSIDE || (opener == SD_OPEN_UNKNOWN && in->unknown_eligible) ||
                    (opener == SD_OPEN_OUTSIDE && !in->require_inside_open);
    if (eligible) {
        f->flags |= SD_FF_ELIGIBLE | SD_FF_INSPECTING;
        f->budget = 1;
    }
    f->u.r.slot = SD_FLOW_NONE;
    e->st.flows_created++;
    if (e->ext) {
        struct sd_flow_ext *x = &e->ext[slot];
        x->seq = e->next_seq++;
        x->first_ns = e->now_ns;
    }
    static const char *const op[] = {"unknown", "inside", "outside"};
    sd__trace(e, slot, "flow opened by %s%s", op[opener], eligible ? "" : "; not eligible for inspection (B1)");
    struct sd_event ev = {.type = SD_EV_FLOW_OPEN};
    emit_event(e, slot, &ev, SD_END_SHUTDOWN);
    evaluate(e, slot, f, NULL, false);
}

/* ---- prefetching ---- */

enum { PF_LAG = 2 }; /* announcements between fetching a bucket and reading it */

static bool key_same(const struct sd_flow_key *a, const struct sd_flow_key *b)
{
    return memcmp(a, b, sizeof(*a)) == 0; /* keys are built zero-padded */
}

/* The hash of |k|: the one computed when its packet was announced, if it is
 * the oldest announced packet (the announcements are consumed in order and
 * dropped at the first packet that does not match). */
static uint64_t announced_hash(struct sd_engine *e, const struct sd_flow_key *k)
{
    if (e->pf_n) {
        unsigned i = e->pf_head;
        if (key_same(&e->pf[i].k, k)) {
            e->pf_head = (uint8_t)((i + 1) % SD_PREFETCH_MAX);
            e->pf_n--;
            return e->pf[i].h;
        }
        e->pf_n = 0;
    }
    return sd_flow_key_hash(e->ft, k);
}

void sd_engine_prefetch(struct sd_engine *e, const struct sd_pkt *pkt)
{
    if (!(pkt->flags & SD_PKT_L4) || (pkt->proto != IPPROTO_TCP && pkt->proto != IPPROTO_UDP))
        return;
    if (e->pf_n == SD_PREFETCH_MAX) { /* too far ahead: forget the oldest */
        e->pf_head = (uint8_t)((e->pf_head + 1) % SD_PREFETCH_MAX);
        e->pf_n--;
    }
    /* The bucket announced PF_LAG packets ago has had that many packets'
     * time to arrive: read it, and fetch its first flow (and that flow's
     * report line). */
    if (e->pf_n >= PF_LAG) {
        uint32_t s = sd_flow_prefetch_first(e->ft, e->pf[(e->pf_head + e->pf_n - PF_LAG) % SD_PREFETCH_MAX].h);
        if (s != SD_FLOW_NONE && e->ext)
            __builtin_prefetch(&e->ext[s], 1);
    }
    unsigned i = (e->pf_head + e->pf_n) % SD_PREFETCH_MAX;
    int dir;
    sd_flow_key_make(&e->pf[i].k, pkt->family, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto, &dir);
    e->pf[i].h = sd_flow_key_hash(e->ft, &e->pf[i].k);
    sd_flow_prefetch(e->ft, e->pf[i].h);
    e->pf_n++;
}

/* ---- the packet ---- */

static void flow_packet(struct sd_engine *e, const struct sd_pkt *pkt, struct sd_verdict *v)
{
    sweep(e, 2);

    struct sd_flow_key k;
    int dir_ab;
    sd_flow_key_make(&k, pkt->family, pkt->saddr, pkt->daddr, pkt->sport, pkt->dport, pkt->proto, &dir_ab);
    uint64_t h = announced_hash(e, &k);
    uint32_t slot = sd_flow_lookup(e->ft, &k, h);
    uint32_t now = now_ms(e);
    if (slot != SD_FLOW_NONE && expired(e, sd_flow_at(e->ft, slot), now)) {
        flow_end(e, slot, SD_END_IDLE);
        sd_flow_remove(e->ft, slot);
        slot = SD_FLOW_NONE;
    }
    struct sd_flow *f;
    if (slot == SD_FLOW_NONE) {
        slot = sd_flow_insert(e->ft, &k, h, now, before_evict, e);
        f = sd_flow_at(e->ft, slot);
        flow_open(e, slot, f, pkt, dir_ab);
    } else {
        f = sd_flow_at(e->ft, slot);
    }
    uint32_t prev_ms = f->last_ms;
    f->last_ms = now;
    int dir = ((f->flags & SD_FF_CLIENT_B) != 0) == dir_ab ? 0 : 1; /* 0 c2s, 1 s2c */
    struct sd_flow_ext *x = e->ext ? &e->ext[slot] : NULL;
    if (x) {
        x->packets[dir]++;
        x->bytes[dir] += pkt->ip_len;
        x->last_ns = e->now_ns;
        x->npkt++;
    }

    bool end_after = false;
    if (pkt->proto == IPPROTO_TCP) {
        uint8_t fl = pkt->tcp_flags;
        if (!(fl & SD_TCP_SYN) || (fl & SD_TCP_ACK))
            f->flags &= (uint8_t)~SD_FF_SYN_ONLY;
        if (dir == 0 && (fl & (SD_TCP_SYN | SD_TCP_ACK)) == SD_TCP_SYN && f->action == SD_A_PASS) {
            /* (Under an action the union holds the action's state: no ISN then.) */
            f->u.r.isn = pkt->seq + 1;
            f->state |= SD_FS_ISN;
        }
        /* B1 (2022): a SYN from the outside on an inside-opened flow (split
         * handshake, simultaneous open) makes the flow ineligible. */
        if (e->pol->inspect.remote_syn_unblocks && (fl & (SD_TCP_SYN | SD_TCP_ACK)) == SD_TCP_SYN &&
            (f->flags & SD_FF_OPEN_INSIDE) && !is_inside(e, pkt->family, pkt->saddr)) {
            if (f->flags & SD_FF_ELIGIBLE)
                sd__trace(e, slot, "SYN from outside: flow no longer eligible (B1)");
            f->flags &= (uint8_t)~(SD_FF_ELIGIBLE | SD_FF_INSPECTING);
            sd__reasm_release(e, f);
            if (f->action != SD_A_PASS)
                action_end(e, slot, f, "remote_syn");
        }
        if ((fl & (SD_TCP_FIN | SD_TCP_RST)) && e->pol->timeouts.clear_on_fin_rst)
            end_after = true;
    }

    bool trigger_pkt = false;
    if ((f->flags & SD_FF_INSPECTING) && pkt->payload_len > 0 && (e->pol->inspect.dirs & (1 << dir)) &&
        !(e->pol->inspect.verify_csum && !sd_pkt_l4_csum_ok(pkt))) {
        struct sd_facts fa;
        memset(&fa, 0, sizeof(fa));
        bool done = sd__inspect(e, slot, f, pkt, dir, &fa);
        bool fact = fa.hello || fa.host.p || fa.qname.p || fa.quic_hdr || fa.quic_fail;
        bool fired = false;
        if (fact) {
            f->state |= SD_FS_FACT;
            fired = evaluate(e, slot, f, &fa, true);
        } else if (done && !(f->state & SD_FS_FACT)) {
            fired = evaluate(e, slot, f, &fa, true);
        }
        if (fired || done) {
            e->st.inspect_rule += fired;
            e->st.inspect_none += !fired;
            f->flags &= (uint8_t)~SD_FF_INSPECTING;
            sd__reasm_release(e, f);
            if (!fired)
                sd__trace(e, slot, "inspection ended");
        }
        trigger_pkt = fired;
    }

    if (f->action != SD_A_PASS)
        sd__act(e, f, pkt, dir, trigger_pkt, prev_ms, v);
    struct sd_rule_stats *rs = &e->rst[f->rule];
    rs->packets++;
    rs->bytes += pkt->ip_len;
    if (v->kind == SD_V_DROP || v->kind == SD_V_REPLACE) {
        e->st.dropped += v->kind == SD_V_DROP;
        e->st.replaced += v->kind == SD_V_REPLACE;
        rs->dropped++;
        if (x)
            x->dropped[dir]++;
    }
    if (f->action != SD_A_PASS)
        v->flags |= SD_VF_ACTION;
    else if (!(f->flags & SD_FF_INSPECTING))
        v->flags |= SD_VF_SETTLED;
    if (dir)
        v->flags |= SD_VF_S2C;
    if (end_after) {
        flow_end(e, slot, SD_END_FINRST);
        sd_flow_remove(e->ft, slot);
    }
}

static void emit_released(void *arg, const uint8_t *l3, size_t len)
{
    struct sd_engine *e = arg;
    if (e->cfg.on_release)
        e->cfg.on_release(e->cfg.arg, l3, len, e->now_ns);
}

void sd_engine_packet(struct sd_engine *e, const struct sd_pkt *pkt, uint64_t now_ns, struct sd_verdict *v)
{
    v->kind = SD_V_PASS;
    v->flags = 0;
    v->data = NULL;
    v->len = 0;
    e->st.packets++;
    if (!e->have_epoch) {
        e->epoch_ns = now_ns;
        e->now_ns = now_ns;
        e->have_epoch = true;
    } else if (now_ns > e->now_ns) {
        e->now_ns = now_ns;
    }
    if ((pkt->flags & SD_PKT_L4) && (pkt->proto == IPPROTO_TCP || pkt->proto == IPPROTO_UDP))
        flow_packet(e, pkt, v);
    if (!(pkt->flags & SD_PKT_FRAG) || !e->pol->inspect.frag_buffer)
        return;
    /* Spec 4.4: hold fragments until the set is complete, then forward them
     * as they came, with the first fragment's TTL. The first fragment went
     * through its flow above; if the flow's action dropped it, the whole set
     * goes. */
    if (!e->frag) { /* a reload turned buffering on and its pool could not be had */
        e->st.frag_exhausted++;
        return;
    }
    if ((e->st.packets & 1023) == 0)
        e->st.frag_exhausted += sd_frag_expire(e->frag, e->now_ns, 30ULL * 1000000000ULL);
    uint32_t q;
    bool condemn = v->kind != SD_V_PASS;
    switch (sd_frag_add(e->frag, pkt, e->now_ns, e->pol->inspect.frag_max, condemn, &q)) {
    case SD_FRAG_HELD:
        v->kind = SD_V_HOLD;
        e->st.held++;
        break;
    case SD_FRAG_RELEASE:
        v->kind = SD_V_HOLD;
        e->st.held++;
        sd_frag_release(e->frag, q, emit_released, e);
        break;
    case SD_FRAG_DROP:
        v->kind = SD_V_DROP;
        break;
    default:
        e->st.frag_exhausted++;
        break;
    }
}

/* Index + 1 of the rule of |pol| named |name| with action |kind|, or 0. */
static uint16_t find_rule(const struct sd_policy *pol, const char *name, uint8_t kind)
{
    for (unsigned k = 0; k < pol->n_rules; k++)
        if (pol->rules[k].action.kind == kind && strcmp(pol->rules[k].name, name) == 0)
            return (uint16_t)(k + 1);
    return 0;
}

void sd_engine_set_policy(struct sd_engine *e, const struct sd_policy *pol)
{
    if (pol->inspect.frag_buffer && !e->frag) /* out of memory: fragments pass, counted as exhausted */
        e->frag = sd_frag_new(e->cfg.frag_slots, 0);
    const struct sd_policy *old = e->pol;
    uint32_t cap = sd_flow_capacity(e->ft), hand = 0;
    uint32_t n = sd_flow_count(e->ft);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t s = sd_flow_next_used(e->ft, &hand, cap);
        if (s == SD_FLOW_NONE)
            break;
        struct sd_flow *f = sd_flow_at(e->ft, s);
        if (!f->rule)
            continue;
        uint16_t k = find_rule(pol, old->rules[f->rule - 1].name, f->action);
        if (k)
            f->rule = k;
        else if (f->action != SD_A_PASS)
            action_end(e, s, f, "policy");
        else
            f->rule = 0;
    }
    /* Counters follow their rule by name, like the flows (spare buffer: no allocation here). */
    memset(e->rst_spare, 0, (SD_POLICY_MAX_RULES + 1) * sizeof(*e->rst_spare));
    e->rst_spare[0] = e->rst[0];
    for (unsigned k = 0; k < pol->n_rules; k++) {
        uint16_t j = find_rule(old, pol->rules[k].name, pol->rules[k].action.kind);
        if (j)
            e->rst_spare[k + 1] = e->rst[j];
    }
    struct sd_rule_stats *t = e->rst;
    e->rst = e->rst_spare;
    e->rst_spare = t;
    e->pol = pol;
}

uint32_t sd_engine_flow_hash(const struct sd_pkt *pkt)
{
    if (!(pkt->flags & SD_PKT_L4))
        return 0;
    size_t alen = pkt->family == 6 ? 16 : 4;
    uint32_t hs = 2166136261u, hd = 2166136261u;
    for (size_t i = 0; i < alen; i++) {
        hs = (hs ^ pkt->saddr[i]) * 16777619u;
        hd = (hd ^ pkt->daddr[i]) * 16777619u;
    }
    hs = (hs ^ pkt->sport) * 16777619u;
    hd = (hd ^ pkt->dport) * 16777619u;
    uint32_t h = (hs ^ hd) + pkt->proto; /* symmetric: the same both ways */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    return h;
}

void sd_engine_get_stats(const struct sd_engine *e, struct sd_engine_stats *st)
{
    *st = e->st;
    st->flows_active = sd_flow_count(e->ft);
    st->flow_capacity = sd_flow_capacity(e->ft);
}

size_t sd_engine_rule_stats(const struct sd_engine *e, struct sd_rule_stats *out, size_t max)
{
    size_t n = (size_t)e->pol->n_rules + 1;
    memcpy(out, e->rst, SD_MIN(n, max) * sizeof(*out));
    return n;
}

/* ---- tracking helpers ---- */

void sd__trace(struct sd_engine *e, uint32_t slot, const char *fmt, ...)
{
    if (!e->cfg.explain || !e->ext)
        return;
    struct sd_flow_ext *x = &e->ext[slot];
    char line[512];
    int n = snprintf(line, sizeof(line), "  #%u: ", x->npkt);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : SD_MIN((size_t)m, sizeof(line) - (size_t)n - 1));
    if (x->why_len + len + 2 > x->why_cap) {
        size_t cap = x->why_cap ? (size_t)x->why_cap * 2 : 512;
        while (cap < x->why_len + len + 2)
            cap *= 2;
        if (cap > UINT32_MAX)
            return;
        char *nw = realloc(x->why, cap);
        if (!nw)
            return;
        x->why = nw;
        x->why_cap = (uint32_t)cap;
    }
    memcpy(x->why + x->why_len, line, len);
    x->why_len += (uint32_t)len;
    x->why[x->why_len++] = '\n';
    x->why[x->why_len] = 0;
}

void sd__set_name(struct sd_engine *e, uint32_t slot, int which, struct sd_iov v)
{
    if (v.p)
        e->st.names[which]++;
    if (!e->ext || !v.p)
        return;
    struct sd_flow_ext *x = &e->ext[slot];
    /* Inspection stops at the trigger, so the last name found is the one
     * that decided (a fake hello's name is replaced by the real one). */
    free(x->name[which]);
    x->name[which] = malloc(v.n + 1);
    if (!x->name[which])
        return;
    memcpy(x->name[which], v.p, v.n);
    x->name[which][v.n] = 0;
    x->name_len[which] = (uint16_t)v.n;
    struct sd_event ev = {.type = SD_EV_NAME, .name_kind = (uint8_t)which, .name = v};
    emit_event(e, slot, &ev, SD_END_SHUTDOWN);
}
