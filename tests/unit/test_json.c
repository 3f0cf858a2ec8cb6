/* test_json.c — the JSON writer: nesting and commas, escapes, invalid
 * UTF-8 replaced, numbers and booleans, the FILE* sink, sticky failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <herald/error.h>

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

static void test_utf8_edges(void **state)
{
    herald_buf b = {0};
    json_w w;
    /* a lone continuation byte, a lead byte cut short by the end, U+10FFFF
     * (valid) and U+110000 (invalid, 4 bytes → 4 replacements), DEL kept,
     * \b and \f as \u escapes. */
    static const char in[] = "\x80|\xf4\x8f\xbf\xbf|\xf4\x90\x80\x80|\x7f\b\f|\xe4\xbd";
    (void)state;
    json_init(&w, &b);
    json_str(&w, in, sizeof in - 1);
    check(&b, "\"\xef\xbf\xbd|\xf4\x8f\xbf\xbf|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
              "\x7f\\u0008\\u000c|\xef\xbf\xbd\xef\xbf\xbd\"");
    assert_int_equal(json_done(&w), 0);
    herald_buf_free(&b);
}

static void test_integers_and_file(void **state)
{
    char *mem = NULL;
    size_t memlen = 0;
    FILE *f = open_memstream(&mem, &memlen);
    json_w w;
    (void)state;
    assert_non_null(f);
    json_init_file(&w, f);
    json_arr(&w);
    json_i64(&w, INT64_MIN);
    json_i64(&w, -1);
    json_u64(&w, 0);
    json_strz(&w, NULL);
    json_obj(&w);
    json_key(&w, "k\"");
    json_str(&w, "", 0);
    json_obj_end(&w);
    json_arr_end(&w);
    assert_int_equal(json_done(&w), 0);
    assert_int_equal(fclose(f), 0);
    assert_string_equal(mem, "[-9223372036854775808,-1,0,\"\",{\"k\\\"\":\"\"}]");
    free(mem);
}

static void test_unbalanced_close_fails(void **state)
{
    herald_buf b = {0};
    json_w w;
    (void)state;
    json_init(&w, &b);
    json_obj_end(&w);
    assert_int_equal(json_done(&w), HERALD_ENOMEM);
    herald_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_depth_cap),
        cmocka_unit_test(test_utf8_edges),
        cmocka_unit_test(test_integers_and_file),
        cmocka_unit_test(test_unbalanced_close_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
