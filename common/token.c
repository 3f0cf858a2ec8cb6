/* token.c — HMAC-SHA-256 tokens; see token.h. */
#include "token.h"

#include <herald/error.h>
#include <msgpack.h>
#include <sodium.h>
#include <string.h>

#include "mpcheck.h"

#define TOKEN_PAYLOAD_MAX 512u /* bytes of the msgpack claims */

int herald_token_init(void) { return sodium_init() < 0 ? HERALD_EINTERNAL : 0; }

void token_secret_generate(uint8_t secret[TOKEN_SECRET_LEN])
{
    randombytes_buf(secret, TOKEN_SECRET_LEN);
}

void token_secret_to_hex(const uint8_t secret[TOKEN_SECRET_LEN],
                         char hex[TOKEN_SECRET_HEX + 1])
{
    sodium_bin2hex(hex, TOKEN_SECRET_HEX + 1, secret, TOKEN_SECRET_LEN);
}

int token_secret_from_hex(const char *hex, uint8_t secret[TOKEN_SECRET_LEN])
{
    size_t n = 0;
    if (!hex || strlen(hex) != TOKEN_SECRET_HEX)
        return HERALD_EINVAL;
    if (sodium_hex2bin(secret, TOKEN_SECRET_LEN, hex, TOKEN_SECRET_HEX, NULL, &n, NULL) != 0 ||
        n != TOKEN_SECRET_LEN)
        return HERALD_EINVAL;
    return 0;
}

bool token_id_valid(const char *id, size_t len)
{
    if (!id || len == 0 || len > TOKEN_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* Packer sink into a fixed buffer; a write that does not fit fails and
 * sets `failed` (sticky), checked once after packing. */
typedef struct fixed_sink {
    uint8_t *p;  /* buffer */
    size_t cap;  /* capacity in bytes */
    size_t len;  /* bytes used */
    bool failed; /* a write did not fit */
} fixed_sink;

static int fixed_write(void *data, const char *p, size_t n)
{
    fixed_sink *s = data;
    if (s->failed || n > s->cap - s->len) {
        s->failed = true;
        return -1;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    return 0;
}

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, strlen(v));
    msgpack_pack_str_body(pk, v, strlen(v));
}

int token_mint(const uint8_t secret[TOKEN_SECRET_LEN], const token_claims *c, char *out,
               size_t outlen)
{
    uint8_t payload[TOKEN_PAYLOAD_MAX];
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    fixed_sink sink = {.p = payload, .cap = sizeof payload};
    msgpack_packer pk;
    size_t b64p, b64m;

    if (!token_id_valid(c->tenant, strnlen(c->tenant, TOKEN_ID_MAX + 1)) ||
        !token_id_valid(c->user, strnlen(c->user, TOKEN_ID_MAX + 1)))
        return HERALD_EINVAL;
    msgpack_packer_init(&pk, &sink, fixed_write);
    msgpack_pack_map(&pk, 4);
    pack_kv_str(&pk, "ten", c->tenant);
    pack_kv_str(&pk, "user", c->user);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "exp", 3);
    msgpack_pack_uint64(&pk, c->expires);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "admin", 5);
    if (c->admin)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (sink.failed)
        return HERALD_ETOO_BIG; /* cannot happen with ids ≤ TOKEN_ID_MAX */
    crypto_auth_hmacsha256(mac, payload, sink.len, secret);
    b64p = sodium_base64_ENCODED_LEN(sink.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    b64m = sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    /* Each ENCODED_LEN counts a NUL: the first becomes the '.', the second
     * terminates the text, so the text is b64p + b64m - 1 characters. */
    if (b64p + b64m > outlen || b64p + b64m - 1 > TOKEN_TEXT_MAX)
        return HERALD_ETOO_BIG;
    sodium_bin2base64(out, b64p, payload, sink.len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out[b64p - 1] = '.';
    sodium_bin2base64(out + b64p, b64m, mac, sizeof mac,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

/* Splits tok into decoded payload and mac. 0 or HERALD_EUNAUTHORIZED. */
static int split(const char *tok, size_t len, uint8_t *payload, size_t *plen,
                 uint8_t mac[crypto_auth_hmacsha256_BYTES])
{
    const char *dot;
    size_t mlen = 0;

    if (!tok || len == 0 || len > TOKEN_TEXT_MAX)
        return HERALD_EUNAUTHORIZED;
    dot = memchr(tok, '.', len);
    if (!dot)
        return HERALD_EUNAUTHORIZED;
    if (sodium_base642bin(payload, TOKEN_PAYLOAD_MAX, tok, (size_t)(dot - tok), NULL, plen,
                          NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        sodium_base642bin(mac, crypto_auth_hmacsha256_BYTES, dot + 1,
                          len - (size_t)(dot - tok) - 1, NULL, &mlen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        mlen != crypto_auth_hmacsha256_BYTES)
        return HERALD_EUNAUTHORIZED;
    return 0;
}

/* Copies a msgpack str holding a valid id into dst. */
static bool take_id(const msgpack_object *o, char dst[TOKEN_ID_MAX + 1])
{
    if (o->type != MSGPACK_OBJECT_STR || !token_id_valid(o->via.str.ptr, o->via.str.size))
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return true;
}

/* Claim keys; the bit of each is 1 << its index. */
enum { CLAIM_TEN, CLAIM_USER, CLAIM_EXP, CLAIM_ADMIN, CLAIM_COUNT_ };
static const char *const claim_keys[CLAIM_COUNT_] = {"ten", "user", "exp", "admin"};
#define CLAIMS_REQUIRED (1u << CLAIM_TEN | 1u << CLAIM_USER | 1u << CLAIM_EXP)

/* Index of the claim named by msgpack str k, or CLAIM_COUNT_ (unknown). */
static unsigned claim_index(const msgpack_object *k)
{
    for (unsigned i = 0; i < CLAIM_COUNT_; i++)
        if (k->via.str.size == strlen(claim_keys[i]) &&
            memcmp(k->via.str.ptr, claim_keys[i], k->via.str.size) == 0)
            return i;
    return CLAIM_COUNT_;
}

/* Stores claim `idx` from v into out. False on a wrong type or bad id. */
static bool take_claim(unsigned idx, const msgpack_object *v, token_claims *out)
{
    switch (idx) {
    case CLAIM_TEN:
        return take_id(v, out->tenant);
    case CLAIM_USER:
        return take_id(v, out->user);
    case CLAIM_EXP:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return false;
        out->expires = v->via.u64;
        return true;
    case CLAIM_ADMIN:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return false;
        out->admin = v->via.boolean;
        return true;
    default:
        return true; /* unknown claims are skipped */
    }
}

/* Parses the claims map p[0..n): exactly one map with str keys, "ten",
 * "user" (valid ids) and "exp" (uint) required once each, "admin" (bool)
 * optional, unknown keys skipped. 0 or HERALD_EUNAUTHORIZED; *out is
 * zeroed on error. */
static int parse_claims(const uint8_t *p, size_t n, token_claims *out)
{
    msgpack_unpacked up;
    size_t off = 0;
    unsigned found = 0;
    int rc = HERALD_EUNAUTHORIZED;

    memset(out, 0, sizeof *out);
    if (mp_check(p, n, 1) != 0)
        return HERALD_EUNAUTHORIZED;
    msgpack_unpacked_init(&up);
    if (msgpack_unpack_next(&up, (const char *)p, n, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != n || up.data.type != MSGPACK_OBJECT_MAP)
        goto fail_unpacked;
    for (uint32_t i = 0; i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key;
        unsigned idx;
        if (k->type != MSGPACK_OBJECT_STR)
            goto fail_unpacked;
        idx = claim_index(k);
        if (idx < CLAIM_COUNT_ && (found & 1u << idx))
            goto fail_unpacked; /* a repeated claim is ambiguous */
        if (!take_claim(idx, &up.data.via.map.ptr[i].val, out))
            goto fail_unpacked;
        if (idx < CLAIM_COUNT_)
            found |= 1u << idx;
    }
    if ((found & CLAIMS_REQUIRED) != CLAIMS_REQUIRED)
        goto fail_unpacked;
    msgpack_unpacked_destroy(&up);
    return 0;

fail_unpacked:
    msgpack_unpacked_destroy(&up);
    memset(out, 0, sizeof *out);
    return rc;
}

int token_peek(const char *tok, size_t len, token_claims *out)
{
    uint8_t payload[TOKEN_PAYLOAD_MAX], mac[crypto_auth_hmacsha256_BYTES];
    size_t plen = 0;
    int rc = split(tok, len, payload, &plen, mac);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    return parse_claims(payload, plen, out);
}

int token_verify(const uint8_t secret[TOKEN_SECRET_LEN], const char *tok, size_t len,
                 uint64_t now, token_claims *out)
{
    uint8_t payload[TOKEN_PAYLOAD_MAX], mac[crypto_auth_hmacsha256_BYTES];
    size_t plen = 0;
    int rc = split(tok, len, payload, &plen, mac);

    memset(out, 0, sizeof *out);
    if (rc)
        return rc;
    if (crypto_auth_hmacsha256_verify(mac, payload, plen, secret) != 0)
        return HERALD_EUNAUTHORIZED;
    rc = parse_claims(payload, plen, out);
    if (rc)
        return rc;
    if (out->expires <= now) {
        memset(out, 0, sizeof *out);
        return HERALD_EEXPIRED;
    }
    return 0;
}
