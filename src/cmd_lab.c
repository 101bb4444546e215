/* cmd_lab.c - 'slowdown lab' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_lab_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown lab: not implemented yet\n");
    return SD_EXIT_ERR;
}
