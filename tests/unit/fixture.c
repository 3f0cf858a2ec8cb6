/* fixture.c — the unit tests' store fixture; see fixture.h. */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

fx *fx_new(const char *name)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/herald-%s-XXXXXX", name);
    assert_non_null(mkdtemp(f->dir));
    fx_open(f, 0, 0);
    return f;
}

void fx_open(fx *f, size_t map_size, size_t map_max)
{
    store_config cfg = {.dir = f->dir, .map_size = map_size, .map_max = map_max,
                        .no_sync = true};
    assert_int_equal(store_open(&cfg, &f->st), 0);
    f->next = store_applied(f->st) + 1;
}

void fx_free(fx *f)
{
    char rm[128];
    store_close(f->st);
    snprintf(rm, sizeof rm, "rm -rf '%s'", f->dir);
    assert_int_equal(system(rm), 0);
    for (uint32_t i = 0; i < f->n_log; i++)
        herald_buf_free(&f->log[i]);
    free(f);
}

void fx_apply(fx *f, const cmd *k, apply_result *r)
{
    herald_buf b = {0};
    const uint8_t *p;
    size_t len;
    assert_int_equal(cmd_encode(k, &b), 0);
    p = b.data;
    len = b.len;
    assert_int_equal(apply_batch(f->st, &p, &len, 1, f->next++, r), 0);
    if (f->keep_log) {
        assert_true(f->n_log < sizeof f->log / sizeof f->log[0]);
        f->log[f->n_log++] = b;
    } else {
        herald_buf_free(&b);
    }
}

void fx_secret_hex(char hex[TOKEN_SECRET_HEX + 1])
{
    uint8_t sec[TOKEN_SECRET_LEN];
    token_secret_generate(sec);
    token_secret_to_hex(sec, hex);
}
