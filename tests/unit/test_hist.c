/* test_hist.c — histogram error bound, quantiles, merge, extremes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "hist.h"

static void test_exact_small(void **state)
{
    static hist h;
    (void)state;
    hist_init(&h);
    assert_int_equal(hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 100; v++)
        hist_record(&h, v);
    assert_int_equal(hist_quantile(&h, 0.5), 50);
    assert_int_equal(hist_quantile(&h, 0.99), 99);
    assert_int_equal(hist_quantile(&h, 1.0), 100);
    assert_int_equal(h.min, 1);
    assert_int_equal(h.max, 100);
}

/* Every quantile answer is within 1 % of the exact order statistic. */
static void test_relative_error(void **state)
{
    enum { N = 100000 };
    static hist h;
    static uint64_t vals[N];
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    (void)state;
    hist_init(&h);
    srand(7);
    for (int i = 0; i < N; i++) {
        /* Spread over 6 orders of magnitude. */
        uint64_t v = (uint64_t)rand() % 1000 + 1;
        v *= (uint64_t)1 << (rand() % 20);
        vals[i] = v;
        hist_record(&h, v);
    }
    /* Sort for exact quantiles. */
    for (int gap = N / 2; gap > 0; gap /= 2)
        for (int i = gap; i < N; i++)
            for (int j = i; j >= gap && vals[j - gap] > vals[j]; j -= gap) {
                uint64_t t = vals[j];
                vals[j] = vals[j - gap];
                vals[j - gap] = t;
            }
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        size_t rank = (size_t)(qs[k] * N + 0.999999);
        uint64_t exact = vals[rank - 1];
        uint64_t got = hist_quantile(&h, qs[k]);
        double err = got > exact ? (double)(got - exact) : (double)(exact - got);
        assert_true(err <= exact * 0.01 + 1);
    }
}

static void test_extremes_and_merge(void **state)
{
    static hist a, b;
    (void)state;
    hist_init(&a);
    hist_init(&b);
    hist_record(&a, 0);
    hist_record(&b, UINT64_MAX);
    hist_merge(&a, &b);
    assert_int_equal(a.total, 2);
    assert_int_equal(hist_quantile(&a, 0.5), 0);
    assert_true(hist_quantile(&a, 1.0) == UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_small),
        cmocka_unit_test(test_relative_error),
        cmocka_unit_test(test_extremes_and_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
