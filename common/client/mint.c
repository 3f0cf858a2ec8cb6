/* mint.c — the public token API (include/herald/token.h) over the
 * broker's own token code (common/token.c), so that app servers mint
 * exactly what the broker verifies. */
#include <herald/token.h>

#include <sodium.h>
#include <string.h>
#include <time.h>

#include "token.h"

_Static_assert(HERALD_TOKEN_SECRET_LEN == TOKEN_SECRET_LEN, "secret size");
_Static_assert(HERALD_TOKEN_SECRET_HEX == TOKEN_SECRET_HEX, "hex secret size");
_Static_assert(HERALD_TOKEN_ID_MAX == TOKEN_ID_MAX, "id size");
_Static_assert(HERALD_TOKEN_MAX == TOKEN_TEXT_MAX + 1, "token buffer size");

int herald_token_secret_from_hex(const char *hex, uint8_t secret[HERALD_TOKEN_SECRET_LEN])
{
    if (!secret)
        return HERALD_EINVAL;
    if (token_secret_from_hex(hex, secret) != 0) {
        sodium_memzero(secret, HERALD_TOKEN_SECRET_LEN);
        return HERALD_EINVAL;
    }
    return 0;
}

/* Checks the arguments and fills *cl. 0, HERALD_EINVAL or HERALD_EINTERNAL. */
static int mint_claims(const uint8_t *secret, size_t secret_len, const char *tenant,
                       const char *user, uint64_t ttl_s, bool admin, token_claims *cl)
{
    size_t tl, ul;
    time_t now;

    if (!secret || secret_len != TOKEN_SECRET_LEN || !tenant || !user || ttl_s == 0)
        return HERALD_EINVAL;
    tl = strnlen(tenant, TOKEN_ID_MAX + 1);
    ul = strnlen(user, TOKEN_ID_MAX + 1);
    if (!token_id_valid(tenant, tl) || !token_id_valid(user, ul))
        return HERALD_EINVAL;
    now = time(NULL);
    if (now == (time_t)-1 || now < 0)
        return HERALD_EINTERNAL;
    if (ttl_s > UINT64_MAX - (uint64_t)now)
        return HERALD_EINVAL;
    memcpy(cl->tenant, tenant, tl + 1);
    memcpy(cl->user, user, ul + 1);
    cl->expires = (uint64_t)now + ttl_s;
    cl->admin = admin;
    return 0;
}

int herald_token_mint(const uint8_t *secret, size_t secret_len, const char *tenant,
                      const char *user, uint64_t ttl_s, bool admin, char *out, size_t cap)
{
    token_claims cl = {0};
    int rc;

    if (!out)
        return HERALD_EINVAL;
    if (cap > 0)
        out[0] = '\0';
    rc = herald_token_init();
    if (rc == 0)
        rc = mint_claims(secret, secret_len, tenant, user, ttl_s, admin, &cl);
    if (rc == 0)
        rc = token_mint(secret, &cl, out, cap);
    if (rc && cap > 0)
        out[0] = '\0';
    return rc;
}
