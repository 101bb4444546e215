/* cmd_presets.c - 'slowdown presets' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_presets_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown presets: not implemented yet\n");
    return SD_EXIT_ERR;
}
