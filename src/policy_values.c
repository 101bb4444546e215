/*
 * policy_values.c - the values of the policy language: numbers, sizes and
 * rates with their units, switches and keywords; the parameters of `set`;
 * and the conditions and actions of `rule`.
 *
 * policy.c splits the text into statements of words and keeps the builder
 * and its sets; the two statements here fill in the policy it builds
 * (policy_int.h). Errors carry FILE:LINE:COL of the word that is wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "policy_int.h"

/* ---- values ---- */

static int parse_uint(struct ctx *c, const struct word *w, uint64_t max, uint64_t *out)
{
    if (w->n == 0 || w->n > 20)
        return fail(c, w->col, "expected a number, got '%.*s'", (int)w->n, w->p);
    uint64_t v = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!isdigit((unsigned char)w->p[i]))
            return fail(c, w->col, "expected a number, got '%.*s'", (int)w->n, w->p);
        v = v * 10 + (uint64_t)(w->p[i] - '0');
        if (v > max)
            return fail(c, w->col, "number too large: '%.*s' (at most %llu)", (int)w->n, w->p, (unsigned long long)max);
    }
    *out = v;
    return 0;
}

/* Parses NUMBER[.FRACTION]UNIT where the units are a table of {suffix, multiplier}. */
struct unit {
    const char *suffix;
    double mult;
};

static int parse_with_unit(struct ctx *c, const struct word *w, const struct unit *units, double max, const char *what,
                           double *out)
{
    char buf[64];
    if (w->n == 0 || w->n >= sizeof(buf))
        return fail(c, w->col, "invalid %s '%.*s'", what, (int)w->n, w->p);
    memcpy(buf, w->p, w->n);
    buf[w->n] = 0;
    char *endp;
    errno = 0;
    double v = strtod(buf, &endp);
    if (endp == buf || errno || v < 0 || buf[0] == '-' || buf[0] == '+' || !isdigit((unsigned char)buf[0]))
        return fail(c, w->col, "invalid %s '%s'", what, buf);
    for (const struct unit *u = units; u->suffix; u++) {
        if (strcmp(endp, u->suffix) == 0) {
            v *= u->mult;
            if (v > max)
                return fail(c, w->col, "%s too large: '%s'", what, buf);
            *out = v;
            return 0;
        }
    }
    return fail(c, w->col, "invalid %s unit in '%s'", what, buf);
}

static const struct unit rate_units[] = {
    {"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {"bps", 8}, {"kbps", 8e3}, {"mbps", 8e6}, {NULL, 0}};
static const struct unit chance_units[] = {{"", 1e4}, {"%", 1e2}, {NULL, 0}};
static const struct unit byte_units[] = {{"", 1}, {"B", 1}, {"kB", 1e3}, {"KiB", 1024}, {"MB", 1e6}, {"MiB", 1048576},
                                         {NULL, 0}};

static int parse_bool(struct ctx *c, const struct word *w, bool *out)
{
    if (weq(w, "on") || weq(w, "yes") || weq(w, "true")) {
        *out = true;
        return 0;
    }
    if (weq(w, "off") || weq(w, "no") || weq(w, "false")) {
        *out = false;
        return 0;
    }
    return fail(c, w->col, "expected on or off, got '%.*s'", (int)w->n, w->p);
}

static int parse_dirs(struct ctx *c, const struct word *w, uint8_t *out)
{
    if (weq(w, "both"))
        *out = SD_DIR_BOTH;
    else if (weq(w, "c2s") || weq(w, "up"))
        *out = SD_DIR_C2S;
    else if (weq(w, "s2c") || weq(w, "down"))
        *out = SD_DIR_S2C;
    else
        return fail(c, w->col, "expected both, c2s (up) or s2c (down), got '%.*s'", (int)w->n, w->p);
    return 0;
}

static int parse_enum(struct ctx *c, const struct word *w, const char *const *names, uint8_t *out)
{
    for (uint8_t i = 0; names[i]; i++)
        if (weq(w, names[i])) {
            *out = i;
            return 0;
        }
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
        strncat(list, names[i], sizeof(list) - strlen(list) - 1);
    }
    return fail(c, w->col, "expected one of %s, got '%.*s'", list, (int)w->n, w->p);
}

/* ---- set KEY VALUE ---- */

static int set_u16(struct ctx *c, const struct word *w, uint64_t max, uint16_t *dst)
{
    uint64_t v;
    int rc = parse_uint(c, w, max, &v);
    if (!rc)
        *dst = (uint16_t)v;
    return rc;
}

static int set_u8(struct ctx *c, const struct word *w, uint64_t max, uint8_t *dst)
{
    uint64_t v;
    int rc = parse_uint(c, w, max, &v);
    if (!rc)
        *dst = (uint8_t)v;
    return rc;
}

static int set_u32(struct ctx *c, const struct word *w, uint64_t max, uint32_t *dst)
{
    uint64_t v;
    int rc = parse_uint(c, w, max, &v);
    if (!rc)
        *dst = (uint32_t)v;
    return rc;
}

static int set_quic_versions(struct ctx *c, uint32_t *vers)
{
    if (c->n - 2 > 3)
        return fail(c, c->w[5].col, "at most 3 versions");
    memset(vers, 0, 4 * sizeof(*vers));
    for (int i = 2; i < c->n; i++) {
        char buf[16];
        const struct word *w = &c->w[i];
        if (w->n == 0 || w->n > 10)
            return fail(c, w->col, "invalid QUIC version '%.*s'", (int)w->n, w->p);
        memcpy(buf, w->p, w->n);
        buf[w->n] = 0;
        char *e;
        unsigned long v = strtoul(buf, &e, 16);
        if (*e || v == 0 || v > 0xffffffffUL)
            return fail(c, w->col, "invalid QUIC version '%s' (hex, e.g. 1 or ff00001d)", buf);
        vers[i - 2] = (uint32_t)v;
    }
    return 0;
}

int sd__policy_stmt_set(struct ctx *c)
{
    static const char *const tls_modes[] = {"strict", "records", "stream", "hello", NULL};
    static const char *const quic_modes[] = {"off", "header", "decrypt", NULL};
    struct sd_policy *p = c->b->pol;
    struct sd_inspect *in = &p->inspect;
    struct sd_timeouts *to = &p->timeouts;
    if (c->n < 3)
        return fail(c, c->w[0].col, "usage: set KEY VALUE");
    const struct word *k = &c->w[1], *v = &c->w[2];
    if (weq(k, "quic.versions"))
        return set_quic_versions(c, in->quic_versions);
    if (c->n != 3)
        return fail(c, c->w[3].col, "unexpected '%.*s' after the value", (int)c->w[3].n, c->w[3].p);
    if (weq(k, "inspect.dirs"))
        return parse_dirs(c, v, &in->dirs);
    if (weq(k, "inspect.extra"))
        return set_u8(c, v, 255, &in->extra_packets);
    if (weq(k, "inspect.giveup"))
        return set_u16(c, v, 65535, &in->giveup_bytes);
    if (weq(k, "inspect.tls"))
        return parse_enum(c, v, tls_modes, &in->tls_mode);
    if (weq(k, "inspect.quic"))
        return parse_enum(c, v, quic_modes, &in->quic_mode);
    if (weq(k, "inspect.http"))
        return parse_bool(c, v, &in->http);
    if (weq(k, "inspect.dns"))
        return parse_bool(c, v, &in->dns);
    if (weq(k, "inspect.verify-checksum"))
        return parse_bool(c, v, &in->verify_csum);
    if (weq(k, "eligibility.inside-open"))
        return parse_bool(c, v, &in->require_inside_open);
    if (weq(k, "eligibility.remote-syn-unblocks"))
        return parse_bool(c, v, &in->remote_syn_unblocks);
    if (weq(k, "eligibility.unknown"))
        return parse_bool(c, v, &in->unknown_eligible);
    if (weq(k, "match.casefold"))
        return parse_bool(c, v, &in->casefold);
    if (weq(k, "match.strip-dot"))
        return parse_bool(c, v, &in->strip_dot);
    if (weq(k, "frag.buffer"))
        return parse_bool(c, v, &in->frag_buffer);
    if (weq(k, "frag.max"))
        return set_u8(c, v, 255, &in->frag_max);
    if (weq(k, "reasm.bytes"))
        return set_u16(c, v, 65535, &in->reasm_bytes);
    if (weq(k, "quic.packets"))
        return set_u8(c, v, 64, &in->quic_packets);
    if (weq(k, "quic.min-len"))
        return set_u16(c, v, 65535, &in->quic_min_len);
    if (weq(k, "quic.port443"))
        return parse_bool(c, v, &in->quic_port443);
    if (weq(k, "quic.fail-block"))
        return parse_bool(c, v, &in->quic_fail_block);
    if (weq(k, "quic.late-cut"))
        return set_u8(c, v, 255, &in->quic_late_cut);
    if (weq(k, "quic.late-phase"))
        return set_u16(c, v, 65535, &in->quic_late_phase);
    if (weq(k, "timeout.action"))
        return set_u32(c, v, 86400 * 7, &to->action_s);
    if (weq(k, "timeout.tcp"))
        return set_u32(c, v, 86400 * 7, &to->tcp_s);
    if (weq(k, "timeout.syn"))
        return set_u32(c, v, 86400 * 7, &to->syn_s);
    if (weq(k, "timeout.udp"))
        return set_u32(c, v, 86400 * 7, &to->udp_s);
    if (weq(k, "timeout.fin-rst-clears"))
        return parse_bool(c, v, &to->clear_on_fin_rst);
    return fail(c, k->col, "unknown parameter '%.*s' (see 'man slowdown-policy')", (int)k->n, k->p);
}

/* ---- rules ---- */

static int parse_cond(struct ctx *c, int *i, struct sd_cond *cond)
{
    memset(cond, 0, sizeof(*cond));
    if (*i < c->n && weq(&c->w[*i], "not")) {
        cond->negate = true;
        (*i)++;
    }
    if (*i >= c->n)
        return fail(c, c->w[c->n - 1].col, "expected a condition");
    const struct word *w = &c->w[(*i)++];
    static const struct {
        const char *kw;
        uint8_t kind;
        int set; /* 0 none, 1 name set, 2 ip set */
    } kinds[] = {
        {"sni", SD_C_SNI, 1},         {"host", SD_C_HOST, 1},         {"dns", SD_C_DNS, 1},
        {"name", SD_C_NAME, 1},       {"server", SD_C_SERVER_IP, 2}, {"client", SD_C_CLIENT_IP, 2},
        {"remote", SD_C_REMOTE_IP, 2},
        {"tcp", SD_C_TCP, 0},         {"udp", SD_C_UDP, 0},           {"tls", SD_C_TLS, 0},
        {"ech", SD_C_ECH, 0},         {"nosni", SD_C_NOSNI, 0},       {"quic", SD_C_QUIC, 0},
        {"quic-fail", SD_C_QUIC_FAIL, 0}, {"opened-inside", SD_C_OPENED_INSIDE, 0},
    };
    if (weq(w, "marked")) {
        cond->kind = SD_C_MARKED;
        if (*i >= c->n)
            return fail(c, w->col, "expected a mark name after 'marked'");
        const struct word *mw = &c->w[(*i)++];
        int m = sd__policy_get_mark(c, mw);
        if (m < 0)
            return m;
        cond->set = (uint8_t)m;
        return 0;
    }
    if (weq(w, "port")) {
        cond->kind = SD_C_PORT;
        if (*i >= c->n)
            return fail(c, w->col, "expected port numbers after 'port'");
        const struct word *pw = &c->w[(*i)++];
        const char *s = pw->p, *e = pw->p + pw->n;
        while (s < e) {
            const char *comma = memchr(s, ',', (size_t)(e - s));
            struct word one = {s, (size_t)((comma ? comma : e) - s), pw->col + (unsigned)(s - pw->p)};
            uint64_t v;
            int rc = parse_uint(c, &one, 65535, &v);
            if (rc)
                return rc;
            if (cond->n_ports == SD_COUNTOF(cond->ports))
                return fail(c, one.col, "at most %zu ports in one condition", SD_COUNTOF(cond->ports));
            cond->ports[cond->n_ports++] = (uint16_t)v;
            s = comma ? comma + 1 : e;
        }
        return 0;
    }
    for (size_t k = 0; k < SD_COUNTOF(kinds); k++) {
        if (!weq(w, kinds[k].kw))
            continue;
        cond->kind = kinds[k].kind;
        if (!kinds[k].set)
            return 0;
        if (*i + 1 >= c->n || !weq(&c->w[*i], "in"))
            return fail(c, w->col, "expected '%s in SET'", kinds[k].kw);
        const struct word *sw = &c->w[*i + 1];
        *i += 2;
        int set = sd__policy_get_set(c, sw, kinds[k].set == 2, false);
        if (set < 0)
            return fail(c, sw->col, "unknown %s set '%.*s' (define it before this rule with '%s')",
                        kinds[k].set == 2 ? "ip" : "name", (int)sw->n, sw->p, kinds[k].set == 2 ? "ips" : "names");
        cond->set = (uint8_t)set;
        return 0;
    }
    return fail(c, w->col, "unknown condition '%.*s'", (int)w->n, w->p);
}

static bool cond_is_l7(uint8_t kind)
{
    switch (kind) {
    case SD_C_SNI:
    case SD_C_HOST:
    case SD_C_DNS:
    case SD_C_NAME:
    case SD_C_TLS:
    case SD_C_ECH:
    case SD_C_NOSNI:
    case SD_C_QUIC:
    case SD_C_QUIC_FAIL:
        return true;
    }
    return false;
}

static int parse_action_param(struct ctx *c, const struct word *w, struct sd_action *a)
{
    const char *eq = memchr(w->p, '=', w->n);
    if (!eq)
        return fail(c, w->col, "expected KEY=VALUE, got '%.*s'", (int)w->n, w->p);
    struct word k = {w->p, (size_t)(eq - w->p), w->col};
    struct word v = {eq + 1, w->n - k.n - 1, w->col + (unsigned)k.n + 1};
    double d;
    int rc;
    if (weq(&k, "rate")) {
        if ((rc = parse_with_unit(c, &v, rate_units, 4e9, "rate", &d)))
            return rc;
        if (d < 8)
            return fail(c, v.col, "rate must be at least 8bit");
        a->rate_bps = (uint32_t)d;
        return 0;
    }
    if (weq(&k, "burst") || weq(&k, "bytes")) {
        if ((rc = parse_with_unit(c, &v, byte_units, 1e9, "size", &d)))
            return rc;
        if (weq(&k, "burst"))
            a->burst = (uint32_t)d;
        else
            a->n = (uint32_t)d;
        return 0;
    }
    if (weq(&k, "n"))
        return set_u32(c, &v, 1000000, &a->n);
    if (weq(&k, "dir"))
        return parse_dirs(c, &v, &a->dirs);
    if (weq(&k, "count")) {
        static const char *const counts[] = {"l3", "l4", "l2", NULL};
        return parse_enum(c, &v, counts, &a->count);
    }
    if (weq(&k, "acks")) {
        static const char *const acks[] = {"exempt", "police", NULL};
        uint8_t x;
        if ((rc = parse_enum(c, &v, acks, &x)))
            return rc;
        a->police_acks = x == 1;
        return 0;
    }
    if (weq(&k, "rst"))
        return parse_bool(c, &v, &a->rst);
    if (weq(&k, "seconds"))
        return set_u32(c, &v, 86400 * 7, &a->seconds);
    if (weq(&k, "chance")) {
        if ((rc = parse_with_unit(c, &v, chance_units, 1e4, "chance", &d)))
            return rc;
        a->chance = (uint16_t)(d + 0.5);
        return 0;
    }
    if (weq(&k, "tag")) {
        int m = sd__policy_get_mark(c, &v);
        if (m < 0)
            return m;
        a->mark = (uint8_t)m;
        a->has_mark = true;
        return 0;
    }
    if (weq(&k, "data-only"))
        return parse_bool(c, &v, &a->data_only);
    return fail(c, k.col, "unknown action parameter '%.*s'", (int)k.n, k.p);
}

static const char *const action_names[] = {"pass", "throttle", "loss", "rst", "drop-after", "drop", "freeze", "ipblock",
                                           "mark", NULL};

const char *sd_action_kind_name(unsigned kind)
{
    return kind < SD_COUNTOF(action_names) - 1 ? action_names[kind] : "?";
}

const char *sd_action_name(const struct sd_action *a)
{
    switch (a->kind) {
    case SD_A_PASS:
    case SD_A_MARK:
        return "pass";
    case SD_A_THROTTLE:
    case SD_A_LOSS:
        return "throttle";
    case SD_A_FREEZE:
        return "freeze";
    default:
        return "block";
    }
}

static void action_defaults(struct sd_action *a)
{
    memset(a, 0, sizeof(*a));
    a->dirs = SD_DIR_BOTH;
    a->count = SD_COUNT_L3;
    a->rate_bps = 128000;
    a->burst = 16000;
    a->chance = 10000;
    a->n = 0;
}

static int check_action(struct ctx *c, const struct word *aw, struct sd_action *a)
{
    switch (a->kind) {
    case SD_A_DROP_AFTER:
        if (a->n == 0)
            a->n = 6;
        break;
    case SD_A_FREEZE:
        if (a->n == 0)
            a->n = 16384;
        if (a->dirs == SD_DIR_BOTH)
            a->dirs = SD_DIR_S2C;
        break;
    case SD_A_MARK:
        if (!a->has_mark)
            return fail(c, aw->col, "mark needs tag=NAME (the name 'marked NAME' tests)");
        if (a->seconds == 0)
            a->seconds = 600;
        break;
    case SD_A_THROTTLE:
    case SD_A_LOSS:
        if (a->burst < 64)
            return fail(c, aw->col, "burst must be at least 64 bytes (one small packet)");
        break;
    }
    return 0;
}

int sd__policy_stmt_rule(struct ctx *c)
{
    struct sd_policy *p = c->b->pol;
    if (c->n < 4)
        return fail(c, c->w[0].col, "usage: rule NAME when COND [and COND]... then ACTION [KEY=VALUE]...");
    const struct word *nw = &c->w[1];
    if (!sd__policy_valid_ident(nw))
        return fail(c, nw->col, "invalid rule name '%.*s'", (int)nw->n, nw->p);
    struct sd_rule r;
    memset(&r, 0, sizeof(r));
    memcpy(r.name, nw->p, nw->n);
    int i = 2;
    if (weq(&c->w[i], "when")) {
        i++;
        for (;;) {
            if (r.n_conds == SD_POLICY_MAX_CONDS)
                return fail(c, c->w[i < c->n ? i : c->n - 1].col, "at most %d conditions", SD_POLICY_MAX_CONDS);
            int rc = parse_cond(c, &i, &r.conds[r.n_conds]);
            if (rc)
                return rc;
            if (cond_is_l7(r.conds[r.n_conds].kind))
                r.l7 = true;
            r.n_conds++;
            if (i < c->n && weq(&c->w[i], "and")) {
                i++;
                continue;
            }
            break;
        }
    }
    if (i >= c->n || !weq(&c->w[i], "then"))
        return fail(c, c->w[i < c->n ? i : c->n - 1].col, "expected 'then ACTION'");
    i++;
    if (i >= c->n)
        return fail(c, c->w[i - 1].col, "expected an action after 'then'");
    const struct word *aw = &c->w[i++];
    action_defaults(&r.action);
    int rc = parse_enum(c, aw, action_names, &r.action.kind);
    if (rc)
        return rc;
    for (; i < c->n; i++)
        if ((rc = parse_action_param(c, &c->w[i], &r.action)))
            return rc;
    if ((rc = check_action(c, aw, &r.action)))
        return rc;
    for (unsigned k = 0; k < p->n_rules; k++) {
        if (strcmp(p->rules[k].name, r.name) == 0) {
            p->rules[k] = r; /* a later source overrides a rule of the same name */
            return 0;
        }
    }
    if (p->n_rules == SD_POLICY_MAX_RULES)
        return fail(c, nw->col, "too many rules (at most %d)", SD_POLICY_MAX_RULES);
    p->rules[p->n_rules++] = r;
    return 0;
}
