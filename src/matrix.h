/*
 * matrix.h - `slowdown matrix`: every strategy against every chosen preset,
 * each in a lab (lab.h), several labs at once, scored against a no-censor
 * control of the same strategy.
 *
 * The score of a cell (sd_matrix_score), from the control run C and the run
 * under the censor T of one strategy:
 *
 *   broken     C did not complete (reset, timeout, error, nothing received),
 *              or the strategy could not act at all: it breaks the
 *              connection without any censor
 *   blocked    T did not complete, received nothing, or froze (nothing in
 *              the second half of the transfer)
 *   evades     T's goodput is at least evade_at (0.5) of C's
 *   throttled  T completed slower than that (ratio in the JSON)
 *
 * Goodput leaves out the first skip_ns of each transfer (a policer's burst
 * allowance).
 */
#ifndef SD_MATRIX_H
#define SD_MATRIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "evade.h"
#include "sd.h"

enum sd_outcome { SD_OUTCOME_EVADES = 0, SD_OUTCOME_THROTTLED, SD_OUTCOME_BLOCKED, SD_OUTCOME_BROKEN };

enum {
    SD_MATRIX_MAX_PRESETS = 16,
    SD_MATRIX_MAX_STRATEGIES = 64,
    SD_MATRIX_MAX_PARALLEL = 8,
};

/* One run, as the matrix keeps it. */
struct sd_matrix_run {
    bool ran;                 /* false: not run (stopped, or lab set-up failed: see note) */
    uint8_t end, stage;       /* enum sd_fetch_end, enum sd_fetch_stage */
    bool applied;
    double kbps;
    uint64_t bytes, tail_bytes;
    double secs;              /* wall time of the run */
    char note[160];
    char detail[128];
};

struct sd_matrix_strategy {
    char name[SD_EVADE_TEXT_MAX]; /* as shown: NAME[:ARGS], or the external's name */
    struct sd_evade_spec spec;    /* built-in strategies */
    const char *external;         /* NULL, or the external adapter's command */
};

struct sd_matrix_config {
    const char *presets[SD_MATRIX_MAX_PRESETS];
    unsigned n_presets;
    struct sd_matrix_strategy strategies[SD_MATRIX_MAX_STRATEGIES];
    unsigned n_strategies;
    unsigned parallel;        /* labs at once (0: 3) */
    uint64_t duration_ns;     /* transfer per run (0: 2.5 s) */
    uint64_t skip_ns;         /* left out of goodput (0: 0.5 s; set skip_set for 0) */
    bool skip_set;
    uint32_t shape_kbit;      /* lab link rate, both ways (0: 20000) */
    const char *sni;          /* the name under test (NULL: twitter.com) */
    double evade_at;          /* evades at or above this ratio (0: 0.5) */
    uint32_t idle_timeout_s;  /* the censor's timeout.action for timeout-needing strategies (0: 2) */
    FILE *progress;           /* a line per finished run, or NULL */
    int stop_fd;              /* readable: stop after the runs under way (-1: none) */
};

struct sd_matrix_cell {
    struct sd_matrix_run run;
    uint8_t outcome;          /* enum sd_outcome, valid when run.ran and the control ran */
    double ratio;
};

struct sd_matrix_result {
    bool applies[SD_MATRIX_MAX_PRESETS][SD_MATRIX_MAX_STRATEGIES]; /* the cell is run at all */
    struct sd_matrix_run control[SD_MATRIX_MAX_STRATEGIES];
    struct sd_matrix_cell *cells; /* n_presets * n_strategies, [p * n_strategies + s] */
    uint64_t elapsed_ns;
    unsigned labs;            /* labs set up */
    bool stopped;
};

/* "evades", "throttled", "blocked", "broken". */
const char *sd_outcome_name(unsigned o);

/* Scores |test| against |control| (see above); |*ratio| gets the goodput
 * ratio (0 when the control has none). */
int sd_matrix_score(const struct sd_matrix_run *control, const struct sd_matrix_run *test, double evade_at,
                    double *ratio);

/*
 * What preset |name| inspects: |*tcp| when one of its rules can fire on TCP
 * (a rule without a `udp` condition), |*quic| when it looks at QUIC
 * (inspect.quic not off). TCP strategies run against TCP presets, QUIC
 * strategies (SD_EVADE_NEED_UDP) against QUIC ones. 0, or SD_ENOENT with
 * |err| for an unknown preset.
 */
int sd_matrix_preset_kinds(const char *name, bool *tcp, bool *quic, char *err, size_t errlen);

/* The policy text the matrix adds to preset |preset| for strategy |s|
 * ("" when none): the mobile set of tw21-mobile-only gets the lab's client
 * network; strategies that need a short state timeout get timeout.action.
 * Written into |buf|. */
void sd_matrix_extra_policy(const char *preset, const struct sd_matrix_strategy *s, uint32_t idle_timeout_s,
                            char *buf, size_t len);

/*
 * Runs the matrix (root: labs). Fills |res| (cells allocated here: free
 * with sd_matrix_result_free). Returns 0 (cells that could not run say so
 * in their note), SD_EPERM (not root), SD_EINVAL (nothing to run),
 * SD_ENOMEM, with |err| set.
 */
int sd_matrix_run(const struct sd_matrix_config *cfg, struct sd_matrix_result *res, char *err, size_t errlen);

void sd_matrix_result_free(struct sd_matrix_result *res);

/* ---- output (matrix_out.c) ---- */

/* The readable table: a row per strategy, a column per preset. */
void sd_matrix_print_table(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res);

/* JSON lines: one "outcome" line per (preset, strategy) in the contract's
 * shape, with extra fields after it. */
void sd_matrix_print_json(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res);

/* An SVG picture of the matrix: coloured cells, ratios, a legend. */
void sd_matrix_write_svg(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res);

/* An HTML page: the SVG, then a table of the strategies' wire
 * descriptions and each cell's note. */
void sd_matrix_write_html(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res);

#endif
