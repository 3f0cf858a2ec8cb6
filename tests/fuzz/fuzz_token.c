/*
 * fuzz_token.c — libFuzzer target for token parsing: token_peek and
 * token_verify (fixed secret) on arbitrary text. A token that verifies must
 * also peek to the same claims, and claims must always be valid ids.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <herald/error.h>

#include "token.h"

/* The secret the seed corpus was minted with: bytes 0, 1, 2, …, 31. */
static void fuzz_secret(uint8_t s[TOKEN_SECRET_LEN])
{
    for (unsigned i = 0; i < TOKEN_SECRET_LEN; i++)
        s[i] = (uint8_t)i;
}

static int claims_sane(const token_claims *c)
{
    return token_id_valid(c->tenant, strlen(c->tenant)) && token_id_valid(c->user, strlen(c->user));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t secret[TOKEN_SECRET_LEN];
    token_claims peeked, verified;
    const char *tok = (const char *)data;
    int prc, vrc;

    if (herald_token_init() != 0)
        abort();
    fuzz_secret(secret);
    prc = token_peek(tok, size, &peeked);
    if (prc != 0 && prc != HERALD_EUNAUTHORIZED)
        abort();
    if (prc == 0 && !claims_sane(&peeked))
        abort();
    /* now = 1: every seed with a later expiry verifies. */
    vrc = token_verify(secret, tok, size, 1, &verified);
    if (vrc != 0 && vrc != HERALD_EUNAUTHORIZED && vrc != HERALD_EEXPIRED)
        abort();
    if (vrc == 0 || vrc == HERALD_EEXPIRED) {
        /* The MAC verified, so the structure must have parsed for peek too. */
        if (prc != 0)
            abort();
    }
    if (vrc == 0 && (memcmp(&peeked, &verified, sizeof peeked) != 0 || !claims_sane(&verified)))
        abort();
    return 0;
}
