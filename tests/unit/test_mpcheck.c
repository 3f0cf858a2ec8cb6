/* test_mpcheck.c — mp_check: every format byte, truncation, depth, count
 * bombs, trailing bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <herald/error.h>

#include "mpcheck.h"

#define OK(...)                                                               \
    do {                                                                      \
        static const uint8_t b_[] = {__VA_ARGS__};                            \
        assert_int_equal(mp_check(b_, sizeof b_, 8), 0);                      \
    } while (0)
#define BAD(...)                                                              \
    do {                                                                      \
        static const uint8_t b_[] = {__VA_ARGS__};                            \
        assert_int_equal(mp_check(b_, sizeof b_, 8), HERALD_EPROTOCOL);       \
    } while (0)

/* Every valid scalar form is accepted alone, and rejected when cut short. */
static void test_scalars(void **state)
{
    static const struct {
        uint8_t b[12]; /* encoding */
        size_t n;      /* its length */
    } cases[] = {
        {{0x00}, 1}, {{0x7f}, 1}, {{0xe0}, 1}, {{0xff}, 1},       /* fixints */
        {{0xc0}, 1}, {{0xc2}, 1}, {{0xc3}, 1},                    /* nil, bools */
        {{0xa0}, 1}, {{0xa3, 'a', 'b', 'c'}, 4},                  /* fixstr */
        {{0xcc, 1}, 2}, {{0xcd, 1, 2}, 3}, {{0xce, 1, 2, 3, 4}, 5}, /* uint */
        {{0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
        {{0xd0, 1}, 2}, {{0xd1, 1, 2}, 3}, {{0xd2, 1, 2, 3, 4}, 5}, /* int */
        {{0xd3, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
        {{0xca, 0, 0, 0, 0}, 5}, {{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, 9}, /* floats */
        {{0xc4, 2, 'x', 'y'}, 4}, {{0xc5, 0, 1, 'x'}, 4},         /* bin8/16 */
        {{0xc6, 0, 0, 0, 1, 'x'}, 6},                             /* bin32 */
        {{0xd9, 2, 'x', 'y'}, 4}, {{0xda, 0, 1, 'x'}, 4},         /* str8/16 */
        {{0xdb, 0, 0, 0, 1, 'x'}, 6},                             /* str32 */
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(mp_check(cases[i].b, cases[i].n, 0), 0);
        for (size_t cut = 0; cut < cases[i].n; cut++)
            assert_int_equal(mp_check(cases[i].b, cut, 8), HERALD_EPROTOCOL);
    }
}

static void test_containers(void **state)
{
    (void)state;
    OK(0x90);                               /* [] */
    OK(0x80);                               /* {} */
    OK(0x92, 0x01, 0xa1, 'x');              /* [1, "x"] */
    OK(0x81, 0xa1, 'k', 0xc3);              /* {"k": true} */
    OK(0xdc, 0x00, 0x02, 0x01, 0x02);       /* array16 */
    OK(0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0); /* array32 */
    OK(0xde, 0x00, 0x01, 0x01, 0x02);       /* map16 */
    OK(0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x02); /* map32 */
    OK(0x82, 0x01, 0x91, 0x02, 0x03, 0x80);  /* {1: [2], 3: {}} */
    BAD(0x92, 0x01);                        /* one element missing */
    BAD(0x81, 0x01);                        /* value missing */
    BAD(0xdc, 0x00);                        /* length cut */
    BAD(0xdf, 0x00, 0x00, 0x00);
}

static void test_rejects_ext_and_reserved(void **state)
{
    (void)state;
    BAD(0xc1);
    BAD(0xd4, 0x01, 0x00);                         /* fixext1 */
    BAD(0xd5, 0x01, 0x00, 0x00);                   /* fixext2 */
    BAD(0xd6, 0x01, 0, 0, 0, 0);                   /* fixext4 */
    BAD(0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0);       /* fixext8 */
    BAD(0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    BAD(0xc7, 0x01, 0x01, 0x00);                   /* ext8 */
    BAD(0xc8, 0x00, 0x01, 0x01, 0x00);             /* ext16 */
    BAD(0xc9, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00); /* ext32 */
    BAD(0x91, 0xc7, 0x00, 0x01);                   /* nested */
}

static void test_trailing_and_empty(void **state)
{
    (void)state;
    BAD(0x01, 0x02);
    BAD(0x80, 0x80);
    assert_int_equal(mp_check(NULL, 0, 8), HERALD_EPROTOCOL);
    assert_int_equal(mp_check((const uint8_t *)"", 0, 8), HERALD_EPROTOCOL);
}

/* Declared lengths larger than the input, including the maximum values. */
static void test_count_and_length_bombs(void **state)
{
    (void)state;
    BAD(0xdd, 0xff, 0xff, 0xff, 0xff);
    BAD(0xdf, 0xff, 0xff, 0xff, 0xff);
    BAD(0xdf, 0x80, 0x00, 0x00, 0x00, 0x01, 0x01);
    BAD(0xdc, 0xff, 0xff, 0x01);
    BAD(0xde, 0x00, 0x02, 0x01, 0x01, 0x01); /* 4 children, 3 bytes */
    BAD(0xdb, 0xff, 0xff, 0xff, 0xff, 'x');
    BAD(0xc6, 0xff, 0xff, 0xff, 0xff, 'x');
    BAD(0xda, 0x00, 0x05, 'a', 'b');
    BAD(0xa5, 'a');
    /* Exactly one byte per element is fine. */
    OK(0xdc, 0x00, 0x03, 0x01, 0x02, 0x03);
    /* A map of n pairs needs 2n bytes: n = 2 with 3 bytes fails. */
    BAD(0x82, 0x01, 0x02, 0x03);
}

/* Builds n nested one-element arrays around `inner`. */
static size_t nest(uint8_t *buf, size_t n, uint8_t inner)
{
    memset(buf, 0x91, n);
    buf[n] = inner;
    return n + 1;
}

static void test_depth(void **state)
{
    uint8_t buf[200];
    size_t n;
    (void)state;
    n = nest(buf, 8, 0x01);
    assert_int_equal(mp_check(buf, n, 8), 0);
    assert_int_equal(mp_check(buf, n, 7), HERALD_EPROTOCOL);
    n = nest(buf, 9, 0x01);
    assert_int_equal(mp_check(buf, n, 8), HERALD_EPROTOCOL);
    /* An empty container counts as a level too. */
    n = nest(buf, 8, 0x90);
    assert_int_equal(mp_check(buf, n, 8), HERALD_EPROTOCOL);
    assert_int_equal(mp_check(buf, n, 9), 0);
    /* Scalars have depth 0. */
    assert_int_equal(mp_check((const uint8_t *)"\x01", 1, 0), 0);
    assert_int_equal(mp_check((const uint8_t *)"\x90", 1, 0), HERALD_EPROTOCOL);
    /* A huge cap is clamped, not trusted: 150 levels never pass. */
    n = nest(buf, 150, 0x01);
    assert_int_equal(mp_check(buf, n, 1000), HERALD_EPROTOCOL);
    /* Sibling containers after deep ones: the walk climbs back up. */
    {
        static const uint8_t b[] = {0x92, 0x91, 0x91, 0x01, 0x91, 0x02};
        assert_int_equal(mp_check(b, sizeof b, 3), 0);
        assert_int_equal(mp_check(b, sizeof b, 2), HERALD_EPROTOCOL);
    }
}

/* A large, flat, valid map passes in linear time. */
static void test_big_flat(void **state)
{
    size_t n = 100000, len = 5 + 2 * n;
    uint8_t *b = malloc(len);
    (void)state;
    assert_non_null(b);
    b[0] = 0xdf;
    b[1] = (uint8_t)(n >> 24);
    b[2] = (uint8_t)(n >> 16);
    b[3] = (uint8_t)(n >> 8);
    b[4] = (uint8_t)n;
    memset(b + 5, 0x01, 2 * n);
    assert_int_equal(mp_check(b, len, 1), 0);
    assert_int_equal(mp_check(b, len - 1, 1), HERALD_EPROTOCOL);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_rejects_ext_and_reserved),
        cmocka_unit_test(test_trailing_and_empty),
        cmocka_unit_test(test_count_and_length_bombs),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_big_flat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
