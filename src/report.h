/*
 * report.h - collecting per-flow reports and printing them: the JSON lines
 * of the interface contract (`slowdown pcap --json`) or a readable table.
 * Flows are printed in the order of their first packet.
 */
#ifndef SD_REPORT_H
#define SD_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"

struct sd_report;

struct sd_report *sd_report_new(void);
void sd_report_free(struct sd_report *r);
/* The engine's on_flow_end callback: copies the report. */
void sd_report_add(void *report, const struct sd_flow_report *fr);
/* Prints every flow then the summary line, sorted by first packet. */
void sd_report_print_json(struct sd_report *r, FILE *out);
void sd_report_print_table(struct sd_report *r, FILE *out, bool why);
/* Writes one flow object (no newline) into |out|. */
void sd_report_json_flow(FILE *out, const struct sd_flow_report *fr);
/* Formats "10.0.0.2:40000" or "[2001:db8::1]:443". */
void sd_report_endpoint(char *buf, size_t cap, int family, const uint8_t *addr, uint16_t port);

#endif
