/*
 * cmd.h — replicated commands: the only way state changes.
 *
 * A command is a msgpack map (no length header) so it can sit in a raft log
 * entry unchanged. Everything apply needs is inside the command — including
 * the commit timestamp, stamped once by the proposer — so applying the same
 * command twice on any replica yields the same state (apply is deterministic).
 *
 * Keys: "op" uint, "ten" str, "user" str (actor), "admin" bool, "conv" str,
 * "cmid" str, "body" bin, "kind" str, "flags" uint, "seq" uint, "ts" uint,
 * "cap" uint, "win" uint, "ivl" uint, "max" uint, "secret" str (hex),
 * "mem" array of str, "ext" array of str, "tgt" str, "name" str, "title" str,
 * "dept" str, "parent" str, "corp" str, "dps" / "tgs" arrays of str, "dwin",
 * "freq", "clim", "xwait" uint.
 *
 * Thread safety: reentrant.
 */
#ifndef HERALD_STORE_CMD_H
#define HERALD_STORE_CMD_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>

/* X(NAME, number) */
#define CMD_OPS(X)                                                            \
    X(TENANT_CREATE, 1) /* tenant, secret (hex), cap (default group cap)  */  \
    X(CONV_CREATE, 2)   /* tenant, user, admin, conv, kind, mem, cap, ts  */  \
    X(CONV_ADD, 3)      /* tenant, user, admin, conv, mem, ts             */  \
    X(CONV_REMOVE, 4)   /* tenant, user, admin, conv, mem, ts             */  \
    X(SEND, 5)          /* tenant, user, conv, cmid, body, flags, ts      */  \
    X(READ, 6)          /* tenant, user, conv, seq, ts                    */  \
    X(RECALL, 7)        /* tenant, user, admin, conv, seq, win, ts        */  \
    X(DND, 8)           /* tenant, user, flags (1 on), seq (until ms), ts */  \
    X(CONFIRM, 9)       /* tenant, user, conv, seq, ts                    */  \
    X(REMIND, 10)       /* ts: every reminder of this shard due at ts     */  \
    X(DIR_USER, 11)     /* tenant, user, admin, target, kind, name, title, dept, ts */ \
    X(DIR_DEPT, 12)     /* tenant, user, admin, dept, name, parent, ts    */  \
    X(CONTACT_ADD, 13)  /* tenant, user, admin, target (employee), name
                           (customer), conv (their 1:1), ts               */  \
    X(TAG, 14)          /* tenant, user, admin, target (customer), kind
                           ("add" | "remove"), mem (tags), ts             */  \
    X(MASS_MARK, 15)    /* tenant, user, admin, cmid (mass id), mem
                           (customers), ts: who may get it today          */ \
    X(SLOTMAP, 16)      /* body: HERALD_SLOTS bytes, the shard group of
                           each slot (meta group; written once)           */ \
    X(APP_MARK, 17)     /* tenant, user, admin, target (app id), cmid
                           (message id), kind ("send" | "announce"), mem
                           (users, "@all"), depts, tags, win (duplicate
                           window s), cap (per member per app per minute),
                           ts: who gets it (meta group)                   */ \
    X(APP_DELIVER, 18)  /* tenant, user (sender "app:ID"), admin, conv, kind
                           ("single" | "announce"), mem (recipients), cmid,
                           body, ts: creates the conversation if missing,
                           then appends once per cmid (conv's group)      */ \
    X(TRANSFER_MARK, 19) /* tenant, user, admin, target (from), name (to),
                           mem (customers), flags (CMD_XFER_RESIGNED), cap
                           (taker's customer limit), win (wait s), ts; kind
                           "refuse": user (a customer) objects (meta)     */ \
    X(TRANSFER_DUE, 20) /* ts: every transfer of this meta group whose
                           takeover is due at ts starts moving            */ \
    X(CONV_HANDOVER, 21) /* tenant, user, admin, conv, target (from), name
                           (to), flags (CMD_XFER_RESIGNED), ts: the
                           conversation passes from → to (conv's group)   */ \
    X(TRANSFER_DONE, 22) /* tenant, user, admin, target (from), name (to),
                           mem ([customer]), conv, ts: the contact moves
                           (meta group)                                   */ \
    X(APP_CREATE, 23)   /* tenant, user, admin, target (app id), name,
                           flags (APP_SCOPE_* bits), secret (hex SHA-256
                           of the app's secret), ts (meta group)          */ \
    X(APP_CALLBACK, 30) /* tenant, user, admin, target (app id), name (URL;
                           "" removes it), cmid (token), secret (64 hex),
                           flags (CMD_CB_ALL), tags (the event types it
                           wants, ob_type_names; none: every type), ts:
                           an app's event callback
                           (meta group; token and secret drawn by the
                           proposer so every replica stores the same)     */ \
    X(OUTBOX, 31)       /* kind "ack" | "retry" | "fail" | "requeue" |
                           "prune"; tenant, target (app), seq (event), cap
                           (attempts), win (next attempt, ms), name (last
                           error), flags (CMD_OB_*), ts: the callback
                           deliverer's progress in this group's outbox
                           (any group; see apply_outbox.c)                */ \
    X(OFFLINE, 32)      /* tenant, oconvs / oseqs / ocounts (one report per
                           message: conv, seq, how many of mem are its
                           users), mem (those users, report after report),
                           ts: recipients no session tier had online when
                           the message was pushed (conv's group; see
                           apply_offline.c)                               */

typedef enum cmd_op {
#define CMD_OP_ENUM_(name, num) CMD_##name = num,
    CMD_OPS(CMD_OP_ENUM_)
#undef CMD_OP_ENUM_
    CMD_OP_COUNT_
} cmd_op;

/* The tenant has switched read receipts off (TENANT_CREATE stores it; the
 * gateway copies it into READ so no receipt events are produced). */
#define CMD_TENANT_NO_RECEIPTS 0x1u
/* TRANSFER_MARK / CONV_HANDOVER: the owner has resigned (no wait; the old
 * owner leaves customer groups). */
#define CMD_XFER_RESIGNED 0x1u
/* CONV_CREATE of a server-derived id (contacts, apps): the conversation may
 * exist already, but only as exactly this one (same kind and members); then
 * the answer is a duplicate, anything else is EXISTS "taken". */
#define CMD_CONV_EXPECT 0x2u
/* SEND / READ: the gateway read every member's kind from the directory at
 * the time of the request (CMD_KINDS_READ), and some member is external now
 * (CMD_EXTERNAL_NOW): an employee's message gets its certified identity, a
 * read produces no receipt events. Without CMD_KINDS_READ (commands written
 * before it existed, re-applied) the member records' join-time flags decide.
 * Both sit above every HERALD_MSGF_* bit and are never stored. */
#define CMD_KINDS_READ 0x40000000u
#define CMD_EXTERNAL_NOW 0x20000000u
#define CMD_KIND_BITS (CMD_KINDS_READ | CMD_EXTERNAL_NOW)
/* APP_CALLBACK: the app gets every event of the tenant (else only those of
 * conversations it is a member of, as "app:ID"). */
#define CMD_CB_ALL 0x1u
/* OUTBOX ack/retry/fail: the event was a failed one being redelivered
 * ("redeliver"), not the head of the app's stream. OUTBOX requeue: every
 * failed event of the app (else the one at seq). */
#define CMD_OB_REDELIVERY 0x1u
#define CMD_OB_ALL 0x2u

typedef struct cmd {
    uint32_t op;          /* cmd_op */
    herald_str tenant;    /* tenant id (always) */
    herald_str user;      /* acting user (from the verified token) */
    bool admin;           /* actor holds the tenant-admin role */
    herald_str conv;      /* conversation id */
    herald_str cmid;      /* SEND: client message id */
    herald_str body;      /* SEND: payload */
    herald_str kind;      /* CONV_CREATE: conversation kind name */
    herald_str secret;    /* TENANT_CREATE: 64 hex chars */
    uint32_t flags;       /* SEND: HERALD_MSGF_* already masked, | CMD_EXTERNAL_NOW;
                             TENANT_CREATE / READ: CMD_TENANT_NO_RECEIPTS;
                             READ: CMD_EXTERNAL_NOW; CONV_CREATE: CMD_CONV_EXPECT */
    uint32_t cap;         /* TENANT_CREATE: the tenant's group cap; CONV_CREATE:
                             that cap, copied by the gateway from the tenant
                             record (tenants live in the meta group, not in
                             every shard); 0 = 200 */
    uint64_t seq;         /* READ: cursor; RECALL: the message */
    uint64_t win;         /* RECALL: the tenant's recall window, seconds;
                             TENANT_CREATE: that window for the tenant */
    uint32_t ivl;         /* SEND (urgent) / TENANT_CREATE: seconds between
                             reminders (the gateway copies the tenant's) */
    uint32_t max;         /* SEND (urgent) / TENANT_CREATE: reminders before
                             escalating */
    uint64_t ts;          /* proposer's clock, ms since the Unix epoch */
    uint32_t n_members;   /* CONV_*: members */
    herald_str *members;  /* owned by the cmd after decode */
    uint32_t n_external;  /* CONV_CREATE/ADD: which members are external
                             (from the directory, filled by the gateway) */
    herald_str *external; /* owned by the cmd after decode */
    herald_str target;    /* DIR_USER: the user described */
    herald_str name;      /* DIR_*: display name */
    herald_str title;     /* DIR_USER: job title; SEND: the sender's certified
                             title (filled by the gateway for employees) */
    herald_str dept;      /* DIR_*: department id */
    herald_str parent;    /* DIR_DEPT: parent department */
    herald_str corp;      /* SEND: certified corp name (gateway, employees);
                             TENANT_CREATE: the corp's display name */
    uint32_t n_depts;     /* APP_MARK: departments */
    herald_str *depts;    /* owned by the cmd after decode */
    uint32_t n_tags;      /* APP_MARK: tags */
    herald_str *tags;     /* owned by the cmd after decode */
    uint32_t dedup_s;     /* TENANT_CREATE: app-message duplicate window, s */
    uint32_t freq;        /* TENANT_CREATE: app messages per member per app
                             per minute */
    uint32_t climit;      /* TENANT_CREATE: customers an employee may own */
    uint32_t xwait;       /* TENANT_CREATE: in-service transfer wait, s */
    uint32_t n_oconvs;    /* OFFLINE: reports (= n_oseqs = n_ocounts) */
    herald_str *oconvs;   /* OFFLINE: report i's conversation; owned after decode */
    uint32_t n_oseqs;
    uint64_t *oseqs;      /* OFFLINE: report i's message seq; owned after decode */
    uint32_t n_ocounts;
    uint64_t *ocounts;    /* OFFLINE: how many of members are report i's users
                             (they add up to n_members); owned after decode */
} cmd;

/* Appends the msgpack encoding of *c to out. 0, HERALD_EINVAL, HERALD_ENOMEM. */
int cmd_encode(const cmd *c, herald_buf *out);

/* Decodes; strings point into p. 0, HERALD_EPROTOCOL (malformed, bad op,
 * wrong types, counts over the bytes left), HERALD_ENOMEM. On error *out
 * holds nothing to free. Release with cmd_release. */
int cmd_decode(const uint8_t *p, size_t n, cmd *out);

/* Frees the members array; NULL-safe. */
void cmd_release(cmd *c);

/* "SEND", … or "UNKNOWN". */
const char *cmd_op_name(uint32_t op);

#endif
