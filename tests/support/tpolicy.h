/*
 * tpolicy.h - a compiled policy from policy text, for cmocka tests: a parse
 * error fails the test with its FILE:LINE and message. Include after
 * <cmocka.h> (it uses cmocka's assertions, so the support library, which
 * benchmarks link too, cannot hold it).
 */
#ifndef SD_TPOLICY_H
#define SD_TPOLICY_H

#include <string.h>

#include "policy.h"

static inline struct sd_policy *tpolicy(const char *text)
{
    struct sd_policy_error err;
    struct sd_policy_builder *b = sd_policy_builder_new();
    assert_non_null(b);
    if (sd_policy_builder_parse(b, "test.pol", text, strlen(text), &err) != 0)
        fail_msg("%s:%u: %s", err.file, err.line, err.msg);
    struct sd_policy *p = sd_policy_builder_finish(b, &err);
    assert_non_null(p);
    sd_policy_builder_free(b);
    return p;
}

#endif
