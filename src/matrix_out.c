/*
 * matrix_out.c - the matrix as a readable table, as JSON lines (the
 * contract of spec interface.md), and as a picture: SVG cells coloured by
 * outcome, alone or inside an HTML page with the strategies' descriptions.
 *
 * Cells that did not run (the matrix was stopped, or a lab could not be set
 * up) are shown as "-" and left out of the JSON: no line is better than a
 * made-up outcome.
 */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "matrix.h"

enum { CELL_W = 124, CELL_H = 24, NAME_W = 150, CTRL_W = 96, HEAD_H = 44, PAD = 10 };

static const char *const colours[] = {"#2e9e44", "#f0a020", "#d03030", "#8a8a8a"};

static const struct sd_matrix_cell *cell(const struct sd_matrix_config *cfg, const struct sd_matrix_result *res,
                                         unsigned p, unsigned s)
{
    return &res->cells[p * cfg->n_strategies + s];
}

static bool shown(const struct sd_matrix_result *res, const struct sd_matrix_cell *c, unsigned s)
{
    return c->run.ran && res->control[s].ran;
}

/* "evades 0.98", "throttled .005", "blocked", "broken". */
static void cell_text(const struct sd_matrix_cell *c, char *buf, size_t len)
{
    if (c->outcome == SD_OUTCOME_EVADES)
        snprintf(buf, len, "evades %.2f", c->ratio);
    else if (c->outcome == SD_OUTCOME_THROTTLED)
        snprintf(buf, len, "throttled %.3f", c->ratio < 1 ? c->ratio : 0.999);
    else
        snprintf(buf, len, "%s", sd_outcome_name(c->outcome));
    if (c->outcome == SD_OUTCOME_THROTTLED && buf[10] == '0')
        memmove(buf + 10, buf + 11, strlen(buf + 10)); /* ".005": fits the column */
}

static void rate_text(const struct sd_matrix_run *r, char *buf, size_t len)
{
    if (!r->ran)
        snprintf(buf, len, "-");
    else if (r->end != SD_FETCH_DONE || !r->applied)
        snprintf(buf, len, "FAILED");
    else if (r->kbps >= 1000)
        snprintf(buf, len, "%.1f Mb/s", r->kbps / 1000);
    else
        snprintf(buf, len, "%.0f kb/s", r->kbps);
}

void sd_matrix_print_table(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res)
{
    size_t nw = 8;
    char buf[64];

    for (unsigned s = 0; s < cfg->n_strategies; s++)
        nw = SD_MAX(nw, strlen(cfg->strategies[s].name));
    fprintf(f, "%-*s  %-11s", (int)nw, "strategy", "control");
    for (unsigned p = 0; p < cfg->n_presets; p++)
        fprintf(f, "  %-*s", (int)SD_MAX(14, strlen(cfg->presets[p])), cfg->presets[p]);
    fputc('\n', f);
    for (unsigned s = 0; s < cfg->n_strategies; s++) {
        rate_text(&res->control[s], buf, sizeof(buf));
        fprintf(f, "%-*s  %-11s", (int)nw, cfg->strategies[s].name, buf);
        for (unsigned p = 0; p < cfg->n_presets; p++) {
            const struct sd_matrix_cell *c = cell(cfg, res, p, s);
            if (shown(res, c, s))
                cell_text(c, buf, sizeof(buf));
            else
                snprintf(buf, sizeof(buf), "-");
            fprintf(f, "  %-*s", (int)SD_MAX(14, strlen(cfg->presets[p])), buf);
        }
        fputc('\n', f);
    }
    unsigned runs = 0;
    for (unsigned s = 0; s < cfg->n_strategies; s++) {
        unsigned k = 0;
        for (unsigned p = 0; p < cfg->n_presets; p++)
            k += res->applies[p][s];
        runs += k ? k + 1 : 0; /* and the control */
    }
    fprintf(f, "\n%u strategies x %u presets: %u runs with the controls in %.1f s, %u labs set up, %.1f s of "
               "transfer each; evades = goodput >= %.2f of the no-censor control; - = not applicable%s\n",
            cfg->n_strategies, cfg->n_presets, runs,
            (double)res->elapsed_ns / 1e9, res->labs,
            (double)(cfg->duration_ns ? cfg->duration_ns : 2500000000ull) / 1e9,
            cfg->evade_at > 0 ? cfg->evade_at : 0.5, res->stopped ? " (STOPPED: some cells did not run)" : "");
}

void sd_matrix_print_json(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res)
{
    static const char *const stages[] = {"connect", "handshake", "transfer"};

    for (unsigned p = 0; p < cfg->n_presets; p++) {
        for (unsigned s = 0; s < cfg->n_strategies; s++) {
            const struct sd_matrix_cell *c = cell(cfg, res, p, s);
            const struct sd_matrix_run *ctl = &res->control[s];
            if (!shown(res, c, s))
                continue;
            fprintf(f, "{\"type\":\"outcome\",\"preset\":");
            sd_json_str(f, cfg->presets[p]);
            fprintf(f, ",\"strategy\":");
            sd_json_str(f, cfg->strategies[s].name);
            fprintf(f, ",\"outcome\":\"%s\",\"goodput_ratio\":%.4f,\"kbps\":%.1f,\"control_kbps\":%.1f,"
                       "\"end\":\"%s\",\"stage\":\"%s\",\"control_end\":\"%s\",\"applied\":%s,\"retried\":%s,"
                    "\"note\":",
                    sd_outcome_name(c->outcome), c->ratio, c->run.kbps, ctl->kbps, sd_fetch_end_name(c->run.end),
                    stages[c->run.stage % 3], sd_fetch_end_name(ctl->end), c->run.applied ? "true" : "false",
                    c->run.retried ? "true" : "false");
            sd_json_str(f, c->run.note);
            fprintf(f, "}\n");
        }
    }
}

static void xml(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void svg_text(FILE *f, int x, int y, const char *anchor, const char *weight, const char *fill,
                     const char *text)
{
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\" font-weight=\"%s\" fill=\"%s\">", x, y, anchor, weight,
            fill);
    xml(f, text);
    fputs("</text>\n", f);
}

static void svg_cell(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res, unsigned p,
                     unsigned s, int x, int y)
{
    const struct sd_matrix_cell *c = cell(cfg, res, p, s);
    char buf[64];

    if (!shown(res, c, s)) {
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#eeeeee\"/>\n", x, y, CELL_W - 2,
                CELL_H - 2);
        svg_text(f, x + CELL_W / 2, y + 16, "middle", "normal", "#555", "-");
        return;
    }
    cell_text(c, buf, sizeof(buf));
    fputs("<g><title>", f);
    xml(f, cfg->presets[p]);
    fputs(" x ", f);
    xml(f, cfg->strategies[s].name);
    fprintf(f, ": %.1f kbit/s vs %.1f (ratio %.4f), %s. ", c->run.kbps, res->control[s].kbps, c->ratio,
            sd_fetch_end_name(c->run.end));
    xml(f, c->run.note);
    fprintf(f, "</title><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"3\" fill=\"%s\"/>\n", x, y,
            CELL_W - 2, CELL_H - 2, colours[c->outcome % 4]);
    svg_text(f, x + CELL_W / 2 - 1, y + 16, "middle", "bold", "#ffffff", buf);
    fputs("</g>\n", f);
}

void sd_matrix_write_svg(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res)
{
    int w = PAD * 2 + NAME_W + CTRL_W + (int)cfg->n_presets * CELL_W;
    int h = PAD * 2 + HEAD_H + (int)cfg->n_strategies * CELL_H + 60;
    char buf[64];

    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n",
            w, h, w, h);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    svg_text(f, PAD, PAD + 14, "start", "bold", "#000", "slowdown matrix: strategy x censor preset");
    int y0 = PAD + HEAD_H, x0 = PAD + NAME_W + CTRL_W;
    svg_text(f, PAD + NAME_W, y0 - 8, "start", "bold", "#000", "control");
    for (unsigned p = 0; p < cfg->n_presets; p++)
        svg_text(f, x0 + (int)p * CELL_W + CELL_W / 2, y0 - 8, "middle", "bold", "#000", cfg->presets[p]);
    for (unsigned s = 0; s < cfg->n_strategies; s++) {
        int y = y0 + (int)s * CELL_H;
        svg_text(f, PAD, y + 16, "start", "normal", "#000", cfg->strategies[s].name);
        rate_text(&res->control[s], buf, sizeof(buf));
        svg_text(f, PAD + NAME_W, y + 16, "start", "normal", strcmp(buf, "FAILED") ? "#333" : "#d03030", buf);
        for (unsigned p = 0; p < cfg->n_presets; p++)
            svg_cell(f, cfg, res, p, s, x0 + (int)p * CELL_W, y);
    }
    int ly = y0 + (int)cfg->n_strategies * CELL_H + 20;
    for (int o = 0; o < 4; o++) {
        int lx = PAD + o * 150;
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" rx=\"2\" fill=\"%s\"/>\n", lx, ly,
                colours[o]);
        svg_text(f, lx + 20, ly + 12, "start", "normal", "#000", sd_outcome_name((unsigned)o));
    }
    snprintf(buf, sizeof(buf), "ratio = goodput / no-censor control; evades at >= %.2f",
             cfg->evade_at > 0 ? cfg->evade_at : 0.5);
    svg_text(f, PAD, ly + 34, "start", "normal", "#333", buf);
    fputs("</svg>\n", f);
}

void sd_matrix_write_html(FILE *f, const struct sd_matrix_config *cfg, const struct sd_matrix_result *res)
{
    fputs("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>slowdown matrix</title>\n"
          "<style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:4px 8px;"
          "vertical-align:top;text-align:left}table{border-collapse:collapse}code{white-space:nowrap}</style>\n"
          "</head><body>\n<h1>slowdown matrix</h1>\n",
          f);
    fprintf(f, "<p>%u strategies x %u presets, %.1f s, name under test <code>", cfg->n_strategies, cfg->n_presets,
            (double)res->elapsed_ns / 1e9);
    xml(f, cfg->sni ? cfg->sni : "twitter.com");
    fputs("</code>. Hover a cell for its measurement.</p>\n", f);
    sd_matrix_write_svg(f, cfg, res);
    fputs("<h2>Strategies</h2>\n<table><tr><th>strategy</th><th>on the wire</th></tr>\n", f);
    for (unsigned s = 0; s < cfg->n_strategies; s++) {
        const struct sd_matrix_strategy *st = &cfg->strategies[s];
        fputs("<tr><td><code>", f);
        xml(f, st->name);
        fputs("</code></td><td>", f);
        if (st->external) {
            fputs("external command: <code>", f);
            xml(f, st->external);
            fputs("</code>", f);
        } else {
            xml(f, st->spec.def->wire);
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n</body></html>\n", f);
}
