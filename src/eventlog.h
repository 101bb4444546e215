/*
 * eventlog.h - the event log: one JSON line per decision, shaped like
 * Suricata's eve.json (timestamp, flow_id, event_type, src/dest ip and port,
 * proto, and an object named after the event type), so that tooling which
 * reads eve.json (jq recipes, Filebeat's Suricata module, ...) reads it too.
 *
 *   flow opened   event_type "flow_start"
 *   name parsed   event_type "tls" {"sni"}, "http" {"hostname"}, "dns" {"rrname"}
 *   rule fired    event_type "alert" {"action", "signature" (the rule), "category" (the trigger)}
 *   released      event_type "flow" {pkts/bytes to server and client, dropped, start, end, reason, action}
 *   action ended  event_type "action_end" {"action", "signature", "reason"}: a reload removed the
 *                 flow's rule, or a remote SYN made it ineligible (its state lives on, under no rule)
 *
 * Writers from several threads share one FILE: each line is written under
 * the FILE's own lock (flockfile), so lines never interleave.
 */
#ifndef SD_EVENTLOG_H
#define SD_EVENTLOG_H

#include <stdio.h>

#include "engine.h"

/* The engine's on_event callback: |arg| is the FILE * to write to. */
void sd_eventlog_write(void *arg, const struct sd_event *ev);

#endif
