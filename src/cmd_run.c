/* cmd_run.c - 'slowdown run' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_run_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown run: not implemented yet\n");
    return SD_EXIT_ERR;
}
