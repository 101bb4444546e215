/*
 * fuzz_policy.c - the policy language on arbitrary text: parse, finish,
 * and the invariants the engine relies on when a policy is accepted.
 *
 * Byte 0 picks what the text is added to (modulo 8: nothing, or one of the
 * presets, as `--preset P --policy FILE` does) and, with bit 7, whether the
 * last line of the text is also given to sd_policy_builder_inside (as
 * --inside would be). The rest is the policy text.
 *
 * A rejected text must say where: a message, the file name, and a line
 * within the text. An accepted one must have every set index, condition
 * count and action parameter inside the bounds the engine indexes with.
 *
 * `names SET file PATH` reads files: inputs that name anything under /dev,
 * /proc or /sys are skipped, so the fuzzer cannot block on a FIFO or read a
 * device forever. Relative paths resolve against the working directory.
 */
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool mentions(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, s, k) == 0)
            return true;
    return false;
}

static void check_policy(const struct sd_policy *p)
{
    if (p->n_rules > SD_POLICY_MAX_RULES || p->n_name_sets > SD_POLICY_MAX_SETS || p->n_ip_sets > SD_POLICY_MAX_SETS ||
        (p->inside_set >= 0 && (unsigned)p->inside_set >= p->n_ip_sets) || !p->names || !p->ips)
        abort();
    for (unsigned i = 0; i < p->n_rules; i++) {
        const struct sd_rule *r = &p->rules[i];
        if (r->n_conds > SD_POLICY_MAX_CONDS || !memchr(r->name, 0, sizeof(r->name)) || !r->name[0])
            abort();
        for (unsigned k = 0; k < r->n_conds; k++) {
            const struct sd_cond *c = &r->conds[k];
            bool ipset = c->kind == SD_C_SERVER_IP || c->kind == SD_C_CLIENT_IP;
            bool nameset = c->kind <= SD_C_NAME;
            if (c->kind > SD_C_OPENED_INSIDE || c->n_ports > SD_COUNTOF(c->ports) ||
                (ipset && c->set >= p->n_ip_sets) || (nameset && c->set >= p->n_name_sets))
                abort();
        }
        const struct sd_action *a = &r->action;
        if (a->kind > SD_A_IPBLOCK || a->dirs == 0 || a->dirs > SD_DIR_BOTH || a->count > SD_COUNT_L2)
            abort();
        if ((a->kind == SD_A_THROTTLE || a->kind == SD_A_LOSS) && (a->rate_bps < 8 || a->burst < 64))
            abort();
    }
    /* The sets answer lookups. */
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
    static const uint8_t v4[4] = {203, 0, 113, 5};
    (void)sd_ipset_lookup(p->ips, 4, v4);
    (void)sd_ipset_lookup(p->ips, 6, v6);
    (void)sd_names_lookup(p->names, (const uint8_t *)"www.twitter.com", 15);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const bases[8] = {NULL,         "observe",   "tw21-exact", "cdn25-16k",
                                         "yt24-policer", "tw22-block", "quic22-v1",  "ech24"};
    if (size < 1 || mentions(data, size, "/dev") || mentions(data, size, "/proc") || mentions(data, size, "/sys"))
        return 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    if (!b)
        abort();
    const char *base = bases[data[0] & 7];
    if (base && sd_policy_builder_preset(b, base, &err) != 0)
        abort();
    size_t lines = 1;
    for (size_t i = 0; i < n; i++)
        lines += text[i] == '\n';
    int rc = sd_policy_builder_parse(b, "fuzz.pol", text, n, &err);
    if (rc != 0 && (rc != SD_EINVAL || !err.msg[0] || strcmp(err.file, "fuzz.pol") != 0 || err.line == 0 ||
                    err.line > lines))
        abort();
    if (rc == 0 && (data[0] & 0x80)) {
        const char *s = text + n;
        while (s > text && s[-1] != '\n')
            s--;
        size_t k = (size_t)(text + n - s);
        char *cidrs = malloc(k + 1);
        if (!cidrs)
            abort();
        memcpy(cidrs, s, k);
        cidrs[k] = 0;
        rc = sd_policy_builder_inside(b, cidrs, &err);
        free(cidrs);
        if (rc != 0 && (rc != SD_EINVAL || !err.msg[0]))
            abort();
    }
    if (rc == 0) {
        struct sd_policy *p = sd_policy_builder_finish(b, &err);
        if (p) {
            check_policy(p);
            sd_policy_free(p);
        } else if (!err.msg[0]) {
            abort();
        }
    }
    char msg[1024];
    if (rc != 0)
        sd_policy_error_format(&err, msg, sizeof(msg));
    sd_policy_builder_free(b);
    return 0;
}
