/*
 * token.h — signed access tokens (HMAC-SHA-256 via libsodium).
 *
 * Text form: base64url(payload) "." base64url(mac), no padding, where payload
 * is a msgpack map {"ten": tenant, "user": user, "exp": expiry (Unix seconds),
 * "admin": bool} and mac = HMAC-SHA-256(tenant secret, payload). The tenant a
 * connection acts for comes only from a token whose MAC verified.
 *
 * Thread safety: reentrant; call herald_token_init() once before use
 * (idempotent, thread-safe: it wraps sodium_init).
 */
#ifndef HERALD_COMMON_TOKEN_H
#define HERALD_COMMON_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_SECRET_LEN 32u   /* raw secret bytes */
#define TOKEN_SECRET_HEX 64u   /* hex characters of a secret (no NUL) */
#define TOKEN_ID_MAX 128u      /* max bytes of a tenant or user id */
#define TOKEN_TEXT_MAX 1024u   /* max bytes of a token's text form */

typedef struct token_claims {
    char tenant[TOKEN_ID_MAX + 1]; /* NUL-terminated tenant id */
    char user[TOKEN_ID_MAX + 1];   /* NUL-terminated user id */
    uint64_t expires;              /* Unix seconds */
    bool admin;                    /* tenant-admin role */
} token_claims;

/* 0, or HERALD_EINTERNAL when libsodium cannot initialise. */
int herald_token_init(void);

/* Fills secret with TOKEN_SECRET_LEN random bytes. */
void token_secret_generate(uint8_t secret[TOKEN_SECRET_LEN]);

/* Hex <-> raw secret. parse: 0 or HERALD_EINVAL (not 64 hex chars). */
void token_secret_to_hex(const uint8_t secret[TOKEN_SECRET_LEN],
                         char hex[TOKEN_SECRET_HEX + 1]);
int token_secret_from_hex(const char *hex, uint8_t secret[TOKEN_SECRET_LEN]);

/* True when id is a valid tenant/user/conversation id: 1..TOKEN_ID_MAX bytes
 * of [A-Za-z0-9._@:-]. */
bool token_id_valid(const char *id, size_t len);

/* Mints a token into out (NUL-terminated). Returns 0, HERALD_EINVAL (bad id)
 * or HERALD_ETOO_BIG (outlen too small). */
int token_mint(const uint8_t secret[TOKEN_SECRET_LEN], const token_claims *c,
               char *out, size_t outlen);

/* Reads the claims WITHOUT verifying (to learn which tenant's secret to use).
 * 0 or HERALD_EUNAUTHORIZED (malformed). */
int token_peek(const char *tok, size_t len, token_claims *out);

/* Verifies the MAC with `secret` and the expiry against `now` (Unix seconds).
 * Returns 0 and fills *out; HERALD_EUNAUTHORIZED (malformed or bad MAC);
 * HERALD_EEXPIRED. Constant-time MAC comparison. */
int token_verify(const uint8_t secret[TOKEN_SECRET_LEN], const char *tok,
                 size_t len, uint64_t now, token_claims *out);

#endif
