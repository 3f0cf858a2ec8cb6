/*
 * fixture.h — the unit tests' store fixture: an LMDB store in a fresh
 * temporary directory, and commands applied to it one at a time with
 * increasing indexes, as a raft group or the dev-mode writer would.
 *
 * Each test file keeps its own run() on top of fx_apply: which tenant and
 * timestamp it fills in, and which parts of the result it hands back.
 * Failures are cmocka assertions (the test stops). Single-threaded.
 */
#ifndef HERALD_TESTS_FIXTURE_H
#define HERALD_TESTS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"
#include "cmd.h"
#include "store.h"
#include "token.h"

#define FX_LOG_MAX 400u /* commands fx_apply keeps when keep_log is set */

typedef struct fx {
    char dir[64];                /* data dir, /tmp/herald-NAME-XXXXXX */
    store *st;                   /* open store */
    uint64_t next;               /* next command index */
    bool keep_log;               /* fx_apply keeps every command in log */
    herald_buf log[FX_LOG_MAX];  /* the commands applied, encoded, in order */
    uint32_t n_log;              /* entries of log */
} fx;

/* A new directory /tmp/herald-NAME-XXXXXX with an empty store open in it
 * (default map sizes, no fsync). Free with fx_free. */
fx *fx_new(const char *name);

/* Opens the store of f->dir (after a store_close: again, as after a
 * restart) with these map sizes (0: the defaults); next = applied + 1. */
void fx_open(fx *f, size_t map_size, size_t map_max);

/* Closes the store, removes the directory, frees the log and f. */
void fx_free(fx *f);

/* Encodes k as it is and applies it alone at index f->next++; asserts that
 * the batch committed. *r is the command's result (the caller frees it). */
void fx_apply(fx *f, const cmd *k, apply_result *r);

/* A fresh tenant secret, as hex (TENANT_CREATE's secret). */
void fx_secret_hex(char hex[TOKEN_SECRET_HEX + 1]);

#endif
