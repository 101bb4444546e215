/*
 * policy_int.h - what policy.c (lines, words, statements, sets, the builder)
 * and policy_values.c (the values of `set`, and the conditions and actions
 * of `rule`) share about one statement. Not for other callers.
 */
#ifndef SD_POLICY_INT_H
#define SD_POLICY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "policy.h"

enum { MAX_WORDS = 64 };

struct pattern;

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

static inline bool weq(const struct word *w, const char *s)
{
    size_t n = strlen(s);
    return w->n == n && memcmp(w->p, s, n) == 0;
}

/* ---- policy.c ---- */

/* Sets c->err: FILE:LINE of the statement, column |col| and the message
 * (printf-style). Called through fail(). */
void sd__policy_error(struct ctx *c, unsigned col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* `return fail(c, col, fmt, ...);` sets the error and returns SD_EINVAL. A
 * macro, so that clang's static analyzer, which does not inline variadic
 * calls, sees the non-zero result: a parser that fails leaves its outputs
 * unset, and its callers go on only when it returned 0. */
#define fail(c, col, ...) (sd__policy_error((c), (col), __VA_ARGS__), SD_EINVAL)

/* Whether |w| may name a set, a mark or a rule. */
bool sd__policy_valid_ident(const struct word *w);

/* The index of name set (ip set if |ip|) |w|, made if |create|. -1 when it
 * does not exist and |create| is false; SD_EINVAL when it cannot be made. */
int sd__policy_get_set(struct ctx *c, const struct word *w, bool ip, bool create);

/* The index of host mark |w|, made on first use, or SD_EINVAL. */
int sd__policy_get_mark(struct ctx *c, const struct word *w);

/* ---- policy_values.c ---- */

/* set KEY VALUE: one parameter of the policy. 0 or SD_EINVAL. */
int sd__policy_stmt_set(struct ctx *c);

/* rule NAME when COND [and COND]... then ACTION [KEY=VALUE]...: adds the
 * rule, or replaces the one of the same name. 0 or SD_EINVAL. */
int sd__policy_stmt_rule(struct ctx *c);

#endif
