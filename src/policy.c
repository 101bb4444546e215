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
 *
 * This file reads the text, splits it into statements of words and keeps
 * the sets and the builder; policy_values.c parses the values of `set` and
 * the conditions and actions of `rule` (policy_int.h is what both share).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "policy.h"
#include "policy_int.h"
#include "preset.h"

struct pattern {
    uint32_t off;  /* into the builder's text arena */
    uint16_t len;
    uint8_t tag;
};

void sd__policy_error(struct ctx *c, unsigned col, const char *fmt, ...)
{
    va_list ap;
    snprintf(c->err->file, sizeof(c->err->file), "%s", c->file);
    c->err->line = c->line;
    c->err->col = col;
    va_start(ap, fmt);
    vsnprintf(c->err->msg, sizeof(c->err->msg), fmt, ap);
    va_end(ap);
}

void sd_policy_error_format(const struct sd_policy_error *err, char *buf, size_t len)
{
    if (err->line)
        snprintf(buf, len, "%s:%u:%u: %s", err->file, err->line, err->col, err->msg);
    else
        snprintf(buf, len, "%s: %s", err->file, err->msg);
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

bool sd__policy_valid_ident(const struct word *w)
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

int sd__policy_get_set(struct ctx *c, const struct word *w, bool ip, bool create)
{
    struct sd_policy *p = c->b->pol;
    char (*names)[SD_POLICY_NAME_MAX] = ip ? p->ip_sets : p->name_sets;
    unsigned *n = ip ? &p->n_ip_sets : &p->n_name_sets;
    int i = find_set(names, *n, w);
    if (i >= 0 || !create)
        return i;
    if (!sd__policy_valid_ident(w))
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
int sd__policy_get_mark(struct ctx *c, const struct word *w)
{
    struct sd_policy *p = c->b->pol;
    int i = find_set(p->marks, p->n_marks, w);
    if (i >= 0)
        return i;
    if (!sd__policy_valid_ident(w))
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
    int set = sd__policy_get_set(c, &c->w[1], false, true);
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
    int set = sd__policy_get_set(c, setw, true, true);
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

/* ---- statements ---- */

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
        return sd__policy_stmt_set(c);
    if (weq(k, "rule"))
        return sd__policy_stmt_rule(c);
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
    int set = sd__policy_get_set(&c, &w, true, true);
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
        int set = sd__policy_get_set(&c, &w, true, true);
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
