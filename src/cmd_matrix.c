/* cmd_matrix.c - 'slowdown matrix' (not written yet). */
#include <stdio.h>

#include "cli.h"

int sd_matrix_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "slowdown matrix: not implemented yet\n");
    return SD_EXIT_ERR;
}
