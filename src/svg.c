/*
 * svg.c - standalone SVG plots (see svg.h).
 *
 * Layout, per panel (pixels):
 *
 *   +------------------------------------------------------------+
 *   | title                                                      |  TITLE_H
 *   | note (the verdict)                                         |
 *   |      +-------------------------------------------+ legend  |
 *   | 1e6  |  ____B______________________________      |         |
 *   | 1e3  | /   ____A____/\____/\___ ...              |         |  PLOT_H
 *   | 1e0  |/___|warm-up|_________________________      |         |
 *   |      +-------------------------------------------+         |
 *   |       0 s                                     t_max        |  AXIS_H
 *   +------------------------------------------------------------+
 *
 * The y axis is log10 because a throttled flow and its control differ by
 * three to four decades; whole decades keep the ticks readable. Values are
 * printed with %.1f, which keeps the files small and diffable.
 */
#include <math.h>
#include <string.h>

#include "detect.h"
#include "sd.h"
#include "svg.h"

enum {
    WIDTH = 960,
    LEFT = 90,
    RIGHT = 190,
    TITLE_H = 56,
    PLOT_H = 260,
    AXIS_H = 44,
    TOP = 40,
    PANEL_H = TITLE_H + PLOT_H + AXIS_H,
    MAX_WINDOWS = 1024,
};

static void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20)
                fputc(*s, f);
        }
    }
}

/* Decades spanned by every positive value of the panels: [lo, hi] as powers of 10. */
static void decades(const struct sd_svg_panel *panels, size_t n, int *lo, int *hi)
{
    double mn = INFINITY, mx = 0;

    for (size_t p = 0; p < n; p++) {
        for (size_t l = 0; l < panels[p].n_lines; l++) {
            const struct sd_svg_line *ln = &panels[p].lines[l];
            for (size_t i = 0; i < ln->n; i++) {
                if (ln->y[i] > 0) {
                    mn = fmin(mn, ln->y[i]);
                    mx = fmax(mx, ln->y[i]);
                }
            }
        }
    }
    if (mx <= 0) {
        *lo = 0;
        *hi = 3;
        return;
    }
    *lo = (int)floor(log10(mn));
    *hi = (int)ceil(log10(mx));
    if (*lo < 0)
        *lo = 0;
    if (*hi <= *lo)
        *hi = *lo + 1;
}

static double ypix(double v, int lo, int hi, double top)
{
    double l = v > 0 ? log10(v) : (double)lo;
    l = fmax((double)lo, fmin((double)hi, l));
    return top + PLOT_H * (1.0 - (l - lo) / (double)(hi - lo));
}

static double xpix(double t, double t_max)
{
    return LEFT + (WIDTH - LEFT - RIGHT) * (t_max > 0 ? fmin(fmax(t / t_max, 0), 1) : 0);
}

static void axes(FILE *f, double top, int lo, int hi, double t_max)
{
    double x0 = LEFT, x1 = WIDTH - RIGHT;

    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n", LEFT, top,
            WIDTH - LEFT - RIGHT, PLOT_H);
    for (int d = lo; d <= hi; d++) {
        double y = ypix(pow(10, d), lo, hi, top);
        static const char *const units[] = {"kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
        int u = SD_MIN(d / 3, 3);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", x0, y, x1, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%.0f %s</text>\n", x0 - 6,
                y + 4, pow(10, d - 3 * u), units[u]);
    }
    double step = t_max > 30 ? 10 : t_max > 12 ? 2 : 1;
    for (int i = 0; i * step <= t_max + 1e-9; i++) {
        double t = i * step;
        double x = xpix(t, t_max);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n", x, top + PLOT_H, x,
                top + PLOT_H + 5);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%g</text>\n", x,
                top + PLOT_H + 19, t);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">time (s)</text>\n",
            (x0 + x1) / 2, top + PLOT_H + 36);
}

static void panel(FILE *f, const struct sd_svg_panel *p, double y0, int lo, int hi, double t_max)
{
    double top = y0 + TITLE_H;

    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"15\" font-weight=\"bold\">", LEFT, y0 + 20);
    esc(f, p->title);
    fprintf(f, "</text>\n");
    if (p->note) {
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\">", LEFT, y0 + 40);
        esc(f, p->note);
        fprintf(f, "</text>\n");
    }
    if (p->shade_to > 0)
        fprintf(f,
                "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"#eee\"/>\n"
                "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#888\">warm-up</text>\n",
                LEFT, top, xpix(p->shade_to, t_max) - LEFT, PLOT_H, (double)LEFT + 4, top + 14);
    axes(f, top, lo, hi, t_max);
    for (size_t l = 0; l < p->n_lines; l++) {
        const struct sd_svg_line *ln = &p->lines[l];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", ln->color);
        for (size_t i = 0; i < ln->n; i++)
            fprintf(f, "%s%.1f,%.1f", i ? " " : "", xpix(ln->t0 + ((double)i + 0.5) * ln->dt, t_max),
                    ypix(ln->y[i], lo, hi, top));
        fprintf(f, "\"/>\n");
        double ly = top + 16 + 20 * (double)l;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                WIDTH - RIGHT + 12, ly, WIDTH - RIGHT + 36, ly, ln->color);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\">", WIDTH - RIGHT + 42, ly + 4);
        esc(f, ln->label);
        fprintf(f, "</text>\n");
    }
}

int sd_svg_plot(FILE *f, const char *title, const struct sd_svg_panel *panels, size_t n, double t_max)
{
    int lo, hi;

    decades(panels, n, &lo, &hi);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            WIDTH, TOP + PANEL_H * (int)n, WIDTH, TOP + PANEL_H * (int)n);
    fprintf(f, "<text x=\"%d\" y=\"26\" font-size=\"17\">", LEFT);
    esc(f, title);
    fprintf(f, "</text>\n");
    for (size_t p = 0; p < n; p++)
        panel(f, &panels[p], TOP + (double)p * PANEL_H, lo, hi, t_max);
    fprintf(f, "</svg>\n");
    return ferror(f) ? SD_EIO : 0;
}

/* ---- the detector's figure ---- */

struct dir_plot {
    double y[SD_DETECT_ROLES][MAX_WINDOWS];
    struct sd_svg_line lines[SD_DETECT_ROLES];
    char labels[SD_DETECT_ROLES][300];
    char title[64], note[200];
};

/* Windows of |per| bins of one flow into y; returns how many. */
static size_t windows(const struct sd_detect_flow *f, uint64_t per, uint64_t bin_ns, double *y)
{
    size_t k = 0;

    for (uint64_t i = 0; i + per <= f->n && k < MAX_WINDOWS; i += per) {
        uint64_t sum = 0;
        for (uint64_t j = i; j < i + per; j++)
            sum += f->bins[j];
        y[k++] = (double)sum * 8.0 / ((double)(per * bin_ns) / 1e9) / 1000.0;
    }
    return k;
}

static void dir_lines(const struct sd_detect_result *res, const struct sd_detect_dir *d, uint64_t t_first,
                      struct dir_plot *dp, struct sd_svg_panel *p)
{
    static const char *const colors[SD_DETECT_ROLES] = {"#d62728", "#1f77b4", "#2ca02c"};
    uint64_t per = SD_MAX((uint64_t)SD_STATS_KS_WINDOW_MS * 1000000u / res->bin_ns, (uint64_t)1);
    size_t n = 0;

    while (res->seconds_ns / res->bin_ns / per > MAX_WINDOWS)
        per *= 2;
    for (int k = 0; k < SD_DETECT_ROLES; k++) {
        const struct sd_detect_flow *f = &d->f[k];
        if (!f->used)
            continue;
        struct sd_svg_line *ln = &dp->lines[n];
        if (k == SD_DETECT_C)
            snprintf(dp->labels[n], sizeof(dp->labels[n]), "C inverted");
        else
            snprintf(dp->labels[n], sizeof(dp->labels[n]), "%s %.40s", k == SD_DETECT_A ? "A" : "B",
                     k == SD_DETECT_A ? res->name : res->control);
        ln->label = dp->labels[n];
        ln->color = colors[k];
        ln->y = dp->y[k];
        ln->n = windows(f, per, res->bin_ns, dp->y[k]);
        ln->dt = (double)(per * res->bin_ns) / 1e9;
        ln->t0 = f->r.transfer_start_ns > t_first ? (double)(f->r.transfer_start_ns - t_first) / 1e9 : 0;
        n++;
    }
    snprintf(dp->title, sizeof(dp->title), "%s", d->dir == SD_FETCH_UP ? "upload" : "download");
    const char *kind = sd_detect_kind_name(d->kind);
    if (d->verdict == SD_VERDICT_THROTTLED)
        snprintf(dp->note, sizeof(dp->note), "throttled (%s), rate ~%.0f kbit/s; A/B = %.4f",
                 kind ? kind : "?", d->rate_estimate_kbps, d->ratio);
    else
        snprintf(dp->note, sizeof(dp->note), "%s%s%s%s", sd_detect_verdict_name(d->verdict), kind ? " (" : "",
                 kind ? kind : "", kind ? ")" : "");
    p->title = dp->title;
    p->note = dp->note;
    p->lines = dp->lines;
    p->n_lines = n;
    p->shade_to = (double)res->warmup_ns / 1e9;
}

int sd_svg_detect(FILE *f, const struct sd_detect_result *res)
{
    struct dir_plot dp[2];
    struct sd_svg_panel panels[2];
    uint64_t t_first = UINT64_MAX;
    size_t n = 0;
    char title[600];

    for (int dir = 0; dir < 2; dir++) {
        for (int k = 0; k < SD_DETECT_ROLES && res->d[dir].measured; k++) {
            uint64_t t = res->d[dir].f[k].r.transfer_start_ns;
            if (t && t < t_first)
                t_first = t;
        }
    }
    for (int dir = 0; dir < 2; dir++) {
        if (res->d[dir].measured) {
            dir_lines(res, &res->d[dir], t_first, &dp[n], &panels[n]);
            n++;
        }
    }
    snprintf(title, sizeof(title), "slowdown detect: %.250s (control %.250s), goodput per %d ms", res->name,
             res->control, SD_STATS_KS_WINDOW_MS);
    return sd_svg_plot(f, title, panels, n, (double)res->seconds_ns / 1e9 + 0.5);
}
