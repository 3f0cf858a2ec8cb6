/* token_errors.c — herald/token.h's contract, built against the installed
 * library like hello.c: every error code the header lists, "" in out after
 * an error, a zeroed secret after a bad hex, and the sizes it promises.
 * Prints one line per failed check; exit status 0 when none failed. */
#include <herald/token.h>
#include <stdio.h>
#include <string.h>

static int fails;

static void check(int cond, const char *what)
{
    if (!cond) {
        printf("FAIL %s\n", what);
        fails++;
    }
}

int main(void)
{
    static const char hex[] = "00112233445566778899aabbccddeeffFFEEDDCCBBAA99887766554433221100";
    uint8_t secret[HERALD_TOKEN_SECRET_LEN], zero[HERALD_TOKEN_SECRET_LEN] = {0};
    char out[HERALD_TOKEN_MAX], id[HERALD_TOKEN_ID_MAX + 2];
    size_t len;

    check(herald_token_secret_from_hex(hex, secret) == 0, "hex: valid, mixed case");
    check(secret[0] == 0x00 && secret[1] == 0x11 && secret[16] == 0xff, "hex: bytes");
    check(herald_token_secret_from_hex(NULL, secret) == HERALD_EINVAL, "hex: NULL");
    check(memcmp(secret, zero, sizeof secret) == 0, "hex: zeroed after an error");
    check(herald_token_secret_from_hex("abc", secret) == HERALD_EINVAL, "hex: short");
    check(herald_token_secret_from_hex(
              "00112233445566778899aabbccddeeffffeeddccbbaa99887766554433221100\n", secret) ==
              HERALD_EINVAL, "hex: trailing newline");
    check(herald_token_secret_from_hex(
              "g0112233445566778899aabbccddeeffffeeddccbbaa998877665544332211zz", secret) ==
              HERALD_EINVAL, "hex: not hex");
    check(herald_token_secret_from_hex(hex, NULL) == HERALD_EINVAL, "hex: NULL secret");
    herald_token_secret_from_hex(hex, secret);

#define MINT(t, u, ttl, o, cap) herald_token_mint(secret, sizeof secret, t, u, ttl, false, o, cap)
    check(MINT("demo", "alice", 60, out, sizeof out) == 0, "mint: valid");
    len = strlen(out);
    check(len > 0 && len < HERALD_TOKEN_MAX && strchr(out, '.') != NULL, "mint: text form");
    check(herald_token_mint(secret, sizeof secret, "demo", "alice", 60, true, out,
                            sizeof out) == 0, "mint: admin");
    check(MINT("demo", "alice", 60, out, len) == HERALD_ETOO_BIG && out[0] == '\0',
          "mint: cap one short → ETOO_BIG, out \"\"");
    check(MINT("demo", "alice", 60, out, 0) == HERALD_ETOO_BIG, "mint: cap 0");
    check(MINT("demo", "alice", 60, NULL, 64) == HERALD_EINVAL, "mint: out NULL");
    check(herald_token_mint(NULL, 32, "demo", "alice", 60, false, out, sizeof out) ==
              HERALD_EINVAL && out[0] == '\0', "mint: secret NULL, out \"\"");
    check(herald_token_mint(secret, 31, "demo", "alice", 60, false, out, sizeof out) ==
              HERALD_EINVAL, "mint: secret_len 31");
    check(MINT(NULL, "alice", 60, out, sizeof out) == HERALD_EINVAL, "mint: tenant NULL");
    check(MINT("demo", NULL, 60, out, sizeof out) == HERALD_EINVAL, "mint: user NULL");
    check(MINT("demo", "", 60, out, sizeof out) == HERALD_EINVAL, "mint: user empty");
    check(MINT("demo", "a b", 60, out, sizeof out) == HERALD_EINVAL, "mint: user 'a b'");
    check(MINT("demo", "alice", 0, out, sizeof out) == HERALD_EINVAL, "mint: ttl 0");
    check(MINT("demo", "alice", UINT64_MAX, out, sizeof out) == HERALD_EINVAL,
          "mint: ttl overflows");
    memset(id, 'u', sizeof id);
    id[HERALD_TOKEN_ID_MAX] = '\0';
    check(MINT(id, id, 60, out, sizeof out) == 0 && strlen(out) < HERALD_TOKEN_MAX,
          "mint: ids of HERALD_TOKEN_ID_MAX bytes fit HERALD_TOKEN_MAX");
    id[HERALD_TOKEN_ID_MAX] = 'u';
    id[HERALD_TOKEN_ID_MAX + 1] = '\0';
    check(MINT("demo", id, 60, out, sizeof out) == HERALD_EINVAL, "mint: id one too long");
    printf("%d failure(s)\n", fails);
    return fails != 0;
}
