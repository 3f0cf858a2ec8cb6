/* cbsign.c — callback signatures and the retry schedule; see cbsign.h. */
#include "cbsign.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

void cb_sign(const char *secret, const char *token, uint64_t ts_s, const char *nonce,
             const void *body, size_t len, char out[CB_SIG_HEX])
{
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    char ts[24];
    int n = snprintf(ts, sizeof ts, "%llu", (unsigned long long)ts_s);

    crypto_auth_hmacsha256_init(&st, (const uint8_t *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)token, strlen(token));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"\n", 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)ts, (unsigned long long)n);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"\n", 1);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)nonce, strlen(nonce));
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)"\n", 1);
    crypto_auth_hmacsha256_update(&st, body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, CB_SIG_HEX, mac, sizeof mac);
}

void cb_nonce(char out[CB_NONCE_HEX])
{
    uint8_t r[16];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(out, CB_NONCE_HEX, r, sizeof r);
}

uint64_t cb_backoff_ms(uint32_t failed, uint32_t base_ms)
{
    uint64_t d = base_ms ? base_ms : 1;
    for (uint32_t i = 1; i < failed && d < CB_BACKOFF_CAP_MS; i++)
        d *= 2;
    return d < CB_BACKOFF_CAP_MS ? d : CB_BACKOFF_CAP_MS;
}

uint64_t cb_schedule_at_ms(uint32_t n, uint32_t base_ms)
{
    uint64_t t = 0;
    for (uint32_t i = 1; i < n; i++)
        t += cb_backoff_ms(i, base_ms);
    return t;
}
