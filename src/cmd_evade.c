/* cmd_evade.c - 'slowdown evade' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_evade_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown evade: not implemented yet\n");
    return SD_EXIT_ERR;
}
