/* cmd_explain.c - 'slowdown explain': 'slowdown pcap --why', table output. */
#include <stdbool.h>

#include "cli.h"

int sd_pcap_cmd(int argc, char **argv, const char *cmd, bool why_default);

int sd_explain_main(int argc, char **argv)
{
    return sd_pcap_cmd(argc, argv, "explain", true);
}
