/* cmd_detect.c - 'slowdown detect' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_detect_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown detect: not implemented yet\n");
    return SD_EXIT_ERR;
}
