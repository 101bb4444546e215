/*
 * cli.h - the subcommands of the slowdown tool. Each lives in its own
 * cmd_<name>.c and is listed once in the table of main.c. Every command
 * returns its exit status: 0 done, 1 runtime or input error (a one-line
 * message on stderr), 2 usage error.
 */
#ifndef SD_CLI_H
#define SD_CLI_H

int sd_demo_main(int argc, char **argv);
int sd_pcap_main(int argc, char **argv);
int sd_run_main(int argc, char **argv);
int sd_lab_main(int argc, char **argv);
int sd_serve_main(int argc, char **argv);
int sd_detect_main(int argc, char **argv);
int sd_evade_main(int argc, char **argv);
int sd_matrix_main(int argc, char **argv);
int sd_presets_main(int argc, char **argv);
int sd_check_main(int argc, char **argv);
int sd_match_main(int argc, char **argv);
int sd_explain_main(int argc, char **argv);

/* Exit codes shared by all commands. */
enum { SD_EXIT_OK = 0, SD_EXIT_ERR = 1, SD_EXIT_USAGE = 2 };

#endif
