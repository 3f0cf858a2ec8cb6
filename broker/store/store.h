/*
 * store.h — the LMDB store: conversations, members, messages, cursors,
 * dedup, group positions, tenants and the applied index.
 *
 * Layout (one LMDB environment, named databases; every key starts with the
 * tenant, so nothing is reachable without it):
 *   meta     "applied"                      → u64 applied index
 *            "format"                        → u32 store format (STORE_FORMAT)
 *            "gpos"                          → u64 position of the group's newest message
 *            "t" ten                         → tenant record (secret, caps)
 *   conv     ten conv                        → conv record (kind, owner, max seq, cap, created, count)
 *   member   ten conv user                   → member record (role, joined seq)
 *   memberof ten user conv                   → kind; after leaving: kind|0x80,
 *                                              joined seq, last seq (a user's
 *                                              conversations, for sync)
 *   msg      ten conv seq(8, big-endian)     → message record (from, ts, cmid, flags, kind, body)
 *   cursor   ten conv user                   → u64 read seq
 *   dedup    ten conv user cmid              → u64 seq
 *   uevt     ten user group(4) pos(8)       → pointer (conv, seq)
 *   ustate   ten user group(4)               → u64 last pos
 * Ids are length-prefixed (1 byte) inside keys so prefixes never collide.
 *
 * Threads: ONE writer thread (see writer.h / apply.h) runs write
 * transactions; any thread may call the read functions below (each opens
 * and closes one short read transaction; the env uses MDB_NOTLS). When a
 * write hits MDB_MAP_FULL the writer aborts, grows the map (readers are
 * briefly excluded by an internal rwlock) and retries the whole batch —
 * nothing is acknowledged that was not committed.
 */
#ifndef HERALD_STORE_H
#define HERALD_STORE_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct store store;

typedef struct store_config {
    const char *dir;        /* data directory (created if missing) */
    size_t map_size;        /* initial map size in bytes (0 = 1 GiB) */
    size_t map_max;         /* growth ceiling (0 = 64 GiB) */
    bool no_sync;           /* tests only: skip fsync (MDB_NOSYNC) */
    uint32_t group;         /* the shard group this store holds */
} store_config;

/* Conversation kinds. */
typedef enum conv_kind {
    CONV_SINGLE = 1,
    CONV_GROUP = 2,
    CONV_CUSTOMER_GROUP = 3,
    CONV_ANNOUNCE = 4,
} conv_kind;

#define CONV_CAP_GROUP_DEFAULT 200u
#define CONV_CAP_GROUP_MAX 2000u
#define CONV_CAP_CUSTOMER_GROUP 500u
#define CONV_CAP_ANNOUNCE 100000u
#define CONV_POINTER_MAX 500u  /* conversations whose cap exceeds this (and
                                  announcements) are read-diffused */
#define RECALL_WINDOW_DEFAULT 86400u /* seconds */
#define TOKEN_ID_MAX_STORE 128u      /* longest id (= TOKEN_ID_MAX) */
#define URGENT_INTERVAL_DEFAULT 300u /* seconds between reminders */
#define URGENT_MAX_DEFAULT 3u        /* reminders, then escalation */
#define APP_DEDUP_DEFAULT 1800u      /* seconds: app-message duplicate window */
#define APP_DEDUP_MAX 14400u         /* seconds: its ceiling (4 h) */
#define APP_FREQ_DEFAULT 30u         /* app messages per member per app per minute */
#define CUSTOMER_LIMIT_DEFAULT 50000u /* customers one employee may own */
#define TRANSFER_WAIT_DEFAULT 86400u /* seconds a customer may object to an
                                        in-service transfer */
#define TRANSFER_PROTECT_MS (90ull * 86400u * 1000u) /* two in-service
                                        transfers in this long protect a customer */

/* "single" → CONV_SINGLE …; 0 when unknown. */
int conv_kind_parse(herald_str s);
const char *conv_kind_name(int kind);

/* Opens (creating) the environment. 0, HERALD_EIO, HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_open(const store_config *cfg, store **out);
/* Closes; NULL-safe. No transaction may be active. */
void store_close(store *s);

/* The shard group this store holds (store_config.group). */
uint32_t store_group(const store *s);
/* Current LMDB map size in bytes. */
size_t store_map_size(store *s);
/* Bytes of the map in use (pages up to the last one written; free pages
 * inside are reused, so this is the high-water mark). Any thread. */
uint64_t store_map_used(store *s);

/* Last applied command index. */
uint64_t store_applied(store *s);

/* --- reads (any thread, short read transaction each) --------------------- */

typedef struct store_tenant {
    uint8_t secret[32];     /* HMAC key */
    uint32_t group_cap;     /* default cap of new groups */
    uint64_t recall_window; /* seconds a sender may recall a message */
    uint32_t urgent_interval; /* seconds between reminders of an urgent message */
    uint32_t urgent_max;    /* reminders before escalating */
    char corp[129];         /* the enterprise's display name (certified identity) */
    bool no_receipts;       /* the tenant switched read receipts off */
    uint32_t app_dedup;     /* app-message duplicate window, seconds */
    uint32_t app_freq;      /* app messages per member per app per minute */
    uint32_t customer_limit;/* customers one employee may own (transfer taker) */
    uint32_t transfer_wait; /* seconds before an in-service transfer takes over */
} store_tenant;

/* 0, HERALD_ENOT_FOUND, HERALD_ESTORAGE. */
int store_tenant_get(store *s, herald_str tenant, store_tenant *out);

/* The cluster's slot → shard group map (meta group), HERALD_SLOTS bytes.
 * 0, HERALD_ENOT_FOUND (not written yet), HERALD_ESTORAGE. */
int store_slotmap_get(store *s, uint8_t *map);

typedef struct store_conv {
    int kind;               /* conv_kind */
    char owner[129];        /* owner user id */
    uint64_t max_seq;       /* highest seq assigned */
    uint64_t created;       /* ms since epoch */
    uint32_t cap;           /* member cap */
    uint32_t count;         /* member count */
    uint32_t n_external;    /* external members (customers) among them */
} store_conv;

/* 0, HERALD_ENOT_FOUND, HERALD_ESTORAGE. */
int store_conv_get(store *s, herald_str tenant, herald_str conv, store_conv *out);

/* 0 (member), HERALD_ENOT_MEMBER, HERALD_ESTORAGE. */
int store_member_check(store *s, herald_str tenant, herald_str conv, herald_str user);

/* A list of NUL-terminated strings in one allocation; free with store_strs_free. */
typedef struct store_strs {
    uint32_t n;             /* number of strings */
    char **v;               /* v[i] NUL-terminated */
} store_strs;
void store_strs_free(store_strs *l);

/* Members in id order. 0, HERALD_ENOT_FOUND, HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_members(store *s, herald_str tenant, herald_str conv, store_strs *out);

/* Messages; strings are owned by the list (one arena). */
typedef struct store_msgs {
    uint32_t n;             /* messages */
    herald_msg *v;          /* points into arena */
    bool more;              /* the limit cut the answer */
    void *arena;            /* private */
} store_msgs;
void store_msgs_free(store_msgs *m);

/* Messages of conv with seq > after, ascending, at most limit (0 = 100,
 * capped at 1000) and, after the first, at most about max_bytes of message
 * data (0 = no byte bound; callers pass their frame cap so an answer always
 * fits in one frame). 0, HERALD_ENOT_FOUND, HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_history(store *s, herald_str tenant, herald_str conv, uint64_t after,
                  uint32_t limit, size_t max_bytes, store_msgs *out);

/* Sync position and answer for one shard group. */
typedef struct store_sync_out {
    store_msgs msgs;         /* messages to deliver, in position order (group/pos set) */
    uint64_t pos;            /* the user's new position in this group */
} store_sync_out;
void store_sync_free(store_sync_out *o);

/* Sync: the messages of the user's conversations in this store's group
 * whose group position is above `after` (each from the user's joined seq
 * on), in position order, at most limit (0 = 500, capped at 1000) and
 * max_bytes as for store_history. out->pos is the new position: the
 * group's newest when the answer is whole, else the last message's (more
 * set: sync again from there). Cost: one conversation record and one
 * position read per conversation of the user in the group, plus two reads
 * per message returned.
 * 0, HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_sync(store *s, herald_str tenant, herald_str user, uint64_t after, uint32_t limit,
               size_t max_bytes, store_sync_out *out);

/* Upgrades a stopped store of format 1 (per-user pointer logs) in dir to
 * format 2 in place: every message gets a group position in key order
 * (tenant, conversation, seq), the pointer logs are dropped. Replicas of a
 * group that applied the same index come out identical (check with
 * `heraldd digest`). A store of format 2 is left alone (already set).
 * 0 or HERALD_ESTORAGE / HERALD_EIO (nothing changed: one transaction). */
typedef struct store_upgrade_report {
    bool already;      /* it was format 2: untouched */
    uint64_t applied;  /* its applied index */
    uint64_t messages; /* messages given positions 1..messages */
} store_upgrade_report;
int store_upgrade(const char *dir, store_upgrade_report *out);

/* The group's newest position: what a client without a key starts from. */
uint64_t store_gpos(store *s);

/* A user's conversation list: one entry per conversation it is a member
 * of in this store's group. */
#define STORE_PREVIEW_MAX 120u /* bytes of the last message's body kept */
typedef struct store_conv_entry {
    herald_msg last;  /* the newest message: conv always set (the id); seq 0
                         and ts = creation time when there is none yet; body
                         cut to STORE_PREVIEW_MAX bytes; strings in arena */
    int kind;         /* conv_kind */
    uint32_t count;   /* members */
    uint64_t unread;  /* messages after the user's read cursor (0 when the
                         last one is its own) */
} store_conv_entry;
typedef struct store_convlist {
    uint32_t n;             /* entries */
    store_conv_entry *v;    /* in list order */
    bool more;              /* entries past the limit */
    void *arena;            /* private */
} store_convlist;
void store_convlist_free(store_convlist *l);
/* List order: the newest last message first, then the id. <0, 0, >0. */
int store_conv_entry_cmp(const store_conv_entry *a, const store_conv_entry *b);
/* The user's conversations in this group that come after `after` (NULL:
 * from the top) in list order, at most limit (0 = 50, capped at 200); more
 * when there are others. Cost: O(the user's conversations in the group)
 * reads and a sort. 0, HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_convs(store *s, herald_str tenant, herald_str user, const store_conv_entry *after,
                uint32_t limit, store_convlist *out);

/* Urgent (DING) message status: confirmed and pending recipients.
 * 0, HERALD_ENOT_FOUND (not an urgent message), HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_urgent_status(store *s, herald_str tenant, herald_str conv, uint64_t seq,
                        store_strs *confirmed, store_strs *pending);
/* Sets HERALD_MSGF_CONFIRMED on each of the n messages (of this store)
 * that is urgent and that `reader` sent or has confirmed; clears it on the
 * others. 0 or HERALD_ESTORAGE. */
int store_urgent_mark(store *s, herald_str tenant, herald_str reader, herald_msg *v, uint32_t n);

/* Due time (ms) of the earliest pending reminder, 0 when none. */
uint64_t store_remind_next(store *s);

/* A customer's latest transfer (kept with the tenants). */
typedef struct store_transfer {
    uint8_t state;          /* XFER_* (apply.h): waiting, moving, done, refused */
    bool resigned;          /* the owner had resigned (no wait) */
    char from[129];         /* the employee giving it up */
    char to[129];           /* the taker */
    char conv[129];         /* the customer's conversation */
    uint64_t at;            /* waiting/moving: takeover time; done: when (ms) */
    uint64_t due;           /* its schedule entry (0 = none) */
} store_transfer;

/* 0, HERALD_ENOT_FOUND (never transferred), HERALD_ESTORAGE. */
int store_transfer_get(store *s, herald_str tenant, herald_str customer, store_transfer *out);

/* Due time (ms) of the earliest customer-transfer step (a takeover after
 * the waiting period, or a retry of an unfinished one), 0 when none. Meta
 * group. */
uint64_t store_transfer_next(store *s);

/* Directory entries (kept with the tenants, group 0). */
#define DIR_INTERNAL 1u
#define DIR_EXTERNAL 2u
typedef struct store_dir_user {
    uint32_t kind;          /* DIR_INTERNAL | DIR_EXTERNAL */
    char name[129];         /* display name */
    char title[129];        /* job title */
    char dept[129];         /* department id */
} store_dir_user;
typedef struct store_dir_dept {
    char name[129];         /* display name */
    char parent[129];       /* parent department id ("" = top) */
} store_dir_dept;

/* One level of the department tree: the departments whose parent is dept
 * and the users whose department is dept ("" = the top: departments
 * without a parent, users without a department), each sorted, at most max
 * of each (*more when either list was cut). Reads the tenant's whole
 * directory (an admin's view, not a hot path). 0, HERALD_ENOMEM,
 * HERALD_ESTORAGE. */
int store_dir_level(store *s, herald_str tenant, herald_str dept, uint32_t max,
                    store_strs *children, store_strs *users, bool *more);

/* 0, HERALD_ENOT_FOUND (not in the directory), HERALD_ESTORAGE. */
int store_dir_user_get(store *s, herald_str tenant, herald_str user, store_dir_user *out);
int store_dir_dept_get(store *s, herald_str tenant, herald_str dept, store_dir_dept *out);

/* Apps registered by a tenant admin (kept with the tenants, group 0): who
 * may get an access token with the app's credentials, and what the app may
 * do (APP_SCOPE_* bits). The secret itself is never stored: only its
 * SHA-256, hex. */
#define APP_SCOPE_MESSAGE 0x01u      /* app messages / announcements as itself */
#define APP_SCOPE_DIRECTORY 0x02u    /* directory: read and change */
#define APP_SCOPE_CONTACT 0x04u      /* external contacts, tags, mass messages */
#define APP_SCOPE_TRANSFER 0x08u     /* customer transfer */
#define APP_SCOPE_CONVERSATION 0x10u /* conversations: create, add, remove, info */
#define APP_SCOPE_USER_TOKEN 0x20u   /* mint client tokens for users */
#define APP_SCOPE_ALL_ 0x3fu
typedef struct store_app {
    uint32_t scopes;        /* APP_SCOPE_* */
    char name[129];         /* display name */
    char secret_sha[65];    /* hex SHA-256 of the secret */
    uint64_t created;       /* ms since the epoch (commit time) */
} store_app;
/* 0, HERALD_ENOT_FOUND, HERALD_ESTORAGE. */
int store_app_get(store *s, herald_str tenant, herald_str app, store_app *out);
/* The tenant's apps in key order (shorter ids first) after `after` ("" = from the first), at
 * most limit; fn(ctx, id, record) for each (non-zero stops, returned);
 * *more when there are more. 0, HERALD_ESTORAGE. */
int store_app_each(store *s, herald_str tenant, herald_str after, uint32_t limit,
                   int (*fn)(void *ctx, herald_str id, const store_app *a), void *ctx,
                   bool *more);

/* External contacts: the employees owning a customer relationship, in id
 * order (the conversation of each in convs, same order). 0, HERALD_ENOMEM,
 * HERALD_ESTORAGE; no contact gives empty lists. */
int store_contacts(store *s, herald_str tenant, herald_str customer, store_strs *owners,
                   store_strs *convs);

/* Customer tags (kept with the tenants): a customer's tags / a tag's
 * customers, sorted. 0, HERALD_ENOMEM, HERALD_ESTORAGE. */
#define TAGS_PER_CALL_MAX 100u
int store_tags(store *s, herald_str tenant, herald_str customer, store_strs *tags);
int store_tagged(store *s, herald_str tenant, herald_str tag, store_strs *customers);

/* The recorded outcome of mass message mass_id: customers reached, limited
 * (already had one that day) and not reached. Stored values 1..3. 0,
 * HERALD_ENOT_FOUND, HERALD_ENOMEM, HERALD_ESTORAGE. */
#define MASS_SENT_STORED 1u
#define MASS_NO_OWNER_STORED 3u
#define MASS_CUSTOMERS_MAX 10000u
int store_mass_results(store *s, herald_str tenant, herald_str mass_id, store_strs *reached,
                       store_strs *limited, store_strs *missed);

/* A user's do-not-disturb state (kept where the tenants are): *until = ms
 * since the epoch it ends, UINT64_MAX until turned off, 0 when off.
 * 0 or HERALD_ESTORAGE. */
int store_dnd_get(store *s, herald_str tenant, herald_str user, uint64_t *until);

/* Receipts of one message. */
#define RECEIPTS_LIST_MAX 2000u /* up to this many members: complete lists */
#define RECEIPTS_PAGE_MAX 1000u /* larger: one page of the unread list */

typedef struct store_receipts_out {
    store_strs read;      /* names (complete only up to RECEIPTS_LIST_MAX members) */
    store_strs unread;    /* names (one page beyond RECEIPTS_LIST_MAX members) */
    uint32_t n_read;      /* members who have read (all of them) */
    uint32_t n_unread;    /* members who have not */
    bool more;            /* the unread page was cut; continue after `next` */
    char next[TOKEN_ID_MAX_STORE + 1]; /* cursor: the last id of this page */
} store_receipts_out;
void store_receipts_free(store_receipts_out *o);

/* The one wording for a seq that names no message of a conversation (0 or
 * past its last, `last`): READ and RECEIPTS both say it. Writes it into
 * buf (cap bytes) and returns HERALD_EINVAL. */
int store_seq_beyond(char *buf, size_t cap, uint64_t seq, uint64_t last);

/* Who has read message seq of conv: members whose cursor ≥ seq (the sender
 * counts as having read). after (may be absent) and limit (0 = 1000) page
 * the unread list of conversations above RECEIPTS_LIST_MAX members.
 * 0, HERALD_ENOT_FOUND, HERALD_EINVAL (seq 0 or beyond max), HERALD_ENOMEM,
 * HERALD_ESTORAGE. */
int store_receipts(store *s, herald_str tenant, herald_str conv, uint64_t seq,
                   herald_str after, uint32_t limit, store_receipts_out *out);

#endif
