/*
 * test_alloc_fail.c — fault injection: every allocation made by Herald's own
 * code (linked with -Wl,--wrap=malloc,calloc,realloc) fails after N
 * successes, for N = 0, 1, 2, … until the operation completes. Each run must
 * either succeed or report HERALD_ENOMEM — never crash, never leak (ASan),
 * never leave a half-done result: a failed apply commits nothing, and the
 * retry continues the sequence without a gap.
 */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc_wrap.h"

#include "apply.h"
#include "cmd.h"
#include "store.h"
#include "synckey.h"
#include "token.h"

/* Allocation failures: alloc_wrap.h (alloc_fail_after). */

#define MAX_STEPS 10000

static void test_frame_codec(void **state)
{
    herald_str mem[40];
    herald_msg msgs[20];
    char names[40][16];
    herald_frame src = {.type = HERALD_FT_SYNC_RESULT, .rid = 9, .more = true};
    herald_buf enc = {0};
    int steps = 0, rc;
    (void)state;
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "user-%d", i);
        mem[i] = herald_str_z(names[i]);
    }
    for (int i = 0; i < 20; i++)
        msgs[i] = (herald_msg){.conv = herald_str_z("c"), .seq = (uint64_t)i + 1,
                               .from = mem[i], .body = herald_str_z("hello")};
    src.msgs = msgs;
    src.n_msgs = 20;
    src.members = mem;
    src.n_members = 40;
    for (long n = 0;; n++, steps++) {
        size_t before = enc.len;
        assert_true(steps < MAX_STEPS);
        alloc_fail_after = n;
        rc = herald_frame_encode(&src, &enc);
        alloc_fail_after = -1;
        if (rc == 0)
            break;
        assert_int_equal(rc, HERALD_ENOMEM);
        assert_int_equal(enc.len, before); /* nothing half-written */
    }
    for (long n = 0;; n++, steps++) {
        herald_frame out;
        assert_true(steps < MAX_STEPS);
        alloc_fail_after = n;
        rc = herald_frame_decode(enc.data + 4, enc.len - 4, NULL, &out);
        alloc_fail_after = -1;
        if (rc == 0) {
            assert_int_equal(out.n_msgs, 20);
            assert_int_equal(out.n_members, 40);
            herald_frame_release(&out);
            break;
        }
        assert_int_equal(rc, HERALD_ENOMEM);
        /* On error the frame holds nothing to free. */
        assert_null(out.msgs);
        assert_null(out.members);
    }
    herald_buf_free(&enc);
}

static void test_sync_key(void **state)
{
    synckey k = {0}, back = {0};
    herald_buf b = {0};
    int rc;
    (void)state;
    *sk_group(&k, 0) = 5;
    *sk_conv_at(&k, "news", 4) = 7;
    assert_int_equal(sk_save(&k, &b), 0);
    for (long n = 0;; n++) {
        assert_true(n < MAX_STEPS);
        alloc_fail_after = n;
        rc = sk_load(&back, b.data, b.len);
        alloc_fail_after = -1;
        if (rc == 0)
            break;
        assert_int_equal(rc, HERALD_ENOMEM);
    }
    assert_int_equal(back.n_convs, 1);
    sk_free(&k);
    sk_free(&back);
    herald_buf_free(&b);
}

/* apply under memory pressure: a failed batch commits nothing. */
static void test_apply(void **state)
{
    char dir[] = "/tmp/herald-allocfail-XXXXXX";
    store_config cfg = {.dir = dir, .no_sync = true};
    store *st;
    herald_buf b = {0};
    char hex[TOKEN_SECRET_HEX + 1];
    uint8_t sec[TOKEN_SECRET_LEN];
    herald_str mem[50];
    char names[50][16];
    uint64_t index = 1, expect_seq = 2;
    int failures = 0;
    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(store_open(&cfg, &st), 0);
    token_secret_generate(sec);
    token_secret_to_hex(sec, hex);
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "m%d", i);
        mem[i] = herald_str_z(names[i]);
    }
    {
        cmd t = {.op = CMD_TENANT_CREATE, .tenant = herald_str_z("t"), .secret = herald_str_z(hex)};
        cmd c = {.op = CMD_CONV_CREATE, .tenant = herald_str_z("t"), .user = herald_str_z("m0"),
                 .conv = herald_str_z("c"), .kind = herald_str_z("group"), .members = mem,
                 .n_members = 50, .ts = 1};
        const uint8_t *p[2];
        size_t len[2];
        herald_buf bt = {0}, bc = {0};
        apply_result r[2];
        assert_int_equal(cmd_encode(&t, &bt), 0);
        assert_int_equal(cmd_encode(&c, &bc), 0);
        p[0] = bt.data, len[0] = bt.len, p[1] = bc.data, len[1] = bc.len;
        assert_int_equal(apply_batch(st, p, len, 2, index, r), 0);
        index += 2;
        assert_int_equal(r[1].err, 0);
        apply_result_free(&r[0]);
        apply_result_free(&r[1]);
        herald_buf_free(&bt);
        herald_buf_free(&bc);
    }
    {
        cmd s = {.op = CMD_SEND, .tenant = herald_str_z("t"), .user = herald_str_z("m1"),
                 .conv = herald_str_z("c"), .cmid = herald_str_z("x"), .body = herald_str_z("hi"),
                 .ts = 2};
        assert_int_equal(cmd_encode(&s, &b), 0);
    }
    for (long n = 0;; n++) {
        const uint8_t *p = b.data;
        size_t len = b.len;
        apply_result r;
        uint64_t applied = store_applied(st);
        int rc;
        assert_true(n < MAX_STEPS);
        alloc_fail_after = n;
        rc = apply_batch(st, &p, &len, 1, index, &r);
        alloc_fail_after = -1;
        if (rc == 0) {
            assert_int_equal(r.err, 0);
            assert_int_equal(r.seq, expect_seq); /* no seq was burnt by failures */
            assert_false(r.dup);                 /* no failed attempt left the cmid behind */
            assert_int_equal(r.n_targets, 50);
            apply_result_free(&r);
            break;
        }
        failures++;
        assert_int_equal(rc, HERALD_ENOMEM);
        assert_int_equal(store_applied(st), applied); /* nothing committed */
    }
    print_message("SEND to 50 members survived %d injected allocation failures\n", failures);
    assert_true(failures > 0);
    herald_buf_free(&b);
    store_close(st);
    {
        char rm[128];
        snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
        assert_int_equal(system(rm), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_codec),
        cmocka_unit_test(test_sync_key),
        cmocka_unit_test(test_apply),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
