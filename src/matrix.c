/*
 * matrix.c - run strategies x presets in labs, in parallel, and score them
 * (see matrix.h).
 *
 * Work is a list of jobs: one no-censor control per strategy, then one run
 * per (preset, strategy). A job needs a lab of a given kind -- its key: the
 * preset (or none, for controls) and the policy text the matrix adds to it
 * (sd_matrix_extra_policy). W worker threads pull jobs from the list; a
 * worker keeps its lab while jobs of the same key remain, prefers keys no
 * other worker holds, and otherwise tears its lab down and sets up the next
 * one. So a preset's strategies are spread over the workers that reach it
 * first, and the number of lab set-ups stays near presets + workers.
 *
 * A worker is a thread that, once its lab is up, moves itself into the lab's
 * client namespace (setns is per thread) and runs the strategy there:
 * sockets, the forging queue's iptables rule and external commands all land
 * in that namespace. A proxy for the proxy strategies runs on a thread in
 * the lab's server namespace (evade_proxy.h).
 *
 * Every lab runs with:
 *   --shape-kbit (20 Mbit/s)   both directions shaped, so goodput depends on
 *                              the censor, not on how busy the machine is,
 *                              and 3 labs cost little CPU;
 *   --run-arg --queue-packets 0  every packet goes to the censor: no
 *                              connbytes rule, hence no conntrack in the
 *                              censor's namespace, whose defragmentation
 *                              would otherwise reassemble IP fragments
 *                              before the censor sees them (ipfrag).
 * Policy additions are written to /run/slowdown/matrix-PID/ and removed at
 * the end.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evade_proxy.h"
#include "lab.h"
#include "matrix.h"
#include "mono.h"
#include "policy.h"

enum { PROXY_PORT = 8080, MAX_BINS = 600, KEY_MAX = 320 };

struct job {
    int preset;               /* -1: the control */
    unsigned strategy;
    char key[KEY_MAX];
    char extra[256];          /* policy text added to the preset */
    bool taken;
};

struct shared {
    const struct sd_matrix_config *cfg;
    struct sd_matrix_result *res;
    struct job *jobs;
    unsigned n_jobs, finished;
    pthread_mutex_t mu;
    atomic_bool stop;
    char dir[96];
    char holding[SD_MATRIX_MAX_PARALLEL][KEY_MAX]; /* each worker's lab key */
    uint64_t t0;
    unsigned labs;
};

struct worker {
    struct shared *sh;
    unsigned idx, labs_made;
    pthread_t th;
    char lab[SD_LAB_ID_MAX];
    bool lab_up;
    int prev_ns;
    struct sd_proxy_thread proxy, udp;
    uint64_t bins[MAX_BINS];
};

const char *sd_outcome_name(unsigned o)
{
    static const char *const names[] = {"evades", "throttled", "blocked", "broken"};
    return o < SD_COUNTOF(names) ? names[o] : "unknown";
}

int sd_matrix_score(const struct sd_matrix_run *c, const struct sd_matrix_run *t, double evade_at, double *ratio)
{
    *ratio = c->kbps > 0 ? t->kbps / c->kbps : 0.0;
    if (!c->ran || c->end != SD_FETCH_DONE || c->bytes == 0 || !c->applied)
        return SD_OUTCOME_BROKEN;
    if (!t->applied && t->ran && t->end == SD_FETCH_DONE)
        return SD_OUTCOME_BROKEN; /* the strategy could not act under the censor: no verdict on it */
    if (!t->ran || t->end != SD_FETCH_DONE || t->bytes == 0 || t->tail_bytes == 0)
        return SD_OUTCOME_BLOCKED;
    return *ratio >= evade_at ? SD_OUTCOME_EVADES : SD_OUTCOME_THROTTLED;
}

int sd_matrix_preset_kinds(const char *name, bool *tcp, bool *quic, char *err, size_t errlen)
{
    struct sd_policy_builder *b = sd_policy_builder_new();
    struct sd_policy_error pe;
    struct sd_policy *pol = NULL;

    *tcp = *quic = false;
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return SD_ENOMEM;
    }
    if (sd_policy_builder_preset(b, name, &pe) == 0)
        pol = sd_policy_builder_finish(b, &pe);
    sd_policy_builder_free(b);
    if (!pol) {
        snprintf(err, errlen, "no preset '%s' (slowdown presets)", name);
        return SD_ENOENT;
    }
    *quic = pol->inspect.quic_mode != SD_QUIC_OFF;
    for (unsigned i = 0; i < pol->n_rules && !*tcp; i++) {
        bool udp_only = false;
        for (unsigned c = 0; c < pol->rules[i].n_conds; c++)
            udp_only |= pol->rules[i].conds[c].kind == SD_C_UDP && !pol->rules[i].conds[c].negate;
        *tcp = !udp_only;
    }
    sd_policy_free(pol);
    return 0;
}

void sd_matrix_extra_policy(const char *preset, const struct sd_matrix_strategy *s, uint32_t idle_timeout_s,
                            char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = '\0';
    if (preset && !strcmp(preset, "tw21-mobile-only"))
        n += (size_t)snprintf(buf + n, len - n, "ips mobile 192.0.2.0/24\n"); /* the lab's client is mobile */
    if (n < len && !s->external && (s->spec.def->needs & SD_EVADE_NEED_TIMEOUT))
        snprintf(buf + n, len - n, "set timeout.action %u\n", idle_timeout_s ? idle_timeout_s : 2);
}

/* ---- jobs ---- */

static int make_jobs(struct shared *sh)
{
    const struct sd_matrix_config *cfg = sh->cfg;
    unsigned n = cfg->n_strategies * (cfg->n_presets + 1), k = 0;

    sh->jobs = calloc(n, sizeof(*sh->jobs));
    if (!sh->jobs)
        return SD_ENOMEM;
    for (int p = -1; p < (int)cfg->n_presets; p++) {
        for (unsigned s = 0; s < cfg->n_strategies; s++) {
            bool used = false;
            for (unsigned q = 0; q < cfg->n_presets; q++)
                used |= sh->res->applies[q][s];
            if (p < 0 ? !used : !sh->res->applies[p][s])
                continue;
            struct job *j = &sh->jobs[k++];
            j->preset = p;
            j->strategy = s;
            if (p >= 0)
                sd_matrix_extra_policy(cfg->presets[p], &cfg->strategies[s], cfg->idle_timeout_s, j->extra,
                                       sizeof(j->extra));
            snprintf(j->key, sizeof(j->key), "%s|%s", p < 0 ? "-" : cfg->presets[p], j->extra);
        }
    }
    sh->n_jobs = k;
    return 0;
}

static bool held_by_other(const struct shared *sh, unsigned me, const char *key)
{
    for (unsigned w = 0; w < SD_MATRIX_MAX_PARALLEL; w++)
        if (w != me && !strcmp(sh->holding[w], key))
            return true;
    return false;
}

/* The next job for worker |me|: its own lab's kind first, then a kind no
 * one holds, then anything. NULL when all are taken. */
static struct job *pick(struct shared *sh, unsigned me)
{
    struct job *free_key = NULL, *any = NULL;

    pthread_mutex_lock(&sh->mu);
    for (unsigned i = 0; i < sh->n_jobs; i++) {
        struct job *j = &sh->jobs[i];
        if (j->taken)
            continue;
        if (!strcmp(j->key, sh->holding[me])) {
            free_key = any = j;
            break;
        }
        if (!free_key && !held_by_other(sh, me, j->key))
            free_key = j;
        if (!any)
            any = j;
    }
    struct job *j = free_key ? free_key : any;
    if (j) {
        j->taken = true;
        snprintf(sh->holding[me], sizeof(sh->holding[me]), "%s", j->key);
    }
    pthread_mutex_unlock(&sh->mu);
    return j;
}

/* ---- labs ---- */

static void lab_teardown(struct worker *w)
{
    char err[300];

    sd_proxy_thread_stop(&w->proxy);
    sd_proxy_thread_stop(&w->udp);
    if (w->prev_ns >= 0) {
        sd_lab_leave(w->prev_ns);
        w->prev_ns = -1;
    }
    if (w->lab_up && sd_lab_down(w->lab, err, sizeof(err)) < 0 && w->sh->cfg->progress)
        fprintf(w->sh->cfg->progress, "matrix: lab %s: %s\n", w->lab, err);
    w->lab_up = false;
}

static int write_policy(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return SD_EIO;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : SD_EIO;
}

/* Sets up a lab for |j|'s key and moves the worker into its client
 * namespace. 0, or a negative SD_E* with |err|. */
static int lab_for(struct worker *w, const struct job *j, char *err, size_t errlen)
{
    const struct sd_matrix_config *cfg = w->sh->cfg;
    static char *const run_args[] = {"--queue-packets", "0", NULL};
    struct sd_lab_config lc;
    char policy[160];
    int rc;

    lab_teardown(w);
    memset(&lc, 0, sizeof(lc));
    snprintf(lc.id, sizeof(lc.id), "mx%04x%x%02x", (unsigned)getpid() & 0xffff, w->idx & 0xf,
             w->labs_made++ & 0xff);
    lc.shape_kbit = cfg->shape_kbit ? cfg->shape_kbit : 20000;
    lc.run_args = run_args;
    if (j->preset < 0) {
        lc.no_censor = true;
        lc.preset = "observe"; /* not run: no censor */
    } else {
        lc.preset = cfg->presets[j->preset];
    }
    if (j->extra[0]) {
        snprintf(policy, sizeof(policy), "%s/%s.pol", w->sh->dir, lc.id);
        if (write_policy(policy, j->extra) < 0) {
            snprintf(err, errlen, "cannot write %s", policy);
            return SD_EIO;
        }
        lc.policy = policy;
    }
    rc = sd_lab_up(&lc, w->lab, err, errlen);
    if (j->extra[0])
        unlink(policy); /* the censor has read it */
    if (rc < 0)
        return rc;
    w->lab_up = true;
    pthread_mutex_lock(&w->sh->mu);
    w->sh->labs++;
    pthread_mutex_unlock(&w->sh->mu);
    rc = sd_proxy_thread_start(&w->proxy, w->lab, SD_LAB_SERVER4, PROXY_PORT);
    if (rc == 0)
        rc = sd_quicbulk_thread_start(&w->udp, w->lab, SD_LAB_SERVER4, SD_LAB_TLS_PORT);
    if (rc == 0)
        rc = sd_lab_enter(w->lab, SD_LAB_CLIENT, &w->prev_ns);
    if (rc < 0) {
        snprintf(err, errlen, "lab %s: %s", w->lab,
                 w->proxy.err[0] ? w->proxy.err : w->udp.err[0] ? w->udp.err : "cannot enter its client");
        lab_teardown(w);
    }
    return rc;
}

/* ---- runs ---- */

static void keep(struct sd_matrix_run *m, const struct sd_evade_result *r, int rc, uint64_t t0)
{
    memset(m, 0, sizeof(*m));
    m->ran = true;
    m->end = rc < 0 ? SD_FETCH_ERROR : r->f.end;
    m->stage = r->f.stage;
    m->applied = rc == 0 && r->applied;
    m->kbps = rc < 0 ? 0 : r->kbps;
    m->bytes = rc < 0 ? 0 : r->f.bytes;
    m->tail_bytes = rc < 0 ? 0 : r->tail_bytes;
    m->secs = (double)(sd_mono_ns() - t0) / 1e9;
    snprintf(m->note, sizeof(m->note), "%s", r->note);
    snprintf(m->detail, sizeof(m->detail), "%s", r->f.detail);
}

static void run_job(struct worker *w, const struct job *j)
{
    const struct sd_matrix_config *cfg = w->sh->cfg;
    const struct sd_matrix_strategy *s = &cfg->strategies[j->strategy];
    struct sd_evade_target t;
    struct sd_evade_result r;
    uint64_t t0 = sd_mono_ns();
    int rc;

    memset(&t, 0, sizeof(t));
    t.addr = SD_LAB_SERVER4;
    t.port = SD_LAB_TLS_PORT;
    t.sni = cfg->sni ? cfg->sni : "twitter.com";
    t.proxy_addr = SD_LAB_SERVER4;
    t.proxy_port = PROXY_PORT;
    t.duration_ns = cfg->duration_ns ? cfg->duration_ns : 2500ull * SD_NS_PER_MS;
    t.skip_ns = cfg->skip_set ? cfg->skip_ns : 500ull * SD_NS_PER_MS;
    t.connect_timeout_ns = 3ull * SD_NS_PER_S;
    t.handshake_timeout_ns = 5ull * SD_NS_PER_S;
    t.idle_timeout_ns = t.duration_ns + SD_NS_PER_S; /* a stall ends at the duration: the tail says freeze */
    t.queue = (uint16_t)(3000 + w->idx);
    t.bins = w->bins;
    t.max_bins = MAX_BINS;
    for (int tries = 0; tries < 2; tries++) {
        rc = s->external ? sd_evade_run_external(s->external, &t, &r) : sd_evade_run(&s->spec, &t, &r);
        if (s->external || (rc == 0 && r.applied))
            break; /* a strategy that could not act gets a second chance */
    }
    struct sd_matrix_run *m = j->preset < 0
                                  ? &w->sh->res->control[j->strategy]
                                  : &w->sh->res->cells[(unsigned)j->preset * cfg->n_strategies + j->strategy].run;
    keep(m, &r, rc, t0);
}

static void progress(struct worker *w, const struct job *j)
{
    const struct sd_matrix_config *cfg = w->sh->cfg;
    const struct sd_matrix_run *m = j->preset < 0
                                        ? &w->sh->res->control[j->strategy]
                                        : &w->sh->res->cells[(unsigned)j->preset * cfg->n_strategies + j->strategy].run;
    unsigned k;

    pthread_mutex_lock(&w->sh->mu);
    k = ++w->sh->finished;
    pthread_mutex_unlock(&w->sh->mu);
    if (!cfg->progress)
        return;
    fprintf(cfg->progress, "[%3u/%u %5.1fs] %-16s %-18s %s %.1f kbit/s%s%s\n", k, w->sh->n_jobs,
            (double)(sd_mono_ns() - w->sh->t0) / 1e9, j->preset < 0 ? "(no censor)" : cfg->presets[j->preset],
            cfg->strategies[j->strategy].name, m->ran ? sd_fetch_end_name(m->end) : "not run", m->kbps,
            m->applied ? "" : " (not applied)", m->ran ? "" : m->note);
    fflush(cfg->progress);
}

static bool stopping(struct shared *sh)
{
    const struct sd_matrix_config *cfg = sh->cfg;
    if (cfg->stop_fd >= 0) {
        struct pollfd p = {cfg->stop_fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            atomic_store(&sh->stop, true);
    }
    return atomic_load(&sh->stop);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *sh = w->sh;
    char lab_key[KEY_MAX] = "", err[400];
    struct job *j;

    while (!stopping(sh) && (j = pick(sh, w->idx)) != NULL) {
        if (strcmp(j->key, lab_key) != 0 || !w->lab_up) {
            lab_key[0] = '\0';
            if (lab_for(w, j, err, sizeof(err)) < 0) {
                struct sd_matrix_run *m = j->preset < 0 ? &sh->res->control[j->strategy]
                                                        : &sh->res->cells[(unsigned)j->preset *
                                                                              sh->cfg->n_strategies + j->strategy].run;
                snprintf(m->note, sizeof(m->note), "no lab: %.140s", err);
                progress(w, j);
                continue;
            }
            snprintf(lab_key, sizeof(lab_key), "%s", j->key);
        }
        run_job(w, j);
        progress(w, j);
    }
    lab_teardown(w);
    pthread_mutex_lock(&sh->mu);
    sh->holding[w->idx][0] = '\0';
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

/* ---- the whole matrix ---- */

static void score_all(const struct sd_matrix_config *cfg, struct sd_matrix_result *res)
{
    double at = cfg->evade_at > 0 ? cfg->evade_at : 0.5;

    for (unsigned p = 0; p < cfg->n_presets; p++) {
        for (unsigned s = 0; s < cfg->n_strategies; s++) {
            struct sd_matrix_cell *c = &res->cells[p * cfg->n_strategies + s];
            if (!res->applies[p][s])
                continue;
            c->outcome = (uint8_t)sd_matrix_score(&res->control[s], &c->run, at, &c->ratio);
        }
    }
}

int sd_matrix_run(const struct sd_matrix_config *cfg, struct sd_matrix_result *res, char *err, size_t errlen)
{
    struct shared sh;
    struct worker *w;
    unsigned nw = cfg->parallel ? SD_MIN(cfg->parallel, (unsigned)SD_MATRIX_MAX_PARALLEL) : 3;
    int rc;

    memset(res, 0, sizeof(*res));
    if (geteuid() != 0) {
        snprintf(err, errlen, "the matrix needs root (network namespaces)");
        return SD_EPERM;
    }
    if (!cfg->n_presets || !cfg->n_strategies) {
        snprintf(err, errlen, "nothing to run");
        return SD_EINVAL;
    }
    for (unsigned p = 0; p < cfg->n_presets; p++) {
        bool tcp, quic;
        rc = sd_matrix_preset_kinds(cfg->presets[p], &tcp, &quic, err, errlen);
        if (rc < 0)
            return rc;
        for (unsigned s = 0; s < cfg->n_strategies; s++) {
            const struct sd_matrix_strategy *st = &cfg->strategies[s];
            bool udp = !st->external && (st->spec.def->needs & SD_EVADE_NEED_UDP);
            res->applies[p][s] = udp ? quic : tcp;
        }
    }
    memset(&sh, 0, sizeof(sh));
    sh.cfg = cfg;
    sh.res = res;
    sh.t0 = sd_mono_ns();
    pthread_mutex_init(&sh.mu, NULL);
    res->cells = calloc((size_t)cfg->n_presets * cfg->n_strategies, sizeof(*res->cells));
    w = calloc(nw, sizeof(*w));
    if (!res->cells || !w || make_jobs(&sh) < 0) {
        snprintf(err, errlen, "out of memory");
        rc = SD_ENOMEM;
        goto out;
    }
    snprintf(sh.dir, sizeof(sh.dir), "/run/slowdown/matrix-%d", (int)getpid());
    mkdir("/run/slowdown", 0755); /* may exist; the next mkdir says if it cannot */
    if (mkdir(sh.dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", sh.dir, strerror(errno));
        rc = SD_EIO;
        goto out;
    }
    unsigned started = 0;
    for (unsigned i = 0; i < nw; i++) {
        w[i].sh = &sh;
        w[i].idx = i;
        w[i].prev_ns = -1;
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0)
            break;
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(w[i].th, NULL);
    rmdir(sh.dir);
    res->stopped = atomic_load(&sh.stop);
    res->labs = sh.labs;
    res->elapsed_ns = sd_mono_ns() - sh.t0;
    score_all(cfg, res);
    rc = started ? 0 : SD_EIO;
    if (!started)
        snprintf(err, errlen, "cannot start worker threads");
out:
    free(sh.jobs);
    free(w);
    pthread_mutex_destroy(&sh.mu);
    if (rc < 0)
        sd_matrix_result_free(res);
    return rc;
}

void sd_matrix_result_free(struct sd_matrix_result *res)
{
    free(res->cells);
    res->cells = NULL;
}
