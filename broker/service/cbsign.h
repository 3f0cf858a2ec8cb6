/*
 * cbsign.h — what an event callback's receiver can check and rely on: the
 * signature of a POST and the retry schedule.
 *
 * Signature: lowercase hex of HMAC-SHA-256 with the app's secret (the 64
 * hex characters, as bytes) as key over
 *     token "\n" timestamp "\n" nonce "\n" body
 * (timestamp: decimal Unix seconds, as sent in X-Herald-Timestamp).
 *
 * Schedule: after the n-th failed attempt (n ≥ 1) the next comes
 * base × 2^(n-1) later, at most CB_BACKOFF_CAP_MS; with the defaults
 * (base 1 s, 23 attempts) 1, 2, 4 … 1024 s, then every 30 min: the 23rd
 * and last attempt is 21,847 s (6 h 4 min) after the first.
 *
 * Thread safety: reentrant (libsodium initialised first).
 */
#ifndef HERALD_SERVICE_CBSIGN_H
#define HERALD_SERVICE_CBSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CB_SIG_HEX 65u                       /* 64 hex digits + NUL */
#define CB_NONCE_HEX 33u                     /* 32 hex digits + NUL */
#define CB_BACKOFF_CAP_MS (30u * 60u * 1000u) /* longest wait between attempts */
#define CB_ATTEMPTS_DEFAULT 23u
#define CB_BACKOFF_DEFAULT_MS 1000u
#define CB_TIMEOUT_DEFAULT_MS 5000u

/* out = hex HMAC-SHA-256(secret, token \n ts \n nonce \n body). */
void cb_sign(const char *secret, const char *token, uint64_t ts_s, const char *nonce,
             const void *body, size_t len, char out[CB_SIG_HEX]);

/* A fresh random nonce (32 hex digits). */
void cb_nonce(char out[CB_NONCE_HEX]);

/* The wait after `failed` failed attempts (≥ 1) with first wait base_ms. */
uint64_t cb_backoff_ms(uint32_t failed, uint32_t base_ms);

/* Milliseconds from the first attempt to attempt number n (1-based). */
uint64_t cb_schedule_at_ms(uint32_t n, uint32_t base_ms);

#endif
