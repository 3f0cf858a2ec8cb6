/*
 * store_int.h — internals shared by store.c (env, reads), apply.c (writes)
 * and position.c.
 */
#ifndef HERALD_STORE_INT_H
#define HERALD_STORE_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "keys.h"
#include "store.h"

/* Named databases (see the layout in store.h). */
typedef struct store_dbs {
    MDB_dbi meta;     /* applied index, tenants */
    MDB_dbi conv;     /* conversation records */
    MDB_dbi member;   /* ten conv user → member record */
    MDB_dbi memberof; /* ten user conv → kind */
    MDB_dbi msg;      /* ten conv seq → message record */
    MDB_dbi cursor;   /* ten conv user → read seq */
    MDB_dbi dedup;    /* ten conv user cmid → seq */
    MDB_dbi mpos;     /* ten conv seq → u64 group position of the message */
    MDB_dbi urgent;   /* ten conv seq(8) user → confirmed ts (0 = pending) */
    MDB_dbi remind;   /* due(8) ten conv seq(8) → reminders sent (1) interval s (4) max (1) */
} store_dbs;

struct store {
    MDB_env *env;           /* the environment */
    store_dbs db;           /* named databases */
    pthread_rwlock_t grow;  /* readers shared; map growth exclusive */
    size_t map_size;        /* current map size */
    size_t map_max;         /* growth ceiling */
    uint32_t group;         /* shard group held (0 in dev mode) */
};

/* Every named database, in the order store.c opens them and snapshots
 * walk them (store.c; one entry per field of store_dbs). */
typedef struct store_db_name {
    const char *name; /* LMDB database name */
    size_t off;       /* offset of its handle in store_dbs */
} store_db_name;
extern const store_db_name store_db_names[];
#define STORE_NDBS (sizeof(store_dbs) / sizeof(MDB_dbi))

/* The store's on-disk format: 2 = group positions (mpos, meta "gpos").
 * Format 1 (no meta "format", per-user pointer logs in "uevt") is refused
 * at open with the upgrade step. */
#define STORE_FORMAT 2u

/* The group position of the newest message (meta "gpos"), in txn. */
uint64_t store_gpos_txn(MDB_txn *txn, store *s);

/* memberof value: the conversation kind (1 byte) while a member; after
 * leaving (removed, or handed over), kind | MEMBEROF_LEFT then the joined
 * seq and the last seq it may still sync (8 bytes each, big-endian): the
 * messages up to its removal stay its to catch up on. Joining again
 * rewrites it. */
#define MEMBEROF_KIND_MASK 0x7fu
#define MEMBEROF_LEFT 0x80u
#define MEMBEROF_LEFT_LEN 17u

/* Member roles. */
#define ROLE_MEMBER 0u
#define ROLE_OWNER 1u

/* LMDB return code → herald error (the one place this mapping lives). */
int store_err(int mdb_rc);

/* Short read transaction with the growth lock held shared. */
int store_rd_begin(store *s, MDB_txn **txn);
void store_rd_end(store *s, MDB_txn *txn);

/* Doubles the map (up to map_max) with readers excluded. 0 or HERALD_ESTORAGE
 * (at the ceiling). No transaction of this thread may be open. */
int store_grow(store *s);

/* Decodes a conversation record (bytes from disk: bounded, all fields
 * checked). 0 or HERALD_ESTORAGE. */
int conv_decode(MDB_val v, store_conv *out);
/* Decoded conversation record. */
int conv_read(MDB_txn *txn, store *s, herald_str ten, herald_str conv, store_conv *out);
/* Member record: role, joined seq and (optional out) whether external. 0, HERALD_ENOT_MEMBER, HERALD_ESTORAGE. */
int member_read(MDB_txn *txn, store *s, herald_str ten, herald_str conv, herald_str user,
                uint32_t *role, uint64_t *joined, bool *external);

/* Key builders used by several files. */
void key_conv(kbuf *k, herald_str ten, herald_str conv);
void key_member(kbuf *k, herald_str ten, herald_str conv, herald_str user);
/* memberof key of (user, conv); conv {0}: the prefix of all the user's. */
void key_memberof(kbuf *k, herald_str ten, herald_str user, herald_str conv);
void key_msg(kbuf *k, herald_str ten, herald_str conv, uint64_t seq);

/* Calls fn for each member of (ten, conv) in id order (user points into the
 * txn's pages) until fn returns non-zero, which is returned. */
typedef int (*member_fn)(herald_str user, MDB_val rec, void *arg);
int store_each_member(MDB_txn *txn, store *s, herald_str ten, herald_str conv,
                      member_fn fn, void *arg);

/* A tenant-level record in the meta db: kind ("u", "dp", "ct", "d", "tc",
 * "tg", "mm", "mr"), tenant, id — each length-prefixed, so kinds never
 * collide. The key_* helpers below name the kinds. */
void key_meta(kbuf *k, const char *kind, herald_str ten, herald_str id);

/* meta keys of directory entries. */
void key_dir_user(kbuf *k, herald_str ten, herald_str user);
void key_dir_dept(kbuf *k, herald_str ten, herald_str dept);
/* Decoders of directory records (bytes from disk). 0 or HERALD_ESTORAGE. */
int dir_user_decode(MDB_val v, store_dir_user *out);
int dir_dept_decode(MDB_val v, store_dir_dept *out);

/* meta keys of customer tags: by customer ("tc") and by tag ("tg"). */
void key_tags_of(kbuf *k, herald_str ten, herald_str customer);
void key_tagged(kbuf *k, herald_str ten, herald_str tag);

/* meta keys of mass messages: a customer's last mass day ("mm"), one
 * mass message's outcome per customer ("mr"). */
void key_mass_day(kbuf *k, herald_str ten, herald_str customer);
void key_mass_result(kbuf *k, herald_str ten, herald_str mass_id);

/* meta key of a contact: customer → owning employee → their conversation. */
void key_contact(kbuf *k, herald_str ten, herald_str customer);

/* meta key of a customer's transfer record ("xr") and its decoder (bytes
 * from disk: 0 or HERALD_ESTORAGE). */
void key_transfer(kbuf *k, herald_str ten, herald_str customer);
int transfer_decode(MDB_val v, store_transfer *out);

/* meta key of an app ("ap") and its record decoder (0 or HERALD_ESTORAGE). */
void key_app(kbuf *k, herald_str ten, herald_str app);
int app_decode(MDB_val v, store_app *out);

/* meta key of a user's do-not-disturb record. */
void key_dnd(kbuf *k, herald_str ten, herald_str user);

/* A list of strings being collected (then moved into a store_strs). */
typedef struct strs_builder {
    herald_buf ptrs;  /* offsets (size_t) */
    herald_buf bytes; /* NUL-terminated strings */
    uint32_t n;       /* strings */
} strs_builder;
int sb_add(strs_builder *b, const char *p, size_t n);
/* Moves into out sorted by byte order / in insertion order; frees b. */
int sb_finish(strs_builder *b, store_strs *out);
int sb_finish_unsorted(strs_builder *b, store_strs *out);
void sb_drop(strs_builder *b);

/* Calls fn(id, value) for each key "prefix, len(id), id" of dbi in key
 * order until fn returns non-zero (returned). A malformed key is ESTORAGE. */
int scan_ids(MDB_txn *txn, MDB_dbi dbi, const kbuf *prefix, member_fn fn, void *arg);

/* Decodes a message record into m (strings copied into a). */
int msg_decode(MDB_val v, herald_str conv, uint64_t seq, arena *a, herald_msg *m);

#endif
