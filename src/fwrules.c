/*
 * fwrules.c - build, print, apply and remove the queueing rules (the rule
 * set is drawn in fwrules.h).
 *
 * Rules are plain argv lists run through iptables-legacy and
 * ip6tables-legacy (the kernel here has no nftables queue statement), so
 * --print-rules shows exactly what would run. Removal does not rebuild the
 * rules from the current options: it lists the hook chains (-S) and deletes
 * every rule that jumps to our chain, so the leftovers of a crashed run with
 * other options go too.
 */
#include <linux/filter.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpfpass.h"
#include "fwrules.h"
#include "inline.h"
#include "subproc.h"

static const char *const tools[2] = {"iptables-legacy", "ip6tables-legacy"};
static const char *const hook_table[2] = {"filter", "mangle"};
static const char *const hook_chain[2] = {"FORWARD", "PREROUTING"};

void sd_fw_chain_name(const struct sd_fw_config *c, char *buf, size_t len)
{
    snprintf(buf, len, "SLOWDOWN-%u", c->queue);
}

void sd_fw_set_name(const struct sd_fw_config *c, int family, char *buf, size_t len)
{
    snprintf(buf, len, "SLOWDOWN-%u-v%d", c->queue, family);
}

static void lb_chain_name(const struct sd_fw_config *c, char *buf, size_t len)
{
    snprintf(buf, len, "SLOWDOWN-%u-lb", c->queue);
}

/* ---- the per-flow balance program ---- */

struct prog {
    struct sd_fw_insn *in;
    unsigned n;
};

static unsigned emit(struct prog *p, uint16_t code, uint32_t k)
{
    p->in[p->n] = (struct sd_fw_insn){.code = code, .k = k};
    return p->n++;
}

/* Points the true (or false) branch of the jump at |at| to the next instruction. */
static void land(struct prog *p, unsigned at, bool taken)
{
    uint8_t d = (uint8_t)(p->n - at - 1);
    if (taken)
        p->in[at].jt = d;
    else
        p->in[at].jf = d;
}

unsigned sd_fw_balance_prog(int family, unsigned w, unsigned i, struct sd_fw_insn *out)
{
    struct prog p = {.in = out};
    unsigned frag = 0;

    /* M[0] = the addresses, XORed: the same both ways. */
    if (family == 4) {
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 12);
        emit(&p, BPF_MISC | BPF_TAX, 0);
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 16);
        emit(&p, BPF_ALU | BPF_XOR | BPF_X, 0);
        emit(&p, BPF_ST, 0);
        emit(&p, BPF_LD | BPF_H | BPF_ABS, 6);
        frag = emit(&p, BPF_JMP | BPF_JSET | BPF_K, 0x3fff); /* a fragment: no ports in some, so none in all */
        emit(&p, BPF_LD | BPF_B | BPF_ABS, 9);
    } else {
        static const uint32_t more[] = {32, 20, 36}; /* with 16: the last 8 bytes of both addresses */
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 16);
        emit(&p, BPF_MISC | BPF_TAX, 0);
        for (size_t k = 0; k < SD_COUNTOF(more); k++) {
            emit(&p, BPF_LD | BPF_W | BPF_ABS, more[k]);
            emit(&p, BPF_ALU | BPF_XOR | BPF_X, 0);
            emit(&p, BPF_MISC | BPF_TAX, 0);
        }
        emit(&p, BPF_ST, 0);
        emit(&p, BPF_LD | BPF_B | BPF_ABS, 6); /* the next header: TCP or UDP right after the fixed one */
    }
    unsigned tcp = emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 6);
    unsigned udp = emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 17);
    land(&p, tcp, true);
    /* M[0] ^= the ports, XORed. */
    if (family == 4) {
        emit(&p, BPF_LDX | BPF_B | BPF_MSH, 0);
        emit(&p, BPF_LD | BPF_H | BPF_IND, 0);
        emit(&p, BPF_ST, 1);
        emit(&p, BPF_LD | BPF_H | BPF_IND, 2);
    } else {
        emit(&p, BPF_LD | BPF_H | BPF_ABS, 40);
        emit(&p, BPF_ST, 1);
        emit(&p, BPF_LD | BPF_H | BPF_ABS, 42);
    }
    emit(&p, BPF_LDX | BPF_W | BPF_MEM, 1);
    emit(&p, BPF_ALU | BPF_XOR | BPF_X, 0);
    emit(&p, BPF_LDX | BPF_W | BPF_MEM, 0);
    emit(&p, BPF_ALU | BPF_XOR | BPF_X, 0);
    emit(&p, BPF_ST, 0);
    /* The queue: mixed, the high half, modulo w. */
    land(&p, udp, false);
    if (family == 4)
        land(&p, frag, true);
    emit(&p, BPF_LD | BPF_W | BPF_MEM, 0);
    emit(&p, BPF_ALU | BPF_MUL | BPF_K, 0x9e3779b1u);
    emit(&p, BPF_ALU | BPF_RSH | BPF_K, 16);
    emit(&p, BPF_ALU | BPF_MOD | BPF_K, w);
    unsigned eq = emit(&p, BPF_JMP | BPF_JEQ | BPF_K, i);
    emit(&p, BPF_RET | BPF_K, 1);
    p.in[eq].jf = 1;
    emit(&p, BPF_RET | BPF_K, 0);
    return p.n;
}

/* The program as xt_bpf's --bytecode wants it: "N,code jt jf k,...". */
static void bytecode(int family, unsigned w, unsigned i, char *buf, size_t len)
{
    struct sd_fw_insn in[SD_FW_MAX_INSNS];
    unsigned n = sd_fw_balance_prog(family, w, i, in);
    size_t used = (size_t)snprintf(buf, len, "%u", n);
    for (unsigned k = 0; k < n && used < len; k++)
        used += (size_t)snprintf(buf + used, len - used, ",%u %u %u %u", in[k].code, in[k].jt, in[k].jf, in[k].k);
}

/* Appends one command of NULL-terminated tokens. */
static int add_rule(struct sd_fw_plan *p, const char *first, ...)
{
    va_list ap;
    const char *t = first;
    size_t used = 0;
    int n = 0;

    if (p->n >= SD_FW_MAX_RULES)
        return SD_ERANGE;
    struct sd_fw_rule *r = &p->rules[p->n];
    va_start(ap, first);
    for (; t; t = va_arg(ap, const char *)) {
        size_t len = strlen(t) + 1;
        if (n >= SD_FW_MAX_ARGS - 1 || used + len > sizeof(r->store)) {
            va_end(ap);
            return SD_ERANGE;
        }
        memcpy(r->store + used, t, len);
        r->argv[n++] = r->store + used;
        used += len;
    }
    va_end(ap);
    r->argv[n] = NULL;
    p->n++;
    return 0;
}

static bool iface_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '-' || ch == '_' || ch == '+' || ch == '@'))
            return false;
    }
    return true;
}

/* The rules of one family. */
static int plan_family(const struct sd_fw_config *c, int family, const char *tool, struct sd_fw_plan *p)
{
    const char *tab = hook_table[c->hook], *hook = hook_chain[c->hook];
    char chain[32], lb[32], qopt[24], qval[24], window[24], mark[32], settled[32];
    unsigned w = c->workers ? c->workers : 1;
    bool by_flow = w > 1 && c->balance_flow;
    int rc = 0;

    sd_fw_chain_name(c, chain, sizeof(chain));
    lb_chain_name(c, lb, sizeof(lb));
    if (w == 1) {
        snprintf(qopt, sizeof(qopt), "--queue-num");
        snprintf(qval, sizeof(qval), "%u", c->queue);
    } else {
        snprintf(qopt, sizeof(qopt), "--queue-balance");
        snprintf(qval, sizeof(qval), "%u:%u", c->queue, c->queue + w - 1);
    }
    /* Q: the target of every queueing rule; per flow, the balance chain's. */
    const char *q[5] = {"-j", "NFQUEUE", qopt, qval, "--queue-bypass"};
    if (by_flow) {
        q[1] = lb;
        q[2] = NULL;
        char prog[900], num[16];
        rc = add_rule(p, tool, "-w", "-t", tab, "-N", lb, NULL);
        for (unsigned i = 0; i < w && rc == 0; i++) {
            snprintf(num, sizeof(num), "%u", c->queue + i);
            bytecode(family, w, i, prog, sizeof(prog));
            if (i + 1 < w)
                rc = add_rule(p, tool, "-w", "-t", tab, "-A", lb, "-m", "bpf", "--bytecode", prog, "-j", "NFQUEUE",
                              "--queue-num", num, "--queue-bypass", NULL);
            else
                rc = add_rule(p, tool, "-w", "-t", tab, "-A", lb, "-j", "NFQUEUE", "--queue-num", num,
                              "--queue-bypass", NULL);
        }
    }
    snprintf(window, sizeof(window), "0:%u", c->queue_packets);
    snprintf(mark, sizeof(mark), "0x%x/0x%x", c->ct_mark, c->ct_mark);
    snprintf(settled, sizeof(settled), "0x%x/0x%x", c->settled_mark, c->settled_mark);
#define Q q[0], q[1], q[2], q[3], q[4], NULL
    rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-N", chain, NULL);
    if (by_flow && c->queue_packets == 0) /* turns tracking on, and with it the reassembly of fragments */
        rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "conntrack", "--ctstate",
                                "INVALID,UNTRACKED", Q);
    if (c->queue_packets == 0 || c->bypass != SD_BYPASS_CONNTRACK) {
        if (c->queue_packets != 0 && c->bypass == SD_BYPASS_IPSET) {
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-p", "tcp", "--syn", Q);
            char set[32];
            sd_fw_set_name(c, family, set, sizeof(set));
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "set", "--match-set", set,
                                    "src,src,dst", "-j", "RETURN", NULL);
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "set", "--match-set", set,
                                    "dst,dst,src", "-j", "RETURN", NULL);
        } else if (c->queue_packets != 0) { /* the program itself leaves bare SYNs to the queue */
            if (!c->bpf_prog)
                return SD_EINVAL;
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "bpf", "--object-pinned",
                                    c->bpf_prog, "-j", "RETURN", NULL);
        }
        rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-p", "tcp", Q);
        rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-p", "udp", Q);
    } else {
        if (c->ct_mark)
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "connmark", "--mark", mark, Q);
        if (c->settled_mark)
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "connmark", "--mark", settled, "-j",
                                    "RETURN", NULL);
        rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-m", "conntrack", "--ctstate",
                                "INVALID,UNTRACKED", Q);
        static const char *const protos[] = {"tcp", "udp"};
        for (int i = 0; i < 2; i++)
            rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-A", chain, "-p", protos[i], "-m", "connbytes",
                                    "--connbytes", window, "--connbytes-dir", "both", "--connbytes-mode", "packets", Q);
    }
#undef Q
    if (c->n_ifaces == 0)
        rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-I", hook, "1", "-j", chain, NULL);
    for (unsigned i = 0; i < c->n_ifaces; i++)
        rc = rc ? rc : add_rule(p, tool, "-w", "-t", tab, "-I", hook, "1", "-i", c->ifaces[i], "-j", chain, NULL);
    return rc;
}

int sd_fw_plan_install(const struct sd_fw_config *c, struct sd_fw_plan *p)
{
    p->n = 0;
    if (c->n_ifaces > SD_FW_MAX_IFACES || c->hook > SD_FW_PREROUTING ||
        (c->balance_flow && c->bypass != SD_BYPASS_CONNTRACK))
        return SD_EINVAL;
    for (unsigned i = 0; i < c->n_ifaces; i++) {
        if (!iface_ok(c->ifaces[i]))
            return SD_EINVAL;
    }
    if (c->bypass == SD_BYPASS_IPSET && c->queue_packets != 0) {
        char timeout[16], max[16];
        snprintf(timeout, sizeof(timeout), "%u", c->set_timeout_s);
        snprintf(max, sizeof(max), "%u", c->set_max);
        for (int f = 0; f < 2; f++) {
            char set[32];
            sd_fw_set_name(c, f ? 6 : 4, set, sizeof(set));
            int rc = add_rule(p, "ipset", "create", set, "hash:ip,port,ip", "family", f ? "inet6" : "inet",
                              "timeout", timeout, "maxelem", max, "-exist", NULL);
            if (rc < 0)
                return rc;
        }
    }
    for (int f = 0; f < 2; f++) {
        int rc = plan_family(c, f ? 6 : 4, tools[f], p);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void sd_fw_plan_print(const struct sd_fw_plan *p, FILE *out)
{
    char line[1400];

    for (unsigned i = 0; i < p->n; i++) {
        sd_subproc_format(p->rules[i].argv, line, sizeof(line));
        fprintf(out, "%s\n", line);
    }
}

int sd_fw_plan_apply(const struct sd_fw_plan *p, char *err, size_t errlen)
{
    char out[400], line[1400];

    for (unsigned i = 0; i < p->n; i++) {
        int rc = sd_subproc_run(p->rules[i].argv, out, sizeof(out));
        if (rc != 0) {
            sd_subproc_format(p->rules[i].argv, line, sizeof(line));
            snprintf(err, errlen, "'%s' failed (%d): %s", line, rc, out[0] ? out : "no output");
            return SD_EIO;
        }
    }
    return 0;
}

/* Deletes every rule of |hook| in |tab| that jumps to |chain|; returns how many. */
static int remove_jumps(const char *tool, const char *tab, const char *hook, const char *chain, char *err,
                        size_t errlen)
{
    enum { LISTING = 1 << 18 };
    char want[48], *lsave = NULL;
    int removed = 0;
    char *listing = malloc(LISTING);

    if (!listing)
        return SD_ENOMEM;
    char *ls[] = {(char *)tool, "-w", "-t", (char *)tab, "-S", (char *)hook, NULL};
    int rc = sd_subproc_run(ls, listing, LISTING);
    if (rc != 0) {
        snprintf(err, errlen, "%s -S %s failed (%d): %.200s", tool, hook, rc, listing);
        free(listing);
        return rc < 0 ? SD_EIO : 0;
    }
    snprintf(want, sizeof(want), "-j %s", chain);
    for (char *line = strtok_r(listing, "\n", &lsave); line; line = strtok_r(NULL, "\n", &lsave)) {
        size_t n = strlen(line), k = strlen(want);
        if (n < k || strcmp(line + n - k, want) != 0 || strncmp(line, "-A ", 3) != 0)
            continue;
        char *argv[SD_FW_MAX_ARGS] = {(char *)tool, "-w", "-t", (char *)tab, "-D"};
        int a = 5;
        for (char *tok = line + 3, *save = NULL; (tok = strtok_r(tok, " ", &save)) && a < SD_FW_MAX_ARGS - 1;
             tok = NULL)
            argv[a++] = tok;
        argv[a] = NULL;
        if (sd_subproc_run(argv, NULL, 0) == 0)
            removed++;
    }
    free(listing);
    return removed;
}

int sd_fw_remove(const struct sd_fw_config *c, char *err, size_t errlen)
{
    char chain[32], lb[32];
    int removed = 0;

    err[0] = '\0';
    sd_fw_chain_name(c, chain, sizeof(chain));
    lb_chain_name(c, lb, sizeof(lb));
    for (int f = 0; f < 2; f++) {
        for (int h = 0; h < 2; h++) {
            int rc = remove_jumps(tools[f], hook_table[h], hook_chain[h], chain, err, errlen);
            if (rc < 0)
                return rc;
            removed += rc;
            for (int k = 0; k < 2; k++) { /* the chain, then the balance chain it jumps to */
                char *name = k ? lb : chain;
                char *flush[] = {(char *)tools[f], "-w", "-t", (char *)hook_table[h], "-F", name, NULL};
                char *del[] = {(char *)tools[f], "-w", "-t", (char *)hook_table[h], "-X", name, NULL};
                if (sd_subproc_run(flush, NULL, 0) == 0 && sd_subproc_run(del, NULL, 0) == 0)
                    removed++;
            }
        }
    }
    if (c->bpf_prog && c->bpf_map)
        removed += sd_bpfpass_remove(c->bpf_prog, c->bpf_map);
    /* The sets, once no rule refers to them; none there (or no ipset tool) is no error. */
    for (int f = 4; f <= 6; f += 2) {
        char set[32];
        sd_fw_set_name(c, f, set, sizeof(set));
        char *destroy[] = {"ipset", "-q", "destroy", set, NULL};
        if (sd_subproc_run(destroy, NULL, 0) == 0)
            removed++;
    }
    return removed;
}
