/*
 * test_cbsign.c — what a callback receiver relies on: the signature (a
 * vector computed independently with Python's hmac), the retry schedule
 * (1, 2, 4 … 1024 s, then 30 min; the 23rd attempt 21,847 s after the
 * first), nonces, and the callback ops' JSON arguments (cbargs: unknown
 * fields, wrong types, bounds, event ids).
 */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "cbargs.h"
#include "cbsign.h"
#include "outbox.h"

static void signature_vector(void **state)
{
    char sig[CB_SIG_HEX];
    const char *body = "{\"id\":\"3-1\"}";
    (void)state;
    cb_sign("7be24d22a25e2bf25f9a86a13f39321840b1785760ba3cf63f3ffcfdc10a1307",
            "82ff6fb7e9a5ed44246cb6270a0708f2", 1796286706u, "0123456789abcdef0123456789abcdef",
            body, strlen(body), sig);
    /* python3: hmac.new(secret, token\nts\nnonce\nbody, sha256).hexdigest() */
    assert_string_equal(sig, "03b194cb08af5970a0c7ed1db72624fb77edae739448a19027be5b71a4f5e3ba");
}

static void signature_covers_everything(void **state)
{
    char a[CB_SIG_HEX], b[CB_SIG_HEX];
    (void)state;
    cb_sign("s1", "t", 10, "n", "x", 1, a);
    cb_sign("s2", "t", 10, "n", "x", 1, b);
    assert_string_not_equal(a, b);
    cb_sign("s1", "t2", 10, "n", "x", 1, b);
    assert_string_not_equal(a, b);
    cb_sign("s1", "t", 11, "n", "x", 1, b);
    assert_string_not_equal(a, b);
    cb_sign("s1", "t", 10, "m", "x", 1, b);
    assert_string_not_equal(a, b);
    cb_sign("s1", "t", 10, "n", "y", 1, b);
    assert_string_not_equal(a, b);
    cb_sign("s1", "t", 10, "n", "x", 1, b);
    assert_string_equal(a, b);
    /* The separator is part of it: "t\n1" + "0" is not "t\n10". */
    cb_sign("s1", "t\n1", 0, "n", "x", 1, b);
    assert_string_not_equal(a, b);
}

static void nonces_differ(void **state)
{
    char a[CB_NONCE_HEX], b[CB_NONCE_HEX];
    (void)state;
    cb_nonce(a);
    cb_nonce(b);
    assert_int_equal(strlen(a), 32);
    assert_string_not_equal(a, b);
}

static void schedule(void **state)
{
    static const uint64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000,
                                    256000, 512000, 1024000, 1800000, 1800000};
    (void)state;
    for (uint32_t i = 0; i < sizeof want / sizeof want[0]; i++)
        assert_int_equal(cb_backoff_ms(i + 1, 1000), want[i]);
    assert_int_equal(cb_backoff_ms(100, 1000), CB_BACKOFF_CAP_MS);
    assert_int_equal(cb_backoff_ms(4000000000u, 1000), CB_BACKOFF_CAP_MS);
    assert_int_equal(cb_backoff_ms(1, 100), 100);
    assert_int_equal(cb_backoff_ms(3, 100), 400);
    assert_int_equal(cb_schedule_at_ms(1, 1000), 0);
    assert_int_equal(cb_schedule_at_ms(2, 1000), 1000);
    assert_int_equal(cb_schedule_at_ms(12, 1000), 2047000);
    /* The default: the last of 23 attempts ~6 h after the first. */
    assert_int_equal(cb_schedule_at_ms(CB_ATTEMPTS_DEFAULT, CB_BACKOFF_DEFAULT_MS), 21847000);
}

static int parse(cbargs_op op, const char *json, cbargs *a, char *why)
{
    return cbargs_parse(op, json, strlen(json), a, why, 200);
}

static void args_callback(void **state)
{
    cbargs a;
    char why[200];
    (void)state;
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://x.example/cb\",\"all\":true}", &a,
                           why), 0);
    assert_string_equal(a.url, "https://x.example/cb");
    assert_true(a.all);
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"\"}", &a, why), 0);
    assert_string_equal(a.url, "");
    assert_false(a.all);
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"all\":true}", &a, why), HERALD_EINVAL);
    assert_non_null(strstr(why, "url is required"));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":5}", &a, why), HERALD_EINVAL);
    assert_non_null(strstr(why, "url must be a string"));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"all\":1}", &a, why),
                     HERALD_EINVAL);
    assert_non_null(strstr(why, "all must be true or false"));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"color\":1}", &a, why),
                     HERALD_EINVAL);
    assert_non_null(strstr(why, "unknown field \"color\""));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"url\":\"b\"}", &a, why),
                     HERALD_EINVAL); /* duplicate keys */
    assert_int_equal(parse(CBARGS_CALLBACK, "[1]", &a, why), HERALD_EINVAL);
    assert_non_null(strstr(why, "not an array"));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":", &a, why), HERALD_EINVAL);
    assert_non_null(strstr(why, "one JSON object"));
    assert_int_equal(cbargs_parse(CBARGS_CALLBACK, "{\"url\":\"a\\u0000b\"}", 17, &a, why, 200),
                     HERALD_EINVAL);
    /* events: the types wanted, by name. */
    assert_int_equal(parse(CBARGS_CALLBACK,
                           "{\"url\":\"https://a\",\"events\":[\"message.offline\"]}", &a, why),
                     0);
    assert_int_equal(a.types, ob_type_bit("message.offline", 15));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"events\":[]}", &a, why), 0);
    assert_int_equal(a.types, 0); /* every type */
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"events\":[\"mesage\"]}", &a,
                           why), HERALD_EINVAL);
    assert_non_null(strstr(why, "\"mesage\" is no event type (one of: message,recall,"));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"events\":[1]}", &a, why),
                     HERALD_EINVAL);
    assert_non_null(strstr(why, "a non-string is no event type"));
    assert_int_equal(parse(CBARGS_CALLBACK, "{\"url\":\"https://a\",\"events\":\"message\"}", &a,
                           why), HERALD_EINVAL);
    assert_non_null(strstr(why, "events must be an array"));
}

static void args_events_redeliver(void **state)
{
    cbargs a;
    char why[200];
    (void)state;
    assert_int_equal(parse(CBARGS_EVENTS, "", &a, why), 0);
    assert_int_equal(a.limit, CBARGS_LIMIT_DEFAULT);
    assert_int_equal(parse(CBARGS_EVENTS, "{\"failed\":true,\"limit\":200,\"after\":\"2-17\"}",
                           &a, why), 0);
    assert_true(a.failed && a.has_after);
    assert_int_equal(a.limit, 200);
    assert_int_equal(a.group, 2);
    assert_int_equal(a.seq, 17);
    assert_int_equal(parse(CBARGS_EVENTS, "{\"limit\":201}", &a, why), HERALD_EINVAL);
    assert_int_equal(parse(CBARGS_EVENTS, "{\"limit\":0}", &a, why), HERALD_EINVAL);
    assert_int_equal(parse(CBARGS_EVENTS, "{\"limit\":\"5\"}", &a, why), HERALD_EINVAL);
    assert_int_equal(parse(CBARGS_EVENTS, "{\"after\":\"x\"}", &a, why), HERALD_EINVAL);
    assert_non_null(strstr(why, "GROUP-SEQ"));
    assert_int_equal(parse(CBARGS_EVENTS, "{\"url\":\"x\"}", &a, why), HERALD_EINVAL);
    assert_int_equal(parse(CBARGS_REDELIVER, "{\"id\":\"0-1\"}", &a, why), 0);
    assert_true(a.has_id && !a.failed);
    assert_int_equal(parse(CBARGS_REDELIVER, "{\"failed\":true}", &a, why), 0);
    assert_int_equal(parse(CBARGS_REDELIVER, "{}", &a, why), HERALD_EINVAL);
    assert_int_equal(parse(CBARGS_REDELIVER, "{\"id\":\"0-1\",\"failed\":true}", &a, why),
                     HERALD_EINVAL);
    assert_int_equal(parse(CBARGS_REDELIVER, "{\"limit\":3}", &a, why), HERALD_EINVAL);
}

static void event_ids(void **state)
{
    uint32_t g;
    uint64_t s;
    (void)state;
    assert_int_equal(cbargs_event_id("0-1", &g, &s), 0);
    assert_int_equal(cbargs_event_id("12-18446744073709551", &g, &s), 0);
    assert_int_equal(g, 12);
    assert_int_equal(cbargs_event_id("1-0", &g, &s), HERALD_EINVAL);
    assert_int_equal(cbargs_event_id("256-1", &g, &s), HERALD_EINVAL);
    assert_int_equal(cbargs_event_id("-1", &g, &s), HERALD_EINVAL);
    assert_int_equal(cbargs_event_id("1-", &g, &s), HERALD_EINVAL);
    assert_int_equal(cbargs_event_id("1-2x", &g, &s), HERALD_EINVAL);
    assert_int_equal(cbargs_event_id("1-99999999999999999999", &g, &s), HERALD_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signature_vector),     cmocka_unit_test(signature_covers_everything),
        cmocka_unit_test(nonces_differ),        cmocka_unit_test(schedule),
        cmocka_unit_test(args_callback),        cmocka_unit_test(args_events_redeliver),
        cmocka_unit_test(event_ids),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
