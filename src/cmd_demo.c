/* cmd_demo.c - 'slowdown demo' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_demo_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown demo: not implemented yet\n");
    return SD_EXIT_ERR;
}
