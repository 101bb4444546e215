/* cmd_pcap.c - 'slowdown pcap' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_pcap_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown pcap: not implemented yet\n");
    return SD_EXIT_ERR;
}
