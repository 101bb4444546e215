/* support.c - anchors the test-support library (generators live beside it). */
#include "sd.h"

int sd_test_support_version(void);
int sd_test_support_version(void)
{
    return 1;
}
