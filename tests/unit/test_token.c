/* test_token.c — token mint/peek/verify, tampering, expiry, ids, hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <herald/error.h>
#include <msgpack.h>
#include <sodium.h>

#include "token.h"

#define NOW 1800000000ull

static const uint8_t secret_a[TOKEN_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t secret_b[TOKEN_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11};

static int setup(void **state)
{
    (void)state;
    return herald_token_init();
}

static token_claims claims(const char *ten, const char *user, uint64_t exp, bool admin)
{
    token_claims c;
    memset(&c, 0, sizeof c);
    snprintf(c.tenant, sizeof c.tenant, "%s", ten);
    snprintf(c.user, sizeof c.user, "%s", user);
    c.expires = exp;
    c.admin = admin;
    return c;
}

static void test_round_trip(void **state)
{
    token_claims in = claims("acme", "alice@acme.io", NOW + 60, false), out;
    char tok[TOKEN_TEXT_MAX + 1];
    (void)state;
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    assert_null(strchr(tok, '='));
    assert_non_null(strchr(tok, '.'));
    assert_int_equal(token_verify(secret_a, tok, strlen(tok), NOW, &out), 0);
    assert_string_equal(out.tenant, "acme");
    assert_string_equal(out.user, "alice@acme.io");
    assert_int_equal(out.expires, NOW + 60);
    assert_false(out.admin);
    memset(&out, 0xaa, sizeof out);
    assert_int_equal(token_peek(tok, strlen(tok), &out), 0);
    assert_string_equal(out.tenant, "acme");
    assert_string_equal(out.user, "alice@acme.io");
}

static void test_admin_flag(void **state)
{
    token_claims in = claims("t1", "root", NOW + 1, true), out;
    char tok[TOKEN_TEXT_MAX + 1];
    (void)state;
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    assert_int_equal(token_verify(secret_a, tok, strlen(tok), NOW, &out), 0);
    assert_true(out.admin);
}

static void test_max_ids(void **state)
{
    char id[TOKEN_ID_MAX + 1];
    token_claims in, out;
    char tok[TOKEN_TEXT_MAX + 1];
    (void)state;
    memset(id, 'x', TOKEN_ID_MAX);
    id[TOKEN_ID_MAX] = '\0';
    in = claims(id, id, UINT64_MAX, true);
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    assert_true(strlen(tok) <= TOKEN_TEXT_MAX);
    assert_int_equal(token_verify(secret_a, tok, strlen(tok), NOW, &out), 0);
    assert_string_equal(out.user, id);
    /* Output buffer one byte short. */
    assert_int_equal(token_mint(secret_a, &in, tok, strlen(tok)), HERALD_ETOO_BIG);
    assert_int_equal(token_mint(secret_a, &in, tok, 0), HERALD_ETOO_BIG);
}

static void test_expired(void **state)
{
    token_claims in = claims("t", "u", NOW, false), out;
    char tok[TOKEN_TEXT_MAX + 1];
    (void)state;
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    assert_int_equal(token_verify(secret_a, tok, strlen(tok), NOW, &out), HERALD_EEXPIRED);
    assert_string_equal(out.user, ""); /* nothing leaks out on error */
    assert_int_equal(token_verify(secret_a, tok, strlen(tok), NOW - 1, &out), 0);
    /* peek does not check expiry */
    assert_int_equal(token_peek(tok, strlen(tok), &out), 0);
}

static void test_wrong_secret(void **state)
{
    token_claims in = claims("t", "u", NOW + 10, false), out;
    char tok[TOKEN_TEXT_MAX + 1];
    (void)state;
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    assert_int_equal(token_verify(secret_b, tok, strlen(tok), NOW, &out), HERALD_EUNAUTHORIZED);
    assert_string_equal(out.tenant, "");
}

/* Changing any one character of the text breaks it (either the base64 or
 * the MAC), and never verifies. */
static void test_tamper_every_char(void **state)
{
    token_claims in = claims("acme", "bob", NOW + 10, false), out;
    char tok[TOKEN_TEXT_MAX + 1];
    size_t n;
    (void)state;
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    n = strlen(tok);
    for (size_t i = 0; i < n; i++) {
        static const char alt[] = {'A', 'B', '-', '_', '.', '=', '\0', 'z'};
        char saved = tok[i];
        for (size_t j = 0; j < sizeof alt; j++) {
            if (alt[j] == saved)
                continue;
            tok[i] = alt[j];
            assert_int_not_equal(token_verify(secret_a, tok, n, NOW, &out), 0);
        }
        tok[i] = saved;
    }
    assert_int_equal(token_verify(secret_a, tok, n, NOW, &out), 0);
}

/* A forged payload (valid structure, admin=true) with the old MAC. */
static void test_tampered_payload(void **state)
{
    token_claims in = claims("acme", "bob", NOW + 10, false), forged_c, out;
    char tok[TOKEN_TEXT_MAX + 1], forged[TOKEN_TEXT_MAX + 1], mixed[2 * TOKEN_TEXT_MAX];
    const char *mac;
    (void)state;
    assert_int_equal(token_mint(secret_a, &in, tok, sizeof tok), 0);
    forged_c = in;
    forged_c.admin = true;
    assert_int_equal(token_mint(secret_b, &forged_c, forged, sizeof forged), 0);
    /* forged payload + original mac */
    mac = strchr(tok, '.');
    snprintf(mixed, sizeof mixed, "%.*s%s", (int)(strchr(forged, '.') - forged), forged, mac);
    assert_int_equal(token_peek(mixed, strlen(mixed), &out), 0);
    assert_true(out.admin);
    assert_int_equal(token_verify(secret_a, mixed, strlen(mixed), NOW, &out),
                     HERALD_EUNAUTHORIZED);
    /* original payload + mac truncated / extended */
    assert_int_equal(token_verify(secret_a, tok, strlen(tok) - 1, NOW, &out),
                     HERALD_EUNAUTHORIZED);
    snprintf(mixed, sizeof mixed, "%sA", tok);
    assert_int_equal(token_verify(secret_a, mixed, strlen(mixed), NOW, &out),
                     HERALD_EUNAUTHORIZED);
}

/* Encodes raw payload bytes as a token with a valid MAC under secret_a. */
static void sign_raw(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    size_t k;
    crypto_auth_hmacsha256(mac, p, n, secret_a);
    sodium_bin2base64(out, outlen, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    k = strlen(out);
    out[k++] = '.';
    sodium_bin2base64(out + k, outlen - k, mac, sizeof mac,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void test_garbage(void **state)
{
    static const char *const bad[] = {
        "", ".", "..", "abc", "abc.", ".abc", "a.b.c", "!!!!.!!!!", "AAAA.AAAA",
        "gqN0ZW6kYWNtZQ", /* no mac part */
    };
    char big[TOKEN_TEXT_MAX + 10];
    token_claims out;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(token_peek(bad[i], strlen(bad[i]), &out), HERALD_EUNAUTHORIZED);
        assert_int_equal(token_verify(secret_a, bad[i], strlen(bad[i]), NOW, &out),
                         HERALD_EUNAUTHORIZED);
    }
    assert_int_equal(token_peek(NULL, 0, &out), HERALD_EUNAUTHORIZED);
    memset(big, 'A', sizeof big);
    big[100] = '.';
    assert_int_equal(token_peek(big, sizeof big, &out), HERALD_EUNAUTHORIZED);
}

/* Well-signed payloads that are not valid claims are still rejected. */
static void test_signed_bad_payloads(void **state)
{
    static const struct {
        const char *name; /* what is wrong */
        uint8_t b[64];    /* payload */
        size_t n;         /* its length */
    } cases[] = {
        {"not a map", {0x01}, 1},
        {"empty map", {0x80}, 1},
        {"missing exp",
         {0x82, 0xa3, 't', 'e', 'n', 0xa1, 'a', 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b'}, 14},
        {"exp wrong type",
         {0x83, 0xa3, 't', 'e', 'n', 0xa1, 'a', 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b', 0xa3,
          'e', 'x', 'p', 0xa1, '1'},
         20},
        {"bad id char",
         {0x83, 0xa3, 't', 'e', 'n', 0xa1, '/', 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b', 0xa3,
          'e', 'x', 'p', 0xcc, 0xff},
         20},
        {"empty id",
         {0x83, 0xa3, 't', 'e', 'n', 0xa0, 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b', 0xa3, 'e',
          'x', 'p', 0xcc, 0xff},
         19},
        {"repeated ten",
         {0x84, 0xa3, 't', 'e', 'n', 0xa1, 'a', 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b', 0xa3,
          'e', 'x', 'p', 0xcc, 0xff, 0xa3, 't', 'e', 'n', 0xa1, 'c'},
         26},
        {"non-str key",
         {0x84, 0xa3, 't', 'e', 'n', 0xa1, 'a', 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b', 0xa3,
          'e', 'x', 'p', 0xcc, 0xff, 0x01, 0x01},
         22},
        {"trailing byte",
         {0x83, 0xa3, 't', 'e', 'n', 0xa1, 'a', 0xa4, 'u', 's', 'e', 'r', 0xa1, 'b', 0xa3,
          'e', 'x', 'p', 0xcc, 0xff, 0x00},
         21},
        {"nested", {0x81, 0xa3, 't', 'e', 'n', 0x91, 0x01}, 7},
        {"count bomb", {0xdf, 0xff, 0xff, 0xff, 0xff}, 5},
    };
    static const uint8_t good[] = {0x84, 0xa3, 't', 'e', 'n', 0xa1, 'a', 0xa4, 'u', 's',
                                   'e', 'r', 0xa1, 'b', 0xa3, 'e', 'x', 'p', 0xce, 0xff,
                                   0xff, 0xff, 0xff, 0xa1, 'z', 0xc0};
    char tok[TOKEN_TEXT_MAX + 1];
    token_claims out;
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sign_raw(cases[i].b, cases[i].n, tok, sizeof tok);
        if (token_verify(secret_a, tok, strlen(tok), 0, &out) != HERALD_EUNAUTHORIZED)
            fail_msg("accepted: %s", cases[i].name);
    }
    /* Unknown claims (here "z": nil) are skipped; admin is optional. */
    sign_raw(good, sizeof good, tok, sizeof tok);
    assert_int_equal(token_verify(secret_a, tok, strlen(tok), 0, &out), 0);
    assert_string_equal(out.tenant, "a");
    assert_int_equal(out.expires, 0xffffffffu);
    assert_false(out.admin);
}

static void test_invalid_ids_at_mint(void **state)
{
    static const char *const bad[] = {"", "a b", "a/b", "é", "a\n", "a*"};
    char tok[TOKEN_TEXT_MAX + 1];
    token_claims c;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = claims(bad[i], "u", NOW, false);
        assert_int_equal(token_mint(secret_a, &c, tok, sizeof tok), HERALD_EINVAL);
        c = claims("t", bad[i], NOW, false);
        assert_int_equal(token_mint(secret_a, &c, tok, sizeof tok), HERALD_EINVAL);
    }
    /* Not NUL-terminated within the array: too long. */
    c = claims("t", "u", NOW, false);
    memset(c.user, 'u', sizeof c.user);
    assert_int_equal(token_mint(secret_a, &c, tok, sizeof tok), HERALD_EINVAL);
}

static void test_id_valid(void **state)
{
    char id[TOKEN_ID_MAX + 2];
    (void)state;
    assert_true(token_id_valid("Az09._@:-", 9));
    assert_false(token_id_valid("", 0));
    assert_false(token_id_valid(NULL, 3));
    assert_false(token_id_valid("a\0b", 3));
    memset(id, 'a', sizeof id);
    assert_true(token_id_valid(id, TOKEN_ID_MAX));
    assert_false(token_id_valid(id, TOKEN_ID_MAX + 1));
}

static void test_hex(void **state)
{
    uint8_t s[TOKEN_SECRET_LEN], back[TOKEN_SECRET_LEN];
    char hex[TOKEN_SECRET_HEX + 1];
    (void)state;
    token_secret_generate(s);
    token_secret_to_hex(s, hex);
    assert_int_equal(strlen(hex), TOKEN_SECRET_HEX);
    assert_int_equal(token_secret_from_hex(hex, back), 0);
    assert_memory_equal(s, back, sizeof s);
    hex[5] = 'g';
    assert_int_equal(token_secret_from_hex(hex, back), HERALD_EINVAL);
    assert_int_equal(token_secret_from_hex("abcd", back), HERALD_EINVAL);
    assert_int_equal(token_secret_from_hex(NULL, back), HERALD_EINVAL);
    memset(hex, 'A', TOKEN_SECRET_HEX);
    assert_int_equal(token_secret_from_hex(hex, back), 0);
    assert_int_equal(back[0], 0xaa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_admin_flag),
        cmocka_unit_test(test_max_ids),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_tamper_every_char),
        cmocka_unit_test(test_tampered_payload),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_signed_bad_payloads),
        cmocka_unit_test(test_invalid_ids_at_mint),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
