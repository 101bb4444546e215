/* cmd_serve.c - 'slowdown serve' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_serve_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown serve: not implemented yet\n");
    return SD_EXIT_ERR;
}
