/*
 * match.c - names of a list against a policy (see match.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "match.h"
#include "names.h"

enum { BATCH = 256, BUF_MIN = 16384 };

struct sd_matcher {
    const struct sd_policy *p;
    enum sd_match_as as;
    bool json, all;
    FILE *out;
    struct sd_match_totals t;
    /* The batch: its names' bytes in one buffer. */
    char *buf;
    size_t len, cap;
    size_t count;
    size_t off[BATCH], n[BATCH];
    const uint8_t *ptr[BATCH];
    uint64_t m[BATCH];
};

struct sd_matcher *sd_matcher_new(const struct sd_policy *p, enum sd_match_as as, bool json, bool all, FILE *out)
{
    struct sd_matcher *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    *m = (struct sd_matcher){.p = p, .as = as, .json = json, .all = all, .out = out, .cap = BUF_MIN};
    if (!(m->buf = malloc(m->cap))) {
        free(m);
        return NULL;
    }
    return m;
}

void sd_matcher_free(struct sd_matcher *m)
{
    if (!m)
        return;
    free(m->buf);
    free(m);
}

const struct sd_match_totals *sd_matcher_totals(const struct sd_matcher *m)
{
    return &m->t;
}

/* Whether name condition |c| holds for a name with set mask |mask| read as
 * |as|; -1 when |c| is not a name condition. */
static int name_cond(const struct sd_cond *c, uint64_t mask, enum sd_match_as as)
{
    bool in = mask >> c->set & 1, r;
    switch (c->kind) {
    case SD_C_SNI:
        r = as == SD_MATCH_SNI && in;
        break;
    case SD_C_HOST:
        r = as == SD_MATCH_HOST && in;
        break;
    case SD_C_DNS:
        r = as == SD_MATCH_DNS && in;
        break;
    case SD_C_NAME:
        r = in;
        break;
    default:
        return -1;
    }
    return r != c->negate;
}

/* Whether rule |r| acts on the name (see match.h); |*others| counts its other conditions. */
static bool rule_holds(const struct sd_rule *r, uint64_t mask, enum sd_match_as as, unsigned *others)
{
    bool named = false;
    *others = 0;
    for (unsigned i = 0; i < r->n_conds; i++) {
        int h = name_cond(&r->conds[i], mask, as);
        if (h < 0)
            (*others)++;
        else if (!h)
            return false;
        else if (!r->conds[i].negate)
            named = true;
    }
    return named;
}

/* Writes the names of the sets in |mask| as a JSON array. */
static void json_sets(FILE *o, const struct sd_policy *p, uint64_t mask)
{
    unsigned printed = 0;
    fputc('[', o);
    for (unsigned s = 0; s < p->n_name_sets; s++)
        if (mask >> s & 1) {
            fputs(printed++ ? "," : "", o);
            sd_json_str(o, p->name_sets[s]);
        }
    fputc(']', o);
}

/* The patterns that matched, written by sd_names_explain()'s callback. */
struct patterns {
    const struct sd_matcher *m;
    unsigned count;
};

static void put_pattern(void *arg, const char *pattern, size_t n, uint64_t tags)
{
    struct patterns *pp = arg;
    const struct sd_matcher *m = pp->m;
    FILE *o = m->out;
    if (!m->json) {
        fputs(pp->count++ ? "," : "", o);
        fwrite(pattern, 1, n, o);
        return;
    }
    fputs(pp->count++ ? ",{\"pattern\":" : "[{\"pattern\":", o);
    sd_json_bytes(o, pattern, n);
    fputs(",\"sets\":", o);
    json_sets(o, m->p, tags);
    fputc('}', o);
}

/* Writes the patterns that match the name: "-" (text) or [] (JSON) for
 * none; "-" or null for a name too long to explain (over 255 bytes, which
 * sd_names_explain() refuses before it reports anything). */
static void print_patterns(const struct sd_matcher *m, const uint8_t *name, size_t n, uint64_t mask)
{
    struct patterns pp = {m, 0};
    int rc = mask ? sd_names_explain(m->p->names, name, n, put_pattern, &pp) : 0;
    if (m->json)
        fputs(pp.count ? "]" : rc == SD_ERANGE ? "null" : "[]", m->out);
    else if (!pp.count)
        fputc('-', m->out);
}

static void print_json(const struct sd_matcher *m, const uint8_t *name, size_t n, uint64_t mask)
{
    const struct sd_policy *p = m->p;
    FILE *o = m->out;
    unsigned printed = 0, others;
    fputs("{\"type\":\"name\",\"name\":", o);
    sd_json_bytes(o, name, n);
    fputs(",\"sets\":", o);
    json_sets(o, p, mask);
    fputs(",\"rules\":[", o);
    for (unsigned i = 0; i < p->n_rules; i++)
        if (rule_holds(&p->rules[i], mask, m->as, &others)) {
            fputs(printed++ ? ",{\"rule\":" : "{\"rule\":", o);
            sd_json_str(o, p->rules[i].name);
            fputs(",\"action\":", o);
            sd_json_str(o, sd_action_name(&p->rules[i].action));
            fprintf(o, ",\"other_conditions\":%u}", others);
        }
    fputs("],\"patterns\":", o);
    print_patterns(m, name, n, mask);
    fputs("}\n", o);
}

static void print_text(const struct sd_matcher *m, const uint8_t *name, size_t n, uint64_t mask)
{
    const struct sd_policy *p = m->p;
    FILE *o = m->out;
    unsigned printed = 0, others;
    fwrite(name, 1, n, o);
    fputc('\t', o);
    for (unsigned s = 0; s < p->n_name_sets; s++)
        if (mask >> s & 1)
            fprintf(o, "%s%s", printed++ ? "," : "", p->name_sets[s]);
    fputs(printed ? "\t" : "-\t", o);
    printed = 0;
    for (unsigned i = 0; i < p->n_rules; i++)
        if (rule_holds(&p->rules[i], mask, m->as, &others)) {
            fprintf(o, "%s%s:%s", printed++ ? "," : "", p->rules[i].name, sd_action_name(&p->rules[i].action));
            if (others)
                fprintf(o, "+%u", others);
        }
    fputs(printed ? "\t" : "-\t", o);
    print_patterns(m, name, n, mask);
    fputc('\n', o);
}

static void flush_batch(struct sd_matcher *m)
{
    for (size_t i = 0; i < m->count; i++)
        m->ptr[i] = (const uint8_t *)m->buf + m->off[i];
    sd_names_lookup_batch(m->p->names, m->ptr, m->n, m->count, m->m);
    for (size_t i = 0; i < m->count; i++) {
        uint64_t mask = m->m[i];
        m->t.names++;
        if (mask) {
            m->t.matched++;
            for (unsigned s = 0; s < m->p->n_name_sets; s++)
                m->t.by_set[s] += mask >> s & 1;
        }
        if (mask || m->all)
            (m->json ? print_json : print_text)(m, m->ptr[i], m->n[i], mask);
    }
    m->count = 0;
    m->len = 0;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

const char *sd_match_line_name(const char *line, size_t len, size_t *n)
{
    while (len > 0 && blank(line[len - 1]))
        len--;
    size_t i = 0;
    while (i < len && blank(line[i]))
        i++;
    if (i == len || line[i] == '#')
        return NULL;
    for (size_t j = len; j > i; j--)
        if (line[j - 1] == ',') {
            i = j;
            break;
        }
    while (i < len && blank(line[i]))
        i++;
    *n = len - i;
    return *n ? line + i : NULL;
}

/* Adds a name to the batch, flushing it when full. 0 or SD_ENOMEM. */
static int add_name(struct sd_matcher *m, const char *name, size_t n)
{
    if (m->len + n > m->cap) {
        size_t cap = m->cap;
        while (cap < m->len + n)
            cap *= 2;
        char *nb = realloc(m->buf, cap);
        if (!nb)
            return SD_ENOMEM;
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, name, n);
    m->off[m->count] = m->len;
    m->n[m->count++] = n;
    m->len += n;
    if (m->count == BATCH)
        flush_batch(m);
    return 0;
}

int sd_matcher_read(struct sd_matcher *m, FILE *in)
{
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (got = getline(&line, &lcap, in)) >= 0) {
        size_t n;
        const char *name = sd_match_line_name(line, (size_t)got, &n);
        if (name)
            rc = add_name(m, name, n);
    }
    int err = errno ? errno : EIO;
    if (rc == 0 && ferror(in))
        rc = SD_EIO;
    free(line);
    flush_batch(m); /* the names read before an error are answered too */
    errno = err;
    return rc;
}
