/*
 * checker.h — herald-checker: the proof that an acknowledged message
 * survives crashes and failovers.
 *
 *   checker.c        main, options, credentials, connecting with retries
 *   checker_write.c  `write`: paced sends with exactly-once retries, the ack log
 *   checker_verify.c `verify`: reads every logged conversation back and judges
 *   checker_flood.c  `flood`: many senders and receivers, exactly once and in order
 *   checker_reach.c  `reach`: every stored message reaches every online member
 *                    promptly, through connects, creations and reconnects
 *   checker_quorum.c `quorum`: timed reads while the cluster loses its majority
 *   checker_bigflood.c `bigflood`: pipelined ~1 MiB SENDs from several
 *                    connections; acked = stored, refused = not stored
 *
 * The ack log is a text file, one record per line, appended and flushed as
 * acks arrive (a crash of the checker loses at most the line being written):
 *
 *   run RUNID               the run's id (cmids and conversation ids start with it)
 *   reader USER             a member of every conversation (verify reads as it)
 *   conv CONV               a conversation was created (and acknowledged)
 *   ack CONV SEQ CMID       SEND of CMID was acknowledged at SEQ
 *   unacked CONV CMID       never acknowledged before the run ended: it may
 *                           be stored or not, but at most once
 *   failed CONV CMID CODE   refused with a non-retryable error (as unacked)
 *
 * Only libherald talks to the broker; tokens are minted from HERALD_SECRET
 * and HERALD_TENANT exactly like the herald CLI does (common/token.h).
 */
#ifndef HERALD_CHECKER_H
#define HERALD_CHECKER_H

#include <herald/client.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "token.h"

#define CK_ID_MAX 128            /* bytes of an id (conversation, user, cmid), no NUL */
#define CK_BACKOFF_MIN_MS 50u    /* first pause before a retry */
#define CK_BACKOFF_MAX_MS 2000u  /* longest pause between retries */
#define CK_TOKEN_TTL_S 86400     /* lifetime of a minted token */

/* Where to connect and how to authenticate. Each thread owns its own copy. */
typedef struct ck_env {
    char file[1024];           /* --env FILE (dev.env / cluster.env), re-read before
                                  every connect; "" = the process environment */
    char gateway[256];         /* HERALD_GATEWAY, host:port */
    char tenant[TOKEN_ID_MAX + 1]; /* HERALD_TENANT */
    uint8_t secret[TOKEN_SECRET_LEN]; /* HERALD_SECRET, raw */
    bool loaded;               /* the fields above hold a complete set */
    int timeout_ms;            /* per-request deadline (libherald opts.timeout_ms) */
    bool admin;                /* mint tenant-admin tokens */
} ck_env;

/* Monotonic milliseconds. */
uint64_t ck_now_ms(void);
/* Sleeps ms milliseconds (EINTR-safe). */
void ck_sleep_ms(uint64_t ms);
/* Doubles *backoff within [CK_BACKOFF_MIN_MS, CK_BACKOFF_MAX_MS] and returns
 * the previous value (what to sleep now). */
uint64_t ck_backoff_next(uint64_t *backoff);

/* (Re)loads the credentials: from e->file when set, else from the process
 * environment. On failure keeps the previous set if there was one. Returns
 * 0, or -1 with a message in err when no complete set is available. */
int ck_env_load(ck_env *e, char *err, size_t errlen);

/* One connection attempt as user: reloads the credentials, mints a token,
 * connects. Returns 0 and *out, or a herald_err with a message in err. */
int ck_connect(ck_env *e, const char *user, herald_client **out, char *err, size_t errlen);
/* The same resuming from a saved sync key (NULL: none). */
int ck_connect_key(ck_env *e, const char *user, const uint8_t *key, size_t keylen,
                   herald_client **out, char *err, size_t errlen);

/* Connects as user, retrying with bounded backoff until deadline_ms
 * (monotonic). Prints the first error and every change of error to stderr,
 * prefixed by who. Returns 0 and *out, or the last error. */
int ck_connect_retry(ck_env *e, const char *user, uint64_t deadline_ms, const char *who,
                     herald_client **out);

/* True when a request error leaves the request worth retrying unchanged:
 * connection-level errors and NOT_LEADER, SHUTDOWN, BUSY, RATE_LIMITED,
 * STORAGE, TIMEOUT, INTERNAL, NOMEM. */
bool ck_retryable(int rc);

/* Drops queued pushed events without blocking (at most max of them); a
 * broken connection shows in herald_client_fd afterwards. */
void ck_drain_events(herald_client *c, int max);

/* The two modes; argv excludes the mode word. Exit codes: 0 success,
 * 1 the check failed (verify) or nothing was acknowledged (write),
 * 2 usage or setup error. */
int ck_write_main(int argc, char **argv);
int ck_verify_main(int argc, char **argv);
int ck_flood_main(int argc, char **argv);
int ck_reach_main(int argc, char **argv);
int ck_quorum_main(int argc, char **argv);
int ck_bigflood_main(int argc, char **argv);

/* Option parsing shared by both modes: "--name VALUE" pairs only. */
typedef struct ck_opt {
    const char *name;  /* "--convs" */
    const char **val;  /* receives the value (not copied) */
} ck_opt;
/* 0, or 2 after printing a usage message naming the problem. */
int ck_parse_opts(int argc, char **argv, ck_opt *opts, const char *usage);
/* Parses a decimal integer in [min, max] for option name; 0 or 2 (printed). */
int ck_parse_num(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
