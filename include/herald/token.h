/*
 * herald/token.h — access tokens for app servers that log their users in.
 *
 * A Herald connection authenticates with a token (herald_client_connect's
 * `token`) naming a tenant, a user, an expiry and whether the user is a
 * tenant admin, signed with the tenant's secret (HMAC-SHA-256). The broker
 * holds every tenant's secret; a tenant's app server holds its own
 * (distributed as 64 hex characters, HERALD_SECRET in the env files
 * heraldd writes: dev.env, tenant-NAME.env) and mints a token for each of
 * its users after logging them in. The broker accepts a token whose MAC
 * verifies with the tenant's secret and whose expiry is later than its own
 * clock; it trusts the identity in it completely, so keep the secret on
 * the server: never ship it to a client device.
 *
 * Text form (opaque to callers): base64url(msgpack claims) "." base64url(MAC),
 * ASCII, no padding, at most HERALD_TOKEN_MAX - 1 characters.
 *
 * Threads: both calls are reentrant and may run on any thread at once;
 * they keep no state (libsodium is initialised on first use, thread-safely).
 *
 * Ownership: the caller owns every buffer; inputs are only read during the
 * call and nothing is kept, copied or freed. The library never stores the
 * secret; wipe your copy when done (sodium_memzero, explicit_bzero).
 */
#ifndef HERALD_TOKEN_H
#define HERALD_TOKEN_H

#include <herald/error.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERALD_TOKEN_SECRET_LEN 32u /* bytes of a tenant secret */
#define HERALD_TOKEN_SECRET_HEX 64u /* hex characters of a secret (NUL not counted) */
#define HERALD_TOKEN_ID_MAX 128u    /* bytes of a tenant or user id */
#define HERALD_TOKEN_MAX 1025u      /* a buffer this big holds any token, NUL included */

/* Decodes a tenant secret from its hex form (exactly HERALD_TOKEN_SECRET_HEX
 * hex digits, either case, nothing before or after: strip the newline of a
 * line read from a file) into secret[0..HERALD_TOKEN_SECRET_LEN).
 * Returns 0, or HERALD_EINVAL (hex or secret NULL, wrong length, a non-hex
 * character); on error secret is zeroed (when not NULL). */
int herald_token_secret_from_hex(const char *hex, uint8_t secret[HERALD_TOKEN_SECRET_LEN]);

/* Mints a token for user of tenant, valid for ttl_s seconds from now (the
 * system clock, time(2); the broker checks the expiry against its clock, so
 * allow for skew), with the tenant-admin role when admin. secret is the
 * tenant's secret, secret_len bytes (must be HERALD_TOKEN_SECRET_LEN). ids:
 * 1..HERALD_TOKEN_ID_MAX bytes of [A-Za-z0-9._@:-], NUL-terminated. Writes
 * the token, NUL-terminated, to out (cap bytes; HERALD_TOKEN_MAX is always
 * enough). Returns 0; HERALD_EINVAL (secret, tenant, user or out NULL, a
 * wrong secret_len, an invalid id, ttl_s 0 or so large that the expiry
 * overflows); HERALD_ETOO_BIG (cap too small); HERALD_EINTERNAL (libsodium
 * could not initialise, or no clock). On error out (when not NULL and cap
 * > 0) holds "". The token carries no nonce: the same arguments within the
 * same second give the same text. */
int herald_token_mint(const uint8_t *secret, size_t secret_len, const char *tenant,
                      const char *user, uint64_t ttl_s, bool admin, char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
