/* test_json.c — the JSON writer: nesting and commas, escapes, invalid
 * UTF-8 replaced, numbers and booleans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

static void check(herald_buf *b, const char *want)
{
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    b->len = 0;
}

static void test_nesting(void **state)
{
    herald_buf b = {0};
    json_w w;
    (void)state;
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "a");
    json_u64(&w, 18446744073709551615ull);
    json_key(&w, "b");
    json_arr(&w);
    json_strz(&w, "x");
    json_bool(&w, true);
    json_arr(&w);
    json_arr_end(&w);
    json_obj(&w);
    json_obj_end(&w);
    json_arr_end(&w);
    json_key(&w, "c");
    json_bool(&w, false);
    json_obj_end(&w);
    assert_int_equal(json_done(&w), 0);
    check(&b, "{\"a\":18446744073709551615,\"b\":[\"x\",true,[],{}],\"c\":false}");
    herald_buf_free(&b);
}

static void test_escapes(void **state)
{
    herald_buf b = {0};
    json_w w;
    static const char in[] = "q\"b\\n\n\t\x01 \xe4\xbd\xa0\xe5\xa5\xbd \xff \xc0\xaf \xed\xa0\x80 \xf0\x9f\x98\x80";
    (void)state;
    json_init(&w, &b);
    json_str(&w, in, sizeof in - 1);
    /* Chinese text and the emoji pass through; 0xff, the overlong C0 AF and
     * the surrogate ED A0 80 become U+FFFD per byte. */
    check(&b, "\"q\\\"b\\\\n\\n\\t\\u0001 \xe4\xbd\xa0\xe5\xa5\xbd \xef\xbf\xbd "
              "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xf0\x9f\x98\x80\"");
    json_init(&w, &b);
    json_str(&w, "a\0b", 3);
    check(&b, "\"a\\u0000b\"");
    herald_buf_free(&b);
}

static void test_depth_cap(void **state)
{
    herald_buf b = {0};
    json_w w;
    (void)state;
    json_init(&w, &b);
    for (int i = 0; i < JSON_DEPTH_MAX + 2; i++)
        json_arr(&w);
    assert_int_not_equal(json_done(&w), 0);
    herald_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_depth_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
