/*
 * demo.h - the offline demo: the demo's traffic, generated, judged by
 * tw21-initial and tw21-exact (used when the lab cannot run).
 */
#ifndef SD_DEMO_H
#define SD_DEMO_H

int sd_demo_offline(int argc, char **argv);

#endif
