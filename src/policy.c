/*
 * policy.c - the policy language: parsing, validation and compilation.
 *
 * The language is line based (docs/policy.md has the reference). Each line
 * is a statement: a keyword and its words, `#` starts a comment, and a
 * statement may be continued on the next line with a trailing backslash.
 *
 *   names twitter t.co *.twimg.com twitter.com *.twitter.com
 *   ips   cdn 104.16.0.0/13 2606:4700::/32
 *   set   inspect.extra 15
 *   rule  twitter when sni in twitter then throttle rate=128kbit burst=16000
 *
 * Parsing fills a builder: sets accumulate by name across sources (a preset,
 * then files that extend it), `set` overrides a parameter, and a rule whose
 * name already exists replaces it in place. The builder keeps the name
 * patterns as text until finish(), because match options such as case
 * folding may be set after the patterns that they govern.
 *
 * Errors carry FILE:LINE:COL of the word that is wrong.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "policy.h"
#include "preset.h"

enum { MAX_WORDS = 64 };

struct pattern {
    uint32_t off;  /* into the builder's text arena */
    uint16_t len;
    uint8_t tag;
};

struct sd_policy_builder {
    struct sd_policy *pol;
    char *arena;
    size_t arena_len, arena_cap;
    struct pattern *pats;
    size_t n_pats, cap_pats;
    struct sd_ipset *ips;
    bool inside_replaced;
};

struct word {
    const char *p;
    size_t n;
    unsigned col;
};

/* Parsing context of one statement. */
struct ctx {
    struct sd_policy_builder *b;
    const char *file;
    const char *dir; /* directory of the file, for relative paths; NULL for presets */
    unsigned line;
    struct word w[MAX_WORDS];
    int n;
    struct sd_policy_error *err;
};

static int fail(struct ctx *c, unsigned col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, unsigned col, const char *fmt, ...)
{
    va_list ap;
    snprintf(c->err->file, sizeof(c->err->file), "%s", c->file);
    c->err->line = c->line;
    c->err->col = col;
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
    va_end(ap);
    return SD_EINVAL;
}

void sd_policy_error_format(const struct sd_policy_error *err, char *buf, size_t len)
{
    if (err->line)
        snprintf(buf, len, "%s:%u:%u: %s", err->file, err->line, err->col, err->msg);
    else
        snprintf(buf, len, "%s: %s", err->file, err->msg);
}

static bool weq(const struct word *w, const char *s)
{
    size_t n = strlen(s);
    return w->n == n && memcmp(w->p, s, n) == 0;
}

/* ---- defaults ---- */

static void defaults(struct sd_policy *p)
{
    struct sd_inspect *in = &p->inspect;
    in->dirs = SD_DIR_BOTH;
    in->extra_packets = 15;
    in->giveup_bytes = 101;
    in->tls_mode = SD_TLS_STRICT;
    in->quic_mode = SD_QUIC_OFF;
    in->http = true;
    in->dns = false;
    in->require_inside_open = true;
    in->remote_syn_unblocks = true;
    in->unknown_eligible = false;
    in->verify_csum = false;
    in->casefold = false;
    in->strip_dot = false;
    in->frag_buffer = false;
    in->frag_max = 45;
    in->reasm_bytes = 16384;
    in->quic_packets = 4;
    in->quic_min_len = 1200;
    in->quic_port443 = true;
    in->quic_fail_block = false;
    in->quic_late_cut = 0;
    in->quic_late_phase = 600;
    p->timeouts.action_s = 600;
    p->timeouts.tcp_s = 600;
    p->timeouts.syn_s = 60;
    p->timeouts.udp_s = 120;
    p->timeouts.clear_on_fin_rst = false;
    p->inside_set = -1;
}

/* ---- sets ---- */

static int find_set(char (*names)[SD_POLICY_NAME_MAX], unsigned n, const struct word *w)
{
    for (unsigned i = 0; i < n; i++)
        if (strlen(names[i]) == w->n && memcmp(names[i], w->p, w->n) == 0)
            return (int)i;
    return -1;
}

static bool valid_ident(const struct word *w)
{
    if (w->n == 0 || w->n >= SD_POLICY_NAME_MAX)
        return false;
    for (size_t i = 0; i < w->n; i++) {
        unsigned char ch = (unsigned char)w->p[i];
        if (!isalnum(ch) && ch != '-' && ch != '_' && ch != '.')
            return false;
    }
    return true;
}

static int get_set(struct ctx *c, const struct word *w, bool ip, bool create)
{
    struct sd_policy *p = c->b->pol;
    char (*names)[SD_POLICY_NAME_MAX] = ip ? p->ip_sets : p->name_sets;
    unsigned *n = ip ? &p->n_ip_sets : &p->n_name_sets;
    int i = find_set(names, *n, w);
    if (i >= 0 || !create)
        return i;
    if (!valid_ident(w))
        return fail(c, w->col, "invalid set name '%.*s' (letters, digits, '-', '_', '.'; at most %d)", (int)w->n, w->p,
                    SD_POLICY_NAME_MAX - 1);
    if (*n >= SD_POLICY_MAX_SETS)
        return fail(c, w->col, "too many %s sets (at most %d)", ip ? "ip" : "name", SD_POLICY_MAX_SETS);
    memcpy(names[*n], w->p, w->n);
    names[*n][w->n] = 0;
    if (ip && w->n == 6 && memcmp(w->p, "inside", 6) == 0)
        p->inside_set = (int)*n;
    return (int)(*n)++;
}

/* The index of host mark |w|, made on first use (marks need no declaration:
 * the rule that sets one and the rule that tests it name it alike). */
static int get_mark(struct ctx *c, const struct word *w)
{
    struct sd_policy *p = c->b->pol;
    int i = find_set(p->marks, p->n_marks, w);
    if (i >= 0)
        return i;
    if (!valid_ident(w))
        return fail(c, w->col, "invalid mark name '%.*s' (letters, digits, '-', '_', '.'; at most %d)", (int)w->n,
                    w->p, SD_POLICY_NAME_MAX - 1);
    if (p->n_marks >= SD_POLICY_MAX_MARKS)
        return fail(c, w->col, "too many host marks (at most %d)", SD_POLICY_MAX_MARKS);
    memcpy(p->marks[p->n_marks], w->p, w->n);
    p->marks[p->n_marks][w->n] = 0;
    return (int)p->n_marks++;
}

static int add_pattern(struct ctx *c, const char *s, size_t n, unsigned tag, unsigned col)
{
    struct sd_policy_builder *b = c->b;
    /* Validate now, so the error points at the word. */
    if (n == 0 || n > SD_NAME_MAX)
        return fail(c, col, "name pattern must be 1 to %d bytes", SD_NAME_MAX);
    size_t stars = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '*') {
            stars++;
            if (i != 0 && i != n - 1)
                return fail(c, col, "'*' may only start or end a pattern: '%.*s'", (int)n, s);
        }
    }
    if (stars == n || (stars == 2 && n < 3) || (stars == 1 && s[n - 1] == '*' && s[0] != '*'))
        return fail(c, col, "invalid pattern '%.*s' (use exact, *.suffix, *suffix or *substring*)", (int)n, s);
    if (b->arena_len + n > b->arena_cap) {
        size_t cap = b->arena_cap ? b->arena_cap * 2 : 65536;
        while (cap < b->arena_len + n)
            cap *= 2;
        char *na = realloc(b->arena, cap);
        if (!na)
            return fail(c, col, "out of memory");
        b->arena = na;
        b->arena_cap = cap;
    }
    if (b->n_pats == b->cap_pats) {
        size_t cap = b->cap_pats ? b->cap_pats * 2 : 1024;
        struct pattern *np = realloc(b->pats, cap * sizeof(*np));
        if (!np)
            return fail(c, col, "out of memory");
        b->pats = np;
        b->cap_pats = cap;
    }
    memcpy(b->arena + b->arena_len, s, n);
    b->pats[b->n_pats++] = (struct pattern){(uint32_t)b->arena_len, (uint16_t)n, (uint8_t)tag};
    b->arena_len += n;
    return 0;
}

static int read_whole(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return SD_EIO;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return SD_ENOMEM;
    }
    for (;;) {
        if (n == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return SD_ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return SD_EIO;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static void resolve_path(const struct ctx *c, const struct word *w, char *out, size_t cap)
{
    if (w->p[0] == '/' || !c->dir)
        snprintf(out, cap, "%.*s", (int)w->n, w->p);
    else
        snprintf(out, cap, "%s/%.*s", c->dir, (int)w->n, w->p);
}

/* One entry per line; '#' comments and blank lines skipped. */
typedef int (*line_fn)(struct ctx *c, const char *s, size_t n, unsigned tag, unsigned col, const void *arg);

static int each_line_of_file(struct ctx *c, const struct word *pathw, unsigned tag, line_fn fn, const void *arg)
{
    char path[1024];
    resolve_path(c, pathw, path, sizeof(path));
    char *text;
    size_t len;
    int rc = read_whole(path, &text, &len);
    if (rc)
        return fail(c, pathw->col, "cannot read '%s': %s", path, rc == SD_EIO ? strerror(errno) : sd_strerror(rc));
    const char *p = text, *end = text + len;
    unsigned lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        const char *s = p, *e = le;
        while (s < e && isspace((unsigned char)*s))
            s++;
        const char *hash = e > s ? memchr(s, '#', (size_t)(e - s)) : NULL;
        if (hash)
            e = hash;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (e > s) {
            rc = fn(c, s, (size_t)(e - s), tag, pathw->col, arg);
            if (rc) {
                /* Say which line of the list was bad. */
                char where[300];
                snprintf(where, sizeof(where), " (line %u of %.200s)", lineno, path);
                size_t ml = strlen(c->err->msg), wl = strlen(where);
                if (ml + wl < sizeof(c->err->msg))
                    memcpy(c->err->msg + ml, where, wl + 1);
                free(text);
                return rc;
            }
        }
        p = le + 1;
    }
    free(text);
    return 0;
}

static int line_pattern(struct ctx *c, const char *s, size_t n, unsigned tag, unsigned col, const void *arg)
{
    bool domains = arg != NULL;
    int rc = add_pattern(c, s, n, tag, col);
    if (rc || !domains)
        return rc;
    /* A registry domain blocks its subdomains too. */
    char buf[SD_NAME_MAX + 3];
    if (n + 2 > SD_NAME_MAX)
        return fail(c, col, "domain too long: '%.*s'", (int)SD_MIN(n, 64), s);
    buf[0] = '*';
    buf[1] = '.';
    memcpy(buf + 2, s, n);
    return add_pattern(c, buf, n + 2, tag, col);
}

static int line_cidr(struct ctx *c, const char *s, size_t n, unsigned tag, unsigned col, const void *arg)
{
    (void)arg;
    int rc = sd_ipset_add_text(c->b->ips, s, n, tag);
    if (rc)
        return fail(c, col, "invalid address or prefix '%.*s'", (int)SD_MIN(n, 64), s);
    return 0;
}

static int stmt_names(struct ctx *c)
{
    if (c->n < 2)
        return fail(c, c->w[0].col, "usage: names SET PATTERN... | names SET file PATH | names SET domains PATH");
    int set = get_set(c, &c->w[1], false, true);
    if (set < 0)
        return set;
    if (c->n >= 3 && (weq(&c->w[2], "file") || weq(&c->w[2], "domains"))) {
        if (c->n != 4)
            return fail(c, c->w[2].col, "usage: names SET %.*s PATH", (int)c->w[2].n, c->w[2].p);
        return each_line_of_file(c, &c->w[3], (unsigned)set, line_pattern, weq(&c->w[2], "domains") ? c : NULL);
    }
    for (int i = 2; i < c->n; i++) {
        int rc = add_pattern(c, c->w[i].p, c->w[i].n, (unsigned)set, c->w[i].col);
        if (rc)
            return rc;
    }
    return 0;
}

static int stmt_ips(struct ctx *c, int first)
{
    struct word inside = {"inside", 6, c->w[0].col};
    const struct word *setw = first == 1 ? &inside : &c->w[1];
    /* 'inside' needs a prefix, 'ips' a set name; an explicit 'inside'
     * statement is additive like any set. */
    if (c->n < 2)
        return fail(c, c->w[0].col, "usage: ips SET CIDR... | ips SET file PATH | inside CIDR...");
    int set = get_set(c, setw, true, true);
    if (set < 0)
        return set;
    if (c->n >= first + 1 && weq(&c->w[first], "file")) {
        if (c->n != first + 2)
            return fail(c, c->w[first].col, "usage: ips SET file PATH");
        return each_line_of_file(c, &c->w[first + 1], (unsigned)set, line_cidr, NULL);
    }
    for (int i = first; i < c->n; i++) {
        int rc = sd_ipset_add_text(c->b->ips, c->w[i].p, c->w[i].n, (unsigned)set);
        if (rc)
            return fail(c, c->w[i].col, "invalid address or prefix '%.*s'", (int)c->w[i].n, c->w[i].p);
    }
    return 0;
}

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

static int stmt_set(struct ctx *c)
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
        int m = get_mark(c, mw);
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
        int set = get_set(c, sw, kinds[k].set == 2, false);
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
        int m = get_mark(c, &v);
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

static int stmt_rule(struct ctx *c)
{
    struct sd_policy *p = c->b->pol;
    if (c->n < 4)
        return fail(c, c->w[0].col, "usage: rule NAME when COND [and COND]... then ACTION [KEY=VALUE]...");
    const struct word *nw = &c->w[1];
    if (!valid_ident(nw))
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

static int stmt_meta(struct ctx *c, char *dst, size_t cap, const char *raw_rest)
{
    if (c->n < 2)
        return fail(c, c->w[0].col, "usage: %.*s TEXT", (int)c->w[0].n, c->w[0].p);
    size_t n = strlen(raw_rest);
    if (n >= cap)
        n = cap - 1; /* metadata is for display: long text is cut */
    memcpy(dst, raw_rest, n);
    dst[n] = 0;
    return 0;
}

static int stmt_unrule(struct ctx *c)
{
    struct sd_policy *p = c->b->pol;
    if (c->n != 2)
        return fail(c, c->w[0].col, "usage: unrule NAME");
    for (unsigned k = 0; k < p->n_rules; k++) {
        if (strlen(p->rules[k].name) == c->w[1].n && !memcmp(p->rules[k].name, c->w[1].p, c->w[1].n)) {
            memmove(&p->rules[k], &p->rules[k + 1], (p->n_rules - k - 1) * sizeof(p->rules[0]));
            p->n_rules--;
            return 0;
        }
    }
    return fail(c, c->w[1].col, "no rule named '%.*s'", (int)c->w[1].n, c->w[1].p);
}

static int statement(struct ctx *c, const char *rest_of_first)
{
    const struct word *k = &c->w[0];
    struct sd_policy *p = c->b->pol;
    if (weq(k, "names"))
        return stmt_names(c);
    if (weq(k, "ips"))
        return stmt_ips(c, 2);
    if (weq(k, "inside"))
        return stmt_ips(c, 1);
    if (weq(k, "set"))
        return stmt_set(c);
    if (weq(k, "rule"))
        return stmt_rule(c);
    if (weq(k, "unrule"))
        return stmt_unrule(c);
    if (weq(k, "preset"))
        return stmt_meta(c, p->name, sizeof(p->name), rest_of_first);
    if (weq(k, "period"))
        return stmt_meta(c, p->period, sizeof(p->period), rest_of_first);
    if (weq(k, "summary"))
        return stmt_meta(c, p->summary, sizeof(p->summary), rest_of_first);
    if (weq(k, "source"))
        return stmt_meta(c, p->sources, sizeof(p->sources), rest_of_first);
    return fail(c, k->col, "unknown statement '%.*s' (expected names, ips, inside, set, rule, unrule, preset, period, "
                           "summary or source)",
                (int)k->n, k->p);
}

/* Splits one logical line into words; returns 0 or an error for bad bytes. */
static int split_words(struct ctx *c, const char *s, const char *e, const char *line_start)
{
    c->n = 0;
    while (s < e) {
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        if (s >= e || *s == '#')
            break;
        const char *ws = s;
        while (s < e && *s != ' ' && *s != '\t')
            s++;
        if (c->n == MAX_WORDS)
            return fail(c, (unsigned)(ws - line_start) + 1, "too many words on one line (at most %d)", MAX_WORDS);
        for (const char *q = ws; q < s; q++)
            if ((unsigned char)*q < 0x20 || *q == 0x7f)
                return fail(c, (unsigned)(q - line_start) + 1, "control character 0x%02x in the policy",
                            (unsigned char)*q);
        c->w[c->n++] = (struct word){ws, (size_t)(s - ws), (unsigned)(ws - line_start) + 1};
    }
    return 0;
}

static int parse_text(struct sd_policy_builder *b, const char *file, const char *dir, const char *text, size_t len,
                      struct sd_policy_error *err)
{
    struct ctx c = {.b = b, .file = file, .dir = dir, .err = err};
    memset(err, 0, sizeof(*err));
    const char *p = text, *end = text + len;
    /* Continuation lines are joined into this buffer; columns then refer to
     * the first physical line, which is where such statements start. */
    char joined[8192];
    while (p < end) {
        c.line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *ls = p, *lend = le;
        if (lend > ls && lend[-1] == '\r')
            lend--;
        if (lend > ls && memchr(ls, 0, (size_t)(lend - ls)))
            return fail(&c, 1, "NUL byte in the policy");
        unsigned first_line = c.line;
        size_t jn = 0;
        while (lend > ls && lend[-1] == '\\' && nl) {
            size_t part = (size_t)(lend - 1 - ls);
            if (jn + part + 1 >= sizeof(joined))
                return fail(&c, 1, "statement too long");
            memcpy(joined + jn, ls, part);
            jn += part;
            joined[jn++] = ' ';
            p = nl + 1;
            nl = memchr(p, '\n', (size_t)(end - p));
            le = nl ? nl : end;
            ls = p;
            lend = le;
            if (lend > ls && lend[-1] == '\r')
                lend--;
            c.line++;
        }
        const char *s = ls, *e = lend;
        if (jn) {
            if (jn + (size_t)(lend - ls) >= sizeof(joined))
                return fail(&c, 1, "statement too long");
            memcpy(joined + jn, ls, (size_t)(lend - ls));
            jn += (size_t)(lend - ls);
            s = joined;
            e = joined + jn;
        }
        unsigned last_line = c.line;
        c.line = first_line;
        int rc = split_words(&c, s, e, s);
        if (!rc && c.n > 0) {
            /* The raw text after the keyword, for metadata statements. */
            char rest[512];
            const char *r = c.w[0].p + c.w[0].n;
            while (r < e && (*r == ' ' || *r == '\t'))
                r++;
            const char *re = e;
            const char *hash = re > r ? memchr(r, '#', (size_t)(re - r)) : NULL;
            if (hash && (hash == r || hash[-1] == ' ' || hash[-1] == '\t'))
                re = hash;
            while (re > r && (re[-1] == ' ' || re[-1] == '\t'))
                re--;
            snprintf(rest, sizeof(rest), "%.*s", (int)(re - r), r);
            rc = statement(&c, rest);
        }
        if (rc)
            return rc;
        c.line = last_line;
        p = le + (nl ? 1 : 0);
        if (!nl)
            break;
    }
    return 0;
}

/* ---- builder ---- */

struct sd_policy_builder *sd_policy_builder_new(void)
{
    struct sd_policy_builder *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->pol = calloc(1, sizeof(*b->pol));
    b->ips = sd_ipset_new();
    if (!b->pol || !b->ips) {
        sd_policy_builder_free(b);
        return NULL;
    }
    defaults(b->pol);
    return b;
}

void sd_policy_builder_free(struct sd_policy_builder *b)
{
    if (!b)
        return;
    if (b->pol)
        sd_policy_free(b->pol);
    sd_ipset_free(b->ips);
    free(b->arena);
    free(b->pats);
    free(b);
}

int sd_policy_builder_parse(struct sd_policy_builder *b, const char *file, const char *text, size_t len,
                            struct sd_policy_error *err)
{
    return parse_text(b, file, NULL, text, len, err);
}

int sd_policy_builder_preset(struct sd_policy_builder *b, const char *name, struct sd_policy_error *err)
{
    for (const struct sd_preset_file *f = sd_preset_files; f->name; f++) {
        if (strcmp(f->name, name) == 0) {
            char label[128];
            snprintf(label, sizeof(label), "preset:%s", name);
            return parse_text(b, label, NULL, f->text, f->len, err);
        }
    }
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", name);
    snprintf(err->msg, sizeof(err->msg), "unknown preset (run 'slowdown presets' for the list)");
    return SD_ENOENT;
}

int sd_policy_builder_file(struct sd_policy_builder *b, const char *path, struct sd_policy_error *err)
{
    char *text;
    size_t len;
    memset(err, 0, sizeof(*err));
    int rc = read_whole(path, &text, &len);
    if (rc) {
        snprintf(err->file, sizeof(err->file), "%s", path);
        snprintf(err->msg, sizeof(err->msg), "cannot read: %s", rc == SD_EIO ? strerror(errno) : sd_strerror(rc));
        return rc;
    }
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    rc = parse_text(b, path, dir, text, len, err);
    free(text);
    return rc;
}

int sd_policy_builder_inside(struct sd_policy_builder *b, const char *cidrs, struct sd_policy_error *err)
{
    /* --inside replaces the set: rebuild the ip set without the old inside prefixes
     * is not possible incrementally, so the inside set gets a fresh tag. */
    struct sd_policy *p = b->pol;
    struct ctx c = {.b = b, .file = "--inside", .err = err, .line = 0};
    memset(err, 0, sizeof(*err));
    if (p->inside_set >= 0) {
        /* Rename the old set so that the new one takes the name "inside". */
        snprintf(p->ip_sets[p->inside_set], SD_POLICY_NAME_MAX, "inside~old%d", p->inside_set);
        p->inside_set = -1;
    }
    struct word w = {"inside", 6, 1};
    int set = get_set(&c, &w, true, true);
    if (set < 0)
        return set;
    const char *s = cidrs;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n == 0 || sd_ipset_add_text(b->ips, s, n, (unsigned)set)) {
            snprintf(err->file, sizeof(err->file), "--inside");
            snprintf(err->msg, sizeof(err->msg), "invalid address or prefix '%.*s'", (int)n, s);
            return SD_EINVAL;
        }
        s += n + (comma ? 1 : 0);
    }
    b->inside_replaced = true;
    return 0;
}

static const char *const default_inside[] = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                             "fc00::/7"};

struct sd_policy *sd_policy_builder_finish(struct sd_policy_builder *b, struct sd_policy_error *err)
{
    struct sd_policy *p = b->pol;
    memset(err, 0, sizeof(*err));
    snprintf(err->file, sizeof(err->file), "%s", p->name[0] ? p->name : "policy");
    if (p->inside_set < 0) {
        struct ctx c = {.b = b, .file = "inside", .err = err};
        struct word w = {"inside", 6, 1};
        int set = get_set(&c, &w, true, true);
        if (set < 0)
            return NULL;
        for (size_t i = 0; i < SD_COUNTOF(default_inside); i++)
            sd_ipset_add_text(b->ips, default_inside[i], strlen(default_inside[i]), (unsigned)set);
    }
    unsigned opts = (p->inspect.casefold ? SD_NAMES_CASEFOLD : 0) | (p->inspect.strip_dot ? SD_NAMES_STRIP_DOT : 0);
    p->names = sd_names_new(opts);
    if (!p->names) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < b->n_pats; i++) {
        const struct pattern *pt = &b->pats[i];
        int rc = sd_names_add(p->names, b->arena + pt->off, pt->len, pt->tag);
        if (rc) {
            snprintf(err->msg, sizeof(err->msg), "pattern '%.*s': %s", (int)pt->len, b->arena + pt->off,
                     sd_strerror(rc));
            return NULL;
        }
    }
    if (sd_names_compile(p->names) || sd_ipset_compile(b->ips)) {
        snprintf(err->msg, sizeof(err->msg), "out of memory compiling the sets");
        return NULL;
    }
    p->ips = b->ips;
    b->ips = NULL;
    b->pol = NULL;
    return p;
}

void sd_policy_free(struct sd_policy *p)
{
    if (!p)
        return;
    sd_names_free(p->names);
    sd_ipset_free(p->ips);
    free(p);
}
