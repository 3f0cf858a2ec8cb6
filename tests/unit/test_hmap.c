/* test_hmap.c — the hash map: insert, replace, delete with backward shift,
 * growth, iteration, binary keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hmap.h"

static void test_basic(void **state)
{
    hmap *m;
    int a = 1, b = 2;
    (void)state;
    assert_int_equal(hmap_create(&m), 0);
    assert_null(hmap_get(m, "x", 1));
    assert_int_equal(hmap_put(m, "x", 1, &a), 0);
    assert_ptr_equal(hmap_get(m, "x", 1), &a);
    assert_int_equal(hmap_put(m, "x", 1, &b), 0);
    assert_ptr_equal(hmap_get(m, "x", 1), &b);
    assert_int_equal(hmap_count(m), 1);
    /* Binary keys with NULs differ from their prefixes. */
    assert_int_equal(hmap_put(m, "x\0y", 3, &a), 0);
    assert_ptr_equal(hmap_get(m, "x\0y", 3), &a);
    assert_ptr_equal(hmap_get(m, "x", 1), &b);
    assert_ptr_equal(hmap_del(m, "x", 1), &b);
    assert_null(hmap_get(m, "x", 1));
    assert_null(hmap_del(m, "x", 1));
    assert_int_equal(hmap_count(m), 1);
    hmap_destroy(m);
    hmap_destroy(NULL);
}

/* Many keys, delete every third, check the rest survive (probe chains
 * repaired by backward shift), iterate and count. */
static void test_many(void **state)
{
    enum { N = 20000 };
    static int vals[N];
    hmap *m;
    char key[32];
    size_t seen = 0, it;
    const void *k;
    size_t kl;
    void *v;
    (void)state;
    assert_int_equal(hmap_create(&m), 0);
    for (int i = 0; i < N; i++) {
        vals[i] = i;
        int n = snprintf(key, sizeof key, "user-%d", i);
        assert_int_equal(hmap_put(m, key, (size_t)n, &vals[i]), 0);
    }
    assert_int_equal(hmap_count(m), N);
    for (int i = 0; i < N; i += 3) {
        int n = snprintf(key, sizeof key, "user-%d", i);
        assert_ptr_equal(hmap_del(m, key, (size_t)n), &vals[i]);
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "user-%d", i);
        void *got = hmap_get(m, key, (size_t)n);
        if (i % 3 == 0)
            assert_null(got);
        else
            assert_ptr_equal(got, &vals[i]);
    }
    for (it = hmap_next(m, 0, &k, &kl, &v); it != (size_t)-1;
         it = hmap_next(m, it + 1, &k, &kl, &v)) {
        int i = *(int *)v;
        assert_true(i % 3 != 0);
        seen++;
    }
    assert_int_equal(seen, hmap_count(m));
    hmap_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
