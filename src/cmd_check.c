/* cmd_check.c - 'slowdown check' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_check_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown check: not implemented yet\n");
    return SD_EXIT_ERR;
}
