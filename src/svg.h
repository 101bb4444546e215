/*
 * svg.h - plots as standalone SVG: goodput over time on a logarithmic axis,
 * one panel per direction, one line per flow (the figure of XUE21: the
 * original replay flat at ~130 kbit/s, the inverted one at line rate).
 *
 * Writing goes to a FILE the caller opened; nothing is allocated.
 */
#ifndef SD_SVG_H
#define SD_SVG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct sd_detect_result;

struct sd_svg_line {
    const char *label;   /* legend text */
    const char *color;   /* SVG color, e.g. "#d62728" */
    const double *y;     /* values (kbit/s); <= 0 is drawn on the axis floor */
    size_t n;
    double t0, dt;       /* x of y[i] is t0 + (i + 0.5) dt seconds (the middle of its window) */
};

struct sd_svg_panel {
    const char *title;
    const struct sd_svg_line *lines;
    size_t n_lines;
    double shade_to;     /* shade [0, shade_to] s (the warm-up); 0: none */
    const char *note;    /* a line under the title (the verdict), or NULL */
};

/*
 * Writes an SVG document of |n| panels stacked vertically, sharing the time
 * axis [0, t_max] seconds, with a log10 goodput axis chosen to span every
 * positive value (whole decades, at least 1 kbit/s). Text is escaped.
 * Returns 0, or SD_EIO when writing failed.
 */
int sd_svg_plot(FILE *f, const char *title, const struct sd_svg_panel *panels, size_t n, double t_max);

/*
 * Plots a detector result: one panel per measured direction, lines A, B and
 * C in goodput per 250 ms, aligned on the moment each transfer started, the
 * warm-up shaded, the verdict under the panel title. Returns 0 or SD_EIO.
 */
int sd_svg_detect(FILE *f, const struct sd_detect_result *res);

#endif
