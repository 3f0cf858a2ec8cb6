/*
 * config.h — one table per configuration: key name, type, bounds, default,
 * offset into the caller's struct. The same table parses files, fills
 * defaults, validates, and prints a documented sample (deploy/herald.conf is
 * generated from it), so the code and the documentation cannot drift.
 *
 * File format: "key = value" lines; '#' starts a comment; keys are
 * "section.name"; a "[section]" line prefixes the keys that follow.
 * Values: integers (decimal, optional k/M/G suffix for sizes), booleans
 * (true/false), strings (rest of the line, trimmed; may be "quoted").
 *
 * Errors name the file, the line and the key: "herald.conf:12: node.id:
 * must be between 1 and 64". Unknown keys are errors (typos are caught).
 *
 * Thread safety: reentrant; no global state.
 */
#ifndef HERALD_COMMON_CONFIG_H
#define HERALD_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum cfg_type {
    CFG_U32,    /* uint32_t, bounds inclusive */
    CFG_U64,    /* uint64_t (sizes accept k/M/G), bounds inclusive */
    CFG_BOOL,   /* bool */
    CFG_STR,    /* char[len] inside the struct, NUL-terminated */
} cfg_type;

typedef struct cfg_key {
    const char *name;    /* "section.key" */
    cfg_type type;       /* representation */
    size_t off;          /* offset in the target struct */
    size_t len;          /* CFG_STR: buffer size */
    uint64_t min, max;   /* CFG_U32/U64 bounds; CFG_STR: min 1 = required */
    const char *def;     /* default as text ("" = none) */
    const char *help;    /* one line for the sample file */
} cfg_key;

/* Fills every key's default into target. */
void cfg_defaults(const cfg_key *tab, size_t n, void *target);

/* Sets one key from text. On error writes a message (without file/line)
 * into err and returns HERALD_EINVAL (unknown key, bad value, out of range). */
int cfg_set(const cfg_key *tab, size_t n, void *target, const char *key, const char *value,
            char *err, size_t errlen);

/* Parses a file over what target holds (defaults, usually). Returns 0,
 * HERALD_EIO (cannot read; err says why) or HERALD_EINVAL (err holds
 * "FILE:LINE: key: problem"). */
int cfg_load(const cfg_key *tab, size_t n, void *target, const char *path, char *err,
             size_t errlen);

/* After file and flags: a required string key (min 1) still empty is an
 * error "key: required". 0 or HERALD_EINVAL. */
int cfg_check_required(const cfg_key *tab, size_t n, const void *target, char *err,
                       size_t errlen);

/* Writes a sample file: every key with its help and default. */
void cfg_write_sample(const cfg_key *tab, size_t n, FILE *f);

#endif
