/* cmd_explain.c - 'slowdown explain' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_explain_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown explain: not implemented yet\n");
    return SD_EXIT_ERR;
}
